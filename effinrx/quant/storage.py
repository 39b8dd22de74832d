"""Exact weight-storage bytes per format (claim M2) and per-channel memory-access cost (claim M3).

Only kernels (dense, pointwise and, unless excluded, depthwise) are quantized; biases and
normalisation parameters stay fp32, and every scale (fp32, 4 bytes) and zero-point (one code of the
integer width, rounded up to whole bytes) is counted, so the measured ratios are honest and fall
slightly below the nominal 2x / 4x / 8x.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from effinrx.errors import ConfigError, ShapeError
from effinrx.quant.formats import DEPTHWISE_CHANNEL_AXIS, QuantSpec

ROLES = ("kernel", "depthwise", "bias", "norm", "other")
SCALE_BYTES = 4  # fp32 scale per tensor or channel


@dataclass
class TensorBytes:
    name: str
    role: str
    shape: tuple
    fmt: str
    elements: int
    data_bytes: int
    scale_bytes: int
    zero_point_bytes: int

    @property
    def total(self) -> int:
        return self.data_bytes + self.scale_bytes + self.zero_point_bytes


@dataclass
class StorageTable:
    spec: QuantSpec
    rows: list[TensorBytes] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(r.total for r in self.rows)

    @property
    def fp32_bytes(self) -> int:
        return sum(4 * r.elements for r in self.rows)

    @property
    def ratio(self) -> float:
        """fp32 bytes / bytes in this format (the 'model size reduction' of seed 001's Table IV)."""
        return self.fp32_bytes / self.total_bytes

    @property
    def metadata_bytes(self) -> int:
        return sum(r.scale_bytes + r.zero_point_bytes for r in self.rows)


def packed_bytes(elements: int, bits: int) -> int:
    """Bytes of ``elements`` values of ``bits`` each, densely packed (int4: two per byte)."""
    return math.ceil(elements * bits / 8)


def tensor_bytes(name: str, shape, role: str, spec: QuantSpec, quantize_roles=("kernel", "depthwise")) -> TensorBytes:
    """Bytes of one tensor of ``shape`` stored per ``spec`` (non-quantized roles stay fp32)."""
    if role not in ROLES:
        raise ConfigError(f"tensor {name!r}: role {role!r} not one of {ROLES}")
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ShapeError(f"tensor {name!r}: negative dimension in shape {shape}")
    n = int(np.prod(shape)) if shape else 1
    if role not in quantize_roles or spec.fmt == "fp32":
        return TensorBytes(name, role, shape, "fp32", n, 4 * n, 0, 0)
    if spec.fmt == "fp16":
        return TensorBytes(name, role, shape, "fp16", n, 2 * n, 0, 0)
    if spec.granularity == "per-channel":
        if not shape:
            raise ShapeError(f"tensor {name!r}: per-channel quantization of a scalar")
        # a depthwise kernel gets one scale per channel C, as effinrx.quant.ptq quantizes it
        axis = DEPTHWISE_CHANNEL_AXIS if role == "depthwise" and len(shape) == 4 else spec.axis
        channels = shape[axis]
    else:
        channels = 1
    zp = 0 if (spec.symmetric or not spec.is_int) else channels * packed_bytes(1, spec.bits)
    return TensorBytes(name, role, shape, spec.fmt, n, packed_bytes(n, spec.bits), channels * SCALE_BYTES, zp)


def storage_table(tensors, spec: QuantSpec, quantize_roles=("kernel", "depthwise")) -> StorageTable:
    """Storage of a list of ``(name, shape_or_array, role)`` under ``spec``."""
    table = StorageTable(spec)
    for item in tensors:
        if len(item) != 3:
            raise ShapeError(f"expected (name, shape_or_array, role), got {item!r}")
        name, arr, role = item
        shape = arr.shape if hasattr(arr, "shape") else arr
        table.rows.append(tensor_bytes(name, shape, role, spec, quantize_roles))
    return table


def memory_access_cost(channels: int, elements: int, m_p: float, m_e: float) -> float:
    """Seed 001, eq. (8): per-channel cost ``C * m_p + N * m_e`` (C parameter sets, N elements)."""
    if channels < 0 or elements < 0:
        raise ConfigError(f"channels and elements must be >= 0, got C={channels}, N={elements}")
    return channels * m_p + elements * m_e
