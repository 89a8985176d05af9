"""``searchsorted``: insertion indices into sorted sequences, 1-d or batched (N-d), with
PyTorch's ``side``/``right``, ``sorter`` and ``out_int32``.

Eager (the result is integer-valued and carries no gradient), as the other data-dependent ops.
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _wrap
from ..backends import xp_for
from ._util import to_tensor

_WHY = "an eager op, not recorded in graphs"


def _side(side: str | None, right: bool | None) -> str:
    if right is not None:
        if side is not None and (side == "right") != bool(right):
            raise ValueError(f"searchsorted: side={side!r} and right={right!r} disagree")
        side = "right" if right else "left"
    side = "left" if side is None else side
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    return side


def _check(a: Tensor, v: Tensor, v_scalar: bool, sorter: Tensor | None) -> None:
    if a.ndim == 0:
        raise ValueError("searchsorted: the sorted sequence must have at least 1 dim, got a "
                         "0-d tensor")
    if a.ndim > 1:
        if v_scalar or v.ndim == 0:
            raise ValueError(f"searchsorted: a scalar value needs a 1-d sorted sequence, got "
                             f"shape {tuple(a.shape)}")
        if tuple(a.shape[:-1]) != tuple(v.shape[:-1]):
            raise ValueError(
                f"searchsorted: a sorted sequence of shape {tuple(a.shape)} needs values whose "
                f"leading dims match its {tuple(a.shape[:-1])} (one search per row), got "
                f"values of shape {tuple(v.shape)}")
    if a._device != v._device and "vmap" not in (a._device.type, v._device.type):
        raise RuntimeError(f"searchsorted: tensors on {a.device} and {v.device}")
    if sorter is not None:
        if tuple(sorter.shape) != tuple(a.shape):
            raise ValueError(f"searchsorted: sorter of shape {tuple(sorter.shape)} must have "
                             f"the sorted sequence's shape {tuple(a.shape)}")
        if sorter.dtype.kind not in "iu":
            raise TypeError(f"searchsorted: sorter must hold integer indices, got "
                            f"{sorter.dtype}")
        if sorter._device != a._device and "vmap" not in (a._device.type,
                                                            sorter._device.type):
            raise RuntimeError(f"searchsorted: sorter on {sorter.device}, the sequence on "
                               f"{a.device}")


def _search(xp, seq, vals, right: bool, sorter):
    """Batched binary search, ``seq`` (B, M), ``vals`` (B, V) -> (B, V) int64.

    PyTorch's loop and comparisons exactly (``!(mid >= v)`` / ``!(mid > v)``, the same
    midpoints), so NaN in the sequence or the values lands where PyTorch puts it (NumPy's
    NaN-last order differs there)."""
    b, m = seq.shape
    lo = xp.zeros(vals.shape, np.int64)
    hi = xp.full(vals.shape, m, np.int64)
    rows = xp.arange(b, dtype=np.int64)[:, None]
    with np.errstate(invalid="ignore"):
        while True:
            active = lo < hi
            if not bool(active.any()):
                return lo
            mid = lo + ((hi - lo) >> 1)
            at = xp.minimum(mid, m - 1)
            if sorter is not None:
                at = sorter[rows, at]
            mv = seq[rows, at]
            go_right = ~(mv > vals) if right else ~(mv >= vals)
            lo = xp.where(active & go_right, mid + 1, lo)
            hi = xp.where(active & ~go_right, mid, hi)


def _fast_rows(seq, vals, right: bool, sorter):
    """NumPy's searchsorted row by row, the values visited in sorted order (NumPy narrows
    each search to the part after the previous result: ~3x the plain call on 100k random
    int64); None where PyTorch's comparisons could differ from NumPy's order (a NaN), or
    for many short rows (a Python loop each)."""
    b, m = seq.shape
    if b > 64 or seq.dtype.kind not in "iuf":
        return None
    if seq.dtype.kind == "f" and (np.isnan(seq).any() or np.isnan(vals).any()):
        return None     # NumPy sorts NaN last; PyTorch's loop compares it as false
    from .data_dependent import _radix_order
    side = "right" if right else "left"
    out = np.empty(vals.shape, np.int64)
    for r in range(b):
        row, v = seq[r], vals[r]
        st = None if sorter is None else sorter[r]
        order = _radix_order(v) if v.size >= 4096 else None
        if order is None:
            out[r] = np.searchsorted(row, v, side, sorter=st)
        else:
            out[r, order] = np.searchsorted(row, v[order], side, sorter=st)
    return out


def searchsorted(a, v, side: str | None = None, *, right: bool | None = None,
                 sorter=None, out_int32: bool = False) -> Tensor:
    """Indices where the values ``v`` would be inserted into the sorted ``a`` to keep it
    sorted, as ``torch.searchsorted(a, v, side=..., right=..., sorter=..., out_int32=...)``
    (NumPy's positional ``side`` too; default 'left').

    ``a`` 1-d: any ``v`` (a Python number gives a 0-d result). ``a`` N-d: a batch of
    sequences along the last dim, and ``v`` must share ``a``'s leading dims (each row of
    ``v`` is searched in its row of ``a``). ``sorter`` holds the indices that sort ``a``
    along its last dim (``argsort``), for an unsorted ``a``. int64, or int32 with
    ``out_int32``.

    >>> tl.searchsorted(tl.tensor([[1, 3, 5], [2, 4, 6]]), tl.tensor([[3], [3]]))
    tensor([[1],
            [1]])
    """
    v_scalar = not isinstance(v, Tensor) and np.ndim(v) == 0
    a, v = to_tensor(a), to_tensor(v)
    st = None if sorter is None else to_tensor(sorter)
    is_right = _side(side, right) == "right"
    _check(a, v, v_scalar, st)
    xp = xp_for(a._device)
    a._read(f"tl.searchsorted ({_WHY})")
    v._read(f"tl.searchsorted ({_WHY})")
    seq, vals = a._data, v._data
    dt = np.result_type(seq.dtype, vals.dtype)
    seq, vals = seq.astype(dt, copy=False), vals.astype(dt, copy=False)
    m = seq.shape[-1]
    srt = None
    if st is not None:
        st._read(f"tl.searchsorted ({_WHY})")
        srt = st._data.astype(np.int64, copy=False)
        if srt.size and (int(srt.min()) < 0 or int(srt.max()) >= m):
            raise IndexError(f"searchsorted: sorter holds an index out of range [0, {m})")
    if seq.ndim == 1:
        out_shape = vals.shape
        seq2, vals2 = seq.reshape(1, m), vals.reshape(1, -1)
        srt2 = None if srt is None else srt.reshape(1, m)
    else:
        out_shape = vals.shape
        lead = int(np.prod(seq.shape[:-1]))
        seq2, vals2 = seq.reshape(lead, m), vals.reshape(lead, vals.shape[-1])
        srt2 = None if srt is None else srt.reshape(lead, m)
    if m == 0 or vals2.size == 0:
        out = xp.zeros(out_shape, np.int64)
    else:
        out = _fast_rows(seq2, vals2, is_right, srt2) if xp is np else None
        if out is None:
            out = _search(xp, seq2, vals2, is_right, srt2)
        out = out.reshape(out_shape)
    out = xp.asarray(out, dtype=np.int32 if out_int32 else np.int64)
    return _wrap(out, v._device, False, None, 0)
