"""KL divergences KL(p || q) between distributions, looked up by their types."""
from __future__ import annotations

import math
from collections.abc import Callable

from .._tensor import Tensor
from ..ops.elementwise import log, where
from .base import Distribution
from .continuous import Normal, Uniform
from .discrete import Bernoulli, Categorical, OneHotCategorical
from .independent import Independent, sum_rightmost

_KL: dict[tuple[type, type], Callable] = {}


def register_kl(type_p: type, type_q: type):
    """Decorator: register ``fn(p, q)`` as KL(p || q) for these two distribution types."""
    def deco(fn):
        _KL[(type_p, type_q)] = fn
        return fn
    return deco


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """KL(p || q), elementwise over the batch shape; differentiable in both."""
    for tp in type(p).__mro__:
        for tq in type(q).__mro__:
            fn = _KL.get((tp, tq))
            if fn is not None:
                return fn(p, q)
    raise NotImplementedError(f"kl_divergence: no rule for {type(p).__name__} and "
                              f"{type(q).__name__} (add one with register_kl)")


@register_kl(Normal, Normal)
def _kl_normal(p: Normal, q: Normal) -> Tensor:
    r = p.scale / q.scale
    d = (p.loc - q.loc) / q.scale
    return 0.5 * (r * r + d * d - 1.0) - log(r)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli(p: Bernoulli, q: Bernoulli) -> Tensor:
    from ..ops.elementwise import softplus
    # log p - log q and log(1-p) - log(1-q) from the logits, without log(0)
    return (p.probs * (softplus(-q.logits) - softplus(-p.logits))
            + (1.0 - p.probs) * (softplus(q.logits) - softplus(p.logits)))


@register_kl(Categorical, Categorical)
def _kl_categorical(p: Categorical, q: Categorical) -> Tensor:
    # where p has probability 0 the term is 0; masking the log ratio (not the product)
    # also keeps the gradient finite there (0 * -inf would be NaN)
    zero = p.probs == 0
    return (p.probs * where(zero, 0.0, p.logits - q.logits)).sum(axis=-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot_categorical(p: OneHotCategorical, q: OneHotCategorical) -> Tensor:
    return _kl_categorical(p._categorical, q._categorical)


@register_kl(Independent, Independent)
def _kl_independent(p: Independent, q: Independent) -> Tensor:
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError("kl_divergence: Independent distributions that reinterpret "
                                  "different numbers of batch dims")
    return sum_rightmost(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)


@register_kl(Uniform, Uniform)
def _kl_uniform(p: Uniform, q: Uniform) -> Tensor:
    inside = (q.low <= p.low) & (p.high <= q.high)
    return where(inside, log((q.high - q.low) / (p.high - p.low)), math.inf)


@register_kl(Uniform, Normal)
def _kl_uniform_normal(p: Uniform, q: Normal) -> Tensor:
    width = p.high - p.low
    t1 = log(math.sqrt(2 * math.pi) * q.scale / width)
    t2 = width * width / 12
    t3 = ((p.high + p.low - 2 * q.loc) / 2) ** 2
    return t1 + 0.5 * (t2 + t3) / (q.scale * q.scale)
