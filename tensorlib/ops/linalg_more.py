"""The rest of ``torch.linalg`` (real and complex dtypes): ``cholesky_ex`` (a registry op
that reports ``info`` instead of raising), and composites of existing ops (differentiable to any
order): ``cond``, ``vander``, ``tensorinv``, ``tensorsolve``, ``householder_product``,
``diagonal``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import _dtypes
from .._apply import apply
from .._tensor import Tensor
from . import _scipy
from ._util import numel, to_float, to_tensor
from .linalg import _mT
from .linalg_lu import _count, _float_spec
from .matrix import LinAlgError, _cholesky_vjp, _nan_pivot, _skipped_grads, _unused
from .nn_util import io_cost
from .registry import OpDef, register


class CholeskyExResult(NamedTuple):
    """``(L, info)`` (``torch.return_types.linalg_cholesky_ex``)."""
    L: Tensor
    info: Tensor


# --- cholesky_ex ------------------------------------------------------------------------------
def cholesky_message(op: str, info) -> str | None:
    """PyTorch's message for the first matrix whose Cholesky ``info`` (per matrix: the order
    of the leading minor that is not positive definite) is non-zero, as ``op``
    (``linalg.cholesky``, ``cholesky``, ``linalg.cholesky_ex``) words it, naming the batch
    element of a stack; None where none is."""
    flat = np.asarray(info).reshape(-1)
    bad = np.flatnonzero(flat > 0)
    if not bad.size:
        return None
    where = f"(Batch element {int(bad[0])}): " if np.ndim(info) else ""
    return (f"{op}: {where}The factorization could not be completed because the input is not "
            f"positive-definite (the leading minor of order {int(flat[bad[0]])} is not "
            "positive-definite).")


def cholesky_error(op: str, A, upper: bool = False) -> LinAlgError | None:
    """The LinAlgError PyTorch's ``op`` raises for ``A``, which a Cholesky factorisation
    just refused (its ``info`` from :func:`cholesky_ex`, recomputed: only on this error
    path); None where ``cholesky_ex`` finds nothing wrong."""
    info = cholesky_ex(to_tensor(A).detach(), upper=upper).info
    msg = cholesky_message(op, info._data.get() if hasattr(info._data, "get") else info._data)
    return None if msg is None else LinAlgError(msg)


def _chol_check(info, op: str) -> None:
    """Raise PyTorch's message for ``op`` behind the kernel op's name, which lets apply pass
    the error on as it is (:func:`cholesky_ex` drops it)."""
    msg = cholesky_message(op, info)
    if msg is not None:
        raise LinAlgError(f"cholesky_ex: {msg}")


def _chol_ex_generic(xp, a, *, check="", upper=False):
    """Where the backend does not raise (CuPy fills a failed factor with NaN), ``info`` is
    the first diagonal entry that is not finite, counted from 1."""
    if upper:       # (complex only) U = L^H, L from A^H's lower triangle: A's upper one
        L, info = _chol_ex_generic(xp, xp.conj(xp.swapaxes(a, -1, -2)), check=check)
        return xp.conj(xp.swapaxes(L, -1, -2)), info
    L = xp.linalg.cholesky(a)
    n = a.shape[-1]
    bad = ~xp.isfinite(xp.diagonal(L, 0, -2, -1))
    info = xp.where(bad.any(axis=-1), xp.argmax(bad, axis=-1) + 1, 0).astype(np.int32)
    if check:
        _chol_check(info.get() if hasattr(info, "get") else info, check)
    return L, info.reshape(a.shape[:-2]) if n else xp.zeros(a.shape[:-2], np.int32)


def _chol_ex_cpu(a, *, check="", upper=False):
    """NumPy's batched factorisation; where it fails, LAPACK ``potrf`` matrix by matrix for
    each ``info`` (and PyTorch's partial factor)."""
    if upper:       # (complex only, as the generic kernel)
        L, info = _chol_ex_cpu(np.conj(np.swapaxes(a, -1, -2)), check=check)
        return np.conj(np.swapaxes(L, -1, -2)), info
    batch = a.shape[:-2]
    try:
        L = np.linalg.cholesky(a)
        if not _nan_pivot(np, L).any():     # a NaN pivot fails in potrf below, as PyTorch's
            return L, np.zeros(batch, np.int32)
    except np.linalg.LinAlgError:
        pass
    lapack = _scipy.lapack()
    if lapack is None:
        return _chol_ex_numpy(a, check)
    potrf = getattr(lapack, {"f": "s", "d": "d", "F": "c", "D": "z"}[a.dtype.char] + "potrf")
    n = a.shape[-1]
    flat = a.reshape((_count(batch), n, n))
    L = np.empty_like(flat)
    info = np.zeros((flat.shape[0],), np.int32)
    for b in range(flat.shape[0]):
        c, i = potrf(flat[b], lower=1, clean=1)
        L[b], info[b] = np.tril(c), max(int(i), 0)
        if not info[b] and np.isnan(np.diagonal(c)).any():
            # OpenBLAS's potrf passes NaN pivots; reference LAPACK's (PyTorch's) stops there
            L[b], info[b] = _chol_ex_numpy(flat[b], "")
    info = info.reshape(batch)
    if check:
        _chol_check(info, check)
    return L.reshape(a.shape), info


def _chol_ex_numpy(a, check: str):
    """Without SciPy: the columns of a Cholesky-Crout factorisation up to the first
    non-positive pivot (``info``: its 1-based column), matrix by matrix; the failed column
    keeps LAPACK's reduced diagonal, the ones after it the input's lower triangle."""
    batch, n = a.shape[:-2], a.shape[-1]
    flat = a.reshape((_count(batch), n, n))
    L = np.tril(flat)
    info = np.zeros((flat.shape[0],), np.int32)
    for b in range(flat.shape[0]):
        m = L[b]
        for j in range(n):
            # (conj: A = L L^H for complex A, whose diagonal is real)
            d = m[j, j] - m[j, :j] @ np.conj(m[j, :j])
            if not d.real > 0:      # (also NaN)
                m[j, j] = d.real
                info[b] = j + 1
                break
            m[j, j] = np.sqrt(d.real)
            m[j + 1:, j] = (m[j + 1:, j] - m[j + 1:, :j] @ np.conj(m[j, :j])) / m[j, j]
    info = info.reshape(batch)
    if check:
        _chol_check(info, check)
    return L.reshape(a.shape), info


def _chol_ex_infer(a, *, check="", upper=False):
    shape, dt = _float_spec("cholesky_ex", a, square=True)
    return (shape, dt), (shape[:-2], np.dtype(np.int32))


def _chol_flops(ins, outs, **attrs):
    shape = ins[0][0]
    return numel(shape[:-2]) * (shape[-1] or 1) ** 3 // 3


def _chol_ex_vjp(node, gL, ginfo=None):
    return _skipped_grads(node, gL) if _unused(gL) else _cholesky_vjp(node, gL)


CHOLESKY_EX = register(OpDef("cholesky_ex", _chol_ex_generic, kernels={"cpu": _chol_ex_cpu},
                             vjp=_chol_ex_vjp, saves=False, saves_output=(0,),
                             infer=_chol_ex_infer, complex="rule",
                             cost=io_cost(_chol_flops)))


def cholesky_ex(A, *, upper: bool = False, check_errors: bool = False) -> CholeskyExResult:
    """``(L, info)`` (``torch.linalg.cholesky_ex``): :func:`tl.linalg.cholesky` that reports
    a matrix that is not positive definite in ``info`` (int32, per matrix: the order of the
    leading minor that is not positive definite, else 0; ``L`` then holds LAPACK's partial
    factor) instead of raising; ``check_errors=True`` raises. Only the lower triangle is
    read (``upper=True``: only the upper one, giving ``U`` with ``A = U.mT @ U``, as
    PyTorch's; complex ``A``: Hermitian, ``A = L L^H`` / ``U^H U``). Differentiable as
    ``cholesky``, complex inputs included (PyTorch's rule).

    >>> L, info = tl.linalg.cholesky_ex(tl.tensor([[1.0, 2.0], [2.0, 1.0]]))
    >>> int(info)
    2
    """
    A = to_float(to_tensor(A))
    _float_spec("linalg.cholesky_ex", (A.shape, A.dtype), square=True)
    check = "linalg.cholesky_ex" if check_errors else ""
    try:
        if upper and A.dtype.kind == "c":     # (the gradient is PyTorch's, not A.mH's)
            return CholeskyExResult(*apply(CHOLESKY_EX, A, check=check, upper=True))
        if upper:       # A's upper triangle is A.mT's lower one
            L, info = apply(CHOLESKY_EX, _mT(A), check=check)
            return CholeskyExResult(_mT(L), info)
        L, info = apply(CHOLESKY_EX, A, check=check)
        return CholeskyExResult(L, info)
    except LinAlgError as e:
        msg = str(e)
        if check and msg.startswith("cholesky_ex: "):
            raise LinAlgError(msg[len("cholesky_ex: "):]) from None
        raise


# --- condition number -------------------------------------------------------------------------
_COND_ORDS = (None, 2, -2, 1, -1, math.inf, -math.inf, "fro", "nuc")


def cond(A, p=None) -> Tensor:
    """The condition number of ``A`` in the norm ``p`` (``torch.linalg.cond``): for
    ``p`` None or 2 (-2) the ratio of the largest to the smallest singular value (its
    inverse), any ``(..., m, n)``; for 'fro', 'nuc', 1, -1, inf, -inf
    ``norm(A, p) * norm(inv(A), p)`` of square matrices, inf where ``A`` is singular.
    Differentiable where ``A`` is invertible (and, for p 2 / -2, its extreme singular values
    distinct from the others).

    >>> tl.linalg.cond(tl.tensor([[1.0, 0.0], [0.0, 4.0]]))
    tensor(4.)
    """
    from ..creation import eye
    from . import elementwise as E
    from .decompositions import matrix_norm, svdvals
    from .linalg_lu import inv_ex
    if p not in _COND_ORDS or isinstance(p, bool):
        raise ValueError(f"linalg.cond: p must be one of None, 2, -2, 1, -1, inf, -inf, "
                         f"'fro', 'nuc', got {p!r}")
    A = to_float(to_tensor(A))
    _float_spec("linalg.cond", (A.shape, A.dtype))
    if p in (None, 2, -2):
        s = svdvals(A)
        if s.shape[-1] == 0:
            return s.sum(axis=-1)
        big, small = s[..., 0], s[..., -1]
        return small / big if p == -2 else big / small
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"linalg.cond: p={p!r} needs square matrices (..., n, n), got shape "
                         f"{tuple(A.shape)}; p=None or 2 takes any")
    inverse, info = inv_ex(A)
    singular = (info > 0)
    # a singular matrix's inverse (inf / NaN) is replaced before its norm, whose SVD would
    # fail on it; its condition number is inf, as PyTorch's
    inverse = E.where(singular.unsqueeze(-1).unsqueeze(-1),
                      eye(A.shape[-1], dtype=A.dtype, device=A.device), inverse)
    value = matrix_norm(A, p) * matrix_norm(inverse, p)
    return E.where(singular, math.inf, value)


# --- Vandermonde, tensor inverses and solves, Householder products ----------------------------
def vander(x, *, N: int | None = None) -> Tensor:
    """The Vandermonde matrix of ``x`` (``(..., n)``) with increasing powers, ``(..., n,
    N)``: column j is ``x ** j`` (``torch.linalg.vander``; ``N`` defaults to n and must be
    greater than 1). The powers are repeated products, so integer inputs stay exact and the
    gradient is defined at 0.

    >>> tl.linalg.vander(tl.tensor([1.0, 2.0, 3.0]))
    tensor([[1., 1., 1.],
            [1., 2., 4.],
            [1., 3., 9.]])
    """
    from .shape import stack
    v = to_tensor(x)
    if v.ndim < 1:
        raise ValueError("linalg.vander: x must have at least one dimension (..., n), got a "
                         "0-d tensor")
    n = v.shape[-1] if N is None else N
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 1:
        raise ValueError(f"linalg.vander: N must be an integer greater than 1, got {n!r}")
    if v.dtype == np.bool_:
        v = v.astype(np.int64)
    from ..creation import ones_like
    cols, acc = [ones_like(v)], v
    for _ in range(int(n) - 1):
        cols.append(acc)
        acc = acc * v
    return stack(cols, axis=-1)


def tensorinv(A, ind: int = 2) -> Tensor:
    """The inverse of ``A`` for ``tensordot(., ., ind)`` (``torch.linalg.tensorinv``):
    ``A`` read as a square matrix with rows ``A.shape[:ind]`` and columns
    ``A.shape[ind:]``; the result has shape ``A.shape[ind:] + A.shape[:ind]``.

    >>> tl.linalg.tensorinv(tl.eye(4).reshape((4, 2, 2)), ind=1).shape
    (2, 2, 4)
    """
    from .matrix import inv
    A = to_float(to_tensor(A))
    if not isinstance(ind, (int, np.integer)) or ind <= 0:
        raise ValueError(f"linalg.tensorinv: ind must be a positive integer, got {ind!r}")
    rows, cols = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    if math.prod(rows) != math.prod(cols):
        raise ValueError(f"linalg.tensorinv: the product of A.shape[:ind] ({rows}) must equal "
                         f"that of A.shape[ind:] ({cols}), for A of shape {tuple(A.shape)} "
                         f"and ind={ind}")
    return inv(A.reshape((math.prod(rows), math.prod(cols)))).reshape(cols + rows)


def tensorsolve(A, B, dims=None) -> Tensor:
    """``X`` with ``tensordot(A, X, X.ndim) == B`` (``torch.linalg.tensorsolve``): ``X``
    has shape ``A.shape[B.ndim:]``; ``dims`` names dimensions of ``A`` to move to the end
    first.

    >>> tl.linalg.tensorsolve(2 * tl.eye(6).reshape((2, 3, 6)), tl.ones((2, 3))).shape
    (6,)
    """
    from .matrix import solve
    A, B = to_float(to_tensor(A)), to_tensor(B)
    if not (B.dtype.kind == "c" and A.dtype.kind != "c"):   # (solve makes A complex then)
        B = B.astype(A.dtype)
    if dims is not None:
        ds = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
        A = A.movedim(ds, tuple(range(A.ndim - len(ds), A.ndim)))
    out_shape = tuple(A.shape[B.ndim:])
    lead = tuple(A.shape[:B.ndim])
    if B.ndim > A.ndim or math.prod(out_shape) != math.prod(lead) or B.size != math.prod(lead):
        raise ValueError(f"linalg.tensorsolve: A of shape {tuple(A.shape)} (after dims) must "
                         f"start with B's shape {tuple(B.shape)} and the product of the rest "
                         f"({out_shape}) must equal that of B's shape")
    n = math.prod(lead)
    return solve(A.reshape((n, n)), B.reshape((n,))).reshape(out_shape)


def householder_product(A, tau) -> Tensor:
    """The first n columns of ``H_1 ... H_k``, ``H_i = I - tau_i v_i v_i^H`` with ``v_i``
    column i of ``A`` below the diagonal and 1 on it (``torch.linalg.householder_product``,
    LAPACK's ``orgqr``): ``A`` ``(..., m, n)`` with m >= n, ``tau`` ``(..., k)``, k <= n.
    Differentiable in both, to any order.

    >>> q = tl.linalg.householder_product(tl.zeros((3, 2)), tl.zeros(2))
    >>> q
    tensor([[1., 0.],
            [0., 1.],
            [0., 0.]])
    """
    from ..creation import arange, eye
    A = to_float(to_tensor(A))
    tau = to_tensor(tau).astype(A.dtype)
    if A.ndim < 2:
        raise ValueError(f"linalg.householder_product: A must be (..., m, n), got shape "
                         f"{tuple(A.shape)}")
    m, n = A.shape[-2:]
    if m < n:
        raise ValueError(f"linalg.householder_product: A must have at least as many rows as "
                         f"columns, got shape {tuple(A.shape)}")
    if tau.ndim != A.ndim - 1 or tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise ValueError(f"linalg.householder_product: tau must be (..., k) with A's batch "
                         f"dimensions, got shapes A {tuple(A.shape)} and tau "
                         f"{tuple(tau.shape)}")
    k = tau.shape[-1]
    if k > n:
        raise ValueError(f"linalg.householder_product: tau may have at most n = {n} entries "
                         f"per matrix, got {k}")
    Q = eye(m, n, dtype=A.dtype, device=A.device).broadcast_to(tuple(A.shape))
    rows = arange(m, device=A.device)
    for i in reversed(range(k)):       # Q <- H_i Q, from the last reflector back
        below = (rows > i).astype(A.dtype)
        v = A[..., :, i] * below + (rows == i).astype(A.dtype)
        w = (v.conj().unsqueeze(-2) @ Q)                        # (..., 1, n): v^H Q
        Q = Q - (tau[..., i].unsqueeze(-1) * v).unsqueeze(-1) * w
    if k == 0 and (A.requires_grad or tau.requires_grad):
        # Q = I still depends on A (gradient 0), so backward() through it runs, as PyTorch's
        from .reduction import zero_grad_link
        Q = Q + zero_grad_link(A) + zero_grad_link(tau)
    return Q


# --- geqrf / ormqr: QR in LAPACK's Householder form -------------------------------------------
class GeqrfResult(NamedTuple):
    """``(a, tau)`` (``torch.return_types.geqrf``)."""
    a: Tensor
    tau: Tensor


def _geqrf_fwd(xp, a):
    # h is the packed factor, transposed (not conjugated: complex too, as LAPACK's)
    h, tau = xp.linalg.qr(a, mode="raw")
    return xp.ascontiguousarray(xp.swapaxes(h, -1, -2)), tau


def _geqrf_infer(a):
    shape, dt = _float_spec("geqrf", a)
    m, n = shape[-2:]
    return (shape, dt), (shape[:-2] + (None if None in (m, n) else min(m, n),), dt)


GEQRF = register(OpDef("geqrf", _geqrf_fwd, saves=False, infer=_geqrf_infer,
                       complex="forward",
                       cost=io_cost(lambda i, o, **a: numel(i[0][0]) * min(i[0][0][-2:]))))


def geqrf(input) -> GeqrfResult:
    """LAPACK's ``geqrf`` (``torch.geqrf``): the QR factorisation of ``(..., m, n)`` in
    Householder form, ``R`` on and above the diagonal of ``a`` and the reflectors' vectors
    below it, with their scales ``tau`` (..., min(m, n)). ``Q`` is
    :func:`householder_product` (``orgqr``) of both; :func:`ormqr` applies it without
    forming it. Not differentiable, as PyTorch's (use ``tl.linalg.qr``).

    >>> a, tau = tl.geqrf(tl.tensor([[3.0, 1.0], [4.0, 2.0]]))
    >>> a.triu()                                           # R (LAPACK's signs)
    tensor([[-5.0000, -2.2000],
            [ 0.0000,  0.4000]])
    """
    A = to_float(to_tensor(input))
    _float_spec("geqrf", (A.shape, A.dtype))
    return GeqrfResult(*apply(GEQRF, A))


def ormqr(input, tau, other, left: bool = True, transpose: bool = False) -> Tensor:
    """``Q @ other`` for the ``Q`` of :func:`geqrf`'s ``(input, tau)`` (``torch.ormqr``,
    LAPACK's ``ormqr``), without forming Q: ``left=False`` gives ``other @ Q``,
    ``transpose=True`` uses ``Q.mT`` (``Q.mH`` for complex input, as PyTorch's); each
    reflector is ``H_i = I - tau_i v_i v_i^H``. ``input`` is ``(..., mn, k)``, ``tau``
    ``(..., k)`` and ``other`` ``(..., m, n)`` with mn = m (left) or n (right).
    Differentiable in all three, to any order (each reflector is applied with tensorlib
    ops).
    """
    from ..creation import arange
    A = to_float(to_tensor(input))
    C = to_tensor(other).astype(A.dtype)
    tau = to_tensor(tau).astype(A.dtype)
    if A.ndim < 2 or C.ndim < 2:
        raise ValueError(f"ormqr: input and other must be (..., rows, columns), got shapes "
                         f"{tuple(A.shape)} and {tuple(C.shape)}")
    mn, k = A.shape[-2], tau.shape[-1] if tau.ndim else -1
    side = C.shape[-2] if left else C.shape[-1]
    if tau.ndim != A.ndim - 1 or k > min(mn, A.shape[-1]) or side != mn:
        what = "rows" if left else "columns"
        raise ValueError(f"ormqr: input must have as many rows as other has {what} ({side}) "
                         f"and tau (..., k) at most min(input's sizes) entries; got input "
                         f"{tuple(A.shape)}, tau {tuple(tau.shape)}, other {tuple(C.shape)} "
                         f"(left={left})")
    rows = arange(mn, device=A.device)
    # Q = H_1 ... H_k: Q C and C Q^T apply H_k first, Q^T C and C Q apply H_1 first
    order = range(k) if left == transpose else reversed(range(k))
    for i in order:
        v = A[..., :, i] * (rows > i).astype(A.dtype) + (rows == i).astype(A.dtype)
        t = tau[..., i].unsqueeze(-1).unsqueeze(-1)
        vh = v
        if A.dtype.kind == "c":     # H^H = I - conj(tau) v v^H
            vh = v.conj()
            t = t.conj() if transpose else t
        if left:       # H C = C - tau v (v^H C)
            C = C - t * v.unsqueeze(-1) * (vh.unsqueeze(-2) @ C)
        else:          # C H = C - tau (C v) v^H
            C = C - t * (C @ v.unsqueeze(-1)) * vh.unsqueeze(-2)
    return C


def diagonal(A, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """The diagonal ``offset`` of the matrices over ``dim1`` and ``dim2`` (last), as
    ``torch.linalg.diagonal`` (``torch.diagonal`` with the last two dims by default).

    >>> tl.linalg.diagonal(tl.tensor([[1.0, 2.0], [3.0, 4.0]]))
    tensor([1., 4.])
    """
    return to_tensor(A).diagonal(offset, dim1=dim1, dim2=dim2)


__all__ = ["CholeskyExResult", "EigResult", "GeqrfResult", "cholesky_ex", "cond", "diagonal",
           "eig", "eigvals", "geqrf",
           "householder_product", "ormqr", "tensorinv", "tensorsolve", "vander"]


# --- torch.linalg's named results for slogdet / eigh (ops.matrix returns plain tuples) ------
class SlogdetResult(NamedTuple):
    """``(sign, logabsdet)`` of :func:`slogdet` (``torch.return_types.slogdet``)."""
    sign: Tensor
    logabsdet: Tensor


class EighResult(NamedTuple):
    """``(eigenvalues, eigenvectors)`` of :func:`eigh` (``torch.return_types.linalg_eigh``)."""
    eigenvalues: Tensor
    eigenvectors: Tensor


def slogdet(A) -> SlogdetResult:
    """``(sign, log|det|)`` of a square matrix (or of each in a stack), as a named tuple
    (``torch.linalg.slogdet``); differentiable in ``logabsdet``.

    >>> tl.linalg.slogdet(tl.tensor([[2.0, 0.0], [0.0, -3.0]])).sign
    tensor(-1.)
    """
    from .matrix import slogdet as _slogdet
    return SlogdetResult(*_slogdet(A))


def eigh(A, UPLO: str = "L") -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix, as a named
    tuple (``torch.linalg.eigh``); see :func:`tensorlib.ops.matrix.eigh`.

    >>> tl.linalg.eigh(tl.tensor([[2.0, 1.0], [1.0, 2.0]])).eigenvalues
    tensor([1., 3.])
    """
    from .matrix import eigh as _eigh
    return EighResult(*_eigh(A, UPLO))


# --- eig / eigvals: complex results, as PyTorch's ---------------------------------------------
class EigResult(NamedTuple):
    """``(eigenvalues, eigenvectors)`` of :func:`eig` (``torch.return_types.linalg_eig``)."""
    eigenvalues: Tensor
    eigenvectors: Tensor


def _eig_spec(a):
    shape, dt = tuple(a[0]), np.dtype(a[1])
    if len(shape) < 2 or (None not in shape[-2:] and shape[-1] != shape[-2]):
        raise ValueError(f"linalg.eig: expected a square matrix or a stack of them (..., n, n), "
                         f"got shape {shape}")
    if dt.kind not in "fc" or dt.itemsize < 4 or dt == np.float16:
        raise TypeError(f"linalg.eig: needs float32, float64, complex64 or complex128 "
                        f"matrices, got {dt}")
    c = _dtypes.complex_of(dt)
    return (shape[:-1], c), (shape, c)


def _eig_fwd(xp, a):
    from .matrix import _lapack
    c = _dtypes.complex_of(a.dtype)
    if xp is not np or a.size == 0:     # (CuPy has no general eig; empty stacks: no LAPACK)
        if a.size == 0:
            return (np.zeros(a.shape[:-1], c), np.zeros(a.shape, c))
        w, v = _lapack("linalg.eig", np.linalg.eig, xp.asnumpy(a))
        return xp.asarray(w.astype(c)), xp.asarray(v.astype(c))
    w, v = _lapack("linalg.eig", np.linalg.eig, a)
    # NumPy gives real results when all eigenvalues are real; PyTorch's are always complex
    return w.astype(c, copy=False), v.astype(c, copy=False)


def _recip(z: Tensor) -> Tensor:
    """``1 / z`` of a complex tensor as ``conj(z) / |z|^2`` (a real division)."""
    from .complex import conj, imag, real
    return conj(z) * (1.0 / (real(z) * real(z) + imag(z) * imag(z)))


def _eig_vjp(node, gw, gv):
    # PyTorch's linalg_eig_backward: with E_ij = conj(w_j - w_i) and
    # K = V^H gV - V^H V diag(Re diag(V^H gV)) (the eigenvectors' norm is fixed),
    # gA = V^-H (diag(gw) + K / E off the diagonal) V^H; a real input takes the real part
    from ..creation import eye
    from .complex import conj, real
    from .matrix import _mH
    a = node.inputs[0]
    w, v = node.output(0), node.output(1)
    if _unused(gw) and _unused(gv):
        return _skipped_grads(node, gw if gw is not None else gv)
    n = v.shape[-1]
    ident = eye(n, dtype=v.dtype, device=v.device)
    inner = None
    if not _unused(gw):
        inner = gw.unsqueeze(-1) * ident
    vh = _mH(v)
    if not _unused(gv):
        k = vh @ gv
        from .complex import imag
        from .matrix import _check_phase_invariant
        _check_phase_invariant(imag(k.diagonal(0, -2, -1)), None, "linalg.eig",
                               "eigenvectors")
        k = k - vh @ (v * real(k.diagonal(0, -2, -1)).unsqueeze(-2))
        wc = conj(w)
        e = wc.unsqueeze(-2) - wc.unsqueeze(-1) + ident
        off = (k * _recip(e)) * (1.0 - ident)
        inner = off if inner is None else inner + off
    from .matrix import SOLVE
    ga = apply(SOLVE, vh, inner @ vh)
    if a.dtype.kind != "c":
        ga = real(ga).astype(a.dtype)
    return (ga,)


EIG = register(OpDef("linalg_eig", _eig_fwd, vjp=_eig_vjp, saves=False, saves_output=True,
                     infer=_eig_spec, complex="rule",
                     cost=io_cost(lambda i, o, **a: 10 * numel(i[0][0][:-2])
                                  * (i[0][0][-1] or 1) ** 3),
                     doc="Eigenvalues and eigenvectors of a general square matrix, complex."))


def eig(A) -> EigResult:
    """Eigenvalues and right eigenvectors (columns, unit norm) of a square matrix or a stack
    ``(..., n, n)`` (``torch.linalg.eig``): both complex (complex64 for float32 and
    complex64 input, else complex128), also when the eigenvalues are real. Differentiable
    as PyTorch's (distinct eigenvalues; a loss through the eigenvectors must not depend on
    their phase); a real input gets the real part of the gradient.

    >>> tl.linalg.eig(tl.tensor([[0.0, -1.0], [1.0, 0.0]])).eigenvalues
    tensor([0.+1.j, 0.-1.j])
    """
    x = to_tensor(A)
    if x.dtype.kind not in "fc":
        x = to_float(x)
    return EigResult(*apply(EIG, x))


def eigvals(A) -> Tensor:
    """The eigenvalues of a square matrix or a stack, complex (``torch.linalg.eigvals``);
    see :func:`eig`."""
    return eig(A).eigenvalues
