"""Computing on the physical arrays of ``BatchedArray``s.

A batching rule calls ops on physical arrays: NumPy arrays (the fast, common case, handled
here directly), CuPy arrays, or the ``BatchedArray``s of older vmap levels, whose own rules
then run (nested vmap). :func:`call` is that dispatch; the helpers below are the moves of
dims every rule needs, written once for all three kinds of array.
"""
from __future__ import annotations

import numpy as np

from ..ops.registry import REGISTRY, OpDef
from .batched import BatchedArray

_ndarray = np.ndarray


class _Trace:
    """While a capture that met vmap runs (:mod:`.capture` installs its tracer), kernel
    calls on NumPy arrays go through ``apply`` instead, so the tracer records the batched
    ops themselves."""

    @property
    def tracer(self):
        from ..autograd.mode import state
        t = state.tracer
        return t if type(t) is _physical() else None


def _physical():
    from .capture import PhysicalTracer
    return PhysicalTracer


TRACE = _Trace()


def _fast(a) -> bool:
    return type(a) is _ndarray and TRACE.tracer is None


def call(op: OpDef, *arrays, **attrs):
    """Run registry op ``op`` on physical arrays (no autograd: this is a kernel call).
    Arrays of older vmap levels make it the rule of the newest of them, the others joining
    that level unbatched; plain arrays run the backend kernel (after the op's own check)."""
    top = None
    for a in arrays:
        if type(a) is BatchedArray and (top is None or a.dev.index > top.index):
            top = a.dev
    if top is None:
        if TRACE.tracer is not None:
            from .capture import traced_call
            return traced_call(op, arrays, attrs)
        if op.check is not None:
            op.check(*arrays, **attrs)
        if type(arrays[0]) is _ndarray or not hasattr(arrays[0], "__cuda_array_interface__"):
            out = op.cpu(*arrays, **attrs)
            if type(out) is tuple:
                return tuple(o if type(o) is _ndarray else np.asarray(o) for o in out)
            return out if type(out) is _ndarray else np.asarray(out)
        return op.kernel_for("cuda")(*arrays, **attrs)
    ins = tuple(a if type(a) is BatchedArray and a.dev is top else BatchedArray(a, None, top)
                for a in arrays)
    return op.kernel_for("vmap")(*ins, **attrs)


def op(name: str) -> OpDef:
    return REGISTRY[name]


def xp_of(a):
    """The array module of the arrays under ``a`` (NumPy or CuPy)."""
    while type(a) is BatchedArray:
        a = a.phys
    if type(a) is _ndarray:
        return np
    from ..backends import cupy
    return cupy()


def host_values(a):
    """Every value under ``a`` (all examples of all levels) as a NumPy array, for argument
    checks; None for GPU arrays (their kernels check on the device)."""
    while type(a) is BatchedArray:
        a = a.phys
    return a if type(a) is _ndarray else None


def check_indices(idx, n: int, op_name: str, allow_negative: bool = False) -> None:
    """The range check an op's public function does on the host (skipped inside vmap, where
    the values are not read there): indices in [0, n), or [-n, n) with ``allow_negative``."""
    v = host_values(idx)
    if v is None or v.size == 0:
        return
    lo, hi = int(v.min()), int(v.max())
    if hi >= n or lo < (-n if allow_negative else 0):
        raise IndexError(f"{op_name}: indices must lie in [{-n if allow_negative else 0}, {n}), "
                         f"got range [{lo}, {hi}]")


def const(value, like, dtype=None):
    """A constant array on the backend of ``like`` (unbatched at every level)."""
    xp = xp_of(like)
    return xp.asarray(value, dtype=dtype)


# --- moving dims ---------------------------------------------------------------------------
def moveaxis(a, src: int, dst: int):
    if src == dst:
        return a
    if _fast(a):
        return np.moveaxis(a, src, dst)
    nd = a.ndim
    axes = [i for i in range(nd) if i != src % nd]
    axes.insert(dst % nd, src % nd)
    return call(op("transpose"), a, axes=tuple(axes))


def transpose(a, axes: tuple):
    if _fast(a):
        return a.transpose(axes)
    return call(op("transpose"), a, axes=tuple(axes))


def expand_dims(a, axes: tuple):
    """Size-1 dims inserted at ``axes`` (positions in the result, sorted)."""
    if not axes:
        return a
    if _fast(a):
        return np.expand_dims(a, axes)
    return call(op("expand_dims"), a, axis=tuple(axes))


def squeeze(a, axes: tuple):
    if not axes:
        return a
    if _fast(a):
        return a.squeeze(axis=tuple(axes))
    return call(op("squeeze"), a, axis=tuple(axes))


def reshape(a, shape: tuple):
    shape = tuple(shape)
    if a.shape == shape:
        return a
    if _fast(a):
        return a.reshape(shape)
    return call(op("reshape"), a, shape=shape)


def broadcast_to(a, shape: tuple):
    shape = tuple(shape)
    if a.shape == shape:
        return a
    if _fast(a):
        return np.broadcast_to(a, shape)
    return call(op("broadcast_to"), a, shape=shape)


def sum_axes(a, axes: tuple, keepdims: bool = False):
    return call(op("sum"), a, axis=tuple(axes), keepdims=keepdims)


def take0(a, i: int):
    """``a[i]``: example ``i`` of a batched physical array."""
    if _fast(a):
        return a[i]
    return call(op("slice"), a, index=(i,))


def stack0(arrays: list):
    if TRACE.tracer is None and all(type(a) is _ndarray for a in arrays):
        return np.stack(arrays)
    return call(op("stack"), *arrays, axis=0)


def concat(arrays: list, axis: int):
    if TRACE.tracer is None and all(type(a) is _ndarray for a in arrays):
        return np.concatenate(arrays, axis=axis)
    return call(op("concatenate"), *arrays, axis=axis)


def matmul(a, b):
    return call(op("matmul"), a, b)


def binary(name: str, a, b):
    return call(op(name), a, b)
