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

    @property
    def saved_tensors(self) -> tuple:
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
    tensors (``backward`` gets None for them); a gradient that broadcasts to its argument's
    shape is summed down to it, as in PyTorch.

    >>> class Exp(tl.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         y = x.exp(); ctx.save_for_backward(y); return y
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (y,) = ctx.saved_tensors; return g * y
    """

    _opdef = None

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
        if len({t._device for t in tensors}) > 1 and any(t._device.type == "vmap"
                                                         for t in tensors):
            # inside tl.vmap, as apply does: the others join the newest level through a
            # recorded lift, whose gradient sums the examples' (else a gradient for an
            # unbatched input would leave the level still batched)
            from ..vmap.levels import join_level
            tensors = tuple(join_level(cls._op(), tensors))
            args = list(args)
            for i, t in zip(positions, tensors):
                args[i] = t
            args = tuple(args)
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._rg for a in args)
        two_step = cls.setup_context is not Function.setup_context
        with no_grad():
            if two_step:        # PyTorch 2's form: forward without ctx, then setup_context
                out = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
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
            for k, i in enumerate(out_pos):
                o = outs[i]
                if id(o) in ctx._dirty:
                    t = _rebase_dirty(cls, o, tensors)
                else:
                    t = o.detach()
                if id(o) not in ctx._non_diff:
                    t._node = node
                    t._idx = k
                    t._rg = o._data.dtype.kind == "f"
                new[i] = t
            # an output saved for backward comes back with its history when the backward
            # runs, so grad of grad goes through it (an input returned as is stays one)
            swap = {id(outs[i]): _SavedOutput(new[i].detach(), k)
                    for k, i in enumerate(out_pos)
                    if new[i]._node is node and not any(outs[i] is a for a in tensors)}
            ctx._saved = tuple(swap.get(id(t), t) for t in ctx._saved)
            ctx._pack_saved({k: new[i] for k, i in enumerate(out_pos)})
            outs = tuple(new)
        return outs[0] if single else outs


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
                       f"argument {pos} of shape {xs}; return one of that shape (or one that "
                       "broadcasts to it)")


def _rebase_dirty(cls, o, inputs):
    """The input ``o`` that forward changed in place (``mark_dirty``), to take the op's
    history as the same object: a leaf that requires grad cannot, as in PyTorch."""
    if not any(o is a for a in inputs):
        raise RuntimeError(f"{cls.__name__}: mark_dirty names a tensor that is not an input "
                           "of forward")
    if o._rg and o._node is None:
        raise RuntimeError(f"{cls.__name__}: a leaf tensor that requires grad was changed in "
                           "place (mark_dirty); clone it before the call")
    o._version[0] += 1
    return o


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
