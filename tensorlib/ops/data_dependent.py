"""Ops that run eagerly on the tensor's device (NumPy or CuPy), without gradient and outside
the registry: ``unique``, ``argwhere``, ``nonzero`` and ``bincount``, whose output shape
depends on the values, and ``searchsorted``. A captured graph cannot hold them, so capture
raises (with advice) instead of freezing the traced result; ``bincount`` with ``minlength``
is captured as the registry op of :mod:`tensorlib.ops.bincount`.
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _wrap
from ..backends import xp_for
from ..errors import InputError, ShapeError
from ._util import norm_axis, one_of, to_tensor
from . import search as _search
from .bincount import BINCOUNT, counts
from ..autograd.mode import state


def _data(x: Tensor, op: str, why: str = "its result's shape depends on the values"):
    x._read(f"tl.{op} ({why})")
    return x._data


def _out(a, x: Tensor) -> Tensor:
    return _wrap(a, x._device, False, None, 0)


def _unique_ints(a, return_inverse: bool, return_counts: bool):
    """NumPy's ``unique`` of a flat integer array over a value range not much wider than
    its length, by counting: O(n) where np.unique sorts (10x faster on 2M int64 ids)."""
    wide = a.astype(np.int64, copy=False) if a.dtype.itemsize < 8 else a
    lo, hi = int(wide.min()), int(wide.max())
    if hi - lo >= 4 * a.size + 4096:
        return None
    off = wide - wide.dtype.type(lo) if lo else wide
    if off.dtype != np.intp:
        off = off.astype(np.intp)
    cnt = np.bincount(off, minlength=hi - lo + 1)
    idx = np.flatnonzero(cnt)
    values = (idx + lo).astype(a.dtype)
    rest = []
    if return_inverse:
        lut = np.cumsum(cnt != 0, dtype=np.int64)
        lut -= 1
        rest.append(lut[off])
    if return_counts:
        rest.append(cnt[idx].astype(np.int64, copy=False))
    return (values, *rest) if rest else values


def _radix_order(a: np.ndarray):
    """The stable sorting permutation of the flat int/float array ``a`` by _ops' radix sort
    (NaN last), or None where it does not apply (short, 8/16-bit, bool, complex)."""
    if a.size < 512:
        return None
    from .sorting import _radix_keys
    keys = _radix_keys(a, False)
    if keys is None:
        return None
    from .. import _ops
    out = np.empty((1, a.size), np.int64)
    _ops.radix_argsort_rows(np.ascontiguousarray(keys).reshape(1, -1), out)
    return out[0]


def _unique_sorted(a: np.ndarray, return_inverse: bool, return_counts: bool):
    """``unique`` of a flat numeric array through one radix argsort (NumPy 2's ``unique``
    hashes, then sorts: ~10x slower at 100k int64), or None where the radix sort does not
    apply. NaNs compare unequal, so each stays its own value (PyTorch's)."""
    order = _radix_order(a)
    if order is None:
        return None
    s = a[order]
    if return_inverse and s.dtype.kind == "f" and np.isnan(s[-1]):
        return None     # NumPy's sort numbers repeated NaNs as PyTorch's does (not stably)
    new = np.empty(s.size, np.bool_)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    rest = []
    if return_inverse:
        inv = np.empty(s.size, np.int64)
        ranks = np.cumsum(new, dtype=np.int64)
        ranks -= 1
        inv[order] = ranks
        rest.append(inv)
    if return_counts:
        rest.append(np.diff(np.flatnonzero(new), append=s.size).astype(np.int64, copy=False))
    values = s[new]
    return (values, *rest) if rest else values


def unique(input, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim: int | None = None, *, axis: int | None = None):
    """The sorted unique values, optionally with the inverse indices (``values[inverse]``
    rebuilds ``x``) and the counts, in PyTorch's positional order
    (``torch.unique(input, sorted, return_inverse, return_counts, dim)``). With ``dim``
    (NumPy's ``axis=``) the unique slices along it: ``tl.unique(edge_index, dim=1)`` drops
    repeated columns of a (2, E) edge list. NaNs are each their own value, as in PyTorch.
    ``sorted=False`` is accepted and the result is sorted anyway (PyTorch's CPU result is
    too).

    >>> tl.unique(tl.tensor([3, 1, 3, 2]), return_counts=True)
    (tensor([1, 2, 3]), tensor([1, 1, 2]))
    >>> tl.unique(tl.tensor([[0, 1, 0], [2, 3, 2]]), dim=1)
    tensor([[0, 1],
            [2, 3]])
    """
    del sorted          # sorting is what makes the result independent of the backend
    x = to_tensor(input)
    axis = one_of("unique", "axis", axis, "dim", dim)
    if axis is not None:
        if x.ndim == 0:
            raise ValueError(f"unique: dim={axis} given for a 0-d tensor")
        axis = norm_axis(axis, x.ndim, "unique")
        if x.numel() == 0 and x.shape[axis] != 0:
            raise ValueError(f"unique: the input of shape {tuple(x.shape)} has 0-size dims "
                             f"other than dim {axis}, so its slices along dim {axis} are all "
                             f"empty; pass a dim of size 0 or drop the empty dims")
    xp = xp_for(x._device)
    data = _data(x, "unique")
    res = None
    if axis is None and xp is np and data.size and data.dtype.kind in "iub":
        flat = data.reshape(-1)
        res = _unique_ints(flat.view(np.uint8) if flat.dtype.kind == "b" else flat,
                           return_inverse, return_counts)
        if res is not None and data.dtype.kind == "b":
            res = (res[0].view(np.bool_), *res[1:]) if isinstance(res, tuple) \
                else res.view(np.bool_)
    if res is None and axis is None and xp is np and data.size and data.dtype.kind in "iuf":
        res = _unique_sorted(data.reshape(-1), return_inverse, return_counts)
    if res is None:
        res = xp.unique(data, return_inverse=return_inverse, return_counts=return_counts,
                        axis=axis, equal_nan=False)
    if not (return_inverse or return_counts):
        return _out(res, x)
    values, *rest = res
    if return_inverse:
        # NumPy 2's inverse has the input's shape without axis, one index per slice with it
        rest[0] = rest[0].reshape(x.shape if axis is None else (x.shape[axis],))
    return tuple(_out(a.astype(np.int64, copy=False) if i else a, x)
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
    """The number of occurrences of each value of a 1-d non-negative integer tensor, as
    ``torch.bincount``: ``max(minlength, max(x) + 1)`` bins (``minlength`` for an empty
    ``x``), int64 counts, or with ``weights`` (``x``'s shape) their sums: float32 and float64
    weights keep their dtype, others give float64. Not differentiable (as PyTorch's).

    Under ``tl.function`` / ``tl.compile`` capture, with ``minlength > 0`` the graph holds
    exactly ``minlength`` bins, and each run raises RuntimeError when a value is negative or
    ``>= minlength`` (eager would return another length); without ``minlength`` the length
    depends on the values and capture raises CaptureError.

    >>> tl.bincount(tl.tensor([0, 1, 1, 3]), minlength=5)
    tensor([1, 2, 0, 1, 0])
    """
    x = to_tensor(x)
    if x.ndim != 1 or x.dtype.kind not in "iub":
        raise ShapeError(f"bincount: takes a 1-d integer tensor, got {x.dtype} of shape "
                         f"{tuple(x.shape)}")
    if weights is not None:
        weights = to_tensor(weights)
        if tuple(weights.shape) != tuple(x.shape):
            raise ShapeError(f"bincount: weights {tuple(weights.shape)} must match the input "
                             f"{tuple(x.shape)}")
    # (int() of a size read from a None dim notes it: the graph is then traced per shape)
    minlength = int(minlength)
    if minlength < 0:
        raise InputError(f"bincount: minlength must be non-negative, got {minlength}")
    from ._util import check_alloc
    if state.tracer is not None and minlength > 0:
        from .._apply import apply
        check_alloc("bincount", (minlength,), 8)
        ins = (x,) if weights is None else (x, weights)
        return apply(BINCOUNT, *ins, minlength=minlength)
    d = _data(x, "bincount", "its result's length, max(minlength, max(x) + 1), depends on "
                             "the values; pass minlength larger than every value for a "
                             "graph of minlength bins")
    if d.size and int(d.min()) < 0:
        raise InputError("bincount: values must not be negative (only 1-d non-negative "
                         "integral inputs)")
    w = None if weights is None else _data(weights, "bincount")
    n_bins = max(minlength, int(d.max()) + 1 if d.size else 0)
    check_alloc("bincount", (n_bins,), 8)       # int64 / float64 counts
    return _out(counts(xp_for(x._device), d, w, minlength), x)


def where(condition, input=None, other=None) -> Tensor | tuple[Tensor, ...]:
    """``where(condition, input, other)``: elementwise ``input`` where ``condition`` else
    ``other`` (PyTorch's names); with the condition alone, ``nonzero(condition)`` (a tuple of
    index tensors, eager), as PyTorch's and NumPy's one-argument ``where``."""
    from .elementwise import where as _where
    if input is None and other is None:
        return nonzero(condition)
    if input is None or other is None:
        raise TypeError("where: pass both input and other, or neither (where(condition) gives "
                        "the indices of the non-zero elements)")
    return _where(bool_condition(condition), input, other)


def bool_condition(condition):
    """A uint8 ``where`` condition as bool, with PyTorch 2.13's deprecation warning (it still
    takes one; other non-bool dtypes stay refused by ``where`` itself)."""
    if isinstance(condition, Tensor) and condition.dtype == np.uint8:
        from .._warn import warn_user
        warn_user("where received a uint8 condition tensor. This behavior is deprecated "
                  "(as in PyTorch); use a boolean condition instead.")
        return condition != 0
    return condition


def isin(elements, test_elements, *, assume_unique: bool = False,
         invert: bool = False) -> Tensor:
    """Whether each element of ``elements`` is among ``test_elements``: a bool tensor of
    ``elements``' shape (PyTorch's and NumPy's ``isin``; either may be a Python number).
    Eager with NumPy's sort-based ``isin``; under ``tl.function`` capture it is recorded as
    a broadcast ``==`` and ``any`` (its shape does not depend on the values)."""
    a = to_tensor(elements)
    b = to_tensor(test_elements)
    if a._device != b._device:
        raise RuntimeError(f"isin: tensors on {a.device} and {b.device}")
    if state.tracer is not None:
        hit = (a.unsqueeze(-1) == b.reshape(-1)).any(-1)
        return hit.logical_not() if invert else hit
    why = "an eager op, not recorded in graphs"
    xp = xp_for(a._device)
    if xp is np:
        out = _isin_sorted(_data(a, "isin", why), _data(b, "isin", why), invert)
        if out is not None:
            return _out(out, a)
    out = xp.isin(_data(a, "isin", why), _data(b, "isin", why),
                                 assume_unique=assume_unique, invert=invert)
    return _out(out, a)


def _isin_sorted(a: np.ndarray, b: np.ndarray, invert: bool):
    """``isin`` by sorting both sides (radix) and one searchsorted of the sorted elements
    into the sorted test set (~5x NumPy's isin at 100k int64), or None where that does not
    apply (small sizes, mixed or non-numeric dtypes: NumPy's isin then)."""
    if a.size < 4096 or b.size < 64 or a.dtype != b.dtype or a.dtype.kind not in "iuf":
        return None
    ob, oa = _radix_order(b.reshape(-1)), _radix_order(a.reshape(-1))
    if ob is None or oa is None:
        return None
    sb, sa = b.reshape(-1)[ob], a.reshape(-1)[oa]
    pos = np.searchsorted(sb, sa)
    np.minimum(pos, sb.size - 1, out=pos)
    hit = sb[pos] == sa     # NaN equals nothing, as in PyTorch
    if invert:
        np.logical_not(hit, out=hit)
    out = np.empty(a.size, np.bool_)
    out[oa] = hit
    return out.reshape(a.shape)


def _count_before(seq: Tensor, v: Tensor, right: bool) -> Tensor:
    """searchsorted as a count of the sorted ``seq`` entries that go before each value: the
    comparisons binary search makes (so NaN values land at the end alike), all at once, so
    graph capture can record it (O(len(seq)) memory per value)."""
    if seq.ndim == 1:
        s, w = seq, v.unsqueeze(-1)
    else:
        s, w = seq.unsqueeze(-2), v.unsqueeze(-1)
    after = s > w if right else s >= w
    return after.logical_not().sum(-1)


def searchsorted(sorted_sequence, input, side: str | None = None, *, right: bool | None = None,
                 sorter=None, out_int32: bool = False) -> Tensor:
    """Indices where the values ``input`` would be inserted into ``sorted_sequence`` to keep
    it sorted, as ``torch.searchsorted(sorted_sequence, input, side=..., right=...,
    sorter=..., out_int32=...)``
    (NumPy's positional ``side`` too; default 'left'). ``side`` wins over ``right``, as
    PyTorch's: only ``side='left'`` with ``right=True`` is refused. See
    :func:`tensorlib.ops.search.searchsorted` for batched sequences; under ``tl.function``
    capture (without ``sorter``) and inside ``tl.func.vmap`` (with ``sorter`` too; the
    sequence, the values or both batched) it is computed as comparisons and a sum.

    >>> tl.searchsorted(tl.tensor([1., 2., 2., 5.]), tl.tensor([2.]), side="right")
    tensor([3])
    """
    a, v = sorted_sequence, input
    if side is not None and right is not None:
        if side == "left" and right:
            raise InputError("searchsorted: side and right can't be set to opposites, got "
                             "side of left while right was True")
        right = None
    # inside tl.func.vmap the binary search (which reads the values) cannot run: the
    # comparisons and the sum are ops with batching rules
    vmapped = any(isinstance(t, Tensor) and t._device.type == "vmap" for t in (a, v, sorter))
    if not vmapped and (state.tracer is None or sorter is not None):
        return _search.searchsorted(a, v, side, right=right, sorter=sorter,
                                    out_int32=out_int32)
    v_scalar = not isinstance(v, Tensor) and np.ndim(v) == 0
    a, v = to_tensor(a), to_tensor(v)
    st = None if sorter is None else to_tensor(sorter)
    is_right = _search._side(side, right) == "right"
    _search._check(a, v, v_scalar, st)
    if st is not None:      # (an index out of range raises in the gather)
        a = a.take_along_dim(st.astype(np.int64), -1)
    out = _count_before(a, v, is_right)
    return out.astype(np.int32) if out_int32 else out


def bucketize(input, boundaries, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The bucket of each value of ``input`` among the sorted 1-d ``boundaries`` (PyTorch's
    ``bucketize``): ``i`` with ``boundaries[i-1] < x <= boundaries[i]``, or
    ``boundaries[i-1] <= x < boundaries[i]`` with ``right=True``; int64 (int32 with
    ``out_int32``). ``searchsorted(boundaries, input, right=right)``, so capturable too."""
    boundaries = to_tensor(boundaries)
    if boundaries.ndim != 1:
        raise ValueError(f"bucketize: boundaries must be 1-d, got shape "
                         f"{tuple(boundaries.shape)} (tl.searchsorted takes batched ones)")
    return searchsorted(boundaries, input, right=right, out_int32=out_int32)
