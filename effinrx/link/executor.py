"""Executors of :func:`effinrx.link.montecarlo.simulate_many`: the serial loop (default) or Ray.

**Ray** (``pip install 'effinrx[distributed]'``): the sweep is cut into tasks of one Eb/N0 point
and a chunk of consecutive batch indices. A task runs :func:`~effinrx.link.montecarlo.run_batch`
for every receiver still running at that point when it was submitted; receivers are built on the
worker from their registry names (:func:`effinrx.receivers.registry.make`), once per worker
process. By the seeding rule (:mod:`effinrx.link.slots`) batch ``i`` gives the same counts on any
worker, so the driver gets identical counts to the serial run by merging per receiver and point in
batch order and applying the serial stop rules there:

* a receiver stops at a point after the first batch where ``errors >= target_errors`` or
  ``blocks >= max_blocks``; batches a chunk ran past that are dropped;
* once a point ends with TBLER below ``tbler_floor`` the receiver's higher points are skipped
  (zero blocks), also when a task already ran them speculatively.

``split="receiver"`` gives every receiver its own tasks (point x chunk x receiver): more, shorter
tasks, so a sweep with few points keeps many workers busy and the slowest receiver (K-best) no
longer sets every task's length; the counts are the same (a batch's slots do not depend on which
receivers run on them). At most ``workers`` tasks are in flight, lowest point and batch first, so speculation past a stop
costs at most ``workers - 1`` chunks. A worker lost mid-task costs only its chunk: Ray re-runs the
task (``max_retries``) and, batches being seeded, the rerun gives the same counts. The resume
cache gets every merged batch; ``on_batch`` is called after the sweep, in the serial order.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field

from effinrx.errors import ConfigError, NotAvailableError
from effinrx.link import montecarlo
from effinrx.link.counts import PointCounts
from effinrx.link.montecarlo import Batch, _running
from effinrx.receivers.registry import make

#: how a sweep is cut into tasks: "point" (every receiver of a point and batch chunk in one task,
#: one graph per batch as the serial loop) or "receiver" (one receiver per task)
SPLITS = ("point", "receiver")
RAY_EXTRA = "Ray is not installed: pip install 'effinrx[distributed]' (or -e '.[distributed]')"


@dataclass(frozen=True)
class Job:
    """What every task of a sweep shares: ``specs`` name -> registry spec, ``weights``, the channel
    ``source``, ``batch`` (slots per batch), ``seed``, ``target_errors`` and ``compiled``. Tasks
    always return the per-TB outcomes (bool [B, U]: the points keep them, see PointCounts.tb)."""

    specs: tuple
    weights: str
    source: object
    batch: int
    seed: int
    target_errors: int
    compiled: bool = True


@dataclass(frozen=True)
class Task:
    """Point ``point`` (index; ``ebno_db``) batches ``start..stop-1`` for receivers ``first``
    (name -> first batch index it needs, >= start)."""

    point: int
    ebno_db: float
    start: int
    stop: int
    first: tuple


def describe_key(rx) -> str:
    """A short hash of ``rx.describe()`` (weights digest included): driver and worker must agree."""
    return hashlib.sha1(json.dumps(rx.describe(), sort_keys=True, default=str).encode()).hexdigest()[:16]


_BUILT: dict = {}


def worker_receivers(job: Job) -> dict:
    """The job's receivers (name -> Receiver), built from the registry once per process."""
    key = (job.specs, str(job.weights), job.source.key())
    if key not in _BUILT:
        _BUILT[key] = {n: make(s, job.source.scenario, job.weights) for n, s in job.specs}
    return _BUILT[key]


def run_chunk(job: Job, task: Task, receivers: dict | None = None) -> dict:
    """Run ``task``. Returns ``{"task", "pid", "keys": name -> describe_key, "batches": [(i, counts
    name -> BatchCounts, tb_error name -> bool [B, U], seconds)]}``. Within the chunk a
    receiver stops once its chunk-local errors reach ``target_errors`` (the sweep's cumulative
    count has then reached it too, so the serial run stops there or earlier)."""
    rxs = receivers if receivers is not None else worker_receivers(job)
    first = dict(task.first)
    errors = {n: 0 for n in first}
    out = []
    for i in range(task.start, task.stop):
        group = {n: rxs[n] for n, f in first.items() if f <= i and errors[n] < job.target_errors}
        if not group:
            if all(errors[n] >= job.target_errors for n in first):
                break
            continue
        t0 = time.perf_counter()
        b = montecarlo.run_batch(group, job.source, task.ebno_db, job.batch, job.seed, i, compiled=job.compiled)
        for n in group:
            errors[n] += b.counts[n].errors
        out.append((i, b.counts, b.tb_error, time.perf_counter() - t0))  # outcomes: small, always kept
    return {"task": task, "pid": os.getpid(), "keys": {n: describe_key(rxs[n]) for n in first}, "batches": out}


@dataclass
class _Cell:
    """Merge state of one receiver at one point: ``pc`` merged prefix, ``buf`` batch index ->
    (counts, tb_error, seconds) received out of order, ``kept`` merged batches (for on_batch)."""

    pc: object
    done: bool = False
    skipped: bool = False
    ran: int = 0
    buf: dict = field(default_factory=dict)
    kept: list = field(default_factory=list)


class Sweep:
    """The driver: plans tasks, merges results with the serial stop rules (module docstring)."""

    def __init__(self, rxs: dict, points: list, store, curves: dict, *, max_batches: int, target_errors: int,
                 max_blocks: int, tbler_floor, chunk: int, bar=None, split: str = "point"):
        if split not in SPLITS:
            raise ConfigError(f"task split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.rxs, self.points, self.store, self.curves = rxs, points, store, curves
        self.split = split
        self.max_batches, self.target_errors, self.max_blocks = max_batches, target_errors, max_blocks
        self.floor, self.chunk, self.bar = tbler_floor, max(1, int(chunk)), bar
        self.cells = {(n, j): _Cell(curves[n][j]) for n in rxs for j in range(len(points))}
        for c in self.cells.values():
            c.done = not _running(c.pc, target_errors, max_blocks)
        self.resolved = {n: -1 for n in rxs}  # highest point index whose stop/skip status is final
        for n in rxs:
            self._advance(n)

    def plan(self):
        """Tasks in serial order (point, then batch), each built when it is asked for."""
        for j, e in enumerate(self.points):
            s0 = min((self.cells[n, j].pc.batches for n in self.rxs), default=0)
            for s in range(s0, self.max_batches, self.chunk):
                stop = min(s + self.chunk, self.max_batches)
                first = tuple((n, max(s, self.cells[n, j].pc.batches)) for n in self.rxs
                              if not self.cells[n, j].done and not self.cells[n, j].skipped
                              and self.cells[n, j].pc.batches < stop)
                groups = [first] if self.split == "point" else [(f,) for f in first]
                for g in groups:
                    if g:
                        yield Task(j, float(e), s, stop, g)

    def merge(self, result: dict) -> None:
        """Fold one task's batches into the cells, in batch order per receiver."""
        t = result["task"]
        touched = set()
        for i, counts, tb_error, secs in result["batches"]:
            for n, c in counts.items():
                cell = self.cells[n, t.point]
                if not cell.done and not cell.skipped and i >= cell.pc.batches:
                    cell.buf[i] = (c, tb_error.get(n), secs / len(counts))
                    touched.add(n)
        for n in touched:
            self._fold(n, t.point)
            self._advance(n)
        self.store.flush()

    def _fold(self, n: str, j: int) -> None:
        cell = self.cells[n, j]
        while not cell.done and not cell.skipped and cell.pc.batches in cell.buf:
            i = cell.pc.batches
            c, err, secs = cell.buf.pop(i)
            cell.pc.add(c, err)
            cell.pc.seconds += secs
            cell.ran += 1
            cell.kept.append((i, c, err))
            if self.resolved[n] >= j - 1:  # a speculative point reaches the cache once it is live
                self.store.put(self.rxs[n], cell.pc)
            if self.bar is not None:
                self.bar.update(1)
            cell.done = not _running(cell.pc, self.target_errors, self.max_blocks)
        if cell.done:
            cell.buf.clear()

    def _advance(self, n: str) -> None:
        """Resolve receiver ``n``'s points in order: after a finished point below the floor, every
        higher point is skipped (serial rule)."""
        while self.resolved[n] + 1 < len(self.points):
            j = self.resolved[n] + 1
            cell = self.cells[n, j]
            if cell.ran:
                self.store.put(self.rxs[n], cell.pc)  # live now: what it merged goes to the cache
            if not cell.done:
                return
            self._finish(cell)
            self.resolved[n] = j
            pc = cell.pc
            if self.floor is not None and pc.blocks and pc.tbler < self.floor:
                for k in range(j + 1, len(self.points)):
                    skip = self.cells[n, k]
                    skip.skipped, skip.buf, skip.kept = True, {}, []
                    skip.pc = PointCounts(float(self.points[k])) if skip.pc.blocks else skip.pc
                    self._finish(skip)
                self.resolved[n] = len(self.points) - 1

    def _finish(self, cell: _Cell) -> None:
        if self.bar is not None:
            self.bar.update(max(0, self.max_batches - cell.ran))  # each planned batch counted once

    def result(self, on_batch=None) -> dict:
        """``{name: [PointCounts per point]}``; replays ``on_batch`` in the serial order."""
        open_ = [(n, self.points[j]) for (n, j), c in self.cells.items() if not (c.done or c.skipped)]
        if open_:
            raise RuntimeError(f"distributed sweep ended with unfinished points {open_[:3]} (executor bug)")
        for (n, j), c in self.cells.items():
            self.curves[n][j] = c.pc
        if on_batch is not None:
            for j, e in enumerate(self.points):
                per_i: dict = {}
                for n in self.rxs:
                    for i, c, err in self.cells[n, j].kept:
                        per_i.setdefault(i, {})[n] = (c, err)
                for i in sorted(per_i):
                    g = per_i[i]
                    on_batch(Batch(float(e), i, {n: v[0] for n, v in g.items()}, {n: v[1] for n, v in g.items()}))
        return self.curves


def drive(sweep: Sweep, submit, wait, workers: int, keys: dict, cancel=None) -> None:
    """Run ``sweep`` with at most ``workers`` tasks in flight. ``submit(task) -> handle``,
    ``wait(handles) -> (handle, result)`` (one finished task), ``keys`` name -> the driver's
    :func:`describe_key` (a worker that built a different receiver is an error)."""
    tasks = sweep.plan()
    pending: set = set()
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < workers:
                t = next(tasks, None)
                if t is None:
                    exhausted = True
                else:
                    pending.add(submit(t))
            if not pending:
                return
            h, res = wait(pending)
            pending.discard(h)
            bad = [n for n, k in res["keys"].items() if keys[n] != k]
            if bad:
                raise ConfigError(f"receiver {bad[0]!r} built on a Ray worker differs from the driver's "
                                  f"(other weights or code there?)")
            sweep.merge(res)
    finally:
        if pending and cancel is not None:
            cancel(pending)


class RayExecutor:
    """``simulate_many(..., executor=RayExecutor(...))``. ``address``: a running cluster
    (``HOST:6379``, or ``auto``); None starts a local Ray with ``workers`` CPUs (default: all).
    ``workers``: tasks in flight (default: the cluster's CPUs). ``specs``: receiver name ->
    registry spec (default: the name); ``weights`` as for the registry. ``chunk``: batches per task
    (default: a point's batches split in ``2 x workers`` chunks, at most 8). ``split``: "point"
    (default) or "receiver" (:data:`SPLITS`, module docstring)."""

    def __init__(self, address: str | None = None, workers: int | None = None, *, specs: dict | None = None,
                 weights="auto", chunk: int | None = None, max_retries: int = 3, split: str = "point"):
        if workers is not None and int(workers) < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        if split not in SPLITS:
            raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
        self.split = split
        self.address, self.workers = address, None if workers is None else int(workers)
        self.specs, self.weights, self.chunk, self.max_retries = dict(specs or {}), str(weights), chunk, max_retries

    def _init(self):
        try:
            import ray
        except ImportError:
            raise NotAvailableError(RAY_EXTRA) from None
        import logging

        if not ray.is_initialized():
            kw = {"address": self.address} if self.address else {"address": "local",
                                                                  "num_cpus": self.workers or os.cpu_count()}
            try:
                ray.init(**kw, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ConfigError(f"cannot start or reach Ray at {self.address or 'local'}: "
                                  f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        return ray

    def run(self, rxs: dict, source, points: list, store, curves: dict, *, max_blocks: int, target_errors: int,
            batch_size: int, seed: int, progress: bool, tbler_floor, on_batch, with_llr: bool,
            compiled: bool) -> dict:
        """The Ray half of :func:`~effinrx.link.montecarlo.simulate_many` (same arguments and result)."""
        from tqdm import tqdm

        if with_llr:
            raise ConfigError("with_llr is not supported by the Ray executor (LLRs stay on the workers)")
        ray = self._init()
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        per_batch = batch_size * source.scenario.num_tx
        max_batches = max(1, -(-max_blocks // per_batch))
        chunk = self.chunk or max(1, min(8, -(-max_batches // (2 * workers))))
        specs = tuple((n, str(self.specs.get(n, n))) for n in rxs)
        job = Job(specs, self.weights, source, batch_size, seed, target_errors, compiled)
        keys = {n: describe_key(rx) for n, rx in rxs.items()}
        remote = ray.remote(num_cpus=1, max_retries=self.max_retries)(run_chunk)
        job_ref = ray.put(job)
        bar = tqdm(total=len(points) * len(rxs) * max_batches, desc=f"sweep (ray, {workers} workers)",
                   unit="batch", disable=not progress, leave=True)
        try:
            sweep = Sweep(rxs, points, store, curves, max_batches=max_batches, target_errors=target_errors,
                          max_blocks=max_blocks, tbler_floor=tbler_floor, chunk=chunk, bar=bar, split=self.split)
            drive(sweep, lambda t: remote.remote(job_ref, t), lambda p: _ray_wait(ray, p), workers, keys,
                  cancel=lambda p: [ray.cancel(h) for h in p])
        finally:
            bar.close()
            store.flush()
        return sweep.result(on_batch)


def _ray_wait(ray, pending):
    (h,), _ = ray.wait(list(pending), num_returns=1)
    try:
        return h, ray.get(h)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, Exception) and type(cause).__module__.startswith("effinrx"):
            raise type(cause)(str(cause)) from None
        raise
    except ray.exceptions.RayError as e:  # a worker or node lost more often than max_retries
        line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise NotAvailableError(f"Ray task failed after its retries: {line}") from None


def from_env(specs: dict | None = None, weights="auto"):
    """The executor named by ``EFFINRX_EXECUTOR`` (``serial``, default, or ``ray``) with
    ``EFFINRX_RAY_ADDRESS``, ``EFFINRX_RAY_WORKERS`` and ``EFFINRX_RAY_SPLIT`` (point/receiver):
    what the benchmarks' sweeps use."""
    kind = os.environ.get("EFFINRX_EXECUTOR", "serial").strip().lower() or "serial"
    if kind == "serial":
        return None
    if kind != "ray":
        raise ConfigError(f"EFFINRX_EXECUTOR must be serial or ray, got {kind!r}")
    w = os.environ.get("EFFINRX_RAY_WORKERS")
    return RayExecutor(os.environ.get("EFFINRX_RAY_ADDRESS") or None, int(w) if w else None,
                       specs=specs, weights=weights, split=os.environ.get("EFFINRX_RAY_SPLIT") or "point")
