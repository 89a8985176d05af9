"""Dead-code elimination: drop nodes no output, assign or fetch depends on."""
from __future__ import annotations

from ..executor import needed_nodes
from ._rewrite import remove_nodes


def dce(g, fetches=None) -> int:
    """Keep what ``fetches`` (default: outputs), the assigns and placeholders need."""
    roots = list(g.outputs) if fetches is None else [g.value(f) for f in fetches]
    keep = {n.id for n in needed_nodes(g, roots, g.assigns)}
    keep.update(n.id for n in g.nodes if n.op == "placeholder")
    # variables named by an assign stay declared even when nothing reads them
    named = {a.attrs["var"] for a in g.assigns}
    keep.update(n.id for n in g.nodes if n.op == "variable" and n.name in named)
    dead = {n.id for n in g.nodes if n.id not in keep}
    remove_nodes(g, dead)
    return len(dead)
