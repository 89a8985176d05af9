"""Linear algebra, as ``tl.linalg`` (PyTorch's and NumPy's ``linalg`` names).

Products (``matmul``, ``dot``, ``outer``, ``einsum``, ``tensordot``) are also at the top
level; the matrix functions (``inv``, ``solve``, ``det``, ``slogdet``, ``cholesky``, ``eigh``)
live here. All take stacks of matrices ``(..., n, n)`` and are differentiable, to any order.

>>> a = tl.tensor([[4.0, 2.0], [2.0, 3.0]], requires_grad=True)
>>> tl.linalg.det(a).backward()
>>> a.grad
tensor([[ 3., -2.],
        [-2.,  4.]])
"""
from .ops.linalg import dot, einsum, matmul, outer, tensordot
from .ops.matrix import cholesky, det, eigh, inv, slogdet, solve
from .ops.reduction import norm

__all__ = ["cholesky", "det", "dot", "eigh", "einsum", "inv", "matmul", "norm", "outer",
           "slogdet", "solve", "tensordot"]
