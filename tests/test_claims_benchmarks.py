"""The claims table names its benchmarks: every ``benchmark`` node id of golden/claims.toml exists,
carries the claim's marker, and the claim's ``tier`` is the cheapest tier among its listed tests."""
import ast
from pathlib import Path

import pytest

from effinrx.claims.registry import load_claims, repo_root

ORDER = {"smoke": 0, "nightly": 1, "paper": 2}


def _marks(node) -> set:
    """Marker names in a decorator list or a ``pytestmark`` value (``pytest.mark.<name>``). Marks
    inside ``pytest.param(..., marks=...)`` belong to one parameter only (the test still runs in the
    cheaper tier for the others), so they are not the function's."""
    out = set()
    todo = [node]
    while todo:
        sub = todo.pop()
        if isinstance(sub, ast.Call) and getattr(sub.func, "attr", "") == "param":
            continue
        if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Attribute) and sub.value.attr == "mark":
            out.add(sub.attr)
        todo.extend(ast.iter_child_nodes(sub))
    return out


def _claim_args(decorators) -> set:
    ids = set()
    for d in decorators:
        if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "claim":
            ids |= {a.value for a in d.args if isinstance(a, ast.Constant)}
    return ids


def _index(path: Path) -> dict:
    tree = ast.parse(path.read_text())
    module_marks = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in stmt.targets):
            module_marks |= _marks(stmt.value)
    # names bound to a marker at module level (e.g. LARGE_NIGHTLY = pytest.mark.nightly)
    aliases = {t.id: _marks(stmt.value) for stmt in tree.body if isinstance(stmt, ast.Assign)
               for t in stmt.targets if isinstance(t, ast.Name) and _marks(stmt.value)}
    out = {}
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_"):
            marks = set(module_marks)
            for d in fn.decorator_list:
                marks |= _marks(d)
                if isinstance(d, ast.Name):
                    marks |= aliases.get(d.id, set())
            out[fn.name] = (marks, _claim_args(fn.decorator_list))
    return out


CLAIMS = {cid: c for cid, c in load_claims().items() if "benchmark" in c.extra}


def test_some_claims_name_their_benchmarks():
    assert len(CLAIMS) >= 15


@pytest.mark.parametrize("cid", sorted(CLAIMS))
def test_benchmark_node_ids_exist_and_tier_matches(cid):
    claim = CLAIMS[cid]
    tiers = []
    for node in claim.extra["benchmark"]:
        file, _, name = node.partition("::")
        path = repo_root() / file
        assert path.is_file(), f"claims.toml {cid}: {file} does not exist"
        idx = _index(path)
        assert name in idx, f"claims.toml {cid}: {node} is not a test function"
        marks, ids = idx[name]
        # a test with claim markers must carry this claim's (tests without one pass claim= per check)
        assert not ids or cid in ids, f"claims.toml {cid}: {node} is marked claim({sorted(ids)})"
        tier = "paper" if "paper" in marks else "nightly" if "nightly" in marks else "smoke"
        tiers.append(tier)
    cheapest = min(tiers, key=ORDER.__getitem__)
    assert claim.tier == cheapest, (f"claims.toml {cid}: tier {claim.tier!r} but its cheapest listed benchmark "
                                    f"runs in {cheapest!r}: {claim.extra['benchmark']}")


def test_every_claim_states_its_rule_and_benchmarks():
    """Issue 14.1: every claim states its verdict rule and names the benchmark tests that decide or
    record it (a claim without either is a hole in the table)."""
    claims = load_claims()
    missing = {cid: [k for k in ("rule", "benchmark") if not c.extra.get(k)] for cid, c in claims.items()}
    missing = {cid: keys for cid, keys in missing.items() if keys}
    assert not missing, f"golden/claims.toml: claims lacking rule/benchmark: {missing}"
    bad = [cid for cid, c in claims.items()
           if not isinstance(c.extra["rule"], str) or not isinstance(c.extra["benchmark"], list)]
    assert not bad, f"golden/claims.toml: rule must be a string and benchmark a list of node ids: {bad}"
