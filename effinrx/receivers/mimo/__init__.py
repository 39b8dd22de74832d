"""Deep-unfolded MIMO detection (seed 003): real-valued MIMO data, classical detectors, PGD-Net and
kernel-based adaptive quantization (KAQ) vs standard quantization-aware training."""
