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


@pytest.mark.parametrize("shape,axis", [((6,), 0), ((3, 7), 1), ((4, 3, 5), 0), ((2, 9), -1)])
def test_cumprod_gradients_with_zeros_match_torch_to_second_order(shape, axis):
    """cumprod's backward as a reverse linear recurrence (it built an (n, n) matrix of
    partial products: 7-42 s and gigabytes for a (1024, 1024) input)."""
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    x.flat[::4] = 0.0
    x.flat[1] = 0.0
    w = rng.standard_normal(shape)
    a = tl.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    (ga,) = tl.autograd.grad((a.cumprod(axis) * tl.tensor(w)).sum(), [a], create_graph=True)
    (gt,) = torch.autograd.grad((t.cumprod(axis) * torch.tensor(w)).sum(), [t],
                                create_graph=True)
    np.testing.assert_allclose(ga.detach().numpy(), gt.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    (ga * ga).sum().backward()
    (gt * gt).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_cumprod_backward_of_a_long_scan():
    x = tl.tensor(np.random.default_rng(0).uniform(0.5, 1.5, (4, 4096)).astype(np.float32),
                  requires_grad=True)
    x.cumprod(1).sum().backward()
    t = torch.tensor(x.detach().numpy(), requires_grad=True)
    t.cumprod(1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-3,
                               atol=1e-3 * float(t.grad.abs().max()))
