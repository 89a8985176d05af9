"""Correctness of the perf2 fast paths: pairwise 3+ operand einsum (and bilinear), the BLAS
full sum/mean/norm, and amax/amin along the last axis through argmax; values and gradients
against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")


def _pair(a, grad=True):
    return tl.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad)


def _close(t, p, rtol=1e-9, atol=1e-9):
    np.testing.assert_allclose(np.asarray(t.numpy()), p.detach().numpy(), rtol=rtol, atol=atol)


EINSUMS = [
    ("bn,anm,bm->ba", [(64, 32), (16, 32, 32), (64, 32)]),
    ("ij,jk,kl->il", [(40, 50), (50, 60), (60, 30)]),
    ("ij,jk,kl->li", [(40, 50), (50, 60), (60, 30)]),           # transposed output
    ("ab,bc,cd,de->ae", [(20, 30), (30, 40), (40, 50), (50, 20)]),
    ("bi,bj,oij->bo", [(64, 16), (64, 24), (8, 16, 24)]),
    ("abc,c,ab->", [(40, 50, 60), (60,), (40, 50)]),            # full contraction
    ("i,i,i->i", [(200000,), (200000,), (200000,)]),           # no contraction at all
]


@pytest.mark.parametrize("sub,shapes", EINSUMS)
def test_einsum_many_operands_matches_torch(sub, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    ts, ps = zip(*(_pair(a) for a in arrays))
    y, yp = tl.einsum(sub, *ts), torch.einsum(sub, *ps)
    _close(y, yp)
    g = rng.standard_normal(yp.shape)
    y.backward(tl.tensor(g))
    yp.backward(torch.tensor(g))
    for t, p in zip(ts, ps):
        _close(t.grad, p.grad)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40), st.integers(1, 40),
       st.booleans())
def test_einsum_three_operands_random_shapes(b, n, m, a, big):
    rng = np.random.default_rng(b * 1000 + n)
    if big:
        b, n = b * 8, n * 4
    arrays = [rng.standard_normal(s) for s in [(b, n), (a, n, m), (b, m)]]
    ts, ps = zip(*(_pair(x) for x in arrays))
    y, yp = tl.einsum("bn,anm,bm->ba", *ts), torch.einsum("bn,anm,bm->ba", *ps)
    _close(y, yp)
    y.sum().backward()
    yp.sum().backward()
    for t, p in zip(ts, ps):
        _close(t.grad, p.grad)


def test_einsum_many_operands_double_backward():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in [(64, 32), (16, 32, 32), (64, 32)]]
    ts, ps = zip(*(_pair(a) for a in arrays))
    (g,) = tl.grad(tl.einsum("bn,anm,bm->ba", *ts).square().sum(), [ts[1]], create_graph=True)
    (gp,) = torch.autograd.grad(torch.einsum("bn,anm,bm->ba", *ps).square().sum(), [ps[1]],
                                create_graph=True)
    _close(g, gp, rtol=1e-8, atol=1e-8)
    g.sum().backward()
    gp.sum().backward()
    _close(ts[0].grad, ps[0].grad, rtol=1e-8, atol=1e-8)


def test_einsum_many_operands_errors():
    a = tl.ones(64, 32)
    with pytest.raises(ValueError, match="einsum"):
        tl.einsum("bn,anm,bm->ba", a, tl.ones(16, 31, 32), a)
    with pytest.raises(ValueError, match="einsum"):
        tl.einsum("bn,anm->ba", a, tl.ones(16, 32, 32), a)


def test_bilinear_matches_torch():
    rng = np.random.default_rng(2)
    x1, x2 = rng.standard_normal((5, 64, 32)), rng.standard_normal((5, 64, 24))
    w, b = rng.standard_normal((16, 32, 24)), rng.standard_normal(16)
    (t1, p1), (t2, p2), (tw, pw), (tb, pb) = map(_pair, (x1, x2, w, b))
    y = tl.nn.functional.bilinear(t1, t2, tw, tb)
    yp = torch.nn.functional.bilinear(p1, p2, pw, pb)
    _close(y, yp)
    y.sum().backward()
    yp.sum().backward()
    for t, p in [(t1, p1), (t2, p2), (tw, pw), (tb, pb)]:
        _close(t.grad, p.grad)
    with pytest.raises(ValueError, match="bilinear"):
        tl.nn.functional.bilinear(t1, t2, tl.ones(16, 31, 24))


FULL_SHAPES = [(64, 64, 64), (300007,), (17, 4096 + 5), (1 << 16,), (100,)]


@pytest.mark.parametrize("shape", FULL_SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", ["sum", "mean", "norm", "vector_norm"])
def test_full_reductions_match_torch(shape, dtype, op):
    rng = np.random.default_rng(3)
    a = rng.standard_normal(shape).astype(dtype)
    t, p = _pair(a)
    if op == "vector_norm":
        y, yp = tl.linalg.vector_norm(t), torch.linalg.vector_norm(p)
    else:
        y, yp = getattr(t, op)(), getattr(p, op)()
    tol = 2e-6 if dtype == "float32" else 1e-12
    assert y.dtype == np.dtype(dtype) and y.shape == ()
    np.testing.assert_allclose(float(y.item()), float(yp.item()), rtol=tol,
                               atol=tol * np.sqrt(a.size))
    # accuracy against a float64 reference, not only against PyTorch
    ref = {"sum": np.sum, "mean": np.mean}.get(op, lambda v: np.sqrt(np.sum(v * v)))(
        a.astype(np.float64))
    np.testing.assert_allclose(float(y.item()), ref, rtol=tol, atol=tol * np.sqrt(a.size))
    y.backward()
    yp.backward()
    _close(t.grad, p.grad, rtol=tol, atol=tol)


def test_full_reductions_of_strided_and_special_inputs():
    a = np.random.default_rng(4).standard_normal((256, 512)).astype(np.float32)
    t = tl.tensor(a)
    np.testing.assert_allclose(float(t.t().sum().item()), a.sum(dtype=np.float64), rtol=1e-5)
    a[3, 7] = np.nan
    assert np.isnan(tl.tensor(a).sum().item()) and np.isnan(tl.tensor(a).norm().item())
    a[3, 7] = np.inf
    assert tl.tensor(a).mean().item() == np.inf
    assert tl.zeros(70000).norm().item() == 0.0
    big = np.full(70000, 1e30, np.float32)      # float32 squares overflow, as PyTorch's
    assert tl.tensor(big).norm().item() == torch.tensor(big).norm().item()


@pytest.mark.parametrize("fn", ["amax", "amin"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_amax_last_dim_matches_torch(fn, keepdim):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((8, 16, 64))
    a[0, 0, 5] = a[0, 0, 9] = 10.0 if fn == "amax" else -10.0      # a tie shares the gradient
    t, p = _pair(a)
    y, yp = getattr(t, fn)(dim=-1, keepdim=keepdim), getattr(p, fn)(dim=-1, keepdim=keepdim)
    _close(y, yp, rtol=0, atol=0)
    g = rng.standard_normal(yp.shape)
    y.backward(tl.tensor(g))
    yp.backward(torch.tensor(g))
    _close(t.grad, p.grad)


def test_amax_last_dim_special_values():
    a = np.random.default_rng(6).standard_normal((4, 32)).astype(np.float32)
    a[1, 3], a[2, 30] = np.nan, -np.inf
    a[3] = -np.inf
    y, yp = tl.tensor(a).amax(dim=1), torch.tensor(a).amax(dim=1)
    np.testing.assert_array_equal(y.numpy(), yp.numpy())
    np.testing.assert_array_equal(tl.tensor(a).amin(dim=-1).numpy(),
                                  torch.tensor(a).amin(dim=-1).numpy())
    with pytest.raises(ValueError, match="max"):
        tl.zeros(3, 0).amax(dim=1)
