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
        self.needs_input_grad: tuple[bool, ...] = ()

    def mark_non_differentiable(self, *tensors) -> None:
        """Outputs of ``forward`` that get no gradient (indices, masks): they come out with
        ``requires_grad=False`` and ``backward`` receives zeros for them."""
        self._non_diff.update(id(t) for t in tensors)

    def save_for_backward(self, *tensors) -> None:
        self._saved = tensors
        self._versions = tuple((t._version, t._version[0]) if t is not None else None
                               for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        for v in self._versions:
            if v is not None and v[0][0] != v[1]:
                raise RuntimeError("a tensor saved with save_for_backward was modified in place "
                                   "after it was saved; its gradient would be wrong")
        return tuple(t.rebuild(self._node) if isinstance(t, _SavedOutput) else t
                     for t in self._saved)


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


class Function:
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)``; call
    ``MyFn.apply(*args)``. ``backward`` returns one gradient (or None) per argument of
    ``forward``; write it with tensorlib ops and grad-of-grad works through it.

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
    def backward(ctx: Context, *grads: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def _op(cls):
        from ..ops.registry import OpDef
        if cls.__dict__.get("_opdef") is None:
            def vjp(node, *grads):
                ctx = node.attrs["ctx"]
                ctx._node = node
                try:
                    res = cls.backward(ctx, *grads)
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
                return tuple(res[p] for p in tensor_pos)
            # never registered: a user Function is not part of the global registry
            cls._opdef = OpDef(cls.__name__, kernels={"cpu": _no_kernel}, vjp=vjp, saves=False)
        return cls._opdef

    @classmethod
    def apply(cls, *args: Any) -> Any:
        from .._tensor import Tensor
        ctx = Context()
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        tensors = tuple(args[i] for i in positions)
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._rg for a in args)
        with no_grad():
            out = cls.forward(ctx, *args)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        if state.grad_enabled and any(t._rg for t in tensors):
            from .._core import node_input
            # what apply's nodes keep of their inputs (own aliases of those with a history),
            # and the outputs' specs, for a zero gradient of an output nobody used
            ins = tuple(node_input(t) for t in tensors)
            node = Node(cls._op(), ins, {"ctx": ctx, "positions": positions,
                                         "n_args": len(args)}, None, None, len(outs))
            node.out_meta = [(o._data.shape, o._data.dtype) for o in outs]
            new = []
            for i, o in enumerate(outs):
                t = o.detach()
                if id(o) not in ctx._non_diff:
                    t._node = node
                    t._idx = i
                    t._rg = o._data.dtype.kind == "f"
                new.append(t)
            # an output saved for backward comes back with its history when the backward
            # runs, so grad of grad goes through it (an input returned as is stays one)
            swap = {id(o): _SavedOutput(t.detach(), i) for i, (o, t) in enumerate(zip(outs, new))
                    if t._node is node and not any(o is a for a in tensors)}
            ctx._saved = tuple(swap.get(id(t), t) for t in ctx._saved)
            outs = tuple(new)
        return outs[0] if single else outs


def _no_kernel(*a, **k):
    raise RuntimeError("custom Functions run through Function.apply, not the registry")
