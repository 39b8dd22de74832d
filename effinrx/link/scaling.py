"""How a sweep scales over workers: the task graph of the Ray executor and a makespan projection.

The Ray executor (:mod:`effinrx.link.executor`) cuts a sweep into tasks of one Eb/N0 point and a
chunk of consecutive batches, each running every receiver still live at that point. On a
fixed-size sweep (no stop rule fires early: the paired benchmark sweeps) tasks are independent, so
the wall time on ``P`` workers is the makespan of scheduling them, plus the one-off cost of building
the receivers' graphs on each worker. :func:`task_seconds` rebuilds the task durations from the
points' measured per-batch seconds, :func:`makespan` schedules them longest first (LPT, within 4/3
of the optimum) and :func:`projection` gives wall time and parallel efficiency per worker count.

What it leaves out, said plainly: data transfer and scheduling latency (small: a task's input is
its seeds, its output counts), and stop rules (a sweep that stops early has fewer tasks).
"""
from __future__ import annotations

import heapq

from effinrx.errors import ConfigError


def task_seconds(curves: dict, chunk: int) -> list[float]:
    """Durations (s) of the tasks of a sweep: ``curves`` name -> [PointCounts] (``seconds`` and
    ``batches`` per point, as measured by the engine); a task is one point and ``chunk`` batches of
    every receiver, so it lasts ``chunk`` x the sum of the receivers' seconds per batch there."""
    if chunk < 1:
        raise ConfigError(f"chunk must be >= 1, got {chunk}")
    names = list(curves)
    if not names:
        return []
    out = []
    for j in range(len(curves[names[0]])):
        pts = [curves[n][j] for n in names]
        batches = max(p.batches for p in pts)
        per_batch = sum(p.seconds / p.batches for p in pts if p.batches)
        full, rest = divmod(batches, chunk)
        out += [chunk * per_batch] * full + ([rest * per_batch] if rest else [])
    return out


def makespan(durations, workers: int) -> float:
    """Wall time of ``durations`` on ``workers`` identical workers, longest task first."""
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    load = [0.0] * min(workers, max(1, len(durations)))
    heapq.heapify(load)
    for d in sorted(durations, reverse=True):
        heapq.heappush(load, heapq.heappop(load) + float(d))
    return max(load)


def projection(durations, workers_list, startup_s: float = 0.0) -> list[dict]:
    """Per worker count: ``wall_s`` (makespan + ``startup_s``, the per-worker graph build, paid once
    in parallel), ``speedup`` over one worker without start-up, ``efficiency`` = speedup / workers."""
    total = float(sum(durations))
    rows = []
    for w in workers_list:
        wall = makespan(durations, w) + startup_s
        rows.append({"workers": int(w), "wall_s": wall, "speedup": total / wall if wall else float("nan"),
                     "efficiency": total / wall / w if wall else float("nan")})
    return rows
