"""Statistical regression check of new TB error counts against golden counts (two-sided Fisher
exact test at a chosen false-alarm rate), and a synthetic binomial model to measure its false-alarm
rate and power."""
from __future__ import annotations

from dataclasses import dataclass

from effinrx.errors import ConfigError
from effinrx.stats import compare_counts


@dataclass(frozen=True)
class RegressionResult:
    passed: bool
    p_value: float
    new_rate: float
    golden_rate: float


def check(new_errors: int, new_blocks: int, golden_errors: int, golden_blocks: int,
          alpha: float = 0.01) -> RegressionResult:
    """Fail when the new and golden block error rates differ at false-alarm rate ``alpha``."""
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    try:
        c = compare_counts(new_errors, new_blocks, golden_errors, golden_blocks, alpha)
    except ValueError as e:
        raise ConfigError(f"regression check: {e}") from e
    return RegressionResult(c.consistent, c.p_value, c.rate_a, c.rate_b)


def tbler_shift(curve: dict, ebno_db: float, shift_db: float) -> float:
    """TBLER at ``ebno_db - shift_db`` by log-linear interpolation of ``curve`` {ebno: tbler}: a
    receiver degraded by ``shift_db`` dB."""
    import numpy as np

    e = np.array(sorted(curve))
    r = np.log(np.maximum([curve[k] for k in e], 1e-12))
    return float(np.exp(np.interp(ebno_db - shift_db, e, r)))


def pass_rate(p_golden: float, p_new: float, blocks: int, seeds: int = 1000, alpha: float = 0.01,
              golden_blocks: int | None = None, seed: int = 0) -> float:
    """Fraction of ``seeds`` synthetic runs (binomial counts) where :func:`check` passes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    gb = golden_blocks or blocks
    ok = 0
    for _ in range(seeds):
        g = int(rng.binomial(gb, p_golden))
        n = int(rng.binomial(blocks, p_new))
        ok += check(n, blocks, g, gb, alpha).passed
    return ok / seeds
