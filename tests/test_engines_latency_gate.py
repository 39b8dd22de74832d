"""The latency timing path (model and speed probe interleaved) and its rank-test gate.

The gate must catch a real slow-down on a benchmark runner, must not fire on load that the model and
the probe share, and on a shared runner must report instead of failing."""
import subprocess
import sys

import numpy as np
import pytest

from effinrx import errors
from effinrx.engines import base as engine_base
from effinrx.latency import gate


def test_interleaving_flips_the_order_every_round():
    order = []
    out = engine_base.time_interleaved(lambda: order.append("m"), lambda: order.append("p"), rounds=4, warmup=1)
    assert order == ["p", "m"] + ["m", "p", "p", "m", "m", "p", "p", "m"]  # warm-up, then ABBA
    assert out["n"] == 4 and len(out["samples_ms"]) == 4 and len(out["probe_samples_ms"]) == 4
    with pytest.raises(errors.ConfigError, match="rounds must be >= 1"):
        engine_base.time_interleaved(None, lambda: None, rounds=0)


def _run(rng, golden_ratio, slowdown, load, rounds=60):
    """Per-round samples of a model ``golden_ratio * slowdown`` x the probe; ``load`` multiplies
    both samples of a round by one random factor (a shared core: what one sees, the other sees)."""
    probe = 1.0 + 0.05 * rng.standard_normal(rounds) ** 2
    model = golden_ratio * slowdown * (1.0 + 0.05 * rng.standard_normal(rounds) ** 2)
    f = rng.uniform(1.0, load, rounds)
    model, probe = model * f, probe * f
    return {"median_ms": float(np.median(model)), "min_ms": float(model.min()), "probe_ms": float(probe.min()),
            "samples_ms": model.tolist(), "probe_samples_ms": probe.tolist()}


GOLDEN = _run(np.random.default_rng(99), 2.5, 1.0, 1.0)  # latency/probe 2.5, quiet
OLD_GOLDEN = {"median_ms": 5.2, "min_ms": 5.0, "probe_ms": 2.0}  # written before samples were kept


@pytest.mark.parametrize("load", [1.0, 3.0])
def test_hard_gate_passes_shared_load_and_catches_a_slowdown(load):
    rng = np.random.default_rng(0)
    same = gate.latency_gate(GOLDEN, _run(rng, 2.5, 1.0, load), 0.5, hard=True)
    assert same.ok and not same.advisory and same.p_value > gate.GATE_ALPHA, same
    slow = gate.latency_gate(GOLDEN, _run(rng, 2.5, 2.0, load), 0.5, hard=True)
    assert not slow.ok and slow.p_value < gate.GATE_ALPHA and "benchmark runner (hard gate)" in slow.text, slow
    assert slow.ratio == pytest.approx(2.0, rel=0.15)


def test_false_alarm_rate_of_the_hard_gate_is_at_most_alpha():
    rng = np.random.default_rng(1)
    alarms = sum(not gate.latency_gate(GOLDEN, _run(rng, 2.5, 1.0, 3.0), 0.5, hard=True).ok for _ in range(200))
    assert alarms <= 4, f"{alarms}/200 false alarms at an unchanged model"


def test_shared_runner_reports_the_ratio_and_does_not_fail(monkeypatch):
    monkeypatch.delenv(gate.BENCHMARK_RUNNER_ENV, raising=False)
    slow = gate.latency_gate(GOLDEN, _run(np.random.default_rng(2), 2.5, 2.0, 1.0), 0.5)
    assert slow.ok and slow.advisory and slow.text.startswith("advisory (shared runner): per-round latency/probe median x")
    assert slow.ratio == pytest.approx(2.0, rel=0.1)
    assert "slower than golden, not failed" in slow.text
    monkeypatch.setenv(gate.BENCHMARK_RUNNER_ENV, "1")
    assert gate.benchmark_runner() and not gate.latency_gate(GOLDEN, _run(np.random.default_rng(2), 2.5, 2.0, 1.0), 0.5).ok


def test_without_samples_falls_back_to_the_best_of_n_ratio():
    GOLDEN = OLD_GOLDEN
    ok = gate.latency_gate(GOLDEN, {"median_ms": 6.0, "min_ms": 5.5, "probe_ms": 2.0}, 0.5, hard=True)
    assert ok.ok and ok.p_value is None and "best-of-n" in ok.text
    bad = gate.latency_gate(GOLDEN, {"median_ms": 9.0, "min_ms": 8.0, "probe_ms": 2.0}, 0.5, hard=True)
    assert not bad.ok and bad.margin < 0
    fast = gate.latency_gate(GOLDEN, {"median_ms": 2.0, "min_ms": 2.0, "probe_ms": 2.0}, 0.5, hard=True)
    assert fast.ok and "stale?" in fast.text
    with pytest.raises(errors.ConfigError, match="needs 'median_ms'"):
        gate.latency_gate({}, GOLDEN, 0.5)


def test_real_probe_against_itself_holds_with_a_cpu_hog():
    """Two sessions of the same ORT workload, one as 'model', one as the probe: the gate against a
    golden taken without load must pass while a busy process competes for a core."""
    from effinrx.engines.ort import _probe, time_beside_probe

    sess, feed = _probe(1)
    quiet = time_beside_probe(lambda: sess.run(None, feed), threads=1, n=40, warmup=3)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = time_beside_probe(lambda: sess.run(None, feed), threads=1, n=40, warmup=3)
    finally:
        hog.kill()
        hog.wait()
    g = gate.latency_gate(quiet, loaded, 0.5, hard=True)
    assert g.ok, g.text


def test_ort_engine_refuses_nan_and_inf(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from effinrx.engines.ort import OrtEngine
    from effinrx.receivers.checks import InputError

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "t",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
    onnx.save(m, str(tmp_path / "r.onnx"))
    eng = OrtEngine(tmp_path / "r.onnx", threads=1)
    x = np.zeros((2, 3), np.float32)
    x[1, 2] = np.nan
    with pytest.raises(InputError, match=r"input 'x' has 1 NaN/Inf values \(first at index \(1, 2\): nan\)"):
        eng.run({"x": x})
    x[1, 2], x[0, 0] = np.inf, -np.inf
    with pytest.raises(InputError, match="2 NaN/Inf values"):
        eng.time(n=1, warmup=0, inputs={"x": x})
    assert eng.run({"x": np.ones((2, 3), np.float32)})["y"].sum() == 6
