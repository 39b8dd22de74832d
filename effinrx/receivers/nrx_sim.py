"""Slot source for NRX training and the NRX reproduction check: Sionna PUSCH transmitters of the
reference system over a 3GPP UMi channel (uplink, 4 BS antennas), 1-2 active UEs.

Until the project's link simulation (``effinrx.link``) is available this is the NRX's own source;
path loss and shadow fading are off and the channel is normalised, so Eb/N0 is per UE.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from effinrx.errors import ConfigError


@dataclass
class Slot:
    """One batch. ``y`` complex64 [B, 1, 4, 14, S]; ``h`` complex64 [B, 1, 4, U, 2, 14, S];
    ``bits`` float32 [B, U, TB] info bits; ``coded`` float32 [B, U, N] coded bits;
    ``active`` float32 [B, U]; ``no`` float32 [B]; ``ebno_db`` float32 [B];
    ``x`` complex64 [B, U, 2, 14, S] precoded transmit grids (zero for inactive UEs)."""

    y: object
    h: object
    bits: object
    coded: object
    active: object
    no: object
    ebno_db: object
    x: object = None


class UMiSlotSource:
    """Draws PUSCH slots of ``num_tx`` UEs at ``num_prbs`` PRBs over UMi.

    ``__call__(batch, ebno_db, num_active=None)``: ``ebno_db`` scalar or (lo, hi) uniform range;
    ``num_active`` None = random 1..num_tx per sample (UE 0 always active), or an int.
    """

    def __init__(self, num_prbs: int = 4, num_tx: int = 2, carrier_frequency: float = 2.14e9,
                 min_speed: float = 0.0, max_speed: float = 56.0):
        from effinrx._tf import tf
        from effinrx.receivers.nrx_preproc import reference_transmitter
        from sionna.phy.channel import OFDMChannel
        from sionna.phy.channel.tr38901 import UMi, PanelArray

        self.tf = tf()
        self.num_tx = int(num_tx)
        self.tx = reference_transmitter(int(num_prbs), self.num_tx)
        self.rg = self.tx.resource_grid
        ut = PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization="dual",
                        polarization_type="cross", antenna_pattern="omni",
                        carrier_frequency=carrier_frequency)
        bs = PanelArray(num_rows_per_panel=1, num_cols_per_panel=2, polarization="dual",
                        polarization_type="cross", antenna_pattern="38.901",
                        carrier_frequency=carrier_frequency)
        self.model = UMi(carrier_frequency, "low", ut, bs, "uplink", enable_pathloss=False,
                         enable_shadow_fading=False)
        self.channel = OFDMChannel(self.model, self.rg, normalize_channel=True, return_channel=True)
        self.speed = (float(min_speed), float(max_speed))
        pc = self.tx._pusch_configs[0]
        self.coderate = float(pc.tb.target_coderate)
        self.bits_per_symbol = int(pc.tb.num_bits_per_symbol)

    def ebno_to_no(self, ebno_db):
        from sionna.phy.utils import ebnodb2no

        return ebnodb2no(ebno_db, self.bits_per_symbol, self.coderate, self.rg)

    def __call__(self, batch: int, ebno_db, num_active=None) -> Slot:
        t = self.tf
        from sionna.phy.channel import gen_single_sector_topology

        if batch < 1:
            raise ConfigError(f"batch must be >= 1, got {batch}")
        topo = gen_single_sector_topology(batch, self.num_tx, "umi", min_ut_velocity=self.speed[0],
                                          max_ut_velocity=self.speed[1])
        self.model.set_topology(*topo)
        x, b = self.tx(batch)
        if num_active is None:
            n = t.random.uniform([batch], 1, self.num_tx + 1, dtype=t.int32)
        else:
            if not 1 <= int(num_active) <= self.num_tx:
                raise ConfigError(f"num_active must be in 1..{self.num_tx}, got {num_active}")
            n = t.fill([batch], int(num_active))
        active = t.cast(t.sequence_mask(n, self.num_tx), t.float32)
        x = x * t.cast(active, x.dtype)[:, :, None, None, None]  # inactive UEs send nothing
        if isinstance(ebno_db, (tuple, list)):
            e = t.random.uniform([batch], float(ebno_db[0]), float(ebno_db[1]))
        else:
            e = t.fill([batch], float(ebno_db))
        no = t.cast(self.ebno_to_no(e), t.float32)
        y, h = self.channel(x, no)
        coded = self.tx._tb_encoder(b)
        return Slot(y=y, h=h, bits=b, coded=coded, active=active, no=no, ebno_db=e, x=x)


def baseline_ls_lmmse(source: UMiSlotSource):
    """Sionna's default PUSCHReceiver: LS channel estimate with linear interpolation + LMMSE.
    Call ``rx(y, no)`` -> (b_hat [B, U, TB], crc [B, U])."""
    from sionna.phy.nr import PUSCHReceiver

    return PUSCHReceiver(source.tx, return_tb_crc_status=True)


def tb_errors(bits, b_hat, crc, active) -> tuple[int, int]:
    """(block errors, blocks) over active UEs; an error = CRC fail or any wrong info bit."""
    bits, b_hat = np.asarray(bits), np.asarray(b_hat)
    bad = np.logical_or(~np.asarray(crc, bool), np.any(bits != b_hat, axis=-1))
    act = np.asarray(active) > 0
    return int(np.sum(bad & act)), int(np.sum(act))


def run_tbler(receivers: dict, ebno_dbs, batches: int, batch_size: int, num_prbs: int = 4,
              num_active: int = 2, seed: int = 0, source: "UMiSlotSource | None" = None,
              progress: bool = True) -> dict:
    """TB error counts of several receivers on the *same* slots.

    ``receivers``: name -> either an object with ``llr(y, no, active=)`` (decoded here with Sionna's
    TBDecoder) or a callable ``(y, no) -> (b_hat, crc)``. Returns
    ``{name: {ebno: {"errors": int, "blocks": int}}}``.
    """
    from effinrx._tf import set_seeds
    from sionna.phy.nr import TBDecoder

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    set_seeds(seed)
    src = source or UMiSlotSource(num_prbs, 2)
    dec = TBDecoder(src.tx._tb_encoder, num_bp_iter=20)
    out: dict = {n: {} for n in receivers}
    steps = [(float(e), i) for e in ebno_dbs for i in range(batches)]
    it = tqdm(steps, desc="TBLER", disable=not progress) if tqdm else steps
    for e, _ in it:
        s = src(batch_size, e, num_active=num_active)
        for name, rx in receivers.items():
            if hasattr(rx, "llr"):
                b_hat, crc = dec(rx.llr(s.y, s.no, active=s.active))
            else:
                b_hat, crc = rx(s.y, s.no)
            err, n = tb_errors(s.bits, b_hat, crc, s.active)
            c = out[name].setdefault(e, {"errors": 0, "blocks": 0})
            c["errors"] += err
            c["blocks"] += n
    return out
