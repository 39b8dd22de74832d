"""Receiver inputs checked at the library boundary (effinrx.receivers.checks): NaN/Inf in y and a
noise variance that is not finite and > 0 raise a clear error, eagerly and inside tf.function."""
import numpy as np
import pytest

from effinrx.receivers.checks import INPUT_CHECK_TAG, InputError


def _grid(b, prbs, seed=0):
    rng = np.random.default_rng(seed)
    shape = (b, 1, 4, 14, 12 * prbs)
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)


@pytest.fixture(scope="module")
def nrx():
    from effinrx.receivers.nrx import NRXReceiver

    return NRXReceiver("nrx-rt", None, num_prbs=1)  # random init: the check is weight-independent


@pytest.fixture(scope="module")
def ls():
    from effinrx.link.config import Scenario
    from effinrx.receivers import classical

    return classical.make("ls-lmmse", Scenario(num_prbs=1))


@pytest.mark.parametrize("which", ["nrx", "ls"])
def test_nan_inf_in_y_and_bad_no_are_refused_eagerly(which, request):
    rx = request.getfixturevalue(which)
    y, no = _grid(4, 1), np.full(4, 0.1, np.float32)
    assert np.isfinite(rx.llr(y, no).numpy()).all()
    bad = y.copy()
    bad[2, 0, 1, 3, 5] = np.nan
    with pytest.raises(InputError, match=r"y holds NaN/Inf in slot\(s\) 2 of the batch of 4"):
        rx.llr(bad, no)
    bad = y.copy()
    bad[1, 0, 0, 0, 0] = complex(0, np.inf)
    with pytest.raises(InputError, match=r"slot\(s\) 1 "):
        rx.llr(bad, no)
    for v, shown in ((0.0, "0"), (-1.0, "-1"), (np.nan, "nan"), (np.inf, "inf")):
        n = no.copy()
        n[3] = v
        with pytest.raises(InputError, match=f"no must be finite and > 0, got {shown}"):
            rx.llr(y, n)
    with pytest.raises(InputError, match="got 0"):
        rx.llr(y, np.float32(0))  # scalar no


def test_graph_mode_check_fires_and_the_cli_prints_one_line(nrx, ls):
    from effinrx._tf import tf
    from effinrx.cli import input_check_line

    t = tf()
    y, no = _grid(2, 1), np.full(2, 0.1, np.float32)
    bad = y.copy()
    bad[0, 0, 0, 0, 0] = np.nan
    for rx in (nrx, ls):
        f = t.function(lambda a, b, rx=rx: rx.llr(a, b))
        f(t.constant(y), t.constant(no))  # traced with the check in the graph
        with pytest.raises(t.errors.InvalidArgumentError) as e:
            f(t.constant(bad), t.constant(no))
        assert INPUT_CHECK_TAG in e.value.message
        assert input_check_line(e.value) == f"{rx.name}: y holds NaN/Inf"
        with pytest.raises(t.errors.InvalidArgumentError) as e:
            f(t.constant(y), t.constant(np.zeros(2, np.float32)))
        assert input_check_line(e.value) == f"{rx.name}: noise variance no must be finite and > 0"
    assert input_check_line(ValueError("x")) is None


def test_check_cost_is_small_against_a_batch(nrx):
    """The eager check on a 16-slot batch costs well under the batch's own LLR time (measured on
    2 cores: about 0.5 ms vs 70 ms for 32 slots at 4 PRBs; asserted loosely, shared runners)."""
    import time

    from effinrx._tf import tf
    from effinrx.receivers.checks import check_inputs

    t = tf()
    y, no = t.constant(_grid(16, 1)), t.constant(np.full(16, 0.1, np.float32))
    nrx.llr(y, no)

    def best(fn, n=5):
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return min(out)

    full = best(lambda: nrx.llr(y, no).numpy())
    chk = best(lambda: check_inputs(y, no, "x"))
    assert chk < 0.25 * full, (chk, full)
