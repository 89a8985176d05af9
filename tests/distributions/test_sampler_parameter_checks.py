"""Trial 17 (RL): samplers check their parameters whatever validate_args says, as PyTorch's
(torch.multinomial / bernoulli / normal raise), and Gamma-family sampling captures."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.errors import InputError
from tensorlib.graph.tracer import CaptureError

torch = pytest.importorskip("torch")
stats = pytest.importorskip("scipy.stats")
LD = tl.distributions
TD = torch.distributions
nan, inf = math.nan, math.inf

# (name, constructor kwargs as nested lists); each family gets the same values in both libraries
INVALID = [
    ("Categorical", {"logits": [[0.0, nan, 1.0]]}),
    ("Categorical", {"logits": [[-inf, -inf, -inf]]}),
    ("Categorical", {"logits": [[0.0, 1.0], [-inf, -inf]]}),
    ("Categorical", {"probs": [[0.5, -0.2, 0.7]]}),
    ("Categorical", {"probs": [[0.0, 0.0, 0.0]]}),
    ("OneHotCategorical", {"logits": [[nan, 0.0, 0.0]]}),
    ("Bernoulli", {"probs": [1.5, nan]}),
    ("Bernoulli", {"probs": [-0.1]}),
    ("Bernoulli", {"logits": [nan]}),
    ("Normal", {"loc": [0.0, 0.0], "scale": [-1.0, -1.0]}),
    ("Normal", {"loc": [0.0], "scale": [nan]}),
    ("Multinomial", {"total_count": 3, "logits": [[nan, 0.0, 0.0]]}),
]
VALID = [
    ("Categorical", {"logits": [[0.0, -inf, 1.0], [-inf, 2.0, -inf]]}),
    ("Categorical", {"probs": [[0.0, 0.0, 3.0]]}),
    ("OneHotCategorical", {"logits": [[-inf, 0.0, 0.0]]}),
    ("Bernoulli", {"probs": [0.0, 1.0, 0.3]}),
    ("Bernoulli", {"logits": [-inf, inf, 0.0]}),
    ("Normal", {"loc": [0.0, nan], "scale": [0.0, 1.0]}),
]


def _make(lib, name, kw, validate_args=False):
    mod = LD if lib is tl else TD
    conv = {k: (lib.tensor(v, dtype=lib.float64) if isinstance(v, list) else v)
            for k, v in kw.items()}
    return getattr(mod, name)(**conv, validate_args=validate_args)


def _raises(f):
    try:
        f()
    except (RuntimeError, ValueError):
        return True
    return False


@pytest.mark.parametrize("name,kw", INVALID)
def test_invalid_parameters_raise_in_sample_as_torch(name, kw):
    assert _raises(lambda: _make(torch, name, kw).sample())
    who = "Categorical" if name in ("OneHotCategorical", "Multinomial") else name
    with pytest.raises(InputError, match=rf"{who}\.sample"):
        _make(tl, name, kw).sample()
    with pytest.raises(RuntimeError):          # PyTorch's exception type works too
        _make(tl, name, kw).sample((2,))


@pytest.mark.parametrize("name,kw", INVALID)
def test_default_validate_args_off_still_raises(name, kw):
    old = LD.Distribution._validate_args
    LD.Distribution.set_default_validate_args(False)
    try:
        with pytest.raises(ValueError):
            _make(tl, name, kw, validate_args=None).sample()
    finally:
        LD.Distribution.set_default_validate_args(old)


@pytest.mark.parametrize("name,kw", VALID)
def test_valid_edge_parameters_sample_as_torch(name, kw):
    t = _make(torch, name, kw).sample((200,))
    x = _make(tl, name, kw).sample((200,))
    assert tuple(x.shape) == tuple(t.shape)
    assert str(x.dtype) == str(t.dtype).replace("torch.", "")
    assert not x.requires_grad and not t.requires_grad
    xn, tn = x.numpy(), t.numpy()
    # the same support: impossible outcomes never drawn by either
    np.testing.assert_array_equal(np.isnan(xn).any(0), np.isnan(tn).any(0))
    if name != "Normal":
        np.testing.assert_array_equal(np.unique(xn[~np.isnan(xn)]) <= 1 if name == "Bernoulli"
                                      else True, True)
        np.testing.assert_allclose(np.nan_to_num(xn).min(0), np.nan_to_num(tn).min(0))
        np.testing.assert_allclose(np.nan_to_num(xn).max(0), np.nan_to_num(tn).max(0))


def test_sample_message_says_what_to_do():
    with pytest.raises(ValueError, match="diverged"):
        LD.Categorical(logits=tl.tensor([[0.0, nan]]), validate_args=False).sample()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0.0, 1.5, -2.0, -inf, nan]), min_size=3,
                         max_size=3), min_size=1, max_size=3))
def test_categorical_raises_iff_torch_does(rows):
    tr = _raises(lambda: TD.Categorical(logits=torch.tensor(rows, dtype=torch.float64),
                                        validate_args=False).sample())
    lr = _raises(lambda: LD.Categorical(logits=tl.tensor(rows, dtype=tl.float64),
                                        validate_args=False).sample())
    assert lr == tr
    if not lr:          # a masked class is never drawn
        a = LD.Categorical(logits=tl.tensor(rows), validate_args=False).sample((50,)).numpy()
        arr = np.array(rows)
        assert np.isfinite(np.take_along_axis(arr, a.T, -1)).all()


# --- under capture: no host read on replay, so the draw is poisoned, never a valid action 0
def test_captured_categorical_replay_refuses_nan_rows():
    # (on the CPU the draw's own check runs at replay, as eager; a GPU poisons with K)
    pi = tl.nn.Linear(4, 3)
    act = tl.function(lambda o: LD.Categorical(logits=pi(o)).sample())
    with tl.no_grad():
        good = act(tl.randn(2, 4)).numpy()
        assert ((good >= 0) & (good < 3)).all()
        o = tl.randn(2, 4)
        o[1] = nan
        with pytest.raises(tl.errors.InputError, match="Categorical.sample"):
            act(o)


_SAMPLERS = [
    lambda o: LD.OneHotCategorical(logits=o).sample(),
    lambda o: LD.Bernoulli(logits=o).sample(),
    lambda o: LD.Normal(o, o.exp() * tl.where(o.isnan(), 1.0, -1.0)).sample(),
    lambda o: LD.Multinomial(4, logits=o).sample(),
]


@pytest.mark.parametrize("make", _SAMPLERS)
def test_captured_samplers_replay_poison_or_refuse_nan(make):
    # categorical draws refuse NaN rows at replay on the CPU (the draw's own check);
    # Bernoulli and Normal give NaN, as documented
    f = tl.function(make)
    with tl.no_grad():
        f(tl.zeros(2, 3))
        o = tl.zeros(2, 3)
        o[0] = nan
        try:
            x = f(o).numpy()
        except tl.errors.InputError:
            assert make in (_SAMPLERS[0], _SAMPLERS[3])
            return
    assert make not in (_SAMPLERS[0], _SAMPLERS[3])
    assert np.isnan(x[0]).all()


def test_captured_normal_negative_scale_is_nan_not_a_sample():
    f = tl.function(lambda s: LD.Normal(tl.zeros(3), s).sample())
    with tl.no_grad():
        assert np.isfinite(f(tl.ones(3)).numpy()).all()
        x = f(tl.tensor([1.0, -1.0, 0.0])).numpy()
    assert np.isfinite(x[0]) and np.isnan(x[1]) and x[2] == 0.0


def test_rsample_does_not_check_as_torch():
    # PyTorch's Normal.rsample is loc + eps * scale, unchecked
    t = TD.Normal(torch.zeros(2), -torch.ones(2), validate_args=False).rsample()
    x = LD.Normal(tl.zeros(2), -tl.ones(2), validate_args=False).rsample()
    assert np.isfinite(t.numpy()).all() and np.isfinite(x.numpy()).all()


# --- Gamma family under capture
def _ks2(a, b):
    return stats.ks_2samp(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel())


@pytest.mark.parametrize("conc", [0.05, 0.4, 1.0, 3.0, 60.0])
def test_captured_gamma_matches_torch_distribution(conc):
    torch.manual_seed(0)
    tl.manual_seed(0)
    f = tl.function(lambda c, r: LD.Gamma(c, r).sample((4000,)))
    c = tl.full((2,), conc, dtype=tl.float64)
    r = tl.tensor([1.0, 3.0], dtype=tl.float64)
    with tl.no_grad():
        x1, x2 = f(c, r).numpy(), f(c, r).numpy()
    assert x1.dtype == np.float64 and x1.shape == (4000, 2)
    assert not (x1 == x2).all()                  # a replay draws anew
    t = TD.Gamma(torch.full((2,), conc, dtype=torch.float64),
                 torch.tensor([1.0, 3.0], dtype=torch.float64)).sample((4000,)).numpy()
    for j in range(2):
        assert _ks2(x1[:, j], t[:, j]).pvalue > 1e-3
        assert stats.kstest(x1[:, j], stats.gamma(conc, scale=1 / [1.0, 3.0][j]).cdf).pvalue \
            > 1e-3
    assert (x1 > 0).all()


def test_captured_beta_dirichlet_studentt_match_torch():
    tl.manual_seed(1)
    torch.manual_seed(1)
    n = 4000
    cases = [
        (lambda c: LD.Beta(c, c + 1.0).sample((n,)), lambda c: TD.Beta(c, c + 1.0).sample((n,))),
        (lambda c: LD.Dirichlet(c).sample((n,)), lambda c: TD.Dirichlet(c).sample((n,))),
        (lambda c: LD.StudentT(c).sample((n,)), lambda c: TD.StudentT(c).sample((n,))),
        (lambda c: LD.Chi2(c).sample((n,)), lambda c: TD.Chi2(c).sample((n,))),
    ]
    cv = [0.3, 2.0, 5.0]
    for lf, tf in cases:
        f = tl.function(lf)
        with tl.no_grad():
            x = f(tl.tensor(cv)).numpy()
        t = tf(torch.tensor(cv)).numpy()
        assert x.shape == t.shape and x.dtype == t.dtype
        for j in range(3):
            assert _ks2(x[:, j], t[:, j]).pvalue > 1e-3


def test_captured_beta_policy_from_trial():
    lin = tl.nn.Linear(4, 2)
    g = tl.function(lambda o: LD.Beta(tl.sigmoid(lin(o)) + 0.5, tl.ones(2)).sample())
    with tl.no_grad():
        a, b = g(tl.randn(3, 4)).numpy(), g(tl.randn(3, 4)).numpy()
    assert a.shape == (3, 2) and ((a > 0) & (a < 1)).all() and not (a == b).all()


def test_captured_gamma_invalid_concentration_is_nan():
    f = tl.function(lambda c: LD.Gamma(c, 1.0, validate_args=False).sample())
    with tl.no_grad():
        f(tl.ones(2))
        x = f(tl.tensor([-1.0, nan])).numpy()
    assert np.isnan(x).all()


def test_captured_gamma_rsample_with_grad_captures():
    # session 18: the implicit gradient is in tensorlib ops, so the draw captures with it
    c = tl.tensor([1.0, 2.0], requires_grad=True)
    g = tl.function(lambda c: LD.Beta(c, c).rsample().sum())
    assert np.isfinite(g(c).item())
    # eager keeps the implicit reparameterization gradient, as torch
    tc = torch.tensor([1.0, 2.0], requires_grad=True)
    TD.Gamma(tc, 1.0).rsample().sum().backward()
    LD.Gamma(c, 1.0).rsample().sum().backward()
    assert c.grad is not None and tc.grad is not None and np.isfinite(c.grad.numpy()).all()


def test_captured_poisson_still_refuses():
    g = tl.function(lambda r: LD.Poisson(r).sample())
    with pytest.raises(CaptureError, match="Poisson"):
        g(tl.ones(2))
