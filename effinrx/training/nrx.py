"""NRX training loop (shared by plain training, distillation, QAT and pruning fine-tuning).

Loss (reference recipe): BCE-from-logits of the LLR readout on the coded bits of the active UEs
(data REs only) + ``mse_weight`` x MSE of the channel readout against the true effective (precoded)
channel, on UMi slots with 1 or 2 active UEs (per step, uniformly), Eb/N0 drawn uniformly from a
range that depends on the number of active UEs; Adam.

Checkpoints: ``<out>/ckpt_latest.npz`` + ``.json`` (config, recipe, step, git hash, seed) every
``ckpt_every`` steps and at the end; ``resume=True`` restarts from it (weights and step; Adam
moments are not saved, the data stream is re-seeded with ``seed + step``). With
``TrainRecipe.exact_resume`` every step draws its data from its own seed (``seed``, step) and Adam's
state is checkpointed too (``opt_latest.npz``), so a run stopped at a checkpoint and resumed ends
with the weights of an unbroken run (long runs split over several sessions); it is off by default
because its data stream differs from the default one that the committed goldens were trained on.
Logs: ``<out>/log.csv`` (one row per ``log_every`` steps) and ``<out>/summary.json``.

Hooks: ``extra_loss(net, slot, llr_coded, h_ref) -> scalar`` (e.g. distillation),
``on_step(step, net)`` (e.g. tfmot pruning-step update), ``wrap`` (layer wrapper at build time).
"""
from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from effinrx import weights as W
from effinrx.errors import ConfigError
from effinrx.io import atomic_write_json, atomic_write_text
from effinrx.link.umi import UMiSlotSource
from effinrx.receivers.nrx import NRXReceiver, load_model
from effinrx.receivers.nrx_preproc import effective_channel_real, precoding_matrices
from effinrx.training.resume import load_opt, read_json, same_recipe, same_start, save_opt, step_seed


#: runs with at least this many steps left draw their UMi slots through the compiled source
COMPILE_FROM_STEPS = 64


@dataclass
class TrainRecipe:
    model: str = "nrx-rt"
    steps: int = 1000
    batch_size: int = 16
    learning_rate: float = 1e-3
    mse_weight: float = 0.02
    ebno_1ue: tuple = (0.0, 10.0)  # dB, Eb/N0 range with 1 active UE (reference: 0..10)
    ebno_2ue: tuple = (1.0, 7.0)  # dB, with 2 active UEs (reference first phase: 1..7)
    num_prbs: int = 4
    seed: int = 0
    ckpt_every: int = 100
    log_every: int = 10
    init: Optional[str] = None  # starting weights (path/"reference"/"packaged"), None = random
    exact_resume: bool = False  # per-step data seeds + Adam state in the checkpoint (module docstring)

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError(f"steps and batch_size must be >= 1 (got {self.steps}, {self.batch_size})")
        if not 0.0 <= self.mse_weight <= 1.0:
            raise ConfigError(f"mse_weight must be in [0, 1], got {self.mse_weight}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        for r in (self.ebno_1ue, self.ebno_2ue):
            if len(r) != 2 or r[0] > r[1]:
                raise ConfigError(f"Eb/N0 range must be (lo, hi) with lo <= hi, got {r}")


def nrx_losses(rx, slot, llr_grid, h_ref, precoder):
    """(bce, mse) scalars over active UEs. ``rx``: NRXReceiver (data-RE map); ``slot``: link.umi.Slot."""
    from effinrx._tf import tf

    t = tf()
    act = slot.active  # [B, U]
    llr = rx.grid_to_coded(llr_grid)  # [B, U, N]
    bce = t.nn.sigmoid_cross_entropy_with_logits(labels=t.cast(slot.coded, t.float32), logits=llr)
    n_act = t.maximum(t.reduce_sum(act), 1.0)
    bce = t.reduce_sum(t.reduce_mean(bce, axis=-1) * act) / n_act
    h_true = effective_channel_real(slot.h, precoder)  # [B, U, S, T, 8]
    mse = t.reduce_mean(t.square(h_true - h_ref), axis=[2, 3, 4])
    mse = t.reduce_sum(mse * act) / n_act
    return bce, mse


def train(recipe: TrainRecipe, out_dir, resume: bool = True, net=None, wrap=None,
          extra_loss: Optional[Callable] = None, on_step: Optional[Callable] = None,
          progress: bool = True) -> dict:
    """Run the training loop; returns the summary dict (also written to ``summary.json``)."""
    recipe.validate()
    from effinrx._tf import set_seeds, tf

    t = tf()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "ckpt_latest.npz"
    start = 0
    exact = recipe.exact_resume
    if net is None:
        if exact:  # a random init drawn from the run's seed, not from whatever ran before
            set_seeds(recipe.seed)
        net = load_model(recipe.model, recipe.init, wrap)
    # exact runs record what they started from: a folder trained from other weights is not resumed
    start_digest = W.arrays_sha1(net.get_core_weights()).hexdigest() if exact else None
    if resume and ckpt.is_file():
        ws, meta = W.load_npz(ckpt)
        if exact:
            same_recipe(ckpt, meta.get("recipe"), _recipe_dict(recipe))
            same_start(ckpt, meta.get("start_digest"), start_digest)
        net.set_core_weights(ws, source=str(ckpt))
        start = int(meta.get("step", 0))
        if start >= recipe.steps and (out / "summary.json").is_file():
            return {**read_json(out / "summary.json"), "resumed_from": start}  # finished: nothing to run
    set_seeds(recipe.seed + start)
    rx = NRXReceiver(net.cfg, net=net, num_prbs=recipe.num_prbs)
    # the compiled slot source draws the same slots (to float32 rounding) ~13x faster but costs a
    # ~30 s trace: it pays from a few dozen steps on, short runs stay eager and bit-identical (an
    # exact-resume run decides on its whole length, so every part of it draws the same way)
    src = UMiSlotSource(recipe.num_prbs, 2,
                        compiled=(recipe.steps if exact else recipe.steps - start) >= COMPILE_FROM_STEPS)
    precoder = t.constant(precoding_matrices(src.tx))
    from effinrx._tf import keras

    opt = keras().optimizers.Adam(learning_rate=recipe.learning_rate)
    variables = net.trainable_variables
    if exact and start > 0:
        load_opt(out / "opt_latest.npz", opt, variables, start)

    @t.function(autograph=False, reduce_retracing=True)
    def step_fn(y, h, coded, active, no):
        slot = _S(y=y, h=h, coded=coded, active=active)
        with t.GradientTape() as tape:
            llr, h_ref = rx.forward(y, active, training=True)
            bce, mse = nrx_losses(rx, slot, llr, h_ref, precoder)
            loss = bce + recipe.mse_weight * mse
            if extra_loss is not None:
                loss = loss + extra_loss(net, slot, rx.grid_to_coded(llr), h_ref)
        grads = tape.gradient(loss, variables)
        opt.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        return loss, bce, mse

    rows = []
    log_path = out / "log.csv"
    if resume and log_path.is_file() and start > 0:
        # rows logged after the checkpoint belong to steps that are run again
        rows = [r for r in csv.DictReader(io.StringIO(log_path.read_text())) if int(r["step"]) <= start]
    t0 = time.time()
    rng = None if exact else t.random.Generator.from_seed(recipe.seed + start)
    try:
        from tqdm import tqdm

        bar = tqdm(range(start, recipe.steps), desc=f"train {recipe.model}", disable=not progress,
                   initial=start, total=recipe.steps)
    except ImportError:  # pragma: no cover
        bar = range(start, recipe.steps)
    loss = bce = mse = t.constant(float("nan"))
    for step in bar:
        if exact:  # this step's data from its own seed: a resumed run draws what an unbroken one would
            k = step_seed(recipe.seed, step)
            set_seeds(k)
            n_act = 1 + int(t.random.Generator.from_seed(k).uniform([], 0, 2, dtype=t.int32))
        else:
            n_act = 1 + int(rng.uniform([], 0, 2, dtype=t.int32))
        rng_db = recipe.ebno_1ue if n_act == 1 else recipe.ebno_2ue
        s = src(recipe.batch_size, tuple(rng_db), num_active=n_act)
        loss, bce, mse = step_fn(s.y, s.h, s.coded, s.active, s.no)
        if on_step is not None:
            on_step(step, net)
        done = step + 1
        if done % recipe.log_every == 0 or done == recipe.steps:
            rows.append({"step": done, "loss": f"{float(loss):.6f}", "bce": f"{float(bce):.6f}",
                         "mse": f"{float(mse):.6f}", "num_active": n_act,
                         "elapsed_s": f"{time.time() - t0:.1f}"})
            _write_csv(log_path, rows)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{float(loss):.4f}", bce=f"{float(bce):.4f}")
        if done % recipe.ckpt_every == 0 or done == recipe.steps:
            if exact:  # before the weights: a checkpoint's step always has its Adam state
                save_opt(out / "opt_latest.npz", opt, done)
            _save(ckpt, net, recipe, done, start_digest)
    summary = {"recipe": _recipe_dict(recipe), "config": net.cfg.to_dict(), "steps_done": recipe.steps,
               "resumed_from": start, "train_seconds_this_run": round(time.time() - t0, 1),
               "final_loss": float(loss), "final_bce": float(bce), "final_mse": float(mse),
               "checkpoint": str(ckpt)}
    atomic_write_json(out / "summary.json", summary)
    return summary


class _S:
    """Minimal slot view used inside the compiled step."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _recipe_dict(recipe: TrainRecipe) -> dict:
    d = asdict(recipe)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _save(path: Path, net, recipe: TrainRecipe, step: int, start_digest: str | None = None) -> None:
    meta = {"config": net.cfg.to_dict(), "recipe": _recipe_dict(recipe), "step": step, "seed": recipe.seed,
            "format": "effinrx-nrx-v1"}
    if start_digest is not None:
        meta["start_digest"] = start_digest
    W.save_npz(path, net.get_core_weights(), meta)


def _write_csv(path: Path, rows: list) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())
