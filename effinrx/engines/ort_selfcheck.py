"""Self-check of ONNX Runtime's CPU integer GEMM on this machine, before trusting int8 outputs.

Why: ORT's MLAS picks its u8 x s8 GEMM kernel from the CPU's features, so the same int8 model can
compute different numbers on different hosts. Measured 2026-11-30 with onnxruntime 1.24.4 on an
Intel Xeon with AVX-512 VNNI and AMX-INT8 (family 6 model 207): ``MatMulInteger`` M64 K64 N56
returned 16 wrong entries of 3584 -- the last row of each 32-row block, output columns 48..55 (the
tail after the last full 16 columns) -- even for inputs in {0, 1, 2}; N = 48 or 64 were exact. The
NRX-RT int8 graph has Dense layers with N = 56, so its LLR SQNR vs fp32 fell from 18-19 dB (AMD
hosts, and this host with the Q/DQ run as float ops) to 8.2 dB. Upstream: microsoft/onnxruntime
issue 26324 (wrong int8 outputs on Xeon 4th gen with AVX-512 VNNI + AMX-INT8 from 1.23 on).

The probe uses tiny values (|a - zp| <= 2, |b| <= 2) so AVX2's u8 x s8 pair saturation, a
documented ORT limitation that is not this defect, cannot trigger it.
"""
from __future__ import annotations

import functools

from effinrx import device

#: (M, K, N) of the probe GEMMs: N tails of 8, 2 and 12 columns after full 16-column blocks, M past
#: one 32-row block (the defect's pattern), and one NRX-like shape (1344 x 64 x 56)
PROBE_SHAPES = ((64, 64, 56), (64, 16, 50), (128, 32, 60), (1344, 64, 56))


def gemm_mismatch(got, want) -> str | None:
    """Compare an integer GEMM result with the exact one. ``got``, ``want``: [M, N] integer arrays.
    Returns None when equal, else "<n> of <size> entries wrong (first at row r, col c: got x, want y)"."""
    import numpy as np

    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"output shape {got.shape}, expected {want.shape}"
    bad = np.argwhere(got != want)
    if not len(bad):
        return None
    r, c = (int(v) for v in bad[0])
    return (f"{len(bad)} of {want.size} entries wrong (first at row {r}, col {c}: got {int(got[r, c])}, "
            f"want {int(want[r, c])})")


def _matmul_integer(m: int, k: int, n: int, seed: int = 0):
    """(ORT result, exact result) of ``MatMulInteger`` u8 [m, k] (zero point 1) x constant s8 [k, n]."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto as T, helper, numpy_helper

    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3, (m, k)).astype(np.uint8)
    b = rng.integers(-2, 3, (k, n)).astype(np.int8)
    g = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B", "az"], ["Y"])], "gemm_probe",
                          [helper.make_tensor_value_info("A", T.UINT8, [m, k])],
                          [helper.make_tensor_value_info("Y", T.INT32, [m, n])],
                          [numpy_helper.from_array(b, "B"), numpy_helper.from_array(np.array(1, np.uint8), "az")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"A": a})[0], (a.astype(np.int64) - 1) @ b.astype(np.int64)


@functools.lru_cache(maxsize=None)
def integer_gemm_defect() -> str | None:
    """None when ORT's u8 x s8 ``MatMulInteger`` is exact on :data:`PROBE_SHAPES` on this CPU, else
    one line naming the ORT version, the shape, what is wrong and the CPU (cached per process)."""
    import onnxruntime as ort

    for m, k, n in PROBE_SHAPES:
        bad = gemm_mismatch(*_matmul_integer(m, k, n))
        if bad:
            return (f"ONNX Runtime {ort.__version__} integer GEMM is wrong on this CPU ({device.fingerprint()}): "
                    f"MatMulInteger u8 x s8 M{m} K{k} N{n}: {bad}; int8 outputs of ORT are not trustworthy "
                    "here (cf. microsoft/onnxruntime issue 26324, AVX-512 VNNI/AMX-INT8 Xeons)")
    return None
