"""Pruning recipe, stable variable names and the sparsity report of a (pruned) NRX.

:class:`PruneRecipe` is what a pruning run records (JSON sidecar, golden meta): method
(``magnitude`` = tfmot ``prune_low_magnitude``, ``movement``), pattern (``unstructured`` with a
polynomial schedule to ``target``, or ``2:4``), fine-tuning length and optimizer settings.
:func:`prune_nrx` dispatches to :mod:`effinrx.prune.magnitude` / :mod:`effinrx.prune.movement`.

Both pruners prune only the *kernels* that tfmot prunes for the NRX's layers (``Dense.kernel`` and
``SeparableConv2D.pointwise_kernel``, tfmot's ``PruneRegistry``): depthwise kernels and biases
stay dense, which is why the overall sparsity is below the target (:func:`sparsity_report`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from effinrx.errors import ConfigError
from effinrx.prune.masks import check_sparsity
from effinrx.prune.storage import sparsity_table
from effinrx.receivers.nrx_layers import NRX_MODELS, _own_vars

METHODS = ("magnitude", "movement")
PATTERNS = ("unstructured", "2:4")


@dataclass
class PruneRecipe:
    """One pruning + fine-tuning run (warm start from ``init`` weights).

    Unstructured: sparsity rises from 0 at step 0 to ``target`` at ``end_step`` (default 3/4 of
    ``steps``; the rest fine-tunes with the final mask), mask updated every ``frequency`` steps,
    schedule exponent ``power`` (None: 1 for magnitude as in the paper's PolynomialDecay, 3 for
    movement as in Sanh et al.). 2:4 (magnitude only): mask fixed at the first step (tfmot).
    """

    model: str = "nrx-rt"
    method: str = "magnitude"
    pattern: str = "unstructured"
    target: float = 0.8
    steps: int = 40
    end_step: Optional[int] = None
    frequency: int = 1
    power: Optional[float] = None
    batch_size: int = 16
    learning_rate: float = 1e-3  # Adam, as the reference training
    seed: int = 0
    num_prbs: int = 4
    init: str = "reference"

    def validate(self) -> None:
        if self.model not in NRX_MODELS:
            raise ConfigError(f"prune: unknown model '{self.model}' (known: {', '.join(NRX_MODELS)})")
        if self.method not in METHODS:
            raise ConfigError(f"prune: unknown method '{self.method}' (known: {', '.join(METHODS)})")
        if self.pattern not in PATTERNS:
            raise ConfigError(f"prune: unknown pattern '{self.pattern}' (known: {', '.join(PATTERNS)})")
        if self.method == "movement" and self.pattern != "unstructured":
            raise ConfigError("prune: movement pruning is implemented for the unstructured pattern only")
        check_sparsity(self.target, "prune: target sparsity")
        if int(self.steps) < 1 or int(self.batch_size) < 1 or int(self.frequency) < 1:
            raise ConfigError(f"prune: steps, batch_size and frequency must be >= 1 (got {self.steps}, "
                              f"{self.batch_size}, {self.frequency})")
        e = self.schedule_end()
        if not 1 <= e <= self.steps:
            raise ConfigError(f"prune: end_step must be in 1..steps={self.steps}, got {e}")
        if self.power is not None and self.power <= 0:
            raise ConfigError(f"prune: power must be > 0, got {self.power}")
        if self.learning_rate <= 0:
            raise ConfigError(f"prune: learning_rate must be > 0, got {self.learning_rate}")

    def schedule_end(self) -> int:
        """Step at which the target sparsity is reached (multiple of ``frequency`` so the last
        mask update lands on it)."""
        e = int(self.end_step) if self.end_step is not None else max(1, (3 * int(self.steps)) // 4)
        f = max(int(self.frequency), 1)
        return max(f, (e // f) * f)

    def schedule_power(self) -> float:
        return float(self.power) if self.power is not None else (1.0 if self.method == "magnitude" else 3.0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["end_step"], d["power"] = self.schedule_end(), self.schedule_power()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PruneRecipe":
        try:
            return cls(**d)
        except TypeError as e:
            raise ConfigError(f"bad prune recipe {d}: {e}") from None


@dataclass
class PruneResult:
    """``net``: plain CGNN (no wrappers) holding the pruned weights; ``weights``: its core
    weights (reference order, float32 numpy); ``recipe``; ``train``: summary of the fine-tuning;
    ``report``: :func:`effinrx.prune.recipe.sparsity_report`; ``coverage``: which parameters the
    pruner touched; ``seconds``: wall time of wrap + fine-tune + strip."""

    net: object
    weights: list
    recipe: PruneRecipe
    train: dict
    report: dict
    coverage: dict = field(default_factory=dict)
    seconds: float = 0.0


def variable_names(net) -> list[str]:
    """Stable names of ``net.core_variables()`` (reference order), independent of Keras' layer
    numbering: ``<block>/L<i>_<sep|dense>/<depthwise_kernel|pointwise_kernel|kernel|bias>``."""
    names = []
    for i, (layer, blk) in enumerate(zip(net.core_layers, net.block_of)):
        kind = "sep" if hasattr(layer, "pointwise_kernel") else "dense"
        for v in _own_vars(layer):
            leaf = v.name.split("/")[-1].split(":")[0]
            names.append(f"{blk}/L{i:02d}_{kind}/{leaf}")
    return names


def prunable(name: str) -> bool:
    """True for the variables the pruners touch (tfmot's registry: pointwise and Dense kernels)."""
    leaf = name.rsplit("/", 1)[-1]
    return leaf in ("pointwise_kernel", "kernel")


def sparsity_report(net) -> dict:
    """Sparsity of a plain (unwrapped) NRX. Returns dict: ``overall`` (zeros / all params),
    ``kernels`` (zeros / pruned-kernel params), ``per_variable`` {name: sparsity} of the pruned
    kernels, ``params`` {pruned, depthwise, bias}, ``ceiling`` (overall sparsity if every pruned
    kernel sat exactly at the target: the bias/depthwise gap), ``total_params``, ``nonzeros``."""
    import numpy as np

    names = variable_names(net)
    ws = net.get_core_weights()
    rows, summ = sparsity_table(ws, names)
    params = {"pruned": 0, "depthwise": 0, "bias": 0}
    per = {}
    for r in rows:
        if prunable(r.name):
            params["pruned"] += r.size
            per[r.name] = round(r.sparsity, 6)
        elif r.kind in params:
            params[r.kind] += r.size
    total = summ["total_params"]
    kz = sum(r.zeros for r in rows if prunable(r.name))
    return {"overall": summ["overall"], "kernels": kz / params["pruned"], "per_variable": per,
            "params": params, "total_params": total, "pruned_fraction": params["pruned"] / total,
            "nonzeros": int(sum(int(np.count_nonzero(w)) for w in ws))}
