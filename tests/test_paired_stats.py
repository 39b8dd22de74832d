"""Paired (shared-slot) statistics: exact McNemar p, the TBLER-difference interval, and the 'beats'
verdict that says inconclusive when underpowered and not reproduced only with evidence."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from effinrx.stats import at_least_verdict, beats_verdict, paired_difference, paired_less_p


def test_mcnemar_known_values():
    assert paired_less_p(0, 0) == 1.0
    assert paired_less_p(0, 10) == pytest.approx(0.5 ** 10)
    assert paired_less_p(5, 5) > 0.5


@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 300))
def test_difference_interval_contains_estimate(a, b, extra):
    n = a + b + extra
    if n == 0:
        return
    d, lo, hi = paired_difference(a, b, n)
    assert lo - 1e-12 <= d <= hi + 1e-12 and -1 <= lo <= hi <= 1


def test_difference_interval_covers_when_discordance_is_rare():
    """The interval is unconditional: with few discordant TBs it must still cover the true difference
    (the interval given k alone was [0, 0] at k = 0, so 0 of 10 discordant TBs 'proved' equality)."""
    import numpy as np

    from effinrx.stats import equivalent_verdict

    rng = np.random.default_rng(0)
    for n, p10, p01 in ((50, 0.02, 0.0), (200, 0.03, 0.01), (768, 0.0, 0.005)):
        draws = rng.multinomial(n, [p10, p01, 1 - p10 - p01], size=400)
        covered = [lo <= p10 - p01 <= hi for lo, hi in (paired_difference(a, b, n)[1:] for a, b, _ in draws)]
        assert np.mean(covered) >= 0.98, (n, p10, p01, np.mean(covered))
    d, lo, hi = paired_difference(0, 0, 10)
    assert d == 0 and lo < -0.3 and hi > 0.3
    assert equivalent_verdict(0, 0, 10, 0.5)[0] is None  # 10 identical TBs decide nothing


def test_beats_verdict_three_ways():
    assert beats_verdict(5, 30, 256, 0.3)[0] is True
    v, why = beats_verdict(20, 22, 256, 0.3)
    assert v is None and why.startswith("inconclusive (underpowered")
    v, why = beats_verdict(200, 210, 10000, 0.3)
    assert v is False and why.startswith("not reproduced")
    # a significantly *worse* a is evidence against the claim too
    assert beats_verdict(60, 10, 512, 0.2)[0] is False


def test_bad_paired_counts():
    with pytest.raises(ValueError):
        paired_difference(5, 6, 10)


def test_equivalence_needs_a_narrow_interval():
    from effinrx.stats import equivalent_verdict, saturated

    assert equivalent_verdict(100, 104, 20000, 0.2)[0] is True
    assert equivalent_verdict(3, 4, 40, 0.2)[0] is None  # few TBs: no pass by default
    assert equivalent_verdict(400, 20, 2000, 0.2)[0] is False
    assert saturated(0.99, 0.97) and not saturated(0.99, 0.5)


def test_equivalent_counts_and_rate_difference():
    from effinrx.stats import equivalent_counts, rate_difference

    d, lo, hi = rate_difference(30, 100, 20, 100)
    assert lo < d < hi and d == pytest.approx(0.1)
    assert equivalent_counts(1000, 10000, 1010, 10000)[0] is True
    assert equivalent_counts(10, 100, 11, 100)[0] is None  # 100 blocks cannot show +-20 %
    assert equivalent_counts(400, 1000, 200, 1000)[0] is False


def test_beats_counts_three_ways():
    from effinrx.stats import beats_counts

    assert beats_counts(10, 256, 60, 256)[0] is True
    assert beats_counts(74, 256, 90, 256)[0] is None
    assert beats_counts(3000, 30000, 3000, 30000)[0] is False


def test_saturation_note_only_when_every_rate_saturated():
    from effinrx.stats import saturation_note

    note = saturation_note({"a": 0.99, "b": 1.0}, "more steps would decide")
    assert note.startswith("inconclusive (saturated: TBLER a 0.990, b 1.000") and "more steps" in note
    assert saturation_note({"a": 0.99, "b": 0.5}, "x") is None
    assert saturation_note({"a": 0.2}, "x") is None


def test_at_least_verdict_decides_on_the_interval():
    assert at_least_verdict(990, 1000, 0.9)[:2] == (True, "reproduced")
    assert at_least_verdict(400, 1000, 0.9)[:2] == (False, "not reproduced")
    v, why, lo, hi = at_least_verdict(90, 100, 0.9, alpha=0.01)
    assert v is None and why.startswith("inconclusive") and lo < 0.9 <= hi
