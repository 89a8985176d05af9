"""Graph pictures: Graphviz ``dot`` source, and SVG through the ``dot`` program."""
from __future__ import annotations

import html
import shutil
import subprocess

_COLORS = {"placeholder": "#cfe8ff", "variable": "#ffe2b3", "constant": "#e6e6e6",
           "assign": "#ffc2c2", "random": "#e3d4ff", "fused": "#c8f0c8"}


def to_dot(g) -> str:
    """The graph as Graphviz source: ops as boxes, edges labelled with their types."""
    name = str(g.name).replace("\\", "\\\\").replace('"', '\\"')   # a quoted DOT ID
    lines = [f'digraph "{name}" {{', "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", '
             'fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8, color="#555555"];']
    for n in g.nodes:
        label = n.op
        if n.op in ("placeholder", "variable") and (n.name or n.outputs[0].name):
            label = f"{n.op}\\n{n.name or n.outputs[0].name}"
        elif n.op == "assign":
            label = f"assign\\n{n.attrs.get('var')}"
        elif n.op == "fused":
            label = "fused\\n" + " ".join(r[0] for r in n.attrs["program"])
        if n.device not in ("cpu", "cpu:0"):
            label += f"\\n@{n.device}"
        color = _COLORS.get(n.op, "#ffffff")
        lines.append(f'  n{n.id} [label="{html.escape(label)}", fillcolor="{color}"];')
    for n in g.nodes:
        for v in n.inputs:
            if v.node is not None:
                lines.append(f'  n{v.node.id} -> n{n.id} [label="{v.type_str()}"];')
        for c in n.control:
            lines.append(f"  n{c.id} -> n{n.id} [style=dashed, color=\"#cc0000\"];")
    for i, v in enumerate(g.outputs):
        lines.append(f'  out{i} [label="output {i}", shape=plaintext, style=""];')
        if v.node is not None:
            lines.append(f'  n{v.node.id} -> out{i} [label="{v.type_str()}"];')
    lines.append("}")
    return "\n".join(lines)


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
