"""Matrix decompositions and norms of ``tl.linalg``: ``svd``, ``qr``, ``vector_norm``,
``matrix_norm`` and ``norm`` (``torch.linalg``'s semantics).

``svd`` and ``qr`` are registry ops (LAPACK through ``xp.linalg``) whose backward rules follow
PyTorch's (``svd_backward`` / ``linalg_qr_backward``), written in tensorlib ops so they are
differentiable again. The norms are composites of existing ops.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from .. import _dtypes
from .._apply import apply
from .._tensor import Tensor
from ._util import numel, to_float, to_tensor
from .linalg import _mT
from .matrix import _check_phase_invariant, _lapack, _mH, _unused, solve, values_only
from .nn_util import io_cost
from .registry import OpDef, register

SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = namedtuple("QRResult", ["Q", "R"])


def _matrix_spec(op: str, spec) -> tuple:
    shape, dt = tuple(spec[0]), np.dtype(spec[1])
    if len(shape) < 2:
        raise ValueError(f"{op}: expected a matrix or a stack of them (..., m, n), got shape "
                         f"{shape}")
    if dt.kind not in "fc" or dt.itemsize < (4 if dt.kind == "f" else 8):
        raise TypeError(f"{op}: needs float32, float64, complex64 or complex128 matrices, got "
                        f"{dt}")
    return shape, dt


def _mnk_flops(ins, outs, **attrs):
    shape = ins[0][0]
    m, n = shape[-2] or 1, shape[-1] or 1
    return numel(shape[:-2]) * m * n * min(m, n)


def _prepare(a, op: str) -> Tensor:
    a = to_float(to_tensor(a))
    _matrix_spec(op, (a.shape, a.dtype))
    return a


def _eye(n: int, like: Tensor) -> Tensor:
    from ..creation import eye
    return eye(n, dtype=like.dtype, device=like.device)


def _diag_embed(v: Tensor) -> Tensor:
    return v.unsqueeze(-1) * _eye(v.shape[-1], v)


# --- singular value decomposition -------------------------------------------------------------
def _svd_fwd(xp, a, full_matrices):
    u, s, vh = _lapack("svd", xp.linalg.svd, a, full_matrices)
    return u, s, vh


def _svd_infer(a, *, full_matrices):
    shape, dt = _matrix_spec("svd", a)
    m, n = shape[-2], shape[-1]
    k = None if None in (m, n) else min(m, n)
    batch = shape[:-2]
    rdt = _dtypes.real_of(dt)      # singular values are real, for complex A too
    if full_matrices:
        return (batch + (m, m), dt), (batch + (k,), rdt), (batch + (n, n), dt)
    return (batch + (m, k), dt), (batch + (k,), rdt), (batch + (k, n), dt)


def _svd_vjp(node, gU, gS, gVh):
    """PyTorch's ``svd_backward`` (real case), for a loss that does not depend on the singular
    vectors' signs. The singular-vector terms are skipped when their cotangents are unused
    (so the gradient of S alone, ``U diag(gS) Vh``, is defined for repeated and zero singular
    values); otherwise they assume distinct non-zero singular values. svdvals (``uv=False``)
    keeps them: its first-order gradient reads U and Vh, so its second derivatives come back
    through them.

    Complex A (``mT`` becomes ``mH``): the singular vectors are defined up to a phase each
    (``u_i e^{i phi}``, ``v_i e^{i phi}``), so only a loss that does not depend on those
    phases has a gradient. As PyTorch's, the rule raises where it does (the imaginary
    diagonals of ``U^H gU`` and ``V^H gV`` do not cancel, tolerances 1e-2; eagerly only);
    it takes the gauge in which ``v_i``'s phase is fixed (the diagonal of the main term is
    dropped and U's phase term ``U diag(i Im(U^H gU)_ii / S_i) Vh`` added), which is
    PyTorch's gradient for every phase-invariant loss."""
    U, S, Vh = node.output(0), node.output(1), node.output(2)
    m, n = U.shape[-2], Vh.shape[-1]
    k = S.shape[-1]
    gU = None if _unused(gU) else gU
    gVh = None if _unused(gVh) else gVh
    if node.attrs["full_matrices"]:   # the extra columns/rows carry no gradient (as PyTorch)
        U = U[..., :, :k]
        Vh = Vh[..., :k, :]
        gU = None if gU is None else gU[..., :, :k]
        gVh = None if gVh is None else gVh[..., :k, :]
    if gU is None and gVh is None:
        if gS is None:
            return (None,)
        return ((U * gS.unsqueeze(-2)) @ Vh,)
    s_row, s_col = S.unsqueeze(-2), S.unsqueeze(-1)
    eye = _eye(k, S)
    s2 = S * S
    E = s2.unsqueeze(-2) - s2.unsqueeze(-1) + eye      # E_ij = S_j^2 - S_i^2, 1 on the diagonal
    cplx = U.dtype.kind == "c"
    if gU is not None:
        x = _mH(U) @ gU
        UhgU = x - _mH(x)
    if gVh is not None:
        y = Vh @ _mH(gVh)
        VhgV = y - _mH(y)
    if cplx:
        from .complex import imag
        _check_phase_invariant(
            imag(UhgU.diagonal(0, -2, -1)) if gU is not None else imag(VhgV.diagonal(0, -2, -1)),
            imag(VhgV.diagonal(0, -2, -1)) if gU is not None and gVh is not None else None,
            "svd", "singular vectors")
    if gU is not None and gVh is not None:
        ret = (UhgU * s_row + s_col * VhgV) / E
    elif gU is not None:
        ret = (UhgU / E) * s_row
    else:
        ret = s_col * (VhgV / E)
    if cplx:
        # the skew parts' diagonals are imaginary (zero for real A): the phase gauge, see
        # the docstring; UhgU_ii / (2 S_i) = i Im((U^H gU)_ii) / S_i
        ret = ret * (1.0 - eye)
        if gU is not None:
            ret = ret + (UhgU * eye) / (2.0 * s_row)
    if gS is not None:
        ret = ret + _diag_embed(gS)
    if m > k and gU is not None:
        gA = U @ ret
        gUSinv = gU / s_row
        gA = gA + gUSinv - U @ (_mH(U) @ gUSinv)
        gA = gA @ Vh
    elif n > k and gVh is not None:
        gA = ret @ Vh
        SinvgVh = gVh / s_col
        gA = gA + SinvgVh - (SinvgVh @ _mH(Vh)) @ Vh
        gA = U @ gA
    else:
        gA = U @ (ret @ Vh)
    return (gA,)


SVD = register(OpDef("svd", _svd_fwd, vjp=_svd_vjp, saves=False, saves_output=True,
                     infer=_svd_infer, cost=io_cost(_mnk_flops), complex="rule"))


def svd(A, full_matrices: bool = True) -> SVDResult:
    """``A = U @ diag(S) @ Vh`` for a matrix or a stack ``(..., m, n)`` (``torch.linalg.svd``):
    a named tuple ``(U, S, Vh)``, singular values descending. ``full_matrices=False`` gives the
    reduced ``U (..., m, k)`` and ``Vh (..., k, n)``, k = min(m, n).

    Differentiable as PyTorch's: the gradient of S alone is defined everywhere; through U and
    Vh it assumes distinct non-zero singular values and a loss that does not depend on the
    singular vectors' signs; with ``full_matrices=True`` the columns beyond k get no
    gradient. Complex ``A`` (as PyTorch's): complex U and Vh, real S; a loss that depends on
    the singular vectors' phases raises in backward, as PyTorch's.

    >>> tl.linalg.svd(tl.tensor([[3.0, 0.0], [0.0, 4.0]])).S
    tensor([4., 3.])
    """
    out = apply(SVD, _prepare(A, "svd"), full_matrices=bool(full_matrices))
    return SVDResult(*out)


def _svdvals_vjp(n, g):
    # the values-only kernel kept no vectors: the rule takes them from a full SVD (the op
    # runs only where nothing needed a gradient when it was called, so this is rare)
    U, _, Vh = apply(SVD, n.inputs[0], full_matrices=False)
    return ((U * g.unsqueeze(-2)) @ Vh,)


def _svdvals_infer(a):
    shape, dt = _matrix_spec("svdvals", a)
    m, n = shape[-2], shape[-1]
    return (shape[:-2] + (None if None in (m, n) else min(m, n),), _dtypes.real_of(dt))


SVDVALS = register(OpDef("svdvals", lambda xp, a: _lapack("svdvals", xp.linalg.svd, a, False,
                                                          False),
                         vjp=_svdvals_vjp, saves=True, infer=_svdvals_infer,
                         cost=io_cost(_mnk_flops), complex="rule"))


def svdvals(A) -> Tensor:
    """The singular values of ``A`` (descending; real for complex ``A``), as
    ``torch.linalg.svdvals``; the gradient
    ``U diag(gS) Vh`` is defined for repeated singular values too, and second derivatives
    (through U and Vh) where they are distinct.

    Where no gradient can be asked for (no input requires grad, or grad mode is off, and no
    capture or forward-mode level is active) LAPACK skips the vectors, 3-5x faster.

    >>> tl.linalg.svdvals(tl.tensor([[3.0, 0.0], [0.0, -4.0]]))
    tensor([4., 3.])
    """
    A = _prepare(A, "svdvals")
    if values_only(A):
        return apply(SVDVALS, A)
    return apply(SVD, A, full_matrices=False)[1]


# --- QR decomposition -------------------------------------------------------------------------
_QR_MODES = ("reduced", "complete", "r")


def _qr_fwd(xp, a, mode):
    if mode == "r":
        r = _lapack("qr", xp.linalg.qr, a, "r")
        return xp.empty((0,), a.dtype), r
    q, r = _lapack("qr", xp.linalg.qr, a, mode)
    return q, r


def _qr_infer(a, *, mode):
    shape, dt = _matrix_spec("qr", a)
    m, n = shape[-2], shape[-1]
    k = None if None in (m, n) else min(m, n)
    batch = shape[:-2]
    if mode == "r":
        return ((0,), dt), (batch + (k, n), dt)
    if mode == "complete":
        return (batch + (m, m), dt), (batch + (m, n), dt)
    return (batch + (m, k), dt), (batch + (k, n), dt)


def _qr_vjp(node, gQ, gR):
    """PyTorch's ``linalg_qr_backward``: full-rank square or tall input (m >= n), or wide
    (m < n) where the leading m x m block is invertible."""
    mode = node.attrs["mode"]
    Q, R = node.output(0), node.output(1)
    m, n = node.inputs[0].shape[-2:]
    if mode == "r":
        raise RuntimeError("qr: the gradient needs Q, which mode='r' does not compute; use "
                           "mode='reduced'")
    if mode == "complete" and m > n:
        raise RuntimeError("qr: not differentiable with mode='complete' when the input has "
                           f"more rows than columns ({m} > {n}), as in PyTorch; use "
                           "mode='reduced'")
    if m >= n:
        return (_qr_square_tall_vjp(Q, R, gQ, gR),)
    # wide: A = [X | Y] with X = Q U square, R = [U | V], so Y = Q V. Y's part is Q gV, and
    # V = Q^H Y adds Y gV^H to the cotangent of Q in X's factorisation (Y = Q V: the
    # factors' own output, so no input is saved)
    U, V = R[..., :, :m], R[..., :, m:]
    gU = gV = None
    if gR is not None:
        gU, gV = gR[..., :, :m], gR[..., :, m:]
        yv = (Q @ V) @ _mH(gV)
        gQ = yv if gQ is None else gQ + yv
    gX = _qr_square_tall_vjp(Q, U, gQ, gU)
    if gV is None:
        from ..creation import zeros
        gY = zeros(Q.shape[:-1] + (n - m,), dtype=Q.dtype, device=Q.device)
    else:
        gY = Q @ gV
    from .shape import concatenate
    return (concatenate([gX, gY], axis=-1),)


def _qr_square_tall_vjp(Q, R, gQ, gR):
    """The gradient of ``A = Q R`` with R square (k x k) and invertible (complex: ``mH`` for
    ``mT``, as PyTorch's)."""
    # gA = (Q syminvadj(triu(gR R^H - Q^H gQ)) + gQ) R^{-H}
    k = R.shape[-1]
    M = None
    if gR is not None:
        M = gR @ _mH(R)
    if gQ is not None:
        t = _mH(Q) @ gQ
        M = -t if M is None else M - t
    M = M.triu()
    if M.dtype.kind == "c":
        # syminvadj: X + X^H with the diagonal's real part halved back (its imaginary
        # part cancels: R's diagonal is real, so it carries no gradient)
        from .complex import real
        rM = real(M)
        M = M + _mH(M) - rM * _eye(k, rM)
    else:
        M = M + _mT(M) - M * _eye(k, M)      # syminvadj: X + X^T, the diagonal halved back
    gA = Q @ M
    if gQ is not None:
        gA = gA + gQ
    # B R^{-H}: solve R X^H = B^H
    return _mH(solve(R, _mH(gA)))


QR = register(OpDef("qr", _qr_fwd, vjp=_qr_vjp, saves=False, saves_output=True,
                    infer=_qr_infer, cost=io_cost(_mnk_flops), complex="rule"))


def qr(A, mode: str = "reduced") -> QRResult:
    """``A = Q @ R`` for a matrix or a stack ``(..., m, n)`` (``torch.linalg.qr``): a named
    tuple ``(Q, R)``. ``mode``: 'reduced' (Q (..., m, k), R (..., k, n)), 'complete'
    (Q (..., m, m)) or 'r' (R only; Q is empty). Differentiable as PyTorch's: full-rank
    square or tall inputs (not 'complete' with m > n), and wide ones (m < n) whose first m
    columns are independent. Complex ``A``: complex Q and R (R's diagonal real, LAPACK's),
    gradients as PyTorch's.
    """
    if mode not in _QR_MODES:
        raise ValueError(f"qr: mode must be one of {_QR_MODES}, got {mode!r}")
    return QRResult(*apply(QR, _prepare(A, "qr"), mode=mode))


# --- norms ------------------------------------------------------------------------------------
def _dims(dim, ndim: int, op: str) -> tuple[int, ...] | None:
    if dim is None:
        return None
    ds = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    out = []
    for d in ds:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
            raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {dim!r}")
        if not -max(ndim, 1) <= d < max(ndim, 1):     # a 0-d tensor has dims 0 and -1
            raise ValueError(f"{op}: dim {d} is out of range for a {ndim}-d tensor")
        out.append(int(d) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim!r} repeats a dimension")
    return tuple(out)


def vector_norm(x, ord: float = 2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The vector ``ord``-norm over ``dim`` (int, tuple, or every element for None), as
    ``torch.linalg.vector_norm``: ord any real number or +-inf (0 counts non-zeros, with
    gradient 0, as PyTorch's).

    >>> tl.linalg.vector_norm(tl.tensor([3.0, -4.0]), ord=1)
    tensor(7.)
    """
    from .reduction import amax, amin, norm as _norm
    x = to_float(to_tensor(x))
    if dtype is not None:
        x = x.astype(dtype)
    if isinstance(ord, str) or not isinstance(ord, (int, float, np.number)):
        raise TypeError(f"vector_norm: ord must be a number or +-inf, got {ord!r}")
    ord = float(ord)
    # dim=() is every dim, as torch.linalg's (NumPy's axis=() would reduce none)
    axes = _dims(None if isinstance(dim, (tuple, list)) and not dim else dim, x.ndim,
                 "vector_norm")
    kw = dict(keepdims=bool(keepdim))
    if ord == math.inf:
        return amax(x.abs(), axis=axes, **kw)
    if ord == -math.inf:
        return amin(x.abs(), axis=axes, **kw)
    if ord == 0:    # the count of nonzeros still depends on x (gradient 0, as PyTorch's)
        from .reduction import zero_grad_link
        count = (x != 0).astype(x.dtype).sum(axis=axes, **kw)
        return count + zero_grad_link(x) if x.requires_grad else count
    if ord > 0:
        return _norm(x, ord=ord if ord not in (1.0, 2.0) else int(ord), axis=axes, **kw)
    # a zero entry makes the norm 0 (|0|^ord = inf); the raw power's derivative there is
    # 0 * inf = NaN, so zeros enter as a constant inf and get PyTorch's gradient, 0
    from .elementwise import where
    ax = x.abs()
    zero = ax == 0
    powered = where(zero, math.inf, where(zero, 1.0, ax) ** ord)
    return powered.sum(axis=axes, **kw) ** (1.0 / ord)


_MATRIX_ORDS = ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    """The matrix norm over the two dims ``dim`` (``torch.linalg.matrix_norm``): ord 'fro'
    (Frobenius), 'nuc' (sum of singular values), 2 / -2 (largest / smallest singular value),
    1 / -1 (max / min column sum of |A|), inf / -inf (max / min row sum of |A|).

    >>> tl.linalg.matrix_norm(tl.tensor([[3.0, 0.0], [0.0, 4.0]]), ord=2)
    tensor(4.)
    """
    from .reduction import amax, amin
    A = to_float(to_tensor(A))
    if dtype is not None:
        A = A.astype(dtype)
    if A.ndim < 2:
        raise ValueError(f"matrix_norm: needs a tensor of at least 2 dimensions, got shape "
                         f"{tuple(A.shape)}")
    if ord not in _MATRIX_ORDS or isinstance(ord, bool):
        raise ValueError(f"matrix_norm: ord must be one of 'fro', 'nuc', 1, -1, 2, -2, inf, "
                         f"-inf, got {ord!r}")
    dims = _dims(dim, A.ndim, "matrix_norm")
    if dims is None or len(dims) != 2:
        raise ValueError(f"matrix_norm: dim must be a 2-tuple of dimensions, got {dim!r}")
    d0, d1 = dims
    if ord == "fro":
        return vector_norm(A, 2, dim=dims, keepdim=keepdim)
    if ord in ("nuc", 2, -2):
        Am = A.movedim((d0, d1), (-2, -1))
        s = svdvals(Am)
        if s.shape[-1] == 0:
            _empty_extreme(ord, A)
        # an empty matrix's largest singular value is 0, as PyTorch's (so is its sum)
        out = s.sum(axis=-1) if ord == "nuc" or s.shape[-1] == 0 else (
            amax(s, axis=-1) if ord == 2 else amin(s, axis=-1))
        if keepdim:
            for d in sorted((d0, d1)):
                out = out.unsqueeze(d)
        return out
    # 1/-1: sums over rows (d0) then extreme over columns; inf/-inf: the other way round
    sum_dim, ext_dim = (d0, d1) if ord in (1, -1) else (d1, d0)
    pick = amax if ord in (1, math.inf) else amin
    s = A.abs().sum(axis=sum_dim, keepdims=True)
    if A.shape[ext_dim] == 0:
        _empty_extreme(ord, A)
        pick = Tensor.sum         # the max over no sums is 0, as PyTorch's
    out = pick(s, axis=ext_dim, keepdims=True)
    return out if keepdim else out.squeeze((d0, d1))


def _empty_extreme(ord, A: Tensor) -> None:
    """A minimum over no values has no value (PyTorch raises too); a maximum is 0."""
    if ord in (-2, -1, -math.inf):
        raise ValueError(f"matrix_norm: ord={ord} is a minimum over an empty dimension of the "
                         f"input of shape {tuple(A.shape)}; it has no value (use ord=2, 1, "
                         f"inf, 'fro' or 'nuc', which are 0 there)")


def norm(A, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """``torch.linalg.norm``: a vector norm when ``dim`` is an int, or when ``dim`` is None and
    ``A`` is 1-d (or ``ord`` is None: the 2-norm of every element); a matrix norm when ``dim``
    is a 2-tuple or ``A`` is 2-d (ord 'fro' by default, 'nuc', +-1, +-2, +-inf).
    (The top-level ``tl.norm`` stays a vector norm of NumPy's kind.)

    >>> tl.linalg.norm(tl.tensor([[3.0, 0.0], [0.0, 4.0]]), ord=2)
    tensor(4.)
    """
    A = to_float(to_tensor(A))
    if dim is not None:
        dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        if len(dims) == 1:
            return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
        if len(dims) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
        raise ValueError(f"linalg.norm: dim must be an int or a 2-tuple, got {dim!r}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    raise ValueError(f"linalg.norm: with ord={ord!r} and dim=None the input must be 1-d or "
                     f"2-d, got shape {tuple(A.shape)}; pass dim")
