"""Benchmark-suite fixtures and markers (the effinrx plugin in the root conftest does tiers, seeds,
goldens and the report).

``@pytest.mark.reference_weights``: the test needs NVIDIA's reference NRX weights
(``$EFFINRX_NRX_WEIGHTS``, default ``../shared/reference/neural_rx``; research-only, never shipped)
and is skipped with that reason when they are absent.
"""
import pytest

REFERENCE_REASON = ("reference NRX weights absent: set EFFINRX_NRX_WEIGHTS to a copy of NVlabs/neural_rx's "
                    "weights/ (default ../shared/reference/neural_rx)")


def pytest_configure(config):
    config.addinivalue_line("markers", "reference_weights: needs NVIDIA's reference NRX weights (skipped without)")


def pytest_runtest_setup(item):
    if item.get_closest_marker("reference_weights") is not None:
        from effinrx.weights import reference_dir

        if reference_dir() is None:
            pytest.skip(REFERENCE_REASON)
