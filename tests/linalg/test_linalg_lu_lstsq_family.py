"""tl.linalg's LU family, lstsq, matrix_rank, cond, cholesky_ex, inv_ex, solve_ex, ldl_*,
householder_product, vander, tensorinv, tensorsolve and diagonal against torch.linalg
(float32 and float64, batched shapes drawn by hypothesis), and their gradients against
finite differences (gradcheck / gradgradcheck in float64) and against torch's."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib._apply import apply
from tensorlib.ops import linalg_lu

torch = pytest.importorskip("torch")

DTYPES = st.sampled_from([np.float32, np.float64])
TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-9, atol=1e-9)}


def _t(x, rg=False):
    return tl.tensor(np.asarray(x), requires_grad=rg)


def _tt(x, rg=False):
    return torch.tensor(np.asarray(x), requires_grad=rg)


def _np(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else x.numpy()


def _close(got, want, dtype=np.float64, **kw):
    g, w = _np(got), _np(want)
    assert g.shape == w.shape, f"shape {g.shape} != {w.shape}"
    assert str(g.dtype) == str(w.dtype), f"dtype {g.dtype} != {w.dtype}"
    np.testing.assert_allclose(g, w, **{**TOL[dtype], **kw})


def _rng(draw):
    return np.random.default_rng(draw(st.integers(0, 2**31 - 1)))


def _cond_matrix(rng, shape, lo=1.0, hi=3.0):
    """Random matrices with singular values in [lo, hi] (well conditioned)."""
    m, n = shape[-2:]
    k = min(m, n)
    out = np.empty(shape)
    for idx in np.ndindex(*shape[:-2]):
        u, _ = np.linalg.qr(rng.standard_normal((m, m)))
        v, _ = np.linalg.qr(rng.standard_normal((n, n)))
        s = np.zeros((m, n))
        s[range(k), range(k)] = rng.uniform(lo, hi, k)
        out[idx] = u @ s @ v.T
    return out


batches = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)


# --- LU ---------------------------------------------------------------------------------------
@given(batch=batches, m=st.integers(0, 5), n=st.integers(0, 5), dtype=DTYPES, data=st.data())
def test_lu_factor_ex_and_lu_match_torch(batch, m, n, dtype, data):
    a = _rng(data.draw).standard_normal(batch + (m, n)).astype(dtype)
    LU, piv, info = tl.linalg.lu_factor_ex(_t(a))
    want = torch.linalg.lu_factor_ex(_tt(a))
    _close(LU, want.LU, dtype)
    np.testing.assert_array_equal(_np(piv), _np(want.pivots))
    assert piv.dtype == np.int32 and info.dtype == np.int32
    np.testing.assert_array_equal(_np(info), _np(want.info))
    for got, ref in zip(tl.linalg.lu(_t(a)), torch.linalg.lu(_tt(a))):
        _close(got, ref, dtype)


@given(batch=batches, m=st.integers(1, 6), n=st.integers(1, 6), pivot=st.booleans(),
       data=st.data())
def test_elimination_kernel_matches_lapack(batch, m, n, pivot, data):
    """The batched elimination (the CuPy path, and pivot=False on the CPU) gives LAPACK's
    factors: same pivots, same LU; without pivoting, A = L U."""
    a = _rng(data.draw).standard_normal(batch + (m, n))
    lu_g, piv_g, info_g = linalg_lu._lu_generic(np, a, pivot=pivot)
    if pivot:
        lu_c, piv_c, info_c = linalg_lu._lu_lapack(a)
        np.testing.assert_allclose(lu_g, lu_c, rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(piv_g, piv_c)
        np.testing.assert_array_equal(info_g, info_c)
    else:
        np.testing.assert_array_equal(piv_g, np.broadcast_to(np.arange(1, min(m, n) + 1),
                                                             piv_g.shape))
        P, L, U = tl.linalg.lu(_t(a), pivot=False)
        assert P.shape == (0,)
        np.testing.assert_allclose(_np(L @ U), a, rtol=1e-8, atol=1e-8)


def test_lu_zero_pivot_info_and_errors():
    S = np.array([[1.0, 2.0], [2.0, 4.0]])
    batch = np.stack([np.eye(2), S])
    LU, piv, info = tl.linalg.lu_factor_ex(_t(batch))
    want = torch.linalg.lu_factor_ex(_tt(batch))
    np.testing.assert_array_equal(_np(info), [0, 2])
    np.testing.assert_array_equal(_np(info), _np(want.info))
    _close(LU, want.LU)
    with pytest.raises(tl.linalg.LinAlgError, match=r"U\[2,2\] is zero.*batch element 1"):
        tl.linalg.lu_factor(_t(batch))
    with pytest.raises(RuntimeError):           # also PyTorch's exception class
        tl.linalg.lu_factor_ex(_t(S), check_errors=True)
    P, L, U = tl.linalg.lu(_t(S))               # lu does not raise
    np.testing.assert_allclose(_np(P @ L @ U), S)


@pytest.mark.parametrize("shape", [(0, 3, 3), (200, 3, 3), (50, 2, 4), (60, 5, 2),
                                   (3, 40, 40)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lu_factor_both_cpu_paths_match_torch(shape, dtype):
    """Many small matrices take the batched elimination, few large ones LAPACK."""
    a = np.random.default_rng(20).standard_normal(shape).astype(dtype)
    LU, piv, info = tl.linalg.lu_factor_ex(_t(a))
    want = torch.linalg.lu_factor_ex(_tt(a))
    _close(LU, want.LU, dtype, **({"rtol": 1e-3, "atol": 1e-4} if dtype == np.float32
                                  else {}))
    np.testing.assert_array_equal(_np(piv), _np(want.pivots))
    np.testing.assert_array_equal(_np(info), _np(want.info))


@pytest.mark.parametrize("batch", [(), (3,), (40,), (2, 30)])
def test_permutation_paths_agree(batch):
    """Pivots to P: the list path (few matrices) and the vectorised one (many) agree, and
    P^T A = L U."""
    a = np.random.default_rng(19).standard_normal(batch + (5, 5))
    _, piv, _ = linalg_lu._lu_lapack(a)
    P = linalg_lu._perm_fwd(np, piv, m=5, dtype="float64")
    P_vec = linalg_lu._perm_fwd(_NotNumpy, piv, m=5, dtype="float64")
    np.testing.assert_array_equal(P, P_vec)
    _, L, U = tl.linalg.lu(_t(a))
    np.testing.assert_allclose(np.swapaxes(P, -1, -2) @ a, _np(L @ U), rtol=1e-12, atol=1e-12)


class _NotNumpy:
    """NumPy under another name: the array-module code paths taken for other backends."""
    def __getattr__(self, name):
        return getattr(np, name)


_NotNumpy = _NotNumpy()


def test_lu_no_pivot_fails_where_pivoting_is_needed():
    a = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert int(tl.linalg.lu_factor_ex(_t(a), pivot=False).info) == 1
    assert int(tl.linalg.lu_factor_ex(_t(a)).info) == 0


@given(batch=batches, n=st.integers(1, 5), k=st.integers(1, 3), left=st.booleans(),
       adjoint=st.booleans(), dtype=DTYPES, data=st.data())
def test_lu_solve_matches_torch(batch, n, k, left, adjoint, dtype, data):
    rng = _rng(data.draw)
    a = _cond_matrix(rng, batch + (n, n)).astype(dtype)
    bshape = (n, k) if left else (k, n)
    b_batch = batch[data.draw(st.integers(0, len(batch))):]      # broadcasting batch
    b = rng.standard_normal(b_batch + bshape).astype(dtype)
    LU, piv = tl.linalg.lu_factor(_t(a))
    tLU, tpiv = torch.linalg.lu_factor(_tt(a))
    got = tl.linalg.lu_solve(LU, piv, _t(b), left=left, adjoint=adjoint)
    want = torch.linalg.lu_solve(tLU, tpiv, _tt(b), left=left, adjoint=adjoint)
    _close(got, want, dtype, **({"rtol": 1e-3, "atol": 1e-3} if dtype == np.float32 else {}))


@given(batch=batches, n=st.integers(1, 5), vec=st.booleans(), left=st.booleans(),
       dtype=DTYPES, data=st.data())
def test_solve_ex_and_inv_ex_match_torch(batch, n, vec, left, dtype, data):
    rng = _rng(data.draw)
    a = _cond_matrix(rng, batch + (n, n)).astype(dtype)
    b = rng.standard_normal(batch + ((n,) if vec else (n, 2) if left else (2, n))).astype(dtype)
    if vec:
        left = True
    got, info = tl.linalg.solve_ex(_t(a), _t(b), left=left)
    want = torch.linalg.solve_ex(_tt(a), _tt(b), left=left)
    kw = {"rtol": 1e-3, "atol": 1e-3} if dtype == np.float32 else {}
    _close(got, want.result, dtype, **kw)
    np.testing.assert_array_equal(_np(info), _np(want.info))
    inv, info = tl.linalg.inv_ex(_t(a))
    want = torch.linalg.inv_ex(_tt(a))
    _close(inv, want.inverse, dtype, **kw)
    np.testing.assert_array_equal(_np(info), _np(want.info))


def test_ex_variants_report_singular_matrices_as_torch():
    S = np.array([[[1.0, 2.0], [2.0, 4.0]], [[2.0, 0.0], [0.0, 1.0]]])
    b = np.ones((2, 2))
    inv, info = tl.linalg.inv_ex(_t(S))
    want = torch.linalg.inv_ex(_tt(S))
    np.testing.assert_array_equal(_np(info), [2, 0])
    np.testing.assert_array_equal(_np(inv), _np(want.inverse))       # inf where torch's is
    x, info = tl.linalg.solve_ex(_t(S), _t(b))
    np.testing.assert_array_equal(_np(x), _np(torch.linalg.solve_ex(_tt(S), _tt(b)).result))
    np.testing.assert_array_equal(_np(info), [2, 0])
    for fn in (lambda: tl.linalg.inv_ex(_t(S), check_errors=True),
               lambda: tl.linalg.solve_ex(_t(S), _t(b), check_errors=True)):
        with pytest.raises(tl.linalg.LinAlgError, match="singular"):
            fn()


@pytest.mark.parametrize("batch,n,k", [((), 7, 3), ((40,), 3, 2), ((2, 3), 4, 1)])
@pytest.mark.parametrize("upper", [True, False])
@pytest.mark.parametrize("unit", [True, False])
def test_triangular_solve_kernels_match_torch(batch, n, k, upper, unit):
    """The CPU kernel's two paths (BLAS trsm for few matrices, the vectorised substitution
    for many) and the generic kernel all solve as torch.linalg.solve_triangular."""
    rng = np.random.default_rng(n)
    t = rng.standard_normal(batch + (n, n)) + 3 * np.eye(n)
    b = rng.standard_normal(batch + (n, k))
    want = _np(torch.linalg.solve_triangular(_tt(t), _tt(b), upper=upper,
                                             unitriangular=unit))
    for got in (linalg_lu._trsolve_cpu(t, b, upper=upper, unit=unit),
                linalg_lu._trsolve_generic(np, t, b, upper=upper, unit=unit)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@given(batch=batches, n=st.integers(1, 5), k=st.integers(1, 3), upper=st.booleans(),
       left=st.booleans(), unit=st.booleans(), dtype=DTYPES, data=st.data())
def test_solve_triangular_matches_torch(batch, n, k, upper, left, unit, dtype, data):
    rng = _rng(data.draw)
    a = (rng.standard_normal(batch + (n, n)) + 3 * np.eye(n)).astype(dtype)
    b_batch = batch[data.draw(st.integers(0, len(batch))):]
    b = rng.standard_normal(b_batch + ((n, k) if left else (k, n))).astype(dtype)
    got = tl.linalg.solve_triangular(_t(a), _t(b), upper=upper, left=left,
                                     unitriangular=unit)
    want = torch.linalg.solve_triangular(_tt(a), _tt(b), upper=upper, left=left,
                                         unitriangular=unit)
    _close(got, want, dtype, **({"rtol": 1e-3, "atol": 1e-3} if dtype == np.float32 else {}))


def test_solve_triangular_singular_and_gradients():
    S = np.array([[1.0, 2.0], [0.0, 0.0]])
    b = np.ones((2, 1))
    np.testing.assert_array_equal(
        _np(tl.linalg.solve_triangular(_t(S), _t(b), upper=True)),
        _np(torch.linalg.solve_triangular(_tt(S), _tt(b), upper=True)))     # inf, no error
    rng = np.random.default_rng(21)
    a = _t(rng.standard_normal((2, 3, 3)) + 3 * np.eye(3), rg=True)
    y = _t(rng.standard_normal((2, 3)), rg=True)
    f = lambda x, z: tl.linalg.solve_triangular(x, z, upper=False, left=False)  # noqa: E731
    assert tl.gradcheck(f, [a, y])
    assert tl.gradgradcheck(f, [a, y])
    with pytest.raises(ValueError, match=r"must be \(\.\.\., 3, k\)"):
        tl.linalg.solve_triangular(a, _t(np.ones(3)), upper=True)


# --- gradients ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 3), (2, 3, 3), (4, 2), (2, 4), (2, 2, 3)])
def test_lu_gradients(shape):
    a = _t(_cond_matrix(np.random.default_rng(1), shape), rg=True)
    assert tl.gradcheck(lambda x: tl.linalg.lu_factor(x).LU, [a])
    assert tl.gradcheck(lambda x: tuple(tl.linalg.lu(x))[1:], [a])
    assert tl.gradgradcheck(lambda x: tl.linalg.lu_factor_ex(x).LU, [a])


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4), (2, 3, 3)])
def test_lu_gradient_matches_torch(shape):
    rng = np.random.default_rng(2)
    a = _cond_matrix(rng, shape)
    m, n = shape[-2:]
    k = min(m, n)
    gl = rng.standard_normal(shape[:-2] + (m, k))
    gu = rng.standard_normal(shape[:-2] + (k, n))
    x = _t(a, rg=True)
    _, L, U = tl.linalg.lu(x)
    (got,) = tl.grad([(L * _t(gl)).sum() + (U * _t(gu)).sum()], [x])
    xt = _tt(a, rg=True)
    _, Lt, Ut = torch.linalg.lu(xt)
    ((Lt * _tt(gl)).sum() + (Ut * _tt(gu)).sum()).backward()
    np.testing.assert_allclose(_np(got), _np(xt.grad), rtol=1e-9, atol=1e-9)


def test_lu_without_pivoting_gradient():
    a = _t(_cond_matrix(np.random.default_rng(3), (3, 3)) + 4 * np.eye(3), rg=True)
    assert tl.gradcheck(lambda x: tl.linalg.lu_factor(x, pivot=False).LU, [a])


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [True, False])
def test_lu_solve_gradients(left, adjoint):
    rng = np.random.default_rng(4)
    a = _t(_cond_matrix(rng, (2, 3, 3)), rg=True)
    b = _t(rng.standard_normal((3, 2) if left else (2, 3)), rg=True)   # broadcast batch

    def f(x, y):
        LU, piv = tl.linalg.lu_factor(x)
        return tl.linalg.lu_solve(LU, piv, y, left=left, adjoint=adjoint)
    assert tl.gradcheck(f, [a, b])
    assert tl.gradgradcheck(f, [a, b])


def test_solve_ex_inv_ex_gradients_match_solve_and_inv():
    rng = np.random.default_rng(5)
    a = _t(_cond_matrix(rng, (2, 3, 3)), rg=True)
    b = _t(rng.standard_normal((2, 3)), rg=True)
    assert tl.gradcheck(lambda x, y: tl.linalg.solve_ex(x, y).result, [a, b])
    assert tl.gradgradcheck(lambda x: tl.linalg.inv_ex(x).inverse, [a])
    (g1,) = tl.grad([tl.linalg.inv_ex(a).inverse.sum()], [a])
    (g2,) = tl.grad([tl.linalg.inv(a).sum()], [a])
    np.testing.assert_allclose(_np(g1), _np(g2), rtol=1e-9, atol=1e-9)


def test_triangular_solve_op_gradients():
    rng = np.random.default_rng(6)
    t = _t(rng.standard_normal((2, 3, 3)) + 3 * np.eye(3), rg=True)
    b = _t(rng.standard_normal((3, 2)), rg=True)
    for upper in (True, False):
        for unit in (True, False):
            def f(x, y, upper=upper, unit=unit):
                return apply(linalg_lu.TRSOLVE, x, y, upper=upper, unit=unit)
            assert tl.gradcheck(f, [t, b])
            assert tl.gradgradcheck(f, [t, b])


# --- lstsq --------------------------------------------------------------------------------
@given(batch=batches, m=st.integers(1, 5), n=st.integers(1, 5), k=st.integers(1, 3),
       driver=st.sampled_from([None, "gels", "gelsy", "gelsd", "gelss"]), vec=st.booleans(),
       dtype=DTYPES, data=st.data())
def test_lstsq_matches_torch(batch, m, n, k, driver, vec, dtype, data):
    rng = _rng(data.draw)
    if driver == "gels" and m < n:
        m, n = n, m             # torch's gels (QR) on the CPU needs m >= n
    a = _cond_matrix(rng, batch + (m, n)).astype(dtype)
    b = rng.standard_normal(batch + ((m,) if vec else (m, k))).astype(dtype)
    got = tl.linalg.lstsq(_t(a), _t(b), driver=driver)
    want = torch.linalg.lstsq(_tt(a), _tt(b), driver=driver)
    kw = {"rtol": 1e-3, "atol": 1e-3} if dtype == np.float32 else {"rtol": 1e-8, "atol": 1e-8}
    for g, w in zip(got, want):
        _close(g, w, dtype, **kw)


@pytest.mark.parametrize("driver", ["gelsy", "gelsd", "gelss"])
def test_lstsq_rank_deficient_matches_torch(driver):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((2, 6, 4))
    a[..., 3] = a[..., 0] - a[..., 1]          # rank 3
    b = rng.standard_normal((2, 6, 2))
    got = tl.linalg.lstsq(_t(a), _t(b), driver=driver)
    want = torch.linalg.lstsq(_tt(a), _tt(b), driver=driver)
    np.testing.assert_array_equal(_np(got.rank), [3, 3])
    for g, w in zip(got, want):
        _close(g, w, rtol=1e-7, atol=1e-7)
    assert got.residuals.shape == (0,)        # not every matrix has full rank


def test_lstsq_broadcasts_batches_and_checks_shapes():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((4, 5, 3)), rng.standard_normal((1, 5, 2))
    got = tl.linalg.lstsq(_t(a), _t(b), driver="gelsd")
    want = torch.linalg.lstsq(_tt(a), _tt(b), driver="gelsd")
    for g, w in zip(got, want):
        _close(g, w)
    with pytest.raises(ValueError, match="driver must be one of"):
        tl.linalg.lstsq(_t(a), _t(b), driver="gelsx")
    with pytest.raises(ValueError, match="do not align"):
        tl.linalg.lstsq(_t(a), _t(rng.standard_normal((4, 3, 2))))


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 4)])
def test_lstsq_gradients(shape):
    rng = np.random.default_rng(9)
    a = _t(_cond_matrix(rng, shape), rg=True)
    b = _t(rng.standard_normal(shape[:-1] + (2,)), rg=True)
    assert tl.gradcheck(lambda x, y: tl.linalg.lstsq(x, y, driver="gelsd")[:2], [a, b])
    assert tl.gradgradcheck(lambda x, y: tl.linalg.lstsq(x, y).solution, [a, b])


def test_lstsq_gradient_matches_torch_rank_deficient():
    """PyTorch's rule (the gradient of pinv(A) @ B) also where A is rank-deficient."""
    rng = np.random.default_rng(10)
    a = rng.standard_normal((5, 3))
    a[:, 2] = 2 * a[:, 0]
    b, g = rng.standard_normal((5, 2)), rng.standard_normal((3, 2))
    x, y = _t(a, rg=True), _t(b, rg=True)
    ga, gb = tl.grad([(tl.linalg.lstsq(x, y, driver="gelsd").solution * _t(g)).sum()], [x, y])
    xt, yt = _tt(a, rg=True), _tt(b, rg=True)
    (torch.linalg.lstsq(xt, yt, driver="gelsd").solution * _tt(g)).sum().backward()
    np.testing.assert_allclose(_np(ga), _np(xt.grad), rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(_np(gb), _np(yt.grad), rtol=1e-7, atol=1e-7)


# --- matrix_rank, cond -------------------------------------------------------------------------
@given(batch=batches, m=st.integers(1, 5), n=st.integers(1, 5), r=st.integers(0, 5),
       kw=st.sampled_from([{}, {"atol": 0.5}, {"rtol": 0.3}, {"atol": 0.2, "rtol": 0.1},
                           {"hermitian": True}, {"tol": 0.5}]),
       dtype=DTYPES, data=st.data())
def test_matrix_rank_matches_torch(batch, m, n, r, kw, dtype, data):
    rng = _rng(data.draw)
    if kw.get("hermitian"):
        n = m
    r = min(r, m, n)
    a = rng.standard_normal(batch + (m, r)) @ rng.standard_normal(batch + (r, n))
    if kw.get("hermitian"):
        a = a @ np.swapaxes(a, -1, -2) - 0.5 * np.swapaxes(a, -1, -2) @ a
    a = a.astype(dtype)
    if "tol" in kw:
        got = tl.linalg.matrix_rank(_t(a), tol=kw["tol"])
        want = torch.linalg.matrix_rank(_tt(a), atol=kw["tol"], rtol=0.0)
    else:
        got = tl.linalg.matrix_rank(_t(a), **kw)
        want = torch.linalg.matrix_rank(_tt(a), **kw)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(_np(got), _np(want))


def test_matrix_rank_tensor_tolerances():
    a = np.stack([np.diag([3.0, 1.0, 0.1]), np.diag([3.0, 2.0, 1.0])])
    atol = np.array([0.5, 1.5])
    got = tl.linalg.matrix_rank(_t(a), atol=_t(atol))
    np.testing.assert_array_equal(_np(got), _np(torch.linalg.matrix_rank(_tt(a),
                                                                         atol=_tt(atol))))
    np.testing.assert_array_equal(_np(got), [2, 2])
    # a positive atol alone sets rtol to 0: the 1 counts next to 1e16 (eps * 2 * 1e16 > 1)
    big = np.diag([1e16, 1.0])
    for kw in ({"atol": 1e-3}, {}):
        np.testing.assert_array_equal(_np(tl.linalg.matrix_rank(_t(big), **kw)),
                                      _np(torch.linalg.matrix_rank(_tt(big), **kw)))
    assert int(tl.linalg.matrix_rank(_t(big), atol=1e-3)) == 2


@given(batch=batches, n=st.integers(1, 5), p=st.sampled_from(
    [None, 2, -2, 1, -1, math.inf, -math.inf, "fro", "nuc"]), dtype=DTYPES, data=st.data())
def test_cond_matches_torch(batch, n, p, dtype, data):
    a = _cond_matrix(_rng(data.draw), batch + (n, n), 0.5, 4.0).astype(dtype)
    kw = {"rtol": 1e-3, "atol": 1e-3} if dtype == np.float32 else {}
    _close(tl.linalg.cond(_t(a), p), torch.linalg.cond(_tt(a), p), dtype, **kw)


def test_cond_rectangular_and_singular():
    a = np.random.default_rng(11).standard_normal((2, 5, 3))
    _close(tl.linalg.cond(_t(a)), torch.linalg.cond(_tt(a)))
    _close(tl.linalg.cond(_t(a), -2), torch.linalg.cond(_tt(a), -2))
    S = np.array([[1.0, 2.0], [2.0, 4.0]])
    for p in (1, -1, math.inf, "fro"):
        assert math.isinf(float(tl.linalg.cond(_t(S), p)))
        assert math.isinf(float(torch.linalg.cond(_tt(S), p)))
    with pytest.raises(ValueError, match="needs square"):
        tl.linalg.cond(_t(a), "fro")
    with pytest.raises(ValueError, match="p must be one of"):
        tl.linalg.cond(_t(S), 3)


@pytest.mark.parametrize("p", [None, -2, 1, -1, math.inf, "fro", "nuc"])
def test_cond_gradients(p):
    a = _t(_cond_matrix(np.random.default_rng(12), (2, 3, 3)), rg=True)
    assert tl.gradcheck(lambda x: tl.linalg.cond(x, p), [a])
    assert tl.gradgradcheck(lambda x: tl.linalg.cond(x, p), [a])


# --- cholesky_ex ------------------------------------------------------------------------------
@given(batch=batches, n=st.integers(0, 5), upper=st.booleans(), dtype=DTYPES, data=st.data())
def test_cholesky_ex_matches_torch(batch, n, upper, dtype, data):
    rng = _rng(data.draw)
    a = rng.standard_normal(batch + (n, n))
    a = (a @ np.swapaxes(a, -1, -2) + n * np.eye(n)).astype(dtype)
    bad = data.draw(st.booleans()) and n > 0 and a.ndim > 2
    if bad:                                    # one matrix of the batch not PD
        a[(0,) * (a.ndim - 2)] *= -1
    L, info = tl.linalg.cholesky_ex(_t(a), upper=upper)
    want = torch.linalg.cholesky_ex(_tt(a), upper=upper)
    np.testing.assert_array_equal(_np(info), _np(want.info))
    assert info.dtype == np.int32
    ok = _np(want.info) == 0
    np.testing.assert_allclose(_np(L)[ok], _np(want.L)[ok], **TOL[dtype])
    if bad:
        with pytest.raises(tl.linalg.LinAlgError, match="not positive-definite"):
            tl.linalg.cholesky_ex(_t(a), check_errors=True)


def test_cholesky_ex_gradients():
    rng = np.random.default_rng(13)
    a = rng.standard_normal((2, 3, 3))
    a = _t(a @ np.swapaxes(a, -1, -2) + 3 * np.eye(3), rg=True)
    assert tl.gradcheck(lambda x: tl.linalg.cholesky_ex((x + x.mT) * 0.5).L, [a])
    assert tl.gradgradcheck(lambda x: tl.linalg.cholesky_ex((x + x.mT) * 0.5, upper=True).L,
                            [a])


def test_cholesky_ex_generic_kernel_info():
    """The backend-generic kernel (CuPy's path: NaN instead of an error) finds info from the
    factor's diagonal; NumPy raises, so it is exercised on a positive-definite batch."""
    a = np.stack([np.eye(3) * 2, np.diag([1.0, 4.0, 9.0])])
    L, info = linalg_more_generic(a)
    np.testing.assert_allclose(L, np.linalg.cholesky(a))
    np.testing.assert_array_equal(info, [0, 0])


def linalg_more_generic(a):
    from tensorlib.ops import linalg_more
    return linalg_more._chol_ex_generic(np, a)


# --- LDL ------------------------------------------------------------------------------------
@given(batch=batches, n=st.integers(1, 5), dtype=DTYPES, data=st.data())
def test_ldl_factor_and_solve_match_torch(batch, n, dtype, data):
    rng = _rng(data.draw)
    a = rng.standard_normal(batch + (n, n))
    a = (a + np.swapaxes(a, -1, -2)).astype(dtype)        # symmetric, indefinite
    b = rng.standard_normal(batch + (n, 2)).astype(dtype)
    got = tl.linalg.ldl_factor_ex(_t(a))
    want = torch.linalg.ldl_factor_ex(_tt(a))
    _close(got.LD, want.LD, dtype)
    np.testing.assert_array_equal(_np(got.pivots), _np(want.pivots))
    np.testing.assert_array_equal(_np(got.info), _np(want.info))
    x = tl.linalg.ldl_solve(got.LD, got.pivots, _t(b))
    xt = torch.linalg.ldl_solve(want.LD, want.pivots, _tt(b))
    kw = {"rtol": 1e-2, "atol": 1e-2} if dtype == np.float32 else {"rtol": 1e-6, "atol": 1e-6}
    _close(x, xt, dtype, **kw)


def test_ldl_generic_kernels_run_on_host_copies():
    """The generic forwards (a GPU's path) copy to the host, factor there, and give arrays of
    the backend's module back: here a stand-in module whose arrays have ``.get()``."""
    from tensorlib.ops import linalg_ldl

    class Dev(np.ndarray):
        def get(self):
            return np.asarray(self)

    class XP:
        @staticmethod
        def asarray(a):
            return np.asarray(a).view(Dev)
    a = np.array([[4.0, 2.0], [2.0, -3.0]]).view(Dev)
    b = np.array([[1.0], [2.0]]).view(Dev)
    LD, piv, info = linalg_ldl.LDL_FACTOR.fwd(XP, a, check="")
    assert all(isinstance(o, Dev) for o in (LD, piv, info))
    x = linalg_ldl.LDL_SOLVE.fwd(XP, LD, piv, b)
    assert isinstance(x, Dev)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(a, b))


def test_ldl_singular_raises():
    with pytest.raises(tl.linalg.LinAlgError, match="singular"):
        tl.linalg.ldl_factor(_t(np.zeros((2, 2))))
    assert int(tl.linalg.ldl_factor_ex(_t(np.zeros((2, 2)))).info) == 1


# --- composites -----------------------------------------------------------------------------
@given(batch=batches, n=st.integers(1, 5), N=st.one_of(st.none(), st.integers(2, 6)),
       dtype=st.sampled_from([np.float32, np.float64, np.int64]), data=st.data())
def test_vander_matches_torch(batch, n, N, dtype, data):
    x = _rng(data.draw).uniform(-2, 2, batch + (n,))
    x = np.round(x * 3) if dtype == np.int64 else x
    x = x.astype(dtype)
    if N is None and n < 2:
        N = 2
    got = tl.linalg.vander(_t(x), N=N)
    want = torch.linalg.vander(_tt(x), N=N)
    _close(got, want, dtype if dtype != np.int64 else np.float64)


def test_vander_gradients_and_errors():
    x = _t(np.array([[0.0, 1.5, -2.0]]), rg=True)
    assert tl.gradcheck(lambda v: tl.linalg.vander(v, N=4), [x])
    assert tl.gradgradcheck(lambda v: tl.linalg.vander(v, N=4), [x])
    with pytest.raises(ValueError, match="greater than 1"):
        tl.linalg.vander(x, N=1)


@given(ind=st.integers(1, 3), data=st.data())
def test_tensorinv_matches_torch(ind, data):
    rng = _rng(data.draw)
    out = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    n = math.prod(out)
    rows = [n] if ind == 1 else ([1] * (ind - 1) + [n])
    a = _cond_matrix(rng, (n, n)).reshape(tuple(rows) + out)
    _close(tl.linalg.tensorinv(_t(a), ind=ind), torch.linalg.tensorinv(_tt(a), ind=ind),
           rtol=1e-8, atol=1e-8)


def test_tensorinv_tensorsolve_gradients_and_errors():
    rng = np.random.default_rng(14)
    a = _t(_cond_matrix(rng, (6, 6)).reshape(2, 3, 6), rg=True)
    b = _t(rng.standard_normal((2, 3)), rg=True)
    assert tl.gradcheck(lambda x: tl.linalg.tensorinv(x, ind=2), [a])
    assert tl.gradgradcheck(tl.linalg.tensorsolve, [a, b])
    _close(tl.linalg.tensorsolve(a, b), torch.linalg.tensorsolve(_tt(_np(a)), _tt(_np(b))))
    a2 = _np(a).transpose(2, 0, 1)
    _close(tl.linalg.tensorsolve(_t(a2), b, dims=(0,)),
           torch.linalg.tensorsolve(_tt(a2), _tt(_np(b)), dims=(0,)), rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="product"):
        tl.linalg.tensorinv(_t(np.ones((2, 3, 4))), ind=1)
    with pytest.raises(ValueError, match="positive"):
        tl.linalg.tensorinv(a, ind=0)
    with pytest.raises(ValueError, match="must start with"):
        tl.linalg.tensorsolve(_t(np.ones((2, 3, 5))), b)


@given(batch=batches, m=st.integers(1, 5), data=st.data(), dtype=DTYPES)
def test_householder_product_matches_torch(batch, m, data, dtype):
    rng = _rng(data.draw)
    n = data.draw(st.integers(1, m))
    k = data.draw(st.integers(0, n))
    a = rng.standard_normal(batch + (m, n)).astype(dtype)
    tau = rng.uniform(0, 2, batch + (k,)).astype(dtype)
    _close(tl.linalg.householder_product(_t(a), _t(tau)),
           torch.linalg.householder_product(_tt(a), _tt(tau)), dtype,
           **({"rtol": 1e-3, "atol": 1e-3} if dtype == np.float32 else {}))


def test_householder_product_from_geqrf_and_gradients():
    rng = np.random.default_rng(15)
    a = rng.standard_normal((5, 3))
    qr, tau = torch.geqrf(_tt(a))
    q = tl.linalg.householder_product(_t(_np(qr)), _t(_np(tau)))
    np.testing.assert_allclose(_np(q), np.linalg.qr(a)[0] * np.sign(
        np.diag(np.linalg.qr(a)[1]) * np.diag(_np(qr))), rtol=1e-10, atol=1e-10)
    x, t = _t(rng.standard_normal((2, 4, 3)), rg=True), _t(rng.uniform(0, 2, (2, 2)), rg=True)
    assert tl.gradcheck(tl.linalg.householder_product, [x, t])
    assert tl.gradgradcheck(tl.linalg.householder_product, [x, t])
    with pytest.raises(ValueError, match="at least as many rows"):
        tl.linalg.householder_product(_t(np.ones((2, 3))), _t(np.ones(2)))
    with pytest.raises(ValueError, match="at most n"):
        tl.linalg.householder_product(_t(np.ones((3, 2))), _t(np.ones(3)))


@pytest.mark.parametrize("offset,dim1,dim2", [(0, -2, -1), (1, -2, -1), (-1, 0, 2), (2, 1, 0)])
def test_diagonal_matches_torch(offset, dim1, dim2):
    a = np.random.default_rng(16).standard_normal((3, 4, 5))
    _close(tl.linalg.diagonal(_t(a), offset=offset, dim1=dim1, dim2=dim2),
           torch.linalg.diagonal(_tt(a), offset=offset, dim1=dim1, dim2=dim2))


def test_every_real_torch_linalg_function_exists():
    complex_only = {"eig", "eigvals"}          # complex results: tensorlib has no complex dtype
    names = {n for n in dir(torch.linalg) if not n.startswith("_") and n != "common_notes"}
    missing = sorted(n for n in names - complex_only if not hasattr(tl.linalg, n))
    assert not missing


def test_lu_solve_runs_under_capture():
    @tl.function
    def f(x, b):
        LU, piv = tl.linalg.lu_factor(x)
        return tl.linalg.lu_solve(LU, piv, b)
    rng = np.random.default_rng(17)
    b = rng.standard_normal((3, 2))
    for _ in range(2):                         # trace, then replay with new values
        a = _cond_matrix(rng, (3, 3))
        np.testing.assert_allclose(_np(f(_t(a), _t(b))), np.linalg.solve(a, b), rtol=1e-10,
                                   atol=1e-10)


def _specs(ts):
    return [(tuple(t.shape), t.dtype) for t in ts]


def test_ops_infer_and_cost_match_eager():
    """infer gives the eager outputs' shapes and dtypes; cost accepts unknown (None) dims."""
    from tensorlib.ops import linalg_ldl, linalg_lstsq, linalg_more
    rng = np.random.default_rng(18)
    a = _cond_matrix(rng, (2, 4, 3))
    sq = _cond_matrix(rng, (2, 3, 3))
    spd = sq @ np.swapaxes(sq, -1, -2)
    LD, piv = tl.linalg.ldl_factor(_t(spd))
    runs = [(linalg_lu.LU_FACTOR, [_t(a)], {"pivot": True, "check": ""}),
            (linalg_lu.PIVOTS_TO_PERMUTATION, [tl.linalg.lu_factor(_t(a)).pivots],
             {"m": 4, "dtype": "float64"}),
            (linalg_lu.TRSOLVE, [_t(sq), _t(rng.standard_normal((3, 2)))],
             {"upper": True, "unit": False}),
            (linalg_lstsq.LSTSQ, [_t(a), _t(rng.standard_normal((2, 4, 2)))],
             {"rcond": 1e-12}),
            (linalg_more.CHOLESKY_EX, [_t(spd)], {"check": ""}),
            (linalg_ldl.LDL_FACTOR, [_t(spd)], {"check": ""}),
            (linalg_ldl.LDL_SOLVE, [LD, piv, _t(rng.standard_normal((3, 1)))], {})]
    for op, ins, attrs in runs:
        out = apply(op, *ins, **attrs)
        outs = out if isinstance(out, tuple) else (out,)
        spec = op.infer(*_specs(ins), **attrs)
        spec = spec if isinstance(out, tuple) else (spec,)
        assert [(tuple(s), np.dtype(d)) for s, d in spec] == _specs(outs), op.name
        dyn = [((None,) + tuple(s[1:]), d) for s, d in _specs(ins)]
        flops, nbytes = op.cost(dyn, [(s, d) for s, d in _specs(outs)], **attrs)
        assert flops > 0 and nbytes > 0, op.name


@pytest.mark.parametrize("module", ["ops.linalg_lu", "ops.linalg_lstsq", "ops.linalg_more",
                                    "ops.linalg_ldl", "linalg"])
def test_docstring_examples(module):
    import doctest
    import importlib
    mod = importlib.import_module(f"tensorlib.{module}")
    result = doctest.testmod(mod, extraglobs={"tl": tl}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_numpy_forms_without_scipy(monkeypatch):
    """SciPy is optional: without it LU, cholesky_ex and triangular solves take their NumPy
    forms (same results as torch), and the LDL functions say what to install."""
    from tensorlib.ops import _scipy
    monkeypatch.setattr(_scipy, "DISABLED", True)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 5, 5))
    spd = a @ np.swapaxes(a, -1, -2)
    spd[1, 3, 3] = -50.0                    # fails at column 4
    L, info = tl.linalg.cholesky_ex(_t(spd))
    tL, tinfo = torch.linalg.cholesky_ex(_tt(spd))
    assert info.tolist() == tinfo.tolist() == [0, 4, 0]
    np.testing.assert_allclose(L.numpy(), tL.numpy(), atol=1e-10)
    LU, piv = tl.linalg.lu_factor(_t(a))
    tLU, tpiv = torch.linalg.lu_factor(_tt(a))
    np.testing.assert_allclose(LU.numpy(), tLU.numpy(), atol=1e-12)
    np.testing.assert_array_equal(piv.numpy(), tpiv.numpy())
    t = np.triu(a[0]) + 4 * np.eye(5)
    b = rng.standard_normal((5, 2))
    x = tl.linalg.solve_triangular(_t(t), _t(b), upper=True)
    np.testing.assert_allclose(x.numpy(), torch.linalg.solve_triangular(
        _tt(t), _tt(b), upper=True).numpy(), atol=1e-12)
    with pytest.raises(RuntimeError, match="ldl_factor needs SciPy.*pip install scipy"):
        tl.linalg.ldl_factor(_t(spd[0]))
