"""Moving tensors into and out of a vmap level, as recorded (differentiable) ops.

- ``wrap``: an input's ``in_dim`` becomes the level's batch dim (vmap's entry);
- ``unwrap``: the batch dim comes back out at ``out_dim`` (vmap's exit; a value that is
  not batched at the level is expanded);
- ``lift``: a tensor from outside joins the level unbatched (a closure weight, a tensor
  made inside the function, an argument with in_dim None); its gradient sums the examples'.

Each is the adjoint of another (wrap/unwrap, lift/sum over the batch), so gradients flow
through vmap both ways: ``grad(vmap(f))`` and ``vmap(grad(f))``. The ops are ``OpDef``s
outside the registry (they are not ops a user calls, and have no graph or ONNX form).

The array functions reach through newer levels: a backward pass may run under a vmap
that began after the one whose ops it goes through (``jacrev`` of a function that calls
vmap), and then the newer level's batch dim stays outermost.
"""
from __future__ import annotations

import numpy as np

from .._apply import apply
from .._device import Device
from ..ops.registry import OpDef
from . import phys as P
from .batched import BatchedArray, device_of
from .capture import alias, note


def _dev_level(dev: Device) -> int:
    return dev.index if dev.type == "vmap" else 0


def _base(dev: Device) -> Device:
    return dev.base if dev.type == "vmap" else dev


# levels whose vmap'd function is running now (their backward passes are per example)
ACTIVE: set[int] = set()


# --- the array functions ---------------------------------------------------------------------
def wrap_array(x, in_dim: int, dev: Device, readonly: bool = False):
    if type(x) is BatchedArray and x.dev.index > dev.index:
        return BatchedArray(wrap_array(x.phys, in_dim + (x.bdim is not None), dev, readonly),
                            x.bdim, x.dev)
    p = P.moveaxis(x, in_dim, 0)
    if readonly and isinstance(p, np.ndarray):
        # the input's own memory: an in-place op inside must not change a tensor autograd
        # reads (PyTorch refuses it too: a view of a leaf that requires grad)
        v = p.view()
        v.flags.writeable = False
        if P.TRACE.tracer is not None:
            # a new array the trace has not seen: unbound, the rules' kernel calls would
            # record its trace-time values as a constant, and replays ignore later updates
            alias(v, p)
        p = v
    return BatchedArray(p, 0, dev)


def _expand(p, dim: int, size: int):
    p = P.expand_dims(p, (dim,))
    shape = list(p.shape)
    shape[dim] = size
    return P.broadcast_to(p, tuple(shape))


def unwrap_array(y, out_dim: int, dev: Device, size: int):
    if type(y) is BatchedArray:
        if y.dev.index > dev.index:
            return BatchedArray(unwrap_array(y.phys, out_dim + (y.bdim is not None), dev,
                                             size), y.bdim, y.dev)
        if y.dev is dev:
            return P.moveaxis(y.phys, 0, out_dim) if y.bdim is not None else \
                _expand(P.real(y.phys), out_dim, size)
    return _expand(y, out_dim, size)


def lift_array(x, dev: Device):
    if type(x) is BatchedArray:
        if x.dev is dev:
            return x
        if x.dev.index > dev.index:
            return BatchedArray(lift_array(x.phys, dev), x.bdim, x.dev)
    return BatchedArray(x, None, dev)


def unlift_array(g, lo: int, hi: int):
    """``g`` with the batch dims of the levels in (lo, hi] summed out."""
    if type(g) is not BatchedArray or g.dev.index <= lo:
        return g
    if g.dev.index > hi:
        return BatchedArray(unlift_array(g.phys, lo, hi), g.bdim, g.dev)
    inner = g.phys if g.bdim is None else P.sum_axes(g.phys, (0,))
    return unlift_array(P.real(inner), lo, hi)


# --- where the results live (apply needs the output device before the kernel runs) ----------
def _wrap_dev(x, dev):
    return x.dev if type(x) is BatchedArray and x.dev.index > dev.index else dev


def _unwrap_dev(y, dev, base):
    if type(y) is BatchedArray:
        if y.dev.index > dev.index:
            return y.dev
        if y.dev is dev:
            return _dev_of(y.phys, base)
    return _dev_of(y, base)


def _unlift_dev(g, lo, hi, base):
    while type(g) is BatchedArray and lo < g.dev.index <= hi:
        g = g.phys
    return _dev_of(g, base)


def _dev_of(a, base: Device) -> Device:
    if type(a) is P.Outer:      # (factors on the host: not computed to be asked where)
        a = a.u
    return a.dev if type(a) is BatchedArray else base if base.type != "cpu" else device_of(a)


# --- the ops ----------------------------------------------------------------------------------
def _op(name, kernel, vjp) -> OpDef:
    k = {"cpu": kernel, "cuda": kernel, "vmap": kernel}
    op = OpDef(name, kernels=k, vjp=vjp, saves=False, doc=f"tl.vmap's {name} (internal)")
    op.out_device = lambda attrs: attrs["out"]
    op.complex = "holomorphic"      # data movement: the real rule holds for complex values
    return op


WRAP = _op("vmap_wrap", lambda x, *, in_dim, dev, size, readonly, out: wrap_array(
    x, in_dim, dev, readonly),
           lambda n, g: (unwrap(g, n.attrs["in_dim"], n.attrs["dev"], n.attrs["size"]),))


def _unwrap_vjp(n, g):
    dim, dev = n.attrs["out_dim"], n.attrs["dev"]
    if n.attrs["absent"]:       # it was expanded: each example's gradient adds up
        return (g.sum(axis=dim),)
    return (wrap(g, dim, dev, n.attrs["size"]),)


UNWRAP = _op("vmap_unwrap",
             lambda y, *, out_dim, dev, size, absent, out: unwrap_array(y, out_dim, dev, size),
             _unwrap_vjp)
def _lift_vjp(n, g):
    # the lift added level ``dev`` alone (or nothing, where the input had it): sum exactly
    # that level's batch dim. The input may live at a *newer* level than ``dev`` (lift run
    # by a backward pass under a later vmap), so its device's level is no lower bound.
    dev = n.attrs["dev"]
    if dev.index in ACTIVE:
        # a backward pass run inside the vmap'd function (grad/vjp/jacrev of a closure
        # tensor, per example): each example's gradient is its own, as torch.func's level
        # semantics give; only a backward from outside the vmap sums the examples'
        return (g,)
    return (unlift(g, dev.index - n.attrs["added"], dev),)


LIFT = _op("vmap_lift", lambda x, *, dev, added, out: lift_array(x, dev), _lift_vjp)
UNLIFT = _op("vmap_unlift", lambda g, *, lo, hi, dev, out: unlift_array(g, lo, hi),
             lambda n, g: (lift(g, n.attrs["dev"]),))


# --- on tensors -------------------------------------------------------------------------------
def wrap(x, in_dim: int, dev: Device, size: int):
    note(x)
    return apply(WRAP, x, in_dim=in_dim, dev=dev, size=size, readonly=x._rg,
                 out=_wrap_dev(x._data, dev))


def unwrap(y, out_dim: int, dev: Device, size: int):
    if y._device.type != "vmap":
        # the same for every example and never at a level (a closure tensor returned, or
        # a function of closure tensors alone): registry ops, which a capture can record
        shape = list(y.shape)
        shape.insert(out_dim, size)
        return y.unsqueeze(out_dim).expand(*shape)
    return apply(UNWRAP, y, out_dim=out_dim, dev=dev, size=size,
                 absent=not _has_level(y._data, dev), out=_unwrap_dev(y._data, dev, dev.base))


def _has_level(a, dev: Device) -> bool:
    """Whether ``a`` is a value of level ``dev`` (batched there or not)."""
    while type(a) is BatchedArray and a.dev.index >= dev.index:
        if a.dev is dev:
            return True
        a = a.phys
    return False


def lift(x, dev: Device):
    if x._device is dev:
        return x
    note(x)
    return apply(LIFT, x, dev=dev, added=not _has_level(x._data, dev),
                 out=_wrap_dev(x._data, dev))


def unlift(g, lo: int, dev: Device):
    hi = dev.index
    return apply(UNLIFT, g, lo=lo, hi=hi, dev=dev, out=_unlift_dev(g._data, lo, hi, dev.base))


def join_level(op, inputs) -> list:
    """``_same_device`` inside vmap: every input brought to the newest level among them."""
    top = max((t._device for t in inputs if t._device.type == "vmap"), key=lambda d: d.index)
    out = []
    for t in inputs:
        d = t._device
        if d is not top and (_dev_level(d) >= top.index or _base(d) is not top.base):
            from .._apply import _device_error
            raise _device_error(op, inputs)
        out.append(lift(t, top))
    return out
