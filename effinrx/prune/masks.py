"""Pure-numpy mask logic shared by magnitude and movement pruning (no TensorFlow).

* :func:`polynomial_sparsity` — the sparsity schedule s(t) = s_f (1 - (1 - (t - t0)/(t1 - t0))^p)
  (p = 1: tfmot ``PolynomialDecay(power=1)`` as in the paper; p = 3: the cubic schedule of movement
  pruning, Sanh et al. 2020).
* :func:`topk_mask` — keep the ``round(n (1 - s))`` entries with the highest score (ties broken by
  position, so the kept count is exact).
* :func:`m_by_n_report` — does an array hold the m:n pattern (at least m zeros in every group of n
  consecutive entries along the input-channel axis, the axis tfmot's ``sparsity_m_by_n`` uses for
  Keras kernels ``[..., C_in, C_out]``)?

Arrays are float32/float64 numpy arrays of any rank; masks are float32 0/1 of the same shape.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from effinrx.errors import ConfigError, ShapeError


def check_sparsity(s: float, what: str = "sparsity") -> float:
    """Return ``s`` as float if 0 <= s < 1, else ConfigError naming ``what``."""
    try:
        s = float(s)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number in [0, 1), got {s!r}") from None
    if not 0.0 <= s < 1.0 or s != s:
        raise ConfigError(f"{what} must be in [0, 1), got {s}")
    return s


def polynomial_sparsity(step: int, target: float, begin: int, end: int, power: float = 1.0) -> float:
    """Sparsity at ``step``: 0 before ``begin``, ``target`` from ``end`` on, polynomial in between."""
    target = check_sparsity(target, "target sparsity")
    if end <= begin or begin < 0:
        raise ConfigError(f"schedule needs 0 <= begin < end, got begin={begin}, end={end}")
    if power <= 0:
        raise ConfigError(f"schedule power must be > 0, got {power}")
    frac = min(max((step - begin) / (end - begin), 0.0), 1.0)
    return float(target * (1.0 - (1.0 - frac) ** power))


def topk_mask(score, sparsity: float) -> np.ndarray:
    """0/1 float32 mask keeping the ``round(size * (1 - sparsity))`` (at least 1) highest scores.

    Same kept count as tfmot's magnitude pruner (which keeps ``max(round(n (1 - s)), 1)``)."""
    sparsity = check_sparsity(sparsity)
    s = np.asarray(score, dtype=np.float64)
    if s.size == 0:
        raise ShapeError("topk_mask: empty score array")
    if not np.all(np.isfinite(s)):
        raise ShapeError("topk_mask: score contains NaN or inf")
    keep = max(int(round(s.size * (1.0 - sparsity))), 1)
    flat = s.ravel()
    # stable sort on -score: equal scores keep the earlier position, so the count is exact
    order = np.argsort(-flat, kind="stable")
    m = np.zeros(flat.size, np.float32)
    m[order[:keep]] = 1.0
    return m.reshape(s.shape)


@dataclass
class MByNReport:
    """Result of :func:`m_by_n_report`. ``groups``: full groups of n checked; ``violations``: full
    groups with fewer than m zeros; ``tail``: entries per row in a last, partial group (C_in % n;
    tfmot zero-pads that group, so its real entries may all stay non-zero)."""

    m: int
    n: int
    groups: int
    violations: int
    tail: int

    @property
    def holds(self) -> bool:
        return self.groups > 0 and self.violations == 0


def _groups_last(w, n: int, axis: int) -> tuple[np.ndarray, int]:
    a = np.asarray(w)
    if a.ndim < 2:
        raise ShapeError(f"m:n check needs a kernel of rank >= 2, got shape {a.shape}")
    a = np.moveaxis(a, axis, -1)  # input channels last, like tfmot's rearranged [C_out*H*W, C_in]
    c = a.shape[-1]
    full = (c // n) * n
    return a[..., :full].reshape(-1, n), c - full


def m_by_n_report(w, m: int = 2, n: int = 4, axis: int = -2) -> MByNReport:
    """Count groups of ``n`` consecutive entries along ``axis`` (default -2 = C_in of a Keras
    Dense ``[C_in, C_out]`` or pointwise ``[1, 1, C_in, C_out]`` kernel) with fewer than ``m`` zeros."""
    if not (isinstance(m, int) and isinstance(n, int)) or not 0 < m < n:
        raise ConfigError(f"m:n pattern needs integers 0 < m < n, got {m}:{n}")
    g, tail = _groups_last(w, n, axis)
    zeros = np.sum(g == 0, axis=-1)
    return MByNReport(m, n, int(g.shape[0]), int(np.sum(zeros < m)), int(tail))


def m_by_n_mask(w, m: int = 2, n: int = 4, axis: int = -2) -> np.ndarray:
    """Reference m:n magnitude mask (zero the m smallest |w| of every full group of n along ``axis``;
    a partial tail group is kept, as tfmot's zero padding does for a tail of <= n - m entries).
    Used by the tests to cross-check tfmot; returns float32 0/1 of ``w``'s shape."""
    if not (isinstance(m, int) and isinstance(n, int)) or not 0 < m < n:
        raise ConfigError(f"m:n pattern needs integers 0 < m < n, got {m}:{n}")
    a = np.moveaxis(np.asarray(w, np.float64), axis, -1)
    c = a.shape[-1]
    full = (c // n) * n
    mask = np.ones(a.shape, np.float32)
    g = np.abs(a[..., :full]).reshape(-1, n)
    order = np.argsort(g, axis=-1, kind="stable")[:, :m]
    gm = np.ones(g.shape, np.float32)
    np.put_along_axis(gm, order, 0.0, axis=-1)
    mask[..., :full] = gm.reshape(a[..., :full].shape)
    return np.moveaxis(mask, -1, axis)
