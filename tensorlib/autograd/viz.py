"""Draw the tape behind a tensor: as Graphviz DOT text, or as a matplotlib figure."""
from __future__ import annotations


def _walk(root):
    """Nodes and leaves reachable from ``root`` with their edges, without recursion."""
    nodes, leaves, edges = {}, {}, []
    if root._node is None:          # a leaf (or a tensor without history): one box
        leaves[id(root)] = root
    stack = [root._node] if root._node is not None else []
    seen = set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        nodes[id(n)] = n
        for t in n.inputs or ():
            if t._node is not None:
                edges.append((id(t._node), id(n)))
                stack.append(t._node)
            else:
                leaves[id(t)] = t
                edges.append((id(t), id(n)))
    return nodes, leaves, edges


def _leaf_label(t) -> str:
    kind = "param" if t.requires_grad else "const"
    return f"{kind} {tuple(t.shape)}"


def to_dot(root) -> str:
    """Graphviz DOT source of the tape that produced ``root``."""
    nodes, leaves, edges = _walk(root)
    lines = ["digraph tape {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for k, t in leaves.items():
        color = "lightblue" if t.requires_grad else "lightgrey"
        lines.append(f'  n{k} [label="{_leaf_label(t)}", shape=box, style=filled, '
                     f'fillcolor={color}];')
    for k, n in nodes.items():
        lines.append(f'  n{k} [label="{n.name}", shape=ellipse];')
    for a, b in edges:
        lines.append(f"  n{a} -> n{b};")
    lines.append("}")
    return "\n".join(lines)


def draw(root, ax=None):
    """Plot the tape with matplotlib (no Graphviz needed): leaves left, ``root`` right."""
    import matplotlib.pyplot as plt
    nodes, leaves, edges = _walk(root)
    labels = {k: _leaf_label(t) for k, t in leaves.items()}
    labels.update({k: n.name for k, n in nodes.items()})
    preds: dict = {}
    for a, b in edges:
        preds.setdefault(b, []).append(a)
    depth: dict = {k: 0 for k in leaves}
    order = list(labels)
    for _ in range(len(order)):  # longest path from the leaves (graph is small)
        changed = False
        for k in nodes:
            d = 1 + max((depth.get(p, 0) for p in preds.get(k, [])), default=0)
            if depth.get(k) != d:
                depth[k] = d
                changed = True
        if not changed:
            break
    columns: dict = {}
    for k, d in depth.items():
        columns.setdefault(d, []).append(k)
    pos = {k: (d, -i + (len(ks) - 1) / 2) for d, ks in columns.items() for i, k in enumerate(ks)}
    if ax is None:
        width = 2.2 * (max(columns) + 1)
        _, ax = plt.subplots(figsize=(width, 1.2 * max(len(v) for v in columns.values()) + 1))
    for a, b in edges:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.annotate("", xy=(x1 - 0.25, y1), xytext=(x0 + 0.25, y0),
                    arrowprops=dict(arrowstyle="->", color="grey"))
    for k, (x, y) in pos.items():
        leaf = k in leaves
        color = ("lightblue" if leaves[k].requires_grad else "lightgrey") if leaf else "wheat"
        ax.text(x, y, labels[k], ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="square" if leaf else "round", fc=color, ec="black"))
    ax.set_xlim(-0.6, max(columns) + 0.6)
    ax.set_ylim(min(y for _, y in pos.values()) - 0.8, max(y for _, y in pos.values()) + 0.8)
    ax.axis("off")
    return ax
