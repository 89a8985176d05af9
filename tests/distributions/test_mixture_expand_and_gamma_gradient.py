"""Session 18 probabilistic-ML trial fixes: Dirichlet float32 clamp, expand() of mixtures /
Wishart / relaxed distributions, the fast implicit gamma gradient (and its capture), a
dynamic batch dim in MultivariateNormal.log_prob under capture, param_shape."""
import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.distributions as LD
from tensorlib.distributions._gamma import (standard_gamma_grad, standard_gamma_grad_approx,
                                            standard_gamma_grad_fast)

torch = pytest.importorskip("torch")
TD = torch.distributions
# torch keeps two of the relaxed distributions out of its top-level namespace
TDX = type("TDX", (), {**vars(TD),
                       "LogitRelaxedBernoulli": TD.relaxed_bernoulli.LogitRelaxedBernoulli,
                       "ExpRelaxedCategorical": TD.relaxed_categorical.ExpRelaxedCategorical})
sc = pytest.importorskip("scipy.special")
hyp = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402


def t64(a, rg=False):
    return tl.tensor(np.asarray(a, dtype=np.float64), requires_grad=rg)


def p64(a, rg=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=rg)


# --- 1: Dirichlet float32 draws stay in the open simplex ---------------------------------------
@pytest.mark.parametrize("c", [0.01, 0.001])
def test_dirichlet_float32_small_concentration_no_zeros(c):
    tl.manual_seed(0)
    d = LD.Dirichlet(tl.full((2000, 3), c))
    x = d.sample()
    assert x.dtype == np.float32
    xn = x.numpy()
    assert (xn > 0).all() and (xn < 1).all()
    assert np.isfinite(d.log_prob(x).numpy()).all()
    # the same values as PyTorch's log_prob at those points
    lp = TD.Dirichlet(torch.full((2000, 3), c)).log_prob(torch.tensor(xn)).numpy()
    np.testing.assert_allclose(d.log_prob(x).numpy(), lp, rtol=1e-4)


def test_dirichlet_clamp_keeps_gradient():
    c = t64([0.5, 1.0, 2.0], rg=True)
    tl.manual_seed(1)
    x = LD.Dirichlet(c).rsample((4000,))
    (g,) = tl.grad(x[:, 0].mean(), [c])
    s = 3.5
    np.testing.assert_allclose(g.numpy(), (np.array([s, 0, 0]) - 0.5) / s ** 2, rtol=0.1,
                               atol=5e-3)


# --- 2: expand ---------------------------------------------------------------------------------
def _cases():
    return {
        "MixtureSameFamily": lambda D, t: D.MixtureSameFamily(
            D.Categorical(logits=t([0., 1.])), D.Normal(t([0., 5.]), t([1., 2.]))),
        "MixtureSameFamilyMVN": lambda D, t: D.MixtureSameFamily(
            D.Categorical(logits=t([[0., 1.]])),
            D.Independent(D.Normal(t([[[0., 1.], [5., 2.]]]), t([[[1., 2.], [0.5, 1.]]])), 1)),
        "Wishart": lambda D, t: D.Wishart(t(4.), covariance_matrix=t([[2., 0.3], [0.3, 1.]])),
        "RelaxedBernoulli": lambda D, t: D.RelaxedBernoulli(t(0.5), probs=t([0.3])),
        "LogitRelaxedBernoulli": lambda D, t: D.LogitRelaxedBernoulli(t(0.7), logits=t([0.3])),
        "RelaxedOneHotCategorical": lambda D, t: D.RelaxedOneHotCategorical(
            t(0.5), logits=t([0., 1., 2.])),
        "ExpRelaxedCategorical": lambda D, t: D.ExpRelaxedCategorical(
            t(0.5), probs=t([0.2, 0.3, 0.5])),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_expand_matches_torch(name):
    build = _cases()[name]
    dt, dp = build(LD, t64), build(TDX, p64)
    new = (3,) + tuple(dp.batch_shape)
    et, ep = dt.expand(new), dp.expand(new)
    assert type(et) is type(dt)
    assert et.batch_shape == tuple(ep.batch_shape) and et.event_shape == tuple(ep.event_shape)
    tl.manual_seed(0)
    s = et.sample((2,))
    assert tuple(s.shape) == tuple(ep.sample((2,)).shape)
    v = s.numpy()
    if name == "Wishart":
        v = np.broadcast_to(np.array([[1.5, 0.2], [0.2, 0.8]]), v.shape).copy()
    np.testing.assert_allclose(et.log_prob(tl.tensor(v)).numpy(),
                               ep.log_prob(torch.tensor(v)).detach().numpy(), rtol=1e-9,
                               atol=1e-12)
    if name in ("MixtureSameFamily", "MixtureSameFamilyMVN", "Wishart"):
        np.testing.assert_allclose(et.mean.numpy(), ep.mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(et.variance.numpy(), ep.variance.numpy(), rtol=1e-12)


def test_expand_gradients_and_rsample():
    lt, lp = t64([0.2, -0.4], rg=True), p64([0.2, -0.4], rg=True)
    et = LD.RelaxedOneHotCategorical(t64(0.5), logits=lt).expand((4,))
    ep = TD.RelaxedOneHotCategorical(p64(0.5), logits=lp).expand((4,))
    v = np.full((4, 2), [0.3, 0.7])
    et.log_prob(tl.tensor(v)).sum().backward()
    ep.log_prob(torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(lt.grad.numpy(), lp.grad.numpy(), rtol=1e-10)
    assert tuple(et.rsample((5,)).shape) == (5, 4, 2)
    w = LD.Wishart(t64(4.), scale_tril=t64(np.eye(2))).expand((3,))
    assert tuple(w.rsample((2,)).shape) == (2, 3, 2, 2)
    with pytest.raises(ValueError, match="MixtureSameFamily.expand"):
        _cases()["MixtureSameFamily"](LD, t64).expand((3,)).expand((2,))


# --- 3: the fast implicit gamma gradient -------------------------------------------------------
def _grid():
    a0 = np.geomspace(1e-3, 1e4, 60)
    u = np.concatenate([np.geomspace(1e-10, 0.5, 20), 1 - np.geomspace(1e-10, 0.5, 20)])
    A, U = np.meshgrid(a0, u)
    X = sc.gammaincinv(A, U)
    ok = (X > 0) & np.isfinite(X)
    return A[ok], X[ok]


def test_fast_gamma_grad_accuracy():
    A, X = _grid()
    ex = standard_gamma_grad(A, X)
    ap = standard_gamma_grad_approx(A, X)
    # PyTorch's own approximation, computed independently: the same function
    tg = torch._standard_gamma_grad(torch.tensor(A), torch.tensor(X)).numpy()
    both = np.isfinite(tg) & (tg != 0)
    np.testing.assert_allclose(ap[both], tg[both], rtol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # no warning from the branches not taken
        ops = standard_gamma_grad_fast(tl.tensor(A), tl.tensor(X)).numpy()
    np.testing.assert_allclose(ops, ap, rtol=1e-12)
    # the body of each distribution: within 2.5e-3 for probabilities in [1e-4, 1 - 1e-4]
    # (below alpha = 0.1 only for x < 0.8: above, the eager backward uses the quadrature)
    P = sc.gammainc(A, X)
    body = (P > 1e-4) & (P < 1 - 1e-4) & ((A >= 0.1) | (X < 0.8))
    assert np.abs(ap[body] / ex[body] - 1).max() < 2.5e-3
    # the eager backward redoes the far tails by quadrature: within 2.5e-3 everywhere
    a, x = t64(A, rg=True), t64(X)
    from tensorlib.distributions._gamma import _ImplicitGamma
    (g,) = tl.grad(_ImplicitGamma.apply(a, x).sum(), [a])
    assert np.abs(g.numpy() / ex - 1).max() < 2.5e-3


@settings(max_examples=40, deadline=None)
@given(st.floats(0.02, 200.0), st.floats(1e-6, 1 - 1e-6))
def test_fast_gamma_grad_hypothesis(alpha, u):
    x = float(sc.gammaincinv(alpha, u))
    hyp.assume(x > 1e-300)
    a = t64([alpha], rg=True)
    from tensorlib.distributions._gamma import _ImplicitGamma
    (g,) = tl.grad(_ImplicitGamma.apply(a, t64([x])).sum(), [a])
    fd = (sc.gammaincinv(alpha * (1 + 1e-6), u) - sc.gammaincinv(alpha * (1 - 1e-6), u)) / (
        2e-6 * alpha)
    np.testing.assert_allclose(g.numpy(), [fd], rtol=3e-3)


def test_gamma_rsample_gradient_matches_torch_formula():
    alpha = t64([0.05, 0.7, 3.0, 40.0], rg=True)
    rate = t64([1.0, 2.0, 0.5, 3.0], rg=True)
    tl.manual_seed(8)
    x = LD.Gamma(alpha, rate).rsample((300,))
    ga, gr = tl.grad(x.sum(), [alpha, rate])
    g = x.detach().numpy() * rate.detach().numpy()
    a = np.broadcast_to(alpha.detach().numpy(), g.shape)
    per = torch._standard_gamma_grad(torch.tensor(a), torch.tensor(g)).numpy()
    np.testing.assert_allclose(ga.numpy(), (per / rate.detach().numpy()).sum(0), rtol=3e-3)
    np.testing.assert_allclose(gr.numpy(), -(x.detach().numpy() / rate.numpy()).sum(0),
                               rtol=1e-10)


def test_gamma_backward_redoes_only_the_far_tail_with_the_quadrature(monkeypatch):
    # the host quadrature took ~0.5 s for 1e5 draws; the approximation serves the body and
    # only the far-tail elements (a few percent) go back to it
    from tensorlib.distributions import _gamma
    seen = []
    exact = _gamma.standard_gamma_grad
    monkeypatch.setattr(_gamma, "standard_gamma_grad",
                        lambda a, x: (seen.append(np.size(x)), exact(a, x))[1])
    a = tl.full((100000,), 0.7, requires_grad=True)
    x = LD.Gamma(a, 1.0).rsample()
    tl.grad(x.sum(), [a])
    assert sum(seen) < 5000


def test_second_derivative_still_raises():
    a = t64([1.5, 2.0], rg=True)
    x = LD.Beta(a, a).rsample()
    (g,) = tl.grad(x.sum(), [a], create_graph=True)
    with pytest.raises(NotImplementedError, match="second derivative"):
        g.sum().backward()


# --- 5: capture of rsample with gradient ------------------------------------------------------
@pytest.mark.parametrize("name", ["Gamma", "Beta", "Dirichlet", "StudentT", "Chi2"])
def test_captured_elbo_step_with_implicit_rsample(name):
    mk = {"Gamma": lambda a: LD.Gamma(a, 1.0), "Beta": lambda a: LD.Beta(a, a + 1.0),
          "Dirichlet": lambda a: LD.Dirichlet(a), "StudentT": lambda a: LD.StudentT(a + 2.0),
          "Chi2": lambda a: LD.Chi2(a)}[name]
    a = tl.ones(3, requires_grad=True)
    opt = tl.optim.SGD([a], lr=0.01)

    @tl.function
    def step():
        opt.zero_grad()
        loss = (mk(tl.nn.functional.softplus(a) + 0.5).rsample((4,)) ** 2).sum()
        loss.backward()
        opt.step()
        return loss

    before = a.detach().numpy().copy()
    losses = [step().item() for _ in range(3)]
    assert np.isfinite(losses).all() and len(set(losses)) > 1     # fresh draws per replay
    assert np.isfinite(a.grad.numpy()).all() and not np.allclose(a.detach().numpy(), before)


def test_captured_gamma_gradient_is_the_implicit_one():
    a = t64([0.4, 1.5, 12.0], rg=True)

    @tl.function
    def run():
        x = LD.Gamma(a, 1.0).rsample((2000,))
        (g,) = tl.grad(x.sum(), [a])
        return x.detach(), g

    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("error")     # no eager fallback
            x, g = run()
        xn = x.detach().numpy()
        ex = standard_gamma_grad(np.broadcast_to(a.detach().numpy(), xn.shape), xn).sum(0)
        np.testing.assert_allclose(g.numpy(), ex, rtol=2e-3)


# --- 6: MultivariateNormal with a dynamic batch dim under capture ------------------------------
@pytest.mark.parametrize("low_rank", [False, True])
def test_mvn_log_prob_dynamic_batch_capture(low_rank):
    loc = t64([0.3, -0.2])
    cov = t64([[2.0, 0.5], [0.5, 1.0]])

    def f(x):
        if low_rank:
            return LD.LowRankMultivariateNormal(loc, t64([[1.0], [0.5]]), t64([1.0, 2.0])
                                                ).log_prob(x)
        return LD.MultivariateNormal(loc, cov).log_prob(x)

    g = tl.function(f, input_signature=[tl.TensorSpec((None, 2), dtype=np.float64)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")         # "traced again at other sizes" would raise
        for n in (3, 4, 7):
            x = np.random.default_rng(n).normal(size=(n, 2))
            if low_rank:
                ref = TD.LowRankMultivariateNormal(p64([0.3, -0.2]), p64([[1.0], [0.5]]),
                                                   p64([1.0, 2.0])).log_prob(p64(x))
            else:
                ref = TD.MultivariateNormal(p64([0.3, -0.2]), p64(cov.numpy())).log_prob(p64(x))
            np.testing.assert_allclose(g(t64(x)).numpy(), ref.numpy(), rtol=1e-12)


def test_mvn_log_prob_batched_values_and_gradients():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(3, 3))
    cov = m @ m.T + 3 * np.eye(3)
    x = rng.normal(size=(5, 2, 3))
    lt, ct = t64(rng.normal(size=(2, 3)), rg=True), t64(cov, rg=True)
    lp_, cp = p64(lt.detach().numpy(), rg=True), p64(cov, rg=True)
    a = LD.MultivariateNormal(lt, ct).log_prob(t64(x))
    b = TD.MultivariateNormal(lp_, cp).log_prob(p64(x))
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)
    a.sum().backward()
    b.sum().backward()
    np.testing.assert_allclose(lt.grad.numpy(), lp_.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ct.grad.numpy(), cp.grad.numpy(), rtol=1e-10)
    # a single vector (no batch)
    np.testing.assert_allclose(LD.MultivariateNormal(lt[0], ct).log_prob(t64(x[0, 0])).item(),
                               TD.MultivariateNormal(lp_[0], cp).log_prob(p64(x[0, 0])).item(),
                               rtol=1e-12)


# --- 7: param_shape ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,kw", [
    ("Categorical", {"logits": [[0.0, 1.0, 2.0]] * 2}),
    ("Categorical", {"probs": [0.2, 0.8]}),
    ("OneHotCategorical", {"probs": [[0.2, 0.8]]}),
    ("Bernoulli", {"probs": [0.3, 0.4]}),
    ("Bernoulli", {"logits": 0.3}),
    ("Binomial", {"total_count": 3.0, "logits": [0.1, 0.2]}),
    ("NegativeBinomial", {"total_count": 3.0, "probs": [0.1, 0.2, 0.3]}),
    ("Multinomial", {"total_count": 3, "probs": [0.1, 0.9]}),
])
def test_param_shape(name, kw):
    a = getattr(LD, name)(**{k: t64(v) if k != "total_count" else v for k, v in kw.items()})
    b = getattr(TD, name)(**{k: p64(v) if k != "total_count" else v for k, v in kw.items()})
    assert a.param_shape == tuple(b.param_shape)
    assert a.expand((4,) + a.batch_shape).param_shape == tuple(
        b.expand((4,) + tuple(b.batch_shape)).param_shape)
