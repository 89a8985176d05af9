"""PyTorch's short-time Fourier transform and its inverse (``torch.stft``, ``torch.istft``)
as composites of registry ops: frames by ``unfold``, the one-sided DFT by the registry's
real FFT (``rdft``, ``ops/fourier.py``; a two-sided spectrum by products with cosine and sine
matrices), the inverse's overlap-add by ``index_add``. Differentiable and capturable.

tensorlib has no complex dtype, so a spectrum is a real tensor whose last dim holds the real
and imaginary parts (PyTorch's ``return_complex=False`` layout, ``torch.view_as_real`` of a
complex spectrum): ``stft`` needs ``return_complex=False`` and ``istft`` takes that layout.
The one-sided transforms cost O(n_fft log n_fft) per frame; the two-sided DFT products
O(n_fft**2).
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ._util import to_float, to_tensor

__all__ = ["istft", "stft"]

_PAD_MODES = {"reflect": "reflect", "constant": "constant", "replicate": "edge"}


def _int(v, op: str, what: str) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
        raise TypeError(f"{op}: {what} must be an int, got {v!r}")
    return int(v)


def _window(op: str, window, n_fft: int, win_length: int, like: Tensor) -> Tensor:
    """The window (ones when None) centred in ``n_fft`` points, as PyTorch pads it."""
    from ..creation import ones
    from .shape import pad
    if not 0 < win_length <= n_fft:
        raise ValueError(f"{op}: expected 0 < win_length <= n_fft, got win_length="
                         f"{win_length}, n_fft={n_fft}")
    if window is None:
        w = ones((win_length,), dtype=like.dtype, device=like.device)
    else:
        w = to_tensor(window)
        if w.ndim != 1 or w.shape[0] != win_length:
            raise ValueError(f"{op}: expected a 1-d window of size win_length={win_length}, got "
                             f"shape {tuple(w.shape)}")
        w = w.astype(like.dtype) if w.dtype != like.dtype else w
    left = (n_fft - win_length) // 2
    if left or n_fft - win_length - left:
        w = pad(w, ((left, n_fft - win_length - left),))
    return w


def _dft_basis(n_fft: int, n_freq: int, dtype, device) -> tuple[Tensor, Tensor]:
    """cos and sin of 2 pi k n / n_fft, (n_freq, n_fft), as constants (exact index products
    mod n_fft keep the angles small)."""
    from ..creation import tensor
    k = np.arange(n_freq, dtype=np.int64).reshape(-1, 1)
    n = np.arange(n_fft, dtype=np.int64).reshape(1, -1)
    ang = 2.0 * np.pi * ((k * n) % n_fft) / n_fft
    return (tensor(np.cos(ang).astype(dtype), device=device),
            tensor(np.sin(ang).astype(dtype), device=device))


def stft(input, n_fft: int, hop_length: int | None = None, win_length: int | None = None,
         window=None, center: bool = True, pad_mode: str = "reflect",
         normalized: bool = False, onesided: bool | None = None,
         return_complex: bool | None = None) -> Tensor:
    """The short-time Fourier transform of a signal ``(L,)`` or a batch ``(B, L)``
    (``torch.stft``): frames of ``n_fft`` samples every ``hop_length`` (default n_fft // 4),
    times ``window`` (``win_length`` points centred in n_fft, ones by default); ``center``
    pads ``n_fft // 2`` samples on both sides by ``pad_mode`` ("reflect", "constant",
    "replicate"); ``onesided`` (default) keeps the n_fft // 2 + 1 non-negative frequencies;
    ``normalized`` scales by 1 / sqrt(n_fft).

    Returns ``(..., n_freq, n_frames, 2)``: real and imaginary parts in the last dim.
    ``return_complex=False`` must be passed (tensorlib has no complex dtype).

    >>> tl.stft(tl.ones(8), 4, window=tl.hann_window(4), return_complex=False).shape
    (3, 9, 2)
    """
    from .linalg import matmul
    from .shape import pad
    x = to_float(to_tensor(input))
    if return_complex is None:
        raise ValueError("stft: pass return_complex=False (real and imaginary parts in a last "
                         "dim of 2; tensorlib has no complex dtype), as PyTorch requires "
                         "return_complex for real input")
    if return_complex:
        raise NotImplementedError("stft: return_complex=True needs a complex dtype, which "
                                  "tensorlib lacks; use return_complex=False (the last dim "
                                  "holds the real and imaginary parts)")
    if x.ndim not in (1, 2):
        raise ValueError(f"stft: expected a 1-d signal or a 2-d batch (B, L), got shape "
                         f"{tuple(x.shape)}")
    n_fft = _int(n_fft, "stft", "n_fft")
    hop = n_fft // 4 if hop_length is None else _int(hop_length, "stft", "hop_length")
    wl = n_fft if win_length is None else _int(win_length, "stft", "win_length")
    if n_fft <= 0 or hop <= 0:
        raise ValueError(f"stft: expected n_fft > 0 and hop_length > 0, got n_fft={n_fft}, "
                         f"hop_length={hop}")
    batched = x.ndim == 2
    x2 = x if batched else x.reshape((1, -1))
    if center:
        if pad_mode not in _PAD_MODES:
            raise ValueError(f"stft: pad_mode must be one of {', '.join(_PAD_MODES)}, got "
                             f"{pad_mode!r}")
        p = n_fft // 2
        x2 = pad(x2, ((0, 0), (p, p)), mode=_PAD_MODES[pad_mode])
    L = x2.shape[1]
    if not 0 < n_fft <= L:
        raise ValueError(f"stft: expected 0 < n_fft <= {L} (the padded signal's length), got "
                         f"n_fft={n_fft}")
    w = _window("stft", window, n_fft, wl, x2)
    frames = x2.unfold(1, n_fft, hop) * w                       # (B, n_frames, n_fft)
    one = True if onesided is None else bool(onesided)
    n_freq = n_fft // 2 + 1 if one else n_fft
    if one:     # an FFT per frame (the registry's real DFT)
        from .fourier import rdft
        out = rdft(frames).swapaxes(1, 2)                       # (B, n_freq, n_frames, 2)
    else:       # both sides of a real signal's spectrum: products with the DFT matrices
        cos, sin = _dft_basis(n_fft, n_freq, x2.dtype, x2.device)
        re = matmul(frames, cos.mT)                             # (B, n_frames, n_freq)
        im = -matmul(frames, sin.mT)
        from .shape import stack
        out = stack([re, im], axis=-1).swapaxes(1, 2)           # (B, n_freq, n_frames, 2)
    if normalized:
        out = out * (1.0 / math.sqrt(n_fft))
    return out if batched else out.reshape(tuple(out.shape[1:]))


def istft(input, n_fft: int, hop_length: int | None = None, win_length: int | None = None,
          window=None, center: bool = True, normalized: bool = False,
          onesided: bool | None = None, length: int | None = None,
          return_complex: bool = False) -> Tensor:
    """The inverse of :func:`stft` (``torch.istft``): a spectrum ``(..., n_freq, n_frames,
    2)`` (real and imaginary parts last, as ``stft(..., return_complex=False)`` gives) back to
    a signal by inverse DFTs, windowing and overlap-add divided by the summed squared window.
    ``length`` trims or zero-pads the result. Raises where the window's overlap-added square
    is (near) zero, as PyTorch's NOLA check."""
    from ..creation import arange, zeros
    from .elementwise import where
    from .indexing import index_add
    from .linalg import matmul
    spec = to_float(to_tensor(input))
    if return_complex:
        raise NotImplementedError("istft: return_complex=True needs a complex dtype, which "
                                  "tensorlib lacks")
    if spec.ndim not in (3, 4) or spec.shape[-1] != 2:
        raise ValueError(f"istft: expected a spectrum (n_freq, n_frames, 2) or (B, n_freq, "
                         f"n_frames, 2) with real and imaginary parts last, got shape "
                         f"{tuple(spec.shape)}")
    n_fft = _int(n_fft, "istft", "n_fft")
    hop = n_fft // 4 if hop_length is None else _int(hop_length, "istft", "hop_length")
    wl = n_fft if win_length is None else _int(win_length, "istft", "win_length")
    batched = spec.ndim == 4
    s = spec if batched else spec.reshape((1,) + tuple(spec.shape))
    n_freq, n_frames = s.shape[1], s.shape[2]
    one = (n_freq != n_fft) if onesided is None else bool(onesided)
    if one and n_freq != n_fft // 2 + 1:
        raise ValueError(f"istft: a one-sided spectrum of n_fft={n_fft} has {n_fft // 2 + 1} "
                         f"frequencies, got {n_freq}")
    if not one and n_freq != n_fft:
        raise ValueError(f"istft: a two-sided spectrum of n_fft={n_fft} has {n_fft} "
                         f"frequencies, got {n_freq}")
    if normalized:
        s = s * math.sqrt(n_fft)
    if one:     # an inverse FFT per frame
        from .fourier import irdft
        frames = irdft(s.swapaxes(1, 2), n_fft)                  # (B, n_frames, n_fft)
    else:
        cos, sin = _dft_basis(n_fft, n_freq, s.dtype, s.device)
        re, im = s[..., 0].swapaxes(1, 2), s[..., 1].swapaxes(1, 2)   # (B, n_frames, n_freq)
        frames = (matmul(re, cos) - matmul(im, sin)) * (1.0 / n_fft)  # (B, n_frames, n_fft)
    w = _window("istft", window, n_fft, wl, frames)
    frames = frames * w
    total = n_fft + hop * (n_frames - 1)
    pos = (arange(n_frames, device=s.device) * hop).reshape((-1, 1)) + \
        arange(n_fft, device=s.device).reshape((1, -1))
    pos = pos.reshape(-1)
    b = s.shape[0]
    y = index_add(zeros((b, total), dtype=s.dtype, device=s.device), 1, pos,
                  frames.reshape((b, -1)))
    env = index_add(zeros((total,), dtype=s.dtype, device=s.device), 0, pos,
                    (w * w).reshape((1, -1)).broadcast_to((n_frames, n_fft)).reshape(-1))
    start = n_fft // 2 if center else 0
    end = total - n_fft // 2 if center else total
    if length is not None:
        end = min(start + int(length), total)
    y, env = y[:, start:end], env[start:end]
    from ..autograd.mode import state
    if state.tracer is None and env.numel() and float(env.abs().min().item()) < 1e-11:
        raise ValueError("istft: window overlap fails the NOLA condition (the overlap-added "
                         "squared window is zero somewhere); use another window or hop_length")
    y = y / where(env.abs() < 1e-11, 1.0, env)
    if length is not None and y.shape[1] < int(length):
        from .shape import pad
        y = pad(y, ((0, 0), (0, int(length) - y.shape[1])))
    return y if batched else y.reshape((-1,))
