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


# --- products whose sum over the batch is pending -------------------------------------------
class Outer:
    """A product ``u @ v`` of stacks of matrices (NumPy, batch dims leading), not yet
    computed: what the backward of ``W @ x`` under vmap gives for a weight that is the same
    for every example. Its usual fate is to be summed over the batch (the lifted weight's
    gradient), which is then one GEMM contracting over batch and rank, where computing it
    would materialise ``B x m x n`` and B small GEMMs. Gradients of one weight add up as
    more factors. Anything else computes it (once; :func:`real`)."""

    __slots__ = ("u", "v", "shape", "dtype", "_val")

    def __init__(self, u, v):
        self.u, self.v = u, v
        self.shape = u.shape[:-1] + v.shape[-1:]
        self.dtype = u.dtype
        self._val = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def value(self):
        if self._val is None:
            self._val = np.matmul(self.u, self.v) if self.u.shape[-1] != 1 else \
                np.multiply(self.u, self.v)
        return self._val

    def __array__(self, dtype=None, copy=None):
        v = self.value()
        return v if dtype is None else v.astype(dtype)

    def __getitem__(self, key):
        return self.value()[key]

    def __setitem__(self, key, value):
        self.value()[key] = value

    def __getattr__(self, name):
        return getattr(self.value(), name)


_MIN_OUTER = 4      # below this m or n the product is as cheap as its factors


def outer(u, v):
    """``u @ v`` (stacks ``(L..., m, r)`` and ``(L..., r, n)`` of one dtype, ``L``
    broadcastable), kept as factors (:class:`Outer`) where a pending batch sum may contract
    it (or no one reads it: a weight's gradient that a pruned backward drops)."""
    if (type(u) is _ndarray and type(v) is _ndarray and TRACE.tracer is None
            and min(u.ndim, v.ndim) >= 2 and max(u.ndim, v.ndim) >= 3 and u.dtype == v.dtype
            and u.dtype.kind == "f" and u.shape[-2] >= _MIN_OUTER
            and v.shape[-1] >= _MIN_OUTER and u.shape[-1] < min(u.shape[-2], v.shape[-1])):
        if u.shape[:-2] != v.shape[:-2]:
            # nested levels (vmap of a hessian: examples x basis) meet here with size-1
            # dims on either side; broadcast views keep the product pending all the same
            try:
                lead = np.broadcast_shapes(u.shape[:-2], v.shape[:-2])
            except ValueError:
                return None
            u = np.broadcast_to(u, lead + u.shape[-2:])
            v = np.broadcast_to(v, lead + v.shape[-2:])
        return Outer(u, v)
    return None


def real(a):
    """``a`` computed, where it is an :class:`Outer`."""
    return a.value() if type(a) is Outer else a


def _outer_sum(a: Outer, axis, keepdims: bool):
    """``a`` summed over ``axis`` (batch dims only): one GEMM over batch and rank; None
    where the axes reach the matrix dims."""
    nd = a.ndim
    axes = tuple(range(nd)) if axis is None else \
        tuple(sorted({int(x) % nd for x in (axis if isinstance(axis, (tuple, list))
                                             else (axis,))}))
    if not axes or axes[-1] >= nd - 2 or a._val is not None:
        return None
    keep = [i for i in range(nd - 2) if i not in axes]
    u, v = a.u, a.v
    m, r, n = u.shape[-2], u.shape[-1], v.shape[-1]
    k = int(np.prod([u.shape[i] for i in axes])) * r
    kshape = tuple(u.shape[i] for i in keep)
    ut = u.transpose(keep + [nd - 2] + list(axes) + [nd - 1]).reshape(kshape + (m, k))
    vt = v.transpose(keep + list(axes) + [nd - 2, nd - 1]).reshape(kshape + (k, n))
    if keep and not keepdims and k < min(m, n):     # still batched: still pending
        return Outer(ut, vt)
    out = REGISTRY["matmul"].cpu(ut, vt)
    if keepdims:
        out = np.expand_dims(out, axes)
    return out


def _outer_add(a, b):
    """The sum of two :class:`Outer` of one shape: their factors side by side."""
    if type(a) is not Outer or type(b) is not Outer or a.shape != b.shape or \
            a.dtype != b.dtype or a._val is not None or b._val is not None:
        return None
    r = a.u.shape[-1] + b.u.shape[-1]
    if r >= min(a.shape[-2], a.shape[-1]):
        return None
    return Outer(np.concatenate((a.u, b.u), axis=-1), np.concatenate((a.v, b.v), axis=-2))


def _outer_reshape(a: Outer, shape: tuple):
    """``a`` reshaped where that splits its row dim ``m`` into several (a level's batch
    folded into the rows, taken out again) or leaves the matrix dims as they are."""
    lead, n = a.shape[:-2], a.shape[-1]
    k = len(lead)
    if a._val is not None or len(shape) <= k or tuple(shape[:k]) != lead or shape[-1] != n \
            or -1 in shape or int(np.prod(shape[k:-1])) != a.shape[-2]:
        return None
    r = a.u.shape[-1]
    u = a.u.reshape(tuple(shape[:-1]) + (r,))
    v = a.v.reshape(lead + (1,) * (len(shape) - k - 2) + (r, n))
    return Outer(u, np.broadcast_to(v, tuple(shape[:-2]) + (r, n)))


def _outer_transpose(a: Outer, axes: tuple):
    """``a`` with its batch dims permuted and/or its matrix dims swapped: (u v)^T = v^T u^T."""
    nd = a.ndim
    axes = tuple(int(x) % nd for x in axes)
    if a._val is not None or len(axes) != nd or set(axes[-2:]) != {nd - 2, nd - 1}:
        return None
    lead = list(axes[:-2]) + [nd - 2, nd - 1]
    u, v = a.u.transpose(lead), a.v.transpose(lead)
    if axes[-1] == nd - 1:
        return Outer(u, v)
    return Outer(v.swapaxes(-1, -2), u.swapaxes(-1, -2))


def _call_outer(op, arrays, attrs):
    name = op.name
    if name == "transpose" and len(arrays) == 1:
        out = _outer_transpose(arrays[0], tuple(attrs["axes"]))
        if out is not None:
            return out
    if name == "reshape" and len(arrays) == 1 and set(attrs) <= {"shape", "keep", "sizes"} \
            and not attrs.get("keep") and not attrs.get("sizes"):
        out = _outer_reshape(arrays[0], tuple(attrs["shape"]))
        if out is not None:
            return out
    if name == "sum" and len(arrays) == 1:
        out = _outer_sum(arrays[0], attrs.get("axis"), attrs.get("keepdims", False))
        if out is not None:
            return out
    elif name == "add" and len(arrays) == 2 and not attrs:
        out = _outer_add(*arrays)
        if out is not None:
            return out
    return call(op, *[real(a) for a in arrays], **attrs)


def call(op: OpDef, *arrays, **attrs):
    """Run registry op ``op`` on physical arrays (no autograd: this is a kernel call).
    Arrays of older vmap levels make it the rule of the newest of them, the others joining
    that level unbatched; plain arrays run the backend kernel (after the op's own check)."""
    top = None
    for a in arrays:
        t = type(a)
        if t is BatchedArray:
            if top is None or a.dev.index > top.index:
                top = a.dev
        elif t is Outer:
            return _call_outer(op, arrays, attrs)
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
        return real(a)
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


def matmul_outer(a, b):
    """``a @ b`` of two batched stacks; an :class:`Outer` where that may pay off."""
    o = outer(a, b)
    return o if o is not None else matmul(a, b)
