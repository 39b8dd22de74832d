"""Kernel-based adaptive quantization (KAQ, seed 003) vs standard QAT for the unfolded PGD-Net and
ADMM-Net (:mod:`effinrx.receivers.mimo.admmnet`; there the quantised "residual" is the dual variable).

Both methods fake-quantise, in every layer ``k``, the residual ``r_k = y - H x_k`` (signed symmetric,
``b`` bits, zero-point 0, ``qmax = 2^(b-1) - 1``) and the layer output ``x_{k+1}`` (fixed step
``x_max / qmax``: its range is the constellation box). Gradients pass the rounding with the
straight-through estimator (STE); the clip passes no gradient outside the range.

* standard QAT: one learnable static step ``Delta_k`` per layer (initialised by max calibration over
  the training SNR range), loss = MSE.
* KAQ: SNR-adaptive step ``Delta_k = alpha_k SNR^-1/2 + gamma_k`` (SNR linear; ``alpha_k, gamma_k``
  learnable and kept positive via softplus, so Delta is positive and strictly decreasing in SNR),
  loss = MSE + eps * sum_k MMD^2(x_k^fp, x_k^q) with a Gaussian kernel of learnable bandwidth
  ``sigma_k``. ``x_k^fp`` are the activations of the same network run in full precision.

Kernel bandwidth: minimising MMD over sigma is degenerate (sigma -> infinity makes every MMD zero),
so sigma_k is updated by gradient *ascent* (the most discriminative kernel, as in MMD-GAN kernel
learning) and, since ascent is degenerate too (sigma -> 0), kept within a factor ``SIGMA_SPAN`` of
its median-heuristic initial value (median pairwise distance of the fp32 activations of layer k);
the detector parameters descend. This choice is ours; the seed
summary does not say how sigma is learned.

Both methods need gradients w.r.t. the step (QAT's learnable step, KAQ's alpha/gamma) inside
``tf.function``: :func:`fake_quant` is the shared straight-through op
(``effinrx.quant.fakequant.fake_quant_ste``, narrow grid, step gradient by autodiff). Same grid as
the shared math: signed symmetric, zero-point 0, ``s * clip(round(x/s), -qmax, qmax)``.
"""
from __future__ import annotations

import time

import numpy as np

from effinrx.errors import ConfigError, ShapeError
from effinrx.quant.fakequant import fake_quant_ste
from effinrx.receivers.mimo.admmnet import build_admmnet
from effinrx.receivers.mimo.pgdnet import _progress, build_pgdnet
from effinrx.receivers.mimo.system import X_MAX, bit_errors, generate, slice_pam

METHODS = ("qat", "kaq")
SIGMA_SPAN = 4.0


def _tf():
    from effinrx._tf import tf

    return tf()


def qmax(bits: int) -> int:
    if not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise ConfigError(f"bits must be an int in 2..16, got {bits!r}")
    return 2 ** (bits - 1) - 1


def fake_quant(x, step, bits: int):
    """Signed symmetric fake quantisation with STE: ``clip(round(x/step), -qmax, qmax) * step``.

    ``x`` float32 any shape, ``step`` float32 broadcastable to ``x`` (> 0). Gradient: 1 w.r.t. ``x``
    inside the range, 0 outside; w.r.t. ``step`` as in LSQ (through the division and product).
    """
    qmax(bits)  # the int check of KAQ's bit-width
    return fake_quant_ste(x, step, int(bits), narrow=True, step_grad="autodiff")


def gaussian_mmd(a, b, sigma):
    """Biased (V-statistic) squared MMD between samples ``a`` and ``b`` with a Gaussian kernel.

    ``a``, ``b`` float32 ``[B, N]`` (rows are samples), ``sigma`` > 0 scalar. Returns a float32
    scalar ``>= 0`` (it is the squared RKHS distance of the two empirical mean embeddings; tiny
    negative round-off is clamped to 0), 0 for identical batches, symmetric in ``a``, ``b``.
    """
    tf = _tf()
    a = tf.convert_to_tensor(a, tf.float32)
    b = tf.convert_to_tensor(b, tf.float32)
    if a.shape.rank != 2 or b.shape.rank != 2 or a.shape[1] != b.shape[1]:
        raise ShapeError(f"gaussian_mmd expects a [B, N] and b [B', N], got {a.shape} and {b.shape}")
    s2 = 2.0 * tf.square(tf.convert_to_tensor(sigma, tf.float32))

    def k(u, v):
        d = tf.reduce_sum(tf.square(u), 1)[:, None] + tf.reduce_sum(tf.square(v), 1)[None, :] \
            - 2.0 * tf.matmul(u, v, transpose_b=True)
        return tf.exp(-tf.maximum(d, 0.0) / s2)

    m = tf.reduce_mean(k(a, a)) + tf.reduce_mean(k(b, b)) - 2.0 * tf.reduce_mean(k(a, b))
    return tf.maximum(m, 0.0)


def _inv_softplus(v):
    v = np.maximum(np.asarray(v, np.float64), 1e-6)
    return (v + np.log(-np.expm1(-v))).astype(np.float32)


class Quantizer:
    """Per-layer fake-quantisers plugged into :class:`PGDNet` (``residual`` and ``state`` hooks).

    ``method`` "qat": static learnable step per layer; "kaq": ``alpha_k SNR^-1/2 + gamma_k``.
    """

    def __init__(self, method: str, n_layers: int, bits: int, alpha0, gamma0, step0, sigma0=None):
        tf = _tf()
        if method not in METHODS:
            raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
        qmax(bits)
        self.method, self.n_layers, self.bits = method, n_layers, bits
        self.x_step = X_MAX / qmax(bits)
        if method == "kaq":
            self.alpha_raw = tf.Variable(_inv_softplus(alpha0), name="alpha_raw")
            self.gamma_raw = tf.Variable(_inv_softplus(gamma0), name="gamma_raw")
            s0 = np.ones(n_layers, np.float32) if sigma0 is None else np.asarray(sigma0, np.float32)
            self.sigma = tf.Variable(s0, name="mmd_sigma")
            self.sigma_lo = tf.constant(s0 / SIGMA_SPAN)
            self.sigma_hi = tf.constant(s0 * SIGMA_SPAN)
        else:
            self.step_raw = tf.Variable(_inv_softplus(step0), name="step_raw")

    @property
    def variables(self) -> list:
        """Quantiser parameters trained with the detector (not the kernel bandwidths)."""
        return [self.alpha_raw, self.gamma_raw] if self.method == "kaq" else [self.step_raw]

    def delta(self, k: int, snr_db):
        """Residual step of layer ``k`` for ``snr_db`` float32 ``[B]``: float32 ``[B]`` (> 0)."""
        tf = _tf()
        snr_db = tf.convert_to_tensor(snr_db, tf.float32)
        if self.method == "kaq":
            a = tf.nn.softplus(self.alpha_raw[k])
            g = tf.nn.softplus(self.gamma_raw[k])
            return a * tf.pow(10.0, -snr_db / 20.0) + g
        return tf.nn.softplus(self.step_raw[k]) * tf.ones_like(snr_db)

    def residual(self, k, r, snr_db):
        return fake_quant(r, self.delta(k, snr_db)[:, None], self.bits)

    def state(self, k, x):
        return fake_quant(x, self.x_step, self.bits)

    def describe(self) -> dict:
        d = {"method": self.method, "bits": self.bits, "x_step": self.x_step}
        if self.method == "kaq":
            d["alpha"] = [round(float(v), 5) for v in _tf().nn.softplus(self.alpha_raw).numpy()]
            d["gamma"] = [round(float(v), 5) for v in _tf().nn.softplus(self.gamma_raw).numpy()]
            d["sigma"] = [round(float(v), 4) for v in self.sigma.numpy()]
        else:
            d["step"] = [round(float(v), 5) for v in _tf().nn.softplus(self.step_raw).numpy()]
        return d


class _Recorder:
    """fp32 hook that records the residuals (for calibration) and changes nothing."""

    def __init__(self):
        self.r = {}

    def residual(self, k, r, snr_db):
        self.r[k] = r
        return r

    def state(self, k, x):
        return x


def calibrate(net, cfg, method: str, bits: int, snr_db_range=(0.0, 25.0), n: int = 2048, seed: int = 7):
    """Build a :class:`Quantizer` whose residual steps cover the fp32 residual range of ``net``.

    qat: ``step_k = max|r_k| / qmax`` over a batch spanning ``snr_db_range`` (max calibration).
    kaq: least-squares fit of the per-SNR ``max|r_k| / qmax`` on ``SNR^-1/2`` -> ``alpha_k, gamma_k``.
    """
    q = qmax(bits)
    rec = _Recorder()
    if method == "qat":
        d = generate(cfg, n, snr_db_range, seed=seed)
        net(d["y"], d["h"], d["snr_db"], quant=rec)
        step = [float(np.max(np.abs(rec.r[k].numpy()))) / q for k in range(net.n_layers)]
        return Quantizer("qat", net.n_layers, bits, None, None, np.array(step, np.float32))
    grid = np.linspace(snr_db_range[0], snr_db_range[1], 6)
    rows = []
    for i, s in enumerate(grid):
        d = generate(cfg, max(n // len(grid), 64), (s, s), seed=seed + i)
        net(d["y"], d["h"], d["snr_db"], quant=rec)
        rows.append([float(np.max(np.abs(rec.r[k].numpy()))) / q for k in range(net.n_layers)])
    d = generate(cfg, 256, snr_db_range, seed=seed)
    _, acts = net(d["y"], d["h"], d["snr_db"], return_acts=True)
    sigma0 = [max(_median_distance(a.numpy()), 1e-3) for a in acts]
    target = np.array(rows)  # [S, K]
    a_mat = np.stack([10.0 ** (-grid / 20.0), np.ones_like(grid)], 1)
    coef, *_ = np.linalg.lstsq(a_mat, target, rcond=None)  # [2, K]
    alpha = np.maximum(coef[0], 1e-3)
    gamma = np.maximum(coef[1], 1e-3)
    return Quantizer("kaq", net.n_layers, bits, alpha, gamma, None, sigma0)


def _median_distance(a: np.ndarray) -> float:
    d = np.sqrt(np.maximum(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1), 0.0))
    return float(np.median(d[np.triu_indices(len(a), 1)]))


def _step_fn(net, quant, opt, sigma_opt, eps: float):
    tf = _tf()
    kaq = quant.method == "kaq"
    theta = list(net.trainable_variables) + quant.variables

    @tf.function
    def step(y, h, snr_db, x):
        with tf.GradientTape(persistent=True) as tape:
            xq, acts_q = net(y, h, snr_db, quant=quant, return_acts=True)
            mse = tf.reduce_mean(tf.square(xq - x))
            mmd = tf.constant(0.0)
            if kaq:
                _, acts_fp = net(y, h, snr_db, return_acts=True)
                for k in range(net.n_layers):
                    mmd += gaussian_mmd(acts_fp[k], acts_q[k], quant.sigma[k])
            loss = mse + eps * mmd
        opt.apply_gradients(zip(tape.gradient(loss, theta), theta))
        if kaq:
            g = tape.gradient(mmd, quant.sigma)
            sigma_opt.apply_gradients([(-g, quant.sigma)])  # ascent: most discriminative kernel
            quant.sigma.assign(tf.clip_by_value(quant.sigma, quant.sigma_lo, quant.sigma_hi))
        del tape
        return mse, mmd

    return step


def build_net(arch: str, n_layers: int = 5):
    """``arch`` "pgd" (PGD-Net, init ``pgdnet.INIT``) or "admm" (ADMM-Net, rho 0.1, lambda 0.05)."""
    if arch == "pgd":
        return build_pgdnet(n_layers)
    if arch == "admm":
        return build_admmnet(n_layers)
    raise ConfigError(f"arch must be 'pgd' or 'admm', got {arch!r}")


def train_quantized(cfg, method: str, bits: int, *, epochs: int, steps_per_epoch: int, batch: int = 128,
                    n_layers: int = 5, eps: float = 0.1, lr: float = 1e-3, snr_db_range=(0.0, 25.0),
                    val=None, init_net=None, seed: int = 0, progress: bool = False, arch: str = "pgd") -> dict:
    """Quantisation-aware training of a PGD-Net / ADMM-Net (``arch``) with ``method`` ("qat" or "kaq").

    Starts from ``init_net`` (copied) or the network's own init (``pgdnet.INIT``; ADMM-Net rho 0.1,
    lambda 0.05). Adam, lr halved
    every 10 epochs, fresh data every step (same seed -> same data for both methods). ``val`` is a
    fixed batch dict (from :func:`effinrx.receivers.mimo.system.generate`) for the per-epoch validation MSE.

    Returns ``{"net", "quant", "val_mse": [epochs], "val_err": float32 [epochs, V] (per validation
    vector, for paired intervals), "train_mse": [epochs], "train_mmd": [epochs], "seconds"}``.
    """
    from effinrx._tf import keras

    tf = _tf()
    if epochs < 1 or steps_per_epoch < 1:
        raise ConfigError(f"epochs and steps_per_epoch must be >= 1, got {epochs}, {steps_per_epoch}")
    net = build_net(arch, n_layers)
    if init_net is not None:
        net.copy_from(init_net)
    quant = calibrate(net, cfg, method, bits, snr_db_range)
    opt = keras().optimizers.Adam(lr)
    sigma_opt = keras().optimizers.Adam(1e-2)
    step = _step_fn(net, quant, opt, sigma_opt, eps)
    gen = tf.random.Generator.from_seed(seed)
    out = {"val_mse": [], "val_err": [], "train_mse": [], "train_mmd": []}
    t0 = time.perf_counter()
    for ep in _progress(range(epochs), progress, f"{arch} {method} {bits}-bit"):
        opt.learning_rate.assign(lr * 0.5 ** (ep // 10))
        mse_acc = mmd_acc = 0.0
        for _ in range(steps_per_epoch):
            d = generate(cfg, batch, snr_db_range, rng=gen)
            mse, mmd = step(d["y"], d["h"], d["snr_db"], d["x"])
            mse_acc += float(mse)
            mmd_acc += float(mmd)
        out["train_mse"].append(mse_acc / steps_per_epoch)
        out["train_mmd"].append(mmd_acc / steps_per_epoch)
        if val is not None:
            err = val_errors(net, val, quant)
            out["val_err"].append(err)
            out["val_mse"].append(float(np.mean(err)))
    out.update(net=net, quant=quant, seconds=time.perf_counter() - t0)
    out["val_err"] = np.asarray(out["val_err"], np.float32)
    return out


def val_errors(net, val: dict, quant=None) -> np.ndarray:
    """Per-vector mean squared error on the validation batch: float32 ``[V]``."""
    xh = net(val["y"], val["h"], val["snr_db"], quant=quant)
    return np.mean((np.asarray(xh) - np.asarray(val["x"])) ** 2, axis=1).astype(np.float32)


def val_mse(net, val: dict, quant=None) -> float:
    return float(np.mean(val_errors(net, val, quant)))


def convergence_gap(run_a: dict, run_b: dict, alpha: float = 0.05) -> dict:
    """Area under the validation-MSE curve (mean over epochs) of run ``a`` minus run ``b``, paired
    per validation vector, with a two-sided ``1 - alpha`` normal interval: lower = ``a`` converged
    faster over the training budget. ``run_*["val_err"]`` float ``[epochs, V]`` on the same vectors.

    The interval covers validation sampling only, not training-seed variance (one training run per
    method); a seed sweep is what would add that.
    """
    from statistics import NormalDist

    a, b = np.asarray(run_a["val_err"], np.float64), np.asarray(run_b["val_err"], np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.size == 0:
        raise ShapeError(f"val_err curves must be equal [epochs, V] arrays, got {a.shape} and {b.shape}")
    d = a.mean(axis=0) - b.mean(axis=0)  # [V]
    half = NormalDist().inv_cdf(1 - alpha / 2) * d.std(ddof=1) / np.sqrt(d.size)
    m = float(d.mean())
    return {"diff": m, "lo": m - half, "hi": m + half, "auc_a": float(a.mean()), "auc_b": float(b.mean()),
            "vectors": int(d.size), "epochs": int(a.shape[0])}


def ber_counts(net, cfg, snrs_db, n_vectors: int, quant=None, seed: int = 123, chunk: int = 4096) -> dict:
    """Bit-error counts per SNR: ``{snr: {"errors": int, "blocks": int}}`` (``blocks`` = bits)."""
    tf = _tf()
    out = {}
    for i, s in enumerate(snrs_db):
        gen = tf.random.Generator.from_seed(seed + 1000 * i)
        e = nb = 0
        left = n_vectors
        while left > 0:
            b = min(chunk, left)
            d = generate(cfg, b, (s, s), rng=gen)
            xh = net(d["y"], d["h"], d["snr_db"], quant=quant).numpy()
            ee, bb = bit_errors(slice_pam(xh), d["idx"].numpy())
            e, nb, left = e + ee, nb + bb, left - b
        out[float(s)] = {"errors": int(e), "blocks": int(nb)}
    return out


def epochs_to_threshold(curve, threshold: float) -> int:
    """1-based first epoch whose loss is ``<= threshold``; ``len(curve) + 1`` if never reached."""
    for i, v in enumerate(curve):
        if v <= threshold:
            return i + 1
    return len(curve) + 1
