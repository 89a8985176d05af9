"""The orthogonal parametrization's map (``parametrizations.orthogonal``), as PyTorch's
``_Orthogonal``: a matrix (or a batch) ``Q`` with orthonormal columns (rows if wide) from
an unconstrained tensor, by the matrix exponential or the Cayley map of a skew-symmetric
matrix, or by a product of Householder reflectors."""
from __future__ import annotations

import numpy as np

from ..._tensor import Tensor
from ...autograd.mode import no_grad
from ..module import Module

MAPS = ("matrix_exp", "cayley", "householder")


class _Orthogonal(Module):
    def __init__(self, weight: Tensor, orthogonal_map: str, *,
                 use_trivialization: bool = True) -> None:
        super().__init__()
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: Tensor) -> Tensor:
        from ...creation import eye, zeros
        from ...linalg import householder_product, matrix_exp, solve
        from ...ops.shape import broadcast_to, cat
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = X.mT
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            # n*k - k(k-1)/2 parameters: the lower triangle, embedded in a square matrix
            X = X.tril()
            if n != k:
                pad = broadcast_to(zeros(n, n - k, dtype=X.dtype, device=X.device),
                                   (*X.shape[:-2], n, n - k))
                X = cat([X, pad], axis=-1)
            A = X - X.mT        # skew-symmetric
            if self.orthogonal_map == "matrix_exp":
                Q = matrix_exp(A)
            else:               # the Cayley retraction (I + A/2)(I - A/2)^{-1}
                Id = eye(n, dtype=A.dtype, device=A.device)
                Q = solve(Id - 0.5 * A, Id + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = X.tril(-1)
            tau = 2.0 / (1.0 + (A * A).sum(axis=-2))
            Q = householder_product(A, tau)
            # the diagonal of X holds the signs (+-1) of the columns; not differentiated
            signs = X.diagonal(dim1=-2, dim2=-1).detach().astype("int32").unsqueeze(-2)
            Q = Q * signs
        if "base" in self._buffers:
            Q = self.base @ Q
        if transposed:
            Q = Q.mT
        return Q

    def right_inverse(self, Q: Tensor) -> Tensor:
        with no_grad():
            return self._right_inverse(Q)

    def _right_inverse(self, Q: Tensor) -> Tensor:
        from ...creation import randn, zeros_like
        from ...ops.shape import cat
        if tuple(Q.shape) != self.shape:
            raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. "
                             f"Got a tensor of shape {tuple(Q.shape)}.")
        Q_init = Q
        n, k = Q.shape[-2], Q.shape[-1]
        transpose = n < k
        if transpose:
            Q = Q.mT
            n, k = k, n
        if "base" not in self._buffers:
            if self.orthogonal_map in ("matrix_exp", "cayley"):
                raise NotImplementedError(
                    "It is not possible to assign to the matrix exponential or the Cayley "
                    "parametrizations when use_trivialization=False.")
            # the reflectors of Q's QR decomposition with diag(R) > 0 (PyTorch's geqrf)
            a, tau = geqrf(Q._host())
            d = np.sign(np.diagonal(a, axis1=-2, axis2=-1)).copy()
            d[tau == 0.0] *= -1
            idx = np.arange(min(a.shape[-2:]))
            a[..., idx, idx] = d
            A = _like(a, Q)
            return A.mT if transpose else A
        if n == k:
            Q = Q.clone() if _is_orthogonal(Q) else _make_orthogonal(Q)
        else:           # complete Q to a full n x n orthogonal matrix
            N = randn(*Q.shape[:-2], n, n - k, dtype=Q.dtype, device=Q.device)
            Q = _make_orthogonal(cat([Q, N], axis=-1))
        self.base = Q
        # -Id, so that householder(zeros) is eye(n, k) with the diagonal's signs
        neg_id = zeros_like(Q_init)
        neg_id.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
        return neg_id


def _like(a: np.ndarray, t: Tensor) -> Tensor:
    from ...creation import tensor
    return tensor(np.ascontiguousarray(a, dtype=t._data.dtype), device=t.device)


def _is_orthogonal(Q: Tensor) -> bool:
    n, k = Q.shape[-2], Q.shape[-1]
    q = Q._host()
    eps = 10.0 * n * np.finfo(q.dtype).eps
    return bool(np.allclose(np.swapaxes(q, -1, -2) @ q, np.eye(k), rtol=1e-5, atol=eps))


def _make_orthogonal(A: Tensor) -> Tensor:
    """The Q factor of ``A`` (tall) with diag(R) >= 0, as PyTorch's (geqrf, then
    householder_product, then the signs of R's diagonal)."""
    a = A._host()
    x, tau = geqrf(a)
    q = _householder(x, tau)
    s = np.sign(np.diagonal(x, axis1=-2, axis2=-1))
    return _like(q * s[..., None, :], A)


def geqrf(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LAPACK's ``geqrf`` on a (batch of) matrices in NumPy: R on and above the diagonal,
    the Householder vectors (unit first entry implied) below, and their ``tau``s, as
    PyTorch's ``geqrf`` gives them (the ``tl.geqrf`` op's kernel)."""
    from ...ops.linalg_more import _geqrf_fwd
    return _geqrf_fwd(np, np.asarray(a))


def _householder(x: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """The first n columns of H_1 ... H_k from ``geqrf``'s output (``orgqr``)."""
    m, n = x.shape[-2], x.shape[-1]
    xb = x.reshape(-1, m, n)
    tb = tau.reshape(-1, tau.shape[-1])
    out = np.empty_like(xb)
    for b in range(xb.shape[0]):
        q = np.eye(m, n, dtype=x.dtype)
        for j in range(tb.shape[1] - 1, -1, -1):
            v = np.concatenate([[1.0], xb[b, j + 1:, j]]).astype(x.dtype)
            q[j:] -= tb[b, j] * np.outer(v, v @ q[j:])
        out[b] = q
    return out.reshape(x.shape)
