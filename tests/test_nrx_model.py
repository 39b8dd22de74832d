"""NRX model: exact parameter counts, wrap hook (tfmot), preprocessing facts, receiver interface."""
import functools

import numpy as np
import pytest

from effinrx.errors import ConfigError, ShapeError
from effinrx.link.pusch import reference_pusch_configs, reference_transmitter
from effinrx.receivers import nrx_preproc as P
from effinrx.receivers.nrx_layers import NRX_LARGE, NRX_RT, NRXConfig, build_cgnn, get_config

BLOCKS = {"state_init": 28634, "readout_llrs": 7812, "readout_chest": 8328}


@functools.lru_cache(maxsize=None)
def _net(name):
    return build_cgnn(get_config(name))


@pytest.mark.parametrize("name,total,n_it,n_arrays", [("nrx-rt", 142922, 2, 43), ("nrx-large", 437366, 8, 121)])
def test_param_counts_exact(name, total, n_it, n_arrays):
    net = _net(name)
    assert net.count_params() == total
    blocks = net.block_param_counts()
    for k, v in BLOCKS.items():
        assert blocks[k] == v
    its = [blocks[f"cgnn_it{i}"] for i in range(n_it)]
    assert its == [49074] * n_it
    assert sum(blocks.values()) == total
    assert len(net.get_weights()) == n_arrays


def test_first_shapes_are_reference_layout():
    shapes = [tuple(w.shape) for w in _net("nrx-rt").get_weights()]
    assert shapes[:9] == [(3, 3, 18, 1), (1, 1, 18, 128), (128,), (3, 3, 128, 1), (1, 1, 128, 128), (128,),
                          (3, 3, 128, 1), (1, 1, 128, 56), (56,)]
    assert shapes[9:13] == [(56, 64), (64,), (64, 56), (56,)]
    assert shapes[13] == (3, 3, 114, 1)
    assert shapes[-8:] == [(56, 128), (128,), (128, 4), (4,), (56, 128), (128,), (128, 8), (8,)]


def test_unknown_config_and_bad_dict():
    with pytest.raises(ConfigError, match="nrx-huge"):
        get_config("nrx-huge")
    with pytest.raises(ConfigError):
        NRXConfig.from_dict({"name": "x", "bogus": 1})
    assert NRXConfig.from_dict(NRX_LARGE.to_dict()) == NRX_LARGE


def test_wrap_hook_sees_every_layer_and_keeps_order():
    seen = []
    net = build_cgnn(NRX_RT, wrap=lambda l: (seen.append(type(l).__name__), l)[1])
    assert seen.count("SeparableConv2D") == 3 + 2 * 3 and seen.count("Dense") == 2 * 2 + 4
    assert [w.shape for w in net.get_core_weights()] == [w.shape for w in _net("nrx-rt").get_weights()]


def test_tfmot_pruning_wrapper_builds_and_keeps_reference_order():
    tfmot = pytest.importorskip("tensorflow_model_optimization")
    net = build_cgnn(NRX_RT, wrap=tfmot.sparsity.keras.prune_low_magnitude)
    ref = _net("nrx-rt").get_weights()
    core = net.get_core_weights()
    assert [c.shape for c in core] == [r.shape for r in ref]
    net.set_core_weights(ref)
    assert len(net.get_weights()) > len(ref)  # masks/thresholds were added by tfmot ...
    # ... but the forward pass equals the plain model with the same weights (masks are all ones)
    plain = _net("nrx-rt")
    plain.set_core_weights(ref)
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(1, 12, 14, 8)).astype(np.float32), rng.normal(size=(2, 12, 14, 2)).astype(np.float32),
         rng.normal(size=(1, 2, 12, 14, 8)).astype(np.float32), np.ones((1, 2), np.float32))
    a, _ = plain(x)
    b, _ = net(x, training=False)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_aggregation_masks_inactive_users():
    """With UE 1 inactive, UE 0's output must not depend on UE 1's h_hat (others-only aggregation)."""
    net = _ref_net()
    rng = np.random.default_rng(1)
    y = rng.normal(size=(1, 12, 14, 8)).astype(np.float32)
    pe = rng.normal(size=(2, 12, 14, 2)).astype(np.float32)
    h = rng.normal(size=(1, 2, 12, 14, 8)).astype(np.float32)
    h2 = h.copy()
    h2[:, 1] = rng.normal(size=h2[:, 1].shape)
    act = np.array([[1.0, 0.0]], np.float32)
    def rel(a, b):
        a, b = a.numpy()[:, 0], b.numpy()[:, 0]
        return np.linalg.norm(a - b) / np.linalg.norm(a)

    assert rel(net((y, pe, h, act))[0], net((y, pe, h2, act))[0]) < 1e-6
    one = net((y, pe[:1], h[:, :1], np.ones((1, 1), np.float32)))[0].numpy()[:, 0]
    np.testing.assert_allclose(one, net((y, pe, h, act))[0].numpy()[:, 0], rtol=1e-5, atol=1e-5)
    act = np.ones((1, 2), np.float32)
    assert rel(net((y, pe, h, act))[0], net((y, pe, h2, act))[0]) > 1e-2


@functools.lru_cache(maxsize=None)
def _ref_net():
    from effinrx.receivers.nrx import load_model
    from effinrx.weights import reference_dir

    if reference_dir() is None:
        pytest.skip("reference NRX weights ../shared/reference/neural_rx absent (set EFFINRX_NRX_WEIGHTS)")
    return load_model("nrx-rt", "reference")


def test_input_scale_invariance():
    """Unit-power normalisation: scaling y and h_hat together does not change the output."""
    net = _net("nrx-rt")
    rng = np.random.default_rng(2)
    y = rng.normal(size=(2, 12, 14, 8)).astype(np.float32)
    pe = rng.normal(size=(2, 12, 14, 2)).astype(np.float32)
    h = rng.normal(size=(2, 2, 12, 14, 8)).astype(np.float32)
    act = np.ones((2, 2), np.float32)
    a, _ = net((y, pe, h, act))
    b, _ = net((y * 37.0, pe, h * 37.0, act))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


@functools.lru_cache(maxsize=None)
def _rg(prbs=4):
    return reference_transmitter(prbs, 2).resource_grid


def test_pilot_positions_and_pe():
    rg = _rg()
    pos = P.own_pilot_positions(rg)
    assert [p.shape for p in pos] == [(48, 2), (48, 2)]  # 6 per PRB per DMRS symbol x 2 symbols
    assert set(pos[0][:, 0]) == {2, 11}
    assert set(pos[0][:, 1] % 2) == {0} and set(pos[1][:, 1] % 2) == {1}  # CDM groups 0 / 1
    pe = P.positional_encoding(rg)
    assert pe.shape == (2, 48, 14, 2) and pe.dtype == np.float32
    np.testing.assert_allclose(pe[0, 0, :, 0].mean(), 0, atol=1e-6)
    np.testing.assert_allclose(pe[0, 0, :, 0].std(), 1, atol=1e-6)
    assert pe[0, 0, 2, 0] == pe[0, 0, :, 0].min()  # a DMRS symbol is nearest to itself


def test_reference_pusch_config_errors():
    with pytest.raises(ConfigError, match="num_prbs"):
        reference_pusch_configs(0)
    with pytest.raises(ConfigError, match="num_tx"):
        reference_pusch_configs(4, num_tx=3)


def test_nn_indices_match_sionna_estimator():
    """Our per-UE nearest-pilot gather (used by the ONNX wrapper) equals Sionna's LS-NN grid."""
    from effinrx._tf import tf
    from sionna.phy.nr import PUSCHLSChannelEstimator

    t = tf()
    rg = _rg()
    est = PUSCHLSChannelEstimator(rg, 1, 1, 2, interpolation_type="nn")
    rng = np.random.default_rng(3)
    y = (rng.normal(size=(1, 1, 4, 14, 48)) + 1j * rng.normal(size=(1, 1, 4, 14, 48))).astype(np.complex64)
    h_ls, _ = est(t.constant(y), 0.1)
    ref = P.h_to_real(h_ls, 2).numpy()  # [1, U, S, T, 8]
    ours = _ls_nn_numpy(y, rg)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def _ls_nn_numpy(y, rg):
    pilots = np.asarray(rg.pilot_pattern.pilots)[:, 0]
    idx = P.nn_gather_indices(rg)
    out = []
    for u, pos in enumerate(P.own_pilot_positions(rg)):
        pv = pilots[u][np.abs(pilots[u]) > 1e-3]
        ls = y[0, 0][:, pos[:, 0], pos[:, 1]] / pv  # [A, P]
        ls = np.repeat(ls.reshape(4, -1, 2).mean(-1), 2, axis=-1)  # FOCC: average adjacent pairs
        g = ls[:, idx[u]]  # [A, S, T]
        g = np.moveaxis(g, 0, -1)
        out.append(np.concatenate([g.real, g.imag], -1))
    return np.asarray(out)[None]


@pytest.fixture(scope="module")
def rx():
    from effinrx.weights import reference_dir

    if reference_dir() is None:
        pytest.skip("reference NRX weights ../shared/reference/neural_rx absent (set EFFINRX_NRX_WEIGHTS)")
    from effinrx.receivers.nrx import NRXReceiver

    return NRXReceiver("nrx-rt", "reference")


def test_receiver_llr_sign_and_shape(rx):
    """High-SNR flat channel: hard decisions of the LLRs (b=1 iff llr>0) match the coded bits."""
    from effinrx._tf import tf

    t = tf()
    t.random.set_seed(5)
    tx = rx.transmitter
    x, b = tx(4)
    rng = np.random.default_rng(5)
    h = (rng.normal(size=(4, 4, 2, 2)) + 1j * rng.normal(size=(4, 4, 2, 2))) / np.sqrt(2)
    y = np.einsum("bauk,buktf->batf", h, x.numpy())[:, None]
    y = y + 0.01 * (rng.normal(size=y.shape) + 1j * rng.normal(size=y.shape))
    llr = rx.llr(y.astype(np.complex64), 1e-4)
    assert llr.shape == (4, 2, tx._tb_encoder.n) and llr.dtype.name == "float32"
    coded = tx._tb_encoder(b).numpy()
    ber = np.mean((llr.numpy() > 0) != coded)
    assert ber < 0.01, ber


def test_receiver_rejects_bad_shapes(rx):
    with pytest.raises(ShapeError, match="y has shape"):
        rx.llr(np.zeros((2, 1, 4, 14, 47), np.complex64), 0.1)
    with pytest.raises(ShapeError, match="active has shape"):
        rx.llr(np.zeros((2, 1, 4, 14, 48), np.complex64), 0.1, active=np.ones((2, 3), np.float32))
    d = rx.describe()
    assert d["params"] == 142922 and d["weights"] == "reference"


def test_generic_keras_wrapper_hook():
    """A tf_keras Wrapper (as a fake-quant wrapper would be) around every layer: builds, keeps the
    reference weight order, and with an identity transform reproduces the plain model."""
    from effinrx._tf import keras

    k = keras()

    class Identity(k.layers.Wrapper):
        def call(self, x, training=None):
            return self.layer(x)

    net = build_cgnn(NRX_RT, wrap=Identity)
    ref = _net("nrx-rt").get_weights()
    net.set_core_weights(ref)
    assert [w.shape for w in net.get_core_weights()] == [w.shape for w in ref]
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(1, 12, 14, 8)).astype(np.float32), rng.normal(size=(2, 12, 14, 2)).astype(np.float32),
         rng.normal(size=(1, 2, 12, 14, 8)).astype(np.float32), np.ones((1, 2), np.float32))
    np.testing.assert_allclose(net(x)[0].numpy(), _net("nrx-rt")(x)[0].numpy(), rtol=1e-5, atol=1e-6)


def test_cached_model_builds_once_and_rejects_unhashable():
    from effinrx.errors import WeightsError
    from effinrx.receivers import nrx
    from effinrx.weights import reference_dir

    with pytest.raises(WeightsError, match="cached_model takes"):
        nrx.cached_model("nrx-rt", [np.zeros(3, np.float32)])
    if reference_dir() is None:
        pytest.skip("reference NRX weights ../shared/reference/neural_rx absent (set EFFINRX_NRX_WEIGHTS)")
    a = nrx.cached_model("nrx-rt", "reference")
    assert nrx.cached_model("nrx-rt", "reference") is a
    assert a.weights_source == "reference" and a.count_params() == 142922
    rx = nrx.cached_receiver("nrx-rt", "reference", 4, 2)
    assert rx.net is a and nrx.cached_receiver("nrx-rt", "reference", 4, 2) is rx


def test_receiver_for_scenario_checks_fields_and_matches_link_ls_nn():
    """Scenario guard names the field; the NRX's LS-NN input equals the link's ls_nn_estimate."""
    from effinrx._tf import tf
    from effinrx.link.config import Scenario
    from effinrx.receivers import classical, nrx

    sc = Scenario()
    with pytest.raises(ConfigError, match="mcs_index=14"):
        nrx.receiver_for_scenario(sc.replace(mcs_index=10), "nrx-rt", "reference")
    with pytest.raises(ConfigError, match="DMRS ports"):
        nrx.receiver_for_scenario(sc.replace(dmrs_ports=(1, 3)), "nrx-rt", "reference")
    rx = nrx.NRXReceiver("nrx-rt", net=_net("nrx-rt"), num_prbs=sc.num_prbs, num_tx=sc.num_tx)
    rng = np.random.default_rng(4)
    shp = (2, 1, 4, 14, 12 * sc.num_prbs)
    y = tf().constant((rng.normal(size=shp) + 1j * rng.normal(size=shp)).astype(np.complex64))
    _, ours = rx.prepare(y)
    h_ls, _ = classical.ls_nn_estimate(sc, y, tf().constant(0.1))
    np.testing.assert_allclose(ours.numpy(), P.h_to_real(h_ls, sc.num_tx).numpy(), rtol=1e-5, atol=1e-5)
