"""LowRankMultivariateNormal: a Gaussian whose covariance is ``W W^T + diag(D)`` with ``W``
(n x m, m small), as PyTorch's; everything costs O(n m^2) through the m x m capacitance
matrix ``I + W^T D^-1 W`` (Woodbury identity and matrix determinant lemma).

>>> d = LowRankMultivariateNormal(tl.zeros(5), tl.randn(5, 2), tl.ones(5))
>>> d.log_prob(d.rsample((8,)))                   # (8,)
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..ops.matrix import cholesky
from ..ops.shape import broadcast_to
from . import constraints
from .base import _raw
from .base import CenteredAtLoc, Distribution, as_float
from .multivariate import _batch_solve, _eye, half_log_det, mahalanobis


def capacitance_tril(w: Tensor, d: Tensor) -> Tensor:
    """The lower Cholesky factor of ``I + W^T D^-1 W`` (..., m, m)."""
    wt_dinv = w.mT / d.unsqueeze(-2)
    return cholesky(wt_dinv @ w + _eye(w.shape[-1], w))


def lowrank_logdet(w: Tensor, d: Tensor, cap_tril: Tensor) -> Tensor:
    """``log det(W W^T + D)`` by the matrix determinant lemma."""
    return 2.0 * half_log_det(cap_tril) + d.log().sum(axis=-1)


def lowrank_mahalanobis(w: Tensor, d: Tensor, x: Tensor, cap_tril: Tensor) -> Tensor:
    """``x^T (W W^T + D)^-1 x`` by the Woodbury identity."""
    wt_dinv_x = ((w.mT / d.unsqueeze(-2)) @ x.unsqueeze(-1)).squeeze(-1)
    return (x * x / d).sum(axis=-1) - mahalanobis(cap_tril, wt_dinv_x)


def woodbury_a(w: Tensor, d: Tensor, cap_tril: Tensor) -> Tensor:
    """``A = C^-1 W^T D^-1`` (..., m, n): ``(W W^T + D)^-1 = D^-1 - A^T A``."""
    return _batch_solve(cap_tril, w.mT / d.unsqueeze(-2))


class LowRankMultivariateNormal(CenteredAtLoc, Distribution):
    """N(loc, W W^T + diag(D)) over the last dim of ``loc`` (n), with ``cov_factor`` W
    (..., n, m) and ``cov_diag`` D (..., n) positive; batch dims broadcast.

    ``rsample`` is ``loc + W eps_m + sqrt(D) eps_n`` (differentiable in all parameters).
    """

    arg_constraints = {"loc": constraints.real_vector,
                       "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}

    support = constraints.real_vector

    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args: bool | None = None):
        loc = as_float(loc)
        cov_factor, cov_diag = as_float(cov_factor, loc), as_float(cov_diag, loc)
        if loc.ndim < 1:
            raise ValueError("LowRankMultivariateNormal: loc must be at least one-dimensional "
                             "(its last dim is the event), got a scalar")
        n = loc.shape[-1]
        if cov_factor.ndim < 2 or cov_factor.shape[-2] != n:
            raise ValueError(f"LowRankMultivariateNormal: cov_factor must be (..., {n}, m) to "
                             f"match loc's event size {n}, got shape {tuple(cov_factor.shape)}")
        if cov_diag.ndim < 1 or cov_diag.shape[-1] != n:
            raise ValueError(f"LowRankMultivariateNormal: cov_diag must be (..., {n}) to match "
                             f"loc's event size {n}, got shape {tuple(cov_diag.shape)}")
        try:
            batch = tuple(np.broadcast_shapes(tuple(loc.shape[:-1]), tuple(cov_factor.shape[:-2]),
                                              tuple(cov_diag.shape[:-1])))
        except ValueError:
            raise ValueError(f"LowRankMultivariateNormal: the batch dims of loc "
                             f"{tuple(loc.shape)}, cov_factor {tuple(cov_factor.shape)} and "
                             f"cov_diag {tuple(cov_diag.shape)} do not broadcast") from None
        super().__init__(batch, (n,), validate_args=validate_args)
        if self._validating:
            self._check_not_nan(loc, "loc")
            self._check_not_nan(cov_factor, "cov_factor")
            a = _raw(cov_diag)
            self._check(a > 0, "cov_diag must be positive", a)
        m = cov_factor.shape[-1]
        self.loc = broadcast_to(loc, batch + (n,))
        self.cov_factor = broadcast_to(cov_factor, batch + (n, m))
        self.cov_diag = broadcast_to(cov_diag, batch + (n,))
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        self._capacitance_tril = capacitance_tril(cov_factor, cov_diag)

    def expand(self, batch_shape, _instance=None) -> LowRankMultivariateNormal:
        batch_shape = self._expanded_shape(batch_shape)
        new = object.__new__(LowRankMultivariateNormal)
        new.__dict__.update(self.__dict__)
        n, m = self.cov_factor.shape[-2:]
        new.batch_shape = batch_shape
        new.loc = broadcast_to(self.loc, batch_shape + (n,))
        new.cov_factor = broadcast_to(self.cov_factor, batch_shape + (n, m))
        new.cov_diag = broadcast_to(self.cov_diag, batch_shape + (n,))
        return new

    def _full(self, m: Tensor) -> Tensor:
        n = self.event_shape[0]
        return broadcast_to(m, self.batch_shape + (n, n))

    @property
    def variance(self) -> Tensor:
        w = self._unbroadcasted_cov_factor
        v = (w * w).sum(axis=-1) + self._unbroadcasted_cov_diag
        return broadcast_to(v, self.batch_shape + self.event_shape)

    @property
    def scale_tril(self) -> Tensor:
        """The lower Cholesky factor of the covariance, ``sqrt(D) chol(I + D^-1/2 W W^T
        D^-1/2)`` (an n x n factorization, as PyTorch)."""
        ds = self._unbroadcasted_cov_diag.sqrt().unsqueeze(-1)
        dw = self._unbroadcasted_cov_factor / ds
        k = dw @ dw.mT + _eye(self.event_shape[0], dw)
        return self._full(ds * cholesky(k))

    @property
    def covariance_matrix(self) -> Tensor:
        w = self._unbroadcasted_cov_factor
        from ..ops.torch_api import diag_embed
        return self._full(w @ w.mT + diag_embed(self._unbroadcasted_cov_diag))

    @property
    def precision_matrix(self) -> Tensor:
        from ..ops.torch_api import diag_embed
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        a = woodbury_a(w, d, self._capacitance_tril)
        return self._full(diag_embed(1.0 / d) - a.mT @ a)

    def rsample(self, sample_shape=()) -> Tensor:
        from ..creation import randn
        shape = self._extended_shape(sample_shape)
        w = self._unbroadcasted_cov_factor
        eps_w = randn(*(shape[:-1] + (w.shape[-1],)), dtype=self.loc.dtype,
                      device=self.loc.device)
        eps_d = randn(*shape, dtype=self.loc.dtype, device=self.loc.device)
        return (self.loc + (w @ eps_w.unsqueeze(-1)).squeeze(-1)
                + self._unbroadcasted_cov_diag.sqrt() * eps_d)

    def log_prob(self, value) -> Tensor:
        v = value if isinstance(value, Tensor) else as_float(value, self.loc)
        if v.dtype.kind != "f":
            v = v.astype(self.loc.dtype)
        n = self.event_shape[0]
        if v.ndim < 1 or v.shape[-1] != n:
            raise ValueError(f"LowRankMultivariateNormal: value must have a last dim of {n} "
                             f"(the event shape), got shape {tuple(v.shape)}")
        self._check_not_nan(v, "value")
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        m = lowrank_mahalanobis(w, d, v - self.loc, self._capacitance_tril)
        log_det = lowrank_logdet(w, d, self._capacitance_tril)
        return -0.5 * (n * math.log(2 * math.pi) + log_det + m)

    def entropy(self) -> Tensor:
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        n = self.event_shape[0]
        h = 0.5 * (n * (1.0 + math.log(2 * math.pi)) + lowrank_logdet(w, d,
                                                                       self._capacitance_tril))
        return broadcast_to(h, self.batch_shape)

    def __repr__(self) -> str:
        return (f"LowRankMultivariateNormal(batch_shape={self.batch_shape}, "
                f"event_shape={self.event_shape}, rank={self.cov_factor.shape[-1]})")
