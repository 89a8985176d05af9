"""``tl.capture()`` and ``@tl.function``: eager code in, a Graph out.

Both install a :class:`~tensorlib.graph.tracer.Tracer` as the thread's
``state.tracer``; ``apply`` then reports every op to it while the code runs
eagerly. ``tl.function`` adds a cache of graphs keyed by the call signature,
guards on the Python state the code may read, and replays a compiled plan on
later calls.
"""
from __future__ import annotations

import functools
import operator
import os
import threading
import types
import re
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .._subclass import _is_active as _subclass_active
from .._tensor import Tensor
from ..autograd.mode import state
from .executor import Plan, make_plan, multi_spec, shared_results
from .ir import Graph, attr_key
from .runtime import random_shape
from .signature import (Guards, LazyStateError, TensorSpec, build_sparse, flat_specs,
                        flatten, rebuild, sparse_specs)
from .tracer import CaptureError, Tracer, user_line
from .replay_checks import (eager_for_overlap, finish_reseeds, mode_reason, overlap_writes,
                            replay_tail, with_grad_mode)
from .attrwatch import AttrWatch, code_stores, owner_ref

_first = operator.itemgetter(0)

__all__ = ["capture", "function", "Function", "TensorSpec", "CaptureError"]


class capture:
    """Record the ops run inside the block into a :class:`Graph`.

    Tensors passed as arguments become the graph's placeholders (in order);
    other tensors the block reads become variables (those that require grad or
    are written in place) or constants. In-place updates become ``assign``
    nodes. The block runs eagerly, so its results are also computed.

    An optimizer of ``tensorlib.optim`` that steps in the block for the first time gets its
    state (momentum buffers, Adam's moments and step count) made as zeros outside the graph
    first, as ``tl.function`` does: the graph then reads and updates that state on every
    run, so each run continues the optimization instead of repeating a first step.

    >>> with tl.capture(x) as g:
    ...     y = (x @ w).relu().sum()
    >>> g.set_outputs(y)
    >>> g.run({x: x_new})
    """

    def __init__(self, *inputs, name: str = "graph", input_shapes=None):
        self._inputs = inputs
        self._shapes = input_shapes
        self.graph = Graph(name)

    def __enter__(self) -> Graph:
        if state.tracer is not None:
            raise CaptureError("tl.capture: a capture is already active in this thread "
                               "(nested captures are not supported)")
        tracer = Tracer(self.graph)
        for i, t in enumerate(self._inputs):
            shape = self._shapes[i] if self._shapes is not None else None
            tracer.add_input(t, name=f"x{i}" if len(self._inputs) > 1 else "x", shape=shape)
        self.graph._tracer = tracer
        self._opt_watch = _BlockOptimizers(tracer)
        state.tracer = tracer
        return self.graph

    def __exit__(self, exc_type, exc, tb) -> None:
        state.tracer = None
        self._opt_watch.close(warn=exc_type is None)
        if exc_type is None:
            tracer = self.graph._tracer
            finish_reseeds(tracer, self.graph)
            tracer.finish()
            self.graph.size_predicates = list(tracer.predicates)
            self.graph.size_predicate_sources = dict(tracer.predicate_sources)
            frozen = _frozen_inputs(self.graph, self._inputs)
            if frozen:
                warnings.warn(
                    f"tl.capture: input {', '.join(frozen)} is never read inside the block, "
                    "but the block read a tensor sharing its memory, which the graph holds as "
                    "a constant or variable: it ignores what is fed there. A slice or copy "
                    "taken inside the block (x[:16]) is a new tensor: take it before the block "
                    "and pass that.", stacklevel=2)
            if tracer.size_escapes and _specialize(self.graph, tracer):
                warnings.warn(f"tl.capture: {tracer.size_escapes[0]}; the graph cannot "
                              "recompute it for other sizes, so its inputs keep the traced "
                              f"sizes {_fixed_words(self.graph.size_fixed)}."
                              f"{_escape_help(tracer)}", stacklevel=2)
            _infer_dynamic(self.graph, tracer)


class _BlockOptimizers:
    """While a ``tl.capture`` block runs: before an optimizer's ``step()`` in the block, give
    it the state its first step would make (:func:`_prime`, made with the capture paused,
    so the graph holds it as variables it reads and writes rather than as values computed
    once). An optimizer it cannot prime (a user's) that makes state in the block is warned
    about on exit: that state stays a constant of the graph."""

    def __init__(self, tracer):
        from ..optim.optimizer import register_optimizer_step_pre_hook
        self.tracer = tracer
        self.seen: dict = {}        # id(optimizer) -> (optimizer, parameters with state)
        self.handle = register_optimizer_step_pre_hook(self._before_step)

    def _before_step(self, opt, args, kwargs):
        if state.tracer is not self.tracer or id(opt) in self.seen:
            return None         # (another thread's step, or this one's later steps)
        state.tracer = None
        try:
            _prime(opt)
        finally:
            state.tracer = self.tracer
        self.seen[id(opt)] = (opt, {id(p) for p in opt.state})
        return None

    def close(self, warn: bool) -> None:
        self.handle.remove()
        if not warn:
            return
        for opt, had in self.seen.values():
            if any(id(p) not in had for p in opt.state):
                warnings.warn(
                    f"tl.capture: optimizer {type(opt).__name__} made its state (momentum, "
                    "moments) during its first step() inside the block; the graph holds that "
                    "state as constants, so every run repeats a first step. Run one step "
                    "eagerly before capturing, or use tl.function.", stacklevel=3)


def _infer_dynamic(g: Graph, tracer) -> None:
    """Intermediate shapes that follow the inputs' None dims, as tl.function's
    input_signature gives: a saved graph checks every node against them per call. Where an
    op's ``infer`` cannot follow them, the None dims take the traced sizes (with a warning),
    so that no file promises sizes it cannot serve."""
    free = {(i, a): int(tracer.placeholders[i]._data.shape[a])
            for i, v in enumerate(g.inputs) for a, d in enumerate(v.shape) if d is None}
    if not free:
        return
    try:
        g.infer_shapes()
    except ValueError as e:
        _fix_dims(g, free, f"shape inference cannot follow the None dims ({e})")
        g.infer_shapes()
        warnings.warn(f"tl.capture: {g.size_specialized}", stacklevel=3)


def _frozen_inputs(g: Graph, inputs) -> list[str]:
    """The inputs no node reads although the graph reads their memory through another tensor
    (a slice of the input's base taken inside the block): their data is baked in."""
    from ..backends import root_buffer

    def root(a):
        return id(root_buffer(a))
    held = set()
    for n in g.nodes:
        if n.op == "constant" and n.attrs.get("value") is not None:
            held.add(root(n.attrs["value"]))
        if n.op in ("constant", "variable") and n in g.bindings:
            bound = g.bindings[n]
            t = bound[0] if isinstance(bound, tuple) else bound
            if hasattr(t, "_data"):
                held.add(root(t._data))
    read = {v.id for n in g.nodes for v in n.inputs}
    return [f"{i} ({v.label()})" for i, (v, t) in enumerate(zip(g.inputs, inputs))
            if v.id not in read and root(t._data) in held]


def _set_outputs(self: Graph, *outs) -> Graph:
    """Declare the graph's outputs (tensors computed in the capture block, or Values)."""
    self.outputs = [self.value(o) for o in outs]
    self.invalidate()
    return self


Graph.set_outputs = _set_outputs


class _Entry:
    """One traced graph of a tl.function, ready to replay."""

    __slots__ = ("graph", "plan", "template", "guards", "constants", "out_kinds", "n_calls",
                 "shapes_ok", "trace_no", "grad_outputs", "sizes", "fixed", "fixed_why",
                 "traced", "verified", "version", "grad_mode", "rebinds", "dead", "held",
                 "side", "grad_state", "grad_in", "grad_sets", "arg_hooks", "outside")

    @property
    def predicates(self) -> list:
        return self.graph.size_predicates

    def __init__(self, graph, plan, template, guards, constants, out_kinds):
        self.shapes_ok: set | None = None
        # outputs computed from tensors that require grad, by a function that does not call
        # backward() itself: with grad enabled the caller expects to differentiate them
        self.grad_outputs = False
        # the input shapes a training step with None dims was traced at: its backward holds
        # sizes (a mean's 1/N, broadcasts to the batch) that only fit those
        self.sizes: tuple | None = None
        # the input dims an escaped size fixed ({(input, axis): size}) and that escape in words
        self.fixed: dict = {}
        self.fixed_why = ""
        # the input shapes it was traced at, and whether a trace at other sizes of its None
        # dims built the same graph (until then a call at other sizes traces to compare)
        self.traced: tuple | None = None
        self.verified = False
        self.grad_mode = True       # whether grad mode was on while it was traced
        self.graph = graph
        self.plan = plan
        self.version = graph.version    # an edit after tracing (placement) means a new plan
        self.template = template
        self.guards = guards
        # (the tracer's (tensor, version box, version) list, its boxes, their versions)
        self.constants = (constants, tuple(c[1] for c in constants),
                          tuple(c[2] for c in constants))
        self.out_kinds = out_kinds
        self.n_calls = 0
        # (module, attribute, tensor): weights a hook-style norm recomputes, which a replay
        # writes into ``tensor``; put back on the module after each replay, since an eager
        # forward or another graph's trace may have left another tensor there since
        self.rebinds: list = []
        # weak references to the parameters whose .grad the trace found None and the step
        # only zeroes (``dead``: eager's optimizer skips them), and to those it found set and
        # left unreached (``held``: eager's optimizer steps them with zeros): the graph fits
        # only calls that start with each in that state (see ``_grad_state_miss``)
        self.dead: tuple = ()
        self.held: tuple = ()
        # (owner ref, attribute, output template): attributes the function sets before it
        # reads them (``self.aux = ...`` in a forward); each replay sets them to its values
        self.side: tuple = ()
        # the arguments' autograd state at the traced call (see _arg_grad_states): a call
        # whose arguments hold another .grad state or other hooks needs another graph
        self.grad_state: tuple = ()
        # argument indices whose .grad at the call the graph reads (extra inputs, in order)
        self.grad_in: tuple = ()
        # (("in", argument) or ("out", result) index, plan output position or None, copy):
        # the .grad each replay sets, as eager's backward() / retain_grad() left it
        self.grad_sets: tuple = ()
        # (argument index, hooks): hooks the traced call registered on an argument, which
        # each replay registers on that call's argument too
        self.arg_hooks: tuple = ()
        # why replays cannot give what eager gives (a backward() through the autograd
        # history an argument brought from outside), or None
        self.outside: str | None = None

    def check(self) -> str | None:
        # one C loop over the constants' version boxes; the Python loop only names the one
        if tuple(map(_first, self.constants[1])) != self.constants[2]:
            for t, box, ver in self.constants[0]:
                if box[0] != ver:
                    return (f"a tensor of shape {tuple(t.shape)} that the graph holds as a "
                            "constant was modified in place")
        return self.guards.check()

    def run(self, tensors: list):
        from .._tensor import _wrap
        if self.shapes_ok is not None:
            shapes = tuple(t.shape for t in tensors)
            if shapes not in self.shapes_ok:
                _check_concrete_shapes(self.graph, shapes)
                self.shapes_ok.add(shapes)
        if self.graph.version != self.version:     # edited (placed) after it was traced
            g = self.graph
            outs = list(g.outputs) + list(getattr(g, "side_outputs", ()))
            self.plan = make_plan(g, outs, g.assigns, memory=self.plan.memory
                                  if isinstance(self.plan, Plan) else True)
            g._plans[(tuple(v.id for v in outs), tuple(n.id for n in g.assigns))] = \
                self.plan
            self.version = g.version
        if self.grad_in:
            grads = [tensors[i].grad for i in self.grad_in]
            tensors = list(tensors) + grads
            outs = self.plan([t._data for t in tensors], tensors)
        else:
            outs = self.plan([t._data for t in tensors], tensors)
        for module, name, w in self.rebinds:
            if module.__dict__.get(name) is not w:
                module.__dict__[name] = w
        res = []
        for arr, (kind, ref, dev) in zip(outs, self.out_kinds):
            if kind == "input":
                res.append(tensors[ref])
            elif kind == "data":
                res.append(ref)
            elif kind == "grad":
                res.append(ref.grad)
            else:
                res.append(_wrap(arr.copy() if kind == "copy" else arr, dev, False, None, 0))
        if self.grad_sets:
            _set_grads(self, tensors, res, outs)
        for ref, name, tpl in self.side:
            owner = ref()
            if owner is not None:
                owner.__dict__[name] = rebuild(tpl, res)
        replay_tail(self.graph)
        self.n_calls += 1
        return rebuild(self.template, res)


def _set_grads(e: _Entry, tensors: list, res: list, outs: list) -> None:
    """After a replay: the .grad eager leaves on the arguments (backward() into them,
    ``x.grad = None``) and on the returned tensors (retain_grad()), and the hooks the traced
    call registered on arguments."""
    from .._tensor import _wrap
    for (where, k), pos, copy in e.grad_sets:
        t = tensors[k] if where == "in" else res[k]
        if pos is None:
            t.grad = None
        else:
            a = outs[pos]
            t.grad = _wrap(a.copy() if copy else a, t._device, False, None, 0)
    for k, hooks in e.arg_hooks:
        t = tensors[k]
        if t._hooks is None:
            t._hooks = []
        t._hooks.extend(hooks)


def _arg_grad_states(tensors) -> tuple:
    """``(index, state)`` for each argument that requires grad: its .grad (None, or its
    dtype, device and whether it has the argument's shape) and its hooks (by identity),
    or "history" for one with autograd history. A graph holds what backward() does with
    them: accumulate into a .grad or set it, run the hooks (the entry's guard)."""
    out = []
    for i, t in enumerate(tensors):
        if not t._rg:
            continue
        if t._node is not None:
            out.append((i, "history"))
            continue
        g = t.grad
        gs = None if g is None else (g._data.dtype, str(g._device),
                                      g._data.shape == t._data.shape or g._data.shape)
        out.append((i, (gs, tuple(t._hooks) if t._hooks else ())))
    return tuple(out)


def _arg_grad_miss(e: _Entry, tensors) -> str | None:
    now = _arg_grad_states(tensors)
    if now == e.grad_state:
        return None
    for (i, a), (_, b) in zip(e.grad_state, now):
        if a != b:
            if a == "history" or b == "history":
                return f"argument {i} {'has' if b == 'history' else 'has no'} autograd history"
            if a[1] != b[1]:
                return f"argument {i} has other gradient hooks than when traced"
            was = "None" if a[0] is None else "set"
            if (a[0] is None) == (b[0] is None):
                was += ", with another dtype, device or shape"
            return (f"argument {i} has .grad {'None' if b[0] is None else 'set'} (it was "
                    f"{was} when traced): backward() sets a None .grad and adds into a set one")
    return "the arguments' .grad state changed"


# every tl.function, so a forked child can reset what another thread of its parent held
_LIVE: weakref.WeakSet = weakref.WeakSet()


def _after_fork() -> None:
    for f in list(_LIVE):
        f._lock = threading.RLock()
        f._tracing = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class Function:
    """A Python function whose calls run as captured graphs (see :func:`function`)."""

    def __init__(self, fn: Callable, input_signature=None, max_retraces: int = 5,
                 optimize: bool = True, memory_plan: bool = True, max_cached: int | None = None,
                 devices=None, dynamic: bool | str | None = None):
        if dynamic not in (None, True, False, "auto"):
            raise TypeError(f"tl.function: dynamic must be None, True, False or 'auto', got "
                            f"{dynamic!r}")
        self.fn = fn
        # True: every tensor argument's dims of size >= 2 are None (see _auto_specs);
        # "auto": static until a call differs from a traced one in shapes only, then True
        self.dynamic = dynamic if input_signature is None else None
        # "auto" once a call changed shapes: {tensor argument: axes that differed}, the
        # only dims made dynamic (None: dynamic=True's every dim of size 2 or more)
        self._dyn_axes: dict | None = None
        # one device name (or Device) is a list of one, as tl.graph.place takes it
        self.devices = (None if devices is None else [devices]
                        if isinstance(devices, str) or not hasattr(devices, "__iter__")
                        else list(devices))
        # None: 8, doubled (up to _AUTO_CACHED) when evicted signatures come back (_thrash)
        self._grow_cache = max_cached is None
        self.max_cached = 8 if max_cached is None else max_cached
        self._evicted: OrderedDict = OrderedDict()    # keys whose graphs the LRU dropped
        self._warned_thrash = False
        self.input_signature = (None if input_signature is None
                                else flat_specs(input_signature))
        self.max_retraces = max_retraces
        self.optimize = optimize
        self.memory_plan = memory_plan
        self._cache: OrderedDict[Any, list[_Entry]] = OrderedDict()   # least recent first
        self._lock = threading.RLock()
        self._tracing: int | None = None      # the thread tracing now, if any
        _LIVE.add(self)
        self._warned_eager = False
        self._warned_sizes = False
        self._warned_escape = False
        self._warned_rng = False
        self._warned_structure = False
        # None dims whose sizes change the traced graph (found by _probe): fixed per trace
        self._structural: set = set()
        self._structural_why = _STRUCTURAL    # with the user's line where one was found
        self.trace_count = 0
        # past this many traces a call that finds no graph runs eagerly instead of tracing
        # again (PyTorch's recompile limit): a step fed a new shape every call (graph
        # mini-batches of varying size) then costs eager time, not a trace per call
        self.eager_after = max(4 * max(self.max_cached, 1), max_retraces)
        self._warned_limit = False
        self.retrace_reasons: list[str] = []
        self._training = False      # a trace called backward(): sizes are per batch
        # optimizers a trace primed whose step it did not run: not primed again
        self._unprimed: set = set()
        # parameters whose None .grad a call fills with zeros before looking up its graph
        # (a trace proved that sound, see _GradWatch); None: not (yet) proved
        self._call_prime: list | None = None
        self._no_watched_prime = False      # a watched trace found a parameter unreached
        self._warned_subclass = False
        # attribute names a trace found set without being watched (see attrwatch): the
        # next traces watch them too
        self._attr_names: set = set()
        # the name and docstring only: merging a Module's (or any object's) __dict__ into
        # this one would overwrite fn, _cache... with the model's attributes of those names
        functools.update_wrapper(self, fn, updated=())
        for k, v in (getattr(fn, "__dict__", None) or {}).items():
            if isinstance(fn, types.FunctionType) and k not in self.__dict__:
                setattr(self, k, v)         # a plain function's own attributes, as before

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self.__call__, obj)

    def __repr__(self) -> str:
        sig = ("" if self.input_signature is None else
               f", input_signature=[{', '.join(map(repr, self.input_signature))}]")
        kept = sum(len(es) for es in self._cache.values())
        return (f"<tl.function {self._name}{sig}: traced {self.trace_count} time"
                f"{'s' if self.trace_count != 1 else ''}, {kept} graph"
                f"{'s' if kept != 1 else ''} kept>")

    @property
    def graphs(self) -> list[Graph]:
        """The graphs kept (see ``max_cached``), oldest trace first."""
        entries = [e for es in self._cache.values() for e in es]
        return [e.graph for e in sorted(entries, key=lambda e: e.trace_no)]

    def get_graph(self, *args, **kwargs) -> Graph:
        """The graph a call with these arguments runs.

        A graph already traced for them (whose guards hold now) is returned without running
        anything. Otherwise the function is traced, which runs it once: a graph that writes
        state (a training step's optimizer update, BatchNorm's running statistics) has then
        applied those writes, and a warning says so (for a training step, save
        ``fn.graphs[-1]`` or ``tl.save_graph(fn)`` after training instead).

        With None dims in ``input_signature``, a graph not yet checked at other sizes is
        checked first (for what you will save or export): the function is traced again with
        those dims doubled, as a later call at another size would; where that builds another
        graph, the returned graph's inputs keep the traced sizes (``graph.size_fixed``). The
        check runs only for calls with tensor arguments alone and graphs that write no state
        and draw no random numbers (it runs the function once more)."""
        key, tensors, _ = self._flatten(args, kwargs)
        key = _with_autocast(key)
        with self._lock:
            hit = self._lookup(key, tensors)
        if not isinstance(hit, _Entry):
            # a replay of a cached graph would run its writes too: only a miss calls
            before = self.trace_count
            self(*args, **kwargs)
            with self._lock:
                # (before the lookup, which drops an entry whose state was replaced)
                ran = max(self._cache.get(key) or [None], key=lambda e: e and e.trace_no)
                hit = self._lookup(key, tensors)
            # the graph this call traced, even where the state it left fits it no more (a
            # training step's writes set .grad)
            if self.trace_count > before and ran is not None and not isinstance(hit, _Entry):
                hit = ran
            if self.trace_count > before and isinstance(hit, _Entry) and hit.graph.assigns:
                warnings.warn(
                    f"tl.function {self._name}.get_graph: no graph was traced for these "
                    "arguments, so it traced one by running the function, and that graph "
                    f"writes state: this call applied its {len(hit.graph.assigns)} writes "
                    "(an optimizer step, BatchNorm running statistics) to the live tensors. "
                    "To save a training step, call it as usual and save fn.graphs[-1] (or "
                    "tl.save_graph(fn)).", UserWarning, stacklevel=2)
        if isinstance(hit, _Entry) and self._probe_sizes(hit, args, kwargs):
            with self._lock:
                again = self._lookup(key, tensors)
            hit = again if isinstance(again, _Entry) else hit
        if not isinstance(hit, _Entry):
            entries = self._cache.get(key)
            if not entries:
                raise CaptureError(f"tl.function {self._name}.get_graph: no graph fits these "
                                   f"arguments ({hit}); another thread may be tracing it")
            hit = entries[0]
        return hit.graph

    def _probe_sizes(self, e: _Entry, args, kwargs) -> bool:
        """For get_graph: call the function at doubled None dims (each tensor repeated along
        them) so ``_probe`` compares the graphs. Returns whether it ran."""
        from .._tensor import Tensor
        from ..autograd.mode import set_grad_enabled
        from ..ops.shape import concatenate
        g = e.graph
        if (e.verified or e.traced is None or e.sizes is not None or kwargs
                or not all(isinstance(a, Tensor) for a in args) or len(args) != len(g.inputs)
                or g.assigns or any(n.op == "random" for n in g.nodes)):
            return False
        free = [[a for a, d in enumerate(v.shape) if d is None] for v in g.inputs]
        if not any(free):
            return False
        bigger = []
        for t, axes in zip(args, free):
            for a in axes:
                t = concatenate([t, t], axis=a)
            bigger.append(t)
        # in the grad mode of the trace it compares with (an op's traced structure may depend
        # on it: scatter_reduce amax builds its tie-splitting gradient only with grad on);
        # called directly, since with grad on __call__ would run outputs needing grad eagerly
        key, tensors, objects = self._flatten(tuple(bigger), {})
        try:
            with set_grad_enabled(e.grad_mode):
                key = _with_autocast(key)       # (keyed by the trace's grad mode)
                with self._lock:
                    hit = self._lookup(key, tensors)
                if hit is not e:
                    return False
                self._probe(e, key, tuple(bigger), {}, tensors, objects)
        except Exception:       # noqa: BLE001 - sizes the function refuses: nothing to compare
            return False
        return True

    def __call__(self, *args, **kwargs):
        if state.tracer is not None:      # inside another capture: inline the Python
            return self.fn(*args, **kwargs)
        if state.fwd_ad is not None:
            # a dual level is active: a replay would skip forward AD's listener (the
            # arguments or the state the function reaches may carry tangents): run eagerly
            return self.fn(*args, **kwargs)
        # the cache is read and written under a lock, never held while user code runs: a
        # trace runs outside it, and while one thread traces, calls from other threads that
        # find no graph run the Python as it is (waiting could deadlock on user code that
        # waits for them); replays run outside it too
        key, tensors, objects = self._flatten(args, kwargs)
        if any(t._device.type == "vmap" for t in tensors):
            return self.fn(*args, **kwargs)     # tl.vmap(f) over a captured f: vmap's rules
        if any(type(t) is not Tensor and _subclass_active(type(t)) for t in tensors):
            # a user Tensor subclass: its __torch_function__ and result types are Python
            # behaviour a graph does not replay (as a graph break): run the function
            if not self._warned_subclass:
                self._warned_subclass = True
                sub = next(type(t) for t in tensors if type(t) is not Tensor).__name__
                warnings.warn(f"tl.function {self._name}: an argument is a Tensor subclass "
                              f"({sub}); the function runs eagerly (a graph would not replay "
                              "its __torch_function__ or keep its type)", stacklevel=2)
            return self.fn(*args, **kwargs)
        # a step that zeroes its gradients under a condition (gradient accumulation) starts
        # some calls without them: given zeros, as the trace was, those calls replay too
        zeroed = _prime_call(self._call_prime) if self._call_prime else ()
        primed = {id(p) for p, _, _ in zeroed}
        with self._lock:
            key = _with_autocast(key)
            hit = self._lookup(key, tensors, primed)
            if (self.dynamic == "auto" or self._dyn_axes is not None) and \
                    not isinstance(hit, _Entry) and hit is not None:
                # PyTorch's automatic dynamic shapes: a call that differs from a traced one
                # in tensor shapes alone marks the dims that differ dynamic from then on
                # (edge_index's leading 2 stays fixed: only its E varies)
                raw = _with_autocast(flatten(args, kwargs, self.input_signature)[0])
                dyn = _dynamic_key(raw)
                axes = {k: set(v) for k, v in (self._dyn_axes or {}).items()}
                for k in self._cache:
                    if _dynamic_key(k) == dyn:
                        for i, a in _changed_axes(k, raw):
                            axes.setdefault(i, set()).add(a)
                if axes != (self._dyn_axes or {}):
                    self.dynamic = True
                    self._dyn_axes = axes
                    self._warned_sizes = True   # the user gave no None dims to warn about
                    key = _masked_key(raw, axes)
                    hit = self._lookup(key, tensors, primed)
            busy = not isinstance(hit, _Entry) and self._tracing is not None
            if not isinstance(hit, _Entry) and not busy:
                self._tracing = threading.get_ident()
        if zeroed and (busy or not isinstance(hit, _Entry) or hit.outside
                       or hit.grad_outputs and state.grad_enabled):
            _unprime_call(zeroed)       # eager and tracing start from the state as it was
            zeroed = ()
        if busy:
            return self.fn(*args, **kwargs)
        if not isinstance(hit, _Entry):
            try:
                if self.trace_count >= self.eager_after:
                    return self._past_limit(args, kwargs, hit)
                overlap = overlap_writes(key, self._cache)
                if overlap:
                    return eager_for_overlap(self, overlap, args, kwargs)
                return self._trace(key, args, kwargs, tensors, objects, hit)
            finally:
                self._tracing = None
        if hit.grad_outputs and state.grad_enabled:
            return self._eager(args, kwargs)
        if hit.outside is not None:
            return self.fn(*args, **kwargs)     # (warned when traced)
        if not hit.verified and hit.traced is not None and \
                tuple(tuple(t._data.shape) for t in tensors) != hit.traced:
            _unprime_call(zeroed)
            probe = self._probe(hit, key, args, kwargs, tensors, objects)
            if probe is not None:
                return probe
            zeroed = _prime_call(self._call_prime) if self._call_prime else ()
            if _grad_state_miss(hit, {id(p) for p, _, _ in zeroed}) is not None:
                _unprime_call(zeroed)       # the probe's trace left another .grad state
                return self.fn(*args, **kwargs)
        if not zeroed:
            return hit.run(tensors)
        try:
            return hit.run(tensors)
        finally:
            _unprime_call(zeroed, hit.dead)

    def _flatten(self, args, kwargs):
        key, tensors, objects = flatten(args, kwargs, self.input_signature)
        if self.dynamic is True:
            key = (_dynamic_key(key) if self._dyn_axes is None
                   else _masked_key(key, self._dyn_axes))
        return key, tensors, objects

    def _specs(self, tensors) -> list | None:
        """The input signature a trace uses: the given one, or with ``dynamic=True`` one
        with every dim None except sizes 0 and 1 (PyTorch's 0/1 specialisation: broadcasting
        decides on them)."""
        if self.dynamic is not True:
            return self.input_signature
        if self._dyn_axes is not None:      # "auto": the dims that differed between calls
            return [TensorSpec(tuple(None if d > 1 and a in self._dyn_axes.get(i, ()) else d
                                     for a, d in enumerate(t.shape)), t.dtype)
                    for i, t in enumerate(tensors)]
        return [TensorSpec(tuple(None if d > 1 else d for d in t.shape), t.dtype)
                for t in tensors]

    def _probe(self, e: _Entry, key, args, kwargs, tensors, objects):
        """The first call at other sizes of a graph's None dims traces again and compares
        the two graphs: a Python loop over a size (``range(x.shape[1])``) or any number
        computed from one builds another graph, which the replay would get wrong. The same
        graph: it is verified for every size. Another: the dims that differ are traced per
        size from now on. Returns the traced call's outputs, or None when another thread
        traces (the call replays, unverified, as before)."""
        with self._lock:
            if self._tracing is not None:
                return None
            self._tracing = threading.get_ident()
        try:
            lines: dict = {}
            out = self._trace(key, args, kwargs, tensors, objects, None, count=False,
                              lines=lines)
        finally:
            self._tracing = None
        with self._lock:
            fresh = self._cache[key][0]
            now = tuple(tuple(t._data.shape) for t in tensors)
            before, after = _fingerprint(e.graph), _fingerprint(fresh.graph)
            if after == before:
                e.verified = True
                self._cache[key].remove(fresh)
                return out
            dims = {(i, a) for i, (s0, s1) in enumerate(zip(e.traced, now))
                    for a, (d0, d1) in enumerate(zip(s0, s1)) if d0 != d1}
            self._structural |= dims
            where = _diverges_at(fresh.graph, before, after, lines)
            self._structural_why = _STRUCTURAL + (f" at {where}" if where else "")
            for entry, shape in ((e, e.traced), (fresh, now)):
                _fix_entry(entry, {(i, a): shape[i][a] for i, a in dims},
                           self._structural_why)
            self.trace_count += 1
            if not self._warned_structure:
                self._warned_structure = True
                warnings.warn(
                    f"tl.function {self._name}: traced again at other sizes of "
                    f"{_dims_words(dims)}, it built another graph (a Python loop over a size, "
                    f"or a number computed from one){f' at {where}' if where else ''}, so it "
                    "is traced once per size there; "
                    "the other None dims stay dynamic.", stacklevel=3)
        return out

    def _thrash(self, key) -> None:
        """A signature whose graph the LRU evicted is traced again: more distinct calls
        cycle than ``max_cached`` holds (batch shapes), so each would retrace. Left to its
        default, the cache doubles (up to ``_AUTO_CACHED`` graphs, and while the graphs kept
        hold under ``_AUTO_CACHE_BYTES`` of constants); either way it warns once."""
        del self._evicted[key]
        grew = False
        if self._grow_cache and self.max_cached < _AUTO_CACHED:
            held = sum(_constant_bytes(e.graph) for es in self._cache.values() for e in es)
            if held * 2 <= _AUTO_CACHE_BYTES:
                self.max_cached = min(2 * self.max_cached, _AUTO_CACHED)
                self.eager_after = max(self.eager_after, 4 * self.max_cached)
                grew = True
                self._evicted.clear()       # they fit now: only a full cache grows again
        if self._warned_thrash:
            return
        self._warned_thrash = True
        what = (f"so the cache grows to {self.max_cached} graphs (automatically, up to "
                f"{_AUTO_CACHED})" if grew else
                f"and max_cached={self.max_cached} keeps fewer graphs than the calls cycle "
                "through, so each of them traces again")
        warnings.warn(
            f"tl.function {self._name}: a call needed a graph the cache had evicted (more "
            f"distinct input shapes or arguments cycle than it keeps), {what}. Pass "
            "max_cached= with the number of distinct calls, use None dims "
            "(input_signature or dynamic=True) where the graph can follow the size, or pad "
            "inputs to a few sizes.", stacklevel=4)

    def _drop_guards(self, guards) -> None:
        """An argument object of these guards' entry died: drop the entry (a weakref
        callback: it may run in any thread, so it waits for no lock another may hold)."""
        if not self._lock.acquire(blocking=False):
            return      # the entry's check fails (its root is gone): evicted then
        try:
            for key, entries in list(self._cache.items()):
                keep = [e for e in entries if e.guards is not guards]
                if len(keep) != len(entries):
                    if keep:
                        self._cache[key] = keep
                    else:
                        del self._cache[key]
        finally:
            self._lock.release()

    def _lookup(self, key, tensors, primed=frozenset()):
        """The cached entry this call replays, or why none fits (None: nothing cached).
        ``primed``: ids of the parameters this call gave zero gradients (None before)."""
        entries = self._cache.get(key)
        if not entries:
            return _key_reason(key, list(self._cache)) if self._cache else None
        reason = None
        shapes = None
        for e in list(entries):
            # the shape checks first: O(1) against the guard's walk over the state, and
            # a per-shape cache holds one entry per length to pass over
            why = None
            if e.sizes is not None:
                shapes = shapes or tuple(tuple(t.shape) for t in tensors)
                if shapes != e.sizes:
                    why = (f"the captured training step was traced for input shapes "
                           f"{e.sizes}, not {shapes}")
            if why is None and e.fixed:
                why = _fixed_mismatch(e, tensors)
            if why is None and e.predicates:
                why = _predicate_miss(e, tensors)
            if why is None and (e.dead or e.held):
                why = _grad_state_miss(e, primed)
            if why is None and e.grad_state:
                why = _arg_grad_miss(e, tensors)
            if why is None:
                why = e.check()
                if why is not None and getattr(e.guards, "stale", False):
                    # its state was replaced: its graph's bindings would keep the old
                    # objects (weights, tables) alive for as long as it stayed cached
                    entries.remove(e)
            # the most recently used graph's reason: the one closest to this call
            reason = reason or why
            if why is None:
                if entries[0] is not e:     # most recently used first: checked first
                    entries.remove(e)
                    entries.insert(0, e)
                self._cache.move_to_end(key)
                return e
        if not entries:
            del self._cache[key]
        return reason

    @property
    def _name(self) -> str:
        return getattr(self.fn, "__name__", type(self.fn).__name__)

    def _past_limit(self, args, kwargs, reason):
        if not self._warned_limit:
            self._warned_limit = True
            warnings.warn(
                f"tl.function {self._name}: traced {self.trace_count} times (eager_after="
                f"{self.eager_after}); calls that fit no kept graph now run eagerly (the "
                f"graphs kept still replay). The last miss: {reason}. "
                + (_hyper_advice(reason) or (
                    "A training step's graph holds its batch's sizes: pad batches to a few "
                    "sizes so their graphs are reused." if self._training else
                    "Use input_signature with None dims for varying sizes.")), stacklevel=3)
        return self.fn(*args, **kwargs)

    def _eager(self, args, kwargs):
        """A call whose outputs need gradients: a replayed graph's outputs have no autograd
        history (the graph is not differentiable from outside), so run the Python."""
        if not self._warned_eager:
            self._warned_eager = True
            warnings.warn(
                f"tl.function {self._name}: its outputs depend on tensors that require grad "
                "and gradients are enabled, so it runs eagerly (a replayed graph's outputs "
                "cannot be differentiated). Capture the whole training step, backward() and "
                "optimizer step included, or call it under `with tl.no_grad():` for inference.",
                stacklevel=3)
        return self.fn(*args, **kwargs)

    def _trace(self, key, args, kwargs, tensors, objects, reason, count: bool = True,
               lines: dict | None = None):
        self.trace_count += count
        if reason is not None:
            self.retrace_reasons.append(reason)
            # a size the graph fixed was warned about once (traced once per input shape)
            per_shape = isinstance(reason, _PerShape)
            # per-shape retraces were warned about once; more shapes than the cache holds
            # retrace on every call, and that is worth a warning too
            if self.trace_count > self.max_retraces and (
                    not per_shape or self.trace_count > 2 * self.max_cached):
                sizes = ("a training step's graph holds its batch's sizes (in its gradients), "
                         "even with None dims: pad batches to a few sizes (bucketing) so their "
                         "graphs are reused, or raise max_cached" if self._training else
                         "use input_signature with None dims for varying sizes")
                hyper = _hyper_advice(reason)
                advice = hyper if hyper is not None else (
                    f"pass values that change as tensors, {sizes}, and keep state in "
                    "tensors updated in place.")
                warnings.warn(
                    f"tl.function {self._name}: traced {self.trace_count} times; this time "
                    f"because {reason}. Each trace runs the Python again and builds a new "
                    f"graph: {advice}", stacklevel=3)
        flags = _step_flags(self.fn, objects)
        # the gradients set before the step (and priming): those it leaves as they were
        # were reached by no backward, and the optimizer steps them with what they hold
        held = [(p, p.grad) for opt in _optimizers(self.fn, objects).values()
                for group in opt.param_groups for p in group["params"]
                if p.grad is not None] if "backward" in flags else []
        primed = _prime_optimizers(self.fn, objects, self._unprimed)
        zeroed, watched = _prime_grads(self.fn, objects,
                                       watch=not self._no_watched_prime and flags)
        try:
            guards = Guards(self.fn, objects)
        except LazyStateError:
            # a lazy module's parameters have no shape before its first forward: this call
            # runs eagerly and materialises them, the next one traces (as a warm-up call)
            self.trace_count -= count
            _unprime_grads(zeroed)
            return self.fn(*args, **kwargs)
        # installed after the guards' snapshot: the wrappers it sets are no state of fn's
        watch = _GradWatch(self.fn, objects, zeroed) if watched else None
        g = Graph(getattr(self.fn, "__name__", "function"))
        if lines is not None:
            # a probe (see _probe): each node's user line, to name where two traces part
            g.add_node = functools.partial(_add_node_at, g.add_node, lines)
        # save_graph(graph) names its state after this function's module and optimizers
        g._function = weakref.ref(self)
        tracer = Tracer(g, reachable=guards.tensors)
        g._tracer = tracer
        if watch is not None:
            watch.tracer = tracer
        # the attributes the code may set on the objects the guards walked: one that it
        # sets before reading is an output of the graph (see attrwatch)
        owners, guards.owners = guards.owners or [], None
        stored = set(self._attr_names)
        for c in _codes(self.fn, objects):
            stored |= code_stores(c)
        # (a sparse argument's indices and values: nnz a None dim, see signature.flatten)
        specs = sparse_specs(key, self._specs(tensors), tensors, self.dynamic is True)
        names = _input_names(self.fn, args, kwargs, len(tensors))
        grad_state = _arg_grad_states(tensors)
        tracer.arg_grads = True
        for k, t in enumerate(tensors):
            tracer.add_input(t, name=(specs[k].name if specs and specs[k].name else names[k]),
                             shape=specs[k].shape if specs else None)
        gens = _numpy_generators(self.fn, args)
        rngs = _host_rng_states(gens)
        traced_with_grad = state.grad_enabled
        attrs = AttrWatch(owners, stored) if owners else None
        del owners
        call_args, call_kwargs = build_sparse(args, kwargs)
        state.tracer = tracer
        try:
            out = self.fn(*call_args, **call_kwargs)
        finally:
            state.tracer = None
            if attrs is not None:
                attrs.close()
            g.__dict__.pop("add_node", None)
            if primed and not {"step", "backward"} <= flags:
                # (a training step whose step() is under a condition keeps the state its
                # first step() makes: another call steps, and would find it changed)
                _unprime_unstepped(primed, self._unprimed)
            if watch is not None:
                watch.close()
                sound = watch.sound()
                # parameters the backward did not reach whose primed gradient the step only
                # wrote (zero_grad(set_to_none=False) zeroing it), never read: no value
                # depends on it, so calls are given zeros too and take them back after the
                # replay (eager leaves those None), rather than a second trace without them
                dead = [p for p, _ in zeroed if watch.untouched(p)]
                if not sound and _only_written(g, tracer, dead):
                    sound = True
                else:
                    dead = []
                _unprime_grads([(p, watch.current(p)) for p, _ in zeroed], tracer.grad_leaves)
            else:
                _unprime_grads(zeroed, tracer.grad_leaves)
        if watch is None and _drops_grads_first(self.fn, objects):
            # the step drops every gradient unread before its backward, so each ends written
            # (a new one, or None for a parameter the loss does not reach): whether a call
            # starts with it set is no input. Guarded, a parameter the loss never reaches
            # (primed here, None after) would find "set" guarded and trace on every call
            guards.ignore_grad(_rewritten_grads(self.fn, objects, tracer))
        if watch is not None:
            if sound:
                known = {id(p) for p in self._call_prime or ()}
                self._call_prime = (self._call_prime or []) + \
                    [p for p, _ in zeroed if id(p) not in known]
            else:
                # a parameter the backward did not reach: eager leaves its .grad None, so
                # calls cannot be given zeros; later traces start from the state as it is
                self._no_watched_prime = True
                self._call_prime = None
        if not self._warned_rng and _host_rng_states(gens) != rngs:
            self._warned_rng = True
            warnings.warn(
                f"tl.function {self._name}: the Python code drew from Python's `random` or a "
                "NumPy generator (the global one, or a np.random.Generator / RandomState it "
                "holds) while tracing; the graph keeps those draws as they came out, and "
                "every replay reuses them (a replay-buffer minibatch, a teacher-forcing coin "
                "flip, a random crop). Draw with tensorlib (tl.randint, tl.randperm, "
                "tl.rand(()) < p, tl.bernoulli) to draw anew on each replay, or draw outside "
                "and pass the value as an argument.",
                stacklevel=3)
        me = weakref.ref(self)
        guards.on_dead = lambda gd: (f := me()) is not None and f._drop_guards(gd)
        if guards.recomputed:
            guards.pin_read({id(b[0]) for b in g.bindings.values() if isinstance(b, tuple)})
        out_tensors: list = []
        finish_reseeds(tracer, g)
        template = _template(out, out_tensors, tracer, f"tl.function {self._name}")
        fetches = [tracer.value_of(t) for t in out_tensors]
        n_user = len(fetches)
        side = _side_outputs(attrs, guards, tracer, out_tensors, fetches)
        if attrs is not None:
            self._attr_names |= attrs.unwatched_changes()
        tracer.finish()
        # size comparisons the Python made (assert t <= 8): the graph fits the calls where
        # each comes out as traced; others trace again (see _predicate_miss)
        g.size_predicates = list(tracer.predicates)
        g.size_predicate_sources = dict(tracer.predicate_sources)
        _name_state(g, self)
        specialized = bool(tracer.size_escapes) and _specialize(g, tracer)
        out_kinds = []
        first = []
        for t, v in zip(out_tensors, fetches):
            loc = tracer.locations.get(id(t._data))
            if loc is not None and loc[0] != "input" and tracer._is_fresh(tracer.loc_objs[loc][0]):
                loc = None      # a tensor the function made: each call returns a new one
            if loc is not None and loc[0] == "input":
                # (past the arguments: an argument's .grad, an extra input, added into in place)
                out_kinds.append(("input", loc[1], t._device))
                first.append(tracer.placeholders[loc[1]])
            elif loc is not None:
                owner, slot = tracer.loc_objs[loc]
                out_kinds.append((slot, owner, t._device))
                first.append(owner if slot == "data" else owner.grad)
            else:
                kind = "copy" if v.node.op == "constant" else "new"
                out_kinds.append((kind, None, t._device))
                first.append(t.detach() if t._node is not None or t._rg else t)
        grad_sets, _ = _grad_fetches(tracer, out_tensors, out_kinds, first, fetches)
        g.outputs = fetches
        # the nested structure the function returned (a graph file stores it, see export.py)
        g._output_template = template
        if (template[0] == "D" and all(isinstance(k, str) and v[0] == "T" for k, v in template[1])
                and len({v[1] for _, v in template[1]}) == len(template[1])):
            g.output_names = [k for k, _ in sorted(template[1], key=lambda kv: kv[1][1])]
            g.output_structure = "dict"
        if specs and any(d is None for s in specs for d in s.shape) or specialized:
            try:
                g.infer_shapes()
            except ValueError as e:
                if self.dynamic is not True:
                    raise
                # dims marked dynamic by tl.compile(dynamic=True) that an op's shape rule
                # cannot follow: this graph keeps the traced sizes (looked up per size)
                free = {(i, a): int(t._data.shape[a]) for i, (t, v) in
                        enumerate(zip(tensors, g.inputs)) for a, d in enumerate(v.shape)
                        if d is None}
                why = f"shape inference cannot follow the dynamic dims ({e})"
                _fix_dims(g, free, why)
                if not tracer.size_escapes:
                    tracer.size_escapes.append(why)
                tracer.loop_escapes_only = False
                specialized = True
                g.infer_shapes()
        # what eager handed out as its own memory must stay so after the passes (x * 1.0
        # simplified to x, two equal results merged by CSE): those results are copied
        fresh = [k[0] == "new" and not shared
                 for k, shared in zip(out_kinds, shared_results(fetches))]
        if self.optimize:
            from .passes import optimize
            optimize(g)
        _own_grad_writes(g)
        shared_out = shared_results(g.outputs)
        for i, shared in enumerate(shared_out[:len(fresh)]):
            if fresh[i] and shared:
                out_kinds[i] = ("copy", None, out_kinds[i][2])
        devices = self.devices
        if devices is None and any(n.pin for n in g.nodes):
            # `with tl.device(...)` in fn pins ops: honour them as the eager code would
            devices = list(dict.fromkeys([n.device for n in g.nodes] +
                                         [n.pin for n in g.nodes if n.pin]))
        if devices is not None:
            from .placement import place
            place(g, devices)
        plan = make_plan(g, g.outputs, g.assigns, memory=self.memory_plan)
        g._plans[(tuple(v.id for v in g.outputs), tuple(n.id for n in g.assigns))] = plan
        # the attributes' values are outputs of the plan, not of the graph (an export
        # or a saved graph gives what the function returned)
        g.side_outputs = g.outputs[n_user:]
        g.outputs = g.outputs[:n_user]
        entry = _Entry(g, plan, template, guards, tracer.constants, out_kinds)
        entry.rebinds = tracer.rebinds
        _note_arg_grads(self, entry, tracer, tensors, grad_state, grad_sets, shared_out)
        entry.side = tuple((owner_ref(o), n, tpl) for o, n, tpl in side)
        guards.not_inputs([(o, n) for o, n, _ in side])
        if watch is not None and sound:
            entry.dead = tuple(weakref.ref(p) for p in dead)
        if tracer.backward_runs:
            entry.held = tuple(weakref.ref(p) for p, gr in held
                               if p.grad is gr and id(p) not in tracer.grad_leaves)
        entry.trace_no = self.trace_count
        entry.grad_mode = traced_with_grad
        self._training = self._training or bool(tracer.backward_runs)
        if (tracer.backward_runs or entry.grad_in or entry.grad_sets) and specs and \
                any(d is None for sp in specs for d in sp.shape):
            entry.sizes = tuple(tuple(t.shape) for t in tensors)
            if not self._warned_sizes:
                self._warned_sizes = True
                warnings.warn(
                    f"tl.function {self._name}: a training step (it calls backward()) is "
                    "traced once per input shape even with None dims in input_signature: its "
                    "gradients hold sizes taken from the batch. None dims serve inference "
                    "graphs.", stacklevel=3)
        if specialized:
            entry.fixed = dict(g.size_fixed)
            entry.fixed_why = tracer.size_escapes[0]
            # dims dynamic=True made dynamic, not the user, that constant indices read at
            # each position (edge_index's 2 rows, ei[0] and ei[1]) are fixed without a word
            if self.dynamic is True and self._dyn_axes is None and tracer.loop_escapes_only:
                pass
            elif not self._warned_escape:
                self._warned_escape = True
                free = [(i, a) for i, v in enumerate(g.inputs) for a, d in enumerate(v.shape)
                        if d is None]
                keep = (f"; its other None dims ({_dims_words(free)}) stay dynamic"
                        if free else "")
                warnings.warn(
                    f"tl.function {self._name}: {tracer.size_escapes[0]}; the graph cannot "
                    "recompute it for other sizes, so it is traced once per input shape "
                    f"along {_dims_words(g.size_fixed)} even with None dims in "
                    f"input_signature{keep}.{_escape_help(tracer)}", stacklevel=3)
        # a training step (backward() into .grad, or tl.grad and updates of variables: a
        # TF1 minimize, a hand-written SGD) returns values; a function that only takes
        # tl.grad (a PINN's residual) gives outputs with a history, as plain forwards
        steps = any(r.accumulates for r in tracer.backward_runs) or bool(
            tracer.backward_runs and g.assigns)
        made = [(t, v) for t, v, k in zip(out_tensors, fetches, out_kinds)
                if k[0] in ("new", "copy")]
        # outputs eager gave no history with gradients on (behind detach(), or tl.grad
        # without create_graph) need none on a replay either, whatever they were made from
        cut_off = traced_with_grad and not any(t._rg for t, _ in made)
        entry.grad_outputs = (not steps and not cut_off
                              and _needs_grad(g, tensors, [v for _, v in made]))
        if specs and any(d is None for s in specs for d in s.shape):
            entry.shapes_ok = {tuple(t.shape for t in tensors)}
            if entry.sizes is None:     # (a training step is traced per shape anyway)
                entry.traced = tuple(tuple(t._data.shape) for t in tensors)
                if self._structural:
                    _fix_entry(entry, {(i, a): entry.traced[i][a]
                                       for i, a in self._structural}, self._structural_why)
        g._tracer = None
        tracer.release()
        with self._lock:
            if key in self._evicted:
                self._thrash(key)
            entries = self._cache.setdefault(key, [])
            entries.insert(0, entry)
            self._cache.move_to_end(key)
            # a Python value that changes every call (a per-step learning rate, a scalar
            # argument) would otherwise keep one graph per call alive: keep the few most
            # recently used (the least recently used signature loses its oldest graph first)
            total = sum(len(es) for es in self._cache.values())
            while total > max(self.max_cached, 1):
                old_key, old = next(iter(self._cache.items()))
                old.pop()
                if not old:
                    del self._cache[old_key]
                    self._evicted[old_key] = None
                    while len(self._evicted) > 4 * _AUTO_CACHED:
                        self._evicted.popitem(last=False)
                total -= 1
        if entry.grad_outputs and state.grad_enabled:
            return out          # the traced run's own results, with their autograd history
        return rebuild(template, first)


def _grad_fetches(tracer, out_tensors, out_kinds, first, fetches) -> tuple[list, int]:
    """The .grad values a replay sets, appended to ``fetches`` (plan outputs after the
    side outputs): each argument's whose .grad the call replaced (backward() into it, or
    ``x.grad = ...``), and each returned tensor's that the call made with a .grad
    (retain_grad()), which the traced call's own result (a detached copy) gets too.
    Returns ``([(target, fetch position or None)], number of fetches before them)``."""
    n0 = len(fetches)
    sets = []
    for i, v in tracer.arg_grad_writes:
        sets.append((("in", i), None if v is None else len(fetches)))
        if v is not None:
            fetches.append(v)
    for k, (t, kind) in enumerate(zip(out_tensors, out_kinds)):
        if kind[0] not in ("new", "copy") or not (t.retains_grad or t._node is None) \
                or t.grad is None:
            continue
        sets.append((("out", k), len(fetches)))
        fetches.append(tracer.value_of(t.grad))
        if first[k] is not t:
            first[k].grad = t.grad.detach()
    return sets, n0


def _note_arg_grads(f, entry, tracer, tensors, grad_state, grad_sets, shared) -> None:
    """The per-call autograd state of ``entry``'s arguments (see _Entry): its guard, the
    .grad inputs and outputs, the hooks to register again; a backward() that reached
    leaves outside the graph makes its calls run eagerly."""
    entry.grad_state = grad_state
    entry.grad_in = tuple(sorted(tracer.grad_inputs, key=tracer.grad_inputs.get))
    entry.grad_sets = tuple((tgt, pos, pos is not None and shared[pos])
                            for tgt, pos in grad_sets)
    hooks = []
    for i, st in grad_state:
        t = tensors[i]
        if st != "history" and t._hooks:
            new = [h for h in t._hooks if not any(h is o for o in st[1])]
            if new:
                hooks.append((i, tuple(new)))
    entry.arg_hooks = tuple(hooks)
    if tracer.outside_leaves:
        shapes = ", ".join(str(tuple(t.shape)) for t in tracer.outside_leaves[:3])
        entry.outside = (
            f"tl.function {f._name}: backward() reached tensors the function does not read "
            f"(shapes {shapes}) through the autograd history of an argument made outside "
            "it (a view or result of a tensor that requires grad); a graph cannot replay "
            "that part of the backward, so such calls run eagerly. Pass the leaf tensor "
            "and take the view inside the function, or detach() the argument.")
        warnings.warn(entry.outside, stacklevel=4)


def _name_state(g: Graph, function) -> None:
    """Name the variables and the writes to them after the state_dict keys of the Module the
    function runs (``bn1.running_mean``, not the trace's ``v3``), so errors about the graph
    (an ONNX export of a training-mode graph) name what the user knows."""
    import re

    from ..export import _owning_module, state_names
    # only what the trace could not name (v3); a closure's own path (m.0.weight) says more
    unnamed = [n for n in g.bindings if n.op in ("variable", "assign")
               and (n.name is None or re.fullmatch(r"v\d+(\.grad)?", n.name))]
    if not unnamed:
        return
    model = _owning_module(function)
    # (the model's state only: optimizer moments stay last in such messages, unnamed)
    names = state_names(model) if model is not None else {}
    if not names:
        return
    # a variable and the assigns to it must keep one name (fusion and DCE match them by it)
    for n in unnamed:
        b = g.bindings[n]
        if not isinstance(b, tuple):
            continue
        t, slot = b
        k = names.get(id(t)) or names.get(id(getattr(t, "_data", None)))
        if k is None:
            continue
        k = k if slot == "data" else f"{k}.grad"
        n.name = k
        if n.op == "variable":
            n.outputs[0].name = k
        else:
            n.attrs["var"] = k


def _input_names(fn, args, kwargs, n: int) -> list[str]:
    """The graph's input names: the Python parameter names of tensor arguments passed
    directly (``def f(x, mask)`` -> ``x``, ``mask``); ``arg0``, ``arg1``... for all of them
    when some tensor sits in a list/dict argument or a name is not a plain identifier."""
    import inspect
    import keyword

    from .._tensor import Tensor
    fallback = [f"arg{k}" for k in range(n)]
    from ..nn import Module
    if isinstance(fn, Module):
        # Module.__call__ takes (*args, **kwargs): the names are forward's, as for m.forward
        fn = fn.forward
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):     # a builtin or a C callable: no names to take
        return fallback
    pos = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    out = [pos[i] if i < len(pos) else "" for i, a in enumerate(args) if isinstance(a, Tensor)]
    out += [k for k, v in sorted(kwargs.items()) if isinstance(v, Tensor)]
    if (len(out) != n or len(set(out)) != n
            or not all(k.isidentifier() and not keyword.iskeyword(k) for k in out)
            or any(k != f"arg{i}" and k.startswith("arg") and k[3:].isdigit()
                   for i, k in enumerate(out))):
        return fallback
    return out


_HYPER_PATH = re.compile(r"\.param_groups\[\d+\]\['(\w+)'\]")


def _hyper_advice(reason) -> str | None:
    """What to do when a retrace's reason is an optimizer hyper-parameter that changed (an
    lr scheduler stepped outside the captured step); None for any other reason."""
    m = _HYPER_PATH.search(str(reason or ""))
    if m is None:
        return None
    key = m.group(1)
    tensor_ok = key in ("lr", "momentum", "betas")
    if tensor_ok and "('T'," in str(reason):
        # a tensor hyper-parameter replaced by another tensor: the graph is bound to the old
        return (f"param_groups[...]['{key}'] is another tensor object now; the graph reads the "
                "tensor it was traced with, so change its value in place "
                f"(group['{key}'].fill_(value), as tensorlib's schedulers do) instead of "
                "assigning a new tensor or number.")
    if tensor_ok:
        # a Python number is a constant of the graph; a 0-d tensor is graph state that
        # tensorlib's schedulers update in place (and they make momentum/betas[0] tensors
        # when lr is one), so its new value is read on every replay
        return (f"a Python number in param_groups[...]['{key}'] is a constant of the graph, so "
                "each new value (an lr scheduler's step) traces again. Construct the "
                "optimizer with a 0-d tensor learning rate, e.g. "
                "tl.optim.Adam(params, lr=tl.tensor(1e-3)) (dtype=tl.float64 for float64 "
                "parameters), instead of lr=1e-3: schedulers then update it in place (and "
                "the momentum or betas they cycle with it) and the graph reads the current "
                "value on every replay; set it by hand with group['lr'].fill_(value).")
    return (f"param_groups[...]['{key}'] is read as a Python number while tracing, so it is a "
            "constant of the graph: keep it fixed between calls of the captured step (only "
            "lr, momentum and betas can be 0-d tensors that change in place).")


class _PerShape(str):
    """A retrace reason: a call's size differs from one the graph fixed (already warned)."""


def _fixed_mismatch(e: _Entry, tensors) -> str | None:
    for (i, a), n in e.fixed.items():
        got = tensors[i]._data.shape[a]
        if got != n:
            return _PerShape(
                f"input {i} axis {a} is {got}, but the graph keeps the {n} it was traced "
                f"with, because {e.fixed_why}")
    return None


# the cache a default max_cached grows to when evicted graphs are needed again, and the
# constants (copies the graphs own) the kept graphs may hold for it to grow
_AUTO_CACHED = 64
_AUTO_CACHE_BYTES = 256 << 20


def _constant_bytes(g: Graph) -> int:
    return sum(getattr(n.attrs.get("value"), "nbytes", 0) for n in g.nodes
               if n.op == "constant")


def _predicate_miss(e: _Entry, tensors) -> str | None:
    """Why ``e``'s graph does not fit these inputs: a size comparison its Python made while
    tracing (``if x.shape[0] > 3``) comes out otherwise for them, so the code may take
    another branch (a new trace, kept next to this graph); None when all agree."""
    from .sizes import PREDICATE_HELP, graph_predicate_miss
    why = graph_predicate_miss(e.graph, [tuple(t._data.shape) for t in tensors])
    return None if why is None else _PerShape(f"{why}; {PREDICATE_HELP}")


def _dims_words(dims) -> str:
    return ", ".join(f"input {i} axis {a}" for i, a in sorted(dims))


def _fixed_words(fixed: dict) -> str:
    return ", ".join(f"input {i} axis {a} = {n}" for (i, a), n in sorted(fixed.items()))


def _escape_help(tracer) -> str:
    """The generic advice, unless the library explained the escape itself (an RNN's loop
    over time steps has no tensor-op rewrite)."""
    return "" if 0 in tracer.reasoned else " " + _ESCAPE_HELP


_ESCAPE_HELP = ("Sizes used directly in reshape/view/expand/broadcast_to/zeros/ones/full/"
                "new_zeros/arange, with + - * // % between them and ints, are computed when "
                "the graph runs; for a number in tensor math use tensor ops (x.mean() rather "
                "than x.sum() / x.shape[0]).")


def _specialize(g: Graph, tracer) -> bool:
    """A traced size became a plain Python number (``tracer.size_escapes``): the graph holds
    values of the traced size, so the input dims that size follows take their traced values
    (other sizes are refused or retraced, never run wrong; save_graph and ONNX export write
    them fixed). The other None dims stay dynamic: an LSTM that loops over the traced time
    steps still takes any batch size. Sets ``g.size_fixed`` ``{(input, axis): size}``.
    Returns whether any input dim was fixed."""
    free = [(i, a) for i, v in enumerate(g.inputs) for a, d in enumerate(v.shape) if d is None]
    if not free:
        return False
    fixed = _escaped_input_dims(g, tracer, free)
    return _fix_dims(g, {(i, a): int(tracer.placeholders[i]._data.shape[a])
                         for i, a in sorted(fixed)}, tracer.size_escapes[0])


def _fix_dims(g: Graph, sizes: dict, why: str) -> bool:
    """Give the graph's input dims ``{(input, axis): size}`` those sizes (they were None),
    note them in ``g.size_fixed`` and ``why`` in ``g.size_specialized`` (read by ONNX
    export); returns whether any dim was None."""
    changed = {}
    for (i, a), n in sizes.items():
        v = g.inputs[i]
        if v.shape[a] is None:
            shape = list(v.shape)
            shape[a] = int(n)
            v.shape = tuple(shape)
            changed[(i, a)] = int(n)
    if changed:
        g.size_fixed = dict(sorted({**g.size_fixed, **changed}.items()))
        g.size_specialized = g.size_specialized or (
            f"{why}; the graph keeps {_fixed_words(g.size_fixed)} (export with a fixed size "
            f"there: leave {_dims_words(g.size_fixed)} out of the dynamic axes)")
    return bool(changed)


def _fix_entry(entry, sizes: dict, why: str = "") -> None:
    """A graph that another size would trace differently: ``entry`` is looked up only at
    these sizes ``{(input, axis): size}``, and its graph's inputs say so."""
    entry.fixed.update(sizes)
    entry.fixed_why = entry.fixed_why or why or _STRUCTURAL
    _fix_dims(entry.graph, sizes, why or _STRUCTURAL)


def _escaped_input_dims(g: Graph, tracer, free) -> set:
    """The None input dims ``(input, axis)`` that the escaped sizes were computed from: for
    each, the shapes are inferred with only that dim unknown; an escaped size whose dim
    comes out unknown depends on it. Where that cannot be told (an alias the trace lost, an
    op without ``infer``), every None dim is fixed, as before."""
    leaves = {(v.id if v is not None else None, axis)
              for dims in tracer.escaped_dims for v, axis in dims}
    if not leaves or any(vid is None for vid, _ in leaves):
        return set(free)
    pos = {v.id: i for i, v in enumerate(g.inputs)}
    out = set()
    rest = set()
    for vid, axis in leaves:        # read straight from an input: that dim
        if vid in pos:
            out.add((pos[vid], axis))
        else:
            rest.add((vid, axis))
    if not rest:
        return out
    from ..ops.registry import REGISTRY
    want = {vid for vid, _ in rest}
    traced = [t._data.shape for t in tracer.placeholders]
    for i, a in free:
        cur = {}
        for k, v in enumerate(g.inputs):
            shape = list(traced[k])
            if k == i:
                shape[a] = None
            cur[v.id] = tuple(shape)
        seen = set()
        for n in g.nodes:
            if n.op == "placeholder" or not n.outputs:
                continue
            if n.op == "random" and n.inputs:
                cur[n.outputs[0].id] = random_shape(
                    n.attrs, [cur.get(v.id, v.shape) for v in n.inputs])
                continue
            if n.op in ("variable", "constant", "random"):
                continue
            ins = [(cur.get(v.id, v.shape), v.dtype) for v in n.inputs]
            unknown = any(None in s for s, _ in ins)
            op = REGISTRY.get(n.op)
            res = None
            if unknown and op is not None and op.infer is not None:
                try:
                    res = op.infer(*ins, **n.attrs)
                    res = list(res) if multi_spec(res) else [res]
                except (ValueError, TypeError, IndexError):
                    res = None
            for k, v in enumerate(n.outputs):
                if not unknown:
                    continue
                if res is not None and k < len(res):
                    cur[v.id] = tuple(None if d is None else int(d) for d in res[k][0])
                else:
                    cur[v.id] = (None,) * len(v.shape)
                if v.id in want:
                    seen.add(v.id)
            if seen == want:
                break
        for vid, axis in rest:
            shape = cur.get(vid)      # absent: computed from known dims only
            if shape is not None and (axis >= len(shape) or shape[axis] is None):
                out.add((i, a))
    return out


def _check_concrete_shapes(g: Graph, shapes) -> None:
    """Before a graph traced with ``None`` dims runs on new sizes: every op's ``infer`` must
    accept them and give shapes that agree with the graph's symbolic ones. A Python value
    derived from a traced size (``x.reshape(x.shape[0], -1)``) fails here, loudly."""
    from ..ops.registry import REGISTRY
    cur = {v.id: s for v, s in zip(g.inputs, shapes)}
    for n in g.nodes:
        for v in n.outputs:
            if n.op == "random":
                cur[v.id] = random_shape(n.attrs, [cur.get(i.id, i.shape) for i in n.inputs])
            elif n.op in ("variable", "constant"):
                cur[v.id] = v.shape
        op = REGISTRY.get(n.op)
        if n.op in ("placeholder", "variable", "constant", "random", "assign") or op is None \
                or op.infer is None:
            continue
        try:
            out = op.infer(*[(cur.get(v.id, v.shape), v.dtype) for v in n.inputs], **n.attrs)
        except (ValueError, TypeError, IndexError) as e:
            raise CaptureError(_SIZE_HELP.format(shapes=shapes, node=f"{n.op} (node {n.id})",
                                                 why=e)) from None
        outs = list(out) if multi_spec(out) else [out]
        for v, (shape, _) in zip(n.outputs, outs):
            if len(shape) != len(v.shape) or any(a is not None and a != b
                                                 for a, b in zip(v.shape, shape)):
                raise CaptureError(_SIZE_HELP.format(
                    shapes=shapes, node=f"{n.op} (node {n.id})",
                    why=f"gives {tuple(shape)}, the graph expects {v.shape}"))
            cur[v.id] = tuple(shape)


_SIZE_HELP = ("tl.function: the graph traced for input_signature with None dims does not fit "
              "inputs of shapes {shapes}: {node} {why}. Either the traced code turned a size "
              "into a Python value (e.g. x.shape[0] in a reshape; use -1 in reshapes), or this "
              "op's shape rule cannot follow the None dims; drop the None dims so each size "
              "gets its own trace.")


def function(fn: Callable | None = None, *, input_signature=None, max_retraces: int = 5,
             optimize: bool = True, memory_plan: bool = True, max_cached: int | None = None,
             devices=None, dynamic: bool | str | None = None):
    """Capture ``fn`` as a graph on its first call and replay the graph afterwards.

    The graph is specialised on the call's signature: tensor shapes, dtypes,
    devices and requires_grad, the values of Python scalar arguments, and the
    identity of other objects (modules, optimizers), plus guards on the Python
    state reachable from those objects and from the globals the code uses. A
    call that does not match retraces (and warns, with the reason, past
    ``max_retraces``); the ``max_cached`` most recently used graphs per signature are
    kept. Left as None, ``max_cached`` is 8, and when a call needs a graph the cache
    evicted (more distinct shapes cycle than it keeps, e.g. 10 batch shapes of a GNN), it
    doubles, up to 64 graphs while the kept graphs hold under 256 MiB of constants, with one
    warning; a given ``max_cached`` is kept as is (the warning then says each such call
    retraces). After ``max(4 * max_cached, max_retraces)`` traces (``f.eager_after``) a call
    that fits no kept graph runs eagerly instead, with one warning (a step fed a new shape
    on every call costs eager time, not a trace per call).
    ``input_signature=[tl.TensorSpec((None, 784))]`` gives one graph for every batch size
    (an argument that is a list, tuple or dict of tensors takes the same structure of specs:
    ``[{"x": TensorSpec((None, 3)), "ids": TensorSpec((None,), "int64")}]``, keys in the
    order the calls pass them) (for inference graphs: a training step, which calls
    ``backward()``, is still traced once per input shape); before it runs on a new size,
    every op's ``infer`` must accept it. A size read from a None dim (``x.shape[0]``) is a
    ``TracedSize``; ``+ - * // %`` on it keep it one, and reshape/view/expand/broadcast_to,
    ``tl.zeros``/``ones``/``full``/``arange`` and ``x.new_zeros`` compute such sizes when
    the graph runs (``x.reshape(x.shape[0] * 3, -1)``, ``y.reshape(x.shape[0], -1)`` after
    the batch was merged, ``tl.zeros(n // 2, 4)``), in ONNX too (Shape/Gather/Mul/Concat);
    random draws sized so (``tl.randn(x.shape[0], 8)``, ``randn_like``, dropout in training
    mode, a distribution's ``sample()``) draw at the size each run has (ONNX has none).
    A comparison of such sizes in your code (``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``,
    ``bool(n)``: ``assert t <= block_size``, ``if x.shape[0] > 3:``, ``min(n, 4)``) keeps
    them dynamic: it is recorded with its traced outcome (``graph.size_predicates``), and a
    call for which one comes out otherwise traces again for that branch (both graphs are
    kept), so a replay never takes the wrong branch; ONNX export keeps the traced outcomes
    (warning with the assumptions, as PyTorch's tracing exporter), and a saved graph checks
    them on each call (a violating call raises). A comparison with a size read from an op's
    result rather than an input (or its permuted view) is an escape, as below.
    A size turned into a plain Python number (``x.sum() / x.shape[0]``, ``int(n)``,
    ``n - 1.0``, a slice ``x[:n // 2]``) cannot
    be recomputed: the function is then traced once per input shape,
    with one warning naming the size, and ONNX export with dynamic axes refuses it; use
    tensor ops (``x.mean()``). A float on the left (``1.0 / n``, ``0.5 * n``) runs float's
    own arithmetic, which takes the int without any hook: the traced value is frozen
    unseen, so write ``n * 0.5`` (an escape, retraced) or, better, tensor ops. Only the None
    dims that size was computed from are fixed;
    the others stay dynamic. Cutting a None dim into a Python count of pieces
    (``unbind``, ``split``/``chunk`` into equal parts, ``len(x)``, ``for t in x``) is such
    an escape, and so is a projection LSTM's (``proj_size``) loop over the time steps: a
    None time dim is traced per sequence length while the batch stays dynamic
    (``nn.LSTM``/``GRU``/``RNN`` otherwise run one sequence op per layer direction, whose
    time dim stays dynamic). So is a Python loop
    ``for t in range(x.shape[1])`` (range takes the int as is): it is seen once constant
    indices (``x[:, t]``, ``x.select(1, t)``, ``out[:, t] = h``) have read every position of
    that dim. So trace with an example longer than the positions your code reads by a
    constant index: at length 1 a loop cannot be told from ``x[:, 0]``, and code reading
    ``x[:, 0]`` and ``x[:, 1]`` traced at length 2 looks like a loop (traced per length;
    ONNX export with that axis dynamic refuses). Whatever the code, the first call at other
    sizes of a graph's None dims traces again and compares the two graphs: the same, the
    graph serves every size from then on; another (a loop of ``2 * x.shape[1]`` steps, a
    number computed from a size), those dims are traced per size, with one warning.
    Python side effects run while tracing only (a replay runs the graph, not the Python):
    appending to a list, ``print``, a forward hook storing an activation in a dict see the
    traced call; return such values from the function instead.
    Packed sequences are refused under capture: ``pack_padded_sequence``,
    ``pad_packed_sequence``, ``pack_sequence`` and ``unpack_sequence`` raise
    NotImplementedError while tracing (their lengths, read on the host, would be baked into
    the graph); capture the padded batch instead.
    NumPy arrays the traced code can reach (globals, closure variables,
    attributes of arguments) are guarded: up to 4 MiB in all, their contents are compared
    on each call (an in-place change retraces); beyond that, by identity, shape and dtype
    only, so pass large tables as tensors. An attribute the traced code sets before it
    reads it (``self.aux = load_balancing_loss`` or a Bayes layer's ``self.kl`` in a
    forward, read by the step after the forward, or never) is an output of the graph, not
    an input: its value before a call is not guarded, and each replay sets it to a new
    tensor holding that call's value (as eager leaves it), without autograd history (eager
    leaves the forward's history, already freed by the step's ``backward()``); the graph's
    own ``outputs`` (what an export or a saved graph gives) are only what the function
    returns. One read before it is set is an input and stays guarded (a new value
    retraces); a list appended to in place is guarded by its items (see
    ``tensorlib.graph.attrwatch``). Reading a traced tensor's value in
    Python (``bool(t)``, ``t.item()``...) raises a clear error. A replayed graph's outputs
    have no autograd history: a call with gradients enabled whose outputs depend on
    tensors that require grad (a captured forward used inside an eager training step) runs
    the Python eagerly instead, with a warning; call such a forward under
    ``tl.no_grad()``. A step that calls
    ``loss.backward()`` and updates parameters in place is captured as one graph:
    forward, backward and update. Tensors passed as arguments get the ``.grad`` eager
    leaves on them after each replay too (backward() sets a None one and adds into a set
    one; ``x.grad = None`` / ``x.grad.zero_()`` in the step as eager), and so do returned
    tensors that hold one (``retain_grad()``): whether each argument that requires grad
    has a ``.grad`` at the call (its dtype, and whether it has the argument's shape) and
    which hooks it has are guarded (another state traces again), a set ``.grad`` the step
    reads is an extra graph input named ``<arg>.grad``, and hooks the step registers on an
    argument are registered on each replayed call's argument. A saved or exported graph
    has that input but not the ``.grad`` it sets (a plan output, not a graph output):
    return ``x.grad`` to have it as an output. A backward() that reaches, through an
    argument's autograd history from outside (a view of a tensor that requires grad),
    tensors the function never reads runs eagerly, with a warning.
    A per-step learning-rate schedule retraces each step
    when the rate is a Python float; pass it as a tensor (``SGD(params, lr=tl.tensor(0.1))``)
    and the graph reads its current value instead (OneCycleLR and CyclicLR then keep the
    momentum they cycle, or Adam's first beta, a tensor too; ``momentum=tl.tensor(0.9)``
    works directly). ``devices=["cpu:0", "cpu:1"]`` places
    each traced graph over those devices (``tl.graph.place``) and runs each device's part on
    its own thread; the graph's ``placement`` says where each node went. While ``fn`` is
    traced, a ``with tl.device(...)`` block pins the ops in it (TensorFlow's meaning); a
    block naming a CPU device (``cpu:1``) does not move the tensors made inside it, so the
    trace runs in host memory; without ``devices``, such a graph is placed over the
    devices it names. With ``optimize=True`` a training step
    whose forward can be made cheaper (an RNN's embedding-then-projection, per-step output
    layers) is rewritten and its backward derived again from the rewritten forward
    (``tensorlib.graph.passes.rederive``): the results equal the eager step's up to float
    rounding.
    ``dynamic=True`` (``tl.compile``'s) traces as if ``input_signature`` gave every tensor
    argument's dims of size 2 or more as None (sizes 0 and 1 stay fixed, as PyTorch
    specialises them), with the same per-dim fallback where a size escapes, except that a
    dim constant indices read at each of its positions (edge_index's ``(2, E)`` read as
    ``ei[0]``, ``ei[1]``) is kept at its traced size without a warning (you did not mark
    it); ``"auto"`` (``tl.compile``'s default) traces static shapes until a call differs
    from a traced one in tensor shapes only, then makes dynamic only the dims that differed
    (PyTorch's automatic dynamic shapes: edge_index's leading 2 never changes, so it stays
    fixed), adding dims as later calls change them; None or False: one graph per shape.
    A training step's first trace creates the state its optimizer would create on its first
    ``step()`` (tensorlib's optimizers: the zero moments and step count, SGD's momentum
    buffer, with dampening also a first-step flag the step reads) before tracing, so the step
    is traced once, not again once the state exists; parameters that require grad but get
    none in the step then hold zero state. A step that drops the gradients first does not
    guard whether ``.grad`` is set (it is never read), so a parameter the loss does not reach
    on every call costs no trace. Its gradients are primed too: a step that drops them first
    (``opt.zero_grad()`` before ``backward()``), zeroes them under a condition (gradient
    accumulation: ``if i % k == 0: opt.zero_grad()``, or ``step(); zero_grad()`` under an
    ``if`` at the end) or keeps them (``zero_grad(set_to_none=False)``) is traced with zero
    gradients where it has none, and a later call that starts without them is given zeros
    and replays (one trace per signature), with eager's values: a parameter the backward
    does not reach is skipped by the optimizer and left without ``.grad``, as eager leaves
    it (such a step then traces as before, once more when the gradients appear).

    >>> @tl.function
    ... def step(x, y):
    ...     loss = F.cross_entropy(model(x), y)
    ...     loss.backward()
    ...     opt.step(); opt.zero_grad()
    ...     return loss
    """
    def wrap(f):
        return Function(f, input_signature=input_signature, max_retraces=max_retraces,
                        optimize=optimize, memory_plan=memory_plan, max_cached=max_cached,
                        devices=devices, dynamic=dynamic)
    return wrap(fn) if fn is not None else wrap


_STRUCTURAL = ("traced at other sizes, the function built another graph (a Python loop over "
               "a size, or a number computed from one)")


def _map_shapes(key, fn, count=None):
    """``key`` with each tensor's shape ``s`` (the ``i``-th tensor, in call order) replaced
    by ``fn(i, s)``."""
    count = [0] if count is None else count
    if isinstance(key, tuple) and key:
        if key[0] == "T":
            count[0] += 1
            return ("T", fn(count[0] - 1, key[1]), *key[2:])
        if key[0] in ("L", "U"):
            return (key[0], tuple(_map_shapes(k, fn, count) for k in key[1]))
        if key[0] == "D":
            return ("D", tuple((k, _map_shapes(v, fn, count)) for k, v in key[1]))
        if key[0] in ("S", "O"):
            return key
        return tuple(_map_shapes(k, fn, count) for k in key)
    return key


def _dynamic_key(key):
    """A call key with every tensor's dims of size 2 or more as None (``dynamic=True``)."""
    return _map_shapes(key, lambda i, s: tuple(None if d is None or d > 1 else d for d in s))


def _masked_key(key, axes: dict):
    """A call key with the dims ``axes`` ``{tensor: {axis}}`` of size 2 or more as None."""
    return _map_shapes(key, lambda i, s: tuple(
        None if d is None or d > 1 and a in axes.get(i, ()) else d for a, d in enumerate(s)))


def _changed_axes(old, new) -> list:
    """The ``(tensor, axis)`` whose sizes differ between two call keys of one structure."""
    shapes: list = []
    _map_shapes(old, lambda i, s: shapes.append(s) or s)
    out = []

    def cmp(i, s):
        for a, (d0, d1) in enumerate(zip(shapes[i], s)):
            if d0 is not None and d0 != d1:
                out.append((i, a))
        return s
    _map_shapes(new, cmp)
    return out


def _optimizers(fn, objects) -> dict:
    """The tensorlib optimizers ``fn`` reaches (its closures, globals, arguments and their
    attributes), by id."""
    from .._closures import reachable
    from ..optim.optimizer import Optimizer
    found: dict[int, Any] = {}
    for obj in (*reachable(fn), *objects):
        for o in (obj, *(list(vars(obj).values()) if hasattr(obj, "__dict__")
                         and not isinstance(obj, type) else ())):
            if isinstance(o, Optimizer):
                found[id(o)] = o
    return found


def _codes(fn, objects) -> list:
    """The code objects of ``fn`` and of the functions (and modules' forwards) it reaches,
    nested ones (comprehensions, local functions) included."""
    from .._closures import reachable
    codes, seen = [], set()
    for obj in (*reachable(fn), *objects):
        f = getattr(obj, "__func__", obj)
        code = getattr(f, "__code__", None) if isinstance(f, types.FunctionType) else None
        if code is None:
            fwd = getattr(type(obj), "forward", None)
            code = getattr(fwd, "__code__", None)
        if code is not None and id(code) not in seen:
            seen.add(id(code))
            codes.append(code)
    out, stack = [], list(codes)
    while stack:
        c = stack.pop()
        out.append(c)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return out


def _drops_grads_first(fn, objects) -> bool:
    """Whether ``fn`` (or a function it reaches) calls ``zero_grad()`` (dropping the
    gradients: not ``set_to_none=False``) before ``backward()`` in the same code: PyTorch's
    tutorial order, where the gradients a call starts with are never read."""
    import dis
    for c in _codes(fn, objects):
        zero = None
        for ins in dis.get_instructions(c):
            if zero is None and "JUMP" in ins.opname and "IF" in ins.opname:
                break       # a zero_grad() under a condition: maybe not this call's
            if ins.opname in ("LOAD_ATTR", "LOAD_METHOD", "LOAD_GLOBAL") and \
                    ins.argval in ("zero_grad", "zero_grad_") and zero is None:
                zero = True
            elif zero is True and ins.opname == "LOAD_CONST" and ins.argval is False:
                zero = False        # zero_grad(False) / set_to_none=False: kept tensors
            elif zero is True and _unknown_arg(ins):
                zero = False        # set_to_none=flag: may keep them (unknown until it runs)
            elif zero is True and ins.opname == "CALL":
                zero = "called"
            elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and ins.argval == "backward":
                if zero == "called":
                    return True
                break
    return False


def _unknown_arg(ins) -> bool:
    """An instruction between ``zero_grad`` and its call that loads a value not known until
    the call runs (``set_to_none=flag``): it may keep the gradients, as ``False`` does."""
    return (ins.opname.startswith("LOAD") and ins.opname not in ("LOAD_ATTR", "LOAD_METHOD")
            and not (ins.opname == "LOAD_CONST" and (ins.argval is True or ins.argval is None)))


def _step_flags(fn, objects) -> frozenset:
    """What the code ``fn`` reaches calls: ``backward``, ``step``, and ``zero_cond`` /
    ``zero_keep`` for a ``zero_grad()`` under a condition (gradient accumulation) or with
    ``set_to_none=False`` (``zero_cond_first`` / ``zero_cond_last``: before / after a
    ``backward`` in its code): the steps whose gradients a call may start without;
    ``step_cond``: a ``step()`` under a condition."""
    import dis
    flags = set()
    for c in _codes(fn, objects):
        zero = back = False
        blocks: list[tuple[int, int]] = []     # (from, to) of the forward conditional jumps
        for ins in dis.get_instructions(c):
            # inside an if (or after an early exit's test): between a conditional forward
            # jump and its target; a loop's jumps go backward
            cond = any(a < ins.offset < b for a, b in blocks)
            if "JUMP" in ins.opname and "IF" in ins.opname:
                if isinstance(ins.argval, int) and ins.argval > ins.offset:
                    blocks.append((ins.offset, ins.argval))
            elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD"):
                if ins.argval in ("zero_grad", "zero_grad_"):
                    zero = True
                    if cond:
                        flags.add("zero_cond")
                        flags.add("zero_cond_last" if back else "zero_cond_first")
                elif ins.argval in ("backward", "step"):
                    back = back or ins.argval == "backward"
                    if cond and ins.argval == "step":
                        flags.add("step_cond")
                    flags.add(ins.argval)
            elif zero and (ins.opname == "LOAD_CONST" and ins.argval is False
                           or _unknown_arg(ins)):
                flags.add("zero_keep")
            elif ins.opname == "CALL":
                zero = False
    return frozenset(flags)


def _prime_grads(fn, objects, watch=False) -> tuple[list, bool]:
    """Before a trace of a step that drops the gradients before its backward (see
    ``_drops_grads_first``): give the parameters of the optimizers it reaches that have no
    ``.grad`` a zero one, the state every later call starts in (the first call's backward
    leaves them set), so that one trace serves them all. The step drops them unread, so no
    value changes. ``watch`` (the step's :func:`_step_flags`): also prime a step that zeroes
    under a condition or keeps the tensors (set_to_none=False), for a trace under
    :class:`_GradWatch`. Returns ``([(param, zero grad)], watched)``."""
    from ..creation import zeros_like
    opts = _optimizers(fn, objects)
    if not opts:
        return [], False
    watched = False
    if not _drops_grads_first(fn, objects):
        # a zero_grad() after the backward under a condition while step() is not: a switch
        # (`if not zero_first: opt.zero_grad()`) more likely than accumulation, whose calls
        # all start without gradients; primed, they would be read (an add per step, and the
        # passes could not fold the update)
        switch = "zero_cond_last" in watch and "step_cond" not in watch if watch else True
        if not (watch and "backward" in watch and ({"zero_cond", "zero_keep"} & watch)
                and not switch and all(_watchable(o) for o in opts.values())):
            return [], False
        watched = True
    out = []
    for opt in opts.values():
        for group in opt.param_groups:
            for p in group["params"]:
                if p.requires_grad and p.grad is None and not p.is_sparse and \
                        not getattr(p, "_tl_uninitialized", False):
                    z = zeros_like(p)
                    p.grad = z
                    out.append((p, z))
    return out, watched and bool(out)


def _rewritten_grads(fn, objects, tracer) -> list:
    """The parameters of the optimizers ``fn`` reaches whose ``.grad`` at the start of the
    trace was never read and was replaced by its end (a graph write for every call)."""
    out = []
    for opt in _optimizers(fn, objects).values():
        for group in opt.param_groups:
            for p in group["params"]:
                hit = tracer.start_grad.get(id(p))
                start = None if hit is None else hit[1]
                if start is not None and p.grad is not start and \
                        id(start._data) not in tracer.locations:
                    out.append(p)
    return out


def _watchable(opt) -> bool:
    """A tensorlib optimizer whose update picks its parameters through ``_with_grads``
    and whose ``zero_grad`` is the class's (what :class:`_GradWatch` wraps)."""
    cls = type(opt)
    code = getattr(getattr(cls, "_update", None), "__code__", None)
    return ((cls.__module__ or "").startswith("tensorlib.optim") and code is not None
            and "_with_grads" in code.co_names and "zero_grad" not in opt.__dict__
            and "_with_grads" not in opt.__dict__)


class _GradWatch:
    """While a trace runs with primed zero gradients that the step may read (a gradient
    accumulated into, zeroed in place): eager would have had None there, and an optimizer
    skips a parameter without a gradient. So the optimizers' ``step`` skips a parameter whose
    gradient is still the primed one (no backward reached it) and ``zero_grad(False)`` keeps
    track of it. ``sound()`` after the trace: every primed parameter was reached by the
    backward or dropped, so zeros in place of None change no value and calls may be primed
    too (``Function._call_prime``)."""

    def __init__(self, fn, objects, zeroed: list):
        self.params = [p for p, _ in zeroed]
        self.cur = {id(p): z for p, z in zeroed}
        self.opts = list(_optimizers(fn, objects).values())
        for opt in self.opts:
            zg, wg = opt.zero_grad, opt._with_grads

            def zero_grad(set_to_none: bool = True, _zg=zg, _opt=opt):
                mine = [p for g in _opt.param_groups for p in g["params"] if self.untouched(p)]
                _zg(set_to_none)
                for p in mine:
                    if p.grad is not None:
                        self.cur[id(p)] = p.grad      # the primed zeros, zeroed again

            def with_grads(group, init, params=None, _wg=wg):
                ps = group["params"] if params is None else params
                return _wg(group, init, [p for p in ps if not self.untouched(p)])
            opt.__dict__["zero_grad"] = zero_grad
            opt.__dict__["_with_grads"] = with_grads

    # the trace's Tracer, once made: a backward() adds into a primed gradient in place (as
    # eager into a set one), so only the leaves it reached tell a used one from an unused one
    tracer = None

    def untouched(self, p) -> bool:
        z = self.cur.get(id(p))
        return z is not None and p.grad is z and (
            self.tracer is None or id(p) not in self.tracer.grad_leaves)

    def current(self, p):
        return self.cur[id(p)]

    def close(self) -> None:
        for opt in self.opts:
            opt.__dict__.pop("zero_grad", None)
            opt.__dict__.pop("_with_grads", None)

    def sound(self) -> bool:
        return not any(self.untouched(p) for p in self.params)


def _prime_call(params: list) -> list:
    """Zero gradients for ``params`` that have none, before a call's graph lookup (see
    ``_GradWatch``). Returns ``[(param, zeros, its version)]`` for :func:`_unprime_call`."""
    from ..creation import zeros_like
    out = []
    for p in params:
        if p.grad is None and p.requires_grad:
            z = zeros_like(p)
            p.grad = z
            out.append((p, z, z._version[0]))
    return out


def _unprime_call(zeroed, dead: tuple = ()) -> None:
    """The primed gradients nothing used (or the call did not replay) are taken back, and
    those of the parameters ``dead`` (weak references) the step only zeroes, as eager leaves
    them None."""
    gone = {id(p) for r in dead if (p := r()) is not None}
    for p, z, v in zeroed:
        if p.grad is z and (z._version[0] == v or id(p) in gone):
            p.grad = None


def _grad_state_miss(e: _Entry, primed) -> str | None:
    """Why entry ``e`` does not fit a call whose parameters ``primed`` (ids) had no .grad:
    a parameter no backward reaches is skipped by the optimizer without a gradient and
    stepped (momentum, weight decay, Adam's moments) with one, so whether it has one at the
    call decides the update, and the graph holds the state it was traced in."""
    for refs, none in ((e.dead, True), (e.held, False)):
        for r in refs:
            p = r()
            if p is not None and (p.grad is None or id(p) in primed) is not none:
                state = "None" if none else "set"
                return (f"a parameter {tuple(p.shape)} that no backward reaches had .grad "
                        f"{state} when traced, and {'set' if none else 'None'} now")
    return None


def _only_written(g: Graph, tracer, params: list) -> bool:
    """Whether the graph reads the gradients of ``params`` only to overwrite them (the
    in-place zeroing of ``zero_grad(set_to_none=False)``): nothing computed from them."""
    if not params:
        return False
    for p in params:
        var = tracer.var_nodes.get((id(p), "grad"))
        if var is None:
            continue
        reads = [n for n in g.nodes if any(v is var.outputs[0] for v in n.inputs)]
        for n in reads:
            if n.op != "setitem" or n.inputs[0] is not var.outputs[0] or any(
                    v is o for o in n.outputs for m in g.nodes for v in m.inputs):
                return False
    return True


def _unprime_grads(zeroed: list, reached=frozenset()) -> None:
    """After the trace: the primed zero gradients the step left in place (it did not drop
    them after all) are taken back, as eager never made them; not those a backward added
    into (``reached``: ids of the leaves it reached), which hold that call's gradient."""
    for p, z in zeroed:
        if p.grad is z and id(p) not in reached:
            p.grad = None


def _own_grad_writes(g: Graph) -> None:
    """Give each ``.grad`` a replay sets an array of its own: a backward adds into a set
    gradient in place (eager, and traced as a recorded ``add_``), so a graph constant,
    variable or input handed out as ``.grad`` (a gradient that folds to a constant, as a
    bias's under ``sum()``), or one array set as two gradients or also returned, would
    take those adds into the graph's state or into the other tensor."""
    from .executor import _aliases_state
    seen = {v.id for v in g.outputs}
    k = 0
    while k < len(g.nodes):
        n = g.nodes[k]
        k += 1
        if n.op != "assign" or n.attrs.get("slot") != "grad" or not n.inputs:
            continue
        v = n.inputs[0]
        if v.id in seen or _aliases_state(v):
            c = g.add_node("copy", [v], {}, n.device, [(v.shape, v.dtype)])
            g.nodes.pop()
            g.nodes.insert(k - 1, c)        # (before its assign: nodes stay in order)
            k += 1
            n.inputs[0] = c.outputs[0]
            v = c.outputs[0]
        seen.add(v.id)


def _prime_optimizers(fn, objects, skip: set) -> list:
    """Before a trace: give the parameters that require grad of the tensorlib optimizers
    ``fn`` reaches the state their first ``step()`` would create (the same tensors, zeros
    and a 0 step count), so a traced step reads and updates that state instead of creating
    it (created inside the trace it would be a constant of the graph, and the next call
    would find the state changed and trace again). A first step then computes what eager
    does: a zero moment scaled and added to is the gradient exactly. Returns
    ``[(optimizer, had _stepped, [(param, state)...])]`` for :func:`_unprime_unstepped`."""
    found = {k: o for k, o in _optimizers(fn, objects).items() if k not in skip}
    out = []
    for opt in found.values():
        if opt.__dict__.get("_hook_dicts"):
            # the hooked step sets it (to False again) on its first run: not a change
            opt.__dict__.setdefault("_in_hooked_step", False)
        made = _prime(opt)
        own = bool(made)
        if not made and "_stepped" not in opt.__dict__:
            # a resumed optimizer (load_state_dict): its state is there, its first step
            # would only mark it stepped; undone as a primed one's if the trace does not step
            made = [(p, st) for p, st in opt.state.items() if isinstance(st, dict)]
        if made:
            out.append((opt, "_stepped" in opt.__dict__, made if own else [],
                        _versions(made), made))
            opt._stepped = True     # what the traced step sets: not a change after it
    return out


def _versions(made) -> list:
    from .._tensor import Tensor
    return [t._version[0] for p, st in made for t in (p, *st.values())
            if isinstance(t, Tensor)]


def _prime(opt) -> list:
    from .._hyper import enabled, hyper_value
    from ..autograd.mode import no_grad
    from ..creation import tensor, zeros_like
    from ..optim.sgd import SGD
    import numpy as np
    cls = type(opt)
    if not (cls.__module__ or "").startswith("tensorlib.optim"):
        return []       # a user's optimizer: its first step may differ from later ones
    made: list = []
    if isinstance(opt, SGD):
        if cls._update is not SGD._update:
            return []
        for group in opt.param_groups:
            mom, damp = group["momentum"], hyper_value(group["dampening"])
            for p in group["params"]:
                if p.requires_grad and opt.state.get(p) is None:
                    # with dampening the first step takes the gradient undamped: the buffer
                    # comes with a flag the step reads, so one graph serves every step
                    st = (opt._prime_first_step(p) if enabled(mom) and damp != 0 else
                          {"momentum_buffer": zeros_like(p)} if enabled(mom) else {})
                    opt.state[p] = st
                    made.append((p, st))
        return made
    code = getattr(cls._update, "__code__", None)
    if code is None or "_with_grads" not in code.co_names:
        return []
    counts = "_count_step" in code.co_names

    def init_only(group, init, params=None):
        # the optimizer's own init, for every parameter that requires grad; no update runs
        for p in group["params"] if params is None else params:
            if p.requires_grad and opt.state.get(p) is None:
                st = init(p)
                if counts or "step" in st:
                    # a 0-d float64 count, as _count_step makes it on the first step
                    st["step"] = tensor(float(st.get("step") or 0), dtype=np.float64)
                opt.state[p] = st
                made.append((p, st))
        return iter(())
    opt.__dict__["_with_grads"] = init_only
    try:
        with no_grad():
            for group in opt.param_groups:
                opt._update(group)
    except Exception:       # noqa: BLE001 - an optimizer whose update needs more: unprimed
        for p, _ in made:
            opt.state.pop(p, None)
        made = []
    finally:
        del opt.__dict__["_with_grads"]
    return made


def _unprime_unstepped(primed: list, skip: set) -> None:
    """After a trace: undo the priming of the optimizers whose step the trace did not run
    (a forward that only reaches an optimizer) and prime them no more."""
    for opt, had, made, before, watched in primed:
        if _versions(watched) != before:
            continue
        for p, st in made:
            if opt.state.get(p) is st:
                del opt.state[p]
        if not had:
            opt.__dict__.pop("_stepped", None)
        skip.add(id(opt))


def _add_node_at(add, lines: dict, *args, **kwargs):
    node = add(*args, **kwargs)
    lines[node.id] = user_line()
    return node


def _diverges_at(g: Graph, before: list, after: list, lines: dict) -> str | None:
    """The user line of the first node of ``g`` (fingerprint ``after``) where it parts from
    the graph of ``before``; a node the passes made (no line) takes the nearest line
    before it, else after it."""
    k = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b),
             min(len(before), len(after)))
    ids = [n.id for n in g.nodes]
    k = min(k, len(ids) - 1)
    for i in (*range(k, -1, -1), *range(k + 1, len(ids))):
        where = lines.get(ids[i])
        if where:
            return where
    return None


def _fingerprint(g: Graph) -> list:
    """A graph's structure, comparable between two traces: each node's op, device, attrs
    (arrays by shape, dtype and content) and which earlier outputs it reads."""
    import hashlib

    import numpy as np

    def array(a):
        digest = (hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=16)
                  .hexdigest() if a.nbytes <= 1 << 20 else None)
        return ("nd", a.dtype.str, a.shape, digest)

    def leaf(a):
        if a is None or isinstance(a, (bool, int, float, str, complex, np.generic)):
            return a
        return ("obj", type(a).__name__)

    where: dict[int, tuple] = {}
    out = []
    for k, n in enumerate(g.nodes):
        ins = tuple(where.get(v.id, ("?",)) for v in n.inputs)
        attrs = dict(n.attrs)
        # positions of a shape computed when the graph runs (graph.sizes): the example's
        # values there are not part of the structure
        run_time = ({p for p, _ in attrs.get("sizes", ())} | set(attrs.get("keep", ()))
                    | ({p for p, _ in attrs.get("dims", ())} if n.op == "fill" else set()))
        if run_time and isinstance(attrs.get("shape"), (tuple, list)):
            attrs["shape"] = tuple("*" if i in run_time else d
                                   for i, d in enumerate(attrs["shape"]))
        dev = g.traced_device(n.outputs[0]) if n.outputs else n.device
        out.append((n.op, dev, ins, attr_key(attrs, array, leaf)))
        for j, v in enumerate(n.outputs):
            where[v.id] = (k, j)
    out.append(("outputs", tuple(where.get(v.id, ("?",)) for v in g.outputs)))
    return out


def _host_rng_states(gens: tuple = ()) -> tuple:
    """Python's and NumPy's global generator states, and those of ``gens`` (NumPy
    Generators / RandomStates), comparable with ==."""
    import random

    import numpy as np
    kind, keys, pos, gauss, cached = np.random.get_state()
    return (random.getstate(), kind, keys.tobytes(), pos, gauss, cached,
            tuple(_frozen(g.bit_generator.state if isinstance(g, np.random.Generator)
                          else g.get_state()) for g in gens))


def _frozen(v):
    """A generator state (dicts, tuples, arrays, ints) as a value comparable with ==."""
    import numpy as np
    if isinstance(v, dict):
        return tuple((k, _frozen(x)) for k, x in sorted(v.items()))
    if isinstance(v, (tuple, list)):
        return tuple(_frozen(x) for x in v)
    if isinstance(v, np.ndarray):
        return v.tobytes()
    return v


def _numpy_generators(fn, args=()) -> tuple:
    """The NumPy Generators / RandomStates ``fn`` reaches: in its closure, its globals, a
    bound method's ``self``, its arguments, and one attribute deep into the objects found
    there (an agent's ``self.rng``, a replay buffer's generator)."""
    import numpy as np

    from .._closures import reachable
    from ..random import Generator
    kinds = (np.random.Generator, np.random.RandomState)
    out: dict[int, object] = {}
    for obj in (*reachable(fn), *args):
        if isinstance(obj, kinds):
            out[id(obj)] = obj
        elif isinstance(obj, Generator):
            # a tl.Generator's NumPy stream is a graph input: replays draw anew from it
            continue
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            for v in list(vars(obj).values()):
                if isinstance(v, kinds):
                    out[id(v)] = v
    return tuple(out.values())


def _with_autocast(key):
    """The signature key, with the dtypes of an enabled ``tl.autocast`` block (a graph traced
    outside one, or with other dtypes, holds other casts) and the grad mode (see
    :func:`~tensorlib.graph.replay_checks.with_grad_mode`)."""
    ac = state.autocast
    if ac is None:
        return with_grad_mode(key)
    return with_grad_mode(
        (key, "autocast", tuple(sorted((d, str(t)) for d, t in ac.dtypes.items()))))


def _needs_grad(g: Graph, tensors, outputs) -> bool:
    """Whether any of ``outputs`` is computed from an input or a captured tensor that
    requires grad (whatever the grad mode was while tracing)."""
    src = {v.id for v, t in zip(g.inputs, tensors) if t._rg}
    # variables bind (tensor, slot); random nodes bind their generator; assigns have no
    # outputs
    src |= {node.outputs[0].id for node, b in g.bindings.items()
            if node.op == "variable" and b[1] == "data" and getattr(b[0], "_rg", False)}
    want = {v.id for v in outputs}
    if not src or not want:
        return False
    for n in g.nodes:
        if any(v.id in src for v in n.inputs):
            src.update(v.id for v in n.outputs if v.dtype.kind in "fc")
    return bool(want & src)


def _side_outputs(attrs, guards, tracer, out_tensors: list, fetches: list) -> list:
    """The attributes the trace set before reading them (see attrwatch) that a replay can
    set again: (object, name, output template), their tensors appended to ``out_tensors``
    and their Values to ``fetches``. A tensor, or a list/tuple/dict of tensors (and None)
    made by the call; other values (a Python number, an object, a container the state
    held before) stay guarded inputs."""
    if attrs is None:
        return []
    held = {s[2] for s in guards.snapshot if len(s) >= 4 and s[1] in ("list", "tuple", "dict")}
    out = []
    for obj, name, val in attrs.written():
        if not _side_value(val, held, 0):
            continue
        n0 = len(out_tensors)
        tpl = _template(val, out_tensors)
        try:
            fetches.extend(tracer.value_of(t) for t in out_tensors[n0:])
        except CaptureError:
            del out_tensors[n0:], fetches[n0:]
            continue
        out.append((obj, name, tpl))
    return out


def _side_value(v, held: set, depth: int) -> bool:
    if isinstance(v, Tensor):
        return True
    if v is None:
        return depth > 0
    if depth > 8 or id(v) in held or type(v) not in (list, tuple, dict):
        return False
    items = list(v.values() if type(v) is dict else v)
    return (depth > 0 or any(isinstance(x, Tensor) for x in items)) and \
        all(_side_value(x, held, depth + 1) for x in items)


def _template(out, tensors: list, tracer=None, where: str = "tl.function"):
    """The output structure of ``out`` for ``signature.rebuild`` (see graph.outputs), its
    tensors appended to ``tensors``. ``tracer`` (the function's, not finished): sizes read
    from None dims become graph outputs, and objects the template cannot rebuild that hold
    the call's tensors are refused (``where`` names the function)."""
    from .._tensor import Tensor
    from . import outputs as _outs
    from .tracer import TracedSize
    if isinstance(out, Tensor):
        # a tensor returned twice (``return y, y``) is one output named twice: eager gives
        # the same object in both places, and so does rebuild
        for k, t in enumerate(tensors):
            if t is out:
                return ("T", k)
        tensors.append(out)
        return ("T", len(tensors) - 1)
    if isinstance(out, list):
        return ("L", tuple(_template(o, tensors, tracer, where) for o in out))
    if isinstance(out, tuple):
        items = tuple(_template(o, tensors, tracer, where) for o in out)
        # a namedtuple comes back as its own type (signature.rebuild), so out.loss works
        return ("U", items, type(out)) if hasattr(type(out), "_fields") else ("U", items)
    if isinstance(out, dict):
        items = tuple((k, _template(v, tensors, tracer, where)) for k, v in out.items())
        if type(out) is dict:
            return ("D", items)
        proto = _outs.dict_proto(out)
        if proto is None:
            _outs.check_opaque(out, tracer, where)
            return ("S", out)
        return ("D", items, proto)      # OrderedDict, defaultdict...: its own type again
    if isinstance(out, TracedSize) and tracer is not None and out.tracer is tracer:
        # x.shape[0] under a None dim: computed per run, not the traced number
        return _outs.size_leaf(out, tensors)
    names = _outs.object_fields(out)
    if names is not None:
        items = tuple((n, _template(getattr(out, n), tensors, tracer, where)) for n in names)
        extra = {k: v for k, v in getattr(out, "__dict__", {}).items() if k not in names}
        _outs.check_opaque(extra, tracer, where, type(out))
        return ("C", _outs.object_proto(out, names), items)
    if tracer is not None and not isinstance(out, (bool, int, float, complex, str,
                                                   type(None))):
        _outs.check_opaque(out, tracer, where)
    return ("S", out)


def _key_reason(key, old_keys) -> str:
    """Why ``key`` differs from the closest earlier key, in words."""
    best = mode_reason(key, old_keys)
    if best is not None:
        return best
    for k in old_keys:
        d = _diff(k, key, "the arguments")
        if d is not None and (best is None or len(d) < len(best)):
            best = d
    return best or "a new call signature"


def _diff(a, b, where) -> str | None:
    if a == b:
        return None
    if isinstance(a, tuple) and isinstance(b, tuple) and a and b and a[0] == b[0]:
        tag = a[0]
        if tag == "T":
            names = ["shape", "dtype", "device", "requires_grad", "aliasing"]
            for n, x, y in zip(names, a[1:], b[1:]):
                if x != y:
                    return f"{where}: tensor {n} changed from {x} to {y}"
        if tag == "S":
            return f"{where}: Python value changed from {a[2]!r} to {b[2]!r}"
        if tag == "O":
            return f"{where}: a different {b[2] if len(b) > 2 else 'object'} was passed"
        if tag == "D":
            ka, kb = [k for k, _ in a[1]], [k for k, _ in b[1]]
            if ka != kb:
                return f"{where}: dict keys changed from {ka} to {kb}"
            for (k, x), (_, y) in zip(a[1], b[1]):
                d = _diff(x, y, f"{where}[{k!r}]")
                if d is not None:
                    return d
        if tag in ("L", "U") and len(a[1]) == len(b[1]):
            for i, (x, y) in enumerate(zip(a[1], b[1])):
                d = _diff(x, y, f"{where}[{i}]")
                if d is not None:
                    return d
        return f"{where}: structure changed"
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and \
            not (a and isinstance(a[0], str)):
        for i, (x, y) in enumerate(zip(a, b)):
            d = _diff(x, y, "the positional arguments" if i == 0 else "the keyword arguments")
            if d is not None:
                return d
    return f"{where} changed"
