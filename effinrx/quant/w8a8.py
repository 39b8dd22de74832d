"""Weights + activations fake-quant (W8A8) of the NRX via the ``wrap`` hook of ``build_cgnn``.

Each Dense/SeparableConv2D is wrapped in :class:`ActQuant` that fake-quantizes the layer INPUT
with a static per-tensor scale (int8 symmetric or fp8_e4m3), the way TensorRT runs an explicit
Q/DQ network; kernels are quantized with :mod:`effinrx.quant.ptq` (int8 per-channel / fp8).
Calibration: run the wrapped model on simulated slots in ``mode="calibrate"``; each wrapper keeps
max|x| and a sample of |x| for a percentile; :func:`freeze` turns those into scales.

Mixed precision: ``keep_float`` names core layers (the unit names of
:func:`effinrx.quant.units.layer_units`, e.g. ``cgnn_it0/upd0``) whose kernels stay fp32 and
whose input is never quantized (they are still calibrated, so every layer has a scale). The
sensitivity sweep finds such a layer: on NRX-RT, W8A8 int8 loses almost everything in
``cgnn_it0/upd0``.
"""
from __future__ import annotations

import numpy as np

from effinrx.errors import ConfigError, WeightsError
from effinrx.quant.fakequant import fake_quant_float, fake_quant_int
from effinrx.quant.formats import MINIFLOATS
from effinrx.quant.ptq import quantize_model
from effinrx.quant.units import layer_units
from effinrx.receivers.nrx import load_model
from effinrx.receivers.nrx_layers import collecting_wrap

#: w8a8 format -> (activation format, weight PTQ method)
FORMATS = {"int8": ("int8", "int8-pc"), "fp8": ("fp8_e4m3", "fp8")}
_SAMPLE = 4096  # |x| values kept per calibration batch for the percentile


def _layer_class():
    from effinrx._tf import keras

    k = keras()

    class ActQuant(k.layers.Layer):
        """Wraps ``inner``; input x float32 (any shape) -> inner(fake_quant(x)). Modes:
        "float" (pass-through), "calibrate" (record |x| statistics), "quant"."""

        def __init__(self, inner, fmt: str, **kw):
            super().__init__(**kw)
            self.inner, self.fmt, self.mode = inner, fmt, "float"
            self.amax, self.samples, self.scale = 0.0, [], None
            self.keep_float = False  # mixed precision: never quantize this layer's input

        def call(self, x, training=None):
            if self.mode == "calibrate":
                a = np.abs(x.numpy()).ravel()
                self.amax = max(self.amax, float(a.max(initial=0.0)))
                rng = np.random.default_rng(len(self.samples))
                self.samples.append(rng.choice(a, size=min(_SAMPLE, a.size), replace=False))
            elif self.mode == "quant" and not self.keep_float:
                if self.scale is None:
                    raise ConfigError(f"{self.name}: W8A8 layer used before calibration/freeze")
                if self.fmt == "int8":
                    x = fake_quant_int(x, self.scale, bits=8, narrow=True)
                else:
                    x = fake_quant_float(x, self.fmt, self.scale)
            return self.inner(x)

        def freeze(self, method: str = "max", percentile: float = 99.99):
            if not self.samples:
                raise ConfigError(f"{self.name}: no calibration data (run mode='calibrate' first)")
            amax = self.amax if method == "max" else float(
                np.percentile(np.concatenate(self.samples), percentile))
            amax = max(amax, 1e-8)
            top = 127.0 if self.fmt == "int8" else MINIFLOATS[self.fmt].max_finite
            self.scale = amax / top

    return ActQuant


def build_w8a8(model: str = "nrx-rt", weights="auto", fmt: str = "int8", quantize_weights: bool = True,
               keep_float=()):
    """NRX with activation quantizers on every core layer and PTQ weights (``quantize_weights``
    False: the weights stay as loaded, e.g. for the one-layer-at-a-time sensitivity sweep;
    ``keep_float``: layer names left fp32, see the module docstring).

    Returns (net, wrappers, ptq_rows). The wrappers start in mode "float"; call
    :func:`calibrate` then :func:`set_mode` (net, "quant").
    """
    if fmt not in FORMATS:
        raise ConfigError(f"w8a8 format {fmt!r} not one of {', '.join(FORMATS)}")
    afmt, wmethod = FORMATS[fmt]

    cls = _layer_class()
    wrap, wrappers = collecting_wrap(lambda layer: cls(layer, afmt))

    net = load_model(model, weights, wrap=wrap)
    kept = mark_keep_float(net, wrappers, keep_float)
    rows = []
    if quantize_weights:
        w0 = net.get_core_weights()
        wq, rows = quantize_model(net, wmethod)
        for i in kept:
            wq[i] = w0[i]
        net.set_core_weights(wq, source=f"ptq-{wmethod}" + (f"-keep{len(keep_float)}" if kept else ""))
    net.act_quantizers = wrappers
    return net, wrappers, rows


def mark_keep_float(net, wrappers, names) -> list:
    """Set ``keep_float`` on the wrappers of the named core layers; return the core-weight indices
    of their kernels (to leave fp32). ConfigError names unknown layers and lists the valid ones."""
    names = list(names or ())
    if not names:
        return []
    units = {u.name: u for u in layer_units(net, "layer")}
    bad = [n for n in names if n not in units]
    if bad:
        raise ConfigError(f"keep-float layer(s) {', '.join(map(repr, bad))} not in model '{net.cfg.name}' "
                          f"(layers: {', '.join(units)})")
    idx = []
    for n in names:
        wrappers[units[n].layer].keep_float = True
        idx += units[n].indices
    return idx


def restore_w8a8(model, weights, fmt: str, scales, keep_float=()):
    """Rebuild a calibrated W8A8 NRX from saved state, without requantizing or recalibrating.

    ``weights``: the already weight-quantized float32 arrays (reference order, as saved from a
    calibrated model), ``scales``: one positive activation scale per core layer, in core-layer
    order (:func:`calibrate`'s return value). Returns (net, wrappers) with the wrappers in mode
    "quant". WeightsError when the number of scales does not fit the model.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"w8a8 format {fmt!r} not one of {', '.join(FORMATS)}")

    cls = _layer_class()
    wrap, wrappers = collecting_wrap(lambda layer: cls(layer, FORMATS[fmt][0]))

    net = load_model(model, weights, wrap=wrap)
    mark_keep_float(net, wrappers, keep_float)
    if len(scales) != len(wrappers):
        raise WeightsError(f"w8a8: {len(scales)} activation scales, model '{net.cfg.name}' has "
                           f"{len(wrappers)} quantized layers")
    for w, s in zip(wrappers, scales):
        w.scale = float(s)
    set_mode(wrappers, "quant")
    net.act_quantizers = wrappers
    return net, wrappers


def set_mode(wrappers, mode: str) -> None:
    if mode not in ("float", "calibrate", "quant"):
        raise ConfigError(f"w8a8 mode {mode!r} not one of float, calibrate, quant")
    for w in wrappers:
        w.mode = mode


def calibrate(wrappers, run_batches, method: str = "max", percentile: float = 99.99) -> list[float]:
    """``run_batches()`` runs the wrapped model EAGERLY on calibration data; then freeze.
    Returns the activation scales (one per core layer)."""
    if method not in ("max", "percentile"):
        raise ConfigError(f"calibration method {method!r} not one of max, percentile")
    set_mode(wrappers, "calibrate")
    run_batches()
    for w in wrappers:
        w.freeze(method, percentile)
    set_mode(wrappers, "quant")
    return [float(w.scale) for w in wrappers]
