"""Sparsity accounting and sparse-storage bytes (claims P1-P3).

``sparsity_table`` counts zeros per variable and says which parameters a pruning wrapper did
not touch (tfmot prunes only the kernels it is given: biases, and depthwise kernels unless
wrapped, stay dense) so the gap between the target and the overall sparsity is explained.
``csr_bytes`` gives dense fp32 bytes vs CSR/CSC bytes (scipy.sparse) with 32-bit indices and
with the smallest index width that fits; ``break_even_sparsity`` solves for the sparsity where
CSR stops being larger than dense.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from effinrx.errors import ConfigError, ShapeError


@dataclass
class SparsityRow:
    """Per-variable zero count. ``kind``: depthwise | pointwise | dense | bias."""
    name: str
    kind: str
    size: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.size if self.size else 0.0


def _kind(name: str) -> str:
    for key, kind in (("depthwise_kernel", "depthwise"), ("pointwise_kernel", "pointwise"),
                      ("kernel", "dense"), ("bias", "bias")):
        if key in name:
            return kind
    return "other"


def sparsity_table(weights, names) -> tuple[list[SparsityRow], dict]:
    """Zeros per variable and a summary.

    Input: ``weights`` list of arrays, ``names`` their variable names. Output: (rows, summary)
    with summary keys ``overall`` (zeros / all parameters), ``kernels`` (zeros / kernel
    parameters), ``unpruned_params`` per kind with sparsity < 1 % (the parameters the pruner
    left dense: the gap to the target), ``total_params``.
    """
    if len(weights) != len(names):
        raise ConfigError(f"sparsity_table: {len(weights)} weights but {len(names)} names")
    rows = [SparsityRow(n, _kind(n), int(np.size(w)), int(np.sum(np.asarray(w) == 0)))
            for w, n in zip(weights, names)]
    total = sum(r.size for r in rows)
    kern = [r for r in rows if r.kind in ("pointwise", "dense", "depthwise")]
    kt = sum(r.size for r in kern)
    unpruned: dict = {}
    for r in rows:
        if r.sparsity < 0.01:
            unpruned[r.kind] = unpruned.get(r.kind, 0) + r.size
    summary = {"overall": sum(r.zeros for r in rows) / total if total else 0.0,
               "kernels": sum(r.zeros for r in kern) / kt if kt else 0.0,
               "unpruned_params": unpruned, "total_params": total}
    return rows, summary


def index_bytes(n_max: int) -> int:
    """Smallest of 1/2/4/8 bytes holding unsigned indices 0..n_max."""
    for b in (1, 2, 4, 8):
        if n_max < 2 ** (8 * b):
            return b
    raise ConfigError(f"index {n_max} too large")


def _as_2d(w) -> np.ndarray:
    a = np.asarray(w)
    if a.ndim == 0:
        raise ShapeError("csr_bytes: scalar has no sparse form")
    # Keras kernels [..., in, out]: rows = all leading axes flattened, columns = output channels
    return a.reshape(1, -1) if a.ndim == 1 else a.reshape(-1, a.shape[-1])


def csr_bytes(w, value_bytes: int = 4) -> dict:
    """Bytes of ``w`` stored dense vs CSR/CSC (scipy.sparse), values of ``value_bytes``.

    Returns dict: dense, csr32, csc32 (int32 indices/pointers), csr_min, csc_min (smallest
    index width that fits), nnz.
    """
    import scipy.sparse as sp

    a = _as_2d(w)
    csr, csc = sp.csr_matrix(a), sp.csc_matrix(a)
    nnz = int(csr.nnz)
    r, c = a.shape

    def _b(ind_len, ptr_len, ind_w, ptr_w):
        return nnz * value_bytes + ind_len * ind_w + ptr_len * ptr_w

    return {"dense": int(a.size * value_bytes), "nnz": nnz,
            "csr32": _b(csr.indices.size, csr.indptr.size, 4, 4),
            "csc32": _b(csc.indices.size, csc.indptr.size, 4, 4),
            "csr_min": _b(csr.indices.size, csr.indptr.size, index_bytes(c - 1), index_bytes(nnz)),
            "csc_min": _b(csc.indices.size, csc.indptr.size, index_bytes(r - 1), index_bytes(nnz))}


def break_even_sparsity(rows: int, cols: int, value_bytes: int = 4, index_bytes_: int = 4,
                        ptr_bytes: int = 4) -> float:
    """Sparsity s at which CSR bytes equal dense bytes for a ``rows x cols`` matrix:
    (1-s) n (v + i) + (rows+1) p = n v  ->  s = 1 - (n v - (rows+1) p) / (n (v + i))."""
    if rows <= 0 or cols <= 0:
        raise ShapeError(f"break_even_sparsity: bad shape ({rows}, {cols})")
    n = rows * cols
    s = 1.0 - (n * value_bytes - (rows + 1) * ptr_bytes) / (n * (value_bytes + index_bytes_))
    return float(min(max(s, 0.0), 1.0))
