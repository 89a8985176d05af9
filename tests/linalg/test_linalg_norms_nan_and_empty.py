"""Fixes from the linalg trial 19: negative-ord vector_norm gradients at zeros, ldl_solve's
B check, cholesky / cholesky_ex / inv with NaN, empty matrix norms and gradients, dynamic
diagonal capture, ONNX det (float64) / diag_embed, pdist through cdist, lstsq's gelsy path
and the batched ldl_factor."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")


def _grads(f_tl, f_torch, *arrays, cot_seed=0):
    """Values and VJP gradients of f_tl / f_torch at float64 ``arrays``."""
    a = [tl.tensor(x, requires_grad=True) for x in arrays]
    b = [torch.tensor(x, requires_grad=True) for x in arrays]
    ya, yb = f_tl(*a), f_torch(*b)
    g = np.random.default_rng(cot_seed).standard_normal(tuple(yb.shape))
    (ya * tl.tensor(g)).sum().backward()
    (yb * torch.tensor(g)).sum().backward()
    return (ya.detach().numpy(), yb.detach().numpy(),
            [x.grad.numpy() for x in a], [x.grad.numpy() for x in b])


# --- 1: vector_norm with a negative ord -----------------------------------------------------
@pytest.mark.parametrize("ord", [-1, -2, -0.5, -3])
@pytest.mark.parametrize("x", [[[0.0, 1.0, 2.0]], [[0.0, 0.0, 0.0], [1.0, -2.0, 3.0]],
                               [[0.5, -1.5, 2.0]]])
def test_vector_norm_negative_ord_zero_entries(ord, x):
    va, vb, ga, gb = _grads(lambda t: tl.linalg.vector_norm(t, ord=ord, dim=1),
                            lambda t: torch.linalg.vector_norm(t, ord=ord, dim=1), np.array(x))
    np.testing.assert_allclose(va, vb, rtol=1e-12)
    assert np.isfinite(ga[0]).all()
    np.testing.assert_allclose(ga[0], gb[0], rtol=1e-10, atol=1e-14)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.5, -1.25, 2.0, -3.0]), min_size=1, max_size=6),
       st.sampled_from([-1.0, -2.0, -0.7]))
def test_vector_norm_negative_ord_hypothesis(vals, ord):
    x = np.array(vals)
    va, vb, ga, gb = _grads(lambda t: tl.linalg.vector_norm(t, ord=ord),
                            lambda t: torch.linalg.vector_norm(t, ord=ord), x)
    np.testing.assert_allclose(va, vb, rtol=1e-12)
    np.testing.assert_allclose(ga[0], gb[0], rtol=1e-9, atol=1e-12)


def test_vector_norm_negative_ord_all_zero_rows_grad():
    a = tl.zeros((3, 4), dtype=tl.float64, requires_grad=True)
    tl.linalg.vector_norm(a, ord=-1, dim=1).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.zeros((3, 4)))


# --- 2: ldl_solve checks B's rows -----------------------------------------------------------
A3 = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]])


@pytest.mark.parametrize("A, B", [(A3, np.ones((1, 2))), (np.stack([A3, A3]), np.ones((1, 3))),
                                  (A3, np.ones(3))])
def test_ldl_solve_rejects_wrong_rows(A, B):
    LD, piv = tl.linalg.ldl_factor(tl.tensor(A))
    with pytest.raises(ValueError, match=r"ldl_solve: B of shape .* must be \(\.\.\., 3, k\)"):
        tl.linalg.ldl_solve(LD, piv, tl.tensor(B))
    LDt, pivt = torch.linalg.ldl_factor(torch.tensor(A))
    with pytest.raises((RuntimeError, IndexError)):
        torch.linalg.ldl_solve(LDt, pivt, torch.tensor(B))


def test_ldl_solve_still_broadcasts_batch():
    A = np.stack([A3, 2 * A3])
    B = np.arange(6.0).reshape(1, 3, 2)
    LD, piv = tl.linalg.ldl_factor(tl.tensor(A))
    LDt, pivt = torch.linalg.ldl_factor(torch.tensor(A))
    np.testing.assert_allclose(tl.linalg.ldl_solve(LD, piv, tl.tensor(B)).numpy(),
                               torch.linalg.ldl_solve(LDt, pivt, torch.tensor(B)).numpy())


# --- 3: NaN in cholesky / cholesky_ex / inv; LAPACK messages ---------------------------------
NAN_CASES = [np.array([[np.nan, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 4.0]]),
             np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, np.nan]]),
             np.array([[2.0, 1.0, 0.0], [np.nan, 3.0, 1.0], [0.0, 1.0, 4.0]]),
             np.stack([np.eye(3), A3 * np.array([1, 1, np.nan])])]


@pytest.mark.parametrize("M", NAN_CASES)
@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_ex_nan_info_as_torch(M, upper):
    r = tl.linalg.cholesky_ex(tl.tensor(M), upper=upper)
    t = torch.linalg.cholesky_ex(torch.tensor(M), upper=upper)
    np.testing.assert_array_equal(r.info.numpy(), t.info.numpy())
    np.testing.assert_allclose(r.L.numpy(), t.L.numpy(), equal_nan=True)


@pytest.mark.parametrize("M", NAN_CASES)
def test_cholesky_nan_raises_as_torch(M):
    t_info = torch.linalg.cholesky_ex(torch.tensor(M)).info
    if not bool(t_info.any()):
        pytest.skip("torch factors it")
    with pytest.raises(tl.linalg.LinAlgError, match="cholesky: .*not positive-definite"):
        tl.linalg.cholesky(tl.tensor(M))
    with pytest.raises(RuntimeError):
        torch.linalg.cholesky(torch.tensor(M))
    with pytest.raises(tl.linalg.LinAlgError):
        tl.linalg.cholesky_ex(tl.tensor(M), check_errors=True)


def test_cholesky_finite_unchanged_with_grad():
    S = A3 @ A3.T + np.eye(3)
    def sym(t):
        return (t + t.mT) / 2
    va, vb, ga, gb = _grads(lambda t: tl.linalg.cholesky(sym(t)),
                            lambda t: torch.linalg.cholesky(sym(t)), S)
    np.testing.assert_allclose(va, vb)
    np.testing.assert_allclose(ga[0], gb[0], rtol=1e-10)


def test_inv_of_nan_matrix_all_nan():
    M = np.stack([A3, NAN_CASES[0]])
    r, t = tl.linalg.inv(tl.tensor(M)).numpy(), torch.linalg.inv(torch.tensor(M)).numpy()
    np.testing.assert_allclose(r, t, equal_nan=True)
    assert np.isnan(r[1]).all() and np.isfinite(r[0]).all()


def test_lapack_messages_keep_acronyms():
    with pytest.raises(tl.linalg.LinAlgError) as e:
        tl.linalg.eigh(tl.tensor(NAN_CASES[0]))
    assert str(e.value).startswith("eigh: ") and "invalid inputs" not in str(e.value)
    try:
        tl.linalg.svd(tl.tensor(NAN_CASES[0]))
    except tl.linalg.LinAlgError as err:
        assert "sVD" not in str(err)


# --- 5: matrix norms of empty matrices -----------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 0, 3), (2, 3, 0), (0, 0), (0, 3)])
@pytest.mark.parametrize("ord", [2, 1, math.inf, -2, -1, -math.inf, "fro", "nuc"])
def test_matrix_norm_empty(shape, ord):
    try:
        t = torch.linalg.matrix_norm(torch.zeros(shape, dtype=torch.float64), ord)
    except (RuntimeError, IndexError):
        with pytest.raises(ValueError, match="matrix_norm"):
            tl.linalg.matrix_norm(tl.zeros(shape, dtype=tl.float64), ord)
        return
    a = tl.zeros(shape, dtype=tl.float64, requires_grad=True)
    r = tl.linalg.matrix_norm(a, ord)
    np.testing.assert_array_equal(r.detach().numpy(), t.numpy())
    r.sum().backward()
    assert a.grad.shape == shape


# --- 7: empty inputs get empty gradients ----------------------------------------------------
@pytest.mark.parametrize("shape", [(0, 3, 3), (2, 0, 0)])
@pytest.mark.parametrize("name", ["inv_ex", "lu_factor", "cholesky_ex"])
def test_empty_inputs_get_gradients(shape, name):
    f = {"inv_ex": lambda m, a: m.linalg.inv_ex(a).inverse,
         "lu_factor": lambda m, a: m.linalg.lu_factor(a).LU,
         "cholesky_ex": lambda m, a: m.linalg.cholesky_ex(a).L}[name]
    a = tl.tensor(np.zeros(shape), requires_grad=True)
    b = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    f(tl, a).sum().backward()
    f(torch, b).sum().backward()
    assert a.grad is not None and tuple(a.grad.shape) == tuple(b.grad.shape)


def test_lstsq_empty_rhs_gradients():
    A, B = np.random.default_rng(1).standard_normal((4, 3)), np.zeros((4, 0))
    va, vb, ga, gb = _grads(lambda a, b: tl.linalg.lstsq(a, b).solution,
                            lambda a, b: torch.linalg.lstsq(a, b).solution, A, B)
    assert va.shape == vb.shape == (3, 0)
    np.testing.assert_array_equal(ga[0], gb[0])
    assert ga[1].shape == gb[1].shape == (4, 0)


def test_householder_product_no_reflectors_backward():
    A = tl.randn(3, 2, dtype=tl.float64, requires_grad=True)
    q = tl.linalg.householder_product(A, tl.zeros(0, dtype=tl.float64))
    np.testing.assert_array_equal(q.detach().numpy(), np.eye(3, 2))
    q.sum().backward()
    np.testing.assert_array_equal(A.grad.numpy(), np.zeros((3, 2)))


# --- 4: diagonal / trace / diag capture with dynamic matrix dims -----------------------------
@pytest.mark.parametrize("fn", [lambda a: a.diagonal(dim1=-2, dim2=-1).sum(-1),
                                lambda a: tl.linalg.diagonal(a, offset=-1),
                                lambda a: tl.trace(a[0]), lambda a: tl.diag(a[0], 1),
                                lambda a: tl.diagonal(a, 1, 1, 2)])
def test_diagonal_capture_dynamic_dims(fn):
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, None), tl.float64)])
    rng = np.random.default_rng(0)
    for shape in [(3, 4, 4), (2, 6, 6), (3, 3, 5), (1, 5, 2)]:
        x = tl.tensor(rng.standard_normal(shape))
        with tl.no_grad():
            got = f(x)
        np.testing.assert_array_equal(got.numpy(), fn(x).numpy())


# --- 4 / 6: ONNX export of det (float64) and diagonal_embed -------------------------------
class _Fn(tl.nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x)


def _run_onnx(f, x, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = str(tmp_path / "m.onnx")
    tl.onnx.export(_Fn(f), (tl.tensor(x),), path)
    s = ort.InferenceSession(path)
    return s.run(None, {s.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("f", [lambda v: tl.diag_embed(v), lambda v: tl.diag(v[0]),
                               lambda v: tl.diag(v[0], -2), lambda v: tl.diagflat(v),
                               lambda v: tl.diag_embed(v, offset=1, dim1=0, dim2=2),
                               lambda v: tl.diag_embed(v, -1, dim1=-1, dim2=0)])
def test_onnx_diagonal_embed(f, tmp_path):
    pytest.importorskip("onnx")
    v = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    v[0, 1] = np.inf    # off-diagonal stays 0, not NaN
    got = _run_onnx(f, v, tmp_path)
    np.testing.assert_array_equal(got, f(tl.tensor(v)).numpy())


def test_onnx_diag_embed_matches_torch(tmp_path):
    pytest.importorskip("onnx")
    v = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    got = _run_onnx(lambda t: tl.diag_embed(t, offset=1), v, tmp_path)
    np.testing.assert_array_equal(got, torch.diag_embed(torch.tensor(v), offset=1).numpy())


def test_onnx_det_float64_runs(tmp_path):
    pytest.importorskip("onnx")
    A = np.random.default_rng(2).standard_normal((3, 4, 4))
    with pytest.warns(UserWarning, match="float32"):
        got = _run_onnx(lambda a: tl.linalg.det(a), A, tmp_path)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, torch.linalg.det(torch.tensor(A)).numpy(), rtol=1e-4)


# --- 10: pdist through cdist ------------------------------------------------------------------
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, math.inf, 0.0])
@pytest.mark.parametrize("n", [5, 40])
def test_pdist_values_and_grads(p, n):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 4)) + 100.0      # an offset the centring takes out
    x[3] = x[1]                                  # a zero distance
    va, vb, ga, gb = _grads(lambda t: tl.pdist(t, p), lambda t: torch.pdist(t, p), x)
    np.testing.assert_allclose(va, vb, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ga[0], gb[0], rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("p", [2.0, 1.0])
def test_pdist_second_order(p):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30, 3))
    a = tl.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    ga, = tl.grad((tl.pdist(a, p) ** 2).sum(), [a], create_graph=True)
    # torch.pdist has no second derivative: its definition, pair by pair
    i, j = torch.triu_indices(30, 30, 1)
    d = torch.linalg.vector_norm(b[i] - b[j], ord=p, dim=-1)
    gb, = torch.autograd.grad((d ** 2).sum(), [b], create_graph=True)
    v = rng.standard_normal(x.shape)
    ha, = tl.grad((ga * tl.tensor(v)).sum(), [a])
    hb, = torch.autograd.grad((gb * torch.tensor(v)).sum(), [b])
    np.testing.assert_allclose(ha.numpy(), hb.numpy(), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("n", [0, 1, 26])
def test_pdist_small_and_empty(n):
    x = np.random.default_rng(5).standard_normal((n, 2)).astype(np.float32)
    r, t = tl.pdist(tl.tensor(x)).numpy(), torch.pdist(torch.tensor(x)).numpy()
    assert r.shape == t.shape
    np.testing.assert_allclose(r, t, rtol=1e-4, atol=1e-4)


def test_pdist_errors():
    with pytest.raises(ValueError, match="pdist"):
        tl.pdist(tl.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="pdist"):
        tl.pdist(tl.zeros((3, 4)), p=-1)


# --- 9: lstsq's gelsy path and batched ldl_factor ------------------------------------------
@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
@pytest.mark.parametrize("sa, sb", [((6, 4), (6, 2)), ((3, 5), (3, 2)), ((5, 3), (5,)),
                                    ((2, 4, 3), (1, 4, 2)), ((8, 8), (8, 1))])
def test_lstsq_drivers_match_torch(driver, sa, sb):
    rng = np.random.default_rng(6)
    A, B = rng.standard_normal(sa), rng.standard_normal(sb)
    va, vb, ga, gb = _grads(lambda a, b: tl.linalg.lstsq(a, b, driver=driver).solution,
                            lambda a, b: torch.linalg.lstsq(a, b, driver=driver).solution, A, B)
    np.testing.assert_allclose(va, vb, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ga[0], gb[0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ga[1], gb[1], rtol=1e-8, atol=1e-10)
    r = tl.linalg.lstsq(tl.tensor(A), tl.tensor(B), driver=driver)
    t = torch.linalg.lstsq(torch.tensor(A), torch.tensor(B), driver=driver)
    for x, y in zip(r[1:], t[1:]):
        assert tuple(x.shape) == tuple(y.shape)
    np.testing.assert_array_equal(r.rank.numpy(), t.rank.numpy())


def test_lstsq_gelsy_rank_deficient():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((6, 3)) @ rng.standard_normal((3, 5))
    B = rng.standard_normal((6, 2))
    r = tl.linalg.lstsq(tl.tensor(A), tl.tensor(B))
    t = torch.linalg.lstsq(torch.tensor(A), torch.tensor(B))
    assert int(r.rank) == int(t.rank) == 3
    np.testing.assert_allclose(r.solution.numpy(), t.solution.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("shape", [(50, 4, 4), (7, 9, 9), (3, 0, 0), (5, 5)])
def test_ldl_factor_batched_matches_torch(shape):
    S = np.random.default_rng(8).standard_normal(shape)
    S = S + np.swapaxes(S, -1, -2)
    if len(shape) == 3 and shape[0] > 1 and shape[-1]:
        S[1] = 0.0          # a singular element: info as torch
    r = tl.linalg.ldl_factor_ex(tl.tensor(S))
    t = torch.linalg.ldl_factor_ex(torch.tensor(S))
    np.testing.assert_allclose(r.LD.numpy(), t.LD.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(r.pivots.numpy(), t.pivots.numpy())
    np.testing.assert_array_equal(r.info.numpy(), t.info.numpy())


# --- 8: geqrf / orgqr / ormqr ---------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 4), (0, 3), (4, 1)])
def test_geqrf_matches_torch(shape):
    A = np.random.default_rng(9).standard_normal(shape)
    a, tau = tl.geqrf(tl.tensor(A))
    at, taut = torch.geqrf(torch.tensor(A))
    np.testing.assert_allclose(a.numpy(), at.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tau.numpy(), taut.numpy(), rtol=1e-10, atol=1e-12)
    if min(shape[-2:]) and shape[-2] >= shape[-1]:
        np.testing.assert_allclose(tl.orgqr(a, tau).numpy(), torch.orgqr(at, taut).numpy(),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 4)])
def test_ormqr_values_and_grads(left, transpose, shape):
    rng = np.random.default_rng(10)
    at, taut = torch.geqrf(torch.tensor(rng.standard_normal(shape)))
    m = shape[-2]
    C = rng.standard_normal(shape[:-2] + ((m, 2) if left else (2, m)))
    va, vb, ga, gb = _grads(lambda a, t, c: tl.ormqr(a, t, c, left, transpose),
                            lambda a, t, c: torch.ormqr(a, t, c, left, transpose),
                            at.numpy(), taut.numpy(), C)
    np.testing.assert_allclose(va, vb, rtol=1e-10, atol=1e-12)
    for x, y in zip(ga, gb):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-11)


def test_geqrf_ormqr_errors():
    with pytest.raises(ValueError, match="geqrf"):
        tl.geqrf(tl.zeros(3))
    a, tau = tl.geqrf(tl.randn(5, 3, dtype=tl.float64))
    with pytest.raises(ValueError, match="ormqr: input must have as many rows"):
        tl.ormqr(a, tau, tl.zeros((4, 2), dtype=tl.float64))
    with pytest.raises(ValueError, match="ormqr"):
        tl.ormqr(a, tl.zeros(4, dtype=tl.float64), tl.zeros((5, 2), dtype=tl.float64))


# --- 10: cdist p = inf / p = 0 one feature at a time ----------------------------------------
@pytest.mark.parametrize("p", [0.0, math.inf])
@pytest.mark.parametrize("s1, s2", [((100, 5), (80, 5)), ((2, 70, 3), (1, 70, 3))])
def test_cdist_inf_zero_by_feature(p, s1, s2):
    rng = np.random.default_rng(11)
    x1, x2 = np.round(rng.standard_normal(s1), 1), np.round(rng.standard_normal(s2), 1)
    want = torch.cdist(torch.tensor(x1), torch.tensor(x2), p).numpy()
    with tl.no_grad():
        np.testing.assert_array_equal(tl.cdist(tl.tensor(x1), tl.tensor(x2), p).numpy(), want)
    a = tl.tensor(x1, requires_grad=True)
    r = tl.cdist(a, tl.tensor(x2), p)
    np.testing.assert_array_equal(r.detach().numpy(), want)
    if p == 0:
        r.sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), np.zeros(s1))


def test_geqrf_family_as_tensor_methods():
    a = np.random.default_rng(3).standard_normal((5, 3))
    c = np.random.default_rng(4).standard_normal((5, 2))
    q, tau = tl.tensor(a).geqrf()
    tq, ttau = torch.tensor(a).geqrf()
    np.testing.assert_allclose(q.numpy(), tq.numpy(), atol=1e-12)
    np.testing.assert_allclose(q.orgqr(tau).numpy(), tq.orgqr(ttau).numpy(), atol=1e-12)
    np.testing.assert_allclose(q.ormqr(tau, tl.tensor(c)).numpy(),
                               tq.ormqr(ttau, torch.tensor(c)).numpy(), atol=1e-12)
