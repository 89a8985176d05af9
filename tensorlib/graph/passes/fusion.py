"""Elementwise fusion.

Chains of elementwise ufunc ops where each link is the only reader of the
previous result (and shapes and dtypes do not change along the chain) become
one ``fused`` node. Its kernel computes the first op into a fresh (or
memory-planned) buffer and runs every later op in place on it with ``out=``:
one buffer instead of one temporary per op, and one dispatch per chain.
"""
from __future__ import annotations

import numpy as np

from ._rewrite import remove_nodes, users_of

ACC = -1   # operand reference to the chain's running result


def _elementwise(n) -> bool:
    from ...ops.registry import REGISTRY, cpu_map
    if n.op in ("placeholder", "variable", "constant", "random", "assign", "fused"):
        return False
    op = REGISTRY.get(n.op)
    if op is None or op.ufunc is None or op.check is not None or n.attrs \
            or len(n.outputs) != 1:
        return False        # (a checked op, // by zero, keeps its own node and check)
    if not n.device.startswith("cpu") or cpu_map(op) is None:
        return False
    if op.outer is not None and len(n.inputs) == 2 and all(
            tuple(v.shape) != tuple(n.outputs[0].shape) for v in n.inputs):
        return False        # (both operands broadcast: the outer kernel beats fusing)
    return None not in n.outputs[0].shape


def fuse_sgd_updates(g) -> int:
    """Known chain: ``p <- assign(sub(p, mul(lr, grad)))`` on a float data variable becomes an
    assign with ``update="sgd"`` that the executor runs as one in-place SGD kernel (Cython on
    the CPU, tensorlib.cuda's on a GPU): no temporary, no copy back."""
    users = users_of(g)
    out_ids = {v.id for v in g.outputs}
    changed = 0
    dead: set[int] = set()
    for a in g.assigns:
        if a.attrs.get("slot") != "data" or len(a.inputs) != 1 or "update" in a.attrs:
            continue
        sub = a.inputs[0].node
        if sub is None or sub.op != "sub":
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


def fuse_sgd_gemm(g) -> int:
    """An SGD update of a weight gradient ``g^T @ x`` (a ``linear_grad`` weight output, or a
    ``matmul(transpose(A), B)`` from ``batch_matmul_sums``) becomes one BLAS GEMM that adds
    ``-lr * g^T @ x`` into the variable (``update="sgd_gemm"``): the gradient is never
    written out and read back. Needs a BLAS with ``gemm`` (``tensorlib._blas``)."""
    from ... import _blas
    from .batching import _drop_weight_grad
    if not _blas.AVAILABLE:
        return 0
    users = users_of(g)
    outs = {v.id for v in g.outputs}
    dead: set[int] = set()
    done = 0
    for a in g.assigns:
        if a.attrs.get("update") != "sgd" or len(a.inputs) != 1:
            continue
        dw = a.inputs[0]
        m = dw.node
        if (m is None or dw.ndim != 2 or dw.id in outs or len(users.get(dw.id, [])) != 1
                or not _blas.supports(dw.dtype) or not m.device.startswith("cpu")):
            continue
        if (m.op == "linear_grad" and m.attrs.get("need_w")
                and dw.index == int(m.attrs["need_x"])):
            ops = m.inputs[0], m.inputs[1]
            if any(v.ndim != 2 or v.dtype != dw.dtype for v in ops):
                continue
            _drop_weight_grad(g, m)
            dead.add(m.id)
        elif m.op == "matmul":
            t, b = m.inputs
            tn = t.node
            if (tn is None or tn.op != "transpose" or tuple(tn.attrs.get("axes") or ()) != (1, 0)
                    or users.get(t.id) != [m] or t.id in outs or tn.inputs[0].ndim != 2
                    or b.ndim != 2 or tn.inputs[0].dtype != dw.dtype or b.dtype != dw.dtype):
                continue
            ops = tn.inputs[0], b
            dead |= {m.id, tn.id}
        else:
            continue
        a.inputs = list(ops)
        a.attrs["update"] = "sgd_gemm"
        done += 1
    remove_nodes(g, dead)
    return done


def _scalar_const(v):
    n = v.node
    if n is None or n.op != "constant" or v.shape != ():
        return None
    a = n.attrs["value"]
    return a.item() if hasattr(a, "item") else a     # NumPy or CuPy (a one-off read)


def fuse_elementwise(g) -> int:
    users = users_of(g)
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
                    and v.node.pin == n.pin     # a with tl.device block stays its own
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
    before: dict[int, object] = {}      # a chain's last node's id -> the fused node
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
        node.pin = last.pin
        g.inherit_source(node, last)
        before[last.id] = node
        # the fused node takes over the last node's output Value
        out = last.outputs[0]
        out.node = node
        node.outputs = [out]
        last.outputs = []
        dead.update(m.id for m in c)
        fused += 1
    if before:      # each fused node where its chain's last node was (one pass, not one each)
        added = {m.id for m in before.values()}
        g.nodes = [x for m in g.nodes if m.id not in added
                   for x in ((before[m.id], m) if m.id in before else (m,))]
    remove_nodes(g, dead)
    return fused


def fused_kernel(node):
    """The kernel of a ``fused`` node: ``k(*inputs, out=None)``."""
    from ...ops.registry import REGISTRY, cpu_map
    rows = [(cpu_map(REGISTRY[op]), tuple(refs)) for op, refs in node.attrs["program"]]
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
