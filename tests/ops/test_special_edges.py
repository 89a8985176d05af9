"""Edge values and gradients (first and second order) of entr, ndtri, logit, sinc and
nanmean against PyTorch, and the tl.special aliases and orthogonal polynomials."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

NAN, INF = math.nan, math.inf


def _tl_grads(fn, xs, **kw):
    x = tl.tensor(np.array(xs, dtype=np.float64), requires_grad=True)
    y = fn(x, **kw)
    (g,) = tl.grad(y.sum(), x, create_graph=True)
    (gg,) = tl.grad(g.sum(), x)
    return y.numpy(), g.numpy(), gg.numpy()


def _torch_grads(fn, xs, **kw):
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    y = fn(x, **kw)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    return y.detach().numpy(), g.detach().numpy(), gg.numpy()


def _close(a, b, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


# (tl fn, torch fn, kwargs, inputs, which second derivatives to compare with torch)
EDGE = [
    ("entr", tl.special.entr, torch.special.entr, {},
     [0.0, -0.0, -1.0, NAN, INF, 2.0, 1e-300, 0.3]),
    ("ndtri", tl.special.ndtri, torch.special.ndtri, {},
     [0.0, 1.0, NAN, -0.5, 1.5, 0.3, 0.05, 0.97, 1e-300]),
    ("logit", tl.logit, torch.logit, {}, [0.0, 1.0, NAN, -0.5, 1.5, 0.3, 1e-300]),
    # NaN with eps: PyTorch's scalar kernel gives a NaN gradient, its vectorised one 0; we
    # follow the former (test_logit_eps_nan_gradient_is_nan)
    ("logit_eps", tl.special.logit, torch.logit, {"eps": 0.1},
     [0.0, 1.0, -0.5, 1.5, 0.3, 0.1, 0.9, 0.05, 0.95]),
    ("logit_eps0", tl.logit, torch.logit, {"eps": 0.0}, [0.0, 1.0, -0.5, 1.5, 0.3]),
    ("sinc", tl.sinc, torch.sinc, {}, [1e-3, 0.5, 1.0, -2.5, 3.7, NAN, 0.31, 0.32]),
]


@pytest.mark.parametrize("name,f,tf,kw,xs", EDGE, ids=[e[0] for e in EDGE])
def test_edges_value_and_grad_match_torch(name, f, tf, kw, xs):
    y, g, gg = _tl_grads(f, xs, **kw)
    ty, tg, tgg = _torch_grads(tf, xs, **kw)
    _close(y, ty)
    _close(g, tg)
    # second order: equal to torch where torch's is the derivative of its own gradient
    # formula at a point where that gradient is a number (documented differences: entr
    # below 0, logit at 0/1 where torch gives NaN and we give the limits)
    ok = np.isfinite(tg) & np.isfinite(tgg)
    _close(gg[ok], tgg[ok], rtol=1e-9)


def test_entr_grads_spelled_out():
    y, g, gg = _tl_grads(tl.special.entr, [0.0, -1.0, NAN, INF])
    _close(y, [0.0, -INF, NAN, -INF])
    _close(g, [INF, NAN, NAN, -INF])
    _close(gg, [-INF, NAN, NAN, 0.0])


def test_ndtri_logit_poles():
    for f in (tl.special.ndtri, tl.logit):
        y, g, gg = _tl_grads(f, [0.0, 1.0, NAN, -0.5, 1.5])
        _close(y, [-INF, INF, NAN, NAN, NAN])
        _close(g, [INF, INF, NAN, NAN, NAN])
        _close(gg, [-INF, INF, NAN, NAN, NAN])      # the limits of the second derivative


def test_logit_eps_nan_gradient_is_nan():
    _, g, _ = _tl_grads(tl.logit, [NAN, 0.5], eps=1e-3)
    assert np.isnan(g[0]) and g[1] == pytest.approx(4.0)


def _sinc_derivs(x: float):
    t = tl.tensor([x], dtype=tl.float64, requires_grad=True)
    y = tl.sinc(t)
    out = [y.numpy()[0]]
    for _ in range(3):
        (y,) = tl.grad(y.sum(), t, create_graph=True)
        out.append(y.numpy()[0])
    return out


def _sinc_exact(x: float):
    """sinc and its first three derivatives from the Taylor series (to t^40)."""
    ks = range(21)
    c = [(-1) ** k * math.pi ** (2 * k) / math.factorial(2 * k + 1) for k in ks]

    def d(m):
        s = 0.0
        for k in ks:
            p = 2 * k
            if p >= m:
                s += c[k] * math.perm(p, m) * x ** (p - m)
        return s
    return [d(m) for m in range(4)]


def test_sinc_derivatives_at_zero():
    v = _sinc_derivs(0.0)
    assert v[0] == 1.0 and v[1] == 0.0 and v[3] == 0.0
    assert v[2] == pytest.approx(-math.pi ** 2 / 3, rel=1e-15)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.floats(-0.6, 0.6), st.floats(-1e-6, 1e-6), st.sampled_from(
    [1e-9, -1e-9, 1 / math.pi, 0.3183098861837906, 0.31831, 1e-300])))
def test_sinc_higher_derivatives_accurate(x):
    got, want = _sinc_derivs(x), _sinc_exact(x)
    for m in range(4):
        assert got[m] == pytest.approx(want[m], rel=1e-12, abs=1e-12 * math.pi ** (m + 1))


@settings(max_examples=40, deadline=None)
@given(st.floats(-5, 5))
def test_sinc_values_grads_match_torch(x):
    y, g, gg = _tl_grads(tl.sinc, [x])
    ty, tg, tgg = _torch_grads(torch.sinc, [x])
    _close(y, ty, 1e-13, 1e-15)
    if abs(x) > 1e-3:       # nearer 0 torch's derivatives lose digits (quotient rule)
        _close(g, tg, 1e-11, 1e-11)
        _close(gg, tgg, 1e-8, 1e-8)


@settings(max_examples=40, deadline=None)
@given(st.floats(1e-12, 1 - 1e-12), st.sampled_from([None, 1e-3, 0.2]))
def test_logit_ndtri_random_match_torch(p, eps):
    _close(_tl_grads(tl.logit, [p], eps=eps)[1], _torch_grads(torch.logit, [p], eps=eps)[1],
           1e-9)
    for a, b in zip(_tl_grads(tl.special.ndtri, [p]), _torch_grads(torch.special.ndtri, [p])):
        _close(a, b, 1e-9, 1e-9)


def test_nanmean_all_nan_slice_gradient():
    xs = np.array([[NAN, NAN, NAN], [1.0, NAN, 3.0], [1.0, 2.0, 4.0]])
    for dim in (1, None):
        x = tl.tensor(xs, requires_grad=True)
        g = tl.grad(tl.nanmean(x, dim).sum(), x)[0].numpy()
        tx = torch.tensor(xs, requires_grad=True)
        tg = torch.autograd.grad(torch.nanmean(tx, dim).sum(), tx)[0].numpy()
        _close(g, tg)
    assert np.isnan(g[0]).all() is not None


def test_nanmean_all_nan_rows_are_nan():
    x = tl.tensor(np.array([[NAN, NAN], [1.0, NAN]]), requires_grad=True)
    g = tl.grad(tl.nanmean(x, dim=1).sum(), x)[0].numpy()
    assert np.isnan(g[0]).all()
    _close(g[1], [1.0, 0.0])


def test_special_aliases():
    x = tl.tensor([0.5, -1.5, 2.5])
    _close(tl.special.exp2(x).numpy(), torch.special.exp2(torch.tensor([0.5, -1.5, 2.5])))
    _close(tl.special.round(x).numpy(), torch.special.round(torch.tensor([0.5, -1.5, 2.5])))


POLYS = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
         "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t",
         "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
         "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he",
         "laguerre_polynomial_l", "legendre_polynomial_p"]
# no NaN: PyTorch's kernels return an uninitialised value for NaN x where the recurrence
# starts on a NaN (legendre, laguerre, chebyshev u/w ...: garbage such as 96060.5); ours NaN
_X = np.concatenate([np.linspace(-1.5, 1.5, 31), [-1.0, 1.0, 0.0, 0.5, 2.0, -2.0, 1e-20,
                                                  1 - 1e-16, -1 + 1e-16]])


@pytest.mark.parametrize("name", POLYS)
def test_polynomial_nan_x_is_nan(name):
    got = getattr(tl.special, name)(tl.tensor([NAN]), tl.tensor([1, 2, 10]))
    assert np.isnan(got.numpy()).all()


def _cmp_poly(a, b):
    b = np.asarray(b)
    err = np.abs(a - b)
    tol = 1e-9 * np.maximum(np.abs(b), 1.0)
    assert ((err <= tol) | (np.isnan(a) & np.isnan(b)) | (a == b)).all(), (a, b)


@pytest.mark.parametrize("name", POLYS)
@pytest.mark.parametrize("n", [-3, 0, 1, 2, 3, 5, 7, 9, 10, 50, 600, 2.9, -0.5])
def test_polynomial_scalar_n_matches_torch(name, n):
    got = getattr(tl.special, name)(tl.tensor(_X), n)
    want = getattr(torch.special, name)(torch.tensor(_X), n)
    assert got.dtype == tl.float64
    _cmp_poly(got.numpy(), want.numpy())


@pytest.mark.parametrize("name", POLYS)
def test_polynomial_tensor_n_broadcasts(name):
    n = np.arange(-2, 22, dtype=np.float64)[:, None] + 0.6
    got = getattr(tl.special, name)(tl.tensor(_X), tl.tensor(n))
    want = getattr(torch.special, name)(torch.tensor(_X), torch.tensor(n))
    assert got.shape == tuple(want.shape)
    _cmp_poly(got.numpy(), want.numpy())
    ni = np.arange(0, 6)[:, None]
    got = getattr(tl.special, name)(0.3, tl.tensor(ni))
    want = getattr(torch.special, name)(0.3, torch.tensor(ni))
    assert str(got.dtype) == "float32" and want.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(x=st.floats(-3, 3), n=st.integers(-2, 40), name=st.sampled_from(POLYS))
def test_polynomial_random(x, n, name):
    got = getattr(tl.special, name)(tl.tensor([x], dtype=tl.float64), n).numpy()
    want = getattr(torch.special, name)(torch.tensor([x], dtype=torch.float64), n).numpy()
    _cmp_poly(got, want)


def test_polynomial_not_differentiable_like_torch():
    x = tl.tensor([0.5, 2.0], requires_grad=True)
    y = tl.special.chebyshev_polynomial_t(x, 3)
    assert not y.requires_grad
    assert not torch.special.chebyshev_polynomial_t(
        torch.tensor([0.5], requires_grad=True), 3).requires_grad


def test_polynomial_bad_n():
    with pytest.raises(TypeError, match="legendre_polynomial_p"):
        tl.special.legendre_polynomial_p(tl.tensor([0.5]), np.array(["a"]))
