"""Forward-mode AD (tl.autograd.forward_ad) against torch.autograd.forward_ad, float64."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib._core import apply
from tensorlib.autograd import forward_ad as fwad
from tensorlib.autograd.forward_ad import _FwdNode, derived_jvp
from tensorlib.ops.registry import REGISTRY, OpDef

torch = pytest.importorskip("torch")
fwad._setup()
tfw = torch.autograd.forward_ad


def _isf(t) -> bool:
    return t._data.dtype.kind in "fc"


def T(a, rg=False):
    return tl.tensor(np.asarray(a, dtype=np.float64), requires_grad=rg)


def _np(a):
    assert a is not None, "no tangent"
    if isinstance(a, torch.Tensor):
        return a.detach().numpy()
    if isinstance(a, tl.Tensor):
        return a.detach().numpy()
    return a


def close(a, b, tol=1e-9):
    a, b = _np(a), _np(b)
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=tol, atol=tol)


def _jvp_tl(fn, xs, ts):
    with fwad.dual_level():
        ds = [fwad.make_dual(T(x), T(t)) for x, t in zip(xs, ts)]
        y = fn(*ds)
        p, t = fwad.unpack_dual(y)
        return p.numpy(), (None if t is None else t.numpy())


def _jvp_torch(fn, xs, ts):
    with tfw.dual_level():
        ds = [tfw.make_dual(torch.tensor(x, dtype=torch.float64),
                            torch.tensor(t, dtype=torch.float64)) for x, t in zip(xs, ts)]
        y = fn(*ds)
        p, t = tfw.unpack_dual(y)
        return p.numpy(), (None if t is None else t.numpy())


# --- elementwise and hot ops against PyTorch (hypothesis) ------------------------------
UNARY = {
    "neg": (lambda x: -x, lambda x: -x, None),
    "exp": (tl.exp, torch.exp, None),
    "log": (tl.log, torch.log, "pos"),
    "tanh": (tl.tanh, torch.tanh, None),
    "sigmoid": (tl.sigmoid, torch.sigmoid, None),
    "relu": (tl.relu, torch.relu, None),
    "sin": (tl.sin, torch.sin, None),
    "cos": (tl.cos, torch.cos, None),
    "sqrt": (tl.sqrt, torch.sqrt, "pos"),
    "abs": (tl.abs, torch.abs, None),
    "square": (lambda x: x * x, lambda x: x * x, None),
    "sum": (lambda x: x.sum(), lambda x: x.sum(), None),
    "mean0": (lambda x: x.mean(0), lambda x: x.mean(0), None),
    "transpose": (lambda x: x.T, lambda x: x.T, None),
    "reshape": (lambda x: x.reshape(-1), lambda x: x.reshape(-1), None),
    "slice": (lambda x: x[1:, :2], lambda x: x[1:, :2], None),
}
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "pow": (lambda a, b: abs(a) ** b, lambda a, b: abs(a) ** b),
    "maximum": (tl.maximum, torch.maximum),
}


def _arr(seed, shape, pos=False):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-2, 2, shape)
    if pos:
        a = np.abs(a) + 0.2
    return np.where(np.abs(a) < 0.1, a + 0.3, a)


@pytest.mark.parametrize("name", sorted(UNARY))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(2, 4), cols=st.integers(2, 4))
def test_unary_matches_torch(name, seed, rows, cols):
    f, g, dom = UNARY[name]
    x = _arr(seed, (rows, cols), dom == "pos")
    t = _arr(seed + 1, (rows, cols))
    p1, t1 = _jvp_tl(f, [x], [t])
    p2, t2 = _jvp_torch(g, [x], [t])
    close(p1, p2)
    close(t1, t2)


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), bshape=st.sampled_from([(3, 4), (4,), (1, 4), ()]))
def test_binary_matches_torch(name, seed, bshape):
    f, g = BINARY[name]
    a, b = _arr(seed, (3, 4)), _arr(seed + 7, bshape)
    ta, tb = _arr(seed + 1, (3, 4)), _arr(seed + 2, bshape)
    p1, t1 = _jvp_tl(f, [a, b], [ta, tb])
    p2, t2 = _jvp_torch(g, [a, b], [ta, tb])
    close(p1, p2)
    close(t1, t2)


def test_matmul_and_composites_match_torch():
    rng = np.random.default_rng(0)
    a, b, ta, tb = (rng.normal(size=s) for s in [(3, 4), (4, 2), (3, 4), (4, 2)])
    for f, g in [(lambda a, b: a @ b, lambda a, b: a @ b),
                 (lambda a, b: tl.softmax(a @ b, axis=-1), lambda a, b: (a @ b).softmax(-1)),
                 (lambda a, b: tl.logsumexp(a @ b, axis=0),
                  lambda a, b: (a @ b).logsumexp(0))]:
        p1, t1 = _jvp_tl(f, [a, b], [ta, tb])
        p2, t2 = _jvp_torch(g, [a, b], [ta, tb])
        close(p1, p2)
        close(t1, t2)


# --- explicit rules against the derived ones --------------------------------------------
def _sample_inputs(name):
    rng = np.random.default_rng(1)
    x = T(rng.uniform(0.5, 2.0, (3, 4)))
    y = T(rng.uniform(0.5, 2.0, (3, 4)))
    attrs: dict = {}
    ins = [x]
    if name in ("add", "sub", "mul", "div"):
        ins = [x, y]
    elif name == "matmul":
        ins = [x, T(rng.normal(size=(4, 2)))]
    elif name == "reshape":
        attrs = {"shape": (4, 3)}
    elif name == "transpose":
        attrs = {"axes": (1, 0)}
    elif name == "squeeze":
        ins, attrs = [T(rng.normal(size=(3, 1, 4)))], {"axis": (1,)}
    elif name == "expand_dims":
        attrs = {"axis": 1}
    elif name == "broadcast_to":
        attrs = {"shape": (2, 3, 4)}
    elif name in ("sum", "mean"):
        attrs = {"axis": 1, "keepdims": False}
    elif name == "cumsum":
        attrs = {"axis": 1}
    return ins, attrs


def _call_via_api(name):
    """The op as the public API calls it (so its attrs are right), recorded by a spy."""
    rng = np.random.default_rng(2)
    x = T(rng.uniform(0.5, 2.0, (3, 4)))
    y = T(rng.uniform(0.5, 2.0, (3, 4)))
    calls = {
        "add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y,
        "div": lambda: x / y, "neg": lambda: -x, "matmul": lambda: x @ y.T,
        "exp": lambda: tl.exp(x), "log": lambda: tl.log(x), "tanh": lambda: tl.tanh(x),
        "sigmoid": lambda: tl.sigmoid(x), "relu": lambda: tl.relu(x - 1),
        "reshape": lambda: x.reshape(4, 3), "transpose": lambda: x.T,
        "squeeze": lambda: x.reshape(3, 1, 4).squeeze(1),
        "expand_dims": lambda: tl.expand_dims(x, 1), "slice": lambda: x[1:, ::2],
        "flip": lambda: tl.flip(x, 0), "diagonal": lambda: tl.diagonal(x),
        "broadcast_to": lambda: tl.broadcast_to(x, (2, 3, 4)), "sum": lambda: x.sum(1),
        "mean": lambda: x.mean(0), "cumsum": lambda: tl.cumsum(x, 1),
        "tril": lambda: tl.tril(x), "triu": lambda: tl.triu(x),
        "roll": lambda: tl.roll(x, 1, 1), "tile": lambda: tl.tile(x, (2, 1)),
        "repeat": lambda: tl.repeat(x, 2, axis=0), "copy": lambda: x.clone(),
        "take": lambda: x.index_select(1, tl.tensor([2, 0, 2])),
        "take_along_axis": lambda: tl.gather(x, 1, tl.tensor([[0, 1], [2, 2], [3, 0]])),
        "fill": lambda: tl.nn.RNNCell(4, 2).double()(x),
        "linear": lambda: F.linear(x, y, y[0, :3]),
        "conv2d": lambda: F.conv2d(x.reshape(1, 1, 3, 4), y.reshape(2, 1, 2, 3)[:, :, :2, :2],
                                   y[0, :2], padding=1),
        "concatenate": lambda: tl.cat([x, y], 1), "stack": lambda: tl.stack([x, y]),
        "where": lambda: tl.where(x > 1, x, y), "gelu": lambda: F.gelu(x - 1),
        "silu": lambda: F.silu(x - 1), "softplus": lambda: F.softplus(x - 1, beta=2.0),
        "leaky_relu": lambda: F.leaky_relu(x - 1, 0.1), "softmax": lambda: F.softmax(x, 1),
        "log_softmax": lambda: F.log_softmax(x, 0),
        "layer_norm": lambda: F.layer_norm(x, (4,), y[0], y[1]),
        "batch_norm_eval": lambda: F.batch_norm(x, y[0, :4], y[1, :4], y[2], x[0],
                                                training=False),
        "clip": lambda: tl.clamp(x, 0.8, 1.5), "pow": lambda: x ** y,
        "sqrt": lambda: tl.sqrt(x), "rsqrt": lambda: tl.rsqrt(x), "abs": lambda: tl.abs(x - 1),
        "square": lambda: tl.square(x),
    }
    return calls.get(name)


class _Spy:
    def __init__(self, name):
        self.name, self.seen = name, []

    def record(self, op, inputs, attrs, res):
        if op.name == self.name:
            self.seen.append((op, inputs, attrs, res))


JVP_OPS = sorted(n for n, op in REGISTRY.items() if op.jvp is not None)


def test_hot_ops_have_explicit_rules():
    for name in ("add", "sub", "mul", "div", "neg", "matmul", "reshape", "transpose", "sum",
                 "mean", "exp", "log", "tanh", "sigmoid", "relu", "linear", "conv2d", "gelu",
                 "silu", "softplus", "leaky_relu", "softmax", "log_softmax", "layer_norm",
                 "batch_norm_eval", "take", "take_along_axis", "concatenate", "stack",
                 "where", "clip", "pow", "sqrt", "rsqrt", "abs", "fill"):
        assert REGISTRY[name].jvp is not None, name


@pytest.mark.parametrize("name", JVP_OPS)
def test_explicit_rule_matches_derived(name):
    call = _call_via_api(name)
    assert call is not None, f"add {name} to _call_via_api"
    from tensorlib._state import state
    spy = _Spy(name)
    old, state.fwd_ad = state.fwd_ad, spy.record
    try:
        call()
    finally:
        state.fwd_ad = old
    assert spy.seen, f"{name} was not called"
    op, inputs, attrs, res = spy.seen[0]
    outs = res if isinstance(res, tuple) else (res,)
    rng = np.random.default_rng(3)
    ts = [T(rng.normal(size=x.shape)) if _isf(x) else None
          for x in inputs]

    def check(ts):
        got = op.jvp(node, *ts)
        if op.vjp is None:          # a constant-producing op: no tangent
            assert got is None
            return
        want = derived_jvp(node, *ts)
        got, want = ((got, want) if isinstance(res, tuple) else ((got,), (want,)))
        for g, w, o in zip(got, want, outs):
            if g is None:
                assert w is None or not np.any(w.numpy())
                continue
            close(tl.broadcast_to(g, o.shape) if g.shape != o.shape else g, w)

    with fwad.dual_level():
        node = _FwdNode(op, inputs, attrs, outs)
        check(ts)
        # one tangent missing, each in turn
        if sum(t is not None for t in ts) > 1:
            for k in range(len(ts)):
                if ts[k] is not None:
                    check([None if j == k else t for j, t in enumerate(ts)])


# --- registry sweep: every op the gradient tests exercise ------------------------------
def _cases():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cases import draw_inputs, load_all
    return {c.id: c for c in load_all() if c.grad}, draw_inputs


CASES, DRAW = _cases()
# the derived rule differentiates the vjp; these vjps are not differentiable (as PyTorch,
# which has no forward AD for them either): an error naming the op
NO_FORWARD_AD = {"ctc_loss": "ctc_loss"}


@pytest.mark.parametrize("cid", sorted(CASES))
@settings(max_examples=2, deadline=None)
@given(data=st.data())
def test_registry_jvp_matches_reverse_mode(cid, data):
    """<J t, w> == <t, J^T w>: the forward tangent against the (gradchecked) vjp."""
    case = CASES[cid]
    arrays, params = DRAW(case, data.draw)
    arrays = [np.asarray(a) for a in arrays]
    diff = case.diff if case.diff is not None else tuple(
        k for k, a in enumerate(arrays) if a.dtype.kind == "f")
    if not diff:
        pytest.skip("no differentiable input")
    rng = np.random.default_rng(0)
    ins = [tl.tensor(a.astype(np.float64) if a.dtype.kind == "f" else a,
                     requires_grad=i in diff) for i, a in enumerate(arrays)]
    tans = {i: rng.normal(size=arrays[i].shape) for i in diff}
    fn = (lambda *ts: case.fn(*ts, **params)) if params else case.fn
    outs = fn(*ins)
    outs = tuple(outs) if isinstance(outs, (tuple, list)) else (outs,)
    float_outs = [o for o in outs if isinstance(o, tl.Tensor) and _isf(o)]
    if not float_outs:
        pytest.skip("no floating-point output")
    ws = [rng.normal(size=o.shape) for o in float_outs]
    # (a complex output: the real part of <o, w>, a real loss as backward needs)
    tot = sum(tl.real((o * T(w)).sum()) for o, w in zip(float_outs, ws) if o.requires_grad)
    if not isinstance(tot, tl.Tensor):
        pytest.skip("outputs do not depend on the inputs")
    gs = tl.autograd.grad(tot, [ins[i] for i in diff], allow_unused=True)
    rev = sum(float((g.numpy() * tans[i]).sum()) for g, i in zip(gs, diff) if g is not None)
    with fwad.dual_level():
        # (primals that require grad: in-place ops on tensors that do not skip apply)
        duals = [fwad.make_dual(x.detach().requires_grad_(), T(tans[i])) if i in diff else x
                 for i, x in enumerate(ins)]
        if cid in NO_FORWARD_AD:
            with pytest.raises(NotImplementedError, match=NO_FORWARD_AD[cid]):
                fn(*duals)
            return
        fouts = fn(*duals)
        fouts = tuple(fouts) if isinstance(fouts, (tuple, list)) else (fouts,)
        ffloat = [o for o in fouts if isinstance(o, tl.Tensor) and _isf(o)]
        fwd = 0.0
        for o, w, ro in zip(ffloat, ws, float_outs):
            np.testing.assert_allclose(o.numpy(), ro.detach().numpy(), rtol=1e-10, atol=1e-12)
            t = fwad.unpack_dual(o).tangent
            if t is not None and ro.requires_grad:
                fwd += float((t.numpy() * w).sum().real)
    np.testing.assert_allclose(fwd, rev, rtol=1e-6, atol=1e-6 * (1 + abs(rev)))


# --- higher order --------------------------------------------------------------------
def _f_tl(x):
    return (tl.tanh(x) * x.exp()).sum() + (x * x).sum()


def _f_torch(x):
    return (torch.tanh(x) * x.exp()).sum() + (x * x).sum()


def test_reverse_over_forward():
    rng = np.random.default_rng(4)
    x0, v0 = rng.normal(size=5), rng.normal(size=5)
    x, v = T(x0, rg=True), T(v0, rg=True)
    with fwad.dual_level():
        jv = fwad.unpack_dual(_f_tl(fwad.make_dual(x, v))).tangent
        gx, gv = tl.autograd.grad(jv, [x, v])
    xt = torch.tensor(x0, requires_grad=True)
    vt = torch.tensor(v0, requires_grad=True)
    with tfw.dual_level():
        jvt = tfw.unpack_dual(_f_torch(tfw.make_dual(xt, vt))).tangent
        gxt, gvt = torch.autograd.grad(jvt, [xt, vt])
    close(jv, jvt)
    close(gx, gxt)
    close(gv, gvt)


def test_forward_over_reverse_hvp():
    rng = np.random.default_rng(5)
    x0, v0 = rng.normal(size=5), rng.normal(size=5)
    x = T(x0, rg=True)
    with fwad.dual_level():
        d = fwad.make_dual(x, T(v0))
        (g,) = tl.autograd.grad(_f_tl(d), [d], create_graph=True)
        hv = fwad.unpack_dual(g).tangent
    xt = torch.tensor(x0, requires_grad=True)
    hvt = torch.autograd.functional.hvp(_f_torch, xt, torch.tensor(v0))[1]
    close(hv, hvt)
    # without create_graph too (the engine's gradient sums must carry tangents)
    with fwad.dual_level():
        d = fwad.make_dual(x, T(v0))
        y = _f_tl(d)
        (g,) = tl.autograd.grad(y, [d])
        close(fwad.unpack_dual(g).tangent, hvt)


def test_nested_levels_do_not_mix():
    x0 = np.array([0.3, -0.7, 1.1])
    u0, v0 = np.array([1.0, 2.0, -1.0]), np.array([0.5, -1.0, 2.0])
    with fwad.dual_level() as outer:
        xo = fwad.make_dual(T(x0), T(u0), level=outer)
        with fwad.dual_level() as inner:
            assert inner != outer
            xi = fwad.make_dual(xo, T(v0), level=inner)
            y = tl.sin(xi)
            t_in = fwad.unpack_dual(y, level=inner).tangent      # cos(x) v
            t_out = fwad.unpack_dual(y, level=outer).tangent     # cos(x) u
            mixed = fwad.unpack_dual(t_in, level=outer).tangent  # -sin(x) u v
            close(t_in, np.cos(x0) * v0)
            close(t_out, np.cos(x0) * u0)
            close(mixed, -np.sin(x0) * u0 * v0)
        assert fwad.unpack_dual(y, level=outer).tangent is not None


# --- semantics and errors ------------------------------------------------------------
def test_api_semantics():
    x, t = T([1.0, 2.0, 3.0]), T([1.0, 0.0, -1.0])
    with fwad.dual_level() as lvl:
        assert lvl == 0
        d = fwad.make_dual(x, t)
        p, tan = fwad.unpack_dual(d)
        assert isinstance(fwad.unpack_dual(d), fwad.UnpackedDualTensor)
        assert tan is t
        close(p, x)
        assert fwad.unpack_dual(p).tangent is None
        assert fwad.unpack_dual(x).tangent is None
        y = d * 2
        # no_grad does not disable forward AD
        with tl.no_grad():
            z = d * d
        close(fwad.unpack_dual(z).tangent, 2 * x.numpy() * t.numpy())
        # integer outputs carry no tangent
        assert fwad.unpack_dual(tl.argmax(d)).tangent is None
        # grads flow back through make_dual to the primal
        xr = T([1.0, 2.0], rg=True)
        dr = fwad.make_dual(xr, T([1.0, 1.0]))
        (g,) = tl.autograd.grad((dr * dr).sum(), [xr])
        close(g, 2 * xr.detach().numpy())
    # tangents are dropped when leaving the level
    assert fwad.unpack_dual(y).tangent is None
    assert fwad.unpack_dual(d).tangent is None
    from tensorlib._state import state
    assert state.fwd_ad is None


def test_enter_exit_functions():
    i = fwad.enter_dual_level()
    try:
        d = fwad.make_dual(T([1.0]), T([2.0]))
        close(fwad.unpack_dual(d * 3).tangent, [6.0])
    finally:
        fwad.exit_dual_level(level=i)
    assert fwad.unpack_dual(d).tangent is None
    with pytest.raises(RuntimeError, match="no forward AD level"):
        fwad.exit_dual_level()
    with fwad.dual_level():
        j = fwad.enter_dual_level()
        with pytest.raises(RuntimeError, match="not the last one"):
            fwad.exit_dual_level(level=j - 1)
        fwad.exit_dual_level(level=j)


def test_errors_like_torch():
    x = T([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="no level exists"):
        fwad.make_dual(x, T([1.0, 1.0, 1.0]))
    with tfw.dual_level(), pytest.raises(RuntimeError, match="different size"):
        tfw.make_dual(torch.zeros(3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    with fwad.dual_level():
        with pytest.raises(RuntimeError, match="different size"):
            fwad.make_dual(x, T([1.0, 2.0]))
        with pytest.raises(ValueError, match="floating point"):
            fwad.make_dual(tl.tensor([1, 2, 3]), tl.tensor([1, 1, 1]))
        with pytest.raises(ValueError, match="floating point"):
            fwad.make_dual(x, tl.tensor([1, 1, 1]))
        d = fwad.make_dual(x, T([1.0, 1.0, 1.0]))
        with pytest.raises(RuntimeError, match="already has a forward gradient"):
            fwad.make_dual(d, T([1.0, 1.0, 1.0]))
        with pytest.raises(RuntimeError, match="invalid level"):
            fwad.make_dual(x, T([1.0, 1.0, 1.0]), level=5)
        with pytest.raises(TypeError, match="make_dual"):
            fwad.make_dual(np.ones(3), T([1.0, 1.0, 1.0]))
        # an op without vjp or jvp: an error naming it, as PyTorch's NotImplementedError
        op = OpDef("fwd_test_opaque", lambda xp, a: a * 2, saves=False)
        with pytest.raises(NotImplementedError, match="fwd_test_opaque"):
            apply(op, d)
        apply(op, x)        # no dual: fine


def test_inplace_updates_tangent():
    x0, t0 = np.array([1.0, 2.0, 3.0]), np.array([1.0, -1.0, 0.5])
    with fwad.dual_level():
        d = fwad.make_dual(T(x0, rg=True), T(t0))
        y = d * 1.0
        y.mul_(d)
        got = fwad.unpack_dual(y).tangent
    xt = torch.tensor(x0, requires_grad=True)
    with tfw.dual_level():
        dt = tfw.make_dual(xt, torch.tensor(t0))
        yt = dt * 1.0
        yt.mul_(dt)
        close(got, tfw.unpack_dual(yt).tangent)


def test_detach_drops_tangent():
    with fwad.dual_level():
        d = fwad.make_dual(T([1.0, 2.0]), T([1.0, 1.0]))
        assert fwad.unpack_dual(d.detach()).tangent is None
        assert fwad.unpack_dual(d).tangent is not None


def test_view_tangent_is_a_view():
    with fwad.dual_level():
        base_t = T(np.arange(6.0))
        d = fwad.make_dual(T(np.ones(6)), base_t)
        v = d.reshape(2, 3)
        vt = fwad.unpack_dual(v).tangent
        close(vt, np.arange(6.0).reshape(2, 3))
        assert np.shares_memory(vt.numpy(), base_t.numpy())


def test_functional_call_with_dual_parameters():
    torch.manual_seed(0)
    tm = torch.nn.Linear(3, 2).double()
    m = tl.nn.Linear(3, 2)
    w0, b0 = tm.weight.detach().numpy().copy(), tm.bias.detach().numpy().copy()
    rng = np.random.default_rng(6)
    tw, tb, xin = rng.normal(size=(2, 3)), rng.normal(size=2), rng.normal(size=(4, 3))
    with fwad.dual_level():
        params = {"weight": fwad.make_dual(T(w0), T(tw)), "bias": fwad.make_dual(T(b0), T(tb))}
        out = tl.func.functional_call(m, params, (T(xin),))
        got = fwad.unpack_dual(tl.tanh(out)).tangent
    with tfw.dual_level():
        tparams = {"weight": tfw.make_dual(torch.tensor(w0), torch.tensor(tw)),
                   "bias": tfw.make_dual(torch.tensor(b0), torch.tensor(tb))}
        tout = torch.func.functional_call(tm, tparams, (torch.tensor(xin),))
        want = tfw.unpack_dual(torch.tanh(tout)).tangent
    close(got, want)


def test_multi_output_op():
    x0, t0 = np.array([[3.0, 1.0, 2.0], [0.5, 4.0, -1.0]]), np.ones((2, 3))
    with fwad.dual_level():
        vals, idx = fwad.make_dual(T(x0), T(t0) * T(np.arange(3.0))).max(dim=1)
        assert fwad.unpack_dual(idx).tangent is None
        got = fwad.unpack_dual(vals).tangent
    close(got, [0.0, 1.0])


# --- review fixes: views and in-place ops, fast paths, vmap, constants ------------------
def _both(fn):
    """fn(lib, fwad_module, dual, make) run in tensorlib and torch; returns their results."""
    out = []
    for lib, fw in ((tl, fwad), (torch, tfw)):
        with fw.dual_level():
            def make(shape, lib=lib, fw=fw):
                return fw.make_dual(lib.ones(*shape, dtype=lib.float64),
                                    lib.ones(*shape, dtype=lib.float64))
            out.append(fn(lib, fw, make))
    return out


@pytest.mark.parametrize("case", ["split", "view_first", "transpose", "copy_into_view",
                                  "mul_into_view", "view_of_plain_base"])
def test_inplace_views_share_tangent(case):
    def fn(lib, fw, make):
        d = make((3, 4))
        if case == "split":
            z = d.clone()
            a, b = z.split(2, 1)
            a.mul_(3.0)
            b.add_(1.0)
            return [z, a, b]
        if case == "view_first":
            z = d.clone()
            w = z[0]
            z.mul_(2.0)
            w.add_(d[1])
            return [z, w]
        if case == "transpose":
            z = d.clone()
            w = z.t()
            z.mul_(d * 2)
            return [z, w]
        z = lib.zeros(3, 4, dtype=lib.float64)
        if case == "copy_into_view":
            z[:, 1:3].copy_(d[:, :2] * 3)
            return [z]
        if case == "mul_into_view":
            z[:, 1:3].mul_(d[:, :2])
            return [z]
        z = lib.ones(3, 4, dtype=lib.float64)
        w = z[1]
        z.mul_(d * 2)
        return [z, w]
    got, want = _both(lambda lib, fw, make: [
        (fw.unpack_dual(t).primal.detach().numpy().copy(),
         fw.unpack_dual(t).tangent.detach().numpy().copy()) for t in fn(lib, fw, make)])
    for (gp, gt), (wp, wt) in zip(got, want):
        close(gp, wp)
        close(gt, wt)


def test_detach_inplace_drops_tangent():
    with fwad.dual_level():
        z = fwad.make_dual(T(np.ones(3)), T(np.ones(3))).clone()
        z.detach_()
        assert fwad.unpack_dual(z).tangent is None


@pytest.mark.parametrize("opt", ["sgd", "sgd_mom", "sgd_foreach", "adam", "adamw"])
def test_optimizer_step_keeps_tangent(opt):
    def run(lib, fw):
        p = lib.nn.Parameter(lib.ones(3, dtype=lib.float64))
        mk = {"sgd": lambda: lib.optim.SGD([p], lr=0.1),
              "sgd_mom": lambda: lib.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.1),
              "sgd_foreach": lambda: lib.optim.SGD([p], lr=0.1, foreach=True),
              "adam": lambda: lib.optim.Adam([p], lr=0.1),
              "adamw": lambda: lib.optim.AdamW([p], lr=0.1)}[opt]
        o = mk()
        with fw.dual_level():
            for k in range(2):
                p.grad = fw.make_dual(lib.ones(3, dtype=lib.float64) * (k + 1),
                                      lib.ones(3, dtype=lib.float64))
                o.step()
            return (p.detach().numpy().copy(),
                    _np(fw.unpack_dual(p).tangent).copy())
    (gp, gt), (wp, wt) = run(tl, fwad), run(torch, tfw)
    close(gp, wp)
    if opt == "sgd_mom":
        # torch's momentum buffer starts as grad.clone().detach(), which drops the tangent
        # of step 1 from step 2; carried through: g' = 1 + 0.1 * -0.1, buf' = 0.9 + g'
        wt = np.full(3, -0.1 - 0.1 * (0.9 + 0.99))
    close(gt, wt)


def test_vmap_under_forward_ad():
    rng = np.random.default_rng(5)
    x0, v0, w0 = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)), rng.normal(size=3)
    res = []
    for lib, fw, vmap in ((tl, fwad, tl.func.vmap), (torch, tfw, torch.func.vmap)):
        with fw.dual_level():
            d = fw.make_dual(lib.tensor(x0), lib.tensor(v0))
            w = fw.make_dual(lib.tensor(w0), lib.tensor(np.ones(3)))
            y1 = vmap(lambda r: r.sin().sum())(d)
            y2 = vmap(lambda r: (r * w).sum())(lib.tensor(x0))
            res.append([_np(fw.unpack_dual(y).tangent).copy() for y in (y1, y2)])
    for g, w in zip(*res):
        close(g, w)


@pytest.mark.parametrize("kind", ["RNNCell", "GRUCell", "LSTMCell", "GRU"])
def test_recurrent_without_state(kind):
    rng = np.random.default_rng(6)
    x0, v0 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    res = []
    for lib, fw in ((tl, fwad), (torch, tfw)):
        lib.manual_seed(0)
        m = getattr(lib.nn, kind)(3, 4).double()
        if lib is tl:
            tm = getattr(torch.nn, kind)(3, 4).double()
            m.load_state_dict({k: tl.tensor(v.detach().numpy())
                               for k, v in tm.state_dict().items()})
        else:
            m = tm
        with fw.dual_level():
            y = m(fw.make_dual(lib.tensor(x0), lib.tensor(v0)))
            y = y[0] if isinstance(y, tuple) else y
            res.append(_np(fw.unpack_dual(y).tangent).copy())
    close(res[0], res[1])


def test_constant_like_ops_have_no_tangent():
    with fwad.dual_level():
        d = fwad.make_dual(T(np.ones(3)), T(np.ones(3)))
        for y in (tl.zeros_like(d), tl.ones_like(d), tl.full_like(d, 2.0),
                  tl.empty_like(d), tl.nn.RNNCell(3, 2).double()(d.reshape(1, 3)) * 0 + 1):
            t = fwad.unpack_dual(y).tangent
            assert t is None or not np.any(t.numpy())


def test_captured_functions_run_eagerly_inside_a_dual_level():
    """tl.function / tl.compile replay graphs without the listener: inside a level they run
    the Python, so tangents are not dropped (review A)."""
    m = tl.nn.Linear(3, 2).double()
    tm = torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m.weight.numpy()))
        tm.bias.copy_(torch.tensor(m.bias.numpy()))
    x = np.random.default_rng(0).standard_normal((4, 3))
    for wrap in (tl.function, tl.compile):
        f = wrap(lambda t: m(t).tanh())
        f(tl.tensor(x))                     # a graph is cached first
        with fwad.dual_level():
            y = f(fwad.make_dual(tl.tensor(x), tl.ones(4, 3, dtype=tl.float64)))
            got = fwad.unpack_dual(y).tangent
        with tfw.dual_level():
            ty = tm(tfw.make_dual(torch.tensor(x), torch.ones(4, 3, dtype=torch.float64))).tanh()
            want = tfw.unpack_dual(ty).tangent
        np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("layer", ["linear", "layer_norm", "cross_entropy"])
def test_forward_over_reverse_hvp_through_fused_backward_ops(layer):
    """A jvp of a plain backward (no create_graph) through ops whose first-order backward is a
    fused kernel (linear_grad, layer_norm_grad, cross_entropy_grad): inside a
    level the backward takes the composite rules, so the HVP works and matches PyTorch's."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5))
    w = rng.standard_normal((5, 5)) * 0.5
    v = rng.standard_normal((5, 5))
    tgt = np.array([0, 2, 1, 4])

    def body(lib, F_, xx, ww):
        if layer == "linear":
            return F_.linear(xx, ww).tanh().sum()
        if layer == "layer_norm":
            return (F_.layer_norm(xx @ ww, (5,)) ** 2).sum()
        return F_.cross_entropy(xx @ ww, lib.tensor(tgt))

    def hvp_tl():
        with fwad.dual_level():
            wd = fwad.make_dual(tl.tensor(w, requires_grad=True), tl.tensor(v))
            g, = tl.autograd.grad(body(tl, F, tl.tensor(x), wd), wd)
            return fwad.unpack_dual(g).tangent.detach().numpy()

    def hvp_torch():
        with tfw.dual_level():
            wd = tfw.make_dual(torch.tensor(w, requires_grad=True), torch.tensor(v))
            g, = torch.autograd.grad(body(torch, torch.nn.functional, torch.tensor(x), wd), wd)
            return tfw.unpack_dual(g).tangent.detach().numpy()
    np.testing.assert_allclose(hvp_tl(), hvp_torch(), rtol=1e-10, atol=1e-12)
