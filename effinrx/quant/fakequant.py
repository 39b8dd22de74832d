"""TensorFlow fake-quantization with straight-through-estimator (STE) gradients.

``fake_quant_int``: forward ``s * (clip(round(x/s) + z, qmin, qmax) - z)``; backward passes the
gradient through unchanged inside the clip range and zeroes it outside (the clipped STE).
``fake_quant_ste``: symmetric fake-quant whose step is trainable (NRX QAT, DeepRx QAT, KAQ): the step
gets TensorFlow's gradient of the straight-through formula, or LSQ's scaled one (Esser et al.).
``fake_quant_float``: fp16/fp8/fp4 rounding with an STE. TensorFlow is imported inside the functions.
"""
from __future__ import annotations

import math

from effinrx._tf import tf as _tf
from effinrx.errors import ConfigError
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


def fake_quant_ste(x, step, bits: int, *, narrow: bool = True, step_grad: str = "autodiff"):
    """Signed symmetric fake-quant ``clip(round(x / step), qmin, qmax) * step`` with a
    straight-through round: the one trainable fake-quant op of NRX QAT, DeepRx QAT and KAQ.

    ``x`` float32, any shape; ``step`` float32 tensor or ``tf.Variable`` broadcastable to ``x``, > 0
    (per tensor, per channel, or per sample as KAQ's SNR-adaptive step). ``(qmin, qmax)`` is
    :func:`~effinrx.quant.formats.int_range` ``(bits, signed=True, narrow)``; ``narrow`` drops
    ``-2^(b-1)`` so the grid is symmetric. Returns float32, the shape of ``x``. Traces inside
    ``tf.function`` (no Python ``int`` of a tensor anywhere). ``step_grad`` picks the backward pass:

    * ``"autodiff"`` (KAQ, DeepRx QAT): ``u = x/step``, ``u + stop_gradient(round(u) - u)``, clip,
      times ``step``, differentiated by TensorFlow. ``d/dx`` is 1 where ``round(x/step)`` lies in
      range, else 0; ``d/dstep`` is ``round(u) - u`` inside and ``qmin``/``qmax`` outside (LSQ's rule
      without its scale).
    * ``"lsq"`` (NRX QAT, :mod:`effinrx.quant.qat`): LSQ (Esser et al.) with its gradient scale:
      ``d/dx`` is 1 where ``x/step`` lies in ``[qmin, qmax]``; ``d/dstep`` is ``round(u) - u``
      inside and ``qmin``/``qmax`` outside, times ``1/sqrt(N * qmax)`` with ``N`` elements of ``x``
      per step, summed back to the step's shape.

    Both compute the same values; ``u + (round(u) - u)`` is exactly ``round(u)`` in float32 except
    for the sign of a zero code (``u = -0.5`` gives +0 there, -0 from ``round``), which is why
    ``"lsq"`` keeps the plain ``round`` that its custom gradient allows.
    """
    tf = _tf()
    qmin, qmax = int_range(bits, True, narrow)
    x = tf.convert_to_tensor(x, tf.float32)
    if step_grad == "autodiff":
        return _codes(tf, x / step, qmin, qmax) * step
    if step_grad != "lsq":
        raise ConfigError(f"step_grad must be 'autodiff' or 'lsq', got {step_grad!r}")
    g = _lsq_grad_scale(tf, x, step, qmax)

    @tf.custom_gradient
    def _fq(v, s):
        u = v / s
        r = tf.clip_by_value(tf.round(u), qmin, qmax)  # the gradient is the custom one below
        inside = tf.cast((u >= qmin) & (u <= qmax), v.dtype)

        def grad(dy):
            dv = dy * inside
            ds_elem = dy * (inside * (tf.round(u) - u) + (1.0 - inside) * r) * g
            ds = _reduce_to(ds_elem, tf.shape(s))
            return dv, ds

        return r * s, grad

    return _fq(x, step)


def _codes(tf, u, qmin, qmax):
    """``clip(round(u), qmin, qmax)`` with the round passed straight through (identity gradient)."""
    return tf.clip_by_value(u + tf.stop_gradient(tf.round(u) - u), qmin, qmax)


def _lsq_grad_scale(tf, x, step, qmax):
    """LSQ's ``1/sqrt(N * qmax)``, ``N`` = elements of ``x`` per step element: a Python float from the
    static shapes when they are known (the value the NRX QAT results were made with), else a tensor
    from the run-time sizes (a shape left open by ``tf.function``)."""
    n_x = x.shape.num_elements()
    n_s = getattr(step, "shape", tf.TensorShape([])).num_elements()
    if n_x is not None and n_s is not None:
        return 1.0 / math.sqrt(max(1, (n_x or 1) // max(1, n_s or 1)) * qmax)
    n = tf.maximum(tf.size(x) // tf.maximum(tf.size(step), 1), 1)
    return tf.math.rsqrt(tf.cast(n, tf.float32) * float(qmax))


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
