"""The error rule and its counts: :func:`count` turns one batch's wrong information bits and CRC
results into :class:`BatchCounts`; :class:`PointCounts` sums them per receiver and Eb/N0 point.
Apart from the engine (:mod:`effinrx.link.montecarlo`) so that the resume cache can rebuild counts
without importing the engine."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from effinrx.errors import ConfigError
from effinrx.stats import clopper_pearson


@dataclass
class PointCounts:
    """Counts at one Eb/N0 point. ``errors``/``blocks``: transport blocks (per UE) in error / sent;
    ``bit_errors``/``bits``: information bits; ``crc_failures``: blocks whose CRC failed;
    ``batches``: batches run; ``seconds``: wall time spent on the point (summed over resumed runs;
    not compared, so seeded reruns compare equal); ``tb``: per-TB outcomes bool [blocks] in slot
    order (True = in error), kept by the engine and the resume cache; None when a batch came
    without them (an older cache). Not compared: the counts are the result, the outcomes what
    paired tests and paired regression checks need. ``per_batch``: ``(errors, bit_errors,
    crc_failures)`` of each batch in order (blocks and bits are the same in every batch), so the
    resume cache can cut a longer run's point back to the batches a shorter sweep would run
    (:meth:`first`); None when a batch came without them (an older cache). Not compared."""

    ebno_db: float
    errors: int = 0
    blocks: int = 0
    bit_errors: int = 0
    bits: int = 0
    batches: int = 0
    crc_failures: int = 0
    seconds: float = field(default=0.0, compare=False)
    tb: object = field(default=None, compare=False, repr=False)
    per_batch: list | None = field(default=None, compare=False, repr=False)

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
        return clopper_pearson(self.errors, self.blocks, confidence)

    def add(self, c: "BatchCounts", tb=None) -> None:
        """Add one batch; ``tb`` bool [B, U] its per-TB outcomes (kept while every batch had them)."""
        if tb is not None and (self.tb is not None or self.blocks == 0):
            tb = np.asarray(tb, bool).reshape(-1)
            self.tb = tb if self.tb is None else np.concatenate([self.tb, tb])
        else:
            self.tb = None
        if self.per_batch is not None or self.batches == 0:
            self.per_batch = (self.per_batch or []) + [(c.errors, c.bit_errors, c.crc_failures)]
        self.errors += c.errors
        self.blocks += c.blocks
        self.bit_errors += c.bit_errors
        self.bits += c.bits
        self.crc_failures += c.crc_failures
        self.batches += 1


    def batches_to_stop(self, target_errors: int, max_blocks: int) -> int | None:
        """How many of this point's batches a fresh sweep with these stop rules runs before it
        stops (errors >= ``target_errors`` or blocks >= ``max_blocks``): ``batches`` when it runs
        them all (or more: the point is a prefix), fewer when this point ran past the rules; None
        when that cannot be told (errors per batch unknown: neither ``per_batch`` nor ``tb``)."""
        if self.batches == 0:
            return 0
        per = self.blocks // self.batches
        by_blocks = min(self.batches, -(-int(max_blocks) // per))
        if self.per_batch is not None and len(self.per_batch) == self.batches:
            errs = [x[0] for x in self.per_batch]
        elif self.tb is not None and len(self.tb) == self.blocks:
            errs = [int(self.tb[i * per:(i + 1) * per].sum()) for i in range(self.batches)]
        elif self.errors < target_errors:  # the error rule cannot have fired before the last batch
            return by_blocks
        else:
            return self.batches if self.batches == 1 else None
        e = 0
        for i, be in enumerate(errs[:by_blocks], 1):
            e += be
            if e >= target_errors:
                return i
        return by_blocks

    def first(self, k: int) -> "PointCounts":
        """The counts of this point's first ``k`` batches (needs ``per_batch``; ``tb`` cut alike;
        ``seconds`` prorated)."""
        if k == self.batches:
            return self
        if self.per_batch is None or not 0 <= k <= self.batches:
            raise ConfigError(f"cannot cut a point of {self.batches} batches to {k} (no per-batch counts)")
        per, bits = self.blocks // self.batches, self.bits // self.batches
        pb = list(self.per_batch[:k])
        return PointCounts(self.ebno_db, errors=sum(x[0] for x in pb), blocks=per * k,
                           bit_errors=sum(x[1] for x in pb), bits=bits * k, batches=k,
                           crc_failures=sum(x[2] for x in pb), seconds=self.seconds * k / self.batches,
                           tb=None if self.tb is None else self.tb[: per * k], per_batch=pb)


@dataclass(frozen=True)
class BatchCounts:
    """Counts of one receiver on one batch (see :func:`count`)."""

    errors: int
    blocks: int
    bit_errors: int
    bits: int
    crc_failures: int


def count(wrong, crc_ok, tb_bits: int) -> BatchCounts:
    """The error rule. ``wrong`` int [B, U]: wrong information bits per TB; ``crc_ok`` bool [B, U];
    ``tb_bits``: information bits per TB. A TB is in error when ``wrong > 0``."""
    wrong = np.asarray(wrong)
    crc_ok = np.asarray(crc_ok, bool)
    if wrong.shape != crc_ok.shape:
        raise ConfigError(f"count: wrong {wrong.shape} and crc {crc_ok.shape} differ in shape")
    return BatchCounts(int(np.sum(wrong > 0)), int(wrong.size), int(np.sum(wrong)),
                       int(wrong.size) * int(tb_bits), int(np.sum(~crc_ok)))


def outcome_bytes(n: int) -> int:
    """Bytes that :func:`pack_outcomes` uses for ``n`` TBs (8 a byte, the last one padded)."""
    return (int(n) + 7) // 8


def pack_outcomes(tb) -> str:
    """Per-TB outcomes bool [n] as a hex string (``np.packbits``, 8 TBs a byte): how goldens keep
    them. The length is the entry's ``blocks``."""
    return np.packbits(np.asarray(tb, bool).reshape(-1)).tobytes().hex()


def unpack_outcomes(text: str, n: int):
    """Inverse of :func:`pack_outcomes`: bool [n]; ConfigError when ``text`` does not hold ``n`` TBs."""
    try:
        raw = bytes.fromhex(text)
    except (TypeError, ValueError):
        raise ConfigError(f"per-TB outcomes: not a hex string ({str(text)[:20]!r}...)") from None
    if len(raw) != outcome_bytes(n):
        raise ConfigError(f"per-TB outcomes: {len(raw)} bytes for {n} TBs (expected {outcome_bytes(n)})")
    return np.unpackbits(np.frombuffer(raw, np.uint8))[: int(n)].astype(bool)


def as_counts(p: PointCounts) -> dict:
    """A golden ``counts`` value of one point: errors/blocks plus bit errors and CRC failures, and,
    when the point kept them, the per-TB outcomes (``tb``, :func:`pack_outcomes`) with
    ``tb_per_batch`` (TBs per batch: a difference names its batch)."""
    out = {"errors": int(p.errors), "blocks": int(p.blocks), "bit_errors": int(p.bit_errors),
           "bits": int(p.bits), "crc_failures": int(p.crc_failures)}
    if p.tb is not None and p.batches and len(p.tb) == p.blocks:
        out["tb"] = pack_outcomes(p.tb)
        out["tb_per_batch"] = int(p.blocks // p.batches)
    return out
