"""Channel models of a scenario, all giving the frequency-domain channel of one slot per sample.

``sample_channel(sc, batch) -> h`` complex64 ``[B, 1, num_rx_ant, num_tx, num_ant_ports, 14, fft]``,
Kinds (``Scenario.channel``):

* ``double-tdl`` (evaluation, NVIDIA's ``DoubleTDLChannel`` "low"): UE1 TDL-B100, UE2 TDL-C300 with
  max Doppler ``doppler_hz`` (400 / 100 Hz), speed uniform in [0, max] per example, i.i.d.
  antennas, **not normalised** (slot-to-slot fading of the 8 links is kept, as in NVIDIA's
  ``channel_norm_eval = False``).
* ``umi``: 3GPP 38.901 UMi uplink, speeds 0..``max_speed`` m/s, no path loss / shadowing, normalised
  per slot (training and covariance estimation only).
* ``cdl-a``..``cdl-e``: 3GPP CDL per UE (delay spread / Doppler per UE), cross-polarised arrays,
  normalised per slot.
* ``awgn``: fixed well-conditioned flat channel (DFT-like columns); ``rayleigh``: flat block fading.
"""
from __future__ import annotations

import functools

import numpy as np

from effinrx.link.config import Scenario
from effinrx.link.pusch import transmitter

_C = 299_792_458.0


def _speed(sc: Scenario, doppler_hz: float) -> float:
    return float(doppler_hz) * _C / sc.carrier_frequency


def _arrays(sc: Scenario):
    from sionna.phy.channel.tr38901 import AntennaArray, PanelArray

    fc = sc.carrier_frequency
    ut_pol = "dual" if sc.num_ant_ports == 2 else "single"
    ut = PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization=ut_pol,
                    polarization_type="cross" if ut_pol == "dual" else "V", antenna_pattern="omni",
                    carrier_frequency=fc)
    if sc.num_rx_ant % 2 == 0:
        bs = PanelArray(num_rows_per_panel=1, num_cols_per_panel=sc.num_rx_ant // 2, polarization="dual",
                        polarization_type="cross", antenna_pattern="38.901", carrier_frequency=fc)
    else:
        bs = PanelArray(num_rows_per_panel=1, num_cols_per_panel=sc.num_rx_ant, polarization="single",
                        polarization_type="V", antenna_pattern="38.901", carrier_frequency=fc)
    del AntennaArray
    return ut, bs


@functools.lru_cache(maxsize=16)
def _models(sc: Scenario):
    from sionna.phy.channel import RayleighBlockFading
    from sionna.phy.channel.tr38901 import CDL, TDL, UMi

    if sc.channel == "umi":
        ut, bs = _arrays(sc)
        return [UMi(sc.carrier_frequency, "low", ut, bs, "uplink", enable_pathloss=False,
                    enable_shadow_fading=False)]
    if sc.channel == "double-tdl":
        profiles = (("B100", 100e-9), ("C300", 300e-9))  # fixed delay spreads (Scenario validates them)
        return [TDL(profiles[u][0], profiles[u][1], sc.carrier_frequency,
                    min_speed=0.0, max_speed=_speed(sc, sc.doppler_hz[u]),
                    num_rx_ant=sc.num_rx_ant, num_tx_ant=sc.num_ant_ports) for u in range(sc.num_tx)]
    if sc.channel.startswith("cdl"):
        ut, bs = _arrays(sc)
        m = sc.channel[-1].upper()
        return [CDL(m, sc.delay_spread_ns[u] * 1e-9, sc.carrier_frequency, ut, bs, "uplink",
                    min_speed=_speed(sc, sc.doppler_hz[u]), max_speed=_speed(sc, sc.doppler_hz[u]))
                for u in range(sc.num_tx)]
    if sc.channel == "rayleigh":
        return [RayleighBlockFading(1, sc.num_rx_ant, sc.num_tx, sc.num_ant_ports)]
    return []


def _awgn_channel(sc: Scenario, batch: int, num_t: int, num_f: int):
    from effinrx._tf import tf

    t = tf()
    r = np.arange(sc.num_rx_ant)[:, None, None]
    col = (np.arange(sc.num_tx)[None, :, None] * sc.num_ant_ports + np.arange(sc.num_ant_ports)[None, None, :])
    n_cols = sc.num_tx * sc.num_ant_ports
    # DFT columns: orthogonal across UEs when num_rx_ant >= num_tx*ports, so detection is easy
    h = np.exp(2j * np.pi * r * col / max(sc.num_rx_ant, n_cols)).astype(np.complex64)
    h = h[None, None, :, :, :, None, None]
    return t.tile(t.constant(h), [batch, 1, 1, 1, 1, num_t, num_f])


def sample_channel(sc: Scenario, batch: int):
    """Draw ``batch`` slot channels (see module docstring). Uses Sionna's RNG (seed via config)."""
    from effinrx._tf import tf
    from sionna.phy.channel import cir_to_ofdm_channel, gen_single_sector_topology, subcarrier_frequencies

    t = tf()
    rg = transmitter(sc).resource_grid
    num_t, num_f = rg.num_ofdm_symbols, rg.fft_size
    if sc.channel == "awgn":
        return _awgn_channel(sc, batch, num_t, num_f)
    freqs = subcarrier_frequencies(num_f, rg.subcarrier_spacing)
    fs = 1.0 / rg.ofdm_symbol_duration
    models = _models(sc)
    if sc.channel == "umi":
        models[0].set_topology(*gen_single_sector_topology(batch, sc.num_tx, "umi", min_ut_velocity=0.0,
                                                           max_ut_velocity=sc.max_speed))
    hs = []
    for m in models:
        a, tau = m(batch, num_t, fs)
        # NVIDIA's evaluation keeps the TDL channel's own energy (no per-slot normalisation)
        hs.append(cir_to_ofdm_channel(freqs, a, tau, normalize=sc.channel != "double-tdl"))
    return hs[0] if len(hs) == 1 else t.concat(hs, axis=3)  # per-UE models stack on the tx axis
