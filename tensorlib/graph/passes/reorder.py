"""Moving an activation past a max-pool: ``max_pool2d(relu(x))`` -> ``relu(max_pool2d(x))``.

relu never decreases, so the largest of the activated window is the activation of the
largest input: both give the same values. The right side applies relu (and, in a training
step, its gradient) to the pooled tensor, a quarter of the elements for 2x2 windows. The
gradients agree too: where the window's largest input is positive both route the
gradient to the same (first) maximum; otherwise relu's gradient is zero on both sides. The
pool's indices differ in that case, so the rewrite is made only where nothing reads them
(a training step's recorded backward does: the step's backward is derived again after the
rewrite, see ``rederive``).
"""
from __future__ import annotations

from ._rewrite import commit, emit, replace_uses, users_of


def relu_after_max_pool(g, ignore=(), protect=()) -> int:
    """Rewrite each ``max_pool2d(relu(x))`` whose relu feeds only the pool and whose
    indices nobody reads; returns how many."""
    users = users_of(g, ignore)
    outs = {v.id for v in g.outputs}
    dead: set[int] = set()
    for p in list(g.nodes):
        if p.op != "max_pool2d" or p.id in ignore or len(p.outputs) != 2:
            continue
        y, (vals, idx) = p.inputs[0], p.outputs
        r = y.node
        if (r is None or r.op != "relu" or r.attrs or users.get(y.id) != [p]
                or y.id in outs or y.id in protect or vals.id in protect
                or users.get(idx.id) or idx.id in outs):
            continue
        pooled = emit(g, "max_pool2d", [r.inputs[0]], dict(p.attrs), p).outputs[0]
        replace_uses(g, vals, emit(g, "relu", [pooled], {}, r).outputs[0])
        dead |= {p.id, r.id}
    commit(g, dead)
    return len(dead) // 2
