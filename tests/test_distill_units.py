"""Distillation loss (effinrx.training.distill): KL/MSE terms, alpha=1 is plain BCE, no gradient into the
teacher (loss level and through the train.py hook with a real NRX teacher), config validation."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from effinrx.training.distill import (DistillConfig, bce, bernoulli_kl, distance, distill_loss, llr_mse,
                             make_extra_loss, masked_mean)
from effinrx.errors import ConfigError


def _data(seed=0, b=3, u=2, n=50, scale=4.0):
    rng = np.random.default_rng(seed)
    s = (rng.normal(size=(b, u, n)) * scale).astype(np.float32)
    t = (rng.normal(size=(b, u, n)) * scale).astype(np.float32)
    bits = rng.integers(0, 2, size=(b, u, n)).astype(np.float32)
    act = np.ones((b, u), np.float32)
    act[0, 1] = 0.0  # one inactive UE: must not count
    return s, t, bits, act


def _np_bce(s, bits, act):
    per = np.maximum(s, 0) - s * bits + np.log1p(np.exp(-np.abs(s)))
    return float((per.mean(-1) * act).sum() / act.sum())


def _np_kl(t, s, temp):
    p, q = 1 / (1 + np.exp(-t.astype(np.float64) / temp)), 1 / (1 + np.exp(-s.astype(np.float64) / temp))
    return temp ** 2 * (p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_bad_alpha_raises(bad):
    with pytest.raises(ConfigError, match="alpha"):
        DistillConfig(alpha=bad).validate()


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan"), "2", None])
def test_bad_temperature_raises(bad):
    with pytest.raises(ConfigError, match="temperature"):
        DistillConfig(temperature=bad).validate()
    with pytest.raises(ConfigError, match="temperature"):
        bernoulli_kl(np.zeros(3, np.float32), np.zeros(3, np.float32), bad)


def test_bad_distance_and_clip_raise():
    with pytest.raises(ConfigError, match="distance"):
        DistillConfig(distance="l1").validate()
    with pytest.raises(ConfigError, match="llr_clip"):
        DistillConfig(distance="mse", llr_clip=0.0).validate()
    s, t, bits, act = _data()
    with pytest.raises(ConfigError, match="alpha"):
        distill_loss(s, t, bits, act, DistillConfig(alpha=2.0))


def test_kl_nonnegative_zero_for_identical_and_matches_numpy():
    s, t, _, _ = _data(1, scale=8.0)
    for temp in (1.0, 2.0, 4.0):
        kl = np.asarray(bernoulli_kl(t, s, temp))
        assert kl.shape == s.shape and np.all(kl >= 0.0)
        np.testing.assert_allclose(kl, _np_kl(t, s, temp), rtol=1e-4, atol=1e-6)
        big = np.array([-60.0, -20.0, 0.0, 20.0, 60.0], np.float32)  # saturated sigmoids: no NaN
        assert np.all(np.asarray(bernoulli_kl(big, big, temp)) == 0.0)
        assert np.all(np.asarray(bernoulli_kl(s, s, temp)) == 0.0)
        assert np.all(np.isfinite(np.asarray(bernoulli_kl(big, -big, temp))))


def test_mse_option_clips_teacher():
    t = np.array([[[-50.0, 0.0, 3.0, 50.0]]], np.float32)
    s = np.array([[[-20.0, 1.0, 3.0, 10.0]]], np.float32)
    out = np.asarray(llr_mse(t, s, temperature=2.0, llr_clip=20.0))
    np.testing.assert_allclose(out, [[[0.0, 0.25, 0.0, 25.0]]])
    assert np.all(np.asarray(llr_mse(s, s)) == 0.0)


def test_alpha_one_is_plain_bce_and_masked_mean_ignores_inactive():
    s, t, bits, act = _data(2)
    want = _np_bce(s, bits, act)
    for dist in ("kl", "mse"):
        got = float(distill_loss(s, t, bits, act, DistillConfig(alpha=1.0, distance=dist)))
        assert got == pytest.approx(want, rel=1e-5)
    s2 = s.copy()
    s2[0, 1] = 1e4  # the inactive UE's LLRs change nothing
    assert float(bce(s2, bits, act)) == pytest.approx(float(bce(s, bits, act)), rel=1e-6)
    assert float(masked_mean(np.ones_like(s), act)) == pytest.approx(1.0)


def test_mixture_and_zero_distance_for_identical_logits():
    s, t, bits, act = _data(3)
    cfg = DistillConfig(alpha=0.3, temperature=2.0)
    d = float(distance(t, s, act, cfg))
    np.testing.assert_allclose(d, float((_np_kl(t, s, 2.0).mean(-1) * act).sum() / act.sum()), rtol=1e-4)
    got = float(distill_loss(s, t, bits, act, cfg))
    assert got == pytest.approx(0.3 * _np_bce(s, bits, act) + 0.7 * d, rel=1e-5)
    assert float(distance(s, s, act, cfg)) == 0.0
    # alpha=0: only the teacher term; identical logits give exactly 0
    assert float(distill_loss(s, s, bits, act, DistillConfig(alpha=0.0))) == 0.0


@pytest.mark.parametrize("dist", ["kl", "mse"])
def test_no_gradient_into_teacher(dist):
    from effinrx._tf import tf

    t_ = tf()
    s, t, bits, act = _data(4)
    sv, tv = t_.Variable(s), t_.Variable(t)
    with t_.GradientTape(persistent=True) as tape:
        loss = distill_loss(sv, tv, bits, act, DistillConfig(alpha=0.5, distance=dist))
    g_t = tape.gradient(loss, tv)
    g_s = tape.gradient(loss, sv)
    assert g_t is None or float(t_.reduce_max(t_.abs(g_t))) == 0.0
    assert float(t_.reduce_max(t_.abs(g_s))) > 0.0


def test_train_hook_frozen_teacher_and_total_loss():
    """The train.py hook with a real (random-init) NRX teacher: teacher variables get no gradient
    and are not trainable; hook + BCE = alpha * BCE + (1 - alpha) * D."""
    from effinrx._tf import tf
    from effinrx.training.distill import load_teacher
    from effinrx.receivers.nrx import NRXReceiver

    t_ = tf()
    t_.random.set_seed(0)
    cfg = DistillConfig(alpha=0.25, teacher="nrx-rt", teacher_weights=None)
    teacher = load_teacher(cfg)
    student = NRXReceiver("nrx-rt", weights=None)
    assert teacher.net.trainable_variables == []
    rng = np.random.default_rng(0)
    y = (rng.normal(size=(2, 1, 4, 14, 48)) + 1j * rng.normal(size=(2, 1, 4, 14, 48))).astype(np.complex64)
    act = np.ones((2, 2), np.float32)
    n = int(student.data_idx.shape[0]) * 4
    coded = rng.integers(0, 2, size=(2, 2, n)).astype(np.float32)
    slot = SimpleNamespace(y=t_.constant(y), active=t_.constant(act), coded=t_.constant(coded))
    hook = make_extra_loss(teacher, cfg)
    with t_.GradientTape(persistent=True) as tape:
        tape.watch(teacher.net.variables)
        grid, h_ref = student.forward(slot.y, slot.active, training=True)
        llr = student.grid_to_coded(grid)
        extra = hook(student.net, slot, llr, h_ref)
    gt = tape.gradient(extra, teacher.net.variables)
    assert all(g is None or float(t_.reduce_max(t_.abs(g))) == 0.0 for g in gt)
    gs = tape.gradient(extra, student.net.trainable_variables)
    assert any(g is not None and float(t_.reduce_max(t_.abs(g))) > 0.0 for g in gs)
    t_llr = teacher.grid_to_coded(teacher.forward(slot.y, slot.active, training=False)[0])
    total = float(extra) + float(bce(llr, coded, act))
    assert total == pytest.approx(float(distill_loss(llr, t_llr, coded, act, cfg)), rel=1e-4, abs=1e-6)
    assert math.isfinite(total)


def test_train_pair_and_evaluate_reject_bad_input(tmp_path):
    from effinrx.training.distill import evaluate, train_pair
    from effinrx.training.nrx import TrainRecipe

    with pytest.raises(ConfigError, match="recipe.init"):
        train_pair(TrainRecipe(init="reference"), DistillConfig(), tmp_path)
    with pytest.raises(ConfigError, match="batches"):
        evaluate({"x": object()}, 3.0, 0, 4, seed=0)
    with pytest.raises(ConfigError, match="receiver"):
        evaluate({}, 3.0, 1, 4, seed=0)


def test_evaluate_pairs_bce_with_the_engines_counts():
    """evaluate() = one simulate_many run with LLRs: per-TB BCE in the same order for every
    receiver, counts equal to a plain simulate_many run of the same slots."""
    from effinrx.training.distill import evaluate
    from effinrx.link.config import Scenario
    from effinrx.link.montecarlo import simulate_many
    from effinrx.receivers.nrx import NRXReceiver

    a = NRXReceiver("nrx-rt", weights=None, name="a")
    b = NRXReceiver("nrx-rt", net=a.net, name="b")  # same network: identical LLRs
    ev = evaluate({"a": a, "b": b}, 3.0, batches=2, batch_size=2, seed=5)
    assert set(ev) == {"a", "b"}
    for r in ev.values():
        assert r["blocks"] == 8 and r["bce"].shape == (8,) and r["bce"].dtype == np.float64
        assert np.all(np.isfinite(r["bce"])) and np.all(r["bce"] > 0)
        assert 0 <= r["crc_failures"] <= r["blocks"] and r["bits"] > 0
    np.testing.assert_array_equal(ev["a"]["bce"], ev["b"]["bce"])
    (pc,) = simulate_many({"a": a}, Scenario(), [3.0], max_blocks=8, target_errors=9, batch_size=2, seed=5,
                          progress=False)["a"]
    assert (pc.errors, pc.blocks, pc.bit_errors) == (ev["a"]["errors"], 8, ev["a"]["bit_errors"])


def _train_args(argv):
    import argparse

    from effinrx.commands import train as train_cmd

    p = argparse.ArgumentParser()
    train_cmd.add_arguments(p)
    return train_cmd, p.parse_args(argv)


def test_cli_distill_rejects_bad_options(tmp_path):
    cmd, a = _train_args(["--distill-from", "nrx-large", "--distill-alpha", "1.5", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="alpha"):
        cmd.run(a)
    cmd, a = _train_args(["--distill-from", "nrx-large", "--distill-temperature", "0", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="temperature"):
        cmd.run(a)
    cmd, a = _train_args(["--model", "nrx-large", "--distill-from", "nrx-large", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="distill-from"):
        cmd.run(a)
    assert not (tmp_path / "nrx-rt" / "distill.json").exists()


def test_cli_distill_one_step(tmp_path, capsys):
    import json

    from effinrx.weights import reference_dir

    if reference_dir() is None:
        pytest.skip("teacher NRX-Large needs the reference weights (set EFFINRX_NRX_WEIGHTS)")
    cmd, a = _train_args(["--distill-from", "nrx-large", "--steps", "1", "--batch-size", "2",
                          "--no-resume", "--out", str(tmp_path)])
    assert cmd.run(a) == 0
    d = json.loads((tmp_path / "nrx-rt" / "distill.json").read_text())
    assert d["teacher"] == "nrx-large" and d["alpha"] == 0.5 and d["teacher_params"] > 400_000
    assert (tmp_path / "nrx-rt" / "ckpt_latest.npz").is_file()
    assert "distilling from nrx-large" in capsys.readouterr().out


def test_hook_with_alpha_one_is_plain_training():
    """alpha=1: the hook adds nothing and never calls the teacher (an object without forward)."""
    hook = make_extra_loss(object(), DistillConfig(alpha=1.0))
    assert float(hook(None, None, None, None)) == 0.0
