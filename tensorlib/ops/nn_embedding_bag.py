"""embedding_bag as segment reductions: each bag's sum, mean or max straight from the weight
table, with no padding to the longest bag and no (bags, longest, dim) intermediate.

Bags are contiguous runs of the flat index list: a (B, M) input is B runs of M, a 1-d input
is split at ``offsets`` (an int tensor, so a captured graph takes it as an input). Sum and
mean are one sparse (B, V) product with the table (SciPy, when installed), the weight
gradient its transpose; max keeps, per bag and column, the table row that won (the first in
the bag on ties, as PyTorch), and its gradient scatters there.
"""
from __future__ import annotations

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from . import _scipy
from .nn_util import as_float_tensor, as_index_tensor, io_cost
from .registry import OpDef, register

MODES = ("sum", "mean", "max")


# --- layout: flat indices, bag starts, per-entry coefficients --------------------------------
def _layout(xp, idx, rest, last):
    """(flat indices (N,), indptr (B + 1,), per_sample_weights or None) of the op inputs."""
    if idx.ndim == 2:
        B, M = idx.shape
        psw = rest[0].reshape(-1) if rest else None
        return idx.reshape(-1), xp.arange(B + 1, dtype=np.int64) * M, psw
    off = rest[0].astype(np.int64, copy=False)
    psw = rest[1] if len(rest) > 1 else None
    if not last:
        off = xp.concatenate([off, xp.asarray([idx.shape[0]], dtype=np.int64)])
    elif off.shape[0]:
        # PyTorch: the final offset ends the last bag; entries past it belong to no bag
        end = int(off[-1])
        if end < idx.shape[0]:
            idx = idx[:end]
            psw = None if psw is None else psw[:end]
    return idx, off, psw


def _coef(xp, flat, indptr, psw, mode, padding_idx, dtype):
    """Each entry's weight in its bag's sum: per_sample_weights, 1, or 1 / (bag size) for
    mean; 0 for a padding entry (left out of the mean's count too)."""
    lengths = xp.diff(indptr)
    keep = None if padding_idx is None else (flat != padding_idx)
    if mode == "mean":
        if keep is None:
            counts = lengths
        else:
            csum = xp.concatenate([xp.zeros(1, np.int64), xp.cumsum(keep, dtype=np.int64)])
            counts = csum[indptr[1:]] - csum[indptr[:-1]]
        c = xp.repeat((1.0 / xp.maximum(counts, 1)).astype(dtype), lengths)
    elif psw is not None:
        c = psw.astype(dtype, copy=True)
    else:
        c = xp.ones(flat.shape[0], dtype)
    if keep is not None:
        c *= keep
    return c


def _bag_of_entry(xp, indptr, n):
    return xp.searchsorted(indptr[1:], xp.arange(n), side="right")


def _check(w, idx, *rest, last, padding_idx=None, **_):
    """Index range and offsets, before any kernel (eager and captured replays alike)."""
    if type(idx) is not np.ndarray:
        return      # on the GPU: a host copy here would synchronise every call
    V = w.shape[0]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= V):
        raise IndexError(f"embedding_bag: indices must lie in [0, {V}), got range "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    if idx.ndim == 1:
        off = rest[0].astype(np.int64, copy=False)
        n = idx.shape[0]
        full = off if last else np.append(off, n)
        if full.size < 2 and last:
            raise ValueError("embedding_bag: with include_last_offset, offsets need at least "
                             "one entry besides the last")
        if off.size and off[0] != 0 or (np.diff(full) < 0).any() or full[-1] > n:
            raise ValueError(f"embedding_bag: offsets {off.tolist()[:8]}... must start at 0 "
                             f"and not decrease past the input's {n} entries")


def _num_bags(idx, rest, last):
    if len(idx[0]) == 2:
        return idx[0][0]
    b = rest[0][0][0]
    return None if b is None else b - int(last)


# --- sum / mean ------------------------------------------------------------------------------
def _sum_fwd(xp, w, idx, *rest, mode, padding_idx, last, freq=False):
    flat, indptr, psw = _layout(xp, idx, rest, last)
    c = _coef(xp, flat, indptr, psw, mode, padding_idx, w.dtype)
    B = indptr.shape[0] - 1
    out = xp.zeros((B, w.shape[1]), w.dtype)
    xp.add.at(out, _bag_of_entry(xp, indptr, flat.shape[0]), w[flat] * c[:, None])
    return out


def _matrix(w_rows, idx, rest, mode, padding_idx, last, dtype):
    """The (B, V) sparse bag matrix (None without SciPy) and the layout."""
    flat, indptr, psw = _layout(np, idx, rest, last)
    c = _coef(np, flat, indptr, psw, mode, padding_idx, dtype)
    sp = _scipy.sparse()
    if sp is None or np.dtype(dtype) not in (np.float32, np.float64):
        return None, flat, indptr, c
    A = sp.csr_matrix((c, flat, indptr), shape=(indptr.shape[0] - 1, w_rows))
    return A, flat, indptr, c


def _kernel_args(w_dtype, idx, rest, mode, padding_idx, last):
    """(flat, indptr, coef) as the Cython bag kernels take them, or None (other dtypes)."""
    if np.dtype(w_dtype) not in (np.float32, np.float64):
        return None
    flat, indptr, psw = _layout(np, idx, rest, last)
    c = _coef(np, flat, indptr, psw, mode, padding_idx, w_dtype)
    return (np.ascontiguousarray(flat, np.int64), np.ascontiguousarray(indptr, np.int64),
            np.ascontiguousarray(c, w_dtype))


def _sum_cpu(w, idx, *rest, mode, padding_idx, last, freq=False):
    k = _kernel_args(w.dtype, idx, rest, mode, padding_idx, last)
    if k is not None:       # one pass per bag over its table rows, threads own bags
        from .. import _ops
        out = np.empty((k[1].shape[0] - 1, w.shape[1]), w.dtype)
        # float32: rows accumulated in registers (_bag.h)
        kernel = _ops.bag_sum_f32 if w.dtype == np.float32 else _ops.bag_sum
        kernel(np.ascontiguousarray(w), *k, out)
        return out
    A, flat, indptr, c = _matrix(w.shape[0], idx, rest, mode, padding_idx, last, w.dtype)
    if A is not None:
        return np.asarray(A @ np.ascontiguousarray(w), dtype=w.dtype)
    # NumPy form: one reduceat over the non-empty bags (bags are contiguous runs)
    out = np.zeros((indptr.shape[0] - 1, w.shape[1]), w.dtype)
    full = np.flatnonzero(np.diff(indptr))
    if full.size:
        out[full] = np.add.reduceat(w[flat] * c[:, None], indptr[full], axis=0)
    return out


def _grad_fwd(xp, g, idx, *rest, num_weights, mode, padding_idx, last, freq):
    flat, indptr, psw = _layout(xp, idx, rest, last)
    c = _coef(xp, flat, indptr, psw, mode, padding_idx, g.dtype)
    out = xp.zeros((num_weights, g.shape[1]), g.dtype)
    xp.add.at(out, flat, g[_bag_of_entry(xp, indptr, flat.shape[0])] * c[:, None])
    if freq:
        out /= xp.maximum(xp.bincount(flat, minlength=num_weights), 1)[:, None]
    return out


def _grad_cpu(g, idx, *rest, num_weights, mode, padding_idx, last, freq):
    k = _kernel_args(g.dtype, idx, rest, mode, padding_idx, last)
    if k is not None:
        from .. import _ops
        out = np.empty((num_weights, g.shape[1]), g.dtype)
        _ops.bag_sum_grad(np.ascontiguousarray(g), *k, out)
        if freq:
            out /= np.maximum(np.bincount(k[0], minlength=num_weights),
                              1)[:, None].astype(g.dtype)
        return out
    A, flat, indptr, c = _matrix(num_weights, idx, rest, mode, padding_idx, last, g.dtype)
    if A is not None:
        # the transpose is a CSC view: one axpy per entry into its row, no sort
        out = np.asarray(A.T @ np.ascontiguousarray(g), dtype=g.dtype)
    else:
        from .indexing import _add_rows
        out = np.zeros((num_weights, g.shape[1]), g.dtype)
        bag = _bag_of_entry(np, indptr, flat.shape[0])
        _add_rows(out, 0, flat.astype(np.intp), g[bag] * c[:, None])
    if freq:
        out /= np.maximum(np.bincount(flat, minlength=num_weights), 1)[:, None].astype(g.dtype)
    return out


def bag_ids(idx: Tensor, offsets: Tensor, last: bool) -> Tensor:
    """Each entry's bag of a 1-d input, in tensor ops (a captured graph follows the offsets
    it is fed): the number of bag starts at or before it, minus one."""
    from ..creation import zeros
    from .indexing import index_add
    starts = (offsets[:-1] if last else offsets).astype(np.int64)
    # one slot past the end: trailing empty bags start at N
    base = zeros(1, dtype=np.int64, device=idx.device)
    marks = _cat(((idx * 0).astype(np.int64), base))
    marks = index_add(marks, starts, starts * 0 + 1, axis=0)
    return marks.cumsum(0)[:-1] - 1


def _cat(ts):
    from .shape import concatenate
    return concatenate(list(ts), axis=0)


def _row_dots(idx, rest, last, rows_of, g, padding_idx):
    """d/d per_sample_weights: each entry's table row (``rows_of``) dotted with its bag's
    gradient; zero at padding entries."""
    from .elementwise import where
    from .nn_layers import embedding
    rows = embedding(idx, rows_of)
    if idx.ndim == 2:
        out = (rows * g.unsqueeze(1)).sum(axis=-1)
    else:
        out = (rows * g.take(bag_ids(idx, rest[0], last), axis=0)).sum(axis=-1)
    if padding_idx is not None:
        out = where(idx == padding_idx, 0.0, out)
    inside = _in_bags(idx, rest, last)
    if inside is not None:      # bag_ids gives entries past the final offset the last bag
        out = where(inside, out, 0.0)
    return out


def _in_bags(idx, rest, last):
    """(N,) bool: which entries of a 1-d input lie in a bag (with include_last_offset, those
    before the final offset), or None when all do."""
    if not (last and idx.ndim == 1):
        return None
    from ..creation import arange
    return arange(idx.shape[0], dtype=np.int64, device=idx.device) < rest[0][-1]


def _freq_scale(idx, V, dtype, inside=None):
    """1 / (times each row is indexed by an entry ``inside`` a bag), (V, 1), in tensor ops."""
    from ..creation import zeros
    from .indexing import index_add
    flat = idx.reshape(-1)
    ones = (flat * 0 + 1).astype(dtype) if inside is None else inside.astype(dtype)
    cnt = index_add(zeros(V, dtype=dtype, device=idx.device), flat, ones, axis=0)
    return (1.0 / cnt.clip(1.0, None)).unsqueeze(-1)


def _sum_vjp(n, g):
    w, idx, *rest = n.inputs
    a = dict(n.attrs)
    freq = a.pop("freq", False)
    gw = apply(EMBEDDING_BAG_GRAD, g, idx, *rest, num_weights=w.shape[0], freq=freq, **a)
    out = [gw, None] + [None] * len(rest)
    if len(rest) > (1 if idx.ndim == 1 else 0) and n.inputs[-1].requires_grad:
        out[-1] = _row_dots(idx, rest, a["last"], w, g, a["padding_idx"])
    return tuple(out)


def _grad_vjp(n, gg):
    g, idx, *rest = n.inputs
    a = dict(n.attrs)
    freq, V = a.pop("freq"), a.pop("num_weights")
    if freq:
        gg = gg * _freq_scale(idx, V, gg.dtype, _in_bags(idx, rest, a["last"]))
    out = [apply(EMBEDDING_BAG_SUM, gg, idx, *rest, **a), None] + [None] * len(rest)
    if len(rest) > (1 if idx.ndim == 1 else 0) and n.inputs[-1].requires_grad:
        out[-1] = _row_dots(idx, rest, a["last"], gg, g, a["padding_idx"])
    return tuple(out)


def _sum_infer(w, idx, *rest, mode, padding_idx, last, freq=False):
    return (_num_bags(idx, rest, last), w[0][1]), w[1]


# --- max -------------------------------------------------------------------------------------
def _kept(xp, flat, indptr, padding_idx):
    """The layout with padding entries dropped (still contiguous runs)."""
    if padding_idx is None:
        return flat, indptr
    keep = flat != padding_idx
    csum = xp.concatenate([xp.zeros(1, np.int64), xp.cumsum(keep, dtype=np.int64)])
    return flat[keep], csum[indptr]


def _max_fwd(xp, w, idx, *rest, padding_idx, last):
    flat, indptr, _ = _layout(xp, idx, rest, last)
    flat, indptr = _kept(xp, flat, indptr, padding_idx)
    B, D = indptr.shape[0] - 1, w.shape[1]
    rows = w[flat]
    bag = _bag_of_entry(xp, indptr, flat.shape[0])
    big = xp.full((B, D), -xp.inf, w.dtype)
    xp.maximum.at(big, bag, rows)
    won = rows == big[bag]
    # the first winner in its bag: the lowest entry position among the ties
    pos = xp.where(won, xp.arange(flat.shape[0])[:, None], flat.shape[0])
    first = xp.full((B, D), flat.shape[0], np.int64)
    xp.minimum.at(first, bag, pos)
    return _max_finish(xp, big, first, flat, indptr)


def _max_finish(xp, big, first, flat, indptr):
    empty = (xp.diff(indptr) == 0)[:, None]
    if not flat.shape[0]:       # every bag empty
        return xp.zeros_like(big), xp.full(big.shape, -1, np.int64)
    arg = xp.where(empty, -1, flat[xp.minimum(first, flat.shape[0] - 1)])
    return xp.where(empty, 0, big).astype(big.dtype), arg.astype(np.int64)


def _max_cpu(w, idx, *rest, padding_idx, last):
    flat, indptr, _ = _layout(np, idx, rest, last)
    flat, indptr = _kept(np, flat, indptr, padding_idx)
    B, D = indptr.shape[0] - 1, w.shape[1]
    if w.dtype in (np.float32, np.float64):
        from .. import _ops
        out, arg = np.empty((B, D), w.dtype), np.empty((B, D), np.int64)
        _ops.bag_max(np.ascontiguousarray(w), np.ascontiguousarray(flat, np.int64),
                     np.ascontiguousarray(indptr, np.int64), out, arg)
        return out, arg
    big = np.zeros((B, D), w.dtype)
    first = np.zeros((B, D), np.int64)
    full = np.flatnonzero(np.diff(indptr))
    if full.size:
        starts = indptr[full]
        rows = w[flat]
        big[full] = np.maximum.reduceat(rows, starts, axis=0)
        lengths = np.diff(np.append(starts, flat.shape[0]))
        top = np.repeat(big[full], lengths, axis=0)
        won = (rows == top) | (np.isnan(rows) & np.isnan(top))
        dt = np.int32 if flat.shape[0] < 2**31 else np.int64
        pos = np.where(won, np.arange(flat.shape[0], dtype=dt)[:, None], flat.shape[0])
        first[full] = np.minimum.reduceat(pos, starts, axis=0)
    return _max_finish(np, big, first, flat, indptr)


def _max_vjp(n, g, _garg):
    from ..creation import zeros
    from .elementwise import where
    from .indexing import scatter_add
    w = n.inputs[0]
    arg = n.output(1).detach()
    hit = arg >= 0                      # an empty bag's gradient goes nowhere
    gw = scatter_add(zeros(tuple(w.shape), dtype=g.dtype, device=g.device),
                     where(hit, arg, 0), where(hit, g, 0.0), 0)
    return (gw,) + (None,) * (len(n.inputs) - 1)


def _max_infer(w, idx, *rest, padding_idx, last):
    s = (_num_bags(idx, rest, last), w[0][1])
    return (s, w[1]), (s, np.dtype(np.int64))


# --- ONNX ------------------------------------------------------------------------------------
# 2-d input: Gather to (B, M, D) and reduce over M (opset 13). 1-d input with offsets: each
# entry's bag (a scatter-add of the bag starts, then CumSum), then ScatterElements of the
# rows into the (B, D) result by bag, with reduction 'add' (opset 16) for sum and mean, 'max'
# (opset 18) for max; the bag count stays dynamic.
def _onnx_rows(ctx, n):
    """(rows (B, M, D), mask (B, M) float or None) of a 2-d node."""
    w, idx = n.inputs[0], n.inputs[1]
    rows = ctx.op("Gather", [ctx.name(w), ctx.name(idx)], axis=0)
    keep = _onnx_keep(ctx, n)
    return rows, None if keep is None else ctx.cast(keep, np.bool_, np.dtype(w.dtype))


def _onnx_keep(ctx, n):
    """Bool mask of the entries that are not padding_idx, or None."""
    idx, pad = n.inputs[1], n.attrs["padding_idx"]
    if pad is None:
        return None
    eq = ctx.op("Equal", [ctx.name(idx), ctx.const(np.asarray(pad, np.dtype(idx.dtype)))])
    return ctx.op("Not", [eq])


def _onnx_fill(ctx, shape, value, dt):
    from onnx import numpy_helper
    return ctx.op("ConstantOfShape", [shape],
                  value=numpy_helper.from_array(np.asarray([value], dt), "value"))


def _onnx_segments(ctx, n):
    """A 1-d node as segments: (rows (N, D), keep (N,) bool or None, bag of each entry
    (N,) int64, scatter(fill, updates): ScatterElements of (N, D) updates into a (B, D)
    tensor of ``fill`` by bag)."""
    w, idx, off = n.inputs[0], n.inputs[1], n.inputs[2]
    i64, dt = np.dtype(np.int64), np.dtype(w.dtype)
    ids = ctx.name(idx)
    offs = ctx.cast(ctx.name(off), np.dtype(off.dtype), i64)
    starts = ctx.slice(offs, [0], [-1], [0]) if n.attrs["last"] else offs
    one = ctx.ints([1])
    # marks[k]: how many bags start at entry k (N + 1 slots: trailing empty bags start at N);
    # their running sum minus one is each entry's bag
    n_ids = ctx.op("Shape", [ids])
    marks = _onnx_fill(ctx, ctx.op("Add", [n_ids, one]), 0, i64)
    ones = ctx.op("Expand", [one, ctx.op("Shape", [starts])])
    marks = ctx.op("ScatterElements", [marks, starts, ones], axis=0, reduction="add")
    total = ctx.op("CumSum", [marks, ctx.const(np.asarray(0, i64))])
    bag = ctx.op("Sub", [ctx.slice(total, [0], [-1], [0]), one])
    keep = _onnx_keep(ctx, n)
    if n.attrs["last"]:
        # entries at or past the final offset are in no bag
        end = ctx.slice(offs, [-1], [np.iinfo(np.int64).max], [0])
        pos = ctx.op("Range", [ctx.const(np.asarray(0, i64)), ctx.squeeze(n_ids, [0]),
                               ctx.const(np.asarray(1, i64))])
        inside = ctx.op("Less", [pos, end])
        keep = inside if keep is None else ctx.op("And", [keep, inside])
    rows = ctx.op("Gather", [ctx.name(w), ids], axis=0)
    width = ctx.slice(ctx.op("Shape", [ctx.name(w)]), [1], [2], [0])
    out_shape = ctx.op("Concat", [ctx.op("Shape", [starts]), width], axis=0)
    where = ctx.op("Expand", [ctx.unsqueeze(bag, [1]), ctx.op("Shape", [rows])])

    def scatter(fill, updates, reduction="add"):
        return ctx.op("ScatterElements", [_onnx_fill(ctx, out_shape, fill, dt), where, updates],
                      axis=0, reduction=reduction)
    return rows, keep, bag, scatter


def _onnx_counts(ctx, n, bag, keep, out):
    """(B,) how many entries of each bag count (as the weight's dtype)."""
    dt = np.dtype(n.inputs[0].dtype)
    kept = ctx.op("Expand", [ctx.const(np.ones(1, dt)), ctx.op("Shape", [bag])]) \
        if keep is None else ctx.cast(keep, np.bool_, dt)
    zeros = _onnx_fill(ctx, ctx.slice(ctx.op("Shape", [out]), [0], [1], [0]), 0, dt)
    return ctx.op("ScatterElements", [zeros, bag, kept], axis=0, reduction="add")


def _onnx_sum_1d(ctx, n):
    ctx.need_opset(16, "EmbeddingBag over offsets (ScatterElements reduction='add')")
    dt = np.dtype(n.inputs[0].dtype)
    rows, keep, bag, scatter = _onnx_segments(ctx, n)
    if len(n.inputs) > 3:
        rows = ctx.op("Mul", [rows, ctx.unsqueeze(ctx.name(n.inputs[3]), [1])])
    if keep is not None:        # (a Where, not a product: an inf row left out stays out)
        rows = ctx.op("Where", [ctx.unsqueeze(keep, [1]), rows, ctx.const(np.zeros(1, dt))])
    out = scatter(0, rows)
    if n.attrs["mode"] != "mean":
        return out
    # at least 1: an empty bag stays 0
    cnt = ctx.op("Max", [_onnx_counts(ctx, n, bag, keep, out), ctx.const(np.asarray(1, dt))])
    return ctx.op("Div", [out, ctx.unsqueeze(cnt, [1])])


def _onnx_max_1d(ctx, n):
    ctx.need_opset(18, "EmbeddingBag max over offsets (ScatterElements reduction='max')")
    dt = np.dtype(n.inputs[0].dtype)
    rows, keep, bag, scatter = _onnx_segments(ctx, n)
    if keep is not None:
        rows = ctx.op("Where", [ctx.unsqueeze(keep, [1]), rows,
                                ctx.const(np.asarray([-np.inf], dt))])
    big = scatter(-np.inf, rows, "max")
    # onnxruntime's max reduction drops NaN, eager's max keeps it: a NaN-or-0 scatter-add
    nan = ctx.op("Where", [ctx.op("IsNaN", [rows]), ctx.const(np.asarray([np.nan], dt)),
                           ctx.const(np.zeros(1, dt))])
    big = ctx.op("Add", [big, scatter(0, nan)])
    # a bag with no entry that counts gives 0, as eager
    empty = ctx.op("Equal", [_onnx_counts(ctx, n, bag, keep, big), ctx.const(np.zeros(1, dt))])
    return [ctx.op("Where", [ctx.unsqueeze(empty, [1]), ctx.const(np.zeros(1, dt)), big]), None]


def _onnx_sum(ctx, n):
    if n.inputs[1].ndim != 2:
        return _onnx_sum_1d(ctx, n)
    rows, mask = _onnx_rows(ctx, n)
    dt = np.dtype(n.inputs[0].dtype)
    mode = n.attrs["mode"]
    coef = mask
    if len(n.inputs) > 2:
        psw = ctx.name(n.inputs[2])
        coef = psw if coef is None else ctx.op("Mul", [psw, coef])
    if mode == "mean":
        if coef is None:
            return ctx.reduce("Mean", rows, [1], False)
        cnt = ctx.op("Max", [ctx.reduce("Sum", coef, [1], True), ctx.const(np.asarray(1, dt))])
        coef = ctx.op("Div", [coef, cnt])
    if coef is not None:
        rows = ctx.op("Mul", [rows, ctx.unsqueeze(coef, [2])])
    return ctx.reduce("Sum", rows, [1], False)


def _onnx_max(ctx, n):
    if n.inputs[1].ndim != 2:
        return _onnx_max_1d(ctx, n)
    rows, mask = _onnx_rows(ctx, n)
    if mask is None:
        return [ctx.reduce("Max", rows, [1], False), None]
    dt = np.dtype(n.inputs[0].dtype)
    keep = ctx.unsqueeze(ctx.cast(mask, dt, np.bool_), [2])
    low = ctx.op("Where", [keep, rows, ctx.const(np.asarray(-np.inf, dt))])
    big = ctx.reduce("Max", low, [1], False)
    any_ = ctx.op("Greater", [ctx.reduce("Sum", mask, [1], True), ctx.const(np.asarray(0, dt))])
    return [ctx.op("Where", [any_, big, ctx.const(np.asarray(0, dt))]), None]


EMBEDDING_BAG_SUM = register(OpDef(
    "embedding_bag_sum", _sum_fwd, kernels={"cpu": _sum_cpu}, vjp=_sum_vjp, check=_check,
    saves=False, infer=_sum_infer, cost=io_cost(), onnx=_onnx_sum))
EMBEDDING_BAG_GRAD = register(OpDef(
    "embedding_bag_grad", _grad_fwd, kernels={"cpu": _grad_cpu}, vjp=_grad_vjp, saves=False,
    cost=io_cost(),
    infer=lambda g, i, *r, num_weights, **_: ((num_weights, g[0][-1]), g[1])))
EMBEDDING_BAG_MAX = register(OpDef(
    "embedding_bag_max", _max_fwd, kernels={"cpu": _max_cpu}, vjp=_max_vjp, check=_check,
    saves=False, saves_output=(1,), infer=_max_infer, cost=io_cost(), onnx=_onnx_max))


# --- the public function ---------------------------------------------------------------------
def _no_bags(w: Tensor, idx: Tensor, last: bool) -> Tensor:
    """Empty offsets: no bags, a (0, D) result, as PyTorch (which refuses it with
    include_last_offset, where one offset is the end of the input)."""
    if last:
        raise ValueError("embedding_bag: include_last_offset=True needs at least 1 offset "
                         "(the end of the last bag), got none")
    V = w.shape[0]
    if idx.numel() and type(idx._data) is np.ndarray:
        lo, hi = int(idx._data.min()), int(idx._data.max())
        if lo < 0 or hi >= V:
            raise IndexError(f"embedding_bag: indices must lie in [0, {V}), got range "
                             f"[{lo}, {hi}]")
    return w[:0]        # a view of w: the (empty) gradient still reaches the table


def embedding_bag(input, weight, offsets=None, mode: str = "mean", per_sample_weights=None,
                  padding_idx: int | None = None, include_last_offset: bool = False,
                  max_norm: float | None = None, norm_type: float = 2.0,
                  scale_grad_by_freq: bool = False) -> Tensor:
    """Sums, means or maxima of bags of rows of ``weight`` (V, D), as PyTorch's
    ``embedding_bag``: ``input`` is (B, N) (one bag per row) or 1-d with ``offsets`` (bag i
    is ``input[offsets[i]:offsets[i+1]]``; the last runs to the end unless
    ``include_last_offset``, where the final offset ends it and later entries are in no
    bag: the CSR reading of PyTorch's docs, which its kernels follow only for float32 sums).
    Each bag is reduced straight from the table (no padding to
    the longest bag); entries equal to ``padding_idx`` are left out; an empty bag gives
    zeros. ``per_sample_weights`` (input's shape) weight the entries of a sum. In max mode
    the gradient goes to the first row of the bag holding the maximum. ``max_norm``
    renormalises the looked-up rows of ``weight`` in place first, as :func:`embedding`;
    ``scale_grad_by_freq`` divides each row's gradient by how often the input holds it.

    >>> w = tl.randn(10, 3)
    >>> F.embedding_bag(tl.tensor([1, 2, 4, 5, 4]), w, tl.tensor([0, 2]), mode="sum").shape
    (2, 3)
    """
    from .nn_layers import embedding_renorm_
    if mode not in MODES:
        raise ValueError(f"embedding_bag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    idx = as_index_tensor(input, "embedding_bag", "input")
    w = as_float_tensor(weight, "embedding_bag", "weight")
    if w.ndim != 2:
        raise ValueError(f"embedding_bag: weight must be 2-D (num_embeddings, dim), got shape "
                         f"{tuple(w.shape)}")
    V = w.shape[0]
    psw = None if per_sample_weights is None else as_float_tensor(
        per_sample_weights, "embedding_bag", "per_sample_weights")
    if psw is not None and mode != "sum":
        raise ValueError("embedding_bag: per_sample_weights only go with mode='sum'")
    if scale_grad_by_freq and mode == "max":
        raise ValueError("embedding_bag: scale_grad_by_freq does not go with mode='max'")
    if padding_idx is not None:
        if not -V <= padding_idx < V:
            raise ValueError(f"embedding_bag: padding_idx {padding_idx} is out of range for "
                             f"{V} embeddings")
        padding_idx = int(padding_idx) % V
    rest = []
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("embedding_bag: offsets only go with a 1-d input")
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("embedding_bag: a 1-d input needs offsets (where each bag starts)")
        off = as_index_tensor(offsets, "embedding_bag", "offsets")
        if off.ndim != 1:
            raise ValueError(f"embedding_bag: offsets must be 1-d, got shape {tuple(off.shape)}")
        rest.append(off)
    else:
        raise ValueError(f"embedding_bag: input must be 1-d (with offsets) or 2-d, got shape "
                         f"{tuple(idx.shape)}")
    if psw is not None:
        if tuple(psw.shape) != tuple(idx.shape):
            raise ValueError(f"embedding_bag: per_sample_weights {tuple(psw.shape)} must match "
                             f"the input {tuple(idx.shape)}")
        if psw.dtype != w.dtype:
            psw = psw.astype(w.dtype)
        rest.append(psw)
    if max_norm is not None:
        # (under capture a recorded write of w: the bags below read the written table)
        embedding_renorm_(w, idx, max_norm, norm_type)
    last = bool(include_last_offset) and idx.ndim == 1
    if idx.ndim == 1 and rest[0].shape[0] == 0:
        return _no_bags(w, idx, last)
    if mode == "max":
        return apply(EMBEDDING_BAG_MAX, w, idx, *rest, padding_idx=padding_idx, last=last)[0]
    # only a set flag is an attribute: graphs saved before it existed stay the same
    extra = {"freq": True} if scale_grad_by_freq else {}
    return apply(EMBEDDING_BAG_SUM, w, idx, *rest, mode=mode, padding_idx=padding_idx,
                 last=last, **extra)

