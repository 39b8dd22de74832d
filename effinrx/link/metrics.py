"""Derived metrics: required Eb/N0 at a target TBLER (log-TBLER interpolation) with an interval,
and the dB gap between two receivers."""
from __future__ import annotations

import math
from dataclasses import dataclass

from effinrx.errors import ConfigError


@dataclass(frozen=True)
class RequiredEbNo:
    """Required Eb/N0 (dB) at ``target``; ``low``/``high`` from interpolating the Clopper-Pearson
    bounds (the lower TBLER bound gives the optimistic, lower Eb/N0). NaN where not bracketed."""

    target: float
    value: float
    low: float
    high: float


def _crossing(ebno, rates, target) -> float:
    """First Eb/N0 where the piecewise log-linear curve falls to ``target`` (NaN if never)."""
    lt = math.log(target)
    for i in range(len(ebno) - 1):
        r0, r1 = rates[i], rates[i + 1]
        if r0 >= target >= r1 and r0 > 0:
            if r1 <= 0:  # zero errors: treat as one decade below the target at that point
                r1 = target / 10
            l0, l1 = math.log(r0), math.log(r1)
            if l0 == l1:
                return float(ebno[i])
            return float(ebno[i] + (l0 - lt) * (ebno[i + 1] - ebno[i]) / (l0 - l1))
    return float("nan")


def required_ebno(points, target: float = 0.1, confidence: float = 0.95) -> RequiredEbNo:
    """``points``: sequence of objects with ``ebno_db``, ``errors``, ``blocks`` (e.g. PointCounts),
    sorted by Eb/N0. Returns :class:`RequiredEbNo` at TBLER ``target``."""
    from effinrx.stats import clopper_pearson

    if not 0 < target < 1:
        raise ConfigError(f"target TBLER must be in (0, 1), got {target}")
    pts = [p for p in points if p.blocks > 0]
    if len(pts) < 2:
        raise ConfigError(f"need >= 2 Eb/N0 points with blocks to interpolate, got {len(pts)}")
    e = [p.ebno_db for p in pts]
    if any(b <= a for a, b in zip(e, e[1:])):
        raise ConfigError(f"Eb/N0 points must be strictly increasing, got {e}")
    mid = [p.errors / p.blocks for p in pts]
    ci = [clopper_pearson(p.errors, p.blocks, confidence) for p in pts]
    return RequiredEbNo(target, _crossing(e, mid, target), _crossing(e, [c[0] for c in ci], target),
                        _crossing(e, [c[1] for c in ci], target))


def gap_db(a, b, target: float = 0.1) -> float:
    """Required-Eb/N0 gap (dB) of receiver ``a`` over ``b`` at ``target`` (positive: ``a`` worse)."""
    return required_ebno(a, target).value - required_ebno(b, target).value
