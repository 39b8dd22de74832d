"""ONNX Runtime engine and latency-table arithmetic on a tiny hand-built model."""
import numpy as np
import pytest

from effinrx.engines import base as engine_base
from effinrx.engines import ort as ort_engine
from effinrx.latency import build, measure, table
from effinrx.engines.base import summarize_ms
from effinrx.engines.ort import OrtEngine, summarize_profile
from effinrx.errors import ConfigError, ShapeError


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], np.arange(12, dtype=np.float32).tolist())
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "tiny",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
    p = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    onnx.save(m, str(p))
    return p


def test_run_time_profile(tiny_onnx, tmp_path):
    eng = OrtEngine(tiny_onnx, threads=1, profile_dir=tmp_path)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(eng.run({"x": x})["y"], x @ np.arange(12, dtype=np.float32).reshape(4, 3))
    st = eng.time(n=5, warmup=1)
    assert st["n"] == 5 and 0 < st["min_ms"] <= st["median_ms"] <= st["p99_ms"]
    prof = eng.profile(n=3)
    assert "MatMul" in prof["ops"] and prof["int_share"] == 0.0
    assert eng.describe()["threads"] == 1


def test_describe_names_the_model_by_content_not_folder(tiny_onnx, tmp_path):
    """The description keys sweep resume caches: the same model in another folder is the same
    receiver, a different model under the same file name is not."""
    import shutil

    import onnx

    copy = tmp_path / "a" / tiny_onnx.name
    copy.parent.mkdir()
    shutil.copy(tiny_onnx, copy)
    d0, d1 = OrtEngine(tiny_onnx, threads=1).describe(), OrtEngine(copy, threads=1).describe()
    assert d0 == d1 and d0["model"] == "tiny.onnx" and len(d0["model_digest"]) == 20
    m = onnx.load(str(tiny_onnx))
    m.graph.initializer[0].float_data[0] = 99.0
    other = tmp_path / "b" / tiny_onnx.name
    other.parent.mkdir()
    onnx.save(m, str(other))
    assert OrtEngine(other, threads=1).describe()["model_digest"] != d0["model_digest"]
    # the same computation under other tensor and node names (a second tf2onnx export) is the same model
    m = onnx.load(str(tiny_onnx))
    m.graph.node[0].name = "other"
    m.graph.node[0].input[1] = m.graph.initializer[0].name = "w2"
    renamed = tmp_path / "c" / tiny_onnx.name
    renamed.parent.mkdir()
    onnx.save(m, str(renamed))
    assert OrtEngine(renamed, threads=1).describe()["model_digest"] == d0["model_digest"]


def test_digest_ignores_the_order_of_independent_nodes(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from effinrx.export.digest import content_digest

    def save(order, scale, name):
        w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1.0, 2.0, 3.0, scale])
        nodes = [helper.make_node("MatMul", ["x", "w"], ["a"], name="n1"),
                 helper.make_node("Relu", ["x"], ["b"], name="n2")]
        g = helper.make_graph([nodes[i] for i in order], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, [2, 2]) for o in "ab"], [w])
        p = tmp_path / name
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)]), str(p))
        return content_digest(p)

    assert save([0, 1], 4.0, "a.onnx") == save([1, 0], 4.0, "b.onnx") != save([0, 1], 5.0, "c.onnx")


def test_bad_inputs_are_named(tiny_onnx):
    eng = OrtEngine(tiny_onnx, threads=1)
    with pytest.raises(ShapeError, match="input 'x' has shape \\(3, 4\\), expected \\(2, 4\\)"):
        eng.run({"x": np.zeros((3, 4), np.float32)})
    with pytest.raises(ShapeError, match="missing \\['x'\\]"):
        eng.run({"z": np.zeros((2, 4), np.float32)})
    with pytest.raises(ShapeError, match="dtype int64"):
        eng.run({"x": np.zeros((2, 4), np.int64)})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OrtEngine("/nonexistent/model.onnx")


def test_profile_summary_flags_integer_ops():
    ev = [{"cat": "Node", "name": "a_kernel_time", "dur": 30, "args": {"op_name": "QLinearConv"}},
          {"cat": "Node", "name": "b_kernel_time", "dur": 70, "args": {"op_name": "Conv"}},
          {"cat": "Session", "name": "x", "dur": 999}]
    s = summarize_profile(ev)
    assert s["int_share"] == pytest.approx(0.3) and s["ops"]["Conv"]["share"] == pytest.approx(0.7)


def test_latency_arithmetic():
    assert table.raw_bits_per_slot(132) == 177408
    row = table.make_row("nrx-rt", "fp32", "trt", "gpu", 132, {"median_ms": 1.17334, "p99_ms": 1.2})
    assert row.fps == pytest.approx(852.27, rel=1e-3) and not row.urllc_1ms
    assert row.raw_mbps == pytest.approx(row.fps * 177408 / 1e6)
    assert row.paper_ms == 1.17334
    rows = table.add_speedups([row, table.make_row("nrx-rt", "fp16", "trt", "gpu", 132, {"median_ms": 0.5})], "fp32")
    assert rows[1].speedup == pytest.approx(1.17334 / 0.5) and rows[1].urllc_1ms
    assert "nrx-rt | fp16" in table.format_table(rows)
    with pytest.raises(ConfigError):
        table.raw_bits_per_slot(0)
    assert summarize_ms([1, 2, 3])["median_ms"] == 2.0


def test_ort_paths_name_unsupported_precisions(tmp_path, capsys):
    from effinrx.cli import main

    with pytest.raises(ConfigError, match="precision 'int2' has no ONNX model path"):
        build.ort_model_path("nrx-rt", "int2", 4, tmp_path)
    assert main(["latency", "--precision", "fp32,fp8"]) == 1  # fp8 Q/DQ does not run on ORT CPU
    assert "--precision ['fp8']" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing exported for a rejected request


def test_time_beside_probe_alternates_model_and_probe():
    from effinrx.engines.ort import time_beside_probe

    calls = []
    out = time_beside_probe(lambda: calls.append(1), threads=1, n=7, warmup=2)
    assert len(calls) == 9  # warmup + timed, one probe run between each
    assert out["n"] == 7 and 0 <= out["min_ms"] <= out["median_ms"] and out["probe_ms"] > 0
    assert len(out["samples_ms"]) == 7 and len(out["probe_samples_ms"]) == 7
    only = time_beside_probe(None, threads=1, n=3, warmup=1)
    assert set(only) == {"probe_ms", "probe_median_ms", "samples_ms", "probe_samples_ms"}
    assert only["probe_ms"] > 0 and only["samples_ms"] == [] and len(only["probe_samples_ms"]) == 3


def test_gemm_mismatch_names_the_wrong_entries():
    from effinrx.engines.ort_selfcheck import gemm_mismatch

    want = np.arange(6).reshape(2, 3)
    assert gemm_mismatch(want.copy(), want) is None
    got = want.copy()
    got[1, 2] = 99
    assert gemm_mismatch(got, want) == "1 of 6 entries wrong (first at row 1, col 2: got 99, want 5)"
    assert gemm_mismatch(want[:1], want) == "output shape (1, 3), expected (2, 3)"


def test_integer_gemm_selfcheck(monkeypatch):
    """The real probe on this CPU is exact or names the defect; a corrupted GEMM is caught and named
    by shape (the probe reaches ORT: its exact results come from numpy, not from ORT)."""
    from effinrx import device
    from effinrx.engines import ort_selfcheck as S

    S.integer_gemm_defect.cache_clear()
    got = S.integer_gemm_defect()
    if got is not None:  # e.g. ORT 1.24.4 on AMX-INT8 Xeons (module docstring)
        assert got.startswith("ONNX Runtime ") and "MatMulInteger u8 x s8 M" in got and device.fingerprint() in got
    else:
        for m, k, n in S.PROBE_SHAPES:
            y, want = S._matmul_integer(m, k, n)
            assert y.shape == (m, n) and y.dtype == np.int32 and np.array_equal(y, want)
            assert np.abs(want).max() > 0  # the probe multiplies non-zero values

    real = S._matmul_integer

    def corrupt(m, k, n, seed=0):
        y, want = real(m, k, n, seed)
        if (m, k, n) == S.PROBE_SHAPES[1]:
            y = y.copy()
            y[m - 1, n - 1] += 1
        return y, want

    monkeypatch.setattr(S, "_matmul_integer", corrupt)
    S.integer_gemm_defect.cache_clear()
    try:
        bad = S.integer_gemm_defect()
        m, k, n = S.PROBE_SHAPES[1]
        assert bad is not None and (f"M{m} K{k} N{n}" in bad or got is not None)
        assert "entries wrong" in bad
    finally:
        S.integer_gemm_defect.cache_clear()


def test_tensorrt_cli_without_a_cuda_device_is_one_line(capsys):
    from effinrx.cli import main
    from effinrx.engines.tensorrt import tensorrt_reason

    why = tensorrt_reason()
    if why is None:
        pytest.skip("TensorRT and a CUDA device are present here")
    assert main(["latency", "--engine", "tensorrt", "--precision", "fp16"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--engine tensorrt: no CUDA device" in err, err
    assert main(["latency", "--engine", "tensorrt", "--precision", "int8-fused"]) == 1
    assert "TensorRT runs fp32, fp16, fp8, int8, fp16-2:4" in capsys.readouterr().err


def test_latency_table_times_through_the_shared_path(tiny_onnx, tmp_path, monkeypatch):
    """The CLI's table and the benchmarks time ORT through the same interleaved model/probe path."""
    monkeypatch.setattr(build, "ort_model_path", lambda m, p, prbs, folder: tiny_onnx)
    monkeypatch.setattr(measure, "info_bits_per_slot", lambda prbs: 1000)
    seen = []
    real = engine_base.time_interleaved
    monkeypatch.setattr(ort_engine, "time_interleaved", lambda *a, **k: seen.append(k["rounds"]) or real(*a, **k))
    rows = measure.latency_table("ort", ["nrx-rt"], ["fp32", "int8"], 4, tmp_path, runs=3, threads=1)
    assert seen == [3, 3] and [r.precision for r in rows] == ["fp32", "int8"]
    assert rows[0].speedup == 1.0 and rows[0].median_ms > 0 and rows[0].info_mbps == pytest.approx(rows[0].fps / 1e3)
    assert "copies" not in table.format_table(rows)
    trt = table.make_row("nrx-rt", "fp16", "tensorrt", "gpu-x", 132, {"median_ms": 0.5, "h2d_ms": 0.1, "d2h_ms": 0.05})
    assert "copies (timed apart, not in the latency): nrx-rt fp16: H2D 0.100 ms, D2H 0.050 ms" in table.format_table([trt])
