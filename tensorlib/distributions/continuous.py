"""Continuous distributions: Normal and Uniform (both reparameterizable)."""
from __future__ import annotations

import math

from .._tensor import Tensor
from ..ops.elementwise import log, where
from . import constraints
from .base import _raw
from .base import CenteredAtLoc, Distribution, broadcast_params, readable, sample_error, value_like
from .exp_family import ExponentialFamily

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Normal(CenteredAtLoc, ExponentialFamily):
    """The normal distribution N(loc, scale**2), ``scale > 0``.

    >>> tl.distributions.Normal(0.0, 1.0).log_prob(tl.tensor(0.0))
    tensor(-0.9189)
    """


    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        return (self.loc / self.scale ** 2, -0.5 * self.scale.pow(2).reciprocal())

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        return -0.25 * x.pow(2) / y + 0.5 * log(-math.pi / y)

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}

    support = constraints.real

    has_rsample = True
    _expand_params = ("loc", "scale")

    def __init__(self, loc, scale, validate_args: bool | None = None):
        self.loc, self.scale = broadcast_params(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)
        if self._validating:
            self._check_not_nan(self.loc, "loc")
            s = _raw(self.scale)
            self._check(s > 0, "scale must be positive", s)

    @property
    def variance(self) -> Tensor:
        return self.scale * self.scale

    @property
    def stddev(self) -> Tensor:
        return self.scale

    def sample(self, sample_shape=()) -> Tensor:
        """A draw without gradient. A negative or NaN ``scale`` raises whatever
        ``validate_args`` says, as ``torch.normal`` inside PyTorch's ``sample``; on a GPU or
        in a captured graph, where checking would need the values on the host, those
        draws are NaN instead. (``rsample`` does not check, as PyTorch's.)"""
        from ..autograd.mode import no_grad
        s = readable(self.scale)
        if s is not None and not bool((s >= 0).all()):
            raise sample_error("Normal", "scale must be non-negative (got a negative or NaN "
                               "scale)")
        with no_grad():
            x = self.rsample(sample_shape).detach()
            if s is None:
                x = where(self.scale.detach() >= 0, x, math.nan)
        return x

    def rsample(self, sample_shape=()) -> Tensor:
        from ..creation import randn
        eps = randn(*self._extended_shape(sample_shape), dtype=self.loc.dtype,
                    device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value) -> Tensor:
        v = value_like(value, self.loc)
        self._check_not_nan(v, "value")
        z = (v - self.loc) / self.scale
        return -0.5 * z * z - self.scale.log() - _LOG_SQRT_2PI

    def cdf(self, value) -> Tensor:
        from ..special import ndtr
        v = value_like(value, self.loc)
        self._check_not_nan(v, "value")
        # ndtr, not 0.5 (1 + erf): exact in the lower tail (cdf(-10) is 7.6e-24, not 0)
        return ndtr((v - self.loc) / self.scale)

    def icdf(self, value) -> Tensor:
        """The quantile function (inverse of :meth:`cdf`) at probabilities ``value`` in [0, 1],
        ``loc + scale * ndtri(value)`` (PyTorch's ``erfinv(2 value - 1)`` form, accurate to
        the last bits in both tails); differentiable.

        >>> tl.distributions.Normal(0.0, 1.0).icdf(tl.tensor(0.975))      # 1.96
        """
        from ..special import ndtri
        v = value_like(value, self.loc)
        if self._validating:
            a = _raw(v)
            self._check((a >= 0) & (a <= 1), "icdf: value must be a probability in [0, 1]", a)
        return self.loc + self.scale * ndtri(v)

    def entropy(self) -> Tensor:
        return 0.5 + _LOG_SQRT_2PI + self.scale.log()


class Uniform(Distribution):
    """The uniform distribution on [low, high), ``low < high``."""

    arg_constraints = {"low": constraints.dependent(is_discrete=False, event_dim=0),
                       "high": constraints.dependent(is_discrete=False, event_dim=0)}

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.low, self.high)

    has_rsample = True
    _expand_params = ("low", "high")

    def __init__(self, low, high, validate_args: bool | None = None):
        self.low, self.high = broadcast_params(low, high)
        super().__init__(self.low.shape, validate_args=validate_args)
        if self._validating:
            self._check_not_nan(self.low, "low")
            self._check_not_nan(self.high, "high")
            lo = _raw(self.low)
            self._check(lo < _raw(self.high), "low must be below high", lo)

    @property
    def mean(self) -> Tensor:
        return (self.low + self.high) * 0.5

    @property
    def mode(self) -> Tensor:
        """NaN: every point of the interval is a mode (as PyTorch)."""
        return self.high.detach() * math.nan

    @property
    def variance(self) -> Tensor:
        w = self.high - self.low
        return w * w / 12.0

    def rsample(self, sample_shape=()) -> Tensor:
        from ..creation import rand
        u = rand(*self._extended_shape(sample_shape), dtype=self.low.dtype,
                 device=self.low.device)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value) -> Tensor:
        """``-log(high - low)`` inside [low, high), ``-inf`` outside (PyTorch's validation
        raises there instead); a NaN value raises."""
        v = value_like(value, self.low)
        self._check_not_nan(v, "value")
        inside = (v >= self.low) & (v < self.high)
        return where(inside, -log(self.high - self.low), -math.inf)

    def cdf(self, value) -> Tensor:
        v = value_like(value, self.low)
        self._check_not_nan(v, "value")
        return ((v - self.low) / (self.high - self.low)).clip(0.0, 1.0)

    def icdf(self, value) -> Tensor:
        """The point below which a fraction ``value`` (in [0, 1]) of the mass lies."""
        v = value_like(value, self.low)
        if self._validating:
            a = _raw(v)
            self._check((a >= 0) & (a <= 1), "icdf takes probabilities in [0, 1]", a)
        return self.low + v * (self.high - self.low)

    def entropy(self) -> Tensor:
        return log(self.high - self.low)
