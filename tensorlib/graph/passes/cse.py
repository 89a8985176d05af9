"""Common-subexpression elimination: one node per (op, inputs, attrs) of pure ops."""
from __future__ import annotations

import numpy as np

from ..ir import attr_key
from ._rewrite import is_pure, remove_nodes


def _array_key(a):
    # small arrays by value; a large one only merges with itself (comparing costs too much)
    return ("nd", a.dtype.str, a.shape, a.tobytes()) if a.size <= 64 else ("nd", id(a))


def _leaf_key(a):
    try:
        hash(a)
    except TypeError:
        return ("id", id(a))
    return (type(a).__name__, a)


def _key_attr(a):
    return attr_key(a, _array_key, _leaf_key)


def _grad_facts(info, n) -> tuple:
    """What eager autograd did at ``n`` while tracing (``tracer.GradInfo``): two nodes that
    compute the same but differ there (one under no_grad, one reading a detach()) must stay
    two, or ``g.gradients`` would follow the survivor's facts for both."""
    if info is None:
        return ()
    edges = [(n.id, i) for i in range(len(n.inputs))]
    return (n.id in info.stops, tuple(e in info.cuts for e in edges),
            tuple(e in info.norg for e in edges), tuple(e in info.opaque for e in edges))


def cse(g) -> int:
    seen: dict = {}
    dead: set[int] = set()
    # uses of a merged node's outputs are redirected through one map as the walk reaches
    # them (one pass: replacing each duplicate's uses over the whole graph was quadratic,
    # seconds on a 100-step unrolled ODE)
    sub: dict = {}
    info = getattr(g, "_grad_info", None)
    for n in list(g.nodes):
        if sub and any(v.id in sub for v in n.inputs):
            n.inputs = [sub.get(v.id, v) for v in n.inputs]
        if not is_pure(n) or n.op == "constant" and n.attrs.get("value") is None:
            continue
        if n.op == "constant":
            a = n.attrs["value"]
            if not isinstance(a, np.ndarray) or a.size > 64:
                continue
            k = ("constant", n.device, a.dtype.str, a.shape, a.tobytes())
        else:
            k = (n.op, n.device, n.pin, tuple(v.id for v in n.inputs),
                 tuple(sorted((name, _key_attr(a)) for name, a in n.attrs.items())),
                 _grad_facts(info, n))
        first = seen.get(k)
        if first is None:
            seen[k] = n
            continue
        for old, new in zip(n.outputs, first.outputs):
            sub[old.id] = new
        dead.add(n.id)
    if sub:
        for n in g.nodes:       # (a node listed before the one it reads, if a pass put it so)
            if any(v.id in sub for v in n.inputs):
                n.inputs = [sub.get(v.id, v) for v in n.inputs]
        g.outputs = [sub.get(v.id, v) for v in g.outputs]
    remove_nodes(g, dead)
    return len(dead)
