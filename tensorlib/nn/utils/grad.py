"""Gradient utilities shared by modules and optimizers: clipping, zeroing."""
from __future__ import annotations

import math
from collections.abc import Iterable

from ..._tensor import Tensor
from ...autograd.mode import no_grad


def _grads(parameters) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def zero_grad_(parameters: Iterable[Tensor], set_to_none: bool = True) -> None:
    """Drop (``set_to_none``) or zero the ``.grad`` of every parameter."""
    for p in parameters:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            p.grad = p.grad.detach()
            p.grad.zero_()


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most
    ``max_norm``. Returns the norm before clipping (a 0-d tensor).

    >>> total = tl.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    """
    from ...creation import tensor
    from ...ops.reduction import norm
    from ...ops.shape import stack
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    if not grads:
        return tensor(0.0)
    with no_grad():
        norms = [norm(g.detach(), ord=norm_type) for g in grads]
        dev = norms[0].device
        norms = [n.to(dev).astype(norms[0].dtype) for n in norms]
        total = norm(stack(norms), ord=norm_type)
        if error_if_nonfinite:   # reads the value (a GPU waits here; capture refuses it)
            t = float(total)
            if not math.isfinite(t):
                raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of "
                                   f"the gradients is {t}; set error_if_nonfinite=False to clip "
                                   "anyway")
        # the scale stays a tensor, as in PyTorch: no host read, so a GPU does not wait and a
        # captured step recomputes it on every replay (multiplying by exactly 1.0 when the
        # norm is within max_norm changes nothing)
        coef = (float(max_norm) / (total + 1e-6)).clip(max=1.0)
        for g in grads:
            g.mul_(coef if g.device == dev and g.dtype == coef.dtype
                   else coef.to(g.device).astype(g.dtype))
    return total


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place."""
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-float(clip_value), float(clip_value))
