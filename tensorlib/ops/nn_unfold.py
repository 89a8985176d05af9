"""``F.unfold`` (im2col: sliding blocks as columns) and its adjoint ``F.fold``, with
PyTorch's layouts: the registry ops ``im2col`` and ``col2im``.

Both kernels work out the block grid from the shapes they are given when they run, and check
it there, so a captured graph with dynamic H/W follows every size and refuses a kernel that
does not fit as eager does (``col2im`` reads a traced output size through ``sizes``, see
:mod:`tensorlib.graph.sizes`)."""
from __future__ import annotations

import functools

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from .nn_util import as_float_or_complex_tensor, io_cost, tuple_n
from .registry import OpDef, register
from .size_guard import plain


def _grid(name, H, W, kernel, dilation, padding, stride, strict=True) -> tuple[int, int]:
    """The block grid (nh, nw) over the padded (H + 2p) x (W + 2p) plane (None where H or W
    is unknown); ValueError when the kernel does not fit (``strict``; else a grid of 0)."""
    (kh, kw), (dh, dw), (ph, pw), (sh, sw) = kernel, dilation, padding, stride
    Hp = None if H is None else H + 2 * ph
    Wp = None if W is None else W + 2 * pw
    nh = None if Hp is None else (Hp - dh * (kh - 1) - 1) // sh + 1
    nw = None if Wp is None else (Wp - dw * (kw - 1) - 1) // sw + 1
    if (nh is not None and nh < 1) or (nw is not None and nw < 1):
        if not strict:
            return max(nh, 0) if nh is not None else None, max(nw, 0) if nw is not None else None
        raise ValueError(f"{name}: a {kh}x{kw} kernel (dilation {dh, dw}) does not fit a "
                         f"padded {Hp}x{Wp} plane")
    return nh, nw


@functools.lru_cache(maxsize=64)
def _blocks(name, H, W, kernel, dilation, padding, stride) -> np.ndarray:
    """For each of the kh*kw kernel offsets and each of the L blocks, the flat index into the
    padded plane (offset-major, as PyTorch's column rows)."""
    nh, nw = _grid(name, H, W, kernel, dilation, padding, stride)
    (kh, kw), (dh, dw), (sh, sw), pw = kernel, dilation, stride, padding[1]
    ki, kj = np.meshgrid(np.arange(kh) * dh, np.arange(kw) * dw, indexing="ij")
    bi, bj = np.meshgrid(np.arange(nh) * sh, np.arange(nw) * sw, indexing="ij")
    rows = ki.reshape(-1, 1) + bi.reshape(1, -1)
    cols = kj.reshape(-1, 1) + bj.reshape(1, -1)
    idx = (rows * (W + 2 * pw) + cols).reshape(-1)
    idx.flags.writeable = False
    return idx


def _fixed(v, name: str, arg: str):
    """``v`` with sizes traced from a None dim made plain, the retrace warning naming
    ``F.<name>``: the block layout is an attribute, fixed per graph."""
    from ..graph.tracer import TracedSize
    if isinstance(v, TracedSize):
        v.escape("int()", f"F.{name}: {arg} sets the block layout, a fixed attribute")
        return int.__int__(v)
    if isinstance(v, (tuple, list)):
        return type(v)(_fixed(e, name, arg) for e in v)
    return v


def _geometry(kernel_size, dilation, padding, stride, name) -> dict:
    g = {"kernel_size": kernel_size, "dilation": dilation, "padding": padding,
         "stride": stride}
    g = {k: _fixed(v, name, k) for k, v in g.items()}
    return {"kernel": tuple_n(g["kernel_size"], 2, name, "kernel_size", 1),
            "dilation": tuple_n(g["dilation"], 2, name, "dilation", 1),
            "padding": tuple_n(g["padding"], 2, name, "padding", 0),
            "stride": tuple_n(g["stride"], 2, name, "stride", 1)}


# --- im2col ---------------------------------------------------------------------------
def _im2col_fwd(xp, x, *, kernel, dilation, padding, stride):
    N, C, H, W = x.shape
    idx = _blocks("unfold", H, W, kernel, dilation, padding, stride)
    ph, pw = padding
    if ph or pw:
        x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = xp.take(x.reshape(N, C, -1), xp.asarray(idx), axis=2)
    return cols.reshape(N, C * kernel[0] * kernel[1], -1)


def _im2col_infer(x, *, kernel, dilation, padding, stride):
    shape, dt = x
    if len(shape) != 4:
        raise ValueError(f"unfold: input must be (N, C, H, W), got shape {tuple(shape)}")
    N, C, H, W = shape
    # lenient: the kernel checks the fit when it runs (eager and replay alike), so a replay
    # at a size that does not fit raises unfold's own error
    nh, nw = _grid("unfold", H, W, kernel, dilation, padding, stride, strict=False)
    K = kernel[0] * kernel[1]
    return (N, None if C is None else C * K, None if None in (nh, nw) else nh * nw), dt


def _im2col_vjp(n, g):
    x = n.inputs[0]
    return (_col2im(g, x.shape[2:], n.attrs),)


IM2COL = register(OpDef("im2col", _im2col_fwd, vjp=_im2col_vjp, infer=_im2col_infer,
                        cost=io_cost(), saves=False, complex="holomorphic"))


# --- col2im ---------------------------------------------------------------------------
def _out_hw(cols, srcs, output_size, sizes):
    if not sizes:
        return tuple(output_size)
    from ..graph.sizes import apply_sizes
    return apply_sizes(output_size, sizes, [tuple(cols)] + [tuple(s) for s in srcs])


def _col2im_fwd(xp, cols, *srcs, output_size, kernel, dilation, padding, stride, sizes=()):
    H, W = _out_hw(cols.shape, [s.shape for s in srcs], output_size, sizes)
    _col2im_check(cols.shape, H, W, kernel, dilation, padding, stride)
    idx = xp.asarray(_blocks("fold", H, W, kernel, dilation, padding, stride))
    N, CK, L = cols.shape
    K = kernel[0] * kernel[1]
    C = CK // K
    (ph, pw), Hp, Wp = padding, H + 2 * padding[0], W + 2 * padding[1]
    plane = xp.zeros((N, C, Hp * Wp), dtype=cols.dtype)
    blocks = cols.reshape(N, C, K, L)
    # within one kernel offset the L blocks hit distinct pixels, so a fancy += is exact
    for k in range(K):
        plane[:, :, idx[k * L:(k + 1) * L]] += blocks[:, :, k]
    img = plane.reshape(N, C, Hp, Wp)
    return xp.ascontiguousarray(img[:, :, ph:Hp - ph, pw:Wp - pw])


def _col2im_check(shape, H, W, kernel, dilation, padding, stride):
    nh, nw = _grid("fold", H, W, kernel, dilation, padding, stride)
    K = kernel[0] * kernel[1]
    CK, L = shape[1], shape[2]
    if (CK is not None and CK % K) or (None not in (L, nh, nw) and L != nh * nw):
        raise ValueError(f"fold: input {tuple(shape)} needs C * {K} rows and "
                         f"{'?' if None in (nh, nw) else nh * nw} blocks for output_size "
                         f"{(H, W)}")


def _col2im_infer(cols, *srcs, output_size, kernel, dilation, padding, stride, sizes=()):
    shape, dt = cols
    H, W = _out_hw(shape, [s[0] for s in srcs], output_size, sizes)
    CK = shape[1]       # (the kernel checks the fit when it runs, see _im2col_infer)
    return (shape[0], None if CK is None else CK // (kernel[0] * kernel[1]), H, W), dt


def _col2im_vjp(n, g):
    a = n.attrs
    return (apply(IM2COL, g, kernel=a["kernel"], dilation=a["dilation"], padding=a["padding"],
                  stride=a["stride"]),) + (None,) * (len(n.inputs) - 1)


COL2IM = register(OpDef("col2im", _col2im_fwd, vjp=_col2im_vjp, infer=_col2im_infer,
                        cost=io_cost(), saves=False, complex="holomorphic"))


def _col2im(cols: Tensor, out_hw, geometry: dict) -> Tensor:
    """COL2IM to ``out_hw``; sizes traced from a None dim stay run-time sizes."""
    from ..graph.tracer import TracedSize
    geometry = {k: geometry[k] for k in ("kernel", "dilation", "padding", "stride")}
    if any(isinstance(s, TracedSize) for s in out_hw):
        from ..graph.sizes import lower
        plain, sizes, srcs = lower(out_hw, [cols], 1)
        # the traced values are left out (0), so a trace at other sizes records the same op
        run_time = {p for p, _ in sizes}
        plain = tuple(0 if i in run_time else p for i, p in enumerate(plain))
        return apply(COL2IM, cols, *srcs, output_size=plain, sizes=sizes, **geometry)
    return apply(COL2IM, cols, output_size=tuple(int(s) for s in out_hw), **geometry)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """(N, C, H, W) -> (N, C * kh * kw, L): every sliding kh x kw block as a column (L blocks),
    channel-major as PyTorch's ``unfold``; a convolution is then a matrix product. An
    unbatched (C, H, W) input gives (C * kh * kw, L). Under capture the block grid follows
    dynamic H/W.

    >>> F.unfold(tl.ones(1, 2, 4, 4), 2).shape
    (1, 8, 9)
    """
    x = as_float_or_complex_tensor(input, "unfold")
    if x.ndim == 3:
        return unfold(x.unsqueeze(0), kernel_size, dilation, padding, stride).squeeze(0)
    if x.ndim != 4:
        raise ValueError(f"unfold: input must be (N, C, H, W) or (C, H, W), got shape "
                         f"{tuple(x.shape)}")
    geometry = _geometry(kernel_size, dilation, padding, stride, "unfold")
    _grid("unfold", *(plain(s) for s in x.shape[2:]), **geometry)
    return apply(IM2COL, x, **geometry)


def _sizes2(output_size) -> tuple:
    """``output_size`` as two sizes, TracedSizes kept (they follow a None dim under capture)."""
    if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
        out = (output_size,) * 2
    else:
        try:
            out = tuple(output_size)
        except TypeError:
            raise TypeError(f"fold: output_size must be an int or a tuple of 2 ints, got "
                            f"{output_size!r}") from None
    if len(out) != 2 or any(isinstance(s, bool) or not isinstance(s, (int, np.integer))
                            for s in out):
        raise ValueError(f"fold: output_size must be an int or a tuple of 2 ints, got "
                         f"{output_size!r}")
    values = tuple(plain(s) for s in out)
    if min(values) < 1:
        raise ValueError(f"fold: output_size must be >= 1, got {values}")
    return out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """The adjoint of :func:`unfold`: (N, C * kh * kw, L) -> (N, C, H, W), summing the
    entries that land on the same pixel (PyTorch's ``fold``); an unbatched
    (C * kh * kw, L) input gives (C, H, W). ``output_size`` read from a dynamic dim under
    capture (``x.shape[-2:]``) is computed when the graph runs."""
    x = as_float_or_complex_tensor(input, "fold")
    if x.ndim == 2:
        return fold(x.unsqueeze(0), output_size, kernel_size, dilation, padding,
                    stride).squeeze(0)
    if x.ndim != 3:
        raise ValueError(f"fold: input must be (N, C * kh * kw, L) or (C * kh * kw, L), got "
                         f"shape {tuple(x.shape)}")
    out_hw, geometry = _sizes2(output_size), _geometry(kernel_size, dilation, padding, stride,
                                                       "fold")
    _col2im_check(tuple(plain(s) for s in x.shape), *(plain(s) for s in out_hw), **geometry)
    return _col2im(x, out_hw, geometry)
