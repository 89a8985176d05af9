"""Containers: Sequential, ModuleList, ModuleDict."""
from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping

from .._tensor import Tensor
from .module import Module
from .parameter import Parameter


def _check_module(m, where: str) -> Module:
    if not isinstance(m, Module):
        raise TypeError(f"{where}: expected an nn.Module, got {type(m).__name__}")
    return m


class Sequential(Module):
    """Modules applied one after another.

    >>> nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> nn.Sequential(OrderedDict(fc=nn.Linear(4, 2), act=nn.ReLU()))
    """

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, m in modules[0].items():
                self.add_module(name, _check_module(m, "Sequential"))
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), _check_module(m, "Sequential"))

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def _key(self, idx) -> str:
        n = len(self._modules)
        idx = operator.index(idx)
        if not -n <= idx < n:
            raise IndexError(f"Sequential index {idx} out of range for {n} modules")
        return list(self._modules)[idx % n]

    def _renumber(self, modules: list) -> None:
        """Keys ``"0"``, ``"1"``, ... in order, as PyTorch after a removal or insertion (so a
        later ``append`` cannot overwrite a layer and state_dict keys match PyTorch's)."""
        self._modules.clear()
        for i, m in enumerate(modules):
            self._modules[str(i)] = m

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._key(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        self._modules[self._key(idx)] = _check_module(module, "Sequential.__setitem__")

    def __delitem__(self, idx: int | slice) -> None:
        """Remove a module (or a slice of them); the rest are renumbered from ``"0"``."""
        keys = list(self._modules)[idx] if isinstance(idx, slice) else [self._key(idx)]
        for k in keys:
            del self._modules[k]
        self._renumber(list(self._modules.values()))

    def pop(self, idx: int | slice) -> Module | Sequential:
        """Remove and return the module at ``idx`` (a Sequential for a slice)."""
        v = self[idx]
        del self[idx]
        return v

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end, under key ``str(len(self))``."""
        self.add_module(str(len(self._modules)), _check_module(module, "Sequential.append"))
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Insert ``module`` before position ``index`` (``-len <= index <= len``); keys are
        renumbered from ``"0"``.

        >>> seq.insert(0, nn.Flatten())
        """
        _check_module(module, "Sequential.insert")
        n = len(self._modules)
        index = operator.index(index)
        if not -n <= index <= n:
            raise IndexError(f"Sequential.insert: index {index} out of range for {n} modules")
        mods = list(self._modules.values())
        mods.insert(index + n if index < 0 else index, module)
        self._renumber(mods)
        return self

    def extend(self, modules: Iterable[Module]) -> Sequential:
        """Append each of ``modules`` (another Sequential, a list, ...)."""
        for m in modules:
            self.append(m)
        return self

    def __add__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but "
                             f"{type(other).__name__} is given.")
        return Sequential().extend(self).extend(other)

    def __iadd__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but "
                             f"{type(other).__name__} is given.")
        return self.extend(list(other))

    def __mul__(self, times: int) -> Sequential:
        if not isinstance(times, int) or isinstance(times, bool):
            raise TypeError(f"unsupported operand type(s) for *: {type(self).__name__} and "
                            f"{type(times).__name__}")
        if times <= 0:
            raise ValueError(f"Non-positive multiplication factor {times} for "
                             f"{type(self).__name__}")
        return Sequential().extend(list(self) * times)

    __rmul__ = __mul__

    def __imul__(self, times: int) -> Sequential:
        combined = self * times
        self._renumber(list(combined))
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (e.g. a stack of blocks)."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _key(self, idx: int) -> str:
        n = len(self._modules)
        if not -n <= idx < n:
            raise IndexError(f"ModuleList index {idx} out of range for {n} modules")
        return str(idx % n)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[self._key(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        self._modules[self._key(idx)] = _check_module(module, "ModuleList.__setitem__")

    def __delitem__(self, idx) -> None:
        mods = list(self._modules.values())
        del mods[idx]
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), _check_module(module, "ModuleList.append"))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        mods = list(self._modules.values())
        mods.insert(index, _check_module(module, "ModuleList.insert"))
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it in yours")


class ParameterList(Module):
    """A list of parameters, registered as ``"0"``, ``"1"``, ... (a tensor is wrapped in a
    Parameter).

    >>> ps = nn.ParameterList([nn.Parameter(tl.zeros(3)) for _ in range(2)])
    """

    def __init__(self, values: Iterable | None = None):
        super().__init__()
        if values is not None:
            self.extend(values)

    @staticmethod
    def _param(v) -> Parameter:
        if isinstance(v, Parameter):
            return v
        if isinstance(v, Tensor):
            return Parameter(v)
        raise TypeError(f"ParameterList: expected a Parameter or Tensor, got {type(v).__name__}")

    def _key(self, idx: int) -> str:
        n = len(self._parameters)
        if not -n <= idx < n:
            raise IndexError(f"ParameterList index {idx} out of range for {n} parameters")
        return str(idx % n)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ParameterList(list(self._parameters.values())[idx])
        return self._parameters[self._key(idx)]

    def __setitem__(self, idx: int, value) -> None:
        self._parameters[self._key(idx)] = self._param(value)

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters.values())

    def append(self, value) -> ParameterList:
        self.register_parameter(str(len(self._parameters)), self._param(value))
        return self

    def extend(self, values: Iterable) -> ParameterList:
        for v in values:
            self.append(v)
        return self

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList has no forward(); use its parameters in yours")


class _KeyedModule(Module):
    """The dict protocol over one of a module's registries (``_modules`` or
    ``_parameters``): what ModuleDict and ParameterDict share."""

    _store = "_modules"

    def _d(self) -> dict:
        return getattr(self, self._store)

    def __getitem__(self, key: str):
        try:
            return self._d()[key]
        except KeyError:
            raise KeyError(f"{type(self).__name__} has no key {key!r}; keys: "
                           f"{list(self._d())}") from None

    def __delitem__(self, key: str) -> None:
        del self._d()[key]

    def __contains__(self, key) -> bool:
        return key in self._d()

    def __len__(self) -> int:
        return len(self._d())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._d()))

    def __reversed__(self) -> Iterator[str]:
        return reversed(list(self._d()))

    def keys(self):
        """The keys, in order."""
        return self._d().keys()

    def values(self):
        """The entries, in key order."""
        return self._d().values()

    def items(self):
        """``(key, entry)`` pairs, in order."""
        return self._d().items()

    def get(self, key: str, default=None):
        """The entry at ``key``, or ``default``."""
        return self._d().get(key, default)

    def pop(self, key: str):
        """Remove ``key`` and return its entry."""
        v = self[key]
        del self._d()[key]
        return v

    def clear(self) -> None:
        """Remove every entry."""
        self._d().clear()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); look its entries "
                                  "up in yours")


class ModuleDict(_KeyedModule):
    """A dict of modules whose parameters are registered, in insertion order."""

    def __init__(self, modules: Mapping[str, Module] | Iterable | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, _check_module(module, "ModuleDict.__setitem__"))

    def update(self, modules) -> None:
        items = modules.items() if isinstance(modules, Mapping) else modules
        for k, m in items:
            self[k] = m


class ParameterDict(_KeyedModule):
    """A dict of parameters registered under their keys (so ``state_dict`` has the keys, as
    PyTorch's); a tensor is wrapped in a Parameter. As PyTorch's ``update``, a plain dict's
    items are added in sorted key order, an OrderedDict's, a ParameterDict's or a sequence
    of pairs' in theirs.

    >>> pd = nn.ParameterDict({"scale": nn.Parameter(tl.ones(3))})
    """

    _store = "_parameters"

    def __init__(self, parameters: Mapping | Iterable | None = None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __setitem__(self, key: str, value) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ParameterDict: keys must be strings, got {type(key).__name__}")
        if not isinstance(value, Tensor):
            raise TypeError(f"ParameterDict: value for {key!r} must be a Parameter or Tensor, "
                            f"got {type(value).__name__}")
        self.register_parameter(key, value if isinstance(value, Parameter)
                                else Parameter(value))

    def popitem(self) -> tuple[str, Parameter]:
        """Remove and return the last ``(key, parameter)`` pair."""
        if not self._parameters:
            raise KeyError("popitem(): ParameterDict is empty")
        return self._parameters.popitem()

    def setdefault(self, key: str, default=None):
        """The parameter at ``key``, after setting it to ``default`` if absent."""
        if key not in self._parameters and default is not None:
            self[key] = default
        return self._parameters.get(key)

    def copy(self) -> ParameterDict:
        """A new ParameterDict holding the same parameters."""
        return ParameterDict(OrderedDict(self._parameters.items()))

    def fromkeys(self, keys: Iterable[str], default=None) -> ParameterDict:
        """A new ParameterDict with each key set to ``default`` (a tensor)."""
        return ParameterDict((k, default) for k in keys)

    def update(self, parameters) -> None:
        """Add or replace parameters from a mapping or an iterable of ``(key, value)`` pairs."""
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            items = list(parameters.items())
        elif isinstance(parameters, Mapping):
            items = sorted(parameters.items())
        elif isinstance(parameters, Iterable):
            items = []
            for j, p in enumerate(parameters):
                if not isinstance(p, (tuple, list)) or len(p) != 2:
                    raise ValueError(f"ParameterDict.update: element #{j} must be a (key, "
                                     f"value) pair, got {p!r}")
                items.append((p[0], p[1]))
        else:
            raise TypeError(f"ParameterDict.update: expects a mapping or an iterable of "
                            f"(key, value) pairs, got {type(parameters).__name__}")
        for k, v in items:
            self[k] = v

    def extra_repr(self) -> str:
        return "\n".join(f"({k}): Parameter containing: [{v.dtype} of size {tuple(v.shape)}]"
                         for k, v in self._parameters.items())
