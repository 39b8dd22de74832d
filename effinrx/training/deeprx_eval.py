"""BLER comparison of DeepRx variants per mobility class (claims R1-R4 of seed 001, T1-T2 of 002).

:func:`ptq_receivers` turns one fp32 DeepRx into its weight-only PTQ variants (``fp16``,
``int8-pt``/``int8-pc``, ``int4-pt``/``int4-pc``; :mod:`effinrx.quant.deeprx`);
:func:`baselines` gives the classical receivers of the paper's figure (LS + nearest-neighbour
interpolation + LMMSE = the paper's "classical receiver", LS + linear interpolation + LMMSE, perfect
CSI + LMMSE); :func:`counts_by_class` runs them all on identical slots of each mobility class
(:func:`effinrx.link.simo.evaluate`: the Monte-Carlo engine on a
:class:`~effinrx.link.simo.RangeChannel`); :func:`finetune_qat` warm-starts QAT from the fp32 checkpoint.

Counts: ``{class: {name: {ebno: {"errors", "blocks", "bit_errors", "bits", "crc_failures"}}}}`` (ints).
"""
from __future__ import annotations

from effinrx.errors import ConfigError
from effinrx.link.counts import PointCounts
from effinrx.link.plots import draw_curve, new_figure, save_png
from effinrx.link.simo import TRAIN, evaluate, simo_scenario, test_range, train_batches
from effinrx.quant.deeprx import ptq_copy
from effinrx.receivers.deeprx import DeepRxReceiver, train
from effinrx.receivers.deeprx_baselines import SimoLMMSE
from effinrx.training.deeprx import load_receiver


def shipped_setup(width: int = 32, depth: int = 4):
    """The shipped fp32 DeepRx ``width x depth`` and the SIMO scenario of its grid: ``(receiver, scenario)``."""
    fp = load_receiver(width=width, depth=depth)
    return fp, simo_scenario(fp.data_mask.shape[1] // 12)  # grid width = 12 subcarriers per PRB


def ptq_receivers(fp, formats=("fp16", "int8-pt", "int8-pc", "int4-pt", "int4-pc")) -> dict:
    """name -> :class:`DeepRxReceiver` with PTQ'd Conv2D kernels of ``fp.model`` (weights only)."""
    return {f: DeepRxReceiver(ptq_copy(fp.model, f), fp.data_mask, name=f"deeprx-{f}", precision=f)
            for f in formats}


def baselines(sc, kinds=("ls-nn", "ls-lin", "perfect")) -> dict:
    """``<kind>-lmmse`` -> :class:`~effinrx.receivers.deeprx_baselines.SimoLMMSE`."""
    return {f"{k}-lmmse": SimoLMMSE(sc, k) for k in kinds}


def counts_by_class(receivers: dict, sc, ebno_db: dict, *, batches: int, batch_size: int, seed: int,
                    classes=("low", "medium", "high"), progress: bool = False) -> dict:
    """Counts of every receiver on the same slots, per mobility class. ``ebno_db``: class -> list of
    Eb/N0 (dB) or one list for all classes."""
    out = {}
    for c in classes:
        pts = ebno_db[c] if isinstance(ebno_db, dict) else ebno_db
        out[c] = evaluate(receivers, sc, test_range(c), pts, batches=batches, batch_size=batch_size,
                          seed=seed, progress=progress)
    return out


def pooled(counts_one_rx: dict) -> tuple[int, int]:
    """(errors, blocks) summed over the Eb/N0 points of one receiver."""
    if not counts_one_rx:
        raise ConfigError("no Eb/N0 points to pool")
    return (sum(int(c["errors"]) for c in counts_one_rx.values()),
            sum(int(c["blocks"]) for c in counts_one_rx.values()))


def pooled_over(res: dict, name: str, classes) -> tuple[int, int]:
    """(block errors, blocks) of receiver ``name`` summed over the mobility ``classes`` of a
    :func:`counts_by_class` result ``res`` ({class: {name: {ebno: counts}}})."""
    e = n = 0
    for c in classes:
        a, b = pooled(res[c][name])
        e, n = e + a, n + b
    return e, n


def plot_bler_by_class(res: dict, classes, names, baselines, path):
    """One BLER-vs-Eb/N0 panel per mobility class of a :func:`counts_by_class` result ``res``:
    ``names`` solid, ``baselines`` dashed, with 95 % intervals; a point without errors is an open
    "v" at its upper bound (:func:`effinrx.link.plots.draw_curve`). Returns the PNG path."""
    fig, axes = new_figure((12, 3.6), ncols=len(classes), sharey=True)
    for ax, c in zip(axes, classes):
        for n in tuple(names) + tuple(baselines):
            r = res[c][n]
            pts = [PointCounts(e, errors=r[e]["errors"], blocks=r[e]["blocks"]) for e in sorted(r)]
            draw_curve(ax, pts, n, linestyle="--" if n in baselines else "-")
        ax.set_yscale("log")
        ax.set_title(f"{c} speed")
        ax.set_xlabel("Eb/N0 [dB]")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("BLER")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)


def finetune_qat(bits: int | None, *, steps: int, batch_size: int, seed: int, lr: float = 1e-4,
                 path=None, progress: bool = False):
    """QAT (fake-quant + STE + learnable per-channel scales, seed 002) warm-started from the fp32
    checkpoint ``path`` (default: shipped 32x4), fine-tuned ``steps`` Adam steps on the training
    channels (CDL-A/B/C, 10-100 ns, 0-50 m/s, SNR -2..15 dB) with a seed other than the checkpoint's.
    ``bits=None`` fine-tunes the fp32 model with the same recipe: the control that separates what
    quantisation-aware training recovers from what the extra training steps alone buy.
    Returns the :class:`DeepRxReceiver` (``train_steps``/``train_seconds`` set)."""
    if bits not in (None, 4, 8):
        raise ConfigError(f"QAT bits must be 4, 8 or None (fp32 control), got {bits}")
    name = "deeprx-fp32-ft" if bits is None else f"deeprx-qat{bits}"
    rx = load_receiver(path, qat_bits=bits, name=name)
    rx.precision = "fp32" if bits is None else f"qat-int{bits}-pc"
    num_prbs = rx.data_mask.shape[1] // 12
    batches = train_batches(simo_scenario(num_prbs), batch_size, 1000 + seed, TRAIN)
    train(rx, batches, steps=steps, lr=lr, progress=progress)
    return rx
