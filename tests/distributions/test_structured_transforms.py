"""The structured transforms of tl.distributions.transforms (softplus, stick breaking,
lower-Cholesky, correlation-Cholesky, positive-definite, cumulative-distribution) against
torch.distributions.transforms in float64: values, inverses, log-Jacobians and their
gradients; round trips; log-Jacobians against finite-difference Jacobian determinants;
gradcheck / gradgradcheck; shapes, caching, equality and errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import distributions as D
from tensorlib.distributions import transforms as T
from tensorlib.distributions.transforms_extra import tril_matrix_to_vec, vec_to_tril_matrix

torch = pytest.importorskip("torch")
TT = torch.distributions.transforms
TU = torch.distributions.utils
rng = np.random.default_rng(1)

batch_shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)


def close(a, b, rtol=1e-9, atol=1e-11):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def grads_agree(fo, ft, x, rtol=1e-8, atol=1e-10):
    """``fo(xo)`` == ``ft(xt)`` and so are the gradients of a random weighted sum."""
    xo = tl.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    yo, yt = fo(xo), ft(xt)
    close(yo, yt, rtol, atol)
    w = rng.standard_normal(tuple(yt.shape))
    (yo * tl.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    close(xo.grad, xt.grad, rtol, atol)


def fd_jacobian(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference Jacobian of a map of 1-d float64 arrays (computed with tensorlib)."""
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        cols.append((f(x + e) - f(x - e)) / (2 * eps))
    return np.stack(cols, axis=-1)


def tl_map(fn):
    return lambda a: fn(tl.tensor(a)).numpy()


def lower_vec(m, k=0):
    rows, cols = np.tril_indices(m.shape[-1], k=k)
    return m[..., rows, cols]


# ------------------------------------------------------------------ forward / inverse / ladj

# name -> (input maker from (batch, size), has torch ladj)
CASES = {
    "SoftplusTransform": (lambda b, n: rng.standard_normal(b + (n,)) * 3, True),
    "StickBreakingTransform": (lambda b, n: rng.standard_normal(b + (n,)) * 2, True),
    "LowerCholeskyTransform": (lambda b, n: rng.standard_normal(b + (n, n)), False),
    "PositiveDefiniteTransform": (lambda b, n: rng.standard_normal(b + (n, n)) * 0.5, False),
    "CorrCholeskyTransform": (lambda b, n: rng.standard_normal(b + (n * (n + 1) // 2,)), True),
}


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=12, deadline=None)
@given(batch=batch_shapes, n=st.integers(1, 4))
def test_values_inverse_and_ladj_match_torch(name, batch, n):
    make, torch_ladj = CASES[name]
    x = make(batch, n)
    a, b = getattr(T, name)(), getattr(TT, name)()
    grads_agree(a, b, x)
    y = b(torch.tensor(x)).numpy()
    grads_agree(a.inv, b.inv, y, rtol=1e-7, atol=1e-9)
    assert a.forward_shape(x.shape) == tuple(b.forward_shape(x.shape)) == y.shape
    assert a.inverse_shape(y.shape) == tuple(b.inverse_shape(y.shape))
    if torch_ladj:
        grads_agree(lambda v: a.log_abs_det_jacobian(v, a(v)),
                    lambda v: b.log_abs_det_jacobian(v, b(v)), x, rtol=1e-7, atol=1e-9)
    else:
        with pytest.raises(NotImplementedError):
            b.log_abs_det_jacobian(torch.tensor(x), torch.tensor(y))
        assert tuple(a.log_abs_det_jacobian(tl.tensor(x), tl.tensor(y)).shape) == batch
    assert a.domain.event_dim == b.domain.event_dim
    assert a.codomain.event_dim == b.codomain.event_dim
    assert a.bijective == b.bijective
    # the image lies in the codomain, by tensorlib's check and by torch's
    assert a.codomain.check(tl.tensor(y)).numpy().all()
    assert b.codomain.check(torch.tensor(y)).numpy().all()


@pytest.mark.parametrize("name", ["SoftplusTransform", "StickBreakingTransform",
                                  "CorrCholeskyTransform"])
@settings(max_examples=10, deadline=None)
@given(batch=batch_shapes, n=st.integers(1, 4))
def test_bijections_round_trip(name, batch, n):
    x = CASES[name][0](batch, n)
    t = getattr(T, name)()
    y = t(tl.tensor(x))
    close(t.inv(y), x, rtol=1e-8, atol=1e-10)
    # the inverse's log-Jacobian is minus the forward one
    close(t.inv.log_abs_det_jacobian(y, tl.tensor(x)),
          -t.log_abs_det_jacobian(tl.tensor(x), y).numpy(), atol=1e-12)


@pytest.mark.parametrize("name", ["LowerCholeskyTransform", "PositiveDefiniteTransform"])
def test_matrix_transforms_round_trip_on_the_lower_triangle(name):
    x = rng.standard_normal((2, 3, 4, 4)) * 0.5
    t = getattr(T, name)()
    # the upper triangle is dropped: inv(t(x)) gives back the lower triangle of x
    close(t.inv(t(tl.tensor(x))), np.tril(x), rtol=1e-8, atol=1e-10)
    y = t(tl.tensor(x)).numpy()
    close(t(t.inv(tl.tensor(y))), y, rtol=1e-8, atol=1e-10)


# ------------------------------------------------------------------ ladj = log |det J| by FD

def test_softplus_ladj_is_the_log_derivative():
    x = np.linspace(-30.0, 30.0, 41)
    t = T.SoftplusTransform()
    d = np.diag(fd_jacobian(tl_map(t), x))
    close(t.log_abs_det_jacobian(tl.tensor(x), t(tl.tensor(x))), np.log(d), rtol=1e-6,
          atol=1e-8)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_stick_breaking_ladj_matches_finite_differences(k):
    # the simplex has k free coordinates: the Jacobian of x -> y[:-1]
    t = T.StickBreakingTransform()
    for _ in range(3):
        x = rng.standard_normal(k)
        jac = fd_jacobian(lambda a: t(tl.tensor(a)).numpy()[:-1], x)
        ladj = t.log_abs_det_jacobian(tl.tensor(x), t(tl.tensor(x))).item()
        assert ladj == pytest.approx(np.linalg.slogdet(jac)[1], rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_corr_cholesky_ladj_matches_finite_differences(d):
    # free coordinates of the image: the strictly lower triangle
    t = T.CorrCholeskyTransform()
    for _ in range(3):
        x = rng.standard_normal(d * (d - 1) // 2)
        jac = fd_jacobian(lambda a: lower_vec(t(tl.tensor(a)).numpy(), -1), x)
        ladj = t.log_abs_det_jacobian(tl.tensor(x), t(tl.tensor(x))).item()
        assert ladj == pytest.approx(np.linalg.slogdet(jac)[1], rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("name", ["LowerCholeskyTransform", "PositiveDefiniteTransform"])
@pytest.mark.parametrize("n", [1, 2, 4])
def test_matrix_ladj_matches_finite_differences_on_the_lower_triangle(name, n):
    t = getattr(T, name)()
    rows, cols = np.tril_indices(n)

    def f(v):
        m = np.zeros((n, n))
        m[rows, cols] = v
        return lower_vec(t(tl.tensor(m)).numpy())

    for _ in range(3):
        x = np.tril(rng.standard_normal((n, n)) * 0.5)
        jac = fd_jacobian(f, lower_vec(x))
        ladj = t.log_abs_det_jacobian(tl.tensor(x), t(tl.tensor(x))).item()
        assert ladj == pytest.approx(np.linalg.slogdet(jac)[1], rel=1e-6, abs=1e-7)


# ------------------------------------------------------------------ gradients

@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck_and_gradgradcheck(name):
    x = tl.tensor(CASES[name][0]((2,), 3), requires_grad=True)
    t = getattr(T, name)()
    y = t(x).detach().requires_grad_(True)
    inv = t.inv
    if name == "PositiveDefiniteTransform":
        # the inverse reads a symmetric matrix: differentiate along symmetric directions
        inv = lambda v: t.inv((v + v.mT) * 0.5)  # noqa: E731
    for fn, inp in [(t, x), (inv, y), (lambda v: t.log_abs_det_jacobian(v, t(v)), x)]:
        assert tl.autograd.gradcheck(fn, (inp,))
        assert tl.autograd.gradgradcheck(fn, (inp,))


def test_cumulative_distribution_transform_matches_torch():
    loc, scale = rng.standard_normal(4), rng.uniform(0.5, 2.0, 4)
    x = rng.standard_normal((3, 4))
    lo, so = tl.tensor(loc, requires_grad=True), tl.tensor(scale, requires_grad=True)
    lt, st_ = torch.tensor(loc, requires_grad=True), torch.tensor(scale, requires_grad=True)
    a = T.CumulativeDistributionTransform(D.Normal(lo, so))
    b = TT.CumulativeDistributionTransform(torch.distributions.Normal(lt, st_))
    for fo, ft in [(a, b), (lambda v: a.log_abs_det_jacobian(v, a(v)),
                            lambda v: b.log_abs_det_jacobian(v, b(v)))]:
        out_o, out_t = fo(tl.tensor(x)), ft(torch.tensor(x))
        close(out_o, out_t)
        w = rng.standard_normal(out_t.shape)
        (out_o * tl.tensor(w)).sum().backward()
        (out_t * torch.tensor(w)).sum().backward()
        close(lo.grad, lt.grad, rtol=1e-8)
        close(so.grad, st_.grad, rtol=1e-8)
        lo.grad = so.grad = lt.grad = st_.grad = None
    u = a(tl.tensor(x))
    close(a.inv(u), x, rtol=1e-8, atol=1e-10)
    assert a.domain is D.constraints.real and a.codomain is D.constraints.unit_interval
    assert a.bijective and a.sign == 1
    xg = tl.tensor(x, requires_grad=True)
    assert tl.autograd.gradcheck(a.with_cache(0), (xg,))
    with pytest.raises(TypeError, match="must be a Distribution"):
        T.CumulativeDistributionTransform("normal")


def test_transformed_distribution_over_stick_breaking_matches_torch():
    # a logistic-normal-like distribution on the simplex, through the new bijection
    loc, scale = rng.standard_normal(3), rng.uniform(0.5, 1.5, 3)
    base = D.Independent(D.Normal(tl.tensor(loc), tl.tensor(scale)), 1)
    tbase = torch.distributions.Independent(
        torch.distributions.Normal(torch.tensor(loc), torch.tensor(scale)), 1)
    d = D.TransformedDistribution(base, T.StickBreakingTransform())
    td = torch.distributions.TransformedDistribution(tbase, TT.StickBreakingTransform())
    assert d.event_shape == tuple(td.event_shape) == (4,)
    y = td.sample((5,)).numpy()
    close(d.log_prob(tl.tensor(y)), td.log_prob(torch.tensor(y)), rtol=1e-8)
    s = d.rsample((7,))
    assert tuple(s.shape) == (7, 4) and D.constraints.simplex.check(s).numpy().all()


# ------------------------------------------------------------------ structure

def test_tril_helpers_match_torch():
    for n, diag in [(1, 0), (3, 0), (4, -1), (4, -2), (2, -1)]:
        m = rng.standard_normal((2, n, n))
        v = tril_matrix_to_vec(tl.tensor(m), diag)
        close(v, TU.tril_matrix_to_vec(torch.tensor(m), diag))
        close(vec_to_tril_matrix(v, diag),
              TU.vec_to_tril_matrix(torch.tensor(v.numpy()), diag))
    with pytest.raises(ValueError, match="cannot be the lower triangle"):
        vec_to_tril_matrix(tl.zeros(4), -1)


def test_caching_and_equality():
    x = tl.tensor(rng.standard_normal((2, 3)))
    for cls in (T.SoftplusTransform, T.StickBreakingTransform, T.CorrCholeskyTransform):
        t = cls(cache_size=1)
        y = t(x)
        assert t.inv(y) is x and t(x) is y
        assert cls().with_cache(1)._cache_size == 1
        assert cls() == cls() and cls() != T.ExpTransform() and cls().inv == cls().inv
    m = tl.tensor(rng.standard_normal((3, 3)))
    t = T.PositiveDefiniteTransform(cache_size=1)
    assert t.inv(t(m)) is m                    # the cache, not the (lossy) recomputation
    assert T.LowerCholeskyTransform() != T.PositiveDefiniteTransform()


def test_event_dims_and_shapes():
    assert T.StickBreakingTransform().event_dim == 1
    assert T.LowerCholeskyTransform().event_dim == 2
    assert T.PositiveDefiniteTransform().event_dim == 2
    assert T.SoftplusTransform().event_dim == 0
    with pytest.raises(ValueError, match="ambiguous"):
        _ = T.CorrCholeskyTransform().event_dim
    assert T.CorrCholeskyTransform().forward_shape((5, 6)) == (5, 4, 4)
    assert T.CorrCholeskyTransform().inverse_shape((5, 4, 4)) == (5, 6)
    with pytest.raises(ValueError, match="D \\(D - 1\\) / 2"):
        T.CorrCholeskyTransform().forward_shape((5,))
    assert T.StickBreakingTransform().inverse_shape((2, 5)) == (2, 4)


def test_errors_name_the_transform_and_shape():
    with pytest.raises(ValueError, match=r"LowerCholeskyTransform: input of shape \(2, 3\)"):
        T.LowerCholeskyTransform()(tl.zeros(2, 3))
    with pytest.raises(ValueError, match="PositiveDefiniteTransform"):
        T.PositiveDefiniteTransform().inv(tl.zeros(3))
    with pytest.raises(ValueError, match="StickBreakingTransform"):
        T.StickBreakingTransform().inv(tl.zeros(1))


def test_corr_cholesky_gives_correlation_matrices():
    x = tl.tensor(rng.standard_normal((4, 10)) * 3)
    L = T.CorrCholeskyTransform()(x)
    c = (L @ L.mT).numpy()
    np.testing.assert_allclose(np.diagonal(c, axis1=-2, axis2=-1), 1.0, atol=1e-12)
    # positive semi-definite up to rounding (a near-singular draw has eigenvalues ~1e-16)
    assert (np.linalg.eigvalsh(c) > -1e-10).all()
    assert math.isclose(float(T.CorrCholeskyTransform()(tl.zeros(3))[2, 2].item()), 1.0)


def test_exported_at_the_package_top_level_like_torch():
    for name in ["SoftplusTransform", "StickBreakingTransform", "LowerCholeskyTransform",
                 "CorrCholeskyTransform", "CumulativeDistributionTransform",
                 "PositiveDefiniteTransform", "ExpTransform", "identity_transform"]:
        assert getattr(D, name) is getattr(T, name)
        assert hasattr(torch.distributions, name)
