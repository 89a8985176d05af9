"""Constant folding: run pure ops whose inputs are all constants, once, at build time."""
from __future__ import annotations

import numpy as np

from ._rewrite import is_pure, remove_nodes, replace_uses

MAX_FOLD_BYTES = 1 << 24


def fold_constants(g) -> int:
    from ..executor import _asarray, _kernel
    folded: set[int] = set()
    for n in list(g.nodes):
        if (n.op in ("constant", "fused") or not is_pure(n) or not n.inputs
                or not all(v.node.op == "constant" for v in n.inputs)):
            continue
        if sum(int(np.prod([d or 0 for d in v.shape])) * v.dtype.itemsize
               for v in n.outputs) > MAX_FOLD_BYTES:
            continue
        op, k = _kernel(n)
        arrays = [v.node.attrs["value"] for v in n.inputs]
        if op.check is not None:
            op.check(*arrays, **n.attrs)
        out = k(*arrays, **n.attrs)
        outs = out if isinstance(out, tuple) else (out,)
        for v, a in zip(n.outputs, outs):
            a = _asarray(a)      # a NumPy or CuPy array, on the node's device
            if a.base is not None or any(a is x for x in arrays):
                a = a.copy()      # never alias another constant
            c = g.add_node("constant", [], {"value": a}, n.device, [(a.shape, a.dtype)])
            c.pin = n.pin
            # keep topological order: the constant goes where the folded node was
            g.nodes.remove(c)
            g.nodes.insert(g.nodes.index(n), c)
            replace_uses(g, v, c.outputs[0])
        folded.add(n.id)
    remove_nodes(g, folded)
    return len(folded)
