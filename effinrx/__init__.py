"""effinrx: what does quantizing, pruning or distilling a neural receiver cost and buy?

Importing this package is cheap: TensorFlow, Sionna, ONNX and TensorRT are imported only inside
the functions that need them. The package sets ``TF_USE_LEGACY_KERAS=1`` before anything can import
TensorFlow, because tensorflow-model-optimization (pruning) only works with Keras 2 (tf_keras),
and ``TF_CPP_MIN_LOG_LEVEL=2`` (TensorFlow's C++ INFO/WARNING lines), both with ``setdefault`` so
a value the user set wins. The CUDA/XLA start-up lines a CUDA build prints on a CPU host ignore
that variable; :func:`effinrx._tf.tf` filters them on the first import (``EFFINRX_TF_QUIET=0``
shows them).
"""
import os as _os

# Must happen before TensorFlow is first imported anywhere in the process.
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from effinrx.errors import EffinrxError  # cheap, no heavy imports

__all__ = ["EffinrxError", "__version__"]
