"""The complex FFTs behind :mod:`tensorlib.fft`, as four registry ops.

- ``fft_resize``: zero-pads or truncates axes to given sizes (the ``n``/``s`` of torch.fft);
  linear, and resizing back to the old sizes is its transpose.
- ``fft_c2c``: the complex DFT (or its inverse) over some axes, with a norm mode. The DFT
  matrix is symmetric, so the op is its own transpose: its vjp is itself, and being
  holomorphic, the engine conjugates around it (tensorlib.autograd.complex_grad).
- ``fft_r2c``: the one-sided DFT of a real axis (rfft).
- ``fft_c2r``: a complex one-sided spectrum to a real axis: with ``inverse=True`` the inverse
  rfft (irfft), otherwise the adjoint of ``fft_r2c`` (its gradient). ``fft_r2c`` and
  ``fft_c2r`` are each other's vjps (irfft's up to PyTorch's doubling of the interior
  bins), so gradients of any order are FFTs.

Kernels: SciPy's pocketfft on CPU when installed (float32 stays complex64), NumPy's otherwise,
CuPy's (cuFFT) through the array module on GPUs.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _dtypes
from .._apply import apply
from .._tensor import Tensor
from . import _scipy
from .nn_util import io_cost
from .registry import OpDef, register

NORMS = ("backward", "ortho", "forward")
# the norm whose forward scaling equals another's inverse scaling (1/n <-> 1)
SWAP = {"backward": "forward", "ortho": "ortho", "forward": "backward"}
_PARALLEL_MIN = 1 << 16


def _scale(norm: str, n: int) -> float:
    """The factor a forward transform of ``n`` points applies under ``norm``."""
    return {"backward": 1.0, "ortho": 1.0 / math.sqrt(n), "forward": 1.0 / n}[norm]


def _cpu_mod():
    return _scipy.fft()


def _kw(a) -> dict:
    if _cpu_mod() is None:
        return {}
    from .._threads import get_num_threads
    return {"workers": get_num_threads() if a.size >= _PARALLEL_MIN else 1}


def _lib(xp):
    """The FFT module for an array module: SciPy's pocketfft for NumPy arrays when present."""
    if xp is np:
        mod = _cpu_mod()
        if mod is not None:
            return mod
    return xp.fft


# --- fft_resize -------------------------------------------------------------------------
def _resize_fwd(xp, x, axes, sizes):
    src = [slice(None)] * x.ndim
    shape = list(x.shape)
    for ax, n in zip(axes, sizes):
        src[ax] = slice(0, min(n, x.shape[ax]))
        shape[ax] = n
    out = xp.zeros(tuple(shape), x.dtype)
    out[tuple(src)] = x[tuple(src)]
    return out


def _resize_infer(x, *, axes, sizes):
    shape = list(x[0])
    for ax, n in zip(axes, sizes):
        shape[ax] = n
    return tuple(shape), x[1]


def _resize_vjp(node, g):
    shape = node.inputs[0].shape
    return (apply(FFT_RESIZE, g, axes=node.attrs["axes"],
                  sizes=tuple(shape[ax] for ax in node.attrs["axes"])),)


FFT_RESIZE = register(OpDef(
    "fft_resize", _resize_fwd, infer=_resize_infer, saves=False, cost=io_cost(),
    vjp=_resize_vjp, complex="holomorphic",
    doc="Zero-pads or truncates ``axes`` to ``sizes`` (the n / s of torch.fft)."))


# --- fft_c2c ----------------------------------------------------------------------------
def _c2c_fwd(xp, x, axes, norm, inverse=False):
    lib = _lib(xp)
    f = lib.ifftn if inverse else lib.fftn
    kw = _kw(x) if lib is not xp.fft else {}
    out = f(x, axes=axes, norm=norm, **kw)
    return out.astype(_dtypes.complex_of(x.dtype), copy=False)


def _c2c_infer(x, *, axes, norm, inverse=False):
    return tuple(x[0]), _dtypes.complex_of(x[1])


FFT_C2C = register(OpDef(
    "fft_c2c", _c2c_fwd, infer=_c2c_infer, saves=False, cost=io_cost(),
    # the DFT matrix is symmetric: the transpose of the transform is the transform
    vjp=lambda node, g: (apply(FFT_C2C, g, **node.attrs),), complex="holomorphic",
    doc="The complex DFT (inverse=True: inverse DFT) over ``axes`` with a torch.fft norm."))


# --- fft_r2c / fft_c2r ------------------------------------------------------------------
def _r2c_fwd(xp, x, axis, norm):
    lib = _lib(xp)
    kw = _kw(x) if lib is not xp.fft else {}
    out = lib.rfft(x, axis=axis, norm=norm, **kw)
    return out.astype(_dtypes.complex_of(x.dtype), copy=False)


def _r2c_check(x, axis, norm):
    if x.dtype.kind not in "f":
        raise TypeError(f"fft_r2c: expects a real floating input, got dtype {x.dtype}")


def _r2c_infer(x, *, axis, norm):
    shape = list(x[0])
    n = shape[axis]
    shape[axis] = None if n is None else n // 2 + 1
    return tuple(shape), _dtypes.complex_of(x[1])


def _r2c_vjp(node, g):
    # x.grad = Re(R^H g): the adjoint of the one-sided DFT (no doubling of bins)
    x = node.inputs[0]
    axis = node.attrs["axis"]
    return (apply(FFT_C2R, g, axis=axis, n=x.shape[axis], norm=node.attrs["norm"]),)


def _bin_weights(xp, m: int, n: int, ndim: int, axis: int, dt, interior: float, ends: float):
    """Weights over the m = n // 2 + 1 bins along ``axis``: ``ends`` at the zero (and, for
    even n, the last) frequency, ``interior`` between."""
    w = np.full(m, interior, dtype=dt)
    w[0] = ends
    if n % 2 == 0:
        w[-1] = ends
    shape = [1] * ndim
    shape[axis] = m
    return xp.asarray(w.reshape(shape))


def _c2r_fwd(xp, g, axis, n, norm, inverse=False):
    lib = _lib(xp)
    kw = _kw(g) if lib is not xp.fft else {}
    rdt = _dtypes.real_of(g.dtype)
    if not inverse:
        # Re(sum_k g_k e^{2 pi i k t / n}) over the kept bins, times the forward scale:
        # irfft counts interior bins twice and divides by n, so they are halved and all
        # multiplied by n (in one weight pass; "backward" is every CuPy's norm)
        c = _scale(norm, n) * n
        g = g * _bin_weights(xp, g.shape[axis], n, g.ndim, axis, rdt, 0.5 * c, c)
        norm = "backward"
    out = lib.irfft(g, n=n, axis=axis, norm=norm, **kw)
    return out.astype(rdt, copy=False)


def _c2r_check(g, axis, n, norm, inverse=False):
    if g.shape[axis] != n // 2 + 1:
        raise ValueError(f"fft_c2r: expected {n // 2 + 1} bins along axis {axis} for n={n}, "
                         f"got {g.shape[axis]}")


def _c2r_infer(g, *, axis, n, norm, inverse=False):
    shape = list(g[0])
    shape[axis] = n
    return tuple(shape), _dtypes.real_of(g[1])


def _c2r_vjp(node, h):
    axis, n, norm = node.attrs["axis"], node.attrs["n"], node.attrs["norm"]
    if not node.attrs.get("inverse", False):
        return (apply(FFT_R2C, h, axis=axis, norm=norm),)
    # irfft = scale * adjoint(D G), D doubling the interior bins: G.grad = D R h scaled, as
    # PyTorch's (fft_c2r_backward doubles the same bins)
    spec = apply(FFT_R2C, h, axis=axis, norm=SWAP[norm])
    from ..creation import tensor
    d = _bin_weights(np, n // 2 + 1, n, h.ndim, axis, h._data.dtype, 2.0, 1.0)
    return (spec * tensor(d, device=h.device),)


FFT_R2C = register(OpDef(
    "fft_r2c", _r2c_fwd, check=_r2c_check, infer=_r2c_infer, saves=False, cost=io_cost(),
    vjp=_r2c_vjp, doc="The one-sided DFT (rfft) of a real ``axis`` with a torch.fft norm."))
FFT_C2R = register(OpDef(
    "fft_c2r", _c2r_fwd, check=_c2r_check, infer=_c2r_infer, saves=False, cost=io_cost(),
    vjp=_c2r_vjp, complex="rule",
    doc="A one-sided spectrum along ``axis`` to n real samples: inverse=True the inverse "
        "rfft (irfft), otherwise the adjoint of fft_r2c."))


# --- functional forms (checked by tensorlib.fft) ----------------------------------------
def resize(x: Tensor, axes: tuple, sizes: tuple) -> Tensor:
    pairs = [(a, n) for a, n in zip(axes, sizes) if x.shape[a] != n]
    if not pairs:
        return x
    return apply(FFT_RESIZE, x, axes=tuple(a for a, _ in pairs),
                 sizes=tuple(n for _, n in pairs))


def c2c(x: Tensor, axes: tuple, norm: str, inverse: bool) -> Tensor:
    if not axes:
        return x
    return apply(FFT_C2C, x, axes=tuple(axes), norm=norm, inverse=bool(inverse))


def r2c(x: Tensor, axis: int, norm: str) -> Tensor:
    return apply(FFT_R2C, x, axis=axis, norm=norm)


def c2r(x: Tensor, axis: int, n: int, norm: str) -> Tensor:
    return apply(FFT_C2R, x, axis=axis, n=n, norm=norm, inverse=True)
