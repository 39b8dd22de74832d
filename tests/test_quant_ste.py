"""The one straight-through fake-quant op (``quant.fakequant.fake_quant_ste``) against the three ops
it replaced, copied here verbatim: NRX QAT's ``lsq_fake_quant``, DeepRx's ``QATConv2D`` kernel
quantiser and KAQ's ``fake_quant``. For each caller's way of using it (shapes, step shape, bits,
which variables train) the forward values must be the same bits and the gradients equal, eagerly
and inside ``tf.function``."""
import math

import numpy as np
import pytest

from effinrx._tf import tf as _tf
from effinrx.quant.fakequant import _reduce_to, fake_quant_ste
from effinrx.quant.formats import int_range

tf = _tf()


# --- the replaced ops, as they were (effinrx/quant/fakequant.py, receivers/deeprx_quant.py, unfolded/kaq.py)
def old_lsq_fake_quant(x, scale, bits: int = 8, signed: bool = True, narrow: bool = False):
    qmin, qmax = int_range(bits, signed, narrow)
    x = tf.convert_to_tensor(x, tf.float32)
    n_x = x.shape.num_elements() or 1
    n_s = getattr(scale, "shape", tf.TensorShape([])).num_elements() or 1
    n_per_scale = max(1, n_x // max(1, n_s))
    g = 1.0 / math.sqrt(n_per_scale * qmax)

    @tf.custom_gradient
    def _fq(v, s):
        u = v / s
        r = tf.clip_by_value(tf.round(u), qmin, qmax)
        inside = tf.cast((u >= qmin) & (u <= qmax), v.dtype)

        def grad(dy):
            dv = dy * inside
            ds_elem = dy * (inside * (tf.round(u) - u) + (1.0 - inside) * r) * g
            ds = _reduce_to(ds_elem, tf.shape(s))
            return dv, ds

        return r * s, grad

    return _fq(x, scale)


def old_deeprx_kernel(kernel, log_scale, bits):
    q = float(2 ** (bits - 1) - 1)
    s = tf.exp(log_scale)
    v = kernel / s
    v = v + tf.stop_gradient(tf.round(v) - v)  # straight-through estimator
    return tf.clip_by_value(v, -q, q) * s


def old_kaq_fake_quant(x, step, bits: int):
    q = float(2 ** (bits - 1) - 1)
    v = x / step
    v = v + tf.stop_gradient(tf.round(v) - v)  # STE for round
    return tf.clip_by_value(v, -q, q) * step


# --- inputs: codes spread over and beyond the range, exact half-steps and range edges included
def _codes_like(shape, step, bits, seed):
    rng = np.random.default_rng(seed)
    q = 2 ** (bits - 1)
    u = rng.uniform(-q - 3, q + 3, size=shape)
    flat = u.reshape(-1)
    edges = np.array([0.5, -0.5, 1.5, -2.5, q - 1, q - 0.5, q, q + 0.5, -q, -q - 0.5, -q + 1, 0.0])
    flat[:min(flat.size, edges.size)] = edges[:flat.size]
    return (u * step).astype(np.float32)


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), np.max(np.abs(a - b))


def _run(fn, x, s, graph):
    """``(y, dy/dx, dy/ds)`` of ``sum(fn(x, s) * w)`` (a fixed random weighting, so every element's
    gradient is distinct), eagerly or inside one ``tf.function``."""
    w = tf.constant(np.random.default_rng(9).normal(size=x.shape).astype(np.float32))

    def body(xv, sv):
        with tf.GradientTape() as tape:
            tape.watch([xv, sv])
            y = fn(xv, sv)
            loss = tf.reduce_sum(y * w)
        dx, ds = tape.gradient(loss, [xv, sv])
        return y, dx, ds

    f = tf.function(body) if graph else body
    return [t.numpy() for t in f(tf.constant(x), tf.constant(s))]


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("kshape,sshape", [((1, 1, 16, 8), (8,)),   # pointwise kernel, per output channel
                                           ((3, 3, 16, 1), (16, 1)),  # depthwise kernel, per input channel
                                           ((12, 6), (6,))])          # Dense kernel
def test_nrx_qat_lsq_is_unchanged(graph, bits, kshape, sshape):
    """quant/qat.py: kernel variables, per-channel scales max(scale, eps), signed full range, LSQ."""
    s = np.random.default_rng(1).uniform(0.01, 0.2, size=sshape).astype(np.float32)
    x = _codes_like(kshape, s, bits, seed=2)
    old = _run(lambda a, b: old_lsq_fake_quant(a, tf.maximum(b, 1e-8), bits=bits), x, s, graph)
    new = _run(lambda a, b: fake_quant_ste(a, tf.maximum(b, 1e-8), bits, narrow=False, step_grad="lsq"),
               x, s, graph)
    for o, n in zip(old, new):
        _same(o, n)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("bits", [4, 8])
def test_deeprx_qat_conv_kernel_is_unchanged(graph, bits):
    """quant/deeprx.py QATConv2D: [3, 3, Cin, Cout] kernel, step exp(log_scale) per output channel."""
    log_s = np.log(np.random.default_rng(3).uniform(0.01, 0.2, size=(8,))).astype(np.float32)
    x = _codes_like((3, 3, 4, 8), np.exp(log_s), bits, seed=4)
    old = _run(lambda k, ls: old_deeprx_kernel(k, ls, bits), x, log_s, graph)
    new = _run(lambda k, ls: fake_quant_ste(k, tf.exp(ls), bits, narrow=True, step_grad="autodiff"),
               x, log_s, graph)
    for o, n in zip(old, new):
        _same(o, n)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
@pytest.mark.parametrize("bits", [3, 4, 8])
@pytest.mark.parametrize("per_sample", [True, False], ids=["residual, SNR step [B,1]", "state, scalar step"])
def test_kaq_fake_quant_is_unchanged(graph, bits, per_sample):
    """quant/kaq.py: the residual [B, M] with a per-sample step [B, 1], the state [B, N] with one step."""
    rng = np.random.default_rng(5)
    s = rng.uniform(0.02, 0.3, size=(32, 1) if per_sample else ()).astype(np.float32)
    x = _codes_like((32, 16), s, bits, seed=6)
    old = _run(lambda a, b: old_kaq_fake_quant(a, b, bits), x, s, graph)
    new = _run(lambda a, b: fake_quant_ste(a, b, bits, narrow=True, step_grad="autodiff"), x, s, graph)
    for o, n in zip(old, new):
        _same(o, n)


def test_callers_use_the_shared_op():
    """kaq.fake_quant delegates to it (same bits); the modules hold no private STE any more."""
    from pathlib import Path

    from effinrx.quant import kaq

    x = _codes_like((8, 4), 0.1, 4, seed=7)
    _same(kaq.fake_quant(tf.constant(x), 0.1, 4).numpy(), old_kaq_fake_quant(tf.constant(x), 0.1, 4).numpy())
    root = Path(__file__).resolve().parents[1] / "effinrx" / "quant"
    for name in ("qat.py", "deeprx.py", "kaq.py"):
        text = (root / name).read_text()
        assert "fake_quant_ste(" in text and "stop_gradient(tf.round" not in text, name


def test_lsq_traces_with_shapes_left_open():
    """A kernel whose static shape tf.function leaves open still gets LSQ's 1/sqrt(N qmax) from the
    run-time sizes (the old op took N = 1 there), within float32 rounding of the static value."""
    s = np.full((6,), 0.05, np.float32)
    x = _codes_like((12, 6), s, 4, seed=8)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.float32)])
    def open_shapes(a, b):
        with tf.GradientTape() as tape:
            tape.watch(b)
            y = tf.reduce_sum(fake_quant_ste(a, b, 4, narrow=False, step_grad="lsq"))
        return tape.gradient(y, b)

    with tf.GradientTape() as tape:
        b = tf.constant(s)
        tape.watch(b)
        y = tf.reduce_sum(fake_quant_ste(tf.constant(x), b, 4, narrow=False, step_grad="lsq"))
    np.testing.assert_allclose(open_shapes(tf.constant(x), tf.constant(s)).numpy(), tape.gradient(y, b).numpy(),
                               rtol=1e-6)


def test_bad_step_grad():
    from effinrx.errors import ConfigError

    with pytest.raises(ConfigError, match="step_grad"):
        fake_quant_ste(np.zeros(3, np.float32), 0.1, 4, step_grad="none")
