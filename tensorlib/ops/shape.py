"""Shape ops: reshape, transpose, broadcast, join/split, pad, flip, roll, repeat, tile, tri."""
from __future__ import annotations

import functools
import math
import operator

import numpy as np

from .. import _dtypes
from .._apply import apply
from .._tensor import Tensor
from ..autograd.mode import state
from ..errors import ShapeError
from .registry import OpDef, register, shape_check
from .size_guard import SIZE_RULES, plain, size_guard, traced
from ._util import norm_axes, norm_axis, one_of, promote_types, to_tensor, unbroadcast


def _move_cost(in_specs, out_specs, **attrs):
    outs = out_specs if isinstance(out_specs, list) else [out_specs]
    b = sum(math.prod(d or 1 for d in s) * np.dtype(t).itemsize for s, t in outs)
    return 0, b


def _op(name, fwd, vjp, infer=None, view=False, saves=False, **kw):
    # data movement: each rule moves gradients with 0/1 weights, holomorphic for complex
    kw.setdefault("complex", "holomorphic")
    return register(OpDef(name, fwd, vjp=vjp, infer=infer, cost=_move_cost, view=view,
                          saves=saves, **kw))


# --- reshape ------------------------------------------------------------------
def _resolve_shape(shape, total, op="reshape", src=None):
    shape = tuple(int(s) for s in shape)
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise ValueError(f"{op}: only one dimension can be -1, got {shape}")
    if any(s < -1 for s in shape):
        raise ValueError(f"{op}: invalid shape {shape}")
    known = math.prod(s for s in shape if s != -1)
    if neg:
        if known == 0 or total % known:
            raise ValueError(f"{op}: cannot reshape tensor of shape {src} ({total} elements) "
                             f"into {shape}")
        shape = tuple(total // known if s == -1 else s for s in shape)
    if math.prod(shape) != total:
        raise ValueError(f"{op}: cannot reshape tensor of shape {src} ({total} elements) into "
                         f"{shape} ({math.prod(shape)} elements)")
    return shape


def _kept(shape, keep, src):
    """``shape`` with the dims at positions ``keep`` taken from ``src`` (the input's shape):
    a captured graph's reshape of a ``None`` dim copies it at run time (ONNX Reshape's 0)."""
    if not keep:
        return shape
    shape = list(shape)
    for i in keep:
        shape[i] = src[i]
    return tuple(shape)


def _target(shape, keep, sizes, shapes, op):
    """The target shape at run time: ``keep`` copies input 0's dims, ``sizes`` evaluates its
    expressions over the inputs' shapes (:mod:`tensorlib.graph.sizes`)."""
    if not keep and not sizes:
        return shape
    from ..graph.sizes import apply_sizes, inputs_of
    shape = _kept(tuple(shape), keep, shapes[0])
    if sizes and any(k >= len(shapes) for _, e in sizes for k in inputs_of(e)):
        # a view's history rebuilt from its base (one input): the recorded sizes stand
        if state.tracer is not None:
            from ..graph.tracer import CaptureError
            raise CaptureError(f"{op}: a view whose size is computed at run time was used "
                               "after its base changed in place; .clone() the view first")
        return shape
    return apply_sizes(shape, sizes, shapes)


def _reshape_fwd(xp, x, *srcs, shape, keep=(), sizes=()):
    if keep or sizes:
        shape = _target(shape, keep, sizes, [x.shape] + [s.shape for s in srcs], "reshape")
    tgt = _resolve_shape(shape, x.size, src=x.shape)
    if xp is np and not x.flags.c_contiguous and x.size >= _TILED_COPY_MIN:
        try:
            return np.reshape(x, tgt, copy=False)      # a view where NumPy can make one
        except ValueError:
            return contiguous_copy(x).reshape(tgt)     # else the copy NumPy would make
    return x.reshape(tgt)


def _reshape_infer(x, *srcs, shape, keep=(), sizes=()):
    src = tuple(x[0])
    tgt = _target(shape, keep, sizes, [src] + [tuple(s[0]) for s in srcs], "reshape")
    dynamic = {i for i, d in enumerate(src) if d is None}
    if not dynamic and None not in tgt:
        return _resolve_shape(tgt, math.prod(src), src=src), x[1]
    if dynamic == set(keep) and -1 in tgt and \
            all(d is not None for i, d in enumerate(tgt) if i not in dynamic):
        # every unknown size is copied through, so -1 stands for known sizes only
        rest = math.prod(d for i, d in enumerate(src) if i not in dynamic)
        known = math.prod(d for i, d in enumerate(tgt) if i not in dynamic and d != -1)
        if known and rest % known == 0:
            return tuple(rest // known if d == -1 else d for d in tgt), x[1]
    if -1 not in tgt and None not in tgt:      # fully given: the element count must agree
        return _resolve_shape(tgt, math.prod(tgt), src=src), x[1]
    return tuple(None if s is None or s == -1 else s for s in tgt), x[1]


def _reshape_vjp(n, g):
    return (g.reshape(n.inputs[0].shape),) + (None,) * (len(n.inputs) - 1)


RESHAPE = _op("reshape", _reshape_fwd, _reshape_vjp, _reshape_infer, view=True)


def _sizes_kw(op: str, args: tuple, kw_name: str, kw) -> tuple:
    """Varargs sizes, or PyTorch's keyword form (``reshape(shape=...)``), not both."""
    if kw is None:
        return args
    if args:
        raise TypeError(f"{op}: got the sizes both positionally and as {kw_name}=")
    return (kw,)


def reshape(x, *dims, shape=None) -> Tensor:
    """``x``'s elements, in row-major order, in a tensor of the given shape
    (``torch.reshape``).

    The shape is given as ints (``x.reshape(2, -1)``), one sequence
    (``x.reshape((2, -1))``) or ``shape=``; one dim may be -1, inferred from the others.
    As PyTorch, the result is a view sharing ``x``'s memory where the strides allow and a
    copy otherwise (use :func:`view` to require a view). Under capture with None dims,
    sizes read from them (``x.shape[0]``, ``n * 3``, ``n // 2``) are computed when the
    graph runs.

    >>> tl.arange(6).reshape(2, -1)
    tensor([[0, 1, 2],
            [3, 4, 5]])
    """
    shape = _sizes_kw("reshape", dims, "shape", shape) if shape is not None else dims
    x = to_tensor(x)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if state.tracer is None:
        # (the same shape too gives a new view, as PyTorch's: x itself would follow an
        # in-place t_() or squeeze_() of the "view")
        return apply(RESHAPE, x, shape=tuple(map(int, shape)))
    keep, _, sizes, srcs = _traced_target(x, shape)
    shape = tuple(plain(s) for s in shape)
    if keep or sizes:
        attrs = {"shape": shape}
        if keep:
            attrs["keep"] = keep
        if sizes:
            attrs["sizes"] = sizes
        return apply(RESHAPE, x, *srcs, **attrs)
    return apply(RESHAPE, x, shape=shape)


def view(x, *shape, size=None) -> Tensor:
    """``x`` seen with another shape, sharing its memory (``torch.Tensor.view``).

    :func:`reshape` that never copies: writes through the result change ``x``. The
    shape is given as ints, one sequence or ``size=`` (PyTorch's keyword); one dim may be
    -1. Raises where ``x``'s strides (a transpose, a strided slice) would need a copy:
    use ``reshape`` (copies when it must) or ``x.contiguous().view``.

    >>> x = tl.zeros(2, 3)
    >>> v = x.view(6)
    >>> v[0] = 1.0
    >>> x[0, 0].item()
    1.0
    """
    shape = _sizes_kw("view", shape, "size", size)
    x = to_tensor(x)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        raise TypeError(f"view: got {shape[0]!r}; view(dtype), which reinterprets the bits, is "
                        "not supported: convert the values with x.to(dtype) or x.astype(dtype)")
    arr = x._data
    if isinstance(arr, np.ndarray) and arr.ndim and not arr.flags.c_contiguous:
        # int.__int__: a traced size read here does not become a plain number
        target = tuple(int.__int__(int(s) if isinstance(s, np.integer) else s) for s in shape)
        try:
            np.reshape(arr, target, copy=False)
        except ValueError:
            from ..errors import ShapeError
            raise ShapeError(
                f"view: a tensor of shape {tuple(arr.shape)} and strides "
                f"{tuple(st // arr.itemsize for st in arr.strides)} (a transpose or strided "
                f"slice) cannot be viewed as {target} without a copy; use .reshape(...), "
                "which copies when it must, or .contiguous().view(...)") from None
    return reshape(x, *shape)


def _traced_target(x, shape) -> tuple:
    """Capture with None dims: how the target ``shape`` follows the dims at run time.
    ``keep``: positions holding ``x``'s own size at that position where that dim follows a
    None dim (``x.reshape(x.shape[0], -1)``; ONNX Reshape's 0); ``sizes``: every other
    traced size, as an expression over the dims of ``x`` (input 0) and of the tensors the
    sizes were read from (``srcs``, inputs 1...). A literal equal to the traced size stays
    a literal. Returns (keep, ``x``'s dynamic positions, sizes, srcs)."""
    from ..graph.sizes import lower
    from ..graph.tracer import TracedSize
    dynamic, keep = _kept_dims(x, shape)
    rest = [None if i in keep else s for i, s in enumerate(shape)]
    _, sizes, srcs = lower([s if isinstance(s, TracedSize) else 0 for s in rest], [x], 1)
    return keep, dynamic, sizes, srcs


def _kept_dims(x, shape) -> tuple:
    """(``x``'s positions whose size follows a None dim, the target positions holding
    exactly that size of ``x`` itself at the same position)."""
    from ..graph.tracer import TracedSize
    sizes = x.shape                # marked where x's own dims follow a None dim
    dynamic = tuple(i for i, d in enumerate(sizes) if isinstance(d, TracedSize))
    keep = tuple(i for i, s in enumerate(shape)
                 if isinstance(s, TracedSize) and s.src is x and s.axis == i
                 and i in dynamic)
    return dynamic, keep


def flatten(x, start_axis: int = 0, end_axis: int = -1, *, start_dim: int | None = None,
            end_dim: int | None = None) -> Tensor:
    """Merge axes ``start_axis`` to ``end_axis`` (both included) into one; a 0-d tensor
    becomes shape (1,). ``start_dim``/``end_dim`` are PyTorch's names."""
    start_axis = start_axis if start_dim is None else start_dim
    end_axis = end_axis if end_dim is None else end_dim
    x = to_tensor(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    s = norm_axis(start_axis, x.ndim, "flatten")
    e = norm_axis(end_axis, x.ndim, "flatten")
    if e < s:
        raise ValueError(f"flatten: end_axis {end_axis} comes before start_axis {start_axis}")
    shp = x.shape
    return reshape(x, shp[:s] + (math.prod(shp[s:e + 1]),) + shp[e + 1:])


def _squeeze_infer(x, *, axis):
    return tuple(d for i, d in enumerate(x[0]) if i not in axis), x[1]


def _squeeze_fwd(xp, x, axis):
    for a in axis:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: cannot squeeze axis {a} of size {x.shape[a]} "
                             f"(shape {x.shape})")
    return x.reshape(tuple(d for i, d in enumerate(x.shape) if i not in axis))


SQUEEZE = _op("squeeze", _squeeze_fwd, lambda n, g: (g.reshape(n.inputs[0]._data.shape),),
              _squeeze_infer, view=True)


def squeeze(x, axis=None, *, dim=None) -> Tensor:
    """Remove size-1 axes (all of them, or those named by ``axis``: an int or a tuple;
    ``dim=`` is PyTorch's name). A named axis of another size stays, as in PyTorch
    (``x.squeeze(-1)`` on an already squeezed tensor is a no-op)."""
    x = to_tensor(x)
    axis = one_of("squeeze", "axis", axis, "dim", dim)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = tuple(a for a in norm_axes(axis, x.ndim, "squeeze") if x._data.shape[a] == 1)
    return apply(SQUEEZE, x, axis=axes)


def _expand_dims_fwd(xp, x, axis):
    return xp.expand_dims(x, axis)


def _expand_dims_infer(x, *, axis):
    shape = list(x[0])
    for a in sorted(axis):
        shape.insert(a, 1)
    return tuple(shape), x[1]


EXPAND_DIMS = _op("expand_dims", _expand_dims_fwd,
                  lambda n, g: (g.reshape(n.inputs[0]._data.shape),), _expand_dims_infer,
                  view=True)


def expand_dims(x, axis, *, _op: str = "expand_dims") -> Tensor:
    """Insert size-1 axes at ``axis`` (int or tuple) of the result."""
    x = to_tensor(x)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    nd = x.ndim + len(axes)
    return apply(EXPAND_DIMS, x, axis=norm_axes(axes, nd, _op, "the result"))


def unsqueeze(x, dim) -> Tensor:
    """``x`` with a size-1 dim inserted at position ``dim`` of the result
    (``torch.unsqueeze``; NumPy's ``expand_dims``).

    ``dim`` counts in the result's dims, so it ranges over ``[-x.ndim - 1, x.ndim]``; a
    negative one counts from the end (``-1`` appends a dim). The result is a view of ``x``.

    >>> x = tl.tensor([1., 2., 3.])
    >>> x.unsqueeze(0).shape, x.unsqueeze(-1).shape
    ((1, 3), (3, 1))
    """
    return expand_dims(x, dim, _op="unsqueeze")


# --- transpose -----------------------------------------------------------------
def _transpose_infer(x, *, axes):
    if sorted(axes) != list(range(len(x[0]))):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {len(x[0])} "
                         "dimensions")
    return tuple(x[0][a] for a in axes), x[1]


TRANSPOSE = _op("transpose", lambda xp, x, axes: xp.transpose(x, axes),
                lambda n, g: (g.transpose(tuple(np.argsort(n.attrs["axes"]).tolist())),),
                _transpose_infer, view=True)


def transpose(x, *axes, dim0: int | None = None, dim1: int | None = None) -> Tensor:
    """``x`` with its dims swapped or permuted; a view sharing ``x``'s memory.

    Two ints swap those two dims, as ``torch.transpose`` (``x.transpose(-2, -1)`` or
    ``x.transpose(dim0=-2, dim1=-1)``); on a matrix both readings of ``(1, 0)`` agree, and
    ``(0, 1)`` swaps too rather than doing nothing. As NumPy's, no dims reverses them all
    and a full permutation may be given as a tuple or several ints
    (``x.transpose((2, 0, 1))``).

    >>> tl.zeros(2, 3, 4).transpose(0, 2).shape
    (4, 3, 2)
    >>> tl.tensor([[1, 2], [3, 4]]).transpose(0, 1)
    tensor([[1, 3],
            [2, 4]])
    """
    if dim0 is not None or dim1 is not None:
        given = list(axes) + [d for d in (dim0, dim1) if d is not None]
        if len(given) != 2 or (dim0 is not None and len(axes) > 0):
            raise TypeError("transpose: dim0= and dim1= name the two dims to swap; pass both "
                            "(the first may be positional)")
        axes = tuple(given)
    x = to_tensor(x)
    nd = x.ndim
    if (len(axes) == 2 and all(isinstance(a, (int, np.integer)) for a in axes)
            and not isinstance(axes[0], bool)):
        return swapaxes(x, int(axes[0]), int(axes[1]), _op="transpose")
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = axes[0]
    if axes is None or axes == ():
        axes = tuple(range(nd))[::-1]
    axes = tuple(norm_axis(a, nd, "transpose") for a in axes)
    if sorted(axes) != list(range(nd)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {nd} dimensions "
                         f"of a tensor of shape {x.shape}")
    return apply(TRANSPOSE, x, axes=axes)


def permute(x, *axes, dims=None) -> Tensor:
    """``x`` with its dims reordered: dim ``i`` of the result is dim ``dims[i]`` of ``x``
    (``torch.permute``); a view sharing ``x``'s memory.

    The order is given as ints (``x.permute(2, 0, 1)``), one sequence
    (``x.permute((2, 0, 1))``) or ``dims=``; negative dims count from the end, and each
    dim must appear exactly once.

    >>> img = tl.zeros(32, 32, 3)           # H, W, C
    >>> img.permute(2, 0, 1).shape          # C, H, W
    (3, 32, 32)
    """
    axes = _sizes_kw("permute", axes, "dims", dims)
    x = to_tensor(x)
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    nd = x.ndim
    got = [norm_axis(a, nd, "permute") for a in axes]
    if sorted(got) != list(range(nd)):
        raise ValueError(f"permute: dims {tuple(axes)} are not a permutation of the {nd} dims "
                         f"of a tensor of shape {tuple(x.shape)} (each of 0..{nd - 1} once)")
    return transpose(x, axes)


def swapaxes(x, axis1: int | None = None, axis2: int | None = None, *,
             axis0: int | None = None, _op: str = "swapaxes") -> Tensor:
    """Exchange two axes (what PyTorch's ``transpose(x, dim0, dim1)`` does). NumPy's names
    ``swapaxes(x, axis1, axis2)`` or PyTorch's keywords ``swapaxes(x, axis0=, axis1=)``."""
    if axis0 is not None:       # PyTorch's spelling: axis0 and axis1 are the two axes
        if axis2 is not None:
            raise TypeError(f"{_op}: pass the axes as (axis1, axis2), NumPy's names, or as "
                            "(axis0, axis1), PyTorch's, not axis0 with axis2")
        axis1, axis2 = axis0, axis1
    if axis1 is None or axis2 is None:
        raise TypeError(f"{_op}: expects two axes, got axis1={axis1!r}, axis2={axis2!r}")
    x = to_tensor(x)
    nd = x.ndim
    a, b = norm_axis(axis1, nd, _op), norm_axis(axis2, nd, _op)
    axes = list(range(nd))
    axes[a], axes[b] = axes[b], axes[a]
    return apply(TRANSPOSE, x, axes=tuple(axes))


# --- broadcast -------------------------------------------------------------------
def _broadcast_infer(x, *srcs, shape, sizes=()):
    from ..graph.sizes import apply_sizes
    shape = apply_sizes(shape, sizes, [tuple(x[0])] + [tuple(s[0]) for s in srcs])
    if len(x[0]) > len(shape):
        raise ValueError(f"broadcast_to: cannot broadcast shape {x[0]} to fewer dimensions "
                         f"{shape}")
    lead = len(shape) - len(x[0])
    out = []
    for i, d in enumerate(shape):
        s = x[0][i - lead] if i >= lead else 1
        if d is not None and s is not None and s != 1 and s != d:
            raise ValueError(f"broadcast_to: cannot broadcast shape {tuple(x[0])} to "
                             f"{tuple(shape)}")
        out.append(d)
    return tuple(out), x[1]


def _broadcast_fwd(xp, x, *srcs, shape, sizes=()):
    tgt = _target(shape, (), sizes, [x.shape] + [s.shape for s in srcs], "broadcast_to")
    return xp.broadcast_to(x, tgt)


def _broadcast_cpu(x, *srcs, shape, sizes=()):
    # the view made directly (strides 0 where x has size 1 or no dim): np.broadcast_to's
    # Python layers cost ~4x more, and this runs in every sum's and mean's backward
    tgt = _target(shape, (), sizes, [x.shape] + [s.shape for s in srcs], "broadcast_to")
    lead = len(tgt) - x.ndim
    if lead >= 0 and x.size and x.flags.c_contiguous:
        strides = [0] * lead
        for d, t, st in zip(x.shape, tgt[lead:], x.strides):
            if d == t:
                strides.append(st)
            elif d == 1:
                strides.append(0)
            else:
                break
        else:
            out = np.ndarray(tgt, x.dtype, x, 0, tuple(strides))
            out.flags.writeable = False
            return out
    return np.broadcast_to(x, tgt)      # (raises on shapes that do not broadcast)


def _broadcast_vjp(n, g):
    return (unbroadcast(g, n.inputs[0]._data.shape),) + (None,) * (len(n.inputs) - 1)


BROADCAST_TO = _op("broadcast_to", _broadcast_fwd, _broadcast_vjp, _broadcast_infer,
                   view=True, kernels={"cpu": _broadcast_cpu})


def broadcast_to(x, shape) -> Tensor:
    """A read-only broadcast view with the given shape. Under capture with None dims, sizes
    read from them (``y.shape``, ``x.shape[0] * 2``) are computed when the graph runs."""
    x = to_tensor(x)
    shape = tuple(shape)
    if state.tracer is not None:
        from ..graph.tracer import TracedSize
        if any(isinstance(s, TracedSize) for s in shape):
            from ..graph.sizes import lower
            plain, sizes, srcs = lower(shape, [x], 1)
            lead = len(shape) - x.ndim
            if plain == x._data.shape and all(e == ("dim", 0, p - lead) for p, e in sizes):
                return x            # x's own sizes, each at its own position
            return apply(BROADCAST_TO, x, *srcs, shape=plain, sizes=sizes)
    shape = tuple(int(s) for s in shape)
    return x if shape == x._data.shape else apply(BROADCAST_TO, x, shape=shape)


def expand(x, *sizes, size=None) -> Tensor:
    """PyTorch's expand: -1 keeps a dimension (sizes as varargs, a tuple or ``size=``)."""
    sizes = _sizes_kw("expand", sizes, "size", size)
    x = to_tensor(x)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes given for a tensor of {x.ndim} dimensions")
    shp = x.shape
    shape = tuple(shp[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    for i in range(x.ndim):
        have, want = shp[i], shape[lead + i]
        if have != 1 and have != want and have is not None and want is not None:
            raise ValueError(f"expand: dim {i} of shape {tuple(shp)} has size {have}, which "
                             f"cannot become {want} (only size-1 dims expand; tl.tile "
                             "copies)")
    return broadcast_to(x, shape)


# --- concatenate / stack / split ----------------------------------------------------
def _concat_infer(*xs, axis):
    base = list(xs[0][0])
    for s, _ in xs[1:]:
        if len(s) != len(base) or any(a != b for i, (a, b) in enumerate(zip(s, base))
                                      if i != axis and a is not None and b is not None):
            raise ValueError("concatenate: all shapes must match except along axis "
                             f"{axis}; got {[tuple(x[0]) for x in xs]}")
    sizes = [s[axis] for s, _ in xs]
    base[axis] = None if None in sizes else sum(sizes)
    return tuple(base), category_dtype(d for _, d in xs)


def _concat_vjp(n, g):
    a = n.attrs["axis"]
    sizes = [t._data.shape[a] for t in n.inputs]
    idx = np.cumsum(sizes)[:-1].tolist()
    if len(sizes) == 1:
        return (g,)
    return split(g, idx, axis=a)


CONCATENATE = _op("concatenate", lambda xp, *xs, axis: xp.concatenate(xs, axis=axis),
                  _concat_vjp, _concat_infer)


def concatenate(tensors, axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors along an existing dim (``torch.cat``; also ``tl.concat`` and
    ``tl.concatenate``).

    Args:
        tensors: a sequence of tensors of the same rank whose shapes agree except along
            ``dim``; mixed dtypes are promoted as PyTorch (an int tensor joined with a
            float32 one gives float32). 1-D empty tensors beside tensors of another rank
            are skipped, as PyTorch's legacy rule.
        dim: the dim to join along (``axis`` is NumPy's name for it); negative counts from
            the end.
        out: a tensor to write the result into (PyTorch's ``out=``).

    >>> a, b = tl.ones(2, 3), tl.zeros(1, 3)
    >>> tl.cat([a, b]).shape
    (3, 3)
    >>> tl.cat([a, a], dim=1).shape
    (2, 6)
    """
    axis = axis if dim is None else dim
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)) and \
            not hasattr(tensors, "__iter__"):
        extra = (" (the second positional argument is the axis: tl.cat([a, b]), not "
                 "tl.cat(a, b))" if isinstance(axis, Tensor) else "")
        raise TypeError(f"concatenate: takes a sequence of tensors, got a "
                        f"{type(tensors).__name__}; write tl.cat([a, b], dim=0){extra}")
    ts = [t if type(t) is Tensor else to_tensor(t) for t in tensors]
    if not ts:
        raise ValueError("concatenate: needs at least one tensor")
    ts = to_common_dtype(ts)
    if len(ts) > 1:
        ts = _skip_legacy_empty(ts)
    nd = ts[0].ndim
    if nd == 0:
        raise ValueError("concatenate: zero-dimensional tensors cannot be concatenated")
    return apply(CONCATENATE, *ts, axis=norm_axis(axis, nd, "concatenate"))


def _skip_legacy_empty(ts: list) -> list:
    """PyTorch's cat skips 1-d empty tensors (its legacy "no tensor" value, as in
    ``out = torch.tensor([]); out = torch.cat([out, x])``) beside tensors of another rank;
    they still take part in the dtype promotion (done before)."""
    if not any(t.ndim == 1 and t.shape[0] == 0 for t in ts):
        return ts
    kept = [t for t in ts if not (t.ndim == 1 and t.shape[0] == 0)]
    if not kept or all(t.ndim == 1 for t in kept):
        return ts       # all 1-d: an ordinary concatenation
    return kept


cat = concat = concatenate


def category_dtype(dtypes) -> np.dtype:
    """The dtype tensors of ``dtypes`` are joined in, by PyTorch's ``promote_types``:
    integers and bools meeting floats take the floats' dtype (int64 with float32 is float32;
    NumPy would give float64)."""
    return functools.reduce(promote_types, (np.dtype(d) for d in dtypes))


def to_common_dtype(ts: list) -> list:
    """``ts`` cast to their :func:`category_dtype` where they differ (cat, stack)."""
    dts = {t._data.dtype for t in ts}
    if len(dts) == 1:
        return ts
    dt = category_dtype(dts)
    return [t if t._data.dtype == dt else t.astype(dt) for t in ts]


def _stack_infer(*xs, axis):
    # None (a dynamic dim) agrees with any size; the merged shape keeps the known sizes
    s = list(xs[0][0])
    for i, (shape, _) in enumerate(xs[1:], 1):
        if len(shape) != len(s) or any(a is not None and b is not None and a != b
                                       for a, b in zip(s, shape)):
            raise ShapeError("stack: all tensors must have the same shape, got "
                             f"{tuple(xs[0][0])} at entry 0 and {tuple(shape)} at entry {i}")
        s = [b if a is None else a for a, b in zip(s, shape)]
    s.insert(axis, len(xs))
    return tuple(s), category_dtype(d for _, d in xs)


def _stack_vjp(n, g):
    # one unbind op rather than a slice per input (2048 getitems for 2048 stacked tensors)
    return unbind(g, n.attrs["axis"])


def _stack_cpu(*xs, axis):
    # along axis 0, one concatenate and a free reshape: np.stack expands each array first,
    # which costs more than the copy for many small ones (2048 x (4,): 440 -> 120 us);
    # 0-d arrays (a batch of labels) in one np.array call (64 of them: 36 -> 2.4 us)
    if axis == 0:
        if xs[0].ndim:
            return np.concatenate(xs).reshape((len(xs),) + xs[0].shape)
        return np.array(xs, dtype=xs[0].dtype)
    return np.stack(xs, axis=axis)


STACK = _op("stack", lambda xp, *xs, axis: xp.stack(xs, axis=axis), _stack_vjp, _stack_infer,
            kernels={"cpu": _stack_cpu})


def stack(tensors, axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new dim (``torch.stack``).

    Args:
        tensors: a non-empty sequence of tensors, all of the same shape (else a
            ``ShapeError``, a RuntimeError as PyTorch's, naming the first that differs);
            mixed dtypes are promoted as :func:`cat` does.
        dim: where the new dim goes in the result, in ``[-ndim - 1, ndim]`` (``axis`` is
            NumPy's name for it).
        out: a tensor to write the result into (PyTorch's ``out=``).

    >>> a, b = tl.tensor([1, 2]), tl.tensor([3, 4])
    >>> tl.stack([a, b])
    tensor([[1, 2],
            [3, 4]])
    >>> tl.stack([a, b], dim=1).shape
    (2, 2)
    """
    axis = axis if dim is None else dim
    ts = list(tensors)
    if not ts:
        raise ShapeError("stack: needs at least one tensor (got an empty sequence)")
    if set(map(type, ts)) != _JUST_TENSOR:
        ts = [t if type(t) is Tensor else to_tensor(t) for t in ts]
    # C-level maps over the list: a batch of 64 rows spent more in these checks than in the
    # copy when they were Python comprehensions
    datas = list(map(_DATA, ts))
    shapes = set(map(_SHAPE, datas))
    if len(shapes) != 1:
        first = datas[0].shape
        i = next(i for i, d in enumerate(datas) if d.shape != first)
        raise ShapeError(f"stack: all tensors must have the same shape, got {first} at entry "
                         f"0 and {datas[i].shape} at entry {i}")
    if len(set(map(_DTYPE, datas))) != 1:
        ts = to_common_dtype(ts)
    return apply(STACK, *ts, axis=norm_axis(axis, datas[0].ndim + 1, "stack"))


_JUST_TENSOR = {Tensor}
_DATA, _SHAPE, _DTYPE = (operator.attrgetter(a) for a in ("_data", "shape", "dtype"))


def _split_infer(x, *srcs, indices, axis, sizes=()):
    shape, dt = x
    if sizes:
        from ..graph.sizes import apply_sizes
        indices = apply_sizes(indices, sizes, [tuple(shape)] + [tuple(s[0]) for s in srcs])
    n = shape[axis]
    bounds = [0] + list(indices) + [n]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        s = list(shape)
        s[axis] = None if None in (n, a, b) else max(min(b, n) - min(a, n), 0)
        out.append((tuple(s), dt))
    return tuple(out)


def _split_fwd(xp, x, *srcs, indices, axis, sizes=()):
    if sizes:       # split points computed from the inputs' shapes (a traced None dim)
        from ..graph.sizes import apply_sizes, inputs_of
        if any(k > len(srcs) for _, e in sizes for k in inputs_of(e)):
            # a view's history rebuilt from its base alone: the points' sources are gone
            raise ShapeError("split: a piece whose size is computed at run time was used "
                             "after its base changed in place; .clone() the piece first")
        indices = apply_sizes(indices, sizes, [x.shape] + [s.shape for s in srcs])
        n = x.shape[axis]
        if any(b < a for a, b in zip((0,) + tuple(indices), tuple(indices) + (n,))):
            raise ShapeError(f"split: the {len(indices) + 1} pieces captured along axis {axis} "
                             f"do not fit its size {n} when the graph runs (split points "
                             f"{list(indices)}); the piece count was fixed when traced")
    return tuple(xp.split(x, list(indices), axis=axis))


def _split_vjp(n, *gs):
    return (concatenate(list(gs), axis=n.attrs["axis"]),) + (None,) * (len(n.inputs) - 1)


SPLIT = _op("split", _split_fwd, _split_vjp, _split_infer, view=True)


def _split_at(x, points, axis: int) -> tuple[Tensor, ...]:
    """SPLIT of ``x`` at ``points`` along ``axis``; points that are TracedSizes (read from a
    None dim under capture) are computed from the shapes when the graph runs, so the pieces
    follow a dynamic batch (the piece count stays the traced one)."""
    if not any(traced(p) for p in points):
        return apply(SPLIT, x, indices=tuple(int(p) for p in points), axis=axis)
    from ..graph.sizes import lower
    plain, sizes, srcs = lower(points, [x], 1)
    # the traced values at computed points are left out (0), as slice_sized's bounds: a
    # trace at other sizes then records the same op (capture compares the two graphs)
    run_time = {p for p, _ in sizes}
    plain = tuple(0 if i in run_time else p for i, p in enumerate(plain))
    return apply(SPLIT, x, *srcs, indices=plain, sizes=sizes, axis=axis)


def _count_varies(x, axis: int, what: str, count, example: int) -> None:
    """The number of pieces depends on a dynamic size: the trace keeps its count, so the
    size escapes (tl.function retraces per size; ONNX export with that axis dynamic is
    refused) with the reason in words."""
    c = count(plain(x.shape[axis]))
    _pieces(x, axis, what, f"{what} along a dynamic dim: the number of pieces, "
            f"{count.__doc__}, depends on the size n of that dim (n = {example} gives "
            f"{count(example)}, the traced n gives {c}) and a captured graph has a fixed "
            "number of outputs, so n was turned into a plain Python number")


_NUMPY = object()      # (a default that tells "axis= given" from "left out")


def split(x, indices_or_sections=None, dim=_NUMPY, *, axis=_NUMPY,
          split_size_or_sections=None, split_size=None) -> tuple[Tensor, ...]:
    """PyTorch's split: an int is the size of each part (the last may be smaller), a list
    the sizes of the parts, along ``dim`` (0 by default): ``x.split(2)`` is
    ``torch.split(x, 2)``.

    With NumPy's keyword ``axis=`` it is NumPy's split: an int ``n`` gives n equal parts,
    a list gives split points (``tl.split(x, 3, axis=1)`` is ``np.split(x, 3, axis=1)``).
    ``split_size=`` is the Tensor method's PyTorch name for ``split_size_or_sections``.
    """
    if split_size is not None:
        if split_size_or_sections is not None:
            raise TypeError("split: got both split_size= and split_size_or_sections=")
        split_size_or_sections = split_size
    if axis is _NUMPY:
        return _torch_split(x, indices_or_sections, 0, 0 if dim is _NUMPY else dim,
                            split_size_or_sections)
    if dim is not _NUMPY or split_size_or_sections is not None:
        raise TypeError("split: axis= asks for NumPy's split; do not mix it with PyTorch's "
                        "dim= or split_size_or_sections=")
    x = to_tensor(x)
    a = norm_axis(axis, x.ndim, "split")
    n = x.shape[a]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if not traced(n):
            _pieces(x, a, "split into equal sections")
        if k <= 0 or n % k:
            raise ShapeError(f"split: axis {a} of size {n} cannot be split into {k} equal parts")
        indices = tuple(i * (n // k) for i in range(1, k))    # all 0 on an empty axis
    else:
        indices = tuple(int(i) for i in indices_or_sections)
    return _split_at(x, indices, a)


def _torch_split(x, size, axis, dim, split_size_or_sections) -> tuple[Tensor, ...]:
    """PyTorch's ``split``: parts of ``size`` (an int; the last may be smaller) or of the
    listed sizes, along ``dim``."""
    if split_size_or_sections is not None:
        if size is not None:
            raise TypeError("split: got both indices_or_sections and split_size_or_sections")
        size = split_size_or_sections
    if dim is not None:
        if axis != 0:
            raise TypeError("split: got both axis= and dim=; pass one")
        axis = dim
    if size is None:
        raise TypeError("split: needs split_size_or_sections")
    x = to_tensor(x)
    a = norm_axis(axis, x.ndim, "split")
    if isinstance(size, (int, np.integer)):
        n = x.shape[a]
        if plain(size) <= 0 and not (plain(size) == 0 and plain(n) == 0):
            raise ShapeError(f"split: split_size must be positive, got {plain(size)}")
        if not plain(size):
            return apply(SPLIT, x, indices=(), axis=a)
        count = -(-plain(n) // plain(size))
        if traced(size):
            # split(x.shape[0]) of cat([x, x]): points at multiples of the traced size
            return _split_at(x, [size * i for i in range(1, count)], a)
        if traced(n):
            s = int(size)

            def pieces(m, s=s):
                return -(-m // s)
            pieces.__doc__ = f"ceil(n / {s})"
            _count_varies(x, a, f"split({s})", pieces, plain(n) + s)
        return apply(SPLIT, x, indices=tuple(range(int(size), plain(n), int(size))), axis=a)
    return split_sizes(x, [v if traced(v) else int(v) for v in size], axis=a)


def chunk(x, chunks: int, axis: int = 0, *, dim: int | None = None) -> tuple[Tensor, ...]:
    """PyTorch's chunk: ``chunks`` parts of ceil(n / chunks), the last possibly smaller, and
    fewer parts when the sizes run out (``dim`` is PyTorch's name for ``axis``).

    Under capture along a None dim, ``chunk(1)`` and ``chunk(2)`` (the classifier-free
    guidance idiom ``c, u = net(tl.cat([x, x])).chunk(2)``) compute the pieces' sizes when
    the graph runs (two pieces for any size >= 2; a size of 1 gives a piece of 1 and an
    empty one, where PyTorch gives one piece). For more chunks the piece count depends on
    the size (chunk(3) of 4 is 2 pieces): the size is fixed at the traced one (tl.function
    retraces per size; ONNX export refuses that axis as dynamic)."""
    axis = axis if dim is None else dim
    x = to_tensor(x)
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    a = norm_axis(axis, x.ndim, "chunk")
    n = x.shape[a]
    if traced(n):
        if chunks == 1:
            return _split_at(x, (), a)
        if chunks == 2 and plain(n) >= 2:
            return _split_at(x, [(n + 1) // 2], a)

        def pieces(m, k=chunks):
            return -(-m // -(-m // k)) if m else k
        pieces.__doc__ = f"ceil(n / ceil(n / {chunks}))"
        c = pieces(plain(n))
        _count_varies(x, a, f"chunk({chunks})", pieces, chunks + 1 if c == chunks else chunks)
        n = plain(n)
    if n == 0:          # PyTorch: `chunks` empty pieces (a split by size would give one)
        return apply(SPLIT, x, indices=(0,) * (chunks - 1), axis=a)
    size = -(-n // chunks)
    return apply(SPLIT, x, indices=tuple(range(size, n, size)), axis=a)


def tensor_split_sections(x, sections: int, axis: int = 0) -> tuple[Tensor, ...]:
    """``torch.tensor_split(x, sections, dim)``: ``sections`` parts, the first ``n %
    sections`` one longer than the rest (NumPy's array_split). Always ``sections`` pieces,
    so along a None dim under capture the split points are computed when the graph runs."""
    x = to_tensor(x)
    if isinstance(sections, bool) or not isinstance(sections, (int, np.integer)):
        raise TypeError(f"tensor_split: sections must be an int, got {type(sections).__name__}")
    if sections <= 0:
        raise ValueError(f"tensor_split: number of sections must be larger than 0, got "
                         f"{sections}")
    a = norm_axis(axis, x.ndim, "tensor_split")
    n, k = x.shape[a], int(sections)
    q, r = n // k, n % k
    # point i is i * q + min(i, r); with 0 <= r < k, [r >= i] is (r + k - i) // k, so the
    # point stays an expression of n (sizes expressions have no min)
    return _split_at(x, [i * q + r - (r - i) * ((r + k - i) // k) for i in range(1, k)], a)


def split_sizes(x, sizes, axis: int = 0) -> tuple[Tensor, ...]:
    """Split into parts of the given sizes (PyTorch's ``split`` with a list); sizes read from
    None dims under capture (``split([B, B])`` with ``B = x.shape[0]``) follow them."""
    x = to_tensor(x)
    a = norm_axis(axis, x.ndim, "split")
    dynamic = any(traced(v) for v in sizes)
    if not dynamic:
        _pieces(x, a, "split into listed sizes that must add up to it")
    if sum(plain(v) for v in sizes) != plain(x.shape[a]):
        raise ShapeError(f"split: sizes {[plain(v) for v in sizes]} do not sum to axis size "
                         f"{plain(x.shape[a])}")
    if not dynamic:
        return apply(SPLIT, x, indices=tuple(np.cumsum(sizes)[:-1].tolist()), axis=a)
    points, at = [], 0
    for v in sizes[:-1]:
        at = v if not points else at + v
        points.append(at)
    return _split_at(x, points, a)


def _pieces(x, axis: int, what: str, reason: str | None = None) -> None:
    """Under capture, ``x`` is cut into a Python-counted number of pieces along ``axis``:
    if that axis follows a None dim, the graph holds the traced count (see
    ``graph.tracer.note_split``)."""
    if state.tracer is not None:
        from ..graph.tracer import note_split
        note_split(x, axis, what, reason)


def _unbind_infer(x, *, axis, n):
    shape, dt = x
    one = (tuple(shape[:axis]) + tuple(shape[axis + 1:]), dt)
    return one if n == 1 else tuple(one for _ in range(n))


def _unbind_fwd(xp, x, axis, n):
    m = xp.moveaxis(x, axis, 0)
    out = tuple(m[i, ...] for i in range(m.shape[0]))     # 0-d arrays (views), no scalars
    return out[0] if n == 1 else out      # one output: a plain array, as other ops


# one op with n outputs (views), whose backward is one stack: as n separate slices, each
# slice's backward spread a full-size zero tensor, O(n^2) for an RNN's steps
UNBIND = _op("unbind", _unbind_fwd,
             lambda n, *gs: (stack(list(gs), axis=n.attrs["axis"]),), _unbind_infer,
             view=True)


def unbind(x, axis: int = 0, *, dim: int | None = None) -> tuple[Tensor, ...]:
    """The slices along ``axis`` (``dim``), as a tuple of tensors without that axis (views;
    as in PyTorch, in-place ops on them under autograd are refused)."""
    axis = axis if dim is None else dim
    x = to_tensor(x)
    a = norm_axis(axis, x.ndim, "unbind")
    _pieces(x, a, "the number of tensors unbind() returns")
    n = int(x._data.shape[a])
    if n == 0:
        return ()
    out = apply(UNBIND, x, axis=a, n=n)
    return out if type(out) is tuple else (out,)


# --- pad ------------------------------------------------------------------------
def _along(ax: int, lo: int, hi: int) -> tuple:
    return (slice(None),) * ax + (slice(lo, hi),)


def _pad_fwd(xp, x, pad_width, mode, value):
    if mode == "constant":
        return xp.pad(x, pad_width, mode="constant", constant_values=value)
    # reflect / edge: the input copied in once, then each axis's bands from the array being
    # built (so corners mirror the bands of earlier axes), by slices; NumPy's own pad made
    # a copy per axis and took 3x PyTorch's time on a (16, 64, 32, 32) reflect pad
    out = xp.empty(tuple(n + b + a for n, (b, a) in zip(x.shape, pad_width)), x.dtype)
    out[tuple(slice(b, b + n) for n, (b, _) in zip(x.shape, pad_width))] = x
    for ax, (b, a) in enumerate(pad_width):
        n = x.shape[ax]
        if mode == "reflect":    # pad element -k mirrors element k, n-1+k mirrors n-1-k
            if b:
                out[_along(ax, 0, b)] = xp.flip(out[_along(ax, b + 1, 2 * b + 1)], ax)
            if a:
                out[_along(ax, b + n, b + n + a)] = xp.flip(
                    out[_along(ax, b + n - 1 - a, b + n - 1)], ax)
        else:
            if b:
                out[_along(ax, 0, b)] = out[_along(ax, b, b + 1)]
            if a:
                out[_along(ax, b + n, b + n + a)] = out[_along(ax, b + n - 1, b + n)]
    return out


def _pad_source_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each position of an axis padded by (before, after): the input element it holds."""
    i = np.arange(-before, n + after)
    if mode == "edge" or not (before or after):     # (a length-1 axis has no period)
        return np.clip(i, 0, n - 1)
    period = 2 * (n - 1)
    r = np.abs(i) % period
    return np.where(r >= n, period - r, r)


def _planes(shape, pad_width, mode):
    """(P, H, W, row map, column map, left) when a reflect/edge pad of an array of ``shape``
    (the unpadded one) touches only its last two axes (F.pad's 1-d and 2-d pads): the
    kernels' case; else None."""
    if mode == "constant" or len(shape) == 0 or any(pad_width[k] != (0, 0)
                                                     for k in range(len(shape) - 2)):
        return None
    H = shape[-2] if len(shape) >= 2 else 1
    (t, b) = pad_width[-2] if len(shape) >= 2 else (0, 0)
    (left, right) = pad_width[-1]
    P, W = math.prod(shape[:-2]), shape[-1]
    rows = _pad_source_index(H, t, b, mode).astype(np.int64)
    cols = _pad_source_index(W, left, right, mode).astype(np.int64)
    return P, H, W, rows, cols, left


def _pad_cpu(x, pad_width, mode, value):
    geo = _planes(x.shape, pad_width, mode) if x.dtype in (np.float32, np.float64) else None
    if geo is None or x.size == 0:
        return _pad_fwd(np, x, pad_width, mode, value)
    from .. import _ops
    P, H, W, rows, cols, left = geo
    out = np.empty(x.shape[:-2] + (len(rows), len(cols)) if x.ndim >= 2 else (len(cols),),
                   x.dtype)
    _ops.pad_planes(np.ascontiguousarray(x).reshape(P, H, W),
                    out.reshape(P, len(rows), len(cols)), rows, cols, left)
    return out


def _pad_grad_cpu(g, pad_width, mode):
    shape = tuple(n - b - a for n, (b, a) in zip(g.shape, pad_width))
    geo = _planes(shape, pad_width, mode) if g.dtype in (np.float32, np.float64) else None
    if geo is None or g.size == 0:
        return _pad_grad_fwd(np, g, pad_width, mode)
    from .. import _ops
    P, H, W, rows, cols, left = geo
    out = np.empty(g.shape[:-2] + (H, W) if g.ndim >= 2 else (W,), g.dtype)
    _ops.pad_planes_grad(np.ascontiguousarray(g).reshape(P, len(rows), len(cols)),
                         out.reshape(P, H, W), rows, cols, left)
    return out


def _pad_infer(x, *, pad_width, mode, value):
    shape = tuple(None if d is None else d + b + a for d, (b, a) in zip(x[0], pad_width))
    return shape, x[1]


def _pad_vjp(n, g):
    pw, mode = n.attrs["pad_width"], n.attrs["mode"]
    shape = n.inputs[0]._data.shape
    if mode == "constant":
        return (g[tuple(slice(b, b + s) for (b, _), s in zip(pw, shape))],)
    return (apply(PAD_GRAD, g, pad_width=pw, mode=mode),)


def _pad_grad_fwd(xp, g, pad_width, mode):
    # the adjoint of a reflect/edge pad, axis by axis from the last: the interior, plus each
    # band added back onto the elements it copied (flipped for reflect, summed onto the edge
    # element for edge)
    src = g
    for ax in reversed(range(g.ndim)):
        b, a = pad_width[ax]
        if not (b or a):
            continue
        n = g.shape[ax] - b - a
        out = g[_along(ax, b, b + n)].copy()
        if mode == "reflect":
            if b:
                out[_along(ax, 1, b + 1)] += xp.flip(g[_along(ax, 0, b)], ax)
            if a:
                out[_along(ax, n - 1 - a, n - 1)] += xp.flip(g[_along(ax, b + n, b + n + a)], ax)
        else:
            if b:
                out[_along(ax, 0, 1)] += g[_along(ax, 0, b)].sum(axis=ax, keepdims=True)
            if a:
                out[_along(ax, n - 1, n)] += g[_along(ax, b + n, b + n + a)].sum(
                    axis=ax, keepdims=True)
        g = out
    return g.copy() if g is src else g


def _pad_grad_infer(g, *, pad_width, mode):
    shape = tuple(None if d is None else d - b - a for d, (b, a) in zip(g[0], pad_width))
    return shape, g[1]


@shape_check
def _pad_check(x, *, pad_width, mode, value=0.0):
    """The sizes a reflect/edge pad needs, run before the kernel in eager mode and at replay
    of a graph with None dims (the kernels would read past the axis or uninitialised
    memory). Axes aligned from the last, so a vmapped (batch-first) array passes too."""
    if mode == "constant":
        return
    # (F.pad checks its widths here too before cropping: negative ones copy nothing)
    shape = x.shape[len(x.shape) - len(pad_width):]
    for ax, ((b, a), n) in enumerate(zip(pad_width, shape)):
        if b or a:
            if n == 0:
                raise ValueError(f"pad: {mode} padding ({b}, {a}) of the empty dim {ax} "
                                 f"(input {tuple(shape)}): there is nothing to copy")
            if mode == "reflect" and (b >= n or a >= n):
                raise ValueError(f"pad: reflect padding ({b}, {a}) must be smaller than the "
                                 f"size {n} of dim {ax}")


PAD = _op("pad", _pad_fwd, _pad_vjp, _pad_infer, check=_pad_check)
# the gradient of a reflect/edge pad: its own op, whose gradient is the pad again (so grad of
# grad works), where an index_add had gathered and scattered every element
PAD_GRAD = _op("pad_grad", _pad_grad_fwd,
               lambda n, gg: (pad(gg, n.attrs["pad_width"], mode=n.attrs["mode"]),),
               _pad_grad_infer)
PAD.set_kernel("cpu", _pad_cpu)
PAD_GRAD.set_kernel("cpu", _pad_grad_cpu)


def pad(x, pad_width, mode: str = "constant", value: float = 0.0) -> Tensor:
    """NumPy-style pad: ``pad_width`` is an int, a (before, after) pair, or one pair per
    axis; ``mode`` is 'constant', 'reflect' or 'edge'."""
    x = to_tensor(x)
    if mode not in ("constant", "reflect", "edge"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect' or 'edge', got {mode!r}")
    pw = np.asarray(pad_width, dtype=np.int64)
    if pw.ndim == 0:
        pw = np.full((x.ndim, 2), int(pw))
    elif pw.shape == (2,):
        pw = np.tile(pw, (x.ndim, 1))
    if pw.shape != (x.ndim, 2):
        raise ValueError(f"pad: pad_width must give (before, after) for each of the {x.ndim} "
                         f"axes, got shape {pw.shape}")
    if (pw < 0).any():
        raise ValueError(f"pad: negative padding {pw.tolist()} is not supported")
    # the sizes reflect/edge need are the op's check (_pad_check): replay runs it too
    return apply(PAD, x, pad_width=tuple(map(tuple, pw.tolist())), mode=mode, value=value)


# --- flip / roll / repeat / tile / tri ---------------------------------------------
# a copy, as PyTorch's flip (NumPy's is a view): augmentation code writes into flipped
# batches in place (out = img.flip(3); out.mul_(jitter)) and must not change the source
# .copy(), not ascontiguousarray: that one turns a 0-d array into shape (1,) and returns
# the source itself when nothing moves (axis=())
FLIP = _op("flip", lambda xp, x, axis: xp.flip(x, axis).copy(),
           lambda n, g: (g.flip(n.attrs["axis"]),), lambda x, axis: x)


def flip(x, axis=None, *, dims=None) -> Tensor:
    """Reverse the order of elements along ``axis`` (int or tuple; every axis when None, as
    NumPy; ``dims=`` is PyTorch's name). A new tensor, as PyTorch's (NumPy's is a view)."""
    x = to_tensor(x)
    axis = one_of("flip", "axis", axis, "dims", dims)
    return apply(FLIP, x, axis=norm_axes(axis, x.ndim, "flip"))


def _roll_vjp(n, g):
    s = n.attrs["shift"]
    neg = tuple(-v for v in s) if isinstance(s, tuple) else -s
    return (roll(g, neg, n.attrs["axis"]),)


ROLL = _op("roll", lambda xp, x, shift, axis: xp.roll(x, shift, axis), _roll_vjp,
           lambda x, shift, axis: x)


def roll(x, shift=None, axis=None, *, shifts=None, dims=None) -> Tensor:
    """Shift elements cyclically by ``shift`` along ``axis`` (ints, or tuples of the same
    length); with ``axis=None`` the flattened tensor is rolled and the shape restored.
    PyTorch's names ``shifts=``/``dims=`` are accepted too."""
    x = to_tensor(x)
    for name, given, alias in (("shift", shift, shifts), ("axis", axis, dims)):
        if given is not None and alias is not None:
            raise TypeError(f"roll: give {name} or its PyTorch name, not both")
    shift = shifts if shift is None else shift
    axis = dims if axis is None else axis
    if shift is None:
        raise TypeError("roll: missing the shifts argument")
    if axis is not None:
        if isinstance(axis, (int, np.integer)):
            axis = norm_axis(axis, x.ndim, "roll")
        else:
            axis = tuple(norm_axis(a, x.ndim, "roll") for a in axis)
    if isinstance(shift, (list, tuple)):
        shift = tuple(int(s) for s in shift)
    else:
        shift = int(shift)
    # PyTorch pairs shifts with dims one to one (NumPy broadcasts them: roll(x, (1, 2), 0)
    # rolled dim 0 by 3, and roll(x, 1, (0, 1)) both dims); a lone shift may come as (s,)
    n_shift = len(shift) if isinstance(shift, tuple) else 1
    n_axis = 0 if axis is None else len(axis) if isinstance(axis, tuple) else 1
    if n_shift != max(n_axis, 1):
        raise ShapeError(f"roll: shifts and dims must align (as PyTorch's): got {n_shift} "
                         f"shift(s) and {n_axis} dim(s); give one shift per dim, or one "
                         f"shift and no dims to roll the flattened tensor")
    if axis is None and isinstance(shift, tuple):
        shift = shift[0]
    return apply(ROLL, x, shift=shift, axis=axis)


def _repeat_infer(x, *, repeats, axis):
    shape = list(x[0])
    if axis is None:
        return (math.prod(shape) * repeats,), x[1]
    shape[axis] = shape[axis] * repeats if shape[axis] is not None else None
    return tuple(shape), x[1]


def _repeat_vjp(n, g):
    r, axis = n.attrs["repeats"], n.attrs["axis"]
    shape = n.inputs[0]._data.shape
    if axis is None:
        return (g.reshape(-1, r).sum(axis=1).reshape(shape),)
    gs = g.shape
    g = g.reshape(gs[:axis] + (shape[axis], r) + gs[axis + 1:])
    return (g.sum(axis=axis + 1),)


REPEAT = _op("repeat", lambda xp, x, repeats, axis: xp.repeat(x, repeats, axis), _repeat_vjp,
             _repeat_infer)


def repeat_method(x, *sizes, axis=_NUMPY, repeats=None) -> Tensor:
    """``x.repeat(*sizes)``: PyTorch's, the whole tensor repeated ``sizes[i]`` times along
    dim i (``tl.tile``; more sizes than dims add leading dims): ``x.repeat(2, 1)`` of a
    (3, 2) tensor is (6, 2). With NumPy's keyword ``axis=`` (or ``repeats=``) it is NumPy's
    repeat of each element (``x.repeat(2, axis=0)``; ``repeat_interleave`` is PyTorch's
    name for that)."""
    if axis is not _NUMPY or repeats is not None:
        if repeats is None:
            if len(sizes) != 1:
                raise TypeError("repeat: with axis= (NumPy's repeat) give one count")
            repeats = sizes[0]
        return repeat(x, repeats, None if axis is _NUMPY else axis)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    x = to_tensor(x)
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat: {len(sizes)} repeat counts for a {x.ndim}-d tensor of shape "
                         f"{tuple(x.shape)}: give one per dim (PyTorch's repeat, which tiles "
                         "the whole tensor); to repeat each element use repeat_interleave or "
                         "repeat(n, axis=...)")
    return tile(x, sizes)


def repeat(x, repeats: int, axis: int | None = None) -> Tensor:
    """NumPy's repeat with an integer count (each element repeated ``repeats`` times); the
    method ``x.repeat(*sizes)`` is PyTorch's (see :func:`repeat_method`)."""
    x = to_tensor(x)
    if not isinstance(repeats, (int, np.integer)) or repeats < 0:
        raise ValueError(f"repeat: repeats must be a non-negative integer, got {repeats!r}")
    if state.tracer is not None and traced(repeats):
        from .rearrange import repeat_interleave     # follows a count read from a None dim
        return repeat_interleave(x, repeats, axis)
    if axis is not None:
        axis = norm_axis(axis, x.ndim, "repeat")
    return apply(REPEAT, x, repeats=int(repeats), axis=axis)


def _tile_reps(reps, sizes, shapes) -> tuple:
    """The counts at run time: ``sizes`` evaluates the ones read from None dims under
    capture over the inputs' shapes (:mod:`tensorlib.graph.sizes`)."""
    if not sizes:
        return reps
    from ..graph.sizes import apply_sizes
    return apply_sizes(reps, sizes, shapes)


def _tile_fwd(xp, x, *srcs, reps, sizes=()):
    reps = _tile_reps(reps, sizes, [x.shape] + [s.shape for s in srcs])
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: reps must be non-negative, got {tuple(reps)}")
    return xp.tile(x, reps)


def _tile_infer(x, *srcs, reps, sizes=()):
    reps = _tile_reps(reps, sizes, [tuple(x[0])] + [tuple(s[0]) for s in srcs])
    shape = (1,) * (len(reps) - len(x[0])) + tuple(x[0])
    return tuple(None if d is None or r is None else d * r for d, r in zip(shape, reps)), x[1]


def _size_value(e, inputs):
    """Size expression ``e`` over ``inputs``' dims as a number: a TracedSize where a dim it
    reads follows a None dim under capture, so a rule built from it follows the dim too."""
    if isinstance(e, int):
        return e
    if e[0] == "dim":
        return inputs[e[1]].shape[e[2]]
    from ..graph.sizes import OPS
    return OPS[e[0]](_size_value(e[1], inputs), _size_value(e[2], inputs))


def _tile_vjp(n, g):
    reps = list(n.attrs["reps"])
    for pos, e in n.attrs.get("sizes", ()):
        reps[pos] = _size_value(e, n.inputs)
    shape = n.inputs[0].shape          # (traced sizes where the graph has None dims)
    full = (1,) * (len(reps) - len(shape)) + tuple(shape)
    inter = []
    for r, s in zip(reps, full):
        inter += [r, s]
    g = g.reshape(tuple(inter)).sum(axis=tuple(range(0, 2 * len(reps), 2)))
    return (g.reshape(shape),) + (None,) * (len(n.inputs) - 1)


TILE = _op("tile", _tile_fwd, _tile_vjp, _tile_infer)


def tile(x, reps=None, *, dims=None) -> Tensor:
    """Repeat the whole tensor ``reps`` times along each axis (NumPy's ``tile``): ``reps``
    shorter than ``x.ndim`` is padded with leading 1s, a longer one adds leading axes.
    ``dims=`` is PyTorch's name for ``reps``. Under capture, counts read from None dims
    (``x.shape[0]``, ``n * 2``) are computed when the graph runs (ONNX: Tile fed by Shape).

    >>> tl.tile(tl.tensor([1, 2]), 2)
    tensor([1, 2, 1, 2])
    """
    reps = one_of("tile", "reps", reps, "dims", dims)
    if reps is None:
        raise TypeError("tile: missing argument 'dims' (the repetitions per dim)")
    x = to_tensor(x)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    if any(plain(r) < 0 for r in reps):
        raise ShapeError(f"tile: reps must be non-negative, got {tuple(plain(r) for r in reps)}")
    reps = (1,) * (x.ndim - len(reps)) + reps
    if state.tracer is not None and traced(*reps):
        from ..graph.sizes import lower
        counts, sizes, srcs = lower(reps, [x], 1)
        # 0 where ``sizes`` computes the count: the example's value is no part of the graph
        run_time = {p for p, _ in sizes}
        counts = tuple(0 if i in run_time else c for i, c in enumerate(counts))
        return apply(TILE, x, *srcs, reps=counts, sizes=sizes)
    return apply(TILE, x, reps=tuple(int(r) for r in reps))


def _tri_check(name):
    def fwd(xp, x, k):
        if x.ndim < 2:
            raise ValueError(f"{name}: needs at least 2 dimensions, got shape {x.shape}")
        return getattr(xp, name)(x, k)
    return fwd


TRIL = _op("tril", _tri_check("tril"), lambda n, g: (g.tril(n.attrs["k"]),),
           lambda x, k: x)
TRIU = _op("triu", _tri_check("triu"), lambda n, g: (g.triu(n.attrs["k"]),),
           lambda x, k: x)


def _diag_k(op: str, k, diagonal) -> int:
    if diagonal is not None:
        if k:
            raise TypeError(f"{op}: got both k= and diagonal=; pass one")
        return int(diagonal)
    return int(k)


def tril(x, k: int = 0, *, diagonal: int | None = None) -> Tensor:
    """Lower triangle of the last two axes: elements on and below diagonal ``k`` kept, the
    rest zero; ``k`` > 0 is above the main diagonal, < 0 below (``diagonal=`` is PyTorch's
    name). Needs at least 2 dimensions."""
    return apply(TRIL, to_tensor(x), k=_diag_k("tril", k, diagonal))


def triu(x, k: int = 0, *, diagonal: int | None = None) -> Tensor:
    """Upper triangle of the last two axes: elements on and above diagonal ``k`` kept, the
    rest zero; ``k`` > 0 is above the main diagonal, < 0 below (``diagonal=`` is PyTorch's
    name). Needs at least 2 dimensions."""
    return apply(TRIU, to_tensor(x), k=_diag_k("triu", k, diagonal))


# --- dtype and device -----------------------------------------------------------------
def _cast_vjp(n, g):
    src = n.inputs[0]._data.dtype
    if src.kind not in "fc":
        return (None,)
    if src.kind == "f" and g._data.dtype.kind == "c":     # a real source: the real part
        from .complex import real
        g = real(g)
    return (g.astype(src),)


_F16, _F32 = np.dtype(np.float16), np.dtype(np.float32)
_HALF_MIN = 256       # below this NumPy's per-element conversion costs less than a call


def half_cast(x: np.ndarray, dtype) -> np.ndarray | None:
    """``x.astype(dtype)`` between float16 and float32 (float16 to float64 too, exactly,
    through float32) with the CPU's F16C instructions (``_ops.half_to_float``): NumPy
    converts half floats one at a time, ~20-30x slower. None where that does not apply (the
    dtypes, a non-contiguous or small array, a CPU without F16C): use ``astype``."""
    dtype = np.dtype(dtype)
    if (x.size < _HALF_MIN or not x.flags.c_contiguous or type(x) is not np.ndarray
            or not ((x.dtype == _F16 and dtype.kind == "f" and dtype.itemsize >= 4)
                    or (x.dtype == _F32 and dtype == _F16))):
        return None
    from .. import _ops
    if x.dtype == _F16:
        out = np.empty(x.shape, _F32)
        if not _ops.half_to_float(x.reshape(-1).view(np.uint16), out.reshape(-1)):
            return None
        return out if dtype == _F32 else out.astype(dtype)
    out = np.empty(x.shape, _F16)
    if not _ops.float_to_half(x.reshape(-1), out.reshape(-1).view(np.uint16)):
        return None
    return out


def _cast_cpu(x, dtype):
    dtype = np.dtype(dtype)
    fast = half_cast(x, dtype)
    if fast is not None:
        return fast
    if dtype.kind == "f" and x.dtype.kind == "f" and x.dtype.itemsize > dtype.itemsize:
        # a value beyond the narrower float's range becomes inf, as in PyTorch, without
        # NumPy's warning: mixed-precision steps make such gradients on purpose (GradScaler
        # skips those steps)
        with np.errstate(over="ignore"):
            return x.astype(dtype)
    return x.astype(dtype)


CAST = _op("cast", lambda xp, x, dtype: x.astype(dtype), _cast_vjp,
           lambda x, dtype: (x[0], np.dtype(dtype)), kernels={"cpu": _cast_cpu})
CAST.complex = "rule"


def astype(x, dtype) -> Tensor:
    """Cast to ``dtype`` (differentiable between float types)."""
    x = to_tensor(x)
    dt = _dtypes.as_dtype(dtype)
    if dt == x._data.dtype:
        return x
    if dt.kind not in "fc" and x._rg:   # an integer or boolean result has no gradient
        x = x.detach()
    return apply(CAST, x, dtype=dt.name)


# below this many elements NumPy's own copy is as fast (no threads, no tiles to pay for)
_TILED_COPY_MIN = 1 << 15


def contiguous_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of NumPy array ``a``. A float array whose innermost source axis
    is not its last one (a transpose, ``permute(0, 2, 3, 1)``) is copied in tiles
    (``_ops.transpose_copy``): NumPy walks it element by element with a large stride, 4-8x
    slower here. Other arrays go through NumPy."""
    if (a.dtype not in (np.float32, np.float64) or a.ndim < 2 or a.size < _TILED_COPY_MIN
            or a.strides[-1] == a.itemsize or a.flags.c_contiguous
            or any(st % a.itemsize for st in a.strides)):   # (a packed record's field)
        return np.array(a, order="C", copy=True)
    inner = [i for i, s in enumerate(a.strides) if s == a.itemsize and a.shape[i] > 1]
    if len(inner) != 1:
        return np.array(a, order="C", copy=True)
    from .. import _ops
    p = inner[0]
    out = np.empty(a.shape, a.dtype)
    # the source's unit-stride axis and the destination's: one tiled 2-d copy per
    # combination of the other axes
    src, dst = np.moveaxis(a, p, -2), np.moveaxis(out, p, -2)
    lead = src.shape[:-2]
    if math.prod(lead) == 1:    # one plane: its tiles of rows shared among the threads
        _ops.transpose_copy(src.reshape(src.shape[-2:]), dst.reshape(dst.shape[-2:]))
        return out
    if len(lead) <= 2:          # up to two plane axes: the planes shared among the threads
        pad = (1,) * (2 - len(lead))
        _ops.transpose_copy_planes(src.reshape(pad + src.shape) if pad else src,
                                   dst.reshape(pad + dst.shape) if pad else dst)
        return out
    if math.prod(lead) > 64 and math.prod(src.shape[-2:]) < _TILED_COPY_MIN:
        return np.array(a, order="C", copy=True)     # many small planes: Python overhead
    for idx in np.ndindex(*lead):
        _ops.transpose_copy(src[idx], dst[idx])
    return out


def _copy_cpu(x):
    return contiguous_copy(x) if type(x) is np.ndarray else x.copy()


COPY = _op("copy", lambda xp, x: x.copy(), lambda n, g: (g,), lambda x: x,
           kernels={"cpu": _copy_cpu})


def clone(x, *, memory_format=None) -> Tensor:
    """A copy with its own storage; gradients flow back to ``x``. ``memory_format`` as
    PyTorch's: the default ``tl.preserve_format`` keeps a dense (non-overlapping) ``x``'s
    strides (a channels_last ``x`` stays channels_last) and lays any other ``x`` out in its
    dims' stride order; ``tl.contiguous_format`` gives C order; ``tl.channels_last`` (4-D)
    and ``tl.channels_last_3d`` (5-D) give that layout (RuntimeError for another rank)."""
    x = to_tensor(x)
    a = x._data
    # the common case first: C order stays C order (one copy, no stride analysis)
    # (a 4-/5-D one may be a channels_last one with size-1 dims, whose strides PyTorch keeps)
    if memory_format is None and (type(a) is not np.ndarray
                                  or a.flags.c_contiguous and a.ndim not in (4, 5)):
        return apply(COPY, x)
    from .._tensor_methods import _restrided, format_strides
    from .torch_settings import preserve_format
    if not hasattr(a, "flags") or not hasattr(a, "strides"):
        return apply(COPY, x)       # (a vmap batch: its own layout)
    st = format_strides("clone", a, memory_format or preserve_format)
    if st is None:
        return apply(COPY, x)
    # the copy made in the target's dim order (a C copy of a permuted view), permuted back:
    # ops already there, so the gradient and grad of grad need no new rule
    perm = sorted(range(a.ndim), key=lambda d: -st[d])
    back = tuple(int(i) for i in np.argsort(perm))
    out = transpose(apply(COPY, transpose(x, tuple(perm))), back)
    b = out._data
    if tuple(int(v) // b.itemsize for v in b.strides) != tuple(st):
        out._data = _restrided(b, st)   # size-0/1 dims: PyTorch's strides, same memory
    return out


def _to_device_fwd(xp, x, device):
    from .._device import Device
    from ..backends import to_device as move
    out = move(x, Device(device))
    return out.copy() if out is x else out


TO_DEVICE = _op("to_device", _to_device_fwd,
                lambda n, g: (to_device(g, n.inputs[0]._device),),
                lambda x, device: x)
TO_DEVICE.out_device = lambda attrs: attrs["device"]


def to_device(x, device) -> Tensor:
    """Copy to ``device``; differentiable (the gradient comes back to x's device)."""
    from .._device import Device
    return apply(TO_DEVICE, to_tensor(x), device=str(Device(device)))


# --- PyTorch's narrow / unflatten ---------------------------------------------------------
def select(x, dim: int, index: int) -> Tensor:
    """``x`` at position ``index`` of ``dim`` (negative counts from the end), that dim
    removed, as ``torch.select``: a view, ``x[:, index]`` for ``dim=1``."""
    x = to_tensor(x)
    d = norm_axis(dim, x.ndim, "select")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"select: index must be an int, got {index!r}")
    n = x.shape[d]
    if not -n <= index < n:
        raise IndexError(f"select: index {index} is out of range for dim {d} of size {n}")
    return x[(slice(None),) * d + (int(index),)]


def narrow(x, dim: int | None = None, start: int | None = None, length: int | None = None,
           *, dimension: int | None = None) -> Tensor:
    """``length`` elements of ``x`` along ``dim`` from ``start`` (negative counts from the
    end), as ``torch.narrow``: a view (basic slicing). ``dimension=`` is the Tensor
    method's PyTorch name for ``dim``."""
    dim = one_of("narrow", "dim", dim, "dimension", dimension)
    if dim is None or start is None or length is None:
        raise TypeError("narrow: needs dim, start and length")
    x = to_tensor(x)
    d = norm_axis(dim, x.ndim, "narrow")
    n = x.shape[d]
    if isinstance(start, Tensor) and start.ndim == 0 and start.dtype.kind in "iu":
        start = start.item()        # PyTorch's narrow takes a 0-d integer tensor start
    if not isinstance(start, (int, np.integer)) or not isinstance(length, (int, np.integer)):
        raise TypeError(f"narrow: start and length must be ints, got {start!r}, {length!r}")
    if not -n <= start <= n:
        raise IndexError(f"narrow: start {start} is out of range for dim {d} of size {n}")
    start = int(start) % n if n and start < 0 else int(start)
    if length < 0:
        raise ValueError(f"narrow: length must be non-negative, got {length}")
    # (checked as the graph runs too when n was read from a None dim under capture)
    x = size_guard(x, "narrow", d, start, length)
    # a length read from a None dim under capture stays a size the graph computes
    return x[(slice(None),) * d + (slice(start, start + length),)]


def _rule_narrow(shape, d: int, start: int, length: int) -> None:
    if start + length > shape[d]:
        raise ValueError(f"narrow: start ({start}) + length ({length}) exceeds dim {d} of "
                         f"size {shape[d]}")


SIZE_RULES["narrow"] = _rule_narrow


def unflatten(x, dim: int, sizes) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one of them may be -1), as ``torch.unflatten``."""
    x = to_tensor(x)
    d = norm_axis(dim, x.ndim, "unflatten")
    sizes = tuple(int(v) for v in sizes)
    if not sizes:
        raise ValueError("unflatten: sizes must not be empty")
    shp = tuple(x.shape)
    known = math.prod(v for v in sizes if v != -1)
    if sizes.count(-1) > 1 or (-1 not in sizes and known != shp[d]) or (
            -1 in sizes and (known == 0 or shp[d] % known)):
        raise ValueError(f"unflatten: sizes {sizes} do not fill dim {d} of size {shp[d]} "
                         f"(shape {shp})")
    return reshape(x, shp[:d] + sizes + shp[d + 1:])

