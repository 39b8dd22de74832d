"""TensorRT engine (GPU extra): build from ONNX with fixed shapes, run and time with CUDA events.

Version dispatch (``tensorrt.__version__``), the same rules as ``trtexec.precision_flags``:

* 10.x: fp16 of a plain ONNX is the ``FP16`` builder flag on a weakly typed network. An explicit
  Q/DQ ONNX (ModelOpt int8/fp8/int4) builds as a ``STRONGLY_TYPED`` network without precision
  flags. ``INT8`` without Q/DQ fails to build ("no scaling factors") and fp8/int4 without Q/DQ
  would silently build FP32: both are refused. ``SPARSE_WEIGHTS`` for 2:4-pruned weights.
* 11.x: networks are always strongly typed and the precision flags are gone: FP16 comes from an
  AutoCast-converted ONNX (``export.modelopt.autocast_fp16``, done here when asked for fp16 of a
  plain ONNX), INT8/FP8/INT4 from Q/DQ nodes.

A GPU is present only when ``cudaGetDeviceCount() >= 1`` (:func:`cuda_device_reason`); TensorRT
importing is not enough (on a CPU box it imports and the count fails with error 35).

What ran where: the CUDA side (copies, CUDA-graph capture / replay / fallback, event timing,
``run``/``time``/``copy_times``) ran on an H100 with cuda-bindings 13.3 through
``tests/gpu/test_cuda_timing.py``, with a stand-in context in place of TensorRT's. Every TensorRT
class, method, enum member and builder flag used here is checked against the real 10.16.1.11 and
11.4.0.106 Python bindings on CPU (``.ci/trt-api``, stand-in native libraries: nothing is built or
run there). ``tests/test_engines_tensorrt_fake.py`` runs this module's engine code end to end against
stand-in TensorRT and CUDA runtimes on CPU. A TensorRT build and execution on a GPU (``tests/gpu/test_tensorrt_engine.py``,
``benchmarks/test_latency.py`` in the paper tier) has not run yet: no machine here has had both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from effinrx import device
from effinrx.engines.base import Engine
from effinrx.engines.gpu_runtime import (cuda_check, cuda_device_reason, cuda_graph_launcher, import_cudart,
                                         import_tensorrt, stream_handle, time_with_events)
from effinrx.engines.trtexec import PRECISIONS, major_version, precision_flags
from effinrx.errors import ConfigError, NotAvailableError

#: what this module uses of the TensorRT Python API (checked against real bindings by .ci/trt-api)
TRT_API = {
    "": ("Logger", "Builder", "OnnxParser", "Runtime", "BuilderFlag", "NetworkDefinitionCreationFlag",
         "MemoryPoolType", "TensorIOMode", "DataType", "nptype", "__version__"),
    "Logger": ("WARNING",),
    "Builder": ("create_network", "create_builder_config", "create_optimization_profile",
                "build_serialized_network"),
    "OnnxParser": ("parse", "num_errors", "get_error"),
    "IBuilderConfig": ("set_memory_pool_limit", "set_flag", "add_optimization_profile"),
    "IOptimizationProfile": ("set_shape",),
    "MemoryPoolType": ("WORKSPACE",),
    "Runtime": ("deserialize_cuda_engine",),
    "ICudaEngine": ("num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_dtype",
                    "get_tensor_shape", "create_execution_context"),
    "IExecutionContext": ("get_tensor_shape", "set_tensor_address", "execute_async_v3"),
    "TensorIOMode": ("INPUT", "OUTPUT"),
    "DataType": ("FLOAT", "HALF", "INT8", "INT32", "BOOL"),
}


def tensorrt_reason() -> str | None:
    """None where a TensorRT engine can be built and timed here, else the reason (CUDA device
    first: TensorRT importing on a CPU machine is not a GPU)."""
    why = cuda_device_reason()
    if why:
        return why
    try:
        import_tensorrt()
    except NotAvailableError as e:
        return str(e)
    return None


@dataclass(frozen=True)
class BuildPlan:
    """What the builder will be told, derived only from the version and the request."""

    major: int
    precision: str
    strongly_typed: bool
    network_flags: tuple[str, ...]
    builder_flags: tuple[str, ...]
    needs_autocast_fp16: bool
    shapes: dict = field(default_factory=dict)


def plan(trt_version: str, precision: str, *, explicit_qdq: bool, autocast_fp16: bool = False,
         sparse: bool = False, shapes: dict | None = None) -> BuildPlan:
    """Builder configuration for ``precision`` on TensorRT ``trt_version`` (10.x or 11.x).

    ``explicit_qdq``: the ONNX has ModelOpt Q/DQ nodes; ``autocast_fp16``: it is already an AutoCast
    FP16 ONNX. ``needs_autocast_fp16``: 11.x fp16 of a plain ONNX, which the engine converts first.
    Refuses what would fail to build or silently build FP32 (see module text)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} not one of {PRECISIONS}")
    major = major_version(trt_version)
    needs_autocast = major == 11 and precision == "fp16" and not autocast_fp16 and not explicit_qdq
    # the trtexec rules decide (raises on int8/fp8/int4 without Q/DQ and on other versions)
    cli = precision_flags(precision, trt_version, explicit_qdq=explicit_qdq,
                          autocast_fp16=autocast_fp16 or needs_autocast)
    sparse_flag = ("SPARSE_WEIGHTS",) if sparse else ()
    if major == 10:
        strongly = "--stronglyTyped" in cli
        flags = ("FP16",) if "--fp16" in cli else ()
        return BuildPlan(10, precision, strongly, ("STRONGLY_TYPED",) if strongly else (),
                         flags + sparse_flag, False, dict(shapes or {}))
    # 11.x: strongly typed is the only mode; no network flag, no precision flags
    return BuildPlan(11, precision, True, (), sparse_flag, needs_autocast, dict(shapes or {}))


def build_serialized(onnx_path: str | Path, build: BuildPlan, workspace_mb: int = 1024) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine per ``build`` (GPU only)."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    net_flags = 0
    for f in build.network_flags:
        net_flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, f))
    network = builder.create_network(net_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConfigError(f"TensorRT cannot parse {onnx_path}: {errs}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    for f in build.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, f))
    if build.shapes:  # only a dynamic-shape ONNX needs a profile (fixed: min = opt = max)
        profile = builder.create_optimization_profile()
        for name, shape in build.shapes.items():
            profile.set_shape(name, shape, shape, shape)
        config.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise ConfigError(f"TensorRT {trt.__version__} failed to build a {build.precision} engine from "
                          f"{onnx_path} (see the TensorRT log above)")
    return bytes(blob)


class TensorRTEngine(Engine):
    """Deserialized TensorRT engine with device buffers; timing by CUDA events (GPU only).

    IO buffers take each tensor's own dtype (``trt.nptype``). ``close()`` (or ``with``) frees the
    CUDA graph, stream and buffers."""

    name = "tensorrt"

    def __init__(self, onnx_path, precision: str = "fp16", shapes: dict | None = None,
                 explicit_qdq: bool = False, sparse: bool = False, autocast_fp16: bool = False,
                 workdir: str | Path | None = None):
        super().__init__(onnx_path)
        why = cuda_device_reason()
        if why:
            raise NotAvailableError(why)
        trt = import_tensorrt()
        self.cudart = import_cudart()
        self._dyn_shapes = dict(shapes or {})
        self.plan = plan(trt.__version__, precision, explicit_qdq=explicit_qdq,
                         autocast_fp16=autocast_fp16, sparse=sparse, shapes=self._dyn_shapes)
        src = Path(onnx_path)
        if self.plan.needs_autocast_fp16:  # 11.x has no FP16 flag: the ONNX carries the casts
            from effinrx.export.modelopt import autocast_fp16 as convert

            dst = Path(workdir or src.parent) / (src.stem + "_autocast_fp16.onnx")
            src = dst if dst.exists() else convert(src, dst)
        self.built_from = str(src)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(build_serialized(src, self.plan))
        if self.engine is None:
            raise ConfigError(f"TensorRT could not deserialize the engine built from {src}")
        self.context = self.engine.create_execution_context()
        self._trt_version = trt.__version__
        self._graph = None
        self._alloc(trt)

    @property
    def input_shapes(self):
        return {k: self.host[k].shape for k in self.inputs}

    def _check(self, ret):
        return cuda_check(ret)

    def _alloc(self, trt):
        import numpy as np

        cr = self.cudart
        self.stream = self._check(cr.cudaStreamCreate())
        self.buffers, self.host, self.inputs = {}, {}, []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            self.host[name] = np.zeros(shape, dtype)
            self.buffers[name] = self._check(cr.cudaMalloc(max(1, self.host[name].nbytes)))
            self.context.set_tensor_address(name, int(self.buffers[name]))
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.inputs.append(name)

    def _feed(self, inputs):
        """Checked inputs cast to each input tensor's dtype."""
        import numpy as np

        return {k: np.ascontiguousarray(a, dtype=self.host[k].dtype)
                for k, a in self.check_inputs(inputs).items()}

    def _enqueue(self):
        if not self.context.execute_async_v3(stream_handle(self.stream)):
            raise NotAvailableError("TensorRT execute_async_v3 returned False (see the TensorRT log)")

    def run(self, inputs):
        cr = self.cudart
        feed = self._feed(inputs)
        h2d, d2h = cr.cudaMemcpyKind.cudaMemcpyHostToDevice, cr.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for k, a in feed.items():
            self._check(cr.cudaMemcpy(self.buffers[k], a.ctypes.data, a.nbytes, h2d))
        self._enqueue()
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
        launch = None
        if cuda_graph:
            if self._graph is None:
                self._graph = cuda_graph_launcher(cr, self.context, self.stream, self._check)
            launch = self._graph
        if launch is None or isinstance(launch, str):
            self.timing_mode = "enqueue" if launch is None else f"enqueue ({launch})"
            launch = self._enqueue
        else:
            self.timing_mode = "cuda-graph"
        return time_with_events(cr, self.stream, launch, n, warmup, self._check)

    def copy_times(self, n: int = 50, inputs: dict | None = None) -> dict:
        """Median ms of the host->device input copies and device->host output copies (pageable
        host memory, as :meth:`run` uses), reported beside, never inside, the latency."""
        import numpy as np

        cr = self.cudart
        feed = self._feed(inputs or self.random_inputs())
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
        return {"engine": self.name, "tensorrt": self._trt_version, "gpu": device.gpu_info(),
                "plan": dict(self.plan.__dict__), "built_from": self.built_from,
                "timing": getattr(self, "timing_mode", "not timed yet")}

    def close(self) -> None:
        """Destroy the CUDA graph, free the buffers and the stream (idempotent)."""
        cr = getattr(self, "cudart", None)
        if cr is None:
            return
        if self._graph is not None and not isinstance(self._graph, str):
            self._graph.close()
        self._graph = None
        for ptr in getattr(self, "buffers", {}).values():
            cr.cudaFree(ptr)
        self.buffers = {}
        if getattr(self, "stream", None) is not None:
            cr.cudaStreamDestroy(self.stream)
            self.stream = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
