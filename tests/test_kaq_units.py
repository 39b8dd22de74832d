"""Unit and property tests of the KAQ pieces: MIMO data, classical detectors, PGD-Net, MMD, STE
fake-quant and the SNR-adaptive step (claims K1-K3 build on these)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from effinrx.errors import ConfigError, ShapeError
from effinrx.quant import kaq
from effinrx.receivers.mimo import pgdnet
from effinrx.receivers.mimo import system as mimo

CFG = mimo.MimoConfig(8, 8)
FAST = settings(max_examples=25, deadline=None)


@st.composite
def batches(draw, max_rows=12, max_dim=6):
    """Two float32 sample batches [B, N] and [B', N] with moderate values."""
    n = draw(st.integers(1, max_dim))
    b1, b2 = draw(st.integers(1, max_rows)), draw(st.integers(1, max_rows))
    vals = st.floats(-3, 3, allow_nan=False, width=32)
    a = np.array(draw(st.lists(vals, min_size=b1 * n, max_size=b1 * n)), np.float32).reshape(b1, n)
    b = np.array(draw(st.lists(vals, min_size=b2 * n, max_size=b2 * n)), np.float32).reshape(b2, n)
    return a, b


@pytest.fixture(scope="module")
def trained():
    net = pgdnet.build_pgdnet(5)
    pgdnet.train_fp32(net, CFG, epochs=3, steps_per_epoch=20, seed=1)
    return net


def test_real_equivalent_shapes_and_energy():
    d = mimo.to_numpy(mimo.generate(CFG, 4000, (10.0, 10.0), seed=0))
    assert d["y"].shape == (4000, 16) and d["h"].shape == (4000, 16, 16) and d["x"].shape == (4000, 16)
    # unit-energy 16-QAM: 1/2 per real entry; H columns of unit norm on average
    assert abs(np.mean(d["x"] ** 2) - 0.5) < 0.02
    assert abs(np.mean(np.sum(d["h"] ** 2, axis=1)) - 1.0) < 0.02
    # real-equivalent block structure [[Re, -Im], [Im, Re]]
    h = d["h"][0]
    np.testing.assert_allclose(h[:8, :8], h[8:, 8:])
    np.testing.assert_allclose(h[:8, 8:], -h[8:, :8])
    # per-receive-antenna SNR 10 dB: E||n||^2 / E||Hx||^2 = 0.1
    n = d["y"] - np.einsum("bij,bj->bi", d["h"], d["x"])
    sig = np.einsum("bij,bj->bi", d["h"], d["x"])
    assert abs(np.mean(n ** 2) / np.mean(sig ** 2) - 0.1) < 0.01


def test_gray_labels_adjacent_levels_differ_in_one_bit():
    assert all(np.sum(mimo.PAM_BITS[i] != mimo.PAM_BITS[i + 1]) == 1 for i in range(3))


def test_noiseless_zf_and_ml_are_exact():
    small = mimo.MimoConfig(2, 2)  # 4 real dims -> 256 ML candidates
    d = mimo.to_numpy(mimo.generate(small, 50, (200.0, 200.0), seed=3))
    assert mimo.bit_errors(mimo.slice_pam(mimo.zf(d["y"], d["h"])), d["idx"])[0] == 0
    assert mimo.bit_errors(mimo.ml(d["y"], d["h"]), d["idx"])[0] == 0


def test_ml_beats_lmmse_beats_zf_on_tiny_system():
    small = mimo.MimoConfig(2, 2)
    d = mimo.to_numpy(mimo.generate(small, 3000, (10.0, 10.0), seed=4))
    no = mimo.noise_var(small, 10.0)
    e_ml = mimo.bit_errors(mimo.ml(d["y"], d["h"]), d["idx"])[0]
    e_lm = mimo.bit_errors(mimo.slice_pam(mimo.lmmse(d["y"], d["h"], no)), d["idx"])[0]
    e_zf = mimo.bit_errors(mimo.slice_pam(mimo.zf(d["y"], d["h"])), d["idx"])[0]
    assert e_ml < e_lm < e_zf


def test_ml_refuses_large_systems_and_bad_shapes():
    with pytest.raises(ConfigError, match="candidates"):
        mimo.ml(np.zeros((1, 16)), np.zeros((1, 16, 16)))
    with pytest.raises(ShapeError, match="expected y"):
        mimo.zf(np.zeros((2, 4)), np.zeros((2, 5, 4)))
    with pytest.raises(ConfigError, match="n_tx"):
        mimo.MimoConfig(0, 4)


def test_pgdnet_init_and_bad_config():
    net = pgdnet.build_pgdnet(5)
    np.testing.assert_allclose(net.eta.numpy(), pgdnet.INIT["eta"], rtol=1e-6)
    np.testing.assert_allclose(net.lam.numpy(), pgdnet.INIT["lam"], rtol=1e-6)
    assert net.describe()["num_params"] == 22  # eta, lambda, t, c per layer; mu, nu shared
    with pytest.raises(ConfigError):
        pgdnet.build_pgdnet(0)
    with pytest.raises(ShapeError, match="PGDNet expects"):
        net(np.zeros((2, 16), np.float32), np.zeros((2, 16), np.float32), np.zeros(2, np.float32))


@pytest.mark.parametrize("snr", [0.0, 20.0])
def test_training_lowers_mse_and_beats_zf(trained, snr):
    """A short training lowers the MSE and the detector beats ZF at low and high SNR (the
    unpreconditioned PGD-Net with a box clip was worse than ZF above 15 dB)."""
    val = mimo.to_numpy(mimo.generate(CFG, 2000, (0.0, 25.0), seed=9))
    assert kaq.val_mse(trained, val) < kaq.val_mse(pgdnet.build_pgdnet(5), val)
    d = mimo.to_numpy(mimo.generate(CFG, 2000, (snr, snr), seed=10))
    e_pgd = mimo.bit_errors(mimo.slice_pam(trained(d["y"], d["h"], d["snr_db"]).numpy()), d["idx"])[0]
    e_zf = mimo.bit_errors(mimo.slice_pam(mimo.zf(d["y"], d["h"])), d["idx"])[0]
    assert e_pgd < e_zf


@FAST
@given(batches())
def test_mmd_nonnegative_and_symmetric(ab):
    a, b = ab
    if a.shape[1] != b.shape[1]:
        return
    m_ab = float(kaq.gaussian_mmd(a, b, 1.0))
    m_ba = float(kaq.gaussian_mmd(b, a, 1.0))
    assert m_ab >= 0.0
    assert abs(m_ab - m_ba) <= 1e-5


@FAST
@given(batches(), st.floats(0.05, 10.0))
def test_mmd_zero_for_identical_batches(ab, sigma):
    a, _ = ab
    assert float(kaq.gaussian_mmd(a, a.copy(), sigma)) <= 1e-5


def test_mmd_detects_a_shift_and_rejects_bad_shapes():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(128, 4)).astype(np.float32)
    assert float(kaq.gaussian_mmd(a, a + 1.0, 1.0)) > 0.1
    with pytest.raises(ShapeError, match="gaussian_mmd"):
        kaq.gaussian_mmd(a, a[:, :3], 1.0)


@FAST
@given(st.integers(1, 5), st.floats(-10, 40), st.floats(0.1, 20))
def test_adaptive_step_positive_and_decreasing_in_snr(layers, snr_db, gap_db):
    q = kaq.Quantizer("kaq", layers, 4, np.full(layers, 0.3), np.full(layers, 0.05), None)
    for k in range(layers):
        lo, hi = q.delta(k, np.array([snr_db, snr_db + gap_db], np.float32)).numpy()
        assert lo > 0 and hi > 0
        assert hi < lo


@FAST
@given(st.integers(2, 8), st.floats(0.01, 1.0), st.lists(st.floats(-5, 5, width=32), min_size=1, max_size=20))
def test_fake_quant_on_grid_and_clipped(bits, step, xs):
    x = np.array(xs, np.float32)
    q = kaq.fake_quant(x, np.float32(step), bits).numpy()
    qm = 2 ** (bits - 1) - 1
    np.testing.assert_allclose(q / np.float32(step), np.round(q / np.float32(step)), atol=1e-3)
    assert np.all(np.abs(q) <= qm * np.float32(step) * (1 + 1e-5))
    inside = np.abs(x) < qm * step
    assert np.all(np.abs(q[inside] - x[inside]) <= step / 2 * (1 + 1e-4) + 1e-6)


def test_fake_quant_straight_through_gradient():
    from effinrx._tf import tf

    tf = tf()
    x = tf.constant([0.12, -0.31, 5.0])
    with tf.GradientTape() as t:
        t.watch(x)
        y = tf.reduce_sum(kaq.fake_quant(x, 0.1, 4))
    np.testing.assert_allclose(t.gradient(y, x).numpy(), [1.0, 1.0, 0.0])


def test_quantizer_bad_inputs():
    with pytest.raises(ConfigError, match="method"):
        kaq.Quantizer("lsq", 5, 4, None, None, np.ones(5))
    with pytest.raises(ConfigError, match="bits"):
        kaq.qmax(1)


def test_short_kaq_training_runs_and_keeps_steps_positive(trained):
    val = mimo.to_numpy(mimo.generate(CFG, 512, (0.0, 25.0), seed=11))
    r = kaq.train_quantized(CFG, "kaq", 4, epochs=2, steps_per_epoch=3, val=val, init_net=trained)
    assert len(r["val_mse"]) == 2 and all(np.isfinite(r["val_mse"]))
    assert np.all(r["quant"].delta(0, np.array([0.0, 25.0], np.float32)).numpy() > 0)
    assert all(m >= 0 for m in r["train_mmd"])
    assert kaq.epochs_to_threshold([3.0, 2.0, 1.0], 2.0) == 2
    assert kaq.epochs_to_threshold([3.0], 1.0) == 2
