"""Linear resizing along one axis by a scale factor, as one registry op whose kernel builds
its source positions and weights from the input it is given: a captured graph and its ONNX
export (Resize with scales) follow None spatial dims, where ``interpolate``'s eager form
bakes index tables of one size into the graph. Same arithmetic as the eager form
(PyTorch's ``area_pixel_compute_source_index``, clamped at 0)."""
from __future__ import annotations

import math

import numpy as np

from .._apply import apply
from .registry import OpDef, register


def _out_len(n_in: int, factor: float) -> int:
    return int(math.floor(n_in * factor))


def _tables(n_in: int, factor: float, align_corners: bool):
    """(i0, i1, w1) of every output position along the axis (NumPy, float64 weights)."""
    n_out = _out_len(n_in, factor)
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        src = np.maximum((dst + 0.5) * (1.0 / factor) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def _shape_w(ndim: int, axis: int, n: int) -> tuple:
    s = [1] * ndim
    s[axis] = n
    return tuple(s)


def _fwd(xp, x, *, axis, factor, align_corners):
    i0, i1, w = _tables(x.shape[axis], factor, align_corners)
    w = xp.asarray(w.astype(x.dtype).reshape(_shape_w(x.ndim, axis, w.shape[0])))
    lo = xp.take(x, xp.asarray(i0), axis=axis)
    hi = xp.take(x, xp.asarray(i1), axis=axis)
    return lo + (hi - lo) * w


def _grad_fwd(xp, g, *, axis, factor, align_corners, n_in):
    i0, i1, w = _tables(n_in, factor, align_corners)
    if g.shape[axis] != i0.shape[0]:
        raise ValueError(f"resize_linear_grad: gradient of {g.shape[axis]} positions along "
                         f"axis {axis}, expected {i0.shape[0]}")
    w = xp.asarray(w.astype(g.dtype).reshape(_shape_w(g.ndim, axis, w.shape[0])))
    shape = list(g.shape)
    shape[axis] = n_in
    out = xp.zeros(tuple(shape), g.dtype)
    gm = xp.moveaxis(out, axis, 0)       # a view: writes land in out
    xp.add.at(gm, xp.asarray(i0), xp.moveaxis(g * (1 - w), axis, 0))
    xp.add.at(gm, xp.asarray(i1), xp.moveaxis(g * w, axis, 0))
    return out


def _infer(x, *, axis, factor, align_corners):
    s = list(x[0])
    s[axis] = None if s[axis] is None else _out_len(s[axis], factor)
    return tuple(s), x[1]


def _grad_infer(g, *, axis, factor, align_corners, n_in):
    s = list(g[0])
    s[axis] = n_in
    return tuple(s), g[1]


def _vjp(n, g):
    a = n.attrs
    return (apply(RESIZE_LINEAR_GRAD, g, n_in=int(n.inputs[0].shape[a["axis"]]), **a),)


def _grad_vjp(n, gg):
    a = {k: v for k, v in n.attrs.items() if k != "n_in"}
    return (apply(RESIZE_LINEAR, gg, **a),)


def _onnx(ctx, n):
    x = n.inputs[0]
    scales = [1.0] * len(x.shape)
    scales[n.attrs["axis"]] = float(n.attrs["factor"])
    mode = "align_corners" if n.attrs["align_corners"] else "pytorch_half_pixel"
    return ctx.op("Resize", [ctx.name(x), "", ctx.const(np.asarray(scales, np.float32))],
                  mode="linear", coordinate_transformation_mode=mode)


RESIZE_LINEAR = register(OpDef(
    "resize_linear", _fwd, vjp=_vjp, infer=_infer, saves=False, onnx=_onnx,
    doc="Linear resizing of one axis by a scale factor (interpolate under capture)."))
RESIZE_LINEAR_GRAD = register(OpDef(
    "resize_linear_grad", _grad_fwd, vjp=_grad_vjp, infer=_grad_infer, saves=False,
    doc="resize_linear's adjoint (its gradient)."))


def resize_linear(x, axis: int, factor: float, align_corners: bool):
    """``x`` resized linearly along ``axis`` to ``floor(n * factor)`` positions."""
    return apply(RESIZE_LINEAR, x, axis=int(axis), factor=float(factor),
                 align_corners=bool(align_corners))
