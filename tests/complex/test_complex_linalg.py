"""Complex tensors through the products and matrix functions of tensorlib.linalg and
nn.functional.linear: values, result dtypes and gradients against PyTorch (complex128,
complex64), second order for a representative set, and the functions that refuse them."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(1)


def crand(*shape, dtype=np.complex128):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)


def check(f_tl, f_torch, *arrays, tol=None, order2=False):
    """Values (and dtype) of f, and the gradients of a real loss of it, against PyTorch."""
    cplx64 = any(a.dtype == np.complex64 or a.dtype == np.float32 for a in arrays)
    tol = tol or (2e-4 if cplx64 else 1e-9)
    a_tl = [tl.tensor(a, requires_grad=True) for a in arrays]
    a_th = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = f_tl(*a_tl), f_torch(*a_th)
    assert str(out.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1]
    np.testing.assert_allclose(out.numpy(), ref.detach().resolve_conj().numpy(), rtol=tol,
                               atol=tol)
    w = crand(*ref.shape)
    if ref.is_complex():
        loss = (out * tl.tensor(w.astype(out.numpy().dtype)).conj()).real.sum()
        rloss = (ref * torch.tensor(w.astype(out.numpy().dtype)).conj()).real.sum()
    else:
        loss = (out * tl.tensor(w.real.astype(out.numpy().dtype))).sum()
        rloss = (ref * torch.tensor(w.real.astype(out.numpy().dtype))).sum()
    gs = tl.grad(loss, a_tl, create_graph=order2)
    rgs = torch.autograd.grad(rloss, a_th, create_graph=order2)
    for a, g, rg in zip(arrays, gs, rgs):
        assert g.numpy().dtype == a.dtype
        np.testing.assert_allclose(g.numpy(), rg.detach().resolve_conj().numpy(), rtol=tol,
                                   atol=tol)
    if order2:
        s = sum(((g * g.conj()).real + (g * g).imag).sum() for g in gs)
        rs = sum(((g * g.conj()).real + (g * g).imag).sum() for g in rgs)
        g2 = tl.grad(s, a_tl)
        rg2 = torch.autograd.grad(rs, a_th)
        for g, rg in zip(g2, rg2):
            np.testing.assert_allclose(g.numpy(), rg.numpy(), rtol=100 * tol, atol=100 * tol)


A, B = crand(3, 3), crand(3, 3)
V, W = crand(3), crand(3)
S = crand(2, 3, 4)
H = A @ A.conj().T + 3 * np.eye(3)              # Hermitian positive definite
U = np.triu(A) + 3 * np.eye(3)

PRODUCTS = {
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b, (A, B)),
    "matmul_batched": (lambda s, b: s.mT @ b, lambda s, b: s.mT @ b, (S, B)),
    "mm": (lambda a, b: tl.mm(a, b), lambda a, b: torch.mm(a, b), (A, B)),
    "bmm": (lambda s, t: tl.bmm(s, t.mT), lambda s, t: torch.bmm(s, t.mT), (S, S)),
    "mv": (lambda a, v: tl.mv(a, v), lambda a, v: torch.mv(a, v), (A, V)),
    "addmm": (lambda a, b: tl.addmm(a, a, b, beta=0.5, alpha=2),
              lambda a, b: torch.addmm(a, a, b, beta=0.5, alpha=2), (A, B)),
    "baddbmm": (lambda s, t: tl.baddbmm(s[:, :, :3], s, t.mT[:, :, :3]),
                lambda s, t: torch.baddbmm(s[:, :, :3], s, t.mT[:, :, :3]), (S, S)),
    "dot": (lambda v, w: tl.dot(v, w), lambda v, w: torch.dot(v, w), (V, W)),
    "vdot": (lambda v, w: tl.vdot(v, w), lambda v, w: torch.vdot(v, w), (V, W)),
    "inner": (lambda v, w: tl.inner(v, w), lambda v, w: torch.inner(v, w), (V, W)),
    "outer": (lambda v, w: tl.outer(v, w), lambda v, w: torch.outer(v, w), (V, W)),
    "einsum": (lambda s, a: tl.einsum("bij,jk->bki", s.mT, a),
               lambda s, a: torch.einsum("bij,jk->bki", s.mT, a), (S, A)),
    "einsum_diag": (lambda a: tl.einsum("ii->i", a), lambda a: torch.einsum("ii->i", a), (A,)),
    "tensordot": (lambda s, a: tl.tensordot(s, a, ([1], [0])),
                  lambda s, a: torch.tensordot(s, a, ([1], [0])), (S, A)),
    "kron": (lambda a, b: tl.kron(a, b), lambda a, b: torch.kron(a, b), (A, B)),
    "trace": (lambda a: tl.trace(a), lambda a: torch.trace(a), (A,)),
    "diagonal": (lambda s: tl.linalg.diagonal(s), lambda s: torch.linalg.diagonal(s), (S,)),
    "cross": (lambda v, w: tl.linalg.cross(v, w), lambda v, w: torch.linalg.cross(v, w), (V, W)),
    "vecdot": (lambda s, t: tl.linalg.vecdot(s, t), lambda s, t: torch.linalg.vecdot(s, t),
               (S, S[::-1].copy())),
    "multi_dot": (lambda a, b: tl.linalg.multi_dot([a, b, a]),
                  lambda a, b: torch.linalg.multi_dot([a, b, a]), (A, B)),
    "matrix_power": (lambda a: tl.linalg.matrix_power(a, 3),
                     lambda a: torch.linalg.matrix_power(a, 3), (A,)),
    "linear": (lambda s, a, v: tl.nn.functional.linear(s, a[:, :1].expand(3, 4) * 1, v),
               lambda s, a, v: torch.nn.functional.linear(s, a[:, :1].expand(3, 4) * 1, v),
               (S, A, V)),
    "linear_nobias": (lambda s, b: tl.nn.functional.linear(s.mT, b),
                      lambda s, b: torch.nn.functional.linear(s.mT, b), (S, B)),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_products(name, dtype):
    f, g, arrays = PRODUCTS[name]
    check(f, g, *[a.astype(dtype) for a in arrays])


def _eig_tl(a):
    w, v = tl.linalg.eig(a)
    return w * 2 + v.abs().sum(0)     # |V| does not depend on the eigenvectors' phases


def _eig_th(a):
    w, v = torch.linalg.eig(a)
    return w * 2 + v.abs().sum(0)


def _eigh_tl(a):
    w, v = tl.linalg.eigh(a)
    return w + v.abs().sum(0)


def _eigh_th(a):
    w, v = torch.linalg.eigh(a)
    return w + v.abs().sum(0)


MATRIX = {
    "det": (lambda a: tl.linalg.det(a), lambda a: torch.linalg.det(a), (A,)),
    "det_batched": (lambda s: tl.linalg.det(s[..., :3]), lambda s: torch.linalg.det(s[..., :3]),
                    (S,)),
    "slogdet_sign": (lambda a: tl.linalg.slogdet(a)[0], lambda a: torch.linalg.slogdet(a)[0],
                     (A,)),
    "slogdet_both": (lambda a: tl.linalg.slogdet(a)[0] * tl.linalg.slogdet(a)[1],
                     lambda a: torch.linalg.slogdet(a)[0] * torch.linalg.slogdet(a)[1], (A,)),
    "slogdet_log": (lambda a: tl.linalg.slogdet(a)[1], lambda a: torch.linalg.slogdet(a)[1],
                    (A,)),
    "inv": (lambda a: tl.linalg.inv(a), lambda a: torch.linalg.inv(a), (A,)),
    "solve": (lambda a, b: tl.linalg.solve(a, b), lambda a, b: torch.linalg.solve(a, b),
              (A, B)),
    "solve_vec": (lambda a, v: tl.linalg.solve(a, v), lambda a, v: torch.linalg.solve(a, v),
                  (A, V)),
    "solve_right": (lambda a, b: tl.linalg.solve(a, b, left=False),
                    lambda a, b: torch.linalg.solve(a, b, left=False), (A, B)),
    "cholesky": (lambda h: tl.linalg.cholesky(h), lambda h: torch.linalg.cholesky(h), (H,)),
    "cholesky_upper": (lambda h: tl.linalg.cholesky(h, upper=True),
                       lambda h: torch.linalg.cholesky(h, upper=True), (H,)),
    "eigvalsh": (lambda h: tl.linalg.eigvalsh(h), lambda h: torch.linalg.eigvalsh(h), (H,)),
    "eigh": (_eigh_tl, _eigh_th, (H,)),
    "eig": (_eig_tl, _eig_th, (A,)),
    "eigvals": (lambda a: tl.linalg.eigvals(a), lambda a: torch.linalg.eigvals(a), (A,)),
    "solve_triangular": (lambda u, b: tl.linalg.solve_triangular(u, b, upper=True),
                         lambda u, b: torch.linalg.solve_triangular(u, b, upper=True), (U, B)),
    "matrix_exp": (lambda a: tl.linalg.matrix_exp(a * 0.3),
                   lambda a: torch.linalg.matrix_exp(a * 0.3), (A,)),
}


@pytest.mark.parametrize("name", sorted(MATRIX))
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_matrix_functions(name, dtype):
    f, g, arrays = MATRIX[name]
    check(f, g, *[a.astype(dtype) for a in arrays], tol=2e-3 if dtype == np.complex64 else None)


@pytest.mark.parametrize("name", ["matmul", "dot", "einsum", "linear"])
def test_products_second_order(name):
    f, g, arrays = PRODUCTS[name]
    check(lambda *xs: f(*[x * x for x in xs]), lambda *xs: g(*[x * x for x in xs]), *arrays,
          order2=True)


@pytest.mark.parametrize("name", ["det", "inv", "solve", "cholesky", "slogdet_both",
                                  "eigvalsh"])
def test_matrix_second_order(name):
    f, g, arrays = MATRIX[name]
    check(f, g, *arrays, order2=True)


def test_eig_of_real_input_is_complex_as_torch():
    a = np.array([[0.0, -1.0], [1.0, 0.0]])
    w = tl.linalg.eig(tl.tensor(a)).eigenvalues
    assert w.dtype == tl.complex128
    np.testing.assert_allclose(np.sort_complex(w.numpy()), [-1j, 1j], atol=1e-12)
    a32 = RNG.standard_normal((2, 4, 4)).astype(np.float32)
    assert tl.linalg.eig(tl.tensor(a32)).eigenvectors.dtype == tl.complex64
    # real eigenvalues still come back complex
    assert tl.linalg.eigvals(tl.tensor(np.diag([1.0, 2.0]))).dtype == tl.complex128


def test_eig_gradient_of_real_input_is_real():
    a = RNG.standard_normal((3, 3))
    x, t = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (tl.linalg.eigvals(x) * tl.tensor(W).conj()).real.sum().backward()
    (torch.linalg.eigvals(t) * torch.tensor(W).conj()).real.sum().backward()
    assert x.grad.dtype == tl.float64
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_result_dtypes():
    h = tl.tensor(H.astype(np.complex64))
    assert tl.linalg.eigh(h)[0].dtype == tl.float32
    assert tl.linalg.eigh(h)[1].dtype == tl.complex64
    assert tl.linalg.eigvalsh(h).dtype == tl.float32
    sign, logabs = tl.linalg.slogdet(h)
    assert sign.dtype == tl.complex64 and logabs.dtype == tl.float32
    assert tl.linalg.det(h).dtype == tl.complex64
    sign, logabs = tl.linalg.slogdet(tl.tensor(H.real))     # real input: real sign
    assert sign.dtype == tl.float64


def test_nn_linear_module_with_complex_weights():
    m = tl.nn.Linear(3, 2)
    m.weight = tl.nn.Parameter(tl.tensor(A[:2]))
    m.bias = tl.nn.Parameter(tl.tensor(V[:2]))
    ref = torch.nn.Linear(3, 2, dtype=torch.complex128)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(A[:2]))
        ref.bias.copy_(torch.tensor(V[:2]))
    x = S[0].mT.copy()
    y, ry = m(tl.tensor(x)), ref(torch.tensor(x))
    np.testing.assert_allclose(y.numpy(), ry.detach().numpy(), rtol=1e-12)
    y.abs().sum().backward()
    ry.abs().sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.bias.grad.numpy(), ref.bias.grad.numpy(), rtol=1e-10)
    with tl.no_grad():      # the no-grad path too
        np.testing.assert_allclose(m(tl.tensor(x)).numpy(), ry.detach().numpy(), rtol=1e-12)


def test_linear_dtype_errors():
    with pytest.raises(TypeError, match="linear"):
        tl.nn.functional.linear(tl.tensor(S), tl.tensor(A.real[:, :1].repeat(4, 1).T.copy()))
    with pytest.raises(TypeError, match="complex64 or complex128"):
        tl.nn.functional.linear(tl.tensor([1, 2]), tl.tensor([[1, 2]]))


def test_real_matrix_functions_keep_their_errors():
    with pytest.raises(TypeError, match="det: needs"):
        tl.linalg.det(tl.tensor([[1, 2], [3, 4]], dtype=tl.float16))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4))
def test_matmul_shapes_hypothesis(m, k, n):
    a, b = crand(m, k), crand(k, n)
    check(lambda x, y: x @ y, lambda x, y: x @ y, a, b)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4))
def test_inv_hypothesis(n):
    a = crand(n, n) + 2 * n * np.eye(n)
    check(lambda x: tl.linalg.inv(x), lambda x: torch.linalg.inv(x), a)
