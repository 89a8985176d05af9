"""Graph pictures: Graphviz ``dot`` source, and SVG through the ``dot`` program."""
from __future__ import annotations

import html
import shutil
import subprocess

_COLORS = {"placeholder": "#cfe8ff", "variable": "#ffe2b3", "constant": "#e6e6e6",
           "assign": "#ffc2c2", "random": "#e3d4ff", "fused": "#c8f0c8"}


def to_dot(g) -> str:
    """The graph as Graphviz source: ops as boxes, edges labelled with their types. A graph
    placed over several devices draws each device's nodes in a box of its own and the edges
    between devices (the Send/Recv pairs :func:`device_subgraphs` shows) bold blue, labelled
    ``send/recv``; a device subgraph's ``send``/``recv`` nodes name the other device."""
    from .ir import REPLICATED_OPS
    placed = len({n.device for n in g.nodes if n.op not in REPLICATED_OPS}) > 1
    name = str(g.name).replace("\\", "\\\\").replace('"', '\\"')   # a quoted DOT ID
    lines = [f'digraph "{name}" {{', "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", '
             'fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8, color="#555555"];']
    clusters: dict[str, list[str]] = {}
    for n in g.nodes:
        label = n.op
        if n.op in ("placeholder", "variable") and (n.name or n.outputs[0].name):
            label = f"{n.op}\\n{n.name or n.outputs[0].name}"
        elif n.op == "assign":
            label = f"assign\\n{n.attrs.get('var')}"
        elif n.op == "fused":
            label = "fused\\n" + " ".join(r[0] for r in n.attrs["program"])
        elif n.op in ("send", "recv"):
            src, dst = n.attrs["key"][0], n.attrs["key"][1]
            label = f"send\\nto {dst}" if n.op == "send" else f"recv\\nfrom {src}"
        if n.device not in ("cpu", "cpu:0") and not placed:
            label += f"\\n@{n.device}"
        color = _COLORS.get(n.op, "#ffffff")
        line = f'n{n.id} [label="{html.escape(label)}", fillcolor="{color}"];'
        if placed and n.op not in REPLICATED_OPS:
            clusters.setdefault(n.device, []).append(line)
        else:
            lines.append("  " + line)
    for k, (dev, members) in enumerate(clusters.items()):
        d = html.escape(str(dev)).replace('"', '\\"')
        lines.append(f'  subgraph cluster_{k} {{ label="{d}"; style="rounded,dashed"; '
                     'color="#3366cc";')
        lines.extend("    " + m for m in members)
        lines.append("  }")
    for n in g.nodes:
        for v in n.inputs:
            if v.node is None:
                continue
            if placed and v.node.device != n.device and v.node.op not in REPLICATED_OPS:
                lines.append(f'  n{v.node.id} -> n{n.id} [label="send/recv\\n{v.type_str()}", '
                             'color="#3366cc", penwidth=2, fontcolor="#3366cc"];')
            else:
                lines.append(f'  n{v.node.id} -> n{n.id} [label="{v.type_str()}"];')
        for c in n.control:
            lines.append(f"  n{c.id} -> n{n.id} [style=dashed, color=\"#cc0000\"];")
    for i, v in enumerate(g.outputs):
        lines.append(f'  out{i} [label="output {i}", shape=plaintext, style=""];')
        if v.node is not None:
            lines.append(f'  n{v.node.id} -> out{i} [label="{v.type_str()}"];')
    lines.append("}")
    return "\n".join(lines)


def device_subgraphs(g, fetches=None, targets=None) -> dict:
    """A placed graph's per-device parts, as :meth:`Graph.run` runs them: ``{device name:
    Graph}`` with ``send``/``recv`` nodes on the edges between devices (attrs ``key``:
    source device, destination device, value id). ``fetches``/``targets``: the run's
    (default: the outputs and every assign). ``print`` one, or draw it with :func:`to_dot`.
    """
    from .executor import _as_values
    from .placement.partition import partition
    vals, _, tg = _as_values(g, fetches)
    tg = list(tg or []) + list(targets or [])
    if fetches is None and targets is None:
        tg = g.assigns
    parts = partition(g, vals, tg, lambda key, dev: None, compile=False)
    return {str(p.device): p.graph for p in parts}


def to_svg(g) -> str:
    """SVG rendered by Graphviz; a clear error when the ``dot`` program is missing."""
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("rendering a graph needs the Graphviz 'dot' program, which was not "
                           "found on PATH: install Graphviz (apt-get install graphviz, brew "
                           "install graphviz or conda install graphviz); print(graph) gives "
                           "a text listing meanwhile")
    r = subprocess.run([dot, "-Tsvg"], input=to_dot(g).encode(), capture_output=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"graphviz dot failed: {r.stderr.decode(errors='replace')[:500]}")
    return r.stdout.decode()
