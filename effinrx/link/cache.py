"""Resume cache of the Monte-Carlo engine: one JSON file holding finished batches of any receivers.

Format (``schema`` 2)::

    {"schema": 2, "entries": {"<key>": {"receiver": name, "points": {"<ebno>": {counts}},
                                        "sha": "<sha256 of the points>"}}}

``counts`` holds ``errors blocks bit_errors bits batches crc_failures`` and, since per-TB outcomes
are kept, ``tb`` (hex, :func:`effinrx.link.counts.pack_outcomes`; inside the checksum), so a resumed
point still has them (paired tests, paired regression checks). Entries written before carry no
``tb``; a point resumed from one has ``tb`` None.

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
        ok = ok and all(_tb_ok(v) for v in pts.values())
        if not ok:
            raise ConfigError(f"simulation cache {path}, entry {key}: malformed counts; delete it")
        if ent.get("sha") != _sha(pts):
            raise ConfigError(f"simulation cache {path}, entry {key}: counts do not match their checksum "
                              f"(edited by hand?); delete it")
    return data["entries"]


class Store:
    """Finished batches of one sweep (``path`` None: nothing is read or written)."""

    def __init__(self, path, source, batch: int, seed: int):
        self.path = Path(path) if path is not None else None
        self.source, self.batch, self.seed = source, batch, seed
        self.entries = load(self.path) if self.path is not None else {}
        self._dirty = False

    def get(self, receiver, ebno_db: float):
        ent = self.entries.get(entry_key(receiver, self.source, self.batch, self.seed))
        k = f"{float(ebno_db):.4f}"
        rec = (ent or {}).get("points", {}).get(k)
        if not rec:
            return PointCounts(float(ebno_db))
        secs = (ent.get("seconds") or {}).get(k, 0.0)  # outside the checksum: not a count
        tb = unpack_outcomes(rec["tb"], rec["blocks"]) if rec.get("tb") is not None else None
        return PointCounts(float(ebno_db), **{f: rec[f] for f in _FIELDS}, seconds=float(secs), tb=tb)

    def put(self, receiver, pc) -> None:
        if self.path is None:
            return
        ent = self.entries.setdefault(entry_key(receiver, self.source, self.batch, self.seed),
                                      {"receiver": receiver.name, "points": {}})
        rec = {f: getattr(pc, f) for f in _FIELDS}
        if pc.tb is not None and len(pc.tb) == pc.blocks:
            rec["tb"] = pack_outcomes(pc.tb)
        ent["points"][f"{pc.ebno_db:.4f}"] = rec
        ent["sha"] = _sha(ent["points"])
        ent.setdefault("seconds", {})[f"{pc.ebno_db:.4f}"] = round(pc.seconds, 3)
        self._dirty = True

    def flush(self) -> None:
        if self.path is None or not self._dirty:
            return

        atomic_write_json(self.path, {"schema": SCHEMA, "entries": self.entries})
        self._dirty = False
