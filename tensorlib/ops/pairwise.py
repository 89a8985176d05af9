"""``cdist``: batched p-norm distances between two sets of row vectors (PyTorch's), from
registry ops: the broadcast difference and ``norm``, for p = 2 on larger sets the
matrix-product expansion ``|a|^2 + |b|^2 - 2 a.b``, and for p = 1 on the CPU the
``cdist_l1`` op (a Cython kernel, forward and backward)."""
from __future__ import annotations

import math

import numpy as np

from .._apply import apply
from .._state import state
from ..amp.cast import autocast_call
from .._tensor import Tensor
from . import elementwise as E
from .linalg import matmul
from .reduction import norm
from .registry import OpDef, register
from . import _scan_cpu, _scan_onnx
from .reduction import sum as _sum
from ._util import to_float, to_tensor

_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
          "donot_use_mm_for_euclid_dist")


# --- p = 2 by matrix products: the cdist_euclid op ----------------------------------------
def _euclid_fwd(xp, x1, x2):
    # PyTorch's augmented product [x1, |x1|^2, 1] . [-2 x2, 1, |x2|^2]: the whole
    # |a|^2 + |b|^2 - 2 a.b in one matmul, then two in-place passes (clamp, sqrt)
    n1 = (x1 * x1).sum(axis=-1, keepdims=True)
    n2 = (x2 * x2).sum(axis=-1, keepdims=True)
    a = xp.concatenate([x1, n1, xp.ones_like(n1)], axis=-1)
    b = xp.concatenate([-2 * x2, xp.ones_like(n2), n2], axis=-1)
    d = _mm(xp)(a, xp.swapaxes(b, -1, -2))
    xp.maximum(d, 0, out=d)
    return xp.sqrt(d, out=d)


def _euclid_vjp(n, g):
    # dD_ij/dx1_i = (x1_i - x2_j) / D_ij, 0 where D_ij = 0 (g / inf there); written in ops,
    # so the backward is itself differentiable
    x1, x2 = n.inputs
    d = n.out
    w = g / E.where(d > 0, d, math.inf)                                # (..., P, R)
    g1 = x1 * _sum(w, axis=-1, keepdims=True) - matmul(w, x2)
    g2 = x2 * _sum(w, axis=-2).unsqueeze(-1) - matmul(w.swapaxes(-1, -2), x1)
    return g1, g2


def _euclid_onnx(ctx, n):
    x1, x2 = ctx.ins(n)
    diff = ctx.op("Sub", [ctx.unsqueeze(x1, [-2]), ctx.unsqueeze(x2, [-3])])
    return ctx.op("Sqrt", [ctx.reduce("Sum", ctx.op("Mul", [diff, diff]), (-1,), False)])


CDIST_EUCLID = register(OpDef(
    "cdist_euclid", _euclid_fwd, vjp=_euclid_vjp,
    infer=lambda x1, x2: (tuple(x1[0][:-1]) + (x2[0][-2],), x1[1]),
    cost=lambda i, o, **a: (2 * math.prod(i[0][0]) * i[1][0][-2],
                            (math.prod(i[0][0]) + math.prod(i[1][0]) + math.prod(o[0][0]))
                            * np.dtype(i[0][1]).itemsize),
    saves=True, saves_output=True, onnx=_euclid_onnx,
    doc="Euclidean distances between the rows of x1 (..., P, M) and x2 (..., R, M), one batch "
        "shape, by matrix products (PyTorch's mm path); distance 0 has gradient 0"))


def _euclid_mm(x1: Tensor, x2: Tensor) -> Tensor:
    from .shape import broadcast_to
    b1, b2 = tuple(x1.shape[:-2]), tuple(x2.shape[:-2])
    if b1 != b2:        # the op takes one batch shape: broadcast (differentiably) first
        batch = tuple(np.broadcast_shapes(b1, b2))
        x1 = broadcast_to(x1, batch + tuple(x1.shape[-2:]))
        x2 = broadcast_to(x2, batch + tuple(x2.shape[-2:]))
    return apply(CDIST_EUCLID, x1, x2)


# from this many distances per matrix on, p = 1 sums over the features one at a time: a
# (P, R) pass per feature stays in cache, where the (P, R, M) difference would not
_L1_LOOP_MIN = 4096


def _l1_by_feature(x1: Tensor, x2: Tensor) -> Tensor:
    """``sum_m |x1[..., :, m, None] - x2[..., None, :, m]|`` (..., P, R)."""
    a = x1.swapaxes(-1, -2).unsqueeze(-1)                              # (..., M, P, 1)
    b = x2.swapaxes(-1, -2).unsqueeze(-2)                              # (..., M, 1, R)
    out = None
    for m in range(x1.shape[-1]):
        d = E.abs(a[..., m, :, :] - b[..., m, :, :])
        out = d if out is None else out + d
    return out


def _by_feature(x1: Tensor, x2: Tensor, p: float) -> Tensor:
    """p = inf (the largest |difference|) or p = 0 (the count of differing coordinates),
    one (..., P, R) pass per feature, as :func:`_l1_by_feature`."""
    a = x1.swapaxes(-1, -2).unsqueeze(-1)                              # (..., M, P, 1)
    b = x2.swapaxes(-1, -2).unsqueeze(-2)                              # (..., M, 1, R)
    out = None
    for m in range(x1.shape[-1]):
        if p == 0:
            d = (a[..., m, :, :] != b[..., m, :, :]).astype(x1.dtype)
            out = d if out is None else out + d
        else:
            d = E.abs(a[..., m, :, :] - b[..., m, :, :])
            out = d if out is None else E.maximum(out, d)
    return out


# --- p = 1 on the CPU: the cdist_l1 op and its backward ------------------------------------
def _l1_fwd(xp, x1, x2):
    return xp.abs(x1[..., :, None, :] - x2[..., None, :, :]).sum(axis=-1)


def _l1_cpu(x1, x2):
    out = _scan_cpu.cdist_l1(x1, x2)
    return _l1_fwd(np, x1, x2) if out is None else out


def _l1_grad_fwd(xp, g, x1, x2):
    s = xp.sign(x1[..., :, None, :] - x2[..., None, :, :]) * g[..., None]
    return s.sum(axis=-2), -s.sum(axis=-3)


def _l1_grad_cpu(g, x1, x2):
    r = _scan_cpu.cdist_l1_grad(g, x1, x2)
    return _l1_grad_fwd(np, g, x1, x2) if r is None else r


def _l1_grad_vjp(n, u1, u2):
    # linear in g; in x1 and x2 piecewise constant (the sign of each difference)
    x1, x2 = n.inputs[1], n.inputs[2]
    s = E.sign(x1.unsqueeze(-2) - x2.unsqueeze(-3))                  # (..., P, R, M)
    return (_sum(s * (u1.unsqueeze(-2) - u2.unsqueeze(-3)), axis=-1), None, None)


def _l1_infer(x1, x2):
    return tuple(x1[0][:-1]) + (x2[0][-2],), x1[1]


def _l1_cost(in_specs, out_specs, **attrs):
    (s1, dt), (s2, _) = in_specs[:2]
    flops = 3 * math.prod(s1) * s2[-2]
    return flops, (math.prod(s1) + math.prod(s2) + math.prod(out_specs[0][0])) * \
        np.dtype(dt).itemsize


def _l1_onnx(ctx, n):
    x1, x2 = ctx.ins(n)
    a = ctx.op("Unsqueeze", [x1, ctx.ints([-2])])
    b = ctx.op("Unsqueeze", [x2, ctx.ints([-3])])
    return ctx.reduce("Sum", ctx.op("Abs", [ctx.op("Sub", [a, b])]), (-1,), False)


CDIST_L1_GRAD = register(OpDef(
    "cdist_l1_grad", _l1_grad_fwd, kernels={"cpu": _l1_grad_cpu}, vjp=_l1_grad_vjp,
    infer=lambda g, x1, x2: ((tuple(x1[0]), x1[1]), (tuple(x2[0]), x2[1])),
    cost=lambda i, o, **a: _l1_cost(i[1:], [i[0]]), saves=(1, 2),
    onnx=_scan_onnx.cdist_l1_grad,
    doc="gradients (x1, x2) of cdist_l1 for the upstream g; sign(0) is 0"))
CDIST_L1 = register(OpDef(
    "cdist_l1", _l1_fwd, kernels={"cpu": _l1_cpu},
    vjp=lambda n, g: apply(CDIST_L1_GRAD, g, n.inputs[0], n.inputs[1]),
    infer=_l1_infer, cost=_l1_cost, onnx=_l1_onnx,
    doc="L1 distances between the rows of x1 (..., P, M) and x2 (..., R, M), one batch shape"))


def _cdist_l1(x1: Tensor, x2: Tensor) -> Tensor:
    from .shape import broadcast_to
    b1, b2 = tuple(x1.shape[:-2]), tuple(x2.shape[:-2])
    if b1 != b2:        # the kernel takes one batch shape: broadcast (differentiably) first
        batch = tuple(np.broadcast_shapes(b1, b2))
        x1 = broadcast_to(x1, batch + tuple(x1.shape[-2:]))
        x2 = broadcast_to(x2, batch + tuple(x2.shape[-2:]))
    return apply(CDIST_L1, x1, x2)


def cdist(x1, x2, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """p-norm distance between each row of ``x1`` (..., P, M) and each row of ``x2``
    (..., R, M), as ``torch.cdist``: the result is (..., P, R), batch dims broadcast.
    ``p`` >= 0 (0 counts differing coordinates, inf is the largest one). For p = 2 and more
    than 25 rows on a side (or ``compute_mode="use_mm_for_euclid_dist"``) the distances
    come from matrix products, as PyTorch's. A zero distance has gradient 0.

    >>> a, b = tl.tensor([[0.0, 0.0], [1.0, 1.0]]), tl.tensor([[3.0, 4.0]])
    >>> tl.cdist(a, b)                                   # [[5.], [3.6056]]
    """
    if state.autocast is not None:
        return autocast_call(cdist, "cdist", x1, x2, p, compute_mode)
    from ..errors import DTypeError, InputError, ShapeError
    x1, x2 = to_float(to_tensor(x1)), to_float(to_tensor(x2))
    if x1.ndim < 2 or x2.ndim < 2:
        raise ShapeError(f"cdist: x1 and x2 must be at least 2-D (..., rows, features), got "
                         f"shapes {x1.shape} and {x2.shape}")
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist: x1 and x2 must have the same number of columns, got "
                         f"{x1.shape[-1]} and {x2.shape[-1]}")
    if x1.dtype != x2.dtype:
        raise DTypeError(f"cdist: x1 and x2 must have the same dtype, got {x1.dtype} and "
                        f"{x2.dtype}")
    p = float(p)
    if not p >= 0:
        raise InputError(f"cdist: p must be >= 0, got {p}")
    if compute_mode not in _MODES:
        raise InputError(f"cdist: compute_mode must be one of {_MODES}, got {compute_mode!r}")
    P, R = x1.shape[-2], x2.shape[-2]
    if p == 2 and (compute_mode == "use_mm_for_euclid_dist" or (
            compute_mode == _MODES[0] and (P > 25 or R > 25))):
        return _euclid_mm(x1, x2)
    if p == 1 and isinstance(x1._data, np.ndarray) and isinstance(x2._data, np.ndarray) and \
            x1.dtype in (np.float32, np.float64):
        return _cdist_l1(x1, x2)
    if p == 1 and P * R >= _L1_LOOP_MIN and x1.shape[-1] > 0:
        return _l1_by_feature(x1, x2)
    if (p == 0 or math.isinf(p)) and P * R >= _L1_LOOP_MIN and x1.shape[-1] > 0:
        from ..autograd.mode import is_grad_enabled
        if p == 0:      # a count: gradient 0, kept connected to the inputs
            from .reduction import zero_grad_link
            out = _by_feature(x1, x2, 0.0)
            return out + (zero_grad_link(x1) + zero_grad_link(x2)).astype(out.dtype) \
                if is_grad_enabled() and (x1.requires_grad or x2.requires_grad) else out
        if not (is_grad_enabled() and (x1.requires_grad or x2.requires_grad)):
            # (with gradients, the max-norm below gives ties PyTorch's gradient)
            return _by_feature(x1, x2, p)
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)                         # (..., P, R, M)
    if p == 0:
        # a count: gradient 0 (kept connected to the inputs, as PyTorch's)
        return _sum(E.where(diff != 0, 1.0, diff * 0.0), axis=-1)
    return norm(diff, ord=math.inf if math.isinf(p) else p, axis=-1)


# --- pdist with p = 2: the upper triangle in row blocks, the pdist_euclid op ---------------
# distances per block: a block and its products stay near the cache
_PD_BLOCK = 1 << 19
# pairs with d^2 < _PD_NEAR |x_i - mean|^2 (i the smaller row) are recomputed from their
# difference: elsewhere the expansion's rounding is within a few eps of d^2 (it is relative
# to |x_i|^2 + |x_j|^2, and d >= | |x_i| - |x_j| | keeps unequal norms apart)
_PD_NEAR = 0.25


def _tri_starts(xp, n: int):
    """Where row i's distances (to rows i+1 .. n-1) start in pdist's vector."""
    i = xp.arange(n, dtype=np.int64)
    return i * (2 * n - i - 1) // 2


def _row_blocks(n: int):
    step = max(1, _PD_BLOCK // max(n, 1))
    return [(r0, min(r0 + step, n - 1)) for r0 in range(0, n - 1, step)]


def _mm(xp):
    """2-D matrix product for the backend: tensorlib's float32 GEMM on the CPU (NumPy's is
    several times slower for the thin inner dimensions of distance products)."""
    from .. import _gemm
    return _gemm.matmul if xp is np else xp.matmul


def _centred(xp, x):
    with np.errstate(over="ignore", invalid="ignore"):   # (checked by _expansion_fits)
        xc = x - x.mean(axis=0)
        return xc, (xc * xc).sum(axis=1)


def _exact(xp, x, I, J):
    diff = x[I] - x[J]
    return xp.sqrt((diff * diff).sum(axis=1))


def _near_pairs(xp, d, lim, starts):
    """(positions in the triangle vector, rows i, rows j) of the pairs with d < lim[i]: the
    candidates under the largest limit first (one pass over d), then each against its own."""
    pos = xp.flatnonzero(d < lim.max())
    if pos.size:
        i = xp.searchsorted(starts, pos, side="right") - 1
        keep = d[pos] < lim[i]
        pos, i = pos[keep], i[keep]
        return pos, i, pos - starts[i] + i + 1
    return pos, pos, pos


def _by_differences(xp, x):
    """The rows' distances from their differences, row by row: for inputs the expansion
    cannot take (NaN/inf would reach every pair through the column means; squares past the
    dtype's range), where only the pairs of the offending rows may be non-finite."""
    n = x.shape[0]
    parts = [xp.sqrt(((x[i + 1:] - x[i]) ** 2).sum(axis=1)) for i in range(n - 1)]
    return xp.concatenate(parts) if parts else xp.empty(0, x.dtype)


def _expansion_fits(xp, x, sq) -> bool:
    return bool(xp.isfinite(sq).all())


# up to this many features the differences kernel beats the products (M loads and fmas a
# pair; at 1 thread (4096, 16) forward 12 ms against 23, but (2048, 64) 14 ms against 8)
_PD_DIRECT_MAX_M = 32


def _pd2_fwd(xp, x):
    n = x.shape[0]
    if xp is np and x.shape[1] <= _PD_DIRECT_MAX_M:
        r = _scan_cpu.pdist_l2(x)
        if r is not None:
            return r
    out = xp.empty(n * (n - 1) // 2, x.dtype)
    if out.size == 0:
        return out
    if x.dtype == np.float16:       # (squares of values near 256 leave float16's range)
        return _pd2_fwd(xp, x.astype(np.float32)).astype(np.float16)
    xc, sq = _centred(xp, x)
    if not _expansion_fits(xp, x, sq):
        return _by_differences(xp, x)
    one = xp.ones_like(sq[:, None])
    # [x, |x|^2, 1] . [-2 x, 1, |x|^2]: |a|^2 + |b|^2 - 2 a.b in one product, as cdist's
    a = xp.concatenate([xc, sq[:, None], one], axis=1)
    b = xp.concatenate([-2 * xc, one, sq[:, None]], axis=1)
    starts = _tri_starts(xp, n)
    at = _tri_starts(np, n).tolist()      # (host ints for the slices)
    mm = _mm(xp)
    for r0, r1 in _row_blocks(n):
        d2 = mm(a[r0:r1], b[r0 + 1:].T)                   # rows r0..r1-1, columns r0+1..
        for k in range(r1 - r0):
            i = r0 + k
            out[at[i]:at[i] + n - 1 - i] = d2[k, k:]
    xp.maximum(out, 0, out=out)
    xp.sqrt(out, out=out)
    pos, I, J = _near_pairs(xp, out, xp.sqrt(_PD_NEAR * sq), starts)
    if pos.size:
        out[pos] = _exact(xp, x, I, J)
    return out


def _pd2_grad_fwd(xp, g, x, d):
    """sum_j g_ij (x_i - x_j) / d_ij over the pairs of row i (0 where d_ij = 0): matrix
    products per row block, the near pairs (as in the forward) from their differences."""
    n, M = x.shape
    if xp is np and M <= _PD_DIRECT_MAX_M:
        r = _scan_cpu.pdist_l2_grad(g, x, d)
        if r is not None:
            return r
    gx = xp.zeros_like(x)
    if d.size == 0:
        return gx
    if x.dtype == np.float16:
        return _pd2_grad_fwd(xp, g.astype(np.float32), x.astype(np.float32),
                             d.astype(np.float32)).astype(np.float16)
    pos_d = d > 0
    w = xp.where(pos_d, g / xp.where(pos_d, d, 1), 0).astype(d.dtype, copy=False)
    xc, sq = _centred(xp, x)
    if not _expansion_fits(xp, x, sq):
        # row by row from the differences, as the forward (see _by_differences)
        at = _tri_starts(np, n).tolist()
        for i in range(n - 1):
            c = w[at[i]:at[i] + n - 1 - i, None] * (x[i] - x[i + 1:])
            gx[i] += c.sum(axis=0)
            gx[i + 1:] -= c
        return gx
    starts = _tri_starts(xp, n)
    at = _tri_starts(np, n).tolist()      # (host ints for the slices)
    pos, I, J = _near_pairs(xp, d, xp.sqrt(_PD_NEAR * sq), starts)
    wn = w[pos]
    w[pos] = 0
    mm = _mm(xp)
    for r0, r1 in _row_blocks(n):
        W = xp.zeros((r1 - r0, n - r0 - 1), x.dtype)
        for k in range(r1 - r0):
            i = r0 + k
            W[k, k:] = w[at[i]:at[i] + n - 1 - i]
        A, B = xc[r0:r1], xc[r0 + 1:]
        gx[r0:r1] += A * W.sum(axis=1)[:, None] - mm(W, B)
        gx[r0 + 1:] += B * W.sum(axis=0)[:, None] - mm(W.T, A)
    if pos.size:
        c = wn[:, None] * (x[I] - x[J])
        _add_at(xp, gx, I, c)
        _add_at(xp, gx, J, -c)
    return gx


def _add_at(xp, a, idx, v) -> None:
    if xp is np:
        np.add.at(a, idx, v)
    else:
        import cupyx
        cupyx.scatter_add(a, idx, v)


def _pd2_square(u: Tensor, n: int, iu: Tensor, il: Tensor) -> Tensor:
    """The symmetric (n, n) matrix with the pair values ``u`` (K,) off the diagonal."""
    from ..creation import zeros
    from .indexing import index_add
    flat = zeros(n * n, dtype=u.dtype, device=u.device)
    return index_add(index_add(flat, iu, u, 0), il, u, 0).reshape(n, n)


def _pd2_grad_vjp(n_, u):
    # gx = x * rowsum(W) - W @ x, W the symmetric matrix of w = g / d (0 at d = 0), in
    # tensorlib ops: the double backward is itself differentiable
    from ..creation import tensor
    g, x, d = n_.inputs
    n = x.shape[0]
    i, j = np.triu_indices(n, 1)
    iu = tensor((i * n + j).astype(np.int64), device=x.device)
    il = tensor((j * n + i).astype(np.int64), device=x.device)
    pos = d > 0
    inv = E.where(pos, 1.0 / E.where(pos, d, 1.0), 0.0)
    w = g * inv
    W = _pd2_square(w, n, iu, il)
    gx_x = u * _sum(W, axis=1, keepdims=True) - matmul(W, u)
    G = _sum(u * x, axis=1, keepdims=True) - matmul(u, x.swapaxes(0, 1))
    Gf = G.reshape(-1)
    s = Gf[iu] + Gf[il]
    return s * inv, gx_x, -s * w * inv


def _pd2_grad_onnx(ctx, n):
    # w = g / d (0 at d = 0) scattered into the symmetric (N, N) W, then x rowsum(W) - W x
    from onnx import numpy_helper
    N = n.inputs[1].shape[0]
    if N is None:
        ctx.unsupported("pdist's gradient with a dynamic number of rows")
    g, x, d = ctx.ins(n)
    dt = np.dtype(n.inputs[1].dtype)
    zero, one = ctx.const(np.zeros((), dt)), ctx.const(np.ones((), dt))
    pos = ctx.op("Greater", [d, zero])
    w = ctx.op("Where", [pos, ctx.op("Div", [g, ctx.op("Where", [pos, d, one])]), zero])
    i, j = np.triu_indices(N, 1)
    flat = ctx.op("ConstantOfShape", [ctx.ints([N * N])],
                  value=numpy_helper.from_array(np.zeros(1, dt)))
    for k in (i * N + j, j * N + i):
        flat = ctx.op("ScatterND", [flat, ctx.const(k.astype(np.int64)[:, None]), w])
    W = ctx.op("Reshape", [flat, ctx.ints([N, N])])
    rs = ctx.reduce("Sum", W, (1,), True)
    return ctx.op("Sub", [ctx.op("Mul", [x, rs]), ctx.op("MatMul", [W, x])])


PDIST_EUCLID_GRAD = register(OpDef(
    "pdist_euclid_grad", _pd2_grad_fwd, vjp=_pd2_grad_vjp,
    infer=lambda g, x, d: (tuple(x[0]), x[1]),
    cost=lambda i, o, **a: (4 * math.prod(i[1][0]) * i[1][0][0],
                            2 * (math.prod(i[1][0]) + i[0][0][0]) * np.dtype(i[1][1]).itemsize)
    if None not in i[1][0] else (0, 0),
    saves=True, onnx=_pd2_grad_onnx,
    doc="gradient of pdist_euclid (x (N, M), distances d) for the upstream g; 0 at d = 0"))


def _pd2_infer(x):
    n = x[0][0]
    return ((None if n is None else n * (n - 1) // 2),), x[1]


def _pd2_onnx(ctx, n):
    # the (N, N) distances by differences and the triangle gathered: N is fixed at export
    N = n.inputs[0].shape[0]
    if N is None:
        ctx.unsupported("pdist with a dynamic number of rows")
    (x,) = ctx.ins(n)
    diff = ctx.op("Sub", [ctx.unsqueeze(x, [-2]), ctx.unsqueeze(x, [-3])])
    d = ctx.op("Sqrt", [ctx.reduce("Sum", ctx.op("Mul", [diff, diff]), (-1,), False)])
    i, j = np.triu_indices(N, 1)
    return ctx.op("Gather", [ctx.op("Reshape", [d, ctx.ints([-1])]),
                             ctx.const((i * N + j).astype(np.int64))])


PDIST_EUCLID = register(OpDef(
    "pdist_euclid", _pd2_fwd, vjp=lambda n, g: (apply(PDIST_EUCLID_GRAD, g, n.inputs[0],
                                                      n.out),),
    infer=_pd2_infer,
    cost=lambda i, o, **a: (math.prod(i[0][0]) * i[0][0][0],
                            (math.prod(i[0][0]) + i[0][0][0] ** 2 // 2)
                            * np.dtype(i[0][1]).itemsize) if None not in i[0][0] else (0, 0),
    saves=True, saves_output=True, onnx=_pd2_onnx,
    doc="Euclidean distances between the rows of x (N, M), pair (i < j) by pair, row by row "
        "(torch.pdist); by matrix products, with the close pairs from their differences"))


def pdist_euclid(x: Tensor) -> Tensor:
    """``torch.pdist(x)`` for p = 2 by the ``pdist_euclid`` op."""
    return apply(PDIST_EUCLID, x)
