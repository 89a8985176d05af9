"""Shape inference over a graph: each op's ``infer`` from the placeholders' shapes."""
from __future__ import annotations

import numpy as np


def infer_shapes(g) -> None:
    """Recompute Value shapes/dtypes from placeholder/variable/constant specs (``None`` dims
    propagate). Raises ValueError naming the node when an op's ``infer`` rejects them."""
    from ...ops.registry import REGISTRY
    # the sizes the graph was traced at (placeholders carry their None dims already)
    traced = {v.id: v.shape for v in g.values}
    for v, ex in zip(g.inputs, getattr(g, "_examples", ())):
        traced[v.id] = ex.shape
    for n in g.nodes:
        if n.op in ("placeholder", "variable", "constant", "random", "assign", "fused"):
            continue
        op = REGISTRY.get(n.op)
        if op is None or op.infer is None:
            continue
        if n.op == "reshape":
            _keep_dynamic_dims(n, traced[n.inputs[0].id])
        specs = [(v.shape, v.dtype) for v in n.inputs]
        try:
            out = op.infer(*specs, **n.attrs)
        except (ValueError, TypeError, IndexError) as e:
            raise ValueError(f"shape inference failed at node {n.id} ({n.op}): {e}") from e
        outs = list(out) if len(n.outputs) > 1 else [out]
        for v, (shape, dt) in zip(n.outputs, outs):
            v.shape = tuple(None if d is None else int(d) for d in shape)
            v.dtype = np.dtype(dt)


def _keep_dynamic_dims(n, traced) -> None:
    """A reshape traced at example sizes: where the target repeats a ``None`` dim of its input
    at the same position, at the size it had when traced (``x.reshape(x.shape[0], -1)``,
    ``flatten(x, 1)``, the reshapes in their gradients), copy that dim at run time
    (``keep``) instead of freezing the example's size. A size computed from a traced one
    (``2 * x.shape[0]``) is a Python number tensorlib cannot trace: it stays at its traced
    value (see :func:`tensorlib.function`)."""
    src, target = n.inputs[0].shape, n.attrs["shape"]
    keep = tuple(i for i in range(min(len(src), len(target)))
                 if src[i] is None and target[i] != -1 and i < len(traced)
                 and traced[i] == target[i])
    if keep or "keep" in n.attrs:
        n.attrs["keep"] = tuple(sorted(set(keep) | set(n.attrs.get("keep", ()))))
