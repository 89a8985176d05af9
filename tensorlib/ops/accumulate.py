"""Adding into the backward pass's running gradient sums, in place.

A backward rule registered with ``grad_sums`` (see :class:`~tensorlib.ops.registry.OpDef`)
may add its gradient straight into the sum the walk holds for an input
(``tensorlib._core.grad_sums``): a weight used at every step of a loop then costs one GEMM
with beta = 1 per step instead of a product, an allocation and an add. The two primitives
here run on the backend's own kernels where it has them (tensorlib's CPU GEMM; cuBLAS and a
column-sum kernel, which :mod:`tensorlib.cuda` installs in :data:`KERNELS`) and on plain
array code elsewhere.
"""
from __future__ import annotations

import numpy as np

from .. import _blas, _gemm

# array module name -> {"add_product": f(c, a, b) -> bool (False: not done),
#                       "col_sum": f(x2, into) -> the sums, or into[0] when added into them,
#                                  or None where the kernel does not take the arrays}
KERNELS: dict[str, dict] = {}
_BLAS_MIN = 1 << 16


def matmul_for(xp):
    """2-D matrix product for the backend: tensorlib's float32 GEMM on the CPU."""
    return _gemm.matmul if xp is np else xp.matmul


def add_product(xp, c, a, b) -> None:
    """``c += a @ b`` in place, for 2-D arrays: one GEMM with beta = 1 where the backend's
    kernel takes them, else the product and an add."""
    if xp is np:
        # tensorlib's GEMM (float32, AVX-512), else BLAS's with beta = 1 for a transposed
        # C-contiguous ``a`` (a weight's gradient g.T @ x) where ``c`` is large enough for
        # the pass over it that this saves to outweigh the ctypes call (measured crossover
        # ~50k elements, float32 and float64: 256 x 256 57 against 70 µs, 64 x 64 19 against 8)
        done = _gemm.add_product(c, a, b, 1.0) or (
            c.size >= _BLAS_MIN and a.T.flags.c_contiguous and b.flags.c_contiguous
            and _blas.add_at_b(c, a.T, b, 1.0))
    else:
        k = KERNELS.get(xp.__name__)
        done = k is not None and k["add_product"](c, a, b)
    if not done:
        c += matmul_for(xp)(a, b)


def col_sum(xp, x2, into: tuple = ()):
    """The column sums of the 2-D array ``x2`` (``x2.sum(axis=0)``); with ``into``, added
    into each of those arrays (of shape ``x2.shape[1:]``) instead, and None returned."""
    k = KERNELS.get(xp.__name__) if xp is not np else None
    if k is not None:
        s = k["col_sum"](x2, into)      # None: the kernel does not take these arrays
        if s is not None:
            return None if into else s
    s = x2.sum(axis=0)
    if not into:
        return s
    for t in into:
        t += s
    return None
