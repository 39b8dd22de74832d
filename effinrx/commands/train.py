"""``effinrx train``: train (or fine-tune) NRX-RT / NRX-Large on CPU with the reference loss.

Writes ``<out>/ckpt_latest.npz`` + ``.json`` (config, recipe, git hash, seed), ``log.csv`` and
``summary.json``; resumes from the checkpoint unless ``--no-resume``. ``--package`` copies the final
checkpoint to ``effinrx/data/<model>.npz`` (the embedded default when reference weights are absent).
``--distill-from nrx-large`` trains the model as a student of the frozen NRX-Large teacher
(reference weights, :mod:`effinrx.training.distill`) and writes the distillation settings to ``distill.json``.
"""
from __future__ import annotations

from pathlib import Path

from effinrx import weights as W
from effinrx.errors import ConfigError
from effinrx.io import atomic_write_json, check_writable
from effinrx.training.distill import DistillConfig, load_teacher, make_extra_loss
from effinrx.training.nrx import TrainRecipe, train


def add_arguments(p) -> None:
    p.add_argument("--model", choices=("nrx-rt", "nrx-large"), default="nrx-rt", help="model to train")
    p.add_argument("--steps", type=int, default=1000, help="total Adam steps (including resumed ones)")
    p.add_argument("--batch-size", type=int, default=16, help="slots per Adam step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--mse-weight", type=float, default=0.02, help="weight of the channel-readout MSE (0.01-0.02)")
    p.add_argument("--prbs", type=int, default=4, help="PRBs of the training slots")
    p.add_argument("--seed", type=int, default=0, help="seed of init, channels, bits and noise")
    p.add_argument("--init", default=None, help="start weights: reference | packaged | PATH (.npz or pickle); default random init")
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="run folder (checkpoints, logs)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in --out")
    p.add_argument("--ckpt-every", type=int, default=100, help="write the checkpoint every N steps")
    p.add_argument("--exact-resume", action="store_true",
                   help="per-step data seeds + Adam state in the checkpoint: a stopped and resumed run ends "
                        "with an unbroken run's weights (a different data stream than without it)")
    p.add_argument("--package", action="store_true", help="copy the final checkpoint into effinrx/data/")
    p.add_argument("--distill-from", choices=("nrx-large",), default=None,
                   help="distil from this teacher (reference weights, frozen) instead of plain training")
    p.add_argument("--distill-alpha", type=float, default=0.5,
                   help="weight of the hard-label BCE; 1 - alpha weights the teacher term")
    p.add_argument("--distill-temperature", type=float, default=1.0, help="softening temperature T > 0")
    p.add_argument("--distill-distance", choices=("kl", "mse"), default="kl",
                   help="teacher term: T^2 x Bernoulli KL (default) or MSE on LLRs")


def run(args) -> int:
    from effinrx.receivers.nrx import packaged_weights_path

    if args.prbs < 1:
        raise ConfigError(f"--prbs must be >= 1, got {args.prbs}")

    check_writable(args.out / args.model, "--out", kind="dir")
    if args.package:
        check_writable(packaged_weights_path(args.model), "--package target")
    recipe = TrainRecipe(model=args.model, steps=args.steps, batch_size=args.batch_size,
                         learning_rate=args.lr, mse_weight=args.mse_weight, num_prbs=args.prbs,
                         seed=args.seed, ckpt_every=max(1, args.ckpt_every), init=args.init,
                         exact_resume=bool(getattr(args, "exact_resume", False)))
    extra = None
    if getattr(args, "distill_from", None):
        extra = _distill_hook(args, recipe)
    summary = train(recipe, args.out / args.model, resume=not args.no_resume, extra_loss=extra)
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


def _distill_hook(args, recipe):
    """Validate the distillation options, load the frozen teacher, record the settings."""
    from dataclasses import asdict

    cfg = DistillConfig(alpha=args.distill_alpha, temperature=args.distill_temperature,
                        distance=args.distill_distance, teacher=args.distill_from)
    cfg.validate()
    if args.distill_from == args.model:
        raise ConfigError(f"--distill-from {args.distill_from} is the model being trained; pick a smaller student")
    recipe.validate()
    teacher = load_teacher(cfg, recipe.num_prbs)
    out = args.out / args.model
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "distill.json", {**asdict(cfg), "teacher_params": int(teacher.net.count_params())})
    print(f"distilling from {cfg.teacher} ({teacher.net.count_params()} params, frozen): "
          f"alpha={cfg.alpha}, T={cfg.temperature}, distance={cfg.distance}")
    return make_extra_loss(teacher, cfg)
