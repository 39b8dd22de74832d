"""Quantized NRX-Large TBLER vs LMMSE+K-best (claims Q4, Q5, Q6, and the Large half of Q7).

Where: the one engine (:mod:`effinrx.link.sweep`) on NVIDIA's evaluation scenario (default
``Scenario``: 4 PRBs, 2 UEs, MCS 14, DoubleTDL TDL-B100 400 Hz / TDL-C300 100 Hz, no per-slot
normalisation), LMMSE+K-best with K=64 and covariances of the UMi training channel. Every batch is
seeded from ``(seed, scenario, Eb/N0, batch size, index)``, so all receivers see the *same* slots.

Receivers (reference weights): fp32; weight-only PTQ fp16 ("nrx-large-ptq-fp16" of the paper: TensorRT keeps
fp16 activations too, their rounding is not modelled), fp8-e4m3 and int8 per-channel
(``effinrx.quant.ptq``); W8A8 fake-quant fp8 and int8 (``effinrx.quant.w8a8``, static max
calibration on UMi training-channel slots: what a TensorRT Q/DQ engine runs; the paper used AWQ
for int8, which is not implemented here); LMMSE+K-best.

Verdicts. The paper's words are qualitative; our reading, fixed before measuring:
* smoke (one Eb/N0 point, 128 TBs): pooled one-sided Fisher tests at p < 0.01. "better / beats"
  = significantly fewer TB errors; "roughly equal" = a two-sided Fisher test does not reject
  (alpha 0.01). At 128 TBs "slightly better" is below what the test can resolve, so Q4/Q5 are
  expected to read "not reproduced" there: the note gives the counts and p-values.
* nightly/paper (Eb/N0 -2..7 dB): required Eb/N0 at TBLER 10 % (and 1 % in the note) by
  log-linear interpolation (``effinrx.link.metrics``); "slightly / a little / roughly equal" =
  within ``SMALL_DB`` = 0.5 dB.
Goldens: TB error counts per Eb/N0 (keys ``<receiver>/ebno=<x>``) with the reproducing command.
"""
import functools
import math

import pytest

from effinrx.link import sweep
from effinrx.stats import compare_counts, one_sided_less

# nightly-only: seven NRX-Large graphs cost ~90 s of the 15-min smoke budget, and one smoke Eb/N0
# point decides none of Q4-Q7 (the same quantizers run on NRX-RT in smoke, benchmarks/test_quantized_tbler.py)
pytestmark = [pytest.mark.nightly,
              pytest.mark.reference_weights]

SIZES = {"nightly": {"ebno": [float(e) for e in range(-2, 8)], "max_blocks": 512, "batch": 32},
         "paper": {"ebno": [float(e) for e in range(-2, 8)], "max_blocks": 2048, "batch": 32}}
SMALL_DB = 0.5  # our reading of "slightly", "a little", "roughly equal" (the paper gives no number)
ALPHA = 0.01
KB = "lmmse-kbest"


@functools.lru_cache(maxsize=None)
def _counts(tier: str, seed: int):
    """{registry name: [PointCounts per Eb/N0]} on the same seeded slots, the sizes, the CLI command."""
    sz = SIZES[tier]
    names = ("nrx-large", "nrx-large-ptq-fp16", "nrx-large-ptq-fp8", "nrx-large-ptq-int8-pc",
             "nrx-large-w8a8-fp8", "nrx-large-w8a8-int8", KB)
    res, cmd = sweep.counts(names, ebno=sz["ebno"], batch=sz["batch"], max_blocks=sz["max_blocks"], seed=seed)
    return res, sz, cmd


def _pool(res, name):
    return sum(p.errors for p in res[name]), sum(p.blocks for p in res[name])


def _rate(res, name):
    e, n = _pool(res, name)
    return f"{name} {e}/{n}"


def _record(claim_check, res, names, cmd):
    for v in names:
        for p in res[v]:
            claim_check(f"{v}/ebno={p.ebno_db:g}", sweep.as_counts(p), kind="counts", meta={"command": cmd},
                        note=f"TBLER {p.tbler:.3f}, {p.seconds:.1f} s")


def _req(res, name, target):
    from effinrx.link.metrics import required_ebno

    return required_ebno(res[name], target)


def _gap(res, a, b, target=0.1):
    """Required-Eb/N0 gap of ``a`` over ``b`` in dB (positive: ``a`` worse); NaN if not bracketed."""
    return _req(res, a, target).value - _req(res, b, target).value


def _gaps_note(res, names):
    out = []
    for t in (0.1, 0.01):
        reqs = ", ".join(f"{n} {_req(res, n, t).value:.2f} [{_req(res, n, t).low:.2f}, "
                         f"{_req(res, n, t).high:.2f}]" for n in names)
        out.append(f"req. Eb/N0 @TBLER {t:g}: {reqs} dB")
    return "; ".join(out)


def _p_less(res, a, b):
    return one_sided_less(*_pool(res, a), *_pool(res, b))


@pytest.mark.claim("Q4")
def test_q4_large_fp16_vs_kbest(request, claim_check, seed):
    res, _, cmd = _counts(request.config.getoption("--tier"), seed)
    _record(claim_check, res, ("nrx-large", "nrx-large-ptq-fp16", KB), cmd)
    p = _p_less(res, "nrx-large-ptq-fp16", KB)
    note = f"pooled {_rate(res, 'nrx-large-ptq-fp16')} vs {_rate(res, KB)} ({_rate(res, 'nrx-large')}); one-sided p={p:.3g}"
    g = _gap(res, "nrx-large-ptq-fp16", KB)
    ok = -SMALL_DB <= g < 0.0
    claim_check("quant/fp16-slightly-better-than-kbest", {"reproduced": bool(ok)}, kind="verdict",
                reproduced=bool(ok), note=f"gap fp16 - K-best @10% {g:+.2f} dB (want in "
                f"[-{SMALL_DB}, 0)); {_gaps_note(res, ('nrx-large', 'nrx-large-ptq-fp16', KB))}; {note}")


@pytest.mark.claim("Q5")
def test_q5_large_fp8_vs_kbest(request, claim_check, seed):
    res, _, cmd = _counts(request.config.getoption("--tier"), seed)
    _record(claim_check, res, ("nrx-large-w8a8-fp8", "nrx-large-ptq-fp8"), cmd)
    p_kb = _p_less(res, "nrx-large-w8a8-fp8", KB)
    p_loss = _p_less(res, "nrx-large-ptq-fp16", "nrx-large-w8a8-fp8")  # small p: fp8 significantly worse than fp16
    note = (f"pooled W8A8 {_rate(res, 'nrx-large-w8a8-fp8')}, weight-only {_rate(res, 'nrx-large-ptq-fp8')}, "
            f"{_rate(res, 'nrx-large-ptq-fp16')}, {_rate(res, KB)}; one-sided p(fp8 < K-best)={p_kb:.3g}, "
            f"p(fp16 < fp8)={p_loss:.3g}")
    g_kb, g_16 = _gap(res, "nrx-large-w8a8-fp8", KB), _gap(res, "nrx-large-w8a8-fp8", "nrx-large-ptq-fp16")
    ok = g_kb < 0.0 and g_16 <= SMALL_DB
    claim_check("quant/fp8-little-loss-beats-kbest", {"reproduced": bool(ok)}, kind="verdict",
                reproduced=bool(ok), note=f"gap fp8 W8A8 - K-best {g_kb:+.2f} dB (want < 0), "
                f"- fp16 {g_16:+.2f} dB (want <= {SMALL_DB}); fp8 weight-only - fp16 "
                f"{_gap(res, 'nrx-large-ptq-fp8', 'nrx-large-ptq-fp16'):+.2f} dB; "
                f"{_gaps_note(res, ('nrx-large-w8a8-fp8', 'nrx-large-ptq-fp8', KB))}; {note}")


@pytest.mark.claim("Q6")
def test_q6_large_int8_vs_kbest(request, claim_check, seed):
    res, _, cmd = _counts(request.config.getoption("--tier"), seed)
    _record(claim_check, res, ("nrx-large-w8a8-int8", "nrx-large-ptq-int8-pc"), cmd)
    (e8, n8), (ek, nk) = _pool(res, "nrx-large-w8a8-int8"), _pool(res, KB)
    p_eq = compare_counts(e8, n8, ek, nk, alpha=ALPHA).p_value
    note = (f"pooled W8A8 {_rate(res, 'nrx-large-w8a8-int8')}, weight-only per-channel {_rate(res, 'nrx-large-ptq-int8-pc')}, "
            f"{_rate(res, 'nrx-large-w8a8-fp8')}, {_rate(res, KB)}; two-sided p(int8 W8A8 = K-best)={p_eq:.3g}")
    g_kb = _gap(res, "nrx-large-w8a8-int8", KB)
    g_more = _gap(res, "nrx-large-w8a8-int8", "nrx-large-ptq-fp16") - _gap(res, "nrx-large-w8a8-fp8", "nrx-large-ptq-fp16")
    ok = abs(g_kb) <= SMALL_DB and g_more >= 0.0
    claim_check("quant/int8-roughly-kbest", {"reproduced": bool(ok)}, kind="verdict",
                reproduced=bool(ok), note=f"gap int8 W8A8 - K-best {g_kb:+.2f} dB (want |.| <= "
                f"{SMALL_DB}), extra loss over fp8 {g_more:+.2f} dB (want >= 0); "
                f"{_gaps_note(res, ('nrx-large-w8a8-int8', 'nrx-large-ptq-int8-pc', KB))}; {note}")


@pytest.mark.claim("Q7")
def test_q7_large_fp8_beats_int8(request, claim_check, seed):
    res, _, cmd = _counts(request.config.getoption("--tier"), seed)
    p = _p_less(res, "nrx-large-w8a8-fp8", "nrx-large-w8a8-int8")
    ok = p < ALPHA
    g = _gap(res, "nrx-large-w8a8-fp8", "nrx-large-w8a8-int8")
    extra = f"; gap fp8 - int8 W8A8 @10% {g:+.2f} dB" if not math.isnan(g) else "; gap not bracketed"
    claim_check("nrx-large/fp8-vs-int8-w8a8", {"p_lt_0.01": bool(ok)}, kind="verdict", reproduced=bool(ok),
                note=f"pooled {_rate(res, 'nrx-large-w8a8-fp8')} vs {_rate(res, 'nrx-large-w8a8-int8')}, one-sided "
                     f"Fisher p={p:.3g}{extra}")


@pytest.mark.claim("Q4")
def test_quantized_large_figure_and_table(request, seed, report_dir, report_artifact):
    """Figure of all Large variants and LMMSE+K-best on the same slots, with the method table
    (required Eb/N0 at TBLER 10 % with interval and gap to fp32 in nightly; exact weight bytes)."""
    from effinrx.quant.summary import method_figure

    res, sz, cmd = _counts(request.config.getoption("--tier"), seed)
    p, table = method_figure(res, "nrx-large", report_dir / "plots" / "quantized_large_tbler.png",
                             f"NRX-Large quantized, DoubleTDL, 4 PRBs, {sz['max_blocks']} TBs/point")
    report_artifact(p, f"NRX-Large: weight-only PTQ and W8A8 vs fp32 and LMMSE+K-best "
                       f"({sz['max_blocks']} TBs per point, same slots); reproduce: {cmd}", table=table)
    assert p.stat().st_size > 0 and table.count("\n") == len(res) + 1
