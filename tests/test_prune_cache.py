"""effinrx.prune.cache: a finished pruning run is kept on disk and reloaded instead of re-trained."""
import numpy as np
import pytest

from effinrx.errors import WeightsError
from effinrx.prune import cache as PC
from effinrx.prune.recipe import PruneRecipe


def _recipe(**kw):
    return PruneRecipe(**{"model": "nrx-rt", "steps": 2, "batch_size": 2, "init": "packaged", **kw})


def test_key_changes_with_recipe_and_start_weights(monkeypatch):
    k1, inputs = PC.cache_key(_recipe())
    assert PC.cache_key(_recipe())[0] == k1
    assert PC.cache_key(_recipe(steps=3))[0] != k1
    assert PC.cache_key(_recipe(pattern="2:4"))[0] != k1
    assert inputs["versions"]["tensorflow"] and len(inputs["init_digest"]) == 12
    monkeypatch.setattr(PC, "weights_digest", lambda model, init: "0" * 12)
    assert PC.cache_key(_recipe())[0] != k1


def test_hit_skips_the_fine_tune_and_gives_the_same_weights(tmp_path, monkeypatch):
    import effinrx.prune.dispatch as D

    first = PC.prune_cached(_recipe(), tmp_path)
    files = sorted(p.suffix for p in tmp_path.iterdir())
    assert files == [".json", ".npz"] and "from_cache" not in first.train

    def boom(*a, **k):
        raise AssertionError("fine-tuned again despite a cache hit")

    monkeypatch.setattr(D, "prune_nrx", boom)
    monkeypatch.setenv(PC.ENV_VAR, str(tmp_path))
    again = PC.prune_cached(_recipe())
    assert again.train["from_cache"].endswith(".npz")
    assert all(np.array_equal(a, b) for a, b in zip(first.weights, again.weights))
    assert again.report == first.report and again.coverage == first.coverage
    assert all(np.array_equal(a, b) for a, b in zip(first.weights, again.net.get_core_weights()))


def test_half_written_entry_is_a_miss_and_a_foreign_sidecar_is_refused(tmp_path, monkeypatch):
    from effinrx import weights as W
    from effinrx.prune.recipe import PruneResult

    r = _recipe()
    key, _ = PC.cache_key(r)
    stem = PC._stem(tmp_path, r, key)
    stem.with_suffix(".npz").write_bytes(b"cut off")  # a stop between .npz and sidecar
    calls = []

    def fake(recipe, work_dir, progress=False):
        calls.append(recipe)
        ws = [np.zeros((2, 2), np.float32)]
        return PruneResult(None, ws, recipe, {"steps_done": 2}, {}, {}, 1.0)

    import effinrx.prune.dispatch as D

    monkeypatch.setattr(D, "prune_nrx", fake)
    PC.prune_cached(r, tmp_path)
    assert len(calls) == 1 and stem.with_suffix(".json").is_file()
    W.save_npz(stem, [np.zeros((2, 2), np.float32)], {"cache_key": "ffffffffffff"})
    with pytest.raises(WeightsError, match=r"cache_key .* does not match"):
        PC.prune_cached(r, tmp_path)
