"""ONNX import of ``Resize`` (opsets 10 to 19) as registry ops.

Resize works one axis at a time, as ONNX defines it: each output position along an axis maps
to an input coordinate (``coordinate_transformation_mode``), and the output is read from the
input rows around it: the nearest one (``mode='nearest'``, rounded by ``nearest_mode``), two
blended (``'linear'``) or four (``'cubic'``, Keys' kernel with ``cubic_coeff_a``). The rows
and their weights depend only on the sizes, so they are computed here with NumPy, as
onnxruntime computes them (float32 coordinates), and the imported graph is ``take`` of
constant indices, multiplied by constant weights and summed: ops that run on every backend,
differentiate, save with the graph and export to ONNX again.

A dynamic dim (``None``) kept at its size (a dynamic batch; PyTorch's ``F.interpolate(x,
size=...)`` exports its sizes from ``Shape(x)``) is read as it is. A dynamic dim scaled up by
an integer factor (``nn.Upsample(scale_factor=2)`` exported with dynamic height and width)
is periodic: output ``s * k + p`` reads rows ``k + d`` with weights that depend on the phase
``p`` only, so it becomes ``s`` sums of shifted slices of the edge-padded input, interleaved
by a stack and a reshape that follows the size at run time.

Any other resize of a dynamic dim (a non-integer or downscaling factor, ``align_corners``,
a fixed size, sizes computed from ``Shape``) is not built here: the importer's run-time form
(``_resize_run_time`` in :mod:`tensorlib.onnx.importer`) maps it onto the interpolate ops
that ``F.interpolate`` records under capture with ``None`` dims.

Refused (:class:`ResizeImportError`, a ``tl.onnx.UnsupportedOpError`` and a
``NotImplementedError``): ``antialias=1``; ``tf_crop_and_resize``, ``exclude_outside`` and
the forms the run-time path has no op for (see ``_resize_form`` in the importer);
``linear``/``cubic`` of integer tensors.

Where onnxruntime departs from the ONNX definition, it is followed when the departure is
sensible: an axis with scale 1 keeps its rows in every mode, and a coordinate within one
float32 step of a half is a tie for the rounding nearest modes. Its shortcut of copying the
input when the output has the same shape although a scale is not 1 is not copied (PyTorch
and ONNX's reference resample then).
"""
from __future__ import annotations

import math

import numpy as np

from .context import UnsupportedOpError
from .import_shapes import SYM_IMPORTERS, SymShape

_F32 = np.float32
_MODES = ("nearest", "linear", "cubic")
_COORDS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
           "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize")
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


class ResizeImportError(UnsupportedOpError, NotImplementedError):
    """A Resize (or a use of it) that ``tl.onnx.load`` cannot import. Both a
    ``tl.onnx.UnsupportedOpError`` and, as the importer's other refusals, a
    ``NotImplementedError``."""


def _refuse(why: str):
    raise ResizeImportError(f"ONNX import: Resize {why}")


# --- one axis: input coordinates, then (indices, weights) taps -----------------------------------
def source_coords(ctm: str, n_in: int, n_out: int, scale, roi=(0.0, 1.0)) -> np.ndarray:
    """The input coordinate of each output position along one axis, in float32 as
    onnxruntime computes it (``scale`` is output / input)."""
    x = np.arange(n_out, dtype=_F32)
    s = _F32(scale)
    half = _F32(0.5)
    if ctm == "asymmetric":
        return x / s
    if ctm == "half_pixel":
        return (x + half) / s - half
    if ctm == "pytorch_half_pixel":
        return (x + half) / s - half if n_out > 1 else np.zeros(n_out, _F32)
    if ctm == "tf_half_pixel_for_nn":
        return (x + half) / s
    if ctm == "align_corners":
        if n_out == 1:
            return np.zeros(n_out, _F32)
        return x * _F32(n_in - 1) / _F32(n_out - 1)
    if ctm == "half_pixel_symmetric":
        out_w = s * _F32(n_in)
        adjustment = _F32(n_out) / out_w
        offset = (_F32(n_in) / _F32(2)) * (_F32(1) - adjustment)
        return (float(offset) + (x.astype(np.float64) + 0.5) / float(s) - 0.5).astype(_F32)
    if ctm == "tf_crop_and_resize":
        r0, r1 = _F32(roi[0]), _F32(roi[1])
        if n_out == 1:
            return np.full(n_out, 0.5 * (float(r0) + float(r1)) * (n_in - 1), _F32)
        return r0 * _F32(n_in - 1) + (x * (r1 - r0) * _F32(n_in - 1)) / _F32(n_out - 1)
    raise AssertionError(ctm)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def nearest_index(orig: np.ndarray, nearest_mode: str, downsample: bool) -> np.ndarray:
    """The input row each output position reads in mode 'nearest'. A coordinate within one
    float32 step of a half is a tie (7 -> 2 elements asymmetric reads 3.5, computed as
    3.4999998): onnxruntime and ONNX's reference implementation decide it so."""
    v = orig.astype(np.float64)
    if nearest_mode.startswith("round"):
        half = np.floor(v) + 0.5
        tie = np.abs(v - half) <= np.spacing(np.abs(orig.astype(_F32))).astype(np.float64)
        v = np.where(tie, half, v)
    if nearest_mode == "floor":
        i = np.floor(v)
    elif nearest_mode == "ceil":
        i = np.ceil(v)
    elif nearest_mode == "round_prefer_ceil":
        i = _round_half_away(v)
    elif nearest_mode == "round_prefer_floor":
        i = np.where(v == np.trunc(v) + 0.5, np.floor(v), _round_half_away(v))
    else:   # Resize-10: truncate when upsampling, ceil when downsampling (onnxruntime's rule)
        i = np.ceil(v) if downsample else np.trunc(v)
    return i.astype(np.int64)


def _cubic_weights(t: np.ndarray, a) -> list[np.ndarray]:
    a = _F32(a)
    one, two = _F32(1), _F32(2)

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + one
    return [far(t + one), near(t), near(one - t), far(two - t)]


def axis_taps(mode: str, ctm: str, n_in: int, n_out: int, scale, *, nearest_mode: str,
              cubic_a: float = -0.75, exclude_outside: bool = False, roi=(0.0, 1.0)):
    """((indices, weights or None) per tap, the output positions outside the input (for
    tf_crop_and_resize's extrapolation_value) or None) along one axis."""
    orig = source_coords(ctm, n_in, n_out, scale, roi)
    outside = None
    if ctm == "tf_crop_and_resize":
        outside = (orig < 0) | (orig > n_in - 1)
        if not outside.any():
            outside = None
    hi = n_in - 1
    if mode == "nearest":
        idx = nearest_index(orig, nearest_mode, _F32(scale) < 1)
        return [(np.clip(idx, 0, hi), None)], outside
    if mode == "linear":
        c = np.clip(orig, _F32(0), _F32(hi))
        i0 = np.floor(c).astype(np.int64)
        w1 = (c - i0.astype(_F32)).astype(_F32)
        return [(i0, _F32(1) - w1), (np.minimum(i0 + 1, hi), w1)], outside
    base = np.floor(orig.astype(np.float64))
    t = (orig - base.astype(_F32)).astype(_F32)
    ws = _cubic_weights(t, cubic_a)
    idxs = [base.astype(np.int64) + k - 1 for k in range(4)]
    if exclude_outside:
        ws = [np.where((i >= 0) & (i <= hi), w, _F32(0)) for i, w in zip(idxs, ws)]
        total = ws[0] + ws[1] + ws[2] + ws[3]
        ws = [w / np.where(total == 0, _F32(1), total) for w in ws]
    return [(np.clip(i, 0, hi), w) for i, w in zip(idxs, ws)], outside


def _is_identity(taps, outside, n: int) -> bool:
    if outside is not None:
        return False
    ar = np.arange(n)
    on, off = np.zeros(n), np.zeros(n)
    for idx, w in taps:
        if idx.shape != (n,):
            return False
        w = np.ones(n) if w is None else np.asarray(w, np.float64)
        on += np.where(idx == ar, w, 0.0)
        off += np.where(idx == ar, 0.0, np.abs(w))
    return bool(np.all(on == 1.0) and np.all(off == 0.0))


# --- the importer ---------------------------------------------------------------------------------
def _attr(at, name, default):
    v = at.get(name, default)
    return v.decode() if isinstance(v, bytes) else v


def _is_empty(v) -> bool:
    return v is None or (not isinstance(v, SymShape) and 0 in tuple(v.shape))


def _dim_of(e, x, i: int) -> bool:
    return isinstance(e, tuple) and len(e) == 3 and e[0] == "dim" and e[1] is x and e[2] == i


def _attributes(b, at, x):
    """(mode, coordinate_transformation_mode, nearest_mode, keep_aspect_ratio_policy),
    checked."""
    opset = b.opset
    mode = _attr(at, "mode", "nearest")
    if mode not in _MODES:
        _refuse(f"mode={mode!r} (ONNX defines {', '.join(_MODES)})")
    # Resize-10 has no coordinate_transformation_mode: asymmetric, and its own nearest rule
    ctm = _attr(at, "coordinate_transformation_mode", "half_pixel") if opset >= 11 \
        else "asymmetric"
    if ctm not in _COORDS:
        _refuse(f"coordinate_transformation_mode={ctm!r}: not one ONNX defines "
                f"({', '.join(_COORDS)})")
    nearest_mode = _attr(at, "nearest_mode", "round_prefer_floor") if opset >= 11 else "simple"
    if mode == "nearest" and opset >= 11 and nearest_mode not in _NEAREST:
        _refuse(f"nearest_mode={nearest_mode!r} (ONNX defines {', '.join(_NEAREST)})")
    if int(at.get("antialias", 0)):
        _refuse("with antialias=1: tensorlib imports Resize without an antialiasing filter "
                "(export with antialias=False)")
    policy = _attr(at, "keep_aspect_ratio_policy", "stretch")
    if policy not in ("stretch", "not_larger", "not_smaller"):
        _refuse(f"keep_aspect_ratio_policy={policy!r} (ONNX defines stretch, not_larger, "
                "not_smaller)")
    if mode != "nearest" and x.dtype.kind != "f":
        _refuse(f"mode={mode!r} of a {x.dtype} tensor: tensorlib imports the blending modes "
                "for float tensors (nearest works for any dtype)")
    return mode, ctm, nearest_mode, policy


def _inputs(b, ins):
    """(roi, scales, sizes) inputs, None where absent or empty: Resize-10 takes (X, scales),
    11+ (X, roi, scales, sizes), 13+ with roi and scales optional."""
    if b.opset < 11:
        roi, scales, sizes = None, ins[1] if len(ins) > 1 else None, None
    else:
        roi, scales, sizes = (ins[i] if len(ins) > i else None for i in (1, 2, 3))
    roi, scales, sizes = (None if _is_empty(v) else v for v in (roi, scales, sizes))
    if (scales is None) == (sizes is None):
        raise ValueError("ONNX import: Resize needs exactly one of scales and sizes")
    return roi, scales, sizes


def _constant(b, v, what: str) -> np.ndarray:
    if isinstance(v, SymShape) or v.node.op not in ("constant", "variable"):
        _refuse(f"with {what} computed at run time: tensorlib builds the resampling at import "
                "and needs them then (export with a fixed scale_factor or size)")
    return np.asarray(b.array(v, f"Resize {what}")).reshape(-1)


def _output_sizes(b, x, axes, scales_v, sizes_v, policy):
    """(output size, float32 scale) per dim of ``x``; ``None`` sizes for dynamic dims (kept,
    or scaled by an integer factor)."""
    r, k = x.ndim, len(axes)
    ins_dims = list(x.shape)
    out_dims: list = list(ins_dims)
    scales = [_F32(1)] * r
    if scales_v is not None:
        sc = _constant(b, scales_v, "scales").astype(_F32)
        if sc.size != k:
            raise ValueError(f"ONNX import: Resize scales has {sc.size} values for {k} axes")
        if not np.all(sc > 0):
            raise ValueError(f"ONNX import: Resize scales {sc.tolist()} must be positive")
        for a, s in zip(axes, sc):
            scales[a] = s
            if ins_dims[a] is not None:       # floor(in * scale), in float32 as onnxruntime
                out_dims[a] = int(s * _F32(ins_dims[a]))
        return out_dims, scales
    if isinstance(sizes_v, SymShape):
        items = list(sizes_v.items)
    else:
        items = [int(v) for v in _constant(b, sizes_v, "sizes")]
    if len(items) != k:
        raise ValueError(f"ONNX import: Resize sizes has {len(items)} values for {k} axes")
    for a, e in zip(axes, items):
        if isinstance(e, (int, np.integer)):
            if ins_dims[a] is None:
                _refuse(f"to the fixed size {int(e)} along axis {a}, whose input size is "
                        "dynamic: tensorlib builds the resampling at import and needs the "
                        "input size of each resized axis (export with fixed sizes there)")
            out_dims[a] = int(e)
            scales[a] = _F32(int(e)) / _F32(ins_dims[a]) if ins_dims[a] else _F32(1)
        elif not _dim_of(e, x, a):     # the input's own (dynamic) size keeps it as it is
            _refuse(f"with the size along axis {a} computed at run time (from another "
                    "tensor's shape, or arithmetic on it): tensorlib needs each resized "
                    "axis's output size at import")
    if policy != "stretch":
        if any(ins_dims[a] is None for a in axes):
            _refuse(f"with keep_aspect_ratio_policy={policy!r} over a dynamic axis")
        s = (min if policy == "not_larger" else max)(scales[a] for a in axes)
        for a in axes:
            scales[a] = s
            out_dims[a] = int(_round_half_away(np.asarray(s * _F32(ins_dims[a]))))
    return out_dims, scales


def _blend(b, taps, y, a: int, dtype, bshape):
    """Sum over taps of ``y`` read at the tap's rows along axis ``a`` times its weights."""
    acc = None
    for idx, w in taps:
        if w is not None and not np.any(w):
            continue                         # a tap with no weight anywhere
        term = b.op("take", y, b.const(idx.astype(np.int64)), axis=a)
        if w is not None and not np.all(w == 1):
            term = b.op("mul", term, b.const(np.asarray(w, dtype).reshape(bshape)))
        acc = term if acc is None else b.op("add", acc, term)
    return acc


def _phase_taps(mode, ctm, s: int, nearest_mode, cubic_a):
    """Per phase p of an integer upscale by s: [(row offset from k, weight)], output
    s * k + p reading input rows k + offset (exact, away from the edges, which edge padding
    takes care of)."""
    out = []
    for p in range(s):
        c = {"asymmetric": p / s, "tf_half_pixel_for_nn": (p + 0.5) / s}.get(
            ctm, (p + 0.5) / s - 0.5)
        if mode == "nearest":
            # nearest_index on k + c is k + nearest_index on c: evaluated at a k far
            # enough from 0 for the clamp not to act
            i = int(nearest_index(np.asarray([8.0 + c], _F32), nearest_mode, False)[0]) - 8
            out.append([(i, 1.0)])
            continue
        f = math.floor(c)
        t = c - f
        if mode == "linear":
            out.append([(f, 1.0 - t), (f + 1, t)])
        else:
            ws = _cubic_weights(np.asarray([t], np.float64), cubic_a)
            out.append([(f + j - 1, float(w[0])) for j, w in enumerate(ws)])
    return out


def _dynamic_upscale(b, y, a: int, s: int, mode, ctm, nearest_mode, cubic_a, dtype):
    """Axis ``a`` of dynamic size n scaled up by the integer ``s``: s phases, each a sum of
    slices of the edge-padded input shifted by a row offset, stacked after axis ``a`` and
    reshaped to n * s rows."""
    phases = _phase_taps(mode, ctm, s, nearest_mode, cubic_a)
    offs = [d for taps in phases for d, w in taps if w != 0]
    lo, hi = max(0, -min(offs)), max(0, max(offs))
    r = y.ndim
    if lo or hi:
        y = b.op("pad", y, pad_width=tuple((lo, hi) if i == a else (0, 0) for i in range(r)),
                 mode="edge", value=0.0)
    shifted = {}

    def rows(d):
        if d not in shifted:
            stop = d - hi
            shifted[d] = b.op("slice", y, index=(slice(None),) * a
                              + (slice(lo + d, stop if stop else None),))
        return shifted[d]
    outs = []
    for taps in phases:
        acc = None
        for d, w in taps:
            if w == 0:
                continue
            term = rows(d) if w == 1 else b.op("mul", rows(d), b.const(np.asarray(w, dtype)))
            acc = term if acc is None else b.op("add", acc, term)
        outs.append(acc)
    st = b.op("stack", *outs, axis=a + 1)
    items = [("dim", st, i) for i in range(a)] + [("mul", ("dim", st, a), s)] + \
        [("dim", st, i + 1) for i in range(a + 1, r)]
    return SYM_IMPORTERS["Reshape"](b, None, [st, SymShape(items)], {})[0]


def resize(b, n, ins, at):
    """ONNX ``Resize`` -> ``take`` of constant rows along each resized axis, blended with
    constant weights (an integer upscale of a dynamic axis: shifted slices, interleaved).
    Also the run-time-shape importer of Resize: ``sizes`` computed from ``Shape`` of a
    dynamic batch (PyTorch's ``F.interpolate(size=...)``)."""
    from .importer import _ax, check_elements
    x = ins[0]
    if isinstance(x, SymShape):
        _refuse("of a shape tensor computed at run time")
    mode, ctm, nearest_mode, policy = _attributes(b, at, x)
    r = x.ndim
    axes = [_ax(a, r) for a in at["axes"]] if "axes" in at else list(range(r))
    if len(set(axes)) != len(axes):
        raise ValueError(f"ONNX import: Resize axes {list(at['axes'])} repeat an axis")
    roi_v, scales_v, sizes_v = _inputs(b, ins)
    out_dims, scales = _output_sizes(b, x, axes, scales_v, sizes_v, policy)
    roi = {}
    if ctm == "tf_crop_and_resize":
        if roi_v is None:
            raise ValueError("ONNX import: Resize with tf_crop_and_resize needs the roi input")
        rv = _constant(b, roi_v, "roi").astype(np.float64)
        if rv.size != 2 * len(axes):
            raise ValueError(f"ONNX import: Resize roi has {rv.size} values for {len(axes)} "
                             "axes")
        roi = {a: (rv[i], rv[len(axes) + i]) for i, a in enumerate(axes)}
    kw = dict(nearest_mode=nearest_mode, cubic_a=float(at.get("cubic_coeff_a", -0.75)),
              exclude_outside=bool(int(at.get("exclude_outside", 0))))
    check_elements(out_dims, "Resize output")

    y, masks = x, []
    for a in range(r):
        n_in, n_out, s = x.shape[a], out_dims[a], scales[a]
        if s == 1 and n_out == n_in:
            # an axis kept as it is (N and C; a dynamic dim): its rows as they are, as
            # onnxruntime reads them in every mode (tf_half_pixel_for_nn would shift them)
            continue
        if n_in is None:
            if not (s == int(s) and s > 1) or ctm in ("align_corners", "tf_crop_and_resize") \
                    or kw["exclude_outside"]:
                _refuse(f"along axis {a}, whose size is dynamic, by {float(s)} with "
                        f"coordinate_transformation_mode={ctm!r}"
                        f"{' and exclude_outside=1' if kw['exclude_outside'] else ''}: "
                        "tensorlib builds the resampling at import, which needs the input "
                        "size of the axis unless it is scaled up by an integer factor "
                        "(and the rows read do not depend on the size: not align_corners, "
                        "tf_crop_and_resize or exclude_outside). Export with fixed sizes "
                        "there")
            y = _dynamic_upscale(b, y, a, int(s), mode, ctm, nearest_mode, kw["cubic_a"],
                                 x.dtype)
            continue
        if n_in == 0 or n_out <= 0:
            raise ValueError(f"ONNX import: Resize of axis {a} from {n_in} to {n_out} "
                             "elements")
        taps, outside = axis_taps(mode, ctm, n_in, n_out, s, roi=roi.get(a, (0.0, 1.0)), **kw)
        if n_in == n_out and _is_identity(taps, outside, n_in):
            continue
        y = _blend(b, taps, y, a, x.dtype, (n_out,) + (1,) * (r - 1 - a))
        if outside is not None:
            masks.append((a, outside))
    if masks:
        # tf_crop_and_resize: the positions whose coordinate falls outside the input along
        # any axis take extrapolation_value
        first = masks[0][0]
        mask = np.zeros([1] * (r - first), bool)
        for a, m in masks:
            view = [1] * (r - first)
            view[a - first] = m.size
            mask = mask | m.reshape(view)
        extrap = np.asarray(float(at.get("extrapolation_value", 0.0)), x.dtype)
        y = b.op("where", b.const(mask), b.const(extrap), y)
    return [y]
