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
from .._state import state
from .._tensor import Tensor, _wrap
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
# a sort along an axis this short is the same scan with k = n: an insertion sort, ~n^2/4
# steps a row, against a stable argsort + gather with ~6 us of fixed cost; the scan wins up to
# n = 8 at any size, up to n = 32 while size * n stays under _SORT_SCAN_MAX_WORK (measured)
_SORT_SCAN_MAX_N = 32
_SORT_SCAN_ALWAYS_N = 8
_SORT_SCAN_MAX_WORK = 1 << 14

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_ops = None         # tensorlib._ops, imported on first use (an import per call costs ~0.3 us)

# (rows, n, k) -> read-only (rows, k) int64 array of row starts r * n: the flat positions of
# the chosen values are idx + these (a cached operand makes the gather one contiguous add and a
# take, ~1 us; building it per call, or fancy indexing, cost 2-5 us of a ~10 us call)
_ROW_STARTS: dict = {}
_ROW_STARTS_MAX = 64            # distinct shapes kept
_ROW_STARTS_MAX_SIZE = 1 << 16  # elements; larger calls build their own (cheap beside the scan)


def _row_starts(m: int, n: int, k: int) -> np.ndarray:
    key = (m, n, k)
    b = _ROW_STARTS.get(key)
    if b is None:
        b = np.repeat(np.arange(0, m * n, n, dtype=np.int64), k).reshape(m, k)
        if m * k <= _ROW_STARTS_MAX_SIZE:
            b.flags.writeable = False
            if len(_ROW_STARTS) >= _ROW_STARTS_MAX:
                _ROW_STARTS.clear()
            _ROW_STARTS[key] = b
    return b


def _topk_scan(x, axis, k, largest):
    """``(values, indices)`` of a float32/float64 ``x`` (native order, non-empty, 0 < k <=
    n) by ``_ops.topk_rows``; the axis goes last by a transpose (no moveaxis: ~3 us of Python
    per call), and a last axis that is already contiguous is read in place."""
    global _ops
    if _ops is None:
        from .. import _ops
    nd = x.ndim
    n = x.shape[axis]
    if axis == nd - 1:
        rows = np.ascontiguousarray(x)
        back = None
    else:
        perm = (*range(axis), *range(axis + 1, nd), axis)
        rows = np.ascontiguousarray(x.transpose(perm))
        back = (*range(axis), nd - 1, *range(axis, nd - 1))
    if not rows.flags.aligned:          # (the kernel reads raw memory; rare: a frombuffer)
        rows = rows.copy()
    shape = rows.shape[:-1] + (k,)
    flat = rows.reshape(-1, n)
    m = flat.shape[0]
    idx = np.empty((m, k), np.int64)
    _ops.topk_rows(flat, idx, largest)
    vals = flat.take(idx if m == 1 else idx + _row_starts(m, n, k))
    if back is None:
        return vals.reshape(shape), idx.reshape(shape)
    return vals.reshape(shape).transpose(back), idx.reshape(shape).transpose(back)


def _topk_cpu(x, *, axis, k, largest):
    """``(values, indices)``: the first ``k`` of the stable sort (``k=None``: all of it)
    and the values there, in one kernel call (a second op for the gather cost more than the
    selection on small inputs). float32/64 with k up to _TOPK_SCAN_MAX_K (and sorts of short
    axes, see _SORT_SCAN_MAX_N): one scan per row (``_ops.topk_rows``; 4096 x 1024, k=10:
    21 -> ~4 ms). Otherwise partition out k candidates and sort only those, falling back to
    the full sort where a tie straddles the k-th place, for NaN, for non-floats, or when k
    is a large share of the axis."""
    dt = x.dtype
    # identity first: the native float dtypes are singletons (a byte-swapped one is not)
    if (dt is _F32 or dt is _F64) and x.size:
        if k is None:
            n = x.shape[axis]
            if n <= _SORT_SCAN_ALWAYS_N or (
                    n <= _SORT_SCAN_MAX_N and x.size * n <= _SORT_SCAN_MAX_WORK):
                return _topk_scan(x, axis, n, bool(largest))
        elif 0 < k <= _TOPK_SCAN_MAX_K:
            return _topk_scan(x, axis, k, bool(largest))
    n = x.shape[axis]
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
    if not isinstance(x, Tensor):
        x = to_tensor(x)
    if type(axis) is not int:
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"{op}: axis must be an int, got {axis!r}")
        axis = int(axis)
    scalar = x._data.ndim == 0
    if scalar:
        x = reshape(x, (1,))
    nd = x._data.ndim
    if -nd <= axis < nd:
        return x, axis + nd if axis < 0 else axis, scalar
    return x, norm_axis(axis, nd, op), scalar      # raises, naming the op


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
    if x.dtype.kind == "c":
        raise DTypeError(f"sort: complex values have no order, got {x.dtype} (as PyTorch's "
                         f"CPU sort); sort z.real or z.abs() and gather with the indices")
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
    if type(k) is not int and (not isinstance(k, (int, np.integer)) or isinstance(k, bool)):
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


def _kthvalue_scan(x: Tensor, d: int, k: int, keepdim: bool):
    """``kthvalue``'s ``(values, indices)`` through topk's one-scan kernel, or None where
    that path does not fit (not float32/64 on the host, under capture, a k far from both
    ends). The k smallest (the k-th is the last), or for a k near n the n - k + 1 largest
    (the k-th smallest is their last): one op for values and indices, differentiable
    through topk's scatter. Its best-first buffer costs ~j per insertion, so a large j
    (64 x 200, j=51: 2.5x) is left to the caller's O(n) partition. ``x`` at least 1-d;
    ``keepdim`` keeps ``d`` (size 1)."""
    data = x._data
    dt = data.dtype
    if state.tracer is not None or type(data) is not np.ndarray or not (
            dt is _F32 or dt is _F64):
        return None
    n = data.shape[d]
    small = k <= n - k + 1
    j = k if small else n - k + 1
    if j > _TOPK_SCAN_MAX_K or (j > 16 and j * j > 4 * n):
        return None
    values, idx = apply(TOPK_INDICES, x, axis=d, k=j, largest=not small)
    key = (slice(None),) * d + (slice(j - 1, j) if keepdim else j - 1,)
    dev = x._device
    idx = _wrap(np.array(idx._data[key]), dev, False, None, 0)   # (np.array: 0-d too)
    if (values._rg or type(values) is not Tensor or dev.type != "cpu"
            or state.fwd_ad is not None):
        return values[key], idx         # the slice as an op: recorded for autograd
    # nothing records it: slicing the array is what that op would do, without ~2 us of
    # indexing dispatch (a copy: the result owns its memory, as PyTorch's)
    return _wrap(np.array(values._data[key]), dev, False, None, 0), idx
