"""Unit tests of the pruning mask logic, recipes and model-level storage accounting (numpy only)."""
import numpy as np
import pytest

from effinrx.errors import ConfigError, ShapeError
from effinrx.prune.accounting import break_even, csr_curve_bytes, kernel_shapes, model_bytes
from effinrx.prune.masks import (check_sparsity, m_by_n_mask, m_by_n_report, polynomial_sparsity,
                                 topk_mask)
from effinrx.prune.recipe import PruneRecipe, prunable
from effinrx.prune.storage import break_even_sparsity, csr_bytes


def test_topk_mask_keeps_exact_count_of_highest_scores():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(18, 128))
    m = topk_mask(s, 0.8)
    assert m.dtype == np.float32 and m.shape == s.shape
    assert int(m.sum()) == round(s.size * 0.2)
    assert s[m == 1].min() >= s[m == 0].max()  # every kept score beats every dropped one


def test_topk_mask_ties_and_extremes():
    m = topk_mask(np.zeros(10), 0.5)  # all tied: still exactly 5 kept
    assert m.sum() == 5
    assert topk_mask(np.arange(4.0), 0.0).sum() == 4
    assert topk_mask(np.arange(4.0), 0.99).sum() == 1  # at least one kept, like tfmot


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), "x"])
def test_bad_sparsity_names_the_problem(bad):
    with pytest.raises(ConfigError, match="sparsity"):
        topk_mask(np.ones(4), bad)
    with pytest.raises(ConfigError):
        check_sparsity(bad)


def test_topk_mask_rejects_nan_and_empty():
    with pytest.raises(ShapeError, match="NaN"):
        topk_mask(np.array([1.0, np.nan]), 0.5)
    with pytest.raises(ShapeError, match="empty"):
        topk_mask(np.array([]), 0.5)


def test_polynomial_schedule():
    assert polynomial_sparsity(0, 0.8, 0, 10) == 0.0
    assert polynomial_sparsity(5, 0.8, 0, 10) == pytest.approx(0.4)  # power 1: linear
    assert polynomial_sparsity(5, 0.8, 0, 10, power=3) == pytest.approx(0.8 * (1 - 0.5 ** 3))
    assert polynomial_sparsity(10, 0.8, 0, 10, power=3) == pytest.approx(0.8)
    assert polynomial_sparsity(99, 0.8, 0, 10) == pytest.approx(0.8)
    with pytest.raises(ConfigError, match="begin < end"):
        polynomial_sparsity(1, 0.8, 5, 5)
    with pytest.raises(ConfigError, match="power"):
        polynomial_sparsity(1, 0.8, 0, 5, power=0)


def test_m_by_n_mask_pattern_along_input_channels():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(1, 1, 18, 8))  # pointwise kernel [1, 1, C_in, C_out], C_in % 4 == 2
    m = m_by_n_mask(w, 2, 4, axis=-2)
    r = m_by_n_report(w * m, 2, 4, axis=-2)
    assert r.holds and r.groups == 4 * 8 and r.tail == 2
    # the pattern runs along C_in, not C_out: every column of 4 consecutive inputs has 2 zeros
    g = (w * m)[0, 0, :16, :].reshape(4, 4, 8)
    assert np.all(np.sum(g == 0, axis=1) == 2)
    # the two largest |w| of each group survive
    a = np.abs(w[0, 0, :4, 0])
    assert set(np.flatnonzero(m[0, 0, :4, 0])) == set(np.argsort(a)[2:])
    # the same mask along the other axis generally breaks the C_in pattern
    assert not m_by_n_report(w * m_by_n_mask(w, 2, 4, axis=-1), 2, 4, axis=-2).holds


def test_m_by_n_report_counts_violations_and_errors():
    w = np.ones((8, 3))
    w[0:2, 0] = 0.0  # one group of column 0 has its two zeros
    r = m_by_n_report(w, 2, 4)
    assert r.groups == 6 and r.violations == 5 and not r.holds
    with pytest.raises(ConfigError, match="0 < m < n"):
        m_by_n_report(w, 4, 4)
    with pytest.raises(ShapeError, match="rank"):
        m_by_n_report(np.ones(8), 2, 4)


def test_recipe_validation_messages():
    PruneRecipe().validate()
    with pytest.raises(ConfigError, match="unknown method"):
        PruneRecipe(method="random").validate()
    with pytest.raises(ConfigError, match="unknown pattern"):
        PruneRecipe(pattern="4:8").validate()
    with pytest.raises(ConfigError, match="movement.*unstructured"):
        PruneRecipe(method="movement", pattern="2:4").validate()
    with pytest.raises(ConfigError, match="end_step"):
        PruneRecipe(steps=10, end_step=20).validate()
    with pytest.raises(ConfigError, match="unknown model"):
        PruneRecipe(model="nrx-xl").validate()
    with pytest.raises(ConfigError, match="bad prune recipe"):
        PruneRecipe.from_dict({"sparsity": 0.8})


def test_recipe_schedule_defaults_and_round_trip():
    r = PruneRecipe(steps=40, frequency=7)
    assert r.schedule_end() == 28 and r.schedule_end() % 7 == 0  # last update lands on the end
    assert r.schedule_power() == 1.0 and PruneRecipe(method="movement").schedule_power() == 3.0
    d = r.to_dict()
    assert PruneRecipe.from_dict(d).to_dict() == d


def test_prunable_names():
    assert prunable("cgnn_it0/L03_dense/kernel") and prunable("state_init/L00_sep/pointwise_kernel")
    assert not prunable("state_init/L00_sep/depthwise_kernel") and not prunable("x/L01_dense/bias")


def test_model_bytes_and_curve_agree():
    rng = np.random.default_rng(2)
    k = rng.normal(size=(56, 64)).astype(np.float32)
    k *= topk_mask(rng.random(k.shape), 0.8)
    b = rng.normal(size=64).astype(np.float32)
    names = ["blk/L00_dense/kernel", "blk/L00_dense/bias"]
    t = model_bytes([k, b], names)
    assert t["dense"] == (56 * 64 + 64) * 4
    assert t["csr32"] == csr_bytes(k)["csr32"] + 64 * 4  # bias stays dense
    shapes, rest = kernel_shapes([k, b], names)
    assert shapes == [(56, 64)] and rest == 64
    assert csr_curve_bytes(shapes, rest, 0.8) == t["csr32"]
    with pytest.raises(ConfigError):
        model_bytes([k], names)


def test_break_even_matches_single_matrix_formula():
    assert break_even([(64, 64)], 0) == pytest.approx(break_even_sparsity(64, 64), abs=1e-6)
    # dense extras do not move the break-even of the sparse part (both sides carry them)
    assert break_even([(128, 128)], 1000) == pytest.approx(break_even_sparsity(128, 128), abs=1e-6)
    assert break_even([(128, 128)], 0, narrow=True) < 0.3  # uint8 column indices
    with pytest.raises(ShapeError):
        break_even([], 0)
