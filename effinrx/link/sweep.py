"""Named sweeps shared by the benchmarks and the report: receivers by registry name, counts from the
one engine, memoised per process, with the ``effinrx simulate`` command that reproduces them.

``counts(names, ebno=..., batch=..., max_blocks=..., seed=...)`` runs every receiver of ``names``
(:mod:`effinrx.receivers.registry`) on the same slots of the evaluation scenario and returns
``(curves, command)``: ``curves`` name -> [PointCounts per Eb/N0]; ``command`` the CLI line giving
exactly these counts (recorded in golden entries). Receivers are built once per process.
``EFFINRX_EXECUTOR=ray`` runs these sweeps on Ray (:func:`effinrx.link.executor.from_env`);
``EFFINRX_SWEEP_CACHE=<file>`` keeps their finished batches in a resume cache
(:mod:`effinrx.link.cache`, per-TB outcomes included), so a long tier stopped midway continues
with identical counts, and shows a progress bar.
"""
from __future__ import annotations

import functools

from effinrx.errors import ConfigError
from effinrx.link import cache as _cache
from effinrx.link.config import Scenario
from effinrx.link.counts import as_counts  # noqa: F401  (re-exported: the benchmarks' name)
from effinrx.link.executor import from_env
from effinrx.link.montecarlo import simulate_many
from effinrx.receivers.registry import make

DEFAULT_CHANNEL = "double-tdl"


def scenario(prbs: int = 4, channel: str = DEFAULT_CHANNEL):
    return Scenario(num_prbs=int(prbs), channel=channel)


@functools.lru_cache(maxsize=64)
def receiver(name: str, prbs: int = 4, weights: str = "reference", channel: str = DEFAULT_CHANNEL):
    """Registry receiver ``name`` for the evaluation scenario, built once per process."""
    return make(name, scenario(prbs, channel), weights)


def collect(rxs: dict, sc, ebno, **engine_kw):
    """Run ``rxs`` (name -> Receiver) on the same slots of ``sc``; returns ``(curves, outcomes)``:
    curves name -> [PointCounts], outcomes name -> ebno -> bool [TBs] per-TB errors in slot order
    (the input of :func:`discordant`; the points' own ``tb``, so a resumed point has them too).
    ``engine_kw`` go to :func:`~effinrx.link.montecarlo.simulate_many` (``cache`` included)."""
    curves = simulate_many(rxs, sc, list(ebno), progress=engine_kw.pop("progress", False), **engine_kw)
    missing = [(n, p.ebno_db) for n, pts in curves.items() for p in pts if p.blocks and p.tb is None]
    if missing:
        raise ConfigError(f"per-TB outcomes missing for {missing[0][0]} at {missing[0][1]:g} dB (resumed from a "
                          f"cache written before they were kept: delete {engine_kw.get('cache')})")
    return curves, {n: {p.ebno_db: p.tb for p in pts if p.tb is not None} for n, pts in curves.items()}


def discordant(outcomes: dict, a: str, b: str) -> tuple[int, int, int]:
    """``(a_only, b_only, n)`` pooled over the Eb/N0 points of :func:`collect` outcomes: TBs only
    ``a`` got wrong, only ``b`` got wrong, TBs compared."""
    a_only = b_only = n = 0
    for e, ea in outcomes[a].items():
        eb = outcomes[b][e]
        m = min(len(ea), len(eb))  # per-receiver stop rules may leave one longer
        ea, eb = ea[:m], eb[:m]
        a_only += int((ea & ~eb).sum())
        b_only += int((eb & ~ea).sum())
        n += m
    return a_only, b_only, n


@functools.lru_cache(maxsize=64)
def _run(names: tuple, prbs: int, ebno: tuple, batch: int, max_blocks: int, seed: int, weights: str,
         channel: str, target_errors: int):
    rxs = {n: receiver(n, prbs, weights, channel) for n in names}
    # EFFINRX_EXECUTOR=ray (+ EFFINRX_RAY_ADDRESS, EFFINRX_RAY_WORKERS): the same counts from Ray workers;
    # EFFINRX_SWEEP_CACHE=<file>: finished batches go to a resume cache, a rerun continues (long tiers)
    cache = _cache.env_path()
    return collect(rxs, scenario(prbs, channel), ebno, max_blocks=max_blocks, target_errors=target_errors,
                   batch_size=batch, seed=seed, executor=from_env(weights=weights), cache=cache,
                   progress=cache is not None)


def counts(names, *, ebno, batch: int, max_blocks: int, seed: int, prbs: int = 4, weights: str = "reference",
           channel: str = DEFAULT_CHANNEL, target_errors: int = 10**9):
    """See the module docstring. Fixed-size points by default (``target_errors`` never reached), so
    every receiver has the same blocks per point (paired tests)."""
    names = tuple(names)
    ebno = tuple(float(e) for e in ebno)
    curves, _ = _run(names, int(prbs), ebno, int(batch), int(max_blocks), int(seed), str(weights), channel,
                     int(target_errors))
    cmd = simulate_args(names, prbs, ebno, batch=batch, max_blocks=max_blocks, seed=seed,
                        target_errors=target_errors, channel=channel)
    if weights != "auto":
        cmd += f" --weights {weights}"
    return curves, cmd


def simulate_args(receivers, prbs: int, ebno, *, batch: int, max_blocks: int, seed: int,
                  target_errors: int = 10**9, channel: str = "double-tdl") -> str:
    """The ``effinrx simulate`` arguments that reproduce a benchmark's counts (stored in goldens)."""
    eb = ",".join(f"{float(e):g}" for e in ebno)
    return (f"effinrx simulate --receiver {','.join(receivers)} --prbs {prbs} --channel {channel} "
            f"--ebno {eb} --batch {batch} --max-blocks {max_blocks} --target-errors {target_errors} --seed {seed}")


def paired(a: str, b: str, names, *, ebno, batch: int, max_blocks: int, seed: int, prbs: int = 4,
           weights: str = "reference", channel: str = DEFAULT_CHANNEL, target_errors: int = 10**9):
    """Discordant TB counts of receivers ``a`` and ``b`` of the same :func:`counts` sweep, pooled over
    its Eb/N0 points: ``(a_only, b_only, n)`` = TBs only ``a`` got wrong, only ``b`` got wrong, TBs
    compared (same slots: the input of a paired test, :func:`effinrx.stats.paired_difference`)."""
    _, out = _run(tuple(names), int(prbs), tuple(float(e) for e in ebno), int(batch), int(max_blocks), int(seed),
                  str(weights), channel, int(target_errors))
    return discordant(out, a, b)


def pool(points) -> tuple[int, int]:
    """(block errors, blocks) summed over ``points``."""
    return sum(p.errors for p in points), sum(p.blocks for p in points)
