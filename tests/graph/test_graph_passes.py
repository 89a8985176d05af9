"""Graph passes: each shows the graph before and after, and results unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import _blas
from tensorlib.graph import passes
from tensorlib.graph.executor import Plan
from tensorlib.graph.passes.memory import buffer_stats


def _x(*shape, seed=0):
    return tl.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _check_same(g, before_out, feeds):
    after = g.run(feeds)
    after = after if isinstance(after, tuple) else (after,)
    for a, b in zip(after, before_out):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


def _outs(g, feeds):
    r = g.run(feeds)
    return r if isinstance(r, tuple) else (r,)


def test_dce_drops_unused_nodes():
    x = _x(3)
    with tl.capture(x) as g:
        y = x.exp()
        _unused = (x * 3.0).tanh()
    g.set_outputs(y)
    before = _outs(g, {x: x})
    assert {"mul", "tanh"} <= set(g.op_counts())
    removed = passes.dce(g)
    assert removed == 3 and set(g.op_counts()) == {"placeholder", "exp"}
    _check_same(g, before, {x: x})


def test_dce_keeps_assigns_and_what_they_need():
    x = _x(3)
    w = tl.zeros(3, requires_grad=True)
    with tl.capture(x) as g:
        with tl.no_grad():
            w += x.sin()
        y = x * 2.0
    g.set_outputs(y)
    passes.dce(g)
    assert "sin" in g.op_counts() and "assign" in g.op_counts()


def test_cse_merges_repeated_expressions():
    x = _x(4)
    with tl.capture(x) as g:
        a = x.exp() + 1.0
        b = x.exp() + 1.0
        y = a * b
    g.set_outputs(y)
    before = _outs(g, {x: x})
    assert g.op_counts()["exp"] == 2 and g.op_counts()["add"] == 2
    passes.cse(g)
    assert g.op_counts()["exp"] == 1 and g.op_counts()["add"] == 1
    _check_same(g, before, {x: x})


def test_cse_does_not_merge_random_draws():
    x = _x(50)
    with tl.capture(x) as g:
        y = x * tl.rand(50) - x * tl.rand(50)
    g.set_outputs(y)
    passes.cse(g)
    assert g.op_counts()["random"] == 2
    assert np.abs(g.run({x: x}).numpy()).sum() > 0


def test_constant_folding():
    x = _x(3)
    with tl.capture(x) as g:
        c = (tl.arange(3).astype(tl.float32) * 2.0 + 1.0).exp()   # constants only
        y = x * c
    g.set_outputs(y)
    before = _outs(g, {x: x})
    text_before = str(g)
    n = passes.fold_constants(g)
    passes.dce(g)
    assert n >= 3, text_before
    assert set(g.op_counts()) == {"placeholder", "constant", "mul"}, str(g)
    _check_same(g, before, {x: x})


def test_algebraic_simplification():
    x = _x(2, 3)
    with tl.capture(x) as g:
        y = ((x * 1.0 - 0.0) / 1.0).reshape(3, 2).reshape(6)    # (x + 0.0: see below)
        z = tl.neg(tl.neg(x))
        p = x ** 2.0
    g.set_outputs(y, z, p)
    before = _outs(g, {x: x})
    passes.simplify(g)
    passes.dce(g)
    ops = g.op_counts()
    assert "mul" not in ops and "sub" not in ops and "div" not in ops and "neg" not in ops
    assert ops.get("reshape") == 1 and ops.get("square") == 1 and "pow" not in ops
    _check_same(g, before, {x: x})


def test_simplification_keeps_broadcasting():
    x = _x(3)
    with tl.capture(x) as g:
        y = x + tl.zeros(2, 3)     # adding zeros broadcasts: not an identity
    g.set_outputs(y)
    passes.simplify(g)
    assert "add" in g.op_counts()
    assert g.run({x: x}).shape == (2, 3)


def test_elementwise_fusion_generic_chain():
    x = _x(8, 8)
    with tl.capture(x) as g:
        y = ((x * 2.0 + 1.0).tanh() - 0.5).exp()
    g.set_outputs(y)
    before = _outs(g, {x: x})
    n = passes.fuse_elementwise(g)
    assert n == 1
    (fused,) = [n for n in g.nodes if n.op == "fused"]
    assert [r[0] for r in fused.attrs["program"]] == ["mul", "add", "tanh", "sub", "exp"]
    _check_same(g, before, {x: x})
    assert "fused[program=[mul; add; tanh; sub; exp]]" in str(g)


def test_fusion_keeps_values_used_elsewhere():
    x = _x(5)
    with tl.capture(x) as g:
        a = x * 3.0
        b = (a + 1.0).exp()
    g.set_outputs(a, b)         # a is an output: the chain must not swallow it
    before = _outs(g, {x: x})
    passes.fuse_elementwise(g)
    _check_same(g, before, {x: x})


@pytest.mark.parametrize("fold_gemm", [False, pytest.param(True, marks=pytest.mark.skipif(
    not _blas.AVAILABLE, reason="no BLAS gemm found next to NumPy"))])
def test_sgd_chain_maps_to_in_place_kernel(fold_gemm):
    x = _x(4, 3)
    w = _x(3, 2, seed=1).requires_grad_()
    with tl.capture(x) as g:
        loss = (x @ w).tanh().sum()
        (gw,) = tl.grad(loss, [w])
        with tl.no_grad():
            w -= 0.1 * gw
    g.set_outputs(loss)
    assert passes.fuse_sgd_updates(g) == 1
    (a,) = g.assigns
    assert a.attrs["update"] == "sgd" and abs(a.attrs["lr"] - 0.1) < 1e-7
    assert "sgd_update[lr=" in str(g)
    if fold_gemm:       # the gradient x^T @ g folded into the update: one GEMM into w
        assert passes.fuse_sgd_gemm(g) == 1 and a.attrs["update"] == "sgd_gemm"
        assert len(a.inputs) == 2 and g.op_counts()["matmul"] == 1     # the forward one
    w0 = w.numpy().copy()
    xn = _x(4, 3, seed=3)
    g.run({x: xn})
    t = tl.tensor(w0, requires_grad=True)
    (eg,) = tl.grad((xn @ t).tanh().sum(), [t])
    np.testing.assert_allclose(w.numpy(), w0 - 0.1 * eg.numpy(), rtol=1e-5, atol=1e-6)


def test_memory_plan_reuses_buffers_and_results_unchanged():
    x = _x(16, 16)
    with tl.capture(x) as g:
        y = x
        for _ in range(6):
            y = (y * 0.5).tanh() + x
        out = y.sum()
    g.set_outputs(out)
    plain = Plan(g, g.outputs, memory=False)
    planned = Plan(g, g.outputs, memory=True)
    n_vals, n_bufs = buffer_stats(planned)
    assert n_vals >= 10 and n_bufs <= 3, (n_vals, n_bufs)
    for seed in range(3):
        xn = _x(16, 16, seed=seed).numpy()
        np.testing.assert_allclose(planned([xn])[0], plain([xn])[0], rtol=1e-6)


def test_plan_frees_each_value_after_its_last_reader():
    # the compiled run deletes a local once nothing later reads it: a captured training
    # step peaked at twice eager's memory when every activation and gradient lived to the end
    import tracemalloc

    import tensorlib.nn as nn
    import tensorlib.nn.functional as F
    tl.manual_seed(0)
    net = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(256, 256), nn.Tanh())])
    opt = tl.optim.SGD(net.parameters(), lr=0.01)

    def step(x, y):
        loss = F.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()
    x, y = _x(512, 256), _x(512, 256, seed=1)
    captured = tl.function(step)
    peaks = {}
    for name, f in (("eager", step), ("captured", captured)):
        f(x, y)
        f(x, y)
        tracemalloc.start()
        f(x, y)
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks["captured"] < 1.3 * peaks["eager"], peaks


def test_optimize_pipeline_on_a_training_step():
    import tensorlib.nn as nn
    import tensorlib.nn.functional as F
    tl.manual_seed(0)
    m1 = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    tl.manual_seed(0)
    m2 = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))

    def step(m, x, y):
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        with tl.no_grad():
            for p in m.parameters():
                p -= 0.05 * p.grad
                p.grad = None
        return loss

    raw = tl.function(step, optimize=False, memory_plan=False)
    opt = tl.function(step)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = tl.tensor(rng.standard_normal((6, 5)).astype(np.float32))
        y = tl.tensor(rng.integers(0, 3, 6))
        assert abs(float(raw(m1, x, y)) - float(opt(m2, x, y))) < 1e-5
    assert len(opt.graphs[0].nodes) < len(raw.graphs[0].nodes)


def test_batching_sums_of_products_into_one_matmul():
    import tensorlib.nn.functional as F
    w = _x(6, 5, seed=1).requires_grad_()
    b = _x(6, seed=2).requires_grad_()
    xs = [_x(4, 5, seed=10 + t) for t in range(5)]
    with tl.capture(*xs) as g:
        loss = sum(F.linear(x, w, b).tanh().sum() for x in xs)   # w shared by 5 calls
        gw, gb = tl.grad(loss, [w, b])
    g.set_outputs(gw, gb)
    before = _outs(g, {i: x for i, x in enumerate(xs)})
    n_before = len(g.nodes)
    assert passes.batch_matmul_sums(g) == 1
    passes.dce(g)
    ops = g.op_counts()
    assert ops.get("concatenate") == 2, str(g)       # one product of concatenations
    assert len(g.nodes) < n_before + 4
    new = [_x(4, 5, seed=20 + t) for t in range(5)]
    ref = tl.grad(sum(F.linear(x, w, b).tanh().sum() for x in new), [w, b])
    got = g.run({i: x for i, x in enumerate(new)})
    for a, r in zip(got, ref):
        np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-5, atol=1e-6)
    after = _outs(g, {i: x for i, x in enumerate(xs)})
    for a, r in zip(after, before):      # same values up to float reassociation
        np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-5, atol=1e-6)


def test_fetching_a_value_optimize_removed_says_so():
    x, w = tl.randn(3, 4), tl.randn(4, 4)
    with tl.capture(x) as g:
        h = (x @ w) * 2.0 + 1.0
        o = h.exp().sum()
    g.set_outputs(o)
    assert g.run({x: x}, fetches=[h])[0].shape == (3, 4)
    g.optimize()
    with pytest.raises(ValueError, match="no longer computed.*Fetch it before optimizing"):
        g.run({x: x}, fetches=[h])


def test_simplify_keeps_the_sign_of_zero():
    """x + 0.0 is no identity for floats (-0.0 + 0.0 is +0.0): a capture trial saw
    1 / (x + 0.0) turn from inf to -inf after the first call. x - 0.0 and x + (-0.0) are."""
    x = tl.tensor(np.array([-0.0, 2.0]))
    for f in (lambda x: 1.0 / (x + 0.0), lambda x: 1.0 / (0.0 + x),
              lambda x: 1.0 / (x - 0.0), lambda x: 1.0 / (x + (-0.0)),
              lambda x: 1.0 / (x - (-0.0))):
        g = tl.function(f)
        for _ in range(3):
            np.testing.assert_array_equal(g(x).numpy(), f(x).numpy())
    xi = tl.tensor(np.array([3, 4]))
    with tl.capture(xi) as cg:
        y = xi + 0
    cg.set_outputs(y)
    assert not any(n.op == "add" for n in cg.optimize().nodes)   # integers: still removed
