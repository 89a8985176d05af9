"""Writing into a ``BatchedArray`` in place (``x[i] = v``, ``x.add_(y)`` inside vmap)."""
from __future__ import annotations

import numpy as np

from . import phys as P
from ._common import aligned
from .batched import BatchedArray


def _untraced() -> None:
    # writes into physical arrays are below what a capture records: under capture, vmap
    # takes one copy of the function per example instead
    if P.TRACE.tracer is not None:
        from .capture import Untraceable
        raise Untraceable("in-place")


def _at_level(value, dev) -> BatchedArray:
    if type(value) is BatchedArray:
        if value.dev is dev:
            return value
        if value.dev.index > dev.index:
            raise RuntimeError("vmap: an in-place write of a value of an inner vmap level into "
                               "a tensor of an outer one is not supported")
        return BatchedArray(value, None, dev)
    if not hasattr(value, "dtype"):
        value = np.asarray(value)
    return BatchedArray(value, None, dev)


def _key(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def _plain_index(key: tuple, dev) -> tuple:
    out = []
    for k in key:
        if type(k) is BatchedArray:
            if k.dev is not dev or k.bdim is not None:
                raise NotImplementedError(
                    "vmap: an in-place write at per-example (batched) tensor indices is not "
                    "supported; use the out-of-place tl.setitem / index ops instead")
            k = k.get()
        out.append(k)
    return tuple(out)


def _batched_key(key: tuple, dev) -> bool:
    return any(type(k) is BatchedArray and k.dev is dev and k.bdim is not None for k in key)


def _write_per_example(target: BatchedArray, key: tuple, v: BatchedArray) -> None:
    """``target[key] = v`` where the key holds per-example index arrays: example by example
    (each writes its own positions; a Python loop over the batch, as in-place writes at
    batched indices are rare enough that a batched scatter is not written)."""
    parts = [k.phys if type(k) is BatchedArray and k.bdim is not None else
             (k.get() if type(k) is BatchedArray else k) for k in key]
    if any(type(p) is BatchedArray for p in parts) or type(target.phys) is BatchedArray or \
            type(v.phys) is BatchedArray or target.bdim != 0:
        raise NotImplementedError(
            "vmap: an in-place write at per-example (batched) tensor indices inside nested "
            "vmap is not supported; use the out-of-place tl.setitem instead")
    batched = [type(k) is BatchedArray and k.bdim is not None for k in key]
    for b in range(target.phys.shape[0]):
        kb = tuple(p[b] if isb else p for p, isb in zip(parts, batched))
        target.phys[b][kb] = v.phys[b] if v.bdim is not None else v.phys


def set_items(target: BatchedArray, key, value) -> None:
    """``target[key] = value`` for the logical arrays: each example's region written with
    that example's value."""
    _untraced()
    from .rules_shape import _advanced_front, _selected_ndim
    v = _at_level(value, target.dev)
    key = _key(key)
    if target.bdim is not None and _batched_key(key, target.dev):
        _write_per_example(target, key, v)
        return
    key = _plain_index(key, target.dev)
    if target.bdim is None:
        if v.bdim is not None:
            raise RuntimeError(
                "vmap: an in-place write of a batched value into a tensor that is the same for "
                "every example (not batched: a closure or an in_dims=None argument) is not "
                "supported; write into a batched tensor, or use an out-of-place op")
        target.phys[key] = v.phys
        return
    if _advanced_front(key):
        raise NotImplementedError("vmap: in-place writes with index arrays that are not next "
                                  "to each other are not supported inside vmap")
    nd = _selected_ndim(target.shape, target.dtype, key)
    target.phys[(slice(None),) + key] = aligned(v, nd)


def add_into(target: BatchedArray, other) -> None:
    _untraced()
    total = P.call(P.op("add"), target, _at_level(other, target.dev))
    set_items(target, Ellipsis, total)


def view_items(source: BatchedArray, key) -> BatchedArray:
    """``source[key]`` as a view (basic indices), for writes through it."""
    _untraced()
    key = _plain_index(_key(key), source.dev)
    if source.bdim is None:
        return BatchedArray(source.phys[key], None, source.dev)
    return BatchedArray(source.phys[(slice(None),) + key], 0, source.dev)
