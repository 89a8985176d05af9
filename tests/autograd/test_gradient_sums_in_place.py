"""The backward walk adds a tensor's gradients in place into sums it made itself: the
results equal the recorded (create_graph) walk's, which adds out of place, and no tensor a
caller or a hook can see is ever changed."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorlib as tl

UNARY = [lambda a: a * 1.5, lambda a: a.tanh(), lambda a: a * a, lambda a: a.exp() * 0.1,
         lambda a: a.sum(0, keepdim=True).expand(3, 4), lambda a: a.T.T]
BINARY = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b]


def _program(draw):
    """A random DAG over 3 leaves where values are reused many times (up to 12 steps)."""
    steps = []
    for i in range(draw(st.integers(3, 12))):
        if draw(st.booleans()):
            steps.append(("u", draw(st.integers(0, len(UNARY) - 1)),
                          draw(st.integers(0, 2 + i))))
        else:
            steps.append(("b", draw(st.integers(0, len(BINARY) - 1)),
                          draw(st.integers(0, 2 + i)), draw(st.integers(0, 2 + i))))
    return steps


def _run(steps, leaves):
    vals = list(leaves)
    for s in steps:
        if s[0] == "u":
            vals.append(UNARY[s[1]](vals[s[2] % len(vals)]))
        else:
            vals.append(BINARY[s[1]](vals[s[2] % len(vals)], vals[s[3] % len(vals)]))
    return sum(v.sum() for v in vals[3:]) + vals[0].sum() * 0.0


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_in_place_sums_equal_recorded_sums(data):
    steps = _program(data.draw)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    base = [rng.standard_normal((3, 4)) * 0.5 for _ in range(3)]
    grads = []
    for create in (False, True):
        xs = [tl.tensor(b, requires_grad=True) for b in base]
        _run(steps, xs).backward(create_graph=create)
        grads.append([x.grad.detach().numpy() if x.grad is not None else None for x in xs])
    for a, b in zip(*grads):
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_caller_gradient_and_hooked_gradients_are_never_changed():
    x = tl.tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2.0
    seen = []
    y.register_hook(lambda g: seen.append(g) or None)
    z = y + y + y + y            # y's gradient is a sum of four
    out = z * 1.0
    given_g = tl.tensor(np.full((2, 3), 0.5))
    before = given_g.numpy().copy()
    out.backward(gradient=given_g)
    np.testing.assert_array_equal(given_g.numpy(), before)
    np.testing.assert_array_equal(seen[0].numpy(), np.full((2, 3), 2.0))
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 4.0))
    kept = x.grad
    (x * 3.0 + x * 3.0 + x).sum().backward()      # accumulates into .grad, as before
    assert x.grad is kept
    np.testing.assert_array_equal(kept.numpy(), np.full((2, 3), 11.0))


def test_retained_intermediate_and_leaf_sums():
    a = tl.tensor(np.arange(4.0), requires_grad=True)
    h = a * 1.0
    h.retain_grad()
    out = (h * 2.0).sum() + (h * 3.0).sum() + (h * 4.0).sum()
    out.backward()
    np.testing.assert_array_equal(h.grad.numpy(), np.full(4, 9.0))
    np.testing.assert_array_equal(a.grad.numpy(), np.full(4, 9.0))
    ga, = tl.autograd.grad((a * a).sum() + (a * a).sum() + a.sum(), [a])
    np.testing.assert_array_equal(ga.numpy(), 4 * np.arange(4.0) + 1)


# --- rules that add into the walk's sums (OpDef.grad_sums: linear, embedding, lstm_cell) ---------
@pytest.fixture
def every_host_sum():
    """The walk offers the rules host sums of any size (by default only large ones, where
    adding into them saves more than the handing over costs)."""
    from tensorlib import _core
    old = _core.set_host_sum_min(0)
    yield
    _core.set_host_sum_min(old)


def _recurrent_loss(p, x, idx, steps, pad, share_bias):
    """A loop that reuses every weight at each step, as a char-RNN: an embedding lookup, an
    LSTM cell, an output layer, a layer whose weight is new at each step, and a linear layer
    whose input and weight are one tensor."""
    F = tl.nn.functional
    h = c = tl.zeros(3, 4, dtype=tl.float64)
    tot = (F.linear(p["sq"], p["sq"]) ** 2).sum()       # x and w: one leaf, two gradients
    for t in range(steps):
        e = F.embedding(idx[t], p["emb"], padding_idx=pad) + x[t]
        b2 = p["b_ih"] if share_bias else p["b_hh"]
        h, c = F.lstm_cell(e, (h, c), p["w_ih"], p["w_hh"], p["b_ih"], b2)
        y = F.linear(h, p["w_o"], p["b_o"])
        # a weight made anew at each step: its input's sum exists, its own does not yet
        z = F.linear(h, p["w_o"] * float(t + 1), p["b_o"])
        tot = tot + (y * y).sum() + (h * c).sum() + (z * y).sum()
    return tot


def _params(rng):
    shapes = {"emb": (6, 5), "w_ih": (16, 5), "w_hh": (16, 4), "b_ih": (16,), "b_hh": (16,),
              "w_o": (3, 4), "b_o": (3,), "sq": (4, 4)}
    return {k: rng.standard_normal(s) * 0.4 for k, s in shapes.items()}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.integers(1, 5), pad=st.sampled_from([None, 0, 2]), share=st.booleans(),
       seed=st.integers(0, 2**31))
def test_rules_adding_into_sums_equal_recorded_sums(every_host_sum, steps, pad, share, seed):
    rng = np.random.default_rng(seed)
    base = _params(rng)
    x = tl.tensor(rng.standard_normal((steps, 3, 5)))
    idx = tl.tensor(rng.integers(0, 6, (steps, 3)))
    got = []
    for create in (False, True):
        p = {k: tl.tensor(v, requires_grad=True) for k, v in base.items()}
        _recurrent_loss(p, x, idx, steps, pad, share).backward(create_graph=create)
        got.append({k: t.grad.detach().numpy() for k, t in p.items() if t.grad is not None})
    assert got[0].keys() == got[1].keys()
    for k in got[0]:
        np.testing.assert_allclose(got[0][k], got[1][k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_rules_add_into_sums_for_weights_used_at_every_step(monkeypatch, every_host_sum):
    """From the third step on, a weight's gradient goes into the running sum: the kernels
    see the sums (and no add op runs for them), and the values stay right."""
    from tensorlib.ops import nn_layers, nn_rnn
    seen = {"linear_grad": [], "embedding_grad": [], "lstm_cell_grad": []}
    for op in (nn_layers.LINEAR_GRAD, nn_layers.EMBEDDING_GRAD, nn_rnn.LSTM_CELL_GRAD):
        k = op.kernel_for("cpu")

        def spy(*a, _k=k, _n=op.name, **kw):
            seen[_n].append((len(a), kw.get("into")))
            return _k(*a, **kw)
        monkeypatch.setitem(op.kernels, "cpu", spy)
        monkeypatch.setattr(op, "cpu", spy)
        op._cache.pop("cpu", None)
    try:
        rng = np.random.default_rng(0)
        p = {k: tl.tensor(v, requires_grad=True) for k, v in _params(rng).items()}
        steps = 6
        x = tl.tensor(rng.standard_normal((steps, 3, 5)))
        idx = tl.tensor(rng.integers(0, 6, (steps, 3)))
        _recurrent_loss(p, x, idx, steps, 2, False).backward()
    finally:
        for op in (nn_layers.LINEAR_GRAD, nn_layers.EMBEDDING_GRAD, nn_rnn.LSTM_CELL_GRAD):
            op._cache.pop("cpu", None)
    # the output layer: w_o and b_o into their sums from the third step back
    outs = [i for n, i in seen["linear_grad"] if i is not None and i[1] and i[2]]
    assert len(outs) >= steps - 2
    # the table: its running sum is passed as a third input
    assert sum(n == 3 for n, _ in seen["embedding_grad"]) >= steps - 2
    # the cell: both biases' sums after the five regular inputs (no activations' gradient:
    # nothing reads F.lstm_cell's activations)
    assert sum(n == 7 for n, _ in seen["lstm_cell_grad"]) >= steps - 2
    ref = {k: tl.tensor(v, requires_grad=True)
           for k, v in _params(np.random.default_rng(0)).items()}
    _recurrent_loss(ref, x, idx, steps, 2, False).backward(create_graph=True)
    for k in p:
        np.testing.assert_allclose(p[k].grad.numpy(), ref[k].grad.detach().numpy(),
                                   rtol=1e-10, atol=1e-12, err_msg=k)


def test_sums_the_rules_add_into_are_never_seen_by_hooks_or_callers(every_host_sum):
    F = tl.nn.functional
    w = tl.tensor(np.ones((2, 3)), requires_grad=True)
    h = tl.tensor(np.ones((4, 2)), requires_grad=True)
    seen = []
    hh = h * 1.0
    hh.register_hook(lambda g: seen.append(g.numpy().copy()) or None)
    xs = [tl.tensor(np.full((4, 3), float(i))) for i in range(4)]
    out = sum((F.linear(x, w).T @ hh).sum() for x in xs)
    out.backward()
    # w's gradient: the sum over steps of g.T @ x, with g = hh @ 1 = 2 everywhere; the
    # hooked hh saw its total once
    assert len(seen) == 1
    np.testing.assert_allclose(h.grad.numpy(), seen[0])
    want_w = sum(np.full((4, 2), 2.0).T @ np.full((4, 3), float(i)) for i in range(4))
    np.testing.assert_allclose(w.grad.numpy(), want_w)
    kept = w.grad
    before = kept.numpy().copy()
    out2 = sum(F.linear(x, w).sum() for x in xs)
    g_w, = tl.autograd.grad(out2, [w])
    np.testing.assert_array_equal(kept.numpy(), before)    # .grad untouched by tl.grad
    assert g_w is not kept


@pytest.mark.parametrize("n, offered", [(4, False), (128, True)])
def test_host_sums_are_offered_to_rules_from_a_size_on(monkeypatch, n, offered):
    """On the host only sums of 2**14 elements or more go to the rules: below that handing
    one over costs more than the add it saves (the walk still adds in place itself)."""
    from tensorlib.ops import nn_layers
    op = nn_layers.LINEAR_GRAD
    k = op.kernel_for("cpu")
    seen = []

    def spy(*a, **kw):
        seen.append(kw.get("into"))
        return k(*a, **kw)
    monkeypatch.setitem(op.kernels, "cpu", spy)
    monkeypatch.setattr(op, "cpu", spy)
    w = tl.tensor(np.eye(n) * 0.5, requires_grad=True)
    h = tl.tensor(np.ones((2, n)))
    for _ in range(4):
        h = tl.nn.functional.linear(h, w)
    h.sum().backward()
    assert any(i is not None and i[1] for i in seen) == offered
    # step t: g_t.T @ h_(t-1) = 2 rows x 0.5**(4-t) x 0.5**(t-1) in every entry
    np.testing.assert_allclose(w.grad.numpy(), np.full((n, n), 4 * 2 * 0.5 ** 3))
