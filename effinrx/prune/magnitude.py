"""tfmot magnitude pruning of the NRX (claim P1): unstructured PolynomialDecay 0 -> target, or 2:4.

How tfmot is attached. ``prune_low_magnitude(model)`` only accepts Sequential/functional models;
the CGNN is a subclassed ``tf_keras.Model`` (per-user stacking, aggregation over the other users),
so tfmot refuses it ("Subclassed models are not supported"). tfmot *does* accept single built-in
layers, so every ``Dense``/``SeparableConv2D`` is wrapped in ``prune_low_magnitude(layer, ...)``
through the ``wrap`` hook of :func:`effinrx.receivers.nrx_layers.build_cgnn` as it is created: the
masking, thresholds, schedule and 2:4 mask are tfmot's own code. tfmot's ``PruneRegistry`` prunes
``Dense.kernel`` and ``SeparableConv2D.pointwise_kernel`` only; depthwise kernels and biases stay
dense (counted by :func:`tfmot_coverage`). Measured: NRX-RT 102,144 pointwise + 30,208 Dense kernel
params pruned (92.6 % of 142,922), 9,126 depthwise + 1,444 bias left dense; NRX-Large 331,008 +
73,216 pruned (92.4 % of 437,366), 29,106 depthwise + 4,036 bias left dense. At target 0.8 the
overall sparsity is therefore 0.741 (RT) / 0.739 (Large). 2:4: tfmot groups 4 consecutive input
channels (C_in) per output channel, computes the mask once at pruning step 1 and zero-pads a partial
last group; the C_in = 18 and 114 pointwise kernels have a 2-entry tail per output that stays dense,
so the 2:4 kernel sparsity is 0.497 (RT overall 0.460).

Training: :func:`effinrx.training.nrx.train` (warm start from the reference weights). Its custom loop has
no Keras callbacks, so the two things ``UpdatePruningStep`` does are done here: ``pruning_step``
is set to 0 before the first step (the wrapper increments it on every training call and asserts
>= 1), and ``weight_mask_op`` is applied after the last step (Adam moved the masked weights).

Stripping: ``tfmot.sparsity.keras.strip_pruning`` clones the model with ``clone_model``, which
again only supports Sequential/functional models (ValueError on the CGNN). Its per-layer action is
"return the inner layer"; the inner layers are the raw layers whose variables
``net.get_core_weights()`` reads, so the masked weights are copied into a fresh, unwrapped CGNN.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from effinrx.errors import ConfigError
from effinrx.prune.recipe import PruneRecipe, PruneResult, sparsity_report
from effinrx.receivers.nrx import load_model
from effinrx.training.nrx import TrainRecipe, train


def _tfmot():
    from effinrx._tf import tf

    tf()  # TF_USE_LEGACY_KERAS before tfmot picks its Keras
    import tensorflow_model_optimization as tfmot

    return tfmot


def make_wrap(recipe: PruneRecipe):
    """The ``wrap`` hook: layer -> ``prune_low_magnitude(layer, **params)`` for ``recipe``."""
    recipe.validate()
    if recipe.method != "magnitude":
        raise ConfigError(f"make_wrap is for magnitude pruning, recipe says '{recipe.method}'")
    sk = _tfmot().sparsity.keras
    if recipe.pattern == "2:4":
        params = {"sparsity_m_by_n": (2, 4)}
    else:
        params = {"pruning_schedule": sk.PolynomialDecay(
            initial_sparsity=0.0, final_sparsity=float(recipe.target), begin_step=0,
            end_step=recipe.schedule_end(), power=recipe.schedule_power(),
            frequency=int(recipe.frequency))}

    def wrap(layer):
        return sk.prune_low_magnitude(layer, **params)

    return wrap


def wrappers(net) -> list:
    """The tfmot ``PruneLowMagnitude`` wrappers of a wrapped CGNN (one per core layer)."""
    _tfmot()
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import (
        PruneLowMagnitude)

    out = [l for l in net.all_layers if isinstance(l, PruneLowMagnitude)]
    if not out:
        raise ConfigError("model has no tfmot pruning wrappers (build it with make_wrap)")
    return out


def tfmot_coverage(net) -> dict:
    """Parameter counts tfmot prunes / leaves dense, by variable kind, over all wrappers."""
    pruned: dict = {}
    dense: dict = {}
    for w in wrappers(net):
        ids = {id(v) for v in w.layer.get_prunable_weights()}
        for v in w.layer.trainable_weights:
            kind = v.name.split("/")[-1].split(":")[0]
            d = pruned if id(v) in ids else dense
            d[kind] = d.get(kind, 0) + int(v.shape.num_elements())
    return {"pruned": pruned, "not_pruned": dense}


def apply_masks(net) -> None:
    """weights <- weights * mask in every wrapper (what ``UpdatePruningStep.on_epoch_end`` does)."""
    for w in wrappers(net):
        w.pruning_obj.weight_mask_op()


def strip(net):
    """Apply the masks and copy the core weights into a fresh unwrapped CGNN of the same config."""
    apply_masks(net)
    ws = net.get_core_weights()
    return load_model(net.cfg, ws), ws


def prune_magnitude(recipe: PruneRecipe, work_dir=None, progress: bool = False) -> PruneResult:
    """Wrap with tfmot, fine-tune with :func:`effinrx.training.nrx.train`, strip. ``work_dir`` receives
    the training log/checkpoint (a temporary folder, removed afterwards, when None)."""
    recipe.validate()
    t0 = time.time()
    net = load_model(recipe.model, recipe.init, wrap=make_wrap(recipe))
    coverage = tfmot_coverage(net)
    for w in wrappers(net):
        w.pruning_step.assign(0)  # UpdatePruningStep.on_train_begin
    tr = TrainRecipe(model=recipe.model, steps=int(recipe.steps), batch_size=int(recipe.batch_size),
                     learning_rate=float(recipe.learning_rate), num_prbs=int(recipe.num_prbs),
                     seed=int(recipe.seed), init=recipe.init, ckpt_every=10**9, log_every=10)
    with tempfile.TemporaryDirectory(prefix="effinrx-prune-") as tmp:  # log/ckpt of train()
        out = Path(work_dir) if work_dir is not None else Path(tmp)
        summary = train(tr, out, resume=False, net=net, progress=progress)
    steps_seen = {int(w.pruning_step.numpy()) for w in wrappers(net)}
    if steps_seen != {int(recipe.steps)}:  # every wrapper must have seen every training step
        raise ConfigError(f"tfmot pruning_step after {recipe.steps} steps is {sorted(steps_seen)}")
    plain, ws = strip(net)
    plain.weights_source = f"pruned:{recipe.method}-{recipe.pattern}"
    return PruneResult(plain, ws, recipe, summary, sparsity_report(plain), coverage,
                       round(time.time() - t0, 1))
