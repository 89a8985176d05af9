"""Gradient utilities shared by modules and optimizers: clipping, zeroing."""
from __future__ import annotations

import math
import types
import warnings
from collections.abc import Iterable

import numpy as np

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


def get_total_norm(tensors: Iterable[Tensor] | Tensor, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """The ``norm_type``-norm of all of ``tensors`` together, as if concatenated into one
    vector (the norm of the tensors' norms): a 0-d tensor, no autograd record. ``foreach``
    is accepted (PyTorch's speed hint) and does not change the result.

    >>> total = tl.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    """
    del foreach
    return _total_norm(tensors, norm_type, error_if_nonfinite, "get_total_norm")


def _total_norm(tensors, norm_type, error_if_nonfinite: bool, who: str) -> Tensor:
    from ...creation import tensor
    from ...ops.shape import stack
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = [t for t in tensors if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return tensor(0.0)
    with no_grad():
        norms = [_norm(t.detach(), norm_type) for t in tensors]
        dev = norms[0].device
        norms = [n.to(dev).astype(norms[0].dtype) for n in norms]
        total = _norm(stack(norms), norm_type)
        if error_if_nonfinite:   # reads the value (a GPU waits here)
            # a graph node under capture, so that each replay checks its own norm
            from ...ops.value_guard import finite_guard
            total = finite_guard(total, f"{who}: the total norm of order {norm_type} of the "
                                 "gradients is {value}; set error_if_nonfinite=False to clip "
                                 "anyway")
    return total


def _norm(t: Tensor, norm_type: float) -> Tensor:
    from ...ops.reduction import norm
    if t.is_sparse:     # nn.Embedding(sparse=True): the norm of its summed (coalesced) rows
        t = t.coalesce()._values()
    if norm_type > 0 or norm_type == -math.inf:
        return norm(t, ord=norm_type)
    from ...ops.decompositions import vector_norm
    return vector_norm(t, ord=norm_type)


def clip_grads_with_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                          total_norm: Tensor, foreach: bool | None = None) -> None:
    """Scale the gradients of ``parameters`` by ``max_norm / (total_norm + 1e-6)`` when that
    is below 1 (``total_norm`` computed beforehand, e.g. by :func:`get_total_norm`, maybe
    over more parameters than these). ``foreach`` is accepted and changes nothing.

    >>> total = tl.nn.utils.get_total_norm([p.grad for p in params])
    >>> tl.nn.utils.clip_grads_with_norm_(params, 1.0, total)
    """
    from ...creation import tensor
    del foreach
    grads = _grads(parameters)
    if not grads:
        return
    if not isinstance(total_norm, Tensor):
        total_norm = tensor(float(total_norm))
    with no_grad():
        # the scale stays a tensor, as in PyTorch: no host read, so a GPU does not wait and a
        # captured step recomputes it on every replay (multiplying by exactly 1.0 when the
        # norm is within max_norm changes nothing)
        coef = (float(max_norm) / (total_norm + 1e-6)).clip(max=1.0)
        dev = coef.device
        # a non-finite norm (a GradScaler overflow step) makes inf * 0 = NaN, as PyTorch,
        # without NumPy's warning
        with np.errstate(invalid="ignore", over="ignore"):
            for g in grads:
                g.mul_(coef if g.device == dev and g.dtype == coef.dtype
                       else coef.to(g.device).astype(g.dtype))


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most
    ``max_norm``. Returns the norm before clipping (a 0-d tensor). ``foreach`` (PyTorch's
    speed hint) is accepted and does not change the result.

    >>> total = tl.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)
        if is_generator and not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will "
                          "occur.", stacklevel=2)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    total = _total_norm(_grads(parameters), norm_type, error_if_nonfinite, "clip_grad_norm_")
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place.
    ``foreach`` (PyTorch's speed hint) is accepted and does not change the result."""
    del foreach
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-float(clip_value), float(clip_value))
