"""Channel covariances (frequency, time, space) estimated from the training channel (UMi), cached
as ``.npz`` for the LMMSE channel estimator. Sample covariances averaged over UEs and ports.

Cache file: ``$EFFINRX_CACHE`` (default ``~/.cache/effinrx``) ``/cov-<scenario key>.npz``.
Above 100 PRBs the LMMSE estimator works in 22-PRB chunks (:mod:`effinrx.receivers.lmmse_chunks`)
and asks for the covariances of the 22-PRB scenario (264 x 264 frequency covariance; the channel is
wide-sense stationary in frequency), not for the fft x fft one of the full band.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from effinrx.errors import ConfigError
from effinrx.io import atomic_write_npz
from effinrx.link.channels import sample_channel


def cache_dir() -> Path:
    return Path(os.environ.get("EFFINRX_CACHE", Path.home() / ".cache" / "effinrx"))


def training_scenario(sc):
    return sc.replace(channel="umi")


def estimate(sc, num_samples: int = 256, batch: int = 32, seed: int = 1, progress: bool = False) -> dict:
    """Sample covariances of the UMi channel of ``sc``. Returns complex64 ``freq`` [F,F],
    ``time`` [T,T], ``space`` [Nr,Nr], each normalised to unit mean diagonal."""
    import sionna.phy

    from effinrx._tf import set_seeds

    if num_samples < 1 or batch < 1:
        raise ConfigError(f"num_samples and batch must be >= 1, got {num_samples}, {batch}")
    set_seeds(seed)
    sionna.phy.config.seed = seed
    tsc = training_scenario(sc)
    acc = {"freq": 0, "time": 0, "space": 0}
    n = 0
    done = 0
    from tqdm import tqdm

    with tqdm(total=num_samples, desc="covariance", disable=not progress) as bar:
        while done < num_samples:
            b = min(batch, num_samples - done)
            h = sample_channel(tsc, b).numpy()[:, 0]  # [B, Nr, U, P, T, F]
            h = np.moveaxis(h, 1, -1).reshape(-1, h.shape[4], h.shape[5], h.shape[1])  # [N, T, F, Nr]
            acc["freq"] = acc["freq"] + np.einsum("ntfr,ntgr->fg", h, h.conj())
            acc["time"] = acc["time"] + np.einsum("ntfr,nsfr->ts", h, h.conj())
            acc["space"] = acc["space"] + np.einsum("ntfr,ntfq->rq", h, h.conj())
            n += h.shape[0]
            done += b
            bar.update(b)
    out = {}
    for k, m in acc.items():
        m = m / np.real(np.mean(np.diag(m)))
        out[k] = m.astype(np.complex64)
    return out


def cache_path(sc) -> Path:
    return cache_dir() / f"cov-{training_scenario(sc).key()}.npz"


def load_or_estimate(sc, num_samples: int = 256, recompute: bool = False, progress: bool = False) -> dict:
    """Load the cached covariances of ``sc`` (training channel), estimating and caching them if absent."""

    p = cache_path(sc)
    if p.exists() and not recompute:
        try:
            with np.load(p) as z:
                return {k: z[k] for k in ("freq", "time", "space")}
        except Exception as e:  # corrupt cache: say which file
            raise ConfigError(f"covariance cache {p} is unreadable ({e}); rerun 'effinrx covariance --recompute'")
    cov = estimate(sc, num_samples=num_samples, progress=progress)
    atomic_write_npz(p, cov)
    return cov
