"""ONNX lowerings of the ops behind ``cummax``/``cummin`` and ``mode`` (``cum_extreme``,
``mode_indices``) and of ``cdist_l1_grad``.

ONNX has no running max/min nor a mode, so both compare every pair of positions along the
dim: an (..., n, n) intermediate, fine for the inference graphs that get exported. Each rule
moves the dim last, works on the last two axes and moves it back; the length n may be
dynamic (it is read with ``Shape``).
"""
from __future__ import annotations

import numpy as np


def _dt(v) -> np.dtype:
    return np.dtype(v.dtype)


def _to_last(ctx, x: str, axis: int, nd: int):
    """``x`` with ``axis`` moved last, and the permutation that moves it back (or None)."""
    if axis == nd - 1:
        return x, None
    perm = [a for a in range(nd) if a != axis] + [axis]
    return ctx.op("Transpose", [x], perm=perm), [int(i) for i in np.argsort(perm)]


def _back(ctx, y: str, inv):
    return y if inv is None else ctx.op("Transpose", [y], perm=inv)


def _positions(ctx, x: str) -> str:
    """0 .. n - 1 (int64), n the length of ``x``'s last axis."""
    n = ctx.op("Gather", [ctx.op("Shape", [x]), ctx.ints([-1])], axis=0)
    return ctx.op("Range", [ctx.const(np.int64(0)), ctx.squeeze(n, [0]),
                            ctx.const(np.int64(1))])


def _extreme_fill(dt: np.dtype, is_max: bool):
    """A value no element beats (for a running max: the lowest of the dtype)."""
    if dt.kind == "f":
        return -np.inf if is_max else np.inf
    info = np.iinfo(dt)
    return info.min if is_max else info.max


def cum_extreme(ctx, n):
    """values[i] = max over j <= i (a NaN there wins), indices[i] = the last such j."""
    v = n.inputs[0]
    dt, nd, axis, is_max = _dt(v), len(v.shape), int(n.attrs["axis"]), n.attrs["mode"] == "max"
    if nd == 0:
        return [ctx.name(v), ctx.const(np.zeros((), np.int64))]
    x = ctx.name(v)
    work = np.dtype(np.int32) if dt in (np.bool_, np.int8, np.uint8, np.int16) else dt
    x = ctx.cast(x, dt, work)
    x, inv = _to_last(ctx, x, axis, nd)
    pos = _positions(ctx, x)
    tri = ctx.op("LessOrEqual", [ctx.unsqueeze(pos, [0]), ctx.unsqueeze(pos, [1])])  # j <= i
    xj = ctx.unsqueeze(x, [-2])                                        # (..., 1, n): x[j]
    fill = ctx.const(np.asarray(_extreme_fill(work, is_max), work))
    best = ctx.reduce("Max" if is_max else "Min", ctx.op("Where", [tri, xj, fill]), [-1],
                      False)
    if work.kind == "f":
        nan_j = ctx.op("And", [tri, ctx.op("IsNaN", [xj])])
        seen = ctx.reduce("Max", ctx.cast(nan_j, np.bool_, np.int32), [-1], False)
        nan = ctx.const(np.asarray(np.nan, work))
        best = ctx.op("Where", [ctx.cast(seen, np.int32, np.bool_), nan, best])
        # once a NaN is seen only NaNs match (NaN == NaN is false: IsNaN stands in)
        hit = ctx.op("Or", [ctx.op("Equal", [xj, ctx.unsqueeze(best, [-1])]),
                            ctx.op("IsNaN", [xj])])
    else:
        hit = ctx.op("Equal", [xj, ctx.unsqueeze(best, [-1])])
    cand = ctx.op("Where", [ctx.op("And", [tri, hit]), ctx.unsqueeze(pos, [0]),
                            ctx.const(np.int64(-1))])
    idx = ctx.reduce("Max", cand, [-1], False)
    best = ctx.cast(best, work, dt)
    return [_back(ctx, best, inv), _back(ctx, idx, inv)]


def mode_indices(ctx, n):
    """The last index of the smallest most frequent value (NaNs count as one value, larger
    than every number; a NaN mode gives its first position), the dim kept."""
    v = n.inputs[0]
    dt, nd, axis = _dt(v), len(v.shape), int(n.attrs["axis"])
    x = ctx.name(v)
    work = np.dtype(np.int32) if dt in (np.bool_, np.int8, np.uint8, np.int16) else dt
    x = ctx.cast(x, dt, work)
    x, inv = _to_last(ctx, x, axis, nd)
    pos = _positions(ctx, x)
    xi, xj = ctx.unsqueeze(x, [-1]), ctx.unsqueeze(x, [-2])            # (..., n, 1), (..., 1, n)
    count = ctx.reduce("Sum", ctx.cast(ctx.op("Equal", [xi, xj]), np.bool_, np.int64), [-1],
                       False)
    if work.kind == "f":
        nan = ctx.op("IsNaN", [x])
        nan_i = ctx.cast(nan, np.bool_, np.int64)
        # Equal never pools NaNs: each NaN's count is the number of NaNs in its slice
        count = ctx.op("Add", [count, ctx.op("Mul", [
            nan_i, ctx.reduce("Sum", nan_i, [-1], True)])])
    most = ctx.reduce("Max", count, [-1], True)
    cand = ctx.op("Equal", [count, most])
    top = ctx.const(np.asarray(np.inf if work.kind == "f" else np.iinfo(work).max, work))
    if work.kind == "f":
        cand = ctx.op("And", [cand, ctx.op("Not", [nan])])
    value = ctx.reduce("Min", ctx.op("Where", [cand, x, top]), [-1], True)
    last = ctx.reduce("Max", ctx.op("Where", [ctx.op("Equal", [x, value]), pos,
                                              ctx.const(np.int64(-1))]), [-1], True)
    if work.kind == "f":
        # no number is among the most frequent: NaN is the mode, at its first position
        has_num = ctx.reduce("Max", ctx.cast(cand, np.bool_, np.int64), [-1], True)
        first_nan = ctx.reduce("Min", ctx.op("Where", [nan, pos, ctx.const(np.int64(2**62))]),
                               [-1], True)
        last = ctx.op("Where", [ctx.op("Greater", [has_num, ctx.const(np.int64(0))]), last,
                                first_nan])
    return _back(ctx, last, inv)


def cdist_l1_grad(ctx, n):
    """s = sign(x1_i - x2_j) g_ij: (sum_j s, -sum_i s)."""
    g, x1, x2 = ctx.ins(n)
    d = ctx.op("Sub", [ctx.unsqueeze(x1, [-2]), ctx.unsqueeze(x2, [-3])])   # (..., P, R, M)
    s = ctx.op("Mul", [ctx.op("Sign", [d]), ctx.unsqueeze(g, [-1])])
    return [ctx.reduce("Sum", s, [-2], False),
            ctx.op("Neg", [ctx.reduce("Sum", s, [-3], False)])]
