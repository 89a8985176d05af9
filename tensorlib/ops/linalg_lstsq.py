"""Least squares and numerical rank (``torch.linalg.lstsq``, ``torch.linalg.matrix_rank``),
real and complex dtypes (complex: ``mH`` for ``mT``, real singular values and residuals, as
PyTorch's).

``lstsq`` is one registry op: the minimum-norm solution from an SVD (what LAPACK's
``gelsd`` / ``gelss`` compute), batched in ``xp`` so it runs on NumPy and CuPy alike, or on
the CPU for 'gels' / 'gelsy' from LAPACK's ``gelsy`` (the same solution, cheaper), with the
effective rank and the singular values as extra outputs. Its backward rule is PyTorch's
(``linalg_lstsq_backward``: the gradient of ``pinv(A) @ B``), written in tensorlib ops.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _dtypes
from .._apply import apply
from .._tensor import Tensor
from ..autograd.mode import no_grad
from ..errors import InputError, ShapeError
from ._util import broadcast_shapes, promote_types, to_float, to_tensor
from .linalg import matmul
from .linalg_lu import _float_spec, _lu_flops
from .matrix import _mH, _skipped_grads, _unused
from .nn_util import io_cost
from .registry import OpDef, register

DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


class LstsqResult(NamedTuple):
    """``(solution, residuals, rank, singular_values)``
    (``torch.return_types.linalg_lstsq``)."""
    solution: Tensor
    residuals: Tensor
    rank: Tensor
    singular_values: Tensor


def _lstsq_fwd(xp, a, b, *, rcond, driver="gelsd"):
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    if k == 0:
        return (xp.zeros(batch + (n, b.shape[-1]), a.dtype), xp.zeros(batch, np.int64),
                xp.zeros(batch + (0,), _dtypes.real_of(a.dtype)))
    u, s, vh = xp.linalg.svd(a, full_matrices=False)
    keep = s > rcond * s[..., :1]
    s_inv = xp.where(keep, 1 / xp.where(keep, s, 1), 0).astype(s.dtype)
    x = xp.matmul(xp.conj(xp.swapaxes(vh, -1, -2)),
                  s_inv[..., :, None] * xp.matmul(xp.conj(xp.swapaxes(u, -1, -2)), b))
    return x, xp.asarray(keep.sum(axis=-1), dtype=np.int64), s


def _lstsq_cpu(a, b, *, rcond, driver="gelsd"):
    """'gels' / 'gelsy' through LAPACK's ``gelsy`` (complete orthogonal factorisation, QR
    with column pivoting: the minimum-norm solution, several times cheaper than an SVD),
    matrix by matrix; 'gelsd' / 'gelss' (which return the singular values) the batched SVD.
    The singular-value output of gelsy is zeros: :func:`lstsq` returns none for it."""
    from . import _scipy
    lapack = _scipy.lapack()
    m, n = a.shape[-2:]
    k = b.shape[-1]
    if driver not in ("gels", "gelsy") or lapack is None or not min(m, n, k):
        return _lstsq_fwd(np, a, b, rcond=rcond)
    pre = {"d": "d", "f": "s", "D": "z", "F": "c"}[a.dtype.char]
    gelsy = getattr(lapack, pre + "gelsy")
    lwork = max(int(np.real(getattr(lapack, pre + "gelsy_lwork")(m, n, k, rcond)[0])), 1)
    batch = a.shape[:-2]
    fa, fb = a.reshape((-1, m, n)), b.reshape((-1, m, k))
    x = np.empty((fa.shape[0], n, k), a.dtype)
    rank = np.empty((fa.shape[0],), np.int64)
    rhs = np.zeros((max(m, n), k), a.dtype)       # gelsy's B holds the n-row solution too
    jpvt = np.zeros((n,), np.int32)
    for i in range(fa.shape[0]):
        rhs[:m] = fb[i]
        rhs[m:] = 0
        jpvt[:] = 0
        _, sol, _, r, _ = gelsy(fa[i], rhs, jpvt, rcond, lwork)
        x[i], rank[i] = sol[:n], r
    return (x.reshape(batch + (n, k)), rank.reshape(batch),
            np.zeros(batch + (min(m, n),), _dtypes.real_of(a.dtype)))


def _lstsq_infer(a, b, *, rcond, driver="gelsd"):
    sa, dt = _float_spec("lstsq", a)
    sb = tuple(b[0])
    if np.dtype(b[1]) != dt:
        raise TypeError(f"lstsq: A and B must have one dtype, got {dt} and {np.dtype(b[1])}")
    if len(sb) != len(sa) or None not in (sa[-2], sb[-2]) and sa[-2] != sb[-2]:
        raise ValueError(f"lstsq: A {sa} and B {sb} do not align: B must be (..., {sa[-2]}, "
                         "k)")
    m, n = sa[-2:]
    k = None if None in (m, n) else min(m, n)
    return ((sa[:-2] + (n, sb[-1]), dt), (sa[:-2], np.dtype(np.int64)),
            (sa[:-2] + (k,), _dtypes.real_of(dt)))


def _pinv_backward(g: Tensor, pinvA: Tensor, A: Tensor) -> Tensor:
    """The gradient reaching ``A`` from a cotangent ``g`` of ``pinv(A)`` (PyTorch's
    ``pinv_backward``, ``mH`` for complex), arranged so the products are of the smaller
    dimension."""
    m, n = A.shape[-2:]
    pinvAh, gh = _mH(pinvA), _mH(g)
    if m <= n:
        K = gh @ pinvA
        KpinvAh = K @ pinvAh
        return (-_mH(pinvA @ K) + KpinvAh - (A @ pinvA) @ KpinvAh
                + (pinvAh @ pinvA) @ (gh - K @ A))
    K = pinvA @ gh
    pinvAhK = pinvAh @ K
    return (-_mH(K @ pinvA) + ((gh - A @ K) @ pinvA) @ pinvAh + pinvAhK
            - (pinvAhK @ pinvA) @ A)


def pinv_complex(A: Tensor, rtol, atol=None) -> Tensor:
    """The pseudo-inverse ``V diag(1/S) U^H`` of a non-empty complex stack (..., m, n), singular
    values at or below ``max(atol, rtol * largest)`` dropped (``torch_api.pinv_svd`` takes
    the plain transposes, right for real matrices only)."""
    from .decompositions import svd
    from .torch_api import inverted_above_cutoff
    u, s, vh = svd(A, full_matrices=False)
    s_inv = inverted_above_cutoff(s, s.detach(), rtol, atol)
    return matmul(_mH(vh) * s_inv.unsqueeze(-2), _mH(u))


def _lstsq_vjp(node, gX, grank=None, gS=None):
    if _unused(gX):
        return _skipped_grads(node, gX)
    from .torch_api import pinverse
    A, B = node.inputs
    if A.dtype.kind == "c" and 0 not in A.shape[-2:]:
        pinvA = pinv_complex(A, node.attrs["rcond"])
    else:
        pinvA = pinverse(A, rcond=node.attrs["rcond"])
    gA = _pinv_backward(gX @ _mH(B), pinvA, A) if A._rg else None
    gB = _mH(pinvA) @ gX if B._rg else None
    return gA, gB


LSTSQ = register(OpDef("lstsq", _lstsq_fwd, kernels={"cpu": _lstsq_cpu}, vjp=_lstsq_vjp,
                       saves=True, infer=_lstsq_infer, cost=io_cost(_lu_flops),
                       complex="rule"))


def lstsq(A, B, rcond: float | None = None, *, driver: str | None = None) -> LstsqResult:
    """The least-squares solution ``X`` minimising ``||A X - B||`` (minimum norm where
    ``A`` is rank-deficient), as ``torch.linalg.lstsq``: ``A`` ``(..., m, n)``, ``B``
    ``(..., m, k)`` or, with one dimension fewer, ``(..., m)`` (one vector per matrix);
    batch dimensions broadcast. Singular values at or below ``rcond`` times the largest (default
    ``eps * max(m, n)``) count as zero.

    A named tuple ``(solution, residuals, rank, singular_values)`` filled as PyTorch fills
    it for ``driver`` ('gelsy', the default; 'gels', 'gelsd', 'gelss'): ``residuals`` (the
    squared residual of each column) when m > n, the driver is not 'gelsy' and every
    matrix has full rank ('gels' assumes it), else empty; ``rank`` (int64) except for
    'gels'; ``singular_values`` for 'gelsd' and 'gelss'. Every driver computes the
    minimum-norm solution: 'gelsd' / 'gelss' from an SVD, 'gels' / 'gelsy' on the CPU by
    LAPACK's ``gelsy`` (QR with column pivoting; its rank is gelsy's, as PyTorch's), so
    'gels' needs no full rank here. Differentiable in ``A`` and ``B`` (PyTorch's
    rule: the gradient of ``pinv(A) @ B``); ``residuals`` is too. Whether residuals are
    returned depends on the ranks (a value), so under graph capture use 'gelsy' or 'gels'
    (or m <= n), whose result does not.

    >>> A = tl.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> tl.linalg.lstsq(A, tl.tensor([1.0, 1.0, 0.0]), driver="gelsd").solution
    tensor([0.3333, 0.3333])
    """
    from ..creation import zeros
    A = to_float(to_tensor(A))
    _float_spec("linalg.lstsq", (A.shape, A.dtype))
    B = to_tensor(B)
    if B.dtype.kind == "c" and A.dtype.kind != "c":     # a complex B promotes, never drops
        A = A.astype(promote_types(A.dtype, B.dtype))
    B = B.astype(A.dtype)
    if driver is None:
        driver = "gels" if A.device.type == "cuda" else "gelsy"    # PyTorch's defaults
    if driver not in DRIVERS:
        raise InputError(f"linalg.lstsq: driver must be one of {DRIVERS}, got {driver!r}")
    m, n = A.shape[-2:]
    if B.ndim not in (A.ndim, A.ndim - 1):
        raise ShapeError(f"linalg.lstsq: B must have A's number of dimensions ({A.ndim}: "
                         f"(..., {m}, k)) or one fewer (one vector per matrix), got shape "
                         f"{tuple(B.shape)} for A of shape {tuple(A.shape)}")
    vec = B.ndim == A.ndim - 1      # PyTorch's rule: one vector per matrix
    if vec:
        B = B.unsqueeze(-1)
    if B.ndim < 2 or B.shape[-2] != m:
        raise ShapeError(f"linalg.lstsq: A {tuple(A.shape)} and B {tuple(B.shape)} do not "
                         f"align: B must be (..., {m}, k) or (..., {m})")
    try:
        batch = broadcast_shapes("linalg.lstsq", tuple(A.shape[:-2]), tuple(B.shape[:-2]))
    except ValueError as e:
        raise ShapeError(str(e)) from None
    if tuple(A.shape[:-2]) != batch:
        A = A.broadcast_to(batch + (m, n))
    if tuple(B.shape[:-2]) != batch:
        B = B.broadcast_to(batch + tuple(B.shape[-2:]))
    if rcond is None:
        rcond = float(np.finfo(A.dtype).eps) * max(m, n, 1)
    X, rank, S = apply(LSTSQ, A, B, rcond=float(rcond), driver=driver)
    empty = zeros((0,), dtype=_dtypes.real_of(A.dtype), device=A.device)
    residuals = empty
    if m > n and driver != "gelsy" and (driver == "gels" or bool((rank == n).all())):
        r = matmul(A, X) - B
        if r.dtype.kind == "c":      # |r|^2, real (and smooth at 0, unlike abs)
            from .complex import conj, real
            r2 = real(r * conj(r))
        else:
            r2 = r ** 2
        residuals = r2.sum(axis=-2)    # (..., 1) for vectors too
    if driver == "gels":
        rank = zeros((0,), dtype=np.int64, device=A.device)
    if driver not in ("gelsd", "gelss"):
        S = empty
    return LstsqResult(X.squeeze(-1) if vec else X, residuals, rank, S)


def matrix_rank(A, *, atol=None, rtol=None, hermitian: bool = False, tol=None) -> Tensor:
    """The numerical rank of ``A`` (``(..., m, n)``), as ``torch.linalg.matrix_rank``: the
    number of singular values (eigenvalue magnitudes with ``hermitian=True``, reading the
    lower triangle) above ``max(atol, rtol * largest)``. ``rtol`` defaults to
    ``eps * max(m, n)``, or to 0 where ``atol`` > 0 is given; ``atol`` and ``rtol`` may be
    tensors broadcasting over the batch. ``tol`` is PyTorch's older ``atol`` (rtol 0).
    int64, not differentiable.

    >>> int(tl.linalg.matrix_rank(tl.tensor([[1.0, 2.0], [2.0, 4.0]])))
    1
    """
    from ..creation import zeros
    from . import elementwise as E
    from .decompositions import svdvals
    from .matrix import eigh
    A = to_float(to_tensor(A))
    _float_spec("linalg.matrix_rank", (A.shape, A.dtype))
    m, n = A.shape[-2:]
    if tol is not None:
        if atol is not None or rtol is not None:
            raise TypeError("linalg.matrix_rank: tol is the older name of atol; pass one "
                            "of tol and (atol, rtol)")
        atol, rtol = tol, 0.0
    if hermitian and m != n:
        raise ValueError(f"linalg.matrix_rank: hermitian=True needs square matrices, got "
                         f"shape {tuple(A.shape)}")
    if min(m, n) == 0:
        return zeros(tuple(A.shape[:-2]), dtype=np.int64, device=A.device)
    with no_grad():
        A = A.detach()
        s = eigh(A)[0].abs() if hermitian else svdvals(A)
        smax = s.amax(axis=-1)
        if rtol is None:
            if atol is None or isinstance(atol, (int, float)):
                positive = atol is not None and atol > 0
            else:
                positive = bool((to_tensor(atol) > 0).all())
            rtol = 0.0 if positive else float(np.finfo(A.dtype).eps) * max(m, n)
        rd = _dtypes.real_of(A.dtype)     # the singular values' (real) dtype
        thresh = to_tensor(rtol).astype(rd) * smax
        if atol is not None:
            thresh = E.maximum(to_tensor(atol).astype(rd), thresh)
        return (s > thresh.unsqueeze(-1)).astype(np.int64).sum(axis=-1)
