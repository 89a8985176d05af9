"""Signatures and guards for ``tl.function``.

A call's *key* holds what the graph is specialised on: the structure of the
arguments, each tensor's shape, dtype, device, requires_grad and aliasing, the
values of Python scalars, and the identity of other objects. *Guards* hold the
Python state the traced code may have read without it being an argument: the
scalar attributes, tensors (identity, shape, dtype, whether ``.grad`` is set)
and containers reachable from the object arguments (modules, optimizers), and
the globals and closure variables that the function's code (and the code of
functions it names) refers to. A call replays a graph only when its key and
guards match; otherwise it retraces and says why.
"""
from __future__ import annotations

import dis
import threading
import types
from collections import OrderedDict
from typing import Any

import numpy as np

_SCALARS = (int, float, bool, str, bytes, complex, type(None), np.number, np.bool_)
_PLAIN_SCALARS = frozenset({int, float, bool, str, bytes, complex, type(None)})
_SKIP = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
         type, types.CodeType)
_MAX_DEPTH = 6
_MAX_ITEMS = 512


class TensorSpec:
    """Shape/dtype for ``input_signature``; ``None`` dims match any size.

    >>> @tl.function(input_signature=[tl.TensorSpec((None, 784), "float32")])
    ... def predict(x):
    ...     return x.sum(axis=1)
    """

    def __init__(self, shape, dtype="float32", name: str | None = None):
        from .. import _dtypes
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(_dtypes.as_dtype(dtype))
        self.name = name

    def matches(self, t) -> bool:
        s = t.shape
        return (len(s) == len(self.shape) and t.dtype == self.dtype
                and all(a is None or a == b for a, b in zip(self.shape, s)))

    def __repr__(self) -> str:
        return f"TensorSpec({self.shape}, {self.dtype.name})"


def flatten(args, kwargs, specs=None):
    """(key, tensors, objects, example_structure) for a call."""
    from .._tensor import Tensor
    tensors: list = []
    objects: list = []
    seen_arrays: dict[int, int] = {}
    spec_iter = iter(specs) if specs is not None else None

    def walk(x, depth=0):
        if isinstance(x, Tensor):
            alias = seen_arrays.get(id(x._data), -1)
            k = len(tensors)
            if alias < 0:
                seen_arrays[id(x._data)] = k
            tensors.append(x)
            shape = x.shape
            if spec_iter is not None:
                spec = next(spec_iter, None)
                if spec is None:
                    raise TypeError("tl.function: more tensor arguments than specs in "
                                    "input_signature")
                if not spec.matches(x):
                    raise TypeError(f"tl.function: tensor argument {k} of shape "
                                    f"{tuple(shape)} and dtype {x.dtype} does not match "
                                    f"input_signature {spec}")
                shape = spec.shape
            return ("T", shape, x.dtype.str, str(x._device), x._rg, alias)
        if isinstance(x, _SCALARS):
            return ("S", type(x).__name__, x)
        if depth > _MAX_DEPTH:
            return ("O", id(x))
        if isinstance(x, (list, tuple)):
            tag = "L" if isinstance(x, list) else "U"
            return (tag, tuple(walk(y, depth + 1) for y in x))
        if isinstance(x, dict):
            return ("D", tuple((k, walk(v, depth + 1)) for k, v in x.items()))
        if isinstance(x, np.ndarray):
            raise TypeError("tl.function: NumPy array arguments would be frozen into the "
                            "graph; pass tl.from_numpy(array) (a tensor input) instead")
        objects.append(x)
        return ("O", id(x), type(x).__name__)

    key = (walk(tuple(args)), walk(tuple(sorted(kwargs.items()))))
    return key, tensors, objects


def rebuild(template, tensors):
    """Rebuild an output structure: ``("T", k)`` leaves take ``tensors[k]``."""
    tag = template[0]
    if tag == "T":
        return tensors[template[1]]
    if tag == "S":
        return template[1]
    if tag == "L":
        return [rebuild(t, tensors) for t in template[1]]
    if tag == "U":
        return tuple(rebuild(t, tensors) for t in template[1])
    if tag == "D":
        return {k: rebuild(t, tensors) for k, t in template[1]}
    raise AssertionError(tag)


# --- state guards -------------------------------------------------------------------------
class Guards:
    """A snapshot of the Python state a trace may depend on; ``check()`` recomputes it."""

    def __init__(self, fn, objects: list):
        self.fn = fn
        self.roots = _roots(fn, objects)
        self.tensors: dict[int, tuple[Any, str]] = {}
        # NumPy arrays reachable from that state, up to _MAX_ARRAY_BYTES in all: (path, array,
        # its bytes at trace time); a value the trace read from one (tl.tensor(arr)) is a
        # constant in the graph, so an in-place change must retrace
        self.arrays: list[tuple[str, np.ndarray, bytes]] = []
        self.snapshot = self._take(collect=True)

    def _take(self, collect: bool = False) -> list:
        out: list = []
        seen: set[int] = set()
        for name, get in self.roots:
            try:
                obj = get()
            except (KeyError, NameError, ValueError):
                out.append((name, "<missing>"))
                continue
            _describe(obj, name, out, seen, 0, self.tensors if collect else None,
                      self.arrays if collect else None)
        return out

    def check(self) -> str | None:
        """None when the state matches the snapshot, else the reason it does not."""
        now = self._take()
        if now == self.snapshot:
            for path, arr, blob in self.arrays:
                if arr.tobytes() != blob:
                    return (f"NumPy array {path_text(path)} was changed in place since the "
                            "trace (the graph holds the values it read from it as constants)")
            return None
        for a, b in zip(self.snapshot, now):
            if a != b:
                return _change(a, b)
        return f"the state reachable from the function changed ({len(self.snapshot)} -> " \
               f"{len(now)} items)"


def _change(a, b) -> str:
    """One guard's change in words: what a user would look for in their code."""
    if a[1:2] == b[1:2] == ("T",) and a[2] == b[2]:
        _, _, _, shape0, dt0, rg0, nog0 = a
        _, _, _, shape1, dt1, rg1, nog1 = b
        what = []
        if shape0 != shape1:
            what.append(f"shape {shape0} -> {shape1}")
        if dt0 != dt1:
            what.append(f"dtype {np.dtype(dt0).name} -> {np.dtype(dt1).name}")
        if rg0 != rg1:
            what.append(f"requires_grad {rg0} -> {rg1}")
        if nog0 != nog1:
            what.append(".grad " + ("None -> set" if nog0 else "set -> None"))
        return f"tensor {path_text(a[0])} changed: {', '.join(what)}"
    if len(a) == 2 and len(b) == 2:
        return f"{path_text(a[0])} changed from {a[1]!r} to {b[1]!r}"
    return f"{path_text(a[0])} changed ({_short(a[1:])} -> {_short(b[1:])})"


def _short(x) -> str:
    s = repr(x[0] if len(x) == 1 else x)
    return s if len(s) < 80 else s[:77] + "..."


def _roots(fn, objects):
    roots = []
    for i, o in enumerate(objects):
        roots.append((f"arg{i}:{type(o).__name__}", (lambda o=o: o)))
    seen_code: set = set()
    _code_roots(fn, roots, seen_code, 0)
    return roots


def _code_roots(fn, roots, seen_code, depth) -> None:
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None or code in seen_code or depth > 3:
        return
    if depth and (getattr(fn, "__module__", None) or "").startswith("tensorlib."):
        return      # library internals are not user state
    seen_code.add(code)
    glb = getattr(fn, "__globals__", {})
    names = set()
    stack = [code]
    while stack:
        c = stack.pop()
        # globals only (co_names also holds attribute names such as opt.step)
        names.update(i.argval for i in dis.get_instructions(c)
                     if i.opname in ("LOAD_GLOBAL", "LOAD_NAME"))
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    for name in sorted(names):
        if name not in glb:
            continue
        val = glb[name]
        if isinstance(val, types.FunctionType):
            _code_roots(val, roots, seen_code, depth + 1)
        elif isinstance(val, _SKIP) or isinstance(val, threading.local) or \
                type(val).__name__ == "Function" and hasattr(val, "retrace_reasons"):
            continue
        else:
            roots.append((f"global {name!r}", (lambda g=glb, n=name: g[n])))
    if fn.__closure__:
        for name, cell in zip(code.co_freevars, fn.__closure__):
            try:
                val = cell.cell_contents
            except ValueError:
                continue
            if isinstance(val, types.FunctionType):
                _code_roots(val, roots, seen_code, depth + 1)
            elif not isinstance(val, _SKIP):
                roots.append((f"closure variable {name!r}", (lambda c=cell: c.cell_contents)))


def path_text(path) -> str:
    """A guard's path in words (``arg0:Net.fc.weight``): paths are kept as (parent, how,
    key) tuples while the state is walked, and written out only for a message."""
    if isinstance(path, str):
        return path
    parent, how, key = path
    base = path_text(parent)
    if how == ".":
        return f"{base}.{key}"
    if how == "[]":
        return f"{base}[{key}]"
    if how == "[r]":
        return f"{base}[{key!r}]"
    return f"{base} key"


_Tensor = None


# NumPy arrays are compared by value on every call up to this many bytes in all (4 MiB:
# ~0.2 ms a call); beyond it, by identity, shape and dtype only (documented)
_MAX_ARRAY_BYTES = 4 << 20


def _describe(x, path, out, seen, depth, tensors, arrays=None) -> None:
    # runs on every call of a captured function over all the state it can reach (a model,
    # its optimizer): no imports, and paths as tuples, not formatted strings
    global _Tensor
    if _Tensor is None:
        from .._tensor import Tensor as _T
        _Tensor = _T
    t = type(x)
    if t in _PLAIN_SCALARS or isinstance(x, _SCALARS):
        out.append((path, x))
        return
    if (t is dict or t is OrderedDict) and not x:     # a module's many empty hook dicts
        out.append((path, "dict", id(x), 0))
        return
    if t is _Tensor or isinstance(x, _Tensor):
        out.append((path, "T", id(x), x.shape, x.dtype.str, x._rg, x.grad is None))
        if tensors is not None and id(x) not in tensors:
            tensors[id(x)] = (x, path_text(path))
        return
    if isinstance(x, _SKIP) or depth > _MAX_DEPTH:
        out.append((path, "id", id(x)))
        return
    if id(x) in seen:
        out.append((path, "seen", id(x)))
        return
    seen.add(id(x))
    if isinstance(x, np.ndarray):
        out.append((path, "ndarray", id(x), x.shape, x.dtype.str))
        if arrays is not None and x.dtype.kind != "O" and \
                x.nbytes + sum(len(a[2]) for a in arrays) <= _MAX_ARRAY_BYTES:
            arrays.append((path, x, x.tobytes()))
        return
    if isinstance(x, (list, tuple)):
        out.append((path, type(x).__name__, id(x), len(x)))
        if len(x) <= _MAX_ITEMS:
            for i, y in enumerate(x):
                _describe(y, (path, "[]", i), out, seen, depth + 1, tensors, arrays)
        return
    if isinstance(x, dict):
        out.append((path, "dict", id(x), len(x)))
        if len(x) <= _MAX_ITEMS:
            for k, y in list(x.items()):
                kn = k if isinstance(k, (str, int)) else f"<{type(k).__name__}>"
                if isinstance(k, _Tensor):
                    kn = f"<tensor {id(k)}>"
                    out.append(((path, "key", None), "T", id(k)))
                _describe(y, (path, "[r]", kn), out, seen, depth + 1, tensors, arrays)
        return
    if isinstance(x, (set, frozenset)):
        out.append((path, "set", id(x), len(x)))
        return
    d = getattr(x, "__dict__", None)
    out.append((path, "obj", id(x), type(x).__name__))
    if d is not None:
        for k, y in list(d.items()):
            _describe(y, (path, ".", k), out, seen, depth + 1, tensors, arrays)
