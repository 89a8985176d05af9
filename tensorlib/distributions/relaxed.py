"""Relaxed (Concrete / Gumbel-softmax) distributions: differentiable stand-ins for Bernoulli
and one-hot Categorical draws, as PyTorch's (Maddison et al., Jang et al., 2017).

>>> d = RelaxedOneHotCategorical(tl.tensor(0.5), logits=scores)
>>> y = d.rsample()             # on the simplex, differentiable in scores
"""
from __future__ import annotations

import math

from .._tensor import Tensor
from ..ops.elementwise import softplus
from ..ops.shape import broadcast_to
from . import constraints
from .base import _raw
from .base import Distribution, as_float, broadcast_params, value_like
from .continuous_bernoulli import clamp_probs
from .discrete import Categorical, _probs_or_logits
from .transformed import TransformedDistribution
from .transforms import ExpTransform, SigmoidTransform


def _temperature(t, like: Tensor | None = None) -> Tensor:
    return as_float(t, like)


class LogitRelaxedBernoulli(Distribution):
    """The logit of a :class:`RelaxedBernoulli` draw: ``(logit(u) + logits) / temperature``
    for ``u`` uniform."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}

    support = constraints.real

    has_rsample = True
    # the temperature is not expanded (PyTorch's neither): it broadcasts as it is
    _expand_params = ("probs", "logits")

    def __init__(self, temperature, probs=None, logits=None,
                 validate_args: bool | None = None):
        probs, logits = _probs_or_logits("LogitRelaxedBernoulli", probs, logits)
        if probs is not None:
            (self.probs,) = broadcast_params(probs)
            super().__init__(self.probs.shape, validate_args=validate_args)
            if self._validating:
                a = _raw(self.probs)
                self._check((a >= 0) & (a <= 1), "probs must lie in [0, 1]", a)
            p = clamp_probs(self.probs)
            self.logits = p.log() - (-p).log1p()
        else:
            (self.logits,) = broadcast_params(logits)
            super().__init__(self.logits.shape, validate_args=validate_args)
            self._check_not_nan(self.logits, "logits")
            self.probs = self.logits.sigmoid()
        self.temperature = _temperature(temperature, self.logits)
        if self._validating:
            a = _raw(self.temperature)
            self._check(a > 0, "temperature must be positive", a)

    def rsample(self, sample_shape=()) -> Tensor:
        from ..creation import rand
        shape = self._extended_shape(sample_shape)
        probs = clamp_probs(broadcast_to(self.probs, shape))
        u = clamp_probs(rand(*shape, dtype=probs.dtype, device=probs.device))
        return (u.log() - (-u).log1p() + probs.log() - (-probs).log1p()) / self.temperature

    def log_prob(self, value) -> Tensor:
        v = value_like(value, self.logits)
        self._check_not_nan(v, "value")
        diff = self.logits - v * self.temperature
        # softplus(diff) is PyTorch's log1p(exp(diff)) without its overflow
        return self.temperature.log() + diff - 2.0 * softplus(diff)


class _Relaxed(TransformedDistribution):
    """A transform (``_transform``) of a relaxed draw (``_base``), with its parameters."""

    has_rsample = True
    _base: type
    _transform: type

    def __init__(self, temperature, probs=None, logits=None,
                 validate_args: bool | None = None):
        base = self._base(temperature, probs, logits, validate_args=validate_args)
        super().__init__(base, self._transform(), validate_args=validate_args)

    @property
    def temperature(self) -> Tensor:
        return self.base_dist.temperature

    @property
    def logits(self) -> Tensor:
        return self.base_dist.logits

    @property
    def probs(self) -> Tensor:
        return self.base_dist.probs


class RelaxedBernoulli(_Relaxed):
    """A relaxed Bernoulli on (0, 1): ``sigmoid`` of a :class:`LogitRelaxedBernoulli` draw;
    ``temperature`` -> 0 approaches Bernoulli(probs).

    >>> RelaxedBernoulli(tl.tensor(0.1), probs=tl.tensor([0.2, 0.9])).rsample()
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}

    support = constraints.unit_interval

    _base = LogitRelaxedBernoulli
    _transform = SigmoidTransform


class ExpRelaxedCategorical(Distribution):
    """The log of a :class:`RelaxedOneHotCategorical` draw (``event_shape`` ``(K,)``):
    ``log_softmax((logits + gumbel) / temperature)``."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    support = constraints.real_vector

    has_rsample = True
    _expand_params = ()

    def _expand_more(self, new, batch_shape) -> None:
        new._categorical = self._categorical.expand(batch_shape)

    def __init__(self, temperature, probs=None, logits=None,
                 validate_args: bool | None = None):
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        c = self._categorical
        super().__init__(c.batch_shape, (c.num_classes,), validate_args=validate_args)
        self.temperature = _temperature(temperature, c.logits)
        if self._validating:
            a = _raw(self.temperature)
            self._check(a > 0, "temperature must be positive", a)

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    def rsample(self, sample_shape=()) -> Tensor:
        from ..creation import rand
        shape = self._extended_shape(sample_shape)
        u = clamp_probs(rand(*shape, dtype=self.logits.dtype, device=self.logits.device))
        gumbels = -((-(u.log())).log())
        scores = (self.logits + gumbels) / self.temperature
        return scores - scores.logsumexp(axis=-1, keepdims=True)

    def log_prob(self, value) -> Tensor:
        k = self._categorical.num_classes
        v = value_like(value, self.logits)
        if v.ndim < 1 or v.shape[-1] != k:
            raise ValueError(f"ExpRelaxedCategorical: value must have a last dim of {k} (the "
                             f"number of classes), got shape {tuple(v.shape)}")
        self._check_not_nan(v, "value")
        t = self.temperature
        log_scale = math.lgamma(float(k)) + (k - 1) * t.log()
        score = self.logits - v * t
        score = (score - score.logsumexp(axis=-1, keepdims=True)).sum(axis=-1)
        return score + log_scale


class RelaxedOneHotCategorical(_Relaxed):
    """The Gumbel-softmax / Concrete distribution on the simplex: ``exp`` of an
    :class:`ExpRelaxedCategorical` draw.

    >>> y = RelaxedOneHotCategorical(tl.tensor(0.5), logits=scores).rsample()   # (..., K)
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    support = constraints.simplex

    _base = ExpRelaxedCategorical
    _transform = ExpTransform


