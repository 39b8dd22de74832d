"""The pytest plugin end to end in a child pytest run: skip reasons reach the report, and golden
entries left over by a test that moved tier are listed."""
import json

pytest_plugins = ["pytester"]

CONFTEST = 'pytest_plugins = ["effinrx.claims.pytest_plugin"]\n'


def test_skip_reason_and_left_over_goldens_reach_the_report(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_claims='''
import pytest

@pytest.mark.claim("M2")
def test_skipped():
    pytest.skip("reference weights absent here")

@pytest.mark.claim("M1")
@pytest.mark.nightly
def test_moved(claim_check):
    claim_check("k", 1.0, kind="rel")
''')
    gold = pytester.path / "golden" / "smoke" / "any"
    gold.mkdir(parents=True)
    (gold / "M1.json").write_text(json.dumps({
        "schema": 1, "claim": "M1", "tier": "smoke", "device": "any",
        "entries": {"k": {"kind": "rel", "value": 1.0, "meta": {"test": "test_claims.py::test_moved"}}}}))
    rep = pytester.path / "rep"
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tier", "smoke", "--golden-dir",
                                        str(pytester.path / "golden"), "--report-dir", str(rep))
    res.assert_outcomes(skipped=1, deselected=1)
    data = json.loads((rep / "tolerance.json").read_text())
    m2 = next(c for c in data["claims"] if c["claim"] == "M2")
    assert m2["status"] == "not measurable here" and "reference weights absent here" in m2["detail"]
    left = data["meta"]["unchecked_goldens"]
    assert [(u["key"], u["test"]) for u in left] == [("k", "test_claims.py::test_moved")]
    assert "Golden entries no check read" in (rep / "tolerance.md").read_text()
