"""2-D pooling: max (with argmax indices), average, adaptive average.

max_pool2d returns (out, indices); its gradient op scatters through the indices
and the vjp of that scatter is a gather, so grad of grad works. avg_pool2d and
its gradient are each other's adjoints (NumPy strided sums: a Cython loop was slower,
see benchmarks/README.md). adaptive_avg_pool2d is two matmuls with
constant pooling matrices (no kernel of its own needed). adaptive_max_pool2d is max_pool2d
when its windows tile the input, else a gather of the input at its argmax indices, so its
gradient goes to the indexed element (PyTorch's) in both.
"""
from __future__ import annotations

import math

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from ..autograd.mode import no_grad
from .indexing import take_along_axis
from .nn_util import as_float_tensor, const, io_cost, tuple_n
from .registry import OpDef, register, shape_check
from .size_guard import SIZE_RULES, size_guard, traced


def _pool_out(n, k, s, p, d, ceil_mode):
    eff = d * (k - 1) + 1
    num = n + 2 * p - eff
    if ceil_mode:
        o = -(-num // s) + 1
        if (o - 1) * s >= n + p:   # the last window must start inside the input or left pad
            o -= 1
    else:
        o = num // s + 1
    return o


def _out_hw(hw, kernel, stride, padding, dilation, ceil_mode) -> tuple:
    """The output (Ho, Wo) of a pool over spatial ``hw``: the kernels derive it from their
    input, so a captured graph pools inputs of any size (a None dim stays dynamic)."""
    return tuple(None if n is None else _pool_out(n, k, s, p, d, ceil_mode)
                 for n, k, s, p, d in zip(hw, kernel, stride, padding, dilation))


def fits(op: str, hw, k, s, p, d, ceil_mode) -> tuple:
    """The output (Ho, Wo) of a pool, or PyTorch's error when the (dilated) kernel does not
    fit the padded input. The ops' check runs it (eager and replay of None dims alike)."""
    out = tuple(_pool_out(n, *a, ceil_mode) for n, *a in zip(hw, k, s, p, d))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{op}: output size {out} is too small: kernel {tuple(k)} (dilation "
                         f"{tuple(d)}) does not fit the input {tuple(hw)} with padding "
                         f"{tuple(p)}")
    return out


@shape_check
def _max_check(x, *, kernel, stride, padding, dilation, ceil_mode):
    fits("max_pool2d", x.shape[-2:], kernel, stride, padding, dilation, ceil_mode)


@shape_check
def _avg_check(x, *, kernel, stride, padding, ceil_mode, **_):
    fits("avg_pool2d", x.shape[-2:], kernel, stride, padding, (1, 1), ceil_mode)


# --- size rules of composite ops (see size_guard.py) ------------------------------------------
def _rule_circular(shape, pads):
    """``pads``: F.pad's (before, after) per dim, negative ones already cropped."""
    for ax, pair in enumerate(pads):
        n = shape[len(shape) - len(pads) + ax]
        if max(pair[0], 0) > n or max(pair[1], 0) > n:
            raise ValueError(f"pad: circular padding {tuple(pair)} wraps around dim {ax} "
                             f"(size {n} after cropping) more than once")


def _rule_nonempty(shape, name):
    if shape[-2] == 0 or shape[-1] == 0:
        raise ValueError(f"{name}: input of shape {tuple(shape)} has an empty spatial "
                         "dimension")


SIZE_RULES.update(circular=_rule_circular, nonempty_hw=_rule_nonempty)


def _windows(Ho, Wo, attrs, H, W):
    """Input row/column of window offset 0 for every output, as (Ho, 1) and (1, Wo)."""
    (sh, sw), (ph, pw) = attrs["stride"], attrs["padding"]
    return (np.arange(Ho) * sh - ph)[:, None], (np.arange(Wo) * sw - pw)[None, :]


# --- max pooling ------------------------------------------------------------------------------
def _max_fwd(xp, x, *, kernel, stride, padding, dilation, ceil_mode):
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    Ho, Wo = _out_hw((H, W), kernel, stride, padding, dilation, ceil_mode)
    Hp = max(H + 2 * ph, (Ho - 1) * sh + dh * (kh - 1) + 1)
    Wp = max(W + 2 * pw, (Wo - 1) * sw + dw * (kw - 1) + 1)
    low = _lowest(x.dtype)
    xpad = xp.full((N, C, Hp, Wp), low, x.dtype)
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    best = xp.full((N, C, Ho, Wo), low, x.dtype)
    floats = x.dtype.kind == "f"
    arg = xp.full((N, C, Ho, Wo), -1, np.int64)
    h0 = xp.arange(Ho).reshape(-1, 1) * sh - ph
    w0 = xp.arange(Wo).reshape(1, -1) * sw - pw
    for i in range(kh):
        for j in range(kw):
            v = xpad[:, :, i * dh:i * dh + sh * (Ho - 1) + 1:sh,
                     j * dw:j * dw + sw * (Wo - 1) + 1:sw]
            hi, wi = h0 + i * dh, w0 + j * dw
            inside = (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
            new = (arg < 0) | (v > best)
            if floats:      # PyTorch's `val > max || isnan(val)`: a window's last NaN
                new |= xp.isnan(v)
            upd = inside & new
            best = xp.where(upd, v, best)
            arg = xp.where(upd, hi * W + wi, arg)
    return best, arg


def _lowest(dtype):
    """The identity of max: -inf, or an integer dtype's smallest value."""
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _has_empty_window(hw, kernel, stride, padding, dilation, out_hw) -> bool:
    """Whether some pooling window holds no input element along either axis."""
    for n, k, s, p, d, o in zip(hw, kernel, stride, padding, dilation, out_hw):
        pos = (np.arange(o)[:, None] * s - p) + np.arange(k)[None, :] * d
        if not ((pos >= 0) & (pos < n)).any(axis=1).all():
            return True
    return False


def _max_fwd_cpu(x, *, kernel, stride, padding, dilation, ceil_mode):
    from .. import _ops
    x = np.ascontiguousarray(x)
    N, C = x.shape[:2]
    out_hw = _out_hw(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    out = np.empty((N, C) + tuple(out_hw), x.dtype)
    idx = np.empty((N, C) + tuple(out_hw), np.int64)
    if not out.size:
        return out, idx
    Ho, Wo = out_hw
    if x.dtype.kind != "f" or _has_empty_window(x.shape[2:], kernel, stride, padding, dilation,
                                                 out_hw):
        # (integer input: the Cython kernels are float32/float64 only)
        # a window all padding (dilation can skip over the whole input): -inf and index -1,
        # as the generic loop gives; the Cython kernel assumes every window holds an element
        return _max_fwd(np, x, kernel=kernel, stride=stride, padding=padding,
                        dilation=dilation, ceil_mode=ceil_mode)
    if (tuple(kernel) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0)
            and tuple(dilation) == (1, 1) and 2 * Ho <= x.shape[2] and 2 * Wo <= x.shape[3]):
        _ops.max_pool2d_2x2(x, out, idx)   # the common case, unrolled (2x the general loop)
    else:
        _ops.max_pool2d(x, out, idx, *kernel, *stride, *padding, *dilation)
    if np.isnan(out).any():
        # the Cython kernels index a window's first NaN, PyTorch its last (the values agree);
        # a NaN in the input shows in the output, so clean inputs pay one scan of the output
        return _max_fwd(np, x, kernel=kernel, stride=stride, padding=padding,
                        dilation=dilation, ceil_mode=ceil_mode)
    return out, idx


def _max_grad_fwd(xp, g, idx, *, input_hw):
    N, C, Ho, Wo = g.shape
    H, W = input_hw
    out = xp.zeros((N, C, H * W), g.dtype)
    g, idx = _skip_empty(xp, g, idx)
    if g.size:
        xp.add.at(out, (xp.arange(N)[:, None, None], xp.arange(C)[None, :, None],
                        idx.reshape(N, C, -1)), g.reshape(N, C, -1))
    return out.reshape(N, C, H, W)


def _skip_empty(xp, g, idx):
    """Windows that held no element (index -1) pass no gradient: a zero at index 0."""
    if idx.size and bool((idx == -1).any()):
        empty = idx == -1
        return xp.where(empty, 0, g).astype(g.dtype), xp.where(empty, 0, idx)
    return g, idx


def _max_grad_cpu(g, idx, *, input_hw):
    from .. import _ops
    H, W = input_hw
    if idx.shape != g.shape or idx.dtype != np.int64:
        raise ValueError(f"max_pool2d_grad: indices {idx.shape} {idx.dtype} must be int64 with "
                         f"the gradient's shape {g.shape}")
    g, idx = _skip_empty(np, g, idx)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= H * W):
        raise IndexError(f"max_pool2d_grad: indices must lie in [0, {H * W})")
    out = np.empty(g.shape[:2] + (H, W), g.dtype)
    if out.size:
        _ops.max_pool2d_backward(np.ascontiguousarray(g), np.ascontiguousarray(idx), out)
    return out


def _max_vjp(n, g, _gidx):
    idx = n.output(1).detach()
    return (apply(MAX_POOL2D_GRAD, g, idx, input_hw=tuple(n.inputs[0].shape[2:])),)


def _max_grad_vjp(n, gg):
    g, idx = n.inputs
    N, C, Ho, Wo = g.shape
    flat = gg.reshape(N, C, -1)
    picked = take_along_axis(flat, idx.reshape(N, C, Ho * Wo), axis=2)
    return picked.reshape(g.shape), None


def _max_infer(x, *, kernel, stride, padding, dilation, ceil_mode):
    s = tuple(x[0][:2]) + _out_hw(x[0][2:], kernel, stride, padding, dilation, ceil_mode)
    return (s, x[1]), (s, np.dtype(np.int64))


def _pool_flops(i, o, **a):
    return math.prod(d or 1 for d in o[0][0]) * math.prod(a.get("kernel", (1, 1)))


MAX_POOL2D = register(OpDef("max_pool2d", _max_fwd, kernels={"cpu": _max_fwd_cpu},
                            vjp=_max_vjp, saves=False, saves_output=(1,), infer=_max_infer,
                            check=_max_check, cost=io_cost(_pool_flops), onnx="MaxPool"))
MAX_POOL2D_GRAD = register(OpDef(
    "max_pool2d_grad", _max_grad_fwd, kernels={"cpu": _max_grad_cpu}, vjp=_max_grad_vjp,
    saves=False, infer=lambda g, i, *, input_hw: (tuple(g[0][:2]) + tuple(input_hw), g[1]),
    cost=io_cost()))


# --- average pooling --------------------------------------------------------------------------
def _count_map(xp, H, W, Ho, Wo, kernel, stride, padding, include_pad, divisor):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if divisor:
        return xp.full((Ho, Wo), float(divisor))
    h0 = np.arange(Ho) * sh - ph
    w0 = np.arange(Wo) * sw - pw
    if include_pad:
        hc = np.minimum(h0 + kh, H + ph) - h0
        wc = np.minimum(w0 + kw, W + pw) - w0
    else:
        hc = np.minimum(h0 + kh, H) - np.maximum(h0, 0)
        wc = np.minimum(w0 + kw, W) - np.maximum(w0, 0)
    return xp.asarray(np.outer(hc, wc).astype(np.float64))


def _avg_slices(H, W, Ho, Wo, kernel, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    Hp = max(H + 2 * ph, (Ho - 1) * sh + kh)
    Wp = max(W + 2 * pw, (Wo - 1) * sw + kw)
    sl = [(slice(i, i + sh * (Ho - 1) + 1, sh), slice(j, j + sw * (Wo - 1) + 1, sw))
          for i in range(kh) for j in range(kw)]
    return Hp, Wp, sl


def _avg_fwd(xp, x, *, kernel, stride, padding, ceil_mode, count_include_pad, divisor):
    N, C, H, W = x.shape
    Ho, Wo = _out_hw((H, W), kernel, stride, padding, (1, 1), ceil_mode)
    ph, pw = padding
    Hp, Wp, sl = _avg_slices(H, W, Ho, Wo, kernel, stride, padding)
    xpad = xp.zeros((N, C, Hp, Wp), x.dtype)
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    acc = xp.zeros((N, C, Ho, Wo), x.dtype)
    for a, b in sl:
        acc += xpad[:, :, a, b]
    cnt = _count_map(xp, H, W, Ho, Wo, kernel, stride, padding, count_include_pad, divisor)
    if x.dtype.kind in "iu":
        # int64, as PyTorch: the exact sum divided as C does (truncated toward zero)
        q = xp.abs(acc) // cnt.astype(acc.dtype)
        return xp.where(acc < 0, -q, q)
    return (acc / cnt).astype(x.dtype, copy=False)


def _avg_grad_fwd(xp, g, *, kernel, stride, padding, ceil_mode, input_hw, count_include_pad,
                  divisor):
    # (ceil_mode: for the vjp, an avg_pool2d of the input's size back to g's)
    N, C, Ho, Wo = g.shape
    H, W = input_hw
    ph, pw = padding
    Hp, Wp, sl = _avg_slices(H, W, Ho, Wo, kernel, stride, padding)
    cnt = _count_map(xp, H, W, Ho, Wo, kernel, stride, padding, count_include_pad, divisor)
    gs = (g / cnt).astype(g.dtype, copy=False)
    dpad = xp.zeros((N, C, Hp, Wp), g.dtype)
    for a, b in sl:
        dpad[:, :, a, b] += gs
    return xp.ascontiguousarray(dpad[:, :, ph:ph + H, pw:pw + W])


def _avg_common(attrs):
    return {k: attrs[k] for k in ("kernel", "stride", "padding", "ceil_mode", "count_include_pad",
                                  "divisor")}


AVG_POOL2D = register(OpDef(
    "avg_pool2d", _avg_fwd, saves=False, check=_avg_check,
    vjp=lambda n, g: (apply(AVG_POOL2D_GRAD, g, input_hw=tuple(n.inputs[0].shape[2:]),
                            **_avg_common(n.attrs)),),
    infer=lambda x, *, kernel, stride, padding, ceil_mode, **a: (
        tuple(x[0][:2]) + _out_hw(x[0][2:], kernel, stride, padding, (1, 1), ceil_mode), x[1]),
    cost=io_cost(_pool_flops), onnx="AveragePool"))
AVG_POOL2D_GRAD = register(OpDef(
    "avg_pool2d_grad", _avg_grad_fwd, saves=False,
    vjp=lambda n, gg: (apply(AVG_POOL2D, gg, **_avg_common(n.attrs)),),
    infer=lambda g, *, input_hw, **a: (tuple(g[0][:2]) + tuple(input_hw), g[1]),
    cost=io_cost(_pool_flops)))


# --- public API -------------------------------------------------------------------------------
def _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: input must be (N, C, H, W) or (C, H, W), got shape "
                         f"{tuple(x.shape)}")
    k = tuple_n(kernel_size, 2, op, "kernel_size", 1)
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
        else tuple_n(stride, 2, op, "stride", 1)
    p = tuple_n(padding, 2, op, "padding")
    d = tuple_n(dilation, 2, op, "dilation", 1)
    if any(v < 0 for v in p):
        raise ValueError(f"{op}: padding must be non-negative, got {p}")
    for pi, ki, di in zip(p, k, d):
        if pi > (di * (ki - 1) + 1) // 2:
            raise ValueError(f"{op}: padding {p} must be at most half of the effective kernel "
                             f"size {tuple(di * (kk - 1) + 1 for kk, di in zip(k, d))}")
    # the ops check this too (replay of None dims); here first to name the 1-d calls
    return k, s, p, d, fits(op, tuple(x.shape[-2:]), k, s, p, d, ceil_mode)


def _batched(x):
    return (x.unsqueeze(0), True) if x.ndim == 3 else (x, False)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False, *, _op: str = "max_pool2d"):
    """2-D max pooling over (N, C, H, W) or (C, H, W); ``return_indices`` also gives the
    flat h * W + w position of each max (as PyTorch). Integer input pools as it is, as
    PyTorch's (no gradient)."""
    x = _float_or_int(input, _op)
    k, s, p, d, _ = _pool_args(_op, x, kernel_size, stride, padding, dilation, ceil_mode)
    x, unb = _batched(x)
    out, idx = apply(MAX_POOL2D, x, kernel=k, stride=s, padding=p, dilation=d,
                     ceil_mode=bool(ceil_mode))
    if unb:
        out, idx = out.squeeze(0), idx.squeeze(0)
    return (out, idx) if return_indices else out


def _float_or_int(input, op: str) -> Tensor:
    """``input`` as a float32/float64 or (signed or unsigned) integer tensor, as PyTorch's
    max_pool2d/3d take; bool and float16 are refused (``as_float_tensor``'s error)."""
    from ._util import to_tensor
    x = to_tensor(input)
    if x._data.dtype.kind in "iu":
        return x
    return as_float_tensor(x, op)


def _float_or_int64(input, op: str) -> Tensor:
    """``input`` as a float32/float64 or int64 tensor: PyTorch's average pools take int64
    (the average truncated toward zero) and refuse the other integer dtypes."""
    from ._util import to_tensor
    x = to_tensor(input)
    if x._data.dtype == np.int64:
        return x
    if x._data.dtype.kind in "biu":
        from ..errors import DTypeError
        raise DTypeError(f"{op}: input must be float32, float64 or int64 (as PyTorch), got "
                         f"{x._data.dtype}")
    return as_float_tensor(x, op)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None, *,
               _op: str = "avg_pool2d") -> Tensor:
    """2-D average pooling over (N, C, H, W) or (C, H, W); int64 input gives int64, each
    average truncated toward zero, as PyTorch."""
    x = _float_or_int64(input, _op)
    k, s, p, _, _ = _pool_args(_op, x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, int)
                                         or divisor_override <= 0):
        raise ValueError(f"avg_pool2d: divisor_override must be a positive int, got "
                         f"{divisor_override!r}")
    x, unb = _batched(x)
    out = apply(AVG_POOL2D, x, kernel=k, stride=s, padding=p, ceil_mode=bool(ceil_mode),
                count_include_pad=bool(count_include_pad), divisor=divisor_override or 0)
    return out.squeeze(0) if unb else out


def _adaptive_matrix(n_in, n_out, dtype):
    m = np.zeros((n_out, n_in), dtype)
    for i in range(n_out):
        a = (i * n_in) // n_out
        b = -((-(i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    return m


def _adaptive_args(name: str, input, output_size):
    x = as_float_tensor(input, name)
    if x.ndim not in (3, 4):
        raise ValueError(f"{name}: input must be (N, C, H, W) or (C, H, W), got "
                         f"shape {tuple(x.shape)}")
    H, W = x.shape[-2:]
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size, output_size)
    if len(output_size) != 2:
        raise ValueError(f"{name}: output_size must be an int or a pair, got {output_size!r}")
    Ho, Wo = (H if output_size[0] is None else int(output_size[0]),
              W if output_size[1] is None else int(output_size[1]))
    if Ho < 0 or Wo < 0:
        raise ValueError(f"{name}: output_size must be non-negative, got {(Ho, Wo)}")
    x = size_guard(x, "nonempty_hw", name)
    from ._util import check_alloc
    check_alloc(name, tuple(x.shape[:-2]) + (Ho, Wo), x.dtype.itemsize)
    # the window tables: (Ho, H) / (Wo, W) averaging matrices, int64 taps for the max
    if not traced(H, W):
        check_alloc(name, (max(Ho * H, Wo * W),), 8, "window table")
    return x, H, W, Ho, Wo


def adaptive_avg_pool2d(input, output_size, *, _op: str = "adaptive_avg_pool2d") -> Tensor:
    """Average pooling to a fixed output size (windows as PyTorch); None keeps that side; a 0
    gives an empty result."""
    x, H, W, Ho, Wo = _adaptive_args(_op, input, output_size)
    if _zero(Ho, Wo):
        return _empty_pool(x, (Ho, Wo))
    if Ho == 1 and Wo == 1:
        # a mean over the spatial axes: no size in it, so under capture with None dims the
        # graph follows H and W (a ResNet head) rather than fixing them
        return x.mean(axis=(-2, -1), keepdims=True)
    if Wo is not W:         # a side whose output_size is None stays as it is
        x = x @ _pool_matrix(W, Wo, x).swapaxes(0, 1)
    if Ho is not H:
        x = _pool_matrix(H, Ho, x) @ x
    return x


def _pool_matrix(n, n_out: int, x) -> Tensor:
    """The (n_out, n) averaging matrix of adaptive pooling: a constant, or, for a size read
    from a None dim under capture, computed when the graph runs from ``arange(n)``
    comparisons (window i is [i*n // n_out, ceil((i+1)*n / n_out))), so the graph follows
    any n, evenly dividing or not."""
    if not traced(n):
        return const(_adaptive_matrix(n, n_out, x.dtype), x)
    from ..creation import arange
    h = arange(n, device=x.device)                  # counts to n at run time
    size = h[-1:] + 1                               # (1,) holding n
    i = arange(int(n_out), device=x.device)[:, None]
    lo = (i * size) // n_out
    hi = ((i + 1) * size + (n_out - 1)) // n_out
    m = (h >= lo).astype(x.dtype) * (h < hi).astype(x.dtype)
    return m / m.sum(axis=1, keepdims=True)


def _adaptive_taps(n: int, n_out: int) -> np.ndarray:
    """(n_out, k): the input positions of each adaptive window [floor(i*n/n_out),
    ceil((i+1)*n/n_out)), padded to the widest window by repeating its last position."""
    starts = [(i * n) // n_out for i in range(n_out)]
    ends = [-(-((i + 1) * n) // n_out) for i in range(n_out)]
    k = max(e - s for s, e in zip(starts, ends))
    return np.array([[min(s + t, e - 1) for t in range(k)] for s, e in zip(starts, ends)],
                    dtype=np.int64)


def _taps_of(n, n_out: int, x):
    """(taps, width): :func:`_adaptive_taps` as a tensor of ``width`` columns; for a size read
    from a None dim under capture computed when the graph runs (``width`` then a traced size
    bounding every window, padded as the static taps by repeating the last position)."""
    if not traced(n):
        t = _adaptive_taps(n, n_out)
        return const(t, x), t.shape[1]
    from ..creation import arange
    from .elementwise import minimum
    from .size_guard import size_tensor
    if n_out is n:                                      # a side kept by None: one tap each
        return arange(n, device=x.device)[:, None], 1
    size = size_tensor(n, x)                            # n, read when the graph runs
    i = arange(n_out, device=x.device)[:, None]
    lo = (i * size) // n_out
    hi = ((i + 1) * size + (n_out - 1)) // n_out
    width = (n + n_out - 1) // n_out + 1                # no window is wider
    return minimum(lo + arange(width, device=x.device)[None, :], hi - 1), width


def _adaptive_max_indices(x, H, W, Ho: int, Wo: int) -> Tensor:
    """The flat (h * W + w) position of each window's maximum, as PyTorch's: the first in
    row-major order on ties, and the last NaN of a window holding NaN (PyTorch's kernel takes
    ``val > max || isnan(val)``). Eager CPU input: :func:`_adaptive_argmax_np`; otherwise
    built from gathers and reductions, so it is captured too, and a side read from a None
    dim keeps its size computed per run (one graph per length)."""
    from ..autograd.mode import state
    if state.tracer is None and isinstance(x._data, np.ndarray) and not traced(H, W):
        from ..creation import tensor
        return tensor(_adaptive_argmax_np(x._data, H, W, Ho, Wo), device=x.device)
    lead = tuple(x.shape[:-2])
    nl = len(lead)
    with no_grad():
        from .size_guard import size_tensor
        rows, kh = _taps_of(H, Ho, x)
        cols, kw = _taps_of(W, Wo, x)
        w = size_tensor(W, x)
        flat = (rows[:, None, :, None] * w + cols[None, :, None, :]).reshape(Ho, Wo, kh * kw)
        v = x.detach().take(rows.reshape(-1), axis=-2)
        v = v.take(cols.reshape(-1), axis=-1)                    # (..., Ho*kh, Wo*kw)
        v = v.reshape(lead + (Ho, kh, Wo, kw)).permute(
            tuple(range(nl)) + (nl, nl + 2, nl + 1, nl + 3)).reshape(lead + (Ho, Wo, kh * kw))
        table = flat.astype(np.int64).broadcast_to(lead + (Ho, Wo, kh * kw))
        first = take_along_axis(table, v.argmax(axis=-1, keepdims=True), axis=-1).squeeze(-1)
        # the taps run through each window in row-major order (its padding repeats the last
        # position), so the window's last NaN is the largest position holding one (-1: none)
        from .elementwise import where
        last = where(v != v, table, -1).max(axis=-1)
        return where(last >= 0, last, first)


def _adaptive_argmax_np(a: np.ndarray, H: int, W: int, Ho: int, Wo: int) -> np.ndarray:
    """:func:`_adaptive_max_indices` of an (N, C, H, W) NumPy array: float32/float64
    windows scanned in place by one kernel; other dtypes' taps gathered into
    (N, C, Ho * kh, Wo * kw) tiles (each padded by repeating its last position, which the
    first maximum never picks and the last NaN maps onto), then max_pool2d's kernel on the
    tiles and its indices mapped back to positions."""
    from .. import _ops
    if a.dtype in (np.float32, np.float64):
        # the direct kernel: each window scanned in place, PyTorch's rule
        lead = a.shape[:-2]
        planes = np.ascontiguousarray(a).reshape((-1, H, W))
        out = np.empty((planes.shape[0], Ho, Wo), a.dtype)
        idx = np.empty((planes.shape[0], Ho, Wo), np.int64)
        _ops.adaptive_max_pool2d_planes(planes, out, idx)
        return idx.reshape(lead + (Ho, Wo))
    rows, cols = _adaptive_taps(H, Ho).reshape(-1), _adaptive_taps(W, Wo)
    kh, kw = rows.size // Ho, cols.shape[1]
    cols = cols.reshape(-1)
    tiles = np.ascontiguousarray(a[..., rows[:, None], cols[None, :]])
    _, local = _max_fwd_cpu(tiles, kernel=(kh, kw), stride=(kh, kw), padding=(0, 0),
                            dilation=(1, 1), ceil_mode=False)
    r, c = np.divmod(local, Wo * kw)
    return rows[r] * W + cols[c]


def _zero(*sizes) -> bool:
    """Whether an output size is 0 (a size kept from a None dim is not: no retracing)."""
    return any(not traced(n) and n == 0 for n in sizes)


def _empty_pool(x: Tensor, out_hw: tuple) -> Tensor:
    """The (..., Ho, Wo) result of an adaptive pool with a zero output size: empty, as
    PyTorch's, and a zero gradient (PyTorch's backward raises instead)."""
    return x[..., :0, :0].reshape(tuple(x.shape[:-2]) + tuple(out_hw))


def adaptive_max_pool2d(input, output_size, return_indices: bool = False, *,
                        _op: str = "adaptive_max_pool2d"):
    """Max pooling to a fixed output size: window i covers [floor(i*H/Ho), ceil((i+1)*H/Ho))
    as PyTorch (equal windows when the sizes divide); None keeps that side; a 0 gives an
    empty result. With ``return_indices`` also the int64 flat positions (h * W + w) of the
    maxima, as PyTorch's: the first maximum in row-major order, or a window's last NaN. The
    gradient goes to those positions only (ties included), as PyTorch's."""
    x, H, W, Ho, Wo = _adaptive_args(_op, input, output_size)
    if _zero(Ho, Wo):
        out = _empty_pool(x, (Ho, Wo))
        if not return_indices:
            return out
        from ..creation import zeros
        return out, zeros(tuple(out.shape), dtype=np.int64, device=x.device)
    x, unb = _batched(x)
    if not traced(H, W) and H % Ho == 0 and W % Wo == 0:
        # equal windows that tile the input: max_pool2d (its kernel, its index-routed
        # gradient, and MaxPool in ONNX)
        k = (H // Ho, W // Wo)
        out, idx = apply(MAX_POOL2D, x, kernel=k, stride=k, padding=(0, 0), dilation=(1, 1),
                         ceil_mode=False)
    else:
        # the values gathered at the indices: the gradient is scattered to them
        idx = _adaptive_max_indices(x, H, W, Ho, Wo)
        lead = tuple(x.shape[:-2])
        # explicit sizes, not -1: an empty batch has no size to infer
        out = take_along_axis(x.reshape(lead + (H * W,)), idx.reshape(lead + (Ho * Wo,)),
                              axis=-1)
        out = out.reshape(tuple(idx.shape))
    if unb:
        out, idx = out.squeeze(0), idx.squeeze(0)
    return (out, idx) if return_indices else out


# --- 1-d pooling: the 2-d ops on (N, C, 1, L) ---------------------------------------------------
def _one(v, name: str, what: str) -> int:
    return tuple_n(v, 1, name, what)[0]


def _as_2d(input, name: str, check=as_float_tensor):
    x = check(input, name)
    if x.ndim not in (2, 3):
        raise ValueError(f"{name}: input must be (N, C, L) or (C, L), got shape "
                         f"{tuple(x.shape)}")
    return x.unsqueeze(-2)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """1-d max pooling over (N, C, L) or (C, L); indices are positions along L."""
    n = "max_pool1d"
    k = _one(kernel_size, n, "kernel_size")
    s = k if stride is None else _one(stride, n, "stride")
    # (1, k) kernels in messages: the 1-d call's name, since that is what the user wrote
    out = max_pool2d(_as_2d(input, n), (1, k), (1, s), (0, _one(padding, n, "padding")),
                     (1, _one(dilation, n, "dilation")), ceil_mode, return_indices, _op=n)
    if return_indices:
        return out[0].squeeze(-2), out[1].squeeze(-2)
    return out.squeeze(-2)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-d average pooling over (N, C, L) or (C, L); int64 input gives int64, each average
    truncated toward zero, as PyTorch."""
    n = "avg_pool1d"
    k = _one(kernel_size, n, "kernel_size")
    s = k if stride is None else _one(stride, n, "stride")
    return avg_pool2d(_as_2d(input, n, _float_or_int64), (1, k), (1, s),
                      (0, _one(padding, n, "padding")), ceil_mode, count_include_pad,
                      _op=n).squeeze(-2)


def adaptive_max_pool1d(input, output_size, return_indices: bool = False):
    """Max pooling of (N, C, L) or (C, L) to ``output_size`` positions; ``return_indices``
    also gives the positions of the maxima along L."""
    n = "adaptive_max_pool1d"
    out = adaptive_max_pool2d(_as_2d(input, n), (1, _one(output_size, n, "output_size")),
                              return_indices, _op=n)
    if not return_indices:
        return out.squeeze(-2)
    return out[0].squeeze(-2), out[1].squeeze(-2)


def adaptive_avg_pool1d(input, output_size) -> Tensor:
    """Average pooling of (N, C, L) or (C, L) to ``output_size`` positions."""
    n = "adaptive_avg_pool1d"
    return adaptive_avg_pool2d(_as_2d(input, n), (1, _one(output_size, n, "output_size")),
                               _op=n).squeeze(-2)
