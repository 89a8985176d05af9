"""Randomized low-rank SVD and PCA (Halko, Martinsson and Tropp, 2011, algorithms 4.4 and
5.1), PyTorch's ``svd_lowrank`` and ``pca_lowrank``: a random ``q``-column sketch of the
range of ``A``, sharpened by ``niter`` power iterations (each re-orthonormalised by QR),
then an exact SVD of the small projected matrix. Composed of ``matmul``, ``qr`` and ``svd``,
so the results are differentiable where those are. Complex matrices too (a complex normal
sketch, ``mH`` for ``mT``; real S), as PyTorch's.
"""
from __future__ import annotations

from typing import NamedTuple

from .._tensor import Tensor
from ._util import to_tensor


class lowrank_result(NamedTuple):
    """``(U, S, V)`` with ``A ~= U diag(S) V^H`` (``V``, not ``V^H``, as PyTorch's)."""
    U: Tensor
    S: Tensor
    V: Tensor


def _check(op: str, a: Tensor, q, niter) -> tuple[int, int]:
    if a.ndim < 2:
        raise ValueError(f"{op}: A must have at least 2 dims (..., m, n), got shape "
                         f"{tuple(a.shape)}")
    if a.dtype.kind not in "fc":
        raise TypeError(f"{op}: A must be float32, float64, complex64 or complex128, got "
                        f"{a.dtype}")
    m, n = a.shape[-2], a.shape[-1]
    if isinstance(q, bool) or not isinstance(q, int) or not 0 <= q <= min(m, n):
        raise ValueError(f"{op}: q must be an int in [0, min(m, n)] = [0, {min(m, n)}] for A "
                         f"of shape {tuple(a.shape)}, got {q!r}")
    if isinstance(niter, bool) or not isinstance(niter, int) or niter < 0:
        raise ValueError(f"{op}: niter must be a non-negative int, got {niter!r}")
    return m, n


def _basis(a: Tensor, q: int, niter: int) -> Tensor:
    """An orthonormal (..., m, q) basis approximating the range of ``a`` (..., m, n)."""
    from ..creation import randn
    from ..linalg import qr
    r = randn(*a.shape[-1:], q, dtype=a.dtype, device=a.device)
    basis = qr(a @ r).Q
    ah = a.mH
    for _ in range(niter):
        basis = qr(ah @ basis).Q
        basis = qr(a @ basis).Q
    return basis


def _svd_lowrank(a: Tensor, q: int, niter: int) -> lowrank_result:
    from ..linalg import svd
    m, n = a.shape[-2], a.shape[-1]
    wide = m < n
    if wide:                     # sketch the smaller side
        a = a.mH
    basis = _basis(a, q, niter)
    u, s, vh = svd(basis.mH @ a, full_matrices=False)
    u, v = basis @ u, vh.mH
    return lowrank_result(v, s, u) if wide else lowrank_result(u, s, v)


def svd_lowrank(A, q: int | None = 6, niter: int = 2, M=None) -> lowrank_result:
    """An approximate rank-``q`` SVD ``A ~= U diag(S) V^H`` of a matrix or batch
    ``(..., m, n)``, as ``torch.svd_lowrank``: randomized (``tl.manual_seed`` fixes it), with
    ``niter`` power iterations; ``M`` (broadcastable to ``A``) is subtracted first. Exact
    (to rounding) when ``rank(A) <= q``; choose ``q`` a little above the rank you want.

    >>> U, S, V = tl.ops.lowrank.svd_lowrank(tl.randn(100, 8) @ tl.randn(8, 60), q=10)
    >>> U.shape, S.shape, V.shape
    ((100, 10), (10,), (60, 10))
    """
    a = to_tensor(A)
    q = 6 if q is None else q
    _check("svd_lowrank", a, q, niter)
    if M is not None:
        a = a - to_tensor(M)
    return _svd_lowrank(a, q, niter)


def pca_lowrank(A, q: int | None = None, center: bool = True, niter: int = 2) -> lowrank_result:
    """Principal components of the rows of ``A`` (``(..., m, n)``: m samples of n features),
    as ``torch.pca_lowrank``: :func:`svd_lowrank` of ``A`` less its column means (with
    ``center``), ``q`` components (default ``min(6, m, n)``). ``V``'s columns are the
    principal directions, ``S**2 / (m - 1)`` the explained variances, ``A_c @ V`` the scores.

    >>> U, S, V = tl.ops.lowrank.pca_lowrank(tl.randn(200, 5), q=3)
    >>> V.shape
    (5, 3)
    """
    a = to_tensor(A)
    if a.ndim < 2:
        raise ValueError(f"pca_lowrank: A must have at least 2 dims (..., m, n), got shape "
                         f"{tuple(a.shape)}")
    m, n = a.shape[-2], a.shape[-1]
    q = min(6, m, n) if q is None else q
    _check("pca_lowrank", a, q, niter)
    if center:
        a = a - a.mean(axis=-2, keepdims=True)
    return _svd_lowrank(a, q, niter)
