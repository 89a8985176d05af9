"""``finite_guard``: an identity whose kernel raises when its input holds NaN or inf.

A check on values that must run each time a captured graph runs (``clip_grad_norm_(...,
error_if_nonfinite=True)`` inside ``tl.function``): eager code reads the value on the host
and raises there, but a replayed graph has no host step, so the check is a node whose kernel
raises. On a GPU the kernel waits for the value, as eager's check does.
"""
from __future__ import annotations


from .._apply import apply
from .._tensor import Tensor
from .registry import OpDef, register


def _finite_check(x, *, message):
    # (a check, not the kernel: checks run before it, eagerly and at every replay, and
    # their errors are not prefixed with the op's name)
    from ..backends import xp_of
    ok = bool(xp_of(x).isfinite(x).all())
    if not ok:
        shown = float(x) if x.size == 1 else "not finite"
        raise RuntimeError(message.format(value=shown))


FINITE_GUARD = register(OpDef(
    "finite_guard", lambda xp, x, **a: x, check=_finite_check, vjp=lambda n, g: (g,),
    saves=False, view=True,
    infer=lambda x, **a: x, cost=lambda i, o, **a: (0, 0),
    # (ONNX has no assertion: an exported graph passes the value through unchecked)
    onnx=lambda ctx, n: ctx.op("Identity", [ctx.name(n.inputs[0])]),
    doc="Identity that raises RuntimeError(message.format(value=...)) when its input holds "
        "NaN or inf, each time it runs."))


def finite_guard(x: Tensor, message: str) -> Tensor:
    """``x``, checked to be finite by a graph node under capture (raising at every replay
    whose value is not), else right away; ``message`` may hold ``{value}``."""
    return apply(FINITE_GUARD, x, message=message)
