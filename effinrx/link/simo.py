"""DeepRx-style SIMO link (seed 001): 1 UE x 2 BS antennas, 64-QAM rate ~0.5, randomised CDL channels.

Scenario (:func:`simo_scenario`): 5G NR PUSCH, 1 single-layer UE without precoding, 2 BS antennas
(one cross-polarised column), 30 kHz SCS, 3.5 GHz, MCS 19 of table 1 (64-QAM, R = 517/1024 = 0.505),
``num_prbs`` PRBs (4 by default: a CPU-sized grid; the paper does not give its bandwidth).
DMRS: type A position 2 + one additional position = OFDM symbols **2 and 11 (0-based)**, i.e. the
paper's "3rd and 12th symbol" (1-based); 2 CDM groups without data, so DMRS symbols carry no data.

Channels (:class:`ChannelRange`, sampled by :class:`CDLSampler`): every batch draws one CDL profile
and one RMS delay spread uniformly from the range; every example draws its UE speed uniformly
(Sionna's CDL does that per example). Delay spread is per batch, not per example, because Sionna's
CDL scales all delays of a call by one scalar. Ranges (paper Table II/III; the paper leaves the
speeds of its mobility classes blank in our copy, so these are our choice):

* training ``TRAIN``: CDL-A/B/C, 10-100 ns, 0-50 m/s (SNR -2..15 dB, drawn by the trainer);
* test ``MOBILITY``: CDL-D/E, 0-50 ns, low 0-5 m/s, medium 10-20 m/s, high 30-50 m/s.

:class:`RangeChannel` makes a range a channel source of the Monte-Carlo engine
(:mod:`effinrx.link.montecarlo`); :func:`evaluate` is a thin wrapper running several receivers there
on **the same slots** (same channel, bits and noise per batch) for a fixed number of batches.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from effinrx.errors import ConfigError
from effinrx.link import cache as _cache
from effinrx.link.channels import _arrays
from effinrx.link.config import Scenario
from effinrx.link.counts import as_counts
from effinrx.link.montecarlo import simulate_many
from effinrx.link.pusch import transmitter

MCS_INDEX = 19  # table 1: Qm = 6, R = 517/1024 (the paper's 64-QAM, rate 0.5)
MOBILITY = {"low": (0.0, 5.0), "medium": (10.0, 20.0), "high": (30.0, 50.0)}  # m/s


def simo_scenario(num_prbs: int = 4) -> Scenario:
    """The SIMO 1x2 64-QAM PUSCH scenario (see module docstring). Channel fields are nominal only:
    :class:`CDLSampler` draws profile, delay spread and speed from a :class:`ChannelRange`."""
    return Scenario(num_prbs=num_prbs, num_tx=1, num_rx_ant=2, num_ant_ports=1, dmrs_ports=(0,),
                    mcs_index=MCS_INDEX, carrier_frequency=3.5e9, channel="cdl-c",
                    delay_spread_ns=(50.0,), doppler_hz=(0.0,), dmrs_additional_position=1,
                    dmrs_type_a_position=2)


@dataclass(frozen=True)
class ChannelRange:
    """CDL profiles (letters), RMS delay spread range in ns, UE speed range in m/s."""

    models: tuple = ("A", "B", "C")
    delay_spread_ns: tuple = (10.0, 100.0)
    speed: tuple = (0.0, 50.0)

    def __post_init__(self):
        if not self.models or any(m not in "ABCDE" or len(m) != 1 for m in self.models):
            raise ConfigError(f"ChannelRange.models must be CDL letters A..E, got {self.models!r}")
        for name in ("delay_spread_ns", "speed"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ConfigError(f"ChannelRange.{name} must be (lo, hi) with 0 <= lo <= hi, got {(lo, hi)}")


TRAIN = ChannelRange(("A", "B", "C"), (10.0, 100.0), (0.0, 50.0))


def test_range(mobility: str) -> ChannelRange:
    """Test channels of one mobility class: CDL-D/E, 0-50 ns, speeds of ``MOBILITY[mobility]``."""
    if mobility not in MOBILITY:
        raise ConfigError(f"unknown mobility class {mobility!r}; choose one of {sorted(MOBILITY)}")
    return ChannelRange(("D", "E"), (0.0, 50.0), MOBILITY[mobility])


class CDLSampler:
    """Draw frequency-domain channels ``h`` complex64 ``[B, 1, 2, 1, 1, 14, F]`` (unit average energy
    per slot) of a :class:`ChannelRange`; profile and delay spread from ``rng`` (numpy Generator),
    the rest from Sionna's RNG (seed it with ``sionna.phy.config.seed``)."""

    def __init__(self, sc: Scenario, chan: ChannelRange):
        from effinrx._tf import tf

        tf()
        from sionna.phy.channel import subcarrier_frequencies
        from sionna.phy.channel.tr38901 import CDL

        rg = transmitter(sc).resource_grid
        self.num_t = rg.num_ofdm_symbols
        self.fs = 1.0 / rg.ofdm_symbol_duration
        self.freqs = subcarrier_frequencies(rg.fft_size, rg.subcarrier_spacing)
        self.chan = chan
        ut, bs = _arrays(sc)
        # one model object per profile; the delay spread is set per call (Sionna reads it per call)
        self.models = {m: CDL(m, 1e-9 * max(chan.delay_spread_ns[1], 1.0), sc.carrier_frequency, ut, bs,
                              "uplink", min_speed=chan.speed[0], max_speed=chan.speed[1])
                       for m in chan.models}

    def __call__(self, batch: int, rng: np.random.Generator):
        from sionna.phy.channel import cir_to_ofdm_channel

        m = self.chan.models[int(rng.integers(len(self.chan.models)))]
        ds = float(rng.uniform(*self.chan.delay_spread_ns))
        cdl = self.models[m]
        cdl.delay_spread = 1e-9 * ds
        a, tau = cdl(batch, self.num_t, self.fs)
        return cir_to_ofdm_channel(self.freqs, a, tau, normalize=True)


def data_mask(sc: Scenario) -> np.ndarray:
    """bool ``[14, F]``: True at the data REs of the (single) UE's resource grid."""
    mask = np.asarray(transmitter(sc).resource_grid.pilot_pattern.mask)[0, 0]
    return mask == 0


def _seed(*parts) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode()) & 0x7FFFFFFF


def train_batches(sc: Scenario, batch: int, seed: int, chan: ChannelRange = TRAIN,
                  snr_db: tuple = (-2.0, 15.0)):
    """Endless iterator of training batches ``(y, no, coded)``: ``y`` complex64 ``[B, 1, 2, 14, F]``,
    ``no`` float32 ``[B]`` (SNR uniform in ``snr_db`` per example; unit-energy symbols and channel),
    ``coded`` float32 ``[B, 1, num_coded_bits]`` (scrambled coded bits as mapped to the REs)."""
    import sionna.phy
    from sionna.phy.channel import ApplyOFDMChannel

    from effinrx._tf import tf

    t = tf()
    tx, apply = transmitter(sc), ApplyOFDMChannel()
    sampler = CDLSampler(sc, chan)
    i = 0
    while True:
        rng = np.random.default_rng(_seed(seed, "train", i))
        sionna.phy.config.seed = _seed(seed, "train-sionna", i)
        h = sampler(batch, rng)
        x, b = tx(batch)
        no = t.constant(10.0 ** (-rng.uniform(*snr_db, size=batch) / 10.0), t.float32)
        yield apply(x, h, no), no, t.cast(tx._tb_encoder(b), t.float32)
        i += 1


class RangeChannel:
    """Channel source (:mod:`effinrx.link.slots`) of the SIMO scenario ``sc`` over the randomised CDL
    ranges ``chan``, so that :func:`effinrx.link.montecarlo.simulate_many` runs DeepRx's link.

    ``sample(batch, seed)`` -> ``h`` complex64 ``[B, 1, 2, 1, 1, 14, F]``: profile and delay spread
    from ``np.random.default_rng(seed)``, the rest from Sionna's generator (which the engine has
    already reset to the slot seed)."""

    def __init__(self, sc: Scenario, chan: ChannelRange):
        self.scenario, self.chan = sc, chan
        self._sampler = None

    def key(self) -> str:
        # the range is part of the key: two classes at the same Eb/N0 get different slots
        c = self.chan
        return (f"simo-range/{self.scenario.key()}/{''.join(c.models)}/"
                f"{c.delay_spread_ns[0]:g}-{c.delay_spread_ns[1]:g}ns/{c.speed[0]:g}-{c.speed[1]:g}mps")

    def describe(self) -> dict:
        c = self.chan
        return {"kind": "simo-range", "scenario": self.scenario.as_dict(), "models": list(c.models),
                "delay_spread_ns": list(c.delay_spread_ns), "speed": list(c.speed)}

    def sample(self, batch: int, seed: int):
        if self._sampler is None:  # built lazily: the CDL models import Sionna
            self._sampler = CDLSampler(self.scenario, self.chan)
        return self._sampler(batch, np.random.default_rng(seed))


def evaluate(receivers: dict, sc: Scenario, chan: ChannelRange, ebno_db_list, *, batches: int,
             batch_size: int, seed: int, progress: bool = False, cache=None) -> dict:
    """Transport-block error counts of every receiver on identical slots: ``batches`` batches of
    ``batch_size`` per Eb/N0 (no early stop) through :func:`effinrx.link.montecarlo.simulate_many`
    on :class:`RangeChannel` ``(sc, chan)`` (its error rule, decoder and slot seeding).

    ``receivers``: name -> :class:`~effinrx.receivers.base.Receiver`. Eb/N0 is rate-adjusted
    (:func:`effinrx.link.pusch.ebno_to_no`). Returns
    ``{name: {ebno: {"errors", "blocks", "bit_errors", "bits", "crc_failures", "tb", "tb_per_batch"}}}``
    (:func:`effinrx.link.counts.as_counts`: ints, and the per-TB outcomes as hex). ``cache``: a
    resume-cache file (:mod:`effinrx.link.cache`; default ``$EFFINRX_SWEEP_CACHE``, none when unset).
    """
    if batches < 1 or batch_size < 1:
        raise ConfigError(f"evaluate: batches and batch_size must be >= 1, got {batches}, {batch_size}")
    if not receivers:
        raise ConfigError("evaluate: no receivers given")
    blocks = batches * batch_size * sc.num_tx
    # EFFINRX_SWEEP_CACHE=<file>: finished batches go to the engine's resume cache (keyed by the
    # receivers' weights digests and the class's range), so a stopped long tier continues
    cache = cache if cache is not None else _cache.env_path()
    # target_errors above the block count: every receiver runs every batch (fixed sample size)
    res = simulate_many(receivers, RangeChannel(sc, chan), ebno_db_list, max_blocks=blocks,
                        target_errors=blocks + 1, batch_size=batch_size, seed=seed,
                        progress=progress or cache is not None, cache=cache)
    return {n: {pc.ebno_db: as_counts(pc) for pc in pts} for n, pts in res.items()}
