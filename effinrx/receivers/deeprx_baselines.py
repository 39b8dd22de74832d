"""Classical baselines of the DeepRx comparison (seed 001) on the SIMO scenario
(:func:`effinrx.link.simo.simo_scenario`): LMMSE detection after an LS channel estimate with nearest
or linear interpolation, and after the true channel (perfect CSI). Max-log demapping throughout.

``llr(y, no, h=None)``: ``y`` complex64 ``[B, 1, num_rx_ant, 14, F]``, ``no`` float32 ``[B]``;
returns float32 ``[B, 1, num_coded_bits]`` (Sionna sign convention), like every
:class:`~effinrx.receivers.base.Receiver`. With one unprecoded layer the true channel ``h``
``[B, 1, Nr, 1, 1, 14, F]`` is already the effective channel the detector needs.
"""
from __future__ import annotations

from effinrx.errors import ConfigError
from effinrx.link.pusch import stream_management, transmitter
from effinrx.receivers.base import Receiver


class SimoLMMSE(Receiver):
    """``csi``: "ls-nn" | "ls-lin" (LS at the DMRS + interpolation) or "perfect" (true channel)."""

    CSI = ("ls-nn", "ls-lin", "perfect")

    def __init__(self, scenario, csi: str = "ls-nn"):
        from sionna.phy.nr import LayerDemapper, PUSCHLSChannelEstimator
        from sionna.phy.ofdm import LinearDetector

        if csi not in self.CSI:
            raise ConfigError(f"unknown CSI kind {csi!r}; choose one of {self.CSI}")
        if scenario.num_tx != 1 or scenario.num_ant_ports != 1:
            raise ConfigError("SimoLMMSE needs one unprecoded UE (num_tx=1, num_ant_ports=1), got "
                              f"num_tx={scenario.num_tx}, num_ant_ports={scenario.num_ant_ports}")
        tx = transmitter(scenario)
        self.scenario, self.csi = scenario, csi
        self.name = f"{csi}-lmmse"
        self.needs_perfect_csi = csi == "perfect"
        bps = int(tx._num_bits_per_symbol)
        if csi != "perfect":
            self._est = PUSCHLSChannelEstimator(tx.resource_grid, tx._dmrs_length, tx._dmrs_additional_position,
                                                tx._num_cdm_groups_without_data, interpolation_type=csi[3:])
        self._det = LinearDetector("lmmse", "bit", "maxlog", tx.resource_grid, stream_management(scenario),
                                   "qam", bps)
        self._ld = LayerDemapper(tx._layer_mapper, num_bits_per_symbol=bps)

    def llr(self, y, no, h=None, active=None):
        import tensorflow as tf  # effinrx is imported, so the legacy-Keras env is already set

        if self.csi == "perfect":
            if h is None:
                raise ConfigError("perfect-CSI LMMSE needs the true channel h")
            h_hat, err_var = h, tf.zeros((), tf.float32)
        else:
            h_hat, err_var = self._est(y, no)
        return self._ld(self._det(y, h_hat, err_var, no))

    def describe(self) -> dict:
        return {**super().describe(), "csi": self.csi, "scenario": self.scenario.as_dict()}
