"""``tensorlib.utils.checkpoint``: PyTorch's import path for activation checkpointing
(``torch.utils.checkpoint``), over :func:`tl.autograd.checkpoint`.

>>> from tensorlib.utils.checkpoint import checkpoint, checkpoint_sequential
>>> h = checkpoint(block, x, use_reentrant=False)
>>> y = checkpoint_sequential(model, 2, x, use_reentrant=False)    # model: nn.Sequential
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..autograd.checkpoint import _module_params
from ..autograd.checkpoint import checkpoint as _checkpoint

__all__ = ["checkpoint", "checkpoint_sequential"]

_DETERMINISM = ("default", "none")


def _noop_context_fn():
    import contextlib
    return contextlib.nullcontext(), contextlib.nullcontext()


def checkpoint(function: Callable, *args: Any, use_reentrant: bool | None = None,
               context_fn: Callable | None = None, determinism_check: str = "default",
               debug: bool = False, preserve_rng_state: bool = True, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, keeping only ``args`` and the parameters for the
    backward pass, which runs ``function`` again (``torch.utils.checkpoint.checkpoint``).

    tensorlib has one implementation, so ``use_reentrant`` (True or False) changes nothing
    and need not be given; ``preserve_rng_state`` replays the forward pass's random draws
    (dropout). ``determinism_check`` and ``debug`` are accepted; a ``context_fn`` other
    than the default raises (tensorlib's recomputation runs under no custom contexts).
    Parameters the function closes over are found as :func:`tl.autograd.checkpoint` finds
    them.

    >>> h = checkpoint(block, x, use_reentrant=False); h.sum().backward()
    """
    if use_reentrant not in (None, True, False):
        raise TypeError(f"checkpoint: use_reentrant must be a bool, got {use_reentrant!r}")
    if context_fn is not None and context_fn is not _noop_context_fn:
        raise NotImplementedError("checkpoint: context_fn is not supported; tensorlib "
                                  "recomputes the forward pass with no extra contexts")
    if determinism_check not in _DETERMINISM:
        raise ValueError(f"checkpoint: determinism_check should be one of "
                         f"{list(_DETERMINISM)}, but got {determinism_check!r}")
    return _checkpoint(function, *args, preserve_rng_state=preserve_rng_state, **kwargs)


def _segment(functions: Sequence[Callable]) -> Callable:
    def forward(x):
        for f in functions:
            x = f(x)
        return x
    return forward


def checkpoint_sequential(functions, segments: int, input: Any,
                          use_reentrant: bool | None = None, **kwargs: Any) -> Any:
    """Run ``functions`` (an ``nn.Sequential`` or a list of layers/functions) on ``input``
    in ``segments`` parts, each checkpointed but the last, which runs normally
    (``torch.utils.checkpoint.checkpoint_sequential``: the same segment boundaries,
    ``len(functions) // segments`` layers each, the last segment taking the remainder).
    ``preserve_rng_state=`` is the one keyword accepted besides ``use_reentrant``.

    >>> model = tl.nn.Sequential(*[tl.nn.Linear(64, 64) for _ in range(8)])
    >>> y = checkpoint_sequential(model, 4, x, use_reentrant=False)
    """
    from ..nn.module import Module
    from ..nn.containers import Sequential
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError(f"checkpoint_sequential: unexpected keyword arguments: "
                         f"{', '.join(kwargs)}")
    if isinstance(functions, Sequential):
        functions = list(functions.children())
    elif isinstance(functions, Module) and not hasattr(functions, "__iter__"):
        raise TypeError(f"checkpoint_sequential: functions must be an nn.Sequential or a "
                        f"list of modules or functions, got {type(functions).__name__}")
    functions = list(functions)
    if isinstance(segments, bool) or not isinstance(segments, int) or \
            not 1 <= segments <= len(functions):
        raise ValueError(f"checkpoint_sequential: segments must be an int in [1, "
                         f"{len(functions)}] (the number of functions), got {segments!r}")
    for i, f in enumerate(functions):
        if not callable(f):
            raise TypeError(f"checkpoint_sequential: element {i} of functions is not callable "
                            f"({type(f).__name__})")
    size = len(functions) // segments
    end = 0
    for start in range(0, size * (segments - 1), size):
        end = start + size
        part = functions[start:end]
        # the segment's own parameters only: gradients go to exactly these
        params: dict[int, Any] = {}
        for f in part:
            for p in _module_params(f):
                params.setdefault(id(p), p)
        input = _checkpoint(_segment(part), input, params=list(params.values()),
                            preserve_rng_state=preserve)
    return _segment(functions[end:])(input)
