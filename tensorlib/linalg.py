"""Linear algebra, as ``tl.linalg`` (PyTorch's and NumPy's ``linalg`` names).

Products (``matmul``, ``dot``, ``outer``, ``einsum``, ``tensordot``) are also at the top
level; the matrix functions (``inv``, ``solve``, ``det``, ``slogdet``, ``cholesky``, ``eigh``)
live here, with ``svd``, ``qr`` and PyTorch's ``norm`` / ``vector_norm`` / ``matrix_norm``
(``tl.linalg.norm`` is ``torch.linalg.norm``: a matrix norm for 2-d input; the top-level
``tl.norm`` is a vector norm). All take stacks of matrices ``(..., n, n)`` and are
differentiable, to any order.

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
