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


def test_latency_on_a_new_device_records_every_check_then_xfails(pytester):
    """A device without latency goldens: the test still runs its later checks (K3 then L8 in one
    test), ends xfailed, and the claims read "no golden for this device", not "regressed"."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_claims='''
import pytest

@pytest.mark.claim("K3", "L8")
def test_two_latencies(claim_check):
    for cid in ("K3", "L8"):
        claim_check("ort-cpu/x", {"median_ms": 1.0, "min_ms": 1.0}, kind="latency", claim=cid)
''')
    (pytester.path / "golden" / "smoke" / "any").mkdir(parents=True)
    rep = pytester.path / "rep"
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tier", "smoke", "--golden-dir",
                                        str(pytester.path / "golden"), "--report-dir", str(rep))
    res.assert_outcomes(xfailed=1)
    data = json.loads((rep / "tolerance.json").read_text())
    got = {c["claim"]: c["status"] for c in data["claims"] if c["claim"] in ("K3", "L8")}
    assert got == {"K3": "no golden for this device (latency goldens are per device)",
                   "L8": "no golden for this device (latency goldens are per device)"}
    assert sorted(r["claim"] for r in data["checks"] if r["verdict"] == "no golden for this device") == ["K3", "L8"]


def test_claims_deselected_by_k_are_not_selected_not_silent(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_claims='''
import pytest

@pytest.mark.claim("M1")
def test_m1_param_counts():
    pass

@pytest.mark.claim("M2")
def test_m2_other():
    pass
''')
    rep = pytester.path / "rep"
    (pytester.path / "golden").mkdir()
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "test_m1_param_counts", "--golden-dir",
                                        str(pytester.path / "golden"), "--report-dir", str(rep))
    res.assert_outcomes(passed=1, deselected=1)
    status = {c["claim"]: c["status"] for c in json.loads((rep / "tolerance.json").read_text())["claims"]}
    assert status["M2"] == "not selected in this run (-k/-m)"
    assert status["M1"] == "no check recorded"  # its test ran and recorded no claim_check
