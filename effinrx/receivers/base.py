"""The common receiver interface.

Every receiver (LS/lin + LMMSE, LMMSE + K-best, perfect-CSI K-best, NRX, DeepRx, and their quantized,
pruned or distilled versions, and ONNX/TensorRT engines wrapping them) maps what the base station
received to coded-bit LLRs of every UE. The link simulation then layer-demaps and decodes them with
Sionna's transport-block decoder, so all receivers are compared through the same decoder.

Shapes (Sionna conventions, ``B`` = batch):

* ``y``:  complex64 ``[B, num_rx=1, num_rx_ant, num_ofdm_symbols, fft_size]`` frequency-domain grid.
* ``no``: float32 ``[B]`` (or scalar) noise variance per complex RE.
* ``h``:  complex64 ``[B, 1, num_rx_ant, num_tx, num_tx_ant, num_ofdm_symbols, fft_size]`` true
  channel, given only to receivers with ``needs_perfect_csi = True``.
* ``active``: float32 ``[B, num_tx]`` 1 for a transmitting UE (the NRX masks inactive users); None = all.
* returns ``llr``: float32 ``[B, num_tx, num_coded_bits]`` in Sionna's sign convention
  ``log(p(b=1|y) / p(b=0|y))``, ready for ``TBDecoder`` after layer demapping (1 layer per UE).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Receiver(ABC):
    """Abstract receiver. Subclasses set ``name`` and implement :meth:`llr`."""

    #: short id used in golden keys, plots and the CLI (e.g. "ls-lmmse", "nrx-rt-fp16")
    name: str = "receiver"
    #: True if :meth:`llr` needs the true channel ``h``
    needs_perfect_csi: bool = False

    @abstractmethod
    def llr(self, y: Any, no: Any, h: Any = None, active: Any = None) -> Any:
        """Return coded-bit LLRs ``[B, num_tx, num_coded_bits]`` float32 (see module docstring)."""

    def describe(self) -> dict:
        """Facts for reports and golden metadata (name, kind, precision, parameters...)."""
        return {"name": self.name, "type": type(self).__name__}

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return f"<{type(self).__name__} {self.name}>"
