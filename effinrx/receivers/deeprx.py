"""DeepRx-style convolutional ResNet receiver (seed 001): frequency-domain grid in, coded-bit LLRs out.

Architecture (Table I of the PTQ paper; width/depth configurable so a CPU-trainable size exists)::

    input  [B, S, F, 2*num_rx_ant + 1]   Re/Im of y per antenna, log10(no) broadcast
    Conv2D 3x3, ``width`` channels
    ``depth`` x residual block:  LayerNorm -> ReLU -> Conv2D 3x3 -> LayerNorm -> ReLU -> Conv2D 3x3, + skip
    Conv2D 3x3, ``bits_per_symbol`` channels  ->  LLR grid [B, S, F, bits_per_symbol]

``S`` OFDM symbols (14), ``F`` subcarriers. LayerNorm normalises over (S, F, channels) per example,
as in the DeepRx / Sionna neural-receiver designs; its parameters stay float under weight-only PTQ.
Pilots are not an input: their positions and values are fixed, so the network learns to use the
DMRS symbols in the grid directly. The LLR grid is read out at the data REs (``data_mask``) in
symbol-major order (OFDM symbol, then subcarrier), the order of Sionna's resource-grid mapper.
Sign convention: the network outputs logits of ``b = 1``, i.e. Sionna's ``log p(b=1|y)/p(b=0|y)``,
trained with binary cross-entropy on the coded bits (the bit-metric-decoding-rate objective).
"""
from __future__ import annotations

import numpy as np

from effinrx.errors import ConfigError, ShapeError
from effinrx.quant.deeprx import qat_conv_class
from effinrx.receivers.base import Receiver

PAPER_WIDTH, PAPER_DEPTH = 128, 8


def build_deeprx(grid: tuple, width: int = PAPER_WIDTH, depth: int = PAPER_DEPTH, num_rx_ant: int = 2,
                 bits_per_symbol: int = 6, l2: float = 1e-6, name: str = "deeprx", qat_bits: int | None = None):
    """Return the tf_keras functional model (input/output shapes in the module docstring).

    ``grid``: ``(S, F)`` = (OFDM symbols, subcarriers); fixed because LayerNorm has one gamma/beta
    per (S, F, C) element. ``qat_bits``: use fake-quantised Conv2D kernels with learnable
    per-channel scales (:func:`effinrx.quant.deeprx.qat_conv_class`) for QAT.
    ``l2``: L2 weight regularisation on every Conv2D kernel (the paper trains with Adam + L2).
    """
    from effinrx._tf import keras

    k = keras()
    for n, v in (("width", width), ("depth", depth), ("num_rx_ant", num_rx_ant), ("bits_per_symbol", bits_per_symbol)):
        if not isinstance(v, (int, np.integer)) or v < (0 if n == "depth" else 1):
            raise ConfigError(f"build_deeprx: {n} must be a positive int, got {v!r}")
    if len(tuple(grid)) != 2 or min(grid) < 1:
        raise ConfigError(f"build_deeprx: grid must be (num_ofdm_symbols, fft_size), got {grid!r}")
    reg = k.regularizers.l2(l2) if l2 > 0 else None

    def conv(c, nm):
        if qat_bits is None:
            return k.layers.Conv2D(c, 3, padding="same", kernel_regularizer=reg, name=nm)

        return qat_conv_class()(c, 3, padding="same", kernel_regularizer=reg, name=nm, bits=qat_bits)

    inp = k.Input(shape=(int(grid[0]), int(grid[1]), 2 * num_rx_ant + 1), name="features")
    z = conv(width, "input_conv")(inp)
    for b in range(depth):
        s = z
        for j in (1, 2):
            z = k.layers.LayerNormalization(axis=(-3, -2, -1), name=f"block{b + 1}_norm{j}")(z)
            z = k.layers.ReLU(name=f"block{b + 1}_relu{j}")(z)
            z = conv(width, f"block{b + 1}_conv{j}")(z)
        z = k.layers.Add(name=f"block{b + 1}_skip")([s, z])
    out = conv(bits_per_symbol, "output_conv")(z)
    return k.Model(inp, out, name=name)


def copy_weights(src, dst) -> None:
    """Copy weights layer by layer (by name) from ``src`` into ``dst`` (e.g. fp32 -> QAT model);
    variables ``dst`` has in addition (QAT scales) are left alone."""
    for layer in src.layers:
        if layer.weights:
            tgt = dst.get_layer(layer.name)
            for v in layer.weights:
                leaf = v.name.split("/")[-1]
                match = [t for t in tgt.weights if t.name.split("/")[-1] == leaf]
                if len(match) != 1:
                    raise ShapeError(f"copy_weights: no unique {leaf!r} in layer {layer.name!r} of {dst.name}")
                match[0].assign(v)


def num_params(grid: tuple, width: int, depth: int, num_rx_ant: int = 2, bits_per_symbol: int = 6) -> int:
    """Closed-form parameter count (LayerNorm gamma/beta are per (S, F, C) element, so depend on the grid)."""
    c_in = 2 * num_rx_ant + 1
    s, f = grid
    n = 9 * c_in * width + width
    n += depth * 2 * (9 * width * width + width + 2 * s * f * width)
    n += 9 * width * bits_per_symbol + bits_per_symbol
    return n


def features(y, no):
    """Network input from ``y`` complex64 ``[B, 1, num_rx_ant, S, F]`` and ``no`` float32 ``[B]`` or
    scalar: float32 ``[B, S, F, 2*num_rx_ant + 1]``."""
    # plain import: effinrx is imported, so TF_USE_LEGACY_KERAS is set; calling effinrx._tf.tf()
    # here would make AutoGraph try to convert os.environ.setdefault when traced, and warn
    import tensorflow as tf

    y = tf.convert_to_tensor(y)
    if y.shape.rank != 5 or y.shape[1] != 1 or not y.dtype.is_complex:
        raise ShapeError(f"DeepRx expects y complex [B, 1, num_rx_ant, S, F], got {y.dtype.name} {y.shape}")
    y = tf.transpose(y[:, 0], [0, 2, 3, 1])  # [B, S, F, Nr]
    no = tf.cast(tf.convert_to_tensor(no), tf.float32)
    no = tf.broadcast_to(tf.reshape(no, [-1]) if no.shape.rank else no, [tf.shape(y)[0]])
    lno = tf.ones_like(tf.math.real(y[..., :1])) * tf.math.log(no)[:, None, None, None] / np.log(10.0)
    return tf.concat([tf.math.real(y), tf.math.imag(y), lno], axis=-1)


class DeepRxReceiver(Receiver):
    """:class:`Receiver` around a DeepRx model. ``data_mask``: bool ``[S, F]``, True at data REs."""

    needs_perfect_csi = False

    def __init__(self, model, data_mask, name: str = "deeprx", precision: str = "fp32"):
        m = np.asarray(data_mask, bool)
        if m.ndim != 2 or not m.any():
            raise ShapeError(f"data_mask must be a non-empty bool [S, F] array, got shape {m.shape}")
        self.model, self.name, self.precision = model, name, precision
        self.data_mask = m
        self._idx = np.flatnonzero(m.reshape(-1)).astype(np.int32)  # symbol-major order
        self.bits_per_symbol = int(model.output_shape[-1])

    @property
    def num_coded_bits(self) -> int:
        return int(self._idx.size * self.bits_per_symbol)

    def llr_grid(self, y, no, training: bool = False):
        """Full LLR grid float32 ``[B, S, F, bits_per_symbol]``."""
        x = features(y, no)
        if tuple(x.shape[1:3]) != self.data_mask.shape:
            raise ShapeError(f"y grid {tuple(x.shape[1:3])} does not match data_mask {self.data_mask.shape}")
        return self.model(x, training=training)

    def data_llr(self, grid):
        """Data-RE LLRs ``[B, 1, num_coded_bits]`` from an LLR grid."""
        import tensorflow as tf  # see features()

        b = tf.shape(grid)[0]
        flat = tf.reshape(grid, [b, -1, self.bits_per_symbol])
        return tf.reshape(tf.gather(flat, self._idx, axis=1), [b, 1, -1])

    def llr(self, y, no, h=None, active=None):
        return self.data_llr(self.llr_grid(y, no))

    def describe(self) -> dict:
        return {"name": self.name, "type": "DeepRxReceiver", "precision": self.precision,
                "params": int(self.model.count_params()),
                "conv_layers": [l.name for l in self.model.layers if "conv" in l.name],
                "weights_sha1": self.weights_digest()}

    def weights_digest(self) -> str:
        """SHA-1 (16 hex) of every weight (a PTQ copy holds its quantized kernels): keys the
        simulation cache, so a retrained or re-quantized model never resumes from old counts."""
        from effinrx import weights as W

        return W.arrays_sha1(self.model.get_weights()).hexdigest()[:16]


def bce_loss(rx: DeepRxReceiver, y, no, bits, training: bool = True):
    """Mean binary cross-entropy of the data-RE LLRs vs coded ``bits`` ``[B, 1, num_coded_bits]``
    (plus the model's L2 losses). Returns a float32 scalar tensor."""
    import tensorflow as tf  # see features()

    logits = rx.data_llr(rx.llr_grid(y, no, training=training))
    bits = tf.cast(bits, tf.float32)
    if bits.shape[-1] != logits.shape[-1]:
        raise ShapeError(f"bits have {bits.shape[-1]} coded bits per UE, receiver gives {logits.shape[-1]}")
    bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=bits, logits=logits))
    return bce + (tf.add_n(rx.model.losses) if rx.model.losses else 0.0)


def train(rx: DeepRxReceiver, batches, *, steps: int, lr: float = 1e-3, progress: bool = False,
          lr_end: float | None = None, max_seconds: float | None = None, checkpoint=None,
          checkpoint_every_s: float = 600.0) -> list:
    """Adam training on ``batches`` (an iterator of ``(y, no, bits)``); returns the BCE per step.

    ``lr_end``: cosine decay of the learning rate from ``lr`` to ``lr_end`` (None: constant) over
    the training progress ``max(step / steps, elapsed / max_seconds)``, so the decay completes even
    when the wall-time budget ends the run first. ``max_seconds``: stop when the wall time is spent
    (steps actually run: ``len(result)``, also ``rx.train_steps``; wall time: ``rx.train_seconds``).
    ``checkpoint``: called as ``checkpoint(losses)`` every ``checkpoint_every_s`` seconds of wall
    time, so a long run stopped from outside keeps its latest weights.
    """
    import math
    import time

    from tqdm import tqdm

    from effinrx._tf import keras, tf

    tf = tf()
    lr_var = tf.Variable(float(lr), trainable=False, dtype=tf.float32)
    opt = keras().optimizers.Adam(lr_var)
    var = rx.model.trainable_variables

    @tf.function
    def step(y, no, bits):
        with tf.GradientTape() as tape:
            loss = bce_loss(rx, y, no, bits)
        opt.apply_gradients(zip(tape.gradient(loss, var), var))
        return loss

    losses = []
    t0 = t_ckpt = time.perf_counter()
    bar = tqdm(range(steps), desc=f"train {rx.name}", disable=not progress, leave=False)
    for i in bar:
        if lr_end is not None:  # cosine from lr to lr_end: big steps first, fine steps at the end
            done = i / max(steps, 1)
            if max_seconds:  # on a loaded machine the time budget, not the step count, ends the run
                done = max(done, (time.perf_counter() - t0) / max_seconds)
            lr_var.assign(lr_end + 0.5 * (lr - lr_end) * (1 + math.cos(math.pi * min(done, 1.0))))
        y, no, bits = next(batches)
        losses.append(float(step(y, no, bits)))
        if progress and i % 10 == 0:
            bar.set_postfix(bce=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
        now = time.perf_counter()
        if checkpoint is not None and now - t_ckpt >= checkpoint_every_s:
            rx.train_seconds, rx.train_steps = now - t0, len(losses)
            checkpoint(losses)
            t_ckpt = now
        if max_seconds is not None and now - t0 > max_seconds:
            break
    rx.train_seconds = time.perf_counter() - t0
    rx.train_steps = len(losses)
    return losses
