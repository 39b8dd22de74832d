"""Adaptive required-Eb/N0 search: bracket the TBLER-``target`` crossing and refine it by bisection on
the engine's shared slots, instead of a fixed Eb/N0 grid.

Every evaluated point is an ordinary engine point (:func:`effinrx.link.montecarlo.simulate_many`,
same seeding rule and stop rules), so a point the search visits has exactly the counts a fixed grid
run gives at that Eb/N0, and receivers searched together share slots wherever their points
coincide. The result is interpolated from all visited points with
:func:`effinrx.link.metrics.required_ebno` (value and 95 % interval).

Algorithm per receiver: evaluate ``lo`` and ``hi``; widen by ``step_db`` (at most ``max_widen``
times) until TBLER(lo) > target >= TBLER(hi); then bisect the bracket, rounding midpoints to the
``resolution_db`` grid, until it is at most ``resolution_db`` wide. A fixed grid of the same
resolution over the same range needs ``(hi - lo) / resolution_db + 1`` points.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from effinrx.errors import ConfigError
from effinrx.link.metrics import required_ebno
from effinrx.link.montecarlo import _named, simulate_many


@dataclass
class SearchResult:
    """``points``: every visited PointCounts sorted by Eb/N0; ``required``: RequiredEbNo; ``tbs``
    and ``seconds``: what the search cost; ``grid_points``: a fixed grid of the same resolution."""

    receiver: str
    points: list = field(default_factory=list)
    required: object = None
    tbs: int = 0
    seconds: float = 0.0
    grid_points: int = 0


def _snap(x: float, res: float) -> float:
    return round(round(x / res) * res, 6)


def search(receivers, scenario, *, target: float = 0.1, lo: float = -2.0, hi: float = 8.0,
           resolution_db: float = 0.25, step_db: float = 2.0, max_widen: int = 3, progress: bool = False,
           **engine_kw) -> dict:
    """Required Eb/N0 at TBLER ``target`` of each receiver (dict name -> Receiver or a list).
    ``engine_kw`` go to :func:`simulate_many` (max_blocks, target_errors, batch_size, seed).
    Returns name -> :class:`SearchResult`."""
    if not 0 < target < 1 or not lo < hi or resolution_db <= 0 or step_db <= 0:
        raise ConfigError(f"search needs 0 < target < 1, lo < hi, resolution_db > 0, step_db > 0; got "
                          f"{target}, {lo}, {hi}, {resolution_db}, {step_db}")
    rxs = _named(receivers)
    out = {}
    for name, rx in rxs.items():
        t0 = time.perf_counter()
        seen: dict = {}

        def at(e: float):
            e = _snap(e, resolution_db)
            if e not in seen:
                seen[e] = simulate_many({name: rx}, scenario, [e], progress=progress, **engine_kw)[name][0]
            return seen[e]

        a, b = _snap(lo, resolution_db), _snap(hi, resolution_db)
        for _ in range(max_widen + 1):
            low_ok, high_ok = at(a).tbler > target, at(b).tbler <= target
            if low_ok and high_ok:
                break
            if not low_ok:
                a = _snap(a - step_db, resolution_db)
            if not high_ok:
                b = _snap(b + step_db, resolution_db)
        while b - a > resolution_db + 1e-9 and at(a).tbler > target >= at(b).tbler:
            m = _snap((a + b) / 2, resolution_db)
            if m in (a, b):
                break
            if at(m).tbler > target:
                a = m
            else:
                b = m
        pts = [seen[e] for e in sorted(seen)]
        try:
            req = required_ebno(pts, target)
        except ConfigError:
            req = None
        out[name] = SearchResult(name, pts, req, sum(p.blocks for p in pts), time.perf_counter() - t0,
                                 int(math.floor((hi - lo) / resolution_db + 1e-9)) + 1)
    return out
