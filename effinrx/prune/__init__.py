"""Pruning of the NRX (issue 5, claims P1-P7).

``masks`` (numpy mask logic: top-k, schedules, 2:4 checks), ``recipe`` (PruneRecipe, stable variable
names, sparsity report), ``dispatch`` (``prune_nrx``: recipe -> pruner), ``magnitude`` (tfmot ``prune_low_magnitude``,
unstructured and 2:4), ``movement`` (movement pruning, score -sum dL/dW' W), ``storage`` (per-variable
sparsity, CSR/CSC bytes, break-even) and ``accounting`` (model-level bytes and break-even curves).
TensorFlow is imported only inside the functions that need it.
"""
