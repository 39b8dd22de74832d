"""Weight-only post-training quantization (PTQ) of an NRX model's kernels.

Each Dense / SeparableConv2D kernel (depthwise, pointwise, dense) is quantize-dequantized with
:func:`effinrx.quant.formats.fake_quant`; biases stay float32 (TensorRT keeps them float too).
The result is a new list of float32 arrays in reference ``get_core_weights()`` order plus a
per-layer table (SQNR dB, scale summary, verdict vs ``SQNR_THRESHOLDS_DB``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from effinrx.errors import ConfigError
from effinrx.quant.formats import DEPTHWISE_CHANNEL_AXIS, QuantSpec, fake_quant, sqnr_db, sqnr_verdict

#: method name -> (format, granularity)
METHODS = {
    "fp16": ("fp16", "per-tensor"),
    "fp8": ("fp8_e4m3", "per-tensor"),
    "fp8-pc": ("fp8_e4m3", "per-channel"),
    "int8": ("int8", "per-tensor"),
    "int8-pc": ("int8", "per-channel"),
    "int4": ("int4", "per-tensor"),
    "int4-pc": ("int4", "per-channel"),
    "fp4": ("fp4_e2m1", "per-tensor"),
    "fp4-pc": ("fp4_e2m1", "per-channel"),
}


@dataclass
class LayerRow:
    """One row of the PTQ table: which variable, its kind, the format applied and the SQNR."""
    index: int
    name: str
    kind: str          # "depthwise" | "pointwise" | "dense" | "bias"
    fmt: str           # format applied, "fp32" when kept float
    sqnr_db: float
    scale_max: float | None
    verdict: str


def _kind(var_name: str) -> str:
    for k in ("depthwise_kernel", "pointwise_kernel", "kernel", "bias"):
        if k in var_name:
            return {"depthwise_kernel": "depthwise", "pointwise_kernel": "pointwise",
                    "kernel": "dense", "bias": "bias"}[k]
    raise ConfigError(f"ptq: cannot tell the kind of variable {var_name!r}")


def quantize_weights(weights, names, method: str, *, keep_depthwise: bool = False,
                     keep_first_last: bool = False) -> tuple[list, list[LayerRow]]:
    """Quantize-dequantize the kernels in ``weights``.

    Input: ``weights`` list of float arrays (reference order), ``names`` the variable names
    (same length, used to tell depthwise/pointwise/dense/bias apart), ``method`` a key of
    :data:`METHODS`. Output: (list of float32 arrays of the same shapes, per-variable rows).
    ``keep_depthwise`` leaves depthwise kernels float; ``keep_first_last`` leaves the first and
    last kernels float (the usual sensitive layers).
    """
    if method not in METHODS:
        raise ConfigError(f"ptq method {method!r} not one of {', '.join(METHODS)}")
    if len(weights) != len(names):
        raise ConfigError(f"ptq: {len(weights)} weights but {len(names)} names")
    fmt, gran = METHODS[method]
    kinds = [_kind(n) for n in names]
    kernel_idx = [i for i, k in enumerate(kinds) if k != "bias"]
    edge = {kernel_idx[0], kernel_idx[-1]} if (keep_first_last and kernel_idx) else set()
    out, rows = [], []
    for i, (w, n, k) in enumerate(zip(weights, names, kinds)):
        w = np.asarray(w, dtype=np.float32)
        keep = k == "bias" or (keep_depthwise and k == "depthwise") or i in edge
        if keep:
            out.append(w.copy())
            rows.append(LayerRow(i, n, k, "fp32", float("inf"), None, "ok"))
            continue
        axis = DEPTHWISE_CHANNEL_AXIS if k == "depthwise" else -1
        spec = QuantSpec(fmt=fmt, granularity=gran, axis=axis)
        wq, s, _ = fake_quant(w, spec)
        q = sqnr_db(w, wq)
        out.append(wq.astype(np.float32))
        rows.append(LayerRow(i, n, k, fmt, q, None if s is None else float(np.max(s)),
                             sqnr_verdict(fmt, q)))
    return out, rows


def quantize_model(net, method: str, **kw) -> tuple[list, list[LayerRow]]:
    """:func:`quantize_weights` on a CGNN built by :func:`effinrx.receivers.nrx.load_model`;
    returns the quantized weights (apply with ``net2.set_core_weights``) and the table.
    The model passed in is not modified."""
    vs = net.core_variables()
    return quantize_weights([v.numpy() for v in vs], [v.name for v in vs], method, **kw)


def table_text(rows: list[LayerRow]) -> str:
    """Plain-text table of :class:`LayerRow` rows."""
    lines = [f"{'#':>3} {'kind':<10} {'fmt':<9} {'SQNR dB':>8} {'scale':>10} verdict  name"]
    for r in rows:
        sc = "-" if r.scale_max is None else f"{r.scale_max:.3g}"
        lines.append(f"{r.index:>3} {r.kind:<10} {r.fmt:<9} {r.sqnr_db:>8.2f} {sc:>10} "
                     f"{r.verdict:<8} {r.name}")
    return "\n".join(lines)
