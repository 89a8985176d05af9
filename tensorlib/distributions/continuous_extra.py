"""More continuous distributions, as torch.distributions: Exponential, Laplace, LogNormal,
Cauchy (reparameterized by a transform of a uniform or normal draw), and Gamma, Beta,
Dirichlet, StudentT (reparameterized implicitly through the gamma draw, see ``_gamma``).

>>> q = tl.distributions.Gamma(alpha, beta)       # alpha, beta require grad
>>> (q.rsample((64,)) ** 2).mean().backward()     # pathwise gradients in alpha and beta
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..ops.elementwise import where
from ..ops.shape import broadcast_to
from ..ops.special_fns import digamma, lgamma
from ..special import xlogy
from . import constraints
from ._gamma import regularized_gamma_p, standard_gamma
from .base import _raw
from .base import CenteredAtLoc, Distribution, as_float, broadcast_params
from .base import value_like as _val
from .continuous import Normal
from .exp_family import ExponentialFamily


def _rand(d: Distribution, sample_shape, like: Tensor) -> Tensor:
    from ..creation import rand
    return rand(*d._extended_shape(sample_shape), dtype=like.dtype, device=like.device)


def _randn(d: Distribution, sample_shape, like: Tensor) -> Tensor:
    from ..creation import randn
    return randn(*d._extended_shape(sample_shape), dtype=like.dtype, device=like.device)


def _clamp_value(x: Tensor, low: float, high: float | None = None) -> Tensor:
    """``x`` with its values clamped to ``[low, high]`` and its gradient unchanged (PyTorch
    clamps a gamma or Dirichlet draw's data in place, outside the autograd graph)."""
    return x + (x.detach().clip(low, high) - x.detach())


def _full(d: Distribution, fill: float, like: Tensor) -> Tensor:
    from ..creation import full
    return full(d._extended_shape(), fill, dtype=like.dtype, device=like.device)


def _gamma64(alpha: Tensor) -> Tensor:
    """Gamma(alpha, 1) draws in float64, for Beta and Dirichlet to normalise before casting
    back (as PyTorch's kernel does): float32 draws of small concentrations underflow to the
    clamp value together, and their ratio would then be exactly 1/K."""
    return standard_gamma(alpha.astype(np.float64) if alpha.dtype != np.float64 else alpha)


class _Checks:
    """Argument checks shared by the families below (each a ``Distribution``)."""

    def _positive(self, t: Tensor, name: str) -> None:
        if self._validating:
            a = _raw(t)
            self._check(a > 0, f"{name} must be positive", a)

    def _value_check(self, v: Tensor, ok, what: str) -> None:
        if self._validating:
            a = _raw(v)
            self._check(a == a, "value must not be NaN", a)
            self._check(ok(a), what, a)

    def _probability(self, v: Tensor, fn: str) -> None:
        if self._validating:
            a = _raw(v)
            self._check((a >= 0) & (a <= 1), f"{fn}: value must be a probability in [0, 1]", a)


class Exponential(_Checks, ExponentialFamily):
    """The exponential distribution with ``rate > 0`` (mean ``1 / rate``) on [0, inf).

    >>> tl.distributions.Exponential(2.0).log_prob(tl.tensor(1.0))   # log 2 - 2
    """


    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (-self.rate,)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return -(-x).log()

    arg_constraints = {"rate": constraints.positive}

    support = constraints.nonnegative

    has_rsample = True
    _expand_params = ("rate",)

    def __init__(self, rate, validate_args: bool | None = None):
        (self.rate,) = broadcast_params(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)
        self._positive(self.rate, "rate")

    @property
    def mean(self) -> Tensor:
        return self.rate.reciprocal()

    @property
    def mode(self) -> Tensor:
        from ..creation import zeros_like
        return zeros_like(self.rate)

    @property
    def variance(self) -> Tensor:
        return self.rate ** -2

    @property
    def stddev(self) -> Tensor:
        return self.rate.reciprocal()

    def rsample(self, sample_shape=()) -> Tensor:
        u = _rand(self, sample_shape, self.rate)          # in [0, 1): -log1p(-u) is finite
        return -(-u).log1p() / self.rate

    def _support(self, value) -> Tensor:
        v = _val(value, self.rate)
        self._value_check(v, lambda a: a >= 0, "value must be non-negative (the support is "
                          "[0, inf))")
        return v

    def log_prob(self, value) -> Tensor:
        v = self._support(value)
        return self.rate.log() - self.rate * v

    def cdf(self, value) -> Tensor:
        v = self._support(value)
        return -(-self.rate * v).expm1()

    def icdf(self, value) -> Tensor:
        v = _val(value, self.rate)
        self._probability(v, "icdf")
        return -(-v).log1p() / self.rate

    def entropy(self) -> Tensor:
        return 1.0 - self.rate.log()


class _LocScale(CenteredAtLoc, _Checks, Distribution):
    """A family of location ``loc`` and ``scale > 0`` (their checks, ``expand``, and
    ``loc`` as mean and mode)."""

    has_rsample = True
    _expand_params = ("loc", "scale")

    def __init__(self, loc, scale, validate_args: bool | None = None):
        self.loc, self.scale = broadcast_params(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)
        self._check_not_nan(self.loc, "loc")
        self._positive(self.scale, "scale")


class Laplace(_LocScale):
    """The Laplace distribution with location ``loc`` and ``scale > 0``
    (density ``exp(-|x - loc| / scale) / (2 scale)``)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}

    support = constraints.real

    @property
    def variance(self) -> Tensor:
        return 2.0 * self.scale * self.scale

    @property
    def stddev(self) -> Tensor:
        return math.sqrt(2.0) * self.scale

    def rsample(self, sample_shape=()) -> Tensor:
        eps = float(np.finfo(self.loc.dtype).eps)
        u = (2.0 * _rand(self, sample_shape, self.loc) - 1.0).clip(eps - 1.0, 1.0 - eps)
        return self.loc - self.scale * u.sign() * (-u.abs()).log1p()

    def _real(self, value) -> Tensor:
        v = _val(value, self.loc)
        self._check_not_nan(v, "value")
        return v

    def log_prob(self, value) -> Tensor:
        v = self._real(value)
        return -(2.0 * self.scale).log() - (v - self.loc).abs() / self.scale

    def cdf(self, value) -> Tensor:
        z = (self._real(value) - self.loc) / self.scale
        # 0.5 exp(z) in the lower tail: 0.5 + 0.5 expm1(z) cancels there
        return where(z < 0.0, 0.5 * z.clip(None, 0.0).exp(), 0.5 - 0.5 * (-z).expm1())

    def icdf(self, value) -> Tensor:
        v = _val(value, self.loc)
        self._probability(v, "icdf")
        # log(2 v) below the median, -log(2 (1 - v)) above: no rounding of v - 0.5 in the tails
        lo = (2.0 * v).log()
        hi = -(1.0 - 2.0 * v).log1p()
        return self.loc + self.scale * where(v < 0.5, lo, hi)

    def entropy(self) -> Tensor:
        return 1.0 + (2.0 * self.scale).log()


class LogNormal(_Checks, Distribution):
    """``exp(X)`` for ``X ~ Normal(loc, scale)``, on (0, inf); ``base_dist`` is that normal.

    >>> tl.distributions.LogNormal(0.0, 1.0).mean      # exp(1/2)
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}

    support = constraints.positive

    has_rsample = True
    _expand_params = ()

    def __init__(self, loc, scale, validate_args: bool | None = None):
        loc, scale = broadcast_params(loc, scale)
        super().__init__(loc.shape, validate_args=validate_args)
        self._check_not_nan(loc, "loc")
        self._positive(scale, "scale")
        self.base_dist = Normal(loc, scale, validate_args=False)

    def _expand_more(self, new, batch_shape) -> None:
        new.base_dist = Normal(broadcast_to(self.loc, batch_shape),
                               broadcast_to(self.scale, batch_shape), validate_args=False)

    @property
    def loc(self) -> Tensor:
        return self.base_dist.loc

    @property
    def scale(self) -> Tensor:
        return self.base_dist.scale

    @property
    def mean(self) -> Tensor:
        return (self.loc + self.scale * self.scale / 2.0).exp()

    @property
    def mode(self) -> Tensor:
        return (self.loc - self.scale * self.scale).exp()

    @property
    def variance(self) -> Tensor:
        s2 = self.scale * self.scale
        return s2.expm1() * (2.0 * self.loc + s2).exp()

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base_dist.rsample(sample_shape).exp()

    def _support(self, value) -> Tensor:
        v = _val(value, self.loc)
        self._value_check(v, lambda a: a > 0, "value must be positive (the support is "
                          "(0, inf))")
        return v

    def log_prob(self, value) -> Tensor:
        y = self._support(value).log()
        return self.base_dist.log_prob(y) - y

    def cdf(self, value) -> Tensor:
        return self.base_dist.cdf(self._support(value).log())

    def icdf(self, value) -> Tensor:
        v = _val(value, self.loc)
        self._probability(v, "icdf")
        return self.base_dist.icdf(v).exp()

    def entropy(self) -> Tensor:
        return self.base_dist.entropy() + self.loc


class Cauchy(_LocScale):
    """The Cauchy (Lorentz) distribution with median ``loc`` and half width ``scale > 0``:
    its mean is NaN and its variance infinite, as PyTorch's."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}

    support = constraints.real

    @property
    def mean(self) -> Tensor:
        return _full(self, math.nan, self.loc)

    @property
    def variance(self) -> Tensor:
        return _full(self, math.inf, self.loc)

    def rsample(self, sample_shape=()) -> Tensor:
        u = _rand(self, sample_shape, self.loc)
        return self.loc + self.scale * (math.pi * (u - 0.5)).tan()

    def _real(self, value) -> Tensor:
        v = _val(value, self.loc)
        self._check_not_nan(v, "value")
        return v

    def log_prob(self, value) -> Tensor:
        z = (self._real(value) - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - (z * z).log1p()

    def cdf(self, value) -> Tensor:
        z = (self._real(value) - self.loc) / self.scale
        # atan(-1/z) / pi in the lower tail: 0.5 + atan(z) / pi cancels there
        return where(z < -1.0, (-z.reciprocal()).atan() / math.pi, z.atan() / math.pi + 0.5)

    def icdf(self, value) -> Tensor:
        v = _val(value, self.loc)
        self._probability(v, "icdf")
        # v - 0.5 and tan near pi/2 lose the tails: -cot(pi v) and cot(pi (1 - v)) there
        mid = (math.pi * (v - 0.5)).tan()
        low = -(math.pi * v).tan().reciprocal()
        high = (math.pi * (1.0 - v)).tan().reciprocal()
        z = where(v < 0.25, low, where(v > 0.75, high, mid))
        return z * self.scale + self.loc

    def entropy(self) -> Tensor:
        return math.log(4 * math.pi) + self.scale.log()


class Gamma(_Checks, ExponentialFamily):
    """The gamma distribution with shape ``concentration > 0`` and ``rate > 0`` (mean
    ``concentration / rate``) on [0, inf).

    ``rsample`` is differentiable in both parameters: in ``rate`` through ``x / rate``, in
    ``concentration`` by implicit reparameterization (first derivatives only; a second
    derivative through the draw raises, as PyTorch's). Eager draws come from NumPy on the
    host; under graph capture (``tl.function``) they are tensorlib ops (another method, the
    same distribution), differentiable too.
    """


    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        return (self.concentration - 1, -self.rate)

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        return lgamma(x + 1) + (x + 1) * (-y.reciprocal()).log()

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}

    support = constraints.nonnegative

    has_rsample = True
    _expand_params = ("concentration", "rate")

    def __init__(self, concentration, rate, validate_args: bool | None = None):
        self.concentration, self.rate = broadcast_params(concentration, rate)
        super().__init__(self.rate.shape, validate_args=validate_args)
        self._positive(self.concentration, "concentration")
        self._positive(self.rate, "rate")

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def mode(self) -> Tensor:
        return ((self.concentration - 1.0) / self.rate).clip(0.0, None)

    @property
    def variance(self) -> Tensor:
        return self.concentration / (self.rate * self.rate)

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        x = standard_gamma(broadcast_to(self.concentration, shape)) / self.rate
        return _clamp_value(x, float(np.finfo(x.dtype).tiny))

    def _support(self, value) -> Tensor:
        v = _val(value, self.rate)
        self._value_check(v, lambda a: a >= 0, "value must be non-negative (the support is "
                          "[0, inf))")
        return v

    def log_prob(self, value) -> Tensor:
        v = self._support(value)
        a = self.concentration
        return xlogy(a, self.rate) + xlogy(a - 1.0, v) - self.rate * v - lgamma(a)

    def cdf(self, value) -> Tensor:
        """``P(concentration, rate * value)`` (``torch.special.gammainc``), computed on the
        host; differentiable in ``value`` and ``rate`` to any order, in ``concentration`` to
        first order (PyTorch's is not differentiable there)."""
        y = self.rate * self._support(value)
        a = self.concentration
        shape = np.broadcast_shapes(tuple(a.shape), tuple(y.shape))
        return regularized_gamma_p(broadcast_to(a, shape), broadcast_to(y, shape))

    def entropy(self) -> Tensor:
        a = self.concentration
        return a - self.rate.log() + lgamma(a) + (1.0 - a) * digamma(a)


class Beta(_Checks, ExponentialFamily):
    """The beta distribution on [0, 1] with ``concentration1`` (alpha) and
    ``concentration0`` (beta), both positive; ``rsample`` as :class:`Gamma`'s
    (``X / (X + Y)`` of two gamma draws). Its gradient is unbiased but not the Beta's own
    implicit one (PyTorch's ``_dirichlet_grad``): per draw it is noisier, about twice the
    variance of PyTorch's in a VI gradient."""


    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        return (self.concentration1, self.concentration0)

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        return lgamma(x) + lgamma(y) - lgamma(x + y)

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}

    support = constraints.unit_interval

    has_rsample = True
    _expand_params = ("concentration1", "concentration0")

    def __init__(self, concentration1, concentration0, validate_args: bool | None = None):
        self.concentration1, self.concentration0 = broadcast_params(concentration1,
                                                                    concentration0)
        super().__init__(self.concentration1.shape, validate_args=validate_args)
        self._positive(self.concentration1, "concentration1")
        self._positive(self.concentration0, "concentration0")

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self) -> Tensor:
        """``(a - 1) / (a + b - 2)`` with ``a - 1`` and ``b - 1`` clamped at 0; 1 where both
        are below 1 (the density is unbounded at both ends) and NaN where that is 0 / 0,
        as PyTorch's (the mode of its Dirichlet)."""
        a, b = self.concentration1, self.concentration0
        m1, m0 = (a - 1.0).clip(0.0, None), (b - 1.0).clip(0.0, None)
        s = m1 + m0
        mode = where(s > 0, m1 / where(s > 0, s, 1.0), math.nan)
        return where((a < 1) & (b < 1), 1.0, mode)

    @property
    def variance(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        t = a + b
        return a * b / (t * t * (t + 1.0))

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        dtype = self.concentration1.dtype
        x = _gamma64(broadcast_to(self.concentration1, shape))
        y = _gamma64(broadcast_to(self.concentration0, shape))
        # inside (0, 1), as PyTorch's: a draw rounded to 0 or 1 has log_prob inf and breaks
        # log(1 - v) (small concentrations round there often in float32)
        fi = np.finfo(dtype)
        return (x / (x + y)).astype(dtype).clip(float(fi.tiny), float(1.0 - fi.eps))

    def log_prob(self, value) -> Tensor:
        a, b = self.concentration1, self.concentration0
        v = _val(value, a)
        self._value_check(v, lambda x: (x >= 0) & (x <= 1), "value must lie in [0, 1]")
        return (xlogy(a - 1.0, v) + xlogy(b - 1.0, 1.0 - v) + lgamma(a + b) - lgamma(a)
                - lgamma(b))

    def entropy(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        t = a + b
        return (lgamma(a) + lgamma(b) - lgamma(t) - (2.0 - t) * digamma(t)
                - (a - 1.0) * digamma(a) - (b - 1.0) * digamma(b))


class Dirichlet(_Checks, ExponentialFamily):
    """The Dirichlet distribution on the simplex over the last dim of ``concentration``
    (all positive): ``event_shape`` is ``(K,)``. ``rsample`` normalises K gamma draws
    (implicitly reparameterized, as :class:`Gamma`'s; unbiased, noisier than PyTorch's
    Dirichlet implicit gradient, see :class:`Beta`), clamped into the open simplex as
    PyTorch's (float32 coordinates of small concentrations would round to 0)."""


    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (self.concentration,)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return lgamma(x).sum(axis=-1) - lgamma(x.sum(axis=-1))

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}

    support = constraints.simplex

    has_rsample = True
    _expand_params = ("concentration",)

    def __init__(self, concentration, validate_args: bool | None = None):
        c = as_float(concentration)
        if c.ndim < 1:
            raise ValueError("Dirichlet: concentration must be at least one-dimensional (its "
                             "last dim holds the K categories), got a scalar")
        self.concentration = c
        super().__init__(c.shape[:-1], c.shape[-1:], validate_args=validate_args)
        self._positive(c, "concentration")

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.concentration.sum(axis=-1, keepdims=True)

    @property
    def mode(self) -> Tensor:
        """``(c - 1) / sum(c - 1)`` with ``c - 1`` clamped at 0; where every concentration is
        below 1, the first vertex (as PyTorch's, whose argmax meets NaNs there)."""
        from ..ops.indexing import one_hot
        c = self.concentration
        cm1 = (c - 1.0).clip(0.0, None)
        s = cm1.sum(axis=-1, keepdims=True)
        mode = where(s > 0, cm1 / where(s > 0, s, 1.0), math.nan)
        from ..creation import zeros
        first = one_hot(zeros(self.batch_shape, dtype=np.int64, device=c.device), c.shape[-1])
        return where((c < 1).all(axis=-1, keepdims=True), first.astype(c.dtype), mode)

    @property
    def variance(self) -> Tensor:
        c = self.concentration
        c0 = c.sum(axis=-1, keepdims=True)
        return c * (c0 - c) / (c0 * c0 * (c0 + 1.0))

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        g = _gamma64(broadcast_to(self.concentration, shape))
        x = (g / g.sum(axis=-1, keepdims=True)).astype(self.concentration.dtype)
        # inside the open simplex, as PyTorch's: a float32 coordinate rounded to 0 (small
        # concentrations) would give log_prob +inf; the clamp leaves the gradient alone
        fi = np.finfo(x.dtype)
        return _clamp_value(x, float(fi.tiny), float(1.0 - fi.epsneg))

    def log_prob(self, value) -> Tensor:
        c = self.concentration
        v = _val(value, c)
        k = self.event_shape[0]
        if v.ndim < 1 or v.shape[-1] != k:
            raise ValueError(f"Dirichlet: value must have a last dim of {k} (the event "
                             f"shape), got shape {tuple(v.shape)}")
        if self._validating:
            a = _raw(v)
            ok = (a >= 0).all(axis=-1) & (abs(a.sum(axis=-1) - 1) < 1e-6)
            self._check(ok, "value must lie on the simplex (non-negative, summing to 1 along "
                        "the last dim)")
        return (xlogy(c - 1.0, v).sum(axis=-1) + lgamma(c.sum(axis=-1))
                - lgamma(c).sum(axis=-1))

    def entropy(self) -> Tensor:
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(axis=-1)
        return (lgamma(c).sum(axis=-1) - lgamma(a0) - (k - a0) * digamma(a0)
                - ((c - 1.0) * digamma(c)).sum(axis=-1))


class StudentT(_Checks, Distribution):
    """Student's t with ``df > 0`` degrees of freedom, location ``loc`` and ``scale > 0``.
    The mean is NaN for ``df <= 1``; the variance is infinite for ``1 < df <= 2`` and NaN for
    ``df <= 1``, as PyTorch's. ``rsample`` is ``loc + scale * Z / sqrt(V / df)`` with a
    normal Z and a chi-squared V (a gamma draw, implicitly reparameterized in ``df``)."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real,
                       "scale": constraints.positive}

    support = constraints.real

    has_rsample = True
    _expand_params = ("df", "loc", "scale")

    def __init__(self, df, loc=0.0, scale=1.0, validate_args: bool | None = None):
        self.df, self.loc, self.scale = broadcast_params(df, loc, scale)
        super().__init__(self.df.shape, validate_args=validate_args)
        self._positive(self.df, "df")
        self._check_not_nan(self.loc, "loc")
        self._positive(self.scale, "scale")

    @property
    def mean(self) -> Tensor:
        return where(self.df > 1, self.loc, math.nan)

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        df = self.df
        big = df > 2
        safe = where(big, df, 3.0)
        v = self.scale * self.scale * safe / (safe - 2.0)
        return where(big, v, where(df > 1, math.inf, math.nan))

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        z = _randn(self, sample_shape, self.df)
        chi2 = 2.0 * standard_gamma(broadcast_to(0.5 * self.df, shape))
        chi2 = _clamp_value(chi2, float(np.finfo(chi2.dtype).tiny))
        return self.loc + self.scale * z * (chi2 / self.df).rsqrt()

    def log_prob(self, value) -> Tensor:
        v = _val(value, self.loc)
        self._check_not_nan(v, "value")
        y = (v - self.loc) / self.scale
        df = self.df
        z = (self.scale.log() + 0.5 * df.log() + 0.5 * math.log(math.pi) + lgamma(0.5 * df)
             - lgamma(0.5 * (df + 1.0)))
        return -0.5 * (df + 1.0) * (y * y / df).log1p() - z

    def entropy(self) -> Tensor:
        df = self.df
        lbeta = lgamma(0.5 * df) + math.lgamma(0.5) - lgamma(0.5 * (df + 1.0))
        return (self.scale.log() + 0.5 * (df + 1.0) * (digamma(0.5 * (df + 1.0))
                                                       - digamma(0.5 * df))
                + 0.5 * df.log() + lbeta)
