"""Symbolic gradients on a Graph: ``g.gradients(loss, wrt)``.

The registry's ``vjp`` rules are written with tensorlib ops, so running them
while a tracer records into the same graph turns them into gradient nodes.
The rules read example values (shapes, saved inputs), so the forward part of
the graph is first run once on the example feeds kept from capture; the
gradient nodes themselves compute from the graph's Values, so the resulting
graph is correct for any feed of the traced shapes. A loss that depends on an
input with None dims is refused: the rules read sizes from the example values,
so the gradient would hold the traced sizes (capture per shape to differentiate).

Gradients stop where eager autograd stopped while tracing (``tracer.GradInfo``):
ops recorded under ``no_grad`` or without a vjp pass none, nor does an input read
through a ``detach()``ed alias (the graph keeps one Value for a tensor and its
aliases). A Value that did not require grad while tracing (a placeholder) is
differentiated as if it had.

First-order gradients use the rules' fast first-order ops (``linear_grad``,
``cross_entropy_grad``: no vjp of their own). When a later call differentiates
through the nodes of an earlier one (a Hessian-vector product), the earlier
call is derived again with grad mode on, so its rules emit differentiable ops
(as ``tl.grad(create_graph=True)`` does), and its gradient Values are computed
by those from then on.
"""
from __future__ import annotations

from ..autograd.complex_grad import node_vjp
from ..autograd.mode import enable_grad, no_grad, state
from .ir import Graph, Value
from .tracer import CaptureError, Tracer, grad_info


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


def _reach_forward(g: Graph, start: set[int], stops=(), cuts=()) -> set[int]:
    seen = set(start)
    for n in g.nodes:
        if n.op == "random":
            continue            # its inputs give only the draw's size
        if n.id not in stops and any(v.id in seen and (n.id, i) not in cuts
                                     for i, v in enumerate(n.inputs)):
            seen.update(v.id for v in n.outputs)
    return seen


def grad_path(g: Graph, wrt_vals, loss_v: Value, stops=(), cuts=()):
    """The nodes between ``wrt_vals`` and ``loss_v`` (in graph order), and the ids of the
    Values that depend on ``wrt_vals``. ``stops``: ids of nodes that pass no gradient;
    ``cuts``: ``(node id, input position)`` edges that pass none (``tracer.GradInfo``)."""
    fwd = _reach_forward(g, {v.id for v in wrt_vals}, stops, cuts)
    need: set[int] = {loss_v.id}
    path = []
    for n in reversed(g.nodes):
        if n.op == "assign" or n.id in stops or not any(v.id in need for v in n.outputs):
            continue
        ins = [v.id for i, v in enumerate(n.inputs) if v.id in fwd and (n.id, i) not in cuts]
        if ins:
            path.append(n)
            need.update(ins)
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
            outs = (_random(g.bindings.get(n), n.attrs,
                             *[known[v.id] for v in n.inputs]),)
        else:
            _, k = _kernel(n)
            out = k(*[known[v.id] for v in n.inputs], **n.attrs)
            outs = out if isinstance(out, tuple) else (_asarray(out),)
        known.update((v.id, a) for v, a in zip(n.outputs, outs))
    return [known[v.id] for v in values]


class _Call:
    """A first-order :func:`gradients` call (fast first-order ops, without vjp): what it
    takes to derive it again with differentiable ops (:func:`_derive_again`)."""

    __slots__ = ("loss", "wrt", "grad_loss", "outs", "nodes")

    def __init__(self, loss, wrt, grad_loss, outs, nodes):
        self.loss, self.wrt, self.grad_loss = loss, wrt, grad_loss
        self.outs, self.nodes = outs, nodes


def gradients(g: Graph, loss, wrt, grad_loss=None, examples: dict | None = None,
              create_graph: bool = False) -> list[Value | None]:
    """Add nodes computing d(loss)/d(w) for each w of ``wrt``; return their Values
    (None where no gradient reaches w). ``examples`` (Value id -> array) are values
    already known for the example feeds (see :func:`example_values`); passes.rederive
    gives them for a captured training step, which is replayed only at its traced shapes.
    ``create_graph``: the rules run with grad mode on and emit differentiable ops (as
    ``tl.grad(create_graph=True)``); otherwise they emit fast first-order ops, and a later
    call that differentiates through them derives this one again that way."""
    from .._tensor import _wrap
    from ..creation import ones_like
    from ..ops.registry import REGISTRY
    if state.tracer is not None:
        raise CaptureError("g.gradients cannot run inside an active capture")
    single = not isinstance(wrt, (list, tuple))
    wrt_vals = [g.value(w) for w in ([wrt] if single else wrt)]
    loss_v = g.value(loss)
    if loss_v.dtype.kind != "f":
        hint = (" (a complex loss has no gradient, as in PyTorch: take its .real or .abs())"
                if loss_v.dtype.kind == "c" else "")
        raise TypeError(f"gradients: the loss must be floating point, got {loss_v.dtype}"
                        f"{hint}")
    gl_v = (g.value(grad_loss) if grad_loss is not None and not hasattr(grad_loss, "_data")
            else None)
    if examples is None:
        _refuse_none_dims(g, loss_v)
    _derive_again(g, wrt_vals, loss_v, {v.id for v in wrt_vals} | {loss_v.id}
                  | ({gl_v.id} if gl_v is not None else set()))
    info = grad_info(g)
    stops, cuts = info.stops, info.cut_edges(g)
    if info.opaque:
        _refuse_opaque(g, info, wrt_vals, loss_v, stops, cuts)
    path, fwd = grad_path(g, wrt_vals, loss_v, stops, cuts)
    values = {v.id: v for v in g.values}
    needed_vals = {v.id for n in path for v in n.inputs} | {v.id for n in path for v in n.outputs}
    needed_vals |= {v.id for v in wrt_vals} | {loss_v.id}
    if gl_v is not None:
        needed_vals.add(gl_v.id)
    fetch = [values[i] for i in sorted(needed_vals)]
    arrays = example_values(g, fetch, examples)
    tracer = Tracer(g, derived=True)
    tensors = {}
    bound: set[int] = set()
    for v, a in zip(fetch, arrays):
        if id(a) in bound:          # one array for two Values (an op returned its input)
            a = a.copy()
        bound.add(id(a))
        # rules skip inputs that do not require grad: mark those on the wrt->loss path
        t = _wrap(a, _device(v), v.id in fwd and v.dtype.kind in "fc", None, 0)
        tensors[v.id] = t
        tracer.bind(t, v)
        tracer.dynamic.add(v.id)
    grads: dict[int, object] = {}
    start = g._next_node
    state.tracer = tracer
    try:
        with enable_grad() if create_graph else no_grad():
            seed = tensors[loss_v.id]
            if grad_loss is None:
                if loss_v.shape != () and any(d != 1 for d in loss_v.shape):
                    raise ValueError(f"gradients: the loss has shape {loss_v.shape}; pass "
                                     "grad_loss for a non-scalar loss")
                gl = ones_like(seed)
            else:
                gl = grad_loss if gl_v is None else tensors[gl_v.id]
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
                    raise CaptureError(
                        f"gradients: node {n.id} ({n.op}) lies on the path from "
                        f"{_names(wrt_vals)} to the loss, and op {n.op!r} has no gradient "
                        "rule (vjp), so the gradient through it is unknown. Take gradients "
                        "before adding such nodes or running graph passes.")
                outs = [tensors[v.id] for v in n.outputs]
                gouts = [x if x is not None else ones_like(o) * 0 for x, o in zip(gouts, outs)]
                # an input the tape did not differentiate (detach(), a tensor that did not
                # require grad) is read as a constant, as the tape's node read it
                ins = [tensors[v.id] if (n.id, i) not in cuts else tensors[v.id].detach()
                       for i, v in enumerate(n.inputs)]
                vn = _VjpNode(op, ins, dict(n.attrs), outs)
                # the rule's nodes go where n goes (colocate_gradients_with_ops)
                tracer.colocate_with = n
                try:
                    # complex inputs: the eager engine's rule (conj(vjp(conj(g))), ...)
                    in_grads = node_vjp(op, vn, vn, gouts)
                finally:
                    tracer.colocate_with = None
                for i, (v, gi) in enumerate(zip(n.inputs, in_grads)):
                    if (gi is None or v.id not in fwd or v.dtype.kind not in "fc"
                            or (n.id, i) in cuts):
                        continue
                    cur = grads.get(v.id)
                    grads[v.id] = gi if cur is None else cur + gi
    finally:
        state.tracer = None
    out = [tracer.value_of(grads[v.id]) if v.id in grads else None for v in wrt_vals]
    tracer.release()
    made = {n.id for n in g.nodes if n.id >= start}
    if not create_graph and made:
        g.__dict__.setdefault("_grad_calls", []).append(
            _Call(loss_v, wrt_vals, gl_v if gl_v is not None else grad_loss, out, made))
    g.invalidate()
    return out[0] if single else out


def _names(vals) -> str:
    return ", ".join(v.label() for v in vals)


def _refuse_none_dims(g: Graph, loss_v: Value) -> None:
    """The vjp rules read sizes from the example feeds: a gradient of a loss that depends on
    an input with None dims would hold the traced sizes and be wrong for other sizes."""
    dyn = [v for v in g.inputs if any(d is None for d in v.shape)]
    if not dyn:
        return
    from .passes._rewrite import upstream
    up = upstream([loss_v])
    for v in dyn:
        if v.node.id in up:
            ex = getattr(g, "_examples", None)
            k = v.node.attrs.get("index", 0)
            traced = (f" (traced at {tuple(ex[k].shape)})"
                      if ex is not None and k < len(ex) else "")
            raise ValueError(
                f"gradients: the loss depends on input {v.label()} of shape "
                f"{v.type_str()}{traced}, whose None dims (input_signature / input_shapes "
                "with None) the gradient cannot follow: the gradient ops would hold the "
                "traced sizes and give wrong gradients for other sizes. Capture per shape "
                "to take gradients: tl.capture without input_shapes (or tl.function without "
                "None dims, which traces once per input shape), one graph per input shape.")


def _refuse_opaque(g: Graph, info, wrt_vals, loss_v: Value, stops, cuts) -> None:
    """A tensor made by a custom autograd.Function carries its gradient through the
    Function's backward, which the graph does not have (it holds the forward's ops, run
    under no_grad): refuse where that gradient would reach ``wrt_vals``."""
    reach = _reach_forward(g, {v.id for v in wrt_vals})
    need = {loss_v.id}
    for n in reversed(g.nodes):
        if n.op == "assign" or n.id in stops or not any(v.id in need for v in n.outputs):
            continue
        for i, v in enumerate(n.inputs):
            if (n.id, i) in cuts:
                continue
            name = info.opaque.get((n.id, i))
            if name is not None and v.id in reach:
                raise CaptureError(
                    f"gradients: the loss depends on {_names(wrt_vals)} through the output "
                    f"of a custom autograd.Function ({name}): the graph holds the ops of its "
                    "forward (run under no_grad), not its backward, so it cannot derive the "
                    "gradient the tape gives. Compute the gradient inside the capture "
                    "instead (loss.backward() or tl.grad in the captured code).")
            need.add(v.id)


def _derive_again(g: Graph, wrt_vals, loss_v: Value, keep: set[int]) -> None:
    """Earlier first-order calls whose nodes lie between ``wrt_vals`` and ``loss_v``: derive
    them again with differentiable ops, which then compute their gradient Values."""
    while getattr(g, "_grad_calls", None):
        path, _ = grad_path(g, wrt_vals, loss_v)
        on = {n.id for n in path}
        call = next((c for c in g._grad_calls if c.nodes & on), None)
        if call is None:
            return
        _make_differentiable(g, call, keep)


def _make_differentiable(g: Graph, call: _Call, keep: set[int]) -> None:
    from .passes._rewrite import remove_nodes, toposort
    g._grad_calls.remove(call)
    start = g._next_node
    new = gradients(g, call.loss, list(call.wrt), call.grad_loss, create_graph=True)
    made = {n.id for n in g.nodes if n.id >= start}
    done: set[int] = set()
    for old, nv in zip(call.outs, new):
        if (old is None or nv is None or old.id in done or old.node.id not in call.nodes
                or nv.node.id not in made):
            continue
        done.add(old.id)
        # the Value the caller holds is computed by the new nodes from now on
        on, oi, nn, ni = old.node, old.index, nv.node, nv.index
        nn.outputs[ni], old.node, old.index = old, nn, ni
        on.outputs[oi], nv.node, nv.index = nv, on, oi
        old.shape, old.dtype = nv.shape, nv.dtype
        for n in g.nodes:
            if n.id in made and any(v is nv for v in n.inputs):
                n.inputs = [old if v is nv else v for v in n.inputs]
    toposort(g)
    # drop the old nodes (and new ones) nothing reads any more
    used = {v.id for v in g.outputs} | keep | {v.id for v in call.outs if v is not None}
    for c in getattr(g, "_grad_calls", ()):
        used |= {v.id for v in (c.loss, *c.wrt, *c.outs) if v is not None}
        if isinstance(c.grad_loss, Value):
            used.add(c.grad_loss.id)
    cand = call.nodes | made
    dead = set()
    for n in reversed(g.nodes):
        if n.id in cand and not any(v.id in used for v in n.outputs):
            dead.add(n.id)
            g.bindings.pop(n, None)
        else:
            used.update(v.id for v in n.inputs)
    remove_nodes(g, dead)


def _device(v: Value):
    from .._device import Device
    return Device(v.node.device)
