"""Memory plan: preallocated buffers for elementwise results, reused once dead.

Only results of plain NumPy ufunc kernels get buffers (they accept ``out=``).
A buffer goes back to the pool when the value and everything that may alias
it are dead: the outputs of any consumer that is not a ufunc op (a reshape,
a slice, a kernel that returns its input) count as possible aliases. Fetched
values, values handed out as ``.grad`` and values written to variables never
take a pooled buffer, so a result returned to the user is never overwritten
by the next run.
"""
from __future__ import annotations

import numpy as np


def _is_ufunc_node(n) -> bool:
    from ..executor import _ufunc_kernel
    if n.op in ("placeholder", "variable", "constant", "random", "assign", "fused"):
        return n.op == "fused"
    from ...ops.registry import REGISTRY
    op = REGISTRY.get(n.op)
    return op is not None and len(n.outputs) == 1 and _ufunc_kernel(op, n) is not None


def plan_buffers(plan) -> dict[int, np.ndarray]:
    """Value id -> preallocated buffer, for the nodes of ``plan``."""
    skip = getattr(plan, "skip", ())
    nodes = [n for n in plan.nodes if n.id not in skip]
    if any(d is None for n in nodes for v in n.outputs for d in v.shape):
        return {}
    pos = {n.id: i for i, n in enumerate(nodes)}
    end = len(nodes) + 1
    # (and what an in-place optimizer update reads at write-back, see passes.inplace)
    pinned: set[int] = {v.id for v in plan.fetches} | set(getattr(plan, "keep", ()))
    for n in nodes:
        if n.op == "assign":
            pinned.update(v.id for v in n.inputs)
    # alias groups: a value is alive while any value that may alias it is alive
    last: dict[int, int] = {}
    alias_of: dict[int, set[int]] = {}
    for n in nodes:
        fresh = _is_ufunc_node(n)
        for v in n.inputs:
            last[v.id] = max(last.get(v.id, 0), pos[n.id])
            if not fresh and n.op != "assign":
                for o in n.outputs:
                    alias_of.setdefault(v.id, set()).add(o.id)
    def group_end(vid, seen=None):
        seen = seen if seen is not None else set()
        if vid in seen:
            return 0
        seen.add(vid)
        if vid in pinned:
            return end
        e = last.get(vid, 0)
        for a in alias_of.get(vid, ()):
            e = max(e, group_end(a, seen))
        return e
    pool: dict[tuple, list[np.ndarray]] = {}
    frees: dict[int, list] = {}
    out: dict[int, np.ndarray] = {}
    for i, n in enumerate(nodes):
        for key_buf in frees.pop(i, []):
            pool.setdefault(key_buf[0], []).append((key_buf[1], i))
        if not _is_ufunc_node(n):
            continue
        v = n.outputs[0]
        e = group_end(v.id)
        if e >= end:        # fetched (or aliased by a fetched value): a fresh array per run
            continue
        key = (v.shape, v.dtype.str)
        free = pool.get(key) or []
        # a fused chain reads its inputs after its first write: never reuse their buffers
        ok = [j for j, (_, at) in enumerate(free) if n.op != "fused" or at < i]
        buf = free.pop(ok[-1])[0] if ok else np.empty(v.shape, v.dtype)
        out[v.id] = buf
        e = max(e, i + 1)
        if e < end:
            # back in the pool at its last reader: elementwise ops may write in place
            frees.setdefault(e, []).append((key, buf))
    return out


def buffer_stats(plan) -> tuple[int, int]:
    """(values given buffers, distinct buffers): how much the plan reuses."""
    ids = {id(b) for b in plan.buffers.values()}
    return len(plan.buffers), len(ids)
