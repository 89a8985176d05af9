"""Batching rules: reshape and view ops, joins and splits, pad, and indexing."""
from __future__ import annotations

import math

import numpy as np

from . import phys as P
from ._common import aligned, batch_size, batched, rule, simple, wrap
from .batched import BatchedArray


def _resolve(shape, size: int) -> tuple:
    shape = tuple(int(s) for s in shape)
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape = tuple(size // known if s == -1 and known else (0 if s == -1 else s)
                      for s in shape)
    return shape


@simple("reshape")
def _reshape(op, x, *srcs, shape, keep=(), sizes=()):
    if srcs or keep or sizes:   # sizes computed from other tensors: graph capture only
        from .rules import fallback
        return fallback(op)(x, *srcs, shape=shape, keep=keep, sizes=sizes)
    B = x.phys.shape[0]
    return wrap(P.call(op, x.phys, shape=(B,) + _resolve(shape, x.size)), x.dev)


@simple("squeeze", "flip", "expand_dims")
def _axes_attr(op, x, *, axis):
    return wrap(P.call(op, x.phys, axis=tuple(a + 1 for a in axis)), x.dev)


@simple("transpose")
def _transpose(op, x, *, axes):
    return wrap(P.call(op, x.phys, axes=(0,) + tuple(a + 1 for a in axes)), x.dev)


@simple("broadcast_to")
def _broadcast_to(op, x, *srcs, shape, sizes=()):
    if srcs or sizes:
        from .rules import fallback
        return fallback(op)(x, *srcs, shape=shape, sizes=sizes)
    B = x.phys.shape[0]
    return wrap(P.call(op, aligned(x, len(shape)), shape=(B,) + tuple(shape)), x.dev)


@simple("roll")
def _roll(op, x, *, shift, axis):
    B = x.phys.shape[0]
    if axis is None:    # the flattened example rolled, its shape restored
        flat = P.call(op, P.reshape(x.phys, (B, x.size)), shift=shift, axis=1)
        return wrap(P.reshape(flat, x.phys.shape), x.dev)
    ax = axis + 1 if isinstance(axis, int) else tuple(a + 1 for a in axis)
    return wrap(P.call(op, x.phys, shift=shift, axis=ax), x.dev)


@simple("repeat")
def _repeat(op, x, *, repeats, axis):
    B = x.phys.shape[0]
    if axis is None:
        return wrap(P.call(op, P.reshape(x.phys, (B, x.size)), repeats=repeats, axis=1), x.dev)
    return wrap(P.call(op, x.phys, repeats=repeats, axis=axis + 1), x.dev)


@simple("tile")
def _tile(op, x, *, reps):
    p = aligned(x, len(reps))
    return wrap(P.call(op, p, reps=(1,) + tuple(reps)), x.dev)


@simple("pad", "pad_grad")
def _pad(op, x, *, pad_width, **rest):
    return wrap(P.call(op, x.phys, pad_width=((0, 0),) + tuple(pad_width), **rest), x.dev)


# --- joins and splits --------------------------------------------------------------------
@simple("concatenate", "stack")
def _join(op, *xs, axis):
    B = batch_size(xs)
    return wrap(P.call(op, *[batched(a, B) for a in xs], axis=axis + 1), xs[0].dev)


@simple("split")
def _split(op, x, *, indices, axis):
    return wrap(P.call(op, x.phys, indices=indices, axis=axis + 1), x.dev)


@simple("unbind")
def _unbind(op, x, *, axis, n):
    return wrap(P.call(op, x.phys, axis=axis + 1, n=n), x.dev)


# --- indexing ------------------------------------------------------------------------------
def _items(index: tuple, dev) -> tuple[tuple, bool]:
    """The index with unbatched tensor indices as plain arrays; whether one is batched."""
    out, batched_index = [], False
    for k in index:
        if type(k) is BatchedArray:
            if k.dev is not dev:
                raise NotImplementedError(
                    "vmap: indexing with a tensor of an outer vmap level inside an inner one is "
                    "not supported; pass the index into the inner vmap as an argument")
            if k.bdim is not None:
                batched_index = True
            else:
                k = k.get()
        out.append(k)
    return tuple(out), batched_index


def _is_array(k) -> bool:
    return hasattr(k, "dtype") and not isinstance(k, (int, np.integer))


def _advanced_front(index: tuple) -> int:
    """How many dims NumPy puts in front of an advanced index's result (the broadcast dims
    of index arrays that are not next to each other), 0 when they stay in place."""
    arrays = [i for i, k in enumerate(index) if _is_array(k)]
    if not arrays:
        return 0
    adv = [i for i, k in enumerate(index) if _is_array(k) or isinstance(k, (int, np.integer))]
    if adv[-1] - adv[0] == len(adv) - 1:
        return 0
    shapes = [(int(np.count_nonzero(k)),) if k.dtype == np.bool_ else tuple(k.shape)
              for k in index if _is_array(k)]
    return len(np.broadcast_shapes(*shapes))


def _indexing(op, dev):
    """slice/getitem: the batch dim indexed by a full slice in front; where NumPy moves
    the index arrays' dims in front, the batch dim is moved back first. A batched index
    (a tensor of per-example indices) runs per example."""
    def r(x, *, index):
        index, per_example = _items(index, dev)
        if per_example:
            from .rules import fallback
            return fallback(op)(x, index=index)
        if x.bdim is None:
            return wrap(P.call(op, x.phys, index=index), dev, None)
        out = P.call(op, x.phys, index=(slice(None),) + index)
        front = _advanced_front(index)
        return wrap(P.moveaxis(out, front, 0) if front else out, dev)
    return r


@rule("slice", "getitem")
def _slice_factory(op):
    def r(x, *, index):
        return _indexing(op, x.dev)(x, index=index)
    return r


@simple("getitem_grad", index=True)
def _getitem_grad(op, g, *, index, shape, basic):
    index, per_example = _items(index, g.dev)
    if per_example:
        from .rules import fallback
        return fallback(op)(g, index=index, shape=shape, basic=basic)
    B = g.phys.shape[0]
    p = g.phys
    front = _advanced_front(index)
    if front:
        p = P.moveaxis(p, 0, front)
    return wrap(P.call(op, p, index=(slice(None),) + index, shape=(B,) + tuple(shape),
                       basic=basic), g.dev)


@simple("setitem", index=True)
def _setitem(op, x, v, *, index):
    index, per_example = _items(index, x.dev)
    if per_example or _advanced_front(index):
        from .rules import fallback
        return fallback(op)(x, v, index=index)
    B = batch_size((x, v))
    target = _selected_ndim(x.shape, x.dtype, index)
    pv = aligned(v, target)
    return wrap(P.call(op, batched(x, B), pv, index=(slice(None),) + index), x.dev)


def _selected_ndim(shape, dtype, index) -> int:
    from ..ops.indexing import _index_infer
    return len(_index_infer((tuple(shape), dtype), index=index)[0])


@simple("take_along_axis")
def _take_along_axis(op, x, idx, *, axis, strict=False):
    B = batch_size((x, idx))
    n = max(x.ndim, idx.ndim)
    return wrap(P.call(op, batched(_up(x, n), B), batched(_up(idx, n), B), axis=axis + 1,
                       strict=strict), x.dev)


def _up(a: BatchedArray, n: int) -> BatchedArray:
    return BatchedArray(aligned(a, n), a.bdim, a.dev) if a.bdim is not None else a


@simple("take")
def _take(op, x, idx, *, axis, strict=False):
    if idx.bdim is None:
        return wrap(P.call(op, x.phys, idx.phys, axis=axis + 1, strict=strict), x.dev)
    if x.bdim is None:      # the index's batch dim lands at ``axis`` of the result
        out = P.call(op, x.phys, idx.phys, axis=axis, strict=strict)
        return wrap(P.moveaxis(out, axis, 0), x.dev)
    if P.host_values(idx.phys) is None or x.ndim == 0:
        from .rules import fallback
        return fallback(op)(x, idx, axis=axis, strict=strict)
    # per-example indices: each example's ``axis`` rows as one block of a stacked table
    B, n = x.phys.shape[0], x.shape[axis]
    P.check_indices(idx.phys, n, op.name, not strict)
    rest = tuple(d for i, d in enumerate(x.shape) if i != axis)
    table = P.reshape(P.moveaxis(x.phys, axis + 1, 1), (B * n,) + rest)
    flat = P.binary("mod", idx.phys, P.const(n, idx.phys, dtype=idx.dtype)) if not strict \
        else idx.phys
    out = P.call(op, table, _offsets(flat, B, n), axis=0, strict=strict)
    k = idx.ndim           # (B, *idx, *rest) -> (B, *x[:axis], *idx, *x[axis+1:])
    perm = (0,) + tuple(range(1 + k, 1 + k + axis)) + tuple(range(1, 1 + k)) + \
        tuple(range(1 + k + axis, out.ndim))
    return wrap(P.transpose(out, perm), x.dev)


def _offsets(idx_p, B: int, n: int):
    off = np.arange(B, dtype=idx_p.dtype).reshape((B,) + (1,) * (idx_p.ndim - 1)) * n
    return P.binary("add", idx_p, P.const(off, idx_p))


@rule("to_device")
def _to_device_factory(op):
    def r(x, *, device):
        raise NotImplementedError(
            f"vmap: moving a tensor to {device} inside vmap is not supported; move the "
            "inputs before calling the vmapped function")
    return r


@simple("view_as_real", "view_as_complex", "real", "imag")
def _complex_parts(op, x):
    # these act on each element (view_as_*: the last dim): the batch dim first goes along,
    # and the per-example fallback would hand their kernels 0-d NumPy scalars, not views
    return wrap(P.call(op, x.phys), x.dev)
