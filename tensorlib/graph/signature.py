"""Signatures and guards for ``tl.function``.

A call's *key* holds what the graph is specialised on: the structure of the
arguments, each tensor's shape, dtype, device, requires_grad and aliasing, the
values of Python scalars, and the identity of other objects. *Guards* hold the
Python state the traced code may have read without it being an argument: the
scalar attributes, tensors (identity, shape, dtype, whether ``.grad`` is set)
and containers reachable from the object arguments (modules, optimizers), and
the globals and closure variables that the function's code (and the code of
functions it names) refers to, and the object the function belongs to: a Module or
other callable object passed as the function (``tl.function(model)``), a bound method's
``__self__`` (``tl.function(model.forward)``), a ``functools.partial``'s arguments. A
call replays a graph only when its key and guards match; otherwise it retraces and says
why.

The guard runs on every call, so the state walked at trace time is also compiled into a
:class:`_Plan` of identity checks (the same containers still hold the same objects, the
same scalars, tensors of the same shape/dtype/grad state): that check is a few loops over
flat tuples. Only when it fails is the state walked again, to say what changed (or, when
the plan was stricter than the walk, to take a new plan). The plan holds what it checks by
reference, so a failed check whose walk no longer reaches some of those objects (a replaced
attribute) drops the plan: a stale graph left in the cache does not keep the old state
alive, and its guard walks (taking a new plan if the state comes back) until then.

Argument objects are held by weakref (the call's key names them by id): when one dies, its
cached graphs go (``Guards.on_dead``), so a dropped model and its weights are freed. Besides
instance state, the walk guards the class-level state of the user classes it reaches (the
non-dunder entries of each class's ``__dict__`` along the MRO, up to library classes: class
attributes read through ``self``, properties, methods patched on the class; class-level
dicts, lists and namespaces walked), the user classes the code names (``Cfg.scale``, also in
the methods of the classes walked: a model's ``forward``, with the scalars those methods read
as globals), the attributes of user modules the code reads as ``module.NAME`` or
``module.sub.NAME`` (config modules), user functions' default arguments, and ``__slots__``.

The walk has no depth limit (a Parameter replaced ten modules down retraces; cycles end at
objects already seen) and walks containers of modules and tensors whatever their length (a
ModuleList of 1000 layers); other containers of more than ``_MAX_ITEMS`` items (data) are
guarded by length. Only state nested deeper than half of Python's recursion limit is
guarded by identity, with a warning. The per-call check costs a few C-loop steps per
walked item: it grows with the model's size (its modules' attributes and tensors).
"""
from __future__ import annotations

import dis
import functools
import itertools
import operator
import sys
import threading
import types
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np

from ..random import Generator

_SCALARS = (int, float, bool, str, bytes, complex, type(None), np.number, np.bool_)
_PLAIN_SCALARS = frozenset({int, float, bool, str, bytes, complex, type(None)})
_SKIP = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
         type, types.CodeType)
# argument structures (lists in lists) are keyed down to this depth; the state walk has no
# depth limit (a swapped weight ten modules down must retrace), cycles end at ``seen``
_MAX_DEPTH = 64
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
        if any(d is not None and d < 0 for d in self.shape):
            raise ValueError(f"TensorSpec: dims must be sizes or None (any size), got "
                             f"{tuple(shape)}; write None where -1 stands")
        self.dtype = np.dtype(_dtypes.as_dtype(dtype))
        self.name = name

    def matches(self, t) -> bool:
        s = t.shape
        return (len(s) == len(self.shape) and t.dtype == self.dtype
                and all(a is None or a == b for a, b in zip(self.shape, s)))

    def __repr__(self) -> str:
        return f"TensorSpec({self.shape}, {self.dtype.name})"


def _is_pair(s) -> bool:
    """Whether ``s`` is a ``(shape, dtype)`` pair (or a one-item ``(shape,)``), not a
    container of specs: its first item is a shape of ints and None."""
    return (1 <= len(s) <= 2 and isinstance(s[0], (tuple, list))
            and all(d is None or isinstance(d, (int, np.integer)) for d in s[0])
            and (len(s) == 1 or not isinstance(s[1], (TensorSpec, dict, list, tuple))))


def flat_specs(signature) -> list:
    """``input_signature`` as the flat list of TensorSpecs :func:`flatten` walks: entries
    are TensorSpecs, ``(shape, dtype)`` pairs, or lists/tuples/dicts of them following the
    arguments' structure (``[{"x": TensorSpec((None, 3)), "ids": TensorSpec((None,),
    "int64")}]`` for one dict argument). A dict's specs are matched in key order, so pass
    the dict with its keys in the signature's order (the call's insertion order is part of
    its signature: code may read the dict in that order)."""
    out: list = []

    def walk(s, where):
        if isinstance(s, TensorSpec):
            out.append(s)
        elif isinstance(s, dict):
            for k, v in s.items():
                walk(v, f"{where}[{k!r}]")
        elif isinstance(s, (list, tuple)) and s and not _is_pair(s) and all(
                isinstance(x, (TensorSpec, dict, list, tuple)) for x in s):
            # (tuples of specs too: a KV cache's [(k, v), ...])
            for i, x in enumerate(s):
                walk(x, f"{where}[{i}]")
        else:
            try:
                out.append(TensorSpec(*s))
            except (TypeError, ValueError) as e:
                raise TypeError(f"tl.function: input_signature{where} is {s!r}: give a "
                                "tl.TensorSpec(shape, dtype), a (shape, dtype) pair, or a "
                                f"list/tuple/dict of them ({e})") from None
    for i, s in enumerate(signature):
        walk(s, f"[{i}]")
    return out


def flatten(args, kwargs, specs=None):
    """(key, tensors, objects, example_structure) for a call."""
    from .._tensor import Tensor
    tensors: list = []
    objects: list = []
    seen_arrays: dict[int, int] = {}
    spec_iter = iter(specs) if specs is not None else None

    def walk(x, depth=0):
        if isinstance(x, Tensor) and type(x) is not Tensor and x.is_sparse:
            return _sparse_key(x, tensors, seen_arrays)
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
    if len(seen_arrays) > 1:
        # distinct views of overlapping memory (f(t[:4], t[2:])): a graph traced with separate
        # tensors would read one before an in-place write through the other shows there
        from .replay_checks import with_overlaps
        key = with_overlaps(key, tensors)
    return key, tensors, objects


def _sparse_key(x, tensors: list, seen_arrays: dict) -> tuple:
    """A sparse COO argument as two tensor inputs, its indices (sparse_dim, nnz) and values
    (nnz, ...), with nnz a None dim: one graph serves every sparsity pattern (a replay reads
    the call's indices). Its size, sparse_dim and coalesced flag are keyed; the parts take no
    input_signature entries."""
    if not hasattr(x._data, "indices"):
        raise TypeError(f"tl.function: a sparse {type(x).__name__} argument (layout "
                        f"{getattr(x, 'layout', '?')}) is not supported; pass a sparse COO "
                        "tensor (tl.sparse_coo_tensor) or to_dense()")
    from ..sparse import _index_tensor
    d = x._data
    parts = []
    for t, shape in ((_index_tensor(d), (d.indices.shape[0], None)),
                     (d.values, (None, *d.values.shape[1:]))):
        k = len(tensors)
        alias = seen_arrays.setdefault(id(t._data), k)
        tensors.append(t)
        parts.append(("T", shape, t.dtype.str, str(t._device), t._rg, -1 if alias == k
                      else alias))
    return ("SP", tuple(x.shape), d.indices.shape[0], d.coalesced, *parts)


def sparse_specs(key, specs, tensors: list, aligned: bool):
    """The trace's specs for a call with sparse COO arguments (see :func:`flatten`): their
    parts' from the key, nnz None; the other tensors' from ``specs`` (one per tensor when
    ``aligned``, else the input_signature, which skips the sparse parts) or their shapes.
    ``specs`` itself when the call has none."""
    parts: dict = {}
    _sparse_parts(key, parts, [0])
    if not parts:
        return specs
    rest = iter(specs) if specs is not None and not aligned else None
    out = []
    for k, t in enumerate(tensors):
        if k in parts:
            out.append(TensorSpec(parts[k], t.dtype))
        elif specs is None:
            out.append(TensorSpec(tuple(t.shape), t.dtype))
        else:
            out.append(specs[k] if aligned else next(rest))
    return out


def _sparse_parts(key, out: dict, count: list) -> None:
    if not (isinstance(key, tuple) and key):
        return
    tag = key[0]
    if tag == "T":
        count[0] += 1
    elif tag == "SP":       # (from the size and sparse_dim: dynamic=True masks the parts')
        shape, sdim = key[1], key[2]
        out[count[0]], out[count[0] + 1] = (sdim, None), (None, *shape[sdim:])
        count[0] += 2
    elif tag in ("L", "U"):
        for k in key[1]:
            _sparse_parts(k, out, count)
    elif tag == "D":
        for _, v in key[1]:
            _sparse_parts(v, out, count)
    elif tag not in ("S", "O"):
        for k in key:
            _sparse_parts(k, out, count)


def build_sparse(args, kwargs):
    """``(args, kwargs)`` with each sparse COO argument rebuilt over the tensors
    :func:`flatten` made its graph inputs, so the traced function's sparse ops read the
    call's indices (and refuse host-only ones, which would freeze the trace's). The same
    objects when there is none."""
    from .._tensor import Tensor

    def walk(x, depth=0):
        if isinstance(x, Tensor):
            if type(x) is Tensor or not x.is_sparse or not hasattr(x._data, "indices"):
                return x
            from ..sparse import _index_tensor, _make
            d = x._data
            it = _index_tensor(d)
            return _make(d.indices, d.values, d.shape, d.coalesced, itensor=it)
        if depth > _MAX_DEPTH or isinstance(x, _SCALARS):
            return x
        if isinstance(x, (list, tuple)):
            items = [walk(y, depth + 1) for y in x]
            if all(a is b for a, b in zip(items, x)):
                return x
            if isinstance(x, list):
                return items
            return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)
        if isinstance(x, dict):
            vals = {k: walk(v, depth + 1) for k, v in x.items()}
            if all(vals[k] is v for k, v in x.items()):
                return x
            return {**vals} if type(x) is dict else type(x)(vals)
        return x

    return walk(tuple(args)), walk(kwargs)


def rebuild(template, tensors):
    """Rebuild an output structure: ``("T", k)`` leaves take ``tensors[k]``; a tuple's
    template may name its namedtuple type third (``("U", items, NT)``); sizes, dict
    subclasses and dataclasses are :mod:`tensorlib.graph.outputs`'s."""
    tag = template[0]
    if tag == "T":
        return tensors[template[1]]
    if tag == "S":
        return template[1]
    if tag == "L":
        return [rebuild(t, tensors) for t in template[1]]
    if tag == "U":
        items = tuple(rebuild(t, tensors) for t in template[1])
        return template[2](*items) if len(template) > 2 else items
    if tag == "D":
        if len(template) > 2:       # a dict subclass (see graph.outputs)
            from .outputs import rebuild_dict
            return rebuild_dict(template[2], [(k, rebuild(t, tensors)) for k, t in template[1]])
        return {k: rebuild(t, tensors) for k, t in template[1]}
    if tag == "Z":      # a size the graph computed (a 0-d int64 output)
        return int(tensors[template[1]].item())
    if tag == "C":      # a dataclass / SimpleNamespace (see graph.outputs)
        from .outputs import rebuild_object
        return rebuild_object(template[1], [(n, rebuild(t, tensors)) for n, t in template[2]])
    raise AssertionError(tag)


# --- state guards -------------------------------------------------------------------------
class LazyStateError(Exception):
    """The function reaches a lazy module's uninitialized parameter or buffer: its shape is
    unknown until a first (eager) call materialises it."""


class Guards:
    """A snapshot of the Python state a trace may depend on; ``check()`` recomputes it."""

    def __init__(self, fn, objects: list):
        self.fn = fn
        # called with these guards when an argument object dies (see ``_dead``)
        self.on_dead = None
        self.stale = False
        me = weakref.ref(self)
        self.roots = _roots(fn, objects, lambda _r: (g := me()) is not None and g._dead())
        self.tensors: dict[int, tuple[Any, str]] = {}
        # NumPy arrays reachable from that state, up to _MAX_ARRAY_BYTES in all: (path, array,
        # its bytes at trace time); a value the trace read from one (tl.tensor(arr)) is a
        # constant in the graph, so an in-place change must retrace
        self.arrays: list[tuple[str, np.ndarray, bytes]] = []
        # (module __dict__, attribute, its value then) that a forward pre-hook sets anew
        # before each forward (hook-style weight_norm): not state; ``pinned``: those the
        # trace read before the hook ran, guarded after all (see ``pin_read``)
        self.recomputed: list[tuple[dict, str, Any]] = []
        self.pinned: list[tuple[dict, str, Any]] = []
        self._any_grad: frozenset = frozenset()    # ids whose .grad state is not guarded
        # id(object) -> (weakref or getter, attribute names): attributes the trace wrote
        # before reading them, left out of the walk (see ``not_inputs``)
        self.written: dict[int, tuple] = {}
        plan = _Plan()
        self.snapshot = self._take(collect=True, plan=plan)
        self.plan: _Plan | None = plan.freeze() if plan.ok else None
        # whether a plan can be taken (every __dict__ stable); a plan dropped by a failed
        # check (see ``check``) is taken again by the walk of a later check that matches
        self._plannable = plan.ok
        # the objects with a __dict__ the walk reached, held until the trace has run (the
        # capture watches the attributes its code may set on them; see ``not_inputs``)
        self.owners: list | None = [o[0] for o in plan.objs if o[2] is not None] + \
            [o for o in (r() for r, _, d in plan.weak if d is not None) if o is not None]

    def not_inputs(self, attrs) -> None:
        """After the trace: ``attrs`` ((object, name) pairs) are attributes the traced code
        set before it read them (``self.aux = loss`` in a forward): the graph's outputs
        (each replay sets them), not its inputs, so what they hold before a call is not
        guarded. Their entries leave the snapshot, and the plan is taken again by the next
        check's walk, which skips them."""
        by: dict[int, tuple] = {}
        for obj, name in attrs:
            by.setdefault(id(obj), (obj, set()))[1].add(name)
        if not by:
            return
        paths = {}
        for s in self.snapshot:
            if len(s) == 4 and s[1] == "obj" and s[2] in by and s[2] not in paths:
                paths[s[2]] = s[0]
        targets = {(paths[i], ".", n) for i, (_, names) in by.items() if i in paths
                   for n in names}
        self.snapshot = [s for s in self.snapshot if not _under(s[0], targets)]
        for i, (obj, names) in by.items():
            try:
                ref = weakref.ref(obj)
            except TypeError:
                ref = functools.partial(_itself, obj)
            old = self.written.get(i)
            self.written[i] = (ref, frozenset(names) | (old[1] if old else frozenset()))
        self.plan = None

    def _take(self, collect: bool = False, plan: _Plan | None = None) -> list:
        prev, _WALK.written = _WALK.written, self.written
        try:
            return self._walk(collect, plan)
        finally:
            _WALK.written = prev

    def _walk(self, collect: bool, plan: _Plan | None) -> list:
        out: list = []
        seen: set[int] = set()
        for name, get, weak in self.roots:
            try:
                obj = get()
            except (KeyError, NameError, ValueError):
                obj = _MISSING
            if obj is _MISSING or (weak and obj is None):
                out.append((name, "<missing>"))
                if plan is not None:
                    plan.roots.append((_MISSING, False))
                continue
            if plan is not None:
                # an argument: checked through its weakref (the plan must not keep it alive)
                plan.roots.append((get, False) if weak else (obj, _is_scalar(obj)))
                if weak:
                    plan.weak_root = get
            _describe(obj, name, out, seen, 0, self.tensors if collect else None,
                      self.arrays if collect else None, plan,
                      self.recomputed if collect else None)
            if plan is not None:
                plan.weak_root = None
        return out

    def _dead(self) -> None:
        """An argument object died: nothing can call with it again, and the entry's graph
        bindings would keep its weights alive: the entry goes."""
        self.plan = None
        self.stale = True
        self.tensors = {}
        cb = self.on_dead
        if cb is not None:
            cb(self)

    def pin_read(self, bound) -> None:
        """After the trace: a recomputed attribute whose earlier value the graph holds
        (``bound``: the ids of the tensors its variables and constants are bound to) is
        state after all: a call where it is another tensor traces again."""
        self.pinned = [r for r in self.recomputed if id(r[2]) in bound]

    def ignore_grad(self, tensors) -> None:
        """After the trace: whether these tensors' ``.grad`` is set is no input of the graph
        (a step that drops it unread and writes it anew, see ``capture._trace``): a call
        with it None and one with it set replay the same graph, so it is not guarded."""
        self._any_grad = self._any_grad | {id(t) for t in tensors}
        if not self._any_grad:
            return
        self.snapshot = self._loose(self.snapshot)
        if self.plan is not None:
            _loosen(self.plan, self._any_grad)

    def _loose(self, snapshot: list) -> list:
        ids = self._any_grad
        return [(*s[:6], None) if len(s) == 7 and s[1] == "T" and s[2] in ids else s
                for s in snapshot]

    def check(self) -> str | None:
        """None when the state matches the snapshot, else the reason it does not."""
        for d, name, was in self.pinned:
            if d.get(name) is not was:
                return (f"attribute {name!r}, which a forward pre-hook sets anew, was read "
                        "before the hook ran while tracing, and is another tensor now")
        plan = self.plan
        if plan is None or not _holds(plan, self.roots):
            # the plan failed (or there is none): walk the state to say what changed
            new = _Plan() if self._plannable else None
            now = self._take(plan=new)
            if self._any_grad:
                now = self._loose(now)
            if now != self.snapshot:
                if plan is not None and _released(plan, new):
                    # the plan holds objects the state no longer reaches (a replaced table,
                    # tensor or submodule): drop it, so that this entry, left in the cache,
                    # does not keep them alive; a later walk that matches takes a new one.
                    # A plan whose objects are all still reached (a training flag flipped,
                    # a key added) is kept for the state to come back to.
                    self.plan = None
                    self.tensors = {}       # read by the tracer only, while tracing
                    self.stale = True       # tl.function evicts the entry (its graph's
                    #                         bindings hold the old state too)
                for a, b in zip(self.snapshot, now):
                    if a != b:
                        return _change(a, b)
                return f"the state reachable from the function changed " \
                       f"({len(self.snapshot)} -> {len(now)} items)"
            # the same state, by other objects of equal value (a key re-inserted, a dict
            # swapped for an equal one), or a dropped plan's state back: check against
            # these objects from now on
            if new is not None and not new.ok:
                self._plannable = False
            self.plan = new.freeze() if new is not None and new.ok else None
            if self.plan is not None and self._any_grad:
                _loosen(self.plan, self._any_grad)
        for path, arr, blob in self.arrays:
            if arr.tobytes() != blob:
                return (f"NumPy array {path_text(path)} was changed in place since the "
                        "trace (the graph holds the values it read from it as constants)")
        return None


_MISSING = object()


class _WalkState(threading.local):
    written: dict | None = None     # the walking Guards' ``written`` (see ``not_inputs``)


_WALK = _WalkState()


def _itself(o):
    return o


def _under(path, targets) -> bool:
    """Whether ``path`` is one of ``targets`` or nested under one."""
    while not isinstance(path, str):
        if path in targets:
            return True
        path = path[0]
    return False


def _loosen(plan: _Plan, ids) -> None:
    """``plan`` without the ``.grad`` checks of the tensors ``ids`` (see ``ignore_grad``)."""
    keep = [t for t in plan.tensors if id(t[0]) not in ids]
    plan.f_grad_tensors = tuple(t[0] for t in keep)
    plan.f_nogs = tuple(t[4] for t in keep)


class _Plan:
    """The state a trace read, as flat identity checks (see the module's docstring): what
    ``_describe`` records, held by reference. ``_holds`` passing implies that walking the
    state again would give the same snapshot; it may fail where the walk would not (then
    the walk decides). ``_describe`` fills the lists; ``freeze`` turns them into the tuples
    ``_holds`` compares in C loops (``map``), a few per kind of item rather than one Python
    step per item."""

    __slots__ = ("roots", "objs", "maps", "slow_maps", "lists", "tensors", "arrays", "sized",
                 "ok", "f_types", "f_objs", "f_dicts", "f_dict_objs", "f_maps", "f_lens",
                 "f_keys", "f_vals", "f_sized", "f_sizes", "f_tensors", "f_shapes",
                 "f_dtypes", "f_rgs", "f_nogs", "f_grad_tensors", "held", "masked", "weak",
                 "weak_root", "classes", "slots", "f_cls", "f_cls_lens", "f_cls_items",
                 "f_cls_names", "f_cls_vals", "f_slot_objs", "f_slot_names", "f_slot_vals", "refs",
                 "f_keys_eq", "f_dmaps", "f_omaps")

    def __init__(self):
        self.roots: list = []        # (object or _MISSING, is a scalar), one per root; an
        #                              argument: (its weakref, False)
        self.weak: list = []         # (weakref, type, __dict__ or None): argument objects
        self.weak_root = None        # while walking an argument: its weakref
        self.classes: list = []      # (class __dict__ proxy, its len, names, values): the
        #                              non-dunder class-level state of user classes
        self.slots: list = []        # (object, slot names, values or _MISSING)
        self.refs: list = []         # (getter, value then, is a scalar): what the methods
        #                              of the user classes walked read by name
        self.objs: list = []         # (object, its type, its __dict__ or None)
        self.maps: list = []         # (dict, keys, values): dicts and __dict__s
        self.slow_maps: list = []    # the same for dict subclasses (their own items())
        self.masked: list = []       # (dict, keys left out, keys, values): a __dict__ with
        #                              attributes a forward pre-hook recomputes
        self.lists: list = []        # (list, items)
        self.tensors: list = []      # (tensor, shape, dtype, requires_grad, grad is None)
        self.arrays: list = []       # (ndarray, shape, dtype)
        self.sized: list = []        # (container, len): sets, empty dicts, long containers
        self.ok = True               # False: an object's __dict__ is not stable; walk always
        self.held: list | None = None   # what it holds, once a check failed (_released)

    def freeze(self) -> _Plan:
        self.f_objs = tuple(o[0] for o in self.objs)
        self.f_types = tuple(o[1] for o in self.objs)
        self.f_dict_objs = tuple(o[0] for o in self.objs if o[2] is not None)
        self.f_dicts = tuple(o[2] for o in self.objs if o[2] is not None)
        # exact dicts first (their values through ``dict.values``), then OrderedDicts (their
        # own order, which ``move_to_end`` makes differ from the dict's): a C call per map
        self.maps.sort(key=lambda m: type(m[0]) is not dict)
        self.f_maps = tuple(m[0] for m in self.maps)
        n = sum(type(m[0]) is dict for m in self.maps)
        self.f_dmaps, self.f_omaps = self.f_maps[:n], self.f_maps[n:]
        self.f_lens = tuple(len(m[1]) for m in self.maps)
        self.f_keys = tuple(k for m in self.maps for k in m[1])
        self.f_vals = tuple(v for m in self.maps for v in m[2])
        self.f_sized = tuple(x for x, _ in self.sized)
        self.f_sizes = tuple(n for _, n in self.sized)
        # a tensor reached twice (a model's parameter in its optimizer's param_groups) is
        # checked once: both entries were recorded from the same state
        once: dict = {}
        for t in self.tensors:
            once.setdefault(id(t[0]), t)
        self.tensors = list(once.values())
        self.f_tensors = tuple(t[0] for t in self.tensors)
        self.f_shapes = tuple(t[1] for t in self.tensors)
        self.f_dtypes = tuple(t[2] for t in self.tensors)
        self.f_rgs = tuple(t[3] for t in self.tensors)
        self.f_nogs = tuple(t[4] for t in self.tensors)
        self.f_grad_tensors = self.f_tensors
        # keys that are all exact str/int compare by value in one C loop (tuple ==, identity
        # first); other keys (tensors, objects, whose == is no identity) by ``is``
        self.f_keys_eq = all(type(k) is str or type(k) is int for k in self.f_keys)
        self.f_cls = tuple(c[0] for c in self.classes)
        self.f_cls_lens = tuple(c[1] for c in self.classes)
        self.f_cls_items = tuple(c[0] for c in self.classes for _ in c[2])
        self.f_cls_names = tuple(n for c in self.classes for n in c[2])
        self.f_cls_vals = tuple(v for c in self.classes for v in c[3])
        self.f_slot_objs = tuple(o[0] for o in self.slots for _ in o[1])
        self.f_slot_names = tuple(n for o in self.slots for n in o[1])
        self.f_slot_vals = tuple(v for o in self.slots for v in o[2])
        return self


_is = operator.is_
_get_dict = operator.attrgetter("__dict__")
_get_data = operator.attrgetter("_data")
_get_shape = operator.attrgetter("shape")
_get_dtype = operator.attrgetter("dtype")
_get_rg = operator.attrgetter("_rg")
_get_grad = operator.attrgetter("grad")
_values = operator.methodcaller("values")
_od_values = OrderedDict.values
_chain = itertools.chain.from_iterable
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)
_third = operator.itemgetter(2)
_proxy_get = types.MappingProxyType.get


def _is_scalar(x) -> bool:
    return type(x) in _PLAIN_SCALARS or isinstance(x, _SCALARS)


def _held(plan: _Plan) -> list:
    """The objects ``plan`` keeps alive (scalars among them): compared, by id, between the
    plan of a failed check and the plan of the walk that followed it (on the failure path
    only, in C loops). The plan holds them, so an id found in both is the same object."""
    return list(_chain((
        map(_first, plan.roots), map(_second, plan.refs), map(_first, plan.objs),
        map(_third, plan.objs),
        map(_first, plan.weak), map(_third, plan.weak), map(_first, plan.slots),
        _chain(map(_third, plan.slots)),
        map(_first, plan.maps), _chain(map(_second, plan.maps)), _chain(map(_third, plan.maps)),
        map(_first, plan.slow_maps), _chain(map(_second, plan.slow_maps)),
        _chain(map(_third, plan.slow_maps)), map(_first, plan.masked),
        _chain(m[2] for m in plan.masked), _chain(m[3] for m in plan.masked),
        map(_first, plan.lists),
        _chain(map(_second, plan.lists)), map(_first, plan.tensors), map(_first, plan.arrays),
        map(_first, plan.sized))))


def _released(old: _Plan, new: _Plan) -> bool:
    """Whether ``old`` holds an object (not a scalar) that ``new``, the plan of the state as
    it is now, does not reach: a replaced attribute that only ``old`` keeps alive."""
    held = old.held
    if held is None:
        held = old.held = _held(old)
    now = _held(new)
    if len(held) == len(now) and all(map(_is_scalar, itertools.compress(
            held, map(operator.is_not, held, now)))):
        return False    # the same objects in the same places: only scalars changed
    lost = set(map(id, held)).difference(map(id, now))
    if not lost:
        return False
    by_id = dict(zip(map(id, held), held))
    return any(not _is_scalar(by_id[i]) and by_id[i] is not _MISSING for i in lost)


def _same(v, e) -> bool:
    """An item the identity check missed: equal scalars (as the walk compares them)."""
    return v is e or (_is_scalar(v) and _is_scalar(e) and bool(v == e))


def _same_map(items, n, keys, vals) -> bool:
    items = list(items)
    if len(items) != n:
        return False
    for (k, v), k0, v0 in zip(items, keys, vals):
        if k is not k0 and not (type(k) is type(k0) and type(k) in (str, int) and k == k0):
            return False
        if v is not v0 and not _same(v, v0):
            return False
    return True


def _keys_same(plan: _Plan) -> bool:
    """Whether the dicts of ``plan.f_maps`` hold the recorded keys, in order."""
    if plan.f_keys_eq:
        try:
            return tuple(_chain(plan.f_maps)) == plan.f_keys
        except Exception:       # a new key of another type whose == raises: the walk decides
            return False
    return all(map(_is, _chain(plan.f_maps), plan.f_keys))


def _holds(plan: _Plan, roots) -> bool:
    """Whether the state still is what ``plan`` recorded. Runs on every call of a captured
    function: the items of each kind are compared in C loops (``map`` over the frozen
    tuples); only where one differs are its items compared in Python (a scalar attribute
    set again to an equal value is the same state)."""
    for (_, get, _w), (exp, scalar) in zip(roots, plan.roots):
        try:
            v = get()
        except (KeyError, NameError, ValueError):
            v = _MISSING
        # an argument's root: its weakref (``exp``) alive is that same object
        if v is not exp and not (scalar and _same(v, exp)) and (exp is not get or v is None):
            return False
    for r, t, d in plan.weak:
        v = r()
        if type(v) is not t or (d is not None and v.__dict__ is not d):
            return False
    for get, exp, scalar in plan.refs:
        try:
            v = get()
        except (KeyError, NameError, ValueError):
            v = _MISSING
        if v is not exp and not (scalar and _same(v, exp)):
            return False
    if plan.f_cls and (tuple(map(len, plan.f_cls)) != plan.f_cls_lens or not all(map(
            _is, map(_proxy_get, plan.f_cls_items, plan.f_cls_names, _MISSINGS),
            plan.f_cls_vals))):
        return False        # the walk decides (an equal value set again is the same state)
    if plan.f_slot_objs and not all(map(_is, map(getattr, plan.f_slot_objs, plan.f_slot_names,
                                                 _MISSINGS), plan.f_slot_vals)):
        for o, n, e in zip(plan.f_slot_objs, plan.f_slot_names, plan.f_slot_vals):
            v = getattr(o, n, _MISSING)
            if v is not e and not _same(v, e):
                return False
    if tuple(map(type, plan.f_objs)) != plan.f_types or \
            not all(map(_is, map(_get_dict, plan.f_dict_objs), plan.f_dicts)):
        return False
    if tuple(map(len, plan.f_maps)) != plan.f_lens or \
            not _keys_same(plan) or \
            not all(map(_is, itertools.chain(_chain(map(dict.values, plan.f_dmaps)),
                                             _chain(map(_od_values, plan.f_omaps))),
                        plan.f_vals)):
        for d, keys, vals in plan.maps:
            if not _same_map(d.items(), len(keys), keys, vals):
                return False
    if tuple(map(len, plan.f_sized)) != plan.f_sizes:
        return False
    for d, keys, vals in plan.slow_maps:
        if not _same_map(d.items(), len(keys), keys, vals):
            return False
    for d, skip, keys, vals in plan.masked:
        if not _same_map([kv for kv in d.items() if kv[0] not in skip], len(keys), keys, vals):
            return False
    for x, vals in plan.lists:
        if len(x) != len(vals):
            return False
        if not all(map(_is, x, vals)) and \
                not all(v is e or _same(v, e) for v, e in zip(x, vals)):
            return False
    if plan.f_tensors:
        datas = tuple(map(_get_data, plan.f_tensors))
        if tuple(map(_get_shape, datas)) != plan.f_shapes:
            return False
        if not all(map(_is, map(_get_dtype, datas), plan.f_dtypes)) and \
                tuple(map(_get_dtype, datas)) != plan.f_dtypes:
            return False
        if tuple(map(_get_rg, plan.f_tensors)) != plan.f_rgs or \
                tuple(map(_is, map(_get_grad, plan.f_grad_tensors), _NONES)) != plan.f_nogs:
            return False
    for a, shape, dt in plan.arrays:
        if a.shape != shape or a.dtype != dt:
            return False
    return True


_NONES = itertools.repeat(None)
_MISSINGS = itertools.repeat(_MISSING)


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
    if a[1:2] == b[1:2] == ("cls",) and a[0] == b[0]:
        return f"{path_text(a[0])} was set to another object ({a[3]} -> {b[3]})"
    return f"{path_text(a[0])} changed ({_short(a[1:])} -> {_short(b[1:])})"


def _short(x) -> str:
    s = repr(x[0] if len(x) == 1 else x)
    return s if len(s) < 80 else s[:77] + "..."


def _roots(fn, objects, on_dead=None):
    """(name, getter, weak) per root. The arguments' objects are held by weakref (``weak``:
    the getter is that weakref, which calls ``on_dead`` when the object dies): a cached graph
    must not keep a model the caller dropped alive; the call's key names them by id."""
    roots = []
    for i, o in enumerate(objects):
        try:
            roots.append((f"arg{i}:{type(o).__name__}", weakref.ref(o, on_dead), True))
        except TypeError:       # not weakly referenceable: held
            roots.append((f"arg{i}:{type(o).__name__}", (lambda o=o: o), False))
    seen_code: set = set()
    owners: list = []
    _owner_roots(fn, owners, seen_code, 0)
    for o in objects:
        # the code an argument's call runs (a model's forward): the config modules it reads
        for c in _user_mro(type(o)):
            for f in vars(c).values():
                if isinstance(f, types.FunctionType):
                    _module_attr_roots(f, owners)
    roots.extend((name, get, False) for name, get in owners)
    return roots


def _owner_roots(fn, roots, seen_code, depth) -> None:
    """The function's code and the object it belongs to, which its code reads as ``self``:
    ``tl.function(model)`` (a Module or other callable object: itself, and the code of its
    ``forward``/``__call__``), ``tl.function(model.forward)`` (a bound method's
    ``__self__``), ``functools.partial(f, model)`` (its arguments), a ``tl.function`` of
    one of those. Guarded as the arguments are: the module tree's training flags, Python
    attributes, submodules, parameters and buffers."""
    if depth > 3:
        return
    if type(fn).__name__ == "Function" and hasattr(fn, "retrace_reasons"):
        _owner_roots(fn.fn, roots, seen_code, depth + 1)    # tl.function(tl.function(f))
        return
    if isinstance(fn, functools.partial):
        for i, a in enumerate(fn.args):
            if not isinstance(a, _SKIP):
                roots.append((f"partial arg{i}:{type(a).__name__}", (lambda a=a: a)))
        for k, a in (fn.keywords or {}).items():
            if not isinstance(a, _SKIP):
                roots.append((f"partial arg {k}:{type(a).__name__}", (lambda a=a: a)))
        _owner_roots(fn.func, roots, seen_code, depth + 1)
        return
    if isinstance(fn, types.FunctionType):
        _code_roots(fn, roots, seen_code, depth)
        return
    owner = getattr(fn, "__self__", None) if isinstance(fn, types.MethodType) else fn
    if isinstance(fn, types.MethodType):
        _code_roots(fn.__func__, roots, seen_code, depth)
    elif not isinstance(fn, (types.BuiltinFunctionType, type)):
        # a callable object: the code its call runs (a Module's forward, else __call__),
        # unless that is the library's own (an nn.Sequential's forward reads only self)
        code_fn = getattr(type(fn), "forward", None)
        if code_fn is None and callable(fn):
            code_fn = type(fn).__call__
        if isinstance(code_fn, types.FunctionType) and \
                not (code_fn.__module__ or "").startswith("tensorlib."):
            _code_roots(code_fn, roots, seen_code, depth)
    if owner is not None and not isinstance(owner, _SKIP) and \
            not isinstance(owner, threading.local) and \
            not (type(owner).__name__ == "Function" and hasattr(owner, "retrace_reasons")):
        roots.append((f"self:{type(owner).__name__}", (lambda o=owner: o)))


def _code_roots(fn, roots, seen_code, depth, only_simple: bool = False) -> None:
    """Roots for what ``fn``'s code reads without taking it as an argument: its globals and
    closure cells (followed into the functions among them), ``module.NAME`` chains on user
    modules, the user classes it names (``Cfg.scale``: walked as classes, see
    ``_describe``) and its default arguments. ``only_simple`` (the methods of user classes
    the walk reaches, see ``_class_refs``): only scalars, user classes and config modules:
    the objects a model's forward names are guarded where they are reached, if at all."""
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None or code in seen_code or depth > 3:
        return
    if depth and (getattr(fn, "__module__", None) or "").startswith("tensorlib."):
        return      # library internals are not user state
    seen_code.add(code)
    _module_attr_roots(fn, roots)
    _default_roots(fn, roots)
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
            _code_roots(val, roots, seen_code, depth + 1, only_simple)
        elif _is_user_class(val) or (_is_scalar(val) if only_simple else not (
                isinstance(val, _SKIP) or isinstance(val, threading.local) or
                type(val).__name__ == "Function" and hasattr(val, "retrace_reasons"))):
            roots.append((f"global {name!r}", (lambda g=glb, n=name: g[n])))
    if fn.__closure__:
        for name, cell in zip(code.co_freevars, fn.__closure__):
            try:
                val = cell.cell_contents
            except ValueError:
                continue
            if isinstance(val, types.FunctionType):
                _code_roots(val, roots, seen_code, depth + 1, only_simple)
            elif _is_user_class(val) or (_is_scalar(val) if only_simple
                                         else not isinstance(val, _SKIP)):
                roots.append((f"closure variable {name!r}", (lambda c=cell: c.cell_contents)))


def _default_roots(fn, roots) -> None:
    """Roots for a user function's default arguments (``helper.__defaults__ = (2.0,)``
    changes what ``helper(x)`` computes): scalars compared by value, others by identity."""
    if not isinstance(fn, types.FunctionType) or not _user_module(fn.__module__):
        return
    if fn.__defaults__ is not None:
        roots.append((f"{fn.__qualname__}.__defaults__", (lambda f=fn: f.__defaults__)))
    if fn.__kwdefaults__ is not None:
        roots.append((f"{fn.__qualname__}.__kwdefaults__", (lambda f=fn: f.__kwdefaults__)))


def _is_user_class(x) -> bool:
    """Whether ``x`` is a class of the user's code (its class-level state is guarded)."""
    return isinstance(x, type) and bool(_user_mro(x))


def _user_module(name: str | None) -> bool:
    """Whether a module (by name) is the user's code: not the standard library, an installed
    package (site-packages) or tensorlib."""
    try:
        return _USER_MODULES[name]
    except KeyError:
        pass
    top = (name or "builtins").partition(".")[0]
    ok = top != "tensorlib" and top not in sys.stdlib_module_names
    if ok:
        f = getattr(sys.modules.get(name), "__file__", None) or ""
        ok = "site-packages" not in f and "dist-packages" not in f
    _USER_MODULES[name] = ok
    return ok


_USER_MODULES: dict = {}


def _per_class(fn):
    """``fn(cls)`` computed once per class, the class held weakly (classes made in a loop
    go); an object that cannot be a weak key (not a class) is computed each time."""
    cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @functools.wraps(fn)
    def cached(t):
        try:
            return cache[t]
        except (KeyError, TypeError):
            pass
        out = fn(t)
        try:
            cache[t] = out
        except TypeError:
            pass
        return out
    return cached


@_per_class
def _user_mro(t: type) -> tuple:
    """The classes of ``t``'s MRO before the first library class (tensorlib, builtins,
    stdlib, installed packages): their class-level state is the user's."""
    out = []
    for c in getattr(t, "__mro__", ()):
        if not _user_module(getattr(c, "__module__", None)):
            break
        out.append(c)
    return tuple(out)


def _module_attr_roots(fn, roots) -> None:
    """Roots for ``module.NAME`` reads in ``fn``'s code where the global is a user module
    (a config module), followed along ``LOAD_ATTR`` chains through user modules
    (``cfg.sub.beta``, up to ``_MAX_CHAIN`` names): the first value that is no module is
    the root if it is a simple one (numbers, str, bool, None, tuples of those), a user class
    or an object such as a namespace or a dict (walked, see ``_describe``): modules
    themselves are not walked (see ``_SKIP``)."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    glb = getattr(getattr(fn, "__func__", fn), "__globals__", None)
    if code is None or not glb:
        return
    have = {r[0] for r in roots}
    stack = [code]
    while stack:
        c = stack.pop()
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
        mod, name, n = None, "", 0
        for ins in dis.get_instructions(c):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                mod, name, n = glb.get(ins.argval), f"global {ins.argval!r}", 0
                continue
            if ins.opname not in ("LOAD_ATTR", "LOAD_METHOD") or \
                    not isinstance(mod, types.ModuleType) or not _user_module(mod.__name__):
                mod = None
                continue
            val = mod.__dict__.get(ins.argval, _MISSING)
            name, n = f"{name}.{ins.argval}", n + 1
            if isinstance(val, types.ModuleType) and n < _MAX_CHAIN:
                mod = val       # a config package's submodule: follow the chain
                continue
            if name not in have and (
                    _is_scalar(val) or type(val) is tuple and all(map(_is_scalar, val))
                    or _is_user_class(val) or ins.opname == "LOAD_ATTR" and (
                        isinstance(val, (types.SimpleNamespace, dict, list))
                        or _user_mro(type(val)))):
                have.add(name)
                roots.append((name, (lambda d=mod.__dict__, k=ins.argval: d[k])))
            mod = None


_MAX_CHAIN = 4


@_per_class
def _slot_names(t: type) -> tuple:
    """The ``__slots__`` attributes of ``t``'s instances (name-mangled ones left out)."""
    names: list = []
    for c in getattr(t, "__mro__", ()):
        sl = vars(c).get("__slots__", ())
        for n in ((sl,) if isinstance(sl, str) else sl):
            if isinstance(n, str) and not n.startswith("__") and n not in names:
                names.append(n)
    return tuple(names)


def _describe_class(t, out, seen, plan, depth=0, tensors=None, arrays=None,
                    recomputed=None) -> None:
    """The class-level state of ``t``'s user classes, once per walk: what an attribute read
    through an instance or the class may resolve to (a class attribute, a property, a
    method patched on the class): scalars (and tuples of them) by value, containers,
    namespaces and nested user classes walked (``Reg.table['a']``), other entries by
    identity; and what the class's methods read by name (see ``_class_refs``)."""
    for c in _user_mro(t):
        if id(c) in seen:
            continue
        seen.add(id(c))
        proxy = vars(c)
        items = [(k, v) for k, v in proxy.items()
                 if not (k.startswith("__") and k.endswith("__"))]
        base = f"class {c.__qualname__}"
        for k, v in items:
            if _is_scalar(v) or type(v) is tuple and all(map(_is_scalar, v)):
                out.append(((base, ".", k), v))
            elif isinstance(v, (dict, list, tuple, types.SimpleNamespace)) or \
                    isinstance(v, type) and _user_mro(v):
                _describe(v, (base, ".", k), out, seen, depth + 1, tensors, arrays, plan,
                          recomputed)
            else:
                out.append(((base, ".", k), "cls", id(v), type(v).__name__))
        if plan is not None:
            plan.classes.append((proxy, len(proxy), tuple(k for k, _ in items),
                                 tuple(v for _, v in items)))
        for name, get in _class_refs(c):
            try:
                v = get()
            except (KeyError, NameError, ValueError):
                v = _MISSING
            path = (base, " reads ", name)
            if plan is not None:
                plan.refs.append((get, v, _is_scalar(v)))
            if v is _MISSING:
                out.append((path, "<missing>"))
            else:
                _describe(v, path, out, seen, depth + 1, tensors, arrays, plan, recomputed)


@_per_class
def _class_refs(c: type) -> tuple:
    """(name, getter) for the scalars, user classes and config-module values that the
    methods of class ``c`` (a model's ``forward``) read by name: globals, closure cells and
    ``module.NAME`` chains (see ``_code_roots``), once per class."""
    roots: list = []
    seen_code: set = set()
    for v in vars(c).values():
        if isinstance(v, (staticmethod, classmethod)):
            v = v.__func__
        fns = (v.fget, v.fset) if isinstance(v, property) else (v,)
        for f in fns:
            if isinstance(f, types.FunctionType):
                _code_roots(f, roots, seen_code, 1, only_simple=True)
    names: set = set()
    return tuple(r for r in roots if r[0] not in names and not names.add(r[0]))


def path_text(path) -> str:
    """A guard's path in words (``arg0:Net.fc.weight``): paths are kept as (parent, how,
    key) tuples while the state is walked, and written out only for a message (or for the
    tracer's names of reachable tensors). A loop, not recursion: the walk has no depth
    limit, so a path may be deeper than Python's recursion limit allows."""
    steps = []
    while not isinstance(path, str):
        path, how, key = path
        steps.append((how, key))
    parts = [path]
    for how, key in reversed(steps):
        if how == ".":
            parts.append(f".{key}")
        elif how == " reads ":
            parts.append(f"'s code: {key}")
        elif how == "[]":
            parts.append(f"[{key}]")
        elif how == "[r]":
            parts.append(f"[{key!r}]")
        else:
            parts.append(" key")
    return "".join(parts)


def _deep_limit() -> int:
    """How deep the state walk recurses: half of Python's recursion limit (a model nested
    deeper cannot run its forward anyway); below it, objects are guarded by identity."""
    return sys.getrecursionlimit() // 2


def _warn_deep(path) -> None:
    import warnings
    where = path_text(path)
    where = where if len(where) <= 120 else f"{where[:50]}...{where[-60:]}"
    warnings.warn(f"tl.function: the state reachable from the function is nested more than "
                  f"{_deep_limit()} levels deep (at {where}): below that, objects "
                  "are guarded by identity only, so changing their attributes in place does "
                  "not retrace (raise sys.setrecursionlimit to guard deeper)", stacklevel=2)


def _structural(values) -> bool:
    """Whether a container holds only modules and tensors (a model's ``_modules`` or
    ``_parameters``, a ModuleList): walked whatever its length, since a forward may read any
    of them; long containers of other things (data) are guarded by length only."""
    for v in values:
        if v is not None and not isinstance(v, _Tensor):
            d = getattr(v, "__dict__", None)
            if type(d) is not dict or "_parameters" not in d:
                return False
    return True


_Tensor = None


# NumPy arrays are compared by value on every call up to this many bytes in all (4 MiB:
# ~0.2 ms a call); beyond it, by identity, shape and dtype only (documented)
_MAX_ARRAY_BYTES = 4 << 20


def _recomputed_attrs(d: dict) -> frozenset:
    """The attributes of a module (its ``__dict__``) that one of its forward pre-hooks sets
    anew before every forward (a hook with ``_capture_recomputes``, the attribute's name:
    hook-style weight_norm / spectral_norm): what they hold between calls is no input of a
    trace, and each call replaces it, so they are left out of the guards."""
    hooks = d.get("_forward_pre_hooks")
    if not hooks:
        return frozenset()
    return frozenset(n for n in (getattr(h, "_capture_recomputes", None)
                                 for h in hooks.values()) if isinstance(n, str))


def _describe(x, path, out, seen, depth, tensors, arrays=None, plan=None,
              recomputed=None) -> None:
    # walks all the state a captured function can reach (a model, its optimizer): at trace
    # time (also filling ``plan``, the per-call check) and when that check fails: no imports,
    # and paths as tuples, not formatted strings
    global _Tensor
    if _Tensor is None:
        from .._tensor import Tensor as _T
        _Tensor = _T
    t = type(x)
    if t in _PLAIN_SCALARS or isinstance(x, _SCALARS):
        out.append((path, x))       # the plan: its container's check compares the value
        return
    if (t is dict or t is OrderedDict) and not x:     # a module's many empty hook dicts
        out.append((path, "dict", id(x), 0))
        if plan is not None:
            plan.sized.append((x, 0))
        return
    if t is _Tensor or isinstance(x, _Tensor):
        if getattr(x, "_tl_uninitialized", False):
            raise LazyStateError(path_text(path))
        nog = x.grad is None
        out.append((path, "T", id(x), x.shape, x.dtype.str, x._rg, nog))
        if tensors is not None and id(x) not in tensors:
            tensors[id(x)] = (x, path_text(path))
        if plan is not None:
            plan.tensors.append((x, x._data.shape, x._data.dtype, x._rg, nog))
        return
    if isinstance(x, type) and _user_mro(x):
        # a user class named by the code (``Cfg.scale``) or held by an object: its
        # class-level state, as for the class of an instance
        out.append((path, "class", id(x)))
        _describe_class(x, out, seen, plan, depth, tensors, arrays, recomputed)
        return
    if isinstance(x, (_SKIP, Generator)) or depth > _deep_limit():
        if tensors is not None and "deep" not in seen and depth > _deep_limit():
            seen.add("deep")        # once a walk
            _warn_deep(path)
        # a graph's draws read a tl.Generator's stream when they run: re-seeding it is no
        # reason to trace again
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
        if plan is not None:
            plan.arrays.append((x, x.shape, x.dtype))
        return
    if isinstance(x, (list, tuple)):
        # a tuple of scalars by value (``f.__defaults__ = (2.0,)`` set again: the same state)
        out.append((path, type(x).__name__, len(x)) if type(x) is tuple and all(
            map(_is_scalar, x)) else (path, type(x).__name__, id(x), len(x)))
        every = len(x) <= _MAX_ITEMS or _structural(x)
        if plan is not None and isinstance(x, list):    # a tuple cannot change its items
            if every:
                plan.lists.append((x, tuple(x)))
            else:
                plan.sized.append((x, len(x)))
        if every:
            for i, y in enumerate(x):
                _describe(y, (path, "[]", i), out, seen, depth + 1, tensors, arrays, plan,
                          recomputed)
        return
    if isinstance(x, dict):
        out.append((path, "dict", id(x), len(x)))
        items = list(x.items())
        every = len(x) <= _MAX_ITEMS or _structural(x.values())
        if plan is not None:
            if not every:
                plan.sized.append((x, len(x)))
            else:
                (plan.maps if t is dict or t is OrderedDict else plan.slow_maps).append(
                    (x, tuple(k for k, _ in items), tuple(y for _, y in items)))
        if every:
            for k, y in items:
                kn = k if isinstance(k, (str, int)) else f"<{type(k).__name__}>"
                if isinstance(k, _Tensor):
                    kn = f"<tensor {id(k)}>"
                    out.append(((path, "key", None), "T", id(k)))
                _describe(y, (path, "[r]", kn), out, seen, depth + 1, tensors, arrays, plan,
                          recomputed)
        return
    if isinstance(x, (set, frozenset)):
        out.append((path, "set", id(x), len(x)))
        if plan is not None:
            plan.sized.append((x, len(x)))
        return
    d = getattr(x, "__dict__", None)
    out.append((path, "obj", id(x), type(x).__name__))
    if plan is not None:
        if getattr(x, "__dict__", None) is not d or (d is not None and type(d) is not dict):
            plan.ok = False     # a __dict__ made anew on each access: the walk decides
        if depth == 0 and plan.weak_root is not None:
            plan.weak.append((plan.weak_root, t, d))
        else:
            plan.objs.append((x, t, d))
    _describe_class(t, out, seen, plan, depth, tensors, arrays, recomputed)
    slots = _slot_names(t)
    if slots:
        vals = tuple(getattr(x, n, _MISSING) for n in slots)
        if plan is not None:
            plan.slots.append((x, slots, vals))
        for n, y in zip(slots, vals):
            if y is _MISSING:
                out.append(((path, ".", n), "<absent>"))
            else:
                _describe(y, (path, ".", n), out, seen, depth + 1, tensors, arrays, plan,
                          recomputed)
    if d is not None:
        items = list(d.items())
        skip = _recomputed_attrs(d) if "_forward_pre_hooks" in d else None
        if skip and recomputed is not None:
            recomputed.extend((d, k, y) for k, y in items if k in skip)
        written = _WALK.written
        if written:
            w = written.get(id(x))
            if w is not None and w[0]() is x:
                skip = skip | w[1] if skip else w[1]
        if skip:
            items = [kv for kv in items if kv[0] not in skip]
        if plan is not None:
            entry = (d, tuple(k for k, _ in items), tuple(y for _, y in items))
            if skip:
                plan.masked.append((d, skip, *entry[1:]))
            else:
                plan.maps.append(entry)
        for k, y in items:
            _describe(y, (path, ".", k), out, seen, depth + 1, tensors, arrays, plan,
                      recomputed)
