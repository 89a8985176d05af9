"""Session 23: outer-broadcast binary kernels and the fused binary_cross_entropy_with_logits,
against NumPy (bit for bit) and PyTorch (values and gradients)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib import _ops
from tensorlib.ops import elementwise as E

torch = pytest.importorskip("torch")
F = tl.nn.functional

_BIN = [("add", np.add, tl.add), ("sub", np.subtract, tl.sub), ("mul", np.multiply, tl.mul),
        ("div", np.true_divide, tl.div), ("maximum", np.maximum, tl.maximum),
        ("minimum", np.minimum, tl.minimum), ("eq", np.equal, tl.eq),
        ("ne", np.not_equal, tl.ne), ("lt", np.less, tl.lt), ("le", np.less_equal, tl.le),
        ("gt", np.greater, tl.gt), ("ge", np.greater_equal, tl.ge)]
# outer patterns (I, 1, K) against (1, J, K) either way round, around vector widths, and
# shapes that are not outer (their previous path)
_SHAPES = [((2000, 1), (1, 3)), ((3, 1), (1, 2000)), ((1, 100), (300, 1)),
           ((300, 1, 2), (1, 100, 2)), ((1, 100, 2), (300, 1, 2)), ((50, 1, 17), (1, 33, 17)),
           ((65, 1, 1, 3), (1, 7, 9, 3)), ((64, 1), (33,)), ((31, 1, 1), (1, 15, 16)),
           ((5, 1, 2, 3), (1, 70, 2, 3)), ((4000, 1, 4), (1, 2, 4)),
           ((500, 40), (1, 40)), ((3, 1, 700), (3, 5, 700)), ((7, 1, 600), (1, 5, 1))]


def _special(rng, shape, dt):
    a = rng.standard_normal(shape).astype(dt)
    flat = a.reshape(-1)
    k = flat.size
    idx = rng.integers(0, k, size=max(1, k // 10))
    flat[idx] = rng.choice(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0], dt), idx.size)
    return a


def _bits_equal(x, y):
    assert x.shape == y.shape and x.dtype == y.dtype
    if x.dtype.kind == "f":
        nan = np.isnan(x)
        assert (nan == np.isnan(y)).all()
        x, y = np.where(nan, 0, x), np.where(nan, 0, y)
        assert (x.view(f"u{x.itemsize}") == y.view(f"u{y.itemsize}")).all()
    else:
        assert (x == y).all()


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("sa,sb", _SHAPES)
@pytest.mark.parametrize("name,uf,fn", _BIN, ids=[b[0] for b in _BIN])
def test_outer_binary_bits(name, uf, fn, sa, sb, dt):
    rng = np.random.default_rng(hash((name, sa, sb)) % 2**32)
    a, b = _special(rng, sa, dt), _special(rng, sb, dt)
    with np.errstate(all="ignore"):
        ref = uf(a, b)
    _bits_equal(fn(tl.tensor(a), tl.tensor(b)).numpy(), ref)
    _bits_equal(fn(tl.tensor(b), tl.tensor(a)).numpy(), uf(b, a) if True else None)


def test_outer_kernel_direct_and_fallbacks():
    if not hasattr(_ops, "binary_kernel"):
        pytest.skip("_ops built before session 23")
    calls = []

    def fb(a, b):
        calls.append(1)
        return np.add(a, b)
    a = np.arange(3000, dtype=np.float32).reshape(3000, 1)
    b = np.arange(4, dtype=np.float32).reshape(1, 4)
    out = _ops.binary_kernel(fb, 0, a, b)
    assert not calls and (out == a + b).all()
    # not outer, mixed dtypes, ints, small, non-broadcastable: the fallback
    for x, y in ((a, a), (a, b.astype(np.float64)), (a.astype(np.int64), b.astype(np.int64)),
                 (a[:3], b), (np.ones((3000, 2), np.float32), np.ones((1, 2), np.float32))):
        _ops.binary_kernel(fb, 0, x, y)
    assert len(calls) == 5
    with pytest.raises(ValueError):
        _ops.binary_kernel(np.add, 0, np.ones((3, 2), np.float32), np.ones((4, 1), np.float32))


def test_outer_noncontiguous_and_torch_grads():
    rng = np.random.default_rng(1)
    b1, b2 = rng.random((300, 4)), rng.random((70, 4))
    t1, t2 = torch.tensor(b1, requires_grad=True), torch.tensor(b2, requires_grad=True)
    l1, l2 = tl.tensor(b1, requires_grad=True), tl.tensor(b2, requires_grad=True)
    outs = []
    for L, x, y in ((torch, t1, t2), (tl, l1, l2)):
        lt = L.maximum(x[:, None, :2], y[None, :, :2])
        rb = L.minimum(x[:, None, 2:], y[None, :, 2:])
        v = (rb - lt) * (x[:, None, :2] / (y[None, :, 2:] + 1)) + x[:, None, 1:3] * y[None, :, ::2]
        v = v - (x[:, None, 3:] > y[None, :, :1]).to(v.dtype)
        outs.append(v)
        v.sum().backward()
    np.testing.assert_allclose(outs[1].detach().numpy(), outs[0].detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(l1.grad.numpy(), t1.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(l2.grad.numpy(), t2.grad.numpy(), rtol=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 70), st.integers(1, 70), st.integers(1, 5), st.booleans(),
       st.sampled_from(_BIN[:6]))
def test_outer_hypothesis(i, j, k, swap, case):
    name, uf, fn = case
    rng = np.random.default_rng(i * 1000 + j * 10 + k)
    a = _special(rng, (i * 40, 1, k), np.float32)
    b = _special(rng, (1, j, k), np.float32)
    if swap:
        a, b = b, a
    with np.errstate(all="ignore"):
        ref = uf(a, b)
    _bits_equal(fn(tl.tensor(a), tl.tensor(b)).numpy(), ref)


# --- binary_cross_entropy_with_logits ----------------------------------------------------
def _bce_pair(L, x, y, w, pw, red, dt, manual=False):
    X = L.tensor(x, dtype=dt, requires_grad=True)
    Y = L.tensor(y, dtype=dt, requires_grad=True)
    W = None if w is None else L.tensor(w, dtype=dt, requires_grad=manual or L is tl)
    P = None if pw is None else L.tensor(pw, dtype=dt, requires_grad=manual or L is tl)
    if manual:      # PyTorch's formula by hand: torch has no weight / pos_weight gradient
        lw = 1 if P is None else 1 + (P - 1) * Y
        loss = (1 - Y) * X - lw * torch.nn.functional.logsigmoid(X)
        loss = loss if W is None else loss * W
        loss = {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[red]
        return X, Y, W, P, loss
    f = L.nn.functional.binary_cross_entropy_with_logits
    return X, Y, W, P, f(X, Y, weight=W, pos_weight=P, reduction=red)


@pytest.mark.parametrize("red", ["none", "mean", "sum"])
@pytest.mark.parametrize("wshape,pwshape", [(None, None), ((7,), None), (None, (7,)),
                                            ((5, 7), (7,)), ((5, 1), (1, 7)), ((), (5, 7))])
@pytest.mark.parametrize("shape", [(5, 7), (300, 7), (2, 3, 5, 7)])
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_bce_logits_vs_torch(dt, shape, wshape, pwshape, red):
    if len(shape) == 2 and wshape == (5, 7) and shape[0] != 5:
        wshape = shape
    if (wshape and len(wshape) == 2 and wshape[0] not in (1, shape[-2])) or (
            pwshape and len(pwshape) == 2 and pwshape[0] not in (1, shape[-2])):
        pytest.skip("weight does not broadcast")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 4
    y = (rng.random(shape) < 0.3).astype(float)
    y[..., 0] = 0.25           # soft targets too
    w = None if wshape is None else rng.random(wshape) + 0.5
    pw = None if pwshape is None else rng.random(pwshape) * 3
    tdt, ldt = getattr(torch, dt), getattr(tl, dt)
    T = _bce_pair(torch, x, y, w, pw, red, tdt)
    Lr = _bce_pair(tl, x, y, w, pw, red, ldt)
    tol = dict(rtol=2e-5, atol=2e-6) if dt == "float32" else dict(rtol=1e-11, atol=1e-12)
    assert Lr[4].dtype == ldt
    np.testing.assert_allclose(Lr[4].detach().numpy(), T[4].detach().numpy(), **tol)
    g = rng.standard_normal(T[4].shape)
    T[4].backward(torch.tensor(g, dtype=tdt))
    Lr[4].backward(tl.tensor(g, dtype=ldt))
    M = _bce_pair(torch, x, y, w, pw, red, tdt, manual=True)
    M[4].backward(torch.tensor(g, dtype=tdt))
    for a, b, m in zip(Lr[:4], T[:4], M[:4]):
        if a is not None:
            ref = b.grad if b.grad is not None else m.grad
            np.testing.assert_allclose(a.grad.numpy(), ref.numpy(), **tol)


def test_bce_logits_target_grad_and_nan_inf():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, 30.0, -30.0, 100.0, -100.0, 1.0] * 30)
    y = np.tile(np.array([0.0, 1.0, 0.0, 0.5, 1.0, 0.0, 0.0, 1.0, 0.3]), 30)
    pw = np.full(9 * 30, 2.0)
    for dt, ldt in ((torch.float32, tl.float32), (torch.float64, tl.float64)):
        for pos in (None, pw):
            for red in ("none", "sum"):
                X = torch.tensor(x, dtype=dt, requires_grad=True)
                Y = torch.tensor(y, dtype=dt, requires_grad=True)
                P = None if pos is None else torch.tensor(pos, dtype=dt)
                t = torch.nn.functional.binary_cross_entropy_with_logits(X, Y, pos_weight=P,
                                                                         reduction=red)
                LX = tl.tensor(x, dtype=ldt, requires_grad=True)
                LY = tl.tensor(y, dtype=ldt, requires_grad=True)
                LP = None if pos is None else tl.tensor(pos, dtype=ldt)
                l_ = F.binary_cross_entropy_with_logits(LX, LY, pos_weight=LP, reduction=red)
                np.testing.assert_allclose(l_.detach().numpy(), t.detach().numpy(), rtol=2e-5,
                                           atol=1e-6)
                t.sum().backward()
                l_.sum().backward()
                np.testing.assert_allclose(LX.grad.numpy(), X.grad.numpy(), rtol=2e-5,
                                           atol=1e-6)
                ok = np.isfinite(x)     # (torch's target gradient form differs at +-inf)
                np.testing.assert_allclose(LY.grad.numpy()[ok], Y.grad.numpy()[ok], rtol=2e-5,
                                           atol=1e-5)


@pytest.mark.parametrize("red", ["none", "mean", "sum"])
@pytest.mark.parametrize("pos,weighted", [(False, False), (True, True), (True, False)])
def test_bce_logits_gradgrad(red, pos, weighted):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3)) * 2
    y = rng.random((4, 3))
    args = [torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)]
    largs = [tl.tensor(x, requires_grad=True), tl.tensor(y, requires_grad=True)]
    w = rng.random(3) + 0.5 if weighted else None
    pw = rng.random((4, 1)) * 2 + 0.2 if pos else None

    def run(L, X, Y):
        f = L.nn.functional.binary_cross_entropy_with_logits
        W = None if w is None else L.tensor(w)
        P = None if pw is None else L.tensor(pw)
        out = f(X, Y, weight=W, pos_weight=P, reduction=red)
        g, = (torch.autograd.grad if L is torch else tl.grad)(
            out.sum() if red == "none" else out, X, create_graph=True)
        return (g * g).sum() + (g * Y).sum()
    t = run(torch, *args)
    lv = run(tl, *largs)
    np.testing.assert_allclose(lv.item(), t.item(), rtol=1e-10)
    tg = torch.autograd.grad(t, args)
    lg = tl.grad(lv, largs)
    for a, b in zip(lg, tg):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)


def test_bce_logits_grad_op_double_backward_all_inputs():
    # the fused backward op's own vjp, against tensorlib's composite by finite differences
    rng = np.random.default_rng(5)
    g, x, y = (tl.tensor(rng.standard_normal((3, 4)), requires_grad=True) for _ in range(3))
    w = tl.tensor(rng.random(4) + 0.5, requires_grad=True)
    pw = tl.tensor(rng.random(4) + 0.5, requires_grad=True)
    ins = [g, x, y, w, pw]

    def f(*v):
        return tl.apply(tl.REGISTRY["binary_cross_entropy_with_logits_grad"], *v,
                        weighted=True, pos=True, mean=True)
    gg = rng.standard_normal((3, 4))
    out = (f(*ins) * tl.tensor(gg)).sum()
    grads = tl.grad(out, ins)
    eps = 1e-6
    for t, gr in zip(ins, grads):
        base = t.detach().numpy().copy()
        num = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            vals = []
            for s in (eps, -eps):
                v = base.copy()
                v[idx] += s
                vs = [tl.tensor(v) if u is t else u.detach() for u in ins]
                vals.append((f(*vs).numpy() * gg).sum())
            num[idx] = (vals[0] - vals[1]) / (2 * eps)
        np.testing.assert_allclose(gr.numpy(), num, rtol=1e-5, atol=1e-7)


def test_bce_logits_errors_and_edges():
    with pytest.raises((ValueError, RuntimeError)):
        F.binary_cross_entropy_with_logits(tl.zeros(3, 4), tl.zeros(3, 5))
    with pytest.raises(ValueError):
        F.binary_cross_entropy_with_logits(tl.zeros(3), tl.zeros(3), reduction="avg")
    # empty: mean is NaN, sum 0 (as torch)
    assert np.isnan(F.binary_cross_entropy_with_logits(tl.zeros(0, 3), tl.zeros(0, 3)).item())
    assert F.binary_cross_entropy_with_logits(tl.zeros(0, 3), tl.zeros(0, 3),
                                              reduction="sum").item() == 0
    # 0-d and a float64 weight on float32 input (the composite, as before)
    x0 = tl.tensor(0.3, requires_grad=True)
    v = F.binary_cross_entropy_with_logits(x0, tl.tensor(1.0))
    t = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(0.3), torch.tensor(1.0))
    np.testing.assert_allclose(v.item(), t.item(), rtol=1e-6)
    v2 = F.binary_cross_entropy_with_logits(tl.ones(3, 2), tl.ones(3, 2),
                                            weight=tl.ones(2, dtype=tl.float64))
    assert np.isfinite(v2.item())
    if hasattr(_ops, "bce_logits"):
        with pytest.raises(ValueError, match="bce_logits"):
            _ops.bce_logits(np.zeros(6, np.float32), np.zeros(5, np.float32), None, None, 0,
                            None)
        with pytest.raises(ValueError, match="period"):
            _ops.bce_logits(np.zeros(6, np.float32), np.zeros(6, np.float32),
                            np.ones(4, np.float32), None, 4, None)
        with pytest.raises(ValueError):      # dtype mismatch of the weight
            _ops.bce_logits(np.zeros(6, np.float32), np.zeros(6, np.float32),
                            np.ones(6, np.float64), None, 0, None)


def test_kernels_registered():
    # the plain ufunc for equal shapes; the outer kernel only for differing ones
    assert E.ADD.cpu is np.add and E.ADD.outer is not None
    a, b = tl.tensor(np.ones((300, 1))), tl.tensor(np.ones((1, 200)))
    calls = []
    orig = E.ADD.outer
    E.ADD.outer = lambda x, y: calls.append(1) or orig(x, y)
    try:
        np.testing.assert_array_equal((a + b).numpy(), np.full((300, 200), 2.0))
        (a + a).numpy()
    finally:
        E.ADD.outer = orig
    assert calls == [1]


def test_bce_logits_noncontiguous_and_vector_widths():
    rng = np.random.default_rng(9)
    for n in (1, 7, 8, 15, 16, 17, 63, 64, 65, 1025):
        x = rng.standard_normal((n, 3)).astype(np.float32)
        y = (rng.random((n, 3)) < 0.5).astype(np.float32)
        pw = (rng.random((n, 1)) + 0.5).astype(np.float32)
        X, LX = torch.tensor(x).T, tl.tensor(x).T          # (3, n), not contiguous
        t = torch.nn.functional.binary_cross_entropy_with_logits(
            X, torch.tensor(y).T, pos_weight=torch.tensor(pw).T, reduction="none")
        v = F.binary_cross_entropy_with_logits(LX, tl.tensor(y).T, pos_weight=tl.tensor(pw).T,
                                               reduction="none")
        np.testing.assert_allclose(v.numpy(), t.numpy(), rtol=2e-6, atol=1e-6)


def test_captured_graphs_take_the_outer_kernel_for_outer_broadcasts():
    a = tl.tensor(np.random.default_rng(0).random((300, 1, 2)))
    b = tl.tensor(np.random.default_rng(1).random((1, 200, 2)))
    calls = []
    orig = E.MAXIMUM.outer
    E.MAXIMUM.outer = lambda x, y: calls.append(1) or orig(x, y)
    try:
        f = tl.function(lambda x, y: tl.maximum(x, y) * 2.0 + y)
        with tl.no_grad():
            for _ in range(2):
                got = f(a, b).numpy()
    finally:
        E.MAXIMUM.outer = orig
    np.testing.assert_array_equal(got, np.maximum(a.numpy(), b.numpy()) * 2.0 + b.numpy())
    assert len(calls) >= 2      # (the trace and the replay; not fused into a NumPy loop)


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63, reason="needs an 80-bit long double")
def test_bce_logits_float64_lanes_against_long_double():
    """float64 values, sums and backward on the vector lanes (_simd_f64.h's exp and log1p):
    within 3 ulp of the scale of the formula's terms of long double, a block-summed total
    within 1e-15 of the long double one, NaN and inf as PyTorch's."""
    rng = np.random.default_rng(21)
    n = 50_003
    x = np.concatenate([rng.standard_normal(n - 8) * 8, [np.nan, np.inf, -np.inf, 0.0, -0.0,
                                                         800.0, -800.0, 40.0]])
    y = rng.random(n)
    w, pw = rng.random(n) + 0.5, rng.random(n) * 3
    X, Y, W, PW = (a.astype(np.longdouble) for a in (x, y, w, pw))
    with np.errstate(all="ignore"):
        lw = 1 + (PW - 1) * Y
        logsig = np.minimum(X, 0) - np.log1p(np.exp(-np.abs(X)))
        ref = W * ((1 - Y) * X - lw * logsig)
        scale = (W * (np.abs((1 - Y) * X) + np.abs(lw * logsig))).astype(np.float64)
        sg = 1 / (1 + np.exp(-X))
        gref = (W * (lw * sg - PW * Y)).astype(np.float64)
    out = np.empty(n)
    _ops.bce_logits(x, y, w, pw, 0, out)
    ok = np.isfinite(scale)
    assert (np.abs(out[ok] - ref[ok].astype(np.float64)) <= 3 * 2.0 ** -52 * scale[ok]).all()
    t = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x), torch.tensor(y), weight=torch.tensor(w), pos_weight=torch.tensor(pw),
        reduction="none").numpy()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(t))
    np.testing.assert_array_equal(out[np.isinf(t)], t[np.isinf(t)])
    fin = np.isfinite(x)
    total = _ops.bce_logits(x[fin], y[fin], w[fin], pw[fin], 0, None)
    assert abs(total - float(ref[fin].sum())) <= 1e-15 * float(scale[fin].sum())
    g = np.empty(n)
    _ops.bce_logits_grad_into(np.ones(1), x, y, w, pw, 0, g, 1.0)
    ok = np.isfinite(gref)
    np.testing.assert_allclose(g[ok], gref[ok], rtol=4e-16 * 8, atol=4e-16 * 8)
