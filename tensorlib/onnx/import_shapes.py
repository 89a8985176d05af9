"""ONNX import of shape arithmetic done at run time.

An exported model with dynamic axes computes shapes as tensors: ``x.view(x.size(0), -1)``
from PyTorch becomes Shape -> Gather -> Unsqueeze -> Concat -> Reshape. tensorlib's ops take
shapes as attributes, with sizes that follow a dim at run time written as small expressions
(:mod:`tensorlib.graph.sizes`). So the importer follows such a shape tensor symbolically: a
:class:`SymShape` holds its elements as ints or expressions over the dims of graph values,
through Gather, Slice, Concat, (Un)squeeze, Cast, integer arithmetic and ReduceProd, and the
ops that consume a shape (Reshape, Expand, ConstantOfShape, Range) receive those expressions as
their ``sizes``; one used as data becomes a ``dim_size`` node. An expression here names a
graph value in place of an input index: ``("dim", value, axis)``;
``graph.sizes.number_sources`` numbers them when a consumer is built.
"""
from __future__ import annotations

import numpy as np

from ..graph.sizes import OPS, number_sources

SYM_IMPORTERS: dict = {}


class SymShape:
    """A 1-d int64 shape tensor (a 0-d one when ``scalar``) known at import only as
    expressions: each item an int or an expression over graph values' dims."""

    __slots__ = ("items", "scalar")
    dtype = np.dtype(np.int64)

    def __init__(self, items, scalar: bool = False):
        self.items = [fold(e) for e in items]
        self.scalar = scalar

    @property
    def shape(self) -> tuple:
        return () if self.scalar else (len(self.items),)

    @property
    def ndim(self) -> int:
        return 0 if self.scalar else 1


def fold(e):
    """``e`` with the dims known at import replaced by their sizes, and constant
    arithmetic done."""
    if isinstance(e, (int, np.integer)):
        return int(e)
    if e[0] == "dim":
        d = e[1].shape[e[2]]
        return e if d is None else int(d)
    a, b = fold(e[1]), fold(e[2])
    if isinstance(a, int) and isinstance(b, int):
        if e[0] in ("floordiv", "mod") and b == 0:
            raise ValueError("shape arithmetic divides by zero")
        return OPS[e[0]](a, b)
    return (e[0], a, b)


def _items(b, v, what: str) -> tuple[list, bool]:
    """(the elements, whether 0-d) of a shape operand: a SymShape or an integer constant."""
    if isinstance(v, SymShape):
        return list(v.items), v.scalar
    if v is not None and (v.dtype.kind not in "iu" or v.node.op != "constant"):
        # a data tensor sliced or gathered at run-time bounds (pos[:, :x.size(1)])
        raise NotImplementedError(f"{what}: a tensor indexed by a size known only at run "
                                  "time (a dynamic slice or gather); export with fixed sizes")
    a = b.array(v, what)
    if np.ndim(a) > 1:
        # (i * n) // k with a column of i: data arithmetic on a size, not a shape (which is
        # 0-d or 1-d); computed as a tensor instead
        raise NotImplementedError(f"{what}: a {np.ndim(a)}-d operand (data, not a shape)")
    return [int(x) for x in np.asarray(a).reshape(-1)], np.ndim(a) == 0


def _broadcast(*lists) -> list:
    """Equal-length copies of element lists, a 1-element list repeated (ONNX broadcasting
    of 1-d operands)."""
    k = max(len(v) for v in lists)
    if any(len(v) not in (1, k) for v in lists):
        raise ValueError(f"shape arithmetic on {[len(v) for v in lists]} elements")
    return [v * k if len(v) == 1 else v for v in lists]


def sym(*names):
    def deco(f):
        for n in names:
            SYM_IMPORTERS[n] = f
        return f
    return deco


def shape_of(b, x, start: int = 0, end: int | None = None):
    """ONNX Shape of value ``x``: a constant when the dims are known, else a SymShape."""
    dims = range(x.ndim)[start:end]
    items = [("dim", x, i) for i in dims]
    s = SymShape(items)
    if all(isinstance(e, int) for e in s.items):
        return b.const(np.asarray(s.items, np.int64))
    return s


# --- shape-vector ops -------------------------------------------------------------------------
@sym("Identity")
def _identity(b, n, ins, at):
    return [ins[0]]


@sym("Cast")
def _cast(b, n, ins, at):
    from onnx import helper
    if np.dtype(helper.tensor_dtype_to_np_dtype(at["to"])).kind not in "iu":
        raise NotImplementedError("a shape computed at run time cast to a non-integer type")
    return [ins[0]]


@sym("Gather")
def _gather(b, n, ins, at):
    items, _ = _items(b, ins[0], "Gather data")
    if int(at.get("axis", 0)) != 0:
        raise NotImplementedError("Gather of a run-time shape along an axis other than 0")
    idx = b.array(ins[1], "Gather indices (of a run-time shape)")
    picked = [items[int(i)] for i in np.asarray(idx).reshape(-1)]
    if np.ndim(idx) == 0:
        return [SymShape(picked, scalar=True)]
    if np.ndim(idx) != 1:
        raise NotImplementedError("Gather of a run-time shape with a >1-d index")
    return [SymShape(picked)]


@sym("Unsqueeze")
def _unsqueeze(b, n, ins, at):
    items, scalar = _items(b, ins[0], "Unsqueeze input")
    if not scalar:
        raise NotImplementedError("Unsqueeze of a 1-d run-time shape (only scalars)")
    return [SymShape(items)]


@sym("Squeeze")
def _squeeze(b, n, ins, at):
    items, scalar = _items(b, ins[0], "Squeeze input")
    if scalar or len(items) != 1:
        raise NotImplementedError("Squeeze of a run-time shape with more than one element")
    return [SymShape(items, scalar=True)]


@sym("Concat")
def _concat(b, n, ins, at):
    items: list = []
    for v in ins:
        if v is not None:
            its, scalar = _items(b, v, "Concat input")
            if scalar:
                raise ValueError("Concat of a 0-d shape element")
            items += its
    return [SymShape(items)]


@sym("Slice")
def _slice(b, n, ins, at):
    items, scalar = _items(b, ins[0], "Slice input")
    if scalar or b.opset < 10:
        raise NotImplementedError("Slice of a run-time shape (opset >= 10, 1-d)")
    starts, ends = (int(b.array(v, "Slice bound").reshape(-1)[0]) for v in ins[1:3])
    if len(ins) > 3 and ins[3] is not None and int(b.array(ins[3]).reshape(-1)[0]) != 0:
        raise ValueError("Slice of a 1-d shape along an axis other than 0")
    step = int(b.array(ins[4]).reshape(-1)[0]) if len(ins) > 4 and ins[4] is not None else 1
    big = 1 << 62
    return [SymShape(items[slice(max(min(starts, big), -big),
                                 None if step < 0 and ends <= -big else min(ends, big), step)])]


def _arith(op):
    def f(b, n, ins, at):
        (a, sa), (c, sc) = _items(b, ins[0], "operand"), _items(b, ins[1], "operand")
        a, c = _broadcast(a, c)
        return [SymShape([(op, x, y) for x, y in zip(a, c)], scalar=sa and sc)]
    return f


# integer Div truncates; sizes are not negative, so it is floor division here
for _onnx, _op in (("Add", "add"), ("Sub", "sub"), ("Mul", "mul"), ("Div", "floordiv"),
                   ("Mod", "mod")):
    SYM_IMPORTERS[_onnx] = _arith(_op)


@sym("Neg")
def _neg(b, n, ins, at):
    # PyTorch's export of x[-n:] with a run-time n: Neg(Gather(Shape(x))) as a Slice bound
    items, scalar = _items(b, ins[0], "Neg operand")
    return [SymShape([("mul", e, -1) for e in items], scalar=scalar)]


def _nonneg(e) -> bool:
    """Whether expression ``e`` is never negative (a dim, or arithmetic keeping that)."""
    if isinstance(e, int):
        return e >= 0
    if e[0] == "dim":
        return True
    return e[0] in ("add", "mul", "floordiv", "mod") and _nonneg(e[1]) and _nonneg(e[2])


@sym("Abs")
def _abs(b, n, ins, at):
    items, scalar = _items(b, ins[0], "Abs operand")
    out = []
    for e in items:
        if isinstance(e, int):
            out.append(abs(e))
        elif _nonneg(e):
            out.append(e)
        elif e[0] == "mul" and e[2] == -1 and _nonneg(e[1]):    # Abs(Neg(size))
            out.append(e[1])
        else:
            raise NotImplementedError("Abs of a run-time size whose sign is not known at "
                                      "import")
    return [SymShape(out, scalar=scalar)]


@sym("ReduceProd", "ReduceSum")
def _reduce(b, n, ins, at):
    # the element count of a dynamic shape (tensorlib's var/std divisor, numel)
    items, scalar = _items(b, ins[0], f"{n.op_type} input")
    axes_in = b.opset >= 18 or (n.op_type == "ReduceSum" and b.opset >= 13)
    axes = ins[1] if axes_in and len(ins) > 1 else None
    axes = ([int(a) for a in np.asarray(b.array(axes, f"{n.op_type} axes")).reshape(-1)]
            if axes is not None else list(at.get("axes", [])))
    if scalar or (not axes and at.get("noop_with_empty_axes", 0)):
        return [SymShape(items, scalar=scalar)]
    if any(a not in (0, -1) for a in axes):
        raise ValueError(f"{n.op_type} of a 1-d shape along axes {axes}")
    op, acc = ("mul", 1) if n.op_type == "ReduceProd" else ("add", 0)
    for e in items:
        acc = fold((op, acc, e))
    return [SymShape([acc], scalar=not at.get("keepdims", 1))]


@sym("Shape")
def _shape_of_shape(b, n, ins, at):
    return [b.const(np.asarray(ins[0].shape, np.int64)[int(at.get("start", 0)):at.get("end")])]


@sym("Equal")
def _equal(b, n, ins, at):
    # decided at import where it can be: a size is never negative (PyTorch's expand export
    # compares the target with -1)
    (a, _), (c, _) = _items(b, ins[0], "Equal operand"), _items(b, ins[1], "Equal operand")
    out = []
    for x, y in zip(*_broadcast(a, c)):
        if isinstance(x, int) and isinstance(y, int):
            out.append(x == y)
        elif (isinstance(x, int) and x < 0) or (isinstance(y, int) and y < 0):
            out.append(False)
        else:
            raise NotImplementedError("Equal of sizes known only at run time")
    return [b.const(np.asarray(out, bool).reshape(ins[0].shape))]


@sym("Where")
def _where(b, n, ins, at):
    cond = [bool(t) for t in np.asarray(b.array(ins[0], "Where condition")).reshape(-1)]
    (a, _), (c, _) = _items(b, ins[1], "Where operand"), _items(b, ins[2], "Where operand")
    return [SymShape([x if t else y for t, x, y in zip(*_broadcast(cond, a, c))])]


# --- consumers --------------------------------------------------------------------------------
@sym("Reshape")
def _reshape(b, n, ins, at):
    x = ins[0]
    if isinstance(x, SymShape):          # a shape vector flattened or made 0-d
        target = [int(v) for v in np.asarray(b.array(ins[1], "Reshape shape")).reshape(-1)]
        if target in ([-1], [len(x.items)]) or (not target and len(x.items) == 1):
            return [SymShape(x.items, scalar=not target)]
        raise NotImplementedError(f"Reshape of a run-time shape to {target}")
    items, _ = _items(b, ins[1], "Reshape shape")
    shape, keep, exprs = [], [], []
    for i, e in enumerate(items):
        if e == 0 and not at.get("allowzero", 0):
            e = ("dim", x, i)            # ONNX: 0 copies the input's dim
            e = fold(e)
        if isinstance(e, int):
            shape.append(e)
        elif e == ("dim", x, i):
            shape.append(0)
            keep.append(i)
        else:
            shape.append(0)
            exprs.append((i, e))
    lowered, srcs = number_sources([e for _, e in exprs], [x], 1)
    attrs = {"shape": tuple(shape)}
    if keep:
        attrs["keep"] = tuple(keep)
    if exprs:
        attrs["sizes"] = tuple((i, e) for (i, _), e in zip(exprs, lowered))
    return [b.op("reshape", x, *srcs, **attrs)]


@sym("Expand")
def _expand(b, n, ins, at):
    x = ins[0]
    items, _ = _items(b, ins[1], "Expand shape")
    lead = len(items) - x.ndim
    if lead < 0:
        raise NotImplementedError("Expand to fewer dims than the input has")
    target = []
    for i, e in enumerate(items):
        j = i - lead
        if e == 1 and j >= 0:            # numpy-style: a 1 in the target keeps x's dim
            e = fold(("dim", x, j))
        target.append(e)
    exprs = [(i, e) for i, e in enumerate(target) if not isinstance(e, int)]
    lowered, srcs = number_sources([e for _, e in exprs], [x], 1)
    plain = tuple(0 if not isinstance(e, int) else e for e in target)
    return [b.op("broadcast_to", x, *srcs, shape=plain,
                 sizes=tuple((i, e) for (i, _), e in zip(exprs, lowered)))]


@sym("ConstantOfShape")
def _constant_of_shape(b, n, ins, at):
    items, _ = _items(b, ins[0], "ConstantOfShape shape")
    val = np.asarray(at.get("value", np.zeros(1, np.float32))).reshape(-1)
    exprs = [(i, e) for i, e in enumerate(items) if not isinstance(e, int)]
    lowered, srcs = number_sources([e for _, e in exprs])
    plain = tuple(0 if not isinstance(e, int) else e for e in items)
    return [b.op("fill", *srcs, shape=plain, dims=(), value=val[0].item(),
                 dtype=val.dtype.name,
                 sizes=tuple((i, e) for (i, _), e in zip(exprs, lowered)))]


@sym("Range")
def _range(b, n, ins, at):
    # arange(start, limit, 1) with a run-time limit: ones of that length summed (as
    # tl.arange under capture), which follows the size in the graph and its exports
    (start,), _ = _items(b, ins[0], "Range start")
    (limit,), _ = _items(b, ins[1], "Range limit")
    (delta,), _ = _items(b, ins[2], "Range delta")
    if not isinstance(start, int) or delta != 1:
        raise NotImplementedError("Range with a run-time shape needs a constant start and "
                                  "delta 1")
    dt = (ins[0].dtype if not isinstance(ins[0], SymShape) else np.dtype(np.int64))
    length = fold(("sub", limit, start))
    lowered, srcs = number_sources([length])
    ones = b.op("fill", *srcs, shape=(0,), dims=(), value=1, dtype=np.dtype(dt).name,
                sizes=((0, lowered[0]),))
    r = b.op("cumsum", ones, axis=0)
    return [b.op("add", r, b.const(np.asarray(start - 1, dt)))]
