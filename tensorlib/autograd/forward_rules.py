"""Explicit forward-mode rules (``OpDef.jvp``) for the hot ops, registered by op name.

Every other op gets its tangent derived from its vjp (tensorlib.autograd.forward_ad); these
are the same tangents, cheaper (tests/test_forward_ad.py checks each against the derived
one). A rule is ``jvp(node, *tangents)`` with tangents None where an input has none,
written with tensorlib ops so the tangent is itself differentiable.
"""
from __future__ import annotations

from collections.abc import Callable

from .._core import apply
from ..ops.registry import REGISTRY


def _plus(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _linear0(n, t, *rest):
    # the op is linear in input 0 (the others are indices or sizes): the op on the tangent
    if t is None:
        return None
    return apply(n.op, t, *n.inputs[1:], **n.attrs)


def _add(n, ta, tb):
    return _plus(ta, tb)


def _sub(n, ta, tb):
    return _plus(ta, None if tb is None else -tb)


def _mul(n, ta, tb):
    a, b = n.inputs
    return _plus(None if ta is None else ta * b, None if tb is None else a * tb)


def _div(n, ta, tb):
    a, b = n.inputs
    if tb is None:
        return ta / b
    num = -(n.out * tb) if ta is None else ta - n.out * tb
    return num / b


def _matmul(n, ta, tb):
    a, b = n.inputs
    return _plus(None if ta is None else apply(n.op, ta, b, **n.attrs),
                 None if tb is None else apply(n.op, a, tb, **n.attrs))


def _exp(n, t):
    return t * n.out


def _log(n, t):
    return t / n.inputs[0]


def _tanh(n, t):
    y = n.out
    return t * (1 - y * y)


def _sigmoid(n, t):
    y = n.out
    return t * (y * (1 - y))


def _relu(n, t):
    x = n.inputs[0]
    return t * (x > 0).to(t.dtype)


RULES: dict[str, Callable] = {
    "add": _add, "sub": _sub, "mul": _mul, "div": _div, "neg": _linear0,
    "matmul": _matmul, "exp": _exp, "log": _log, "tanh": _tanh, "sigmoid": _sigmoid,
    "relu": _relu,
    # linear in their (first) input: the tangent is the op on the tangent; views give
    # views of the tangent
    "reshape": _linear0, "transpose": _linear0, "squeeze": _linear0,
    "expand_dims": _linear0, "slice": _linear0, "flip": _linear0, "diagonal": _linear0,
    "broadcast_to": _linear0, "sum": _linear0, "mean": _linear0, "cumsum": _linear0,
    "tril": _linear0, "triu": _linear0, "roll": _linear0, "tile": _linear0,
    "repeat": _linear0, "copy": _linear0,
}


def register_rules() -> None:
    for name, rule in RULES.items():
        op = REGISTRY.get(name)
        if op is not None and op.jvp is None:
            op.jvp = rule


register_rules()
