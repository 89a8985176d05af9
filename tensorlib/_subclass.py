"""Tensor subclasses and ``__torch_function__``, with PyTorch's semantics.

- The outputs of an op with an input of a subclass ``C`` are ``C`` instances (the most
  derived such class among the inputs), as PyTorch's default ``Tensor.__torch_function__``.
  ``apply`` (``_core``) hands them to :func:`_on_apply`; plain tensors pay one type
  comparison per input there. Classes whose ``__torch_function__`` is
  :data:`_disabled_torch_function_impl` (``nn.Parameter``, ``nn.Buffer``, tensorlib's own
  subclasses, and any that opt out the same way) give plain tensors.
- A subclass's Tensor methods (and operators, ``t[0]``, the tensor-valued properties) call
  ``cls.__torch_function__(func, types, args, kwargs)``: wrappers are set on the first
  subclass of a chain when it is defined, so ``Tensor``'s own methods are untouched. ``func``
  is the public ``Tensor`` method (``Tensor.add`` for ``t + 1``, as PyTorch's).
- The public functions of ``tl``, ``tl.nn.functional``, ``tl.linalg``, ``tl.special`` and
  ``tl.fft`` dispatch too, once a class with its own ``__torch_function__`` exists: they are
  wrapped then (a program without one keeps the plain functions, at full speed). A function
  bound by name before that (``from tensorlib import exp``) keeps the plain one; its results
  still get the subclass.
- Gradients are plain tensors, as PyTorch's: the backward pass gives no subclass; but
  ``tl.autograd.grad`` dispatches as PyTorch's, so its results take the class of its
  subclass arguments (outputs or inputs).
- A reflected operator with a tensor on the left (``plain @ sub``) reaches
  ``__torch_function__`` as the left operand's op (``Tensor.matmul``, args ``(plain, sub)``),
  as PyTorch's, where Python calls the subclass's ``__rmatmul__`` first.
- ``tl._C`` is a module (``from tensorlib._C import DisableTorchFunctionSubclass``).
"""
from __future__ import annotations

import functools
import threading
import types as _types
from collections.abc import Callable
from typing import Any

from ._core import TensorBase

try:
    from ._core import set_subclass_hook
except ImportError:     # an extension built before this module: methods still dispatch
    def set_subclass_hook(fn) -> set:
        return _FALLBACK_PLAIN

    _FALLBACK_PLAIN: set = set()
# (this module is first imported by Tensor.__init_subclass__, after Tensor is defined)
from ._tensor import Tensor as _Tensor
from ._tensor import _internal


class _Local(threading.local):
    disabled = 0        # DisableTorchFunctionSubclass blocks: no dispatch, plain results
    no_dispatch = 0     # inside the default __torch_function__: no dispatch
    backward = 0        # inside a backward pass: plain gradients


_tls = _Local()


class _DisabledImpl:
    """``__torch_function__`` of classes that opt out (PyTorch's
    ``torch._C._disabled_torch_function_impl``): the op runs, its outputs stay plain. A
    callable instance, not a function, so a class attribute lookup gives it back unbound."""

    __name__ = "_disabled_torch_function_impl"

    def __call__(self, func, types, args=(), kwargs=None):
        with DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))

    def __repr__(self) -> str:
        return "<built-in function _disabled_torch_function_impl>"


_disabled_torch_function_impl = _DisabledImpl()


class DisableTorchFunctionSubclass:
    """Context manager: inside it, ops on subclass instances call no ``__torch_function__``
    and give plain tensors (PyTorch's ``torch._C.DisableTorchFunctionSubclass``; here it is
    process-wide per thread)."""

    def __enter__(self) -> DisableTorchFunctionSubclass:
        _tls.disabled += 1
        return self

    def __exit__(self, *exc) -> None:
        _tls.disabled -= 1


DisableTorchFunction = DisableTorchFunctionSubclass


class _NoDispatch:
    def __enter__(self) -> None:
        _tls.no_dispatch += 1

    def __exit__(self, *exc) -> None:
        _tls.no_dispatch -= 1


_no_dispatch = _NoDispatch()

# subclasses whose ops give plain tensors: shared with apply (a set lookup on its slow path)
_PLAIN: set = set_subclass_hook(None)


def _is_active(tp: type) -> bool:
    return tp is not _Tensor and tp not in _PLAIN


def _add_type(found: list, tp: type) -> None:
    # PyTorch's order: subclasses before their superclasses, otherwise left to right
    if tp in found:
        return
    for i, other in enumerate(found):
        if issubclass(tp, other):
            found.insert(i, tp)
            return
    found.append(tp)


def _overloaded(args, kwargs) -> list:
    """The active subclasses among the tensors in ``args``/``kwargs`` (and one level into
    lists and tuples, as PyTorch's tensor-list arguments)."""
    found: list = []
    for a in (*args, *kwargs.values()) if kwargs else args:
        if isinstance(a, TensorBase):
            if _is_active(type(a)):
                _add_type(found, type(a))
        elif type(a) is list or type(a) is tuple:
            for b in a:
                if isinstance(b, TensorBase) and _is_active(type(b)):
                    _add_type(found, type(b))
    return found


def _on_apply(inputs: tuple, res):
    """apply's hook (an input's type is a subclass): the outputs of the most derived active
    subclass, unless disabled or in a backward pass (PyTorch's gradients are plain)."""
    if _tls.disabled or _tls.backward:
        return res
    cls = None
    for x in inputs:
        tp = type(x)
        if tp is not _Tensor and tp not in _PLAIN and (cls is None or issubclass(tp, cls)):
            cls = tp
    if cls is None:
        return res
    if type(res) is tuple:
        return tuple([_retype(r, cls) for r in res])
    return _retype(res, cls)


set_subclass_hook(_on_apply)


def _retype(t, cls: type):
    """``t``'s storage, history and version counter in a new ``cls`` instance (no op)."""
    if type(t) is cls:
        return t
    r = TensorBase.__new__(cls)
    r._data, r._device, r._rg, r._node, r._idx = t._data, t._device, t._rg, t._node, t._idx
    r._version, r._hooks, r._base, r._hv = t._version, t._hooks, t._base, t._hv
    return r


def _convert(ret, cls: type):
    """PyTorch's ``torch._tensor._convert``: tensors in ``ret`` (and in its tuples/lists)
    as ``cls`` instances."""
    if cls is _Tensor:
        return ret
    if isinstance(ret, TensorBase):
        return ret if isinstance(ret, cls) else _retype(ret, cls)
    if isinstance(ret, (tuple, list)):
        items = [_convert(r, cls) for r in ret]
        if type(ret) in (tuple, list):
            return type(ret)(items)
        make = getattr(ret, "_make", None)      # a namedtuple (max's values, indices)
        return make(items) if make is not None else type(ret)(items)
    return ret


def default_torch_function(cls: type, func: Callable, types, args=(), kwargs=None):
    """``Tensor.__torch_function__``: run ``func`` without dispatch and give its tensors
    the class ``cls`` (NotImplemented when another type in ``types`` is no base of it)."""
    if kwargs is None:
        kwargs = {}
    if not all(issubclass(cls, t) for t in types):
        return NotImplemented
    with _no_dispatch:
        ret = func(*args, **kwargs)
    if _tls.disabled:
        return ret
    return _convert(ret, cls)


def _dispatch(func: Callable, args: tuple, kwargs: dict, found: list):
    types = tuple(found)
    for tp in found:
        r = tp.__torch_function__(func, types, args, kwargs)
        if r is not NotImplemented:
            return r
    name = getattr(func, "__name__", repr(func))
    raise TypeError(f"{name}: no implementation found on types that implement "
                    f"__torch_function__: {[t.__name__ for t in types]}")


# --- wrappers ------------------------------------------------------------------------------
# operators -> the Tensor method PyTorch's __torch_function__ receives (``t + 1`` is ``add``)
_OPERATOR_FUNCS = {
    "__add__": "add", "__radd__": "add", "__sub__": "sub", "__mul__": "mul",
    "__rmul__": "mul", "__truediv__": "div", "__mod__": "remainder", "__pow__": "pow",
    "__matmul__": "matmul", "__lt__": "lt", "__le__": "le", "__gt__": "gt", "__ge__": "ge",
    "__ne__": "ne", "__neg__": "neg", "__pos__": "positive", "__abs__": "abs",
    "__rand__": "bitwise_and", "__ror__": "bitwise_or", "__rxor__": "bitwise_xor",
    "__iadd__": "add_", "__isub__": "sub_", "__imul__": "mul_", "__itruediv__": "div_",
    "__rtruediv__": "__rdiv__",
}
# a reflected operator with a Tensor on the left: PyTorch runs the left operand's operator
# (Python prefers the subclass's reflected one here, PyTorch's subclass inherits it)
_REFLECTED = {
    "__radd__": "__add__", "__rsub__": "__sub__", "__rmul__": "__mul__",
    "__rtruediv__": "__truediv__", "__rfloordiv__": "__floordiv__", "__rmod__": "__mod__",
    "__rpow__": "__pow__", "__rmatmul__": "__matmul__", "__rand__": "__and__",
    "__ror__": "__or__", "__rxor__": "__xor__", "__rlshift__": "__lshift__",
    "__rrshift__": "__rshift__",
}
# Tensor attributes that are not ops: no dispatch (storage, pickling, NumPy/DLPack protocols)
_NOT_DISPATCHED = frozenset({
    "__init__", "__new__", "__init_subclass__", "__torch_function__", "__hash__",
    "__array__", "__array_ufunc__", "__array_priority__", "__dlpack__", "__dlpack_device__",
    "__reduce__", "__reduce_ex__", "__getstate__", "__setstate__", "__deepcopy__", "__copy__",
    "__class__", "__doc__", "__module__", "__slots__", "__dict__", "__weakref__",
    "__getattribute__", "__setattr__", "__delattr__", "__dir__", "__sizeof__",
    "__subclasshook__", "as_subclass", "_make_subclass", "grad",
})
# tensor-valued properties that dispatch (PyTorch's ``Tensor.T.__get__``)
_PROPERTIES = ("data", "T", "mT", "H", "mH", "real", "imag")


def _method_wrapper(orig: Callable, func: Callable) -> Callable:
    def method(*args, **kwargs):
        if _tls.no_dispatch or _tls.disabled:
            return orig(*args, **kwargs)
        found = _overloaded(args, kwargs)
        if not found:
            return orig(*args, **kwargs)
        return _dispatch(func, args, kwargs, found)
    functools.update_wrapper(method, orig)
    method._tl_dispatch = True
    return method


def _reflected_wrapper(orig: Callable, func: Callable, left: Callable) -> Callable:
    """``__rop__``: as ``left(other, self)`` when ``other`` is a tensor, else as ``func``."""
    def method(self, other):
        if _tls.no_dispatch or _tls.disabled:
            return orig(self, other)
        if isinstance(other, TensorBase):
            args = (other, self)
            found = _overloaded(args, None)
            return _dispatch(left, args, {}, found) if found else orig(self, other)
        found = _overloaded((self,), None)
        if not found:
            return orig(self, other)
        return _dispatch(func, (self, other), {}, found)
    functools.update_wrapper(method, orig)
    method._tl_dispatch = True
    return method


def _property_wrapper(prop: property) -> property:
    getter = prop.__get__

    def fget(self):
        if _tls.no_dispatch or _tls.disabled:
            return getter(self)
        found = _overloaded((self,), None)
        if not found:
            return getter(self)
        return _dispatch(getter, (self,), {}, found)
    return property(fget, prop.fset, prop.fdel, prop.__doc__)


def _install_methods(cls: type) -> None:
    """Dispatching wrappers of Tensor's methods on ``cls`` (where ``cls`` and its bases
    between it and Tensor do not define their own)."""
    T = _Tensor
    for name, orig in vars(T).items():
        if name in _NOT_DISPATCHED or (name.startswith("_") and not name.startswith("__")):
            continue
        if getattr(cls, name, None) is not orig and not isinstance(orig, property):
            continue        # the subclass's own method
        if isinstance(orig, property):
            if name in _PROPERTIES and getattr(cls, name, None) is orig:
                setattr(cls, name, _property_wrapper(orig))
            continue
        if not isinstance(orig, _types.FunctionType):
            continue
        target = _OPERATOR_FUNCS.get(name)
        func = getattr(T, target, orig) if target else orig
        left = _REFLECTED.get(name)
        if left is not None and left in vars(T):
            fwd = _OPERATOR_FUNCS.get(left)
            lfunc = getattr(T, fwd) if fwd else getattr(T, left)
            setattr(cls, name, _reflected_wrapper(orig, func, lfunc))
        else:
            setattr(cls, name, _method_wrapper(orig, func))
    # methods bound on TensorBase's Python subclass only: the inherited ones are T's above


def _function_wrapper(f: Callable, name: str) -> Callable:
    @functools.wraps(f)
    def public(*args, **kwargs):
        if not (_tls.no_dispatch or _tls.disabled):
            found = _overloaded(args, kwargs)
            if found:
                return _dispatch(public, args, kwargs, found)
        return f(*args, **kwargs)
    public._tl_dispatch = True
    public.__name__ = public.__qualname__ = name     # an alias's own name (tl.cat)
    return public


_FUNCTION_MODULES = ("tensorlib", "tensorlib.nn.functional", "tensorlib.linalg",
                     "tensorlib.special", "tensorlib.fft")
_NOT_WRAPPED = frozenset({"is_tensor", "save", "load", "function", "capture", "compile",
                          "grad", "vmap", "apply", "set_printoptions", "manual_seed",
                          "set_default_dtype", "get_default_dtype", "show_config"})
_functions_wrapped = False
_backward_hooked = False
_grad_hooked = False
_replaced: list = []        # (module, name, original function), for _restore_functions
_wrappers: dict = {}        # (function, name) -> its wrapper: tl.log_softmax is F.log_softmax


def _wrap_functions() -> None:
    """Dispatching wrappers of the public functions, in their modules (once)."""
    global _functions_wrapped
    if _functions_wrapped:
        return
    _functions_wrapped = True
    import importlib
    import sys
    for modname in _FUNCTION_MODULES:
        mod = sys.modules.get(modname)
        if mod is None:
            try:
                mod = importlib.import_module(modname)
            except ImportError:
                continue
        for name, f in list(vars(mod).items()):
            if (name.startswith("_") or name in _NOT_WRAPPED
                    or not isinstance(f, _types.FunctionType)
                    or not (getattr(f, "__module__", "") or "").startswith("tensorlib")
                    or getattr(f, "_tl_dispatch", False)):
                continue
            w = _wrappers.get((f, name))
            if w is None:
                w = _wrappers[(f, name)] = _function_wrapper(f, name)
            _replaced.append((mod, name, f))
            setattr(mod, name, w)


def _restore_functions() -> None:
    """Put the plain public functions back (tests; the next class with a handler of its own
    wraps them again)."""
    global _functions_wrapped
    for mod, name, f in reversed(_replaced):
        setattr(mod, name, f)
    _replaced.clear()
    _wrappers.clear()
    _functions_wrapped = False


def _hook_backward() -> None:
    """Count backward passes (their ops give plain gradients, as PyTorch's engine)."""
    global _backward_hooked
    if _backward_hooked:
        return
    _backward_hooked = True
    from .autograd import engine
    run = engine.run_backward

    @functools.wraps(run)
    def run_backward(*args, **kwargs):
        _tls.backward += 1
        try:
            return run(*args, **kwargs)
        finally:
            _tls.backward -= 1
    engine.run_backward = run_backward


def _hook_grad() -> None:
    """``tl.autograd.grad`` dispatches, as PyTorch's ``torch.autograd.grad``: with the default
    ``__torch_function__`` its gradients are instances of its arguments' subclass."""
    global _grad_hooked
    if _grad_hooked:
        return
    _grad_hooked = True
    from . import autograd
    f = autograd.grad
    if not getattr(f, "_tl_dispatch", False):
        autograd.grad = _function_wrapper(f, "grad")


def on_new_class(cls: type) -> None:
    """``Tensor.__init_subclass__``: sort ``cls`` into plain (opted out) or active."""
    T = _Tensor
    if _internal(cls) and \
            "__torch_function__" not in cls.__dict__ and \
            not cls.__dict__.get("_tl_reads_recorder"):
        # tensorlib's own subclasses (Parameter, Buffer, SparseTensor, compat's) give plain
        # results unless they say otherwise, as PyTorch's Parameter
        cls.__torch_function__ = _disabled_torch_function_impl
    if cls.__torch_function__ is _disabled_torch_function_impl:
        _PLAIN.add(cls)
        return
    _PLAIN.discard(cls)
    _hook_backward()
    _hook_grad()
    if not any(getattr(b, "_tl_methods_installed", False) for b in cls.__mro__):
        _install_methods(cls)
        cls._tl_methods_installed = True
    own = getattr(cls.__torch_function__, "__func__", None)
    if own is not T.__dict__["__torch_function__"].__func__:
        _wrap_functions()


def as_subclass(t, cls: type):
    """``t.as_subclass(cls)``: see ``Tensor.as_subclass``."""
    T = _Tensor
    if not (isinstance(cls, type) and issubclass(cls, T)):
        raise TypeError(f"as_subclass: cls must be a subclass of tensorlib.Tensor, got {cls!r}")
    with DisableTorchFunctionSubclass():
        # an alias that shares storage and version counter, on the tape when t needs grad
        alias = T.reshape(t, t._data.shape) if t._rg else T.detach(t)
    if not t._rg:
        alias._rg = False
    return _retype(alias, cls)


def make_subclass(cls: type, data, require_grad: bool = False):
    """``Tensor._make_subclass(cls, data, require_grad)``: see ``Tensor._make_subclass``."""
    T = _Tensor
    if not (isinstance(cls, type) and issubclass(cls, T)):
        raise TypeError(f"_make_subclass: cls must be a subclass of tensorlib.Tensor, got "
                        f"{cls!r}")
    if not isinstance(data, T):
        raise TypeError(f"_make_subclass: data must be a Tensor, got {type(data).__name__}")
    with DisableTorchFunctionSubclass():
        d = T.detach(data)
    r = _retype(d, cls)
    if require_grad:
        r.requires_grad = True
    return r


def _name_methods() -> None:
    """Give each Tensor method bound under another name (``__getitem__ = getitem``) a
    function of its own with that name: ``func.__name__`` in ``__torch_function__`` is the
    attribute's, as PyTorch's, and ``func is tl.Tensor.__getitem__`` holds. Same code, so
    plain tensors run exactly what they ran."""
    for name, f in list(vars(_Tensor).items()):
        if isinstance(f, _types.FunctionType) and f.__name__ != name:
            g = _types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__,
                                    f.__closure__)
            g.__kwdefaults__ = f.__kwdefaults__
            g.__dict__.update(f.__dict__)
            g.__doc__, g.__module__ = f.__doc__, f.__module__
            g.__qualname__ = f"Tensor.{name}"
            setattr(_Tensor, name, g)


def _add_rdiv() -> None:
    """``Tensor.__rdiv__``, PyTorch's name of ``__rtruediv__`` (what ``1 / sub`` passes to
    ``__torch_function__``)."""
    if "__rdiv__" in vars(_Tensor):
        return
    f = vars(_Tensor)["__rtruediv__"]
    g = _types.FunctionType(f.__code__, f.__globals__, "__rdiv__", f.__defaults__,
                            f.__closure__)
    g.__kwdefaults__ = f.__kwdefaults__
    g.__doc__, g.__module__, g.__qualname__ = f.__doc__, f.__module__, "Tensor.__rdiv__"
    _Tensor.__rdiv__ = g


def install(ns: dict[str, Any]) -> None:
    """Bind ``tl._C`` (PyTorch's names for the switches) in tensorlib's namespace, as a module
    registered in ``sys.modules`` so that ``from tensorlib._C import ...`` works."""
    import sys
    _name_methods()
    _add_rdiv()
    c = ns.get("_C")
    if not isinstance(c, _types.ModuleType):
        old = c
        c = _types.ModuleType(f"{ns['__name__']}._C", "PyTorch's torch._C names that "
                              "tensorlib has (the __torch_function__ switches).")
        if old is not None:
            c.__dict__.update({k: v for k, v in vars(old).items() if not k.startswith("__")})
        ns["_C"] = c
    sys.modules[c.__name__] = c
    c.DisableTorchFunctionSubclass = DisableTorchFunctionSubclass
    c.DisableTorchFunction = DisableTorchFunction
    c._disabled_torch_function_impl = _disabled_torch_function_impl
