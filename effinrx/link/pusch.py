"""Sionna PUSCH set-up of a :class:`~effinrx.link.config.Scenario` (configs, transmitter, decoder),
and of the NRX's fixed reference system.

Reference system (NVlabs neural_rx ``nrx_rt.cfg``): 30 kHz SCS, MCS 14 of table 1 (16-QAM),
2 antenna ports per UE with codebook precoding (TPMI 2), 1 layer per UE, DMRS type 1, type-A
position 2, one additional position (DMRS on symbols 2 and 11), 2 CDM groups without data,
UE 0 on DMRS port 0 and UE 1 on port 2 (different CDM groups), 4 BS antennas.
"""
from __future__ import annotations

import functools

from effinrx.errors import ConfigError
from effinrx.link.config import Scenario


def pusch_configs(sc: Scenario) -> list:
    """One Sionna ``PUSCHConfig`` per UE (1 layer each, DMRS type 1, length 1)."""
    from effinrx._tf import tf

    tf()
    from sionna.phy.nr import PUSCHConfig

    out = []
    for port in sc.dmrs_ports:
        pc = PUSCHConfig()
        pc.carrier.subcarrier_spacing = sc.subcarrier_spacing_khz
        pc.carrier.n_size_grid = sc.num_prbs
        pc.n_size_bwp = sc.num_prbs
        pc.num_antenna_ports = sc.num_ant_ports
        pc.num_layers = 1
        if sc.num_ant_ports > 1:
            pc.precoding = "codebook"
            pc.tpmi = sc.tpmi
        pc.dmrs.config_type = 1
        pc.dmrs.length = 1
        pc.dmrs.additional_position = sc.dmrs_additional_position
        pc.dmrs.type_a_position = sc.dmrs_type_a_position
        pc.dmrs.num_cdm_groups_without_data = 2
        pc.dmrs.dmrs_port_set = [int(port)]
        pc.tb.mcs_index = sc.mcs_index
        pc.tb.mcs_table = sc.mcs_table
        out.append(pc)
    return out


@functools.lru_cache(maxsize=16)
def transmitter(sc: Scenario):
    """Cached frequency-domain ``PUSCHTransmitter``: ``tx(B) -> (x [B,U,ports,14,F] c64, b [B,U,TB])``."""
    from sionna.phy.nr import PUSCHTransmitter

    return PUSCHTransmitter(pusch_configs(sc), output_domain="freq")


@functools.lru_cache(maxsize=16)
def tb_decoder(sc: Scenario):
    """Cached ``TBDecoder`` (boxplus BP, ``num_bp_iter``): ``llr [B,U,N] -> (b_hat, crc)``."""
    from sionna.phy.nr import TBDecoder

    return TBDecoder(transmitter(sc)._tb_encoder, num_bp_iter=sc.num_bp_iter, cn_update="boxplus")


def stream_management(sc: Scenario):
    import numpy as np
    from sionna.phy.mimo import StreamManagement

    return StreamManagement(np.ones([1, sc.num_tx], bool), 1)


def rate_info(sc: Scenario) -> tuple[int, float]:
    """(bits per symbol, target code rate) used for the rate-adjusted Eb/N0."""
    tb = transmitter(sc)._pusch_configs[0].tb
    return int(tb.num_bits_per_symbol), float(tb.target_coderate)


def ebno_to_no(sc: Scenario, ebno_db):
    """Noise variance for a rate-adjusted Eb/N0 (Sionna ``ebnodb2no`` with the resource grid)."""
    from sionna.phy.utils import ebnodb2no

    bps, r = rate_info(sc)
    return ebnodb2no(ebno_db, bps, r, transmitter(sc).resource_grid)


# The reference system NVIDIA trains and deploys its NRX on (fixed, not a Scenario): the NRX
# resource grid, the UMi training/calibration slots (link.umi) and the latency tables use it.

def reference_pusch_configs(num_prbs: int = 4, num_tx: int = 2, mcs_index: int = 14) -> list:
    """One Sionna ``PUSCHConfig`` per UE for the reference system at ``num_prbs`` PRBs."""
    if not 1 <= int(num_prbs) <= 275:
        raise ConfigError(f"num_prbs must be in 1..275, got {num_prbs}")
    if num_tx not in (1, 2):
        raise ConfigError(f"num_tx must be 1 or 2 (DMRS ports 0 and 2), got {num_tx}")
    from effinrx._tf import tf

    tf()
    from sionna.phy.nr import PUSCHConfig

    pc = PUSCHConfig()
    pc.carrier.subcarrier_spacing = 30
    pc.carrier.n_size_grid = int(num_prbs)
    pc.n_size_bwp = int(num_prbs)
    pc.num_antenna_ports = 2
    pc.num_layers = 1
    pc.precoding = "codebook"
    pc.tpmi = 2
    pc.dmrs.config_type = 1
    pc.dmrs.length = 1
    pc.dmrs.additional_position = 1
    pc.dmrs.type_a_position = 2
    pc.dmrs.num_cdm_groups_without_data = 2
    pc.dmrs.dmrs_port_set = [0]
    pc.tb.mcs_index = mcs_index
    pc.tb.mcs_table = 1
    out = [pc]
    if num_tx == 2:
        pc2 = pc.clone()
        pc2.dmrs.dmrs_port_set = [2]
        out.append(pc2)
    return out


@functools.lru_cache(maxsize=8)
def reference_transmitter(num_prbs: int = 4, num_tx: int = 2):
    """Cached Sionna ``PUSCHTransmitter`` (frequency domain) for the reference system."""
    from sionna.phy.nr import PUSCHTransmitter

    return PUSCHTransmitter(reference_pusch_configs(num_prbs, num_tx), output_domain="freq")
