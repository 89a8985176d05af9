"""Tensor subclasses and __torch_function__, compared with PyTorch's."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import _core

torch = pytest.importorskip("torch")

# apply's result-class hook needs the rebuilt extension; methods dispatch either way
needs_hook = pytest.mark.skipif(not hasattr(_core, "set_subclass_hook"),
                                reason="tensorlib._core built before set_subclass_hook")


def make_logging(base):
    log = []

    class Logged(base):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            log.append(func.__name__)
            return super().__torch_function__(func, types, args, kwargs)
    return Logged, log


PT_LOGGED, PT_LOG = make_logging(torch.Tensor)
TL_LOGGED = TL_LOG = None


@pytest.fixture(autouse=True, scope="module")
def logged_class():
    """The tensorlib class with a __torch_function__ of its own, made here (making one wraps
    the public functions) and the plain functions put back after this module's tests, so
    other test modules see them unwrapped."""
    global TL_LOGGED, TL_LOG
    TL_LOGGED, TL_LOG = make_logging(tl.Tensor)
    yield
    from tensorlib import _subclass
    _subclass._restore_functions()
    assert not getattr(tl.exp, "_tl_dispatch", False)


class TLPlainSub(tl.Tensor):
    pass


class PTPlainSub(torch.Tensor):
    pass


def pair(values, cls_tl, cls_pt, requires_grad=False):
    a = np.asarray(values, dtype=np.float64)
    x = tl.tensor(a, requires_grad=requires_grad)
    y = torch.tensor(a, requires_grad=requires_grad)
    return x, y, x.as_subclass(cls_tl), y.as_subclass(cls_pt)


PROGRAMS = {
    "add": lambda m, s, x: s + 1,
    "radd": lambda m, s, x: 1 + s,
    "sub": lambda m, s, x: s - 2,
    "mul": lambda m, s, x: s * s,
    "div": lambda m, s, x: s / 3,
    "neg": lambda m, s, x: -s,
    "exp": lambda m, s, x: s.exp(),
    "getitem": lambda m, s, x: s[0],
    "fexp": lambda m, s, x: m.exp(s),
    "relu": lambda m, s, x: m.nn.functional.relu(s),
    "softmax": lambda m, s, x: m.nn.functional.softmax(s, 0),
    "matmul": lambda m, s, x: s @ x,
    "mixed": lambda m, s, x: x * s,
    "detach": lambda m, s, x: s.detach(),
    "sum": lambda m, s, x: s.sum(),
    "lt": lambda m, s, x: s < 0.5,
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_default_subclass_results_match_torch(name):
    prog = PROGRAMS[name]
    x, y, s, t = pair([0.5, -1.0, 2.0], TLPlainSub, PTPlainSub)
    r_tl, r_pt = prog(tl, s, x), prog(torch, t, y)
    expected = TLPlainSub if type(r_pt) is PTPlainSub else tl.Tensor
    if name in ("add", "radd", "sub", "mul", "div", "neg", "getitem", "detach", "lt") or \
            hasattr(_core, "set_subclass_hook"):
        assert type(r_tl) is expected, name
    np.testing.assert_allclose(np.asarray(r_tl), r_pt.detach().numpy())


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_torch_function_log_matches_torch(name):
    prog = PROGRAMS[name]
    x, y, s, t = pair([0.5, -1.0, 2.0], TL_LOGGED, PT_LOGGED)
    TL_LOG.clear()
    PT_LOG.clear()
    r_tl, r_pt = prog(tl, s, x), prog(torch, t, y)
    assert TL_LOG == PT_LOG
    assert (type(r_tl) is TL_LOGGED) == (type(r_pt) is PT_LOGGED)
    np.testing.assert_allclose(np.asarray(r_tl), r_pt.detach().numpy())


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=1, max_size=6))
def test_gradients_through_subclass_match_torch(vals):
    x, y, s, t = pair(vals, TLPlainSub, PTPlainSub, requires_grad=True)
    ((s * s).exp().sum() + (s[0] * 2)).backward()
    ((t * t).exp().sum() + (t[0] * 2)).backward()
    assert type(x.grad) is tl.Tensor and type(y.grad) is torch.Tensor
    np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-10)


def test_as_subclass_shares_storage_and_history():
    x = tl.tensor([1.0, 2.0], dtype=tl.float64, requires_grad=True)
    s = x.as_subclass(TLPlainSub)
    assert type(s) is TLPlainSub and not s.is_leaf and s.grad_fn is not None
    p = tl.tensor([1.0, 2.0]).as_subclass(TLPlainSub)
    assert p.is_leaf and not p.requires_grad
    base = tl.zeros(3)
    v = base.as_subclass(TLPlainSub)
    base.add_(1)
    assert v.tolist() == [1.0, 1.0, 1.0]
    back = v.as_subclass(tl.Tensor)
    assert type(back) is tl.Tensor
    with pytest.raises(TypeError, match="as_subclass"):
        x.as_subclass(int)


def test_leaf_subclass_grad_is_plain():
    for mod, cls in ((tl, TLPlainSub), (torch, PTPlainSub)):
        leaf = mod.tensor([1.0, 2.0], dtype=mod.float64).as_subclass(cls).requires_grad_()
        (leaf * 3).sum().backward()
        assert type(leaf.grad) is mod.Tensor
        assert leaf.grad.tolist() == [3.0, 3.0]


def test_make_subclass():
    data = tl.tensor([1.0, 2.0])
    r = tl.Tensor._make_subclass(TLPlainSub, data, True)
    assert type(r) is TLPlainSub and r.requires_grad and r.is_leaf
    with pytest.raises(TypeError, match="_make_subclass"):
        tl.Tensor._make_subclass(TLPlainSub, [1.0])


def test_parameter_ops_give_plain_tensors():
    p = tl.nn.Parameter(tl.randn(3))
    q = torch.nn.Parameter(torch.randn(3))
    for r_tl, r_pt in ((p + 1, q + 1), (p.exp(), q.exp()), (p[0], q[0]),
                       (p.detach(), q.detach()), (tl.exp(p), torch.exp(q))):
        assert type(r_pt) is torch.Tensor
        assert type(r_tl) is tl.Tensor

    class MyParam(tl.nn.Parameter):
        pass
    assert type(MyParam(tl.randn(2)) * 2) is tl.Tensor


def test_opt_out_with_disabled_impl():
    class Off(tl.Tensor):
        __torch_function__ = tl._C._disabled_torch_function_impl
    s = tl.ones(2).as_subclass(Off)
    assert type(s + 1) is tl.Tensor and type(s.exp()) is tl.Tensor


def test_disable_torch_function_subclass():
    s = tl.ones(2).as_subclass(TL_LOGGED)
    TL_LOG.clear()
    with tl._C.DisableTorchFunctionSubclass():
        r = s + 1
    assert TL_LOG == [] and r.tolist() == [2.0, 2.0]
    if hasattr(_core, "set_subclass_hook"):
        assert type(r) is tl.Tensor


def test_custom_handler_replaces_function():
    handled = {}

    class Scalar(tl.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if func in handled:
                return handled[func](*args, **(kwargs or {}))
            return super().__torch_function__(func, types, args, kwargs)
    handled[tl.mean] = lambda x, *a, **k: "custom mean"
    s = tl.ones(3).as_subclass(Scalar)
    assert tl.mean(s) == "custom mean"
    assert tl.mean(tl.ones(3)).item() == 1.0          # plain tensors: the real function
    assert type(tl.sum(s)) is Scalar


def test_unrelated_handlers_raise():
    class A(tl.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return super().__torch_function__(func, types, args, kwargs)

    class B(tl.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return super().__torch_function__(func, types, args, kwargs)
    a, b = tl.ones(2).as_subclass(A), tl.ones(2).as_subclass(B)
    with pytest.raises(TypeError, match="no implementation found"):
        tl.add(a, b)


def test_tuple_outputs_and_cat():
    s = tl.tensor([[1.0, 3.0], [2.0, 0.0]]).as_subclass(TLPlainSub)
    vals, idx = s.max(1)
    assert type(vals) is TLPlainSub and vals.tolist() == [3.0, 2.0]
    assert type(tl.cat([s, tl.ones(1, 2)])) is TLPlainSub or \
        not hasattr(_core, "set_subclass_hook")


def test_repr():
    s = tl.tensor([1.0, 2.0]).as_subclass(TLPlainSub)
    t = torch.tensor([1.0, 2.0]).as_subclass(PTPlainSub)
    assert repr(s) == repr(t).replace("PTPlainSub", "TLPlainSub")
    assert repr(tl.nn.Parameter(tl.ones(1))).startswith("Parameter containing:\ntensor(")

    class R(tl.Tensor):
        def __repr__(self):
            return "R!"
    r = tl.ones(2).as_subclass(R)
    assert repr(r) == "R!" and str(r) == "R!"


@needs_hook
def test_nn_module_and_capture_with_subclass():
    lin = tl.nn.Linear(3, 2)
    s = tl.randn(4, 3).as_subclass(TLPlainSub)
    out = lin(s)
    assert type(out) is TLPlainSub
    np.testing.assert_allclose(out.detach().numpy(),
                               F.linear(tl.Tensor(s.detach().as_subclass(tl.Tensor)),
                                        lin.weight, lin.bias).detach().numpy(), rtol=1e-6)
    f = tl.function(lambda a: (a * 2).exp())
    for _ in range(3):
        np.testing.assert_allclose(np.asarray(f(s)), np.exp(2 * s.numpy()), rtol=1e-6)


def test_subclass_new_result_is_kept_as_pytorch():
    """Tensor.__init__ does not rebuild what a subclass's __new__ returned (review C): a
    scaled float64 result stays, and __new__'s own keywords (meta=) are not an error."""
    class Scaled(tl.Tensor):
        def __new__(cls, x):
            return (x * 2).double().as_subclass(cls)

    s = Scaled(tl.ones(3))
    assert type(s) is Scaled and s.dtype == tl.float64 and s.tolist() == [2.0, 2.0, 2.0]

    class Meta(tl.Tensor):
        @staticmethod
        def __new__(cls, data, meta=None):
            t = tl.Tensor._make_subclass(cls, data)
            t.meta = meta
            return t

    m = Meta(tl.ones(2), meta="m/s")
    assert m.meta == "m/s" and m.tolist() == [1.0, 1.0] and type(m + 1) is Meta
    with pytest.raises(TypeError, match="unexpected keyword"):
        tl.Tensor([1.0], foo=1)


def test_captured_function_runs_subclass_arguments_eagerly():
    """A graph would not replay __torch_function__ nor keep the type: tl.function runs the
    Python for subclass arguments (with one warning), so every call logs and keeps the type."""
    log = []

    class Logged(tl.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            log.append(func.__name__)
            return super().__torch_function__(func, types, args, kwargs or {})

    f = tl.function(lambda x: x * 3)
    x = tl.ones(2).as_subclass(Logged)
    with pytest.warns(UserWarning, match="Tensor subclass"):
        a = f(x)
    b = f(x)
    assert type(a) is Logged and type(b) is Logged and log.count("mul") == 2
    assert f(tl.ones(2)).tolist() == [3.0, 3.0]        # plain tensors still capture


# --- review C, findings 2 and 7: Parameter of a subclass, tl._C, autograd.grad, reflected
# operators, save ----------------------------------------------------------------------------
class TLTagged(tl.Tensor):
    pass


class PTTagged(torch.Tensor):
    pass


def _param_pair(values, requires_grad=True):
    a = np.asarray(values, dtype=np.float64)
    return (tl.nn.Parameter(tl.tensor(a).as_subclass(TLTagged), requires_grad),
            torch.nn.Parameter(torch.tensor(a).as_subclass(PTTagged), requires_grad))


def test_parameter_of_subclass_keeps_the_class():
    p, q = _param_pair([[1.0, -2.0], [3.0, 0.5]])
    for r, lib, tagged in ((p, tl, TLTagged), (q, torch, PTTagged)):
        assert type(r) is tagged and isinstance(r, lib.nn.Parameter)
        assert r.requires_grad and r.is_leaf and r.grad_fn is None
        # ops give the subclass, not a parameter (the mark is the instance's own)
        for out in (r * 2, r.detach(), r.exp(), r[0], lib.exp(r)):
            assert type(out) is tagged and not isinstance(out, lib.nn.Parameter)
    assert not isinstance(tl.ones(1), tl.nn.Parameter)
    assert not isinstance(tl.ones(1).as_subclass(TLTagged), tl.nn.Parameter)

    class MyParam(tl.nn.Parameter):
        pass

    class PTMyParam(torch.nn.Parameter):
        pass
    assert isinstance(p, MyParam) is isinstance(q, PTMyParam) is False
    assert type(MyParam(tl.ones(1).as_subclass(TLTagged))) is TLTagged
    assert type(PTMyParam(torch.ones(1).as_subclass(PTTagged))) is PTTagged
    assert isinstance(MyParam(tl.ones(1)), tl.nn.Parameter)


def test_parameter_of_subclass_shares_storage_and_requires_grad():
    base = tl.tensor([1.0, 2.0], dtype=tl.float64).as_subclass(TLTagged)
    p = tl.nn.Parameter(base, requires_grad=False)
    tbase = torch.tensor([1.0, 2.0], dtype=torch.float64).as_subclass(PTTagged)
    q = torch.nn.Parameter(tbase, requires_grad=False)
    assert p.requires_grad is q.requires_grad is False
    with tl.no_grad():
        p.add_(1.0)
    with torch.no_grad():
        q.add_(1.0)
    assert base.tolist() == tbase.tolist() == [2.0, 3.0]
    # a non-leaf subclass tensor: the parameter is a detached leaf
    r = tl.nn.Parameter(tl.ones(2, requires_grad=True).as_subclass(TLTagged) * 2)
    s = torch.nn.Parameter(torch.ones(2, requires_grad=True).as_subclass(PTTagged) * 2)
    assert r.is_leaf and s.is_leaf and r.grad_fn is None and s.grad_fn is None


def test_parameter_of_subclass_in_module_state_dict_and_optimizer():
    w = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    lin = tl.nn.Linear(3, 2, dtype=tl.float64)
    tlin = torch.nn.Linear(3, 2, dtype=torch.float64)
    with torch.no_grad():
        tlin.bias.copy_(torch.tensor(lin.bias.tolist(), dtype=torch.float64))
    lin.weight, _ = _param_pair(w)
    tlin.weight = _param_pair(w)[1]
    for m, tagged in ((lin, TLTagged), (tlin, PTTagged)):
        assert [type(v).__name__ for v in m.parameters()] == [tagged.__name__, "Parameter"]
        assert list(dict(m.named_parameters())) == ["weight", "bias"]
        sd = m.state_dict()
        assert type(sd["weight"]) is tagged and not isinstance(sd["weight"], type(m.bias))
    y, ty = lin(tl.tensor(x)), tlin(torch.tensor(x))
    assert type(y) is TLTagged and type(ty) is PTTagged
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    (y ** 2).sum().backward()
    (ty ** 2).sum().backward()
    assert type(lin.weight.grad) is tl.Tensor and type(tlin.weight.grad) is torch.Tensor
    np.testing.assert_allclose(lin.weight.grad.numpy(), tlin.weight.grad.numpy(), rtol=1e-12)
    tl.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9).step()
    torch.optim.SGD(tlin.parameters(), lr=0.1, momentum=0.9).step()
    assert type(lin.weight) is TLTagged and isinstance(lin.weight, tl.nn.Parameter)
    np.testing.assert_allclose(lin.weight.detach().numpy(), tlin.weight.detach().numpy(),
                               rtol=1e-12)
    # load_state_dict copies into the subclass parameter, which keeps its class
    lin.load_state_dict({"weight": tl.zeros(2, 3, dtype=tl.float64), "bias": lin.bias})
    assert type(lin.weight) is TLTagged and lin.weight.abs().sum().item() == 0.0


def test_parameter_of_subclass_dispatches_like_pytorch():
    p_log = []

    class PL(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            p_log.append(func.__name__)
            return super().__torch_function__(func, types, args, kwargs or {})
    x = tl.ones(2, 2).as_subclass(TL_LOGGED)
    TL_LOG.clear()
    p = tl.nn.Parameter(x)
    torch.nn.Parameter(torch.ones(2, 2).as_subclass(PL))
    assert TL_LOG == p_log == ["detach", "requires_grad_"]
    TL_LOG.clear()
    assert type(F.linear(tl.ones(1, 2), p)) is TL_LOGGED and TL_LOG == ["linear"]


def test_parameter_of_subclass_errors():
    class Off(tl.Tensor):
        __torch_function__ = tl._C._disabled_torch_function_impl

    class PTOff(torch.Tensor):
        __torch_function__ = torch._C._disabled_torch_function_impl
    # detach() gives a plain tensor: PyTorch refuses, and so does tensorlib
    with pytest.raises(RuntimeError, match="detach"):
        torch.nn.Parameter(torch.ones(2).as_subclass(PTOff))
    with pytest.raises(RuntimeError, match="Parameter: .*Off.*detach"):
        tl.nn.Parameter(tl.ones(2).as_subclass(Off))

    class Slotted(tl.Tensor):
        __slots__ = ()
    with pytest.raises(TypeError, match="Parameter: .*Slotted.*__slots__"):
        tl.nn.Parameter(tl.ones(2).as_subclass(Slotted))
    with pytest.raises(RuntimeError):       # (PyTorch's message: integer tensors need no grad)
        torch.nn.Parameter(torch.ones(2, dtype=torch.int64).as_subclass(PTTagged))
    with pytest.raises(Exception, match="requires_grad|grad"):
        tl.nn.Parameter(tl.ones(2, dtype=tl.int64).as_subclass(TLTagged))


def test_c_is_an_importable_module():
    import importlib
    import sys
    import types
    from tensorlib._C import DisableTorchFunction, DisableTorchFunctionSubclass
    from tensorlib._C import _disabled_torch_function_impl as impl
    from torch._C import DisableTorchFunctionSubclass as PTDisable
    assert isinstance(tl._C, types.ModuleType) and isinstance(torch._C, types.ModuleType)
    assert sys.modules["tensorlib._C"] is tl._C is importlib.import_module("tensorlib._C")
    assert DisableTorchFunctionSubclass is tl._C.DisableTorchFunctionSubclass
    assert DisableTorchFunction is tl._C.DisableTorchFunction
    assert impl is tl._C._disabled_torch_function_impl
    s = tl.ones(2).as_subclass(TL_LOGGED)
    ps = torch.ones(2).as_subclass(PT_LOGGED)
    TL_LOG.clear()
    PT_LOG.clear()
    with DisableTorchFunctionSubclass(), PTDisable():
        r, pr = s + 1, ps + 1
    assert TL_LOG == PT_LOG == [] and r.tolist() == pr.tolist()


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=1, max_size=5))
def test_autograd_grad_gives_the_subclass(vals):
    a = np.asarray(vals, dtype=np.float64)
    xs = tl.tensor(a, requires_grad=True).as_subclass(TLTagged)
    ts = torch.tensor(a, requires_grad=True).as_subclass(PTTagged)
    (g,) = tl.autograd.grad((xs ** 3).sum(), xs, create_graph=True)
    (tg,) = torch.autograd.grad((ts ** 3).sum(), ts, create_graph=True)
    assert type(g) is TLTagged and type(tg) is PTTagged
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-12)
    # grad of grad (the subclass result stays on the tape)
    (gg,) = tl.autograd.grad(g.sum(), xs)
    (tgg,) = torch.autograd.grad(tg.sum(), ts)
    assert type(gg) is TLTagged and type(tgg) is PTTagged
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-12)


def test_autograd_grad_subclass_rules_follow_pytorch():
    y = tl.tensor([1.0, 2.0], dtype=tl.float64, requires_grad=True)
    ty = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    # a plain input with a subclass output: the subclass
    g = tl.autograd.grad((y.as_subclass(TLTagged) ** 2).sum(), y)[0]
    tg = torch.autograd.grad((ty.as_subclass(PTTagged) ** 2).sum(), ty)[0]
    assert type(g) is TLTagged and type(tg) is PTTagged and g.tolist() == tg.tolist()
    # a subclass leaf made with requires_grad_, an unused input, and plain ones stay plain
    leaf = tl.tensor([3.0]).as_subclass(TLTagged).requires_grad_()
    tleaf = torch.tensor([3.0]).as_subclass(PTTagged).requires_grad_()
    r = tl.autograd.grad((leaf * 2).sum(), (leaf, y), allow_unused=True)
    tr = torch.autograd.grad((tleaf * 2).sum(), (tleaf, ty), allow_unused=True)
    assert [type(v).__name__ for v in r] == ["TLTagged", "NoneType"]
    assert [type(v).__name__ for v in tr] == ["PTTagged", "NoneType"]
    assert type(tl.autograd.grad((y * y).sum(), y)[0]) is tl.Tensor
    # .grad from backward() stays plain in both
    (leaf * 2).sum().backward()
    (tleaf * 2).sum().backward()
    assert type(leaf.grad) is tl.Tensor and type(tleaf.grad) is torch.Tensor
    # it dispatches, as torch.autograd.grad does
    xl = tl.ones(2).as_subclass(TL_LOGGED).requires_grad_()
    xp = torch.ones(2).as_subclass(PT_LOGGED).requires_grad_()
    lt, lp = (xl * xl).sum(), (xp * xp).sum()
    TL_LOG.clear()
    PT_LOG.clear()
    gt, gp = tl.autograd.grad(lt, xl), torch.autograd.grad(lp, xp)
    assert TL_LOG == PT_LOG == ["grad"]
    assert type(gt[0]) is TL_LOGGED and type(gp[0]) is PT_LOGGED


REFLECTED = ["P @ x", "P + x", "P - x", "P * x", "P / x", "P ** x", "P // x", "P % x",
             "1 + x", "1 - x", "2 * x", "1 / x", "2 ** x", "1 // x", "1 % x",
             "1 & xi", "1 | xi", "1 ^ xi", "Pi & xi", "Pi | xi", "Pi ^ xi", "1 << xi",
             "1 >> xi", "Pi << xi", "Pi >> xi", "x @ P", "x - P", "x / P", "P < x",
             "x.__rsub__(1)", "x.__rtruediv__(1)", "x.__rpow__(2)", "x.__radd__(1)",
             "x.__rdiv__(1)"]


@pytest.mark.parametrize("expr", REFLECTED)
def test_reflected_operators_reach_torch_function_as_pytorch(expr):
    got = {}
    for lib, cls, log in ((tl, TL_LOGGED, TL_LOG), (torch, PT_LOGGED, PT_LOG)):
        env = {"x": (lib.arange(1, 5, dtype=lib.float64).reshape(2, 2) / 4).as_subclass(cls),
               "xi": lib.tensor([[1, 2], [3, 1]]).as_subclass(cls),
               "P": lib.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=lib.float64),
               "Pi": lib.tensor([[5, 6], [7, 2]])}
        log.clear()
        r = eval(expr, {}, env)
        got[lib.__name__] = (type(r) is cls, r.tolist(), [n for n in log])
    # names of the funcs and of the argument types
    assert got["tensorlib"][0] and got["torch"][0]
    np.testing.assert_allclose(np.array(got["tensorlib"][1], dtype=float),
                               np.array(got["torch"][1], dtype=float), rtol=1e-12)
    assert got["tensorlib"][2] == got["torch"][2]


def test_reflected_operator_argument_order():
    seen = {}

    def make(base, key):
        class Args(base):
            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                seen.setdefault(key, []).append(
                    (func.__name__, [type(a).__name__ for a in args]))
                return super().__torch_function__(func, types, args, kwargs or {})
        return Args
    A, B = make(tl.Tensor, "tl"), make(torch.Tensor, "pt")
    for lib, cls in ((tl, A), (torch, B)):
        p, s = lib.ones(2, 2), lib.ones(2, 2).as_subclass(cls)
        p @ s, p - s, 1 - s, p ** s
    assert seen["tl"] == seen["pt"] == [
        ("matmul", ["Tensor", "Args"]), ("sub", ["Tensor", "Args"]),
        ("__rsub__", ["Args", "int"]), ("pow", ["Tensor", "Args"])]


def test_save_of_a_subclass_warns_once_and_loads_plain(tmp_path):
    import warnings

    class Meta(tl.Tensor):
        pass
    m = tl.tensor([1.0, 2.0]).as_subclass(Meta)
    m.meta = "m/s"
    path = tmp_path / "m.st"
    with pytest.warns(UserWarning, match="save: .*Meta.*attributes are not saved") as rec:
        tl.save({"a": m, "b": [m * 2, tl.ones(1)], "c": tl.ones(1).as_subclass(TLTagged)},
                path)
    assert len([w for w in rec if "subclass" in str(w.message)]) == 1
    assert "TLTagged" in str(rec[0].message) and rec[0].filename == __file__
    out = tl.load(path)
    assert type(out["a"]) is tl.Tensor and out["a"].tolist() == [1.0, 2.0]
    assert out["b"][0].tolist() == [2.0, 4.0] and not hasattr(out["a"], "meta")
    with pytest.warns(UserWarning, match="Meta"):      # a flat state_dict too
        tl.save({"a": m}, path)
    # plain tensors, parameters and buffers: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.save({"w": tl.nn.Parameter(tl.ones(2)), "b": tl.nn.Buffer(tl.ones(1)),
                 "l": [tl.ones(1)]}, path)
        tl.save(tl.nn.Linear(2, 2).state_dict(), path)
