"""NegativeBinomial and OneHotCategoricalStraightThrough, as torch.distributions.

>>> tl.distributions.NegativeBinomial(5.0, probs=0.3).sample((4,))
>>> a = tl.distributions.OneHotCategoricalStraightThrough(logits=scores).rsample()
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..ops.elementwise import softplus, where
from ..ops.special_fns import lgamma
from . import constraints
from ._gamma import host_draw
from .base import _raw
from .base import Distribution, _host
from .continuous_extra import _val
from .discrete import OneHotCategorical
from .discrete_extra import _Binary, _counts


class NegativeBinomial(_Binary, Distribution):
    """The number of successes (each of probability ``probs``, in [0, 1), or
    ``sigmoid(logits)``) before ``total_count`` (>= 0, need not be an integer) failures:
    ``P(k) = C(k + n - 1, k) p^k (1 - p)^n``. Sampled by NumPy on the host as a
    gamma-Poisson mixture (not capturable); no entropy, as PyTorch.
    """

    arg_constraints = {"total_count": constraints.greater_than_eq(0.0),
                       "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer
    _expand_params = ("total_count", "probs", "logits")

    @property
    def param_shape(self) -> tuple[int, ...]:
        """The shape of ``probs`` (or ``logits``), as PyTorch's."""
        return tuple(self.probs.shape)

    def __init__(self, total_count, probs=None, logits=None,
                 validate_args: bool | None = None):
        (self.total_count,) = self._binary_init("NegativeBinomial", probs, logits,
                                                (total_count,), validate_args)
        if self._validating:
            n = _raw(self.total_count)
            self._check(n >= 0, "total_count must be non-negative", n)

    def _check_probs(self, p) -> None:
        self._check((p >= 0) & (p < 1), "probs must lie in [0, 1)", p)

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.logits.exp()

    @property
    def mode(self) -> Tensor:
        return ((self.total_count - 1.0) * self.logits.exp()).floor().clip(0.0, None)

    @property
    def variance(self) -> Tensor:
        return self.mean / (-self.logits).sigmoid()

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        n = np.broadcast_to(_host(self.total_count.detach()._data), shape).astype(np.float64)
        odds = np.exp(np.broadcast_to(_host(self.logits.detach()._data), shape)
                      .astype(np.float64))
        return host_draw("sampling a NegativeBinomial distribution",
                         lambda g: g.poisson(g.gamma(n, odds)), self.probs)

    def log_prob(self, value) -> Tensor:
        n, logits = self.total_count, self.logits
        v = _val(value, logits)
        self._value_check(v, _counts, "value must be a non-negative integer (a count)")
        # logsigmoid(x) = -softplus(-x)
        unnorm = -n * softplus(logits) - v * softplus(-logits)
        norm = -lgamma(n + v) + lgamma(1.0 + v) + lgamma(n)
        # n = 0 puts all mass at 0, where lgamma(0) is infinite
        return unnorm - where(n + v == 0, 0.0, norm)

    def entropy(self) -> Tensor:
        raise NotImplementedError("NegativeBinomial: entropy has no closed form and is not "
                                  "implemented (as PyTorch)")


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """A :class:`OneHotCategorical` whose ``rsample`` is the one-hot draw with the
    straight-through gradient of the probabilities (Bengio et al., 2013): the forward value
    is the sample, the backward pass treats it as ``probs``, as PyTorch's.

    >>> d = OneHotCategoricalStraightThrough(logits=scores)
    >>> (d.rsample() * values).sum().backward()       # gradient reaches scores
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_rsample = True

    def rsample(self, sample_shape=()) -> Tensor:
        samples = self.sample(sample_shape)
        probs = self.probs
        return samples + (probs - probs.detach())
