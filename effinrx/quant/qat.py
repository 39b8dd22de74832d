"""Quantization-aware training (QAT) of the NRX: weight fake-quant with learnable LSQ scales.

Every core Dense / SeparableConv2D is wrapped (through the ``wrap`` hook of
:func:`effinrx.receivers.nrx.load_model`) in :class:`QATWeights`, which runs the layer with its
kernels fake-quantized by :func:`effinrx.quant.fakequant.fake_quant_ste` (LSQ gradient): signed symmetric
``bits``-bit integers (codes -2^(b-1)..2^(b-1)-1, zero-point 0), one learnable scale per output
channel (pointwise / Dense kernels: last axis; depthwise kernels ``[kh, kw, C, 1]``: axis -2, the
channel axis). Kernels get the straight-through gradient, scales the LSQ gradient. Biases and
activations stay float32 (weight-only, like :mod:`effinrx.quant.ptq`).

Why not tfmot: ``tfmot.quantization.keras.quantize_model`` accepts only Sequential / Functional
tf_keras models and raises ``ValueError`` on the CGNN, a subclassed Model (pinned by
``tests/test_qat_nrx.py``); its default 8-bit scheme also tracks min/max ranges rather than learning
LSQ scales, and 4 bits would need custom QuantizeConfigs anyway. Hence the wrappers below, on the
foundation's STE op.

Scales start at ``max|w| / (2^(b-1) - 1)`` per channel of the warm-start weights, i.e. exactly the
per-channel PTQ scales of ``ptq`` method ``int<b>-pc``, so QAT at step 0 *is* PTQ per-channel; the
fine-tune (:func:`effinrx.training.nrx.train`, the NRX training loop and loss) is what QAT adds.
:func:`bake` turns a trained QAT model into plain float32 weights (kernels on their integer grid
times the learned scales) that any NRX receiver / exporter loads like PTQ weights.

Evaluate a baked model on the evaluation slots with ``effinrx simulate --receiver ART.npz`` (the
one engine); the T1/T2 benchmarks record its counts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from effinrx.errors import ConfigError
from effinrx.quant.fakequant import fake_quant_ste
from effinrx.quant.formats import DEPTHWISE_CHANNEL_AXIS
from effinrx.receivers.nrx import load_model
from effinrx.receivers.nrx_layers import _own_vars, collecting_wrap
from effinrx.training.nrx import TrainRecipe, train

KERNELS = ("depthwise_kernel", "pointwise_kernel", "kernel")
BITS = (2, 3, 4, 5, 6, 7, 8)
_EPS = 1e-8

_CLS = None


def _channel_axis(attr: str) -> int:
    return DEPTHWISE_CHANNEL_AXIS if attr == "depthwise_kernel" else -1


def qat_layer_class():
    """The Keras layer class (defined lazily so importing this module does not import TF)."""
    global _CLS
    if _CLS is not None:
        return _CLS
    from effinrx._tf import keras, tf

    k, t = keras(), tf()

    class QATWeights(k.layers.Layer):
        """Wraps a raw ``Dense`` or ``SeparableConv2D`` ``inner``; input float32 ``x``
        ([..., C_in] for Dense, [N, H, W, C_in] for the conv) -> the inner layer's output computed
        with fake-quantized kernels. Scale variables ``<kernel>_scale``: float32 [C_out] (Dense,
        pointwise) or [C, 1] (depthwise)."""

        def __init__(self, inner, bits: int = 8, **kw):
            super().__init__(**kw)
            self.inner, self.bits = inner, int(bits)
            self.scales = {}

        def build(self, input_shape):
            if not self.inner.built:
                self.inner.build(input_shape)
            for attr in KERNELS:
                w = getattr(self.inner, attr, None)
                if w is None:
                    continue
                shape = (int(w.shape[-2]), 1) if attr == "depthwise_kernel" else (int(w.shape[-1]),)
                self.scales[attr] = self.add_weight(name=f"{attr}_scale", shape=shape,
                                                    initializer="ones", trainable=True)
            super().build(input_shape)

        def quantized(self, attr: str):
            """Fake-quantized kernel ``attr`` (same shape as the kernel, float32)."""
            s = t.maximum(self.scales[attr], _EPS)
            return fake_quant_ste(getattr(self.inner, attr), s, self.bits, narrow=False, step_grad="lsq")

        def call(self, x, training=None):
            inner = self.inner
            if hasattr(inner, "depthwise_kernel"):
                y = t.nn.separable_conv2d(x, self.quantized("depthwise_kernel"),
                                          self.quantized("pointwise_kernel"), strides=[1, 1, 1, 1],
                                          padding=inner.padding.upper(), dilations=inner.dilation_rate)
            else:
                y = t.tensordot(x, self.quantized("kernel"), axes=[[x.shape.rank - 1], [0]])
            if inner.use_bias:
                y = t.nn.bias_add(y, inner.bias)
            return inner.activation(y) if inner.activation is not None else y

        def init_scales(self):
            """scale <- max|w| / qmax per channel of the current kernels (= PTQ per-channel)."""
            qmax = 2 ** (self.bits - 1) - 1
            for attr, s in self.scales.items():
                w = getattr(self.inner, attr).numpy()
                red = tuple(i for i in range(w.ndim) if i != w.ndim + _channel_axis(attr))
                m = np.max(np.abs(w), axis=red).reshape(s.shape)
                s.assign(np.where(m > 0, m / qmax, 1.0).astype(np.float32))

    _CLS = QATWeights
    return _CLS


def make_wrap(bits: int):
    """(``wrap`` hook for ``load_model``, list that receives the wrappers in core-layer order)."""
    if bits not in BITS:
        raise ConfigError(f"QAT bits {bits!r} not one of {', '.join(map(str, BITS))}")

    cls = qat_layer_class()
    return collecting_wrap(lambda layer: cls(layer, bits))


def build_qat(model: str = "nrx-rt", weights="auto", bits: int = 4):
    """NRX ``model`` with :class:`QATWeights` on every core layer, warm-started from ``weights``
    (see ``resolve_weights``) and scales initialised to the per-channel PTQ scales.
    Returns (net, wrappers)."""
    wrap, made = make_wrap(bits)
    net = load_model(model, weights, wrap=wrap)
    for w in made:
        w.init_scales()
    net.qat_wrappers = made
    return net, made


def bake(net) -> tuple[list, list]:
    """(weights, scales) of a QAT net: float32 arrays in reference ``get_core_weights()`` order
    with every kernel replaced by its fake-quantized value, and per wrapper a dict kernel-name ->
    float32 scale array. The kernels are exactly ``code * scale`` with integer codes."""
    wrappers = getattr(net, "qat_wrappers", None)
    if not wrappers:
        raise ConfigError("bake: model has no QAT wrappers (build it with build_qat)")

    out, scales = [], []
    for w in wrappers:
        q = {a: w.quantized(a).numpy() for a in w.scales}
        for v in _own_vars(w.inner):
            attr = v.name.split("/")[-1].split(":")[0]
            out.append(q[attr] if attr in q else v.numpy())
        scales.append({a: np.maximum(s.numpy(), _EPS) for a, s in w.scales.items()})
    return out, scales


@dataclass
class QATResult:
    """``net`` the trained QAT model, ``weights``/``scales`` from :func:`bake`, ``train`` the
    training summary, ``seconds`` wall time of the fine-tune."""
    net: object
    weights: list
    scales: list
    train: dict
    seconds: float


def finetune(model: str = "nrx-rt", bits: int = 4, steps: int = 200, batch_size: int = 16,
             learning_rate: float = 1e-4, seed: int = 0, init: str = "reference", num_prbs: int = 4,
             work_dir=None, progress: bool = False) -> QATResult:
    """QAT fine-tune of NRX ``model`` at ``bits`` with :func:`effinrx.training.nrx.train` (BCE + channel
    MSE on UMi training slots, Adam ``learning_rate``), warm-started from ``init``."""
    import tempfile
    from pathlib import Path

    recipe = TrainRecipe(model=model, steps=int(steps), batch_size=int(batch_size),
                         learning_rate=float(learning_rate), num_prbs=int(num_prbs), seed=int(seed),
                         init=init, ckpt_every=10**9, log_every=10)
    recipe.validate()
    net, _ = build_qat(model, init, bits)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="effinrx-qat-") as tmp:
        out = Path(work_dir) if work_dir is not None else Path(tmp)
        summary = train(recipe, out, resume=False, net=net, progress=progress)
    secs = time.perf_counter() - t0
    ws, sc = bake(net)
    return QATResult(net, ws, sc, summary, round(secs, 1))
