"""Parametrizations, as ``torch.nn.utils.parametrize``: a module's parameter or buffer
replaced by a function of other tensors, evaluated on every access.

>>> class Symmetric(nn.Module):
...     def forward(self, X):
...         return X.triu() + X.triu(1).T
>>> m = nn.Linear(3, 3)
>>> parametrize.register_parametrization(m, "weight", Symmetric())
>>> m.weight            # computed from m.parametrizations.weight.original
>>> list(m.state_dict())
['bias', 'parametrizations.weight.original']

How it works (as PyTorch's): the first parametrization on a module swaps the module's class
for a subclass made for that module alone (``ParametrizedLinear``), and each parametrized
name becomes a property of that class, whose getter runs the
:class:`ParametrizationList` held at ``module.parametrizations[name]`` and whose setter
runs its ``right_inverse``. Removing the last parametrization restores the class.
"""
from __future__ import annotations

import copyreg
from collections.abc import Sequence
from contextlib import contextmanager
from copy import deepcopy

from ..._tensor import Tensor
from ...autograd.mode import no_grad
from ..containers import ModuleDict, ModuleList
from ..module import Module
from ..parameter import Parameter

__all__ = ["ParametrizationList", "cached", "is_parametrized", "register_parametrization",
           "remove_parametrizations", "transfer_parametrizations_and_params",
           "type_before_parametrizations"]

_cache_enabled = 0
_cache: dict = {}

# instance attribute holding tensors that replace a parametrized tensor outright (set by
# tl.func.functional_call for a key naming the parametrized tensor itself)
_OVERRIDES = "_parametrize_overrides"


@contextmanager
def cached():
    """Compute each parametrized tensor once inside the block and reuse it (e.g. a recurrent
    layer's parametrized weight, read at every step), as PyTorch's ``parametrize.cached``.

    >>> with parametrize.cached():
    ...     out = rnn(x)
    """
    global _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache.clear()


def _register_parameter_or_buffer(module: Module, name: str, x: Tensor) -> None:
    if isinstance(x, Parameter):
        module.register_parameter(name, x)
    else:
        module.register_buffer(name, x)


def _maybe_set(dest: Tensor, src: Tensor) -> None:
    """Give ``dest`` the value of ``src`` in place (PyTorch's ``dest.set_(src)``), so the
    tensor keeps its identity and an optimizer holding it still does. A same-shaped value is
    copied (a captured step records the copy); another shape replaces the storage."""
    if dest is src:
        return
    with no_grad():
        if tuple(dest.shape) == tuple(src.shape) and dest._device == src._device:
            dest.copy_(src)
        else:
            dest.data = src.detach()


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor and the tensor(s) they start from: what
    ``module.parametrizations[name]`` is. Holds ``original`` when the first
    parametrization's ``right_inverse`` gives one tensor (or it has none), else
    ``original0``, ``original1``, ... Calling it computes the parametrized tensor.
    Not to be built directly: use :func:`register_parametrization`."""

    def __init__(self, modules: Sequence[Module], original: Tensor, unsafe: bool = False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = tuple(original.shape), original.dtype
        with no_grad():
            new = original
            for module in reversed(self):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass
        if not isinstance(new, (Tensor, Sequence)):
            raise ValueError("'right_inverse' must return a Tensor or a Sequence of tensors "
                             f"(list, tuple...). Got {type(new).__name__}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if original.dtype != new.dtype:
                raise ValueError("When `right_inverse` outputs one tensor, it may not change "
                                 f"the dtype.\noriginal.dtype: {original.dtype}\n"
                                 f"right_inverse(original).dtype: {new.dtype}")
            if original.device != new.device:
                raise ValueError("When `right_inverse` outputs one tensor, it may not change "
                                 f"the device.\noriginal.device: {original.device}\n"
                                 f"right_inverse(original).device: {new.device}")
            _maybe_set(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, originali in enumerate(new):
                if not isinstance(originali, Tensor):
                    raise ValueError("'right_inverse' must return a Tensor or a Sequence of "
                                     f"tensors (list, tuple...). Got element {i} of the "
                                     f"sequence with type {type(originali).__name__}.")
                originali = originali.detach()
                if isinstance(original, Parameter):
                    originali = Parameter(originali, original.requires_grad)
                originali.requires_grad_(original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", originali)
        if not self.unsafe:
            z = self()
            if not isinstance(z, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got "
                                 f"{type(z).__name__}.")
            if z.dtype != original_dtype:
                raise ValueError("Registering a parametrization may not change the dtype of "
                                 "the tensor, unless `unsafe` flag is enabled.\n"
                                 f"unparametrized dtype: {original_dtype}\n"
                                 f"parametrized dtype: {z.dtype}")
            if tuple(z.shape) != original_shape:
                raise ValueError("Registering a parametrization may not change the shape of "
                                 "the tensor, unless `unsafe` flag is enabled.\n"
                                 f"unparametrized shape: {original_shape}\n"
                                 f"parametrized shape: {tuple(z.shape)}")

    def right_inverse(self, value: Tensor) -> None:
        """Run the parametrizations' ``right_inverse`` in reverse order on ``value`` and store
        the result in ``original`` (or ``original0``, ``original1``, ...), in place."""
        with no_grad():
            for module in reversed(self):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not "
                                       "implement right_inverse.")
                value = module.right_inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError(f"`right_inverse` should return a tensor. Got "
                                     f"{type(value).__name__}")
                if value.dtype != self.original.dtype:
                    raise ValueError(f"The tensor returned by `right_inverse` has dtype "
                                     f"{value.dtype} while `original` has dtype "
                                     f"{self.original.dtype}")
                _maybe_set(self.original, value)
            else:
                if not isinstance(value, Sequence):
                    raise ValueError("'right_inverse' must return a sequence of tensors. "
                                     f"Got {type(value).__name__}.")
                if len(value) != self.ntensors:
                    raise ValueError("'right_inverse' must return a sequence of tensors of "
                                     f"length {self.ntensors}. Got a sequence of length "
                                     f"{len(value)}.")
                for i, t in enumerate(value):
                    original_i = getattr(self, f"original{i}")
                    if not isinstance(t, Tensor):
                        raise ValueError("'right_inverse' must return a sequence of tensors. "
                                         f"Got element {i} of type {type(t).__name__}.")
                    if original_i.dtype != t.dtype:
                        raise ValueError(f"Tensor {i} returned by `right_inverse` has dtype "
                                         f"{t.dtype} while `original{i}` has dtype "
                                         f"{original_i.dtype}")
                    _maybe_set(original_i, t)

    def forward(self) -> Tensor:
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for i in range(1, len(self)):
            x = self[i](x)
        return x


# --- the per-module class and its properties ---------------------------------------------
def _make_property(tensor_name: str) -> property:
    def get_parametrized(self) -> Tensor:
        overrides = self.__dict__.get(_OVERRIDES)
        if overrides and tensor_name in overrides:
            return overrides[tensor_name]
        parametrization = self.parametrizations[tensor_name]
        if _cache_enabled:
            key = (id(self), tensor_name)
            t = _cache.get(key)
            if t is None:
                t = _cache[key] = parametrization()
            return t
        return parametrization()

    def set_original(self, value: Tensor) -> None:
        self.parametrizations[tensor_name].right_inverse(value)

    return property(get_parametrized, set_original,
                    doc=f"``{tensor_name}``, computed by its parametrizations")


def _parametrized_deepcopy(self, memo):
    """A deep copy with a class of its own (properties on one module's class must not be
    shared: removing a parametrization from the copy would remove it from the original)."""
    obj = memo.get(id(self))
    if obj is not None:
        return obj
    base = type(self).__bases__[0]
    cls = _new_class(base)
    for name in self.__dict__["_modules"]["parametrizations"]:
        setattr(cls, name, _make_property(name))
    replica = cls.__new__(cls)
    memo[id(self)] = replica
    replica.__dict__.update(deepcopy(self.__dict__, memo))
    for slot in copyreg._slotnames(type(self)):
        if hasattr(self, slot):
            setattr(replica, slot, deepcopy(getattr(self, slot), memo))
    return replica


def _getstate(self):
    raise RuntimeError("Serialization of parametrized modules is only supported through "
                       "state_dict() (save module.state_dict(), rebuild the module, register "
                       "its parametrizations and load_state_dict)")


def _setattr(self, name, value):
    # a Parameter assigned to a parametrized name would hide behind the property (PyTorch's
    # register_parameter refuses it the same way); a plain tensor runs right_inverse
    if isinstance(value, Parameter) and is_parametrized(self, name):
        raise KeyError(f"attribute {name!r} already exists: it is parametrized (assign a "
                       "tensor to set it through right_inverse, or remove_parametrizations "
                       "first)")
    super(type(self), self).__setattr__(name, value)


def _new_class(cls: type) -> type:
    dct = {"__getstate__": _getstate, "__setattr__": _setattr}
    if not hasattr(cls, "__deepcopy__"):
        dct["__deepcopy__"] = _parametrized_deepcopy
    return type(f"Parametrized{cls.__name__}", (cls,), dct)


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` be ``parametrization(original)``, as PyTorch's.

    The parameter or buffer moves to ``module.parametrizations[tensor_name].original``
    (state-dict key ``parametrizations.<tensor_name>.original``), or to ``original0``,
    ``original1``, ... when ``parametrization.right_inverse`` returns several tensors.
    Registering on an already parametrized name appends (the parametrizations compose in
    registration order). Assigning ``module.<tensor_name> = value`` runs the
    ``right_inverse``s. ``unsafe=True`` skips the checks that the parametrization keeps the
    shape and dtype."""
    if not isinstance(parametrization, Module):
        raise TypeError(f"register_parametrization: the parametrization must be an nn.Module, "
                        f"got {type(parametrization).__name__}")
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            y = getattr(module, tensor_name)
            x = parametrization(y)
            if not isinstance(x, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got "
                                 f"{type(x).__name__}.")
            if x.dtype != y.dtype:
                raise ValueError("Registering a parametrization may not change the dtype of "
                                 "the tensor, unless the `unsafe` flag is enabled.\n"
                                 f"module.{tensor_name}.dtype: {y.dtype}\n"
                                 f"parametrization(module.{tensor_name}).dtype: {x.dtype}")
            if tuple(x.shape) != tuple(y.shape):
                raise ValueError("Registering a parametrization may not change the shape of "
                                 "the tensor, unless the `unsafe` flag is enabled.\n"
                                 f"module.{tensor_name}.shape: {tuple(y.shape)}\n"
                                 f"parametrization(module.{tensor_name}).shape: "
                                 f"{tuple(x.shape)}")
            if hasattr(parametrization, "right_inverse"):
                try:
                    z = parametrization.right_inverse(x)
                except NotImplementedError:
                    pass
                else:
                    if not isinstance(z, Tensor):
                        raise ValueError("parametrization.right_inverse must return a tensor. "
                                         f"Got: {type(z).__name__}")
                    if z.dtype != y.dtype or tuple(z.shape) != tuple(y.shape):
                        raise ValueError("The tensor returned by parametrization.right_inverse "
                                         "must have the same shape and dtype as "
                                         f"module.{tensor_name}, unless the `unsafe` flag is "
                                         f"enabled: got {tuple(z.shape)} {z.dtype}, expected "
                                         f"{tuple(y.shape)} {y.dtype}")
        plist = module.parametrizations[tensor_name]
        plist.append(parametrization)
        plist.unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        if original is None:
            raise ValueError(f"register_parametrization: {type(module).__name__}."
                             f"{tensor_name} is None; there is nothing to parametrize")
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            module.__class__ = _new_class(module.__class__)
            module.parametrizations = ModuleDict()
        if hasattr(module, tensor_name):
            raise AssertionError(f"Module already has an attribute named '{tensor_name}'")
        setattr(module.__class__, tensor_name, _make_property(tensor_name))
        module.parametrizations[tensor_name] = plist
    else:
        raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a "
                         f"parametrized element with name '{tensor_name}'")
    return module


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has a parametrization on ``tensor_name`` (on anything for None)."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:
    """Undo :func:`register_parametrization` on ``tensor_name``: it becomes a plain
    parameter (or buffer) again, holding its current parametrized value
    (``leave_parametrized=True``) or its unparametrized ``original``. With one original
    tensor, that same tensor object is kept (an optimizer holding it still works)."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                t = getattr(module, tensor_name)
            if t.dtype != original.dtype:
                raise ValueError(f"remove_parametrizations: the parametrized {tensor_name} has "
                                 f"dtype {t.dtype}, its original {original.dtype}; use "
                                 "leave_parametrized=False")
            _maybe_set(original, t)
    else:
        if not leave_parametrized:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor "
                             "that is parametrized in terms of a sequence of tensors.")
        t = getattr(module, tensor_name)
        original = Parameter(t.detach(), True) if t.requires_grad else t.detach()
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module


def type_before_parametrizations(module: Module) -> type:
    """The module's class before any parametrization was registered."""
    if is_parametrized(module):
        return module.__class__.__bases__[0]
    return type(module)


def transfer_parametrizations_and_params(from_module: Module, to_module: Module,
                                         tensor_name: str | None = None) -> Module:
    """Register ``from_module``'s parametrizations (all, or those of ``tensor_name``) on
    ``to_module`` too, sharing the parametrization modules and the original tensors."""
    if is_parametrized(from_module):
        names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
        for name in names:
            if not hasattr(to_module, name):
                setattr(to_module, name, Parameter(getattr(from_module, name).detach()))
            for fn in from_module.parametrizations[name]:
                register_parametrization(to_module, name, fn)
            src, dst = from_module.parametrizations[name], to_module.parametrizations[name]
            if src.is_tensor and dst.is_tensor:
                _register_parameter_or_buffer(dst, "original", src.original)
            else:
                for i in range(src.ntensors):
                    _register_parameter_or_buffer(dst, f"original{i}",
                                                  getattr(src, f"original{i}"))
    return to_module


_MISSING = object()


def _swap_override(module: Module, tensor_name: str, value):
    """Make ``module.<tensor_name>`` be ``value`` itself (its parametrization not run) until
    swapped back; ``_MISSING`` removes the override. Returns the previous override (or
    ``_MISSING``). How ``tl.func.functional_call`` passes a parametrized tensor directly."""
    d = module.__dict__.get(_OVERRIDES)
    if d is None:
        d = {}
        object.__setattr__(module, _OVERRIDES, d)
    old = d.pop(tensor_name, _MISSING)
    if value is not _MISSING:
        d[tensor_name] = value
    if not d:
        del module.__dict__[_OVERRIDES]
    return old
