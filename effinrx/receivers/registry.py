"""Receivers by name: one registry and one vocabulary for the CLI, the benchmarks, goldens and report.

Names (``make(spec, scenario, weights)``):

* baselines ``ls-lmmse`` (alias ``ls``), ``lmmse-kbest`` (``lmmse``), ``perfect-kbest`` (``perfect``);
* the NRX ``nrx-rt`` / ``nrx-large`` with ``weights`` (auto | reference | packaged | PATH);
* a compressed NRX ``<model>-<tag>``, tag one of :func:`compression_tags`: ``ptq-<method>``
  (weight-only, :data:`effinrx.quant.ptq.METHODS`), ``w8a8-int8`` / ``w8a8-fp8`` (weights and
  activations; scales calibrated on UMi training slots, never on the evaluation slots),
  ``w8a8-int8-keep1`` (``cgnn_it0/upd0`` kept fp32);
* ``PATH.npz``: a checkpoint or a compressed artifact (``effinrx compress|prune|train``), run exactly
  as saved. An artifact given as ``weights`` of ``nrx-rt``/``nrx-large`` keeps its recipe too.

The receiver's ``name`` is its registry name (for artifacts ``<model>-<tag>`` from the recipe).
"""
from __future__ import annotations

from pathlib import Path

from effinrx import compress as C
from effinrx import weights as W
from effinrx.compress import compress_w8a8
from effinrx.errors import ConfigError, WeightsError
from effinrx.quant.ptq import METHODS
from effinrx.quant.receivers import ptq_receiver
from effinrx.receivers import classical
from effinrx.receivers.classical import BASELINES
from effinrx.receivers.nrx import NRXReceiver
from effinrx.receivers.nrx_layers import NRX_MODELS

ALIASES = {"ls": "ls-lmmse", "lmmse": "lmmse-kbest", "perfect": "perfect-kbest"}
W8A8_TAGS = {"w8a8-int8": ("int8", ()), "w8a8-fp8": ("fp8", ()),
             "w8a8-int8-keep1": ("int8", ("cgnn_it0/upd0",))}


def compression_tags() -> list[str]:
    """Every compressed-NRX tag the registry builds (``ptq-*`` then ``w8a8-*``)."""
    return [f"ptq-{m}" for m in METHODS] + list(W8A8_TAGS)


def names() -> list[str]:
    """Every valid receiver name (aliases and the ``PATH.npz`` form included), for error messages."""
    nrx = [f"{m}-{t}" for m in NRX_MODELS for t in compression_tags()]
    return sorted(BASELINES) + sorted(ALIASES) + list(NRX_MODELS) + nrx + ["PATH.npz"]


def split(spec: str) -> tuple[str, str | None]:
    """``"nrx-rt-ptq-fp16"`` -> ``("nrx-rt", "ptq-fp16")``; ``"nrx-rt"`` -> ``("nrx-rt", None)``."""
    for m in sorted(NRX_MODELS, key=len, reverse=True):
        if spec == m:
            return m, None
        if spec.startswith(m + "-"):
            return m, spec[len(m) + 1:]
    raise ConfigError(f"{spec!r} is not an NRX receiver name")


def make(spec: str, scenario, weights="auto"):
    """Build receiver ``spec`` (see the module docstring) for ``scenario``. ConfigError listing every
    valid name for an unknown one."""
    spec = str(spec).strip()
    if spec in classical.BASELINES or spec in ALIASES:
        return classical.make(ALIASES.get(spec, spec), scenario)
    if spec.endswith(".npz"):
        return _from_file(Path(spec), scenario)
    model = next((m for m in sorted(NRX_MODELS, key=len, reverse=True) if spec == m or spec.startswith(m + "-")),
                 None)
    tag = split(spec)[1] if model else None
    if model is None or (tag is not None and tag not in compression_tags()):
        raise ConfigError(f"unknown receiver {spec!r}; valid: {', '.join(names())}")
    _need_two_ues(spec, scenario)
    if weights is not None and str(weights).endswith(".npz"):
        if C.is_artifact(weights):
            if tag is not None:
                raise ConfigError(f"receiver {spec!r}: --weights {weights} is a compressed artifact; "
                                  f"give it as the receiver itself (--receiver {weights})")
            rx = _from_file(Path(weights), scenario)
            if not rx.name.startswith(model):
                raise ConfigError(f"receiver {spec!r}: artifact {weights} holds a different model ({rx.name})")
            return rx
    if tag is None:
        return NRXReceiver(model, weights, num_prbs=scenario.num_prbs, num_tx=scenario.num_tx)
    if tag.startswith("ptq-"):
        return ptq_receiver(model, tag[4:], weights, num_prbs=scenario.num_prbs)

    # the same calibration as 'effinrx compress --method w8a8:<fmt>' (UMi training slots, seed 0)
    fmt, keep = W8A8_TAGS[tag]
    net, _ = compress_w8a8(model, weights, fmt, num_prbs=scenario.num_prbs, keep_float=keep)
    return NRXReceiver(model, net=net, num_prbs=scenario.num_prbs, name=spec)


def _need_two_ues(spec, scenario) -> None:
    if scenario.num_tx != 2:
        raise ConfigError(f"receiver {spec!r}: the NRX is built for 2 UEs; use --num-tx 2")


def _from_file(path: Path, scenario):
    _need_two_ues(str(path), scenario)
    if not path.is_file():
        raise ConfigError(f"receiver {path}: file not found")
    if C.is_artifact(path):
        return C.artifact_receiver(path, num_prbs=scenario.num_prbs)
    try:
        ws, meta = W.load_npz(path)
    except WeightsError:
        names = _variable_names(path)
        if names is not None:
            W.load_npz(path, names)  # the same error, now naming the layer as 'effinrx export' does
        raise
    model = (meta.get("config") or {}).get("name") if isinstance(meta, dict) else None
    if model not in NRX_MODELS:
        raise ConfigError(f"receiver {path}: sidecar {path.with_suffix('.json')} has no NRX config "
                          f"(key 'config.name')")
    return NRXReceiver(model, ws, num_prbs=scenario.num_prbs, num_tx=scenario.num_tx, name=path.stem)


def _variable_names(path: Path):
    """The core variable names of the model a checkpoint's sidecar names (None if it names none).
    Built only on the error path: a network costs seconds, a NaN message needs the layer name."""
    import json

    try:
        model = json.loads(path.with_suffix(".json").read_text())["config"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if model not in NRX_MODELS:
        return None
    from effinrx.receivers.nrx import load_model

    return [v.name for v in load_model(model, None).core_variables()]
