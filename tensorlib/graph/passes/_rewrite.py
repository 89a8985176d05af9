"""Shared helpers for passes: replacing uses of a value, ordering, removal."""
from __future__ import annotations


def replace_uses(g, old, new) -> None:
    """Every use of Value ``old`` (node inputs and graph outputs) becomes ``new``."""
    for n in g.nodes:
        if any(v is old for v in n.inputs):
            n.inputs = [new if v is old else v for v in n.inputs]
    g.outputs = [new if v is old else v for v in g.outputs]


def remove_nodes(g, dead: set[int]) -> None:
    if not dead:
        return
    g.nodes = [n for n in g.nodes if n.id not in dead]
    live = {v.id for n in g.nodes for v in n.outputs}
    g.values = [v for v in g.values if v.id in live]
    for n in g.nodes:
        n.control = [c for c in n.control if c.id not in dead]
    g.invalidate()


def users_of(g, ignore=()) -> dict[int, list]:
    """Value id -> the nodes reading it (nodes whose id is in ``ignore`` do not count)."""
    users: dict[int, list] = {}
    for n in g.nodes:
        if n.id not in ignore:
            for v in n.inputs:
                users.setdefault(v.id, []).append(n)
    return users


def upstream(values, stop=()) -> set[int]:
    """Ids of the nodes ``values`` depend on (data and control edges), not looking past the
    Values whose id is in ``stop``."""
    seen: set[int] = set()
    stack = [v.node for v in values if v.node is not None and v.id not in stop]
    while stack:
        n = stack.pop()
        if n.id not in seen:
            seen.add(n.id)
            stack.extend(v.node for v in n.inputs if v.node is not None and v.id not in stop)
            stack.extend(n.control)
    return seen


def commit(g, dead: set[int]) -> None:
    """End of a rewrite: drop the replaced nodes and put the new ones in order."""
    if dead:
        remove_nodes(g, dead)
        toposort(g)


def is_pure(n) -> bool:
    """Nodes whose output depends only on their inputs and attrs."""
    return n.op not in ("placeholder", "variable", "random", "assign")


def emit(g, op: str, inputs, attrs: dict | None = None, at=None):
    """Append a node of registry op ``op``; its output types come from the op's ``infer``.
    It takes the device and ``with tl.device`` pin of node ``at`` (the node it rewrites),
    else of its first input's producer. Returns the node (callers reorder with
    :func:`toposort`)."""
    from ...ops.registry import REGISTRY
    from ..executor import multi_spec
    attrs = attrs or {}
    spec = REGISTRY[op].infer(*[(v.shape, v.dtype) for v in inputs], **attrs)
    specs = list(spec) if multi_spec(spec) else [spec]
    like = at if at is not None else inputs[0].node
    node = g.add_node(op, inputs, attrs, like.device, [(tuple(s), d) for s, d in specs])
    node.pin = like.pin       # a rewrite stays in its with tl.device block
    g.inherit_source(node, like)
    return node


def same_place(a, b) -> bool:
    """Nodes ``a`` and ``b`` run on one device and in one ``with tl.device`` block, so a
    rewrite may merge them."""
    return a.device == b.device and a.pin == b.pin


def toposort(g) -> None:
    """Reorder ``g.nodes`` so every node follows its data and control dependencies, keeping
    the existing order wherever it is already valid."""
    member = {n.id for n in g.nodes}
    placed: set[int] = set()
    open_: set[int] = set()        # expanded, not yet placed: the current DFS path
    order = []
    for root in g.nodes:
        stack = [(root, False)]
        while stack:
            n, expanded = stack.pop()
            if n.id in placed:
                continue
            if expanded:
                placed.add(n.id)
                open_.discard(n.id)
                order.append(n)
                continue
            if n.id in open_:
                raise RuntimeError(f"graph rewrite made a cycle through node {n.id} ({n.op})")
            open_.add(n.id)
            stack.append((n, True))
            deps = [v.node for v in n.inputs if v.node is not None] + list(n.control)
            stack.extend((d, False) for d in reversed(deps)
                         if d.id not in placed and d.id in member)
    g.nodes = order
    g.invalidate()


def refresh_control(g) -> None:
    """Give every ``assign`` control edges from all (non-assign) readers of the location it
    writes, so no schedule writes a variable before its readers ran. The tracer sets them
    when it creates the assigns; a rewrite that adds readers calls it again."""
    users = g.consumers()
    var_of = {(id(g.bindings[n][0]), g.bindings[n][1]): n for n in g.nodes
              if n.op == "variable" and n in g.bindings}
    for a in g.assigns:
        if "input" in a.attrs:
            src = g.inputs[a.attrs["input"]].node
        else:
            owner, slot = g.bindings.get(a, (None, None))
            src = var_of.get((id(owner), slot))
        if src is not None:
            a.control = [u for u in users.get(src.outputs[0], []) if u.op != "assign"]
