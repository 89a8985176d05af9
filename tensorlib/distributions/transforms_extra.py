"""The transforms onto structured spaces, as ``torch.distributions.transforms``: softplus onto
(0, inf), stick-breaking onto the simplex, unconstrained matrices onto Cholesky factors,
correlation-matrix Cholesky factors and positive-definite matrices, and a distribution's cdf
onto (0, 1). Written with tensorlib ops, so gradients (and gradients of gradients) flow
through the forward map, the inverse and the log-Jacobian.

>>> t = StickBreakingTransform()
>>> p = t(tl.zeros(3))                   # a point of the 4-simplex: [0.25, 0.25, 0.25, 0.25]
>>> t.inv(p)                             # zeros again
>>> CorrCholeskyTransform()(tl.randn(3)).shape     # (3, 3): the Cholesky factor of a correlation
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..ops.elementwise import softplus
from . import constraints
from .transforms import Transform, _clipped_sigmoid, _Stateless

__all__ = ["CorrCholeskyTransform", "CumulativeDistributionTransform", "LowerCholeskyTransform",
           "PositiveDefiniteTransform", "SoftplusTransform", "StickBreakingTransform",
           "tril_matrix_to_vec", "vec_to_tril_matrix"]


# ------------------------------------------------------------------ helpers

def _const(values, like: Tensor) -> Tensor:
    """A constant (no gradient) in ``like``'s dtype and device."""
    from ..creation import tensor
    return tensor(np.asarray(values), dtype=like.dtype, device=like.device)


def _index(values, like: Tensor) -> Tensor:
    from ..creation import tensor
    return tensor(np.asarray(values, dtype=np.int64), device=like.device)


def _filled(shape, value: float, like: Tensor) -> Tensor:
    from ..creation import full
    return full(tuple(shape), value, dtype=like.dtype, device=like.device)


def _cat_last(parts) -> Tensor:
    from ..ops.shape import cat
    return cat(parts, axis=-1)


def _diag(x: Tensor) -> Tensor:
    from ..ops.diagonal import diagonal
    return diagonal(x, 0, -2, -1)


def _diag_embed(d: Tensor) -> Tensor:
    from ..ops.torch_api import diag_embed
    return diag_embed(d)


def _need_dims(name: str, x: Tensor, n: int, what: str) -> None:
    if x.ndim < n:
        raise ValueError(f"{name}: {what} of shape {tuple(x.shape)} needs at least {n} dims")


def _need_square(name: str, x: Tensor) -> None:
    _need_dims(name, x, 2, "input")
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name}: input of shape {tuple(x.shape)} is not a batch of square "
                         f"matrices")


def _tril_size(m: int, diag: int) -> int:
    """The matrix size ``n`` whose ``diag``-th lower triangle holds ``m`` entries."""
    # solve m = n (n + 1) / 2 + diag n + |diag| (diag + 1) / 2 ... as PyTorch's
    # vec_to_tril_matrix: n = (-(1 + 2 diag) + sqrt((1 + 2 diag)^2 + 8 m + 4 |diag| (diag + 1))) / 2
    b = 1 + 2 * diag
    n = (-b + math.sqrt(b * b + 8 * m + 4 * abs(diag) * (diag + 1))) / 2
    if abs(round(n) - n) > 1e-6 or round(n) < 1:
        raise ValueError(f"vec_to_tril_matrix: a last dim of {m} cannot be the lower "
                         f"triangle (diag={diag}) of a square matrix")
    return int(round(n))


def tril_matrix_to_vec(mat: Tensor, diag: int = 0) -> Tensor:
    """The entries on and below the ``diag``-th diagonal of ``mat``'s last two dims, row by
    row (as ``torch.distributions.utils.tril_matrix_to_vec``).

    >>> tril_matrix_to_vec(tl.tensor([[1.0, 2.0], [3.0, 4.0]]))      # [1, 3, 4]
    """
    _need_square("tril_matrix_to_vec", mat)
    n = mat.shape[-1]
    rows, cols = np.tril_indices(n, k=diag)
    flat = mat.reshape(tuple(mat.shape[:-2]) + (n * n,))
    return flat.index_select(-1, _index(rows * n + cols, mat))


def vec_to_tril_matrix(vec: Tensor, diag: int = 0) -> Tensor:
    """The inverse of :func:`tril_matrix_to_vec`: ``vec``'s entries placed row by row on
    and below the ``diag``-th diagonal of a square matrix, zeros elsewhere.

    >>> vec_to_tril_matrix(tl.tensor([1.0, 3.0, 4.0]))              # [[1, 0], [3, 4]]
    """
    _need_dims("vec_to_tril_matrix", vec, 1, "input")
    m = vec.shape[-1]
    n = _tril_size(m, diag)
    rows, cols = np.tril_indices(n, k=diag)
    # gather from [0, vec...]: every position off the triangle reads the leading zero, so the
    # gradient flows back to vec through one index_select
    src = np.zeros(n * n, dtype=np.int64)
    src[rows * n + cols] = np.arange(1, m + 1)
    padded = _cat_last([_filled(tuple(vec.shape[:-1]) + (1,), 0.0, vec), vec])
    return padded.index_select(-1, _index(src, vec)).reshape(tuple(vec.shape[:-1]) + (n, n))


# ------------------------------------------------------------------ elementwise

class SoftplusTransform(_Stateless):
    """``y = log(1 + exp(x))``, onto (0, inf); the inverse is ``log(expm1(y))``, computed
    as ``y + log(-expm1(-y))`` for large ``y``.

    >>> SoftplusTransform()(tl.tensor([0.0]))          # [log 2]
    """

    bijective = True
    sign = 1
    codomain = constraints.positive

    def _call(self, x):
        return softplus(x)

    def _inverse(self, y):
        return (-(-y).expm1()).log() + y

    def log_abs_det_jacobian(self, x, y):
        return -softplus(-x)


class CumulativeDistributionTransform(Transform):
    """``y = distribution.cdf(x)``, onto (0, 1); the inverse is ``icdf`` and the
    log-Jacobian is ``log_prob`` (a copula's building block).

    >>> t = CumulativeDistributionTransform(tl.distributions.Normal(0.0, 1.0))
    >>> t(tl.tensor([0.0]))                            # [0.5]
    """

    bijective = True
    sign = 1
    codomain = constraints.unit_interval

    def __init__(self, distribution, cache_size: int = 0):
        from .base import Distribution
        if not isinstance(distribution, Distribution):
            raise TypeError(f"CumulativeDistributionTransform: distribution must be a "
                            f"Distribution, got {type(distribution).__name__}")
        super().__init__(cache_size)
        self.distribution = distribution

    @property
    def domain(self):
        return self.distribution.support

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else \
            CumulativeDistributionTransform(self.distribution, cache_size)

    def _call(self, x):
        return self.distribution.cdf(x)

    def _inverse(self, y):
        return self.distribution.icdf(y)

    def log_abs_det_jacobian(self, x, y):
        return self.distribution.log_prob(x)

    def __repr__(self) -> str:
        return f"CumulativeDistributionTransform({self.distribution!r})"


# ------------------------------------------------------------------ onto the simplex

def _reverse_log_range(k: int, top: int, like: Tensor) -> Tensor:
    """``log([top, top - 1, ..., top - k + 1])``, the stick-breaking offsets."""
    return _const(np.log(np.arange(top, top - k, -1, dtype=np.float64)), like)


class StickBreakingTransform(_Stateless):
    """Unconstrained ``K``-vectors onto the ``K + 1``-simplex by stick breaking (a
    bijection, unlike softmax; zeros map to the simplex's center).

    >>> StickBreakingTransform()(tl.zeros(3))          # [0.25, 0.25, 0.25, 0.25]
    """

    bijective = True
    domain = constraints.real_vector
    codomain = constraints.simplex

    def _call(self, x):
        _need_dims("StickBreakingTransform", x, 1, "input")
        k = x.shape[-1]
        z = _clipped_sigmoid(x - _reverse_log_range(k, k, x))
        ones = _filled(tuple(x.shape[:-1]) + (1,), 1.0, x)
        return _cat_last([z, ones]) * _cat_last([ones, (1.0 - z).cumprod(-1)])

    def _inverse(self, y):
        _need_dims("StickBreakingTransform", y, 1, "inverse input")
        if y.shape[-1] < 2:
            raise ValueError(f"StickBreakingTransform: inverse input of shape "
                             f"{tuple(y.shape)} needs a last dim of at least 2")
        k = y.shape[-1] - 1
        y_crop = y.narrow(-1, 0, k)
        sf = (1.0 - y_crop.cumsum(-1)).clamp(min=float(np.finfo(y.dtype).tiny))
        return y_crop.log() - sf.log() + _reverse_log_range(k, k, y)

    def log_abs_det_jacobian(self, x, y):
        k = x.shape[-1]
        x = x - _reverse_log_range(k, k, x)
        return (-x - softplus(-x) + y.narrow(-1, 0, k).log()).sum(axis=-1)

    def forward_shape(self, shape):
        shape = tuple(shape)
        if len(shape) < 1:
            raise ValueError("StickBreakingTransform: a shape needs at least 1 dim, got ()")
        return shape[:-1] + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        shape = tuple(shape)
        if len(shape) < 1 or shape[-1] < 1:
            raise ValueError(f"StickBreakingTransform: shape {shape} needs a last dim of at "
                             f"least 1")
        return shape[:-1] + (shape[-1] - 1,)


# ------------------------------------------------------------------ onto matrices

class LowerCholeskyTransform(_Stateless):
    """Square matrices onto lower-triangular matrices with a positive diagonal: the strict
    lower triangle is kept, the diagonal exponentiated, the upper triangle dropped (so not
    bijective on the whole matrix, as PyTorch's).

    ``log_abs_det_jacobian`` is the one of the bijection between the lower triangles (the
    upper entries do not move ``y``): ``sum_i x_ii``. PyTorch does not define it.

    >>> LowerCholeskyTransform()(tl.zeros(2, 2))       # the identity
    """

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.lower_cholesky

    def _call(self, x):
        _need_square("LowerCholeskyTransform", x)
        return x.tril(-1) + _diag_embed(_diag(x).exp())

    def _inverse(self, y):
        _need_square("LowerCholeskyTransform", y)
        return y.tril(-1) + _diag_embed(_diag(y).log())

    def log_abs_det_jacobian(self, x, y):
        return _diag(x).sum(axis=-1)


class PositiveDefiniteTransform(_Stateless):
    """Square matrices onto symmetric positive-definite ones: ``L L^T`` for
    ``L = LowerCholeskyTransform()(x)``; the inverse goes through the Cholesky factor.

    ``log_abs_det_jacobian`` is the one of the bijection from the lower triangle of ``x`` to
    the lower triangle of ``y``: ``n log 2 + sum_i (n - i + 1) x_ii`` (``i`` from 0), the
    Cholesky map's ``2^n prod L_ii^(n - i)`` times the exponentiated diagonal's. PyTorch
    does not define it.

    >>> PositiveDefiniteTransform()(tl.zeros(2, 2))    # the identity
    """

    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.positive_definite

    def _call(self, x):
        lower = LowerCholeskyTransform()(x)
        return lower @ lower.mT

    def _inverse(self, y):
        from ..linalg import cholesky
        _need_square("PositiveDefiniteTransform", y)
        return LowerCholeskyTransform().inv(cholesky(y))

    def log_abs_det_jacobian(self, x, y):
        n = x.shape[-1]
        weights = _const(np.arange(n + 1, 1, -1, dtype=np.float64), x)
        return (_diag(x) * weights).sum(axis=-1) + n * math.log(2.0)


class CorrCholeskyTransform(_Stateless):
    """Unconstrained vectors of length ``D (D - 1) / 2`` onto Cholesky factors of ``D x D``
    correlation matrices (lower triangular, positive diagonal, unit-norm rows), as
    PyTorch's: ``tanh`` into (-1, 1), then stick breaking on the squared row entries (the
    LKJ distribution's parameterization).

    >>> L = CorrCholeskyTransform()(tl.zeros(3))       # the 3 x 3 identity
    >>> (L @ L.mT).diagonal(0, -2, -1)                 # ones
    """

    bijective = True
    domain = constraints.real_vector
    codomain = constraints.corr_cholesky

    def _call(self, x):
        _need_dims("CorrCholeskyTransform", x, 1, "input")
        from ..creation import eye
        x = x.tanh()
        eps = float(np.finfo(x.dtype).eps)
        x = x.clamp(min=-1.0 + eps, max=1.0 - eps)
        r = vec_to_tril_matrix(x, diag=-1)
        # row i keeps sqrt(1 - sum of the earlier squares) of its stick for each next entry
        z1m_cumprod_sqrt = (1.0 - r * r).sqrt().cumprod(-1)
        n = r.shape[-1]
        r = r + eye(n, dtype=r.dtype, device=r.device)
        ones = _filled(tuple(r.shape[:-1]) + (1,), 1.0, r)
        return r * _cat_last([ones, z1m_cumprod_sqrt.narrow(-1, 0, n - 1)])

    def _inverse(self, y):
        _need_square("CorrCholeskyTransform", y)
        n = y.shape[-1]
        y_cumsum = 1.0 - (y * y).cumsum(-1)
        ones = _filled(tuple(y.shape[:-1]) + (1,), 1.0, y)
        shifted = _cat_last([ones, y_cumsum.narrow(-1, 0, n - 1)])
        t = tril_matrix_to_vec(y, diag=-1) / tril_matrix_to_vec(shifted, diag=-1).sqrt()
        return (t.log1p() - (-t).log1p()) * 0.5          # atanh, as PyTorch writes it

    def log_abs_det_jacobian(self, x, y):
        y1m_cumsum = 1.0 - (y * y).cumsum(-1)
        # the stick-breaking part: each entry below the first sub-diagonal scales by the
        # square root of what is left of its row
        if y.shape[-1] > 2:
            stick = 0.5 * tril_matrix_to_vec(y1m_cumsum, diag=-2).log().sum(axis=-1)
        else:
            stick = _filled(tuple(y.shape[:-2]), 0.0, y)
        tanh = -2.0 * (x + softplus(-2.0 * x) - math.log(2.0)).sum(axis=-1)
        return stick + tanh

    def forward_shape(self, shape):
        shape = tuple(shape)
        if len(shape) < 1:
            raise ValueError("CorrCholeskyTransform: a shape needs at least 1 dim, got ()")
        m = shape[-1]
        d = round((0.25 + 2 * m) ** 0.5 + 0.5)
        if d * (d - 1) // 2 != m:
            raise ValueError(f"CorrCholeskyTransform: a last dim of {m} is not D (D - 1) / 2 "
                             f"for any matrix size D")
        return shape[:-1] + (d, d)

    def inverse_shape(self, shape):
        shape = tuple(shape)
        if len(shape) < 2 or shape[-1] != shape[-2]:
            raise ValueError(f"CorrCholeskyTransform: shape {shape} does not end in a square "
                             f"matrix")
        n = shape[-1]
        return shape[:-2] + (n * (n - 1) // 2,)
