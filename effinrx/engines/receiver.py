"""An exported NRX running on an inference engine (ONNX Runtime, TensorRT) as a link-level receiver.

The engine computes the ONNX wrapper (``rx_slot_*``, ``h_hat_*`` -> per-RE LLRs, batch 1); this
receiver feeds it slot by slot from the grid ``y`` and picks the data REs exactly as the TensorFlow
NRX does, so TBLER through the engine is comparable count for count with the TF model's.
"""
from __future__ import annotations

import numpy as np

from effinrx.export.onnx import slot_to_inputs
from effinrx.receivers.base import Receiver


class EngineNRXReceiver(Receiver):
    """``llr(y, no)`` through ``engine`` (an :class:`effinrx.engines.base.Engine` of the NRX wrapper).

    ``tf_receiver``: the :class:`~effinrx.receivers.nrx.NRXReceiver` of the same model and PRBs,
    used only for its data-RE selection. Inside a ``tf.function`` the engine call becomes a
    ``tf.numpy_function`` (runs eagerly on the host, as a real deployment would).
    """

    def __init__(self, engine, tf_receiver, prbs: int, name: str):
        self.engine = engine
        self.rx = tf_receiver
        self.prbs = int(prbs)
        self.name = name
        from effinrx._tf import tf

        # no autograph: called inside the link simulation's tf.function, the body is plain TF ops
        self._impl = tf().autograph.experimental.do_not_convert(self._llr_impl)

    def _grid_llr(self, y: np.ndarray) -> np.ndarray:
        out = [next(iter(self.engine.run(slot_to_inputs(y[i:i + 1], self.prbs)).values()))
               for i in range(y.shape[0])]
        return np.concatenate(out, axis=0).astype(np.float32)  # [B, U, S, T, bits]

    def llr(self, y, no, h=None, active=None):
        return self._impl(y)

    def _llr_impl(self, y):
        from effinrx._tf import tf

        t = tf()
        grid = t.numpy_function(self._grid_llr, [y], t.float32, stateful=False)
        u = self.rx.num_tx
        s = 12 * self.prbs
        grid = t.reshape(grid, [-1, u, s, 14, 4])
        # numpy_function leaves the batch dimension unknown, and with it the coded length; the TB
        # decoder is built from that static length, so state it (data REs x 4 bits)
        n = int(np.size(self.rx.data_idx)) * 4
        return t.ensure_shape(self.rx.grid_to_coded(grid), [None, u, n])

    def describe(self) -> dict:
        return {"name": self.name, "type": type(self).__name__, "engine": self.engine.describe()}
