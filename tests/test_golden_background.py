"""Figures of a lower tier draw the highest tier's golden curves underneath (issue 17, item 7)."""
import json

from effinrx.claims.golden import GoldenStore, background_curves, golden_curves


def _write(root, tier, claim, entries):
    d = root / tier / "any"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{claim}.json").write_text(json.dumps({"schema": 1, "claim": claim, "tier": tier, "device": "any",
                                                 "entries": entries}))


def _counts(e, n):
    return {"kind": "counts", "value": {"errors": e, "blocks": n}, "meta": {}}


def test_golden_curves_reads_counts_by_key_and_sorts(tmp_path):
    _write(tmp_path, "nightly", "Q2", {"nrx-rt/ebno=2": _counts(30, 100), "nrx-rt/ebno=-1": _counts(90, 100),
                                       "nrx-rt/near-one": {"kind": "verdict", "value": {}, "meta": {}},
                                       "ls-lmmse/fp32/ebno=0": _counts(50, 100)})
    st = GoldenStore(tmp_path, "nightly")
    c = golden_curves(st, "Q2", ["nrx-rt", "missing"])
    assert list(c) == ["nrx-rt"] and [p.ebno_db for p in c["nrx-rt"]] == [-1.0, 2.0]
    assert c["nrx-rt"][1].errors == 30 and c["nrx-rt"][1].blocks == 100
    assert golden_curves(st, "Q2", {"ls": "ls-lmmse/fp32"})["ls"][0].errors == 50


def test_background_is_the_highest_tier_above_with_a_swept_curve(tmp_path):
    _write(tmp_path, "smoke", "Q2", {"nrx-rt/ebno=2": _counts(3, 10)})
    _write(tmp_path, "nightly", "Q2", {"nrx-rt/ebno=0": _counts(9, 10), "nrx-rt/ebno=2": _counts(3, 10)})
    _write(tmp_path, "paper", "Q2", {"nrx-rt/ebno=2": _counts(3, 10)})  # one point: not a curve
    curves, tier = background_curves(GoldenStore(tmp_path, "smoke"), "Q2", ["nrx-rt"])
    assert tier == "nightly" and len(curves["nrx-rt"]) == 2
    assert background_curves(GoldenStore(tmp_path, "paper"), "Q2", ["nrx-rt"]) == ({}, None)


def test_plot_with_background_draws_a_curve_figure_for_one_point(tmp_path):
    from effinrx.link.montecarlo import PointCounts
    from effinrx.link.plots import plot_tbler

    run = {"nrx-rt": [PointCounts(ebno_db=2.0, errors=3, blocks=10)]}
    bg = {"nrx-rt": [PointCounts(ebno_db=0.0, errors=9, blocks=10), PointCounts(ebno_db=2.0, errors=3, blocks=10)]}
    p = plot_tbler(run, tmp_path / "f.png", "t", background=bg)
    assert p.stat().st_size > 0
