"""The families added beside Normal/Bernoulli/Categorical (Exponential, Laplace, LogNormal,
Cauchy, Gamma, Beta, Dirichlet, StudentT, Poisson, Binomial, Geometric, MultivariateNormal)
against torch.distributions: log_prob, entropy, moments, cdf/icdf, KL, gradients (also of
reparameterized samples), sampling statistics, expand, argument checks and capture."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions
rng = np.random.default_rng(12345)


def both(*arrays):
    """The same float64 values as grad-requiring tensorlib and torch tensors."""
    ours = [tl.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def agree(o, t, ours, theirs, rtol=1e-9, atol=1e-10):
    """Values match; where torch's result has a gradient, so do those of a weighted sum."""
    np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=rtol, atol=atol)
    assert tuple(o.shape) == tuple(t.shape)
    if not t.requires_grad:
        return
    finite = np.isfinite(t.detach().numpy())
    if not finite.all():        # (StudentT's variance: inf / NaN for small df) compare the rest
        o = tl.where(tl.tensor(finite), o, 0.0)
        t = torch.where(torch.tensor(finite), t, 0.0)
    w = rng.standard_normal(tuple(t.shape))
    (o * tl.tensor(w)).sum().backward()
    (t * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, theirs):
        if b.grad is not None:
            assert a.grad is not None
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-8, atol=atol)


def pos(*shape, low=0.5, high=2.5):
    return rng.uniform(low, high, shape)


def normal(*shape):
    return rng.standard_normal(shape)


def counts(high, *shape):
    return rng.integers(0, high + 1, shape).astype(np.float64)


# name -> (parameter arrays, fixed keyword arguments, values for log_prob/cdf, has cdf/icdf)
FAMILIES = {
    "Exponential": (lambda: [pos(3, 4)], {}, lambda: rng.uniform(0, 3, (2, 3, 4)), True),
    "Laplace": (lambda: [normal(3, 4), pos(3, 4)], {}, lambda: normal(2, 3, 4), True),
    "LogNormal": (lambda: [normal(3, 4), pos(3, 4)], {}, lambda: pos(2, 3, 4, low=0.1, high=4),
                  True),
    "Cauchy": (lambda: [normal(3, 4), pos(3, 4)], {}, lambda: normal(2, 3, 4) * 3, True),
    "Gamma": (lambda: [pos(3, 4, low=0.3, high=5), pos(3, 4)], {},
              lambda: pos(2, 3, 4, low=0.05, high=4), False),
    "Beta": (lambda: [pos(3, 4, low=0.3, high=4), pos(3, 4, low=0.3, high=4)], {},
             lambda: pos(2, 3, 4, low=0.02, high=0.98), False),
    "StudentT": (lambda: [pos(3, 4, low=0.5, high=8), normal(3, 4), pos(3, 4)], {},
                 lambda: normal(2, 3, 4) * 2, False),
    "Dirichlet": (lambda: [pos(3, 4, low=0.3, high=4)], {},
                  lambda: rng.dirichlet(np.ones(4), (2, 3)), False),
    "Poisson": (lambda: [pos(3, 4, low=0.2, high=6)], {}, lambda: counts(8, 2, 3, 4), False),
    "Geometric": (lambda: [pos(3, 4, low=0.05, high=0.95)], {}, lambda: counts(6, 2, 3, 4),
                  False),
    "Binomial": (lambda: [pos(3, 4, low=0.05, high=0.95)], {"total_count": 7.0},
                 lambda: counts(7, 2, 3, 4), False),
}
POSITIONAL = {"Geometric": "probs", "Binomial": "probs"}


def build(lib, name, params, kw):
    """``name`` from tensorlib (lib D) or torch (lib TD) on the given parameter tensors."""
    mod = D if lib is D else TD
    kw = dict(kw)
    if "total_count" in kw:
        kw["total_count"] = (tl.tensor if lib is D else torch.tensor)(kw["total_count"])
    if name in POSITIONAL:
        return getattr(mod, name)(**{POSITIONAL[name]: params[0]}, **kw)
    return getattr(mod, name)(*params, **kw)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_log_prob_matches_torch_with_gradients(name):
    params, kw, values, _ = FAMILIES[name]
    p, v = params(), values()
    ours, theirs = both(*p)
    agree(build(D, name, ours, kw).log_prob(tl.tensor(v)),
          build(TD, name, theirs, kw).log_prob(torch.tensor(v)), ours, theirs)


@pytest.mark.parametrize("name", sorted(set(FAMILIES) - {"Poisson"}))
def test_entropy_and_perplexity_match_torch(name):
    params, kw, _, _ = FAMILIES[name]
    p = params()
    ours, theirs = both(*p)
    agree(build(D, name, ours, kw).entropy(), build(TD, name, theirs, kw).entropy(), ours,
          theirs)
    ours, theirs = both(*p)
    agree(build(D, name, ours, kw).perplexity(), build(TD, name, theirs, kw).perplexity(),
          ours, theirs, rtol=1e-8)


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("attr", ["mean", "variance", "stddev", "mode"])
def test_moments_and_mode_match_torch(name, attr):
    params, kw, _, _ = FAMILIES[name]
    p = params()
    ours, theirs = both(*p)
    o, t = getattr(build(D, name, ours, kw), attr), getattr(build(TD, name, theirs, kw), attr)
    if attr == "mode" or name == "Cauchy":        # a step function, or a NaN / inf constant
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=1e-12)
        assert tuple(o.shape) == tuple(t.shape)
    else:
        agree(o, t, ours, theirs)


def test_heavy_tails_and_edge_moments_match_torch():
    df = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 9.0])
    for attr in ("mean", "variance", "mode"):
        o = getattr(D.StudentT(tl.tensor(df), 1.0, 2.0), attr).numpy()
        t = getattr(TD.StudentT(torch.tensor(df), 1.0, 2.0), attr).numpy()
        np.testing.assert_array_equal(o, t)
    # modes on the boundary: concentrations below / at 1, as PyTorch's (Dirichlet's argmax)
    c1, c0 = np.array([0.5, 0.5, 1.0, 2.0, 1.0]), np.array([0.5, 3.0, 1.0, 0.4, 0.7])
    np.testing.assert_array_equal(D.Beta(tl.tensor(c1), tl.tensor(c0)).mode.numpy(),
                                  TD.Beta(torch.tensor(c1), torch.tensor(c0)).mode.numpy())
    c = np.array([[0.5, 0.3, 0.9], [1.0, 1.0, 0.5], [2.0, 3.0, 0.2], [0.2, 0.9, 0.1]])
    np.testing.assert_array_equal(D.Dirichlet(tl.tensor(c)).mode.numpy(),
                                  TD.Dirichlet(torch.tensor(c)).mode.numpy())
    g = np.array([0.5, 1.0, 3.0])
    np.testing.assert_array_equal(D.Gamma(tl.tensor(g), 2.0).mode.numpy(),
                                  TD.Gamma(torch.tensor(g), 2.0).mode.numpy())


@pytest.mark.parametrize("name", ["Exponential", "Laplace", "LogNormal", "Cauchy"])
def test_cdf_and_icdf_match_torch(name):
    params, kw, values, _ = FAMILIES[name]
    p, v = params(), values()
    ours, theirs = both(*p)
    agree(build(D, name, ours, kw).cdf(tl.tensor(v)),
          build(TD, name, theirs, kw).cdf(torch.tensor(v)), ours, theirs)
    q = rng.uniform(0.01, 0.99, (2, 3, 4))
    ours, theirs = both(*p)
    agree(build(D, name, ours, kw).icdf(tl.tensor(q)),
          build(TD, name, theirs, kw).icdf(torch.tensor(q)), ours, theirs, rtol=1e-8)
    d = build(D, name, [tl.tensor(a) for a in p], kw)
    np.testing.assert_allclose(d.cdf(d.icdf(tl.tensor(q))).numpy(), q, rtol=1e-10)


def test_gamma_cdf_matches_torch_and_is_differentiable_in_every_argument():
    a, r = pos(3, 4, low=0.05, high=30), pos(3, 4)
    v = np.concatenate([pos(1, 3, 4, low=1e-4, high=0.1), pos(1, 3, 4, low=0.1, high=40)])
    ta, tr, tv = torch.tensor(a), torch.tensor(r, requires_grad=True), torch.tensor(v)
    want = TD.Gamma(ta, tr).cdf(tv)
    oa, orr = tl.tensor(a, requires_grad=True), tl.tensor(r, requires_grad=True)
    ov = tl.tensor(v, requires_grad=True)
    got = D.Gamma(oa, orr).cdf(ov)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-9, atol=1e-12)
    w = rng.standard_normal(want.shape)
    (got * tl.tensor(w)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(orr.grad.numpy(), tr.grad.numpy(), rtol=1e-8, atol=1e-12)
    dens = np.exp(TD.Gamma(ta, torch.tensor(r)).log_prob(tv).numpy())     # d cdf / d value
    np.testing.assert_allclose(ov.grad.numpy(), w * dens, rtol=1e-8, atol=1e-12)
    # PyTorch has no gradient in the concentration: a central difference of its gammainc
    h = 1e-6 * a
    fd = (torch.special.gammainc(torch.tensor(a + h), torch.tensor(r * v))
          - torch.special.gammainc(torch.tensor(a - h), torch.tensor(r * v))).numpy() / (2 * h)
    np.testing.assert_allclose(oa.grad.numpy(), (w * fd).sum(0), rtol=2e-5, atol=1e-9)
    edge = D.Gamma(tl.tensor([0.5, 2.0, 2.0]), 1.0).cdf(tl.tensor([0.0, 0.0, math.inf]))
    np.testing.assert_array_equal(edge.numpy(), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("name", ["Exponential", "Laplace", "Gamma", "Beta", "Dirichlet",
                                  "Poisson", "LogNormal"])
def test_kl_divergence_matches_torch(name):
    params, kw, _, _ = FAMILIES[name]
    p, q = params(), params()
    ours, theirs = both(*p, *q)
    k = len(p)
    agree(D.kl_divergence(build(D, name, ours[:k], kw), build(D, name, ours[k:], kw)),
          TD.kl_divergence(build(TD, name, theirs[:k], kw), build(TD, name, theirs[k:], kw)),
          ours, theirs, atol=1e-9)
    same = build(D, name, [tl.tensor(a) for a in p], kw)
    np.testing.assert_allclose(D.kl_divergence(same, same).numpy(), 0.0, atol=1e-12)


# --- MultivariateNormal ------------------------------------------------------------------------
def spd(*batch, n=3):
    a = rng.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


MATRIX = {"covariance_matrix": lambda c: c, "precision_matrix": np.linalg.inv,
          "scale_tril": np.linalg.cholesky}


@pytest.mark.parametrize("kind", sorted(MATRIX))
def test_multivariate_normal_matches_torch(kind):
    loc, m = normal(2, 1, 3), MATRIX[kind](spd(4))
    v = normal(5, 2, 4, 3)

    def make(lib, p):
        return lib.MultivariateNormal(p[0], **{kind: p[1]})
    ours, theirs = both(loc, m)
    o, t = make(D, ours), make(TD, theirs)
    assert o.batch_shape == tuple(t.batch_shape) == (2, 4) and o.event_shape == (3,)
    agree(o.log_prob(tl.tensor(v)), t.log_prob(torch.tensor(v)), ours, theirs, atol=1e-9)
    ours, theirs = both(loc, m)
    agree(make(D, ours).entropy(), make(TD, theirs).entropy(), ours, theirs)
    for attr in ("mean", "mode", "variance", "covariance_matrix", "precision_matrix",
                 "scale_tril"):
        ours, theirs = both(loc, m)
        agree(getattr(make(D, ours), attr), getattr(make(TD, theirs), attr), ours, theirs,
              rtol=1e-8, atol=1e-9)


def test_multivariate_normal_kl_matches_torch():
    l1, c1, l2, p2 = normal(4, 1, 3), spd(2), normal(3), np.linalg.inv(spd())
    ours, theirs = both(l1, c1, l2, p2)
    o = D.kl_divergence(D.MultivariateNormal(ours[0], ours[1]),
                        D.MultivariateNormal(ours[2], precision_matrix=ours[3]))
    t = TD.kl_divergence(TD.MultivariateNormal(theirs[0], theirs[1]),
                         TD.MultivariateNormal(theirs[2], precision_matrix=theirs[3]))
    agree(o, t, ours, theirs, atol=1e-9)
    with pytest.raises(ValueError, match="different event shapes"):
        D.kl_divergence(D.MultivariateNormal(tl.zeros(2, dtype=np.float64), tl.eye(2)),
                        D.MultivariateNormal(tl.zeros(3, dtype=np.float64), tl.eye(3)))


def test_multivariate_normal_rsample_is_loc_plus_scale_tril_eps():
    n = 30000
    loc0, low0 = normal(3), np.linalg.cholesky(spd())
    loc = tl.tensor(loc0, requires_grad=True)
    low = tl.tensor(low0, requires_grad=True)
    tl.manual_seed(0)
    z = D.MultivariateNormal(loc, scale_tril=low).rsample((n,))
    assert z.shape == (n, 3)
    zs = z.detach().numpy()
    cov = low0 @ low0.T
    np.testing.assert_allclose(zs.mean(0), loc0, atol=5 * np.sqrt(np.diag(cov).max() / n))
    np.testing.assert_allclose(np.cov(zs.T), cov, rtol=0.05, atol=0.05 * np.abs(cov).max())
    w = normal(3)
    (z * tl.tensor(w)).sum().backward()
    np.testing.assert_allclose(loc.grad.numpy(), n * w)
    eps = np.linalg.solve(low0, (zs - loc0).T).T
    np.testing.assert_allclose(low.grad.numpy(), np.outer(w, eps.sum(0)), rtol=1e-8, atol=1e-8)
    # through a covariance matrix: d E|z|^2 / d Sigma = I (tr Sigma + |loc|^2)
    c = tl.tensor(cov, requires_grad=True)
    tl.manual_seed(1)
    zc = D.MultivariateNormal(tl.tensor(loc0), c).rsample((n,))
    ((zc * zc).sum() / n).backward()
    np.testing.assert_allclose(c.grad.numpy(), np.eye(3), atol=0.06)


def test_multivariate_normal_log_prob_grad_of_grad_matches_torch():
    loc, cov, v = normal(3), spd(), normal(4, 3)
    ol, oc = tl.tensor(loc, requires_grad=True), tl.tensor(cov, requires_grad=True)
    tl_, tc = torch.tensor(loc, requires_grad=True), torch.tensor(cov, requires_grad=True)
    (g,) = tl.grad(D.MultivariateNormal(ol, oc).log_prob(tl.tensor(v)).sum(), [oc],
                   create_graph=True)
    (tg,) = torch.autograd.grad(TD.MultivariateNormal(tl_, tc).log_prob(torch.tensor(v)).sum(),
                                [tc], create_graph=True)
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy(), rtol=1e-8, atol=1e-10)
    (g * g).sum().backward()
    (tg * tg).sum().backward()
    np.testing.assert_allclose(ol.grad.numpy(), tl_.grad.numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(oc.grad.numpy(), tc.grad.numpy(), rtol=1e-7, atol=1e-10)


# --- second derivatives of log_prob ------------------------------------------------------------
@pytest.mark.parametrize("name", ["Gamma", "Beta", "StudentT", "Dirichlet", "Binomial",
                                  "Laplace", "Poisson"])
def test_log_prob_grad_of_grad_matches_torch(name):
    params, kw, values, _ = FAMILIES[name]
    p, v = params(), values()
    ours, theirs = both(*p)
    lo = build(D, name, ours, kw).log_prob(tl.tensor(v)).sum()
    lt = build(TD, name, theirs, kw).log_prob(torch.tensor(v)).sum()
    go = tl.grad(lo, ours, create_graph=True)
    gt = torch.autograd.grad(lt, theirs, create_graph=True)
    sum(((g * g).sum() for g in go), tl.tensor(0.0)).backward()
    sum((g * g).sum() for g in gt).backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-7, atol=1e-9)


# --- sampling: shapes, dtypes, statistics ------------------------------------------------------
def f64(values):
    return tl.tensor(np.array(values, dtype=np.float64))


SAMPLERS = {
    # name -> (distribution maker on float64 tensors, mean, variance)
    "Exponential": (lambda: D.Exponential(f64([0.5, 3.0])), [2.0, 1 / 3], [4.0, 1 / 9]),
    "Laplace": (lambda: D.Laplace(f64([1.0, -2.0]), f64([0.5, 2.0])), [1.0, -2.0],
                [0.5, 8.0]),
    "LogNormal": (lambda: D.LogNormal(f64([0.0, 1.0]), f64([0.25, 0.5])),
                  [math.exp(0.25 ** 2 / 2), math.exp(1.125)],
                  [math.expm1(0.0625) * math.exp(0.0625), math.expm1(0.25) * math.exp(2.25)]),
    "Gamma": (lambda: D.Gamma(f64([0.3, 4.0]), f64([1.0, 2.0])), [0.3, 2.0],
              [0.3, 1.0]),
    "Beta": (lambda: D.Beta(f64([0.5, 3.0]), f64([0.5, 1.5])), [0.5, 2 / 3],
             [0.125, 4.5 / (20.25 * 5.5)]),
    "StudentT": (lambda: D.StudentT(f64([9.0, 30.0]), f64([1.0, 0.0]),
                                    f64([1.0, 2.0])), [1.0, 0.0], [9 / 7, 4 * 30 / 28]),
    "Poisson": (lambda: D.Poisson(f64([0.5, 7.0])), [0.5, 7.0], [0.5, 7.0]),
    "Binomial": (lambda: D.Binomial(f64([10.0, 3.0]), f64([0.3, 0.9])),
                 [3.0, 2.7], [2.1, 0.27]),
    "Geometric": (lambda: D.Geometric(f64([0.2, 0.7])), [4.0, 3 / 7], [20.0, 0.3 / 0.49]),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sample_shapes_and_moments(name):
    make, mean, var = SAMPLERS[name]
    d = make()
    n = 40000
    tl.manual_seed(7)
    s = d.sample((n,))
    assert s.shape == (n, 2) and s.dtype == np.float64 and not s.requires_grad
    assert d.sample().shape == (2,) and d.sample((3, 4)).shape == (3, 4, 2)
    x = s.numpy()
    mean, var = np.array(mean), np.array(var)
    assert (np.abs(x.mean(0) - mean) < 5 * np.sqrt(var / n)).all(), (x.mean(0), mean)
    np.testing.assert_allclose(x.var(0), var, rtol=0.1)
    if name in ("Poisson", "Binomial", "Geometric"):
        assert (x >= 0).all() and (x % 1 == 0).all()
    if name == "Binomial":
        assert (x <= np.array([10, 3])).all()
    if name == "Beta":
        assert ((x >= 0) & (x <= 1)).all()
    tl.manual_seed(7)
    np.testing.assert_array_equal(d.sample((n,)).numpy(), x)      # the global generator


def test_cauchy_and_dirichlet_and_default_dtype_samples():
    tl.manual_seed(3)
    x = D.Cauchy(tl.tensor([1.0]), tl.tensor([2.0])).sample((40000,)).numpy()[:, 0]
    np.testing.assert_allclose(np.quantile(x, [0.25, 0.5, 0.75]), [-1.0, 1.0, 3.0], atol=0.1)
    c = np.array([[0.5, 1.0, 2.5], [4.0, 4.0, 1.0]])
    s = D.Dirichlet(tl.tensor(c)).sample((20000,)).numpy()
    assert s.shape == (20000, 2, 3)
    np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(s.mean(0), c / c.sum(-1, keepdims=True), atol=0.01)
    for d in (D.Exponential(2.0), D.Gamma(2.0, 1.0), D.Poisson(3.0), D.Beta(1.0, 2.0),
              D.Geometric(0.5), D.StudentT(3.0), D.Dirichlet(tl.ones(3))):
        assert d.sample().dtype == np.float32 and d.batch_shape == ()
    assert D.Dirichlet(tl.ones(3)).sample((2,)).shape == (2, 3)


# --- reparameterized samples -------------------------------------------------------------------
def test_location_scale_rsamples_have_exact_pathwise_gradients():
    n = 5000
    for cls in (D.Laplace, D.Cauchy):
        loc = tl.tensor(np.array([0.5, -1.0]), requires_grad=True)
        scale = tl.tensor(np.array([2.0, 0.3]), requires_grad=True)
        tl.manual_seed(4)
        z = cls(loc, scale).rsample((n,))
        z.sum().backward()
        np.testing.assert_allclose(loc.grad.numpy(), [n, n])
        eps = (z.detach().numpy() - loc.detach().numpy()) / scale.detach().numpy()
        np.testing.assert_allclose(scale.grad.numpy(), eps.sum(0), rtol=1e-9)
    rate = tl.tensor(np.array([0.5, 4.0]), requires_grad=True)
    tl.manual_seed(5)
    z = D.Exponential(rate).rsample((n,))
    z.sum().backward()
    np.testing.assert_allclose(rate.grad.numpy(), -(z.detach().numpy() / rate.numpy()).sum(0))
    loc = tl.tensor(np.array([0.2]), requires_grad=True)
    scale = tl.tensor(np.array([0.7]), requires_grad=True)
    tl.manual_seed(6)
    z = D.LogNormal(loc, scale).rsample((n,))
    z.sum().backward()
    x = z.detach().numpy()
    np.testing.assert_allclose(loc.grad.numpy(), x.sum(0), rtol=1e-10)
    np.testing.assert_allclose(scale.grad.numpy(),
                               (x * (np.log(x) - 0.2) / 0.7).sum(0), rtol=1e-9)


def test_gamma_rsample_gradient_is_the_implicit_one():
    # per draw: dx/dalpha = -(dP/dalpha)(alpha, x) / p(x), against PyTorch's approximation
    # and against a central difference of SciPy's quantile function
    alpha = tl.tensor(np.array([0.05, 0.7, 3.0, 40.0]), requires_grad=True)
    rate = tl.tensor(np.array([1.0, 2.0, 0.5, 3.0]), requires_grad=True)
    tl.manual_seed(8)
    x = D.Gamma(alpha, rate).rsample((200,))
    x.sum().backward()
    g = x.detach().numpy() * rate.detach().numpy()                    # the standard draws
    a = np.broadcast_to(alpha.detach().numpy(), g.shape)
    per = torch._standard_gamma_grad(torch.tensor(a), torch.tensor(g)).numpy()
    np.testing.assert_allclose(alpha.grad.numpy(), (per / rate.detach().numpy()).sum(0),
                               rtol=2e-3)
    np.testing.assert_allclose(rate.grad.numpy(), -(x.detach().numpy() / rate.numpy()).sum(0),
                               rtol=1e-10)
    sc = pytest.importorskip("scipy.special")
    a0, u = np.array([0.01, 0.3, 1.0, 2.5, 9.0, 150.0]), np.array([1e-6, 0.1, 0.5, 0.9, 0.9999])
    A, U = np.meshgrid(a0, u)
    X = sc.gammaincinv(A, U)
    from tensorlib.distributions._gamma import standard_gamma_grad
    fd = (sc.gammaincinv(A * (1 + 1e-6), U) - sc.gammaincinv(A * (1 - 1e-6), U)) / (2e-6 * A)
    np.testing.assert_allclose(standard_gamma_grad(A, X), fd, rtol=1e-5)


def test_implicit_rsample_gradients_give_the_moment_gradients():
    n = 40000
    # Gamma: d E[x] / d alpha = 1 / rate, d E[log x] / d alpha = trigamma(alpha)
    a = tl.tensor(np.array([0.4, 2.0]), requires_grad=True)
    tl.manual_seed(9)
    x = D.Gamma(a, tl.tensor([2.0, 0.5])).rsample((n,))
    (ga,) = tl.grad(x.mean(0).sum(), [a], retain_graph=True)
    np.testing.assert_allclose(ga.numpy(), [0.5, 2.0], rtol=0.03)
    (gl,) = tl.grad(x.log().mean(0).sum(), [a])
    np.testing.assert_allclose(gl.numpy(), tl.polygamma(1, a.detach()).numpy(), rtol=0.03)
    # Beta: d E[x] / d (a, b) = (b, -a) / (a + b)^2
    c1 = tl.tensor(np.array([0.8, 3.0]), requires_grad=True)
    c0 = tl.tensor(np.array([1.5, 0.6]), requires_grad=True)
    tl.manual_seed(10)
    x = D.Beta(c1, c0).rsample((n,))
    g1, g0 = tl.grad(x.mean(0).sum(), [c1, c0])
    s2 = (np.array([0.8, 3.0]) + [1.5, 0.6]) ** 2
    np.testing.assert_allclose(g1.numpy(), np.array([1.5, 0.6]) / s2, rtol=0.05)
    np.testing.assert_allclose(g0.numpy(), -np.array([0.8, 3.0]) / s2, rtol=0.05)
    # Dirichlet: d E[x_0] / d c_j = (delta_0j S - c_0) / S^2
    c = tl.tensor(np.array([0.7, 1.5, 2.5]), requires_grad=True)
    tl.manual_seed(11)
    x = D.Dirichlet(c).rsample((n,))
    (gc,) = tl.grad(x[:, 0].mean(), [c])
    S = 4.7
    np.testing.assert_allclose(gc.numpy(), (np.array([S, 0, 0]) - 0.7) / S ** 2, rtol=0.05)
    # StudentT: d E[(x - loc)^2] / d df = -2 scale^2 / (df - 2)^2
    df = tl.tensor(np.array([12.0]), requires_grad=True)
    scale = tl.tensor(np.array([1.5]), requires_grad=True)
    tl.manual_seed(12)
    x = D.StudentT(df, 0.0, scale).rsample((n,))
    gd, gs = tl.grad((x * x).mean(), [df, scale])
    np.testing.assert_allclose(gd.numpy(), [-2 * 2.25 / 100], rtol=0.15)
    np.testing.assert_allclose(gs.numpy(), [2 * 1.5 * 12 / 10], rtol=0.05)


def test_implicit_rsample_second_derivative_raises():
    a = tl.tensor(np.array([1.5, 2.0]), requires_grad=True)
    tl.manual_seed(0)
    x = D.Gamma(a, 1.0).rsample()
    (g,) = tl.grad(x.sum(), [a], create_graph=True)
    with pytest.raises(NotImplementedError, match="second derivative"):
        g.sum().backward()


def test_has_rsample_flags():
    assert all(getattr(D, n).has_rsample for n in (
        "Exponential", "Laplace", "LogNormal", "Cauchy", "Gamma", "Beta", "Dirichlet",
        "StudentT", "MultivariateNormal"))
    assert not any(getattr(D, n).has_rsample for n in ("Poisson", "Binomial", "Geometric"))
    with pytest.raises(NotImplementedError, match="no reparameterized sample"):
        D.Poisson(1.0).rsample()


# --- hypothesis: random parameters ------------------------------------------------------------
hyp = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")
positive = st.floats(min_value=0.05, max_value=50.0)


@hyp.settings(max_examples=40, deadline=None, database=None)
@hyp.given(positive, positive, st.floats(min_value=1e-3, max_value=60.0))
def test_gamma_log_prob_and_cdf_follow_torch(a, r, x):
    o = D.Gamma(tl.tensor(a, dtype=np.float64), r)
    t = TD.Gamma(torch.tensor(a, dtype=torch.float64), r)
    v = tl.tensor(x, dtype=np.float64)
    np.testing.assert_allclose(o.log_prob(v).numpy(),
                               t.log_prob(torch.tensor(x, dtype=torch.float64)).numpy(),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(o.cdf(v).numpy(),
                               t.cdf(torch.tensor(x, dtype=torch.float64)).numpy(), rtol=1e-9,
                               atol=1e-13)


@hyp.settings(max_examples=40, deadline=None, database=None)
@hyp.given(positive, positive, st.floats(min_value=0.001, max_value=0.999))
def test_beta_and_student_t_log_prob_follow_torch(a, b, x):
    np.testing.assert_allclose(
        D.Beta(tl.tensor(a, dtype=np.float64), b).log_prob(tl.tensor(x, dtype=np.float64))
        .numpy(), TD.Beta(torch.tensor(a, dtype=torch.float64), b).log_prob(
            torch.tensor(x, dtype=torch.float64)).numpy(),
        rtol=1e-9, atol=1e-9)
    y = (x - 0.5) * 20
    np.testing.assert_allclose(
        D.StudentT(tl.tensor(a, dtype=np.float64), 0.5, b).log_prob(
            tl.tensor(y, dtype=np.float64)).numpy(),
        TD.StudentT(torch.tensor(a, dtype=torch.float64), 0.5, b).log_prob(
            torch.tensor(y, dtype=torch.float64)).numpy(), rtol=1e-9,
        atol=1e-9)


# --- expand, enumerate_support -----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_expand_broadcasts_the_batch(name):
    params, kw, values, _ = FAMILIES[name]
    d = build(D, name, [tl.tensor(a[0]) for a in params()], kw)      # batch (4,)
    e = d.expand((2, 4))
    assert e.batch_shape == (2, 4) and e.event_shape == d.event_shape
    v = tl.tensor(values()[0, 0])
    np.testing.assert_allclose(e.log_prob(v).numpy(),
                               np.broadcast_to(d.log_prob(v).numpy(), (2, 4)))
    assert e.sample((5,)).shape == (5, 2, 4) + d.event_shape
    with pytest.raises(ValueError, match="cannot be broadcast to"):
        e.expand((3,))


def test_multivariate_normal_expand():
    m = D.MultivariateNormal(tl.tensor(normal(2)), tl.tensor(spd(n=2)))
    e = m.expand((3,))
    assert e.batch_shape == (3,) and e.event_shape == (2,)
    v = tl.tensor(normal(3, 2))
    np.testing.assert_allclose(e.log_prob(v).numpy(), m.log_prob(v).numpy())
    assert e.covariance_matrix.shape == (3, 2, 2) and e.sample((4,)).shape == (4, 3, 2)
    with pytest.raises(ValueError, match="cannot be broadcast to"):
        e.expand((2,))


def test_binomial_enumerate_support_and_entropy_need_one_total_count():
    d, t = D.Binomial(4, probs=tl.tensor([0.2, 0.5])), TD.Binomial(4, torch.tensor([0.2, 0.5]))
    for expand in (True, False):
        np.testing.assert_array_equal(d.enumerate_support(expand).numpy(),
                                      t.enumerate_support(expand).numpy())
    with pytest.raises(NotImplementedError, match="one total_count"):
        D.Binomial(tl.tensor([2.0, 3.0]), probs=0.5).entropy()
    with pytest.raises(NotImplementedError, match="Poisson: entropy"):
        D.Poisson(2.0).entropy()


# --- argument checks ---------------------------------------------------------------------------
NAN = math.nan
CHECKS = [
    (lambda: D.Exponential(tl.tensor([1.0, -1.0])), r"Exponential: rate must be positive, but "
     r"found invalid values: \[-1.0\]"),
    (lambda: D.Exponential(1.0).log_prob(-0.5), "value must be non-negative"),
    (lambda: D.Exponential(1.0).icdf(1.5), r"icdf: value must be a probability in \[0, 1\]"),
    (lambda: D.Laplace(NAN, 1.0), "loc must not be NaN"),
    (lambda: D.Laplace(0.0, 0.0), "scale must be positive"),
    (lambda: D.LogNormal(0.0, -1.0), "LogNormal: scale must be positive"),
    (lambda: D.LogNormal(0.0, 1.0).log_prob(0.0), "value must be positive"),
    (lambda: D.Cauchy(0.0, NAN), "scale must be positive, but found invalid values: NaN"),
    (lambda: D.Cauchy(0.0, 1.0).log_prob(NAN), "value must not be NaN"),
    (lambda: D.Gamma(0.0, 1.0), "Gamma: concentration must be positive"),
    (lambda: D.Gamma(1.0, -2.0), "Gamma: rate must be positive"),
    (lambda: D.Gamma(1.0, 1.0).cdf(-1.0), "value must be non-negative"),
    (lambda: D.Beta(1.0, 0.0), "Beta: concentration0 must be positive"),
    (lambda: D.Beta(1.0, 1.0).log_prob(1.5), r"value must lie in \[0, 1\]"),
    (lambda: D.Dirichlet(tl.tensor(1.0)), "at least one-dimensional"),
    (lambda: D.Dirichlet(tl.tensor([1.0, -1.0])), "concentration must be positive"),
    (lambda: D.Dirichlet(tl.ones(3)).log_prob(tl.tensor([0.5, 0.6, 0.1])), "simplex"),
    (lambda: D.Dirichlet(tl.ones(3)).log_prob(tl.tensor([0.5, 0.5])), "last dim of 3"),
    (lambda: D.StudentT(0.0), "StudentT: df must be positive"),
    (lambda: D.StudentT(1.0, 0.0, -1.0), "StudentT: scale must be positive"),
    (lambda: D.Poisson(-1.0), "Poisson: rate must be non-negative"),
    (lambda: D.Poisson(1.0).log_prob(1.5), "non-negative integer"),
    (lambda: D.Binomial(2.5, probs=0.5), "total_count must be a non-negative integer"),
    (lambda: D.Binomial(3, probs=1.5), r"probs must lie in \[0, 1\]"),
    (lambda: D.Binomial(3, logits=NAN), "logits must not be NaN"),
    (lambda: D.Binomial(3, probs=0.5).log_prob(4.0), r"integer in \[0, total_count\]"),
    (lambda: D.Binomial(3), "exactly one of probs and logits"),
    (lambda: D.Geometric(probs=0.0), r"probs must lie in \(0, 1\]"),
    (lambda: D.Geometric(probs=0.5, logits=0.0), "exactly one of probs and logits"),
    (lambda: D.Geometric(0.5).log_prob(-1.0), "non-negative integer"),
    (lambda: D.MultivariateNormal(tl.zeros(2)), "exactly one of covariance_matrix"),
    (lambda: D.MultivariateNormal(tl.zeros(2), tl.eye(2), scale_tril=tl.eye(2)),
     "exactly one of"),
    (lambda: D.MultivariateNormal(tl.tensor(0.0), tl.eye(1)), "at least one-dimensional"),
    (lambda: D.MultivariateNormal(tl.zeros(2), tl.ones(2, 3)), "square matrix"),
    (lambda: D.MultivariateNormal(tl.zeros(3), tl.eye(2)), r"loc's last dim \(3\)"),
    (lambda: D.MultivariateNormal(tl.zeros(2), tl.tensor([[1.0, 2.0], [2.0, 1.0]])),
     "covariance_matrix must be symmetric positive-definite"),
    (lambda: D.MultivariateNormal(tl.zeros(2), precision_matrix=tl.tensor([[1.0, 0.5],
                                                                           [0.0, 1.0]])),
     "precision_matrix must be symmetric positive-definite"),
    (lambda: D.MultivariateNormal(tl.zeros(2), scale_tril=tl.tensor([[1.0, 0.5], [0.0, 1.0]])),
     "lower triangular with a positive diagonal"),
    (lambda: D.MultivariateNormal(tl.zeros(2), scale_tril=-tl.eye(2)), "positive diagonal"),
    (lambda: D.MultivariateNormal(tl.zeros(2), tl.eye(2)).log_prob(tl.zeros(3)),
     "last dim of 2"),
]


@pytest.mark.parametrize("fn,match", CHECKS, ids=[m[:40] for _, m in CHECKS])
def test_argument_checks(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()


def test_validate_args_false_skips_the_checks():
    D.Gamma(-1.0, 1.0, validate_args=False)
    D.Exponential(1.0, validate_args=False).log_prob(-1.0)
    D.Poisson(2.0, validate_args=False).log_prob(1.5)
    D.Dirichlet(tl.ones(2), validate_args=False).log_prob(tl.tensor([0.9, 0.9]))
    assert D.Beta(1.0, 2.0).expand((3,))._validate_args


# --- capture ------------------------------------------------------------------------------------
def test_capture_replays_transform_samples_and_refuses_host_draws():
    rate = tl.tensor(np.array([1.0, 2.0]))

    def draw(r):
        return D.Exponential(r).rsample()
    f = tl.function(draw)
    with tl.no_grad():
        tl.manual_seed(1)
        a = f(rate)
        b = f(rate)
    tl.manual_seed(1)
    np.testing.assert_allclose(a.numpy(), draw(rate).numpy(), rtol=1e-6)
    assert not np.allclose(a.numpy(), b.numpy())

    def poisson_draw(r):      # an open-ended rejection loop: still a host draw
        return D.Poisson(r).sample()
    with pytest.raises(RuntimeError, match="cannot be captured"):
        tl.function(poisson_draw)(rate)
