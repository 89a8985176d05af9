"""Normalisation: batch_norm, layer_norm, group_norm (composites of core reductions).

Built from mean/var/rsqrt, so their backward (and grad of grad) comes from the
core ops' rules. Running statistics are updated in place, outside the tape.
"""
from __future__ import annotations

from .._tensor import Tensor
from ..autograd.mode import no_grad
from .nn_util import as_float_tensor, same_dtype


def _affine(y: Tensor, weight, bias, shape) -> Tensor:
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def batch_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, ...) per channel C with batch statistics (training) or the running
    ones (inference). In training, running_mean/var (when given) are updated in place
    with ``momentum`` (running_var gets the unbiased batch variance, as PyTorch)."""
    x = as_float_tensor(input, "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, ...), got shape {tuple(x.shape)}")
    C = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"batch_norm: {name} must have shape ({C},), got {tuple(t.shape)}")
    same_dtype("batch_norm", x, ("weight", weight), ("bias", bias))
    if eps <= 0:
        raise ValueError(f"batch_norm: eps must be positive, got {eps}")
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, C) + (1,) * (x.ndim - 2)
    if training:
        count = x.size // max(C, 1)
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel in training, "
                             f"got input of shape {tuple(x.shape)}")
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, correction=0, keepdims=True)
        if running_mean is not None or running_var is not None:
            with no_grad():
                m = float(momentum)
                if running_mean is not None:
                    running_mean.mul_(1.0 - m).add_(mean.detach().reshape(C).astype(
                        running_mean.dtype) * m)
                if running_var is not None:
                    unbiased = var.detach().reshape(C) * (count / (count - 1))
                    running_var.mul_(1.0 - m).add_(unbiased.astype(running_var.dtype) * m)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: inference (training=False) needs running_mean and "
                             "running_var")
        mean = running_mean.astype(x.dtype).reshape(shape)
        var = running_var.astype(x.dtype).reshape(shape)
    y = (x - mean) * (var + eps).rsqrt()
    return _affine(y, weight, bias, shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions."""
    x = as_float_tensor(input, "layer_norm")
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    ns = tuple(int(s) for s in normalized_shape)
    k = len(ns)
    if k == 0 or tuple(x.shape[x.ndim - k:]) != ns or x.ndim < k:
        raise ValueError(f"layer_norm: normalized_shape {ns} must match the last dimensions of "
                         f"the input's shape {tuple(x.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != ns:
            raise ValueError(f"layer_norm: {name} must have shape {ns}, got {tuple(t.shape)}")
    same_dtype("layer_norm", x, ("weight", weight), ("bias", bias))
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, correction=0, keepdims=True)
    y = (x - mean) * (var + eps).rsqrt()
    return _affine(y, weight, bias, ns)


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, ...) over groups of C // num_groups channels (and all positions)."""
    x = as_float_tensor(input, "group_norm")
    if x.ndim < 2:
        raise ValueError(f"group_norm: input must be (N, C, ...), got shape {tuple(x.shape)}")
    N, C = x.shape[:2]
    if not isinstance(num_groups, int) or num_groups < 1 or C % num_groups:
        raise ValueError(f"group_norm: num_groups={num_groups!r} must be a positive divisor of "
                         f"the {C} channels")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"group_norm: {name} must have shape ({C},), got {tuple(t.shape)}")
    same_dtype("group_norm", x, ("weight", weight), ("bias", bias))
    xg = x.reshape(N, num_groups, -1)
    mean = xg.mean(axis=2, keepdims=True)
    var = xg.var(axis=2, correction=0, keepdims=True)
    y = ((xg - mean) * (var + eps).rsqrt()).reshape(x.shape)
    return _affine(y, weight, bias, (1, C) + (1,) * (x.ndim - 2))
