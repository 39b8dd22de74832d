"""Number formats and uniform quantizers in pure numpy.

Integer quantization follows seed 001 (symmetric, zero-point 0)::

    signed:   s = max|x| / (2^(b-1) - 1),   q = clip(round(x / s), -(2^(b-1)) [+1 if narrow], 2^(b-1) - 1)
    unsigned: s = max(x)  / (2^b - 1),      q = clip(round(x / s), 0, 2^b - 1)
    x_hat = s * (q - z)

plus the asymmetric variant (min/max with an integer zero-point). Scales are per tensor or per
channel along any axis. Floating-point formats (fp16, fp8 E4M3/E5M2, fp4 E2M1) are rounded to
nearest-even with saturation to the largest finite value, computed here from the format's bit
layout (ml_dtypes serves as the independent oracle in the tests). ``round`` is numpy's
half-to-even, which is what hardware quantizers and ONNX ``QuantizeLinear`` use.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from effinrx.errors import ConfigError, ShapeError

INT_FORMATS = {f"int{b}": b for b in range(2, 9)}
FLOAT_FORMATS = ("fp32", "fp16", "fp8_e4m3", "fp8_e5m2", "fp4_e2m1")
FORMATS = tuple(INT_FORMATS) + FLOAT_FORMATS
GRANULARITIES = ("per-tensor", "per-channel")
#: per-channel axis of a depthwise kernel [kh, kw, C, mult] (its channels C; other kernels: last axis).
#: ONNX/TensorRT store it as Conv weight [C*mult, 1, kh, kw] with per-output-channel scales.
DEPTHWISE_CHANNEL_AXIS = -2

# SQNR floors (dB) a weight tensor is expected to reach; below them, quantization is "lossy" in
# reports. Roughly 6 dB per bit minus crest-factor loss of Gaussian-like weights.
SQNR_THRESHOLDS_DB = {"fp16": 60.0, "int8": 30.0, "fp8_e4m3": 25.0, "fp8_e5m2": 18.0, "int4": 12.0,
                      "fp4_e2m1": 10.0}


@dataclass(frozen=True)
class Minifloat:
    """Bit layout of a small float format (sign + exp_bits + man_bits)."""

    name: str
    exp_bits: int
    man_bits: int
    bias: int
    max_finite: float
    bits: int


MINIFLOATS = {
    "fp16": Minifloat("fp16", 5, 10, 15, 65504.0, 16),
    "fp8_e4m3": Minifloat("fp8_e4m3", 4, 3, 7, 448.0, 8),  # "fn": no inf, NaN only at S.1111.111
    "fp8_e5m2": Minifloat("fp8_e5m2", 5, 2, 15, 57344.0, 8),
    "fp4_e2m1": Minifloat("fp4_e2m1", 2, 1, 1, 6.0, 4),
}


@dataclass(frozen=True)
class QuantSpec:
    """How to quantize a tensor.

    ``fmt``: one of :data:`FORMATS`. ``granularity``: per-tensor or per-channel (scales along
    ``axis``, e.g. -1 = output channels of a Keras kernel). ``symmetric``: zero-point 0.
    ``signed``: signed integer grid (False = unsigned, for one-tailed data such as ReLU outputs).
    ``narrow``: drop the most negative code (symmetric grid -(2^(b-1)-1)..2^(b-1)-1).
    """

    fmt: str = "int8"
    granularity: str = "per-tensor"
    axis: int = -1
    symmetric: bool = True
    signed: bool = True
    narrow: bool = False

    def __post_init__(self):
        if self.fmt not in FORMATS:
            raise ConfigError(f"QuantSpec.fmt {self.fmt!r} not one of {', '.join(FORMATS)}")
        if self.granularity not in GRANULARITIES:
            raise ConfigError(f"QuantSpec.granularity {self.granularity!r} not one of {GRANULARITIES}")
        if not isinstance(self.axis, int):
            raise ConfigError(f"QuantSpec.axis must be an int, got {self.axis!r}")

    @property
    def is_int(self) -> bool:
        return self.fmt in INT_FORMATS

    @property
    def bits(self) -> int:
        return INT_FORMATS[self.fmt] if self.is_int else (32 if self.fmt == "fp32" else MINIFLOATS[self.fmt].bits)


def _as_float_array(x, what="x") -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise ShapeError(f"{what}: expected a real numeric array, got dtype {a.dtype}")
    return a.astype(np.float64) if a.dtype != np.float32 else a


def int_range(bits: int, signed: bool = True, narrow: bool = False) -> tuple[int, int]:
    """Integer code range ``(qmin, qmax)`` of a ``bits``-wide grid."""
    if not 2 <= bits <= 16:
        raise ConfigError(f"integer bit-width must be in 2..16, got {bits}")
    if signed:
        return (-(2 ** (bits - 1)) + (1 if narrow else 0), 2 ** (bits - 1) - 1)
    return (0, 2**bits - 1 - (1 if narrow else 0))


def _reduce_axes(ndim: int, axis: int | None) -> tuple[int, ...] | None:
    if axis is None:
        return None
    if not -ndim <= axis < ndim:
        raise ShapeError(f"channel axis {axis} out of range for a {ndim}-d tensor")
    ax = axis % ndim
    return tuple(i for i in range(ndim) if i != ax)


def compute_scale(x, bits: int, *, signed: bool = True, symmetric: bool = True, narrow: bool = False,
                  axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero-point of ``x`` (per tensor when ``axis`` is None, else per channel on ``axis``).

    Returns float64 ``scale`` and int64 ``zero_point`` with keepdims shapes (broadcastable to ``x``).
    A channel that is all zeros gets scale 1 (every value maps exactly to code 0).
    """
    a = _as_float_array(x)
    if a.size == 0:
        raise ShapeError("cannot compute a scale of an empty tensor")
    qmin, qmax = int_range(bits, signed, narrow)
    red = _reduce_axes(a.ndim, axis) if a.ndim else None
    if symmetric:
        if signed:
            m = np.max(np.abs(a), axis=red, keepdims=True)
            scale = m / qmax  # s = max|x| / (2^(b-1) - 1)
        else:
            if np.any(a < 0):
                raise ShapeError("unsigned symmetric quantization needs non-negative data (one-tailed)")
            m = np.max(a, axis=red, keepdims=True)
            scale = m / qmax  # s = max(x) / (2^b - 1)
        zp = np.zeros_like(scale, dtype=np.int64)
    else:
        lo = np.minimum(np.min(a, axis=red, keepdims=True), 0.0)  # range must contain 0
        hi = np.maximum(np.max(a, axis=red, keepdims=True), 0.0)
        scale = (hi - lo) / (qmax - qmin)
        safe = np.where(scale > 0, scale, 1.0)
        zp = np.clip(np.round(qmin - lo / safe), qmin, qmax).astype(np.int64)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float64)
    return scale, zp


def quantize(x, scale, zero_point, qmin: int, qmax: int) -> np.ndarray:
    """Integer codes ``clip(round(x / s) + z, qmin, qmax)`` as int32."""
    a = _as_float_array(x)
    return np.clip(np.round(a / scale) + zero_point, qmin, qmax).astype(np.int32)


def dequantize(q, scale, zero_point) -> np.ndarray:
    """``s * (q - z)`` as float64."""
    return (np.asarray(q, dtype=np.float64) - zero_point) * scale


def round_minifloat(x, fmt: str) -> np.ndarray:
    """Round to the nearest value of float format ``fmt`` (ties to even), saturating at +-max.

    Computed from the bit layout: the quantum in the binade of ``|x|`` is 2^(e - man_bits), with
    ``e`` clamped to the minimum normal exponent so subnormals share the smallest quantum.
    Returns float64 values exactly representable in ``fmt``. NaN stays NaN; +-inf saturates.
    """
    if fmt == "fp32":
        return np.asarray(x, dtype=np.float32).astype(np.float64)
    if fmt not in MINIFLOATS:
        raise ConfigError(f"unknown float format {fmt!r}; expected one of {', '.join(MINIFLOATS)}")
    f = MINIFLOATS[fmt]
    a = _as_float_array(x).astype(np.float64)
    mag = np.minimum(np.abs(a), f.max_finite * 2)  # keep inf finite for the arithmetic
    _, e2 = np.frexp(mag)  # mag = m * 2^e2 with m in [0.5, 1): floor(log2 mag) = e2 - 1
    e = np.maximum(e2 - 1, 1 - f.bias)
    quantum = np.ldexp(1.0, e - f.man_bits)
    r = np.minimum(np.round(mag / quantum) * quantum, f.max_finite)
    out = np.copysign(r, a)
    return np.where(np.isnan(a), np.nan, out)


def fake_quant(x, spec: QuantSpec) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Quantize-dequantize ``x`` per ``spec``. Returns ``(x_hat, scale, zero_point)``.

    Integer formats use :func:`compute_scale`; fp8/fp4 use a scale that maps max|x| to the format's
    largest finite value (as ModelOpt/TensorRT do) before rounding; fp16/fp32 need no scale.
    """
    a = _as_float_array(x)
    axis = spec.axis if spec.granularity == "per-channel" else None
    if spec.is_int:
        qmin, qmax = int_range(spec.bits, spec.signed, spec.narrow)
        s, z = compute_scale(a, spec.bits, signed=spec.signed, symmetric=spec.symmetric,
                             narrow=spec.narrow, axis=axis)
        return dequantize(quantize(a, s, z, qmin, qmax), s, z), s, z
    if spec.fmt in ("fp16", "fp32"):
        return round_minifloat(a, spec.fmt), None, None
    f = MINIFLOATS[spec.fmt]
    red = _reduce_axes(a.ndim, axis) if a.ndim else None
    m = np.max(np.abs(a), axis=red, keepdims=True)
    s = np.where(m > 0, m / f.max_finite, 1.0)
    return round_minifloat(a / s, spec.fmt) * s, s, None


def sqnr_db(x, x_hat) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(sum x^2 / sum (x - x_hat)^2)`` in dB (inf if exact)."""
    a, b = _as_float_array(x, "x").astype(np.float64), _as_float_array(x_hat, "x_hat").astype(np.float64)
    if a.shape != b.shape:
        raise ShapeError(f"sqnr_db: shapes differ {a.shape} vs {b.shape}")
    noise = float(np.sum((a - b) ** 2))
    sig = float(np.sum(a**2))
    if noise == 0.0:
        return float("inf")
    if sig == 0.0:
        return float("-inf")
    return 10.0 * np.log10(sig / noise)


def sqnr_verdict(fmt: str, sqnr: float) -> str:
    """'ok' when ``sqnr`` reaches the named floor of ``fmt``, else 'lossy'."""
    floor = SQNR_THRESHOLDS_DB.get(fmt)
    return "ok" if floor is None or sqnr >= floor else "lossy"
