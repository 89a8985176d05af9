"""In-place optimizer updates backed by the Cython kernels in ``tensorlib._ops``.

For the optimizers (tensorlib.optim): each call checks the tensors at the Python
boundary (same shape, float32/float64, one dtype, C-contiguous, on the CPU), then
updates ``param`` (and the state buffers) in place and bumps the tensors' version
counters, as any in-place op does. They run outside the tape (no gradient).
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..autograd.mode import no_grad, state

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check(op: str, param: Tensor, *others: tuple[str, Tensor]) -> list[np.ndarray]:
    arrays = []
    for name, t in (("param", param),) + others:
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        a = t._data
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} is on {t.device}; these kernels run on the CPU")
        if a.dtype not in _FLOATS or a.dtype != param._data.dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype}; every tensor must be float32 or "
                            f"float64, like param ({param._data.dtype})")
        if a.shape != param._data.shape:
            raise ValueError(f"{op}: {name} has shape {a.shape}, param has {param._data.shape}")
        if not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(f"{op}: {name} must be C-contiguous and writeable")
        arrays.append(a.reshape(-1))
    return arrays


def sgd_update_(param: Tensor, grad: Tensor, momentum_buffer: Tensor | None = None, *,
                lr: float, momentum: float = 0.0, dampening: float = 0.0,
                weight_decay: float = 0.0, nesterov: bool = False,
                first_step: bool = False) -> None:
    """PyTorch's SGD step in place: ``param -= lr * d`` where d is the gradient plus
    weight decay, through the momentum buffer when ``momentum`` != 0 (``first_step``
    initialises the buffer with d, as PyTorch does on a parameter's first step)."""
    from .. import _ops
    from .._hyper import enabled, hyper_value
    if enabled(momentum) and momentum_buffer is None:
        raise ValueError("sgd_update_: momentum != 0 needs a momentum_buffer tensor")
    if nesterov and (hyper_value(momentum) <= 0 or dampening != 0):
        raise ValueError("sgd_update_: nesterov needs momentum > 0 and zero dampening")
    buf_t = momentum_buffer if momentum_buffer is not None else param
    p, g, buf = _check("sgd_update_", param, ("grad", grad), ("momentum_buffer", buf_t))
    if state.tracer is not None:   # graph capture: the same update as recorded tensor ops
        _sgd_ops(param, grad, momentum_buffer, lr, momentum, dampening, weight_decay,
                 nesterov, first_step)
        return
    if p.size:
        _ops.sgd_update(p, g, buf, float(lr), float(momentum), float(dampening),
                        float(weight_decay), bool(nesterov), bool(first_step))
    param._version[0] += 1
    if momentum_buffer is not None:
        momentum_buffer._version[0] += 1


def adam_update_(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, *,
                 step: int, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False) -> None:
    """One Adam step in place (``decoupled=True``: AdamW's weight decay). ``step`` counts
    from 1 and sets the bias corrections 1 - beta**step."""
    from .. import _ops
    traced = isinstance(step, Tensor) and state.tracer is not None
    if not traced and (not isinstance(step, (int, np.integer)) or step < 1):
        raise ValueError(f"adam_update_: step must be an int >= 1, got {step!r}")
    from .._hyper import hyper_value
    for name, b in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= hyper_value(b) < 1.0:
            raise ValueError(f"adam_update_: {name} must be in [0, 1), got {b}")
    p, g, m, v = _check("adam_update_", param, ("grad", grad), ("exp_avg", exp_avg),
                        ("exp_avg_sq", exp_avg_sq))
    if state.tracer is not None:   # graph capture: the same update as recorded tensor ops
        _adam_ops(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps,
                  weight_decay, decoupled)
        return
    if p.size:
        _ops.adam_update(p, g, m, v, float(lr), float(beta1), float(beta2), float(eps),
                         float(weight_decay), bool(decoupled), 1.0 - beta1 ** step,
                         1.0 - beta2 ** step)
    for t in (param, exp_avg, exp_avg_sq):
        t._version[0] += 1


# Under graph capture the kernels above would change the storage behind the tracer's
# back (the graph would replay without the update), so the same math runs as tensor
# ops, which capture records; the graph's fusion pass maps the plain SGD chain back
# onto the Cython kernel.
def _sgd_ops(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first_step):
    from .._hyper import enabled
    with no_grad():
        d = g
        if weight_decay:
            d = d + weight_decay * p
        if enabled(momentum):
            if first_step:
                buf.copy_(d)
            else:
                buf.mul_(momentum)
                buf.add_(d * (1.0 - dampening) if dampening else d)
            d = d + momentum * buf if nesterov else buf
        p.sub_(lr * d)


def _adam_ops(p, g, m, v, step, lr, beta1, beta2, eps, weight_decay, decoupled):
    from ..optim._fused import bias_corrections
    with no_grad():
        d = g
        if weight_decay and decoupled:
            p.mul_(1.0 - lr * weight_decay)
        elif weight_decay:
            d = d + weight_decay * p
        m.mul_(beta1)
        m.add_((1.0 - beta1) * d)
        v.mul_(beta2)
        v.add_((1.0 - beta2) * d * d)
        bc1, bc2_sqrt = bias_corrections(p, step, beta1, beta2)
        denom = v.sqrt() * (1.0 / bc2_sqrt) + eps
        p.sub_((lr / bc1) * m / denom)
