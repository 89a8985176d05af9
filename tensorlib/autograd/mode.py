"""Grad mode and anomaly mode: thread-local switches read by ``apply``."""
from __future__ import annotations

import functools
import inspect

# the state object lives outside this package so the compiled core can import it first
from .._state import state


def is_grad_enabled() -> bool:
    """Whether ops record the tape in this thread (False inside ``no_grad``)."""
    return state.grad_enabled


class _GradMode:
    """Base for context managers that double as decorators."""

    _mode: bool

    def __enter__(self):
        self._prev = state.grad_enabled
        state.grad_enabled = self._mode
        return self

    def __exit__(self, *exc):
        state.grad_enabled = self._prev

    def __call__(self, fn):
        mode = self._mode
        if inspect.isgeneratorfunction(fn):
            # the mode holds while the generator runs, between its yields too, and the
            # caller's mode while the caller runs (as PyTorch's decorators)
            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                gen = fn(*args, **kwargs)

                def step(how, value):
                    prev = state.grad_enabled
                    state.grad_enabled = mode
                    try:
                        return how(value)
                    finally:
                        state.grad_enabled = prev
                how, value = gen.send, None
                while True:
                    try:
                        item = step(how, value)
                    except StopIteration as stop:
                        return stop.value
                    try:
                        value = yield item
                        how = gen.send
                    except GeneratorExit:
                        gen.close()
                        raise
                    except BaseException as e:      # thrown in: on into the generator
                        how, value = gen.throw, e
            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = state.grad_enabled
            state.grad_enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                state.grad_enabled = prev
        return wrapper


class no_grad(_GradMode):
    """Disable recording of the tape, as a context manager or a decorator.

    >>> with tl.no_grad():
    ...     y = x * 2          # y.requires_grad is False
    """

    _mode = False


class inference_mode(no_grad):
    """PyTorch's name for :class:`no_grad` when nothing computed will be differentiated."""

    def __init__(self, mode: bool = True):
        self._mode = not mode


class enable_grad(_GradMode):
    """Re-enable recording inside a ``no_grad`` block."""

    _mode = True


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` behaves as ``no_grad()``; also a plain call."""

    def __init__(self, mode: bool):
        self._mode = bool(mode)
        self._prev = state.grad_enabled
        state.grad_enabled = self._mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        state.grad_enabled = self._prev
