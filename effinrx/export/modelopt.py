"""ModelOpt explicit Q/DQ quantization of an exported ONNX model, and a Q/DQ coverage report.

What ModelOpt 0.47 allows (``modelopt.onnx.quantization.quantize``): ``int8`` and ``fp8`` take
``calibration_method`` ``entropy`` (default) or ``max``; AWQ (``awq_clip``/``awq_lite``/``awq_full``)
and ``rtn_dq`` exist only for ``int4``, which quantizes MatMul/Gemm weights only. So the blog's
"int8 with AWQ" cannot be reproduced with this ModelOpt: we use ``entropy`` or ``max`` for int8
and say so in the report. On the CPU, calibration runs on ONNX Runtime's CPU EP
(``calibration_eps=["cpu"]``) and the non-quantized parts stay fp32 (``high_precision_dtype``).
FP8 Q/DQ models do not run on ONNX Runtime's CPU EP; they are built and checked structurally only.

ModelOpt also decides per node what it will *not* quantize (``graph_utils`` in 0.47): MatMul/Gemm
with K or N < 16 or a GEMV shape; Conv with fewer than 16 input or output channels unless (int8)
the channels are a multiple of 8 -- a depthwise Conv (weight ``[C, 1, k, k]``) is kept in int8 only
when C % 8 == 0 and k >= 3, and is always excluded in fp8. Such exclusions are silent, hence
:func:`require_coverage`.

TensorRT 11 has no FP16 builder flag: :func:`autocast_fp16` converts the ONNX itself with ModelOpt
AutoCast (``modelopt.onnx.autocast.convert_to_mixed_precision``).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from effinrx.errors import ConfigError, ShapeError
from effinrx.io import atomic_write_bytes, atomic_write_npz

MODES = ("int8", "fp8", "int4")
METHODS = {"int8": ("entropy", "max"), "fp8": ("entropy", "max"),
           "int4": ("awq_clip", "awq_lite", "awq_full", "rtn_dq")}
COMPUTE_OPS = ("Conv", "MatMul", "Gemm", "ConvTranspose")


def save_calibration(path: str | Path, batches: list[dict[str, np.ndarray]]) -> Path:
    """Stack per-slot input dicts along axis 0 and save an ``.npz`` keyed by input name."""

    if not batches:
        raise ConfigError("no calibration slots")
    names = sorted(batches[0])
    data = {k: np.concatenate([b[k] for b in batches], axis=0).astype(np.float32) for k in names}
    return atomic_write_npz(path, data)


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


def onnx_input_names(onnx_path: str | Path) -> list[str]:
    """Graph input names (initializers excluded) of an ONNX file."""
    import onnx

    try:
        g = onnx.load(str(onnx_path), load_external_data=False).graph
    except Exception as e:  # onnx raises DecodeError/OSError; name the file instead
        raise ShapeError(f"cannot read ONNX file {onnx_path}: {type(e).__name__}: {e}") from None
    inits = {i.name for i in g.initializer}
    return [i.name for i in g.input if i.name not in inits]


def quantize(onnx_path: str | Path, out_path: str | Path, mode: str,
             calibration: dict[str, np.ndarray] | str | Path,
             method: str | None = None, nodes_to_exclude: list[str] | None = None) -> Path:
    """Insert explicit Q/DQ nodes with ModelOpt; returns ``out_path``.

    ``calibration``: ``{input name: float32 [N, ...]}`` (N calibration samples stacked on axis 0,
    one sample has the model's batch 1 shape) or the path of an ``.npz`` with those keys.
    ``method``: int8/fp8 ``entropy`` (default) or ``max``; int4 ``awq_clip`` (default),
    ``awq_lite``, ``awq_full`` or ``rtn_dq``. AWQ for int8 is rejected: ModelOpt has none.
    """
    if mode not in MODES:
        raise ConfigError(f"quantize mode {mode!r} not one of {MODES}")
    method = method or METHODS[mode][0]
    if method not in METHODS[mode]:
        raise ConfigError(f"ModelOpt {mode} supports calibration {METHODS[mode]}, not {method!r}")
    names = onnx_input_names(onnx_path)
    if isinstance(calibration, (str, Path)):
        calibration = load_calibration(calibration, names)
    missing = sorted(set(names) - set(calibration))
    if missing:
        raise ShapeError(f"calibration data lacks input(s) {missing} of {onnx_path}; has {sorted(calibration)}")
    calibration = {k: np.ascontiguousarray(calibration[k], dtype=np.float32) for k in names}
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


def layer_inputs(onnx_path: str | Path) -> list[tuple[str, str, bool]]:
    """``(Keras layer name, op of its first compute node, input quantized)`` per layer, in graph order.

    tf2onnx names a layer's nodes ``<model>/<layer>/...``. A layer's input is quantized when its first
    compute node (``COMPUTE_OPS``) has a DequantizeLinear input: the depthwise Conv of a
    SeparableConv2D, the MatMul of a Dense. ShapeError names a compute node whose name has no layer
    part."""
    import onnx

    g = onnx.load(str(onnx_path), load_external_data=False).graph
    producer = {o: n for n in g.node for o in n.output}
    first: dict[str, tuple[str, bool]] = {}
    for n in g.node:
        if n.op_type not in COMPUTE_OPS:
            continue
        parts = n.name.split("/")
        if len(parts) < 3:
            raise ShapeError(f"ONNX file {onnx_path}: compute node {n.name!r} is not named <model>/<layer>/...")
        dq = any(i in producer and producer[i].op_type == "DequantizeLinear" for i in n.input)
        first.setdefault(parts[1], (n.op_type, dq))
    return [(layer, op, dq) for layer, (op, dq) in first.items()]


def float_input_units(onnx_path: str | Path, net) -> list[str]:
    """The units of ``net`` (:func:`effinrx.quant.units.layer_units` names, e.g. ``cgnn_it0/upd0``)
    whose input the Q/DQ model at ``onnx_path`` (an export of ``net``'s architecture) leaves float: the
    layers :mod:`effinrx.quant.w8a8`'s ``keep_float`` would name to quantize what ModelOpt does."""
    from effinrx.quant.units import unit_names_of_exported

    layers = layer_inputs(onnx_path)
    units = unit_names_of_exported(net, [(name, op) for name, op, _ in layers])
    return [u for u, (_, _, dq) in zip(units, layers) if not dq]


def require_coverage(cov: Coverage, expected: dict[str, int]) -> None:
    """Raise ShapeError if fewer nodes of an op type are quantized than ``expected`` says."""
    short = {op: (len(cov.quantized.get(op, [])), n) for op, n in expected.items()
             if len(cov.quantized.get(op, [])) < n}
    if short:
        detail = ", ".join(f"{op}: {got} quantized < {want} expected" for op, (got, want) in short.items())
        raise ShapeError(f"Q/DQ insertion covers fewer layers than expected ({detail}); "
                         f"unquantized: { {op: len(v) for op, v in cov.unquantized.items()} }")


def autocast_fp16(onnx_path: str | Path, out_path: str | Path, keep_io_types: bool = True,
                  nodes_to_exclude: list[str] | None = None) -> Path:
    """FP16 ONNX for TensorRT 11 (no FP16 builder flag) via ModelOpt AutoCast.

    ``keep_io_types=True`` keeps the float32 inputs/outputs (Cast nodes at the boundary), so the
    engine's interface is unchanged. Nodes whose activations or initializers exceed the fp16 range
    stay fp32 (AutoCast's own data_max/init_max rules).
    """
    from modelopt.onnx.autocast import convert_to_mixed_precision

    model = convert_to_mixed_precision(str(onnx_path), low_precision_type="fp16",
                                       nodes_to_exclude=nodes_to_exclude, keep_io_types=keep_io_types,
                                       providers=["cpu"])
    return atomic_write_bytes(out_path, model.SerializeToString())


def fp16_fraction(onnx_path: str | Path) -> float:
    """Fraction of float initializer elements stored as float16 (1.0 = fully converted)."""
    import onnx

    n16 = n = 0
    for t in onnx.load(str(onnx_path)).graph.initializer:
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
            k = int(np.prod(t.dims)) if t.dims else 1
            n += k
            n16 += k if t.data_type == onnx.TensorProto.FLOAT16 else 0
    return n16 / n if n else 0.0
