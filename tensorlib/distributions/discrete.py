"""Discrete distributions: Bernoulli, Categorical and OneHotCategorical, from probabilities
or logits."""
from __future__ import annotations

import math

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from ..ops.sampling import MULTINOMIAL_DRAW, checked_cdf, search_draws
from ..ops.elementwise import log, softplus, where
from ..ops.indexing import TAKE_ALONG_AXIS, one_hot
from ..ops.nn_act import log_softmax, softmax
from . import constraints
from .exp_family import ExponentialFamily
from .base import (Distribution, _all, _raw, as_float, broadcast_params, readable,
                   sample_error)


def _probs_or_logits(name: str, probs, logits):
    if (probs is None) == (logits is None):
        raise ValueError(f"{name}: give exactly one of probs and logits")
    return probs, logits


class Bernoulli(ExponentialFamily):
    """1 with probability ``probs`` (or ``sigmoid(logits)``), else 0.

    >>> tl.distributions.Bernoulli(probs=0.3).sample((5,))
    """


    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple[Tensor]:
        return (self.logits,)

    def _log_normalizer(self, x: Tensor) -> Tensor:
        return softplus(x)

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}

    support = constraints.boolean

    has_enumerate_support = True
    _expand_params = ("probs", "logits")

    @property
    def param_shape(self) -> tuple[int, ...]:
        """The shape of ``probs`` (or ``logits``), as PyTorch's."""
        return tuple(self.probs.shape)

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None):
        probs, logits = _probs_or_logits("Bernoulli", probs, logits)
        # probs of 0 or 1 get clamped logits: kl_divergence needs to know they were exact
        self._from_probs = probs is not None
        if probs is not None:
            (self.probs,) = broadcast_params(probs)
            super().__init__(self.probs.shape, validate_args=validate_args)
            if self._validating:
                p = _raw(self.probs)
                self._check((p >= 0) & (p <= 1), "probs must lie in [0, 1]", p)
            eps = float(np.finfo(self.probs.dtype).eps)
            p = self.probs.clip(eps, 1 - eps)
            self.logits = log(p) - log(1.0 - p)
        else:
            (self.logits,) = broadcast_params(logits)
            super().__init__(self.logits.shape, validate_args=validate_args)
            self._check_not_nan(self.logits, "logits")
            self.probs = self.logits.sigmoid()

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        """1 where ``probs > 0.5``, 0 where below, NaN at exactly 0.5 (as PyTorch)."""
        p = self.probs.detach()
        return where(p == 0.5, math.nan, (p > 0.5).astype(p.dtype))

    @property
    def variance(self) -> Tensor:
        return self.probs * (1.0 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        """0/1 draws. Probabilities outside [0, 1] or NaN (NaN logits included) raise
        whatever ``validate_args`` says, as ``torch.bernoulli`` inside PyTorch's ``sample``;
        on a GPU or in a captured graph those draws are NaN instead (no host sync)."""
        from ..creation import rand
        p = self.probs.detach()
        host = readable(p)
        if host is not None and not bool(((host >= 0) & (host <= 1)).all()):
            raise sample_error("Bernoulli", "probs must lie in [0, 1] (got a value outside "
                               "or NaN; NaN logits give NaN probs)")
        u = rand(*self._extended_shape(sample_shape), dtype=self.probs.dtype,
                 device=self.probs.device)
        x = (u < p).astype(self.probs.dtype)
        if host is None:
            x = where((p >= 0) & (p <= 1), x, math.nan)
        return x

    def log_prob(self, value) -> Tensor:
        v = as_float(self._value(value), self.logits)
        if self._validating:
            a = _raw(v)
            self._check((a == 0) | (a == 1), "values must be 0 or 1", a)
        return v * self.logits - softplus(self.logits)

    def entropy(self) -> Tensor:
        return softplus(self.logits) - self.probs * self.logits

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """The values 0 and 1, shaped ``(2,) + batch_shape`` (``(2, 1, ...)`` without
        ``expand``), as PyTorch's."""
        from ..creation import arange
        v = arange(2, dtype=self.probs.dtype, device=self.probs.device)
        v = v.reshape((-1,) + (1,) * len(self.batch_shape))
        return v.broadcast_to((2,) + self.batch_shape) if expand else v


class Categorical(Distribution):
    """One of K classes (the last dim of ``probs`` or ``logits``), probabilities normalised.

    A class of probability 0 (a ``-inf`` logit, e.g. a masked action) is never sampled.

    >>> c = tl.distributions.Categorical(logits=scores)     # scores: (..., K)
    >>> c.sample(), c.log_prob(labels)
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.num_classes - 1)

    has_enumerate_support = True
    _expand_params = ("probs", "logits")

    @property
    def param_shape(self) -> tuple[int, ...]:
        """The shape of ``probs`` (or ``logits``), as PyTorch's."""
        return tuple(self.probs.shape)

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None):
        probs, logits = _probs_or_logits("Categorical", probs, logits)
        src = as_float(probs if probs is not None else logits)
        if src.ndim < 1:
            raise ValueError("Categorical: probs/logits need a last dim of classes")
        super().__init__(src.shape[:-1], validate_args=validate_args)
        if probs is not None:
            self.probs = src / src.sum(axis=-1, keepdims=True)
            if self._validating:
                self._check_probs(_raw(src), _raw(self.probs))
            # PyTorch's probs_to_logits: clamped to [eps, 1 - eps] (not tiny), so a zero
            # probability has logit log(eps) and the same gradients as there
            eps = float(np.finfo(src.dtype).eps)
            self.logits = log(self.probs.clip(eps, 1.0 - eps))
        else:
            self.logits = log_softmax(src, -1)
            if self._validating:
                self._check_logits(_raw(src), _raw(self.logits))
            self.probs = softmax(src, -1)
        self.num_classes = src.shape[-1]

    def _check_probs(self, raw, normed) -> None:
        if _all(raw >= 0) and _all(normed == normed):
            return
        self._check(raw == raw, "probs must not be NaN", raw)
        self._check(raw >= 0, "probs must not be negative", raw)
        self._check(abs(raw) != math.inf, "probs must be finite", raw)
        total = raw.sum(axis=-1)
        self._check(total > 0, "probs must not all be 0 along the last dim (no class could "
                    "be drawn)", total)

    def _check_logits(self, raw, normed) -> None:
        if _all(normed == normed):
            return
        self._check(raw == raw, "logits must not be NaN", raw)
        self._check(raw != math.inf, "logits must not be +inf", raw)
        self._check((raw != -math.inf).any(axis=-1), "logits must not all be -inf along the "
                    "last dim (every class would have probability 0)")

    @property
    def mean(self) -> Tensor:
        """NaN: class labels have no mean (as PyTorch, which returns NaN too)."""
        return self.probs.detach()[..., 0] * math.nan

    @property
    def variance(self) -> Tensor:
        """NaN, shaped ``batch_shape``, as PyTorch's (class labels have no variance)."""
        return self.probs.detach()[..., 0] * math.nan

    @property
    def mode(self) -> Tensor:
        """The most probable class (the first of ties)."""
        return self.probs.detach().argmax(axis=-1)

    def sample(self, sample_shape=()) -> Tensor:
        """Class indices (int64) of shape ``sample_shape + batch_shape``. NaN probabilities
        (NaN logits, or logits all -inf along a row) and negative ones raise whatever
        ``validate_args`` says, as ``torch.multinomial`` inside PyTorch's ``sample``, also when
        a graph captured on the CPU replays; on a GPU (no host sync) such a row draws the
        out-of-range class ``num_classes`` instead of a valid-looking 0."""
        idx, ok = self._sample(sample_shape)
        if ok is not None:
            idx = where(ok, idx, self.num_classes)
        return idx

    def _sample(self, sample_shape) -> tuple[Tensor, Tensor | None]:
        """The draw, and None when the probabilities are checked on the host (eager, or by
        the op when a CPU graph runs), else (GPU) a bool tensor of ``batch_shape``: which
        rows hold valid probabilities (for the caller to poison the others)."""
        # inverse CDF with u uniform in (0, total]: the class drawn is the number of cdf
        # entries below u, and a class of probability 0 (cdf[k] == cdf[k-1], or cdf[0] == 0)
        # can never have u in (cdf[k-1], cdf[k]]. Drawing against the float64 total (not 1)
        # keeps a trailing masked class out when the float32 probs sum below 1.
        from ..creation import rand
        shape = self._extended_shape(sample_shape)
        nb = math.prod(self.probs.shape[:-1])
        # draws per batch row (an explicit count: reshape(-1, 0) of an empty batch fails)
        S = math.prod(shape[:len(shape) - len(self.batch_shape)])
        K = self.num_classes
        p = readable(self.probs)
        if p is not None:
            # the same draw in NumPy: an RL agent samples one action per step, and the ops
            # below cost more than the draw (the op's own check and search, one cumsum)
            from .._tensor import _wrap
            from ..creation import _made
            from ..random import rng
            cdf = checked_cdf(p, "Categorical").reshape(nb, K)
            u = rng().random(shape)        # rand(*shape, dtype=float64)'s draw
            # one row of draws per batch row: (batch, samples)
            idx = search_draws(cdf, u.reshape(S, nb).T).T.reshape(shape)
            return _made(_wrap(idx, self.probs._device, False, None, 0)), None
        probs = self.probs.detach()
        if type(probs._data) is np.ndarray:
            # captured on the CPU: the op checks the rows when the graph runs (as the eager
            # call) and raises, so nothing needs poisoning; a lone draw needs no reshaping
            if len(shape) == len(self.batch_shape):
                u = rand(*shape, 1, dtype=np.float64, device=self.probs.device)
                return apply(MULTINOMIAL_DRAW, probs, u, who="Categorical").squeeze(-1), None
            u = rand(*shape, dtype=np.float64, device=self.probs.device)
            idx = apply(MULTINOMIAL_DRAW, probs.reshape(nb, K), u.reshape(S, nb).swapaxes(0, 1),
                        who="Categorical")
            return idx.swapaxes(0, 1).reshape(shape), None
        u = rand(*shape, dtype=np.float64, device=self.probs.device)
        cdf = probs.astype(np.float64).cumsum(axis=-1)
        total = cdf[..., -1]
        ok = (probs >= 0).all(axis=-1) & (total > 0) & (total < math.inf)
        # the multinomial_draw op wants one row of draws per batch row: (batch, samples)
        idx = apply(MULTINOMIAL_DRAW, probs.reshape(nb, K), u.reshape(S, nb).swapaxes(0, 1),
                    who="Categorical")
        return idx.swapaxes(0, 1).reshape(shape), ok

    def log_prob(self, value) -> Tensor:
        v = self._value(value)
        if self._validating:
            a = _raw(v)
            ok = (a >= 0) & (a < self.num_classes)
            if a.dtype.kind == "f":
                ok &= a % 1 == 0
            self._check(ok, f"values must be class indices in [0, {self.num_classes})", a)
        if v.dtype.kind not in "iu":
            v = v.astype(np.int64)
        shape = np.broadcast_shapes(tuple(v.shape), self.batch_shape)
        logits = self.logits.broadcast_to(shape + (self.num_classes,))
        v = v.broadcast_to(shape).unsqueeze(-1)
        # strict (PyTorch's gather): a negative class (an RL buffer's -1 "no action") raises
        # with validation off, here and when a captured graph replays, instead of wrapping
        return apply(TAKE_ALONG_AXIS, logits, v, axis=len(shape), strict="Categorical.log_prob"
                     ).squeeze(-1)

    def entropy(self) -> Tensor:
        # a -inf logit (a masked class) has probability 0: clamped to the dtype's lowest
        # finite value, as PyTorch, 0 * logit is 0 and its gradient finite (not NaN)
        logits = self.logits.clip(float(np.finfo(self.logits.dtype).min), None)
        return -(self.probs * logits).sum(axis=-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """The classes ``0 .. K-1`` as int64, shaped ``(K,) + batch_shape`` (``(K, 1, ...)``
        without ``expand``), as PyTorch's."""
        from ..creation import arange
        v = arange(self.num_classes, device=self.probs.device)
        v = v.reshape((-1,) + (1,) * len(self.batch_shape))
        return v.broadcast_to((self.num_classes,) + self.batch_shape) if expand else v


class OverCategorical:
    """What the distributions over a :class:`Categorical`'s classes share (OneHotCategorical,
    Multinomial): the Categorical itself, its ``probs``/``logits``, and ``expand``."""

    _expand_params = ()

    @property
    def param_shape(self) -> tuple[int, ...]:
        """The shape of ``probs`` (or ``logits``), as PyTorch's."""
        return tuple(self.probs.shape)

    def _over_categorical(self, probs, logits, validate_args) -> None:
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        c = self._categorical
        Distribution.__init__(self, c.batch_shape, (c.num_classes,), validate_args=validate_args)

    def _expand_more(self, new, batch_shape) -> None:
        new._categorical = self._categorical.expand(batch_shape)

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits


class OneHotCategorical(OverCategorical, Distribution):
    """A :class:`Categorical` draw as a one-hot vector: ``event_shape`` is ``(K,)`` and a
    sample has the probabilities' float dtype, as PyTorch's.

    >>> d = tl.distributions.OneHotCategorical(logits=scores)   # scores: (..., K)
    >>> a = d.sample()                                        # (..., K), one 1 per row
    >>> d.log_prob(a)
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    support = constraints.one_hot

    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None):
        self._over_categorical(probs, logits, validate_args)

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        return one_hot(self._categorical.mode, self.event_shape[0]).astype(self.probs.dtype)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1.0 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        """One-hot draws; invalid probabilities raise as :meth:`Categorical.sample` (on a GPU,
        such a row comes out NaN)."""
        idx, ok = self._categorical._sample(sample_shape)
        x = one_hot(idx, self.event_shape[0]).astype(self.probs.dtype)
        return x if ok is None else where(ok.unsqueeze(-1), x, math.nan)

    def log_prob(self, value) -> Tensor:
        v = self._value(value)
        if self._validating:
            a = _raw(v)
            ok = ((a == 0) | (a == 1)).all(axis=-1) & (a.sum(axis=-1) == 1)
            self._check(ok, "values must be one-hot vectors along the last dim (one 1, "
                        "the rest 0)")
        return self._categorical.log_prob(v.argmax(axis=-1))

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """The K one-hot vectors, shaped ``(K,) + batch_shape + (K,)`` (``(K, 1, ..., K)``
        without ``expand``), as PyTorch's."""
        from ..creation import eye
        n = self.event_shape[0]
        v = eye(n, dtype=self.probs.dtype, device=self.probs.device)
        v = v.reshape((n,) + (1,) * len(self.batch_shape) + (n,))
        return v.broadcast_to((n,) + self.batch_shape + (n,)) if expand else v
