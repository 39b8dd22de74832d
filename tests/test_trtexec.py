"""TensorRT paths that run without a GPU: version dispatch, trtexec command lines, output parsers."""
from pathlib import Path

import pytest

from effinrx.engines import gpu_runtime
from effinrx.engines import tensorrt as trt_engine
from effinrx.engines import trtexec
from effinrx.errors import ConfigError, NotAvailableError, ShapeError

DATA = Path(__file__).parent / "data" / "trtexec"
SHAPES = {"rx_slot_real": (1, 1584, 14, 4), "rx_slot_imag": (1, 1584, 14, 4),
          "h_hat_real": (1, 1584, 2, 4), "h_hat_imag": (1, 1584, 2, 4)}


def test_trt10_commands():
    """10.x: Q/DQ models strongly typed without precision flags; fp16 by flag; static shapes never
    passed; CUDA graph by --useCudaGraph; copies timed by default; profile in a separate run."""
    argv = trtexec.command("nrx_large_fp8.onnx", "nrx_large_fp8.plan", "fp8", "10.2.0", explicit_qdq=True,
                           profile_json="p.json")
    assert "--stronglyTyped" in argv and not {"--fp8", "--fp16", "--int8"} & set(argv)
    assert not any(a.startswith(("--minShapes", "--optShapes", "--maxShapes", "--shapes")) for a in argv)
    assert "--useCudaGraph" in argv and "--separateProfileRun" in argv and "--noDataTransfers" not in argv
    fp16 = trtexec.command("m.onnx", "m.plan", "fp16", "10.16.1.11", cuda_graph=False, data_transfers=False)
    assert "--fp16" in fp16 and "--stronglyTyped" not in fp16 and "--useCudaGraph" not in fp16
    assert "--noDataTransfers" in fp16
    assert trtexec.command("m.onnx", "m.plan", "fp32", "10.16.1.11")[3:] == ["--useCudaGraph"]
    dyn = trtexec.command("m.onnx", "m.plan", "fp32", "10.16", shapes=SHAPES)
    s = "rx_slot_real:1x1584x14x4,rx_slot_imag:1x1584x14x4,h_hat_real:1x1584x2x4,h_hat_imag:1x1584x2x4"
    assert f"--minShapes={s}" in dyn and f"--optShapes={s}" in dyn and f"--maxShapes={s}" in dyn


def test_trt11_commands():
    """11.x: no precision flags, fp16 only from an AutoCast ONNX; graphs on unless --noCudaGraph;
    copies only with --includeDataTransfers; no deprecated --separateProfileRun."""
    argv = trtexec.command("m.onnx", "m.plan", "fp16", "11.4.0.106", autocast_fp16=True, sparsity=True,
                           profile_json="p.json")
    assert not {"--fp16", "--int8", "--fp8", "--stronglyTyped", "--useCudaGraph",
                "--separateProfileRun"} & set(argv)
    assert "--sparsity=enable" in argv and "--includeDataTransfers" in argv and "--exportProfile=p.json" in argv
    off = trtexec.command("m.onnx", "m.plan", "int8", "11.4", explicit_qdq=True, cuda_graph=False,
                          data_transfers=False)
    assert "--noCudaGraph" in off and "--includeDataTransfers" not in off
    with pytest.raises(ConfigError, match="11.x has no --fp16"):
        trtexec.command("m.onnx", "m.plan", "fp16", "11.4")


@pytest.mark.parametrize("version", ["10.16.1.11", "11.4.0.106"])
@pytest.mark.parametrize("precision", ["int8", "fp8", "int4"])
def test_quantized_without_qdq_is_refused(version, precision):
    with pytest.raises(ConfigError, match="quantize the ONNX first"):
        trtexec.command("m", "e", precision, version)
    with pytest.raises(ConfigError, match="quantize the ONNX first"):
        trt_engine.plan(version, precision, explicit_qdq=False)


def test_command_rejects_bad_requests():
    with pytest.raises(ConfigError, match="only 10.x and 11.x"):
        trtexec.command("m", "e", "fp16", "8.6.1")
    with pytest.raises(ConfigError, match="precision 'bf8'"):
        trtexec.command("m", "e", "bf8", "10.2")
    with pytest.raises(ConfigError, match="input shapes"):
        trtexec.shape_arg({})


def test_parse_summary_separates_gpu_compute_from_host_latency():
    s = trtexec.parse_summary((DATA / "summary_trt10.txt").read_text())
    assert s["throughput_qps"] == pytest.approx(2757.71)
    assert s["gpu_compute"]["mean_ms"] == pytest.approx(0.495239)
    assert s["gpu_compute"]["p99_ms"] == pytest.approx(0.521484)
    assert s["host_latency"]["median_ms"] == pytest.approx(0.608398)
    assert s["h2d"]["mean_ms"] < s["host_latency"]["mean_ms"]
    with pytest.raises(ShapeError, match="Performance summary"):
        trtexec.parse_summary("[E] Error: build failed")


def test_parse_times_and_profile():
    t = trtexec.parse_times(DATA / "times.json")
    assert t["gpu_compute"]["median_ms"] == pytest.approx(0.50)
    assert t["host_latency"]["n"] == 3 and t["h2d"]["median_ms"] == pytest.approx(0.08)
    assert t["transfers_included"]
    # 11.x without --includeDataTransfers: copies read 0 and "latency" is the compute time
    t11 = trtexec.parse_times(DATA / "times_trt11_no_transfers.json")
    assert not t11["transfers_included"]
    assert t11["host_latency"]["median_ms"] == t11["gpu_compute"]["median_ms"]
    p = trtexec.parse_profile(DATA / "profile.json")
    assert p["count"] == 1000 and p["layers"][0]["name"].startswith("cgnn0/upd0/pointwise")
    with pytest.raises(ShapeError, match="corrupt"):
        trtexec.parse_profile("[{bad json")


def test_parse_times_checks_trtexec_field_names_and_latency_sum():
    import json

    recs = json.loads((DATA / "times.json").read_text())
    assert set(recs[0]) == set(trtexec.TIMES_FIELDS)
    wrong = [{k.replace("H2d", "H2D"): v for k, v in r.items()} for r in recs]
    with pytest.raises(ShapeError, match=r"fields trtexec does not write: \['endH2DMs', 'startH2DMs'\]"):
        trtexec.parse_times(wrong)
    with pytest.raises(ShapeError, match=r"does not write: \['enqueueMs'\]"):
        trtexec.parse_times([{**r, "enqueueMs": 0.02} for r in recs])
    bad = [dict(r) for r in recs]
    bad[1]["latencyMs"] = 0.9
    with pytest.raises(ShapeError, match=r"record 1: latencyMs 0.9 != h2dMs \+ computeMs \+ d2hMs = 0.6"):
        trtexec.parse_times(bad)
    with pytest.raises(ShapeError, match=r"lack \['latencyMs'\]"):
        trtexec.parse_times([{k: v for k, v in r.items() if k != "latencyMs"} for r in recs])


def test_build_plans_per_version():
    p10 = trt_engine.plan("10.16.1.11", "fp16", explicit_qdq=False)
    assert p10.builder_flags == ("FP16",) and not p10.strongly_typed and p10.network_flags == ()
    q10 = trt_engine.plan("10.16.1.11", "int8", explicit_qdq=True, sparse=True)
    assert q10.strongly_typed and q10.network_flags == ("STRONGLY_TYPED",)
    assert q10.builder_flags == ("SPARSE_WEIGHTS",)
    assert trt_engine.plan("10.2.0", "fp32", explicit_qdq=False).builder_flags == ()
    p11 = trt_engine.plan("11.4.0.106", "fp16", explicit_qdq=False)
    assert p11.strongly_typed and p11.needs_autocast_fp16 and p11.builder_flags == () and p11.network_flags == ()
    assert not trt_engine.plan("11.4", "fp16", explicit_qdq=False, autocast_fp16=True).needs_autocast_fp16
    assert trt_engine.plan("11.4", "fp8", explicit_qdq=True).builder_flags == ()


def test_api_list_names_what_the_engine_calls():
    """TRT_API (checked against the real bindings by .ci/trt-api) lists every trt.<name> the
    module's source uses and the methods it calls, so the CPU check cannot miss a new call."""
    import re

    src = Path(trt_engine.__file__).read_text()
    used = set(re.findall(r"\btrt\.([A-Za-z_]+)", src))
    assert used <= set(trt_engine.TRT_API[""]), used - set(trt_engine.TRT_API[""])
    methods = {m for k, v in trt_engine.TRT_API.items() if k for m in v}
    for call in set(re.findall(r"\.(create_\w+|build_\w+|deserialize_\w+|execute_\w+|set_\w+|get_tensor_\w+|"
                               r"add_optimization_profile|num_io_tensors|num_errors|get_error)\b", src)):
        assert call in methods, call


def test_cudart_list_names_what_the_engine_calls():
    """CUDART_API (gpu_runtime) lists every cr.<name> of the engine and its CUDA runtime helpers."""
    import re

    src = Path(trt_engine.__file__).read_text() + Path(gpu_runtime.__file__).read_text()
    used = set(re.findall(r"\bcr\.(cuda\w+)", src))
    assert used == set(gpu_runtime.CUDART_API), used ^ set(gpu_runtime.CUDART_API)


def test_no_cuda_device_is_the_reason_everywhere():
    """Without cuda-python or a device, the reason names the missing CUDA device, and the engine
    refuses before touching TensorRT."""
    trt_engine.cuda_device_reason.cache_clear()
    try:
        why = trt_engine.cuda_device_reason()
        if why is None:
            pytest.skip("a CUDA device is present here")
        assert why.startswith("no CUDA device: ")
        assert trt_engine.tensorrt_reason() == why
        with pytest.raises(NotAvailableError, match="no CUDA device"):
            trt_engine.TensorRTEngine(DATA / "profile.json", "fp16")
    finally:
        trt_engine.cuda_device_reason.cache_clear()


def test_device_count_error_is_not_a_gpu(monkeypatch):
    """cuda-python importable but cudaGetDeviceCount fails (error 35 on a CPU box): no GPU."""
    import types

    fake = types.SimpleNamespace(cudaGetDeviceCount=lambda: (35, 0))
    monkeypatch.setattr(gpu_runtime, "import_cudart", lambda: fake)
    gpu_runtime.cuda_device_reason.cache_clear()
    try:
        assert gpu_runtime.cuda_device_reason() == "no CUDA device: cudaGetDeviceCount: CUDA call failed with 35"
        fake.cudaGetDeviceCount = lambda: (0, 0)
        gpu_runtime.cuda_device_reason.cache_clear()
        assert gpu_runtime.cuda_device_reason() == "no CUDA device: cudaGetDeviceCount() = 0"
        fake.cudaGetDeviceCount = lambda: (0, 1)
        gpu_runtime.cuda_device_reason.cache_clear()
        assert gpu_runtime.cuda_device_reason() is None
    finally:
        gpu_runtime.cuda_device_reason.cache_clear()


def test_missing_tensorrt_is_a_clear_error():
    import importlib

    for mod in ("tensorrt", "tensorrt_bindings"):  # the bare bindings wheel names its module so
        try:
            importlib.import_module(mod)
        except Exception:
            continue
        pytest.skip(f"{mod} imports here; the missing-TensorRT path cannot be exercised")
    with pytest.raises(NotAvailableError, match="TensorRT is not available"):
        trt_engine.import_tensorrt()
