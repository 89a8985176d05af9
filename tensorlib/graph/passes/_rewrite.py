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


def is_pure(n) -> bool:
    """Nodes whose output depends only on their inputs and attrs."""
    return n.op not in ("placeholder", "variable", "random", "assign")
