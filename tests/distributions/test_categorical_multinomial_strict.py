"""RL trial 23: strict Categorical indices (F1), the one-draw multinomial path (F2), invalid
probabilities refused when a captured draw replays (NaN), a capturable-or-named
clip_grad_norm_(error_if_nonfinite=True) (F3) and tensor get_last_lr (F4), against PyTorch."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib.errors import InputError

torch = pytest.importorskip("torch")

D = tl.distributions
TD = torch.distributions


# --- F1: Categorical.log_prob reads class indices strictly ------------------------------
@pytest.mark.parametrize("bad", [-1, -3, 3, 7])
@pytest.mark.parametrize("param", ["logits", "probs"])
def test_categorical_log_prob_out_of_range_raises_unvalidated(bad, param):
    x = np.array([[0.0, 1.0, 2.0]])
    if param == "probs":
        x = np.exp(x) / np.exp(x).sum()
    c = D.Categorical(**{param: tl.tensor(x)}, validate_args=False)
    t = TD.Categorical(**{param: torch.tensor(x)}, validate_args=False)
    with pytest.raises((RuntimeError, IndexError)):
        t.log_prob(torch.tensor([bad]))
    with pytest.raises(IndexError, match=r"Categorical.log_prob: index -?\d+ is out of bounds"):
        c.log_prob(tl.tensor([bad]))


def test_categorical_log_prob_negative_raises_in_captured_replay():
    def lp(x, a):
        return D.Categorical(logits=x, validate_args=False).log_prob(a)
    f = tl.function(lp)
    x = tl.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, -1.0]])
    tx = torch.tensor(x.numpy())
    np.testing.assert_allclose(f(x, tl.tensor([2, 0])).numpy(),
                               TD.Categorical(logits=tx).log_prob(torch.tensor([2, 0])).numpy(),
                               rtol=1e-6)
    for bad in ([-1, 0], [0, 3]):
        with pytest.raises(IndexError, match="Categorical.log_prob"):
            f(x, tl.tensor(bad))
    assert f.trace_count == 1


def test_onehot_and_multinomial_log_prob_unvalidated_match_torch():
    # no gather by value there (argmax / counts times logits): both libraries answer
    x = np.array([[0.3, 1.0, -2.0]])
    v = np.array([[0.0, 0.0, 1.0]])
    a = D.OneHotCategorical(logits=tl.tensor(x), validate_args=False).log_prob(tl.tensor(v))
    b = TD.OneHotCategorical(logits=torch.tensor(x), validate_args=False).log_prob(
        torch.tensor(v))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    c = np.array([[2.0, 0.0, 1.0]])
    a = D.Multinomial(3, logits=tl.tensor(x), validate_args=False).log_prob(tl.tensor(c))
    b = TD.Multinomial(3, logits=torch.tensor(x), validate_args=False).log_prob(
        torch.tensor(c))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(2, 6), st.integers(0, 10_000))
def test_categorical_log_prob_values_and_grads_match_torch(b, k, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(b, k))
    a = rng.integers(0, k, size=(b,))
    xl = tl.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    lp = D.Categorical(logits=xl, validate_args=False).log_prob(tl.tensor(a))
    lt = TD.Categorical(logits=xt, validate_args=False).log_prob(torch.tensor(a))
    np.testing.assert_allclose(lp.numpy(), lt.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = rng.normal(size=(b,))
    (lp * tl.tensor(w)).sum().backward()
    (lt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


# --- F2: multinomial, one draw by inverse CDF ----------------------------------------------
@pytest.mark.parametrize("replacement", [False, True])
@pytest.mark.parametrize("shape", [(1, 2), (16, 2), (64, 6), (3,)])
def test_multinomial_one_draw_both_modes_same_stream(replacement, shape):
    rng = np.random.default_rng(1)
    w = tl.tensor(rng.random(shape) + 0.05)
    a = tl.multinomial(w, 1, replacement, generator=tl.Generator().manual_seed(7))
    b = tl.multinomial(w, 1, not replacement, generator=tl.Generator().manual_seed(7))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype == np.int64 and tuple(a.shape) == shape[:-1] + (1,)
    assert tuple(torch.multinomial(torch.tensor(w.numpy()), 1, replacement).shape) == \
        tuple(a.shape)


def test_multinomial_one_draw_is_the_inverse_cdf_of_one_uniform():
    w = np.array([[0.2, 0.0, 0.5, 0.3], [1.0, 1.0, 0.0, 2.0]])
    u = tl.rand(2, 1, generator=tl.Generator().manual_seed(3), dtype=tl.float64).numpy()
    got = tl.multinomial(tl.tensor(w), 1, generator=tl.Generator().manual_seed(3)).numpy()
    cdf = np.cumsum(w, axis=-1)
    want = [np.searchsorted(cdf[i], (1 - u[i, 0]) * cdf[i, -1], side="left") for i in range(2)]
    np.testing.assert_array_equal(got[:, 0], want)


@pytest.mark.parametrize("replacement", [False, True])
def test_multinomial_one_draw_frequencies(replacement):
    w = np.array([0.1, 0.0, 0.6, 0.3])
    tl.manual_seed(0)
    draws = tl.multinomial(tl.tensor(np.tile(w, (20000, 1))), 1, replacement).numpy()[:, 0]
    freq = np.bincount(draws, minlength=4) / draws.size
    assert freq[1] == 0
    np.testing.assert_allclose(freq, w, atol=0.015)


def test_multinomial_eager_and_captured_draw_alike():
    w = tl.tensor(np.random.default_rng(2).random((5, 3)) + 0.1)
    f = tl.function(lambda w: (tl.multinomial(w, 1), tl.multinomial(w, 3, True),
                               tl.multinomial(w, 2)))
    for _ in range(2):      # the trace, then a replay
        tl.manual_seed(11)
        got = f(w)
        tl.manual_seed(11)
        want = (tl.multinomial(w, 1), tl.multinomial(w, 3, True), tl.multinomial(w, 2))
        for g, e in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), e.numpy())
    assert f.trace_count == 1


BAD_ROWS = [([1.0, math.nan], "finite and non-negative"),
            ([1.0, math.inf], "finite and non-negative"),
            ([-0.5, 1.0], "finite and non-negative"),
            ([0.0, 0.0], "sums to 0")]


@pytest.mark.parametrize("row,msg", BAD_ROWS)
@pytest.mark.parametrize("k,replacement", [(1, False), (1, True), (2, True), (2, False)])
def test_multinomial_invalid_rows_raise_eager_and_on_replay(row, msg, k, replacement):
    good = tl.tensor([[1.0, 2.0], [0.5, 0.5]])
    bad = tl.tensor([[0.3, 0.7], row])
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor(bad.numpy()), k, replacement)
    with pytest.raises(InputError, match=msg) as eager:
        tl.multinomial(bad, k, replacement)
    if k > 1 and not replacement:
        return      # the Gumbel-top-k path is not checked in a graph (see the docstring)
    f = tl.function(lambda w: tl.multinomial(w, k, replacement))
    f(good)
    with pytest.raises(InputError) as replay:
        f(bad)
    assert str(replay.value) == str(eager.value)
    assert f.trace_count == 1


def test_multinomial_float64_weights_whose_sum_overflows_still_draw():
    w = tl.tensor([[1e308, 1e308, 0.0]], dtype=tl.float64)
    tl.manual_seed(0)
    d = tl.multinomial(w, 200, True).numpy()
    assert set(np.unique(d)) <= {0, 1}
    assert tl.function(lambda w: tl.multinomial(w, 1))(w).numpy()[0, 0] in (0, 1)


# --- NaN: a captured Categorical draw refuses invalid probabilities on the CPU -------------
@pytest.mark.parametrize("dist", ["Categorical", "OneHotCategorical", "Multinomial"])
def test_captured_sample_with_nan_logits_raises_like_eager(dist):
    def make(x):
        if dist == "Multinomial":
            return D.Multinomial(4, logits=x, validate_args=False)
        return getattr(D, dist)(logits=x, validate_args=False)
    f = tl.function(lambda x: make(x).sample())
    x = tl.tensor([[0.0, 1.0, 2.0, 0.5]])
    f(x)
    bad = tl.tensor([[0.0, math.nan, 2.0, 0.5]])
    with pytest.raises(InputError) as eager:
        make(bad).sample()
    with pytest.raises(InputError) as replay:
        f(bad)
    assert str(replay.value) == str(eager.value)
    assert "Categorical.sample" in str(replay.value)
    with pytest.raises(RuntimeError):
        TD.Categorical(logits=torch.tensor(bad.numpy()), validate_args=False).sample()
    with pytest.raises(InputError):
        f(tl.tensor([[-math.inf] * 4]))
    assert f.trace_count == 1


@pytest.mark.parametrize("sample_shape", [(), (3,), (2, 2)])
def test_categorical_sample_eager_equals_captured(sample_shape):
    x = tl.tensor(np.random.default_rng(3).normal(size=(4, 5)))
    f = tl.function(lambda x: D.Categorical(logits=x, validate_args=False).sample(sample_shape))
    for _ in range(2):
        tl.manual_seed(5)
        got = f(x)
        tl.manual_seed(5)
        want = D.Categorical(logits=x, validate_args=False).sample(sample_shape)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        assert tuple(got.shape) == tuple(TD.Categorical(
            logits=torch.tensor(x.numpy())).sample(sample_shape).shape)
    assert f.trace_count == 1


def test_categorical_masked_class_never_drawn_captured():
    x = tl.tensor([[0.0, -math.inf, 1.0, -math.inf]] * 2000)
    f = tl.function(lambda x: D.Categorical(logits=x).sample())
    f(x)
    tl.manual_seed(1)
    d = f(x).numpy()
    assert set(np.unique(d)) <= {0, 2}
    np.testing.assert_allclose((d == 2).mean(), math.e / (1 + math.e), atol=0.04)


# --- F3: clip_grad_norm_(error_if_nonfinite=True) under capture ------------------------------
def test_clip_grad_norm_error_if_nonfinite_is_checked_at_every_replay():
    m = tl.nn.Linear(4, 2)
    opt = tl.optim.SGD(m.parameters(), lr=0.1)

    @tl.function
    def step(x):
        loss = m(x).square().mean()
        opt.zero_grad()
        loss.backward()
        gn = tl.nn.utils.clip_grad_norm_(m.parameters(), 0.5, error_if_nonfinite=True)
        opt.step()
        return gn
    for _ in range(3):
        assert np.isfinite(step(tl.randn(8, 4)).numpy())
    w = m.weight.detach().clone()
    bad = tl.randn(8, 4)
    bad[0, 0] = math.inf
    with pytest.raises(RuntimeError, match=r"clip_grad_norm_: the total norm of order 2.0 of "
                                           r"the gradients is (nan|inf)"):
        step(bad)
    assert step.trace_count == 1
    # (the step stopped before opt.step(): the weights are as they were)
    np.testing.assert_array_equal(m.weight.detach().numpy(), w.numpy())


def test_clip_grad_norm_error_if_nonfinite_eager_unchanged_and_default_captures():
    p = tl.nn.Parameter(tl.zeros(3, dtype=tl.float64))
    p.grad = tl.tensor([1.0, math.inf, 0.0], dtype=tl.float64)
    tp = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    tp.grad = torch.tensor([1.0, math.inf, 0.0], dtype=torch.float64)
    with pytest.raises(RuntimeError):
        torch.nn.utils.clip_grad_norm_([tp], 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total norm of order 2.0"):
        tl.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    w = np.array([3.0, 4.0, 0.0])
    p.grad, tp.grad = tl.tensor(w), torch.tensor(w)
    n1 = tl.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    n2 = torch.nn.utils.clip_grad_norm_([tp], 1.0, error_if_nonfinite=True)
    np.testing.assert_allclose(n1.numpy(), n2.numpy())
    np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)
    f = tl.function(lambda g: tl.nn.utils.get_total_norm([g], error_if_nonfinite=True))
    np.testing.assert_allclose(f(tl.tensor(w)).numpy(), 5.0)
    with pytest.raises(RuntimeError, match="get_total_norm: the total norm"):
        f(tl.tensor([1.0, math.nan, 0.0], dtype=tl.float64))


# --- F4: get_last_lr returns tensors for a tensor lr ----------------------------------------
def _scheds(lib, o):
    S = lib.optim.lr_scheduler
    return {
        "LinearLR": lambda: S.LinearLR(o, 1.0, 0.0, total_iters=10),
        "StepLR": lambda: S.StepLR(o, 1, 0.5),
        "MultiStepLR": lambda: S.MultiStepLR(o, [1, 2], 0.5),
        "ExponentialLR": lambda: S.ExponentialLR(o, 0.9),
        "CosineAnnealingLR": lambda: S.CosineAnnealingLR(o, 5),
        "ConstantLR": lambda: S.ConstantLR(o, 0.5, 2),
        "PolynomialLR": lambda: S.PolynomialLR(o, 4, 2.0),
        "LambdaLR": lambda: S.LambdaLR(o, lambda e: 0.9 ** e),
        "MultiplicativeLR": lambda: S.MultiplicativeLR(o, lambda e: 0.9),
        "CosineAnnealingWarmRestarts": lambda: S.CosineAnnealingWarmRestarts(o, 3),
        "OneCycleLR": lambda: S.OneCycleLR(o, 0.01, total_steps=10),
        "CyclicLR": lambda: S.CyclicLR(o, 0.001, 0.01, cycle_momentum=False),
        "ReduceLROnPlateau": lambda: S.ReduceLROnPlateau(o, patience=0),
        "SequentialLR": lambda: S.SequentialLR(o, [S.ConstantLR(o, 0.5, 2),
                                                   S.ExponentialLR(o, 0.9)], [2]),
        "ChainedScheduler": lambda: S.ChainedScheduler([S.ConstantLR(o, 0.5, 2),
                                                        S.ExponentialLR(o, 0.9)]),
    }


@pytest.mark.parametrize("name", list(_scheds(tl, None)))
@pytest.mark.parametrize("tensor_lr", [True, False])
def test_get_last_lr_types_and_values_match_torch(name, tensor_lr):
    res = {}
    for lib in (torch, tl):
        p = [lib.nn.Parameter(lib.zeros(2, dtype=lib.float64))]
        lr = lib.tensor(1e-3, dtype=lib.float64) if tensor_lr else 1e-3
        o = lib.optim.SGD(p, lr=lr)
        own = o.param_groups[0]["lr"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = _scheds(lib, o)[name]()
        seen = [s.get_last_lr()]
        for _ in range(4):
            o.step()
            s.step(1.0) if name == "ReduceLROnPlateau" else s.step()
            seen.append(s.get_last_lr())
        if tensor_lr:
            assert o.param_groups[0]["lr"] is own     # updated in place, never replaced
        for lrs in seen:
            assert len(lrs) == 1
            assert isinstance(lrs[0], lib.Tensor) == tensor_lr
            if tensor_lr:
                assert lrs[0] is not own                  # a copy, as PyTorch's
        res[lib.__name__] = [float(x[0]) for x in seen]
    np.testing.assert_allclose(res["tensorlib"], res["torch"], rtol=1e-12)


def test_get_last_lr_copy_does_not_alias_the_group_lr():
    p = [tl.nn.Parameter(tl.zeros(2))]
    o = tl.optim.Adam(p, lr=tl.tensor(1e-3))
    s = tl.optim.lr_scheduler.LinearLR(o, 1.0, 0.0, total_iters=10)
    o.step()
    s.step()
    last = s.get_last_lr()[0]
    assert isinstance(last, tl.Tensor) and last.ndim == 0
    np.testing.assert_allclose(float(last), 9e-4, rtol=1e-6)
    last.fill_(5.0)
    np.testing.assert_allclose(float(o.param_groups[0]["lr"]), 9e-4, rtol=1e-6)


def test_generic_draw_kernel_poisons_invalid_rows_with_class_k():
    # the CuPy kernel's form, run here with NumPy: no host check, invalid rows draw K
    from tensorlib.ops.sampling import _draw_cpu, _draw_fwd
    w = np.array([[0.2, 0.0, 0.8], [math.nan, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, -1.0, 2.0],
                  [1.0, math.inf, 1.0]])
    u = np.random.default_rng(0).random((5, 4))
    with np.errstate(invalid="ignore"):
        got = _draw_fwd(np, w, u)
    assert (got[1:] == 3).all()
    np.testing.assert_array_equal(got[:1], _draw_cpu(w[:1], u[:1]))
    assert set(np.unique(got[0])) <= {0, 2}


@pytest.mark.parametrize("batch,sample", [((0, 3), (2,)), ((4, 3), (0,)), ((4, 3), (2, 5))])
def test_categorical_sample_shapes_with_empty_batches_as_torch(batch, sample):
    got = tl.distributions.Categorical(probs=tl.ones(*batch)).sample(sample)
    want = tuple(sample) + batch[:-1]
    if math.prod(sample):       # (torch refuses a sample shape with no draws)
        t = torch.distributions.Categorical(probs=torch.ones(*batch)).sample(sample)
        assert tuple(t.shape) == want
    assert tuple(got.shape) == want
    f = tl.function(lambda p: tl.distributions.Categorical(probs=p).sample(sample))
    assert tuple(f(tl.ones(*batch)).shape) == want
