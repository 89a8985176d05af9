"""Linear algebra, as ``tl.linalg`` (PyTorch's and NumPy's ``linalg`` names).

Products (``matmul``, ``dot``, ``outer``, ``einsum``, ``tensordot``) are also at the top
level; the matrix functions (``inv``, ``solve``, ``det``, ``slogdet``, ``cholesky``, ``eigh``)
live here, with ``svd``, ``qr`` and PyTorch's ``norm`` / ``vector_norm`` / ``matrix_norm``
(``tl.linalg.norm`` is ``torch.linalg.norm``: a matrix norm for 2-d input; the top-level
``tl.norm`` is a vector norm), and ``torch.linalg``'s names ``pinv``, ``eigvalsh``,
``multi_dot``, ``solve_triangular``, ``cross``, ``vecdot``, ``matrix_exp``,
``matrix_power``, the LU family (``lu_factor``, ``lu_factor_ex``, ``lu``, ``lu_solve``,
``solve_ex``, ``inv_ex``), ``lstsq``, ``matrix_rank``, ``cond``, ``cholesky_ex``,
``ldl_factor`` / ``ldl_factor_ex`` / ``ldl_solve``, ``householder_product``, ``vander``,
``tensorinv``, ``tensorsolve``, ``diagonal``, ``eig`` and ``eigvals``. All take stacks of matrices
``(..., n, n)`` and are differentiable, to any order (``ldl_*`` and ``matrix_rank`` are
not, as PyTorch's); a singular or indefinite matrix raises :class:`LinAlgError`, except in
the ``_ex`` variants, which report it in ``info``. ``eig`` and ``eigvals`` return complex
results (as PyTorch's, also for real input). Complex matrices: ``det``, ``slogdet`` (a
complex sign), ``inv``, ``solve``, ``cholesky``/``cholesky_ex``/``eigh``/``eigvalsh``
(Hermitian input; real eigenvalues), ``solve_triangular``, ``eig``/``eigvals``, the LU, QR,
SVD and least-squares families, ``ldl_*`` (``hermitian=False``: complex symmetric,
``True``: Hermitian) and the products. As PyTorch's, a gradient through complex singular
vectors or eigenvectors raises when the loss depends on their phases (each is defined only
up to ``e^{i phi}``), and ``slogdet``'s gradient at a singular matrix is inf / NaN.

>>> a = tl.tensor([[4.0, 2.0], [2.0, 3.0]], requires_grad=True)
>>> tl.linalg.det(a).backward()
>>> a.grad
tensor([[ 3., -2.],
        [-2.,  4.]])
"""
from ._tensor import Tensor
from .autograd.function import Function
from .ops import matrix as _matrix
from .ops.linalg import dot, einsum, matmul, outer, tensordot
from .ops.matrix import LinAlgError, det, with_torch_error
from .ops.decompositions import matrix_norm, norm, qr, svd, svdvals
from .ops.decompositions import vector_norm as _vector_norm
# importing these modules registers their ops (lu_factor, lstsq, cholesky_ex, ldl_factor...)
from .ops.linalg_ldl import ldl_factor, ldl_factor_ex, ldl_solve
from .ops.linalg_lstsq import lstsq, matrix_rank
from .ops.linalg_lu import inv_ex, lu, lu_factor, lu_factor_ex, lu_solve, singular_error, solve_ex
from .ops.linalg_more import (EigResult, EighResult, SlogdetResult, cholesky_error, cholesky_ex,
                              cond, diagonal, eig, eigh, eigvals,
                              householder_product, slogdet, tensorinv, tensorsolve, vander)

__all__ = ["EigResult", "EighResult", "LinAlgError", "SlogdetResult", "cholesky", "det", "dot",
           "eig", "eigh", "eigvals", "einsum", "inv", "matmul",
           "matrix_norm", "norm", "outer", "qr", "slogdet", "solve", "svd", "svdvals",
           "tensordot", "vector_norm"]


vector_norm = _vector_norm     # (ord 0 counts the nonzeros, with gradient 0, as PyTorch's)


# --- the matrix functions that raise, with PyTorch's messages -----------------------------
# (the error path recomputes the failing matrix's info, so the ops' fast path is untouched)
def cholesky(A, *, upper: bool = False) -> Tensor:
    """The lower-triangular ``L`` with ``A = L @ L.mH`` of a Hermitian (real: symmetric)
    positive-definite matrix, or of each in a stack (``torch.linalg.cholesky``); only the
    lower triangle is read. ``upper=True`` gives the upper ``U`` with ``A = U.mH @ U``,
    reading the upper triangle. A matrix that is not positive definite raises
    :class:`LinAlgError` naming the order of the leading minor that is not (and the batch
    element), as PyTorch's; :func:`cholesky_ex` reports it in ``info`` instead."""
    return with_torch_error(lambda: _matrix.cholesky(A, upper=upper),
                            lambda: cholesky_error("linalg.cholesky", A, upper))


def inv(A) -> Tensor:
    """The inverse of a square matrix, or of each in a stack (``torch.linalg.inv``). A
    singular matrix raises :class:`LinAlgError` naming the zero diagonal element of its LU
    factor (and the batch element), as PyTorch's; :func:`inv_ex` reports it in ``info``.

    >>> tl.linalg.inv(tl.tensor([[2.0, 0.0], [0.0, 4.0]]))
    tensor([[0.5000, 0.0000],
            [0.0000, 0.2500]])
    """
    return with_torch_error(lambda: _matrix.inv(A), lambda: singular_error("linalg.inv", A))


def solve(A, B, *, left: bool = True) -> Tensor:
    """``X`` with ``A @ X = B`` for square ``A`` (``(..., n, n)``), as ``torch.linalg.solve``:
    ``B`` is one vector per matrix when it is ``(n,)`` or has A's shape less the last
    dimension (``(..., n)``), and ``(..., n, k)`` otherwise; batch dimensions broadcast.
    ``left=False`` solves ``X @ A = B`` (``B`` of shape ``(..., k, n)``). A singular ``A``
    raises :class:`LinAlgError` (naming the batch element), as PyTorch's;
    :func:`solve_ex` reports it in ``info``.

    >>> tl.linalg.solve(tl.tensor([[2.0, 0.0], [0.0, 4.0]]), tl.tensor([1.0, 1.0]))
    tensor([0.5000, 0.2500])
    """
    return with_torch_error(lambda: _matrix.solve(A, B, left=left),
                            lambda: singular_error("linalg.solve", A))


# --- torch.linalg's names for functions tensorlib has under PyTorch's older names ----------
def pinv(A, *, atol=None, rtol=None, hermitian: bool = False):
    """The Moore-Penrose pseudo-inverse (``torch.linalg.pinv``) from the SVD: singular
    values at or below ``max(atol, rtol * largest)`` count as 0. ``rtol`` defaults to
    ``max(m, n) * eps`` of the dtype, or to 0 when only ``atol`` (> 0) is given; both may be
    tensors broadcasting over the batch. Stacks (..., m, n) too. ``hermitian=True``: for a
    symmetric matrix, from ``eigh`` of its lower triangle (the upper one is not read, as
    PyTorch's), eigenvalues of absolute value at or below the cutoff dropped."""
    import numpy as np

    from .ops._util import to_float, to_tensor
    from .ops.torch_api import pinv_svd
    x = to_float(to_tensor(A))
    if x.ndim < 2:
        raise ValueError(f"linalg.pinv: expects a matrix or a stack (..., m, n), got shape "
                         f"{tuple(x.shape)}")
    if 0 in x.shape[-2:]:       # zeros of the transposed shape, still on x's graph
        return x.swapaxes(-1, -2) * 0.0
    if rtol is None:
        given_atol = atol is not None and (not isinstance(atol, (int, float)) or atol > 0)
        rtol = 0.0 if given_atol else max(x.shape[-2:]) * float(np.finfo(x.dtype).eps)
    if hermitian:
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"linalg.pinv: hermitian=True needs square matrices, got shape "
                             f"{tuple(x.shape)}")
        return _PinvHermitian.apply(x, rtol, atol)
    if x.dtype.kind == "c":
        from .ops.linalg_lstsq import pinv_complex
        return pinv_complex(x, rtol, atol)
    return pinv_svd(x, rtol, atol)


def _pinv_eigh(x, rtol, atol):
    """``V diag(1/w) V^H`` over the eigenvalues kept (PyTorch's ``hermitian`` branch)."""
    from .ops import elementwise as E
    from .ops.torch_api import inverted_above_cutoff
    w, v = eigh(x)
    w_inv = inverted_above_cutoff(w, E.abs(w), rtol, atol)
    return matmul(v * w_inv.unsqueeze(-2), v.mH)


def _pinv_backward(g, p, a):
    """PyTorch's ``pinv_backward`` (the pseudo-inverse's derivative in a general ``A``, the
    unread triangle included), with products of the smaller dimension."""
    m, n = a.shape[-2], a.shape[-1]
    ph, gh = p.mH, g.mH
    if m <= n:
        k = matmul(gh, p)
        kph = matmul(k, ph)
        return (-matmul(p, k).mH + kph - matmul(matmul(a, p), kph)
                + matmul(matmul(ph, p), gh - matmul(k, a)))
    k = matmul(p, gh)
    phk = matmul(ph, k)
    return (-matmul(k, p).mH + phk - matmul(matmul(phk, p), a)
            + matmul(matmul(gh - matmul(a, k), p), ph))


class _PinvHermitian(Function):
    """The value from ``eigh`` of the lower triangle; the gradient, as PyTorch's, from its
    general pseudo-inverse rule in the whole matrix. The backward recomputes the
    pseudo-inverse through this function, so it is differentiable again (any order)."""

    @staticmethod
    def forward(ctx, x, rtol, atol):
        ctx.save_for_backward(x)
        ctx.tols = (rtol, atol)
        return _pinv_eigh(x, rtol, atol)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        rtol, atol = ctx.tols
        return _pinv_backward(g, _PinvHermitian.apply(x, rtol, atol), x), None, None


def eigvalsh(A, UPLO: str = "L"):
    """The eigenvalues (ascending) of a symmetric matrix (``torch.linalg.eigvalsh``); see
    :func:`tensorlib.ops.matrix.eigvalsh`."""
    from .ops.matrix import eigvalsh as _eigvalsh
    return _eigvalsh(A, UPLO)


def multi_dot(tensors):
    """The product of matrices, in order (``torch.linalg.multi_dot``): the first may be a
    1-d row vector and the last a 1-d column vector."""
    from .ops._util import to_tensor
    ts = [to_tensor(t) for t in tensors]
    if len(ts) < 2:
        raise ValueError(f"linalg.multi_dot: expected at least 2 tensors, got {len(ts)}")
    first_1d, last_1d = ts[0].ndim == 1, ts[-1].ndim == 1
    if first_1d:
        ts[0] = ts[0].reshape((1, -1))
    if last_1d:
        ts[-1] = ts[-1].reshape((-1, 1))
    for t in ts:
        if t.ndim != 2:
            raise ValueError(f"linalg.multi_dot: expected 2-d tensors (1-d allowed first and "
                             f"last), got shape {tuple(t.shape)}")
    out = ts[0]
    for t in ts[1:]:
        out = matmul(out, t)
    if first_1d:
        out = out.reshape(tuple(out.shape[1:]))
    if last_1d:
        out = out.reshape(tuple(out.shape[:-1]))
    return out


def solve_triangular(A, B, *, upper: bool, left: bool = True, unitriangular: bool = False):
    """``X`` with ``A @ X = B`` (``X @ A = B`` with ``left=False``) for a triangular ``A``
    (``torch.linalg.solve_triangular``; only the triangle ``upper`` names is read): a
    substitution, O(n^2) per column, that as PyTorch's gives inf / NaN for a zero on the
    diagonal instead of raising; ``B`` is ``(..., n, k)`` (``(..., k, n)`` with
    ``left=False``), batch dimensions broadcast.

    >>> tl.linalg.solve_triangular(tl.tensor([[2.0, 1.0], [0.0, 4.0]]),
    ...                            tl.tensor([[3.0], [4.0]]), upper=True)
    tensor([[1.],
            [1.]])
    """
    from .ops._util import to_float, to_tensor
    from .ops.linalg_lu import _float_spec, _tri
    A = to_float(to_tensor(A))
    _float_spec("linalg.solve_triangular", (A.shape, A.dtype), square=True)
    B = to_tensor(B)
    n = A.shape[-1]
    if B.ndim < 2 or B.shape[-2 if left else -1] != n:
        want = f"(..., {n}, k)" if left else f"(..., k, {n})"
        raise ValueError(f"linalg.solve_triangular: B of shape {tuple(B.shape)} must be "
                         f"{want} for A of shape {tuple(A.shape)} (left={left})")
    if B.dtype.kind == "c" and A.dtype.kind != "c":     # PyTorch's promotion
        A = A.astype(B.dtype)
    return _tri(A, B.astype(A.dtype), upper=upper, left=left, unit=unitriangular)


def vecdot(x, y, *, dim: int = -1):
    """The dot products ``sum(conj(x) * y)`` along ``dim``, broadcasting the rest
    (``torch.linalg.vecdot``: ``x`` is conjugated)."""
    from .ops._util import to_tensor
    x = to_tensor(x)
    if x.dtype.kind == "c":
        from .ops.complex import conj
        x = conj(x)
    return (x * y).sum(axis=dim)


def cross(input, other, *, dim: int = -1):
    """The cross product of 3-vectors along ``dim`` (``torch.linalg.cross``: dim -1)."""
    from .ops.torch_api import cross as _cross
    return _cross(input, other, dim=dim)


def _torch_level(name: str):
    from .ops import torch_api, torch_linalg
    return getattr(torch_linalg, name, None) or getattr(torch_api, name)


matrix_exp = _torch_level("matrix_exp")
matrix_power = _torch_level("matrix_power")

__all__ += ["cross", "eigvalsh", "matrix_exp", "matrix_power", "multi_dot", "pinv",
            "solve_triangular", "vecdot"]
__all__ += ["cholesky_ex", "cond", "diagonal", "householder_product", "inv_ex", "ldl_factor",
            "ldl_factor_ex", "ldl_solve", "lstsq", "lu", "lu_factor", "lu_factor_ex",
            "lu_solve", "matrix_rank", "solve_ex", "tensorinv", "tensorsolve", "vander"]
