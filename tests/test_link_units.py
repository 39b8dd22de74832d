"""Link simulation units without the PUSCH graph: config validation, intervals, required Eb/N0,
regression-check false-alarm rate and power (synthetic binomial model), CLI range parsing, K-best
with a full list equals max-log ML on a tiny system."""
import math

import numpy as np
import pytest

from effinrx.errors import ConfigError
from effinrx.link.config import Scenario
from effinrx.link.metrics import gap_db, required_ebno
from effinrx.link.counts import PointCounts
from effinrx.link.regression import check, pass_rate, tbler_shift


@pytest.mark.parametrize("kw,word", [
    ({"num_prbs": 0}, "num_prbs"), ({"num_tx": 3}, "num_tx"), ({"num_rx_ant": 1}, "num_rx_ant"),
    ({"mcs_index": 40}, "mcs_index"), ({"channel": "tdl-x"}, "channel"),
    ({"dmrs_ports": (0,)}, "dmrs_ports"), ({"num_ant_ports": 4}, "num_ant_ports"),
    ({"num_prbs": 4.0}, "num_prbs"), ({"delay_spread_ns": (-1.0, 3.0)}, "delay_spread_ns"),
])
def test_scenario_validation(kw, word):
    with pytest.raises(ConfigError, match=word):
        Scenario(**kw)


def test_scenario_defaults_and_key():
    sc = Scenario()
    assert (sc.num_prbs, sc.num_tx, sc.num_rx_ant, sc.mcs_index, sc.channel) == (4, 2, 4, 14, "double-tdl")
    assert sc.key() == Scenario().key() != sc.replace(num_prbs=132).key()
    simo = Scenario(num_tx=1, num_rx_ant=2, num_ant_ports=1, dmrs_ports=(0,), mcs_index=20, channel="cdl-c")
    assert simo.num_tx == 1


def test_point_interval_contains_rate():
    p = PointCounts(3.0, errors=13, blocks=100)
    lo, hi = p.interval()
    assert lo < 0.13 < hi and 0.06 < lo and hi < 0.22


def _curve(rates, start=0.0):
    return [PointCounts(start + i, errors=int(r * 10000), blocks=10000) for i, r in enumerate(rates)]


def test_required_ebno_log_interpolation():
    # TBLER falls one decade per 2 dB: 10 % is at exactly 2 dB, 1 % at 4 dB
    pts = _curve([1.0, 0.316227766, 0.1, 0.0316227766, 0.01])
    r = required_ebno(pts, 0.1)
    assert r.value == pytest.approx(2.0, abs=0.01)
    assert r.low <= r.value <= r.high
    assert required_ebno(pts, 0.01).value == pytest.approx(4.0, abs=0.02)
    shifted = [PointCounts(p.ebno_db + 1.0, p.errors, p.blocks) for p in pts]
    assert gap_db(shifted, pts) == pytest.approx(1.0, abs=0.01)
    assert math.isnan(required_ebno(pts, 0.001).value)  # never reached


def test_required_ebno_errors():
    with pytest.raises(ConfigError, match="target"):
        required_ebno(_curve([0.5, 0.1]), 1.5)
    with pytest.raises(ConfigError, match=">= 2"):
        required_ebno(_curve([0.5]), 0.1)


def test_regression_false_alarm_and_power_synthetic():
    """Unchanged receiver passes >= 99 % of seeds at the suite's alpha = 0.001 (measured false-alarm
    rate over 1000 seeds); one degraded by 1 dB fails in >= 95 % of seeds."""
    curve = {3.0: 0.35, 5.0: 0.13, 7.0: 0.03}  # TBLER shape of LS/lin+LMMSE at 4 PRBs
    p0 = curve[5.0]
    p1 = tbler_shift(curve, 5.0, 1.0)
    assert p1 > p0 * 1.5
    fa_pass = pass_rate(p0, p0, blocks=2000, seeds=1000, alpha=0.001, seed=1)
    power_fail = 1 - pass_rate(p0, p1, blocks=2000, seeds=200, alpha=0.001, seed=2)
    print(f"false-alarm rate {1 - fa_pass:.4f}, power at 1 dB {power_fail:.3f}")
    assert fa_pass >= 0.99, f"false alarms: {1 - fa_pass:.3f}"
    assert power_fail >= 0.95, f"1 dB degradation detected in only {power_fail:.2f} of seeds"


def test_regression_check_errors():
    with pytest.raises(ConfigError, match="alpha"):
        check(1, 10, 1, 10, alpha=0)
    with pytest.raises(ConfigError):
        check(1, 0, 1, 10)


def test_parse_range():
    from effinrx.commands.simulate import parse_range

    assert parse_range("-2:7:1") == [float(x) for x in range(-2, 8)]
    assert parse_range("1,2.5") == [1.0, 2.5]
    with pytest.raises(ConfigError, match="--ebno"):
        parse_range("1:0:1")


def test_kbest_full_list_equals_maxlog_ml():
    """K-best keeping all candidates (QPSK, 2 streams: K = 16) gives the max-log ML LLRs (clipped)."""
    from effinrx._tf import tf

    t = tf()
    from sionna.phy.mapping import Constellation
    from sionna.phy.mimo import KBestDetector, MaximumLikelihoodDetector

    rng = np.random.default_rng(0)
    b, m, n = 64, 3, 2
    h = ((rng.normal(size=(b, m, n)) + 1j * rng.normal(size=(b, m, n))) / np.sqrt(2)).astype(np.complex64)
    const = Constellation("qam", 2)
    pts = np.asarray(const.points)
    x = pts[rng.integers(0, 4, size=(b, n))]
    no = 0.3
    y = (np.einsum("bmn,bn->bm", h, x) + np.sqrt(no / 2) * (rng.normal(size=(b, m)) + 1j * rng.normal(size=(b, m)))).astype(np.complex64)
    s = t.eye(m, batch_shape=[b], dtype=t.complex64) * no
    kb = KBestDetector("bit", n, 16, "qam", 2, hard_out=False)
    ml = MaximumLikelihoodDetector("bit", "maxlog", n, "qam", 2)
    l_kb = kb(t.constant(y), t.constant(h), s).numpy()
    l_ml = ml(t.constant(y), t.constant(h), s).numpy()
    # Sionna's list-to-LLR step clips |LLR| at 20 (List2LLRSimple.llr_clip_val); below it, equal
    assert np.mean(np.abs(l_ml) > 20) > 0.05  # the clip is exercised, not just skipped over
    np.testing.assert_allclose(l_kb, np.clip(l_ml, -20.0, 20.0), rtol=1e-3, atol=1e-2)


def test_plot_tbler_writes_png_with_zero_error_points(tmp_path):
    from effinrx.link.plots import plot_tbler

    curves = {"ls-lmmse": [PointCounts(0.0, 50, 100), PointCounts(2.0, 0, 100)],
              "perfect-kbest": [PointCounts(0.0, 0, 100)]}
    p = plot_tbler(curves, tmp_path / "sub" / "t.png", "title")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_required_table_gaps_and_unbracketed_rows():
    from effinrx.link.metrics import format_required, required_table
    from effinrx.link.counts import PointCounts as P

    curves = {"fp32": [P(0.0, 50, 100), P(2.0, 20, 100), P(4.0, 2, 100)],
              "int8": [P(0.0, 60, 100), P(2.0, 40, 100), P(4.0, 5, 100)],
              "never": [P(0.0, 90, 100), P(2.0, 80, 100)]}
    rows = required_table(curves, "fp32", extra={"int8": {"bytes": 25}, "fp32": {"bytes": 100}, "never": {"bytes": 1}})
    by = {r["receiver"]: r for r in rows}
    assert by["fp32"]["gap_db"] == 0.0 and by["int8"]["gap_db"] > 0.5
    assert by["fp32"]["low_db"] < by["fp32"]["req_db"] < by["fp32"]["high_db"]
    assert math.isnan(by["never"]["req_db"])
    md = format_required(rows, "fp32")
    assert "| never | not bracketed |" in md and "| int8 | 3.33 |" in md and md.count("\n") == 4
    with pytest.raises(ConfigError, match="reference receiver 'lmmse'"):
        required_table(curves, "lmmse")


def test_method_figure_writes_png_and_byte_table(tmp_path):
    from effinrx.link.counts import PointCounts as P
    from effinrx.quant.summary import method_figure

    one = {"nrx-rt": [P(3.0, 32, 128)], "nrx-rt-w8a8-int8": [P(3.0, 56, 128)], "ls-lmmse": [P(3.0, 55, 128)]}
    p, md = method_figure(one, "nrx-rt", tmp_path / "f.png", "t")
    assert p.read_bytes()[:4] == b"\x89PNG"
    assert "| nrx-rt-w8a8-int8 | 56/128 | 157086 |" in md and "| ls-lmmse | 55/128 | — |" in md


def test_gap_interval_and_interval_rules():
    import math

    from effinrx.link.metrics import all_of, gap_interval, within
    from effinrx.link.counts import PointCounts as P

    a = [P(0.0, 90, 100), P(2.0, 40, 100), P(4.0, 1, 100)]
    b = [P(0.0, 80, 100), P(2.0, 20, 100), P(4.0, 2, 100)]
    g, lo, hi = gap_interval(a, b)
    assert lo < g < hi and g > 0
    assert within(0.1, 0.4, 0.0, 0.5) is True and within(0.6, 0.9, 0.0, 0.5) is False
    assert within(-0.1, 0.3, 0.0, 0.5) is None and within(math.nan, 1.0) is None
    assert all_of(True, None) is None and all_of(True, False) is False and all_of(True, True) is True
