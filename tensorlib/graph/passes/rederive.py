"""Re-deriving a captured training step's backward after rewriting its forward.

A step that calls ``loss.backward()`` under capture records the backward the tape ran:
one gradient node per forward op, each reading that op's inputs. A forward rewrite that
makes the step cheaper (see :data:`FORWARD_REWRITES`) would leave those nodes reading the
old forward values, so the old forward would still run. This pass drops the recorded
backward, rewrites the forward, and derives the gradients again from the registry's vjp
rules (``g.gradients``), which gives the backward of the *rewritten* forward.

It runs only where the result provably equals what the tape computed: one ``backward()``
of a scalar loss seeded with ones, no hooks, no ``retain_grad``, no ``create_graph``, no
custom ``autograd.Function``, nothing outside the backward reading a value inside it
except the leaves' gradients, and the graph's own path from the leaves to the loss is
exactly the set of ops the tape walked (a ``detach()`` or a ``no_grad`` block makes them
differ: the graph keeps one Value across a detach, the tape does not). Otherwise the
recorded backward stays, unchanged.
"""
from __future__ import annotations

from ._rewrite import refresh_control, remove_nodes, replace_uses, toposort


def _forward_rewrites():
    from .batching import batch_class_losses, sum_slices
    from .reorder import relu_after_max_pool
    from .tables import fold_bias_into_tables, project_embedding_tables
    return (project_embedding_tables, fold_bias_into_tables, batch_class_losses, sum_slices,
            relu_after_max_pool)


def _safe(g, run) -> str | None:
    """Why re-deriving ``run`` could differ from the recorded backward (None: it cannot)."""
    from ..autodiff import grad_path
    from ...ops.registry import REGISTRY
    if not run.ok:
        return run.why
    info = getattr(g, "_grad_info", None)
    if info is not None and (info.cuts or info.opaque):
        # where the tape stopped is kept per node id, and a forward rewrite replaces nodes
        return "the step reads a detach()ed or .data alias (a forward rewrite could lose " \
               "where its gradient stops)"
    inside = {n.id for n in g.nodes if run.start <= n.id < run.end}
    made = {v.id for n in g.nodes if n.id in inside for v in n.outputs}
    grads = {gv.id for _, gv in run.grads}
    if any(v.id in made and v.id not in grads for n in g.nodes if n.id not in inside
           for v in n.inputs) or any(v.id in made and v.id not in grads for v in g.outputs):
        return "a value computed inside the backward is used outside it"
    path, _ = grad_path(g, [w for w, _ in run.grads], run.root)
    ops = {n.id for n in path
           if n.id not in inside and REGISTRY.get(n.op) is not None
           and REGISTRY[n.op].vjp is not None and any(v.dtype.kind == "f" for v in n.outputs)}
    if ops != run.tape:
        return "the graph's path from the parameters to the loss is not the tape's"
    # the same ops can be joined differently: a detach() between two time steps of an RNN
    # whose loss reads every step cuts an edge the graph still has
    edges = {(n.id, v.node.id) for n in path if n.id in ops
             for v in n.inputs if v.node is not None and v.node.id in ops}
    if edges != run.edges:
        return "the graph's path from the parameters to the loss is not the tape's"
    return None


def rederive_backward(g) -> int:
    """Rewrite the forward of a captured training step and derive its backward again; returns
    the number of forward rewrites made (0: the graph is unchanged)."""
    runs = getattr(g, "_backward_runs", None)
    g._backward_runs = None
    if not runs:
        g._rederive_why = "no backward() call was captured"
        return 0
    if len(runs) != 1:
        g._rederive_why = "several backward() calls in one step"
        return 0
    run = runs[0]
    why = g._rederive_why = _safe(g, run)
    if why is not None:
        return 0
    tracer = g._tracer
    examples = ({v.id: arr for arr, v, _, _ in tracer._by_array.values()}
                if tracer is not None else None)
    inside = {n.id for n in g.nodes if run.start <= n.id < run.end}
    # the rewrites count uses without the recorded backward (it is about to go) and leave
    # the graph as it is when nothing matches
    protect = {run.root.id} | {w.id for w, _ in run.grads}
    changed = sum(p(g, ignore=inside, protect=protect) for p in _forward_rewrites())
    if not changed:
        g._rederive_why = "no forward rewrite applies"
        return 0
    remove_nodes(g, inside)
    toposort(g)
    from ..autodiff import gradients
    wrt = [w for w, _ in run.grads]
    new = gradients(g, run.root, wrt, examples=examples)
    for (w, old), nv in zip(run.grads, new):
        if nv is None:
            raise RuntimeError(f"rederive_backward: no gradient for {w.label()} (a tensorlib "
                               "bug: the tape gave one)")
        replace_uses(g, old, nv)
    toposort(g)
    refresh_control(g)
    return changed
