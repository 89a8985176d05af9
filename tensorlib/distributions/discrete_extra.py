"""More discrete distributions, as torch.distributions: Poisson, Binomial and Geometric.
Their samples are float counts in the parameters' dtype, as PyTorch's; none has a
reparameterized sample."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..ops.elementwise import softplus, where
from ..ops.shape import broadcast_to
from ..ops.special_fns import lgamma
from ..special import xlogy
from . import constraints
from ._gamma import host_draw
from .base import _raw
from .base import Distribution, _host, as_float
from .continuous_extra import _Checks, _val
from .discrete import _probs_or_logits
from .exp_family import ExponentialFamily


def _counts(a) -> np.ndarray:
    """Where the backend array ``a`` holds non-negative whole numbers."""
    return (a >= 0) & (a % 1 == 0)


def _logits_of(p: Tensor) -> Tensor:
    """Log-odds of probabilities, clamped to [eps, 1 - eps] first (PyTorch's
    ``probs_to_logits(is_binary=True)``)."""
    eps = float(np.finfo(p.dtype).eps)
    q = p.clip(eps, 1.0 - eps)
    return q.log() - (-q).log1p()


class _Binary(_Checks):
    """``probs`` / ``logits`` (exactly one given) broadcast with ``others`` (numbers or
    tensors that take the probabilities' dtype), the other one derived."""

    def _binary_init(self, name: str, probs, logits, others=(), validate_args=None):
        probs, logits = _probs_or_logits(name, probs, logits)
        src = as_float(probs if probs is not None else logits)
        extra = [o.astype(src.dtype) if isinstance(o, Tensor) else as_float(o, src)
                 for o in others]
        shape = np.broadcast_shapes(tuple(src.shape), *[tuple(o.shape) for o in extra])
        src = broadcast_to(src, shape) if tuple(src.shape) != shape else src
        extra = [broadcast_to(o, shape) if tuple(o.shape) != shape else o for o in extra]
        Distribution.__init__(self, shape, validate_args=validate_args)
        if probs is not None:
            self.probs = src
            if self._validating:
                self._check_probs(_raw(src))
            self.logits = _logits_of(src)
        else:
            self._check_not_nan(src, "logits")
            self.logits, self.probs = src, src.sigmoid()
        return extra

    def _check_probs(self, p) -> None:
        self._check((p >= 0) & (p <= 1), "probs must lie in [0, 1]", p)


class Poisson(_Checks, ExponentialFamily):
    """Counts with mean ``rate >= 0``: ``P(k) = rate^k exp(-rate) / k!``. Sampled by NumPy on
    the host (not capturable in a graph); no entropy, as PyTorch."""


    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (self.rate.log(),)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return x.exp()

    arg_constraints = {"rate": constraints.nonnegative}

    support = constraints.nonnegative_integer

    _expand_params = ("rate",)

    def __init__(self, rate, validate_args: bool | None = None):
        self.rate = as_float(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)
        if self._validating:
            r = _raw(self.rate)
            self._check(r >= 0, "rate must be non-negative", r)

    @property
    def mean(self) -> Tensor:
        return self.rate

    @property
    def mode(self) -> Tensor:
        return self.rate.detach().floor()

    @property
    def variance(self) -> Tensor:
        return self.rate

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        rate = np.broadcast_to(_host(self.rate._data), shape)
        return host_draw("sampling a Poisson distribution", lambda g: g.poisson(rate),
                         self.rate)

    def log_prob(self, value) -> Tensor:
        v = _val(value, self.rate)
        self._value_check(v, _counts, "value must be a non-negative integer (a count)")
        return xlogy(v, self.rate) - self.rate - lgamma(v + 1.0)

    def entropy(self) -> Tensor:
        raise NotImplementedError("Poisson: entropy has no closed form and is not implemented "
                                  "(as PyTorch)")


class Binomial(_Binary, Distribution):
    """The number of successes in ``total_count`` (a non-negative integer, default 1)
    trials of probability ``probs`` (or ``sigmoid(logits)``). Sampled by NumPy on the host.

    >>> tl.distributions.Binomial(10, probs=tl.tensor([0.2, 0.9])).sample()
    """

    arg_constraints = {"total_count": constraints.nonnegative_integer,
                       "probs": constraints.unit_interval, "logits": constraints.real}

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    has_enumerate_support = True
    _expand_params = ("total_count", "probs", "logits")

    @property
    def param_shape(self) -> tuple[int, ...]:
        """The shape of ``probs`` (or ``logits``), as PyTorch's."""
        return tuple(self.probs.shape)

    def __init__(self, total_count=1, probs=None, logits=None,
                 validate_args: bool | None = None):
        (self.total_count,) = self._binary_init("Binomial", probs, logits, (total_count,),
                                                validate_args)
        if self._validating:
            n = _raw(self.total_count)
            self._check(_counts(n), "total_count must be a non-negative integer", n)

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.probs

    @property
    def mode(self) -> Tensor:
        n = self.total_count
        m = ((n + 1.0) * self.probs).floor()
        return where(m > n, n, m)

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1.0 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        n = np.broadcast_to(_host(self.total_count._data), shape).astype(np.int64)
        p = np.broadcast_to(_host(self.probs._data), shape).astype(np.float64)
        return host_draw("sampling a Binomial distribution", lambda g: g.binomial(n, p),
                         self.probs)

    def log_prob(self, value) -> Tensor:
        n, logits = self.total_count, self.logits
        v = _val(value, logits)
        if self._validating:
            a = _raw(v)
            self._check(a == a, "value must not be NaN", a)
            self._check(_counts(a) & (a <= _raw(n)), "value must be an integer in [0, "
                        "total_count]", a)
        # n * softplus(logits), as PyTorch writes it (max(l, 0) with gradient 1/2 at 0)
        pos = (logits.clip(0.0, None) + logits - logits.clip(None, 0.0)) * 0.5
        norm = n * pos + n * (-logits.abs()).exp().log1p() - lgamma(n + 1.0)
        return v * logits - lgamma(v + 1.0) - lgamma(n - v + 1.0) - norm

    def _one_count(self, what: str) -> int:
        n = _host(self.total_count._data)
        top = int(n.max()) if n.size else 0
        if n.size and not (n == top).all():
            raise NotImplementedError(f"Binomial: {what} needs one total_count for the whole "
                                      "batch (as PyTorch)")
        return top

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """The counts ``0 .. total_count`` (one total_count for the batch), shaped
        ``(total_count + 1,) + batch_shape`` (``(total_count + 1, 1, ...)`` without
        ``expand``), in the probabilities' dtype, as PyTorch's."""
        from ..creation import arange
        top = self._one_count("enumerate_support")
        v = arange(top + 1, dtype=self.probs.dtype, device=self.probs.device)
        v = v.reshape((-1,) + (1,) * len(self.batch_shape))
        return v.broadcast_to((top + 1,) + self.batch_shape) if expand else v

    def entropy(self) -> Tensor:
        lp = self.log_prob(self.enumerate_support(False))
        return -(lp.exp() * lp).sum(axis=0)


class Geometric(_Binary, Distribution):
    """The number of failures before the first success of trials with success probability
    ``probs`` in (0, 1] (or ``sigmoid(logits)``): ``P(k) = (1 - p)^k p``, k = 0, 1, ...
    Sampled by inverting the CDF of a ``tl.rand`` draw (capturable)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}

    support = constraints.nonnegative_integer

    _expand_params = ("probs", "logits")

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None):
        self._binary_init("Geometric", probs, logits, (), validate_args)

    def _check_probs(self, p) -> None:
        self._check((p > 0) & (p <= 1), "probs must lie in (0, 1]", p)

    @property
    def mean(self) -> Tensor:
        return 1.0 / self.probs - 1.0

    @property
    def mode(self) -> Tensor:
        from ..creation import zeros_like
        return zeros_like(self.probs)

    @property
    def variance(self) -> Tensor:
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()) -> Tensor:
        from ..autograd.mode import no_grad
        from ..creation import rand
        p = self.probs.detach()
        tiny = float(np.finfo(p.dtype).tiny)
        with no_grad():
            u = rand(*self._extended_shape(sample_shape), dtype=p.dtype, device=p.device)
            return (u.clip(tiny, None).log() / (-p).log1p()).floor()

    def log_prob(self, value) -> Tensor:
        p = self.probs
        v = _val(value, p)
        self._value_check(v, _counts, "value must be a non-negative integer (a count)")
        # p = 1: only k = 0 has mass, and 0 * log(0) there is 0
        q = where((p == 1) & (v == 0), 0.0, p)
        return v * (-q).log1p() + p.log()

    def entropy(self) -> Tensor:
        return (softplus(self.logits) - self.probs * self.logits) / self.probs

