"""Unit tests of the DeepRx-style ResNet receiver, its weight-only PTQ and QAT layers (seeds 001/002).
The CDL/LDPC scenario of the claims lives in effinrx.link; here a synthetic AWGN grid suffices."""
import numpy as np
import pytest

from effinrx.errors import ConfigError, ShapeError
from effinrx.receivers import deeprx
from effinrx.quant import deeprx as dq

GRID = (14, 12)
MASK = np.ones(GRID, bool)
MASK[[2, 11]] = False  # DMRS on the 3rd and 12th OFDM symbol (0-based 2 and 11)


def _awgn_batch(rng, b, snr_db=15.0):
    """64-QAM (natural-binary 8-PAM per I/Q, unit energy) on the data REs, pilots 1+0j, h = 1."""
    n = int(MASK.sum())
    bits = rng.integers(0, 2, size=(b, 1, n * 6)).astype(np.float32)
    w = bits.reshape(b, n, 2, 3) @ np.array([4, 2, 1])
    pam = (2 * w - 7) / np.sqrt(42.0)
    x = np.ones((b,) + GRID, np.complex64)
    x[:, MASK] = pam[..., 0] + 1j * pam[..., 1]
    no = np.float32(10 ** (-snr_db / 10))
    noise = (rng.normal(size=(b, 1, 2) + GRID) + 1j * rng.normal(size=(b, 1, 2) + GRID)) * np.sqrt(no / 2)
    y = (x[:, None, None] + noise).astype(np.complex64)
    return y, np.full(b, no, np.float32), bits


def test_paper_size_param_count_matches_closed_form():
    m = deeprx.build_deeprx(GRID, 128, 8)
    assert m.count_params() == deeprx.num_params(GRID, 128, 8)
    assert m.output_shape == (None,) + GRID + (6,)


def test_receiver_interface_shapes_and_errors():
    rx = deeprx.DeepRxReceiver(deeprx.build_deeprx(GRID, 8, 1), MASK)
    y, no, bits = _awgn_batch(np.random.default_rng(0), 3)
    llr = rx.llr(y, no)
    assert tuple(llr.shape) == (3, 1, rx.num_coded_bits) == bits.shape
    assert llr.dtype.name == "float32"
    with pytest.raises(ShapeError, match="complex"):
        rx.llr(np.zeros((3, 2, 14, 12), np.complex64), no)
    with pytest.raises(ShapeError, match="data_mask"):
        rx.llr(np.zeros((3, 1, 2, 14, 10), np.complex64), no)
    with pytest.raises(ConfigError, match="grid"):
        deeprx.build_deeprx((14,), 8, 1)
    with pytest.raises(ShapeError):
        deeprx.DeepRxReceiver(rx.model, np.zeros(GRID, bool))


def test_training_lowers_bce_on_awgn():
    rng = np.random.default_rng(1)
    rx = deeprx.DeepRxReceiver(deeprx.build_deeprx(GRID, 16, 1), MASK)
    y, no, bits = _awgn_batch(rng, 64)
    before = float(deeprx.bce_loss(rx, y, no, bits, training=False))

    def gen():
        while True:
            yield _awgn_batch(rng, 32)

    deeprx.train(rx, gen(), steps=80, lr=3e-3)
    after = float(deeprx.bce_loss(rx, y, no, bits, training=False))
    assert after < 0.8 * before and after < np.log(2)


@pytest.mark.parametrize("fmt,bits", [("int8-pt", 8), ("int8-pc", 8), ("int4-pt", 4), ("int4-pc", 4)])
def test_quantize_kernel_symmetric_scale(fmt, bits):
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 3, 4, 5)).astype(np.float32) * np.array([0.01, 0.1, 1, 2, 5], np.float32)
    wq, s = dq.quantize_kernel(w, fmt)
    qmax = 2 ** (bits - 1) - 1
    expect = np.abs(w).max(axis=(0, 1, 2)) / qmax if fmt.endswith("pc") else [np.abs(w).max() / qmax]
    np.testing.assert_allclose(s, expect, rtol=1e-6)
    assert np.all(np.abs(wq - w) <= np.broadcast_to(s, w.shape) / 2 + 1e-7) if fmt.endswith("pc") \
        else np.all(np.abs(wq - w) <= s[0] / 2 + 1e-7)
    assert len(np.unique(np.round(wq[..., 4] / s[-1]))) <= 2 * qmax + 1
    with pytest.raises(ConfigError, match="format"):
        dq.quantize_kernel(w, "int3-pt")


def test_per_channel_error_not_worse_than_per_tensor():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 3, 8, 16)).astype(np.float32) * rng.uniform(0.01, 3, 16).astype(np.float32)
    for b in (8, 4):
        e_pt = np.mean((dq.quantize_kernel(w, f"int{b}-pt")[0] - w) ** 2)
        e_pc = np.mean((dq.quantize_kernel(w, f"int{b}-pc")[0] - w) ** 2)
        assert e_pc <= e_pt


def test_storage_bytes_exact_ratios():
    m = deeprx.build_deeprx(GRID, 16, 2)
    fp = dq.storage_bytes(m, "fp32")
    assert fp["total_bytes"] == 4 * m.count_params()
    for fmt, r in (("fp16", 2.0), ("int8-pt", 4.0), ("int8-pc", 4.0), ("int4-pt", 8.0), ("int4-pc", 8.0)):
        s = dq.storage_bytes(m, fmt)
        assert s["ratio_kernels"] == pytest.approx(r, rel=1e-3)
        assert s["total_bytes"] == s["kernel_bytes"] + s["scale_bytes"] + s["float_bytes"]
        assert 1.0 < s["ratio_total"] < r  # floats (biases, norms) and scales are counted honestly
    assert dq.storage_bytes(m, "int8-pc")["scale_bytes"] == 4 * (16 * 5 + 6)


def test_ptq_copy_quantizes_only_kernels_and_qat_matches_ptq_at_init():
    m = deeprx.build_deeprx(GRID, 8, 1)
    p = dq.ptq_copy(m, "int4-pc")
    for lm, lp in zip(m.layers, p.layers):
        for vm, vp in zip(lm.weights, lp.weights):
            same = np.array_equal(vm.numpy(), vp.numpy())
            assert same != ("conv" in lm.name and "kernel" in vm.name)
    q = deeprx.build_deeprx(GRID, 8, 1, qat_bits=4)
    deeprx.copy_weights(m, q)
    dq.init_qat_scales(q)
    x = np.random.default_rng(4).normal(size=(2,) + GRID + (5,)).astype(np.float32)
    np.testing.assert_allclose(q(x).numpy(), p(x).numpy(), atol=1e-4)


def test_qat_finetune_recovers_from_int4_ptq_on_awgn():
    """QAT path end to end: fine-tuning the fake-quantised model (STE + learnable per-channel scales)
    lowers the BCE of 4-bit per-tensor PTQ of the same trained model (synthetic AWGN grid)."""
    rng = np.random.default_rng(5)

    def gen():
        while True:
            yield _awgn_batch(rng, 32)

    fp = deeprx.DeepRxReceiver(deeprx.build_deeprx(GRID, 16, 1), MASK)
    deeprx.train(fp, gen(), steps=80, lr=3e-3)
    y, no, bits = _awgn_batch(np.random.default_rng(6), 128)
    ptq = deeprx.DeepRxReceiver(dq.ptq_copy(fp.model, "int4-pt"), MASK)
    qm = deeprx.build_deeprx(GRID, 16, 1, qat_bits=4)
    deeprx.copy_weights(fp.model, qm)
    dq.init_qat_scales(qm)
    qat = deeprx.DeepRxReceiver(qm, MASK)
    deeprx.train(qat, gen(), steps=40, lr=1e-3)
    b_ptq = float(deeprx.bce_loss(ptq, y, no, bits, training=False))
    b_qat = float(deeprx.bce_loss(qat, y, no, bits, training=False))
    assert b_qat < b_ptq, f"QAT BCE {b_qat:.4f} vs PTQ BCE {b_ptq:.4f}"
