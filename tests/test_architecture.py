"""The package's shape (ARCHITECTURE.md): no import cycle, no module over 400 lines, no arrow from a
lower layer to an upper one. Pure ``ast`` over the source files: nothing is imported, so this runs in
well under a second.

Imports are counted wherever they sit (module level and inside functions: a function-local import
is still a dependency, it only hides a cycle until the function runs). ``import effinrx.a.b`` and
``from effinrx.a import b`` (``b`` a module) resolve to ``effinrx.a.b``; ``from effinrx.a.b import
name`` resolves to ``effinrx.a.b``; relative imports are resolved against the importing module.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "effinrx"
MAX_LINES = 400

#: forbidden arrows, by top-level folder/module of effinrx: importer -> what it must not import.
#: The flow is scenario/link -> receivers -> compression (quant, prune; training beside it) ->
#: export / engines -> latency -> claims -> commands/CLI; these are the arrows that would point back.
FORBIDDEN = {
    "link": {"quant", "prune", "training", "compress", "export", "engines", "latency", "claims", "commands",
             "cli"},
    "receivers": {"training", "export", "engines", "latency", "claims", "commands", "cli"},
    "quant": {"export", "engines", "latency", "claims", "commands", "cli"},
    "prune": {"export", "engines", "latency", "claims", "commands", "cli"},
    "training": {"export", "engines", "latency", "claims", "commands", "cli"},
    "export": {"latency", "claims", "commands", "cli"},
    "engines": {"latency", "claims", "commands", "cli"},
    "latency": {"claims", "commands", "cli"},
    "claims": {"commands", "cli"},
}


def modules() -> dict:
    """``{dotted name: (path, is_package)}`` of every module under effinrx/."""
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (p, is_pkg)
    return out


def _resolve(name: str, mods: dict) -> str | None:
    """The longest prefix of ``name`` that is a module of ours."""
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(mod: str, path: Path, is_pkg: bool, mods: dict) -> set:
    """Modules of effinrx that ``mod`` imports anywhere in its body."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(_resolve(a.name, mods) for a in node.names if a.name.split(".")[0] == "effinrx")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            if src.split(".")[0] != "effinrx":
                continue
            for a in node.names:
                sub = f"{src}.{a.name}"
                out.add(sub if sub in mods else _resolve(src, mods))
    out.discard(None)
    out.discard(mod)
    return out


def graph() -> dict:
    mods = modules()
    return {m: imports(m, p, pkg, mods) for m, (p, pkg) in mods.items()}


def cycles(edges: dict) -> list:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _layer(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_cycle_finder_finds_a_cycle():
    """The checker itself: a three-module ring and a self-contained pair are found, a chain is not."""
    found = cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}, "g": set()})
    assert sorted(found) == [["a", "b", "c"], ["d", "e"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_imports_resolve_to_modules():
    """``from effinrx.x import module`` and ``from effinrx.x.y import name`` both land on modules."""
    edges = graph()
    assert "effinrx.engines.base" in edges["effinrx.engines.ort"]
    assert "effinrx.link.counts" in edges["effinrx.link.cache"]
    assert all(t in edges for targets in edges.values() for t in targets)


def test_no_import_cycle():
    found = cycles(graph())
    assert not found, "import cycles among effinrx modules (function-local imports included): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p, _ in modules().values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by concern): {long}"


def test_no_arrow_from_a_lower_layer_to_an_upper_one():
    bad = sorted(f"{m} -> {t}" for m, targets in graph().items() for t in targets
                 if _layer(t) in FORBIDDEN.get(_layer(m), ()))
    assert not bad, "upward imports (see ARCHITECTURE.md, the flow): " + "; ".join(bad)
