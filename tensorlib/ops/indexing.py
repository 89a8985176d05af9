"""Indexing: getitem/setitem, gather/scatter, take/index_add, masked_fill, one_hot."""
from __future__ import annotations

import math
import re
import warnings

import numpy as np

from .._apply import apply
from .._state import state as _state
from .._tensor import Tensor
from ..errors import DTypeError, IndexRangeError, ShapeError
from .index_traced import is_traced, refuse_mask
from .registry import OpDef, register
from .size_guard import traced
from ._util import fill_int, norm_axis, one_of, to_tensor, unbroadcast, weak_scalar


def _normalize_key(key, keep_traced: bool = False):
    """Key as a tuple of ints/slices/None/Ellipsis/arrays; also whether it is basic. Under
    capture an integer index tensor that is a traced value stays a ``Tensor`` in the tuple
    (an input of the graph's ops, see :mod:`.index_traced`); a traced bool mask is refused.
    ``keep_traced``: a slice's start or stop read from a None dim (a TracedSize) stays one,
    for :func:`getitem` to compute it when the graph runs."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    basic = True
    capturing = _state.tracer is not None
    for k in key:
        if isinstance(k, Tensor) and k._device.type == "vmap" and k.dtype.kind in "iu" \
                and k.dtype != np.uint8:
            # an index tensor inside tl.vmap (per-example indices): the ops of a traced
            # index, whose vmap rules batch it (its values cannot be read here)
            out.append(k)
            basic = False
            continue
        if capturing and isinstance(k, Tensor) and is_traced(k):
            if k.dtype == np.bool_ or k.dtype == np.uint8:    # uint8: a mask (see below)
                refuse_mask(k)
            if k.dtype.kind not in "iu":
                raise IndexError(f"getitem: tensors used as indices must be integer or bool, "
                                 f"got {k.dtype}")
            out.append(k)
            basic = False
            continue
        if isinstance(k, Tensor):   # not traced: is_traced had the capture guard its value
            k = k._data  # stays on its device: a GPU index must not force a copy to the host
            if k.dtype.kind not in "biu":
                raise IndexError(f"getitem: tensors used as indices must be integer or bool, "
                                 f"got {k.dtype}")
            if k.dtype == np.uint8:
                k = _uint8_mask(k)
            basic = False
        elif isinstance(k, (bool, np.bool_)):
            k = np.asarray(k)
            basic = False
        elif isinstance(k, (int, np.integer)):
            k = int(k)
        elif isinstance(k, range):      # x[range(n), t], as PyTorch (a list of its values)
            k = np.arange(k.start, k.stop, k.step, dtype=np.int64)
            basic = False
        elif isinstance(k, (list, np.ndarray)):
            # an empty list selects nothing (NumPy reads it as float64, then refuses it)
            k = np.asarray(k, dtype=np.int64) if isinstance(k, list) and not k else np.asarray(k)
            if k.dtype.kind not in "biu":
                raise IndexError(f"getitem: arrays used as indices must be integer or bool, "
                                 f"got {k.dtype}")
            basic = False
        elif k is None or k is Ellipsis or isinstance(k, slice):
            if isinstance(k, slice):
                k = slice(*(None if v is None else v if keep_traced and traced(v)
                            and i < 2 else int(v)
                            for i, v in enumerate((k.start, k.stop, k.step))))
                if k.step == 0:
                    raise ValueError("getitem: slice step cannot be zero")
        else:
            raise IndexError(f"getitem: unsupported index {k!r}; use ints, slices, None, "
                             "Ellipsis, or integer/bool tensors")
        out.append(k)
    return tuple(out), basic


def _uint8_mask(k):
    """A uint8 index tensor read as a bool mask, as PyTorch still does (with its deprecation
    warning); NumPy arrays and lists of uint8 keep NumPy's meaning (integer indices)."""
    warnings.warn("indexing with dtype uint8 is deprecated (PyTorch reads it as a bool mask, "
                  "and so does tensorlib); use a bool tensor instead", UserWarning, stacklevel=4)
    return k != 0


def _drop_empty_ellipsis(index: tuple, ndim: int) -> tuple:
    """``index`` without an Ellipsis that stands for no dims, in a key with index arrays:
    PyTorch then counts the arrays on either side of it as adjacent (their broadcast dims
    stay in place; NumPy's rule would move them to the front). A no-op otherwise."""
    if not any(k is Ellipsis for k in index) or not any(hasattr(k, "dtype") for k in index):
        return index
    used = sum(0 if k is None or k is Ellipsis else
               (k.ndim if hasattr(k, "dtype") and k.dtype == np.bool_ else 1) for k in index)
    if used != ndim:
        return index
    return tuple(k for k in index if k is not Ellipsis)


def _on(xp, index):
    """Index arrays on the indexed array's backend (a CPU index for a GPU array or back)."""
    if xp is np:
        return tuple(k.get() if hasattr(k, "__cuda_array_interface__") else k for k in index)
    return tuple(xp.asarray(k) if isinstance(k, np.ndarray) else k for k in index)


_SYMBOLIC = 1 << 40  # stands in for a None dim; slicing it leaves a dim near this size


def _index_infer(x, *, index):
    # a zero-strided array of the input's shape costs no memory whatever the sizes; a None
    # dim stands in as a huge size (sliced, it stays above half of it). With several None
    # dims the stand-in shrinks so that their product still fits NumPy's iterator.
    nones = sum(d is None for d in x[0])
    fixed = max(1, math.prod(d for d in x[0] if d is not None)) * np.dtype(x[1]).itemsize
    big = min(_SYMBOLIC, max(1 << 10, int((2.0 ** 60 / fixed) ** (1.0 / max(nones, 1)))))
    dummy = np.broadcast_to(np.zeros((), x[1]), tuple(big if d is None else d
                                                      for d in x[0]))
    index = _drop_empty_ellipsis(index, len(x[0]))
    if nones:
        index = _symbolic_slices(index, x[0])
    if any(isinstance(k, np.ndarray) for k in index):
        _check_arrays(x[0], index)
        shape = _advanced_shape(dummy, index)
    else:
        shape = dummy[index].shape
    return tuple(None if d > big // 2 else d for d in shape), x[1]


def _symbolic_slices(index: tuple, shape) -> tuple:
    """``index`` with each slice of a None dim of ``shape`` made full (its length is then
    None) or empty: its length is Python's clamped ``len(range(*k.indices(n)))``, which for
    any slice that can select something changes with ``n`` (``x[0:3]`` is 2 long at n=2,
    ``x[::2]`` is ceil(n / 2)), so only one empty at every ``n`` has a fixed length."""
    out = list(index)
    at = [i for i, k in enumerate(index) if k is not None and k is not Ellipsis]
    for i, (k, axis, _) in zip(at, index_axes(index, len(shape))):
        if isinstance(k, slice) and axis < len(shape) and shape[axis] is None:
            out[i] = slice(0, 0) if _always_empty(k) else slice(None)
    return tuple(out)


def _always_empty(k: slice) -> bool:
    """Whether slice ``k`` selects nothing from an axis of every length: its clamped bounds
    move linearly in the length between the points where a bound's clamp switches (at the
    bounds' magnitudes), so checking there, next to them and far out covers every length."""
    ns = {0, 1, 1 << 40}
    for b in (k.start, k.stop):
        if b is not None:
            ns.update(max(0, abs(b) + d) for d in (-1, 0, 1))
    return all(len(range(*k.indices(n))) == 0 for n in ns)


def _advanced_shape(dummy, index) -> tuple:
    """The shape NumPy's advanced indexing gives, without indexing: gathering from the
    zero-strided stand-in would allocate its full (huge) result. Each array (and, beside
    one, each int) is swapped for length-1 slices to index the rest as a view; the index
    arrays' broadcast shape then goes where NumPy puts it: in place of the first when they
    are adjacent, in front otherwise."""
    # adv: each array's shape; where: its first basic item and how many; at: its index item
    adv, basic, where, at = [], [], [], []
    for n, k in enumerate(index):
        if isinstance(k, (np.ndarray, int)):
            at.append(n)
        if isinstance(k, np.ndarray) and k.dtype == np.bool_:
            adv.append((int(np.count_nonzero(k)),))
            where.append((len(basic), max(k.ndim, 1)))
            basic.extend([slice(0, 1)] * k.ndim if k.ndim else [None])
        elif isinstance(k, (np.ndarray, int)):
            adv.append(np.shape(k))
            where.append((len(basic), 1))
            basic.append(slice(0, 1))
        else:
            basic.append(k)
    bshape = np.broadcast_shapes(*adv)
    rest = dummy[tuple(basic)].shape
    pos, out = [], 0                    # each basic item's first dim in ``rest``
    ell = len(dummy.shape) - sum(k is not None and k is not Ellipsis for k in basic)
    for k in basic:
        pos.append(out)
        out += ell if k is Ellipsis else 1
    drop = {pos[i] + j for i, m in where for j in range(m)}
    kept = [d for i, d in enumerate(rest) if i not in drop]
    if at[-1] - at[0] == len(at) - 1:       # adjacent: in place of the first
        cut = sum(1 for i in range(min(drop)) if i not in drop)
        return tuple(kept[:cut]) + bshape + tuple(kept[cut:])
    return bshape + tuple(kept)


def index_axes(index: tuple, ndim: int):
    """(item, first input axis, how many axes) for each item of a normalised ``index`` that
    indexes axes of an ``ndim``-dim array (not None, nor Ellipsis, which it expands)."""
    def width(k):
        return k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 1
    consumed = sum(0 if k is None or k is Ellipsis else width(k) for k in index)
    axis = 0
    for k in index:
        if k is Ellipsis:
            axis += ndim - consumed
        elif k is not None:
            yield k, axis, width(k)
            axis += width(k)


def _check_arrays(shape, index) -> None:
    """NumPy's range and bool-shape errors for each array (or int) of ``index``: each is
    tried alone on a zero-strided stand-in of the axes it indexes (its result is no larger
    than the index); over a None dim (in ``shape``) the run decides."""
    for k, axis, m in index_axes(index, len(shape)):
        if isinstance(k, (np.ndarray, int)) and None not in shape[axis:axis + m]:
            np.broadcast_to(np.zeros((), np.int8), shape[axis:axis + m])[k]


def _getitem_grad_fwd(xp, g, index, shape, basic):
    z = xp.zeros(shape, g.dtype)
    index = _on(xp, index)
    if basic:
        z[index] = g
    elif xp is np:
        _getitem_grad_np(z, index, g)
    else:
        _add_at(xp, z, index, g)
    return z


def _add_at(xp, z, index, v):
    xp.add.at(z, index, v)      # NumPy's and CuPy's (cupyx.scatter_add is deprecated)


# --- CPU scatter-add kernels ----------------------------------------------------------
# ``np.add.at`` with a tuple of index arrays costs ~6 ns an element (a GNN's 50000 x 64
# messages: 20 ms); with one 1-d index into a 1-d target NumPy 2 runs a tight loop (~1 ns),
# and where whole rows move together (an index constant outside the scatter axis: index_add,
# an expanded scatter index, x[idx]'s backward) a sparse (n, m) one-hot matrix times the
# (m, row) sources is ~0.5 ms (SciPy's csc_matvecs: one axpy per source row, no sort).

_SPARSE_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64))


def _compact(a: np.ndarray, keep: int = -1) -> np.ndarray:
    """``a`` with each broadcast (zero-stride) dim but ``keep`` cut to length 1: the same
    values, read once (an expanded index's min/max then costs its rows, not its
    elements)."""
    cut = [s == 0 and n > 1 and i != keep for i, (s, n) in enumerate(zip(a.strides, a.shape))]
    if not any(cut):
        return a
    return a[tuple(slice(0, 1) if c else slice(None) for c in cut)]


def _wrapped(idx: np.ndarray, n: int) -> np.ndarray:
    """``idx`` (in [-n, n)) with negative entries counted from the end."""
    if idx.dtype.kind == "i" and idx.size and int(_compact(idx).min()) < 0:
        return np.where(idx < 0, idx + n, idx)
    return idx


def _row_index(idx: np.ndarray, axis: int):
    """The 1-d row index when ``idx`` is the same along every dim but ``axis`` (a broadcast
    index, or one written out in full), else None."""
    if idx.ndim <= 1:
        return idx.reshape(-1)
    if not idx.size:        # no rows to speak of where another dim is empty
        return None
    c = _compact(idx)
    if all(n == 1 for i, n in enumerate(c.shape) if i != axis):
        return c.reshape(-1)
    first = idx[tuple(slice(None) if i == axis else slice(0, 1) for i in range(idx.ndim))]
    probe = tuple(slice(0, 4) if i == axis else slice(None) for i in range(idx.ndim))
    # a cheap look at a few rows first: a general index is rejected without a full pass
    if (idx[probe] == first[probe]).all() and (idx == first).all():
        return first.reshape(-1)
    return None


def _add_rows(target: np.ndarray, axis: int, rows: np.ndarray, src: np.ndarray) -> None:
    """``target[..., rows[j], ...] += src[..., j, ...]`` along ``axis`` in place, duplicates
    summed. ``target``: any NumPy view; ``rows``: 1-d, in [0, n); ``src``: ``target``'s
    shape with ``axis`` of ``rows.size`` (a broadcast dim is summed once and added
    broadcast)."""
    m = rows.size
    if not m or not target.size:
        return
    if src.dtype != target.dtype:       # NumPy's in-place rule: float64 into float32 is fine
        src = src.astype(target.dtype, casting="same_kind")
    src = _compact(src, keep=axis)
    moved = np.moveaxis(src, axis, 0)   # source rows first
    width = math.prod(moved.shape[1:])
    if width == 1:                      # single elements: NumPy 2's 1-d ``add.at`` loop
        lead = np.moveaxis(target, axis, 0)
        if lead.size == lead.shape[0]:      # a view along ``axis`` alone: add in place
            np.add.at(lead[(slice(None),) + (0,) * (lead.ndim - 1)], rows, moved.reshape(m))
        else:                               # one value per row, added along the other dims
            total = np.zeros(lead.shape[0], target.dtype)
            np.add.at(total, rows, moved.reshape(m))
            lead += total.reshape((-1,) + (1,) * (lead.ndim - 1))
        return
    from . import _scipy
    sp = _scipy.sparse()
    if sp is not None and target.dtype in _SPARSE_DTYPES:
        one_hot = sp.csc_matrix((np.ones(m, target.dtype), rows, np.arange(m + 1)),
                                shape=(target.shape[axis], m))
        total = one_hot @ np.ascontiguousarray(moved.reshape(m, width))
        np.moveaxis(target, axis, 0)[...] += np.asarray(total).reshape(
            (target.shape[axis],) + moved.shape[1:])
        return
    _add_rows_by_rank(np.moveaxis(target, axis, 0), rows, moved)


def _add_rows_by_rank(target: np.ndarray, rows: np.ndarray, src: np.ndarray) -> None:
    """``target[rows] += src`` (rows first) without SciPy: one fancy-indexed add per
    multiplicity rank (rank r's entries hit distinct rows), so few repeats cost few passes
    (a fold's overlap: k*k)."""
    order = np.argsort(rows, kind="stable")
    srt = rows[order]
    if srt.size < 2 or (srt[1:] != srt[:-1]).all():
        target[rows] += src
        return
    pos = np.arange(srt.size)
    start = np.concatenate(([True], srt[1:] != srt[:-1]))
    rank = np.empty_like(pos)
    rank[order] = pos - np.maximum.accumulate(np.where(start, pos, 0))
    for r in range(int(rank.max()) + 1):
        sel = np.flatnonzero(rank == r)
        target[rows[sel]] += src[sel]


def _c_strides(shape) -> list:
    """Row-major strides of ``shape``, in elements."""
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return out[::-1]


def _scatter_linear(out: np.ndarray, idx: np.ndarray, src: np.ndarray, axis: int) -> None:
    """``out[..., idx[i], ...] += src[i]`` along ``axis`` (each other coordinate its own) by
    one 1-d ``add.at`` on flat positions; ``out`` C-contiguous, ``idx`` in [0, n) and no
    larger than ``out`` outside ``axis``, ``src`` broadcastable to ``idx``."""
    if not idx.size:
        return
    cs = _c_strides(out.shape)
    lin = np.multiply(idx, cs[axis], dtype=np.intp)      # a fresh array: summed in place
    for i, n in enumerate(idx.shape):
        if i != axis and n > 1:
            shape = [1] * idx.ndim
            shape[i] = n
            lin += (np.arange(n, dtype=np.intp) * cs[i]).reshape(shape)
    np.add.at(out.reshape(-1), lin.reshape(-1), np.broadcast_to(src, idx.shape).reshape(-1))


def _scatter_add_np(out: np.ndarray, idx: np.ndarray, src: np.ndarray, axis: int) -> None:
    """``out`` (C-contiguous, owned) plus ``src`` scattered along ``axis`` at ``idx`` (of
    ``src``'s shape, no larger than ``out`` outside ``axis``, in [-n, n))."""
    idx = _wrapped(idx, out.shape[axis])
    rows = _row_index(idx, axis)
    if rows is not None:
        window = out[tuple(slice(None) if i == axis else slice(0, k)
                           for i, k in enumerate(idx.shape))]
        _add_rows(window, axis, rows, src)
        return
    from ._scan_cpu import scatter_add_into
    if not scatter_add_into(out, idx, np.broadcast_to(src, idx.shape), axis):
        _scatter_linear(out, idx, src, axis)


def _expand_key(index: tuple, ndim: int) -> list:
    """A normalised key with its Ellipsis spelled out as full slices and a full slice for
    each dim it leaves out at the end."""
    used = sum(0 if k is None or k is Ellipsis else
               (k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 1)
               for k in index)
    out = []
    for k in index:
        out.extend([slice(None)] * (ndim - used) if k is Ellipsis else [k])
    if not any(k is Ellipsis for k in index):
        out.extend([slice(None)] * (ndim - used))
    return out


def _getitem_grad_np(z: np.ndarray, index: tuple, g: np.ndarray) -> None:
    """``z[index] += g`` (duplicates summed) for an advanced ``index``: the key's trailing
    full slices keep whole rows together, so the rest of the key picks row numbers from an
    ``arange`` of the leading dims (NumPy's own indexing rules, errors and negative indices
    included) and the rows are scattered at once."""
    key = _expand_key(index, z.ndim)
    t = 0
    while key and isinstance(key[-1], slice) and \
            key[-1].indices(z.shape[z.ndim - 1 - t]) == (0, z.shape[z.ndim - 1 - t], 1):
        key.pop()
        t += 1
    lead = z.shape[:z.ndim - t]
    size = math.prod(lead)
    pos = np.arange(size, dtype=np.intp).reshape(lead)[tuple(key)].reshape(-1)
    flat = z.reshape(size, math.prod(z.shape[z.ndim - t:]))  # a view: z is fresh
    vals = g.reshape(pos.size, flat.shape[1])
    _add_rows(flat, 0, pos, vals)


def _slice_vjp(n, g):
    return (apply(GETITEM_GRAD, g, index=n.attrs["index"], shape=n.inputs[0]._data.shape,
                  basic=n.op is SLICE),)


def _slice_fwd(xp, x, index):
    r = x[index]
    # an integer for every axis gives NumPy a scalar copy; a trailing Ellipsis gives the 0-d
    # view (as PyTorch's x[0] is), so in-place ops on it reach x
    if type(r) is np.ndarray or isinstance(r, xp.ndarray):
        return r
    return x[index + (Ellipsis,)]


SLICE = register(OpDef("slice", _slice_fwd, vjp=_slice_vjp,
                       infer=_index_infer, saves=False, view=True))
GETITEM = register(OpDef("getitem", lambda xp, x, index: x[_on(xp, index)], vjp=_slice_vjp,
                         infer=_index_infer, saves=False))
GETITEM_GRAD = register(OpDef(
    "getitem_grad", _getitem_grad_fwd, saves=False,
    infer=lambda g, *, index, shape, basic: (tuple(shape), g[1]),
    vjp=lambda n, gg: ((gg[n.attrs["index"]]),)))


def _is_int_item(k) -> bool:
    """An int in a normalised key, or a 0-d integer array (PyTorch selects with a 0-d
    integer tensor as with an int)."""
    return isinstance(k, int) or (not isinstance(k, slice) and k is not None
                                  and k is not Ellipsis and k.ndim == 0 and k.dtype.kind in "iu")


def _ints_first(index: tuple):
    """PyTorch's order for a key that mixes ints with index arrays: the ints select first
    (basic indexing), then the arrays index what is left, so ``x[0, :, [i, j]]`` on (B, T, V)
    is (T, 2) (NumPy counts the int as an advanced index and, the two being apart, puts the
    advanced dims first: (2, T)). Returns (the first key: the ints, slices, None and
    Ellipsis, each array a full slice; the second: the arrays, each other item a full
    slice, the ints dropped), or None where one NumPy step gives PyTorch's result already
    (no int beside an array, or the ints and arrays adjacent in the key)."""
    adv = [i for i, k in enumerate(index)
           if not (k is None or k is Ellipsis or isinstance(k, slice))]
    ints = [i for i in adv if _is_int_item(index[i])]
    if not ints or len(ints) == len(adv) or adv[-1] - adv[0] == len(adv) - 1:
        return None
    first, rest = [], []
    for k in index:
        if k is Ellipsis:
            first.append(k)
            rest.append(k)
        elif k is None or isinstance(k, slice):
            first.append(k)
            rest.append(slice(None))
        elif _is_int_item(k):
            first.append(int(k))
        else:
            first.extend([slice(None)] * (k.ndim if k.dtype == np.bool_ else 1))
            rest.append(k)
    return tuple(first), tuple(rest)


def getitem(x, key) -> Tensor:
    """``x[key]`` with NumPy semantics, except that ints beside index arrays select first,
    as PyTorch's (``x[0, :, [i, j]]`` is (T, 2) on (B, T, V)); differentiable (duplicate
    indices accumulate). Under capture an integer index tensor computed in the function
    or fed as its input is an input of the graph's ops, so replays follow its values
    (:mod:`.index_traced`); a bool mask there is refused (its result has no fixed shape)."""
    x = to_tensor(x)
    split = index = None
    try:
        index, basic = _normalize_key(key, keep_traced=_state.tracer is not None)
        if any(isinstance(k, slice) and (traced(k.start) or traced(k.stop))
               for k in index):
            if basic:
                return _slice_sized(x, index)
            index = tuple(slice(*(None if v is None else int(v) for v in (k.start, k.stop, k.step)))
                          if isinstance(k, slice) else k for k in index)
        if not basic and any(isinstance(k, Tensor) for k in index):
            from .index_traced import getitem_traced
            return getitem_traced(x, index)
        if not basic:
            index = _drop_empty_ellipsis(index, x.ndim)
            split = _ints_first(index)
            if split is not None:   # (x stays the user's tensor, for the error message)
                return apply(GETITEM, apply(SLICE, x, index=split[0]), index=split[1])
        return apply(SLICE if basic else GETITEM, x, index=index)
    except IndexError as e:
        # after an ints-first split NumPy's dim numbers are those of the ints' selection
        msg = _indexing_message(str(e), tuple(x.shape), dims=split is None,
                                index=index if split is None else None)
        if msg is None:
            raise
        raise type(e)(msg) from None


# NumPy's words for an index that does not fit, and PyTorch's kind of message for each:
# the user wrote ``x[...]``, not the internal op (``slice``/``getitem``) that ran it
_OUT_OF_BOUNDS = re.compile(r"index (-?\d+) is out of bounds for axis (\d+) with size (\d+)")
_TOO_MANY = re.compile(r"too many indices for array: array is (\d+)-dimensional, but (\d+) "
                       r"were indexed")
_MASK = re.compile(r"boolean index did not match indexed array along (?:axis|dimension) (\d+); "
                   r"size of (?:axis|dimension) is (\d+) but size of corresponding boolean "
                   r"(?:axis|dimension) is (\d+)")


def _bad_index_dim(index: tuple, shape: tuple, value: int) -> int | None:
    """The dim of ``shape`` at which the normalised key ``index`` holds the out-of-range
    ``value`` (NumPy names the wrong axis when several index arrays broadcast together:
    axis 0 for ``x[rows, cols]``), or None when it cannot tell."""
    try:
        key = _expand_key(index, len(shape))
    except (TypeError, ValueError, AttributeError):
        return None
    d = 0
    for k in key:
        if k is None:
            continue
        if isinstance(k, np.ndarray) and k.dtype == np.bool_:
            d += k.ndim
            continue
        if d >= len(shape):
            return None
        if isinstance(k, (int, np.integer, np.ndarray)) and not isinstance(k, bool):
            n = shape[d]
            if value in (k if isinstance(k, np.ndarray) else [int(k)]) and \
                    not -n <= value < n:
                return d
        d += 1
    return None


def _indexing_message(text: str, shape: tuple, dims: bool = True,
                      index: tuple | None = None) -> str | None:
    """The message of an ``x[key]`` IndexError raised by NumPy, in the user's terms (dims,
    the tensor's shape), or None to keep the original one."""
    if m := _OUT_OF_BOUNDS.search(text):
        i, d, n = m.groups()
        if index is not None:
            found = _bad_index_dim(index, shape, int(i))
            if found is not None:
                d, n = found, shape[found]
        where = f"dimension {d}" if dims else "its dimension"
        return (f"indexing: index {i} is out of bounds for {where} with size {n} "
                f"(tensor of shape {shape})")
    if m := _TOO_MANY.search(text):
        nd, k = m.groups()
        if nd == "0":
            return ("indexing: invalid index of a 0-dim tensor (it has no dimension to "
                    "index); use tensor.item() to get its value as a Python number")
        return (f"indexing: too many indices for a tensor of shape {shape}: {k} indexed "
                f"dimensions, it has {nd}")
    if m := _MASK.search(text):
        d, n, k = m.groups()
        return (f"indexing: the boolean mask has size {k} at dimension {d}, the indexed tensor "
                f"(shape {shape}) has size {n} there; the mask's shape must match the dims "
                "it indexes")
    return None


# --- basic slicing with bounds read from None dims under capture --------------------------------
# ``pe[:, :x.shape[1]]``: the bounds are size expressions (:mod:`tensorlib.graph.sizes`) over
# the tensors they were read from (extra inputs), at positions ``3 * item + (0 start, 1 stop)``
# the bounds computed at run time are None in ``index`` (a graph traced at other sizes has
# the same attrs, so it compares equal); ``unknown``: items whose bounds need an unknown dim
def _sized_index(index, sizes, shapes, unknown=None) -> tuple:
    from ..graph.sizes import evaluate
    out = list(index)
    for pos, e in sizes:
        i, f = divmod(pos, 3)
        k = out[i]
        b = [k.start, k.stop, k.step]
        b[f] = evaluate(e, shapes)
        if b[f] is None and unknown is not None:
            unknown.add(i)
        out[i] = slice(*b)
    return tuple(out)


def _slice_sized_fwd(xp, x, *srcs, index, sizes):
    idx = _sized_index(index, sizes, [x.shape] + [s.shape for s in srcs])
    if not any(k is Ellipsis for k in idx):
        idx += (Ellipsis,)      # all ints: a 0-d array, not a NumPy scalar
    return xp.array(x[idx], copy=True)


def _slice_sized_infer(x, *srcs, index, sizes):
    unknown: set = set()
    idx = _sized_index(index, sizes, [tuple(x[0])] + [tuple(s[0]) for s in srcs], unknown)
    shape, dt = _index_infer(x, index=idx)
    if not unknown:
        return shape, dt
    # the output position of each item: ints drop their dim, None adds one
    n_real = sum(1 for k in idx if k is not None and k is not Ellipsis)
    out, pos = list(shape), 0
    for i, k in enumerate(idx):
        if k is Ellipsis:
            pos += len(x[0]) - n_real
        elif k is None or isinstance(k, slice):
            if i in unknown:
                out[pos] = None
            pos += 1
    return tuple(out), dt


def _slice_sized_vjp(n, g):
    a = n.attrs
    return (apply(SLICE_SIZED_GRAD, g, *n.inputs, **a),) + (None,) * (len(n.inputs) - 1)


def _slice_sized_grad_fwd(xp, g, x, *srcs, index, sizes):
    idx = _sized_index(index, sizes, [x.shape] + [s.shape for s in srcs])
    out = xp.zeros(x.shape, g.dtype)
    out[idx] = g
    return out


def _slice_sized_grad_vjp(n, gg):
    return ((apply(SLICE_SIZED, gg, *n.inputs[2:], **n.attrs),)
            + (None,) * (len(n.inputs) - 1))


SLICE_SIZED = register(OpDef(
    "slice_sized", _slice_sized_fwd, vjp=_slice_sized_vjp, infer=_slice_sized_infer,
    saves=False, doc="Basic slicing whose bounds are computed from input sizes when it runs "
    "(x[:, :n] with n read from a None dim under capture)."))
SLICE_SIZED_GRAD = register(OpDef(
    "slice_sized_grad", _slice_sized_grad_fwd, vjp=_slice_sized_grad_vjp, saves=False,
    infer=lambda g, x, *srcs, index, sizes: (tuple(x[0]), g[1]),
    doc="slice_sized's adjoint: the gradient scattered into zeros of the input's shape."))


def _slice_sized(x: Tensor, index: tuple) -> Tensor:
    """``x[index]`` (ints, slices, None, Ellipsis) whose slice bounds include TracedSizes: one
    op that reads them from the shapes of the tensors they came from when the graph runs."""
    from ..graph.sizes import lower
    bounds, where = [], []
    for i, k in enumerate(index):
        if isinstance(k, slice):
            for f, v in enumerate((k.start, k.stop)):
                if traced(v):
                    bounds.append(v)
                    where.append(3 * i + f)
    _, sizes, srcs = lower(bounds, [x], 1)
    idx = tuple(slice(*(None if v is None or 3 * i + f in where else int(v)
                        for f, v in enumerate((k.start, k.stop, k.step))))
                if isinstance(k, slice) else k for i, k in enumerate(index))
    sizes = tuple((where[j], e) for j, (_, e) in enumerate(sizes))
    return apply(SLICE_SIZED, x, *srcs, index=idx, sizes=sizes)


def _setitem_fwd(xp, x, v, index):
    out = x.copy()
    out[_on(xp, index)] = v
    return out


def _setitem_vjp(n, g):
    x, v = n.inputs
    index = n.attrs["index"]
    gx = apply(SETITEM, g, weak_scalar(0, g), index=index) if x._rg else None
    gv = unbroadcast(g[index], v._data.shape) if v._rg else None
    return gx, gv


SETITEM = register(OpDef("setitem", _setitem_fwd, vjp=_setitem_vjp, saves=False,
                         infer=lambda x, v, *, index: x))


def setitem(x, key, value) -> Tensor:
    """Out-of-place ``x[key] = value``: a new tensor (``Tensor.__setitem__`` is in place).
    Ints beside index arrays select first, as in :func:`getitem`."""
    x = to_tensor(x)
    index, _ = _normalize_key(key)
    v = weak_scalar(value, x, fill="setitem") if not isinstance(value, Tensor) else value
    return _setitem_apply(x, v, index)


def _setitem_apply(x: Tensor, v: Tensor, index: tuple) -> Tensor:
    """``SETITEM`` of a normalised key; a key that mixes ints with arrays in PyTorch's order
    (:func:`_ints_first`): the region the ints select, written by the arrays, then put back
    (three ops NumPy's index semantics describe, so capture and ONNX follow). Traced index
    tensors in ``index``: :func:`.index_traced.setitem_traced`."""
    if v.dtype != x.dtype:
        v = check_write_dtype("setitem", v, x.dtype, index, item_basic=True)
    if any(isinstance(k, Tensor) for k in index):
        from .index_traced import setitem_traced
        return setitem_traced(x, v, index)
    index = _drop_empty_ellipsis(index, x.ndim)
    split = _ints_first(index)
    if split is not None:
        sub = apply(SETITEM, apply(SLICE, x, index=split[0]), v, index=split[1])
        return apply(SETITEM, x, sub, index=split[0])
    return apply(SETITEM, x, v, index=index)


def _setitem_data(xp, data, index: tuple, v) -> None:
    """``data[index] = v`` in place on a backend array, in PyTorch's order as
    :func:`_setitem_apply` (the ints' selection is a view)."""
    if v.dtype != data.dtype:
        v = check_write_dtype("setitem", v, data.dtype, index, item_basic=True)
    index = _drop_empty_ellipsis(index, data.ndim)
    split = _ints_first(index)
    if split is not None:
        data, index = data[split[0]], split[1]
    data[_on(xp, index)] = v


# --- gather / scatter ---------------------------------------------------------------
def _full_index(xp, indices, axis):
    nd = indices.ndim
    idx = []
    for d in range(nd):
        if d == axis:
            idx.append(indices)
        else:
            shape = [1] * nd
            shape[d] = indices.shape[d]
            idx.append(xp.arange(indices.shape[d]).reshape(shape))
    return tuple(idx)


def _check_int(name, idx):
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{name}: indices must be an integer tensor, got {idx.dtype}")


def _in_range_check(name: str, wrap_name: str = "take_along_axis"):
    """The op's ``check`` (run before the kernel in eager calls and in a replayed or loaded
    graph): with the ``strict`` attribute (PyTorch's ``gather``/``index_select``; a string
    names the user's op in the message), every index must lie in ``[0, n)``; without it,
    negative indices wrap, as NumPy's
    ``take``/``take_along_axis`` (and ``torch.take_along_dim``). On a GPU the kernel checks
    instead (NaN results, no host sync)."""
    def check(x, indices, *, axis, strict=False):
        if not indices.size or indices.dtype.kind not in "iu" or \
                not isinstance(indices, np.ndarray):
            return
        d = axis if x.ndim else 0
        n = x.shape[d] if x.ndim else 1
        lo, hi = int(indices.min()), int(indices.max())
        if not strict:
            if lo < -n or hi >= n:    # NumPy's own message named no op (or a wrapped one)
                raise IndexRangeError(
                    f"{wrap_name}: index {lo if lo < -n else hi} is out of range for dim {d} "
                    f"of size {n} (indices must be in [-{n}, {n}); a negative one counts "
                    "from the end)")
            return
        if lo < 0 or hi >= n:
            if isinstance(strict, str):     # a user op (scatter) read through a take
                raise IndexRangeError(f"{strict}: index {lo if lo < 0 else hi} is out of "
                                      f"bounds for dimension {d} with size {n} (indices must "
                                      f"be in [0, {n}), as in PyTorch)")
            raise IndexRangeError(f"{name}: index {lo if lo < 0 else hi} is out of range for "
                                  f"dim {d} of size {n} (indices must be in [0, {n}), as in "
                                  "PyTorch; tl.take_along_axis and tl.take wrap negative "
                                  "indices, as NumPy)")
    return check


def _gather_fwd(xp, x, indices, axis, strict=False):
    _check_int("take_along_axis", indices)
    if indices.ndim != x.ndim:
        raise ShapeError(f"take_along_axis: indices must have as many dimensions as the input "
                         f"({indices.shape} vs {x.shape})")
    if xp is np and all(k == n for i, (k, n) in enumerate(zip(indices.shape, x.shape))
                        if i != axis):
        rows = _row_index(indices, axis)
        if rows is not None:        # whole rows (an expanded index): one take, no fancy index
            return np.take(x, rows, axis=axis)
        flat = _trailing_rows(indices, axis, x.shape)
        if flat is not None:
            return np.take(x.reshape(-1, flat[1]), flat[0], axis=0).reshape(indices.shape)
    out = xp.take_along_axis(x, indices, axis=axis)
    if strict and xp is not np:
        return _poison_out_of_range(xp, out, indices, x.shape[axis], lo=0)
    return out


def _trailing_rows(idx: np.ndarray, axis: int, shape: tuple):
    """For an index that picks whole trailing rows (``i.expand(-1, -1, C)``: broadcast along
    every dim after ``axis``, which match ``shape``, and as long as ``shape`` in those
    before): (flat row numbers into ``x.reshape(-1, width)``, width), else None. Such a
    gather is a take of rows, ~2x the element-wise take_along_axis, and its gradient an
    index_add of rows."""
    nd = idx.ndim
    if nd != len(shape) or axis == nd - 1 or not idx.size or idx.dtype.kind not in "iu":
        return None
    width = math.prod(shape[axis + 1:])
    if width < 4 or idx.shape[axis + 1:] != tuple(shape[axis + 1:]) or \
            idx.shape[:axis] != tuple(shape[:axis]):
        return None
    if any(s != 0 for s, k in zip(idx.strides[axis + 1:], idx.shape[axis + 1:]) if k > 1):
        return None
    n = shape[axis]
    rows = _wrapped(idx[(Ellipsis,) + (0,) * (nd - 1 - axis)], n)
    lead = math.prod(shape[:axis])
    flat = rows.reshape(lead, -1) + np.arange(0, lead * n, n, dtype=np.int64)[:, None]
    return flat.reshape(-1), width


def _take_along_vjp(n, g):
    x, idx = n.inputs
    axis = n.attrs["axis"]
    if _state.tracer is not None or not isinstance(idx._data, np.ndarray):
        return scatter_add(zeros_like(x), _index_as(idx, g), g, axis), None
    from ..creation import zeros
    shape = tuple(x.shape)
    flat = _trailing_rows(idx._data, axis, shape) if tuple(idx.shape) == tuple(g.shape) \
        else None
    # a 0-d zero broadcast (a view): the scatter's own copy is the one pass that writes the
    # zeros (zeros_like wrote them, then the copy read and wrote them again)
    if flat is not None:
        # the rows summed back where they came from: one index_add of whole rows
        rows, width = flat
        z = zeros((), dtype=g.dtype).broadcast_to((math.prod(shape) // width, width))
        gx = apply(INDEX_ADD, z, to_tensor(rows), g.reshape(-1, width), axis=0)
        return gx.reshape(shape), None
    z = zeros((), dtype=x.dtype).broadcast_to(shape)
    return scatter_add(z, _index_as(idx, g), g, axis), None


TAKE_ALONG_AXIS = register(OpDef(
    "take_along_axis", _gather_fwd, saves=False, check=_in_range_check("gather"),
    infer=lambda x, i, *, axis, strict=False: (tuple(i[0]), x[1]), vjp=_take_along_vjp))


def _index_as(index, g):
    """take_along_axis's index broadcast to its output's shape (NumPy's, as PyTorch's
    take_along_dim, broadcasts it), for the backward's scatter_add."""
    return index if tuple(index.shape) == tuple(g.shape) else index.broadcast_to(tuple(g.shape))


def _range_error(strict, default: str, lo: int, hi: int, n: int, axis: int) -> None:
    """IndexRangeError unless every index lies in ``[-n, n)``, or in ``[0, n)`` with
    ``strict`` (PyTorch's rule; a string names the user's op)."""
    floor = 0 if strict else -n
    if lo < floor or hi >= n:
        op = strict if isinstance(strict, str) else default
        raise IndexRangeError(f"{op}: index {hi if hi >= n else lo} is out of bounds for "
                              f"dimension {axis} with size {n} (indices must be in "
                              f"[{floor}, {n}){', as in PyTorch' if strict else ''})")


def _scatter_add_fwd(xp, x, indices, src, axis, strict=False):
    _check_int("scatter_add", indices)
    if indices.shape != src.shape or indices.ndim != x.ndim:
        raise ShapeError(f"scatter_add: indices {indices.shape} and src {src.shape} must have the "
                         f"same shape, with as many dimensions as the input {x.shape}")
    for d in range(x.ndim):
        if d != axis and indices.shape[d] > x.shape[d]:
            raise ShapeError(f"scatter_add: indices shape {indices.shape} exceeds input shape "
                             f"{x.shape} in dimension {d}")
    n = x.shape[axis]
    if xp is np:
        c = _compact(indices)
        if c.size:
            _range_error(strict, "scatter_add", int(c.min()), int(c.max()), n, axis)
        out = np.array(x, order="C")
        _scatter_add_np(out, indices, src, axis)
        return out
    out = x.copy()
    _add_at(xp, out, _full_index(xp, indices, axis), src)
    return _poison_out_of_range(xp, out, indices, n, lo=0 if strict else None)


def _poison_out_of_range(xp, out, indices, n, lo=None):
    """On the GPU: NaN everywhere when an index is outside [-n, n) (``[lo, n)`` when given),
    checked on the device (a host-side check would synchronise every call; CuPy wraps such
    indices, so nothing was written outside). Integer results cannot hold NaN and are left
    as computed."""
    if out.dtype.kind not in "fc" or not indices.size:
        return out
    bad = ((indices >= n) | (indices < (-n if lo is None else lo))).any()
    return xp.where(bad, xp.full((), np.nan, out.dtype), out)


# ``strict`` (PyTorch's forms, a string naming the user's op): indices in [0, n), checked
# by the kernel, so a replayed graph refuses a negative index as the eager call does
SCATTER_ADD = register(OpDef(
    "scatter_add", _scatter_add_fwd, saves=False,
    infer=lambda x, i, s, *, axis, strict=False: x,
    # src's gradient: gather (an index smaller than x outside axis reads that window of g;
    # a negative index, which scatter_add takes, reads as it wrote)
    vjp=lambda n, g: (g, None, _torch_gather(g, n.attrs["axis"], n.inputs[1], checked=False))))


def take_along_axis(x, indices, axis: int) -> Tensor:
    """Gather values along ``axis`` (NumPy's ``take_along_axis``, ``torch.take_along_dim``): a
    negative index counts from the end."""
    x, indices = to_tensor(x), to_tensor(indices)
    return apply(TAKE_ALONG_AXIS, x, indices, axis=norm_axis(axis, x.ndim, "take_along_axis"))


def _strict_take_along_axis(x, indices, axis: int) -> Tensor:
    """``take_along_axis`` whose indices must lie in [0, n) (PyTorch's ``gather``): the op
    checks, so a replayed graph refuses what the eager call refuses."""
    if indices.dtype.kind not in "iu":    # here, as the op would name take_along_axis
        raise DTypeError(f"gather: index must be an integer tensor (int64, as PyTorch), got "
                         f"{indices.dtype}")
    return apply(TAKE_ALONG_AXIS, x, indices, axis=norm_axis(axis, x.ndim, "gather"),
                 strict=True)


def gather(x, indices=None, axis=None, *, dim: int | None = None, index=None,
           sparse_grad: bool = False) -> Tensor:
    """Values along an axis picked by an index tensor, in either convention:

    - NumPy's ``gather(x, indices, axis)`` / ``x.gather(indices, axis)``: ``take_along_axis``
      (``indices`` broadcasts against ``x``);
    - PyTorch's ``gather(x, dim, index)`` / ``x.gather(dim, index)`` / ``x.gather(dim=1,
      index=i)``: the result has ``index``'s shape, which may be smaller than ``x`` in the
      other dimensions (no broadcasting), as ``torch.gather``.

    Either way an index must be in ``[0, n)``: a negative one raises IndexError, as in
    PyTorch (the op checks, also when a captured graph replays; on a GPU the result is NaN
    instead, without a host sync). ``take_along_axis`` wraps negative indices, as NumPy and
    ``torch.take_along_dim``. ``sparse_grad=True`` (a sparse gradient) is not supported.
    """
    if sparse_grad:
        raise NotImplementedError("gather: sparse_grad=True is not supported (tensorlib has no "
                                  "sparse tensors); the default sparse_grad=False gives the "
                                  "same values with a dense gradient")
    torch_order = dim is not None or index is not None or (
        isinstance(indices, (int, np.integer)) and not isinstance(axis, (int, np.integer)))
    if not torch_order:
        if axis is None:
            raise TypeError("gather: needs an axis (or dim)")
        return _strict_take_along_axis(to_tensor(x), to_tensor(indices), axis)
    d = dim if dim is not None else (indices if isinstance(indices, (int, np.integer)) else axis)
    idx = index if index is not None else (axis if isinstance(indices, (int, np.integer))
                                           else indices)
    if d is None or idx is None:
        raise TypeError("gather: needs dim and index")
    return _torch_gather(x, d, idx)


def _torch_gather(x, d, idx, checked: bool = True) -> Tensor:
    x, idx = to_tensor(x), to_tensor(idx)
    d = norm_axis(d, x.ndim, "gather")
    if x.ndim == 0 and idx.ndim == 0:      # PyTorch: a 0-d result, as one element of 1-d
        return _torch_gather(x.reshape((1,)), 0, idx.reshape((1,)), checked).reshape(())
    # comparing sizes in tensorlib's own code does not fix a traced None dim (int() and
    # slicing with it would): only an index smaller than x outside ``d`` crops x
    if idx.ndim != x.ndim or any(i != d and idx.shape[i] > x.shape[i] for i in range(x.ndim)):
        raise ShapeError(f"gather: index of shape {tuple(idx.shape)} does not fit input of "
                         f"shape {tuple(x.shape)} along dim {d} (same number of dimensions, "
                         "no larger than the input in the others)")
    if any(i != d and idx.shape[i] != x.shape[i] for i in range(x.ndim)):
        x = x[tuple(slice(None) if i == d or idx.shape[i] == x.shape[i]
                    else slice(0, idx.shape[i]) for i in range(x.ndim))]
    return _strict_take_along_axis(x, idx, d) if checked else take_along_axis(x, idx, d)


def _take_fwd(xp, x, indices, axis, strict=False):
    _check_int("take", indices)
    out = xp.take(x, indices, axis=axis)
    if strict and xp is not np:
        return _poison_out_of_range(xp, out, indices, x.shape[axis] if x.ndim else 1, lo=0)
    return out


def _take_infer(x, i, *, axis, strict=False):
    s = tuple(x[0])
    return s[:axis] + tuple(i[0]) + s[axis + 1:], x[1]


TAKE = register(OpDef(
    "take", _take_fwd, saves=False, infer=_take_infer,
    check=_in_range_check("index_select", "take"),
    vjp=lambda n, g: (index_add(zeros_like(n.inputs[0]), n.inputs[1], g, n.attrs["axis"]),
                      None)))


def _index_add_fwd(xp, x, indices, src, axis, strict=False):
    _check_int("index_add", indices)
    n = x.shape[axis]
    if xp is np and indices.size:
        _range_error(strict, "index_add", int(indices.min()), int(indices.max()), n, axis)
    if xp is np:
        out = np.array(x, order="C")
        _index_add_np(out, indices, src, axis)
        return out
    out = x.copy()
    _add_at(xp, out, (slice(None),) * axis + (indices,), src)
    return _poison_out_of_range(xp, out, indices, n, lo=0 if strict else None)


def _index_add_np(out, indices, src, axis):
    """``out[..., indices, ...] += src`` along ``axis`` in place, duplicates summed (``out``
    C-contiguous; ``indices`` in [-n, n))."""
    rows = _wrapped(indices.reshape(-1), out.shape[axis])
    _add_rows(out, axis, rows, src.reshape(out.shape[:axis] + (rows.size,)
                                           + out.shape[axis + 1:]))


INDEX_ADD = register(OpDef(
    "index_add", _index_add_fwd, saves=False, infer=lambda x, i, s, *, axis, strict=False: x,
    vjp=lambda n, g: (g, None, take(g, n.inputs[1], n.attrs["axis"]))))


def take(x, indices, axis: int | None = None) -> Tensor:
    """Select along ``axis`` (``index_select``); the flattened tensor when ``axis`` is None."""
    x, indices = to_tensor(x), to_tensor(indices)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return apply(TAKE, x, indices, axis=norm_axis(axis, x.ndim, "take"))


def _required(op: str, name, value, alias, alias_value):
    """A required argument given under its NumPy name or its PyTorch alias (``one_of``)."""
    value = one_of(op, name, value, alias, alias_value)
    if value is None:
        raise TypeError(f"{op}: missing argument {alias!r} (or {name!r})")
    return value


def index_select(x, axis: int | None = None, indices=None, *, dim: int | None = None,
                 index=None) -> Tensor:
    """``take`` along ``axis``, with PyTorch's argument order (``x, axis, indices``); an
    index must be in ``[0, n)`` (a negative one raises IndexError, as in PyTorch, also when a
    captured graph replays). A 0-d index keeps ``axis`` (length 1), as PyTorch's.

    >>> tl.zeros(3, 4).index_select(0, tl.tensor(1)).shape
    (1, 4)

    ``dim=`` / ``index=`` are PyTorch's names for ``axis`` / ``indices``.
    """
    axis = _required("index_select", "axis", axis, "dim", dim)
    indices = _required("index_select", "indices", indices, "index", index)
    x, indices = to_tensor(x), to_tensor(indices)
    if indices.ndim == 0:       # PyTorch keeps the dim: (3, 4) with a 0-d index is (1, 4)
        indices = indices.reshape((1,))
    elif indices.ndim > 1:      # (take would splice the index's dims in, as NumPy's)
        from ..errors import DimError
        raise DimError(f"index_select: the index must be a vector (0-d or 1-d, as PyTorch's), "
                       f"got shape {tuple(indices.shape)}; flatten it, or use take/gather for "
                       f"an index with dims")
    return apply(TAKE, x, indices, axis=norm_axis(axis, x.ndim, "index_select"), strict=True)


def _masked_fill_fwd(xp, x, mask, value):
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be bool, got {mask.dtype}")
    if x.ndim == 0 or np.broadcast_shapes(mask.shape, x.shape) != x.shape:
        return xp.where(mask, x.dtype.type(value), x)     # (vmap: a mask with more dims)
    # a copy and a masked copy: ~1.4x NumPy's where() over a broadcast mask (attention)
    out = x.copy()
    xp.copyto(out, x.dtype.type(value), where=mask)
    return out


def _masked_infer(x, m, *, value):
    from ._util import broadcast_shapes
    if tuple(broadcast_shapes("masked_fill", x[0], m[0])) != tuple(x[0]):
        raise ShapeError(f"masked_fill: mask of shape {m[0]} does not broadcast to the input "
                         f"shape {x[0]}")
    return x


MASKED_FILL = register(OpDef(
    "masked_fill", _masked_fill_fwd, saves=False, infer=_masked_infer,
    vjp=lambda n, g: (g.masked_fill(n.inputs[1], 0.0), None)))


def masked_fill(x, mask, value) -> Tensor:
    """``value`` where the bool ``mask`` is True, else ``x``, in x's dtype, broadcast as
    PyTorch's out-of-place ``masked_fill`` (to the larger of the two shapes). ``value`` is a
    number, or a 0-d tensor that gets its gradient (the sum over the filled positions).

    >>> tl.zeros(3).masked_fill(tl.tensor([True, False, True]), 2.0)
    tensor([2., 0., 2.])
    """
    from ._util import broadcast_shapes
    x, mask = to_tensor(x), to_tensor(mask)
    if mask.dtype != np.bool_:
        raise DTypeError(f"masked_fill: mask must be bool, got {mask.dtype}")
    shape = tuple(broadcast_shapes("masked_fill", tuple(x.shape), tuple(mask.shape)))
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ShapeError(f"masked_fill: the value must be a number or a 0-d tensor, got "
                             f"a tensor of shape {tuple(value.shape)}")
        from .elementwise import where
        return where(mask, value.astype(x.dtype) if value.dtype != x.dtype else value,
                     x if shape == tuple(x.shape) else x.broadcast_to(shape))
    if shape != tuple(x.shape):
        x = x.broadcast_to(shape)
    if x.dtype.kind in "iu" and isinstance(value, (int, float, np.integer, np.floating)) \
            and not isinstance(value, bool):
        # (uint8 takes -1 as 255; 256, NaN or 1e10 raise, as PyTorch, not as a kernel
        # failure; a float is truncated toward zero)
        value = fill_int(value if isinstance(value, (float, np.floating)) else int(value),
                         x.dtype, "masked_fill")
    return apply(MASKED_FILL, x, mask, value=value)


def masked_fill_(x: Tensor, mask, value) -> Tensor:
    """In place: ``x`` takes ``value`` where ``mask`` (broadcast to x's shape) is True."""
    mask = to_tensor(mask)
    _masked_infer((x.shape, x.dtype), (mask.shape, mask.dtype), value=value)
    return masked_fill(x, mask, value)


def _one_hot_fwd(xp, idx, num_classes):
    _check_int("one_hot", idx)
    # on the GPU no host-side check (it would synchronise): an out-of-range class gives an
    # all-zero row (int64 output: nothing to poison)
    if xp is np and idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes}), got range "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    if xp is np and idx.size:
        # rows of an identity matrix, taken (few classes), or ones put at flat positions:
        # 4-6x the broadcast compare, which wrote a bool array and converted it
        if num_classes <= 64:
            return np.eye(num_classes, dtype=np.int64).take(idx, axis=0)
        out = np.zeros(idx.shape + (num_classes,), np.int64)
        flat = idx.reshape(-1)
        out.reshape(-1)[np.arange(0, flat.size * num_classes, num_classes) + flat] = 1
        return out
    return (idx[..., None] == xp.arange(num_classes)).astype(np.int64)


ONE_HOT = register(OpDef("one_hot", _one_hot_fwd,
                         infer=lambda i, *, num_classes: (tuple(i[0]) + (num_classes,),
                                                          np.dtype(np.int64))))


def one_hot(indices, num_classes: int = -1) -> Tensor:
    """One-hot int64 encoding along a new last dim (``torch.nn.functional.one_hot``);
    ``num_classes=-1`` uses ``max(indices) + 1``, which an empty tensor does not have.

    Under capture a ``num_classes`` read from a None dim (``gs.shape[0]``) stays a size the
    graph computes when it runs (it is ``indices[..., None] == arange(num_classes)``); there
    a class value outside ``[0, num_classes)`` gives an all-zero row instead of an error."""
    indices = to_tensor(indices)
    from ..autograd.mode import state
    if state.tracer is not None:
        from ..graph.tracer import TracedSize
        if isinstance(num_classes, TracedSize):
            from ..creation import arange
            _check_int("one_hot", indices)
            classes = arange(num_classes, device=indices.device)
            return (indices.unsqueeze(-1) == classes).to(np.int64)
    if num_classes == -1:
        if not indices.size:
            raise ValueError("one_hot: can not infer the number of classes from an empty "
                             "tensor; pass num_classes")
        indices._read("one_hot(num_classes=-1) (pass num_classes explicitly)")
        num_classes = int(indices._host().max()) + 1
    return apply(ONE_HOT, indices, num_classes=int(num_classes))


def zeros_like(x):
    from ..creation import zeros_like as z
    return z(x)


# --- PyTorch's argument order ---------------------------------------------------------
# ``x.index_add(dim, index, source)``, ``x.scatter_add(dim, index, src)``, ``x.scatter(dim,
# index, src)``, ``x.index_fill(dim, index, value)``, ``x.index_put(indices, values)``: as
# ``gather``, an int where tensorlib's own order has the index tensor selects PyTorch's.

def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _torch_args(name: str, positional, names, given) -> list:
    """Fill PyTorch's parameter ``names`` in order from the ``positional`` arguments (None
    where not passed), then from the keywords ``given`` (name -> value or None)."""
    pos = list(positional)
    while pos and pos[-1] is None:
        pos.pop()
    if len(pos) > len(names):
        raise TypeError(f"{name}: takes {len(names)} arguments ({', '.join(names)}), got "
                        f"{len(pos)}")
    out = []
    for i, n in enumerate(names):
        p = pos[i] if i < len(pos) else None
        k = given.get(n)
        if p is not None and k is not None:
            raise TypeError(f"{name}: got {n} both by position and as {n}=")
        out.append(p if p is not None else k)
    return out


def _check_index(name: str, idx: Tensor) -> None:
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{name}: index must be an integer tensor (int64 or int32, as "
                         f"PyTorch), got {idx.dtype}")


def strict_index(name: str, idx: Tensor, n: int, d: int) -> Tensor:
    """``idx``, refused as PyTorch refuses it when a value lies outside ``[0, n)``: checked
    now when eager; under capture read through a checking ``take``, so each replay of the
    graph refuses what eager refuses (a plain setitem would count -1 from the end)."""
    from ..autograd.mode import state
    if state.tracer is None:
        _check_range(name, idx, n, d)
        return idx
    from ..creation import arange
    return apply(TAKE, arange(n, device=idx.device), idx, axis=0, strict=name)


def _check_range(name: str, idx: Tensor, n: int, d: int, wrap: bool = False) -> None:
    """Eager CPU check that the values of ``idx`` lie in ``[0, n)`` (``[-n, n)`` with
    ``wrap``: negative ones count from the end, as PyTorch's ``index_fill``); under capture
    or on a GPU the kernels' own rules apply."""
    from ..autograd.mode import state
    if state.tracer is not None or not isinstance(idx._data, np.ndarray) or not idx.size:
        return
    c = _compact(idx._data)
    lo, hi = int(c.min()), int(c.max())
    if hi >= n or lo < (-n if wrap else 0):
        raise IndexRangeError(f"{name}: index {hi if hi >= n else lo} is out of bounds for "
                              f"dimension {d} with size {n} (indices must be in "
                              f"[{-n if wrap else 0}, {n}), as in PyTorch)")


def _torch_index_add(x, d, idx, src, alpha, name="index_add") -> Tensor:
    x, idx, src = to_tensor(x), to_tensor(idx), to_tensor(src)
    if not _is_int(d):
        raise TypeError(f"{name}: dim must be an int, got {type(d).__name__}")
    d = norm_axis(d, x.ndim, name)
    _check_index(name, idx)
    if idx.ndim > 1:
        raise ShapeError(f"{name}: index must be 0-d or 1-d, got shape {tuple(idx.shape)}")
    want = tuple(x.shape[:d]) + (idx.size,) + tuple(x.shape[d + 1:]) if x.ndim else ()
    if tuple(src.shape) != want and not (src.size == idx.size == 1 and x.ndim <= 1):
        raise ShapeError(f"{name}: source of shape {tuple(src.shape)} does not fit: expected "
                         f"{want} (the input's shape {tuple(x.shape)} with dim {d} the length "
                         f"of index, {idx.size})")
    if src.dtype != x.dtype:
        raise DTypeError(f"{name}: self ({x.dtype}) and source ({src.dtype}) must have the same "
                        f"dtype, as in PyTorch (cast one: source.to({x.dtype}))")
    _check_range(name, idx, x.shape[d] if x.ndim else 1, d)
    if alpha is not None and alpha != 1:
        src = src * alpha
        if src.dtype != x.dtype:        # an int source times a float alpha
            src = src.astype(x.dtype)
    return apply(INDEX_ADD, x, idx.reshape(-1), src, axis=d, strict=name)


def index_add(x, indices=None, src=None, axis=None, *, dim: int | None = None, index=None,
              source=None, alpha=None) -> Tensor:
    """Out-of-place ``out = x.copy(); out[..., indices, ...] += src`` along ``axis``
    (default 0), in either argument order:

    - tensorlib's ``index_add(x, indices, src, axis=0)``: a negative index counts from the
      end (as NumPy's, and as ``take``, whose gradient it is);
    - PyTorch's ``index_add(x, dim, index, source, alpha=1)`` / ``x.index_add(dim, index,
      source)`` (an int first): ``index`` 0-d or 1-d with values in ``[0, n)``, ``source``
      of ``x``'s dtype, shaped as ``x`` with ``dim`` of ``len(index)``, as PyTorch's
      (IndexError / TypeError otherwise).

    Duplicates accumulate. Differentiable in ``x`` and ``source``.

    >>> tl.zeros(3).index_add(0, tl.tensor([0, 2, 0]), tl.tensor([1., 2., 3.]))
    tensor([4., 0., 2.])
    """
    if index is not None or source is not None or alpha is not None or (
            _is_int(indices) and axis is not None and not _is_int(axis)):
        d, idx, s = _torch_args("index_add", (indices, src, axis), ("dim", "index", "source"),
                                {"dim": dim, "index": index, "source": source})
        if d is None or idx is None or s is None:
            raise TypeError("index_add: PyTorch's order needs dim, index and source")
        return _torch_index_add(x, d, idx, s, alpha)
    axis = one_of("index_add", "axis", axis, "dim", dim)
    x, indices, src = to_tensor(x), to_tensor(indices), to_tensor(src)
    axis = 0 if axis is None else axis
    return apply(INDEX_ADD, x, indices, src, axis=norm_axis(axis, x.ndim, "index_add"))


def _torch_scatter_window(name, x, d, idx, src):
    """(dim, index, the part of ``src`` that ``index`` addresses), checked as PyTorch's
    scatter: same number of dims, ``index`` no larger than ``src`` anywhere and than ``x``
    outside ``dim``."""
    if not _is_int(d):
        raise TypeError(f"{name}: dim must be an int, got {type(d).__name__}")
    d = norm_axis(d, x.ndim, name)
    _check_index(name, idx)
    if idx.ndim != x.ndim or (src is not None and src.ndim != x.ndim):
        raise ShapeError(f"{name}: index{'' if src is None else ', src'} and input must have "
                         f"the same number of dimensions, got index {tuple(idx.shape)}"
                         f"{'' if src is None else f', src {tuple(src.shape)}'} and input "
                         f"{tuple(x.shape)}")
    for i in range(x.ndim):
        if (i != d and idx.shape[i] > x.shape[i]) or (src is not None
                                                      and idx.shape[i] > src.shape[i]):
            raise ShapeError(f"{name}: index of shape {tuple(idx.shape)} is larger than "
                             f"{'the input' if i != d else 'src'} in dim {i} (input "
                             f"{tuple(x.shape)}"
                             f"{'' if src is None else f', src {tuple(src.shape)}'})")
    _check_range(name, idx, x.shape[d] if x.ndim else 1, d)
    if src is not None and tuple(src.shape) != tuple(idx.shape):
        src = src[tuple(slice(0, n) for n in idx.shape)]
    return d, src


def scatter_add(x, *args, indices=None, src=None, axis=None, dim: int | None = None,
                index=None) -> Tensor:
    """Out-of-place ``out = x.copy(); out[..., indices[i], ...] += src[i]`` along ``axis``,
    in either argument order:

    - tensorlib's ``scatter_add(x, indices, src, axis)`` (``indices`` and ``src`` of one
      shape): a negative index counts from the end (as NumPy's, and as
      ``take_along_axis``, whose gradient it is);
    - PyTorch's ``scatter_add(x, dim, index, src)`` / ``x.scatter_add(dim, index, src)``
      (an int first, or the keywords ``dim=``/``index=``): ``index`` may be smaller than
      ``src`` (the part it addresses is used); its values must lie in ``[0, n)``
      (IndexError otherwise, as PyTorch's).

    Duplicates accumulate. Differentiable in ``x`` and ``src``.

    >>> tl.zeros(2, 2).scatter_add(0, tl.tensor([[1, 0], [1, 1]]), tl.ones(2, 2))
    tensor([[0., 1.],
            [2., 1.]])
    """
    if len(args) > 3:
        raise TypeError(f"scatter_add: takes at most 3 arguments after the tensor, got "
                        f"{len(args)}")
    if index is not None or (args and _is_int(args[0])) or (not args and dim is not None):
        if indices is not None or axis is not None:
            raise TypeError("scatter_add: PyTorch's order (dim, index, src) takes no "
                            "indices=/axis=")
        d, idx, s = _torch_args("scatter_add", args, ("dim", "index", "src"),
                                {"dim": dim, "index": index, "src": src})
        if d is None or idx is None or s is None:
            raise TypeError("scatter_add: PyTorch's order needs dim, index and src")
        x, idx, s = to_tensor(x), to_tensor(idx), to_tensor(s)
        d, s = _torch_scatter_window("scatter_add", x, d, idx, s)
        s = check_write_dtype("scatter_add", s, x.dtype)
        return apply(SCATTER_ADD, x, idx, s, axis=d, strict="scatter_add")
    indices, src, axis = _torch_args("scatter_add", args, ("indices", "src", "axis"),
                                     {"indices": indices, "src": src, "axis": axis})
    axis = one_of("scatter_add", "axis", axis, "dim", dim)
    if axis is None:
        raise TypeError("scatter_add: needs an axis (or dim)")
    if indices is None or src is None:
        raise TypeError("scatter_add: needs indices and src")
    x, indices, src = to_tensor(x), to_tensor(indices), to_tensor(src)
    return apply(SCATTER_ADD, x, indices, src, axis=norm_axis(axis, x.ndim, "scatter_add"))


def _written(x: Tensor, d: int, idx: Tensor) -> Tensor:
    """Bool mask of the elements of ``x`` that ``scatter(d, idx, ...)`` writes."""
    from ..creation import ones, zeros
    hits = apply(SCATTER_ADD, zeros(x.shape, dtype=np.int64, device=x.device), idx,
                 ones(idx.shape, dtype=np.int64, device=x.device), axis=d, strict="scatter")
    return hits > 0


def _scatter_traced(x: Tensor, d: int, index: Tensor, src: Tensor) -> Tensor:
    """``scatter`` with a traced ``index``: the setitem key of eager's path built from
    tensors, so that the graph takes ``index`` as an input rather than freezing it."""
    from ..creation import arange
    from .index_traced import setitem_traced
    # (setitem_traced would count a negative index from the end)
    index = strict_index("scatter", index, x.shape[d], d)
    nd = index.ndim
    key = tuple(index if k == d else
                arange(index.shape[k], device=x.device).reshape(
                    tuple(index.shape[k] if j == k else 1 for j in range(nd)))
                for k in range(nd))
    return setitem_traced(x, src, key, "scatter")


def scatter(x, dim: int, index, src=None, *, value=None, reduce: str | None = None) -> Tensor:
    """PyTorch's out-of-place ``scatter``: ``out = x.clone(); out[index[i][j]][j] = src[i][j]``
    along ``dim`` (shown for dim 0). ``src`` is a tensor (only the part ``index`` addresses
    is read) or a number (also as ``value=``); ``reduce='add'`` is ``scatter_add``.

    Capture-friendly with a number or a tensor ``src`` (under ``tl.function`` a traced
    ``index`` is a graph input, as ``scatter_add``'s). Where ``index`` repeats a target the
    last write wins (PyTorch leaves that order unspecified); under capture only the winning
    write gets ``src``'s gradient, and ONNX export of it needs ``opset=18``
    (ScatterElements max). Differentiable in ``x`` and ``src``.
    """
    from .elementwise import where
    x, index = to_tensor(x), to_tensor(index)
    if index.ndim == 0 and x.ndim <= 1:    # a 0-d index writes one element, as PyTorch's
        index = index.reshape((1,))
        if isinstance(src, Tensor) and src.ndim == 0:
            src = src.reshape((1,))
    if src is not None and value is not None:
        raise TypeError("scatter: got both src and value=; pass one")
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter: needs src (a tensor) or value (a number)")
    if reduce is not None:
        if reduce != "add":
            raise ValueError(f"scatter: reduce must be None or 'add', got {reduce!r}")
        if not isinstance(src, Tensor):
            src = weak_scalar(src, x, fill="scatter").broadcast_to(tuple(index.shape))
        return scatter_add(x, dim, index, src)
    if not isinstance(src, Tensor):        # a number: the written elements take it
        d, _ = _torch_scatter_window("scatter", x, dim, index, None)
        v = weak_scalar(src, x, fill="scatter")    # (a fill: uint8 takes -1 as 255)
        if v.dtype != x.dtype:             # the number takes x's dtype, as PyTorch's
            v = v.astype(x.dtype)
        if is_traced(index):
            return where(_written(x, d, index), v, x)
        index._read("scatter with a number (it reads the index on the host)")
        return _scatter_flat(x, d, index, v)
    d, src = _torch_scatter_window("scatter", x, dim, index, src)
    src = check_write_dtype("scatter", src, x.dtype)
    if is_traced(index):
        return _scatter_traced(x, d, index, src)
    index._read("scatter with a tensor src (it reads the index on the host)")
    return _scatter_flat(x, d, index, src.reshape((-1,)))


def _scatter_flat(x: Tensor, d: int, index: Tensor, v: Tensor) -> Tensor:
    """``scatter`` of ``v`` (flat, one per index element, or 0-d) as one write at linear
    positions into the flattened ``x``: NumPy's one-array fancy assignment is ~2.3x its
    assignment with an index array per dim ((32, 8192): 815 -> 351 µs)."""
    from .shape import reshape
    xp = np if isinstance(index._data, np.ndarray) else None
    if xp is None:
        from ..backends import xp_of
        xp = xp_of(index._data)
    key = _full_index(xp, index._data, d)
    lin, stride = 0, 1
    for k in range(x.ndim - 1, -1, -1):
        lin = lin + key[k].astype(np.int64, copy=False) * stride
        stride *= x.shape[k]
    lin = xp.ascontiguousarray(xp.broadcast_to(lin, index.shape)).reshape(-1)
    out = apply(SETITEM, reshape(x, (-1,)), v, index=(lin,))
    return reshape(out, tuple(x.shape))


def index_fill(x, dim: int, index, value) -> Tensor:
    """PyTorch's out-of-place ``index_fill``: the slices ``index`` (1-d) along ``dim`` set
    to ``value`` (a number or a 0-d tensor, differentiable). Capture-friendly."""
    from ..creation import ones, zeros
    from .elementwise import where
    x, index = to_tensor(x), to_tensor(index)
    if not _is_int(dim):
        raise TypeError(f"index_fill: dim must be an int, got {type(dim).__name__}")
    d = norm_axis(dim, x.ndim, "index_fill")
    _check_index("index_fill", index)
    if index.ndim > 1:
        raise ShapeError(f"index_fill: index must be 0-d or 1-d, got shape {tuple(index.shape)}")
    if isinstance(value, Tensor) and value.ndim:
        raise ShapeError(f"index_fill: value must be a number or a 0-d tensor, got shape "
                         f"{tuple(value.shape)}")
    n = x.shape[d] if x.ndim else 1
    _check_range("index_fill", index, n, d, wrap=True)
    idx = index.reshape(-1)
    hits = apply(INDEX_ADD, zeros((n,), dtype=np.int64, device=x.device), idx,
                 ones(tuple(idx.shape), dtype=np.int64, device=x.device), axis=0)
    mask = (hits > 0).reshape(tuple(n if i == d else 1 for i in range(x.ndim)))
    v = value if isinstance(value, Tensor) else weak_scalar(value, x, fill="index_fill")
    if v.dtype != x.dtype:
        v = v.astype(x.dtype)
    return where(mask, v, x)


def _index_tuple(name: str, x: Tensor, indices):
    if isinstance(indices, Tensor) or not isinstance(indices, (tuple, list)):
        raise TypeError(f"{name}: indices must be a tuple of index tensors, got "
                        f"{type(indices).__name__}")
    key, _ = _normalize_key(tuple(indices))
    try:
        target = _index_infer((tuple(x.shape), x.dtype), index=key)[0]
    except (IndexError, ValueError) as e:
        raise type(e)(f"{name}: {e}") from None
    return key, target


def check_write_dtype(op: str, src, dst_dtype, index: tuple | None = None,
                      accumulate: bool = False, item_basic: bool = False):
    """``src`` (a Tensor or an array) checked to have ``dst_dtype``, the dtype of the tensor
    an indexed write of op ``op`` (scatter, scatter_add, index_put, index_copy, put, their
    in-place forms, and ``x[key] = src``) stores it into: PyTorch refuses any other dtype (a
    float source written into an int64 tensor would be truncated element by element).
    Python numbers are converted by the callers before, as PyTorch's fills.

    ``index``: the normalised key of a ``__setitem__`` / ``index_put`` write. A key with no
    index array is a basic write (PyTorch's ``copy_``, which casts): ``src`` comes back as it
    is. A key whose only index array is one bool mask, with a one-element ``src`` on the host
    and no ``accumulate``, is PyTorch's ``masked_fill_`` dispatch (it fills with
    ``src.item()``, cast): ``src`` comes back as that one value in ``dst_dtype``.
    ``item_basic``: a 0-d index array counts as basic, as ``__setitem__`` reads a 0-d integer
    tensor as an int (and tensorlib's key cannot tell ``True`` from ``tensor(True)``)."""
    sdt = np.dtype(src.dtype)
    dst = np.dtype(dst_dtype)
    if sdt == dst:
        return src
    if index is not None:
        arrays = [k for k in index if hasattr(k, "dtype") and (k.ndim or not item_basic)]
        if not arrays:
            return src
        if not accumulate and len(arrays) == 1 and arrays[0].dtype == np.bool_ \
                and _numel(src) == 1 and _on_host(src) \
                and not (sdt.kind == "c" and dst.kind != "c"):
            return src.astype(dst).reshape(())
    lost = " (the imaginary part would be lost)" if sdt.kind == "c" and dst.kind != "c" else ""
    raise DTypeError(f"{op}: source of dtype {sdt} and self of dtype {dst} must have the same "
                     f"dtype, as in PyTorch{lost}; cast the source first "
                     f"(source.to({dst}))")


def _numel(a) -> int:
    return a.numel() if isinstance(a, Tensor) else int(a.size)


def _on_host(a) -> bool:
    if isinstance(a, Tensor):
        return a._device.type == "cpu"
    return not hasattr(a, "__cuda_array_interface__")


def index_put(x, indices, values, accumulate: bool = False) -> Tensor:
    """PyTorch's out-of-place ``index_put``: ``out = x.clone(); out[indices] = values``
    (``indices`` a tuple of integer or bool tensors; ``accumulate=True``: ``+=``, duplicates
    summed). Reads the indices on the host (eager only); differentiable in ``x`` and
    ``values``."""
    x = to_tensor(x)
    key = _normalize_key(tuple(indices))[0] if isinstance(indices, (tuple, list)) else None
    if isinstance(values, Tensor):
        v = check_write_dtype("index_put", values, x.dtype, key, accumulate)
    else:       # a number (or a list) takes x's dtype, as PyTorch's fill
        v = weak_scalar(values, x)
        v = v if v.dtype == x.dtype else v.astype(x.dtype)
    if key is not None:
        if any(isinstance(k, Tensor) for k in key):     # traced indices under capture
            from .index_traced import index_put_traced
            return index_put_traced(x, v, key, accumulate)
    key, target = _index_tuple("index_put", x, indices)
    from ._util import broadcast_shapes
    try:
        if tuple(broadcast_shapes("index_put", tuple(v.shape), target)) != tuple(target):
            raise ValueError
    except ValueError:
        raise ShapeError(f"index_put: values of shape {tuple(v.shape)} do not broadcast to "
                         f"the indexed shape {tuple(target)}") from None
    if not accumulate:
        return apply(SETITEM, x, v, index=key)
    if tuple(v.shape) != tuple(target):
        v = v.broadcast_to(tuple(target))
    return x + apply(GETITEM_GRAD, v, index=key, shape=x._data.shape, basic=False)


def masked_select(x, mask) -> Tensor:
    """The elements of ``x`` where ``mask`` (bool, broadcast with ``x``) is True, as a 1-d
    tensor in row-major order, as ``torch.masked_select``. Reads the mask (eager only, as
    ``nonzero``); differentiable in ``x``."""
    from ._util import broadcast_shapes
    x, mask = to_tensor(x), to_tensor(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_select: mask must be bool, got {mask.dtype}")
    shape = tuple(broadcast_shapes("masked_select", tuple(x.shape), tuple(mask.shape)))
    if tuple(x.shape) != shape:
        x = x.broadcast_to(shape)
    if tuple(mask.shape) != shape:
        mask = mask.broadcast_to(shape)
    return x[mask]


# NumPy's indexing, copies and add.at take complex arrays as they are (the Cython scatter
# kernels are skipped for them), and every rule above is linear in the gradient
for _op in (SLICE, GETITEM, GETITEM_GRAD, SLICE_SIZED, SLICE_SIZED_GRAD, SETITEM,
            TAKE_ALONG_AXIS, SCATTER_ADD, TAKE, INDEX_ADD, MASKED_FILL):
    _op.complex = "holomorphic"
del _op
