"""``tl.compile``: PyTorch's ``torch.compile`` spelled over :func:`tl.function` graph capture,
so ported scripts run their compiled models and steps as captured graphs.

A function becomes a ``tl.function``; a Module becomes an :class:`OptimizedModule` whose
call runs the captured module (hooks included) and which still has the module's
parameters, ``state_dict`` (keys under ``_orig_mod.``, as PyTorch's), ``train``/``eval``
and attributes. What the capture replays and when it retraces is ``tl.function``'s: read
its docstring. Notably, a compiled module called with gradients enabled on parameters
that require grad runs eagerly (a replayed graph's outputs have no autograd history): for
speed in training, compile the whole step, ``backward()`` and ``opt.step()`` included.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .graph.capture import Function, function
from .nn.module import Module

__all__ = ["OptimizedModule", "compile"]

_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
_BACKENDS = ("inductor", "eager", "aot_eager", "cudagraphs")


class OptimizedModule(Module):
    """A Module whose calls run ``tl.function(module)``; ``_orig_mod`` is the module itself
    (its parameters are these parameters, so an optimizer over either trains both).

    >>> cmodel = tl.compile(model)
    >>> with tl.no_grad():
    ...     y = cmodel(x)                    # traced on the first call, replayed after
    >>> cmodel._orig_mod is model
    True
    """

    def __init__(self, mod: Module, compiled: Function) -> None:
        super().__init__()
        self._orig_mod = mod                       # a submodule: parameters, train/eval
        object.__setattr__(self, "_compiled", compiled)   # not a submodule, not state
        self.training = mod.training

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._compiled(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            pass
        # the wrapped module's own attributes and methods (agent.get_value...), as PyTorch's
        # OptimizedModule forwards them; these run eagerly, only the call is captured
        mod = self.__dict__.get("_modules", {}).get("_orig_mod")
        if mod is None:
            raise AttributeError(f"OptimizedModule has no attribute {name!r}")
        return getattr(mod, name)

    def __deepcopy__(self, memo: dict) -> OptimizedModule:
        # a target network copied from a compiled one (copy.deepcopy(q_net)): the module
        # is copied and captured anew (the captured graphs read the old module's state)
        mod = copy.deepcopy(self._orig_mod, memo)
        new = OptimizedModule(mod, function(mod, dynamic=self._compiled.dynamic))
        memo[id(self)] = new
        return new

    def __repr__(self) -> str:
        return f"OptimizedModule(\n  (_orig_mod): {self._orig_mod!r}\n)"


def compile(model: Callable | None = None, *, fullgraph: bool = False,  # noqa: A001
            dynamic: bool | None = None, backend: str | Callable = "inductor",
            mode: str | None = None, options: dict | None = None,
            disable: bool = False) -> Any:
    """``torch.compile``'s stand-in: capture ``model`` (a function or a Module) with
    :func:`tl.function` and replay the graph on later calls with the same signature.

    ``dynamic`` is PyTorch's: ``True`` traces every tensor argument's dims (of size 2 or
    more) as dynamic, so other batch or sequence sizes replay one graph (a dim whose size
    escapes into Python falls back to one graph per size, as with ``input_signature``);
    ``False`` keeps one graph per shape; ``None`` traces static shapes first and switches to
    dynamic ones on the first call that changes a shape. ``fullgraph``, ``mode`` and
    ``options`` are checked and otherwise change nothing: a capture is always the whole
    graph (code that reads a tensor's value into Python raises instead of breaking the
    graph), and there is no autotuning. ``backend`` names
    PyTorch's (``"inductor"``, ``"eager"``, ``"aot_eager"``, ``"cudagraphs"``); a
    callable (a custom Dynamo backend, which takes an FX graph) cannot be honoured and
    raises. ``disable=True`` returns ``model`` itself. As a decorator, with or without
    arguments:

    >>> @tl.compile
    ... def step(x): return (x * 2).sum()
    >>> @tl.compile(mode="reduce-overhead")
    ... def step2(x): return x.tanh()
    >>> cmodel = tl.compile(model)          # an OptimizedModule; cmodel._orig_mod is model
    """
    if mode is not None and options is not None:
        raise RuntimeError("compile: either mode or options can be specified, but both "
                           "can't be specified at the same time")
    if mode not in _MODES:
        raise RuntimeError(f"compile: unrecognized mode={mode!r}; expected one of "
                           f"{', '.join(repr(m) for m in _MODES[1:])}")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"compile: options must be a dict, got {type(options).__name__}")
    if dynamic not in (None, True, False):
        raise TypeError(f"compile: dynamic must be None, True or False, got {dynamic!r}")
    if callable(backend):
        raise NotImplementedError("compile: a custom backend callable takes a TorchDynamo FX "
                                  "graph, which tensorlib does not make; use backend="
                                  "'inductor' (tensorlib's graph capture) or tl.function")
    if backend not in _BACKENDS:
        raise ValueError(f"compile: invalid backend {backend!r}; expected one of "
                         f"{', '.join(map(repr, _BACKENDS))}")

    def wrap(m: Callable) -> Any:
        if not callable(m):
            raise TypeError(f"compile: expected a function or a Module, got "
                            f"{type(m).__name__}")
        if disable:
            return m
        how = "auto" if dynamic is None else dynamic
        if isinstance(m, Module):
            return OptimizedModule(m, function(m, dynamic=how))
        return function(m, dynamic=how)
    return wrap if model is None else wrap(model)
