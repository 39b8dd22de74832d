"""Latency table arithmetic: paper references, throughput per slot, one row per model x precision.

Throughput as the blog computes it: ``Mbps = fps x REs x 4 bits x UEs / 1e6`` with REs = 12 * PRBs
x 14 symbols, i.e. 177,408 raw bits per slot at 132 PRBs (all REs, pilots included: this is *raw*
throughput). The information-bit throughput uses the transport-block size of MCS 14 instead;
both are reported and labelled. Paper values (RTX 6000 Ada, TensorRT 10.2, batch 1, 132 PRBs) are
references shown beside our measurements, never goldens.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

from effinrx.errors import ConfigError
from effinrx.link.pusch import reference_pusch_configs

URLLC_BUDGET_MS = 1.0
BITS_PER_RE = 4  # 16-QAM, MCS 14
NUM_UES = 2

# Blog tables (RTX 6000 Ada): latency ms and fps as printed.
PAPER_ADA_MS = {("nrx-rt", "fp32"): 1.17334, ("nrx-rt", "fp16"): 0.670654, ("nrx-rt", "fp8"): 0.495239,
                ("nrx-rt", "int8"): 0.579834, ("nrx-large", "fp32"): 3.23242, ("nrx-large", "fp16"): 1.86426,
                ("nrx-large", "fp8"): 1.24255, ("nrx-large", "int8"): 1.68542}
PAPER_ADA_FPS = {("nrx-rt", "fp32"): 1029.74, ("nrx-rt", "fp16"): 1930.18, ("nrx-rt", "fp8"): 2757.71,
                 ("nrx-rt", "int8"): 2249.35, ("nrx-large", "fp32"): 337.842, ("nrx-large", "fp16"): 600.113,
                 ("nrx-large", "fp8"): 938.074, ("nrx-large", "int8"): 669.98}
PAPER_ADA_MBPS = {("nrx-rt", "fp32"): 182.68, ("nrx-rt", "fp16"): 342.43, ("nrx-rt", "fp8"): 489.24,
                  ("nrx-rt", "int8"): 399.05, ("nrx-large", "fp32"): 59.94, ("nrx-large", "fp16"): 106.46,
                  ("nrx-large", "fp8"): 166.42, ("nrx-large", "int8"): 118.86}
PAPER_STATED_SPEEDUP = {("nrx-rt", "fp8"): 1.27, ("nrx-rt", "int8"): 1.13, ("nrx-large", "fp8"): 1.33,
                        ("nrx-large", "int8"): 1.11}
PAPER_ADA_OVER_A100 = 1.7


def raw_bits_per_slot(prbs: int, ues: int = NUM_UES, bits_per_re: int = BITS_PER_RE) -> int:
    """REs x bits x UEs: 12 * PRBs * 14 * 4 * 2 = 177,408 at 132 PRBs (the blog's definition)."""
    if prbs < 1:
        raise ConfigError(f"prbs must be >= 1, got {prbs}")
    return 12 * prbs * 14 * bits_per_re * ues


@functools.lru_cache(maxsize=8)
def info_bits_per_slot(prbs: int, ues: int = NUM_UES) -> int:
    """Transport-block (information) bits of all UEs per slot for the reference PUSCH config."""
    pc = reference_pusch_configs(prbs, ues)[0]
    return int(pc.tb_size) * ues


@dataclass
class LatencyRow:
    model: str
    precision: str
    engine: str
    device: str
    prbs: int
    median_ms: float
    p99_ms: float
    fps: float
    raw_mbps: float
    info_mbps: float | None
    urllc_1ms: bool
    speedup: float | None = None
    paper_ms: float | None = None
    h2d_ms: float | None = None  # TensorRT: copies timed apart, never inside the latency
    d2h_ms: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def make_row(model: str, precision: str, engine: str, device: str, prbs: int, stats: dict,
             info_bits: int | None = None) -> LatencyRow:
    ms = float(stats["median_ms"])
    fps = 1000.0 / ms
    return LatencyRow(model, precision, engine, device, prbs, ms, float(stats.get("p99_ms", ms)), fps,
                      fps * raw_bits_per_slot(prbs) / 1e6,
                      None if info_bits is None else fps * info_bits / 1e6, ms < URLLC_BUDGET_MS,
                      paper_ms=PAPER_ADA_MS.get((model, precision)) if prbs == 132 else None,
                      h2d_ms=stats.get("h2d_ms"), d2h_ms=stats.get("d2h_ms"))


def add_speedups(rows: list[LatencyRow], reference: str) -> list[LatencyRow]:
    """Set ``speedup = latency(reference) / latency`` per model (reference fp16 on GPU, fp32 on CPU)."""
    ref = {r.model: r.median_ms for r in rows if r.precision == reference}
    for r in rows:
        r.speedup = ref[r.model] / r.median_ms if r.model in ref else None
    return rows


def format_table(rows: list[LatencyRow]) -> str:
    """The same table for every engine; copies (TensorRT) are listed under it, apart."""
    head = ("model", "precision", "engine", "PRBs", "median ms", "p99 ms", "fps", "raw Mbps", "info Mbps",
            "<1 ms", "speed-up", "paper ms (Ada)")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in rows:
        lines.append(" | ".join([r.model, r.precision, r.engine, str(r.prbs), f"{r.median_ms:.3f}",
                                 f"{r.p99_ms:.3f}", f"{r.fps:.1f}", f"{r.raw_mbps:.2f}",
                                 "—" if r.info_mbps is None else f"{r.info_mbps:.2f}",
                                 "yes" if r.urllc_1ms else "no",
                                 "—" if r.speedup is None else f"x{r.speedup:.2f}",
                                 "—" if r.paper_ms is None else f"{r.paper_ms:g}"]))
    copies = [f"{r.model} {r.precision}: H2D {r.h2d_ms:.3f} ms, D2H {r.d2h_ms:.3f} ms" for r in rows
              if r.h2d_ms is not None and r.d2h_ms is not None]
    if copies:
        lines.append("copies (timed apart, not in the latency): " + "; ".join(copies))
    return "\n".join(lines)
