"""LU factorisation and the solvers built on it (``torch.linalg``'s ``lu_factor``,
``lu_factor_ex``, ``lu``, ``lu_solve``, ``solve_ex``, ``inv_ex``, ``lu_unpack``), real and
complex dtypes (complex matrices through LAPACK's ``cgetrf`` / ``zgetrf``: the batched
kernel is real-only).

Three registry ops: ``lu_factor`` (LAPACK ``getrf`` on the CPU, a batched elimination in
``xp`` elsewhere and without pivoting), ``lu_pivots_to_permutation`` (LAPACK's 1-based
row swaps to ``P``, not differentiable) and ``triangular_solve_nocheck`` (a triangular
solve that, as BLAS ``trsm``, gives inf / NaN for a zero diagonal instead of raising, so
the ``_ex`` variants can report ``info``). Their backward rules are tensorlib ops (PyTorch's
``linalg_lu_backward``), so gradients of gradients work; the rest are composites. The LU
rule is a holomorphic expression of the factors (products, triangular solves, ``tril`` /
``triu``, a real permutation), so complex inputs get PyTorch's complex rule (``mH`` for
``mT``) from the engine (``complex="holomorphic"``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from . import _scipy
from ._util import broadcast_shapes, numel, to_float, to_tensor, unbroadcast
from .linalg import _mT, matmul
from .matrix import LinAlgError, _mH, _skipped_grads, _unused, _vector_rhs
from .nn_util import io_cost
from .registry import OpDef, register


def _float_spec(op: str, spec, square: bool = False) -> tuple:
    from ..errors import DTypeError, ShapeError
    shape, dt = tuple(spec[0]), np.dtype(spec[1])
    if len(shape) < 2:
        raise ShapeError(f"{op}: expected a matrix or a stack of them (..., m, n), got shape "
                         f"{shape}")
    if square and None not in shape[-2:] and shape[-1] != shape[-2]:
        raise ShapeError(f"{op}: expected a square matrix or a stack of them (..., n, n), "
                         f"got shape {shape}")
    if dt.kind not in "fc" or dt.itemsize < 4 or (dt.kind == "c" and op not in _COMPLEX_OK):
        kinds = "float32 or float64 (or complex64 or complex128)" if op in _COMPLEX_OK \
            else "float32 or float64"
        raise DTypeError(f"{op}: needs {kinds} matrices, got {dt}")
    return shape, dt


# the ops here that take complex matrices (what is not here refuses them, naming the op)
_COMPLEX_OK = frozenset({"triangular_solve_nocheck", "linalg.solve_triangular", "lu_factor",
                         "linalg.lu_factor", "linalg.lu_factor_ex", "linalg.lu",
                         "linalg.lu_solve", "linalg.solve_ex", "linalg.inv_ex", "lu_unpack",
                         "lstsq", "linalg.lstsq", "linalg.matrix_rank", "linalg.cond",
                         "ldl_factor", "ldl_solve", "linalg.ldl_factor", "linalg.ldl_factor_ex",
                         "linalg.ldl_solve", "cholesky_ex", "linalg.cholesky_ex", "geqrf"})


def _count(batch: tuple) -> int:
    """The number of matrices in a batch (an explicit size: reshape's -1 is ambiguous when a
    matrix is empty)."""
    return int(np.prod(batch, dtype=np.int64))


def _lu_flops(ins, outs, **attrs):
    shape = ins[0][0]
    m, n = shape[-2] or 1, shape[-1] or 1
    return numel(shape[:-2]) * m * n * min(m, n)


# --- the factorisation ------------------------------------------------------------------------
def _lu_elimination(xp, a, pivot: bool):
    """Gaussian elimination over a batch ``(B, m, n)`` at once, with partial pivoting (the
    first largest |entry|, as LAPACK's ``idamax``; for complex entries ``|re| + |im|``, as
    ``izamax``) or none; a zero pivot leaves its column unscaled and sets ``info`` as
    ``getrf`` does."""
    a = a.copy()
    nb, m, n = a.shape
    k = min(m, n)
    piv = xp.empty((nb, k), np.int32)
    info = xp.zeros((nb,), np.int32)
    rows = xp.arange(nb)
    for j in range(k):
        if pivot:
            col = a[:, j:, j]
            size = xp.abs(col.real) + xp.abs(col.imag) if col.dtype.kind == "c" \
                else xp.abs(col)
            p = j + xp.argmax(size, axis=1)
            top = a[rows, j, :].copy()
            a[rows, j, :] = a[rows, p, :]
            a[rows, p, :] = top
            piv[:, j] = (p + 1).astype(np.int32)
        else:
            piv[:, j] = j + 1
        d = a[:, j, j]
        zero = d == 0
        info = xp.where((info == 0) & zero, j + 1, info).astype(np.int32)
        col = a[:, j + 1:, j]
        col = xp.where(zero[:, None], col, col / xp.where(zero, 1, d)[:, None])
        a[:, j + 1:, j] = col
        a[:, j + 1:, j + 1:] -= col[:, :, None] * a[:, j, None, j + 1:]
    return a, piv, info


# PyTorch's names for the ops in its messages (the check attr keeps tensorlib's)
_TORCH_NAME = {"linalg.solve": "torch.linalg.solve", "linalg.solve_ex": "torch.linalg.solve_ex"}


def singular_message(op: str, info) -> str | None:
    """PyTorch's message for the first matrix whose LU ``info`` (getrf's, per matrix) is
    non-zero, as ``op`` (``linalg.inv``, ``linalg.solve`` or their ``_ex`` forms) words it,
    naming the batch element of a stack; None where none is."""
    flat = np.asarray(info).reshape(-1)
    bad = np.flatnonzero(flat > 0)
    if not bad.size:
        return None
    i = int(flat[bad[0]])
    where = f"(Batch element {int(bad[0])}): " if np.ndim(info) else ""
    if op.startswith("linalg.inv"):
        text = (f"The diagonal element {i} is zero, the inversion could not be completed "
                "because the input matrix is singular.")
    else:
        text = "The solver failed because the input matrix is singular."
    return f"{_TORCH_NAME.get(op, op)}: {where}{text}"


def singular_error(op: str, A) -> LinAlgError:
    """The LinAlgError PyTorch's ``op`` (``linalg.inv``, ``linalg.solve``) raises for
    square ``A``, which a LAPACK solve just refused as singular (the zero pivot from
    :func:`lu_factor_ex`, recomputed: only on this error path)."""
    A = to_tensor(A).detach()
    info = _lu_apply(to_float(A), True, "")[2]._data
    msg = singular_message(op, info.get() if hasattr(info, "get") else info)
    if msg is None:     # (LAPACK's solver found a zero pivot that the LU kernel rounds away)
        msg = (f"{_TORCH_NAME.get(op, op)}: The solver failed because the input matrix is "
               "singular." if op.startswith("linalg.solve") else f"{op}: The inversion could "
               "not be completed because the input matrix is singular.")
    return LinAlgError(msg)


def _lu_check(info, op: str) -> None:
    """Raise for a zero pivot, naming the batch element: inv_ex / solve_ex with PyTorch's
    message behind the op's name, which lets apply pass the error on as it is
    (:func:`_lu_apply` drops it)."""
    if op.startswith(_PYTORCH_WORDED):
        msg = singular_message(op, info)
        if msg is not None:
            raise LinAlgError(f"lu_factor: {msg}")
        return
    flat = np.asarray(info).reshape(-1)
    bad = np.flatnonzero(flat > 0)
    if bad.size:
        i = int(flat[bad[0]])
        where = f" (batch element {int(bad[0])})" if np.ndim(info) else ""
        raise LinAlgError(f"lu_factor: U[{i},{i}] is zero in {op}{where}: the matrix is "
                          "singular, and solving with it would divide by zero. "
                          "linalg.lu_factor_ex and linalg.lu do not raise (they report it "
                          "in info)")


_PYTORCH_WORDED = ("linalg.inv", "linalg.solve")


def _lu_apply(A, pivot: bool, check: str):
    """``apply(LU_FACTOR)``; inv_ex's and solve_ex's check error is PyTorch's message,
    without the op's name."""
    try:
        return apply(LU_FACTOR, A, pivot=pivot, check=check)
    except LinAlgError as e:
        msg = str(e)
        if check.startswith(_PYTORCH_WORDED) and msg.startswith("lu_factor: "):
            raise LinAlgError(msg[len("lu_factor: "):]) from None
        raise


def _lu_generic(xp, a, *, pivot=True, check=""):
    m, n = a.shape[-2:]
    batch = a.shape[:-2]
    lu, piv, info = _lu_elimination(xp, a.reshape((_count(batch), m, n)), bool(pivot))
    info = info.reshape(batch)
    if check:
        _lu_check(info.get() if hasattr(info, "get") else info, check)
    return lu.reshape(a.shape), piv.reshape(batch + (min(m, n),)), info


# up to this many rows, tensorlib's own unblocked kernel (getf2's steps, over the batch in
# one call) beats a blocked LAPACK getrf call per matrix; above it LAPACK's blocking wins
_LU_KERNEL_MAX = 48


def _lu_cpu(a, *, pivot=True, check=""):
    """tensorlib's batched kernel for small matrices and wherever SciPy is absent; LAPACK
    ``getrf`` one matrix at a time for large ones (NumPy has no LU of its own)."""
    if a.dtype.kind == "c" and pivot and _scipy.lapack() is not None:
        return _lu_lapack(a, check=check)     # as PyTorch's (the same getrf)
    if a.dtype not in (np.float32, np.float64):
        return _lu_generic(np, a, pivot=pivot, check=check)
    if pivot and min(a.shape[-2:]) > _LU_KERNEL_MAX and _scipy.lapack() is not None:
        return _lu_lapack(a, check=check)
    from .. import _ops
    m, n = a.shape[-2:]
    batch = a.shape[:-2]
    lu = np.array(a.reshape((_count(batch), m, n)), order="C")     # always a copy
    piv = np.empty((lu.shape[0], min(m, n)), np.int32)
    info = np.zeros((lu.shape[0],), np.int32)
    _ops.lu_batched(lu, piv, info, bool(pivot))
    info = info.reshape(batch)
    if check:
        _lu_check(info, check)
    return lu.reshape(a.shape), piv.reshape(batch + (min(m, n),)), info


def _lu_lapack(a, *, check=""):
    lapack = _scipy.lapack()
    getrf = getattr(lapack, {"d": "dgetrf", "f": "sgetrf", "D": "zgetrf",
                             "F": "cgetrf"}[a.dtype.char])
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    flat = a.reshape((_count(batch), m, n))
    lu = np.empty_like(flat)
    piv = np.empty((flat.shape[0], k), np.int32)
    info = np.zeros((flat.shape[0],), np.int32)
    if k:
        for b in range(flat.shape[0]):
            f, p, i = getrf(flat[b])
            lu[b], piv[b] = f, p + 1          # SciPy gives 0-based pivots
            info[b] = max(int(i), 0)
    else:
        lu[...] = flat
    info = info.reshape(batch)
    if check:
        _lu_check(info, check)
    return lu.reshape(a.shape), piv.reshape(batch + (k,)), info


def _lu_infer(a, *, pivot=True, check=""):
    shape, dt = _float_spec("lu_factor", a)
    m, n = shape[-2:]
    k = None if None in (m, n) else min(m, n)
    batch = shape[:-2]
    return (shape, dt), (batch + (k,), np.dtype(np.int32)), (batch, np.dtype(np.int32))


def _unpack(LU: Tensor) -> tuple[Tensor, Tensor]:
    """``L`` (unit lower, m x k) and ``U`` (upper, k x n) from the packed factors."""
    from ..creation import eye
    m, n = LU.shape[-2:]
    k = min(m, n)
    L = LU[..., :, :k].tril(-1) + eye(m, k, dtype=LU.dtype, device=LU.device)
    return L, LU[..., :k, :].triu()


def _lu_vjp(node, gLU, gpiv=None, ginfo=None):
    """PyTorch's ``linalg_lu_backward`` on the packed factors (strictly lower part: L's
    cotangent, the rest: U's), for a full-rank input."""
    if _unused(gLU):
        return _skipped_grads(node, gLU)
    from .shape import concatenate
    LU = node.output(0)
    m, n = LU.shape[-2:]
    k = min(m, n)
    L, U = _unpack(LU)
    gL, gU = gLU[..., :, :k].tril(-1), gLU[..., :k, :].triu()
    if m == n:
        gA = (_mT(L) @ gL).tril(-1) + (gU @ _mT(U)).triu()
        gA = _tri(_mT(U), gA, upper=False, left=False)
        gA = _tri(_mT(L), gA, upper=True, unit=True)
    elif m < n:     # wide: A = P L [U1 | U2]
        U1 = U[..., :, :k]
        gA = (_mT(L) @ gL - gU.triu() @ _mT(U)).tril(-1)
        gA = _tri(_mT(U1), gA, upper=False, left=False)
        gA = concatenate([gA + gU[..., :, :k].triu(), gU[..., :, k:]], axis=-1)
        gA = _tri(_mT(L), gA, upper=True, unit=True)
    else:           # tall: A = P [L1; L2] U
        L1 = L[..., :k, :]
        gA = (gU @ _mT(U) - _mT(L) @ gL).triu()
        gA = _tri(_mT(L1), gA, upper=True, unit=True)
        gA = concatenate([gA + gL[..., :k, :].tril(-1), gL[..., k:, :]], axis=-2)
        gA = _tri(_mT(U), gA, upper=False, left=False)
    if node.attrs.get("pivot", True):
        gA = matmul(_permutation(node.output(1), m, LU.dtype), gA)
    return (gA,)


LU_FACTOR = register(OpDef("lu_factor", _lu_generic, kernels={"cpu": _lu_cpu}, vjp=_lu_vjp,
                           saves=False, saves_output=(0, 1), infer=_lu_infer,
                           cost=io_cost(_lu_flops), complex="holomorphic"))


# --- pivots to a permutation matrix -----------------------------------------------------------
def _perm_fwd(xp, piv, *, m, dtype):
    batch, k = piv.shape[:-1], piv.shape[-1]
    p = piv.reshape((_count(batch), k)).astype(np.int64) - 1
    nb = p.shape[0]
    rows = xp.arange(nb)
    # LAPACK's swaps, in order: row i <-> row piv[i]; on Python lists for a few matrices
    # (a swap costs ~0.1 us there, ~3 us as array ops), else vectorised over the batch
    if xp is np and nb <= 8:
        perm = np.empty((nb, m), np.int64)
        for b, pb in enumerate(p.tolist()):
            order = list(range(m))
            for i, j in enumerate(pb):
                order[i], order[j] = order[j], order[i]
            perm[b] = order
    else:
        perm = xp.broadcast_to(xp.arange(m), (nb, m)).copy()
        for i in range(k):
            top = perm[:, i].copy()
            perm[:, i] = perm[rows, p[:, i]]
            perm[rows, p[:, i]] = top
    P = xp.zeros((nb, m, m), dtype)
    P[rows[:, None], perm, xp.arange(m)[None, :]] = 1       # P[perm[i], i] = 1
    return P.reshape(batch + (m, m))


def _perm_infer(piv, *, m, dtype):
    shape, dt = tuple(piv[0]), np.dtype(piv[1])
    if dt.kind not in "iu" or not shape:
        raise TypeError(f"lu_pivots_to_permutation: pivots must be integers (..., k), got "
                        f"{dt} of shape {shape}")
    return shape[:-1] + (m, m), np.dtype(dtype)


PIVOTS_TO_PERMUTATION = register(OpDef("lu_pivots_to_permutation", _perm_fwd, saves=False,
                                       infer=_perm_infer, cost=io_cost()))


def _permutation(pivots: Tensor, m: int, dtype) -> Tensor:
    return apply(PIVOTS_TO_PERMUTATION, pivots, m=int(m), dtype=np.dtype(dtype).name)


# --- triangular solves that do not check -----------------------------------------------------
def _trsolve_loop(xp, t, b, upper, unit):
    """Substitution row by row, vectorised over the batch and the right-hand sides."""
    n = t.shape[-1]
    x = b.copy()
    order = range(n - 1, -1, -1) if upper else range(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in order:
            rest = slice(i + 1, n) if upper else slice(0, i)
            s = x[..., i, :] - xp.matmul(t[..., i:i + 1, rest], x[..., rest, :])[..., 0, :]
            x[..., i, :] = s if unit else s / t[..., i, i, None]
    return x


def _broadcast_tb(xp, t, b):
    batch = np.broadcast_shapes(t.shape[:-2], b.shape[:-2])
    return (xp.broadcast_to(t, batch + t.shape[-2:]), xp.broadcast_to(b, batch + b.shape[-2:]),
            batch)


def _trsolve_generic(xp, t, b, *, upper, unit=False):
    t, b, _ = _broadcast_tb(xp, t, b)
    return _trsolve_loop(xp, t, b, upper, unit)


def _trsolve_cpu(t, b, *, upper, unit=False):
    """BLAS ``trsm`` per matrix when there are few (its blocked kernel is fastest on large
    matrices), else the substitution vectorised over the batch (many small matrices)."""
    t, b, batch = _broadcast_tb(np, t, b)
    n = t.shape[-1]
    nb = _count(batch)
    blas = _scipy.blas()
    if nb > max(n, 1) or b.size == 0 or blas is None:
        return _trsolve_loop(np, t, b, upper, unit)
    # (trans_a=1 is the plain transpose for complex matrices too: 2 would conjugate)
    trsm = getattr(blas, {"d": "dtrsm", "f": "strsm", "D": "ztrsm", "F": "ctrsm"}[t.dtype.char])
    # one right-hand side: trsv (OpenBLAS's trsm on one column was ~6x slower than PyTorch)
    trsv = (getattr(blas, {"d": "dtrsv", "f": "strsv", "D": "ztrsv", "F": "ctrsv"}[t.dtype.char])
            if b.shape[-1] == 1 else None)
    tf, bf = t.reshape((nb, n, n)), b.reshape((nb,) + b.shape[-2:])
    out = np.empty(bf.shape, t.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(nb):
            ti = tf[i]
            if trsv is not None:
                tr = ti.flags.c_contiguous and not ti.flags.f_contiguous
                # (x is copied by the wrapper unless overwrite_x: b is the caller's)
                out[i, :, 0] = trsv(ti.T if tr else ti, bf[i, :, 0], lower=int(upper == tr),
                                    trans=int(tr), diag=int(bool(unit)))
            elif ti.flags.c_contiguous and not ti.flags.f_contiguous:
                # BLAS reads column-major: a row-major T is T.T's column-major storage, so
                # solve with (T.T).T (trans_a) rather than let SciPy copy n^2 entries
                out[i] = trsm(1.0, ti.T, bf[i], lower=upper, trans_a=1, diag=int(bool(unit)))
            else:
                out[i] = trsm(1.0, ti, bf[i], lower=not upper, diag=int(bool(unit)))
    return out.reshape(b.shape)


def _trsolve_infer(t, b, *, upper, unit=False):
    st, dt = _float_spec("triangular_solve_nocheck", t, square=True)
    sb = tuple(b[0])
    if np.dtype(b[1]) != dt:
        raise TypeError(f"triangular_solve_nocheck: A and B must have one dtype, got {dt} and "
                        f"{np.dtype(b[1])}")
    if len(sb) < 2 or None not in (st[-1], sb[-2]) and st[-1] != sb[-2]:
        raise ValueError(f"triangular_solve_nocheck: A {st} and B {sb} do not align: B must "
                         f"be (..., {st[-1]}, k)")
    return broadcast_shapes("triangular_solve_nocheck", st[:-2], sb[:-2]) + sb[-2:], dt


def _trsolve_flops(ins, outs, **attrs):
    return numel(outs[0][0]) * (ins[0][0][-1] or 1)


def _trsolve_vjp(node, g):
    t, b = node.inputs
    x = node.output(0)
    upper, unit = node.attrs["upper"], node.attrs.get("unit", False)
    gb = apply(TRSOLVE, _mT(t), g, upper=not upper, unit=unit)
    gt = None
    if t._rg:
        gt = -(gb @ _mT(x))
        gt = gt.triu(int(unit)) if upper else gt.tril(-int(unit))
        gt = unbroadcast(gt, t.shape)
    return gt, (unbroadcast(gb, b.shape) if b._rg else None)


TRSOLVE = register(OpDef("triangular_solve_nocheck", _trsolve_generic,
                         kernels={"cpu": _trsolve_cpu}, vjp=_trsolve_vjp, saves=(0,),
                         saves_output=True, infer=_trsolve_infer,
                         cost=io_cost(_trsolve_flops), complex="holomorphic"))


def _tri(T: Tensor, B: Tensor, *, upper: bool, left: bool = True, unit: bool = False):
    """``T^-1 B`` (``B T^-1`` with ``left=False``), reading one triangle of ``T``."""
    if left:
        return apply(TRSOLVE, T, B, upper=bool(upper), unit=bool(unit))
    return _mT(apply(TRSOLVE, _mT(T), _mT(B), upper=not upper, unit=bool(unit)))


# --- public functions -------------------------------------------------------------------------
class LUFactorResult(NamedTuple):
    """``(LU, pivots)`` (``torch.return_types.linalg_lu_factor``)."""
    LU: Tensor
    pivots: Tensor


class LUFactorExResult(NamedTuple):
    """``(LU, pivots, info)`` (``torch.return_types.linalg_lu_factor_ex``)."""
    LU: Tensor
    pivots: Tensor
    info: Tensor


class LUResult(NamedTuple):
    """``(P, L, U)`` (``torch.return_types.linalg_lu``)."""
    P: Tensor
    L: Tensor
    U: Tensor


class SolveExResult(NamedTuple):
    """``(result, info)`` (``torch.return_types.linalg_solve_ex``)."""
    result: Tensor
    info: Tensor


class InvExResult(NamedTuple):
    """``(inverse, info)`` (``torch.return_types.linalg_inv_ex``)."""
    inverse: Tensor
    info: Tensor


def _matrix(A, op: str) -> Tensor:
    A = to_float(to_tensor(A))
    _float_spec(op, (A.shape, A.dtype))
    return A


def lu_factor_ex(A, *, pivot: bool = True, check_errors: bool = False) -> LUFactorExResult:
    """The LU factorisation of ``A`` (``(..., m, n)``), packed as LAPACK's ``getrf``
    (``torch.linalg.lu_factor_ex``): ``LU`` holds ``U`` and the strictly lower part of the
    unit-lower ``L``; ``pivots`` (int32, 1-based) the row swaps; ``info`` (int32, per
    matrix) is ``i`` when ``U[i-1, i-1]`` is zero, else 0. It raises only with
    ``check_errors=True``. ``pivot=False`` factors without row swaps (it can fail on
    matrices that need them). Differentiable (full-rank inputs), to any order.

    >>> LU, piv, info = tl.linalg.lu_factor_ex(tl.tensor([[1.0, 2.0], [2.0, 4.0]]))
    >>> int(info)
    2
    """
    A = _matrix(A, "linalg.lu_factor_ex")
    return LUFactorExResult(*_lu_apply(A, bool(pivot),
                                       "linalg.lu_factor_ex" if check_errors else ""))


def lu_factor(A, *, pivot: bool = True) -> LUFactorResult:
    """``(LU, pivots)`` of :func:`lu_factor_ex` (``torch.linalg.lu_factor``); a singular
    matrix (a zero on U's diagonal) raises :class:`LinAlgError`.

    >>> LU, piv = tl.linalg.lu_factor(tl.tensor([[1.0, 2.0], [3.0, 4.0]]))
    >>> piv
    tensor([2, 2], dtype=int32)
    """
    A = _matrix(A, "linalg.lu_factor")
    LU, piv, _ = _lu_apply(A, bool(pivot), "linalg.lu_factor")
    return LUFactorResult(LU, piv)


def lu(A, *, pivot: bool = True) -> LUResult:
    """``A = P @ L @ U`` (``torch.linalg.lu``): ``P`` a permutation matrix (empty with
    ``pivot=False``), ``L`` unit lower (m x k), ``U`` upper (k x n), k = min(m, n).
    Singular matrices are factored without error. Differentiable (full-rank), to any order.

    >>> P, L, U = tl.linalg.lu(tl.tensor([[1.0, 2.0], [3.0, 4.0]]))
    >>> U
    tensor([[3.0000, 4.0000],
            [0.0000, 0.6667]])
    """
    A = _matrix(A, "linalg.lu")
    LU, piv, _ = apply(LU_FACTOR, A, pivot=bool(pivot), check="")
    L, U = _unpack(LU)
    if pivot:
        P = _permutation(piv, A.shape[-2], A.dtype)
    else:
        from ..creation import zeros
        P = zeros((0,), dtype=A.dtype, device=A.device)
    return LUResult(P, L, U)


def lu_solve(LU, pivots, B, *, left: bool = True, adjoint: bool = False) -> Tensor:
    """``X`` with ``A X = B`` from ``A``'s factors ``(LU, pivots)`` of :func:`lu_factor`
    (``torch.linalg.lu_solve``): ``adjoint=True`` solves ``A^H X = B`` (``A^T`` for real
    ``A``), ``left=False``
    ``X A = B``; ``B`` is ``(..., n, k)`` (``(..., k, n)`` with ``left=False``), batch
    dimensions broadcast. Differentiable in ``LU`` and ``B``.

    >>> LU, piv = tl.linalg.lu_factor(tl.tensor([[2.0, 0.0], [0.0, 4.0]]))
    >>> tl.linalg.lu_solve(LU, piv, tl.tensor([[1.0], [1.0]]))
    tensor([[0.5000],
            [0.2500]])
    """
    LU = _matrix(LU, "linalg.lu_solve")
    B = to_tensor(B)
    n = LU.shape[-1]
    if LU.shape[-2] != n:
        raise ValueError(f"linalg.lu_solve: LU must be square (..., n, n), got shape "
                         f"{tuple(LU.shape)}")
    pivots = to_tensor(pivots)
    if pivots.dtype.kind not in "iu" or pivots.shape[-1:] != (n,):
        raise ValueError(f"linalg.lu_solve: pivots must be integers of shape (..., {n}), got "
                         f"{pivots.dtype} of shape {tuple(pivots.shape)}")
    if B.ndim < 2 or B.shape[-2 if left else -1] != n:
        want = f"(..., {n}, k)" if left else f"(..., k, {n})"
        raise ValueError(f"linalg.lu_solve: B of shape {tuple(B.shape)} must be {want} for "
                         f"LU of shape {tuple(LU.shape)} (left={left})")
    if B.dtype.kind == "c" and LU.dtype.kind != "c":    # a complex B promotes, never drops
        LU = LU.astype(np.result_type(LU.dtype, B.dtype))
    B = B.astype(LU.dtype)
    L, U = _unpack(LU)
    P = _permutation(pivots, n, LU.dtype)
    # A = P L U; each case applies the inverse factors in turn, the permutation as a product
    if left and not adjoint:            # X = U^-1 L^-1 P^T B
        return _tri(U, _tri(L, matmul(_mT(P), B), upper=False, unit=True), upper=True)
    if left:                            # A^H X = B: X = P L^-H U^-H B
        return matmul(P, _tri(_mH(L), _tri(_mH(U), B, upper=False), upper=True, unit=True))
    if not adjoint:                     # X A = B: X = B U^-1 L^-1 P^T
        X = _tri(L, _tri(U, B, upper=True, left=False), upper=False, left=False, unit=True)
        return matmul(X, _mT(P))
    # X A^H = B: X = B P L^-H U^-H
    return _tri(_mH(U), _tri(_mH(L), matmul(B, P), upper=True, left=False, unit=True),
                upper=False, left=False)


def solve_ex(A, B, *, left: bool = True, check_errors: bool = False) -> SolveExResult:
    """``(result, info)``: :func:`tl.linalg.solve`'s ``X`` computed through an LU
    factorisation that does not raise (``torch.linalg.solve_ex``); ``info`` (int32, per
    matrix) is non-zero where ``A`` is singular (the result holds inf / NaN there).
    ``check_errors=True`` raises instead.

    >>> X, info = tl.linalg.solve_ex(tl.tensor([[2.0, 0.0], [0.0, 4.0]]), tl.tensor([1.0, 1.0]))
    >>> X
    tensor([0.5000, 0.2500])
    """
    A = _matrix(A, "linalg.solve_ex")
    B = to_tensor(B)
    if B.dtype.kind == "c" and A.dtype.kind != "c":     # a complex B promotes, never drops
        A = A.astype(np.result_type(A.dtype, B.dtype))
    B = B.astype(A.dtype)
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"linalg.solve_ex: A must be square (..., n, n), got shape "
                         f"{tuple(A.shape)}")
    LU, piv, info = _lu_apply(A, True, "linalg.solve_ex" if check_errors else "")
    n = A.shape[-1]
    vec = _vector_rhs(tuple(A.shape), tuple(B.shape))
    if vec:
        if B.shape[-1] != n:
            raise ValueError(f"linalg.solve_ex: A {tuple(A.shape)} and B {tuple(B.shape)} do "
                             f"not align ({n} != {B.shape[-1]})")
        B = B.unsqueeze(-1) if left else B.unsqueeze(-2)
    X = lu_solve(LU, piv, B, left=left)
    return SolveExResult(X.squeeze(-1 if left else -2) if vec else X, info)


def inv_ex(A, *, check_errors: bool = False) -> InvExResult:
    """``(inverse, info)`` (``torch.linalg.inv_ex``): the inverse through an LU
    factorisation that does not raise; ``info`` (int32, per matrix) is non-zero where ``A``
    is singular (the inverse holds inf / NaN there). ``check_errors=True`` raises instead.

    >>> tl.linalg.inv_ex(tl.tensor([[2.0, 0.0], [0.0, 4.0]])).inverse
    tensor([[0.5000, 0.0000],
            [0.0000, 0.2500]])
    """
    from ..creation import eye
    A = _matrix(A, "linalg.inv_ex")
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"linalg.inv_ex: A must be square (..., n, n), got shape "
                         f"{tuple(A.shape)}")
    LU, piv, info = _lu_apply(A, True, "linalg.inv_ex" if check_errors else "")
    n = A.shape[-1]
    return InvExResult(lu_solve(LU, piv, eye(n, dtype=A.dtype, device=A.device)), info)


class LUUnpackResult(NamedTuple):
    """``(P, L, U)`` (``torch.return_types.lu_unpack``)."""
    P: Tensor
    L: Tensor
    U: Tensor


def lu_unpack(LU_data, LU_pivots, unpack_data: bool = True,
              unpack_pivots: bool = True) -> LUUnpackResult:
    """``(P, L, U)`` from the packed factors of :func:`lu_factor` (``torch.lu_unpack``):
    ``P`` the m x m permutation, ``L`` unit lower (m x k), ``U`` upper (k x n),
    k = min(m, n), so ``P @ L @ U`` is the factored matrix. ``unpack_data=False`` leaves
    ``L`` and ``U`` empty, ``unpack_pivots=False`` ``P``. Differentiable in ``LU_data``.

    >>> P, L, U = tl.lu_unpack(*tl.linalg.lu_factor(tl.tensor([[1.0, 2.0], [3.0, 4.0]])))
    """
    from ..creation import zeros
    LU = _matrix(LU_data, "lu_unpack")
    m, n = LU.shape[-2:]
    pivots = to_tensor(LU_pivots)
    if pivots.dtype.kind not in "iu" or tuple(pivots.shape) != tuple(LU.shape[:-2]) + (
            min(m, n),):
        raise ValueError(f"lu_unpack: LU_pivots must be integers of shape "
                         f"{tuple(LU.shape[:-2]) + (min(m, n),)} for LU_data of shape "
                         f"{tuple(LU.shape)}, got {pivots.dtype} of shape "
                         f"{tuple(pivots.shape)}")
    empty = zeros((0,), dtype=LU.dtype, device=LU.device)
    L, U = _unpack(LU) if unpack_data else (empty, empty)
    P = _permutation(pivots, m, LU.dtype) if unpack_pivots else empty
    return LUUnpackResult(P, L, U)
