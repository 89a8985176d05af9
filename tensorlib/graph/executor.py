"""The executor: runs a Graph with feeds and fetches, no tape, no per-op dispatch.

For a given set of fetches and targets it builds a :class:`Plan` once: the
nodes the fetches need (partial execution), in order, each turned into one
straight-line Python statement calling the op's backend kernel on local
variables (slots), compiled into a single function. Variables are read at the
start of a run and written back (in place, so eager code sees the update) at
the end, after every reader ran. With a memory plan, elementwise ufunc ops
write into preallocated buffers that are reused once their values are dead.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Sequence

import numpy as np

from .checks import VALUE_CHECKS
from .ir import EDGE_OPS, Graph, Node, Value

def _asarray(a):
    """NumPy kernels may return 0-d results as NumPy scalars; CuPy's are arrays already."""
    return a if hasattr(a, "__cuda_array_interface__") else np.asarray(a)


class Plan:
    """A compiled schedule for (fetches, targets) of one graph."""

    def __init__(self, graph: Graph, fetches: Sequence[Value], targets: Sequence[Node] = (),
                 memory: bool = True, barrier=None):
        self.graph = graph
        self.barrier = barrier
        self.fetches = list(fetches)
        self.targets = list(targets)
        live = {n.id for n in graph.nodes}
        gone = [v for v in self.fetches if v.node is not None and v.node.id not in live]
        if gone:
            raise ValueError(
                f"fetch {gone[0].label()} is no longer computed by graph {graph.name!r}: a pass "
                "(optimize: fusion, CSE, dead-code elimination) removed or merged the node "
                "that made it. Fetch it before optimizing, or make it an output "
                "(set_outputs) so the passes keep it")
        self.nodes = needed_nodes(graph, self.fetches, self.targets)
        self.placeholders = [n for n in self.nodes if n.op == "placeholder"]
        self.memory = memory
        self._fn, self.source, self.buffers, self._ns, self._code = _compile(self, memory)
        self._owner = threading.get_ident()
        self._local = threading.local()

    def __call__(self, feeds: list, input_tensors: list | None = None) -> list:
        """Run with ``feeds`` (arrays, indexed like ``graph.inputs``); returns fetch arrays.
        Safe to call from several threads at once (a model server): each thread other than
        the one that compiled the plan runs on its own copy of the preallocated buffers."""
        try:
            if self.buffers and threading.get_ident() != self._owner:
                return self._thread_fn()(feeds, input_tensors)
            return self._fn(feeds, input_tensors)
        except Exception as e:
            if self.barrier is None:    # a placed graph's part: its runtime says which node
                note_failing_node(e, self)
            raise


    def _thread_fn(self):
        fn = getattr(self._local, "fn", None)
        if fn is None:
            ns, fresh = dict(self._ns), {}
            for k, v in self._ns.items():   # O<id>: the buffers (shared ones stay shared)
                if k.startswith("O") and isinstance(v, np.ndarray):
                    ns[k] = fresh.setdefault(id(v), np.empty_like(v))
            exec(self._code, ns)
            fn = self._local.fn = ns["_run"]
        return fn


def note_failing_node(error: BaseException, plan: Plan) -> None:
    """Add to ``error`` (type unchanged) the node of ``plan`` that raised it and the user's
    line it was traced from: ``raised by node %3 = cholesky, traced at t.py:7: `code```."""
    from .placement.runtime import failing_node
    nid = failing_node(error, plan)
    node = next((n for n in plan.nodes if n.id == nid), None) if nid is not None else None
    if node is None or not hasattr(error, "add_note"):
        return
    g = plan.graph
    note = f"(raised by {g.describe_node(node)}, while running graph {g.name!r})"
    if note not in getattr(error, "__notes__", ()):     # a replay may run a plan twice
        error.add_note(note)


def make_plan(graph: Graph, fetches: Sequence[Value], targets: Sequence[Node] = (),
              memory: bool = True):
    """A :class:`Plan`, or a placed graph's per-device plans (same interface) when the
    nodes it needs compute on several devices (see :mod:`tensorlib.graph.placement`)."""
    from .placement.runtime import PlacedPlan, spans_devices
    if spans_devices(needed_nodes(graph, fetches, targets)):
        return PlacedPlan(graph, fetches, targets)
    return Plan(graph, fetches, targets, memory=memory)


def needed_nodes(graph: Graph, fetches, targets) -> list[Node]:
    """The nodes that fetches and targets depend on (data and control), in graph order."""
    need: set[int] = set()
    stack: list[Node] = [v.node for v in fetches if v.node is not None] + list(targets)
    while stack:
        n = stack.pop()
        if n.id in need:
            continue
        need.add(n.id)
        stack.extend(v.node for v in n.inputs if v.node is not None)
        stack.extend(n.control)
    return [n for n in graph.nodes if n.id in need]


def _kernel(node: Node):
    from ..ops.registry import get
    op = get(node.op)
    dev = _device_type(node.device)
    k = op.cpu if dev == "cpu" else op.kernel_for(dev)
    # a plan compiled while tl.profiler wraps the kernels keeps the kernel itself
    return op, getattr(k, "_tl_profiled", k)


@functools.cache
def _device_type(name: str) -> str:
    """``"cpu"`` or ``"cuda"`` for a device name (``"cuda:1"``, ``"/worker:0/cpu:0"``...)."""
    from .._device import Device
    return Device(name).type


def _outer_kernel(op, node) -> bool:
    """Whether a CPU node takes its op's outer-broadcast kernel: two inputs that both
    broadcast to the output (None dims included: the kernel hands other patterns to the
    ufunc); a plain broadcast of one operand keeps the ufunc and its out= buffer."""
    return (op.outer is not None and len(node.inputs) == 2 and not node.attrs
            and _device_type(node.device) == "cpu"
            and all(tuple(v.shape) != tuple(node.outputs[0].shape) for v in node.inputs))


def _ufunc_kernel(op, node):
    """The NumPy ufunc behind a CPU op, when its kernel is exactly that ufunc."""
    if op.ufunc is None or _device_type(node.device) != "cpu" or node.attrs:
        return None
    from ..ops.registry import cpu_ufunc
    return cpu_ufunc(op)


def _in_place_updates(plan: Plan) -> list:
    """The optimizer updates and the scatter/index writes of a one-device plan that run in
    the variables' storage at write-back (``passes.inplace``); the plan then skips the nodes
    they replace (``plan.skip``) and keeps the values they read to the end (``plan.keep``)."""
    from .passes.inplace import find_updates, find_writes
    updates, writes = [], []
    if plan.barrier is None:
        updates = find_updates(plan.graph, plan.nodes, plan.fetches)
        writes = find_writes(plan.graph, plan.nodes, plan.fetches, updates)
    plan.skip = set().union(*(u.skip for u in updates), *(w.skip for w in writes))
    plan.keep = ({v.id for u in updates for v in u.reads}
                 | {v.id for w in writes for v in [w.target, *w.reads]})
    return updates, writes


def _compile(plan: Plan, memory: bool):
    from .passes.memory import plan_buffers
    from .runtime import RUNTIME
    g = plan.graph
    ns: dict = dict(RUNTIME)
    ns["_asarray"] = _asarray
    lines = ["def _run(feeds, inputs):"]
    names: dict[int, str] = {}

    def nm(v: Value) -> str:
        return names[v.id]

    updates, writes = _in_place_updates(plan)
    by_assign = {a.id: (u, a is u.assigns[0]) for u in updates for a in u.assigns}
    by_write = {w.assign.id: w for w in writes}
    buffers = plan_buffers(plan) if memory else {}
    buf_arrays = []
    drops = _drops(plan)
    prev = None
    for n in plan.nodes:
        if n.id in plan.skip:
            continue
        if drops.get(prev):
            lines.append(f"    del {', '.join(drops[prev])}")
        prev = n.id
        outs = [f"v{v.id}" for v in n.outputs]
        for v, s in zip(n.outputs, outs):
            names[v.id] = s
        if n.op == "assign":
            continue    # writes go last
        args = ", ".join(nm(v) for v in n.inputs)
        if n.op == "placeholder":
            lines.append(f"    {outs[0]} = feeds[{n.attrs['index']}]")
        elif n.op == "variable":
            ns[f"B{n.id}"] = g.bindings[n][0]
            if n.attrs.get("slot") == "grad":
                lines.append(f"    {outs[0]} = _read_grad(B{n.id}, {n.name!r})")
            else:
                lines.append(f"    {outs[0]} = B{n.id}._data")
        elif n.op == "constant":
            ns[f"C{n.id}"] = n.attrs["value"]
            lines.append(f"    {outs[0]} = C{n.id}")
        elif n.op == "random":
            ns[f"R{n.id}"] = g.bindings.get(n)
            ns[f"A{n.id}"] = n.attrs
            lines.append(f"    {outs[0]} = _random(R{n.id}, A{n.id}, {args})")
        elif n.op in EDGE_OPS:     # a placed graph's edge to another device
            ns[f"X{n.id}"] = g.bindings[n]
            lines.append(f"    X{n.id}.send({args})" if n.op == "send"
                         else f"    {outs[0]} = X{n.id}.recv()")
        elif n.op == "fused":
            from .passes.fusion import fused_kernel
            ns[f"K{n.id}"] = fused_kernel(n)
            b = buffers.get(n.outputs[0].id)
            if b is not None:
                ns[f"O{n.id}"] = b
                lines.append(f"    {outs[0]} = K{n.id}({args}, out=O{n.id})")
            else:
                lines.append(f"    {outs[0]} = K{n.id}({args})")
        else:
            op, k = _kernel(n)
            chk = op.check if op.check is not None else VALUE_CHECKS.get(n.op)
            if chk is not None and getattr(chk, "shapes_only", False) and \
                    not any(None in v.shape for v in n.inputs):
                chk = None      # static shapes: capture ran this check on these very shapes
            if chk is not None:
                ns[f"Q{n.id}"] = functools.partial(chk, **n.attrs) if n.attrs else chk
                lines.append(f"    Q{n.id}({args})")
            if _outer_kernel(op, n):
                # (inputs of different shapes: the outer-broadcast kernel, as eager's apply)
                ns[f"K{n.id}"] = op.outer
                lines.append(f"    {outs[0]} = K{n.id}({args})")
                continue
            b = buffers.get(n.outputs[0].id) if len(n.outputs) == 1 else None
            if b is not None and _ufunc_kernel(op, n) is not None:
                ns[f"K{n.id}"] = _ufunc_kernel(op, n)
                ns[f"O{n.id}"] = b
                buf_arrays.append(b)
                lines.append(f"    {outs[0]} = K{n.id}({args}, out=O{n.id})")
                continue
            ns[f"K{n.id}"] = functools.partial(k, **n.attrs) if n.attrs else k
            one_tuple = len(outs) == 1 and _returns_tuple(op, n)
            lhs = ", ".join(outs) + ("," if one_tuple else "")
            call = f"K{n.id}({args})"
            if len(n.outputs) == 1 and n.outputs[0].ndim == 0 and not one_tuple:
                call = f"_asarray({call})"
            lines.append(f"    {lhs} = {call}")
    if drops.get(prev):
        lines.append(f"    del {', '.join(drops[prev])}")
    if plan.barrier is not None:    # a placed graph: write only once every device is done
        ns["_barrier"] = plan.barrier
        lines.append("    _barrier()")
    # writes back, after every reader ran
    for n in plan.nodes:
        if n.op != "assign":
            continue
        mode = n.attrs["slot"]
        if n.id in by_assign:       # one kernel call for the update's assigns, at the first
            u, first = by_assign[n.id]
            if first:
                lines.append(_update_call(ns, g, u, nm))
            continue
        if n.id in by_write:
            lines.append(_write_call(ns, g, by_write[n.id], nm))
            continue
        src = nm(n.inputs[0]) if n.inputs else "None"
        if mode == "input":
            lines.append(f"    _write_data(inputs[{n.attrs['input']}], {src})")
        elif n.attrs.get("update") == "sgd_gemm":
            ns[f"W{n.id}"] = g.bindings[n][0]
            lines.append(f"    _sgd_gemm_inplace(W{n.id}, {src}, {nm(n.inputs[1])}, "
                         f"{n.attrs['lr']!r})")
        elif n.attrs.get("update") == "sgd":
            ns[f"W{n.id}"] = g.bindings[n][0]
            lines.append(f"    _sgd_inplace(W{n.id}, {src}, {n.attrs['lr']!r})")
        else:
            ns[f"W{n.id}"] = g.bindings[n][0]
            fn = {"data": "_write_data", "grad": "_set_grad", "grad_data": "_write_grad_data"}[mode]
            lines.append(f"    {fn}(W{n.id}, {src})")
    lines.append(f"    return [{', '.join(nm(v) for v in plan.fetches)}]")
    src = "\n".join(lines) + "\n"
    code = compile(src, f"<tensorlib graph {g.name}>", "exec")
    exec(code, ns)
    return ns["_run"], src, buffers, ns, code


def _update_call(ns: dict, g: Graph, u, nm) -> str:
    """The write-back line running in-place update ``u`` (see :func:`_in_place_updates`)."""
    k = u.assigns[0].id
    ns[f"U{k}"] = [g.bindings[n][0] for n in [u.param, *u.states]]
    ns[f"H{k}"] = u.hyper
    fn = "_adam_inplace" if u.kind == "adam" else "_sgd_momentum_inplace"
    reads = ", ".join(nm(v) for v in u.reads)
    return f"    {fn}(*U{k}, {reads}, **H{k})"


def _write_call(ns: dict, g: Graph, w, nm) -> str:
    """The write-back line running scatter/index write ``w`` in place (see
    :func:`_in_place_updates`)."""
    from ..ops.indexing import _on
    from .passes.inplace import write_rows, write_setitem
    a = w.assign
    if a.attrs["slot"] == "input":
        tgt = f"inputs[{a.attrs['input']}]"
    else:
        tgt = f"W{a.id}"
        ns[tgt] = g.bindings[a][0]
    args = ", ".join(nm(v) for v in [w.target, *w.reads])
    if w.kind == "rows":
        ns["_write_rows"] = write_rows
        return f"    _write_rows({tgt}, {args})"
    ns["_write_setitem"] = write_setitem
    ns[f"I{a.id}"] = _on(np, w.index)
    return f"    _write_setitem({tgt}, {args}, I{a.id})"


def _drops(plan: Plan) -> dict:
    """Node id -> the local names whose last reader that node is, deleted right after it
    runs: a value's memory goes back as soon as nothing later reads it, as in eager mode
    (without this a training step held every activation and gradient to the end: twice
    eager's peak). Fetched values and the assigns' sources live to the end."""
    keep = {v.id for v in plan.fetches} | plan.keep
    last: dict[int, int] = {}
    for n in plan.nodes:
        if n.id in plan.skip:
            continue
        if n.op == "assign":
            keep.update(v.id for v in n.inputs)
            continue
        for v in n.outputs:
            last.setdefault(v.id, n.id)     # never read: dropped after the node making it
        for v in n.inputs:
            last[v.id] = n.id
    out: dict[int, list[str]] = {}
    for vid, nid in last.items():
        if vid not in keep:
            out.setdefault(nid, []).append(f"v{vid}")
    return out


def _returns_tuple(op, n: Node) -> bool:
    """Whether the op's kernel returns a tuple (even of one array) for these attrs."""
    if op.infer is None:
        return False
    try:
        spec = op.infer(*[(v.shape, v.dtype) for v in n.inputs], **n.attrs)
    except Exception:
        return False
    return multi_spec(spec)


def multi_spec(spec) -> bool:
    """Whether an op's ``infer`` result lists several ``(shape, dtype)`` pairs (a tuple of
    outputs) rather than being one pair."""
    return (isinstance(spec, (tuple, list)) and len(spec) > 0 and isinstance(spec[0], tuple)
            and len(spec[0]) > 0 and isinstance(spec[0][0], tuple))


# --- running a graph from Python -----------------------------------------------------------
def _as_values(graph: Graph, fetches):
    if fetches is None:
        return list(graph.outputs), False, None
    single = not isinstance(fetches, (list, tuple))
    fl = [fetches] if single else list(fetches)
    vals, targets = [], []
    for f in fl:
        if isinstance(f, Node):
            targets.append(f)
        else:
            vals.append(graph.value(f))
    return vals, single, targets


def _feed_index(graph: Graph, key) -> int:
    if isinstance(key, int):
        return key
    if isinstance(key, str):
        for i, v in enumerate(graph.inputs):
            if v.name == key:
                return i
        raise KeyError(f"no graph input named {key!r}")
    v = graph.value(key)
    if v.node is None or v.node.op != "placeholder":
        raise KeyError(f"{v.label()} is not a placeholder of this graph")
    return v.node.attrs["index"]


def _aliases_state(v: Value) -> bool:
    """Whether ``v``'s array is (a view of) a graph input, variable or constant."""
    from ..ops.registry import REGISTRY
    node = v.node
    while node is not None and node.op in REGISTRY and REGISTRY[node.op].view and node.inputs:
        node = node.inputs[0].node
    return node is not None and node.op in ("placeholder", "variable", "constant")


def shared_results(values) -> list[bool]:
    """For each result Value: whether handing its array out would share memory with state
    (a graph input, variable or constant, or a view of one) or with an earlier result, so
    that a caller's in-place write to it would change that too."""
    seen: set[int] = set()
    out = []
    for v in values:
        out.append(v.id in seen or _aliases_state(v))
        seen.add(v.id)
    return out


def run_graph(graph: Graph, feeds=None, fetches=None, targets=None):
    from .._device import Device
    from .._tensor import Tensor, _wrap
    vals, single, tg = _as_values(graph, fetches)
    tg = list(tg or []) + list(targets or [])
    if fetches is None and targets is None:
        tg = graph.assigns
    arrays: list = [None] * len(graph.inputs)
    tensors: list = [None] * len(graph.inputs)
    for k, a in (feeds or {}).items():
        i = _feed_index(graph, k)
        if isinstance(a, Tensor):
            tensors[i] = a
            a = a._data
        else:
            a = np.asarray(a, dtype=graph.inputs[i].dtype)
        _check_feed(graph.inputs[i], a)
        arrays[i] = a
    if graph.size_predicates:
        check_predicate_outcomes(graph, [None if a is None else tuple(a.shape)
                                         for a in arrays])
    key = (tuple(v.id for v in vals), tuple(n.id for n in tg))
    plan = graph._plans.get(key)
    if plan is None:
        plan = graph._plans[key] = make_plan(graph, vals, tg)
    for n in plan.placeholders:
        if arrays[n.attrs["index"]] is None:
            raise ValueError(f"graph input {n.outputs[0].label()} "
                             f"({n.outputs[0].type_str()}) must be fed to compute the "
                             "requested fetches")
    outs = plan(arrays, tensors)
    # each result its own memory, as ONNX Runtime's: not an input's, a variable's or another
    # result's (a pass turned x * 1.0 into x, CSE merged two equal results)
    outs = [o.copy() if shared else o for o, shared in zip(outs, shared_results(vals))]
    # placed or not, results come back where the eager code made them (a placed plan has
    # moved them there)
    res = [_wrap(o, Device(graph.traced_device(v)), False, None, 0)
           for o, v in zip(outs, vals)]
    if fetches is None:
        return res[0] if len(res) == 1 else tuple(res)
    return res[0] if single else res


def check_predicate_outcomes(graph: Graph, shapes: list) -> None:
    """Raise when input ``shapes`` (None: not fed) make a size comparison the traced Python
    made (``graph.size_predicates``) come out otherwise than when traced: the graph holds
    the branch it took then (``graph.run`` and loaded graphs; a tl.function traces again)."""
    from .sizes import PREDICATE_HELP, graph_predicate_miss
    why = graph_predicate_miss(graph, shapes)
    if why is not None:
        raise ValueError(f"{graph.name}: {why}; {PREDICATE_HELP} A graph run or a saved graph "
                         "cannot trace again: save a graph traced for such inputs too.")


def _check_feed(v: Value, a) -> None:
    if a.ndim != v.ndim or any(d is not None and d != s for d, s in zip(v.shape, a.shape)):
        raise ValueError(f"feed for {v.label()} has shape {tuple(a.shape)}, the graph input "
                         f"expects {v.type_str()}")
    if a.dtype != v.dtype:
        raise TypeError(f"feed for {v.label()} has dtype {a.dtype}, the graph input expects "
                        f"{v.dtype}")
