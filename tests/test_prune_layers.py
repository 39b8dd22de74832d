"""Unit tests of the TF side of pruning on single layers (fast: no NRX, no link simulation):
tfmot's 2:4 and polynomial masks through :func:`effinrx.prune.magnitude.make_wrap`, and the
movement-pruning wrapper (forward parity, score = -dL/dW' * W, mask update, errors)."""
import numpy as np
import pytest

from effinrx.errors import ConfigError
from effinrx.prune.masks import m_by_n_mask, m_by_n_report
from effinrx.prune.recipe import PruneRecipe


@pytest.fixture(scope="module")
def tfk():
    from effinrx._tf import keras, tf

    return tf(), keras()


def _train_calls(layer, x, n):
    for _ in range(n):
        layer(x, training=True)


def test_tfmot_2_4_mask_along_input_channels(tfk):
    from effinrx.prune.magnitude import make_wrap

    t, k = tfk
    t.random.set_seed(0)
    w = make_wrap(PruneRecipe(pattern="2:4"))(k.layers.Dense(8))
    x = t.random.normal([5, 18])
    w(x)  # build
    w0 = w.layer.kernel.numpy()
    w.pruning_step.assign(0)
    _train_calls(w, x, 1)  # tfmot computes the m:n mask at pruning step 1
    w.pruning_obj.weight_mask_op()
    kern = w.layer.kernel.numpy()
    r = m_by_n_report(kern, 2, 4, axis=-2)
    assert r.holds and r.tail == 2, r
    np.testing.assert_array_equal(kern != 0, m_by_n_mask(w0, 2, 4, axis=-2) != 0)  # tfmot == ours
    assert np.all(w.layer.bias.numpy() == 0.0)  # zero-initialised bias, never masked


def test_tfmot_polynomial_reaches_target_on_kernel_only(tfk):
    from effinrx.prune.magnitude import make_wrap

    t, k = tfk
    w = make_wrap(PruneRecipe(steps=4, end_step=2))(k.layers.Dense(16, bias_initializer="ones"))
    x = t.random.normal([3, 32])
    w(x)
    w.pruning_step.assign(0)
    _train_calls(w, x, 2)
    w.pruning_obj.weight_mask_op()
    kern = w.layer.kernel.numpy()
    assert np.mean(kern == 0) == pytest.approx(0.8, abs=1e-3)
    assert np.all(w.layer.bias.numpy() == 1.0)


def test_make_wrap_rejects_movement_recipe():
    from effinrx.prune.magnitude import make_wrap

    with pytest.raises(ConfigError, match="magnitude"):
        make_wrap(PruneRecipe(method="movement"))


def test_movement_score_sign_and_mask(tfk):
    from effinrx.prune import movement

    t, k = tfk
    inner = k.layers.Dense(3, use_bias=False)
    w = movement.wrap(inner)
    x = t.constant(np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32))
    y0 = inner(x)  # builds the inner layer; the wrapper must reproduce it exactly
    np.testing.assert_allclose(w(x).numpy(), y0.numpy(), rtol=1e-6, atol=1e-6)
    c = t.constant(np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32))
    W = inner.kernel.numpy()
    with t.GradientTape() as tape:
        loss = t.reduce_sum(w(x, training=True) * c)
    g = tape.gradient(loss, inner.kernel).numpy()
    dl_dw = x.numpy().T @ c.numpy()  # dL/dW' of L = sum((x W') * c)
    np.testing.assert_allclose(w.score.numpy(), -dl_dw * W, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, dl_dw, rtol=1e-5, atol=1e-6)  # mask all ones
    # weights pushed towards zero (grad sign == weight sign under descent) get negative score
    assert np.all((w.score.numpy() < 0) == (np.sign(dl_dw) == np.sign(W)))
    w.update_mask(0.5)
    m = w.mask.numpy()
    assert int(m.sum()) == round(m.size * 0.5)
    assert w.score.numpy()[m == 1].min() >= w.score.numpy()[m == 0].max()
    with t.GradientTape() as tape:
        loss = t.reduce_sum(w(x, training=True) * c)
    np.testing.assert_allclose(tape.gradient(loss, inner.kernel).numpy(), dl_dw * m, rtol=1e-5, atol=1e-6)
    w.bake()
    assert np.all(inner.kernel.numpy()[m == 0] == 0)


def test_movement_separable_forward_parity(tfk):
    from effinrx.prune import movement

    t, k = tfk
    inner = k.layers.SeparableConv2D(6, (3, 3), padding="same", activation="relu")
    w = movement.wrap(inner)
    x = t.random.normal([2, 5, 7, 4])
    y0 = inner(x)
    np.testing.assert_allclose(w(x).numpy(), y0.numpy(), rtol=1e-5, atol=1e-5)
    assert tuple(w.mask.shape) == tuple(inner.pointwise_kernel.shape)


def test_movement_wrapper_rejects_other_layers(tfk):
    from effinrx.prune import movement

    _, k = tfk
    with pytest.raises(ConfigError, match="Dense/SeparableConv2D"):
        movement.wrap(k.layers.Conv2D(4, 3))
    with pytest.raises(ConfigError, match="stride 1"):
        movement.wrap(k.layers.SeparableConv2D(4, 3, strides=2))
