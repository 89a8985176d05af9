"""``Module``: the base class of every layer and model."""
from __future__ import annotations

import copy
import os
import re
import threading
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .. import _dtypes
from .._device import Device
from .._tensor import Tensor
from ..autograd.function import Function
from ..errors import as_torch_style
from ..autograd.mode import no_grad, state
from .parameter import Buffer, Parameter

class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the keys it missed and the keys it did not use."""

    __slots__ = ()

    def __repr__(self) -> str:   # as PyTorch shows it as a notebook cell's last line
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__

_EXTRA_STATE = "_extra_state"          # the state-dict key suffix of get_extra_state()'s value
# the load_state_dict call in progress on this thread (None outside one): where the base
# _load_from_state_dict queues its deferred copies and notes bfloat16 entries
_loading = threading.local()


def _defers_copies(fn: Callable) -> Callable:
    """Mark a ``_load_from_state_dict`` that only edits ``state_dict`` and then calls
    super's: ``load_state_dict`` may then defer every copy until all keys are checked (so a
    failed load changes nothing), which an unmarked override, that may read what super()
    loaded, does not allow."""
    fn._defers_copies = True
    return fn

# hooks every module runs (register_module_forward_hook & co.), before its own
_global_forward_pre_hooks: OrderedDict = OrderedDict()
_global_forward_hooks: OrderedDict = OrderedDict()
_global_backward_hooks: OrderedDict = OrderedDict()
_global_backward_pre_hooks: OrderedDict = OrderedDict()
_global_with_kwargs: set = set()        # ids of global forward hooks taking kwargs
_global_always_called: set = set()      # ids of global forward hooks run on errors too


def register_module_forward_pre_hook(hook: Callable) -> _Handle:
    """``hook(module, args)`` before every module's forward (before the module's own
    pre-hooks), as ``torch.nn.modules.module.register_module_forward_pre_hook``.

    >>> h = tl.nn.module.register_module_forward_pre_hook(lambda m, args: None)
    >>> h.remove()
    """
    return _Handle(_global_forward_pre_hooks, hook)


def register_module_forward_hook(hook: Callable, *, with_kwargs: bool = False,
                                 always_call: bool = False) -> _Handle:
    """``hook(module, args, output)`` (``hook(module, args, kwargs, output)`` with
    ``with_kwargs``) after every module's forward, before the module's own forward hooks; a
    non-None result replaces the output. ``always_call``: also when forward raises."""
    h = _Handle(_global_forward_hooks, hook, extra=(_global_with_kwargs, _global_always_called))
    if with_kwargs:
        _global_with_kwargs.add(h.id)
    if always_call:
        _global_always_called.add(h.id)
    return h


def register_module_full_backward_hook(hook: Callable) -> _Handle:
    """``hook(module, grad_input, grad_output)`` for every module, run before the module's
    own full backward hooks (see :meth:`Module.register_full_backward_hook`)."""
    return _Handle(_global_backward_hooks, hook)


def register_module_full_backward_pre_hook(hook: Callable) -> _Handle:
    """``hook(module, grad_output)`` for every module, before its own backward pre-hooks."""
    return _Handle(_global_backward_pre_hooks, hook)


class Module:
    """Base class for layers and models, as in PyTorch.

    Subclasses assign Parameters, buffers and sub-Modules as attributes in
    ``__init__`` and define ``forward``; calling the module runs ``forward``.

    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         return self.fc(x).relu()
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # class-level empty defaults: the registering methods give an instance its own (a
    # subclass that skips Module.__init__'s hook stores still works)
    _forward_hooks_with_kwargs: frozenset = frozenset()
    _forward_hooks_always_called: frozenset = frozenset()
    _forward_pre_hooks_with_kwargs: frozenset = frozenset()
    _old_backward_hooks: dict = {}
    _state_dict_pre_hooks: dict = {}
    _state_dict_hooks: dict = {}
    _load_state_dict_post_hooks: dict = {}
    _load_state_dict_pre_hooks: dict = {}
    # the format version saved in state_dict()._metadata; bump it in a subclass whose saved
    # entries change, and read local_metadata["version"] in its _load_from_state_dict
    _version: int = 1

    def _own_store(self, name: str, factory=OrderedDict):
        if name not in self.__dict__:
            object.__setattr__(self, name, factory())
        return self.__dict__[name]

    # --- attribute registration -------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called; "
                                 "call super().__init__() first in your __init__")
        params, bufs, mods = self._parameters, self._buffers, self._modules
        # re-assigning keeps the slot (weight tying, reset_parameters): as PyTorch, since
        # parameters() order is what optimizer state is matched by
        if isinstance(value, Parameter):
            if name not in params:
                self._discard(name)
            params[name] = value
        elif isinstance(value, Module):
            if name in params:
                raise TypeError(f"cannot assign {type(value).__name__!r} as parameter {name!r} "
                                "(nn.Parameter or None expected)")
            if name not in mods:
                self._discard(name)
            mods[name] = value
        elif isinstance(value, Buffer):        # nn.Buffer: registered, with its persistence
            if name in params:
                raise TypeError(f"cannot assign a Buffer as parameter {name!r} (nn.Parameter "
                                "or None expected)")
            if name not in bufs:
                self._discard(name)
            self.register_buffer(name, value, persistent=value.persistent)
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                "(nn.Parameter or None expected)")
            params[name] = None
        elif name in bufs:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} "
                                "(Tensor or None expected)")
            bufs[name] = value
        elif name in mods:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module "
                                f"{name!r} (nn.Module or None expected)")
            mods[name] = None
        else:
            object.__setattr__(self, name, value)

    def _discard(self, name: str) -> None:
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)
        self._modules.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            s = d.get(store)
            if s is not None and name in s:
                return s[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, a declared but absent parameter) as ``name``."""
        _check_name(self, name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be an nn.Parameter or None, "
                            f"got {type(param).__name__}")
        self._discard(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register non-trainable state (e.g. BatchNorm's running mean).

        Persistent buffers are saved in ``state_dict``; others are not.
        """
        _check_name(self, name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, "
                            f"got {type(tensor).__name__}")
        self._discard(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        _check_name(self, name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be an nn.Module or None, "
                            f"got {type(module).__name__}")
        self._discard(name)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r} "
                                     f"(looking up {target!r})")
            mod = mod._modules[part]
        return mod

    def set_submodule(self, target: str, module: Module, strict: bool = False) -> None:
        """Put ``module`` at the dotted path ``target`` (``"encoder.0"``), as PyTorch's: the
        parent must exist; an existing attribute there must be a module; with ``strict`` it
        must exist.

        >>> net.set_submodule("0", nn.Identity())
        """
        if target == "":
            raise ValueError("set_submodule: cannot set the submodule without a target name")
        if not isinstance(module, Module):
            raise ValueError(f"set_submodule: `module` is not an nn.Module, found "
                             f"{type(module).__name__}")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if hasattr(parent, name):
            if not isinstance(getattr(parent, name), Module):
                raise AttributeError(f"set_submodule: `{name}` is not an nn.Module (looking "
                                     f"up {target!r})")
        elif strict:
            raise AttributeError(f"set_submodule: {parent._get_name()} has no attribute "
                                 f"`{name}` (strict=True only replaces an existing submodule)")
        setattr(parent, name, module)

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at a dotted path such as ``"bn.running_mean"``."""
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._buffers:
            raise AttributeError(f"{type(mod).__name__} has no buffer {name!r} (looking up "
                                 f"{target!r})")
        return mod._buffers[name]

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path such as ``"encoder.0.weight"``."""
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        p = mod._parameters.get(name)
        if p is None:
            raise AttributeError(f"{type(mod).__name__} has no parameter {name!r} (looking up "
                                 f"{target!r})")
        return p

    # --- calling ----------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # class-level empty defaults: the registering methods give an instance its own
    _backward_hooks: dict = {}
    _backward_pre_hooks: dict = {}

    def __call__(self, *args, **kwargs):
        try:
            if not (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks
                    or self._backward_pre_hooks or self._old_backward_hooks
                    or _global_forward_pre_hooks or _global_forward_hooks
                    or _global_backward_hooks or _global_backward_pre_hooks):
                return self.forward(*args, **kwargs)
            return self._call_with_hooks(args, kwargs)
        except (ValueError, TypeError) as e:
            if (type(e) not in (ValueError, TypeError) or not _raised_by_library(e)
                    or _is_binding_error(e)):
                raise
            # a layer's own input check (channels, in_features...): PyTorch raises
            # RuntimeError there, so a port's `except RuntimeError` must catch it too
            raise as_torch_style(type(e))(*e.args).with_traceback(e.__traceback__) from None

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        out = None
        ran: set = set()        # always_call hooks that already ran
        try:
            return self._run_hooked(args, kwargs, ran)
        except Exception:
            for hid, hook in self._forward_hook_items():
                if hid in ran or not (hid in self._forward_hooks_always_called
                                      or hid in _global_always_called):
                    continue
                try:
                    res = (hook(self, args, kwargs, out) if self._takes_kwargs(hid)
                           else hook(self, args, out))
                    if res is not None:
                        out = res
                except Exception as e:
                    warnings.warn(f"forward hook with always_call=True raised an exception "
                                  f"that was ignored: {e!r}", stacklevel=2)
            raise

    def _forward_hook_items(self):
        return (*_global_forward_hooks.items(), *self._forward_hooks.items())

    def _takes_kwargs(self, hid) -> bool:
        return hid in self._forward_hooks_with_kwargs or hid in _global_with_kwargs

    def _run_hooked(self, args: tuple, kwargs: dict, ran: set):
        for hid, hook in (*_global_forward_pre_hooks.items(),
                          *self._forward_pre_hooks.items()):
            if hid in self._forward_pre_hooks_with_kwargs:
                res = hook(self, args, kwargs)
                if res is not None:
                    if not (isinstance(res, tuple) and len(res) == 2):
                        raise RuntimeError("forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {res}.")
                    args, kwargs = res
            else:
                res = hook(self, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        bw = None
        if ((self._backward_hooks or self._backward_pre_hooks or _global_backward_hooks
             or _global_backward_pre_hooks) and state.grad_enabled and state.tracer is None):
            bw = _BackwardHooks(self)
            args = bw.wrap_inputs(args)
        out = self.forward(*args, **kwargs)
        for hid, hook in self._forward_hook_items():
            ran.add(hid)
            res = (hook(self, args, kwargs, out) if self._takes_kwargs(hid)
                   else hook(self, args, out))
            if res is not None:
                out = res
        if bw is not None:
            out = bw.wrap_outputs(out)
        if self._old_backward_hooks and state.grad_enabled and state.tracer is None:
            _attach_old_backward_hooks(self, args, out)
        return out

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False, always_call: bool = False) -> _Handle:
        """``hook(module, args, output)`` runs after forward (``hook(module, args, kwargs,
        output)`` with ``with_kwargs``); a non-None result replaces the output. ``prepend``
        runs it before the hooks already registered; ``always_call`` runs it even when
        forward raises (then with output None), as PyTorch's.

        >>> h = m.register_forward_hook(lambda mod, args, out: out * 2)
        >>> h.remove()
        """
        wk = self._own_store("_forward_hooks_with_kwargs", set)
        ac = self._own_store("_forward_hooks_always_called", set)
        h = _Handle(self._forward_hooks, hook, prepend=prepend, extra=(wk, ac))
        if with_kwargs:
            wk.add(h.id)
        if always_call:
            ac.add(h.id)
        return h

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> _Handle:
        """``hook(module, args)`` runs before forward; a non-None result replaces args (a
        non-tuple is wrapped in one). With ``with_kwargs``: ``hook(module, args, kwargs)``,
        returning None or ``(args, kwargs)``. ``prepend`` runs it before the others."""
        wk = self._own_store("_forward_pre_hooks_with_kwargs", set)
        h = _Handle(self._forward_pre_hooks, hook, prepend=prepend, extra=(wk,))
        if with_kwargs:
            wk.add(h.id)
        return h

    def register_backward_hook(self, hook: Callable) -> _Handle:
        """The old (deprecated in PyTorch) module backward hook: ``hook(module, grad_input,
        grad_output)`` on the tape node of the module's output, so ``grad_input`` holds the
        gradients for that last op's inputs (None for those that need none) and
        ``grad_output`` its output gradients; a non-None result replaces ``grad_input``.
        That is the gradient with respect to the module's input only for a module of one
        op; otherwise it warns, as PyTorch. Prefer :meth:`register_full_backward_hook`."""
        if self._backward_hooks:
            raise RuntimeError("Cannot use both regular backward hooks and full backward "
                               "hooks on a single Module. Please use only one of them.")
        return _Handle(self._own_store("_old_backward_hooks"), hook)

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False) -> _Handle:
        """``hook(module, grad_input, grad_output)`` runs when the gradients with respect to
        the module's positional inputs have been computed, as PyTorch's: ``grad_input`` has one
        entry per positional argument (None for a non-tensor; zeros for a tensor no gradient
        reached, one that needs none included), ``grad_output`` one per output (None for an
        output no gradient reached). A non-None result (a tuple as long as ``grad_input``)
        replaces ``grad_input``. When no input requires grad the hook runs with all-None
        ``grad_input`` once ``grad_output`` is known. ``prepend`` runs it before the hooks
        already registered. Not run inside graph capture."""
        if self._old_backward_hooks:
            raise RuntimeError("Cannot use both regular backward hooks and full backward "
                               "hooks on a single Module. Please use only one of them.")
        return _Handle(self._own_store("_backward_hooks"), hook, prepend=prepend)

    def register_full_backward_pre_hook(self, hook: Callable, prepend: bool = False) -> _Handle:
        """``hook(module, grad_output)`` runs when the gradients with respect to the module's
        outputs have been computed, before those with respect to its inputs; a non-None
        result (a tuple as long as ``grad_output``) replaces ``grad_output``. ``prepend``
        runs it before the hooks already registered."""
        return _Handle(self._own_store("_backward_pre_hooks"), hook, prepend=prepend)

    # --- traversal --------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                       remove_duplicate)

    def modules(self, remove_duplicate: bool = True) -> Iterator[Module]:
        """This module and every submodule, depth first; a module reachable at several
        paths appears once unless ``remove_duplicate=False``."""
        for _, m in self.named_modules(remove_duplicate=remove_duplicate):
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool, remove_duplicate=True):
        seen = set()
        # as PyTorch: without deduplication a module shared at two paths is visited at both
        mods = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                if recurse else [(prefix, self)])
        for mprefix, m in mods:
            for name, v in getattr(m, store).items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield (f"{mprefix}.{name}" if mprefix else name), v

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(name, parameter) pairs, each shared parameter once (``remove_duplicate=False``:
        under every name, a module shared at two paths included, as PyTorch)."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # --- modes and gradients ------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active, batch norm uses batch statistics): sets
        ``self.training`` and calls each child's own ``train(mode)``, as PyTorch (so a
        subclass overriding ``train``, such as a frozen BatchNorm, keeps its behaviour inside
        a parent)."""
        if not isinstance(mode, bool):
            raise ValueError(f"{type(self).__name__}.train(): training mode is expected to be "
                             f"boolean, got {type(mode).__name__}")
        object.__setattr__(self, "training", mode)
        for m in self.children():
            m.train(mode)
        return self

    def eval(self) -> Module:
        """Inference mode: same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze (True) every parameter of this module."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (``set_to_none``) or zero the ``.grad`` of every parameter."""
        from ..optim._fused import zero_grads
        zero_grads(list(self.parameters()), set_to_none)

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every submodule (children first) and on self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # --- devices and dtypes -----------------------------------------------------------
    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Module:
        """Replace every parameter's and buffer's value (and a parameter's ``.grad``) by
        ``fn(tensor)``, children first, as PyTorch's ``_apply``: what ``to``, ``float``,
        ``double``, ``half``, ``cuda``, ``cpu``, ``type`` and ``to_empty`` go through, so a
        subclass overriding ``_apply`` (to convert tensor caches that are not buffers) sees
        them all. Tensors keep their identity (the new value is put into them in place), so
        optimizers and captured graphs holding them see the change."""
        if recurse:
            for m in self.children():
                m._apply(fn)
        with no_grad():
            for store in (self._parameters, self._buffers):
                for t in store.values():
                    if t is None:
                        continue
                    _set_value(t, fn(t))
                    if t.grad is not None:
                        _set_value(t.grad, fn(t.grad))
        return self

    def to(self, device=None, dtype=None, non_blocking: bool = False,
           memory_format=None) -> Module:
        """Move (and/or cast floating-point and complex) parameters and buffers in place.

        Parameters keep their identity, so an optimizer built before ``to`` still
        holds them. As PyTorch's, the first argument may be a dtype or a tensor (its device
        and dtype); ``non_blocking`` is accepted; ``memory_format`` (``tl.channels_last``)
        lays out the 4-D and 5-D parameters and buffers in it, as PyTorch's (see Tensor.to).
        """
        if isinstance(device, Tensor):
            device, dtype = device.device, dtype if dtype is not None else device.dtype
        if isinstance(device, (np.dtype, type)) and dtype is None:
            device, dtype = None, device
        dev = Device(device) if device is not None else None
        dt = _dtypes.as_dtype(dtype) if dtype is not None else None
        if dt is not None and dt.kind not in "fc":
            raise TypeError(f"Module.to: only floating-point and complex dtypes are allowed, "
                            f"got {dt}")
        if dt is not None and dt.kind == "c":
            import warnings
            warnings.warn("Complex modules are a new feature: some modules may not work as "
                          "expected with complex parameters or buffers (as PyTorch warns).",
                          UserWarning, stacklevel=2)
        if memory_format is None:
            return self._apply(lambda t: _converted(t, dev, dt))
        from ..ops.torch_settings import check_memory_format
        check_memory_format("Module.to", memory_format)

        def fn(t):
            r = _converted(t, dev, dt)
            return r.to(memory_format=memory_format) if r.ndim in (4, 5) else r
        return self._apply(fn)

    def cpu(self) -> Module:
        """Move every parameter and buffer to the CPU."""
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        """Move every parameter and buffer to ``cuda:device`` (default ``cuda:0``)."""
        if device is None:
            return self.to("cuda:0")
        return self.to(device if isinstance(device, (Device, str)) else f"cuda:{int(device)}")

    def float(self) -> Module:
        """Cast floating-point parameters and buffers to float32."""
        return self.to(dtype=_dtypes.float32)

    def double(self) -> Module:
        """Cast floating-point parameters and buffers to float64."""
        return self.to(dtype=_dtypes.float64)

    def half(self) -> Module:
        """Cast floating-point parameters and buffers to float16."""
        return self.to(dtype=_dtypes.float16)

    def type(self, dst_type) -> Module:
        """Cast every parameter and buffer, integer ones included, to ``dst_type`` (a dtype
        or a name such as ``"torch.DoubleTensor"``), as PyTorch's ``Module.type``."""
        return self._apply(lambda t: t.type(dst_type))

    def to_empty(self, *, device, recurse: bool = True) -> Module:
        """Replace every parameter and buffer by an uninitialised one of the same shape and
        dtype on ``device`` (PyTorch's, for modules built without their values)."""
        from ..creation import empty_like
        return self._apply(lambda t: empty_like(t, device=device), recurse=recurse)

    def share_memory(self) -> Module:
        """Move every parameter and buffer to shared memory (``Tensor.share_memory_``), as
        PyTorch's: processes forked afterwards (Hogwild training) update the same values.
        Returns ``self``."""
        from .._torch_methods import share_storages
        share_storages([*self.parameters(), *self.buffers()])
        return self

    # --- state dict -------------------------------------------------------------------
    def register_state_dict_pre_hook(self, hook: Callable) -> _Handle:
        """``hook(module, prefix, keep_vars)`` runs before this module's ``state_dict`` adds
        its entries (also when a parent's ``state_dict`` reaches it), as PyTorch's."""
        return _Handle(self._own_store("_state_dict_pre_hooks"), hook)

    def _register_state_dict_hook(self, hook: Callable) -> _Handle:
        """``hook(module, state_dict, prefix, local_metadata)`` runs after this module (and
        its children) added their entries; a non-None result replaces the state dict, as
        PyTorch's private ``_register_state_dict_hook``."""
        return _Handle(self._own_store("_state_dict_hooks"), hook)

    def register_state_dict_post_hook(self, hook: Callable) -> _Handle:
        """``hook(module, state_dict, prefix, local_metadata)`` after this module's entries
        are in ``state_dict`` (it edits it in place; a returned value is an error)."""
        def post(module, sd, prefix, meta):
            if hook(module, sd, prefix, meta) is not None:
                raise RuntimeError("state_dict post-hook must return None")
        return _Handle(self._own_store("_state_dict_hooks"), post)

    def register_load_state_dict_post_hook(self, hook: Callable) -> _Handle:
        """``hook(module, incompatible_keys)`` after ``load_state_dict`` loaded this module
        (also when it is a child of the module loaded); it may edit
        ``incompatible_keys.missing_keys`` / ``.unexpected_keys`` in place (with
        ``strict=True`` the keys still listed afterwards raise), and must return None."""
        return _Handle(self._own_store("_load_state_dict_post_hooks"), hook)

    def register_load_state_dict_pre_hook(self, hook: Callable) -> _Handle:
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)`` runs when ``load_state_dict`` reaches this module,
        before it loads its own entries, as PyTorch's: it may rewrite ``state_dict`` (a copy
        of the one given) in place, e.g. to rename a checkpoint's keys."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def _register_load_state_dict_pre_hook(self, hook: Callable,
                                           with_module: bool = False) -> _Handle:
        """As :meth:`register_load_state_dict_pre_hook`; without ``with_module`` the hook is
        not given the module (PyTorch's private form)."""
        return _Handle(self._own_store("_load_state_dict_pre_hooks"),
                       _WrappedHook(hook, self if with_module else None))

    def get_extra_state(self) -> Any:
        """Override (with :meth:`set_extra_state`) to save any object beside the tensors:
        ``state_dict`` then holds it under ``prefix + "_extra_state"``, as PyTorch's."""
        raise RuntimeError("Module.get_extra_state: override it (and set_extra_state) to save "
                           "extra state; the base class has none")

    def set_extra_state(self, state: Any) -> None:
        """Override (with :meth:`get_extra_state`): ``load_state_dict`` calls it with the
        ``_extra_state`` entry."""
        raise RuntimeError("Module.set_extra_state: override it (and get_extra_state) to load "
                           "extra state; the base class has none")

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        """Put this module's own parameters, persistent buffers and extra state (not its
        children's) into ``destination``; ``state_dict`` calls it on every module, so a
        subclass may override it, as PyTorch's."""
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                destination[prefix + name] = b if keep_vars else b.detach()
        if type(self).get_extra_state is not Module.get_extra_state:
            destination[prefix + _EXTRA_STATE] = self.get_extra_state()

    def state_dict(self, *args, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict:
        """Parameters and persistent buffers by dotted name (detached, sharing storage), and
        the ``_extra_state`` of modules defining ``get_extra_state``. As PyTorch's, a new
        result has ``_metadata``: ``{module prefix: {"version": module._version}}``, which
        ``load_state_dict`` hands to each module's ``_load_from_state_dict``. Positional
        ``(destination, prefix, keep_vars)`` are accepted, as PyTorch (deprecated there)."""
        if args:
            destination = args[0] if destination is None else destination
            if len(args) > 1 and prefix == "":
                prefix = args[1]
            if len(args) > 2 and keep_vars is False:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        local_metadata = {"version": self._version}
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for hook in self._state_dict_pre_hooks.values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(destination=destination, prefix=prefix + name + ".",
                             keep_vars=keep_vars)
        for hook in self._state_dict_hooks.values():
            res = hook(self, destination, prefix, local_metadata)
            if res is not None:
                destination = res
        return destination

    @_defers_copies
    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        """Load this module's own entries (not its children's) from ``state_dict`` (a copy
        the caller may edit), as PyTorch's: runs the load pre-hooks, copies each parameter
        and persistent buffer found (appending a missing one to ``missing_keys``, a wrong
        shape or type to ``error_msgs``), calls ``set_extra_state``, and with ``strict``
        lists the keys under ``prefix`` that name nothing here in ``unexpected_keys``.
        Override it (calling super) to remap old checkpoints; ``local_metadata["version"]``
        is the saved module's ``_version``."""
        for hook in self._load_state_dict_pre_hooks.values():
            hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                 error_msgs)
        call = getattr(_loading, "call", None)
        pending = call.pending if call is not None else None
        assign = local_metadata.get("assign_to_params_buffers", False)
        local = {k: v for k, v in self._parameters.items() if v is not None}
        local.update((k, v) for k, v in self._buffers.items()
                     if v is not None and k not in self._non_persistent)
        for name, target in local.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            v = state_dict[key]
            if not _array_like(v):
                error_msgs.append(f'While copying the parameter named "{key}", expected a '
                                  f"Tensor or array from checkpoint but received {type(v)}")
                continue
            if "bfloat16" in (_dtypes.torch_dtype_name(getattr(v, "dtype", None)),
                              getattr(getattr(v, "dtype", None), "name", None)):
                if call is not None:    # load_state_dict lists them all in one message
                    call.bf16.append(repr(key))
                else:
                    error_msgs.append(_bf16_error([repr(key)]))
                continue
            shape = tuple(v.shape)
            if target.ndim == 0 and shape == (1,):      # PyTorch's: 0.3-era 1-element scalars
                v, shape = v[0], ()
            if shape != tuple(target.shape):
                error_msgs.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{shape} from checkpoint, the shape in current model is "
                                  f"{tuple(target.shape)}.")
                continue
            copy_in = _copier(self, name, target, v, assign)
            if pending is None:
                copy_in()
            else:
                pending.append(copy_in)
        key = prefix + _EXTRA_STATE
        if type(self).set_extra_state is not Module.set_extra_state:
            if key in state_dict:
                value = state_dict[key]
                if pending is None:
                    self.set_extra_state(value)
                else:
                    pending.append(lambda: self.set_extra_state(value))
            elif strict:
                missing_keys.append(key)
        elif strict and key in state_dict:
            unexpected_keys.append(key)
        if strict:
            for k in state_dict:
                if k.startswith(prefix) and k != key:
                    head, dot, _ = k[len(prefix):].partition(".")
                    if (dot and head not in self._modules) or (not dot and head not in local):
                        unexpected_keys.append(k)

    def load_state_dict(self, state_dict: Mapping, strict: bool = True,
                        assign: bool = False) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        As PyTorch's, it walks the modules (parent, then children), calling each one's
        ``_load_from_state_dict`` (so overrides and load pre-hooks can remap keys) and, after
        its children, its load post-hooks. With ``strict`` every key must match exactly.
        Shape mismatches always raise; the error lists every missing, unexpected and
        mis-shaped key at once. Returns ``(missing_keys, unexpected_keys)``. Values are cast
        to each tensor's dtype; with ``assign=True`` (PyTorch's) the module holds the given
        tensors themselves (a Parameter as it is, another tensor wrapped in one that shares
        its memory and keeps the old ``requires_grad``); an array, or a tensor on another
        device, is copied in the value's dtype. bfloat16 values raise (tensorlib has no
        bfloat16: ``.float()`` them first). Unlike PyTorch, when no module overrides
        ``_load_from_state_dict`` or has load hooks, nothing is loaded if it raises.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError("load_state_dict: expected state_dict to be dict-like, got "
                            f"{type(state_dict).__name__}")
        for name, m in self.named_modules():    # lazy layers take the checkpoint's shapes
            hook = getattr(m, "_lazy_load_hook", None)
            if hook is not None and m is not self:
                hook(state_dict, name + ".")
        missing: list[str] = []
        unexpected: list[str] = []
        errors: list[str] = []
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)    # a copy, which _load_from_state_dict may edit
        if metadata is not None:
            state_dict._metadata = metadata
        # only the base class's loading: defer the copies until all is checked, so a failed
        # load changes nothing (an override may read what super() loaded: copy at once there)
        atomic = all(getattr(type(m)._load_from_state_dict, "_defers_copies", False)
                     and not m._load_state_dict_pre_hooks and not m._load_state_dict_post_hooks
                     for m in self.modules())
        call = _LoadCall([] if atomic else None)

        def load(module: Module, local_sd: dict, prefix: str = "") -> None:
            meta = dict(metadata.get(prefix[:-1], {})) if metadata is not None else {}
            if assign:
                meta["assign_to_params_buffers"] = True
            module._load_from_state_dict(local_sd, prefix, meta, True, missing, unexpected,
                                         errors)
            for name, child in module._modules.items():
                if child is not None:
                    cp = prefix + name + "."
                    load(child, {k: v for k, v in local_sd.items() if k.startswith(cp)}, cp)
            keys = IncompatibleKeys(missing, unexpected)
            for hook in module._load_state_dict_post_hooks.values():
                if hook(module, keys) is not None:
                    raise RuntimeError("load_state_dict post-hook must return None (edit "
                                       "incompatible_keys in place)")

        outer = getattr(_loading, "call", None)
        _loading.call = call
        try:
            with no_grad():
                load(self, state_dict)
        finally:
            _loading.call = outer
        if strict:
            errors[:0] = _key_errors(missing, unexpected)
        if call.bf16:
            errors.append(_bf16_error(call.bf16))
        if errors:
            raise _load_error(self, errors)
        with no_grad():
            for copy_in in call.pending or ():
                copy_in()
        return IncompatibleKeys(missing, unexpected)

    # --- printing ---------------------------------------------------------------------
    def extra_repr(self) -> str:
        """One line of this module's settings, shown in its repr."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        if not self._modules:
            return f"{self._get_name()}({extra})" if "\n" not in extra else \
                f"{self._get_name()}(\n  " + "\n  ".join(lines) + "\n)"
        return f"{self._get_name()}(\n  " + "\n  ".join(lines) + "\n)"


_STORES = {"parameter": "_parameters", "buffer": "_buffers", "module": "_modules"}


def _check_name(module: Module, name: str, what: str) -> None:
    """A name ``register_<what>`` may take: valid, and not already another kind of
    attribute (a buffer registered over a parameter would drop it from the optimizer's
    parameters silently; PyTorch raises too). Re-registering the same kind replaces."""
    if "_parameters" not in module.__dict__:
        raise AttributeError(f"cannot register a {what} before Module.__init__() is called")
    if not isinstance(name, str):
        raise TypeError(f"{what} name must be a string, got {type(name).__name__}")
    if not name or "." in name:
        raise KeyError(f"{what} name must be non-empty and contain no '.', got {name!r}")
    if hasattr(type(module), name):
        raise KeyError(f"attribute {name!r} already exists on {type(module).__name__}")
    d = module.__dict__
    for kind, store in _STORES.items():
        if kind != what and name in d[store]:
            raise KeyError(f"attribute {name!r} already exists: {type(module).__name__} has a "
                           f"{kind} of that name (delattr it first to replace it with a {what})")
    if name in d:
        raise KeyError(f"attribute {name!r} already exists on this {type(module).__name__}")


class _HookIdentity(Function):
    """Identity on the tensors it is given; its backward hands their gradients to
    ``on_grads``, which returns the gradients to pass on (how a module sees, and may replace,
    the gradients at its boundary, as PyTorch's BackwardHookFunction)."""

    @staticmethod
    def forward(ctx, on_grads, *tensors):
        ctx.on_grads = on_grads
        # an output nobody used reaches on_grads as None (PyTorch's grad_output has None)
        ctx.set_materialize_grads(False)
        return tensors

    @staticmethod
    def backward(ctx, *grads):
        return (None, *ctx.on_grads(grads))


def _hook_result(hook: Callable, res, old: tuple, what: str, module: Module,
                 kind: str = "full backward hook") -> tuple:
    """A module backward hook's result ``res`` in place of ``old`` (its ``what``, a tuple of
    gradients), checked as PyTorch does: as many entries, each None or a Tensor of its old
    entry's shape, dtype and device (a wrong one would be broadcast or fail deep inside
    backward, naming no hook)."""
    from ..autograd.engine import _check_hook_grad, _hook_name
    if kind == "backward hook" and not isinstance(res, tuple):
        raise TypeError(f"expected tuple, but hook {_hook_name(hook)!r} returned "
                        f"{type(res).__name__!r} (backward hook of {type(module).__name__}: "
                        f"return a tuple with one entry per {what} entry)")
    res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
    n = len(old)
    if len(res) != n:
        head = ("Backward pre hook" if kind == "full backward pre hook" else "Backward hook")
        if kind == "backward hook":     # (the deprecated one: PyTorch's words for it)
            raise RuntimeError(f"hook {_hook_name(hook)!r} has returned an incorrect number "
                               f"of values (got {len(res)}, but expected {n}): backward hook "
                               f"of {type(module).__name__}, one per entry of {what}")
        raise RuntimeError(f"{head} returned an invalid number of {what}, got {len(res)}, but "
                           f"expected {n} ({kind} {_hook_name(hook)!r} of "
                           f"{type(module).__name__}: one entry per {what} entry, None for "
                           "no gradient)")
    where = f" ({kind} of {type(module).__name__})"
    return tuple(r if r is None or o is None
                 else _check_hook_grad(hook, r, o, where, f"{what}[{i}]")
                 for i, (r, o) in enumerate(zip(res, old)))


def _through(items: tuple, on_grads) -> tuple[list, tuple]:
    """The tensors among ``items`` that require grad, passed through one ``_HookIdentity``
    whose backward calls ``on_grads``: (their positions, ``items`` with them replaced)."""
    pos = [i for i, a in enumerate(items) if isinstance(a, Tensor) and a._rg]
    if not pos:
        return pos, items
    new = list(items)
    for i, t in zip(pos, _HookIdentity.apply(on_grads, *(items[i] for i in pos))):
        new[i] = t
    return pos, tuple(new)


class _BackwardHooks:
    """One module call's full backward hooks: the output side records ``grad_output`` (after
    the pre-hooks), the input side calls the hooks with ``grad_input``."""

    def __init__(self, module: Module):
        self.module = module
        self.hooks = [*_global_backward_hooks.values(), *module._backward_hooks.values()]
        self.pre_hooks = [*_global_backward_pre_hooks.values(),
                          *module._backward_pre_hooks.values()]
        self.n_in, self.in_pos = 0, []
        self.zero_like: dict = {}   # tensor inputs that get a zero grad_input when none came
        self.n_out, self.out_pos = 0, []
        self.grad_output: tuple = ()

    def wrap_inputs(self, args: tuple) -> tuple:
        self.n_in = len(args)
        self.in_pos, args = _through(args, self._input_grads)
        if self.in_pos:
            # as PyTorch: every tensor argument has a grad_input entry, zeros where no
            # gradient reached it (one that needs none included); other arguments get None
            self.zero_like = {i: a for i, a in enumerate(args) if isinstance(a, Tensor)}
        return args

    def wrap_outputs(self, out):
        single = isinstance(out, Tensor)
        if not single and not isinstance(out, tuple):
            return out
        outs = (out,) if single else out
        self.n_out = len(outs)
        self.out_pos, outs = _through(outs, self._output_grads)
        return outs[0] if single else outs

    def _output_grads(self, grads: tuple) -> tuple:
        go: list = [None] * self.n_out
        for i, g in zip(self.out_pos, grads):
            go[i] = g
        gout = tuple(go)
        for hook in self.pre_hooks:
            res = hook(self.module, gout)
            if res is not None:
                gout = _hook_result(hook, res, gout, "grad_output", self.module,
                                    "full backward pre hook")
        self.grad_output = gout
        if not self.in_pos:
            # no input side will ever run backward: PyTorch calls the hooks here
            for hook in self.hooks:
                nones = (None,) * self.n_in
                res = hook(self.module, nones, gout)
                if res is not None and any(r is not None for r in
                                           _hook_result(hook, res, nones, "grad_input",
                                                        self.module)):
                    raise RuntimeError("backward hook returned gradients for inputs of "
                                       f"{type(self.module).__name__} that do not require "
                                       "grad")
        return tuple(gout[i] for i in self.out_pos)

    def _input_grads(self, grads: tuple) -> tuple:
        from ..creation import zeros_like
        got = dict(zip(self.in_pos, grads))
        gi: tuple = tuple(got[i] if got.get(i) is not None
                          else zeros_like(self.zero_like[i]) if i in self.zero_like else None
                          for i in range(self.n_in))
        for hook in self.hooks:
            res = hook(self.module, gi, self.grad_output)
            if res is not None:
                gi = _hook_result(hook, res, gi, "grad_input", self.module)
        return tuple(gi[i] for i in self.in_pos)


def _attach_old_backward_hooks(module: Module, args: tuple, out) -> None:
    """``register_backward_hook``'s hooks on the tape node of the module's (first) output,
    with PyTorch's warnings where that node is not the whole module."""
    var = out
    while not isinstance(var, Tensor):
        if isinstance(var, dict):
            var = next(v for v in var.values() if isinstance(v, Tensor))
        else:
            var = var[0]
    node = var._node
    if node is None:
        return
    hooks = list(module._old_backward_hooks.values())
    op = copy.copy(node.op)     # this node's own rule, wrapped: grad_input is its result
    inner = op.vjp

    def vjp(nd, *gouts):
        gin = tuple(inner(nd, *gouts))
        gin = tuple(g if x._rg else None for g, x in zip(gin, nd.inputs))
        for hook in hooks:
            res = hook(module, gin, gouts)
            if res is not None:
                gin = _hook_result(hook, res, gin, "grad_input", module, "backward hook")
        return gin
    op.vjp = vjp
    node.op = op
    _warn_old_backward_hook(args, out, node)


def _warn_old_backward_hook(inputs, result, node) -> None:
    end = (" is deprecated and will be removed in future versions. This hook will be missing "
           "some ")
    full = " Please use register_full_backward_hook to get the documented behavior."
    if isinstance(result, Tensor):
        result = (result,)
    elif not (isinstance(result, tuple) and all(isinstance(r, Tensor) for r in result)):
        warnings.warn("Using non-full backward hooks on a Module that does not return a single "
                      "Tensor or a tuple of Tensors" + end + "of the grad_output." + full,
                      FutureWarning, stacklevel=6)
        return
    if not all(isinstance(i, Tensor) for i in inputs):
        warnings.warn("Using non-full backward hooks on a Module that does not take as input a "
                      "single Tensor or a tuple of Tensors" + end + "of the grad_input." + full,
                      FutureWarning, stacklevel=6)
        return
    out_nodes = {id(r._node) for r in result if r._node is not None}
    if len(out_nodes) > 1:
        warnings.warn("Using a non-full backward hook when outputs are generated by different "
                      "autograd Nodes" + end + "grad_output." + full, FutureWarning,
                      stacklevel=6)
        return
    # PyTorch compares the inputs' grad_fns with the node's next functions, where a leaf
    # that requires grad appears as its AccumulateGrad: so a leaf input always differs
    in_nodes = {id(i._node) for i in inputs if i._node is not None}
    nexts = {("leaf", id(x)) if x._node is None else id(x._node)
             for x in node.inputs if x._rg}
    if in_nodes != nexts:
        warnings.warn("Using a non-full backward hook when the forward contains multiple "
                      "autograd Nodes" + end + "grad_input." + full, FutureWarning,
                      stacklevel=6)


class _LoadCall:
    """One ``load_state_dict`` call's private state (see ``_loading``)."""

    __slots__ = ("pending", "bf16")

    def __init__(self, pending: list | None):
        self.pending = pending      # deferred copies, or None: copy at once
        self.bf16: list[str] = []


class _WrappedHook:
    """A load pre-hook, called with its module first when it has one (a plain object, not a
    closure, so ``copy.deepcopy`` of the module binds the copy's hook to the copy)."""

    __slots__ = ("hook", "module")

    def __init__(self, hook: Callable, module: Module | None):
        self.hook, self.module = hook, module

    def __call__(self, *args):
        if self.module is None:
            return self.hook(*args)
        return self.hook(self.module, *args)


def _copier(module: Module, name: str, target: Tensor, v, assign: bool) -> Callable[[], None]:
    """What loads checkpoint value ``v`` into ``module``'s ``name`` (now ``target``): a copy
    into ``target``, cast to its dtype; with ``assign`` (PyTorch's) the module holds ``v``
    itself (a Parameter as it is, another tensor wrapped in one sharing its memory, keeping
    the old ``requires_grad``), or for an array or a tensor on another device, a copy in
    ``v``'s dtype."""
    def copy_in() -> None:
        if assign and isinstance(v, Tensor) and v._device == target._device:
            if name in module._parameters:
                value = v if isinstance(v, Parameter) else Parameter(
                    v, requires_grad=target.requires_grad)
                module._parameters[name] = value
            else:
                module._buffers[name] = v
            return
        src = _host_array(v)
        if assign and src.dtype != target.dtype:
            from ..creation import tensor
            target.data = tensor(src, device=target._device)
        elif target._device.type == "cpu":
            np.copyto(target._data, src, casting="unsafe")
        else:
            from ..backends import to_device
            target._data[...] = to_device(src.astype(target.dtype), target._device)
        target._version[0] += 1
    return copy_in


class _Handle:
    """What the register_*hook methods return: ``remove()`` unregisters the hook (also as a
    context manager, on exit)."""

    _next = 0

    def __init__(self, store: dict, hook: Callable, *, prepend: bool = False,
                 extra: tuple = ()):
        _Handle._next += 1
        self.id = _Handle._next
        self._store = store
        self._extra = extra         # sets of hook ids with options (with_kwargs, ...)
        store[self.id] = hook
        if prepend:
            store.move_to_end(self.id, last=False)

    def remove(self) -> None:
        self._store.pop(self.id, None)
        for s in self._extra:
            s.discard(self.id)

    def __enter__(self) -> _Handle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _key_errors(missing: list, unexpected: list) -> list[str]:
    """PyTorch's wording of strict loading's key errors (code and tests match on it)."""
    out = []
    if missing:
        out.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing)
                   + ". ")
    if unexpected:
        out.append("Unexpected key(s) in state_dict: "
                   + ", ".join(f'"{k}"' for k in unexpected) + ". ")
    return out


def _bf16_error(keys: list[str]) -> str:
    return ("bfloat16 values, which tensorlib does not support (convert the state dict first: "
            "{k: v.float() for k, v in sd.items()}): " + ", ".join(keys))


def _load_error(module, errors: list[str]) -> RuntimeError:
    return RuntimeError(f"Error(s) in loading state_dict for {type(module).__name__}:\n\t"
                        + "\n\t".join(errors))


_LIBRARY_DIRS = (os.path.dirname(np.__file__) + os.sep,
                 os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep)


# Python's own message for a call that does not fit the signature (wrong argument count,
# unknown keyword): the traceback ends in the caller, inside the library, but it is not a
# dtype problem, so it must stay the TypeError Python raised
_BINDING_MSG = re.compile(r"^\S+\(\) (takes |missing \d+ required |got an unexpected keyword "
                          r"|got multiple values for |got some positional-only )")


def _is_binding_error(e: BaseException) -> bool:
    return (type(e) is TypeError and len(e.args) == 1 and isinstance(e.args[0], str)
            and _BINDING_MSG.match(e.args[0]) is not None)


def _raised_by_library(e: BaseException) -> bool:
    """Whether ``e`` was raised inside tensorlib (or NumPy called by it), not by user code
    in a forward (whose own ValueError keeps its class)."""
    tb = e.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename.startswith(_LIBRARY_DIRS)


def _converted(t: Tensor, dev: Device | None, dt) -> Tensor:
    """``t`` moved to ``dev`` and, if floating (or complex, for a complex ``dt``), cast to
    ``dt``: a new tensor (``t`` itself when nothing changes), what ``Module.to`` hands to
    ``_apply``."""
    # a complex tensor is not made real: Module.float()/.double() come through here and, as
    # PyTorch's, leave complex parameters alone
    if dt is not None and t._data.dtype.kind not in ("fc" if dt.kind == "c" else "f"):
        dt = None
    if (dev is None or dev is t._device) and (dt is None or t._data.dtype == dt):
        return t
    from .lazy import is_lazy
    if is_lazy(t):
        # no storage yet: record the target, the first forward materializes there (PyTorch)
        return type(t)(requires_grad=t.requires_grad, device=dev or t._device,
                       dtype=dt if dt is not None else t._data.dtype)
    out = t.detach()
    out._version = [0]          # a fresh counter: the move must not count as t's change
    move_(out, dev, dt)
    return out


def _set_value(t: Tensor, new) -> None:
    """Give ``t`` the value (array, device) of ``new`` in place, as PyTorch's
    ``param.data = fn(param)``: ``t`` keeps its identity."""
    if new is t:
        return
    if not isinstance(new, Tensor):
        raise TypeError(f"Module._apply: fn must return a Tensor, got {type(new).__name__}")
    if new._data is not t._data or new._device is not t._device:
        t._data = new._data
        t._device = new._device
        t._version[0] += 1


def move_(t: Tensor, dev: Device | None, dt=None) -> None:
    """Move tensor ``t`` (and its ``.grad``) to ``dev`` and/or cast a floating ``t`` to ``dt``,
    in place: ``t`` keeps its identity, so optimizers and graphs holding it see the move."""
    data = t._data
    # complex to complex only: a real dt never drops a complex tensor's imaginary part
    if dt is not None and data.dtype != dt and (
            data.dtype.kind == "f" or data.dtype.kind == np.dtype(dt).kind == "c"):
        data = data.astype(dt)
    if dev is not None and dev is not t._device:
        from ..backends import to_device
        data = to_device(data, dev)
        t._device = dev
    if data is not t._data:
        t._data = data
        t._version[0] += 1
    if t.grad is not None:
        move_(t.grad, dev, dt)


def _array_like(v) -> bool:
    """A state-dict value we can load: a tensorlib Tensor, a NumPy or CuPy array, or another
    framework's tensor that NumPy can read (a PyTorch state dict loads as it is)."""
    return isinstance(v, (Tensor, np.ndarray)) or (
        hasattr(v, "shape") and (hasattr(v, "__array__")
                                 or hasattr(v, "__cuda_array_interface__")))


def _host_array(v) -> np.ndarray:
    if isinstance(v, Tensor):
        return v._host()
    if hasattr(v, "__cuda_array_interface__") and hasattr(v, "get"):
        return v.get()                                   # CuPy
    if hasattr(v, "detach") and hasattr(v, "cpu"):       # a PyTorch tensor, on any device
        v = v.detach().cpu()
    return np.asarray(v)
