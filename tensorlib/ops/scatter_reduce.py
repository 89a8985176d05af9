"""PyTorch's ``scatter_reduce`` and ``index_reduce`` (sum, prod, mean, amax, amin; the
reductions graph neural networks pool messages with), as composites of registry ops, so
autograd, grad of grad and graph capture follow with no op of their own:

- ``sum`` and ``mean`` are ``scatter_add``s;
- ``amax``/``amin`` take their value from one op of their own, ``scatter_extreme`` (an
  unbuffered ``maximum.at``/``minimum.at``: O(n)); their gradient goes evenly to every
  element equal to the result (the input's own element too with ``include_self``), as
  PyTorch's, and is composed of ``index_add``s, so it needs no vjp of that op;
- ``prod`` sorts the scattered values by target (a stable ``argsort``) and combines each
  target's run with a segmented scan (log2 of the longest run rounds of products): its
  gradient is then the product of the others, also where some values are 0.

Cost: O(n) in the number of scattered values ``n`` for sum, mean, amax and amin, O(n log n)
for prod.
"""
from __future__ import annotations

import functools
import operator

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from ._util import norm_axis, to_tensor
from .registry import OpDef, register

__all__ = ["index_reduce", "scatter_reduce"]

_REDUCES = ("sum", "prod", "mean", "amax", "amin")


def _shape(t: Tensor) -> tuple:
    return tuple(t.shape)


def _check_index_range(name: str, idx: Tensor, n: int, d: int) -> None:
    """Eager check that every index lies in [0, n) (PyTorch refuses negative ones here)."""
    from ..autograd.mode import state
    if state.tracer is not None or not isinstance(idx._data, np.ndarray) or not idx.numel():
        return
    from .indexing import _compact
    c = _compact(idx._data)      # an expanded index: its rows, not its elements
    lo, hi = int(c.min()), int(c.max())
    if lo < 0 or hi >= n:
        from ..errors import IndexRangeError
        raise IndexRangeError(f"{name}: index {lo if lo < 0 else hi} is out of bounds for "
                              "dimension "
                         f"{d} with size {n}")


def _flat_targets(x: Tensor, d: int, idx: Tensor) -> Tensor:
    """For each element of ``idx``, the flat (row-major) position in ``x`` it scatters to:
    ``idx`` along ``d``, its own position in the other dims."""
    from ..creation import arange
    xs = _shape(x)
    # sizes as Python arithmetic (not NumPy's): under capture a size read from a None dim
    # stays a traced size, and the graph recomputes the offsets for each edge count
    strides = [functools.reduce(operator.mul, xs[i + 1:], 1) for i in range(len(xs))]
    lin = idx.astype(np.int64) * strides[d]
    for i, n in enumerate(_shape(idx)):
        if i != d:
            shape = [1] * idx.ndim
            shape[i] = n
            lin = lin + (arange(n, device=x.device) * strides[i]).reshape(shape)
    return lin.reshape(-1)


def _hits(x: Tensor, d: int, idx: Tensor) -> Tensor:
    """How many scattered elements land on each element of ``x`` (int64, x's shape)."""
    from ..creation import ones, zeros
    from .indexing import scatter_add
    # a broadcast 1, not a materialised block of ones: the CPU kernel sums it once per row
    one = ones((1,) * idx.ndim, dtype=np.int64, device=x.device).broadcast_to(_shape(idx))
    return scatter_add(zeros(_shape(x), dtype=np.int64, device=x.device), d, idx, one)


def _shifted(t: Tensor, step: int, fill) -> Tensor:
    """``t`` moved ``step`` places later along dim 0, the first ``step`` places ``fill`` (a
    number, or a 1-element tensor repeated: never combined, any value serves)."""
    from ..creation import full
    from .shape import concatenate
    if isinstance(fill, Tensor):
        head = fill.detach().broadcast_to((step,))
    else:
        head = full((step,), fill, dtype=t.dtype, device=t.device)
    return concatenate([head, t[:-step]], axis=0)


def _segment_scan(lin: Tensor, v: Tensor, counts: Tensor, combine) -> Tensor:
    """Each target's ``combine`` (a product, maximum or minimum) of the values landing on it,
    per flat target (any value where nothing lands: the caller masks those).

    The values are sorted by target (one stable ``argsort``), then a segmented inclusive scan
    (Hillis-Steele: round r combines each element with the one 2**r places before it in the
    same run) leaves each run's total at its end; runs come in target order, so target t's
    ends at ``cumsum(counts)[t] - 1``. Eagerly the rounds stop at the longest run (read on the
    host); under capture, and inside vmap (where values cannot be read), they cover the
    longest possible one."""
    from ..autograd.mode import state
    from . import elementwise as E
    from .indexing import take
    from .sorting import argsort
    order = argsort(lin, axis=0)
    ks, vs = take(lin, order, 0), take(v, order, 0)
    m = ks.shape[0]
    unread = state.tracer is not None or counts.device.type == "vmap"
    longest = m if unread else int(counts.max().item()) if m else 0
    step = 1
    while step < longest:
        same = _shifted(ks, step, -1) == ks
        vs = E.where(same, combine(vs, _shifted(vs, step, vs[:1])), vs)
        step *= 2
    ends = counts.cumsum(0) - 1
    return take(vs, ends.clip(0, max(m - 1, 0)), 0)


def _extreme_fwd(xp, x, lin, v, *, reduce: str, include_self: bool):
    if lin.size and (int(lin.min()) < 0 or int(lin.max()) >= x.shape[0]) and xp is np:
        raise IndexError(f"scatter_extreme: target out of range for {x.shape[0]} elements")
    out = x.copy()
    if not include_self:        # where something lands, the input's value takes no part
        out[lin] = _identity(x.dtype, reduce)
    if getattr(xp, "__name__", "") == "cupy" and x.dtype in (np.float32, np.float64):
        # CuPy's maximum.at/minimum.at on float64 does not return the values exactly (seen
        # on an H200, CuPy 14.2): the gradient's ties, found by equality, went missing
        from ..cuda.kernels import scatter_extreme_
        scatter_extreme_(out, lin, v, reduce == "amax")
        return out
    (xp.maximum if reduce == "amax" else xp.minimum).at(out, lin, v)
    return out


def _identity(dtype: np.dtype, reduce: str):
    """The value that never wins ``reduce`` for ``dtype``: -inf/+inf, or the integer limits."""
    if dtype.kind == "f":
        return -np.inf if reduce == "amax" else np.inf
    if dtype.kind == "b":
        return reduce != "amax"
    info = np.iinfo(dtype)
    return info.min if reduce == "amax" else info.max


def _extreme_onnx(ctx, n):
    if ctx.opset < 18:
        ctx.unsupported("scatter_reduce amax/amin needs opset >= 18 (ScatterElements "
                        "reduction='max'/'min')")
    x, lin, v = ctx.ins(n)
    if not n.attrs["include_self"]:
        fill = np.asarray(_identity(np.dtype(n.inputs[0].dtype), n.attrs["reduce"]),
                          n.inputs[0].dtype)
        x = ctx.op("ScatterElements", [x, lin, ctx.op("Expand", [ctx.const(fill),
                                                                 ctx.op("Shape", [lin])])],
                   axis=0)
    return ctx.op("ScatterElements", [x, lin, v], axis=0, reduction=n.attrs["reduce"][1:])


# The value of scatter_reduce's amax/amin on flat x (n,), targets lin (m,) and values v (m,);
# no vjp: its callers pass detached values and compose the gradient themselves.
SCATTER_EXTREME = register(OpDef(
    "scatter_extreme", _extreme_fwd, saves=False, onnx=_extreme_onnx,
    infer=lambda x, lin, v, *, reduce, include_self: x))


def _extreme(x: Tensor, lin: Tensor, v: Tensor, counts: Tensor, reduce: str,
             include_self: bool) -> Tensor:
    """amax/amin on flat ``x`` (n,), targets ``lin`` and values ``v`` (m,); ``counts``: how
    many land on each target. NaN wins, as in PyTorch (``maximum``/``minimum`` propagate
    it)."""
    from . import elementwise as E
    from .indexing import index_add, take
    hit = counts > 0
    vd = v.detach()
    xd = x.detach()
    m = apply(SCATTER_EXTREME, xd, lin, vd, reduce=reduce, include_self=include_self)
    from ..autograd.mode import state
    if not (state.grad_enabled and (x.requires_grad or v.requires_grad)):
        return m
    # the gradient, evenly over the elements equal to the result (PyTorch's rule): D is linear
    # in x and v with those weights and equals m up to rounding; m's exact value is added back
    # as a constant (Sterbenz: m - D is exact where D is within a factor 2 of m)
    val = take(m, lin, 0)
    src_tie = vd == val
    self_tie = xd == m
    if not include_self:
        self_tie = self_tie & ~hit
    count = index_add(self_tie.astype(x.dtype), 0, lin, src_tie.astype(x.dtype))
    w = 1.0 / E.where(count == 0, 1.0, count)
    D = index_add(E.where(self_tie, x, 0.0) * w, 0, lin,
                  E.where(src_tie, v, 0.0) * take(w, lin, 0))
    exact = D + (m - D).detach()
    return E.where(E.isnan(m), m, E.where(E.isfinite(m), exact, D))


def _product(x: Tensor, lin: Tensor, v: Tensor, counts: Tensor, include_self: bool) -> Tensor:
    """prod on flat ``x``: the segmented scan of products, so the gradients are the products
    of the other elements (also where some are 0)."""
    from . import elementwise as E
    seg = _segment_scan(lin, v, counts, E.mul)
    return E.where(counts > 0, x * seg if include_self else seg, x)


def scatter_reduce(input, dim: int, index, src, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    """``input`` with the elements of ``src`` reduced into the positions ``index`` gives
    along ``dim`` (``torch.scatter_reduce``): ``reduce`` is ``"sum"``, ``"prod"``,
    ``"mean"``, ``"amax"`` or ``"amin"``; with ``include_self=False`` the input's own value
    at a position something lands on takes no part. ``index`` has ``src``'s number of dims
    and is no larger than ``src`` (only that part of it is read) nor than ``input`` outside
    ``dim``; positions nothing lands on keep ``input``'s value. Integer means round down.
    Differentiable in ``input`` and ``src`` (amax/amin share the gradient evenly among
    ties, as PyTorch's).

    >>> x = tl.zeros(3)
    >>> x.scatter_reduce(0, tl.tensor([0, 0, 2]), tl.tensor([1., 5., 2.]), "amax",
    ...                  include_self=False)
    tensor([5., 0., 2.])
    """
    from . import elementwise as E
    from .indexing import _torch_scatter_window, scatter_add
    x, idx, s = to_tensor(input), to_tensor(index), to_tensor(src)
    if reduce not in _REDUCES:
        raise ValueError(f"scatter_reduce: reduce must be one of {', '.join(_REDUCES)}, got "
                         f"{reduce!r}")
    if s.dtype != x.dtype:
        raise TypeError(f"scatter_reduce: src of dtype {s.dtype} must have input's dtype "
                        f"{x.dtype}")
    if x.ndim == 0:
        x0 = scatter_reduce(x.reshape((1,)), dim, idx.reshape((1,)) if idx.ndim == 0 else idx,
                            s.reshape((1,)) if s.ndim == 0 else s, reduce,
                            include_self=include_self)
        return x0.reshape(())
    d, s = _torch_scatter_window("scatter_reduce", x, dim, idx, s)
    _check_index_range("scatter_reduce", idx, x.shape[d], d)
    if idx.numel() == 0:        # x unchanged; src still connected (a zero gradient)
        return scatter_add(x, d, idx, s)
    if reduce == "sum" and include_self:
        return scatter_add(x, d, idx, s)
    counts = _hits(x, d, idx)
    hit = counts > 0
    if reduce == "sum":       # a bool 0 keeps a bool input bool (an int 0 would promote)
        return scatter_add(E.where(hit, False if x.dtype == np.bool_ else 0, x), d, idx, s)
    if reduce == "mean":
        total = scatter_add(x if include_self else E.where(hit, 0, x), d, idx, s)
        n = (counts + 1 if include_self else counts).astype(x.dtype)
        n = E.where(hit, n, 1)
        mean = total / n if x.dtype.kind == "f" else E.floor_divide(total, n)
        return E.where(hit, mean, x)
    lin = _flat_targets(x, d, idx)
    xf, vf, cf = x.reshape(-1), s.reshape(-1), counts.reshape(-1)
    if reduce == "prod":
        out = _product(xf, lin, vf, cf, include_self)
    else:
        out = _extreme(xf, lin, vf, cf, reduce, include_self)
    return out.reshape(_shape(x))


def index_reduce(input, dim: int, index, source, reduce: str, *,
                 include_self: bool = True) -> Tensor:
    """``input`` with the slices of ``source`` along ``dim`` reduced into the slices that
    the 1-d ``index`` names (``torch.index_reduce``): ``reduce`` is ``"prod"``, ``"mean"``,
    ``"amax"`` or ``"amin"``; ``include_self=False`` leaves the input's own values out
    where something lands. Differentiable in ``input`` and ``source``.

    >>> tl.ones(2, 2).index_reduce(0, tl.tensor([1, 1]), tl.tensor([[2., 3.], [4., 5.]]),
    ...                            "prod")
    tensor([[ 1.,  1.],
            [ 8., 15.]])
    """
    x, idx, src = to_tensor(input), to_tensor(index), to_tensor(source)
    if reduce not in _REDUCES[1:]:
        raise ValueError(f"index_reduce: reduce must be one of prod, mean, amax, amin, got "
                         f"{reduce!r}")
    if idx.dtype.kind not in "iu" or idx.ndim > 1:
        raise TypeError(f"index_reduce: index must be a 0-d or 1-d integer tensor, got "
                        f"{idx.dtype} of shape {_shape(idx)}")
    xs = _shape(x) if x.ndim else (1,)
    d = norm_axis(dim, len(xs), "index_reduce")
    idx = idx.reshape(-1)
    ss = _shape(src) if src.ndim else (1,)
    want = xs[:d] + (idx.shape[0],) + xs[d + 1:]
    if ss != want:
        raise ValueError(f"index_reduce: source of shape {_shape(src)} does not fit: expected "
                         f"{want} (input {_shape(x)} with dim {d} the length of index)")
    shape = [1] * len(xs)
    shape[d] = idx.shape[0]
    full = idx.reshape(tuple(shape)).broadcast_to(want)
    out = scatter_reduce(x.reshape(xs), d, full, src.reshape(ss), reduce,
                         include_self=include_self)
    return out.reshape(_shape(x))
