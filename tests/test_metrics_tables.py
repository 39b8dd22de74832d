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
