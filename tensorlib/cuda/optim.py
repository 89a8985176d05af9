"""The CUDA side of ``tensorlib.optim._fused``: SGD and Adam steps as one kernel each.

Each function updates a CUDA parameter (and its state) in place and returns True, or
returns False when the caller's tensor-op update must run instead (graph capture,
dtypes other than float32/float64, mismatched or non-contiguous state).
"""
from __future__ import annotations

import numpy as np

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _usable(p, g, *state) -> bool:
    from ..autograd.mode import state as mode
    if mode.tracer is not None:   # graph capture must record the update as tensor ops
        return False
    a = p._data
    if a.dtype not in _FLOATS or not a.flags.c_contiguous or g.device != p.device:
        return False
    if tuple(g.shape) != a.shape or g._data.dtype.kind != "f":
        return False
    for t in state:
        if t is not None and (t.device != p.device or t._data.dtype != a.dtype
                              or t._data.shape != a.shape or not t._data.flags.c_contiguous):
            return False
    return True


def sgd(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, state) -> bool:
    """``tensorlib.optim.SGD``'s step for one parameter; creates the momentum buffer."""
    if not _usable(p, g, buf):
        return False
    from ..creation import zeros_like
    from .kernels import sgd_update_
    first = False
    if momentum and buf is None:
        buf = state["momentum_buffer"] = zeros_like(p)
        first = True
    sgd_update_(p._data, g._data, buf._data if momentum else None, lr, momentum, dampening,
                weight_decay, nesterov, first)
    p._version[0] += 1
    if momentum:
        buf._version[0] += 1
    return True


def adam(p, g, m, v, step, lr, b1, b2, eps, weight_decay, decoupled) -> bool:
    """``tensorlib.optim.Adam``/``AdamW``'s step number ``step`` (an int from 1) for one
    parameter: weight decay (decoupled for AdamW), the moment updates and the step."""
    if not isinstance(step, (int, np.integer)) or not _usable(p, g, m, v):
        return False
    from .kernels import adam_update_
    adam_update_(p._data, g._data, m._data, v._data, int(step), lr, b1, b2, eps,
                 weight_decay, decoupled)
    for t in (p, m, v):
        t._version[0] += 1
    return True
