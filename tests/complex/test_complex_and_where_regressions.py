"""Regressions from the review of session 21's changes (each failed before its fix)."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.autograd.forward_ad as fwd

torch = pytest.importorskip("torch")


def test_where_with_a_broadcast_condition_keeps_the_branches_shape():
    """The select kernel takes single-valued branches only where the condition has the
    output's shape; a branch with more dims broadcasts (forward and sum's backward)."""
    c = np.random.default_rng(0).random(4096) < 0.5
    got = tl.where(tl.tensor(c), tl.tensor(1.5).broadcast_to((3, 4096)), tl.tensor(0.0))
    want = torch.where(torch.tensor(c), torch.tensor(1.5).broadcast_to((3, 4096)),
                       torch.tensor(0.0))
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    a = tl.ones((3, 4096), requires_grad=True)
    tl.where(tl.tensor(c), a, 0.0).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.broadcast_to(c, (3, 4096)))


class _Ident(tl.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def jvp(ctx, tx):
        return tx * 10

    @staticmethod
    def backward(ctx, g):
        return g


class _IdentView(_Ident):
    @staticmethod
    def jvp(ctx, tx):
        return tx


@pytest.mark.parametrize("rg", [False, True])
def test_function_jvp_returning_an_input_needs_its_tangent(rg):
    """An input returned as-is whose jvp makes a new tangent raises (as PyTorch), whether or
    not the input requires grad; returning the input's tangent keeps it."""
    with fwd.dual_level():
        d = fwd.make_dual(tl.tensor([1.0, 2.0], requires_grad=rg), tl.tensor([0.5, 0.1]))
        with pytest.raises(RuntimeError, match="matching view"):
            _Ident.apply(d)
        t = fwd.unpack_dual(_IdentView.apply(d)).tangent
        np.testing.assert_allclose(t.numpy(), [0.5, 0.1])


def test_traced_mask_setitem_mismatch_names_the_shapes():
    @tl.function
    def f(x, m):
        y = x * 1.0
        y[m] = [1.0, 2.0, 3.0]
        return y
    with pytest.raises(ValueError, match=r"shape \[3\].*\[N, 2\]"):
        f(tl.ones(4, 2), tl.tensor([True, False, True, False]))


def test_complex_value_into_a_real_tensor_through_a_mask_raises():
    x = tl.zeros(3)
    with pytest.raises(RuntimeError, match="imaginary part"):
        x[tl.tensor([True, False, True])] = tl.tensor(1j)
    xt = torch.zeros(3)
    with pytest.raises(RuntimeError):
        xt[torch.tensor([True, False, True])] = torch.tensor(1j)


# --- from the complex-numbers user trial --------------------------------------------------
R = np.random.default_rng(21)


def _c(*shape):
    return R.standard_normal(shape) + 1j * R.standard_normal(shape)


def test_solve_with_a_real_matrix_and_a_complex_right_hand_side_keeps_it_complex():
    A = R.standard_normal((3, 3)) + 3 * np.eye(3)
    b = _c(3)
    a_, b_ = tl.tensor(A, requires_grad=True), tl.tensor(b, requires_grad=True)
    x = tl.linalg.solve(a_, b_)
    np.testing.assert_allclose(x.detach().numpy(), np.linalg.solve(A, b), rtol=1e-12)
    x.abs().sum().backward()
    at = torch.tensor(A.astype(complex), requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    torch.linalg.solve(at, bt).abs().sum().backward()
    assert a_.grad.dtype == tl.float64
    np.testing.assert_allclose(a_.grad.numpy(), at.grad.real.numpy(), atol=1e-12)
    np.testing.assert_allclose(b_.grad.numpy(), bt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(tl.linalg.tensorsolve(tl.tensor(A), tl.tensor(b)).numpy(),
                               np.linalg.solve(A, b), rtol=1e-12)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_and_inverse_of_complex_hermitian_matrices(upper):
    M = _c(4, 4)
    A = M @ M.conj().T + 4 * np.eye(4)
    B = _c(4, 2)
    Lt = torch.linalg.cholesky(torch.tensor(A), upper=upper)
    L, b = tl.tensor(Lt.numpy(), requires_grad=True), tl.tensor(B, requires_grad=True)
    Ltt, bt = Lt.clone().requires_grad_(), torch.tensor(B, requires_grad=True)
    x, xt = tl.cholesky_solve(b, L, upper=upper), torch.cholesky_solve(bt, Ltt, upper=upper)
    np.testing.assert_allclose(x.detach().numpy(), xt.detach().numpy(), atol=1e-13)
    np.testing.assert_allclose(tl.cholesky_inverse(L, upper=upper).detach().numpy(),
                               np.linalg.inv(A), atol=1e-13)
    x.abs().sum().backward()
    xt.abs().sum().backward()
    np.testing.assert_allclose(L.grad.numpy(), Ltt.grad.numpy(), atol=1e-13)
    np.testing.assert_allclose(b.grad.numpy(), bt.grad.numpy(), atol=1e-13)


def test_backward_of_a_complex_scalar_needs_a_gradient():
    z = tl.tensor([1 + 1j], requires_grad=True)
    with pytest.raises(RuntimeError, match="real scalar outputs"):
        (z * z).sum().backward()
    (z * z).sum().backward(tl.tensor(1 + 0j))
    zt = torch.tensor([1 + 1j], requires_grad=True)
    (zt * zt).sum().backward(torch.tensor(1 + 0j))
    np.testing.assert_allclose(z.grad.numpy(), zt.grad.numpy())


def test_real_and_imag_take_assignments():
    z, zt = tl.tensor([1 + 2j, 3 - 1j]), torch.tensor([1 + 2j, 3 - 1j])
    z.imag += 1
    zt.imag += 1
    z.real = tl.tensor([5.0, 6.0])
    zt.real = torch.tensor([5.0, 6.0])
    np.testing.assert_array_equal(z.numpy(), zt.numpy())


def test_complex_values_are_not_put_into_a_real_tensor():
    x = tl.zeros(3)
    with pytest.raises(RuntimeError, match="imaginary part"):
        x.index_put((tl.tensor([0]),), tl.tensor([1j]))
    with pytest.raises(RuntimeError, match="imaginary part"):
        x.index_put_((tl.tensor([0]),), tl.tensor([1j]))
    assert x.tolist() == [0.0, 0.0, 0.0]


def _idx(t):
    return tl.tensor([1]) if isinstance(t, tl.Tensor) else torch.tensor([1])


@pytest.mark.parametrize("f", [lambda t, v: t.scatter_(0, _idx(t), v),
                               lambda t, v: t.scatter(0, _idx(t), v)])
def test_scatter_takes_a_number_as_a_fill(f):
    """As PyTorch's: -1 into uint8 is 255, 300 overflows, a float into int64 truncates."""
    got = f(tl.zeros(3, dtype=tl.uint8), -1)
    assert got.tolist() == f(torch.zeros(3, dtype=torch.uint8), -1).tolist() == [0, 255, 0]
    with pytest.raises(RuntimeError, match="overflow"):
        f(tl.zeros(3, dtype=tl.uint8), 300)
    with pytest.raises(RuntimeError, match="overflow"):
        f(torch.zeros(3, dtype=torch.uint8), 300)
    assert f(tl.zeros(3, dtype=tl.int64), 2.5).tolist() == [0, 2, 0]


# --- from the MRI (complex CNN) user trial ------------------------------------------------
def test_angle_gradient_stays_finite_for_tiny_values():
    """g * i / conj(z): |z|^2 underflowed in complex64 before (0 or nan+inf j)."""
    v = np.array([1e-24 + 1e-24j, 1e-20j, 0j, 1 + 1j], np.complex64)
    z = tl.tensor(v, requires_grad=True)
    z.angle().sum().backward()
    want = np.where(v == 0, 0, 1j / np.conj(v.astype(np.complex128)))
    np.testing.assert_allclose(z.grad.numpy(), want, rtol=1e-6)


def test_complex_convolution_under_autocast_stays_complex():
    r = np.random.default_rng(8)
    x = r.standard_normal((1, 2, 6, 6)) + 1j * r.standard_normal((1, 2, 6, 6))
    w = r.standard_normal((3, 2, 3, 3)) + 1j * r.standard_normal((3, 2, 3, 3))
    with tl.autocast("cpu", dtype=tl.float16):
        y = tl.nn.functional.conv2d(tl.tensor(x), tl.tensor(w))
    assert y.dtype == tl.complex128
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w)).numpy()
    np.testing.assert_allclose(y.numpy(), want, atol=1e-12)


def test_view_as_complex_needs_an_even_storage_offset():
    r = tl.randn(4, 4)
    with pytest.raises(ValueError, match="even element"):
        tl.view_as_complex(r[:, 1:3])
    with pytest.raises(RuntimeError):
        torch.view_as_complex(torch.randn(4, 4)[:, 1:3])
    assert tl.view_as_complex(r[:, 2:4]).shape == (4,)


# --- from the second review ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["setitem_tensor", "setitem_list", "index_copy_", "index_copy",
                                  "scatter_", "scatter", "scatter_add_", "scatter_add",
                                  "put_", "put"])
def test_complex_sources_are_refused_by_real_tensors(name):
    """Every indexed write of complex values into a real tensor raises (PyTorch's index_put
    family wants equal dtypes); before, several dropped the imaginary part with a warning."""
    x, idx, cv = tl.zeros(3), tl.tensor([0, 2]), tl.tensor([1j, 2j])
    f = {"setitem_tensor": lambda: x.__setitem__(idx, cv),
         "setitem_list": lambda: x.__setitem__([0, 2], cv),
         "index_copy_": lambda: x.index_copy_(0, idx, cv),
         "index_copy": lambda: tl.index_copy(x, 0, idx, cv),
         "scatter_": lambda: x.scatter_(0, idx, cv),
         "scatter": lambda: x.scatter(0, idx, cv),
         "scatter_add_": lambda: x.scatter_add_(0, idx, cv),
         "scatter_add": lambda: tl.scatter_add(x, 0, idx, cv),
         "put_": lambda: x.put_(idx, cv),
         "put": lambda: x.put(idx, cv)}[name]
    with pytest.raises(RuntimeError, match="complex"):
        f()
    assert x.tolist() == [0.0, 0.0, 0.0]


def test_complex_logcumsumexp_keeps_the_larger_terms_imaginary_part():
    x = np.array([1 + 10j, -100, 2 + 20j, 0.5 - 7j])
    np.testing.assert_allclose(tl.logcumsumexp(tl.tensor(x), 0).numpy(),
                               torch.logcumsumexp(torch.tensor(x), 0).numpy(), rtol=1e-13)


def test_numpy_complex_scalar_cotangent_for_a_real_output_raises():
    y = (tl.ones(1, requires_grad=True) * 2).sum()
    with pytest.raises(RuntimeError, match="same dtype"):
        y.backward(np.complex64(1 + 1j))


def test_scatter_add_reduce_takes_a_number_as_a_fill():
    got = tl.zeros(3, dtype=tl.uint8).scatter_(0, tl.tensor([1]), -1, reduce="add")
    want = torch.zeros(3, dtype=torch.uint8).scatter_(0, torch.tensor([1]), -1, reduce="add")
    assert got.tolist() == want.tolist()
