"""What the RL and LLM user trials found missing, fixed the way PyTorch behaves:
``tl.bernoulli(input, p)``, ``tl._foreach_*``, ``tl.backends`` flags, ``tl.compile``,
``tensorlib.utils.checkpoint``, and the optimizers' implementation keywords."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import nn

torch = pytest.importorskip("torch")


def _rng(seed=0):
    return np.random.default_rng(seed)


def _pair(shapes, seed=0, dtype=np.float32, positive=False):
    """The same random arrays as tensorlib and torch tensor lists."""
    r = _rng(seed)
    arrs = [r.standard_normal(s).astype(dtype) for s in shapes]
    if positive:
        arrs = [np.abs(a) + 0.5 for a in arrs]
    return [tl.tensor(a.copy()) for a in arrs], [torch.tensor(a.copy()) for a in arrs]


def _close(tls, tts, rtol=1e-6, atol=1e-6):
    tls, tts = list(tls), list(tts)
    assert len(tls) == len(tts)
    for a, b in zip(tls, tts):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=rtol, atol=atol)


# --- 1. bernoulli ------------------------------------------------------------------------------
@pytest.mark.parametrize("call", ["positional", "keyword"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_bernoulli_scalar_p_has_inputs_shape_and_dtype(call, dtype):
    x = tl.zeros(3, 4, dtype=dtype)
    t = torch.zeros(3, 4, dtype=getattr(torch, dtype))
    got = tl.bernoulli(x, 0.3) if call == "positional" else tl.bernoulli(x, p=0.3)
    ref = torch.bernoulli(t, 0.3) if call == "positional" else torch.bernoulli(t, p=0.3)
    assert tuple(got.shape) == tuple(ref.shape)
    assert str(got.dtype) == str(ref.dtype).replace("torch.", "")
    assert set(np.unique(got.numpy())) <= {0, 1}


def test_bernoulli_scalar_p_draws_with_p_not_with_input():
    g = tl.Generator().manual_seed(0)
    ones = tl.ones(20000)                 # as probabilities these would give all 1s
    assert tl.bernoulli(ones, 0.0, generator=g).numpy().max() == 0.0
    assert tl.bernoulli(tl.zeros(10), 1.0, generator=g).numpy().min() == 1.0
    m = tl.bernoulli(ones, 0.25, generator=g).numpy().mean()
    assert abs(m - 0.25) < 0.02           # seeded: a fixed draw, 0.02 is > 6 sigma


def test_bernoulli_generator_keyword_reproduces_and_matches_the_method():
    a = tl.bernoulli(tl.zeros(50), 0.5, generator=tl.Generator().manual_seed(7))
    b = tl.bernoulli(tl.zeros(50), p=0.5, generator=tl.Generator().manual_seed(7))
    c = tl.zeros(50).bernoulli(0.5, generator=tl.Generator().manual_seed(7))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(a.numpy(), c.numpy())
    assert 0 < a.numpy().sum() < 50


def test_bernoulli_of_probabilities_still_works():
    g = tl.Generator().manual_seed(1)
    p = tl.tensor([0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(tl.bernoulli(p, generator=g).numpy(), [0, 1, 0, 1])
    np.testing.assert_array_equal(torch.bernoulli(torch.tensor([0.0, 1.0, 0.0, 1.0])).numpy(),
                                  [0, 1, 0, 1])


def test_bernoulli_scalar_p_draws_anew_on_each_graph_replay():
    @tl.function
    def mask(x):
        return tl.bernoulli(x, p=0.5)
    x = tl.zeros(64)
    draws = [mask(x).numpy().copy() for _ in range(3)]
    assert mask.trace_count == 1
    assert not np.array_equal(draws[1], draws[2])       # 2**-64 to be equal by chance


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_bernoulli_p_out_of_range_raises_as_torch(p):
    with pytest.raises(RuntimeError):
        torch.bernoulli(torch.zeros(2), p)
    with pytest.raises(ValueError, match="p must lie in"):
        tl.bernoulli(tl.zeros(2), p)


# --- 2. foreach --------------------------------------------------------------------------------
SHAPES = [(3,), (2, 4), ()]


@pytest.mark.parametrize("name, other", [
    ("_foreach_add", 1.5), ("_foreach_add", [1.0, -2.0, 0.5]), ("_foreach_add", "list"),
    ("_foreach_add", "0d"), ("_foreach_sub", 0.25), ("_foreach_sub", "list"),
    ("_foreach_mul", 3.0), ("_foreach_mul", [1.0, 2.0, 3.0]), ("_foreach_mul", "list"),
    ("_foreach_mul", "0d"), ("_foreach_div", 4.0), ("_foreach_div", "list_pos"),
    ("_foreach_div", "0d"), ("_foreach_maximum", 0.1), ("_foreach_maximum", "list"),
    ("_foreach_minimum", [0.0, 0.5, -0.5]), ("_foreach_clamp_min", 0.0),
    ("_foreach_clamp_max", [0.0, 0.5, -0.5]), ("_foreach_pow", 2.0),
    ("_foreach_pow", "list_pos"),
])
@pytest.mark.parametrize("inplace", [False, True])
def test_foreach_binary_matches_torch(name, other, inplace):
    xs, ts = _pair(SHAPES, 0, positive=name == "_foreach_pow")
    if other in ("list", "list_pos"):
        o_tl, o_t = _pair(SHAPES, 1, positive=other == "list_pos")
    elif other == "0d":
        o_tl, o_t = tl.tensor(2.5), torch.tensor(2.5)
    else:
        o_tl = o_t = other
    fn = name + ("_" if inplace else "")
    got = getattr(tl, fn)(xs, o_tl)
    ref = getattr(torch, fn)(ts, o_t)
    if inplace:
        assert got is xs
        _close(xs, ts)
    else:
        assert isinstance(got, tuple)
        _close(got, ref)


@pytest.mark.parametrize("name", ["_foreach_add", "_foreach_sub"])
@pytest.mark.parametrize("inplace", [False, True])
def test_foreach_add_sub_alpha_matches_torch(name, inplace):
    xs, ts = _pair(SHAPES, 0)
    ys, us = _pair(SHAPES, 1)
    fn = name + ("_" if inplace else "")
    got = getattr(tl, fn)(xs, ys, alpha=0.3)
    ref = getattr(torch, fn)(ts, us, alpha=0.3)
    _close(xs, ts) if inplace else _close(got, ref)


UNARY = ["abs", "exp", "neg", "sqrt", "sigmoid", "tanh", "log", "reciprocal", "sign", "floor",
         "rsqrt", "log1p", "sin", "trunc"]


@pytest.mark.parametrize("op", UNARY)
def test_foreach_unary_matches_torch(op):
    xs, ts = _pair(SHAPES, 2, positive=op in ("sqrt", "log", "rsqrt", "log1p"))
    _close(getattr(tl, f"_foreach_{op}")(xs), getattr(torch, f"_foreach_{op}")(ts), 1e-5)
    assert getattr(tl, f"_foreach_{op}_")(xs) is xs
    getattr(torch, f"_foreach_{op}_")(ts)
    _close(xs, ts, 1e-5)


@pytest.mark.parametrize("weight", [0.005, [0.1, 0.5, 0.9], "tensors"])
@pytest.mark.parametrize("inplace", [False, True])
def test_foreach_lerp_matches_torch(weight, inplace):
    xs, ts = _pair(SHAPES, 0)
    ys, us = _pair(SHAPES, 1)
    if weight == "tensors":
        w_tl, w_t = _pair(SHAPES, 3, positive=True)
    else:
        w_tl = w_t = weight
    if inplace:
        assert tl._foreach_lerp_(xs, ys, w_tl) is xs
        torch._foreach_lerp_(ts, us, w_t)
        _close(xs, ts)
    else:
        _close(tl._foreach_lerp(xs, ys, w_tl), torch._foreach_lerp(ts, us, w_t))


@pytest.mark.parametrize("name", ["_foreach_addcmul", "_foreach_addcdiv"])
@pytest.mark.parametrize("value", [1, 0.5, [0.5, -1.0, 2.0], "tensor"])
@pytest.mark.parametrize("inplace", [False, True])
def test_foreach_addcmul_addcdiv_match_torch(name, value, inplace):
    xs, ts = _pair(SHAPES, 0)
    a, at = _pair(SHAPES, 1)
    b, bt = _pair(SHAPES, 2, positive=True)
    if value == "tensor":
        v_tl, v_t = tl.tensor([0.5, -1.0, 2.0]), torch.tensor([0.5, -1.0, 2.0])
    else:
        v_tl = v_t = value
    fn = name + ("_" if inplace else "")
    got = getattr(tl, fn)(xs, a, b, v_tl)
    ref = getattr(torch, fn)(ts, at, bt, v_t)
    _close(xs, ts, 1e-6) if inplace else _close(got, ref, 1e-6)


def test_foreach_copy_zero_clone_pow_scalar_base_max_match_torch():
    xs, ts = _pair(SHAPES, 0)
    ys, us = _pair(SHAPES, 1)
    assert tl._foreach_copy_(xs, ys) is xs
    torch._foreach_copy_(ts, us)
    _close(xs, ts)
    _close(tl._foreach_clone(xs), torch._foreach_clone(ts))
    _close(tl._foreach_max(xs), torch._foreach_max(ts))
    _close(tl._foreach_pow(2.0, xs), torch._foreach_pow(2.0, ts), 1e-6)
    assert tl._foreach_zero_(xs) is xs
    assert all(not x.numpy().any() for x in xs)


@pytest.mark.parametrize("ord", [2, 1, float("inf"), 3])
def test_foreach_norm_matches_torch(ord):
    xs, ts = _pair(SHAPES, 4)
    got = tl._foreach_norm(xs, ord)
    assert all(g.ndim == 0 for g in got)
    _close(got, torch._foreach_norm(ts, ord), 1e-5)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.lists(st.integers(1, 4), max_size=3), min_size=1, max_size=4),
       st.floats(0.0, 1.0), st.integers(0, 2**16))
def test_foreach_polyak_update_matches_torch(shapes, tau, seed):
    xs, ts = _pair([tuple(s) for s in shapes], seed)
    ys, us = _pair([tuple(s) for s in shapes], seed + 1)
    with tl.no_grad():
        tl._foreach_mul_(xs, 1.0 - tau)
        tl._foreach_add_(xs, ys, alpha=tau)
    with torch.no_grad():
        torch._foreach_mul_(ts, 1.0 - tau)
        torch._foreach_add_(ts, us, alpha=tau)
    _close(xs, ts, 1e-5, 1e-6)


def test_foreach_target_network_update_on_module_parameters():
    tl.manual_seed(0)
    online, target = nn.Linear(4, 3), nn.Linear(4, 3)
    want = [t.numpy() + 0.01 * (o.numpy() - t.numpy())
            for t, o in zip(target.parameters(), online.parameters())]
    with tl.no_grad():
        tl._foreach_lerp_(list(target.parameters()), list(online.parameters()), 0.01)
    for p, w in zip(target.parameters(), want):
        np.testing.assert_allclose(p.numpy(), w, rtol=1e-6, atol=1e-7)


def test_foreach_inplace_bumps_versions_and_trips_autograd_checks():
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    h = a * 1.0
    y = (h * h).sum()          # mul saves h for its backward
    before = h._version_counter
    tl._foreach_mul_([h], 3.0)
    assert h._version_counter > before
    with pytest.raises(RuntimeError):
        y.backward()


@pytest.mark.parametrize("name, args", [
    ("lerp_", lambda ys: (ys, 0.3)), ("add_", lambda ys: (ys,)), ("sub_", lambda ys: (ys,))])
def test_foreach_inplace_fast_path_equals_the_tensor_methods(name, args):
    xs, _ = _pair(SHAPES, 0)
    ref, _ = _pair(SHAPES, 0)
    ys, _ = _pair(SHAPES, 1)
    kw = {} if name == "lerp_" else {"alpha": 0.7}
    before = [x._version_counter for x in xs]
    with tl.no_grad():
        getattr(tl, "_foreach_" + name)(xs, *args(ys), **kw)
        for r, y in zip(ref, ys):
            getattr(r, name)(*args(y)[:1], *args(ys)[1:], **kw)
    for x, r, b in zip(xs, ref, before):
        np.testing.assert_array_equal(x.numpy(), r.numpy())
        assert x._version_counter == b + 1
    p = tl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        getattr(tl, "_foreach_" + name)([p], *args([tl.ones(2)]), **kw)


def test_foreach_inplace_recorded_and_broadcast_paths_match_torch():
    a = _rng(7).standard_normal((2, 3))
    x, t = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    e = _rng(8).standard_normal((3,))
    hx, ht = x * 1.0, t * 1.0
    tl._foreach_lerp_([hx], [tl.tensor(e)], 0.25)        # recorded, end broadcast
    torch._foreach_lerp_([ht], [torch.tensor(e)], 0.25)
    tl._foreach_add_([hx], [tl.tensor(e)], alpha=2.0)
    torch._foreach_add_([ht], [torch.tensor(e)], alpha=2.0)
    (hx ** 2).sum().backward()
    (ht ** 2).sum().backward()
    np.testing.assert_allclose(hx.detach().numpy(), ht.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_foreach_inplace_on_leaf_that_requires_grad_raises_as_torch():
    with pytest.raises(RuntimeError):
        torch._foreach_add_([torch.ones(2, requires_grad=True)], 1.0)
    with pytest.raises(RuntimeError, match="in-place"):
        tl._foreach_add_([tl.ones(2, requires_grad=True)], 1.0)


def test_foreach_out_of_place_is_differentiable_like_torch():
    r = _rng(5)
    arrs = [r.standard_normal(s) for s in [(3,), (2, 2)]]
    xs = [tl.tensor(a, requires_grad=True) for a in arrs]
    ts = [torch.tensor(a, requires_grad=True) for a in arrs]
    ys = [tl.tensor(a * 0.5) for a in arrs]
    us = [torch.tensor(a * 0.5) for a in arrs]
    out = tl._foreach_lerp(tl._foreach_mul(xs, 2.0), ys, 0.3)
    ref = torch._foreach_lerp(torch._foreach_mul(ts, 2.0), us, 0.3)
    sum(((o * o).sum() for o in out), tl.tensor(0.0, dtype=tl.float64)).backward()
    sum((o * o).sum() for o in ref).backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10)


def test_foreach_addcdiv_gradcheck():
    r = _rng(6)
    x, a, b = (tl.tensor(r.standard_normal((2, 3)) + (2.0 if i == 2 else 0.0),
                         dtype=tl.float64, requires_grad=True) for i in range(3))
    assert tl.autograd.gradcheck(lambda x, a, b: tl._foreach_addcdiv([x], [a], [b], 0.7)[0],
                                 (x, a, b))


@pytest.mark.parametrize("call, err, match", [
    (lambda xs: tl._foreach_add([], 1.0), RuntimeError, "at least one tensor"),
    (lambda xs: tl._foreach_add(xs, [1.0]), RuntimeError, "scalar list"),
    (lambda xs: tl._foreach_add(xs, [tl.ones(3)]), RuntimeError, "same number of tensors"),
    (lambda xs: tl._foreach_mul(xs, tl.ones(2)), RuntimeError, "0 dim"),
    (lambda xs: tl._foreach_add(xs, 1.0, alpha=2), TypeError, "alpha"),
    (lambda xs: tl._foreach_add(xs[0], 1.0), TypeError, "list or tuple of Tensors"),
    (lambda xs: tl._foreach_add(xs, [tl.ones(5), tl.ones(5), tl.ones(5)]), ValueError,
     "at tensor 0"),
    (lambda xs: tl._foreach_norm([tl.ones(2, dtype=tl.int64)]), RuntimeError, "floating"),
])
def test_foreach_errors(call, err, match):
    xs, _ = _pair(SHAPES)
    with pytest.raises(err, match=match):
        call(xs)


def test_foreach_names_exist_in_torch():
    names = [n for n in dir(tl) if n.startswith("_foreach_")]
    assert len(names) > 60
    assert not [n for n in names if not hasattr(torch, n)]


# --- 3. backends -------------------------------------------------------------------------------
@pytest.fixture
def restore_backends():
    c = tl.backends.cudnn
    saved = (c.enabled, c.benchmark, c.deterministic, c.allow_tf32,
             tl.get_float32_matmul_precision(), tl.are_deterministic_algorithms_enabled())
    yield
    c.enabled, c.benchmark, c.deterministic, c.allow_tf32 = saved[:4]
    tl.set_float32_matmul_precision(saved[4])
    tl.use_deterministic_algorithms(saved[5])


def test_cudnn_flags_defaults_match_torch_and_are_settable(restore_backends):
    c, tc = tl.backends.cudnn, torch.backends.cudnn
    for k in ("enabled", "benchmark", "deterministic", "allow_tf32"):
        assert getattr(c, k) == getattr(tc, k), k
    c.deterministic = True              # every CleanRL script
    c.benchmark = True
    assert tl.backends.cudnn.deterministic is True and tl.backends.cudnn.benchmark is True
    assert c.is_available() in (True, False)
    assert (c.version() is None) == (not c.is_available())


def test_cudnn_flags_context_restores(restore_backends):
    c = tl.backends.cudnn
    with c.flags(enabled=False, deterministic=True):
        assert c.enabled is False and c.deterministic is True
    assert c.enabled is True and c.deterministic is False


def test_cuda_matmul_allow_tf32_is_the_matmul_precision_as_in_torch(restore_backends):
    assert tl.backends.cuda.matmul.allow_tf32 is False
    tl.backends.cuda.matmul.allow_tf32 = True
    assert tl.get_float32_matmul_precision() == "high"
    tl.set_float32_matmul_precision("highest")
    assert tl.backends.cuda.matmul.allow_tf32 is False
    tl.set_float32_matmul_precision("medium")
    assert tl.backends.cuda.matmul.allow_tf32 is True
    with pytest.raises(AttributeError, match="unknown attribute"):
        tl.backends.cuda.matmul.allow_tf33 = True


def test_mps_is_not_available_and_sdp_flags_round_trip():
    assert tl.backends.mps.is_available() is False
    assert tl.backends.mps.is_built() is False
    cu = tl.backends.cuda
    assert cu.flash_sdp_enabled() is torch.backends.cuda.flash_sdp_enabled()
    cu.enable_flash_sdp(False)
    try:
        assert cu.flash_sdp_enabled() is False
    finally:
        cu.enable_flash_sdp(True)


def test_backends_internal_functions_still_work():
    from tensorlib.backends import root_buffer, xp_for
    assert xp_for(tl.device("cpu")) is np
    a = np.zeros(4)
    assert root_buffer(a[1:]) is a


def test_deterministic_algorithms_round_trip(restore_backends):
    tl.use_deterministic_algorithms(True, warn_only=True)
    assert tl.are_deterministic_algorithms_enabled() is True
    tl.use_deterministic_algorithms(False)
    assert tl.are_deterministic_algorithms_enabled() is False


# --- 4. compile --------------------------------------------------------------------------------
def _mlp(seed=0):
    tl.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


def test_compile_function_captures_and_replays():
    def f(x):
        return (x * 2).tanh()
    g = tl.compile(f)
    from tensorlib.graph.capture import Function
    assert isinstance(g, Function)
    x = tl.randn(3, 4)
    for _ in range(2):
        np.testing.assert_allclose(g(x).numpy(), (x * 2).tanh().numpy(), rtol=1e-6)
    assert g.trace_count == 1                 # traced once, replayed
    g(tl.randn(5, 4))
    assert g.trace_count == 2                 # a new shape retraces


def test_compile_as_decorator_with_and_without_arguments():
    @tl.compile
    def f(x):
        return x + 1

    @tl.compile(mode="max-autotune", fullgraph=True, dynamic=False)
    def g(x):
        return x * 3
    x = tl.ones(2)
    np.testing.assert_array_equal(f(x).numpy(), [2, 2])
    np.testing.assert_array_equal(g(x).numpy(), [3, 3])
    f(x), g(x)
    assert f.trace_count == 1 and g.trace_count == 1


def test_compile_module_is_an_optimized_module_like_torch():
    m = _mlp()
    c = tl.compile(m)
    assert c._orig_mod is m and isinstance(c, nn.Module)
    assert [id(p) for p in c.parameters()] == [id(p) for p in m.parameters()]
    # torch.compile turns torch.distributions' argument validation off for the whole
    # process (a PyTorch side effect): put it back for the tests that compare errors
    validate = torch.distributions.Distribution._validate_args
    try:
        tm = torch.compile(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(),
                                               torch.nn.Linear(8, 2)))
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)
    assert list(c.state_dict()) == list(tm.state_dict())     # "_orig_mod." prefixed
    x = tl.randn(5, 4)
    with tl.no_grad():
        np.testing.assert_allclose(c(x).numpy(), m(x).numpy(), rtol=1e-6)
        c(x)
    assert c._compiled.trace_count == 1
    sd = {k: v + 1 for k, v in c.state_dict().items()}
    c.load_state_dict(sd)
    np.testing.assert_allclose(m[0].bias.numpy(), sd["_orig_mod.0.bias"].numpy())


def test_compile_module_train_eval_and_attributes():
    tl.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5))
    m.value_head = nn.Linear(16, 1)
    c = tl.compile(m)
    x = tl.ones(3, 4)
    c.eval()
    assert m.training is False and c.training is False
    with tl.no_grad():
        np.testing.assert_allclose(c(x).numpy(), m(x).numpy(), rtol=1e-6)  # no dropout
    c.train()
    assert m.training is True
    assert c.value_head is m.value_head           # forwarded to the wrapped module
    assert "OptimizedModule" in repr(c)


def test_compiled_module_deepcopies_into_an_independent_compiled_copy():
    import copy
    m = _mlp()
    c = tl.compile(m)
    x = tl.randn(2, 4)
    with tl.no_grad():
        c(x)
        d = copy.deepcopy(c)                  # DQN's target network
        assert d._orig_mod is not m and type(d) is type(c)
        np.testing.assert_array_equal(d(x).numpy(), c(x).numpy())
        m[0].bias.add_(1.0)
        assert not np.allclose(d(x).numpy(), c(x).numpy())
        np.testing.assert_allclose(c(x).numpy(), m(x).numpy(), rtol=1e-6)


def test_compiled_module_trains_like_the_module():
    m, ref = _mlp(), _mlp()
    c = tl.compile(m)
    x, y = tl.randn(6, 4), tl.randn(6, 2)
    opt = tl.optim.SGD(c.parameters(), lr=0.1)
    opt_ref = tl.optim.SGD(ref.parameters(), lr=0.1)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # runs eagerly: outputs need gradients
        for _ in range(3):
            for model, o in ((c, opt), (ref, opt_ref)):
                o.zero_grad()
                ((model(x) - y) ** 2).mean().backward()
                o.step()
    for p, q in zip(m.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-6)


def test_compile_disable_and_argument_errors():
    m = _mlp()
    assert tl.compile(m, disable=True) is m
    assert tl.compile(disable=True)(m) is m
    with pytest.raises(RuntimeError, match="both"):
        tl.compile(m, mode="default", options={})
    with pytest.raises(RuntimeError, match="mode"):
        tl.compile(m, mode="fastest")
    with pytest.raises(ValueError, match="backend"):
        tl.compile(m, backend="nope")
    with pytest.raises(NotImplementedError, match="backend"):
        tl.compile(m, backend=lambda gm, inputs: gm)
    with pytest.raises(TypeError, match="function or a Module"):
        tl.compile(3)


def test_compile_signature_has_torchs_keywords():
    ours = inspect.signature(tl.compile).parameters
    theirs = inspect.signature(torch.compile).parameters
    for k in ("model", "fullgraph", "dynamic", "backend", "mode", "options", "disable"):
        assert k in ours and k in theirs
        assert ours[k].default == theirs[k].default or k == "backend"


# --- 5. utils.checkpoint -----------------------------------------------------------------------
def test_utils_checkpoint_import_paths():
    import tensorlib.utils.checkpoint as ck
    from tensorlib.utils.checkpoint import checkpoint, checkpoint_sequential  # noqa: F401
    assert tl.utils.checkpoint is ck


@pytest.mark.parametrize("use_reentrant", [None, True, False])
def test_utils_checkpoint_same_gradients(use_reentrant):
    from tensorlib.utils.checkpoint import checkpoint
    m = _mlp()
    x = tl.randn(3, 4, requires_grad=True)
    grads = []
    for ck in (False, True):
        for t in [x, *m.parameters()]:
            t.grad = None
        out = checkpoint(m, x, use_reentrant=use_reentrant) if ck else m(x)
        (out ** 2).sum().backward()
        grads.append([t.grad.numpy().copy() for t in [x, *m.parameters()]])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_utils_checkpoint_preserves_rng_state_for_dropout():
    from tensorlib.utils.checkpoint import checkpoint
    tl.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 32), nn.Dropout(0.5), nn.Linear(32, 1))
    x = tl.randn(8, 4, requires_grad=True)
    tl.manual_seed(3)
    m(x).sum().backward()
    want = x.grad.numpy().copy()
    x.grad = None
    tl.manual_seed(3)
    checkpoint(m, x, use_reentrant=False, preserve_rng_state=True).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-6)


def test_utils_checkpoint_argument_errors():
    from tensorlib.utils.checkpoint import checkpoint
    x = tl.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="determinism_check"):
        checkpoint(lambda a: a * 2, x, determinism_check="bogus")
    with pytest.raises(NotImplementedError, match="context_fn"):
        checkpoint(lambda a: a * 2, x, context_fn=lambda: (None, None))


@pytest.mark.parametrize("segments", [1, 2, 3, 5])
def test_checkpoint_sequential_matches_torch(segments):
    from tensorlib.utils.checkpoint import checkpoint_sequential
    tm = torch.nn.Sequential(*[torch.nn.Linear(4, 4) if i % 2 == 0 else torch.nn.Tanh()
                               for i in range(5)])
    m = nn.Sequential(*[nn.Linear(4, 4) if i % 2 == 0 else nn.Tanh() for i in range(5)])
    m.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    a = _rng(0).standard_normal((3, 4)).astype(np.float32)
    x, t = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y = checkpoint_sequential(m, segments, x, use_reentrant=False)
    u = torch.utils.checkpoint.checkpoint_sequential(tm, segments, t, use_reentrant=False)
    np.testing.assert_allclose(y.detach().numpy(), u.detach().numpy(), rtol=1e-5, atol=1e-6)
    (y ** 2).sum().backward()
    (u ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-6)
    for p, q in zip(m.parameters(), tm.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_checkpoint_sequential_list_of_functions_and_errors():
    from tensorlib.utils.checkpoint import checkpoint_sequential
    w = tl.tensor([2.0, 3.0], requires_grad=True)
    fns = [lambda h: h * w, tl.tanh, lambda h: h * 2.0]
    x = tl.tensor([0.1, 0.2], requires_grad=True)
    checkpoint_sequential(fns, 2, x, use_reentrant=False).sum().backward()
    x2, w2 = tl.tensor([0.1, 0.2], requires_grad=True), tl.tensor([2.0, 3.0], requires_grad=True)
    ((x2 * w2).tanh() * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), w2.grad.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="segments"):
        checkpoint_sequential(fns, 4, x)
    with pytest.raises(ValueError, match="unexpected keyword"):
        checkpoint_sequential(fns, 2, x, bogus=1)


# --- 6. optimizers' implementation keywords ----------------------------------------------------
OPTIMIZERS = ["SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "Adagrad",
              "Adadelta"]
FLAGS = ("foreach", "fused", "capturable", "differentiable")


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_accepts_torchs_implementation_keywords(name):
    theirs = [k for k in FLAGS if k in inspect.signature(getattr(torch.optim, name)).parameters]
    assert "differentiable" in theirs and "foreach" in theirs
    kw = {k: (False if k != "foreach" else None) for k in theirs}
    p = tl.tensor([1.0, -2.0], requires_grad=True)
    q = tl.tensor([1.0, -2.0], requires_grad=True)
    lr = {"lr": 0.1}
    a, b = getattr(tl.optim, name)([p], **lr, **kw), getattr(tl.optim, name)([q], **lr)
    for _ in range(2):
        for t, o in ((p, a), (q, b)):
            o.zero_grad()
            (t ** 2).sum().backward()
            o.step()
    np.testing.assert_array_equal(p.numpy(), q.numpy())     # the flags change nothing


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_differentiable_true_raises(name):
    with pytest.raises(NotImplementedError, match="differentiable=True"):
        getattr(tl.optim, name)([tl.ones(2, requires_grad=True)], lr=0.1, differentiable=True)


def test_optimizer_fused_and_foreach_together_raise_as_torch():
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        torch.optim.Adam([torch.ones(2, requires_grad=True)], fused=True, foreach=True)
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        tl.optim.Adam([tl.ones(2, requires_grad=True)], fused=True, foreach=True)
