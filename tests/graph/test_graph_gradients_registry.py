"""Symbolic gradients: for every registry op, graph gradients equal eager gradients, also
for new feeds (so no vjp froze an input value); whole training steps as one graph."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from cases import draw_inputs, load_all
from tensorlib.graph import CaptureError

CASES = load_all()
GRAD = {c.id: c for c in CASES if c.grad}
# x[mask] with the mask a graph input has a data-dependent shape: capture raises (an integer
# index tensor that is a graph input becomes a take, so it is differentiated as any op)
INDEXES_WITH_GRAPH_VALUES = {"getitem-bool"}


def _outs(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _loss(outs, weights):
    total = None
    for o, w in zip(outs, weights):
        if w is None:
            continue
        term = (o * tl.tensor(w)).sum()
        total = term if total is None else total + term
    return total


def _perturb(arrays, rng):
    """New feeds of the same shapes: floats moved a little, integers/bools permuted."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind == "f":
            out.append(a + 0.01 * rng.standard_normal(a.shape))
        elif a.size > 1:
            # along the last axis only: each row keeps its own values (a (2, nnz) index pair
            # array keeps its rows' ranges)
            out.append(rng.permutation(a, axis=-1) if a.ndim else a)
        else:
            out.append(a)
    return out


@pytest.mark.parametrize("cid", sorted(GRAD))
@settings(max_examples=3)
@given(data=st.data())
def test_graph_gradients_equal_eager_for_every_op(cid, data):
    case = GRAD[cid]
    arrays, params = draw_inputs(case, data.draw)
    arrays = [np.asarray(a) for a in arrays]
    diff = case.diff if case.diff is not None else tuple(
        k for k, a in enumerate(arrays) if a.dtype.kind == "f")
    if not diff:
        pytest.skip("no differentiable input")
    ts = [tl.tensor(a) for a in arrays]
    for k in diff:
        ts[k].requires_grad_(True)
    if cid in INDEXES_WITH_GRAPH_VALUES:
        with pytest.raises(CaptureError, match="indexing with a tensor"):
            with tl.capture(*ts):
                case.fn(*ts, **params)
        return
    with tl.capture(*ts) as g:
        outs = _outs(case.fn(*ts, **params))
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(o.shape) if o.dtype.kind == "f" else None for o in outs]
    weights = [None if w is None else w.astype(o.dtype) for w, o in zip(weights, outs)]
    if all(w is None for w in weights):
        pytest.skip("no floating-point output")
    with tl.capture(*ts) as g:
        loss = _loss(_outs(case.fn(*ts, **params)), weights)
    grads = g.gradients(loss, [g.inputs[k] for k in diff])
    # new feeds: a gradient graph that froze an input value would disagree here
    new = _perturb(arrays, rng)
    with np.errstate(all="ignore"):
        fetch = [v for v in grads if v is not None]
        got = g.run({i: a for i, a in enumerate(new)}, fetches=fetch) if fetch else []
        ets = [tl.tensor(a) for a in new]
        for k in diff:
            ets[k].requires_grad_(True)
        eloss = _loss(_outs(case.fn(*ets, **params)), weights)
        want = tl.grad(eloss, [ets[k] for k in diff], allow_unused=True)
    it = iter(got)
    for v, w in zip(grads, want):
        if v is None:
            assert w is None or np.allclose(w.numpy(), 0), f"{cid}: graph has no gradient"
            continue
        gv = next(it).numpy()
        ref = np.zeros(gv.shape) if w is None else w.numpy()
        np.testing.assert_allclose(gv, ref, rtol=1e-6, atol=1e-8, equal_nan=True,
                                   err_msg=f"{cid}: graph gradient != eager gradient")


def test_padding_mask_in_a_graph_gradient_follows_the_fed_indices():
    # embedding_grad's vjp zeroes the padding rows; in a graph it must compare the indices
    # the graph is fed, not keep the traced ones' mask as a constant (found by the thorough
    # profile of the test above, whose permuted feeds only sometimes move a padding index)
    from tensorlib.ops.nn_layers import EMBEDDING_GRAD
    from tensorlib._apply import apply
    w = tl.tensor(np.arange(1.0, 7.0).reshape(3, 2))
    gin = tl.tensor(np.ones((2, 2)), requires_grad=True)
    idx = tl.tensor([0, 1])

    def loss_of(g, i):
        return (apply(EMBEDDING_GRAD, g, i, num_weights=3, padding_idx=0) * w).sum()
    with tl.capture(gin, idx) as g:
        loss = loss_of(gin, idx)
    (grad,) = g.gradients(loss, [g.inputs[0]])
    for feed in ([0, 1], [1, 0], [2, 2]):
        got = g.run({0: np.ones((2, 2)), 1: np.array(feed)}, fetches=[grad])[0].numpy()
        want = w.numpy()[feed] * (np.array(feed) != 0)[:, None]
        np.testing.assert_array_equal(got, want)


# --- whole training steps ------------------------------------------------------------------
def _mlp(seed=0):
    tl.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 4))


def _data(n=5, seed=0):
    rng = np.random.default_rng(seed)
    x = tl.tensor(rng.standard_normal((8, 6)).astype(np.float32))
    y = tl.tensor(rng.integers(0, 4, 8))
    return [(x * (1 + 0.1 * k), tl.tensor(np.roll(y.numpy(), k))) for k in range(n)]


def _hand_sgd_step(model, x, y):
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    with tl.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
            p.grad = None
    return loss


def test_step_with_hand_written_sgd_is_one_graph_equal_to_eager():
    m1, m2 = _mlp(), _mlp()
    step = tl.function(_hand_sgd_step)
    for x, y in _data():
        l1 = _hand_sgd_step(m1, x, y)
        l2 = step(m2, x, y)
        assert abs(float(l1) - float(l2)) < 1e-5
    assert step.trace_count == 1
    g = step.graphs[0]
    ops = g.op_counts()
    assert ops.get("assign", 0) == 4            # one update per parameter
    assert any(op in ops for op in ("matmul", "linear"))
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(p1.numpy(), p2.numpy(), rtol=1e-5, atol=1e-6)


def _opt_step(model, opt, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


@pytest.mark.parametrize("opt_name, kw", [("SGD", {"lr": 0.1}),
                                          ("SGD", {"lr": 0.1, "momentum": 0.9}),
                                          ("Adam", {"lr": 0.01}),
                                          ("AdamW", {"lr": 0.01}),
                                          ("Adam", {"lr": 0.01, "amsgrad": True}),
                                          ("RMSprop", {"lr": 0.01, "momentum": 0.5}),
                                          ("Adagrad", {"lr": 0.1, "lr_decay": 0.01})])
def test_step_with_tl_optim_equal_to_eager(opt_name, kw):
    m1, m2 = _mlp(), _mlp()
    o1 = getattr(tl.optim, opt_name)(m1.parameters(), **kw)
    o2 = getattr(tl.optim, opt_name)(m2.parameters(), **kw)

    step = _opt_step

    cstep = tl.function(step, max_retraces=100)
    for x, y in _data(6):
        l1 = step(m1, o1, x, y)
        l2 = cstep(m2, o2, x, y)
        assert abs(float(l1) - float(l2)) < 1e-5
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(p1.numpy(), p2.numpy(), rtol=1e-5, atol=1e-6)
    # gradients and optimizer buffers appear on the first call: at most one retrace; the
    # step count is a tensor the graph advances, so it never retraces
    assert cstep.trace_count <= 2, cstep.retrace_reasons
    for p2 in m2.parameters():
        if "step" in o2.state.get(p2, {}):
            assert int(o2.state[p2]["step"]) == 6


_SCHEDULES = {
    "ExponentialLR": lambda o: tl.optim.lr_scheduler.ExponentialLR(o, gamma=0.7),
    "OneCycleLR": lambda o: tl.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=8),
    "CyclicLR": lambda o: tl.optim.lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=2)}


@pytest.mark.parametrize("opt_name,kw", [("SGD", {"momentum": 0.9}), ("Adam", {}),
                                         ("RMSprop", {"momentum": 0.5})])
@pytest.mark.parametrize("sched", sorted(_SCHEDULES))
def test_tensor_learning_rate_with_a_per_step_schedule_does_not_retrace(opt_name, kw, sched):
    """lr=tl.tensor(...) is updated in place by the scheduler: the graph reads it each
    replay. OneCycleLR and CyclicLR also move the momentum (Adam's first beta) every step;
    with a tensor learning rate they keep the momentum a tensor too, written in place."""
    m1, m2 = _mlp(), _mlp()
    o1 = getattr(tl.optim, opt_name)(m1.parameters(), lr=0.05, **kw)
    o2 = getattr(tl.optim, opt_name)(m2.parameters(), lr=tl.tensor(0.05), **kw)
    s1, s2 = _SCHEDULES[sched](o1), _SCHEDULES[sched](o2)
    cstep = tl.function(_opt_step)
    for x, y in _data(7):
        l1 = _opt_step(m1, o1, x, y)
        l2 = cstep(m2, o2, x, y)
        s1.step()
        s2.step()
        assert abs(float(l1) - float(l2)) < 1e-5
        assert [float(v) for v in s1.get_last_lr()] == pytest.approx(
            [float(v) for v in s2.get_last_lr()])
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(p1.numpy(), p2.numpy(), rtol=1e-5, atol=1e-6)
    assert cstep.trace_count <= 2, cstep.retrace_reasons
    g = o2.param_groups[0]
    assert isinstance(g["lr"], tl.Tensor)
    if sched != "ExponentialLR":
        assert isinstance(g["betas"][0] if "betas" in g else g["momentum"], tl.Tensor)


def test_grad_accumulation_across_calls_matches_eager():
    m1, m2 = _mlp(), _mlp()

    def accumulate(model, x, y):
        F.cross_entropy(model(x), y).backward()

    c = tl.function(accumulate)
    for x, y in _data(4):
        accumulate(m1, x, y)
        c(m2, x, y)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(p1.grad.numpy(), p2.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_gradients_of_captured_graph_and_second_order():
    x = tl.tensor([0.3, -1.2, 2.0])
    with tl.capture(x) as g:
        y = (x.tanh() * x).sum()
    (gx,) = g.gradients(y, [g.inputs[0]])
    (ggx,) = g.gradients(_sum(g, gx), [g.inputs[0]])
    xn = np.array([0.5, 0.1, -0.7], np.float32)
    got = g.run({0: xn}, fetches=[gx, ggx])
    t = tl.tensor(xn, requires_grad=True)
    (e1,) = tl.grad((t.tanh() * t).sum(), [t], create_graph=True)
    (e2,) = tl.grad(e1.sum(), [t])
    np.testing.assert_allclose(got[0].numpy(), e1.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(got[1].numpy(), e2.numpy(), rtol=1e-5)


def _sum(g, v):
    """Add a sum node over Value v to graph g (through a capture-free tracer-less path)."""
    node = g.add_node("sum", [v], {"axis": None, "keepdims": False}, "cpu", [((), v.dtype)])
    return node.outputs[0]
