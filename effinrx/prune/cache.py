"""Disk cache of finished pruning runs, so that hour-long fine-tunes survive a stop.

``EFFINRX_PRUNE_CACHE=<folder>`` (or ``cache_dir``) makes :func:`prune_cached` keep every finished
:class:`~effinrx.prune.recipe.PruneResult` as ``<model>-<method>-<pattern>-<key>.npz`` + ``.json``
(the stripped core weights, float32, reference order; sidecar: recipe, training summary, tfmot
coverage, seconds, key inputs); a later call with the same key loads it instead of fine-tuning
again. A run cut off mid-fine-tune leaves nothing (files are written atomically at the end), so
the next call redoes that variant only.

The key is the recipe, a digest of the start weights' arrays and the versions of the packages that
train (TensorFlow, tf-keras, tfmot, numpy). It does not see edits to the pruning or training
code: clear the folder after changing them. The cached weights are derived from the start weights:
when those are NVIDIA's reference weights (research/evaluation licence) keep the folder out of git
and out of anything shipped.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from effinrx.errors import WeightsError
from effinrx.prune.recipe import PruneRecipe, PruneResult, sparsity_report

ENV_VAR = "EFFINRX_PRUNE_CACHE"
_TRAIN_PACKAGES = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "numpy")


def cache_dir_from_env() -> Path | None:
    """The folder named by ``$EFFINRX_PRUNE_CACHE``, or None when unset/empty."""
    d = os.environ.get(ENV_VAR)
    return Path(d) if d else None


def weights_digest(model: str, init: str) -> str:
    """SHA-1 (12 hex) of the start weights ``init`` of ``model`` (:func:`effinrx.weights.arrays_sha1`)."""
    from effinrx.receivers.nrx import resolve_weights
    from effinrx.weights import arrays_sha1

    arrays, _ = resolve_weights(model, init)
    return "random-init" if arrays is None else arrays_sha1(arrays).hexdigest()[:12]


def cache_key(recipe: PruneRecipe) -> tuple[str, dict]:
    """``(key, inputs)``: 12-hex key and the JSON-able inputs it hashes."""
    from effinrx.provenance import config_hash, static

    vers = static()["versions"]
    inputs = {"recipe": asdict(recipe), "init_digest": weights_digest(recipe.model, recipe.init),
              "versions": {k: vers.get(k) for k in _TRAIN_PACKAGES}}
    return config_hash(inputs), inputs


def _stem(folder: Path, recipe: PruneRecipe, key: str) -> Path:
    pat = recipe.pattern.replace(":", "of")
    return folder / f"{recipe.model}-{recipe.method}-{pat}-{key}"


def _load(stem: Path, recipe: PruneRecipe, key: str) -> PruneResult | None:
    from effinrx.receivers.nrx import load_model
    from effinrx.weights import load_npz

    if not (stem.with_suffix(".npz").is_file() and stem.with_suffix(".json").is_file()):
        return None  # never finished (save_npz writes the .npz, then the sidecar)
    ws, meta = load_npz(stem)
    if meta.get("cache_key") != key:
        raise WeightsError(f"prune cache {stem}.json: cache_key {meta.get('cache_key')!r} does not match "
                           f"its file name's {key!r} (remove the pair to recompute it)")
    net = load_model(recipe.model, ws)
    net.weights_source = f"pruned:{recipe.method}-{recipe.pattern}"
    return PruneResult(net, ws, recipe, dict(meta.get("train", {}), from_cache=str(stem) + ".npz"),
                       sparsity_report(net), meta.get("coverage", {}), float(meta.get("seconds", 0.0)))


def prune_cached(recipe: PruneRecipe, cache_dir=None, progress: bool = False) -> PruneResult:
    """:func:`effinrx.prune.dispatch.prune_nrx` through the cache in ``cache_dir`` (default
    ``$EFFINRX_PRUNE_CACHE``; neither set: no cache). A hit has ``train["from_cache"]`` = its file."""
    from effinrx.io import check_writable
    from effinrx.prune.dispatch import prune_nrx

    folder = Path(cache_dir) if cache_dir is not None else cache_dir_from_env()
    if folder is None:
        return prune_nrx(recipe, None, progress=progress)
    recipe.validate()
    key, inputs = cache_key(recipe)
    stem = _stem(folder, recipe, key)
    hit = _load(stem, recipe, key)
    if hit is not None:
        return hit
    check_writable(folder, f"${ENV_VAR}", kind="dir")
    folder.mkdir(parents=True, exist_ok=True)
    res = prune_nrx(recipe, None, progress=progress)
    from effinrx.weights import save_npz

    save_npz(stem, res.weights, {"cache_key": key, "key_inputs": inputs, "train": res.train,
                                 "coverage": res.coverage, "seconds": res.seconds})
    return res
