"""Diagonals of matrices: ``diagonal`` (a view, as PyTorch's), ``trace`` and ``diag``.

``diagonal`` is a registry op whose output shares the input's memory, so in-place ops on it
write into the matrix (``cov.diagonal().add_(eps)``, as in PyTorch; NumPy's is read-only).
Its backward is ``diagonal_embed`` (the gradient on the diagonal of zeros) and that op's is
``diagonal``: both linear, so gradients of any order. ``trace`` and ``diag`` are composites.
"""
from __future__ import annotations

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from ._util import norm_axis, numel, to_tensor
from .registry import OpDef, register


def _geometry(shape, offset, axis1, axis2):
    """(first row, first column, length) of the diagonal of the (axis1, axis2) planes."""
    n, m = shape[axis1], shape[axis2]
    r0, c0 = max(0, -offset), max(0, offset)
    return r0, c0, max(0, min(n - r0, m - c0))


def _diagonal_fwd(xp, x, *, offset, axis1, axis2):
    if xp is not np:
        return x.diagonal(offset, axis1, axis2)      # CuPy's is a writable view already
    y = np.moveaxis(x, (axis1, axis2), (-2, -1))
    r0, c0, L = _geometry(x.shape, offset, axis1, axis2)
    if L == 0:
        return np.empty(y.shape[:-2] + (0,), x.dtype)
    start = y[..., r0:, c0:]
    return np.lib.stride_tricks.as_strided(
        start, y.shape[:-2] + (L,), y.strides[:-2] + (y.strides[-2] + y.strides[-1],),
        writeable=x.flags.writeable)


def _diagonal_infer(x, *, offset, axis1, axis2):
    shape, dt = x
    rest = tuple(d for a, d in enumerate(shape) if a not in (axis1, axis2))
    if shape[axis1] is None or shape[axis2] is None:    # known when the graph runs
        return rest + (None,), dt
    return rest + (_geometry(shape, offset, axis1, axis2)[2],), dt


def _embed_fwd(xp, g, *, shape, offset, axis1, axis2):
    out = xp.zeros(tuple(shape), g.dtype)
    _diagonal_fwd(xp, out, offset=offset, axis1=axis1, axis2=axis2)[...] = g
    return out


_GEO = ("offset", "axis1", "axis2")
DIAGONAL = register(OpDef(
    "diagonal", _diagonal_fwd, infer=_diagonal_infer, view=True, saves=False,
    vjp=lambda n, g: (apply(DIAGONAL_EMBED, g, shape=tuple(n.inputs[0].shape),
                            **{k: n.attrs[k] for k in _GEO}),),
    cost=lambda i, o, **a: (0, 0), complex="holomorphic",
    doc="The diagonal of the (axis1, axis2) planes as the last axis (a view)."))
DIAGONAL_EMBED = register(OpDef(
    "diagonal_embed", _embed_fwd, saves=False,
    infer=lambda g, *, shape, offset, axis1, axis2: (tuple(shape), g[1]),
    vjp=lambda n, g: (apply(DIAGONAL, g, **{k: n.attrs[k] for k in _GEO}),),
    cost=lambda i, o, **a: (0, numel(o[0]) * np.dtype(o[1]).itemsize), complex="holomorphic",
    doc="Zeros of ``shape`` with ``g`` on the diagonal (diagonal's backward)."))


def diagonal(x, offset: int = 0, axis1: int = 0, axis2: int = 1, *, dim1: int | None = None,
             dim2: int | None = None) -> Tensor:
    """The diagonal ``x[..., i, i + offset]`` of the (axis1, axis2) planes, as the last axis.
    A view, as PyTorch's: in-place ops on it change ``x``.

    >>> tl.diagonal(tl.arange(9.0).reshape(3, 3), 1)
    tensor([1., 5.])
    >>> m = tl.zeros(2, 2); _ = m.diagonal().add_(1.0); m
    tensor([[1., 0.],
            [0., 1.]])
    """
    if dim1 is not None:        # PyTorch's names
        axis1 = dim1
    if dim2 is not None:
        axis2 = dim2
    x = to_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"diagonal: needs at least 2 dims, got shape {tuple(x.shape)}")
    a1, a2 = norm_axis(axis1, x.ndim, "diagonal"), norm_axis(axis2, x.ndim, "diagonal")
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 are the same axis ({a1})")
    return apply(DIAGONAL, x, offset=int(offset), axis1=a1, axis2=a2)


def diagonal_write_back(view: Tensor, base: Tensor, attrs: dict) -> Tensor:
    """``base`` with its diagonal replaced by ``view``, in tensorlib ops (an in-place op on a
    diagonal view carries into the base's history this way)."""
    from ..creation import tensor
    from .elementwise import where
    mask = _embed_fwd(np, np.ones(tuple(view.shape), bool), shape=tuple(base.shape), **attrs)
    return where(tensor(mask, device=base.device),
                 apply(DIAGONAL_EMBED, view, shape=tuple(base.shape), **attrs), base)


def trace(x, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The sum of :func:`diagonal` (NumPy's ``trace``: over axes 0 and 1 by default)."""
    return diagonal(x, offset, axis1, axis2).sum(axis=-1)


_diagonal_view = diagonal   # (diag's diagonal= keyword shadows it)


def diag(x, k: int = 0, *, diagonal: int | None = None) -> Tensor:
    """A 1-d ``x`` becomes the ``k``-th diagonal of a square matrix, and a 2-d ``x`` gives a
    copy of its ``k``-th diagonal (as ``torch.diag`` and ``np.diag``; :func:`diagonal` is
    the view).

    >>> tl.diag(tl.tensor([1.0, 2.0]))
    tensor([[1., 0.],
            [0., 2.]])

    ``diagonal=`` is PyTorch's name for ``k``.
    """
    if diagonal is not None:
        if k != 0:
            raise TypeError("diag: got both k and diagonal=; they are the same argument")
        k = diagonal
    x = to_tensor(x)
    if x.ndim == 2:
        return _diagonal_view(x, k).clone()
    if x.ndim != 1:
        raise ValueError(f"diag: takes a 1-d or 2-d tensor, got shape {tuple(x.shape)}")
    k = int(k)
    m = x.shape[0] + abs(k)     # embedded, not eye(n) * x: 0 * inf would put NaN off it
    return apply(DIAGONAL_EMBED, x, shape=(m, m), offset=k, axis1=0, axis2=1)
