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
    by_id = {n.id: n for n in nodes}    # (a scan of every node per update was quadratic)
    for u in found:
        ids = {a.id for a in u.assigns} | u.skip
        if ids & used:
            continue
        # every value the update computes must be read only inside it
        ok = all(v.id not in fetched and all(r.id in ids for r in readers.get(v.id, ()))
                 for n in (by_id[i] for i in u.skip if i in by_id) for v in n.outputs)
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


# --- scatter / index writes into a variable -----------------------------------------------
# ``queue[idx] = k``, ``queue.index_copy_(0, idx, k)``, ``queue[a:b] = k`` under capture record
# an out-of-place result of the target's full size that write-back then copies into the
# variable: two full copies per replay, where eager writes the rows alone. The plan runs the
# write in the variable's storage at write-back instead, when nothing else reads the old
# value then. The graph is unchanged (files, ONNX export, placement see the same ops).

@dataclass
class Write:
    """One recognised write: ``kind`` "setitem" (``x[index] = v`` with a static index) or
    "rows" (the traced-index composite of ``ops.index_traced.setitem_traced``: the flat
    positions and values, last write wins)."""

    kind: str
    assign: object                  # the assign node it replaces
    target: object                  # the Value of the location's old contents
    reads: list                     # Values the write reads at write-back
    index: tuple | None
    skip: set = field(default_factory=set)


def _const_value(v):
    n = v.node
    return n.attrs.get("value") if n is not None and n.op == "constant" else None


def _is_const(v, x) -> bool:
    a = _const_value(v)
    return a is not None and np.ndim(a) == 0 and a.item() == x


def _flat_of(v, target):
    """The reshape node making ``v`` the flattened ``target`` (None when ``v`` is not)."""
    n = v.node
    if v is target and len(target.shape) == 1:
        return set()
    if n is not None and n.op == "reshape" and n.inputs[0] is target and len(v.shape) == 1:
        return {n.id}
    return None


def _rows_write(src, target):
    """``setitem_traced``'s composite writing ``target``: where(written, take(values, where(
    written, last, 0)), target.reshape(n)).reshape(shape), with last = scatter_reduce amax of
    the write order over positions from -1 and written = last >= 0; (positions, values,
    the nodes it covers) or None."""
    skip = set()
    n = src.node
    if n.op == "reshape" and n.inputs[0].node is not None and n.inputs[0].node.op == "where":
        skip.add(n.id)
        n = n.inputs[0].node
    if n.op != "where" or len(n.inputs) != 3 or tuple(src.shape) != tuple(target.shape):
        return None
    m, a, r = n.inputs
    rs = _flat_of(r, target)
    ge, take = m.node, a.node
    if rs is None or ge is None or take is None or ge.op != "ge" or not _is_const(ge.inputs[1], 0):
        return None
    sc = ge.inputs[0].node
    if (sc is None or sc.op != "scatter_extreme" or sc.attrs != {"reduce": "amax",
                                                                 "include_self": True, "axis": 0}):
        return None
    full, pos, order = sc.inputs
    fa, oa = _const_value(full), _const_value(order)
    if (fa is None or oa is None or fa.shape != (int(np.prod(target.shape)),) or oa.ndim != 1
            or pos.shape != oa.shape or not (fa == -1).all()
            or not np.array_equal(oa, np.arange(oa.shape[0]))):
        return None
    if take.op != "take" or take.attrs != {"axis": 0}:
        return None
    vals, sel = take.inputs
    w2 = sel.node
    if (w2 is None or w2.op != "where" or w2.inputs[0] is not m or w2.inputs[1] is not ge.inputs[0]
            or not _is_const(w2.inputs[2], 0) or vals.shape != pos.shape):
        return None
    skip |= {n.id, ge.id, sc.id, take.id, w2.id} | rs
    return pos, vals, skip


_ALIAS_OPS = ("cast", "to_device")     # (kernels that may hand back their input unchanged)


def _aliases(nodes, roots: set) -> set:
    """The Value ids that may share memory with the Values ``roots``: the outputs of view
    ops over them, transitively."""
    from ...ops.registry import REGISTRY
    out = set(roots)
    for n in nodes:
        if n.inputs and n.inputs[0].id in out:
            op = REGISTRY.get(n.op)
            if op is not None and op.view or n.op in _ALIAS_OPS:
                out.update(v.id for v in n.outputs)
    return out


def find_writes(graph, nodes, fetches, updates) -> list[Write]:
    """The writes among ``nodes`` (a plan's) that may run in the target's storage at
    write-back: a CPU variable (or input) written by a ``setitem`` of its old value or by the
    traced-index composite over it, every value they cover read only inside them (no fetch),
    and no other write-back reading memory a write changes or reading what another changes
    before it."""
    taken = {a.id for u in updates for a in u.assigns}
    var_of = {}         # (id(owner), slot) -> the Value of that variable
    for n in nodes:
        if n.op == "variable" and n in graph.bindings:
            owner, slot = graph.bindings[n]
            var_of[(id(owner), slot)] = n.outputs[0]
    inputs = {n.attrs["index"]: n.outputs[0] for n in nodes if n.op == "placeholder"}
    assigns = [n for n in nodes if n.op == "assign"]
    locs = {}           # assign id -> the Value of the location it writes (None: unread)
    targets = {}        # the writes that may run in place: assign id -> that Value
    for a in assigns:
        mode = a.attrs.get("slot")
        if mode == "input":
            t = inputs.get(a.attrs.get("input"))
        elif a in graph.bindings:
            owner, slot = graph.bindings[a]
            t = var_of.get((id(owner), slot))
        else:
            t = None
        locs[a.id] = t
        if (t is not None and mode in ("input", "data") and a.id not in taken
                and len(a.inputs) == 1 and "update" not in a.attrs
                and t.node.device.startswith("cpu")):
            targets[a.id] = t
    if not targets:
        return []
    readers = _readers(nodes)
    fetched = {v.id for v in fetches}
    found = []
    for a in assigns:
        t = targets.get(a.id)
        if t is None:
            continue
        src = a.inputs[0]
        n = src.node
        if n is None or not n.device.startswith("cpu") or src.dtype != t.dtype:
            continue
        if n.op == "setitem" and n.inputs[0] is t:
            w = Write("setitem", a, t, [n.inputs[1]], n.attrs["index"], {n.id})
        else:
            rows = _rows_write(src, t)
            if rows is None:
                continue
            w = Write("rows", a, t, [rows[0], rows[1]], None, rows[2])
        ok = all(v.id not in fetched and all(r.id in w.skip or r is a
                                             for r in readers.get(v.id, ()))
                 for m in nodes if m.id in w.skip for v in m.outputs)
        if ok:
            found.append(w)
    if not found:
        return []
    return _ordered(nodes, assigns, found, updates, locs)


def _ordered(nodes, assigns, found, updates, locs) -> list[Write]:
    """The writes whose reads at write-back see the values the graph means: a write runs
    at its assign's turn, so it must not read memory an earlier write-back changed, nor
    change memory a later one reads."""
    by_assign = {w.assign.id: w for w in found}
    upd = {a.id: u for u in updates for a in u.assigns}
    # in write-back order: (Value ids written, Value ids read) per assign
    steps = []
    for a in assigns:
        w, u = by_assign.get(a.id), upd.get(a.id)
        if w is not None:
            steps.append((w, {w.target.id}, {v.id for v in w.reads}))
        elif u is not None:
            if a is u.assigns[0]:
                steps.append((None, {n.outputs[0].id for n in [u.param, *u.states]},
                              {v.id for v in u.reads}))
        else:
            t = locs.get(a.id)
            steps.append((None, set() if t is None else {t.id}, {v.id for v in a.inputs}))
    out = []
    for i, (w, _, reads) in enumerate(steps):
        if w is None:
            continue
        mine = _aliases(nodes, {w.target.id})
        before = set().union(*(s[1] for s in steps[:i]), *(s[1] for s in steps[i + 1:]))
        later_reads = set().union(*(s[2] for s in steps[i + 1:]))
        if reads & (mine | _aliases(nodes, before)) or later_reads & mine:
            continue
        out.append(w)
    return out


def _in_storage(t, x, *reads) -> bool:
    """Whether ``t``'s storage is still ``x`` (the value the graph read) and can take the
    write in place: a writable NumPy array that none of ``reads`` overlaps."""
    d = t._data
    return (d is x and type(d) is np.ndarray and d.flags.writeable
            and not any(np.may_share_memory(d, r) for r in reads))


def write_setitem(t, x, v, index) -> None:
    """``x[index] = v`` as the graph's ``setitem`` then write-back, in ``t``'s storage."""
    if _in_storage(t, x, v):
        x[index] = v
    else:       # (storage replaced or overlapping: the graph's out-of-place value)
        out = x.copy()
        out[index] = v
        t._data[...] = out
    t._version[0] += 1


def write_rows(t, x, pos, vals) -> None:
    """``x.reshape(-1)[pos] = vals`` (the last write to a repeated position wins, as NumPy's
    and the graph's composite) in ``t``'s storage."""
    if _in_storage(t, x, pos, vals) and x.flags.c_contiguous:
        x.reshape(-1)[pos] = vals
    else:
        out = np.array(x, order="C")
        out.reshape(-1)[pos] = vals
        t._data[...] = out
    t._version[0] += 1
