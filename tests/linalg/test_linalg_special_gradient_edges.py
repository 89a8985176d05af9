"""Edge cases of the linear-algebra and special-function gradients found by the scientific-ML
trial (float64 against torch, SciPy and finite differences): repeated eigenvalues and singular
values, svdvals' second derivatives, torch.linalg.solve's right-hand-side rule, logcumsumexp's
double backward, ndtri's and log_ndtr's tails, det at singular matrices, qr of wide matrices."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
scipy_special = pytest.importorskip("scipy.special")

F64 = tl.float64


def _t(x, rg=False):
    return tl.tensor(np.asarray(x, dtype=np.float64), requires_grad=rg)


def _tt(x, rg=False):
    return torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=rg)


def _np(x):
    return x.detach().numpy() if hasattr(x, "detach") else x.numpy()


def _grad(lib, f, x):
    a = (_tt if lib is torch else _t)(x, True)
    (g,) = lib.autograd.grad(f(a), a)
    return _np(g)


def _fd_jvp(f, x, v, eps=1e-6):
    return (f(_t(x + eps * v)).numpy() - f(_t(x - eps * v)).numpy()) / (2 * eps)


# --- eigenvalues / singular values alone at ties (#5) ---------------------------------------
def test_eigenvalue_gradient_is_finite_at_repeated_eigenvalues():
    def f(lib):
        def run(p):
            w, _ = lib.linalg.eigh(lib.diag(p.exp()))
            return w.log().sum()
        return run
    for p in (np.zeros(3), np.array([0.0, 0.0, 1.0])):
        np.testing.assert_allclose(_grad(tl, f(tl), p), _grad(torch, f(torch), p), atol=1e-12)


def test_eigenvalue_gradient_at_ties_in_a_stack_and_second_order():
    a = np.stack([np.eye(3) * 2.0, np.diag([1.0, 2.0, 3.0]), np.diag([1.0, 1.0, 3.0]) + 0.1])
    res = []
    for lib, mk in ((tl, _t), (torch, _tt)):
        x = mk(a, True)
        w, _ = lib.linalg.eigh(x)
        (g,) = lib.autograd.grad((w ** 2).sum(), [x], create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), [x])
        res.append((_np(g), _np(h)))
    np.testing.assert_allclose(res[0][0], 2 * a, atol=1e-12)       # d tr(A^2) = 2 A
    # the second derivative through the eigenvectors is undefined at the exact tie (the first
    # matrix): NaN as torch's, never a silently wrong finite value
    np.testing.assert_allclose(res[0][1], res[1][1], atol=1e-12, equal_nan=True)


def test_eigenvalue_and_svdvals_gradients_at_ties_under_capture():
    for f, feed in ((lambda a: tl.linalg.eigh(a)[0].log().sum(), np.eye(3)),
                    (lambda a: tl.linalg.matrix_norm(a, 2), 2 * np.eye(3)),
                    (lambda a: tl.linalg.svd(a, full_matrices=False).S.sum(),
                     np.vstack([2 * np.eye(2), np.zeros((1, 2))]))):
        x = _t(np.random.default_rng(0).normal(size=feed.shape) + 3 * np.eye(*feed.shape),
               True)
        with tl.capture(x) as g:
            loss = f(x)
        (gv,) = g.gradients(loss, [g.inputs[0]])
        got = g.run({0: feed}, fetches=[gv])[0].numpy()
        np.testing.assert_allclose(got, _grad(tl, f, feed), atol=1e-12)
        assert np.isfinite(got).all()


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("shape", [(3, 3), (4, 3), (3, 4)])
def test_singular_value_gradient_is_finite_at_ties_and_zeros(full, shape):
    a = np.zeros(shape)
    k = min(shape)
    a[:k, :k] = np.diag([2.0, 2.0, 0.0][:k])          # a tie and a zero singular value
    got = _grad(tl, lambda x: tl.linalg.svd(x, full_matrices=full).S.sum(), a)
    assert np.isfinite(got).all()
    # U diag(1) Vh for any valid U, Vh: on the non-zero block it is the identity
    np.testing.assert_allclose(got[:2, :2], np.eye(2), atol=1e-12)
    want = _grad(torch, lambda x: torch.linalg.svdvals(x).sum(), 2 * np.eye(3))
    np.testing.assert_allclose(_grad(tl, lambda x: tl.linalg.svdvals(x).sum(), 2 * np.eye(3)),
                               want, atol=1e-12)


def test_eigenvector_jvp_through_double_vjp_keeps_the_vector_terms():
    # jvp by double vjp feeds a zero cotangent that requires grad: it must not be skipped
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    a = a + a.T + np.diag([0.0, 3.0, 6.0])
    v = rng.normal(size=(3, 3))
    v = v + v.T

    def f(x):
        w, vec = tl.linalg.eigh(x)
        return vec * vec[..., :1, :]       # sign-free

    _, jv = tl.autograd.functional.jvp(f, _t(a), _t(v))
    np.testing.assert_allclose(jv.numpy(), _fd_jvp(f, a, v), atol=1e-7)

    def g(x):
        u, s, vh = tl.linalg.svd(x, full_matrices=False)
        return u * u[..., :1, :]
    _, jv = tl.autograd.functional.jvp(g, _t(a), _t(v))
    np.testing.assert_allclose(jv.numpy(), _fd_jvp(g, a, v), atol=1e-7)


# --- svdvals' second derivatives (#3) -------------------------------------------------------
_SV_FNS = {
    "svdvals0": lambda L, a: L.linalg.svdvals(a)[0],
    "norm2": lambda L, a: L.linalg.matrix_norm(a, 2),
    "norm-2": lambda L, a: L.linalg.matrix_norm(a, -2),
    "nuc": lambda L, a: L.linalg.matrix_norm(a, "nuc"),
}


@pytest.mark.parametrize("name", sorted(_SV_FNS))
@pytest.mark.parametrize("shape", [(2, 2), (3, 2), (2, 4)])
def test_svdvals_hessian_matches_torch(name, shape):
    f = _SV_FNS[name]
    a = np.random.default_rng(len(shape) + shape[0] * 7 + shape[1]).normal(size=shape)
    h = tl.autograd.functional.hessian(lambda x: f(tl, x), _t(a)).numpy()
    ht = torch.autograd.functional.hessian(lambda x: f(torch, x), _tt(a)).numpy()
    assert np.abs(ht).max() > 1e-3
    np.testing.assert_allclose(h, ht, atol=1e-9)


def test_svdvals_gradgradcheck():
    x = _t(np.random.default_rng(3).normal(size=(3, 2)), True)
    assert tl.gradgradcheck(lambda a: tl.linalg.svdvals(a), [x])


# --- solve's right-hand side (#8) -----------------------------------------------------------
@pytest.mark.parametrize("sa,sb", [
    ((4, 4, 4), (4, 4)),        # a batch of vectors (B.shape == A.shape[:-1])
    ((2, 4, 4), (2, 4)),
    ((3, 2, 3, 3), (3, 2, 3)),
    ((3, 3), (3,)), ((2, 3, 3), (3,)),      # one vector, broadcast
    ((3, 3), (3, 3)), ((2, 3, 3), (3, 2)), ((2, 3, 3), (2, 3, 1)), ((1, 3, 3), (4, 3, 2)),
    ((4, 4, 4), (4, 4, 4)),
])
def test_solve_follows_torch_rhs_rule(sa, sb):
    rng = np.random.default_rng(sum(sa) + 10 * sum(sb))
    a = rng.normal(size=sa) + 4 * np.eye(sa[-1])
    b = rng.normal(size=sb)
    w = None
    outs = []
    for lib, mk in ((tl, _t), (torch, _tt)):
        ta, tb = mk(a, True), mk(b, True)
        x = lib.linalg.solve(ta, tb)
        if w is None:
            w = rng.normal(size=tuple(x.shape))
        ga, gb = lib.autograd.grad((x * mk(w)).sum(), [ta, tb])
        outs.append((_np(x), _np(ga), _np(gb)))
    for got, want in zip(*outs):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_solve_rhs_errors():
    with pytest.raises(ValueError, match=r"solve: A \(3, 3\) and b \(2,\) do not align"):
        tl.linalg.solve(tl.eye(3), tl.ones(2))
    with pytest.raises(ValueError, match="do not align"):
        tl.linalg.solve(tl.ones((2, 4, 4)), tl.ones((3, 4)))


# --- logcumsumexp: the backward is linear in the incoming gradient (#6) ----------------------
def test_logcumsumexp_jvp_matches_finite_differences():
    rng = np.random.default_rng(3)
    a, v = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))

    def f(x):
        return tl.logcumsumexp(x, dim=1)
    _, jv = tl.autograd.functional.jvp(f, _t(a), _t(v))
    np.testing.assert_allclose(jv.numpy(), _fd_jvp(f, a, v), atol=1e-8)


def test_logcumsumexp_hessian_at_zero_residual():
    x0 = np.zeros(3)
    target = np.log(np.cumsum(np.exp(x0)))
    h = tl.autograd.functional.hessian(
        lambda x: ((tl.logcumsumexp(x, dim=0) - _t(target)) ** 2).sum(), _t(x0)).numpy()
    j = np.tril(np.exp(x0[None, :] - target[:, None]))
    np.testing.assert_allclose(h, 2 * j.T @ j, atol=1e-12)


@pytest.mark.parametrize("v", [
    [-1000.0, 0.0, -np.inf, 1000.0, 999.0], [0.0, -np.inf, -np.inf], [-np.inf, 0.0, 1.0],
    [1.0, np.inf, 2.0], [-1000.0, 1000.0, -1000.0, 500.0, -700.0, 1000.0],
])
def test_logcumsumexp_grad_far_apart_and_infinite(v):
    g = np.arange(1.0, len(v) + 1) * (-1.0) ** np.arange(len(v))
    got = _grad(tl, lambda x: (tl.logcumsumexp(x, 0) * _t(g)).sum(), v)
    want = _grad(torch, lambda x: (torch.logcumsumexp(x, 0) * _tt(g)).sum(), v)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 9), rows=st.integers(1, 3), spread=st.sampled_from([1.0, 30.0, 400.0]),
       seed=st.integers(0, 2**31 - 1))
def test_logcumsumexp_grad_and_double_grad_match_torch(n, rows, spread, seed):
    rng = np.random.default_rng(seed)
    x, g, u = (rng.uniform(-spread, spread, (rows, n)), rng.normal(size=(rows, n)),
               rng.normal(size=(rows, n)))
    res = []
    for lib, mk in ((tl, _t), (torch, _tt)):
        a = mk(x, True)
        (d,) = lib.autograd.grad((lib.logcumsumexp(a, 1) * mk(g)).sum(), [a], create_graph=True)
        (dd,) = lib.autograd.grad((d * mk(u)).sum(), [a])
        res.append((_np(d), _np(dd)))
    for got, want in zip(*res):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


# --- ndtri and log_ndtr in the tails (#7, #13) ----------------------------------------------
def test_ndtri_keeps_relative_precision_in_both_tails():
    rng = np.random.default_rng(0)
    p = np.concatenate([10.0 ** -rng.uniform(0, 300, 500), rng.uniform(0, 1, 500),
                        1 - 10.0 ** -rng.uniform(1, 15, 200),
                        [1e-300, 1e-30, 1e-17, 1e-14, 1e-12, 1e-8, np.exp(-2), np.exp(-32),
                         1 - np.exp(-2), 0.5, 2.2250738585072014e-308]])
    got = tl.special.ndtri(_t(p)).numpy()
    np.testing.assert_allclose(got, scipy_special.ndtri(p), rtol=1e-14, atol=0)
    np.testing.assert_allclose(got, torch.special.ndtri(_tt(p)).numpy(), rtol=2e-15, atol=0)
    specials = tl.special.ndtri(_t([0.0, 1.0, -0.5, 1.5, np.nan])).numpy()
    np.testing.assert_array_equal(specials, [-np.inf, np.inf, np.nan, np.nan, np.nan])
    p32 = np.array([1e-20, 1e-3, 0.3, 0.99, 1 - 2**-20], dtype=np.float32)
    got32 = tl.special.ndtri(tl.tensor(p32))
    assert got32.dtype == tl.float32
    np.testing.assert_allclose(got32.numpy(), torch.special.ndtri(torch.tensor(p32)).numpy(),
                               rtol=1e-6)


def test_ndtri_gradient_is_finite_and_matches_torch_in_the_tails():
    p = np.array([1e-300, 1e-100, 1e-20, 1e-10, 0.01, 0.3, 0.7, 0.99, 1 - 1e-10])
    got = _grad(tl, lambda x: tl.special.ndtri(x).sum(), p)
    want = _grad(torch, lambda x: torch.special.ndtri(x).sum(), p)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert tl.gradgradcheck(tl.special.ndtri, [_t([0.05, 0.2, 0.5, 0.9], True)])


def test_log_ndtr_precision_on_both_sides():
    x = np.concatenate([np.linspace(-45, 8, 2001), [-20.0, -20.000001, -19.999999, -10.0,
                                                    -10.000001, 0.0, 5.0, 7.0, 9.0]])
    got = tl.special.log_ndtr(_t(x)).numpy()
    # above ~5, -erfc(x / sqrt 2) / 2: the rounded x / sqrt 2 alone moves it by ~1e-14 (and
    # SciPy's cephes erfc is off by up to 510 ulp there, tensorlib's float64 erfc 2.1)
    near = x <= 5
    np.testing.assert_allclose(got[near], scipy_special.log_ndtr(x[near]), rtol=2e-15, atol=0)
    np.testing.assert_allclose(got[~near], scipy_special.log_ndtr(x[~near]), rtol=2e-14,
                               atol=0)
    far = np.linspace(8, 37, 300)       # ~ -ndtr(-x): erfc's argument rounding limits all
    np.testing.assert_allclose(tl.special.log_ndtr(_t(far)).numpy(),
                               scipy_special.log_ndtr(far), rtol=1e-13, atol=0)
    assert (tl.special.log_ndtr(_t(far)).numpy() < 0).all()
    xs = np.array([-60.0, -25.0, -20.5, -12.0, -3.0, 0.5, 6.0, 9.0, 30.0])
    got = _grad(tl, lambda v: tl.special.log_ndtr(v).sum(), xs)
    want = _grad(torch, lambda v: torch.special.log_ndtr(v).sum(), xs)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    x32 = np.array([-30.0, -12.0, -9.0, 0.0, 3.0, 8.0], dtype=np.float32)
    np.testing.assert_allclose(tl.special.log_ndtr(tl.tensor(x32)).numpy(),
                               torch.special.log_ndtr(torch.tensor(x32)).numpy(), rtol=1e-6)


# --- det at singular matrices (#15) ---------------------------------------------------------
def _cofactor(a):
    n = a.shape[-1]
    return np.array([[(-1) ** (i + j) * np.linalg.det(np.delete(np.delete(a, i, 0), j, 1))
                      for j in range(n)] for i in range(n)])


@pytest.mark.parametrize("a", [
    [[1.0, 2, 3], [2, 4, 6], [1, 0, 1]],          # rank 2
    [[1.0, 0, 0], [0, 0, 0], [0, 0, 2]],          # rank 2, cofactor diag(0, 2, 0)
    [[1.0, 2], [2, 4]],
    [[0.0]],
    np.zeros((3, 3)),                             # rank 0
    [[1.0, 1, 1], [1, 1, 1], [1, 1, 1]],          # rank 1: cofactor 0
    [[2.0, 1], [1, 3]],                           # invertible
])
def test_det_gradient_is_the_cofactor_matrix(a):
    a = np.asarray(a, dtype=np.float64)
    np.testing.assert_allclose(_grad(tl, tl.linalg.det, a), _cofactor(a), atol=1e-12)


def test_det_gradient_singular_in_a_stack_and_second_order():
    a = np.stack([np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 2]]),
                  np.array([[2.0, 1, 0], [1, 3, 1], [0, 1, 4]])])
    x = _t(a, True)
    (g,) = tl.grad(tl.linalg.det(x).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.numpy(), np.stack([_cofactor(m) for m in a]), atol=1e-12)
    w = np.random.default_rng(0).normal(size=a.shape)
    (h,) = tl.grad((g * _t(w)).sum(), [x])
    # the gradient of <cofactor(A), w> by central differences (exact up to rounding: the
    # cofactors of a 3 x 3 matrix are quadratic)
    eps = 1e-4
    fd = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        d = np.zeros_like(a)
        d[idx] = eps
        fd[idx] = sum(((_cofactor(p) - _cofactor(q)) * wm).sum() / (2 * eps)
                      for p, q, wm in zip(a + d, a - d, w))
    np.testing.assert_allclose(h.numpy(), fd, atol=1e-7)


def test_det_gradient_invertible_matches_torch():
    a = np.random.default_rng(1).normal(size=(2, 4, 4))
    np.testing.assert_allclose(_grad(tl, lambda x: tl.linalg.det(x).sum(), a),
                               _grad(torch, lambda x: torch.linalg.det(x).sum(), a), rtol=1e-10)


# --- qr of wide matrices (#17) --------------------------------------------------------------
@pytest.mark.parametrize("shape,mode", [((3, 5), "reduced"), ((2, 3, 5), "complete"),
                                        ((1, 4), "reduced"), ((2, 4, 6), "reduced")])
def test_qr_gradient_of_wide_matrices_matches_torch(shape, mode):
    rng = np.random.default_rng(sum(shape))
    a = rng.normal(size=shape)
    m = shape[-2]
    wq, wr = rng.normal(size=shape[:-1] + (m,)), rng.normal(size=shape)
    res = []
    for lib, mk in ((tl, _t), (torch, _tt)):
        x = mk(a, True)
        q, r = lib.linalg.qr(x, mode=mode)
        loss = (q * mk(wq)).sum() + ((r * mk(wr)).sum()) ** 2
        (g,) = lib.autograd.grad(loss, [x])
        res.append(_np(g))
    np.testing.assert_allclose(res[0], res[1], atol=1e-12)
    x = _t(a[..., :3, :5] if len(shape) == 2 else a[0], True)

    def f(v):
        q, r = tl.linalg.qr(v)
        return (q.sum(-1) ** 2).sum() + (r ** 3).sum()
    assert tl.gradcheck(f, [x])
    assert tl.gradgradcheck(f, [x])


# --- PyTorch's keywords and error class (scientific-ML trial) -------------------------------
def test_linalg_error_is_a_runtime_error_as_pytorch_and_a_value_error_as_numpy():
    bad = tl.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=tl.float64)
    for op in (tl.linalg.cholesky, tl.linalg.inv):
        with pytest.raises(RuntimeError) as info:
            op(tl.zeros(2, 2, dtype=tl.float64) if op is tl.linalg.inv else bad)
        assert isinstance(info.value, (ValueError, tl.linalg.LinAlgError))
        with pytest.raises(torch.linalg.LinAlgError):       # (what the same code sees there)
            getattr(torch.linalg, op.__name__)(
                torch.zeros(2, 2, dtype=torch.float64) if op is tl.linalg.inv
                else torch.tensor(bad.numpy()))


def test_cholesky_upper_eigh_uplo_solve_left_diagonal_dims_and_tensordot_dims():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((3, 4, 4))
    spd = m @ np.swapaxes(m, -1, -2) + 4 * np.eye(4)
    a, at = tl.tensor(spd, requires_grad=True), torch.tensor(spd, requires_grad=True)
    u, ut = tl.linalg.cholesky(a, upper=True), torch.linalg.cholesky(at, upper=True)
    np.testing.assert_allclose(u.detach().numpy(), ut.detach().numpy(), rtol=1e-12)
    g = rng.standard_normal(u.shape)
    u.backward(tl.tensor(g))
    ut.backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy(), rtol=1e-10, atol=1e-12)

    asym = rng.standard_normal((4, 4))          # the two triangles differ: UPLO matters
    for uplo in ("L", "U"):
        w, _ = tl.linalg.eigh(tl.tensor(asym), UPLO=uplo)
        wt, _ = torch.linalg.eigh(torch.tensor(asym), UPLO=uplo)
        np.testing.assert_allclose(w.numpy(), wt.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="UPLO"):
        tl.linalg.eigh(tl.tensor(asym), UPLO="X")

    b = rng.standard_normal((3, 2, 4))
    x = tl.linalg.solve(tl.tensor(spd), tl.tensor(b), left=False)
    xt = torch.linalg.solve(torch.tensor(spd), torch.tensor(b), left=False)
    np.testing.assert_allclose(x.numpy(), xt.numpy(), rtol=1e-10)

    np.testing.assert_allclose(tl.tensor(m).diagonal(offset=1, dim1=-2, dim2=-1).numpy(),
                               torch.tensor(m).diagonal(offset=1, dim1=-2, dim2=-1).numpy())
    c = rng.standard_normal((4, 5))
    np.testing.assert_allclose(tl.tensordot(tl.tensor(m), tl.tensor(c), dims=1).numpy(),
                               torch.tensordot(torch.tensor(m), torch.tensor(c), dims=1).numpy(),
                               rtol=1e-12)


def test_torch_linalg_names_match_pytorch_with_gradients():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 4, 5))
    s = rng.standard_normal((4, 4))
    s = s @ s.T + 4 * np.eye(4)
    tri = np.triu(rng.standard_normal((4, 4))) + 3 * np.eye(4)
    b, bl = rng.standard_normal((4, 2)), rng.standard_normal((2, 4))
    v, m1, m2, w = (rng.standard_normal(3), rng.standard_normal((3, 5)),
                    rng.standard_normal((5, 4)), rng.standard_normal(4))
    x3, y3 = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    cases = [
        (lambda L, p: L.pinv(p[0]), [a]),
        (lambda L, p: L.eigvalsh(p[0]), [s]),
        (lambda L, p: L.multi_dot([p[0], p[1], p[2], p[3]]), [v, m1, m2, w]),
        (lambda L, p: L.solve_triangular(p[0], p[1], upper=True), [tri, b]),
        (lambda L, p: L.solve_triangular(p[0], p[1], upper=True, left=False), [tri, bl]),
        (lambda L, p: L.solve_triangular(p[0], p[1], upper=False, unitriangular=True),
         [tri.T, b]),
        (lambda L, p: L.cross(p[0], p[1]), [x3, y3]),
        (lambda L, p: L.vecdot(p[0], p[1]), [x3, y3]),
        (lambda L, p: L.matrix_exp(p[0]), [s / 10]),
        (lambda L, p: L.matrix_power(p[0], 3), [s / 4]),
    ]
    for k, (f, arrays) in enumerate(cases):
        ours = [tl.tensor(x, requires_grad=True) for x in arrays]
        theirs = [torch.tensor(x, requires_grad=True) for x in arrays]
        o, t = f(tl.linalg, ours), f(torch.linalg, theirs)
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=str(k))
        g = rng.standard_normal(tuple(t.shape))
        o.backward(tl.tensor(g))
        t.backward(torch.tensor(g))
        for x, y in zip(ours, theirs):
            np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-8, atol=1e-10,
                                       err_msg=str(k))
