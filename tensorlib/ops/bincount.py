"""``bincount``: the registry op graph capture records for ``tl.bincount(x, minlength=m)``.

Eager ``bincount`` returns ``max(minlength, max(x) + 1)`` bins, a length read from the
values, which a graph cannot hold. With ``minlength`` given, a captured graph holds exactly
``minlength`` bins (what confusion matrices and class histograms ask for); the op's check
runs at every replay (and at the trace) and raises when a value does not fit them, since
eager would then return another length.
"""
from __future__ import annotations

import numpy as np

from .registry import OpDef, register


def out_dtype(weights_dtype) -> np.dtype:
    """PyTorch's count dtype: int64 without weights; float32 or float64 weights keep their
    dtype, any other weights (float16, integers, bool) give float64."""
    if weights_dtype is None:
        return np.dtype(np.int64)
    dt = np.dtype(weights_dtype)
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)


def counts(xp, x, w, minlength: int):
    """``xp.bincount`` of the 1-d non-negative ints ``x`` (summed ``w`` when not None), in
    PyTorch's dtype; eager ``tl.bincount`` and the op's kernel share it."""
    out = xp.bincount(x, weights=w, minlength=minlength)
    want = out_dtype(None if w is None else w.dtype)
    return out if out.dtype == want else out.astype(want)


def _fwd(xp, x, *w, minlength):
    return counts(xp, x, w[0] if w else None, minlength)


def _check(x, *w, minlength):
    # (an OpDef check: it runs before the kernel at the trace and at every replay; on a GPU
    # it waits for the values, as eager bincount's range read does)
    if w and tuple(w[0].shape) != tuple(x.shape):
        from ..errors import ShapeError
        raise ShapeError(f"bincount: weights {tuple(w[0].shape)} must match the input "
                         f"{tuple(x.shape)}")
    if not x.size:
        return
    lo, hi = int(x.min()), int(x.max())
    if lo < 0:
        from ..errors import InputError
        raise InputError(f"bincount: values must not be negative, got {lo} (only 1-d "
                         "non-negative integral inputs)")
    if hi >= minlength:
        raise RuntimeError(
            f"bincount: value {hi} does not fit the minlength={minlength} bins this captured "
            f"graph holds (eager bincount would return {hi + 1} bins, but a graph's output "
            f"size is fixed when it is traced); pass a minlength larger than every value "
            f"(at least {hi + 1}), or call tl.bincount outside tl.function / tl.compile")


def _infer(x, *w, minlength):
    shape, dtype = x
    if len(shape) != 1 or np.dtype(dtype).kind not in "iub":
        raise ValueError(f"bincount: takes a 1-d integer tensor, got {np.dtype(dtype)} of "
                         f"shape {tuple(shape)}")
    if w:
        wshape, wdtype = w[0]
        if len(wshape) != 1 or (None not in (shape[0], wshape[0]) and wshape[0] != shape[0]):
            raise ValueError(f"bincount: weights {tuple(wshape)} must match the input "
                             f"{tuple(shape)}")
    if int(minlength) < 1:
        raise ValueError(f"bincount: the op holds minlength >= 1 bins, got {minlength}")
    return (int(minlength),), out_dtype(w[0][1] if w else None)


def _cost(ins, outs, **attrs):
    n = ins[0][0][0] or 1
    itemsize = 8 * (1 + len(ins))
    return n, n * itemsize + int(attrs["minlength"]) * 8


BINCOUNT = register(OpDef(
    "bincount", _fwd, check=_check, infer=_infer, cost=_cost, saves=False,
    doc="Counts of each value 0..minlength-1 of a 1-d non-negative int tensor (summed "
        "float weights when given: int64 counts, float32/float64 weights' dtype, float64 for "
        "other weights, as PyTorch); raises when a value is negative or >= minlength. "
        "Not differentiable, as PyTorch's."))
