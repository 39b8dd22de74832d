"""Knowledge distillation of the NRX: a frozen teacher (NRX-Large, reference weights) trains a
student (NRX-RT, same architecture and latency as RT) through the ``extra_loss`` hook of
:func:`effinrx.training.nrx.train`.

Loss of the distilled student per step (``s`` student LLRs, ``t`` teacher LLRs, ``b`` coded bits,
all float32 ``[B, U, N]`` over the data REs; means over bits, then over active UEs):

    L = alpha * BCE(s, b) + (1 - alpha) * D(t, s) + mse_weight * MSE(h_ref, h_true)

* ``D = "kl"`` (default): temperature-scaled KL divergence between the per-bit Bernoulli
  distributions, ``T^2 * KL(Bern(sigmoid(t/T)) || Bern(sigmoid(s/T)))`` (Hinton et al.: the T^2
  keeps the gradient scale independent of T). It is 0 when ``s == t`` and >= 0 otherwise.
* ``D = "mse"``: mean squared LLR difference ``(s - clip(t, +-llr_clip))^2 / T^2``; the clip stops
  the teacher's very confident bits (|LLR| of tens) from dominating.

``train`` already adds ``BCE + mse_weight * MSE``, so the hook returns
``(1 - alpha) * (D - BCE)``; the total is the formula above. Teacher outputs go through
``stop_gradient`` and the teacher's variables are not trainable: nothing flows into it.

The claim D1 compares this student with "the same RT trained alone": :func:`train_pair` builds one
random init (seeded), trains two copies of it with the same recipe (same seed, hence the same data
stream: same slots, Eb/N0 and active-UE draws), one plain and one distilled.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from effinrx.errors import ConfigError

DISTANCES = ("kl", "mse")


@dataclass
class DistillConfig:
    """``alpha`` in [0, 1] weights hard-label BCE against the teacher term; ``temperature`` > 0;
    ``distance`` "kl" | "mse"; ``llr_clip`` > 0 (teacher clip for "mse"); ``teacher`` model name
    and ``teacher_weights`` (see :func:`effinrx.receivers.nrx.resolve_weights`)."""

    alpha: float = 0.5
    temperature: float = 1.0
    distance: str = "kl"
    llr_clip: float = 20.0
    teacher: str = "nrx-large"
    teacher_weights: Optional[str] = "reference"  # None = random init (tests only)

    def validate(self) -> None:
        a, t, c = self.alpha, self.temperature, self.llr_clip
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 <= a <= 1.0:
            raise ConfigError(f"distillation alpha must be a number in [0, 1], got {a!r}")
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise ConfigError(f"distillation temperature must be a finite number > 0, got {t!r}")
        if self.distance not in DISTANCES:
            raise ConfigError(f"distillation distance must be one of {DISTANCES}, got {self.distance!r}")
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c <= 0:
            raise ConfigError(f"distillation llr_clip must be a finite number > 0, got {c!r}")


# ---------------------------------------------------------------- loss terms -----
def bernoulli_kl(teacher_logits, student_logits, temperature: float = 1.0):
    """Per-element ``T^2 * KL(Bern(sigmoid(t/T)) || Bern(sigmoid(s/T)))``, float32, same shape as
    the (broadcast) inputs. Gradient flows into both arguments (callers stop the teacher's)."""
    from effinrx._tf import tf

    DistillConfig(temperature=temperature).validate()
    t = tf()
    tl = t.cast(teacher_logits, t.float32) / temperature
    sl = t.cast(student_logits, t.float32) / temperature
    p = t.sigmoid(tl)
    # log-sigmoid differences: exact 0 for equal logits and no log(0) at large |LLR|
    kl = p * (t.math.log_sigmoid(tl) - t.math.log_sigmoid(sl)) + \
        (1.0 - p) * (t.math.log_sigmoid(-tl) - t.math.log_sigmoid(-sl))
    # KL >= 0 mathematically; float32 cancellation can leave -1e-8 for nearly equal logits
    return temperature ** 2 * t.maximum(kl, 0.0)


def llr_mse(teacher_logits, student_logits, temperature: float = 1.0, llr_clip: float = 20.0):
    """Per-element ``(s - clip(t, +-llr_clip))^2 / T^2`` float32."""
    from effinrx._tf import tf

    DistillConfig(temperature=temperature, llr_clip=llr_clip).validate()
    t = tf()
    tc = t.clip_by_value(t.cast(teacher_logits, t.float32), -llr_clip, llr_clip)
    return t.square(t.cast(student_logits, t.float32) - tc) / temperature ** 2


def masked_mean(per_bit, active):
    """Mean over the last axis, then over active UEs: ``per_bit`` [B, U, N], ``active`` [B, U]
    float32 (1 = active) -> scalar. The same reduction as ``effinrx.training.nrx.nrx_losses``."""
    from effinrx._tf import tf

    t = tf()
    act = t.cast(active, t.float32)
    return t.reduce_sum(t.reduce_mean(per_bit, axis=-1) * act) / t.maximum(t.reduce_sum(act), 1.0)


def bce(student_llr, coded, active):
    """Hard-label BCE-from-logits: ``student_llr``/``coded`` [B, U, N], ``active`` [B, U] -> scalar."""
    from effinrx._tf import tf

    t = tf()
    per = t.nn.sigmoid_cross_entropy_with_logits(labels=t.cast(coded, t.float32),
                                                 logits=t.cast(student_llr, t.float32))
    return masked_mean(per, active)


def distance(teacher_llr, student_llr, active, cfg: DistillConfig):
    """Teacher term D (scalar) with the teacher behind ``stop_gradient``."""
    from effinrx._tf import tf

    cfg.validate()
    tt = tf().stop_gradient(tf().cast(teacher_llr, tf().float32))
    if cfg.distance == "kl":
        per = bernoulli_kl(tt, student_llr, cfg.temperature)
    else:
        per = llr_mse(tt, student_llr, cfg.temperature, cfg.llr_clip)
    return masked_mean(per, active)


def distill_loss(student_llr, teacher_llr, coded, active, cfg: DistillConfig):
    """``alpha * BCE(s, b) + (1 - alpha) * D(t, s)`` (scalar float32; no channel term).
    ``student_llr``, ``teacher_llr``, ``coded``: [B, U, N]; ``active``: [B, U]."""
    cfg.validate()
    h = bce(student_llr, coded, active)
    if cfg.alpha == 1.0:  # plain BCE; skips the teacher term (and its cost) entirely
        return h
    return cfg.alpha * h + (1.0 - cfg.alpha) * distance(teacher_llr, student_llr, active, cfg)


# ---------------------------------------------------------------- teacher + hook -----
def load_teacher(cfg: DistillConfig, num_prbs: int = 4, num_tx: int = 2):
    """Frozen teacher :class:`~effinrx.receivers.nrx.NRXReceiver` (variables not trainable)."""
    from effinrx.receivers.nrx import NRXReceiver

    cfg.validate()
    rx = NRXReceiver(cfg.teacher, cfg.teacher_weights, num_prbs=num_prbs, num_tx=num_tx,
                     name=f"teacher-{cfg.teacher}")
    rx.net.trainable = False
    return rx


def make_extra_loss(teacher_rx, cfg: DistillConfig):
    """The ``extra_loss(net, slot, llr_coded, h_ref) -> scalar`` hook of :func:`effinrx.training.nrx.train`:
    returns ``(1 - alpha) * (D - BCE)`` so that train's ``BCE + mse_weight * MSE`` becomes the
    distillation loss. ``slot.y`` complex64 [B, 1, 4, 14, S]; ``slot.coded``, ``llr_coded`` [B, U, N]."""
    cfg.validate()

    def extra_loss(net, slot, llr_coded, h_ref):
        from effinrx._tf import tf

        if cfg.alpha == 1.0:  # plain training: skip the teacher forward entirely
            return tf().constant(0.0)
        t_grid, _ = teacher_rx.forward(slot.y, slot.active, training=False)
        t_llr = tf().stop_gradient(teacher_rx.grid_to_coded(t_grid))
        d = distance(t_llr, llr_coded, slot.active, cfg)
        return (1.0 - cfg.alpha) * (d - bce(llr_coded, slot.coded, slot.active))

    return extra_loss


def student_init(model: str = "nrx-rt", seed: int = 0) -> list:
    """Random-init core weights of ``model`` drawn after seeding every RNG with ``seed``."""
    from effinrx._tf import set_seeds
    from effinrx.receivers.nrx import load_model

    set_seeds(seed)
    return [w.copy() for w in load_model(model, None).get_core_weights()]


def weakened_start(model: str = "nrx-rt", noise: float = 0.05, seed: int = 0) -> list:
    """Core weights of ``model`` from NVIDIA's reference weights with seeded Gaussian noise added to
    every array (std ``noise`` x that array's own std): a partially trained start shared by both
    students. From a random init the CPU budget leaves both students at TBLER ~1 (saturated, D1
    undecided); from this start they begin between the teacher and failure and the fine-tuning
    budget decides whether the teacher helps. Measured at 4 dB, 512 TBs (4 PRBs, DoubleTDL, seed 42):
    noise 0.01 -> TBLER 0.13, 0.02 -> 0.16, 0.04 -> 0.28, 0.07 -> 0.79, 0.1 and more -> 1.0. Raises WeightsError when the reference weights are
    absent (the benchmark skips first)."""
    import numpy as np

    from effinrx.receivers.nrx import load_model

    if not noise >= 0:
        raise ConfigError(f"weakened_start noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    out = []
    for w in load_model(model, "reference").get_core_weights():
        w = np.asarray(w, np.float32)
        sd = float(w.std()) if w.size > 1 else abs(float(w.reshape(-1)[0])) if w.size else 0.0
        out.append((w + rng.normal(0.0, noise * sd, w.shape)).astype(np.float32))
    return out


def train_pair(recipe, cfg: DistillConfig, out_dir, init: Optional[list] = None,
               progress: bool = False, resume: bool = False) -> dict:
    """Train the student alone and distilled from the same init with the same ``recipe``
    (:class:`effinrx.training.nrx.TrainRecipe`, ``init`` must be None: the shared random init is drawn
    here from ``recipe.seed`` unless ``init`` arrays are given). Writes ``<out>/alone`` and
    ``<out>/distilled`` run folders. Returns ``{"alone"|"distilled": {"net", "summary", "log"}}``
    plus ``"teacher"`` (the receiver) and ``"config"`` (dict). ``resume``: continue both runs from
    their checkpoints in ``out_dir`` (exact with ``recipe.exact_resume``; a finished run is only
    reloaded)."""
    from effinrx.receivers.nrx import load_model
    from effinrx.training.nrx import train

    cfg.validate()
    if recipe.init is not None:
        raise ConfigError(f"train_pair draws the shared random init itself; recipe.init must be None, "
                          f"got {recipe.init!r}")
    recipe.validate()
    init = student_init(recipe.model, recipe.seed) if init is None else list(init)
    teacher = load_teacher(cfg, recipe.num_prbs)
    out = Path(out_dir)
    res: dict = {"teacher": teacher, "config": asdict(cfg)}
    for name, hook in (("alone", None), ("distilled", make_extra_loss(teacher, cfg))):
        net = load_model(recipe.model, [w.copy() for w in init])
        summary = train(recipe, out / name, resume=resume, net=net, extra_loss=hook, progress=progress)
        log = (out / name / "log.csv").read_text()
        res[name] = {"net": net, "summary": summary, "log": log}
    return res


# ---------------------------------------------------------------- evaluation -----
def evaluate(receivers: dict, ebno_db: float, batches: int, batch_size: int, seed: int,
             num_prbs: int = 4) -> dict:
    """Held-out comparison of several NRX receivers on the *same* slots of the evaluation scenario
    (``Scenario(num_prbs=num_prbs)``: NVIDIA's DoubleTDL, both UEs active), run by the Monte-Carlo
    engine (:func:`effinrx.link.montecarlo.simulate_many`, its error rule and decoder): ``batches``
    batches of ``batch_size`` slots at ``ebno_db``, no early stop. ``seed``: the engine's slot seed
    (use one different from the training seed).

    ``receivers``: name -> :class:`~effinrx.receivers.nrx.NRXReceiver`. Returns ``{name: {"errors",
    "blocks", "bit_errors", "bits", "crc_failures": int, "bce": float64 ndarray [blocks]}}``: TB
    counts (a TB is in error when any information bit is wrong) and the BCE of each transport block
    (mean over its coded bits, batch-major then UE) and ``"tb_error"`` bool ndarray [blocks] (per-TB
    outcome), in the same order for every receiver so BCE and errors can be compared pairwise.
    """
    import numpy as np

    from effinrx.link.config import Scenario
    from effinrx.link.montecarlo import simulate_many

    if batches < 1 or batch_size < 1:
        raise ConfigError(f"batches and batch_size must be >= 1, got {batches}, {batch_size}")
    if not receivers:
        raise ConfigError("evaluate needs at least one receiver")
    sc = Scenario(num_prbs=int(num_prbs))
    blocks = batches * batch_size * sc.num_tx
    bces: dict = {n: [] for n in receivers}
    errs: dict = {n: [] for n in receivers}

    def on_batch(b):
        # every receiver runs every batch (target_errors > blocks), so the lists stay aligned
        for n, llr in b.llr.items():
            bces[n].append(_bce_per_tb(llr, b.coded).reshape(-1))
            errs[n].append(b.tb_error[n].reshape(-1))

    res = simulate_many(receivers, sc, [float(ebno_db)], max_blocks=blocks, target_errors=blocks + 1,
                        batch_size=batch_size, seed=seed, progress=False, on_batch=on_batch, with_llr=True)
    out = {}
    for n, (pc,) in res.items():
        out[n] = {"errors": pc.errors, "blocks": pc.blocks, "bit_errors": pc.bit_errors, "bits": pc.bits,
                  "crc_failures": pc.crc_failures, "bce": np.concatenate(bces[n]),
                  "tb_error": np.concatenate(errs[n])}
    return out


def _bce_per_tb(llr, coded):
    """Per-TB BCE-from-logits (mean over the coded bits, TF's stable form as in :func:`bce`):
    ``llr``, ``coded`` float32 [B, U, N] -> float64 ndarray [B, U]."""
    import numpy as np

    from effinrx._tf import tf

    t = tf()
    per = t.nn.sigmoid_cross_entropy_with_logits(labels=t.cast(coded, t.float32), logits=t.cast(llr, t.float32))
    return np.asarray(t.reduce_mean(per, axis=-1), np.float64)
