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


# --- sizes known only when a captured graph runs -------------------------------------------
def _lower(x: Tensor, values) -> tuple[tuple, dict, list]:
    """Under capture with dynamic dims: ``values`` holding TracedSizes -> (plain ints, the
    ``sizes`` attr over the node's inputs, the extra source tensors), as reshape takes
    them (tensorlib.graph.sizes); outside capture the values themselves."""
    from ..autograd.mode import state
    if state.tracer is None or not any(type(v) is not int for v in values):
        return tuple(int(v) for v in values), {}, []
    from ..graph.sizes import lower
    plain, sizes, srcs = lower(values, [x], 1)
    return plain, ({"sizes": sizes} if sizes else {}), srcs


def _now(plain, sizes, shapes) -> tuple:
    if not sizes:
        return tuple(plain)
    from ..graph.sizes import apply_sizes
    return apply_sizes(plain, sizes, shapes)


# --- fft_resize -------------------------------------------------------------------------
def _resize_fwd(xp, x, *srcs, axes, shape=None, sizes=()):
    if shape is None:           # (graph files from before ``shape``: ``sizes`` held it)
        shape, sizes = sizes, ()
    lengths = _now(shape, sizes, [x.shape] + [s.shape for s in srcs])
    if all(x.shape[ax] == n for ax, n in zip(axes, lengths)):
        return x.copy()         # a traced resize that is a no-op at this size
    src = [slice(None)] * x.ndim
    out_shape = list(x.shape)
    for ax, n in zip(axes, lengths):
        src[ax] = slice(0, min(n, x.shape[ax]))
        out_shape[ax] = n
    out = xp.zeros(tuple(out_shape), x.dtype)
    out[tuple(src)] = x[tuple(src)]
    return out


def _resize_infer(x, *srcs, axes, shape=None, sizes=()):
    if shape is None:
        shape, sizes = sizes, ()
    out = list(x[0])
    for ax, n in zip(axes, _now(shape, sizes, [tuple(x[0])] + [tuple(s[0]) for s in srcs])):
        out[ax] = n
    return tuple(out), x[1]


def _resize_vjp(node, g):
    x = node.inputs[0]
    axes = node.attrs["axes"]
    return (resize(g, axes, tuple(x.shape[ax] for ax in axes), force=True),) \
        + (None,) * (len(node.inputs) - 1)


FFT_RESIZE = register(OpDef(
    "fft_resize", _resize_fwd, infer=_resize_infer, saves=False, cost=io_cost(),
    vjp=_resize_vjp, complex="holomorphic",
    doc="Zero-pads or truncates ``axes`` to the lengths ``shape`` (the n / s of torch.fft)."))


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
# Both take ``axes``: further axes transformed in full (before the one-sided ``axis`` in
# c2r, after it in r2c), so rfftn / irfftn are one pocketfft call and their gradients too.
# With A the unnormalised rfftn over axes + (axis,) and D the doubling of the interior bins
# of ``axis``: r2c = s A, c2r(inverse=False) = s A^H, c2r(inverse=True) = t A^H D, and
# r2c(double=True) = s D A (t the inverse scale of norm = s of SWAP[norm]); each pair is
# the other's vjp, so gradients of every order stay FFTs.
def _r2c_fwd(xp, x, axis, norm, axes=(), double=False):
    lib = _lib(xp)
    kw = _kw(x) if lib is not xp.fft else {}
    if axes:
        out = lib.rfftn(x, axes=tuple(axes) + (axis,), norm=norm, **kw)
    else:
        out = lib.rfft(x, axis=axis, norm=norm, **kw)
    out = out.astype(_dtypes.complex_of(x.dtype), copy=False)
    if double:
        n = x.shape[axis]
        out *= _bin_weights(xp, out.shape[axis], n, out.ndim, axis,
                            _dtypes.real_of(out.dtype), 2.0, 1.0)
    return out


def _r2c_check(x, axis, norm, axes=(), double=False):
    if x.dtype.kind not in "f":
        raise TypeError(f"fft_r2c: expects a real floating input, got dtype {x.dtype}")


def _r2c_infer(x, *, axis, norm, axes=(), double=False):
    shape = list(x[0])
    n = shape[axis]
    shape[axis] = None if n is None else n // 2 + 1
    return tuple(shape), _dtypes.complex_of(x[1])


def _r2c_vjp(node, g):
    x = node.inputs[0]
    a = node.attrs
    axis, norm, axes = a["axis"], a["norm"], tuple(a.get("axes", ()))
    if a.get("double", False):
        # (s D A)^H = s A^H D = c2r(inverse=True) under the norm whose inverse scale is s
        return (c2r(g, axis, x.shape[axis], SWAP[norm], axes),)
    # x.grad = Re(A^H g) scaled: the adjoint (no doubling of bins)
    return (c2r(g, axis, x.shape[axis], norm, axes, inverse=False),)


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


def _c2r_n(g, srcs, n, sizes) -> int:
    return _now((n,), sizes, [g.shape] + [s.shape for s in srcs])[0]


def _c2r_fwd(xp, g, *srcs, axis, n, norm, inverse=False, axes=(), sizes=()):
    n = _c2r_n(g, srcs, n, sizes)
    lib = _lib(xp)
    kw = _kw(g) if lib is not xp.fft else {}
    rdt = _dtypes.real_of(g.dtype)
    if not inverse:
        # Re(A^H g) times the forward scale: irfftn counts interior bins twice and divides
        # by N, so they are halved and all multiplied by N (in one weight pass; "backward"
        # is every CuPy's norm)
        big = n * math.prod(g.shape[a] for a in axes)
        c = _scale(norm, big) * big
        g = g * _bin_weights(xp, g.shape[axis], n, g.ndim, axis, rdt, 0.5 * c, c)
        norm = "backward"
        if lib is not xp.fft:
            kw["overwrite_x"] = True        # g is our own copy
    if axes:
        axes = tuple(axes)
        out = lib.irfftn(g, s=[g.shape[a] for a in axes] + [n], axes=axes + (axis,),
                         norm=norm, **kw)
    else:
        out = lib.irfft(g, n=n, axis=axis, norm=norm, **kw)
    return out.astype(rdt, copy=False)


def _c2r_check(g, *srcs, axis, n, norm, inverse=False, axes=(), sizes=()):
    n = _c2r_n(g, srcs, n, sizes)
    if g.shape[axis] != n // 2 + 1:
        raise ValueError(f"fft_c2r: expected {n // 2 + 1} bins along axis {axis} for n={n}, "
                         f"got {g.shape[axis]}")


def _c2r_infer(g, *srcs, axis, n, norm, inverse=False, axes=(), sizes=()):
    shape = list(g[0])
    shape[axis] = _now((n,), sizes, [tuple(g[0])] + [tuple(s[0]) for s in srcs])[0]
    return tuple(shape), _dtypes.real_of(g[1])


def _c2r_vjp(node, h):
    a = node.attrs
    axis, norm, axes = a["axis"], a["norm"], tuple(a.get("axes", ()))
    rest = (None,) * (len(node.inputs) - 1)
    if not a.get("inverse", False):
        return (r2c(h, axis, norm, axes),) + rest
    # irfftn = t A^H D: G.grad = D A h scaled by t, as PyTorch's (fft_c2r_backward doubles
    # the same bins)
    return (r2c(h, axis, SWAP[norm], axes, double=True),) + rest


FFT_R2C = register(OpDef(
    "fft_r2c", _r2c_fwd, check=_r2c_check, infer=_r2c_infer, saves=False, cost=io_cost(),
    vjp=_r2c_vjp,
    doc="The one-sided DFT (rfft) of a real ``axis`` with a torch.fft norm, then the full "
        "DFT of ``axes`` (rfftn); ``double`` doubles the interior bins (irfft's gradient)."))
FFT_C2R = register(OpDef(
    "fft_c2r", _c2r_fwd, check=_c2r_check, infer=_c2r_infer, saves=False, cost=io_cost(),
    vjp=_c2r_vjp, complex="rule",
    doc="The inverse DFT of ``axes``, then a one-sided spectrum along ``axis`` to n real "
        "samples: inverse=True the inverse rfftn (irfftn), otherwise the adjoint of "
        "fft_r2c."))


# --- functional forms (checked by tensorlib.fft) ----------------------------------------
def _same_size(a, b) -> bool:
    """Whether sizes ``a`` and ``b`` agree at every run of a captured graph, not only now."""
    from ..graph.tracer import TracedSize
    ta, tb = isinstance(a, TracedSize), isinstance(b, TracedSize)
    if not ta and not tb:
        return int(a) == int(b)
    if not (ta and tb) or int.__int__(a) != int.__int__(b):
        return False
    from ..graph.sizes import number_sources
    ea, eb = number_sources([a.expr, b.expr])[0]
    return ea == eb


def resize(x: Tensor, axes: tuple, sizes: tuple, force: bool = False) -> Tensor:
    """``x`` zero-padded or truncated to ``sizes`` along ``axes`` (sizes may be traced);
    ``force``: a node even where nothing changes now (a vjp's, shapes follow run time)."""
    shape = x.shape
    pairs = [(a, n) for a, n in zip(axes, sizes) if force or not _same_size(shape[a], n)]
    if not pairs:
        return x
    plain, extra, srcs = _lower(x, [n for _, n in pairs])
    return apply(FFT_RESIZE, x, *srcs, axes=tuple(a for a, _ in pairs), shape=plain, **extra)


def c2c(x: Tensor, axes: tuple, norm: str, inverse: bool) -> Tensor:
    if not axes:
        return x
    return apply(FFT_C2C, x, axes=tuple(axes), norm=norm, inverse=bool(inverse))


def r2c(x: Tensor, axis: int, norm: str, axes: tuple = (), double: bool = False) -> Tensor:
    """The one-sided DFT of ``axis`` and the full one of ``axes`` (rfftn over axes + axis)."""
    extra = {"axes": tuple(axes)} if axes else {}
    if double:
        extra["double"] = True
    return apply(FFT_R2C, x, axis=axis, norm=norm, **extra)


def c2r(x: Tensor, axis: int, n, norm: str, axes: tuple = (), inverse: bool = True) -> Tensor:
    """The inverse DFT of ``axes`` then ``axis``'s one-sided one to ``n`` real samples
    (``n`` may be traced); ``inverse`` False: the adjoint of :func:`r2c` instead."""
    (n,), extra, srcs = _lower(x, [n])
    if extra:
        n = -1      # computed when the graph runs: the traced value is no part of it
    if axes:
        extra["axes"] = tuple(axes)
    return apply(FFT_C2R, x, *srcs, axis=axis, n=n, norm=norm, inverse=bool(inverse), **extra)
