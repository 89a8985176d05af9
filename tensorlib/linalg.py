"""Linear algebra, as ``tl.linalg`` (PyTorch's and NumPy's ``linalg`` names).

Products (``matmul``, ``dot``, ``outer``, ``einsum``, ``tensordot``) are also at the top
level; the matrix functions (``inv``, ``solve``, ``det``, ``slogdet``, ``cholesky``, ``eigh``)
live here, with ``svd``, ``qr`` and PyTorch's ``norm`` / ``vector_norm`` / ``matrix_norm``
(``tl.linalg.norm`` is ``torch.linalg.norm``: a matrix norm for 2-d input; the top-level
``tl.norm`` is a vector norm), and ``torch.linalg``'s names ``pinv``, ``eigvalsh``,
``multi_dot``, ``solve_triangular``, ``cross``, ``vecdot``, ``matrix_exp``,
``matrix_power``. All take stacks of matrices ``(..., n, n)`` and are differentiable, to
any order; a singular or indefinite matrix raises :class:`LinAlgError`.

>>> a = tl.tensor([[4.0, 2.0], [2.0, 3.0]], requires_grad=True)
>>> tl.linalg.det(a).backward()
>>> a.grad
tensor([[ 3., -2.],
        [-2.,  4.]])
"""
from .ops.linalg import dot, einsum, matmul, outer, tensordot
from .ops.matrix import LinAlgError, cholesky, det, eigh, inv, slogdet, solve
from .ops.decompositions import matrix_norm, norm, qr, svd, svdvals, vector_norm

__all__ = ["LinAlgError", "cholesky", "det", "dot", "eigh", "einsum", "inv", "matmul",
           "matrix_norm", "norm", "outer", "qr", "slogdet", "solve", "svd", "svdvals",
           "tensordot", "vector_norm"]


# --- torch.linalg's names for functions tensorlib has under PyTorch's older names ----------
def pinv(A, *, atol=None, rtol: float | None = None, hermitian: bool = False):
    """The Moore-Penrose pseudo-inverse (``torch.linalg.pinv``): singular values below
    ``rtol`` times the largest are dropped (default ``max(m, n) * eps`` of the dtype)."""
    import numpy as np

    from .ops._util import to_float, to_tensor
    from .ops.torch_api import pinverse
    if atol is not None:
        raise NotImplementedError("linalg.pinv: atol= is not supported; give rtol= (relative "
                                  "to the largest singular value)")
    A = to_float(to_tensor(A))
    if rtol is None:
        rtol = max(A.shape[-2:]) * float(np.finfo(A.dtype).eps) if A.ndim >= 2 else 0.0
    return pinverse(A, rcond=float(rtol))


def eigvalsh(A, UPLO: str = "L"):
    """The eigenvalues (ascending) of a symmetric matrix (``torch.linalg.eigvalsh``)."""
    return eigh(A, UPLO)[0]


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
    (``torch.linalg.solve_triangular``; only the triangle ``upper`` names is read)."""
    from .ops.linalg import _mT
    from .ops._util import to_tensor
    from .ops.torch_linalg import triangular_solve
    A, B = to_tensor(A), to_tensor(B)
    if left:
        return triangular_solve(B, A, upper=upper, unitriangular=unitriangular).solution
    return _mT(triangular_solve(_mT(B), _mT(A), upper=not upper,
                                unitriangular=unitriangular).solution)


def vecdot(x, y, *, dim: int = -1):
    """The dot products of ``x`` and ``y`` along ``dim``, broadcasting the rest
    (``torch.linalg.vecdot``, real tensors)."""
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
