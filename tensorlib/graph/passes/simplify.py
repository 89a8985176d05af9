"""Algebraic simplification: identities that remove work without changing results.

x*1, 1*x, x/1, x+(-0.0), (-0.0)+x, x-0, x**1 -> x (for floats, x + 0.0 is no identity:
-0.0 + 0.0 is +0.0, and 1 / x tells them apart); neg(neg(x)) -> x; cast to the same dtype
-> x; reshape of a reshape -> one reshape; a transpose pair that composes to the
identity -> x; x**2 -> square(x). An identity is applied only when the result
has exactly the shape and dtype of the value it is replaced by, so broadcasting
and type promotion stay as they were.
"""
from __future__ import annotations

import numpy as np

from ._rewrite import remove_nodes, replace_uses


def _const(v):
    n = v.node
    if n is None or n.op != "constant":
        return None
    a = n.attrs.get("value")
    if not isinstance(a, np.ndarray) or a.size == 0:
        return None
    first = a.flat[0]
    return first if (a == first).all() else None


def _signed_zero_ok(v, op: str) -> bool:
    """Whether the zero constant ``v`` leaves every float unchanged under ``op``: ``x + z``
    only for z = -0.0, ``x - z`` only for z = +0.0 (integers: always)."""
    a = v.node.attrs["value"]
    if a.dtype.kind != "f":
        return True
    neg = np.signbit(a)
    return bool(neg.all()) if op == "add" else bool(not neg.any())


def _same(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


def simplify(g) -> int:
    changed = 0
    dead: set[int] = set()
    for n in list(g.nodes):
        out = n.outputs[0] if len(n.outputs) == 1 else None
        if out is None:
            continue
        repl = None
        op = n.op
        if op in ("mul", "add", "sub", "div", "pow") and len(n.inputs) == 2:
            a, b = n.inputs
            ca, cb = _const(a), _const(b)
            unit = {"mul": 1, "add": 0, "sub": 0, "div": 1, "pow": 1}[op]
            if (cb is not None and cb == unit and _same(a, out)
                    and (unit or _signed_zero_ok(b, op))):
                repl = a
            elif (op in ("mul", "add") and ca is not None and ca == unit and _same(b, out)
                    and (unit or _signed_zero_ok(a, op))):
                repl = b
            elif op == "pow" and cb is not None and cb == 2 and _same(a, out):
                n.op, n.inputs, n.attrs = "square", [a], {}
                changed += 1
                continue
        elif op == "neg" and n.inputs[0].node is not None and n.inputs[0].node.op == "neg":
            inner = n.inputs[0].node.inputs[0]
            if _same(inner, out):
                repl = inner
        elif op == "cast" and _same(n.inputs[0], out):
            repl = n.inputs[0]
        elif op == "reshape":
            from ..sizes import inputs_of
            src = n.inputs[0]
            # a kept (copied) dim refers to the input's dim at its position: collapsing is
            # sound only where the inner reshape copied those dims through too
            if (src.node is not None and src.node.op == "reshape"
                    and set(n.attrs.get("keep", ())) <= set(src.node.attrs.get("keep", ()))
                    and not any(0 in inputs_of(e) for _, e in n.attrs.get("sizes", ()))):
                # (the outer reshape's own size sources, inputs 1..., stay)
                n.inputs = [src.node.inputs[0]] + list(n.inputs[1:])
                changed += 1
            if _same(n.inputs[0], out) and None not in out.shape:
                repl = n.inputs[0]
        elif op == "transpose":
            src = n.inputs[0]
            p = n.attrs.get("axes")
            if src.node is not None and src.node.op == "transpose" and p is not None:
                q = src.node.attrs.get("axes")
                if q is not None and tuple(q[i] for i in p) == tuple(range(len(p))):
                    repl = src.node.inputs[0]
        if repl is not None:
            replace_uses(g, out, repl)
            dead.add(n.id)
            changed += 1
    remove_nodes(g, dead)
    return changed
