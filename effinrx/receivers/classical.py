"""Classical baseline receivers of the link simulation, all implementing :class:`Receiver`.

* :class:`LSLinLMMSE` - LS channel estimate at the DMRS, linear interpolation, LMMSE detection
  (max-log demapping): Sionna's default ``PUSCHReceiver`` front end ("ls-lmmse").
* :class:`LMMSEKBest` - LMMSE channel estimation (time/frequency/space covariances from the training
  channel, see :mod:`effinrx.link.covariance`) + K-best detection, K = 64 ("lmmse-kbest"); above
  100 PRBs the LMMSE estimate is computed in independent 22-PRB chunks (NVIDIA's low-complexity
  estimator, :mod:`effinrx.receivers.lmmse_chunks`), at <= 100 PRBs over the full band.
* :class:`PerfectKBest` - true effective channel (precoder applied) + K-best, K = 64 ("perfect-kbest").
* :func:`ls_nn_estimate` - LS with nearest-neighbour interpolation, the NRX's input.

``llr(y, no, h=None, active=None)`` -> float32 ``[B, num_tx, num_coded_bits]`` (Sionna sign), see
:mod:`effinrx.receivers.base` for the input shapes.
"""
from __future__ import annotations

from effinrx.errors import ConfigError, ShapeError
from effinrx.link.pusch import stream_management, transmitter
from effinrx.receivers.base import Receiver
from effinrx.receivers.checks import check_inputs
from effinrx.receivers.lmmse_chunks import chunk_prbs_for, lmmse_estimator
from effinrx.receivers.lmmse_chunks import pusch_ls_estimator as _ls_estimator


def ls_nn_estimate(sc, y, no):
    """LS channel estimate at the DMRS with nearest-neighbour interpolation (the NRX input).

    ``y`` complex64 [B, 1, num_rx_ant, 14, fft]; ``no`` float32 [B] or scalar.
    Returns ``(h_hat, err_var)``: complex64 [B, 1, num_rx_ant, num_tx, 1, 14, fft] (effective,
    precoded single-layer channel) and float32 error variance of the same shape (broadcastable).
    """
    _check_y(sc, y)
    return _cached_est(sc, "nn")(y, no)


_EST: dict = {}


def _cached_est(sc, kind):
    k = (sc, kind)
    if k not in _EST:
        _EST[k] = _ls_estimator(sc, kind)
    return _EST[k]


def _check_y(sc, y):
    rg = transmitter(sc).resource_grid
    want = (1, sc.num_rx_ant, rg.num_ofdm_symbols, rg.fft_size)
    shape = tuple(getattr(y, "shape", ()))
    if len(shape) != 5 or tuple(shape[1:]) != want:
        raise ShapeError(f"y must have shape [B, {', '.join(map(str, want))}], got {list(shape)}")
    if "complex" not in str(getattr(y, "dtype", "")):
        raise ShapeError(f"y must be complex64, got dtype {getattr(y, 'dtype', type(y))}")


class _Classical(Receiver):
    def __init__(self, scenario):
        self.scenario = scenario
        self._tx = transmitter(scenario)
        self._bps = int(self._tx._num_bits_per_symbol)

    def _demap_layers(self, llr):
        from sionna.phy.nr import LayerDemapper

        if not hasattr(self, "_ld"):
            self._ld = LayerDemapper(self._tx._layer_mapper, num_bits_per_symbol=self._bps)
        return self._ld(llr)

    def describe(self) -> dict:
        return {**super().describe(), "scenario": self.scenario.as_dict()}

    def _check(self, y, no) -> None:
        check_inputs(y, no, self.name)


def _kbest(sc, bps, k):
    from sionna.phy.ofdm import KBestDetector

    return KBestDetector("bit", sc.num_tx, k, transmitter(sc).resource_grid, stream_management(sc),
                         constellation_type="qam", num_bits_per_symbol=bps)


class LSLinLMMSE(_Classical):
    """LS at the DMRS + linear interpolation + LMMSE detection, max-log demapping."""

    name = "ls-lmmse"

    def __init__(self, scenario):
        super().__init__(scenario)
        from sionna.phy.ofdm import LinearDetector

        self._est = _ls_estimator(scenario, "lin")
        self._det = LinearDetector("lmmse", "bit", "maxlog", self._tx.resource_grid,
                                   stream_management(scenario), "qam", self._bps)

    def llr(self, y, no, h=None, active=None):
        self._check(y, no)
        h_hat, err_var = self._est(y, no)
        return self._demap_layers(self._det(y, h_hat, err_var, no))


class LMMSEKBest(_Classical):
    """LMMSE channel estimation (covariances from the training channel) + K-best detection.

    ``covariances``: dict with complex ``freq`` [fft, fft], ``time`` [14, 14], ``space`` [Nr, Nr]
    (see :func:`effinrx.link.covariance.load_or_estimate`); None = load/estimate from the cache.
    Above :data:`~effinrx.receivers.lmmse_chunks.LMMSE_CHUNK_ABOVE_PRBS` (100) PRBs the estimate is
    computed in independent chunks of ``chunk_prbs`` = 22 PRBs (264 subcarriers,
    :class:`~effinrx.receivers.lmmse_chunks.ChunkedLMMSEEstimator`): ``freq`` may then be 264 x 264
    (None = estimated at 22 PRBs) or larger (its top-left 264 x 264 block is used). ``chunk_prbs``:
    None = that rule, 0 = full band, n = chunks of n PRBs. The channel estimate is complex64
    ``[B, 1, Nr, num_tx, 1, 14, fft]`` with float32 error variances of the same shape, for either
    path; ``llr`` returns float32 ``[B, num_tx, num_coded_bits]``. ``describe()`` adds the chunking.
    """

    name = "lmmse-kbest"

    def __init__(self, scenario, k: int = 64, covariances=None, chunk_prbs: int | None = None):
        super().__init__(scenario)
        if k < 1:
            raise ConfigError(f"K-best list size k must be >= 1, got {k}")
        if chunk_prbs is not None and chunk_prbs < 0:
            raise ConfigError(f"chunk_prbs must be None, 0 (full band) or >= 1, got {chunk_prbs}")
        chunk = chunk_prbs_for(scenario) if chunk_prbs is None else (int(chunk_prbs) or None)
        self._est = lmmse_estimator(scenario, covariances, chunk_prbs=chunk or 0)
        self._det = _kbest(scenario, self._bps, int(k))
        self.k = int(k)
        self.chunk_prbs = chunk

    def llr(self, y, no, h=None, active=None):
        self._check(y, no)
        h_hat, err_var = self._est(y, no)
        return self._demap_layers(self._det(y, h_hat, err_var, no))

    def describe(self) -> dict:
        d = {**super().describe(), "k": self.k}
        if self.chunk_prbs is not None:  # full band (<= 100 PRBs) keeps its old resume-cache key
            d.update(self._est.describe())
        return d


def effective_channel(sc, h):
    """Apply the UE precoders: ``h`` [B,1,Nr,U,ports,14,F] -> [B,1,Nr,U,1,14,F] complex64."""
    # plain import (effinrx is already imported, so the legacy-Keras env is set): calling
    # effinrx._tf.tf() here would make AutoGraph try to convert os.environ.setdefault and warn
    import tensorflow as t

    tx = transmitter(sc)
    if tx._precoding != "codebook":
        return h
    w = t.cast(tx._precoder._w, h.dtype)  # [U, ports, 1]
    hp = t.transpose(h, [0, 1, 3, 5, 6, 2, 4])  # [B,1,U,T,F,Nr,ports]
    hp = t.matmul(hp, w[None, None, :, None, None])
    return t.transpose(hp, [0, 1, 5, 2, 6, 3, 4])


class PerfectKBest(_Classical):
    """Perfect CSI (true channel times precoder) + K-best detection."""

    name = "perfect-kbest"
    needs_perfect_csi = True

    def __init__(self, scenario, k: int = 64):
        super().__init__(scenario)
        if k < 1:
            raise ConfigError(f"K-best list size k must be >= 1, got {k}")
        self._det = _kbest(scenario, self._bps, int(k))
        self.k = int(k)

    def llr(self, y, no, h=None, active=None):
        if h is None:
            raise ConfigError("perfect-kbest needs the true channel h (needs_perfect_csi=True)")
        self._check(y, no)
        import tensorflow as tf  # see effective_channel

        h_eff = effective_channel(self.scenario, h)
        return self._demap_layers(self._det(y, h_eff, tf.zeros((), tf.float32), no))

    def describe(self) -> dict:
        return {**super().describe(), "k": self.k}


BASELINES = {"ls-lmmse": LSLinLMMSE, "lmmse-kbest": LMMSEKBest, "perfect-kbest": PerfectKBest}


_MADE: dict = {}


def make(name: str, scenario, **kw) -> Receiver:
    """Build a baseline by name (``ls-lmmse``, ``lmmse-kbest``/``lmmse``, ``perfect-kbest``).
    Without keyword arguments the receiver is cached per (name, scenario) in the process, so its
    compiled Monte-Carlo graph is reused."""
    if not kw and (name, scenario) in _MADE:
        return _MADE[(name, scenario)]
    alias = {"lmmse": "lmmse-kbest", "ls": "ls-lmmse", "perfect": "perfect-kbest"}
    n = alias.get(name, name)
    if n not in BASELINES:
        raise ConfigError(f"unknown receiver {name!r}; known: {sorted(BASELINES)} (+ aliases {sorted(alias)})")
    rx = BASELINES[n](scenario, **kw)
    if not kw:
        _MADE[(name, scenario)] = rx
    return rx
