"""Load the hypothesis profile for every test module."""
import strategies  # noqa: F401  (registers and loads the "effinrx" profile)
