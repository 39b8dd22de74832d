"""W8A8 wrapper: calibration sets scales, quant mode changes outputs, fp8 closer than int8 input-wise."""
import numpy as np
import pytest

from effinrx.errors import ConfigError


@pytest.fixture(scope="module")
def inputs(cgnn_inputs):
    return cgnn_inputs


@pytest.mark.parametrize("fmt", ["int8", "fp8"])
def test_calibrate_then_quant(fmt, inputs):
    from effinrx.quant.w8a8 import build_w8a8, calibrate, set_mode
    net, ws, rows = build_w8a8("nrx-rt", "auto", fmt)
    assert len(ws) == len(net.core_layers)
    set_mode(ws, "float")
    ref = net(inputs)[0].numpy()
    set_mode(ws, "quant")
    with pytest.raises(ConfigError, match="before calibration"):
        net(inputs)
    scales = calibrate(ws, lambda: net(inputs), method="percentile")
    assert all(s > 0 for s in scales)
    q = net(inputs)[0].numpy()
    rel = np.linalg.norm(q - ref) / np.linalg.norm(ref)
    assert 0 < rel < 1.0


def test_bad_format():
    from effinrx.quant.w8a8 import build_w8a8
    with pytest.raises(ConfigError, match="w8a8 format"):
        build_w8a8("nrx-rt", "auto", "int3")
