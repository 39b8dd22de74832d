"""Training, saving and loading of the DeepRx receiver on the SIMO link (seed 001).

Training data (:func:`effinrx.link.simo.train_batches`): SIMO 1x2, 64-QAM rate 0.505, 4 PRBs,
CDL-A/B/C, delay spread 10-100 ns, UE speed 0-50 m/s, SNR -2..15 dB uniform per example; BCE on
the coded bits of the data REs (bit-metric decoding rate), Adam with cosine learning-rate decay.
The paper trains 128 ch x 8 blocks with batch 128 on a GPU; the shipped checkpoint is a CPU-sized
32 x 4 network trained in two runs on 2 shared cores (80 min in all; ``effinrx/data/README.md``
has the commands), and every number measured with it says its width.

Checkpoint: ``effinrx/data/deeprx-<width>x<depth>.npz`` (``get_weights()`` order, float32) and a
``.json`` sidecar (format, config, recipe, steps, seed, git hash, wall time, final BCE), written
atomically by :func:`effinrx.weights.save_npz`. A run also writes ``<out>-partial.npz`` every
``Recipe.checkpoint_minutes`` (removed when the run completes): a run stopped from outside keeps its
latest weights, and ``Recipe.init`` continues from them (a warm start with a fresh optimiser and
learning-rate schedule, not an exact resume). A warm-started checkpoint's sidecar records its start
(file, weight digest, steps and recipe) and the steps and wall time of the whole chain.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from effinrx.errors import ConfigError, WeightsError
from effinrx.link.simo import TRAIN, data_mask, simo_scenario, train_batches
from effinrx.quant.deeprx import init_qat_scales
from effinrx.receivers.deeprx import DeepRxReceiver, build_deeprx, copy_weights, train
from effinrx.weights import arrays_sha1, load_npz, save_npz

FORMAT = "effinrx-deeprx-v1"
DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Recipe:
    """What :func:`train_and_save` runs. ``max_minutes`` stops early (steps run are recorded)."""

    width: int = 32
    depth: int = 4
    num_prbs: int = 4
    batch_size: int = 32
    steps: int = 3000
    lr: float = 2e-3
    lr_end: float = 1e-4
    seed: int = 7
    max_minutes: float | None = 25.0
    snr_db: tuple = (-2.0, 15.0)
    init: str | None = None  # start weights (a DeepRx checkpoint of the same size); None: random
    checkpoint_minutes: float = 10.0

    def __post_init__(self):
        for n in ("width", "num_prbs", "batch_size", "steps"):
            if not isinstance(getattr(self, n), int) or getattr(self, n) < 1:
                raise ConfigError(f"Recipe.{n} must be an int >= 1, got {getattr(self, n)!r}")
        if not isinstance(self.depth, int) or self.depth < 0:
            raise ConfigError(f"Recipe.depth must be an int >= 0, got {self.depth!r}")
        if not 0 < self.lr_end <= self.lr:
            raise ConfigError(f"need 0 < lr_end <= lr, got lr={self.lr}, lr_end={self.lr_end}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"Recipe.max_minutes must be > 0 or None, got {self.max_minutes}")
        if len(tuple(self.snr_db)) != 2 or not self.snr_db[0] < self.snr_db[1]:
            raise ConfigError(f"Recipe.snr_db must be (low, high) with low < high, got {self.snr_db!r}")
        if not self.checkpoint_minutes > 0:
            raise ConfigError(f"Recipe.checkpoint_minutes must be > 0, got {self.checkpoint_minutes}")


def shipped_path(width: int = 32, depth: int = 4) -> Path:
    """Where the packaged checkpoint of a width/depth lives (it may not exist)."""
    return DATA_DIR / f"deeprx-{width}x{depth}.npz"


def new_receiver(num_prbs: int, width: int, depth: int, qat_bits: int | None = None, name: str = "deeprx"):
    """An untrained :class:`DeepRxReceiver` on the SIMO scenario grid ``(14, 12 * num_prbs)``."""
    sc = simo_scenario(num_prbs)
    mask = data_mask(sc)
    model = build_deeprx(mask.shape, width, depth, num_rx_ant=sc.num_rx_ant, bits_per_symbol=6,
                         qat_bits=qat_bits, name=name)
    return DeepRxReceiver(model, mask, name=name)


def _warm_start(rx: DeepRxReceiver, init: str | Path) -> dict:
    """Load the weights of checkpoint ``init`` into ``rx``; returns the sidecar's ``init`` record."""
    weights, m0 = load_npz(init)
    if m0.get("format") != FORMAT:
        raise WeightsError(f"{init}: sidecar format {m0.get('format')!r}, expected {FORMAT!r}")
    if [tuple(w.shape) for w in weights] != [tuple(w.shape) for w in rx.model.get_weights()]:
        raise WeightsError(f"{init}: weight shapes do not fit DeepRx {m0.get('config', {}).get('width')}x"
                           f"{m0.get('config', {}).get('depth')} -> the recipe's size and grid")
    rx.model.set_weights(weights)
    return {"file": Path(init).name, "weights_sha1": arrays_sha1(weights).hexdigest()[:12],
            "steps": m0.get("steps"), "steps_total": m0.get("steps_total", m0.get("steps")),
            "train_seconds_total": m0.get("train_seconds_total", m0.get("train_seconds_wall")),
            "recipe": m0.get("recipe"), "git_hash": m0.get("git_hash")}


def train_and_save(recipe: Recipe, out: str | Path | None = None, progress: bool = True) -> tuple:
    """Train a DeepRx with ``recipe`` (from random weights, or from ``recipe.init``) and save it
    (default :func:`shipped_path`).

    Returns ``(npz_path, meta)``; ``meta`` is the sidecar dict.
    """
    from effinrx._tf import set_seeds

    set_seeds(recipe.seed)
    rx = new_receiver(recipe.num_prbs, recipe.width, recipe.depth)
    start = _warm_start(rx, recipe.init) if recipe.init else None
    sc = simo_scenario(recipe.num_prbs)
    out = Path(out) if out is not None else shipped_path(recipe.width, recipe.depth)
    base = out.with_suffix("") if out.suffix == ".npz" else out
    partial = base.with_name(base.name + "-partial")

    def meta_of(losses, **extra) -> dict:
        tail = losses[-100:]
        before_steps = (start or {}).get("steps_total") or 0
        before_s = (start or {}).get("train_seconds_total") or 0.0
        return {
            "format": FORMAT,
            "config": {"width": recipe.width, "depth": recipe.depth, "grid": list(rx.data_mask.shape),
                       "num_rx_ant": 2, "bits_per_symbol": 6, "params": int(rx.model.count_params())},
            "recipe": {**dataclasses.asdict(recipe), "snr_db": list(recipe.snr_db),
                       "channels": {"models": list(TRAIN.models), "delay_spread_ns": list(TRAIN.delay_spread_ns),
                                    "speed_mps": list(TRAIN.speed)}},
            "scenario": sc.as_dict(),
            "steps": len(losses), "seed": recipe.seed,
            "train_seconds_wall": round(rx.train_seconds, 1),
            "init": start,
            "steps_total": before_steps + len(losses),
            "train_seconds_total": round(before_s + rx.train_seconds, 1),
            "bce_first100": round(sum(losses[:100]) / max(len(losses[:100]), 1), 5),
            "bce_last100": round(sum(tail) / max(len(tail), 1), 5),
            "trained_by": "effinrx deeprx train (2 shared CPU cores; wall time includes channel sampling)",
            **extra,
        }

    def checkpoint(losses):
        save_npz(partial, rx.model.get_weights(), meta_of(losses, partial=True))

    batches = train_batches(sc, recipe.batch_size, recipe.seed, TRAIN, recipe.snr_db)
    max_s = None if recipe.max_minutes is None else 60.0 * recipe.max_minutes
    losses = train(rx, batches, steps=recipe.steps, lr=recipe.lr, lr_end=recipe.lr_end,
                   progress=progress, max_seconds=max_s, checkpoint=checkpoint,
                   checkpoint_every_s=60.0 * recipe.checkpoint_minutes)
    meta = meta_of(losses)
    path = save_npz(out, rx.model.get_weights(), meta)
    for sfx in (".npz", ".json"):  # the finished checkpoint supersedes the partial one
        partial.with_name(partial.name + sfx).unlink(missing_ok=True)
    return path, meta


def load_receiver(path: str | Path | None = None, *, width: int = 32, depth: int = 4,
                  qat_bits: int | None = None, name: str | None = None):
    """A :class:`DeepRxReceiver` with the weights of ``path`` (default: the shipped ``width x depth``).

    With ``qat_bits`` the model has fake-quantised convolutions (per-channel scales initialised from
    the loaded kernels, :func:`effinrx.quant.deeprx.init_qat_scales`).
    Raises :class:`WeightsError` when the file is missing, not a DeepRx checkpoint, or does not fit.
    """
    p = Path(path) if path is not None else shipped_path(width, depth)
    weights, meta = load_npz(p)
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{p}: sidecar format {meta.get('format')!r}, expected {FORMAT!r}")
    cfg = meta["config"]
    num_prbs = int(cfg["grid"][1]) // 12
    fp = new_receiver(num_prbs, int(cfg["width"]), int(cfg["depth"]), name="deeprx-fp32")
    shapes = [tuple(w.shape) for w in fp.model.get_weights()]
    if shapes != [tuple(w.shape) for w in weights]:
        raise WeightsError(f"{p}: weight shapes do not fit DeepRx {cfg['width']}x{cfg['depth']} "
                           f"on grid {cfg['grid']}")
    fp.model.set_weights(weights)
    fp.meta = meta
    if qat_bits is None:
        if name:
            fp.name = name
        return fp

    q = new_receiver(num_prbs, int(cfg["width"]), int(cfg["depth"]), qat_bits=qat_bits,
                     name=name or f"deeprx-qat{qat_bits}")
    copy_weights(fp.model, q.model)
    init_qat_scales(q.model)
    q.meta = meta
    return q
