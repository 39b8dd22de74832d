"""The CGNN core of the neural receiver (NRX), built from tf_keras layers.

Architecture (facts from NVlabs neural_rx; own code): per-user StateInit (3 separable 3x3 convs),
``num_it`` CGNN iterations (aggregation MLP over the *other* active users + separable-conv state
update with a residual), an LLR readout and a channel-estimate readout (the "double readout").

Every ``Dense``/``SeparableConv2D`` is created through :meth:`CGNN._make`, which records the raw
layer (so the weight order stays the reference ``get_weights()`` order even when a wrapper such as
tfmot's ``prune_low_magnitude`` or a fake-quant wrapper adds variables) and applies ``wrap``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

from effinrx.errors import ConfigError, WeightsError


@dataclass(frozen=True)
class NRXConfig:
    """Hyper-parameters of the CGNN. ``num_it`` = 2 (RT) or 8 (Large)."""

    name: str = "nrx-rt"
    num_it: int = 2
    d_s: int = 56
    num_units_init: tuple = (128, 128)
    num_units_agg: tuple = (64,)
    num_units_state: tuple = (128, 128)
    num_units_readout: tuple = (128,)
    num_bits_per_symbol: int = 4
    num_rx_ant: int = 4
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "NRXConfig":
        try:
            kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
            return cls(**kw)
        except TypeError as e:
            raise ConfigError(f"bad NRX config {d}: {e}") from None


NRX_RT = NRXConfig(name="nrx-rt", num_it=2)
NRX_LARGE = NRXConfig(name="nrx-large", num_it=8)
CONFIGS = {"nrx-rt": NRX_RT, "nrx-large": NRX_LARGE}
NRX_MODELS = tuple(CONFIGS)  # the model names every CLI and recipe accepts


def get_config(name: str) -> NRXConfig:
    """Config by name ("nrx-rt" or "nrx-large"); ConfigError otherwise."""
    if name not in CONFIGS:
        raise ConfigError(f"unknown NRX model '{name}' (known: {', '.join(CONFIGS)})")
    return CONFIGS[name]


def build_cgnn(cfg: NRXConfig = NRX_RT, wrap: Optional[Callable] = None):
    """Create and build a :class:`CGNN` model (weights exist after this call)."""
    model = _cgnn_class()(cfg, wrap=wrap)
    model.build_for_shapes()
    return model


_CLS = None


def _cgnn_class():
    """Define the Keras classes lazily so importing this module stays cheap."""
    global _CLS
    if _CLS is not None:
        return _CLS
    from effinrx._tf import keras, tf

    k = keras()
    tfm = tf()

    class CGNN(k.Model):
        """CGNN core.

        Input ``(y, pe, h_hat, active)``:
        ``y`` float32 [B, S, T, 2*A] (real parts of A antennas, then imaginary parts);
        ``pe`` float32 [U, S, T, 2] (time, frequency positional encoding);
        ``h_hat`` float32 [B, U, S, T, 2*A] LS-NN channel estimate, same real/imag layout;
        ``active`` float32 [B, U] 1 = UE transmits.
        Output ``(llr, h_ref)``: float32 [B, U, S, T, bits] (Sionna sign, log p(1)/p(0)) and
        [B, U, S, T, 2*A] refined channel estimate (channel readout).
        """

        def __init__(self, cfg: NRXConfig, wrap: Optional[Callable] = None, **kw):
            super().__init__(**kw)
            self.cfg = cfg
            self._wrap = wrap
            self.core_layers = []  # raw Dense/SeparableConv2D in reference weight order
            self.block_of = []  # block name of each core layer, for per-block counts
            self.init_convs = [self._make("sep", n, "relu", "state_init") for n in cfg.num_units_init]
            self.init_convs.append(self._make("sep", cfg.d_s, None, "state_init"))
            self.iters = []
            for i in range(cfg.num_it):
                blk = f"cgnn_it{i}"
                agg = [self._make("dense", n, "relu", blk) for n in cfg.num_units_agg]
                agg.append(self._make("dense", cfg.d_s, None, blk))
                upd = [self._make("sep", n, "relu", blk) for n in cfg.num_units_state]
                upd.append(self._make("sep", cfg.d_s, None, blk))
                self.iters.append((agg, upd))
            self.readout_llr = [self._make("dense", n, "relu", "readout_llrs")
                                for n in cfg.num_units_readout]
            self.readout_llr.append(self._make("dense", cfg.num_bits_per_symbol, None, "readout_llrs"))
            self.readout_h = [self._make("dense", n, "relu", "readout_chest")
                              for n in cfg.num_units_readout]
            self.readout_h.append(self._make("dense", 2 * cfg.num_rx_ant, None, "readout_chest"))
            # flat tracked list keeps every (wrapped) layer visible to Keras
            self.all_layers = list(self.init_convs) + [l for a, u in self.iters for l in a + u] \
                + self.readout_llr + self.readout_h

        def _make(self, kind, units, act, block):
            if kind == "sep":
                layer = k.layers.SeparableConv2D(units, (3, 3), padding="same", activation=act)
            else:
                layer = k.layers.Dense(units, activation=act)
            self.core_layers.append(layer)
            self.block_of.append(block)
            return self._wrap(layer) if self._wrap is not None else layer

        def build_for_shapes(self, num_sc: int = 12, num_sym: int = 14, num_tx: int = 2):
            a2 = 2 * self.cfg.num_rx_ant
            self((tfm.zeros([1, num_sc, num_sym, a2]), tfm.zeros([num_tx, num_sc, num_sym, 2]),
                  tfm.zeros([1, num_tx, num_sc, num_sym, a2]), tfm.ones([1, num_tx])))

        def call(self, inputs, training=None):
            y, pe, h_hat, active = inputs
            b = tfm.shape(y)[0]
            u = tfm.shape(pe)[0]
            s, t = tfm.shape(y)[1], tfm.shape(y)[2]
            # unit average power per sample; h_hat scaled by the same factor
            p = tfm.reduce_mean(tfm.square(y), axis=(1, 2, 3), keepdims=True)
            scale = tfm.math.divide_no_nan(1.0, tfm.sqrt(p))
            y = y * scale
            h_hat = h_hat * scale[:, None]
            # per-user stacks [B*U, S, T, C]
            yu = tfm.reshape(tfm.tile(y[:, None], [1, u, 1, 1, 1]), [b * u, s, t, -1])
            peu = tfm.reshape(tfm.tile(pe[None], [b, 1, 1, 1, 1]), [b * u, s, t, 2])
            hu = tfm.reshape(h_hat, [b * u, s, t, -1])
            z = tfm.concat([yu, peu, hu], axis=-1)
            for layer in self.init_convs:
                z = _apply(layer, z, training)
            state = z  # [B*U, S, T, d_s]
            act = tfm.reshape(active, [b, u, 1, 1, 1])
            n_other = tfm.nn.relu(tfm.reduce_sum(act, axis=1, keepdims=True) - 1.0)
            inv = tfm.where(n_other == 0.0, tfm.ones_like(n_other), tfm.math.divide_no_nan(1.0, n_other))
            for agg, upd in self.iters:
                m = state
                for layer in agg:
                    m = _apply(layer, m, training)
                m = tfm.reshape(m, [b, u, s, t, -1]) * act
                a = (tfm.reduce_sum(m, axis=1, keepdims=True) - m) * inv  # others only, averaged
                a = tfm.reshape(a, [b * u, s, t, -1])
                z = tfm.concat([a, state, peu], axis=-1)
                for layer in upd:
                    z = _apply(layer, z, training)
                state = z + state
            llr, hr = state, state
            for layer in self.readout_llr:
                llr = _apply(layer, llr, training)
            for layer in self.readout_h:
                hr = _apply(layer, hr, training)
            llr = tfm.reshape(llr, [b, u, s, t, self.cfg.num_bits_per_symbol])
            hr = tfm.reshape(hr, [b, u, s, t, 2 * self.cfg.num_rx_ant])
            return llr, hr

        # --- weights in reference order -------------------------------------------------
        def core_variables(self) -> list:
            """Trainable variables of the raw layers, in reference ``get_weights()`` order."""
            return [v for l in self.core_layers for v in _own_vars(l)]

        def get_core_weights(self) -> list:
            return [v.numpy() for v in self.core_variables()]

        def set_core_weights(self, weights, source: str = "weights") -> None:
            """Assign ``weights`` (reference order); WeightsError names index and shapes."""
            vs = self.core_variables()
            if len(weights) != len(vs):
                raise WeightsError(f"{source}: {len(weights)} arrays, model '{self.cfg.name}' "
                                   f"expects {len(vs)}")
            for i, (v, w) in enumerate(zip(vs, weights)):
                if tuple(v.shape) != tuple(w.shape):
                    raise WeightsError(f"{source}: array {i} has shape {tuple(w.shape)}, "
                                       f"expected {tuple(v.shape)} ({v.name})")
            for v, w in zip(vs, weights):
                v.assign(w)

        def block_param_counts(self) -> dict:
            """Parameter count per block (state_init, cgnn_it0.., readout_llrs, readout_chest)."""
            out: dict = {}
            for l, blk in zip(self.core_layers, self.block_of):
                out[blk] = out.get(blk, 0) + sum(int(v.shape.num_elements()) for v in _own_vars(l))
            return out

    _CLS = CGNN
    return _CLS


def _own_vars(layer) -> list:
    """Kernel(s) and bias of a raw Dense/SeparableConv2D in Keras creation order."""
    names = ("depthwise_kernel", "pointwise_kernel", "kernel", "bias")
    return [getattr(layer, n) for n in names if getattr(layer, n, None) is not None]


def _takes_training(layer) -> bool:
    return type(layer).__name__ not in ("Dense", "SeparableConv2D")


def _apply(layer, x, training):
    # wrappers (tfmot pruning) need the training flag; plain layers ignore it
    return layer(x, training=training) if _takes_training(layer) else layer(x)


def collecting_wrap(make: Callable) -> tuple[Callable, list]:
    """A ``wrap`` hook for :func:`build_cgnn` that wraps each core layer with ``make(layer)`` and
    collects the wrappers, in core-layer order, into the returned list."""
    made: list = []

    def wrap(layer):
        w = make(layer)
        made.append(w)
        return w

    return wrap, made
