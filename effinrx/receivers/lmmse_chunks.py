"""LMMSE channel estimation of the ``lmmse-kbest`` baseline, full band or in frequency chunks.

NVIDIA's neural_rx evaluation estimates the channel of its LMMSE + K-best baseline with a
low-complexity LMMSE estimator that works on chunks of :data:`LMMSE_CHUNK_PRBS` (22) PRBs when the
grid has more than :data:`LMMSE_CHUNK_ABOVE_PRBS` (100) PRBs: at 132 PRBs a full-band frequency
interpolation builds 14 x 1584 x 1584 matrices per slot, antenna and UE; in chunks it is
6 x 14 x 264 x 264.

* **<= 100 PRBs** (:func:`lmmse_estimator`): Sionna's ``PUSCHLSChannelEstimator`` with an
  ``LMMSEInterpolator`` (order ``f-t-s``) over the whole band (unchanged: bit-identical LLRs).
* **> 100 PRBs** (:class:`ChunkedLMMSEEstimator`): the LS estimate at the DMRS (with Sionna's CDM
  averaging) is computed on the full band once; the pilots of each consecutive 22-PRB chunk
  (264 subcarriers, ``num_prbs`` must be a multiple of 22: 132 = 6 x 22) are interpolated
  independently by one ``LMMSEInterpolator`` built on Sionna's own 22-PRB PUSCH pilot pattern
  (checked at construction to equal every chunk's slice of the full pattern: DMRS type 1 combs are
  periodic in 12 subcarriers, there are no guard carriers and no DC null), one chunk after the
  other (``tf.map_fn``: peak memory of one chunk); estimates and error variances are concatenated
  back.
  The channel is wide-sense stationary in frequency, so every chunk uses the same 264 x 264
  frequency covariance: by default the one estimated at 22 PRBs (:func:`chunk_covariances`, cached
  by :mod:`effinrx.link.covariance` under the 22-PRB scenario's key: 36x cheaper than estimating the
  1584 x 1584 one), or the top-left 264 x 264 block of a given full covariance.

Both return ``(h_hat, err_var)``: complex64 / float32
``[B, 1, num_rx_ant, num_tx, 1, 14, fft_size]`` (effective, precoded single-layer channel) for
``y`` complex64 ``[B, 1, num_rx_ant, 14, fft_size]`` and ``no`` float32 ``[B]`` or scalar.
"""
from __future__ import annotations

import numpy as np

from effinrx.errors import ConfigError
from effinrx.link.covariance import load_or_estimate
from effinrx.link.pusch import transmitter

#: chunk width of the low-complexity LMMSE estimator (NVIDIA neural_rx), in PRBs
LMMSE_CHUNK_PRBS = 22
#: above this many PRBs the LMMSE estimate is computed in chunks of LMMSE_CHUNK_PRBS
LMMSE_CHUNK_ABOVE_PRBS = 100
#: subcarriers per PRB
SC_PER_PRB = 12
#: LMMSE interpolation order: frequency, then time, then spatial smoothing
LMMSE_ORDER = "f-t-s"


def chunk_prbs_for(sc) -> int | None:
    """The LMMSE chunk width in PRBs for scenario ``sc`` (None = full band)."""
    return LMMSE_CHUNK_PRBS if sc.num_prbs > LMMSE_CHUNK_ABOVE_PRBS else None


def pusch_ls_estimator(sc, interpolation: str | None = "lin", interpolator=None):
    """Sionna ``PUSCHLSChannelEstimator`` of ``sc``; ``interpolation=None`` (and no interpolator)
    returns the LS estimates at the pilots only, ``[B, 1, Nr, U, 1, num_pilots]``."""
    from sionna.phy.nr import PUSCHLSChannelEstimator

    tx = transmitter(sc)
    return PUSCHLSChannelEstimator(tx.resource_grid, tx._dmrs_length, tx._dmrs_additional_position,
                                   tx._num_cdm_groups_without_data,
                                   # Sionna skips interpolation when the type is None, even with an
                                   # interpolator given, so the type stays set (it is then ignored)
                                   interpolation_type=interpolation, interpolator=interpolator)


def _interpolator(pilot_pattern, cov: dict):
    from sionna.phy.ofdm import LMMSEInterpolator

    from effinrx._tf import tf

    t = tf()
    return LMMSEInterpolator(pilot_pattern, t.constant(cov["time"], t.complex64),
                             t.constant(cov["freq"], t.complex64), t.constant(cov["space"], t.complex64),
                             order=LMMSE_ORDER)


def chunk_covariances(sc, covariances: dict | None = None, chunk_prbs: int = LMMSE_CHUNK_PRBS) -> dict:
    """Covariances for one chunk: complex64 ``freq`` [W, W] (W = 12 chunk_prbs), ``time`` [14, 14],
    ``space`` [Nr, Nr]. None = load/estimate them at ``chunk_prbs`` PRBs; else the top-left W x W
    block of the given ``freq`` (WSS in frequency: every diagonal block has the same statistics)."""
    w = chunk_prbs * SC_PER_PRB
    cov = covariances if covariances is not None else load_or_estimate(sc.replace(num_prbs=chunk_prbs))
    f = np.asarray(cov["freq"])
    if f.ndim != 2 or f.shape[0] < w or f.shape[1] < w:
        raise ConfigError(f"frequency covariance {list(f.shape)} is smaller than one LMMSE chunk ({w} x {w})")
    return {"freq": f[:w, :w], "time": np.asarray(cov["time"]), "space": np.asarray(cov["space"])}


def _pilot_positions(mask) -> list:
    """Per (tx, stream): subcarrier index of each pilot, in Sionna's pilot order (row-major)."""
    m = np.asarray(mask)
    return [[np.nonzero(m[u, s].reshape(-1))[0] % m.shape[-1] for s in range(m.shape[1])]
            for u in range(m.shape[0])]


def _nonzero_grid(pp) -> np.ndarray:
    """[U, S, T, F] bool: pilot REs carrying a nonzero pilot (what LMMSEInterpolator uses)."""
    m = np.asarray(pp.mask)
    p = np.asarray(pp.pilots)
    out = np.zeros(m.shape, bool)
    for u in range(m.shape[0]):
        for s in range(m.shape[1]):
            flat = out[u, s].reshape(-1)
            flat[np.nonzero(m[u, s].reshape(-1))[0]] = np.abs(p[u, s]) > 0
            out[u, s] = flat.reshape(m.shape[2:])
    return out


class ChunkedLMMSEEstimator:
    """LS at the DMRS on the full band + LMMSE interpolation per ``chunk_prbs``-PRB chunk.

    ``covariances``: dict with complex ``freq`` [W, W] or larger (its top-left W x W block is used,
    W = 12 ``chunk_prbs``), ``time`` [14, 14], ``space`` [Nr, Nr] (see :func:`chunk_covariances`).
    ``__call__(y, no)``: ``y`` complex64 [B, 1, Nr, 14, fft], ``no`` float32 [B] or scalar ->
    ``(h_hat, err_var)`` complex64 / float32 [B, 1, Nr, U, 1, 14, fft], as Sionna's estimators.
    """

    def __init__(self, sc, covariances: dict, chunk_prbs: int = LMMSE_CHUNK_PRBS):
        if chunk_prbs < 1 or sc.num_prbs % chunk_prbs:
            raise ConfigError(f"LMMSE chunks of {chunk_prbs} PRBs must tile the {sc.num_prbs} PRBs")
        rg = transmitter(sc).resource_grid
        if rg.num_effective_subcarriers != rg.fft_size or rg.fft_size != sc.num_prbs * SC_PER_PRB:
            raise ConfigError("chunked LMMSE needs a grid without guard carriers or DC null")
        self.chunk_prbs = int(chunk_prbs)
        self.num_chunks = sc.num_prbs // chunk_prbs
        self._w = chunk_prbs * SC_PER_PRB
        full = rg.pilot_pattern
        chunk = transmitter(sc.replace(num_prbs=chunk_prbs)).resource_grid.pilot_pattern
        self._idx = self._chunk_indices(full, chunk)  # [C, Kc] into the full pilot list
        self._ls = pusch_ls_estimator(sc, None)  # LS (+ CDM averaging) at the pilots, full band
        self._interp = _interpolator(chunk, chunk_covariances(sc, covariances, chunk_prbs))

    def _chunk_indices(self, full, chunk) -> np.ndarray:
        """Indices of each chunk's pilots in the full pilot list; checks that every chunk's slice of
        the full pilot pattern (mask and nonzero pilots) equals the chunk pilot pattern."""
        w, fm, cm = self._w, np.asarray(full.mask), np.asarray(chunk.mask)
        fnz, cnz = _nonzero_grid(full), _nonzero_grid(chunk)
        for c in range(self.num_chunks):
            sl = slice(c * w, (c + 1) * w)
            if not (np.array_equal(fm[..., sl], cm) and np.array_equal(fnz[..., sl], cnz)):
                raise ConfigError(f"the DMRS pattern of LMMSE chunk {c} differs from the "
                                  f"{self.chunk_prbs}-PRB pattern: chunks would not be equivalent")
        pos = _pilot_positions(fm)
        first = pos[0][0]
        if any(not np.array_equal(p, first) for row in pos for p in row):
            raise ConfigError("chunked LMMSE needs the same pilot positions for every UE and stream")
        idx = np.stack([np.nonzero(first // w == c)[0] for c in range(self.num_chunks)])
        return idx.astype(np.int32)

    def __call__(self, y, no):
        import tensorflow as t  # plain import inside graphs (see classical.effective_channel)

        h, ev = self._ls(y, no)  # [B, 1, Nr, U, S, P]
        ev = t.broadcast_to(ev, t.shape(h))
        n, w = self.num_chunks, self._w

        def split(a):  # [B,1,Nr,U,S,P] -> [C,B,1,Nr,U,S,Kc]
            return t.transpose(t.gather(a, self._idx, axis=-1), [5, 0, 1, 2, 3, 4, 6])

        # one chunk at a time: Sionna's 1D LMMSE builds [B,1,Nr,U,S,14,W+1,W+1] matrices, ~1 GB at
        # batch 16 per chunk, so all chunks at once would need C times that
        h_hat, err_var = t.map_fn(lambda a: self._interp(a[0], a[1]), (split(h), split(ev)),
                                  fn_output_signature=(h.dtype, ev.dtype), parallel_iterations=1)

        def join(a):  # [C,B,1,Nr,U,S,T,W] -> [B,1,Nr,U,S,T,C*W]
            a = t.transpose(a, [1, 2, 3, 4, 5, 6, 0, 7])
            return t.reshape(a, t.concat([t.shape(a)[:6], [n * w]], 0))

        return join(h_hat), t.maximum(join(err_var), t.zeros((), err_var.dtype))

    def describe(self) -> dict:
        return {"lmmse_chunk_prbs": self.chunk_prbs, "lmmse_chunks": self.num_chunks,
                "lmmse_chunk_above_prbs": LMMSE_CHUNK_ABOVE_PRBS}


def lmmse_estimator(sc, covariances: dict | None = None, chunk_prbs: int | None = None):
    """The LMMSE channel estimator of ``lmmse-kbest``: ``(y, no) -> (h_hat, err_var)``.

    ``chunk_prbs`` None = :func:`chunk_prbs_for` (22 above 100 PRBs, else full band); 0 = full band.
    ``covariances`` None = cached/estimated (full band at ``sc``'s size, chunked at the chunk size).
    """
    chunk = chunk_prbs_for(sc) if chunk_prbs is None else (int(chunk_prbs) or None)
    if chunk is not None:
        return ChunkedLMMSEEstimator(sc, covariances, chunk)
    cov = covariances if covariances is not None else load_or_estimate(sc)
    return pusch_ls_estimator(sc, interpolator=_interpolator(transmitter(sc).resource_grid.pilot_pattern, cov))
