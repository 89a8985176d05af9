"""``F.unfold`` (im2col: sliding blocks as columns) and its adjoint ``F.fold``, with
PyTorch's layouts, composed of ``pad``, ``take`` and ``index_add``."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from .nn_util import as_float_or_complex_tensor, tuple_n
from .shape import pad


def _blocks(name, hw, kernel_size, dilation, padding, stride):
    """Block positions: for each of the kh*kw kernel offsets and each of the L blocks, the
    flat index into the padded (H + 2p) x (W + 2p) plane; and the block grid."""
    kh, kw = tuple_n(kernel_size, 2, name, "kernel_size", 1)
    dh, dw = tuple_n(dilation, 2, name, "dilation", 1)
    ph, pw = tuple_n(padding, 2, name, "padding", 0)
    sh, sw = tuple_n(stride, 2, name, "stride", 1)
    H, W = hw[0] + 2 * ph, hw[1] + 2 * pw
    nh, nw = (H - dh * (kh - 1) - 1) // sh + 1, (W - dw * (kw - 1) - 1) // sw + 1
    if nh < 1 or nw < 1:
        raise ValueError(f"{name}: a {kh}x{kw} kernel (dilation {dh, dw}) does not fit a "
                         f"padded {H}x{W} plane")
    ki, kj = np.meshgrid(np.arange(kh) * dh, np.arange(kw) * dw, indexing="ij")
    bi, bj = np.meshgrid(np.arange(nh) * sh, np.arange(nw) * sw, indexing="ij")
    rows = ki.reshape(-1, 1) + bi.reshape(1, -1)
    cols = kj.reshape(-1, 1) + bj.reshape(1, -1)
    return (rows * W + cols).reshape(-1), (ph, pw), (H, W), kh * kw, nh * nw


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """(N, C, H, W) -> (N, C * kh * kw, L): every sliding kh x kw block as a column (L blocks),
    channel-major as PyTorch's ``unfold``; a convolution is then a matrix product. An
    unbatched (C, H, W) input gives (C * kh * kw, L).

    >>> F.unfold(tl.ones(1, 2, 4, 4), 2).shape
    (1, 8, 9)
    """
    x = as_float_or_complex_tensor(input, "unfold")
    if x.ndim == 3:
        return unfold(x.unsqueeze(0), kernel_size, dilation, padding, stride).squeeze(0)
    if x.ndim != 4:
        raise ValueError(f"unfold: input must be (N, C, H, W) or (C, H, W), got shape "
                         f"{tuple(x.shape)}")
    idx, (ph, pw), (H, W), K, L = _blocks("unfold", x.shape[2:], kernel_size, dilation,
                                          padding, stride)
    N, C = x.shape[:2]
    if ph or pw:
        x = pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    from ..creation import tensor
    cols = x.reshape(N, C, H * W).take(tensor(idx, device=x.device), axis=2)
    return cols.reshape(N, C * K, L)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """The adjoint of :func:`unfold`: (N, C * kh * kw, L) -> (N, C, H, W), summing the
    entries that land on the same pixel (PyTorch's ``fold``); an unbatched
    (C * kh * kw, L) input gives (C, H, W)."""
    from ..creation import tensor, zeros
    from .indexing import index_add
    x = as_float_or_complex_tensor(input, "fold")
    if x.ndim == 2:
        return fold(x.unsqueeze(0), output_size, kernel_size, dilation, padding,
                    stride).squeeze(0)
    if x.ndim != 3:
        raise ValueError(f"fold: input must be (N, C * kh * kw, L) or (C * kh * kw, L), got "
                         f"shape {tuple(x.shape)}")
    out_hw = tuple_n(output_size, 2, "fold", "output_size", 1)
    idx, (ph, pw), (H, W), K, L = _blocks("fold", out_hw, kernel_size, dilation, padding,
                                          stride)
    N, CK, Lx = x.shape
    if CK % K or Lx != L:
        raise ValueError(f"fold: input {tuple(x.shape)} needs C * {K} rows and {L} blocks for "
                         f"output_size {out_hw}")
    C = CK // K
    plane = zeros(N, C, H * W, dtype=x.dtype, device=x.device)
    plane = index_add(plane, tensor(idx, device=x.device), x.reshape(N, C, K * L), axis=2)
    img = plane.reshape(N, C, H, W)
    return img[:, :, ph:H - ph, pw:W - pw]
