"""Symbolic gradients on a Graph: ``g.gradients(loss, wrt)``.

The registry's ``vjp`` rules are written with tensorlib ops, so running them
while a tracer records into the same graph turns them into gradient nodes.
The rules read example values (shapes, saved inputs), so the forward part of
the graph is first run once on the example feeds kept from capture; the
gradient nodes themselves compute from the graph's Values, so the resulting
graph is correct for any feed.
"""
from __future__ import annotations

from ..autograd.mode import no_grad, state
from .ir import Graph, Value
from .tracer import CaptureError, Tracer


class _VjpNode:
    """What a vjp rule reads from a tape node, backed by graph example values."""

    def __init__(self, op, inputs, attrs, outs):
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self._outs = outs
        self.out_data = [o._data for o in outs]
        self.n_out = len(outs)
        self.out_meta = [(o._data.shape, o._data.dtype) for o in outs]
        self.versions = None

    def output(self, i: int = 0):
        return self._outs[i]

    @property
    def out(self):
        return self._outs[0]

    def zeros_for(self, i: int):
        from ..creation import zeros_like
        return zeros_like(self._outs[i])


def _reach_forward(g: Graph, start: set[int]) -> set[int]:
    seen = set(start)
    for n in g.nodes:
        if any(v.id in seen for v in n.inputs):
            seen.update(v.id for v in n.outputs)
    return seen


def grad_path(g: Graph, wrt_vals, loss_v: Value):
    """The nodes between ``wrt_vals`` and ``loss_v`` (in graph order), and the ids of the
    Values that depend on ``wrt_vals``."""
    fwd = _reach_forward(g, {v.id for v in wrt_vals})
    need: set[int] = {loss_v.id}
    path = []
    for n in reversed(g.nodes):
        if any(v.id in need for v in n.outputs) and n.op != "assign":
            if any(v.id in fwd for v in n.inputs):
                path.append(n)
            need.update(v.id for v in n.inputs if v.id in fwd)
    path.reverse()
    return path, fwd


def example_values(g: Graph, values, known: dict | None = None) -> list:
    """Arrays for ``values`` on the example feeds kept from capture. ``known`` (Value id ->
    array) holds values seen while tracing: only the nodes the others need run, so a random
    draw seen while tracing is not drawn again."""
    from .executor import _asarray, _kernel
    from .runtime import _random, _read_grad
    from .passes._rewrite import upstream
    known = dict(known or {})
    need = upstream(values, stop=known)
    feeds = getattr(g, "_examples", None)
    for n in g.nodes:
        if n.id not in need:
            continue
        if n.op == "placeholder":
            if feeds is None or len(feeds) != len(g.inputs):
                raise ValueError("gradients: this graph has no example inputs to derive "
                                 "gradient shapes from (build it with tl.capture/tl.function)")
            outs = (feeds[n.attrs["index"]],)
        elif n.op == "variable":
            owner = g.bindings[n][0]
            outs = ((_read_grad(owner, n.name) if n.attrs.get("slot") == "grad"
                     else owner._data),)
        elif n.op == "constant":
            outs = (n.attrs["value"],)
        elif n.op == "random":
            outs = (_random(g.bindings.get(n), n.attrs),)
        else:
            _, k = _kernel(n)
            out = k(*[known[v.id] for v in n.inputs], **n.attrs)
            outs = out if isinstance(out, tuple) else (_asarray(out),)
        known.update((v.id, a) for v, a in zip(n.outputs, outs))
    return [known[v.id] for v in values]


def gradients(g: Graph, loss, wrt, grad_loss=None, examples: dict | None = None
              ) -> list[Value | None]:
    """Add nodes computing d(loss)/d(w) for each w of ``wrt``; return their Values
    (None where the loss does not depend on w). ``examples`` (Value id -> array) are values
    already known for the example feeds (see :func:`example_values`)."""
    from .._tensor import _wrap
    from ..creation import ones_like
    from ..ops.registry import REGISTRY
    if state.tracer is not None:
        raise CaptureError("g.gradients cannot run inside an active capture")
    single = not isinstance(wrt, (list, tuple))
    wrt_vals = [g.value(w) for w in ([wrt] if single else wrt)]
    loss_v = g.value(loss)
    if loss_v.dtype.kind != "f":
        raise TypeError(f"gradients: the loss must be floating point, got {loss_v.dtype}")
    path, fwd = grad_path(g, wrt_vals, loss_v)
    values = {v.id: v for v in g.values}
    needed_vals = {v.id for n in path for v in n.inputs} | {v.id for n in path for v in n.outputs}
    needed_vals |= {v.id for v in wrt_vals} | {loss_v.id}
    fetch = [values[i] for i in sorted(needed_vals)]
    arrays = example_values(g, fetch, examples)
    tracer = Tracer(g)
    tensors = {}
    for v, a in zip(fetch, arrays):
        # rules skip inputs that do not require grad: mark those on the wrt->loss path
        t = _wrap(a, _device(v), v.id in fwd and v.dtype.kind == "f", None, 0)
        tensors[v.id] = t
        tracer.bind(t, v)
        tracer.dynamic.add(v.id)
    grads: dict[int, object] = {}
    state.tracer = tracer
    try:
        with no_grad():
            seed = tensors[loss_v.id]
            if grad_loss is None:
                if loss_v.shape != () and any(d != 1 for d in loss_v.shape):
                    raise ValueError(f"gradients: the loss has shape {loss_v.shape}; pass "
                                     "grad_loss for a non-scalar loss")
                gl = ones_like(seed)
            else:
                gl = grad_loss if hasattr(grad_loss, "_data") else tensors[g.value(grad_loss).id]
            grads[loss_v.id] = gl
            for n in reversed(path):
                gouts = [grads.get(v.id) for v in n.outputs]
                if all(x is None for x in gouts):
                    continue
                op = REGISTRY.get(n.op)
                if op is None:
                    raise CaptureError(f"gradients: node {n.id} ({n.op}) has no registry "
                                       "entry; take gradients before running graph passes")
                if op.vjp is None:
                    continue
                outs = [tensors[v.id] for v in n.outputs]
                gouts = [x if x is not None else ones_like(o) * 0 for x, o in zip(gouts, outs)]
                vn = _VjpNode(op, [tensors[v.id] for v in n.inputs], dict(n.attrs), outs)
                in_grads = op.vjp(vn, *gouts)
                for v, gi in zip(n.inputs, in_grads):
                    if gi is None or v.id not in fwd or v.dtype.kind != "f":
                        continue
                    cur = grads.get(v.id)
                    grads[v.id] = gi if cur is None else cur + gi
    finally:
        state.tracer = None
    out = [tracer.value_of(grads[v.id]) if v.id in grads else None for v in wrt_vals]
    g.invalidate()
    return out[0] if single else out


def _device(v: Value):
    from .._device import Device
    return Device(v.node.device)
