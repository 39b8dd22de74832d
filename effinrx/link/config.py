"""The link scenario: one frozen dataclass, validated on construction (ConfigError names the field).

Defaults are NVIDIA's NRX evaluation scenario (NVlabs/neural_rx ``config/nrx_rt.cfg``, sections
``[system]``, ``[baseline]`` and ``[evaluation]``; ``utils/channel_models.DoubleTDLChannel``), each
parameter with its source:

* 5G NR PUSCH uplink, 2 single-layer UEs (``max_num_tx = 2``), 4 BS antennas (``num_rx_antennas``);
* MCS 14 of table 1, 16-QAM (``mcs_index = [14]``, ``mcs_table = 1``); 30 kHz SCS; 2.14 GHz;
* 2 antenna ports with codebook precoding TPMI 2 (``precoding``, ``tpmi``, ``num_antenna_ports``);
* DMRS type 1, length 1, type-A position 2, one additional position (symbols 2 and 11), 2 CDM groups
  without data, ports 0 and 2 (``dmrs_port_sets = [[0], [2]]``);
* LDPC: Sionna ``TBDecoder``, 20 BP iterations, ``cn_update="boxplus"`` (``[baseline] num_bp_iter``,
  ``cn_type = 'boxplus'``) -- one decoder for every receiver;
* channel ``double-tdl`` (``channel_type_eval = "DoubleTDLlow"``): UE1 3GPP TDL-B100 (100 ns, max
  Doppler 400 Hz), UE2 TDL-C300 (300 ns, 100 Hz), each UE's speed uniform in [0, max] (Sionna's TDL
  with ``min_speed = 0``), i.i.d. antennas ("low" correlation), **no per-slot normalisation**
  (``channel_norm_eval = False``; Sionna's ``GenerateOFDMChannel`` default);
* Eb/N0 rate-adjusted (``[global] ebno = True``): ``ebnodb2no(ebno, bits_per_symbol, coderate,
  resource_grid)``;
* 4 PRBs (NVIDIA trains at ``n_size_bwp = 4`` and evaluates at ``n_size_bwp_eval = 132``).

UMi (``channel="umi"``, speeds uniform in 0..56 m/s as ``max_ut_velocity = 56.``) is the training and
calibration channel only.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from effinrx.errors import ConfigError

CHANNELS = ("umi", "double-tdl", "cdl-a", "cdl-b", "cdl-c", "cdl-d", "cdl-e", "awgn", "rayleigh")


@dataclass(frozen=True)
class Scenario:
    """Link scenario. All fields are plain values so the scenario hashes into cache keys.

    ``dmrs_ports``: one DMRS port per UE (length must equal ``num_tx``); ``num_ant_ports`` 1 (no
    precoding) or 2 (codebook ``tpmi``); ``delay_spread_ns``/``doppler_hz``: per-UE TDL/CDL values
    (None = channel defaults); ``max_speed``: UMi UE speed range upper bound in m/s.
    """

    num_prbs: int = 4
    num_tx: int = 2
    num_rx_ant: int = 4
    num_ant_ports: int = 2
    tpmi: int = 2
    mcs_index: int = 14
    mcs_table: int = 1
    subcarrier_spacing_khz: int = 30
    carrier_frequency: float = 2.14e9
    dmrs_additional_position: int = 1
    dmrs_type_a_position: int = 2
    dmrs_ports: tuple = (0, 2)
    num_bp_iter: int = 20
    channel: str = "double-tdl"
    delay_spread_ns: tuple = (100.0, 300.0)
    doppler_hz: tuple = (400.0, 100.0)
    max_speed: float = 56.0  # m/s, UMi speeds uniform in [0, max_speed] (nrx_rt.cfg max_ut_velocity)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        def need(cond, msg):
            if not cond:
                raise ConfigError(f"Scenario: {msg}")

        for name in ("num_prbs", "num_tx", "num_rx_ant", "num_ant_ports", "mcs_index", "num_bp_iter"):
            need(isinstance(getattr(self, name), int) and not isinstance(getattr(self, name), bool),
                 f"{name} must be an int, got {getattr(self, name)!r}")
        need(1 <= self.num_prbs <= 275, f"num_prbs must be in 1..275, got {self.num_prbs}")
        need(self.num_tx in (1, 2), f"num_tx must be 1 or 2 (single-layer UEs), got {self.num_tx}")
        need(1 <= self.num_rx_ant <= 16, f"num_rx_ant must be in 1..16, got {self.num_rx_ant}")
        need(self.num_rx_ant >= self.num_tx,
             f"num_rx_ant ({self.num_rx_ant}) must be >= num_tx ({self.num_tx}) for MIMO detection")
        need(self.num_ant_ports in (1, 2), f"num_ant_ports must be 1 or 2, got {self.num_ant_ports}")
        need(self.mcs_table in (1, 2), f"mcs_table must be 1 or 2, got {self.mcs_table}")
        need(0 <= self.mcs_index <= (28 if self.mcs_table == 1 else 27),
             f"mcs_index {self.mcs_index} out of range for table {self.mcs_table}")
        need(self.subcarrier_spacing_khz in (15, 30, 60), "subcarrier_spacing_khz must be 15, 30 or 60")
        need(self.dmrs_additional_position in (0, 1, 2, 3), "dmrs_additional_position must be 0..3")
        need(self.dmrs_type_a_position in (2, 3), "dmrs_type_a_position must be 2 or 3")
        need(len(tuple(self.dmrs_ports)) == self.num_tx,
             f"dmrs_ports {self.dmrs_ports} must give one port per UE (num_tx={self.num_tx})")
        need(all(p in (0, 1, 2, 3) for p in self.dmrs_ports), "dmrs_ports must be in 0..3 (type 1)")
        need(self.channel in CHANNELS, f"channel must be one of {CHANNELS}, got {self.channel!r}")
        need(self.carrier_frequency > 0, "carrier_frequency must be > 0")
        need(self.num_bp_iter >= 1, "num_bp_iter must be >= 1")
        if self.channel == "double-tdl" or self.channel.startswith("cdl"):
            need(len(self.delay_spread_ns) >= self.num_tx and len(self.doppler_hz) >= self.num_tx,
                 f"delay_spread_ns/doppler_hz need one value per UE (num_tx={self.num_tx})")
            need(all(d > 0 for d in self.delay_spread_ns), "delay_spread_ns must be > 0")
            need(all(f >= 0 for f in self.doppler_hz), "doppler_hz must be >= 0")
        if self.channel == "double-tdl":
            fixed = (100.0, 300.0)[: self.num_tx]
            need(tuple(float(d) for d in self.delay_spread_ns[: self.num_tx]) == fixed,
                 f"double-tdl uses TDL-B100 / TDL-C300, whose delay spreads are fixed at {fixed} ns; "
                 f"got delay_spread_ns={tuple(self.delay_spread_ns)}")

    def replace(self, **kw) -> "Scenario":
        """A copy with fields changed (validated again)."""
        return dataclasses.replace(self, **kw)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("extra")
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    def key(self) -> str:
        """Short stable hash of the fields, for caches."""
        return hashlib.sha1(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:12]
