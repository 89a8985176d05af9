"""What the batching rules share: the rule table and helpers on ``BatchedArray`` inputs.

A rule is ``rule(*arrays, **attrs)`` over the ``BatchedArray``s of one level (``apply``
has brought every input to it) returning ``BatchedArray``s of that level: it computes on
the physical arrays (``phys.call``) with the batch dim first. ``RULES`` maps an op name to
a factory ``factory(op) -> rule``; ``rules.install`` puts them into the registry.
"""
from __future__ import annotations

from collections.abc import Callable

from ..ops.registry import OpDef
from . import phys as P
from .batched import BatchedArray

RULES: dict[str, Callable[[OpDef], Callable]] = {}


def rule(*names: str):
    """Register ``factory(op) -> rule`` for the ops ``names``."""
    def deco(factory):
        for n in names:
            if n in RULES:
                raise ValueError(f"vmap: two batching rules for {n!r}")
            RULES[n] = factory
        return factory
    return deco


def simple(*names: str, index: bool = False):
    """Register ``fn(op, *arrays, **attrs)`` as the rule of the ops ``names`` (after the
    common case: no input batched, which runs the op once on the physical arrays). With
    ``index``, the ``index`` attribute may hold batched tensors (per-example indices) too."""
    def deco(fn):
        def factory(op):
            def r(*arrays, **attrs):
                if not any_batched(arrays) and not (index and _index_batched(attrs["index"])):
                    return unbatched(op, arrays, attrs)
                return fn(op, *arrays, **attrs)
            r.__name__ = f"vmap_rule_{op.name}"
            return r
        rule(*names)(factory)
        return fn
    return deco


# --- helpers -------------------------------------------------------------------------------
def _index_batched(index) -> bool:
    return any(type(k) is BatchedArray and k.bdim is not None for k in index)


def any_batched(arrays) -> bool:
    for a in arrays:
        if a.bdim is not None:
            return True
    return False


def batch_size(arrays) -> int:
    for a in arrays:
        if a.bdim is not None:
            return a.phys.shape[0]
    raise AssertionError("no batched input")


def wrap(out, dev, bdim=0):
    """Kernel output(s) on physical arrays as ``BatchedArray``(s) of ``dev``."""
    if type(out) is tuple:
        return tuple(BatchedArray(o, bdim, dev) for o in out)
    return BatchedArray(out, bdim, dev)


def unbatched(op: OpDef, arrays, attrs):
    """No input batched: the op once, on the physical arrays; an unbatched result."""
    return wrap(P.call(op, *[a.phys for a in arrays], **attrs), arrays[0].dev, None)


def batched(a: BatchedArray, B: int):
    """``a``'s physical array with the batch dim first, expanding an unbatched one."""
    if a.bdim is not None:
        return a.phys
    p = P.expand_dims(a.phys, (0,))
    return P.broadcast_to(p, (B,) + tuple(a.phys.shape))


def aligned(a: BatchedArray, ndim: int):
    """``a``'s physical array, a batched one with size-1 dims after the batch dim up to
    ``ndim`` logical dims, so that it broadcasts against the others as the logical array
    would (an unbatched one broadcasts from the right as it is)."""
    if a.bdim is None or a.ndim >= ndim:
        return a.phys
    return P.expand_dims(a.phys, tuple(range(1, 1 + ndim - a.ndim)))


def shift(axis, ndim: int):
    """A logical axis argument (None: all, an int, or a tuple) as physical axes."""
    if axis is None:
        return tuple(range(1, ndim + 1))
    if isinstance(axis, (tuple, list)):
        return tuple(int(a) % max(ndim, 1) + 1 for a in axis)
    return int(axis) % max(ndim, 1) + 1
