"""TensorRTEngine end to end against stand-in TensorRT and CUDA runtimes (CPU, no GPU).

The stand-in cuda runtime keeps "device" buffers in host memory (ctypes), so the engine's own code
(build per plan, buffers in each tensor's dtype, copies, enqueue, CUDA-graph capture and replay,
event timing, close) runs here as written; the stand-in context computes relu(x) into a float16
output. What this cannot check, a real GPU run must: the real TensorRT build and kernels."""
import ctypes
import types

import numpy as np
import pytest

from effinrx.engines import gpu_runtime
from effinrx.engines import tensorrt as T
from effinrx.errors import ConfigError
from effinrx.receivers.checks import InputError

NS = types.SimpleNamespace


class FakeCudart:
    cudaMemcpyKind = NS(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2, cudaMemcpyDeviceToDevice=3)
    cudaStreamCaptureMode = NS(cudaStreamCaptureModeThreadLocal=1)

    def __init__(self):
        self.mem, self.calls, self.launches = {}, [], 0

    def __getattr__(self, name):  # every other call succeeds and is recorded
        def call(*a):
            self.calls.append(name)
            return (0, f"{name}-handle")
        return call

    def cudaMalloc(self, n):
        buf = ctypes.create_string_buffer(n)
        self.mem[ctypes.addressof(buf)] = buf
        return (0, ctypes.addressof(buf))

    def cudaFree(self, ptr):
        self.calls.append("cudaFree")
        del self.mem[ptr]
        return (0,)

    def cudaMemcpy(self, dst, src, n, kind):
        ctypes.memmove(dst, src, n)
        return (0,)

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        return self.cudaMemcpy(dst, src, n, kind)

    def cudaStreamCreate(self):
        return (0, 7)

    def cudaEventElapsedTime(self, a, b):
        return (0, 0.25)

    def cudaGraphLaunch(self, exe, stream):
        self.launches += 1
        return (0,)


def fake_trt(version):
    dt = NS(FLOAT="FLOAT", HALF="HALF", INT8="INT8", INT32="INT32", BOOL="BOOL")
    mode = NS(INPUT="in", OUTPUT="out")
    rec = NS(flags=[], net_flags=None, parsed=None)

    class Context:
        def __init__(self):
            self.addr, self.enqueues, self.streams = {}, 0, []

        def get_tensor_shape(self, name):
            return (2, 3)

        def set_tensor_address(self, name, addr):
            self.addr[name] = addr

        def execute_async_v3(self, stream):
            self.enqueues += 1
            self.streams.append(stream)
            x = np.frombuffer((ctypes.c_char * 24).from_address(self.addr["x"]), np.float32)
            y = np.maximum(x, 0).astype(np.float16).tobytes()
            ctypes.memmove(self.addr["y"], y, len(y))
            return True

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i):
            return ("x", "y")[i]

        def get_tensor_dtype(self, name):
            return dt.FLOAT if name == "x" else dt.HALF

        def get_tensor_mode(self, name):
            return mode.INPUT if name == "x" else mode.OUTPUT

        def create_execution_context(self):
            self.ctx = Context()
            return self.ctx

    class Config:
        def set_memory_pool_limit(self, pool, n):
            pass

        def set_flag(self, f):
            rec.flags.append(f)

        def add_optimization_profile(self, p):
            raise AssertionError("static ONNX: no optimization profile")

    class Network:
        pass

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            rec.net_flags = flags
            return Network()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, net, cfg):
            return b"plan"

    class Parser:
        num_errors = 0

        def __init__(self, net, logger):
            pass

        def parse(self, data):
            rec.parsed = data
            return True

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, blob):
            assert blob == b"plan"
            rec.engine = Engine()
            return rec.engine

    logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, sev: None})
    trt = NS(__version__=version, Logger=logger, Builder=Builder, OnnxParser=Parser, Runtime=Runtime,
             BuilderFlag=NS(FP16="FP16", SPARSE_WEIGHTS="SPARSE_WEIGHTS"), MemoryPoolType=NS(WORKSPACE=0),
             NetworkDefinitionCreationFlag=NS(STRONGLY_TYPED=1), TensorIOMode=mode, DataType=dt,
             nptype=lambda t: {"FLOAT": np.float32, "HALF": np.float16}[t])
    return trt, rec


@pytest.fixture
def runtime(monkeypatch):
    cr = FakeCudart()
    monkeypatch.setattr(T, "import_cudart", lambda: cr)
    monkeypatch.setattr(T, "cuda_device_reason", lambda: None)
    return cr


def test_engine_builds_runs_times_and_closes(tmp_path, monkeypatch, runtime):
    trt, rec = fake_trt("10.16.1.11")
    monkeypatch.setattr(T, "import_tensorrt", lambda: trt)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx-bytes")
    eng = T.TensorRTEngine(onnx, "fp16", sparse=True)
    assert rec.flags == ["FP16", "SPARSE_WEIGHTS"] and rec.net_flags == 0 and rec.parsed == b"onnx-bytes"
    assert eng.input_shapes == {"x": (2, 3)} and eng.host["y"].dtype == np.float16
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    y = eng.run({"x": x})["y"]
    assert y.dtype == np.float16 and np.array_equal(y, np.maximum(x, 0).astype(np.float16))
    assert set(rec.engine.ctx.streams) == {7}  # the stream's integer handle, as TensorRT takes it
    stats = eng.time(n=5, warmup=2, inputs={"x": x})
    assert eng.timing_mode == "cuda-graph" and stats["n"] == 5 and stats["median_ms"] == 0.25
    assert runtime.launches == 7  # warm-up + timed replays of the captured graph
    assert eng.copy_times(n=3, inputs={"x": x}) == {"h2d_ms": 0.25, "d2h_ms": 0.25}
    d = eng.describe()
    assert d["plan"]["builder_flags"] == ("FP16", "SPARSE_WEIGHTS") and d["timing"] == "cuda-graph"
    eng.close()
    assert runtime.mem == {} and "cudaGraphDestroy" in runtime.calls and "cudaStreamDestroy" in runtime.calls
    with pytest.raises(InputError, match="NaN/Inf"):
        T.TensorRTEngine(onnx, "fp32").run({"x": np.full((2, 3), np.nan, np.float32)})


def test_trt11_fp16_builds_from_an_autocast_onnx(tmp_path, monkeypatch, runtime):
    trt, rec = fake_trt("11.4.0.106")
    monkeypatch.setattr(T, "import_tensorrt", lambda: trt)
    converted = []

    def autocast(src, dst):
        converted.append(src)
        dst.write_bytes(b"autocast-fp16")
        return dst

    import effinrx.export.modelopt as mo

    monkeypatch.setattr(mo, "autocast_fp16", autocast)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"fp32")
    eng = T.TensorRTEngine(onnx, "fp16", workdir=tmp_path)
    assert converted == [onnx] and rec.parsed == b"autocast-fp16" and rec.flags == [] and rec.net_flags == 0
    assert eng.built_from.endswith("m_autocast_fp16.onnx")
    T.TensorRTEngine(onnx, "fp16", workdir=tmp_path)  # the converted ONNX is reused
    assert len(converted) == 1
    q = T.TensorRTEngine(onnx, "int8", explicit_qdq=True)
    assert q.plan.strongly_typed and rec.flags == [] and rec.parsed == b"fp32"


def test_trt10_qdq_is_strongly_typed(tmp_path, monkeypatch, runtime):
    trt, rec = fake_trt("10.16.1.11")
    monkeypatch.setattr(T, "import_tensorrt", lambda: trt)
    onnx = tmp_path / "q.onnx"
    onnx.write_bytes(b"qdq")
    T.TensorRTEngine(onnx, "fp8", explicit_qdq=True)
    assert rec.net_flags == 1 << 1 and rec.flags == []  # STRONGLY_TYPED, no precision flag


def test_measure_tensorrt_and_the_cli_table(tmp_path, monkeypatch, runtime):
    """latency.measure.measure_tensorrt (what the paper-tier benchmarks and `effinrx latency --engine
    tensorrt` run) builds each variant from the right ONNX with the right options."""
    from effinrx.latency import build, measure, table

    trt, rec = fake_trt("10.16.1.11")
    monkeypatch.setattr(T, "import_tensorrt", lambda: trt)
    made = []

    def path(kind):
        p = tmp_path / f"{kind}.onnx"
        p.write_bytes(kind.encode())
        made.append(kind)
        return p

    monkeypatch.setattr(build, "ort_model_path", lambda m, p, prbs, folder: path(f"{m}-{p}"))
    monkeypatch.setattr(build, "pruned_2to4_onnx", lambda m, prbs, folder: path(f"{m}-2to4"))
    monkeypatch.setattr(measure, "info_bits_per_slot", lambda prbs: 81952)
    s = measure.measure_tensorrt("nrx-rt", "int8", 132, tmp_path, runs=4, warmup=1)
    assert made == ["nrx-rt-int8"] and rec.net_flags == 2 and rec.flags == []  # Q/DQ: strongly typed
    assert {"median_ms", "p99_ms", "min_ms", "h2d_ms", "d2h_ms", "timing", "tensorrt"} <= set(s)
    measure.measure_tensorrt("nrx-rt", "fp16-2:4", 132, tmp_path, runs=2, warmup=0)
    assert made[-1] == "nrx-rt-2to4" and rec.flags == ["FP16", "SPARSE_WEIGHTS"]
    with pytest.raises(ConfigError, match="TensorRT variants are"):
        build.trt_variant("nrx-rt", "int8-fused", 132, tmp_path)
    rows = measure.latency_table("tensorrt", ["nrx-rt"], ["fp16", "fp8"], 132, tmp_path, runs=2)
    assert made[-2:] == ["nrx-rt-fp32", "nrx-rt-fp8"]  # fp16 from the plain ONNX (FP16 flag), fp8 Q/DQ
    assert [r.engine for r in rows] == ["tensorrt", "tensorrt"] and rows[0].speedup == 1.0
    assert rows[0].paper_ms == table.PAPER_ADA_MS[("nrx-rt", "fp16")] and "H2D 0.250 ms" in table.format_table(rows)


def test_prune_2to4_makes_every_kernel_2_of_4_sparse_along_input_channels():
    """The fp16-2:4 variant's weights: every pointwise/Dense kernel 2:4 along its input channels
    (the layout TensorRT's sparse kernels need); depthwise kernels and biases untouched."""
    from effinrx.latency import build
    from effinrx.prune.masks import m_by_n_report
    from effinrx.prune.recipe import variable_names
    from effinrx.receivers.nrx import load_model

    net = load_model("nrx-rt", "auto")
    before = {n: v.numpy().copy() for n, v in zip(variable_names(net), net.core_variables())}
    done = build.prune_2to4(net)
    assert done and all(n.endswith(("pointwise_kernel", "/kernel")) for n in done)
    for n, v in zip(variable_names(net), net.core_variables()):
        w = v.numpy()
        if n in done:
            rep = m_by_n_report(w, 2, 4, axis=-2)
            assert rep.violations == 0 and rep.groups > 0, (n, rep)
            kept = w != 0
            assert np.array_equal(w[kept], before[n][kept])  # survivors keep their values
        else:
            assert np.array_equal(w, before[n]), n


def test_hardware_capability_decides_unsupported_variants(monkeypatch):
    attr = NS(cudaDevAttrComputeCapabilityMajor="maj", cudaDevAttrComputeCapabilityMinor="min")
    cc = {"maj": 8, "min": 0}
    fake = NS(cudaDeviceAttr=attr, cudaDeviceGetAttribute=lambda a, dev: (0, cc[a]))
    monkeypatch.setattr(gpu_runtime, "import_cudart", lambda: fake)
    assert gpu_runtime.compute_capability() == (8, 0)
    assert gpu_runtime.unsupported_here("fp8") == "fp8 needs compute capability >= 8.9; this GPU has 8.0"
    assert gpu_runtime.unsupported_here("int8") is None and gpu_runtime.unsupported_here("fp16", sparse=True) is None
    cc.update(maj=7, min=5)
    assert "sparse needs compute capability >= 8.0; this GPU has 7.5" == gpu_runtime.unsupported_here("fp16", sparse=True)
    cc.update(maj=9, min=0)
    assert gpu_runtime.unsupported_here("fp8") is None


def test_cli_refuses_a_precision_the_gpu_lacks_before_building(monkeypatch, capsys):
    from effinrx.cli import main
    from effinrx.latency import measure

    monkeypatch.setattr(T, "tensorrt_reason", lambda: None)
    monkeypatch.setattr(measure, "trt_unsupported", lambda p: "fp8 needs compute capability >= 8.9; this GPU has 8.0"
                        if p == "fp8" else None)
    monkeypatch.setattr(measure, "latency_table", lambda *a, **k: pytest.fail("nothing may be built"))
    assert main(["latency", "--engine", "tensorrt", "--precision", "fp16,fp8"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("--precision fp8: fp8 needs compute capability >= 8.9; this GPU has 8.0")
    assert len(err.splitlines()) == 1
