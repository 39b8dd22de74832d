"""TensorRT paths that run without a GPU: version dispatch, trtexec command lines, output parsers."""
from pathlib import Path

import pytest

from effinrx.engines import tensorrt as trt_engine
from effinrx.engines import trtexec
from effinrx.errors import ConfigError, NotAvailableError, ShapeError

DATA = Path(__file__).parent / "data" / "trtexec"
SHAPES = {"rx_slot_real": (1, 1584, 14, 4), "rx_slot_imag": (1, 1584, 14, 4),
          "h_hat_real": (1, 1584, 2, 4), "h_hat_imag": (1, 1584, 2, 4)}


def test_trt10_command_matches_the_blog():
    argv = trtexec.command("nrx_large_fp8.onnx", "nrx_large_fp8.plan", SHAPES, "fp8", "10.2.0",
                           explicit_qdq=True)
    assert "--fp8" in argv and "--stronglyTyped" in argv
    s = "rx_slot_real:1x1584x14x4,rx_slot_imag:1x1584x14x4,h_hat_real:1x1584x2x4,h_hat_imag:1x1584x2x4"
    assert f"--minShapes={s}" in argv and f"--optShapes={s}" in argv and f"--maxShapes={s}" in argv


def test_trt11_command_has_no_precision_flags():
    argv = trtexec.command("m.onnx", "m.plan", SHAPES, "fp16", "11.0.1", sparsity=True)
    assert not {"--fp16", "--int8", "--fp8", "--stronglyTyped"} & set(argv)
    assert "--sparsity=enable" in argv


def test_command_rejects_bad_requests():
    with pytest.raises(ConfigError, match="only 10.x and 11.x"):
        trtexec.command("m", "e", SHAPES, "fp16", "8.6.1")
    with pytest.raises(ConfigError, match="precision 'bf8'"):
        trtexec.command("m", "e", SHAPES, "bf8", "10.2")
    with pytest.raises(ConfigError, match="input shapes"):
        trtexec.command("m", "e", {}, "fp16", "10.2")


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
    assert t["host_latency"]["n"] == 3
    p = trtexec.parse_profile(DATA / "profile.json")
    assert p["count"] == 1000 and p["layers"][0]["name"].startswith("cgnn0/upd0/pointwise")
    with pytest.raises(ShapeError, match="corrupt"):
        trtexec.parse_profile("[{bad json")


def test_build_plans_per_version():
    p10 = trt_engine.plan("10.7.0", "fp16", explicit_qdq=False, shapes=SHAPES)
    assert p10.builder_flags == ("FP16",) and not p10.strongly_typed
    q10 = trt_engine.plan("10.7.0", "int8", explicit_qdq=True, sparse=True)
    assert q10.strongly_typed and q10.builder_flags == ("SPARSE_WEIGHTS",)
    p11 = trt_engine.plan("11.0.0", "fp16", explicit_qdq=False)
    assert p11.strongly_typed and p11.needs_autocast_fp16 and p11.builder_flags == ()
    with pytest.raises(ConfigError, match="Q/DQ"):
        trt_engine.plan("11.0.0", "int8", explicit_qdq=False)


def test_missing_tensorrt_is_a_clear_error():
    try:
        import tensorrt  # noqa: F401
    except Exception:
        with pytest.raises(NotAvailableError, match="TensorRT is not available"):
            trt_engine.import_tensorrt()
    else:
        pytest.skip("TensorRT is installed here; the missing-TensorRT path cannot be exercised")
