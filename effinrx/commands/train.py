"""``effinrx train``: train (or fine-tune) NRX-RT / NRX-Large on CPU with the reference loss.

Writes ``<out>/ckpt_latest.npz`` + ``.json`` (config, recipe, git hash, seed), ``log.csv`` and
``summary.json``; resumes from the checkpoint unless ``--no-resume``. ``--package`` copies the final
checkpoint to ``effinrx/data/<model>.npz`` (the embedded default when reference weights are absent).
"""
from __future__ import annotations

from pathlib import Path

from effinrx.errors import ConfigError

HELP = "train or fine-tune a neural receiver (NRX-RT/Large) on CPU"


def add_arguments(p) -> None:
    p.add_argument("--model", choices=("nrx-rt", "nrx-large"), default="nrx-rt")
    p.add_argument("--steps", type=int, default=1000, help="total Adam steps (including resumed ones)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--mse-weight", type=float, default=0.02, help="weight of the channel-readout MSE (0.01-0.02)")
    p.add_argument("--prbs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default=None, help="start weights: reference | packaged | PATH (.npz or pickle)")
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="run folder (checkpoints, logs)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--package", action="store_true", help="copy the final checkpoint into effinrx/data/")


def run(args) -> int:
    from effinrx import weights as W
    from effinrx.receivers.nrx import packaged_weights_path
    from effinrx.train import TrainRecipe, train

    if args.prbs < 1:
        raise ConfigError(f"--prbs must be >= 1, got {args.prbs}")
    recipe = TrainRecipe(model=args.model, steps=args.steps, batch_size=args.batch_size,
                         learning_rate=args.lr, mse_weight=args.mse_weight, num_prbs=args.prbs,
                         seed=args.seed, ckpt_every=max(1, args.ckpt_every), init=args.init)
    summary = train(recipe, args.out / args.model, resume=not args.no_resume)
    print(f"{args.model}: {summary['steps_done']} steps (resumed from {summary['resumed_from']}), "
          f"{summary['train_seconds_this_run']} s this run, final BCE {summary['final_bce']:.4f}, "
          f"MSE {summary['final_mse']:.4f}; checkpoint {summary['checkpoint']}")
    if args.package:
        ws, meta = W.load_npz(summary["checkpoint"])
        meta = dict(meta)
        meta["train_seconds_last_run"] = summary["train_seconds_this_run"]
        dst = W.save_npz(packaged_weights_path(args.model), ws, meta)
        print(f"packaged as {dst}")
    return 0
