"""Distributions derived from others, as PyTorch's: LogisticNormal (a normal pushed onto the
simplex by stick breaking), HalfNormal and HalfCauchy (folded at 0), and Chi2 (a Gamma).

>>> tl.distributions.LogisticNormal(tl.zeros(3), tl.ones(3)).rsample().shape   # (4,)
>>> tl.distributions.HalfNormal(2.0).log_prob(tl.tensor(1.0))
"""
from __future__ import annotations

import math

from .._tensor import Tensor
from ..ops.elementwise import where
from . import constraints
from .base import _raw
from .base import value_like
from .continuous import Normal
from .continuous_extra import Cauchy, Gamma
from .transformed import TransformedDistribution
from .transforms import AbsTransform, StickBreakingTransform

_LOG_2 = math.log(2.0)


class LogisticNormal(TransformedDistribution):
    """``StickBreakingTransform()(x)`` for ``x ~ Normal(loc, scale)`` over the last dim: a
    distribution on the ``K + 1``-simplex for ``K`` locations (reparameterized).

    >>> d = tl.distributions.LogisticNormal(tl.zeros(2), tl.ones(2))
    >>> d.event_shape                                  # (3,)
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}

    support = constraints.simplex

    def __init__(self, loc, scale, validate_args: bool | None = None):
        base = Normal(loc, scale, validate_args=validate_args)
        if not base.batch_shape:
            base = base.expand((1,))
        super().__init__(base, StickBreakingTransform(), validate_args=validate_args)

    @property
    def loc(self) -> Tensor:
        return self.base_dist.base_dist.loc

    @property
    def scale(self) -> Tensor:
        return self.base_dist.base_dist.scale


class _Folded(TransformedDistribution):
    """``|x|`` for a base centred at 0: twice the base density on [0, inf)."""

    support = constraints.nonnegative

    @property
    def scale(self) -> Tensor:
        return self.base_dist.scale

    @property
    def mode(self) -> Tensor:
        return self.scale * 0.0

    def log_prob(self, value) -> Tensor:
        v = value_like(value, self.scale)
        if self._validating:
            a = _raw(v)
            self._check(a >= 0, "value must be non-negative (the support is [0, inf))", a)
        lp = self.base_dist.log_prob(v) + _LOG_2
        return where(v >= 0, lp, -math.inf)

    def cdf(self, value) -> Tensor:
        return 2.0 * self.base_dist.cdf(value_like(value, self.scale)) - 1.0

    def icdf(self, value) -> Tensor:
        return self.base_dist.icdf((value_like(value, self.scale) + 1.0) / 2.0)

    def entropy(self) -> Tensor:
        return self.base_dist.entropy() - _LOG_2


class HalfNormal(_Folded):
    """``|x|`` for ``x ~ Normal(0, scale)`` (reparameterized).

    >>> tl.distributions.HalfNormal(1.0).mean          # sqrt(2 / pi)
    """

    arg_constraints = {"scale": constraints.positive}

    def __init__(self, scale, validate_args: bool | None = None):
        super().__init__(Normal(0.0, scale, validate_args=validate_args), AbsTransform(),
                         validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def variance(self) -> Tensor:
        return self.scale * self.scale * (1 - 2 / math.pi)


class HalfCauchy(_Folded):
    """``|x|`` for ``x ~ Cauchy(0, scale)`` (reparameterized; no finite mean).

    >>> tl.distributions.HalfCauchy(1.0).icdf(tl.tensor(0.5))    # 1
    """

    arg_constraints = {"scale": constraints.positive}

    def __init__(self, scale, validate_args: bool | None = None):
        super().__init__(Cauchy(0.0, scale, validate_args=validate_args), AbsTransform(),
                         validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.scale * 0.0 + math.inf

    @property
    def variance(self) -> Tensor:
        return self.scale * 0.0 + math.inf


class Chi2(Gamma):
    """The chi-square distribution with ``df`` degrees of freedom: ``Gamma(df / 2, 1 / 2)``.

    >>> tl.distributions.Chi2(tl.tensor([3.0])).mean   # 3
    """

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args: bool | None = None):
        from .base import as_float
        df = as_float(df)
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)

    @property
    def df(self) -> Tensor:
        return self.concentration * 2.0
