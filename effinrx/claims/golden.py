"""Golden store: measured values the suite compares against, one JSON file per (tier, device, claim).

Layout: ``golden/<tier>/<device>/<claim>.json`` where ``device`` is ``any`` for device-independent
values (counts, sizes, sparsity) and the device fingerprint for latencies. File format::

    {"schema": 1, "claim": "Q1", "tier": "smoke", "device": "any",
     "entries": {"<key>": {"kind": "counts", "value": {...}, "meta": {...}}}}

Provenance: an entry written by this version carries in ``meta`` the run's ``seed``, ``test``,
``device``, ``versions`` (Python and the packages that produce the numbers), ``git_commit``,
``config`` (the test's parameters and any configuration the check passes) with its
``config_hash``, ``regen_command`` (the pytest line that regenerates it) and ``command`` (the same,
unless the benchmark names its own reproducing command, e.g. an ``effinrx simulate`` line). :func:`comparability` says
when a golden and a run cannot be compared: a different seed (except latency, which draws no
random numbers that matter), or a different ``config_hash``. Such a check is "not comparable
(reason)": neither a pass nor a regression, and never a silent redraw. Older entries without
``config_hash`` are compared as before (their seed, which every entry has carried, is checked).

``<file>.obtained`` holds the complete golden file -- every entry of the golden, with this run's
values where this run measured them -- so moving it over the golden after a review loses nothing.

Lower-tier fallback: a check of a higher tier (``nightly``, ``paper``) whose own file has no entry
for the key is compared with the nearest lower tier's entry when both carry a ``config_hash`` and
the seed and configuration are the same (a smoke-sized check such as M1's MAC count runs unchanged
in every tier, so it needs one golden, not one per tier). Regen modes always write this tier's file.

Modes (pytest-regressions style): ``check`` compares and, on mismatch, writes ``<file>.obtained``
beside the golden; ``force-regen`` rewrites the golden and the check fails (so a regen is never
silent); ``regen-all`` rewrites and passes. A corrupt, missing or schema-mismatched golden raises
:class:`GoldenError` naming the file (and key), never a silent pass or a silent create-and-pass.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from effinrx.claims.registry import TIERS
from effinrx.errors import GoldenError
from effinrx.io import atomic_write_json
from effinrx.provenance import config_hash, static

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
        self._obtained_started: set[Path] = set()  # .obtained files this store (run) has written
        self._family: int | None = None  # count_family(), read once per run

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

    def count_family(self) -> int:
        """Number of distinct ``(claim, key)`` ``counts`` entries in this tier's device-independent
        goldens and those of the lower tiers (which :meth:`fallback_entry` may compare): the family
        over which the paired regression tests share one false-alarm rate (:meth:`paired_alpha`).
        A lower-tier key that this tier measures under another name is counted too (conservative)."""
        if self._family is None:
            tiers = TIERS[:TIERS.index(self.tier) + 1] if self.tier in TIERS else (self.tier,)
            self._family = len({(p.stem, k) for t in tiers
                                for p in sorted((self.root / t / "any").glob("*.json"))
                                for k, e in (GoldenStore(self.root, t).load(p.stem) or {}).get("entries", {}).items()
                                if e.get("kind") == "counts"})
        return self._family

    def paired_alpha(self) -> float:
        """Per-entry alpha of the paired count checks: ``family_alpha`` of ``[regression]`` in
        ``golden/claims.toml`` over :meth:`count_family` entries. Whether a run fails on any entry is
        then exactly Holm's decision for the family at ``family_alpha``."""
        from effinrx.claims.registry import regression_param

        return float(regression_param("family_alpha")) / max(1, self.count_family())

    def fallback_entry(self, claim: str, key: str, kind: str, meta: dict | None,
                       device: str = "any") -> tuple[str, dict] | None:
        """``(tier, entry)`` of the nearest lower tier's golden for ``claim/key`` that this run can be
        compared with (same kind; both metas carry a ``config_hash``; same seed and configuration), or
        None. Used only when this tier's own file has no such key."""
        if not (meta or {}).get("config_hash"):
            return None
        for low in reversed(TIERS[:TIERS.index(self.tier)] if self.tier in TIERS else ()):
            e = GoldenStore(self.root, low).entry(claim, key, device)
            if (e is not None and e["kind"] == kind and (e.get("meta") or {}).get("config_hash")
                    and comparability(e.get("meta"), meta, kind) is None):
                return low, e
        return None

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
        """Record a measured value beside the golden (``<claim>.json.obtained``) for review/copy.

        The file is the complete golden file with this run's values where measured: the first write
        of a run starts from the golden's entries (an ``.obtained`` left by an earlier run is
        replaced, not merged), later writes of the same run add to it."""
        import copy

        p = self.obtained_path(claim, device)
        base = None
        if p in self._obtained_started and p.exists():
            try:
                base = json.loads(p.read_text(encoding="utf-8"))
                if not isinstance(base.get("entries"), dict):
                    base = None
            except (OSError, ValueError, AttributeError):
                base = None
        if base is None:
            try:
                golden = self.load(claim, device)
            except GoldenError:
                golden = None  # a corrupt golden: the obtained file holds this run's entries only
            base = copy.deepcopy(golden) if golden is not None else None
        self._obtained_started.add(p)
        return self._write(p, claim, device, key, kind, value, meta, base)


#: kinds whose value depends on the seed (latency is timed on fixed inputs: a seed change does not
#: make it incomparable)
SEED_FREE_KINDS = frozenset({"latency"})


def comparability(golden_meta: dict | None, run_meta: dict | None, kind: str) -> str | None:
    """Why a golden entry and this run's measurement cannot be compared, or None when they can.

    A different ``seed`` (for seeded kinds) or ``config_hash`` (when both carry one: entries from
    before provenance have none and are compared as before)."""
    g, r = golden_meta or {}, run_meta or {}
    if kind not in SEED_FREE_KINDS and "seed" in g and "seed" in r and g["seed"] != r["seed"]:
        return f"seed {r['seed']} of this run, golden taken with seed {g['seed']}"
    gh, rh = g.get("config_hash"), r.get("config_hash")
    if gh is not None and rh is not None and gh != rh:
        diff = _config_diff(g.get("config"), r.get("config"))
        return f"configuration differs from the golden's (config_hash {rh} vs {gh}" + (
            f"; {diff}" if diff else "") + ")"
    return None


def _config_diff(golden: Any, run: Any, limit: int = 3) -> str:
    """The first differing keys of two configuration dicts: ``key: run vs golden``."""
    if not isinstance(golden, dict) or not isinstance(run, dict):
        return ""

    def flat(d, pre=""):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{pre}{k}."))
            else:
                out[f"{pre}{k}"] = v
        return out

    fg, fr = flat(golden), flat(run)
    keys = sorted(k for k in set(fg) | set(fr) if fg.get(k, "<absent>") != fr.get(k, "<absent>"))
    parts = [f"{k}: {fr.get(k, '<absent>')!r} vs {fg.get(k, '<absent>')!r}" for k in keys[:limit]]
    return ", ".join(parts) + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def provenance(*, seed: int | None, test: str, tier: str, config: dict | None = None) -> dict:
    """Provenance fields of a new golden entry (see the module docstring): ``versions``,
    ``git_commit``, ``config``, ``config_hash``, ``seed``, ``command``. Versions and the commit are
    read once per process."""
    cfg = dict(config or {})

    out = {**static(), "config": cfg, "config_hash": config_hash(cfg)}
    if seed is not None:
        out["seed"] = int(seed)
    # "command" may be replaced by the benchmark's own (e.g. the effinrx simulate line that gives
    # the same counts); "regen_command" always regenerates the entry
    out["regen_command"] = out["command"] = (f"python -m pytest '{test}' --tier {tier}"
                                             + (f" --seed {int(seed)}" if seed is not None else "")
                                             + " --force-regen")
    return out


def golden_curves(store: "GoldenStore", claims, names, prefix: str = "") -> dict:
    """TBLER curves stored in ``store``'s golden files of ``claims`` (an ID or a list; device
    ``any``): receiver name -> list of :class:`effinrx.link.montecarlo.PointCounts` sorted by Eb/N0,
    read from the ``counts`` entries keyed ``<prefix><key>/ebno=<x>``. ``names``: receiver names
    (key = name) or a dict name -> key; names without entries are left out. Used to draw the
    highest tier's curves under a lower tier's points (:func:`background_curves`)."""
    from effinrx.link.montecarlo import PointCounts

    entries: dict = {}
    for claim in ([claims] if isinstance(claims, str) else claims):
        entries.update((store.load(claim) or {"entries": {}})["entries"])
    names = names if isinstance(names, dict) else {n: n for n in names}
    out: dict = {}
    for name, key_base in names.items():
        head = f"{prefix}{key_base}/ebno="
        pts = []
        for key, e in entries.items():
            if not key.startswith(head) or e.get("kind") != "counts":
                continue
            try:
                x = float(key[len(head):])
            except ValueError:
                continue
            v = e["value"]
            pts.append(PointCounts(ebno_db=x, errors=int(v["errors"]), blocks=int(v["blocks"]),
                                   bit_errors=int(v.get("bit_errors", 0)), bits=int(v.get("bits", 0)),
                                   crc_failures=int(v.get("crc_failures", 0))))
        if pts:
            out[name] = sorted(pts, key=lambda p: p.ebno_db)
    return out


def background_curves(store: "GoldenStore", claim, names, prefix: str = "") -> tuple[dict, str | None]:
    """The curves of the highest tier above ``store.tier`` whose golden files of ``claim`` hold a
    swept curve (>= 2 Eb/N0 points) for any of ``names``: ``(curves, tier)``, or ``({}, None)``.
    A smoke run's figure then shows the nightly (or paper) curves with its own points on top."""
    from effinrx.claims.registry import TIERS

    for tier in reversed(TIERS[TIERS.index(store.tier) + 1:] if store.tier in TIERS else ()):
        curves = golden_curves(GoldenStore(store.root, tier), claim, names, prefix)
        curves = {n: pts for n, pts in curves.items() if len(pts) >= 2}
        if curves:
            return curves, tier
    return {}, None
