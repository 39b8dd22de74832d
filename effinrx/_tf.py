"""The one place TensorFlow is imported, so ``TF_USE_LEGACY_KERAS`` is always set first.

Start-up noise: a CUDA build of TensorFlow prints, on a CPU-only host, about 8 lines of
``Unable to register cuDNN factory``, ``computation placer already registered``, ``failed call to
cuInit ... (303)`` through absl/XLA logging before ``TF_CPP_MIN_LOG_LEVEL`` is read, so setting
that variable (done with ``setdefault`` in the package ``__init__``) is not enough. :func:`tf` makes
the first import with file descriptor 2 redirected to a temporary file, initialises the devices
inside that window (that is where cuInit is called), then writes back every captured line that is
not one of the known start-up messages (:data:`NOISE`; the cuInit line only where the host has no
NVIDIA device node), and drops TensorFlow's Python deprecation notices. XLA's INFO lines come
later, at the first jit compile: the CLI runs each command inside :func:`live_filtered_stderr`,
which drops them line by line and passes everything else through at once. ``EFFINRX_TF_QUIET=0``
turns the filters off.
"""
import contextlib
import os
import re
import sys

#: start-up lines of a CUDA TensorFlow build that carry no information for the user
NOISE = (
    re.compile(r"Unable to register cu(DNN|FFT|BLAS) factory"),
    re.compile(r"computation placer already registered"),
    re.compile(r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"TF-TRT Warning: Could not find TensorRT"),
    re.compile(r"This TensorFlow binary is optimized to use available CPU instructions"),
    re.compile(r"To enable the following instructions: .* rebuild TensorFlow"),
)
#: only noise where no NVIDIA device node exists (on a GPU host it is a real driver problem)
NOISE_CPU_ONLY = (re.compile(r"failed call to cuInit"),)


def _has_nvidia_device() -> bool:
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")


def _is_noise(line: str, cpu_only: bool) -> bool:
    pats = NOISE + (NOISE_CPU_ONLY if cpu_only else ())
    return any(p.search(line) for p in pats)


#: INFO lines TensorFlow's grappler prints (through absl, ignoring TF_CPP_MIN_LOG_LEVEL) each time
#: a graph is optimised for export (tf2onnx): "Number of eligible GPUs", "Starting new session"
GRAPPLER_NOISE = (
    re.compile(r"devices\.cc:\d+\] Number of eligible GPUs"),
    re.compile(r"single_machine\.cc:\d+\] Starting new session"),
)


#: INFO lines of the first XLA compile (Sionna's ``tf.function(jit_compile=True)``, used by the
#: K-best/LMMSE receivers), printed through absl whatever ``TF_CPP_MIN_LOG_LEVEL`` says
RUNTIME_NOISE = (
    re.compile(r"^I\d{4} .*\] XLA service \S+ initialized for platform"),
    re.compile(r"^I\d{4} .*\]\s+StreamExecutor device \(\d+\): "),
    re.compile(r"^I\d{4} .*\] Compiled cluster using XLA!"),
)
# where a chunk is cut into pieces judged one by one: after \r / \n, and before an absl line
# prefix ("I0000 00:00:17.5 ...") or absl's first-use warning, which may follow a tqdm update
# that has no line end
_CUT = re.compile(rb"(?<=[\r\n])|(?=[IWEF]\d{4} \d\d:\d\d:\d\d\.\d)|(?=WARNING: All log messages before)")


def filter_chunk(data: bytes, cpu_only: bool) -> bytes:
    """``data`` without the pieces (lines, \\r-terminated progress updates) that are known noise
    (:data:`NOISE`, :data:`RUNTIME_NOISE`; the cuInit line only where ``cpu_only``); every other
    byte is kept as is, an unterminated tail included (a progress bar must show at once)."""
    keep = []
    for piece in _CUT.split(data):
        if not piece:
            continue
        text = piece.decode("utf-8", "replace")
        if _is_noise(text, cpu_only) or any(p.search(text) for p in RUNTIME_NOISE):
            continue
        keep.append(piece)
    return b"".join(keep)


def _pump() -> None:
    """The filter process of :func:`live_filtered_stderr`: stdin -> :func:`filter_chunk` -> fd 2,
    chunk by chunk, until every writer has closed the pipe."""
    cpu_only = not _has_nvidia_device()
    while True:
        try:
            data = os.read(0, 65536)
        except InterruptedError:  # pragma: no cover
            continue
        if not data:
            return
        out = filter_chunk(data, cpu_only)
        while out:
            try:
                out = out[os.write(2, out):]
            except OSError:  # stderr gone (closed terminal): nothing left to show it on
                return


@contextlib.contextmanager
def _swap_fd2():
    """Yields ``(saved, restore)``: ``saved`` a duplicate of the real fd 2 (None where there is no
    real fd 2, e.g. an embedded interpreter) and ``restore()``, which puts it back on fd 2
    (idempotent; done on exit in any case). The scaffold of the two stderr filters below."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield None, lambda: None
        return
    done = []

    def restore():
        if not done:
            done.append(True)
            try:
                sys.stderr.flush()
            except (OSError, ValueError):  # pragma: no cover
                pass
            os.dup2(saved, 2)

    try:
        yield saved, restore
    finally:
        restore()
        os.close(saved)


@contextlib.contextmanager
def live_filtered_stderr():
    """For the whole block, file descriptor 2 is a pipe into a small filter process that writes
    every piece of output to the real stderr as it arrives, except known TensorFlow/XLA noise
    (:func:`filter_chunk`). A process rather than a thread, because a thread dies with a crashing
    interpreter and would swallow the very lines (a C++ CHECK failure) that explain the crash; it
    runs in its own session so a Ctrl-C meant for the command does not kill it. No-op without a
    real fd 2 or where the filter cannot start."""
    import subprocess

    with _swap_fd2() as (saved, restore):
        proc = None
        if saved is not None:
            try:
                proc = subprocess.Popen([sys.executable, "-c", "from effinrx._tf import _pump; _pump()"],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=saved,
                                        start_new_session=True, env={**os.environ, "PYTHONPATH": _pythonpath()})
            except OSError:  # cannot start a process: unfiltered output beats none
                proc = None
        if proc is None:
            yield
            return
        os.dup2(proc.stdin.fileno(), 2)
        try:
            yield
        finally:
            restore()
            proc.stdin.close()
            try:  # the filter ends once it has written what it got (later if a child keeps the pipe open)
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass


def _pythonpath() -> str:
    """PYTHONPATH for the filter process: this ``effinrx`` first, so it imports the same code."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.pathsep.join([root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


@contextlib.contextmanager
def filtered_stderr(extra=()):
    """Inside the block, file descriptor 2 goes to a temporary file; on exit every captured line
    that is not known noise (:data:`NOISE`, ``extra`` patterns; the cuInit line only on a host
    without an NVIDIA device) is written back to stderr, also when the block raises. C++ logging
    writes to fd 2 directly, so redirecting ``sys.stderr`` would not catch it."""
    import tempfile

    with _swap_fd2() as (saved, restore):
        if saved is None:
            yield
            return
        with tempfile.TemporaryFile(mode="w+b") as cap:
            os.dup2(cap.fileno(), 2)
            try:
                yield
            finally:
                restore()
                cap.seek(0)
                text = cap.read().decode("utf-8", "replace")
                cpu_only = not _has_nvidia_device()
                pats = tuple(extra)
                keep = [ln for ln in text.splitlines()
                        if ln.strip() and not _is_noise(ln, cpu_only) and not any(p.search(ln) for p in pats)]
                if keep:
                    sys.stderr.write("\n".join(keep) + "\n")
                    sys.stderr.flush()


class _DropDeprecations:
    """logging filter: TensorFlow's Python deprecation notices (Sionna calls ``tf.gather`` with
    ``validate_indices``: 3 lines "... is deprecated and will be removed in a future version")."""

    def filter(self, record) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover - a malformed record: keep it
            return True
        return "is deprecated and will be removed" not in msg


def _quiet_import():
    """Import tensorflow (and list its devices: cuInit) inside :func:`filtered_stderr`; drop its
    Python deprecation notices (:class:`_DropDeprecations`)."""
    with filtered_stderr():
        import tensorflow

        tensorflow.config.list_physical_devices()  # cuInit happens here
    try:
        tensorflow.get_logger().addFilter(_DropDeprecations())
    except Exception:  # pragma: no cover - logger API change
        pass
    return tensorflow


def tf():
    """Return the ``tensorflow`` module (imported on first use, Keras 2 via tf_keras)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    mod = sys.modules.get("tensorflow")
    if mod is not None and hasattr(mod, "config"):
        return mod
    if os.environ.get("EFFINRX_TF_QUIET", "1") != "0":
        return _quiet_import()
    import tensorflow  # deliberate lazy import

    return tensorflow


def keras():
    """Return tf_keras (Keras 2), the Keras that tensorflow-model-optimization supports."""
    tf()
    import tf_keras

    return tf_keras


def set_seeds(seed: int) -> None:
    """Seed numpy, Python's random, and TensorFlow/Sionna if they are already imported."""
    import random
    import sys

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(seed)
    if "sionna" in sys.modules or "sionna.phy" in sys.modules:
        try:
            import sionna.phy as sp

            sp.config.seed = seed
        except Exception:  # pragma: no cover - sionna absent or API change
            pass


@contextlib.contextmanager
def eager(on: bool = True):
    """Run ``tf.function``s eagerly inside the block (when ``on``), then restore the previous
    setting. Needed where a layer reads Python state per call (W8A8 calibration, switching one
    layer's quantizer): a traced graph keeps the state it saw first."""
    cfg = tf().config
    prev = cfg.functions_run_eagerly()
    if on:
        cfg.run_functions_eagerly(True)
    try:
        yield
    finally:
        cfg.run_functions_eagerly(prev)
