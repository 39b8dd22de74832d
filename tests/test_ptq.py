"""Unit tests of weight-only PTQ (numpy only, no model build)."""
import numpy as np
import pytest

from effinrx.errors import ConfigError
from effinrx.quant.ptq import METHODS, quantize_weights


def _toy():
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(3, 3, 8, 1)), rng.normal(size=(1, 1, 8, 16)), rng.normal(size=16),
          rng.normal(size=(16, 4)), rng.normal(size=4)]
    names = ["sc/depthwise_kernel:0", "sc/pointwise_kernel:0", "sc/bias:0", "d/kernel:0", "d/bias:0"]
    return ws, names


@pytest.mark.parametrize("method", sorted(METHODS))
def test_shapes_and_bias_float(method):
    ws, names = _toy()
    out, rows = quantize_weights(ws, names, method)
    assert [o.shape for o in out] == [w.shape for w in ws]
    np.testing.assert_array_equal(out[2], ws[2].astype(np.float32))
    assert rows[0].kind == "depthwise" and rows[3].kind == "dense"
    assert np.isfinite(rows[3].sqnr_db)


def test_int8_better_than_int4_and_per_channel_not_worse():
    ws, names = _toy()
    s8 = quantize_weights(ws, names, "int8")[1][3].sqnr_db
    s4 = quantize_weights(ws, names, "int4")[1][3].sqnr_db
    s8pc = quantize_weights(ws, names, "int8-pc")[1][3].sqnr_db
    assert s8 > s4 + 15 and s8pc >= s8 - 0.5


def test_keep_switches():
    ws, names = _toy()
    out, rows = quantize_weights(ws, names, "int4", keep_depthwise=True)
    np.testing.assert_array_equal(out[0], ws[0].astype(np.float32))
    out, rows = quantize_weights(ws, names, "int4", keep_first_last=True)
    assert rows[0].fmt == "fp32" and rows[3].fmt == "fp32" and rows[1].fmt == "int4"


def test_bad_method():
    ws, names = _toy()
    with pytest.raises(ConfigError, match="ptq method"):
        quantize_weights(ws, names, "int3")
