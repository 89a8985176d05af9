"""The real DFT as a registry op: ``rdft`` (an FFT) and its adjoint ``rdft_adjoint`` (an
inverse FFT), the vjp of each other, so gradients of any order are FFTs too.

Real and imaginary parts sit in a last dim of 2 (tensorlib has no complex dtype), the
layout of ONNX's ``DFT`` with ``onesided=1``, which ``rdft`` exports to (opset 17+).
:func:`tl.stft` and :func:`tl.istft` are built on them: O(n log n) per frame where products
with cosine and sine matrices cost O(n^2).

Kernels: on CPU SciPy's pocketfft when SciPy is installed (an optional dependency), NumPy's
FFT otherwise; CuPy's (cuFFT) on GPUs, through the same array-module code. A float32 input
is transformed in float32, and the complex result is returned as a view of its (real,
imaginary) pairs, never stacked.
"""
from __future__ import annotations

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from . import _scipy
from ._util import to_float, to_tensor
from .nn_util import io_cost
from .registry import OpDef, register


_COMPLEX = {4: np.complex64, 8: np.complex128}
_PARALLEL_MIN = 1 << 16       # elements below which worker threads cost more than they save


def _pairs(xp, c, dt):
    """A complex spectrum as (..., m, 2) real/imaginary pairs of ``dt``: a zero-copy view
    (complex numbers are stored as such pairs), no stack."""
    if c.real.dtype != dt or not c.flags.c_contiguous:
        return xp.stack([c.real, c.imag], axis=-1).astype(dt, copy=False)
    return c.view(dt).reshape(tuple(c.shape) + (2,))


def _complex(xp, g):
    """(..., m, 2) pairs as a complex (..., m) array: a view wherever each pair is adjacent
    (a transposed spectrum too: the FFT reads strided rows at no extra cost, where copying
    it as floats moves two 4-byte elements per inner loop, about ten times slower)."""
    ct = _COMPLEX.get(g.dtype.itemsize)
    if ct is None or g.dtype.kind != "f":
        return g[..., 0] + 1j * g[..., 1]
    if g.strides[-1] == g.dtype.itemsize and all(st % (2 * g.dtype.itemsize) == 0
                                                 for st in g.strides[:-1]):
        try:
            return g.view(ct)[..., 0]
        except ValueError:      # (an array module that views only contiguous arrays)
            pass
    return xp.ascontiguousarray(g).view(ct)[..., 0]


def _adjoint_weights(xp, m, n, dt):
    # sum_k Re(G_k e^{2 pi i k t / n}) over the n // 2 + 1 frequencies: irfft counts each
    # interior frequency twice (as its mirror image) and divides by n, so those are halved
    # and all times n (in the weights: no pass of its own, and no norm="forward", which
    # older CuPy lacks)
    w = np.full(m, 0.5 * n)
    w[0] = n
    if n % 2 == 0:
        w[-1] = n
    return xp.asarray(w.astype(dt))


def _rdft_fwd(xp, x):
    return _pairs(xp, xp.fft.rfft(x, axis=-1), x.dtype)


def _adjoint_fwd(xp, g, n, inverse=False):
    if inverse:     # the inverse rfft itself: no weights to apply
        return xp.fft.irfft(_complex(xp, g), n=n, axis=-1).astype(g.dtype, copy=False)
    G = _complex(xp, g) * _adjoint_weights(xp, g.shape[-2], n, g.dtype)
    return xp.fft.irfft(G, n=n, axis=-1).astype(g.dtype, copy=False)


def _cpu_fft():
    """SciPy's pocketfft when installed: it transforms float32 in float32, vectorised over
    rows, several times faster than NumPy 2.4's (whose float32 rfft is slower than its
    float64 one); NumPy's otherwise."""
    return _scipy.fft()


def _workers(a) -> int:
    from .._threads import get_num_threads
    return get_num_threads() if a.size >= _PARALLEL_MIN else 1


def _rdft_cpu(x):
    sfft = _cpu_fft()
    if sfft is None:
        return _rdft_fwd(np, x)
    return _pairs(np, sfft.rfft(x, axis=-1, workers=_workers(x)), x.dtype)


def _adjoint_cpu(g, n, inverse=False):
    sfft = _cpu_fft()
    if sfft is None:
        return _adjoint_fwd(np, g, n, inverse)
    G = _complex(np, g)
    if not inverse:
        G = G * _adjoint_weights(np, g.shape[-2], n, g.dtype)
    return sfft.irfft(G, n=n, axis=-1, workers=_workers(G)).astype(g.dtype, copy=False)


def _rdft_infer(x):
    shape, dt = x
    n = shape[-1]
    return tuple(shape[:-1]) + (None if n is None else n // 2 + 1, 2), dt


def _adjoint_infer(g, *, n, inverse=False):
    shape, dt = g
    return tuple(shape[:-2]) + (n,), dt


def _irfft_weights(m: int, n: int, dt, device) -> Tensor:
    """(m, 2): irfft as the adjoint of the weighted spectrum, 1 / n at the zero (and, for
    even n, the last) frequency, 2 / n between (each interior frequency stands for its mirror
    image too). (m, 2) rather than (m, 1): broadcasting over a last dim of 2 runs NumPy's
    inner loop two elements at a time, several times slower."""
    from ..creation import tensor
    w = np.full((m, 2), 2.0 / n)
    w[0] = 1.0 / n
    if n % 2 == 0:
        w[-1] = 1.0 / n
    return tensor(w.astype(dt), device=device)


def _adjoint_vjp(node, g):
    spec = apply(RDFT, g)
    if not node.attrs.get("inverse", False):
        return spec
    m = node.inputs[0]._data.shape[-2]
    return spec * _irfft_weights(m, node.attrs["n"], g.dtype, g.device)


RDFT = register(OpDef(
    "rdft", _rdft_fwd, kernels={"cpu": _rdft_cpu}, infer=_rdft_infer, saves=False, cost=io_cost(),
    vjp=lambda node, g: (apply(RDFT_ADJOINT, g, n=node.inputs[0]._data.shape[-1]),),
    doc="The one-sided DFT of a real last axis: (..., n) -> (..., n // 2 + 1, 2)."))
RDFT_ADJOINT = register(OpDef(
    "rdft_adjoint", _adjoint_fwd, kernels={"cpu": _adjoint_cpu}, infer=_adjoint_infer,
    saves=False, cost=io_cost(),
    vjp=lambda node, g: (_adjoint_vjp(node, g),),
    doc="The adjoint (transpose) of rdft: (..., n // 2 + 1, 2) -> (..., n); with "
        "inverse=True the inverse rfft (irdft), the adjoint of the weighted spectrum."))


def rdft(x) -> Tensor:
    """The one-sided DFT of the last axis of a real tensor, ``(..., n)`` to
    ``(..., n // 2 + 1, 2)`` (real and imaginary parts last): ``torch.view_as_real(
    torch.fft.rfft(x))``.

    >>> from tensorlib.ops.fourier import rdft
    >>> rdft(tl.tensor([1.0, 0.0, 0.0, 0.0]))[:, 0]
    tensor([1., 1., 1.])
    """
    x = to_float(to_tensor(x))
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"rdft: needs a last axis of at least one sample, got shape "
                         f"{tuple(x.shape)}")
    return apply(RDFT, x)


def rdft_adjoint(spec, n: int) -> Tensor:
    """The adjoint (transpose) of :func:`rdft` for ``n`` samples: ``(..., n // 2 + 1, 2)``
    to ``(..., n)``, ``sum_k Re(G_k exp(2 pi i k t / n))`` (the gradient of rdft)."""
    s = to_float(to_tensor(spec))
    if s.ndim < 2 or s.shape[-1] != 2 or int(n) // 2 + 1 != s.shape[-2]:
        raise ValueError(f"rdft_adjoint: expected (..., {int(n) // 2 + 1}, 2) for n={n}, got "
                         f"shape {tuple(s.shape)}")
    return apply(RDFT_ADJOINT, s, n=int(n))


def irdft(spec, n: int | None = None) -> Tensor:
    """The inverse of :func:`rdft`: ``(..., m, 2)`` back to ``n`` real samples (``n``
    defaults to ``2 * (m - 1)``), as ``torch.fft.irfft`` of the complex spectrum (the
    imaginary parts of the zero and, for even n, the last frequency are ignored)."""
    s = to_float(to_tensor(spec))
    if s.ndim < 2 or s.shape[-1] != 2:
        raise ValueError(f"irdft: expected (..., m, 2) with real and imaginary parts last, "
                         f"got shape {tuple(s.shape)}")
    m = s.shape[-2]
    n = 2 * (m - 1) if n is None else int(n)
    if n <= 0 or n // 2 + 1 != m:
        raise ValueError(f"irdft: {m} frequencies are the one-sided spectrum of n = "
                         f"{2 * (m - 1)} or {2 * m - 1} samples, got n={n}")
    # the kernel runs irfft itself (no weighting pass); the gradient is rdft, weighted
    return apply(RDFT_ADJOINT, s, n=n, inverse=True)


from . import fft as _complex_fft  # noqa: E402, F401  (registers the complex FFT ops)
