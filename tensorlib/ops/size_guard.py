"""Size checks of composite ops that a captured graph repeats when it replays.

Ops made of other ops (circular pad: slices and a concat; adaptive pools: matmuls with
run-time windows; narrow: a slice) have no kernel of their own to check sizes in. Under
capture with None dims they pass their input through ``size_guard``, an identity whose check
holds the rule, so a replayed graph raises as eager does; eager runs the same rule directly.
A module owning such an op registers its rule in :data:`SIZE_RULES`.
"""
from __future__ import annotations

from collections.abc import Callable

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
