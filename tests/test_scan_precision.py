"""float32 running sums and products accumulate in double on the CPU, as PyTorch's: a
float32 accumulator drifts by 1e-4 relative over 10^5 terms (a trial's CDFs and running
integrals were visibly off)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name,value", [("cumsum", 0.1), ("cumprod", 1.0000001)])
def test_long_float32_scans_match_double_accumulation(name, value):
    a = np.full(100000, value, dtype=np.float32)
    got = getattr(tl.tensor(a), name)(0).numpy()
    exact = getattr(np, name)(a.astype(np.float64))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, exact, rtol=2e-7)
    np.testing.assert_array_equal(got, getattr(torch.tensor(a), name)(0).numpy())


def test_logcumsumexp_and_cumulative_trapezoid_float32():
    b = np.full(100000, 1e-5, dtype=np.float32)
    got = tl.logcumsumexp(tl.tensor(b), 0).numpy()
    np.testing.assert_allclose(got[-1], np.log(1e5) + 1e-5, rtol=2e-7)
    a = np.full(100000, 0.1, dtype=np.float32)
    np.testing.assert_allclose(tl.cumulative_trapezoid(tl.tensor(a)).numpy()[-1],
                               torch.cumulative_trapezoid(torch.tensor(a))[-1].item(), rtol=2e-7)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=4), data=st.data())
def test_scans_of_every_axis_and_layout(shape, data):
    rng = np.random.default_rng(len(shape))
    x = (rng.random(shape) + 0.5).astype(np.float32)
    if data.draw(st.booleans()) and len(shape) > 1:
        x = np.swapaxes(x, 0, -1)           # a non-contiguous input
    ax = data.draw(st.integers(-x.ndim, x.ndim - 1))
    for name in ("cumsum", "cumprod"):
        got = getattr(tl.tensor(x), name)(ax)
        want = getattr(torch.tensor(x), name)(ax).numpy()
        assert got.dtype == tl.float32 and got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-30)
