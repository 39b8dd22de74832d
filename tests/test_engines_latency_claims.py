"""The GPU branch of benchmarks/test_latency.py (L1, L3-L5, L7) in a child pytest run, with
``latency.measure.measure_tensorrt`` replaced by the paper's own RTX 6000 Ada table: the verdicts follow from
the numbers, latencies on a GPU without goldens end as "no golden for this device", and nothing
calls pytest.fail. No GPU or TensorRT is used: this checks the benchmark's logic only."""
import json
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = '''
pytest_plugins = ["effinrx.claims.pytest_plugin"]
import effinrx.engines.tensorrt as T
from effinrx.latency import measure, table
from effinrx import device

T.tensorrt_reason = lambda: None  # "a GPU with TensorRT is here"
device.gpu_info = lambda: {"name": "NVIDIA RTX 6000 Ada Generation", "driver": "x", "memory": "48 GiB"}
CALLS = []


def fake_measure(model, precision, prbs, folder, runs=200, warmup=20):
    CALLS.append((model, precision))
    base = table.PAPER_ADA_MS[(model, "fp16" if precision == "fp16-2:4" else precision)]
    ms = base * (SPARSE_FACTOR if precision == "fp16-2:4" else 1.0)
    return {"median_ms": ms, "p99_ms": ms * 1.1, "min_ms": ms * 0.95, "mean_ms": ms, "n": runs,
            "h2d_ms": 0.1, "d2h_ms": 0.05, "timing": "cuda-graph", "tensorrt": "10.16.1.11 (stand-in)"}


measure.measure_tensorrt = fake_measure
measure.trt_unsupported = lambda precision: UNSUPPORTED.get(precision)


def pytest_sessionfinish(session):
    import json, pathlib
    pathlib.Path("calls.json").write_text(json.dumps(CALLS))
'''


def _paper_tier(pytester, conftest: str):
    """The paper tier of test_latency.py in a child pytest with the stand-in GPU ``conftest`` and the
    real L3 golden; returns (result, report folder)."""
    pytester.makeconftest(conftest)
    shutil.copy(ROOT / "benchmarks" / "test_latency.py", pytester.path / "test_latency.py")
    gold = pytester.path / "golden" / "paper" / "any"
    gold.mkdir(parents=True)
    shutil.copy(ROOT / "golden" / "paper" / "any" / "L3.json", gold / "L3.json")
    rep = pytester.path / "rep"
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tier", "paper", "-k", "not l2",
                                        "--golden-dir", str(pytester.path / "golden"), "--report-dir", str(rep))
    return res, rep


@pytest.mark.parametrize("sparse_factor,l7", [(1.0, "reproduced"), (0.7, "not reproduced")])
def test_gpu_branch_verdicts_follow_the_measurements(pytester, sparse_factor, l7):
    res, rep = _paper_tier(pytester, CONFTEST.replace("SPARSE_FACTOR", repr(sparse_factor)).replace("UNSUPPORTED", "{}"))
    # L1 x8 and L7 x2 have no golden for this GPU: xfail; L3 x4, L4, L5 x2, L6 pass
    res.assert_outcomes(passed=8, xfailed=10, deselected=1)
    data = json.loads((rep / "tolerance.json").read_text())
    rows = data["checks"]
    verdict = {(r["claim"], r["key"]): r["verdict"] for r in rows}
    assert verdict[("L4", "nrx-rt/132prb/urllc_1ms")] == "reproduced"  # the Ada table: only fp32 > 1 ms
    assert verdict[("L5", "nrx-rt/fp8_vs_int8")] == "reproduced"
    assert verdict[("L3", "nrx-rt/fp8/132prb_speedup")] == "reproduced"  # x1.354 within 20% of x1.27
    assert verdict[("L3", "nrx-rt/fp8/paper_arithmetic_table_ratio")] == "pass"  # arithmetic: never "reproduced"
    assert verdict[("L7", "nrx-large/fp16/2:4_vs_dense")] == l7
    assert verdict[("L1", "nrx-large/int8/132prb")] == "no golden for this device"
    calls = [tuple(c) for c in json.loads((pytester.path / "calls.json").read_text())]
    assert len(calls) == len(set(calls)) == 10  # every model x variant built and timed once


def test_a_gpu_without_fp8_says_so(pytester):
    """An Ampere-class GPU (no FP8 tensor cores): the fp8 rows are "not measurable here" with the
    capability, nothing is built for them, the other precisions are measured."""
    why = "fp8 needs compute capability >= 8.9; this GPU has 8.0"
    res, rep = _paper_tier(pytester, CONFTEST.replace("SPARSE_FACTOR", "1.0").replace("UNSUPPORTED", repr({"fp8": why}))
                           .replace("NVIDIA RTX 6000 Ada Generation", "NVIDIA A100-SXM4-80GB"))
    res.assert_outcomes(passed=10, xfailed=8, deselected=1)  # L1 fp8 x2 now pass as not measurable
    rows = json.loads((rep / "tolerance.json").read_text())["checks"]
    verdict = {(r["claim"], r["key"]): r["verdict"] for r in rows}
    assert verdict[("L1", "nrx-rt/fp8/132prb")] == f"not measurable here ({why})"
    assert verdict[("L3", "nrx-large/fp8/132prb_speedup")] == f"not measurable here ({why})"
    assert verdict[("L4", "nrx-rt/132prb/urllc_1ms")] == f"not measurable here (fp8: {why})"
    assert verdict[("L5", "nrx-rt/fp8_vs_int8")].startswith("not measurable here (the claim is about Ada")
    assert verdict[("L3", "nrx-rt/int8/132prb_speedup")] == "reproduced"
    calls = [tuple(c) for c in json.loads((pytester.path / "calls.json").read_text())]
    assert ("nrx-rt", "fp8") not in calls and len(calls) == 8
