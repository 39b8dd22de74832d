"""Real-valued-equivalent MIMO with 16-QAM: data generation (TensorFlow), ZF / LMMSE and exact ML.

Convention (the paper says "16x16 MIMO, 16-QAM"; we read it as the *real-valued-equivalent* size):
an ``n_tx x n_rx`` complex system (default 8 x 8) is rewritten as a ``2*n_rx x 2*n_tx`` real system
(default 16 x 16)::

    y_r = [Re y; Im y],  x_r = [Re x; Im x],  H_r = [[Re H, -Im H], [Im H, Re H]]

so every real entry of ``x_r`` is a 4-PAM symbol of the 16-QAM constellation (Gray-coded per real
dimension, 2 bits per real entry). Normalisation: ``E|x|^2 = 1`` per complex symbol (PAM levels
``{-3,-1,1,3}/sqrt(10)``), complex channel entries ``CN(0, 1/n_rx)`` (i.i.d. Rayleigh, unit-norm
columns on average), complex noise ``CN(0, no)``. SNR is the per-receive-antenna SNR
``E||Hx||^2 / E||n||^2 = n_tx / (n_rx * no)``, i.e. ``no = n_tx / (n_rx * snr)`` (= ``1/snr`` for
square systems).

Shapes: ``y`` float32 ``[B, 2*n_rx]``, ``h`` float32 ``[B, 2*n_rx, 2*n_tx]``, ``x`` float32
``[B, 2*n_tx]``, ``snr_db`` float32 ``[B]``, ``bits`` int32 ``[B, 2*n_tx, 2]``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from effinrx.errors import ConfigError, ShapeError

#: 4-PAM levels of one real dimension of unit-energy 16-QAM
PAM_LEVELS = np.array([-3.0, -1.0, 1.0, 3.0], dtype=np.float32) / np.sqrt(10.0)
#: Gray labels (b0, b1) of PAM_LEVELS: adjacent levels differ in one bit
PAM_BITS = np.array([[0, 0], [0, 1], [1, 1], [1, 0]], dtype=np.int32)
X_MAX = float(PAM_LEVELS[-1])


@dataclass(frozen=True)
class MimoConfig:
    """System size: ``n_tx`` x ``n_rx`` complex antennas (real-valued equivalent is twice each)."""

    n_tx: int = 8
    n_rx: int = 8

    def __post_init__(self):
        for k in ("n_tx", "n_rx"):
            v = getattr(self, k)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"MimoConfig.{k} must be a positive int, got {v!r}")

    @property
    def n_real_tx(self) -> int:
        return 2 * self.n_tx

    @property
    def n_real_rx(self) -> int:
        return 2 * self.n_rx


def noise_var(cfg: MimoConfig, snr_db):
    """Complex noise variance ``no`` for per-receive-antenna SNR ``snr_db`` (array-like, dB)."""
    snr = 10.0 ** (np.asarray(snr_db, dtype=np.float64) / 10.0)
    return (cfg.n_tx / (cfg.n_rx * snr)).astype(np.float32)


def generate(cfg: MimoConfig, batch: int, snr_db_range: tuple[float, float], seed: int | None = None,
             rng=None):
    """Draw one batch in TensorFlow (uniform SNR in dB over ``snr_db_range``).

    Randomness: ``rng`` (a ``tf.random.Generator``) if given, else a generator seeded with ``seed``,
    else TensorFlow's global generator.

    Returns a dict of tf.Tensors: ``y``, ``h``, ``x``, ``snr_db``, ``idx`` (int32 ``[B, 2*n_tx]`` PAM
    index 0..3 of each real entry).
    """
    from effinrx._tf import tf

    tf = tf()
    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    lo, hi = float(snr_db_range[0]), float(snr_db_range[1])
    if hi < lo:
        raise ConfigError(f"snr_db_range must be (low, high), got {snr_db_range}")
    g = rng if rng is not None else (tf.random.Generator.from_seed(seed) if seed is not None
                                     else tf.random.get_global_generator())
    nt, nr = cfg.n_tx, cfg.n_rx
    idx = g.uniform([batch, 2 * nt], 0, 4, dtype=tf.int32)
    x = tf.gather(tf.constant(PAM_LEVELS), idx)
    hs = tf.sqrt(0.5 / nr)
    hre = g.normal([batch, nr, nt]) * hs
    him = g.normal([batch, nr, nt]) * hs
    h = tf.concat([tf.concat([hre, -him], axis=2), tf.concat([him, hre], axis=2)], axis=1)
    snr_db = g.uniform([batch], lo, hi) if hi > lo else tf.fill([batch], lo)
    no = nt / (nr * 10.0 ** (snr_db / 10.0))
    n = g.normal([batch, 2 * nr]) * tf.sqrt(no / 2.0)[:, None]
    y = tf.linalg.matvec(h, x) + n
    return {"y": y, "h": h, "x": x, "snr_db": snr_db, "idx": idx}


def to_numpy(batch: dict) -> dict:
    return {k: np.asarray(v) for k, v in batch.items()}


def _check(y, h):
    y, h = np.asarray(y, np.float64), np.asarray(h, np.float64)
    if y.ndim != 2 or h.ndim != 3 or h.shape[:2] != y.shape:
        raise ShapeError(f"expected y [B, M] and h [B, M, N], got y {y.shape}, h {h.shape}")
    return y, h


def zf(y, h) -> np.ndarray:
    """Zero-forcing (least-squares) estimate ``pinv(H) y``: float ``[B, N]``."""
    y, h = _check(y, h)
    return np.einsum("bnm,bm->bn", np.linalg.pinv(h), y)


def lmmse(y, h, no) -> np.ndarray:
    """LMMSE estimate ``(H^T H + (no/2)/Es_r I)^-1 H^T y`` with ``Es_r = 1/2`` per real entry."""
    y, h = _check(y, h)
    no = np.broadcast_to(np.asarray(no, np.float64), (y.shape[0],))
    n = h.shape[2]
    # real noise variance no/2, real symbol energy 1/2 -> ratio = no
    a = np.einsum("bmi,bmj->bij", h, h) + no[:, None, None] * np.eye(n)
    return np.linalg.solve(a, np.einsum("bmn,bm->bn", h, y)[..., None])[..., 0]


def slice_pam(x) -> np.ndarray:
    """Nearest PAM index (int ``[B, N]`` in 0..3) of real estimates ``x``."""
    x = np.asarray(x)
    return np.argmin(np.abs(x[..., None] - PAM_LEVELS), axis=-1).astype(np.int32)


def ml(y, h, max_candidates: int = 70_000) -> np.ndarray:
    """Exact ML by exhaustive search over ``4**N`` real PAM vectors (tiny systems only).

    Returns PAM indices int ``[B, N]``. Raises ConfigError when ``4**N > max_candidates``.
    """
    y, h = _check(y, h)
    n = h.shape[2]
    if 4 ** n > max_candidates:
        raise ConfigError(f"exact ML needs 4**{n} = {4 ** n} candidates (> {max_candidates}); "
                          "use a system with at most 8 real dimensions")
    cand_idx = np.array(list(itertools.product(range(4), repeat=n)), dtype=np.int32)  # [C, N]
    cand = PAM_LEVELS[cand_idx].astype(np.float64)
    out = np.empty((y.shape[0], n), np.int32)
    for b in range(y.shape[0]):
        d = ((y[b][None, :] - cand @ h[b].T) ** 2).sum(axis=1)
        out[b] = cand_idx[int(np.argmin(d))]
    return out


def bit_errors(idx_hat, idx_true) -> tuple[int, int]:
    """(bit errors, bits) between PAM index arrays of equal shape (2 Gray bits per real entry)."""
    a, b = np.asarray(idx_hat), np.asarray(idx_true)
    if a.shape != b.shape:
        raise ShapeError(f"index arrays differ in shape: {a.shape} vs {b.shape}")
    errs = int((PAM_BITS[a] != PAM_BITS[b]).sum())
    return errs, int(b.size * 2)


def check_unfolded(n_layers, **positive) -> None:
    """Build arguments of an unfolded detector: ``n_layers`` a positive int, every ``positive``
    keyword > 0; ConfigError naming them otherwise."""
    if not isinstance(n_layers, int) or isinstance(n_layers, bool) or n_layers < 1:
        raise ConfigError(f"n_layers must be a positive int, got {n_layers!r}")
    bad = {k: v for k, v in positive.items() if not v > 0}
    if bad:
        raise ConfigError(f"{' and '.join(positive)} must be > 0, got "
                          + ", ".join(f"{k}={v}" for k, v in positive.items()))


def detector_inputs(tf, y, h, snr_db, name: str):
    """``(y, h, snr_db)`` as float32 tensors; ShapeError naming ``name`` unless ``y`` is [B, M] and
    ``h`` [B, M, N]."""
    y = tf.convert_to_tensor(y, tf.float32)
    h = tf.convert_to_tensor(h, tf.float32)
    snr_db = tf.convert_to_tensor(snr_db, tf.float32)
    if y.shape.rank != 2 or h.shape.rank != 3:
        raise ShapeError(f"{name} expects y [B, M] and h [B, M, N], got {y.shape}, {h.shape}")
    return y, h, snr_db
