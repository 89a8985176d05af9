"""Cases for the real DFT ops (tensorlib/ops/fourier.py), with NumPy's FFT as reference."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tensorlib.ops import fourier

from . import add, arr


def _signal(draw):
    lead = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))
    return [arr(draw, lead + (draw(st.integers(1, 9)),))]


def _spectrum(draw):
    n = draw(st.integers(1, 9))
    lead = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))
    return [arr(draw, lead + (n // 2 + 1, 2))], {"n": n}


def _rdft_ref(x):
    c = np.fft.rfft(x, axis=-1)
    return np.stack([c.real, c.imag], axis=-1)


def _adjoint_ref(g, n):
    # A^T g for A the real DFT matrix: sum_k Re(G_k) cos(2 pi k t / n) - Im(G_k) sin(...)
    k = np.arange(g.shape[-2])[:, None]
    t = np.arange(n)[None, :]
    ang = 2 * np.pi * k * t / n
    return g[..., 0] @ np.cos(ang) - g[..., 1] @ np.sin(ang)


def _irdft_ref(g, n):
    return np.fft.irfft(g[..., 0] + 1j * g[..., 1], n=n, axis=-1)


add("rdft", fourier.rdft, _signal, _rdft_ref, atol=1e-8)
add("rdft_adjoint", lambda g, n: fourier.irdft(g, n), _spectrum, _irdft_ref, atol=1e-8,
    name="irdft")
add("rdft_adjoint", fourier.rdft_adjoint, _spectrum, _adjoint_ref,
    atol=1e-8)
