"""The GPU runtimes under the TensorRT engine: importing TensorRT and cuda-python, the CUDA device
query (a GPU is present only when ``cudaGetDeviceCount() >= 1``; TensorRT importing is not enough),
compute capability, CUDA-graph capture/replay and CUDA-event timing. Nothing here imports TensorRT
or cuda-python at module level; ``effinrx.device`` asks here without importing the engine.

The timing helpers take the cuda-python runtime ``cr`` as an argument so tests can pass stand-ins
(``tests/test_trt_timing.py`` on CPU, ``tests/gpu/test_cuda_timing.py`` on a real device).
"""
from __future__ import annotations

import functools

from effinrx.engines.base import summarize_ms
from effinrx.errors import NotAvailableError

#: what this module uses of cuda-python's runtime (checked against real cuda-bindings by .ci/trt-api)
CUDART_API = ("cudaDeviceAttr", "cudaDeviceGetAttribute", "cudaEventCreate", "cudaEventDestroy",
              "cudaEventElapsedTime", "cudaEventRecord", "cudaEventSynchronize", "cudaFree",
              "cudaGetDeviceCount", "cudaGraphDestroy", "cudaGraphExecDestroy",
              "cudaGraphInstantiate", "cudaGraphLaunch", "cudaMalloc", "cudaMemcpy",
              "cudaMemcpyAsync", "cudaMemcpyKind", "cudaStreamBeginCapture",
              "cudaStreamCaptureMode", "cudaStreamCreate", "cudaStreamDestroy",
              "cudaStreamEndCapture", "cudaStreamSynchronize")


def import_tensorrt():
    """Import tensorrt (``tensorrt``, or ``tensorrt_bindings`` as the bare bindings wheel names it)
    or raise NotAvailableError carrying the import error's text."""
    import importlib

    errors = []
    for mod in ("tensorrt", "tensorrt_bindings"):
        try:
            return importlib.import_module(mod)
        except Exception as e:  # ImportError, or OSError from missing CUDA libraries
            errors.append(f"{type(e).__name__}: {e}")
    raise NotAvailableError(f"TensorRT is not available: {errors[0]}")


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


@functools.lru_cache(maxsize=1)
def cuda_device_reason() -> str | None:
    """None when cuda-python sees at least one CUDA device, else why not: "no CUDA device:
    <cuda-python import error | cudaGetDeviceCount error | count 0>"."""
    try:
        cr = import_cudart()
    except NotAvailableError as e:
        return f"no CUDA device: {e}"
    try:
        n = cuda_check(cr.cudaGetDeviceCount())
    except NotAvailableError as e:  # e.g. cudaErrorInsufficientDriver (35) on a CPU box
        return f"no CUDA device: cudaGetDeviceCount: {e}"
    except Exception as e:  # a broken driver install raises its own types
        return f"no CUDA device: cudaGetDeviceCount: {type(e).__name__}: {e}"
    return None if int(n) >= 1 else "no CUDA device: cudaGetDeviceCount() = 0"


def compute_capability(device: int = 0) -> tuple[int, int]:
    """(major, minor) compute capability of CUDA device ``device`` (cuda-python)."""
    cr = import_cudart()
    attr = cr.cudaDeviceAttr
    return (int(cuda_check(cr.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMajor, device))),
            int(cuda_check(cr.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMinor, device))))


#: the lowest compute capability whose tensor cores run a precision (TensorRT support matrix)
MIN_CAPABILITY = {"fp8": (8, 9), "sparse": (8, 0)}


def unsupported_here(precision: str, sparse: bool = False) -> str | None:
    """Why this GPU cannot run ``precision`` (fp8 needs Ada/Hopper, 2:4 sparsity Ampere or newer),
    or None. Only the hardware's capability, never a build error, makes a variant unmeasurable."""
    need = [(k, MIN_CAPABILITY[k]) for k in (("fp8",) if precision == "fp8" else ()) + (("sparse",) if sparse else ())]
    if not need:
        return None
    cc = compute_capability()
    for what, want in need:
        if cc < want:
            return (f"{what} needs compute capability >= {want[0]}.{want[1]}; this GPU has "
                    f"{cc[0]}.{cc[1]}")
    return None


def cuda_check(ret):
    """Unwrap a cuda-python call's ``(err, value)`` / ``(err,)`` result; raise NotAvailableError
    naming the error when ``err`` is not success."""
    err = ret[0] if isinstance(ret, tuple) else ret
    if int(getattr(err, "value", err)) != 0:  # cudaError_t enum (cuda-python) or a plain int
        raise NotAvailableError(f"CUDA call failed with {err}")
    return ret[1] if isinstance(ret, tuple) and len(ret) == 2 else ret


def stream_handle(stream):
    """The integer handle TensorRT's ``execute_async_v3(stream_handle: int)`` takes, from a
    cuda-python ``cudaStream_t`` (anything without ``int()`` is passed through, e.g. test fakes)."""
    try:
        return int(stream)
    except (TypeError, ValueError):
        return stream


class CudaGraph:
    """A captured, instantiated CUDA graph: ``graph()`` replays it on ``stream``; ``close()``
    destroys the executable graph and the graph."""

    def __init__(self, cr, graph, exe, stream, check):
        self.cr, self.graph, self.exe, self.stream, self.check = cr, graph, exe, stream, check

    def __call__(self):
        self.check(self.cr.cudaGraphLaunch(self.exe, self.stream))

    def close(self):
        if self.exe is not None:
            self.cr.cudaGraphExecDestroy(self.exe)
        if self.graph is not None:
            self.cr.cudaGraphDestroy(self.graph)
        self.exe = self.graph = None


def cuda_graph_launcher(cr, context, stream, check):
    """Capture one ``context.execute_async_v3(stream)`` into a CUDA graph (cuda-python runtime
    ``cr``); returns a :class:`CudaGraph` that replays it, or a string saying why capture failed.

    TensorRT wants one plain enqueue before capture (it may allocate or update state lazily);
    capture mode is thread-local so other threads' CUDA calls do not invalidate it. An enqueue that
    raises or returns False during capture is the reported cause, not the failing end of the
    capture it leaves behind (an empty graph would replay in ~0 ms)."""
    graph, handle = None, stream_handle(stream)
    try:
        if not context.execute_async_v3(handle):
            raise NotAvailableError("execute_async_v3 returned False before capture")
        check(cr.cudaStreamSynchronize(stream))
        check(cr.cudaStreamBeginCapture(stream, cr.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
        cause = None
        try:
            if not context.execute_async_v3(handle):
                cause = NotAvailableError("execute_async_v3 returned False during capture")
        except Exception as e:  # reported below, after the capture is ended
            cause = e
        end = cr.cudaStreamEndCapture(stream)  # always end a started capture
        if cause is not None:
            try:
                graph = check(end)
            except Exception:  # the enqueue's error is the one to report
                graph = None
            raise cause
        graph = check(end)
        exe = check(cr.cudaGraphInstantiate(graph, 0))
    except Exception as e:  # capture unsupported by this engine/driver: time the plain enqueue
        if graph is not None:
            cr.cudaGraphDestroy(graph)
        return f"CUDA graph capture failed: {type(e).__name__}: {e}"
    return CudaGraph(cr, graph, exe, stream, check)


def time_with_events(cr, stream, launch, n: int, warmup: int, check, raw: bool = False):
    """Run ``launch()`` ``warmup`` times, then time ``n`` launches between two CUDA events on
    ``stream``; returns :func:`summarize_ms` stats (or the list of ms with ``raw``)."""
    start, stop = check(cr.cudaEventCreate()), check(cr.cudaEventCreate())
    try:
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
    finally:
        cr.cudaEventDestroy(start)
        cr.cudaEventDestroy(stop)
    return samples if raw else summarize_ms(samples)
