"""Shape inference over a graph: each op's ``infer`` from the placeholders' shapes."""
from __future__ import annotations

import numpy as np


def infer_shapes(g) -> None:
    """Recompute Value shapes/dtypes from placeholder/variable/constant specs (``None`` dims
    propagate). Raises ValueError naming the node when an op's ``infer`` rejects them."""
    from ...ops.registry import REGISTRY
    from ..runtime import random_shape
    from ..executor import multi_spec
    from ..tracer import TracedSize
    for n in g.nodes:
        if n.op == "random" and n.inputs:       # a draw that follows a None dim
            v = n.outputs[0]
            v.shape = random_shape(n.attrs, [i.shape for i in n.inputs])
            continue
        if n.op in ("placeholder", "variable", "constant", "random", "assign", "fused"):
            continue
        op = REGISTRY.get(n.op)
        if op is None or op.infer is None:
            continue
        specs = [(v.shape, v.dtype) for v in n.inputs]
        try:
            out = op.infer(*specs, **n.attrs)
        except (ValueError, TypeError, IndexError) as e:
            raise ValueError(f"shape inference failed at node {n.id} ({n.op}): {e}") from e
        outs = list(out) if multi_spec(out) else [out]
        for v, (shape, dt) in zip(n.outputs, outs):
            # a traced size in an attr (a pool's output length) follows a None dim: None
            v.shape = tuple(None if d is None or isinstance(d, TracedSize) else int(d)
                            for d in shape)
            v.dtype = np.dtype(dt)
