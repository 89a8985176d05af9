"""tl.distributions transforms, TransformedDistribution, MixtureSameFamily,
LowRankMultivariateNormal, ContinuousBernoulli and the relaxed distributions against
torch.distributions: values, shapes, gradients, caching, sampling statistics, a small
RealNVP flow and a Gaussian mixture fit trained side by side."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import distributions as D
from tensorlib.distributions import transforms as T

torch = pytest.importorskip("torch")
TD = torch.distributions
TT = torch.distributions.transforms
rng = np.random.default_rng(0)


def both(*arrays):
    """The same float64 values as grad-requiring tensorlib and torch tensors."""
    return ([tl.tensor(np.asarray(a), requires_grad=True) for a in arrays],
            [torch.tensor(np.asarray(a), requires_grad=True) for a in arrays])


def agree(o, t, ours, theirs, atol=1e-10, rtol=1e-8):
    """Values, and the gradients of a random weighted sum, match."""
    np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=rtol, atol=atol)
    assert o.requires_grad == t.requires_grad
    if not t.requires_grad:                 # a constant (e.g. a fixed affine's Jacobian)
        return
    w = rng.standard_normal(tuple(t.shape))
    (o * tl.tensor(w)).sum().backward()
    (t * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, theirs):
        assert (a.grad is None) == (b.grad is None)
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- transforms

ELEMENTWISE = {
    "exp": (lambda m, p: m.ExpTransform(), lambda x: x),
    "sigmoid": (lambda m, p: m.SigmoidTransform(), lambda x: x),
    "tanh": (lambda m, p: m.TanhTransform(), lambda x: 0.8 * x),
    "affine": (lambda m, p: m.AffineTransform(p[0], p[1]), lambda x: x),
    "affine_neg": (lambda m, p: m.AffineTransform(0.5, -1.5), lambda x: x),
    "power": (lambda m, p: m.PowerTransform(p[1]), lambda x: np.abs(x) + 0.1),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_transform_matches_torch(name):
    make, domain = ELEMENTWISE[name]
    x = domain(rng.standard_normal((3, 4)))
    params = (rng.standard_normal(4), rng.uniform(0.5, 2.0, 4))
    (xo, lo, so), (xt, lt, st_) = both(x, *params)
    a, b = make(T, (lo, so)), make(TT, (lt, st_))
    yo, yt = a(xo), b(xt)
    agree(yo, yt, [xo, lo, so], [xt, lt, st_])
    (xo, lo, so), (xt, lt, st_) = both(x, *params)
    a, b = make(T, (lo, so)), make(TT, (lt, st_))
    agree(a.log_abs_det_jacobian(xo, a(xo)), b.log_abs_det_jacobian(xt, b(xt)),
          [xo, lo, so], [xt, lt, st_])
    # the inverse: a round trip, and its Jacobian is minus the forward one
    y = a(tl.tensor(x))
    np.testing.assert_allclose(a.inv(y).numpy(), x, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a.inv.log_abs_det_jacobian(y, tl.tensor(x)).numpy(),
                               -a.log_abs_det_jacobian(tl.tensor(x), y).numpy(), atol=1e-12)
    assert a.bijective and a.inv.bijective
    assert a.domain.event_dim == b.domain.event_dim == a.event_dim
    assert a.inv.inv is a


def test_transform_signs_and_constraints():
    assert T.ExpTransform().sign == 1 and T.AffineTransform(0.0, -2.0).sign == -1
    s = T.AffineTransform(0.0, tl.tensor([-2.0, 3.0])).sign
    assert s.numpy().tolist() == [-1.0, 1.0]
    assert T.PowerTransform(tl.tensor(-0.5)).sign.item() == -1.0
    with pytest.raises(NotImplementedError, match="not monotone"):
        _ = T.SoftmaxTransform().sign
    c = T.SigmoidTransform().codomain
    assert c.check(tl.tensor([0.5, 1.5])).numpy().tolist() == [True, False]
    assert T.ExpTransform().codomain.check(tl.tensor([-1.0, 2.0])).numpy().tolist() == \
        [False, True]
    assert T.SoftmaxTransform().codomain.event_dim == 1
    assert not T.SoftmaxTransform().bijective and not T.AbsTransform().bijective


def test_softmax_and_abs_transforms():
    x = rng.standard_normal((2, 5))
    (xo,), (xt,) = both(x)
    agree(T.SoftmaxTransform()(xo), TT.SoftmaxTransform()(xt), [xo], [xt])
    y = T.SoftmaxTransform()(tl.tensor(x))
    # inv gives log-probabilities: one preimage, mapping back to the same point
    np.testing.assert_allclose(T.SoftmaxTransform()(T.SoftmaxTransform().inv(y)).numpy(),
                               y.numpy(), rtol=1e-12)
    (xo,), (xt,) = both(x)
    agree(T.AbsTransform()(xo), TT.AbsTransform()(xt), [xo], [xt])
    assert T.AbsTransform().inv(tl.tensor([2.0])).item() == 2.0


def test_cache_size_one_returns_the_cached_pair():
    x = tl.tensor(rng.standard_normal(3))
    for cls in (T.ExpTransform, T.SigmoidTransform, T.TanhTransform):
        t = cls(cache_size=1)
        y = t(x)
        assert t.inv(y) is x            # the cached x, not a recomputation
        assert t(x) is y
        t0 = cls()
        assert t0.inv(t0(x)) is not x
    t = T.ComposeTransform([T.AffineTransform(1.0, 2.0), T.ExpTransform()], cache_size=1)
    y = t(x)
    assert t.inv(y) is x
    with pytest.raises(ValueError, match="cache_size must be 0 or 1"):
        T.ExpTransform(cache_size=2)


def test_inverse_cache_is_shared():
    # a value produced by inv is cached too: the forward of it returns the input again
    t = T.ExpTransform(cache_size=1)
    y = tl.tensor([1.0, 2.0])
    x = t.inv(y)
    assert t(x) is y


def test_compose_independent_reshape_match_torch():
    x = rng.standard_normal((5, 6))
    loc, scale = rng.standard_normal(6), rng.uniform(0.5, 2.0, 6)

    def chain(m, lo, so):
        return m.ComposeTransform([
            m.AffineTransform(lo, so, event_dim=1),
            m.IndependentTransform(m.SigmoidTransform(), 1),
            m.ReshapeTransform((6,), (2, 3)),
        ])

    (xo, lo, so), (xt, lt, st_) = both(x, loc, scale)
    a, b = chain(T, lo, so), chain(TT, lt, st_)
    yo, yt = a(xo), b(xt)
    assert tuple(yo.shape) == tuple(yt.shape) == (5, 2, 3)
    assert a.domain.event_dim == b.domain.event_dim == 1
    assert a.codomain.event_dim == b.codomain.event_dim == 2
    agree(a.log_abs_det_jacobian(xo, yo), b.log_abs_det_jacobian(xt, yt), [xo, lo, so],
          [xt, lt, st_])
    np.testing.assert_allclose(a.inv(yo.detach()).numpy(), x, rtol=1e-7, atol=1e-9)
    assert a.forward_shape((4, 6)) == (4, 2, 3) and a.inverse_shape((4, 2, 3)) == (4, 6)


def test_compose_mixed_event_dims_sums_like_torch():
    x = rng.standard_normal((4, 3))
    # an elementwise part before a vector part: its Jacobian is summed over the event
    a = T.ComposeTransform([T.ExpTransform(), T.IndependentTransform(T.TanhTransform(), 1)])
    b = TT.ComposeTransform([TT.ExpTransform(), TT.IndependentTransform(TT.TanhTransform(), 1)])
    xo, xt = tl.tensor(x * 0.3), torch.tensor(x * 0.3)
    np.testing.assert_allclose(a.log_abs_det_jacobian(xo, a(xo)).numpy(),
                               b.log_abs_det_jacobian(xt, b(xt)).numpy(), rtol=1e-10)
    assert a.log_abs_det_jacobian(xo, a(xo)).shape == (4,)


def test_stack_and_cat_transforms_match_torch():
    x = rng.standard_normal((4, 3))
    a = T.StackTransform([T.ExpTransform(), T.AffineTransform(1.0, 3.0), T.TanhTransform()],
                         dim=1)
    b = TT.StackTransform([TT.ExpTransform(), TT.AffineTransform(1.0, 3.0),
                           TT.TanhTransform()], dim=1)
    (xo,), (xt,) = both(x)
    agree(a(xo), b(xt), [xo], [xt])
    (xo,), (xt,) = both(x)
    agree(a.log_abs_det_jacobian(xo, a(xo)), b.log_abs_det_jacobian(xt, b(xt)), [xo], [xt])
    np.testing.assert_allclose(a.inv(a(tl.tensor(x))).numpy(), x, rtol=1e-9)
    x = rng.standard_normal((2, 5))
    a = T.CatTransform([T.ExpTransform(), T.SigmoidTransform()], dim=1, lengths=[2, 3])
    b = TT.CatTransform([TT.ExpTransform(), TT.SigmoidTransform()], dim=1, lengths=[2, 3])
    (xo,), (xt,) = both(x)
    agree(a(xo), b(xt), [xo], [xt])
    (xo,), (xt,) = both(x)
    agree(a.log_abs_det_jacobian(xo, a(xo)), b.log_abs_det_jacobian(xt, b(xt)), [xo], [xt])
    np.testing.assert_allclose(a.inv(a(tl.tensor(x))).numpy(), x, rtol=1e-9)
    with pytest.raises(ValueError, match="lengths"):
        a(tl.zeros(2, 4))


def test_transform_errors():
    with pytest.raises(ValueError, match="different numbers of elements"):
        T.ReshapeTransform((4,), (3,))
    with pytest.raises(ValueError, match=r"does not end in \(4,\)"):
        T.ReshapeTransform((4,), (2, 2))(tl.zeros(3, 5))
    with pytest.raises(TypeError, match="must be Transforms"):
        T.ComposeTransform([T.ExpTransform(), "exp"])
    with pytest.raises(ValueError, match="ambiguous"):
        _ = T.ComposeTransform([T.ReshapeTransform((4,), (2, 2))]).event_dim


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       scale=st.floats(0.2, 5.0), loc=st.floats(-3.0, 3.0), neg=st.booleans())
def test_affine_exp_round_trip_property(shape, scale, loc, neg):
    scale = -scale if neg else scale
    x = rng.standard_normal(shape)
    a = T.ComposeTransform([T.AffineTransform(loc, scale), T.TanhTransform()])
    b = TT.ComposeTransform([TT.AffineTransform(loc, scale), TT.TanhTransform()])
    xo = tl.tensor(x * 0.2)
    y = a(xo)
    np.testing.assert_allclose(a.inv(y).numpy(), x * 0.2, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(a.log_abs_det_jacobian(xo, y).numpy(),
                               b.log_abs_det_jacobian(torch.tensor(x * 0.2),
                                                      b(torch.tensor(x * 0.2))).numpy(),
                               rtol=1e-9, atol=1e-9)
    assert a.sign == (-1 if neg else 1)


# ------------------------------------------------------------- TransformedDistribution

def _lognormal_pair(loc, scale, m, dist):
    return dist.TransformedDistribution(dist.Normal(loc, scale),
                                        [m.AffineTransform(0.5, 2.0), m.ExpTransform()])


def test_transformed_log_prob_cdf_icdf_match_torch():
    loc, scale = rng.standard_normal((2, 3)), rng.uniform(0.5, 1.5, (2, 3))
    v = np.exp(rng.standard_normal((4, 2, 3)))
    for fn in (lambda d, x: d.log_prob(x), lambda d, x: d.cdf(x)):
        (lo, so), (lt, st_) = both(loc, scale)
        o = fn(_lognormal_pair(lo, so, T, D), tl.tensor(v))
        t = fn(_lognormal_pair(lt, st_, TT, TD), torch.tensor(v))
        agree(o, t, [lo, so], [lt, st_])
    q = rng.uniform(0.05, 0.95, (2, 3))
    (lo, so), (lt, st_) = both(loc, scale)
    agree(_lognormal_pair(lo, so, T, D).icdf(tl.tensor(q)),
          _lognormal_pair(lt, st_, TT, TD).icdf(torch.tensor(q)), [lo, so], [lt, st_])


def test_transformed_decreasing_chain_monotonizes_cdf():
    def make(m, dist):
        return dist.TransformedDistribution(dist.Normal(0.2, 1.3),
                                            [m.AffineTransform(1.0, -2.0), m.SigmoidTransform()])
    v = rng.uniform(0.05, 0.95, 6)
    d, td = make(T, D), make(TT, TD)
    np.testing.assert_allclose(d.cdf(tl.tensor(v)).numpy(), td.cdf(torch.tensor(v)).numpy(),
                               rtol=1e-6)
    q = rng.uniform(0.05, 0.95, 6)
    np.testing.assert_allclose(d.icdf(tl.tensor(q)).numpy(), td.icdf(torch.tensor(q)).numpy(),
                               rtol=1e-5)
    # cdf is increasing in the value even though the chain decreases
    c = d.cdf(tl.tensor(np.sort(v))).numpy()
    assert (np.diff(c) > 0).all()


def test_transformed_shapes_follow_torch():
    cases = [
        (lambda m, dist: dist.Normal(torch_or_tl(m, np.zeros(3)), 1.0),
         lambda m: [m.AffineTransform(torch_or_tl(m, np.zeros((2, 3))), 1.0)]),
        (lambda m, dist: dist.Normal(torch_or_tl(m, np.zeros((4, 6))), 1.0),
         lambda m: [m.ReshapeTransform((6,), (2, 3))]),
        (lambda m, dist: dist.Normal(torch_or_tl(m, np.zeros((4, 3))), 1.0),
         lambda m: [m.SoftmaxTransform()]),
        (lambda m, dist: dist.Normal(torch_or_tl(m, np.zeros((4, 3))), 1.0),
         lambda m: [m.IndependentTransform(m.ExpTransform(), 2)]),
        (lambda m, dist: dist.MultivariateNormal(torch_or_tl(m, np.zeros((2, 3))),
                                                 torch_or_tl(m, np.eye(3))),
         lambda m: [m.ExpTransform()]),
    ]
    for base, ts in cases:
        d = D.TransformedDistribution(base(T, D), ts(T))
        td = TD.TransformedDistribution(base(TT, TD), ts(TT))
        assert d.batch_shape == tuple(td.batch_shape)
        assert d.event_shape == tuple(td.event_shape)
        assert tuple(d.sample((5,)).shape) == tuple(td.sample((5,)).shape)
        assert tuple(d.rsample().shape) == tuple(td.rsample().shape)
        x = td.sample((2,))
        if not isinstance(ts(TT)[0], TT.SoftmaxTransform):
            np.testing.assert_allclose(d.log_prob(tl.tensor(x.numpy())).numpy(),
                                       td.log_prob(x).numpy(), rtol=1e-9, atol=1e-9)
    d = D.TransformedDistribution(D.Normal(tl.zeros(3), 1.0), T.ExpTransform())
    e = d.expand((2, 3))
    assert e.batch_shape == (2, 3) and tuple(e.sample().shape) == (2, 3)


def torch_or_tl(m, a):
    return torch.tensor(a) if m is TT else tl.tensor(a)


def test_transformed_rsample_is_the_transform_of_the_base_draw():
    loc, scale = rng.standard_normal(3), rng.uniform(0.5, 1.5, 3)
    lo, so = (tl.tensor(a, requires_grad=True) for a in (loc, scale))
    d = D.TransformedDistribution(D.Normal(lo, so), [T.AffineTransform(1.0, 2.0),
                                                     T.TanhTransform()])
    assert d.has_rsample
    tl.manual_seed(3)
    y = d.rsample((4,))
    tl.manual_seed(3)
    eps = tl.randn(4, 3, dtype=tl.float64)
    expect = np.tanh(1.0 + 2.0 * (loc + eps.numpy() * scale))
    np.testing.assert_allclose(y.numpy(), expect, rtol=1e-12)
    y.sum().backward()
    g = 2.0 * (1.0 - expect ** 2)
    np.testing.assert_allclose(lo.grad.numpy(), g.sum(0), rtol=1e-10)
    np.testing.assert_allclose(so.grad.numpy(), (g * eps.numpy()).sum(0), rtol=1e-10)
    assert not D.TransformedDistribution(D.Bernoulli(probs=0.3), T.ExpTransform()).has_rsample


def test_transformed_log_prob_gradcheck():
    def f(loc, scale, x):
        d = D.TransformedDistribution(D.Normal(loc, scale),
                                      [T.SigmoidTransform(), T.PowerTransform(2.0)],
                                      validate_args=False)
        return d.log_prob(x)
    args = [tl.tensor(rng.standard_normal(3), requires_grad=True),
            tl.tensor(rng.uniform(0.5, 1.5, 3), requires_grad=True),
            tl.tensor(rng.uniform(0.1, 0.8, 3), requires_grad=True)]
    assert tl.autograd.gradcheck(f, args)
    assert tl.autograd.gradgradcheck(f, args)


def test_transformed_validation_and_kl():
    d = D.TransformedDistribution(D.Normal(0.0, 1.0), T.ExpTransform())
    with pytest.raises(ValueError, match="support"):
        d.log_prob(tl.tensor(-1.0))
    with pytest.raises(TypeError, match="Transform"):
        D.TransformedDistribution(D.Normal(0.0, 1.0), ["exp"])
    loc, scale = rng.standard_normal(3), rng.uniform(0.5, 1.5, 3)
    (lo, so), (lt, st_) = both(loc, scale)
    p = D.TransformedDistribution(D.Normal(lo, so), T.AffineTransform(1.0, 2.0))
    q = D.TransformedDistribution(D.Normal(0.3, 0.7), T.AffineTransform(1.0, 2.0))
    tp = TD.TransformedDistribution(TD.Normal(lt, st_), TT.AffineTransform(1.0, 2.0))
    tq = TD.TransformedDistribution(TD.Normal(0.3, 0.7), TT.AffineTransform(1.0, 2.0))
    agree(D.kl_divergence(p, q), TD.kl_divergence(tp, tq), [lo, so], [lt, st_])
    q2 = D.TransformedDistribution(D.Normal(0.3, 0.7), T.AffineTransform(1.0, 3.0))
    with pytest.raises(NotImplementedError, match="different transforms"):
        D.kl_divergence(p, q2)


# --------------------------------------------------------------------- a RealNVP flow

def _make_coupling(m, cons, net_s, net_t, flip):
    """An affine coupling layer (Dinh et al., RealNVP) as a Transform subclass of either
    library: one coordinate is scaled and shifted by nets of the other."""
    class Coupling(m.Transform):
        bijective = True
        domain = cons.real_vector
        codomain = cons.real_vector

        def __init__(self):
            super().__init__(cache_size=1)

        def _split(self, x):
            a, b = x[..., :1], x[..., 1:]
            return (b, a) if flip else (a, b)

        def _join(self, a, b, lib):
            return lib.cat([b, a] if flip else [a, b], -1)

        def _call(self, x):
            a, b = self._split(x)
            s = net_s(a).tanh()
            return self._join(a, b * s.exp() + net_t(a), tl if m is T else torch)

        def _inverse(self, y):
            a, b = self._split(y)
            s = net_s(a).tanh()
            return self._join(a, (b - net_t(a)) * (-s).exp(), tl if m is T else torch)

        def log_abs_det_jacobian(self, x, y):
            a, _ = self._split(x)
            return net_s(a).tanh().sum(-1)

    return Coupling()


def test_realnvp_flow_trains_like_torch():
    tl.manual_seed(0)
    torch.manual_seed(0)
    nets_o, nets_t = [], []
    for _ in range(4):
        lo = tl.nn.Sequential(tl.nn.Linear(1, 8), tl.nn.Tanh(), tl.nn.Linear(8, 1))
        lt = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        for po, pt in zip(lo.parameters(), lt.parameters()):
            w = rng.standard_normal(tuple(pt.shape)) * 0.5
            with torch.no_grad():
                pt.copy_(torch.tensor(w, dtype=torch.float32))
            po.data = tl.tensor(w.astype(np.float32))
        nets_o.append(lo)
        nets_t.append(lt)
    ts_o = [_make_coupling(T, D.constraints, nets_o[2 * i], nets_o[2 * i + 1], i % 2 == 1)
            for i in range(2)]
    ts_t = [_make_coupling(TT, TD.constraints, nets_t[2 * i], nets_t[2 * i + 1], i % 2 == 1)
            for i in range(2)]
    flow_o = D.TransformedDistribution(D.Independent(D.Normal(tl.zeros(2), tl.ones(2)), 1),
                                       ts_o)
    flow_t = TD.TransformedDistribution(
        TD.Independent(TD.Normal(torch.zeros(2), torch.ones(2)), 1), ts_t)
    assert flow_o.event_shape == (2,) and flow_o.batch_shape == ()
    data = (rng.standard_normal((64, 2)) * [0.5, 2.0] + [1.0, -1.0]).astype(np.float32)
    params_o = [p for n in nets_o for p in n.parameters()]
    params_t = [p for n in nets_t for p in n.parameters()]
    opt_o = tl.optim.SGD(params_o, lr=0.05)
    opt_t = torch.optim.SGD(params_t, lr=0.05)
    losses = []
    for _ in range(5):
        lo_ = -flow_o.log_prob(tl.tensor(data)).mean()
        lt_ = -flow_t.log_prob(torch.tensor(data)).mean()
        opt_o.zero_grad()
        opt_t.zero_grad()
        lo_.backward()
        lt_.backward()
        opt_o.step()
        opt_t.step()
        np.testing.assert_allclose(lo_.item(), lt_.item(), rtol=1e-5)
        losses.append(lo_.item())
    for po, pt in zip(params_o, params_t):
        np.testing.assert_allclose(po.numpy(), pt.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert losses[-1] < losses[0]
    # sampling runs the couplings forward; log_prob of the samples is finite
    x = flow_o.sample((10,))
    assert tuple(x.shape) == (10, 2) and np.isfinite(flow_o.log_prob(x).numpy()).all()


# ------------------------------------------------------------------ MixtureSameFamily

def test_mixture_of_normals_matches_torch():
    w, mu, s = rng.uniform(0.2, 1.0, (2, 3)), rng.standard_normal((2, 3)), \
        rng.uniform(0.5, 1.5, (2, 3))
    v = rng.standard_normal((4, 2))
    for fn in (lambda d: d.log_prob(v_(d, v)), lambda d: d.cdf(v_(d, v)),
               lambda d: d.mean, lambda d: d.variance):
        (wo, mo, so), (wt, mt, st_) = both(w, mu, s)
        o = fn(D.MixtureSameFamily(D.Categorical(logits=wo), D.Normal(mo, so)))
        t = fn(TD.MixtureSameFamily(TD.Categorical(logits=wt), TD.Normal(mt, st_)))
        agree(o, t, [wo, mo, so], [wt, mt, st_])


def v_(d, v):
    return torch.tensor(v) if isinstance(d, TD.Distribution) else tl.tensor(v)


def test_mixture_of_multivariate_components_and_shapes():
    w = rng.uniform(0.2, 1.0, 3)
    mu, s = rng.standard_normal((3, 2)), rng.uniform(0.5, 1.5, (3, 2))
    (wo, mo, so), (wt, mt, st_) = both(w, mu, s)
    d = D.MixtureSameFamily(D.Categorical(probs=wo), D.Independent(D.Normal(mo, so), 1))
    td = TD.MixtureSameFamily(TD.Categorical(probs=wt), TD.Independent(TD.Normal(mt, st_), 1))
    assert d.batch_shape == () and d.event_shape == (2,)
    assert not d.has_rsample
    v = rng.standard_normal((5, 2))
    agree(d.log_prob(tl.tensor(v)), td.log_prob(torch.tensor(v)), [wo, mo, so], [wt, mt, st_])
    np.testing.assert_allclose(d.mean.detach().numpy(), td.mean.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(d.variance.detach().numpy(), td.variance.detach().numpy(),
                               rtol=1e-12)
    assert tuple(d.sample((7, 4)).shape) == (7, 4, 2)
    with pytest.raises(NotImplementedError):
        d.rsample()


def test_mixture_sample_statistics():
    tl.manual_seed(1)
    w = np.array([0.2, 0.5, 0.3])
    d = D.MixtureSameFamily(D.Categorical(probs=tl.tensor(w)),
                            D.Normal(tl.tensor([-5.0, 0.0, 5.0]), tl.tensor([0.3, 0.3, 0.3])))
    x = d.sample((20000,)).numpy()
    assert x.shape == (20000,)
    frac = [(x < -2.5).mean(), ((x > -2.5) & (x < 2.5)).mean(), (x > 2.5).mean()]
    np.testing.assert_allclose(frac, w, atol=0.02)
    np.testing.assert_allclose(x.mean(), d.mean.item(), atol=0.1)
    np.testing.assert_allclose(x.var(), d.variance.item(), rtol=0.05)


def test_mixture_broadcast_mixture_batch():
    # one set of weights shared by a batch of 2 mixtures of 3 components
    w, mu = rng.uniform(0.2, 1.0, 3), rng.standard_normal((2, 3))
    d = D.MixtureSameFamily(D.Categorical(probs=tl.tensor(w)), D.Normal(tl.tensor(mu), 1.0))
    td = TD.MixtureSameFamily(TD.Categorical(probs=torch.tensor(w)),
                              TD.Normal(torch.tensor(mu), 1.0))
    assert d.batch_shape == (2,) == tuple(td.batch_shape)
    v = rng.standard_normal((4, 2))
    np.testing.assert_allclose(d.log_prob(tl.tensor(v)).numpy(),
                               td.log_prob(torch.tensor(v)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(d.mean.numpy(), td.mean.numpy(), rtol=1e-12)
    assert tuple(d.sample((5,)).shape) == (5, 2)


def test_mixture_errors():
    with pytest.raises(ValueError, match="3 components, component_distribution 2"):
        D.MixtureSameFamily(D.Categorical(logits=tl.zeros(3)), D.Normal(tl.zeros(2), 1.0))
    with pytest.raises(ValueError, match="must be a Categorical"):
        D.MixtureSameFamily(D.Normal(0.0, 1.0), D.Normal(tl.zeros(2), 1.0))


def test_gmm_fit_matches_torch():
    data = np.concatenate([rng.normal(-2.0, 0.5, 200), rng.normal(1.5, 0.8, 300)])
    init = [np.zeros(2), np.array([-0.5, 0.5]), np.zeros(2)]
    (lo, mo, so), (lt, mt, st_) = both(*init)

    def nll(lib, dist, logits, mu, log_s, x):
        gmm = dist.MixtureSameFamily(dist.Categorical(logits=logits),
                                     dist.Normal(mu, log_s.exp()))
        return -gmm.log_prob(x).mean()

    opt_o, opt_t = tl.optim.Adam([lo, mo, so], lr=0.05), torch.optim.Adam([lt, mt, st_], lr=0.05)
    first = None
    for _ in range(150):
        a = nll(tl, D, lo, mo, so, tl.tensor(data))
        b = nll(torch, TD, lt, mt, st_, torch.tensor(data))
        opt_o.zero_grad()
        opt_t.zero_grad()
        a.backward()
        b.backward()
        opt_o.step()
        opt_t.step()
        first = a.item() if first is None else first
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-8)
    for po, pt in zip([lo, mo, so], [lt, mt, st_]):
        np.testing.assert_allclose(po.numpy(), pt.detach().numpy(), rtol=1e-6, atol=1e-8)
    assert a.item() < first - 0.3
    # the fit found the two modes
    np.testing.assert_allclose(np.sort(mo.numpy()), [-2.0, 1.5], atol=0.35)


# ---------------------------------------------------------- LowRankMultivariateNormal

def _lowrank_params():
    return rng.standard_normal((2, 4)), rng.standard_normal((2, 4, 2)), \
        rng.uniform(0.5, 1.5, (2, 4))


@pytest.mark.parametrize("what", ["log_prob", "entropy", "covariance_matrix",
                                  "precision_matrix", "scale_tril", "variance"])
def test_lowrank_mvn_matches_torch(what):
    params = _lowrank_params()
    v = rng.standard_normal((3, 2, 4))
    (lo, wo, do), (lt, wt, dt) = both(*params)
    d, td = D.LowRankMultivariateNormal(lo, wo, do), TD.LowRankMultivariateNormal(lt, wt, dt)
    if what == "log_prob":
        o, t = d.log_prob(tl.tensor(v)), td.log_prob(torch.tensor(v))
    elif what == "entropy":
        o, t = d.entropy(), td.entropy()
    else:
        o, t = getattr(d, what), getattr(td, what)
    agree(o, t, [lo, wo, do], [lt, wt, dt], atol=1e-9)


def test_lowrank_mvn_shapes_rsample_and_statistics():
    loc, w, dg = np.array([1.0, -1.0, 0.5]), rng.standard_normal((3, 2)), \
        np.array([0.5, 1.0, 0.2])
    lo, wo, do = (tl.tensor(a, requires_grad=True) for a in (loc, w, dg))
    d = D.LowRankMultivariateNormal(lo, wo, do)
    assert d.batch_shape == () and d.event_shape == (3,)
    e = D.LowRankMultivariateNormal(tl.zeros(5, 1, 3), tl.tensor(w), tl.ones(2, 3))
    assert e.batch_shape == (5, 2) and tuple(e.rsample((4,)).shape) == (4, 5, 2, 3)
    tl.manual_seed(0)
    x = d.rsample((40000,))
    cov = np.cov(x.detach().numpy().T)
    np.testing.assert_allclose(cov, w @ w.T + np.diag(dg), atol=0.08)
    np.testing.assert_allclose(x.detach().numpy().mean(0), loc, atol=0.05)
    # reparameterized: d mean(x) / d loc is 1, and the diag gets d sum(x^2)... through sqrt(D)
    (x.mean(0).sum()).backward()
    np.testing.assert_allclose(lo.grad.numpy(), np.ones(3), rtol=1e-9)
    assert wo.grad is not None and do.grad is not None


def test_lowrank_mvn_rsample_formula_with_seeded_noise():
    loc, w, dg = rng.standard_normal(3), rng.standard_normal((3, 2)), rng.uniform(0.5, 1.5, 3)
    lo, wo, do = (tl.tensor(a, requires_grad=True) for a in (loc, w, dg))
    tl.manual_seed(5)
    x = D.LowRankMultivariateNormal(lo, wo, do).rsample((6,))
    tl.manual_seed(5)
    ew, ed = tl.randn(6, 2, dtype=tl.float64).numpy(), tl.randn(6, 3, dtype=tl.float64).numpy()
    expect = loc + ew @ w.T + np.sqrt(dg) * ed
    np.testing.assert_allclose(x.detach().numpy(), expect, rtol=1e-12)
    g = rng.standard_normal((6, 3))
    (x * tl.tensor(g)).sum().backward()
    np.testing.assert_allclose(wo.grad.numpy(), g.T @ ew, rtol=1e-10)
    np.testing.assert_allclose(do.grad.numpy(), (g * ed).sum(0) / (2 * np.sqrt(dg)),
                               rtol=1e-10)


def test_lowrank_mvn_log_prob_gradcheck_and_errors():
    params = [tl.tensor(a, requires_grad=True) for a in _lowrank_params()]
    v = tl.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    assert tl.autograd.gradcheck(
        lambda lo, w, dg, x: D.LowRankMultivariateNormal(lo, w, dg).log_prob(x), params + [v])
    with pytest.raises(ValueError, match=r"cov_factor must be \(\.\.\., 4, m\)"):
        D.LowRankMultivariateNormal(tl.zeros(4), tl.zeros(3, 2), tl.ones(4))
    with pytest.raises(ValueError, match="cov_diag must be positive"):
        D.LowRankMultivariateNormal(tl.zeros(4), tl.zeros(4, 2), -tl.ones(4))
    with pytest.raises(ValueError, match="do not broadcast"):
        D.LowRankMultivariateNormal(tl.zeros(2, 4), tl.zeros(3, 4, 2), tl.ones(4))


@pytest.mark.parametrize("pair", ["lowrank_lowrank", "lowrank_mvn", "mvn_lowrank"])
def test_lowrank_kl_matches_torch(pair):
    loc, w, dg = _lowrank_params()
    loc2, w2, dg2 = _lowrank_params()
    a = rng.standard_normal((4, 4))
    cov = a @ a.T + 4 * np.eye(4)
    (lo, wo, do, lo2, wo2, do2, co), (lt, wt, dt, lt2, wt2, dt2, ct) = \
        both(loc, w, dg, loc2, w2, dg2, cov)
    lr_o, lr_t = D.LowRankMultivariateNormal(lo, wo, do), TD.LowRankMultivariateNormal(lt, wt, dt)
    if pair == "lowrank_lowrank":
        q_o = D.LowRankMultivariateNormal(lo2, wo2, do2)
        q_t = TD.LowRankMultivariateNormal(lt2, wt2, dt2)
        o, t = D.kl_divergence(lr_o, q_o), TD.kl_divergence(lr_t, q_t)
    else:
        m_o = D.MultivariateNormal(lo2, covariance_matrix=co)
        m_t = TD.MultivariateNormal(lt2, covariance_matrix=ct)
        o, t = ((D.kl_divergence(lr_o, m_o), TD.kl_divergence(lr_t, m_t))
                if pair == "lowrank_mvn" else
                (D.kl_divergence(m_o, lr_o), TD.kl_divergence(m_t, lr_t)))
    agree(o, t, [lo, wo, do, lo2, wo2, do2, co], [lt, wt, dt, lt2, wt2, dt2, ct], atol=1e-9)
    assert (o.detach().numpy() > 0).all()


# ------------------------------------------------------------------ ContinuousBernoulli

# wide lims put visible probabilities in the Taylor branch, where its higher-order terms
# matter at float64 precision
@pytest.mark.parametrize("probs,lims", [
    ([0.05, 0.3, 0.4995, 0.5, 0.5004, 0.7, 0.97], (0.499, 0.501)),
    ([0.35, 0.42, 0.5, 0.56, 0.61, 0.2, 0.8], (0.34, 0.66))])
@pytest.mark.parametrize("what", ["log_prob", "cdf", "icdf", "mean", "variance", "entropy"])
def test_continuous_bernoulli_matches_torch(probs, lims, what):
    v = np.array([0.0, 0.15, 0.3, 0.5, 0.62, 0.8, 1.0])
    for param in ("probs", "logits"):
        p = np.array(probs) if param == "probs" else np.log(probs) - np.log1p(-np.array(probs))
        (po,), (pt,) = both(p)
        d = D.ContinuousBernoulli(**{param: po}, lims=lims)
        td = TD.ContinuousBernoulli(**{param: pt}, lims=lims)
        if what in ("log_prob", "cdf", "icdf"):
            o, t = getattr(d, what)(tl.tensor(v)), getattr(td, what)(torch.tensor(v))
        elif what == "entropy":
            o, t = d.entropy(), td.entropy()
        else:
            o, t = getattr(d, what), getattr(td, what)
        agree(o, t, [po], [pt], atol=1e-9, rtol=1e-7)


def test_continuous_bernoulli_rsample_and_kl():
    p = np.array([0.2, 0.5, 0.9])
    po = tl.tensor(p, requires_grad=True)
    d = D.ContinuousBernoulli(probs=po)
    tl.manual_seed(2)
    x = d.rsample((5,))
    tl.manual_seed(2)
    u = tl.rand(5, 3, dtype=tl.float64)
    np.testing.assert_allclose(x.detach().numpy(), d.icdf(u).detach().numpy(), rtol=1e-12)
    x.sum().backward()
    assert po.grad is not None and np.isfinite(po.grad.numpy()).all()
    s = D.ContinuousBernoulli(probs=tl.tensor(p)).sample((30000,)).numpy()
    assert ((s >= 0) & (s <= 1)).all()
    np.testing.assert_allclose(s.mean(0), d.mean.detach().numpy(), atol=0.01)
    q = np.array([0.4, 0.6, 0.3])
    (a, b), (at, bt) = both(p, q)
    agree(D.kl_divergence(D.ContinuousBernoulli(a), D.ContinuousBernoulli(b)),
          TD.kl_divergence(TD.ContinuousBernoulli(at), TD.ContinuousBernoulli(bt)), [a, b],
          [at, bt], atol=1e-9, rtol=1e-7)
    with pytest.raises(ValueError, match="value must lie in"):
        d.log_prob(tl.tensor([1.5, 0.5, 0.5]))


# -------------------------------------------------------------------- relaxed families

def test_relaxed_bernoulli_log_prob_matches_torch():
    probs, temp = rng.uniform(0.1, 0.9, (2, 3)), np.array(0.7)
    v = rng.uniform(0.05, 0.95, (4, 2, 3))
    for param in ("probs", "logits"):
        p = probs if param == "probs" else np.log(probs / (1 - probs))
        (po, to), (pt, tt_) = both(p, temp)
        d = D.RelaxedBernoulli(to, **{param: po})
        td = TD.RelaxedBernoulli(tt_, **{param: pt})
        assert d.batch_shape == tuple(td.batch_shape) and d.event_shape == ()
        agree(d.log_prob(tl.tensor(v)), td.log_prob(torch.tensor(v)), [po, to], [pt, tt_],
              rtol=1e-7, atol=1e-9)


def test_relaxed_one_hot_log_prob_matches_torch():
    logits, temp = rng.standard_normal((2, 4)), np.array(0.6)
    v = rng.dirichlet(np.ones(4), size=(3, 2))
    (lo, to), (lt, tt_) = both(logits, temp)
    d = D.RelaxedOneHotCategorical(to, logits=lo)
    td = TD.RelaxedOneHotCategorical(tt_, logits=lt)
    assert d.batch_shape == (2,) and d.event_shape == (4,)
    agree(d.log_prob(tl.tensor(v)), td.log_prob(torch.tensor(v)), [lo, to], [lt, tt_],
          rtol=1e-7, atol=1e-9)


def test_relaxed_rsample_formulas_with_seeded_noise():
    logits = rng.standard_normal(3)
    lo = tl.tensor(logits, requires_grad=True)
    d = D.RelaxedOneHotCategorical(tl.tensor(0.5, dtype=tl.float64), logits=lo)
    tl.manual_seed(7)
    y = d.rsample((4,))
    tl.manual_seed(7)
    u = np.clip(tl.rand(4, 3, dtype=tl.float64).numpy(), np.finfo(float).eps,
                1 - np.finfo(float).eps)
    ls = logits - np.log(np.exp(logits).sum())
    g = (ls - np.log(-np.log(u))) / 0.5
    expect = np.exp(g - g.max(-1, keepdims=True))
    expect /= expect.sum(-1, keepdims=True)
    np.testing.assert_allclose(y.detach().numpy(), expect, rtol=1e-10)
    np.testing.assert_allclose(y.detach().numpy().sum(-1), 1.0, rtol=1e-12)
    # the gradient through the sample: d y / d logits is the softmax Jacobian / temperature
    w = rng.standard_normal((4, 3))
    (y * tl.tensor(w)).sum().backward()
    jac = (np.einsum("ni,ij->nij", expect, np.eye(3))
           - np.einsum("ni,nj->nij", expect, expect)) / 0.5
    np.testing.assert_allclose(lo.grad.numpy(), np.einsum("ni,nij->j", w, jac), rtol=1e-9)

    p = rng.uniform(0.2, 0.8, 3)
    po = tl.tensor(p, requires_grad=True)
    b = D.RelaxedBernoulli(tl.tensor(0.3, dtype=tl.float64), probs=po)
    tl.manual_seed(8)
    y = b.rsample((4,))
    tl.manual_seed(8)
    u = tl.rand(4, 3, dtype=tl.float64).numpy()
    z = (np.log(u) - np.log1p(-u) + np.log(p) - np.log1p(-p)) / 0.3
    np.testing.assert_allclose(y.detach().numpy(), 1 / (1 + np.exp(-z)), rtol=1e-10)
    y.sum().backward()
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(po.grad.numpy(),
                               (s * (1 - s) / 0.3 / (p * (1 - p))).sum(0), rtol=1e-8)


def test_relaxed_low_temperature_statistics():
    tl.manual_seed(4)
    probs = np.array([0.1, 0.6, 0.3])
    d = D.RelaxedOneHotCategorical(tl.tensor(0.05), probs=tl.tensor(probs))
    y = d.sample((20000,)).numpy()
    np.testing.assert_allclose(np.bincount(y.argmax(-1), minlength=3) / 20000, probs,
                               atol=0.015)
    assert (y.max(-1) > 0.9).mean() > 0.9          # nearly one-hot at low temperature
    b = D.RelaxedBernoulli(tl.tensor(0.05), probs=tl.tensor([0.25, 0.8]))
    s = b.sample((20000,)).numpy()
    np.testing.assert_allclose((s > 0.5).mean(0), [0.25, 0.8], atol=0.015)
    with pytest.raises(ValueError, match="temperature must be positive"):
        D.RelaxedBernoulli(tl.tensor(-1.0), probs=tl.tensor(0.5))


# -------------------------------------------------------------------------- Categorical

def test_categorical_mean_and_variance_are_nan_like_torch():
    p = rng.uniform(0.1, 1.0, (2, 3, 4))
    d, td = D.Categorical(probs=tl.tensor(p)), TD.Categorical(probs=torch.tensor(p))
    for what in ("mean", "variance"):
        o, t = getattr(d, what), getattr(td, what)
        assert tuple(o.shape) == tuple(t.shape) == (2, 3)
        assert np.isnan(o.numpy()).all() and o.dtype == tl.float64


def test_tanh_log_jacobian_is_zero_at_zero():
    # the stable form 2 (log 2 - x - softplus(-2x)) equals log(1 - tanh(x)^2)
    assert math.isclose(T.TanhTransform().log_abs_det_jacobian(tl.tensor(0.0),
                                                              tl.tensor(0.0)).item(), 0.0,
                        abs_tol=1e-7)


def test_mean_and_variance_not_defined_raise_not_implemented_as_pytorch():
    d = tl.distributions.TransformedDistribution(
        tl.distributions.Normal(tl.zeros(2), tl.ones(2)),
        [tl.distributions.transforms.ExpTransform()])
    for prop in ("mean", "variance", "stddev"):
        with pytest.raises(NotImplementedError, match=prop if prop != "stddev" else "variance"):
            getattr(d, prop)
