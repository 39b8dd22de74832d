"""Link simulation with the real PUSCH graph at 4 PRBs (batch 32, shared compiled graphs):
noiseless runs are error-free for every baseline, same seed -> same counts, cache resume, input
checks, and one real regression check."""
import json

import numpy as np
import pytest

from effinrx.errors import ConfigError, ShapeError
from effinrx.link.config import Scenario
from effinrx.link.montecarlo import simulate
from effinrx.link.regression import check

BATCH = 32


def _rx(name):
    from effinrx.receivers import classical

    return classical.make(name, Scenario())


@pytest.mark.parametrize("name", ["ls-lmmse", "lmmse-kbest", "perfect-kbest"])
def test_noiseless_zero_errors(name):
    (p,) = simulate(_rx(name), Scenario(), [40.0], max_blocks=BATCH * 2, target_errors=10**6,
                    batch_size=BATCH, seed=3, progress=False)
    assert p.blocks == 2 * BATCH and p.errors == 0 and p.bit_errors == 0, p


def test_same_seed_same_counts_and_cache_resume(tmp_path):
    rx, sc = _rx("ls-lmmse"), Scenario()
    kw = dict(max_blocks=4 * BATCH, target_errors=10**6, batch_size=BATCH, seed=11, progress=False)
    a = simulate(rx, sc, [3.0], **kw)
    b = simulate(rx, sc, [3.0], **kw)
    assert a == b and a[0].errors > 0
    cache = tmp_path / "c.json"
    half = simulate(rx, sc, [3.0], **{**kw, "max_blocks": 2 * BATCH}, cache=cache)  # "interrupted"
    assert half[0].batches == 1
    kw_alias = {k: v for k, v in kw.items() if k != "target_errors"}
    full = simulate(rx, sc, [3.0], **kw_alias, target_block_errors=10**6, cache_path=cache)
    assert full == a  # resumed from batch 1 with the same per-batch seeds (brief's argument names)
    assert full[0].block_errors == a[0].errors and full[0].seconds > half[0].seconds > 0
    again = simulate(rx, sc, [3.0], **kw, cache=cache)  # all cached: nothing recomputed
    assert again == a
    # the per-TB outcomes (paired tests, paired regression checks) survive the resume, in slot order
    assert len(a[0].tb) == a[0].blocks and int(a[0].tb.sum()) == a[0].errors
    assert (full[0].tb == a[0].tb).all() and (again[0].tb == a[0].tb).all()
    assert json.loads(cache.read_text())


def test_shared_cache_gives_a_shorter_sweep_its_own_counts(tmp_path, monkeypatch):
    """One cache file shared by sweeps of different sizes (a nightly and a smoke tier, RT and Large
    tiers sharing LMMSE+K-best): a point that a longer sweep ran past this sweep's stop rules (more
    blocks, a higher error target) is read back cut to the batches this sweep runs, so the counts
    equal an uncached run; the cache keeps the longer point. A point of an older cache without
    per-batch counts that cannot be cut is recomputed (and left in the file), never returned too long."""
    from effinrx.link import cache as C
    from effinrx.link import montecarlo

    rx, sc = _rx("ls-lmmse"), Scenario()
    kw = dict(batch_size=BATCH, seed=11, progress=False)
    per = BATCH * sc.num_tx  # TBs a batch
    cache = tmp_path / "c.json"
    longer = simulate(rx, sc, [3.0], max_blocks=3 * per, target_errors=10**6, cache=cache, **kw)
    assert longer[0].batches == 3 and [len(longer[0].per_batch), longer[0].errors] == [3, sum(
        x[0] for x in longer[0].per_batch)]
    short_ref = simulate(rx, sc, [3.0], max_blocks=2 * per, target_errors=10**6, **kw)
    first_errors = short_ref[0].per_batch[0][0]
    assert first_errors > 0
    target_ref = simulate(rx, sc, [3.0], max_blocks=3 * per, target_errors=first_errors, **kw)
    assert target_ref[0].batches == 1

    with monkeypatch.context() as m:
        m.setattr(montecarlo, "run_batch", lambda *a, **k: pytest.fail("re-simulated a point the cache holds"))
        short = simulate(rx, sc, [3.0], max_blocks=2 * per, target_errors=10**6, cache=cache, **kw)
        by_target = simulate(rx, sc, [3.0], max_blocks=3 * per, target_errors=first_errors, cache=cache, **kw)
    assert short == short_ref and (short[0].tb == short_ref[0].tb).all()
    assert by_target == target_ref and (by_target[0].tb == target_ref[0].tb).all()
    (ent,) = json.loads(cache.read_text())["entries"].values()
    assert ent["points"]["3.0000"]["batches"] == 3  # the longer point is kept

    # an older cache: points without per-batch counts (and without per-TB outcomes)
    data = json.loads(cache.read_text())
    for e in data["entries"].values():
        for v in e["points"].values():
            v.pop("pb"), v.pop("tb")
        e["sha"] = C._sha(e["points"])
    cache.write_text(json.dumps(data))
    assert simulate(rx, sc, [3.0], max_blocks=2 * per, target_errors=10**6, cache=cache, **kw) == short_ref
    # ... and the older, longer point stays in the file for the sweep that wrote it
    assert C.Store(cache, montecarlo.as_source(sc), BATCH, 11).get(rx, 3.0, target_errors=10**6,
                                                                    max_blocks=3 * per) == longer[0]


@pytest.mark.parametrize("errs,target,max_batches", [([0, 3, 0, 5], 4, 4), ([2, 2, 2], 10, 2), ([5], 1, 3),
                                                     ([0, 0, 1], 1, 3), ([1, 1], 5, 9)])
def test_batches_to_stop_and_first_follow_the_serial_rule(errs, target, max_batches):
    """``PointCounts.batches_to_stop`` is the serial loop's stop (errors >= target or blocks >=
    max_blocks), from per-batch counts or per-TB outcomes; ``first(k)`` is the counts of k batches."""
    from effinrx.link.counts import BatchCounts, PointCounts

    per, tb_bits = 8, 10
    pc, serial = PointCounts(1.0), PointCounts(1.0)
    for e in errs:
        tb = np.arange(per) < e
        c = BatchCounts(e, per, 3 * e, per * tb_bits, e)
        pc.add(c, tb[:, None])
        if serial.errors < target and serial.blocks < max_batches * per:
            serial.add(c, tb[:, None])
    k = pc.batches_to_stop(target, max_batches * per)
    assert k == serial.batches
    cut = pc.first(k)
    assert cut == serial
    assert list(cut.tb) == list(serial.tb[: k * per]) and cut.per_batch == serial.per_batch[:k]
    no_pb = PointCounts(1.0, **{f: getattr(pc, f) for f in ("errors", "blocks", "bit_errors", "bits", "batches",
                                                              "crc_failures")}, tb=pc.tb)
    assert no_pb.batches_to_stop(target, max_batches * per) == k  # from the per-TB outcomes alone


def test_tbler_floor_stops_the_sweep():
    pts = simulate(_rx("ls-lmmse"), Scenario(), [40.0, 41.0], max_blocks=2 * BATCH, target_errors=10,
                   batch_size=BATCH, seed=3, progress=False, tbler_floor=0.01)
    assert pts[0].blocks == 2 * BATCH and pts[0].errors == 0
    assert pts[1].blocks == 0 and pts[1].ebno_db == 41.0  # skipped: 40 dB was already below the floor


def test_corrupt_cache_and_bad_args(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json"):
        simulate(_rx("ls-lmmse"), Scenario(), [3.0], cache=bad, progress=False)
    with pytest.raises(ConfigError, match="batch_size"):
        simulate(_rx("ls-lmmse"), Scenario(), [3.0], batch_size=0)
    with pytest.raises(ConfigError, match="unknown receiver"):
        _rx("zf")


def test_ls_nn_estimate_shapes():
    from effinrx._tf import tf
    from effinrx.receivers.classical import ls_nn_estimate

    t = tf()
    sc = Scenario()
    y = t.complex(t.random.normal([2, 1, 4, 14, 48]), t.random.normal([2, 1, 4, 14, 48]))
    h, ev = ls_nn_estimate(sc, y, t.constant([0.1, 0.1]))
    assert tuple(h.shape) == (2, 1, 4, 2, 1, 14, 48) and h.dtype == t.complex64
    assert np.all(np.isfinite(np.asarray(ev)))
    with pytest.raises(ShapeError, match="y must have shape"):
        ls_nn_estimate(sc, y[:, :, :2], t.constant([0.1, 0.1]))


def test_regression_check_real_run():
    """Real counts (128 blocks): the same receiver with another seed passes; the receiver at a 2 dB
    worse operating point fails. alpha = 0.01 here: 128 blocks are too few for 0.001 at 2 dB."""
    rx, sc = _rx("ls-lmmse"), Scenario()
    kw = dict(max_blocks=4 * BATCH, target_errors=10**6, batch_size=BATCH, progress=False)
    g3, g5 = simulate(rx, sc, [3.0, 5.0], seed=11, **kw)
    (n5,) = simulate(rx, sc, [5.0], seed=12, **kw)
    assert check(n5.errors, n5.blocks, g5.errors, g5.blocks, alpha=0.01).passed, (n5, g5)
    assert not check(g3.errors, g3.blocks, g5.errors, g5.blocks, alpha=0.01).passed, (g3, g5)


@pytest.mark.parametrize("channel", ["umi", "cdl-a", "cdl-e", "awgn", "rayleigh", "double-tdl"])
def test_channel_kinds_shape_and_power(channel):
    """Every channel kind gives [B, 1, Nr, U, ports, 14, fft] with unit average power per link."""
    from effinrx.link.channels import sample_channel

    sc = Scenario(channel=channel)
    h = np.asarray(sample_channel(sc, 8))
    assert h.shape == (8, 1, 4, 2, 2, 14, 48) and h.dtype == np.complex64
    assert np.all(np.isfinite(h))
    assert 0.5 < np.mean(np.abs(h) ** 2) < 2.0, np.mean(np.abs(h) ** 2)


def test_simo_cdl_scenario_runs_end_to_end():
    """The DeepRx-style scenario (1 UE x 2 BS antennas, no precoding, 64-QAM, CDL-C) builds and a
    noiseless batch through LS/lin + LMMSE is error-free."""
    from effinrx.receivers import classical

    sc = Scenario(num_tx=1, num_rx_ant=2, num_ant_ports=1, dmrs_ports=(0,), mcs_index=20,
                  channel="cdl-c", delay_spread_ns=(100.0,), doppler_hz=(100.0,))
    (p,) = simulate(classical.make("ls-lmmse", sc), sc, [40.0], max_blocks=8, target_errors=10**6,
                    batch_size=8, seed=1, progress=False)
    assert p.blocks == 8 and p.errors == 0, p


def test_paired_slots_independent_of_other_receivers_and_order():
    """A receiver's counts do not depend on the receivers beside it, their stop rules or the batch
    order: the slots of (seed, scenario, Eb/N0, batch, index) are fixed."""
    from effinrx.link.montecarlo import run_batch, simulate_many

    ls, pk = _rx("ls-lmmse"), _rx("perfect-kbest")
    sc = Scenario()
    kw = dict(max_blocks=3 * BATCH * 2, batch_size=BATCH, seed=5, progress=False)
    alone = simulate(ls, sc, [2.0], target_errors=10**6, **kw)
    # perfect-kbest stops after its first batch (target 1 error), ls runs on: ls must not change
    both = simulate_many({"pk": pk, "ls": ls}, sc, [2.0], target_errors=10**6, **kw)
    assert both["ls"] == alone
    few = simulate_many([pk, ls], sc, [2.0], target_errors=1, **kw)
    assert few["perfect-kbest"][0].batches == 1 and few["ls-lmmse"][0].batches == 1
    # batches run one by one in reverse order give the same per-batch counts (chunks, workers)
    rev = [run_batch({"ls": ls}, sc, 2.0, BATCH, 5, i).counts["ls"] for i in (2, 1, 0)]
    assert sum(c.errors for c in rev) == alone[0].errors
    assert sum(c.bit_errors for c in rev) == alone[0].bit_errors


def test_cache_rejects_edited_counts(tmp_path):
    rx, sc = _rx("ls-lmmse"), Scenario()
    cache = tmp_path / "c.json"
    simulate(rx, sc, [3.0], max_blocks=BATCH * 2, batch_size=BATCH, seed=1, progress=False, cache=cache)
    data = json.loads(cache.read_text())
    ent = next(iter(data["entries"].values()))
    next(iter(ent["points"].values()))["errors"] = 0
    cache.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="checksum"):
        simulate(rx, sc, [3.0], max_blocks=BATCH * 2, batch_size=BATCH, seed=1, progress=False, cache=cache)
    cache.write_text(json.dumps({"schema": 2, "entries": {"k": {"points": {"3.0000": {"errors": "x"}}}}}))
    with pytest.raises(ConfigError, match="malformed"):
        simulate(rx, sc, [3.0], max_blocks=BATCH * 2, batch_size=BATCH, seed=1, progress=False, cache=cache)


@pytest.mark.parametrize("bad", [[float("nan")], [float("inf")], [1e9], []])
def test_ebno_must_be_finite_and_sane(bad):
    with pytest.raises(ConfigError, match="Eb/N0"):
        simulate(_rx("ls-lmmse"), Scenario(), bad, progress=False)
