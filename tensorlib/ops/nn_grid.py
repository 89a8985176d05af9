"""``F.grid_sample`` and ``F.affine_grid``: sampling an input at arbitrary points, as PyTorch's.

Spatial transformers, optical-flow warping and random-affine augmentation sample an
(N, C, *spatial) input at the points of a grid of normalised coordinates in [-1, 1]. Each
output point reads a few taps per spatial axis (1 'nearest', 2 'bilinear', 4 'bicubic'),
their product over the axes weighted by products of 1-d weights.

Three registry ops, each a gather or a scatter of whole channel rows (the input laid out
(N * positions, C), with one extra zero row that taps outside the input read):

- ``grid_sample(x, grid)``: sum over taps of ``w(grid) * x[tap]``;
- ``grid_sample_input_grad(g, grid)``: its adjoint in ``x``, a scatter-add of ``w * g``;
- ``grid_sample_grid_grad(g, x, grid)``: ``sum_c g * d(sample)/d(grid)``.

Each carries ``deriv``, the order of the derivative of the weights w.r.t. each grid
coordinate (0 for the sampling itself). The coordinate maps (unnormalising, clipping,
reflecting) are piecewise linear, so a derivative of the weights is the 1-d weight
polynomial's derivative times the map's slope to that power. The gradient of any of the
three ops is the three ops again with ``deriv`` raised by one: derivatives of every order
come from the same kernels (bilinear weights vanish from order 2 per axis, bicubic from
order 4, nearest from order 1: PyTorch's grid gradient for 'nearest' is zero). On the CPU,
the first-order gradients of a 4-d 'bilinear'/'nearest' sample that nothing records (no
``create_graph``, no capture) come from one fused pass instead (``_fused_backward``).

``affine_grid`` is its own op (ONNX ``AffineGrid`` from opset 20, a MatMul before): the
base grid of the output's normalised coordinates times theta transposed.
"""
from __future__ import annotations

import itertools
import math
import weakref

import numpy as np

from .._apply import apply
from .._state import state
from .._tensor import Tensor
from ..amp.cast import autocast_call
from .nn_util import as_float_tensor, const, io_cost
from .registry import OpDef, register

MODES = ("bilinear", "nearest", "bicubic")
PADDING_MODES = ("zeros", "border", "reflection")
_TAPS = {"nearest": 1, "bilinear": 2, "bicubic": 4}
_MAX_ORDER = {"nearest": 0, "bilinear": 1, "bicubic": 3}   # higher derivatives vanish
_A = -0.75                   # PyTorch's cubic convolution coefficient
_INT_MAX = 2 ** 31 - 1


# --- coordinates along one axis (xp-generic) ----------------------------------------------------
# PyTorch samples 4-d inputs on the CPU with a vectorised kernel (GridSamplerKernel.cpp) and 5-d
# ones with scalar code (GridSampler.h); the two round and treat NaN a little differently, and
# ``vec`` picks the vectorised kernel's way (4-d inputs) so results match to the last bit.
def _unnormalize(c, n: int, align_corners: bool, vec: bool):
    """Grid coordinate in [-1, 1] -> input position, and its slope: -1 and 1 are the centres
    of the corner pixels (align_corners) or their outer edges."""
    if align_corners:
        return (((c + 1) * ((n - 1) / 2)) if vec else ((c + 1) / 2) * (n - 1)), (n - 1) / 2
    return (((c + 1) * (n / 2) - 0.5) if vec else ((c + 1) * n - 1) / 2), n / 2


def _clip(xp, u, n: int, vec: bool, slope: bool = True):
    """Clamp into [0, n - 1] (NaN to 0 in the vectorised kernel, to n - 1 in the scalar
    one); slope 1 strictly inside: PyTorch counts the borders as outside for the gradient too
    (a point exactly on the border gets a zero grid gradient). ``slope=False``: None."""
    inside = ((u > 0) & (u < n - 1)) if slope else None
    return _clamp(xp, u, 0, n - 1, vec).astype(u.dtype, copy=False), inside


def _reflect(xp, u, twice_low: int, twice_high: int, vec: bool, slope: bool = True):
    """Reflect into [low, high] (as often as needed), and the slope (+-1; None when not
    ``slope``)."""
    if twice_low == twice_high:
        return xp.zeros_like(u), (xp.zeros_like(u) if slope else None)
    low, span = twice_low / 2, (twice_high - twice_low) / 2
    d = u - low
    neg = d < 0
    a = xp.abs(d)
    if vec:     # whole double spans off, then fold the far half back
        extra = a - xp.trunc(a / (2 * span)) * (2 * span)
        back = 2 * span - extra
        flip = extra > back
        out = xp.where(flip, back, extra) + low
    else:
        extra = xp.fmod(a, span)
        flip = xp.floor(a / span) % 2 == 1
        out = xp.where(flip, span - extra + low, extra + low)
    return out.astype(u.dtype, copy=False), (
        xp.where(flip ^ neg, -1, 1).astype(u.dtype) if slope else None)


def _safe(xp, u):
    """A position that is not finite or does not fit an int32 reads nothing (PyTorch's
    ``safe_downgrade_to_int_range``: -100 lies outside every input)."""
    ok = xp.isfinite(u) & (u <= _INT_MAX - 1) & (u >= -_INT_MAX - 1)
    return xp.where(ok, u, u.dtype.type(-100))


def _pad_position(xp, u, n: int, padding_mode: str, align_corners: bool, vec: bool,
                  slope: bool = True):
    """PyTorch's ``compute_coordinates`` (before ``_safe``): the position after the padding
    rule, and the slope of that map (None: 1 everywhere, or not asked for)."""
    s = None
    if padding_mode == "border":
        u, s = _clip(xp, u, n, vec, slope)
        s = None if s is None else s.astype(u.dtype)
    elif padding_mode == "reflection":
        twice = (0, 2 * (n - 1)) if align_corners else (-1, 2 * n - 1)
        u, s = _reflect(xp, u, *twice, vec, slope)
        u, inside = _clip(xp, u, n, vec, slope)
        s = None if s is None else s * inside
    return u, s


def _cubic(order: int, s, near: bool):
    """The ``order``-th derivative of Keys' cubic convolution kernel at distance ``s``: the
    inner piece (|s| <= 1) or the outer one (1 < |s| < 2)."""
    a = _A
    if near:
        if order == 0:
            return ((a + 2) * s - (a + 3)) * s * s + 1
        if order == 1:
            return (3 * (a + 2) * s - 2 * (a + 3)) * s
        return 6 * (a + 2) * s - 2 * (a + 3) if order == 2 else 0 * s + 6 * (a + 2)
    if order == 0:
        return ((a * s - 5 * a) * s + 8 * a) * s - 4 * a
    if order == 1:
        return (3 * a * s - 10 * a) * s + 8 * a
    return 6 * a * s - 10 * a if order == 2 else 0 * s + 6 * a


_SENT = -(1 << 60)      # offset of a tap outside: no sum with in-range offsets reaches [0, S)
# below this many pixels from the input, tap positions are exact in float32, so integer
# arithmetic on them (a reflection table) gives PyTorch's float results; farther points (and
# NaN, inf) take the float path
_TAME = float(1 << 20)


def _clamp(xp, b, lo: int, hi: int, nan_low: bool):
    """b clamped into [lo, hi], NaN to lo or hi (fmin/fmax pass NaN over)."""
    return xp.fmin(xp.fmax(b, lo), hi) if nan_low else xp.fmax(xp.fmin(b, hi), lo)


class _Axis:
    """The taps of every sample point along one axis of size ``n``: ``idx`` (K, M) input
    positions, ``valid`` (K, M) whether they lie inside (``idx`` is 0 where not), and
    ``weights(order)`` the ``order``-th derivative w.r.t. the grid coordinate of their 1-d
    weights.

    Tap k of a point is ``table[k, bidx]``: the point's base position (clamped to the few
    values beyond which every tap reads the same) indexes a small table of tap positions,
    so the padding of the taps and their validity are worked out once per table entry, not
    once per point."""

    def __init__(self, xp, c, n: int, mode: str, padding_mode: str, align_corners: bool,
                 vec: bool):
        self.xp, self.mode, self.dtype = xp, mode, c.dtype
        u, self._scale = _unnormalize(c, n, align_corners, vec)
        self._pad = None        # (position, padding args) for the padding's slope, if any
        self._patch = None      # (points, (4, points) positions) not taken from the table
        if mode == "bicubic":
            # the taps around the unpadded position; the padding rule moves each tap
            base = xp.floor(u)
            self.t = u - base
            if padding_mode == "reflection":
                table = self._reflect_table(xp, base, n, align_corners, vec)
            else:
                # beyond [-3, n + 1] all four taps lie outside (or clamp to one edge)
                lo, hi = -3, n + 1
                self.bidx = (_clamp(xp, base, lo, hi, vec) - lo).astype(np.intp)
                table = np.arange(lo, hi + 1) + np.arange(-1, 3)[:, None]
                if padding_mode == "border":
                    table = np.clip(table, 0, n - 1)
        else:
            if padding_mode != "zeros":
                self._pad = (u, n, padding_mode, align_corners, vec)
            u = _pad_position(xp, u, n, padding_mode, align_corners, vec, slope=False)[0]
            # PyTorch reads nothing at a NaN, infinite or huge position (``_safe``): such
            # positions clamp to a base whose taps all lie outside
            if mode == "nearest":
                base = xp.rint(u)       # half to even, as PyTorch's nearbyint
                lo, hi, shifts = -1, n, (0,)
            else:
                # the scalar kernel weighs the made-safe position, the vectorised one the
                # position itself (NaN weights for a NaN point, then NaN where it reads zeros)
                if not vec:
                    u = _safe(xp, u)
                base = xp.floor(u)
                self.t = u - base
                lo, hi, shifts = -2, n, (0, 1)
            self.bidx = (_clamp(xp, base, lo, hi, True) - lo).astype(np.intp)
            table = np.arange(lo, hi + 1) + np.array(shifts)[:, None]
        self._valid_t = (table >= 0) & (table < n)
        self._table = np.where(self._valid_t, table, 0)
        self._slope = self._idx = self._valid = None
        self._w: dict = {}

    def _reflect_table(self, xp, base, n: int, align_corners: bool, vec: bool):
        """Positions of the taps base - 1 .. base + 2 after reflection (and clipping), by
        the offset of base - 1 within one period of the fold where ``base`` is tame, by
        PyTorch's float code elsewhere (NaN, inf and far points)."""
        period = max(2 * (n - 1), 1) if align_corners else 2 * n
        r = np.arange(period)
        fold = np.where(r < n, r, (period if align_corners else period - 1) - r)
        table = fold[(r + np.arange(4)[:, None]) % period]
        tame = xp.abs(base) < _TAME
        b = xp.where(tame, base, 0).astype(np.int64)
        self.bidx = ((b - 1) % period).astype(np.intp, copy=False)
        if not bool(tame.all()):
            odd = xp.nonzero(~tame)[0]
            far = base[odd][None] + xp.arange(-1, 3, dtype=base.dtype)[:, None]
            far = _safe(xp, _pad_position(xp, far, n, "reflection", align_corners, vec,
                                          slope=False)[0])
            # (clipped into the input: NaN and huge points too)
            self._patch = (odd, xp.floor(far).astype(np.int64))
        return table

    def _gather(self, table):
        """table (K, entries) -> (K, M) for every point (patched points set by the caller)."""
        return self.xp.take(self.xp.asarray(table), self.bidx, axis=1)

    @property
    def idx(self):
        if self._idx is None:
            self._idx = self._gather(self._table)
            if self._patch is not None:
                self._idx[:, self._patch[0]] = self._patch[1]
        return self._idx

    @property
    def valid(self):
        if self._valid is None:
            self._valid = self._gather(self._valid_t)
            if self._patch is not None:
                self._valid[:, self._patch[0]] = True
        return self._valid

    @property
    def taps(self) -> int:
        return self._table.shape[0]

    def offsets(self, stride: int):
        """(K, M) row offsets ``idx * stride``, ``_SENT`` where a tap lies outside."""
        off = self._gather(np.where(self._valid_t, self._table * stride, _SENT))
        if self._patch is not None:
            off[:, self._patch[0]] = self._patch[1] * stride
        return off

    @property
    def slope(self):
        """d(position)/d(grid coordinate): the unnormalising scale times the padding map's."""
        if self._slope is None:
            self._slope = self._scale
            if self._pad is not None:
                with np.errstate(invalid="ignore", over="ignore"):
                    self._slope = _pad_position(self.xp, *self._pad)[1] * self._scale
        return self._slope

    def weights(self, order: int):
        """(K, M) weights' ``order``-th derivative; None where it vanishes."""
        if order > _MAX_ORDER[self.mode]:
            return None
        w = self._w.get(order)
        if w is not None:
            return w
        xp = self.xp
        if self.mode == "nearest":
            w = xp.ones((1,) + self.bidx.shape, self.dtype)
        elif self.mode == "bilinear":
            t = self.t
            if order == 0:
                w = xp.empty((2,) + t.shape, t.dtype)
                xp.subtract(1, t, out=w[0])
                w[1] = t
            else:
                w = xp.stack([-self.slope + 0 * t, self.slope + 0 * t])
        else:
            t, sign = self.t, (-1) ** order
            w = xp.stack([_cubic(order, t + 1, False), _cubic(order, t, True),
                          sign * _cubic(order, 1 - t, True), sign * _cubic(order, 2 - t, False)])
            if order:
                w = w * self.slope ** order
        self._w[order] = w
        return w


class _Plan:
    """The taps of a grid over an input of spatial ``sizes``: one :class:`_Axis` per grid
    component (x, y[, z]: W, H[, D] of the input), and the rows they read."""

    def __init__(self, xp, grid, n_batch: int, sizes, mode, padding_mode, align_corners):
        self.xp = xp
        D = grid.shape[-1]
        flat = grid.reshape(-1, D)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN, inf points: as PyTorch
            # (contiguous columns: every per-axis op then streams)
            self.axes = [_Axis(xp, xp.ascontiguousarray(flat[:, d]), int(sizes[D - 1 - d]),
                               mode, padding_mode, align_corners, D == 2) for d in range(D)]
        # grid component d walks spatial axis D - 1 - d, whose row stride is the product of
        # the sizes after it
        self.strides = [math.prod(int(s) for s in sizes[D - d:]) for d in range(D)]
        self.S = math.prod(int(s) for s in sizes)
        self.N = n_batch
        self.M = flat.shape[0] // n_batch if n_batch else 0
        self._off = None

    @property
    def base(self):
        return self.xp.repeat(self.xp.arange(self.N, dtype=np.int64) * self.S, self.M)

    def combos(self):
        return itertools.product(*(range(a.taps) for a in self.axes))

    def local(self, ks):
        """Where one combination of taps reads inside each image (N * M,), and whether it
        lies inside."""
        pos, valid = 0, None
        for a, k, s in zip(self.axes, ks, self.strides):
            pos = pos + a.idx[k] * s
            valid = a.valid[k] if valid is None else valid & a.valid[k]
        return pos, valid

    def rows(self, ks):
        """Rows of the (N * S + 1, C) input that one combination of taps reads (the last
        row, zeros, where a tap lies outside)."""
        pos, valid = self.local(ks)
        return self.xp.where(valid, self.base + pos, self.N * self.S)

    def offsets(self):
        """Per axis (K_d, N * M) row offsets inside an image (``_SENT`` outside)."""
        if self._off is None:
            self._off = [a.offsets(s) for a, s in zip(self.axes, self.strides)]
        return self._off

    def chunks(self, derivs, dtype):
        """(n0, n1, idx, ws) over the batch, a few images at a time: images n0..n1's taps,
        every combination in ``combos`` order (the first axis slowest), as positions
        (K, n, M) inside the image (negative where a tap lies outside) and weights (one for
        each of ``derivs``). The combined taps are K times the grid, so they are built by
        broadcasting the per-axis ones where they stay in cache, never whole."""
        K = math.prod(a.taps for a in self.axes)
        per = max(1, min(self.N, _TAP_CHUNK // max(K * self.M, 1)))
        size = K * per * self.M
        ibuf = np.empty(size, np.int64)
        wbufs = [np.empty(size, dtype) for _ in derivs]
        per_axis_w = [[a.weights(o) for a, o in zip(self.axes, d)] for d in derivs]
        for n0 in range(0, self.N, per):
            n1 = min(self.N, n0 + per)
            cols = slice(n0 * self.M, n1 * self.M)
            shape = (K, n1 - n0, self.M)
            idx = _combine([o[:, cols] for o in self.offsets()], np.add, ibuf)
            ws = [_combine([w[:, cols] for w in ax], np.multiply, buf).reshape(shape)
                  for ax, buf in zip(per_axis_w, wbufs)]
            yield n0, n1, idx.reshape(shape), ws

    def weight(self, ks, orders):
        w = None
        for a, k, o in zip(self.axes, ks, orders):
            wk = a.weights(o)[k]
            w = wk if w is None else w * wk
        return w

    def vanishes(self, orders) -> bool:
        return any(a.weights(o) is None for a, o in zip(self.axes, orders))


_TAP_CHUNK = 1 << 17    # combined taps (positions and weights) built at once


def _combine(per_axis, op, buf):
    """op-combine (K_d, L) arrays over every combination of their first indices (the first
    array's slowest) into ``buf``: (prod K_d, L)."""
    acc, L = per_axis[0], per_axis[0].shape[1]
    for i, a in enumerate(per_axis[1:]):
        shape = (acc.shape[0], a.shape[0], L)
        out = buf[:math.prod(shape)].reshape(shape) if i == len(per_axis) - 2 else None
        acc = op(acc[:, None], a[None], out=out).reshape(shape[0] * shape[1], L)
    return acc


# The last CPU plan, kept while its grid array lives: the forward, the input gradient and
# the grid gradient of one grid_sample read the same taps. It is reused only for a grid of
# equal contents (an in-place change of the grid misses).
_last_plan = None


def _forget(ref) -> None:
    global _last_plan
    last = _last_plan
    if last is not None and last[0] is ref:
        _last_plan = None


def _cpu_plan(grid, n_batch: int, sizes, mode, padding_mode, align_corners) -> _Plan:
    global _last_plan
    key = (grid.shape, grid.dtype.str, n_batch, tuple(int(s) for s in sizes), mode,
           padding_mode, bool(align_corners))
    last = _last_plan
    if last is not None and last[1] == key and np.array_equal(last[2], grid):
        return last[3]
    plan = _Plan(np, grid, n_batch, sizes, mode, padding_mode, align_corners)
    try:
        ref = weakref.ref(grid, _forget)
    except TypeError:       # (an array type without weak references: no reuse)
        return plan
    _last_plan = (ref, key, grid.copy(), plan)
    return plan


def _as_rows(xp, x, extra_row: bool = False):
    """(N, C, *spatial) -> (N * positions, C) (+ one row of zeros): a tap then gathers whole
    contiguous channel rows."""
    N, C = x.shape[:2]
    S = math.prod(x.shape[2:])
    out = xp.empty((N * S + int(extra_row), C), x.dtype)
    out[:N * S].reshape(N, S, C)[...] = x.reshape(N, C, S).transpose(0, 2, 1)
    if extra_row:
        out[N * S:] = 0
    return out


def _from_rows(xp, rows, N: int, C: int, spatial):
    """(N * positions, C) -> (N, C, *spatial), contiguous."""
    M = math.prod(spatial)
    out = xp.empty((N, C) + tuple(spatial), rows.dtype)
    out.reshape(N, C, M)[...] = rows[:N * M].reshape(N, M, C).transpose(0, 2, 1)
    return out


def _orders(deriv, d: int) -> tuple:
    return tuple(o + (i == d) for i, o in enumerate(deriv))


# --- kernels (xp-generic; on the CPU the sample and its input gradient run in Cython) ----------
def _sample_fwd(xp, x, grid, *, mode, padding_mode, align_corners, deriv):
    # a replayed graph can feed an input and a grid of different batches: never mix them
    _check_sample_shapes("grid_sample", x.shape, grid.shape)
    N, C = x.shape[:2]
    P = grid.shape[1:-1]
    plan = _Plan(xp, grid, N, x.shape[2:], mode, padding_mode, align_corners)
    out = xp.zeros((N * math.prod(P), C), x.dtype)
    if not out.size or plan.vanishes(deriv):
        return _from_rows(xp, out, N, C, P)
    xt = _as_rows(xp, x, extra_row=True)
    for ks in plan.combos():
        v = xp.take(xt, plan.rows(ks), axis=0)
        v *= plan.weight(ks, deriv)[:, None]
        out += v
    return _from_rows(xp, out, N, C, P)


def _cpu_plan_for(x, grid, attrs, size=None):
    """The plan for the CPU kernels, or None where they do not apply (other dtypes, nothing
    to compute, or weights that vanish)."""
    if x.dtype not in (np.float32, np.float64) or grid.dtype != x.dtype:
        return None
    size = tuple(x.shape[2:] if size is None else size)
    if not x.shape[0] * x.shape[1] * math.prod(grid.shape[1:-1]) * math.prod(size):
        return None
    plan = _cpu_plan(grid, x.shape[0], size, attrs["mode"], attrs["padding_mode"],
                     attrs["align_corners"])
    return None if plan.vanishes(attrs["deriv"]) else plan


_PAD_CODE = {"zeros": 0, "border": 1, "reflection": 2}


def _sample_cpu(x, grid, **attrs):
    """The sample gathered in place (NCHW, no transposes): 4-d 'nearest' and 'bilinear' by
    the fused ``_ops.grid_sample_2d`` (taps and weights worked out inside the loop), the
    rest by ``_ops.gather_taps`` over a plan's tap arrays."""
    _check_sample_shapes("grid_sample", x.shape, grid.shape)
    from .. import _ops
    if (x.ndim == 4 and attrs["mode"] != "bicubic" and not any(attrs["deriv"])
            and x.dtype in (np.float32, np.float64) and grid.dtype == x.dtype
            and x.shape[2] * x.shape[3] <= _INT_MAX):       # (32-bit taps)
        N, C = x.shape[:2]
        out = np.empty((N, C) + tuple(grid.shape[1:-1]), x.dtype)
        _ops.grid_sample_2d(np.ascontiguousarray(x), np.ascontiguousarray(grid), out,
                            int(attrs["mode"] == "bilinear"),
                            _PAD_CODE[attrs["padding_mode"]], bool(attrs["align_corners"]))
        return out
    plan = _cpu_plan_for(x, grid, attrs)
    if plan is None:
        return _sample_fwd(np, x, grid, **attrs)
    N, C = x.shape[:2]
    out = np.empty((N, C) + tuple(grid.shape[1:-1]), x.dtype)
    x3, o3 = np.ascontiguousarray(x).reshape(N, C, -1), out.reshape(N, C, -1)
    for n0, n1, idx, (w,) in plan.chunks([attrs["deriv"]], x.dtype):
        _ops.gather_taps(x3[n0:n1], idx, w, o3[n0:n1])
    return out


_CHUNK = 1 << 24     # elements of weighted gradient rows scattered at once


def _scatter_bincount(xp, dst, rows, vals):
    """dst[rows[k]] += vals[k] (rows of C values), with repeated rows adding up."""
    C = dst.shape[1]
    flat = (rows[:, None] * C + xp.arange(C, dtype=np.int64)).reshape(-1)
    dst += xp.bincount(flat, weights=vals.reshape(-1), minlength=dst.size).reshape(
        dst.shape).astype(dst.dtype)


def _input_grad_fwd(xp, g, grid, *, input_size, mode, padding_mode, align_corners, deriv):
    N, C = g.shape[:2]
    _check_grad_shapes("grid_sample_input_grad", g.shape, grid.shape)
    if grid.shape[-1] != len(input_size) or len(input_size) + 2 != g.ndim:
        raise ValueError(f"grid_sample_input_grad: input size {tuple(input_size)} does not "
                         f"match grid {tuple(grid.shape)}")
    plan = _Plan(xp, grid, N, input_size, mode, padding_mode, align_corners)
    dx = xp.zeros((N * plan.S + 1, C), g.dtype)
    if g.size and not plan.vanishes(deriv):
        gt = _as_rows(xp, g)
        M = gt.shape[0]
        combos = list(plan.combos())
        # the taps of several combinations scattered in one pass (one pass over dx instead
        # of one each), as many as fit in _CHUNK elements
        per = max(1, _CHUNK // max(gt.size, 1))
        for i in range(0, len(combos), per):
            group = combos[i:i + per]
            vals = xp.empty((len(group) * M, C), g.dtype)
            for k, ks in enumerate(group):
                xp.multiply(gt, plan.weight(ks, deriv)[:, None], out=vals[k * M:(k + 1) * M])
            rows = xp.concatenate([plan.rows(ks) for ks in group])
            _scatter_bincount(xp, dx, rows, vals)
    return _from_rows(xp, dx, N, C, input_size)


def _input_grad_cpu(g, grid, **attrs):
    """The adjoint of ``_sample_cpu``: ``_ops.scatter_taps`` (threads own whole planes)."""
    _check_grad_shapes("grid_sample_input_grad", g.shape, grid.shape)
    size = tuple(attrs["input_size"])
    if grid.shape[-1] != len(size) or len(size) + 2 != g.ndim:
        return _input_grad_fwd(np, g, grid, **attrs)      # (raises its error)
    plan = _cpu_plan_for(g, grid, attrs, size)
    if plan is None:
        return _input_grad_fwd(np, g, grid, **attrs)
    from .. import _ops
    N, C = g.shape[:2]
    out = np.empty((N, C) + size, g.dtype)
    g3, o3 = np.ascontiguousarray(g).reshape(N, C, -1), out.reshape(N, C, -1)
    for n0, n1, idx, (w,) in plan.chunks([attrs["deriv"]], g.dtype):
        _ops.scatter_taps(g3[n0:n1], idx, w, o3[n0:n1])
    return out


def _grid_grad_fwd(xp, g, x, grid, *, mode, padding_mode, align_corners, deriv):
    N, C = x.shape[:2]
    D = grid.shape[-1]
    _check_sample_shapes("grid_sample_grid_grad", x.shape, grid.shape)
    _check_grad_shapes("grid_sample_grid_grad", g.shape, grid.shape, x.shape)
    plan = _Plan(xp, grid, N, x.shape[2:], mode, padding_mode, align_corners)
    M = math.prod(grid.shape[1:-1])
    out = xp.zeros((N * M, D), grid.dtype)
    live = [d for d in range(D) if not plan.vanishes(_orders(deriv, d))]
    if live and out.size and C:
        xt = _as_rows(xp, x, extra_row=True)
        gt = _as_rows(xp, g)
        for ks in plan.combos():
            s = xp.einsum("ij,ij->i", xp.take(xt, plan.rows(ks), axis=0), gt)
            for d in live:
                out[:, d] += s * plan.weight(ks, _orders(deriv, d))
    return out.reshape(grid.shape)


def _grid_grad_cpu(g, x, grid, **attrs):
    """Per grid component d, the sample with the weights' derivative along d
    (``_ops.gather_taps``) times ``g``, summed over channels."""
    _check_sample_shapes("grid_sample_grid_grad", x.shape, grid.shape)
    _check_grad_shapes("grid_sample_grid_grad", g.shape, grid.shape, x.shape)
    plan = _cpu_plan_for(x, grid, dict(attrs, deriv=(0,) * (grid.shape[-1])))
    D = grid.shape[-1]
    live = [] if plan is None else [
        d for d in range(D) if not plan.vanishes(_orders(attrs["deriv"], d))]
    if plan is None or g.dtype != x.dtype or not live:
        return _grid_grad_fwd(np, g, x, grid, **attrs)
    from .. import _ops
    N, C = x.shape[:2]
    P = plan.M
    out = np.zeros((N, P, D), grid.dtype)
    x3 = np.ascontiguousarray(x).reshape(N, C, -1)
    g3 = np.ascontiguousarray(g).reshape(N, C, P)
    for n0, n1, idx, ws in plan.chunks([_orders(attrs["deriv"], d) for d in live], x.dtype):
        s = np.empty((n1 - n0, C, P), x.dtype)
        for d, w in zip(live, ws):
            _ops.gather_taps(x3[n0:n1], idx, w, s)
            np.multiply(s, g3[n0:n1], out=s)
            out[n0:n1, :, d] = s.sum(axis=1)
    return out.reshape(grid.shape)


# --- shape checks shared by the public API, infer and the kernels -------------------------------
def _check_grad_shapes(op: str, gs, grs, xs=None) -> None:
    """The incoming gradient (N, C, *points) must match the grid (N, *points, D)."""
    if len(gs) != len(grs) or (tuple(gs[2:]) != tuple(grs[1:-1])) or gs[0] != grs[0]:
        raise ValueError(f"{op}: gradient of shape {tuple(gs)} does not match grid "
                         f"{tuple(grs)} (needs (N, C, *grid points))")
    if xs is not None and (len(xs) != len(gs) or xs[:2] != gs[:2]):
        raise ValueError(f"{op}: gradient of shape {tuple(gs)} does not match input "
                         f"{tuple(xs)} in (N, C)")


def _check_sample_shapes(op: str, xs, grs) -> None:
    nd = len(xs)
    if nd not in (4, 5):
        raise ValueError(f"{op}: input of shape {tuple(xs)} must be 4-d (N, C, H, W) or 5-d "
                         "(N, C, D, H, W)")
    form = "(N, H, W, 2)" if nd == 4 else "(N, D, H, W, 3)"
    if len(grs) != nd:
        raise ValueError(f"{op}: grid of shape {tuple(grs)} must be {nd}-d {form} for a "
                         f"{nd}-d input")
    if grs[-1] != nd - 2:
        raise ValueError(f"{op}: grid of shape {tuple(grs)} must end in {nd - 2} "
                         f"coordinates {form}, got {grs[-1]}")
    if xs[0] is not None and grs[0] is not None and xs[0] != grs[0]:
        raise ValueError(f"{op}: input and grid batch sizes differ ({xs[0]} and {grs[0]})")
    if any(s is not None and s < 1 for s in xs[2:]):
        raise ValueError(f"{op}: input of shape {tuple(xs)} has an empty spatial dimension")


def _sample_infer(x, grid, *, mode, padding_mode, align_corners, deriv):
    _check_sample_shapes("grid_sample", x[0], grid[0])
    n = x[0][0] if x[0][0] is not None else grid[0][0]
    return (n, x[0][1]) + tuple(grid[0][1:-1]), x[1]


def _input_grad_infer(g, grid, *, input_size, **attrs):
    _check_grad_shapes("grid_sample_input_grad", g[0], grid[0])
    return tuple(g[0][:2]) + tuple(input_size), g[1]


def _grid_grad_infer(g, x, grid, **attrs):
    _check_grad_shapes("grid_sample_grid_grad", g[0], grid[0], x[0])
    return tuple(grid[0]), grid[1]


def _taps_flops(i, o, **a):
    return 2 * _TAPS[a["mode"]] ** (len(i[0][0]) - 2) * math.prod(
        d or 1 for d in o[0][0])


# --- backward rules (tensorlib ops, so they differentiate again) --------------------------------
def _attrs(n) -> dict:
    return {k: n.attrs[k] for k in ("mode", "padding_mode", "align_corners", "deriv")}


def _vanishes(mode: str, deriv) -> bool:
    return any(o > _MAX_ORDER[mode] for o in deriv)


def _zeros_like(t: Tensor) -> Tensor:
    from ..creation import zeros
    return zeros(t.shape, dtype=t.dtype, device=t.device)


def _grid_grad(g, x, grid, attrs) -> Tensor:
    """``sum_c g * d(sample)/d(grid)``; zeros (not None, as PyTorch) where no weight moves
    with the grid ('nearest')."""
    D = len(attrs["deriv"])
    if all(_vanishes(attrs["mode"], _orders(attrs["deriv"], d)) for d in range(D)):
        return _zeros_like(grid)
    return apply(GRID_SAMPLE_GRID_GRAD, g, x, grid, **attrs)


def _fused_backward(x, grid, g, a):
    """Both first-order gradients of a 4-d 'bilinear'/'nearest' sample in one pass of
    ``_ops.grid_sample_2d_backward``, where nothing records them (no ``create_graph``, no
    capture); None elsewhere: the registry ops then, which differentiate again."""
    if (state.grad_enabled or state.tracer is not None or x.ndim != 4
            or a["mode"] == "bicubic" or any(a["deriv"])):
        return None
    from .. import _ops
    xd, gd, gr = x._data, g._data, grid._data
    if not (type(xd) is np.ndarray and type(gd) is np.ndarray and type(gr) is np.ndarray
            and xd.dtype in (np.float32, np.float64) and gd.dtype == xd.dtype
            and gr.dtype == xd.dtype and gd.shape == xd.shape[:2] + gr.shape[1:3]
            and xd.shape[2] * xd.shape[3] <= _INT_MAX):
        return None
    want_x, want_grid = bool(x._rg), bool(grid._rg)
    dummy = np.empty((1, 1, 1, 1), xd.dtype)
    dx = np.empty(xd.shape, xd.dtype) if want_x else dummy
    dgrid = np.empty(gr.shape, xd.dtype) if want_grid else dummy
    _ops.grid_sample_2d_backward(
        np.ascontiguousarray(xd), np.ascontiguousarray(gr), np.ascontiguousarray(gd), dx, dgrid,
        int(a["mode"] == "bilinear"), _PAD_CODE[a["padding_mode"]], bool(a["align_corners"]),
        want_x, want_grid)
    return (const(dx, x) if want_x else None), (const(dgrid, grid) if want_grid else None)


def _sample_vjp(n, g):
    x, grid = n.inputs
    a = _attrs(n)
    fused = _fused_backward(x, grid, g, a)
    if fused is not None:
        return fused
    dx = (apply(GRID_SAMPLE_INPUT_GRAD, g, grid, input_size=tuple(x.shape[2:]), **a)
          if x._rg else None)
    return dx, (_grid_grad(g, x, grid, a) if grid._rg else None)


def _input_grad_vjp(n, gg):
    # <gg, dx(g)> = <sample(gg), g>: the sample of gg, and its derivative in the grid
    g, grid = n.inputs
    a = _attrs(n)
    dg = apply(GRID_SAMPLE, gg, grid, **a) if g._rg else None
    return dg, (_grid_grad(g, gg, grid, a) if grid._rg else None)


def _grid_grad_vjp(n, gb):
    # out[..., d] = sum_c g * sample'_d(x): each term raises the derivative order along d
    g, x, grid = n.inputs
    base = _attrs(n)
    dg = dx = dgrid = None
    for d in range(grid.shape[-1]):
        a = dict(base, deriv=_orders(base["deriv"], d))
        if _vanishes(a["mode"], a["deriv"]):
            continue
        b = gb[..., d]                              # (N, *points)
        if g._rg:
            term = b.unsqueeze(1) * apply(GRID_SAMPLE, x, grid, **a)
            dg = term if dg is None else dg + term
        if x._rg:
            term = apply(GRID_SAMPLE_INPUT_GRAD, g * b.unsqueeze(1), grid,
                         input_size=tuple(x.shape[2:]), **a)
            dx = term if dx is None else dx + term
        if grid._rg:
            term = b.unsqueeze(-1) * _grid_grad(g, x, grid, a)
            dgrid = term if dgrid is None else dgrid + term
    return dg, dx, dgrid


GRID_SAMPLE = register(OpDef(
    "grid_sample", _sample_fwd, kernels={"cpu": _sample_cpu}, vjp=_sample_vjp,
    infer=_sample_infer,
    cost=io_cost(_taps_flops)))
GRID_SAMPLE_INPUT_GRAD = register(OpDef(
    "grid_sample_input_grad", _input_grad_fwd, kernels={"cpu": _input_grad_cpu},
    vjp=_input_grad_vjp, infer=_input_grad_infer, cost=io_cost()))
GRID_SAMPLE_GRID_GRAD = register(OpDef(
    "grid_sample_grid_grad", _grid_grad_fwd, kernels={"cpu": _grid_grad_cpu},
    vjp=_grid_grad_vjp, infer=_grid_grad_infer,
    cost=io_cost()))


# --- affine_grid ---------------------------------------------------------------------------------
def _linspace(n: int, align_corners: bool) -> np.ndarray:
    """PyTorch's normalised positions of n pixels (0 for a single one)."""
    if n <= 1:
        return np.zeros(n)
    r = np.linspace(-1.0, 1.0, n)
    return r if align_corners else r * (n - 1) / n


def base_grid(spatial, align_corners: bool, dtype) -> np.ndarray:
    """(prod(spatial), k + 1) rows (x, y[, z], 1) of every output position, row-major over
    ``spatial`` ((H, W) or (D, H, W))."""
    axes = [_linspace(int(s), align_corners) for s in spatial]
    mesh = np.meshgrid(*axes, indexing="ij")            # (D,) H, W order
    cols = [m.reshape(-1) for m in reversed(mesh)]      # x (W) first
    return np.stack(cols + [np.ones(math.prod(int(s) for s in spatial))], axis=1).astype(dtype)


def _affine_size(size, sizes, shapes) -> tuple:
    """``size`` (C, spatial...) with its run-time entries (``sizes``) computed."""
    if not sizes:
        return tuple(size)
    from ..graph.sizes import apply_sizes
    return apply_sizes(size, sizes, shapes)


def _affine_fwd(xp, theta, *srcs, size, align_corners, sizes=()):
    size = _affine_size(size, sizes, [theta.shape] + [s.shape for s in srcs])
    if any(s < 1 for s in size):
        raise ValueError(f"affine_grid: size {(theta.shape[0],) + size} must be positive")
    spatial = tuple(size[1:])
    base = xp.asarray(base_grid(spatial, align_corners, theta.dtype))
    out = xp.matmul(base, theta.transpose(0, 2, 1))     # (N, positions, k)
    return out.reshape((theta.shape[0],) + spatial + (theta.shape[1],))


def _affine_vjp(n, g):
    theta = n.inputs[0]
    k = theta.shape[1]
    if n.attrs.get("sizes"):
        # the size follows a None dim: the base grid as a graph value (the grid of the
        # identity map) instead of a constant, so the gradient serves every size too
        from ..creation import zeros_like
        from .shape import concatenate
        eye = np.eye(k, k + 1, dtype=theta.dtype)
        ident = apply(AFFINE_GRID, zeros_like(theta) + const(eye, g), *n.inputs[1:],
                      **n.attrs)
        g2 = g.reshape(g.shape[0], -1, k)
        lin = g2.swapaxes(1, 2) @ ident.reshape(g.shape[0], -1, k)
        return (concatenate([lin, g2.sum(axis=1).unsqueeze(-1)], axis=2),) + \
            (None,) * (len(n.inputs) - 1)
    spatial = tuple(n.attrs["size"][1:])
    base = const(base_grid(spatial, n.attrs["align_corners"], theta.dtype), g)
    return (g.reshape(-1, math.prod(spatial), k).swapaxes(1, 2) @ base,)


def _affine_infer(theta, *srcs, size, align_corners, sizes=()):
    shape, dt = theta
    size = _affine_size(size, sizes, [tuple(shape)] + [tuple(s[0]) for s in srcs])
    k = len(size) - 1
    if len(shape) != 3 or shape[1] != k or shape[2] != k + 1:
        raise ValueError(f"affine_grid: theta of shape {tuple(shape)} must be (N, {k}, {k + 1}) "
                         f"for a {k}-d output")
    return (shape[0],) + tuple(size[1:]) + (k,), dt


AFFINE_GRID = register(OpDef(
    "affine_grid", _affine_fwd, vjp=_affine_vjp, infer=_affine_infer, saves=False,
    cost=io_cost(lambda i, o, **a: 2 * (len(a["size"])) * math.prod(d or 1 for d in o[0][0]))))


# --- public API ----------------------------------------------------------------------------------
def grid_sample(input, grid, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> Tensor:
    """Sample ``input`` (N, C, H, W) at ``grid`` (N, Ho, Wo, 2) points, or (N, C, D, H, W) at
    (N, Do, Ho, Wo, 3), as PyTorch's ``grid_sample``.

    ``grid[..., 0]`` is x (along W), ``grid[..., 1]`` y (along H), ``grid[..., 2]`` z (along
    D), normalised: -1 and 1 are the outer edges of the corner pixels, or their centres with
    ``align_corners=True``. ``mode``: 'bilinear' (trilinear for 5-d), 'nearest' (ties to
    even) or 'bicubic' (4-d only); ``padding_mode`` for points outside: 'zeros', 'border'
    (the nearest edge pixel) or 'reflection'. Differentiable w.r.t. input and grid (the grid
    gradient of 'nearest' is zero), to any order.

    >>> theta = tl.tensor([[[1.0, 0.0, 0.2], [0.0, 1.0, 0.0]]])
    >>> grid = F.affine_grid(theta, (1, 3, 8, 8), align_corners=False)
    >>> F.grid_sample(tl.randn(1, 3, 8, 8), grid, align_corners=False).shape
    (1, 3, 8, 8)
    """
    if state.autocast is not None:      # (float32 on the CPU, the widest dtype on CUDA)
        return autocast_call(grid_sample, "grid_sample", input, grid, mode, padding_mode,
                             align_corners)
    x = as_float_tensor(input, "grid_sample")
    g = as_float_tensor(grid, "grid_sample", "grid")
    if mode not in MODES:
        raise ValueError(f"grid_sample: mode must be one of {', '.join(map(repr, MODES))}, got "
                         f"{mode!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"grid_sample: padding_mode must be one of "
                         f"{', '.join(map(repr, PADDING_MODES))}, got {padding_mode!r}")
    _check_sample_shapes("grid_sample", tuple(x.shape), tuple(g.shape))
    if mode == "bicubic" and x.ndim != 4:
        raise ValueError(f"grid_sample: mode 'bicubic' needs a 4-d input (N, C, H, W), got "
                         f"shape {tuple(x.shape)}")
    if g.dtype != x.dtype:
        raise TypeError(f"grid_sample: grid has dtype {g.dtype}, the input {x.dtype}; they "
                        "must match (cast one of them)")
    return apply(GRID_SAMPLE, x, g, mode=mode, padding_mode=padding_mode,
                 align_corners=bool(align_corners), deriv=(0,) * (x.ndim - 2))


def affine_grid(theta, size, align_corners: bool | None = None) -> Tensor:
    """The sampling grid of affine maps ``theta`` (N, 2, 3) over an output of ``size``
    (N, C, H, W), or (N, 3, 4) over (N, C, D, H, W), for :func:`grid_sample`, as PyTorch's.

    Each output position's normalised coordinates (x, y[, z], 1) times ``theta`` transposed:
    (N, H, W, 2) or (N, D, H, W, 3). Differentiable w.r.t. ``theta``.

    >>> theta = tl.tensor([[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]])   # zoom in 2x
    >>> F.affine_grid(theta, (1, 1, 4, 4), align_corners=False).shape
    (1, 4, 4, 2)
    """
    t = as_float_tensor(theta, "affine_grid", "theta")
    try:
        size = tuple(size)
    except TypeError:
        raise TypeError(f"affine_grid: size must be a sequence (N, C, H, W) or (N, C, D, H, W), "
                        f"got {size!r}") from None
    if len(size) not in (4, 5):
        raise ValueError(f"affine_grid: size {size} must be (N, C, H, W) or (N, C, D, H, W)")
    k = len(size) - 2
    if t.ndim != 3 or tuple(t.shape[1:]) != (k, k + 1):
        raise ValueError(f"affine_grid: theta of shape {tuple(t.shape)} must be (N, {k}, {k + 1}) "
                         f"for size {size}")
    if t.shape[0] != size[0]:
        raise ValueError(f"affine_grid: size {size} has batch {size[0]}, theta "
                         f"{tuple(t.shape)} has {t.shape[0]}")
    from ..graph.tracer import TracedSize
    rest = size[1:]
    if any(isinstance(s, TracedSize) for s in rest):
        # sizes read from None dims (x.shape under capture): computed when the graph runs
        from ..graph.sizes import lower
        plain, sizes, srcs = lower(rest, [t], 1)
        if any(s < 1 for s in plain):
            raise ValueError(f"affine_grid: size {tuple(int.__int__(s) for s in size)} must "
                             "be positive")
        run_time = {p for p, _ in sizes}
        plain = tuple(0 if i in run_time else p for i, p in enumerate(plain))
        return apply(AFFINE_GRID, t, *srcs, size=plain, sizes=sizes,
                     align_corners=bool(align_corners))
    rest = tuple(int(s) for s in rest)
    if any(s < 1 for s in rest):
        raise ValueError(f"affine_grid: size {size} must be positive")
    return apply(AFFINE_GRID, t, size=rest, align_corners=bool(align_corners))


__all__ = ["affine_grid", "base_grid", "grid_sample"]
