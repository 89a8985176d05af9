"""Output templates beyond tensors, lists, tuples and plain dicts: what a captured function
returns is rebuilt on every replay from that replay's tensors, never kept from the trace.

Template leaves and nodes added here (``signature.rebuild`` reads them):

- ``("Z", k)``: a size read from a None dim (``x.shape[0]``, ``x.size(1)``, ``n * 2``): the
  graph computes it per run as a ``dim_size`` node (output ``k``), given back as a plain int;
- ``("D", items, proto)``: a dict subclass (OrderedDict, defaultdict, a user's): a copy of
  ``proto`` (the returned dict emptied, its own attributes kept) filled with the items;
- ``("C", proto, ((name, template), ...))``: a dataclass (its fields) or a
  ``types.SimpleNamespace`` (its attributes), rebuilt as a copy of ``proto`` with each
  attribute set, as ``torch.compile`` rebuilds them.

Any other object holding tensors the call computed (or its arguments) cannot be rebuilt,
and replaying it would hand back the first call's tensors: :func:`check_opaque` refuses it.
"""
from __future__ import annotations

import copy
import dataclasses
import types

_SCAN_DEPTH = 4


def size_leaf(size, tensors: list):
    """The template of TracedSize ``size``: a ``dim_size`` tensor computing it, appended to
    ``tensors`` (recorded by the size's own tracer, which must not be finished yet)."""
    from ..autograd.mode import state
    from ..ops.size_guard import size_tensor
    tracer = size.tracer
    prev = state.tracer
    state.tracer = tracer
    try:
        t = size_tensor(size, None)
    finally:
        state.tracer = prev
    tensors.append(t)
    return ("Z", len(tensors) - 1)


def dict_proto(out: dict):
    """An empty copy of dict subclass ``out`` that keeps its type and own attributes (an
    OrderedDict, a defaultdict's factory), or None when it cannot be copied."""
    try:
        proto = copy.copy(out)
        proto.clear()       # (the type's own: dict.clear would break an OrderedDict's order)
    except Exception:       # noqa: BLE001 - an uncopyable subclass: the caller refuses it
        return None
    return proto


def object_fields(out) -> list | None:
    """The attribute names a replay sets on a copy of ``out``: a dataclass instance's fields
    or a SimpleNamespace's attributes; None for other objects."""
    if type(out) is types.SimpleNamespace:
        return list(vars(out))
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return [f.name for f in dataclasses.fields(out)]
    return None


def object_proto(out, names: list):
    """A shallow copy of ``out`` with the attributes ``names`` cleared (they are set per
    replay), so the template holds no tensor of the trace."""
    proto = copy.copy(out)
    for n in names:
        object.__setattr__(proto, n, None)
    return proto


def rebuild_object(proto, items):
    out = copy.copy(proto)
    for name, value in items:
        # frozen dataclasses too: the values are what the traced __init__ stored
        object.__setattr__(out, name, value)
    return out


def rebuild_dict(proto, items):
    out = copy.copy(proto)
    out.update(items)
    return out


def holds_tensors(obj, keep, depth: int = 0, seen: set | None = None):
    """The first tensor reachable from ``obj`` (its ``__dict__``, ``__slots__``, and the
    lists, tuples, sets and dicts in them, a few levels deep) for which ``keep(t)`` is
    False, or None."""
    from .._tensor import Tensor
    if seen is None:
        seen = set()
    if depth > _SCAN_DEPTH or id(obj) in seen:
        return None
    seen.add(id(obj))
    if isinstance(obj, Tensor):
        return None if keep(obj) else obj
    if isinstance(obj, (str, bytes, int, float, complex, type(None), type, types.ModuleType,
                        types.FunctionType)):
        return None
    if isinstance(obj, dict):
        kids = list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        kids = list(obj)
    else:
        kids = list(getattr(obj, "__dict__", {}).values())
        for cls in type(obj).__mro__:
            slots = cls.__dict__.get("__slots__", ())
            for s in (slots,) if isinstance(slots, str) else slots:
                if hasattr(obj, s) and s not in ("__dict__", "__weakref__"):
                    kids.append(getattr(obj, s))
    for k in kids:
        t = holds_tensors(k, keep, depth + 1, seen)
        if t is not None:
            return t
    return None


def check_opaque(out, tracer, where: str, kind: type | None = None) -> None:
    """Raise CaptureError when object ``out`` (returned, no type the template rebuilds)
    holds a tensor the call computed or took as an argument: a replay would return the
    trace's object, with the first call's tensors. Objects holding only state (parameters,
    buffers) or no tensors come back as they are; so do modules and optimizers (the same
    object every call; their attributes are followed as the function's state). ``kind``:
    the type to name (``out`` is then what of it is scanned)."""
    from ..nn.module import Module
    from ..optim.optimizer import Optimizer
    from .tracer import CaptureError
    if tracer is None or isinstance(out, (Module, Optimizer)):
        return
    t = holds_tensors(out, lambda t: not per_call(tracer, t))
    if t is not None:
        name = (kind or type(out)).__qualname__
        raise CaptureError(
            f"{where}: returns an object of type {name} holding a tensor of shape "
            f"{tuple(t.shape)} that differs per call (computed by the call, or an argument); "
            f"a captured graph cannot rebuild a {name} on each replay (it would give the "
            "first call's tensors). Return the tensors in a tuple, list, dict, namedtuple, "
            "dataclass or types.SimpleNamespace instead")


def per_call(tracer, t) -> bool:
    """Whether tensor ``t`` differs per call of the traced function: made by the call, or
    an argument (state the function holds is the same tensor on every call)."""
    from .tracer import CaptureError
    try:
        v = tracer.lookup(t)
    except CaptureError:
        return True
    if v is None:
        return bool(tracer._is_fresh(t))       # (never read by the trace: not the call's)
    loc = tracer.locations.get(id(t._data))
    if loc is None or loc[0] == "input":
        return True
    return bool(tracer._is_fresh(tracer.loc_objs[loc][0]))
