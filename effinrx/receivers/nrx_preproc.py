"""NRX input preparation: positional encoding, LS-NN channel estimate, pilot/data index maps of
the reference system's resource grid (its PUSCH set-up: :func:`effinrx.link.pusch.reference_transmitter`).
All index maps are numpy and computed once per grid.
"""
from __future__ import annotations

import numpy as np


def own_pilot_positions(resource_grid) -> list:
    """Per UE, an int array [P, 2] of (symbol, subcarrier) of its non-zero DMRS pilots, in Sionna's
    pilot order (row-major over symbol, subcarrier)."""
    mask = np.asarray(resource_grid.pilot_pattern.mask)[:, 0]  # [U, T, S]
    pilots = np.asarray(resource_grid.pilot_pattern.pilots)[:, 0]  # [U, Np]
    out = []
    for u in range(mask.shape[0]):
        pos = np.argwhere(mask[u] > 0)  # row-major = Sionna's pilot order
        out.append(pos[np.abs(pilots[u]) > 1e-3])
    return out


def positional_encoding(resource_grid) -> np.ndarray:
    """Distance to the nearest own DMRS symbol (time) and nearest own pilot subcarrier (frequency),
    standardised over the time axis (resp. frequency axis). float32 [U, S, T, 2] (time, freq)."""
    num_t, num_s = resource_grid.num_ofdm_symbols, resource_grid.fft_size
    t_idx, s_idx = np.arange(num_t), np.arange(num_s)
    out = []
    for pos in own_pilot_positions(resource_grid):
        dt = np.min(np.abs(t_idx[:, None] - pos[None, :, 0]), axis=1).astype(np.float64)  # [T]
        df = np.min(np.abs(s_idx[:, None] - pos[None, :, 1]), axis=1).astype(np.float64)  # [S]
        dt = _standardise(dt)
        df = _standardise(df)
        grid_t = np.broadcast_to(dt[None, :], (num_s, num_t))
        grid_f = np.broadcast_to(df[:, None], (num_s, num_t))
        out.append(np.stack([grid_t, grid_f], axis=-1))
    return np.asarray(out, np.float32)


def _standardise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    sd = x.std()
    return x / sd if sd > 0 else x


def nn_gather_indices(resource_grid) -> np.ndarray:
    """For every UE and RE, the index of the nearest own pilot (Manhattan distance, first minimum,
    as Sionna's nearest-neighbour interpolator). int32 [U, S, T] into that UE's pilot list."""
    num_t, num_s = resource_grid.num_ofdm_symbols, resource_grid.fft_size
    tt, ss = np.meshgrid(np.arange(num_t), np.arange(num_s), indexing="ij")  # [T, S]
    out = []
    for pos in own_pilot_positions(resource_grid):
        d = np.abs(tt[..., None] - pos[:, 0]) + np.abs(ss[..., None] - pos[:, 1])  # [T, S, P]
        out.append(np.argmin(d, axis=-1).T)  # [S, T]
    return np.asarray(out, np.int32)


def data_re_indices(resource_grid) -> np.ndarray:
    """Flat indices (symbol-major, ``t * S + s``) of the data REs, in the order Sionna's
    resource-grid demapper returns them. int64 [N_data]."""
    tg = np.asarray(resource_grid.build_type_grid())[0, 0]  # [T, S]; 0 = data
    return np.flatnonzero(tg.reshape(-1) == 0)


def y_to_real(y):
    """Sionna grid complex [B, 1, A, T, S] -> float32 [B, S, T, 2A] (real parts, then imag)."""
    from effinrx._tf import tf

    t = tf()
    y = t.transpose(y[:, 0], [0, 3, 2, 1])
    return t.concat([t.math.real(y), t.math.imag(y)], axis=-1)


def h_to_real(h_hat, num_tx: int):
    """Sionna estimate complex [B, 1, A, U, 1, T, S] -> float32 [B, U, S, T, 2A]."""
    from effinrx._tf import tf

    t = tf()
    h = t.transpose(h_hat[:, 0, :, :num_tx, 0], [0, 2, 4, 3, 1])
    return t.concat([t.math.real(h), t.math.imag(h)], axis=-1)


def effective_channel_real(h, precoder_w):
    """True channel [B, 1, A, U, Ntx_ant, T, S] complex and precoding matrices [U, Ntx_ant, 1]
    -> effective per-UE channel float32 [B, U, S, T, 2A] (the channel readout's target)."""
    from effinrx._tf import tf

    t = tf()
    h = t.transpose(h[:, 0], [0, 2, 5, 4, 1, 3])  # [B, U, S, T, A, Ntx]
    w = t.cast(precoder_w, h.dtype)[None, :, None, None]  # [1, U, 1, 1, Ntx, 1]
    he = t.squeeze(t.matmul(h, w), -1)
    return t.concat([t.math.real(he), t.math.imag(he)], axis=-1)


def precoding_matrices(transmitter) -> np.ndarray:
    """Complex [U, Ntx_ant, 1] precoders of a PUSCHTransmitter (ones if it does not precode)."""
    pre = getattr(transmitter, "_precoder", None)
    w = getattr(pre, "_w", None) if pre is not None else None
    if w is None:
        w = getattr(transmitter, "_precoding_matrices", None)
    if w is None:
        return np.ones([transmitter._num_tx, transmitter._num_antenna_ports, 1], np.complex64)
    return np.asarray(w, np.complex64).reshape(transmitter._num_tx, -1, 1)
