"""Quantizer math (numpy: :mod:`formats`, :mod:`storage`; TensorFlow twins: :mod:`fakequant`)."""
