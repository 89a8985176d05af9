"""PyTorch-style ``F.pad`` and ``F.interpolate``, composed of registry ops.

``F.pad`` takes PyTorch's flat padding tuple, last dimension first; ``tl.pad`` keeps NumPy's
per-axis widths. ``F.interpolate`` resizes the spatial dims of (N, C, *spatial) tensors by
gathering source rows (``take``) and blending them, one axis at a time (bilinear is linear
along H, then W; bicubic blends four rows along H, then four along W), so gradients, capture
and export come from the ops it is made of.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .._tensor import Tensor
from ._util import check_alloc, to_tensor
from .nn_pool import adaptive_avg_pool2d
from .size_guard import plain, size_guard, traced
from .nn_util import as_float_tensor, const
from .shape import concatenate
from .shape import _pad_check
from .shape import pad as _np_pad

_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
              "circular": None}


def pad(input, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims: ``pad`` is (left, right, top, bottom, ...) from
    the last dim backwards, as in PyTorch. Modes: 'constant' (with ``value``), 'reflect',
    'replicate' and 'circular'. Negative widths crop, as PyTorch: 'reflect' and 'replicate'
    pad from the whole input and then crop, 'circular' crops first and wraps what is left.

    >>> F.pad(tl.ones(1, 2, 3), (1, 2)).shape
    (1, 2, 6)
    """
    x = to_tensor(input)
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {sorted(_PAD_MODES)}, got {mode!r}")
    p = [int(v) for v in pad]
    if len(p) % 2:
        raise ValueError(f"pad: the padding {tuple(p)} must have an even length (a before, "
                         "after pair per dim, last dim first)")
    if len(p) // 2 > x.ndim:
        raise ValueError(f"pad: {len(p) // 2} dims of padding for a {x.ndim}-d input")
    widths = [[0, 0] for _ in range(x.ndim)]
    for i in range(len(p) // 2):
        widths[x.ndim - 1 - i] = p[2 * i:2 * i + 2]
    check_alloc("pad", tuple(d + max(b, 0) + max(a, 0) for d, (b, a) in zip(x.shape, widths)),
                x.dtype.itemsize)
    if mode == "circular":
        # PyTorch crops first, then wraps the cropped dims
        x = _crop(x, widths, p)
        # a node of the graph under capture with None dims, so replay checks the wrap too
        x = size_guard(x, "circular", tuple(tuple(pair) for pair in widths))
        for ax, pair in enumerate(widths):
            b, a = max(pair[0], 0), max(pair[1], 0)
            if b or a:
                # counted from the end: the wrap follows a size read from a None dim
                parts = ([_slice(x, ax, -b, None)] if b else []) + [x] + \
                    ([_slice(x, ax, 0, a)] if a else [])
                x = concatenate(parts, axis=ax)
        return x
    if mode == "constant":      # crop first: nothing is padded that is then cut off
        x = _crop(x, widths, p)
        return _np_pad(x, [[max(b, 0), max(a, 0)] for b, a in widths], value=value)
    # reflect / replicate: PyTorch pads from the whole input, then crops
    # PyTorch's check: no padded dim below 0, and not all of them 0
    padded = range(x.ndim - len(p) // 2, x.ndim)
    outs = [x.shape[ax] + sum(widths[ax]) for ax in padded]
    if min(outs) < 0 or max(outs) < 1:
        raise ValueError(f"pad: input {tuple(x.shape)} is too small for padding {tuple(p)} in "
                         f"{mode!r} mode: the padded dims would have sizes {tuple(outs)}")
    # reflect widths below each size, no replicate of an empty dim: the pad op's check, so a
    # captured graph with None dims makes it too; run here first only to name negative
    # widths as given (the op sees them as 0)
    if min(p) < 0:
        _pad_check(x, pad_width=widths, mode=_PAD_MODES[mode])
    x = _np_pad(x, [[max(b, 0), max(a, 0)] for b, a in widths], mode=_PAD_MODES[mode])
    return _crop(x, widths, p)


def _crop(x: Tensor, widths, p) -> Tensor:
    """``x`` less the negative ``widths`` (before, after per dim); the rest untouched."""
    if not any(w < 0 for pair in widths for w in pair):
        return x
    crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(widths, x.shape))
    if any(s.start > s.stop for s in crop):
        raise ValueError(f"pad: negative padding {tuple(p)} crops more than input "
                         f"{tuple(x.shape)} holds")
    return x[crop]


def _slice(x: Tensor, ax: int, start: int, stop: int | None) -> Tensor:
    return x[(slice(None),) * ax + (slice(start, stop),)]


# --- interpolate ---------------------------------------------------------------------------------
_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3}
# modes that blend neighbours, with the number of spatial dims they take
_BLENDED = {**_LINEAR, "bicubic": 2}
_CUBIC_A = -0.75        # PyTorch's (and ONNX Resize's usual) cubic convolution coefficient


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None,
                recompute_scale_factor: bool | None = None, antialias: bool = False) -> Tensor:
    """Resize the spatial dims of an (N, C, *spatial) tensor, as PyTorch's ``interpolate``.

    ``mode``: 'nearest' (source index ``floor(dst * scale)``, PyTorch's legacy rule),
    'nearest-exact' (``floor((dst + 0.5) * scale)``, as PIL and scikit-image), 'linear' (3-D
    input), 'bilinear' or 'bicubic' (4-D), 'trilinear' (5-D) or 'area' (3-, 4- or 5-D: adaptive
    average pooling). Give either ``size`` or ``scale_factor``; with ``recompute_scale_factor=True``
    the output size is ``floor(in * scale_factor)`` and coordinates are mapped with
    ``in / out`` instead of ``1 / scale_factor``, as PyTorch.
    'bicubic' is Keys' cubic convolution with a = -0.75, reading indices past the border at the
    border, as PyTorch (so, like PyTorch's, it can overshoot the input's range).
    A dim that ``scale_factor`` leaves at its size (3 * 1.3 -> 3) is copied, as PyTorch's
    forward does, in the linear modes, with antialias and in 2-d 'nearest'; 1-d and 3-d
    'nearest', 'nearest-exact' and 'bicubic' still map it by ``1 / scale_factor`` (the
    gradient is always the adjoint of this forward).

    ``antialias=True`` ('bilinear' or 'bicubic', 4-D input), as PyTorch's and PIL's: when
    shrinking, the triangle (or Keys' a = -0.5 cubic) filter is widened by the scale so that
    every input pixel contributes; computed as two constant matrix products.

    >>> F.interpolate(tl.ones(1, 1, 2, 3), scale_factor=2, mode="bilinear").shape
    (1, 1, 4, 6)
    """
    raw = to_tensor(input)
    # nearest modes only pick elements: any dtype (uint8 images resize as uint8, as
    # PyTorch); the blending modes compute in floats
    if raw.dtype.kind in "uib" and mode not in ("nearest", "nearest-exact"):
        raise TypeError(f"interpolate: mode {mode!r} blends values, so it needs a float input "
                        f"(float16/32/64), got {raw.dtype}; convert first (x.float()), or "
                        "use mode='nearest', which resizes integer images as they are")
    x = raw if raw.dtype.kind in "uib" else as_float_tensor(raw, "interpolate")
    nsp = x.ndim - 2
    if nsp < 1:
        raise ValueError(f"interpolate: input must be (N, C, *spatial), got shape "
                         f"{tuple(x.shape)}")
    if mode not in ("nearest", "nearest-exact", "area") and mode not in _BLENDED:
        raise ValueError(f"interpolate: mode must be 'nearest', 'nearest-exact', 'linear', "
                         f"'bilinear', 'bicubic', 'trilinear' or 'area', got {mode!r}")
    if mode in _BLENDED and _BLENDED[mode] != nsp:
        raise ValueError(f"interpolate: mode {mode!r} takes {_BLENDED[mode] + 2}-d input "
                         f"(N, C, *spatial), got {x.ndim}-d")
    if align_corners is not None and mode not in _BLENDED:
        raise ValueError("interpolate: align_corners only applies to the modes 'linear', "
                         f"'bilinear', 'bicubic' and 'trilinear', not {mode!r}")
    in_sizes = tuple(x.shape[2:])
    if size is not None and scale_factor is None and not antialias:
        # size=(x.shape[2] * 2, x.shape[3] * 2) under capture: the same as those factors,
        # which follow the None dims (a size fixed at the traced numbers would not)
        k = _traced_factors(size, raw, nsp)
        if k is not None:
            size, scale_factor = None, k
    whole = _whole_factors(scale_factor, nsp)
    if (mode in ("nearest", "nearest-exact") and size is None and whole and not antialias
            and traced(*in_sizes)):
        # sizes from None dims under capture: a form that follows them (the gathers below
        # are 3x faster in eager, and their indices are built for one size)
        return _repeat_each(x, whole)
    if (mode in _LINEAR and size is None and scale_factor is not None and not antialias
            and not recompute_scale_factor and traced(*in_sizes)):
        # sizes from None dims under capture: one op per axis that builds its tables from
        # the input it gets (the eager form's tables are built for one size)
        from .nn_resize_linear import resize_linear
        sf = (float(scale_factor),) * nsp if np.isscalar(scale_factor) else \
            tuple(float(s) for s in scale_factor)
        if len(sf) == nsp and all(s > 0 for s in sf):
            for k in range(nsp):
                x = resize_linear(x, 2 + k, sf[k], bool(align_corners))
            return x
    if recompute_scale_factor and size is not None:
        raise ValueError("interpolate: recompute_scale_factor is not meaningful with an "
                         "explicit size; give scale_factor instead")
    if traced(*in_sizes) or (size is not None and traced(*_sizes_of(size, nsp))):
        y = _interpolate_traced(x, mode, size, scale_factor, align_corners,
                                bool(recompute_scale_factor), antialias)
        if y is not None:
            return y
    out_sizes, scales = _out_sizes(in_sizes, size, scale_factor)
    check_alloc("interpolate", tuple(x.shape[:2]) + tuple(out_sizes), x.dtype.itemsize)
    if recompute_scale_factor:
        scales = [i / o for i, o in zip(in_sizes, out_sizes)]
    # PyTorch's forward kernels copy an axis the scale factor leaves at its size (3 * 1.3
    # -> 3) in the linear modes, with antialias, and in 2-d 'nearest' (not 1-d or 3-d,
    # nor 'nearest-exact' or 'bicubic'): other axes still map by 1 / scale_factor
    keep = [i == o and (mode in _LINEAR or antialias or (mode == "nearest" and nsp == 2))
            for i, o in zip(in_sizes, out_sizes)]
    scales = [1.0 if k else s for k, s in zip(keep, scales)]
    if mode == "area":
        if antialias:
            raise ValueError("interpolate: antialias=True takes mode 'bilinear' or 'bicubic', "
                             "not 'area'")
        return _area(x, out_sizes)
    if antialias:
        return _antialiased(x, mode, in_sizes, out_sizes, scales, align_corners, keep)
    if mode in _LINEAR:
        # one op per axis (gathers blended in place, an add.reduceat adjoint: 2-4x faster
        # each way than take ops and their add.at gradient), the last axis first: PyTorch
        # blends the last axis innermost, which decides where an inf meets a 0 weight (NaN)
        from .nn_resize_linear import resize
        for k in reversed(range(nsp)):
            if size is not None:
                x = resize(x, 2 + k, "linear", size=out_sizes[k],
                           align_corners=bool(align_corners))
            else:
                x = resize(x, 2 + k, "linear", factor=1.0 / scales[k] if not
                           recompute_scale_factor else _checked_factors(scale_factor, nsp)[k],
                           recompute=bool(recompute_scale_factor),
                           align_corners=bool(align_corners))
        return x
    for k in range(nsp):
        ax = 2 + k
        n_in, n_out = in_sizes[k], out_sizes[k]
        if mode in ("nearest", "nearest-exact"):
            if keep[k] and not all(keep):   # all kept: the gathers below make the copy
                continue
            x = x.take(_nearest(n_in, n_out, scales[k], x.device, mode == "nearest-exact"),
                       axis=ax)
            continue
        shape = [1] * x.ndim
        shape[ax] = n_out
        if mode == "bicubic":
            taps = _cubic(n_in, n_out, scales[k], bool(align_corners), x.device)
            y = None
            for idx, w in taps:
                term = x.take(idx, axis=ax) * w.astype(x.dtype).reshape(shape)
                y = term if y is None else y + term
            x = y
        else:
            i0, i1, w1 = _linear(n_in, n_out, scales[k], bool(align_corners), x.device)
            w1 = w1.astype(x.dtype).reshape(shape)
            lo, hi = x.take(i0, axis=ax), x.take(i1, axis=ax)
            x = lo + (hi - lo) * w1
    return x


_RESIZE_MODE = {"nearest": "nearest", "nearest-exact": "nearest-exact", "linear": "linear",
                "bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}


def _interpolate_traced(x: Tensor, mode, size, scale_factor, align_corners, recompute,
                        antialias) -> Tensor | None:
    """``interpolate`` of an input whose spatial sizes follow None dims under capture: one
    ``resize`` op per axis, whose tables (and, for a fixed ``size``, the scale in / out)
    are computed from the input it gets when the graph runs. None where the size cannot
    follow (mode 'area' with a scale_factor: the warning names interpolate)."""
    from .nn_resize_linear import resize
    nsp = x.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if mode == "area":
        if antialias:
            raise ValueError("interpolate: antialias=True takes mode 'bilinear' or 'bicubic', "
                             "not 'area'")
        if size is not None:
            return _area(x, _checked_size(size, nsp))
        for n in x.shape[2:]:
            if traced(n):
                n.escape("combined with a float", "F.interpolate(mode='area', scale_factor=...) "
                         "computes its output size floor(in * scale_factor) as a Python "
                         "number; pass size=(h, w) for a fixed output size, or use "
                         "F.avg_pool2d(x, k) for a whole downscale factor k")
        return None
    if antialias and mode not in ("bilinear", "bicubic"):
        raise ValueError(f"interpolate: antialias=True takes mode 'bilinear' or 'bicubic', got "
                         f"{mode!r}")
    kind = ("aa_" if antialias else "") + _RESIZE_MODE[mode]
    if size is not None:
        _checked_size(size, nsp)
        for k, n in enumerate(_sizes_of(size, nsp)):   # traced sizes stay traced
            x = resize(x, 2 + k, kind, size=n, align_corners=bool(align_corners))
        return x
    sf = _checked_factors(scale_factor, nsp)
    for k, f in enumerate(sf):
        x = resize(x, 2 + k, kind, factor=f, recompute=recompute,
                   align_corners=bool(align_corners), copy_same=nsp == 2)
    return x


def _sizes_of(size, n: int) -> tuple:
    """``size`` as n entries, as given (a TracedSize stays one)."""
    return (size,) * n if np.isscalar(size) or isinstance(size, int) else tuple(size)


def _checked_size(size, n: int) -> tuple[int, ...]:
    # int.__int__: checking a traced size does not make it a plain number
    out = tuple(plain(s) for s in _sizes_of(size, n))
    if len(out) != n:
        raise ValueError(f"interpolate: size {tuple(out)} must give {n} spatial sizes")
    if any(s <= 0 for s in out):
        raise ValueError(f"interpolate: size {tuple(out)} must be positive")
    return out


def _checked_factors(scale_factor, n: int) -> tuple[float, ...]:
    sf = (float(scale_factor),) * n if np.isscalar(scale_factor) else \
        tuple(float(s) for s in scale_factor)
    if len(sf) != n:
        raise ValueError(f"interpolate: scale_factor {sf} must give {n} factors")
    if any(not 0 < s < math.inf for s in sf):
        raise ValueError(f"interpolate: scale_factor {sf} must be positive and finite")
    return sf


def _area(x: Tensor, out_sizes) -> Tensor:
    """Mode 'area': adaptive average pooling to ``out_sizes`` (PyTorch's
    adaptive_avg_pool1d/2d/3d for 3-, 4- and 5-d input); the 1-d and 3-d forms run as the
    2-d op (separable windows), as ``adaptive_avg_pool3d`` does."""
    nsp = len(out_sizes)
    if nsp == 2:
        return adaptive_avg_pool2d(x, out_sizes)
    if nsp == 1:
        return adaptive_avg_pool2d(x.unsqueeze(2), (1, out_sizes[0])).squeeze(2)
    if nsp != 3:
        raise ValueError(f"interpolate: mode 'area' takes 3-, 4- or 5-d input (N, C, *spatial), "
                         f"got {x.ndim}-d")
    (N, C, D, H, W), (Do, Ho, Wo) = x.shape, out_sizes
    y = adaptive_avg_pool2d(x.reshape((N, C * D, H, W)), (Ho, Wo))
    y = adaptive_avg_pool2d(y.reshape((N, C, D, Ho * Wo)), (Do, None))
    return y.reshape((N, C, Do, Ho, Wo))


def _traced_factors(size, x: Tensor, n: int) -> tuple[int, ...] | None:
    """The whole factors k when each size is ``x.shape[2 + i] * k`` read from a None dim
    under capture (a TracedSize of exactly that expression), else None."""
    sizes = (size,) * n if np.isscalar(size) else tuple(size)
    if len(sizes) != n or not traced(*sizes):
        return None
    out = []
    for i, s in enumerate(sizes):
        e = getattr(s, "expr", None)
        if not (isinstance(e, tuple) and len(e) == 3 and e[0] == "mul"):
            return None
        dim, k = (e[1], e[2]) if isinstance(e[2], int) else (e[2], e[1])
        if not (isinstance(k, int) and k >= 1 and isinstance(dim, tuple) and len(dim) == 3
                and dim[0] == "dim" and dim[1] is x and dim[2] == 2 + i):
            return None
        out.append(k)
    return tuple(out)


def _whole_factors(scale_factor, n: int) -> tuple[int, ...] | None:
    """The scale factors as ints when each is a whole number >= 1, else None."""
    if scale_factor is None:
        return None
    sf = (scale_factor,) * n if np.isscalar(scale_factor) else tuple(scale_factor)
    if len(sf) != n or not all(float(f).is_integer() and f >= 1 for f in sf):
        return None
    return tuple(int(f) for f in sf)


def _repeat_each(x: Tensor, factors: tuple[int, ...]) -> Tensor:
    """Nearest upsampling by whole factors: each input element repeated, which is what both
    nearest rules give then (floor(dst / f) = floor((dst + 0.5) / f)). A reshape, a
    broadcast and a reshape, so sizes read from None dims follow them when the graph runs."""
    lead, sp = tuple(x.shape[:2]), tuple(x.shape[2:])
    ones = sum(((d, 1) for d in sp), ())
    wide = sum(((d, f) for d, f in zip(sp, factors)), ())
    return x.reshape(lead + ones).broadcast_to(lead + wide).reshape(
        lead + tuple(d * f for d, f in zip(sp, factors)))


def _antialiased(x, mode, in_sizes, out_sizes, scales, align_corners, keep) -> Tensor:
    if mode not in ("bilinear", "bicubic"):
        raise ValueError(f"interpolate: antialias=True takes mode 'bilinear' or 'bicubic', got "
                         f"{mode!r}")
    (H, W), (Ho, Wo) = (int(s) for s in in_sizes), out_sizes
    sh, sw = ([(i - 1) / (o - 1) if o > 1 else 0.0 for i, o in zip((H, W), out_sizes)]
              if align_corners else scales)
    cubic = mode == "bicubic"
    # an axis kept at its size is skipped, as PyTorch's separable kernel (an identity
    # matrix product would turn an inf into NaNs along it)
    if not keep[1]:
        x = x @ const(_aa_matrix(W, Wo, sw, cubic).T.astype(x.dtype), x)
    if not keep[0]:
        x = const(_aa_matrix(H, Ho, sh, cubic).astype(x.dtype), x) @ x
    return x if not all(keep) else x.clone()


def _aa_filter(t: np.ndarray, cubic: bool) -> np.ndarray:
    t = np.abs(t)
    if not cubic:   # the triangle
        return np.where(t < 1.0, 1.0 - t, 0.0)
    a = -0.5        # Keys' cubic with a = -0.5, as PIL's and PyTorch's antialiasing
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t < 1.0, near, np.where(t < 2.0, far, 0.0))


def _aa_matrix(n_in: int, n_out: int, scale: float, cubic: bool) -> np.ndarray:
    """(n_out, n_in) weights of PyTorch's (and PIL's) antialiased resampling along one axis:
    when shrinking (scale = in / out > 1) the filter is stretched by the scale, so every
    input pixel contributes; each row sums to 1."""
    support = (2.0 if cubic else 1.0) * (scale if scale >= 1.0 else 1.0)
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)    # int(): toward zero, as the C++ cast
        hi = min(int(center + support + 0.5), n_in)
        j = np.arange(lo, hi)
        w = _aa_filter((j - center + 0.5) * inv, cubic)
        total = w.sum()
        m[i, lo:hi] = w / total if total != 0 else w
    return m


def _out_sizes(in_sizes, size, scale_factor):
    """Output sizes and the scale (input / output) PyTorch maps coordinates with per dim:
    1 / scale_factor when a scale factor is given, else in / out."""
    n = len(in_sizes)
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if size is not None:
        out = _checked_size(size, n)
        return out, [i / o for i, o in zip(in_sizes, out)]
    sf = _checked_factors(scale_factor, n)
    out = tuple(int(math.floor(i * s)) for i, s in zip(in_sizes, sf))
    if any(o <= 0 for o in out):
        raise ValueError(f"interpolate: scale_factor {sf} gives an empty output from "
                         f"{tuple(in_sizes)}")
    return out, [1.0 / s for s in sf]


def _nearest(n_in: int, n_out: int, scale: float, device, exact: bool = False) -> Tensor:
    from ..creation import tensor
    # PyTorch computes the source index in float32: floor(dst * scale) ('nearest') or
    # floor((dst + 0.5) * scale) ('nearest-exact'), clamped
    dst = np.arange(n_out, dtype=np.float32)
    if exact:
        dst = dst + np.float32(0.5)
    src = np.floor(dst * np.float32(scale)).astype(np.int64)
    return tensor(np.minimum(src, n_in - 1), device=device)


def _source(n_in: int, n_out: int, scale: float, align_corners: bool,
            cubic: bool) -> np.ndarray:
    """The input coordinate of each output position, as PyTorch's
    ``area_pixel_compute_source_index``: the linear modes clamp it at 0, cubic does not (its
    taps are clamped instead)."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        return dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    src = (dst + 0.5) * scale - 0.5
    return src if cubic else np.maximum(src, 0.0)


def _linear(n_in: int, n_out: int, scale: float, align_corners: bool, device):
    from ..creation import tensor
    src = _source(n_in, n_out, scale, align_corners, cubic=False)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return (tensor(i0, device=device), tensor(i1, device=device),
            tensor(src - i0, device=device))


def _cubic(n_in: int, n_out: int, scale: float, align_corners: bool,
           device) -> list[tuple[Tensor, Tensor]]:
    """The four (index, weight) taps of cubic convolution along one axis: source rows
    floor(src) - 1 .. floor(src) + 2, clamped into [0, n_in - 1]."""
    from ..creation import tensor
    src = _source(n_in, n_out, scale, align_corners, cubic=True)
    base = np.floor(src)
    t = src - base
    a = _CUBIC_A
    # Keys' kernel: |d| <= 1 for the two inner taps, 1 < |d| < 2 for the outer two
    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    weights = (far(t + 1), near(t), near(1 - t), far(2 - t))
    base = base.astype(np.int64)
    return [(tensor(np.clip(base + k - 1, 0, n_in - 1), device=device),
             tensor(w, device=device)) for k, w in enumerate(weights)]


# --- pixel shuffle ------------------------------------------------------------------------------
def pixel_shuffle(input, upscale_factor: int) -> Tensor:
    """(N, C*r*r, H, W) -> (N, C, H*r, W*r): channels rearranged into r x r blocks (Shi et
    al., 2016), as PyTorch's ``pixel_shuffle``."""
    x = to_tensor(input)
    r = _factor(upscale_factor, "pixel_shuffle")
    if x.ndim < 3 or x.shape[-3] % (r * r):
        raise ValueError(f"pixel_shuffle: input {tuple(x.shape)} needs (..., C*{r * r}, H, W) "
                         f"channels divisible by upscale_factor**2 = {r * r}")
    *lead, c, h, w = x.shape
    c //= r * r
    # leading dims as -1 (one flattened dim in between): a graph keeps a dynamic batch size
    head, nl = ((-1,), 1) if lead else ((), 0)
    y = x.reshape(*head, c, r, r, h, w)
    y = y.transpose((*range(nl), nl, nl + 3, nl + 1, nl + 4, nl + 2))
    return y.reshape(*head, *lead[1:], c, h * r, w * r)


def pixel_unshuffle(input, downscale_factor: int) -> Tensor:
    """The inverse of :func:`pixel_shuffle`: (N, C, H*r, W*r) -> (N, C*r*r, H, W)."""
    x = to_tensor(input)
    r = _factor(downscale_factor, "pixel_unshuffle")
    if x.ndim < 3 or x.shape[-2] % r or x.shape[-1] % r:
        raise ValueError(f"pixel_unshuffle: input {tuple(x.shape)} needs H and W divisible by "
                         f"downscale_factor {r}")
    *lead, c, h, w = x.shape
    h, w = h // r, w // r
    head, nl = ((-1,), 1) if lead else ((), 0)
    y = x.reshape(*head, c, h, r, w, r)
    y = y.transpose((*range(nl), nl, nl + 2, nl + 4, nl + 1, nl + 3))
    return y.reshape(*head, *lead[1:], c * r * r, h, w)


def _factor(r, op: str) -> int:
    if int(r) != r or r < 1:
        raise ValueError(f"{op}: the factor must be a positive integer, got {r!r}")
    return int(r)
