"""Movement pruning of the NRX (claim P7; Sanh et al. 2020, as written in the EffiNRX blog).

Score of every prunable weight, accumulated over the fine-tuning steps t:

    S_ij = - sum_t (dL/dW'_ij)^(t) * W_ij^(t),    W' = W * M (the masked weight the layer uses)

(the blog's alpha_S = 1; the ranking does not depend on it). A weight moving *away* from zero
(gradient sign opposite to its own sign) gains score; one being pushed towards zero loses it.

Schedule: gradual, not one-shot. From step 0 the scores accumulate; every ``frequency`` steps the
mask of each kernel keeps its top ``1 - s(t)`` scores (:func:`effinrx.prune.masks.topk_mask`, per
kernel like tfmot), s(t) = cubic ramp 0 -> target until ``end_step`` (``PruneRecipe.power``,
default 3), then fine-tuning continues with the final mask. Masked weights keep receiving score
(dL/dW' exists for them), so a pruned weight can come back, as in the paper.

Same coverage as tfmot for a like-for-like comparison with magnitude pruning: ``Dense.kernel``
and ``SeparableConv2D.pointwise_kernel``; depthwise kernels and biases stay dense.

Why a custom wrapper and not tfmot: tfmot has only magnitude scores. The gradient dL/dW' is read
by an identity op with a custom gradient on the masked kernel (its backward adds -dy * W to the
score variable), so :func:`effinrx.training.nrx.train` needs no gradient hook: its tape drives scoring.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from effinrx.errors import ConfigError
from effinrx.prune.masks import polynomial_sparsity, topk_mask
from effinrx.prune.recipe import PruneRecipe, PruneResult, sparsity_report
from effinrx.receivers.nrx import load_model
from effinrx.training.nrx import TrainRecipe, train

_CLS = None


def _wrapper_class():
    """Define the Keras wrapper lazily (importing this module must not import TF)."""
    global _CLS
    if _CLS is not None:
        return _CLS
    from effinrx._tf import keras, tf

    k, t = keras(), tf()

    class MovementPrune(k.layers.Layer):
        """Wraps a built-in ``Dense`` or ``SeparableConv2D`` (3x3, stride 1, 'same').

        Input float32 [..., C_in] (Dense) or [N, H, W, C_in] (conv); output as the inner layer.
        Variables: ``mask`` and ``score`` (float32, shape of the pruned kernel, not trainable).
        """

        def __init__(self, inner, **kw):
            super().__init__(name=f"movement_{inner.name}", **kw)
            kind = type(inner).__name__
            if kind not in ("Dense", "SeparableConv2D"):
                raise ConfigError(f"movement pruning wraps Dense/SeparableConv2D, got {kind}")
            if kind == "SeparableConv2D":
                c = inner.get_config()
                if tuple(c["strides"]) != (1, 1) or tuple(c["dilation_rate"]) != (1, 1) or \
                        c["depth_multiplier"] != 1 or c["data_format"] not in (None, "channels_last"):
                    raise ConfigError(f"{inner.name}: movement wrapper supports stride 1, dilation 1, "
                                      f"depth_multiplier 1, channels_last only ({c})")
            self.inner, self.kind = inner, kind

        def build(self, input_shape):
            if not self.inner.built:
                self.inner.build(input_shape)
            shape = self.kernel_var().shape
            self.mask = self.add_weight("mask", shape=shape, initializer="ones", trainable=False)
            self.score = self.add_weight("score", shape=shape, initializer="zeros", trainable=False)
            super().build(input_shape)

        def kernel_var(self):
            return self.inner.pointwise_kernel if self.kind == "SeparableConv2D" else self.inner.kernel

        def _masked_kernel(self):
            w = t.convert_to_tensor(self.kernel_var())
            m = t.convert_to_tensor(self.mask)
            score = self.score

            @t.custom_gradient
            def tap(w_raw, m_):
                def grad(dy):  # dy = dL/dW' (W' = W * M)
                    # side effect inside the backward pass: the movement score -dL/dW' * W
                    with t.control_dependencies([score.assign_add(-dy * w_raw)]):
                        return dy * m_, t.zeros_like(m_)
                return w_raw * m_, grad

            return tap(w, m)

        def call(self, x, training=None):
            lay = self.inner
            w = self._masked_kernel()
            if self.kind == "Dense":
                y = t.tensordot(x, w, [[x.shape.rank - 1], [0]])
            else:
                y = t.nn.separable_conv2d(x, lay.depthwise_kernel, w, strides=[1, 1, 1, 1],
                                          padding=lay.padding.upper())
            if lay.use_bias:
                y = t.nn.bias_add(y, lay.bias)
            return lay.activation(y) if lay.activation is not None else y

        def update_mask(self, sparsity: float) -> None:
            self.mask.assign(topk_mask(self.score.numpy(), sparsity))

        def bake(self) -> None:
            """kernel <- kernel * mask (the weights a plain layer must hold)."""
            v = self.kernel_var()
            v.assign(v * self.mask)

    _CLS = MovementPrune
    return _CLS


def wrap(layer):
    """The ``wrap`` hook for :func:`effinrx.receivers.nrx_layers.build_cgnn`."""
    return _wrapper_class()(layer)


def wrappers(net) -> list:
    cls = _wrapper_class()
    out = [l for l in net.all_layers if isinstance(l, cls)]
    if not out:
        raise ConfigError("model has no movement-pruning wrappers (build it with wrap=movement.wrap)")
    return out


def scores(net) -> list[np.ndarray]:
    """Current movement scores, one float32 array per wrapped kernel (core-layer order)."""
    return [w.score.numpy() for w in wrappers(net)]


def make_on_step(recipe: PruneRecipe):
    """``on_step(step, net)`` for :func:`effinrx.training.nrx.train`: after training step ``step``
    (0-based) update the masks every ``frequency`` steps until ``end_step`` (cubic ramp)."""
    end, f, p = recipe.schedule_end(), int(recipe.frequency), recipe.schedule_power()
    log: list = []

    def on_step(step: int, net) -> None:
        done = step + 1
        if done > end or done % f:
            return
        s = polynomial_sparsity(done, recipe.target, 0, end, p)
        for w in wrappers(net):
            w.update_mask(s)
        log.append((done, s))

    on_step.log = log
    return on_step


def prune_movement(recipe: PruneRecipe, work_dir=None, progress: bool = False) -> PruneResult:
    """Wrap, fine-tune with :func:`effinrx.training.nrx.train` while scoring and masking, bake the masks
    and copy the weights into a fresh unwrapped CGNN. ``train`` summary gains ``mask_updates``."""
    recipe.validate()
    if recipe.method != "movement":
        raise ConfigError(f"prune_movement needs method 'movement', recipe says '{recipe.method}'")
    t0 = time.time()
    net = load_model(recipe.model, recipe.init, wrap=wrap)
    cov: dict = {"pruned": {}, "not_pruned": {}}
    for w in wrappers(net):
        for v in w.inner.trainable_weights:
            kind = v.name.split("/")[-1].split(":")[0]
            d = cov["pruned"] if v is w.kernel_var() else cov["not_pruned"]
            d[kind] = d.get(kind, 0) + int(v.shape.num_elements())
    tr = TrainRecipe(model=recipe.model, steps=int(recipe.steps), batch_size=int(recipe.batch_size),
                     learning_rate=float(recipe.learning_rate), num_prbs=int(recipe.num_prbs),
                     seed=int(recipe.seed), init=recipe.init, ckpt_every=10**9, log_every=10)
    on_step = make_on_step(recipe)
    with tempfile.TemporaryDirectory(prefix="effinrx-prune-") as tmp:  # log/ckpt of train()
        out = Path(work_dir) if work_dir is not None else Path(tmp)
        summary = train(tr, out, resume=False, net=net, on_step=on_step, progress=progress)
    if not on_step.log or abs(on_step.log[-1][1] - recipe.target) > 1e-9:
        raise ConfigError(f"movement schedule never reached the target {recipe.target}: {on_step.log[-3:]}")
    if not any(np.any(s != 0) for s in scores(net)):
        raise ConfigError("movement scores are all zero: the score tap saw no gradient")
    summary["mask_updates"] = len(on_step.log)
    for w in wrappers(net):
        w.bake()
    ws = net.get_core_weights()
    plain = load_model(net.cfg, ws)
    plain.weights_source = "pruned:movement-unstructured"
    return PruneResult(plain, ws, recipe, summary, sparsity_report(plain), cov, round(time.time() - t0, 1))
