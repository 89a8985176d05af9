"""Fast paths of session 22b: float64 folded reductions along a leading axis, einsum with
short output letters through BLAS, one-column triangular solves through trsv."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("shape,axis", [((20000, 4), 0), ((1000, 3, 5), (0, 1)),
                                        ((3, 1000, 5), 1), ((37, 17), 0), ((4000, 2), 0)])
@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "prod", "amax", "amin"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_axis_reductions_match_torch(shape, axis, name, dtype):
    rng = np.random.default_rng(0)
    xn = rng.normal(size=shape)
    if name == "prod":
        xn = 1 + 1e-3 * xn
    xn = xn.astype(dtype)
    x = tl.tensor(xn, requires_grad=True)
    xt = torch.tensor(xn, requires_grad=True)
    out = getattr(x, name)(axis)
    if name == "prod" and isinstance(axis, tuple):      # torch.prod takes one dim
        ref = xt.flatten(axis[0], axis[-1]).prod(axis[0])
    else:
        ref = getattr(xt, name)(axis)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=tol, atol=tol)
    g = np.random.default_rng(1).normal(size=out.shape).astype(dtype)
    out.backward(tl.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol)


def test_adversarial_column_sums_stay_pairwise_accurate():
    rng = np.random.default_rng(2)
    n = 100_003
    x = np.empty((n, 3))
    x[:, 0] = rng.normal(size=n) * 10.0 ** rng.integers(-8, 9, size=n)
    x[:, 1] = np.where(np.arange(n) % 2, 1e16, -1e16) + rng.normal(size=n)
    x[:, 2] = 0.1
    out = tl.tensor(x).sum(0).numpy()
    for j in range(3):
        exact = math.fsum(x[:, j])
        scale = math.fsum(abs(v) for v in x[:, j])
        # a row-by-row sum's bound is n*eps; pairwise's ~log(n)*eps: allow 64 eps
        assert abs(out[j] - exact) <= 64 * np.finfo(np.float64).eps * scale, j
    np.testing.assert_allclose(tl.tensor(x).mean(0).numpy(), out / n, rtol=1e-15)


def test_non_contiguous_empty_and_special_values():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 8))[:, ::2]      # not contiguous: NumPy's path
    np.testing.assert_allclose(tl.tensor(x).sum(0).numpy(), x.sum(0), rtol=1e-13)
    e = np.zeros((5000, 0))
    assert tl.tensor(e).sum(0).shape == (0,)
    x = rng.normal(size=(5000, 3))
    x[17, 0], x[4000, 1], x[3, 2] = np.nan, np.inf, -np.inf
    for name in ["sum", "mean", "var", "amax", "amin", "prod"]:
        with np.errstate(all="ignore"):
            got = getattr(tl.tensor(x), name)(0).numpy()
            ref = getattr(torch.tensor(x), name)(0).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(tl.tensor(x[:20]).var(0, correction=20).numpy(),
                               torch.tensor(x[:20]).var(0, correction=20).numpy())
    with pytest.raises(ValueError, match="amax|max"):
        tl.tensor(np.zeros((0, 3))).amax(0)


@settings(max_examples=25, deadline=None)
@given(st.integers(17, 400), st.integers(1, 6), st.booleans())
def test_fold_sum_any_row_count(rows, cols, keep):
    x = np.random.default_rng(rows).normal(size=(rows, cols))
    np.testing.assert_allclose(tl.tensor(x).sum(0, keepdim=keep).numpy(),
                               torch.tensor(x).sum(0, keepdim=keep).numpy(), rtol=1e-13,
                               atol=1e-13)


@pytest.mark.parametrize("eq,shapes", [
    ("nk,nki,nkj->kij", [(5000, 4), (5000, 4, 2), (5000, 4, 2)]),
    ("nki,nkj->kij", [(5000, 4, 2), (5000, 4, 2)]),
    ("nd,kd->nk", [(2000, 2), (4, 2)]),
    ("nk,nki,nkj->kij", [(300, 3), (300, 3, 10), (300, 3, 10)]),
])
def test_gmm_einsums_match_numpy_and_torch_gradients(eq, shapes):
    from tensorlib.ops import linalg
    rng = np.random.default_rng(4)
    xs = [rng.normal(size=s) for s in shapes]
    ts = [tl.tensor(x, requires_grad=True) for x in xs]
    tt = [torch.tensor(x, requires_grad=True) for x in xs]
    out = tl.einsum(eq, *ts)
    np.testing.assert_allclose(out.numpy(), np.einsum(eq, *xs), rtol=1e-12, atol=1e-10)
    g = rng.normal(size=out.shape)
    out.backward(tl.tensor(g))
    torch.einsum(eq, *tt).backward(torch.tensor(g))
    for a, b in zip(ts, tt):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-10)
    if len(shapes) == 2 and math.prod(s for sh in shapes for s in sh) > 0:
        assert linalg._einsum_plan(eq, tuple(shapes)) is not False or eq == "nd,kd->nk"


def test_einsum_errors():
    with pytest.raises(ValueError, match="einsum"):
        tl.einsum("nki,nkj->kij", tl.ones(5, 4, 2), tl.ones(5, 3, 2))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("unit", [False, True])
@pytest.mark.parametrize("left", [True, False])
def test_solve_triangular_one_rhs(dtype, upper, unit, left):
    rng = np.random.default_rng(5)
    n = 60
    a = rng.normal(size=(n, n)) * 0.1 + 4 * np.eye(n)
    if dtype == np.complex128:
        a = a + 0.1j * rng.normal(size=(n, n))
    a = a.astype(dtype)
    b = rng.normal(size=(n, 1) if left else (1, n)).astype(dtype)
    A, B = tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)
    At, Bt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    x = tl.linalg.solve_triangular(A, B, upper=upper, left=left, unitriangular=unit)
    xt = torch.linalg.solve_triangular(At, Bt, upper=upper, left=left, unitriangular=unit)
    tol = 1e-12 if dtype != np.float32 else 1e-5
    np.testing.assert_allclose(x.numpy(), xt.detach().numpy(), rtol=tol, atol=tol)
    g = rng.normal(size=x.shape).astype(dtype)
    x.backward(tl.tensor(g))
    xt.backward(torch.tensor(g))
    np.testing.assert_allclose(A.grad.numpy(), At.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(B.grad.numpy(), Bt.grad.numpy(), rtol=tol, atol=tol)


def test_solve_triangular_one_rhs_second_order_and_strided():
    rng = np.random.default_rng(6)
    a = np.tril(rng.normal(size=(30, 30))) + 5 * np.eye(30)
    af = np.asfortranarray(a)
    b = rng.normal(size=(30, 1))
    ref = torch.linalg.solve_triangular(torch.tensor(a), torch.tensor(b), upper=False)
    for m in (a, af, a.T.copy().T):
        np.testing.assert_allclose(
            tl.linalg.solve_triangular(tl.tensor(m), tl.tensor(b), upper=False).numpy(),
            ref.numpy(), rtol=1e-12)   # (OpenBLAS's AVX2 and AVX-512 kernels differ ~1e-13)
    A = tl.tensor(a, requires_grad=True)
    At = torch.tensor(a, requires_grad=True)
    (gA,) = tl.autograd.grad(tl.linalg.solve_triangular(A, tl.tensor(b), upper=False).pow(2)
                             .sum(), A, create_graph=True)
    (gAt,) = torch.autograd.grad(torch.linalg.solve_triangular(At, torch.tensor(b), upper=False)
                                 .pow(2).sum(), At, create_graph=True)
    np.testing.assert_allclose(gA.numpy(), gAt.detach().numpy(), rtol=1e-11, atol=1e-12)
    (h,) = tl.autograd.grad(gA.sum(), A)
    (ht,) = torch.autograd.grad(gAt.sum(), At)
    np.testing.assert_allclose(h.numpy(), ht.numpy(), rtol=1e-10, atol=1e-11)
    with pytest.raises(Exception, match="solve_triangular|triangular"):
        tl.linalg.solve_triangular(tl.tensor(a), tl.tensor(rng.normal(size=(29, 1))), upper=False)
