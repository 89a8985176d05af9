"""tl.distributions.LKJCholesky and Wishart against torch.distributions in float64:
log_prob (and its gradients), entropy and moments for every parameterization, sample
support and statistics, reparameterized gradients, shapes and errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions
rng = np.random.default_rng(3)


def close(a, b, rtol=1e-9, atol=1e-11):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ------------------------------------------------------------------ LKJCholesky

@settings(max_examples=15, deadline=None)
@given(dim=st.integers(2, 5), batch=st.lists(st.integers(1, 3), max_size=2).map(tuple))
def test_lkj_log_prob_and_grads_match_torch(dim, batch):
    c = rng.uniform(0.3, 3.0, batch)
    co, ct = tl.tensor(c, requires_grad=True), torch.tensor(c, requires_grad=True)
    a, b = D.LKJCholesky(dim, co), TD.LKJCholesky(dim, ct)
    assert a.batch_shape == tuple(b.batch_shape) and a.event_shape == tuple(b.event_shape)
    v = b.sample((2,)).numpy()
    vo, vt = tl.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    lo, lt = a.log_prob(vo), b.log_prob(vt)
    close(lo, lt, rtol=1e-9, atol=1e-9)
    lo.sum().backward()
    lt.sum().backward()
    close(co.grad, ct.grad, rtol=1e-8, atol=1e-9)
    close(vo.grad, vt.grad, rtol=1e-8, atol=1e-9)


def test_lkj_log_prob_gradcheck():
    v = tl.tensor(TD.LKJCholesky(3, 1.5).sample((2,)).double().numpy(), requires_grad=True)
    c = tl.tensor([0.7, 2.0], dtype=tl.float64, requires_grad=True)
    # the finite differences step off the support: no value checks
    def lp(c, v):
        return D.LKJCholesky(3, c, validate_args=False).log_prob(v)

    assert tl.autograd.gradcheck(lp, (c, v))
    assert tl.autograd.gradgradcheck(lp, (c, v))


@pytest.mark.parametrize("dim,eta", [(2, 0.5), (2, 2.0), (3, 1.0), (4, 3.0)])
def test_lkj_samples_are_correlation_factors_with_the_right_spread(dim, eta):
    tl.manual_seed(0)
    d = D.LKJCholesky(dim, tl.tensor(eta, dtype=tl.float64))
    L = d.sample((4000,))
    assert tuple(L.shape) == (4000, dim, dim) and not L.requires_grad
    assert D.constraints.corr_cholesky.check(L).numpy().all()
    r = (L @ L.mT).numpy()
    # each off-diagonal correlation is 2 Beta(b, b) - 1 with b = eta - 1 + dim / 2, so
    # E[r^2] = 1 / (2 b + 1), the same for every entry (PyTorch 2.13's sampler gives 0.30
    # instead of 0.25 for rows >= 2 at dim 3, eta 1)
    off = r[:, np.tril_indices(dim, -1)[0], np.tril_indices(dim, -1)[1]]
    expected = 1.0 / (2 * (eta - 1 + dim / 2) + 1)
    np.testing.assert_array_less(np.abs((off ** 2).mean(axis=0) - expected), 0.015)
    np.testing.assert_array_less(np.abs(off.mean(axis=0)), 0.04)


def test_lkj_expand_support_and_errors():
    d = D.LKJCholesky(3, tl.tensor([1.0, 2.0], dtype=tl.float64)).expand((4, 2))
    assert d.batch_shape == (4, 2) and tuple(d.sample().shape) == (4, 2, 3, 3)
    assert D.LKJCholesky.support is D.constraints.corr_cholesky
    assert not D.LKJCholesky(2).has_rsample
    with pytest.raises(ValueError, match="dim must be an integer >= 2"):
        D.LKJCholesky(1)
    with pytest.raises(ValueError, match="concentration must be positive"):
        D.LKJCholesky(3, -1.0)
    with pytest.raises(ValueError, match="Cholesky factor of a correlation matrix"):
        D.LKJCholesky(2, 1.0).log_prob(tl.tensor([[1.0, 0.0], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"does not end in the event shape \(3, 3\)"):
        D.LKJCholesky(3, 1.0).log_prob(tl.eye(2))


# ------------------------------------------------------------------ Wishart

def _spd(batch, p):
    a = rng.standard_normal(batch + (p, p))
    return a @ np.swapaxes(a, -1, -2) + np.eye(p)


@pytest.mark.filterwarnings("ignore:Singular sample detected")   # torch's sampler, at p = 1
@pytest.mark.parametrize("kind", ["covariance_matrix", "precision_matrix", "scale_tril"])
@settings(max_examples=8, deadline=None)
@given(p=st.integers(1, 4), batch=st.lists(st.integers(1, 2), max_size=2).map(tuple))
def test_wishart_matches_torch(kind, p, batch):
    s = _spd(batch, p)
    param = np.linalg.cholesky(s) if kind == "scale_tril" else s
    df = p + rng.uniform(0.5, 4.0, batch)
    po, pt = tl.tensor(param, requires_grad=True), torch.tensor(param, requires_grad=True)
    dfo, dft = tl.tensor(df, requires_grad=True), torch.tensor(df, requires_grad=True)
    a, b = D.Wishart(dfo, **{kind: po}), TD.Wishart(dft, **{kind: pt})
    assert a.batch_shape == tuple(b.batch_shape) and a.event_shape == tuple(b.event_shape)
    v = b.sample((3,)).numpy()
    v = (v + np.swapaxes(v, -1, -2)) / 2
    lo, lt = a.log_prob(tl.tensor(v)), b.log_prob(torch.tensor(v))
    close(lo, lt, rtol=1e-8, atol=1e-8)
    (lo.sum() + a.entropy().sum()).backward()
    (lt.sum() + b.entropy().sum()).backward()
    close(po.grad, pt.grad, rtol=1e-7, atol=1e-8)
    close(dfo.grad, dft.grad, rtol=1e-7, atol=1e-8)
    for attr in ("entropy", "mean", "variance", "mode", "covariance_matrix",
                 "precision_matrix", "scale_tril"):
        x = getattr(a, attr)
        y = getattr(b, attr)
        x, y = (x(), y()) if callable(x) else (x, y)
        np.testing.assert_allclose(x.detach().numpy(), y.detach().numpy(), rtol=1e-8,
                                   atol=1e-8, equal_nan=True)


def test_wishart_rsample_statistics_and_support():
    tl.manual_seed(1)
    s = _spd((), 3)
    d = D.Wishart(tl.tensor(7.0, dtype=tl.float64), covariance_matrix=tl.tensor(s))
    w = d.rsample((6000,))
    assert tuple(w.shape) == (6000, 3, 3)
    assert D.constraints.positive_definite.check(w).numpy().all()
    mean, var = d.mean.numpy(), d.variance.numpy()
    np.testing.assert_array_less(np.abs(w.numpy().mean(0) - mean), 5 * np.sqrt(var / 6000))
    np.testing.assert_allclose(w.numpy().var(0), var, rtol=0.15)


def test_wishart_rsample_is_differentiable_in_the_scale():
    low = tl.tensor(np.linalg.cholesky(_spd((), 2)), requires_grad=True)

    def draw(m):
        tl.manual_seed(5)                   # the same noise on every call
        return D.Wishart(tl.tensor(4.0, dtype=tl.float64), scale_tril=m,
                         validate_args=False).rsample((3,))

    assert tl.autograd.gradcheck(draw, (low,))
    # linear in L L^T given the noise: the draw with 2 L is 4 times the draw with L
    close(draw(low * 2.0), draw(low) * 4.0, rtol=1e-10)


def test_wishart_errors_and_warnings():
    with pytest.raises(ValueError, match="exactly one of"):
        D.Wishart(3.0)
    with pytest.raises(ValueError, match="exactly one of"):
        D.Wishart(3.0, covariance_matrix=tl.eye(2), scale_tril=tl.eye(2))
    with pytest.raises(ValueError, match=r"of shape \(2, 3\) must be a \(batch of\) square"):
        D.Wishart(3.0, covariance_matrix=tl.zeros(2, 3))
    with pytest.raises(ValueError, match="df must be greater than p - 1 = 2"):
        D.Wishart(1.5, covariance_matrix=tl.eye(3))
    with pytest.raises(ValueError, match="symmetric positive definite"):
        D.Wishart(4.0, covariance_matrix=-tl.eye(2))
    with pytest.warns(UserWarning, match="low df"):
        D.Wishart(2.5, covariance_matrix=tl.eye(3))
    with pytest.raises(ValueError, match="value must be symmetric positive definite"):
        D.Wishart(4.0, covariance_matrix=tl.eye(2)).log_prob(-tl.eye(2))
    assert D.Wishart.support is D.constraints.positive_definite
