"""The LDL^T factorisation of symmetric (possibly indefinite) matrices and its solver
(``torch.linalg.ldl_factor``, ``ldl_factor_ex``, ``ldl_solve``), real and complex dtypes.

LAPACK's Bunch-Kaufman ``sytrf`` / ``sytrs`` (complex ``hermitian=True``: ``hetrf`` /
``hetrs``, ``A = L D L^H``) through SciPy, one matrix at a time, in
LAPACK's packed format (as PyTorch's, which calls the same routines): ``LD`` holds the
unit-lower ``L`` below the diagonal and the block-diagonal ``D`` (1x1 and 2x2 blocks) on
and next to it; ``pivots`` (int32, 1-based) are negative for a 2x2 block. On a GPU the
arrays go to the host and back (CuPy has no ``sytrf``). Not differentiable, as PyTorch's
``ldl_factor``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from . import _scipy
from ._util import broadcast_shapes, numel, to_float, to_tensor
from .linalg_lu import _count, _float_spec
from .matrix import LinAlgError
from .nn_util import io_cost
from .registry import OpDef, register


class LDLFactorResult(NamedTuple):
    """``(LD, pivots)`` (``torch.return_types.linalg_ldl_factor``)."""
    LD: Tensor
    pivots: Tensor


class LDLFactorExResult(NamedTuple):
    """``(LD, pivots, info)`` (``torch.return_types.linalg_ldl_factor_ex``)."""
    LD: Tensor
    pivots: Tensor
    info: Tensor


def _lapack(name: str, dtype, hermitian: bool = False):
    lapack = _scipy.require(f"ldl_{'solve' if name == 'sytrs' else 'factor'}")
    dtype = np.dtype(dtype)
    if hermitian and dtype.kind == "c":      # (for real matrices the two are one)
        name = name.replace("sy", "he")
    return getattr(lapack, {"f": "s", "d": "d", "F": "c", "D": "z"}[dtype.char] + name)


def _ldl_factor_cpu(a, *, check="", hermitian=False):
    n = a.shape[-1]
    batch = a.shape[:-2]
    flat = a.reshape((_count(batch), n, n))
    ld = np.zeros_like(flat)
    piv = np.zeros((flat.shape[0], n), np.int32)
    info = np.zeros((flat.shape[0],), np.int32)
    if n:
        sytrf = _lapack("sytrf", a.dtype, hermitian)
        # one workspace query for the batch, and whole-batch tril / clip after the loop: for
        # small matrices the per-call Python overhead, not LAPACK, is the cost
        lwork = max(int(_lapack("sytrf_lwork", a.dtype, hermitian)(n, lower=1)[0].real), n)
        for b in range(flat.shape[0]):
            ld[b], piv[b], info[b] = sytrf(flat[b], lower=1, lwork=lwork)
        ld = np.tril(ld)
        np.maximum(info, 0, out=info)
    info = info.reshape(batch)
    if check:
        bad = np.flatnonzero(info.reshape(-1) > 0)
        if bad.size:
            i = int(info.reshape(-1)[bad[0]])
            where = f" (batch element {int(bad[0])})" if batch else ""
            raise LinAlgError(f"ldl_factor: D[{i},{i}] is exactly zero{where} in {check}: "
                              "the matrix is singular (ldl_factor_ex reports it in info "
                              "instead)")
    return ld.reshape(a.shape), piv.reshape(batch + (n,)), info


def _ldl_factor_infer(a, *, check="", hermitian=False):
    shape, dt = _float_spec("ldl_factor", a, square=True)
    i32 = np.dtype(np.int32)
    return (shape, dt), (shape[:-1], i32), (shape[:-2], i32)


def _ldl_flops(ins, outs, **attrs):
    shape = ins[0][0]
    return numel(shape[:-2]) * (shape[-1] or 1) ** 3 // 3


def _ldl_solve_flops(ins, outs, **attrs):
    return 2 * numel(outs[0][0]) * (ins[0][0][-1] or 1)


def _on_host(cpu_kernel):
    """A generic ``fwd(xp, ...)`` that runs ``cpu_kernel`` on host copies of the arrays and
    returns arrays of ``xp`` (for backends without the LAPACK routine)."""
    def fwd(xp, *arrays, **attrs):
        if xp is np:
            return cpu_kernel(*arrays, **attrs)
        out = cpu_kernel(*[a.get() for a in arrays], **attrs)
        return tuple(xp.asarray(o) for o in out) if isinstance(out, tuple) else xp.asarray(out)
    return fwd


LDL_FACTOR = register(OpDef("ldl_factor", _on_host(_ldl_factor_cpu),
                            kernels={"cpu": _ldl_factor_cpu}, saves=False, complex="forward",
                            infer=_ldl_factor_infer, cost=io_cost(_ldl_flops)))


def _ldl_solve_cpu(ld, piv, b, *, hermitian=False):
    batch = np.broadcast_shapes(ld.shape[:-2], piv.shape[:-1], b.shape[:-2])
    n, k = ld.shape[-1], b.shape[-1]
    if b.shape[-2] != n:     # (the infer rule words the error)
        raise ValueError(f"ldl_solve: B of shape {b.shape} must be (..., {n}, k)")
    ld = np.broadcast_to(ld, batch + (n, n)).reshape((_count(batch), n, n))
    piv = np.broadcast_to(piv, batch + (n,)).reshape((_count(batch), n))
    b = np.broadcast_to(b, batch + (n, k)).reshape((_count(batch), n, k))
    out = np.empty(b.shape, ld.dtype)
    if n and k:
        sytrs = _lapack("sytrs", ld.dtype, hermitian)
        for i in range(b.shape[0]):
            out[i] = sytrs(ld[i], piv[i], b[i], lower=1)[0]
    else:
        out[...] = 0
    return out.reshape(batch + (n, k))


def _ldl_solve_infer(ld, piv, b, *, hermitian=False):
    sl, dt = _float_spec("ldl_solve", ld, square=True)
    sp, sb = tuple(piv[0]), tuple(b[0])
    if np.dtype(piv[1]).kind not in "iu" or sp[-1:] != sl[-1:]:
        raise ValueError(f"ldl_solve: pivots must be integers of shape (..., {sl[-1]}), got "
                         f"{np.dtype(piv[1])} of shape {sp}")
    if len(sb) < 2 or sb[-2] != sl[-1] or np.dtype(b[1]) != dt:
        raise ValueError(f"ldl_solve: B must be (..., {sl[-1]}, k) of LD's dtype {dt}, got "
                         f"{np.dtype(b[1])} of shape {sb}")
    batch = broadcast_shapes("ldl_solve", sl[:-2], sp[:-1], sb[:-2])
    return batch + sb[-2:], dt


LDL_SOLVE = register(OpDef("ldl_solve", _on_host(_ldl_solve_cpu),
                           kernels={"cpu": _ldl_solve_cpu}, saves=False, complex="forward",
                           infer=_ldl_solve_infer, cost=io_cost(_ldl_solve_flops)))


def _check_hermitian(hermitian, op: str) -> None:
    if not isinstance(hermitian, bool):
        raise TypeError(f"{op}: hermitian must be a bool, got {hermitian!r}")


def _herm_attr(hermitian: bool, x: Tensor) -> dict:
    """The op attribute, only where it changes the routine (complex), so real calls keep
    their attributes (and captured graphs) as before."""
    return {"hermitian": True} if hermitian and x.dtype.kind == "c" else {}


def ldl_factor_ex(A, *, hermitian: bool = False,
                  check_errors: bool = False) -> LDLFactorExResult:
    """``(LD, pivots, info)``: the LDL^T factorisation of the symmetric ``A`` (its lower
    triangle is read), as ``torch.linalg.ldl_factor_ex``; ``info`` (int32, per matrix) is
    ``i`` when ``D[i-1, i-1]`` is exactly zero. Complex ``A``: ``hermitian=False`` (the
    default) factors a complex symmetric ``A = L D L^T`` (``sytrf``), ``hermitian=True`` a
    Hermitian ``A = L D L^H`` (``hetrf``; D's diagonal real); for real matrices the two
    are one. Not differentiable.

    >>> LD, piv, info = tl.linalg.ldl_factor_ex(tl.tensor([[4.0, 2.0], [2.0, 3.0]]))
    >>> LD
    tensor([[4.0000, 0.0000],
            [0.5000, 2.0000]])
    """
    _check_hermitian(hermitian, "linalg.ldl_factor_ex")
    A = to_float(to_tensor(A))
    _float_spec("linalg.ldl_factor_ex", (A.shape, A.dtype), square=True)
    return LDLFactorExResult(*apply(LDL_FACTOR, A,
                                    check="linalg.ldl_factor_ex" if check_errors else "",
                                    **_herm_attr(hermitian, A)))


def ldl_factor(A, *, hermitian: bool = False) -> LDLFactorResult:
    """``(LD, pivots)`` of :func:`ldl_factor_ex` (``torch.linalg.ldl_factor``); a singular
    ``D`` raises :class:`LinAlgError`."""
    _check_hermitian(hermitian, "linalg.ldl_factor")
    A = to_float(to_tensor(A))
    _float_spec("linalg.ldl_factor", (A.shape, A.dtype), square=True)
    LD, piv, _ = apply(LDL_FACTOR, A, check="linalg.ldl_factor", **_herm_attr(hermitian, A))
    return LDLFactorResult(LD, piv)


def ldl_solve(LD, pivots, B, *, hermitian: bool = False) -> Tensor:
    """``X`` with ``A X = B`` from ``A``'s :func:`ldl_factor` (``torch.linalg.ldl_solve``):
    ``B`` is ``(..., n, k)``, batch dimensions broadcast; ``hermitian`` must be the one
    the factors were made with (complex: ``hetrs`` or ``sytrs``). Not differentiable.

    >>> LD, piv = tl.linalg.ldl_factor(tl.tensor([[4.0, 2.0], [2.0, 3.0]]))
    >>> tl.linalg.ldl_solve(LD, piv, tl.tensor([[6.0], [5.0]]))
    tensor([[1.],
            [1.]])
    """
    _check_hermitian(hermitian, "linalg.ldl_solve")
    LD = to_float(to_tensor(LD))
    B = to_tensor(B)
    _float_spec("linalg.ldl_solve", (LD.shape, LD.dtype), square=True)
    n = LD.shape[-1]
    # B's row dimension is n, never broadcast (as lu_solve / solve and PyTorch's)
    if B.ndim < 2 or B.shape[-2] != n:
        raise ValueError(f"linalg.ldl_solve: B of shape {tuple(B.shape)} must be (..., {n}, k) "
                         f"for LD of shape {tuple(LD.shape)}; a single right-hand side b "
                         f"is b.unsqueeze(-1)")
    if B.dtype.kind == "c" and LD.dtype.kind != "c":
        raise TypeError(f"linalg.ldl_solve: B is complex ({B.dtype}) but LD is real "
                        f"({LD.dtype}); factor a complex A, or solve the real and imaginary "
                        f"parts of B separately")
    return apply(LDL_SOLVE, LD, to_tensor(pivots), B.astype(LD.dtype),
                 **_herm_attr(hermitian, LD))
