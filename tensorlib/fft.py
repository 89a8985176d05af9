"""Discrete Fourier transforms: PyTorch's ``torch.fft`` module.

Every transform takes PyTorch's arguments: ``n`` (1-d) or ``s`` (n-d) zero-pads or truncates
the input along the transformed dims before the transform (``-1`` in ``s`` keeps a size),
``dim`` picks the dims (negative ones count from the end), and ``norm`` scales as PyTorch's:
``"backward"`` (default) leaves the forward transform unscaled and divides the inverse by n,
``"ortho"`` scales both by 1 / sqrt(n), ``"forward"`` divides the forward one by n.
Real inputs to the complex transforms are promoted to complex, integer and bool ones to the
default float first; float32 gives complex64, float64 complex128. All are differentiable
(gradients of any order, PyTorch's complex convention) and capturable.

>>> tl.fft.fft(tl.tensor([1.0, 0.0, 0.0, 0.0]))
tensor([1.+0.j, 1.+0.j, 1.+0.j, 1.+0.j])
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import _dtypes
from ._tensor import Tensor
from .ops import fft as _F
from .ops._util import to_tensor

__all__ = ["fft", "fft2", "fftfreq", "fftn", "fftshift", "hfft", "hfft2", "hfftn", "ifft",
           "ifft2", "ifftn", "ifftshift", "ihfft", "ihfft2", "ihfftn", "irfft", "irfft2",
           "irfftn", "rfft", "rfft2", "rfftfreq", "rfftn"]

_TORCH_NAMES = {"complex64": "ComplexFloat", "complex128": "ComplexDouble"}


# --- argument checks --------------------------------------------------------------------
def _norm(norm: str | None) -> str:
    if norm is None:
        return "backward"
    if norm not in _F.NORMS:
        raise RuntimeError(f'Invalid normalization mode: "{norm}" (expected "backward", '
                           f'"ortho" or "forward")')
    return norm


def _input(fn: str, x, real: bool = False) -> Tensor:
    """The input as a float or complex tensor (integers and bool: the default float);
    ``real``: complex inputs are refused, as PyTorch's rfft/ihfft do."""
    x = to_tensor(x)
    dt = x.dtype
    if dt.kind == "c":
        if real:
            raise RuntimeError(f"{fn} expects a real input tensor, but got "
                               f"{_TORCH_NAMES.get(dt.name, dt.name)}")
        return x
    if dt == _dtypes.float16:
        raise RuntimeError(f"{fn}: Unsupported dtype Half (float16 FFTs need a GPU in "
                           "PyTorch); cast to float32 first")
    if dt.kind != "f":
        x = x.astype(_dtypes.default_float)
    return x


def _as_complex(x: Tensor) -> Tensor:
    return x if x.dtype.kind == "c" else x.astype(_dtypes.complex_of(x.dtype))


def _wrap(d, ndim: int) -> int:
    d = int(d)
    if ndim == 0:
        raise IndexError(f"Dimension specified as {d} but tensor has no dimensions")
    if not -ndim <= d < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, "
                         f"{ndim - 1}], but got {d})")
    return d % ndim


def _iv(n) -> int:
    """``n`` as a plain int; a traced size (capture with dynamic dims) is read without
    fixing it in the graph (the callers keep the traced size itself)."""
    return int.__int__(n) if isinstance(n, int) else int(n)


def _points(n) -> int:
    """A transform length (kept as is when it is a traced size: the graph follows it)."""
    if _iv(n) < 1:
        raise RuntimeError(f"Invalid number of data points ({_iv(n)}) specified")
    return n if isinstance(n, int) and not isinstance(n, bool) else int(n)


def _dims_sizes(x: Tensor, s, dim, default_all: bool = True) -> tuple[tuple, tuple]:
    """PyTorch's canonical (dims, sizes) of an n-d transform: ``dim`` None takes the last
    len(s) dims (all dims without ``s``); a size of -1 keeps the input's."""
    if isinstance(dim, (int, np.integer)):
        dim = (dim,)
    if isinstance(s, (int, np.integer)):
        s = (s,)
    if dim is None:
        if s is None:
            dims = tuple(range(x.ndim)) if default_all else ()
        else:
            if len(s) > x.ndim:
                raise RuntimeError(f"Got shape with {len(s)} values but input tensor only "
                                   f"has {x.ndim} dimensions.")
            dims = tuple(range(x.ndim - len(s), x.ndim))
    else:
        dims = tuple(_wrap(d, x.ndim) for d in dim)
        if len(set(dims)) != len(dims):
            raise RuntimeError("FFT dims must be unique")
        if s is not None and len(s) != len(dims):
            raise RuntimeError("When given, dim and shape arguments must have the same length")
    if s is None:
        sizes = tuple(_points(x.shape[d]) for d in dims)
    else:
        sizes = tuple(_points(x.shape[d] if _iv(n) == -1 else n) for d, n in zip(dims, s))
    return dims, sizes


def _c2c(fn: str, input, s, dim, norm, inverse: bool) -> Tensor:
    x = _input(fn, input)
    norm = _norm(norm)
    dims, sizes = _dims_sizes(x, s, dim)
    x = _F.resize(_as_complex(x), dims, sizes)
    return _F.c2c(x, dims, norm, inverse)


def _r2c(fn: str, input, s, dim, norm, forward: bool) -> Tensor:
    """rfftn (``forward``) or ihfftn: the one-sided transform of the last dim, then the
    full one of the others."""
    x = _input(fn, input, real=True)
    norm = _norm(norm)
    dims, sizes = _dims_sizes(x, s, dim)
    if not dims:
        raise RuntimeError(f"{fn} must transform at least one axis")
    x = _F.resize(x, dims, sizes)
    # ihfft is the conjugate of rfft scaled as an inverse transform
    tnorm = norm if forward else _F.SWAP[norm]
    out = _F.r2c(x, dims[-1], tnorm, dims[:-1])
    return out if forward else out.conj()


def _c2r(fn: str, input, s, dim, norm, forward: bool) -> Tensor:
    """irfftn (``forward`` False) or hfftn: the others' full inverse transform, then the
    last dim's one-sided one back to real samples."""
    x = _as_complex(_input(fn, input))
    norm = _norm(norm)
    last_given = s is not None and _iv(s if isinstance(s, (int, np.integer))
                                       else s[-1]) != -1
    dims, sizes = _dims_sizes(x, s, dim)
    if not dims:
        raise RuntimeError(f"{fn} must transform at least one axis")
    last = dims[-1]
    n = _points(sizes[-1] if last_given else 2 * (x.shape[last] - 1))
    if forward:     # hfft: irfft of the conjugate, scaled as a forward transform
        x = x.conj()
        norm = _F.SWAP[norm]
    x = _F.resize(x, dims, sizes[:-1] + (n // 2 + 1,))
    return _F.c2r(x, last, n, norm, dims[:-1])


def _one(n, dim: int) -> tuple:
    return (None if n is None else (n,)), (dim,)


def _two(s, dim) -> tuple:
    return s, (tuple(dim) if dim is not None else None)


# --- complex transforms -----------------------------------------------------------------
def fft(input: Tensor, n: int | None = None, dim: int = -1, norm: str | None = None) -> Tensor:
    """The 1-d DFT of ``input`` along ``dim`` (``torch.fft.fft``); ``n`` pads or truncates.

    >>> tl.fft.fft(tl.tensor([1.0, 2.0])).tolist()
    [(3+0j), (-1+0j)]
    """
    s, d = _one(n, dim)
    return _c2c("fft", input, s, d, norm, False)


def ifft(input: Tensor, n: int | None = None, dim: int = -1,
         norm: str | None = None) -> Tensor:
    """The 1-d inverse DFT along ``dim`` (``torch.fft.ifft``)."""
    s, d = _one(n, dim)
    return _c2c("ifft", input, s, d, norm, True)


def fft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1),
         norm: str | None = None) -> Tensor:
    """The 2-d DFT over ``dim`` (``torch.fft.fft2``)."""
    return _c2c("fft2", input, *_two(s, dim), norm, False)


def ifft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1),
          norm: str | None = None) -> Tensor:
    """The 2-d inverse DFT over ``dim`` (``torch.fft.ifft2``)."""
    return _c2c("ifft2", input, *_two(s, dim), norm, True)


def fftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
         norm: str | None = None) -> Tensor:
    """The n-d DFT over ``dim`` (all dims, or the last ``len(s)``, by default;
    ``torch.fft.fftn``)."""
    return _c2c("fftn", input, s, dim, norm, False)


def ifftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
          norm: str | None = None) -> Tensor:
    """The n-d inverse DFT (``torch.fft.ifftn``)."""
    return _c2c("ifftn", input, s, dim, norm, True)


# --- real-input and real-output transforms ----------------------------------------------
def rfft(input: Tensor, n: int | None = None, dim: int = -1,
         norm: str | None = None) -> Tensor:
    """The one-sided DFT of a real ``input`` along ``dim``: ``n // 2 + 1`` frequencies
    (``torch.fft.rfft``). Complex inputs raise, as PyTorch's.

    >>> tl.fft.rfft(tl.tensor([1.0, 1.0, 1.0, 1.0])).tolist()
    [(4+0j), 0j, 0j]
    """
    s, d = _one(n, dim)
    return _r2c("rfft", input, s, d, norm, True)


def irfft(input: Tensor, n: int | None = None, dim: int = -1,
          norm: str | None = None) -> Tensor:
    """The inverse of :func:`rfft`: a one-sided spectrum of ``m`` bins to ``n`` real samples
    (default ``2 * (m - 1)``; ``torch.fft.irfft``). The imaginary parts of the zero (and,
    for even n, the last) bin are ignored, and their gradients are zero."""
    s, d = _one(n, dim)
    return _c2r("irfft", input, s, d, norm, False)


def rfft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1),
          norm: str | None = None) -> Tensor:
    """The 2-d DFT of a real input, one-sided in the last of ``dim`` (``torch.fft.rfft2``)."""
    return _r2c("rfft2", input, *_two(s, dim), norm, True)


def irfft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1),
           norm: str | None = None) -> Tensor:
    """The inverse of :func:`rfft2` (``torch.fft.irfft2``)."""
    return _c2r("irfft2", input, *_two(s, dim), norm, False)


def rfftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
          norm: str | None = None) -> Tensor:
    """The n-d DFT of a real input, one-sided in the last of ``dim`` (``torch.fft.rfftn``)."""
    return _r2c("rfftn", input, s, dim, norm, True)


def irfftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
           norm: str | None = None) -> Tensor:
    """The inverse of :func:`rfftn`; the last size defaults to ``2 * (m - 1)``
    (``torch.fft.irfftn``)."""
    return _c2r("irfftn", input, s, dim, norm, False)


def hfft(input: Tensor, n: int | None = None, dim: int = -1,
         norm: str | None = None) -> Tensor:
    """The DFT of a Hermitian-symmetric signal given by its one-sided half: ``n`` real
    frequencies (default ``2 * (m - 1)``; ``torch.fft.hfft``)."""
    s, d = _one(n, dim)
    return _c2r("hfft", input, s, d, norm, True)


def ihfft(input: Tensor, n: int | None = None, dim: int = -1,
          norm: str | None = None) -> Tensor:
    """The inverse of :func:`hfft`: the one-sided inverse DFT of a real input
    (``torch.fft.ihfft``)."""
    s, d = _one(n, dim)
    return _r2c("ihfft", input, s, d, norm, False)


def hfft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1),
          norm: str | None = None) -> Tensor:
    """The 2-d :func:`hfftn` (``torch.fft.hfft2``)."""
    return _c2r("hfft2", input, *_two(s, dim), norm, True)


def ihfft2(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] = (-2, -1),
           norm: str | None = None) -> Tensor:
    """The 2-d :func:`ihfftn` (``torch.fft.ihfft2``)."""
    return _r2c("ihfft2", input, *_two(s, dim), norm, False)


def hfftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
          norm: str | None = None) -> Tensor:
    """The n-d DFT of a Hermitian-symmetric signal, one-sided in the last of ``dim``
    (``torch.fft.hfftn``): real output."""
    return _c2r("hfftn", input, s, dim, norm, True)


def ihfftn(input: Tensor, s: Sequence[int] | None = None, dim: Sequence[int] | None = None,
           norm: str | None = None) -> Tensor:
    """The inverse of :func:`hfftn` for a real input (``torch.fft.ihfftn``)."""
    return _r2c("ihfftn", input, s, dim, norm, False)


# --- helpers ----------------------------------------------------------------------------
def _freq_tensor(fn: str, vals: np.ndarray, dtype, device, requires_grad: bool) -> Tensor:
    from .creation import tensor
    dt = _dtypes.default_float if dtype is None else np.dtype(dtype)
    return tensor(vals.astype(dt), device=device, requires_grad=requires_grad)


def _freq_n(n) -> int:
    n = int(n)
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    return n


def _over(k: np.ndarray, dn: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return k / np.float64(dn)


def fftfreq(n: int, d: float = 1.0, *, dtype=None, device=None,
            requires_grad: bool = False) -> Tensor:
    """The sample frequencies of an ``n``-point DFT with sample spacing ``d``:
    ``[0, 1, ..., (n - 1) // 2, -(n // 2), ..., -1] / (d * n)`` (``torch.fft.fftfreq``).

    >>> tl.fft.fftfreq(4).tolist()
    [0.0, 0.25, -0.5, -0.25]
    """
    n = _freq_n(n)
    k = np.concatenate([np.arange((n - 1) // 2 + 1), -np.arange(n // 2, 0, -1)])
    return _freq_tensor("fftfreq", _over(k, d * n), dtype, device, requires_grad)


def rfftfreq(n: int, d: float = 1.0, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """The sample frequencies of :func:`rfft` of ``n`` points: ``[0, ..., n // 2] / (d * n)``
    (``torch.fft.rfftfreq``)."""
    n = _freq_n(n)
    k = np.arange(n // 2 + 1)
    # n = 0: [nan] (0 / 0), as PyTorch's
    return _freq_tensor("rfftfreq", _over(k, d * n), dtype, device, requires_grad)


def _shift(input, dim, inverse: bool) -> Tensor:
    from .ops.shape import roll
    x = to_tensor(input)
    if dim is None:
        dims = tuple(range(x.ndim))
    elif isinstance(dim, (int, np.integer)):
        dims = (_wrap(dim, x.ndim),)
    else:
        dims = tuple(_wrap(d, x.ndim) for d in dim)
    if not dims:
        return x
    from .graph.tracer import TracedSize
    shape = x.shape
    traced = [d for d in dims if isinstance(shape[d], TracedSize)]
    if traced:
        # a size read from a None dim: the two halves as slices at a run-time split point
        # (roll's shift is a plain number), so one graph serves every length
        from .ops.shape import concatenate
        for d in traced:
            n = shape[d]
            cut = n // 2 if inverse else n - n // 2
            lead = (slice(None),) * d
            x = concatenate([x[lead + (slice(cut, None),)], x[lead + (slice(None, cut),)]],
                            axis=d)
        dims = tuple(d for d in dims if d not in traced)
        if not dims:
            return x
    shifts = tuple((shape[d] + 1) // 2 if inverse else shape[d] // 2 for d in dims)
    return roll(x, shifts, dims)


def fftshift(input: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    """The zero frequency moved to the centre of ``dim`` (all dims by default), a roll by
    ``n // 2`` (``torch.fft.fftshift``).

    >>> tl.fft.fftshift(tl.fft.fftfreq(4)).tolist()
    [-0.5, -0.25, 0.0, 0.25]
    """
    return _shift(input, dim, False)


def ifftshift(input: Tensor, dim: int | Sequence[int] | None = None) -> Tensor:
    """The inverse of :func:`fftshift`, a roll by ``-(n // 2)`` (``torch.fft.ifftshift``)."""
    return _shift(input, dim, True)
