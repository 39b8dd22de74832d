"""How well the count goldens catch regressions: the false-alarm rate of a whole smoke run and the
detection rate of an injected 1.5x TBLER degradation, for each rule :mod:`effinrx.claims.check`
applies to a counts golden (``[regression]`` in golden/claims.toml):

* **paired** (same seed and configuration, another host or versions: the same slots, so per-TB
  outcomes are paired): two-sided exact McNemar per entry at ``family_alpha / m``. Null model:
  the other host's numerics flip a TB's outcome with probability ``FLIP`` in either direction
  (symmetric). Degradation: every golden error kept and ``0.5 e`` new ones among the ``n - e``
  right TBs, drawn as Binomial (TBLER x1.5 on the same slots), plus the same flips.
* **unpaired** (goldens without per-TB outcomes): two-sided Fisher per entry at the claim's tol,
  each entry redrawn as Binomial(n, e/n) (independent slots) or Binomial(n, min(1, 1.5 e/n)).
* **exact** (same seed, versions, configuration and host): counts and outcomes must be identical,
  so every change is caught and a rerun cannot false-alarm; not simulated.

Entries sharing slots are treated as independent, so this describes the procedure, not one
receiver. Goals (issue 14): false alarms <= 1 % per run, detection >= 90 %. The rates are reported
in pytest-benchmark's ``extra_info`` and printed, and asserted against the goals for the paired
rule, the one CI uses on a fresh runner. Nothing here is a golden.
"""
import functools
import json
from pathlib import Path

import numpy as np
import pytest

from effinrx.claims.golden import GoldenStore
from effinrx.claims.registry import load_claims, regression_param
from effinrx.stats import holm

pytestmark = pytest.mark.nightly  # ~1 min of exact tests on 2 cores: outside the smoke budget
RUNS = 200
ROOT = Path(__file__).resolve().parent.parent / "golden"
GOLDEN = ROOT / "smoke" / "any"
#: per-TB outcome flip probability at TBLER 0.5 between two numerics on the same slots (null model
#: of the paired rule). Measured: the 4-PRB smoke sweep of seven RT receivers (2-4 dB, 2688 TBs) with
#: TF's oneDNN kernels on and off flipped 6 TBs (0.22 %, all W8A8 variants); this model's 0.02 gives
#: about 1 % on the smoke goldens, a pessimistic null
FLIP = 0.02


def _entries():
    claims = load_claims()
    out = []
    for f in sorted(GOLDEN.glob("*.json")):
        data = json.loads(f.read_text())
        tol = claims[data["claim"]].tol if data["claim"] in claims else None
        for ent in data["entries"].values():
            v = ent.get("value")
            if ent.get("kind") == "counts" and isinstance(v, dict) and v.get("blocks"):
                out.append((int(v["errors"]), int(v["blocks"]), 1e-3 if tol is None else float(tol)))
    return out


@functools.lru_cache(maxsize=None)
def _fisher(d: int, e: int, n: int) -> float:
    from scipy.stats import fisher_exact

    return float(fisher_exact([[d, n - d], [e, n - e]]).pvalue)


@functools.lru_cache(maxsize=None)
def _mcnemar(a: int, b: int) -> float:
    from effinrx.stats import paired_change_p

    return paired_change_p(a, b)


def _paired_draw(rng, e, n, factor):
    """(newly wrong, newly right) TBs of a rerun on the same slots: symmetric flips (TBLER kept in
    expectation; none at TBLER 0 or 1: only near-threshold TBs flip), plus ``(factor - 1) e`` new
    errors among the right TBs."""
    flips = rng.binomial(n, FLIP * 2 * np.minimum(e, n - e) / n)
    new = rng.binomial(flips, 0.5)
    fixed = flips - new
    right = n - e
    extra = rng.binomial(right, np.minimum(1.0, (factor - 1.0) * e / np.maximum(right, 1)))
    return new + extra, fixed


def test_false_alarm_and_detection_rates(benchmark):
    entries = _entries()
    assert entries, f"no counts goldens under {GOLDEN}"
    rng = np.random.default_rng(0)
    e = np.array([x for x, _, _ in entries])
    n = np.array([b for _, b, _ in entries])
    tol = np.array([a for _, _, a in entries])
    fam = float(regression_param("family_alpha"))
    per = fam / GoldenStore(ROOT, "smoke").count_family()
    p0 = e / n

    def simulate():
        res = {"fa_fisher": 0, "fa_fisher_holm": 0, "fa_paired": 0,
               "det_fisher": np.zeros(len(e)), "det_paired": np.zeros(len(e))}
        for _ in range(RUNS):
            p = np.array([_fisher(int(d), int(k), int(m)) for d, k, m in zip(rng.binomial(n, p0), e, n)])
            res["fa_fisher"] += bool(np.any(p < tol))
            res["fa_fisher_holm"] += any(holm(p, fam))
            pd = np.array([_fisher(int(d), int(k), int(m))
                           for d, k, m in zip(rng.binomial(n, np.minimum(1.0, 1.5 * p0)), e, n)])
            res["det_fisher"] += pd < tol
            a, b = _paired_draw(rng, e, n, 1.0)
            res["fa_paired"] += bool(np.any([_mcnemar(int(x), int(y)) <= per for x, y in zip(a, b)]))
            a, b = _paired_draw(rng, e, n, 1.5)
            res["det_paired"] += np.array([_mcnemar(int(x), int(y)) <= per for x, y in zip(a, b)])
        return res

    res = benchmark.pedantic(simulate, rounds=1, iterations=1)
    informative = (p0 > 0) & (p0 < 2 / 3)  # 1.5x changes nothing at 0 errors or near TBLER 1
    det_f, det_p = res["det_fisher"][informative] / RUNS, res["det_paired"][informative] / RUNS
    # entries with enough errors that a 1.5x change is 16+ new TB errors: what the paired rule is for
    big = (e >= 32)[informative]
    info = {"entries": len(entries), "informative": int(informative.sum()), "runs": RUNS, "flip": FLIP,
            "family_alpha": fam, "paired_alpha_per_entry": per,
            "false_alarm_per_run_fisher": res["fa_fisher"] / RUNS,
            "false_alarm_per_run_fisher_holm": res["fa_fisher_holm"] / RUNS,
            "false_alarm_per_run_paired": res["fa_paired"] / RUNS,
            "detection_1.5x_median_fisher": float(np.median(det_f)),
            "detection_1.5x_median_paired": float(np.median(det_p)),
            "detection_1.5x_paired_entries_ge_32_errors": float(np.mean(det_p[big])) if big.any() else None,
            "share_ge_0.9_fisher": float(np.mean(det_f >= 0.9)), "share_ge_0.9_paired": float(np.mean(det_p >= 0.9))}
    benchmark.extra_info.update(info)
    print(f"count goldens: {info}")
    assert info["false_alarm_per_run_paired"] <= fam + 3 * np.sqrt(fam / RUNS), info
    if big.any():
        assert info["detection_1.5x_paired_entries_ge_32_errors"] >= 0.9, info
