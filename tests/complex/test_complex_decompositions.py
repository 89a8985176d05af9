"""Complex linear-algebra decompositions (svd, svdvals, qr, norms, the LU family, lstsq,
matrix_rank, pinv, cond, low-rank SVD) and complex nn.init, against PyTorch: values, result
dtypes and gradients (complex128, real losses that do not depend on singular-vector phases),
second order for a few, and refusals."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)


def crand(*shape, rng=RNG):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().resolve_conj().resolve_neg().numpy()
    return t.numpy()


def _loss(outs, ws, lib):
    """A real loss of every output: Re<w, out> for complex outputs, <w.real, out> else."""
    total = 0
    for o, w in zip(outs, ws):
        if lib is tl:
            kind_c = o.dtype.kind == "c"
            wt = tl.tensor(w.conj() if kind_c else w.real)
        else:
            kind_c = o.is_complex()
            wt = torch.tensor(w.conj() if kind_c else w.real)
        total = total + ((o * wt).real.sum() if kind_c else (o * wt).sum())
    return total


def check(f_tl, f_torch, *arrays, rtol=1e-9, atol=1e-10, grad=True):
    """Values, dtypes and (with ``grad``) input gradients of f_tl against f_torch."""
    xs = [tl.tensor(a, requires_grad=grad) for a in arrays]
    ys = [torch.tensor(a, requires_grad=grad) for a in arrays]
    ot, oy = f_tl(*xs), f_torch(*ys)
    if not isinstance(ot, (tuple, list)):
        ot, oy = (ot,), (oy,)
    assert len(ot) == len(oy)
    for a, b in zip(ot, oy):
        assert str(a.dtype) == str(b.dtype).replace("torch.", ""), (a.dtype, b.dtype)
        np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol)
    if not grad:
        return
    ws = [crand(*o.shape, rng=np.random.default_rng(3)) for o in oy]
    _loss(ot, ws, tl).backward()
    _loss(oy, ws, torch).backward()
    for x, y in zip(xs, ys):
        np.testing.assert_allclose(_np(x.grad), _np(y.grad), rtol=rtol * 100, atol=atol * 100)


SHAPES = [(4, 4), (5, 3), (3, 5), (2, 4, 3)]


# --- svd / svdvals ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_svdvals_values_grad(shape):
    check(tl.linalg.svdvals, torch.linalg.svdvals, crand(*shape))


@pytest.mark.parametrize("dt", [np.complex64, np.complex128])
def test_svd_values_dtypes(dt):
    a = crand(2, 5, 3).astype(dt)
    U, S, Vh = tl.linalg.svd(tl.tensor(a), full_matrices=False)
    assert U.dtype == dt and Vh.dtype == dt
    assert S.dtype == (np.float32 if dt == np.complex64 else np.float64)
    tol = 1e-4 if dt == np.complex64 else 1e-12
    np.testing.assert_allclose(S.numpy(), np.linalg.svd(a, compute_uv=False), rtol=tol)
    rec = (U.numpy() * S.numpy()[..., None, :]) @ Vh.numpy()
    np.testing.assert_allclose(rec, a, atol=tol * 10)
    assert tl.linalg.svdvals(tl.tensor(a)).dtype == S.dtype
    full = tl.linalg.svd(tl.tensor(a))
    assert full.U.shape == (2, 5, 5) and full.Vh.shape == (2, 3, 3)


def _usv(lib, full=False):
    def f(x):
        U, S, Vh = lib.linalg.svd(x, full_matrices=full)
        k = S.shape[-1]
        return (U[..., :, :k] * S.unsqueeze(-2)) @ Vh[..., :k, :]
    return f


# phase-invariant functions of the singular vectors
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("which", ["USVh", "UVh", "absU", "absVh", "projU"])
def test_svd_grad_phase_invariant(shape, which):
    def make(lib):
        def f(x):
            U, S, Vh = lib.linalg.svd(x, full_matrices=False)
            if which == "USVh":
                return (U * S.unsqueeze(-2)) @ Vh
            if which == "UVh":
                return U @ Vh
            if which == "absU":
                return U.abs()
            if which == "absVh":
                return Vh.abs()
            return U @ U.mH       # the projector onto the range
        return f
    check(make(tl), make(torch), crand(*shape))


def test_svd_full_matrices_grad():
    check(_usv(tl, True), _usv(torch, True), crand(5, 3))


def test_svd_real_input_unchanged():
    a = RNG.standard_normal((4, 3))
    check(lambda x: tl.linalg.svd(x, full_matrices=False).U.abs(),
          lambda x: torch.linalg.svd(x, full_matrices=False).U.abs(), a)


def test_svdvals_second_order():
    a = crand(3, 3)
    w = RNG.standard_normal(3)
    x = tl.tensor(a, requires_grad=True)
    y = torch.tensor(a, requires_grad=True)
    (gx,) = tl.grad((tl.linalg.svdvals(x) * tl.tensor(w)).sum(), [x], create_graph=True)
    (gy,) = torch.autograd.grad((torch.linalg.svdvals(y) * torch.tensor(w)).sum(), [y],
                                create_graph=True)
    np.testing.assert_allclose(gx.numpy(), _np(gy), rtol=1e-9, atol=1e-12)
    v = crand(3, 3)
    (hx,) = tl.grad((gx * tl.tensor(v.conj())).real.sum(), [x])
    (hy,) = torch.autograd.grad((gy * torch.tensor(v.conj())).real.sum(), [y])
    np.testing.assert_allclose(hx.numpy(), _np(hy), rtol=1e-7, atol=1e-9)


def test_torch_svd_V_is_conjugate_transpose():
    a = crand(4, 3)
    r = tl.svd(tl.tensor(a))
    rec = (r.U.numpy() * r.S.numpy()) @ r.V.numpy().conj().T
    np.testing.assert_allclose(rec, a, atol=1e-12)


# --- qr ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_qr_values_grad(shape):
    def make(lib):
        return lambda x: tuple(lib.linalg.qr(x))
    check(make(tl), make(torch), crand(*shape))


def test_qr_complete_square_and_r_mode():
    a = crand(3, 3)
    check(lambda x: tuple(tl.linalg.qr(x, mode="complete")),
          lambda x: tuple(torch.linalg.qr(x, mode="complete")), a)
    r = tl.linalg.qr(tl.tensor(a), mode="r").R
    np.testing.assert_allclose(r.numpy(), _np(torch.linalg.qr(torch.tensor(a), mode="r").R),
                               rtol=1e-12)
    assert np.allclose(np.diag(r.numpy()).imag, 0)


@pytest.mark.parametrize("dt", [np.complex64, np.complex128])
def test_qr_dtypes(dt):
    a = crand(4, 3).astype(dt)
    Q, R = tl.linalg.qr(tl.tensor(a))
    assert Q.dtype == dt and R.dtype == dt
    np.testing.assert_allclose(Q.numpy() @ R.numpy(), a, atol=1e-5 if dt == np.complex64
                               else 1e-12)


# --- norms --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ord", ["fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf])
def test_matrix_norm(ord):
    check(lambda x: tl.linalg.matrix_norm(x, ord=ord),
          lambda x: torch.linalg.matrix_norm(x, ord=ord), crand(2, 4, 3))
    check(lambda x: tl.linalg.norm(x, ord=ord), lambda x: torch.linalg.norm(x, ord=ord),
          crand(3, 4))


def test_matrix_norm_complex64_real_result():
    a = crand(3, 3).astype(np.complex64)
    for o in ("fro", "nuc", 2, 1):
        assert tl.linalg.matrix_norm(tl.tensor(a), ord=o).dtype == np.float32
    np.testing.assert_allclose(tl.nuclear_norm(tl.tensor(a)).numpy(),
                               torch.linalg.matrix_norm(torch.tensor(a), "nuc").numpy(), rtol=1e-5)


# --- LU family ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 4, 4)])
def test_lu(shape):
    a = crand(*shape)
    check(lambda x: tuple(tl.linalg.lu(x)), lambda x: tuple(torch.linalg.lu(x)), a)
    check(lambda x: tl.linalg.lu_factor(x).LU, lambda x: torch.linalg.lu_factor(x).LU, a)
    piv = tl.linalg.lu_factor(tl.tensor(a)).pivots.numpy()
    np.testing.assert_array_equal(piv, torch.linalg.lu_factor(torch.tensor(a)).pivots.numpy())


@pytest.mark.parametrize("adjoint", [False, True])
@pytest.mark.parametrize("left", [True, False])
def test_lu_solve(adjoint, left):
    a = crand(2, 4, 4)
    b = crand(2, 4, 3) if left else crand(2, 3, 4)
    check(lambda x, y: tl.linalg.lu_solve(*tl.linalg.lu_factor(x), y, left=left,
                                          adjoint=adjoint),
          lambda x, y: torch.linalg.lu_solve(*torch.linalg.lu_factor(x), y, left=left,
                                             adjoint=adjoint), a, b)


def test_solve_ex_inv_ex_lu_unpack():
    a, b = crand(2, 4, 4), crand(2, 4, 3)
    check(lambda x, y: tl.linalg.solve_ex(x, y).result,
          lambda x, y: torch.linalg.solve_ex(x, y).result, a, b)
    check(lambda x: tl.linalg.inv_ex(x).inverse, lambda x: torch.linalg.inv_ex(x).inverse, a)
    check(lambda x: tuple(tl.lu_unpack(*tl.linalg.lu_factor(x))),
          lambda x: tuple(torch.lu_unpack(*torch.linalg.lu_factor(x))), a)


def test_lu_second_order():
    a = crand(3, 3)
    x = tl.tensor(a, requires_grad=True)
    y = torch.tensor(a, requires_grad=True)
    w = crand(3, 3)
    (gx,) = tl.grad((tl.linalg.lu_factor(x).LU * tl.tensor(w)).real.sum(), [x],
                    create_graph=True)
    (gy,) = torch.autograd.grad((torch.linalg.lu_factor(y).LU * torch.tensor(w)).real.sum(),
                                [y], create_graph=True)
    np.testing.assert_allclose(gx.numpy(), _np(gy), rtol=1e-9, atol=1e-12)
    (hx,) = tl.grad(gx.abs().sum(), [x])
    (hy,) = torch.autograd.grad(gy.abs().sum(), [y])
    np.testing.assert_allclose(hx.numpy(), _np(hy), rtol=1e-7, atol=1e-9)


def test_lu_singular_info_and_complex64():
    z = tl.tensor(np.ones((3, 3)) + 0j)
    assert int(tl.linalg.lu_factor_ex(z).info) == int(
        torch.linalg.lu_factor_ex(torch.ones(3, 3, dtype=torch.complex128)).info)
    with pytest.raises(RuntimeError, match="lu_factor"):
        tl.linalg.lu_factor(z)
    a = crand(3, 3).astype(np.complex64)
    LU, piv = tl.linalg.lu_factor(tl.tensor(a))
    assert LU.dtype == np.complex64
    np.testing.assert_allclose(LU.numpy(), torch.linalg.lu_factor(torch.tensor(a)).LU.numpy(),
                               rtol=1e-4, atol=1e-5)


def test_lu_generic_kernel_pivots_as_izamax():
    # the no-SciPy path picks pivots by |re| + |im| (LAPACK's izamax), as getrf does
    from tensorlib.ops.linalg_lu import _lu_generic
    a = crand(6, 5, 5)
    lu, piv, info = _lu_generic(np, a)
    ref = torch.linalg.lu_factor(torch.tensor(a))
    np.testing.assert_array_equal(piv, ref.pivots.numpy())
    np.testing.assert_allclose(lu, ref.LU.numpy(), atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 5), st.integers(0, 1000))
def test_lu_reconstructs_hypothesis(n, seed):
    a = crand(n, n, rng=np.random.default_rng(seed))
    P, L, U = tl.linalg.lu(tl.tensor(a))
    np.testing.assert_allclose(P.numpy() @ L.numpy() @ U.numpy(), a, atol=1e-10)


# --- lstsq, matrix_rank, pinv, cond -----------------------------------------------------------
@pytest.mark.parametrize("driver", ["gelsy", "gelsd", "gels", "gelss"])
def test_lstsq(driver):
    def make(lib):
        def f(x, y):
            r = lib.linalg.lstsq(x, y, driver=driver)
            return (r.solution, r.residuals) if r.residuals.numel() else (r.solution,)
        return f
    check(make(tl), make(torch), crand(6, 4), crand(6, 2))
    r = tl.linalg.lstsq(tl.tensor(crand(6, 4)), tl.tensor(crand(6, 2)), driver=driver)
    assert r.residuals.dtype == np.float64 or r.residuals.numel() == 0
    if driver in ("gelsd", "gelss"):
        assert r.singular_values.dtype == np.float64


def test_lstsq_wide_and_vector():
    check(lambda x, y: tl.linalg.lstsq(x, y).solution,
          lambda x, y: torch.linalg.lstsq(x, y).solution, crand(3, 5), crand(3, 2))
    check(lambda x, y: tl.linalg.lstsq(x, y).solution,
          lambda x, y: torch.linalg.lstsq(x, y).solution, crand(2, 5, 3), crand(2, 5))


def test_matrix_rank():
    a = crand(5, 2) @ crand(2, 4)
    assert int(tl.linalg.matrix_rank(tl.tensor(a))) == 2
    h = a.conj().T @ a
    assert int(tl.linalg.matrix_rank(tl.tensor(h), hermitian=True)) == int(
        torch.linalg.matrix_rank(torch.tensor(h), hermitian=True))
    b = crand(3, 4, 4).astype(np.complex64)
    np.testing.assert_array_equal(
        tl.linalg.matrix_rank(tl.tensor(b), atol=0.5, rtol=0.1).numpy(),
        torch.linalg.matrix_rank(torch.tensor(b), atol=0.5, rtol=0.1).numpy())


@pytest.mark.parametrize("hermitian", [False, True])
def test_pinv(hermitian):
    a = crand(5, 3)
    if hermitian:
        a = a.conj().T @ a
    check(lambda x: tl.linalg.pinv(x, hermitian=hermitian),
          lambda x: torch.linalg.pinv(x, hermitian=hermitian), a, rtol=1e-8)


@pytest.mark.parametrize("p", [None, 2, -2, "fro", "nuc", 1, -1, math.inf, -math.inf])
def test_cond(p):
    a = crand(3, 3)
    # (PyTorch's own cond backward fails for p other than None / +-2: compare with its
    # composite definition there)
    def ref(x):
        if p in (None, 2, -2):
            return torch.linalg.cond(x, p)
        return torch.linalg.matrix_norm(x, p) * torch.linalg.matrix_norm(torch.linalg.inv(x), p)
    check(lambda x: tl.linalg.cond(x, p), ref, a, rtol=1e-8)
    np.testing.assert_allclose(tl.linalg.cond(tl.tensor(a), p).numpy(),
                               torch.linalg.cond(torch.tensor(a), p).numpy(), rtol=1e-10)


# --- low-rank SVD / PCA -------------------------------------------------------------------------
def test_svd_lowrank_and_pca_complex():
    from tensorlib.ops.lowrank import pca_lowrank, svd_lowrank
    m = crand(30, 3) @ crand(3, 20)
    tl.manual_seed(0)
    U, S, V = svd_lowrank(tl.tensor(m), q=5)
    assert U.dtype == np.complex128 and S.dtype == np.float64 and V.shape == (20, 5)
    np.testing.assert_allclose(((U * S.unsqueeze(-2)) @ V.mH).numpy(), m, atol=1e-10)
    ref = torch.svd_lowrank(torch.tensor(m), q=5)[1].numpy()
    np.testing.assert_allclose(S.numpy()[:3], ref[:3], rtol=1e-10)
    U, S, V = pca_lowrank(tl.tensor(m.T.copy()), q=4)     # wide input: sketches m.mH
    mc = m.T - m.T.mean(0)
    np.testing.assert_allclose(S.numpy()[:3], np.linalg.svd(mc, compute_uv=False)[:3],
                               rtol=1e-10)


def test_svd_lowrank_grad_runs():
    from tensorlib.ops.lowrank import svd_lowrank
    x = tl.tensor(crand(8, 4), requires_grad=True)
    svd_lowrank(x, q=4, niter=1).S.sum().backward()
    # q = rank: the sum of S is the nuclear norm, whose gradient is U V^H
    u, s, vh = np.linalg.svd(x.detach().numpy(), full_matrices=False)
    np.testing.assert_allclose(x.grad.numpy(), u @ vh, atol=1e-8)


# --- refusals ------------------------------------------------------------------------------------
def test_refusals_name_the_function():
    with pytest.raises(TypeError, match="svd"):
        tl.linalg.svd(tl.tensor(np.eye(2, dtype=np.float16)))


# --- nn.init --------------------------------------------------------------------------------------
def _moments(t):
    a = t.numpy() if isinstance(t, tl.Tensor) else t.detach().numpy()
    return np.array([a.real.mean(), a.real.var(), a.imag.mean(), a.imag.var(),
                     (a.real * a.imag).mean()])


@pytest.mark.parametrize("name,args", [("uniform_", (-1.0, 3.0)), ("normal_", (2.0, 3.0)),
                                       ("xavier_uniform_", ()), ("xavier_normal_", ()),
                                       ("kaiming_uniform_", ()), ("kaiming_normal_", ()),
                                       ("sparse_", (0.3,))])
def test_init_complex_moments(name, args):
    shape = (400, 300)
    t = tl.empty(*shape, dtype=tl.complex128)
    r = torch.empty(*shape, dtype=torch.complex128)
    getattr(tl.nn.init, name)(t, *args)
    torch.manual_seed(0)
    getattr(torch.nn.init, name)(r, *args)
    assert t.dtype == np.complex128
    mt, mr = _moments(t), _moments(r)
    scale = max(mr[1], mr[3])
    np.testing.assert_allclose(mt, mr, atol=0.05 * scale + 3 * math.sqrt(scale / t.size) * 3)
    assert np.isclose(mt[1], mr[1], rtol=0.05) and np.isclose(mt[3], mr[3], rtol=0.05)


def test_init_complex_constant_and_refusals():
    t = tl.empty(2, 3, dtype=tl.complex64)
    tl.nn.init.constant_(t, 1 + 2j)
    assert np.all(t.numpy() == 1 + 2j)
    for name in ("trunc_normal_", "orthogonal_"):
        with pytest.raises(TypeError, match=name):
            getattr(tl.nn.init, name)(tl.empty(3, 3, dtype=tl.complex64))
        with pytest.raises((TypeError, NotImplementedError, RuntimeError)):
            getattr(torch.nn.init, name)(torch.empty(3, 3, dtype=torch.complex64))
    with pytest.raises(TypeError, match="uniform_"):
        tl.nn.init.uniform_(tl.empty(3, 3, dtype=tl.int64))


def test_linear_complex_constructs():
    m = tl.nn.Linear(40, 30, dtype=tl.complex64)
    assert m.weight.dtype == np.complex64 and m.bias.dtype == np.complex64
    w = m.weight.numpy()
    bound = 1 / math.sqrt(40)       # kaiming_uniform_(a=sqrt(5)): U(-1/sqrt(fan_in), ...)
    assert np.abs(w.real).max() <= bound and np.abs(w.imag).max() <= bound
    assert np.abs(w.imag).max() > bound / 2


def test_householder_product_and_pinverse_conjugate_as_torch():
    """Complex reflectors are I - tau v v^H, and pinverse uses conjugate transposes (both
    ran on complex input and silently gave another matrix before)."""
    r = np.random.default_rng(7)
    A = r.standard_normal((5, 3)) + 1j * r.standard_normal((5, 3))
    tau = r.standard_normal(3) + 1j * r.standard_normal(3)
    a, t = tl.tensor(A, requires_grad=True), tl.tensor(tau, requires_grad=True)
    at, tt = torch.tensor(A, requires_grad=True), torch.tensor(tau, requires_grad=True)
    q, qt = tl.linalg.householder_product(a, t), torch.linalg.householder_product(at, tt)
    np.testing.assert_allclose(q.detach().numpy(), qt.detach().numpy(), atol=1e-12)
    q.abs().sum().backward()
    qt.abs().sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy(), atol=1e-11)
    np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), atol=1e-11)
    X = r.standard_normal((4, 3)) + 1j * r.standard_normal((4, 3))
    np.testing.assert_allclose(tl.pinverse(tl.tensor(X)).numpy(),
                               torch.pinverse(torch.tensor(X)).numpy(), atol=1e-12)
