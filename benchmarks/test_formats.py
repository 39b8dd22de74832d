"""Claims M2 (storage shrinks 2x/4x/4x/8x), M3 (per-channel access cost) and R5 (scale rules)."""
import numpy as np
import pytest

from effinrx.claims.registry import param
from effinrx.quant.formats import QuantSpec, compute_scale, fake_quant, int_range
from effinrx.quant.shapes import nrx_inventory
from effinrx.quant.storage import memory_access_cost, storage_table

NOMINAL = {"fp16": 2.0, "int8": 4.0, "fp8_e4m3": 4.0, "int4": 8.0}
# Paper says "approximate" (seed 001 Table IV note): reproduced when the exact ratio, with every scale
# and fp32 bias counted, is within ``shortfall`` (golden/claims.toml M2: 10 %) of the nominal one.
ALLOWED = param("M2", "shortfall")


@pytest.mark.smoke
@pytest.mark.claim("M2")
@pytest.mark.parametrize("model,iters", [("nrx-rt", 2), ("nrx-large", 8)])
@pytest.mark.parametrize("fmt", list(NOMINAL))
@pytest.mark.parametrize("gran", ["per-tensor", "per-channel"])
def test_m2_weight_storage_ratio(claim_check, model, iters, fmt, gran):
    inv = nrx_inventory(iters)
    table = storage_table(inv, QuantSpec(fmt, gran))
    assert sum(int(np.prod(s)) for _, s, _ in inv) == {"nrx-rt": 142922, "nrx-large": 437366}[model]
    ratio = table.fp32_bytes / table.total_bytes
    assert 1.0 < ratio <= NOMINAL[fmt]  # metadata and fp32 biases can only cost, never gain
    claim_check(f"{model}/{fmt}/{gran}",
                {"total_bytes": table.total_bytes, "metadata_bytes": table.metadata_bytes,
                 "fp32_bytes": table.fp32_bytes},
                kind="exact", reproduced=ratio >= NOMINAL[fmt] * (1 - ALLOWED),
                paper=f"{NOMINAL[fmt]:g}x", note=f"measured {ratio:.3f}x (fp32 {table.fp32_bytes} B -> "
                                                 f"{table.total_bytes} B incl. {table.metadata_bytes} B scales)")


@pytest.mark.smoke
@pytest.mark.claim("M3")
def test_m3_per_channel_access_cost(claim_check):
    """The bytes of a real per-channel int8 quantization -- the int8 codes and the float32 scale
    sets of a random 3x3 128->128 kernel, as arrays -- against the paper's C*m_p + N*m_e (C = 128
    channels, m_p = 4 B, N elements, m_e = 1 B); the storage table must agree with both."""
    import numpy as np

    from effinrx.quant.formats import compute_scale, int_range, quantize

    shape = (3, 3, 128, 128)
    w = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    scale, _ = compute_scale(w, 8, axis=-1)
    codes = quantize(w, scale, 0, *int_range(8)).astype(np.int8)
    measured = int(codes.nbytes + scale.astype(np.float32).nbytes)  # one float32 scale per output channel
    formula = memory_access_cost(128, int(np.prod(shape)), 4, 1)
    inv = [("conv", shape, "kernel")]
    pc = storage_table(inv, QuantSpec("int8", "per-channel")).rows[0]
    pt = storage_table(inv, QuantSpec("int8", "per-tensor")).rows[0]
    assert pc.total == measured, f"storage table {pc.total} B vs the arrays' {measured} B"
    claim_check("conv3x3-128/int8", {"per_channel": pc.total, "per_tensor": pt.total}, kind="exact",
                reproduced=measured == formula,
                note=f"arrays: {codes.nbytes} B int8 codes + {measured - codes.nbytes} B float32 scales = {measured} B; "
                     f"C*m_p + N*m_e = {formula} B; per-channel extra over per-tensor {pc.total - pt.total} B")


@pytest.mark.smoke
@pytest.mark.claim("R5")
@pytest.mark.parametrize("bits", [4, 8])
def test_r5_symmetric_scale_rules(claim_check, bits):
    rng = np.random.default_rng(bits)
    w = rng.normal(size=(3, 3, 16, 8)).astype(np.float32)
    s_t, z_t = compute_scale(w, bits)
    s_c, _ = compute_scale(w, bits, axis=-1)
    relu = np.maximum(w, 0)
    s_u, z_u = compute_scale(relu, bits, signed=False)
    ok = (np.isclose(s_t.item(), np.abs(w).max() / (2 ** (bits - 1) - 1))
          and np.allclose(s_c.ravel(), np.abs(w).max(axis=(0, 1, 2)) / (2 ** (bits - 1) - 1))
          and np.isclose(s_u.item(), relu.max() / (2**bits - 1)) and not z_t.any() and not z_u.any())
    x_hat, _, _ = fake_quant(w, QuantSpec(f"int{bits}"))
    codes = np.round(x_hat / s_t)
    assert codes.min() >= int_range(bits)[0] and codes.max() <= int_range(bits)[1]
    claim_check(f"int{bits}/scales", {"per_tensor": float(s_t.item()), "unsigned": float(s_u.item()),
                                      "per_channel_mean": float(s_c.mean())},
                kind="rel", reproduced=bool(ok))
