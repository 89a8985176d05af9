"""Bridges to the fused in-place update kernels: ``tensorlib.nn._kernels`` (Cython) for CPU
parameters, ``tensorlib.cuda.optim`` (one CUDA kernel per parameter) for CUDA ones.

Each function returns True when a fused kernel did the whole update, False when the
caller should run the plain tensor-op update (other dtypes, mixed dtypes, non-contiguous
storage, graph capture).
"""
from __future__ import annotations

import math

import numpy as np

from .. import creation
from ..autograd.mode import state as _mode

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _eligible(p, *others) -> bool:
    if _mode.fwd_ad is not None:    # a dual level: the tensor-op update carries the tangents
        return False
    a = p._data
    if type(a) is not np.ndarray or a.dtype not in _FLOATS or not a.flags.c_contiguous:
        return False
    for t in others:
        b = t._data
        if type(b) is not np.ndarray or b.dtype != a.dtype or b.shape != a.shape \
                or not b.flags.c_contiguous or not b.flags.writeable:
            return False
    return a.flags.writeable


def _on_cuda(p) -> bool:
    return p._device.type == "cuda" and _mode.fwd_ad is None


def sgd(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, state) -> bool:
    if _on_cuda(p):
        from ..cuda import optim as cuda_optim
        return cuda_optim.sgd(p, g, buf, lr, momentum, dampening, weight_decay, nesterov,
                              state)
    from ..nn import _kernels
    from .._hyper import enabled
    first = False
    if enabled(momentum) and buf is None:
        if not _eligible(p, g):
            return False
        buf = state["momentum_buffer"] = creation.zeros_like(p)
        first = True
    if not _eligible(p, g, *([buf] if buf is not None else [])):
        return False
    _kernels.sgd_update_(p, g, buf if enabled(momentum) else None, lr=lr, momentum=momentum,
                         dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                         first_step=first)
    return True


def _fits(a, b) -> bool:
    """Whether array ``b`` can go with parameter array ``a`` into a fused kernel."""
    if type(b) is not np.ndarray or b.shape != a.shape or b.dtype != a.dtype:
        return False
    f = b.flags         # one flags object (each ``.flags`` makes a new one)
    return f.c_contiguous and f.writeable


def _cpu_param(p, g) -> bool:
    """Whether eager CPU parameter ``p`` (float32/float64, C-contiguous, writeable) and its
    dense gradient ``g`` can go into a fused kernel."""
    a = p._data
    if type(a) is not np.ndarray or a.dtype not in _FLOATS or p._device.type != "cpu" \
            or g._device is not p._device:
        return False
    f = a.flags
    return f.c_contiguous and f.writeable and _fits(a, g._data)


def sgd_foreach(params, state, lr, momentum, dampening, weight_decay, nesterov) -> list:
    """The SGD step of every eager CPU parameter of ``params`` that has a gradient, each
    through the fused kernel in one tight loop (the per-parameter bridge above cost ~20 us
    a parameter, 5x PyTorch's plain step). Each parameter gets its state dict on its first
    step, as :meth:`Optimizer._with_grads` gives it. Returns the parameters it left to the
    caller's per-tensor path (other dtypes or devices, non-contiguous storage, a gradient
    that does not match its parameter, which that path reports)."""
    from .. import _ops
    use_buf = bool(momentum)
    lr, momentum, dampening = float(lr), float(momentum), float(dampening)
    weight_decay, nesterov = float(weight_decay), bool(nesterov)
    upd = _ops.sgd_update
    rest = []
    for p in params:
        g = p.grad
        if g is None:
            continue
        st = state.get(p)
        if st is None:
            st = state[p] = {}
        if not _cpu_param(p, g):
            rest.append(p)
            continue
        a, b = p._data, g._data
        first = False
        if use_buf:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = creation.zeros_like(p)
                first = True
            elif not _fits(a, buf._data):
                rest.append(p)
                continue
        if a.size:
            flat = a.reshape(-1)
            upd(flat, b.reshape(-1), buf._data.reshape(-1) if use_buf else flat, lr, momentum,
                dampening, weight_decay, nesterov, first)
        p._version[0] += 1
        if use_buf:
            buf._version[0] += 1
    return rest


def _zero_storage(g) -> None:
    """Zero the memory ``g`` reads, in place as PyTorch's ``grad.zero_()``: an ``expand()``
    view (read-only in NumPy) through a writable view of its base, so aliases see it too;
    storage that cannot be written at all gets fresh zeros (the Tensor object is kept)."""
    a = g._data
    if a.flags.writeable:
        a.fill(0)
        return
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    if root.flags.writeable:
        off = a.__array_interface__["data"][0] - root.__array_interface__["data"][0]
        try:
            np.ndarray(a.shape, a.dtype, buffer=root, offset=off, strides=a.strides).fill(0)
            return
        except (TypeError, ValueError, BufferError):    # root not exportable as a buffer
            pass
    g._data = np.zeros(a.shape, a.dtype)


def zero_grads(params, set_to_none: bool) -> None:
    """``zero_grad`` of ``params``: eagerly, each CPU gradient is zeroed in place with one
    NumPy call, the same Tensor object kept, as PyTorch's (a gradient with history is
    detached in place first; an ``expand()``-ed gradient is zeroed through its base); the
    rest (graph capture, other devices, a view with history) goes through
    ``nn.utils.zero_grad_``."""
    from ..nn.utils import zero_grad_
    if set_to_none or _mode.tracer is not None:
        zero_grad_(params, set_to_none)
        return
    rest = []
    for p in params:
        g = p.grad
        if g is None:
            continue
        if type(g._data) is not np.ndarray or (g._rg and g._base is not None):
            rest.append(p)
            continue
        if g._rg:
            g.detach_()
        _zero_storage(g)
        g._version[0] += 1
    if rest:
        zero_grad_(rest, False)


def eager_arrays(p, g, *states) -> bool:
    """Whether an optimizer may run its update on the NumPy arrays of ``p``, ``g`` and its
    ``states`` directly (eager, CPU float32/float64, one dtype and shape, writeable): the
    same ufuncs in the same order as its tensor-op update, with the Python numbers cast to
    the parameter's dtype as tensor ops cast weak scalars, so the values are identical,
    without a Tensor and a trip through ``apply`` per intermediate."""
    return (_mode.tracer is None and p._device.type == "cpu" and g._device is p._device
            and _eligible(p, g, *states))


def adam(p, g, m, v, step, lr, b1, b2, eps, weight_decay, decoupled) -> bool:
    if _on_cuda(p):
        from ..cuda import optim as cuda_optim
        return cuda_optim.adam(p, g, m, v, step, lr, b1, b2, eps, weight_decay, decoupled)
    if not _eligible(p, g, m, v):
        return False
    from ..nn import _kernels
    _kernels.adam_update_(p, g, m, v, step=step, lr=lr, beta1=b1, beta2=b2, eps=eps,
                          weight_decay=weight_decay, decoupled=decoupled)
    return True


def adam_foreach(params, state, init, count_step, lr, b1, b2, eps, weight_decay, decoupled,
                 refusal: str) -> list:
    """The eager Adam/AdamW step of every CPU parameter of ``params`` that has a gradient,
    each through the fused kernel in one tight loop (the per-parameter path, with its
    checks repeated in ``adam_update_``, cost ~14 us of CPU a parameter, the kernel call
    ~2 us of it; this loop ~5 us). A first pass refuses a sparse gradient with ``refusal``
    before any parameter or state changes (``Optimizer._check_grad_layout``'s check, folded
    into this loop); a parameter gets ``init(param)`` as its state on its first step and its count
    advanced as ``count_step`` does. Returns the parameters it left to the caller's
    per-tensor path (other dtypes or devices, non-contiguous storage, a gradient that does
    not match its parameter, which that path reports), with their state untouched."""
    from .. import _ops
    todo = []
    for p in params:
        g = p.grad
        if g is not None:
            if g.is_sparse:
                raise RuntimeError(refusal)
            todo.append((p, g))
    lr, b1, b2, eps = float(lr), float(b1), float(b2), float(eps)
    weight_decay, decoupled = float(weight_decay), bool(decoupled)
    upd = _ops.adam_update
    f64 = np.dtype(np.float64)
    rest = []
    for p, g in todo:
        if not _cpu_param(p, g):
            rest.append(p)
            continue
        a, b = p._data, g._data
        st = state.get(p)
        if st is None:
            st = state[p] = init(p)
        m, v = st.get("exp_avg"), st.get("exp_avg_sq")
        if m is None or v is None or not _fits(a, m._data) or not _fits(a, v._data):
            rest.append(p)
            continue
        t = st.get("step")
        c = None if t is None else getattr(t, "_data", None)
        if type(c) is np.ndarray and c.dtype == f64 and not c.shape and c.flags.writeable \
                and not t._rg:
            # count_step's in-place add, without its call (np.add on a 0-d array costs more
            # than the whole kernel call of a small parameter); the same float64 value
            n = c.item() + 1.0
            c[()] = n
            t._version[0] += 1
            step = int(n)
        else:
            step = count_step(st)
        if a.size:
            upd(a.reshape(-1), b.reshape(-1), m._data.reshape(-1), v._data.reshape(-1),
                lr, b1, b2, eps, weight_decay, decoupled, 1.0 - b1 ** step, 1.0 - b2 ** step)
        p._version[0] += 1
        m._version[0] += 1
        v._version[0] += 1
    return rest


def bias_corrections(p, step, b1: float, b2: float):
    """Adam's ``1 - b1**step`` and ``sqrt(1 - b2**step)``: floats for an int step, 0-d
    tensors in ``p``'s dtype and device for a step tensor (under graph capture)."""
    if isinstance(step, int):
        return 1.0 - b1 ** step, math.sqrt(1.0 - b2 ** step)
    return ((1.0 - b1 ** step).to(device=p.device, dtype=p.dtype),
            (1.0 - b2 ** step).sqrt().to(device=p.device, dtype=p.dtype))
