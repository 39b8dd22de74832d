"""The claims table ``golden/claims.toml``: one row per claim ID of ``shared/claims.md``.

Each claim carries its source paper, statement, metric, the paper value (a reference shown beside
our measurement, never a golden), the default golden comparison (``kind`` and ``tol``), the tier that
first exercises it and the issue that implements it. Quantitative claims also carry
``reference`` and ``allowed_fraction`` (MLPerf style: reproduced when |measured - reference| <=
allowed_fraction * |reference|).
"""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from effinrx.errors import ConfigError

KINDS = ("exact", "rel", "abs", "counts", "latency")
TIERS = ("smoke", "nightly", "paper")
_REQUIRED = ("source", "family", "statement", "metric", "paper", "kind", "tier", "issue")


def repo_root() -> Path:
    """The checkout root (parent of the ``effinrx`` package)."""
    return Path(__file__).resolve().parents[2]


def default_claims_path() -> Path:
    return repo_root() / "golden" / "claims.toml"


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    family: str
    statement: str
    metric: str
    paper: str
    kind: str
    tier: str
    issue: int
    tol: float | None = None
    reference: float | None = None
    allowed_fraction: float | None = None
    extra: dict = field(default_factory=dict)

    def reproduces(self, measured: float) -> bool | None:
        """MLPerf-style rule for quantitative claims; None when the claim has no numeric reference."""
        if self.reference is None or self.allowed_fraction is None:
            return None
        return abs(float(measured) - self.reference) <= self.allowed_fraction * abs(self.reference)


def _parse_toml(text: str, origin: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: not valid TOML: {e}") from None


@functools.lru_cache(maxsize=4)
def _read_registry(path: str | None) -> tuple[str, dict]:
    """``(origin, parsed TOML)`` of the registry file, read once per process and path."""
    p = Path(path) if path else default_claims_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"claims registry {p}: cannot read ({e.strerror})") from None
    return str(p), _parse_toml(text, str(p))


def parse_claims(text: str, origin: str = "<claims>") -> dict[str, Claim]:
    """Parse and validate claims TOML text; errors name the file and the claim key."""
    return _claims_from(_parse_toml(text, origin), origin)


def _claims_from(data: dict, origin: str) -> dict[str, Claim]:
    if data.get("schema") != 1:
        raise ConfigError(f"{origin}: expected 'schema = 1', got {data.get('schema')!r}")
    rows = data.get("claims")
    if not isinstance(rows, dict) or not rows:
        raise ConfigError(f"{origin}: no [claims.<ID>] tables")
    out: dict[str, Claim] = {}
    for cid, row in rows.items():
        missing = [k for k in _REQUIRED if k not in row]
        if missing:
            raise ConfigError(f"{origin}: claim {cid}: missing key(s) {', '.join(missing)}")
        if row["kind"] not in KINDS:
            raise ConfigError(f"{origin}: claim {cid}: kind {row['kind']!r} not in {KINDS}")
        if row["tier"] not in TIERS:
            raise ConfigError(f"{origin}: claim {cid}: tier {row['tier']!r} not in {TIERS}")
        known = set(_REQUIRED) | {"tol", "reference", "allowed_fraction"}
        out[cid] = Claim(
            id=cid, source=str(row["source"]), family=row["family"], statement=row["statement"],
            metric=row["metric"], paper=str(row["paper"]), kind=row["kind"], tier=row["tier"],
            issue=int(row["issue"]), tol=row.get("tol"), reference=row.get("reference"),
            allowed_fraction=row.get("allowed_fraction"),
            extra={k: v for k, v in row.items() if k not in known},
        )
    return out


@functools.lru_cache(maxsize=4)
def load_claims(path: str | None = None) -> dict[str, Claim]:
    """Load the registry (default ``golden/claims.toml``)."""
    origin, data = _read_registry(path)
    return _claims_from(data, origin)


def param(claim_id: str, name: str, path: str | None = None):
    """A claim's decision parameter from ``golden/claims.toml`` (``margin``, ``margin_db``, ``alpha``,
    ...): the one place a verdict's margin or threshold is stated. ConfigError naming the file,
    claim and key when it is missing."""
    claims = load_claims(path)
    if claim_id not in claims:
        raise ConfigError(f"unknown claim ID {claim_id!r} in {path or default_claims_path()}")
    extra = claims[claim_id].extra
    if name not in extra:
        raise ConfigError(f"{path or default_claims_path()}: claim {claim_id} has no key {name!r} "
                          f"(its verdict rule needs it)")
    return extra[name]


def _regression(path: str | None = None) -> dict:
    origin, data = _read_registry(path)
    table = data.get("regression")
    if not isinstance(table, dict):
        raise ConfigError(f"{origin}: no [regression] table (the count goldens' family-wise false-alarm rate)")
    return table


def regression_param(name: str, path: str | None = None):
    """A parameter of the ``[regression]`` table of ``golden/claims.toml`` (how count goldens are
    compared, e.g. ``family_alpha``); ConfigError naming the file and key when missing or invalid."""
    table = _regression(path)
    if name not in table:
        raise ConfigError(f"{path or default_claims_path()}: [regression] has no key {name!r}")
    v = table[name]
    if name.endswith("alpha") and not (isinstance(v, float) and 0.0 < v < 1.0):
        raise ConfigError(f"{path or default_claims_path()}: [regression] {name} must be in (0, 1), got {v!r}")
    return v
