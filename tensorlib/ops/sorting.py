"""Sorting: ``argsort`` and ``topk_indices`` (registry ops), ``sort`` / ``topk`` on them.

``topk_indices`` gives ``(values, indices)`` from one kernel call (``k=None``: the whole
axis, which is ``sort``); its gradient scatters into the input at the indices with
``scatter_add``, whose own gradient is a gather, so gradients of gradients work. Sorts are
stable: equal values keep their order, ascending or descending (as
``torch.sort(stable=True)`` and ONNX TopK). NaN counts as the largest value.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..errors import DTypeError
from .._apply import apply
from .._tensor import Tensor
from ._util import norm_axis, numel, to_tensor
from .nn_util import io_cost
from .registry import OpDef, register
from .shape import reshape


# from this many values along the sorted axis, the CPU argsort of integer and float keys is
# _ops' stable radix sort (NumPy's stable sort of them is a timsort: 4-7x PyTorch at 100k)
_RADIX_MIN = 512


def _radix_keys(x, descending):
    """uint64 keys whose unsigned order is ``x``'s order (NaN last; -0.0 equal to 0.0),
    inverted for ``descending`` (still stable: ties keep input order); None if x's dtype
    has no such map here."""
    k = x.dtype.kind
    if k == "f":
        bits = np.uint32 if x.dtype.itemsize <= 4 else np.uint64
        f = x.astype(np.float32 if bits is np.uint32 else np.float64)
        f = np.where(np.isnan(f), np.nan, f + f.dtype.type(0))    # one NaN, no -0.0
        b = f.view(bits)
        top = bits(1) << bits(8 * f.dtype.itemsize - 1)
        keys = np.where(b & top, ~b, b | top).astype(np.uint64)
    elif x.dtype.itemsize <= 2:
        return None         # NumPy's stable sort of 8- and 16-bit ints is a radix sort
    elif k == "i":
        keys = x.astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)
    elif k == "u":
        keys = x.astype(np.uint64)
    else:
        return None
    return ~keys if descending else keys


def _radix_argsort(x, axis, descending):
    from .. import _ops
    keys = _radix_keys(x, descending)
    if keys is None:
        return None
    moved = np.ascontiguousarray(np.moveaxis(keys, axis, -1))
    rows = moved.reshape(-1, moved.shape[-1])
    out = np.empty(rows.shape, np.int64)
    _ops.radix_argsort_rows(rows, out)
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


def _argsort_fwd(xp, x, *, axis, descending):
    if xp is np and x.ndim and x.shape[axis] >= _RADIX_MIN:
        out = _radix_argsort(x, axis, descending)
        if out is not None:
            return out
    kind = {"kind": "stable"} if xp is np else {}   # CuPy's sorts are stable already
    if not descending:
        return xp.argsort(x, axis=axis, **kind).astype(np.int64, copy=False)
    # descending and still stable: sort the reversed axis ascending, then read it backwards,
    # so that among equal values the first in the input comes first
    r = xp.flip(xp.argsort(xp.flip(x, axis), axis=axis, **kind), axis)
    return (x.shape[axis] - 1 - r).astype(np.int64, copy=False)


def _argsort_infer(x, *, axis, descending):
    shape, dt = x
    if not len(shape):
        raise ValueError("argsort: needs at least one dimension")
    if np.dtype(dt).kind == "c":
        raise DTypeError(f"argsort: complex values have no order, got {np.dtype(dt)}")
    return tuple(shape), np.dtype(np.int64)


def _argsort_flops(ins, outs, *, axis, descending):
    n = ins[0][0][axis] or 2      # n log n comparisons per sorted line
    return numel(ins[0][0]) * max(1.0, math.log2(n))


ARGSORT = register(OpDef(
    "argsort", _argsort_fwd, infer=_argsort_infer, cost=io_cost(_argsort_flops),
    doc="Indices that sort ``x`` along ``axis`` (stable)."))


def _topk_idx_fwd(xp, x, *, axis, k, largest):
    return _argsort_fwd(xp, x, axis=axis, descending=largest)[
        (slice(None),) * axis + (slice(0, k),)]


def _topk_fwd(xp, x, *, axis, k, largest):
    idx = _topk_idx_fwd(xp, x, axis=axis, k=x.shape[axis] if k is None else k, largest=largest)
    return xp.take_along_axis(x, idx, axis=axis), idx


# up to this k, topk scans each row once keeping a best-first buffer of k (Cython)
_TOPK_SCAN_MAX_K = 128


def _topk_cpu(x, *, axis, k, largest):
    """``(values, indices)``: the first ``k`` of the stable sort (``k=None``: all of it)
    and the values there, in one kernel call (a second op for the gather cost more than the
    selection on small inputs). float32/64 with k up to _TOPK_SCAN_MAX_K: one scan per row
    (``_ops.topk_rows``; 4096 x 1024, k=10: 21 -> ~4 ms). Otherwise partition out k
    candidates and sort only those, falling back to the full sort where a tie straddles the
    k-th place, for NaN, for non-floats, or when k is a large share of the axis."""
    n = x.shape[axis]
    if k is not None and x.dtype in (np.float32, np.float64) and 0 < k <= _TOPK_SCAN_MAX_K \
            and x.size:
        from .. import _ops
        last = axis == x.ndim - 1
        rows = x if last else np.moveaxis(x, axis, -1)
        lead = rows.shape[:-1]
        rows = np.ascontiguousarray(rows).reshape(-1, n)
        m = rows.shape[0]
        idx = np.empty((m, k), np.int64)
        _ops.topk_rows(rows, idx, bool(largest))
        # the values at those indices: a plain fancy index (take_along_axis's checks and
        # index building cost more than the gather itself on small inputs)
        vals = rows[0, idx[0]][None] if m == 1 else rows[np.arange(m)[:, None], idx]
        idx, vals = idx.reshape(lead + (k,)), vals.reshape(lead + (k,))
        if not last:
            idx, vals = np.moveaxis(idx, -1, axis), np.moveaxis(vals, -1, axis)
        return vals, idx
    idx = _topk_idx_cpu(x, axis=axis, k=n if k is None else k, largest=largest)
    return np.take_along_axis(x, idx, axis=axis), idx


def _topk_idx_cpu(x, *, axis, k, largest):
    n = x.shape[axis]
    if (x.dtype.kind != "f" or k == 0 or 4 * k > n or not x.size
            or np.isnan(x).any()):
        return _topk_idx_fwd(np, x, axis=axis, k=k, largest=largest)
    key = np.moveaxis(x, axis, -1)
    key = -key if largest else key      # the k smallest keys, ties by index
    part = np.argpartition(key, k - 1, axis=-1)[..., :k]
    chosen = np.take_along_axis(key, part, -1)
    kth = chosen.max(axis=-1, keepdims=True)
    if ((chosen == kth).sum(-1) != (key == kth).sum(-1)).any():
        return _topk_idx_fwd(np, x, axis=axis, k=k, largest=largest)
    sel = np.sort(part, axis=-1)        # index order, so the stable sort keeps ties in it
    order = np.argsort(np.take_along_axis(key, sel, -1), axis=-1, kind="stable")
    return np.moveaxis(np.take_along_axis(sel, order, -1), -1, axis).astype(np.int64)


def _topk_infer(x, *, axis, k, largest):
    shape, dt = x
    if not len(shape):
        raise ValueError("topk: needs at least one dimension")
    if np.dtype(dt).kind == "c":
        raise DTypeError(f"topk: complex values have no order, got {np.dtype(dt)}")
    shape = list(shape)
    if k is not None:
        shape[axis] = k
    return (tuple(shape), np.dtype(dt)), (tuple(shape), np.dtype(np.int64))


def _topk_vjp(n, g, _gi):
    # each value came from the input at its index: take_along_axis's gradient, written with
    # scatter_add (whose own gradient is a gather), so double backward works
    from ..creation import zeros_like
    from .indexing import scatter_add
    return (scatter_add(zeros_like(n.inputs[0]), n.output(1), g, n.attrs["axis"]),)


# (registry name kept from when the op gave indices only: vmap and the test cases use it)
TOPK_INDICES = register(OpDef(
    "topk_indices", _topk_fwd, kernels={"cpu": _topk_cpu}, infer=_topk_infer, vjp=_topk_vjp,
    saves=False, saves_output=(1,), cost=io_cost(lambda ins, outs, **a: numel(ins[0][0])),
    doc="``(values, indices)`` of the ``k`` largest (or smallest) values along ``axis``, in "
        "order, ties in input order (the first k of the stable sort; ``k=None``: all of it, "
        "a stable sort); NaN counts as the largest."))


class sort_result(NamedTuple):
    """``(values, indices)`` of :func:`sort` (``torch.return_types.sort``)."""
    values: Tensor
    indices: Tensor


class topk_result(NamedTuple):
    """``(values, indices)`` of :func:`topk` (``torch.return_types.topk``)."""
    values: Tensor
    indices: Tensor


def _dim(op: str, axis, dim):
    """``axis`` or its PyTorch name ``dim`` (not both; an ``axis`` left at its default -1
    gives way to ``dim``)."""
    if dim is not None:
        if axis != -1:
            raise TypeError(f"{op}: got both axis= and dim= (NumPy's and PyTorch's names for "
                            "the same argument); pass one")
        return dim
    return axis


def _prepare(x, axis: int, op: str) -> tuple[Tensor, int, bool]:
    """(x as at least 1-d, the normalised axis, whether x was 0-d)."""
    x = to_tensor(x)
    scalar = x.ndim == 0
    if scalar:
        x = reshape(x, (1,))
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    return x, norm_axis(int(axis), x.ndim, op), scalar


def argsort(x, axis: int = -1, descending: bool = False, *, dim: int | None = None,
            stable: bool = True) -> Tensor:
    """Indices (int64) that sort ``x`` along ``axis`` (``dim=``, default -1); stable (so
    PyTorch's ``stable=`` changes nothing), NaN last ascending.

    >>> tl.argsort(tl.tensor([3.0, 1.0, 2.0]))
    tensor([1, 2, 0])
    """
    del stable
    x, ax, scalar = _prepare(x, _dim("argsort", axis, dim), "argsort")
    idx = apply(ARGSORT, x, axis=ax, descending=bool(descending))
    return reshape(idx, ()) if scalar else idx


def sort(x, axis: int = -1, descending: bool = False, *, dim: int | None = None,
         stable: bool = True) -> sort_result:
    """``(values, indices)`` (a named tuple, as ``torch.sort``) of ``x`` sorted along
    ``axis`` (``dim=``, default -1); stable; differentiable in the values.

    >>> values, indices = tl.sort(tl.tensor([3.0, 1.0, 2.0]), descending=True)
    >>> values
    tensor([3., 2., 1.])
    """
    del stable
    x, ax, scalar = _prepare(x, _dim("sort", axis, dim), "sort")
    # the whole-axis topk: values and indices from one op (argsort + a gather cost ~8x
    # PyTorch on small inputs)
    values, idx = apply(TOPK_INDICES, x, axis=ax, k=None, largest=bool(descending))
    if scalar:
        return sort_result(reshape(values, ()), reshape(idx, ()))
    return sort_result(values, idx)


def topk(x, k: int, axis: int = -1, largest: bool = True, sorted: bool = True, *,
         dim: int | None = None) -> topk_result:
    """The ``k`` largest (``largest=False``: smallest) values along ``axis`` (``dim=``,
    default -1) and their indices, in order, as a ``(values, indices)`` named tuple; ties
    keep their input order (the stable sort's, as ONNX TopK; PyTorch leaves it unspecified),
    NaN counts as the largest. A 0-d input gives 0-d results (also for k=0, as PyTorch).
    Differentiable in the values (gradients of gradients too).

    >>> tl.topk(tl.tensor([[1.0, 5.0, 3.0]]), 2)[1]
    tensor([[1, 2]])
    """
    x, ax, scalar = _prepare(x, _dim("topk", axis, dim), "topk")
    n = x.shape[ax]
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"topk: k must be an int, got {k!r}")
    if n is not None and not 0 <= k <= n:
        from ..errors import InputError
        raise InputError(f"topk: selected index k={k} is out of range for a dimension of "
                         f"size {n} (axis {ax} of shape {tuple(x.shape)})")
    del sorted   # the values always come out in order (a sorted result is a valid unsorted one)
    # a 0-d input gives 0-d results, k=0 too (PyTorch's topk returns the element then)
    k = 1 if scalar else int(k)
    values, idx = apply(TOPK_INDICES, x, axis=ax, k=k, largest=bool(largest))
    if scalar:
        return topk_result(reshape(values, ()), reshape(idx, ()))
    return topk_result(values, idx)
