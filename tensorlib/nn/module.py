"""``Module``: the base class of every layer and model."""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .. import _dtypes
from .._device import Device
from .._tensor import Tensor
from ..autograd.function import Function
from ..autograd.mode import no_grad, state
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


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
            if name not in mods:
                self._discard(name)
            mods[name] = value
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
        if self._forward_pre_hooks:
            for hook in list(self._forward_pre_hooks.values()):
                res = hook(self, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        bw = None
        if (self._backward_hooks or self._backward_pre_hooks) and state.grad_enabled \
                and state.tracer is None:
            bw = _BackwardHooks(self)
            args = bw.wrap_inputs(args)
        out = self.forward(*args, **kwargs)
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                res = hook(self, args, out)
                if res is not None:
                    out = res
        if bw is not None:
            out = bw.wrap_outputs(out)
        return out

    def register_forward_hook(self, hook: Callable) -> _Handle:
        """``hook(module, args, output)`` runs after forward; a non-None result replaces
        the output."""
        return _Handle(self._forward_hooks, hook)

    def register_forward_pre_hook(self, hook: Callable) -> _Handle:
        """``hook(module, args)`` runs before forward; a non-None result replaces args."""
        return _Handle(self._forward_pre_hooks, hook)

    def register_full_backward_hook(self, hook: Callable) -> _Handle:
        """``hook(module, grad_input, grad_output)`` runs when the gradients with respect to
        the module's positional inputs have been computed, as PyTorch's: ``grad_input`` has one
        entry per positional argument (None where it is not a tensor requiring grad),
        ``grad_output`` one per output. A non-None result (a tuple as long as ``grad_input``)
        replaces ``grad_input``. When no input requires grad the hook runs with all-None
        ``grad_input`` once ``grad_output`` is known. Not run inside graph capture."""
        if "_backward_hooks" not in self.__dict__:
            object.__setattr__(self, "_backward_hooks", OrderedDict())
        return _Handle(self._backward_hooks, hook)

    def register_full_backward_pre_hook(self, hook: Callable) -> _Handle:
        """``hook(module, grad_output)`` runs when the gradients with respect to the module's
        outputs have been computed, before those with respect to its inputs; a non-None
        result (a tuple as long as ``grad_output``) replaces ``grad_output``."""
        if "_backward_pre_hooks" not in self.__dict__:
            object.__setattr__(self, "_backward_pre_hooks", OrderedDict())
        return _Handle(self._backward_pre_hooks, hook)

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

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
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
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, v in getattr(m, store).items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield (f"{mprefix}.{name}" if mprefix else name), v

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(name, parameter) pairs, each shared parameter once."""
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
        """Training mode (dropout active, batch norm uses batch statistics)."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(): mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
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
        from .utils import zero_grad_
        zero_grad_(self.parameters(), set_to_none)

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every submodule (children first) and on self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # --- devices and dtypes -----------------------------------------------------------
    def to(self, device=None, dtype=None) -> Module:
        """Move (and/or cast floating-point) parameters and buffers in place.

        Parameters keep their identity, so an optimizer built before ``to`` still
        holds them.
        """
        if isinstance(device, (np.dtype, type)) and dtype is None:
            device, dtype = None, device
        dev = Device(device) if device is not None else None
        dt = _dtypes.as_dtype(dtype) if dtype is not None else None
        if dt is not None and dt.kind != "f":
            raise TypeError(f"Module.to: only floating-point dtypes are allowed, got {dt}")

        def move(t: Tensor) -> None:
            move_(t, dev, dt)

        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    move(p)
            for b in m._buffers.values():
                if b is not None:
                    move(b)
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, index: int = 0) -> Module:
        return self.to(f"cuda:{index}")

    def float(self) -> Module:
        return self.to(dtype=_dtypes.float32)

    def double(self) -> Module:
        return self.to(dtype=_dtypes.float64)

    def half(self) -> Module:
        return self.to(dtype=_dtypes.float16)

    # --- state dict -------------------------------------------------------------------
    def state_dict(self, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict:
        """Parameters and persistent buffers by dotted name (detached, sharing storage)."""
        out = OrderedDict() if destination is None else destination
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def load_state_dict(self, state_dict: dict, strict: bool = True,
                        assign: bool = False) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        With ``strict`` every key must match exactly. Shape mismatches always raise.
        The error lists every missing, unexpected and mis-shaped key at once.
        Returns ``(missing_keys, unexpected_keys)``. Values are cast to each tensor's dtype;
        with ``assign=True`` (PyTorch's) a tensor takes the value's dtype instead (each
        parameter stays the same object, keeping its ``requires_grad``, and stays on its
        device). bfloat16 values raise (tensorlib has no bfloat16: ``.float()`` them first).
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"load_state_dict: expected a dict, got {type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        bad_type = []
        bf16 = []
        for k, target in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            if not _array_like(v):
                bad_type.append(f"{k!r} is a {type(v).__name__}, expected a tensor or array")
                continue
            if "bfloat16" in (_dtypes.torch_dtype_name(getattr(v, "dtype", None)),
                              getattr(getattr(v, "dtype", None), "name", None)):
                bf16.append(repr(k))
                continue
            if tuple(v.shape) != tuple(target.shape):
                mismatched.append(f"{k!r}: checkpoint has shape {tuple(v.shape)}, "
                                  f"model has {tuple(target.shape)}")
        errors = []
        if strict and missing:
            errors.append("missing keys: " + ", ".join(repr(k) for k in missing))
        if strict and unexpected:
            errors.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        if mismatched:
            errors.append("size mismatch for " + "; ".join(mismatched))
        if bad_type:
            errors.append("wrong type: " + "; ".join(bad_type))
        if bf16:
            errors.append("bfloat16 values, which tensorlib does not support (convert the "
                          "state dict first: {k: v.float() for k, v in sd.items()}): "
                          + ", ".join(bf16))
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n  "
                               + "\n  ".join(errors))
        with no_grad():
            for k, target in own.items():
                if k not in state_dict:
                    continue
                v = state_dict[k]
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
        return tensors

    @staticmethod
    def backward(ctx, *grads):
        return (None, *ctx.on_grads(grads))


def _hook_result(res, n: int, what: str) -> tuple:
    res = tuple(res) if isinstance(res, (tuple, list)) else (res,)
    if len(res) != n:
        raise RuntimeError(f"backward hook returned {len(res)} values for {what}, expected {n} "
                           f"(one per entry of {what}, None where there is no gradient)")
    return res


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
        self.hooks = list(module._backward_hooks.values())
        self.pre_hooks = list(module._backward_pre_hooks.values())
        self.n_in, self.in_pos = 0, []
        self.n_out, self.out_pos = 0, []
        self.grad_output: tuple = ()

    def wrap_inputs(self, args: tuple) -> tuple:
        self.n_in = len(args)
        self.in_pos, args = _through(args, self._input_grads)
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
                gout = _hook_result(res, self.n_out, "grad_output")
        self.grad_output = gout
        if not self.in_pos:
            # no input side will ever run backward: PyTorch calls the hooks here
            for hook in self.hooks:
                res = hook(self.module, (None,) * self.n_in, gout)
                if res is not None and any(r is not None for r in
                                           _hook_result(res, self.n_in, "grad_input")):
                    raise RuntimeError("backward hook returned gradients for inputs of "
                                       f"{type(self.module).__name__} that do not require "
                                       "grad")
        return tuple(gout[i] for i in self.out_pos)

    def _input_grads(self, grads: tuple) -> tuple:
        gi: tuple = tuple(grads[self.in_pos.index(i)] if i in self.in_pos else None
                          for i in range(self.n_in))
        for hook in self.hooks:
            res = hook(self.module, gi, self.grad_output)
            if res is not None:
                gi = _hook_result(res, self.n_in, "grad_input")
        return tuple(gi[i] for i in self.in_pos)


class _Handle:
    _next = 0

    def __init__(self, store: dict, hook: Callable):
        _Handle._next += 1
        self.id = _Handle._next
        self._store = store
        store[self.id] = hook

    def remove(self) -> None:
        self._store.pop(self.id, None)


def move_(t: Tensor, dev: Device | None, dt=None) -> None:
    """Move tensor ``t`` (and its ``.grad``) to ``dev`` and/or cast a floating ``t`` to ``dt``,
    in place: ``t`` keeps its identity, so optimizers and graphs holding it see the move."""
    data = t._data
    if dt is not None and data.dtype.kind == "f" and data.dtype != dt:
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
