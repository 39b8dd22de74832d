"""Weight-only PTQ (fp16, int8/int4 per-tensor/per-channel), exact storage bytes and a QAT Conv2D
for the DeepRx receiver (seeds 001, 002).

Quantiser (claim R5): signed symmetric, zero-point 0, ``s = max|w| / (2^(b-1) - 1)`` over the whole
kernel (per-tensor) or per output channel (last axis of a Conv2D kernel ``[3, 3, C_in, C_out]``);
``w_q = clip(round(w / s), -(2^(b-1) - 1), 2^(b-1) - 1) * s``. Only Conv2D kernels are quantised;
biases and LayerNorm gamma/beta stay float32 (as in the paper) and are counted in the bytes.

The quantiser math and the byte counts are the shared ones (``effinrx.quant.formats.fake_quant``,
``effinrx.quant.storage.storage_table``); this module maps DeepRx layers onto them. The QAT layer
fake-quantises with the shared straight-through op (``effinrx.quant.fakequant.fake_quant_ste``,
gradients by autodiff, so the log-scales learn), which traces inside ``tf.function`` where training runs.
"""
from __future__ import annotations

import numpy as np

from effinrx.errors import ConfigError
from effinrx.quant.fakequant import fake_quant_ste
from effinrx.quant.formats import QuantSpec, fake_quant
from effinrx.quant.storage import storage_table

FORMATS = ("fp32", "fp16", "int8-pt", "int8-pc", "int4-pt", "int4-pc")


def spec(fmt: str):
    """The shared :class:`effinrx.quant.formats.QuantSpec` of a DeepRx weight format name."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown weight format {fmt!r}; choose one of {FORMATS}")
    if fmt.startswith("int"):
        gran = "per-channel" if fmt.endswith("pc") else "per-tensor"
        return QuantSpec(fmt=fmt[:4], granularity=gran, axis=-1, symmetric=True, signed=True)
    return QuantSpec(fmt=fmt)


def quantize_kernel(w: np.ndarray, fmt: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (dequantised kernel float32 same shape, scales float32 ``[C_out]``/``[1]`` or None)."""
    w = np.asarray(w, np.float32)
    x_hat, s, _ = fake_quant(w, spec(fmt))
    return x_hat.astype(np.float32), (None if s is None else np.asarray(s, np.float32).reshape(-1))


def _is_kernel(layer, var) -> bool:
    return "conv" in layer.name and var.name.split("/")[-1].startswith("kernel")


def ptq_copy(model, fmt: str):
    """A copy of the tf_keras ``model`` whose Conv2D kernels are PTQ'd to ``fmt`` (weights only)."""
    from effinrx._tf import keras

    spec(fmt)
    clone = keras().models.clone_model(model)
    clone.set_weights(model.get_weights())
    for layer in clone.layers:
        for v in layer.weights:
            if _is_kernel(layer, v):
                v.assign(quantize_kernel(v.numpy(), fmt)[0])
    return clone


def storage_bytes(model, fmt: str) -> dict:
    """Exact bytes to store the model's weights in ``fmt`` (shared ``storage_table``: int4 packed two
    per byte, fp32 scales counted, biases and LayerNorm gamma/beta fp32).

    Returns ``{"kernel_bytes", "scale_bytes", "float_bytes" (biases + norms, fp32), "total_bytes",
    "fp32_total_bytes", "ratio_total", "ratio_kernels"}``.
    """
    tensors = []
    for layer in model.layers:
        for v in layer.weights:
            role = "kernel" if _is_kernel(layer, v) else ("norm" if "norm" in layer.name else "bias")
            tensors.append((v.name, tuple(v.shape), role))
    t = storage_table(tensors, spec(fmt))
    kern = [r for r in t.rows if r.role == "kernel"]
    kb = sum(r.data_bytes for r in kern)
    sb = t.metadata_bytes
    fb = sum(r.total for r in t.rows if r.role != "kernel")
    fp32_k = sum(4 * r.elements for r in kern)
    return {"kernel_bytes": kb, "scale_bytes": sb, "float_bytes": fb, "total_bytes": t.total_bytes,
            "fp32_total_bytes": t.fp32_bytes, "ratio_total": t.ratio, "ratio_kernels": fp32_k / kb}


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
            # clip(round(w/s), -q, q) * s, round straight through, s = exp(log_scale) learned by autodiff
            w = fake_quant_ste(kernel, tf.exp(self.log_scale), self.bits, narrow=True, step_grad="autodiff")
            return super().convolution_op(inputs, w)

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
