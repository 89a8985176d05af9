"""Order statistics: ``median`` and ``quantile`` with NumPy's definitions, built on ``sort``
(so they are differentiable in the selected values)."""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from .. import _dtypes
from .._tensor import Tensor
from ..autograd.mode import state
from ..errors import DTypeError, InputError, ShapeError
from .size_guard import size_tensor, traced
from ._util import host_values, norm_axis, promote_types, to_float, to_tensor

_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def quantile(x, q, axis: int | None = None, keepdims: bool = False,
             method: str = "linear", *, dim: int | None = None, keepdim: bool | None = None,
             interpolation: str | None = None) -> Tensor:
    """The ``q``-th quantiles (``q`` in [0, 1], a number or a 1-d sequence) along ``axis`` (of
    the flattened tensor when None), as NumPy's ``quantile``: the dims of ``q`` come first. A
    NaN along the axis gives NaN. PyTorch's ``dim=``, ``keepdim=`` and ``interpolation=``
    are accepted for ``axis``, ``keepdims`` and ``method``. With ``method='linear'`` and a
    ``q`` tensor that requires grad, the result is differentiable in ``q`` too (the slope
    ``(n - 1) (above - below)``, 0 where a NaN makes the result NaN), as PyTorch's.

    >>> tl.quantile(tl.tensor([1.0, 2.0, 3.0, 4.0]), 0.5)
    tensor(2.5000)
    """
    from .elementwise import where
    from .reduction import _axis_args
    from .sorting import sort
    axis, keepdims = _axis_args("quantile", axis, keepdims, dim, keepdim)
    if interpolation is not None:
        if method != "linear":
            raise TypeError("quantile: got both method= and interpolation= (NumPy's and "
                            "PyTorch's names for the same argument); pass one")
        method = interpolation
    x = to_tensor(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    if x.ndim == 0 and axis is not None:     # PyTorch: dim 0 or -1 of a 0-d tensor, 0-d out
        norm_axis(axis, 0, "quantile")
        x, axis, keepdims = x.reshape((1,)), 0, False
    if method not in _METHODS:
        raise ValueError(f"quantile: method must be one of {_METHODS}, got {method!r}")
    # the q tensor in the graph when it asks for a gradient (the values still come to the
    # host: the ranks pick which sorted entries to read)
    q_graph = q.astype(x.dtype).reshape(-1) if isinstance(q, Tensor) and q.requires_grad \
        and method == "linear" else None
    qs = host_values(q.detach() if isinstance(q, Tensor) else q, np.float64)
    if qs.ndim > 1:
        raise ValueError(f"quantile: q must be a number or 1-d, got shape {qs.shape}")
    if np.any((qs < 0) | (qs > 1)) or np.any(np.isnan(qs)):
        raise ValueError(f"quantile: q must lie in [0, 1], got {qs.tolist()}")
    if axis is None:
        src, ax = x.reshape(-1), 0
    else:
        src, ax = x, norm_axis(axis, x.ndim, "quantile")
    n = src.shape[ax]
    if n == 0:
        raise ValueError(f"quantile: the axis is empty (input of shape {tuple(x.shape)})")
    s, _ = sort(src, axis=ax)
    # under capture with a None dim the length is a graph value, so one graph serves every
    # length (the ranks are then computed when it runs)
    count = size_tensor(n, src) if traced(n) else n
    outs = [_quantile_at(s, ax, float(qv), count, method,
                         None if q_graph is None else q_graph[i])
            for i, qv in enumerate(qs.reshape(-1))]
    from .shape import stack
    out = stack(outs, axis=0) if qs.ndim else outs[0]
    # NumPy: NaN anywhere along the axis makes the quantile NaN
    has_nan = src.isnan().any(axis=ax)
    out = where(has_nan, np.nan, out)
    if keepdims:
        kshape = (1,) * x.ndim if axis is None else \
            tuple(1 if i == ax else d for i, d in enumerate(x.shape))
        out = out.reshape(tuple(qs.shape) + kshape)
    return out


class median_result(NamedTuple):
    """``(values, indices)`` of ``median(x, dim=d)`` (``torch.return_types.median``)."""
    values: Tensor
    indices: Tensor


def median(x, *args, axis: int | None = None, keepdims: bool = False, dim: int | None = None,
           keepdim: bool | None = None):
    """NumPy's ``median`` with ``axis=``: the mean of the two middle values for an even count
    (PyTorch's ``median`` returns the lower one; ``quantile(x, 0.5, method='lower')``).

    PyTorch's spellings ``median(x, d)``, ``x.median(1)`` (a positional dim, as
    ``x.max(1)``) and ``median(x, dim=d)`` / ``x.median(dim=d, keepdim=...)`` have PyTorch's
    meaning: the lower median along ``d`` and its index, as a ``(values, indices)`` named
    tuple (a NaN in the row gives NaN); the gradient goes to that index. ``x.median()``
    with no dim is NumPy's average of the middle two for a floating tensor; for an integer
    tensor it is PyTorch's lower middle value in the input's dtype (``axis=`` keeps NumPy's
    float64 average; ``x.median(dim=0)`` keeps the dtype, as PyTorch's).
    """
    if args:
        if len(args) > 2 or dim is not None or axis is not None:
            raise TypeError("median: takes a dim and keepdim positionally (PyTorch's), or "
                            "axis=/dim= as keywords, not both")
        dim = args[0]
        if len(args) == 2:
            if keepdim is not None:
                raise TypeError("median: got keepdim both positionally and as a keyword")
            keepdim = args[1]
    if dim is None:
        from .reduction import _axis_args
        axis, keepdims = _axis_args("median", axis, keepdims, None, keepdim)
        x = to_tensor(x)
        if axis is None and x.numel() == 0:
            return _empty_nan(x, keepdims)       # PyTorch's (and NumPy's) median of nothing
        if axis is None and x.dtype.kind in "iu":
            # PyTorch's: the lower middle value in the input's dtype (exact for int64, where
            # a float64 mean would round above 2**53)
            m = _median_dim(x.reshape(-1), 0, False).values
            return m.reshape((1,) * x.ndim) if keepdims else m
        if axis is None:
            n = x.numel()
        else:
            n = x.shape[norm_axis(axis, x.ndim, "median")] if x.ndim else 1
        # an even count: NumPy's mean of the two middle values, (a + b) / 2; the linear
        # interpolation a + (b - a) / 2 is NaN for [inf, inf] and [-inf, 1]
        # (a length read from a None dim: midpoint, which picks the one middle value for an
        # odd count too, so one graph serves both parities)
        m = quantile(x, 0.5, axis=axis, keepdims=keepdims,
                     method="midpoint" if traced(n) or n % 2 == 0 else "linear")
        if axis is None and x.numel() % 2:       # one middle element: PyTorch's gradient rule
            from .reduction import ties_share_grad
            m = ties_share_grad(x, m)
        return m
    if axis is not None:
        raise TypeError("median: got both axis= and dim= (NumPy's and PyTorch's names for the "
                        "same argument, with NumPy's and PyTorch's results); pass one")
    if keepdims:
        raise TypeError("median: dim= (PyTorch's) takes keepdim=, not keepdims=")
    return _median_dim(to_tensor(x), dim, bool(keepdim))


def _median_dim(x: Tensor, dim, keepdim: bool) -> median_result:
    from .elementwise import where
    from .indexing import take_along_axis
    from .sorting import argsort
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"median: dim= must be an int, got {dim!r}")
    scalar = x.ndim == 0
    src = x.reshape((1,)) if scalar else x
    d = norm_axis(dim, src.ndim, "median")
    n = src.shape[d]
    if n == 0:
        from .reduction import empty_reduction
        raise empty_reduction("median", x.shape, d)
    order = argsort(src, axis=d)                  # stable, NaN last
    if traced(n):      # the row length as a graph value, so one graph serves every length
        n = size_tensor(n, src)
        pick = order.take((n - 1) // 2, axis=d).unsqueeze(d)
    else:
        pick = _at(order, d, (n - 1) // 2).unsqueeze(d)
    if src.dtype.kind == "f":                     # a NaN in the row is its median
        nans = src.isnan()
        k = nans.sum(axis=d, keepdims=True)
        last = n - k if not isinstance(n, Tensor) else where(k > 0, n - k, n - 1)
        first_nan = take_along_axis(order, last.clip(0, n - 1) if not isinstance(n, Tensor)
                                    else last, d)
        pick = where(k > 0, first_nan, pick)
    values = take_along_axis(src, pick, d)
    if scalar:
        return median_result(values.reshape(()), pick.reshape(()))
    if not keepdim:
        values, pick = values.squeeze(d), pick.squeeze(d)
    return median_result(values, pick)


def _empty_nan(x: Tensor, keepdims: bool = False) -> Tensor:
    """The median of nothing: NaN, or for an integer tensor its dtype's minimum (PyTorch's)."""
    from ..creation import full
    shape = (1,) * x.ndim if keepdims else ()
    if x.dtype.kind in "iu":
        return full(shape, int(np.iinfo(x.dtype).min), dtype=x.dtype, device=x.device)
    dt = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    return full(shape, math.nan, dtype=dt, device=x.device)


def _quantile_at(s: Tensor, ax: int, q: float, n, method: str, q_graph=None) -> Tensor:
    """The ``q``-th quantile along ``ax`` of the sorted ``s``: NumPy's rank ``q (n - 1)``,
    picked and interpolated per ``method``. ``n`` is the axis length: an int (the ranks are
    Python numbers, the picks views: the eager path) or a 0-d int64 tensor (a length read when
    a captured graph runs: the ranks are graph values, with the same float64 arithmetic).
    ``q_graph``: q as a tensor that asks for a gradient (method 'linear')."""
    dynamic = isinstance(n, Tensor)
    n1 = (n - 1).astype(np.float64) if dynamic else n - 1
    pos = n1 * q
    lo, hi = _floor(pos), _ceil(pos)
    if method == "lower":
        return _pick(s, ax, lo)
    if method == "higher":
        return _pick(s, ax, hi)
    if method == "nearest":
        return _pick(s, ax, _round_half_even(pos))
    a = _pick(s, ax, lo)
    if method == "midpoint":      # one middle value: itself ((a + a) / 2 overflows past 9e307)
        if not dynamic:
            return a if hi == lo else (a + _pick(s, ax, hi)) * 0.5
        from .elementwise import where
        return where((hi == lo), a, (a + _pick(s, ax, hi)) * 0.5)
    frac = pos - lo if q_graph is None else q_graph * n1 - lo
    if not dynamic:
        if hi != lo:
            return a + (_pick(s, ax, hi) - a) * frac
        # the slope in q is 0 here; (a - a) would make it NaN at inf
        return a if q_graph is None else a + frac * 0.0
    from ..creation import zeros_like
    from .elementwise import where
    frac, same = frac.astype(a.dtype), hi == lo
    # as above, per run: where the two picks are one entry the step is 0, not inf - inf
    zero = zeros_like(a)
    step = where(same, zero, _pick(s, ax, hi)) - where(same, zero, a)
    return where(same, a + frac * 0.0, a + step * frac)


def _floor(p):
    return p.floor().astype(np.int64) if isinstance(p, Tensor) else math.floor(p)


def _ceil(p):
    return p.ceil().astype(np.int64) if isinstance(p, Tensor) else math.ceil(p)


def _round_half_even(p):
    """NumPy's rounding (half to even) of a rank, an int or an int64 graph value."""
    if isinstance(p, Tensor):
        from .rounding import round as round_
        return round_(p).astype(np.int64)
    return int(np.round(p))


def _pick(s: Tensor, ax: int, i) -> Tensor:
    """``s``'s entry ``i`` along ``ax`` (the axis dropped): a view for an int, a gather for a
    rank computed in the graph."""
    return s.take(i, axis=ax) if isinstance(i, Tensor) else _at(s, ax, i)


def _at(s: Tensor, ax: int, i: int) -> Tensor:
    return s[(slice(None),) * ax + (i,)]


class nanmedian_result(NamedTuple):
    """``(values, indices)`` of ``nanmedian(x, dim)`` (``torch.return_types.nanmedian``)."""
    values: Tensor
    indices: Tensor


def nanmedian(input, dim: int | None = None, keepdim: bool = False):
    """The lower median ignoring NaNs, as ``torch.nanmedian``: with no ``dim`` the value over
    all elements (NaN for an empty or all-NaN tensor); with ``dim`` a ``(values, indices)``
    named tuple, differentiable in the values. An all-NaN row gives NaN and PyTorch's index
    for it (see :func:`_all_nan_index`).

    >>> tl.nanmedian(tl.tensor([[1.0, float("nan"), 3.0, 2.0]]), 1)
    nanmedian_result(values=tensor([2.]), indices=tensor([3]))
    """
    from .indexing import take_along_axis
    from .sorting import argsort
    x = to_tensor(input)
    if dim is None:
        if x.numel() == 0:
            return _empty_nan(x)
        from .reduction import ties_share_grad      # the gradient split among ties (PyTorch)
        return ties_share_grad(x, nanmedian(x.reshape(-1), 0).values)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"nanmedian: dim must be an int, got {dim!r}")
    scalar = x.ndim == 0
    src = x.reshape((1,)) if scalar else x
    d = norm_axis(int(dim), src.ndim, "nanmedian")
    n = src.shape[d]
    if n == 0:
        from .reduction import empty_reduction
        raise empty_reduction("nanmedian", x.shape, d)
    order = argsort(src, axis=d)                   # stable, NaN last
    k = (src == src).astype(np.int64).sum(axis=d, keepdims=True)   # the non-NaN count
    pick = take_along_axis(order, ((k - 1) // 2).clip(0, None), d)
    if src.dtype.kind == "f":
        from .elementwise import where
        pick = where(k == 0, _all_nan_index_graph(n, src) if traced(n) else _all_nan_index(n),
                     pick)
    values = take_along_axis(src, pick, d)
    if scalar:
        return nanmedian_result(values.reshape(()), pick.reshape(()))
    if not keepdim:
        values, pick = values.squeeze(d), pick.squeeze(d)
    return nanmedian_result(values, pick)


@functools.lru_cache(maxsize=64)
def _all_nan_index(n: int) -> int:
    """The index PyTorch's CPU ``nanmedian`` reports for a row of ``n`` NaNs.

    PyTorch runs ``std::nth_element`` (libstdc++'s introselect) for k = 0 over the row's
    indices with a comparison that is false for every NaN pair, so the answer is where that
    algorithm's swaps leave index 0's slot: 2 for n = 4, 5 for n = 7. With every pair
    "equal", each round moves the middle element to the front and its unguarded partition
    reverses the rest of the range, cutting it at the middle; ranges of 3 or fewer are left
    alone (insertion sort moves nothing). Replayed here on an index array."""
    a = np.arange(n)
    first, last = 0, n
    while last - first > 3:
        mid = first + (last - first) // 2
        a[first], a[mid] = a[mid], a[first]
        a[first + 1:last] = a[first + 1:last][::-1].copy()
        last = first + 1 + (last - first - 1) // 2     # the cut; k = 0 stays left of it
    return int(a[0])


_ROUNDS = 40     # rounds of _all_nan_index for any row shorter than 2**42


def _all_nan_index_graph(n, like: Tensor) -> Tensor:
    """:func:`_all_nan_index` for a traced row length ``n``, as 0-d graph ops: round r works
    on the first ``((n - 1) >> r) + 1`` slots, so the slot that ends at the front is traced
    back through the rounds (unrolled, inactive ones masked off)."""
    from .elementwise import where
    m0 = size_tensor(n - 1, like)                   # a 0-d tensor that follows n
    pos = m0 * 0
    for r in reversed(range(_ROUNDS)):
        m = m0 // (1 << r)
        act, size = m >= 3, m + 1
        mid = size // 2
        pos = where(act & (pos >= 1) & (pos < size), size - pos, pos)     # undo the reversal
        pos = where(act & (pos == 0), mid, where(act & (pos == mid), 0, pos))  # and the swap
    return pos


def cov(input, *, correction: int = 1, fweights=None, aweights=None) -> Tensor:
    """The covariance matrix of the variables in the rows of ``input`` (observations in the
    columns; a 1-d input is one variable), as ``torch.cov``: ``correction`` 1 is Bessel's
    (0: the population covariance); ``fweights`` (integer repeat counts) and ``aweights``
    (importance weights) weigh the observations. Float ``aweights`` take part in the type
    promotion (float32 input with float64 ``aweights`` gives float64), as PyTorch's.
    Complex data give the Hermitian ``E[(x - mu)(y - mu)^H]`` (a real diagonal).

    >>> tl.cov(tl.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]]))
    tensor([[ 1., -1.],
            [-1.,  1.]])
    """
    from .linalg import matmul
    x = to_tensor(input)
    if x.ndim > 2:
        raise ShapeError(f"cov: expects a 1-d or 2-d input, got shape {tuple(x.shape)}")
    x2 = to_float(x).reshape((1, -1)) if x.ndim < 2 else to_float(x)
    n = x2.shape[1]
    aw = None if aweights is None else to_tensor(aweights)
    if aw is not None and aw.dtype.kind == "f" and aw.dtype != x2.dtype:
        x2 = x2.astype(promote_types(x2.dtype, aw.dtype))
    w = None
    for name, wt in (("fweights", fweights), ("aweights", aw)):
        if wt is None:
            continue
        wt = to_tensor(wt)
        if wt.ndim != 1 or wt.shape[0] != n:
            raise ShapeError(f"cov: {name} must be 1-d with one weight per observation ({n}), "
                             f"got shape {tuple(wt.shape)}")
        if name == "fweights" and wt.dtype.kind not in "iu":
            raise DTypeError("cov: fweights must be integers (repeat counts)")
        if state.tracer is None and wt.numel() and bool((wt < 0).any()):
            # (a value check: eager only, as the other data-dependent checks)
            raise InputError(f"cov: {name} cannot be negative")
        wt = wt.astype(_dtypes.real_of(x2.dtype))     # weights stay real for complex data
        w = wt if w is None else w * wt
    if w is None:
        avg = x2.mean(axis=1, keepdims=True)
        norm = n - correction
    else:
        wsum = w.sum()
        avg = (x2 * w).sum(axis=1, keepdims=True) / wsum
        if aw is None or correction == 0:
            norm = wsum - correction
        else:
            norm = wsum - correction * (w * aw.astype(w.dtype)).sum() / wsum
    d = x2 - avg
    dw = d if w is None else d * w
    if d.dtype.kind == "c":     # E[(x - mu)(y - mu)^H], as NumPy's and PyTorch's
        from .complex import conj
        d = conj(d)
    out = matmul(dw, d.T) / norm
    return out.reshape(()) if x.ndim < 2 else out
