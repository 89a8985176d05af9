"""PyTorch's window functions for signal processing (``torch.hann_window``,
``hamming_window``, ``blackman_window``, ``bartlett_window``, ``kaiser_window``): constant
tensors of the default float dtype unless ``dtype`` (a floating type) is given.

``periodic=True`` (the default, as PyTorch's) gives the window for spectral analysis: the
symmetric window of ``window_length + 1`` points without its last one.
"""
from __future__ import annotations

import numpy as np

from .. import _dtypes
from .._tensor import Tensor

__all__ = ["bartlett_window", "blackman_window", "hamming_window", "hann_window",
           "kaiser_window"]


def _make(name: str, window_length: int, periodic: bool, dtype, device, requires_grad: bool,
          formula, *, ones_at_one: bool = True, f32_f64: bool = False) -> Tensor:
    """The one implementation of every window (``tl.*_window`` and ``tl.signal.windows``):
    ``formula(k, m)`` is the symmetric m-point window at k = 0 .. m - 1, evaluated in float64;
    a periodic window is the symmetric one of N + 1 points without its last. ``f32_f64``:
    only float32 / float64, as ``torch.signal.windows``."""
    from ..creation import tensor
    if not isinstance(window_length, (int, np.integer)) or isinstance(window_length, bool):
        raise TypeError(f"{name}: window_length must be an int, got {window_length!r}")
    if window_length < 0:
        raise ValueError(f"{name}: requires non-negative window_length, got {window_length}")
    dt = _dtypes.as_dtype(dtype) if dtype is not None else _dtypes.default_float
    if f32_f64 and dt not in (np.float32, np.float64):
        raise ValueError(f"{name}: expects float32 or float64 dtypes, got {dt}")
    if dt.kind != "f":
        raise TypeError(f"{name}: expects a floating point dtype, got {dt}")
    n = int(window_length)
    if n == 0 or (n == 1 and ones_at_one):
        w = np.ones(n, np.float64)
    else:
        m = n + 1 if periodic and n > 1 else n      # points of the symmetric window
        w = formula(np.arange(m, dtype=np.float64), m)[:n]
    return tensor(w.astype(dt), device=device, requires_grad=requires_grad)


def _cosine_sum(*coeffs):
    def formula(k, m):
        t = 2.0 * np.pi * k / (m - 1)
        return sum(c * np.cos(i * t) * (-1) ** i for i, c in enumerate(coeffs))
    return formula


def _bartlett(k, m):
    return 1.0 - np.abs(2.0 * k / (m - 1) - 1.0)


def _kaiser(beta: float):
    def formula(k, m):
        r = 2.0 * k / (m - 1) - 1.0
        return np.i0(beta * np.sqrt(np.clip(1.0 - r * r, 0.0, None))) / np.i0(beta)
    return formula


def _cosine(k, m):
    return np.sin(np.pi * (k + 0.5) / m)


def _gaussian(std: float):
    def formula(k, m):
        return np.exp(-0.5 * ((k - (m - 1) / 2.0) / std) ** 2)
    return formula


def _exponential(center: float | None, tau: float):
    def formula(k, m):
        c = (m - 1) / 2.0 if center is None else center
        return np.exp(-np.abs(k - c) / tau)
    return formula


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, device=None,
                requires_grad: bool = False) -> Tensor:
    """``0.5 - 0.5 cos(2 pi k / M)`` for k = 0 .. N - 1 (``torch.hann_window``), N the
    window_length: M = N for the default ``periodic=True``, M = N - 1 when
    ``periodic=False`` (the symmetric window).

    >>> tl.hann_window(4)                   # periodic: 2 pi k / 4
    tensor([0.0000, 0.5000, 1.0000, 0.5000])
    >>> tl.hann_window(4, periodic=False)   # symmetric: 2 pi k / 3
    tensor([0.0000, 0.7500, 0.7500, 0.0000])
    """
    return _make("hann_window", window_length, periodic, dtype, device, requires_grad,
                 _cosine_sum(0.5, 0.5))


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54,
                   beta: float = 0.46, *, dtype=None, device=None,
                   requires_grad: bool = False) -> Tensor:
    """``alpha - beta cos(2 pi k / M)`` (``torch.hamming_window``): M = N (window_length)
    for the default ``periodic=True``, N - 1 when ``periodic=False``."""
    return _make("hamming_window", window_length, periodic, dtype, device, requires_grad,
                 _cosine_sum(float(alpha), float(beta)))


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, device=None,
                    requires_grad: bool = False) -> Tensor:
    """``0.42 - 0.5 cos(2 pi k / M) + 0.08 cos(4 pi k / M)`` (``torch.blackman_window``):
    M = N (window_length) for the default ``periodic=True``, N - 1 when
    ``periodic=False``."""
    return _make("blackman_window", window_length, periodic, dtype, device, requires_grad,
                 _cosine_sum(0.42, 0.5, 0.08))


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, device=None,
                    requires_grad: bool = False) -> Tensor:
    """The triangular window ``1 - |2 k / M - 1|`` (``torch.bartlett_window``): M = N
    (window_length) for the default ``periodic=True``, N - 1 when ``periodic=False``."""
    return _make("bartlett_window", window_length, periodic, dtype, device, requires_grad,
                 _bartlett)


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *,
                  dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``I0(beta sqrt(1 - (2 k / M - 1)**2)) / I0(beta)`` (``torch.kaiser_window``; I0 the
    modified Bessel function of order 0): M = N (window_length) for the default
    ``periodic=True``, N - 1 when ``periodic=False``."""
    return _make("kaiser_window", window_length, periodic, dtype, device, requires_grad,
                 _kaiser(float(beta)))
