"""vmap under graph capture: the graph records the *batched* ops, once, whatever the batch.

The batching rules compute on physical arrays below ``apply``, which the tracer never sees.
While a capture that met vmap runs, :class:`PhysicalTracer` stands in for its tracer: the
rules' kernel calls go through ``apply`` (no grad: autograd works on the logical ops above)
and are recorded as ordinary ops, and the logical ops on vmap devices (whose values live in
those physical arrays) are not. The tracer maps arrays to graph values, so a tensor leaving
vmap (its array made by a recorded op) is found without more bookkeeping.
"""
from __future__ import annotations

from ..graph.tracer import CaptureError
from .batched import BatchedArray


class Untraceable(CaptureError):
    """A batching rule did something the physical trace cannot record (an in-place write
    into a batched array, index arrays): inside the vmap call, vmap falls back to one copy
    of the function per example."""

    def __init__(self, what: str):
        super().__init__(f"vmap under graph capture: {what} on batched values cannot be "
                         "recorded as batched ops; call vmap eagerly, or capture a function "
                         "that does not differentiate through it")


def _on_vmap(ts) -> bool:
    for t in ts:
        if t._device.type == "vmap":
            return True
    return False


class PhysicalTracer:
    """The capture's tracer, skipping ops on vmap devices (see the module docstring)."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def record(self, op, inputs, attrs, result) -> None:
        outs = result if type(result) is tuple else (result,)
        if _on_vmap(inputs) or _on_vmap(outs):
            return
        self.inner.record(op, inputs, attrs, result)

    def note_fresh(self, t) -> None:
        if type(t._data) is not BatchedArray:
            self.inner.note_fresh(t)

    def on_read(self, t, what: str) -> None:
        if t._device.type != "vmap":
            self.inner.on_read(t, what)

    def _vmap_guard(name):
        def method(self, t, *args, **kwargs):
            if t._device.type == "vmap":
                raise Untraceable(name)
            return getattr(self.inner, name)(t, *args, **kwargs)
        return method

    rebind = _vmap_guard("rebind")
    restamp = _vmap_guard("restamp")
    on_set_data = _vmap_guard("on_set_data")
    mark_transient = _vmap_guard("mark_transient")
    del _vmap_guard


def install():
    """Put a :class:`PhysicalTracer` in place of the active capture's tracer (it stays for
    the rest of the capture: backward passes through vmap run after the call)."""
    from ..autograd.mode import state
    if type(state.tracer) is not PhysicalTracer:
        state.tracer = PhysicalTracer(state.tracer)
    return state.tracer


def note(t) -> None:
    """A tensor entering vmap (an argument or a lifted closure tensor): bound in the graph
    first, so the rules' kernel calls find its array."""
    from .phys import TRACE
    tr = TRACE.tracer
    if tr is not None and type(t._data) is not BatchedArray:
        tr.inner.value_of(t)


def alias(view, src) -> None:
    """Bind ``view`` (a new array over ``src``'s memory: vmap's read-only view of an input
    that requires grad) to the graph value ``src`` stands for, so the rules' kernel calls
    record ops on it from that value, not its trace-time contents as a constant."""
    from .._core import make_tensor
    from .._device import CPU
    from .phys import TRACE
    tr = TRACE.tracer.inner
    t = tr._carrier.get(id(src))
    if t is not None and t._data is src:
        tr.bind(make_tensor(view, CPU, False, None, 0), tr.value_of(t))


def _has_array(v) -> bool:
    if type(v) in (tuple, list):
        return any(_has_array(x) for x in v)
    return hasattr(v, "dtype") and hasattr(v, "shape")


def traced_call(op, arrays, attrs):
    """``op`` on physical (NumPy) arrays, recorded: each array as the tensor the trace bound
    it to, or a constant (a rule's own array: an index pattern, ones)."""
    from .._core import apply, make_tensor
    from .._device import CPU
    from ..autograd.mode import no_grad
    from .phys import TRACE
    tr = TRACE.tracer.inner
    if any(_has_array(v) for v in attrs.values()):
        raise Untraceable(op.name)      # arrays in attributes (indices): not recorded
    ins = []
    for a in arrays:
        t = tr._carrier.get(id(a))
        if t is None or t._data is not a:
            if hasattr(a, "__cuda_array_interface__"):
                raise Untraceable(op.name)
            t = make_tensor(a, CPU, False, None, 0)
            tr.value_of(t)
        ins.append(t)
    with no_grad():
        out = apply(op, *ins, **attrs)
    if type(out) is tuple:
        return tuple(o._data for o in out)
    return out._data
