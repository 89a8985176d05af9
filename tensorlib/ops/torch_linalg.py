"""PyTorch's matrix functions at ``torch.*`` that tensorlib lacked, as composites of registry
ops (differentiable, grad of grad too): ``matrix_exp``, ``vdot``, ``addbmm``,
``chain_matmul``, integration (``trapezoid``, ``trapz``, ``cumulative_trapezoid``),
statistics (``corrcoef``, ``pdist``), Cholesky helpers (``cholesky_inverse``,
``cholesky_solve``), ``triangular_solve`` and PyTorch's older spellings of
``tl.linalg`` (``torch.svd`` returning V, ``torch.qr(some=)``, ``torch.cholesky(upper=)``,
``frobenius_norm``, ``nuclear_norm``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._tensor import Tensor
from ..autograd.function import Function
from . import elementwise as E
from ._util import norm_axis, promote_types, to_float, to_tensor, unbroadcast
from .linalg import matmul
from .linalg_lu import lu_factor_ex as _lu_factor_ex
from .linalg_lu import lu_solve as _linalg_lu_solve
from .linalg_lu import lu_unpack
from .linalg_more import geqrf, ormqr

__all__ = [
    "addbmm", "chain_matmul", "cholesky", "cholesky_inverse", "cholesky_solve", "corrcoef",
    "cumulative_trapezoid", "frobenius_norm", "geqrf", "gradient", "lu", "lu_solve",
    "lu_unpack", "matrix_exp", "nuclear_norm", "orgqr", "ormqr", "pdist", "qr", "svd",
    "trapezoid", "trapz", "triangular_solve", "vander", "vdot",
]


def _shape(t: Tensor) -> tuple:
    return tuple(t.shape)


def _square(op: str, x: Tensor) -> None:
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{op}: expects a square matrix or a stack of them (..., n, n), got "
                         f"shape {_shape(x)}")


def _eye_like(x: Tensor) -> Tensor:
    from ..creation import eye
    return eye(x.shape[-1], dtype=x.dtype, device=x.device)


_EXP_MAX_SQUARINGS = 48     # traced: 1-norms up to 2**47 (larger ones lose accuracy)


def matrix_exp(input) -> Tensor:
    """The matrix exponential ``sum_k A**k / k!`` of a square matrix or a stack
    (``torch.matrix_exp``): scaling and squaring with a degree-18 Taylor polynomial, each
    matrix scaled by a power of 2 to 1-norm <= 1/2 (where the truncation error is below
    float64's rounding) and squared back that many times.

    The number of squarings is chosen per matrix with tensor ops, so it also runs under
    ``tl.func.vmap`` and graph capture; there, the squarings are a fixed
    ``_EXP_MAX_SQUARINGS`` masked per matrix (a 1-norm above 2**47 is then not squared back
    fully), while eagerly the loop stops at the largest count the batch needs. A non-finite
    input gives NaN. float16/float32 input is computed in float64 on the CPU and rounded
    once. Differentiable to any order (through the products)."""
    from ..autograd.mode import state
    x = to_float(to_tensor(input))
    _square("matrix_exp", x)
    if x.numel() == 0:
        return x.clone()
    if x.dtype.itemsize < 8 and x.device.type != "cuda":
        # the squarings multiply float32's rounding error (2-6x PyTorch's at norms ~100);
        # float64 on the CPU costs little at the sizes matrix_exp meets
        return matrix_exp(x.astype(np.float64)).astype(x.dtype)
    # s = ceil(log2(|A|_1 / 0.5)), clamped to [0, max]: a data-dependent count kept as a tensor
    norm1 = E.abs(x.detach()).sum(axis=-2).amax(axis=-1)
    s = E.ceil(E.log2(E.maximum(norm1, 0.5) * 2.0)).clip(0.0, float(_EXP_MAX_SQUARINGS))
    s = E.where(E.isfinite(norm1), s, 0.0)      # NaN / inf propagate without squaring
    a = x * E.exp2(-s).unsqueeze(-1).unsqueeze(-1)
    eye = _eye_like(x)
    out = eye + a / 18.0
    for k in range(17, 0, -1):            # Horner: I + A/1 (I + A/2 (... (I + A/18)))
        out = eye + matmul(a, out) / float(k)
    traced = state.tracer is not None or x._device.type == "vmap"
    top = _EXP_MAX_SQUARINGS if traced else int(s.amax().item())
    uniform = not traced and (s.ndim == 0 or bool((s == float(top)).all().item()))
    sq = s.unsqueeze(-1).unsqueeze(-1)
    for k in range(top):
        prod = matmul(out, out)
        out = prod if uniform else E.where(sq > float(k), prod, out)
    return out


def vdot(input, other) -> Tensor:
    """``sum(conj(input) * other)`` of two 1-d tensors of one dtype (``torch.vdot``: the
    first argument is conjugated; on real tensors the same as ``dot``)."""
    from .linalg import dot
    a, b = to_tensor(input), to_tensor(other)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"vdot: expects 1-d tensors, got shapes {_shape(a)} and {_shape(b)}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"vdot: inconsistent sizes {a.shape[0]} and {b.shape[0]}")
    if a.dtype != b.dtype:
        raise TypeError(f"vdot: expects tensors of one dtype, got {a.dtype} and {b.dtype}")
    if a.dtype.kind == "c":
        from .complex import conj
        a = conj(a)
    return dot(a, b)


def addbmm(input, batch1, batch2, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """``beta * input + alpha * sum_b batch1[b] @ batch2[b]`` (``torch.addbmm``): batches
    (b, n, m) and (b, m, p); ``input`` broadcasts to (n, p)."""
    from .batched import _scaled_sum, bmm
    return _scaled_sum("addbmm", input, bmm(batch1, batch2).sum(axis=0), beta, alpha)


def chain_matmul(*matrices) -> Tensor:
    """The product of 2-d matrices, in order (``torch.chain_matmul``; PyTorch's newer name
    is ``torch.linalg.multi_dot``)."""
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    ms = [to_tensor(m) for m in matrices]
    if not ms:
        raise ValueError("chain_matmul: expects at least one matrix")
    for m in ms:
        if m.ndim != 2:
            raise ValueError(f"chain_matmul: expects 2-d matrices, got shape {_shape(m)}")
    out = ms[0]
    for m in ms[1:]:
        if out.shape[1] != m.shape[0]:
            raise ValueError(f"chain_matmul: shapes {_shape(out)} and {_shape(m)} cannot be "
                             "multiplied")
        out = matmul(out, m)
    return out if len(ms) > 1 else out.clone()


# --- integration ---------------------------------------------------------------------------
def _spacing(op: str, y: Tensor, x, dx, d: int):
    """The step between samples along ``d``: a number (``dx``) or a tensor of differences
    of ``x`` (1-d of the dim's length, or broadcasting with ``y``)."""
    if x is not None and dx is not None:
        raise TypeError(f"{op}: pass x or dx, not both")
    if x is None:
        return 1.0 if dx is None else float(dx)
    xs = to_tensor(x)
    n = y.shape[d]
    if xs.ndim == 1:
        if xs.shape[0] != n:
            raise ValueError(f"{op}: x of length {xs.shape[0]} must match y's dim {d} of size "
                             f"{n}")
        shape = [1] * y.ndim
        shape[d] = n
        xs = xs.reshape(tuple(shape))
        dd = d
    else:
        if xs.ndim != y.ndim:
            raise ValueError(f"{op}: x of shape {_shape(xs)} must be 1-d or have y's number "
                             f"of dims ({_shape(y)})")
        dd = d
    return xs.diff(dim=dd) if xs.shape[dd] > 1 else xs[(slice(None),) * dd + (slice(0, 0),)]


def trapezoid(y, x=None, *, dx: float | None = None, dim: int = -1) -> Tensor:
    """The integral of ``y`` along ``dim`` by the trapezoidal rule (``torch.trapezoid``):
    samples spaced ``dx`` apart (default 1), or at positions ``x``."""
    yt = to_tensor(y)
    d = norm_axis(dim, yt.ndim, "trapezoid")
    yt = to_float(yt)
    n = yt.shape[d]
    if n == 0:
        return yt.sum(axis=d)
    step = _spacing("trapezoid", yt, x, dx, d)
    lo = yt[(slice(None),) * d + (slice(0, n - 1),)]
    hi = yt[(slice(None),) * d + (slice(1, n),)]
    return ((lo + hi) * step).sum(axis=d) * 0.5


def trapz(y, x=None, *, dx: float | None = None, dim: int = -1) -> Tensor:
    """An alias of :func:`trapezoid` (``torch.trapz``)."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx: float | None = None, dim: int = -1) -> Tensor:
    """The running trapezoidal integral along ``dim``, one element shorter than ``y``
    (``torch.cumulative_trapezoid``)."""
    yt = to_float(to_tensor(y))
    d = norm_axis(dim, yt.ndim, "cumulative_trapezoid")
    n = yt.shape[d]
    step = _spacing("cumulative_trapezoid", yt, x, dx, d)
    lo = yt[(slice(None),) * d + (slice(0, max(n - 1, 0)),)]
    hi = yt[(slice(None),) * d + (slice(1, max(n, 1)),)]
    return ((lo + hi) * step * 0.5).cumsum(d)


# --- statistics ----------------------------------------------------------------------------
def corrcoef(input) -> Tensor:
    """Pearson correlation coefficients of the variables in the rows of ``input``
    (``torch.corrcoef``), clipped to [-1, 1] (complex: each part). One variable (1-d
    input, or one row) gives a 0-d tensor, as PyTorch's: 1, or NaN for a constant row."""
    from .torch_api import cov
    x = to_tensor(input)
    c = cov(x)
    if x.ndim == 2 and x.shape[0] == 1:     # PyTorch's covariance of one row is 0-d
        c = c.reshape(())
    if c.ndim == 0:
        return c / c
    if c.dtype.kind == "c":     # a real diagonal; each part clipped, as PyTorch's
        from .complex import complex as _complex, imag, real
        sd = E.sqrt(real(c.diagonal()))
        c = c / sd.reshape((-1, 1)) / sd.reshape((1, -1))
        return _complex(real(c).clip(-1.0, 1.0), imag(c).clip(-1.0, 1.0))
    sd = E.sqrt(c.diagonal())
    c = c / sd.reshape((-1, 1)) / sd.reshape((1, -1))
    return c.clip(-1.0, 1.0)


def pdist(input, p: float = 2.0) -> Tensor:
    """The ``p``-norm distances between each pair of rows of an (N, M) input, the upper
    triangle of ``cdist(input, input)`` row by row: N (N - 1) / 2 values (``torch.pdist``).

    p = 2 computes the triangle alone, in row blocks of matrix products (the expansion
    ``|a|^2 + |b|^2 - 2 a.b`` of the column-centred rows), and recomputes the pairs close
    for their norms from their differences, so coinciding rows are exactly 0 apart (gradient
    0), as PyTorch's differences give; p = 1 uses cdist's kernel. Gradients of any order.
    """
    from .pairwise import cdist, pdist_euclid
    from ..creation import tensor
    from .decompositions import vector_norm
    x = to_tensor(input)
    if x.ndim != 2:
        raise ValueError(f"pdist: only supports 2-d tensors, got shape {_shape(x)}")
    if x.dtype.kind != "f":
        raise TypeError(f"pdist: only supports floating-point dtypes, got {x.dtype}")
    if not p >= 0:
        raise ValueError(f"pdist: only supports non-negative p values, got {p}")
    if p == 2:
        return pdist_euclid(x)
    n = x.shape[0]
    i, j = np.triu_indices(n, 1)
    if p == 1:
        # the upper triangle of cdist's (N, N) matrix: N^2 distances from its kernel beat
        # N^2 / 2 gathered (M,) differences
        d = cdist(x, x, 1.0)
        return d.reshape(-1)[tensor((i * n + j).astype(np.int64), device=x.device)]
    diff = x[tensor(i.astype(np.int64), device=x.device)] - \
        x[tensor(j.astype(np.int64), device=x.device)]
    if np.isinf(p) and diff.shape[-1]:
        # PyTorch's pdist gives each coordinate tied for the largest |difference| the whole
        # gradient (sign(diff) where |diff| == d; vector_norm splits it among the ties):
        # d plus terms that are 0 in value, with that gradient
        from .elementwise import where
        from .elementwise import isfinite, logical_and
        a = diff.abs()
        d = a.detach().max(axis=-1, keepdims=True)
        # (an infinite distance keeps the zero term out: inf - inf would make it NaN)
        tie = logical_and(a.detach() == d, isfinite(d))
        return d.squeeze(-1) + where(tie, a - d, 0.0).sum(axis=-1)
    return vector_norm(diff, ord=float(p), dim=-1)


# --- Cholesky and triangular systems -------------------------------------------------------
def _lower(op: str, L: Tensor, upper: bool) -> Tensor:
    _square(op, L)
    return L.mH if upper else L


def cholesky(input, upper: bool = False) -> Tensor:
    """The Cholesky factor of a symmetric positive-definite matrix (``torch.cholesky``):
    lower ``L`` with ``A = L @ L.mT`` reading the lower triangle, or with ``upper=True`` the
    upper ``U`` with ``A = U.mT @ U`` reading the upper triangle."""
    from .linalg_more import cholesky_error
    from .matrix import cholesky as chol
    from .matrix import with_torch_error
    x = to_tensor(input)
    # PyTorch's message, naming the leading minor
    return with_torch_error(lambda: chol(x, upper=upper),
                            lambda: cholesky_error("cholesky", x, upper))


def cholesky_inverse(input, upper: bool = False) -> Tensor:
    """The inverse of ``A = L @ L.mH`` from its Cholesky factor ``L`` (``upper=True``: from
    ``U``, ``A = U.mH @ U``) (``torch.cholesky_inverse``; ``mH`` is ``mT`` for real ``L``)."""
    from .matrix import inv
    L = _lower("cholesky_inverse", to_float(to_tensor(input)), upper)
    return inv(matmul(L, L.mH))


def _solve_args(op: str, b, A) -> tuple[Tensor, Tensor]:
    """``b`` (..., n, k) and the square ``A`` (..., n, n) as floats of one dtype, checked."""
    bt, At = to_float(to_tensor(b)), to_float(to_tensor(A))
    _square(op, At)
    if bt.ndim < 2 or bt.shape[-2] != At.shape[-1]:
        raise ValueError(f"{op}: B of shape {_shape(bt)} must be (..., {At.shape[-1]}, k) for "
                         f"a matrix of shape {_shape(At)}")
    dt = promote_types(bt.dtype, At.dtype)
    return (bt if bt.dtype == dt else bt.astype(dt)), (At if At.dtype == dt else At.astype(dt))


def _trsolve(T: Tensor, b: Tensor, *, upper: bool, unit: bool = False) -> Tensor:
    """``T^-1 b`` reading one triangle of ``T`` (BLAS ``trsm`` on the CPU), batch dims
    broadcast."""
    from .._apply import apply
    from .linalg_lu import TRSOLVE
    return apply(TRSOLVE, T, b, upper=upper, unit=unit)


def _chol_solve(L: Tensor, b: Tensor) -> Tensor:
    """``(L L^H)^-1 b`` by two triangular solves, reading the lower triangle of ``L``."""
    return _trsolve(L.mH, _trsolve(L, b, upper=False), upper=True)


def cholesky_solve(input, input2, upper: bool = False) -> Tensor:
    """The solution ``X`` of ``A X = B`` for ``B = input`` (..., n, k) and ``A = L L^T``
    given by its lower Cholesky factor ``L = input2`` (``upper=True``: ``A = U^T U``), as
    ``torch.cholesky_solve``: two triangular solves, batch dims broadcast.

    Only the factor's triangle is read, as PyTorch's; its derivatives, of every order, are
    PyTorch's too: those of ``(L L^T)^-1 B`` in every entry of ``L``.

    >>> L = tl.tensor([[2.0, 0.0], [1.0, 1.0]])
    >>> tl.cholesky_solve(tl.tensor([[4.0], [3.0]]), L)          # (L L^T) X = B
    tensor([[0.5000],
            [1.0000]])
    """
    from ..autograd.mode import is_grad_enabled
    b, F = _solve_args("cholesky_solve", input, input2)
    L = F.mH if upper else F
    if not (L.requires_grad and is_grad_enabled()):
        return _chol_solve(L, b)
    return _CholSolve.apply(b, L)


class _CholSolve(Function):
    """PyTorch's rule: the triangular solves give no gradient to the unread triangle, but
    PyTorch's differentiates ``(L L^T)^-1 B`` in every entry of ``L``. The backward calls
    :func:`cholesky_solve` again, so with ``create_graph`` it is itself differentiable, to
    every order, as PyTorch's."""

    @staticmethod
    def forward(ctx, b, L):
        ctx.save_for_backward(b, L)
        return _chol_solve(L, b)

    @staticmethod
    def backward(ctx, g):
        b, L = ctx.saved_tensors
        gb = cholesky_solve(g, L)
        gL = None
        if ctx.needs_input_grad[1]:
            # -(gb x^T + x gb^T) L as n x k by k x n products: no n x n x n product. x is
            # recomputed (two solves) so that it carries its own derivatives
            x = cholesky_solve(b, L)
            gL = -(matmul(gb, matmul(L.mH, x).mH) + matmul(x, matmul(L.mH, gb).mH))
            gL = unbroadcast(gL, tuple(L.shape))
        return (unbroadcast(gb, tuple(b.shape)) if ctx.needs_input_grad[0] else None), gL


class triangular_solve_result(NamedTuple):
    """``(solution, cloned_coefficient)`` (``torch.return_types.triangular_solve``)."""
    solution: Tensor
    cloned_coefficient: Tensor


def triangular_solve(b, A, upper: bool = True, transpose: bool = False,
                     unitriangular: bool = False) -> triangular_solve_result:
    """The solution of ``A X = b`` with ``A`` triangular (only its ``upper`` or lower
    triangle is read; ``unitriangular``: ones on the diagonal assumed; ``transpose``:
    solve ``A.mT X = b``), as ``torch.triangular_solve``; batch dims broadcast.

    >>> A = tl.tensor([[2.0, 1.0], [0.0, 4.0]])
    >>> tl.triangular_solve(tl.tensor([[3.0], [4.0]]), A).solution   # [[1.], [1.]]
    """
    bt, At = _solve_args("triangular_solve", b, A)
    T, up = (At.mT, not upper) if transpose else (At, upper)
    return triangular_solve_result(_trsolve(T, bt, upper=bool(up),
                                                  unit=bool(unitriangular)), At.clone())


# --- PyTorch's older spellings of tl.linalg ------------------------------------------------
class svd_result(NamedTuple):
    """``(U, S, V)`` of :func:`svd` (``torch.return_types.svd``): ``V``, not ``Vh``."""
    U: Tensor
    S: Tensor
    V: Tensor


def svd(input, some: bool = True, compute_uv: bool = True) -> svd_result:
    """``input = U @ diag(S) @ V.mH`` (``torch.svd``: note ``V``, where ``tl.linalg.svd``
    gives ``Vh``); ``some=False`` gives the full U and V; ``compute_uv=False`` gives zeros
    for U and V, as PyTorch's."""
    from ..creation import zeros
    from .decompositions import svd as lsvd
    x = to_float(to_tensor(input))
    if x.ndim < 2:
        raise ValueError(f"svd: expects a matrix or a stack (..., m, n), got shape "
                         f"{_shape(x)}")
    if not compute_uv:
        from .decompositions import svdvals
        m, n = x.shape[-2], x.shape[-1]
        lead = _shape(x)[:-2]
        return svd_result(zeros(lead + (m, m), dtype=x.dtype, device=x.device),
                          svdvals(x.detach()),
                          zeros(lead + (n, n), dtype=x.dtype, device=x.device))
    u, s, vh = lsvd(x, full_matrices=not some)
    return svd_result(u, s, vh.mH)


def qr(input, some: bool = True):
    """``input = Q @ R`` (``torch.qr``): reduced with ``some=True``, complete otherwise."""
    from .decompositions import qr as lqr
    return lqr(to_tensor(input), mode="reduced" if some else "complete")


def frobenius_norm(input, dim=(-2, -1), keepdim: bool = False) -> Tensor:
    """The Frobenius norm over ``dim`` (``torch.frobenius_norm``)."""
    from .decompositions import vector_norm
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    return vector_norm(to_tensor(input), ord=2, dim=dims, keepdim=keepdim)


def nuclear_norm(input, dim=None, keepdim: bool = False) -> Tensor:
    """The sum of singular values of a matrix (over the two ``dim``s, default the last
    two) (``torch.nuclear_norm``)."""
    from .decompositions import matrix_norm
    if isinstance(dim, bool):                 # torch.nuclear_norm(input, keepdim)
        dim, keepdim = None, dim
    return matrix_norm(to_tensor(input), ord="nuc", dim=(-2, -1) if dim is None else dim,
                       keepdim=keepdim)


def vander(x, N: int | None = None, increasing: bool = False) -> Tensor:
    """The Vandermonde matrix of a 1-d ``x``: columns ``x ** (N - 1), ..., x ** 0`` (or
    ascending powers with ``increasing``), ``N`` defaulting to ``len(x)``
    (``torch.vander``)."""
    v = to_tensor(x)
    if v.ndim != 1:
        raise ValueError(f"vander: x must be a one-dimensional tensor, got shape {_shape(v)}")
    n = v.shape[0] if N is None else int(N)
    if n < 0:
        raise ValueError(f"vander: N must be non-negative, got {N}")
    if v.dtype == np.bool_:
        v = v.astype(np.int64)
    from ..creation import ones
    from .shape import stack
    # columns by repeated products (as PyTorch's cumprod): exact for integers, and far
    # cheaper than a float power per element
    cols, acc = [], ones(_shape(v), dtype=v.dtype, device=v.device)
    for k in range(n):
        cols.append(acc)
        if k + 1 < n:
            acc = acc * v
    if not cols:
        return v.reshape((-1, 1))[:, :0]
    return stack(cols if increasing else cols[::-1], axis=1)


def _grad_along(f: Tensor, d: int, h, edge_order: int) -> Tensor:
    """NumPy's/PyTorch's second-order accurate differences of ``f`` along ``d``: ``h`` a
    number (uniform spacing) or the 1-d coordinates along the dim."""
    from .shape import concatenate
    n = f.shape[d]

    def sl(a, b):
        return f[(slice(None),) * d + (slice(a, b),)]
    if isinstance(h, Tensor):
        shape = [1] * f.ndim
        shape[d] = n
        x = h.astype(f.dtype).reshape(tuple(shape))
        dx = x[(slice(None),) * d + (slice(1, None),)] - x[(slice(None),) * d +
                                                            (slice(None, -1),)]
        d1, d2 = dx[(slice(None),) * d + (slice(None, -1),)], dx[(slice(None),) * d +
                                                                 (slice(1, None),)]
        a, b, c = -d2 / (d1 * (d1 + d2)), (d2 - d1) / (d1 * d2), d1 / (d2 * (d1 + d2))
        mid = a * sl(0, n - 2) + b * sl(1, n - 1) + c * sl(2, n)
        dx0 = dx[(slice(None),) * d + (slice(0, 1),)]
        dxl = dx[(slice(None),) * d + (slice(n - 2, n - 1),)]
        if edge_order == 1:
            first = (sl(1, 2) - sl(0, 1)) / dx0
            last = (sl(n - 1, n) - sl(n - 2, n - 1)) / dxl
        else:
            dx1 = dx[(slice(None),) * d + (slice(1, 2),)]
            a0 = -(2.0 * dx0 + dx1) / (dx0 * (dx0 + dx1))
            b0 = (dx0 + dx1) / (dx0 * dx1)
            c0 = -dx0 / (dx1 * (dx0 + dx1))
            first = a0 * sl(0, 1) + b0 * sl(1, 2) + c0 * sl(2, 3)
            dxm = dx[(slice(None),) * d + (slice(n - 3, n - 2),)]
            al = dxl / (dxm * (dxm + dxl))
            bl = -(dxl + dxm) / (dxm * dxl)
            cl = (2.0 * dxl + dxm) / (dxl * (dxm + dxl))
            last = al * sl(n - 3, n - 2) + bl * sl(n - 2, n - 1) + cl * sl(n - 1, n)
    else:
        h = float(h)
        mid = (sl(2, n) - sl(0, n - 2)) / (2.0 * h)
        if edge_order == 1:
            first = (sl(1, 2) - sl(0, 1)) / h
            last = (sl(n - 1, n) - sl(n - 2, n - 1)) / h
        else:
            first = (-1.5 * sl(0, 1) + 2.0 * sl(1, 2) - 0.5 * sl(2, 3)) / h
            last = (0.5 * sl(n - 3, n - 2) - 2.0 * sl(n - 2, n - 1) + 1.5 * sl(n - 1, n)) / h
    return concatenate([first, mid, last], axis=d)


def gradient(input, *, spacing=1, dim=None, edge_order: int = 1) -> tuple[Tensor, ...]:
    """The gradient of samples of a function along each of ``dim`` (all dims by default) by
    central differences, one-sided of order ``edge_order`` (1 or 2) at the edges, as
    ``torch.gradient``: ``spacing`` a number, one number per dim, or one 1-d coordinate
    tensor per dim. A tuple, one tensor per dim."""
    f = to_float(to_tensor(input))
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    if dim is None:
        dims = list(range(f.ndim))
    elif isinstance(dim, (int, np.integer)):
        dims = [norm_axis(dim, f.ndim, "gradient")]
    else:
        dims = [norm_axis(a, f.ndim, "gradient") for a in dim]
    if isinstance(spacing, (list, tuple)):
        sp = list(spacing)
        if len(sp) != len(dims):
            raise ValueError(f"gradient: expected spacing to be unspecified, a scalar, or a "
                             f"list of length {len(dims)} (the dims), got {len(sp)} entries")
    else:
        sp = [spacing] * len(dims)
    out = []
    for d, h in zip(dims, sp):
        if isinstance(h, Tensor) and h.ndim == 0:
            h = float(h.item())
        if isinstance(h, Tensor):
            if h.ndim != 1 or h.shape[0] != f.shape[d]:
                raise ValueError(f"gradient: the coordinates for dim {d} must be 1-d of its "
                                 f"size {f.shape[d]}, got shape {_shape(h)}")
        if f.shape[d] < edge_order + 1:
            raise ValueError(f"gradient: each dimension size must be at least edge_order + 1 "
                             f"= {edge_order + 1}, but dim {d} has size {f.shape[d]}")
        out.append(_grad_along(f, d, h, edge_order))
    return tuple(out)


# --- PyTorch's legacy LU spellings over tl.linalg's --------------------------------------------
def lu(A, pivot: bool = True, get_infos: bool = False):
    """``(LU, pivots)``, or ``(LU, pivots, infos)`` with ``get_infos=True``: the packed LU
    factorisation of ``torch.lu`` / ``Tensor.lu`` (``tl.linalg.lu_factor_ex`` under an older
    name). As PyTorch's, a singular matrix does not raise: ``infos`` tells it."""
    LU, pivots, info = _lu_factor_ex(A, pivot=pivot)
    return (LU, pivots, info) if get_infos else (LU, pivots)


def lu_solve(b, LU_data, LU_pivots) -> Tensor:
    """``X`` with ``A X = b`` from ``A``'s factors of :func:`lu` (``torch.lu_solve``; note
    the order: ``tl.linalg.lu_solve(LU, pivots, B)`` takes ``B`` last)."""
    return _linalg_lu_solve(LU_data, LU_pivots, b)


def orgqr(input, tau) -> Tensor:
    """The first n columns of the ``Q`` of :func:`geqrf`'s ``(input, tau)`` (``torch.orgqr``,
    the same as ``tl.linalg.householder_product``); differentiable in both."""
    from .linalg_more import householder_product
    return householder_product(input, tau)
