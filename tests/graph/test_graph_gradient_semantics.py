"""g.gradients follows eager autograd: detach() and no_grad are stop-gradients, second-order
gradients differentiate the first-order ones (fast first-order ops included), and a graph
with None dims is refused rather than differentiated at the traced sizes. Every symbolic
gradient is compared with eager tl.grad, in float64."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from tensorlib.graph import CaptureError
from tensorlib.graph.autodiff import gradients as graph_gradients


def _t(a, rg=False):
    return tl.tensor(np.asarray(a, np.float64), requires_grad=rg)


def _randn(*shape, seed=0, rg=False):
    return _t(np.random.default_rng(seed).standard_normal(shape), rg)


def _close(got, want, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=atol)


# --- item 1: detach() / no_grad / .data are constants, as on the tape ------------------------
W = _randn(3, 2, seed=1, rg=True)


def _detach(x):
    h = x @ W
    return (h * h.detach()).sum()


def _no_grad_target(x):
    h = x @ W
    with tl.no_grad():
        target = h * 0.5
    return ((h - target) ** 2).sum() + (h * h.detach()).sum()


def _data_alias(x):
    return ((x @ W.data) * (x @ W).tanh()).sum()


def _detach_seen_first(x):
    # the graph first meets W through its detached alias: W's own uses must still count
    return (x @ W.detach()).exp().sum() * (x @ W).sum()


def _soft_target(x):
    h = (x @ W).tanh()
    return -(F.log_softmax(h, 1) * F.softmax(h, 1).detach()).sum()


def _straight_through(x):
    h = x @ W
    return ((h - h.detach() + (h * 3.0).detach()) ** 2).sum()


def _inplace_on_detached(x):
    # in-place ops on a detached alias stay cut from W
    d = (x @ W).detach()
    d += 1.0
    d[0] = d[1] * 2.0
    return (d * (x @ W)).sum()


LOSSES = [_detach, _no_grad_target, _data_alias, _detach_seen_first, _soft_target,
          _straight_through, _inplace_on_detached]


@pytest.mark.parametrize("fn", LOSSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("x_rg", [False, True])
def test_gradients_stop_at_detach_and_no_grad_as_eager(fn, x_rg):
    x = _randn(4, 3, seed=2, rg=x_rg)
    with tl.capture(x) as g:
        loss = fn(x)
    gw, gx = g.gradients(loss, [W, g.inputs[0]])
    for feed in (x.detach(), _randn(4, 3, seed=3)):
        xe = _t(feed.numpy(), True)
        ew, ex = tl.grad(fn(xe), [W, xe])
        got = g.run({0: feed}, fetches=[gw, gx])
        _close(got[0].numpy(), ew.numpy())
        _close(got[1].numpy(), ex.numpy())


def _untracked(x):
    """Only x, which need not require grad at capture: detach() is told from the tensor
    itself by identity, and the in-place ops' own aliases are not mistaken for detach()."""
    h = x * 1.5
    h += 1.0
    h[0] = x[1] * x[2]
    s = h[1:3]
    s *= 2.0
    d = h.detach()
    e = (x * 2.0).detach()
    e += 1.0
    return ((h * d).sum() + (x.exp() * x.detach()).sum() + (x.detach() ** 2 * x).sum()
            + (e * x).sum())


@pytest.mark.parametrize("x_rg", [False, True])
def test_gradient_of_an_input_that_did_not_require_grad_at_capture(x_rg):
    x = _randn(4, 3, seed=4, rg=x_rg)
    with tl.capture(x) as g:
        loss = _untracked(x)
    (gx,) = g.gradients(loss, [g.inputs[0]])
    for feed in (x.detach(), _randn(4, 3, seed=5)):
        xe = _t(feed.numpy(), True)
        (ex,) = tl.grad(_untracked(xe), [xe])
        _close(g.run({0: feed}, fetches=[gx])[0].numpy(), ex.numpy())


def test_second_order_through_a_detach():
    w = _randn(3, 3, seed=6, rg=True)

    def fn(x):
        h = (x @ w).tanh()
        return (h * h.detach()).sum() + (h ** 3).sum()
    x = _randn(5, 3, seed=7)
    with tl.capture(x) as g:
        loss = fn(x)
    (gw,) = g.gradients(loss, [w])
    (hv,) = g.gradients(gw, [w], grad_loss=gw)
    (ew,) = tl.grad(fn(x), [w], create_graph=True)
    (eh,) = tl.grad((ew * ew.detach()).sum(), [w])
    got = g.run({0: x}, fetches=[gw, hv])
    _close(got[0].numpy(), ew.detach().numpy())
    _close(got[1].numpy(), eh.numpy())


class _StraightThrough(tl.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.round()

    @staticmethod
    def backward(ctx, g):
        return g


def test_custom_function_on_the_path_is_refused():
    w = _randn(3, 2, seed=8, rg=True)
    x = _randn(4, 3, seed=9)
    with tl.capture(x) as g:
        loss = (_StraightThrough.apply(x @ w) * 2.0).sum()
    with pytest.raises(CaptureError, match="custom autograd.Function"):
        g.gradients(loss, [w])


def _table_step(extra_detach_term):
    """An embedding + linear + cross_entropy step over time that passes.rederive rewrites
    (one projected table, one batched loss), with a loss term reading a detach()."""
    rng = np.random.default_rng(0)
    E = _t(rng.standard_normal((6, 4)), True)
    Wl = _t(rng.standard_normal((5, 4)), True)
    b = _t(np.zeros(5), True)
    opt = tl.optim.SGD([E, Wl, b], lr=0.1)

    def step(x, y):
        loss = None
        for t in range(4):
            logits = F.linear(F.embedding(x[:, t], E), Wl, b)
            lt = F.cross_entropy(logits, y[:, t])
            if extra_detach_term:
                lt = lt + 0.1 * (logits * logits.detach()).mean()
            loss = lt if loss is None else loss + lt
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step, [E, Wl, b]


@pytest.mark.parametrize("extra", [False, True])
def test_rederived_training_step_with_a_detach_matches_eager(extra):
    rng = np.random.default_rng(1)
    x, y = tl.tensor(rng.integers(0, 6, (3, 4))), tl.tensor(rng.integers(0, 5, (3, 4)))
    (se, pe), (sc, pc) = _table_step(extra), _table_step(extra)
    f = tl.function(sc)
    for _ in range(3):
        _close(float(f(x, y)), float(se(x, y)))
    for a, c in zip(pe, pc):
        _close(c.numpy(), a.numpy())
    # rewritten and derived again by g.gradients only without a detach: where a detach()ed
    # alias stops the gradient is kept per node, and a forward rewrite replaces nodes
    why = f.graphs[-1]._rederive_why
    assert (why is None) if not extra else "detach" in why


def test_a_detached_weight_in_a_rewritable_step_keeps_its_cut():
    # the review's case: the linear reads Wl.detach() and Wl learns only from an L2 term;
    # re-deriving after the table rewrite lost the cut and gave Wl a wrong gradient
    def make():
        rng = np.random.default_rng(0)
        E, Wl = _t(rng.standard_normal((6, 4)), True), _t(rng.standard_normal((5, 4)), True)
        opt = tl.optim.SGD([E, Wl], lr=0.1)

        def step(x, y):
            loss = 0.01 * (Wl * Wl).sum()
            for t in range(4):
                loss = loss + F.cross_entropy(F.linear(F.embedding(x[:, t], E), Wl.detach()),
                                              y[:, t])
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return step, [E, Wl]
    rng = np.random.default_rng(1)
    x, y = tl.tensor(rng.integers(0, 6, (3, 4))), tl.tensor(rng.integers(0, 5, (3, 4)))
    (se, pe), (sc, pc) = make(), make()
    f = tl.function(sc, optimize=True)
    for _ in range(3):
        _close(float(f(x, y)), float(se(x, y)))
    for a, c in zip(pe, pc):
        _close(c.numpy(), a.numpy())


# --- item 2: second order through fast first-order ops ---------------------------------------
def _mlp_ce():
    tl.manual_seed(0)
    lin1, lin2 = nn.Linear(5, 8).double(), nn.Linear(8, 3).double()
    y = tl.tensor(np.random.default_rng(0).integers(0, 3, 6))

    def fn(x):
        return F.cross_entropy(lin2(lin1(x).tanh()), y)
    return fn, lin1.weight, (6, 5)


def _mlp_ce_decay():
    fn, w, shape = _mlp_ce()
    return (lambda x: fn(x) + 0.01 * (w * w).sum()), w, shape


def _layer_norm():
    tl.manual_seed(1)
    lin = nn.Linear(4, 6).double()
    ln = nn.LayerNorm(6).double()

    def fn(x):
        return (ln(lin(x)).tanh() ** 2).sum()
    return fn, lin.weight, (5, 4)


def _layer_norm_affine():
    tl.manual_seed(2)
    ln = nn.LayerNorm(6).double()

    def fn(x):
        return (ln(x * 2.0).sin() * x).sum()
    return fn, ln.weight, (5, 6)


@pytest.mark.parametrize("model", [_mlp_ce, _mlp_ce_decay, _layer_norm, _layer_norm_affine],
                         ids=lambda f: f.__name__)
def test_hessian_vector_product_matches_eager(model):
    fn, w, shape = model()
    x = _randn(*shape, seed=10)
    with tl.capture(x) as g:
        loss = fn(x)
    (gw,) = g.gradients(loss, [w])
    (hv,) = g.gradients(gw, [w], grad_loss=gw)
    assert hv is not None
    for feed in (x, _randn(*shape, seed=11)):
        (ew,) = tl.grad(fn(feed), [w], create_graph=True)
        (eh,) = tl.grad((ew * ew.detach()).sum(), [w])
        got = g.run({0: feed}, fetches=[gw, hv])
        _close(got[0].numpy(), ew.detach().numpy())
        _close(got[1].numpy(), eh.numpy(), atol=1e-13)


def test_gradient_penalty_mixed_second_order_matches_eager():
    # d/dw of |d D(x)/dx|^2 / 2 (WGAN-GP) through nn.Linear's fast first-order op
    tl.manual_seed(3)
    lin1, lin2 = nn.Linear(4, 8).double(), nn.Linear(8, 1).double()

    def critic(x):
        return lin2(lin1(x).tanh()).sum()
    x = _randn(5, 4, seed=20)
    with tl.capture(x) as g:
        d = critic(x)
    (gx,) = g.gradients(d, [g.inputs[0]])
    gw = g.gradients(gx, [lin1.weight, lin2.weight], grad_loss=gx)
    feed = _randn(5, 4, seed=21)
    xe = _t(feed.numpy(), True)
    (ex,) = tl.grad(critic(xe), [xe], create_graph=True)
    ew = tl.grad(0.5 * (ex ** 2).sum(), [lin1.weight, lin2.weight], allow_unused=True)
    got = g.run({0: feed}, fetches=[v for v in gw if v is not None])
    assert gw[0] is not None
    _close(got[0].numpy(), ew[0].numpy())
    if gw[1] is not None:
        _close(got[1].numpy(), ew[1].numpy())
    else:
        assert ew[1] is None or np.allclose(ew[1].numpy(), 0)


def _ops_upstream(g, v):
    from tensorlib.graph.passes._rewrite import upstream
    ids = upstream([v])
    return {n.op for n in g.nodes if n.id in ids}


def test_first_order_keeps_fast_ops_until_differentiated_again():
    fn, w, shape = _mlp_ce()
    x = _randn(*shape, seed=12)
    with tl.capture(x) as g:
        loss = fn(x)
    (gw,) = g.gradients(loss, [w])
    ops = g.op_counts()
    assert "linear_grad" in ops and "cross_entropy_grad" in ops
    (ew,) = tl.grad(fn(x), [w])
    _close(g.run({0: x}, fetches=[gw])[0].numpy(), ew.numpy())
    # differentiating gw again makes the Value gw computed by differentiable ops
    g.gradients(gw, [w], grad_loss=gw)
    assert not _ops_upstream(g, gw) & {"linear_grad", "cross_entropy_grad"}
    _close(g.run({0: x}, fetches=[gw])[0].numpy(), ew.numpy())


def test_create_graph_gives_differentiable_ops_directly():
    fn, w, shape = _layer_norm()
    x = _randn(*shape, seed=13)
    with tl.capture(x) as g:
        loss = fn(x)
    (gw,) = graph_gradients(g, loss, [w], create_graph=True)
    assert not _ops_upstream(g, gw) & {"layer_norm_grad", "linear_grad"}
    (hv,) = g.gradients(gw, [w], grad_loss=gw)
    (ew,) = tl.grad(fn(x), [w], create_graph=True)
    (eh,) = tl.grad((ew * ew.detach()).sum(), [w])
    got = g.run({0: x}, fetches=[gw, hv])
    _close(got[0].numpy(), ew.detach().numpy())
    _close(got[1].numpy(), eh.numpy(), atol=1e-13)


def test_third_order_matches_eager():
    def fn(x):
        return (x.tanh() * x + F.softplus(x) * x.sin() + F.layer_norm(x, (7,)) * x).sum()
    x = _randn(7, seed=14)
    u = _randn(7, seed=19)
    with tl.capture(x) as g:
        loss = fn(x)
    x0 = g.inputs[0]
    (g1,) = g.gradients(loss, [x0])
    (g2,) = g.gradients(g1, [x0], grad_loss=u)      # H u
    (g3,) = g.gradients(g2, [x0], grad_loss=u)      # d(u' H u)/dx
    feed = _randn(7, seed=15)
    xe = _t(feed.numpy(), True)
    (e1,) = tl.grad(fn(xe), [xe], create_graph=True)
    (e2,) = tl.grad(e1, [xe], grad_outputs=u, create_graph=True)
    (e3,) = tl.grad(e2, [xe], grad_outputs=u)
    got = g.run({0: feed}, fetches=[g1, g2, g3])
    for a, e in zip(got, (e1, e2, e3)):
        _close(a.numpy(), e.detach().numpy())


def test_node_without_vjp_on_the_path_raises():
    # a first-order op added by hand (no gradients call derived it): it cannot be skipped
    x = _randn(4, 3, seed=16)
    t = tl.tensor(np.array([0, 2, 1, 0]))
    with tl.capture(x, t) as g:
        loss = F.cross_entropy(x * 1.0, t)
    xv, tv = g.inputs
    node = g.add_node("cross_entropy_grad", [xv, tv, g.value(loss)],
                      {"ignore_index": -100, "reduction": "mean"}, "cpu",
                      [((4, 3), np.dtype(np.float64))])
    total = g.add_node("sum", [node.outputs[0]], {"axis": None, "keepdims": False}, "cpu",
                       [((), np.dtype(np.float64))])
    with pytest.raises(CaptureError, match="no gradient rule"):
        g.gradients(total.outputs[0], [xv])


# --- item 3: None dims -----------------------------------------------------------------------
def test_gradients_with_none_dims_are_refused():
    v = _randn(3, seed=17, rg=True)

    def fn(x):
        return (x * v).tanh().sum()
    x5 = _randn(5, 3, seed=18)
    with tl.capture(x5, input_shapes=[(None, 3)]) as g:
        loss = fn(x5)
    with pytest.raises(ValueError, match="(?i)capture per shape"):
        g.gradients(loss, [v])
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, 3), "float64")],
                    optimize=False)
    with tl.no_grad():
        f(x5)
    with pytest.raises(ValueError, match="(?i)capture per shape"):
        f.graphs[0].gradients(f.graphs[0].outputs[0], [v])
    # capturing per shape is right for each shape
    for n in (1, 7):
        xn = _randn(n, 3, seed=n)
        with tl.capture(xn) as gn:
            ln = fn(xn)
        (gv,) = gn.gradients(ln, [v])
        (ev,) = tl.grad(fn(xn), [v])
        _close(gn.run({0: xn}, fetches=[gv])[0].numpy(), ev.numpy())


def test_cse_keeps_a_no_grad_twin_apart_from_its_grad_mode_op():
    # CSE merged them and the survivor's no_grad stopped the gradient: None
    rng = np.random.default_rng(0)
    w = _t(rng.standard_normal((3, 3)), True)

    def fn(x):
        with tl.no_grad():
            target = x @ w
        h = x @ w
        return ((h - target) ** 2).sum() + (h * 2.0).sum()
    x = _t(rng.standard_normal((4, 3)))
    (want,) = tl.grad(fn(x), [w])
    with tl.capture(x) as g:
        loss = fn(x)
    g.set_outputs(loss)
    from tensorlib.graph.passes import cse
    cse(g)
    (gw,) = g.gradients(loss, [w])
    _close(g.run({0: x}, fetches=[gw])[0].numpy(), want.numpy())


def test_a_detached_leaf_that_requires_grad_stops_the_gradient():
    # truncated BPTT: h = h.detach().requires_grad_() was taken for h itself
    rng = np.random.default_rng(2)
    w = _t(rng.standard_normal((3, 3)), True)

    def fn(x):
        h = (x @ w).tanh()
        h = h.detach().requires_grad_()
        return ((h @ w).tanh() ** 2).sum()
    x = _t(rng.standard_normal((2, 3)))
    (want,) = tl.grad(fn(x), [w])
    with tl.capture(x) as g:
        loss = fn(x)
    g.set_outputs(loss)
    (gw,) = g.gradients(loss, [w])
    _close(g.run({0: x}, fetches=[gw])[0].numpy(), want.numpy())
