"""PyTorch's shape and scatter helpers that tensorlib lacked, as composites of registry ops:
sliding windows (``unfold``), ``ravel``, ``t``, splits (``split_with_sizes``),
the out-of-place scatters (``slice_scatter``, ``select_scatter``, ``diagonal_scatter``,
``masked_scatter``, ``put``), ``narrow_copy``, ``diagflat``, ``unravel_index``,
``sum_to_size``, and the ``*_copy`` variants of the view ops.
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ._util import norm_axis, to_tensor, unbroadcast

__all__ = [
    "diagflat", "diagonal_scatter", "masked_scatter", "narrow_copy",
    "nonzero_static", "put",
    "ravel", "select_scatter", "slice_scatter", "split_with_sizes", "sum_to_size", "t",
    "unfold", "unravel_index", "COPY_VARIANTS",
]


def _shape(t: Tensor) -> tuple:
    return tuple(t.shape)


def _int(v, op: str, what: str) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
        raise TypeError(f"{op}: {what} must be an int, got {v!r}")
    return int(v)


def unfold(input, dimension: int, size: int, step: int) -> Tensor:
    """Every window of ``size`` elements along ``dimension``, ``step`` apart, as a new last
    dim (``Tensor.unfold``): shape ``(..., (n - size) // step + 1, ..., size)``.

    A view (in-place changes reach ``input``) when the windows tile the dim without overlap
    (``step >= size`` and the windows' span ``n_windows * step`` fits, e.g. ``step ==
    size``); overlapping windows are a copy (a gather), where PyTorch's are a view over
    shared memory. Differentiable either way.

    >>> tl.arange(5.).unfold(0, 2, 1)
    tensor([[0., 1.],
            [1., 2.],
            [2., 3.],
            [3., 4.]])
    """
    from ..creation import arange
    from ..errors import InputError, ShapeError     # ValueError and RuntimeError (PyTorch's)
    from .indexing import take
    x = to_tensor(input)
    size = _int(size, "unfold", "size")
    step = _int(step, "unfold", "step")
    if x.ndim == 0:
        norm_axis(dimension, 1, "unfold")
        if size > 1:
            raise ShapeError(f"unfold: maximum size for a 0-d tensor is 1 but size is {size}")
        if step <= 0:
            raise InputError(f"unfold: step must be > 0, got {step}")
        return x.reshape((1,))
    d = norm_axis(dimension, x.ndim, "unfold")
    n = x.shape[d]
    if size < 0 or size > n:
        raise ShapeError(f"unfold: size {size} must be in [0, {n}] (dim {d} of shape "
                         f"{_shape(x)})")
    if step <= 0:
        raise InputError(f"unfold: step must be > 0, got {step}")
    nw = (n - size) // step + 1
    rest = _shape(x)[d + 1:]
    if step >= size and nw * step <= n:
        # the windows tile the dim: a reshape of the span and a slice of each row (views)
        tiled = x.narrow(d, 0, nw * step).reshape(_shape(x)[:d] + (nw, step) + rest)
        windows = tiled[(slice(None),) * (d + 1) + (slice(0, size),)]
    else:
        idx = (arange(nw, device=x.device) * step).reshape((nw, 1)) + \
            arange(size, device=x.device).reshape((1, size))
        windows = take(x, idx, axis=d)
    return windows.movedim(d + 1, -1)


def ravel(input) -> Tensor:
    """The elements as a 1-d tensor in row-major order (``torch.ravel``; a view when the
    layout allows)."""
    return to_tensor(input).reshape(-1)


def t(input) -> Tensor:
    """The transpose of a matrix; 0-d and 1-d tensors as they are (``torch.t``)."""
    from .shape import transpose
    x = to_tensor(input)
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor with <= 2 dimensions, but got shape "
                         f"{_shape(x)} (use transpose or .mT)")
    return transpose(x) if x.ndim == 2 else x


def split_with_sizes(input, split_sizes, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into parts of the given sizes along ``dim`` (``torch.split_with_sizes``: the
    sizes must add up to the dim's size); views."""
    from .shape import split_sizes as split_at_sizes
    x = to_tensor(input)
    sizes = [_int(s, "split_with_sizes", "a size") for s in split_sizes]
    if any(s < 0 for s in sizes):
        raise ValueError(f"split_with_sizes: sizes must be non-negative, got {sizes}")
    d = norm_axis(dim, x.ndim, "split_with_sizes")
    if sum(sizes) != x.shape[d]:
        raise ValueError(f"split_with_sizes: sizes {sizes} must sum to the size of dim {d}, "
                         f"{x.shape[d]} (shape {_shape(x)})")
    return tuple(split_at_sizes(x, sizes, d))



def narrow_copy(input, dim: int, start: int, length: int) -> Tensor:
    """A copy of ``narrow(input, dim, start, length)`` (``torch.narrow_copy``)."""
    from .shape import narrow
    return narrow(to_tensor(input), dim, start, length).clone()


def diagflat(input, offset: int = 0) -> Tensor:
    """The flattened input on the ``offset`` diagonal of a square matrix
    (``torch.diagflat``)."""
    from .diagonal import diag
    return diag(to_tensor(input).reshape(-1), _int(offset, "diagflat", "offset"))


def _scatter_into(x: Tensor, src: Tensor, key: tuple, view: Tensor, op: str) -> Tensor:
    from .indexing import setitem
    if _shape(src) != _shape(view):
        raise ValueError(f"{op}: src of shape {_shape(src)} must match the slice it replaces, "
                         f"of shape {_shape(view)} (input {_shape(x)})")
    if src.dtype != x.dtype:
        src = src.astype(x.dtype)
    return setitem(x, key, src)


def slice_scatter(input, src, dim: int = 0, start: int | None = None, end: int | None = None,
                  step: int = 1) -> Tensor:
    """``input`` with ``input[..., start:end:step, ...]`` (along ``dim``) replaced by
    ``src``, out of place (``torch.slice_scatter``). Differentiable in both."""
    x, s = to_tensor(input), to_tensor(src)
    d = norm_axis(dim, x.ndim, "slice_scatter")
    if _int(step, "slice_scatter", "step") <= 0:
        raise ValueError(f"slice_scatter: step must be positive, got {step}")
    key = (slice(None),) * d + (slice(start, end, step),)
    return _scatter_into(x, s, key, x[key], "slice_scatter")


def select_scatter(input, src, dim: int, index: int) -> Tensor:
    """``input`` with the slice at ``index`` of ``dim`` replaced by ``src`` (which has one
    dim fewer), out of place (``torch.select_scatter``)."""
    x, s = to_tensor(input), to_tensor(src)
    d = norm_axis(dim, x.ndim, "select_scatter")
    i = _int(index, "select_scatter", "index")
    n = x.shape[d]
    if not -n <= i < n:
        raise IndexError(f"select_scatter: index {i} is out of range for dim {d} of size {n}")
    key = (slice(None),) * d + (i % n,)
    return _scatter_into(x, s, key, x[key], "select_scatter")


def diagonal_scatter(input, src, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """``input`` with its ``offset`` diagonal of the (dim1, dim2) planes replaced by
    ``src``, out of place (``torch.diagonal_scatter``)."""
    from .diagonal import diagonal, diagonal_write_back
    x, s = to_tensor(input), to_tensor(src)
    if x.ndim < 2:
        raise ValueError(f"diagonal_scatter: input needs at least 2 dims, got shape {_shape(x)}")
    a1, a2 = norm_axis(dim1, x.ndim, "diagonal_scatter"), norm_axis(dim2, x.ndim,
                                                                    "diagonal_scatter")
    offset = _int(offset, "diagonal_scatter", "offset")
    want = _shape(diagonal(x.detach(), offset, a1, a2))
    if _shape(s) != want:
        raise ValueError(f"diagonal_scatter: src of shape {_shape(s)} must match the "
                         f"diagonal's shape {want} (input {_shape(x)})")
    if s.dtype != x.dtype:
        s = s.astype(x.dtype)
    return diagonal_write_back(s, x, {"offset": offset, "axis1": a1, "axis2": a2})


def masked_scatter(input, mask, source) -> Tensor:
    """``input`` with the positions where ``mask`` (bool, broadcast to ``input``'s shape) is
    True filled, in row-major order, from the first elements of ``source``
    (``torch.masked_scatter``). Capture-friendly (a cumulative count picks the source
    element); differentiable in ``input`` and ``source``."""
    from . import elementwise as E
    from .indexing import take
    x, m, src = to_tensor(input), to_tensor(mask), to_tensor(source)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_scatter: mask must be bool, got {m.dtype}")
    if src.dtype != x.dtype:
        raise TypeError(f"masked_scatter: source of dtype {src.dtype} must have input's dtype "
                        f"{x.dtype}")
    try:
        shape = tuple(np.broadcast_shapes(_shape(m), _shape(x)))
    except ValueError:
        raise ValueError(f"masked_scatter: mask of shape {_shape(m)} does not broadcast to "
                         f"input's shape {_shape(x)}") from None
    if shape != _shape(x):
        raise ValueError(f"masked_scatter: mask of shape {_shape(m)} does not broadcast to "
                         f"input's shape {_shape(x)}")
    m = m.broadcast_to(shape) if _shape(m) != shape else m
    flat = m.reshape(-1)
    pos = flat.astype(np.int64).cumsum(0) - 1      # the source element each True takes
    from ..autograd.mode import state
    if state.tracer is None and flat.numel():
        need = int(pos[-1].item()) + 1
        if need > src.numel():
            raise ValueError(f"masked_scatter: source has {src.numel()} elements, fewer than "
                             f"the {need} True values in mask")
    if src.numel() == 0:
        return x.clone()
    picked = take(src.reshape(-1), E.where(flat, pos, 0), 0).reshape(shape)
    return E.where(m, picked, x)


def put(input, index, source, accumulate: bool = False) -> Tensor:
    """``input`` treated as 1-d with ``source``'s elements written (or with
    ``accumulate=True`` added) at the flat positions ``index`` (negative ones count from
    the end), out of place (``torch.Tensor.put``)."""
    from .indexing import index_add, setitem
    x, idx, src = to_tensor(input), to_tensor(index), to_tensor(source)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"put: index must be an integer tensor, got {idx.dtype}")
    if idx.numel() != src.numel():
        raise ValueError(f"put: index has {idx.numel()} elements but source has "
                         f"{src.numel()}")
    n = x.numel()
    from ..autograd.mode import state
    if state.tracer is None and idx.numel() and isinstance(idx._data, np.ndarray):
        lo, hi = int(idx._data.min()), int(idx._data.max())
        if lo < -n or hi >= n:
            raise IndexError(f"put: index {hi if hi >= n else lo} is out of range for a "
                             f"tensor of {n} elements")
    from .indexing import check_write_dtype
    src = check_write_dtype("put", src, x.dtype)
    flat, i, v = x.reshape(-1), idx.reshape(-1), src.reshape(-1)
    if accumulate:
        out = index_add(flat, i, v, 0)     # (tensorlib's form: a negative index wraps)
    else:
        idx._read("put (it reads the index on the host)")
        out = setitem(flat, (i,), v)
    return out.reshape(_shape(x))


def unravel_index(indices, shape) -> tuple[Tensor, ...]:
    """The coordinates in a tensor of ``shape`` of each flat (row-major) index, one int64
    tensor per dim (``torch.unravel_index``; indices wrap modulo the size, as PyTorch's)."""
    from . import elementwise as E
    idx = to_tensor(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"unravel_index: expected 'indices' to be an integer tensor, got "
                        f"{idx.dtype}")
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    dims = tuple(_int(s, "unravel_index", "a size in shape") for s in dims)
    if any(s < 0 for s in dims):
        raise ValueError(f"unravel_index: 'shape' cannot have negative values, got {dims}")
    if math.prod(dims) == 0 and idx.numel():
        raise ValueError(f"unravel_index: cannot unravel into an empty shape {dims}")
    rest = idx.astype(np.int64)
    out = []
    for s in reversed(dims):
        out.append(E.mod(rest, s))
        rest = E.floor_divide(rest, s)
    return tuple(reversed(out))


def sum_to_size(input, *size) -> Tensor:
    """``input`` summed down to ``size``, which must broadcast to its shape
    (``Tensor.sum_to_size``: the adjoint of ``expand``)."""
    x = to_tensor(input)
    s = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
    s = tuple(_int(v, "sum_to_size", "a size") for v in s)
    ok = len(s) <= x.ndim and all(a == b or a == 1 for a, b in
                                  zip(reversed(s), reversed(_shape(x))))
    if not ok:
        raise ValueError(f"sum_to_size: size {s} is not expandable to size {_shape(x)}")
    out = unbroadcast(x, s)
    return out.reshape(s) if _shape(out) != s else out


def _copy_of(name: str, view_fn):
    def fn(input, *args, **kwargs):
        out = view_fn(input, *args, **kwargs)
        if isinstance(out, (tuple, list)):
            return type(out)(o.clone() for o in out)
        return out.clone()
    fn.__name__ = fn.__qualname__ = name + "_copy"
    fn.__doc__ = (f"A copy of ``{name}(input, ...)``'s result, sharing no memory with "
                  f"``input`` (``torch.{name}_copy``).")
    return fn


def _view_fns() -> dict:
    from . import shape as S
    from .diagonal import diagonal
    return {
        "alias": lambda x: to_tensor(x)[...], "detach": lambda x: to_tensor(x).detach(),
        "diagonal": diagonal, "expand": S.expand, "permute": S.permute, "select": S.select,
        "slice": lambda x, dim=0, start=None, end=None, step=1: to_tensor(x)[
            (slice(None),) * norm_axis(dim, to_tensor(x).ndim, "slice_copy")
            + (slice(start, end, step),)],
        "split": lambda x, split_size, dim=0: S.split(x, dim=dim,
                                                      split_size_or_sections=split_size),
        "split_with_sizes": split_with_sizes, "squeeze": S.squeeze,
        "t": t, "transpose": S.swapaxes, "unbind": S.unbind, "unfold": unfold,
        "unsqueeze": S.unsqueeze, "view": S.view,
    }


def _make_copies() -> dict:
    return {name + "_copy": _copy_of(name, fn) for name, fn in _view_fns().items()}


#: ``torch.<view>_copy`` for the view ops (``expand_copy``, ``permute_copy``, ...)
COPY_VARIANTS = _make_copies()


def nonzero_static(input, *, size: int, fill_value: int = -1) -> Tensor:
    """The indices of the first ``size`` nonzero elements, one row each, padded with
    ``fill_value`` to exactly ``size`` rows (``torch.nonzero_static``: a shape known before
    the values are, so it works under capture, unlike ``nonzero``)."""
    from ..creation import arange
    from . import elementwise as E
    from .sorting import argsort
    x = to_tensor(input)
    size = _int(size, "nonzero_static", "size")
    if size < 0:
        raise ValueError(f"nonzero_static: size must be non-negative, got {size}")
    nd = x.ndim
    if nd == 0 or x.numel() == 0:
        from ..creation import full
        return full((size, nd), int(fill_value) if nd else 0, dtype=np.int64,
                    device=x.device)
    flat = (x != 0).reshape(-1)
    n = flat.shape[0]
    order = argsort((~flat).astype(np.int8), axis=0)     # stable: the nonzero ones first
    if size > n:
        from ..creation import zeros
        from .shape import concatenate
        order = concatenate([order, zeros((size - n,), dtype=np.int64, device=x.device)])
    first = order[:size]
    valid = arange(size, device=x.device) < flat.astype(np.int64).sum()
    coords = unravel_index(first, _shape(x))
    from .shape import stack
    return stack([E.where(valid, c, int(fill_value)) for c in coords], axis=1)
