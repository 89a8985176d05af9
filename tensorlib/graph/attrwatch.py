"""Attributes a captured function sets: outputs of its graph, not inputs.

A forward that stores a value on its module (``self.aux = load_balancing_loss``, a
Bayes-by-backprop layer's ``self.kl``) and a step that reads it after the forward
(``loss = ce + model.aux``) write the attribute before any read: what it held before the
call is no input of the graph. Guarding it (the state walk of :mod:`.signature`) would
find the value the step itself left there and trace again on every call. As a tracing JIT
tracks attribute side effects, the trace watches the attributes its code may set (the
names of ``STORE_ATTR`` in the function's code and in the methods of the classes of the
objects it reaches, and names found changed by an earlier trace): while it runs, each such
name is a data descriptor on the object's class that notes the first access of each
object's attribute. An attribute whose first access was a write (or that was only written)
and which ends up holding a tensor (or a new list, tuple or dict of tensors) becomes an
output of the graph: each replay sets it to that call's value, and its value before a call
is not guarded. An attribute read before it is written is an input and stays guarded.

Reads that bypass attribute lookup (``obj.__dict__["aux"]``, ``vars(obj)``) are not seen:
code that reads the attribute that way before writing it must not rely on a replay using
the value it found. A list attribute appended to in place (``self.losses.append(l)``)
is not written (the same list): its guard sees the new item and the call traces again.
"""
from __future__ import annotations

import dis
import threading
import types
import weakref

from .signature import _MISSING, _per_class, _user_mro

_LOCK = threading.Lock()
_INSTALLED: dict = {}       # (class, name) -> _Watched


class _Watched:
    """A data descriptor standing in for attribute ``name`` of ``cls``'s instances while a
    trace runs: reads and writes go to the instance ``__dict__`` as without it (then to the
    class attribute it shadows, then ``__getattr__``); each read is told to the watches."""

    __slots__ = ("name", "cls", "orig", "watches")

    def __init__(self, cls: type, name: str) -> None:
        self.cls = cls
        self.name = name
        self.orig = cls.__dict__.get(name, _MISSING)
        self.watches: tuple = ()

    def __get__(self, obj, cls=None):
        if obj is not None:
            for w in self.watches:
                w.note(obj, self.name)
            d = obj.__dict__
            if self.name in d:
                return d[self.name]
        t = type(obj) if obj is not None else cls
        for k in t.__mro__:
            v = k.__dict__.get(self.name, _MISSING)
            if isinstance(v, _Watched):
                v = v.orig
            if v is not _MISSING:
                get = getattr(type(v), "__get__", None)
                return get(v, obj, t) if get is not None else v
        raise AttributeError(f"{t.__name__!r} object has no attribute {self.name!r}")

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.name] = value

    def __delete__(self, obj) -> None:
        try:
            del obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None


def _watchable(cls: type, name: str) -> bool:
    """Whether ``name`` on ``cls``'s instances is a plain ``__dict__`` attribute (no
    property, slot or method of that name along the MRO; a plain class-level default is
    fine)."""
    if name.startswith("__"):
        return False
    for k in cls.__mro__:
        v = k.__dict__.get(name, _MISSING)
        if isinstance(v, _Watched):
            continue
        if v is not _MISSING:
            return not hasattr(type(v), "__get__") and not hasattr(type(v), "__set__")
    return True


@_per_class
def _stored_names(t: type) -> frozenset:
    """The attribute names the methods of ``t``'s user classes set (``STORE_ATTR``), their
    ``__init__`` left out (what it sets is set before any call)."""
    names: set = set()
    for c in _user_mro(t):
        for k, v in vars(c).items():
            if k == "__init__":
                continue
            f = v.__func__ if isinstance(v, (staticmethod, classmethod)) else v
            fns = (f.fget, f.fset) if isinstance(f, property) else (f,)
            for fn in fns:
                if isinstance(fn, types.FunctionType):
                    names |= code_stores(fn.__code__)
    return frozenset(names)


def code_stores(code) -> set:
    """The ``STORE_ATTR`` names of ``code`` and the code nested in it."""
    out: set = set()
    stack = [code]
    while stack:
        c = stack.pop()
        out.update(i.argval for i in dis.get_instructions(c) if i.opname == "STORE_ATTR")
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return out


class AttrWatch:
    """The attributes ``names`` (and each owner class's own stored names) of ``owners``
    while a trace runs: their values before, and which were read before written."""

    def __init__(self, owners: list, names: set) -> None:
        self.pre: dict = {}         # (id(obj), name) -> (obj, value before or _MISSING)
        self.read: set = set()      # (id(obj), name) whose first access was a read
        self.seen: set = set()      # (id(obj), name) accessed at least once
        self.before: list = []      # (obj, copy of its __dict__): names changed unwatched
        self._on: list = []
        pairs: dict = {}
        for o in owners:
            t = type(o)
            d = getattr(o, "__dict__", None)
            if type(d) is not dict or isinstance(o, type):
                continue
            self.before.append((o, dict(d)))
            for n in names | _stored_names(t):
                if (t, n) not in pairs:
                    pairs[(t, n)] = _watchable(t, n)
                if pairs[(t, n)]:
                    self.pre[(id(o), n)] = (o, d.get(n, _MISSING))
        with _LOCK:
            for (t, n), ok in pairs.items():
                if not ok:
                    continue
                w = _INSTALLED.get((t, n))
                if w is None:
                    w = _Watched(t, n)
                    try:
                        type.__setattr__(t, n, w)
                    except (TypeError, AttributeError):
                        continue
                    _INSTALLED[(t, n)] = w
                w.watches = (*w.watches, self)
                self._on.append(w)

    def note(self, obj, name: str) -> None:
        k = (id(obj), name)
        if k in self.seen:
            return
        e = self.pre.get(k)
        if e is None or e[0] is not obj:
            return
        self.seen.add(k)
        if obj.__dict__.get(name, _MISSING) is e[1]:
            self.read.add(k)

    def close(self) -> None:
        with _LOCK:
            for w in self._on:
                w.watches = tuple(x for x in w.watches if x is not self)
                if not w.watches and _INSTALLED.get((w.cls, w.name)) is w:
                    del _INSTALLED[(w.cls, w.name)]
                    if w.orig is _MISSING:
                        type.__delattr__(w.cls, w.name)
                    else:
                        type.__setattr__(w.cls, w.name, w.orig)
            self._on = []

    def written(self) -> list:
        """(object, name, value) for the watched attributes set before any read whose value
        changed (or appeared) during the trace."""
        out = []
        for (i, n), (o, was) in self.pre.items():
            now = o.__dict__.get(n, _MISSING)
            if now is not was and now is not _MISSING and (i, n) not in self.read:
                out.append((o, n, now))
        return out

    def unwatched_changes(self) -> set:
        """Names of attributes that changed during the trace without being watched (set
        through ``setattr`` or by a helper function): watched by the next trace."""
        out: set = set()
        for o, d0 in self.before:
            d = o.__dict__
            for k, v in d.items():
                if d0.get(k, _MISSING) is not v and (id(o), k) not in self.pre and \
                        isinstance(k, str):
                    out.add(k)
        return out


def owner_ref(obj):
    """A weak reference to ``obj`` where it takes one (a replay must not keep a dropped
    model alive), else a getter holding it."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj
