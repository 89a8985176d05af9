"""Size checks of composite ops that a captured graph repeats when it replays.

Ops made of other ops (circular pad: slices and a concat; adaptive pools: matmuls with
run-time windows; narrow: a slice) have no kernel of their own to check sizes in. Under
capture with None dims they pass their input through ``size_guard``, an identity whose check
holds the rule, so a replayed graph raises as eager does; eager runs the same rule directly.
A module owning such an op registers its rule in :data:`SIZE_RULES`.

A size used as data (a count, a rank) is the ``dim_size`` op's: :func:`dim_size` and
:func:`size_tensor` give it as a 0-d int64 tensor read in O(1) when the graph runs.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from .registry import OpDef, register, shape_check

# rule name -> f(shape, *args), raising when the sizes do not fit
SIZE_RULES: dict[str, Callable] = {}


def traced(*sizes) -> bool:
    """Whether any size was read from a None dim under capture (a ``TracedSize``)."""
    return any(type(n) is not int and hasattr(n, "expr") for n in sizes)


def plain(n) -> int:
    """A size's int value without noting a traced size's escape (``int(n)`` would: the
    caller keeps the traced size where the graph must follow it)."""
    return int.__int__(n) if isinstance(n, int) else int(n)


@shape_check
def _guard_check(x, *, rule, args):
    SIZE_RULES[rule](x.shape, *args)


SIZE_GUARD = register(OpDef(
    "size_guard", lambda xp, x, **a: x, vjp=lambda n, g: (g,), saves=False, view=True,
    infer=lambda x, **a: x, check=_guard_check, cost=lambda i, o, **a: (0, 0),
    onnx=lambda ctx, n: ctx.op("Identity", [ctx.name(n.inputs[0])]), complex="holomorphic",
    doc="Identity that checks a size rule of a composite op (see SIZE_RULES) when it runs."))


def size_guard(x: Tensor, rule: str, *args) -> Tensor:
    """``x``, after ``SIZE_RULES[rule](x.shape, *args)`` holds: applied as an op (a graph
    node, checked at every replay) when a size of ``x`` was read from a None dim under
    capture, else checked right away."""
    if traced(*x.shape):
        return apply(SIZE_GUARD, x, rule=rule, args=tuple(args))
    SIZE_RULES[rule](tuple(x.shape), *args)
    return x


# --- sizes as graph values -------------------------------------------------------------------
# A length used as data (a quantile's rank, a mean's divisor) must follow a None dim when a
# captured graph replays. One op reads it in O(1): a size expression (graph.sizes, so
# ``x.shape[0] * x.shape[1] - 1`` is one node) over its inputs' dims, as a 0-d int64 tensor.
def _size_expr_of(expr, arrays) -> int:
    from ..graph.sizes import evaluate
    return evaluate(expr, [tuple(a.shape) for a in arrays])


def _dim_size_fwd(xp, *arrays, expr):
    return xp.asarray(_size_expr_of(expr, arrays), dtype=np.int64)


def _dim_size_cpu(*arrays, expr):
    return np.asarray(_size_expr_of(expr, arrays), dtype=np.int64)


def _dim_size_vmap(*arrays, expr):
    # every example has the logical shape: one unbatched value, not one per example
    from ..vmap._common import wrap
    from ..vmap.phys import xp_of
    xp = xp_of(arrays[0].phys)
    return wrap(xp.asarray(_size_expr_of(expr, arrays), dtype=np.int64), arrays[0].dev, None)


def _dim_size_infer(*specs, expr):
    from ..graph.sizes import evaluate
    if not specs:
        raise ValueError("dim_size: needs the tensor(s) whose dims it reads")
    evaluate(expr, [s[0] for s in specs])      # a malformed expression raises here
    return (), np.dtype(np.int64)


DIM_SIZE = register(OpDef(
    "dim_size", _dim_size_fwd, kernels={"cpu": _dim_size_cpu, "vmap": _dim_size_vmap},
    infer=_dim_size_infer, saves=False, cost=lambda i, o, **a: (0, 8),
    complex="forward",      # reads only shapes: any dtype's
    doc="A size expression over the inputs' dims (tensorlib.graph.sizes; ``('dim', 0, d)``: "
        "the size of input 0 along d) as a 0-d int64 tensor, read when the op runs (no "
        "gradient)."))


def dim_size(x: Tensor, dim: int) -> Tensor:
    """``x.shape[dim]`` as a 0-d int64 tensor on ``x``'s device (``torch.tensor(x.size(dim))``
    as a graph op): under capture with a None dim the size is read each time the graph runs
    (ONNX: Shape and Gather). Not differentiable.

    >>> dim_size(tl.zeros(3, 5), -1)
    tensor(5)
    """
    from ._util import norm_axis, to_tensor
    x = to_tensor(x)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim_size: dim must be an int, got {dim!r}")
    return apply(DIM_SIZE, x, expr=("dim", 0, norm_axis(int(dim), x.ndim, "dim_size")))


def element_count(shape, like: Tensor):
    """The element count of ``shape``: an int, or where it was read from None dims under
    capture, a 0-d tensor of ``like``'s dtype that follows them when the graph replays (a
    mean's divisor)."""
    from ._util import numel
    count = numel(shape)
    return size_tensor(count, like).to(like.dtype) if traced(count) else count


def size_tensor(n, like: Tensor) -> Tensor:
    """Size ``n`` as a 0-d int64 tensor on ``like``'s device: a size read from None dims
    under capture (``x.shape[0] - 1``, a TracedSize) as one ``dim_size`` node that follows
    those dims when the graph runs; a plain int as a constant."""
    if traced(n):
        from ..graph.sizes import number_sources
        (expr,), srcs = number_sources([n.expr])
        return apply(DIM_SIZE, *srcs, expr=expr)
    from ..creation import tensor
    return tensor(plain(n), dtype=np.int64, device=like.device)
