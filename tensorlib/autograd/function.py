"""Custom differentiable ops: ``tl.autograd.Function``."""
from __future__ import annotations

from typing import Any

from .mode import no_grad, state
from .node import Node


class Context:
    """What ``forward`` hands to ``backward``: saved tensors and any attributes."""

    def __init__(self):
        self._saved = ()
        self._versions = ()
        self._non_diff: set[int] = set()
        self._node = None       # the op's tape node, while its backward runs
        self._dirty: set[int] = set()
        self._materialize = True
        self._absent: set[int] = set()  # outputs that got no gradient (set by the engine)
        self._unpack = None         # saved_tensors_hooks' unpack, when they packed _saved
        self._saved_fwd: tuple = ()     # save_for_forward's, read by jvp as saved_tensors
        self._in_jvp = False
        self.needs_input_grad: tuple[bool, ...] = ()

    def set_materialize_grads(self, value: bool) -> None:
        """With False, ``backward`` receives None (not zeros) for an output that got no
        gradient, as PyTorch's: call it in ``forward`` and handle None in ``backward``.

        >>> def forward(ctx, x):
        ...     ctx.set_materialize_grads(False)
        ...     return x.clone(), x.clone()
        """
        self._materialize = bool(value)

    def mark_dirty(self, *tensors) -> None:
        """Inputs that ``forward`` changed in place (and returns): they come out as the same
        tensor objects, with this op as their history, as PyTorch's ``mark_dirty``."""
        self._dirty = {id(t) for t in tensors}

    def mark_non_differentiable(self, *tensors) -> None:
        """Outputs of ``forward`` that get no gradient (indices, masks): they come out with
        ``requires_grad=False`` and ``backward`` receives zeros for them."""
        self._non_diff.update(id(t) for t in tensors)

    def save_for_backward(self, *tensors) -> None:
        """Keep ``tensors`` (or None) for ``backward``, read back as ``ctx.saved_tensors``
        (checked then for in-place changes made after saving)."""
        from .._tensor import Tensor
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save variables, but argument {i} "
                                f"is of type {type(t).__name__}")
        self._saved = tensors
        self._versions = tuple((t._version, t._version[0]) if t is not None else None
                               for t in tensors)

    def save_for_forward(self, *tensors) -> None:
        """Keep ``tensors`` (or None) for ``jvp``, read back there as ``ctx.saved_tensors``
        (PyTorch's forward-mode counterpart of ``save_for_backward``)."""
        from .._tensor import Tensor
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_forward expects all arguments to be tensors or None, "
                                f"but argument {i} is of type {type(t).__name__}")
        self._saved_fwd = tensors

    @property
    def saved_tensors(self) -> tuple:
        if self._in_jvp:
            return self._saved_fwd
        for v in self._versions:
            if v is not None and v[0][0] != v[1]:
                raise RuntimeError("a tensor saved with save_for_backward was modified in place "
                                   "after it was saved; its gradient would be wrong")
        if self._unpack is not None:
            from .graph import unpack_checked
            return tuple(unpack_checked(self._unpack, *t) if type(t) is tuple else t
                         for t in self._saved)
        return tuple(t.rebuild(self._node) if isinstance(t, _SavedOutput) else t
                     for t in self._saved)

    def _pack_saved(self, outputs: dict) -> None:
        """Run ``saved_tensors_hooks``' pack on the saved tensors (an output saved for
        backward as the output tensor itself, with its history): ``_saved`` then keeps
        (packed, (shape, dtype)) pairs, unpacked on each ``saved_tensors`` read."""
        from .graph import current_hooks
        hooks = current_hooks() if any(t is not None for t in self._saved) else None
        if hooks is None:
            return
        pack, self._unpack = hooks
        saved = []
        for t in self._saved:
            if isinstance(t, _SavedOutput):
                t = outputs[t.idx]
            saved.append(None if t is None else (pack(t), (t._data.shape, t._data.dtype)))
        self._saved = tuple(saved)


class _SavedOutput:
    """An output of the Function saved for its backward, kept without its history (the
    history holds the context: keeping the output would make a reference cycle that keeps
    the graph alive until the cyclic collector runs); ``rebuild`` gives it back with that
    history while the backward runs, so grad of grad goes through it."""

    __slots__ = ("data", "idx")

    def __init__(self, data, idx: int):
        self.data, self.idx = data, idx

    def rebuild(self, node):
        if node is None:
            return self.data
        t = self.data.detach()
        t._node, t._idx, t._rg = node, self.idx, True
        return t


class _FunctionNodeName(str):
    """A custom Function node's name; called, PyTorch's ``grad_fn.name()``
    (``"<Name>Backward"``, no ``0`` suffix for custom Functions)."""

    __slots__ = ("full",)

    def __call__(self) -> str:
        return self.full


class _FunctionNode(Node):
    """Base of the per-Function node classes (see ``Function._node_class``)."""

    __slots__ = ()

    @property
    def name(self):
        n = _FunctionNodeName(Node.name.__get__(self))
        n.full = type(self).__name__
        return n


class Function:
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)``; call
    ``MyFn.apply(*args)``. ``backward`` returns one gradient (or None) per argument of
    ``forward``; write it with tensorlib ops and grad-of-grad works through it. PyTorch 2's
    form works too: ``forward(*args)`` without ``ctx`` plus
    ``setup_context(ctx, inputs, output)``. ``forward`` may return non-tensors beside the
    tensors (``backward`` gets None for them); a gradient of a shape its argument broadcasts
    to is summed down to the argument's shape, as in PyTorch.

    >>> class Exp(tl.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         y = x.exp(); ctx.save_for_backward(y); return y
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (y,) = ctx.saved_tensors; return g * y

    Under ``tl.vmap`` (``tl.func.vmap``) ``forward`` runs on the batched tensors, as with
    PyTorch's ``generate_vmap_rule = True`` (tensorlib does this also when the flag is
    unset); a ``vmap(info, in_dims, *args)`` staticmethod, as PyTorch's, is called instead
    with the whole batch (``info.batch_size``; ``in_dims`` the batch dim of each argument,
    None where unbatched) and returns ``(output, out_dims)``: the way to vmap a forward that
    reads values (NumPy). Forward-mode AD (``forward_ad``, ``tl.func.jvp``) calls a ``jvp
    (ctx, *tangents)`` staticmethod when the class has one, as PyTorch: ``forward`` then runs
    without tangents, ``jvp`` gets one tangent per argument (zeros for a tensor without one,
    None for a non-tensor) and returns one per output, reading ``ctx.save_for_forward``'s
    tensors as ``ctx.saved_tensors``; without ``jvp``, tangents follow the ops of
    ``forward``. An output that is a view of an input (``x.view(-1)``, ``x[0]``,
    an input returned as is) shares its memory and version; changing it in place with
    autograd history raises, as in PyTorch (``.clone()`` it first). Capture (``tl.function``,
    ONNX export) records the ops of ``forward``: a forward that leaves tensorlib (NumPy)
    cannot be captured; register it as an op instead (``docs/extending.md``).
    """

    _opdef = None
    generate_vmap_rule: bool = False

    @staticmethod
    def forward(ctx: Context, *args: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def setup_context(ctx: Context, inputs: tuple, output: Any) -> None:
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *grads: Any) -> Any:
        raise NotImplementedError(_NO_BACKWARD)

    # PyTorch's other name for backward: a subclass defines one of the two
    vjp = backward

    @staticmethod
    def jvp(ctx: Context, *tangents: Any) -> Any:
        """Forward-mode rule (optional): one tangent per output from one per argument."""
        raise NotImplementedError

    @staticmethod
    def vmap(info: VmapInfo, in_dims: tuple, *args: Any) -> tuple:
        """Batching rule (PyTorch's): ``args`` hold the whole batch, at ``in_dims``; return
        ``(output, out_dims)``. Override it to make a NumPy-backed forward vmappable."""
        raise NotImplementedError

    @classmethod
    def _vmap_rule(cls):
        """The class's own ``vmap`` staticmethod, or None (then forward runs batched)."""
        has_rule = cls.vmap is not Function.vmap
        if has_rule and cls.generate_vmap_rule:
            raise RuntimeError(f"{cls.__name__}: to use an autograd.Function with vmap, either "
                               "override the vmap staticmethod or set generate_vmap_rule=True, "
                               "not both")
        return cls.vmap if has_rule else None

    @classmethod
    def _backward_fn(cls):
        has_bw = cls.backward is not Function.backward
        has_vjp = cls.vjp is not Function.vjp
        if has_bw and has_vjp:
            raise RuntimeError("Implementing both 'backward' and 'vjp' for a custom Function "
                               "is not allowed. You should only implement one of them.")
        return cls.vjp if has_vjp else cls.backward

    @classmethod
    def _op(cls):
        from ..ops.registry import OpDef
        if cls.__dict__.get("_opdef") is None:
            def vjp(node, *grads):
                ctx = node.attrs["ctx"]
                full = [None] * node.attrs["n_outs"]    # None for the non-tensor outputs
                absent = ctx._absent if not ctx._materialize else ()
                for k, i in enumerate(node.attrs["out_positions"]):
                    full[i] = None if k in absent else grads[k]
                backward = cls._backward_fn()
                ctx._node = node
                try:
                    res = backward(ctx, *full)
                finally:
                    ctx._node = None
                if not isinstance(res, tuple):
                    res = (res,)
                tensor_pos, n_args = node.attrs["positions"], node.attrs["n_args"]
                # extra trailing Nones are allowed (PyTorch too); anything else is a bug in
                # backward that would otherwise pass unnoticed
                if len(res) < n_args or any(r is not None for r in res[n_args:]):
                    raise RuntimeError(f"{cls.__name__}.backward returned {len(res)} gradients, "
                                       f"expected {n_args} (one per forward argument)")
                for i, r in enumerate(res[:n_args]):
                    if r is not None and i not in tensor_pos:
                        raise RuntimeError(
                            f"{cls.__name__}.backward returned a gradient for argument {i}, "
                            "which is not a tensor; return None there")
                return tuple(_fit(cls, p, res[p], x) for p, x in zip(tensor_pos, node.inputs))
            # never registered: a user Function is not part of the global registry
            cls._opdef = OpDef(cls.__name__, kernels={"cpu": _no_kernel}, vjp=vjp, saves=False)
        return cls._opdef

    @classmethod
    def _node_class(cls) -> type:
        """The class of this Function's tape nodes, named ``<Name>Backward`` as PyTorch's
        (tools label graphs by ``type(t.grad_fn).__name__``)."""
        node_cls = cls.__dict__.get("_node_cls")
        if node_cls is None:
            node_cls = type(f"{cls.__name__}Backward", (_FunctionNode,),
                            {"__slots__": (), "__module__": cls.__module__,
                             "__qualname__": f"{cls.__qualname__}Backward"})
            cls._node_cls = node_cls
        return node_cls

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        from .._tensor import Tensor
        ctx = Context()
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        tensors = tuple(args[i] for i in positions)
        in_vmap = any(t._device.type == "vmap" for t in tensors)
        if len({t._device for t in tensors}) > 1 and in_vmap:
            # inside tl.vmap, as apply does: the others join the newest level through a
            # recorded lift, whose gradient sums the examples' (else a gradient for an
            # unbatched input would leave the level still batched)
            from ..vmap.levels import join_level
            tensors = tuple(join_level(cls._op(), tensors))
            args = list(args)
            for i, t in zip(positions, tensors):
                args[i] = t
            args = tuple(args)
        if in_vmap and cls._vmap_rule() is not None:
            res = _apply_vmap_rule(cls, args, kwargs)
            if res is not None:
                return res[0]
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._rg for a in args)
        two_step = cls.setup_context is not Function.setup_context
        fwd_levels = ()
        if state.fwd_ad is not None and cls.jvp is not Function.jvp:
            from .forward_ad import custom_levels, paused
            fwd_levels = custom_levels(tensors)
        try:
            with no_grad(), (paused(fwd_levels) if fwd_levels else _nothing()):
                if two_step:    # PyTorch 2's form: forward without ctx, then setup_context
                    out = cls.forward(*args, **kwargs)
                    cls.setup_context(ctx, args, out)
                else:
                    out = cls.forward(ctx, *args, **kwargs)
        except RuntimeError as e:
            if state.tracer is not None and type(e).__name__ == "CaptureError" \
                    and _CAPTURE_HINT[:40] not in str(e):
                raise type(e)(f"{e}\n(in {cls.__name__}.forward) " + _CAPTURE_HINT) from e
            raise
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        raw_outs = outs
        out_pos = [i for i, o in enumerate(outs) if isinstance(o, Tensor)]
        if state.grad_enabled and any(t._rg for t in tensors) and out_pos:
            from .._core import node_input
            # what apply's nodes keep of their inputs (own aliases of those with a history),
            # and the outputs' specs, for a zero gradient of an output nobody used
            # (a dirty input without a history becomes this node's output object: the node
            # keeps a detached alias of it, or it would be its own input)
            ins = tuple(t.detach() if id(t) in ctx._dirty and t._node is None else node_input(t)
                        for t in tensors)
            node = cls._node_class()(cls._op(), ins, {"ctx": ctx, "positions": positions,
                                         "n_args": len(args), "out_positions": out_pos,
                                         "n_outs": len(outs)}, None, None, len(out_pos))
            node.out_meta = [(outs[i]._data.shape, outs[i]._data.dtype) for i in out_pos]
            if state.anomaly:       # the forward call, for anomaly mode's reports (as apply)
                from .._apply import _user_stack
                node.trace = _user_stack()
            if not ctx._materialize:
                # makes the walk call the engine's node hook, which notes the outputs that
                # got no gradient before it fills in zeros for them
                node.hooks = {}
            _check_not_inference(cls, ctx._saved)
            new = list(outs)
            dirty_views = []
            for k, i in enumerate(out_pos):
                o = outs[i]
                if id(o) in ctx._dirty:
                    t = _rebase_dirty(cls, o, tensors)
                    if t._base is not None:
                        dirty_views.append(t)
                else:
                    t = o.detach()
                    _link_view(cls, t, o, tensors, k)
                if id(o) not in ctx._non_diff:
                    t._node = node
                    t._idx = k
                    t._rg = o._data.dtype.kind in "fc"
                    if t._base is not None:     # its history is current (no regeneration)
                        t._hv = t._version[0]
                new[i] = t
            if dirty_views:
                # the bases of a dirty view take its new value as their history, as
                # built-in in-place ops on views (PyTorch's CopySlices)
                from .._tensor_methods import _rebase
                for t in dirty_views:
                    _rebase(t, True)
            # PyTorch saves the tensors after the outputs are processed: a tensor modified
            # (mark_dirty) and saved within forward, in either order, is saved as it is now
            ctx._versions = tuple(None if t is None else (t._version, t._version[0])
                                  for t in ctx._saved)
            # an output saved for backward comes back with its history when the backward
            # runs, so grad of grad goes through it (an input returned as is stays one)
            swap = {id(outs[i]): _SavedOutput(new[i].detach(), k)
                    for k, i in enumerate(out_pos)
                    if new[i]._node is node and not any(outs[i] is a for a in tensors)}
            ctx._saved = tuple(swap.get(id(t), t) for t in ctx._saved)
            ctx._pack_saved({k: new[i] for k, i in enumerate(out_pos)})
            outs = tuple(new)
        if fwd_levels:
            from .forward_ad import custom_jvp
            custom_jvp(cls, ctx, fwd_levels, args, outs, raw_outs)
        return outs[0] if single else outs


def _nothing():
    import contextlib
    return contextlib.nullcontext()


_NO_BACKWARD = ("You must implement either the backward or vjp method for your custom "
                "autograd.Function to use it with backward mode AD.")


def _check_not_inference(cls, saved) -> None:
    from .mode import INFERENCE_SAVED_MESSAGE, is_inference_tensor
    for t in saved:
        if t is not None and not isinstance(t, _SavedOutput) and is_inference_tensor(t):
            raise RuntimeError(f"{cls.__name__}: {INFERENCE_SAVED_MESSAGE}")


def _fit(cls, pos: int, g, x):
    """Gradient ``g`` for argument ``pos`` (node input ``x``) at ``x``'s shape: summed down
    where it broadcasts to it, as PyTorch; else an error naming the Function."""
    if g is None or g._data.shape == x._data.shape:
        return g
    from ..ops._util import unbroadcast
    gs, xs = tuple(g._data.shape), tuple(x._data.shape)
    lead = len(gs) - len(xs)
    if lead >= 0 and all(a == b or a == 1 for a, b in zip(xs, gs[lead:])):
        return unbroadcast(g, xs)
    raise RuntimeError(f"{cls.__name__}.backward returned a gradient of shape {gs} for "
                       f"argument {pos} of shape {xs}; return one of that shape (or of a "
                       "shape that the argument broadcasts to: it is summed down)")


def _rebase_dirty(cls, o, inputs):
    """The input ``o`` that forward changed in place (``mark_dirty``), to take the op's
    history as the same object: a leaf that requires grad cannot, as in PyTorch; a view
    must be one whose change tensorlib can write back into its bases."""
    if not any(o is a for a in inputs):
        raise RuntimeError(f"{cls.__name__}: mark_dirty names a tensor that is not an input "
                           "of forward")
    if o._rg and o._node is None:
        raise RuntimeError(f"{cls.__name__}: a leaf tensor that requires grad was changed in "
                           "place (mark_dirty); clone it before the call")
    if o._base is not None:
        from .._tensor_methods import _check_view
        _check_view(o, f"{cls.__name__} (mark_dirty)")
    o._version[0] += 1
    tracer = state.tracer
    if tracer is not None:
        # the capture bound o's value when forward's in-place op wrote it; this bump is
        # mark_dirty's bookkeeping, not another write
        tracer.restamp(o)
    return o


_CAPTURE_HINT = ("A custom autograd.Function is captured (tl.function, ONNX export) through "
                 "the tensorlib ops its forward runs; one whose forward uses NumPy or reads "
                 "values cannot be. Register it as an op instead (tl.ops.register(OpDef(name, "
                 "fwd, vjp=..., infer=..., onnx=...)) and call it with tl.apply): a registered "
                 "op is captured, saved and exported to ONNX. See docs/extending.md.")


class _FunctionView(str):
    """The view op recorded for an output of a custom Function that is a view of an input:
    ``getitem`` at the output's positions for the registry (regenerating the output's
    history after its base changed in place, as PyTorch's as_strided), the Function's name
    in messages (an in-place change to the output itself is refused)."""

    def __new__(cls, fn: str, k: int):
        s = super().__new__(cls, "getitem")
        s.label = (f"the custom Function {fn} (its output {k}, a view of an input made inside "
                   "forward; PyTorch refuses this too)")
        return s

    def __format__(self, spec: str) -> str:
        return self.label


def _link_view(cls, t, o, inputs, k: int) -> None:
    """Make output ``t`` (``o`` detached) a view of the input whose memory it shares, so its
    in-place changes reach that input's version and are checked, and the input's reach it."""
    import numpy as np
    for a in inputs:
        if o is not a and not (type(o._data) is np.ndarray and type(a._data) is np.ndarray
                               and np.may_share_memory(o._data, a._data)):
            continue
        index = _positions(o._data, a._data)
        if index is None:
            return
        t._version = a._version
        t._hv = a._version[0]
        t._base = (a, _FunctionView(cls.__name__, k), {"index": index}, 0)
        return


def _positions(v, b):
    """Where view ``v``'s elements lie in ``b``: a tuple of index arrays (``b[index]`` has
    ``v``'s values), or None where ``v`` is not made of ``b``'s elements."""
    import numpy as np
    if type(v) is not np.ndarray or type(b) is not np.ndarray or v.dtype != b.dtype \
            or b.ndim == 0 or b.size == 0:
        return None

    def addresses(a):
        out = np.full(a.shape, a.__array_interface__["data"][0], np.int64)
        for d, (n, st) in enumerate(zip(a.shape, a.strides)):
            out += (np.arange(n, dtype=np.int64) * st).reshape((n,) + (1,) * (a.ndim - d - 1))
        return out

    ab = addresses(b).ravel()
    order = np.argsort(ab, kind="stable")
    sb = ab[order]
    av = addresses(v)
    p = np.minimum(np.searchsorted(sb, av), sb.size - 1)
    if not (sb[p] == av).all():
        return None
    return np.unravel_index(order[p], b.shape)


class VmapInfo:
    """What a Function's ``vmap`` staticmethod receives first (PyTorch's ``info``)."""

    __slots__ = ("batch_size", "randomness")

    def __init__(self, batch_size: int, randomness: str = "error"):
        self.batch_size, self.randomness = batch_size, randomness

    def __repr__(self) -> str:
        return f"VmapInfo(batch_size={self.batch_size}, randomness={self.randomness!r})"


def _apply_vmap_rule(cls, args: tuple, kwargs: dict):
    """Run ``cls.vmap`` on the physical batch of the newest vmap level among the tensor
    arguments (all at that level: apply joined them), as a 1-tuple of the logical result;
    None when no argument is batched there (forward then runs as usual, as in PyTorch)."""
    from .._tensor import Tensor
    from ..vmap import levels
    from ..vmap.batched import BatchedArray
    top = max((a._device for a in args if isinstance(a, Tensor) and a._device.type == "vmap"),
              key=lambda d: d.index)
    batched = [a for a in args if isinstance(a, Tensor) and a._device is top
               and a._data.bdim is not None]
    if not batched:
        return None
    B = batched[0]._data.batch_size
    phys, in_dims = [], []
    for a in args:
        if isinstance(a, Tensor) and a._device is top:
            if a._data.bdim is not None:
                phys.append(levels.unwrap(a, 0, top, B))
                in_dims.append(0)
            else:
                p = a._data.phys
                phys.append(levels.unlift(a, p.dev.index if type(p) is BatchedArray else 0, top))
                in_dims.append(None)
        else:
            phys.append(a)
            in_dims.append(None)
    res = cls._vmap_rule()(VmapInfo(B), tuple(in_dims), *phys, **kwargs)
    if not (isinstance(res, tuple) and len(res) == 2):
        raise RuntimeError(f"{cls.__name__}.vmap must return (output, out_dims), got "
                           f"{type(res).__name__}")
    out, out_dims = res
    single = not isinstance(out, tuple)
    outs = (out,) if single else out
    if isinstance(out_dims, int) or out_dims is None:
        dims = (out_dims,) * len(outs)
    elif isinstance(out_dims, tuple) and len(out_dims) == len(outs):
        dims = out_dims
    else:
        raise RuntimeError(f"{cls.__name__}.vmap returned out_dims={out_dims!r}, which does "
                           f"not match its {len(outs)} output(s): one int or None per output")
    new = []
    for o, d in zip(outs, dims):
        if not isinstance(o, Tensor):
            new.append(o)
        elif d is None:
            new.append(levels.lift(o, top))
        else:
            if not -o.ndim <= d < o.ndim or o.shape[d] != B:
                raise RuntimeError(f"{cls.__name__}.vmap returned an output of shape "
                                   f"{tuple(o.shape)} with out_dim {d}: that dim must be the "
                                   f"batch, of size {B}")
            new.append(levels.wrap(o, d % o.ndim, top, B))
    return (new[0] if single else tuple(new),)


def once_differentiable(backward):
    """Decorate a Function's ``backward`` that is written with non-differentiable code
    (NumPy, a kernel): it runs without recording, and differentiating its result again
    raises instead of giving a silent zero (as PyTorch's ``once_differentiable``)."""
    import functools

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        from .._tensor import Tensor
        recording = state.grad_enabled and any(isinstance(g, Tensor) and g._rg for g in grads)
        with no_grad():
            res = backward(ctx, *grads)
        if not recording:
            return res
        single = not isinstance(res, tuple)
        items = (res,) if single else res
        tens = [g for g in grads if isinstance(g, Tensor) and g._rg]
        marked = tuple(_Twice.apply(r, *tens) if isinstance(r, Tensor) else r for r in items)
        return marked[0] if single else marked
    return wrapper


class _Twice(Function):
    """Passes a once_differentiable backward's result through, tied to the incoming
    gradients; differentiating it raises."""

    @staticmethod
    def forward(ctx, r, *grads):
        return r.clone()

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("a backward decorated with @once_differentiable was differentiated "
                           "again (create_graph): it is not differentiable twice")


def _no_kernel(*a, **k):
    raise RuntimeError("custom Functions run through Function.apply, not the registry")
