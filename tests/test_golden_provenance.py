"""Golden provenance (issue 14 item 7) and complete .obtained files (issue 17 item 5)."""
import json

from effinrx.claims.check import NOT_COMPARABLE, check
from effinrx.claims.golden import GoldenStore, comparability, provenance

pytest_plugins = ["pytester"]


def _check(store, measured, key="k", meta=None, kind="rel", device="any"):
    return check(store, claim="M2", key=key, measured=measured, kind=kind, tol=0.01, metric="m",
                 paper="p", reproduced=None, device=device, meta=meta)


def test_provenance_fields():
    p = provenance(seed=7, test="benchmarks/test_x.py::test_y[a]", tier="smoke", config={"prbs": 4})
    assert p["seed"] == 7 and p["config"] == {"prbs": 4} and len(p["config_hash"]) == 12
    assert p["versions"]["python"] and "numpy" in p["versions"] and "effinrx" in p["versions"]
    assert len(p["git_commit"]) in (40, 7) and p["git_dirty"] in (True, False, None)
    assert p["command"] == p["regen_command"] == "python -m pytest 'benchmarks/test_x.py::test_y[a]' --tier smoke --seed 7 --force-regen"
    assert provenance(seed=7, test="t", tier="smoke", config={"a": 1, "b": 2})["config_hash"] == \
        provenance(seed=7, test="t", tier="smoke", config={"b": 2, "a": 1})["config_hash"]


def test_seed_or_config_mismatch_is_not_comparable(tmp_path):
    run = provenance(seed=42, test="t", tier="smoke", config={"prbs": 4})
    _check(GoldenStore(tmp_path, "smoke", "regen-all"), 1.0, meta=run)
    entry = json.loads((tmp_path / "smoke/any/M2.json").read_text())["entries"]["k"]
    assert entry["meta"]["config_hash"] == run["config_hash"] and entry["meta"]["git_commit"]
    store = GoldenStore(tmp_path, "smoke")
    assert _check(store, 1.0, meta=run).verdict == "pass"
    # another seed: not compared (even a value far off is not a regression, a close one not a pass)
    for value in (1.0, 5.0):
        v = _check(store, value, meta={**run, "seed": 1})
        assert v.golden_status == NOT_COMPARABLE and not v.failed
        assert v.verdict == "not comparable (seed 1 of this run, golden taken with seed 42)"
        assert "--force-regen" in v.message and "obtained" in v.message
    other = provenance(seed=42, test="t", tier="smoke", config={"prbs": 132})
    v = _check(store, 1.0, meta=other)
    assert v.golden_status == NOT_COMPARABLE and "configuration differs" in v.verdict
    assert "prbs: 132 vs 4" in v.verdict
    # latency draws nothing from the seed: compared despite another seed
    assert comparability({"seed": 42}, {"seed": 1}, "latency") is None


def test_old_entries_without_provenance_compare_as_before(tmp_path):
    p = tmp_path / "smoke/any/M2.json"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps({"schema": 1, "claim": "M2", "tier": "smoke", "device": "any", "entries": {
        "k": {"kind": "rel", "value": 1.0, "meta": {"seed": 42, "test": "t", "device": "cpu"}}}}))
    run = provenance(seed=42, test="t", tier="smoke", config={"prbs": 4})
    store = GoldenStore(tmp_path, "smoke")
    assert _check(store, 1.0, meta=run).verdict == "pass"
    assert _check(store, 2.0, meta=run).verdict == "regressed"  # a check can still fail
    assert _check(store, 1.0, meta={**run, "seed": 3}).golden_status == NOT_COMPARABLE
    # regeneration gives the old entry provenance
    _check(GoldenStore(tmp_path, "smoke", "force-regen"), 1.0, meta=run)
    assert json.loads(p.read_text())["entries"]["k"]["meta"]["config_hash"] == run["config_hash"]


def test_obtained_holds_the_complete_golden_file(tmp_path):
    regen = GoldenStore(tmp_path, "smoke", "regen-all")
    for i, k in enumerate("abcdef"):
        _check(regen, float(i + 1), key=k)
    obtained = tmp_path / "smoke/any/M2.json.obtained"
    obtained.write_text(json.dumps({"schema": 1, "claim": "M2", "entries": {
        "stale": {"kind": "rel", "value": 9.0, "meta": {}}}}))  # left by an earlier run
    store = GoldenStore(tmp_path, "smoke")
    assert _check(store, 30.0, key="c").verdict == "regressed"
    data = json.loads(obtained.read_text())
    assert sorted(data["entries"]) == list("abcdef")  # every entry, the stale one gone
    assert data["entries"]["c"]["value"] == 30.0 and data["entries"]["a"]["value"] == 1.0
    assert _check(store, 50.0, key="e").verdict == "regressed"  # same run: added to the same file
    data = json.loads(obtained.read_text())
    assert data["entries"]["c"]["value"] == 30.0 and data["entries"]["e"]["value"] == 50.0
    golden = json.loads((tmp_path / "smoke/any/M2.json").read_text())
    assert {k: e["value"] for k, e in golden["entries"].items()} == {k: float(i + 1) for i, k in enumerate("abcdef")}
    # a key the golden lacks joins the complete file
    assert _check(store, 7.0, key="new").golden_status == "no golden"
    assert sorted(json.loads(obtained.read_text())["entries"]) == sorted([*"abcdef", "new"])


def test_plugin_not_comparable_xfails_and_reaches_the_report(pytester):
    pytester.makeconftest('pytest_plugins = ["effinrx.claims.pytest_plugin"]\n')
    pytester.makepyfile(test_claims='''
import pytest

@pytest.mark.claim("M1")
def test_m(claim_check):
    claim_check.set_config(prbs=4)
    claim_check("k", 1.0, kind="rel")

@pytest.mark.claim("M1")
def test_recipe(claim_check):
    claim_check("r", 2.0, kind="rel", meta={"recipe": {"steps": 12}, "train_seconds": 3.1})
''')
    gold = pytester.path / "golden"
    common = ["-p", "no:cacheprovider", "--tier", "smoke", "--golden-dir", str(gold)]
    pytester.runpytest_subprocess(*common, "--regen-all", "--report-dir", str(pytester.path / "r0")
                                  ).assert_outcomes(passed=2)
    entries = json.loads((gold / "smoke/any/M1.json").read_text())["entries"]
    assert entries["r"]["meta"]["config"] == {"params": "", "recipe": {"steps": 12}}
    meta = entries["k"]["meta"]
    assert meta["config"] == {"params": "", "prbs": 4} and meta["seed"] == 42 and meta["versions"]
    assert meta["command"].endswith("test_claims.py::test_m' --tier smoke --seed 42 --force-regen")
    pytester.runpytest_subprocess(*common, "--report-dir", str(pytester.path / "r1")).assert_outcomes(passed=2)
    rep = pytester.path / "r2"
    res = pytester.runpytest_subprocess(*common, "--seed", "5", "--report-dir", str(rep), "-rx")
    res.assert_outcomes(xfailed=2)
    res.stdout.fnmatch_lines(["*not comparable*seed 5 of this run, golden taken with seed 42*"])
    data = json.loads((rep / "tolerance.json").read_text())
    m1 = next(c for c in data["claims"] if c["claim"] == "M1")
    assert m1["status"] == "not comparable (seed 5 of this run, golden taken with seed 42)"
    assert data["meta"]["git_commit"] and data["meta"]["versions"]["python"]
    md = (rep / "tolerance.md").read_text()
    assert "**not comparable** with their goldens" in md and "Versions: " in md
