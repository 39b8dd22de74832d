"""ADMM-Net: ADMM for box-constrained regularised least squares unfolded into ``K`` layers.

Problem: ``min_x 0.5||y - Hx||^2 + 0.5 lambda ||x||^2`` s.t. ``x`` in the constellation box
``[-x_max, x_max]^N``, split as ``x = z``. Layer ``k`` (scaled dual ``u``)::

    x_{k+1} = (H^T H + (lambda_k + rho_k) I)^-1 (H^T y + rho_k (z_k - u_k))
    z_{k+1} = Q_x( clip(x_{k+1} + u_k, -x_max, x_max) )        state, fake-quantised
    u_{k+1} = Q_r( u_k + x_{k+1} - z_{k+1} ; snr )             dual residual, fake-quantised

The dual residual ``x - z`` is the activation whose size follows the noise level, so it takes the
SNR-adaptive step in KAQ (same hook names as :mod:`effinrx.receivers.mimo.pgdnet`: ``residual``,
``state``). Trainable: ``rho_k`` (stored in ``eta_raw``, init 0.1) and ``lambda_k`` (init 0.05),
used through ``|.|``. ``z_0 = u_0 = 0``; output ``z_K``. Shapes as PGDNet: ``y`` ``[B, M]``,
``h`` ``[B, M, N]``, ``snr_db`` ``[B]`` -> ``[B, N]`` float32.
"""
from __future__ import annotations

import functools

import numpy as np

from effinrx.errors import ConfigError
from effinrx.receivers.mimo.system import X_MAX, check_unfolded, detector_inputs


def build_admmnet(n_layers: int = 5, rho0: float = 0.1, lam0: float = 0.05):
    """Return an :class:`ADMMNet` (TF module) with ``n_layers`` layers."""
    check_unfolded(n_layers, rho0=rho0, lam0=lam0)
    return _admm_class()(n_layers, rho0, lam0)


@functools.lru_cache(maxsize=None)
def _admm_class():
    """Define the class lazily so importing this module does not import TensorFlow."""
    from effinrx._tf import tf

    tf = tf()

    class ADMMNet(tf.Module):
        """Unfolded ADMM detector; ``__call__(y, h, snr_db, quant=None, return_acts=False)``."""

        def __init__(self, n_layers, rho0, lam0):
            super().__init__(name="admmnet")
            self.n_layers = n_layers
            self.eta_raw = tf.Variable(np.full(n_layers, rho0, np.float32), name="rho")
            self.lam_raw = tf.Variable(np.full(n_layers, lam0, np.float32), name="lambda")

        def copy_from(self, other) -> None:
            if other.n_layers != self.n_layers:
                raise ConfigError(f"cannot copy a {other.n_layers}-layer net into {self.n_layers} layers")
            self.eta_raw.assign(other.eta_raw)
            self.lam_raw.assign(other.lam_raw)

        def __call__(self, y, h, snr_db, quant=None, return_acts=False):
            y, h, snr_db = detector_inputs(tf, y, h, snr_db, "ADMMNet")
            rho, lam = tf.abs(self.eta_raw), tf.abs(self.lam_raw)
            gram = tf.matmul(h, h, transpose_a=True)
            hty = tf.linalg.matvec(h, y, transpose_a=True)
            eye = tf.eye(tf.shape(h)[2], dtype=tf.float32)
            z = tf.zeros_like(hty)
            u = tf.zeros_like(hty)
            acts = []
            for k in range(self.n_layers):
                a = gram + (lam[k] + rho[k]) * eye
                x = tf.linalg.solve(a, (hty + rho[k] * (z - u))[..., None])[..., 0]
                z = tf.clip_by_value(x + u, -X_MAX, X_MAX)
                if quant is not None:
                    z = quant.state(k, z)
                u = u + x - z
                if quant is not None:
                    u = quant.residual(k, u, snr_db)
                acts.append(z)
            return (z, acts) if return_acts else z

        def describe(self) -> dict:
            return {"type": "ADMMNet", "n_layers": self.n_layers,
                    "rho": [round(float(v), 5) for v in tf.abs(self.eta_raw).numpy()],
                    "lambda": [round(float(v), 5) for v in tf.abs(self.lam_raw).numpy()],
                    "num_params": 2 * self.n_layers}

    return ADMMNet
