"""The Monte-Carlo engine: the one place where slots are drawn, receivers run and errors counted.

Used by ``effinrx simulate``, every TBLER/BLER benchmark, sensitivity sweeps, distillation, pruning
and QAT evaluation, DeepRx's SIMO link and the report.

* **Error rule** (NVIDIA's): a transport block is in error when any decoded information bit
  differs from the transmitted one; CRC failures are counted beside it (``crc_failures``).
* **Decoder**: Sionna ``TBDecoder`` of the scenario, ``num_bp_iter`` (20) BP iterations,
  ``cn_update="boxplus"`` (:func:`effinrx.link.pusch.tb_decoder`), the same for every receiver.
* **Slots**: seeded per (seed, channel source, Eb/N0, batch size, batch index)
  (:mod:`effinrx.link.slots`): identical for every receiver, batch order and chunking.
* **Stop rules** per receiver and point: ``target_errors`` block errors or ``max_blocks`` blocks
  (whole batches); after a point with TBLER below ``tbler_floor`` the receiver's higher points
  are skipped. A receiver's counts do not depend on which other receivers ran beside it.

Per batch, the transmitter, the channel output and every still-running receiver's LLRs and the
decoder run in one ``tf.function`` (cached per receiver set, channel source and batch): one graph
because Sionna's TB encoder and decoder share CRC objects that rebuild a constant whenever the input
length changes, which breaks a decoder graph traced beside an encoder called elsewhere. Channels are
drawn eagerly (the UMi topology is set per batch).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from effinrx.errors import ConfigError
from effinrx.link import cache as _cache
from effinrx.link.counts import PointCounts, count
from effinrx.link.pusch import ebno_to_no, tb_decoder, transmitter
from effinrx.link.slots import as_source, seed_batch

EBNO_RANGE_DB = (-30.0, 60.0)


_STEPS: dict = {}


def _step(receivers: tuple, sc, batch: int, with_llr: bool, compiled: bool):
    """``(h, no) -> (wrong [R,B,U], crc [R,B,U], tb_bits[, llr [R,B,U,N], coded [B,U,N]])``."""
    key = (tuple(id(r) for r in receivers), sc, batch, with_llr, compiled)
    if key in _STEPS:
        return _STEPS[key][1]
    from sionna.phy.channel import ApplyOFDMChannel

    from effinrx._tf import tf

    t = tf()
    tx, dec, apply = transmitter(sc), tb_decoder(sc), ApplyOFDMChannel()
    n = len(receivers)

    def step(h, no):
        x, b = tx(batch)
        # coded bits before the decoder: the CRC objects it shares with the encoder must end every
        # graph built for the decoder's length, else the next graph's encoder reuses this graph's
        # CRC constant ("cannot be accessed from here")
        coded = tx._tb_encoder(b) if with_llr else None
        y = apply(x, h, no)
        llrs = [rx.llr(y, no, h=h if rx.needs_perfect_csi else None) for rx in receivers]
        # one decoder call of batch R*B: the BP decoder is traced once, not once per receiver
        b_hat, crc = dec(t.concat(llrs, axis=0))
        wrong = t.reduce_sum(t.cast(t.not_equal(t.tile(b, [n, 1, 1]), b_hat), t.int32), axis=-1)
        shape = t.concat([[n], t.shape(b)[:-1]], axis=0)
        out = (t.reshape(wrong, shape), t.reshape(crc, shape), t.shape(b)[-1])
        if with_llr:
            out += (t.stack(llrs, axis=0), coded)
        return out

    fn = t.function(step, reduce_retracing=True) if compiled else step
    _STEPS[key] = (receivers, fn)  # keep the receivers alive so their ids are not reused
    return fn


@dataclass
class Batch:
    """What ``on_batch`` sees: ``ebno_db``, batch ``index``, ``counts`` name -> :class:`BatchCounts`,
    ``tb_error`` name -> bool [B, U] (per-TB outcome, for paired tests), and with ``with_llr``:
    ``llr`` name -> float32 [B, U, N], ``coded`` float32 [B, U, N]."""

    ebno_db: float
    index: int
    counts: dict
    tb_error: dict = field(default_factory=dict)
    llr: Optional[dict] = None
    coded: object = None


def run_batch(receivers: dict, source, ebno_db: float, batch: int, seed: int, i: int, *,
              with_llr: bool = False, compiled: bool = True) -> Batch:
    """Batch ``i`` (see :mod:`effinrx.link.slots`) for every receiver in ``receivers`` (name -> Receiver)."""
    import numpy as np

    from effinrx._tf import tf

    source = as_source(source)
    sc = source.scenario
    h, _ = seed_batch(source, ebno_db, batch, seed, i)
    no = tf().fill([batch], tf().cast(ebno_to_no(sc, float(ebno_db)), tf().float32))
    names = list(receivers)
    out = _step(tuple(receivers[n] for n in names), sc, batch, with_llr, compiled)(h, no)
    wrong, crc, nb = np.asarray(out[0]), np.asarray(out[1]), int(out[2])
    res = Batch(float(ebno_db), int(i), {n: count(wrong[k], crc[k], nb) for k, n in enumerate(names)},
                {n: wrong[k] > 0 for k, n in enumerate(names)})
    if with_llr:
        llr = np.asarray(out[3])
        res.llr = {n: llr[k] for k, n in enumerate(names)}
        res.coded = np.asarray(out[4])
    return res


def check_ebno(points) -> list[float]:
    """Eb/N0 points as floats; ConfigError for an empty list, NaN/Inf or a value outside
    :data:`EBNO_RANGE_DB`."""
    try:
        pts = [float(e) for e in points]
    except (TypeError, ValueError):
        raise ConfigError(f"Eb/N0 points must be numbers, got {points!r}") from None
    if not pts:
        raise ConfigError("no Eb/N0 points given")
    lo, hi = EBNO_RANGE_DB
    bad = [e for e in pts if not math.isfinite(e) or not lo <= e <= hi]
    if bad:
        raise ConfigError(f"Eb/N0 {bad[0]} dB is outside {lo:g}..{hi:g} dB (finite values only)")
    return pts


def simulate_many(receivers, scenario, ebno_db_list, *, max_blocks: int = 1000, target_errors: int = 100,
                  batch_size: int = 64, seed: int = 0, cache=None, progress: bool = True,
                  tbler_floor: float | None = None, on_batch: Optional[Callable[[Batch], None]] = None,
                  with_llr: bool = False, compiled: bool = True, executor=None) -> dict:
    """TBLER/BER of several receivers on the same slots of ``scenario`` (a Scenario or a channel
    source) at each Eb/N0 (dB, rate-adjusted).

    ``receivers``: dict name -> Receiver, or a list (named by ``.name``). Stop rules and slots: see
    the module docstring. ``cache``: JSON file (:mod:`effinrx.link.cache`); finished batches are
    stored after each batch and a rerun continues where it stopped with identical counts.
    ``on_batch(Batch)`` is called after every batch (not with a cache: cached batches would be
    missed); ``with_llr`` passes the LLRs and coded bits to it. ``compiled=False`` runs receivers
    eagerly (a receiver whose Python state changes between calls). ``executor``: None or ``"serial"``
    (this loop) or e.g. :class:`effinrx.link.executor.RayExecutor` (same counts). Returns
    ``{name: [PointCounts per Eb/N0, input order]}``; skipped points have zero blocks.
    """
    from tqdm import tqdm

    rxs = _named(receivers)
    source = as_source(scenario)
    if batch_size < 1 or max_blocks < 1 or target_errors < 1:
        raise ConfigError(f"batch_size, max_blocks, target_errors must be >= 1, got "
                          f"{batch_size}, {max_blocks}, {target_errors}")
    if on_batch is not None and cache is not None:
        raise ConfigError("on_batch and cache cannot be combined (cached batches are not re-run)")
    points = check_ebno(ebno_db_list)
    store = _cache.Store(cache, source, batch_size, seed)
    curves = {n: [store.get(rx, e, target_errors=target_errors, max_blocks=max_blocks) for e in points]
              for n, rx in rxs.items()}
    per_batch = batch_size * source.scenario.num_tx
    max_batches = max(1, -(-max_blocks // per_batch))
    if executor not in (None, "serial"):
        return executor.run(rxs, source, points, store, curves, max_blocks=max_blocks, target_errors=target_errors,
                            batch_size=batch_size, seed=seed, progress=progress, tbler_floor=tbler_floor,
                            on_batch=on_batch, with_llr=with_llr, compiled=compiled)
    stopped = {n: False for n in rxs}
    bar = tqdm(total=len(points) * len(rxs) * max_batches, desc="sweep", unit="batch",
               disable=not progress, leave=True)
    try:
        for j, e in enumerate(points):
            pcs = {n: curves[n][j] for n in rxs}
            ran = {n: 0 for n in rxs}
            for n, pc in pcs.items():
                if stopped[n]:
                    curves[n][j] = _skipped(pc)
            bar.set_description(f"sweep {e:+.1f} dB")
            while True:
                todo = [n for n in rxs if not stopped[n] and _running(pcs[n], target_errors, max_blocks)]
                if not todo:
                    break
                i = min(pcs[n].batches for n in todo)
                group = {n: rxs[n] for n in todo if pcs[n].batches == i}
                t0 = time.perf_counter()
                b = run_batch(group, source, e, batch_size, seed, i, with_llr=with_llr, compiled=compiled)
                dt = (time.perf_counter() - t0) / len(group)
                for n in group:
                    ran[n] += 1
                    pcs[n].add(b.counts[n], b.tb_error[n])
                    pcs[n].seconds += dt
                    store.put(rxs[n], pcs[n])
                store.flush()
                if on_batch is not None:
                    on_batch(b)
                bar.update(len(group))
                bar.set_postfix_str(" ".join(f"{n}={pcs[n].tbler:.3g}" for n in list(rxs)[:3]))
            for n in rxs:
                bar.update(max(0, max_batches - ran[n]))  # the bar counts every planned batch once
                if stopped[n]:
                    continue
                if tbler_floor is not None and pcs[n].blocks and pcs[n].tbler < tbler_floor:
                    stopped[n] = True
    finally:
        bar.close()
    return curves


def simulate(receiver, scenario, ebno_db_list, *, target_block_errors: int | None = None,
             cache_path=None, **kw) -> list[PointCounts]:
    """:func:`simulate_many` for one receiver; returns its list of :class:`PointCounts`.
    ``target_block_errors`` / ``cache_path`` are accepted as aliases of ``target_errors`` / ``cache``."""
    if target_block_errors is not None:
        kw["target_errors"] = target_block_errors
    if cache_path is not None:
        if kw.get("cache") is not None and Path(kw["cache"]) != Path(cache_path):
            raise ConfigError(f"give either cache={kw['cache']} or cache_path={cache_path}, not both")
        kw["cache"] = cache_path
    return simulate_many({receiver.name: receiver}, scenario, ebno_db_list, **kw)[receiver.name]


def _named(receivers) -> dict:
    if isinstance(receivers, dict):
        rxs = dict(receivers)
    else:
        rxs = {}
        for rx in receivers:
            if rx.name in rxs:
                raise ConfigError(f"two receivers are named {rx.name!r}; names must be unique")
            rxs[rx.name] = rx
    if not rxs:
        raise ConfigError("no receivers given")
    return rxs


def _running(pc: PointCounts, target_errors: int, max_blocks: int) -> bool:
    return pc.errors < target_errors and pc.blocks < max_blocks


def _skipped(pc: PointCounts) -> PointCounts:
    return pc if not pc.blocks else PointCounts(pc.ebno_db)
