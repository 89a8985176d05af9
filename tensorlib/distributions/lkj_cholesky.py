"""LKJCholesky: the LKJ distribution over correlation matrices, on their Cholesky factors, as
``torch.distributions.LKJCholesky`` (sampled by the onion method).

>>> d = tl.distributions.LKJCholesky(3, concentration=2.0)
>>> L = d.sample((5,))                       # (5, 3, 3), each L @ L.mT a correlation matrix
>>> d.log_prob(L)                            # (5,)
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..ops.special_fns import lgamma
from . import constraints
from .base import _raw
from .base import Distribution, broadcast_params
from .continuous_extra import Beta


def mvlgamma(a: Tensor, p: int) -> Tensor:
    """The multivariate log-gamma ``log Gamma_p(a)`` (``torch.mvlgamma``), with tensorlib
    ops so it is differentiable in ``a``."""
    total = p * (p - 1) / 4 * math.log(math.pi)
    for j in range(p):
        total = total + lgamma(a - 0.5 * j)
    return total


def _beta_offsets(dim: int) -> np.ndarray:
    """``[0, 0, 1, ..., dim - 2]``: row ``k >= 1`` of the factor is step ``k - 1`` of the
    onion method (row 0 is fixed, its entry unused)."""
    return np.concatenate([[0.0], np.arange(dim - 1, dtype=np.float64)])


class LKJCholesky(Distribution):
    """Cholesky factors ``L`` of ``dim x dim`` correlation matrices with density proportional
    to ``det(L L^T)^(concentration - 1)`` (``concentration > 0``; 1 is uniform over
    correlation matrices). ``sample`` only (no ``rsample``), as PyTorch's.

    >>> tl.distributions.LKJCholesky(2, 0.5).sample().shape        # (2, 2)
    """

    arg_constraints = {"concentration": constraints.positive}

    support = constraints.corr_cholesky
    _expand_params = ("concentration",)

    def __init__(self, dim: int, concentration=1.0, validate_args: bool | None = None):
        if int(dim) != dim or dim < 2:
            raise ValueError(f"LKJCholesky: dim must be an integer >= 2, got {dim!r}")
        self.dim = int(dim)
        (self.concentration,) = broadcast_params(concentration)
        super().__init__(self.concentration.shape, (self.dim, self.dim),
                         validate_args=validate_args)
        if self._validating:
            c = _raw(self.concentration)
            self._check(c > 0, "concentration must be positive", c)
        self._beta = self._make_beta(self.concentration)

    def _make_beta(self, concentration: Tensor) -> Beta:
        from ..creation import tensor
        offset = tensor(_beta_offsets(self.dim), dtype=concentration.dtype,
                        device=concentration.device)
        marginal = concentration + 0.5 * (self.dim - 2)
        # Lewandowski et al. (2009), sec. 3.2: row k's squared off-diagonal length is
        # Beta(k / 2, eta + (dim - 2) / 2 - (k - 1) / 2). PyTorch 2.13 draws Beta(k - 1/2, ...)
        # here, which skews the rows k >= 2 (their correlations come out too large).
        return Beta(0.5 * offset + 0.5, marginal.unsqueeze(-1) - 0.5 * offset,
                    validate_args=False)

    def _expand_more(self, new, batch_shape) -> None:
        new._beta = self._make_beta(new.concentration)

    def sample(self, sample_shape=()) -> Tensor:
        from ..autograd.mode import no_grad
        from ..creation import randn
        from ..ops.torch_api import diag_embed
        with no_grad():
            y = self._beta.sample(sample_shape).unsqueeze(-1)
            like = self.concentration
            u = randn(*self._extended_shape(sample_shape), dtype=like.dtype,
                      device=like.device).tril(-1)
            tiny = float(np.finfo(y.dtype).tiny)
            # row 0 of u is all zeros: dividing by a clamped norm keeps it 0 (not NaN)
            norm = (u * u).sum(axis=-1, keepdims=True).sqrt().clamp(min=tiny)
            w = y.sqrt() * (u / norm)
            diag = (1.0 - (w * w).sum(axis=-1)).clamp(min=tiny).sqrt()
            return (w + diag_embed(diag)).detach()

    def log_prob(self, value) -> Tensor:
        from ..creation import tensor
        from ..ops.diagonal import diagonal
        v = value if isinstance(value, Tensor) else tensor(value, dtype=self.concentration.dtype)
        if tuple(v.shape[v.ndim - 2:]) != (self.dim, self.dim) or v.ndim < 2:
            raise ValueError(f"LKJCholesky.log_prob: value of shape {tuple(v.shape)} does not "
                             f"end in the event shape {(self.dim, self.dim)}")
        if self._validating:
            ok = self.support.check(v.detach())
            self._check(ok, "value must be the Cholesky factor of a correlation matrix "
                        "(lower triangular, positive diagonal, unit-norm rows)")
        diag = diagonal(v, 0, -2, -1).narrow(-1, 1, self.dim - 1)
        order = tensor(np.arange(2, self.dim + 1, dtype=np.float64), dtype=v.dtype,
                       device=v.device)
        order = 2.0 * (self.concentration - 1.0).unsqueeze(-1) + self.dim - order
        unnormalized = (order * diag.log()).sum(axis=-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        # Lewandowski et al. (2009), p. 1999: the normalizer, with multigammaln's pi term
        # corrected by (D - 1) log(pi) / 2
        normalize = 0.5 * dm1 * math.log(math.pi) + mvlgamma(alpha - 0.5, dm1) \
            - lgamma(alpha) * dm1
        return unnormalized - normalize

    def __repr__(self) -> str:
        return f"LKJCholesky(dim={self.dim}, batch_shape={self.batch_shape})"
