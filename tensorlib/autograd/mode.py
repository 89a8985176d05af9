"""Grad mode, inference mode and anomaly mode: thread-local switches read by ``apply``.

``state.grad_enabled`` is the switch ``apply`` reads: whether ops record the tape. Inside
``inference_mode`` it stays off whatever ``enable_grad`` / ``set_grad_enabled`` say (as
PyTorch's, where those change the grad mode that ``is_grad_enabled`` reports but nothing
is recorded): that reported mode is kept in ``state.inference_grad`` meanwhile.
"""
from __future__ import annotations

import functools
import inspect

# the state object lives outside this package so the compiled core can import it first
from .. import _core
from .._state import state


def is_grad_enabled() -> bool:
    """Whether grad mode is on in this thread (False inside ``no_grad``; inside
    ``inference_mode``, what ``enable_grad`` set, though nothing is recorded there).

    >>> with tl.no_grad():
    ...     tl.is_grad_enabled()
    False
    """
    if getattr(state, "inference", False):
        return state.inference_grad
    return state.grad_enabled


def is_inference_mode_enabled() -> bool:
    """Whether this thread is inside ``inference_mode()`` (``torch.is_inference_mode_enabled``).

    >>> with tl.inference_mode():
    ...     tl.autograd.is_inference_mode_enabled()
    True
    """
    return bool(getattr(state, "inference", False))


def _push_grad_mode(mode: bool):
    """Set the grad mode; returns the token that restores it (``_pop_grad_mode``)."""
    if getattr(state, "inference", False):
        prev = state.inference_grad
        state.inference_grad = mode
        return (True, prev)
    prev = state.grad_enabled
    state.grad_enabled = mode
    return (False, prev)


def _pop_grad_mode(token) -> None:
    inside, prev = token
    if inside:
        state.inference_grad = prev
    else:
        state.grad_enabled = prev


class _GradMode:
    """Base for context managers that double as decorators: ``_enter`` returns a token
    that ``_exit`` restores from."""

    _mode: bool

    def _enter(self):
        return _push_grad_mode(self._mode)

    def _exit(self, token) -> None:
        _pop_grad_mode(token)

    def __enter__(self):
        # a stack: the same instance may be entered again before it exits (recursion)
        self.__dict__.setdefault("_tokens", []).append(self._enter())
        return self

    def __exit__(self, *exc):
        self._exit(self._tokens.pop())

    def __call__(self, fn):
        enter, leave = self._enter, self._exit
        if inspect.isgeneratorfunction(fn):
            # the mode holds while the generator runs, between its yields too, and the
            # caller's mode while the caller runs (as PyTorch's decorators)
            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                gen = fn(*args, **kwargs)

                def step(how, value):
                    token = enter()
                    try:
                        return how(value)
                    finally:
                        leave(token)
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
            token = enter()
            try:
                return fn(*args, **kwargs)
            finally:
                leave(token)
        return wrapper


class _BareDecorator(_GradMode):
    """A mode taking no arguments, so usable bare as a decorator (``@tl.no_grad`` as well as
    ``@tl.no_grad()``), as PyTorch 2's."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        if not callable(orig_func):
            raise TypeError(f"{cls.__name__}() takes no arguments (or one function, when used "
                            f"bare as a decorator), got {type(orig_func).__name__}")
        return cls()(orig_func)


class no_grad(_BareDecorator):
    """Disable recording of the tape, as a context manager or a decorator (with or without
    parentheses).

    >>> with tl.no_grad():
    ...     y = x * 2          # y.requires_grad is False
    >>> @tl.no_grad
    ... def evaluate(model, x): return model(x)
    """

    _mode = False


class inference_mode(_GradMode):
    """``no_grad`` for code whose results will never be differentiated, as PyTorch's:
    inside it nothing is recorded, even under ``enable_grad()``, and
    :func:`is_inference_mode_enabled` is True. ``inference_mode(False)`` turns it off
    (grad mode on) for a nested block. Usable bare as a decorator too.

    Tensors ops make inside are inference tensors (``t.is_inference()``): autograd refuses
    to save one for backward later, and an in-place update outside the mode raises.

    >>> with tl.inference_mode():
    ...     y = model(x)           # y.requires_grad is False
    """

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):    # @inference_mode, no call
            self = super().__new__(cls)
            self.__init__(True)
            return self(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True):
        self._enabled = bool(mode)

    def _enter(self):
        token = (getattr(state, "inference", False), getattr(state, "inference_grad", False),
                 state.grad_enabled)
        state.inference = self._enabled
        if self._enabled:
            state.inference_grad = False
            _core.inference_depth(1)
        # PyTorch's InferenceMode(False) turns grad mode on, whatever it was
        state.grad_enabled = not self._enabled
        return token

    def _exit(self, token) -> None:
        if state.inference:
            _core.inference_depth(-1)
        state.inference, state.inference_grad, state.grad_enabled = token


class enable_grad(_BareDecorator):
    """Re-enable recording inside a ``no_grad`` block (not inside ``inference_mode``, where
    nothing records, as in PyTorch); a decorator too, bare or called."""

    _mode = True


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` behaves as ``no_grad()``; also a plain call (which sets
    the mode at once) and a decorator, as PyTorch's: decorating restores the mode the call
    changed, and each call of the decorated function runs in ``mode``."""

    def __init__(self, mode: bool):
        self._mode = bool(mode)
        self._token = _push_grad_mode(self._mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _pop_grad_mode(self._token)

    def __call__(self, fn):
        _pop_grad_mode(self._token)     # @set_grad_enabled(False) must not leave it off
        return super().__call__(fn)


class InferenceVersion(list):
    """The version counter of an inference tensor (one made inside ``inference_mode``): a
    one-element list as every tensor's, whose type marks the tensor. Bumping it (an in-place
    op) outside inference mode raises, as PyTorch's inference tensors do."""

    __slots__ = ()

    def __setitem__(self, i, v):
        if not getattr(state, "inference", False):
            raise RuntimeError(
                "Inplace update to inference tensor outside InferenceMode is not allowed. "
                "You can make a clone to get a normal tensor before doing inplace update.")
        list.__setitem__(self, i, v)


def is_inference_tensor(t) -> bool:
    """Whether tensor ``t`` was made inside ``inference_mode`` (``Tensor.is_inference()``)."""
    return type(t._version) is InferenceVersion


INFERENCE_SAVED_MESSAGE = (
    "Inference tensors cannot be saved for backward. Please do not use Tensors created in "
    "inference mode in computation tracked by autograd. To work around this, you can make a "
    "clone to get a normal tensor and use it in autograd, or use `tl.no_grad()` instead of "
    "`tl.inference_mode()`.")


# the compiled core gives the tensors ops make inside inference_mode this version counter,
# and refuses to save one for backward
_core.set_inference_box(InferenceVersion, INFERENCE_SAVED_MESSAGE)
