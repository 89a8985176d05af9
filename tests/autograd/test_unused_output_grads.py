"""Outputs of a multi-output op that no gradient reaches: the backward pass hands the op's
rule zeros for them, or None where the op says its rule takes None (``OpDef.none_grads``);
F.lstm_cell's rule takes None for its activations (read by no one), so its backward makes no
zero arrays and skips that term, with the same gradients."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.ops import nn_rnn
from tensorlib.ops.registry import REGISTRY, OpDef, register


@pytest.fixture
def scratch():
    """Names of ops a test registers, taken out of the registry afterwards (the registry-wide
    tests expect a case and an ONNX rule for every op)."""
    names = []
    yield names
    for n in names:
        REGISTRY.pop(n, None)


def _split_op(name, none_grads, scratch):
    seen = []
    scratch.append(name)

    def vjp(n, g0, g1):
        seen.append((g0, g1))
        g1 = 0.0 if g1 is None else g1
        return (g0 * 2.0 + g1 * 3.0,)
    op = register(OpDef(name, lambda xp, x: (x * 2.0, x * 3.0), vjp=vjp,
                        infer=lambda x: (x, x), none_grads=none_grads))
    return op, seen


@pytest.mark.parametrize("none_grads", [False, True])
@pytest.mark.parametrize("create_graph", [False, True])
def test_rule_gets_none_or_zeros_for_an_unused_output(none_grads, create_graph, scratch):
    op, seen = _split_op(f"_test_two_outputs_{int(none_grads)}_{int(create_graph)}",
                         none_grads, scratch)
    x = tl.tensor(np.arange(3.0), requires_grad=True)
    a, _ = tl.apply(op, x)
    (gx,) = tl.autograd.grad((a * a).sum(), [x], create_graph=create_graph)
    np.testing.assert_allclose(gx.detach().numpy(), 8.0 * np.arange(3.0))
    (g0, g1), = seen
    assert g0 is not None
    if none_grads:
        assert g1 is None
    else:
        np.testing.assert_array_equal(g1.numpy(), np.zeros(3))


def test_complex_inputs_take_the_same_convention(scratch):
    op, seen = _split_op("_test_two_outputs_complex", True, scratch)
    op.complex = "holomorphic"
    x = tl.tensor(np.array([1 + 2j, 3 - 1j]), requires_grad=True)
    a, _ = tl.apply(op, x)
    (a.abs() ** 2).sum().backward()
    assert seen[0][1] is None
    np.testing.assert_allclose(x.grad.numpy(), 8.0 * np.array([1 + 2j, 3 - 1j]))


def test_lstm_cell_backward_makes_no_zeros_and_matches_the_recorded_rule(monkeypatch):
    rng = np.random.default_rng(0)
    N, I, H, T = 3, 4, 5, 4

    def params():
        r = np.random.default_rng(1)
        return [tl.tensor(r.standard_normal(s), requires_grad=True)
                for s in [(4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]]
    xs = [tl.tensor(rng.standard_normal((N, I))) for _ in range(T)]

    def loss(ps):
        h = c = tl.zeros(N, H, dtype=tl.float64)
        out = 0.0
        for x in xs:
            h, c = F.lstm_cell(x, (h, c), *ps)
            out = out + (h * h).sum()
        return out     # the last c is unused too
    calls = []
    k = nn_rnn.LSTM_CELL_GRAD.kernel_for("cpu")

    def spy(*a, **kw):
        calls.append(kw.get("acts_grad", True))
        return k(*a, **kw)
    monkeypatch.setitem(nn_rnn.LSTM_CELL_GRAD.kernels, "cpu", spy)
    monkeypatch.setattr(nn_rnn.LSTM_CELL_GRAD, "cpu", spy)
    nn_rnn.LSTM_CELL_GRAD._cache.pop("cpu", None)
    zeros = []
    orig = nn_rnn.LSTM_CELL.vjp
    monkeypatch.setattr(nn_rnn.LSTM_CELL, "vjp",
                        lambda n, *g: zeros.append(sum(x is None for x in g)) or orig(n, *g))
    try:
        ps = params()
        loss(ps).backward()
    finally:
        nn_rnn.LSTM_CELL_GRAD._cache.pop("cpu", None)
    assert calls == [False] * T          # the fused kernel, without an activations' gradient
    assert zeros == [2] + [1] * (T - 1)  # acts at every step, and the last step's c
    ref = params()
    loss(ref).backward(create_graph=True)     # the recorded rule (tensorlib ops)
    for p, r in zip(ps, ref):
        np.testing.assert_allclose(p.grad.numpy(), r.grad.detach().numpy(), rtol=1e-12,
                                   atol=1e-12)


def test_captured_lstm_training_step_saves_and_reloads(tmp_path):
    """A captured step records lstm_cell_grad without the activations' gradient; the file's
    checks accept it and the reloaded step computes what the captured one does."""
    rng = np.random.default_rng(2)
    N, I, H, T = 3, 4, 5, 6
    ps = [tl.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
          for s in [(4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]]
    xs = tl.tensor(rng.standard_normal((T, N, I)).astype(np.float32))

    def step(xs):
        for p in ps:
            p.grad = None
        h = c = tl.zeros(N, H)
        loss = 0.0
        for t in range(T):
            h, c = F.lstm_cell(xs[t], (h, c), *ps)
            loss = loss + (h * h).sum()
        loss.backward()
        with tl.no_grad():
            for p in ps:
                p -= 0.01 * p.grad
        return loss
    fn = tl.function(step)
    fn(xs)
    graph = [e for es in fn._cache.values() for e in es][-1].graph
    cells = [n for n in graph.nodes if n.op == "lstm_cell_grad"]
    assert len(cells) == T and all(n.attrs.get("acts_grad") is False for n in cells)
    path = tmp_path / "lstm_step.tlg"
    tl.save_graph(fn, path)
    m = tl.load_graph(path)
    np.testing.assert_allclose(m(xs).numpy(), fn(xs).numpy(), rtol=1e-6)
