"""The Cholesky backward passes by triangular solves: ``tl.linalg.cholesky`` and
``tl.cholesky_solve`` (gradient in the factor) against PyTorch, on values, gradients and
gradients of gradients (float64), and on what the backward runs (no LU solve, no n x n x n
product for one right-hand side)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

TOL = 1e-12


def npy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return np.asarray(t.numpy())


def close(a, b, tol=TOL) -> None:
    np.testing.assert_allclose(npy(a), npy(b), rtol=tol, atol=tol)


def spd(rng, n: int, batch=()) -> np.ndarray:
    a = rng.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) / n + np.eye(n)


def match_to_second_order(f_tl, f_torch, arrays, seed=0, tol=TOL) -> None:
    """Same value, same gradients for a random cotangent, and the same gradients of
    ``<grads, w>`` (grad of grad) for random ``w``, in every input."""
    rng = np.random.default_rng(seed)
    ours = [tl.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ya, yt = f_tl(*ours), f_torch(*theirs)
    close(ya, yt, tol)
    g = rng.standard_normal(tuple(yt.shape))
    ga = tl.grad(ya, ours, tl.tensor(g), create_graph=True)
    gt = torch.autograd.grad(yt, theirs, torch.tensor(g), create_graph=True)
    for a, b in zip(ga, gt):
        close(a, b, tol)
    ws = [rng.standard_normal(tuple(b.shape)) for b in gt]
    sa = sum((a * tl.tensor(w)).sum() for a, w in zip(ga, ws))
    st_ = sum((b * torch.tensor(w)).sum() for b, w in zip(gt, ws))
    for a, b in zip(tl.grad(sa, ours), torch.autograd.grad(st_, theirs)):
        close(a, b, tol)


# --- linalg.cholesky ------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 7), batch=st.sampled_from([(), (2,), (2, 3)]),
       upper=st.booleans(), seed=st.integers(0, 2**16))
def test_cholesky_grads_match_torch(n, batch, upper, seed):
    a = spd(np.random.default_rng(seed), n, batch)
    # symmetrised inside, so that every entry of the input gets PyTorch's gradient
    match_to_second_order(lambda m: tl.linalg.cholesky((m + m.mT) * 0.5, upper=upper),
                          lambda m: torch.linalg.cholesky((m + m.mT) * 0.5, upper=upper),
                          [a], seed)


def test_cholesky_grad_large_matches_torch():
    rng = np.random.default_rng(1)
    a = spd(rng, 120)
    g = rng.standard_normal(a.shape)
    x, y = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (tl.linalg.cholesky(x) * tl.tensor(g)).sum().backward()
    (torch.linalg.cholesky(y) * torch.tensor(g)).sum().backward()
    close(x.grad, y.grad, 1e-11)


def test_cholesky_backward_runs_no_lu_solve(monkeypatch):
    calls = []
    real = np.linalg.solve
    monkeypatch.setattr(np.linalg, "solve", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = tl.tensor(spd(np.random.default_rng(2), 6), requires_grad=True)
    (g,) = tl.grad(tl.linalg.cholesky(x).sum(), [x], create_graph=True)
    (g * g).sum().backward()
    assert not calls, "the Cholesky backward should use triangular solves, not LU"


def test_cholesky_errors():
    with pytest.raises(ValueError, match="cholesky: expected a square matrix"):
        tl.linalg.cholesky(tl.ones((2, 3), dtype=tl.float64))
    with pytest.raises(tl.linalg.LinAlgError, match="cholesky"):
        tl.linalg.cholesky(-tl.eye(3, dtype=tl.float64))


# --- cholesky_solve ---------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(1, 3), upper=st.booleans(),
       batches=st.sampled_from([((), ()), ((2,), ()), ((), (2,)), ((3, 1), (2,))]),
       seed=st.integers(0, 2**16))
def test_cholesky_solve_grads_match_torch(n, k, upper, batches, seed):
    rng = np.random.default_rng(seed)
    b_batch, l_batch = batches
    L = np.linalg.cholesky(spd(rng, n, l_batch))
    if upper:
        L = np.swapaxes(L, -1, -2).copy()
    B = rng.standard_normal(b_batch + (n, k))
    match_to_second_order(lambda b, m: tl.cholesky_solve(b, m, upper),
                          lambda b, m: torch.cholesky_solve(b, m, upper), [B, L], seed)


def test_cholesky_solve_factor_only_grads_match_torch():
    # the factor alone requiring grad (the Gaussian-process case), and grad of grad there
    rng = np.random.default_rng(3)
    L = np.linalg.cholesky(spd(rng, 9))
    B = tl.tensor(rng.standard_normal((9, 1)))
    match_to_second_order(lambda m: tl.cholesky_solve(B, m),
                          lambda m: torch.cholesky_solve(torch.tensor(B.numpy()), m), [L])


def test_cholesky_solve_ignores_the_unread_triangle_in_value():
    rng = np.random.default_rng(4)
    L = np.linalg.cholesky(spd(rng, 5))
    junk = L + np.triu(rng.standard_normal((5, 5)), 1)
    B = rng.standard_normal((5, 2))
    m = tl.tensor(junk, requires_grad=True)
    close(tl.cholesky_solve(tl.tensor(B), m), torch.cholesky_solve(torch.tensor(B),
                                                                    torch.tensor(L)), 1e-11)


def test_cholesky_solve_one_rhs_backward_has_no_cubic_product(monkeypatch):
    from tensorlib import _gemm
    shapes = []
    real = _gemm.matmul

    def spy(a, b, *args, **kw):
        shapes.append((a.shape, b.shape))
        return real(a, b, *args, **kw)
    monkeypatch.setattr(_gemm, "matmul", spy)
    n = 40
    rng = np.random.default_rng(5)
    m = tl.tensor(np.linalg.cholesky(spd(rng, n)), requires_grad=True)
    tl.cholesky_solve(tl.tensor(rng.standard_normal((n, 1))), m).sum().backward()
    assert shapes, "the spy saw no product: it no longer watches the right function"
    cubic = [s for s in shapes if s[0][-1] == n and s[1][-2:] == (n, n) and s[0][-2] == n]
    assert not cubic, f"n x n x n products in a one-column cholesky_solve: {cubic}"
    # four products with the zero-valued E forward, two each backward (36 before)
    assert len(shapes) <= 12, f"{len(shapes)} products: {shapes}"


def test_cholesky_solve_errors():
    with pytest.raises(ValueError, match=r"cholesky_solve: B of shape \(3, 1\)"):
        tl.cholesky_solve(tl.ones((3, 1), dtype=tl.float64), tl.eye(2, dtype=tl.float64))
    with pytest.raises(ValueError, match="cholesky_solve: expects a square matrix"):
        tl.cholesky_solve(tl.ones((3, 1), dtype=tl.float64),
                          tl.ones((3, 2), dtype=tl.float64, requires_grad=True))
