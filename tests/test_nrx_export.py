"""ONNX export of the NRX: checker, fixed shapes, opset >= 19, parity with TF (random + simulated)."""
import numpy as np
import pytest

from effinrx.errors import ConfigError, ShapeError
from effinrx.export import onnx as E

PRBS = 4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from effinrx.receivers.nrx import load_model
    from effinrx.weights import reference_dir

    # reference weights when present (realistic LLR magnitudes), else a random-init network
    net = load_model("nrx-rt", "reference" if reference_dir() is not None else None)
    path = E.export_nrx_onnx("nrx-rt", net, PRBS, tmp_path_factory.mktemp("onnx") / "nrx_rt_4.onnx")
    return net, path


def test_checker_opset_and_fixed_shapes(exported):
    import onnx

    _, path = exported
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 19
    shapes = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim)
              for i in list(m.graph.input) + list(m.graph.output)}
    assert shapes == E.io_shapes(PRBS)
    assert shapes["h_hat_real"] == (1, 48, 2, 4)  # 6 pilots/PRB/DMRS symbol x 2 symbols


def test_parity_random_inputs(exported):
    net, path = exported
    rng = np.random.default_rng(0)
    inp = {k: rng.normal(size=s).astype(np.float32) for k, s in E.io_shapes(PRBS).items() if k != "llr"}
    r = E.parity(net, path, inp, PRBS)
    assert r["max_rel"] <= 1e-4 and r["l2_rel"] <= 1e-4, r


def _noisy_slots(rx, n: int, seed: int) -> np.ndarray:
    """``n`` slots of ``rx``'s transmitter through a random flat 4x2 channel plus noise (std 0.1 per
    component): complex64 [n, 1, 4, 14, 12 * PRBS]."""
    from effinrx._tf import tf

    tf().random.set_seed(seed)
    x, _ = rx.transmitter(n)
    rng = np.random.default_rng(seed)
    h = (rng.normal(size=(n, 4, 2, 2)) + 1j * rng.normal(size=(n, 4, 2, 2))) / np.sqrt(2)
    y = np.einsum("bauk,buktf->batf", h, x.numpy())[:, None]
    return (y + 0.1 * (rng.normal(size=y.shape) + 1j * rng.normal(size=y.shape))).astype(np.complex64)


def test_parity_simulated_slot_and_receiver_path(exported):
    """A simulated slot: ONNX == TF wrapper, and the wrapper's LLRs == NRXReceiver.llr (Sionna LS-NN)."""
    from effinrx._tf import tf
    from effinrx.receivers.nrx import NRXReceiver

    net, path = exported
    rx = NRXReceiver("nrx-rt", net=net, num_prbs=PRBS)
    y = _noisy_slots(rx, 1, seed=1)
    inp = E.slot_to_inputs(y, PRBS)
    r = E.parity(net, path, inp, PRBS)
    assert r["max_rel"] <= 1e-4 and r["l2_rel"] <= 1e-4, r
    out = E.ort_session(path).run(["llr"], inp)[0]
    a = rx.grid_to_coded(tf().constant(out)).numpy()
    b = rx.llr(y, 0.01).numpy()
    assert np.max(np.abs(a - b)) / np.max(np.abs(b)) <= 1e-4


def test_bad_arguments():
    with pytest.raises(ConfigError, match="opset"):
        E.export_nrx_onnx("nrx-rt", None, 4, "/nonexistent/x.onnx", opset=17)
    with pytest.raises(ConfigError, match="prbs"):
        E.export_nrx_onnx("nrx-rt", None, 0, "/nonexistent/x.onnx")
    with pytest.raises(ShapeError, match="y has shape"):
        E.ls_at_pilots(np.zeros((1, 1, 4, 14, 47), np.complex64), 4)


def test_large_export_parity_random_inputs(tmp_path):
    """NRX-Large (8 iterations) exports and matches TF too (reference weights when present)."""
    from effinrx.receivers.nrx import cached_model, load_model
    from effinrx.weights import reference_dir

    net = cached_model("nrx-large", "reference") if reference_dir() is not None else load_model("nrx-large", None)
    path = E.export_nrx_onnx("nrx-large", net, PRBS, tmp_path / "nrx_large_4.onnx")
    rng = np.random.default_rng(5)
    inp = {k: rng.normal(size=s).astype(np.float32) for k, s in E.io_shapes(PRBS).items() if k != "llr"}
    r = E.parity(net, path, inp, PRBS)
    assert r["max_rel"] <= 1e-4 and r["l2_rel"] <= 1e-4, r


def test_engine_receiver_is_the_tf_receiver():
    """``nrx-rt-ort-fp32`` (the deployment path of ``latency.build.make_receiver``: the export on ONNX
    Runtime inside the link loop) gives the TF receiver's LLRs; bad deployment names are one line."""
    from effinrx.latency.build import engine_spec, make_receiver
    from effinrx.link.config import Scenario

    assert engine_spec("nrx-large-ort-int8-fused") == ("nrx-large", "int8-fused") and engine_spec("nrx-rt") is None
    with pytest.raises(ConfigError, match="int8-fused"):
        engine_spec("nrx-rt-ort-int4")
    sc = Scenario(num_prbs=PRBS)
    tf_rx, ort_rx = make_receiver("nrx-rt", sc), make_receiver("nrx-rt-ort-fp32", sc)
    y = _noisy_slots(tf_rx, 2, seed=2)
    a, b = ort_rx.llr(y, 0.01).numpy(), tf_rx.llr(y, 0.01).numpy()
    assert a.shape == b.shape and np.max(np.abs(a - b)) / np.max(np.abs(b)) <= 1e-4
    d = ort_rx.describe()
    assert d["name"] == "nrx-rt-ort-fp32" and d["engine"]["model"] == f"nrx-rt_{PRBS}prb_fp32.onnx"
