"""Matrix functions of square matrices (or stacks of them, ``(..., n, n)``): inv, solve, det,
slogdet, cholesky, eigh.

Forwards are LAPACK through ``xp.linalg`` (NumPy on the CPU, CuPy's cuSOLVER on a GPU).
Backward rules are written in tensorlib ops on the op's outputs, so gradients of gradients
work. ``cholesky`` and ``eigh`` read only the lower triangle (as NumPy and PyTorch do) and
return the gradient of a symmetric input: symmetrise what you feed them, ``(A + A.mT) / 2``,
for the gradient to match finite differences taken in every entry.
"""
from __future__ import annotations

import numpy as np

from .. import _dtypes
from ..amp.cast import autocast_call
from .._apply import apply
from .._tensor import Tensor
from ..autograd.mode import no_grad, state
from ..errors import DTypeError, InputError, ShapeError
from . import elementwise as E
from ._util import broadcast_shapes, numel, to_float, to_tensor, unbroadcast
from .linalg import _mT
from .nn_util import io_cost
from .registry import OpDef, register


# the functions here that take complex (Hermitian for cholesky/eigh) matrices
_COMPLEX_OK = frozenset({"inv", "solve", "det", "slogdet", "cholesky", "eigh", "eigvalsh"})


def _mH(x: Tensor) -> Tensor:
    """The conjugate transpose (the transpose of a real matrix)."""
    if x.dtype.kind == "c":
        from .complex import conj
        return conj(_mT(x))
    return _mT(x)


def _square(op: str, spec) -> tuple:
    shape, dt = tuple(spec[0]), np.dtype(spec[1])
    if len(shape) < 2 or (None not in shape[-2:] and shape[-1] != shape[-2]):
        raise ShapeError(f"{op}: expected a square matrix or a stack of them (..., n, n), got "
                         f"shape {shape}")
    if dt.kind not in "fc" or dt.itemsize < 4 or (dt.kind == "c" and op not in _COMPLEX_OK):
        kinds = "float32 or float64 (or complex64 or complex128)" if op in _COMPLEX_OK \
            else "float32 or float64"
        raise DTypeError(f"{op}: needs {kinds} matrices, got {dt}")
    return shape, dt


def _cubic(ins, outs, **attrs):   # flops of an O(n^3) factorisation per matrix
    shape = ins[0][0]
    n = shape[-1] or 1
    return numel(shape[:-2]) * n ** 3


class LinAlgError(RuntimeError, ValueError):
    """A matrix a linear-algebra op cannot handle (singular, not positive definite), as
    ``torch.linalg.LinAlgError``: a RuntimeError as PyTorch's (``except RuntimeError:`` in
    an add-jitter-and-retry loop around ``cholesky`` catches it), and a ValueError as
    NumPy's."""


def with_torch_error(call, error):
    """``call()``; when its kernel refuses a matrix (LinAlgError), the error ``error()``
    makes instead: PyTorch's message for that matrix, recomputed only on this path (None:
    nothing found wrong, the kernel's own error stands)."""
    try:
        return call()
    except LinAlgError:
        err = error()
        if err is None:
            raise
    raise err


def _lapack(op: str, fn, *arrays):
    """``fn(*arrays)``, with NumPy's LAPACK failures (a singular or indefinite matrix) as a
    LinAlgError naming the op. (CuPy does not check: its results hold NaN or inf instead.)"""
    try:
        return fn(*arrays)
    except np.linalg.LinAlgError as e:
        msg = str(e)
        if msg[1:2].islower():      # "Singular matrix" -> "singular matrix", but keep "SVD"
            msg = msg[:1].lower() + msg[1:]
        raise LinAlgError(f"{op}: {msg}") from None


def _prepare(a, op: str) -> Tensor:
    a = to_float(to_tensor(a))
    _square(op, (a.shape, a.dtype))
    return a


def _unused(g) -> bool:
    """Whether cotangent ``g`` of one output of a multi-output op is zero and stays zero (the
    placeholder the backward walk makes for an output the loss does not use, or a zero that
    is not differentiated further), so a rule may skip its term, which can hold ``inf * 0``
    (the eigenvector term at repeated eigenvalues). A zero that requires grad (as the
    double-vjp jvp feeds in) still carries derivatives; under graph capture only a value that
    does not depend on the graph's inputs may be read (it is then the same for every feed)."""
    if g is None:
        return True
    if g._rg:
        return False
    tracer = state.tracer
    if tracer is not None:
        from ..graph.tracer import is_dynamic
        v = tracer.lookup(g)
        if v is not None and is_dynamic(tracer, v):
            return False
    return not bool(g._data.any())


def _skipped_grads(node, g) -> tuple:
    """What a rule returns when its cotangent ``g`` is :func:`_unused`: None per input, but
    zeros where ``g`` is empty, so an empty output's inputs get a zero (often empty)
    gradient, as PyTorch's, rather than none."""
    if g is None or g._data.size:
        return (None,) * len(node.inputs)
    from ..creation import zeros_like
    return tuple(zeros_like(x) if x._rg else None for x in node.inputs)


# --- inverse ----------------------------------------------------------------------------------
def _inv_vjp(n, g):
    y = n.output(0)
    return (-(_mT(y) @ g @ _mT(y)),)


def _inv_fwd(xp, a):
    out = _lapack("inv", xp.linalg.inv, a)
    # LAPACK's inverse keeps finite rows beside a NaN; PyTorch's (and the maths) is all NaN
    bad = xp.isnan(a).any(axis=(-2, -1))
    if bad.any():
        out[bad] = xp.nan
    return out


INV = register(OpDef("inv", _inv_fwd, vjp=_inv_vjp,
                     saves=False, saves_output=True, infer=lambda a: _square("inv", a),
                     cost=io_cost(_cubic), complex="holomorphic"))


def inv(a) -> Tensor:
    """The inverse of a square matrix (or of each in a stack).

    >>> tl.linalg.inv(tl.tensor([[2.0, 0.0], [0.0, 4.0]]))
    tensor([[0.5000, 0.0000],
            [0.0000, 0.2500]])
    """
    if state.autocast is not None:
        return autocast_call(inv, "inv", a)
    return apply(INV, _prepare(a, "inv"))


# --- solve ------------------------------------------------------------------------------------
def _vector_rhs(sa: tuple, sb: tuple) -> bool:
    """``torch.linalg.solve``'s rule: B is one vector per matrix when it is 1-D, or when
    ``B.shape == A.shape[:-1]`` (a batch of vectors, ``(*, n)`` against ``(*, n, n)``); else
    it is ``(*, n, k)``. (NumPy 2 takes only a 1-D B as a vector, NumPy 1 any B with one
    dimension fewer than A.) A dimension unknown at capture matches any size."""
    if len(sb) == 1:
        return True
    return len(sb) == len(sa) - 1 and all(x is None or y is None or x == y
                                          for x, y in zip(sb, sa[:-1]))


def _solve_infer(a, b):
    sa, dt = _square("solve", a)
    sb = tuple(b[0])
    if np.dtype(b[1]) != dt:
        raise TypeError(f"solve: A and B must have one dtype, got {dt} and {np.dtype(b[1])}")
    n = sa[-1]
    if _vector_rhs(sa, sb):
        if None not in (n, sb[-1]) and sb[-1] != n:
            raise ValueError(f"solve: A {sa} and b {sb} do not align ({n} != {sb[-1]})")
        return broadcast_shapes("solve", sa[:-2], sb[:-1]) + (n,), dt
    if len(sb) < 2 or (None not in (n, sb[-2]) and sb[-2] != n):
        raise ValueError(f"solve: A {sa} and B {sb} do not align: B must be (..., {n}, k), "
                         f"({n},) or {sa[:-1]}")
    return broadcast_shapes("solve", sa[:-2], sb[:-2]) + sb[-2:], dt


def _solve_vjp(n, g):
    a, b = n.inputs
    x = n.output(0)
    # the arrays' shapes: plain sizes, so a captured None dim is not compared (and fixed)
    if _vector_rhs(a._data.shape, b._data.shape):   # vectors: solve with each as a column
        gb = apply(SOLVE, _mT(a), g.unsqueeze(-1)).squeeze(-1)
        ga = -(gb.unsqueeze(-1) * x.unsqueeze(-2)) if a._rg else None
    else:
        gb = apply(SOLVE, _mT(a), g)
        ga = -(gb @ _mT(x)) if a._rg else None
    return (None if ga is None else unbroadcast(ga, a.shape),
            unbroadcast(gb, b.shape) if b._rg else None)


def _solve_fwd(xp, a, b):
    # a vector right-hand side becomes one column, and batch dimensions are broadcast here,
    # so that NumPy 1 and 2 and CuPy (which disagree on what a (..., n) B means) all agree
    vec = _vector_rhs(a.shape, b.shape)
    if vec:
        b = b[..., None]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    x = _lapack("solve", xp.linalg.solve, xp.broadcast_to(a, batch + a.shape[-2:]),
                xp.broadcast_to(b, batch + b.shape[-2:]))
    return x[..., 0] if vec else x


SOLVE = register(OpDef("solve", _solve_fwd, vjp=_solve_vjp,
                       saves=True, saves_output=True, infer=_solve_infer, cost=io_cost(_cubic),
                       complex="holomorphic"))


def solve(a, b, *, left: bool = True) -> Tensor:
    """``X`` with ``A @ X = B`` for square ``A`` (``(..., n, n)``), as ``torch.linalg.solve``:
    ``B`` is one vector per matrix when it is ``(n,)`` or has A's shape less the last
    dimension (``(..., n)``), and ``(..., n, k)`` otherwise; batch dimensions broadcast.
    ``left=False`` solves ``X @ A = B`` (``B`` of shape ``(..., k, n)``).

    >>> tl.linalg.solve(tl.tensor([[2.0, 0.0], [0.0, 4.0]]), tl.tensor([1.0, 1.0]))
    tensor([0.5000, 0.2500])
    """
    if not left:        # X A = B  <=>  A^T X^T = B^T
        b = to_tensor(b)
        if b.ndim < 2:
            raise ValueError(f"solve: left=False needs B with at least 2 dims (..., k, n), "
                             f"got shape {tuple(b.shape)}")
        return _mT(solve(_mT(to_tensor(a)), _mT(b)))
    if state.autocast is not None:
        return autocast_call(solve, "solve", a, b)
    a, b = _prepare(a, "solve"), to_tensor(b)
    if b.dtype.kind == "c" and a.dtype.kind != "c":     # a complex B: the imaginary part
        a = a.astype(_dtypes.complex_of(a.dtype))      # must not be cast away
    return apply(SOLVE, a, b.astype(a.dtype))


# --- determinants -----------------------------------------------------------------------------
def _batch_of(op: str):
    def infer(a):
        shape, dt = _square(op, a)
        return shape[:-2], dt
    return infer


def _det_vjp(n, g):
    a = n.inputs[0]
    d = n.output(0)
    # d det(A) = tr(adj(A) dA): the gradient is the cofactor matrix adj(A)^T, which is
    # det(A) A^-T where A is invertible (the fast path) and from an SVD where det(A) is 0
    # (LAPACK met an exact zero pivot, or the product underflowed); eagerly only, as under
    # capture the branch cannot depend on values
    if state.tracer is not None or bool(d._data.all()):
        return ((g * d).unsqueeze(-1).unsqueeze(-1) * _mT(inv(a)),)
    return (g.unsqueeze(-1).unsqueeze(-1) * _cofactor(a),)


def _cofactor(a: Tensor) -> Tensor:
    """``adj(A)^T`` of any square A, singular or not: with ``A = U diag(S) Vh`` it is
    ``det(U) det(Vh) U diag(prod_{j != i} S_j) Vh``; the products leave out one factor
    instead of dividing by it, so zero singular values are fine."""
    from .decompositions import svd
    from .reduction import prod
    u, s, vh = svd(a, full_matrices=False)
    with no_grad():       # +-1, constant where the SVD is differentiable
        sign = apply(DET, u.detach()) * apply(DET, vh.detach())
    others = E.where(_eye_like(s).astype(bool), 1.0, s.unsqueeze(-2))
    if a.dtype.kind == "c":     # (U^-1)^T = conj(U) for a unitary U
        from .complex import conj
        u, vh = conj(u), conj(vh)
    return (u * (sign.unsqueeze(-1) * prod(others, axis=-1)).unsqueeze(-2)) @ vh


DET = register(OpDef("det", lambda xp, a: xp.linalg.det(a), vjp=_det_vjp, saves=True,
                     saves_output=True, infer=_batch_of("det"), cost=io_cost(_cubic),
                     complex="holomorphic"))


def det(a) -> Tensor:
    """The determinant of a square matrix (or of each in a stack); differentiable everywhere,
    singular matrices included (the gradient is the cofactor matrix)."""
    return apply(DET, _prepare(a, "det"))


def _slogdet_fwd(xp, a):
    sign, logabs = xp.linalg.slogdet(a)    # NumPy gives scalars for one matrix
    return xp.asarray(sign, dtype=a.dtype), xp.asarray(logabs, dtype=a.real.dtype)


def _slogdet_infer(a):
    shape, dt = _batch_of("slogdet")(a)
    return (shape, dt), (shape, _dtypes.real_of(dt))


def _inv_adjoint(a: Tensor, sign: Tensor) -> Tensor:
    """``A^-H``. Where a matrix is singular (sign 0) not an error but PyTorch's inf / NaN:
    LAPACK ``getrf`` and ``getrs``, the routines of its ``slogdet_backward``, so the same
    pattern of inf and NaN; that value is a constant (a gradient that is already
    inf or NaN has no derivative). Eagerly only: under capture the branch cannot depend on
    values, so ``inv`` there."""
    if state.tracer is not None or bool(sign._data.all()):
        return _mH(inv(a))
    from . import _scipy
    from .linalg_lu import LU_FACTOR, lu_solve
    lapack = _scipy.lapack()
    if lapack is None:      # (the NumPy forms: values as LAPACK's, up to rounding)
        from ..creation import eye
        LU, piv, _ = apply(LU_FACTOR, a, pivot=True, check="")
        with np.errstate(divide="ignore", invalid="ignore"):
            return lu_solve(LU, piv, eye(a.shape[-1], dtype=a.dtype, device=a.device),
                            adjoint=True)
    arr = a._data.get() if hasattr(a._data, "get") else a._data
    c = {"f": "s", "d": "d", "F": "c", "D": "z"}[arr.dtype.char]
    getrf, getrs = getattr(lapack, c + "getrf"), getattr(lapack, c + "getrs")
    n = arr.shape[-1]
    flat = arr.reshape((-1, n, n))
    out = np.empty_like(flat)
    eye_n = np.eye(n, dtype=arr.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(flat.shape[0]):
            # A^-H = conj((A^T)^-1), from A^T's factors: the order of PyTorch's operations
            # (LAPACK reads its row-major A as A^T), so the same inf / NaN pattern
            lu, piv, _ = getrf(flat[i].T)
            out[i] = getrs(lu, piv, eye_n)[0]
    if c in "cz":
        out = np.conj(out)
    from ..creation import as_tensor
    return as_tensor(out.reshape(arr.shape)).to(a.device)


def _slogdet_vjp(n, gsign, glog):
    a = n.inputs[0]
    sign = n.output(0)
    if a.dtype.kind != "c":
        return (glog.unsqueeze(-1).unsqueeze(-1) * _inv_adjoint(a, sign),)
    # log det = log|det| + i angle is holomorphic, d(log det) = tr(A^-1 dA); the sign
    # exp(i angle) gives angle the cotangent Im(conj(sign) gsign), so the cotangent of
    # log det is glog + i that, and A's is it times A^-H (PyTorch's slogdet_backward)
    from .complex import conj, imag
    gphi = (0.0 if glog is None else glog) + (
        0.0 if gsign is None else imag(conj(sign) * gsign) * 1j)
    return (gphi.unsqueeze(-1).unsqueeze(-1) * _inv_adjoint(a, sign),)


SLOGDET = register(OpDef("slogdet", _slogdet_fwd, vjp=_slogdet_vjp, saves=True,
                         saves_output=(0,), infer=_slogdet_infer, cost=io_cost(_cubic),
                         complex="rule"))


def slogdet(a) -> tuple[Tensor, Tensor]:
    """``(sign, log|det|)`` of a square matrix (or of each in a stack), without the overflow
    of ``det``; differentiable in ``log|det|`` (and, for complex input, in the sign's
    phase). At a singular matrix (sign 0, log|det| -inf) the gradient holds inf / NaN, as
    PyTorch's, rather than raising."""
    return apply(SLOGDET, _prepare(a, "slogdet"))


# --- symmetric factorisations -----------------------------------------------------------------
def _sym(x: Tensor) -> Tensor:
    return (x + _mT(x)) * 0.5


def _cholesky_vjp(n, g):
    from .linalg_lu import TRSOLVE    # that module imports this one
    low = n.output(0)
    # Murray (2016): with P = Phi(L^T G) (lower triangle, halved diagonal), the gradient of
    # the symmetric input is sym(L^-T P L^-1), by two triangular solves (trsm), not LU.
    # Their gradients reach only L's lower triangle, which is all this rule reads of a
    # cotangent of L (tril(L^T triu(G, 1)) = 0), so grad of grad is unchanged
    if low.dtype.kind == "c":
        if n.attrs.get("upper", False):     # U = L^H: PyTorch's rule on L and gL = gU^H
            return (_cholesky_vjp_complex(_mH(low), _mH(g), TRSOLVE),)
        return (_cholesky_vjp_complex(low, g, TRSOLVE),)
    p = (_mT(low) @ g).tril()
    p = p - 0.5 * (p * _eye_like(p))
    lt = _mT(low)
    z = apply(TRSOLVE, lt, p, upper=True, unit=False)                  # L^-T P
    s = _mT(apply(TRSOLVE, lt, _mT(z), upper=True, unit=False))        # (L^-T P) L^-1
    return (_sym(s),)


def _cholesky_vjp_complex(low: Tensor, g: Tensor, trsolve) -> Tensor:
    """PyTorch's complex rule: ``L^-H X L^-1`` with ``P = tril(L^H G)`` and
    ``X = (P + tril(P, -1)^H) / 2`` (its diagonal keeps P's imaginary part, as PyTorch's)."""
    p = (_mH(low) @ g).tril()
    x = 0.5 * (p + _mH(p.tril(-1)))
    lh = _mH(low)
    z = apply(trsolve, lh, x, upper=True, unit=False)                  # L^-H X
    return _mH(apply(trsolve, lh, _mH(z), upper=True, unit=False))     # (L^-H X) L^-1


def _eye_like(x: Tensor) -> Tensor:
    from ..creation import eye
    return eye(x.shape[-1], dtype=x.dtype, device=x.device)


def _nan_pivot(xp, L):
    """The 1-based order of each matrix's first NaN pivot (0 where none): LAPACK's potrf
    stops there, but NumPy's batched cholesky passes NaN through as a success."""
    bad = xp.isnan(xp.diagonal(L, 0, -2, -1))
    if L.shape[-1] == 0:
        return xp.zeros(L.shape[:-2], np.int32)
    return xp.where(bad.any(axis=-1), xp.argmax(bad, axis=-1) + 1, 0).astype(np.int32)


def _cholesky_fwd(xp, a, upper=False):
    if upper:       # (complex input only) U = L^H, L from A's upper triangle as A^H's lower
        return _cholesky_fwd(xp, xp.conj(xp.swapaxes(a, -1, -2))).swapaxes(-1, -2).conj()
    L = _lapack("cholesky", xp.linalg.cholesky, a)
    if xp is np:    # (CuPy never raises: its failed factors hold NaN, as documented)
        info = _nan_pivot(xp, L)
        if info.any():
            flat = info.reshape(-1)
            b = int(np.flatnonzero(flat)[0])
            where = f" (batch element {b})" if info.ndim else ""
            raise LinAlgError(f"cholesky: the input is not positive-definite (the leading "
                              f"minor of order {int(flat[b])} is not: it holds NaN){where}")
    return L


CHOLESKY = register(OpDef("cholesky", _cholesky_fwd, vjp=_cholesky_vjp, saves=False,
                          saves_output=True,
                          infer=lambda a, upper=False: _square("cholesky", a),
                          cost=io_cost(_cubic), complex="rule"))


def cholesky(a, *, upper: bool = False) -> Tensor:
    """The lower-triangular ``L`` with ``A = L @ L.mT`` of a symmetric positive-definite
    matrix (only its lower triangle is read); ``upper=True`` gives the upper ``U`` with
    ``A = U.mT @ U``, reading only the upper triangle, as PyTorch's (LAPACK's ``uplo``). A
    matrix that is not positive definite raises :class:`LinAlgError`."""
    if state.autocast is not None:
        return autocast_call(cholesky, "cholesky", a, upper=upper)
    x = _prepare(a, "cholesky")
    if upper and x.dtype.kind == "c":     # (its gradient is PyTorch's, not that of A.mH's)
        return apply(CHOLESKY, x, upper=True)
    if upper:       # A's upper triangle is A.mT's lower one
        return _mT(apply(CHOLESKY, _mT(x)))
    return apply(CHOLESKY, x)


def _eigh_infer(a):
    shape, dt = _square("eigh", a)
    return (shape[:-1], _dtypes.real_of(dt)), (shape, dt)


def _check_phase_invariant(im_a: Tensor, im_b, op: str, what: str) -> None:
    """PyTorch's check that a loss does not depend on the phases of complex singular or
    eigen vectors (each is defined up to ``e^{i phi}``): ``im_a`` must be close to
    ``-im_b`` (or to 0 with ``im_b`` None), with its lax tolerances (1e-2, 1e-2). Eagerly
    only: a captured graph cannot read values."""
    if state.tracer is not None:
        return
    a = im_a._data
    a = a.get() if hasattr(a, "get") else np.asarray(a)
    b = np.zeros_like(a) if im_b is None else (
        im_b._data.get() if hasattr(im_b._data, "get") else np.asarray(im_b._data))
    if not np.allclose(a, -b, rtol=1e-2, atol=1e-2):
        raise RuntimeError(
            f"{op}: the {what} of a complex decomposition are each defined only up to a "
            f"phase e^(i phi), and the loss depends on those phases, so its gradient is "
            f"ill-defined (PyTorch raises too). Make the loss phase-invariant: use, e.g., "
            f"abs() of the vectors, products such as V @ V.mH, or fix each vector's phase "
            f"(divide it by the phase of one of its entries) before using it")


def _eigh_vjp(n, gw, gv):
    w, v = n.output(0), n.output(1)
    # V (diag(gw) + F * (V^T gV)) V^T, F_ij = 1 / (w_j - w_i) off the diagonal. Eigenvalues
    # alone (gV unused) skip the F term, so repeated eigenvalues give V diag(gw) V^T; through
    # the eigenvectors a tie gives inf or NaN, as PyTorch: that gradient is not defined there
    eye = _eye_like(v)
    inner = gw.unsqueeze(-1) * eye
    if v.dtype.kind == "c":
        # Hermitian: V (diag(gw) + F * skew(V^H gV)) V^H, skew(K) = (K - K^H) / 2, which is
        # Hermitian already (PyTorch's linalg_eig_backward); F is real (w is)
        if not _unused(gv):
            k = _mH(v) @ gv
            from .complex import imag
            _check_phase_invariant(imag(k.diagonal(0, -2, -1)), None, "eigh",
                                   "eigenvectors")
            er = _eye_like(w.unsqueeze(-2) * w.unsqueeze(-1))     # real, as w
            f = (1.0 - er) / (w.unsqueeze(-2) - w.unsqueeze(-1) + er)
            inner = inner + f * (0.5 * (k - _mH(k)))
        return (v @ inner @ _mH(v),)
    if not _unused(gv):
        diff = w.unsqueeze(-2) - w.unsqueeze(-1)
        inner = inner + (1.0 - eye) / (diff + eye) * (_mT(v) @ gv)
    return (_sym(v @ inner @ _mT(v)),)


EIGH = register(OpDef("eigh", lambda xp, a, UPLO="L": tuple(_lapack("eigh", xp.linalg.eigh, a,
                                                                    UPLO)),
                      vjp=_eigh_vjp, complex="rule",
                      saves=False, saves_output=True, infer=_eigh_infer, cost=io_cost(_cubic)))


def values_only(a: Tensor) -> bool:
    """Whether a decomposition of ``a`` may skip its vectors: nothing can ask for a gradient
    through it (no grad needed, no capture building a gradient graph, no forward-mode level
    deriving a tangent from the vjp rule)."""
    return (not (a._rg and state.grad_enabled) and state.tracer is None
            and getattr(state, "fwd_ad", None) is None)


def _eigvalsh_vjp(n, g):
    # as svdvals': the vectors come from a full eigh where a gradient is asked for after all
    w, v = apply(EIGH, n.inputs[0], UPLO=n.attrs.get("UPLO", "L"))
    if v.dtype.kind == "c":
        return ((v * g.unsqueeze(-2)) @ _mH(v),)
    return (_sym((v * g.unsqueeze(-2)) @ _mT(v)),)


EIGVALSH = register(OpDef("eigvalsh", lambda xp, a, UPLO="L": _lapack("eigvalsh",
                                                                     xp.linalg.eigvalsh, a,
                                                                     UPLO),
                          vjp=_eigvalsh_vjp, saves=True, complex="rule",
                          infer=lambda a, UPLO="L": _eigh_infer(a)[0], cost=io_cost(_cubic)))


def eigvalsh(a, UPLO: str = "L") -> Tensor:
    """The eigenvalues (ascending) of a symmetric matrix, reading its lower triangle
    (``UPLO="U"``: the upper one), as ``torch.linalg.eigvalsh``. Where no gradient can be
    asked for, LAPACK skips the eigenvectors (about 5x faster); the gradient
    ``V diag(g) V^T`` is defined for repeated eigenvalues too.

    >>> tl.linalg.eigvalsh(tl.tensor([[2.0, 1.0], [1.0, 2.0]]))
    tensor([1., 3.])
    """
    if UPLO not in ("L", "U"):
        raise InputError(f"eigvalsh: UPLO must be 'L' or 'U', got {UPLO!r}")
    if state.autocast is not None:
        return autocast_call(eigvalsh, "eigvalsh", a, UPLO)
    x = _prepare(a, "eigvalsh")
    if not values_only(x):
        return eigh(x, UPLO)[0]
    if UPLO == "U":
        return apply(EIGVALSH, x, UPLO="U")
    return apply(EIGVALSH, x)


def eigh(a, UPLO: str = "L") -> tuple[Tensor, Tensor]:
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix, reading its
    lower triangle (``UPLO="U"``: the upper one). The gradient of the eigenvalues alone is
    defined for repeated eigenvalues too; through the eigenvectors it assumes distinct
    eigenvalues (as PyTorch's) and a loss that does not depend on each eigenvector's
    sign.

    >>> w, v = tl.linalg.eigh(tl.tensor([[2.0, 1.0], [1.0, 2.0]]))
    >>> w
    tensor([1., 3.])
    """
    if UPLO not in ("L", "U"):
        raise InputError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    if state.autocast is not None:
        return autocast_call(eigh, "eigh", a, UPLO)
    if UPLO == "U":
        return apply(EIGH, _prepare(a, "eigh"), UPLO="U")
    return apply(EIGH, _prepare(a, "eigh"))

