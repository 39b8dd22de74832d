"""Training, saving and loading of the DeepRx receiver on the SIMO link (seed 001).

Training data (:func:`effinrx.link.simo.train_batches`): SIMO 1x2, 64-QAM rate 0.505, 4 PRBs,
CDL-A/B/C, delay spread 10-100 ns, UE speed 0-50 m/s, SNR -2..15 dB uniform per example; BCE on
the coded bits of the data REs (bit-metric decoding rate), Adam with cosine learning-rate decay.
The paper trains 128 ch x 8 blocks with batch 128 on a GPU; the shipped checkpoint is a CPU-sized
network trained in ~25 min on 2 shared cores, and every number measured with it says its width.

Checkpoint: ``effinrx/data/deeprx-<width>x<depth>.npz`` (``get_weights()`` order, float32) and a
``.json`` sidecar (format, config, recipe, steps, seed, git hash, wall time, final BCE), written
atomically by :func:`effinrx.weights.save_npz`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from effinrx.errors import ConfigError, WeightsError
from effinrx.link.simo import TRAIN, data_mask, simo_scenario, train_batches
from effinrx.quant.deeprx import init_qat_scales
from effinrx.receivers.deeprx import DeepRxReceiver, build_deeprx, copy_weights, train
from effinrx.weights import load_npz, save_npz

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


def train_and_save(recipe: Recipe, out: str | Path | None = None, progress: bool = True) -> tuple:
    """Train a fresh DeepRx with ``recipe`` and save it (default :func:`shipped_path`).

    Returns ``(npz_path, meta)``; ``meta`` is the sidecar dict.
    """
    from effinrx._tf import set_seeds

    set_seeds(recipe.seed)
    rx = new_receiver(recipe.num_prbs, recipe.width, recipe.depth)
    sc = simo_scenario(recipe.num_prbs)
    batches = train_batches(sc, recipe.batch_size, recipe.seed, TRAIN, recipe.snr_db)
    max_s = None if recipe.max_minutes is None else 60.0 * recipe.max_minutes
    losses = train(rx, batches, steps=recipe.steps, lr=recipe.lr, lr_end=recipe.lr_end,
                   progress=progress, max_seconds=max_s)
    tail = losses[-100:]
    meta = {
        "format": FORMAT,
        "config": {"width": recipe.width, "depth": recipe.depth, "grid": list(rx.data_mask.shape),
                   "num_rx_ant": 2, "bits_per_symbol": 6, "params": int(rx.model.count_params())},
        "recipe": {**dataclasses.asdict(recipe), "snr_db": list(recipe.snr_db),
                   "channels": {"models": list(TRAIN.models), "delay_spread_ns": list(TRAIN.delay_spread_ns),
                                "speed_mps": list(TRAIN.speed)}},
        "scenario": sc.as_dict(),
        "steps": len(losses), "seed": recipe.seed,
        "train_seconds_wall": round(rx.train_seconds, 1),
        "bce_first100": round(sum(losses[:100]) / len(losses[:100]), 5),
        "bce_last100": round(sum(tail) / len(tail), 5),
        "trained_by": "effinrx deeprx train (2 shared CPU cores; wall time includes channel sampling)",
    }
    path = save_npz(out or shipped_path(recipe.width, recipe.depth), rx.model.get_weights(), meta)
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
