"""Monte-Carlo TBLER/BER engine for any :class:`~effinrx.receivers.base.Receiver`.

Errors are counted from the true information bits (a block is in error if any decoded bit differs),
not from the CRC. Each batch ``i`` of Eb/N0 point ``e`` is seeded from ``(seed, e, i)``, so results
are identical whether a sweep runs in one go or is resumed from the JSON cache. The transmitter,
AWGN, receiver and decoder run in one ``tf.function`` cached per (scenario, receiver, batch) in the
process; channel sampling runs eagerly (the UMi topology is set per batch).
"""
from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from effinrx.errors import ConfigError


@dataclass
class PointCounts:
    """Counts at one Eb/N0 point. ``errors``/``blocks``: transport blocks (per UE) in error / sent;
    ``bit_errors``/``bits``: information bits; ``batches``: batches run; ``seconds``: wall time
    spent on the point (summed over resumed runs; not compared, so seeded reruns compare equal)."""

    ebno_db: float
    errors: int = 0
    blocks: int = 0
    bit_errors: int = 0
    bits: int = 0
    batches: int = 0
    seconds: float = field(default=0.0, compare=False)

    @property
    def block_errors(self) -> int:
        """Alias of ``errors`` (transport blocks in error)."""
        return self.errors

    @property
    def tbler(self) -> float:
        return self.errors / self.blocks if self.blocks else float("nan")

    @property
    def ber(self) -> float:
        return self.bit_errors / self.bits if self.bits else float("nan")

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        from effinrx.stats import clopper_pearson

        return clopper_pearson(self.errors, self.blocks, confidence)


_STEPS: dict = {}


def _step(receiver, sc, batch: int):
    """Compiled one-batch function ``(h, no) -> (bit_err [B,U], nbits [B,U])`` cached per process."""
    k = (id(receiver), sc, batch)
    if k in _STEPS:
        return _STEPS[k][1]
    from effinrx._tf import tf
    from sionna.phy.channel import ApplyOFDMChannel

    from effinrx.link.pusch import tb_decoder, transmitter

    t = tf()
    tx, dec, apply = transmitter(sc), tb_decoder(sc), ApplyOFDMChannel()

    @t.function(reduce_retracing=True)
    def step(h, no):
        x, b = tx(batch)
        y = apply(x, h, no)
        llr = receiver.llr(y, no, h=h if receiver.needs_perfect_csi else None)
        b_hat, _ = dec(llr)
        wrong = t.reduce_sum(t.cast(t.not_equal(b, b_hat), t.int32), axis=-1)  # [B, U]
        return wrong, t.shape(b)[-1]

    _STEPS[k] = (receiver, step)  # keep the receiver alive so its id is not reused
    return step


def batch_seed(seed: int, ebno_db: float, i: int) -> int:
    return zlib.crc32(f"{seed}/{ebno_db:.4f}/{i}".encode()) & 0x7FFFFFFF


def run_batch(receiver, sc, ebno_db: float, batch: int, seed: int, i: int):
    """One seeded batch. Returns (block errors, blocks, bit errors, bits)."""
    import numpy as np
    import sionna.phy

    from effinrx._tf import tf
    from effinrx.link.channels import sample_channel
    from effinrx.link.pusch import ebno_to_no

    s = batch_seed(seed, ebno_db, i)
    # Sionna draws from its own generator, reset here in place (also inside compiled graphs); the
    # TF global seed is left alone because changing it makes tf.function retrace every batch
    sionna.phy.config.seed = s
    h = sample_channel(sc, batch)
    no = tf().fill([batch], tf().cast(ebno_to_no(sc, float(ebno_db)), tf().float32))
    wrong, nb = _step(receiver, sc, batch)(h, no)
    wrong = np.asarray(wrong)
    return int(np.sum(wrong > 0)), int(wrong.size), int(np.sum(wrong)), int(wrong.size) * int(nb)


def _cache_key(receiver, sc, batch, seed) -> str:
    desc = json.dumps({"rx": receiver.describe(), "sc": sc.as_dict(), "batch": batch, "seed": seed},
                      sort_keys=True, default=str)
    return hashlib.sha1(desc.encode()).hexdigest()[:16]


def simulate(receiver, scenario, ebno_db_list, *, max_blocks: int = 1000, target_errors: int = 100,
             batch_size: int = 64, seed: int = 0, cache: "str | Path | None" = None, progress: bool = True,
             tbler_floor: float | None = None, target_block_errors: int | None = None,
             cache_path: "str | Path | None" = None) -> list[PointCounts]:
    """TBLER/BER of ``receiver`` on ``scenario`` at each Eb/N0 (dB, rate-adjusted).

    Stop rules per point: ``target_errors`` block errors reached or ``max_blocks`` blocks sent
    (whole batches). Sweep stop: after a point whose TBLER is below ``tbler_floor``, higher points
    are skipped (returned with zero blocks). ``cache``: JSON file; finished batches are stored after
    each batch (atomic write) and a rerun continues where it stopped with identical results.
    Returns one :class:`PointCounts` per Eb/N0 in input order. ``target_block_errors`` and
    ``cache_path`` are accepted as aliases of ``target_errors`` and ``cache``.
    """
    import time

    from tqdm import tqdm

    from effinrx.io import atomic_write_json

    if target_block_errors is not None:
        target_errors = target_block_errors
    if cache_path is not None:
        if cache is not None and Path(cache) != Path(cache_path):
            raise ConfigError(f"give either cache={cache} or cache_path={cache_path}, not both")
        cache = cache_path
    if batch_size < 1 or max_blocks < 1 or target_errors < 1:
        raise ConfigError(f"batch_size, max_blocks, target_errors must be >= 1, got "
                          f"{batch_size}, {max_blocks}, {target_errors}")
    points = [float(e) for e in ebno_db_list]
    if not points:
        raise ConfigError("ebno_db_list is empty")
    key = _cache_key(receiver, scenario, batch_size, seed)
    store: dict = {}
    cpath = Path(cache) if cache is not None else None
    if cpath is not None and cpath.exists():
        try:
            store = json.loads(cpath.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"simulation cache {cpath} is not valid JSON ({e}); delete it") from e
    entry = store.setdefault(key, {"receiver": receiver.name, "points": {}})
    out = []
    stop = False
    for e in points:
        rec = entry["points"].get(f"{e:.4f}")
        pc = PointCounts(**rec) if rec else PointCounts(e)
        if stop:
            out.append(PointCounts(e))
            continue
        blocks_per_batch = batch_size * scenario.num_tx
        total = max(1, -(-max_blocks // blocks_per_batch))
        with tqdm(total=total, initial=pc.batches, desc=f"{receiver.name} {e:+.1f} dB",
                  disable=not progress, leave=False) as bar:
            while pc.errors < target_errors and pc.blocks < max_blocks:
                t0 = time.perf_counter()
                be, bl, bite, bits = run_batch(receiver, scenario, e, batch_size, seed, pc.batches)
                pc.seconds += time.perf_counter() - t0
                pc.errors += be
                pc.blocks += bl
                pc.bit_errors += bite
                pc.bits += bits
                pc.batches += 1
                bar.update(1)
                bar.set_postfix(tbler=f"{pc.tbler:.3g}")
                if cpath is not None:
                    entry["points"][f"{e:.4f}"] = asdict(pc)
                    atomic_write_json(cpath, store)
        out.append(pc)
        if tbler_floor is not None and pc.tbler < tbler_floor:
            stop = True
    return out
