"""Custom ``tl.autograd.Function`` with a ``jvp`` staticmethod under forward AD, as PyTorch's
forward-mode protocol (``ctx.save_for_forward``, ``jvp(ctx, *tangents)``, setup_context)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.autograd.forward_ad as fwAD

torch = pytest.importorskip("torch")
tfwAD = torch.autograd.forward_ad


def _np(t):
    return np.asarray(t.detach().numpy() if hasattr(t, "detach") else t)


def _make(lib):
    """Functions whose jvp is deliberately NOT the derivative of forward (3 * tx + ty * x),
    so a result that followed forward's ops or backward would differ."""
    class Classic(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y, k):
            ctx.save_for_forward(x)
            ctx.k = k
            return x.exp() * y

        @staticmethod
        def backward(ctx, g):
            return g, g, None

        @staticmethod
        def jvp(ctx, tx, ty, tk):
            assert tk is None
            (x,) = ctx.saved_tensors
            return 3 * tx + ty * x * ctx.k

    class TwoStep(lib.autograd.Function):
        @staticmethod
        def forward(x, y):
            return x.sin(), x * y

        @staticmethod
        def setup_context(ctx, inputs, output):
            x, y = inputs
            ctx.save_for_forward(x, y)

        @staticmethod
        def backward(ctx, g1, g2):
            return g1, g2

        @staticmethod
        def jvp(ctx, tx, ty):
            x, y = ctx.saved_tensors
            return tx * 2.0 + ty, tx * y * 5.0

    return Classic, TwoStep


TC, TT = _make(tl)
PC, PT = _make(torch)


def _tl_fwd(fn, xs, ts):
    with fwAD.dual_level():
        duals = [fwAD.make_dual(tl.tensor(x), tl.tensor(t)) if t is not None else tl.tensor(x)
                 for x, t in zip(xs, ts)]
        out = fn(*duals)
        outs = out if isinstance(out, tuple) else (out,)
        return [(_np(fwAD.unpack_dual(o).primal), fwAD.unpack_dual(o).tangent) for o in outs]


def _torch_fwd(fn, xs, ts):
    with tfwAD.dual_level():
        duals = [tfwAD.make_dual(torch.tensor(x), torch.tensor(t)) if t is not None
                 else torch.tensor(x) for x, t in zip(xs, ts)]
        out = fn(*duals)
        outs = out if isinstance(out, tuple) else (out,)
        return [(tfwAD.unpack_dual(o).primal.numpy(), tfwAD.unpack_dual(o).tangent)
                for o in outs]


arrays = st.integers(1, 5).flatmap(lambda n: st.tuples(*[
    st.lists(st.floats(-2, 2), min_size=n, max_size=n).map(np.array) for _ in range(4)]))


@settings(max_examples=25, deadline=None)
@given(arrays, st.sampled_from(["x", "y", "both"]))
def test_classic_jvp_matches_torch_forward_ad(a, which):
    x, y, tx, ty = a
    ts = [tx if which in ("x", "both") else None, ty if which in ("y", "both") else None]
    got = _tl_fwd(lambda p, q: TC.apply(p, q, 2.0), [x, y], ts)
    want = _torch_fwd(lambda p, q: PC.apply(p, q, 2.0), [x, y], ts)
    for (gp, gt), (wp, wt) in zip(got, want):
        np.testing.assert_allclose(gp, wp, rtol=1e-12)
        np.testing.assert_allclose(_np(gt), wt.numpy(), rtol=1e-12, atol=1e-12)
    # the deliberately different rule is what came out (not exp(x) * y's derivative)
    expect = 3 * (ts[0] if ts[0] is not None else 0) + \
        (ts[1] if ts[1] is not None else 0) * x * 2.0
    np.testing.assert_allclose(_np(got[0][1]), np.broadcast_to(expect, x.shape), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(arrays)
def test_setup_context_jvp_matches_torch_func_jvp(a):
    x, y, tx, ty = a
    got = _tl_fwd(TT.apply, [x, y], [tx, ty])
    _, want = torch.func.jvp(PT.apply, (torch.tensor(x), torch.tensor(y)),
                             (torch.tensor(tx), torch.tensor(ty)))
    for (_, gt), wt in zip(got, want):
        np.testing.assert_allclose(_np(gt), wt.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_np(got[0][1]), 2 * tx + ty, atol=1e-12)


def test_jvp_composes_with_surrounding_ops_and_reverse_mode():
    x = np.array([0.3, -1.2, 0.7])
    t = np.array([1.0, 2.0, -0.5])
    y = np.array([0.5, 0.25, 2.0])

    def f(lib, fn, p, q):
        return (fn.apply(p.sin(), q, 2.0) * 2.0).sum()
    with fwAD.dual_level():
        xt = tl.tensor(x, requires_grad=True)
        d = fwAD.make_dual(xt, tl.tensor(t))
        o = f(tl, TC, d, tl.tensor(y))
        tan = fwAD.unpack_dual(o).tangent
        # reverse over forward: the tangent is differentiable in x
        (gx,) = tl.autograd.grad(tan, [xt])
    with tfwAD.dual_level():
        xp = torch.tensor(x, requires_grad=True)
        d = tfwAD.make_dual(xp, torch.tensor(t))
        o = f(torch, PC, d, torch.tensor(y))
        ptan = tfwAD.unpack_dual(o).tangent
        (px,) = torch.autograd.grad(ptan, [xp])
    np.testing.assert_allclose(_np(tan), ptan.item(), rtol=1e-12)
    np.testing.assert_allclose(_np(gx), px.numpy(), rtol=1e-12, atol=1e-12)


def test_function_without_jvp_still_follows_forward():
    class Sq(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g
    with fwAD.dual_level():
        d = fwAD.make_dual(tl.tensor([1.0, 3.0], dtype="float64"),
                           tl.tensor([1.0, 1.0], dtype="float64"))
        out = fwAD.unpack_dual(Sq.apply(d)).tangent
    np.testing.assert_allclose(_np(out), [2.0, 6.0])


def test_jvp_errors_name_the_function():
    class Bad(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, a, b):
            return a

        @staticmethod
        def jvp(ctx, tx):
            return tx * 2       # one tangent for two outputs

    class BadShape(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g

        @staticmethod
        def jvp(ctx, tx):
            return tx.sum()
    with fwAD.dual_level():
        d = fwAD.make_dual(tl.ones(3, dtype="float64"), tl.ones(3, dtype="float64"))
        with pytest.raises(RuntimeError, match="Bad.jvp returned 1 tangents, expected 2"):
            Bad.apply(d)
        with pytest.raises(RuntimeError, match="BadShape.jvp returned a tangent of shape"):
            BadShape.apply(d)
    with pytest.raises(TypeError, match="save_for_forward"):
        tl.autograd.function.Context().save_for_forward(np.ones(2))


def test_no_level_means_no_jvp_call():
    calls = []

    class F(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

        @staticmethod
        def jvp(ctx, tx):
            calls.append(1)
            return tx
    x = tl.ones(2, requires_grad=True)
    F.apply(x).sum().backward()
    assert not calls
    np.testing.assert_allclose(_np(x.grad), [2.0, 2.0])
