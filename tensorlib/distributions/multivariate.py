"""MultivariateNormal, as torch.distributions': a mean vector with one of a covariance
matrix, a precision matrix or a lower Cholesky factor; everything runs through that factor."""
from __future__ import annotations

import math

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from ..ops._util import broadcast_shapes
from ..ops.linalg_lu import TRSOLVE
from ..ops.matrix import cholesky, solve
from ..ops.shape import broadcast_to, flip
from . import constraints
from .base import CenteredAtLoc, Distribution, _host, as_float


def _batch_solve(low: Tensor, rhs: Tensor, lower_only: bool = True) -> Tensor:
    """``low^-1 rhs`` for matrices ``rhs`` (..., n, k), batch dims broadcast. With
    ``lower_only`` only the lower triangle of ``low`` is read (a triangular solve), as by
    PyTorch's ``solve_triangular``: entries of a ``scale_tril`` above the diagonal (zero
    when validated) get no gradient from ``log_prob``, ``entropy`` and KL, and do from
    ``rsample``, ``covariance_matrix`` and ``precision_matrix``, there as here."""
    if lower_only:
        if rhs.dtype != low.dtype:
            rhs = rhs.astype(low.dtype)
        return apply(TRSOLVE, low, rhs, upper=False, unit=False)
    batch = np.broadcast_shapes(tuple(low.shape[:-2]), tuple(rhs.shape[:-2]))
    return solve(broadcast_to(low, batch + tuple(low.shape[-2:])),
                 broadcast_to(rhs, batch + tuple(rhs.shape[-2:])))


def mahalanobis(low: Tensor, diff: Tensor) -> Tensor:
    """``diff^T (L L^T)^-1 diff`` over the last dim, for a lower factor ``low`` (..., n, n)
    and vectors ``diff`` (..., n) whose batch dims broadcast together.

    As PyTorch's: one triangular solve per factor, with every vector that shares it as a
    column of its right-hand side (not the factor broadcast to every vector)."""
    n = diff.shape[-1]
    lb = tuple(low.shape[:-2])
    # sizes of a None dim under capture stay traced (TracedSize) through broadcast_shapes
    full = tuple(broadcast_shapes("mahalanobis", lb, tuple(diff.shape[:-1])))
    if tuple(diff.shape[:-1]) != full:
        diff = broadcast_to(diff, full + (n,))
    k = len(full) - len(lb)                   # the leading dims the factor does not have
    lead, tail = full[:k], tuple(full[k:])
    if tail != lb:
        low = broadcast_to(low, tail + (n, n))
    if not lead:
        return (_batch_solve(low, diff.unsqueeze(-1)).squeeze(-1) ** 2).sum(axis=-1)
    # (lead..., tail..., n) -> (tail..., n, lead): the vectors of one factor as its columns;
    # -1 and the traced lead sizes keep a dynamic batch dim out of the captured graph
    cols = diff.reshape((-1,) + tail + (n,)).permute(tuple(range(1, len(tail) + 2)) + (0,))
    y = _batch_solve(low, cols)
    q = (y * y).sum(axis=-2)                  # (tail..., m)
    return q.permute((len(tail),) + tuple(range(len(tail)))).reshape(tuple(lead) + tail)


def half_log_det(low: Tensor) -> Tensor:
    """``log det(L L^T) / 2`` of a lower factor with a positive diagonal."""
    return low.diagonal(0, -2, -1).log().sum(axis=-1)


def _eye(n: int, like: Tensor) -> Tensor:
    from ..creation import eye
    return eye(n, dtype=like.dtype, device=like.device)


def _precision_to_scale_tril(p: Tensor) -> Tensor:
    # as PyTorch: flip(P) = Lf Lf^T gives P = U U^T with U = flip(Lf) upper triangular, so
    # the covariance P^-1 = (U^T)^-1 (U^T)^-T: its lower factor is (U^T)^-1
    lf = cholesky(flip(p, (-2, -1)))
    l_inv = flip(lf, (-2, -1)).mT
    return _batch_solve(l_inv, _eye(p.shape[-1], p)).tril()


class MultivariateNormal(CenteredAtLoc, Distribution):
    """The multivariate normal N(loc, Sigma) over the last dim of ``loc`` (``event_shape``
    is ``(n,)``), with exactly one of ``covariance_matrix`` (Sigma), ``precision_matrix``
    (Sigma^-1) and ``scale_tril`` (the lower factor L of Sigma = L L^T, positive diagonal),
    each (..., n, n); batch dims of ``loc`` and the matrix broadcast.

    A covariance or precision matrix is factored once (Cholesky); ``rsample`` is
    ``loc + L eps`` (differentiable in all parameters), ``log_prob`` solves with L.

    >>> d = tl.distributions.MultivariateNormal(tl.zeros(2), scale_tril=tl.eye(2))
    >>> d.log_prob(tl.tensor([0.0, 0.0]))            # -log(2 pi)
    """

    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}

    support = constraints.real_vector

    has_rsample = True
    _MATRICES = ("covariance_matrix", "precision_matrix", "scale_tril")

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args: bool | None = None):
        given = [(k, m) for k, m in zip(self._MATRICES,
                                        (covariance_matrix, precision_matrix, scale_tril))
                 if m is not None]
        if len(given) != 1:
            raise ValueError("MultivariateNormal: give exactly one of covariance_matrix, "
                             "precision_matrix and scale_tril")
        name, mat = given[0]
        loc = as_float(loc)
        mat = as_float(mat, loc)
        if mat.dtype != loc.dtype:
            dt = np.promote_types(loc.dtype, mat.dtype)
            loc, mat = loc.astype(dt), mat.astype(dt)
        if loc.ndim < 1:
            raise ValueError("MultivariateNormal: loc must be at least one-dimensional (its "
                             "last dim is the event), got a scalar")
        if mat.ndim < 2 or mat.shape[-1] != mat.shape[-2]:
            raise ValueError(f"MultivariateNormal: {name} must be a square matrix or a batch "
                             f"of them (..., n, n), got shape {tuple(mat.shape)}")
        n = mat.shape[-1]
        if loc.shape[-1] != n:
            raise ValueError(f"MultivariateNormal: loc's last dim ({loc.shape[-1]}) does not "
                             f"match {name} ({n} x {n})")
        try:
            batch = broadcast_shapes("MultivariateNormal", tuple(loc.shape[:-1]),
                                     tuple(mat.shape[:-2]))
        except ValueError:
            raise ValueError(f"MultivariateNormal: the batch dims of loc {tuple(loc.shape)} "
                             f"and {name} {tuple(mat.shape)} do not broadcast") from None
        super().__init__(batch, (n,), validate_args=validate_args)
        self.loc = broadcast_to(loc, batch + (n,))
        if self._validating:
            self._check_not_nan(loc, "loc")
            self._check_matrix(name, mat)
        if name == "scale_tril":
            low = mat
        elif name == "covariance_matrix":
            low = cholesky(mat)
        else:
            low = _precision_to_scale_tril(mat)
        self._unbroadcasted_scale_tril = low
        self._given = {name: broadcast_to(mat, batch + (n, n))}

    def _check_matrix(self, name: str, mat: Tensor) -> None:
        a = _host(mat._data)
        if name == "scale_tril":
            diag = np.diagonal(a, 0, -2, -1)
            ok = (np.triu(a, 1) == 0).all() and (diag > 0).all()
            if not ok:
                raise ValueError("MultivariateNormal: scale_tril must be lower triangular with "
                                 "a positive diagonal")
            return
        sym = np.isclose(a, np.swapaxes(a, -1, -2), atol=1e-6).all()
        try:
            pd = sym and bool(np.isfinite(np.linalg.cholesky(a)).all())
        except np.linalg.LinAlgError:
            pd = False
        if not pd:
            raise ValueError(f"MultivariateNormal: {name} must be symmetric positive-definite")

    def expand(self, batch_shape, _instance=None) -> MultivariateNormal:
        """This distribution with batch shape ``batch_shape`` (broadcast views), as
        PyTorch's ``expand``."""
        batch_shape = self._expanded_shape(batch_shape)
        new = object.__new__(MultivariateNormal)
        new.__dict__.update(self.__dict__)
        n = self.event_shape[0]
        new.batch_shape = batch_shape
        new.loc = broadcast_to(self.loc, batch_shape + (n,))
        new._given = {k: broadcast_to(v, batch_shape + (n, n)) for k, v in self._given.items()}
        return new

    def _full(self, m: Tensor) -> Tensor:
        n = self.event_shape[0]
        return broadcast_to(m, self.batch_shape + (n, n))

    @property
    def scale_tril(self) -> Tensor:
        g = self._given.get("scale_tril")
        return g if g is not None else self._full(self._unbroadcasted_scale_tril)

    @property
    def covariance_matrix(self) -> Tensor:
        g = self._given.get("covariance_matrix")
        if g is not None:
            return g
        low = self._unbroadcasted_scale_tril
        return self._full(low @ low.mT)

    @property
    def precision_matrix(self) -> Tensor:
        g = self._given.get("precision_matrix")
        if g is not None:
            return g
        low = self._unbroadcasted_scale_tril
        inv = _batch_solve(low, _eye(low.shape[-1], low), lower_only=False)
        return self._full(inv.mT @ inv)

    @property
    def variance(self) -> Tensor:
        low = self._unbroadcasted_scale_tril
        return broadcast_to((low * low).sum(axis=-1), self.batch_shape + self.event_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        from ..creation import randn
        eps = randn(*self._extended_shape(sample_shape), dtype=self.loc.dtype,
                    device=self.loc.device)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, value) -> Tensor:
        v = value if isinstance(value, Tensor) else as_float(value, self.loc)
        if v.dtype.kind != "f":
            v = v.astype(self.loc.dtype)
        n = self.event_shape[0]
        if v.ndim < 1 or v.shape[-1] != n:
            raise ValueError(f"MultivariateNormal: value must have a last dim of {n} (the "
                             f"event shape), got shape {tuple(v.shape)}")
        self._check_not_nan(v, "value")
        diff = v - self.loc
        m = mahalanobis(self._unbroadcasted_scale_tril, diff)
        return -0.5 * (n * math.log(2 * math.pi) + m) - half_log_det(
            self._unbroadcasted_scale_tril)

    def entropy(self) -> Tensor:
        n = self.event_shape[0]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + half_log_det(
            self._unbroadcasted_scale_tril)
        return broadcast_to(h, self.batch_shape)

    def __repr__(self) -> str:
        return (f"MultivariateNormal(batch_shape={self.batch_shape}, "
                f"event_shape={self.event_shape})")
