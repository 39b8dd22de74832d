"""Control flow of the TensorRT timing path (CUDA-graph capture with fallback, event timing) against a
fake cuda-python runtime: the real one needs a GPU, which this project's CI does not have."""
import types

import pytest

from effinrx.engines.gpu_runtime import cuda_graph_launcher, time_with_events
from effinrx.engines.tensorrt import TensorRTEngine


class FakeRuntime:
    """Records calls; every call returns ``(err, value)`` like cuda-python. ``fail`` names a call
    that returns error code 900 (cudaErrorStreamCaptureUnsupported-like)."""

    cudaStreamCaptureMode = types.SimpleNamespace(cudaStreamCaptureModeThreadLocal=1)

    def __init__(self, fail=None, elapsed=(0.5, 0.25, 0.75)):
        self.calls, self.fail, self._elapsed, self._i = [], fail, list(elapsed), 0

    def __getattr__(self, name):
        def call(*args):
            self.calls.append(name)
            if name == self.fail:
                return (900,)
            if name == "cudaEventElapsedTime":
                self._i += 1
                return (0, self._elapsed[(self._i - 1) % len(self._elapsed)])
            return (0, f"{name}-handle")
        return call


class FakeContext:
    def __init__(self, rt, raise_in_capture=False):
        self.rt, self.raise_in_capture, self.enqueues = rt, raise_in_capture, 0

    def execute_async_v3(self, stream):
        self.enqueues += 1
        self.rt.calls.append("enqueue")
        capturing = "cudaStreamBeginCapture" in self.rt.calls and "cudaStreamEndCapture" not in self.rt.calls
        if capturing and self.raise_in_capture:
            raise RuntimeError("enqueue not capturable")
        return True


def check(ret):
    return TensorRTEngine._check(None, ret)


def test_graph_capture_sequence_and_replay():
    rt = FakeRuntime()
    ctx = FakeContext(rt)
    launch = cuda_graph_launcher(rt, ctx, "s", check)
    assert callable(launch)
    assert rt.calls == ["enqueue", "cudaStreamSynchronize", "cudaStreamBeginCapture", "enqueue",
                        "cudaStreamEndCapture", "cudaGraphInstantiate"]
    launch()
    assert rt.calls[-1] == "cudaGraphLaunch" and ctx.enqueues == 2  # replay does not enqueue again


@pytest.mark.parametrize("fail,raise_in_capture,word", [
    ("cudaStreamBeginCapture", False, "CUDA call failed with 900"),
    (None, True, "RuntimeError: enqueue not capturable"),
    ("cudaGraphInstantiate", False, "CUDA call failed with 900")])
def test_capture_failure_falls_back_with_the_reason(fail, raise_in_capture, word):
    rt = FakeRuntime(fail=fail)
    out = cuda_graph_launcher(rt, FakeContext(rt, raise_in_capture), "s", check)
    assert isinstance(out, str) and out.startswith("CUDA graph capture failed") and word in out
    if "cudaStreamBeginCapture" in rt.calls and fail != "cudaStreamBeginCapture":
        assert "cudaStreamEndCapture" in rt.calls  # a started capture is always ended


def test_event_timing_counts_only_the_launch():
    rt = FakeRuntime(elapsed=(0.5, 0.25, 0.75))
    launches = []
    stats = time_with_events(rt, "s", lambda: launches.append(1), n=3, warmup=2, check=check)
    assert len(launches) == 5 and stats["n"] == 3
    assert stats["median_ms"] == 0.5 and stats["min_ms"] == 0.25
    assert rt.calls.count("cudaEventRecord") == 6 and rt.calls.count("cudaEventSynchronize") == 3
    assert time_with_events(rt, "s", lambda: None, n=2, warmup=0, check=check, raw=True) == [0.5, 0.25]


class FalseContext(FakeContext):
    """execute_async_v3 returns False while the stream is captured (TensorRT's failure signal)."""

    def execute_async_v3(self, stream):
        super().execute_async_v3(stream)
        return not ("cudaStreamBeginCapture" in self.rt.calls and "cudaStreamEndCapture" not in self.rt.calls)


def test_false_enqueue_during_capture_is_the_reported_cause():
    """A False from execute_async_v3 during capture would leave an empty graph replaying in ~0 ms:
    it falls back to the plain enqueue with that cause; the capture is still ended."""
    rt = FakeRuntime()
    out = cuda_graph_launcher(rt, FalseContext(rt), "s", check)
    assert isinstance(out, str) and "returned False during capture" in out, out
    assert "cudaStreamEndCapture" in rt.calls and "cudaGraphInstantiate" not in rt.calls
    assert "cudaGraphDestroy" in rt.calls  # the ended (empty) capture's graph is freed


def test_failing_end_of_capture_does_not_hide_the_enqueue_error():
    rt = FakeRuntime(fail="cudaStreamEndCapture")
    out = cuda_graph_launcher(rt, FakeContext(rt, raise_in_capture=True), "s", check)
    assert "RuntimeError: enqueue not capturable" in out and "900" not in out, out


def test_graph_and_events_are_destroyed():
    rt = FakeRuntime()
    g = cuda_graph_launcher(rt, FakeContext(rt), "s", check)
    g.close()
    assert rt.calls[-2:] == ["cudaGraphExecDestroy", "cudaGraphDestroy"]
    g.close()  # idempotent
    assert rt.calls.count("cudaGraphDestroy") == 1
    time_with_events(rt, "s", lambda: None, n=2, warmup=0, check=check)
    assert rt.calls.count("cudaEventDestroy") == 2
    with pytest.raises(RuntimeError):
        time_with_events(rt, "s", lambda: (_ for _ in ()).throw(RuntimeError("boom")), n=1, warmup=0, check=check)
    assert rt.calls.count("cudaEventDestroy") == 4  # also when a launch raises


def test_engine_enqueue_checks_the_bool():
    from effinrx.errors import NotAvailableError

    eng = object.__new__(TensorRTEngine)
    eng.context, eng.stream = types.SimpleNamespace(execute_async_v3=lambda s: False), "s"
    with pytest.raises(NotAvailableError, match="execute_async_v3 returned False"):
        eng._enqueue()
