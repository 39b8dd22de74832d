"""Measure a latency variant on ORT CPU or TensorRT and assemble the rows of ``effinrx latency``:
the same functions the benchmarks call."""
from __future__ import annotations

from pathlib import Path

from effinrx import device
from effinrx.engines.ort import OrtEngine
from effinrx.engines.gpu_runtime import unsupported_here
from effinrx.engines.tensorrt import TensorRTEngine
from effinrx.latency.build import ort_model_path, trt_variant
from effinrx.latency.table import LatencyRow, add_speedups, info_bits_per_slot, make_row


def trt_unsupported(precision: str) -> str | None:
    """Why this GPU's hardware cannot run the TensorRT variant ``precision``, or None."""
    base = "fp16" if precision == "fp16-2:4" else precision
    return unsupported_here(base, sparse=precision == "fp16-2:4")


def measure_tensorrt(model: str, precision: str, prbs: int, folder: str | Path, runs: int = 200,
                     warmup: int = 20) -> dict:
    """Build the variant, time ``runs`` CUDA-graph replays with CUDA events (inputs already on the
    device, no copies inside), and the copies apart. Returns ``median_ms``, ``p99_ms``, ``min_ms``,
    ``mean_ms``, ``n``, ``h2d_ms``, ``d2h_ms``, ``timing`` and ``tensorrt`` (version)."""
    v = trt_variant(model, precision, prbs, folder)
    with TensorRTEngine(v["path"], v["precision"], explicit_qdq=v["explicit_qdq"], sparse=v["sparse"],
                        workdir=folder) as eng:
        x = eng.random_inputs(0)
        stats = eng.time(n=runs, warmup=warmup, inputs=x)
        copies = eng.copy_times(n=50, inputs=x)
        desc = eng.describe()
    return {**stats, **copies, "timing": desc["timing"], "tensorrt": desc["tensorrt"]}


def measure_ort(model: str, precision: str, prbs: int, folder: str | Path, runs: int = 50,
                threads: int | None = None) -> dict:
    """ORT CPU latency of a variant, interleaved with the speed probe (:func:`time_interleaved`)."""
    eng = OrtEngine(ort_model_path(model, precision, prbs, folder), threads=threads)
    return eng.time(n=runs, warmup=5)


def latency_table(engine: str, models, precisions, prbs: int, folder: str | Path, runs: int,
                  threads: int | None = None) -> list[LatencyRow]:
    """Rows of ``effinrx latency``: every model x precision on ``engine`` ("ort" or "tensorrt"),
    timed by :func:`measure_ort` / :func:`measure_tensorrt` (the benchmarks' own functions); speed-ups
    against fp16 on TensorRT, fp32 on ORT."""
    rows = []
    for m in models:
        for p in precisions:
            if engine == "tensorrt":
                stats, name = measure_tensorrt(m, p, prbs, folder, runs=runs), "tensorrt"
            else:
                stats, name = measure_ort(m, p, prbs, folder, runs=runs, threads=threads), "ort-cpu"
            rows.append(make_row(m, p, name, device.fingerprint(), prbs, stats, info_bits_per_slot(prbs)))
    return add_speedups(rows, "fp16" if engine == "tensorrt" else "fp32")
