"""Activation checkpointing: keep a block's inputs, not its intermediate results, and run
the block again in the backward pass when its gradients are needed.

Memory for the block's activations becomes memory for its inputs, at the price of a
second forward pass. The parameters the block uses are explicit inputs of the
checkpoint (found on a Module, in what a function closes over, or passed as ``params=``),
so gradients flow to them
through whatever asked for them: ``loss.backward()`` accumulates into ``.grad``,
``tl.grad(loss, [w])`` returns them, and ``create_graph=True`` makes them differentiable.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from .engine import grad
from .function import Function
from .mode import enable_grad, is_grad_enabled

__all__ = ["checkpoint"]


def _module_params(function) -> list:
    """The tensors requiring grad that ``function`` reaches without taking them as
    arguments: a Module's (or a bound method's) parameters, and the Modules and tensors a
    plain function or ``functools.partial`` closes over or names as globals, as PyTorch's
    checkpoint finds them by itself. What this misses still raises in backward."""
    from .._closures import reachable
    from .._tensor import Tensor
    from ..nn.module import Module
    found: dict[int, object] = {}
    for obj in reachable(function):
        if isinstance(obj, Module):
            for p in obj.parameters():
                if p.requires_grad:
                    found.setdefault(id(p), p)
        elif isinstance(obj, Tensor) and obj.requires_grad and obj.is_leaf:
            found.setdefault(id(obj), obj)
    return list(found.values())


@contextlib.contextmanager
def _rng_state(saved):
    """Run with the global generator as it was at the forward pass (dropout draws the same
    mask), then put back the state the rest of the program is at."""
    if saved is None:
        yield
        return
    from ..random import default_generator
    now = default_generator._state_dict()
    default_generator.set_state(saved)
    try:
        yield
    finally:
        default_generator.set_state(now)


def _key(t) -> tuple:
    """A tensor's identity as the tape sees it: tape nodes hold their own aliases of inputs
    that have a history (same storage, same history), not the tensor objects."""
    return id(t._data), id(t._node), t._idx


def _undeclared_leaves(outs, known: set) -> list:
    """Tensors requiring grad that the recomputed outputs depend on, other than ``known``
    (the checkpoint's own inputs, as :func:`_key`): parameters the function closes over."""
    found: dict[int, object] = {}     # id -> tensor, in the order met
    seen: set[int] = set()
    stack = [o._node for o in outs if o._node is not None and _key(o) not in known]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for t in node.inputs or ():
            if _key(t) in known:
                continue
            if t._node is not None:
                stack.append(t._node)
            elif t._rg:
                found.setdefault(id(t), t)
    return list(found.values())


class _Checkpoint(Function):
    @staticmethod
    def forward(ctx, function, n_args, rng, *tensors):
        ctx.function, ctx.n_args, ctx.rng = function, n_args, rng
        ctx.save_for_backward(*tensors)
        return function(*tensors[:n_args])

    @staticmethod
    def backward(ctx, *grads):
        tensors = ctx.saved_tensors
        args, params = tensors[:ctx.n_args], tensors[ctx.n_args:]
        # a recorded outer backward (create_graph=True) differentiates through the
        # recomputation itself, so it must stay connected to the caller's tensors
        create = is_grad_enabled()
        with enable_grad():
            xs = tuple(t if create else t.detach().requires_grad_(t.requires_grad)
                       for t in args)
            with _rng_state(ctx.rng):
                out = ctx.function(*xs)
            outs = out if isinstance(out, tuple) else (out,)
            params = tuple(params)
            known = {_key(t) for t in xs + params}
            extra = _undeclared_leaves(outs, known)
            if extra:
                shapes = ", ".join(str(tuple(t.shape)) for t in extra[:4])
                raise RuntimeError(
                    f"checkpoint: the function uses {len(extra)} tensor(s) that require grad "
                    f"but are not its arguments (shapes {shapes}); pass them with "
                    "checkpoint(fn, *args, params=[...]) so their gradients are not lost")
            targets = [t for t in xs + params if t.requires_grad]
            pairs = [(o, g) for o, g in zip(outs, grads)
                     if g is not None and o.requires_grad]
            gs = iter(grad([o for o, _ in pairs], targets, [g for _, g in pairs],
                           create_graph=create, allow_unused=True)
                      if pairs and targets else [None] * len(targets))
        res = [next(gs) if t.requires_grad else None for t in xs + params]
        return (None, None, None, *res)


def checkpoint(function: Callable, *args: Any, params: Iterable | None = None,
               preserve_rng_state: bool = True, use_reentrant: bool | None = None,
               **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, keeping only ``args`` (and the parameters) for the
    backward pass, which runs ``function`` again to get the intermediate results.

    The parameters are found when ``function`` is a Module or a Module's method, and in
    the Modules and tensors a plain function (a lambda, a ``functools.partial``) closes
    over or names as globals; others must be passed as ``params`` (otherwise the backward
    pass raises, instead of dropping their gradients). ``kwargs`` are passed as they are
    (tensors that need gradients go in ``args``).
    ``preserve_rng_state`` replays the forward pass's random draws (dropout masks).
    Layers with running statistics (BatchNorm in training mode) update them twice.
    Inside a captured function (``tl.function``) it runs ``function`` once, without the
    recompute (which could not replay the forward's random draws there).
    Arguments that are not tensors (a Module, a step size) are passed as they are; a
    Module's parameters among them are found too. PyTorch's ``use_reentrant`` is accepted
    and ignored: there is one implementation.

    >>> h = tl.autograd.checkpoint(block, x)      # block: an nn.Module
    >>> loss = head(h).sum(); loss.backward()
    """
    from .._tensor import Tensor
    if not callable(function):
        raise TypeError(f"checkpoint: function must be callable, got {type(function).__name__}")
    fixed = {i: a for i, a in enumerate(args) if not isinstance(a, Tensor)}
    grad_kw = [k for k, v in kwargs.items() if isinstance(v, Tensor) and v.requires_grad]
    if grad_kw:
        raise TypeError(f"checkpoint: keyword argument(s) {grad_kw} need gradients; pass them "
                        "positionally")
    if kwargs:
        function = _with_kwargs(function, kwargs)
    ps = list(params) if params is not None else _module_params(function)
    if fixed:       # non-tensor arguments (a Module, a step size) are passed as they are
        if params is None:
            from ..nn.module import Module
            for a in fixed.values():
                if isinstance(a, Module):
                    ps += [p for p in a.parameters() if all(p is not q for q in ps)]
        function = _with_fixed(function, fixed, len(args))
        args = tuple(a for a in args if isinstance(a, Tensor))
    if any(not isinstance(p, Tensor) for p in ps):
        raise TypeError("checkpoint: params must be tensors")
    from .._state import state
    if state.tracer is not None:
        # in a captured graph a random draw is a node that draws anew when the graph runs,
        # so a recompute would not replay the forward's dropout mask: run the function once
        # (exact gradients; the graph's memory plan frees its activations after their use)
        return function(*args)
    rng = None
    if preserve_rng_state:
        from ..random import default_generator
        rng = default_generator._state_dict()
    return _Checkpoint.apply(function, len(args), rng, *args, *ps)


def _with_fixed(function, fixed: dict, n: int):
    """``function`` of the tensor arguments alone, the others put back at their places."""
    def call(*tensors):
        it = iter(tensors)
        return function(*[fixed[i] if i in fixed else next(it) for i in range(n)])
    return call


def _with_kwargs(function, kwargs):
    import functools
    return functools.partial(function, **kwargs)
