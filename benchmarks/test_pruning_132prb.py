"""Pruned NRX at NVIDIA's evaluation size (claims P4-P6 at 132 PRBs, issue 15): the nightly
fine-tunes of ``test_pruning.py`` (the same cached weights, :mod:`_pruning`), evaluated on the
132-PRB DoubleTDL scenario with 128 TBs a point over 2..8 dB, fp32 of each model on the same slots,
and LS/lin+LMMSE and LMMSE+K-best (22-PRB LMMSE chunks) over 2..5 dB for the gaps. The decision
rules are the 4-PRB ones (:func:`_pruning.decide_p4` ...); goldens are keyed ``132prb/...``.

Cost on 2 cores: ~165 s per 512 TBs for an RT receiver, more for Large, ~17 min per 512 TBs for
LMMSE+K-best. Run with ``EFFINRX_SWEEP_CACHE=<file>`` (resumable; the committed
``golden/sweep-cache/pruning-132prb.json`` already holds fp32 and the baselines on these slots) and
``EFFINRX_PRUNE_CACHE=<folder>`` (the fine-tunes).
"""
import pytest

from _pruning import (AT_132, KB, LS, VARIANTS, decide_p4, decide_p5, decide_p6, p6_nonzeros, record, tag,
                      tbler_132, tier_of)

pytestmark = [pytest.mark.reference_weights, pytest.mark.nightly]
PREFIX = f"{AT_132['prbs']}prb/"


def _table(report_dir, report_artifact, res, model, cmd):
    """The method figure (TBLER vs Eb/N0 with intervals) and the gaps table of ``model``'s variants."""
    from effinrx.link.metrics import gaps_table
    from effinrx.link.plots import plot_tbler

    names = [n for n in res if n.startswith(model + "/")] + [LS, KB]
    curves = {n: res[n] for n in names}
    p = plot_tbler(curves, report_dir / "plots" / f"pruned_{model}_tbler_132prb.png",
                   f"pruned {model}, DoubleTDL, 132 PRBs, {AT_132['max_blocks']} TBs/point")
    report_artifact(p, f"pruned {model} at 132 PRBs: required Eb/N0 and gaps to fp32, LMMSE+K-best and "
                       f"LS/lin+LMMSE (same slots; baselines: {cmd})",
                    table=gaps_table(curves, (f"{model}/fp32", KB, LS)))


@pytest.mark.claim("P4")
def test_p4_pruned_rt_loss_132prb(request, claim_check, seed, report_dir, report_artifact):
    res, cmd = tbler_132(tier_of(request), seed)
    rt = ["nrx-rt/fp32"] + [f"nrx-rt/{tag(m, p)}" for m, p in VARIANTS["nrx-rt"]]
    record(claim_check, res, rt + [LS, KB], PREFIX)
    decide_p4(claim_check, res, PREFIX)
    _table(report_dir, report_artifact, res, "nrx-rt", cmd)


@pytest.mark.claim("P5")
def test_p5_pruned_large_loss_132prb(request, claim_check, seed, report_dir, report_artifact):
    res, cmd = tbler_132(tier_of(request), seed, ("nrx-large",))
    record(claim_check, res, ["nrx-large/fp32", "nrx-large/magnitude-0.8", "nrx-large/magnitude-2:4"], PREFIX)
    decide_p5(claim_check, res, PREFIX)
    _table(report_dir, report_artifact, res, "nrx-large", cmd)


@pytest.mark.claim("P6")
def test_p6_pruned_large_beats_rt_132prb(request, claim_check, seed):
    tier = tier_of(request)
    lg = "nrx-large/magnitude-0.8"
    res, _ = tbler_132(tier, seed, names=[lg, "nrx-rt/fp32"])
    nz = p6_nonzeros(tier, seed)
    nz_large, nz_rt = nz[lg], nz["nrx-rt/fp32"]
    assert nz_large < nz_rt, (nz_large, nz_rt)  # a property of the 0.8 masks (recorded by the 4-PRB P6)
    record(claim_check, res, [lg, "nrx-rt/fp32"], PREFIX)
    decide_p6(claim_check, res, PREFIX)
