"""Exact storage bytes (claim M2 math) and the per-channel access cost (M3)."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from effinrx.errors import ConfigError, ShapeError
from effinrx.quant.formats import QuantSpec
from effinrx.quant.storage import memory_access_cost, storage_table, tensor_bytes


@given(st.integers(1, 64), st.integers(1, 64), st.sampled_from(["per-tensor", "per-channel"]))
def test_int4_is_fp32_over_8_plus_metadata(rows, cols, gran):
    t = tensor_bytes("k", (rows, cols), "kernel", QuantSpec("int4", gran))
    meta = (cols if gran == "per-channel" else 1) * 4
    assert t.data_bytes == -(-rows * cols * 4 // 8)
    assert t.total == t.data_bytes + meta
    if rows * cols % 2 == 0:
        assert t.data_bytes == 4 * rows * cols // 8


def test_biases_and_norms_stay_fp32_and_metadata_counts():
    table = storage_table([("k", (3, 3, 8, 16), "kernel"), ("b", (16,), "bias"), ("g", (16,), "norm")],
                          QuantSpec("int8", "per-channel"))
    kb, bb, gb = table.rows
    assert (kb.data_bytes, kb.scale_bytes, bb.fmt, bb.total, gb.total) == (1152, 64, "fp32", 64, 64)
    assert table.total_bytes == 1152 + 64 + 128
    assert table.ratio == pytest.approx(4 * (1152 + 32) / (1152 + 64 + 128))


def test_asymmetric_zero_points_counted():
    t = tensor_bytes("k", (4, 8), "kernel", QuantSpec("int8", "per-channel", symmetric=False))
    assert t.zero_point_bytes == 8


def test_memory_access_cost_formula():
    assert memory_access_cost(128, 147456, 4, 1) == 128 * 4 + 147456
    with pytest.raises(ConfigError):
        memory_access_cost(-1, 1, 1, 1)


def test_bad_rows_named():
    with pytest.raises(ConfigError, match="role 'weights'"):
        tensor_bytes("k", (2,), "weights", QuantSpec())
    with pytest.raises(ShapeError, match="expected \\(name"):
        storage_table([("k", (2,))], QuantSpec())
