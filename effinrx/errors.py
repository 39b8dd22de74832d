"""Error types. Every user-facing failure is an :class:`EffinrxError` whose message names the
problem (file, key, shape, dtype), so the CLI can print it without a traceback."""


class EffinrxError(Exception):
    """Base class of all errors effinrx raises on purpose."""


class ConfigError(EffinrxError, ValueError):
    """A configuration value is missing, of the wrong type, or out of range."""


class ShapeError(EffinrxError, ValueError):
    """An array has the wrong shape or dtype."""


class WeightsError(EffinrxError):
    """A weight file is missing, unsafe, corrupt, or does not fit the model."""


class GoldenError(EffinrxError):
    """A golden file is missing, corrupt, or has the wrong schema."""


class NotAvailableError(EffinrxError):
    """A capability needs hardware or a package that is not present (GPU, TensorRT)."""
