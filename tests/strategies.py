"""All hypothesis strategies of the suite, and the named profile "effinrx" (bounded examples and
no deadline, so the property suite stays within the smoke budget on 2 cores)."""
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

settings.register_profile("effinrx", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("effinrx")

# ---- quantizer math ---------------------------------------------------------------------------
int_bits = st.integers(min_value=2, max_value=8)
finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def weight_tensors(draw, min_dims=1, max_dims=4, max_side=6):
    """float32 arrays of 1-4 dims with at least one non-zero value."""
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side))
    a = draw(hnp.arrays(np.float32, shape, elements=finite))
    if not np.any(a):
        a = a.copy()
        a.flat[0] = 1.0
    return a


@st.composite
def tensor_and_axis(draw):
    a = draw(weight_tensors())
    axis = draw(st.integers(min_value=-a.ndim, max_value=a.ndim - 1))
    return a, axis


minifloat_formats = st.sampled_from(["fp16", "fp8_e4m3", "fp8_e5m2", "fp4_e2m1"])
