"""Session 21c kernels: lgamma on vector registers (_gamma.h / _lgamma_tmpl.h), every
dispatch level (AVX-512, AVX2, libm), against PyTorch on values and gradients."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib import _ops

torch = pytest.importorskip("torch")

inf, nan = math.inf, math.nan
LEVELS = [2, 1, 0]


@pytest.fixture(params=LEVELS)
def level(request):
    old = _ops._vec_cap(request.param)
    yield request.param
    _ops._vec_cap(old)


def _ref(a):
    return torch.lgamma(torch.from_numpy(np.array(a))).numpy()


def _same(got, want, rtol, atol):
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    inf_ = np.isinf(want)
    np.testing.assert_array_equal(got[inf_], want[inf_])
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=atol)


SPECIAL = [0.0, -0.0, -1.0, -2.0, -7.0, -1e6, inf, -inf, nan, 1.0, 2.0, 3.0, 0.5, 1.5, 2.5,
           0.9999999, 1.0000001, 1 - 1e-12, 2 - 1e-9, 2 + 1e-7, 9.999999, 10.0, 10.5, -0.5,
           -2.5, -0.9999999, -1.0000001, -1e-30, 1e-30, 1e-38, -3.4e38, 3.4e38, 4503599.5,
           -4503599.5, 1e-5, -1e-5, 0.25, 7.25, -9.75, -170.5, 170.5]


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_special_values_every_level(level, dt):
    # odd lengths reach the masked / buffered tails of every kernel
    for n in (len(SPECIAL), 1, 3, 9):
        a = np.array((SPECIAL * 2)[:n], dtype=dt)
        got = tl.lgamma(tl.tensor(a)).numpy()
        want = _ref(a)
        if dt == np.float64:
            # relative near the roots 1 and 2, as libm
            _same(got, want, 4e-15, 0)
        else:
            _same(got, want, 2e-6, 1e-7)


def test_float64_tiny_and_denormal_inputs(level):
    # 0 < |x| < 1e-150: recomputed with libm (y (1 + y) and y d leave the normal range)
    a = np.array([1e-160, -1e-160, 5e-324, -5e-324, 1e-300, -1e-300, 1e-150, -1e-149, 1e-100,
                  -1e-100, 1e300, -1e300, 2.5e305, 1.7e308])
    _same(tl.lgamma(tl.tensor(a)).numpy(), _ref(a), 2e-15, 0)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("n", [7, 4099, 300001])
def test_random_arrays_every_level(level, dt, n):
    rng = np.random.default_rng(n)
    a = np.concatenate([rng.standard_normal(n) * 5, rng.uniform(0.4, 2.6, n // 4),
                        -rng.uniform(0, 12, n // 4), np.exp(rng.uniform(0, 80, n // 8))])
    a = a.astype(dt)
    got = tl.lgamma(tl.tensor(a)).numpy()
    # near the negative roots the reflection cancels: absolute there
    if dt == np.float64:
        _same(got, _ref(a), 1e-13, 2e-15)
    else:
        _same(got, _ref(a), 2e-6, 1e-6)


@settings(max_examples=80, deadline=None)
@given(st.floats(0.5, 2.5))
def test_property_relative_near_roots(v):
    got = tl.lgamma(tl.tensor([v], dtype=tl.float64)).item()
    want = torch.lgamma(torch.tensor([v], dtype=torch.float64)).item()
    assert got == pytest.approx(want, rel=4e-15, abs=1e-300)


@settings(max_examples=80, deadline=None)
@given(st.floats(-1e6, 1e30, allow_nan=False), st.sampled_from([np.float32, np.float64]))
def test_property_any_value(v, dt):
    a = np.array([v, v, v], dtype=dt)
    want = _ref(a)
    if dt == np.float32:
        _same(tl.lgamma(tl.tensor(a)).numpy(), want, 2e-6, 2e-6)
    else:
        _same(tl.lgamma(tl.tensor(a)).numpy(), want, 1e-13, 2e-15)


def test_shapes_strides_and_dtypes():
    for dt in (np.float32, np.float64):
        for a in (np.array(2.5, dt), np.zeros((0, 3), dt), np.full((3, 1, 4), -1.25, dt),
                  np.arange(24, dtype=dt).reshape(2, 3, 4)[:, ::2] + 0.5,
                  np.arange(12, dtype=dt).reshape(3, 4).T - 5.5):
            got = tl.lgamma(tl.tensor(a)).numpy()
            assert got.shape == a.shape and got.dtype == dt
            _same(got, _ref(a.copy()), 1e-6, 1e-6)


def test_gradients_float64_first_and_second_order():
    a = np.array([0.3, 1.7, 4.0, -0.5, -2.3, 12.5, 1.0000001, 25.0])
    x = tl.tensor(a, requires_grad=True)
    (g,) = tl.autograd.grad(tl.lgamma(x).sum(), x, create_graph=True)
    g.sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.lgamma(tx).sum(), tx, create_graph=True)
    tg.sum().backward()
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-11)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-8)


def test_gradient_float32():
    a = np.array([0.3, 1.7, -2.3, 6.5], dtype=np.float32)
    x = tl.tensor(a, requires_grad=True)
    tl.lgamma(x).sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    torch.lgamma(tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5)


def test_lgamma_into_errors():
    with pytest.raises(ValueError, match="lgamma_into"):
        _ops.lgamma_into(np.ones(3), np.empty(2))
    with pytest.raises((TypeError, ValueError)):
        _ops.lgamma_into(np.ones(3, np.float32), np.empty(3))


def test_integer_input_is_promoted_like_torch():
    got = tl.lgamma(tl.tensor([1, 2, 5])).numpy()
    want = torch.lgamma(torch.tensor([1, 2, 5])).numpy()
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)
