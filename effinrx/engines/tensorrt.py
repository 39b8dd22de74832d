"""TensorRT engine (GPU extra): build from ONNX with fixed shapes, run and time with CUDA events.

Version dispatch (``tensorrt.__version__``):

* 10.x: precision builder flags (FP16 / INT8 / FP8), ``STRONGLY_TYPED`` network for explicit Q/DQ
  models, ``SPARSE_WEIGHTS`` for 2:4-pruned weights.
* 11.x: networks are always strongly typed and the precision flags are gone: FP16 comes from an
  AutoCast-converted ONNX (ModelOpt), INT8/FP8/INT4 from Q/DQ nodes.

Nothing here runs on the CPU-only machines this project is developed on. The CUDA side (copies,
CUDA-graph capture / replay / fallback, event timing, ``run``/``time``/``copy_times``) ran on an
H100 with cuda-bindings 13.3 through ``tests/gpu/test_cuda_timing.py``, with a stand-in context
in place of TensorRT's; the TensorRT build and execution themselves (``tests/gpu/test_tensorrt_
engine.py``) have never run: no machine here has TensorRT. The pure logic (version dispatch, flag
plans, shape profiles, capture control flow against a fake runtime) is tested everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from effinrx.engines.base import Engine, summarize_ms
from effinrx.engines.trtexec import PRECISIONS, major_version
from effinrx.errors import ConfigError, NotAvailableError


def import_tensorrt():
    """Import tensorrt or raise NotAvailableError carrying the import error's text."""
    try:
        import tensorrt as trt  # noqa: PLC0415
    except Exception as e:  # ImportError, or OSError from missing CUDA libraries
        raise NotAvailableError(f"TensorRT is not available: {type(e).__name__}: {e}") from None
    return trt


def import_cudart():
    """cuda-python's runtime (``cuda.bindings.runtime`` or the older ``cuda.cudart``)."""
    errors = []
    for mod in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            import importlib

            return importlib.import_module(mod)
        except Exception as e:
            errors.append(f"{mod}: {type(e).__name__}: {e}")
    raise NotAvailableError("cuda-python is not available (" + "; ".join(errors) + ")")


@dataclass(frozen=True)
class BuildPlan:
    """What the builder will be told, derived only from the version and the request."""

    major: int
    strongly_typed: bool
    builder_flags: tuple[str, ...]
    needs_autocast_fp16: bool
    shapes: dict = field(default_factory=dict)


def plan(trt_version: str, precision: str, *, explicit_qdq: bool, sparse: bool = False,
         shapes: dict | None = None) -> BuildPlan:
    """Builder configuration for ``precision`` on TensorRT ``trt_version`` (10.x or 11.x)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} not one of {PRECISIONS}")
    major = major_version(trt_version)
    if major == 10:
        flags = []
        strongly = explicit_qdq or precision in ("fp8", "int4")
        if not strongly and precision in ("fp16", "int8"):
            flags.append(precision.upper())
        if sparse:
            flags.append("SPARSE_WEIGHTS")
        return BuildPlan(10, strongly, tuple(flags), False, dict(shapes or {}))
    if major == 11:
        if precision in ("int8", "fp8", "int4") and not explicit_qdq:
            raise ConfigError(f"TensorRT 11 has no {precision} builder flag: quantize the ONNX with "
                              "Q/DQ nodes first (effinrx.export.modelopt)")
        flags = ("SPARSE_WEIGHTS",) if sparse else ()
        return BuildPlan(11, True, flags, precision == "fp16", dict(shapes or {}))
    raise ConfigError(f"TensorRT {trt_version}: only 10.x and 11.x are supported")


def build_serialized(onnx_path: str | Path, build: BuildPlan, workspace_mb: int = 1024) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine per ``build`` (GPU only)."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    net_flags = 0
    if build.major == 10 and build.strongly_typed:
        net_flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(net_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConfigError(f"TensorRT cannot parse {onnx_path}: {errs}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    for f in build.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, f))
    profile = builder.create_optimization_profile()
    for name, shape in build.shapes.items():
        profile.set_shape(name, shape, shape, shape)  # fixed: min = opt = max
    config.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise ConfigError(f"TensorRT failed to build an engine from {onnx_path}")
    return bytes(blob)


class TensorRTEngine(Engine):
    """Deserialized TensorRT engine with device buffers; timing by CUDA events (GPU only).

    Needs TensorRT and a GPU; its CUDA paths are exercised by ``tests/gpu`` (see the module text).
    """

    name = "tensorrt"

    def __init__(self, onnx_path, precision: str = "fp16", shapes: dict | None = None,
                 explicit_qdq: bool = False, sparse: bool = False):
        super().__init__(onnx_path)
        trt = import_tensorrt()
        self.cudart = import_cudart()
        self._shapes = dict(shapes or {})
        self.plan = plan(trt.__version__, precision, explicit_qdq=explicit_qdq, sparse=sparse,
                         shapes=self._shapes)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(build_serialized(onnx_path, self.plan))
        self.context = self.engine.create_execution_context()
        self._trt_version = trt.__version__
        self._alloc()

    @property
    def input_shapes(self):
        return self._shapes

    def _check(self, ret):
        return cuda_check(ret)

    def _alloc(self):
        import numpy as np

        cr = self.cudart
        self.stream = self._check(cr.cudaStreamCreate())
        self.buffers, self.host = {}, {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.context.get_tensor_shape(name))
            nbytes = int(np.prod(shape)) * 4
            self.buffers[name] = self._check(cr.cudaMalloc(nbytes))
            self.host[name] = np.zeros(shape, np.float32)
            self.context.set_tensor_address(name, int(self.buffers[name]))

    def run(self, inputs):
        cr = self.cudart
        feed = self.check_inputs(inputs)
        h2d, d2h = cr.cudaMemcpyKind.cudaMemcpyHostToDevice, cr.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for k, a in feed.items():
            self._check(cr.cudaMemcpy(self.buffers[k], a.ctypes.data, a.nbytes, h2d))
        self.context.execute_async_v3(self.stream)
        self._check(cr.cudaStreamSynchronize(self.stream))
        out = {}
        for k, a in self.host.items():
            if k not in feed:
                self._check(cr.cudaMemcpy(a.ctypes.data, self.buffers[k], a.nbytes, d2h))
                out[k] = a.copy()
        return out

    def time(self, n: int = 200, warmup: int = 20, inputs: dict | None = None,
             cuda_graph: bool = True) -> dict:
        """CUDA-event latency of one inference with the inputs already on the device (copies are
        timed apart by :meth:`copy_times`). With ``cuda_graph`` the enqueue is captured once into a
        CUDA graph and replayed; if capture fails the plain ``execute_async_v3`` is timed and
        ``self.timing_mode`` says why."""
        cr = self.cudart
        self.run(inputs or self.random_inputs())  # copies happen here, outside the timed region
        launch = cuda_graph_launcher(cr, self.context, self.stream, self._check) if cuda_graph else None
        if launch is None or isinstance(launch, str):
            self.timing_mode = "enqueue" if launch is None else f"enqueue ({launch})"
            launch = lambda: self.context.execute_async_v3(self.stream)  # noqa: E731
        else:
            self.timing_mode = "cuda-graph"
        return time_with_events(cr, self.stream, launch, n, warmup, self._check)

    def copy_times(self, n: int = 50, inputs: dict | None = None) -> dict:
        """Median ms of the host->device input copies and device->host output copies (pageable
        host memory, as :meth:`run` uses), reported beside, never inside, the latency."""
        import numpy as np

        cr = self.cudart
        feed = self.check_inputs(inputs or self.random_inputs())
        h2d, d2h = cr.cudaMemcpyKind.cudaMemcpyHostToDevice, cr.cudaMemcpyKind.cudaMemcpyDeviceToHost
        outs = {k: a for k, a in self.host.items() if k not in feed}

        def up():
            for k, a in feed.items():
                self._check(cr.cudaMemcpyAsync(self.buffers[k], a.ctypes.data, a.nbytes, h2d, self.stream))

        def down():
            for k, a in outs.items():
                self._check(cr.cudaMemcpyAsync(a.ctypes.data, self.buffers[k], a.nbytes, d2h, self.stream))

        return {"h2d_ms": float(np.median(time_with_events(cr, self.stream, up, n, 2, self._check,
                                                            raw=True))),
                "d2h_ms": float(np.median(time_with_events(cr, self.stream, down, n, 2, self._check,
                                                            raw=True)))}

    def describe(self) -> dict:
        from effinrx import device

        return {"engine": self.name, "tensorrt": self._trt_version, "gpu": device.gpu_info(),
                "plan": self.plan.__dict__, "timing": getattr(self, "timing_mode", "not timed yet")}


def cuda_check(ret):
    """Unwrap a cuda-python call's ``(err, value)`` / ``(err,)`` result; raise NotAvailableError
    naming the error when ``err`` is not success."""
    err = ret[0] if isinstance(ret, tuple) else ret
    if int(getattr(err, "value", err)) != 0:  # cudaError_t enum (cuda-python) or a plain int
        raise NotAvailableError(f"CUDA call failed with {err}")
    return ret[1] if isinstance(ret, tuple) and len(ret) == 2 else ret


def cuda_graph_launcher(cr, context, stream, check):
    """Capture one ``context.execute_async_v3(stream)`` into a CUDA graph (cuda-python runtime
    ``cr``); returns a function that replays it, or a string saying why capture failed.

    TensorRT wants one plain enqueue before capture (it may allocate or update state lazily);
    capture mode is thread-local so other threads' CUDA calls do not invalidate it."""
    try:
        context.execute_async_v3(stream)
        check(cr.cudaStreamSynchronize(stream))
        check(cr.cudaStreamBeginCapture(stream, cr.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
        try:
            context.execute_async_v3(stream)
        finally:
            graph = check(cr.cudaStreamEndCapture(stream))
        exe = check(cr.cudaGraphInstantiate(graph, 0))
    except Exception as e:  # capture unsupported by this engine/driver: time the plain enqueue
        return f"CUDA graph capture failed: {type(e).__name__}: {e}"
    return lambda: check(cr.cudaGraphLaunch(exe, stream))


def time_with_events(cr, stream, launch, n: int, warmup: int, check, raw: bool = False):
    """Run ``launch()`` ``warmup`` times, then time ``n`` launches between two CUDA events on
    ``stream``; returns :func:`summarize_ms` stats (or the list of ms with ``raw``)."""
    start, stop = check(cr.cudaEventCreate()), check(cr.cudaEventCreate())
    for _ in range(warmup):
        launch()
    check(cr.cudaStreamSynchronize(stream))
    samples = []
    for _ in range(n):
        check(cr.cudaEventRecord(start, stream))
        launch()
        check(cr.cudaEventRecord(stop, stream))
        check(cr.cudaEventSynchronize(stop))
        samples.append(float(check(cr.cudaEventElapsedTime(start, stop))))
    return samples if raw else summarize_ms(samples)
