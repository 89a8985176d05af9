"""The partitioner: one subgraph per device, with Send/Recv on the edges between them.

Every edge from a node on device A to a node on device B becomes a ``send`` in
A's subgraph, right after the producer, and one ``recv`` in B's subgraph
before its first reader there (one per value and destination, however many
readers B has). Placeholders and constants are copied into each subgraph that
reads them instead of being sent.

Each subgraph keeps the original topological order, so the devices cannot
deadlock: a ``recv`` waits only for a ``send`` that comes earlier in that order,
and sends never block. A ``send`` copies its input, so what a device receives
is its own (the memory plan may reuse the sender's buffer at once). The writes
(assigns, which the executor runs last) wait at a barrier until every device
finished computing without error: so a reader on one device always sees the
value from before a write on another (control edges to an assign matter only
within its device), and a step that fails while computing writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..._device import Device
from ..executor import Plan, needed_nodes
from ..ir import REPLICATED_OPS, Graph, Node, Value


@dataclass
class Partition:
    """One device's part: its subgraph, the plan that runs it and the fetches it owns."""

    device: Device
    graph: Graph
    fetches: list[Value]        # values of ``graph``
    fetch_positions: list[int]  # where each goes in the caller's fetch list
    plan: Plan | None = None
    origin: dict[int, Node] | None = None     # node id in ``graph`` -> the placed graph's


def partition(graph: Graph, fetches: list[Value], targets: list[Node], endpoint,
              compile: bool = True, barrier=None,
              nodes: list[Node] | None = None) -> list[Partition]:
    """Split the nodes that ``fetches`` and ``targets`` need into per-device subgraphs
    (see the module docstring). ``endpoint(key, device)`` makes the object a send or recv
    node calls (``key``: source, destination, value id). With ``compile``, each subgraph of
    this process gets its executor Plan (a remote worker compiles its own), which calls
    ``barrier()`` before its writes. ``nodes``: the needed nodes, when the caller has them."""
    if nodes is None:
        nodes = needed_nodes(graph, fetches, targets)
    dev_of = {n.id: Device(n.device) for n in nodes}
    # the destinations of each value that crosses devices, to send right after it is made
    dests: dict[int, list[Device]] = {}
    for n in nodes:
        for v in n.inputs:
            src = v.node
            if src is None or src.op in REPLICATED_OPS:
                continue
            d = dev_of[n.id]
            if dev_of[src.id] is not d and d not in dests.setdefault(v.id, []):
                dests[v.id].append(d)
    devices = list(dict.fromkeys(dev_of[n.id] for n in nodes
                                 if n.op not in REPLICATED_OPS))
    for v in fetches:       # a fetched placeholder/constant is served where it is placed
        if v.node is not None and dev_of[v.node.id] not in devices:
            devices.append(dev_of[v.node.id])
    subs = {d: Graph(f"{graph.name}@{d}") for d in devices}
    local: dict[Device, dict[int, Value]] = {d: {} for d in devices}
    copies: dict[int, Node] = {}
    origin: dict[Device, dict[int, Node]] = {d: {} for d in devices}

    def copy_node(n: Node, d: Device, inputs: list[Value]) -> Node:
        sub = subs[d]
        c = sub.add_node(n.op, inputs, n.attrs, str(d), [(v.shape, v.dtype) for v in n.outputs],
                         name=n.name)
        for v, cv in zip(n.outputs, c.outputs):
            cv.name = v.name
            local[d][v.id] = cv
        if n in graph.bindings:
            sub.bindings[c] = graph.bindings[n]
        if n.op == "placeholder":
            sub.inputs.append(c.outputs[0])
        # a reader on another device needs no edge: writes wait for every device (barrier)
        c.control = [copies[m.id] for m in n.control if m.id in copies and dev_of[m.id] is d]
        copies[n.id] = c
        origin[d][c.id] = n
        return c

    def local_value(v: Value, d: Device) -> Value:
        lv = local[d].get(v.id)
        if lv is not None:
            return lv
        src = v.node
        if src.op in REPLICATED_OPS:
            copy_node(src, d, [])
            return local[d][v.id]
        key = (str(dev_of[src.id]), str(d), v.id)
        r = subs[d].add_node("recv", [], {"key": key}, str(d), [(v.shape, v.dtype)])
        subs[d].bindings[r] = endpoint(key, d)
        local[d][v.id] = r.outputs[0]
        return r.outputs[0]

    for n in nodes:
        d = dev_of[n.id]
        if n.op in REPLICATED_OPS:
            continue
        copy_node(n, d, [local_value(v, d) for v in n.inputs])
        for v in n.outputs:
            for dst in dests.get(v.id, ()):
                key = (str(d), str(dst), v.id)
                s = subs[d].add_node("send", [local[d][v.id]], {"key": key}, str(d), [])
                subs[d].bindings[s] = endpoint(key, dst)
    parts = []
    for d in devices:
        fv, pos = [], []
        for i, v in enumerate(fetches):
            if dev_of[v.node.id] is d:
                fv.append(local_value(v, d))
                pos.append(i)
        sub = subs[d]
        sub.outputs = fv
        if graph.size_predicates:       # over the inputs this part reads, at its positions
            from ..sizes import carry_predicates
            carry_predicates(graph, sub, {v.node.attrs["index"]: k
                                          for k, v in enumerate(sub.inputs)})
        part = Partition(d, sub, fv, pos, origin=origin[d])
        if compile and d.worker is None:
            ends = [n for n in sub.nodes if n.op in ("send", "assign")] + \
                [copies[t.id] for t in targets if dev_of[t.id] is d and t.op != "assign"]
            part.plan = Plan(sub, fv, ends, barrier=barrier)
        parts.append(part)
    return parts
