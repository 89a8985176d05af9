"""Containers: Sequential, ModuleList, ModuleDict."""
from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .._tensor import Tensor
from .module import Module
from .parameter import Parameter


def _check_module(m, where: str) -> Module:
    if not isinstance(m, Module):
        raise TypeError(f"{where}: expected an nn.Module, got {type(m).__name__}")
    return m


class Sequential(Module):
    """A chain of modules, each called on the previous one's output (``torch.nn.Sequential``).

    Built from modules (named "0", "1", ...) or from one ordered mapping of names to
    modules; their parameters are registered. As PyTorch's, it can be indexed
    (``seq[0]``; a slice gives a ``Sequential``), iterated, ``append``-ed, and
    ``len(seq)`` is its number of modules.

    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> model(tl.randn(5, 4)).shape
    (5, 2)
    >>> model[0]
    Linear(in_features=4, out_features=8, bias=True)
    >>> from collections import OrderedDict
    >>> named = nn.Sequential(OrderedDict(fc=nn.Linear(4, 2), act=nn.ReLU()))
    >>> named.fc.out_features
    2
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
    """A list of modules whose parameters are registered (e.g. a stack of blocks).

    >>> blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
    >>> blocks += [nn.ReLU()]
    """

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _key(self, idx: int) -> str:
        n = len(self._modules)
        idx = operator.index(idx)
        if not -n <= idx < n:
            raise IndexError(f"ModuleList index {idx} out of range for {n} modules")
        return str(idx % n)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[self._key(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        self._modules[self._key(idx)] = _check_module(module, "ModuleList.__setitem__")

    def __delitem__(self, idx: int | slice) -> None:
        """Remove a module (or a slice of them); the rest are renumbered from ``"0"``."""
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            del mods[idx]
        else:
            del mods[int(self._key(idx))]
        self._renumber(mods)

    def _renumber(self, modules: list) -> None:
        self._modules.clear()
        for i, m in enumerate(modules):
            self._modules[str(i)] = m

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def pop(self, idx: int | slice = -1) -> Module | ModuleList:
        """Remove and return the module at ``idx`` (a ModuleList for a slice); the rest are
        renumbered from ``"0"``, as PyTorch's."""
        v = self[idx]
        del self[idx]
        return v

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end."""
        self.add_module(str(len(self._modules)), _check_module(module, "ModuleList.append"))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append each of ``modules`` (any iterable of modules, another ModuleList too)."""
        if not isinstance(modules, Iterable):
            raise TypeError("ModuleList.extend should be called with an iterable, but got "
                            f"{type(modules).__name__}")
        for m in list(modules):     # a copy: `ml.extend(ml)` must not loop forever
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index``; keys are renumbered from ``"0"``."""
        mods = list(self._modules.values())
        mods.insert(index, _check_module(module, "ModuleList.insert"))
        self._renumber(mods)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        """A new ModuleList of this one's modules, then ``other``'s (the same objects)."""
        return ModuleList(list(self)).extend(other)

    def __iadd__(self, other: Iterable[Module]) -> ModuleList:
        return self.extend(other)

    def __repr__(self) -> str:
        # as PyTorch's: runs of identical children print once, as "(0-2): 3 x Block(...)"
        reprs = [repr(m) for m in self]
        if not reprs:
            return f"{self._get_name()}()"
        runs: list[list] = []
        for i, r in enumerate(reprs):
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        lines = []
        for start, end, r in runs:
            line = (f"({start}): {r}" if start == end
                    else f"({start}-{end}): {end - start + 1} x {r}")
            lines.append(line.replace("\n", "\n  "))
        return f"{self._get_name()}(\n  " + "\n  ".join(lines) + "\n)"

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it in yours")


def _entry_repr(key, v) -> str:
    """One line of a ParameterList's / ParameterDict's repr, in PyTorch's form."""
    if not isinstance(v, Tensor):
        return f"  ({key}): Object of type: {type(v).__name__}"
    size = "x".join(str(n) for n in v.shape)
    dev = "" if v.device.type == "cpu" else f" ({v.device})"
    kind = "Parameter" if isinstance(v, Parameter) else "Tensor"
    return f"  ({key}): {kind} containing: [{v.dtype} of size {size}{dev}]"


class ParameterList(Module):
    """A list of parameters, registered as ``"0"``, ``"1"``, ... (a tensor is wrapped in a
    Parameter). As PyTorch's, it may also hold other objects, stored as they are (they are
    not parameters, so not in ``parameters()`` or ``state_dict``).

    >>> ps = nn.ParameterList([nn.Parameter(tl.zeros(3)) for _ in range(2)])
    """

    def __init__(self, values: Iterable | None = None):
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def _key(self, idx: int) -> str:
        n = self._size
        idx = operator.index(idx)
        if not -n <= idx < n:
            raise IndexError(f"ParameterList index {idx} out of range for {n} parameters")
        return str(idx % n)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)([self[i] for i in range(self._size)[idx]])
        return getattr(self, self._key(idx))

    def __setitem__(self, idx: int, value) -> None:
        self._set(self._key(idx), value)

    def _set(self, key: str, value) -> None:
        if isinstance(value, Tensor) and not isinstance(value, Parameter):
            value = Parameter(value)
        # Module.__setattr__ registers a Parameter, stores another object as a plain
        # attribute, and refuses a non-Parameter over a parameter (PyTorch's TypeError)
        setattr(self, key, value)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator:
        return (self[i] for i in range(self._size))

    def __dir__(self):
        return [k for k in super().__dir__() if not k.isdigit()]

    def append(self, value) -> ParameterList:
        """Add ``value`` at the end (a tensor becomes a Parameter)."""
        self._size += 1
        try:
            self._set(str(self._size - 1), value)
        except BaseException:
            self._size -= 1
            raise
        return self

    def extend(self, values: Iterable) -> ParameterList:
        """Append each of ``values``."""
        if not isinstance(values, Iterable) or isinstance(values, Tensor):
            raise TypeError("ParameterList.extend should be called with an iterable, but got "
                            f"{type(values).__name__}")
        for v in list(values):
            self.append(v)
        return self

    def extra_repr(self) -> str:
        return "\n".join(_entry_repr(i, v) for i, v in enumerate(self))

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
        del self[key]
        return v

    def clear(self) -> None:
        """Remove every entry."""
        self._d().clear()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); look its entries "
                                  "up in yours")


class ModuleDict(_KeyedModule):
    """A dict of named modules whose parameters are registered, in insertion order
    (``torch.nn.ModuleDict``): built from a mapping or an iterable of (name, module) pairs;
    supports ``d[name]``, ``d[name] = m``, ``del``, ``keys``/``values``/``items`` and
    ``update``.

    >>> heads = nn.ModuleDict({"cls": nn.Linear(4, 3), "box": nn.Linear(4, 2)})
    >>> list(heads.keys()), heads["box"](tl.zeros(1, 4)).shape
    (['cls', 'box'], (1, 2))
    >>> len(list(heads.parameters()))
    4
    """

    def __init__(self, modules: Mapping[str, Module] | Iterable | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, _check_module(module, "ModuleDict.__setitem__"))

    def update(self, modules: Mapping[str, Module] | ModuleDict | Iterable) -> None:
        """Add or replace modules from a mapping (a ModuleDict too), in its order, or from an
        iterable of ``(key, module)`` pairs, as PyTorch's."""
        if isinstance(modules, (Mapping, ModuleDict)):
            items = list(modules.items())
        elif isinstance(modules, Iterable) and not isinstance(modules, Module):
            items = []
            for j, m in enumerate(modules):
                if not isinstance(m, Iterable):
                    raise TypeError(f"ModuleDict.update: sequence element #{j} should be an "
                                    f"iterable (key, module) pair; is {type(m).__name__}")
                m = tuple(m)
                if len(m) != 2:
                    raise ValueError(f"ModuleDict.update: sequence element #{j} has length "
                                     f"{len(m)}; 2 is required")
                items.append(m)
        else:
            raise TypeError("ModuleDict.update should be called with an iterable of key/value "
                            f"pairs, but got {type(modules).__name__}")
        for k, m in items:
            self[k] = m


class ParameterDict(_KeyedModule):
    """A dict of parameters registered under their keys (so ``state_dict`` has the keys, as
    PyTorch's); a tensor is wrapped in a Parameter, and, as PyTorch's, another object is
    stored as it is (not a parameter). As PyTorch's ``update``, a plain dict's items are
    added in sorted key order, an OrderedDict's, a ParameterDict's or a sequence of pairs'
    in theirs. ``|`` and ``|=`` merge as a dict's.

    >>> pd = nn.ParameterDict({"scale": nn.Parameter(tl.ones(3))})
    """

    # every key in order, with its value; a parameter's is read from _parameters, which
    # load_state_dict(assign=True) and the like may replace
    _store = "_entries"

    def __init__(self, parameters: Mapping | Iterable | None = None):
        super().__init__()
        self._entries = OrderedDict()
        if parameters is not None:
            self.update(parameters)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            entries = self.__dict__.get("_entries")
            if entries is not None and name in entries:    # PyTorch's: entries are attributes
                return entries[name]
            raise

    def _value(self, key: str):
        v = self._entries[key]
        return self._parameters[key] if key in self._parameters else v

    def __getitem__(self, key: str):
        if key not in self._entries:
            raise KeyError(f"ParameterDict has no key {key!r}; keys: {list(self._entries)}")
        return self._value(key)

    def __setitem__(self, key: str, value) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ParameterDict: keys must be strings, got {type(key).__name__}")
        if isinstance(value, Tensor):
            self.register_parameter(key, value if isinstance(value, Parameter)
                                    else Parameter(value))
        elif key in self._parameters:
            if value is not None:   # as PyTorch's setattr over a parameter
                raise TypeError(f"cannot assign {type(value).__name__!r} as parameter {key!r} "
                                "(nn.Parameter or None expected)")
            self._parameters[key] = None
        self._entries[key] = value

    def __delitem__(self, key: str) -> None:
        del self._entries[key]
        self._parameters.pop(key, None)

    def get(self, key: str, default=None):
        """The entry at ``key``, or ``default``."""
        return self._value(key) if key in self._entries else default

    def values(self):
        """The entries, in key order."""
        return [self._value(k) for k in self._entries]

    def items(self):
        """``(key, entry)`` pairs, in order."""
        return [(k, self._value(k)) for k in self._entries]

    def clear(self) -> None:
        """Remove every entry."""
        for k in list(self._entries):
            del self[k]

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last ``(key, entry)`` pair."""
        if not self._entries:
            raise KeyError("popitem(): ParameterDict is empty")
        k = next(reversed(self._entries))
        return k, self.pop(k)

    def setdefault(self, key: str, default=None):
        """The entry at ``key``, after setting it to ``default`` if absent."""
        if key not in self._entries:
            self[key] = default
        return self[key]

    def copy(self) -> ParameterDict:
        """A new ParameterDict holding the same entries."""
        return ParameterDict(OrderedDict(self.items()))

    def fromkeys(self, keys: Iterable[str], default=None) -> ParameterDict:
        """A new ParameterDict with each key set to ``default``."""
        return ParameterDict((k, default) for k in keys)

    def update(self, parameters) -> None:
        """Add or replace entries from a mapping or an iterable of ``(key, value)`` pairs."""
        if isinstance(parameters, (OrderedDict, ParameterDict)):
            items = list(parameters.items())
        elif isinstance(parameters, Mapping):
            items = sorted(parameters.items())
        elif isinstance(parameters, Iterable) and not isinstance(parameters, Tensor):
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

    def __or__(self, other: ParameterDict) -> ParameterDict:
        out = self.copy()
        out.update(other)
        return out

    def __ror__(self, other):
        out = other.copy()
        out.update(self)
        return out

    def __ior__(self, other) -> ParameterDict:
        self.update(other)
        return self

    def extra_repr(self) -> str:
        return "\n".join(_entry_repr(k, v) for k, v in self.items())
