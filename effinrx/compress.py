"""Compressed-model artifacts: a compressed NRX saved with its recipe, reloaded into the same receiver.

An artifact is our weight format (:func:`effinrx.weights.save_npz`): ``<name>.npz`` holds the core
weights (float32, reference ``get_weights()`` order, already compressed: quantize-dequantized or
pruned) and ``<name>.json`` the sidecar with ``config`` (the NRX config), ``format``, ``git_hash`` and
a ``compression`` block (:class:`Recipe`)::

    {"kind": "ptq" | "w8a8" | "qat" | "pruned" | "distilled", "version": 1, "model": "nrx-rt",
     "base_weights": "reference", "source_weights": "<what the uncompressed weights were>",
     "params": {...kind-specific...}}

``params``: ptq ``{"method", "keep_depthwise", "keep_first_last"}``; w8a8 ``{"fmt", "act_fmt",
"weight_method", "calib": {...}, "scales": [float, one per core layer in order], "scale_blocks":
[block name of each core layer], "keep_float": [core layer names left fp32]}``; qat ``{"bits", "steps", "batch_size", "learning_rate", "seed",
"final_bce", "seconds", "scales": [{"index": i, "name": ..., "scale": nested list}]}`` (the learned
per-channel scales of every quantized kernel, broadcastable against core weight ``i``); pruned: the :class:`~effinrx.prune.recipe.PruneRecipe` dict and
the saved overall sparsity; distilled: the training recipe (and ``distill.json`` when present).

:func:`load_artifact` rebuilds exactly the saved receiver: the weights are assigned as saved (never
requantized; QAT kernels are checked to lie on their saved integer grid) and W8A8 gets its activation wrappers back with the saved scales in mode "quant" (no
recalibration). Bad input raises :class:`~effinrx.errors.WeightsError` / ``ConfigError`` naming the
file and the key.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from effinrx import weights as W
from effinrx.errors import ConfigError, WeightsError
from effinrx.link.umi import UMiSlotSource
from effinrx.prune.recipe import variable_names
from effinrx.quant.formats import int_range
from effinrx.quant.ptq import METHODS, quantize_model
from effinrx.quant.qat import BITS, finetune
from effinrx.quant.receivers import w8a8_receiver
from effinrx.quant.w8a8 import FORMATS, restore_w8a8
from effinrx.receivers.nrx import NRXReceiver, load_model
from effinrx.receivers.nrx_layers import NRX_MODELS, _own_vars, get_config

KINDS = ("ptq", "w8a8", "qat", "pruned", "distilled")
FORMAT = "effinrx-nrx-v1"
VERSION = 1


@dataclass
class Recipe:
    """The ``compression`` block of an artifact sidecar (see the module docstring)."""

    kind: str
    model: str
    params: dict = field(default_factory=dict)
    base_weights: str = "reference"
    source_weights: str = ""
    version: int = VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any, where: str = "compression") -> "Recipe":
        if not isinstance(d, dict):
            raise WeightsError(f"{where}: expected a JSON object, got {type(d).__name__}")
        kind = d.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{where}: unknown compression kind {kind!r} (known: {', '.join(KINDS)})")
        model = d.get("model")
        if model not in NRX_MODELS:
            raise WeightsError(f"{where}: key 'model' is {model!r}, expected nrx-rt or nrx-large")
        params = d.get("params", {})
        if not isinstance(params, dict):
            raise WeightsError(f"{where}: key 'params' is not an object")
        r = cls(kind=kind, model=model, params=params, base_weights=str(d.get("base_weights", "")),
                source_weights=str(d.get("source_weights", "")), version=int(d.get("version", VERSION)))
        r.validate(where)
        return r

    def validate(self, where: str = "compression") -> None:
        """Check the kind-specific ``params`` (types and the W8A8 scales)."""
        p = self.params
        if self.kind == "ptq":
            if p.get("method") not in METHODS:
                raise ConfigError(f"{where}: ptq method {p.get('method')!r} not one of {', '.join(METHODS)}")
        elif self.kind == "w8a8":
            if p.get("fmt") not in FORMATS:
                raise ConfigError(f"{where}: w8a8 fmt {p.get('fmt')!r} not one of {', '.join(FORMATS)}")
            sc = p.get("scales")
            if not isinstance(sc, list) or not sc:
                raise WeightsError(f"{where}: w8a8 needs params.scales, a list of activation scales")
            bad = [i for i, s in enumerate(sc)
                   if not isinstance(s, (int, float)) or not math.isfinite(s) or s <= 0]
            if bad:
                raise WeightsError(f"{where}: params.scales[{bad[0]}] = {sc[bad[0]]!r} is not a positive "
                                   f"finite number")
            kf = p.get("keep_float", [])
            if not isinstance(kf, list) or not all(isinstance(n, str) for n in kf):
                raise WeightsError(f"{where}: params.keep_float must be a list of layer names")
        elif self.kind == "qat":
            if p.get("bits") not in BITS:
                raise ConfigError(f"{where}: qat bits {p.get('bits')!r} not one of {', '.join(map(str, BITS))}")
            sc = p.get("scales")
            if not isinstance(sc, list) or not sc or not all(
                    isinstance(e, dict) and isinstance(e.get("index"), int) and "scale" in e for e in sc):
                raise WeightsError(f"{where}: qat needs params.scales, a list of {{index, name, scale}}")


# -- building compressed models ---------------------------------------------------------------

def compress_ptq(model: str, weights: str, method: str, keep_depthwise: bool = False,
                 keep_first_last: bool = False):
    """Weight-only PTQ of NRX ``model`` loaded from ``weights``. Returns (net, Recipe); the net holds
    the quantize-dequantized float32 kernels (biases float)."""
    net = load_model(model, weights)
    src = net.weights_source
    wq, _ = quantize_model(net, method, keep_depthwise=keep_depthwise, keep_first_last=keep_first_last)
    net.set_core_weights(wq, source=f"ptq-{method}")
    rec = Recipe("ptq", model, {"method": method, "keep_depthwise": bool(keep_depthwise),
                                "keep_first_last": bool(keep_first_last)}, str(weights), src)
    rec.validate()
    return net, rec


def compress_w8a8(model: str, weights: str, fmt: str, source=None, calib: str = "max",
                  percentile: float = 99.99, slots: int = 16, ebno_db=(-2.0, 2.0, 7.0), num_prbs: int = 4,
                  seed: Optional[int] = 0, keep_float=()):
    """W8A8 fake-quant via :func:`effinrx.quant.receivers.w8a8_receiver`, calibrated on ``slots`` slots
    per Eb/N0 of ``ebno_db`` from ``source`` (default ``UMiSlotSource(num_prbs, 2)``, the training
    channel; TF's, numpy's and Sionna's seeds are set to ``seed`` first unless None). Returns (net, Recipe) with
    the scales in core-layer order."""
    if fmt not in FORMATS:
        raise ConfigError(f"w8a8 format {fmt!r} not one of {', '.join(FORMATS)}")
    if calib not in ("max", "percentile"):
        raise ConfigError(f"calibration method {calib!r} not one of max, percentile")
    if seed is not None:
        from effinrx._tf import set_seeds, tf

        tf()
        # TF and Sionna generators both: the calibration slots (and so the scales) must not depend
        # on what ran before in the process
        set_seeds(int(seed))
    if source is None:
        source = UMiSlotSource(num_prbs, 2)
    rx = w8a8_receiver(model, fmt, source, weights=weights, num_prbs=num_prbs,
                       ebno_db=tuple(ebno_db), slots=int(slots), method=calib, percentile=percentile,
                       keep_float=tuple(keep_float))
    net = rx.net
    afmt, wmethod = FORMATS[fmt]
    params = {"fmt": fmt, "act_fmt": afmt, "weight_method": wmethod,
              "calib": {"method": calib, "percentile": float(percentile) if calib == "percentile" else None,
                        "slots_per_ebno": int(slots), "ebno_db": [float(e) for e in ebno_db],
                        "num_prbs": int(num_prbs), "source": type(source).__name__, "seed": seed},
              "scales": [float(w.scale) for w in net.act_quantizers],
              "scale_blocks": list(net.block_of), "keep_float": list(keep_float)}
    rec = Recipe("w8a8", model, params, str(weights), str(getattr(net, "weights_source", weights)))
    rec.validate()
    return net, rec


def compress_qat(model: str, weights: str, bits: int, steps: int = 200, batch_size: int = 16,
                 learning_rate: float = 1e-4, seed: int = 0, progress: bool = False):
    """QAT fine-tune (:func:`effinrx.quant.qat.finetune`) of NRX ``model`` warm-started from
    ``weights``; returns (plain net holding the baked kernels ``code * scale``, Recipe)."""
    res = finetune(model, bits=bits, steps=steps, batch_size=batch_size, learning_rate=learning_rate,
                   seed=seed, init=weights, progress=progress)
    train = {"steps": int(steps), "batch_size": int(batch_size), "learning_rate": float(learning_rate),
             "seed": int(seed), "final_bce": res.train.get("final_bce"), "seconds": res.seconds}
    return qat_artifact(model, res.net, res.weights, res.scales, bits, weights, train)


def qat_artifact(model: str, qat_net, baked: list, scales: list, bits: int, weights: str,
                 train: Optional[dict] = None):
    """(plain net with ``baked`` weights, Recipe) of a trained QAT net (``bake`` output); the learned
    scales are stored by core-weight index so a reload can check every kernel's integer grid."""
    names, entries, i = variable_names(qat_net), [], 0
    for w, sc in zip(qat_net.qat_wrappers, scales):
        for v in _own_vars(w.inner):
            attr = v.name.split("/")[-1].split(":")[0]
            if attr in sc:
                entries.append({"index": i, "name": names[i], "scale": sc[attr].tolist()})
            i += 1
    if i != len(baked):
        raise WeightsError(f"QAT net has {i} core arrays, baked weights {len(baked)}")
    net = load_model(model, list(baked))
    rec = Recipe("qat", model, {"bits": int(bits), **(train or {}), "scales": entries}, str(weights),
                 str(getattr(qat_net, "weights_source", weights)))
    rec.validate()
    check_qat_grid(baked, rec)
    return net, rec


def check_qat_grid(ws: list, rec: Recipe, where: str = "qat artifact") -> None:
    """WeightsError unless every scaled kernel of ``ws`` is ``code * scale`` with integer codes in the
    signed ``bits`` range (what QAT trained; a retouched or re-quantized file fails here)."""
    import numpy as np

    qmin, qmax = int_range(int(rec.params["bits"]))
    for e in rec.params["scales"]:
        i = e["index"]
        if not 0 <= i < len(ws):
            raise WeightsError(f"{where}: scales index {i} outside the {len(ws)} core arrays")
        s = np.asarray(e["scale"], np.float64)
        try:
            codes = np.asarray(ws[i], np.float64) / np.maximum(s, 1e-30)
        except ValueError:
            raise WeightsError(f"{where}: scale of {e.get('name', i)} has shape {s.shape}, not broadcastable "
                               f"to kernel {np.shape(ws[i])}") from None
        off = float(np.max(np.abs(codes - np.round(codes)))) if codes.size else 0.0
        if off > 1e-3 or codes.min() < qmin - 1e-3 or codes.max() > qmax + 1e-3:
            raise WeightsError(f"{where}: kernel {e.get('name', i)} is not on its {rec.params['bits']}-bit grid "
                               f"(max |code - round| {off:.3g}, codes {codes.min():.3g}..{codes.max():.3g})")


def recipe_of_checkpoint(path, kind: str) -> tuple[list, Recipe]:
    """(weights, Recipe) for an existing pruned (``effinrx prune``) or distilled (``effinrx train
    --distill-from``) checkpoint ``path``: the recipe comes from its sidecar (distilled: plus the
    ``distill.json`` beside it); for pruned the sidecar's overall sparsity is checked against the
    weights."""
    if kind not in ("pruned", "distilled"):
        raise ConfigError(f"only pruned or distilled checkpoints can be wrapped, not {kind!r}")
    ws, meta = W.load_npz(path)
    side = Path(path).with_suffix(".json")
    model = (meta.get("config") or {}).get("name")
    if model not in NRX_MODELS:
        raise WeightsError(f"{side}: no NRX config (key 'config.name'); not an effinrx checkpoint")
    if kind == "pruned":
        if "prune_recipe" not in meta:
            raise WeightsError(f"{side}: no 'prune_recipe' (write pruned weights with effinrx prune)")
        import numpy as np

        saved = float((meta.get("sparsity") or {}).get("overall", float("nan")))
        total = sum(int(np.size(w)) for w in ws)
        got = sum(int(np.size(w) - np.count_nonzero(w)) for w in ws) / max(total, 1)
        if not abs(got - saved) <= 1e-6:
            raise WeightsError(f"{path}: overall sparsity {got:.6f} does not match the sidecar's "
                               f"sparsity.overall {saved}")
        params = {"prune_recipe": meta["prune_recipe"], "sparsity_overall": got}
    else:
        if "recipe" not in meta:
            raise WeightsError(f"{side}: no training 'recipe' (write it with effinrx train)")
        dj = Path(path).parent / "distill.json"
        try:
            distill = json.loads(dj.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise WeightsError(f"{dj}: the distillation settings 'effinrx train --distill-from' writes "
                               f"beside the checkpoint are missing or unreadable ({type(e).__name__})") from None
        params = {"train_recipe": meta["recipe"], "step": meta.get("step"), "distill": distill}
    return ws, Recipe(kind, model, params, str(path), str(path))


# -- saving and loading -------------------------------------------------------------------------

def save_artifact(path, net, recipe: Recipe, extra: Optional[dict] = None) -> Path:
    """Write ``net``'s core weights and ``recipe`` to ``<path>.npz`` + ``<path>.json`` (atomic).
    For W8A8 the scales in ``recipe.params`` must be the net's own. Returns the ``.npz`` path."""
    recipe.validate()
    if recipe.model != net.cfg.name:
        raise WeightsError(f"recipe is for model '{recipe.model}', the net is '{net.cfg.name}'")
    if recipe.kind == "w8a8":
        live = [float(w.scale) for w in getattr(net, "act_quantizers", [])]
        if live != [float(s) for s in recipe.params["scales"]]:
            raise WeightsError("w8a8 recipe scales differ from the net's activation quantizers")
    meta = {"format": FORMAT, "config": net.cfg.to_dict(), "compression": recipe.to_dict(), **(extra or {})}
    return W.save_npz(path, net.get_core_weights(), meta)


def read_recipe(path) -> tuple[list, Recipe, dict]:
    """(weights, Recipe, sidecar) of an artifact, validated but not built. A checkpoint of
    ``effinrx prune`` without a ``compression`` block is read as kind "pruned"."""
    p = Path(path)
    side = (p.with_suffix("") if p.suffix == ".npz" else p).with_suffix(".json")
    ws, meta = W.load_npz(p)
    if not side.is_file():
        raise WeightsError(f"{p} has no sidecar {side}: not a compressed-model artifact "
                           f"(write one with effinrx compress)")
    if "compression" in meta:
        rec = Recipe.from_dict(meta["compression"], where=f"{side}: compression")
    elif "prune_recipe" in meta:
        cfg = meta.get("config") or {}
        rec = Recipe("pruned", cfg.get("name") or meta["prune_recipe"].get("model", ""),
                     {"prune_recipe": meta["prune_recipe"]}, str(p), str(p))
        rec = Recipe.from_dict(rec.to_dict(), where=f"{side}: prune_recipe")
    else:
        raise WeightsError(f"{side}: no 'compression' block (write the artifact with effinrx compress)")
    cfg = meta.get("config")
    if cfg is not None and cfg != get_config(rec.model).to_dict():
        raise WeightsError(f"{side}: key 'config' does not match model '{rec.model}' "
                           f"(config name {cfg.get('name')!r})")
    return ws, rec, meta


def load_artifact(path, model: Optional[str] = None):
    """Rebuild the compressed NRX of artifact ``path``. Returns (net, Recipe, sidecar dict).

    ``model``: when given, the artifact must be of this model (WeightsError otherwise). PTQ, pruned
    and distilled nets are plain CGNNs with the saved weights; W8A8 nets carry ``act_quantizers``
    in mode "quant" with the saved scales."""
    ws, rec, meta = read_recipe(path)
    if model is not None and model != rec.model:
        raise WeightsError(f"{path} is a compressed '{rec.model}', not '{model}'")
    if rec.kind == "qat":
        check_qat_grid(ws, rec, where=str(path))
    if rec.kind == "w8a8":
        blocks = rec.params.get("scale_blocks")
        net, _ = restore_w8a8(rec.model, ws, rec.params["fmt"], rec.params["scales"],
                              keep_float=rec.params.get("keep_float", []))
        if blocks is not None and list(blocks) != list(net.block_of):
            raise WeightsError(f"{path}: params.scale_blocks do not match the layers of '{rec.model}'")
    else:
        net = load_model(rec.model, ws)
    net.weights_source = f"{rec.kind}:{Path(path).name}"
    return net, rec, meta


def artifact_receiver(path, num_prbs: int = 4, model: Optional[str] = None):
    """:class:`~effinrx.receivers.nrx.NRXReceiver` on :func:`load_artifact` (LLRs float32)."""
    net, rec, _ = load_artifact(path, model)
    return NRXReceiver(rec.model, net=net, num_prbs=num_prbs, name=f"{rec.model}-{describe(rec)}")


def describe(rec: Recipe) -> str:
    """Short label, e.g. "ptq-int8-pc", "w8a8-int8", "pruned-magnitude-2:4"."""
    p = rec.params
    if rec.kind == "ptq":
        return f"ptq-{p['method']}"
    if rec.kind == "w8a8":
        kf = p.get("keep_float") or []
        return f"w8a8-{p['fmt']}" + (f"-keep{len(kf)}" if kf else "")
    if rec.kind == "qat":
        return f"qat-int{p['bits']}-pc"
    if rec.kind == "pruned":
        pr = p.get("prune_recipe", {})
        return f"pruned-{pr.get('method', '?')}-{pr.get('pattern', '?')}"
    return rec.kind


def is_artifact(path) -> bool:
    """True when ``path`` names an ``.npz`` whose sidecar has a ``compression`` block or a prune recipe."""
    p = Path(str(path))
    if p.suffix != ".npz":
        return False
    side = p.with_suffix(".json")
    try:
        meta = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(meta, dict) and ("compression" in meta or "prune_recipe" in meta)
