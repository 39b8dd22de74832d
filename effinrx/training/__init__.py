"""Training loops and the experiments that train before they count: NRX training on UMi slots
(``nrx``), Large -> RT distillation (``distill``), DeepRx training and its PTQ/QAT evaluation set-up
(``deeprx``, ``deeprx_eval``), and the fp32 / QAT / KAQ race on the unfolded MIMO detectors
(``kaq_experiment``). TensorFlow is imported only inside the functions that need it."""
