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


def test_mixed_variant_bytes_keep_one_layer_fp32():
    """int8 W8A8 with cgnn_it0/upd0 kept fp32: that layer's 3x3x114 depthwise + 114x128 pointwise
    kernels (15,618 weights) cost 4 B instead of 1 B, and lose their per-channel scales (114
    depthwise + 128 pointwise, 4 B each): +3 * 15,618 - 4 * 242 = +45,886 B."""
    from effinrx.errors import ConfigError
    from effinrx.quant import receivers as R

    for model in ("nrx-rt", "nrx-large"):
        assert R.variant_bytes(model, "w8a8-int8-keep1") - R.variant_bytes(model, "w8a8-int8") == 45_886
    R.VARIANT_KEEP_FLOAT["bad-mixed"] = ("cgnn_it9/upd0",)
    R.VARIANT_STORAGE["bad-mixed"] = ("int8", "per-channel")
    try:
        with pytest.raises(ConfigError, match="no nrx-rt weights under cgnn9/upd0/"):
            R.variant_bytes("nrx-rt", "bad-mixed")
    finally:
        del R.VARIANT_KEEP_FLOAT["bad-mixed"], R.VARIANT_STORAGE["bad-mixed"]


def test_depthwise_kernel_scaled_per_channel_c():
    """A depthwise kernel [kh, kw, C, 1] gets C scales per-channel (its channel axis is -2, as PTQ
    quantizes it), not the 1 its last axis would give; other kernels use the spec's axis."""
    t = tensor_bytes("dw", (3, 3, 114, 1), "depthwise", QuantSpec("int8", "per-channel"))
    assert (t.data_bytes, t.scale_bytes) == (1026, 114 * 4)
    k = tensor_bytes("pw", (1, 1, 114, 128), "kernel", QuantSpec("int8", "per-channel"))
    assert k.scale_bytes == 128 * 4
    assert tensor_bytes("dw", (3, 3, 114, 1), "depthwise", QuantSpec("int8", "per-tensor")).scale_bytes == 4
