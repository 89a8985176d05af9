"""Beta/Dirichlet small-concentration sampling, Bernoulli KL at probs 0/1, arg_constraints
validation (also under vmap) and the cross-family KL pairs, against torch.distributions."""
import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
D = tl.distributions
TD = torch.distributions


# ---------------------------------------------------------------- #3 small concentrations

@pytest.mark.parametrize("a", [0.005, 0.01, 0.03])
def test_beta_small_concentration_float32_statistics(a):
    n = 40000
    tl.manual_seed(0)
    x = D.Beta(tl.tensor(a), tl.tensor(a)).sample((n,)).numpy()
    torch.manual_seed(0)
    y = TD.Beta(torch.tensor(a), torch.tensor(a)).sample((n,)).numpy()
    assert x.dtype == np.float32
    assert (x == 0.5).mean() <= (y == 0.5).mean() + 0.002
    mid_x, mid_y = ((x > 0.1) & (x < 0.9)).mean(), ((y > 0.1) & (y < 0.9)).mean()
    assert abs(mid_x - mid_y) < 0.006
    assert abs(x.std() - y.std()) < 0.004
    assert ((x > 0) & (x < 1)).all()


def test_dirichlet_small_concentration_float32_statistics():
    n = 40000
    tl.manual_seed(0)
    d = D.Dirichlet(tl.tensor([0.01, 0.01, 0.01])).sample((n,)).numpy()
    torch.manual_seed(0)
    e = TD.Dirichlet(torch.tensor([0.01, 0.01, 0.01])).sample((n,)).numpy()
    assert d.dtype == np.float32
    assert np.all(np.isclose(d, 1 / 3), 1).mean() < 0.001
    assert abs((d.max(1) < 0.9).mean() - (e.max(1) < 0.9).mean()) < 0.006
    np.testing.assert_allclose(d.sum(-1), 1.0, atol=1e-6)


def test_beta_dirichlet_rsample_gradients_match_torch_in_expectation():
    n = 100000
    grads = {}
    for lib, M in ((tl, D), (torch, TD)):
        lib.manual_seed(1)
        a = lib.tensor(2.0, requires_grad=True)
        b = lib.tensor(3.0, requires_grad=True)
        M.Beta(a, b).rsample((n,)).mean().backward()
        c = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        M.Dirichlet(c).rsample((n,))[..., 0].mean().backward()
        grads[lib.__name__] = np.r_[a.grad.item(), b.grad.item(), c.grad.numpy()]
    exact = np.array([3 / 25, -2 / 25, 5 / 36, -1 / 36, -1 / 36])   # d E[x] / d params
    np.testing.assert_allclose(grads["tensorlib"], exact, atol=3e-3)
    np.testing.assert_allclose(grads["torch"], exact, atol=3e-3)


def test_beta_small_concentration_rsample_gradient_finite():
    a = tl.tensor([0.01, 0.02], requires_grad=True)
    tl.manual_seed(0)
    D.Beta(a, a).rsample((500,)).sum().backward()
    assert np.isfinite(a.grad.numpy()).all()


# ---------------------------------------------------------------- #4 Bernoulli KL

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bernoulli_kl_zero_one_probs(dtype):
    p = [0.3, 0.3, 0.0, 1.0, 0.0, 1.0, 0.3, 0.7]
    q = [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.6, 0.2]
    ours = D.kl_divergence(D.Bernoulli(tl.tensor(p, dtype=dtype)),
                           D.Bernoulli(tl.tensor(q, dtype=dtype))).numpy()
    theirs = TD.kl_divergence(TD.Bernoulli(torch.tensor(p, dtype=getattr(torch, dtype))),
                              TD.Bernoulli(torch.tensor(q, dtype=getattr(torch, dtype)))).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert np.isinf(ours[[0, 1, 4, 5]]).all()


def test_bernoulli_kl_gradient_and_logits_exact():
    p64 = np.array([0.2, 0.0, 0.9])
    q64 = np.array([0.5, 0.4, 0.3])
    tp, tq = tl.tensor(p64, requires_grad=True), tl.tensor(q64, requires_grad=True)
    D.kl_divergence(D.Bernoulli(tp), D.Bernoulli(tq)).sum().backward()
    up, uq = torch.tensor(p64, requires_grad=True), torch.tensor(q64, requires_grad=True)
    TD.kl_divergence(TD.Bernoulli(up), TD.Bernoulli(uq)).sum().backward()
    np.testing.assert_allclose(tp.grad.numpy(), up.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(tq.grad.numpy(), uq.grad.numpy(), rtol=1e-10)
    # logits given directly: q's probability underflows in float32 but the KL is finite
    kl = D.kl_divergence(D.Bernoulli(logits=tl.tensor(0.0)), D.Bernoulli(logits=tl.tensor(-200.0)))
    assert abs(float(kl) - (100.0 - math.log(2.0))) < 1e-3


# ---------------------------------------------------------------- #9 validation

class _Logistic(D.Distribution):
    arg_constraints = {"loc": D.constraints.real, "scale": D.constraints.positive}
    support = D.constraints.real

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = loc, scale
        super().__init__(batch_shape=loc.shape, validate_args=validate_args)

    def log_prob(self, x):
        if self._validate_args:
            self._validate_sample(x)
        z = (x - self.loc) / self.scale
        return -z - 2 * tl.nn.functional.softplus(-z) - tl.log(self.scale)


class _Positive(D.Distribution):
    arg_constraints = {"rate": D.constraints.positive}
    support = D.constraints.positive

    def __init__(self, rate, validate_args=None):
        self.rate = rate
        super().__init__(batch_shape=rate.shape, validate_args=validate_args)

    def log_prob(self, x):
        if self._validate_args:
            self._validate_sample(x)
        return self.rate.log() - self.rate * x


def test_custom_distribution_arg_constraints_validated():
    with pytest.raises(ValueError, match=r"Expected parameter scale .* GreaterThan"):
        _Logistic(tl.zeros(3), -tl.ones(3), validate_args=True)
    _Logistic(tl.zeros(3), -tl.ones(3), validate_args=False)       # not checked
    d = _Logistic(tl.zeros(3), tl.ones(3), validate_args=True)
    np.testing.assert_allclose(d.log_prob(tl.zeros(3)).numpy(), -math.log(4.0), rtol=1e-6)


def test_validate_sample_shape_and_support():
    d = _Positive(tl.ones(3), validate_args=True)
    with pytest.raises(ValueError, match="not broadcastable"):
        d.log_prob(tl.ones(4))
    with pytest.raises(ValueError, match="within the support"):
        d.log_prob(tl.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="must be a Tensor"):
        d._validate_sample(1.0)
    assert d.log_prob(tl.ones(2, 3)).shape == (2, 3)


def test_missing_arg_constraints_warns():
    class NoArgs(D.Distribution):
        def __init__(self):
            super().__init__(validate_args=True)
    with pytest.warns(UserWarning, match="arg_constraints"):
        NoArgs()


def test_builtin_arg_constraints_match_torch_and_transform_to():
    names = [n for n in D.__all__ if isinstance(getattr(D, n), type)
             and issubclass(getattr(D, n), D.Distribution) and n != "Distribution"
             and hasattr(TD, n)]
    for n in names:
        ours, theirs = getattr(D, n).arg_constraints, getattr(TD, n).arg_constraints
        if isinstance(theirs, dict):
            assert set(ours) == set(theirs), n
    g = D.Gamma(tl.tensor([1.0, 2.0]), tl.tensor([3.0, 4.0]))
    t = D.transform_to(g.arg_constraints["rate"])
    assert (t(tl.tensor([-5.0, 5.0])).numpy() > 0).all()
    t = D.transform_to(D.Dirichlet(tl.ones(3)).arg_constraints["concentration"])
    assert (t(tl.tensor([-1.0, 0.0, 1.0])).numpy() > 0).all()


def test_builtin_checks_keep_their_messages():
    with pytest.raises(ValueError, match="Normal: scale must be positive"):
        D.Normal(0.0, -1.0)
    with pytest.raises(ValueError, match="probs must lie in"):
        D.Bernoulli(tl.tensor(1.5))


def test_validation_under_vmap():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4, 3)).astype(np.float32)
    X = tl.tensor(x)
    out = tl.func.vmap(lambda v: D.Normal(v.mean(), v.std()).log_prob(v).sum())(X)
    tx = torch.tensor(x)
    ref = torch.func.vmap(lambda v: TD.Normal(v.mean(), v.std()).log_prob(v).sum())(tx)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5)
    out = tl.func.vmap(lambda v: D.Gamma(v.exp(), 2.0).log_prob(v.exp()).sum())(X)
    assert out.shape == (5,)
    out = tl.func.vmap(lambda v: _Logistic(v, tl.ones(3), validate_args=True)
                       .log_prob(v).sum())(X[:, 0])
    np.testing.assert_allclose(out.numpy(), 3 * -math.log(4.0), rtol=1e-5)
    with pytest.raises(ValueError, match="scale must be positive"):
        tl.func.vmap(lambda v: D.Normal(v.mean(), v - 10.0).log_prob(v).sum())(X)
    with pytest.raises(ValueError, match="Expected parameter rate"):
        tl.func.vmap(lambda v: _Positive(v[0], validate_args=True).log_prob(v[0]).sum())(X)


# ---------------------------------------------------------------- #10 KL pairs

_FAMILIES = {
    "Normal": lambda r: [r.normal(size=4), r.uniform(0.5, 3, 4)],
    "Laplace": lambda r: [r.normal(size=4), r.uniform(0.5, 3, 4)],
    "Cauchy": lambda r: [r.normal(size=4), r.uniform(0.5, 3, 4)],
    "Gumbel": lambda r: [r.normal(size=4), r.uniform(0.5, 3, 4)],
    "Exponential": lambda r: [r.uniform(0.5, 3, 4)],
    "Gamma": lambda r: [r.uniform(0.5, 3, 4), r.uniform(0.5, 3, 4)],
    "Beta": lambda r: [r.uniform(0.5, 3, 4), r.uniform(0.5, 3, 4)],
    "Uniform": lambda r: [r.uniform(0.1, 0.4, 4), r.uniform(0.5, 0.9, 4)],
    "Pareto": lambda r: [r.uniform(0.05, 0.1, 4), r.uniform(2.5, 4, 4)],
    "ContinuousBernoulli": lambda r: [r.uniform(0.05, 0.95, 4)],
    "Bernoulli": lambda r: [r.uniform(0.05, 0.95, 4)],
    "Poisson": lambda r: [r.uniform(0.5, 3, 4)],
    "Geometric": lambda r: [r.uniform(0.05, 0.95, 4)],
    "HalfNormal": lambda r: [r.uniform(0.5, 3, 4)],
}
_PAIRS = sorted({(a.__name__, b.__name__) for a, b in TD.kl._KL_REGISTRY
                 if a.__name__ in _FAMILIES and b.__name__ in _FAMILIES})


def _kl_both(a, b, pa, pb):
    out = {}
    for lib, M in ((tl, D), (torch, TD)):
        ta = [lib.tensor(v, requires_grad=True) for v in pa]
        tb = [lib.tensor(v, requires_grad=True) for v in pb]
        kl = M.kl_divergence(getattr(M, a)(*ta), getattr(M, b)(*tb))
        finite = np.isfinite(kl.detach().numpy())
        grads = []
        if finite.all():
            kl.sum().backward()
            grads = [t.grad.numpy() if t.grad is not None else np.zeros_like(pv)
                     for t, pv in zip(ta + tb, pa + pb)]
        out[lib.__name__] = kl.detach().numpy(), grads
    return out


@pytest.mark.parametrize("a,b", _PAIRS)
def test_kl_pairs_match_torch(a, b):
    r = np.random.default_rng(zlib.crc32(f"{a}{b}".encode()))
    res = _kl_both(a, b, _FAMILIES[a](r), _FAMILIES[b](r))
    (v1, g1), (v2, g2) = res["tensorlib"], res["torch"]
    np.testing.assert_allclose(v1, v2, rtol=1e-9, atol=1e-12)
    for x, y in zip(g1, g2):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-10)   # trigamma rounding


def test_kl_pair_count_covers_torch_registry():
    from tensorlib.distributions.kl import _KL
    ours = {(x.__name__, y.__name__) for x, y in _KL}
    missing = [(x.__name__, y.__name__) for x, y in TD.kl._KL_REGISTRY
               if hasattr(D, x.__name__) and hasattr(D, y.__name__)
               and (x.__name__, y.__name__) not in ours]
    assert missing == []


@settings(max_examples=25, deadline=None)
@given(st.floats(0.05, 0.95), st.floats(0.05, 0.95), st.integers(1, 8), st.integers(0, 3))
def test_kl_binomial_property(p, q, n, extra):
    ours = D.kl_divergence(D.Binomial(n + extra, tl.tensor(p, dtype="float64")),
                           D.Binomial(n, tl.tensor(q, dtype="float64")))
    theirs = TD.kl_divergence(TD.Binomial(n + extra, torch.tensor(p, dtype=torch.float64)),
                              TD.Binomial(n, torch.tensor(q, dtype=torch.float64)))
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-10)


def test_kl_errors_and_edges():
    with pytest.raises(NotImplementedError, match="total_count"):
        D.kl_divergence(D.Binomial(3, tl.tensor(0.2)), D.Binomial(5, tl.tensor(0.3)))
    # Pareto with alpha <= 1 (infinite mean) and a Uniform sticking out of q's support: inf
    kl = D.kl_divergence(D.Pareto(tl.tensor([1.0, 1.0]), tl.tensor([0.5, 3.0])),
                         D.Exponential(tl.tensor(1.0)))
    assert math.isinf(float(kl[0])) and math.isfinite(float(kl[1]))
    kl = D.kl_divergence(D.Uniform(tl.tensor([-0.5, 0.2]), tl.tensor(0.8)),
                         D.Beta(tl.tensor(2.0), tl.tensor(2.0)))
    ref = TD.kl_divergence(TD.Uniform(torch.tensor([-0.5, 0.2]), torch.tensor(0.8)),
                           TD.Beta(torch.tensor(2.0), torch.tensor(2.0)))
    np.testing.assert_allclose(kl.numpy(), ref.numpy(), rtol=1e-6)
    assert math.isinf(float(D.kl_divergence(D.Normal(0.0, 1.0), D.Uniform(0.0, 1.0))))
