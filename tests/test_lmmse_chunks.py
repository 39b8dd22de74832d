"""The chunked LMMSE channel estimator of ``lmmse-kbest`` (effinrx.receivers.lmmse_chunks): at <= 100
PRBs the receiver is the old full-band one (bit-identical LLRs, same describe()); chunked == full band
when the frequency covariance is block-diagonal with chunk-sized blocks; at 132 PRBs (6 chunks of 22)
a flat channel is recovered and the shapes are right. Synthetic covariances: no cache, no UMi."""
import numpy as np
import pytest

from effinrx.errors import ConfigError
from effinrx.link.config import Scenario


def _toeplitz(n, corr, phase=0.0):
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    return (np.exp(-np.abs(d) / corr) * np.exp(1j * phase * d)).astype(np.complex64)


def _cov(num_sc, num_rx_ant=4, block=None):
    f = _toeplitz(block or num_sc, 30.0, 0.05)
    if block:
        f = np.kron(np.eye(num_sc // block), f).astype(np.complex64)
    return {"freq": f, "time": _toeplitz(14, 20.0), "space": _toeplitz(num_rx_ant, 2.0)}


def _slot(sc, batch, ebno_db=10.0, ramp=None, seed=0):
    """(y, no, h) through the real PUSCH transmitter: i.i.d. Rayleigh per RE, or (``ramp`` = delay
    in samples) one Rayleigh gain per link times ``exp(-2j pi ramp k / fft)`` (k = subcarrier)."""
    from sionna.phy.channel import ApplyOFDMChannel

    from effinrx._tf import set_seeds, tf
    from effinrx.link.pusch import ebno_to_no, transmitter

    t = tf()
    set_seeds(seed)
    rng = np.random.default_rng(seed)
    x, _ = transmitter(sc)(batch)
    shape = (batch, 1, sc.num_rx_ant, sc.num_tx, sc.num_ant_ports) + tuple(x.shape[-2:])
    if ramp is not None:
        shape0 = shape[:5] + (1, 1)
        k = np.arange(shape[-1])
        h = (rng.normal(size=shape0) + 1j * rng.normal(size=shape0)) * np.exp(-2j * np.pi * ramp * k / shape[-1])
        h = np.broadcast_to(h, shape)
    else:
        h = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    h = t.constant(h / np.sqrt(2), t.complex64)
    no = t.fill([batch], t.cast(ebno_to_no(sc, ebno_db), t.float32))
    return ApplyOFDMChannel()(x, h, no), no, h


def test_full_band_unchanged_at_or_below_100_prbs():
    """<= 100 PRBs: LLRs bit-identical to the old pipeline (Sionna's estimator + LMMSEInterpolator
    f-t-s over the whole band + K-best), and describe() keeps its old keys (resume cache)."""
    from sionna.phy.nr import LayerDemapper, PUSCHLSChannelEstimator
    from sionna.phy.ofdm import LMMSEInterpolator

    from effinrx._tf import tf
    from effinrx.link.pusch import transmitter
    from effinrx.receivers.classical import LMMSEKBest, _kbest

    t = tf()
    sc = Scenario()
    cov = _cov(48)
    tx = transmitter(sc)
    interp = LMMSEInterpolator(tx.resource_grid.pilot_pattern, t.constant(cov["time"], t.complex64),
                               t.constant(cov["freq"], t.complex64), t.constant(cov["space"], t.complex64),
                               order="f-t-s")
    est = PUSCHLSChannelEstimator(tx.resource_grid, tx._dmrs_length, tx._dmrs_additional_position,
                                  tx._num_cdm_groups_without_data, interpolation_type="lin", interpolator=interp)
    bps = int(tx._num_bits_per_symbol)
    det = _kbest(sc, bps, 64)
    y, no, _ = _slot(sc, 2, ebno_db=3.0)
    h_hat, err_var = est(y, no)
    want = LayerDemapper(tx._layer_mapper, num_bits_per_symbol=bps)(det(y, h_hat, err_var, no)).numpy()
    rx = LMMSEKBest(sc, covariances=cov)
    got = rx.llr(y, no).numpy()
    assert got.shape == want.shape == (2, 2, want.shape[-1]) and got.dtype == np.float32
    assert np.array_equal(got, want)
    assert rx.chunk_prbs is None and set(rx.describe()) == {"name", "type", "scenario", "k"}


def test_chunked_equals_full_band_for_block_diagonal_covariance():
    """4 PRBs in chunks of 2: with a frequency covariance block-diagonal in 24-subcarrier blocks the
    full-band LMMSE decouples into the chunks, so both must agree; with a covariance that couples
    the chunks they must not (the comparison can fail)."""
    from effinrx.receivers.lmmse_chunks import ChunkedLMMSEEstimator, lmmse_estimator

    sc = Scenario()
    y, no, _ = _slot(sc, 2, ebno_db=5.0)
    block = _cov(48, block=24)
    chunked = lmmse_estimator(sc, block, chunk_prbs=2)
    assert isinstance(chunked, ChunkedLMMSEEstimator) and chunked.num_chunks == 2
    hc, ec = (a.numpy() for a in chunked(y, no))
    hf, ef = (a.numpy() for a in lmmse_estimator(sc, block, chunk_prbs=0)(y, no))
    assert hc.shape == hf.shape == (2, 1, 4, 2, 1, 14, 48) and hc.dtype == np.complex64
    assert ec.shape == hc.shape and ec.dtype == np.float32 and (ec >= 0).all()
    assert np.isfinite(hf).all() and np.isfinite(hc).all() and np.isfinite(ec).all()
    scale = np.abs(hf).max()
    np.testing.assert_allclose(hc, hf, atol=1e-4 * scale)
    np.testing.assert_allclose(ec, ef, atol=1e-4)
    coupled = lmmse_estimator(sc, _cov(48), chunk_prbs=0)(y, no)[0].numpy()
    assert np.abs(coupled - hc).max() > 1e-2 * scale
    # the chunk covariance is the top-left block of a larger one
    same = lmmse_estimator(sc, {**block, "freq": block["freq"][:24, :24]}, chunk_prbs=2)(y, no)[0].numpy()
    assert np.array_equal(same, hc)


def test_chunk_rules_and_errors():
    from effinrx.receivers.lmmse_chunks import (LMMSE_CHUNK_ABOVE_PRBS, LMMSE_CHUNK_PRBS, ChunkedLMMSEEstimator,
                                                chunk_prbs_for)

    assert (LMMSE_CHUNK_PRBS, LMMSE_CHUNK_ABOVE_PRBS) == (22, 100)
    assert chunk_prbs_for(Scenario(num_prbs=100)) is None and chunk_prbs_for(Scenario(num_prbs=132)) == 22
    with pytest.raises(ConfigError, match="tile"):
        ChunkedLMMSEEstimator(Scenario(), _cov(48), chunk_prbs=3)
    with pytest.raises(ConfigError, match="smaller than one LMMSE chunk"):
        ChunkedLMMSEEstimator(Scenario(), _cov(12), chunk_prbs=2)


def test_132_prbs_six_chunks_delay_ramp_and_llr_shape():
    """132 PRBs = 6 x 22: a static channel with a 3-sample delay (its phase turns 3 times over the
    band, so every chunk differs: swapping two chunks gives errors ~2), almost noiseless: the chunked
    estimate is the effective (precoded) channel, within 10 % at the chunk edges (extrapolated from
    one side) and 2 % in the median. LLRs of batch 2 have the right shape."""
    from effinrx.link.pusch import transmitter
    from effinrx.receivers.classical import LMMSEKBest, effective_channel

    sc = Scenario(num_prbs=132)
    rx = LMMSEKBest(sc, covariances={**_cov(264), "freq": _toeplitz(264, 30.0), "time": _toeplitz(14, 1e3)})
    assert rx.chunk_prbs == 22 and rx._est.num_chunks == 6
    d = rx.describe()
    assert (d["lmmse_chunk_prbs"], d["lmmse_chunks"], d["k"]) == (22, 6, 64)
    y, no, h = _slot(sc, 2, ebno_db=40.0, ramp=3)
    # the estimate is the one llr() computes (recorded, not recomputed: one 132-PRB estimate is
    # ~20 s of this test on 2 cores)
    seen, est = [], rx._est
    rx._est = lambda *a: seen.append(est(*a)) or seen[-1]
    llr = rx.llr(y, no)
    assert len(seen) == 1
    h_hat, err_var = seen[0]
    assert h_hat.shape == (2, 1, 4, 2, 1, 14, 1584) and err_var.shape == h_hat.shape
    assert h_hat.dtype == np.complex64 and err_var.dtype == np.float32
    want = effective_channel(sc, h).numpy()
    err = np.abs(h_hat.numpy() - want) / np.abs(want).max()
    assert err.max() < 0.1 and np.median(err) < 0.02, (err.max(), np.median(err))
    assert llr.shape == (2, 2, transmitter(sc)._tb_encoder.n) and llr.dtype == np.float32
    assert np.isfinite(llr.numpy()).all()
