"""The SGD update folded into the weight-gradient GEMM (tensorlib._blas, passes.fusion.
fuse_sgd_gemm): same parameters as the eager step, and every case it cannot take falls
back to the plain update."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from tensorlib import _blas

needs_blas = pytest.mark.skipif(not _blas.AVAILABLE, reason="no BLAS gemm found next to NumPy")


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_at_b_matches_numpy(dtype):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 5)).astype(dtype), rng.standard_normal((7, 3)).astype(dtype)
    c = rng.standard_normal((5, 3)).astype(dtype)
    want = c - 0.3 * a.T @ b
    assert _blas.add_at_b(c, a, b, -0.3)
    np.testing.assert_allclose(c, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    at = rng.standard_normal((5, 7)).astype(dtype).T      # a non-contiguous operand
    want = c + at.T @ b
    assert _blas.add_at_b(c, at, b, 1.0)
    np.testing.assert_allclose(c, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_add_at_b_refuses_what_blas_cannot_do_safely():
    x = np.ones((4, 4), np.float32)
    assert not _blas.add_at_b(x, x, x, 1.0)                          # output overlaps input
    assert not _blas.add_at_b(x[:, :2], x[:, :2].copy(), x[:, :2].copy(), 1.0)  # strided out
    assert not _blas.add_at_b(x, np.ones((4, 4)), np.ones((4, 4)), 1.0)         # dtypes
    assert not _blas.add_at_b(x, np.ones((3, 4), np.float32), np.ones((2, 4), np.float32), 1.0)
    np.testing.assert_array_equal(x, 1.0)


def _mlp(dtype, seed=0, zero_first=False):
    tl.manual_seed(seed)
    m = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).to(dtype=dtype)
    opt = tl.optim.SGD(m.parameters(), lr=0.2)

    def step(x, y):
        if zero_first:
            opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        if not zero_first:
            opt.zero_grad()
        return loss
    return m, step


def _eager_vs_captured(dtype, rtol, zero_first=False):
    (me, se), (mc, sc) = _mlp(dtype, zero_first=zero_first), _mlp(dtype, zero_first=zero_first)
    f = tl.function(sc)
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = tl.tensor(rng.standard_normal((5, 6)).astype(dtype))
        y = tl.tensor(rng.integers(0, 3, 5))
        np.testing.assert_allclose(f(x, y).numpy(), se(x, y).numpy(), rtol=rtol)
    for a, b in zip(me.parameters(), mc.parameters()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=rtol, atol=rtol)
        if zero_first:
            np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=rtol, atol=rtol)
    return f.graphs[-1]


@needs_blas
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 2e-5)])
def test_captured_step_folds_weight_gradients_into_the_update(dtype, rtol):
    g = _eager_vs_captured(dtype, rtol)
    kinds = sorted(a.attrs.get("update") for a in g.assigns)
    assert kinds == ["sgd", "sgd", "sgd_gemm", "sgd_gemm"]     # biases: plain SGD
    assert "sgd_gemm_update[lr=" in str(g)
    assert all(n.attrs.get("need_w") is False for n in g.nodes if n.op == "linear_grad")


def test_gradients_the_step_leaves_in_grad_are_still_written():
    """zero_grad() first: .grad is visible after the step, so the gradient is computed."""
    g = _eager_vs_captured("float64", 1e-12, zero_first=True)
    assert all(a.attrs.get("update") != "sgd_gemm" for a in g.assigns)


def test_without_blas_the_step_keeps_the_plain_update(monkeypatch):
    monkeypatch.setattr(_blas, "AVAILABLE", False)
    g = _eager_vs_captured("float64", 1e-12)
    assert all(a.attrs.get("update") == "sgd" for a in g.assigns)


@needs_blas
def test_runtime_falls_back_when_the_gemm_refuses(monkeypatch):
    monkeypatch.setattr(_blas, "add_at_b", lambda *a: False)
    g = _eager_vs_captured("float64", 1e-12)
    assert any(a.attrs.get("update") == "sgd_gemm" for a in g.assigns)


@needs_blas
def test_graph_with_folded_update_saves_and_loads(tmp_path):
    (me, se), (_, sc) = _mlp("float64"), _mlp("float64")
    f = tl.function(sc)
    x, y = tl.tensor(np.ones((2, 6))), tl.tensor([0, 2])
    f(x, y)
    se(x, y)
    g = f.graphs[-1]
    assert any(a.attrs.get("update") == "sgd_gemm" for a in g.assigns)
    tl.save_graph(f, tmp_path / "step")
    loaded = tl.load_graph(tmp_path / "step")
    # the loader turns the folded update back into checked NumPy ops
    assert all(a.attrs.get("update") is None for a in loaded.graph.assigns)
    loaded(x, y)                  # one more step from the saved weights, as eager does
    se(x, y)
    for (name, p), q in zip(loaded.named_parameters(), me.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-12, err_msg=name)
