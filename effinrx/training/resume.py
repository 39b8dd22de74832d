"""Exact resume of a training run (:attr:`effinrx.training.nrx.TrainRecipe.exact_resume`): the
per-step data seed and the optimizer state a checkpoint carries beside the weights.

A stopped run can continue exactly only if step k draws the same batch and Adam starts step k
with the same moments as in an unbroken run. TensorFlow's global-seed streams cannot be saved, so
each step reseeds every generator from :func:`step_seed` (``seed``, k); Adam's variables
(iterations, m, v) go to ``opt_latest.npz`` (float32/int64 arrays ``v0``, ``v1``, ... plus
``step``), written before the weights so that a checkpoint's step always has its state.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from effinrx.errors import ConfigError, WeightsError
from effinrx.io import atomic_write_npz

#: names a folder where long benchmark tiers keep their training runs (checkpoints, logs) and
#: resume them from; unset, they train in pytest's temporary folder
ENV = "EFFINRX_TRAIN_DIR"

#: recipe fields a resumed exact run may change: how often it logs and checkpoints
_FREE = ("ckpt_every", "log_every")


def step_seed(seed: int, step: int) -> int:
    """The seed of training step ``step`` (0-based) of a run seeded ``seed``: distinct for every
    (seed, step) with step < 2**24, and below 2**63 for any seed < 2**38."""
    if step < 0 or step >= 2**24:
        raise ConfigError(f"training step {step} outside [0, 2**24)")
    return (int(seed) << 24) + int(step)


def save_opt(path: str | Path, opt, step: int) -> Path:
    """Write the optimizer's variables (in ``opt.variables`` order) and ``step`` to ``path``."""
    return atomic_write_npz(path, {"step": np.int64(step), **{f"v{i}": v.numpy() for i, v in enumerate(opt.variables)}})


def load_opt(path: str | Path, opt, variables, step: int) -> None:
    """Build ``opt`` for ``variables`` and assign the state saved at ``path``. WeightsError when the
    file is missing, was saved at another step than the weights' checkpoint, or does not fit."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"exact resume: {path} missing beside the step-{step} checkpoint "
                           "(a run checkpointed without exact_resume cannot continue exactly)")
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    if int(data.get("step", -1)) != step:
        raise WeightsError(f"exact resume: {path} holds step {int(data.get('step', -1))}, the weights step {step}")
    opt.build(variables)
    if len(data) - 1 != len(opt.variables):
        raise WeightsError(f"exact resume: {path} has {len(data) - 1} optimizer arrays, the optimizer "
                           f"{len(opt.variables)}")
    for i, v in enumerate(opt.variables):
        a = data[f"v{i}"]
        if tuple(a.shape) != tuple(v.shape):
            raise WeightsError(f"exact resume: {path} array v{i} has shape {a.shape}, optimizer variable "
                               f"{v.name} {tuple(v.shape)}")
        v.assign(a)


def same_recipe(ckpt: str | Path, saved: dict | None, recipe_dict: dict) -> None:
    """ConfigError naming the fields in which the recipe that wrote checkpoint ``ckpt`` differs from
    this run's (``ckpt_every``/``log_every`` may differ)."""
    saved = saved or {}
    diff = sorted(k for k in set(saved) | set(recipe_dict)
                  if k not in _FREE and saved.get(k) != recipe_dict.get(k))
    if diff:
        detail = ", ".join(f"{k}: {saved.get(k)!r} there, {recipe_dict.get(k)!r} here" for k in diff)
        raise ConfigError(f"exact resume: checkpoint {ckpt} was written by another recipe ({detail}); "
                          "use another run folder or resume=False")


def same_start(ckpt: str | Path, saved: str | None, here: str) -> None:
    """ConfigError when checkpoint ``ckpt`` was trained from other start weights than this run's
    (a checkpoint without the digest, written before it was recorded, is accepted)."""
    if saved is not None and saved != here:
        raise ConfigError(f"exact resume: checkpoint {ckpt} was trained from other start weights "
                          f"(digest {saved[:12]} there, {here[:12]} here); use another run folder or resume=False")


def train_dir() -> Path | None:
    """The folder named by ``$EFFINRX_TRAIN_DIR`` (created), None when unset or empty."""
    import os

    v = os.environ.get(ENV, "").strip()
    if not v:
        return None
    p = Path(v).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"${ENV}={v}: cannot create the folder ({e.strerror})") from None
    return p


def read_json(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read ({e})") from None
