"""The GPU timing path of ``engines.tensorrt`` (``engines.gpu_runtime``) on a real CUDA device, TensorRT not needed.

The TensorRT engine's copies, CUDA-graph capture/replay, fallback and CUDA-event timing only touch
the engine through ``context.execute_async_v3(stream)``. Here a stand-in context enqueues device-to-
device copies of a known size, so the measured times can be checked against the work done. Skipped,
with the cuda-python import or device error as the reason, where there is no CUDA device.
"""
import numpy as np
import pytest

from effinrx.engines.gpu_runtime import (cuda_check, cuda_device_reason, cuda_graph_launcher, import_cudart,
                                         time_with_events)

_WHY = cuda_device_reason()
if _WHY:
    pytest.skip(_WHY, allow_module_level=True)
cr = import_cudart()

from effinrx.engines.tensorrt import TensorRTEngine  # noqa: E402

pytestmark = [pytest.mark.gpu]

MIB = 1 << 20
D2D = cr.cudaMemcpyKind.cudaMemcpyDeviceToDevice


class CopyContext:
    """Stands in for a TensorRT execution context: each ``execute_async_v3(stream)`` enqueues
    ``repeat`` device-to-device copies of ``nbytes`` from ``src`` to ``dst`` (device pointers).
    ``sync_inside`` adds a stream synchronize, which is illegal while the stream is captured."""

    def __init__(self, src, dst, nbytes, repeat=1, sync_inside=False):
        self.src, self.dst, self.nbytes, self.repeat, self.sync_inside = src, dst, nbytes, repeat, sync_inside
        self.enqueues = 0

    def execute_async_v3(self, stream):
        self.enqueues += 1
        for _ in range(self.repeat):
            cuda_check(cr.cudaMemcpyAsync(self.dst, self.src, self.nbytes, D2D, stream))
        if self.sync_inside:
            cuda_check(cr.cudaStreamSynchronize(stream))
        return True


@pytest.fixture
def stream():
    s = cuda_check(cr.cudaStreamCreate())
    yield s
    cuda_check(cr.cudaStreamDestroy(s))


@pytest.fixture
def buffers():
    """Two 64 MiB device buffers (src, dst), freed after the test."""
    ptrs = [cuda_check(cr.cudaMalloc(64 * MIB)) for _ in range(2)]
    yield ptrs
    for p in ptrs:
        cuda_check(cr.cudaFree(p))


def test_graph_replay_times_the_captured_work(stream, buffers):
    one = CopyContext(*buffers, 64 * MIB, repeat=1)
    four = CopyContext(*buffers, 64 * MIB, repeat=4)
    launch1 = cuda_graph_launcher(cr, one, stream, cuda_check)
    launch4 = cuda_graph_launcher(cr, four, stream, cuda_check)
    assert callable(launch1) and callable(launch4), (launch1, launch4)
    assert not isinstance(launch1, str) and not isinstance(launch4, str)
    t1 = time_with_events(cr, stream, launch1, 30, 5, cuda_check)
    t4 = time_with_events(cr, stream, launch4, 30, 5, cuda_check)
    assert one.enqueues == 2 and four.enqueues == 2  # one warm-up + one captured; replays skip Python
    ratio = t4["median_ms"] / t1["median_ms"]
    assert 2.5 <= ratio <= 6.0, f"4 copies took {ratio:.2f}x one copy ({t4} vs {t1})"
    # a 64 MiB copy reads and writes 64 MiB: any data-center GPU moves that at 0.05-10 TB/s
    tbps = 2 * 64 * MIB / (t1["median_ms"] * 1e-3) / 1e12
    assert 0.05 <= tbps <= 10.0, f"implied copy bandwidth {tbps:.3f} TB/s from {t1}"


def test_plain_enqueue_agrees_with_graph_replay(stream, buffers):
    ctx = CopyContext(*buffers, 64 * MIB)
    graph = time_with_events(cr, stream, cuda_graph_launcher(cr, ctx, stream, cuda_check), 30, 5, cuda_check)
    plain = time_with_events(cr, stream, lambda: ctx.execute_async_v3(stream), 30, 5, cuda_check)
    assert 0.5 <= plain["median_ms"] / graph["median_ms"] <= 2.0, (plain, graph)


def test_capture_failure_falls_back_with_the_cuda_error(stream, buffers):
    bad = CopyContext(*buffers, MIB, sync_inside=True)
    why = cuda_graph_launcher(cr, bad, stream, cuda_check)
    assert isinstance(why, str) and why.startswith("CUDA graph capture failed"), why
    # the stream is usable afterwards: plain enqueues still time
    good = CopyContext(*buffers, MIB)
    assert time_with_events(cr, stream, lambda: good.execute_async_v3(stream), 5, 1, cuda_check)["min_ms"] > 0


def _engine(context, stream, src, dst, shape):
    """A TensorRTEngine with its TensorRT parts replaced by ``context`` (input ``x`` at ``src``,
    output ``y`` at ``dst``): its own run / time / copy_times code runs on the real device."""
    eng = object.__new__(TensorRTEngine)
    eng.cudart, eng.context, eng.stream = cr, context, stream
    eng.inputs, eng.buffers, eng._graph = ["x"], {"x": src, "y": dst}, None
    eng.host = {"x": np.zeros(shape, np.float32), "y": np.zeros(shape, np.float32)}
    eng.plan, eng._trt_version = None, "none (stand-in context)"
    return eng


def test_engine_run_time_and_copies_on_the_device(stream, buffers):
    shape = (4, 1024, 1024)  # 16 MiB of float32
    nbytes = int(np.prod(shape)) * 4
    eng = _engine(CopyContext(*buffers, nbytes), stream, *buffers, shape)
    x = eng.random_inputs(3)
    np.testing.assert_array_equal(eng.run(x)["y"], x["x"])  # H2D, enqueue, D2H round trip
    stats = eng.time(n=20, warmup=3, inputs=x)
    assert eng.timing_mode == "cuda-graph" and stats["n"] == 20 and stats["min_ms"] > 0
    eng.time(n=5, warmup=1, inputs=x, cuda_graph=False)
    assert eng.timing_mode == "enqueue"
    before = eng.context.enqueues
    eng.time(n=5, warmup=1, inputs=x)  # the captured graph is reused: only run()'s own enqueue
    assert eng.timing_mode == "cuda-graph" and eng.context.enqueues == before + 1
    copies = eng.copy_times(n=5, inputs=x)
    # pageable host copies over PCIe / NVLink-C2C (H100 measured 1.25 ms for 16 MiB, 13 GB/s)
    for k in ("h2d_ms", "d2h_ms"):
        gbps = nbytes / (copies[k] * 1e-3) / 1e9
        assert 0.5 <= gbps <= 1000, f"{k} {copies[k]:.3f} ms -> {gbps:.1f} GB/s"
    graph = eng._graph
    eng.buffers, eng.stream = {}, None  # the fixtures own these; close() destroys the graph here
    eng.close()
    assert graph.exe is None and graph.graph is None and eng._graph is None


def test_graph_replay_removes_launch_overhead_of_many_small_ops(stream, buffers):
    """An enqueue of many tiny ops (like a small receiver's kernels) is launch-bound: one graph
    launch replaces 20 API calls (H100 measured: 22 us replayed vs 101 us enqueued)."""
    ctx = CopyContext(*buffers, 4096, repeat=20)
    graph = time_with_events(cr, stream, cuda_graph_launcher(cr, ctx, stream, cuda_check), 100, 10, cuda_check)
    plain = time_with_events(cr, stream, lambda: ctx.execute_async_v3(stream), 100, 10, cuda_check)
    assert graph["median_ms"] < 0.8 * plain["median_ms"], (graph, plain)
