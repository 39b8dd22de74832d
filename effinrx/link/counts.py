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
    paired tests and paired regression checks need."""

    ebno_db: float
    errors: int = 0
    blocks: int = 0
    bit_errors: int = 0
    bits: int = 0
    batches: int = 0
    crc_failures: int = 0
    seconds: float = field(default=0.0, compare=False)
    tb: object = field(default=None, compare=False, repr=False)

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
        self.errors += c.errors
        self.blocks += c.blocks
        self.bit_errors += c.bit_errors
        self.bits += c.bits
        self.crc_failures += c.crc_failures
        self.batches += 1


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
