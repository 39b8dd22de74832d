"""Pruning of the NRX (issue 5): sparsity accounting and sparse-storage bytes."""
