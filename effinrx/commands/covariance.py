"""``effinrx covariance``: estimate and cache the UMi training-channel covariances (time, frequency,
space) used by the LMMSE channel estimator. Above 100 PRBs that estimator works in 22-PRB chunks
(:mod:`effinrx.receivers.lmmse_chunks`), so the covariances of the 22-PRB grid are cached instead."""
from __future__ import annotations

from effinrx.link.config import Scenario
from effinrx.link.covariance import cache_path, load_or_estimate
from effinrx.receivers.lmmse_chunks import chunk_prbs_for


def add_arguments(p) -> None:
    p.add_argument("--prbs", type=int, default=4, help="PRBs (12 subcarriers each) of the resource grid")
    p.add_argument("--num-tx", type=int, choices=(1, 2), default=2, help="UEs (1 or 2; DMRS ports 0, 2)")
    p.add_argument("--samples", type=int, default=256, help="channel realisations per UE")
    p.add_argument("--recompute", action="store_true", help="estimate again even if a cached file exists")


def run(args) -> int:
    import numpy as np

    sc = Scenario(num_prbs=args.prbs, num_tx=args.num_tx, dmrs_ports=(0, 2)[: args.num_tx])
    chunk = chunk_prbs_for(sc)
    if chunk is not None:
        print(f"{sc.num_prbs} PRBs: lmmse-kbest estimates the channel in {chunk}-PRB chunks; "
              f"caching the {chunk}-PRB covariances")
        sc = sc.replace(num_prbs=chunk)
    cov = load_or_estimate(sc, num_samples=args.samples, recompute=args.recompute, progress=True)
    for k, m in cov.items():
        print(f"{k:5s} {m.shape} trace/n={np.real(np.trace(m)) / m.shape[0]:.3f}")
    print(f"cache: {cache_path(sc)}")
    return 0
