"""tl.function guards from review B (session 20): argument objects held weakly (a dropped model
is freed with its cached graphs), class-level state read through instances, config modules'
attributes, ``__slots__`` objects, and training steps that trace once in the usual orders
(``zero_grad()`` first, an optimizer resumed from a checkpoint, a ring-buffer pointer)."""
import gc
import sys
import types
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn

torch = pytest.importorskip("torch")
F = nn.functional


def _np(t):
    return np.asarray(t.detach().numpy())


# --- (1) argument objects held weakly ------------------------------------------------------
def test_dropped_model_argument_and_weights_are_freed():
    f = tl.function(lambda mod, x: mod(x).sum())
    m = nn.Linear(16, 16)
    wm, ww = weakref.ref(m), weakref.ref(m.weight)
    with tl.no_grad():
        f(m, tl.ones(2, 16))
        f(m, tl.ones(2, 16))
    assert f.trace_count == 1
    del m
    gc.collect()
    gc.collect()
    assert wm() is None and ww() is None
    assert not f._cache         # its entry went with it
    m2 = nn.Linear(16, 16)
    with tl.no_grad():
        out = f(m2, tl.ones(2, 16)).item()
    want = (tl.ones(2, 16) @ m2.weight.T + m2.bias).sum().item()
    np.testing.assert_allclose(out, want, rtol=1e-5)


def test_dropped_training_step_model_is_freed():
    f = tl.function(lambda mod, opt, x: _train(mod, opt, x))
    m = nn.Linear(4, 2)
    opt = tl.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(2):
        f(m, opt, tl.ones(3, 4))
    assert f.trace_count == 1, f.retrace_reasons
    wm, ww = weakref.ref(m), weakref.ref(m.weight)
    del m, opt
    gc.collect()
    gc.collect()
    assert wm() is None and ww() is None


def _train(mod, opt, x):
    opt.zero_grad()
    loss = (mod(x) ** 2).mean()
    loss.backward()
    opt.step()
    return loss


def test_weak_argument_still_guarded_by_identity_and_state():
    f = tl.function(lambda mod, x: mod(x).sum())
    m1, m2 = nn.Linear(2, 1), nn.Linear(2, 1)
    with tl.no_grad():
        a = f(m1, tl.ones(1, 2)).item()
        b = f(m2, tl.ones(1, 2)).item()
        a2 = f(m1, tl.ones(1, 2)).item()
        assert a == a2 and f.trace_count == 2
        assert b == pytest.approx((m2.weight.sum() + m2.bias).item(), rel=1e-6)
        m1.weight = nn.Parameter(tl.full((1, 2), 3.0))
        assert f(m1, tl.ones(1, 2)).item() == pytest.approx(6.0 + m1.bias.item(), rel=1e-6)
    assert f.trace_count == 3


# --- (2a) class-level state read through an instance --------------------------------------
def test_class_attribute_changed_after_trace_retraces():
    class C(nn.Module):
        scale = 1.0

        def __init__(s):
            super().__init__()
            s.w = nn.Parameter(tl.ones(3))

        def forward(s, x):
            return x * s.w * s.scale
    m = C()
    f = tl.function(lambda m, x: m(x))
    x = tl.ones(2, 3)
    with tl.no_grad():
        f(m, x)
        C.scale = 2.0
        np.testing.assert_allclose(_np(f(m, x)), _np(m(x)))
        assert _np(f(m, x))[0, 0] == 2.0
        assert f.trace_count == 2
        assert "scale" in f.retrace_reasons[-1]
        f(m, x)
    assert f.trace_count == 2       # the new value is guarded: no more retraces


def test_property_reading_class_attribute_retraces():
    class M(nn.Module):
        base = 2.0
        mult = 1.5

        def __init__(s):
            super().__init__()
            s.w = nn.Parameter(tl.ones(2))

        @property
        def factor(s):
            return s.base * s.mult

        def forward(s, x):
            return x * s.w * s.factor
    m = M()
    f = tl.function(m)
    with tl.no_grad():
        assert _np(f(tl.ones(2)))[0] == 3.0
        M.base = 3.0
        assert _np(f(tl.ones(2)))[0] == 4.5
        np.testing.assert_allclose(_np(f(tl.ones(2))), _np(m(tl.ones(2))))


def test_method_patched_on_class_retraces():
    class Q(nn.Module):
        def __init__(s):
            super().__init__()
            s.w = nn.Parameter(tl.ones(2))

        def act(s, x):
            return x * 2

        def forward(s, x):
            return s.act(x * s.w)
    q = Q()
    f = tl.function(lambda q, x: q(x))
    with tl.no_grad():
        assert _np(f(q, tl.ones(2)))[0] == 2.0
        Q.act = lambda s, x: x * 10
        assert _np(f(q, tl.ones(2)))[0] == 10.0
        assert f.trace_count == 2


def test_class_attribute_of_a_base_and_of_a_global_object():
    class Base:
        k = 1.0

    class Cfg(Base):
        pass
    cfg = Cfg()

    def fn(x):
        return x * cfg.k
    f = tl.function(fn)
    assert _np(f(tl.ones(2)))[0] == 1.0
    Base.k = 5.0
    assert _np(f(tl.ones(2)))[0] == 5.0
    Cfg.k = 7.0                 # shadowing it on the subclass
    assert _np(f(tl.ones(2)))[0] == 7.0
    assert f.trace_count == 3
    f(tl.ones(2))
    assert f.trace_count == 3


def test_type_identity_unchanged_inside_a_trace():
    class D(nn.Module):
        def __init__(s):
            super().__init__()
            s.w = nn.Parameter(tl.ones(3))

        def forward(s, x):
            return x * s.w if type(s) is D else x * s.w * 100
    m = D()
    f = tl.function(lambda m, x: m(x))
    with tl.no_grad():
        np.testing.assert_allclose(_np(f(m, tl.ones(3))), [1, 1, 1])
    assert type(m) is D


# --- (2b) attributes of config modules ------------------------------------------------------
@pytest.fixture
def cfgmod():
    mod = types.ModuleType("tl_guards20_cfg")
    mod.SCALE = 1.0
    mod.MODE = "a"
    mod.SHAPE = (2, 3)
    sys.modules["tl_guards20_cfg"] = mod
    yield mod
    del sys.modules["tl_guards20_cfg"]


def test_config_module_attribute_retraces(cfgmod):
    import tl_guards20_cfg as mycfg
    g = {"mycfg": mycfg, "tl": tl}
    exec("def f2(x):\n    return x * mycfg.SCALE if mycfg.MODE == 'a' else x\n", g)
    f = tl.function(g["f2"])
    x = tl.ones(2, 3)
    assert _np(f(x))[0, 0] == 1.0
    mycfg.SCALE = 4.0
    assert _np(f(x))[0, 0] == 4.0
    mycfg.MODE = "b"
    assert _np(f(x))[0, 0] == 1.0
    assert f.trace_count == 3
    f(x)
    assert f.trace_count == 3


def test_config_module_attribute_read_in_a_forward(cfgmod):
    import tl_guards20_cfg as mycfg
    g = {"mycfg": mycfg, "nn": nn, "tl": tl, "__name__": "tl_guards20_user"}
    exec("class Net(nn.Module):\n"
         "    def __init__(s):\n        super().__init__(); s.w = nn.Parameter(tl.ones(3))\n"
         "    def forward(s, x):\n        return x * s.w * mycfg.SCALE\n", g)
    m = g["Net"]()
    f = tl.function(lambda m, x: m(x))
    with tl.no_grad():
        f(m, tl.ones(3))
        mycfg.SCALE = 3.0
        np.testing.assert_allclose(_np(f(m, tl.ones(3))), [3.0, 3.0, 3.0])
    assert f.trace_count == 2


# --- (2c) __slots__ objects -----------------------------------------------------------------
class _S:
    __slots__ = ("k", "w")

    def __init__(s):
        s.k = 1.0
        s.w = tl.ones(3)


def test_slots_object_changed_retraces():
    def fn(o, x):
        return x * o.w * o.k
    o = _S()
    f = tl.function(fn)
    x = tl.ones(2, 3)
    f(o, x)
    o.k = 4.0
    assert _np(f(o, x))[0, 0] == 4.0
    o.w = tl.full((3,), 2.0)
    assert _np(f(o, x))[0, 0] == 8.0
    assert f.trace_count == 3
    f(o, x)
    assert f.trace_count == 3


def test_slots_object_as_module_attribute_retraces():
    class Net(nn.Module):
        def __init__(s):
            super().__init__()
            s.w = nn.Parameter(tl.ones(3))
            s.cfg = _S()

        def forward(s, x):
            return x * s.w * s.cfg.k
    m = Net()
    f = tl.function(lambda m, x: m(x))
    with tl.no_grad():
        f(m, tl.ones(3))
        m.cfg.k = 2.5
        np.testing.assert_allclose(_np(f(m, tl.ones(3))), [2.5] * 3)
    assert f.trace_count == 2


# --- (3a) zero_grad() first traces once ----------------------------------------------------
def _torch_copy(m):
    tm = torch.nn.Linear(m.in_features, m.out_features).double()
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(_np(m.weight)))
        tm.bias.copy_(torch.tensor(_np(m.bias)))
    return tm


@pytest.mark.parametrize("order", ["zero_first", "zero_last", "zero_first_keep"])
@pytest.mark.parametrize("optname", ["Adam", "SGD"])
def test_training_step_traces_once_in_both_orders(order, optname):
    tl.manual_seed(0)
    m = nn.Linear(5, 3).double()
    tm = _torch_copy(m)
    kw = {"lr": 0.01} if optname == "Adam" else {"lr": 0.05, "momentum": 0.9}
    opt = getattr(tl.optim, optname)(m.parameters(), **kw)
    topt = getattr(torch.optim, optname)(tm.parameters(), **kw)
    rng = np.random.default_rng(1)
    keep = order == "zero_first_keep"

    def zero_first(x, y):
        opt.zero_grad()
        loss = F.mse_loss(m(x), y)
        loss.backward()
        opt.step()
        return loss

    def zero_first_keep(x, y):
        opt.zero_grad(set_to_none=False)
        loss = F.mse_loss(m(x), y)
        loss.backward()
        opt.step()
        return loss

    def zero_last(x, y):
        loss = F.mse_loss(m(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    step = tl.function({"zero_first": zero_first, "zero_first_keep": zero_first_keep,
                        "zero_last": zero_last}[order])
    for _ in range(4):
        x, y = rng.standard_normal((8, 5)), rng.standard_normal((8, 3))
        got = step(tl.tensor(x), tl.tensor(y)).item()
        topt.zero_grad(set_to_none=not keep)
        loss = torch.nn.functional.mse_loss(tm(torch.tensor(x)), torch.tensor(y))
        loss.backward()
        topt.step()
        np.testing.assert_allclose(got, loss.item(), rtol=1e-10)
        np.testing.assert_allclose(_np(m.weight), tm.weight.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
    # zero_grad(set_to_none=False) first: the first call starts without grads, the later
    # ones zero theirs in place; zeros primed before the trace make it one graph
    assert step.trace_count == 1, step.retrace_reasons
    # the grads as eager leaves them
    if order == "zero_last":
        assert m.weight.grad is None
    else:
        np.testing.assert_allclose(_np(m.weight.grad), tm.weight.grad.numpy(), rtol=1e-10)


def test_zero_grad_first_with_grads_already_set_before_first_call():
    tl.manual_seed(0)
    m = nn.Linear(3, 2).double()
    tm = _torch_copy(m)
    opt = tl.optim.SGD(m.parameters(), lr=0.1)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    (m(tl.ones(1, 3, dtype="float64")).sum()).backward()     # stale grads around
    tm(torch.ones(1, 3, dtype=torch.float64)).sum().backward()

    @tl.function
    def step(x):
        opt.zero_grad()
        loss = m(x).pow(2).sum()
        loss.backward()
        opt.step()
        return loss
    for i in range(3):
        x = np.full((2, 3), float(i + 1))
        got = step(tl.tensor(x)).item()
        topt.zero_grad()
        loss = tm(torch.tensor(x)).pow(2).sum()
        loss.backward()
        topt.step()
        np.testing.assert_allclose(got, loss.item(), rtol=1e-10)
    np.testing.assert_allclose(_np(m.weight), tm.weight.detach().numpy(), rtol=1e-10)
    assert step.trace_count == 1, step.retrace_reasons


def test_step_reading_grad_before_backward_still_retraces_when_grad_appears():
    # a step that reads .grad (accumulates) before zeroing: .grad presence is its input
    w = tl.ones(3, dtype="float64", requires_grad=True)

    @tl.function
    def step(x):
        (w * x).sum().backward()
        return w.grad * 1.0
    a = _np(step(tl.ones(3, dtype="float64")))
    b = _np(step(tl.ones(3, dtype="float64")))
    np.testing.assert_allclose(a, [1, 1, 1])
    np.testing.assert_allclose(b, [2, 2, 2])       # accumulated, as eager


# --- (3b) optimizer resumed with load_state_dict -------------------------------------------
@pytest.mark.parametrize("optname", ["Adam", "SGD", "RMSprop"])
def test_resumed_optimizer_traces_once(optname):
    tl.manual_seed(0)
    kw = {"Adam": {"lr": 0.01}, "SGD": {"lr": 0.05, "momentum": 0.9},
          "RMSprop": {"lr": 0.01}}[optname]
    m0 = nn.Linear(4, 2).double()
    o0 = getattr(tl.optim, optname)(m0.parameters(), **kw)
    for _ in range(2):
        _train(m0, o0, tl.ones(3, 4, dtype="float64"))
    m = nn.Linear(4, 2).double()
    m.load_state_dict(m0.state_dict())
    opt = getattr(tl.optim, optname)(m.parameters(), **kw)
    opt.load_state_dict(o0.state_dict())
    step = tl.function(lambda x: _train(m, opt, x))
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = tl.tensor(rng.standard_normal((3, 4)))
        a = step(x).item()
        b = _train(m0, o0, x).item()
        np.testing.assert_allclose(a, b, rtol=1e-10)
    np.testing.assert_allclose(_np(m.weight), _np(m0.weight), rtol=1e-10)
    assert step.trace_count == 1, step.retrace_reasons


# --- (3c) a ring-buffer pointer read before it is advanced ----------------------------------
@pytest.mark.parametrize("how", ["setitem", "index_copy"])
def test_ring_buffer_pointer_read_then_advanced_traces_once(how):
    buf = tl.zeros(5, 3)
    ptr = tl.zeros((), dtype=tl.int64)
    ebuf = np.zeros((5, 3), dtype=np.float32)
    eptr = 0

    @tl.function
    def push(x):
        if how == "setitem":
            buf[ptr] = x
        else:
            buf.index_copy_(0, ptr.view(1), x[None])
        ptr.add_(1).remainder_(5)
        return buf.sum(0)
    with tl.no_grad():
        for i in range(8):
            out = push(tl.full((3,), float(i + 1)))
            ebuf[eptr] = i + 1
            eptr = (eptr + 1) % 5
            np.testing.assert_allclose(_np(out), ebuf.sum(0))
            np.testing.assert_allclose(_np(buf), ebuf)
            assert int(ptr.item()) == eptr
    assert push.trace_count == 1, push.retrace_reasons


def test_ring_buffer_matches_torch():
    tbuf, tptr = torch.zeros(4, 2, dtype=torch.float64), torch.zeros((), dtype=torch.int64)
    buf, ptr = tl.zeros(4, 2, dtype="float64"), tl.zeros((), dtype=tl.int64)

    @tl.function
    def push(x):
        buf[ptr] = x
        ptr.add_(1).remainder_(4)
        return buf * 2.0
    rng = np.random.default_rng(3)
    with tl.no_grad():
        for _ in range(6):
            x = rng.standard_normal(2)
            out = push(tl.tensor(x))
            tbuf[tptr] = torch.tensor(x)
            tptr.add_(1).remainder_(4)
            np.testing.assert_allclose(_np(out), (tbuf * 2.0).numpy())
    assert push.trace_count == 1, push.retrace_reasons


# --- values against PyTorch while class state changes --------------------------------------
@settings(max_examples=8, deadline=None)
@given(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=1, max_size=5))
def test_class_scale_changes_match_torch(scales):
    class Scaled(nn.Module):
        scale = 1.0

        def __init__(s):
            super().__init__()
            s.lin = nn.Linear(3, 2).double()

        def forward(s, x):
            return (s.lin(x) * s.scale).tanh().sum()
    m = Scaled()
    tm = _torch_copy(m.lin)
    f = tl.function(lambda x: _grad_of(m, x))
    rng = np.random.default_rng(0)
    for sc in scales:
        Scaled.scale = sc
        x = rng.standard_normal((4, 3))
        got_loss, got_g = f(tl.tensor(x))
        tm.zero_grad()
        loss = (tm(torch.tensor(x)) * sc).tanh().sum()
        loss.backward()
        np.testing.assert_allclose(got_loss.item(), loss.item(), rtol=1e-12)
        np.testing.assert_allclose(_np(got_g), tm.weight.grad.numpy(), rtol=1e-12)
    assert f.trace_count <= len(set(scales)) + 1


def _grad_of(m, x):
    m.zero_grad()
    loss = m(x)
    loss.backward()
    return loss, m.lin.weight.grad * 1.0


# --- error cases keep working ---------------------------------------------------------------
def test_numpy_argument_still_refused():
    f = tl.function(lambda a: a)
    with pytest.raises(TypeError, match="tl.function"):
        f(np.ones(3))


# --- review C finding 4: state read by name, not through an argument ------------------------
class _GlobalCfg:
    scale = 1.0


class _GlobalCfg2:
    scale = 1.0


class _Registry:
    table = {"a": 1.0}


def _helper_with_default(x, c=1.0):
    return x * c


def _helper_with_kwdefault(x, *, c=1.0):
    return x * c


def _captured(body):
    """``tl.function`` of ``body``'s value and gradient w.r.t. its input."""
    return tl.function(lambda x: _value_and_grad(body, x))


def _value_and_grad(body, x):
    y = body(x)
    (gx,) = tl.grad(y.sum(), [x])
    return y.detach(), gx


def _check_retrace(f, x, set_value, values, torch_fn):
    """``f(x)`` (see ``_captured``) after each ``set_value(v)`` equals PyTorch's
    ``torch_fn(x, v)`` (values and the gradient w.r.t. ``x``, float64)."""
    for v in values:
        set_value(v)
        out, gx = f(tl.tensor(x, requires_grad=True))
        tx = torch.tensor(x, requires_grad=True)
        want = torch_fn(tx, v)
        want.sum().backward()
        np.testing.assert_allclose(_np(out), want.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(_np(gx), tx.grad.numpy(), rtol=1e-12)


@settings(max_examples=5, deadline=None)
@given(st.lists(st.sampled_from([0.5, 2.0, -3.0]), min_size=1, max_size=4))
def test_global_class_attribute_retraces(values):
    f = _captured(lambda x: (x * _GlobalCfg.scale).exp())
    x = np.array([0.25, -0.5, 1.0])
    try:
        _check_retrace(f, x, lambda v: setattr(_GlobalCfg, "scale", v), [1.0, *values],
                       lambda t, v: (t * v).exp())
    finally:
        _GlobalCfg.scale = 1.0
    assert f.trace_count <= len({1.0, *values})


def test_global_class_attribute_in_module_forward_retraces():
    class M(nn.Module):
        def forward(self, x):
            return x * _GlobalCfg2.scale
    m = M()
    g = _captured(lambda x: m(x))
    try:
        _check_retrace(g, np.array([1.0, 2.0]), lambda v: setattr(_GlobalCfg2, "scale", v),
                       [1.0, 2.0, 2.0, 0.5], lambda t, v: t * v)
    finally:
        _GlobalCfg2.scale = 1.0
    assert g.trace_count == 3, g.retrace_reasons
    assert "_GlobalCfg2" in g.retrace_reasons[-1]


def test_closure_class_attribute_retraces():
    class Cfg:
        scale = 1.0
    f = _captured(lambda x: x * Cfg.scale)
    _check_retrace(f, np.array([1.0, 3.0]), lambda v: setattr(Cfg, "scale", v),
                   [1.0, 4.0], lambda t, v: t * v)
    assert f.trace_count == 2


def test_config_module_two_levels_deep_retraces():
    name = "tl_test_cfgmod_guards20"
    cfg = types.ModuleType(name)
    cfg.sub = types.SimpleNamespace(beta=1.0)
    cfg.pkg = types.ModuleType(name + ".pkg")
    cfg.pkg.gamma = 1.0
    sys.modules[name] = cfg
    try:
        glb = {"cfgmod": cfg}
        exec("def h(x):\n    return x * cfgmod.sub.beta + cfgmod.pkg.gamma\n", glb)
        h = _captured(glb["h"])

        def set_beta(v):
            cfg.sub.beta = v
        _check_retrace(h, np.array([1.0, 2.0]), set_beta, [1.0, 3.0],
                       lambda t, v: t * v + 1.0)

        def set_gamma(v):
            cfg.pkg.gamma = v
        _check_retrace(h, np.array([1.0, 2.0]), set_gamma, [5.0],
                       lambda t, v: t * 3.0 + v)
        assert h.trace_count == 3, h.retrace_reasons
    finally:
        del sys.modules[name]


def test_class_level_dict_entry_retraces():
    f = _captured(lambda x: x * _Registry.table["a"])

    class Net(nn.Module):
        table = {"a": 1.0}

        def forward(self, x):
            return x * self.table["a"]
    m = Net()
    g = _captured(lambda x: m(x))
    try:
        _check_retrace(f, np.array([1.0, 2.0]), lambda v: _Registry.table.__setitem__("a", v),
                       [1.0, 20.0], lambda t, v: t * v)
        _check_retrace(g, np.array([1.0, 2.0]), lambda v: Net.table.__setitem__("a", v),
                       [1.0, 7.0], lambda t, v: t * v)
    finally:
        _Registry.table["a"] = 1.0
    assert f.trace_count == 2 and g.trace_count == 2


def test_helper_default_arguments_retrace():
    d = _captured(lambda x: _helper_with_default(x) + _helper_with_kwdefault(x))
    try:
        _check_retrace(d, np.array([1.0, 2.0]),
                       lambda v: setattr(_helper_with_default, "__defaults__", (v,)),
                       [1.0, 19.0], lambda t, v: t * v + t)
        _check_retrace(d, np.array([1.0, 2.0]),
                       lambda v: setattr(_helper_with_kwdefault, "__kwdefaults__", {"c": v}),
                       [4.0], lambda t, v: t * 19.0 + t * v)
        _check_retrace(d, np.array([1.0, 2.0]),
                       lambda v: _helper_with_kwdefault.__kwdefaults__.__setitem__("c", v),
                       [5.0], lambda t, v: t * 19.0 + t * v)
        # set again to equal scalars: the same state, no retrace
        _helper_with_default.__defaults__ = (19.0,)
        _helper_with_kwdefault.__kwdefaults__["c"] = 5.0
        n = d.trace_count
        d(tl.ones(2, dtype=tl.float64, requires_grad=True))
        assert d.trace_count == n == 4, d.retrace_reasons
    finally:
        _helper_with_default.__defaults__ = (1.0,)
        _helper_with_kwdefault.__kwdefaults__ = {"c": 1.0}


def test_unchanged_class_state_traces_once():
    class Cfg:
        scale = 2.0
        table = {"k": 3.0}
    f = tl.function(lambda x: x * Cfg.scale * Cfg.table["k"])
    for _ in range(4):
        out = f(tl.ones(2, dtype=tl.float64))
    assert f.trace_count == 1, f.retrace_reasons
    np.testing.assert_allclose(_np(out), [6.0, 6.0])
