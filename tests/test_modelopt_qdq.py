"""ModelOpt Q/DQ wrapper and coverage report on a small NRX-like stand-in ONNX.

The stand-in has the NRX's compute pattern: two inputs added (real/imag-style), a depthwise 3x3
Conv, two pointwise (1x1) Convs, a Dense MatMul with K = N = 32 and a small readout MatMul
(N = 6). ModelOpt 0.47 keeps the readout in float (N < 16) and, in fp8, the depthwise Conv
(1 input channel per group); these expectations are the contract a silent change must break.
"""
import numpy as np
import pytest

from effinrx.errors import ConfigError, ShapeError
from effinrx.export import modelopt as mo

C, D, S = 24, 32, 8  # depthwise channels (multiple of 8, as ModelOpt's int8 depthwise rule needs)


def _standin(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def init(name, shape, scale):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [init("dw_w", (C, 1, 3, 3), .3), init("dw_b", (C,), 0.), init("pw1_w", (D, C, 1, 1), .2),
             init("pw1_b", (D,), 0.), init("pw2_w", (D, D, 1, 1), .2), init("pw2_b", (D,), 0.),
             init("dense_w", (D, D), .2), init("ro_w", (D, 6), .2)]
    mk = helper.make_node
    nodes = [mk("Add", ["a", "b"], ["x"], name="add"),
             mk("Conv", ["x", "dw_w", "dw_b"], ["h0"], name="dw", group=C, kernel_shape=[3, 3], pads=[1] * 4),
             mk("Conv", ["h0", "pw1_w", "pw1_b"], ["h1"], name="pw1", kernel_shape=[1, 1]),
             mk("Relu", ["h1"], ["h2"], name="relu1"),
             mk("Conv", ["h2", "pw2_w", "pw2_b"], ["h3"], name="pw2", kernel_shape=[1, 1]),
             mk("Transpose", ["h3"], ["h4"], name="to_nhwc", perm=[0, 2, 3, 1]),
             mk("MatMul", ["h4", "dense_w"], ["h5"], name="dense"),
             mk("Relu", ["h5"], ["h6"], name="relu2"),
             mk("MatMul", ["h6", "ro_w"], ["y"], name="readout")]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "nrx_standin", [vi("a", TensorProto.FLOAT, [1, C, 14, S]),
                                                 vi("b", TensorProto.FLOAT, [1, C, 14, S])],
                          [vi("y", TensorProto.FLOAT, [1, 14, S, 6])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("modelopt")
    rng = np.random.default_rng(1)
    calib = [{k: rng.standard_normal((1, C, 14, S)).astype(np.float32) for k in ("a", "b")} for _ in range(8)]
    return {"dir": d, "fp32": _standin(d / "standin.onnx"), "npz": mo.save_calibration(d / "calib.npz", calib)}


@pytest.fixture(scope="module")
def quantized(work):
    """int8 and fp8 (max calibration, from the .npz) and int4 (AWQ-clip) versions of the stand-in."""
    out = {m: mo.quantize(work["fp32"], work["dir"] / f"standin_{m}.onnx", m, work["npz"],
                          method=None if m == "int4" else "max") for m in ("int8", "fp8")}
    out["int4"] = mo.quantize(work["fp32"], work["dir"] / "standin_int4.onnx", "int4", work["npz"])
    return out


# what ModelOpt 0.47 quantizes in the stand-in, per mode (see the module docstring)
EXPECTED = {"int8": ({"Conv": ["dw", "pw1", "pw2"], "MatMul": ["dense"]}, {"MatMul": ["readout"]}),
            "fp8": ({"Conv": ["pw1", "pw2"], "MatMul": ["dense"]}, {"Conv": ["dw"], "MatMul": ["readout"]}),
            "int4": ({"MatMul": ["dense", "readout"]}, {"Conv": ["dw", "pw1", "pw2"]})}


@pytest.mark.parametrize("mode", ["int8", "fp8", "int4"])
def test_coverage_per_mode(quantized, mode):
    cov = mo.coverage(quantized[mode])
    want_q, want_u = EXPECTED[mode]
    assert {k: sorted(v) for k, v in cov.quantized.items()} == want_q
    assert {k: sorted(v) for k, v in cov.unquantized.items()} == want_u
    if mode == "int4":  # weight-only: DQ on the MatMul weights, activations stay float
        assert cov.q_nodes == 0 and cov.dq_nodes == 2 and cov.qdq_by_consumer == {"MatMul": 2}
    else:  # activation Q/DQ + weight DQ on every quantized compute node
        assert cov.qdq_by_consumer["MatMul"] == 2 and cov.q_nodes == cov.dq_nodes >= 4
    mo.require_coverage(cov, {op: len(v) for op, v in want_q.items()})


def test_require_coverage_fails_on_silently_fewer_layers(quantized):
    cov = mo.coverage(quantized["fp8"])  # ModelOpt dropped the depthwise Conv without a word
    with pytest.raises(ShapeError, match=r"Conv: 2 quantized < 3 expected.*unquantized"):
        mo.require_coverage(cov, {"Conv": 3, "MatMul": 1})
    with pytest.raises(ShapeError, match="Gemm: 0 quantized < 1"):
        mo.require_coverage(cov, {"Gemm": 1})


def test_layer_inputs_are_float_when_the_first_compute_node_is(quantized, tmp_path):
    import onnx

    # tf2onnx names nodes <model>/<layer>/...: a separable layer is its depthwise then its pointwise Conv
    layer_of = {"dw": "m/sep/depthwise", "pw1": "m/sep/BiasAdd", "pw2": "m/sep2/BiasAdd",
                "dense": "m/dense/MatMul", "readout": "m/readout/MatMul"}
    out = {}
    for mode in ("int8", "fp8"):
        m = onnx.load(str(quantized[mode]))
        for n in m.graph.node:
            n.name = layer_of.get(n.name, n.name)
        onnx.save(m, str(tmp_path / f"{mode}.onnx"))
        out[mode] = [(layer, q) for layer, _, q in mo.layer_inputs(tmp_path / f"{mode}.onnx")]
    # int8 keeps only the N = 6 readout float; fp8 also the depthwise Conv, so the whole separable
    # layer's input is float although its pointwise Conv (the layer's second node) is quantized
    assert out == {"int8": [("sep", True), ("sep2", True), ("dense", True), ("readout", False)],
                   "fp8": [("sep", False), ("sep2", True), ("dense", True), ("readout", False)]}
    with pytest.raises(ShapeError, match=r"standin_int8.onnx: compute node 'dw' is not named <model>/<layer>"):
        mo.layer_inputs(quantized["int8"])


def test_depthwise_names(work):
    assert mo.depthwise_conv_names(work["fp32"]) == {"dw"}
    fp32 = mo.coverage(work["fp32"])
    assert fp32.q_nodes == fp32.dq_nodes == 0 and fp32.summary() == {
        "Conv": {"quantized": 0, "unquantized": 3}, "MatMul": {"quantized": 0, "unquantized": 2}}


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantized_model_runs_on_ort_cpu_close_to_fp32(work, quantized, mode):
    from effinrx.engines.ort import OrtEngine

    x = mo.load_calibration(work["npz"], ["a", "b"])
    x = {k: v[:1] for k, v in x.items()}
    ref = OrtEngine(work["fp32"], threads=1).run(x)["y"]
    got = OrtEngine(quantized[mode], threads=1).run(x)["y"]
    rel = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    assert 0 < rel < {"int8": 0.1, "int4": 0.3}[mode]  # quantized (not identical) but the same function


def test_autocast_fp16_keeps_float32_io(work):
    from effinrx.engines.ort import OrtEngine

    out = mo.autocast_fp16(work["fp32"], work["dir"] / "standin_fp16.onnx")
    assert mo.fp16_fraction(out) == 1.0 and mo.fp16_fraction(work["fp32"]) == 0.0
    x = {k: v[:1] for k, v in mo.load_calibration(work["npz"], ["a", "b"]).items()}
    ref = OrtEngine(work["fp32"], threads=1).run(x)["y"]
    got = OrtEngine(out, threads=1).run(x)["y"]
    assert got.dtype == np.float32 and np.max(np.abs(got - ref)) <= 5e-3 * np.max(np.abs(ref))


def test_bad_requests_are_named(work, tmp_path):
    with pytest.raises(ConfigError, match=r"int8 supports calibration \('entropy', 'max'\), not 'awq_clip'"):
        mo.quantize(work["fp32"], tmp_path / "x.onnx", "int8", work["npz"], method="awq_clip")
    with pytest.raises(ConfigError, match="mode 'int2'"):
        mo.quantize(work["fp32"], tmp_path / "x.onnx", "int2", work["npz"])
    with pytest.raises(ShapeError, match=r"lacks input\(s\) \['b'\]"):
        mo.quantize(work["fp32"], tmp_path / "x.onnx", "int8", {"a": np.zeros((1, C, 14, S), np.float32)})
    with pytest.raises(ShapeError, match=r"calib.npz lacks input\(s\) \['rx_slot_real'\]"):
        mo.load_calibration(work["npz"], ["rx_slot_real"])
    with pytest.raises(ShapeError, match="cannot read"):
        mo.load_calibration(tmp_path / "missing.npz", ["a"])
    with pytest.raises(ShapeError, match="cannot read ONNX file"):
        mo.onnx_input_names(work["npz"])
    with pytest.raises(ConfigError, match="no calibration slots"):
        mo.save_calibration(tmp_path / "c.npz", [])
    assert not (tmp_path / "x.onnx").exists()


def _calib_stack(work):
    return {k: np.concatenate([v[i:i + 1] for i in range(len(v))]) for k, v in
            mo.load_calibration(work["npz"], ["a", "b"]).items()}


def test_tune_for_ort_rewrites_and_forms_integer_convs(work, quantized, tmp_path):
    """The ORT rewrite folds weight Q, makes the Relu -> Q uint8, quantizes the depthwise Conv ModelOpt
    was told to skip, gives pointwise Convs 7-bit weights, stays close to the int8 model and turns
    more Convs into ORT integer QLinearConv."""
    import onnx

    from effinrx.engines.ort import OrtEngine
    from effinrx.export.ort_qdq import tune_for_ort

    calib = _calib_stack(work)
    src = mo.quantize(work["fp32"], tmp_path / "standin_int8_nodw.onnx", "int8", work["npz"], method="max",
                      nodes_to_exclude=["dw"])
    assert "dw" in mo.coverage(src).unquantized.get("Conv", [])
    out = tmp_path / "standin_int8_ort.onnx"
    stats = tune_for_ort(src, out, calibration=calib)
    n_qw = sum(n.op_type == "QuantizeLinear" and n.input[0].endswith("_w") for n in onnx.load(str(src)).graph.node)
    assert stats == {"weights_folded": n_qw, "relu_uint8": 1, "convs_quantized": 1, "convs_equalized": 0,
                     "convs_kept_float": 0,
                     "pointwise_7bit": 2}
    tuned = onnx.load(str(out))
    assert not any(n.op_type == "QuantizeLinear" and n.input[0].endswith("_w") for n in tuned.graph.node)
    assert "dw" in mo.coverage(out).quantized["Conv"]
    x = {k: v[:1] for k, v in calib.items()}
    ref = OrtEngine(work["fp32"], threads=1).run(x)["y"]
    before = OrtEngine(src, threads=1).run(x)["y"]
    after = OrtEngine(out, threads=1).run(x)["y"]
    err_b, err_a = np.abs(before - ref).max(), np.abs(after - ref).max()
    assert 0 < err_a <= 2.0 * err_b + 1e-3 * np.abs(ref).max(), (err_a, err_b)
    prof = {}
    for name, path in (("before", src), ("after", out)):
        eng = OrtEngine(path, threads=1, profile_dir=tmp_path)
        prof[name] = eng.profile(n=2, inputs=x)["ops"].get("QLinearConv", {}).get("count", 0)
    assert prof["after"] >= prof["before"] + 2, prof  # pw1 (Relu) and dw (calibrated here)


def test_relu_to_uint8_is_exact_inside_the_calibrated_range(work, quantized, tmp_path):
    """Q(Relu(x)) with uint8 z=0 equals int8 z=0 for |x| <= 127 s: on a calibration slot (inside the
    max-calibrated range) the graph evaluated without ORT fusions gives identical outputs."""
    import onnx

    from effinrx.engines.ort import OrtEngine
    from effinrx.export.ort_qdq import fold_weight_q, relu_to_uint8

    m = onnx.load(str(quantized["int8"]))
    fold_weight_q(m)
    assert relu_to_uint8(m) == 1
    onnx.save(m, str(tmp_path / "u8.onnx"))
    x = {k: v[:1] for k, v in _calib_stack(work).items()}
    a = OrtEngine(quantized["int8"], threads=1, optimization="none").run(x)["y"]
    b = OrtEngine(tmp_path / "u8.onnx", threads=1, optimization="none").run(x)["y"]
    np.testing.assert_array_equal(a, b)


def test_pointwise_int8_conv_on_ort_does_not_saturate(tmp_path):
    """Adversarial 1x1 Conv: signed int8 activations near +-127 (ORT shifts them to uint8 up to 255)
    times weights near +-127 overflow the int16 pair sums of u8 x s8 kernels. After the 7-bit rewrite
    ORT's output must match float math on the dequantized tensors within the weight rounding."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from effinrx.engines.ort import OrtEngine
    from effinrx.export.ort_qdq import reduce_pointwise_range

    cin, cout, n = 64, 32, 64
    rng = np.random.default_rng(3)
    wq = (np.where(rng.random((cout, cin, 1, 1)) < .5, -1, 1) * rng.integers(100, 128, (cout, cin, 1, 1))).astype(np.int8)
    wq[:, ::2] = np.abs(wq[:, ::2])  # same-sign pairs: the worst case for a pairwise int16 sum
    wq[:, 1::2] = np.abs(wq[:, 1::2])
    ws, xs, ys = np.full(cout, 0.01, np.float32), np.float32(0.05), np.float32(40.0)
    inits = [numpy_helper.from_array(wq, "wq"), numpy_helper.from_array(ws, "ws"),
             numpy_helper.from_array(np.zeros(cout, np.int8), "wz"), numpy_helper.from_array(np.array(xs), "xs"),
             numpy_helper.from_array(np.array(ys), "ys"), numpy_helper.from_array(np.array(0, np.int8), "z")]
    mk = helper.make_node
    nodes = [mk("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
             mk("QuantizeLinear", ["x", "xs", "z"], ["xq"]), mk("DequantizeLinear", ["xq", "xs", "z"], ["xd"]),
             mk("Conv", ["xd", "w"], ["c"], kernel_shape=[1, 1]),
             mk("QuantizeLinear", ["c", "ys", "z"], ["cq"]), mk("DequantizeLinear", ["cq", "ys", "z"], ["y"])]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "pw", [vi("x", TensorProto.FLOAT, [1, cin, 1, n])],
                          [vi("y", TensorProto.FLOAT, [1, cout, 1, n])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    assert reduce_pointwise_range(m) == 1
    onnx.save(m, str(tmp_path / "pw7.onnx"))
    x = (rng.integers(120, 128, (1, cin, 1, n)) * xs).astype(np.float32)  # all near +127 -> uint8 ~255
    got = OrtEngine(tmp_path / "pw7.onnx", threads=1).run({"x": x})["y"]
    w7 = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "wq")).astype(np.float32)
    ref = np.einsum("oi,bihw->bohw", w7[:, :, 0, 0] * 0.02, np.rint(x / xs) * xs)
    ref = np.clip(np.rint(ref / ys), -128, 127) * ys
    assert np.abs(got - ref).max() <= ys + 1e-6  # one output step of rounding, no overflow


def test_tune_for_ort_names_an_unreadable_file(tmp_path):
    from effinrx.export.ort_qdq import tune_for_ort

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ShapeError, match="cannot read ONNX file .*broken.onnx"):
        tune_for_ort(bad, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_depthwise_input_with_unequal_channels_is_equalized(tmp_path):
    """Channels 0-3 of a depthwise Conv's input span +-200, the rest +-1: one per-tensor int8 scale
    would leave the small channels < 1 level. quantize_float_convs equalizes (x / a_c, a_c folded into
    the weights): every channel's output must keep an int8-sized error (< 2 % of its range), and
    the per-tensor version (no equalization) must not, so the test can tell them apart."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from effinrx.engines.ort import OrtEngine
    from effinrx.export.ort_qdq import quantizable, quantize_float_convs

    rng = np.random.default_rng(5)
    w = (rng.standard_normal((C, 1, 3, 3)) * .3).astype(np.float32)
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="dw", group=C, kernel_shape=[3, 3],
                                            pads=[1] * 4)], "dw", [vi("x", TensorProto.FLOAT, [1, C, 14, S])],
                          [vi("y", TensorProto.FLOAT, [1, C, 14, S])], [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    scale = np.ones(C)
    scale[:4] = 200.0
    x = (rng.uniform(-1, 1, (1, C, 14, S)) * scale.reshape(1, -1, 1, 1)).astype(np.float32)
    amax = np.abs(x).max(axis=(0, 2, 3))
    assert not quantizable(amax) and quantizable(np.ones(C))
    onnx.save(m, str(tmp_path / "f.onnx"))
    ref = OrtEngine(tmp_path / "f.onnx", threads=1).run({"x": x})["y"]
    worst = {}
    for name, ch in (("equalized", amax), ("per-tensor", np.full(C, amax.max()))):
        mm = onnx.ModelProto()
        mm.CopyFrom(m)
        assert quantize_float_convs(mm, {"x": ch}) == (1, 1 if name == "equalized" else 0)
        onnx.save(mm, str(tmp_path / f"{name}.onnx"))
        y = OrtEngine(tmp_path / f"{name}.onnx", threads=1).run({"x": x})["y"]
        rng_c = np.abs(ref).max(axis=(0, 2, 3))
        worst[name] = float((np.abs(y - ref).max(axis=(0, 2, 3)) / rng_c).max())
    assert worst["equalized"] < 0.02 < worst["per-tensor"], worst
