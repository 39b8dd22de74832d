"""Golden store: measured values the suite compares against, one JSON file per (tier, device, claim).

Layout: ``golden/<tier>/<device>/<claim>.json`` where ``device`` is ``any`` for device-independent
values (counts, sizes, sparsity) and the device fingerprint for latencies. File format::

    {"schema": 1, "claim": "Q1", "tier": "smoke", "device": "any",
     "entries": {"<key>": {"kind": "counts", "value": {...}, "meta": {...}}}}

Modes (pytest-regressions style): ``check`` compares and, on mismatch, writes ``<file>.obtained``
beside the golden; ``force-regen`` rewrites the golden and the check fails (so a regen is never
silent); ``regen-all`` rewrites and passes. A corrupt, missing or schema-mismatched golden raises
:class:`GoldenError` naming the file (and key), never a silent pass or a silent create-and-pass.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from effinrx.errors import GoldenError
from effinrx.io import atomic_write_json

SCHEMA = 1
MODES = ("check", "force-regen", "regen-all")


class GoldenStore:
    """Read and write golden files under ``root`` for one ``tier``."""

    def __init__(self, root: str | Path, tier: str, mode: str = "check"):
        if mode not in MODES:
            raise GoldenError(f"golden mode {mode!r} not in {MODES}")
        self.root = Path(root)
        self.tier = tier
        self.mode = mode

    def path(self, claim: str, device: str = "any") -> Path:
        return self.root / self.tier / device / f"{claim}.json"

    def obtained_path(self, claim: str, device: str = "any") -> Path:
        p = self.path(claim, device)
        return p.with_name(p.name + ".obtained")

    def load(self, claim: str, device: str = "any") -> dict | None:
        """Return the parsed file, None if it does not exist; GoldenError if corrupt or wrong schema."""
        p = self.path(claim, device)
        if not p.exists():
            return None
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise GoldenError(f"golden file {p} is corrupt: {e}") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            got = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise GoldenError(f"golden file {p}: schema {got!r}, expected {SCHEMA}; regenerate with --force-regen")
        if data.get("claim") != claim or not isinstance(data.get("entries"), dict):
            raise GoldenError(f"golden file {p}: expected claim {claim!r} with an 'entries' table")
        for key, entry in data["entries"].items():
            if not isinstance(entry, dict) or "value" not in entry or "kind" not in entry:
                raise GoldenError(f"golden file {p}, key {key!r}: entry lacks 'kind'/'value'")
        return data

    def unchecked(self, checked: set[tuple[str, str, str]], ran_tests: set[str],
                  higher_tier: set[str] = frozenset(), devices: tuple[str, ...] = ("any",)) -> list[dict]:
        """Golden entries of this tier and ``devices`` that are left over: ``[{"file", "key", "test",
        "why"}]``. Other devices' folders are not looked at (their latencies are not this run's).

        An entry is left over when its test (``meta.test``) ran but no check read it (``checked``
        holds ``(claim, device, key)`` of every check: a renamed key), or when its test is now of a
        higher tier than this one (``higher_tier``: node ids deselected for their tier)."""
        out = []
        for p in sorted((self.root / self.tier).glob("*/*.json")):
            device, claim = p.parent.name, p.stem
            if device not in devices:
                continue
            data = self.load(claim, device)
            for key, e in (data or {}).get("entries", {}).items():
                test = (e.get("meta") or {}).get("test")
                if test in ran_tests and (claim, device, key) not in checked:
                    why = "its test ran and did not check it"
                elif test in higher_tier:
                    why = f"its test is no longer of tier {self.tier}"
                else:
                    continue
                out.append({"file": str(p), "key": key, "test": test, "why": why})
        return out

    def entry(self, claim: str, key: str, device: str = "any") -> dict | None:
        data = self.load(claim, device)
        if data is None:
            return None
        return data["entries"].get(key)

    def _write(self, path: Path, claim: str, device: str, key: str, kind: str, value: Any,
               meta: dict, base: dict | None) -> Path:
        data = base or {"schema": SCHEMA, "claim": claim, "tier": self.tier, "device": device, "entries": {}}
        data["entries"][key] = {"kind": kind, "value": value, "meta": meta}
        return atomic_write_json(path, data)

    def write(self, claim: str, key: str, kind: str, value: Any, meta: dict, device: str = "any") -> Path:
        """Set one key in the golden file (other keys kept). A corrupt file is replaced in regen modes."""
        try:
            base = self.load(claim, device)
        except GoldenError:
            if self.mode == "check":
                raise
            base = None
        return self._write(self.path(claim, device), claim, device, key, kind, value, meta, base)

    def write_obtained(self, claim: str, key: str, kind: str, value: Any, meta: dict,
                       device: str = "any") -> Path:
        """Record a measured value beside the golden (``<claim>.json.obtained``) for review/copy."""
        p = self.obtained_path(claim, device)
        base = None
        if p.exists():
            try:
                base = json.loads(p.read_text(encoding="utf-8"))
                if not isinstance(base.get("entries"), dict):
                    base = None
            except (OSError, ValueError, AttributeError):
                base = None
        return self._write(p, claim, device, key, kind, value, meta, base)
