"""Elementwise fusion.

Chains of elementwise ufunc ops where each link is the only reader of the
previous result (and shapes and dtypes do not change along the chain) become
one ``fused`` node. Its kernel computes the first op into a fresh (or
memory-planned) buffer and runs every later op in place on it with ``out=``:
one buffer instead of one temporary per op, and one dispatch per chain.
"""
from __future__ import annotations

import numpy as np

from ._rewrite import remove_nodes

ACC = -1   # operand reference to the chain's running result


def _elementwise(n) -> bool:
    from ...ops.registry import REGISTRY
    if n.op in ("placeholder", "variable", "constant", "random", "assign", "fused"):
        return False
    op = REGISTRY.get(n.op)
    if op is None or op.ufunc is None or n.attrs or len(n.outputs) != 1:
        return False
    if not n.device.startswith("cpu") or op.cpu is not getattr(np, op.ufunc, None):
        return False
    return None not in n.outputs[0].shape


def fuse_sgd_updates(g) -> int:
    """Known chain: ``p <- assign(sub(p, mul(lr, grad)))`` on a float data variable becomes an
    assign with ``update="sgd"`` that the executor runs as the in-place Cython SGD kernel
    (no temporary, no copy back)."""
    users: dict[int, list] = {}
    for n in g.nodes:
        for v in n.inputs:
            users.setdefault(v.id, []).append(n)
    out_ids = {v.id for v in g.outputs}
    changed = 0
    dead: set[int] = set()
    for a in g.assigns:
        if a.attrs.get("slot") != "data" or len(a.inputs) != 1 or "update" in a.attrs:
            continue
        sub = a.inputs[0].node
        if sub is None or sub.op != "sub" or not sub.device.startswith("cpu"):
            continue
        var, step = sub.inputs
        if (var.node.op != "variable" or var.node.name != a.attrs["var"]
                or var.dtype.kind != "f" or step.shape != var.shape
                or a.inputs[0].id in out_ids or len(users.get(a.inputs[0].id, [])) != 1):
            continue
        mul = step.node
        if mul is None or mul.op != "mul" or len(users.get(step.id, [])) != 1 \
                or step.id in out_ids:
            continue
        x, y = mul.inputs
        lr_v, grad = (x, y) if _scalar_const(x) is not None else (y, x)
        lr = _scalar_const(lr_v)
        if lr is None or grad.shape != var.shape or grad.dtype != var.dtype:
            continue
        a.inputs = [grad]
        a.attrs["update"] = "sgd"
        a.attrs["lr"] = float(lr)
        dead.update((sub.id, mul.id))
        changed += 1
    remove_nodes(g, dead)
    return changed


def _scalar_const(v):
    n = v.node
    if n is None or n.op != "constant" or v.shape != ():
        return None
    return np.asarray(n.attrs["value"]).item()


def fuse_elementwise(g) -> int:
    users: dict[int, list] = {}
    for n in g.nodes:
        for v in n.inputs:
            users.setdefault(v.id, []).append(n)
    pinned = {v.id for v in g.outputs}
    for n in g.nodes:
        if n.op == "assign":
            pinned.update(v.id for v in n.inputs)
    chains: list[list] = []
    chain_of: dict[int, list] = {}
    for n in g.nodes:
        if not _elementwise(n):
            continue
        out = n.outputs[0]
        joined = False
        for v in n.inputs:
            c = chain_of.get(v.node.id) if v.node is not None else None
            if (c is not None and c[-1] is v.node and v.id not in pinned
                    and len(users.get(v.id, [])) == 1 and v.shape == out.shape
                    and v.dtype == out.dtype and sum(x is v for x in n.inputs) == 1):
                c.append(n)
                chain_of[n.id] = c
                joined = True
                break
        if not joined:
            c = [n]
            chains.append(c)
            chain_of[n.id] = c
    fused = 0
    dead: set[int] = set()
    for c in chains:
        if len(c) < 2:
            continue
        ext: list = []
        program = []
        inner = {m.outputs[0].id for m in c[:-1]}
        for m in c:
            refs = []
            for v in m.inputs:
                if v.id in inner:
                    refs.append(ACC)
                else:
                    if v not in ext:
                        ext.append(v)
                    refs.append(ext.index(v))
            program.append([m.op, refs])
        last = c[-1]
        node = g.add_node("fused", ext, {"program": program}, last.device, [])
        g.nodes.remove(node)
        g.nodes.insert(g.nodes.index(last), node)
        # the fused node takes over the last node's output Value
        out = last.outputs[0]
        out.node = node
        node.outputs = [out]
        last.outputs = []
        dead.update(m.id for m in c)
        fused += 1
    remove_nodes(g, dead)
    return fused


def fused_kernel(node):
    """The kernel of a ``fused`` node: ``k(*inputs, out=None)``."""
    from ...ops.registry import REGISTRY
    rows = [(getattr(np, REGISTRY[op].ufunc), tuple(refs)) for op, refs in
            node.attrs["program"]]
    (f0, r0), rest = rows[0], rows[1:]

    def k(*ins, out=None):
        args = [ins[r] for r in r0]
        acc = f0(*args) if out is None else f0(*args, out=out)
        if not isinstance(acc, np.ndarray):
            acc = np.asarray(acc)
        for f, refs in rest:
            f(*[acc if r == ACC else ins[r] for r in refs], out=acc)
        return acc
    return k
