"""Load the hypothesis profile for every test module; fixtures shared by several test modules."""
import pytest
import strategies  # noqa: F401  (registers and loads the "effinrx" profile)


@pytest.fixture(scope="session")
def cgnn_inputs():
    """A fixed small CGNN input (1 slot, 4 PRBs): (y [1,48,14,8], pe [2,48,14,2], h [1,2,48,14,8],
    active [1,2]) float32 tensors, seeded."""
    import numpy as np

    from effinrx._tf import tf

    t = tf()
    rng = np.random.default_rng(0)
    return (t.constant(rng.normal(size=(1, 48, 14, 8)), t.float32),
            t.constant(rng.normal(size=(2, 48, 14, 2)), t.float32),
            t.constant(rng.normal(size=(1, 2, 48, 14, 8)), t.float32), t.ones([1, 2]))
