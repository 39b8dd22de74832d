"""Derived metrics: required Eb/N0 at a target TBLER (log-TBLER interpolation) with an interval,
and the dB gap between two receivers."""
from __future__ import annotations

import math
from dataclasses import dataclass

from effinrx.errors import ConfigError
from effinrx.stats import clopper_pearson


@dataclass(frozen=True)
class RequiredEbNo:
    """Required Eb/N0 (dB) at ``target``; ``low``/``high`` from interpolating the Clopper-Pearson
    bounds (the lower TBLER bound gives the optimistic, lower Eb/N0). NaN where not bracketed."""

    target: float
    value: float
    low: float
    high: float


def _crossing(ebno, rates, target) -> float:
    """First Eb/N0 where the piecewise log-linear curve falls to ``target`` (NaN if never)."""
    lt = math.log(target)
    for i in range(len(ebno) - 1):
        r0, r1 = rates[i], rates[i + 1]
        if r0 >= target >= r1 and r0 > 0:
            if r1 <= 0:  # zero errors: treat as one decade below the target at that point
                r1 = target / 10
            l0, l1 = math.log(r0), math.log(r1)
            if l0 == l1:
                return float(ebno[i])
            return float(ebno[i] + (l0 - lt) * (ebno[i + 1] - ebno[i]) / (l0 - l1))
    return float("nan")


def required_ebno(points, target: float = 0.1, confidence: float = 0.95) -> RequiredEbNo:
    """``points``: sequence of objects with ``ebno_db``, ``errors``, ``blocks`` (e.g. PointCounts),
    sorted by Eb/N0. Returns :class:`RequiredEbNo` at TBLER ``target``."""
    if not 0 < target < 1:
        raise ConfigError(f"target TBLER must be in (0, 1), got {target}")
    pts = [p for p in points if p.blocks > 0]
    if len(pts) < 2:
        raise ConfigError(f"need >= 2 Eb/N0 points with blocks to interpolate, got {len(pts)}")
    e = [p.ebno_db for p in pts]
    if any(b <= a for a, b in zip(e, e[1:])):
        raise ConfigError(f"Eb/N0 points must be strictly increasing, got {e}")
    mid = [p.errors / p.blocks for p in pts]
    ci = [clopper_pearson(p.errors, p.blocks, confidence) for p in pts]
    return RequiredEbNo(target, _crossing(e, mid, target), _crossing(e, [c[0] for c in ci], target),
                        _crossing(e, [c[1] for c in ci], target))


def gap_db(a, b, target: float = 0.1) -> float:
    """Required-Eb/N0 gap (dB) of receiver ``a`` over ``b`` at ``target`` (positive: ``a`` worse)."""
    return required_ebno(a, target).value - required_ebno(b, target).value


def required_table(curves: dict, reference: str | None = None, target: float = 0.1,
                   extra: dict | None = None) -> list[dict]:
    """One row per receiver: required Eb/N0 at ``target`` with its interval and the gap to
    ``reference`` (dB, positive = worse), plus ``extra[name]`` columns (e.g. bytes, sparsity).

    ``curves``: name -> list of PointCounts sorted by Eb/N0. Receivers never reaching ``target``
    get NaN (said as "not bracketed" by :func:`format_required`)."""
    if reference is not None and reference not in curves:
        raise ConfigError(f"reference receiver {reference!r} not among {sorted(curves)}")
    req = {n: required_ebno(pts, target) for n, pts in curves.items()}
    rows = []
    for n, r in req.items():
        gap = r.value - req[reference].value if reference is not None else float("nan")
        rows.append({"receiver": n, "target": target, "req_db": r.value, "low_db": r.low, "high_db": r.high,
                     "gap_db": gap, **(extra or {}).get(n, {})})
    return rows


def format_required(rows: list[dict], reference: str | None = None) -> str:
    """Markdown table of :func:`required_table` rows (extra columns appended as given)."""
    def f(x):
        return "not bracketed" if isinstance(x, float) and math.isnan(x) else f"{x:.2f}"

    base = ("receiver", "target", "req_db", "low_db", "high_db", "gap_db")
    keys = [k for k in (rows[0] if rows else {}) if k not in base]
    tgt = rows[0]["target"] if rows else 0.1
    head = ["receiver", f"req. Eb/N0 @TBLER {tgt:g} (dB)", "95 % interval",
            f"gap vs {reference} (dB)" if reference else "gap (dB)"] + keys
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        gap = "—" if reference is None or math.isnan(r["gap_db"]) else f"{r['gap_db']:+.2f}"
        cells = [r["receiver"], f(r["req_db"]), f"[{f(r['low_db'])}, {f(r['high_db'])}]", gap]
        lines.append("| " + " | ".join(cells + [str(r[k]) for k in keys]) + " |")
    return "\n".join(lines)


def _required_bounds(points, target: float, confidence: float = 0.95) -> tuple[float, float]:
    """``(low, high)`` bounds of the required Eb/N0 of a (monotone) curve, one-sided where a 95 %
    interval curve of :func:`required_ebno` does not cross ``target`` in the swept range: a curve
    whose bound stays above the target at every point crosses beyond the last point (a lower bound
    there, no upper bound), one already below it at the first point crossed before it (an upper
    bound there, no lower bound). ``-inf``/``+inf`` mark the open sides; never NaN."""
    pts = [p for p in points if p.blocks > 0]
    r = required_ebno(pts, target, confidence)
    ci = [clopper_pearson(p.errors, p.blocks, confidence) for p in pts]
    first, last = pts[0].ebno_db, pts[-1].ebno_db
    low, high = r.low, r.high
    if math.isnan(low):  # the lower interval curve (fewest errors) never falls to the target
        low = float(last) if all(c[0] >= target for c in ci) else -math.inf
    if math.isnan(high):  # the upper interval curve never falls to the target
        high = math.inf if ci[0][1] >= target else float(first)
    return low, high


def gap_interval(a, b, target: float = 0.1) -> tuple[float, float, float]:
    """Required-Eb/N0 gap a - b (dB, positive: a worse) with a conservative interval from the two
    curves' 95 % intervals (``a.low - b.high``, ``a.high - b.low``). The gap is NaN where a curve
    does not cross the target in the swept range; its interval is then one-sided (a bound of
    ``+-inf``) but still decides: a curve above the target at its last point up to the upper end of
    its interval is at least that far right (:func:`_required_bounds`)."""
    ra, rb = required_ebno(a, target), required_ebno(b, target)
    (al, ah), (bl, bh) = _required_bounds(a, target), _required_bounds(b, target)
    return ra.value - rb.value, al - bh, ah - bl


def gap_text(g: tuple[float, float, float], unit: str = " dB") -> str:
    """``(gap, lo, hi)`` of :func:`gap_interval` as text: ``+1.85 [+0.66, —] dB``, with "—" for an
    interval bound that does not reach the target and "not bracketed" when a curve never crosses it
    in the swept range (so no number is invented)."""
    b = ["—" if not math.isfinite(x) else f"{x:+.2f}" for x in g[1:]]
    if math.isnan(g[0]):
        return ("not bracketed (a curve does not cross the target in the swept range)"
                + (f"; interval [{b[0]}, {b[1]}]{unit}" if b != ["—", "—"] else ""))
    return f"{g[0]:+.2f} [{b[0]}, {b[1]}]{unit}"


def within(lo: float, hi: float, low: float = -math.inf, high: float = math.inf):
    """Interval rule: True when [lo, hi] lies inside [low, high], False when it lies outside it,
    None (undecided) when it straddles a bound or is NaN."""
    if math.isnan(lo) or math.isnan(hi):
        return None
    if low <= lo and hi <= high:
        return True
    if hi < low or lo > high:
        return False
    return None


def all_of(*verdicts):
    """Combine interval rules: False if any is False, True if all are True, else None."""
    if any(v is False for v in verdicts):
        return False
    return True if all(v is True for v in verdicts) else None


def gaps_table(curves: dict, references, targets=(0.1, 0.01)) -> str:
    """Markdown: per receiver and TBLER target, required Eb/N0 with its 95 % interval and the gap to
    each of ``references`` with the conservative interval of :func:`gap_interval` (dB, positive =
    worse; "not bracketed" where a curve does not cross the target in the swept range, "—" for an
    interval bound that does not, e.g. the upper bound at a point without errors)."""
    refs = [r for r in references if r in curves]

    def b(x, sign=""):  # an interval bound: "—" where the curve's interval does not reach the target
        return "—" if not math.isfinite(x) else f"{x:{sign}.2f}"

    head = ["receiver", "target", "req. Eb/N0 (dB) [95 %]"] + [f"gap vs {r} (dB) [interval]" for r in refs]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in targets:
        for n, pts in curves.items():
            r = required_ebno(pts, t)
            cells = [n, f"{t:g}", "not bracketed" if math.isnan(r.value) else
                     f"{r.value:.2f} [{b(r.low)}, {b(r.high)}]"]
            for ref in refs:
                g, lo, hi = gap_interval(pts, curves[ref], t)
                cells.append("—" if ref == n else
                             ("not bracketed" if math.isnan(g) else f"{g:+.2f}")
                             + ("" if math.isnan(g) and not (math.isfinite(lo) or math.isfinite(hi))
                                else f" [{b(lo, '+')}, {b(hi, '+')}]"))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
