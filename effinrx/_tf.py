"""The one place TensorFlow is imported, so ``TF_USE_LEGACY_KERAS`` is always set first."""
import contextlib
import os


def tf():
    """Return the ``tensorflow`` module (imported on first use, Keras 2 via tf_keras)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow  # noqa: PLC0415 - deliberate lazy import

    return tensorflow


def keras():
    """Return tf_keras (Keras 2), the Keras that tensorflow-model-optimization supports."""
    tf()
    import tf_keras  # noqa: PLC0415

    return tf_keras


def set_seeds(seed: int) -> None:
    """Seed numpy, Python's random, and TensorFlow/Sionna if they are already imported."""
    import random
    import sys

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(seed)
    if "sionna" in sys.modules or "sionna.phy" in sys.modules:
        try:
            import sionna.phy as sp  # noqa: PLC0415

            sp.config.seed = seed
        except Exception:  # pragma: no cover - sionna absent or API change
            pass


@contextlib.contextmanager
def eager(on: bool = True):
    """Run ``tf.function``s eagerly inside the block (when ``on``), then restore the previous
    setting. Needed where a layer reads Python state per call (W8A8 calibration, switching one
    layer's quantizer): a traced graph keeps the state it saw first."""
    cfg = tf().config
    prev = cfg.functions_run_eagerly()
    if on:
        cfg.run_functions_eagerly(True)
    try:
        yield
    finally:
        cfg.run_functions_eagerly(prev)
