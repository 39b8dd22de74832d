"""The CGNN neural receiver (NRX-RT / NRX-Large) behind the common :class:`Receiver` interface.

``NRXReceiver.llr(y, no, active=None)``:

* ``y`` complex64 [B, 1, 4, 14, 12*PRBs] frequency grid, ``no`` float32 [B] or scalar (unused by
  the network; the LS estimate does not need it), ``active`` float32 [B, U] (None = all active).
* preprocessing: LS channel estimate at the DMRS with nearest-neighbour interpolation per UE
  (Sionna ``PUSCHLSChannelEstimator(interpolation_type="nn")``), positional encoding, unit-power
  normalisation inside the network.
* returns float32 [B, U, num_coded_bits] LLRs in Sionna's sign convention log(p(b=1)/p(b=0)):
  the reference trains with BCE-from-logits on the bits, so the network output already has it.
  With 1 layer per UE the layer demapper is the identity, so these feed ``TBDecoder`` directly.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from effinrx import weights as W
from effinrx.errors import ConfigError, ShapeError, WeightsError
from effinrx.link.pusch import reference_transmitter
from effinrx.receivers import nrx_preproc as P
from effinrx.receivers.base import Receiver
from effinrx.receivers.checks import check_inputs
from effinrx.receivers.nrx_layers import CONFIGS, NRX_LARGE, NRX_RT, NRXConfig, build_cgnn, get_config

__all__ = ["NRXReceiver", "NRX_RT", "NRX_LARGE", "NRXConfig", "build_cgnn", "get_config",
           "resolve_weights", "packaged_weights_path", "CONFIGS", "load_model", "cached_model",
           "cached_receiver", "receiver_for_scenario", "announce_packaged", "weights_kind"]

WeightsArg = Union[str, os.PathLike, Sequence[np.ndarray], None]


def packaged_weights_path(model: str) -> Path:
    """Path of our own trained checkpoint shipped in ``effinrx/data/<model>.npz`` (may not exist)."""
    return Path(__file__).resolve().parent.parent / "data" / f"{model}.npz"


def resolve_weights(model: str, weights: WeightsArg = "auto",
                    names: Optional[Sequence[str]] = None) -> tuple[Optional[list], str]:
    """Turn a weights argument into ``(arrays or None, description)``.

    ``"auto"``: reference weights if present, else our packaged checkpoint (announced on stderr,
    once per process and model: it is undertrained, see :func:`announce_packaged`), else
    WeightsError. ``"reference"``: the reference pickle. ``"packaged"``: our checkpoint. A path:
    ``.npz`` (ours, sidecar validated) or a reference pickle. A list of arrays: used as is. ``None``:
    random initialisation. ``names`` (the model's variable names) only label a NaN/Inf error.
    """
    if weights is None:
        return None, "random-init"
    if isinstance(weights, (list, tuple)):
        return list(weights), "arrays"
    if weights == "auto":
        env = os.environ.get(W.ENV_VAR)
        if env and W.reference_dir() is None:
            raise WeightsError(f"${W.ENV_VAR}={env} is not a folder (unset it to use the default "
                               f"location or the packaged checkpoint)")
        if W.reference_dir() is not None:
            return W.load_reference_weights(model, names), "reference"
        p = packaged_weights_path(model)
        if p.is_file():
            ws, meta = W.load_npz(p, names)
            announce_packaged(model, p, meta)
            return ws, f"packaged:{p.name}"
        raise WeightsError(f"no weights for '{model}': reference weights absent "
                           f"(set ${W.ENV_VAR}) and no packaged checkpoint {p}")
    if weights == "reference":
        return W.load_reference_weights(model, names), "reference"
    if weights == "packaged":
        p = packaged_weights_path(model)
        if not p.is_file():
            raise WeightsError(f"packaged checkpoint {p} does not exist")
        return W.load_npz(p, names)[0], f"packaged:{p.name}"
    return W.load_any(weights, names), str(weights)


_ANNOUNCED: set = set()


def announce_packaged(model: str, path: Path, meta: dict) -> None:
    """One stderr line, once per process and model: ``--weights auto`` fell back to our packaged
    checkpoint because the reference weights are absent. Without it a user sees "nrx-rt" in the
    output and takes the undertrained checkpoint's TBLER for the paper's receiver."""
    import sys

    if model in _ANNOUNCED:
        return
    _ANNOUNCED.add(model)
    note = (meta or {}).get("quality_note")
    print(f"effinrx: warning: reference NRX weights not found (set ${W.ENV_VAR}); '{model}' uses the "
          f"packaged checkpoint {path}" + (f" ({note})" if note else "")
          + "; pass --weights packaged to choose it explicitly", file=sys.stderr, flush=True)


def weights_kind(desc: str) -> str:
    """Where a network's weights came from, from its ``weights_source`` description:
    reference | packaged | random-init | arrays | file (a path) | <artifact/pruned kind>."""
    if desc in ("reference", "random-init", "arrays"):
        return desc
    head = desc.split(":", 1)[0]
    if head in ("packaged", "pruned", "ptq", "w8a8", "qat", "distilled") and ":" in desc:
        return head
    return "file"


def load_model(model: Union[str, NRXConfig] = "nrx-rt", weights: WeightsArg = "auto",
               wrap: Optional[Callable] = None):
    """Build the CGNN for ``model`` and load ``weights`` (see :func:`resolve_weights`).
    WeightsError (naming the source and layer) for arrays holding NaN/Inf."""
    cfg = model if isinstance(model, NRXConfig) else get_config(model)
    net = build_cgnn(cfg, wrap=wrap)
    names = [v.name for v in net.core_variables()]
    arrays, desc = resolve_weights(cfg.name, weights, names)
    if arrays is not None:
        W.check_finite(arrays, f"weights {desc}", names)
        net.set_core_weights(arrays, source=desc)
    net.weights_source = desc
    return net


def cached_model(model: str = "nrx-rt", weights: str = "auto"):
    """:func:`load_model` built once per process for a named ``weights`` choice ("auto",
    "reference", "packaged" or a path string), so tests, benchmarks and the CLI share one graph.
    The returned model is shared: do not train or re-assign its weights."""
    if not isinstance(model, str) or not isinstance(weights, (str, os.PathLike)):
        raise WeightsError(f"cached_model takes a model name and a weights name/path, got "
                           f"{type(model).__name__}, {type(weights).__name__}")
    return _cached_model(model, str(weights))


@functools.lru_cache(maxsize=8)
def _cached_model(model: str, weights: str):
    return load_model(model, weights)


@functools.lru_cache(maxsize=8)
def cached_receiver(model: str = "nrx-rt", weights: str = "auto", num_prbs: int = 4,
                    num_tx: int = 2) -> "NRXReceiver":
    """:class:`NRXReceiver` on :func:`cached_model`, built once per argument tuple (shared)."""
    return NRXReceiver(model, net=cached_model(model, weights), num_prbs=num_prbs, num_tx=num_tx)


#: Scenario fields the reference NRX was trained for (other values need retraining)
SCENARIO_FIXED = {"num_rx_ant": 4, "num_ant_ports": 2, "tpmi": 2, "mcs_index": 14, "mcs_table": 1,
                  "subcarrier_spacing_khz": 30, "dmrs_additional_position": 1,
                  "dmrs_type_a_position": 2}


def receiver_for_scenario(sc, model: str = "nrx-rt", weights: str = "auto") -> "NRXReceiver":
    """Cached :class:`NRXReceiver` for a link :class:`~effinrx.link.config.Scenario`.

    ConfigError names the first field that differs from the reference system (the network's
    input layout, pilot pattern and bits per RE are fixed by training)."""
    for k, v in SCENARIO_FIXED.items():
        if getattr(sc, k, v) != v:
            raise ConfigError(f"NRX '{model}' needs scenario {k}={v!r}, got {getattr(sc, k)!r}")
    ports = tuple(getattr(sc, "dmrs_ports", (0, 2)))
    if ports != (0, 2)[: len(ports)]:
        raise ConfigError(f"NRX '{model}' needs DMRS ports (0, 2) (UE 1 on port 0, UE 2 on port 2), "
                          f"got {ports}")
    return cached_receiver(model, weights, int(sc.num_prbs), int(sc.num_tx))


class NRXReceiver(Receiver):
    """CGNN neural receiver for the reference PUSCH system (see ``nrx_preproc``)."""

    needs_perfect_csi = False

    def __init__(self, model: Union[str, NRXConfig] = "nrx-rt", weights: WeightsArg = "auto",
                 num_prbs: int = 4, num_tx: int = 2, wrap: Optional[Callable] = None,
                 net=None, name: Optional[str] = None):
        from effinrx._tf import tf
        t = tf()
        self.cfg = model if isinstance(model, NRXConfig) else get_config(model)
        self.net = net if net is not None else load_model(self.cfg, weights, wrap)
        self.name = name or self.cfg.name
        self.num_prbs, self.num_tx = int(num_prbs), int(num_tx)
        self.transmitter = reference_transmitter(self.num_prbs, self.num_tx)
        rg = self.transmitter.resource_grid
        self.resource_grid = rg
        self.pe = t.constant(P.positional_encoding(rg))
        self.data_idx = t.constant(P.data_re_indices(rg))
        from sionna.phy.nr import PUSCHLSChannelEstimator

        pc = self.transmitter._pusch_configs[0]
        self._ls = PUSCHLSChannelEstimator(
            resource_grid=rg, dmrs_length=pc.dmrs.length,
            dmrs_additional_position=pc.dmrs.additional_position,
            num_cdm_groups_without_data=pc.dmrs.num_cdm_groups_without_data,
            interpolation_type="nn")
        # no autograph: the body has only Python-level loops over layers
        self._llr_nc = t.autograph.experimental.do_not_convert(self._llr_checked)
        self._graph = t.function(t.autograph.experimental.do_not_convert(self._llr_impl),
                                 reduce_retracing=True)

    # -- pieces, reused by training and export -------------------------------------------
    def prepare(self, y):
        """y complex [B, 1, A, T, S] -> (y_real [B, S, T, 2A], h_hat [B, U, S, T, 2A])."""
        h_ls, _ = self._ls(y, 0.1)  # noise variance only scales the (unused) error variance
        return P.y_to_real(y), P.h_to_real(h_ls, self.num_tx)

    def forward(self, y, active, training=None):
        """Network outputs on the full grid: (llr [B, U, S, T, bits], h_ref [B, U, S, T, 2A])."""
        yr, hh = self.prepare(y)
        return self.net((yr, self.pe, hh, active), training=training)

    def grid_to_coded(self, llr_grid):
        """[B, U, S, T, bits] -> [B, U, N_data * bits] in Sionna's data-RE order."""
        from effinrx._tf import tf

        t = tf()
        sh = t.shape(llr_grid)
        g = t.transpose(llr_grid, [0, 1, 3, 2, 4])  # symbol-major like the RG demapper
        g = t.reshape(g, [sh[0], sh[1], sh[2] * sh[3], sh[4]])
        g = t.gather(g, self.data_idx, axis=2)
        return t.reshape(g, [sh[0], sh[1], -1])

    def _llr_impl(self, y, active):
        llr, _ = self.forward(y, active, training=False)
        return self.grid_to_coded(llr)

    # -- Receiver interface ------------------------------------------------------------
    def llr(self, y, no, h=None, active=None):
        # delegate to a do_not_convert wrapper: inside a caller's tf.function (link simulation)
        # autograph would otherwise try to convert effinrx._tf.tf() and warn
        return self._llr_nc(y, no, h, active)

    def _llr_checked(self, y, no, h=None, active=None):
        from effinrx._tf import tf

        t = tf()
        y = t.convert_to_tensor(y)
        rg = self.resource_grid
        want = (1, self.cfg.num_rx_ant, rg.num_ofdm_symbols, rg.fft_size)
        if y.shape.rank != 5 or tuple(y.shape[1:]) != want or not y.dtype.is_complex:
            raise ShapeError(f"y has shape {tuple(y.shape)} dtype {y.dtype.name}, expected complex "
                             f"[B, {', '.join(map(str, want))}]")
        b = int(y.shape[0])
        if active is None:
            active = t.ones([b, self.num_tx], t.float32)
        active = t.cast(active, t.float32)
        if tuple(active.shape) != (b, self.num_tx):
            raise ShapeError(f"active has shape {tuple(active.shape)}, expected ({b}, {self.num_tx})")

        # NaN in y otherwise gives finite, input-independent LLRs (unit-power normalisation);
        # ``no`` is not used by the network but a caller passing NaN/<= 0 has a bug upstream
        check_inputs(y, no, self.name)
        return self._graph(t.cast(y, t.complex64), active)

    def describe(self) -> dict:
        src = getattr(self.net, "weights_source", "?")
        d = {"name": self.name, "type": "NRXReceiver", "model": self.cfg.name,
             "num_it": self.cfg.num_it, "params": int(self.net.count_params()),
             "weights": src, "weights_source": weights_kind(src), "num_prbs": self.num_prbs,
             "precision": "fp32", "weights_sha1": self.weights_digest()}
        if d["weights_source"] == "packaged":
            d["weights_note"] = ("packaged checkpoint (undertrained), not the reference weights: "
                                 "not the paper's receiver")
        return d

    def weights_digest(self) -> str:
        """SHA-1 (16 hex) of the core weights and any activation scales: keys the simulation cache,
        so a file rewritten under the same name never resumes from the old file's counts."""
        h = W.arrays_sha1(self.net.get_core_weights())
        for q in getattr(self.net, "act_quantizers", []):
            h.update(np.float64(float(q.scale)).tobytes())
        return h.hexdigest()[:16]
