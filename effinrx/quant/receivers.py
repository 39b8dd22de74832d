"""Quantized NRX receivers ready for the link loop: weight-only PTQ and W8A8 fake-quant.

One place builds them, so the CLI, the benchmarks of RT and Large and the report run the same thing.
Both return an :class:`effinrx.receivers.nrx.NRXReceiver` (LLRs float32, same interface as fp32).
"""
from __future__ import annotations

from effinrx.errors import ConfigError
from effinrx.quant.formats import QuantSpec
from effinrx.quant.ptq import quantize_model
from effinrx.quant.shapes import nrx_inventory
from effinrx.quant.storage import storage_table
from effinrx.quant.w8a8 import build_w8a8, calibrate
from effinrx.receivers.nrx import NRXReceiver, load_model


def ptq_receiver(model: str, method: str, weights: str = "reference", num_prbs: int = 4):
    """NRX ``model`` ("nrx-rt" | "nrx-large") with kernels quantized by ``effinrx.quant.ptq`` ``method``
    (e.g. "fp16", "fp8", "int8-pc"); activations stay float32."""
    net = load_model(model, weights)
    wq, _ = quantize_model(net, method)
    net.set_core_weights(wq, source=f"ptq-{method}")
    return NRXReceiver(model, net=net, num_prbs=num_prbs, name=f"{model}-ptq-{method}")


def w8a8_receiver(model: str, fmt: str, source, weights: str = "reference", num_prbs: int = 4,
                  ebno_db=(-2.0, 2.0, 7.0), slots: int = 16, method: str = "max",
                  percentile: float = 99.99, keep_float=()):
    """NRX ``model`` with W8A8 fake-quant (``fmt`` "int8" | "fp8"), activation scales calibrated with
    ``method`` ("max" | "percentile" at ``percentile``) on ``slots`` slots per Eb/N0 of ``ebno_db``
    drawn from ``source`` (a ``link.umi.UMiSlotSource``: training-channel slots, never the
    evaluation slots). ``keep_float``: core layer names left fp32 (mixed precision, see
    :mod:`effinrx.quant.w8a8`)."""
    from effinrx._tf import eager

    net, ws, _ = build_w8a8(model, weights, fmt, keep_float=keep_float)
    tag = f"-keep{len(keep_float)}" if keep_float else ""
    rx = NRXReceiver(model, net=net, num_prbs=num_prbs, name=f"{model}-w8a8-{fmt}{tag}")

    def run():
        # calibration reads activations as numpy, so the model runs eagerly here
        with eager():
            for e in ebno_db:
                s = source(slots, e, num_active=2)
                rx.llr(s.y, s.no, active=s.active)

    calibrate(ws, run, method=method, percentile=percentile)
    return rx


#: compression tag (:func:`effinrx.receivers.registry.compression_tags`; "fp32" = uncompressed) ->
#: weight storage spec (format, granularity) of its kernels; biases stay fp32
VARIANT_STORAGE = {"fp32": ("fp32", "per-tensor"), "ptq-fp16": ("fp16", "per-tensor"),
                   "ptq-fp8": ("fp8_e4m3", "per-tensor"), "ptq-int8-pc": ("int8", "per-channel"),
                   "w8a8-fp8": ("fp8_e4m3", "per-tensor"), "w8a8-int8": ("int8", "per-channel"),
                   "w8a8-int8-keep1": ("int8", "per-channel")}
#: mixed-precision tags -> core layers (unit names, e.g. ``cgnn_it0/upd0``) whose kernels stay fp32
VARIANT_KEEP_FLOAT = {"w8a8-int8-keep1": ("cgnn_it0/upd0",)}


def variant_bytes(model: str, variant: str) -> int:
    """Exact weight bytes of ``model`` ("nrx-rt" | "nrx-large") stored as benchmark ``variant`` (a key
    of :data:`VARIANT_STORAGE`): packed data + per-tensor/per-channel scales + fp32 biases."""
    iters = {"nrx-rt": 2, "nrx-large": 8}
    if model not in iters:
        raise ConfigError(f"model {model!r} not one of {', '.join(iters)}")
    if variant not in VARIANT_STORAGE:
        raise ConfigError(f"variant {variant!r} has no storage spec; one of {', '.join(VARIANT_STORAGE)}")
    inv = nrx_inventory(iters[model])
    # unit name cgnn_it<i>/<layer> is inventory prefix cgnn<i>/<layer>
    kept = tuple(n.replace("cgnn_it", "cgnn", 1) + "/" for n in VARIANT_KEEP_FLOAT.get(variant, ()))
    fp32 = [t for t in inv if t[0].startswith(kept)]  # startswith(()) is False: nothing kept
    if kept and not fp32:
        raise ConfigError(f"variant {variant!r}: no {model} weights under {', '.join(kept)}")
    rest = [t for t in inv if not t[0].startswith(kept)]
    return (storage_table(rest, QuantSpec(*VARIANT_STORAGE[variant])).total_bytes
            + storage_table(fp32, QuantSpec("fp32", "per-tensor")).total_bytes)
