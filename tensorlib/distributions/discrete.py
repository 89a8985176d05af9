"""Discrete distributions: Bernoulli and Categorical, from probabilities or logits."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..ops.elementwise import log, softplus
from ..ops.indexing import take_along_axis
from ..ops.nn_act import log_softmax, softmax
from .base import Distribution, as_float, broadcast_params


def _probs_or_logits(name: str, probs, logits):
    if (probs is None) == (logits is None):
        raise ValueError(f"{name}: give exactly one of probs and logits")
    return probs, logits


class Bernoulli(Distribution):
    """1 with probability ``probs`` (or ``sigmoid(logits)``), else 0.

    >>> tl.distributions.Bernoulli(probs=0.3).sample((5,))
    """

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None):
        probs, logits = _probs_or_logits("Bernoulli", probs, logits)
        if probs is not None:
            (self.probs,) = broadcast_params(probs)
            super().__init__(self.probs.shape, validate_args=validate_args)
            self._check((self.probs >= 0) & (self.probs <= 1), "probs must lie in [0, 1]")
            eps = float(np.finfo(self.probs.dtype).eps)
            p = self.probs.clip(eps, 1 - eps)
            self.logits = log(p) - log(1.0 - p)
        else:
            (self.logits,) = broadcast_params(logits)
            super().__init__(self.logits.shape, validate_args=validate_args)
            self.probs = self.logits.sigmoid()

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def variance(self) -> Tensor:
        return self.probs * (1.0 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        from ..creation import rand
        u = rand(*self._extended_shape(sample_shape), dtype=self.probs.dtype,
                 device=self.probs.device)
        return (u < self.probs.detach()).astype(self.probs.dtype)

    def log_prob(self, value) -> Tensor:
        v = as_float(self._value(value), self.logits)
        self._check((v == 0) | (v == 1), "values must be 0 or 1")
        return v * self.logits - softplus(self.logits)

    def entropy(self) -> Tensor:
        return softplus(self.logits) - self.probs * self.logits


class Categorical(Distribution):
    """One of K classes (the last dim of ``probs`` or ``logits``), probabilities normalised.

    >>> c = tl.distributions.Categorical(logits=scores)     # scores: (..., K)
    >>> c.sample(), c.log_prob(labels)
    """

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None):
        probs, logits = _probs_or_logits("Categorical", probs, logits)
        src = as_float(probs if probs is not None else logits)
        if src.ndim < 1:
            raise ValueError("Categorical: probs/logits need a last dim of classes")
        super().__init__(src.shape[:-1], validate_args=validate_args)
        if probs is not None:
            self._check(src >= 0, "probs must not be negative")
            self.probs = src / src.sum(axis=-1, keepdims=True)
            tiny = float(np.finfo(src.dtype).tiny)
            self.logits = log(self.probs.clip(tiny, None))
        else:
            self.logits = log_softmax(src, -1)
            self.probs = softmax(src, -1)
        self.num_classes = src.shape[-1]

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError("Categorical: the mean of class labels is not defined")

    def sample(self, sample_shape=()) -> Tensor:
        from ..creation import rand
        shape = self._extended_shape(sample_shape)
        u = rand(*shape, dtype=np.float64, device=self.probs.device).unsqueeze(-1)
        cdf = self.probs.detach().astype(np.float64).cumsum(axis=-1)
        idx = (cdf < u).astype(np.int64).sum(axis=-1)      # inverse CDF
        return idx.clip(0, self.num_classes - 1)

    def log_prob(self, value) -> Tensor:
        v = self._value(value)
        if v.dtype.kind not in "iu":
            v = v.astype(np.int64)
        self._check((v >= 0) & (v < self.num_classes),
                    f"values must be class indices in [0, {self.num_classes})")
        shape = np.broadcast_shapes(tuple(v.shape), self.batch_shape)
        logits = self.logits.broadcast_to(shape + (self.num_classes,))
        v = v.broadcast_to(shape).unsqueeze(-1)
        return take_along_axis(logits, v, -1).squeeze(-1)

    def entropy(self) -> Tensor:
        # a -inf logit (a masked class) has probability 0: clamped to the dtype's lowest
        # finite value, as PyTorch, 0 * logit is 0 and its gradient finite (not NaN)
        logits = self.logits.clip(float(np.finfo(self.logits.dtype).min), None)
        return -(self.probs * logits).sum(axis=-1)
