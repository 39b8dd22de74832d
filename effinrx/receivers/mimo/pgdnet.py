"""PGD-Net: projected gradient descent for MIMO detection unfolded into ``K`` trainable layers.

Layer ``k`` (real-valued system, see :mod:`effinrx.receivers.mimo.system`)::

    r_k     = y - H x_k                                    residual                 [B, M]
    r_k^q   = Q_r^(k)(r_k; snr)                            fake-quantised (identity in fp32)
    g_k     = H^T r_k^q - lambda_k x_k                     gradient of 0.5||y-Hx||^2 + 0.5 lambda_k ||x||^2
    D       = (H^T H + (mu no + nu) I)^-1                  damped Gauss-Newton preconditioner [B, N, N]
    x_{k+1} = P_k( x_k + eta_k D g_k )                     proximal step
    x_{k+1} = Q_x(x_{k+1})                                 fake-quantised (identity in fp32)

``P_k`` is the proximal map of the 4-PAM constellation smoothed with temperature
``tau_k = t_k no + c_k``: ``P(z) = sum_s s softmax_s(-(z - s)^2 / tau_k)`` (the MMSE denoiser of a PAM
symbol seen in Gaussian noise of variance ``tau_k / 2``); as ``tau -> 0`` it is the hard projection
onto the constellation, as ``tau`` grows it tends to the constellation mean 0. ``no`` is the complex
noise variance ``(N / M) 10^(-snr/10)`` (:func:`effinrx.receivers.mimo.system.noise_var`). ``x_0 = 0``.

Why the preconditioner and the constellation prox (measured, 8x8 complex = 16x16 real i.i.d.
Rayleigh, 16-QAM): with plain steps ``x + eta_k g_k`` and the box clip, five layers cannot undo the
spread of ``H^T H``'s eigenvalues (a square Rayleigh system has eigenvalues near 0), and the trained
network was worse than ZF above 15 dB. ``D`` makes the first layer the (damped) LMMSE estimate
(``eta = mu = 1``, ``nu = lambda = 0``) and every later layer a regularised LS with the previous
layer's projected estimate as the prior mean, ``argmin ||y - Hx||^2 + mu' ||x - x_k||^2``: weak
eigen-directions keep the prior, strong ones follow the data. The soft prox is what lets the
iteration beat LMMSE (a box clip barely changes the LMMSE estimate). One damping for all layers,
so one ``N x N`` inverse per slot (a per-layer damping measured no better and costs K inverses).
Trainable: ``eta_k, lambda_k, t_k, c_k`` per layer and ``mu, nu`` (4K + 2 parameters), stored
directly and used through ``|.|``.

The residual is the activation we quantise with an SNR-dependent step (KAQ): its magnitude follows
the noise level, which is what ``Delta = alpha SNR^-1/2 + gamma`` models. Quantisers are plugged in by
:mod:`effinrx.quant.kaq`; this module only knows the fp32 network and the hook.
"""
from __future__ import annotations

import functools

import numpy as np

from effinrx.errors import ConfigError
from effinrx.receivers.mimo.system import PAM_LEVELS, check_unfolded, detector_inputs, generate

#: initial values (first layer = damped LMMSE, then a soft prox cooling layer by layer)
INIT = {"eta": 1.0, "lam": 0.05, "mu": 1.0, "nu": 0.02, "t": 2.0, "c": (0.2, 0.02)}
_PARAMS = ("eta", "lam", "mu", "nu", "t", "c")
_SHARED = ("mu", "nu")  # one value for all layers


def build_pgdnet(n_layers: int = 5, eta0: float = INIT["eta"], lam0: float = INIT["lam"]):
    """Return a :class:`PGDNet` (TF module) with ``n_layers`` layers."""
    check_unfolded(n_layers, eta0=eta0, lam0=lam0)
    return _pgd_class()(n_layers, eta0, lam0)


@functools.lru_cache(maxsize=None)
def _pgd_class():
    """Define the class lazily so importing this module does not import TensorFlow."""
    from effinrx._tf import tf

    tf = tf()

    class PGDNet(tf.Module):
        """Unfolded, preconditioned PGD detector with a soft constellation prox.

        ``__call__(y, h, snr_db, quant=None, return_acts=False)``: ``y`` float32 ``[B, M]``,
        ``h`` float32 ``[B, M, N]``, ``snr_db`` float32 ``[B]``; returns ``x_hat`` float32 ``[B, N]``
        (and the list of the K per-layer outputs ``[B, N]`` when ``return_acts``). ``quant`` is an
        object with ``residual(k, r, snr_db)`` and ``state(k, x)`` methods, or None for fp32.
        """

        def __init__(self, n_layers, eta0, lam0):
            super().__init__(name="pgdnet")
            self.n_layers = n_layers
            init = dict(INIT, eta=eta0, lam=lam0)
            for name in _PARAMS:
                v = init[name]
                size = 1 if name in _SHARED else n_layers
                arr = (np.linspace(v[0], v[1], size) if isinstance(v, tuple)
                       else np.full(size, v)).astype(np.float32)
                setattr(self, f"{name}_raw", tf.Variable(arr, name=name))

        @property
        def eta(self):
            return tf.abs(self.eta_raw)

        @property
        def lam(self):
            return tf.abs(self.lam_raw)

        def copy_from(self, other) -> None:
            """Copy every parameter from another PGDNet with the same number of layers."""
            if other.n_layers != self.n_layers:
                raise ConfigError(f"cannot copy a {other.n_layers}-layer PGDNet into {self.n_layers} layers")
            for name in _PARAMS:
                getattr(self, f"{name}_raw").assign(getattr(other, f"{name}_raw"))

        def __call__(self, y, h, snr_db, quant=None, return_acts=False):
            y, h, snr_db = detector_inputs(tf, y, h, snr_db, "PGDNet")
            p = {name: tf.abs(getattr(self, f"{name}_raw")) for name in _PARAMS}
            ratio = tf.cast(tf.shape(h)[2], tf.float32) / tf.cast(tf.shape(h)[1], tf.float32)
            no = ratio * tf.pow(10.0, -snr_db / 10.0)  # [B]
            gram = tf.matmul(h, h, transpose_a=True)
            eye = tf.eye(tf.shape(h)[2], dtype=tf.float32)
            damp = p["mu"][0] * no + p["nu"][0] + 1e-4
            d = tf.linalg.inv(gram + damp[:, None, None] * eye)
            levels = tf.constant(PAM_LEVELS)
            x = tf.zeros_like(h[:, 0, :])
            acts = []
            for k in range(self.n_layers):
                r = y - tf.linalg.matvec(h, x)
                if quant is not None:
                    r = quant.residual(k, r, snr_db)
                g = tf.linalg.matvec(h, r, transpose_a=True) - p["lam"][k] * x
                z = x + p["eta"][k] * tf.linalg.matvec(d, g)
                tau = (p["t"][k] * no + p["c"][k] + 1e-4)[:, None, None]
                w = tf.nn.softmax(-tf.square(z[..., None] - levels) / tau, axis=-1)
                x = tf.reduce_sum(w * levels, axis=-1)
                if quant is not None:
                    x = quant.state(k, x)
                acts.append(x)
            return (x, acts) if return_acts else x

        def describe(self) -> dict:
            out = {"type": "PGDNet", "n_layers": self.n_layers,
                   "num_params": sum(int(getattr(self, f"{n}_raw").shape[0]) for n in _PARAMS)}
            for name in _PARAMS:
                out[name] = [round(float(v), 5) for v in tf.abs(getattr(self, f"{name}_raw")).numpy()]
            return out

    return PGDNet


def train_fp32(net, cfg, *, epochs: int, steps_per_epoch: int, batch: int = 128,
               snr_db_range=(0.0, 25.0), lr: float = 1e-2, seed: int = 0, progress: bool = False):
    """Train the fp32 PGD-Net with MSE (Adam, lr halved every 10 epochs). Returns per-epoch mean loss."""
    from effinrx._tf import keras, tf

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
