"""Seeded slots of the link engine: which channel a batch sees, and how it is seeded.

**The seeding rule.** Batch ``i`` of Eb/N0 point ``e`` in a sweep with ``seed`` on channel source
``src`` (batch size ``B``) is drawn after resetting Sionna's generator to
``slot_seed(seed, src.key(), e, B, i)``: its channel, information bits and noise depend on nothing
else -- not on the receivers run on it, the order batches run in, how a sweep is split into chunks
or on which worker a chunk runs. So every receiver sees the same slots (paired comparisons) and a
rerun with the same seed gives identical counts.

Channel sources (``key() -> str``, ``scenario``, ``sample(batch, seed) -> h`` complex64
``[B, 1, num_rx_ant, num_tx, num_ant_ports, 14, fft]``):

* :class:`ScenarioChannel` -- the channel kind of a :class:`~effinrx.link.config.Scenario`
  (:func:`effinrx.link.channels.sample_channel`; default: NVIDIA's DoubleTDL evaluation channel);
* :class:`effinrx.link.simo.RangeChannel` -- DeepRx's randomised CDL ranges on the SIMO scenario.
"""
from __future__ import annotations

import zlib

from effinrx.errors import ConfigError
from effinrx.link.channels import sample_channel
from effinrx.link.config import Scenario


def slot_seed(seed: int, source_key: str, ebno_db: float, batch: int, i: int) -> int:
    """The 31-bit seed of batch ``i`` (see the module docstring)."""
    return zlib.crc32(f"{int(seed)}/{source_key}/{float(ebno_db):.4f}/{int(batch)}/{int(i)}".encode()) & 0x7FFFFFFF


class ScenarioChannel:
    """The channel of ``scenario`` (its ``channel`` field) as a channel source."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario

    def key(self) -> str:
        return self.scenario.key()

    def describe(self) -> dict:
        return {"kind": "scenario", "scenario": self.scenario.as_dict()}

    def sample(self, batch: int, seed: int):
        return sample_channel(self.scenario, batch)


def as_source(scenario_or_source):
    """A :class:`Scenario` becomes its :class:`ScenarioChannel`; a channel source passes through."""
    if isinstance(scenario_or_source, Scenario):
        return ScenarioChannel(scenario_or_source)
    if not all(hasattr(scenario_or_source, a) for a in ("key", "sample", "scenario")):
        raise ConfigError(f"expected a Scenario or a channel source, got {type(scenario_or_source).__name__}")
    return scenario_or_source


def seed_batch(source, ebno_db: float, batch: int, seed: int, i: int):
    """Reset Sionna's generator for batch ``i`` and draw its channel. Returns ``(h, s)``."""
    import sionna.phy

    s = slot_seed(seed, source.key(), ebno_db, batch, i)
    # Sionna draws from its own generator, reset here in place (also inside compiled graphs); the TF
    # global seed is left alone because changing it makes tf.function retrace every batch
    sionna.phy.config.seed = s
    return source.sample(batch, s), s
