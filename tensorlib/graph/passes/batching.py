"""Batching of small matmuls: a sum of products becomes one product of concatenations.

Backpropagation through time (and any weight shared by several calls) accumulates a
weight's gradient as ``sum_t A_t^T @ B_t``: many thin matmuls (inner size = batch)
and an add chain. The same value is ``[A_1; ...; A_T]^T @ [B_1; ...; B_T]``: one
matmul whose inner size is T * batch, which BLAS runs near peak. The pass rewrites
add trees whose leaves are such products (each used only by the tree) into that form;
other leaves of the tree are added to the result.
"""
from __future__ import annotations

from ._rewrite import remove_nodes, replace_uses


def _tree(root, users, out_ids):
    """Leaves of the add tree under ``root`` (adds used only inside the tree, same type)."""
    leaves, inner, stack = [], [], [root]
    while stack:
        n = stack.pop()
        inner.append(n)
        for v in n.inputs:
            m = v.node
            if (m is not None and m.op == "add" and len(users.get(v.id, [])) == 1
                    and v.id not in out_ids and v.shape == root.outputs[0].shape
                    and v.dtype == root.outputs[0].dtype
                    and all(i.shape == v.shape for i in m.inputs)):
                stack.append(m)
            else:
                leaves.append(v)
    return leaves, inner


def _product(v, users, out_ids):
    """(A, B, node, transpose node) when ``v`` = matmul(transpose(A), B) with 2-D A, B used
    only here; or (A, B, linear_grad node, None) when ``v`` is the weight gradient
    ``g^T @ x`` computed by a ``linear_grad`` node on 2-D g, x."""
    m = v.node
    if m is None or len(users.get(v.id, [])) != 1 or v.id in out_ids:
        return None
    if m.op == "linear_grad" and m.attrs.get("need_w") and v.index == int(m.attrs["need_x"]):
        g, x = m.inputs[0], m.inputs[1]
        if (g.ndim == 2 and x.ndim == 2 and g.shape[0] == x.shape[0] and None not in g.shape
                and None not in x.shape and g.dtype == x.dtype == v.dtype):
            return g, x, m, None
        return None
    if m.op != "matmul":
        return None
    t, b = m.inputs
    tn = t.node
    if (tn is None or tn.op != "transpose" or tuple(tn.attrs.get("axes") or ()) != (1, 0)
            or len(users.get(t.id, [])) != 1 or t.id in out_ids):
        return None
    a = tn.inputs[0]
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0] or None in a.shape + b.shape:
        return None
    if a.dtype != b.dtype or a.dtype != v.dtype:
        return None
    return a, b, m, tn


def batch_matmul_sums(g) -> int:
    users: dict[int, list] = {}
    for n in g.nodes:
        for v in n.inputs:
            users.setdefault(v.id, []).append(n)
    out_ids = {v.id for v in g.outputs}
    done: set[int] = set()
    rewrites = 0
    for root in list(g.nodes):
        if root.op != "add" or root.id in done:
            continue
        rv = root.outputs[0]
        us = users.get(rv.id, [])
        if len(us) == 1 and us[0].op == "add" and rv.id not in out_ids:
            continue        # not the root of its tree
        leaves, inner = _tree(root, users, out_ids)
        prods, rest = [], []
        for v in leaves:
            p = _product(v, users, out_ids)
            (prods if p is not None and v.shape == rv.shape else rest).append(p or v)
        if len(prods) < 2:
            continue
        pos = g.nodes.index(root)
        new = []

        def add(op, ins, attrs, spec):
            n = g.add_node(op, ins, attrs, root.device, [spec])
            g.nodes.remove(n)
            new.append(n)
            return n.outputs[0]
        k = sum(a.shape[0] for a, *_ in prods)
        a0, b0 = prods[0][0], prods[0][1]
        ca = add("concatenate", [p[0] for p in prods], {"axis": 0}, ((k, a0.shape[1]), a0.dtype))
        cb = add("concatenate", [p[1] for p in prods], {"axis": 0}, ((k, b0.shape[1]), b0.dtype))
        ta = add("transpose", [ca], {"axes": (1, 0)}, ((a0.shape[1], k), a0.dtype))
        out = add("matmul", [ta, cb], {}, (rv.shape, rv.dtype))
        for v in rest:
            out = add("add", [out, v], {}, (rv.shape, rv.dtype))
        g.nodes[pos:pos] = new
        replace_uses(g, rv, out)
        dead = {n.id for n in inner} | {p[2].id for p in prods}
        dead |= {p[3].id for p in prods if p[3] is not None}
        for p in prods:
            if p[3] is None:
                _drop_weight_grad(g, p[2])
        done.update(dead)
        remove_nodes(g, dead)
        rewrites += 1
    return rewrites


def _drop_weight_grad(g, lg) -> None:
    """Replace ``linear_grad`` node ``lg`` by one that no longer computes the weight
    gradient (now batched); its other outputs keep their Values."""
    outs = [v for v in lg.outputs if v.index != int(lg.attrs["need_x"])]
    if not outs:
        return
    attrs = dict(lg.attrs, need_w=False)
    n = g.add_node("linear_grad", list(lg.inputs), attrs, lg.device, [])
    g.nodes.remove(n)
    g.nodes.insert(g.nodes.index(lg), n)
    for i, v in enumerate(outs):
        v.node, v.index = n, i
    n.outputs = outs
    lg.outputs = [v for v in lg.outputs if v not in outs]
