"""Window functions, as ``torch.signal.windows``: ``M`` points, symmetric (``sym=True``, for
filter design) or periodic (``sym=False``, for spectral analysis: the symmetric window of
``M + 1`` points without its last). float32 or float64 only (ValueError otherwise), the
default float dtype when ``dtype`` is None; ``requires_grad=True`` makes the window a leaf.

The formulas are those of ``tl.hann_window`` and the other ``tl.*_window`` functions
(``tensorlib.ops.windows``): ``hann(M, sym=False)`` is ``tl.hann_window(M)``.
"""
from __future__ import annotations

from collections.abc import Iterable

from .._tensor import Tensor
from ..ops import windows as _w

__all__ = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine",
           "general_hamming", "hamming", "hann", "kaiser", "nuttall"]


def _layout(name: str, layout) -> None:
    if layout is not None and getattr(layout, "_name", None) != "strided":
        raise ValueError(f"{name} is implemented for strided tensors only, got: {layout!r}")


def _window(name: str, M: int, sym: bool, dtype, layout, device, requires_grad: bool,
            formula, ones_at_one: bool = True) -> Tensor:
    _layout(name, layout)
    return _w._make(name, M, not sym, dtype, device, requires_grad, formula,
                    ones_at_one=ones_at_one, f32_f64=True)


def general_cosine(M: int, *, a: Iterable[float], sym: bool = True, dtype=None, layout=None,
                   device=None, requires_grad: bool = False) -> Tensor:
    """``sum_i (-1)**i a[i] cos(2 pi i n / N)``, N = M - 1 (``sym``) or M
    (``torch.signal.windows.general_cosine``); ``a`` a non-empty list or tuple."""
    if not isinstance(a, Iterable) or isinstance(a, (str, bytes)):
        raise TypeError(f"general_cosine: coefficients a must be a list/tuple, got {a!r}")
    coeffs = tuple(float(c) for c in a)
    if not coeffs:
        raise ValueError("general_cosine: coefficients a cannot be empty")
    return _window("general_cosine", M, sym, dtype, layout, device, requires_grad,
                   _w._cosine_sum(*coeffs))


def general_hamming(M: int, *, alpha: float = 0.54, sym: bool = True, dtype=None, layout=None,
                    device=None, requires_grad: bool = False) -> Tensor:
    """``alpha - (1 - alpha) cos(2 pi n / N)`` (``torch.signal.windows.general_hamming``)."""
    return _window("general_hamming", M, sym, dtype, layout, device, requires_grad,
                   _w._cosine_sum(float(alpha), 1.0 - float(alpha)))


def hamming(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """``0.54 - 0.46 cos(2 pi n / N)`` (``torch.signal.windows.hamming``)."""
    return _window("hamming", M, sym, dtype, layout, device, requires_grad,
                   _w._cosine_sum(0.54, 0.46))


def hann(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
         requires_grad: bool = False) -> Tensor:
    """``0.5 - 0.5 cos(2 pi n / N)`` (``torch.signal.windows.hann``).

    >>> tl.signal.windows.hann(4)
    tensor([0.0000, 0.7500, 0.7500, 0.0000])
    """
    return _window("hann", M, sym, dtype, layout, device, requires_grad,
                   _w._cosine_sum(0.5, 0.5))


def blackman(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """``0.42 - 0.5 cos(2 pi n / N) + 0.08 cos(4 pi n / N)``
    (``torch.signal.windows.blackman``)."""
    return _window("blackman", M, sym, dtype, layout, device, requires_grad,
                   _w._cosine_sum(0.42, 0.5, 0.08))


def nuttall(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """The minimum 4-term Blackman-Harris window of Nuttall
    (``torch.signal.windows.nuttall``)."""
    return _window("nuttall", M, sym, dtype, layout, device, requires_grad,
                   _w._cosine_sum(0.3635819, 0.4891775, 0.1365995, 0.0106411))


def bartlett(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """The triangular window ``1 - |2 n / N - 1|`` (``torch.signal.windows.bartlett``)."""
    return _window("bartlett", M, sym, dtype, layout, device, requires_grad, _w._bartlett)


def kaiser(M: int, *, beta: float = 12.0, sym: bool = True, dtype=None, layout=None,
           device=None, requires_grad: bool = False) -> Tensor:
    """``I0(beta sqrt(1 - (2 n / N - 1)**2)) / I0(beta)`` (``torch.signal.windows.kaiser``);
    ``beta`` must be non-negative."""
    if beta < 0:
        raise ValueError(f"kaiser: beta must be non-negative, got {beta}")
    return _window("kaiser", M, sym, dtype, layout, device, requires_grad,
                   _w._kaiser(float(beta)))


def cosine(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """The sine window ``sin(pi (n + 0.5) / M)``, SciPy's (``torch.signal.windows.cosine``;
    periodic: M + 1 in the denominator)."""
    return _window("cosine", M, sym, dtype, layout, device, requires_grad, _w._cosine,
                   ones_at_one=False)


def gaussian(M: int, *, std: float = 1.0, sym: bool = True, dtype=None, layout=None,
             device=None, requires_grad: bool = False) -> Tensor:
    """``exp(-(n - c)**2 / (2 std**2))``, c the window's centre
    (``torch.signal.windows.gaussian``); ``std`` must be positive."""
    if std <= 0:
        raise ValueError(f"gaussian: standard deviation std must be positive, got {std}")
    return _window("gaussian", M, sym, dtype, layout, device, requires_grad,
                   _w._gaussian(float(std)), ones_at_one=False)


def exponential(M: int, *, center: float | None = None, tau: float = 1.0, sym: bool = True,
                dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """The Poisson window ``exp(-|n - center| / tau)`` (``torch.signal.windows.exponential``):
    ``center`` defaults to the window's centre and may be given only when ``sym=False``;
    ``tau`` must be positive."""
    if tau <= 0:
        raise ValueError(f"exponential: tau must be positive, got {tau}")
    if sym and center is not None:
        raise ValueError("exponential: center must be None for symmetric windows (sym=True)")
    return _window("exponential", M, sym, dtype, layout, device, requires_grad,
                   _w._exponential(None if center is None else float(center), float(tau)),
                   ones_at_one=False)
