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
        return None if d is None else int(d)
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


def predicate_mismatch(preds, shapes, names=None) -> str | None:
    """The first size predicate whose result for input ``shapes`` differs from its traced
    one, in words, or None when all agree (a predicate reading an input not given is
    skipped)."""
    for p in preds:
        cmp, a, b, result = p[:4]
        if any(not 0 <= k < len(shapes) or shapes[k] is None
               for k in inputs_of(a) | inputs_of(b)):
            continue
        x, y = _side(a, shapes), _side(b, shapes)
        if x is None or y is None:
            continue
        if bool(CMPS[cmp](x, y)) != bool(result):
            return (f"{predicate_str(p, names)} held when it was traced, but not for input "
                    f"shapes {', '.join(str(tuple(s)) for s in shapes if s is not None)}")
    return None


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
