"""tl.distributions.biject_to / transform_to and the constraints they cover, against
torch.distributions (constraint_registry, constraints) in float64: the same transform for
each constraint, images inside the constraint, round trips, log-Jacobians and gradients;
register; constraint checks; the supports of the distributions."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import distributions as D
from tensorlib.distributions import biject_to, transform_to
from tensorlib.distributions import constraints as C
from tensorlib.distributions import transforms as T

torch = pytest.importorskip("torch")
TD = torch.distributions
TC = torch.distributions.constraints
rng = np.random.default_rng(2)


def close(a, b, rtol=1e-9, atol=1e-11):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def structure(t):
    """A transform as nested tuples of class names and parameters, comparable across
    tensorlib and torch."""
    name = type(t).__name__
    if hasattr(t, "parts"):
        return (name, tuple(structure(p) for p in t.parts))
    if hasattr(t, "base_transform"):
        return (name, structure(t.base_transform), t.reinterpreted_batch_ndims)
    if hasattr(t, "transforms"):
        return (name, tuple(structure(p) for p in t.transforms), t.dim,
                tuple(getattr(t, "lengths", ())))
    if name == "AffineTransform":
        return (name, float(t.loc), float(t.scale))
    return (name,)


# name -> (tensorlib constraint, torch constraint, unconstrained input shape)
CASES = {
    "real": (C.real, TC.real, (3, 2)),
    "real_vector": (C.real_vector, TC.real_vector, (3, 2)),
    "positive": (C.positive, TC.positive, (3, 2)),
    "nonnegative": (C.nonnegative, TC.nonnegative, (4,)),
    "greater_than": (C.greater_than(1.5), TC.greater_than(1.5), (3, 2)),
    "greater_than_eq": (C.greater_than_eq(-2.0), TC.greater_than_eq(-2.0), (3,)),
    "less_than": (C.less_than(3.0), TC.less_than(3.0), (2, 3)),
    "unit_interval": (C.unit_interval, TC.unit_interval, (5,)),
    "interval": (C.interval(-1.0, 2.0), TC.interval(-1.0, 2.0), (2, 3)),
    "half_open_interval": (C.half_open_interval(0.0, 5.0), TC.half_open_interval(0.0, 5.0),
                           (4,)),
    "simplex": (C.simplex, TC.simplex, (3, 4)),
    "corr_cholesky": (C.corr_cholesky, TC.corr_cholesky, (2, 6)),
    "lower_cholesky": (C.lower_cholesky, TC.lower_cholesky, (2, 3, 3)),
    "positive_definite": (C.positive_definite, TC.positive_definite, (2, 3, 3)),
    "positive_semidefinite": (C.positive_semidefinite, TC.positive_semidefinite, (3, 3)),
    "independent": (C.independent(C.positive, 1), TC.independent(TC.positive, 1), (3, 2)),
    "independent2": (C.independent(C.interval(0.0, 2.0), 2),
                     TC.independent(TC.interval(0.0, 2.0), 2), (2, 3, 2)),
    "independent_simplex": (C.independent(C.simplex, 1), TC.independent(TC.simplex, 1),
                            (2, 3, 2)),
    "cat": (C.cat([C.positive, C.real, C.interval(0.0, 1.0)], -1, [2, 1, 3]),
            TC.cat([TC.positive, TC.real, TC.interval(0.0, 1.0)], -1, [2, 1, 3]), (3, 6)),
    "stack": (C.stack([C.positive, C.real, C.less_than(0.0)], -1),
              TC.stack([TC.positive, TC.real, TC.less_than(0.0)], -1), (4, 3)),
    "stack_middle": (C.stack([C.positive, C.interval(0.0, 1.0)], -2),
                     TC.stack([TC.positive, TC.interval(0.0, 1.0)], -2), (2, 3)),
}
REGISTRIES = {"biject_to": (biject_to, TD.biject_to), "transform_to": (transform_to,
                                                                       TD.transform_to)}


def lookup(registry, c):
    try:
        return registry(c)
    except NotImplementedError:
        return None


@pytest.mark.parametrize("reg", sorted(REGISTRIES))
@pytest.mark.parametrize("name", sorted(CASES))
def test_registry_builds_the_transform_torch_builds(reg, name):
    ours, theirs = REGISTRIES[reg]
    c, tc, _ = CASES[name]
    a, b = lookup(ours, c), lookup(theirs, tc)
    assert (a is None) == (b is None)       # torch has no bijection onto lower_cholesky etc.
    if a is None:
        with pytest.raises(NotImplementedError, match="Cannot transform"):
            ours(c)
        return
    assert structure(a) == structure(b)
    assert a.codomain.event_dim == b.codomain.event_dim
    assert a.domain.event_dim == b.domain.event_dim
    if reg == "biject_to":
        assert a.bijective


@pytest.mark.parametrize("reg", sorted(REGISTRIES))
@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=6, deadline=None)
@given(lead=st.lists(st.integers(1, 3), max_size=1).map(tuple),
       scale=st.sampled_from([0.3, 1.0, 3.0]))
def test_images_lie_in_the_constraint_and_match_torch(reg, name, lead, scale):
    ours, theirs = REGISTRIES[reg]
    c, tc, shape = CASES[name]
    a, b = lookup(ours, c), lookup(theirs, tc)
    if a is None:
        return
    x = rng.standard_normal(lead + shape) * scale
    xo, xt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yo, yt = a(xo), b(xt)
    close(yo, yt, rtol=1e-8, atol=1e-10)
    assert c.check(yo.detach()).numpy().all()
    assert tc.check(torch.tensor(yo.detach().numpy())).numpy().all()
    # gradients flow from the constrained value back to the unconstrained one
    w = rng.standard_normal(tuple(yt.shape))
    (yo * tl.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    close(xo.grad, xt.grad, rtol=1e-7, atol=1e-9)
    if reg == "biject_to":
        close(a.inv(yo.detach()), x, rtol=1e-6, atol=1e-8)
        close(a.log_abs_det_jacobian(tl.tensor(x), yo.detach()),
              b.log_abs_det_jacobian(torch.tensor(x), yt.detach()), rtol=1e-8, atol=1e-10)


def test_biject_to_ladj_gradcheck():
    for c, shape in [(C.simplex, (2, 3)), (C.interval(-1.0, 2.0), (3,)),
                     (C.corr_cholesky, (3,)), (C.greater_than(1.0), (2,))]:
        t = biject_to(c)
        x = tl.tensor(rng.standard_normal(shape), requires_grad=True)
        assert tl.autograd.gradcheck(lambda v, t=t: t.log_abs_det_jacobian(v, t(v)), (x,))
        assert tl.autograd.gradgradcheck(lambda v, t=t: t(v), (x,))


def test_register_a_new_constraint():
    class _Ordered(C.Constraint):
        event_dim = 1

        def check(self, value):
            return (value.diff(axis=-1) > 0).all(axis=-1)

    ordered = _Ordered()
    registry = D.constraint_registry.ConstraintRegistry()
    with pytest.raises(NotImplementedError, match="Cannot transform _Ordered constraints"):
        registry(ordered)

    @registry.register(_Ordered)
    def _(constraint):
        return T.ComposeTransform([T.IndependentTransform(T.ExpTransform(), 1)])

    assert isinstance(registry(ordered), T.ComposeTransform)
    # registering by an instance keys the class too; the latest wins
    registry.register(ordered, lambda c: T.identity_transform)
    assert registry(_Ordered()) is T.identity_transform
    with pytest.raises(TypeError, match="Constraint subclass or instance"):
        registry.register(int, lambda c: T.identity_transform)
    with pytest.raises(TypeError, match="factory must be callable"):
        registry.register(ordered, 3)


def test_module_registries_are_extensible_and_unknown_constraints_raise():
    for c in (C.boolean, C.one_hot, C.dependent, C.integer_interval(0, 3), C.lower_triangular):
        with pytest.raises(NotImplementedError, match="Cannot transform"):
            biject_to(c)
    # registering a constructor function registers the class it builds
    reg = D.constraint_registry.ConstraintRegistry()
    reg.register(C.independent, lambda c: T.IndependentTransform(T.ExpTransform(),
                                                                 c.reinterpreted_batch_ndims))
    assert reg(C.independent(C.positive, 2)).reinterpreted_batch_ndims == 2


def test_open_unit_interval_and_tensor_bounds():
    assert isinstance(biject_to(C.open_unit_interval), T.SigmoidTransform)
    lo, hi = tl.tensor([0.0, -1.0]), tl.tensor([1.0, 3.0])
    t = biject_to(C.interval(lo, hi))
    y = t(tl.tensor([[0.3, -2.0], [5.0, 0.0]]))
    assert C.interval(lo, hi).check(y).numpy().all()
    tt = TD.biject_to(TC.interval(torch.tensor([0.0, -1.0]), torch.tensor([1.0, 3.0])))
    close(y, tt(torch.tensor([[0.3, -2.0], [5.0, 0.0]])), rtol=1e-6)


# ------------------------------------------------------------------ constraints

def _matrices():
    a = rng.standard_normal((4, 3, 3))
    pd = a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(3)
    low = np.tril(a)
    low_pos = low.copy()
    low_pos[..., range(3), range(3)] = np.abs(low_pos[..., range(3), range(3)]) + 0.1
    corr = np.linalg.cholesky(pd / np.sqrt(np.einsum("...ii,...jj->...ij", pd, pd)))
    sym_not_pd = pd - 10 * np.eye(3)
    return np.concatenate([a, pd, low, low_pos, corr, sym_not_pd, -pd])


CHECKS = {
    "boolean": (C.boolean, TC.boolean, lambda: rng.integers(-1, 3, (5, 4)).astype(float)),
    "one_hot": (C.one_hot, TC.one_hot, lambda: np.concatenate(
        [np.eye(4), rng.integers(0, 2, (6, 4))]).astype(float)),
    "nonnegative_integer": (C.nonnegative_integer, TC.nonnegative_integer,
                            lambda: rng.integers(-3, 3, 12) * rng.choice([1.0, 0.5], 12)),
    "positive_integer": (C.positive_integer, TC.positive_integer,
                         lambda: rng.integers(-3, 3, 12) * 1.0),
    "integer_interval": (C.integer_interval(1, 4), TC.integer_interval(1, 4),
                         lambda: rng.integers(-1, 7, 12) * rng.choice([1.0, 0.5], 12)),
    "greater_than_eq": (C.greater_than_eq(0.5), TC.greater_than_eq(0.5),
                        lambda: np.array([0.5, 0.4, 2.0, -1.0])),
    "nonnegative": (C.nonnegative, TC.nonnegative, lambda: np.array([0.0, -1e-9, 1.0])),
    "less_than": (C.less_than(1.0), TC.less_than(1.0), lambda: np.array([1.0, 0.9, 2.0, -5.0])),
    "half_open_interval": (C.half_open_interval(0.0, 1.0), TC.half_open_interval(0.0, 1.0),
                           lambda: np.array([0.0, 1.0, 0.5, -0.1, 1.1])),
    "multinomial": (C.multinomial(5), TC.multinomial(5),
                    lambda: rng.integers(-1, 4, (6, 3)).astype(float)),
    "simplex": (C.simplex, TC.simplex, lambda: np.concatenate(
        [rng.dirichlet(np.ones(3), 4), rng.uniform(-0.2, 1, (4, 3))])),
    "lower_triangular": (C.lower_triangular, TC.lower_triangular, _matrices),
    "lower_cholesky": (C.lower_cholesky, TC.lower_cholesky, _matrices),
    "corr_cholesky": (C.corr_cholesky, TC.corr_cholesky, _matrices),
    "square": (C.square, TC.square, _matrices),
    "symmetric": (C.symmetric, TC.symmetric, _matrices),
    "positive_definite": (C.positive_definite, TC.positive_definite, _matrices),
    "positive_semidefinite": (C.positive_semidefinite, TC.positive_semidefinite, _matrices),
    "independent": (C.independent(C.positive, 1), TC.independent(TC.positive, 1),
                    lambda: np.array([[1.0, 2.0], [1.0, -1.0], [0.0, 3.0]])),
    "cat": (C.cat([C.positive, C.unit_interval], 1, [2, 1]),
            TC.cat([TC.positive, TC.unit_interval], 1, [2, 1]),
            lambda: rng.standard_normal((5, 3)) + 0.5),
    "stack": (C.stack([C.positive, C.unit_interval], -1),
              TC.stack([TC.positive, TC.unit_interval], -1),
              lambda: rng.standard_normal((5, 2)) + 0.5),
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_constraint_checks_match_torch(name):
    c, tc, make = CHECKS[name]
    v = make()
    ours, theirs = c.check(tl.tensor(v)).numpy(), tc.check(torch.tensor(v)).numpy()
    assert ours.dtype == np.bool_ and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)
    assert ours.any() and not ours.all() or name in ("square",)   # the values test both ways
    assert c.event_dim == tc.event_dim and c.is_discrete == tc.is_discrete


def test_mixture_constraint_matches_torch():
    c = C.MixtureSameFamilyConstraint(C.independent(C.positive, 1))
    tc = TC.MixtureSameFamilyConstraint(TC.independent(TC.positive, 1))
    v = rng.standard_normal((4, 2, 3)) + 1.0
    np.testing.assert_array_equal(c.check(tl.tensor(v)).numpy(),
                                  tc.check(torch.tensor(v)).numpy())
    assert c.event_dim == tc.event_dim == 1


def test_square_rejects_non_square_and_stack_event_dim():
    assert not C.square.check(tl.zeros(2, 3, 4)).numpy().any()
    assert C.stack([C.real, C.positive], -1).event_dim == TC.stack([TC.real, TC.positive],
                                                                   -1).event_dim == 1
    assert C.stack([C.real, C.positive], 0).event_dim == 0
    with pytest.raises(ValueError, match="2 lengths for 1 constraints"):
        C.cat([C.real], 0, [1, 2])
    with pytest.raises(ValueError, match="stack.check: value of shape"):
        C.stack([C.real, C.positive], 0).check(tl.zeros(3))
    with pytest.raises(ValueError, match=r"lower_cholesky.check: expected a value with at "
                                         r"least 2 dims"):
        C.lower_cholesky.check(tl.zeros(3))


def test_dependent_constraints():
    assert C.is_dependent(C.dependent) and not C.is_dependent(C.real)
    with pytest.raises(ValueError, match="dependent constraint"):
        C.dependent.check(tl.zeros(2))
    with pytest.raises(NotImplementedError):
        _ = C.dependent.event_dim
    assert C.dependent(is_discrete=True, event_dim=1).event_dim == 1
    # a dependent_property is a constraint on the class and a value on the instance
    assert C.is_dependent(D.Uniform.support)
    u = D.Uniform(tl.tensor([0.0, 1.0]), tl.tensor([2.0, 3.0]))
    assert u.support.check(tl.tensor([1.0, 0.5])).numpy().tolist() == [True, False]
    assert D.Uniform.support.event_dim == 0 and not D.Uniform.support.is_discrete


def _pairs():
    p = np.array([0.2, 0.3, 0.5])
    a, b = tl.tensor(p), torch.tensor(p)
    m = np.eye(3) + 0.1
    return [
        (D.Normal(a, 1.0), TD.Normal(b, 1.0)),
        (D.Uniform(a, 2.0), TD.Uniform(b, 2.0)),
        (D.Exponential(a), TD.Exponential(b)),
        (D.Laplace(a, 1.0), TD.Laplace(b, 1.0)),
        (D.LogNormal(a, 1.0), TD.LogNormal(b, 1.0)),
        (D.Cauchy(a, 1.0), TD.Cauchy(b, 1.0)),
        (D.Gamma(a, 1.0), TD.Gamma(b, 1.0)),
        (D.Beta(a, a), TD.Beta(b, b)),
        (D.Dirichlet(a), TD.Dirichlet(b)),
        (D.StudentT(a), TD.StudentT(b)),
        (D.Bernoulli(a), TD.Bernoulli(b)),
        (D.Categorical(a), TD.Categorical(b)),
        (D.OneHotCategorical(a), TD.OneHotCategorical(b)),
        (D.Poisson(a), TD.Poisson(b)),
        (D.Binomial(4, a), TD.Binomial(4, b)),
        (D.Geometric(a), TD.Geometric(b)),
        (D.ContinuousBernoulli(a), TD.ContinuousBernoulli(b)),
        (D.MultivariateNormal(a, tl.tensor(m)), TD.MultivariateNormal(b, torch.tensor(m))),
        (D.LowRankMultivariateNormal(a, tl.tensor(m[:, :1]), a),
         TD.LowRankMultivariateNormal(b, torch.tensor(m[:, :1]), b)),
        (D.Independent(D.Normal(a, 1.0), 1), TD.Independent(TD.Normal(b, 1.0), 1)),
        (D.RelaxedBernoulli(1.0, a), TD.RelaxedBernoulli(1.0, b)),
        (D.RelaxedOneHotCategorical(1.0, a), TD.RelaxedOneHotCategorical(1.0, b)),
        (D.LogitRelaxedBernoulli(1.0, a),
         TD.relaxed_bernoulli.LogitRelaxedBernoulli(1.0, b)),
        (D.MixtureSameFamily(D.Categorical(a), D.Normal(a, 1.0)),
         TD.MixtureSameFamily(TD.Categorical(b), TD.Normal(b, 1.0))),
        (D.TransformedDistribution(D.Normal(a, 1.0), T.ExpTransform()),
         TD.TransformedDistribution(TD.Normal(b, 1.0), TD.ExpTransform())),
    ]


def signature(c):
    """A constraint as nested tuples of its class name and parameters (values as floats)."""
    out = [type(c).__name__.lstrip("_").replace("Constraint", "")]
    for attr in ("lower_bound", "upper_bound", "reinterpreted_batch_ndims"):
        v = getattr(c, attr, None)
        if v is not None:
            out.append(np.asarray(v.detach().numpy() if hasattr(v, "detach") else v,
                                  dtype=float).tolist())
    if hasattr(c, "base_constraint"):
        out.append(signature(c.base_constraint))
    return tuple(str(o) for o in out)


def test_distribution_supports_match_torch():
    for d, td in _pairs():
        s, ts = d.support, td.support
        assert signature(s) == signature(ts), type(d).__name__
        assert s.event_dim == ts.event_dim and s.is_discrete == ts.is_discrete
        if not s.is_discrete:
            # the registry reaches every continuous support, as torch's does
            x = td.sample((2,)).numpy()
            assert s.check(tl.tensor(x)).numpy().all()
            t, tt = lookup(transform_to, s), lookup(TD.transform_to, ts)
            assert (t is None) == (tt is None)


def test_stack_and_cat_transforms_have_stack_and_cat_constraints():
    t = T.StackTransform([T.ExpTransform(), T.SigmoidTransform()], dim=-1)
    tt = TD.transforms.StackTransform([TD.ExpTransform(), TD.SigmoidTransform()], dim=-1)
    assert type(t.codomain).__name__ == "_Stack" and t.codomain.event_dim == \
        tt.codomain.event_dim
    y = t(tl.tensor(rng.standard_normal((3, 2))))
    assert t.codomain.check(y).numpy().all()
    c = T.CatTransform([T.ExpTransform(), T.identity_transform], 0, [1, 2]).codomain
    assert c.check(tl.tensor([-1.0, -2.0, 3.0])).numpy().tolist() == [False, True, True]


def test_unconstrained_optimization_matches_torch():
    # fit a simplex and a positive scale by gradient descent in unconstrained space
    target = np.array([0.1, 0.6, 0.3])
    u0, s0 = rng.standard_normal(2), rng.standard_normal(1)
    uo, so = tl.tensor(u0, requires_grad=True), tl.tensor(s0, requires_grad=True)
    ut, st_ = torch.tensor(u0, requires_grad=True), torch.tensor(s0, requires_grad=True)
    for _ in range(20):
        po, sco = biject_to(C.simplex)(uo), transform_to(C.positive)(so)
        pt, sct = TD.biject_to(TC.simplex)(ut), TD.transform_to(TC.positive)(st_)
        lo = ((po - tl.tensor(target)) ** 2).sum() + (sco - 2.0) ** 2
        lt = ((pt - torch.tensor(target)) ** 2).sum() + (sct - 2.0) ** 2
        lo.sum().backward()
        lt.sum().backward()
        close(uo.grad, ut.grad, rtol=1e-8)
        close(so.grad, st_.grad, rtol=1e-8)
        with tl.no_grad():
            uo -= 0.5 * uo.grad
            so -= 0.5 * so.grad
        with torch.no_grad():
            ut -= 0.5 * ut.grad
            st_ -= 0.5 * st_.grad
        uo.grad = so.grad = ut.grad = st_.grad = None
    close(biject_to(C.simplex)(uo), TD.biject_to(TC.simplex)(ut).detach(), rtol=1e-8)
