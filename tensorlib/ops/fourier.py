"""The real DFT as a registry op: ``rdft`` (an FFT) and its adjoint ``rdft_adjoint`` (an
inverse FFT), the vjp of each other, so gradients of any order are FFTs too.

Real and imaginary parts sit in a last dim of 2 (tensorlib has no complex dtype), the
layout of ONNX's ``DFT`` with ``onesided=1``, which ``rdft`` exports to (opset 17+).
:func:`tl.stft` and :func:`tl.istft` are built on them: O(n log n) per frame where products
with cosine and sine matrices cost O(n^2).
"""
from __future__ import annotations

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from ._util import to_float, to_tensor
from .nn_util import io_cost
from .registry import OpDef, register


def _rdft_fwd(xp, x):
    c = xp.fft.rfft(x, axis=-1)
    return xp.stack([c.real, c.imag], axis=-1).astype(x.dtype, copy=False)


def _adjoint_fwd(xp, g, n):
    # sum_k Re(G_k e^{2 pi i k t / n}) over the n // 2 + 1 frequencies: irfft counts each
    # interior frequency twice (as its mirror image), so those are halved first
    G = g[..., 0] + 1j * g[..., 1]
    m = G.shape[-1]
    last = m - 1 if n % 2 == 0 else m
    if last > 1:
        G[..., 1:last] *= 0.5
    return (xp.fft.irfft(G, n=n, axis=-1) * n).astype(g.dtype, copy=False)


def _rdft_infer(x):
    shape, dt = x
    n = shape[-1]
    return tuple(shape[:-1]) + (None if n is None else n // 2 + 1, 2), dt


def _adjoint_infer(g, *, n):
    shape, dt = g
    return tuple(shape[:-2]) + (n,), dt


RDFT = register(OpDef(
    "rdft", _rdft_fwd, infer=_rdft_infer, saves=False, cost=io_cost(),
    vjp=lambda node, g: (apply(RDFT_ADJOINT, g, n=node.inputs[0]._data.shape[-1]),),
    doc="The one-sided DFT of a real last axis: (..., n) -> (..., n // 2 + 1, 2)."))
RDFT_ADJOINT = register(OpDef(
    "rdft_adjoint", _adjoint_fwd, infer=_adjoint_infer, saves=False, cost=io_cost(),
    vjp=lambda node, g: (apply(RDFT, g),),
    doc="The adjoint (transpose) of rdft: (..., n // 2 + 1, 2) -> (..., n)."))


def rdft(x) -> Tensor:
    """The one-sided DFT of the last axis of a real tensor, ``(..., n)`` to
    ``(..., n // 2 + 1, 2)`` (real and imaginary parts last): ``torch.view_as_real(
    torch.fft.rfft(x))``.

    >>> tl.rdft(tl.tensor([1.0, 0.0, 0.0, 0.0]))[:, 0]
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
    # irfft = adjoint with the interior frequencies counted twice, over n
    from ..creation import tensor
    w = np.full((m, 1), 2.0 / n)
    w[0] = 1.0 / n
    if n % 2 == 0:
        w[-1] = 1.0 / n
    return apply(RDFT_ADJOINT, s * tensor(w.astype(s.dtype), device=s.device), n=n)
