"""The DeepRx SIMO link glue (effinrx.link.simo), its classical baselines, training/checkpoint I/O
and the `effinrx deeprx` command (seed 001/002). Small sizes: a few slots, 1-3 training steps."""
import argparse
import json

import numpy as np
import pytest

from effinrx.errors import ConfigError, WeightsError
from effinrx.link import simo


@pytest.fixture(scope="module")
def sc():
    return simo.simo_scenario(1)


def test_scenario_is_64qam_rate_half_dmrs_on_symbols_2_and_11(sc):
    from effinrx.link.pusch import rate_info

    bps, r = rate_info(sc)
    assert bps == 6 and abs(r - 0.5) < 0.01
    mask = simo.data_mask(sc)
    assert mask.shape == (14, 12)
    # 0-based OFDM symbols 2 and 11 = the paper's 3rd and 12th; no data on DMRS symbols
    assert [i for i in range(14) if not mask[i].any()] == [2, 11]
    assert mask.sum() == 12 * 12


def test_channel_ranges_validate():
    with pytest.raises(ConfigError, match="CDL letters"):
        simo.ChannelRange(("F",))
    with pytest.raises(ConfigError, match="speed"):
        simo.ChannelRange(("A",), (10.0, 100.0), (5.0, 1.0))
    with pytest.raises(ConfigError, match="mobility"):
        simo.test_range("warp")
    assert simo.test_range("high").speed == simo.MOBILITY["high"]
    assert simo.test_range("low").models == ("D", "E")


def test_sampler_and_training_batches_shapes(sc):
    s = simo.CDLSampler(sc, simo.test_range("medium"))
    h = np.asarray(s(4, np.random.default_rng(0)))
    assert h.shape == (4, 1, 2, 1, 1, 14, 12) and h.dtype == np.complex64
    assert 0.3 < np.mean(np.abs(h) ** 2) < 3.0
    y, no, coded = next(simo.train_batches(sc, 3, seed=0))
    assert tuple(y.shape) == (3, 1, 2, 14, 12) and tuple(no.shape) == (3,)
    assert tuple(coded.shape) == (3, 1, 12 * 12 * 6)
    snr = -10 * np.log10(np.asarray(no))
    assert np.all((snr >= -2) & (snr <= 15))


def test_range_channel_is_a_seeded_channel_source(sc):
    import sionna.phy

    from effinrx.link.slots import as_source

    lo, hi = simo.RangeChannel(sc, simo.test_range("low")), simo.RangeChannel(sc, simo.test_range("high"))
    assert as_source(lo) is lo and lo.scenario is sc
    assert lo.key() != hi.key() and lo.key() == simo.RangeChannel(sc, simo.test_range("low")).key()
    draws = []
    for _ in range(2):
        sionna.phy.config.seed = 11  # the engine resets Sionna's generator before sample()
        draws.append(np.asarray(lo.sample(3, 11)))
    assert draws[0].shape == (3, 1, 2, 1, 1, 14, 12)
    np.testing.assert_array_equal(draws[0], draws[1])


def test_evaluate_same_slots_and_baselines(sc):
    from effinrx.receivers.deeprx_baselines import SimoLMMSE

    a, b, p = SimoLMMSE(sc, "ls-lin"), SimoLMMSE(sc, "ls-lin"), SimoLMMSE(sc, "perfect")
    res = simo.evaluate({"a": a, "b": b, "perfect": p}, sc, simo.test_range("low"), [40.0, -5.0],
                        batches=1, batch_size=4, seed=3)
    assert res["a"] == res["b"]  # identical receivers on identical slots count identically
    assert res["perfect"][40.0]["errors"] == 0 and res["perfect"][-5.0]["errors"] == 4
    assert res["a"][40.0]["blocks"] == 4
    with pytest.raises(ConfigError, match="batches"):
        simo.evaluate({"a": a}, sc, simo.test_range("low"), [0.0], batches=0, batch_size=4, seed=0)
    with pytest.raises(ConfigError, match="CSI kind"):
        SimoLMMSE(sc, "oracle")
    with pytest.raises(ConfigError, match="true channel"):
        p.llr(np.zeros((1, 1, 2, 14, 12), np.complex64), np.ones(1, np.float32))


def test_evaluate_resumes_from_the_sweep_cache_keyed_by_weights(sc, tmp_path, monkeypatch):
    from effinrx.quant.deeprx import ptq_copy
    from effinrx.receivers.deeprx import DeepRxReceiver
    from effinrx.receivers.deeprx_baselines import SimoLMMSE
    from effinrx.training.deeprx import new_receiver

    fp = new_receiver(1, 4, 1, name="dx")
    q = DeepRxReceiver(ptq_copy(fp.model, "int4-pc"), fp.data_mask, name="dx")  # same name, other weights
    assert fp.describe()["weights_sha1"] != q.describe()["weights_sha1"]
    rxs = {"dx": fp, "ls": SimoLMMSE(sc, "ls-nn")}
    args = dict(batches=2, batch_size=2, seed=5)
    plain = simo.evaluate(rxs, sc, simo.test_range("high"), [6.0], **args)
    cache = tmp_path / "c.json"
    monkeypatch.setenv("EFFINRX_SWEEP_CACHE", str(cache))
    assert simo.evaluate(rxs, sc, simo.test_range("high"), [6.0], **args) == plain
    keys = set(json.loads(cache.read_text())["entries"])
    assert len(keys) == 2
    # a rerun reads the finished batches: the receivers are never called
    from effinrx.link import montecarlo

    monkeypatch.setattr(montecarlo, "run_batch", lambda *a, **k: pytest.fail("re-simulated a cached point"))
    assert simo.evaluate(rxs, sc, simo.test_range("high"), [6.0], **args) == plain
    # other weights under the same name and another class's slots get entries of their own
    monkeypatch.undo()
    simo.evaluate({"dx": q}, sc, simo.test_range("high"), [6.0], cache=cache, **args)
    simo.evaluate({"ls": rxs["ls"]}, sc, simo.test_range("low"), [6.0], cache=cache, **args)
    assert len(set(json.loads(cache.read_text())["entries"]) - keys) == 2


def test_recipe_validation():
    from effinrx.training.deeprx import Recipe

    with pytest.raises(ConfigError, match="width"):
        Recipe(width=0)
    with pytest.raises(ConfigError, match="lr_end"):
        Recipe(lr=1e-4, lr_end=1e-3)


def test_train_save_load_roundtrip_and_qat_init(tmp_path):
    from effinrx.quant.deeprx import ptq_copy
    from effinrx.training.deeprx import Recipe, load_receiver, train_and_save

    path, meta = train_and_save(Recipe(width=4, depth=1, num_prbs=1, batch_size=2, steps=2, max_minutes=None),
                                tmp_path / "dx.npz", progress=False)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["steps"] == 2 and side["config"]["width"] == 4 and side["git_hash"]
    rx = load_receiver(path)
    x = np.random.default_rng(0).normal(size=(2, 14, 12, 5)).astype(np.float32)
    q = load_receiver(path, qat_bits=4)
    np.testing.assert_allclose(q.model(x).numpy(), ptq_copy(rx.model, "int4-pc")(x).numpy(), atol=1e-4)
    side["format"] = "something-else"
    path.with_suffix(".json").write_text(json.dumps(side))
    with pytest.raises(WeightsError, match="format"):
        load_receiver(path)
    with pytest.raises(WeightsError, match="does not exist"):
        load_receiver(tmp_path / "missing.npz")


def test_warm_start_partial_checkpoint_and_chain(tmp_path, monkeypatch):
    """A warm start records its start (file, digest, steps) and the chain's totals; a partial
    checkpoint is written while training and removed when the run completes; a start of another
    size is refused naming the file."""
    from effinrx.receivers import deeprx as rxmod
    from effinrx.training.deeprx import Recipe, train_and_save

    first, m1 = train_and_save(Recipe(width=4, depth=1, num_prbs=1, batch_size=2, steps=2, max_minutes=None),
                               tmp_path / "a.v1.npz", progress=False)  # dotted name: a.v1.npz, not a.npz
    assert first.name == "a.v1.npz" and (tmp_path / "a.v1.json").is_file()
    seen = []
    real_train = rxmod.train

    def spy(rx, batches, **kw):  # checkpoint at every step: the partial file must exist mid-run
        kw["checkpoint_every_s"] = 0.0
        ck = kw["checkpoint"]

        def ck2(losses):
            ck(losses)
            seen.append(json.loads((tmp_path / "b-partial.json").read_text())["steps"])
        kw["checkpoint"] = ck2
        return real_train(rx, batches, **kw)

    monkeypatch.setattr("effinrx.training.deeprx.train", spy)
    path, m2 = train_and_save(Recipe(width=4, depth=1, num_prbs=1, batch_size=2, steps=3, max_minutes=None,
                                     snr_db=(3.0, 16.0), init=str(first), seed=8), tmp_path / "b.npz",
                              progress=False)
    assert seen == [1, 2, 3] and not (tmp_path / "b-partial.npz").exists()
    assert m2["init"]["file"] == "a.v1.npz" and m2["init"]["steps"] == 2 and m2["steps_total"] == 5
    assert m2["recipe"]["snr_db"] == [3.0, 16.0] and m2["init"]["recipe"]["init"] is None
    with pytest.raises(WeightsError, match="a.v1.npz: weight shapes"):
        train_and_save(Recipe(width=8, depth=1, num_prbs=1, batch_size=2, steps=1, max_minutes=None,
                              init=str(first)), tmp_path / "c.npz", progress=False)
    with pytest.raises(ConfigError, match="snr_db"):
        Recipe(snr_db=(10.0, 2.0))


def test_deeprx_command_train_and_sizes(tmp_path, capsys):
    from effinrx.commands import deeprx as cmd

    def args(argv):
        p = argparse.ArgumentParser()
        cmd.add_arguments(p)
        return p.parse_args(argv)

    out = tmp_path / "c.npz"
    assert cmd.run(args(["train", "--width", "4", "--depth", "1", "--prbs", "1", "--steps", "1",
                         "--batch-size", "2", "--out", str(out)])) == 0
    assert out.is_file() and "1 steps" in capsys.readouterr().out
    assert cmd.run(args(["sizes", "--width", "8", "--depth", "1", "--prbs", "1"])) == 0
    assert "int4-pc" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--width"):
        cmd.run(args(["train", "--width", "0"]))
    with pytest.raises(ConfigError, match="--init: checkpoint"):
        cmd.run(args(["train", "--init", str(tmp_path / "none.npz"), "--out", str(tmp_path / "d.npz")]))
    with pytest.raises(ConfigError, match="--snr-db"):
        cmd.run(args(["train", "--snr-db", "3", "--out", str(tmp_path / "d.npz")]))
