"""Resume cache of the Monte-Carlo engine: one JSON file holding finished batches of any receivers.

Format (``schema`` 2)::

    {"schema": 2, "entries": {"<key>": {"receiver": name, "points": {"<ebno>": {counts}},
                                        "sha": "<sha256 of the points>"}}}

``counts`` holds ``errors blocks bit_errors bits batches crc_failures`` and, since per-TB outcomes
are kept, ``tb`` (hex, :func:`effinrx.link.counts.pack_outcomes`; inside the checksum), so a resumed
point still has them (paired tests, paired regression checks). Entries written before carry no
``tb``; a point resumed from one has ``tb`` None. ``pb`` (inside the checksum) holds each batch's
``[errors, bit_errors, crc_failures]``: a sweep with a smaller block budget or error target than the
one that wrote a point reads only the batches it would have run (:meth:`Store.get`), so sweeps of
different sizes can share one file and still give the counts of an uncached run.

``key`` hashes the receiver's ``describe()`` (weights digest included), the channel source, the
batch size and the seed, so counts are never reused for another receiver or other slots. The file
is validated on load: a wrong schema, a malformed entry or counts edited by hand (checksum) raise a
one-line :class:`~effinrx.errors.ConfigError` naming the file and entry. Writes are atomic.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from effinrx.errors import ConfigError
from effinrx.io import atomic_write_json
from effinrx.link.counts import PointCounts, outcome_bytes, pack_outcomes, unpack_outcomes

SCHEMA = 2
_FIELDS = ("errors", "blocks", "bit_errors", "bits", "batches", "crc_failures")


ENV = "EFFINRX_SWEEP_CACHE"


def env_path() -> str | None:
    """The resume-cache file named by ``$EFFINRX_SWEEP_CACHE`` (None when unset or empty): the one
    switch that makes the long tiers' sweeps resumable."""
    return os.environ.get(ENV) or None


def _sha(points: dict) -> str:
    return hashlib.sha256(json.dumps(points, sort_keys=True).encode()).hexdigest()[:20]


def entry_key(receiver, source, batch: int, seed: int) -> str:
    desc = json.dumps({"rx": receiver.describe(), "src": source.key(), "batch": int(batch), "seed": int(seed)},
                      sort_keys=True, default=str)
    return hashlib.sha1(desc.encode()).hexdigest()[:16]


def _tb_ok(rec: dict) -> bool:
    tb = rec.get("tb")
    return tb is None or (isinstance(tb, str) and len(tb) == 2 * outcome_bytes(rec["blocks"]))


def _pb_ok(rec: dict) -> bool:
    """``pb`` absent, or one [errors, bit_errors, crc_failures] of ints >= 0 per batch."""
    pb = rec.get("pb")
    return pb is None or (isinstance(pb, list) and len(pb) == rec["batches"] and all(
        isinstance(x, list) and len(x) == 3 and all(isinstance(v, int) and v >= 0 for v in x) for x in pb))


def _pb_sums_ok(rec: dict) -> bool:
    pb = rec.get("pb")
    return pb is None or [sum(x[i] for x in pb) for i in range(3)] == [rec["errors"], rec["bit_errors"],
                                                                        rec["crc_failures"]]


def load(path: Path) -> dict:
    """The validated ``entries`` table of ``path`` ({} when the file does not exist)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"simulation cache {path}: unreadable ({e}); delete it") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("entries"), dict):
        raise ConfigError(f"simulation cache {path}: not a schema-{SCHEMA} effinrx cache; delete it")
    for key, ent in data["entries"].items():
        pts = ent.get("points") if isinstance(ent, dict) else None
        ok = isinstance(pts, dict) and all(
            isinstance(v, dict) and all(isinstance(v.get(f), int) and v[f] >= 0 for f in _FIELDS)
            and v["errors"] <= v["blocks"] and v["bit_errors"] <= v["bits"] for v in pts.values())
        ok = ok and all(_tb_ok(v) and _pb_ok(v) for v in pts.values())
        if not ok:
            raise ConfigError(f"simulation cache {path}, entry {key}: malformed counts; delete it")
        if ent.get("sha") != _sha(pts):
            raise ConfigError(f"simulation cache {path}, entry {key}: counts do not match their checksum "
                              f"(edited by hand?); delete it")
        if not all(_pb_sums_ok(v) for v in pts.values()):
            raise ConfigError(f"simulation cache {path}, entry {key}: per-batch counts do not add up to "
                              f"the point's counts; delete it")
    return data["entries"]


class Store:
    """Finished batches of one sweep (``path`` None: nothing is read or written)."""

    def __init__(self, path, source, batch: int, seed: int):
        self.path = Path(path) if path is not None else None
        self.source, self.batch, self.seed = source, batch, seed
        self.entries = load(self.path) if self.path is not None else {}
        self._dirty = False

    def get(self, receiver, ebno_db: float, *, target_errors: int | None = None, max_blocks: int | None = None):
        """The cached counts of ``receiver`` at ``ebno_db`` (empty PointCounts when none). With the
        sweep's stop rules, a point that a longer sweep (more blocks, a higher error target) ran past
        them is cut back to the batches this sweep runs (:meth:`PointCounts.first`), so a shared
        cache never changes counts; an older point that cannot be cut is not used (recomputed)."""
        ent = self.entries.get(entry_key(receiver, self.source, self.batch, self.seed))
        k = f"{float(ebno_db):.4f}"
        rec = (ent or {}).get("points", {}).get(k)
        if not rec:
            return PointCounts(float(ebno_db))
        secs = (ent.get("seconds") or {}).get(k, 0.0)  # outside the checksum: not a count
        tb = unpack_outcomes(rec["tb"], rec["blocks"]) if rec.get("tb") is not None else None
        pb = [tuple(x) for x in rec["pb"]] if rec.get("pb") is not None else None
        pc = PointCounts(float(ebno_db), **{f: rec[f] for f in _FIELDS}, seconds=float(secs), tb=tb, per_batch=pb)
        if target_errors is None or max_blocks is None:
            return pc
        n = pc.batches_to_stop(target_errors, max_blocks)
        if n == pc.batches:
            return pc
        return pc.first(n) if n is not None and pb is not None else PointCounts(float(ebno_db))

    def put(self, receiver, pc) -> None:
        if self.path is None:
            return
        ent = self.entries.setdefault(entry_key(receiver, self.source, self.batch, self.seed),
                                      {"receiver": receiver.name, "points": {}})
        old = ent["points"].get(f"{pc.ebno_db:.4f}")
        if old is not None and old["batches"] > pc.batches:
            return  # an older, longer point this sweep could not cut: kept, the shorter one not saved
        rec = {f: getattr(pc, f) for f in _FIELDS}
        if pc.tb is not None and len(pc.tb) == pc.blocks:
            rec["tb"] = pack_outcomes(pc.tb)
        if pc.per_batch is not None and len(pc.per_batch) == pc.batches:
            rec["pb"] = [list(map(int, x)) for x in pc.per_batch]
        ent["points"][f"{pc.ebno_db:.4f}"] = rec
        ent["sha"] = _sha(ent["points"])
        ent.setdefault("seconds", {})[f"{pc.ebno_db:.4f}"] = round(pc.seconds, 3)
        self._dirty = True

    def flush(self) -> None:
        if self.path is None or not self._dirty:
            return

        atomic_write_json(self.path, {"schema": SCHEMA, "entries": self.entries})
        self._dirty = False
