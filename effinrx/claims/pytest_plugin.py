"""pytest plugin: tiers, seeds, strict markers, golden checks (``claim_check``) and the report.

Loaded by the root ``conftest.py`` and by ``effinrx report`` (same code path). Options:
``--tier {smoke,nightly,paper}`` (tests without a tier marker are smoke; higher tiers are
deselected), ``--seed N``, ``--force-regen`` / ``--regen-all`` (goldens), ``--report-dir`` and
``--golden-dir``.

**pytest-xdist** (``-n auto``): the controller writes the one tolerance report; workers send it
their check rows, artifacts and outcomes (``workeroutput``) and share its run name and report
folder (``workerinput``). ``-n`` implies ``--dist loadgroup`` here: tests that share a claim (hence
golden and ``.obtained`` files) run on one worker, so regen modes stay safe. Timing tests (the
``benchmark`` fixture or a latency-kind claim; marker ``timing``) are skipped on workers with the
reason: run them in a serial pass, ``pytest -m timing -p no:xdist`` (README).
"""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import pytest

from effinrx import device as _device
from effinrx.claims.check import NOT_COMPARABLE, Verdict, check
from effinrx.claims.golden import GoldenStore, provenance
from effinrx.claims.registry import TIERS, load_claims, repo_root
from effinrx.errors import EffinrxError

MARKERS = {
    "smoke": "tier: every CI run, CPU, <= 15 min in all",
    "nightly": "tier: long CPU/GPU runs (also selected by --tier paper)",
    "paper": "tier: GPU runner, 132 PRBs, TensorRT",
    "gpu": "needs a CUDA GPU (skips with the reason when absent)",
    "tensorrt": "needs TensorRT (skips with the import error when absent)",
    "claim(id)": "the claim ID(s) of golden/claims.toml this test checks",
    "timing": "times something (benchmark fixture or a latency claim; set by the plugin): serial only",
    "xdist_group(name)": "pytest-xdist: tests of one group run on one worker (registered here too for runs without xdist)",
}
XDIST_TIMING = ("timing test: skipped under pytest-xdist (parallel load distorts timings and pytest-benchmark "
                "disables itself); run serially: pytest -m timing -p no:xdist")
_RANK = {t: i for i, t in enumerate(TIERS)}
_KEY = pytest.StashKey[dict]()
_NOT_JUDGED = pytest.StashKey[list]()  # per test: "no golden for this device" / "not comparable" messages


def pytest_addoption(parser):
    g = parser.getgroup("effinrx")
    g.addoption("--tier", choices=TIERS, default=os.environ.get("EFFINRX_TIER", "smoke"),
                help="smoke (default): CI; nightly: + long runs; paper: + GPU/132 PRBs/TensorRT")
    g.addoption("--seed", type=int, default=int(os.environ.get("EFFINRX_SEED", "42")),
                help="seed for numpy/TF/Sionna, set before every test (default 42)")
    g.addoption("--force-regen", action="store_true", help="rewrite goldens from this run and FAIL")
    g.addoption("--regen-all", action="store_true", help="rewrite goldens from this run and pass")
    g.addoption("--report-dir", default=None, help="folder for tolerance.md/json and report.md "
                "(default reports/<timestamp>-<tier>)")
    g.addoption("--golden-dir", default=None, help="golden folder (default <repo>/golden)")


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    tier = config.getoption("--tier")
    mode = "force-regen" if config.getoption("--force-regen") else (
        "regen-all" if config.getoption("--regen-all") else "check")
    golden_dir = Path(config.getoption("--golden-dir") or repo_root() / "golden")
    run = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{tier}"
    report_dir = Path(config.getoption("--report-dir") or Path.cwd() / "reports" / run)
    winput = getattr(config, "workerinput", None)
    if winput is not None and "effinrx_run" in winput:  # an xdist worker: the controller's run
        run, report_dir = winput["effinrx_run"], Path(winput["effinrx_report_dir"])
    elif _xdist_controller(config):
        if config.option.dist == "load":
            config.option.dist = "loadgroup"  # one worker per claim group (module docstring)
        if mode != "check" and config.option.dist != "loadgroup":
            raise pytest.UsageError(f"--{mode} under xdist needs --dist loadgroup (one writer per golden file)")
    config.stash[_KEY] = {
        "tier": tier, "mode": mode, "run": run, "report_dir": report_dir,
        "store": GoldenStore(golden_dir, tier, mode), "rows": [], "artifacts": [], "collected": {},
        "ran_tests": set(),  # node ids whose call passed (left-over golden entries, see GoldenStore.unchecked)
    }


def _xdist_controller(config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and getattr(config.option, "dist", "no") != "no"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist controller: every worker uses this run's name and report folder."""
    st = node.config.stash[_KEY]
    node.workerinput["effinrx_run"] = st["run"]
    node.workerinput["effinrx_report_dir"] = str(st["report_dir"])


def _jsonable(x):
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:  # pragma: no cover
        pass
    return sorted(x) if isinstance(x, (set, frozenset)) else str(x)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist controller: merge a worker's rows, artifacts and outcomes into this session's."""
    import json

    raw = getattr(node, "workeroutput", {}).get("effinrx")
    if not raw:
        return
    w, st = json.loads(raw), node.config.stash[_KEY]
    st["rows"].extend(w["rows"])
    st["artifacts"].extend(w["artifacts"])
    st["ran_tests"].update(w["ran_tests"])
    st.setdefault("higher_tier", set()).update(w["higher_tier"])
    for cid, info in w["collected"].items():
        mine = st["collected"].setdefault(cid, {"tiers": set(), "nodeids": []})
        mine["tiers"].update(info["tiers"])
        mine["nodeids"] += [n for n in info["nodeids"] if n not in mine["nodeids"]]
        for k in ("ran", "skipped", "not_implemented"):
            if k in info and not mine.get(k):
                mine[k] = info[k]
        if info.get("deselected"):
            mine["deselected"] = sorted(set(mine.get("deselected", [])) | set(info["deselected"]))


def _timing(item, claims) -> bool:
    return "benchmark" in getattr(item, "fixturenames", ()) or any(
        c in claims and claims[c].kind == "latency" for c in _claim_ids(item))


def _claim_groups(items) -> dict:
    """Claim ID -> group name: claims that share a test are one group (union-find)."""
    parent: dict = {}

    def find(c):
        while parent.setdefault(c, c) != c:
            c = parent[c]
        return c

    for item in items:
        ids = _claim_ids(item)
        for c in ids[:1]:
            find(c)
        for c in ids[1:]:
            a, b = find(ids[0]), find(c)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {c: find(c) for c in parent}


def _item_tier(item) -> str:
    tiers = [t for t in TIERS if item.get_closest_marker(t)]
    return max(tiers, key=_RANK.__getitem__) if tiers else "smoke"


def _claim_ids(item) -> list[str]:
    return [str(a) for m in item.iter_markers("claim") for a in m.args]


@pytest.hookimpl(tryfirst=True)  # before -m: the timing marker is set here
def pytest_collection_modifyitems(config, items):
    st = config.stash[_KEY]
    claims = load_claims()
    worker = hasattr(config, "workerinput")
    groups = _claim_groups(items) if worker else {}
    keep, drop = [], []
    for item in items:
        tier = _item_tier(item)
        if _timing(item, claims):
            item.add_marker(pytest.mark.timing)
            if worker:
                item.add_marker(pytest.mark.skip(reason=XDIST_TIMING))
        if worker and _claim_ids(item):
            item.add_marker(pytest.mark.xdist_group(name=f"claim-{groups[_claim_ids(item)[0]]}"))
        for cid in _claim_ids(item):
            if cid not in claims:
                raise pytest.UsageError(f"{item.nodeid}: claim({cid!r}) is not in golden/claims.toml")
            info = st["collected"].setdefault(cid, {"tiers": set(), "nodeids": []})
            info["tiers"].add(tier)
            info["nodeids"].append(item.nodeid)
            xf = item.get_closest_marker("xfail")
            if xf and "not implemented yet" in str(xf.kwargs.get("reason", "")):
                info["not_implemented"] = xf.kwargs["reason"]
        (keep if _RANK[tier] <= _RANK[st["tier"]] else drop).append(item)
    st["higher_tier"] = {i.nodeid for i in drop}
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_deselected(items):
    """Remember, per claim, which of its tests this run left out (the tier filter above, ``-k``,
    ``-m``, ``--deselect``): the report then says "not selected in this run" for a claim none of
    whose tests was selected, instead of "tests ran but recorded no claim_check"."""
    st = items[0].config.stash.get(_KEY, None) if items else None
    if st is None:
        return
    for item in items:
        for cid in _claim_ids(item):
            info = st["collected"].setdefault(cid, {"tiers": set(), "nodeids": []})
            info.setdefault("deselected", []).append(item.nodeid)


@pytest.fixture(autouse=True)
def _effinrx_seed(request):
    from effinrx._tf import set_seeds

    set_seeds(request.config.getoption("--seed"))


@pytest.fixture
def seed(request) -> int:
    return request.config.getoption("--seed")


@pytest.fixture
def tier(request) -> str:
    return request.config.getoption("--tier")


@pytest.fixture(scope="session")
def report_dir(request) -> Path:
    d = request.config.stash[_KEY]["report_dir"]
    (d / "plots").mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def golden_background(request):
    """``golden_background(claim, names, prefix="") -> (curves, tier)``: the highest tier's golden
    TBLER curves above this run's tier (:func:`effinrx.claims.golden.background_curves`), for figures
    that draw them under this run's points."""
    from effinrx.claims.golden import background_curves

    store = request.config.stash[_KEY]["store"]
    return lambda claim, names, prefix="": background_curves(store, claim, names, prefix)


@pytest.fixture
def report_artifact(request):
    """``report_artifact(path, caption, claim=None, table=None)``: attach a PNG to the claims report,
    optionally with a markdown ``table`` printed under it."""
    st = request.config.stash[_KEY]
    default = (_claim_ids(request.node) or [None])[0]

    def add(path, caption: str, claim: str | None = None, table: str | None = None) -> Path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"report artifact {p} does not exist")
        st["artifacts"].append({"path": str(p), "caption": caption, "claim": claim or default,
                                "table": table})
        return p

    return add


def _test_config(item) -> dict:
    """The part of a check's configuration the plugin knows: the test's parameter id (stable
    across runs, unlike the repr of a parameter object)."""
    cs = getattr(item, "callspec", None)
    return {"params": cs.id if cs is not None else ""}


@pytest.fixture
def claim_check(request):
    """``claim_check(key, measured, *, kind, tol=None, reproduced=None, paper=None, note="",
    claim=None, not_measurable=None, meta=None, config=None) -> Verdict``; fails the test on a
    golden regression. ``config``: what the measurement depends on besides the seed (PRBs, Eb/N0,
    slots, batch...); it is hashed into the entry's ``config_hash`` and a golden taken with another
    configuration is "not comparable". ``claim_check.set_config(**cfg)`` sets it for every later
    check of the test. Always part of it: the test's parameter id and a ``meta["recipe"]`` dict.
    Never put run-specific values (temporary paths, timings) in it: the hash would differ on every
    run and no check would compare."""
    st = request.config.stash[_KEY]
    ids = _claim_ids(request.node)
    regenerated: list[str] = []
    test_config: dict = {}

    def do(key: str, measured, *, kind: str, tol: float | None = None, reproduced: bool | None = None,
           paper: str | None = None, note: str = "", claim: str | None = None,
           not_measurable: str | None = None, meta: dict | None = None,
           config: dict | None = None) -> Verdict:
        cid = claim or (ids[0] if len(ids) == 1 else None)
        if cid is None:
            raise pytest.UsageError(f"{request.node.nodeid}: pass claim= (markers: {ids})")
        c = load_claims()[cid]
        dev = _device.fingerprint() if kind == "latency" else "any"
        seed = request.config.getoption("--seed")
        # a recipe the benchmark records in meta (pruning, training) is configuration too
        recipe = (meta or {}).get("recipe")
        cfg = {**_test_config(request.node), **({"recipe": recipe} if isinstance(recipe, dict) else {}),
               **test_config, **(config or {})}
        full_meta = {**provenance(seed=seed, test=request.node.nodeid, tier=st["tier"], config=cfg),
                     "test": request.node.nodeid, "device": _device.fingerprint(), **(meta or {})}
        try:
            v = check(st["store"], claim=cid, key=key, measured=measured, kind=kind,
                      tol=c.tol if tol is None else tol, metric=c.metric, paper=paper or c.paper,
                      reproduced=reproduced, device=dev, meta=full_meta, note=note,
                      not_measurable=not_measurable)
        except EffinrxError as e:
            st["rows"].append({"claim": cid, "key": key, "metric": c.metric, "paper": paper or c.paper,
                               "golden": None, "measured": measured, "kind": kind, "tolerance": kind,
                               "margin": None, "golden_status": "error", "reproduced": reproduced,
                               "verdict": "error", "message": str(e), "note": note})
            pytest.fail(str(e), pytrace=False)
        st["rows"].append(v.as_dict())
        if (v.golden_status == "no golden" and dev != "any") or v.golden_status == NOT_COMPARABLE:
            # latency on a new device, or a golden of another seed/configuration: visible, neither
            # pass nor failure. The xfail is set after the test body (pytest_runtest_makereport),
            # so its later checks (e.g. L8 after K3) still record
            request.node.stash.setdefault(_NOT_JUDGED, []).append(v.message)
            return v
        if v.golden_status == "regenerated":
            regenerated.append(v.message)  # fail after the test so every key of it is rewritten
            return v
        if v.failed:
            pytest.fail(v.message, pytrace=False)
        return v

    do.set_config = lambda **cfg: test_config.update(cfg)
    yield do
    if regenerated:
        pytest.fail("--force-regen rewrote goldens (rerun without it to check):\n" + "\n".join(regenerated),
                    pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    st = item.config.stash[_KEY]
    not_judged = item.stash.get(_NOT_JUDGED, None)
    if rep.when == "call" and rep.passed and not_judged:
        rep.outcome, rep.wasxfail = "skipped", "; ".join(not_judged)
    if rep.when == "call" and rep.passed:
        st["ran_tests"].add(item.nodeid)
    for cid in _claim_ids(item):
        info = st["collected"].setdefault(cid, {"tiers": set(), "nodeids": []})
        if rep.when == "call" and rep.passed:
            info["ran"] = True
        if rep.skipped and not hasattr(rep, "wasxfail"):
            reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
            info.setdefault("skipped", reason.replace("Skipped: ", ""))


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["effinrx_device"] = _device.info()


def _golden_device(row: dict) -> str:
    """The device folder of a check row (``golden_file`` is ``.../<tier>/<device>/<claim>.json``)."""
    gf = row.get("golden_file")
    return Path(gf).parent.name if gf else "any"


def pytest_sessionfinish(session, exitstatus):
    from effinrx.claims.report import write_reports

    st = session.config.stash.get(_KEY, None)
    if st is None or session.config.option.collectonly:
        return
    if hasattr(session.config, "workeroutput"):  # an xdist worker: the controller writes the report
        import json

        session.config.workeroutput["effinrx"] = json.dumps({
            "rows": st["rows"], "artifacts": st["artifacts"], "ran_tests": st["ran_tests"],
            "higher_tier": st.get("higher_tier", set()), "collected": st["collected"]}, default=_jsonable)
        return
    collected = {k: {**v, "tiers": sorted(v["tiers"])} for k, v in st["collected"].items()}
    seed = session.config.getoption("--seed")
    prov = provenance(seed=seed, test="<tier>", tier=st["tier"])
    meta = {"tier": st["tier"], "run": st["run"], "device": _device.fingerprint(),
            "seed": seed, "golden_mode": st["mode"], "exitstatus": int(exitstatus),
            "git_commit": prov["git_commit"], "git_dirty": prov["git_dirty"], "versions": prov["versions"]}
    checked = {(r["claim"], _golden_device(r), r["key"]) for r in st["rows"]}
    try:
        meta["unchecked_goldens"] = st["store"].unchecked(checked, st["ran_tests"], st.get("higher_tier", set()),
                                                          devices=("any", _device.fingerprint()))
    except EffinrxError as e:  # a corrupt golden already failed its own test; say so here too
        meta["unchecked_goldens"] = [{"file": "?", "key": "?", "test": "?", "why": str(e)}]
    paths = write_reports(st["report_dir"], load_claims(), st["rows"], collected, meta, st["artifacts"])
    st["paths"] = paths


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    st = config.stash.get(_KEY, None)
    if st and st.get("paths"):
        terminalreporter.write_line(f"effinrx tolerance report: {st['paths']['tolerance_md']}")
