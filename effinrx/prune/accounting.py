"""Model-level sparse-storage accounting of a (pruned) NRX (claims P2, P3).

Convention (as :func:`effinrx.prune.storage.csr_bytes`): a Keras kernel ``[..., C_in, C_out]`` is
a matrix with rows = all leading axes flattened (C_in for Dense/pointwise) and columns = C_out.
Only the pruned kernels (Dense and pointwise) are stored sparse; depthwise kernels and biases stay
dense fp32 in every format, so they are counted in every total.

* :func:`model_bytes` — measured bytes of actual weights: dense fp32, CSR with 32-bit indices and
  pointers (``csr32``) and CSR with the narrowest index/pointer width that fits (``csr_min``).
* :func:`csr_curve_bytes` — the same totals predicted for a uniform sparsity ``s`` of every pruned
  kernel (nnz = round((1 - s) n) per kernel); :func:`break_even` solves curve == dense by bisection.
"""
from __future__ import annotations

import numpy as np

from effinrx.errors import ConfigError, ShapeError
from effinrx.prune.recipe import prunable
from effinrx.prune.storage import csr_bytes, index_bytes

FORMATS = ("dense", "csr32", "csr_min")


def model_bytes(weights, names, value_bytes: int = 4) -> dict:
    """Totals over all variables: {dense, csr32, csr_min, nnz_pruned, kernel_dense}; pruned
    kernels (:func:`effinrx.prune.recipe.prunable` names) in CSR, the rest dense in all formats."""
    if len(weights) != len(names):
        raise ConfigError(f"model_bytes: {len(weights)} weights but {len(names)} names")
    tot = {"dense": 0, "csr32": 0, "csr_min": 0, "nnz_pruned": 0, "kernel_dense": 0}
    for w, n in zip(weights, names):
        d = int(np.size(w)) * value_bytes
        tot["dense"] += d
        if prunable(n):
            b = csr_bytes(w, value_bytes)
            tot["csr32"] += b["csr32"]
            tot["csr_min"] += b["csr_min"]
            tot["nnz_pruned"] += b["nnz"]
            tot["kernel_dense"] += d
        else:
            tot["csr32"] += d
            tot["csr_min"] += d
    return tot


def kernel_shapes(weights, names) -> tuple[list[tuple[int, int]], int]:
    """(rows, cols) of every pruned kernel and the element count of everything else."""
    shapes, rest = [], 0
    for w, n in zip(weights, names):
        a = np.asarray(w)
        if prunable(n):
            if a.ndim < 2:
                raise ShapeError(f"{n}: pruned kernel must have rank >= 2, got shape {a.shape}")
            shapes.append((int(np.prod(a.shape[:-1])), int(a.shape[-1])))
        else:
            rest += int(a.size)
    return shapes, rest


def csr_curve_bytes(shapes, rest: int, s: float, narrow: bool = False, value_bytes: int = 4) -> int:
    """Predicted total bytes when every kernel of ``shapes`` has sparsity ``s`` (CSR), plus ``rest``
    dense elements. ``narrow``: smallest index/pointer widths (else 32-bit)."""
    if not 0.0 <= float(s) <= 1.0:
        raise ConfigError(f"sparsity must be in [0, 1], got {s}")
    total = rest * value_bytes
    for r, c in shapes:
        n = r * c
        nnz = int(round((1.0 - s) * n))
        iw = index_bytes(c - 1) if narrow else 4
        pw = index_bytes(nnz) if narrow else 4
        total += nnz * (value_bytes + iw) + (r + 1) * pw
    return int(total)


def break_even(shapes, rest: int, narrow: bool = False, value_bytes: int = 4) -> float:
    """Smallest uniform kernel sparsity at which the CSR total is no larger than dense fp32."""
    if not shapes:
        raise ShapeError("break_even: no pruned kernels")
    dense = (sum(r * c for r, c in shapes) + rest) * value_bytes
    lo, hi = 0.0, 0.999999
    if csr_curve_bytes(shapes, rest, lo, narrow, value_bytes) <= dense:
        return 0.0
    for _ in range(60):  # bytes fall monotonically with s (nnz rounding aside): bisection
        mid = 0.5 * (lo + hi)
        if csr_curve_bytes(shapes, rest, mid, narrow, value_bytes) <= dense:
            hi = mid
        else:
            lo = mid
    return float(hi)
