"""Wishart: the distribution of ``sum_k x_k x_k^T`` for ``df`` draws ``x_k ~ N(0, S)``, over
positive-definite matrices, as ``torch.distributions.Wishart`` (sampled by the Bartlett
decomposition, reparameterized).

>>> d = tl.distributions.Wishart(df=5.0, covariance_matrix=tl.eye(3))
>>> W = d.rsample((4,))                      # (4, 3, 3) positive definite
>>> d.log_prob(W), d.mean                    # (4,), 5 I
"""
from __future__ import annotations

import math
import warnings
from numbers import Number

import numpy as np

from .._tensor import Tensor
from ..ops.shape import broadcast_to
from ..ops.torch_linalg import cholesky_solve
from ..ops.special_fns import digamma
from . import constraints
from .base import _raw
from .base import as_float
from .continuous_extra import Gamma
from .lkj_cholesky import mvlgamma
from .multivariate import _precision_to_scale_tril
from .exp_family import ExponentialFamily

_LOG_2 = math.log(2.0)


def _diag(x: Tensor) -> Tensor:
    from ..ops.diagonal import diagonal
    return diagonal(x, 0, -2, -1)


class Wishart(ExponentialFamily):
    """Wishart with ``df > p - 1`` degrees of freedom and scale given by exactly one of
    ``covariance_matrix``, ``precision_matrix`` or ``scale_tril`` (``p x p``, with optional
    batch dims). ``rsample`` keeps the gradient in the scale (and in ``df`` through the
    chi-square draws).

    Unlike PyTorch's, ``rsample`` does not redraw samples that come out singular (only
    likely for ``p - 1 < df < p``, which warns as PyTorch does).

    >>> tl.distributions.Wishart(4.0, scale_tril=tl.eye(2)).log_prob(tl.eye(2))
    """


    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple[Tensor, Tensor]:
        return (-self.precision_matrix / 2, (self.df - self.event_shape[-1] - 1) / 2)

    def _log_normalizer(self, x: Tensor, y: Tensor) -> Tensor:
        from ..ops.matrix import slogdet
        p = self.event_shape[-1]
        return (y + (p + 1) / 2) * (-slogdet(-2 * x)[1] + _LOG_2 * p) + \
            mvlgamma(y + (p + 1) / 2, p)

    arg_constraints = {"covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky,
                       "df": constraints.greater_than(0)}

    support = constraints.positive_definite
    has_rsample = True
    _expand_params = ("df",)

    def _expand_more(self, new, batch_shape) -> None:
        shape = tuple(batch_shape) + self.event_shape
        new._scale_tril = broadcast_to(self._scale_tril, shape)
        new._param = broadcast_to(self._param, shape)

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args: bool | None = None):
        given = [(n, p) for n, p in (("covariance_matrix", covariance_matrix),
                                     ("precision_matrix", precision_matrix),
                                     ("scale_tril", scale_tril)) if p is not None]
        if len(given) != 1:
            raise ValueError("Wishart: give exactly one of covariance_matrix, "
                             "precision_matrix or scale_tril")
        name, param = given[0]
        param = as_float(param)
        if param.ndim < 2 or param.shape[-1] != param.shape[-2]:
            raise ValueError(f"Wishart: {name} of shape {tuple(param.shape)} must be a (batch "
                             f"of) square matrices, at least 2-d")
        p = param.shape[-1]
        df = as_float(df, param) if isinstance(df, Number) else as_float(df)
        batch_shape = tuple(np.broadcast_shapes(tuple(param.shape[:-2]), tuple(df.shape)))
        event_shape = (p, p)
        self.df = df if tuple(df.shape) == batch_shape else broadcast_to(df, batch_shape)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)
        if self._validating:
            d = _raw(self.df)
            self._check(d > p - 1, f"df must be greater than p - 1 = {p - 1}", d)
        if bool((self.df.detach() < p).any()._data):
            warnings.warn("Wishart: low df values detected; singular samples are likely for "
                          "p - 1 < df < p", stacklevel=2)
        if self._validating:
            # before the Cholesky factorization below, which would fail less clearly
            ok = (constraints.lower_cholesky if name == "scale_tril"
                  else constraints.positive_definite).check(param.detach())
            self._check(ok, f"{name} must be "
                        + ("lower triangular with a positive diagonal" if name == "scale_tril"
                           else "symmetric positive definite"))
        if scale_tril is not None:
            self._scale_tril = param
        elif covariance_matrix is not None:
            from ..linalg import cholesky
            self._scale_tril = cholesky(param)
        else:
            self._scale_tril = _precision_to_scale_tril(param)
        self._param_name, self._param = name, param

    def _full(self, m: Tensor) -> Tensor:
        shape = self.batch_shape + self.event_shape
        return m if tuple(m.shape) == shape else broadcast_to(m, shape)

    def _df(self, extra: int = 2) -> Tensor:
        return self.df.reshape(self.batch_shape + (1,) * extra)

    @property
    def scale_tril(self) -> Tensor:
        return self._full(self._scale_tril)

    @property
    def covariance_matrix(self) -> Tensor:
        low = self._scale_tril
        return self._full(low @ low.mT)

    @property
    def precision_matrix(self) -> Tensor:
        from ..creation import eye
        low = self._scale_tril
        return self._full(cholesky_solve(eye(low.shape[-1], dtype=low.dtype,
                                             device=low.device), low))

    @property
    def mean(self) -> Tensor:
        return self._df() * self.covariance_matrix

    @property
    def mode(self) -> Tensor:
        from ..ops.elementwise import where
        factor = self.df - (self.event_shape[-1] + 1)
        factor = where(factor <= 0, math.nan, factor)
        return factor.reshape(self.batch_shape + (1, 1)) * self.covariance_matrix

    @property
    def variance(self) -> Tensor:
        v = self.covariance_matrix
        d = _diag(v)
        return self._df() * (v * v + d.unsqueeze(-1) * d.unsqueeze(-2))

    def rsample(self, sample_shape=()) -> Tensor:
        """Bartlett: ``L A A^T L^T`` with ``A`` lower triangular, ``A_ii^2 ~ chi2(df - i)``,
        ``A_ij ~ N(0, 1)`` below the diagonal."""
        from ..creation import randn, tensor
        from ..ops.torch_api import diag_embed
        p = self.event_shape[-1]
        like = self._scale_tril
        shape = self._extended_shape(sample_shape)
        k = self.df.unsqueeze(-1) - tensor(np.arange(p, dtype=np.float64), dtype=like.dtype,
                                           device=like.device)
        chi2 = Gamma(0.5 * k, 0.5, validate_args=False).rsample(sample_shape)
        eps = float(np.finfo(like.dtype).eps)
        a = diag_embed(chi2.sqrt().clamp(min=eps)) + randn(*shape, dtype=like.dtype,
                                                          device=like.device).tril(-1)
        chol = like @ a
        return chol @ chol.mT

    def log_prob(self, value) -> Tensor:
        from ..creation import tensor
        from ..ops.matrix import slogdet
        v = value if isinstance(value, Tensor) else tensor(value, dtype=self._scale_tril.dtype)
        if v.ndim < 2 or tuple(v.shape[v.ndim - 2:]) != self.event_shape:
            raise ValueError(f"Wishart.log_prob: value of shape {tuple(v.shape)} does not end "
                             f"in the event shape {self.event_shape}")
        if self._validating:
            self._check(self.support.check(v.detach()),
                        "value must be symmetric positive definite")
        nu, p, low = self.df, self.event_shape[-1], self._scale_tril
        return (-nu * (p * _LOG_2 / 2 + _diag(low).log().sum(axis=-1))
                - mvlgamma(nu / 2, p)
                + (nu - p - 1) / 2 * slogdet(v)[1]
                - _diag(cholesky_solve(v, low)).sum(axis=-1) / 2)

    def entropy(self) -> Tensor:
        from ..creation import tensor
        nu, p, low = self.df, self.event_shape[-1], self._scale_tril
        halves = tensor(np.arange(p, dtype=np.float64) / 2, dtype=low.dtype, device=low.device)
        mvdigamma = digamma((nu / 2).unsqueeze(-1) - halves).sum(axis=-1)
        return ((p + 1) * (p * _LOG_2 / 2 + _diag(low).log().sum(axis=-1))
                + mvlgamma(nu / 2, p) - (nu - p - 1) / 2 * mvdigamma + nu * p / 2)

    def __repr__(self) -> str:
        return f"Wishart(df={self.df!r}, {self._param_name}: shape {tuple(self._param.shape)})"
