"""NRX QAT (effinrx.quant.qat) on a small CGNN with random inputs: gradients reach the kernels and
the LSQ scales (eager and inside tf.function), step 0 equals per-channel PTQ, bake() gives integer
codes times the scales, named errors."""
import functools

import numpy as np
import pytest

from effinrx.errors import ConfigError

SMALL = dict(name="nrx-rt", num_it=1, d_s=8, num_units_init=(8,), num_units_agg=(8,),
             num_units_state=(8,), num_units_readout=(8,))


@functools.lru_cache(maxsize=None)
def _inputs():
    from effinrx._tf import tf

    t = tf()
    rng = np.random.default_rng(1)
    b, u, s, n, a2 = 3, 2, 12, 14, 8
    return (t.constant(rng.normal(size=(b, s, n, a2)), t.float32),
            t.constant(rng.normal(size=(u, s, n, 2)), t.float32),
            t.constant(rng.normal(size=(b, u, s, n, a2)), t.float32), t.ones([b, u]))


def _qat_net(bits=4, seed=5):
    from effinrx._tf import set_seeds
    from effinrx.quant.qat import make_wrap
    from effinrx.receivers.nrx_layers import NRXConfig, build_cgnn

    set_seeds(seed)
    wrap, made = make_wrap(bits)
    net = build_cgnn(NRXConfig(**SMALL), wrap=wrap)
    for w in made:
        w.init_scales()
    net.qat_wrappers = made
    return net, made


@pytest.mark.parametrize("bits,method", [(4, "int4-pc"), (8, "int8-pc")])
def test_step0_equals_ptq_per_channel(bits, method):
    from effinrx.quant.ptq import quantize_weights
    from effinrx.quant.qat import bake
    from effinrx.receivers.nrx_layers import NRXConfig, build_cgnn

    net, made = _qat_net(bits)
    vs = net.core_variables()
    w0 = [v.numpy() for v in vs]
    wq, _ = quantize_weights(w0, [v.name for v in vs], method)
    baked, scales = bake(net)
    for a, b in zip(baked, wq):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # same init scale as PTQ: max|w| / (2^(b-1) - 1) per channel
    k = made[0].inner.pointwise_kernel.numpy()
    np.testing.assert_allclose(scales[0]["pointwise_kernel"], np.abs(k).max(axis=(0, 1, 2)) / (2 ** (bits - 1) - 1),
                               rtol=1e-6)
    plain = build_cgnn(NRXConfig(**SMALL))
    plain.set_core_weights(wq)
    x = _inputs()
    out_q, out_p = net(x), plain(x)
    for a, b in zip(out_q, out_p):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


def test_baked_kernels_are_codes_times_scales():
    from effinrx.quant.qat import bake

    net, made = _qat_net(4)
    made[1].scales["pointwise_kernel"].assign(made[1].scales["pointwise_kernel"] * 0.7)  # clipped codes
    baked, scales = bake(net)
    idx = [v.ref() for v in net.core_variables()].index(made[1].inner.pointwise_kernel.ref())
    codes = baked[idx] / scales[1]["pointwise_kernel"]
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-4)
    assert codes.min() >= -8 - 1e-4 and codes.max() <= 7 + 1e-4
    d = made[0].inner.depthwise_kernel
    assert scales[0]["depthwise_kernel"].shape == (int(d.shape[2]), 1)


@pytest.mark.parametrize("graph", [False, True])
def test_gradients_reach_scales_and_kernels(graph):
    from effinrx._tf import tf

    t = tf()
    net, made = _qat_net(4)
    x = _inputs()

    def grads():
        with t.GradientTape() as tape:
            llr, h = net(x, training=True)
            loss = t.reduce_mean(t.square(llr)) + t.reduce_mean(t.square(h))
        return tape.gradient(loss, net.trainable_variables)

    g = t.function(grads)() if graph else grads()
    names = [v.name for v in net.trainable_variables]
    assert len(names) == len(net.core_variables()) + sum(len(w.scales) for w in made)
    for v, gv in zip(net.trainable_variables, g):
        assert gv is not None, v.name
    by = {v.ref(): gv for v, gv in zip(net.trainable_variables, g)}
    for w in made:
        for attr, s in w.scales.items():
            assert float(t.reduce_sum(t.abs(by[s.ref()]))) > 0, s.name
            assert float(t.reduce_sum(t.abs(by[getattr(w.inner, attr).ref()]))) > 0, attr


def test_errors():
    from effinrx.quant.qat import bake, make_wrap
    from effinrx.receivers.nrx_layers import NRXConfig, build_cgnn

    with pytest.raises(ConfigError, match="QAT bits 9"):
        make_wrap(9)
    with pytest.raises(ConfigError, match="no QAT wrappers"):
        bake(build_cgnn(NRXConfig(**SMALL)))


def test_tfmot_quantize_model_cannot_wrap_the_cgnn():
    """Why effinrx.quant.qat has its own fake-quant wrappers: tfmot's ``quantize_model`` takes only
    Sequential / Functional tf_keras models and the CGNN is a subclassed Model (its layers would
    annotate, but ``quantize_apply`` needs a functional graph). Fails if tfmot ever accepts it."""
    from effinrx._tf import tf
    from effinrx.receivers.nrx_layers import NRXConfig, build_cgnn

    tf()  # TF_USE_LEGACY_KERAS before tfmot imports Keras
    import tensorflow_model_optimization as tfmot

    net = build_cgnn(NRXConfig(**SMALL))
    with pytest.raises(ValueError, match="Sequential or Functional"):
        tfmot.quantization.keras.quantize_model(net)
