"""Per-layer quantization sensitivity sweep (effinrx.quant.sensitivity) on a small CGNN with random
inputs (no Sionna, no reference weights), and the CLI's help / bad-input handling."""
import functools
import json
import math

import numpy as np
import pytest

from effinrx.errors import ConfigError

SMALL = dict(name="nrx-rt", num_it=1, d_s=8, num_units_init=(8,), num_units_agg=(8,),
             num_units_state=(8,), num_units_readout=(8,))


@functools.lru_cache(maxsize=None)
def _net_and_inputs():
    from effinrx._tf import set_seeds, tf
    from effinrx.receivers.nrx_layers import NRXConfig, build_cgnn

    set_seeds(3)
    net = build_cgnn(NRXConfig(**SMALL))
    rng = np.random.default_rng(0)
    b, u, s, t, a2 = 4, 2, 12, 14, 8
    x = (tf().constant(rng.normal(size=(b, s, t, a2)), tf().float32),
         tf().constant(rng.normal(size=(u, s, t, 2)), tf().float32),
         tf().constant(rng.normal(size=(b, u, s, t, a2)), tf().float32),
         tf().ones([b, u]))
    return net, x


def _llr_fn(x):
    return lambda net: [net(x)[0].numpy()]


def test_units_cover_every_kernel_once():
    from effinrx.quant.units import layer_units

    net, _ = _net_and_inputs()
    vs = net.core_variables()
    kernels = [i for i, v in enumerate(vs) if "bias" not in v.name]
    for unit in ("layer", "kernel"):
        units = layer_units(net, unit)
        idx = sorted(i for u in units for i in u.indices)
        assert idx == kernels
        assert len({u.name for u in units}) == len(units)
    layers = layer_units(net, "layer")
    assert len(layers) == len(net.core_layers)
    assert layers[0].name == "state_init/conv0" and layers[0].kinds == ["depthwise", "pointwise"]
    assert [u.name for u in layers if u.block == "cgnn_it0"] == ["cgnn_it0/agg0", "cgnn_it0/agg1",
                                                                 "cgnn_it0/upd0", "cgnn_it0/upd1"]
    assert len(layer_units(net, "kernel")) > len(layers)
    with pytest.raises(ConfigError, match="unit"):
        layer_units(net, "block")
    # an export's layers (Keras names numbered per process) -> unit names, by position within a kind
    from effinrx.quant.units import unit_names_of_exported

    sep = [u.name for u in layers if hasattr(net.core_layers[u.layer], "depthwise_kernel")]
    dense = [u.name for u in layers if not hasattr(net.core_layers[u.layer], "depthwise_kernel")]
    got = unit_names_of_exported(net, [("separable_conv2d_27", "Conv"), ("dense_9", "MatMul"),
                                       ("separable_conv2d_28", "Conv")])
    assert got == [sep[0], dense[0], sep[1]]
    with pytest.raises(ConfigError, match=r"exported layer 'x' \(Conv\): model .* has only \d+ separable"):
        unit_names_of_exported(net, [(f"s{i}", "Conv") for i in range(len(sep))] + [("x", "Conv")])


def test_no_layer_quantized_is_exact_and_one_layer_changes_only_its_weights():
    from effinrx.quant.sensitivity import llr_sqnr_db, quantize_unit
    from effinrx.quant.units import layer_units

    net, x = _net_and_inputs()
    vs = net.core_variables()
    names, w0 = [v.name for v in vs], [v.numpy() for v in vs]
    same, wsq, smax = quantize_unit(w0, names, [], "int4")
    assert all(np.array_equal(a, b) for a, b in zip(same, w0)) and wsq == math.inf and smax is None
    ref = _llr_fn(x)(net)
    assert llr_sqnr_db(ref, _llr_fn(x)(net)) == math.inf
    u = layer_units(net, "layer")[2]
    wq, wsq, smax = quantize_unit(w0, names, u.indices, "int4")
    changed = [i for i, (a, b) in enumerate(zip(wq, w0)) if not np.array_equal(a, b)]
    assert changed == u.indices and 5 < wsq < 40 and smax > 0


def test_sweep_ranks_destroyed_layer_first_and_restores_weights():
    from effinrx.quant.sensitivity import sweep
    from effinrx.quant.units import layer_units

    net, x = _net_and_inputs()
    w_orig = net.get_core_weights()
    units = layer_units(net, "layer")
    target = next(u for u in units if u.name == "readout_llrs/dense0")
    after = next(u for u in units if u.name == "readout_llrs/dense1")
    w = [a.copy() for a in w_orig]
    k = target.indices[0]
    # one outlier in output channel 0 that the next layer ignores (row 0 of its kernel is zero):
    # the fp32 function keeps working, but per-tensor int4 rounds every other weight to 0
    w[k][0, 0] = 1e4 * np.abs(w[k]).max()
    w[after.indices[0]][0, :] = 0.0
    net.set_core_weights(w)
    try:
        res = sweep(net, "int4", _llr_fn(x), tb_fn=lambda llrs: (0, 1))
        assert res.rows[0].name == target.name
        assert res.fp32.llr_sqnr_db == math.inf
        assert all(np.array_equal(a, b) for a, b in zip(net.get_core_weights(), w))
        sq = [r.llr_sqnr_db for r in res.rows]
        assert sq == sorted(sq)
        # channel readout does not feed the LLRs
        assert all(r.llr_sqnr_db == math.inf for r in res.rows if r.block == "readout_chest")
        assert res.rows[0].llr_sqnr_db < 3 < res.rows[1].llr_sqnr_db
        assert res.all_layers.llr_sqnr_db <= res.rows[0].llr_sqnr_db + 3.0
        res8 = sweep(net, "int8-pc", _llr_fn(x))
        assert res8.rows[-1].tb_errors is None
        assert min(r.llr_sqnr_db for r in res8.rows) > 25
    finally:
        net.set_core_weights(w_orig)


def test_outputs_written(tmp_path):
    from effinrx.quant.sensitivity import sweep, table_text, write_outputs

    net, x = _net_and_inputs()
    res = sweep(net, "int4", _llr_fn(x), tb_fn=lambda llrs: (1, 8), rank_by="tb")
    paths = write_outputs(res, tmp_path / "o")
    d = json.loads(paths["json"].read_text())
    assert d["method"] == "int4" and len(d["rows"]) == len(res.rows) and d["fp32"]["llr_sqnr_db"] == "inf"
    assert paths["png"].stat().st_size > 1000
    txt = table_text(res)
    assert "all-layers" in txt and txt.count("\n") == len(res.rows) + 3


def test_bad_method_and_rank():
    from effinrx.quant.sensitivity import nrx_sweep, sweep

    net, x = _net_and_inputs()
    with pytest.raises(ConfigError, match="method 'int3'"):
        sweep(net, "int3", _llr_fn(x))
    with pytest.raises(ConfigError, match="rank_by='tb'"):
        sweep(net, "int4", _llr_fn(x), rank_by="tb")
    with pytest.raises(ConfigError, match="unknown NRX model 'nrx-tiny'"):
        nrx_sweep("nrx-tiny", "int4")
    with pytest.raises(ConfigError, match="method 'int3'"):
        nrx_sweep("nrx-rt", "int3")


def test_cli_help_and_bad_input(capsys, tmp_path):
    from effinrx.cli import main

    with pytest.raises(SystemExit) as e:
        main(["sensitivity", "--help"])
    assert e.value.code == 0
    assert "--method" in capsys.readouterr().out
    assert main(["sensitivity", "--model", "nrx-huge", "--out", str(tmp_path)]) == 1
    assert "--model 'nrx-huge' not one of nrx-rt, nrx-large" in capsys.readouterr().err
    assert main(["sensitivity", "--method", "int5", "--out", str(tmp_path)]) == 1
    assert "--method 'int5'" in capsys.readouterr().err


def test_w8a8_sweep_switches_one_layers_activations_and_matches_manual():
    """W8A8 sensitivity: each row = that layer's int8-pc weights AND int8 input activations, every
    other layer float; the all-layers row is the full W8A8 model; state restored afterwards."""
    from effinrx._tf import set_seeds
    from effinrx.quant.ptq import quantize_model
    from effinrx.quant.sensitivity import llr_sqnr_db, quantize_unit, sweep
    from effinrx.quant.units import layer_units
    from effinrx.quant.w8a8 import _layer_class, calibrate, set_mode
    from effinrx.receivers.nrx_layers import NRXConfig, build_cgnn, collecting_wrap

    _, x = _net_and_inputs()
    set_seeds(3)
    cls = _layer_class()
    wrap, wrappers = collecting_wrap(lambda layer: cls(layer, "int8"))
    net = build_cgnn(NRXConfig(**SMALL), wrap=wrap)
    calibrate(wrappers, lambda: net(x))
    set_mode(wrappers, "float")
    w0 = [v.numpy() for v in net.core_variables()]
    ref = [net(x)[0].numpy()]

    def act(layers):
        for j, w in enumerate(wrappers):
            w.mode = "quant" if j in layers else "float"

    with pytest.raises(ConfigError, match="pass act="):
        sweep(net, "w8a8-int8", _llr_fn(x))
    res = sweep(net, "w8a8-int8", _llr_fn(x), act=act)
    assert math.isinf(res.fp32.llr_sqnr_db)
    assert all(w.mode == "float" for w in wrappers)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(w0, net.core_variables()))
    # one row by hand: the last state-update layer
    u = [u for u in layer_units(net) if u.name == "cgnn_it0/upd1"][0]
    names = [v.name for v in net.core_variables()]
    wq, _, _ = quantize_unit(w0, names, u.indices, "int8-pc")
    net.set_core_weights(wq)
    act({u.layer})
    manual = llr_sqnr_db(ref, [net(x)[0].numpy()])
    row = [r for r in res.rows if r.name == u.name][0]
    assert row.llr_sqnr_db == pytest.approx(manual, abs=1e-6) and math.isfinite(manual)
    # all layers = the whole W8A8 model
    net.set_core_weights(w0)
    wq_all, _ = quantize_model(net, "int8-pc")
    net.set_core_weights(wq_all)
    set_mode(wrappers, "quant")
    full = llr_sqnr_db(ref, [net(x)[0].numpy()])
    assert res.all_layers.llr_sqnr_db == pytest.approx(full, abs=1e-6)
    # activations matter: with every quantizer float, the weight-only sweep's all-layers row differs
    net.set_core_weights(w0)
    set_mode(wrappers, "float")
    weight_only = sweep(net, "int8-pc", _llr_fn(x))
    assert math.isinf(weight_only.fp32.llr_sqnr_db)
    assert weight_only.all_layers.llr_sqnr_db > full + 0.5


def test_nrx_sweep_runs_on_the_engines_slots_and_sees_new_weights():
    """nrx_sweep on NRX-RT (reference or packaged weights; 1 batch of 2 slots): every row is one
    compiled simulate_many run on the evaluation scenario, the compiled graph reads the reassigned
    weights (quantized rows differ from fp32), and the fp32 row's TB counts are the engine's counts
    of the plain receiver on the same slots."""
    from effinrx.link.config import Scenario
    from effinrx.link.montecarlo import simulate_many
    from effinrx.quant.sensitivity import nrx_sweep
    from effinrx.receivers.nrx import NRXReceiver

    res = nrx_sweep("nrx-rt", "int4", weights="auto", ebno_db=3.0, slots=2, batch=2, seed=7)
    assert res.meta["tbs"] == 4 and res.meta["scenario"]["channel"] == "double-tdl"
    assert res.fp32.tb_blocks == 4 and all(r.tb_blocks == 4 for r in res.rows)
    assert math.isinf(res.fp32.llr_sqnr_db) and res.all_layers.llr_sqnr_db < 20
    assert all(math.isfinite(r.llr_sqnr_db) for r in res.rows if r.block != "readout_chest")
    rx = NRXReceiver("nrx-rt", "auto", name="plain")
    (pc,) = simulate_many({"plain": rx}, Scenario(), [3.0], max_blocks=4, target_errors=5, batch_size=2,
                          seed=7, progress=False)["plain"]
    assert (pc.errors, pc.blocks) == (res.fp32.tb_errors, 4)
