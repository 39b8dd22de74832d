"""Root conftest: the effinrx plugin (tiers, seeds, markers, golden checks, tolerance report)."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

pytest_plugins = ["effinrx.claims.pytest_plugin"]
