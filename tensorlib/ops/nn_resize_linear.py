"""Linear resizing along one axis by a scale factor, as one registry op whose kernel builds
its source positions and weights from the input it is given: a captured graph and its ONNX
export (Resize with scales) follow None spatial dims, where ``interpolate``'s eager form
bakes index tables of one size into the graph. Same arithmetic as the eager form
(PyTorch's ``area_pixel_compute_source_index``, clamped at 0)."""
from __future__ import annotations

import math

import numpy as np

from .._apply import apply
from .registry import OpDef, register, shape_check


def _out_len(n_in: int, factor: float) -> int:
    return int(math.floor(n_in * factor))


def _tables(n_in: int, factor: float, align_corners: bool):
    """(i0, i1, w1) of every output position along the axis (NumPy, float64 weights)."""
    n_out = _out_len(n_in, factor)
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        # PyTorch's linear kernels map an axis the factor leaves at its size (3 * 1.3 -> 3)
        # with scale 1, not 1 / factor
        scale = 1.0 if n_out == n_in else 1.0 / factor
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, src - i0


def _weighted_sum(xp, x, axis: int, n_out: int, taps):
    """``sum_k w_k * take(x, i_k)`` along ``axis``, as PyTorch blends (``w0 * a + w1 * b``,
    so an inf input stays inf where its weight is not 0, and gives NaN where 0 meets it).
    In place after each gather: the temporaries of ``lo + (hi - lo) * w`` cost 2-3x."""
    y = None
    for idx, w in taps:
        term = xp.take(x, xp.asarray(idx), axis=axis)
        if w is not None:
            term *= xp.asarray(w.astype(x.dtype).reshape(_shape_w(x.ndim, axis, n_out)))
        if y is None:
            y = term
        else:
            y += term
    return y


def _scatter_sum(xp, g, axis: int, n_in: int, taps):
    """The adjoint of :func:`_weighted_sum`: ``out[i] = sum over k, j with i_k[j] = i of
    w_k[j] * g[j]`` along ``axis``. On the CPU the (i, j, w) entries are ranked within each
    i, and rank r is one gather of g blended into out (a slice where its i are consecutive):
    the forward's kernel run backwards, where ``add.at`` (and ``add.reduceat`` along the last
    axis) were 3-10x slower."""
    shape = list(g.shape)
    shape[axis] = n_in
    n_out = g.shape[axis]
    if xp is not np:
        out = xp.zeros(tuple(shape), g.dtype)
        om = xp.moveaxis(out, axis, 0)       # a view: writes land in out
        for idx, w in taps:
            term = g if w is None else g * xp.asarray(
                w.astype(g.dtype).reshape(_shape_w(g.ndim, axis, n_out)))
            xp.add.at(om, xp.asarray(idx), xp.moveaxis(term, axis, 0))
        return out
    ii = np.concatenate([idx for idx, _ in taps])
    jj = np.concatenate([np.arange(n_out)] * len(taps))
    ww = np.concatenate([np.ones(n_out) if w is None else np.asarray(w, np.float64)
                         for _, w in taps])
    order = np.argsort(ii, kind="stable")
    ii, jj, ww = ii[order], jj[order], ww[order]
    first = np.searchsorted(ii, ii, side="left")
    rank = np.arange(ii.size) - first
    out = None
    for r in range(int(rank.max()) + 1 if ii.size else 0):
        sel = rank == r
        i_r, j_r, w_r = ii[sel], jj[sel], ww[sel]
        term = np.take(g, j_r, axis=axis)
        term *= w_r.astype(g.dtype).reshape(_shape_w(g.ndim, axis, j_r.size))
        if out is None and i_r.size == n_in:
            out = term
            continue
        if out is None:
            out = np.zeros(tuple(shape), g.dtype)
        if i_r[-1] - i_r[0] + 1 == i_r.size:     # consecutive: a slice, no scatter
            sl = [slice(None)] * g.ndim
            sl[axis] = slice(int(i_r[0]), int(i_r[-1]) + 1)
            out[tuple(sl)] += term
        else:
            om = np.moveaxis(out, axis, 0)
            om[i_r] += np.moveaxis(term, axis, 0)
    return np.zeros(tuple(shape), g.dtype) if out is None else out


def _shape_w(ndim: int, axis: int, n: int) -> tuple:
    s = [1] * ndim
    s[axis] = n
    return tuple(s)


def _fwd(xp, x, *, axis, factor, align_corners):
    i0, i1, w = _tables(x.shape[axis], factor, align_corners)
    return _weighted_sum(xp, x, axis, i0.shape[0], [(i0, 1.0 - w), (i1, w)])


def _grad_fwd(xp, g, *, axis, factor, align_corners, n_in):
    i0, i1, w = _tables(n_in, factor, align_corners)
    if g.shape[axis] != i0.shape[0]:
        raise ValueError(f"resize_linear_grad: gradient of {g.shape[axis]} positions along "
                         f"axis {axis}, expected {i0.shape[0]}")
    return _scatter_sum(xp, g, axis, n_in, [(i0, 1.0 - w), (i1, w)])


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


def _scales_input(ctx, x, axis: int, factor: float, keep: bool) -> str:
    """Resize's constant ``scales`` input: ``factor`` at ``axis``, 1 elsewhere. With ``keep``
    (the mode copies an axis whose size the factor leaves unchanged, as PyTorch's kernels) a
    fixed size that floor(n * factor) keeps gets scale 1. A None dim keeps ``factor``:
    onnxruntime copies a Resize whose output shape equals its input's (one axis per Resize
    here, so exactly when that axis is unchanged), and tl.onnx.load reads it back as
    interpolate, which copies too; scales computed in the graph would not load back."""
    n = x.shape[axis]
    scales = np.ones(x.ndim, np.float32)
    scales[axis] = factor
    if keep and n is not None and _out_len(int(n), factor) == int(n):
        scales[axis] = 1.0
    return ctx.const(scales)


def _onnx(ctx, n):
    x = n.inputs[0]
    mode = "align_corners" if n.attrs["align_corners"] else "pytorch_half_pixel"
    scales = _scales_input(ctx, x, n.attrs["axis"], float(n.attrs["factor"]), keep=True)
    return ctx.op("Resize", [ctx.name(x), "", scales],
                  mode="linear", coordinate_transformation_mode=mode)


@shape_check
def _check(x, *, axis, factor, align_corners):
    # interpolate's own check when its sizes are known; here for replay of None dims
    n = x.shape[axis]
    if _out_len(n, factor) < 1:
        raise ValueError(f"interpolate: scale_factor {factor} gives an empty output from size "
                         f"{n} of dim {axis}")


RESIZE_LINEAR = register(OpDef(
    "resize_linear", _fwd, vjp=_vjp, infer=_infer, saves=False, onnx=_onnx, check=_check,
    doc="Linear resizing of one axis by a scale factor (interpolate under capture)."))
RESIZE_LINEAR_GRAD = register(OpDef(
    "resize_linear_grad", _grad_fwd, vjp=_grad_vjp, infer=_grad_infer, saves=False,
    doc="resize_linear's adjoint (its gradient)."))


def resize_linear(x, axis: int, factor: float, align_corners: bool):
    """``x`` resized linearly along ``axis`` to ``floor(n * factor)`` positions."""
    return apply(RESIZE_LINEAR, x, axis=int(axis), factor=float(factor),
                 align_corners=bool(align_corners))


# --- any interpolate mode along one axis, tables built from the input it gets -------------------
# ``interpolate`` under capture with None spatial dims: a fixed output ``size`` from a dynamic
# input (the scale in / out changes with the input), non-whole factors, bicubic and antialias.
# mode: 'nearest', 'nearest-exact', 'linear', 'cubic', 'aa_linear', 'aa_cubic'
_MODES = ("nearest", "nearest-exact", "linear", "cubic", "aa_linear", "aa_cubic")


def _resize_len(n_in: int, size, factor) -> int:
    return int(size) if size is not None else _out_len(n_in, factor)


def _resize_scale(n_in: int, n_out: int, factor, recompute: bool) -> float:
    """PyTorch's coordinate scale (input / output): 1 / scale_factor where a factor is given
    (and not recomputed), else in / out."""
    return 1.0 / factor if factor is not None and not recompute else n_in / n_out


def _keeps(mode: str, copy_same: bool) -> bool:
    """Whether ``mode`` copies an axis whose size a scale factor leaves unchanged, as
    PyTorch's CPU forward kernels do: the linear and antialiased ones always, 'nearest'
    only for 4-d input (``copy_same``); 'nearest-exact' and 'cubic' map by 1 / factor."""
    return mode in ("linear", "aa_linear", "aa_cubic") or (mode == "nearest" and copy_same)


def _resize_tables(n_in: int, *, mode, size, factor, recompute, align_corners,
                   copy_same=False):
    """(n_out, taps): taps is a list of (indices, weights or None) whose weighted gathers
    sum to the output, or a dense (n_out, n_in) matrix for the antialiased modes."""
    from .nn_resample import _CUBIC_A, _aa_matrix, _source
    n_out = _resize_len(n_in, size, factor)
    if n_out <= 0:
        raise ValueError(f"interpolate: the output size along an axis is {n_out} for an input "
                         f"of {n_in}; it must be positive")
    scale = _resize_scale(n_in, n_out, factor, recompute)
    if n_out == n_in and _keeps(mode, copy_same):
        if mode != "linear":    # a plain copy (PyTorch skips the axis: inf stays inf)
            return n_out, [(np.arange(n_in), None)]
        scale = 1.0
    if mode in ("nearest", "nearest-exact"):
        # PyTorch computes the source index in float32
        dst = np.arange(n_out, dtype=np.float32)
        if mode == "nearest-exact":
            dst = dst + np.float32(0.5)
        src = np.floor(dst * np.float32(scale)).astype(np.int64)
        return n_out, [(np.minimum(src, n_in - 1), None)]
    if mode in ("aa_linear", "aa_cubic"):
        s = ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0) if align_corners else scale
        return n_out, _aa_matrix(n_in, n_out, s, mode == "aa_cubic")
    src = _source(n_in, n_out, scale, align_corners, cubic=mode == "cubic")
    if mode == "linear":
        i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        return n_out, [(i0, 1.0 - (src - i0)), (np.minimum(i0 + 1, n_in - 1), src - i0)]
    base = np.floor(src)
    t, a = src - base, _CUBIC_A

    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    base = base.astype(np.int64)
    return n_out, [(np.clip(base + k - 1, 0, n_in - 1), w)
                   for k, w in enumerate((far(t + 1), near(t), near(1 - t), far(2 - t)))]


def _apply_taps(xp, x, axis, n_out, taps):
    if isinstance(taps, np.ndarray):        # dense: the antialiased modes
        m = xp.asarray(taps.astype(x.dtype))
        return xp.moveaxis(xp.tensordot(m, xp.moveaxis(x, axis, 0), axes=1), 0, axis)
    return _weighted_sum(xp, x, axis, n_out, taps)


def _size_now(a: dict, shapes) -> dict:
    """``a`` with ``size`` computed from ``sizes`` (an expression over the node's input
    shapes: a size read from another tensor under capture) where there is one."""
    sizes = a.pop("sizes", ())
    if sizes:
        from ..graph.sizes import evaluate
        a["size"] = evaluate(sizes[0][1], shapes)
    return a


def _resize_fwd(xp, x, *srcs, axis, **a):
    a = _size_now(a, [x.shape] + [t.shape for t in srcs])
    n_out, taps = _resize_tables(x.shape[axis], **a)
    return _apply_taps(xp, x, axis, n_out, taps)


def _resize_grad_fwd(xp, g, x, *, axis, size_of_grad=False, **a):
    if size_of_grad:        # the forward's size was computed at run time: the gradient's
        a["size"] = g.shape[axis]
    n_in = x.shape[axis]
    n_out, taps = _resize_tables(n_in, **a)
    if g.shape[axis] != n_out:
        raise ValueError(f"resize_grad: gradient of {g.shape[axis]} positions along axis "
                         f"{axis}, expected {n_out}")
    if isinstance(taps, np.ndarray):
        return _apply_taps(xp, g, axis, n_in, taps.T.copy())
    return _scatter_sum(xp, g, axis, n_in, taps)


def _resize_infer(x, *srcs, axis, mode, size, factor, recompute, align_corners, sizes=(),
                  copy_same=False):
    s = list(x[0])
    if sizes:
        s[axis] = _size_now({"sizes": sizes}, [tuple(x[0])] + [tuple(t[0]) for t in srcs])["size"]
    else:
        s[axis] = None if s[axis] is None else _resize_len(s[axis], size, factor)
    return tuple(s), x[1]


def _resize_onnx(ctx, n):
    from ..onnx.rules import _shape_input
    a, x = n.attrs, n.inputs[0]
    mode, ax, nd = a["mode"], a["axis"], x.ndim
    attrs: dict = {}
    if mode in ("nearest", "nearest-exact"):
        attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor") if mode == "nearest" else dict(
            mode="nearest", coordinate_transformation_mode="half_pixel",
            nearest_mode="round_prefer_ceil")
    else:
        cubic = mode.endswith("cubic")
        attrs = dict(mode="cubic" if cubic else "linear",
                     coordinate_transformation_mode="align_corners" if a["align_corners"]
                     else "half_pixel" if cubic or mode.startswith("aa") else
                     "pytorch_half_pixel")
        if cubic:
            attrs["cubic_coeff_a"] = -0.5 if mode.startswith("aa") else -0.75
        if mode.startswith("aa"):
            # Resize(antialias=1) weights the border pixels unlike PyTorch (max error ~0.06)
            ctx.unsupported("F.interpolate(antialias=True) over dynamic H/W: ONNX Resize's "
                            "antialias weights the border pixels unlike PyTorch; export with "
                            "fixed H/W (leave the spatial axes out of dynamic_axes), where "
                            "the weights are constant matrices, or use antialias=False")
    if a["size"] is None and not a["recompute"]:
        f, keep = float(a["factor"]), _keeps(mode, a.get("copy_same", False))
        n = x.shape[ax]
        if (not keep and f > 1.0 and not a["align_corners"] and n is not None
                and _out_len(int(n), f) == int(n)):
            # (a None dim that the factor leaves unchanged when the graph runs is copied by
            # onnxruntime here; a fix needs the end floor(n * f) computed in the graph, which
            # tl.onnx.load does not read back for Slice)
            return _resize_unkept(ctx, x, ax, f, attrs)
        scales = _scales_input(ctx, x, ax, f, keep)
        return ctx.op("Resize", [ctx.name(x), "", scales], **attrs)
    if a.get("sizes"):      # a size read from another input's shape when the graph runs
        sizes = _shape_input(ctx, n, [a["sizes"][0][1] if i == ax else
                                      x.shape[i] if x.shape[i] is not None else ("dim", 0, i)
                                      for i in range(nd)])
    elif a["size"] is not None:
        sizes = _shape_input(ctx, n, [int(a["size"]) if i == ax else
                                      x.shape[i] if x.shape[i] is not None else ("dim", 0, i)
                                      for i in range(nd)])
    else:       # recompute_scale_factor: floor(in * factor), then coordinates by in / out
        shape = ctx.op("Shape", [ctx.name(x)])
        mask = np.zeros(nd)
        mask[ax] = 1.0
        f = ctx.const(np.where(mask > 0, float(a["factor"]), 1.0))
        sizes = ctx.op("Cast", [ctx.op("Floor", [ctx.op("Mul", [
            ctx.op("Cast", [shape], to=11), f])])], to=7)    # 11 double, 7 int64
    return ctx.op("Resize", [ctx.name(x), "", "", sizes], **attrs)


def _resize_unkept(ctx, x, ax: int, f: float, attrs: dict) -> str:
    """Resize by ``f`` > 1 along a fixed-size axis ``ax`` that floor(n * f) leaves at n, in
    a mode PyTorch maps by 1 / f there all the same: onnxruntime copies a Resize whose output
    shape equals its input's, so the axis is first edge-padded by ``P`` (a length whose
    resized size differs) and the result cut back to n. Edge padding is the border clamp
    the kernels apply, and the positions kept map by the same 1 / f (half_pixel and
    asymmetric read no lengths)."""
    nd, n = x.ndim, int(x.shape[ax])
    pad_len = int(math.ceil(1.0 / (float(np.float32(f)) - 1.0))) + 1
    pads = np.zeros(2 * nd, np.int64)
    pads[nd + ax] = pad_len
    padded = ctx.op("Pad", [ctx.name(x), ctx.const(pads)], mode="edge")
    scales = np.ones(nd, np.float32)
    scales[ax] = f
    y = ctx.op("Resize", [padded, "", ctx.const(scales)], **attrs)
    return ctx.op("Slice", [y, ctx.const(np.array([0], np.int64)),
                            ctx.const(np.array([n], np.int64)),
                            ctx.const(np.array([ax], np.int64))])


def _resize_vjp(n, g):
    a = dict(n.attrs)
    if a.pop("sizes", ()):
        a["size_of_grad"] = True
    grads = (apply(RESIZE_GRAD, g, n.inputs[0], **a),)
    return grads + (None,) * (len(n.inputs) - 1)


def _resize_grad_vjp(n, gg):
    a = dict(n.attrs)
    if a.pop("size_of_grad", False):    # back to the size of this node's gradient input
        ax = a["axis"]
        return (apply(RESIZE, gg, n.inputs[0], **a, sizes=((0, ("dim", 1, ax)),)), None)
    return (apply(RESIZE, gg, **a), None)


RESIZE = register(OpDef(
    "resize", _resize_fwd, vjp=_resize_vjp, infer=_resize_infer, saves=False,
    onnx=_resize_onnx,
    doc="interpolate along one axis (any mode) with tables built from the input's size "
        "when it runs (interpolate under capture with None dims)."))
RESIZE_GRAD = register(OpDef(
    "resize_grad", _resize_grad_fwd, vjp=_resize_grad_vjp, saves=False,
    infer=lambda g, x, **a: (tuple(x[0]), g[1]),
    doc="resize's adjoint (its gradient); input 1 gives the input's size."))


def resize(x, axis: int, mode: str, size: int | None = None, factor: float | None = None,
           recompute: bool = False, align_corners: bool = False, copy_same: bool = False):
    """``x`` resized along ``axis`` as ``interpolate`` does it (``mode`` one of
    'nearest', 'nearest-exact', 'linear', 'cubic', 'aa_linear', 'aa_cubic') to ``size``
    positions or ``floor(n * factor)``; the tables follow the input's size at run time.
    An axis the factor leaves at its size is copied in the linear and antialiased modes,
    and in 'nearest' with ``copy_same`` (PyTorch's 2-d kernel), as PyTorch's forward."""
    if mode not in _MODES:
        raise ValueError(f"resize: mode must be one of {_MODES}, got {mode!r}")
    if (size is None) == (factor is None):
        raise ValueError("resize: give exactly one of size and factor")
    from ..graph.tracer import TracedSize
    if isinstance(size, TracedSize):
        # read from a None dim under capture (another tensor's shape[2]): computed when the
        # graph runs, from the tensors it was read from (extra inputs)
        from ..graph.sizes import lower
        _, sizes, srcs = lower([size], [x], 1)
        if sizes:
            return apply(RESIZE, x, *srcs, axis=int(axis), mode=mode, size=-1, factor=None,
                         recompute=bool(recompute), align_corners=bool(align_corners),
                         sizes=sizes)
    # copy_same only where it decides something, so other nodes keep their attributes
    extra = {"copy_same": True} if copy_same and mode == "nearest" and factor is not None \
        and not recompute else {}
    return apply(RESIZE, x, axis=int(axis), mode=mode,
                 size=None if size is None else int(size),
                 factor=None if factor is None else float(factor),
                 recompute=bool(recompute), align_corners=bool(align_corners), **extra)
