"""What an RL port from PyTorch needs of tensorlib (the RL trial's findings, /tmp/trial_rl):
masked actions are never sampled, distributions validate their arguments as torch's do,
follow the default dtype, tl.normal's tensor overloads, RNG state, and the smaller torch
APIs (data_ptr, is_floating_point, count_nonzero, mode, OneHotCategorical, Independent,
enumerate_support); each against torch."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import distributions as D

torch = pytest.importorskip("torch")
TD = torch.distributions
rng = np.random.default_rng(0)
NAN, INF = float("nan"), float("inf")


class _FixedUniforms:
    """Stands in for the default generator's NumPy stream: ``random`` returns chosen values
    (cycled to the requested size)."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def random(self, size):
        n = int(np.prod(size))
        return np.resize(self.values, n).reshape(size)


@pytest.fixture
def fixed_uniforms(monkeypatch):
    def use(values):
        monkeypatch.setattr(tl.random.default_generator, "_rng", _FixedUniforms(values))
    return use


@pytest.fixture
def default_dtype():
    yield
    tl.set_default_dtype(tl.float32)
    torch.set_default_dtype(torch.float32)


@pytest.fixture
def validation_default():
    yield
    D.Distribution.set_default_validate_args(True)


def pair(a, requires_grad=True):
    return (tl.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def close(o, t, **kw):
    if o is None and t is None:         # neither has a gradient
        return
    np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), **kw)


# --- item 1: Categorical.sample never returns a class of probability 0 ---------------------
_EDGE_U = [0.0, 1e-300, 2.0 ** -53, 0.25, 0.5, 0.9563366, 0.9999999, 1 - 2.0 ** -24,
           1 - 2.0 ** -53]


@pytest.mark.parametrize("kind, params", [
    # the trial's logits: float32 probs summing below 1 and a masked last class
    ("logits", [[3.3814635, -3.974482, -1.9468678, -0.12084246, -1.2199169, -INF]]),
    ("logits", [[-INF, 0.0, -INF, 1.0, -INF]]),
    ("probs", [[0.0, 0.5, 0.5, 0.0]]),
    ("probs", [[0.3, 0.0, 0.7], [0.0, 0.0, 1.0]]),
])
def test_categorical_never_samples_a_zero_probability_class(fixed_uniforms, kind, params):
    a = np.array(params, dtype=np.float32)
    d = D.Categorical(**{kind: tl.tensor(a)})
    allowed = d.probs.numpy() > 0
    fixed_uniforms(_EDGE_U)
    s = d.sample((len(_EDGE_U),)).numpy()               # every edge uniform, every row
    assert allowed[np.arange(a.shape[0]), s].all(), s
    t = TD.Categorical(**{kind: torch.tensor(a)})       # torch agrees on which are allowed
    np.testing.assert_array_equal(allowed, t.probs.numpy() > 0)


def test_categorical_masked_sampling_statistics_match_torch():
    logits = np.array([[1.0, -INF, 0.5, 2.0, -INF]], np.float32)
    tl.manual_seed(0)
    s = D.Categorical(logits=tl.tensor(np.repeat(logits, 200_000, 0))).sample().numpy()
    assert not np.isin(s, [1, 4]).any()
    freq = np.bincount(s, minlength=5) / s.size
    np.testing.assert_allclose(freq, TD.Categorical(logits=torch.tensor(logits)).probs[0],
                               atol=4e-3)


def test_captured_categorical_sample_keeps_masks_and_draws_fresh():
    @tl.function
    def act(logits):
        return D.Categorical(logits=logits).sample()
    logits = tl.tensor(np.array([[0.5, -INF, 1.0, -INF]] * 512, np.float32))
    outs = []
    for seed in (1, 2):
        tl.manual_seed(seed)
        with tl.no_grad():
            got = act(logits).numpy()
        tl.manual_seed(seed)
        np.testing.assert_array_equal(got, act.fn(logits).numpy())
        assert set(np.unique(got)) <= {0, 2}
        outs.append(got)
    assert act.trace_count == 1 and (outs[0] != outs[1]).any()


# --- item 2: argument validation, as torch's default validate_args ------------------------
_NAN_PARAMS = [
    ("Normal loc", lambda L, x: L.distributions.Normal(x([NAN, 0.0]), x([1.0, 1.0])), "loc"),
    ("Normal scale", lambda L, x: L.distributions.Normal(x([0.0]), x([NAN])), "scale"),
    ("Uniform low", lambda L, x: L.distributions.Uniform(x([NAN]), x([1.0])), "low"),
    ("Uniform high", lambda L, x: L.distributions.Uniform(x([0.0]), x([NAN])), "high"),
    ("Bernoulli logits", lambda L, x: L.distributions.Bernoulli(logits=x([NAN])), "logits"),
    ("Bernoulli probs", lambda L, x: L.distributions.Bernoulli(probs=x([NAN])), "probs"),
    ("Categorical logits", lambda L, x: L.distributions.Categorical(logits=x([[NAN, 0.0]])),
     "logits"),
    ("Categorical probs", lambda L, x: L.distributions.Categorical(probs=x([[NAN, 0.5]])),
     "probs"),
]


@pytest.mark.parametrize("name, make, param", _NAN_PARAMS, ids=[c[0] for c in _NAN_PARAMS])
def test_nan_parameters_raise_as_torch(name, make, param):
    with pytest.raises(ValueError, match=param):
        make(torch, torch.tensor)
    with pytest.raises(ValueError, match=f"{param} .*found invalid values: NaN"):
        make(tl, tl.tensor)


def test_nan_parameters_pass_without_validation(validation_default):
    for _, make, _ in _NAN_PARAMS:
        with pytest.raises(ValueError):
            make(tl, tl.tensor)
    D.Distribution.set_default_validate_args(False)
    TD.Distribution.set_default_validate_args(False)
    try:
        for _, make, _ in _NAN_PARAMS:
            make(tl, tl.tensor)
            make(torch, torch.tensor)
    finally:
        TD.Distribution.set_default_validate_args(True)
    D.Distribution.set_default_validate_args(True)
    d = D.Normal(tl.tensor([NAN]), 1.0, validate_args=False)
    assert np.isnan(d.sample().numpy()).all()
    with pytest.raises(ValueError, match="True or False"):
        D.Distribution.set_default_validate_args(None)


def test_categorical_probs_messages():
    with pytest.raises(ValueError, match=r"probs must not be negative.*\[-0\.5\]"):
        D.Categorical(probs=tl.tensor([[0.2, -0.5, 1.0]]))
    with pytest.raises(ValueError):
        TD.Categorical(probs=torch.tensor([[0.2, -0.5, 1.0]]))
    with pytest.raises(ValueError, match="probs must not all be 0"):
        D.Categorical(probs=tl.zeros(2, 3))
    with pytest.raises(ValueError):
        TD.Categorical(probs=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="probs must be finite"):
        D.Categorical(probs=tl.tensor([INF, 1.0]))
    with pytest.raises(ValueError):
        TD.Categorical(probs=torch.tensor([INF, 1.0]))


def test_all_masked_or_infinite_logits_raise_as_torch():
    for row, match in (([-INF, -INF], "must not all be -inf"), ([INF, 0.0], r"\+inf")):
        with pytest.raises(ValueError):
            TD.Categorical(logits=torch.tensor([[0.0, 0.0], row]))
        with pytest.raises(ValueError, match=match):
            D.Categorical(logits=tl.tensor([[0.0, 0.0], row]))
    # a partly masked row is valid (both)
    D.Categorical(logits=tl.tensor([[-INF, 0.0]]))
    TD.Categorical(logits=torch.tensor([[-INF, 0.0]]))


_BAD_VALUES = [
    ("Categorical 1.5", lambda L: L.distributions.Categorical(logits=L.zeros(2, 3)),
     [1.5, 2.0], "class indices in \\[0, 3\\).*1\\.5"),
    ("Categorical 3", lambda L: L.distributions.Categorical(logits=L.zeros(3)), [3],
     "class indices"),
    ("Categorical -1", lambda L: L.distributions.Categorical(logits=L.zeros(3)), [-1],
     "class indices"),
    ("Bernoulli 0.5", lambda L: L.distributions.Bernoulli(probs=0.3), [0.5], "0 or 1"),
    ("Normal NaN", lambda L: L.distributions.Normal(0.0, 1.0), [NAN], "value must not be NaN"),
]


@pytest.mark.parametrize("name, make, value, match", _BAD_VALUES,
                         ids=[c[0] for c in _BAD_VALUES])
def test_log_prob_outside_the_support_raises_as_torch(name, make, value, match):
    with pytest.raises(ValueError):
        make(torch).log_prob(torch.tensor(value))
    with pytest.raises(ValueError, match=match):
        make(tl).log_prob(tl.tensor(value))
    if name not in ("Categorical 3", "Categorical -1"):   # those fail to index unchecked
        d = make(tl)
        d._validate_args = False
        d.log_prob(tl.tensor(value))                     # no check when asked not to


def test_whole_float_class_values_are_accepted_as_torch():
    lg = rng.standard_normal((2, 3))
    o = D.Categorical(logits=tl.tensor(lg)).log_prob(tl.tensor([2.0, 0.0]))
    t = TD.Categorical(logits=torch.tensor(lg)).log_prob(torch.tensor([2.0, 0.0]))
    close(o, t, rtol=1e-12)


def test_validation_is_skipped_under_capture():
    @tl.function
    def act(logits):
        return D.Categorical(logits=logits).sample()
    with tl.no_grad():
        act(tl.zeros(4, 3))
        # captured: the Python validation is skipped (one trace), but on the CPU the draw's
        # own check still refuses NaN rows when the graph runs
        with pytest.raises(tl.errors.InputError, match="NaN"):
            act(tl.full((4, 3), NAN))
    assert act.trace_count == 1
    with pytest.raises(ValueError, match="NaN"):
        act.fn(tl.full((4, 3), NAN))


# --- item 3: distributions from Python floats follow the default dtype ---------------------
def test_distributions_from_floats_follow_the_default_dtype(default_dtype):
    for L in (tl, torch):
        L.set_default_dtype(L.float64)
    for make in (lambda L: L.distributions.Normal(0.0, 1.0),
                 lambda L: L.distributions.Uniform(0.0, 1.0),
                 lambda L: L.distributions.Bernoulli(probs=0.3)):
        o, t = make(tl).sample(), make(torch).sample()
        assert str(o.dtype) == str(t.dtype).replace("torch.", "") == "float64"
    o = D.Categorical(probs=[0.2, 0.8]).probs
    t = TD.Categorical(probs=torch.tensor([0.2, 0.8])).probs
    assert str(o.dtype) == str(t.dtype).replace("torch.", "") == "float64"
    tl.set_default_dtype(tl.float32)
    assert D.Normal(0.0, 1.0).sample().dtype == tl.float32
    # a float64 tensor parameter keeps float64 whatever the default
    assert D.Normal(tl.zeros(2, dtype=tl.float64), 1.0).sample().dtype == tl.float64


# --- item 4: tl.normal with tensor mean and/or std ----------------------------------------
@pytest.mark.parametrize("mean_shape, std_shape", [((3,), None), (None, (3,)), ((3,), (3,)),
                                                   ((2, 1), (3,)), ((), (4,))])
def test_normal_tensor_overloads_match_torch_shapes_and_statistics(mean_shape, std_shape):
    def args(L):
        m = L.full(mean_shape, 2.0) if mean_shape is not None else 2.0
        s = L.full(std_shape, 0.5) if std_shape is not None else 0.5
        return m, s
    o, t = tl.normal(*args(tl)), torch.normal(*args(torch))
    assert tuple(o.shape) == tuple(t.shape) and o.dtype == tl.float32
    tl.manual_seed(0)
    m, s = args(tl)
    big = np.stack([tl.normal(m, s).numpy() for _ in range(3000)])
    np.testing.assert_allclose(big.mean(0), 2.0, atol=0.04)
    np.testing.assert_allclose(big.std(0), 0.5, rtol=0.06)


def test_normal_elementwise_draws_and_dtype():
    mean = tl.tensor(np.array([0.0, 100.0, -100.0]))             # float64
    std = tl.tensor(np.array([0.0, 1.0, 0.0]))
    out = tl.normal(mean, std)
    assert out.dtype == torch.normal(torch.tensor([0.0], dtype=torch.float64), 1.0).dtype \
        .__str__().replace("torch.", "")
    assert out.numpy()[0] == 0.0 and out.numpy()[2] == -100.0
    assert abs(out.numpy()[1] - 100.0) < 6
    g1, g2 = tl.Generator().manual_seed(3), tl.Generator().manual_seed(3)
    np.testing.assert_array_equal(tl.normal(tl.zeros(5), 1.0, generator=g1).numpy(),
                                  tl.normal(tl.zeros(5), 1.0, generator=g2).numpy())


def test_normal_is_not_differentiable_in_mean_and_std_as_torch():
    mo, mt = pair(np.zeros(3))
    so, st = pair(np.ones(3))
    (tl.normal(mo, so) + mo * 2.0).sum().backward()
    (torch.normal(mt, st) + mt * 2.0).sum().backward()
    close(mo.grad, mt.grad)                       # only the explicit term: 2
    assert so.grad is None and (st.grad == 0).all()
    assert not tl.normal(mo, 0.1).requires_grad


def test_normal_tensor_overload_errors():
    for L in (tl, torch):
        with pytest.raises((ValueError, RuntimeError), match="std"):
            L.normal(L.zeros(3), -L.ones(3))
        with pytest.raises((ValueError, RuntimeError), match="std"):
            L.normal(L.zeros(2), L.tensor([NAN, 1.0]))
        with pytest.raises(TypeError):
            L.normal(L.zeros(2), L.ones(2), size=(2,))
        with pytest.raises((TypeError, RuntimeError, NotImplementedError)):
            L.normal(L.zeros(2, dtype=L.int64), 1.0)
    with pytest.raises(ValueError, match="std"):
        tl.normal(tl.zeros(3), -0.1)


def test_normal_tensor_overload_captures_as_fresh_draws():
    @tl.function
    def noisy(mu):
        return tl.normal(mu, 0.1)
    mu = tl.zeros(64)
    outs = []
    for seed in (1, 2):
        tl.manual_seed(seed)
        with tl.no_grad():
            got = noisy(mu).numpy()
        tl.manual_seed(seed)
        np.testing.assert_array_equal(got, noisy.fn(mu).numpy())
        outs.append(got)
    assert noisy.trace_count == 1 and (outs[0] != outs[1]).any()


# --- item 5: smaller torch APIs ----------------------------------------------------------
def test_data_ptr_as_torch():
    a = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    for L in (tl, torch):
        x = L.tensor(a)
        assert x.data_ptr() == x.detach().data_ptr() == x[0].data_ptr()
        assert x.reshape(12).data_ptr() == x.data_ptr()
        assert x[1].data_ptr() - x.data_ptr() == 16
        assert x.clone().data_ptr() != x.data_ptr()
        assert isinstance(x.data_ptr(), int)
    net = tl.nn.Linear(3, 2)
    import copy
    target = copy.deepcopy(net)
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(net.parameters(),
                                                            target.parameters()))
    assert net.weight.data.data_ptr() == net.weight.data_ptr()


def test_is_floating_point_and_count_nonzero_as_torch():
    for dt in ("float32", "float64", "float16", "int64", "int32", "uint8", "bool"):
        assert tl.zeros(2, dtype=getattr(tl, dt if dt != "bool" else "bool_")) \
            .is_floating_point() == torch.zeros(2, dtype=getattr(torch, dt)).is_floating_point()
    a = rng.integers(0, 2, (3, 4)) * rng.standard_normal((3, 4))
    for dim in (None, 0, 1, (0, 1)):
        o, t = tl.tensor(a), torch.tensor(a)
        want = torch.count_nonzero(t, dim=dim).numpy()
        np.testing.assert_array_equal(tl.count_nonzero(o, dim=dim).numpy(), want)
        np.testing.assert_array_equal(o.count_nonzero(dim=dim).numpy(), want)


def test_rng_state_round_trips_as_torch():
    for L in (tl, torch):
        L.manual_seed(5)
        s = L.get_rng_state()
        a = L.rand(6)
        L.manual_seed(7)
        L.set_rng_state(s)
        assert L.initial_seed() == 5
        np.testing.assert_array_equal(L.rand(6).numpy(), a.numpy())
        assert s.dtype == L.uint8 and s.ndim == 1
    s = tl.get_rng_state()
    s2 = tl.get_rng_state()
    np.testing.assert_array_equal(s.numpy(), s2.numpy())
    assert s.data_ptr() != s2.data_ptr()
    g = tl.Generator().manual_seed(11)
    st = tl.get_rng_state()
    g.set_state(st)                                      # a Generator takes it too
    assert g.initial_seed() == tl.initial_seed()
    np.testing.assert_array_equal(tl.rand(3, generator=g).numpy(), tl.rand(3).numpy())
    with pytest.raises(TypeError, match="uint8"):
        tl.set_rng_state(tl.zeros(8))
    with pytest.raises(ValueError, match="get_rng_state"):
        tl.set_rng_state(tl.zeros(60, dtype=tl.uint8))


def test_seed_and_initial_seed_as_torch():
    for L in (tl, torch):
        L.manual_seed(123)
        assert L.initial_seed() == 123
        s = L.seed()
        assert isinstance(s, int) and L.initial_seed() == s and 0 <= s < 2 ** 64
        assert L.Generator().manual_seed(9).initial_seed() == 9
        assert isinstance(L.Generator().initial_seed(), int)
    assert tl.seed() != tl.seed()
    tl.manual_seed(2 ** 80 + 3)                          # a big seed survives the state
    st = tl.get_rng_state()
    tl.manual_seed(0)
    tl.set_rng_state(st)
    assert tl.initial_seed() == 2 ** 80 + 3
    g = tl.Generator(4)
    a = tl.rand(3, generator=g)
    g.manual_seed(g.initial_seed())
    np.testing.assert_array_equal(tl.rand(3, generator=g).numpy(), a.numpy())


def test_modes_as_torch():
    lg = rng.standard_normal((4, 5))
    assert (D.Categorical(logits=tl.tensor(lg)).mode.numpy()
            == TD.Categorical(logits=torch.tensor(lg)).mode.numpy()).all()
    loc = rng.standard_normal(3)
    close(D.Normal(tl.tensor(loc), 1.0).mode, TD.Normal(torch.tensor(loc), 1.0).mode)
    p = np.array([0.2, 0.5, 0.7])
    np.testing.assert_array_equal(D.Bernoulli(probs=tl.tensor(p)).mode.numpy(),
                                  TD.Bernoulli(probs=torch.tensor(p)).mode.numpy())
    np.testing.assert_array_equal(D.Uniform(tl.zeros(2), 1.0).mode.numpy(),
                                  TD.Uniform(torch.zeros(2), 1.0).mode.numpy())


@pytest.mark.parametrize("expand", [True, False])
def test_enumerate_support_as_torch(expand):
    lg = rng.standard_normal((2, 3, 4))
    o = D.Categorical(logits=tl.tensor(lg)).enumerate_support(expand)
    t = TD.Categorical(logits=torch.tensor(lg)).enumerate_support(expand)
    assert o.dtype == tl.int64 and tuple(o.shape) == tuple(t.shape)
    np.testing.assert_array_equal(o.numpy(), t.numpy())
    p = rng.uniform(0.1, 0.9, (2, 3))
    o = D.Bernoulli(probs=tl.tensor(p)).enumerate_support(expand)
    t = TD.Bernoulli(probs=torch.tensor(p)).enumerate_support(expand)
    np.testing.assert_array_equal(o.numpy(), t.numpy())
    o = D.OneHotCategorical(logits=tl.tensor(lg)).enumerate_support(expand)
    t = TD.OneHotCategorical(logits=torch.tensor(lg)).enumerate_support(expand)
    np.testing.assert_array_equal(o.numpy(), t.numpy())
    # log_prob of every class at once (the enumerate-then-score idiom)
    d, td = D.Categorical(logits=tl.tensor(lg)), TD.Categorical(logits=torch.tensor(lg))
    close(d.log_prob(d.enumerate_support()), td.log_prob(td.enumerate_support()), rtol=1e-12)


@pytest.mark.parametrize("by", ["probs", "logits"])
def test_one_hot_categorical_as_torch(by):
    lg = rng.standard_normal((3, 4))
    a = np.exp(lg) * 2.0 if by == "probs" else lg
    idx = np.array([0, 3, 1])
    v = np.eye(4)[idx]
    for fn in (lambda d, x: d.log_prob(x), lambda d, x: d.entropy(), lambda d, x: d.mean,
               lambda d, x: d.variance):
        o, t = pair(a)
        ro = fn(D.OneHotCategorical(**{by: o}), tl.tensor(v))
        rt = fn(TD.OneHotCategorical(**{by: t}), torch.tensor(v))
        close(ro, rt, rtol=1e-10, atol=1e-12)
        w = rng.standard_normal(tuple(rt.shape))
        (ro * tl.tensor(w)).sum().backward()
        (rt * torch.tensor(w)).sum().backward()
        close(o.grad, t.grad, rtol=1e-8, atol=1e-12)
    d = D.OneHotCategorical(**{by: tl.tensor(a)})
    td = TD.OneHotCategorical(**{by: torch.tensor(a)})
    assert d.batch_shape == tuple(td.batch_shape) and d.event_shape == tuple(td.event_shape)
    np.testing.assert_array_equal(d.mode.numpy(), td.mode.numpy())
    tl.manual_seed(0)
    s = d.sample((20000,))
    assert tuple(s.shape) == (20000, 3, 4) and s.dtype == tl.float64
    sn = s.numpy()
    assert ((sn == 0) | (sn == 1)).all() and (sn.sum(-1) == 1).all()
    np.testing.assert_allclose(sn.mean(0), td.probs.numpy(), atol=0.015)
    with pytest.raises(ValueError):
        td.log_prob(torch.tensor([[0.5, 0.5, 0.0, 0.0]] * 3))
    with pytest.raises(ValueError, match="one-hot"):
        d.log_prob(tl.tensor([[0.5, 0.5, 0.0, 0.0]] * 3))
    q = rng.standard_normal((3, 4))
    close(D.kl_divergence(d, D.OneHotCategorical(logits=tl.tensor(q))),
          TD.kl_divergence(td, TD.OneHotCategorical(logits=torch.tensor(q))), rtol=1e-10)


def test_independent_normal_as_torch():
    loc, scale = rng.standard_normal((5, 3)), rng.uniform(0.5, 2.0, (5, 3))
    v = rng.standard_normal((2, 5, 3))
    for fn in (lambda d, x: d.log_prob(x), lambda d, x: d.entropy()):
        (lo, lt), (so, st) = pair(loc), pair(scale)
        ro = fn(D.Independent(D.Normal(lo, so), 1), tl.tensor(v))
        rt = fn(TD.Independent(TD.Normal(lt, st), 1), torch.tensor(v))
        assert tuple(ro.shape) == tuple(rt.shape)
        close(ro, rt, rtol=1e-10)
        ro.sum().backward()
        rt.sum().backward()
        close(lo.grad, lt.grad, rtol=1e-9)
        close(so.grad, st.grad, rtol=1e-9)
    d = D.Independent(D.Normal(tl.tensor(loc), tl.tensor(scale)), 2)
    td = TD.Independent(TD.Normal(torch.tensor(loc), torch.tensor(scale)), 2)
    assert d.batch_shape == tuple(td.batch_shape) == ()
    assert d.event_shape == tuple(td.event_shape) == (5, 3)
    assert d.has_rsample and tuple(d.rsample((4,)).shape) == (4, 5, 3)
    close(d.log_prob(tl.tensor(v)), td.log_prob(torch.tensor(v)), rtol=1e-10)
    close(d.mean, td.mean)
    close(d.mode, td.mode)
    close(d.variance, td.variance)
    loc2, scale2 = rng.standard_normal((5, 3)), rng.uniform(0.5, 2.0, (5, 3))
    for n in (1, 2):
        close(D.kl_divergence(D.Independent(D.Normal(tl.tensor(loc), tl.tensor(scale)), n),
                              D.Independent(D.Normal(tl.tensor(loc2), tl.tensor(scale2)), n)),
              TD.kl_divergence(
                  TD.Independent(TD.Normal(torch.tensor(loc), torch.tensor(scale)), n),
                  TD.Independent(TD.Normal(torch.tensor(loc2), torch.tensor(scale2)), n)),
              rtol=1e-10)
    with pytest.raises(NotImplementedError):
        D.kl_divergence(D.Independent(D.Normal(tl.tensor(loc), 1.0), 1),
                        D.Independent(D.Normal(tl.tensor(loc), 1.0), 2))
    for L in (tl, torch):
        with pytest.raises(ValueError):
            L.distributions.Independent(L.distributions.Normal(L.zeros(3), 1.0), 2)


def test_independent_bernoulli_and_categorical_as_torch():
    p = rng.uniform(0.1, 0.9, (4, 6))
    v = (rng.uniform(size=(4, 6)) < 0.5).astype(np.float64)
    close(D.Independent(D.Bernoulli(probs=tl.tensor(p)), 1).log_prob(tl.tensor(v)),
          TD.Independent(TD.Bernoulli(probs=torch.tensor(p)), 1).log_prob(torch.tensor(v)),
          rtol=1e-10)
    lg = rng.standard_normal((4, 2, 5))
    c = np.array([[0, 4], [1, 1], [2, 3], [4, 0]])
    d = D.Independent(D.Categorical(logits=tl.tensor(lg)), 1)
    td = TD.Independent(TD.Categorical(logits=torch.tensor(lg)), 1)
    assert d.event_shape == tuple(td.event_shape) == (2,)
    close(d.log_prob(tl.tensor(c)), td.log_prob(torch.tensor(c)), rtol=1e-10)
    close(d.entropy(), td.entropy(), rtol=1e-10)
    assert tuple(d.sample((3,)).shape) == (3, 4, 2)
