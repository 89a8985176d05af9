"""Batching of small matmuls: a sum of products becomes one product of concatenations.

Backpropagation through time (and any weight shared by several calls) accumulates a
weight's gradient as ``sum_t A_t^T @ B_t``: many thin matmuls (inner size = batch)
and an add chain. The same value is ``[A_1; ...; A_T]^T @ [B_1; ...; B_T]``: one
matmul whose inner size is T * batch, which BLAS runs near peak. The pass rewrites
add trees whose leaves are such products (each used only by the tree) into that form;
other leaves of the tree are added to the result.
"""
from __future__ import annotations

import math

import numpy as np

from ..._device import Device
from ...backends import to_device
from ._rewrite import commit, emit, replace_uses, same_place, upstream, users_of


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
                    and v.dtype == root.outputs[0].dtype and same_place(m, root)
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


def _rewrite_sum_trees(g, rewrite, ignore=(), protect=()) -> int:
    """Call ``rewrite(root, leaves, users, out_ids)`` on each maximal add tree of ``g`` (leaves
    in graph order); it returns the ids of the nodes it replaced, or None. The tree's inner
    adds go with them. Returns the number of trees rewritten."""
    users = users_of(g, ignore)
    out_ids = {v.id for v in g.outputs}
    pos = {n.id: i for i, n in enumerate(g.nodes)}
    dead: set[int] = set()
    count = 0
    for root in list(g.nodes):
        rv = root.outputs[0] if root.outputs else None
        if root.op != "add" or root.id in dead or root.id in ignore or rv.id in protect:
            continue
        us = users.get(rv.id, [])
        if len(us) == 1 and us[0].op == "add" and rv.id not in out_ids:
            continue        # not the root of its tree
        leaves, inner = _tree(root, users, out_ids)
        leaves.sort(key=lambda v: pos.get(v.node.id, -1) if v.node is not None else -1)
        gone = rewrite(root, leaves, users, out_ids)
        if gone is not None:
            dead |= gone | {n.id for n in inner}
            count += 1
    commit(g, dead)
    return count


def batch_matmul_sums(g) -> int:
    """Sums of thin products ``A_t^T @ B_t`` as one product of concatenations (see the
    module docstring)."""
    def rewrite(root, leaves, users, out_ids):
        rv = root.outputs[0]
        prods, rest = [], []
        for v in leaves:
            p = _product(v, users, out_ids)
            ok = p is not None and v.shape == rv.shape and same_place(p[2], root)
            (prods if ok else rest).append(p if ok else v)
        if len(prods) < 2:
            return None
        ca = _op(g, root, "concatenate", [p[0] for p in prods], axis=0)
        cb = _op(g, root, "concatenate", [p[1] for p in prods], axis=0)
        out = _op(g, root, "matmul", [_op(g, root, "transpose", [ca], axes=(1, 0)), cb])
        for v in rest:
            out = _op(g, root, "add", [out, v])
        replace_uses(g, rv, out)
        for p in prods:
            if p[3] is None:
                _drop_weight_grad(g, p[2])
        return {p[2].id for p in prods} | {p[3].id for p in prods if p[3] is not None}
    return _rewrite_sum_trees(g, rewrite)


def batch_embedding_grads(g) -> int:
    """A sum of ``embedding_grad(g_t, i_t)`` into the same table becomes one
    ``embedding_grad`` of the concatenated rows and indices (one scatter-add instead of a
    zeroed table per lookup plus an add chain). Returns the number of sums rewritten."""
    def rewrite(root, leaves, users, out_ids):
        rv = root.outputs[0]
        embs, rest = [], []
        for v in leaves:
            m = v.node
            ok = (m is not None and m.op == "embedding_grad" and v.id not in out_ids
                  and len(users.get(v.id, [])) == 1 and v.shape == rv.shape
                  and v.dtype == rv.dtype and same_place(m, root)
                  and None not in m.inputs[0].shape + m.inputs[1].shape
                  and (not embs or m.attrs == embs[0].attrs))
            (embs if ok else rest).append(m if ok else v)
        if len(embs) < 2:
            return None
        D = rv.shape[-1]

        def rows(v, shape):
            return v if v.shape == shape else _op(g, root, "reshape", [v], shape=shape)
        cg = _op(g, root, "concatenate", [rows(m.inputs[0], (math.prod(m.inputs[1].shape), D))
                                          for m in embs], axis=0)
        ci = _op(g, root, "concatenate", [rows(m.inputs[1], (math.prod(m.inputs[1].shape),))
                                          for m in embs], axis=0)
        out = _op(g, root, "embedding_grad", [cg, ci], **embs[0].attrs)
        for v in rest:
            out = _op(g, root, "add", [out, v])
        replace_uses(g, rv, out)
        return {m.id for m in embs}
    return _rewrite_sum_trees(g, rewrite)


def sum_slices(g, ignore=(), protect=()) -> int:
    """An add tree over ``v[0], v[1], ..., v[n-1]`` of a 1-D ``v`` (each element once, as the
    per-step losses of :func:`batch_class_losses` are summed) becomes ``v.sum()``; its
    gradient is then one broadcast instead of a scatter per element."""
    def rewrite(root, leaves, users, out_ids):
        m0 = leaves[0].node
        src = m0.inputs[0] if m0 is not None and m0.op == "slice" else None
        if (root.outputs[0].shape != () or src is None or src.ndim != 1
                or src.shape[0] != len(leaves)):
            return None
        ks = set()
        for v in leaves:
            m = v.node
            idx = m.attrs.get("index") if m is not None and m.op == "slice" else None
            if (idx is None or m.inputs[0] is not src or len(idx) != 1
                    or not isinstance(idx[0], int) or len(users.get(v.id, [])) != 1):
                return None
            ks.add(idx[0] % len(leaves))
        if len(ks) != len(leaves):
            return None
        replace_uses(g, root.outputs[0], _op(g, root, "sum", [src], axis=None, keepdims=False))
        return {v.node.id for v in leaves}
    return _rewrite_sum_trees(g, rewrite, ignore, protect)


def _op(g, at, name, ins, **attrs):
    """The output of a new ``name`` node on ``at``'s device."""
    return emit(g, name, ins, attrs, at).outputs[0]


def _drop_weight_grad(g, lg) -> None:
    """Replace ``linear_grad`` node ``lg`` by one that no longer computes the weight
    gradient (now batched); its other outputs keep their Values."""
    outs = [v for v in lg.outputs if v.index != int(lg.attrs["need_x"])]
    if not outs:
        return
    attrs = dict(lg.attrs, need_w=False)
    n = g.add_node("linear_grad", list(lg.inputs), attrs, lg.device, [])
    n.pin = lg.pin
    g.inherit_source(n, lg)
    g.nodes.pop()       # (add_node appended it: no search from the front as remove() does)
    g.nodes.insert(g.nodes.index(lg), n)
    for i, v in enumerate(outs):
        v.node, v.index = n, i
    n.outputs = outs
    lg.outputs = [v for v in lg.outputs if v not in outs]


def batch_class_losses(g, ignore=(), protect=()) -> int:
    """``cross_entropy(linear(h_t, W, b), y_t)`` for t = 1..T, independent of each other, as
    one projection and one loss over the concatenated rows (an RNN's per-step output layer):
    per-step losses are the row sums of the unreduced loss (divided by the step's count of
    targets that are not ``ignore_index``, for ``'mean'``), so each keeps its own value and
    gradient. Returns the number of losses batched."""
    users = users_of(g, ignore)
    outs = {v.id for v in g.outputs}
    groups: dict[tuple, list] = {}
    for n in g.nodes:
        if (n.op != "cross_entropy" or n.id in ignore or len(n.inputs) != 2
                or n.attrs.get("reduction") not in ("mean", "sum")
                or n.outputs[0].id in protect):
            continue
        z, y = n.inputs
        lin = z.node
        if (lin is None or lin.op != "linear" or len(users.get(z.id, [])) != 1
                or z.id in outs or z.id in protect):
            continue
        h = lin.inputs[0]
        if h.ndim != 2 or y.ndim != 1 or None in h.shape or None in y.shape:
            continue
        key = (tuple(v.id for v in lin.inputs[1:]), tuple(sorted(n.attrs.items())), h.shape,
               y.shape, h.dtype.name, y.dtype.name, n.device, lin.device, n.pin, lin.pin)
        groups.setdefault(key, []).append((lin, n))
    done = 0
    dead: set[int] = set()
    for members in groups.values():
        members = _independent(members)
        if len(members) < 2:
            continue
        lin0, ce0 = members[0]
        T, B = len(members), lin0.inputs[0].shape[0]
        dev = ce0.device

        def op(name, ins, **attrs):
            return _op(g, ce0, name, ins, **attrs)
        x = op("concatenate", [lin.inputs[0] for lin, _ in members], axis=0)
        y = op("concatenate", [ce.inputs[1] for _, ce in members], axis=0)
        z = emit(g, "linear", [x] + lin0.inputs[1:], dict(lin0.attrs), lin0).outputs[0]
        attrs = dict(ce0.attrs, reduction="none")
        per = op("sum", [op("reshape", [op("cross_entropy", [z, y], **attrs)], shape=(T, B))],
                 axis=(1,), keepdims=False)
        if ce0.attrs["reduction"] == "mean":
            ii = g.constant(to_device(np.asarray(ce0.attrs["ignore_index"], y.dtype),
                                      Device(dev)), dev)
            valid = op("cast", [op("ne", [y, ii])], dtype=z.dtype.name)
            count = op("sum", [op("reshape", [valid], shape=(T, B))], axis=(1,),
                       keepdims=False)
            per = op("div", [per, count])
        for t, (lin, ce) in enumerate(members):
            replace_uses(g, ce.outputs[0], op("slice", [per], index=(t,)))
            dead |= {lin.id, ce.id}
            done += 1
    commit(g, dead)
    return done


def _independent(members):
    """The members (in graph order) none of whose inputs depend on another member."""
    ids = {n.id for m in members for n in m}
    anc = upstream([v for lin, ce in members for v in (lin.inputs[0], ce.inputs[1])])
    return members if not (anc & ids) else []
