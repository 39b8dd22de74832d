"""ONNX export of the PGD-Net detector (fp32 and int8) and ONNX Runtime CPU timing (claims K3/L8).

* fp32: the trained PGD-Net (no fake-quant nodes) converted with tf2onnx; inputs ``y`` float32
  ``[B, M]``, ``h`` float32 ``[B, M, N]``, ``snr_db`` float32 ``[B]`` (the preconditioner and the
  prox temperature depend on the noise level); output ``x_hat`` float32 ``[B, N]``. The per-layer
  ``[N, N]`` preconditioner is a ``MatrixInverse``, exported as ONNX Runtime's ``com.microsoft``
  ``Inverse`` op (standard ONNX has no matrix inverse), so the graph runs on ONNX Runtime only.
* int8: the fp32 ONNX graph quantised *statically* by ONNX Runtime (QDQ, int8 activations, the
  per-layer MatMul nodes, calibrated on generated data; the Gram matrix feeding the inverse stays
  fp32, see :func:`preconditioner_matmuls`). Its scales are static, so it cannot express KAQ's
  SNR-adaptive step; the graph structure and therefore the latency are those of an int8 PGD-Net.

Timing goes through the project's CPU engine (``effinrx.engines.ort.OrtEngine``), 1 intra-op
thread so the 2-core CI box gives stable numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from effinrx.errors import ConfigError, NotAvailableError
from effinrx.export.onnx import op_counts  # noqa: F401  (the KAQ benchmark reads it from here)
from effinrx.engines.ort import OrtEngine
from effinrx.io import atomic_write_bytes
from effinrx.receivers.mimo.system import generate, to_numpy


def export_fp32(net, cfg, path) -> Path:
    """Write the fp32 PGD-Net as ONNX to ``path`` (opset 17, dynamic batch). Returns the path."""
    from effinrx._tf import tf

    tf = tf()
    try:
        import tf2onnx
    except ImportError as e:  # pragma: no cover - pinned in the venv
        raise NotAvailableError(f"tf2onnx is needed for ONNX export: {e}") from e
    from onnx import helper

    m, n = cfg.n_real_rx, cfg.n_real_tx
    sig = (tf.TensorSpec([None, m], tf.float32, name="y"), tf.TensorSpec([None, m, n], tf.float32, name="h"),
           tf.TensorSpec([None], tf.float32, name="snr_db"))

    @tf.function(input_signature=sig)
    def detector(y, h, snr_db):
        return tf.identity(net(y, h, snr_db), name="x_hat")

    proto, _ = tf2onnx.convert.from_function(detector, input_signature=sig, opset=17,
                                             extra_opset=[helper.make_opsetid("com.microsoft", 1)])
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

    d = to_numpy(generate(cfg, n_calib, (0.0, 25.0), seed=seed))
    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calib.npz"
        np.savez(calib, y=np.asarray(d["y"], np.float32), h=np.asarray(d["h"], np.float32),
                 snr_db=np.asarray(d["snr_db"], np.float32))
        code = ("from effinrx.export.mimo_onnx import _quantize_static; "
                f"_quantize_static({str(fp32_path)!r}, {str(out_path)!r}, {str(calib)!r})")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0 or not Path(out_path).is_file():
        raise ConfigError(f"int8 quantisation of {fp32_path} failed: {r.stderr.strip()[-500:]}")
    return Path(out_path)


def _quantize_static(fp32_path: str, out_path: str, calib_npz: str) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    with np.load(calib_npz) as f:
        y, h, snr = f["y"], f["h"], f["snr_db"]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"y": y[i:i + 64], "h": h[i:i + 64], "snr_db": snr[i:i + 64]}
                            for i in range(0, len(y), 64)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(fp32_path, out_path, Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul"], nodes_to_exclude=preconditioner_matmuls(fp32_path))


def preconditioner_matmuls(path) -> list[str]:
    """Names of the MatMul nodes upstream of an ``Inverse`` (the Gram matrix ``H^T H``): they stay
    fp32. An int8 Gram matrix of a near-singular 16x16 channel makes its inverse meaningless
    (measured: 8 % of the symbols flip against fp32 with it quantised); the per-layer MatMuls
    (``H x``, ``H^T r``, ``D g``) are the int8 part."""
    import onnx

    g = onnx.load(str(path)).graph
    producer = {o: n for n in g.node for o in n.output}
    out, todo = set(), [i for n in g.node if n.op_type == "Inverse" for i in n.input]
    seen = set()
    while todo:
        t = todo.pop()
        n = producer.get(t)
        if n is None or n.name in seen:
            continue
        seen.add(n.name)
        if n.op_type == "MatMul":
            out.add(n.name)
            continue  # its inputs are h itself: stop here
        todo.extend(n.input)
    return sorted(out)


def session(path, threads: int = 1):
    """An ONNX Runtime CPU session built by the project's engine (same options as every CPU timing)."""
    if not Path(path).is_file():
        raise ConfigError(f"ONNX file {path} does not exist")
    return OrtEngine(path, threads=threads).session


def run(sess, y, h, snr_db) -> np.ndarray:
    """``x_hat`` float32 ``[B, N]`` of an exported detector for ``y [B, M]``, ``h [B, M, N]``, ``snr_db [B]``."""
    return sess.run(None, {"y": np.asarray(y, np.float32), "h": np.asarray(h, np.float32),
                           "snr_db": np.asarray(snr_db, np.float32)})[0]


def time_ort(path, cfg, batch: int, repeats: int = 50, threads: int = 1, seed: int = 3) -> dict:
    """Latency stats (ms, see ``effinrx.engines.base.summarize_ms``) of one ``batch``-sized
    inference on the ORT CPU engine."""
    d = to_numpy(generate(cfg, batch, (10.0, 10.0), seed=seed))
    x = {"y": np.asarray(d["y"], np.float32), "h": np.asarray(d["h"], np.float32),
         "snr_db": np.asarray(d["snr_db"], np.float32)}
    eng = OrtEngine(path, threads=threads, shapes={k: v.shape for k, v in x.items()})
    return {**eng.time(n=repeats, warmup=5, inputs=x), "batch": batch, "repeats": repeats, "threads": threads}
