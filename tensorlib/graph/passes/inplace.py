"""Optimizer updates run in place: a captured Adam/AdamW or momentum-SGD step as one kernel.

Under capture the optimizers record their update as tensor ops (the fused kernel would
change storage behind the tracer), so a replay computed new parameter and state arrays,
one temporary per op, and then copied each back into its variable: slower than the eager
step, which runs one fused in-place kernel (``tensorlib._ops.adam_update`` /
``sgd_update``), and not bit-identical to it (float32 ops against the kernel's float64
arithmetic).

:func:`find_updates` recognises, when a plan is compiled, the expression an optimizer
recorded for each variable it writes, whatever the fusion pass made of its chains (the
``fused`` nodes' programs are read back into op trees), and the plan runs the eager
kernel in the variables' storage at write-back time instead, after every reader of the
old values ran. The graph itself is unchanged, so files, ONNX export, placement and
``g.gradients`` see the same ops as before. Hyper-parameters come from the graph's
constants: float64 ones (Adam's betas, read by the bias corrections) as they are,
float32 ones as the shortest decimal that rounds to them (the literal the user wrote).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .fusion import ACC

# op -> arity, for the elementwise ops an update is written with
_OPS = {"add": 2, "sub": 2, "mul": 2, "div": 2, "pow": 2, "sqrt": 1, "cast": 1}
_COMMUTATIVE = ("add", "mul")


class _T:
    """An expression tree node: ``op`` over ``kids``; the Value it computes (None inside a
    fused program) and the graph nodes it covers."""

    __slots__ = ("op", "kids", "value", "nodes", "leaf")

    def __init__(self, op, kids=(), value=None, nodes=(), leaf=None):
        self.op, self.kids, self.value, self.nodes, self.leaf = op, tuple(kids), value, \
            frozenset(nodes), leaf

    def key(self):
        return (self.op, self.leaf, tuple(k.key() for k in self.kids))


def _tree(v, memo):
    t = memo.get(v.id)
    if t is not None:
        return t
    n = v.node
    if n.op == "variable" and n.attrs.get("slot") == "data":
        t = _T("var", value=v, leaf=n.id)
    elif n.op == "constant" and v.shape == () and isinstance(n.attrs.get("value"), np.ndarray):
        a = n.attrs["value"]
        # (not among the nodes an update replaces: CSE shares constants between updates)
        t = _T("const", value=v, leaf=(a.dtype.str, a.item()))
    elif n.op == "fused" and n.device.startswith("cpu"):
        ext = [_tree(x, memo) for x in n.inputs]
        acc = None
        for op, refs in n.attrs["program"]:
            acc = _T(op, [acc if r == ACC else ext[r] for r in refs])
        t = _T(acc.op, acc.kids, v, {n.id})
    elif (n.op in _OPS and len(n.inputs) == _OPS[n.op] and len(n.outputs) == 1
          and n.device.startswith("cpu")
          and (not n.attrs or n.op == "cast" and set(n.attrs) == {"dtype"})):
        kids = [_tree(x, memo) for x in n.inputs]
        leaf = np.dtype(n.attrs["dtype"]).str if n.op == "cast" else None
        t = _T(n.op, kids, v, {n.id}, leaf)
    else:
        t = _T("value", value=v, leaf=v.id)
    memo[v.id] = t
    return t


def _covered(t) -> set[int]:
    out = set(t.nodes)
    for k in t.kids:
        out |= _covered(k)
    return out


def _match(t, pat, b: dict) -> bool:
    """Match tree ``t`` against template ``pat`` extending bindings ``b`` in place.
    Templates: ``"?x"`` any tree (equal where repeated), ``"#x"`` a 0-d constant,
    ``"@x"`` a variable, or ``(op, *kids)``; add and mul match either operand order."""
    if isinstance(pat, str):
        kind, name = pat[0], pat
        if kind == "#" and t.op != "const" or kind == "@" and t.op != "var":
            return False
        old = b.get(name)
        if old is not None:
            return old.key() == t.key()
        b[name] = t
        return True
    op, *kids = pat
    if op == "cast?":       # a cast to the parameter's dtype, gone when it is float64
        return _match(t.kids[0] if t.op == "cast" else t, kids[0], b)
    if t.op != op or len(t.kids) != len(kids):
        return False
    orders = [t.kids, t.kids[::-1]] if op in _COMMUTATIVE else [t.kids]
    for ks in orders:
        trial = dict(b)
        if all(_match(k, p, trial) for k, p in zip(ks, kids)):
            b.clear()
            b.update(trial)
            return True
    return False


def _const(t) -> float:
    return float(t.leaf[1])


def _user_float(t) -> float:
    """The Python float a user most likely wrote for a constant: float64 as it is, float32
    as the shortest decimal that rounds to it (``0.01``, not ``0.009999999776...``)."""
    return _shortest(t.leaf[1], np.dtype(t.leaf[0]))


def _shortest(x: float, dtype) -> float:
    if np.dtype(dtype) != np.float32:
        return float(x)
    s = float(np.format_float_positional(np.float32(x), unique=True, trim="-"))
    return s if np.float32(s) == np.float32(x) else float(x)


def _f32_is(t, x: float) -> bool:
    """Whether constant ``t`` is Python float ``x`` rounded to the constant's dtype."""
    dt = np.dtype(t.leaf[0])
    return dt.kind == "f" and dt.type(x) == dt.type(t.leaf[1])


@dataclass
class Update:
    """One recognised in-place update (``kind`` "adam" or "sgd")."""

    kind: str
    param: object                   # variable node of the parameter
    states: list                    # variable nodes of the state buffers, kernel order
    reads: list                     # Values the kernel reads at write-back (grad, step)
    hyper: dict
    assigns: list                   # the assign nodes it replaces
    skip: set = field(default_factory=set)   # node ids the plan no longer runs


def _d_pattern(wd: bool):
    return "?g" if not wd else ("add", "?g", ("mul", "#wd", "@p"))


def _adam_templates():
    for wd in (False, True):
        d = _d_pattern(wd)
        m1 = ("add", ("mul", "@m", "#b1"), ("mul", "#c1", d))
        v1 = ("add", ("mul", "@v", "#b2"), ("mul", ("mul", "#c2", d), d))
        step = "?step"
        bc1 = ("cast?", ("sub", "#one_a", ("pow", "#B1", step)))
        bc2 = ("cast?", ("sqrt", ("sub", "#one_b", ("pow", "#B2", step))))
        den = ("add", ("mul", ("sqrt", v1), ("div", "#one_c", bc2)), "#eps")
        upd = ("div", ("mul", ("div", "#lr", bc1), m1), den)
        yield wd, False, m1, v1, ("sub", "@p", upd)
        if not wd:      # AdamW: the parameter decays first (p * (1 - lr * wd))
            yield False, True, m1, v1, ("sub", ("mul", "@p", "#decay"), upd)


def _adam(p_assign, writes, memo):
    """An Adam/AdamW step writing the variable of ``p_assign`` (see module docstring)."""
    pt = _tree(p_assign.inputs[0], memo)
    for wd, decoupled, m_pat, v_pat, p_pat in _adam_templates():
        b: dict = {}
        if not _match(pt, p_pat, b):
            continue
        p, m, v = (b[k].value.node for k in ("@p", "@m", "@v"))
        a_m, a_v = writes.get(m.id), writes.get(v.id)
        if a_m is None or a_v is None or len({p.id, m.id, v.id}) != 3:
            continue
        if not (_match(_tree(a_m.inputs[0], memo), m_pat, b)
                and _match(_tree(a_v.inputs[0], memo), v_pat, b)):
            continue
        st = b["?step"]
        sb: dict = {}
        if not (st.value is not None and _match(st, ("add", "@s", "#one"), sb)
                and _const(sb["#one"]) == 1.0 and st.value.dtype == np.float64
                and st.value.shape == ()):
            continue
        if any(_const(b[k]) != 1.0 for k in ("#one_a", "#one_b", "#one_c")):
            continue
        if b["#B1"].leaf[0] != "<f8" or b["#B2"].leaf[0] != "<f8":
            continue
        b1, b2 = _const(b["#B1"]), _const(b["#B2"])
        lr, eps = _user_float(b["#lr"]), _user_float(b["#eps"])
        wdv = 0.0
        if wd:
            wdv = _user_float(b["#wd"])
        elif decoupled:
            # lr * wd from 1 - lr * wd: only the product enters the kernel's decay
            wdv = (1.0 - _user_float(b["#decay"])) / lr if lr else 0.0
            if not _f32_is(b["#decay"], 1.0 - lr * wdv):
                continue
        if not (_f32_is(b["#b1"], b1) and _f32_is(b["#c1"], 1.0 - b1)
                and _f32_is(b["#b2"], b2) and _f32_is(b["#c2"], 1.0 - b2)):
            continue
        g = b["?g"]
        if g.value is None:
            continue
        skip = (_covered(pt) | _covered(_tree(a_m.inputs[0], memo))
                | _covered(_tree(a_v.inputs[0], memo))) - _covered(g) - _covered(st)
        hyper = dict(lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wdv,
                     decoupled=decoupled)
        return Update("adam", p, [m, v], [g.value, st.value], hyper,
                      [p_assign, a_m, a_v], skip)
    return None


def _sgd(p_assign, writes, memo):
    """A momentum-SGD step: the parameter's ``update="sgd"`` assign of a momentum buffer
    that the same step writes (plain SGD is in place already, see ``fuse_sgd_updates``)."""
    if p_assign.attrs.get("update") != "sgd" or len(p_assign.inputs) != 1:
        return None
    dt = _tree(p_assign.inputs[0], memo)
    for wd in (False, True):
        d = _d_pattern(wd)
        for damp in (False, True):
            dd = ("mul", d, "#c") if damp else d
            buf = ("add", ("mul", "@buf", "#mom"), dd)
            for nesterov in (False, True):
                b: dict = {}
                if nesterov:
                    ok = _match(dt, ("add", d, ("mul", "#mom", "?buf1")), b)
                    bt = b.get("?buf1")
                else:
                    bt = dt
                    ok = True
                if not ok or bt is None or bt.value is None:
                    continue
                if not _match(bt, buf, b):
                    continue
                bv = b["@buf"].value.node
                a_b = writes.get(bv.id)
                if a_b is None or a_b.inputs[0] is not bt.value:
                    continue
                g = b["?g"]
                mom = _user_float(b["#mom"])
                dmp = 1.0 - _user_float(b["#c"]) if damp else 0.0
                if damp and not _f32_is(b["#c"], 1.0 - dmp):
                    continue
                if g.value is None or mom == 0.0 or nesterov and damp:
                    continue
                hyper = dict(lr=_shortest(p_assign.attrs["lr"], np.float32), momentum=mom,
                             dampening=dmp,
                             weight_decay=_user_float(b["#wd"]) if wd else 0.0,
                             nesterov=nesterov)
                p = b["@p"].value.node if "@p" in b else None
                skip = (_covered(dt) | _covered(bt)) - _covered(g)
                return Update("sgd", p, [bv], [g.value], hyper, [p_assign, a_b], skip)
    return None


def find_updates(graph, nodes, fetches) -> list[Update]:
    """The optimizer updates among ``nodes`` (a plan's) that may run in place: CPU float32 /
    float64 variables, each value the update computes read only by the update itself (no
    fetch, no other reader), nothing shared between two updates."""
    assigns = [n for n in nodes if n.op == "assign" and n.attrs.get("slot") == "data"
               and n.inputs and n in graph.bindings]
    if not assigns:
        return []
    var_of: dict = {}
    for n in nodes:
        if n.op == "variable" and n.attrs.get("slot") == "data" and n in graph.bindings:
            owner = graph.bindings[n][0]
            var_of[id(owner)] = n
    writes = {}     # variable node id -> the assign writing that variable
    for a in assigns:
        var = var_of.get(id(graph.bindings[a][0]))
        if var is not None:
            writes[var.id] = a
    memo: dict = {}
    found = []
    for a in assigns:
        u = _adam(a, writes, memo) if "update" not in a.attrs else _sgd(a, writes, memo)
        if u is None:
            continue
        var = var_of.get(id(graph.bindings[a][0]))
        if var is None or u.param not in (None, var):   # (weight decay reads the parameter)
            continue
        u.param = var
        if _eligible(graph, u):
            found.append(u)
    used: set = set()
    out = []
    readers = _readers(nodes)
    fetched = {v.id for v in fetches}
    for u in found:
        ids = {a.id for a in u.assigns} | u.skip
        if ids & used:
            continue
        # every value the update computes must be read only inside it
        ok = all(v.id not in fetched and all(r.id in ids for r in readers.get(v.id, ()))
                 for n in nodes if n.id in u.skip for v in n.outputs)
        if ok:
            used |= ids
            out.append(u)
    return out


def _readers(nodes) -> dict:
    out: dict = {}
    for n in nodes:
        for v in n.inputs:
            out.setdefault(v.id, []).append(n)
    return out


def _eligible(graph, u: Update) -> bool:
    p = graph.bindings[u.param][0]
    pv = u.param.outputs[0]
    if pv.dtype not in (np.float32, np.float64) or not u.param.device.startswith("cpu"):
        return False
    for s in u.states:
        sv = s.outputs[0]
        if sv.shape != pv.shape or sv.dtype != pv.dtype or s.device != u.param.device:
            return False
    g = u.reads[0]
    if g.shape != pv.shape or g.dtype != pv.dtype:
        return False
    return type(p._data) is np.ndarray
