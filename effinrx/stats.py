"""Error-rate statistics shared by the Monte-Carlo engine and the golden checks.

Counts, not rates, are the unit of truth: a golden stores ``(errors, blocks)`` and comparisons are
statistical (exact binomial intervals, Fisher's exact test), never point equality of rates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def _check_counts(errors: int, trials: int) -> None:
    if not (isinstance(errors, (int,)) or float(errors).is_integer()):
        raise ValueError(f"errors must be an integer count, got {errors!r}")
    if not (isinstance(trials, (int,)) or float(trials).is_integer()):
        raise ValueError(f"trials must be an integer count, got {trials!r}")
    if trials < 0 or errors < 0 or errors > trials:
        raise ValueError(f"need 0 <= errors <= trials, got errors={errors}, trials={trials}")


def clopper_pearson(errors: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided binomial confidence interval of the error rate ``errors / trials``."""
    from scipy.stats import beta

    _check_counts(errors, trials)
    if trials == 0:
        return (0.0, 1.0)
    a = 1.0 - confidence
    lo = 0.0 if errors == 0 else float(beta.ppf(a / 2, errors, trials - errors + 1))
    hi = 1.0 if errors == trials else float(beta.ppf(1 - a / 2, errors + 1, trials - errors))
    return (lo, hi)


def wilson(errors: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (cheaper, no scipy)."""
    _check_counts(errors, trials)
    if trials == 0:
        return (0.0, 1.0)
    z = _z(confidence)
    p = errors / trials
    den = 1 + z * z / trials
    mid = (p + z * z / (2 * trials)) / den
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / den
    lo = 0.0 if errors == 0 else max(0.0, mid - half)  # exact endpoints avoid rounding above p
    hi = 1.0 if errors == trials else min(1.0, mid + half)
    return (lo, hi)


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True)
class CountsComparison:
    """Result of comparing two (errors, trials) samples."""

    p_value: float
    alpha: float
    rate_a: float
    rate_b: float

    @property
    def consistent(self) -> bool:
        """True when the test does not reject 'same error rate' at false-alarm rate ``alpha``."""
        return self.p_value >= self.alpha


def compare_counts(errors_a: int, trials_a: int, errors_b: int, trials_b: int,
                   alpha: float = 0.01) -> CountsComparison:
    """Two-sided Fisher exact test of equal error probability in two binomial samples."""
    from scipy.stats import fisher_exact

    _check_counts(errors_a, trials_a)
    _check_counts(errors_b, trials_b)
    if trials_a == 0 or trials_b == 0:
        raise ValueError("cannot compare counts with zero trials")
    table = [[errors_a, trials_a - errors_a], [errors_b, trials_b - errors_b]]
    p = float(fisher_exact(table, alternative="two-sided").pvalue)
    return CountsComparison(min(1.0, p), alpha, errors_a / trials_a, errors_b / trials_b)


def one_sided_less(errors_a: int, trials_a: int, errors_b: int, trials_b: int) -> float:
    """p-value of H0 'rate_a >= rate_b' against 'rate_a < rate_b' (Fisher exact, one-sided)."""
    from scipy.stats import fisher_exact

    _check_counts(errors_a, trials_a)
    _check_counts(errors_b, trials_b)
    table = [[errors_a, trials_a - errors_a], [errors_b, trials_b - errors_b]]
    return float(fisher_exact(table, alternative="less").pvalue)


def paired_less_p(a_only: int, b_only: int) -> float:
    """Exact one-sided McNemar p-value of H0 'a no better than b' on shared slots: ``a_only`` TBs
    only receiver a got wrong, ``b_only`` only b got wrong (concordant TBs carry no information)."""
    from scipy.stats import binom

    _check_counts(a_only, a_only + b_only)
    n = a_only + b_only
    return 1.0 if n == 0 else float(binom.cdf(a_only, n, 0.5))


def paired_change_p(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar p-value of H0 'same TBLER' on shared slots (the regression test of a
    counts golden that kept per-TB outcomes): ``a_only``/``b_only`` TBs in error only in run a / b."""
    from scipy.stats import binom

    _check_counts(a_only, a_only + b_only)
    n = a_only + b_only
    return 1.0 if n == 0 else float(min(1.0, 2.0 * binom.cdf(min(a_only, b_only), n, 0.5)))


def holm(pvalues, alpha: float) -> list[bool]:
    """Holm's step-down rejections (family-wise error <= ``alpha``) of ``pvalues``, in input order.
    Whether *any* is rejected equals ``min(p) <= alpha / m`` (Bonferroni's first step)."""
    p = [float(x) for x in pvalues]
    m = len(p)
    out = [False] * m
    for rank, i in enumerate(sorted(range(m), key=lambda k: p[k])):
        if p[i] > alpha / (m - rank):
            break
        out[i] = True
    return out


def paired_difference(a_only: int, b_only: int, n: int, confidence: float = 0.98) -> tuple[float, float, float]:
    """TBLER difference a - b on ``n`` shared TBs with an exact, unconditional (conservative)
    interval. The difference is ``(2 pi - 1) q``: ``q`` the share of discordant TBs (only one
    receiver wrong), ``pi`` the share of those that a got wrong. Both get a Clopper-Pearson interval
    at half the error (Bonferroni) and the difference is bounded over the box. An interval given
    ``k = a_only + b_only`` alone would be [0, 0] at k = 0 and too narrow at small k: few discordant
    TBs out of few TBs would then "prove" equivalence. Returns (difference, low, high)."""
    if n <= 0 or a_only < 0 or b_only < 0 or a_only + b_only > n:
        raise ValueError(f"paired counts must satisfy 0 <= a_only + b_only <= n, got {a_only}, {b_only}, {n}")
    k = a_only + b_only
    half = 1 - (1 - confidence) / 2  # each of the two intervals takes half of the error
    q_lo, q_hi = clopper_pearson(k, n, half)
    p_lo, p_hi = clopper_pearson(a_only, k, half)  # (0, 1) at k = 0
    lo, hi = 2 * p_lo - 1, 2 * p_hi - 1
    return ((a_only - b_only) / n, lo * (q_hi if lo < 0 else q_lo), hi * (q_hi if hi > 0 else q_lo))


def beats_verdict(a_only: int, b_only: int, n: int, rate_b: float, *, alpha: float = 0.01,
                  margin: float = 0.1) -> tuple[bool | None, str]:
    """'a beats b' on shared slots. Reproduced: one-sided exact McNemar p < ``alpha``. Not
    reproduced: the (1 - 2 alpha) interval of TBLER_a - TBLER_b lies above ``-margin * rate_b``
    (a is, with that confidence, not better by the smallest effect of interest: ``margin`` of b's
    TBLER). Otherwise inconclusive (underpowered). Returns (verdict or None, reason)."""
    p = paired_less_p(a_only, b_only)
    d, lo, hi = paired_difference(a_only, b_only, n, 1 - 2 * alpha)
    delta = margin * rate_b
    facts = (f"paired: {a_only} TBs only a wrong, {b_only} only b wrong of {n}; TBLER diff {d:+.4f} "
             f"[{lo:+.4f}, {hi:+.4f}] ({100 * (1 - 2 * alpha):g} %), McNemar p={p:.3g}, smallest effect "
             f"{delta:.4f} ({margin:g} x TBLER_b)")
    if p < alpha:
        return True, f"reproduced ({facts})"
    if lo > -delta:
        return False, f"not reproduced (a is not better by {margin:g} x TBLER_b at this confidence; {facts})"
    return None, (f"inconclusive (underpowered: the interval still admits a win of {margin:g} x TBLER_b; "
                  f"more TBs per point would decide; {facts})")


def at_least_verdict(errors: int, trials: int, level: float, *, alpha: float = 0.01
                     ) -> tuple[bool | None, str, float, float]:
    """'the error rate is at least ``level``', decided on the (1 - 2 alpha) Clopper-Pearson interval:
    reproduced when its lower bound is >= ``level``, not reproduced when its upper bound is below,
    else inconclusive. Returns (verdict or None, its word, lo, hi)."""
    lo, hi = clopper_pearson(errors, trials, 1 - 2 * alpha)
    verdict = True if lo >= level else False if hi < level else None
    why = {True: "reproduced", False: "not reproduced", None: "inconclusive (interval straddles the threshold)"}
    return verdict, why[verdict], lo, hi


SATURATED = 0.95  # TBLER above which a comparison says nothing (both receivers fail almost every TB)


def saturated(*rates: float, level: float = SATURATED) -> bool:
    """True when every TBLER in ``rates`` is above ``level`` (or a curve is all errors)."""
    return all(r >= level for r in rates)


def saturation_note(rates: dict, remedy: str, level: float = SATURATED) -> str | None:
    """"inconclusive (saturated: ...; remedy)" when every TBLER in ``rates`` (name -> TBLER) is at or
    above ``level`` (nothing to compare: both receivers fail almost every TB), else None. The one
    wording of that verdict for every paired comparison (distillation, pruning, ...)."""
    if not saturated(*rates.values(), level=level):
        return None
    listed = ", ".join(f"{n} {r:.3f}" for n, r in rates.items())
    return f"inconclusive (saturated: TBLER {listed}; {remedy})"


def equivalent_verdict(a_only: int, b_only: int, n: int, rate_b: float, *, alpha: float = 0.01,
                       margin: float = 0.2) -> tuple[bool | None, str]:
    """'a is about as good as b' (TOST style) on shared slots: reproduced when the (1 - 2 alpha)
    interval of TBLER_a - TBLER_b lies inside +-``margin`` x TBLER_b, not reproduced when it lies
    outside, else inconclusive. A smaller sample widens the interval: it can never make a pass
    more likely."""
    d, lo, hi = paired_difference(a_only, b_only, n, 1 - 2 * alpha)
    delta = margin * rate_b
    facts = (f"paired: {a_only} TBs only a wrong, {b_only} only b wrong of {n}; TBLER diff {d:+.4f} "
             f"[{lo:+.4f}, {hi:+.4f}] ({100 * (1 - 2 * alpha):g} %), margin +-{delta:.4f} ({margin:g} x TBLER_b)")
    if -delta <= lo and hi <= delta:
        return True, f"reproduced ({facts})"
    if hi < -delta or lo > delta:
        return False, f"not reproduced ({facts})"
    return None, f"inconclusive (interval straddles the margin; more TBs would decide; {facts})"


def rate_difference(errors_a: int, trials_a: int, errors_b: int, trials_b: int,
                    confidence: float = 0.98) -> tuple[float, float, float]:
    """Difference of two independent error rates a - b with Newcombe's hybrid score interval
    (Wilson intervals of each rate combined). Returns (difference, low, high)."""
    _check_counts(errors_a, trials_a)
    _check_counts(errors_b, trials_b)
    if trials_a == 0 or trials_b == 0:
        raise ValueError("rate_difference needs trials > 0")
    pa, pb = errors_a / trials_a, errors_b / trials_b
    la, ua = wilson(errors_a, trials_a, confidence)
    lb, ub = wilson(errors_b, trials_b, confidence)
    d = pa - pb
    return d, d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2), d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)


def equivalent_counts(errors_a: int, trials_a: int, errors_b: int, trials_b: int, *, alpha: float = 0.01,
                      margin: float = 0.2) -> tuple[bool | None, str]:
    """'a is about as good as b' from independent counts (TOST style): the (1 - 2 alpha) Newcombe
    interval of rate_a - rate_b inside +-``margin`` x rate_b -> True, outside -> False, else None."""
    d, lo, hi = rate_difference(errors_a, trials_a, errors_b, trials_b, 1 - 2 * alpha)
    delta = margin * errors_b / trials_b
    facts = f"diff {d:+.4f} [{lo:+.4f}, {hi:+.4f}] vs margin +-{delta:.4f} ({margin:g} x rate_b)"
    if -delta <= lo and hi <= delta:
        return True, facts
    if hi < -delta or lo > delta:
        return False, facts
    return None, facts


def beats_counts(errors_a: int, trials_a: int, errors_b: int, trials_b: int, *, alpha: float = 0.01,
                 margin: float = 0.1) -> tuple[bool | None, str]:
    """'a beats b' from independent counts: reproduced at one-sided Fisher p < ``alpha``; not
    reproduced when the (1 - 2 alpha) Newcombe interval of rate_a - rate_b lies above
    ``-margin`` x rate_b (a is not better by the smallest effect of interest); else inconclusive."""
    p = one_sided_less(errors_a, trials_a, errors_b, trials_b)
    d, lo, hi = rate_difference(errors_a, trials_a, errors_b, trials_b, 1 - 2 * alpha)
    delta = margin * errors_b / trials_b
    facts = f"{errors_a}/{trials_a} vs {errors_b}/{trials_b}, one-sided Fisher p={p:.2g}, diff {d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
    if p < alpha:
        return True, facts
    if lo > -delta:
        return False, facts + f" (no win of {margin:g} x rate_b)"
    return None, facts + " (underpowered)"
