"""TensorFlow fake-quantization with straight-through-estimator (STE) gradients.

``fake_quant_int``: forward ``s * (clip(round(x/s) + z, qmin, qmax) - z)``; backward passes the
gradient through unchanged inside the clip range and zeroes it outside (the clipped STE).
``lsq_fake_quant``: the LSQ variant whose per-channel scale is learnable (Esser et al.): the scale
gradient is ``(round(v) - v)`` inside and ``qmin``/``qmax`` outside, times ``1/sqrt(N * qmax)``.
``fake_quant_float``: fp16/fp8/fp4 rounding with an STE. TensorFlow is imported inside the functions.
"""
from __future__ import annotations

import math

from effinrx._tf import tf as _tf
from effinrx.quant.formats import MINIFLOATS, int_range


def fake_quant_int(x, scale, zero_point=0.0, bits: int = 8, signed: bool = True, narrow: bool = False):
    """Integer fake-quant of a float32 tensor ``x`` (any shape; ``scale`` broadcastable)."""
    tf = _tf()
    qmin, qmax = int_range(bits, signed, narrow)

    @tf.custom_gradient
    def _fq(v):
        s = tf.cast(scale, v.dtype)
        z = tf.cast(zero_point, v.dtype)
        u = v / s + z
        q = tf.clip_by_value(tf.round(u), qmin, qmax)
        inside = tf.cast((u >= qmin - 0.5) & (u <= qmax + 0.5), v.dtype)

        def grad(dy):
            return dy * inside  # STE: 1 inside the representable range, 0 where clipped

        return (q - z) * s, grad

    return _fq(tf.convert_to_tensor(x, tf.float32))


def lsq_fake_quant(x, scale, bits: int = 8, signed: bool = True, narrow: bool = False):
    """Symmetric fake-quant with a learnable ``scale`` (tf.Variable, broadcastable to ``x``).

    Returns the dequantized tensor; gradients flow to ``x`` (STE) and ``scale`` (LSQ).
    """
    tf = _tf()
    qmin, qmax = int_range(bits, signed, narrow)
    x = tf.convert_to_tensor(x, tf.float32)
    # static sizes so this also traces inside tf.function
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


def _reduce_to(t, shape):
    """Sum a broadcast gradient back to ``shape`` (e.g. per-channel scale)."""
    tf = _tf()
    _, axes = tf.raw_ops.BroadcastGradientArgs(s0=tf.shape(t), s1=shape)
    return tf.reshape(tf.reduce_sum(t, axis=axes, keepdims=True), shape)


def fake_quant_float(x, fmt: str, scale=1.0):
    """Round ``x / scale`` to float format ``fmt`` (ties to even, saturating) and rescale; STE grad."""
    tf = _tf()
    f = MINIFLOATS[fmt]

    @tf.custom_gradient
    def _fq(v):
        s = tf.cast(scale, v.dtype)
        a = v / s
        mag = tf.minimum(tf.abs(a), f.max_finite)
        e = tf.floor(tf.math.log(tf.maximum(mag, 1e-30)) / math.log(2.0))
        # correct the float log's off-by-one at exact powers of two
        e = tf.where(tf.pow(2.0, e + 1.0) <= mag, e + 1.0, e)
        e = tf.where(tf.pow(2.0, e) > mag, e - 1.0, e)
        e = tf.maximum(e, float(1 - f.bias))
        quantum = tf.pow(2.0, e - f.man_bits)
        r = tf.minimum(tf.round(mag / quantum) * quantum, f.max_finite)
        out = tf.where(a < 0, -r, r) * s

        def grad(dy):
            return dy

        return out, grad

    return _fq(tf.convert_to_tensor(x, tf.float32))
