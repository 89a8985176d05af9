"""PyTorch's ``scatter_reduce`` and ``index_reduce`` (sum, prod, mean, amax, amin; the
reductions graph neural networks pool messages with):

- ``sum`` and ``mean`` are ``scatter_add``s;
- ``amax``/``amin`` take their value from one op of their own, ``scatter_extreme``; their
  gradient goes evenly to every element equal to the result (the input's own element too
  with ``include_self``), as PyTorch's, and is composed of ``scatter_add``s, so that op
  needs no vjp;
- ``prod`` is one op, ``scatter_product``, whose vjp is PyTorch's (the product of the
  others: ``out / value``, or a second product where a value is its target's only zero),
  written with the op itself so grad of grad works.

Both ops are one ``ufunc.at`` on the flat positions (NumPy 2's fast path: faster than
sorting the rows once and ``reduceat``, measured at 100k x 64). Their sizes
never depend on the data, so they stay dynamic under capture and export to ONNX as
``ScatterElements`` (reduction ``mul`` from opset 16, ``max``/``min`` from opset 18).
"""
from __future__ import annotations

import numpy as np

from ..errors import DTypeError, ShapeError
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


def _hits(x: Tensor, d: int, idx: Tensor) -> Tensor:
    """How many scattered elements land on each element of ``x`` (int64, x's shape)."""
    from ..creation import ones, zeros
    # a broadcast 1, not a materialised block of ones: the CPU kernel sums it once per row
    one = ones((1,) * idx.ndim, dtype=np.int64, device=x.device).broadcast_to(_shape(idx))
    return _add(zeros(_shape(x), dtype=np.int64, device=x.device), d, idx, one)


def _add(x: Tensor, d: int, idx: Tensor, v: Tensor) -> Tensor:
    """``scatter_add`` whose kernel refuses an index outside [0, n) (PyTorch's rule), also in
    a replayed graph, where no eager check runs."""
    from .indexing import SCATTER_ADD
    return apply(SCATTER_ADD, x, idx, v, axis=d, strict="scatter_reduce")


_UFUNCS = {"amax": "maximum", "amin": "minimum", "prod": "multiply"}


def _identity(dtype: np.dtype, reduce: str):
    """The value that never changes ``reduce`` for ``dtype``: 1 for prod, -inf/+inf or the
    integer limits for amax/amin."""
    if reduce == "prod":
        return True if dtype.kind == "b" else 1
    if dtype.kind == "f":
        return -np.inf if reduce == "amax" else np.inf
    if dtype.kind == "b":
        return reduce != "amax"
    info = np.iinfo(dtype)
    return info.min if reduce == "amax" else info.max


def _flat_targets(xp, shape: tuple, idx, axis: int):
    """For each element of ``idx``, the flat (row-major) position in an array of ``shape``
    it lands on: ``idx`` along ``axis``, its own position in the other dims."""
    strides = [int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(len(shape))]
    lin = idx.astype(np.int64) * strides[axis]
    for i, n in enumerate(idx.shape):
        if i != axis:
            lin = lin + (xp.arange(n, dtype=np.int64) * strides[i]).reshape(
                [n if j == i else 1 for j in range(idx.ndim)])
    return xp.broadcast_to(lin, idx.shape).reshape(-1)


def _segmented_product(xp, lin, v, n: int):
    """Per flat target in [0, n), the product of the values ``v`` landing on it (1 where
    none): a segmented Hillis-Steele scan over the values sorted by target, for backends
    without ``multiply.at``."""
    order = xp.argsort(lin)
    ks, vs = lin[order], v[order]
    step, m = 1, ks.shape[0]
    while step < m:
        same = ks[step:] == ks[:-step]
        # the masked-out branch multiplies by 1, never by another target's value
        vs = xp.concatenate([vs[:step], vs[step:] * xp.where(same, vs[:-step], 1)])
        step *= 2
    out = xp.ones(n, v.dtype)
    last = xp.concatenate([ks[1:] != ks[:-1], xp.ones(min(m, 1), bool)])
    out[ks[last]] = vs[last]
    return out


def _extreme_kernel_applies(x_shape: tuple, dtype, idx_shape: tuple, axis: int) -> bool:
    """Whether _extreme_cpu's kernel takes this case: float32/float64, ``idx`` covering ``x``
    outside ``axis``."""
    return (dtype in (np.float32, np.float64)
            and len(x_shape) > 0 and len(idx_shape) == len(x_shape)
            and idx_shape[:axis] == x_shape[:axis]
            and idx_shape[axis + 1:] == x_shape[axis + 1:])


def _extreme_cpu(x, idx, v, maximum: bool, include_self: bool, axis: int):
    """amax/amin of scatter_reduce with _ops' one-pass kernel (bounds check and combine; no
    flat int64 targets, no NumPy ``maximum.at``); None where it does not apply (the caller's
    NumPy path then runs)."""
    from .. import _ops
    if not _extreme_kernel_applies(x.shape, x.dtype, idx.shape, axis):
        return None
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    out = np.array(x, order="C")
    i3 = idx.astype(np.int64, copy=False).reshape(outer, idx.shape[axis], inner)
    v3 = np.broadcast_to(v.astype(x.dtype, copy=False), idx.shape).reshape(i3.shape)
    bad = _ops.scatter_extreme_f(out.reshape(outer, x.shape[axis], inner), i3, v3, maximum,
                                 include_self)
    if bad is not None:
        from ..errors import IndexRangeError
        raise IndexRangeError(f"scatter_reduce: index {bad} is out of bounds for dimension "
                              f"{axis} with size {x.shape[axis]}")
    return out


def _combine_fwd(xp, x, idx, v, *, reduce: str, include_self: bool, axis: int = 0):
    """``x`` with ``v`` combined by ``reduce`` (amax, amin, prod) into the positions ``idx``
    (``v``'s shape, no larger than ``x`` outside ``axis``) names along ``axis``."""
    n = x.shape[axis]
    if xp is np and reduce in ("amax", "amin"):
        out = _extreme_cpu(x, idx, v, reduce == "amax", include_self, axis)
        if out is not None:
            return out
    if xp is np and idx.size:
        from .indexing import _compact
        c = _compact(idx)
        lo, hi = int(c.min()), int(c.max())
        if lo < 0 or hi >= n:
            from ..errors import IndexRangeError
            raise IndexRangeError(f"scatter_reduce: index {lo if lo < 0 else hi} is out of "
                                  f"bounds for dimension {axis} with size {n}")
    out = xp.array(x, order="C") if xp is np else x.copy()
    lin = _flat_targets(xp, out.shape, idx, axis)
    flat, vf = out.reshape(-1), xp.broadcast_to(v, idx.shape).reshape(-1)
    if not include_self:
        flat[lin] = _identity(x.dtype, reduce)
    if xp is np:
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            getattr(np, _UFUNCS[reduce]).at(flat, lin, vf)
    elif reduce == "prod":
        flat *= _segmented_product(xp, lin, vf, flat.shape[0])
    elif x.dtype in (np.float32, np.float64):
        # CuPy's maximum.at/minimum.at on float64 does not return the values exactly (seen
        # on an H200, CuPy 14.2): the gradient's ties, found by equality, went missing
        from ..cuda.kernels import scatter_extreme_
        scatter_extreme_(flat, lin, vf, reduce == "amax")
    else:
        getattr(xp, _UFUNCS[reduce]).at(flat, lin, vf)
    return out.reshape(x.shape)


def _combine_onnx(ctx, n, reduce: str):
    need = 16 if reduce == "prod" else 18
    if ctx.opset < need:
        ctx.unsupported(f"scatter_reduce {reduce} needs opset >= {need} (ScatterElements "
                        f"reduction='{_ONNX_REDUCTION[reduce]}'); pass opset={need} or more")
    x, idx, v = ctx.ins(n)
    axis, nd = int(n.attrs.get("axis", 0)), len(n.inputs[0].shape)
    shape = ctx.op("Shape", [x])
    if nd > 1:
        # flat positions (as the eager kernel), so the model reads back as the 1-d op
        ishape = ctx.op("Shape", [idx])
        lin = None
        for i in range(nd):
            stride = ctx.op("ReduceProd", [ctx.op("Slice", [
                shape, ctx.const(np.asarray([i + 1], np.int64)),
                ctx.const(np.asarray([nd], np.int64))])], keepdims=1)
            if i == axis:
                term = ctx.op("Mul", [idx, stride])
            else:
                k = ctx.op("Gather", [ishape, ctx.const(np.asarray(i, np.int64))])
                pos = ctx.op("Range", [ctx.const(np.asarray(0, np.int64)), k,
                                       ctx.const(np.asarray(1, np.int64))])
                pos = ctx.op("Reshape", [pos, ctx.const(np.asarray(
                    [-1 if j == i else 1 for j in range(nd)], np.int64))])
                term = ctx.op("Mul", [pos, stride])
            lin = term if lin is None else ctx.op("Add", [lin, term])
        flat = ctx.const(np.asarray([-1], np.int64))
        x = ctx.op("Reshape", [x, flat])
        idx = ctx.op("Reshape", [ctx.op("Expand", [lin, ishape]), flat])
        v = ctx.op("Reshape", [v, flat])
    if not n.attrs["include_self"]:
        fill = np.asarray(_identity(np.dtype(n.inputs[0].dtype), reduce), n.inputs[0].dtype)
        x = ctx.op("ScatterElements", [x, idx, ctx.op("Expand", [ctx.const(fill),
                                                                 ctx.op("Shape", [idx])])],
                   axis=0 if nd > 1 else axis)
    out = ctx.op("ScatterElements", [x, idx, v], axis=0 if nd > 1 else axis,
                 reduction=_ONNX_REDUCTION[reduce])
    return ctx.op("Reshape", [out, shape]) if nd > 1 else out


_ONNX_REDUCTION = {"amax": "max", "amin": "min", "prod": "mul"}


def _combine_infer(x, idx, v, **attrs):
    return x


# amax/amin of scatter_reduce: ``x`` with ``v`` combined into it at ``idx`` along ``axis``;
# no vjp: its callers pass detached values and compose the gradient themselves.
SCATTER_EXTREME = register(OpDef(
    "scatter_extreme", _combine_fwd, saves=False, infer=_combine_infer,
    onnx=lambda ctx, n: _combine_onnx(ctx, n, n.attrs["reduce"])))


def _product_vjp(n, g):
    """PyTorch's rule: the product of the others, as ``out / value`` where the value is
    nonzero, and from a second product with that value set to 1 where it is its target's
    only zero. Written with this op, so grad of grad works; a NaN/inf only reaches the
    gradients of its own target's elements."""
    from ..creation import zeros
    from . import elementwise as E
    from .indexing import SCATTER_ADD, _torch_gather
    x, idx, v = n.inputs
    out = n.out
    d, inc = n.attrs["axis"], n.attrs["include_self"]
    hit = _hits(x, d, idx) > 0
    gx = gv = None
    if x.requires_grad:
        if inc:
            ms = E.where(x == 0, 1, x)
            gx = E.where(hit, g * _scatter_product(ms, idx, v, d, True) / ms, g)
        else:
            gx = E.where(hit, 0, g)
    if v.requires_grad:
        vz = v == 0
        zeros_at = apply(SCATTER_ADD, zeros(_shape(x), dtype=x.dtype, device=x.device), idx,
                         vz.astype(x.dtype), axis=d)
        single = vz & (_torch_gather(zeros_at, d, idx, checked=False) == 1)
        others = _scatter_product(x, idx, E.where(single, 1, v), d, inc)
        gv = E.where(single, _torch_gather(g * others, d, idx, checked=False),
                     _torch_gather(g * out, d, idx, checked=False) / E.where(vz, 1, v))
    return gx, None, gv


SCATTER_PRODUCT = register(OpDef(
    "scatter_product",
    lambda xp, x, idx, v, *, include_self, axis: _combine_fwd(
        xp, x, idx, v, reduce="prod", include_self=include_self, axis=axis),
    vjp=_product_vjp, saves=True, saves_output=True, infer=_combine_infer,
    onnx=lambda ctx, n: _combine_onnx(ctx, n, "prod")))


def _scatter_product(x: Tensor, idx: Tensor, v: Tensor, d: int, include_self: bool) -> Tensor:
    return apply(SCATTER_PRODUCT, x, idx, v, include_self=include_self, axis=d)


def _extreme(x: Tensor, d: int, idx: Tensor, v: Tensor, reduce: str,
             include_self: bool) -> Tensor:
    """amax/amin of ``v`` into ``x`` at ``idx`` along ``d``. NaN wins, as in PyTorch
    (``maximum``/``minimum`` propagate it)."""
    from . import elementwise as E
    from .indexing import SCATTER_ADD, _torch_gather
    vd = v.detach()
    xd = x.detach()
    m = apply(SCATTER_EXTREME, xd, idx, vd, reduce=reduce, include_self=include_self, axis=d)
    from ..autograd.mode import state
    if state.fwd_ad is None and not (state.grad_enabled and (x.requires_grad or v.requires_grad)):
        return m
    # the gradient, evenly over the elements equal to the result (PyTorch's rule): D is linear
    # in x and v with those weights and equals m up to rounding; m's exact value is added back
    # as a constant (Sterbenz: m - D is exact where D is within a factor 2 of m)
    src_tie = vd == _torch_gather(m, d, idx, checked=False)
    self_tie = xd == m
    if not include_self:
        self_tie = self_tie & ~(_hits(x, d, idx) > 0)
    count = apply(SCATTER_ADD, self_tie.astype(x.dtype), idx, src_tie.astype(x.dtype), axis=d)
    w = 1.0 / E.where(count == 0, 1.0, count)
    D = apply(SCATTER_ADD, E.where(self_tie, x, 0.0) * w, idx,
              E.where(src_tie, v, 0.0) * _torch_gather(w, d, idx, checked=False), axis=d)
    exact = D + (m - D).detach()
    return E.where(E.isnan(m), m, E.where(E.isfinite(m), exact, D))


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
    from .indexing import _torch_scatter_window
    x, idx, s = to_tensor(input), to_tensor(index), to_tensor(src)
    if reduce not in _REDUCES:
        raise ValueError(f"scatter_reduce: reduce must be one of {', '.join(_REDUCES)}, got "
                         f"{reduce!r}")
    if s.dtype != x.dtype:
        raise DTypeError(f"scatter_reduce: src of dtype {s.dtype} must have input's dtype "
                         f"{x.dtype}, as in PyTorch")
    if x.dtype.kind == "c" and reduce not in ("sum", "mean"):
        raise DTypeError(f"scatter_reduce: reduce={reduce!r} is not supported for complex "
                        "tensors (sum and mean are; amax/amin need an order)")
    if x.ndim == 0:
        x0 = scatter_reduce(x.reshape((1,)), dim, idx.reshape((1,)) if idx.ndim == 0 else idx,
                            s.reshape((1,)) if s.ndim == 0 else s, reduce,
                            include_self=include_self)
        return x0.reshape(())
    d, s = _torch_scatter_window("scatter_reduce", x, dim, idx, s)
    if not (reduce in ("amax", "amin") and x._device.type == "cpu"
            and _extreme_kernel_applies(_shape(x), x.dtype, _shape(idx), d)):
        # (the amax/amin kernel checks the range in its own pass over the index)
        _check_index_range("scatter_reduce", idx, x.shape[d], d)
    if idx.numel() == 0:        # x unchanged; src still connected (a zero gradient)
        return _add(x, d, idx, s)
    if reduce == "sum" and include_self:
        return _add(x, d, idx, s)
    if reduce == "prod":
        return _scatter_product(x, idx, s, d, include_self)
    if reduce in ("amax", "amin"):
        return _extreme(x, d, idx, s, reduce, include_self)
    counts = _hits(x, d, idx)
    hit = counts > 0
    if reduce == "sum":       # a bool 0 keeps a bool input bool (an int 0 would promote)
        return _add(E.where(hit, False if x.dtype == np.bool_ else 0, x), d, idx, s)
    total = _add(x if include_self else E.where(hit, 0, x), d, idx, s)
    if x.dtype.kind == "c":     # a real count: the complex total times its reciprocal
        from .._dtypes import real_of
        n = (counts + 1 if include_self else counts).astype(real_of(x.dtype))
        return E.where(hit, total * (1.0 / E.where(hit, n, 1)), x)
    n = (counts + 1 if include_self else counts).astype(x.dtype)
    n = E.where(hit, n, 1)
    mean = total / n if x.dtype.kind == "f" else E.floor_divide(total, n)
    return E.where(hit, mean, x)


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
        raise DTypeError(f"index_reduce: index must be a 0-d or 1-d integer tensor, got "
                        f"{idx.dtype} of shape {_shape(idx)}")
    xs = _shape(x) if x.ndim else (1,)
    d = norm_axis(dim, len(xs), "index_reduce")
    idx = idx.reshape(-1)
    ss = _shape(src) if src.ndim else (1,)
    want = xs[:d] + (idx.shape[0],) + xs[d + 1:]
    if ss != want:
        raise ShapeError(f"index_reduce: source of shape {_shape(src)} does not fit: expected "
                         f"{want} (input {_shape(x)} with dim {d} the length of index)")
    shape = [1] * len(xs)
    shape[d] = idx.shape[0]
    full = idx.reshape(tuple(shape)).broadcast_to(want)
    out = scatter_reduce(x.reshape(xs), d, full, src.reshape(ss), reduce,
                         include_self=include_self)
    return out.reshape(_shape(x))
