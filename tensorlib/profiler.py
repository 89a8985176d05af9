"""An op-level profiler with the API of ``torch.profiler`` (a subset).

Every op runs its backend kernel through ``apply``; while a profile records, the registry's
kernels are wrapped so each call becomes an event (its name is the op's registry name), and
each backward rule becomes an ``autograd::engine::evaluate_function: <Op>Backward0`` event
whose children are the ops it runs. Self time is an event's time less its children's.
Nothing is wrapped while no profile is open: ops then cost what they cost without it.

>>> import tensorlib as tl
>>> from tensorlib.profiler import profile, record_function
>>> x = tl.randn(64, 128, requires_grad=True)
>>> with profile(record_shapes=True, profile_memory=True) as prof:
...     with record_function("my_block"):
...         y = (x @ x.T).relu().sum()
...     y.backward()
>>> print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
>>> prof.export_chrome_trace("trace.json")          # chrome://tracing or ui.perfetto.dev

Training loops: ``schedule(wait=1, warmup=1, active=3, repeat=1)`` with ``on_trace_ready``
and a ``prof.step()`` per iteration, as in PyTorch.

Differences from PyTorch: times are host (CPU) times; on ``cuda`` the kernels are launched
asynchronously, so an op's time is its launch time (no device times are measured). A
``tl.function`` replay is one event, ``tl.function: <name>`` (the graph executor calls the
kernels it bound when the graph was compiled, not the registry's). Events of all threads
are recorded, each with its thread id; profiles may nest (each sees its own window).
"""
from __future__ import annotations

import enum
import functools
import itertools
import json
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["EventList", "FunctionEvent", "FunctionEventAvg", "ProfilerAction",
           "ProfilerActivity", "profile", "record_function", "schedule",
           "tensorboard_trace_handler"]

# the profiles recording now (a tuple, replaced whole so readers need no lock); the wrappers
# read it on every call: an empty tuple means "run the kernel as is"
_recording: tuple = ()
# what the recording profiles ask for, merged: (record_shapes, with_stack, profile_memory)
_opts = (False, False, False)
_lock = threading.RLock()
_installed = 0          # profiles started and not stopped: the wrappers stay while > 0
_saved: list = []       # what install replaced, for restore
_tls = threading.local()
_ids = itertools.count()
_PKG = os.path.dirname(os.path.abspath(__file__))


class ProfilerActivity(enum.Enum):
    """What to profile: host-side op times (``CPU``); ``CUDA`` ops are timed on the host."""
    CPU = 0
    CUDA = 1


class ProfilerAction(enum.Enum):
    """What a :func:`schedule` asks for at a step."""
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0,
             skip_first: int = 0) -> Callable[[int], ProfilerAction]:
    """PyTorch's schedule: after ``skip_first`` steps, cycles of ``wait`` idle steps,
    ``warmup`` steps and ``active`` recorded steps (``on_trace_ready`` runs at the end of
    each cycle); ``repeat`` cycles, or forever with ``repeat=0``."""
    for nm, v in (("wait", wait), ("warmup", warmup), ("repeat", repeat),
                  ("skip_first", skip_first)):
        if not isinstance(v, int) or v < 0:
            raise ValueError(f"schedule: {nm} must be an int >= 0, got {v!r}")
    if not isinstance(active, int) or active < 1:
        raise ValueError(f"schedule: active must be an int >= 1, got {active!r}")

    def schedule_fn(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        cycle = wait + warmup + active
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        m = step % cycle
        if m < wait:
            return ProfilerAction.NONE
        if m < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if m < cycle - 1 else ProfilerAction.RECORD_AND_SAVE
    return schedule_fn


def _always_record(step: int) -> ProfilerAction:
    return ProfilerAction.RECORD


# ------------------------------------------------------------------ events

def _fmt_time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _fmt_mem(b: int) -> str:
    for unit, k in (("Gb", 1 << 30), ("Mb", 1 << 20), ("Kb", 1 << 10)):
        if abs(b) >= k:
            return f"{b / k:.2f} {unit}"
    return f"{b} b"


class FunctionEvent:
    """One recorded call: an op's kernel, a backward rule, or a :class:`record_function`
    range. Times are in microseconds, memory in bytes (the op's new outputs)."""

    __slots__ = ("id", "name", "thread", "start_ns", "end_ns", "input_shapes", "stack",
                 "self_cpu_memory_usage", "cpu_parent", "cpu_children", "kind", "_profs",
                 "device_type")

    def __init__(self, name: str, kind: str, profs: tuple, parent: FunctionEvent | None):
        self.id = next(_ids)
        self.name = name
        self.kind = kind        # "op", "backward", "user_annotation", "function"
        self.thread = threading.get_ident()
        self.start_ns = self.end_ns = 0
        self.input_shapes: list = []
        self.stack: list[str] = []
        self.self_cpu_memory_usage = 0
        self.cpu_parent = parent
        self.cpu_children: list[FunctionEvent] = []
        self.device_type = "CPU"
        self._profs = profs

    key = property(lambda self: self.name)
    count = 1
    cuda_time_total = self_cuda_time_total = device_time_total = self_device_time_total = 0

    @property
    def cpu_time_total(self) -> float:
        return (self.end_ns - self.start_ns) / 1e3

    cpu_time = cpu_time_total

    @property
    def self_cpu_time_total(self) -> float:
        return self.cpu_time_total - sum(c.cpu_time_total for c in self.cpu_children)

    @property
    def cpu_memory_usage(self) -> int:
        return self.self_cpu_memory_usage + sum(c.cpu_memory_usage for c in self.cpu_children)

    @property
    def is_user_annotation(self) -> bool:
        return self.kind == "user_annotation"

    def __repr__(self) -> str:
        return (f"<FunctionEvent id={self.id} name={self.name!r} "
                f"cpu_time_total={_fmt_time(self.cpu_time_total)} "
                f"self_cpu_time_total={_fmt_time(self.self_cpu_time_total)} "
                f"input_shapes={self.input_shapes} thread={self.thread}>")


class FunctionEventAvg:
    """The events of one key (name; with ``group_by_input_shape`` also the shapes) summed."""

    def __init__(self, key: str, input_shapes: list | None = None,
                 stack: list | None = None):
        self.key = key
        self.input_shapes = input_shapes
        self.stack = stack or []
        self.count = 0
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0
        self.cpu_memory_usage = 0
        self.self_cpu_memory_usage = 0

    name = property(lambda self: self.key)
    cuda_time_total = self_cuda_time_total = device_time_total = self_device_time_total = 0

    @property
    def cpu_time(self) -> float:
        """Average time per call (us)."""
        return self.cpu_time_total / max(self.count, 1)

    def add(self, e) -> FunctionEventAvg:
        self.count += e.count
        self.cpu_time_total += e.cpu_time_total
        self.self_cpu_time_total += e.self_cpu_time_total
        self.cpu_memory_usage += e.cpu_memory_usage
        self.self_cpu_memory_usage += e.self_cpu_memory_usage
        return self

    def __repr__(self) -> str:
        return (f"<FunctionEventAvg key={self.key!r} count={self.count} "
                f"cpu_time_total={_fmt_time(self.cpu_time_total)} "
                f"self_cpu_time_total={_fmt_time(self.self_cpu_time_total)} "
                f"input_shapes={self.input_shapes}>")


_SORT_KEYS = ("cpu_time", "cpu_time_total", "self_cpu_time_total", "count",
              "cpu_memory_usage", "self_cpu_memory_usage", "cuda_time_total",
              "self_cuda_time_total", "device_time_total", "self_device_time_total")


class EventList(list):
    """A list of :class:`FunctionEvent` (or averages), with PyTorch's summaries."""

    def __init__(self, events: Iterable = (), *, profile_memory: bool = False,
                 with_shapes: bool = False):
        super().__init__(events)
        self._memory = profile_memory
        self._shapes = with_shapes

    @property
    def self_cpu_time_total(self) -> float:
        return sum(e.self_cpu_time_total for e in self)

    def key_averages(self, group_by_input_shape: bool = False,
                     group_by_stack_n: int = 0) -> EventList:
        """One row per op name (and input shapes / top ``group_by_stack_n`` stack frames
        when asked), summed over calls."""
        rows: dict = {}
        for e in self:
            key: tuple = (e.key,)
            if group_by_input_shape:
                key += (str(e.input_shapes),)
            if group_by_stack_n:
                key += tuple(e.stack[:group_by_stack_n])
            avg = rows.get(key)
            if avg is None:
                avg = rows[key] = FunctionEventAvg(
                    e.key, e.input_shapes if group_by_input_shape else None,
                    e.stack[:group_by_stack_n] if group_by_stack_n else None)
            avg.add(e)
        return EventList(rows.values(), profile_memory=self._memory,
                         with_shapes=group_by_input_shape)

    def total_average(self) -> FunctionEventAvg:
        total = FunctionEventAvg("Total")
        for e in self:
            total.add(e)
        return total

    def table(self, sort_by: str | None = None, row_limit: int = 100,
              max_name_column_width: int = 55, header: str | None = None,
              top_level_events_only: bool = False) -> str:
        """PyTorch's text table: self and total CPU time, calls, (memory, input shapes)."""
        if sort_by is not None and sort_by not in _SORT_KEYS:
            raise ValueError(f"table: sort_by must be one of {', '.join(_SORT_KEYS)}; "
                             f"got {sort_by!r}")
        rows = list(self)
        if top_level_events_only:
            rows = [e for e in rows if getattr(e, "cpu_parent", None) is None]
        if sort_by is not None:
            rows.sort(key=lambda e: getattr(e, sort_by), reverse=True)
        if row_limit is not None and row_limit > 0:
            rows = rows[:row_limit]
        self_total = self.self_cpu_time_total or 1e-12
        name_w = min(max([len(e.key) for e in rows] + [4]) + 4, max_name_column_width)
        cols = ["Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
        if self._memory:
            cols += ["CPU Mem", "Self CPU Mem"]
        cols.append("# of Calls")
        shapes_w = 0
        if self._shapes:
            shapes_w = min(max([len(str(e.input_shapes)) for e in rows] + [12]) + 2, 80)
        w = 14
        sep = "-" * name_w + "  " + "  ".join("-" * w for _ in cols)
        if shapes_w:
            sep += "  " + "-" * shapes_w
        head = "Name".rjust(name_w) + "  " + "  ".join(c.rjust(w) for c in cols)
        if shapes_w:
            head += "  " + "Input Shapes".rjust(shapes_w)
        lines = ([header] if header else []) + [sep, head, sep]
        for e in rows:
            name = e.key if len(e.key) <= name_w else e.key[:name_w - 3] + "..."
            vals = [f"{100 * e.self_cpu_time_total / self_total:.2f}%",
                    _fmt_time(e.self_cpu_time_total),
                    f"{100 * e.cpu_time_total / self_total:.2f}%",
                    _fmt_time(e.cpu_time_total), _fmt_time(e.cpu_time)]
            if self._memory:
                vals += [_fmt_mem(e.cpu_memory_usage), _fmt_mem(e.self_cpu_memory_usage)]
            vals.append(str(e.count))
            line = name.rjust(name_w) + "  " + "  ".join(v.rjust(w) for v in vals)
            if shapes_w:
                line += "  " + str(e.input_shapes).rjust(shapes_w)
            lines.append(line)
        lines += [sep, f"Self CPU time total: {_fmt_time(self.self_cpu_time_total)}", ""]
        return "\n".join(lines)

    def export_chrome_trace(self, path: str) -> None:
        """Write the events as Chrome trace JSON (chrome://tracing, ui.perfetto.dev)."""
        _write_trace(path, [e for e in self if isinstance(e, FunctionEvent)])

    def __str__(self) -> str:
        return self.table()


_CATEGORIES = {"op": "cpu_op", "backward": "cpu_op", "user_annotation": "user_annotation",
               "function": "cpu_op"}


def _write_trace(path: str, events: list) -> None:
    pid = os.getpid()
    trace = []
    for e in events:
        ev: dict[str, Any] = {"ph": "X", "cat": _CATEGORIES.get(e.kind, "cpu_op"),
                              "name": e.name, "pid": pid, "tid": e.thread,
                              "ts": e.start_ns / 1e3, "dur": (e.end_ns - e.start_ns) / 1e3,
                              "args": {"External id": e.id}}
        if e.input_shapes:
            ev["args"]["Input Dims"] = e.input_shapes
        if e.self_cpu_memory_usage:
            ev["args"]["Bytes"] = e.self_cpu_memory_usage
        if e.stack:
            ev["args"]["Call stack"] = ";".join(e.stack)
        trace.append(ev)
    with open(path, "w") as f:
        json.dump({"traceEvents": trace, "displayTimeUnit": "ms",
                   "schemaVersion": 1}, f)


# ------------------------------------------------------------------ recording

def _stack() -> list:
    s = getattr(_tls, "stack", None)
    if s is None:
        s = _tls.stack = []
    return s


def _user_stack() -> list[str]:
    return [f"{f.filename}({f.lineno}): {f.name}" for f in traceback.extract_stack()[:-3]
            if not f.filename.startswith(_PKG)][::-1]


def _begin(name: str, kind: str, profs: tuple, arrays=None) -> FunctionEvent:
    stack = _stack()
    ev = FunctionEvent(name, kind, profs, stack[-1] if stack else None)
    shapes, with_stack, _ = _opts
    if shapes and arrays is not None:
        ev.input_shapes = [list(getattr(a, "shape", ())) for a in arrays]
    if with_stack:
        ev.stack = _user_stack()
    stack.append(ev)
    ev.start_ns = time.perf_counter_ns()
    return ev


def _end(ev: FunctionEvent) -> None:
    ev.end_ns = time.perf_counter_ns()
    stack = _stack()
    # (a range closed out of order, e.g. a record_function left open, closes its children)
    while stack:
        if stack.pop() is ev:
            break
    if ev.cpu_parent is not None:
        ev.cpu_parent.cpu_children.append(ev)
    for p in ev._profs:
        if p._recording:
            p._events.append(ev)


def _out_bytes(out, arrays, view: bool) -> int:
    n = 0
    for o in (out if type(out) is tuple else (out,)):
        nb = getattr(o, "nbytes", 0)
        if not nb or any(o is a for a in arrays):
            continue        # in place: no new memory
        if view and arrays:
            try:
                import numpy as np
                if np.may_share_memory(o, arrays[0]):
                    continue
            except TypeError:
                continue    # a device array view: assume it aliases, as the op says
        n += nb
    return n


def _wrap_kernel(name: str, kernel: Callable, view: bool = False) -> Callable:
    def timed(*arrays, **attrs):
        profs = _recording
        if not profs:
            return kernel(*arrays, **attrs)
        ev = _begin(name, "op", profs, arrays)
        try:
            out = kernel(*arrays, **attrs)
        finally:
            _end(ev)
        if _opts[2]:
            ev.self_cpu_memory_usage = _out_bytes(out, arrays, view)
        return out
    timed.__wrapped__ = kernel
    timed._tl_profiled = kernel     # (what a graph plan compiled meanwhile keeps instead)
    timed.__name__ = getattr(kernel, "__name__", name)
    return timed


def wrap_callable(name: str, fn: Callable, kind: str = "op", shapes: bool = True) -> Callable:
    """``fn`` recording one event named ``name`` per call while a profile records (for
    executors that bind kernels ahead of time, e.g. a captured graph's plan); ``shapes``:
    the arguments' shapes go into the event (with ``record_shapes``)."""
    def timed(*args, **kwargs):
        profs = _recording
        if not profs:
            return fn(*args, **kwargs)
        ev = _begin(name, kind, profs, args if shapes else None)
        try:
            return fn(*args, **kwargs)
        finally:
            _end(ev)
    timed.__wrapped__ = fn
    return timed


def _wrap_vjp(label: str, vjp: Callable) -> Callable:
    # (a vjp's arguments are a tape node and gradients: no input shapes of the op's own)
    return wrap_callable(label, vjp, "backward", shapes=False)


class _WrapCache(dict):
    """An OpDef's kernel cache while profiling: the wrapped kernels; new entries
    (``kernel_for`` on a first use) also land in the original cache, kept for restore."""

    __slots__ = ("orig", "op")

    def __setitem__(self, backend, kernel):
        self.orig[backend] = kernel
        dict.__setitem__(self, backend, _wrap_for(self.op, backend, kernel))

    def pop(self, backend, *default):
        self.orig.pop(backend, None)
        return dict.pop(self, backend, *default)


def _wrap_for(op, backend: str, kernel: Callable) -> Callable:
    if backend == "vmap":   # a batching rule runs ops (recorded themselves) or op.cpu
        return kernel
    return _wrap_kernel(op.name, kernel, bool(op.view))


def _install() -> None:
    from ._core import _camel
    from .ops.registry import REGISTRY
    for op in list(REGISTRY.values()):
        orig_cache = op._cache
        cache = _WrapCache()
        cache.orig, cache.op = orig_cache, op
        for b, k in orig_cache.items():
            dict.__setitem__(cache, b, _wrap_for(op, b, k))
        orig_cpu = op.cpu
        cpu = cache.get("cpu") if orig_cache.get("cpu") is orig_cpu else None
        if cpu is None:
            cpu = _wrap_kernel(op.name, orig_cpu, bool(op.view))
        orig_vjp = op.vjp
        vjp = (None if orig_vjp is None else _wrap_vjp(
            f"autograd::engine::evaluate_function: {_camel(op.name)}Backward0", orig_vjp))
        op._cache, op.cpu = cache, cpu
        if vjp is not None:
            op.vjp = vjp
        _saved.append((op, orig_cache, cache, orig_cpu, cpu, orig_vjp, vjp))
    from .graph.capture import Function as GraphFunction
    orig_call = GraphFunction.__dict__["__call__"]

    # a replay runs the kernels the plan bound when it was compiled: one event per call
    def __call__(self, *args, **kwargs):
        if not _recording:
            return orig_call(self, *args, **kwargs)
        ev = _begin(f"tl.function: {self._name}", "function", _recording)
        try:
            return orig_call(self, *args, **kwargs)
        finally:
            _end(ev)
    __call__.__wrapped__ = orig_call
    GraphFunction.__call__ = __call__
    _saved.append((GraphFunction, orig_call, __call__))


def _restore() -> None:
    while _saved:
        item = _saved.pop()
        if len(item) == 3:
            cls, orig_call, call = item
            if cls.__dict__.get("__call__") is call:
                cls.__call__ = orig_call
            continue
        op, orig_cache, cache, orig_cpu, cpu, orig_vjp, vjp = item
        # (set_kernel or a new rule while profiling: theirs stays)
        if op._cache is cache:
            op._cache = orig_cache
        if op.cpu is cpu:
            op.cpu = orig_cpu
        if vjp is not None and op.vjp is vjp:
            op.vjp = orig_vjp


def _set_recording(prof: profile, on: bool) -> None:
    global _recording, _opts
    with _lock:
        rec = [p for p in _recording if p is not prof]
        if on:
            rec.append(prof)
        prof._recording = on
        _recording = tuple(rec)
        _opts = (any(p.record_shapes for p in rec), any(p.with_stack for p in rec),
                 any(p.profile_memory for p in rec))


def _acquire() -> None:
    global _installed
    with _lock:
        if _installed == 0:
            _install()
        _installed += 1


def _release() -> None:
    global _installed
    with _lock:
        _installed -= 1
        if _installed == 0:
            _restore()


# ------------------------------------------------------------------ public API

class record_function:  # noqa: N801  (PyTorch's name)
    """A labelled range (context manager or decorator): the ops inside are its children.

    >>> with tl.profiler.record_function("forward"):
    ...     y = model(x)
    """

    def __init__(self, name: str, args: str | None = None):
        if not isinstance(name, str):
            raise TypeError(f"record_function: name must be a str, got {type(name).__name__}")
        self.name = name
        self.args = args
        self._ev: FunctionEvent | None = None

    def __enter__(self) -> record_function:
        profs = _recording
        self._ev = _begin(self.name, "user_annotation", profs) if profs else None
        return self

    def __exit__(self, *exc) -> None:
        if self._ev is not None:
            _end(self._ev)
            self._ev = None

    def __call__(self, fn: Callable) -> Callable:
        name = self.name

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with record_function(name):     # a fresh range per call (recursion, threads)
                return fn(*args, **kwargs)
        return wrapper


class profile:  # noqa: N801  (PyTorch's name)
    """Record the ops run inside ``with profile() as prof:`` (see the module docstring).

    ``record_shapes``: each event keeps its inputs' shapes; ``profile_memory``: the bytes
    of each op's new outputs; ``with_stack``: the user's call stack per event.
    ``schedule`` / ``on_trace_ready`` / :meth:`step`: record chosen steps of a loop;
    ``on_trace_ready(prof)`` runs at the end of each recorded window (and on exit).
    """

    def __init__(self, *, activities: Iterable[ProfilerActivity] | None = None,
                 schedule: Callable[[int], ProfilerAction] | None = None,
                 on_trace_ready: Callable[[profile], Any] | None = None,
                 record_shapes: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_flops: bool = False,
                 with_modules: bool = False, experimental_config: Any = None,
                 enabled: bool = True):
        for a in (activities or ()):
            if not isinstance(a, ProfilerActivity):
                raise TypeError(f"profile: activities must be ProfilerActivity values "
                                f"(CPU, CUDA), got {a!r}")
        if with_flops or with_modules:
            raise NotImplementedError("profile: with_flops and with_modules are not supported "
                                      "by tensorlib's profiler; leave them False")
        if schedule is not None and not callable(schedule):
            raise TypeError("profile: schedule must be callable (see tl.profiler.schedule)")
        self.activities = set(activities or (ProfilerActivity.CPU,))
        self.schedule = schedule or _always_record
        self.record_steps = schedule is not None
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.enabled = enabled
        self.step_num = 0
        self.current_action = ProfilerAction.NONE
        self._recording = False
        self._started = False
        self._events: list = []
        self._results: EventList | None = None
        self._step_range: record_function | None = None

    # -- life cycle
    def __enter__(self) -> profile:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if not self.enabled or self._started:
            return
        self._started = True
        _acquire()
        self.step_num = 0
        self.current_action = self.schedule(0)
        self._transit(ProfilerAction.NONE, self.current_action)
        self._open_step()

    def stop(self) -> None:
        if not self._started:
            return
        self._close_step()
        try:
            self._transit(self.current_action, None)
        finally:
            self._started = False
            _release()

    def step(self) -> None:
        """Mark the end of a training step (advances the schedule)."""
        if not self._started:
            return
        self._close_step()
        prev = self.current_action
        self.step_num += 1
        self.current_action = self.schedule(self.step_num)
        self._transit(prev, self.current_action)
        self._open_step()

    def _open_step(self) -> None:
        if self.record_steps and self._recording:
            self._step_range = record_function(f"ProfilerStep#{self.step_num}").__enter__()

    def _close_step(self) -> None:
        if self._step_range is not None:
            self._step_range.__exit__(None, None, None)
            self._step_range = None

    def _transit(self, prev: ProfilerAction, cur: ProfilerAction | None) -> None:
        rec = (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)
        if prev in rec and (cur is None or prev is ProfilerAction.RECORD_AND_SAVE
                            or cur not in rec):
            self._stop_trace()
            if self.on_trace_ready is not None:
                self.on_trace_ready(self)
        if cur in rec and not self._recording:
            self._events = []
            _set_recording(self, True)

    def _stop_trace(self) -> None:
        _set_recording(self, False)
        self._results = EventList(sorted(self._events, key=lambda e: e.start_ns),
                                  profile_memory=self.profile_memory,
                                  with_shapes=self.record_shapes)

    # -- results
    def events(self) -> EventList:
        """The events of the last recorded window (so far, while it records)."""
        if self._recording:
            return EventList(sorted(self._events, key=lambda e: e.start_ns),
                             profile_memory=self.profile_memory,
                             with_shapes=self.record_shapes)
        return self._results if self._results is not None else EventList()

    def key_averages(self, group_by_input_shape: bool = False,
                     group_by_stack_n: int = 0) -> EventList:
        """The events summed per op name (and input shapes when asked)."""
        if group_by_input_shape and not self.record_shapes:
            raise ValueError("key_averages: group_by_input_shape needs "
                             "profile(record_shapes=True)")
        if group_by_stack_n and not self.with_stack:
            raise ValueError("key_averages: group_by_stack_n needs profile(with_stack=True)")
        return self.events().key_averages(group_by_input_shape, group_by_stack_n)

    def export_chrome_trace(self, path: str) -> None:
        """Write the events as Chrome trace JSON."""
        self.events().export_chrome_trace(path)

    def export_stacks(self, path: str, metric: str = "self_cpu_time_total") -> None:
        """Flame-graph input: one ``frame;frame;op value`` line per event (``with_stack``)."""
        if not self.with_stack:
            raise ValueError("export_stacks: needs profile(with_stack=True)")
        with open(path, "w") as f:
            for e in self.events():
                if e.stack:
                    frames = ";".join(reversed(e.stack))
                    f.write(f"{frames};{e.name} {int(getattr(e, metric))}\n")


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None) -> Callable:
    """An ``on_trace_ready`` that writes each window's Chrome trace into ``dir_name``."""
    def handler(prof: profile) -> None:
        os.makedirs(dir_name, exist_ok=True)
        worker = worker_name or f"{os.uname().nodename}_{os.getpid()}"
        prof.export_chrome_trace(os.path.join(
            dir_name, f"{worker}.{time.time_ns() // 1_000_000}.pt.trace.json"))
    return handler
