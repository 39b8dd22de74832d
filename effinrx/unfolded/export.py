"""ONNX export of the PGD-Net detector (fp32 and int8) and ONNX Runtime CPU timing (claims K3/L8).

* fp32: the trained PGD-Net (no fake-quant nodes) converted with tf2onnx; inputs ``y`` float32
  ``[B, M]``, ``h`` float32 ``[B, M, N]``; output ``x_hat`` float32 ``[B, N]``.
* int8: the fp32 ONNX graph quantised *statically* by ONNX Runtime (QDQ, int8 activations, MatMul
  nodes, calibrated on generated data). Its scales are static, so it cannot express KAQ's
  SNR-adaptive step; the graph structure and therefore the latency are those of an int8 PGD-Net.
  The SNR input is dropped because the fp32 network does not use it.

Timing goes through the project's CPU engine (``effinrx.engines.ort.OrtEngine``), 1 intra-op
thread so the 2-core CI box gives stable numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from effinrx.errors import ConfigError, NotAvailableError
from effinrx.export.onnx import op_counts  # noqa: F401  (the KAQ benchmark reads it from here)


def export_fp32(net, cfg, path) -> Path:
    """Write the fp32 PGD-Net as ONNX to ``path`` (opset 17, dynamic batch). Returns the path."""
    from effinrx._tf import tf
    from effinrx.io import atomic_write_bytes

    tf = tf()
    try:
        import tf2onnx
    except ImportError as e:  # pragma: no cover - pinned in the venv
        raise NotAvailableError(f"tf2onnx is needed for ONNX export: {e}") from e
    m, n = cfg.n_real_rx, cfg.n_real_tx
    sig = (tf.TensorSpec([None, m], tf.float32, name="y"), tf.TensorSpec([None, m, n], tf.float32, name="h"))

    @tf.function(input_signature=sig)
    def detector(y, h):
        return tf.identity(net(y, h, tf.zeros_like(y[:, 0])), name="x_hat")

    proto, _ = tf2onnx.convert.from_function(detector, input_signature=sig, opset=17)
    return atomic_write_bytes(path, proto.SerializeToString())


def quantize_int8(fp32_path, out_path, cfg, n_calib: int = 512, seed: int = 5) -> Path:
    """Static int8 QDQ quantisation of an exported PGD-Net with ONNX Runtime; returns ``out_path``.

    Runs in a fresh Python process: importing ModelOpt (done by the NRX deployment path in the same
    session) patches ONNX Runtime's calibrator, after which ``quantize_static`` fails on this graph
    ("Quantization parameters are not specified for param h").
    """
    import subprocess
    import sys
    import tempfile

    from effinrx.unfolded.mimo import generate, to_numpy

    d = to_numpy(generate(cfg, n_calib, (0.0, 25.0), seed=seed))
    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calib.npz"
        np.savez(calib, y=np.asarray(d["y"], np.float32), h=np.asarray(d["h"], np.float32))
        code = ("from effinrx.unfolded.export import _quantize_static; "
                f"_quantize_static({str(fp32_path)!r}, {str(out_path)!r}, {str(calib)!r})")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0 or not Path(out_path).is_file():
        raise ConfigError(f"int8 quantisation of {fp32_path} failed: {r.stderr.strip()[-500:]}")
    return Path(out_path)


def _quantize_static(fp32_path: str, out_path: str, calib_npz: str) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    with np.load(calib_npz) as f:
        y, h = f["y"], f["h"]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"y": y[i:i + 64], "h": h[i:i + 64]} for i in range(0, len(y), 64)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(fp32_path, out_path, Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul"])


def session(path, threads: int = 1):
    """An ONNX Runtime CPU session built by the project's engine (same options as every CPU timing)."""
    from effinrx.engines.ort import OrtEngine

    if not Path(path).is_file():
        raise ConfigError(f"ONNX file {path} does not exist")
    return OrtEngine(path, threads=threads).session


def run(sess, y, h) -> np.ndarray:
    return sess.run(None, {"y": np.asarray(y, np.float32), "h": np.asarray(h, np.float32)})[0]


def time_ort(path, cfg, batch: int, repeats: int = 50, threads: int = 1, seed: int = 3) -> dict:
    """Latency stats (ms, see ``effinrx.engines.base.summarize_ms``) of one ``batch``-sized
    inference on the ORT CPU engine."""
    from effinrx.engines.ort import OrtEngine
    from effinrx.unfolded.mimo import generate, to_numpy

    d = to_numpy(generate(cfg, batch, (10.0, 10.0), seed=seed))
    x = {"y": np.asarray(d["y"], np.float32), "h": np.asarray(d["h"], np.float32)}
    eng = OrtEngine(path, threads=threads, shapes={k: v.shape for k, v in x.items()})
    return {**eng.time(n=repeats, warmup=5, inputs=x), "batch": batch, "repeats": repeats, "threads": threads}
