"""The plugin under pytest-xdist (``-n 2``) in a child run: one tolerance report, written by the
controller with every worker's checks; timing tests skipped on workers with the reason."""
import json

import pytest

pytest.importorskip("xdist", reason="pytest-xdist not installed: pip install -e '.[test]'")
pytest_plugins = ["pytester"]

TESTS = '''
import pytest

@pytest.mark.claim("M1")
def test_m1(claim_check):
    claim_check("k", 1.0, kind="rel")

@pytest.mark.claim("M2")
def test_m2(claim_check):
    claim_check("k2", 2.0, kind="rel")

def test_plain():
    pass

def test_timed(benchmark):
    benchmark(sum, [1, 2])
'''


def test_xdist_one_report_from_the_controller(pytester):
    pytester.makeconftest('pytest_plugins = ["effinrx.claims.pytest_plugin"]\n')
    pytester.makepyfile(test_claims=TESTS)
    gold = pytester.path / "golden" / "smoke" / "any"
    gold.mkdir(parents=True)
    for cid, key, v in (("M1", "k", 1.0), ("M2", "k2", 2.0)):
        (gold / f"{cid}.json").write_text(json.dumps({
            "schema": 1, "claim": cid, "tier": "smoke", "device": "any",
            "entries": {key: {"kind": "rel", "value": v, "meta": {"test": f"test_claims.py::test_{cid.lower()}"}}}}))
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--tier", "smoke",
                                        "--golden-dir", str(pytester.path / "golden"), "-rs")
    res.assert_outcomes(passed=3, skipped=1)
    res.stdout.fnmatch_lines(["*timing test: skipped under pytest-xdist*-m timing -p no:xdist*"])
    reports = list((pytester.path / "reports").iterdir())
    assert len(reports) == 1, reports  # workers share the controller's report folder
    data = json.loads((reports[0] / "tolerance.json").read_text())
    assert sorted((r["claim"], r["key"]) for r in data["checks"]) == [("M1", "k"), ("M2", "k2")]
    assert data["meta"]["unchecked_goldens"] == []
    # the serial pass runs the timing test
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-m", "timing",
                                        "--golden-dir", str(pytester.path / "golden"))
    res.assert_outcomes(passed=1, deselected=3)
