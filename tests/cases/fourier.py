"""Cases for the real DFT ops (tensorlib/ops/fourier.py), with NumPy's FFT as reference."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl
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


# --- torch.fft's ops (tensorlib/ops/fft.py) ----------------------------------------------
def _cx_signal(draw):
    from . import carr
    lead = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))
    return [carr(draw, lead + (draw(st.integers(1, 9)),))], {
        "norm": draw(st.sampled_from(["backward", "ortho", "forward"]))}


def _cx_spectrum(draw):
    from . import carr
    n = draw(st.integers(1, 9))
    lead = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))
    z = carr(draw, lead + (n // 2 + 1,))
    return [z], {"n": n, "norm": draw(st.sampled_from(["backward", "ortho", "forward"]))}


def _real_signal(draw):
    return _signal(draw), {"norm": draw(st.sampled_from(["backward", "ortho", "forward"]))}


def _resized(draw):
    from . import carr
    m = draw(st.integers(1, 7))
    return [carr(draw, (draw(st.integers(1, 3)), m))], {"n": draw(st.integers(1, 9))}


add("fft_c2c", lambda z, norm: tl.fft.fft(z, norm=norm), _cx_signal,
    lambda z, norm: np.fft.fft(z, norm=norm), atol=1e-8)
add("fft_c2c", lambda z, norm: tl.fft.ifft(z, norm=norm), _cx_signal,
    lambda z, norm: np.fft.ifft(z, norm=norm), atol=1e-8, name="inverse")
add("fft_r2c", lambda x, norm: tl.fft.rfft(x, norm=norm), _real_signal,
    lambda x, norm: np.fft.rfft(x, norm=norm), atol=1e-8)
add("fft_c2r", lambda z, n, norm: tl.fft.irfft(z, n=n, norm=norm), _cx_spectrum,
    lambda z, n, norm: np.fft.irfft(z, n=n, norm=norm), atol=1e-8)
add("fft_resize", lambda z, n: tl.fft.fft(z, n=n), _resized,
    lambda z, n: np.fft.fft(z, n=n), atol=1e-8)
