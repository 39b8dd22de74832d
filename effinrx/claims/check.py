"""Compare one measured value with its golden and with the paper claim; return a :class:`Verdict`.

The same function serves pytest (the ``claim_check`` fixture), the CLI and the report, so there is
one source of truth for what passed. Two separate questions are answered:

* golden regression: does the measurement still agree with what this suite measured before
  (``golden_status``: pass | regressed | no golden | regenerated)?
* paper claim: did our measurement reproduce the paper (``reproduced``: True | False | None)?

The combined ``verdict`` column of the report is: ``regressed`` (golden mismatch; the test fails),
``no golden`` (the test fails, except latency on a device without one), ``not measurable here
(<reason>)``, ``not comparable (<reason>)`` (the golden was taken with another seed or
configuration: not compared, the test xfails, see :func:`effinrx.claims.golden.comparability`),
``not reproduced`` (the test passes: it is a finding, not a regression), ``pass``.

Kind ``verdict`` is the paper verdict alone (e.g. "fp8 beats LS at p < 0.01"): it is derived from
measurements that the same benchmark module checks against their own goldens (counts, statistically),
and it is never stored as a golden. Why: a yes/no computed from Monte-Carlo counts flips when the counts move
inside their confidence interval (K1's "SNR points won" went 0 -> 2 of 6 in a fresh clone while every
count matched its golden), so an exact golden on it fails CI on noise, not on regressions.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from effinrx.claims.golden import GoldenStore, comparability
from effinrx.errors import GoldenError
from effinrx.latency.gate import ADVISORY, latency_gate
from effinrx.link.counts import unpack_outcomes
from effinrx.stats import compare_counts, paired_change_p

DEFAULT_TOL = {"verdict": None, "exact": None, "rel": 1e-6, "abs": 1e-9, "counts": 1e-3, "latency": 0.5}


#: verdict of a device-keyed (latency) check on a device that has no golden yet
NEW_DEVICE = "no golden for this device"
#: golden status of a check whose golden was taken with another seed or configuration
#: (:func:`effinrx.claims.golden.comparability`); its verdict is "not comparable (<reason>)"
NOT_COMPARABLE = "not comparable"



@dataclass
class Verdict:
    claim: str
    key: str
    metric: str
    paper: str | None
    golden: Any
    measured: Any
    kind: str
    tolerance: str
    margin: float | None
    golden_status: str
    reproduced: bool | None
    verdict: str
    message: str = ""
    golden_file: str = ""
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.golden_status in ("regressed", "no golden", "regenerated", "error")

    def as_dict(self) -> dict:
        return asdict(self)


def _num(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        try:
            import numpy as np

            if isinstance(x, np.generic):
                return float(x)
        except ImportError:  # pragma: no cover
            pass
        raise GoldenError(f"{what}: expected a number, got {x!r}")
    return float(x)


def compare(kind: str, golden: Any, measured: Any, tol: float | None) -> tuple[bool, float | None, str]:
    """Return (ok, margin, tolerance text). ``margin`` > 0 means inside the tolerance."""
    if kind == "counts":
        for name, v in (("golden", golden), ("measured", measured)):
            if not (isinstance(v, dict) and {"errors", "blocks"} <= set(v)):
                raise GoldenError(f"counts {name} must be {{'errors', 'blocks'}}, got {v!r}")
        alpha = DEFAULT_TOL["counts"] if tol is None else tol
        if golden["blocks"] == 0 or measured["blocks"] == 0:
            return golden == measured, None, f"alpha={alpha:g}"
        c = compare_counts(int(measured["errors"]), int(measured["blocks"]),
                           int(golden["errors"]), int(golden["blocks"]), alpha=alpha)
        return c.consistent, c.p_value - alpha, f"Fisher two-sided alpha={alpha:g} (p={c.p_value:.3g})"
    if isinstance(golden, dict) or isinstance(measured, dict):
        if not (isinstance(golden, dict) and isinstance(measured, dict)):
            return False, None, f"{kind}: golden/measured structure differs"
        if kind == "latency":
            return _compare_latency(golden, measured, tol)
        if set(golden) != set(measured):
            return False, None, f"{kind}: keys differ {sorted(set(golden) ^ set(measured))}"
        worst: float | None = None
        text = ""
        for k in sorted(golden):
            ok, m, text = compare(kind, golden[k], measured[k], tol)
            if not ok:
                return False, m, f"{text} at [{k}]"
            if m is not None:
                worst = m if worst is None else min(worst, m)
        return True, worst, text
    if kind == "exact":
        return golden == measured, None, "exact"
    g, m = _num(golden, "golden"), _num(measured, "measured")
    if kind == "rel":
        t = DEFAULT_TOL["rel"] if tol is None else tol
        allowed = t * abs(g)
        return (abs(m - g) <= allowed or m == g), (allowed - abs(m - g)), f"rel {t:g}"
    if kind == "abs":
        t = DEFAULT_TOL["abs"] if tol is None else tol
        return abs(m - g) <= t, t - abs(m - g), f"abs {t:g}"
    raise GoldenError(f"unknown comparison kind {kind!r}")


def _compare_latency(golden: dict, measured: dict, tol: float | None) -> tuple[bool, float | None, str]:
    """:func:`effinrx.latency.gate.latency_gate`: interleaved per-round latency/probe ratios in a rank test
    (best-of-n after probe normalisation for goldens without samples); a hard gate only on a declared
    benchmark runner (``EFFINRX_BENCHMARK_RUNNER=1``), else ``advisory (shared runner)``, never failed."""
    t = DEFAULT_TOL["latency"] if tol is None else tol
    if "median_ms" not in golden or "median_ms" not in measured:
        raise GoldenError("latency values need 'median_ms'")
    g = latency_gate(golden, measured, t)
    return g.ok, g.margin, g.text


def same_setup(golden_meta: dict | None, run_meta: dict | None) -> bool:
    """Same seed, package versions, configuration and host as the golden: then the engine draws the
    very same slots (effinrx.link.slots), so counts must be identical, not merely consistent."""
    g, r = golden_meta or {}, run_meta or {}
    keys = ("seed", "versions", "device", "config_hash")
    return all(k in g and k in r for k in keys) and all(g[k] == r[k] for k in keys)


def _outcomes(golden: dict, measured: dict):
    """Both entries' per-TB outcomes (bool [blocks]) when both kept them for the same TBs, else None."""
    if not ("tb" in golden and "tb" in measured and int(golden["blocks"]) == int(measured["blocks"])):
        return None
    n = int(golden["blocks"])
    return unpack_outcomes(golden["tb"], n), unpack_outcomes(measured["tb"], n)


def _exact_counts(golden: dict, measured: dict) -> tuple[bool, float | None, str]:
    keys = [k for k in ("errors", "blocks", "bit_errors", "crc_failures") if k in golden and k in measured]
    diff = [f"{k} {golden[k]} -> {measured[k]}" for k in keys if int(golden[k]) != int(measured[k])]
    tb = _outcomes(golden, measured)
    if tb is not None and (tb[0] != tb[1]).any():
        first = int((tb[0] != tb[1]).argmax())
        per = int(golden.get("tb_per_batch") or measured.get("tb_per_batch") or 0)
        diff.append(f"first differing TB #{first}" + (f" (batch {first // per})" if per else ""))
    text = "exact (same seed, versions, configuration and host: identical slots)"
    return not diff, None, text + (f"; differs: {', '.join(diff)}" if diff else "")


def _paired_counts(outcomes: tuple, alpha: float) -> tuple[bool, float | None, str]:
    """Same seed and configuration on another host or versions: the slots are the same, so the
    per-TB outcomes (golden, measured: :func:`_outcomes`) are paired; two-sided exact McNemar on the
    discordant TBs at ``alpha`` (the family-wise rate over the tier's count entries,
    :meth:`GoldenStore.paired_alpha`)."""
    g, m = outcomes
    new_err, fixed = int((m & ~g).sum()), int((g & ~m).sum())
    p = paired_change_p(new_err, fixed)
    return p > alpha, p - alpha, (f"paired McNemar two-sided alpha={alpha:.2g} (p={p:.3g}; {new_err} TBs newly "
                                  f"wrong, {fixed} newly right of {len(g)})")


def check(store: GoldenStore, *, claim: str, key: str, measured: Any, kind: str, tol: float | None,
          metric: str, paper: str | None, reproduced: bool | None, device: str = "any",
          meta: dict | None = None, note: str = "", not_measurable: str | None = None) -> Verdict:
    """Compare ``measured`` with the golden entry ``claim/key``; write/regen per the store's mode."""
    meta = dict(meta or {})
    path = str(store.path(claim, device))
    base = dict(claim=claim, key=key, metric=metric, paper=paper, measured=measured, kind=kind,
                reproduced=reproduced, golden_file=path, note=note)
    tol_text = f"{kind}" + ("" if tol is None else f" {tol:g}")

    if kind == "verdict":
        if reproduced is None:
            # undecided at this sample size: say so (the note gives why and what would decide it)
            return Verdict(**base, golden=None, tolerance="derived (not a golden)", margin=None,
                           golden_status="derived", verdict="inconclusive",
                           message="inconclusive: " + (note or "the measurement cannot decide the claim"))
        return Verdict(**base, golden=None, tolerance="derived (not a golden)", margin=None,
                       golden_status="derived", verdict=_combine("pass", reproduced),
                       message="paper verdict from measurements checked against their own goldens")

    if not_measurable:
        return Verdict(**base, golden=None, tolerance=tol_text, margin=None, golden_status="not measurable",
                       verdict=f"not measurable here ({not_measurable})", message=not_measurable)

    if store.mode in ("force-regen", "regen-all"):
        store.write(claim, key, kind, measured, meta, device)
        status = "regenerated" if store.mode == "force-regen" else "pass"
        msg = f"golden {path} key {key!r} rewritten ({store.mode})"
        return Verdict(**base, golden=measured, tolerance=tol_text, margin=None, golden_status=status,
                       verdict=_combine(status, reproduced), message=msg)

    entry = store.entry(claim, key, device)  # GoldenError on corrupt/schema mismatch
    fallback = ""
    if entry is None and (low := store.fallback_entry(claim, key, kind, meta, device)) is not None:
        # the same check at the same seed and configuration in a lower tier: its golden applies
        entry, fallback = low[1], f"golden of tier {low[0]} (same seed and configuration)"
        path = base["golden_file"] = str(GoldenStore(store.root, low[0]).path(claim, device))
    if entry is None:
        store.write_obtained(claim, key, kind, measured, meta, device)
        where = f"device {device!r}" if device != "any" else "this tier"
        msg = (f"no golden for claim {claim} key {key!r} in {path} ({where}); measured {measured!r} "
               f"written to {store.obtained_path(claim, device)}; create it with --force-regen")
        return Verdict(**base, golden=None, tolerance=tol_text, margin=None, golden_status="no golden",
                       verdict=NEW_DEVICE if device != "any" else "no golden", message=msg)
    if entry["kind"] != kind:
        raise GoldenError(f"golden file {path}, key {key!r}: kind {entry['kind']!r} but check uses {kind!r}")
    why = comparability(entry.get("meta"), meta, kind)
    if why is not None:
        # neither a pass nor a regression, and not a silent redraw: say so and keep the value
        store.write_obtained(claim, key, kind, measured, meta, device)
        msg = (f"not comparable: claim {claim} key {key!r} in {path}: {why}; measured {measured!r} "
               f"written to {store.obtained_path(claim, device)}; rerun with the golden's seed and "
               f"configuration, or regenerate with --force-regen")
        return Verdict(**base, golden=entry["value"], tolerance=tol_text, margin=None,
                       golden_status=NOT_COMPARABLE, verdict=f"{NOT_COMPARABLE} ({why})", message=msg)
    if kind == "counts" and same_setup(entry.get("meta"), meta):
        ok, margin, tol_text = _exact_counts(entry["value"], measured)
    elif kind == "counts" and (paired := _outcomes(entry["value"], measured)) is not None:
        ok, margin, tol_text = _paired_counts(paired, store.paired_alpha())
    else:
        ok, margin, tol_text = compare(kind, entry["value"], measured, tol)
    if ok and kind == "latency" and tol_text.startswith(ADVISORY) and "not failed" in tol_text:
        # slower than the golden on a runner not declared a benchmark runner: reported, not failed
        store.write_obtained(claim, key, kind, measured, meta, device)
        return Verdict(**base, golden=entry["value"], tolerance=tol_text, margin=margin, golden_status="advisory",
                       verdict=ADVISORY, message=tol_text)
    if ok:
        return Verdict(**base, golden=entry["value"], tolerance=tol_text, margin=margin, golden_status="pass",
                       verdict=_combine("pass", reproduced), message=fallback)
    store.write_obtained(claim, key, kind, measured, meta, device)
    msg = (f"regression: claim {claim} key {key!r} in {path}: golden {entry['value']!r}, "
           f"measured {measured!r}, tolerance {tol_text}"
           + ("" if margin is None else f", margin {margin:.4g}")
           + f"; obtained written to {store.obtained_path(claim, device)}" + (f"; {fallback}" if fallback else ""))
    return Verdict(**base, golden=entry["value"], tolerance=tol_text, margin=margin, golden_status="regressed",
                   verdict="regressed", message=msg)


def _combine(golden_status: str, reproduced: bool | None) -> str:
    if golden_status != "pass":
        return golden_status
    if reproduced is False:
        return "not reproduced"
    if reproduced is True:
        return "reproduced"
    return "pass"
