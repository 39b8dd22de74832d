"""Method table and TBLER figure for quantized NRX variants (what the report shows per paper figure).

One function used by the RT and Large benchmarks: curves of every variant on the same slots ->
a PNG (``effinrx.link.plots.plot_tbler``) and a markdown table with the exact weight bytes and,
when the curves sweep Eb/N0, the required Eb/N0 at TBLER 10 % with its interval and the gap to fp32.
"""
from __future__ import annotations

from pathlib import Path

from effinrx.link.metrics import format_required, required_table
from effinrx.link.plots import plot_tbler
from effinrx.quant.receivers import VARIANT_STORAGE, variant_bytes


def method_figure(curves: dict, model: str, path, title: str, reference: str | None = None,
                  background: dict | None = None, background_label: str = "nightly golden") -> tuple[Path, str]:
    """``curves``: registry receiver name -> list of PointCounts sorted by Eb/N0 (receivers without a
    storage spec, e.g. classical baselines, get "—" bytes); ``reference`` defaults to ``model``
    (fp32); ``background``: a higher tier's curves drawn under them (``plot_tbler``). Returns (PNG
    path, markdown table)."""
    def tag(name):  # registry name -> compression tag ("nrx-rt" -> "fp32", "nrx-rt-ptq-fp16" -> "ptq-fp16")
        return "fp32" if name == model else name[len(model) + 1:] if name.startswith(model + "-") else name

    extra = {v: {"weight bytes": variant_bytes(model, tag(v)) if tag(v) in VARIANT_STORAGE else "—"}
             for v in curves}
    reference = reference or model
    sweep = min((len(p) for p in curves.values()), default=0) >= 2
    if sweep:
        table = format_required(required_table(curves, reference, extra=extra), reference)
    else:  # one Eb/N0 point: pooled counts only
        table = "\n".join(["| receiver | TB errors | weight bytes |", "|---|---|---|"] +
                          [f"| {v} | {sum(p.errors for p in pts)}/{sum(p.blocks for p in pts)} | "
                           f"{extra[v]['weight bytes']} |" for v, pts in curves.items()])
    return plot_tbler(curves, Path(path), title, background, background_label), table
