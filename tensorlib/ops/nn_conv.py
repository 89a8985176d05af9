"""Convolutions: conv2d and its two gradient ops (input: col2im, weight: im2col + GEMM).

conv1d, conv_transpose1d/2d/3d and depthwise conv3d (one conv2d per kernel depth tap) are
built from these three ops; each takes an unbatched sample too. Dense and grouped conv3d have
their own three ops of the same shape (conv3d, conv3d_input_grad, conv3d_weight_grad: the
``# ---- conv3d ----`` section). The vjps close over the same three ops, so grad of grad works
to any order:
  conv2d(x, w)              -> d/dx: conv2d_input_grad(g, w),  d/dw: conv2d_weight_grad(x, g)
  conv2d_input_grad(g, w)   -> d/dg: conv2d(gg, w),            d/dw: conv2d_weight_grad(gg, g)
  conv2d_weight_grad(x, g)  -> d/dx: conv2d_input_grad(g, gg), d/dg: conv2d(x, gg)
The CPU kernels lay the patches out as a (C*kh*kw, N*Ho*Wo) matrix (Cython im2col)
so each group is one BLAS GEMM.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .._state import state
from ..amp.cast import autocast_call
from .. import _gemm
from .._apply import apply
from .._tensor import Tensor
from ..errors import ShapeError
from ._util import to_tensor
from .nn_util import as_float_tensor, io_cost, same_dtype, tuple_n
from .registry import OpDef, register


# --- geometry ---------------------------------------------------------------------------
def out_size(n: int, k: int, s: int, p0: int, p1: int, d: int) -> int:
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def _hw(stride, padding, dilation):
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = stride, padding, dilation
    return sh, sw, pt, pb, pl, pr, dh, dw


# --- im2col / col2im: NumPy/CuPy versions and the Cython CPU kernels ---------------------
def _im2col_xp(xp, x, kh, kw, stride, padding, dilation, Ho, Wo):
    sh, sw, pt, pb, pl, pr, dh, dw = _hw(stride, padding, dilation)
    N, C = x.shape[:2]
    xpad = xp.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    cols = xp.empty((C, kh, kw, N, Ho, Wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            cols[:, i, j] = xpad[:, :, h0:h0 + sh * (Ho - 1) + 1:sh,
                                 w0:w0 + sw * (Wo - 1) + 1:sw].transpose(1, 0, 2, 3)
    return cols.reshape(C * kh * kw, N * Ho * Wo)


def _col2im_xp(xp, cols, shape, kh, kw, stride, padding, dilation, Ho, Wo):
    sh, sw, pt, pb, pl, pr, dh, dw = _hw(stride, padding, dilation)
    N, C, H, W = shape
    dxp = xp.zeros((N, C, H + pt + pb, W + pl + pr), cols.dtype)
    c6 = cols.reshape(C, kh, kw, N, Ho, Wo)
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            dxp[:, :, h0:h0 + sh * (Ho - 1) + 1:sh,
                w0:w0 + sw * (Wo - 1) + 1:sw] += c6[:, i, j].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(dxp[:, :, pt:pt + H, pl:pl + W])


def _im2col_cpu(xp, x, kh, kw, stride, padding, dilation, Ho, Wo):
    from .. import _ops
    sh, sw, pt, pb, pl, pr, dh, dw = _hw(stride, padding, dilation)
    x = np.ascontiguousarray(x)
    N, C = x.shape[:2]
    out = np.empty((C * kh * kw, N * Ho * Wo), x.dtype)
    if out.size:
        _ops.im2col(x, out, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
    return out


def _col2im_cpu(xp, cols, shape, kh, kw, stride, padding, dilation, Ho, Wo):
    from .. import _ops
    sh, sw, pt, pb, pl, pr, dh, dw = _hw(stride, padding, dilation)
    out = np.empty(shape, cols.dtype)
    if out.size:
        _ops.col2im(np.ascontiguousarray(cols), out, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
    return out


# --- forward and the two gradient kernels ---------------------------------------------------
def _conv_impl(im2col, xp, x, w, *b, stride, padding, dilation, groups):
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Ho = out_size(H, kh, stride[0], padding[0], padding[1], dilation[0])
    Wo = out_size(W, kw, stride[1], padding[2], padding[3], dilation[1])
    cols = im2col(xp, x, kh, kw, stride, padding, dilation, Ho, Wo)
    K, Og = Cg * kh * kw, O // groups
    wm = w.reshape(O, K)
    if groups == 1:
        out2 = xp.matmul(wm, cols)
    else:
        out2 = xp.empty((O, N * Ho * Wo), x.dtype)
        for g in range(groups):
            xp.matmul(wm[g * Og:(g + 1) * Og], cols[g * K:(g + 1) * K],
                      out=out2[g * Og:(g + 1) * Og])
    out = xp.empty((N, O, Ho * Wo), x.dtype)
    src = out2.reshape(O, N, Ho * Wo).transpose(1, 0, 2)
    if b:
        xp.add(src, b[0].reshape(1, O, 1), out=out)
    else:
        out[...] = src
    return out.reshape(N, O, Ho, Wo)


def _transposed_hw(g_hw, k_hw, stride, padding, dilation, output_padding) -> tuple:
    """A transposed convolution's output size from its input's (None stays None): what
    ``conv2d_input_grad`` computes when given ``output_padding`` instead of ``input_hw``,
    so a captured ConvTranspose2d follows its input's spatial dims."""
    pt, pb, pl, pr = padding
    return tuple(None if n is None else (n - 1) * s - p0 - p1 + d * (k - 1) + o + 1
                 for n, k, s, p0, p1, d, o in zip(g_hw, k_hw, stride, (pt, pl), (pb, pr),
                                                   dilation, output_padding))


def _input_grad_impl(col2im, xp, g, w, *, stride, padding, dilation, groups, input_hw=None,
                     output_padding=None):
    if input_hw is None:
        input_hw = _transposed_hw(g.shape[2:], w.shape[2:], stride, padding, dilation,
                                  output_padding)
    N, O, Ho, Wo = g.shape
    _, Cg, kh, kw = w.shape
    C = Cg * groups
    K, Og = Cg * kh * kw, O // groups
    g2 = xp.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(O, N * Ho * Wo)
    wm = w.reshape(O, K)
    if groups == 1:
        cols = xp.matmul(wm.T, g2)
    else:
        cols = xp.empty((C * kh * kw, N * Ho * Wo), g.dtype)
        for gi in range(groups):
            xp.matmul(wm[gi * Og:(gi + 1) * Og].T, g2[gi * Og:(gi + 1) * Og],
                      out=cols[gi * K:(gi + 1) * K])
    return col2im(xp, cols, (N, C) + tuple(input_hw), kh, kw, stride, padding, dilation, Ho, Wo)


def _weight_grad_impl(im2col, xp, x, g, *, stride, padding, dilation, groups, kernel):
    N, O, Ho, Wo = g.shape
    C = x.shape[1]
    kh, kw = kernel
    Cg = C // groups
    K, Og = Cg * kh * kw, O // groups
    cols = im2col(xp, x, kh, kw, stride, padding, dilation, Ho, Wo)
    g2 = xp.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(O, N * Ho * Wo)
    if groups == 1:
        dw = xp.matmul(g2, cols.T)
    else:
        dw = xp.empty((O, K), g.dtype)
        for gi in range(groups):
            xp.matmul(g2[gi * Og:(gi + 1) * Og], cols[gi * K:(gi + 1) * K].T,
                      out=dw[gi * Og:(gi + 1) * Og])
    return dw.reshape(O, Cg, kh, kw)


# --- CPU: the same three ops a few images at a time ---------------------------------------------
# The whole-batch im2col matrix (C*kh*kw, N*Ho*Wo) is 40 MB for W3's second conv at batch 64:
# it streams through memory once when written and again in the GEMM. Chunks of images whose
# columns fit in L2 keep im2col -> GEMM -> col2im cache-resident, need no whole-batch
# temporaries (W6's peak memory) and make re-running im2col for the weight gradient cheap.
# At most MAX_CHUNKS chunks per call all the same: with 2+ BLAS threads on a loaded machine
# every GEMM call can wait a scheduler tick for a worker thread (W3 at 2 threads: 7.7 s a
# step with one GEMM per image), and L3-sized chunks cost nothing measurable at 1 thread.
CHUNK_BYTES = 1 << 20
MAX_CHUNKS = 8
_MIN_IMAGE_HW = 32
# forward and input gradient: below this many output positions per image (a UNet's 7x7
# maps: 49) the per-image GEMM (n = 49, ~3/4 of the 32-wide tile) lost to the chunked GEMM
# over several images (7x7 64->64 at B=64, 1 thread: forward 2.7x -> 1.9x PyTorch, input
# grad 1.3x -> 1.2x); the weight gradient's per-image GEMM (depth Ho*Wo) was not slower
_MIN_IMAGE_HW_FWD = 64
# On AVX2 (the 6 x 16 kernel, about as fast as OpenBLAS) the per-image kernels still won
# where the chunked path pays for its copies (W3's two convolutions, fwd + bwd at batch 64:
# 47 -> 37 ms; 3x3 64->64 at 16-56 maps: forward 0.75-0.9x, input gradient 0.5-0.8x the
# chunked path's time), but not for shallow products over many columns: a forward of
# 3->64 or 16->32 channels (depth 27, 144) at 64x64-112x112 maps took 1.2-1.3x as long
_AVX2_WIDE_MIN_DEPTH = 256
_AVX2_WIDE_COLS = 1024
# stride-1 float32 forwards with at most this many output positions per image take the
# shifted-view GEMMs (_conv_shifted): 7x7 64->64 1.9x -> 1.7x PyTorch, 14x14 96->32
# 1.5x -> 1.4x; from 16x16 up the im2col paths were as fast or faster
_SHIFTED_MAX_HW = 196
# ...except with few (<= 3: 4 too was 8x faster, but tests/kernels/test_conv_small_spatial.py
# pins 4->im2col at 32x32) output channels, at any map size: im2col's (C*kh*kw, HW) columns are
# then written and read once for a GEMM of M <= 3 rows, memory-bound, while the shifted
# GEMMs read the input kh*kw times in place (16->1 at 256x256, 1 thread: 15.6 -> 1.8 ms,
# PyTorch 5 ms; 16->16 there stays on im2col, where the shifted path was 1.3x slower)
_SHIFTED_MAX_O = 3
# input bytes per chunk of images there: the padded input and the output grid stay in L2
SHIFTED_CHUNK_BYTES = 1 << 19
# Large maps (_conv_tiled): where one image's im2col columns exceed this many bytes, the
# float32 kernels unfold a few output rows at a time (TILE_BYTES of columns, in L2) and run
# one GEMM per tile. A whole-image matrix (576 x 65536 floats = 150 MB for 64->64 3x3 at
# 256x256) streams through memory twice, and the GEMM over it packs B from DRAM: 1 thread,
# loaded machine, 256x256 forward 495 -> ~190 ms (PyTorch ~185), 64x64 13 -> ~4 ms
TILE_MIN_BYTES = 4 << 20
TILE_BYTES = 768 << 10
# output positions per tile (per GEMM thread), whatever the depth: below 256 columns the
# GEMM's per-call packing of A dominates, above ~1024 the tile leaves L2
_TILE_MIN_COLS, _TILE_MAX_COLS = 256, 1024
# the kernels whose GEMM takes the tiles: on AVX2 the tiles were no faster than OpenBLAS's
# chunked path for one image at 128x128 and 256x256 (3x3 64->64: 1.00-1.04x its time) and
# 1.25x slower at 56x56, batch 32
TILED_ISAS = ("avx512",)


def _tiled_fits(dtype, groups: int, m: int, k: int, HW: int, rows: int) -> bool:
    """Whether :func:`_conv_tiled` (or the weight gradient's tiles) takes a float32 product
    of ``groups`` GEMMs (m, k) @ (k, tile) per tile: the GEMM of :data:`TILED_ISAS`, one
    image's columns
    (``rows`` x ``HW``) larger than :data:`TILE_MIN_BYTES`, a GEMM the kernel's tile suits."""
    return (_gemm.ISA in TILED_ISAS and dtype == np.float32 and 4 * rows * HW > TILE_MIN_BYTES
            and _gemm.suits(m, min(HW, _TILE_MIN_COLS), k, 0.1, 8)
            and max(rows, HW) <= _gemm.MAX_DIM)


def _tile_plan(rows: int, Ho: int, Wo: int, work: int) -> tuple:
    """(output rows per tile, GEMM threads) for tiles of ``rows`` x (r * Wo) columns;
    ``work`` is the whole call's multiply-adds (threads only from PARALLEL_WORK on)."""
    from .. import _ops
    t = _ops.max_threads() if work >= _gemm.PARALLEL_WORK else 1
    cols = min(max(TILE_BYTES // (4 * rows), _TILE_MIN_COLS), _TILE_MAX_COLS) * t
    return max(1, min(Ho, round(cols / Wo))), t


def _tiles(x, O: int, K: int, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo):
    """The threads for each tile's GEMM, then for each tile of output rows [h0, h0 + r) of
    each image n: (n, h0, r, its im2col columns (C*kh*kw, r*Wo)) in one reused L2-sized
    buffer. A tile is im2col of r rows with the top padding moved up by h0 * sh (the
    kernels bound-check every input row, so any offset is safe)."""
    from .. import _ops
    N, C = x.shape[:2]
    rows = C * kh * kw
    R, t = _tile_plan(rows, Ho, Wo, N * O * K * Ho * Wo)
    yield t
    buf = np.empty(rows * R * Wo, np.float32)
    for n in range(N):
        for h0 in range(0, Ho, R):
            r = min(R, Ho - h0)
            c = _view(buf, rows, r * Wo)
            _ops.im2col(x[n:n + 1], c, kh, kw, sh, sw, pt - h0 * sh, pl, dh, dw, r, Wo)
            yield n, h0, r, c


def _conv_tiled(x, wm, bias, out, groups, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo) -> None:
    """float32 ``out`` (N, O, Ho*Wo) = conv of x (N, C, H, W) with wm (O, C/groups*kh*kw)
    (+ bias), a tile of output rows at a time (as :func:`_tiles`), one GEMM per group
    straight into ``out``."""
    from .. import _ops
    O, K = wm.shape
    # the tiles of :func:`_tiles` in one compiled loop (no per-tile Python calls), the bias
    # added while a tile is in cache
    rows = x.shape[1] * kh * kw
    R, t = _tile_plan(rows, Ho, Wo, x.shape[0] * O * K * Ho * Wo)
    _ops.conv2d_tiled(x, wm, bias, out, np.empty(rows * R * Wo, np.float32), groups, kh,
                      kw, sh, sw, pt, pl, dh, dw, Ho, Wo, R, t)


def _weight_grad_tiled(x, g, gw, groups, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo) -> None:
    """float32 ``gw`` (O, C/groups*kh*kw, zeroed) += g (N, O, Ho*Wo) @ im2col(x)^T, a tile
    of output rows at a time (:func:`_tiles`; the GEMM reads the tile transposed in place)."""
    from .. import _ops
    O, K = gw.shape
    Og = O // groups
    tiles = _tiles(x, O, K, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
    t = next(tiles)
    for n, h0, r, c in tiles:
        src = g[n][:, h0 * Wo:(h0 + r) * Wo]
        for gi in range(groups):
            _ops.sgemm(src[gi * Og:(gi + 1) * Og], c[gi * K:(gi + 1) * K].T,
                       gw[gi * Og:(gi + 1) * Og], 1.0, 1.0, t)


def _chunk(N, K, HW, itemsize):
    b = max(1, CHUNK_BYTES // max(1, K * HW * itemsize), -(-N // MAX_CHUNKS))
    return min(N, b)


def _image_threads(dtype, N, groups, m, n, k, hw: int | None = None,
                   min_hw: int = _MIN_IMAGE_HW) -> int:
    """Threads for the one-image-per-thread float32 kernels (``_ops.conv2d_*images``), whose
    GEMM per image and group is (m, k) @ (k, n); or 0 where the chunked path below serves
    better: other dtypes, no tensorlib GEMM, a GEMM that suits the kernel's tile too badly
    (depthwise weight gradients), few output positions per image (``hw`` < 32: a DCGAN's
    4x4 maps; the chunked path's GEMM spans the images, 2-6x faster there), or fewer images
    than threads for a product worth threading (one image's GEMM then takes them), and on
    AVX2 wide shallow products (below).
    ``min_hw`` is that least ``hw``: the forward and input gradient pass
    ``_MIN_IMAGE_HW_FWD``."""
    if (not _gemm.ENABLED or dtype != np.float32 or (hw is not None and hw < min_hw)
            or not _gemm.suits(m, n, k, 0.1, 8)):
        return 0
    if _gemm.ISA == "avx2" and k < _AVX2_WIDE_MIN_DEPTH and n > _AVX2_WIDE_COLS:
        return 0
    if N * groups * m * n * k < _gemm.PARALLEL_WORK:
        return 1
    from .. import _ops
    t = _ops.max_threads()
    return t if N >= t else 0


def _grouped(a, b, out, subscripts: str) -> None:
    """``out[g] = a[g] @ b[g]`` for every group g: one product per group for few large
    groups; for many small ones (a depthwise convolution: 64 groups of one output channel)
    one einsum over all of them, where a loop of tiny GEMMs cost ~10x PyTorch."""
    G, m, k = a.shape
    n = b.shape[2]
    if G == 1:
        _gemm.matmul(a[0], b[0], out=out[0])
    elif m * n * k >= _gemm.MIN_WORK:
        for gi in range(G):
            _gemm.matmul(a[gi], b[gi], out=out[gi])
    else:
        np.einsum(subscripts, a, b, out=out, optimize=False)


def _view(buf, rows, cols):
    """A C-contiguous (rows, cols) matrix at the start of a flat buffer (the kernels need
    contiguous arrays; the last chunk may be smaller)."""
    return buf[:rows * cols].reshape(rows, cols)


def _as_rows(a, n0, n1, O, HW, buf):
    """g[n0:n1] (B, O, HW) as the (O, B*HW) matrix the GEMMs take (a view when B == 1)."""
    if n1 - n0 == 1:
        return a[n0].reshape(O, HW)
    rows = _view(buf, O, (n1 - n0) * HW)
    np.copyto(rows.reshape(O, n1 - n0, HW), a[n0:n1].reshape(n1 - n0, O, HW).transpose(1, 0, 2))
    return rows


def _depthwise(a, Cg: int, groups: int) -> bool:
    """Whether the direct depthwise loops (``_ops.depthwise_conv2d*``) take this convolution:
    one input channel per group, several groups, float32 or float64."""
    return Cg == 1 and groups > 1 and a.dtype in (np.float32, np.float64)


def _int_kernel(impl, helper):
    """An integer convolution kernel, as PyTorch's CPU one: exact int64 products and sums,
    then a cast to the input dtype, which wraps (mod 2**bits) as PyTorch's result does;
    modular arithmetic makes any accumulation at least that wide give the same bits. NumPy's
    integer matmul (no BLAS) serves: integer images are masks and counts, not networks."""
    def run(*arrays, **attrs):
        dt = arrays[0].dtype
        out = impl(helper, np, *(a.astype(np.int64, copy=False) for a in arrays), **attrs)
        return out.astype(dt, copy=False)
    return run


_conv_int = _int_kernel(_conv_impl, _im2col_xp)
_input_grad_int = _int_kernel(_input_grad_impl, _col2im_xp)
_weight_grad_int = _int_kernel(_weight_grad_impl, _im2col_xp)


def _nhwc(a) -> np.ndarray | None:
    """A channels_last (N, C, H, W) array as its C-contiguous (N, H, W, C) view; None for
    any other layout, and for one that is C-contiguous too (a size-1 C or H*W: PyTorch keeps
    those contiguous)."""
    if a.ndim != 4 or a.flags.c_contiguous:
        return None
    v = a.transpose(0, 2, 3, 1)
    return v if v.flags.c_contiguous else None


def _pointwise(stride, padding, dilation, groups, kernel) -> bool:
    """A 1x1 convolution that is one GEMM over the positions: unit stride, no padding."""
    return (tuple(kernel) == (1, 1) and groups == 1 and tuple(stride) == (1, 1)
            and not any(padding))


# channels_last 1x1 convolutions: positions x channels is already the GEMM's matrix, so
# the three ops are one product each on the NHWC views, no copies to C order and back,
# and the output stays channels_last as PyTorch's does
def _conv_nhwc_1x1(x, w, b):
    xh = _nhwc(x)
    N, H, W, C = xh.shape
    O = w.shape[0]
    out = _gemm.matmul(xh.reshape(N * H * W, C), np.ascontiguousarray(w.reshape(O, C).T))
    if b:
        out += b[0]
    return out.reshape(N, H, W, O).transpose(0, 3, 1, 2)


def _conv_cpu(x, w, *b, stride, padding, dilation, groups):
    from .. import _ops
    if x.dtype.kind in "iu":
        return _conv_int(x, w, *b, stride=stride, padding=padding, dilation=dilation,
                         groups=groups)
    if (x.size and w.size and _pointwise(stride, padding, dilation, groups, w.shape[2:])
            and _nhwc(x) is not None):
        return _conv_nhwc_1x1(x, w, b)
    sh, sw, pt, pb, pl, pr, dh, dw = _hw(stride, padding, dilation)
    x = np.ascontiguousarray(x)
    w = np.ascontiguousarray(w)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Ho, Wo = out_size(H, kh, sh, pt, pb, dh), out_size(W, kw, sw, pl, pr, dw)
    HW, K, Og = Ho * Wo, Cg * kh * kw, O // groups
    out = np.empty((N, O, HW), x.dtype)
    if out.size == 0:
        return out.reshape(N, O, Ho, Wo)
    wm = w.reshape(O, K)
    if groups == 1 and HW == 1 and H == kh and W == kw and pt == pb == pl == pr == 0:
        # the kernel covers the whole map (a DCGAN latent layer's input gradient, a
        # "fully connected" conv): one product, no im2col (5-11x faster at 4x4 maps)
        _gemm.matmul(x.reshape(N, K), wm.T, out=out.reshape(N, O))
        if b:
            out += b[0].reshape(1, O, 1)
        return out.reshape(N, O, Ho, Wo)
    if _depthwise(x, Cg, groups):
        _ops.depthwise_conv2d(x, wm, np.ascontiguousarray(b[0]) if b else None,
                              out.reshape(N, O, Ho, Wo), Og, kh, kw, sh, sw, pt, pl, dh, dw)
        return out.reshape(N, O, Ho, Wo)
    if _shifted_fits(x.dtype, groups, sh, sw, pt, pb, pl, pr, dh, dw, kh, kw, H, W, HW, O):
        _conv_shifted(x, w, b[0] if b else None, out.reshape(N, O, Ho, Wo), pt, pb, pl, pr,
                      dh, dw)
        return out.reshape(N, O, Ho, Wo)
    if Og > 1 and _tiled_fits(x.dtype, groups, Og, K, HW, C * kh * kw):
        _conv_tiled(x, wm, np.ascontiguousarray(b[0]) if b else None, out, groups, kh, kw,
                    sh, sw, pt, pl, dh, dw, Ho, Wo)
        return out.reshape(N, O, Ho, Wo)
    # one output channel per group: the chunked path's einsum over all groups
    t = (_image_threads(x.dtype, N, groups, Og, HW, K, HW, _MIN_IMAGE_HW_FWD)
         if Og > 1 or groups == 1 else 0)
    if t:
        _gemm.claim_threads()
        _ops.conv2d_images(x, wm, np.ascontiguousarray(b[0]) if b else None, out,
                           np.empty((t, C * kh * kw * HW), np.float32), groups, kh, kw, sh, sw,
                           pt, pl, dh, dw, Ho, Wo)
        return out.reshape(N, O, Ho, Wo)
    B = _chunk(N, C * kh * kw, HW, x.itemsize)
    cols = np.empty(C * kh * kw * B * HW, x.dtype)
    tmp = np.empty(O * B * HW, x.dtype)
    bias = b[0].reshape(1, O, 1) if b else None
    for n0 in range(0, N, B):
        n1 = min(n0 + B, N)
        nb = (n1 - n0) * HW
        c = _view(cols, C * kh * kw, nb)
        _ops.im2col(x[n0:n1], c, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
        if n1 - n0 == 1 and groups == 1:
            _gemm.matmul(wm, c, out=out[n0])
            continue
        t = _view(tmp, O, nb)
        _grouped(wm.reshape(groups, Og, K), c.reshape(groups, K, nb), t.reshape(groups, Og, nb),
                 "gok,gkp->gop")
        np.copyto(out[n0:n1], t.reshape(O, n1 - n0, HW).transpose(1, 0, 2))
    if bias is not None:
        out += bias
    return out.reshape(N, O, Ho, Wo)


def _shifted_fits(dtype, groups, sh, sw, pt, pb, pl, pr, dh, dw, kh, kw, H, W, HW,
                  O: int | None = None) -> bool:
    """Whether :func:`_conv_shifted` takes a forward: float32 on tensorlib's GEMM, no groups,
    stride 1, a kernel more than 1 tall and wide (1-D convolutions, height-1 kernels: the
    im2col path was ~1.2x faster at L=128), few output positions per image (AVX-512 only:
    on AVX2 W3's 14x14 32->64 5x5 forward took 28 ms against the per-image path's 12) or few
    (``O``) output channels (16->2 at 256x256 on AVX2: 0.5x the im2col path's time), and
    padding
    that the shared zero gaps between rows (and images) cover: each gap is
    max(pl, pr) columns (max(pt, pb) rows), so the output rows (Wo columns) must fit in a
    padded row of W + max(pl, pr)."""
    return (_gemm.ENABLED and dtype == np.float32 and groups == 1 and sh == sw == 1
            and kh > 1 and kw > 1
            and ((HW <= _SHIFTED_MAX_HW and _gemm.ISA == "avx512")
                 or (O is not None and O <= _SHIFTED_MAX_O))
            and min(pl, pr) <= dw * (kw - 1) and min(pt, pb) <= dh * (kh - 1)
            and max(H + pt + pb, W + pl + pr) <= _gemm.MAX_DIM)


def _conv_shifted(x, w, bias, out, pt, pb, pl, pr, dh, dw) -> None:
    """A stride-1 float32 convolution without im2col: ``out`` (N, O, Ho, Wo) = the sum over
    the kh*kw taps of w[:, :, i, j] (O, C) @ a shifted view of the input.

    The input is copied once into a (C, L) matrix of zero-padded images, laid out so that
    output position q reads input position q + i*dh*Wq + j*dw for tap (i, j) (row stride
    Wq = W + max(pl, pr), image stride Hq*Wq, Hq = H + max(pt, pb); one zero gap serves as
    the right padding of a row and the left padding of the next). Each tap is then one GEMM
    whose B is a column slice of that matrix, read in place by the GEMM's packing (which
    im2col's columns are copied through anyway). Positions in the gaps are computed and
    dropped: Hq*Wq / (Ho*Wo) of the work (1.3x at 7x7), less than im2col's copy costs at
    small maps. Chunks of images keep the matrix and the output grid in L2."""
    _gemm.claim_threads()
    from .. import _ops
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    Ho, Wo = out.shape[2:]
    Wq, Hq = W + max(pl, pr), H + max(pt, pb)
    P = Hq * Wq
    base = pt * Wq + pl         # zeros before the first image: its top and left padding
    B = max(1, min(N, SHIFTED_CHUNK_BYTES // max(1, 4 * C * P)))
    span = (kh - 1) * dh * Wq + (kw - 1) * dw
    xq = np.zeros((C, max((B - 1) * P + (Ho - 1) * Wq + Wo + span, base + B * P)), x.dtype)
    grid = np.empty((O, B * P), x.dtype)
    taps = [(w[:, :, i, j], i * dh * Wq + j * dw) for i in range(kh) for j in range(kw)]
    for n0 in range(0, N, B):
        nb = min(B, N - n0)
        # only the images are written: the gaps stay zero, and a smaller last chunk's valid
        # outputs never read the earlier chunk's images left past it
        xq[:, base:base + nb * P].reshape(C, nb, Hq, Wq)[:, :, :H, :W] = \
            x[n0:n0 + nb].transpose(1, 0, 2, 3)
        Q = (nb - 1) * P + (Ho - 1) * Wq + Wo     # up to the chunk's last output position
        for t, (wt, off) in enumerate(taps):
            _ops.sgemm(wt, xq[:, off:off + Q], grid[:, :Q], 1.0, 1.0 if t else 0.0, 1)
        src = grid[:, :nb * P].reshape(O, nb, Hq, Wq)[:, :, :Ho, :Wo].transpose(1, 0, 2, 3)
        if bias is None:
            np.copyto(out[n0:n0 + nb], src)
        else:
            np.add(src, bias.reshape(1, O, 1, 1), out=out[n0:n0 + nb])


def _input_grad_cpu(g, w, *, stride, padding, dilation, groups, input_hw=None,
                    output_padding=None):
    from .. import _ops
    if g.dtype.kind in "iu":
        return _input_grad_int(g, w, stride=stride, padding=padding, dilation=dilation,
                               groups=groups, input_hw=input_hw, output_padding=output_padding)
    gh = _nhwc(g) if g.size and w.size else None
    if gh is not None and _pointwise(stride, padding, dilation, groups, w.shape[2:]) and (
            input_hw is None or tuple(input_hw) == g.shape[2:]):
        N, H, W, O = gh.shape
        dx = _gemm.matmul(gh.reshape(N * H * W, O), np.ascontiguousarray(w.reshape(O, -1)))
        return dx.reshape(N, H, W, -1).transpose(0, 3, 1, 2)
    if input_hw is None:
        input_hw = _transposed_hw(g.shape[2:], w.shape[2:], stride, padding, dilation,
                                  output_padding)
    sh, sw, pt, pb, pl, pr, dh, dw = _hw(stride, padding, dilation)
    g = np.ascontiguousarray(g)
    w = np.ascontiguousarray(w)
    N, O, Ho, Wo = g.shape
    _, Cg, kh, kw = w.shape
    C, HW, K, Og = Cg * groups, Ho * Wo, Cg * kh * kw, O // groups
    dx = np.empty((N, C) + tuple(input_hw), g.dtype)
    if dx.size == 0:
        return dx
    if g.size == 0:
        dx.fill(0)
        return dx
    wm = w.reshape(O, K)
    if _depthwise(g, Cg, groups):
        _ops.depthwise_conv2d_input_grad(g, wm, dx, Og, kh, kw, sh, sw, pt, pl, dh, dw)
        return dx
    H, W = dx.shape[2:]
    if (sh == sw == 1 and Cg > 1
            and _tiled_fits(g.dtype, groups, Cg, Og * kh * kw, H * W, O * kh * kw)):
        # at stride 1 the input gradient is the forward conv of g with each group's kernel
        # flipped and its in/out channels swapped, padded dh*(kh-1) - pt on top (any sign)
        wt = w.reshape(groups, Og, Cg, kh, kw)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
        _conv_tiled(g, np.ascontiguousarray(wt).reshape(C, Og * kh * kw), None,
                    dx.reshape(N, C, H * W), groups, kh, kw, 1, 1, dh * (kh - 1) - pt,
                    dw * (kw - 1) - pl, dh, dw, H, W)
        return dx
    t = _image_threads(g.dtype, N, groups, K, HW, Og, HW, _MIN_IMAGE_HW_FWD)
    if t:
        _gemm.claim_threads()
        _ops.conv2d_input_grad_images(g.reshape(N, O, HW), wm, dx,
                                      np.empty((t, C * kh * kw * HW), np.float32), groups, kh,
                                      kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
        return dx
    B = _chunk(N, C * kh * kw, HW, g.itemsize)
    cols = np.empty(C * kh * kw * B * HW, g.dtype)
    gbuf = np.empty(O * B * HW, g.dtype) if B > 1 else None
    for n0 in range(0, N, B):
        n1 = min(n0 + B, N)
        nb = (n1 - n0) * HW
        g2 = _as_rows(g, n0, n1, O, HW, gbuf)
        c = _view(cols, C * kh * kw, nb)
        _grouped(wm.reshape(groups, Og, K).transpose(0, 2, 1), g2.reshape(groups, Og, nb),
                 c.reshape(groups, K, nb), "gko,gop->gkp")
        _ops.col2im(c, dx[n0:n1], kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
    return dx


def _weight_grad_cpu(x, g, *, stride, padding, dilation, groups, kernel):
    from .. import _ops
    if x.dtype.kind in "iu":
        return _weight_grad_int(x, g, stride=stride, padding=padding, dilation=dilation,
                                groups=groups, kernel=kernel)
    if (x.size and g.size and _pointwise(stride, padding, dilation, groups, kernel)
            and _nhwc(x) is not None and _nhwc(g) is not None):
        xh, gh = _nhwc(x), _nhwc(g)
        gw = _gemm.matmul(gh.reshape(-1, gh.shape[3]).T, xh.reshape(-1, xh.shape[3]))
        return gw.reshape(gw.shape + (1, 1))
    sh, sw, pt, pb, pl, pr, dh, dw = _hw(stride, padding, dilation)
    x = np.ascontiguousarray(x)
    g = np.ascontiguousarray(g)
    N, O, Ho, Wo = g.shape
    C = x.shape[1]
    kh, kw = kernel
    Cg, HW = C // groups, Ho * Wo
    K, Og = Cg * kh * kw, O // groups
    gw = np.zeros((O, K), g.dtype)
    if N * HW == 0 or gw.size == 0:
        return gw.reshape(O, Cg, kh, kw)
    if _depthwise(x, Cg, groups):
        _ops.depthwise_conv2d_weight_grad(x, g, gw, Og, kh, kw, sh, sw, pt, pl, dh, dw)
        return gw.reshape(O, Cg, kh, kw)
    if Og > 1 and _tiled_fits(x.dtype, groups, Og, K, HW, C * kh * kw):
        _weight_grad_tiled(x, g.reshape(N, O, HW), gw, groups, kh, kw, sh, sw, pt, pl, dh, dw,
                           Ho, Wo)
        return gw.reshape(O, Cg, kh, kw)
    t = _image_threads(x.dtype, N, groups, Og, K, HW, HW)
    if t:
        _gemm.claim_threads()
        parts = np.zeros((t, O, K), np.float32)
        _ops.conv2d_weight_grad_images(x, g.reshape(N, O, HW), parts,
                                       np.empty((t, C * kh * kw * HW), np.float32), groups, kh,
                                       kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
        return (parts[0] if t == 1 else parts.sum(axis=0)).reshape(O, Cg, kh, kw)
    B = _chunk(N, C * kh * kw, HW, x.itemsize)
    cols = np.empty(C * kh * kw * B * HW, x.dtype)
    gbuf = np.empty(O * B * HW, g.dtype) if B > 1 else None
    tmp = np.empty((O, K), g.dtype)
    for n0 in range(0, N, B):
        n1 = min(n0 + B, N)
        nb = (n1 - n0) * HW
        c = _view(cols, C * kh * kw, nb)
        _ops.im2col(x[n0:n1], c, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
        g2 = _as_rows(g, n0, n1, O, HW, gbuf)
        dst = gw if n0 == 0 else tmp
        _grouped(g2.reshape(groups, Og, nb), c.reshape(groups, K, nb).transpose(0, 2, 1),
                 dst.reshape(groups, Og, K), "gop,gpk->gok")
        if n0:
            gw += tmp
    return gw.reshape(O, Cg, kh, kw)


def _geo(attrs):
    return {k: attrs[k] for k in ("stride", "padding", "dilation", "groups")}


def _conv_vjp(n, g):
    x, w = n.inputs[0], n.inputs[1]
    geo = _geo(n.attrs)
    gx = apply(CONV2D_INPUT_GRAD, g, w, input_hw=tuple(x.shape[2:]), **geo) if x._rg else None
    gw = apply(CONV2D_WEIGHT_GRAD, x, g, kernel=tuple(w.shape[2:]), **geo) if w._rg else None
    if len(n.inputs) == 2:
        return gx, gw
    gb = g.sum(axis=(0, 2, 3)) if n.inputs[2]._rg else None
    return gx, gw, gb


def _input_grad_vjp(n, gg):
    g, w = n.inputs
    geo = _geo(n.attrs)
    dg = apply(CONV2D, gg, w, **geo) if g._rg else None
    dw = apply(CONV2D_WEIGHT_GRAD, gg, g, kernel=tuple(w.shape[2:]), **geo) if w._rg else None
    return dg, dw


def _weight_grad_vjp(n, gg):
    x, g = n.inputs
    geo = _geo(n.attrs)
    dx = apply(CONV2D_INPUT_GRAD, g, gg, input_hw=tuple(x.shape[2:]), **geo) if x._rg else None
    dg = apply(CONV2D, x, gg, **geo) if g._rg else None
    return dx, dg


def _conv_infer(x, w, *b, stride, padding, dilation, groups):
    (N, _, H, W), (O, _, kh, kw) = x[0], w[0]
    Ho = None if H is None else out_size(H, kh, stride[0], padding[0], padding[1], dilation[0])
    Wo = None if W is None else out_size(W, kw, stride[1], padding[2], padding[3], dilation[1])
    return (N, O, Ho, Wo), x[1]


def _conv_flops(i, o, **a):
    (_, Cg, kh, kw) = i[1][0]
    return 2 * math.prod(d or 1 for d in o[0][0]) * Cg * kh * kw


def _input_grad_infer(g, w, *, groups, input_hw=None, output_padding=None, **attrs):
    if input_hw is None:
        input_hw = _transposed_hw(g[0][2:], w[0][2:], attrs["stride"], attrs["padding"],
                                  attrs["dilation"], output_padding)
    return (g[0][0], w[0][1] * groups) + tuple(input_hw), g[1]


def _weight_grad_infer(x, g, *, kernel, groups, **attrs):
    return (g[0][1], x[0][1] // groups) + tuple(kernel), x[1]


def _bwd_flops(i, o, **a):
    return 2 * math.prod(d or 1 for d in i[0][0]) * math.prod(d or 1 for d in i[1][0][1:])


def _make(name, impl, helper_xp, cpu, vjp, infer, flops, onnx=None):
    return register(OpDef(
        name, functools.partial(impl, helper_xp), kernels={"cpu": cpu},
        vjp=vjp, infer=infer, cost=io_cost(flops), onnx=onnx))


CONV2D = _make("conv2d", _conv_impl, _im2col_xp, _conv_cpu, _conv_vjp, _conv_infer,
               _conv_flops, onnx="Conv")
CONV2D_INPUT_GRAD = _make("conv2d_input_grad", _input_grad_impl, _col2im_xp, _input_grad_cpu,
                          _input_grad_vjp, _input_grad_infer, _bwd_flops, onnx="ConvTranspose")
CONV2D_WEIGHT_GRAD = _make("conv2d_weight_grad", _weight_grad_impl, _im2col_xp,
                           _weight_grad_cpu, _weight_grad_vjp, _weight_grad_infer, _bwd_flops)


# ---- conv3d ----
# conv3d was one conv2d per kernel depth tap over copies of the input's depth slices (permuted
# to (N*Do, C, H, W)), the taps' outputs summed and permuted back, and in the backward the
# slices' gradients scattered back tap by tap: 1.65-1.8x PyTorch at 1 thread on the trial's
# 16->32 k3 (2, 16, 8, 32, 32). These three ops work on a depth-major copy of the input, a
# tile of output depths (or of output rows of one depth) at a time: each depth tap's
# slices are unfolded by the 2-D im2col kernel into L2-sized columns and its GEMM adds into
# the tile of the output (GEMM beta = 1), so no summed temporaries or scatters remain; the
# weight gradient accumulates per tap the same way.
TILE3_BYTES = 4 << 20


def _geo3(stride, padding, dilation):
    (sd, sh, sw), (pd, _, pt, _, pl, _), (dd, dh, dw) = stride, padding, dilation
    return sd, sh, sw, pd, pt, pl, dd, dh, dw


def _out3(shape, kernel, stride, padding, dilation) -> tuple:
    return tuple(out_size(n, k, s, padding[2 * i], padding[2 * i + 1], d)
                 for i, (n, k, s, d) in enumerate(zip(shape, kernel, stride, dilation)))


def _w3(w, groups):
    """(O, C/groups, kd, kh, kw) -> (kd, O, C/groups*kh*kw): one GEMM operand per depth tap."""
    O, Cg, kd, kh, kw = w.shape
    return np.ascontiguousarray(w.transpose(2, 0, 1, 3, 4)).reshape(kd, O, Cg * kh * kw)


def _tiles3(Do, Ho, Wo, K, itemsize, span):
    """(d0, d1, h0, r): output depths [d0, d1) x rows [h0, h0 + r), whole depths where they
    fit TILE3_BYTES of columns (a contiguous run of each output channel either way) with the
    ``span`` extra input depths that the taps of a tile read past its own."""
    cols = max(TILE3_BYTES // (itemsize * K), _TILE_MIN_COLS)
    P = Ho * Wo
    if P * (1 + span) <= cols:
        B = max(1, cols // P - span)
        return [(d0, min(Do, d0 + B), 0, Ho) for d0 in range(0, Do, B)]
    R = max(1, min(Ho, cols // ((1 + span) * Wo)))
    return [(d, d + 1, h0, min(R, Ho - h0)) for d in range(Do) for h0 in range(0, Ho, R)]


def _tap_tiles(xt, n, tile, buf, kernel, stride, front, dilation, Wo):
    """For each depth tap t of one tile of image n whose depths reach the input: (t, lo, hi,
    cols): the output depths [lo, hi) it serves and their im2col columns
    (C*kh*kw, (hi-lo)*r*Wo), a view into ``buf``. ``xt`` is the input depth-major,
    (N, D, C, H, W) C-contiguous, so that depth slices are one (images, C, H, W) block for
    the 2-D im2col kernel. At depth stride 1 the taps' slices overlap: the tile's input
    depths are unfolded once and each tap's columns are a window of them (kd x less im2col)."""
    from .. import _ops
    d0, d1, h0, r = tile
    kd, kh, kw = kernel
    sd, sh, sw = stride
    pd, pt, pl = front
    dd, dh, dw = dilation
    D, C = xt.shape[1:3]
    q = r * Wo
    rng = [(t, t * dd - pd) + _depth_range(d0, d1, t * dd - pd, sd, D) for t in range(kd)]
    rng = [v for v in rng if v[2] < v[3]]
    if not rng:
        return
    if sd == 1:
        i0 = min(lo + off for _, off, lo, _ in rng)
        i1 = max(hi + off for _, off, _, hi in rng)
        cols = _view(buf, C * kh * kw, (i1 - i0) * q)
        _ops.im2col(xt[n, i0:i1], cols, kh, kw, sh, sw, pt - h0 * sh, pl, dh, dw, r, Wo)
        for t, off, lo, hi in rng:
            yield t, lo, hi, cols[:, (lo + off - i0) * q:(hi + off - i0) * q]
        return
    for t, off, lo, hi in rng:
        src = xt[n, lo * sd + off:(hi - 1) * sd + off + 1:sd]
        if hi - lo > 1:
            src = np.ascontiguousarray(src)
        cols = _view(buf, C * kh * kw, (hi - lo) * q)
        _ops.im2col(src, cols, kh, kw, sh, sw, pt - h0 * sh, pl, dh, dw, r, Wo)
        yield t, lo, hi, cols


def _depth_range(d0, d1, off, sd, D):
    """The output depths in [d0, d1) whose input depth d*sd + off lies in [0, D)."""
    return max(d0, -(off // sd)), min(d1, (D - 1 - off) // sd + 1)


def _mm(a, b, c, beta: float, threads: int) -> None:
    """c = a @ b (+ c where beta is 1) for views of any strides."""
    # (not on AVX2: conv3d's products were 1.1-1.5x slower on its kernel than on OpenBLAS)
    if c.dtype == np.float32 and _gemm.ISA == "avx512":
        from .. import _ops
        _ops.sgemm(a, b, c, 1.0, beta, threads)
    elif beta:
        c += a @ b
    else:
        np.matmul(a, b, out=c)


def _threads3(work: int) -> int:
    from .. import _ops
    return _ops.max_threads() if work >= _gemm.PARALLEL_WORK else 1


def _pointwise3(kernel, stride, front, in_dhw, out_dhw) -> bool:
    """A 1x1x1 convolution with unit stride and no padding: the image (C, D*H*W) itself is
    the GEMM's matrix (no depth-major copy, no im2col)."""
    return (tuple(kernel) == (1, 1, 1) and tuple(stride) == (1, 1, 1) and not any(front)
            and tuple(in_dhw) == tuple(out_dhw))


def _depth_major(x):
    """(N, C, D, H, W) -> a C-contiguous (N, D, C, H, W) copy."""
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3, 4))


def _tile_buf(tiles, rows, Wo, dtype, span):
    return np.empty(rows * max((d1 - d0 + span) * r * Wo for d0, d1, _, r in tiles), dtype)


def _span(kernel, stride, dilation) -> int:
    """The extra input depths one tile's taps read at depth stride 1 (else 0: each tap is
    unfolded on its own)."""
    return dilation[0] * (kernel[0] - 1) if stride[0] == 1 else 0


def _conv3d_into(x, wt, out, groups, kernel, stride, front, dilation, out_dhw) -> None:
    """out (N, O, Do*Ho*Wo) = conv3d of x (N, C, D, H, W) with wt (:func:`_w3`), ``front``
    the padding before each dim (any sign: the im2col kernels bound-check every offset):
    each tile's taps accumulated (GEMM beta = 1) into the output, which stays in cache."""
    N, C = x.shape[:2]
    kd, O, K = wt.shape
    Do, Ho, Wo = out_dhw
    Og, P = O // groups, Ho * Wo
    thr = _threads3(N * O * K * kd * Do * P)
    if _pointwise3(kernel, stride, front, x.shape[2:], out_dhw):
        for n in range(N):
            xn = x[n].reshape(C, -1)
            for gi in range(groups):
                _mm(wt[0, gi * Og:(gi + 1) * Og], xn[gi * K:(gi + 1) * K],
                    out[n, gi * Og:(gi + 1) * Og], 0.0, thr)
        return
    xt = _depth_major(x)
    span = _span(kernel, stride, dilation)
    tiles = _tiles3(Do, Ho, Wo, C * kernel[1] * kernel[2], x.itemsize, span)
    buf = _tile_buf(tiles, C * kernel[1] * kernel[2], Wo, x.dtype, span)
    for tile in tiles:
        d0, d1, h0, r = tile
        q = r * Wo
        c0 = d0 * P + h0 * Wo
        for n in range(N):
            dst = out[n, :, c0:c0 + (d1 - d0) * q]
            fresh = True
            for t, lo, hi, cols in _tap_tiles(xt, n, tile, buf, kernel, stride, front, dilation,
                                              Wo):
                if fresh and (lo, hi) != (d0, d1):
                    dst[...] = 0
                    fresh = False
                for gi in range(groups):
                    _mm(wt[t, gi * Og:(gi + 1) * Og], cols[gi * K:(gi + 1) * K],
                        dst[gi * Og:(gi + 1) * Og, (lo - d0) * q:(hi - d0) * q],
                        0.0 if fresh else 1.0, thr)
                fresh = False
            if fresh:
                dst[...] = 0


def _conv3d_cpu(x, w, *b, stride, padding, dilation, groups):
    if x.dtype.kind in "iu":
        return _conv3d_int(x, w, *b, stride=stride, padding=padding, dilation=dilation,
                           groups=groups)
    N, O = x.shape[0], w.shape[0]
    dhw = _out3(x.shape[2:], w.shape[2:], stride, padding, dilation)
    out = np.empty((N, O, math.prod(dhw)), x.dtype)
    if out.size:
        sd, sh, sw, pd, pt, pl, dd, dh, dw = _geo3(stride, padding, dilation)
        _conv3d_into(x, _w3(w, groups), out, groups, w.shape[2:], (sd, sh, sw), (pd, pt, pl),
                     (dd, dh, dw), dhw)
        if b:
            out += b[0].reshape(1, O, 1)
    return out.reshape((N, O) + dhw)


def _conv3d_input_grad_cpu(g, w, *, stride, padding, dilation, groups, input_dhw):
    if g.dtype.kind in "iu":
        return _conv3d_input_grad_int(g, w, stride=stride, padding=padding, dilation=dilation,
                                      groups=groups, input_dhw=input_dhw)
    from .. import _ops
    N, O, Do, Ho, Wo = g.shape
    _, Cg, kd, kh, kw = w.shape
    C, Og = Cg * groups, O // groups
    D, H, W = input_dhw
    if N * C * D * H * W == 0 or g.size == 0:
        return np.zeros((N, C, D, H, W), g.dtype)
    sd, sh, sw, pd, pt, pl, dd, dh, dw = _geo3(stride, padding, dilation)
    if sd == sh == sw == 1:
        # at stride 1 the input gradient is the forward conv of g with each group's kernel
        # flipped and its in/out channels swapped, padded d*(k-1) - p in front (any sign)
        dx = np.empty((N, C, D, H, W), g.dtype)
        wf = w.reshape(groups, Og, Cg, kd, kh, kw)[..., ::-1, ::-1, ::-1]
        wf = wf.transpose(0, 2, 1, 3, 4, 5).reshape(C, Og, kd, kh, kw)
        _conv3d_into(g, _w3(wf, groups), dx.reshape(N, C, D * H * W), groups, (kd, kh, kw),
                     (1, 1, 1), (dd * (kd - 1) - pd, dh * (kh - 1) - pt, dw * (kw - 1) - pl),
                     (dd, dh, dw), (D, H, W))
        return dx
    # strided: each tap's columns W_t^T @ g over the output depths that reach the input,
    # scattered by col2im into a scratch of those depth slices and added into dx, kept
    # depth-major so that the slices are whole (C, H, W) blocks
    wt = _w3(w, groups)
    K, P = Cg * kh * kw, Ho * Wo
    thr = _threads3(N * O * K * kd * Do * P)
    dxt = np.zeros((N, D, C, H, W), g.dtype)
    B = max(1, max(TILE3_BYTES // (g.itemsize * C * kh * kw), _TILE_MIN_COLS) // P)
    buf = np.empty(C * kh * kw * min(B, Do) * P, g.dtype)
    tmp = np.empty((min(B, Do), C, H, W), g.dtype)
    g3 = g.reshape(N, O, Do * P)
    for d0 in range(0, Do, B):
        d1 = min(Do, d0 + B)
        for n in range(N):
            for t in range(kd):
                off = t * dd - pd
                lo, hi = _depth_range(d0, d1, off, sd, D)
                if lo >= hi:
                    continue
                cols = _view(buf, C * kh * kw, (hi - lo) * P)
                for gi in range(groups):
                    _mm(wt[t, gi * Og:(gi + 1) * Og].T,
                        g3[n, gi * Og:(gi + 1) * Og, lo * P:hi * P], cols[gi * K:(gi + 1) * K],
                        0.0, thr)
                s = tmp[:hi - lo]
                _ops.col2im(cols, s, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo)
                dst = dxt[n, lo * sd + off:(hi - 1) * sd + off + 1:sd]
                np.add(dst, s, out=dst)
    return np.ascontiguousarray(dxt.transpose(0, 2, 1, 3, 4))


def _conv3d_weight_grad_cpu(x, g, *, stride, padding, dilation, groups, kernel):
    if x.dtype.kind in "iu":
        return _conv3d_weight_grad_int(x, g, stride=stride, padding=padding, dilation=dilation,
                                       groups=groups, kernel=kernel)
    g = np.ascontiguousarray(g)
    N, O, Do, Ho, Wo = g.shape
    C = x.shape[1]
    kd, kh, kw = kernel
    Cg, Og, P = C // groups, O // groups, Ho * Wo
    K = Cg * kh * kw
    gw = np.zeros((kd, O, K), g.dtype)
    if g.size and gw.size:
        sd, sh, sw, pd, pt, pl, dd, dh, dw = _geo3(stride, padding, dilation)
        g3 = g.reshape(N, O, Do * P)
        thr = _threads3(N * O * K * kd * Do * P)
        if _pointwise3(kernel, (sd, sh, sw), (pd, pt, pl), x.shape[2:], (Do, Ho, Wo)):
            x = np.ascontiguousarray(x)
            for n in range(N):
                xn = x[n].reshape(C, -1)
                for gi in range(groups):
                    _mm(g3[n, gi * Og:(gi + 1) * Og], xn[gi * K:(gi + 1) * K].T,
                        gw[0, gi * Og:(gi + 1) * Og], 1.0, thr)
            return gw.reshape(O, Cg, 1, 1, 1)
        xt = _depth_major(x)
        span = _span(kernel, stride, dilation)
        tiles = _tiles3(Do, Ho, Wo, C * kh * kw, x.itemsize, span)
        buf = _tile_buf(tiles, C * kh * kw, Wo, x.dtype, span)
        for tile in tiles:
            d0, d1, h0, r = tile
            q = r * Wo
            c0 = d0 * P + h0 * Wo
            for n in range(N):
                for t, lo, hi, cols in _tap_tiles(xt, n, tile, buf, kernel, (sd, sh, sw),
                                                  (pd, pt, pl), (dd, dh, dw), Wo):
                    src = g3[n, :, c0 + (lo - d0) * q:c0 + (hi - d0) * q]
                    for gi in range(groups):
                        _mm(src[gi * Og:(gi + 1) * Og], cols[gi * K:(gi + 1) * K].T,
                            gw[t, gi * Og:(gi + 1) * Og], 1.0, thr)
    return np.ascontiguousarray(gw.reshape(kd, O, Cg, kh, kw).transpose(1, 2, 0, 3, 4))


# the generic (any array module; integer) versions: one 2-D op per depth tap on the depth
# slices folded into the batch
def _depth_slices(xp, x, t, Do, sd, pd, dd):
    """(N*Do, C, H, W): x's depth slices that tap t reads (zeros in the padding)."""
    N, C, D, H, W = x.shape
    xpad = xp.pad(x, ((0, 0), (0, 0), (pd, max(0, (Do - 1) * sd + (dd * t) - pd - D + 1)),
                      (0, 0), (0, 0)))
    xs = xpad[:, :, t * dd:t * dd + (Do - 1) * sd + 1:sd]
    return xp.ascontiguousarray(xs.transpose(0, 2, 1, 3, 4)).reshape(N * Do, C, H, W)


def _g2(xp, g):
    N, O, Do, Ho, Wo = g.shape
    return xp.ascontiguousarray(g.transpose(0, 2, 1, 3, 4)).reshape(N * Do, O, Ho, Wo)


def _conv3d_impl(helper, xp, x, w, *b, stride, padding, dilation, groups):
    N, O = x.shape[0], w.shape[0]
    Do, Ho, Wo = _out3(x.shape[2:], w.shape[2:], stride, padding, dilation)
    out = None
    for t in range(w.shape[2]):
        y = _conv_impl(helper, xp, _depth_slices(xp, x, t, Do, stride[0], padding[0],
                                                 dilation[0]),
                       w[:, :, t], stride=stride[1:], padding=padding[2:],
                       dilation=dilation[1:], groups=groups)
        out = y if out is None else out + y
    out = out.reshape(N, Do, O, Ho, Wo).transpose(0, 2, 1, 3, 4)
    if b:
        out = out + b[0].reshape(1, O, 1, 1, 1)
    return xp.ascontiguousarray(out)


def _conv3d_input_grad_impl(helper, xp, g, w, *, stride, padding, dilation, groups, input_dhw):
    N, Do = g.shape[0], g.shape[2]
    C = w.shape[1] * groups
    D, H, W = input_dhw
    sd, pd, dd = stride[0], padding[0], dilation[0]
    g2 = _g2(xp, g)
    span = max(D + pd, (Do - 1) * sd + dd * (w.shape[2] - 1) + 1)
    dxp = xp.zeros((N, C, span, H, W), g.dtype)
    for t in range(w.shape[2]):
        y = _input_grad_impl(helper, xp, g2, w[:, :, t], stride=stride[1:],
                             padding=padding[2:], dilation=dilation[1:], groups=groups,
                             input_hw=(H, W))
        dxp[:, :, t * dd:t * dd + (Do - 1) * sd + 1:sd] += \
            y.reshape(N, Do, C, H, W).transpose(0, 2, 1, 3, 4)
    return xp.ascontiguousarray(dxp[:, :, pd:pd + D])


def _conv3d_weight_grad_impl(helper, xp, x, g, *, stride, padding, dilation, groups, kernel):
    Do = g.shape[2]
    g2 = _g2(xp, g)
    taps = [_weight_grad_impl(helper, xp, _depth_slices(xp, x, t, Do, stride[0], padding[0],
                                                        dilation[0]),
                              g2, stride=stride[1:], padding=padding[2:],
                              dilation=dilation[1:], groups=groups, kernel=kernel[1:])
            for t in range(kernel[0])]
    return xp.ascontiguousarray(xp.stack(taps, axis=2))


_conv3d_int = _int_kernel(_conv3d_impl, _im2col_xp)
_conv3d_input_grad_int = _int_kernel(_conv3d_input_grad_impl, _col2im_xp)
_conv3d_weight_grad_int = _int_kernel(_conv3d_weight_grad_impl, _im2col_xp)


def _conv3d_vjp(n, g):
    x, w = n.inputs[0], n.inputs[1]
    geo = _geo(n.attrs)
    gx = (apply(CONV3D_INPUT_GRAD, g, w, input_dhw=tuple(x.shape[2:]), **geo)
          if x._rg else None)
    gw = (apply(CONV3D_WEIGHT_GRAD, x, g, kernel=tuple(w.shape[2:]), **geo)
          if w._rg else None)
    if len(n.inputs) == 2:
        return gx, gw
    return gx, gw, (g.sum(axis=(0, 2, 3, 4)) if n.inputs[2]._rg else None)


def _conv3d_input_grad_vjp(n, gg):
    g, w = n.inputs
    geo = _geo(n.attrs)
    dg = apply(CONV3D, gg, w, **geo) if g._rg else None
    dw = (apply(CONV3D_WEIGHT_GRAD, gg, g, kernel=tuple(w.shape[2:]), **geo)
          if w._rg else None)
    return dg, dw


def _conv3d_weight_grad_vjp(n, gg):
    x, g = n.inputs
    geo = _geo(n.attrs)
    dx = (apply(CONV3D_INPUT_GRAD, g, gg, input_dhw=tuple(x.shape[2:]), **geo)
          if x._rg else None)
    dg = apply(CONV3D, x, gg, **geo) if g._rg else None
    return dx, dg


def _conv3d_infer(x, w, *b, stride, padding, dilation, groups):
    (N, _, *dhw), (O, _, *k) = x[0], w[0]
    out = tuple(None if n is None else
                out_size(n, kk, s, padding[2 * i], padding[2 * i + 1], d)
                for i, (n, kk, s, d) in enumerate(zip(dhw, k, stride, dilation)))
    return (N, O) + out, x[1]


def _conv3d_input_grad_infer(g, w, *, groups, input_dhw, **attrs):
    return (g[0][0], w[0][1] * groups) + tuple(input_dhw), g[1]


def _conv3d_flops(i, o, **a):
    return 2 * math.prod(d or 1 for d in o[0][0]) * math.prod(i[1][0][1:])


def _conv3d_onnx(ctx, n):
    p = [int(v) for v in n.attrs["padding"]]
    return ctx.op("Conv", ctx.ins(n), kernel_shape=[int(k) for k in n.inputs[1].shape[2:]],
                  strides=list(n.attrs["stride"]), pads=p[0::2] + p[1::2],
                  dilations=list(n.attrs["dilation"]), group=int(n.attrs["groups"]))


def _conv3d_input_grad_onnx(ctx, n):
    p = [int(v) for v in n.attrs["padding"]]
    k, dhw = n.inputs[1].shape[2:], n.inputs[0].shape[2:]
    if None in tuple(dhw):
        ctx.unsupported("a conv3d input gradient over dynamic spatial dims (export inference "
                        "graphs)")
    opad = [int(o) - ((i - 1) * s - p0 - p1 + d * (kk - 1) + 1) for o, i, s, p0, p1, d, kk in
            zip(n.attrs["input_dhw"], dhw, n.attrs["stride"], p[0::2], p[1::2],
                n.attrs["dilation"], k)]
    return ctx.op("ConvTranspose", ctx.ins(n), kernel_shape=[int(v) for v in k],
                  strides=list(n.attrs["stride"]), pads=p[0::2] + p[1::2],
                  dilations=list(n.attrs["dilation"]), group=int(n.attrs["groups"]),
                  output_padding=opad)


CONV3D = _make("conv3d", _conv3d_impl, _im2col_xp, _conv3d_cpu, _conv3d_vjp, _conv3d_infer,
               _conv3d_flops, onnx=_conv3d_onnx)
CONV3D_INPUT_GRAD = _make("conv3d_input_grad", _conv3d_input_grad_impl, _col2im_xp,
                          _conv3d_input_grad_cpu, _conv3d_input_grad_vjp,
                          _conv3d_input_grad_infer, _bwd_flops, onnx=_conv3d_input_grad_onnx)
CONV3D_WEIGHT_GRAD = _make("conv3d_weight_grad", _conv3d_weight_grad_impl, _im2col_xp,
                           _conv3d_weight_grad_cpu, _conv3d_weight_grad_vjp,
                           _weight_grad_infer, _bwd_flops)


# --- public API and argument checks ---------------------------------------------------------
# the integer dtypes PyTorch's CPU convolutions take (not bool); its transposed ones take
# int64 only ("slow_conv_transpose2d_out_cpu" not implemented for the others)
_CONV_INTS = tuple(np.dtype(t) for t in (np.uint8, np.int8, np.int16, np.int32, np.int64))
_TRANSPOSED_INTS = (np.dtype(np.int64),)


def _conv_tensor(x, op: str, name: str = "input", ints: tuple = _CONV_INTS) -> Tensor:
    """The argument as a float32/float64 tensor or one of the integer dtypes ``ints``, or a
    DTypeError naming the op."""
    t = to_tensor(x)
    dt = t._data.dtype
    if dt in ints:
        return t
    if dt.kind == "f":
        return as_float_tensor(t, op, name)
    from ..errors import DTypeError
    allowed = ", ".join(["float32", "float64"] + [str(d) for d in ints])
    raise DTypeError(f"{op}: {name} must be one of {allowed} (as PyTorch's CPU {op}), "
                     f"got {dt}")


def _padding(op, padding, kernel, dilation, stride, nd):
    """Padding as (top, bottom, left, right) (nd=2) from an int, a tuple, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * (2 * nd)
        if padding != "same":
            raise ShapeError(f"{op}: padding must be 'valid', 'same', an int or a tuple, "
                             f"got {padding!r}")
        if any(s != 1 for s in stride):
            raise ShapeError(f"{op}: padding='same' needs stride 1, got stride {stride}")
        out = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            out += [total // 2, total - total // 2]
        return tuple(out)
    p = tuple_n(padding, nd, op, "padding")
    if any(v < 0 for v in p):
        raise ShapeError(f"{op}: padding must be non-negative, got {p}")
    return tuple(v for v in p for _ in (0, 1))


def _check_conv(op, x, w, b, stride, padding, dilation, groups, nd=2):
    if x.ndim != nd + 2:
        raise ShapeError(f"{op}: input must be {nd + 2}-D (N, C, {'H, W' if nd == 2 else 'L'}),"
                         f" got shape {tuple(x.shape)}")
    if w.ndim != nd + 2:
        raise ShapeError(f"{op}: weight must be {nd + 2}-D, got shape {tuple(w.shape)}")
    same_dtype(op, x, ("weight", w), ("bias", b))
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ShapeError(f"{op}: groups must be a positive integer, got {groups!r}")
    return int(groups)


def _check_buffers(op, N, C, O, kh, kw, Hp, Wp, Ho, Wo, itemsize,
                   padded: str = "padded input") -> None:
    """The padded input, the im2col columns and the output, each checked against memory
    before a kernel allocates them (a huge padding or stride is refused by name)."""
    from ._util import check_alloc
    check_alloc(op, (N, C, Hp, Wp), itemsize, padded)
    check_alloc(op, (C * kh * kw, N * Ho * Wo), itemsize, "im2col buffer")
    check_alloc(op, (N, O, Ho, Wo), itemsize)


def _validate_geometry(op, xshape, wshape, b, stride, pad, dilation, groups, itemsize=4):
    N, C, H, W = xshape
    O, Cg, kh, kw = wshape
    if Cg * groups != C:
        raise ShapeError(f"{op}: input has {C} channels but weight {tuple(wshape)} with "
                         f"groups={groups} expects {Cg * groups}")
    if O % groups:
        raise ShapeError(f"{op}: out_channels {O} must be divisible by groups={groups}")
    if kh < 1 or kw < 1:
        raise ShapeError(f"{op}: kernel size must be positive, got {(kh, kw)}")
    if b is not None and tuple(b.shape) != (O,):
        raise ShapeError(f"{op}: bias must have shape ({O},), got {tuple(b.shape)}")
    Ho = out_size(H, kh, stride[0], pad[0], pad[1], dilation[0])
    Wo = out_size(W, kw, stride[1], pad[2], pad[3], dilation[1])
    if Ho < 1 or Wo < 1:
        raise ShapeError(f"{op}: the (dilated) kernel {(kh, kw)} with dilation {dilation} is "
                         f"larger than the padded input "
                         f"{(H + pad[0] + pad[1], W + pad[2] + pad[3])}"
                         f" (input {tuple(xshape)}, padding {pad})")
    _check_buffers(op, N, C, O, kh, kw, H + pad[0] + pad[1], W + pad[2] + pad[3], Ho, Wo,
                   itemsize)
    return Ho, Wo


def _unbatched(nd: int):
    """Let a conv function take one unbatched sample (C, *spatial), as PyTorch does: it is
    run as a batch of one and the batch axis dropped again."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(input, *args, **kwargs):
            x = to_tensor(input)
            if x.ndim == nd + 1:
                return fn(x.unsqueeze(0), *args, **kwargs).squeeze(0)
            return fn(x, *args, **kwargs)
        return inner
    return wrap


def _kind(v) -> str | None:
    dt = getattr(v, "dtype", None)
    if dt is None:
        return None
    try:
        return np.dtype(dt).kind
    except TypeError:
        return None


def _complex_parts(op: str):
    """Let a convolution take complex tensors, as PyTorch does: the real kernels run on the
    parts by Gauss's trick (three real convolutions, as PyTorch's ``complex_convolution``):
    ``a = conv(xr, wr)``, ``c = conv(xi, wi)``, ``s = conv(xr + xi, wr + wi)``, the result
    ``(a - c) + i (s - a - c)``, plus a complex bias. Input, weight and bias must then share
    one complex dtype (PyTorch refuses a mix of real and complex). The gradients come from
    the real convolutions and ``real``/``imag``/``complex``, so they work to any order."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(input, weight, bias=None, *args, **kwargs):
            if "c" not in (_kind(input), _kind(weight), _kind(bias)):
                return fn(input, weight, bias, *args, **kwargs)
            if state.autocast is not None:
                # here, not in fn: autocast must see the complex tensors (it leaves them
                # alone, as PyTorch's), not their real parts
                return autocast_call(inner, op, input, weight, bias, *args, **kwargs)
            from .complex import complex as _complex, imag, real
            x, w = to_tensor(input), to_tensor(weight)
            b = None if bias is None else to_tensor(bias)
            same_dtype(op, x, ("weight", w), ("bias", b))
            xr, xi, wr, wi = real(x), imag(x), real(w), imag(w)
            a = fn(xr, wr, None, *args, **kwargs)
            c = fn(xi, wi, None, *args, **kwargs)
            s = fn(xr + xi, wr + wi, None, *args, **kwargs)
            out = _complex(a - c, s - a - c)
            if b is None:
                return out
            if tuple(b.shape) != (out.shape[1],):
                raise ShapeError(f"{op}: bias must have shape ({out.shape[1]},), got "
                                 f"{tuple(b.shape)}")
            return out + b.reshape((1, -1) + (1,) * (out.ndim - 2))
        return inner
    return wrap



@_unbatched(2)
@_complex_parts("conv2d")
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) of (N, C, H, W) (or unbatched (C, H, W)) with
    weight (O, C/groups, kh, kw).

    ``padding`` is an int, (ph, pw), 'valid' or 'same' (stride 1; extra padding goes
    bottom/right, as PyTorch).
    """
    if state.autocast is not None:
        return autocast_call(conv2d, "conv2d", input, weight, bias, stride, padding, dilation,
                             groups)
    x = _conv_tensor(input, "conv2d")
    w = _conv_tensor(weight, "conv2d", "weight")
    b = None if bias is None else _conv_tensor(bias, "conv2d", "bias")
    groups = _check_conv("conv2d", x, w, b, stride, padding, dilation, groups)
    stride = tuple_n(stride, 2, "conv2d", "stride", 1)
    dilation = tuple_n(dilation, 2, "conv2d", "dilation", 1)
    pad = _padding("conv2d", padding, w.shape[2:], dilation, stride, 2)
    _validate_geometry("conv2d", x.shape, w.shape, b, stride, pad, dilation, groups,
                       x.dtype.itemsize)
    ins = (x, w) if b is None else (x, w, b)
    return apply(CONV2D, *ins, stride=stride, padding=pad, dilation=dilation, groups=groups)


@_unbatched(1)
@_complex_parts("conv1d")
def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """1-D convolution of (N, C, L) (or unbatched (C, L)) with weight (O, C/groups, k): conv2d
    on a height-1 image."""
    if state.autocast is not None:
        return autocast_call(conv1d, "conv1d", input, weight, bias, stride, padding, dilation,
                             groups)
    x = _conv_tensor(input, "conv1d")
    w = _conv_tensor(weight, "conv1d", "weight")
    b = None if bias is None else _conv_tensor(bias, "conv1d", "bias")
    groups = _check_conv("conv1d", x, w, b, stride, padding, dilation, groups, nd=1)
    (s,) = tuple_n(stride, 1, "conv1d", "stride", 1)
    (d,) = tuple_n(dilation, 1, "conv1d", "dilation", 1)
    p = _padding("conv1d", padding, w.shape[2:], (d,), (s,), 1)
    x4 = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
    w4 = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])
    pad = (0, 0) + p
    _validate_geometry("conv1d", x4.shape, w4.shape, b, (1, s), pad, (1, d), groups,
                       x.dtype.itemsize)
    ins = (x4, w4) if b is None else (x4, w4, b)
    out = apply(CONV2D, *ins, stride=(1, s), padding=pad, dilation=(1, d), groups=groups)
    return out.reshape(out.shape[0], out.shape[1], out.shape[3])


def _transposed_args(op: str, x: Tensor, w: Tensor, groups: int, stride, padding,
                     output_padding, dilation) -> tuple:
    """A transposed convolution's (stride, dilation, padding, output_padding), one int per
    spatial dim, checked with the channels against the (C_in, C_out/groups, k...) weight."""
    n = x.ndim - 2
    stride = tuple_n(stride, n, op, "stride", 1)
    dilation = tuple_n(dilation, n, op, "dilation", 1)
    p = tuple_n(padding, n, op, "padding", 0)
    op_ = tuple_n(output_padding, n, op, "output_padding", 0)
    if any(o >= max(s, d) for o, s, d in zip(op_, stride, dilation)):
        raise ShapeError(f"{op}: output_padding {op_} must be smaller than stride {stride} or "
                         f"dilation {dilation}")
    Cin = x.shape[1]
    if w.shape[0] != Cin:
        ks = ("kh, kw", "kd, kh, kw")[n - 2]
        raise ShapeError(f"{op}: input has {Cin} channels but weight {tuple(w.shape)} expects "
                         f"{w.shape[0]} (weight is (C_in, C_out/groups, {ks}))")
    if Cin % groups:
        raise ShapeError(f"{op}: in_channels {Cin} must be divisible by groups={groups}")
    return stride, dilation, p, op_


@_unbatched(2)
@_complex_parts("conv_transpose2d")
def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-D convolution (the gradient of conv2d w.r.t. its input) of (N, C_in, H, W)
    or unbatched (C_in, H, W).

    ``weight`` is (C_in, C_out/groups, kh, kw), as PyTorch.
    """
    if state.autocast is not None:
        return autocast_call(conv_transpose2d, "conv_transpose2d", input, weight, bias, stride,
                             padding, output_padding, groups, dilation)
    op = "conv_transpose2d"
    x = _conv_tensor(input, op, ints=_TRANSPOSED_INTS)
    w = _conv_tensor(weight, op, "weight", _TRANSPOSED_INTS)
    b = None if bias is None else _conv_tensor(bias, op, "bias", _TRANSPOSED_INTS)
    groups = _check_conv(op, x, w, b, stride, padding, dilation, groups)
    stride, dilation, p, op_ = _transposed_args(op, x, w, groups, stride, padding,
                                                output_padding, dilation)
    N, Cin, H, W = x.shape
    kh, kw = w.shape[2:]
    Hout = (H - 1) * stride[0] - 2 * p[0] + dilation[0] * (kh - 1) + op_[0] + 1
    Wout = (W - 1) * stride[1] - 2 * p[1] + dilation[1] * (kw - 1) + op_[1] + 1
    if Hout < 1 or Wout < 1:
        raise ShapeError(f"{op}: output size {(Hout, Wout)} is not positive for input "
                         f"{tuple(x.shape)}, kernel {(kh, kw)}, stride {stride}, padding {p}")
    Cout = w.shape[1] * groups
    if b is not None and tuple(b.shape) != (Cout,):
        raise ShapeError(f"{op}: bias must have shape ({Cout},), got {tuple(b.shape)}")
    pad = (p[0], p[0], p[1], p[1])
    # col2im scatters (Cout k k, N H W) columns into the padded output
    _check_buffers(op, N, Cout, Cin, kh, kw, Hout + 2 * p[0], Wout + 2 * p[1], H, W,
                   x.dtype.itemsize, "padded output")
    if any(o >= s for o, s in zip(op_, stride)):
        # stride <= output_padding < dilation (PyTorch allows it): no conv maps the padded
        # output back to the input, so crop p - o at the end instead of p, and past the
        # padding the o - p positions that no input reaches are zeros (as conv_transpose3d)
        out = apply(CONV2D_INPUT_GRAD, x, w, stride=stride,
                    padding=(p[0], max(p[0] - op_[0], 0), p[1], max(p[1] - op_[1], 0)),
                    dilation=dilation, groups=groups, output_padding=(0, 0))
        extra = tuple(max(o - pp, 0) for o, pp in zip(op_, p))
        if any(extra):
            out = _zero_pad(_zero_pad(out, 2, 0, extra[0]), 3, 0, extra[1])
        return out if b is None else out + b.reshape(1, -1, 1, 1)
    # the forward conv that this transposes maps (Hout, Wout) back to (H, W)
    Hc = out_size(Hout, kh, stride[0], pad[0], pad[1], dilation[0])
    Wc = out_size(Wout, kw, stride[1], pad[2], pad[3], dilation[1])
    if (Hc, Wc) != (H, W):
        raise ShapeError(f"{op}: inconsistent geometry for input {tuple(x.shape)}: padding {p} "
                         f"is too large for kernel {(kh, kw)}")
    # the output size from output_padding, not fixed numbers: a captured graph (and ONNX)
    # follows the input's spatial dims
    out = apply(CONV2D_INPUT_GRAD, x, w, stride=stride, padding=pad, dilation=dilation,
                groups=groups, output_padding=tuple(int(o) for o in op_))
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


@_unbatched(1)
@_complex_parts("conv_transpose1d")
def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:
    """Transposed 1-D convolution of (N, C_in, L) (or unbatched (C_in, L)) with weight
    (C_in, C_out/groups, k), as PyTorch: conv_transpose2d on a height-1 image."""
    if state.autocast is not None:
        return autocast_call(conv_transpose1d, "conv_transpose1d", input, weight, bias, stride,
                             padding, output_padding, groups, dilation)
    op = "conv_transpose1d"
    x = _conv_tensor(input, op, ints=_TRANSPOSED_INTS)
    w = _conv_tensor(weight, op, "weight", _TRANSPOSED_INTS)
    if x.ndim != 3:
        raise ShapeError(f"{op}: input must be 3-D (N, C, L) or 2-D (C, L), got shape "
                         f"{tuple(x.shape)}")
    if w.ndim != 3:
        raise ShapeError(f"{op}: weight must be 3-D (C_in, C_out/groups, k), got shape "
                         f"{tuple(w.shape)}")
    (s,) = tuple_n(stride, 1, op, "stride", 1)
    (p,) = tuple_n(padding, 1, op, "padding", 0)
    (o,) = tuple_n(output_padding, 1, op, "output_padding", 0)
    (d,) = tuple_n(dilation, 1, op, "dilation", 1)
    # checked here so that the messages name this function and its 1-d arguments
    if o >= max(s, d):
        raise ShapeError(f"{op}: output_padding {o} must be smaller than stride {s} or "
                         f"dilation {d}")
    if w.shape[0] == x.shape[1]:
        L, k = x.shape[2], w.shape[2]
        n_out = (L - 1) * s - 2 * p + d * (k - 1) + o + 1
        if n_out < 1:
            raise ShapeError(f"{op}: output length {n_out} is not positive for input "
                             f"{tuple(x.shape)}, kernel {k}, stride {s}, padding {p}, "
                             f"dilation {d}")
    out = conv_transpose2d(x.unsqueeze(2), w.unsqueeze(2), bias, (1, s), (0, p), (0, o),
                           groups, (1, d))
    return out.squeeze(2)


def _checked_5d(op: str, input, weight, bias, groups, chans: str, wdims: str,
                ints: tuple = _CONV_INTS) -> tuple:
    """The 3-d convolutions' inputs checked: (x, w, b, groups), float (or ``ints``) tensors
    of one dtype, x (N, {chans}, D, H, W), w ({wdims}, kd, kh, kw), groups a positive int."""
    x = _conv_tensor(input, op, ints=ints)
    w = _conv_tensor(weight, op, "weight", ints)
    b = None if bias is None else _conv_tensor(bias, op, "bias", ints)
    if x.ndim != 5:
        raise ShapeError(f"{op}: input must be 5-D (N, {chans}, D, H, W) or 4-D ({chans}, D, "
                         f"H, W), got shape {tuple(x.shape)}")
    if w.ndim != 5:
        raise ShapeError(f"{op}: weight must be 5-D ({wdims}, kd, kh, kw), got shape "
                         f"{tuple(w.shape)}")
    same_dtype(op, x, ("weight", w), ("bias", b))
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ShapeError(f"{op}: groups must be a positive integer, got {groups!r}")
    return x, w, b, int(groups)


@_unbatched(3)
@_complex_parts("conv3d")
def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """3-D convolution (cross-correlation) of (N, C, D, H, W) (or unbatched (C, D, H, W)) with
    weight (O, C/groups, kd, kh, kw); ``padding`` an int, a 3-tuple, 'valid' or 'same'.

    Dense and grouped convolutions run as 3-D im2col + GEMM (the ``conv3d`` op); depthwise
    ones as one depthwise conv2d per kernel depth tap over the depth slices folded into the
    batch, summed.
    """
    if state.autocast is not None:
        return autocast_call(conv3d, "conv3d", input, weight, bias, stride, padding, dilation,
                             groups)
    op = "conv3d"
    x, w, b, groups = _checked_5d(op, input, weight, bias, groups, "C", "O, C/groups")
    stride = tuple_n(stride, 3, op, "stride", 1)
    dilation = tuple_n(dilation, 3, op, "dilation", 1)
    pad = _padding(op, padding, w.shape[2:], dilation, stride, 3)
    N, C, D, H, W = x.shape
    O, Cg, kd = w.shape[0], w.shape[1], w.shape[2]
    if kd < 1:
        raise ShapeError(f"{op}: kernel size must be positive, got {tuple(w.shape[2:])}")
    Do = out_size(D, kd, stride[0], pad[0], pad[1], dilation[0])
    if Do < 1:
        raise ShapeError(f"{op}: the (dilated) kernel depth {kd} with dilation {dilation[0]} is "
                         f"larger than the padded input depth {D + pad[0] + pad[1]} (input "
                         f"{tuple(x.shape)}, padding {pad})")
    # checks channels, bias, H/W geometry with conv2d's messages
    Ho, Wo = _validate_geometry(op, (N, C, H, W), (O, Cg) + tuple(w.shape[3:]), b,
                                stride[1:], pad[2:], dilation[1:], groups, x.dtype.itemsize)
    from ._util import check_alloc
    check_alloc(op, (N, C, D + pad[0] + pad[1], H, W), x.dtype.itemsize, "padded input")
    check_alloc(op, (N, O, Do, Ho, Wo), x.dtype.itemsize)
    if Cg > 1 or groups == 1:
        # dense and grouped: the 3-D im2col ops (depthwise stays on conv2d's direct loops)
        ins = (x, w) if b is None else (x, w, b)
        return apply(CONV3D, *ins, stride=stride, padding=pad, dilation=dilation,
                     groups=groups)
    if pad[0] or pad[1]:
        from .nn_resample import pad as _pad
        x = _pad(x, (0, 0, 0, 0, pad[0], pad[1]))
    sd, dd = stride[0], dilation[0]
    out = None
    for t in range(kd):
        start = t * dd
        xs = x[:, :, start:start + (Do - 1) * sd + 1:sd]               # (N, C, Do, H, W)
        xs = xs.permute(0, 2, 1, 3, 4).reshape(N * Do, C, H, W)
        y = apply(CONV2D, xs, w[:, :, t], stride=stride[1:], padding=pad[2:],
                  dilation=dilation[1:], groups=groups)
        out = y if out is None else out + y
    out = out.reshape(N, Do, O, Ho, Wo).permute(0, 2, 1, 3, 4)
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1, 1)
    return out


@_unbatched(3)
@_complex_parts("conv_transpose3d")
def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:
    """Transposed 3-D convolution (the gradient of conv3d w.r.t. its input) of
    (N, C_in, D, H, W) or unbatched (C_in, D, H, W), as PyTorch's; ``weight`` is
    (C_in, C_out/groups, kd, kh, kw) and the output depth is
    ``(D - 1) * stride - 2 * padding + dilation * (kd - 1) + output_padding + 1`` (likewise
    H and W).

    Runs as one transposed conv2d per kernel depth tap over every input depth slice at once
    (the slices folded into the batch); each tap's result lands at depths
    ``d * stride + tap * dilation - padding``, and the taps are summed.
    """
    if state.autocast is not None:
        return autocast_call(conv_transpose3d, "conv_transpose3d", input, weight, bias, stride,
                             padding, output_padding, groups, dilation)
    op = "conv_transpose3d"
    x, w, b, groups = _checked_5d(op, input, weight, bias, groups, "C_in", "C_in, C_out/groups",
                                  _TRANSPOSED_INTS)
    stride, dilation, p, op_ = _transposed_args(op, x, w, groups, stride, padding,
                                                output_padding, dilation)
    N, Cin, D, H, W = x.shape
    k = tuple(int(v) for v in w.shape[2:])
    if min(k) < 1:
        raise ShapeError(f"{op}: kernel size must be positive, got {k}")
    out = tuple((n - 1) * s - 2 * pp + d * (kk - 1) + o + 1
                for n, s, pp, d, kk, o in zip((D, H, W), stride, p, dilation, k, op_))
    if min(out) < 1:
        raise ShapeError(f"{op}: output size {out} is not positive for input {tuple(x.shape)}, "
                         f"kernel {k}, stride {stride}, padding {p}")
    Cout = w.shape[1] * groups
    if b is not None and tuple(b.shape) != (Cout,):
        raise ShapeError(f"{op}: bias must have shape ({Cout},), got {tuple(b.shape)}")
    Do, Ho, Wo = out
    from ._util import check_alloc
    check_alloc(op, (N, Cout) + out, x.dtype.itemsize)
    # output_padding o restores o of the positions that padding crops at the end: the conv2d
    # crops p - o there instead (its geometry then holds for any o < max(stride, dilation));
    # past the padding, o - p positions that no input reaches are zeros
    hw_pad = (p[1], max(p[1] - op_[1], 0), p[2], max(p[2] - op_[2], 0))
    hw_extra = tuple(max(o - pp, 0) for o, pp in zip(op_[1:], p[1:]))
    sd, pd, dd = stride[0], p[0], dilation[0]
    xs = x.permute(0, 2, 1, 3, 4).reshape(N * D, Cin, H, W)
    acc = None
    for t in range(k[0]):
        y = apply(CONV2D_INPUT_GRAD, xs, w[:, :, t], stride=stride[1:],
                  padding=hw_pad, dilation=dilation[1:], groups=groups, output_padding=(0, 0))
        if any(hw_extra):
            y = _zero_pad(_zero_pad(y, 2, 0, hw_extra[0]), 3, 0, hw_extra[1])
        y = y.reshape(N, D, 1, Cout * Ho * Wo)
        if sd > 1:      # input depth d lands at d * sd: sd - 1 zero slices after each
            y = _zero_pad(y, 2, 0, sd - 1)
        y = y.reshape(N, D * sd, Cout * Ho * Wo)
        # shift to this tap's first output depth; negative amounts crop (padding, the last
        # slice's trailing zeros)
        lo = t * dd - pd
        y = _zero_pad(y, 1, lo, Do - lo - D * sd)
        acc = y if acc is None else acc + y
    out5 = acc.reshape(N, Do, Cout, Ho, Wo).permute(0, 2, 1, 3, 4)
    if b is not None:
        out5 = out5 + b.reshape(1, -1, 1, 1, 1)
    return out5


def _zero_pad(x: Tensor, axis: int, before: int, after: int) -> Tensor:
    """Zeros added on ``axis`` (negative amounts crop), as ``F.pad`` in constant mode."""
    if before == 0 and after == 0:
        return x
    from .nn_resample import pad as _pad
    return _pad(x, (0, 0) * (x.ndim - 1 - axis) + (before, after))
