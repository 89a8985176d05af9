"""ContinuousBernoulli (Loaiza-Ganem & Cunningham, 2019): the density ``C(p) p^x (1-p)^(1-x)``
on [0, 1], the likelihood of a VAE decoder for pixel intensities, as PyTorch's.

>>> d = ContinuousBernoulli(logits=decoder_out)
>>> d.log_prob(images)                          # differentiable in the logits
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..ops.elementwise import softplus, where
from . import constraints
from .base import _raw
from .base import Distribution, broadcast_params, value_like
from .discrete import _probs_or_logits


def clamp_probs(p: Tensor) -> Tensor:
    eps = float(np.finfo(p.dtype).eps)
    return p.clip(eps, 1.0 - eps)


class ContinuousBernoulli(Distribution):
    """The continuous Bernoulli with parameter ``probs`` in [0, 1] (or ``logits``).

    Near ``probs = 0.5`` (inside ``lims``, (0.499, 0.501) by default) the normalizer, mean,
    variance and cdf switch to Taylor expansions, as PyTorch's, where the closed forms divide
    0 by 0. ``rsample`` is the inverse cdf of a uniform draw.
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}

    support = constraints.unit_interval

    has_rsample = True
    _expand_params = ("probs", "logits")

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501),
                 validate_args: bool | None = None):
        probs, logits = _probs_or_logits("ContinuousBernoulli", probs, logits)
        if probs is not None:
            (p,) = broadcast_params(probs)
            super().__init__(p.shape, validate_args=validate_args)
            if self._validating:
                a = _raw(p)
                self._check((a >= 0) & (a <= 1), "probs must lie in [0, 1]", a)
            self.probs = clamp_probs(p)
            self.logits = self.probs.log() - (-self.probs).log1p()
        else:
            (self.logits,) = broadcast_params(logits)
            super().__init__(self.logits.shape, validate_args=validate_args)
            self._check_not_nan(self.logits, "logits")
            self.probs = clamp_probs(self.logits.sigmoid())
        self._lims = (float(lims[0]), float(lims[1]))

    def _outside(self) -> Tensor:
        p = self.probs
        return (p <= self._lims[0]) | (p > self._lims[1])

    def _cut_probs(self) -> Tensor:
        # the closed forms see a safe value inside the unstable region, so that their
        # (discarded) branch of the where has a finite gradient
        return where(self._outside(), self.probs, self._lims[0])

    def _log_norm(self) -> Tensor:
        cut = self._cut_probs()
        below = where(cut <= 0.5, cut, 0.0)
        above = where(cut >= 0.5, cut, 1.0)
        log_norm = ((-cut).log1p() - cut.log()).abs().log() - where(
            cut <= 0.5, (-2.0 * below).log1p(), (2.0 * above - 1.0).log())
        x = (self.probs - 0.5) ** 2
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return where(self._outside(), log_norm, taylor)

    @property
    def mean(self) -> Tensor:
        cut = self._cut_probs()
        mus = cut / (2.0 * cut - 1.0) + 1.0 / ((-cut).log1p() - cut.log())
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x * x) * x
        return where(self._outside(), mus, taylor)

    @property
    def variance(self) -> Tensor:
        cut = self._cut_probs()
        t = (-cut).log1p() - cut.log()
        vs = cut * (cut - 1.0) / (1.0 - 2.0 * cut) ** 2 + 1.0 / (t * t)
        x = (self.probs - 0.5) ** 2
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return where(self._outside(), vs, taylor)

    def _support(self, value) -> Tensor:
        v = value_like(value, self.probs)
        if self._validating:
            a = _raw(v)
            self._check((a >= 0) & (a <= 1), "value must lie in [0, 1]", a)
        return v

    def rsample(self, sample_shape=()) -> Tensor:
        from ..creation import rand
        u = rand(*self._extended_shape(sample_shape), dtype=self.probs.dtype,
                 device=self.probs.device)
        return self.icdf(u)

    def log_prob(self, value) -> Tensor:
        v = self._support(value)
        return v * self.logits - softplus(self.logits) + self._log_norm()

    def cdf(self, value) -> Tensor:
        v = self._support(value)
        cut = self._cut_probs()
        cdfs = (cut ** v * (1.0 - cut) ** (1.0 - v) + cut - 1.0) / (2.0 * cut - 1.0)
        unbounded = where(self._outside(), cdfs, v)
        return where(v <= 0.0, 0.0, where(v >= 1.0, 1.0, unbounded))

    def icdf(self, value) -> Tensor:
        v = value_like(value, self.probs)
        cut = self._cut_probs()
        inv = (((-cut) + v * (2.0 * cut - 1.0)).log1p() - (-cut).log1p()) / (
            cut.log() - (-cut).log1p())
        return where(self._outside(), inv, v)

    def entropy(self) -> Tensor:
        lp0, lp1 = (-self.probs).log1p(), self.probs.log()
        return self.mean * (lp0 - lp1) - self._log_norm() - lp0
