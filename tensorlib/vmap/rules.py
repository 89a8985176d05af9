"""The batching rules of the registry's ops, and the generic ones for ops without a rule.

``rule_for(op)`` is what ``OpDef.kernel_for("vmap")`` returns: the op's own rule (the
``rules_*`` modules), else, for a NumPy ufunc, the broadcasting elementwise rule, else
:func:`fallback`, which runs the op once per example and stacks the results (correct for
any op, but B kernel calls: the registry test lists the ops that take it).
"""
from __future__ import annotations

import numpy as np

from ..ops.registry import REGISTRY, OpDef
from . import phys as P
from . import rules_linalg, rules_math, rules_nn, rules_shape  # noqa: F401  (fill RULES)
from ._common import RULES, any_batched, batch_size, unbatched, wrap
from .batched import BatchedArray


def rule_for(op: OpDef):
    factory = RULES.get(op.name)
    if factory is not None:
        return factory(op)
    if op.ufunc is not None:
        return rules_math.elementwise(op)
    return fallback(op)


def kind(op: OpDef) -> str:
    """How vmap computes ``op``: "rule" (its own batching rule), "elementwise" (a ufunc:
    broadcast), or "fallback" (once per example)."""
    if op.name in RULES:
        return "rule"
    return "elementwise" if op.ufunc is not None else "fallback"


def install() -> None:
    """Put the rules into the registry entries (as tensorlib.cuda installs its kernels)."""
    for name, factory in RULES.items():
        op = REGISTRY.get(name)
        if op is not None:
            op.set_kernel("vmap", factory(op))


# --- the per-example fallback ------------------------------------------------------------------
def _attr_batched(v) -> bool:
    if type(v) is BatchedArray:
        return v.bdim is not None
    if isinstance(v, (tuple, list)):
        return any(_attr_batched(x) for x in v)
    return False


def _attr_at(v, i: int):
    """An attribute for example ``i``: tensors in it (an index) sliced; the rest as is."""
    if type(v) is BatchedArray:
        return P.take0(v.phys, i) if v.bdim is not None else v.get()
    if isinstance(v, tuple):
        return tuple(_attr_at(x, i) for x in v)
    if isinstance(v, list):
        return [_attr_at(x, i) for x in v]
    return v


def fallback(op: OpDef):
    """Run ``op`` once per example and stack the results along the batch dim."""
    def r(*arrays, **attrs):
        batched_attrs = any(_attr_batched(v) for v in attrs.values())
        if not any_batched(arrays) and not batched_attrs:
            return unbatched(op, arrays, attrs)
        dev = arrays[0].dev
        if any_batched(arrays):
            B = batch_size(arrays)
        else:
            B = next(_attr_size(v) for v in attrs.values() if _attr_batched(v))
        outs = []
        for i in range(B):
            ins = [P.take0(a.phys, i) if a.bdim is not None else a.phys for a in arrays]
            at = {k: _attr_at(v, i) for k, v in attrs.items()} if batched_attrs else attrs
            outs.append(P.call(op, *ins, **at))
        if B == 0:
            return _empty(op, arrays, attrs, dev)
        try:
            if type(outs[0]) is tuple:
                return tuple(wrap(P.stack0([o[k] for o in outs]), dev)
                             for k in range(len(outs[0])))
            return wrap(P.stack0(outs), dev)
        except ValueError as e:
            raise RuntimeError(f"vmap: {op.name} gave results of different shapes for "
                               f"different examples ({e}); it cannot be vmapped") from None
    r.__name__ = f"vmap_fallback_{op.name}"
    r.vmap_fallback = True
    return r


def _attr_size(v) -> int:
    if type(v) is BatchedArray:
        return v.phys.shape[0]
    return next(_attr_size(x) for x in v if _attr_batched(x))


def _empty(op: OpDef, arrays, attrs, dev):
    """A batch of no examples: empty results of the shapes ``infer`` gives."""
    if op.infer is None:
        raise RuntimeError(f"vmap: {op.name} over a batch of size 0 is not supported")
    specs = op.infer(*[(a.shape, a.dtype) for a in arrays], **attrs)
    xp = P.xp_of(arrays[0].phys)

    def make(spec):
        return BatchedArray(xp.empty((0,) + tuple(spec[0]), np.dtype(spec[1])), 0, dev)
    if isinstance(specs, tuple) and specs and isinstance(specs[0], tuple) and \
            len(specs[0]) == 2 and isinstance(specs[0][0], tuple):
        return tuple(make(s) for s in specs)
    return make(specs)


install()
