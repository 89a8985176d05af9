"""Selection kernels for small inputs: adaptive_max_pool2d with uneven windows (its direct
kernel), ``_ops.topk_rows``' argument checks, kthvalue through topk, and pdist's p=2
backward (register-tiled): values, indices and gradients against PyTorch, ties, NaN/inf,
odd sizes, 0-d and non-contiguous inputs, gradients of gradients."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import _ops

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _grad(fn, a, g=None):
    x = tl.tensor(a, requires_grad=True)
    out = fn(x)
    out = out[0] if isinstance(out, tuple) else out
    gg = np.ones(out.shape, a.dtype) if g is None else g
    (out * tl.tensor(gg)).sum().backward()
    return out, x.grad.numpy()


def _tgrad(fn, a, g=None):
    x = torch.tensor(a, requires_grad=True)
    out = fn(x)
    out = out[0] if isinstance(out, tuple) else out
    gg = np.ones(tuple(out.shape), a.dtype) if g is None else g
    (out * torch.tensor(gg)).sum().backward()
    return out, x.grad.numpy()


# --- adaptive_max_pool2d, uneven windows ------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,out", [((2, 3, 13, 13), (4, 4)), ((2, 3, 13, 13), (5, 7)),
                                       ((1, 2, 7, 5), (3, 2)), ((1, 1, 3, 4), (5, 7)),
                                       ((3, 11, 9), (4, 4)), ((2, 2, 1, 9), (1, 4))])
def test_adaptive_max_uneven_matches_torch(shape, out, dtype):
    a = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    g = np.random.default_rng(1).standard_normal(shape[:-2] + out).astype(dtype)
    (v, i) = F.adaptive_max_pool2d(tl.tensor(a), out, return_indices=True)
    tv, ti = TF.adaptive_max_pool2d(torch.tensor(a), out, return_indices=True)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    _, gx = _grad(lambda x: F.adaptive_max_pool2d(x, out), a, g)
    _, tgx = _tgrad(lambda x: TF.adaptive_max_pool2d(x, out), a, g)
    np.testing.assert_allclose(gx, tgx, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 6), st.integers(1, 6),
       st.integers(0, 2**31 - 1), st.booleans())
def test_adaptive_max_ties_nan_inf_match_torch(H, W, Ho, Wo, seed, special):
    # small integers: many ties (the first maximum in row-major order wins); NaN: a window's
    # last NaN; all -inf windows: their first position
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 3, (2, 2, H, W)).astype(np.float64)
    if special:
        a[rng.random(a.shape) < 0.15] = np.nan
        a[rng.random(a.shape) < 0.3] = -np.inf
    v, i = F.adaptive_max_pool2d(tl.tensor(a), (Ho, Wo), return_indices=True)
    tv, ti = TF.adaptive_max_pool2d(torch.tensor(a), (Ho, Wo), return_indices=True)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


def test_adaptive_max_all_neg_inf_and_non_contiguous():
    a = np.full((1, 2, 5, 7), -np.inf)
    v, i = F.adaptive_max_pool2d(tl.tensor(a), (2, 3), return_indices=True)
    tv, ti = TF.adaptive_max_pool2d(torch.tensor(a), (2, 3), return_indices=True)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    b = np.random.default_rng(2).standard_normal((2, 3, 9, 11)).astype(np.float32)
    x = tl.tensor(b).permute(0, 1, 3, 2)            # (2, 3, 11, 9), not contiguous
    v, i = F.adaptive_max_pool2d(x, (4, 5), return_indices=True)
    tv, ti = TF.adaptive_max_pool2d(torch.tensor(b).permute(0, 1, 3, 2), (4, 5),
                                    return_indices=True)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


def test_adaptive_max_empty_batch_and_gradgrad():
    v = F.adaptive_max_pool2d(tl.tensor(np.zeros((0, 2, 5, 5))), (3, 3))
    assert tuple(v.shape) == (0, 2, 3, 3)
    x = tl.tensor(np.random.default_rng(3).permutation(50).reshape(1, 2, 5, 5) * 0.1,
                  requires_grad=True)
    assert tl.autograd.gradgradcheck(lambda t: F.adaptive_max_pool2d(t, (3, 2)), (x,))


@pytest.mark.skipif(not hasattr(_ops, "adaptive_max_pool2d_planes"), reason="not built")
def test_adaptive_kernel_checks_shapes():
    x = np.zeros((2, 5, 5))
    with pytest.raises(ValueError, match="adaptive_max_pool2d_planes"):
        _ops.adaptive_max_pool2d_planes(x, np.empty((3, 2, 2)), np.empty((3, 2, 2), np.int64))
    with pytest.raises(ValueError, match="adaptive_max_pool2d_planes"):
        _ops.adaptive_max_pool2d_planes(x, np.empty((2, 2, 2)), np.empty((2, 2, 3), np.int64))
    with pytest.raises(ValueError, match="empty input planes"):
        _ops.adaptive_max_pool2d_planes(np.zeros((2, 0, 5)), np.empty((2, 2, 2)),
                                        np.empty((2, 2, 2), np.int64))


# --- topk_rows' checks --------------------------------------------------------------------------
def test_topk_rows_checks_arguments():
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    out = np.empty((3, 2), np.int64)
    _ops.topk_rows(x, out, True)
    np.testing.assert_array_equal(out, np.argsort(-x, axis=1, kind="stable")[:, :2])
    _ops.topk_rows(x.astype(np.float64), out, False)
    np.testing.assert_array_equal(out, np.argsort(x, axis=1, kind="stable")[:, :2])
    bad = [(x.astype(np.int32), out), (x[:, ::2], np.empty((3, 2), np.int64)),
           (x, out.astype(np.int32)), (x, np.empty((4, 2), np.int64)),
           (x, np.empty((3, 0), np.int64)), (x, np.empty((3, 6), np.int64)),
           (x[0], out), (x.astype(">f4"), out)]
    ro = out.copy()
    ro.setflags(write=False)
    bad.append((x, ro))
    for a, o in bad:
        with pytest.raises(ValueError, match="topk_rows"):
            _ops.topk_rows(a, o, True)
    with pytest.raises(TypeError, match="topk_rows"):
        _ops.topk_rows(memoryview(x), out, True)
    _ops.topk_rows(np.empty((0, 5), np.float32), np.empty((0, 2), np.int64), True)


def test_topk_small_router_shape_matches_torch():
    a = np.random.default_rng(5).standard_normal((160, 4)).astype(np.float32)
    v, i = tl.topk(tl.tensor(a), 2)
    tv, ti = torch.topk(torch.tensor(a), 2)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


# --- kthvalue -----------------------------------------------------------------------------------
def _check_kth(a, k, dim, keepdim=False):
    v, i = tl.kthvalue(tl.tensor(a), k, dim, keepdim)
    tv, ti = torch.kthvalue(torch.tensor(a), k, dim, keepdim)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    assert i.numpy().shape == tuple(ti.shape) and i.dtype == np.int64
    # ties: PyTorch leaves which index unspecified; it must hold the k-th value
    at = np.take_along_axis(np.asarray(a).reshape(np.shape(a) or (1,)),
                            i.numpy().reshape(v.numpy().shape if keepdim else
                                              np.expand_dims(v.numpy(), dim).shape
                                              if np.ndim(a) else (1,)),
                            dim if np.ndim(a) else 0)
    np.testing.assert_array_equal(at.reshape(v.numpy().shape), v.numpy())
    return i.numpy(), ti.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,k,dim", [((100,), 7, -1), ((16, 32), 5, -1), ((16, 32), 3, 0),
                                         ((64, 200), 150, 1), ((3, 300, 2), 290, 1),
                                         ((3, 300, 2), 150, 1), ((4, 5, 6), 6, 2),
                                         ((1,), 1, 0)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_kthvalue_matches_torch(shape, k, dim, keepdim, dtype):
    a = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    i, ti = _check_kth(a, k, dim, keepdim)
    np.testing.assert_array_equal(i, ti)                 # distinct values: one answer
    g = np.random.default_rng(1).standard_normal(
        torch.kthvalue(torch.tensor(a), k, dim, keepdim)[0].shape).astype(dtype)
    _, gx = _grad(lambda x: tl.kthvalue(x, k, dim, keepdim)[0], a, g)
    _, tgx = _tgrad(lambda x: torch.kthvalue(x, k, dim, keepdim)[0], a, g)
    np.testing.assert_array_equal(gx, tgx)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**31 - 1), st.booleans())
def test_kthvalue_ties_nan_inf(n, seed, special):
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 3, (3, n)).astype(np.float32)
    if special:
        a[rng.random(a.shape) < 0.2] = np.nan
        a[rng.random(a.shape) < 0.2] = np.inf
        a[rng.random(a.shape) < 0.2] = -np.inf
    for k in {1, n, (n + 1) // 2}:
        _check_kth(a, k, 1)


def test_kthvalue_0d_non_contiguous_int_and_errors():
    for keepdim in (False, True):
        v, i = tl.kthvalue(tl.tensor(2.5), 1, keepdim=keepdim)
        tv, ti = torch.kthvalue(torch.tensor(2.5), 1, keepdim=keepdim)
        assert v.shape == () == tuple(tv.shape) and i.shape == () == tuple(ti.shape)
        assert float(v) == 2.5 and int(i) == int(ti) == 0
    a = np.random.default_rng(2).standard_normal((7, 9))
    v, i = tl.kthvalue(tl.tensor(a).T, 3, 1)
    tv, ti = torch.kthvalue(torch.tensor(a).T, 3, 1)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    b = np.random.default_rng(3).permutation(40).reshape(5, 8)
    v, i = tl.kthvalue(tl.tensor(b), 4, 1)
    tv, ti = torch.kthvalue(torch.tensor(b), 4, 1)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    with pytest.raises(ValueError, match="kthvalue"):
        tl.kthvalue(tl.tensor(a), 10, 1)
    with pytest.raises(ValueError, match="kthvalue"):
        tl.kthvalue(tl.tensor(a), 0, 1)


def test_kthvalue_gradgrad():
    x = tl.tensor(np.random.default_rng(4).permutation(24).reshape(4, 6) * 0.25,
                  requires_grad=True)
    assert tl.autograd.gradgradcheck(lambda t: tl.kthvalue(t, 2, 1)[0], (x,))


# --- pdist p=2 backward, register-tiled -------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,m", [(2, 1), (3, 5), (129, 3), (200, 17), (600, 4), (1100, 2)])
def test_pdist_backward_tiles_match_torch(n, m, dtype):
    # sizes around the tiles (128 float32 / 64 float64 partner rows, chunks of 32 rows, blocks
    # of 512) and feature counts around the unroll by 4
    rng = np.random.default_rng(n * 31 + m)
    a = rng.standard_normal((n, m)).astype(dtype)
    g = rng.standard_normal(n * (n - 1) // 2).astype(dtype)
    out, gx = _grad(lambda x: F.pdist(x), a, g)
    tout, tgx = _tgrad(lambda x: TF.pdist(x), a, g)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(gx, tgx, rtol=tol, atol=tol * np.abs(tgx).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pdist_backward_nan_inf_and_duplicates(dtype):
    # PyTorch's gradient is NaN in every row paired with a NaN distance; tensorlib's weight
    # g / d is 0 there (tests/kernels/test_pdist_kernels.py), so NaN stays in the features that hold
    # a NaN or inf: compare with that rule in float64 NumPy, and with PyTorch where it is finite
    rng = np.random.default_rng(7)
    a = rng.standard_normal((150, 6)).astype(dtype)
    a[3] = a[140]                       # a coinciding pair: zero weight, as PyTorch
    a[10, 2] = np.nan
    a[130, 4] = np.inf
    _, gx = _grad(lambda x: F.pdist(x), a)
    x = a.astype(np.float64)
    with np.errstate(invalid="ignore"):
        diff = x[:, None, :] - x[None, :, :]
    with np.errstate(invalid="ignore"):
        d = np.sqrt((diff ** 2).sum(-1))
        w = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0)     # 0 * inf: NaN, as IEEE
        want = np.where(np.eye(150, dtype=bool)[..., None], 0.0, w[..., None] * diff).sum(1)
    np.testing.assert_array_equal(np.isnan(gx), np.isnan(want))
    ok = ~np.isnan(want)
    tol = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(gx[ok], want[ok], rtol=tol, atol=tol * np.abs(want[ok]).max())
    b = np.delete(a, [10, 130], axis=0)
    _, gx = _grad(lambda x: F.pdist(x), b)
    _, tgx = _tgrad(lambda x: TF.pdist(x), b)
    np.testing.assert_allclose(gx, tgx, rtol=tol, atol=tol * np.abs(tgx).max())


def test_pdist_backward_non_contiguous_and_gradgrad():
    a = np.random.default_rng(8).standard_normal((5, 140))
    _, gx = _grad(lambda x: F.pdist(x.T), a)
    _, tgx = _tgrad(lambda x: TF.pdist(x.T), a)
    np.testing.assert_allclose(gx, tgx, rtol=1e-10, atol=1e-10)
    x = tl.tensor(np.random.default_rng(9).standard_normal((7, 3)), requires_grad=True)
    assert tl.autograd.gradgradcheck(lambda t: F.pdist(t), (x,))
