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


def test_keep_float_layer_stays_fp32_and_unknown_name_is_listed(inputs):
    """Mixed precision: the kept layer's kernels are the fp32 ones and its input is never quantized;
    keeping every layer float makes the quant-mode model equal the fp32 model."""
    from effinrx.quant.units import layer_units
    from effinrx.quant.w8a8 import build_w8a8, calibrate, set_mode
    from effinrx.receivers.nrx import load_model

    keep = "cgnn_it0/upd0"
    net, ws, _ = build_w8a8("nrx-rt", "auto", "int8", keep_float=[keep])
    fp = load_model("nrx-rt", "auto").get_core_weights()
    u = {x.name: x for x in layer_units(net)}[keep]
    got = net.get_core_weights()
    assert all(np.array_equal(got[i], fp[i]) for i in u.indices)
    others = [i for x in layer_units(net) if x.name != keep for i in x.indices]
    assert all(not np.array_equal(got[i], fp[i]) for i in others[:3])
    assert [w.keep_float for w in ws].count(True) == 1 and ws[u.layer].keep_float
    calibrate(ws, lambda: net(inputs))
    assert ws[u.layer].scale > 0  # still calibrated: every layer has a scale to save

    names = [x.name for x in layer_units(net)]
    net_all, ws_all, _ = build_w8a8("nrx-rt", "auto", "int8", keep_float=names)
    set_mode(ws_all, "float")
    ref = net_all(inputs)[0].numpy()
    calibrate(ws_all, lambda: net_all(inputs))  # leaves mode "quant"
    np.testing.assert_array_equal(net_all(inputs)[0].numpy(), ref)
    with pytest.raises(ConfigError, match=r"'cgnn_it9/upd0' not in model 'nrx-rt' \(layers: state_init/conv0"):
        build_w8a8("nrx-rt", "auto", "int8", keep_float=["cgnn_it9/upd0"])
