"""Input checks at the receiver boundary: NaN/Inf in the received grid ``y``, and a noise variance
``no`` that is not finite and > 0, raise a clear error instead of returning LLRs that look fine.

Why: one NaN in ``y`` made ``NRXReceiver.llr`` return finite but input-independent LLRs for that
slot (its unit-power normalisation turns the NaN into a constant), and ``no <= 0`` or NaN gave
all-NaN LLRs from the classical receivers, both silently.

Receivers run eagerly (tests, the CLI, sensitivity sweeps) and inside the link engine's
``tf.function``. Eagerly, :func:`check_inputs` raises :class:`InputError` (an
:class:`~effinrx.errors.EffinrxError`: the CLI prints one line). Inside a graph it adds a
``tf.debugging.Assert`` (a stateful op, so ``tf.function`` runs it without a data dependency);
when it fires, TensorFlow raises ``InvalidArgumentError`` whose message contains
:data:`INPUT_CHECK_TAG` and the same text, which the CLI prints as one line
(:func:`effinrx.cli.input_check_line`). The check is two ``is_finite`` reductions over ``y`` and one
over ``no``: measured in ``tests/test_input_checks.py`` against a batch of the receiver itself.
"""
from __future__ import annotations

from effinrx.errors import EffinrxError

INPUT_CHECK_TAG = "effinrx input check:"


class InputError(EffinrxError, ValueError):
    """A receiver input holds NaN/Inf, or the noise variance is not finite and > 0."""


def _tf():
    # plain import: effinrx is imported, so the legacy-Keras env is set; effinrx._tf.tf() inside a
    # traced function would make AutoGraph try to convert os.environ.setdefault and warn
    import tensorflow as t

    return t


def check_inputs(y, no, who: str, check_no: bool = True) -> None:
    """Raise (eager) or assert (graph) that complex ``y`` is all finite and ``no`` is finite > 0."""
    t = _tf()
    y = t.convert_to_tensor(y)
    if y.dtype.is_complex:
        parts = (t.math.real(y), t.math.imag(y))
    else:
        parts = (y,)
    y_ok = t.reduce_all([t.reduce_all(t.math.is_finite(p)) for p in parts])
    if check_no and no is not None:
        n = t.cast(t.convert_to_tensor(no), t.float32)
        # NaN > 0 is False, so "> 0" also refuses NaN; is_finite refuses +Inf
        no_ok = t.reduce_all(t.math.is_finite(n) & (n > 0))
    else:
        n, no_ok = None, None
    if t.executing_eagerly():
        if not bool(y_ok):
            raise InputError(f"{who}: y holds NaN/Inf in {_bad_slots(t, parts)}")
        if no_ok is not None and not bool(no_ok):
            raise InputError(f"{who}: noise variance no must be finite and > 0, got {_bad_no(n)}")
        return
    t.debugging.Assert(y_ok, [f"{INPUT_CHECK_TAG} {who}: y holds NaN/Inf"])
    if no_ok is not None:
        t.debugging.Assert(no_ok, [f"{INPUT_CHECK_TAG} {who}: noise variance no must be finite and > 0"])


def _bad_slots(t, parts) -> str:
    import numpy as np

    bad = np.zeros(parts[0].shape[:1] if parts[0].shape.rank else (1,), bool)
    for p in parts:
        a = p.numpy()
        if a.ndim == 0:
            return "the value"
        bad |= ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    idx = np.flatnonzero(bad)
    more = "" if len(idx) <= 8 else f" ... ({len(idx)} slots)"
    return f"slot(s) {', '.join(map(str, idx[:8]))}{more} of the batch of {len(bad)}"


def _bad_no(n) -> str:
    import numpy as np

    a = np.atleast_1d(n.numpy())
    bad = a[~(np.isfinite(a) & (a > 0))]
    return ", ".join(f"{v:g}" for v in bad[:4]) + ("" if len(bad) <= 4 else f" ... ({len(bad)} values)")
