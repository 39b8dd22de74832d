"""Weight-only PTQ (fp16, int8/int4 per-tensor/per-channel), exact storage bytes and a QAT Conv2D
for the DeepRx receiver (seeds 001, 002).

Quantiser (claim R5): signed symmetric, zero-point 0, ``s = max|w| / (2^(b-1) - 1)`` over the whole
kernel (per-tensor) or per output channel (last axis of a Conv2D kernel ``[3, 3, C_in, C_out]``);
``w_q = clip(round(w / s), -(2^(b-1) - 1), 2^(b-1) - 1) * s``. Only Conv2D kernels are quantised;
biases and LayerNorm gamma/beta stay float32 (as in the paper) and are counted in the bytes.

This is a small stand-in: the shared quantiser of ``effinrx.quant.formats`` / ``effinrx.quant.fakequant``
did not exist when this was written; swap these two functions for it when it lands.
"""
from __future__ import annotations

import numpy as np

from effinrx.errors import ConfigError

FORMATS = ("fp32", "fp16", "int8-pt", "int8-pc", "int4-pt", "int4-pc")


def _parse(fmt: str):
    if fmt not in FORMATS:
        raise ConfigError(f"unknown weight format {fmt!r}; choose one of {FORMATS}")
    if fmt.startswith("int"):
        return int(fmt[3]), fmt.endswith("pc")
    return None, False


def quantize_kernel(w: np.ndarray, fmt: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (dequantised kernel float32 same shape, scales float32 ``[C_out]``/``[1]`` or None)."""
    w = np.asarray(w, np.float32)
    bits, per_channel = _parse(fmt)
    if fmt == "fp32":
        return w, None
    if fmt == "fp16":
        return w.astype(np.float16).astype(np.float32), None
    qmax = 2 ** (bits - 1) - 1
    red = tuple(range(w.ndim - 1)) if per_channel else None
    amax = np.max(np.abs(w), axis=red, keepdims=per_channel)
    s = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    q = np.clip(np.round(w / s), -qmax, qmax)
    return (q * s).astype(np.float32), np.atleast_1d(s.reshape(-1)).astype(np.float32)


def _is_kernel(layer, var) -> bool:
    return "conv" in layer.name and var.name.split("/")[-1].startswith("kernel")


def ptq_copy(model, fmt: str):
    """A copy of the tf_keras ``model`` whose Conv2D kernels are PTQ'd to ``fmt`` (weights only)."""
    from effinrx._tf import keras

    _parse(fmt)
    clone = keras().models.clone_model(model)
    clone.set_weights(model.get_weights())
    for layer in clone.layers:
        for v in layer.weights:
            if _is_kernel(layer, v):
                v.assign(quantize_kernel(v.numpy(), fmt)[0])
    return clone


def storage_bytes(model, fmt: str) -> dict:
    """Exact bytes to store the model's weights in ``fmt`` (int4 packed two per byte per tensor).

    Returns ``{"kernel_bytes", "scale_bytes", "float_bytes" (biases + norms, fp32), "total_bytes",
    "fp32_total_bytes", "ratio_total", "ratio_kernels"}``.
    """
    bits, per_channel = _parse(fmt)
    kb = sb = fb = fp32_k = 0
    for layer in model.layers:
        for v in layer.weights:
            n = int(np.prod(v.shape))
            if _is_kernel(layer, v):
                fp32_k += 4 * n
                if fmt == "fp32":
                    kb += 4 * n
                elif fmt == "fp16":
                    kb += 2 * n
                else:
                    kb += (n * bits + 7) // 8
                    sb += 4 * (int(v.shape[-1]) if per_channel else 1)
            else:
                fb += 4 * n
    total = kb + sb + fb
    return {"kernel_bytes": kb, "scale_bytes": sb, "float_bytes": fb, "total_bytes": total,
            "fp32_total_bytes": fp32_k + fb, "ratio_total": (fp32_k + fb) / total,
            "ratio_kernels": fp32_k / kb}


def qat_conv_class():
    """A Conv2D whose kernel is fake-quantised (STE) with learnable per-channel scales (seed 002).

    Construct with ``QATConv2D(filters, 3, bits=4, ...)``; scales are initialised from max|w| at the
    first call after weights are set with :func:`init_qat_scales`.
    """
    from effinrx._tf import keras, tf

    tf, k = tf(), keras()

    class QATConv2D(k.layers.Conv2D):
        def __init__(self, *a, bits: int = 8, **kw):
            super().__init__(*a, **kw)
            self.bits = int(bits)

        def build(self, input_shape):
            super().build(input_shape)
            self.log_scale = self.add_weight(name="log_scale", shape=(self.filters,),
                                             initializer="zeros", trainable=True)

        def convolution_op(self, inputs, kernel):
            q = float(2 ** (self.bits - 1) - 1)
            s = tf.exp(self.log_scale)
            v = kernel / s
            v = v + tf.stop_gradient(tf.round(v) - v)  # straight-through estimator
            return super().convolution_op(inputs, tf.clip_by_value(v, -q, q) * s)

        def get_config(self):
            return {**super().get_config(), "bits": self.bits}

    return QATConv2D


def init_qat_scales(model) -> None:
    """Set every QAT layer's per-channel scale to ``max|w| / qmax`` of its current kernel."""
    for layer in model.layers:
        if hasattr(layer, "log_scale"):
            w = layer.kernel.numpy()
            amax = np.maximum(np.abs(w).max(axis=(0, 1, 2)), 1e-8)
            layer.log_scale.assign(np.log(amax / (2 ** (layer.bits - 1) - 1)).astype(np.float32))
