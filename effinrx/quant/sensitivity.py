"""Per-layer quantization sensitivity of an NRX: quantize ONE layer at a time, keep the rest fp32.

For each *unit* (``unit="layer"``: one core layer, i.e. a Dense kernel or a SeparableConv2D's
depthwise + pointwise pair; ``unit="kernel"``: each kernel on its own) the unit's kernels are
quantize-dequantized with a weight-only PTQ method of :data:`effinrx.quant.ptq.METHODS` (biases
stay fp32, as in :mod:`effinrx.quant.ptq`), every other variable keeps its fp32 value, and the
model is evaluated on a fixed set of slots. Methods ``w8a8-int8`` / ``w8a8-fp8`` (:data:`ACT_METHODS`)
also quantize the unit's layer *input activations* (the W8A8 fake-quant of :mod:`effinrx.quant.w8a8`,
scales calibrated once on the fp32 model with training-channel slots) while every other layer runs
float: which layer's activations make W8A8 lose what weight-only int8 does not (claim Q3).

* LLR SQNR (dB) = 10 log10(sum l^2 / sum (l_q - l)^2) over all LLRs of active UEs, against the
  fp32 model's LLRs on the same slots (deterministic, cheap);
* optionally TB errors at one Eb/N0 on the same slots, counted by the Monte-Carlo engine
  (:func:`effinrx.link.montecarlo.simulate_many`: a TB is in error when any information bit is
  wrong) in the same run that produced the LLRs.

Rows are sorted by damage (lowest LLR SQNR first, or most TB errors with ``rank_by="tb"``); the
fp32 row and the all-layers-quantized row are reported beside them for reference.

The sweep core (:func:`sweep`) takes any ``llr_fn(net) -> list of arrays`` so it is testable on a
small CGNN with random inputs; :func:`nrx_sweep` evaluates the NRX on the engine's slots of the
evaluation scenario (``Scenario(num_prbs=...)``: NVIDIA's DoubleTDL), seeded like every other
TBLER of the suite, so one seed gives the slots ``effinrx simulate`` uses at that Eb/N0.

W8A8 int8 on NRX-RT: one layer (``cgnn_it0/upd0``, the first state update, whose input concatenates
state and messages) carries most of the loss; ``effinrx sensitivity --method w8a8-int8`` measures it
on the evaluation slots.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import numpy as np

from effinrx.errors import ConfigError
from effinrx.io import atomic_write_json, atomic_write_text
from effinrx.link.config import Scenario
from effinrx.link.montecarlo import simulate_many
from effinrx.link.plots import new_figure, save_png
from effinrx.link.umi import UMiSlotSource
from effinrx.quant.ptq import METHODS, quantize_weights
from effinrx.quant.units import layer_units
from effinrx.quant.w8a8 import FORMATS, build_w8a8, calibrate
from effinrx.receivers.nrx import NRXReceiver, get_config, load_model

RANK_BY = ("sqnr", "tb")


ACT_METHODS = {"w8a8-int8": "int8", "w8a8-fp8": "fp8"}  # -> effinrx.quant.w8a8.FORMATS key


@dataclass
class SensRow:
    """One row of the sweep. ``weight_sqnr_db``: SQNR of the unit's quantized kernels (all of
    them pooled); ``scale_max``: largest quantization scale among them (None for fp16);
    ``llr_sqnr_db``: LLR SQNR vs fp32 (inf = identical LLRs); ``tb_errors``/``tb_blocks``: TB
    counts (None when not measured)."""
    name: str
    block: str
    kinds: str
    params: int
    weight_sqnr_db: float
    scale_max: Optional[float]
    llr_sqnr_db: float
    tb_errors: Optional[int] = None
    tb_blocks: Optional[int] = None


@dataclass
class SweepResult:
    """``rows`` sorted by damage; ``fp32`` and ``all_layers`` reference rows; ``meta`` the setup."""
    method: str
    unit: str
    rows: list
    fp32: SensRow
    all_layers: SensRow
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        def row(r):
            d = asdict(r)
            for k in ("weight_sqnr_db", "llr_sqnr_db"):  # JSON has no inf
                if not math.isfinite(d[k]):
                    d[k] = "inf" if d[k] > 0 else "-inf"
            return d
        return {"method": self.method, "unit": self.unit, "meta": self.meta,
                "fp32": row(self.fp32), "all_layers": row(self.all_layers),
                "rows": [row(r) for r in self.rows]}


def quantize_unit(weights, names, indices, method: str):
    """Return (new weights, weight SQNR dB, max scale): a copy of ``weights`` (float32 arrays in
    reference order, ``names`` their variable names) where only the arrays at ``indices`` are
    quantize-dequantized with PTQ ``method``; everything else is returned unchanged (float32)."""
    out = [np.asarray(w, dtype=np.float32).copy() for w in weights]
    idx = list(indices)
    if not idx:
        return out, float("inf"), None
    wq, rows = quantize_weights([out[i] for i in idx], [names[i] for i in idx], method)
    sig = sum(float(np.sum(out[i].astype(np.float64) ** 2)) for i in idx)
    noise = sum(float(np.sum((out[i].astype(np.float64) - q) ** 2)) for i, q in zip(idx, wq))
    for i, q in zip(idx, wq):
        out[i] = q
    scales = [r.scale_max for r in rows if r.scale_max is not None]
    wsq = float("inf") if noise == 0.0 else 10.0 * math.log10(sig / noise) if sig > 0 else float("-inf")
    return out, wsq, (max(scales) if scales else None)


def llr_sqnr_db(ref: list, test: list) -> float:
    """SQNR (dB) of ``test`` LLRs vs ``ref`` LLRs: two lists of float arrays of equal shapes
    (e.g. one [B, U, N] array per batch), pooled over all entries. inf when identical."""
    if len(ref) != len(test):
        raise ConfigError(f"llr_sqnr_db: {len(ref)} reference batches vs {len(test)}")
    sig = sum(float(np.sum(np.asarray(r, np.float64) ** 2)) for r in ref)
    noise = sum(float(np.sum((np.asarray(r, np.float64) - np.asarray(t, np.float64)) ** 2))
                for r, t in zip(ref, test))
    if noise == 0.0:
        return float("inf")
    return float("-inf") if sig == 0.0 else 10.0 * math.log10(sig / noise)


def weight_method(method: str) -> str:
    """The weight PTQ method of sensitivity ``method`` (a PTQ method, or a W8A8 one of :data:`ACT_METHODS`)."""
    if method in ACT_METHODS:
        return FORMATS[ACT_METHODS[method]][1]
    if method not in METHODS:
        raise ConfigError(f"sensitivity method {method!r} not one of {', '.join([*METHODS, *ACT_METHODS])}")
    return method


def sweep(net, method: str, llr_fn: Callable, tb_fn: Optional[Callable] = None,
          unit: str = "layer", rank_by: str = "sqnr", progress: Optional[Callable] = None,
          act: Optional[Callable] = None) -> SweepResult:
    """One-layer-at-a-time sweep on ``net`` (a CGNN; its weights are restored on return).

    ``llr_fn(net) -> list of float arrays`` (LLRs of the fixed evaluation slots, same shapes every
    call); ``tb_fn(llrs) -> (errors, blocks)`` optional; ``progress(text)`` optional callback;
    ``act(layers)`` (needed by the W8A8 methods): make exactly the core layers in the set
    ``layers`` quantize their input activations, all others run float.
    """
    wmethod = weight_method(method)
    if method in ACT_METHODS and act is None:
        raise ConfigError(f"sensitivity method {method!r} quantizes activations: pass act=")
    if rank_by not in RANK_BY:
        raise ConfigError(f"rank_by {rank_by!r} not one of {', '.join(RANK_BY)}")
    if rank_by == "tb" and tb_fn is None:
        raise ConfigError("rank_by='tb' needs TB errors (tb_fn)")
    units = layer_units(net, unit)
    vs = net.core_variables()
    names = [v.name for v in vs]
    w0 = [v.numpy() for v in vs]

    def measure(name, blk, kinds, params, idx, ref, layers=()):
        wq, wsq, smax = quantize_unit(w0, names, idx, wmethod)
        net.set_core_weights(wq, source=f"sensitivity-{name}")
        if act is not None:
            act(set(layers))
        llrs = llr_fn(net)
        tb = tb_fn(llrs) if tb_fn is not None else (None, None)
        q = float("inf") if ref is None else llr_sqnr_db(ref, llrs)
        if progress:
            progress(f"{name}: LLR SQNR {q:.2f} dB" + ("" if tb[0] is None else f", TB {tb[0]}/{tb[1]}"))
        return SensRow(name, blk, kinds, params, wsq, smax, q, *tb), llrs

    try:
        fp32, ref = measure("fp32", "-", "-", 0, [], None)
        rows = [measure(u.name, u.block, "+".join(u.kinds), u.params, u.indices, ref, [u.layer])[0]
                for u in units]
        all_idx = [i for u in units for i in u.indices]
        every, _ = measure("all-layers", "-", "all", sum(u.params for u in units), all_idx, ref,
                           [u.layer for u in units])
    finally:
        net.set_core_weights(w0, source="sensitivity-restore")
        if act is not None:
            act(set())
    if rank_by == "tb":
        rows.sort(key=lambda r: (-r.tb_errors, r.llr_sqnr_db))
    else:
        rows.sort(key=lambda r: (r.llr_sqnr_db, -(r.tb_errors or 0)))
    return SweepResult(method, unit, rows, fp32, every, {"rank_by": rank_by, "units": len(units)})


def nrx_sweep(model: str = "nrx-rt", method: str = "int4", weights: str = "auto", ebno_db: float = 3.0,
              slots: int = 64, batch: int = 32, seed: int = 42, num_prbs: int = 4, tb: bool = True,
              unit: str = "layer", rank_by: str = "sqnr", progress: Optional[Callable] = None) -> SweepResult:
    """:func:`sweep` for NRX ``model`` ("nrx-rt" | "nrx-large") with ``weights`` (see
    :func:`effinrx.receivers.nrx.resolve_weights`; "auto" = reference when present, else packaged)
    on the slots of the evaluation scenario ``Scenario(num_prbs=num_prbs)`` at ``ebno_db``: every
    evaluation is one :func:`effinrx.link.montecarlo.simulate_many` run of the receiver (batches of
    ``batch``, ``ceil(slots / batch)`` of them, engine seed ``seed``, no early stop; 2 UEs per slot),
    whose LLRs give the SQNR and whose counts (the engine's error rule) the TB errors: the same
    slots for every unit. ``tb``: also report TB errors. ``meta`` records the setup and the seconds.

    W8A8 methods: activation scales are calibrated (max) on the fp32 model with 16 training-channel
    (UMi) slots at each of -2, 2 and 7 dB (drawn after ``set_seeds(0)``), and the model runs
    eagerly so a layer's quantizer can be switched between evaluations (~2x slower than the
    weight-only sweep, whose compiled graph reads the reassigned weight variables)."""
    from effinrx._tf import eager, set_seeds

    get_config(model)  # ConfigError for an unknown model, before anything heavy
    weight_method(method)
    if slots < 1 or batch < 1 or num_prbs < 1:
        raise ConfigError(f"slots, batch and num_prbs must be >= 1, got {slots}, {batch}, {num_prbs}")
    t0 = time.perf_counter()
    sc = Scenario(num_prbs=int(num_prbs))
    wrappers = None
    if method in ACT_METHODS:
        net, wrappers, _ = build_w8a8(model, weights, ACT_METHODS[method], quantize_weights=False)
    else:
        net = load_model(model, weights)
    rx = NRXReceiver(model, net=net, num_prbs=num_prbs, name=f"{model}-sensitivity")
    act, act_scales = None, None
    if wrappers is not None:
        src = UMiSlotSource(num_prbs, 2)  # calibration only: the training channel, never evaluation
        set_seeds(0)
        cal = [src(16, e, num_active=2) for e in (-2.0, 2.0, 7.0)]

        def run_cal():
            for c in cal:
                rx.llr(c.y, c.no, active=c.active)

        with eager():
            act_scales = calibrate(wrappers, run_cal)

        def act(layers):
            for j, w in enumerate(wrappers):
                w.mode = "quant" if j in layers else "float"
    t_slots = time.perf_counter() - t0
    n_batches = -(-int(slots) // int(batch))
    blocks = n_batches * int(batch) * sc.num_tx
    last: dict = {}

    def llr_fn(_net):
        llrs = []
        # W8A8 modes are Python state a traced graph would freeze at its first trace: eager; the
        # weight-only sweep reassigns tf.Variables, which the compiled step reads on every call
        with eager(wrappers is not None):
            (pc,) = simulate_many({rx.name: rx}, sc, [float(ebno_db)], max_blocks=blocks,
                                  target_errors=blocks + 1, batch_size=int(batch), seed=int(seed),
                                  progress=False, with_llr=True, compiled=wrappers is None,
                                  on_batch=lambda b: llrs.append(b.llr[rx.name]))[rx.name]
        last["counts"] = pc
        return llrs

    def tb_fn(_llrs):
        pc = last["counts"]  # the counts of the run that produced these LLRs
        return pc.errors, pc.blocks

    res = sweep(net, method, llr_fn, tb_fn if tb else None, unit=unit, rank_by=rank_by, progress=progress,
                act=act)
    if act_scales is not None:
        res.meta["activation_scales"] = [round(float(x), 6) for x in act_scales]
    res.meta.update({"model": model, "weights": getattr(net, "weights_source", str(weights)),
                     "scenario": sc.as_dict(), "ebno_db": float(ebno_db), "slots": n_batches * int(batch),
                     "batch": int(batch), "seed": int(seed), "num_prbs": int(num_prbs), "tbs": blocks,
                     "seconds_setup": round(t_slots, 2),
                     "seconds_total": round(time.perf_counter() - t0, 2)})
    return res


def table_text(res: SweepResult) -> str:
    """Plain-text table: rows by damage, then the fp32 and all-layers reference rows."""
    def fmt(r, rank):
        sc = "-" if r.scale_max is None else f"{r.scale_max:.3g}"
        tb = "-" if r.tb_errors is None else f"{r.tb_errors}/{r.tb_blocks}"
        return (f"{rank:>4} {r.name:<24} {r.kinds:<19} {r.params:>7} {r.weight_sqnr_db:>8.2f} "
                f"{sc:>9} {r.llr_sqnr_db:>9.2f} {tb:>9}")
    m = res.meta
    head = (f"# sensitivity: {m.get('model', '?')} ({m.get('weights', '?')}), method {res.method}, one "
            f"{res.unit} quantized at a time, {m.get('slots', '?')} slots @ Eb/N0 {m.get('ebno_db', '?')} dB, "
            f"ranked by {m.get('rank_by', 'sqnr')}")
    lines = [head, f"{'rank':>4} {'unit':<24} {'kinds':<19} {'params':>7} {'W SQNR':>8} {'scale':>9} "
             f"{'LLR SQNR':>9} {'TB err':>9}"]
    lines += [fmt(r, i + 1) for i, r in enumerate(res.rows)]
    lines += [fmt(res.all_layers, "all"), fmt(res.fp32, "ref")]
    return "\n".join(lines)


def plot(res: SweepResult, path, title: str = ""):
    """Horizontal bar chart of LLR SQNR per unit (most damaging on top, inf drawn as a hatched bar
    at the axis limit), all-layers SQNR as a dashed line. Writes a PNG atomically; returns path."""
    rows = res.rows
    finite = [r.llr_sqnr_db for r in rows + [res.all_layers] if math.isfinite(r.llr_sqnr_db)]
    top = max(max(finite) if finite else 10.0, 1.0) * 1.1 + 1.0
    low = min(0.0, min(finite) - 1.0) if finite else 0.0
    blocks = sorted({r.block for r in rows})
    fig, ax = new_figure((6.5, 1.2 + 0.22 * len(rows)))
    import matplotlib.pyplot as plt  # after new_figure chose the Agg backend

    cmap = plt.get_cmap("tab10")
    for i, r in enumerate(rows):
        v = r.llr_sqnr_db if math.isfinite(r.llr_sqnr_db) else top
        ax.barh(i, v, color=cmap(blocks.index(r.block) % 10),
                hatch=None if math.isfinite(r.llr_sqnr_db) else "//",
                label=r.block if r.block not in [x.block for x in rows[:i]] else None)
        txt = "inf" if not math.isfinite(r.llr_sqnr_db) else f"{r.llr_sqnr_db:.1f}"
        if r.tb_errors is not None:
            txt += f"  ({r.tb_errors}/{r.tb_blocks} TB)"
        ax.text(max(v, 0.0), i, " " + txt, va="center", fontsize=7)
    if math.isfinite(res.all_layers.llr_sqnr_db):
        ax.axvline(res.all_layers.llr_sqnr_db, color="k", ls="--", lw=1,
                   label=f"all layers: {res.all_layers.llr_sqnr_db:.1f} dB")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r.name for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(low, top * 1.3)
    ax.axvline(0.0, color="0.4", lw=0.6)
    ax.set_xlabel("LLR SQNR vs fp32 (dB; lower = more damage)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    if title:
        ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def write_outputs(res: SweepResult, out_dir) -> dict:
    """Write ``sensitivity.txt``, ``sensitivity.json`` and ``sensitivity.png`` (atomically) into
    ``out_dir``; returns {"txt", "json", "png"} -> Path."""
    from pathlib import Path

    d = Path(out_dir)
    m = res.meta
    title = (f"{m.get('model', 'net')} {res.method}: one {res.unit} quantized at a time "
             f"({m.get('slots', '?')} slots, {m.get('ebno_db', '?')} dB)")
    return {"txt": atomic_write_text(d / "sensitivity.txt", table_text(res) + "\n"),
            "json": atomic_write_json(d / "sensitivity.json", res.to_dict()),
            "png": plot(res, d / "sensitivity.png", title)}
