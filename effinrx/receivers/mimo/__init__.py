"""Deep-unfolded MIMO detection (seed 003): the real-valued MIMO system with its data generation and
classical ZF / LMMSE / ML detectors (``system``), PGD-Net (``pgdnet``) and ADMM-Net (``admmnet``).
Their quantisation (KAQ vs QAT) is :mod:`effinrx.quant.kaq`, the experiment
:mod:`effinrx.training.kaq_experiment`, the ONNX export :mod:`effinrx.export.mimo_onnx`."""
