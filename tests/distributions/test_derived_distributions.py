"""tl.distributions LogisticNormal, HalfNormal, HalfCauchy and Chi2 against
torch.distributions in float64: densities, cdf / icdf, moments, entropy and their
gradients; sample shapes, supports and statistics; value checks."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions
rng = np.random.default_rng(4)


def close(a, b, rtol=1e-9, atol=1e-11):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", ["HalfNormal", "HalfCauchy", "Chi2"])
@settings(max_examples=8, deadline=None)
@given(batch=st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple))
def test_univariate_match_torch(name, batch):
    p = rng.uniform(0.5, 3.0, batch)
    po, pt = tl.tensor(p, requires_grad=True), torch.tensor(p, requires_grad=True)
    a, b = getattr(D, name)(po), getattr(TD, name)(pt)
    assert a.batch_shape == tuple(b.batch_shape) and a.event_shape == tuple(b.event_shape)
    v = np.abs(rng.standard_normal((2,) + batch)) * 2 + 0.01
    lo, lt = a.log_prob(tl.tensor(v)), b.log_prob(torch.tensor(v))
    close(lo, lt)
    total_o, total_t = lo.sum(), lt.sum()
    close(a.entropy(), b.entropy())
    total_o, total_t = total_o + a.entropy().sum(), total_t + b.entropy().sum()
    if name != "Chi2":               # Gamma's cdf is its own; these two fold the base's
        u = rng.uniform(0.05, 0.95, (2,) + batch)
        close(a.cdf(tl.tensor(v)), b.cdf(torch.tensor(v)))
        close(a.icdf(tl.tensor(u)), b.icdf(torch.tensor(u)), rtol=1e-8)
        total_o = total_o + a.cdf(tl.tensor(v)).sum() + a.icdf(tl.tensor(u)).sum()
        total_t = total_t + b.cdf(torch.tensor(v)).sum() + b.icdf(torch.tensor(u)).sum()
    total_o.backward()
    total_t.backward()
    # Chi2's entropy gradient goes through trigamma, where PyTorch's float64 is ~1e-9-1e-8
    # relative off near small df (tensorlib's matches SciPy)
    close(po.grad, pt.grad, rtol=5e-8 if name == "Chi2" else 1e-8)
    for attr in ("mean", "variance", "mode"):
        np.testing.assert_allclose(getattr(a, attr).detach().numpy(),
                                   getattr(b, attr).detach().numpy(), rtol=1e-9)
    assert type(a.support).__name__ == type(b.support).__name__


def test_folded_log_prob_outside_the_support():
    d = D.HalfNormal(tl.tensor([1.0, 2.0], dtype=tl.float64), validate_args=False)
    lp = d.log_prob(tl.tensor([-1.0, 1.0], dtype=tl.float64)).numpy()
    assert lp[0] == -math.inf and np.isfinite(lp[1])
    with pytest.raises(ValueError, match="value must be non-negative"):
        D.HalfCauchy(1.0).log_prob(tl.tensor([-1.0]))
    with pytest.raises(ValueError, match="scale must be positive"):
        D.HalfNormal(tl.tensor([-1.0]))


def test_half_and_chi2_sample_statistics():
    tl.manual_seed(0)
    for d in (D.HalfNormal(tl.tensor(2.0, dtype=tl.float64)),
              D.Chi2(tl.tensor(3.0, dtype=tl.float64))):
        x = d.rsample((20000,)).numpy()
        assert (x >= 0).all()
        m, sd = float(d.mean.numpy()), math.sqrt(float(d.variance.numpy()))
        assert abs(x.mean() - m) < 5 * sd / math.sqrt(20000)
    x = D.HalfCauchy(tl.tensor(1.5, dtype=tl.float64)).sample((20000,)).numpy()
    assert abs(np.median(x) - 1.5) < 0.06           # the median of |Cauchy(0, s)| is s
    assert D.Chi2(tl.tensor([4.0])).df.numpy().tolist() == [4.0]


@settings(max_examples=8, deadline=None)
@given(k=st.integers(1, 4), batch=st.lists(st.integers(1, 3), max_size=2).map(tuple))
def test_logistic_normal_matches_torch(k, batch):
    loc, scale = rng.standard_normal(batch + (k,)), rng.uniform(0.5, 2.0, batch + (k,))
    lo, so = tl.tensor(loc, requires_grad=True), tl.tensor(scale, requires_grad=True)
    lt, st_ = torch.tensor(loc, requires_grad=True), torch.tensor(scale, requires_grad=True)
    a, b = D.LogisticNormal(lo, so), TD.LogisticNormal(lt, st_)
    assert a.batch_shape == tuple(b.batch_shape) and a.event_shape == tuple(b.event_shape)
    v = b.sample((3,)).numpy()
    o, t = a.log_prob(tl.tensor(v)), b.log_prob(torch.tensor(v))
    close(o, t, rtol=1e-8, atol=1e-9)
    o.sum().backward()
    t.sum().backward()
    close(lo.grad, lt.grad, rtol=1e-8, atol=1e-9)
    close(so.grad, st_.grad, rtol=1e-8, atol=1e-9)
    s = a.rsample((5,))
    assert tuple(s.shape) == (5,) + batch + (k + 1,)
    assert D.constraints.simplex.check(s).numpy().all() and s.requires_grad
    close(a.loc, loc)
    close(a.scale, scale)


def test_logistic_normal_scalar_params_and_mean():
    tl.manual_seed(2)
    d = D.LogisticNormal(tl.tensor(0.0, dtype=tl.float64), tl.tensor(1.0, dtype=tl.float64))
    td = TD.LogisticNormal(torch.tensor(0.0, dtype=torch.float64),
                           torch.tensor(1.0, dtype=torch.float64))
    assert d.event_shape == tuple(td.event_shape) == (2,)
    x = d.sample((20000,)).numpy()
    np.testing.assert_allclose(x.mean(0), [0.5, 0.5], atol=0.01)      # symmetric at loc 0
