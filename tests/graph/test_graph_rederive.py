"""Re-deriving a captured training step's backward after forward rewrites (passes.rederive,
passes.tables, passes.batching): the rewritten step equals the eager step, and every case
where a symbolic backward could differ from the tape keeps the recorded backward."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.graph import passes


class Scale(tl.autograd.Function):
    """A custom op whose backward is not the derivative of its forward (straight-through)."""

    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        return g


def lstm_lm(vocab=7, emb=5, hidden=6, seq=5, batch=4, dtype="float64", seed=0,
            padding_idx=None, detach_at=None, hook=None, custom=False, retain=False,
            zero_grad=True, device="cpu"):
    """A char-LSTM language model step (W4's shape of computation, small), its parameters and
    data on ``device``; ``step(x, y)`` runs forward, backward and an SGD update and returns
    the loss."""
    rng = np.random.default_rng(seed)
    shapes = [(vocab, emb), (4 * hidden, emb), (4 * hidden, hidden), (4 * hidden,),
              (4 * hidden,), (vocab, hidden), (vocab,)]
    ps = [tl.tensor((rng.standard_normal(s) * 0.4).astype(dtype), device=device,
                    requires_grad=True) for s in shapes]
    opt = tl.optim.SGD(ps, lr=0.5)
    if hook is not None:
        ps[2].register_hook(hook)

    def step(x, y):
        h = c = tl.zeros(batch, hidden, dtype=dtype, device=device)
        loss = None
        for t in range(seq):
            e = F.embedding(x[:, t], ps[0], padding_idx=padding_idx)
            if custom and t == 1:
                e = Scale.apply(e)
            h, c = F.lstm_cell(e, (h, c), ps[1], ps[2], ps[3], ps[4])
            if retain and t == 2:
                h.retain_grad()
            if detach_at == t:
                h, c = h.detach(), c.detach()
            lt = F.cross_entropy(F.linear(h, ps[5], ps[6]), y[:, t])
            loss = lt if loss is None else loss + lt
        loss = loss * (1.0 / seq)
        if zero_grad:
            opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    x = tl.tensor(rng.integers(0, vocab, (batch, seq)), device=device)
    y = tl.tensor(rng.integers(0, vocab, (batch, seq)), device=device)
    return step, ps, x, y


def _run_both(n_steps=3, data=None, rtol=1e-10, **kw):
    """The same model stepped eagerly and captured from the same start; returns the captured
    function after checking losses and parameters agree at every step."""
    eager, pe, x, y = lstm_lm(**kw)
    capt, pc, _, _ = lstm_lm(**kw)
    f = tl.function(capt)
    for k in range(n_steps):
        xs, ys = (x, y) if data is None else data(k)
        le, lc = eager(xs, ys), f(xs, ys)
        np.testing.assert_allclose(lc.numpy(), le.numpy(), rtol=rtol, atol=1e-12)
        for a, b in zip(pe, pc):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=rtol, atol=1e-12)
            ga = a.grad.numpy()
            np.testing.assert_allclose(b.grad.numpy(), ga, rtol=rtol,
                                       atol=rtol * float(np.nanmax(np.abs(ga), initial=0.0)))
    assert f.trace_count <= 2       # the optimizer's state dict fills on the first step
    return f


def test_lstm_step_is_rewritten_and_equals_eager():
    f = _run_both()
    g = f.graphs[-1]
    counts = g.op_counts()
    assert g._rederive_why is None
    # one output projection and one loss for all steps; one table lookup per step from one
    # projected table; one scatter-add for the table's gradient
    assert counts["cross_entropy"] == 1 and counts["embedding_grad"] == 1
    assert counts["linear"] == 5 + 2        # 5 recurrent + the table + the output layer
    assert "cross_entropy_grad" in counts and counts.get("slice", 0) == 2 * 5


def test_rewritten_graph_is_right_for_new_data():
    rng = np.random.default_rng(7)

    def data(k):      # new tokens and targets each step, some targets ignored
        y = rng.integers(0, 7, (4, 5))
        y[rng.random(y.shape) < 0.3] = -100
        return tl.tensor(rng.integers(0, 7, (4, 5))), tl.tensor(y)
    f = _run_both(n_steps=4, data=data)
    assert f.graphs[-1]._rederive_why is None


def test_gradients_accumulated_across_steps_are_rewritten_too():
    f = _run_both(zero_grad=False)        # .grad keeps growing: backward adds to it
    assert f.graphs[-1]._rederive_why is None
    assert f.graphs[-1].op_counts()["cross_entropy"] == 1


def test_float32_step_matches_eager():
    _run_both(dtype="float32", rtol=2e-5)


@settings(max_examples=12, deadline=None)
@given(seq=st.integers(2, 6), batch=st.integers(1, 5), vocab=st.integers(2, 9),
       seed=st.integers(0, 10_000))
def test_rewrite_agrees_with_eager_for_any_shape(seq, batch, vocab, seed):
    rng = np.random.default_rng(seed)

    def data(k):
        y = rng.integers(0, vocab, (batch, seq))
        y[rng.random(y.shape) < 0.2] = -100
        return tl.tensor(rng.integers(0, vocab, (batch, seq))), tl.tensor(y)
    _run_both(n_steps=2, data=data, seq=seq, batch=batch, vocab=vocab, seed=seed)


@pytest.mark.parametrize("case, why", [
    (dict(detach_at=2), "detach()ed"),
    (dict(hook=lambda g: g * 2.0), "hook"),
    (dict(retain=True), "retain_grad"),
    (dict(custom=True), "did not record"),
])
def test_unsafe_steps_keep_the_recorded_backward(case, why):
    f = _run_both(**case)
    g = f.graphs[-1]
    assert why in g._rederive_why
    assert g.op_counts()["cross_entropy"] == 5       # nothing rewritten


def test_padding_idx_keeps_per_step_lookups_through_the_table():
    f = _run_both(padding_idx=0)
    counts = f.graphs[-1].op_counts()
    # the output layer is still batched; the input projection is not moved into the table
    assert counts["cross_entropy"] == 1
    assert counts["linear"] == 5 + 5 + 1


def test_two_backward_calls_are_left_alone():
    def build():
        ps = [tl.tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True)]
        opt = tl.optim.SGD(ps, lr=0.1)

        def step(x):
            opt.zero_grad()
            (x @ ps[0]).sum().backward()
            (x @ ps[0]).pow(2).sum().backward()
            opt.step()
            return ps[0].grad
        return step, ps
    (se, pe), (sc, pc) = build(), build()
    f = tl.function(sc)
    for _ in range(2):
        np.testing.assert_allclose(f(tl.ones(4, 3)).numpy(), se(tl.ones(4, 3)).numpy())
    np.testing.assert_allclose(pc[0].numpy(), pe[0].numpy())
    assert "several" in f.graphs[-1]._rederive_why


def test_dropout_draws_are_not_consumed_by_the_rewrite():
    """The pass derives example values from the trace, so tracing draws from the random
    stream exactly as an eager step does."""
    def build():
        rng = np.random.default_rng(0)
        E = tl.tensor(rng.standard_normal((6, 4)), requires_grad=True)
        W = tl.tensor(rng.standard_normal((5, 4)), requires_grad=True)
        b = tl.tensor(np.zeros(5), requires_grad=True)
        opt = tl.optim.SGD([E, W, b], lr=0.1)

        def step(x, y):
            loss = None
            for t in range(4):
                h = F.dropout(F.embedding(x[:, t], E), 0.3)
                lt = F.cross_entropy(F.linear(h, W, b), y[:, t])
                loss = lt if loss is None else loss + lt
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return step, [E, W, b]
    rng = np.random.default_rng(1)
    x, y = tl.tensor(rng.integers(0, 6, (3, 4))), tl.tensor(rng.integers(0, 5, (3, 4)))
    (se, pe), (sc, pc) = build(), build()
    f = tl.function(sc)
    tl.manual_seed(3)
    le = [float(se(x, y)) for _ in range(3)]
    tl.manual_seed(3)
    lc = [float(f(x, y)) for _ in range(3)]
    np.testing.assert_allclose(lc, le, rtol=1e-12)
    for a, b in zip(pe, pc):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12)
    assert f.graphs[-1].op_counts()["cross_entropy"] == 1


# --- the forward rewrites on their own, on inference graphs -----------------------------------
def _graph(fn, *inputs):
    with tl.capture(*inputs) as g:
        out = fn(*inputs)
    g.set_outputs(*(out if isinstance(out, (list, tuple)) else [out]))
    return g, out


def test_project_embedding_tables_only_when_lookups_outnumber_rows():
    rng = np.random.default_rng(0)
    E, W, b = (tl.tensor(rng.standard_normal(s)) for s in [(4, 3), (5, 3), (5,)])

    def fn(i):
        return F.linear(F.embedding(i, E), W, b)
    small, big = tl.tensor([0, 3]), tl.tensor(rng.integers(0, 4, (3, 6)))
    g, _ = _graph(fn, small)
    assert passes.project_embedding_tables(g) == 0          # 2 rows < 4 table rows
    g, ref = _graph(fn, big)
    assert passes.project_embedding_tables(g) == 1
    passes.dce(g)
    assert g.op_counts()["linear"] == 1 and g.nodes[-1].op == "embedding"
    np.testing.assert_allclose(g.run({0: big}).numpy(), ref.numpy(), rtol=1e-12)
    i2 = tl.tensor(rng.integers(0, 4, (3, 6)))
    np.testing.assert_allclose(g.run({0: i2}).numpy(), fn(i2).numpy(), rtol=1e-12)


def test_batch_class_losses_keeps_each_steps_mean_and_sum():
    rng = np.random.default_rng(0)
    W, b = tl.tensor(rng.standard_normal((5, 3))), tl.tensor(rng.standard_normal(5))
    hs = [tl.tensor(rng.standard_normal((4, 3))) for _ in range(3)]
    y = rng.integers(0, 5, (3, 4))
    y[0, :2] = -1                   # ignored targets: step 0's mean divides by 2
    y = tl.tensor(y)
    for reduction in ("mean", "sum"):
        def fn(*hs):
            return [F.cross_entropy(F.linear(h, W, b), y[t], ignore_index=-1,
                                    reduction=reduction) for t, h in enumerate(hs)]
        g, ref = _graph(fn, *hs)
        assert passes.batch_class_losses(g) == 3
        passes.dce(g)
        assert g.op_counts()["cross_entropy"] == 1 and g.op_counts()["linear"] == 1
        got = g.run({k: h for k, h in enumerate(hs)})
        for a, r in zip(got, ref):
            np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-12)


def test_batch_class_losses_skips_dependent_steps():
    rng = np.random.default_rng(0)
    W = tl.tensor(rng.standard_normal((3, 3)))
    y = tl.tensor([0, 2])

    def fn(h):
        l1 = F.cross_entropy(F.linear(h, W), y)
        return F.cross_entropy(F.linear(h * l1, W), y)     # step 2 reads step 1's loss
    g, ref = _graph(fn, tl.tensor(rng.standard_normal((2, 3))))
    assert passes.batch_class_losses(g) == 0


def test_sum_slices_and_fold_bias():
    rng = np.random.default_rng(0)
    v = tl.tensor(rng.standard_normal(4))
    g, ref = _graph(lambda v: v[0] + v[2] + v[1] + v[3], v)
    assert passes.sum_slices(g) == 1
    passes.dce(g)
    assert g.op_counts() == {"placeholder": 1, "sum": 1}
    np.testing.assert_allclose(g.run({0: v}).numpy(), ref.numpy(), rtol=1e-12)
    g, _ = _graph(lambda v: v[0] + v[1] + v[1] + v[3], v)
    assert passes.sum_slices(g) == 0                        # not each element once

    T, W, b = (tl.tensor(rng.standard_normal(s)) for s in [(3, 4), (4, 2), (4,)])
    h, i = tl.tensor(rng.standard_normal((5, 2))), tl.tensor([0, 1, 2, 1, 0])
    g, ref = _graph(lambda h: F.embedding(i, T) + F.linear(h, W, b), h)
    assert passes.fold_bias_into_tables(g) == 1
    passes.dce(g)
    np.testing.assert_allclose(g.run({0: h}).numpy(), ref.numpy(), rtol=1e-12)


def test_fold_cell_biases_into_the_projected_table():
    """F.lstm_cell's biases (addends of the lstm_cell op) move into a projected embedding
    table when the lookups take more rows than it has: one table add instead of a bias add
    per looked-up row, same h' and c'."""
    rng = np.random.default_rng(1)
    V, E, H, N = 3, 4, 2, 5
    Tab, Wi, Wh, bi, bh = (tl.tensor(rng.standard_normal(s)) for s in
                           [(V, E), (4 * H, E), (4 * H, H), (4 * H,), (4 * H,)])
    c0 = tl.tensor(rng.standard_normal((N, H)))

    def cell(idx):
        def fn(h):
            hn, cn = F.lstm_cell(F.embedding(idx, Tab), (h, c0), Wi, Wh, bi, bh)
            return hn + 2 * cn
        return fn
    h = tl.tensor(rng.standard_normal((N, H)))
    for idx, folds in ((tl.tensor([0, 1, 2, 1, 0]), 1), (tl.tensor([0, 2]), 0)):
        if folds == 0:
            h = tl.tensor(rng.standard_normal((2, H)))
            c0 = tl.tensor(rng.standard_normal((2, H)))
        g, ref = _graph(cell(idx), h)
        assert passes.project_embedding_tables(g) == folds
        assert passes.fold_bias_into_tables(g) == folds     # 5 rows > 3; 2 rows < 3
        passes.dce(g)
        cells = [n for n in g.nodes if n.op == "lstm_cell"]
        assert len(cells) == 1 and len(cells[0].inputs) == (3 if folds else 5)
        np.testing.assert_allclose(g.run({0: h}).numpy(), ref.numpy(), rtol=1e-12)


def test_batch_embedding_grads_scatter_once():
    rng = np.random.default_rng(0)
    gs = [tl.tensor(rng.standard_normal((3, 2))) for _ in range(3)]
    idx = [tl.tensor(rng.integers(0, 4, 3)) for _ in range(3)]
    from tensorlib.ops.nn_layers import EMBEDDING_GRAD
    from tensorlib._apply import apply

    def fn(*gs):
        outs = [apply(EMBEDDING_GRAD, g, i, num_weights=4, padding_idx=None)
                for g, i in zip(gs, idx)]
        return outs[0] + outs[1] + outs[2]
    g, ref = _graph(fn, *gs)
    assert passes.batch_embedding_grads(g) == 1
    passes.dce(g)
    assert g.op_counts()["embedding_grad"] == 1
    np.testing.assert_allclose(g.run({k: a for k, a in enumerate(gs)}).numpy(), ref.numpy(),
                               rtol=1e-12)


def test_toposort_refuses_a_cycle():
    from tensorlib.graph.passes._rewrite import toposort
    x = tl.tensor(np.ones(2))
    g, _ = _graph(lambda x: (x + 1.0) * 2.0, x)
    add = next(n for n in g.nodes if n.op == "add")
    mul = next(n for n in g.nodes if n.op == "mul")
    add.inputs = [mul.outputs[0], add.inputs[1]]
    with pytest.raises(RuntimeError, match="cycle"):
        toposort(g)


def test_relu_after_max_pool_same_values_and_training_step():
    rng = np.random.default_rng(0)
    # windows that are all negative, mixed, tied and positive
    x = tl.tensor(np.round(rng.standard_normal((2, 3, 6, 6)), 1))
    g, ref = _graph(lambda x: F.max_pool2d(F.relu(x), 2), x)
    assert passes.relu_after_max_pool(g) == 1
    passes.dce(g)
    assert [n.op for n in g.nodes if n.op not in ("placeholder",)] == ["max_pool2d", "relu"]
    np.testing.assert_array_equal(g.run({0: x}).numpy(), ref.numpy())
    g, _ = _graph(lambda x: F.max_pool2d(F.relu(x), 2, return_indices=True), x)
    assert passes.relu_after_max_pool(g) == 0        # the indices are an output

    def build():
        r = np.random.default_rng(1)
        w = tl.tensor(r.standard_normal((4, 3, 3, 3)) * 0.5, requires_grad=True)
        b = tl.tensor(r.standard_normal(4) * 0.5, requires_grad=True)
        v = tl.tensor(r.standard_normal((4 * 3 * 3, 5)) * 0.3, requires_grad=True)
        opt = tl.optim.SGD([w, b, v], lr=0.3)

        def step(x, y):
            h = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)
            loss = F.cross_entropy(h.reshape(x.shape[0], -1) @ v, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return step, [w, b, v]
    (se, pe), (sc, pc) = build(), build()
    f = tl.function(sc)
    for _ in range(3):
        xk = tl.tensor(np.round(rng.standard_normal((2, 3, 6, 6)), 1))
        yk = tl.tensor(rng.integers(0, 5, 2))
        np.testing.assert_allclose(f(xk, yk).numpy(), se(xk, yk).numpy(), rtol=1e-12)
    for a, c in zip(pe, pc):
        np.testing.assert_allclose(c.numpy(), a.numpy(), rtol=1e-12, atol=1e-14)
    g = f.graphs[-1]
    assert g._rederive_why is None
    ops = [n.op for n in g.nodes]
    assert ops.index("relu") > ops.index("max_pool2d")


def test_detach_between_time_steps_keeps_the_recorded_backward():
    """Truncated backprop through time: with a loss at every step the same ops lie on the
    gradient path with or without the detach, which cuts one edge; re-deriving the backward
    from the graph would differentiate through it."""
    B, T, V, H = 4, 6, 11, 8
    rng = np.random.default_rng(0)
    x, y = tl.tensor(rng.integers(0, V, (B, T))), tl.tensor(rng.integers(0, V, (B, T)))

    def make():
        tl.manual_seed(3)
        emb, cell, out = tl.nn.Embedding(V, H), tl.nn.LSTMCell(H, H), tl.nn.Linear(H, V)
        ps = [*emb.parameters(), *cell.parameters(), *out.parameters()]
        opt = tl.optim.SGD(ps, lr=1.0)

        def step(x, y):
            h = c = tl.zeros(B, H)
            loss = 0.0
            for t in range(T):
                if t == 3:
                    h = h.detach()
                h, c = cell(emb(x[:, t]), (h, c))
                loss = loss + F.cross_entropy(out(h), y[:, t])
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return step, ps

    (eager, pe), (cap, pc) = make(), make()
    cap = tl.function(cap)
    for _ in range(3):
        eager(x, y)
        cap(x, y)
    for a, b in zip(pe, pc):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
    g = next(e for es in cap._cache.values() for e in es).graph
    assert "detach()ed" in g._rederive_why
