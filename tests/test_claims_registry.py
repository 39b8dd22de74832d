"""The claims registry is complete and every claim is exercised by at least one benchmark."""
import re
from pathlib import Path

import pytest

from effinrx.claims.coverage import scan
from effinrx.claims.registry import load_claims, parse_claims, repo_root
from effinrx.errors import ConfigError

CLAIMS_MD = repo_root().parent / "shared" / "claims.md"


def test_registry_loads_and_is_valid():
    claims = load_claims()
    assert len(claims) >= 36
    for c in claims.values():
        assert c.statement and c.metric and c.paper


@pytest.mark.skipif(not CLAIMS_MD.exists(), reason=f"{CLAIMS_MD} not present beside the checkout")
def test_registry_has_every_id_of_claims_md():
    ids = set(re.findall(r"^- ([A-Z]\d+) ", CLAIMS_MD.read_text(encoding="utf-8"), flags=re.M))
    assert ids, "no claim IDs parsed from claims.md"
    assert ids <= set(load_claims()), f"missing from golden/claims.toml: {sorted(ids - set(load_claims()))}"


def test_every_claim_has_a_benchmark():
    found = scan(repo_root() / "benchmarks")
    missing = sorted(set(load_claims()) - set(found))
    assert not missing, f"claims without any benchmark carrying pytest.mark.claim: {missing}"


def test_bad_registry_errors_name_the_problem():
    with pytest.raises(ConfigError, match="schema"):
        parse_claims("schema = 2\n", "x.toml")
    with pytest.raises(ConfigError, match=r"claim Z1: missing key\(s\)"):
        parse_claims('schema = 1\n[claims.Z1]\nsource="x"\n', "x.toml")
    with pytest.raises(ConfigError, match="x.toml: not valid TOML"):
        parse_claims("schema = = 1", "x.toml")


def test_mlperf_rule():
    c = load_claims()["P3"]
    assert c.reproduces(0.52) is True
    assert c.reproduces(0.7) is False
    assert load_claims()["Q1"].reproduces(0.1) is None


def test_coverage_scanner_sees_params_and_pytestmark(tmp_path: Path):
    (tmp_path / "test_x.py").write_text(
        "import pytest\npytestmark = [pytest.mark.claim('A1')]\n"
        "@pytest.mark.claim('B2')\ndef test_a(): pass\n"
        "@pytest.mark.parametrize('p', [pytest.param(1, marks=pytest.mark.claim('C3'))])\n"
        "def test_b(p): pass\n")
    found = scan(tmp_path)
    assert set(found) == {"A1", "B2", "C3"}


def test_regression_table_is_read_and_checked(tmp_path: Path):
    """``[regression]`` of claims.toml: the count goldens' family-wise alpha; errors name file and key."""
    from effinrx.claims.registry import regression_param

    assert 0.0 < regression_param("family_alpha") < 0.05
    bad = tmp_path / "c.toml"
    bad.write_text("schema = 1\n")
    with pytest.raises(ConfigError, match=r"no \[regression\] table"):
        regression_param("family_alpha", str(bad))
    bad = tmp_path / "d.toml"  # the registry is read once per process and path
    bad.write_text("schema = 1\n[regression]\nfamily_alpha = 1.5\n")
    with pytest.raises(ConfigError, match="must be in"):
        regression_param("family_alpha", str(bad))
    with pytest.raises(ConfigError, match="no key 'other'"):
        regression_param("other", str(bad))
