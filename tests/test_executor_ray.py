"""The Ray executor gives exactly the serial engine's counts.

* Without Ray: the driver's merge (out-of-order chunks, speculative points, stop rules, resume
  cache, ``on_batch`` order) against the serial loop, with a fake ``run_batch`` (no TF).
* With Ray (``[distributed]`` extra; skipped with the reason otherwise), a local 2-CPU Ray: the
  issue's acceptance command, the stop rules on a real receiver, and a worker killed mid-sweep.
"""
from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from effinrx.link import executor as X
from effinrx.link import montecarlo as M
from effinrx.link.config import Scenario
from effinrx.link.counts import BatchCounts
from effinrx.link.slots import as_source

try:
    import ray
except ImportError:
    ray = None
_no_ray = pytest.mark.skipif(ray is None, reason="Ray not installed: pip install -e '.[distributed]'")


def needs_ray(f):
    """Skip without Ray; under xdist every Ray test runs on one worker (one local Ray)."""
    return _no_ray(pytest.mark.xdist_group("ray")(f))


class FakeRx:
    def __init__(self, name, p):
        self.name, self.p = name, p

    def describe(self):
        return {"name": self.name, "p": self.p}


def fake_run_batch(group, source, ebno_db, batch, seed, i, **kw):
    """Seeded counts per (receiver, point, batch) that fall with Eb/N0, like a waterfall."""
    counts, err = {}, {}
    for n, rx in group.items():
        r = random.Random(zlib.crc32(f"{n}/{ebno_db}/{batch}/{seed}/{i}".encode()))
        p = min(1.0, rx.p * 2.0 ** (-ebno_db))
        e = [[r.random() < p for _ in range(2)] for _ in range(batch)]
        k = sum(map(sum, e))
        counts[n] = BatchCounts(k, batch * 2, 3 * k, batch * 2 * 100, k)
        err[n] = e
    return M.Batch(float(ebno_db), i, counts, err)


def fake_sweep(rxs, points, *, chunk, workers, order_seed, cache=None, on_batch=None, split="point", **kw):
    """:class:`X.Sweep` driven in-process, finishing the in-flight tasks in a random order."""
    from effinrx.link.cache import Store

    src = as_source(Scenario())
    kw = {"max_blocks": 1000, "target_errors": 100, "batch_size": 4, "seed": 0, "tbler_floor": None, **kw}
    store = Store(cache, src, kw["batch_size"], kw["seed"])
    curves = {n: [store.get(rx, e, target_errors=kw["target_errors"], max_blocks=kw["max_blocks"]) for e in points]
              for n, rx in rxs.items()}
    max_batches = max(1, -(-kw["max_blocks"] // (kw["batch_size"] * 2)))
    sw = X.Sweep(rxs, points, store, curves, max_batches=max_batches, target_errors=kw["target_errors"],
                 max_blocks=kw["max_blocks"], tbler_floor=kw["tbler_floor"], chunk=chunk, split=split)
    job = X.Job(tuple((n, n) for n in rxs), "auto", src, kw["batch_size"], kw["seed"], kw["target_errors"])
    rng, tasks = random.Random(order_seed), {}

    def submit(t):
        tasks[len(tasks)] = t
        return len(tasks) - 1

    def wait(pending):
        h = rng.choice(sorted(pending))
        return h, X.run_chunk(job, tasks[h], receivers=rxs)

    X.drive(sw, submit, wait, workers, {n: X.describe_key(rx) for n, rx in rxs.items()})
    store.flush()
    return sw.result(on_batch)


def serial(rxs, points, **kw):
    kw = {"max_blocks": 1000, "target_errors": 100, "batch_size": 4, "seed": 0, **kw}
    return M.simulate_many(rxs, Scenario(), points, progress=False, **kw)


RXS = {"a": FakeRx("a", 0.9), "b": FakeRx("b", 0.3), "c": FakeRx("c", 0.05)}
POINTS = [-2.0, 0.0, 2.0, 4.0, 6.0]


@pytest.mark.parametrize("rules", [{}, {"target_errors": 7}, {"tbler_floor": 0.2}, {"max_blocks": 50},
                                   {"target_errors": 5, "tbler_floor": 0.15, "max_blocks": 200}])
@pytest.mark.parametrize("chunk,workers,order,split", [(1, 1, 0, "point"), (3, 2, 1, "point"), (4, 5, 2, "point"),
                                                       (50, 3, 3, "point"), (1, 2, 4, "receiver"),
                                                       (3, 5, 5, "receiver")])
def test_merge_gives_the_serial_counts(monkeypatch, rules, chunk, workers, order, split):
    monkeypatch.setattr(M, "run_batch", fake_run_batch)
    seen_s, seen_x = [], []

    def rec(out):
        return lambda b: out.append((b.ebno_db, b.index, sorted(b.counts.items()), sorted(b.tb_error.items())))

    ref = serial(RXS, POINTS, on_batch=rec(seen_s), **rules)
    got = fake_sweep(RXS, POINTS, chunk=chunk, workers=workers, order_seed=order, on_batch=rec(seen_x),
                     split=split, **rules)
    assert got == ref
    assert [[p.batches for p in got[n]] for n in RXS] == [[p.batches for p in ref[n]] for n in RXS]
    assert seen_x == seen_s  # on_batch: same batches, same order
    # the points' per-TB outcomes (paired tests, count goldens) are the serial ones too
    assert all((a.tb is None and b.tb is None) or (a.tb == b.tb).all()
               for n in RXS for a, b in zip(got[n], ref[n]))
    assert all(p.tb is not None and len(p.tb) == p.blocks for n in RXS for p in got[n] if p.blocks)


def test_receiver_split_plans_one_receiver_per_task():
    from effinrx.link.cache import Store

    src = as_source(Scenario())
    n_tasks = {}
    for split in X.SPLITS:
        store = Store(None, src, 4, 0)
        curves = {n: [store.get(rx, e) for e in POINTS] for n, rx in RXS.items()}
        sw = X.Sweep(RXS, POINTS, store, curves, max_batches=6, target_errors=10**9, max_blocks=48,
                     tbler_floor=None, chunk=2, split=split)
        tasks = list(sw.plan())
        n_tasks[split] = len(tasks)
        assert all(len(t.first) == (len(RXS) if split == "point" else 1) for t in tasks)
    assert n_tasks == {"point": 5 * 3, "receiver": 5 * 3 * 3}
    with pytest.raises(X.ConfigError, match="task split"):
        X.Sweep(RXS, POINTS, store, curves, max_batches=6, target_errors=1, max_blocks=48, tbler_floor=None,
                chunk=2, split="ebno")


@given(target=st.integers(1, 40), blocks=st.integers(1, 120), floor=st.sampled_from([None, 0.05, 0.3, 0.9]),
       chunk=st.integers(1, 9), workers=st.integers(1, 6), order=st.integers(0, 10**6),
       split=st.sampled_from(X.SPLITS))
def test_merge_property(target, blocks, floor, chunk, workers, order, split):
    """Any stop rules, chunking, task split, worker count and completion order: the serial counts."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(M, "run_batch", fake_run_batch)
        rules = {"target_errors": target, "max_blocks": blocks, "tbler_floor": floor}
        assert fake_sweep(RXS, POINTS, chunk=chunk, workers=workers, order_seed=order, split=split, **rules) == \
            serial(RXS, POINTS, **rules)


def test_resume_cache_merges_chunks(monkeypatch, tmp_path):
    """A cache left by an interrupted run is continued by the executor as by the serial loop: same
    counts, same cache file."""
    import shutil

    monkeypatch.setattr(M, "run_batch", fake_run_batch)
    rules = {"target_errors": 9, "tbler_floor": 0.2}
    serial(RXS, POINTS[:2], cache=tmp_path / "s.json", max_blocks=24)  # an interrupted run
    shutil.copy(tmp_path / "s.json", tmp_path / "x.json")
    ref = serial(RXS, POINTS, cache=tmp_path / "s.json", **rules)
    got = fake_sweep(RXS, POINTS, chunk=2, workers=3, order_seed=5, cache=tmp_path / "x.json", **rules)
    assert got == ref

    def counts(p):
        return {k: v["points"] for k, v in json.loads(p.read_text())["entries"].items()}

    assert counts(tmp_path / "x.json") == counts(tmp_path / "s.json")


def test_without_ray_one_line(monkeypatch, tmp_path, capsys):
    from effinrx.cli import main

    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    assert main(["simulate", "--ebno", "3", "--executor", "ray", "--plot", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "effinrx[distributed]" in err and "Traceback" not in err
    with pytest.raises(X.NotAvailableError, match=r"effinrx\[distributed\]"):
        X.RayExecutor()._init()
    assert main(["simulate", "--ebno", "3", "--workers", "2", "--plot", str(tmp_path / "x.png")]) == 1
    assert "need --executor ray" in capsys.readouterr().err
    assert main(["simulate", "--ebno", "3", "--split", "receiver", "--plot", str(tmp_path / "x.png")]) == 1
    assert "need --executor ray" in capsys.readouterr().err


def test_env_executor(monkeypatch):
    monkeypatch.delenv("EFFINRX_EXECUTOR", raising=False)
    assert X.from_env() is None
    monkeypatch.setenv("EFFINRX_EXECUTOR", "ray")
    monkeypatch.setenv("EFFINRX_RAY_ADDRESS", "10.0.0.1:6379")
    monkeypatch.setenv("EFFINRX_RAY_WORKERS", "3")
    ex = X.from_env(weights="reference")
    assert (ex.address, ex.workers, ex.weights, ex.split) == ("10.0.0.1:6379", 3, "reference", "point")
    monkeypatch.setenv("EFFINRX_RAY_SPLIT", "receiver")
    assert X.from_env().split == "receiver"
    monkeypatch.setenv("EFFINRX_RAY_SPLIT", "layer")
    with pytest.raises(X.ConfigError, match="point, receiver"):
        X.from_env()
    monkeypatch.delenv("EFFINRX_RAY_SPLIT")
    monkeypatch.setenv("EFFINRX_EXECUTOR", "dask")
    with pytest.raises(X.ConfigError, match="serial or ray"):
        X.from_env()


# --- a local 2-CPU Ray -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        yield ray
        return
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


ACCEPT = ["simulate", "--receiver", "ls-lmmse", "--prbs", "4", "--ebno", "2,4", "--seed", "3",
          "--batch", "8", "--max-blocks", "64"]


@needs_ray
def test_acceptance_cli_ray_equals_serial(local_ray, tmp_path):
    from effinrx.cli import main

    t0 = time.perf_counter()
    assert main([*ACCEPT, "--json", str(tmp_path / "s.json"), "--plot", str(tmp_path / "s.png")]) == 0
    t1 = time.perf_counter()
    assert main([*ACCEPT, "--executor", "ray", "--workers", "2", "--json", str(tmp_path / "r.json"),
                 "--plot", str(tmp_path / "r.png")]) == 0
    t2 = time.perf_counter()
    assert main([*ACCEPT, "--executor", "ray", "--workers", "2", "--split", "receiver", "--json",
                 str(tmp_path / "q.json"), "--plot", str(tmp_path / "q.png")]) == 0
    s, r, q = (json.loads((tmp_path / f).read_text())["points"] for f in ("s.json", "r.json", "q.json"))
    assert r == s and q == s and all(p["blocks"] == 64 for p in s)
    print(f"serial {t1 - t0:.1f} s, ray (2 workers) {t2 - t1:.1f} s")


def _ls():
    from effinrx.receivers.registry import make

    return {"ls-lmmse": make("ls-lmmse", Scenario())}


@needs_ray
@pytest.mark.parametrize("rules", [{"target_errors": 6}, {"tbler_floor": 0.3, "target_errors": 1000}])
def test_stop_rules_identical(local_ray, rules):
    kw = {"batch_size": 8, "max_blocks": 96, "seed": 3, "progress": False, **rules}
    pts = [0.0, 3.0, 6.0, 9.0]
    ref = M.simulate_many(_ls(), Scenario(), pts, **kw)
    got = M.simulate_many(_ls(), Scenario(), pts, executor=X.RayExecutor(workers=2, chunk=2), **kw)
    assert got == ref
    b = [p.batches for p in ref["ls-lmmse"]]
    # the rule bit: fewer batches than max_blocks allows (target_errors), or skipped points (floor)
    assert (min(b) < 6) if "tbler_floor" not in rules else (0 in b), b


def _ours(pid: int) -> bool:
    """Whether ``pid`` descends from this process (our local Ray's raylet spawns its workers)."""
    me = os.getpid()
    for _ in range(8):
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == me:
            return True
    return False


def _kill_first_chunk(stop: threading.Event, killed: list):
    """SIGKILL the first of our Ray workers seen running a chunk (process title ray::run_chunk)."""
    while not stop.is_set() and not killed:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if cmd.startswith(b"ray::run_chunk") and _ours(int(pid)):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.05)


@needs_ray
def test_worker_killed_mid_sweep_same_counts(local_ray, tmp_path):
    kw = {"batch_size": 8, "max_blocks": 128, "seed": 5, "progress": False, "target_errors": 12}
    pts = [1.0, 4.0]
    ref = M.simulate_many(_ls(), Scenario(), pts, cache=tmp_path / "s.json", **kw)
    stop, killed = threading.Event(), []
    th = threading.Thread(target=_kill_first_chunk, args=(stop, killed), daemon=True)
    th.start()
    try:
        got = M.simulate_many(_ls(), Scenario(), pts, cache=tmp_path / "r.json",
                              executor=X.RayExecutor(workers=2, chunk=4), **kw)
    finally:
        stop.set()
        th.join()
    assert killed, "no worker was seen running a chunk"
    assert got == ref

    def counts(p):
        return {k: v["points"] for k, v in json.loads(p.read_text())["entries"].items()}

    assert counts(tmp_path / "r.json") == counts(tmp_path / "s.json")  # the cache got merged chunks


@needs_ray
def test_benchmark_sweeps_honour_env(local_ray, monkeypatch):
    """``EFFINRX_EXECUTOR=ray``: sweep counts and per-TB outcomes (paired tests) as serial."""
    import numpy as np

    from effinrx.link import sweep

    args = (("ls-lmmse",), 4, (2.0, 5.0), 8, 48, 7, "reference", "double-tdl", 10)
    monkeypatch.delenv("EFFINRX_EXECUTOR", raising=False)
    ref_c, ref_o = sweep._run.__wrapped__(*args)
    monkeypatch.setenv("EFFINRX_EXECUTOR", "ray")
    monkeypatch.setenv("EFFINRX_RAY_WORKERS", "2")
    got_c, got_o = sweep._run.__wrapped__(*args)
    assert got_c == ref_c
    assert {e: v.tolist() for e, v in got_o["ls-lmmse"].items()} == \
        {e: v.tolist() for e, v in ref_o["ls-lmmse"].items()}
    assert all(isinstance(v, np.ndarray) for v in got_o["ls-lmmse"].values())
