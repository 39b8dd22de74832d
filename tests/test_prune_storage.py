"""Unit tests of sparsity accounting and CSR/CSC byte counts."""
import numpy as np
import pytest

from effinrx.errors import ShapeError
from effinrx.prune.storage import break_even_sparsity, csr_bytes, index_bytes, sparsity_table


def test_sparsity_table_counts_and_gap():
    k = np.zeros((10, 10)); k[:2] = 1.0            # 80 % sparse kernel
    b = np.ones(10)                                 # bias untouched by the pruner
    rows, s = sparsity_table([k, b], ["d/kernel:0", "d/bias:0"])
    assert rows[0].zeros == 80 and rows[1].zeros == 0
    assert s["kernels"] == pytest.approx(0.8)
    assert s["overall"] == pytest.approx(80 / 110)
    assert s["unpruned_params"] == {"bias": 10}


def test_csr_bytes_exact():
    a = np.zeros((4, 5), np.float32); a[0, 1] = a[3, 4] = 2.0
    b = csr_bytes(a)
    assert b["dense"] == 80 and b["nnz"] == 2
    assert b["csr32"] == 2 * 4 + 2 * 4 + 5 * 4
    assert b["csr_min"] == 2 * 4 + 2 * 1 + 5 * 1


def test_break_even_matches_csr_bytes():
    r, c = 64, 64
    s = break_even_sparsity(r, c)
    rng = np.random.default_rng(0)
    for target, bigger in ((s - 0.05, True), (s + 0.05, False)):
        a = rng.normal(size=(r, c)).astype(np.float32)
        a.flat[rng.permutation(r * c)[: int(target * r * c)]] = 0.0
        b = csr_bytes(a)
        assert (b["csr32"] > b["dense"]) == bigger


def test_index_bytes_and_errors():
    assert index_bytes(255) == 1 and index_bytes(256) == 2
    with pytest.raises(ShapeError):
        break_even_sparsity(0, 3)
