"""Sizes computed at run time: small integer expressions over the dims of a node's inputs.

Under capture with ``None`` dims, ``x.shape[0]`` is a :class:`~tensorlib.graph.tracer.
TracedSize`; arithmetic on it (``x.shape[0] * 3``, ``n // 2``, ``a.shape[0] * a.shape[1]``)
gives another one that carries its expression. An op that takes a shape (reshape,
broadcast_to, fill) receives the tensors the sizes were read from as extra inputs and an
attr ``sizes = ((position, expr), ...)``; the kernel, ``infer``, the saved graph file and the
ONNX rule (Shape, Gather, Mul, Concat) all evaluate the same expression. An expression is
plain data (it round-trips through JSON):

- an ``int``: a literal;
- ``("dim", k, axis)``: the size of the node's input ``k`` along ``axis``;
- ``(op, a, b)`` with ``op`` in ``add sub mul floordiv mod``: Python's integer arithmetic.

A *size predicate* ``(cmp, a, b, result)`` (``cmp`` in ``lt le gt ge eq ne``) is a comparison
of sizes the traced Python code made (``assert t <= 8``, ``if n > 3:``) and its traced
``result``: a graph holds the branch that outcome took, so it fits only the input shapes where
every predicate gives the same result (:func:`predicate_mismatch`).
"""
from __future__ import annotations

import operator

OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul,
       "floordiv": operator.floordiv, "mod": operator.mod}
SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "floordiv": "//", "mod": "%"}
_MAX_DEPTH = 64
# the most size predicates a graph records (past it the size escapes) and a graph file holds
MAX_PREDICATES = 4096
CMPS = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
        "eq": operator.eq, "ne": operator.ne}
CMP_SYMBOLS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
# what every size-predicate miss says after the comparison (see graph_predicate_miss)
PREDICATE_HELP = ("the traced code compared these sizes (an assert or an if on a shape) and "
                  "the graph holds the branch taken then, so it cannot serve these inputs (a "
                  "tl.function traces again for them).")


def evaluate(e, shapes, depth: int = 0):
    """The value of expression ``e`` for input shapes ``shapes`` (None where a dim it reads
    is unknown). Raises ValueError on a malformed expression or a division by zero."""
    if depth > _MAX_DEPTH:
        raise ValueError("size expression nested too deeply")
    if isinstance(e, bool):
        raise ValueError(f"bad size expression {e!r}")
    if isinstance(e, int):
        return e
    if not isinstance(e, (tuple, list)) or not e:
        raise ValueError(f"bad size expression {e!r}")
    if e[0] == "dim":
        if len(e) != 3 or not all(isinstance(i, int) and not isinstance(i, bool)
                                  for i in e[1:]):
            raise ValueError(f"bad size expression {e!r}")
        k, axis = e[1], e[2]
        if not 0 <= k < len(shapes) or not 0 <= axis < len(shapes[k]):
            raise ValueError(f"size expression {e!r} reads a dim the node's inputs lack")
        d = shapes[k][axis]
        return None if d is None else d if isinstance(d, SymDim) else int(d)
    if e[0] not in OPS or len(e) != 3:
        raise ValueError(f"bad size expression {e!r}")
    a, b = evaluate(e[1], shapes, depth + 1), evaluate(e[2], shapes, depth + 1)
    if a is None or b is None:
        return None
    if e[0] in ("floordiv", "mod") and b == 0:
        raise ValueError(f"size expression {to_str(e)} divides by zero")
    return OPS[e[0]](a, b)


def dims_of(e) -> set:
    """The ``(input index, axis)`` dims expression ``e`` reads."""
    if isinstance(e, (tuple, list)) and e:
        if e[0] == "dim":
            return {(e[1], e[2])}
        return dims_of(e[1]) | dims_of(e[2])
    return set()


def inputs_of(e) -> set:
    """The input indices expression ``e`` reads."""
    return {k for k, _ in dims_of(e)}


def input_labels(inputs, names=None) -> list[str]:
    """The labels (``"x."``) :func:`predicate_str` names graph ``inputs`` (Values) by:
    ``names[k]`` where given, else the input's own name, else ``input<k>``."""
    return [f"{names[k] if names is not None and k < len(names) else v.name or f'input{k}'}."
            for k, v in enumerate(inputs)]


def apply_sizes(shape, sizes, shapes) -> tuple:
    """``shape`` with the positions in ``sizes`` replaced by their expressions' values."""
    if not sizes:
        return tuple(shape)
    out = list(shape)
    for pos, e in sizes:
        if not isinstance(pos, int) or not 0 <= pos < len(out):
            raise ValueError(f"size position {pos!r} outside a target of {len(out)} dims")
        out[pos] = evaluate(e, shapes)
    return tuple(out)


def to_str(e, names=None) -> str:
    """``e`` as Python-like text (``shape[0] * 3``); ``names`` labels the inputs."""
    if isinstance(e, int):
        return str(e)
    if e[0] == "dim":
        who = names[e[1]] if names is not None else ""
        return f"{who}shape[{e[2]}]"
    return f"({to_str(e[1], names)} {SYMBOLS[e[0]]} {to_str(e[2], names)})"


def number_sources(exprs, first=(), offset: int = 0) -> tuple[list, list]:
    """Expressions whose ``("dim", source, axis)`` leaves name their source object (a
    tensor while tracing, a graph value in the ONNX importer) -> expressions over input
    indices: ``first`` are the consumer's own inputs (from 0), other sources are numbered
    from ``offset`` on. Returns (the expressions, the extra sources in that order)."""
    srcs: list = []
    index = {id(t): k for k, t in enumerate(first)}

    def conv(e):
        if isinstance(e, tuple) and e and e[0] == "dim":
            k = index.get(id(e[1]))
            if k is None:
                k = index[id(e[1])] = offset + len(srcs)
                srcs.append(e[1])
            return ("dim", k, e[2])
        if isinstance(e, tuple):
            return (e[0], conv(e[1]), conv(e[2]))
        return int(e)
    return [conv(e) for e in exprs], srcs


def lower(values, first=(), offset: int = 0):
    """Turn the TracedSize entries of ``values`` into expressions over input indices
    (:func:`number_sources`). Returns (plain ints with the traced values, ``sizes`` attr,
    extra source tensors)."""
    from .tracer import TracedSize
    traced = [(i, s) for i, s in enumerate(values) if isinstance(s, TracedSize)]
    exprs, srcs = number_sources([s.expr for _, s in traced], first, offset)
    plain = [int.__int__(s) if isinstance(s, TracedSize) else int(s) for s in values]
    sizes = [(i, e) for (i, _), e in zip(traced, exprs)]
    return tuple(plain), tuple(sizes), srcs


def predicate_str(p, names=None) -> str:
    """A size predicate as the comparison it holds (``x.shape[1] <= 8``), where
    ``names[k]`` labels input ``k`` (``x.``)."""
    cmp, a, b, result = p[:4]
    text = f"{_side_str(a, names)} {CMP_SYMBOLS[cmp]} {_side_str(b, names)}"
    return text if result else f"not {text}"


def predicate_mismatch(preds, shapes, names=None, sources=None) -> str | None:
    """The first size predicate whose result for input ``shapes`` differs from its traced
    one, in words, or None when all agree (a predicate reading an input not given is
    skipped). ``sources`` maps a predicate to (source line, ``file:line``, the comparison as
    the code made it, None or ``"a shape rule"``), as the tracer keeps them."""
    for p in preds:
        cmp, a, b, result = p[:4]
        if any(not 0 <= k < len(shapes) or shapes[k] is None
               for k in inputs_of(a) | inputs_of(b)):
            continue
        x, y = _side(a, shapes), _side(b, shapes)
        if x is None or y is None:
            continue
        if bool(CMPS[cmp](x, y)) != bool(result):
            given = ", ".join(str(tuple(s)) for s in shapes if s is not None)
            return (f"the size comparison {predicate_str(p, names)}"
                    f"{_source_words(p, names, sources)} held when the graph was traced, but "
                    f"not for input shapes {given}")
    return None


def _source_words(p, names, sources) -> str:
    src = (sources or {}).get(tuple(p[:4]))
    if not src:
        return ""
    code, where, made, how = (list(src) + [None] * 4)[:4]
    said = []
    if made is not None and tuple(made[:4]) != tuple(p[:4]):
        said.append(predicate_str(made, names))
    if how:
        said.append(f"{how} of an op behind")
    if code:
        said.append(f"`{code}`")
    if where:
        said.append(f"at {where}")
    return f" (from {' '.join(said)})" if said else ""


def graph_predicate_miss(graph, shapes, names=None) -> str | None:
    """Why ``graph`` cannot serve input ``shapes`` (None: not given) because of its size
    predicates, in the words every caller uses (tl.function's retrace, ``graph.run``, a
    loaded graph file), or None when every predicate comes out as traced."""
    if not graph.size_predicates:
        return None
    return predicate_mismatch(graph.size_predicates, shapes,
                              names or input_labels(graph.inputs),
                              graph.size_predicate_sources)


def carry_predicates(src, dst, index: dict | None = None, sharded: dict | None = None) -> None:
    """Give graph ``dst`` (a copy or rebuild of ``src``) ``src``'s size predicates and their
    sources. ``index``: ``src``'s input positions -> ``dst``'s (identity when None; a
    predicate reading an input ``dst`` lacks is dropped); ``sharded``: ``dst`` input ->
    ``k``, where that input's axis 0 holds ``k`` copies of what ``src`` read there."""
    def conv(e):
        if isinstance(e, (int, float)):
            return e
        if e[0] == "dim":
            k = e[1] if index is None else index[e[1]]
            d = ("dim", k, e[2])
            n = (sharded or {}).get(k)
            return ("floordiv", d, n) if n and e[2] == 0 else d
        return (e[0], conv(e[1]), conv(e[2]))
    def fits(p):
        return index is None or all(k in index for e in p[1:3] for k in inputs_of(e))

    def moved(p):
        return (p[0], conv(p[1]), conv(p[2]), p[3])
    preds, sources = [], {}
    for p in src.size_predicates:
        if not fits(p):
            continue
        q = moved(p)
        preds.append(q)
        s = src.size_predicate_sources.get(p)
        if s is not None:
            made = s[2] if s[2] is not None and fits(s[2]) else None
            sources[q] = (s[0], s[1], None if made is None else moved(made), s[3])
    dst.size_predicates = preds
    dst.size_predicate_sources = sources


def check_predicates(preds, where: str = "graph") -> list:
    """Validate size predicates read from a file (plain lists); returns them as tuples."""
    out = []
    for p in preds:
        if (not isinstance(p, (list, tuple)) or len(p) != 4 or p[0] not in CMPS
                or not isinstance(p[3], bool)):
            raise ValueError(f"{where}: bad size predicate {p!r}")
        a, b = (_tuplify(e) for e in p[1:3])
        for e in (a, b):
            if not isinstance(e, float):
                _check_expr(e, where)
        out.append((p[0], a, b, p[3]))
    return out


def _check_expr(e, where: str, depth: int = 0) -> None:
    ok = depth <= _MAX_DEPTH
    if ok and isinstance(e, int) and not isinstance(e, bool):
        return
    if ok and isinstance(e, tuple) and len(e) == 3 and e[0] == "dim":
        ok = all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in e[1:])
    elif ok and isinstance(e, tuple) and len(e) == 3 and e[0] in OPS:
        _check_expr(e[1], where, depth + 1)
        _check_expr(e[2], where, depth + 1)
    else:
        ok = False
    if not ok:
        raise ValueError(f"{where}: bad size expression {e!r}")


def _side(e, shapes):
    """One side of a predicate: an expression, or a float the size was compared with."""
    return e if isinstance(e, float) else evaluate(e, shapes)


def _side_str(e, names) -> str:
    return repr(e) if isinstance(e, float) else to_str(e, names)


def _tuplify(e):
    if isinstance(e, list):
        return tuple(_tuplify(x) for x in e)
    return e


class Lost(Exception):
    """A :class:`SymDim` was used in a way its expression cannot follow."""


class SizeArithmetic:
    """Python's integer operators on a size that carries an expression: each goes through the
    class's ``_bin(other, op, swap=False)``, which computes the int and the new expression
    (:class:`SymDim` here, the tracer's ``TracedSize``)."""

    def __add__(self, o): return self._bin(o, "add")
    def __radd__(self, o): return self._bin(o, "add", True)
    def __sub__(self, o): return self._bin(o, "sub")
    def __rsub__(self, o): return self._bin(o, "sub", True)
    def __mul__(self, o): return self._bin(o, "mul")
    def __rmul__(self, o): return self._bin(o, "mul", True)
    def __floordiv__(self, o): return self._bin(o, "floordiv")
    def __rfloordiv__(self, o): return self._bin(o, "floordiv", True)
    def __mod__(self, o): return self._bin(o, "mod")
    def __rmod__(self, o): return self._bin(o, "mod", True)

    def __neg__(self):
        return self._bin(-1, "mul")

    def __pos__(self):
        return self


class SymDim(SizeArithmetic, int):
    """A dim fed to an op's ``infer`` to learn its output dims as expressions over the
    graph's input dims: ``+ - * // %`` follow, every comparison is kept in ``guards`` as a
    size predicate (``infer``'s branches hold only where each comes out as traced), and any
    other use raises :class:`Lost`."""

    def __new__(cls, value: int, expr, guards: list):
        self = super().__new__(cls, value)
        self.expr = expr
        self.guards = guards
        return self

    def _bin(self, other, op, swap=False):
        if isinstance(other, bool) or not isinstance(other, int):
            raise Lost(f"{op} with {type(other).__name__}")
        a, b = int.__int__(self), int.__int__(other)
        ea, eb = self.expr, other.expr if isinstance(other, SymDim) else int(other)
        if swap:
            a, b, ea, eb = b, a, eb, ea
        if op in ("floordiv", "mod") and b == 0:
            raise Lost("division by zero")
        return SymDim(OPS[op](a, b), _simplified(op, ea, eb), self.guards)

    def _cmp(self, cmp: str, o):
        if isinstance(o, bool) or not isinstance(o, int):
            if o is None or isinstance(o, (str, tuple, list)):
                return cmp == "ne"      # `d is None`-style tests: no size involved
            raise Lost(f"compared with {type(o).__name__}")
        result = CMPS[cmp](int.__int__(self), int.__int__(o))
        self.guards.append((cmp, self.expr, o.expr if isinstance(o, SymDim) else int(o),
                            bool(result)))
        return result

    def __lt__(self, o): return self._cmp("lt", o)
    def __le__(self, o): return self._cmp("le", o)
    def __gt__(self, o): return self._cmp("gt", o)
    def __ge__(self, o): return self._cmp("ge", o)
    def __eq__(self, o): return self._cmp("eq", o)
    def __ne__(self, o): return self._cmp("ne", o)

    def __bool__(self):
        return self._cmp("ne", 0)

    def _lost(self, *a, **k):
        raise Lost("a use a size expression cannot follow")

    __int__ = __index__ = __float__ = __truediv__ = __rtruediv__ = __pow__ = __rpow__ = _lost
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __lshift__ = __rshift__ = _lost
    __divmod__ = __abs__ = __round__ = __trunc__ = __floor__ = __ceil__ = _lost
    __hash__ = int.__hash__


def _simplified(op: str, a, b):
    """``(op, a, b)`` without the identities infer code makes (``1 * n``, ``n + 0``)."""
    if op == "add" and a == 0 or op == "mul" and a == 1:
        return b
    if op in ("add", "sub") and b == 0 or op in ("mul", "floordiv") and b == 1:
        return a
    return (op, a, b)


def derive_dims(infer, in_shapes, attrs: dict, index: int = 0):
    """Run op ``infer`` on ``in_shapes`` ((shape, dtype) pairs whose dims may be
    ``(value, expr)`` pairs: a size and its expression over the graph's input dims) and give
    output ``index``'s dims as expressions (an int for a static dim, None where one cannot be
    followed) with the guards its branches took; None when ``infer`` cannot run on them."""
    guards: list = []
    shapes = [(tuple(SymDim(d[0], d[1], guards) if isinstance(d, tuple) else d for d in s), dt)
              for s, dt in in_shapes]
    try:
        out = infer(*shapes, **attrs)
        from .executor import multi_spec
        outs = list(out) if multi_spec(out) else [out]
        dims = tuple(outs[index][0])
    except Exception:       # noqa: BLE001 - any failure means: not followed (the caller escapes)
        return None
    return tuple(d.expr if isinstance(d, SymDim) else None if d is None else int(d)
                 for d in dims), guards
