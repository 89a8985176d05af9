"""Diagonals of matrices: ``diagonal``, ``trace`` and ``diag``, as NumPy defines them.

Composites of ``take``, ``sum``, ``pad`` and a product with the identity, so gradients of
any order, capture and export come from those ops.
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ._util import norm_axis, to_tensor


def diagonal(x, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The diagonal ``x[..., i, i + offset]`` of the (axis1, axis2) planes, as the last axis.

    >>> tl.diagonal(tl.arange(9.0).reshape(3, 3), 1)
    tensor([1., 5.])
    """
    x = to_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"diagonal: needs at least 2 dims, got shape {tuple(x.shape)}")
    a1, a2 = norm_axis(axis1, x.ndim, "diagonal"), norm_axis(axis2, x.ndim, "diagonal")
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 are the same axis ({a1})")
    rest = [a for a in range(x.ndim) if a not in (a1, a2)]
    y = x.transpose(tuple(rest) + (a1, a2))
    n, m = y.shape[-2], y.shape[-1]
    offset = int(offset)
    rows = np.arange(max(0, -offset), max(max(0, -offset), min(n, m - offset)))
    flat = y.reshape(*y.shape[:-2], n * m)
    from ..creation import tensor
    return flat.take(tensor(rows * m + rows + offset, device=x.device), axis=-1)


def trace(x, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The sum of :func:`diagonal` (NumPy's ``trace``: over axes 0 and 1 by default)."""
    return diagonal(x, offset, axis1, axis2).sum(axis=-1)


def diag(x, k: int = 0) -> Tensor:
    """NumPy's ``diag``: a 1-d ``x`` becomes the ``k``-th diagonal of a square matrix, and a
    2-d ``x`` gives its ``k``-th diagonal.

    >>> tl.diag(tl.tensor([1.0, 2.0]))
    tensor([[1., 0.],
            [0., 2.]])
    """
    x = to_tensor(x)
    if x.ndim == 2:
        return diagonal(x, k)
    if x.ndim != 1:
        raise ValueError(f"diag: takes a 1-d or 2-d tensor, got shape {tuple(x.shape)}")
    from ..creation import eye
    k = int(k)
    n = x.shape[0]
    d = eye(n, dtype=x.dtype, device=x.device) * x
    if k == 0:
        return d
    from .shape import pad
    widths = ((0, k), (k, 0)) if k > 0 else ((-k, 0), (0, -k))
    return pad(d, widths)
