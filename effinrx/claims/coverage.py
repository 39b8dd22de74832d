"""Which claim IDs do the benchmark files exercise? A static (AST) scan, independent of the tier
that happens to be collected, so a claim without any benchmark is visible in every run."""
from __future__ import annotations

import ast
from pathlib import Path


def claims_in_file(path: Path) -> dict[str, list[str]]:
    """Map claim ID -> names of the tests in ``path`` that carry ``pytest.mark.claim("ID")``."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    found: dict[str, list[str]] = {}
    module_ids = _ids_in_pytestmark(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            ids = [i for d in node.decorator_list for i in _claim_args(d)]
            ids += module_ids if node.name.startswith(("test", "Test")) else []
            for i in ids:
                found.setdefault(i, []).append(node.name)
        if isinstance(node, ast.Call) and _is_param_with_marks(node):
            for kw in node.keywords:
                if kw.arg == "marks":
                    for sub in ast.walk(kw.value):
                        for i in _claim_args(sub):
                            found.setdefault(i, []).append("<param>")
    return found


def _claim_args(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "claim":
        return [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    return []


def _is_param_with_marks(node: ast.Call) -> bool:
    return isinstance(node.func, ast.Attribute) and node.func.attr == "param"


def _ids_in_pytestmark(tree: ast.Module) -> list[str]:
    ids: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark"
                                                for t in node.targets):
            for sub in ast.walk(node.value):
                ids += _claim_args(sub)
    return ids


def scan(bench_dir: Path) -> dict[str, list[str]]:
    """Claim ID -> ``file::test`` names over every ``test_*.py`` under ``bench_dir``."""
    out: dict[str, list[str]] = {}
    for f in sorted(Path(bench_dir).rglob("test_*.py")):
        for cid, tests in claims_in_file(f).items():
            out.setdefault(cid, []).extend(f"{f.name}::{t}" for t in tests)
    return out
