"""PGD-Net: projected gradient descent for MIMO detection unfolded into ``K`` trainable layers.

Layer ``k`` (real-valued system, see :mod:`effinrx.unfolded.mimo`)::

    r_k     = y - H x_k                      residual                       [B, M]
    r_k^q   = Q_r^(k)(r_k; snr)              fake-quantised (identity in fp32)
    x_{k+1} = P( x_k + eta_k (H^T r_k^q - lambda_k x_k) )
    x_{k+1} = Q_x(x_{k+1})                   fake-quantised (identity in fp32)

i.e. a gradient step on ``0.5||y - Hx||^2 + 0.5 lambda_k ||x||^2`` (``lambda_k`` is the Tikhonov
regulariser; its fixed point is the LMMSE solution when ``lambda = no``) followed by the proximal map
of the constellation box, the projection ``P = clip(., -x_max, x_max)``. ``x_0 = 0``. Trainable:
``eta_k`` (init 0.1) and ``lambda_k`` (init 0.05), stored directly (so Adam at lr 1e-3 moves them
at a useful rate) and used through ``|.|`` so they stay non-negative.

The residual is the activation we quantise with an SNR-dependent step (KAQ): its magnitude follows
the noise level, which is what ``Delta = alpha SNR^-1/2 + gamma`` models. Quantisers are plugged in by
:mod:`effinrx.unfolded.kaq`; this module only knows the fp32 network and the hook.
"""
from __future__ import annotations

import numpy as np

from effinrx.errors import ConfigError, ShapeError
from effinrx.unfolded.mimo import X_MAX


def build_pgdnet(n_layers: int = 5, eta0: float = 0.1, lam0: float = 0.05):
    """Return a :class:`PGDNet` (TF module) with ``n_layers`` layers."""
    if not isinstance(n_layers, int) or n_layers < 1:
        raise ConfigError(f"n_layers must be a positive int, got {n_layers!r}")
    if eta0 <= 0 or lam0 <= 0:
        raise ConfigError(f"eta0 and lam0 must be > 0, got {eta0}, {lam0}")
    return _pgd_class()(n_layers, eta0, lam0)


_CLS = None


def _pgd_class():
    """Define the class lazily so importing this module does not import TensorFlow."""
    global _CLS
    if _CLS is not None:
        return _CLS
    from effinrx._tf import tf

    tf = tf()

    class PGDNet(tf.Module):
        """Unfolded PGD detector.

        ``__call__(y, h, snr_db, quant=None, return_acts=False)``: ``y`` float32 ``[B, M]``,
        ``h`` float32 ``[B, M, N]``, ``snr_db`` float32 ``[B]``; returns ``x_hat`` float32 ``[B, N]``
        (and the list of the K per-layer outputs ``[B, N]`` when ``return_acts``). ``quant`` is an
        object with ``residual(k, r, snr_db)`` and ``state(k, x)`` methods, or None for fp32.
        """

        def __init__(self, n_layers, eta0, lam0):
            super().__init__(name="pgdnet")
            self.n_layers = n_layers
            self.eta_raw = tf.Variable(np.full(n_layers, eta0, np.float32), name="eta")
            self.lam_raw = tf.Variable(np.full(n_layers, lam0, np.float32), name="lambda")

        @property
        def eta(self):
            return tf.abs(self.eta_raw)

        @property
        def lam(self):
            return tf.abs(self.lam_raw)

        def copy_from(self, other) -> None:
            """Copy eta/lambda from another PGDNet with the same number of layers."""
            if other.n_layers != self.n_layers:
                raise ConfigError(f"cannot copy a {other.n_layers}-layer PGDNet into {self.n_layers} layers")
            self.eta_raw.assign(other.eta_raw)
            self.lam_raw.assign(other.lam_raw)

        def __call__(self, y, h, snr_db, quant=None, return_acts=False):
            y = tf.convert_to_tensor(y, tf.float32)
            h = tf.convert_to_tensor(h, tf.float32)
            snr_db = tf.convert_to_tensor(snr_db, tf.float32)
            if y.shape.rank != 2 or h.shape.rank != 3:
                raise ShapeError(f"PGDNet expects y [B, M] and h [B, M, N], got {y.shape}, {h.shape}")
            eta, lam = self.eta, self.lam
            x = tf.zeros_like(h[:, 0, :])
            acts = []
            for k in range(self.n_layers):
                r = y - tf.linalg.matvec(h, x)
                if quant is not None:
                    r = quant.residual(k, r, snr_db)
                g = tf.linalg.matvec(h, r, transpose_a=True) - lam[k] * x
                x = tf.clip_by_value(x + eta[k] * g, -X_MAX, X_MAX)
                if quant is not None:
                    x = quant.state(k, x)
                acts.append(x)
            return (x, acts) if return_acts else x

        def describe(self) -> dict:
            return {"type": "PGDNet", "n_layers": self.n_layers,
                    "eta": [round(float(v), 5) for v in self.eta.numpy()],
                    "lambda": [round(float(v), 5) for v in self.lam.numpy()],
                    "num_params": 2 * self.n_layers}

    _CLS = PGDNet
    return _CLS


def train_fp32(net, cfg, *, epochs: int, steps_per_epoch: int, batch: int = 128,
               snr_db_range=(0.0, 25.0), lr: float = 1e-3, seed: int = 0, progress: bool = False):
    """Train the fp32 PGD-Net with MSE (Adam, lr halved every 10 epochs). Returns per-epoch mean loss."""
    from effinrx._tf import keras, tf
    from effinrx.unfolded.mimo import generate

    tf = tf()
    opt = keras().optimizers.Adam(lr)
    gen = tf.random.Generator.from_seed(seed)
    step = _fp32_step(net, opt)
    losses = []
    for ep in _progress(range(epochs), progress, "fp32 PGD-Net"):
        opt.learning_rate.assign(lr * 0.5 ** (ep // 10))
        acc = 0.0
        for _ in range(steps_per_epoch):
            d = generate(cfg, batch, snr_db_range, rng=gen)
            acc += float(step(d["y"], d["h"], d["snr_db"], d["x"]))
        losses.append(acc / steps_per_epoch)
    return losses


def _fp32_step(net, opt):
    from effinrx._tf import tf

    tf = tf()

    @tf.function
    def step(y, h, snr_db, x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(y, h, snr_db) - x))
        v = net.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, v), v))
        return loss

    return step


def _progress(it, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(it, desc=desc, disable=not enabled, leave=False)
