"""The backward engine: an iterative reverse walk of the tape."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._core import walk
from ..backends import root_buffer
from .mode import state


class AnomalyError(RuntimeError):
    pass



class PostAccumulateHook:
    """A leaf's hook that runs after its ``.grad`` is accumulated (kept in the leaf's hook
    list, which the engine reads in two phases)."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn


def _hook_name(hook) -> str:
    """The name PyTorch's hook errors give: ``__name__``, else a partial's function's, else
    the callable's class's."""
    name = getattr(hook, "__name__", None)
    if name is None:
        name = getattr(getattr(hook, "func", None), "__name__", None) or type(hook).__name__
    return name


def _check_hook_grad(hook, r, g, where: str = "", value: str = "a gradient"):
    """``r``, what ``hook`` returned in place of the gradient ``g``, if PyTorch would take
    it: a Tensor of ``g``'s shape, dtype, device and layout (broadcasting or casting it
    later would change the gradient silently, or fail deep inside backward). ``where`` and
    ``value`` say which hook and which of its values, for a module's hooks."""
    from .._tensor import Tensor
    name = f"hook {_hook_name(hook)!r}{where}"
    if not isinstance(r, Tensor):
        raise TypeError(f"expected Tensor, but {name} returned {type(r).__name__!r} as "
                        f"{value} (return None to keep it, or a Tensor to replace it)")
    if r._data.shape != g._data.shape:
        raise RuntimeError(f"{name} has changed the size of value: it returned {value} of "
                           f"shape {tuple(r._data.shape)} for one of shape "
                           f"{tuple(g._data.shape)}; return a tensor of that shape")
    if (r.dtype != g.dtype or r._device != g._device
            or getattr(r, "is_sparse", False) != getattr(g, "is_sparse", False)):
        def kind(t):
            return (f"{'sparse ' if getattr(t, 'is_sparse', False) else ''}{t.dtype} on "
                    f"{t._device}")
        raise RuntimeError(f"{name} has changed the type of value (was {kind(g)} got "
                           f"{kind(r)}): return {value} of the same dtype and device")
    return r


def _as_grad(root, grad, keyword: str = "gradient", index: int = 0):
    from .._tensor import Tensor, _wrap
    if grad is None:
        if root._data.size != 1:    # (not root.size: that builds a callable Size per call)
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs; this "
                               f"output has shape {root.shape}: pass {keyword}=")
        if root._data.dtype.kind == "c":    # (as PyTorch: a loss left complex is a mistake)
            raise RuntimeError("grad can be implicitly created only for real scalar outputs; "
                               "this output is complex: take .real or .abs() of the loss, "
                               f"or pass {keyword}=")
        if root._device.type == "cpu":
            return _wrap(np.ones(root._data.shape, root._data.dtype), root._device, False,
                         None, 0)
        from ..creation import ones_like
        return ones_like(root)
    cx = root._data.dtype.kind == "c"
    if not isinstance(grad, Tensor):
        from ..creation import tensor
        if not cx and isinstance(grad, (complex, np.generic, np.ndarray, list, tuple)) \
                and np.iscomplexobj(grad):
            _dtype_mismatch(keyword, np.asarray(grad).dtype, root.dtype)
        grad = tensor(grad, dtype=root.dtype, device=root.device)
    elif (grad.dtype.kind == "c") != cx:
        # as PyTorch: the real part of a complex cotangent (or a real one taken as complex)
        # would silently drop or invent the imaginary direction
        _dtype_mismatch(keyword, grad.dtype, root.dtype)
    if grad.shape != root.shape:
        # a ValueError and a RuntimeError: PyTorch raises the latter, older code caught the former
        from ..errors import ShapeError
        fn, given = (("grad", f"grad_outputs[{index}]") if keyword == "grad_outputs"
                     else ("backward", "gradient"))
        raise ShapeError(f"{fn}: Mismatch in shape: {given} has shape {tuple(grad.shape)} and "
                         f"output[{index}] has shape {tuple(root.shape)}; pass a {keyword} of "
                         "the output's shape")
    return grad


def _dtype_mismatch(keyword: str, got, out) -> None:
    name = "grad" if keyword == "grad_outputs" else "backward"
    raise RuntimeError(f"{name}: For complex Tensors, both grad_output and output are required "
                       f"to have the same dtype. Mismatch in dtype: the {keyword} has a dtype "
                       f"of {got} and the output has a dtype of {out} (both complex or both "
                       "real)")


def run_backward(roots, grads, *, retain_graph: bool, create_graph: bool,
                 inputs: Sequence | None = None, allow_unused: bool = False,
                 accumulates: bool | None = None):
    """Propagate ``grads`` from ``roots``. With ``inputs`` (tl.grad), return their gradients
    instead of accumulating into leaves."""
    node_targets: dict = {}
    results = None
    leaf_targets = None
    if inputs is not None:
        results = [None] * len(inputs)
        leaf_targets = set()
        for k, t in enumerate(inputs):
            if t._node is not None:
                node_targets.setdefault((t._node, t._idx), []).append(k)
            else:
                leaf_targets.add(id(t))

    prev_mode = state.grad_enabled
    state.grad_enabled = create_graph
    tracer = state.tracer
    # under capture the tracer notes what the walk does, so a graph pass can re-derive the
    # same gradients symbolically after rewriting the forward part
    if accumulates is None:
        accumulates = inputs is None
    run = (tracer.on_backward(roots, grads, create_graph=create_graph, inputs=inputs,
                              accumulates=accumulates) if tracer is not None else None)
    try:
        leaf_grads = walk(list(roots), list(grads), retain_graph, create_graph, node_targets,
                          results, _check_versions, _check_anomaly, _node_hooks, leaf_targets)
        if run is not None:
            tracer.on_backward_done(run, leaf_grads)
        # leaves last: hooks see the summed gradient, as AccumulateGrad does in PyTorch
        taken = _given_buffers(grads) if results is None else None
        wanted: dict = {}
        for k, x in enumerate(inputs or ()):
            wanted.setdefault(id(x), []).append(k)
        for t, g in leaf_grads.values():
            if results is not None and id(t) not in wanted:
                continue        # tl.grad: leaves it was not asked for keep their hooks idle
            if g._data.dtype != t._data.dtype:   # a float32 leaf gets a float32 gradient
                g = g.astype(t._data.dtype)
            hooks = t._hooks        # (None on almost every leaf: no work then)
            hooked = False
            if hooks:
                for h in tuple(hooks):      # (a hook may remove itself)
                    if type(h) is not PostAccumulateHook:
                        hooked = True
                        r = h(g)
                        if r is not None:
                            g = _check_hook_grad(h, r, g)
            if results is not None:
                for k in wanted[id(t)]:
                    results[k] = g
                continue
            if not create_graph:
                g = g.detach() if g._node is not None else g
            # a hook may have kept the gradient it saw, or returned a tensor of its own
            _accumulate(t, g, taken, create_graph, copy=hooked)
            if hooks:
                _post_accumulate(t)
    except Exception as e:
        if state.anomaly:
            _note_forward_trace(e)
        raise
    finally:
        state.grad_enabled = prev_mode
    if results is not None:
        for k, (t, r) in enumerate(zip(inputs, results)):
            if r is None and not allow_unused:
                raise RuntimeError(f"grad: input {k} (shape {t.shape}) was not used to compute "
                                   "the outputs; pass allow_unused=True to get None for it")
        return results
    return None


def _given_buffers(grads) -> dict:
    """The buffers a leaf's new ``.grad`` must not share (id -> buffer, kept alive): the
    caller's ``gradient=`` tensors, and each stored gradient as it is stored. A vjp may
    hand the same gradient to several inputs (add), or pass the caller's through."""
    return {id(b): b for b in (root_buffer(g._data) for g in grads if g is not None)}


def _accumulate(t, g, taken: dict, recorded: bool, copy: bool = False) -> None:
    """``t.grad = g`` or ``t.grad += g``, as PyTorch's AccumulateGrad: a first gradient is
    copied unless the leaf can own it (it shares memory with another leaf's or the caller's
    gradient, a hook saw it, or it is a broadcast view; a strided gradient of a contiguous
    leaf is stored contiguous), so in-place updates of ``.grad``
    (clipping, ``zero_()``, ``mul_()``) touch that gradient alone; a later one is added in
    place, so references to ``.grad`` see the sum. Recorded (``create_graph``) gradients
    are added out of place; under a trace (``tl.function``/``tl.capture``) the in-place add
    is a recorded ``add_``, so replays write into the same ``.grad`` tensor as eager does."""
    if t.grad is None:
        a = g._data
        base = root_buffer(a)
        if not g.is_contiguous() and t.is_contiguous():
            # the leaf's layout, as AccumulateGrad: a transposed use (x @ W.t()) gave a
            # transposed gradient, and W.grad.view(-1) must work (a fresh buffer: owned)
            g = g.contiguous()
            base = root_buffer(g._data)
        elif copy or id(base) in taken or not _writable(a) or (
                base is not a and state.tracer is not None):
            # (traced: a view of a larger result would make later in-place adds writes
            # into that result, which a graph holds as state of its own)
            g = g.clone()
            base = g._data
        taken[id(base)] = base
        t.grad = g
        return
    cur = t.grad
    # under a trace the in-place add must be an op the tracer sees (a raw buffer write
    # would leave the graph without it); a .grad that views a larger buffer (eager stored
    # a reshaped reduction) is replaced as before: the graph would hold that buffer as state
    tracing = state.tracer is not None
    if g.is_sparse and not cur.is_sparse:
        # dense .grad + sparse gradient: dense, as PyTorch (a scatter-add into the buffer
        # when it can be written, so references to .grad see the sum)
        if (recorded or tracing or cur._node is not None or cur._rg
                or not _writable(cur._data)):
            t.grad = cur + g
        else:
            cur.add_(g)
        return
    if (recorded or cur._node is not None or cur._rg or cur._data.shape != g._data.shape
            or cur._data.dtype != g._data.dtype or not _writable(cur._data)
            or (tracing and (cur.is_sparse or g.is_sparse
                             or root_buffer(cur._data) is not cur._data))):
        t.grad = cur + g
        return
    if tracing:
        cur.add_(g)
        return
    cur._data += g._data
    cur._version[0] += 1


def _writable(a) -> bool:
    """Whether an in-place add into ``a`` writes each element once: not a read-only NumPy
    view, and no zero stride over a dim longer than 1 (a broadcast; CuPy's are writable)."""
    if not getattr(a.flags, "writeable", True):
        return False
    return all(s != 0 or d <= 1 for s, d in zip(a.strides, a.shape))


def _node_hooks(node, gouts, node_targets, results, create_graph):
    attrs = node.attrs
    if attrs and "ctx" in attrs:
        # a custom Function's node: which outputs got no gradient, before the walk fills
        # in zeros for them (for ctx.set_materialize_grads(False))
        ctx = attrs["ctx"]
        if getattr(ctx, "_materialize", True) is False:
            ctx._absent = {i for i, g in enumerate(gouts) if g is None}
    for i in range(node.n_out):
        g = gouts[i]
        if g is None:
            continue
        if node.hooks and i in node.hooks:
            for h in node.hooks[i]:
                r = h(g)
                if r is not None:
                    g = _check_hook_grad(h, r, g)
            gouts[i] = g
        if node.retained and i in node.retained:
            t = node.retained[i]()
            if t is not None:       # its own copy: g flows on, and may become a leaf's .grad
                mine = g if create_graph else g.detach()
                # adds up over backward calls, as a leaf's .grad does (and PyTorch's)
                t.grad = (mine if create_graph else mine.clone()) if t.grad is None \
                    else t.grad + mine
        for k in node_targets.get((node, i), ()):
            results[k] = g


def _check_versions(node):
    if node.versions is None:
        return
    for box, v in node.versions:
        if box[0] != v:
            e = RuntimeError(
                f"{node!r}: a tensor saved for the backward pass was modified by an in-place "
                f"operation (version {box[0]}, expected {v}). Its gradient would be wrong: "
                "use an out-of-place operation (x = x + y instead of x += y), or .clone() the "
                "tensor first." + _trace_text(node))
            e._tl_forward_trace = True
            raise e


def _trace_text(node) -> str:
    """PyTorch's anomaly-mode report: where ``node`` was made (empty outside anomaly mode,
    or for a node recorded before it was turned on)."""
    if not state.anomaly or not node.trace:
        return ""
    return (f"\nError detected in {node.name}Backward. Traceback of forward call that caused "
            f"the error:\n{''.join(node.trace)}")


def _note_forward_trace(e: BaseException) -> None:
    """Add the forward trace of the node whose backward raised ``e`` to its notes (the
    walk does not say which node was running: the outermost traceback frame with a traced
    tape node as its ``node`` is the backward rule the walk called)."""
    from .._core import Node
    if isinstance(e, AnomalyError) or getattr(e, "_tl_forward_trace", False):
        return
    tb = e.__traceback__
    while tb is not None:
        node = tb.tb_frame.f_locals.get("node")
        if isinstance(node, Node) and node.trace:
            text = _trace_text(node)
            if text:
                e.add_note(text.lstrip("\n"))
                try:
                    e._tl_forward_trace = True      # (a nested backward noted it first)
                except AttributeError:
                    pass
            return
        tb = tb.tb_next


def _check_anomaly(node, grads):
    """PyTorch's rule: a backward result with a NaN raises (inf is a valid gradient:
    ``sqrt`` at 0, ``x / 0``); nothing is checked under ``detect_anomaly(check_nan=False)``."""
    from .anomaly import _local
    if not _local.check_nan:
        return
    for i, g in enumerate(grads):
        if g is None:
            continue
        d = g._host()
        if d.dtype.kind == "f" and np.isnan(d).any():
            where = "".join(node.trace or ["(no forward trace recorded)\n"])
            raise AnomalyError(
                f"Function '{node.name}Backward' returned nan values in its {i}th output "
                f"({node!r}: its gradient for input {i}). The forward call that created this "
                f"node:\n{where}")


def backward(root=None, gradient=None, *, retain_graph=None, create_graph=False,
             inputs=None, grad_tensors=None, tensors=None) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad, as
    ``root.backward(gradient)``.

    ``root`` is a tensor or a sequence of tensors (their gradients add up, as
    ``torch.autograd.backward``), with ``gradient`` one tensor or a sequence to match; a
    gradient may be left out only for a one-element root. ``retain_graph`` defaults to
    ``create_graph``. ``inputs``: accumulate into these tensors' ``.grad`` only (leaves or
    not), as PyTorch's ``backward(inputs=...)``. ``grad_tensors`` is
    ``torch.autograd.backward``'s name for ``gradient``, and ``tensors`` its name for
    ``root``."""
    from ..ops._util import one_of
    root = one_of("backward", "root", root, "tensors", tensors)
    if root is None:
        raise TypeError("backward: missing the tensors to differentiate (tensors=)")
    gradient = one_of("backward", "gradient", gradient, "grad_tensors", grad_tensors)
    from ..vmap.levels import ACTIVE
    if ACTIVE:
        # (the leaves' .grad would take every example's gradient summed, or fail on the
        # batched values: PyTorch refuses it too)
        raise RuntimeError("backward() called inside a vmap'd function (tl.func.vmap): use "
                           "tl.func.grad / tl.func.vjp (or tl.autograd.grad) inside it, or "
                           "call backward() outside the transform")
    roots = list(root) if isinstance(root, (list, tuple)) else [root]
    if gradient is None:
        grads = [None] * len(roots)
    elif isinstance(gradient, (list, tuple)) and isinstance(root, (list, tuple)):
        grads = list(gradient)
    else:
        grads = [gradient]
    if len(grads) != len(roots):
        raise ValueError(f"backward: {len(roots)} tensors but {len(grads)} gradients")
    for r in roots:
        if not r._rg:
            raise RuntimeError("backward(): this tensor does not require grad and has no "
                               "grad_fn (did you forget requires_grad=True, or run it under "
                               "no_grad?)")
    gs = [_as_grad(r, g, "gradient", i) for i, (r, g) in enumerate(zip(roots, grads))]
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is None:
        run_backward(roots, gs, retain_graph=retain_graph, create_graph=create_graph)
        return
    from .._tensor import Tensor
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if not ins:
        raise ValueError("backward: inputs= is empty; leave it out to reach every leaf")
    for k, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t._rg:
            raise RuntimeError(f"backward: inputs[{k}] does not require grad")
    got = run_backward(roots, gs, retain_graph=retain_graph, create_graph=create_graph,
                       inputs=ins, allow_unused=True, accumulates=True)
    taken = _given_buffers(gs)
    for t, g in zip(ins, got):
        node = t._node
        if g is None or (node is not None and node.retained and t._idx in node.retained):
            continue        # (a retained non-leaf gradient was added during the walk)
        if g._data.dtype != t._data.dtype:
            g = g.astype(t._data.dtype)
        _accumulate(t, g if create_graph else g.detach(), taken, create_graph)
        _post_accumulate(t)


def _post_accumulate(t) -> None:
    if t._hooks:
        for h in list(t._hooks):
            if type(h) is PostAccumulateHook:
                r = h.fn(t)
                if r is not None:
                    # as PyTorch: .grad is the place to change (in place); a result is refused
                    from .._tensor import Tensor
                    raise (RuntimeError if isinstance(r, Tensor) else TypeError)(
                        f"post accumulate grad hook {_hook_name(h.fn)!r} returned "
                        f"{type(r).__name__!r}; Tensor post accumulate grad hooks should "
                        "return None (change t.grad in place instead)")


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False,
         materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated).
    An input no gradient reaches raises, or gives None with ``allow_unused``, or zeros
    with ``materialize_grads`` (as PyTorch). With ``is_grads_batched`` the first dim of
    each of ``grad_outputs`` is a batch of cotangents, and each result has that batch dim
    in front (one vector-Jacobian product per row; rows of a Jacobian from an identity).
    ``only_inputs`` is accepted and ignored, as PyTorch's (deprecated there).

    >>> (gx,) = tl.grad((x ** 3).sum(), [x], create_graph=True)
    >>> (ggx,) = tl.grad(gx.sum(), [x])     # second derivative
    """
    from .._tensor import Tensor
    if is_grads_batched:
        return _batched_grad(outputs, inputs, grad_outputs, retain_graph, create_graph,
                             allow_unused, materialize_grads)
    single = isinstance(outputs, Tensor)
    outs = [outputs] if single else list(outputs)
    single_in = isinstance(inputs, Tensor)
    ins = [inputs] if single_in else list(inputs)
    if not ins:
        raise RuntimeError("grad: `inputs` cannot be empty (name the tensors to differentiate "
                         "with respect to; for every leaf use .backward())")
    for t in ins:
        if not t._rg:
            raise RuntimeError("grad: one of the inputs does not require grad")
    if grad_outputs is None:
        gos = [None] * len(outs)
    elif isinstance(grad_outputs, Tensor):
        gos = [grad_outputs]
    else:
        gos = list(grad_outputs)
    for o in outs:
        if not o._rg:
            raise RuntimeError("grad: one of the outputs does not require grad (it does not "
                               "depend on any input that requires grad)")
    gs = [_as_grad(o, g, "grad_outputs", i) for i, (o, g) in enumerate(zip(outs, gos))]
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    elif materialize_grads and not allow_unused:
        raise ValueError("grad: materialize_grads=True needs allow_unused (None or True)")
    res = run_backward(outs, gs, retain_graph=retain_graph, create_graph=create_graph,
                       inputs=ins, allow_unused=allow_unused)
    if materialize_grads:
        from ..creation import zeros_like
        res = [zeros_like(t) if r is None else r for t, r in zip(ins, res)]
    return tuple(res)


def _batched_grad(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused,
                  materialize_grads):
    """``grad(..., is_grads_batched=True)``: one vector-Jacobian product per row of the
    cotangents, stacked (the tape is kept until the last row)."""
    from .._tensor import Tensor
    from ..ops.shape import stack
    if grad_outputs is None:
        raise ValueError("grad: is_grads_batched=True needs grad_outputs (a batch of "
                         "cotangents in their first dim)")
    gos = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs)
    sizes = {g.shape[0] if g.ndim else None for g in gos}
    if len(sizes) != 1 or None in sizes:
        raise ValueError("grad: with is_grads_batched=True every grad_outputs tensor needs the "
                         f"same batch size in its first dim, got shapes "
                         f"{[tuple(g.shape) for g in gos]}")
    (n,) = sizes
    rows = []
    for b in range(n):
        last = b == n - 1
        rows.append(grad(outputs, inputs, [g[b] for g in gos],
                         retain_graph=retain_graph if last else True,
                         create_graph=create_graph, allow_unused=allow_unused,
                         materialize_grads=materialize_grads))
    return tuple(None if any(r[i] is None for r in rows) else stack([r[i] for r in rows])
                 for i in range(len(rows[0])))
