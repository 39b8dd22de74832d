"""ModelOpt explicit Q/DQ quantization of an exported ONNX model, and a Q/DQ coverage report.

What ModelOpt 0.47 allows (``modelopt.onnx.quantization.quantize``): ``int8`` and ``fp8`` take
``calibration_method`` ``entropy`` (default) or ``max``; AWQ (``awq_clip``/``awq_lite``/``awq_full``)
and ``rtn_dq`` exist only for ``int4``, which quantizes MatMul/Gemm weights only. So the blog's
"int8 with AWQ" cannot be reproduced with this ModelOpt: we use ``entropy`` or ``max`` for int8
and say so in the report. On the CPU, calibration runs on ONNX Runtime's CPU EP
(``calibration_eps=["cpu"]``) and the non-quantized parts stay fp32 (``high_precision_dtype``).
FP8 Q/DQ models do not run on ONNX Runtime's CPU EP; they are built and checked structurally only.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from effinrx.errors import ConfigError, ShapeError

MODES = ("int8", "fp8", "int4")
METHODS = {"int8": ("entropy", "max"), "fp8": ("entropy", "max"),
           "int4": ("awq_clip", "awq_lite", "awq_full", "rtn_dq")}
COMPUTE_OPS = ("Conv", "MatMul", "Gemm", "ConvTranspose")


def save_calibration(path: str | Path, batches: list[dict[str, np.ndarray]]) -> Path:
    """Stack per-slot input dicts along axis 0 and save an ``.npz`` keyed by input name."""
    from effinrx.io import atomic_write_bytes
    import io

    if not batches:
        raise ConfigError("no calibration slots")
    names = sorted(batches[0])
    data = {k: np.concatenate([b[k] for b in batches], axis=0).astype(np.float32) for k in names}
    buf = io.BytesIO()
    np.savez(buf, **data)
    return atomic_write_bytes(path, buf.getvalue())


def load_calibration(path: str | Path, input_names) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ShapeError(f"calibration file {path}: cannot read ({e})") from None
    missing = sorted(set(input_names) - set(data))
    if missing:
        raise ShapeError(f"calibration file {path} lacks input(s) {missing}; has {sorted(data)}")
    return {k: data[k] for k in input_names}


def quantize(onnx_path: str | Path, out_path: str | Path, mode: str, calibration: dict[str, np.ndarray],
             method: str | None = None, nodes_to_exclude: list[str] | None = None) -> Path:
    """Insert explicit Q/DQ nodes with ModelOpt; returns ``out_path``."""
    if mode not in MODES:
        raise ConfigError(f"quantize mode {mode!r} not one of {MODES}")
    method = method or METHODS[mode][0]
    if method not in METHODS[mode]:
        raise ConfigError(f"ModelOpt {mode} supports calibration {METHODS[mode]}, not {method!r}")
    from modelopt.onnx.quantization import quantize as mo_quantize

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp.onnx")
    mo_quantize(str(onnx_path), quantize_mode=mode, calibration_data=calibration, calibration_method=method,
                calibration_eps=["cpu"], high_precision_dtype="fp32", output_path=str(tmp),
                nodes_to_exclude=nodes_to_exclude, log_level="ERROR")
    if not tmp.exists():
        raise ConfigError(f"ModelOpt produced no output for {onnx_path} ({mode}/{method})")
    tmp.replace(out_path)  # atomic: the output is complete or absent
    return out_path


@dataclass
class Coverage:
    """Q/DQ coverage of a model: which compute nodes see dequantized inputs/weights."""

    qdq_by_consumer: dict = field(default_factory=dict)   # op type -> number of DQ feeding it
    quantized: dict = field(default_factory=dict)         # op type -> [node names with a DQ input]
    unquantized: dict = field(default_factory=dict)       # op type -> [node names without]
    q_nodes: int = 0
    dq_nodes: int = 0

    def summary(self) -> dict:
        ops = sorted(set(self.quantized) | set(self.unquantized))
        return {op: {"quantized": len(self.quantized.get(op, [])), "unquantized": len(self.unquantized.get(op, []))}
                for op in ops}


def coverage(onnx_path: str | Path) -> Coverage:
    """Count Q/DQ nodes and list Conv/MatMul/Gemm nodes with and without a DequantizeLinear input."""
    import onnx

    g = onnx.load(str(onnx_path)).graph
    producer = {o: n for n in g.node for o in n.output}
    cov = Coverage()
    consumers = Counter()
    for n in g.node:
        cov.q_nodes += n.op_type == "QuantizeLinear"
        cov.dq_nodes += n.op_type == "DequantizeLinear"
        dq_inputs = [i for i in n.input if i in producer and producer[i].op_type == "DequantizeLinear"]
        if dq_inputs:
            consumers[n.op_type] += len(dq_inputs)
        if n.op_type in COMPUTE_OPS:
            bucket = cov.quantized if dq_inputs else cov.unquantized
            bucket.setdefault(n.op_type, []).append(n.name)
    cov.qdq_by_consumer = dict(consumers)
    return cov


def depthwise_conv_names(onnx_path: str | Path) -> set[str]:
    """Names of Conv nodes with group > 1 (depthwise), which the blog reports left unquantized."""
    import onnx

    out = set()
    for n in onnx.load(str(onnx_path)).graph.node:
        if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute):
            out.add(n.name)
    return out


def require_coverage(cov: Coverage, expected: dict[str, int]) -> None:
    """Raise ShapeError if fewer nodes of an op type are quantized than ``expected`` says."""
    short = {op: (len(cov.quantized.get(op, [])), n) for op, n in expected.items()
             if len(cov.quantized.get(op, [])) < n}
    if short:
        detail = ", ".join(f"{op}: {got} quantized < {want} expected" for op, (got, want) in short.items())
        raise ShapeError(f"Q/DQ insertion covers fewer layers than expected ({detail}); "
                         f"unquantized: { {op: len(v) for op, v in cov.unquantized.items()} }")
