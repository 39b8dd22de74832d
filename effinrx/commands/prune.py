"""``effinrx prune``: prune + fine-tune NRX-RT/Large and save the pruned weights with their recipe.

Magnitude pruning goes through tfmot (unstructured PolynomialDecay to ``--target`` or 2:4),
movement pruning through :mod:`effinrx.prune.movement`; fine-tuning is :func:`effinrx.training.nrx.train`
warm-started from ``--init`` (default: the reference weights). Output ``<out>.npz`` + ``<out>.json``
(our weight format, loadable with ``load_model(model, "<out>.npz")``); the sidecar holds the
recipe, the training summary, per-kernel and overall sparsity and which parameters stayed dense.

Run as ``effinrx prune ...``.
"""
from __future__ import annotations

from pathlib import Path

from effinrx import weights as W
from effinrx.errors import ConfigError
from effinrx.io import check_writable
from effinrx.prune.dispatch import prune_nrx
from effinrx.prune.recipe import PruneRecipe
from effinrx.receivers.nrx_layers import NRX_MODELS


def add_arguments(p) -> None:
    p.add_argument("--model", choices=NRX_MODELS, default="nrx-rt", help="model to prune")
    p.add_argument("--method", choices=("magnitude", "movement"), default="magnitude",
                   help="magnitude (tfmot) or movement pruning")
    p.add_argument("--pattern", choices=("unstructured", "2:4"), default="unstructured",
                   help="sparsity pattern of the kernels")
    p.add_argument("--target", type=float, default=0.8, help="final kernel sparsity (unstructured)")
    p.add_argument("--steps", type=int, default=1000, help="fine-tuning steps")
    p.add_argument("--end-step", type=int, default=None,
                   help="step where the target is reached (default 3/4 of --steps)")
    p.add_argument("--frequency", type=int, default=1, help="mask update every N steps")
    p.add_argument("--power", type=float, default=None,
                   help="schedule exponent (default 1 magnitude, 3 movement)")
    p.add_argument("--batch-size", type=int, default=16, help="slots per fine-tuning step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--prbs", type=int, default=4, help="PRBs of the fine-tuning slots")
    p.add_argument("--seed", type=int, default=0, help="seed of the fine-tuning slots")
    p.add_argument("--init", default="reference", help="start weights: reference | packaged | PATH")
    p.add_argument("--out", type=Path, required=True, help="output path (without suffix or .npz)")


def run(args) -> int:
    if args.prbs < 1:
        raise ConfigError(f"--prbs must be >= 1, got {args.prbs}")
    recipe = PruneRecipe(model=args.model, method=args.method, pattern=args.pattern, target=args.target,
                         steps=args.steps, end_step=args.end_step, frequency=args.frequency,
                         power=args.power, batch_size=args.batch_size, learning_rate=args.lr,
                         seed=args.seed, num_prbs=args.prbs, init=args.init)
    recipe.validate()

    base = Path(args.out).with_suffix("") if Path(args.out).suffix == ".npz" else Path(args.out)
    for sfx in (".npz", ".json"):  # written after the fine-tuning (minutes)
        check_writable(base.with_name(base.name + sfx), "--out")
    res = prune_nrx(recipe, None, progress=True)
    rep = res.report
    meta = {"config": res.net.cfg.to_dict(), "format": "effinrx-nrx-v1", "prune_recipe": recipe.to_dict(),
            "train": {k: v for k, v in res.train.items() if k != "checkpoint"}, "sparsity": rep,
            "coverage": res.coverage, "seconds": res.seconds}
    out = W.save_npz(args.out, res.weights, meta)
    print(f"{args.model} {args.method}-{args.pattern}: overall sparsity {rep['overall']:.4f} "
          f"(pruned kernels {rep['kernels']:.4f}, {rep['params']['depthwise']} depthwise + "
          f"{rep['params']['bias']} bias params dense), final BCE {res.train['final_bce']:.4f}, "
          f"{res.seconds} s; saved {out} (+ .json)")
    return 0

