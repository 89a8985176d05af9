"""PyTorch's short-time Fourier transform and its inverse (``torch.stft``, ``torch.istft``)
as composites of registry ops: frames cut from the signal as ``hop``-sample blocks (a reshape)
joined by one ``concatenate``; the one-sided DFT by the registry's real FFT (``rdft``,
``ops/fourier.py``; a two-sided spectrum mirrors it); the inverse's overlap-add as a sum of
``ceil(n_fft / hop)`` frame blocks, each shifted by a pad. Differentiable and capturable.

A spectrum is complex (``return_complex=True``, PyTorch's default usage, through the complex
FFT ops of ``ops/fft.py``) or a real tensor whose last dim holds the real and imaginary parts
(PyTorch's ``return_complex=False`` layout, ``torch.view_as_real`` of a complex spectrum);
``istft`` takes either. The transforms cost O(n_fft log n_fft) per frame, except the
two-sided inverse of the real layout (products with cosine and sine matrices, O(n_fft**2)).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _dtypes
from .._tensor import Tensor
from .size_guard import traced
from ._util import to_float, to_tensor

__all__ = ["istft", "stft"]

# F.pad's modes (circular: slices and a concatenate, F.pad's own composite)
_PAD_MODES = {"reflect": "reflect", "constant": "constant", "replicate": "edge",
              "circular": None}


def _compute_dtype(*dtypes) -> np.dtype:
    """The real dtype a transform computes in: PyTorch's promotion of the signal's and the
    window's (real parts of complex ones; None: absent), at least float32 (no float16 FFT)."""
    rd = np.result_type(*[_dtypes.real_of(d) for d in dtypes if d is not None])
    return rd if rd.itemsize >= 4 else np.dtype(np.float32)


def _window_tensor(window) -> Tensor | None:
    return None if window is None else to_float(to_tensor(window))


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


def _span(length: int, n_fft: int, hop: int) -> int:
    """The samples :func:`_frames` reads as whole blocks: (n_frames + r - 1) * hop."""
    return ((length - n_fft) // hop + -(-n_fft // hop)) * hop


def _frames(x: Tensor, n_fft: int, hop: int) -> Tensor:
    """Every n_fft-sample frame of ``x`` (B, L), ``hop`` apart: (B, n_frames, n_fft).

    A frame is r = ceil(n_fft / hop) consecutive hop-sample blocks, so the frames are r
    shifted views of the blocks, joined by one copy (a gather by index costs several times
    more, and its gradient is an index_add where this one is slices)."""
    from .shape import concatenate, pad
    b, length = x.shape
    n_frames = (length - n_fft) // hop + 1
    r = -(-n_fft // hop)
    need = _span(length, n_fft, hop)
    if need > length:       # samples past the last frame's end: read by no frame
        x = pad(x, ((0, 0), (0, need - length)))
    elif need < length:
        x = x[:, :need]
    blocks = x.reshape((b, n_frames + r - 1, hop))
    last = n_fft - (r - 1) * hop
    parts = [blocks[:, j:j + n_frames] for j in range(r - 1)]
    parts.append(blocks[:, r - 1:r - 1 + n_frames, :last] if last < hop
                 else blocks[:, r - 1:r - 1 + n_frames])
    return parts[0] if r == 1 else concatenate(parts, axis=2)


def _overlap_add(frames: Tensor, hop: int) -> Tensor:
    """The adjoint of :func:`_frames`: frames (B, n_frames, n_fft) summed at ``hop``
    offsets into (B, (n_frames + r - 1) * hop), r = ceil(n_fft / hop): the j-th hop-sample
    block of every frame lands j blocks later, a pad along the frame axis and an add (its
    gradient is slices, where an index_add's was a gather)."""
    from .shape import pad
    b, n_frames, n_fft = frames.shape
    r = -(-n_fft // hop)
    out = None
    for j in range(r):
        part = frames[:, :, j * hop:min((j + 1) * hop, n_fft)]
        part = pad(part, ((0, 0), (j, r - 1 - j), (0, hop - part.shape[2])))
        out = part if out is None else out + part
    return out.reshape((b, (n_frames + r - 1) * hop))


def stft(input, n_fft: int, hop_length: int | None = None, win_length: int | None = None,
         window=None, center: bool = True, pad_mode: str = "reflect",
         normalized: bool = False, onesided: bool | None = None,
         return_complex: bool | None = None) -> Tensor:
    """The short-time Fourier transform of a signal ``(L,)`` or a batch ``(B, L)``
    (``torch.stft``): frames of ``n_fft`` samples every ``hop_length`` (default n_fft // 4),
    times ``window`` (``win_length`` points centred in n_fft, ones by default); ``center``
    pads ``n_fft // 2`` samples on both sides by ``pad_mode`` (any of F.pad's: "reflect",
    "constant", "replicate", "circular"); ``onesided`` (default) keeps the n_fft // 2 + 1
    non-negative frequencies; ``normalized`` scales by 1 / sqrt(n_fft).

    Returns ``(..., n_freq, n_frames)`` complex with ``return_complex=True``, or
    ``(..., n_freq, n_frames, 2)`` real with the real and imaginary parts in the last dim with
    ``return_complex=False``; one of them must be passed, as PyTorch requires for real input.
    The transform computes in PyTorch's promotion of the signal's and window's dtypes (a
    float32 signal with a float64 window: complex128; float16 at least float32). A complex
    signal or window gives the two-sided spectrum (``onesided=True`` is refused,
    ``return_complex`` defaults to True), as PyTorch's.

    >>> tl.stft(tl.ones(8), 4, window=tl.hann_window(4), return_complex=True).shape
    (3, 9)
    """
    from .shape import pad
    x = to_float(to_tensor(input))
    window = _window_tensor(window)
    cplx = x.dtype.kind == "c" or (window is not None and window.dtype.kind == "c")
    dt = _compute_dtype(x.dtype, None if window is None else window.dtype)
    if cplx:
        if onesided:
            raise ValueError("stft: onesided=True needs a real signal and window; a complex "
                             "one has a two-sided spectrum (onesided=False), as PyTorch's")
        onesided = False
        return_complex = True if return_complex is None else return_complex
        dt = _dtypes.complex_of(dt)
    if x.dtype != dt:
        x = x.astype(dt)
    if return_complex is None:
        raise ValueError("stft: pass return_complex=True (a complex spectrum) or "
                         "return_complex=False (real and imaginary parts in a last dim of 2), "
                         "as PyTorch requires return_complex for real input")
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
    p = n_fft // 2 if center else 0
    if center and pad_mode not in _PAD_MODES:
        raise ValueError(f"stft: pad_mode must be one of {', '.join(_PAD_MODES)}, got "
                         f"{pad_mode!r}")
    if center and pad_mode == "circular" and not traced(x2.shape[1]) and p > x2.shape[1]:
        raise ValueError(f"stft: pad_mode='circular' pads n_fft // 2 = {p} samples, more than "
                         f"the signal's {x2.shape[1]} (it would wrap around more than once, "
                         "which PyTorch refuses too)")
    L = x2.shape[1] + 2 * p
    if not 0 < n_fft <= L:
        raise ValueError(f"stft: expected 0 < n_fft <= {L} (the padded signal's length), got "
                         f"n_fft={n_fft}")
    w = _window("stft", window, n_fft, wl, x2)
    # a length read from a dynamic axis under capture: frames by a gather (unfold), whose
    # indices follow the length when the graph runs (blocks need it as a Python number)
    dynamic = traced(L)
    if center:
        mode = _PAD_MODES[pad_mode]
        # the zeros _frames appends past the last frame come with this pad where they can
        # (they are read by no frame, so any mode's values do)
        extra = 0 if dynamic else _span(L, n_fft, hop) - L
        extra = extra if extra > 0 and (mode != "reflect" or p + extra < x2.shape[1]) else 0
        if mode is None:        # circular
            from .nn_resample import pad as f_pad
            x2 = f_pad(x2, (p, p), mode="circular")
            if extra:
                x2 = pad(x2, ((0, 0), (0, extra)))
        else:
            x2 = pad(x2, ((0, 0), (p, p + extra)), mode=mode)
    if normalized:      # scales the (short) window rather than the spectrum
        w = w * (1.0 / math.sqrt(n_fft))
    frames = x2.unfold(1, n_fft, hop) if dynamic else _frames(x2, n_fft, hop)
    frames = frames * w                                     # (B, n_frames, n_fft)
    if return_complex:
        from . import fft as _F
        if cplx:    # a complex signal: frames are complex already
            out = _F.c2c(frames, (2,), "backward", False)
        elif onesided is None or onesided:
            out = _F.r2c(frames, 2, "backward")             # (B, n_frames, n_fft // 2 + 1)
        else:
            out = _F.c2c(frames.astype(_dtypes.complex_of(frames.dtype)), (2,), "backward",
                         False)
        out = out.swapaxes(1, 2)                            # (B, n_freq, n_frames)
        return out if batched else out.reshape(tuple(out.shape[1:]))
    if cplx:        # PyTorch's return_complex=False layout: view_as_real of the spectrum
        from . import fft as _F
        from .complex import view_as_real
        out = _F.c2c(frames, (2,), "backward", False).swapaxes(1, 2)
        out = view_as_real(out)
        return out if batched else out[0]
    from .fourier import rdft
    out = rdft(frames)                                      # (B, n_frames, n_fft // 2 + 1, 2)
    if onesided is not None and not onesided:
        # a real signal's spectrum is Hermitian: X[n - k] = conj(X[k]) for the other side
        from .shape import concatenate, flip
        from ..creation import tensor
        k = n_fft - (n_fft // 2 + 1)
        # (k, 2) rather than (2,): see fourier._irfft_weights
        conj = np.tile(np.array([1.0, -1.0], dtype=out.dtype), (k, 1))
        mirror = flip(out[:, :, 1:k + 1], axis=2) * tensor(conj, device=out.device)
        out = concatenate([out, mirror], axis=2)
    out = out.swapaxes(1, 2)                                # (B, n_freq, n_frames, 2)
    return out if batched else out[0]


def istft(input, n_fft: int, hop_length: int | None = None, win_length: int | None = None,
          window=None, center: bool = True, normalized: bool = False,
          onesided: bool | None = None, length: int | None = None,
          return_complex: bool = False) -> Tensor:
    """The inverse of :func:`stft` (``torch.istft``): a complex spectrum ``(..., n_freq,
    n_frames)``, or one with real and imaginary parts in a last dim of 2 (as
    ``stft(..., return_complex=False)`` gives), back to a signal by inverse DFTs, windowing
    and overlap-add divided by the summed squared window. ``length`` trims or zero-pads the
    result. It computes in PyTorch's promotion of the spectrum's and window's dtypes (a
    complex64 spectrum with a float64 window: float64). ``return_complex=True`` (complex
    spectra, two-sided; the only form a complex window allows) keeps the inverse DFT's
    imaginary part, as PyTorch's; otherwise a complex two-sided spectrum's first n_fft // 2 + 1
    bins are read as a one-sided one, as PyTorch does. Raises RuntimeError where the
    window's overlap-added square is (near) zero, as PyTorch's NOLA check.

    >>> w = tl.hann_window(8)
    >>> x = tl.randn(64)
    >>> y = tl.istft(tl.stft(x, 8, 2, window=w, return_complex=False), 8, 2, window=w)
    >>> bool((y - x).abs().max() < 1e-5)
    True
    """
    from .linalg import matmul
    spec = to_float(to_tensor(input))
    window = _window_tensor(window)
    wdt = None if window is None else window.dtype
    if wdt is not None and wdt.kind == "c" and not return_complex:
        raise ValueError("istft: a complex window needs return_complex=True (a complex "
                         "signal), as PyTorch's")
    rd = _compute_dtype(spec.dtype, wdt)
    if spec.dtype.kind == "c":
        cd = _dtypes.complex_of(rd)
        return _istft_complex(spec if spec.dtype == cd else spec.astype(cd), n_fft, hop_length,
                              win_length, window, center, normalized, onesided, length,
                              return_complex)
    if spec.dtype != rd:
        spec = spec.astype(rd)
    if return_complex:
        raise ValueError("istft: return_complex=True needs a complex spectrum (n_freq, "
                         "n_frames), got a real one")
    if spec.ndim not in (3, 4) or spec.shape[-1] != 2:
        raise ValueError(f"istft: expected a spectrum (n_freq, n_frames, 2) or (B, n_freq, "
                         f"n_frames, 2) with real and imaginary parts last, got shape "
                         f"{tuple(spec.shape)}")
    batched = spec.ndim == 4
    s, n_fft, hop, wl, one = _istft_layout(spec, batched, n_fft, hop_length, win_length,
                                           onesided)
    if one:     # an inverse FFT per frame
        from .fourier import irdft
        frames = irdft(s.swapaxes(1, 2), n_fft)                  # (B, n_frames, n_fft)
    else:
        cos, sin = _dft_basis(n_fft, s.shape[1], s.dtype, s.device)
        re, im = s[..., 0].swapaxes(1, 2), s[..., 1].swapaxes(1, 2)   # (B, n_frames, n_freq)
        frames = (matmul(re, cos) - matmul(im, sin)) * (1.0 / n_fft)  # (B, n_frames, n_fft)
    return _overlap_frames(frames, batched, n_fft, hop, wl, window, center, normalized,
                           length)


def _istft_layout(spec, batched, n_fft, hop_length, win_length, onesided):
    """istft's checked arguments: the spectrum with a batch dim, n_fft, hop, win_length and
    whether it is one-sided (PyTorch's default: n_freq != n_fft)."""
    n_fft = _int(n_fft, "istft", "n_fft")
    hop = n_fft // 4 if hop_length is None else _int(hop_length, "istft", "hop_length")
    wl = n_fft if win_length is None else _int(win_length, "istft", "win_length")
    if not 0 < hop <= wl:       # (gaps between frames: PyTorch refuses them too)
        raise ValueError(f"istft: expected 0 < hop_length <= win_length, got hop_length={hop}, "
                         f"win_length={wl}")
    s = spec if batched else spec.reshape((1,) + tuple(spec.shape))
    n_freq = s.shape[1]
    one = (n_freq != n_fft) if onesided is None else bool(onesided)
    if one and n_freq != n_fft // 2 + 1:
        raise ValueError(f"istft: a one-sided spectrum of n_fft={n_fft} has {n_fft // 2 + 1} "
                         f"frequencies, got {n_freq}")
    if not one and n_freq != n_fft:
        raise ValueError(f"istft: a two-sided spectrum of n_fft={n_fft} has {n_fft} "
                         f"frequencies, got {n_freq}")
    return s, n_fft, hop, wl, one


def _istft_complex(spec, n_fft, hop_length, win_length, window, center, normalized, onesided,
                   length, return_complex):
    """istft of a complex spectrum (B?, n_freq, n_frames): frames by the complex FFT ops."""
    from . import fft as _F
    if spec.ndim not in (2, 3):
        raise ValueError(f"istft: expected a complex spectrum (n_freq, n_frames) or (B, "
                         f"n_freq, n_frames), got shape {tuple(spec.shape)}")
    batched = spec.ndim == 3
    s, n_fft, hop, wl, one = _istft_layout(spec, batched, n_fft, hop_length, win_length,
                                           onesided)
    s = s.swapaxes(1, 2)                                        # (B, n_frames, n_freq)
    if return_complex:
        if one:
            raise ValueError("istft: return_complex=True needs a two-sided spectrum "
                             "(onesided=False), as PyTorch's")
        frames = _F.c2c(s, (2,), "backward", True)
        if window is not None and window.dtype.kind == "c":
            return _overlap_frames(frames, batched, n_fft, hop, wl, window, center, normalized,
                                   length)
        parts = [_overlap_frames(p, batched, n_fft, hop, wl, window, center, normalized,
                                 length) for p in (frames.real, frames.imag)]
        from .complex import complex as _complex
        return _complex(parts[0], parts[1])
    if not one:     # PyTorch reads the first half as a one-sided spectrum
        s = _F.resize(s, (2,), (n_fft // 2 + 1,))
    frames = _F.c2r(s, 2, n_fft, "backward")                    # (B, n_frames, n_fft)
    return _overlap_frames(frames, batched, n_fft, hop, wl, window, center, normalized, length)


def _overlap_frames(frames, batched, n_fft, hop, wl, window, center, normalized, length):
    """The real frames (B, n_frames, n_fft) windowed, overlap-added and divided by the
    overlap-added squared window: istft's signal."""
    from .elementwise import where
    n_frames = frames.shape[1]
    w = _window("istft", window, n_fft, wl, frames)
    # the normalization scales the window's copy the frames are multiplied by, not the
    # spectrum (fewer elements); the envelope divides by the unscaled window's square
    y = _overlap_add(frames * (w * math.sqrt(n_fft) if normalized else w), hop)
    env = _overlap_add((w * w).reshape((1, 1, n_fft)).broadcast_to((1, n_frames, n_fft)),
                       hop).reshape((-1,))
    total = n_fft + hop * (n_frames - 1)
    start = n_fft // 2 if center else 0
    end = total - n_fft // 2 if center else total
    if length is not None:
        end = min(start + int(length), total)
    y, env = y[:, start:end], env[start:end]
    from ..autograd.mode import state
    if state.tracer is None and env.numel() and float(env.abs().min().item()) < 1e-11:
        raise RuntimeError("istft: window overlap fails the NOLA condition (the overlap-added "
                           "squared window is zero somewhere); use another window or "
                           "hop_length")
    y = y / where(env.abs() < 1e-11, 1.0, env)
    if length is not None and y.shape[1] < int(length):
        from .shape import pad
        y = pad(y, ((0, 0), (0, int(length) - y.shape[1])))
    return y if batched else y.reshape((-1,))
