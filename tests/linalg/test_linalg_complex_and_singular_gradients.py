"""Linear-algebra gaps, each against PyTorch: complex LDL / cholesky_ex / geqrf /
ormqr, the phase checks of complex svd / eig / eigh gradients, slogdet and logdet gradients
at singular matrices, corrcoef of one variable, and batched lu_factor's pivots on ties."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

SETTINGS = settings(max_examples=12, deadline=None)


def _crand(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def _close(a, b, tol=1e-10):
    np.testing.assert_allclose(_np(a), _np(b), rtol=tol, atol=tol)


def _mH(a):
    return np.conj(np.swapaxes(a, -1, -2))


# --- complex LDL -------------------------------------------------------------------------------
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 6), batch=st.sampled_from([(), (3,)]),
       hermitian=st.booleans())
def test_ldl_complex_matches_torch(seed, n, batch, hermitian):
    rng = np.random.default_rng(seed)
    a = _crand(rng, *batch, n, n)
    a = a + (_mH(a) if hermitian else np.swapaxes(a, -1, -2))
    LD, piv, info = tl.linalg.ldl_factor_ex(tl.tensor(a), hermitian=hermitian)
    LDt, pivt, infot = torch.linalg.ldl_factor_ex(torch.tensor(a), hermitian=hermitian)
    _close(LD, LDt)
    np.testing.assert_array_equal(_np(piv), _np(pivt))
    np.testing.assert_array_equal(_np(info), _np(infot))
    LD2, piv2 = tl.linalg.ldl_factor(tl.tensor(a), hermitian=hermitian)
    _close(LD2, LDt)
    b = _crand(rng, *batch, n, 2)
    x = tl.linalg.ldl_solve(LD, piv, tl.tensor(b), hermitian=hermitian)
    xt = torch.linalg.ldl_solve(LDt, pivt, torch.tensor(b), hermitian=hermitian)
    np.testing.assert_allclose(x.numpy(), xt.numpy(), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(a @ x.numpy(), b, rtol=1e-7, atol=1e-7)


def test_ldl_complex64_and_errors():
    rng = np.random.default_rng(1)
    a = _crand(rng, 4, 4).astype(np.complex64)
    a = a + _mH(a)
    LD, piv = tl.linalg.ldl_factor(tl.tensor(a), hermitian=True)
    LDt, pivt = torch.linalg.ldl_factor(torch.tensor(a), hermitian=True)
    assert LD.dtype == np.complex64
    np.testing.assert_allclose(LD.numpy(), LDt.numpy(), rtol=1e-4, atol=1e-4)
    # a real LD with a complex B: not silently dropping B's imaginary part
    LDr, pivr = tl.linalg.ldl_factor(tl.tensor(a.real + np.eye(4) * 9))
    with pytest.raises(TypeError, match="ldl_solve"):
        tl.linalg.ldl_solve(LDr, pivr, tl.tensor(_crand(rng, 4, 1)))
    with pytest.raises(TypeError, match="hermitian"):
        tl.linalg.ldl_factor(tl.tensor(a), hermitian=1)
    z = np.zeros((3, 3), np.complex128)
    with pytest.raises(tl.linalg.LinAlgError, match="ldl_factor"):
        tl.linalg.ldl_factor(tl.tensor(z), hermitian=True)
    assert int(tl.linalg.ldl_factor_ex(tl.tensor(z), hermitian=True).info) == \
        int(torch.linalg.ldl_factor_ex(torch.tensor(z), hermitian=True).info)


# --- complex cholesky_ex ---------------------------------------------------------------------
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 5), upper=st.booleans())
def test_cholesky_ex_complex_values_and_gradients(seed, n, upper):
    rng = np.random.default_rng(seed)
    m = _crand(rng, 2, n, n)
    a = m @ _mH(m) + n * np.eye(n)
    g = _crand(rng, 2, n, n)
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    L, info = tl.linalg.cholesky_ex(x, upper=upper)
    Lt, infot = torch.linalg.cholesky_ex(xt, upper=upper)
    _close(L, Lt)
    np.testing.assert_array_equal(_np(info), _np(infot))
    (L * tl.tensor(g)).real.sum().backward()
    (Lt * torch.tensor(g)).real.sum().backward()
    _close(x.grad, xt.grad)


def test_cholesky_ex_complex_not_positive_definite():
    rng = np.random.default_rng(2)
    m = _crand(rng, 3, 4, 4)
    a = m @ _mH(m) + np.eye(4)
    a[1, 2, 2] = -3.0
    for upper in (False, True):
        L, info = tl.linalg.cholesky_ex(tl.tensor(a), upper=upper)
        Lt, infot = torch.linalg.cholesky_ex(torch.tensor(a), upper=upper)
        np.testing.assert_array_equal(_np(info), _np(infot))
        _close(L[0], Lt[0])
    with pytest.raises(tl.linalg.LinAlgError, match="cholesky_ex"):
        tl.linalg.cholesky_ex(tl.tensor(a), check_errors=True)


# --- complex geqrf / ormqr / orgqr -----------------------------------------------------------
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), m=st.integers(1, 5), n=st.integers(1, 5),
       left=st.booleans(), transpose=st.booleans())
def test_geqrf_ormqr_complex(seed, m, n, left, transpose):
    rng = np.random.default_rng(seed)
    a = _crand(rng, 2, m, n)
    h, tau = tl.geqrf(tl.tensor(a))
    ht, taut = torch.geqrf(torch.tensor(a))
    _close(h, ht)
    _close(tau, taut)
    c = _crand(rng, 2, m, 3) if left else _crand(rng, 2, 3, m)
    hv, tv, cv = (tl.tensor(v, requires_grad=True) for v in (_np(h), _np(tau), c))
    htv, ttv, ctv = (torch.tensor(v, requires_grad=True) for v in (_np(h), _np(tau), c))
    out = tl.ormqr(hv, tv, cv, left, transpose)
    outt = torch.ormqr(htv, ttv, ctv, left, transpose)
    _close(out, outt)
    g = _crand(rng, *out.shape)
    (out * tl.tensor(g)).real.sum().backward()
    (outt * torch.tensor(g)).real.sum().backward()
    for ours, theirs in ((hv, htv), (tv, ttv), (cv, ctv)):
        _close(ours.grad, theirs.grad, 1e-9)
    if m >= n:
        _close(tl.orgqr(h, tau), torch.orgqr(ht, taut))


# --- complex svd / eig / eigh: the phase checks -------------------------------------------------
def _phase_dependent(v, r):      # Re(sum(V * R)): changes with each column's phase
    return (v * r).real.sum()


def _phase_invariant(v, r):
    return (v.abs() ** 3).sum()


def _svd_loss(mod, x, loss, r, full):
    U, S, Vh = mod.linalg.svd(x, full_matrices=full)
    m, n = x.shape[-2:]
    k = S.shape[-1]
    return loss(U[..., :, :k], r[..., :m, :k]) + loss(Vh[..., :k, :], r[..., :k, :n]) + S.sum()


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (2, 3, 3)])
def test_svd_complex_phase_check(shape, full):
    rng = np.random.default_rng(3)
    a = _crand(rng, *shape)
    r = _crand(rng, *shape[:-2], max(shape[-2:]), max(shape[-2:]))
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    rr, rt = tl.tensor(r), torch.tensor(r)
    with pytest.raises(RuntimeError, match="phase"):
        _svd_loss(torch, xt, _phase_dependent, rt, full).backward()
    with pytest.raises(RuntimeError, match=r"svd: .*phase"):
        _svd_loss(tl, x, _phase_dependent, rr, full).backward()
    xt.grad = None
    _svd_loss(torch, xt, _phase_invariant, rt, full).backward()
    _svd_loss(tl, x, _phase_invariant, rr, full).backward()
    _close(x.grad, xt.grad, 1e-9)


def test_svd_complex_phase_check_one_side_and_products():
    rng = np.random.default_rng(4)
    a = _crand(rng, 4, 4)
    r = tl.tensor(_crand(rng, 4, 4))
    x = tl.tensor(a, requires_grad=True)
    with pytest.raises(RuntimeError, match="svd"):
        _phase_dependent(tl.linalg.svd(x).Vh, r).backward()
    # U diag(S) Vh and U U^H do not depend on the phases: no error, gradients as torch's
    xt = torch.tensor(a, requires_grad=True)
    for mod, t in ((tl, x), (torch, xt)):
        U, S, Vh = mod.linalg.svd(t, full_matrices=False)
        ((U * S.unsqueeze(-2)) @ Vh).real.sum().backward()
    _close(x.grad, xt.grad, 1e-9)


@pytest.mark.parametrize("fn", ["eig", "eigh", "eig_real"])
def test_eig_eigh_complex_phase_check(fn):
    rng = np.random.default_rng(5)
    a = _crand(rng, 4, 4)
    if fn == "eigh":
        a = a + _mH(a)
    if fn == "eig_real":
        a = a.real
    name = fn.replace("_real", "")
    r = _crand(rng, 4, 4)
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    with pytest.raises(RuntimeError, match="ill-defined"):
        _phase_dependent(getattr(torch.linalg, name)(xt)[1], torch.tensor(r)).backward()
    with pytest.raises(RuntimeError, match=f"{name}: .*phase.*ill-defined"):
        _phase_dependent(getattr(tl.linalg, name)(x)[1], tl.tensor(r)).backward()
    xt.grad = None
    _phase_invariant(getattr(torch.linalg, name)(xt)[1], None).backward()
    _phase_invariant(getattr(tl.linalg, name)(x)[1], None).backward()
    _close(x.grad, xt.grad, 1e-8)


# --- slogdet / logdet / det at singular matrices ------------------------------------------------
@pytest.mark.parametrize("fn", ["slogdet", "logdet"])
def test_logdet_gradient_at_singular_matrix_as_torch(fn):
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out = tl.linalg.slogdet(x)[1] if fn == "slogdet" else tl.logdet(x)
    outt = torch.linalg.slogdet(xt)[1] if fn == "slogdet" else torch.logdet(xt)
    assert float(out) == float(outt) == -np.inf
    out.backward()
    outt.backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())    # [[-inf, inf], ...]


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_slogdet_gradient_batch_mixing_singular_and_regular(dtype):
    rng = np.random.default_rng(6)
    reg = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    if dtype == np.complex128:
        reg = reg + 1j * rng.standard_normal((3, 3))
    # (exactly singular in any elimination order: row 2 is twice row 1)
    sing = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    a = np.stack([reg, sing, np.zeros((3, 3))]).astype(dtype)
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    tl.linalg.slogdet(x)[1].sum().backward()
    torch.linalg.slogdet(xt)[1].sum().backward()
    # singular: inf and NaN where PyTorch has them (LAPACK's getrf / getrs on A^T, as its;
    # complex: PyTorch's complex solve spreads NaN further, so only "not finite" there)
    if dtype == np.float64:
        np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())
    else:
        for g in (x.grad.numpy(), xt.grad.numpy()):
            assert not np.isfinite(g[1:]).all(axis=(-2, -1)).any()


@pytest.mark.parametrize("a", [[[0.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]],
                               [[1.0, 2.0], [3.0, 6.0]]])
def test_logdet_gradient_singular_patterns(a):
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    tl.logdet(x).backward()
    torch.logdet(xt).backward()
    np.testing.assert_array_equal(x.grad.numpy(), xt.grad.numpy())


def test_slogdet_regular_matrix_second_order_unchanged():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    g, = tl.grad(tl.linalg.slogdet(x)[1].sum(), x, create_graph=True)
    gt, = torch.autograd.grad(torch.linalg.slogdet(xt)[1].sum(), xt, create_graph=True)
    _close(g, gt)
    (g ** 2).sum().backward()
    (gt ** 2).sum().backward()
    _close(x.grad, xt.grad)


def test_det_gradient_at_singular_matrix_is_the_cofactor():
    # tensorlib keeps the exact derivative (the cofactor matrix); PyTorch 2.13 gives it
    # with create_graph=True and 0 in its first-order-only path
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    tl.linalg.det(x).backward()
    gt, = torch.autograd.grad(torch.linalg.det(xt), xt, create_graph=True)
    _close(x.grad, gt)


# --- corrcoef of one variable ----------------------------------------------------------------
@pytest.mark.parametrize("x", [np.arange(5.0), np.arange(5.0)[None], np.ones((1, 4)),
                               np.arange(4.0)[None] * (1 + 2j), np.arange(6.0).reshape(2, 3)])
def test_corrcoef_one_variable_shape_and_value(x):
    ours, theirs = tl.corrcoef(tl.tensor(x)), torch.corrcoef(torch.tensor(x))
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_corrcoef_one_row_gradient():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((1, 5))
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (tl.corrcoef(x) * 2).backward()
    (torch.corrcoef(xt) * 2).backward()
    _close(x.grad, xt.grad)


# --- lu_factor pivots on ties, svdvals / eigvalsh with and without gradients ----------------
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), n=st.sampled_from([2, 3, 8, 32]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_batched_lu_factor_pivots_on_ties_as_lapack(seed, n, dtype):
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 3, (16, n, n)).astype(dtype)     # many equal |entries|: ties
    LU, piv, info = tl.linalg.lu_factor_ex(tl.tensor(a))
    LUt, pivt, infot = torch.linalg.lu_factor_ex(torch.tensor(a))
    ok = _np(infot) == 0       # past a zero pivot the rounding decides the rest
    np.testing.assert_array_equal(_np(piv)[ok], _np(pivt)[ok])
    np.testing.assert_array_equal(_np(info) == 0, ok)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(_np(LU)[ok], _np(LUt)[ok], rtol=tol, atol=tol)


@pytest.mark.parametrize("fn", ["svdvals", "eigvalsh"])
def test_values_only_paths_match_torch_with_and_without_grad(fn):
    rng = np.random.default_rng(9)
    a = rng.standard_normal((3, 5, 5))
    a = a + np.swapaxes(a, -1, -2)
    ours = getattr(tl.linalg, fn)(tl.tensor(a))
    theirs = getattr(torch.linalg, fn)(torch.tensor(a))
    _close(ours, theirs)
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    w = rng.standard_normal((3, 5))
    (getattr(tl.linalg, fn)(x) * tl.tensor(w)).sum().backward()
    (getattr(torch.linalg, fn)(xt) * torch.tensor(w)).sum().backward()
    _close(x.grad, xt.grad, 1e-9)
