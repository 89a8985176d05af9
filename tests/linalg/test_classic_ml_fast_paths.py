"""Correctness of the classical-ML fast paths against PyTorch (values, gradients, and grads
of grads where tensorlib has them): ``cholesky_solve`` / ``triangular_solve`` by triangular
solves, MultivariateNormal ``log_prob`` (one solve per factor), ``vander`` by products,
``combinations``' vectorised index table, ``cummax``/``cummin`` indices, ``block_diag``,
``cdist`` p=1 by feature."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl


def npy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return np.asarray(t.numpy()) if isinstance(t, tl.Tensor) else np.asarray(t)


def close(a, b, tol=1e-9) -> None:
    np.testing.assert_allclose(npy(a), npy(b), rtol=tol, atol=tol, equal_nan=True)


def spd(rng, n: int, batch=()) -> np.ndarray:
    a = rng.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def grads_and_hessian_match(f_tl, f_torch, arrays, seed=0, second=True, tol=1e-9):
    """Same output, same input gradients for a random upstream gradient, and (``second``)
    the same gradient of <grads, w> for random ``w``."""
    rng = np.random.default_rng(seed)
    ours = [tl.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    ya, yt = f_tl(*ours), f_torch(*theirs)
    close(ya, yt, tol)
    g = rng.standard_normal(tuple(yt.shape))
    ga = tl.grad(ya, ours, tl.tensor(g), create_graph=second)
    gt = torch.autograd.grad(yt, theirs, torch.tensor(g), create_graph=second)
    for a, b in zip(ga, gt):
        close(a, b, tol)
    if not second:
        return
    ws = [rng.standard_normal(tuple(b.shape)) for b in gt]
    sa = sum((a * tl.tensor(w)).sum() for a, w in zip(ga, ws))
    st_ = sum((b * torch.tensor(w)).sum() for b, w in zip(gt, ws))
    for a, b in zip(tl.grad(sa, ours), torch.autograd.grad(st_, theirs)):
        close(a, b, tol)


# --- cholesky_solve / triangular_solve -------------------------------------------------------
def test_cholesky_solve_broadcasts_factor_batch_dims_over_b():
    L = np.linalg.cholesky(np.stack([np.eye(2) * 2, np.eye(2) * 4]))
    out = tl.cholesky_solve(tl.eye(2, dtype=tl.float64), tl.tensor(L))
    assert tuple(out.shape) == (2, 2, 2)
    close(out, torch.cholesky_solve(torch.eye(2, dtype=torch.float64), torch.tensor(L)))
    close(out[0], np.eye(2) * 0.5)
    close(out[1], np.eye(2) * 0.25)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("b_batch,l_batch", [((), ()), ((3,), ()), ((), (3,)), ((2, 1), (3,))])
def test_cholesky_solve_matches_torch_to_second_order(upper, b_batch, l_batch):
    rng = np.random.default_rng(len(b_batch) * 7 + len(l_batch) + upper)
    L = np.linalg.cholesky(spd(rng, 4, l_batch))
    if upper:
        L = np.swapaxes(L, -1, -2).copy()
    B = rng.standard_normal(b_batch + (4, 2))
    grads_and_hessian_match(lambda b, m: tl.cholesky_solve(b, m, upper),
                            lambda b, m: torch.cholesky_solve(b, m, upper), [B, L])


def test_cholesky_solve_reads_only_the_factor_triangle():
    rng = np.random.default_rng(3)
    L = np.linalg.cholesky(spd(rng, 5))
    junk = L + np.triu(rng.standard_normal((5, 5)), 1)     # garbage above the diagonal
    B = rng.standard_normal((5, 3))
    close(tl.cholesky_solve(tl.tensor(B), tl.tensor(junk)),
          torch.cholesky_solve(torch.tensor(B), torch.tensor(junk)))


def test_cholesky_solve_large_and_float32():
    rng = np.random.default_rng(4)
    L = np.linalg.cholesky(spd(rng, 300)).astype(np.float32)
    B = rng.standard_normal((300, 1)).astype(np.float32)
    out = tl.cholesky_solve(tl.tensor(B), tl.tensor(L))
    assert out.dtype == tl.float32
    close(out, torch.cholesky_solve(torch.tensor(B), torch.tensor(L)), 1e-4)


def test_cholesky_solve_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"cholesky_solve: B of shape \(3, 1\)"):
        tl.cholesky_solve(tl.ones(3, 1), tl.eye(2))
    with pytest.raises(ValueError, match="cholesky_solve: expects a square matrix"):
        tl.cholesky_solve(tl.ones(3, 1), tl.ones(3, 2))


@pytest.mark.parametrize("upper,transpose,unit", list(itertools.product([True, False],
                                                                        repeat=3)))
def test_triangular_solve_matches_torch(upper, transpose, unit):
    rng = np.random.default_rng(int(upper) * 4 + int(transpose) * 2 + int(unit))
    A = spd(rng, 4, (2,))                     # a full matrix: only one triangle is read
    B = rng.standard_normal((3, 1, 4, 2))     # batch dims broadcast with A's
    grads_and_hessian_match(
        lambda b, m: tl.triangular_solve(b, m, upper, transpose, unit).solution,
        lambda b, m: torch.triangular_solve(b, m, upper, transpose, unit).solution, [B, A])
    res = tl.triangular_solve(tl.tensor(B), tl.tensor(A), upper, transpose, unit)
    close(res.cloned_coefficient, A)


# --- MultivariateNormal.log_prob ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["covariance_matrix", "scale_tril", "precision_matrix"])
@pytest.mark.parametrize("batch,n,sample", [((4,), 3, (6, 1)), ((), 3, (5,)),
                                            ((2, 3), 2, (4, 1, 1)), ((4,), 3, ()),
                                            ((1,), 3, (5, 2)), ((3,), 2, (3,))])
def test_mvn_log_prob_matches_torch(kind, batch, n, sample):
    rng = np.random.default_rng(len(batch) * 10 + n + len(sample))
    mu, C = rng.standard_normal(batch + (n,)), spd(rng, n, batch)
    M = np.linalg.cholesky(C) if kind == "scale_tril" else C
    X = rng.standard_normal(sample + (n,))
    grads_and_hessian_match(
        lambda m, c, x: tl.distributions.MultivariateNormal(m, **{kind: c}).log_prob(x),
        lambda m, c, x: torch.distributions.MultivariateNormal(m, **{kind: c}).log_prob(x),
        [mu, M, X], second=kind == "scale_tril", tol=1e-8)


def test_mvn_mixture_shaped_log_prob_float32():
    rng = np.random.default_rng(7)
    K, D, N = 4, 10, 300
    mu = rng.standard_normal((K, D)).astype(np.float32)
    C = spd(rng, D, (K,)).astype(np.float32)
    X = rng.standard_normal((N, D)).astype(np.float32)
    ours = tl.distributions.MultivariateNormal(tl.tensor(mu), tl.tensor(C))
    theirs = torch.distributions.MultivariateNormal(torch.tensor(mu), torch.tensor(C))
    out = ours.log_prob(tl.tensor(X)[:, None])
    assert tuple(out.shape) == (N, K) and out.dtype == tl.float32
    close(out, theirs.log_prob(torch.tensor(X)[:, None]), 1e-4)


# --- vander / combinations -------------------------------------------------------------------
@pytest.mark.parametrize("N", [None, 0, 1, 3, 8])
@pytest.mark.parametrize("increasing", [False, True])
def test_vander_matches_torch(N, increasing):
    rng = np.random.default_rng(0)
    for x in (rng.standard_normal(7), rng.standard_normal(6).astype(np.float32),
              np.array([1, -2, 3, 0]), np.array([True, False, True])):
        close(tl.vander(tl.tensor(x), N=N, increasing=increasing),
              torch.vander(torch.tensor(x), N=N, increasing=increasing), 1e-6)


def test_vander_gradients_by_finite_differences():
    x = tl.tensor(np.random.default_rng(1).standard_normal(5), requires_grad=True)
    for inc in (False, True):
        assert tl.autograd.gradcheck(lambda a, inc=inc: tl.vander(a, N=5, increasing=inc), (x,))
        assert tl.autograd.gradgradcheck(lambda a, inc=inc: tl.vander(a, N=4, increasing=inc),
                                         (x,))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 9), st.integers(0, 5), st.booleans())
def test_combinations_match_torch(n, r, with_replacement):
    x = np.arange(n, dtype=np.float64) * 1.5 - 2.0
    ours = tl.combinations(tl.tensor(x), r, with_replacement)
    theirs = torch.combinations(torch.tensor(x), r, with_replacement)
    assert tuple(ours.shape) == tuple(theirs.shape)
    close(ours, theirs)


def test_combinations_gradient_counts_each_use():
    x = np.random.default_rng(2).standard_normal(6)
    grads_and_hessian_match(lambda a: tl.combinations(a, 3, True).sin(),
                            lambda a: torch.combinations(a, 3, True).sin(), [x])


# --- cummax / cummin ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape,dim", [((50,), 0), ((7, 9), 0), ((7, 9), 1), ((3, 4, 5), 1),
                                       ((3, 4, 5), -1), ((0, 3), 1)])
@pytest.mark.parametrize("kind", ["rand", "ties", "nan"])
@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cum_extreme_matches_torch(shape, dim, kind, op):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape) if kind == "rand" else \
        rng.integers(0, 4, shape).astype(np.float64)
    if kind == "nan":
        x[rng.random(shape) < 0.2] = np.nan
    ours = getattr(tl, op)(tl.tensor(x), dim)
    theirs = getattr(torch, op)(torch.tensor(x), dim)
    np.testing.assert_array_equal(npy(ours.indices), npy(theirs.indices))
    close(ours.values, theirs.values)
    if x.size and kind != "nan":
        grads_and_hessian_match(lambda a: getattr(tl, op)(a, dim).values,
                                lambda a: getattr(torch, op)(a, dim).values, [x],
                                second=False)


# --- block_diag ----------------------------------------------------------------------------------
def _block_cases(rng):
    return [[rng.standard_normal((2, 3)) for _ in range(4)],
            [rng.standard_normal((2, 3)), rng.standard_normal(4), np.array(2.0),
             rng.standard_normal((3, 1))],
            [np.array([[1, 2], [3, 4]]), np.array([[5, 6], [7, 8]])],
            [np.array([[1, 2]]), np.array([[1.5]])],
            [np.array([[np.inf, 1.0]]), np.array([[np.nan, 2.0]])],
            [rng.standard_normal((1, 1))],
            [rng.standard_normal((0, 2))] * 3,
            [rng.standard_normal((2, 0))] * 3]


def test_block_diag_matches_torch():
    for blocks in _block_cases(np.random.default_rng(5)):
        ours = tl.block_diag(*[tl.tensor(b) for b in blocks])
        theirs = torch.block_diag(*[torch.tensor(b) for b in blocks])
        assert tuple(ours.shape) == tuple(theirs.shape)
        close(ours, theirs)


@pytest.mark.parametrize("case", [0, 1])
def test_block_diag_gradients_match_torch(case):
    blocks = _block_cases(np.random.default_rng(6))[case]
    grads_and_hessian_match(lambda *a: tl.block_diag(*a).sin(),
                            lambda *a: torch.block_diag(*a).sin(), blocks)


# --- cdist, p = 1 --------------------------------------------------------------------------------
@pytest.mark.parametrize("s1,s2", [((70, 5), (80, 5)), ((2, 70, 3), (1, 90, 3)),
                                   ((3, 4), (5, 4))])
def test_cdist_p1_matches_torch(s1, s2):
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal(s1), rng.standard_normal(s2)
    b[..., :3, :] = a[..., :3, :][:1] if a.ndim == 3 else a[:3]     # zero distances
    grads_and_hessian_match(lambda x, y: tl.cdist(x, y, p=1),
                            lambda x, y: torch.cdist(x, y, p=1), [a, b], second=False)


def test_cdist_p1_float32_large():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((100, 20)).astype(np.float32)
    b = rng.standard_normal((120, 20)).astype(np.float32)
    out = tl.cdist(tl.tensor(a), tl.tensor(b), p=1)
    assert out.dtype == tl.float32
    close(out, torch.cdist(torch.tensor(a), torch.tensor(b), p=1), 1e-4)
