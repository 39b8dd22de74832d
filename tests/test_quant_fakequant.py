"""TensorFlow fake-quant: STE gradients, LSQ scale gradients, agreement with the numpy math."""
import numpy as np
import pytest
from hypothesis import given, settings
from strategies import int_bits, weight_tensors

from effinrx._tf import tf as _tf
from effinrx.quant.fakequant import fake_quant_float, fake_quant_int, fake_quant_ste
from effinrx.quant.formats import QuantSpec, fake_quant, round_minifloat

tf = _tf()


@settings(max_examples=25)
@given(weight_tensors(max_dims=2), int_bits)
def test_tf_int_fake_quant_matches_numpy(a, bits):
    ref, s, _ = fake_quant(a, QuantSpec(f"int{bits}"))
    out = fake_quant_int(a, s.astype(np.float32), 0.0, bits).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * float(s.max()))


def test_ste_gradient_is_one_inside_zero_outside():
    x = tf.constant([-5.0, -1.0, 0.0, 0.3, 1.27, 1.3, 9.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fake_quant_int(x, 0.01, 0.0, 8)  # representable range [-1.28, 1.27]
    g = tape.gradient(y, x).numpy()
    assert g.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_lsq_scale_gradient_signs_and_shape():
    s = tf.Variable(tf.fill([1, 3], 0.1))
    x = tf.constant([[0.33, 5.0, -0.01], [0.0, 5.0, 0.0]])
    with tf.GradientTape() as tape:
        y = fake_quant_ste(x, s, 4, narrow=False, step_grad="lsq")
    g = tape.gradient(y, s).numpy()
    assert g.shape == (1, 3)
    assert g[0, 1] > 0  # clipped at qmax: growing the scale reduces the error
    np.testing.assert_allclose(y.numpy()[0, 1], 0.7, rtol=1e-6)


@pytest.mark.parametrize("fmt", ["fp16", "fp8_e4m3", "fp8_e5m2", "fp4_e2m1"])
def test_tf_float_fake_quant_matches_numpy(fmt):
    x = np.random.default_rng(1).normal(scale=3.0, size=4000).astype(np.float32)
    np.testing.assert_array_equal(fake_quant_float(x, fmt).numpy(), round_minifloat(x, fmt).astype(np.float32))
