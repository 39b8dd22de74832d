"""Which pruner runs a :class:`~effinrx.prune.recipe.PruneRecipe`: the one entry point of
``effinrx prune`` and the pruning benchmarks. Apart from ``recipe`` so that the pruners can import
the recipe without an import cycle."""
from __future__ import annotations

from effinrx.prune.magnitude import prune_magnitude
from effinrx.prune.movement import prune_movement
from effinrx.prune.recipe import PruneRecipe


def prune_nrx(recipe: PruneRecipe, work_dir, progress: bool = False):
    """Prune + fine-tune per ``recipe``; returns :class:`PruneResult`
    (plain NRX net with the pruned weights, training summary, sparsity report)."""
    recipe.validate()
    if recipe.method == "magnitude":
        return prune_magnitude(recipe, work_dir, progress=progress)
    return prune_movement(recipe, work_dir, progress=progress)
