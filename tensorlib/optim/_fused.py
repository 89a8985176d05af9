"""Bridges to the fused in-place update kernels of ``tensorlib.nn._kernels``.

Each function returns True when a fused kernel did the update, False when the
caller should run the plain tensor-op update (other devices, dtypes, or no kernel).
"""
from __future__ import annotations


def sgd(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, state) -> bool:
    if p.device.type == "cuda":
        from ..cuda.optim import sgd as cuda_sgd
        return cuda_sgd(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, state)
    return False


def adam(p, g, m, v, step_size, b1, b2, eps, bc2_sqrt) -> bool:
    if p.device.type == "cuda":
        from ..cuda.optim import adam as cuda_adam
        return cuda_adam(p, g, m, v, step_size, b1, b2, eps, bc2_sqrt)
    return False
