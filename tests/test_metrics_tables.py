"""The gaps table of the 132-PRB claims (effinrx.link.metrics.gaps_table): required Eb/N0 with its
interval per target, gaps to each reference, and what it says where a curve does not cross."""
from effinrx.link.counts import PointCounts as P
from effinrx.link.metrics import gap_interval, gaps_table


def test_gaps_table_rows_and_unbracketed_cells():
    c = {"a": [P(2.0, errors=50, blocks=128), P(3.0, errors=5, blocks=128), P(4.0, errors=0, blocks=128)],
         "b": [P(2.0, errors=90, blocks=128), P(3.0, errors=30, blocks=128), P(4.0, errors=3, blocks=128)]}
    t = gaps_table(c, ("b", "absent"))
    lines = t.splitlines()
    assert len(lines) == 2 + 2 * 2 and "gap vs absent" not in lines[0]
    g, lo, hi = gap_interval(c["a"], c["b"])
    assert "| a | 0.1 | " in lines[2] and f"{g:+.2f} [{lo:+.2f}, {hi:+.2f}]" in lines[2]
    assert lines[3].endswith("| — |")  # a reference against itself
    assert "| b | 0.01 | not bracketed |" in lines[5]  # b never reaches 1 %
    assert "3.37 [3.10, —]" in lines[4]  # a's 1 % upper bound: no point without errors beyond it


def test_gap_text_says_what_is_not_bracketed():
    from effinrx.link.metrics import gap_text

    nan = float("nan")
    assert gap_text((1.853, 0.661, nan)) == "+1.85 [+0.66, —] dB"
    assert gap_text((-0.5, -1.0, 0.25)) == "-0.50 [-1.00, +0.25] dB"
    assert gap_text((nan, nan, nan)).startswith("not bracketed") and "nan" not in gap_text((nan, 0.0, 1.0))


def test_unbracketed_gap_keeps_its_one_sided_interval():
    """A curve still above TBLER 10 % (with its interval) at the last point crosses beyond it: the
    gap to a bracketed curve has a finite lower bound and decides a 1-3 dB band (here: > 3 dB, so
    'not reproduced'), where the NaN gap alone would have read 'inconclusive'."""
    import math

    from effinrx.link.metrics import gap_text, required_ebno, within

    fp32 = [P(2.0, 34, 128), P(3.0, 16, 128), P(4.0, 3, 128), P(5.0, 0, 128)]
    pruned = [P(2.0, 119, 128), P(4.0, 71, 128), P(6.0, 30, 128), P(8.0, 60, 128)]
    g, lo, hi = gap_interval(pruned, fp32)
    assert math.isnan(g) and hi == math.inf and lo > 3.0
    assert lo == 8.0 - required_ebno(fp32).high  # the pruned curve's lower bound is its last point
    assert within(lo, hi, 1.0, 3.0) is False
    assert gap_text((g, lo, hi)).startswith("not bracketed") and f"[{lo:+.2f}, —]" in gap_text((g, lo, hi))
    # a curve below the target from its first point: crossed before it (an upper bound only)
    clean = [P(2.0, 0, 128), P(3.0, 0, 128)]
    g, lo, hi = gap_interval(clean, fp32)
    assert math.isnan(g) and lo == -math.inf and math.isfinite(hi) and hi < 0.0
    assert within(lo, hi, high=0.5) is True and within(lo, hi, low=0.5) is False and within(lo, hi, -1.0, 0.5) is None
    t = gaps_table({"pruned": pruned, "fp32": fp32}, ("fp32",))
    assert f"| pruned | 0.1 | not bracketed | not bracketed [{gap_interval(pruned, fp32)[1]:+.2f}, —] |" in t
