"""Serial vs Ray on the paper's evaluation size (issue 15): one 132-PRB sweep of LS/lin+LMMSE and
NRX-RT (reference weights), run by the serial loop and by the Ray executor on a local Ray with
``WORKERS`` workers, on the same slots.

Measured and reported (pytest-benchmark ``extra_info``, printed): both wall times, their ratio, the
parallel efficiency (serial / (workers x Ray)), Ray's one-off cost (its wall time minus the
makespan of its tasks on ``WORKERS`` workers: worker start and each worker's graph build), and the
projected wall time and efficiency on 16 and 64 workers from the task graph
(:mod:`effinrx.link.scaling`, task durations from the serial run's per-batch seconds, chunk as Ray
chose it). Asserted: identical counts and per-TB outcomes (the executor's contract); timings are
reported, never gated (a shared runner's load moves them).
"""
import time

import pytest

from effinrx.link import sweep
from effinrx.link.executor import RayExecutor
from effinrx.link.montecarlo import simulate_many
from effinrx.link.scaling import makespan, projection, task_seconds

try:
    import ray
except ImportError:
    ray = None

pytestmark = [pytest.mark.nightly, pytest.mark.reference_weights,
              pytest.mark.skipif(ray is None, reason="Ray not installed: pip install -e '.[distributed]'")]

NAMES = ("ls-lmmse", "nrx-rt")
PRBS, EBNO, BATCH, BATCHES, WORKERS, CHUNK = 132, (2.0, 3.0), 16, 4, 2, 1


def test_serial_vs_ray_132prb(benchmark, seed):
    rxs = {n: sweep.receiver(n, PRBS) for n in NAMES}
    sc = sweep.scenario(PRBS)
    kw = dict(max_blocks=BATCHES * BATCH * sc.num_tx, target_errors=10**9, batch_size=BATCH, seed=seed,
              progress=False)

    def run():
        t0 = time.perf_counter()
        ser = simulate_many(rxs, sc, EBNO, **kw)
        t_ser = time.perf_counter() - t0
        started = ray.is_initialized()
        t0 = time.perf_counter()
        par = simulate_many(rxs, sc, EBNO, executor=RayExecutor(None, WORKERS, weights="reference", chunk=CHUNK),
                            **kw)
        t_ray = time.perf_counter() - t0
        if not started:
            ray.shutdown()
        return ser, par, t_ser, t_ray

    ser, par, t_ser, t_ray = benchmark.pedantic(run, rounds=1, iterations=1)
    assert par == ser
    assert all((a.tb == b.tb).all() for n in NAMES for a, b in zip(par[n], ser[n]))
    tasks = task_seconds(ser, CHUNK)
    overhead = max(0.0, t_ray - makespan(tasks, WORKERS))
    proj = {r["workers"]: r for r in projection(tasks, [WORKERS, 16, 64], startup_s=overhead)}
    info = {"receivers": list(NAMES), "prbs": PRBS, "ebno": list(EBNO), "tbs_per_point": kw["max_blocks"],
            "tasks": len(tasks), "serial_s": round(t_ser, 1), "ray_s": round(t_ray, 1),
            "ray_over_serial": round(t_ray / t_ser, 3), "efficiency": round(t_ser / (WORKERS * t_ray), 3),
            "ray_overhead_s": round(overhead, 1),
            **{f"projected_{w}w_s": round(proj[w]["wall_s"], 1) for w in (16, 64)},
            **{f"projected_{w}w_efficiency": round(proj[w]["efficiency"], 3) for w in (16, 64)}}
    benchmark.extra_info.update(info)
    print(f"serial vs Ray: {info}")
