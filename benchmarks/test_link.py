"""Link-simulation baselines (LS/lin+LMMSE, LMMSE+K-best, perfect-CSI K-best) on the evaluation
channel (TDL-B/TDL-C pair, 2 UEs, 4 BS antennas, MCS 14): TB error-count goldens (they are the
comparison baseline of Q1/Q4, stored under Q1 with keys ``baseline/...``), statistical ordering,
simulation throughput and the Monte-Carlo engine overhead vs a bare Sionna loop."""
import functools
import time

import pytest

from effinrx.link.config import Scenario
from effinrx.stats import clopper_pearson, one_sided_less

BATCH = 32
NAMES = ("perfect-kbest", "lmmse-kbest", "ls-lmmse")
SIZES = {"smoke": {"ebno": [3.0, 5.0], "max_blocks": 128},
         "nightly": {"ebno": [float(e) for e in range(-2, 8)], "max_blocks": 1024},
         "paper": {"ebno": [float(e) for e in range(-2, 8)], "max_blocks": 4096}}


def _tier(request):
    return request.config.getoption("--tier")


@functools.lru_cache(maxsize=None)
def _counts(tier: str, seed: int, name: str, prbs: int = 4):
    from effinrx.link.montecarlo import simulate
    from effinrx.receivers import classical

    sc = Scenario(num_prbs=prbs)
    sz = SIZES[tier]
    return simulate(classical.make(name, sc), sc, sz["ebno"], max_blocks=sz["max_blocks"],
                    target_errors=10**9, batch_size=BATCH, seed=seed, progress=True)


def _plot(res, tier, report_dir, report_artifact):
    from effinrx.link.plots import plot_tbler

    p = plot_tbler(res, report_dir / "plots" / f"link_baselines_{tier}.png",
                   f"Baselines, 4 PRBs, TDL-B/TDL-C, 2 UEs, MCS 14 ({tier})")
    report_artifact(p, f"TBLER of the classical baselines, 4 PRBs, {tier} tier", claim="Q1")


def _golden_and_order(request, claim_check, report_dir, report_artifact):
    tier, seed = _tier(request), request.config.getoption("--seed")
    res = {n: _counts(tier, seed, n) for n in NAMES}
    for n, pts in res.items():
        for p in pts:
            lo, hi = clopper_pearson(p.errors, p.blocks)
            claim_check(f"baseline/{n}/4prb/ebno={p.ebno_db:g}", {"errors": p.errors, "blocks": p.blocks},
                        kind="counts", claim="Q1",
                        note=f"{n} TBLER {p.tbler:.3f} [{lo:.3f}, {hi:.3f}] (baseline, not a claim)")
    _plot(res, tier, report_dir, report_artifact)
    pooled = {n: (sum(p.errors for p in pts), sum(p.blocks for p in pts)) for n, pts in res.items()}
    p_a = one_sided_less(*pooled["perfect-kbest"], *pooled["lmmse-kbest"])
    p_b = one_sided_less(*pooled["lmmse-kbest"], *pooled["ls-lmmse"])
    print(f"ordering (pooled): {pooled}; one-sided Fisher p perfect<lmmse {p_a:.3g}, lmmse<ls {p_b:.3g}")
    # LMMSE+K-best beats LS/lin+LMMSE strictly (one-sided Fisher at 5 %, pooled over Eb/N0) in every
    # tier. Perfect CSI vs LMMSE+K-best is < 1 dB apart, too close to resolve with the smoke tier's
    # 256 blocks, so smoke checks "<=" (no significant evidence of the reverse) and the larger
    # tiers check the strict order.
    assert p_b < 0.05, ("LMMSE+K-best not better than LS/lin+LMMSE", pooled, p_b)
    if tier == "smoke":
        p_rev = one_sided_less(*pooled["lmmse-kbest"], *pooled["perfect-kbest"])
        assert p_rev >= 0.05, ("perfect-CSI K-best significantly worse than LMMSE+K-best", pooled, p_rev)
    else:
        assert p_a < 0.05, ("perfect-CSI K-best not better than LMMSE+K-best", pooled, p_a)


@pytest.mark.claim("Q1")
def test_baseline_goldens_and_ordering(request, claim_check, report_dir, report_artifact):
    _golden_and_order(request, claim_check, report_dir, report_artifact)


@pytest.mark.nightly
@pytest.mark.claim("Q1")
def test_baseline_sweep_nightly(request, claim_check, report_dir, report_artifact):
    """-2..7 dB sweep, 1024 blocks per point; also logs the required Eb/N0 at 10 % TBLER."""
    from effinrx.link.metrics import required_ebno

    _golden_and_order(request, claim_check, report_dir, report_artifact)
    tier, seed = _tier(request), request.config.getoption("--seed")
    for n in NAMES:
        r = required_ebno(_counts(tier, seed, n), 0.1)
        print(f"{n}: required Eb/N0 @10% = {r.value:.2f} dB [{r.low:.2f}, {r.high:.2f}]")


@pytest.mark.parametrize("prbs", [4, pytest.param(132, marks=pytest.mark.nightly)])
@pytest.mark.parametrize("name", NAMES)
def test_throughput(benchmark, name, prbs):
    """Transport blocks per second (both UEs, incl. channel sampling and LDPC decoding)."""
    from effinrx.link.montecarlo import run_batch
    from effinrx.receivers import classical

    sc = Scenario(num_prbs=prbs)
    batch = BATCH if prbs <= 8 else 8
    rx = classical.make(name, sc)
    i = iter(range(10**6))
    benchmark.pedantic(lambda: run_batch(rx, sc, 4.0, batch, 0, next(i)), rounds=2, iterations=1,
                       warmup_rounds=1)
    tbs = batch * sc.num_tx / benchmark.stats.stats.median
    benchmark.extra_info["tb_per_s"] = tbs
    print(f"{name} {prbs} PRBs: {tbs:.1f} TB/s")
    assert tbs > 0


def test_engine_overhead(benchmark):
    """simulate() vs a bare loop (channel + compiled Sionna step) over the same 3 batches."""
    from effinrx.link import montecarlo as mc
    from effinrx.link.channels import sample_channel
    from effinrx.link.pusch import ebno_to_no
    from effinrx.receivers import classical
    from effinrx._tf import tf

    sc = Scenario()
    rx = classical.make("ls-lmmse", sc)
    step = mc._step(rx, sc, BATCH)
    no = tf().fill([BATCH], tf().cast(ebno_to_no(sc, 4.0), tf().float32))

    def bare():
        for _ in range(3):
            step(sample_channel(sc, BATCH), no)

    bare()
    t0 = time.perf_counter()
    bare()
    t_bare = time.perf_counter() - t0
    seeds = iter(range(1000, 10**6))
    benchmark.pedantic(lambda: mc.simulate(rx, sc, [4.0], max_blocks=3 * BATCH * sc.num_tx,
                                           target_errors=10**9, batch_size=BATCH, seed=next(seeds),
                                           progress=False), rounds=2, iterations=1, warmup_rounds=0)
    ratio = benchmark.stats.stats.median / t_bare
    benchmark.extra_info["overhead_ratio"] = ratio
    print(f"engine overhead: simulate {benchmark.stats.stats.median:.2f}s vs bare {t_bare:.2f}s = x{ratio:.2f}")
    assert ratio < 3.0, f"Monte-Carlo engine {ratio:.2f}x slower than a bare loop"
