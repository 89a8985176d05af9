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

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _eligible(p, *others) -> bool:
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
    return p._device.type == "cuda"


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


def bias_corrections(p, step, b1: float, b2: float):
    """Adam's ``1 - b1**step`` and ``sqrt(1 - b2**step)``: floats for an int step, 0-d
    tensors in ``p``'s dtype and device for a step tensor (under graph capture)."""
    if isinstance(step, int):
        return 1.0 - b1 ** step, math.sqrt(1.0 - b2 ** step)
    return ((1.0 - b1 ** step).to(device=p.device, dtype=p.dtype),
            (1.0 - b2 ** step).sqrt().to(device=p.device, dtype=p.dtype))
