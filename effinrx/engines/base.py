"""Engine interface and timing statistics shared by every engine.

An engine is built from an ONNX file with fixed input shapes, runs a dict of float32 numpy inputs,
times repeated runs (warm-up first, only the compute in the measured region) and describes the
device it ran on, so latency goldens can be keyed per device.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from effinrx.errors import ConfigError, ShapeError


def summarize_ms(samples_ms) -> dict:
    """Median, p99, mean, min and count of latency samples in milliseconds."""
    a = np.asarray(list(samples_ms), dtype=np.float64)
    if a.size == 0:
        raise ValueError("no latency samples")
    return {"median_ms": float(np.median(a)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean()), "min_ms": float(a.min()), "n": int(a.size)}


class Engine(ABC):
    """Abstract engine: ``run(inputs) -> outputs``, ``time(n, warmup) -> stats``, ``describe()``."""

    name = "engine"

    def __init__(self, onnx_path: str | Path):
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise FileNotFoundError(f"ONNX file {self.onnx_path} does not exist")

    @property
    @abstractmethod
    def input_shapes(self) -> dict[str, tuple]:
        """Fixed input shapes by name."""

    @abstractmethod
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; inputs float32 with :attr:`input_shapes`; returns outputs by name."""

    @abstractmethod
    def time(self, n: int = 50, warmup: int = 5, inputs: dict | None = None) -> dict:
        """Latency statistics (see :func:`summarize_ms`) of ``n`` runs after ``warmup`` runs."""

    @abstractmethod
    def describe(self) -> dict:
        """Engine, version and device facts."""

    def check_inputs(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate names, shapes, dtypes (ShapeError) and finiteness (no NaN/Inf: InputError, as the
        receivers raise); return float32 contiguous arrays. Called once before a timed loop, never inside it."""
        want = self.input_shapes
        missing = sorted(set(want) - set(inputs))
        extra = sorted(set(inputs) - set(want))
        if missing or extra:
            raise ShapeError(f"{self.name}: inputs missing {missing}, unexpected {extra}; expects {sorted(want)}")
        out = {}
        for k, shape in want.items():
            a = np.asarray(inputs[k])
            if a.dtype.kind != "f":
                raise ShapeError(f"{self.name}: input {k!r} has dtype {a.dtype}, expected float32")
            if tuple(a.shape) != tuple(shape):
                raise ShapeError(f"{self.name}: input {k!r} has shape {a.shape}, expected {tuple(shape)}")
            a = np.ascontiguousarray(a, dtype=np.float32)
            bad = ~np.isfinite(a)
            if bad.any():  # NaN/Inf would spread through every LLR of the slot unnoticed
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                from effinrx.receivers.checks import InputError  # the receivers' NaN error: one class

                raise InputError(f"{self.name}: input {k!r} has {int(bad.sum())} NaN/Inf values "
                                 f"(first at index {first}: {a[first]})")
            out[k] = a
        return out

    def random_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {k: rng.standard_normal(s).astype(np.float32) for k, s in self.input_shapes.items()}


# One timing loop for the CLI and the benchmarks: the model and a fixed speed probe interleaved in
# many short alternations; effinrx.latency.gate judges the result against a golden with a rank test.

def time_interleaved(fn, probe, *, rounds: int = 60, warmup: int = 3, clock=time.perf_counter) -> dict:
    """Time ``fn()`` and ``probe()`` in ``rounds`` short alternations, one call of each per round,
    the order flipped every round (ABBA), so both see the same machine speed state at every moment.

    Returns :func:`summarize_ms` of ``fn`` plus ``probe_ms`` (the probe's best), ``probe_median_ms``
    and the raw per-round samples ``samples_ms`` / ``probe_samples_ms`` that the rank test of
    :func:`latency_gate` needs. ``fn=None`` times the probe alone.

    Why: timing the model in one block and the probe in another leaves any load change between the
    blocks uncorrected (a 2-core machine running one other job: RT fp32 13.6-17.6 ms against a 5.2 ms
    golden while a burst-timed probe read the machine as x0.93-x1.4)."""
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    for _ in range(max(0, warmup)):
        probe()
        if fn is not None:
            fn()
    model, ref = [], []

    def one(f, out):
        t0 = clock()
        f()
        out.append((clock() - t0) * 1e3)

    for i in range(rounds):
        pair = ((fn, model), (probe, ref)) if i % 2 == 0 else ((probe, ref), (fn, model))
        for f, out in pair:
            if f is not None:
                one(f, out)
    out = summarize_ms(model) if model else {}
    out.update(probe_ms=float(min(ref)), probe_median_ms=float(np.median(ref)),
               samples_ms=[round(v, 5) for v in model], probe_samples_ms=[round(v, 5) for v in ref])
    return out
