"""Gumbel, Weibull, Pareto, Kumaraswamy and InverseGamma (transformed distributions, as
PyTorch's), and GeneralizedPareto, VonMises and FisherSnedecor, as torch.distributions.

>>> d = tl.distributions.Weibull(scale, concentration)    # both may require grad
>>> d.rsample((64,)).mean().backward()
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..ops.elementwise import where
from ..ops.shape import broadcast_to
from ..ops.special_fns import digamma, i0e, i1e, lgamma
from . import constraints
from ._gamma import host_draw, standard_gamma
from .base import CenteredAtLoc, Distribution, _host, as_float, broadcast_params
from .base import value_like as _val
from .continuous import Uniform
from .continuous_extra import Exponential, Gamma, _Checks, _clamp_value, _rand
from .kl import register_kl
from .transformed import TransformedDistribution
from .transforms import AffineTransform, ExpTransform, PowerTransform

_EULER = 0.57721566490153286060


def _ones(like: Tensor) -> Tensor:
    from ..creation import ones_like
    return ones_like(like)


class _Transformed(_Checks, TransformedDistribution):
    """A family built as a :class:`TransformedDistribution` whose own parameters (the
    ``_expand_params``) are checked here, naming the family, and expand with it."""

    def _finish(self, base, transforms, validate_args) -> None:
        TransformedDistribution.__init__(self, base, transforms, validate_args=validate_args)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_shape={self.batch_shape})"


class Gumbel(_Transformed):
    """The Gumbel (type-I extreme value) distribution with location ``loc`` and
    ``scale > 0``: ``-log(-log U)`` scaled, for a uniform ``U`` (reparameterized).

    >>> tl.distributions.Gumbel(0.0, 1.0).mean          # Euler's constant
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}

    support = constraints.real
    _expand_params = ("loc", "scale")

    def __init__(self, loc, scale, validate_args: bool | None = None):
        self.loc, self.scale = broadcast_params(loc, scale)
        fi = np.finfo(self.loc.dtype)
        one = _ones(self.loc)
        base = Uniform(one * float(fi.tiny), one * float(1 - fi.eps), validate_args=False)
        self._finish(base, [ExpTransform().inv, AffineTransform(0.0, -one),
                            ExpTransform().inv, AffineTransform(self.loc, -self.scale)],
                     validate_args)
        self._check_not_nan(self.loc, "loc")
        self._positive(self.scale, "scale")

    def _real(self, value) -> Tensor:
        v = _val(value, self.loc)
        self._check_not_nan(v, "value")
        return v

    def log_prob(self, value) -> Tensor:
        y = (self.loc - self._real(value)) / self.scale
        return (y - y.exp()) - self.scale.log()

    def cdf(self, value) -> Tensor:
        return (-((self.loc - self._real(value)) / self.scale).exp()).exp()

    def icdf(self, value) -> Tensor:
        v = _val(value, self.loc)
        self._probability(v, "icdf")
        return self.loc - self.scale * (-v.log()).log()

    @property
    def mean(self) -> Tensor:
        return self.loc + self.scale * _EULER

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return (math.pi / math.sqrt(6)) * self.scale

    @property
    def variance(self) -> Tensor:
        return self.stddev ** 2

    def entropy(self) -> Tensor:
        return self.scale.log() + (1.0 + _EULER)


class Weibull(_Transformed):
    """The two-parameter Weibull distribution with ``scale > 0`` (lambda) and
    ``concentration > 0`` (k): ``scale * E ** (1 / k)`` for a unit exponential ``E``
    (reparameterized), on (0, inf)."""

    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}

    support = constraints.positive
    _expand_params = ("scale", "concentration", "concentration_reciprocal")

    def __init__(self, scale, concentration, validate_args: bool | None = None):
        self.scale, self.concentration = broadcast_params(scale, concentration)
        self.concentration_reciprocal = self.concentration.reciprocal()
        base = Exponential(_ones(self.scale), validate_args=False)
        self._finish(base, [PowerTransform(self.concentration_reciprocal),
                            AffineTransform(0.0, self.scale)], validate_args)
        self._positive(self.scale, "scale")
        self._positive(self.concentration, "concentration")

    @property
    def mean(self) -> Tensor:
        return self.scale * lgamma(1.0 + self.concentration_reciprocal).exp()

    @property
    def mode(self) -> Tensor:
        k = self.concentration
        return self.scale * ((k - 1.0) / k) ** k.reciprocal()

    @property
    def variance(self) -> Tensor:
        r = self.concentration_reciprocal
        return self.scale ** 2 * (lgamma(1.0 + 2.0 * r).exp() - (2.0 * lgamma(1.0 + r)).exp())

    def entropy(self) -> Tensor:
        r = self.concentration_reciprocal
        return _EULER * (1.0 - r) + (self.scale * r).log() + 1.0

    def cdf(self, value) -> Tensor:
        """``-expm1(-(value / scale) ** k)``: exact for small values (PyTorch's ``1 - exp``
        is 0 there)."""
        v = self._value(value)
        return -(-((v / self.scale) ** self.concentration)).expm1()

    def icdf(self, value) -> Tensor:
        """``scale * (-log1p(-value)) ** (1 / k)``, accurate in both tails."""
        v = self._value(value)
        if self._validating:
            from .base import _raw
            a = _raw(v)
            self._check((a >= 0) & (a <= 1), "icdf: value must be a probability in [0, 1]", a)
        return self.scale * (-(-v).log1p()) ** self.concentration_reciprocal


class Pareto(_Transformed):
    """The Pareto (type I) distribution with ``scale > 0`` (the minimum) and ``alpha > 0``:
    ``scale * exp(E)`` for ``E ~ Exponential(alpha)`` (reparameterized), on [scale, inf).
    The mean is infinite for ``alpha <= 1``, the variance for ``alpha <= 2``, as PyTorch's.
    """

    arg_constraints = {"alpha": constraints.positive, "scale": constraints.positive}

    _expand_params = ("scale", "alpha")

    def __init__(self, scale, alpha, validate_args: bool | None = None):
        self.scale, self.alpha = broadcast_params(scale, alpha)
        base = Exponential(self.alpha, validate_args=False)
        self._finish(base, [ExpTransform(), AffineTransform(0.0, self.scale)], validate_args)
        self._positive(self.scale, "scale")
        self._positive(self.alpha, "alpha")

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.greater_than_eq(self.scale)

    @property
    def mean(self) -> Tensor:
        a = self.alpha.clip(1.0, None)
        return a * self.scale / (a - 1.0)

    @property
    def mode(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        a = self.alpha.clip(2.0, None)
        return self.scale ** 2 * a / ((a - 1.0) ** 2 * (a - 2.0))

    def entropy(self) -> Tensor:
        return (self.scale / self.alpha).log() + (1.0 + self.alpha.reciprocal())


def _kumaraswamy_moment(a: Tensor, b: Tensor, n: int) -> Tensor:
    """``E[X ** n] = b B(1 + n / a, b)``."""
    arg = 1.0 + n / a
    return b * (lgamma(arg) + lgamma(b) - lgamma(arg + b)).exp()


class Kumaraswamy(_Transformed):
    """The Kumaraswamy distribution on [0, 1] with ``concentration1`` (a) and
    ``concentration0`` (b), both positive: density ``a b x^(a-1) (1 - x^a)^(b-1)``;
    ``(1 - U ** (1 / b)) ** (1 / a)`` for a uniform ``U`` (reparameterized)."""

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}

    support = constraints.unit_interval
    _expand_params = ("concentration1", "concentration0")

    def __init__(self, concentration1, concentration0, validate_args: bool | None = None):
        self.concentration1, self.concentration0 = broadcast_params(concentration1,
                                                                    concentration0)
        zero = _ones(self.concentration0) * 0.0
        base = Uniform(zero, zero + 1.0, validate_args=False)
        self._finish(base, [PowerTransform(self.concentration0.reciprocal()),
                            AffineTransform(1.0, -1.0),
                            PowerTransform(self.concentration1.reciprocal())], validate_args)
        self._positive(self.concentration1, "concentration1")
        self._positive(self.concentration0, "concentration0")

    @property
    def mean(self) -> Tensor:
        return _kumaraswamy_moment(self.concentration1, self.concentration0, 1)

    @property
    def mode(self) -> Tensor:
        """``((a - 1) / (a b - 1)) ** (1 / a)`` where ``a >= 1`` and ``b >= 1`` (not both 1);
        NaN elsewhere, where the density is unbounded or flat. (PyTorch 2.13's formula
        gives NaN whenever ``b > 1``, a bug not copied here.)"""
        a, b = self.concentration1, self.concentration0
        ok = (a >= 1) & (b >= 1) & ((a > 1) | (b > 1))
        sa, sb = where(ok, a, 2.0), where(ok, b, 2.0)
        return where(ok, ((sa - 1.0) / (sa * sb - 1.0)) ** sa.reciprocal(), math.nan)

    @property
    def variance(self) -> Tensor:
        return (_kumaraswamy_moment(self.concentration1, self.concentration0, 2)
                - self.mean ** 2)

    def entropy(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        t1, t0 = 1.0 - a.reciprocal(), 1.0 - b.reciprocal()
        h0 = digamma(b + 1.0) + _EULER
        return t0 + t1 * h0 - a.log() - b.log()


class InverseGamma(_Transformed):
    """``1 / X`` for ``X ~ Gamma(concentration, rate)`` (both positive), on (0, inf);
    reparameterized through the gamma draw. The mean is infinite for
    ``concentration <= 1``, the variance for ``concentration <= 2``, as PyTorch's."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}

    support = constraints.positive
    _expand_params = ()

    def __init__(self, concentration, rate, validate_args: bool | None = None):
        concentration, rate = broadcast_params(concentration, rate)
        base = Gamma(concentration, rate, validate_args=False)
        self._finish(base, PowerTransform(as_float(-1.0, rate)), validate_args)
        self._positive(concentration, "concentration")
        self._positive(rate, "rate")

    @property
    def concentration(self) -> Tensor:
        return self.base_dist.concentration

    @property
    def rate(self) -> Tensor:
        return self.base_dist.rate

    @property
    def mean(self) -> Tensor:
        c = self.concentration
        return where(c > 1, self.rate / (c - 1.0), math.inf)

    @property
    def mode(self) -> Tensor:
        return self.rate / (self.concentration + 1.0)

    @property
    def variance(self) -> Tensor:
        c = self.concentration
        return where(c > 2, self.rate ** 2 / ((c - 1.0) ** 2 * (c - 2.0)), math.inf)

    def entropy(self) -> Tensor:
        c = self.concentration
        return c + self.rate.log() + lgamma(c) - (1.0 + c) * digamma(c)


class GeneralizedPareto(_Checks, Distribution):
    """The generalized Pareto distribution with location ``loc``, ``scale > 0`` and shape
    ``concentration`` (xi, any real): support ``[loc, inf)`` for ``xi >= 0`` and
    ``[loc, loc - scale / xi]`` for ``xi < 0``. ``rsample`` inverts the cdf of a uniform
    draw; the mean is NaN for ``xi >= 1`` and the variance for ``xi >= 1/2``, as PyTorch's.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive,
                       "concentration": constraints.real}

    has_rsample = True
    _expand_params = ("loc", "scale", "concentration")

    def __init__(self, loc, scale, concentration, validate_args: bool | None = None):
        self.loc, self.scale, self.concentration = broadcast_params(loc, scale, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)
        self._check_not_nan(self.loc, "loc")
        self._positive(self.scale, "scale")
        self._check_not_nan(self.concentration, "concentration")

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        c = self.concentration
        upper = where(c < 0, self.loc - self.scale / where(c < 0, c, -1.0), math.inf)
        return constraints.interval(self.loc, upper)

    def _safe(self):
        """Where xi is 0 (``isclose``, as PyTorch), and xi with 1 there (no 0 / 0)."""
        c = self.concentration
        zero = c.abs() <= 1e-8
        return zero, where(zero, 1.0, c)

    def _in_support(self, value) -> Tensor:
        v = _val(value, self.loc)
        if self._validating:
            self._check_not_nan(v, "value")
            ok = self.support.check(v.detach())
            self._check(ok, "value must lie in the support ([loc, inf) for concentration "
                        ">= 0, [loc, loc - scale / concentration] below 0)", v)
        return v

    def log_prob(self, value) -> Tensor:
        z = (self._in_support(value) - self.loc) / self.scale
        zero, c = self._safe()
        y = 1.0 / c + 1.0
        nonzero = where(y == 0, y, y * (c * z).log1p())
        return -self.scale.log() - where(zero, z, nonzero)

    def log_survival_function(self, value) -> Tensor:
        """``log P(X > value)``."""
        z = (self._in_support(value) - self.loc) / self.scale
        zero, c = self._safe()
        return where(zero, -z, -(c * z).log1p() / c)

    def log_cdf(self, value) -> Tensor:
        return (-self.log_survival_function(value).exp()).log1p()

    def cdf(self, value) -> Tensor:
        return self.log_cdf(value).exp()

    def icdf(self, value) -> Tensor:
        v = _val(value, self.loc)
        self._probability(v, "icdf")
        zero, c = self._safe()
        logu = (-v).log1p()
        return where(zero, self.loc - self.scale * logu,
                     self.loc + self.scale / c * (-c * logu).expm1())

    def rsample(self, sample_shape=()) -> Tensor:
        u = _rand(self, sample_shape, self.loc)
        zero, c = self._safe()
        logu = (-u).log1p()
        return where(zero, self.loc - self.scale * logu,
                     self.loc + self.scale / c * (-c * logu).expm1())

    @property
    def mean(self) -> Tensor:
        c = self.concentration
        valid = c < 1
        return where(valid, self.loc + self.scale / (1.0 - where(valid, c, 0.5)), math.nan)

    @property
    def variance(self) -> Tensor:
        c = self.concentration
        valid = c < 0.5
        s = where(valid, c, 0.25)
        return where(valid, self.scale ** 2 / ((1.0 - s) ** 2 * (1.0 - 2.0 * s)), math.nan)

    @property
    def mode(self) -> Tensor:
        return self.loc

    def entropy(self) -> Tensor:
        return self.scale.log() + self.concentration + 1.0


def _log_i0(k: Tensor) -> Tensor:
    """``log I0(k)`` for ``k >= 0``, without overflow (``i0e(k) = exp(-k) I0(k)``)."""
    return i0e(k).log() + k


def _von_mises_draw(loc: np.ndarray, kappa: np.ndarray, shape, g) -> np.ndarray:
    """Best & Fisher's (1979) rejection sampler, in float64, as PyTorch's."""
    loc = np.broadcast_to(loc.astype(np.float64), shape)
    kappa = np.broadcast_to(kappa.astype(np.float64), shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tau = 1.0 + np.sqrt(1.0 + 4.0 * kappa ** 2)
        rho = (tau - np.sqrt(2.0 * tau)) / (2.0 * kappa)
        r = np.where(kappa < 1e-5, 1.0 / kappa + kappa, (1.0 + rho ** 2) / (2.0 * rho))
        x = np.zeros(shape)
        done = np.zeros(shape, dtype=bool)
        while not done.all():
            u1, u2, u3 = g.random((3,) + tuple(shape))
            z = np.cos(math.pi * u1)
            f = (1.0 + r * z) / (r + z)
            c = kappa * (r - f)
            accept = ~done & (((c * (2.0 - c) - u2) > 0) | (np.log(c / u2) + 1.0 - c >= 0))
            x = np.where(accept, np.sign(u3 - 0.5) * np.arccos(np.clip(f, -1.0, 1.0)), x)
            done |= accept
    return (x + math.pi + loc) % (2.0 * math.pi) - math.pi


class VonMises(_Checks, CenteredAtLoc, Distribution):
    """The circular von Mises distribution with mean angle ``loc`` (radians) and
    ``concentration > 0``: density ``exp(k cos(x - loc)) / (2 pi I0(k))``. Values and
    ``loc`` may be any real number (read modulo 2 pi); samples lie in [-pi, pi). The mean
    and variance are the circular ones (``loc`` and ``1 - I1(k) / I0(k)``). Sampled by
    rejection on the host (no ``rsample``, not capturable), as PyTorch's.
    """

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}

    support = constraints.real
    _expand_params = ("loc", "concentration")

    def __init__(self, loc, concentration, validate_args: bool | None = None):
        self.loc, self.concentration = broadcast_params(loc, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)
        self._check_not_nan(self.loc, "loc")
        self._positive(self.concentration, "concentration")

    def log_prob(self, value) -> Tensor:
        v = _val(value, self.loc)
        self._check_not_nan(v, "value")
        k = self.concentration
        return k * (v - self.loc).cos() - math.log(2 * math.pi) - _log_i0(k)

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        loc, k = _host(self.loc.detach()._data), _host(self.concentration.detach()._data)
        return host_draw("sampling a VonMises distribution",
                         lambda g: _von_mises_draw(loc, k, shape, g), self.loc)

    @property
    def variance(self) -> Tensor:
        k = self.concentration
        return 1.0 - i1e(k) / i0e(k)


class FisherSnedecor(_Checks, Distribution):
    """The F distribution with ``df1 > 0`` and ``df2 > 0`` degrees of freedom, on (0, inf):
    the ratio of two scaled chi-squared draws (gamma draws, implicitly reparameterized).
    The mean is NaN for ``df2 <= 2``, the variance for ``df2 <= 4``, the mode for
    ``df1 <= 2``, as PyTorch's."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}

    support = constraints.positive
    has_rsample = True
    _expand_params = ("df1", "df2")

    def __init__(self, df1, df2, validate_args: bool | None = None):
        self.df1, self.df2 = broadcast_params(df1, df2)
        super().__init__(self.df1.shape, validate_args=validate_args)
        self._positive(self.df1, "df1")
        self._positive(self.df2, "df2")

    @property
    def mean(self) -> Tensor:
        d2 = self.df2
        ok = d2 > 2
        s = where(ok, d2, 3.0)
        return where(ok, s / (s - 2.0), math.nan)

    @property
    def mode(self) -> Tensor:
        d1, d2 = self.df1, self.df2
        ok = d1 > 2
        s = where(ok, d1, 3.0)
        return where(ok, (s - 2.0) / s * d2 / (d2 + 2.0), math.nan)

    @property
    def variance(self) -> Tensor:
        d1, d2 = self.df1, self.df2
        ok = d2 > 4
        s = where(ok, d2, 5.0)
        v = 2.0 * s ** 2 * (d1 + s - 2.0) / (d1 * (s - 2.0) ** 2 * (s - 4.0))
        return where(ok, v, math.nan)

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        tiny = float(np.finfo(self.df1.dtype).tiny)
        x1 = standard_gamma(broadcast_to(0.5 * self.df1, shape)) / self.df1
        x2 = _clamp_value(standard_gamma(broadcast_to(0.5 * self.df2, shape)) / self.df2, tiny)
        return _clamp_value(x1 / x2, tiny)

    def log_prob(self, value) -> Tensor:
        v = _val(value, self.df1)
        self._value_check(v, lambda a: a > 0, "value must be positive (the support is "
                          "(0, inf))")
        c1, c2 = 0.5 * self.df1, 0.5 * self.df2
        c3 = self.df1 / self.df2
        t1 = lgamma(c1 + c2) - lgamma(c1) - lgamma(c2)
        t2 = c1 * c3.log() + (c1 - 1.0) * v.log()
        t3 = (c1 + c2) * (c3 * v).log1p()
        return t1 + t2 - t3


@register_kl(Gumbel, Gumbel)
def _kl_gumbel(p: Gumbel, q: Gumbel) -> Tensor:
    ct1 = p.scale / q.scale
    ct2 = q.loc / q.scale
    ct3 = p.loc / q.scale
    t3 = (ct2 + lgamma(1.0 + ct1) - ct3).exp()
    return -ct1.log() - ct2 + ct3 + ct1 * _EULER + t3 - (1.0 + _EULER)


@register_kl(Pareto, Pareto)
def _kl_pareto(p: Pareto, q: Pareto) -> Tensor:
    scale_ratio = p.scale / q.scale
    alpha_ratio = q.alpha / p.alpha
    kl = q.alpha * scale_ratio.log() - alpha_ratio.log() + alpha_ratio - 1.0
    # p puts mass below q's minimum, where q has none
    return where(p.scale < q.scale, math.inf, kl)
