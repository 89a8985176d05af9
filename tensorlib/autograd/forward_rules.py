"""Explicit forward-mode rules (``OpDef.jvp``) for the hot ops, registered by op name.

Every other op gets its tangent derived from its vjp (tensorlib.autograd.forward_ad); these
are the same tangents, cheaper (tests/autograd/test_forward_ad.py checks each against the derived
one). A rule is ``jvp(node, *tangents)`` with tangents None where an input has none,
written with tensorlib ops so the tangent is itself differentiable.
"""
from __future__ import annotations

import math
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


def _none(n, *ts):
    # the output's values do not depend on the inputs' (a constant shaped like one)
    return None


def _zeros_like(x):
    from ..creation import zeros
    return zeros(x._data.shape, dtype=x._data.dtype, device=x._device)


def _bilinear_terms(n, tx, tw):
    """op(tx, w) + op(x, tw) for an op linear in each of its first two inputs (no bias)."""
    x, w = n.inputs[0], n.inputs[1]
    out = None
    if tx is not None:
        out = apply(n.op, tx, w, **n.attrs)
    if tw is not None:
        out = _plus(out, apply(n.op, x, tw, **n.attrs))
    return out


def _linear(n, tx, tw, tb=None):
    return _plus(_bilinear_terms(n, tx, tw), tb)


def _conv(n, tx, tw, tb=None):
    out = _bilinear_terms(n, tx, tw)
    if tb is not None:
        out = _plus(out, tb.reshape((-1,) + (1,) * (n.out.ndim - 2)))
    return out


def _all_linear(n, *ts):
    # linear in all its inputs together (cat, stack): the op on the tangents
    if all(t is None for t in ts):
        return None
    return apply(n.op, *[_zeros_like(x) if t is None else t for x, t in zip(n.inputs, ts)],
                 **n.attrs)


def _where(n, tc, ta, tb):
    c, a, b = n.inputs
    if ta is None and tb is None:
        return None
    return apply(n.op, c, _zeros_like(a) if ta is None else ta,
                 _zeros_like(b) if tb is None else tb, **n.attrs)


def _gelu(n, t):
    import tensorlib as tl
    x = n.inputs[0]
    if n.attrs.get("approximate", "none") == "tanh":
        k = math.sqrt(2.0 / math.pi)
        th = tl.tanh(k * (x + 0.044715 * x * x * x))
        d = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * k * (1 + 3 * 0.044715 * x * x)
    else:
        d = 0.5 * (1 + tl.erf(x * (1 / math.sqrt(2.0)))) + \
            x * tl.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
    return t * d


def _silu(n, t):
    import tensorlib as tl
    x = n.inputs[0]
    s = tl.sigmoid(x)
    return t * (s * (1 + x * (1 - s)))


def _softplus(n, t):
    import tensorlib as tl
    bx = n.inputs[0] * n.attrs["beta"]
    return t * tl.where(bx > n.attrs["threshold"], 1.0, tl.sigmoid(bx))


def _leaky_relu(n, t):
    # the backward's op is linear in the cotangent: the same op on the tangent
    return apply(REGISTRY["leaky_relu_grad"], t, n.inputs[0], **n.attrs)


def _softmax(n, t):
    y, ax = n.out, n.attrs["axis"]
    return y * (t - (y * t).sum(ax, keepdims=True))


def _log_softmax(n, t):
    import tensorlib as tl
    ax = n.attrs["axis"]
    return t - (tl.exp(n.out) * t).sum(ax, keepdims=True)


def _layer_norm(n, tx, *twb):
    from ..ops.nn_norm import _ln_axes, _split_affine
    x = n.inputs[0]
    axes, _, inv_d = _ln_axes(x._data, n.attrs["ndim"])
    affine = n.attrs["affine"]
    w, _ = _split_affine(n.inputs[1:], affine)
    tw, tb = _split_affine(twb, affine)
    mean, rstd = n.output(1), n.output(2)
    xhat = (x - mean) * rstd
    ty = tmean = trstd = None
    if tx is not None:
        tmean = tx.sum(axes, keepdims=True) * inv_d
        txc = tx - tmean
        # d rstd = -rstd^3 * mean(xc * dxc) = -rstd^2 * mean(xhat * dxc)
        trstd = -(rstd * rstd) * ((xhat * txc).sum(axes, keepdims=True) * inv_d)
        ty = txc * rstd + (x - mean) * trstd
        if w is not None:
            ty = ty * w
    if tw is not None:
        ty = _plus(ty, xhat * tw)
    return _plus(ty, tb), tmean, trstd


def _batch_norm_eval(n, tx, tm, tv, *twb):
    if tm is not None or tv is not None:
        from .forward_ad import derived_jvp
        return derived_jvp(n, tx, tm, tv, *twb)
    from ..ops.nn_norm import _split_affine
    x, mean, var = n.inputs[:3]
    affine = n.attrs["affine"]
    w, _ = _split_affine(n.inputs[3:], affine)
    tw, tb = _split_affine(twb, affine)
    shape = (-1,) + (1,) * (x.ndim - 2)
    scale = (var + n.attrs["eps"]) ** -0.5
    ty = None
    if tx is not None:
        ty = tx * (scale if w is None else scale * w).reshape(shape)
    if tw is not None:
        ty = _plus(ty, (x - mean.reshape(shape)) * (scale * tw).reshape(shape))
    return _plus(ty, None if tb is None else tb.reshape(shape))


def _clip(n, t):
    from ..ops.elementwise import clip_mask, where
    mask = clip_mask(n)
    return t if mask is None else where(mask, t, 0.0)


def _pow(n, ta, tb):
    import numpy as np
    import tensorlib as tl
    a, b = n.inputs
    out = None
    with np.errstate(divide="ignore", invalid="ignore"):
        if ta is not None:
            zero_b = b == 0
            out = tl.where(zero_b, 0.0, ta * b * tl.pow(a, tl.where(zero_b, 1.0, b - 1)))
        if tb is not None:
            # a**b log a, 0 where a == 0 and b >= 0 (the vjp's, PyTorch's)
            lg = tl.where((a == 0) & (b >= 0), 0.0, n.out * tl.log(a))
            out = _plus(out, tb * lg)
    return out


def _sqrt(n, t):
    return t / (2 * n.out)


def _rsqrt(n, t):
    y = n.out
    return (-0.5 * t) * (y * y * y)


def _abs(n, t):
    import tensorlib as tl
    return t * tl.sign(n.inputs[0])


def _square(n, t):
    return 2 * n.inputs[0] * t


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
    "take": _linear0, "take_along_axis": _linear0,
    "fill": _none,
    "linear": _linear, "conv2d": _conv, "concatenate": _all_linear, "stack": _all_linear,
    "where": _where, "gelu": _gelu, "silu": _silu, "softplus": _softplus,
    "leaky_relu": _leaky_relu, "softmax": _softmax, "log_softmax": _log_softmax,
    "layer_norm": _layer_norm, "batch_norm_eval": _batch_norm_eval, "clip": _clip,
    "pow": _pow, "sqrt": _sqrt, "rsqrt": _rsqrt, "abs": _abs, "square": _square,
}


def register_rules() -> None:
    for name, rule in RULES.items():
        op = REGISTRY.get(name)
        if op is not None and op.jvp is None:
            op.jvp = rule


register_rules()
