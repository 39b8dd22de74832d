"""The ONNX files the latency tables time: fp32 export, ModelOpt Q/DQ (int8/int4/fp8), the ORT
integer rewrite (int8-fused), a 2:4-pruned export, and the TensorRT build options of each variant.
Cached on disk per model, PRBs and precision; calibrated on simulated UMi slots."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from effinrx.errors import ConfigError
from effinrx.export import modelopt as mo
from effinrx.export.onnx import export_nrx_onnx, slot_to_inputs
from effinrx.export.ort_qdq import tune_for_ort
from effinrx.link.umi import UMiSlotSource
from effinrx.prune.masks import m_by_n_mask
from effinrx.prune.recipe import prunable, variable_names
from effinrx.receivers.nrx import load_model


def simulated_calibration(prbs: int, n_slots: int = 16, ebno_db=(-2.0, 7.0), seed: int = 7) -> dict:
    """Wrapper inputs of ``n_slots`` simulated UMi slots (both UEs active), stacked on axis 0.
    Memoized per arguments (building int8 and then int8-fused used to simulate them twice); the
    arrays are read-only and each call gets its own dict."""
    return dict(_calibration(int(prbs), int(n_slots), tuple(float(e) for e in ebno_db), int(seed)))


@functools.lru_cache(maxsize=4)
def _calibration(prbs: int, n_slots: int, ebno_db: tuple, seed: int) -> dict:
    from effinrx._tf import set_seeds

    set_seeds(seed)
    slot = UMiSlotSource(num_prbs=prbs)(n_slots, ebno_db, num_active=2)
    y = slot.y.numpy()
    per = [slot_to_inputs(y[i:i + 1], prbs) for i in range(n_slots)]
    out = {k: np.concatenate([p[k] for p in per], axis=0) for k in per[0]}
    for a in out.values():
        a.flags.writeable = False
    return out



ORT_PRECISIONS = ("fp32", "int8", "int8-fused", "int4", "fp8")


def ort_model_path(model: str, precision: str, prbs: int, folder: str | Path, method: str = "max",
                   weights="auto") -> Path:
    """Export (fp32) and, for int8/int4/fp8, ModelOpt-quantize the NRX ONNX into ``folder`` (cached on disk).

    ``int8`` is ModelOpt's TensorRT-style Q/DQ as is; ``int8-fused`` is the same model after
    :func:`effinrx.export.ort_qdq.tune_for_ort` (weights pre-quantized, uint8 after Relu, the
    depthwise Convs ModelOpt skips calibrated here, 7-bit pointwise weights) so that ONNX Runtime
    CPU runs every Conv as QLinearConv without saturating. fp8 is built for coverage checks only
    (ORT CPU cannot run FP8 Q/DQ). ``weights`` as for ``resolve_weights``; the files are named
    without them, so give each weights choice its own ``folder``.
    """
    if precision not in ORT_PRECISIONS:
        raise ConfigError(f"precision {precision!r} has no ONNX model path here; expected one of {ORT_PRECISIONS}")
    folder = Path(folder)
    fp32 = folder / f"{model}_{prbs}prb_fp32.onnx"
    if not fp32.exists():
        export_nrx_onnx(model, weights, prbs, fp32)
    if precision == "fp32":
        return fp32
    if precision == "int8-fused":
        src = ort_model_path(model, "int8", prbs, folder, method, weights)
        out = src.with_name(src.stem + "_ortfused2.onnx")  # 2: rewrite of 2026-11-25 (not the exact one)
        if not out.exists():
            tune_for_ort(src, out, calibration=simulated_calibration(prbs))
        return out
    out = folder / f"{model}_{prbs}prb_{precision}_{method if precision != 'int4' else 'awq_clip'}.onnx"
    if not out.exists():
        calib = simulated_calibration(prbs)
        mo.quantize(fp32, out, precision, calib, method=None if precision == "int4" else method)
    return out




#: TensorRT variants: fp32/fp16 from the plain ONNX (fp16: 10.x FP16 flag, 11.x AutoCast), fp8/int8
#: from ModelOpt's Q/DQ ONNX (strongly typed), fp16-2:4 from a 2:4-pruned export with SPARSE_WEIGHTS
TRT_PRECISIONS = ("fp32", "fp16", "fp8", "int8", "fp16-2:4")


def pruned_2to4_onnx(model: str, prbs: int, folder: str | Path) -> Path:
    """ONNX of ``model`` with every pointwise/Dense kernel magnitude-pruned 2:4 along its input
    channels (the layout TensorRT's sparse kernels take). For latency only: not fine-tuned, so its
    error rate is not the pruning claims' (P1-P7)."""
    out = Path(folder) / f"{model}_{prbs}prb_fp32_2to4.onnx"
    if out.exists():
        return out

    net = load_model(model, "auto")
    prune_2to4(net)
    return export_nrx_onnx(model, net, prbs, out)


def prune_2to4(net) -> list[str]:
    """Zero the 2 smallest |w| of every 4 along the input channels (axis -2: pointwise
    [1, 1, Cin, Cout], Dense [Cin, Cout]) of every prunable kernel of ``net``, in place; returns the
    names of the kernels pruned."""
    done = []
    for name, v in zip(variable_names(net), net.core_variables()):
        if prunable(name):
            w = v.numpy()
            v.assign(w * m_by_n_mask(w, 2, 4, axis=-2))
            done.append(name)
    return done


def trt_variant(model: str, precision: str, prbs: int, folder: str | Path) -> dict:
    """ONNX file and TensorRT build options of a :data:`TRT_PRECISIONS` variant."""
    if precision not in TRT_PRECISIONS:
        raise ConfigError(f"precision {precision!r}: TensorRT variants are {TRT_PRECISIONS}")
    if precision == "fp16-2:4":
        return {"path": pruned_2to4_onnx(model, prbs, folder), "precision": "fp16", "explicit_qdq": False,
                "sparse": True}
    qdq = precision in ("fp8", "int8")
    return {"path": ort_model_path(model, precision if qdq else "fp32", prbs, folder), "precision": precision,
            "explicit_qdq": qdq, "sparse": False}


#: precisions of the deployment-path receivers ``<model>-ort-<precision>``
ENGINE_PRECISIONS = ("fp32", "int8", "int8-fused")
_ENGINE_FOLDERS: dict = {}


def engine_spec(spec: str) -> tuple[str, str] | None:
    """``"nrx-rt-ort-int8"`` -> ``("nrx-rt", "int8")``; None for a name without ``-ort-``. A bad
    precision is a ConfigError naming the valid ones."""
    model, sep, prec = str(spec).strip().partition("-ort-")
    if not sep:
        return None
    if prec not in ENGINE_PRECISIONS or not model.startswith("nrx-"):
        raise ConfigError(f"unknown receiver {spec!r}: the deployment path is <nrx-rt|nrx-large>-ort-<precision>, "
                          f"precision one of {', '.join(ENGINE_PRECISIONS)}")
    return model, prec


def make_receiver(spec: str, scenario, weights="auto", folder: str | Path | None = None):
    """Receiver ``spec`` for ``scenario``: a registry name (:func:`effinrx.receivers.registry.make`),
    or the deployment path ``<model>-ort-fp32|int8|int8-fused``: the NRX exported to ONNX (int8:
    ModelOpt Q/DQ as written, or rewritten for ORT's integer kernels, :func:`ort_model_path`) and run
    by ONNX Runtime CPU slot by slot inside the link loop
    (:class:`effinrx.engines.receiver.EngineNRXReceiver`, named ``spec``). Those names live here,
    above the registry, because they need the export and the engines; the models are built in one
    temporary folder per weights choice, removed when the process exits, or in ``folder`` (kept; its
    models are reused, so give it to one weights choice only)."""
    from effinrx.receivers.registry import make

    parsed = engine_spec(spec)
    if parsed is None:
        return make(spec, scenario, weights)
    from effinrx.engines.ort import OrtEngine
    from effinrx.engines.receiver import EngineNRXReceiver
    from effinrx.receivers.nrx import NRXReceiver

    model, prec = parsed
    tf_rx = NRXReceiver(model, weights, num_prbs=scenario.num_prbs, num_tx=scenario.num_tx)  # checks the model
    where = _engine_folder(str(weights)) if folder is None else Path(folder)
    path = ort_model_path(model, prec, scenario.num_prbs, where, weights=weights)
    return EngineNRXReceiver(OrtEngine(path), tf_rx, scenario.num_prbs, str(spec).strip())


def _engine_folder(weights: str) -> Path:
    # ort_model_path names files by model, PRBs and precision only: one folder per weights choice
    if weights not in _ENGINE_FOLDERS:
        import atexit
        import shutil
        import tempfile

        d = Path(tempfile.mkdtemp(prefix="effinrx-onnx-"))
        atexit.register(shutil.rmtree, d, True)
        _ENGINE_FOLDERS[weights] = d
    return _ENGINE_FOLDERS[weights]
