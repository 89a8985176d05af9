"""Ops that run eagerly on the tensor's device (NumPy or CuPy), without gradient and outside
the registry: ``unique``, ``argwhere``, ``nonzero`` and ``bincount``, whose output shape
depends on the values, and ``searchsorted``. A captured graph cannot hold them, so capture
raises (with advice) instead of freezing the traced result.
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _wrap
from ..backends import xp_for
from ._util import norm_axis, to_tensor
from .search import searchsorted  # noqa: F401  (tl.searchsorted; bucketize below)


def _data(x: Tensor, op: str, why: str = "its result's shape depends on the values"):
    x._read(f"tl.{op} ({why})")
    return x._data


def _out(a, x: Tensor) -> Tensor:
    return _wrap(a, x._device, False, None, 0)


def unique(x, return_inverse: bool = False, return_counts: bool = False,
           axis: int | None = None, *, sorted: bool = True, dim: int | None = None):
    """The sorted unique values (NumPy's ``unique``), optionally with the inverse indices
    (``values[inverse]`` rebuilds ``x``) and the counts. With ``axis`` (PyTorch's ``dim``)
    the unique slices along it: ``tl.unique(edge_index, dim=1)`` drops repeated columns of
    a (2, E) edge list. NaNs are each their own value, as in PyTorch. ``sorted=False`` is
    accepted and the result is sorted anyway (PyTorch's CPU result is too).

    >>> tl.unique(tl.tensor([3, 1, 3, 2]), return_counts=True)
    (tensor([1, 2, 3]), tensor([1, 1, 2]))
    >>> tl.unique(tl.tensor([[0, 1, 0], [2, 3, 2]]), dim=1)
    tensor([[0, 1],
            [2, 3]])
    """
    del sorted          # sorting is what makes the result independent of the backend
    x = to_tensor(x)
    if dim is not None:
        if axis is not None:
            raise TypeError("unique: got both axis= and dim=; pass one")
        axis = dim
    if axis is not None:
        if x.ndim == 0:
            raise ValueError(f"unique: dim={axis} given for a 0-d tensor")
        axis = norm_axis(axis, x.ndim, "unique")
        if x.numel() == 0 and x.shape[axis] != 0:
            raise ValueError(f"unique: the input of shape {tuple(x.shape)} has 0-size dims "
                             f"other than dim {axis}, so its slices along dim {axis} are all "
                             f"empty; pass a dim of size 0 or drop the empty dims")
    xp = xp_for(x._device)
    res = xp.unique(_data(x, "unique"), return_inverse=return_inverse,
                    return_counts=return_counts, axis=axis, equal_nan=False)
    if not (return_inverse or return_counts):
        return _out(res, x)
    values, *rest = res
    if return_inverse:
        # NumPy 2's inverse has the input's shape without axis, one index per slice with it
        rest[0] = rest[0].reshape(x.shape if axis is None else (x.shape[axis],))
    return tuple(_out(a.astype(np.int64) if i else a, x)
                 for i, a in enumerate([values, *rest]))


def argwhere(x) -> Tensor:
    """The indices of the non-zero elements, one row per element: (n, ndim) int64 (PyTorch's
    ``nonzero``)."""
    x = to_tensor(x)
    return _out(xp_for(x._device).argwhere(_data(x, "argwhere")).astype(np.int64), x)


def nonzero(x, *, as_tuple: bool | None = None) -> tuple[Tensor, ...] | Tensor:
    """The indices of the non-zero elements, one int64 tensor per axis (NumPy's ``nonzero``;
    ``x[tl.nonzero(x)]`` selects them). PyTorch's spelling gets PyTorch's result:
    ``as_tuple=False`` is one (n, ndim) tensor (``tl.argwhere``). The method
    ``x.nonzero()`` is PyTorch's (see :func:`nonzero_method`).

    >>> tl.nonzero(tl.tensor([0, 3, 5]))
    (tensor([1, 2]),)
    """
    if as_tuple is False:
        return argwhere(x)
    x = to_tensor(x)
    if x.ndim == 0:     # PyTorch's tuple for a 0-d tensor: one index tensor (NumPy refuses)
        x = x.reshape((1,))
    idx = xp_for(x._device).nonzero(_data(x, "nonzero"))
    return tuple(_out(i.astype(np.int64), x) for i in idx)


def nonzero_method(self, *, as_tuple: bool = False) -> Tensor | tuple[Tensor, ...]:
    """``x.nonzero()``, PyTorch's method: the indices of the non-zero elements as one
    (n, ndim) int64 tensor (``tl.argwhere``); ``as_tuple=True`` gives one index tensor per
    axis (NumPy's ``nonzero``, the function ``tl.nonzero``'s default).

    >>> tl.tensor([0., 2., 3.]).nonzero().view(-1)
    tensor([1, 2])
    """
    return nonzero(self, as_tuple=bool(as_tuple))




def bincount(x, weights=None, minlength: int = 0) -> Tensor:
    """Occurrences of each value 0..max of a 1-d non-negative int tensor (summed ``weights``
    when given), at least ``minlength`` bins."""
    x = to_tensor(x)
    if x.ndim != 1 or x.dtype.kind not in "iub":
        raise ValueError(f"bincount: takes a 1-d integer tensor, got {x.dtype} of shape "
                         f"{tuple(x.shape)}")
    d = _data(x, "bincount")
    if d.size and int(d.min()) < 0:
        raise ValueError("bincount: values must not be negative")
    w = None
    if weights is not None:
        weights = to_tensor(weights)
        if tuple(weights.shape) != tuple(x.shape):
            raise ValueError(f"bincount: weights {tuple(weights.shape)} must match the input "
                             f"{tuple(x.shape)}")
        w = _data(weights, "bincount")
    out = xp_for(x._device).bincount(d, weights=w, minlength=int(minlength))
    if w is not None and w.dtype.kind == "f" and out.dtype != w.dtype:
        out = out.astype(w.dtype)      # float32 weights give float32 counts, as PyTorch
    return _out(out, x)


def where(condition, x=None, y=None) -> Tensor | tuple[Tensor, ...]:
    """``where(condition, x, y)``: elementwise ``x`` where ``condition`` else ``y``; with the
    condition alone, ``nonzero(condition)`` (a tuple of index tensors, eager), as PyTorch's
    and NumPy's one-argument ``where``."""
    from .elementwise import where as _where
    if x is None and y is None:
        return nonzero(condition)
    if x is None or y is None:
        raise TypeError("where: pass both x and y, or neither (where(condition) gives the "
                        "indices of the non-zero elements)")
    return _where(condition, x, y)


def isin(elements, test_elements, *, assume_unique: bool = False,
         invert: bool = False) -> Tensor:
    """Whether each element of ``elements`` is among ``test_elements``: a bool tensor of
    ``elements``' shape (PyTorch's and NumPy's ``isin``; either may be a Python number).
    Eager, as searchsorted."""
    a = to_tensor(elements)
    b = to_tensor(test_elements)
    if a._device != b._device:
        raise RuntimeError(f"isin: tensors on {a.device} and {b.device}")
    why = "an eager op, not recorded in graphs"
    out = xp_for(a._device).isin(_data(a, "isin", why), _data(b, "isin", why),
                                 assume_unique=assume_unique, invert=invert)
    return _out(out, a)


def bucketize(input, boundaries, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The bucket of each value of ``input`` among the sorted 1-d ``boundaries`` (PyTorch's
    ``bucketize``): ``i`` with ``boundaries[i-1] < x <= boundaries[i]``, or
    ``boundaries[i-1] <= x < boundaries[i]`` with ``right=True``; int64 (int32 with
    ``out_int32``). ``searchsorted(boundaries, input, right=right)``, eager."""
    boundaries = to_tensor(boundaries)
    if boundaries.ndim != 1:
        raise ValueError(f"bucketize: boundaries must be 1-d, got shape "
                         f"{tuple(boundaries.shape)} (tl.searchsorted takes batched ones)")
    return searchsorted(boundaries, input, right=right, out_int32=out_int32)
