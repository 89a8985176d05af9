"""Complex numbers: the parts of a complex tensor and the ops between complex and real.

tensorlib's complex dtypes are ``complex64`` (``cfloat``) and ``complex128``
(``cdouble``), NumPy's, so a complex tensor's parts are views of its memory: ``z.real``
and ``z.imag`` are views (writing into them changes ``z``), as are
:func:`view_as_real` and :func:`view_as_complex`, as in PyTorch. :func:`conj` computes the
conjugate (PyTorch marks a lazy conjugate instead; the values are the same).

Gradients follow PyTorch's convention (see tensorlib.autograd.complex_grad): ``z.grad`` is
``dL/dRe(z) + i dL/dIm(z)``.

>>> z = tl.complex(tl.tensor([1.0, 0.0]), tl.tensor([2.0, -1.0]))
>>> z.abs()
tensor([2.2361, 1.0000])
"""
from __future__ import annotations

import numpy as np

from .. import _dtypes
from ..autograd import complex_grad  # noqa: F401  (installs the engine's complex backward)
from .._apply import apply
from .._tensor import Tensor
from ._util import broadcast_shapes, elementwise_cost, real_infer, require_tensor, unbroadcast
from .registry import OpDef, register

__all__ = ["complex", "conj", "conj_physical", "imag", "polar", "real", "resolve_conj",
           "sgn", "view_as_complex", "view_as_real"]


def _same_infer(x, **attrs):
    return x


def _real_part(xp, z):
    return z.real


def _imag_part(xp, z):
    return z.imag


def _as_complex(g: Tensor, like: Tensor) -> Tensor:
    """A real gradient as a complex one of ``like``'s dtype (imaginary part zero)."""
    return g.astype(like._data.dtype)


CONJ = register(OpDef(
    "conj", ufunc="conjugate", infer=_same_infer, cost=elementwise_cost, saves=False,
    complex="rule", vjp=lambda n, g: (conj(g),),
    doc="The complex conjugate."))

REAL = register(OpDef(
    "real", _real_part, infer=real_infer, cost=elementwise_cost, saves=False, view=True,
    complex="rule", vjp=lambda n, g: (_as_complex(g, n.inputs[0]),),
    doc="The real part of a complex tensor, a view."))

# d/dIm: the gradient is i * g (z.grad is dL/dRe + i dL/dIm)
IMAG = register(OpDef(
    "imag", _imag_part, infer=real_infer, cost=elementwise_cost, saves=False, view=True,
    complex="rule", vjp=lambda n, g: (_times_i(_as_complex(g, n.inputs[0])),),
    doc="The imaginary part of a complex tensor, a view."))


def _times_i(z: Tensor) -> Tensor:
    return z * 1j


def _pairs_fwd(xp, z):
    # (..., 2) floats over z's memory: the parts' view with a last axis of the half stride
    r = xp.asarray(z).real      # (a NumPy scalar's .real is a fresh value, not a view)
    return xp.lib.stride_tricks.as_strided(r, tuple(z.shape) + (2,),
                                           tuple(r.strides) + (r.itemsize,))


def _pairs_check(z):
    if z.dtype.kind != "c":
        raise TypeError(f"view_as_real: expected a complex tensor, got dtype {z.dtype}")


VIEW_AS_REAL = register(OpDef(
    "view_as_real", _pairs_fwd, check=_pairs_check,
    infer=lambda x, **a: (tuple(x[0]) + (2,), _dtypes.real_of(x[1])),
    cost=elementwise_cost, saves=False, view=True, complex="rule",
    vjp=lambda n, g: (view_as_complex(g.contiguous()),),
    doc="A complex tensor's memory as real pairs in a last dim of 2, a view."))


def _complex_fwd(xp, x):
    return x.view(np.complex64 if x.dtype == np.float32 else np.complex128)[..., 0]


def _complex_check(x):
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"view_as_complex: expected a float32 or float64 tensor, got "
                        f"dtype {x.dtype}")
    if x.ndim == 0 or x.shape[-1] != 2:
        raise ValueError(f"view_as_complex: the last dim must have size 2, got shape "
                         f"{tuple(x.shape)}")
    step = x.itemsize
    if x.strides[-1] != step or any(s % (2 * step) for s, d in zip(x.strides[:-1],
                                                                   x.shape[:-1]) if d > 1):
        raise ValueError("view_as_complex: the tensor must have a last dim of stride 1 and "
                         "all other strides even (call .contiguous() first)")
    if not isinstance(x, np.ndarray):      # (vmap's batched arrays, CuPy: no offset rule)
        return
    root = x
    while isinstance(root.base, np.ndarray):
        root = root.base
    if (x.ctypes.data - root.ctypes.data) % (2 * step):
        raise ValueError("view_as_complex: the tensor must start at an even element of its "
                         "storage (PyTorch's storage_offset rule; call .contiguous() first)")


VIEW_AS_COMPLEX = register(OpDef(
    "view_as_complex", _complex_fwd, check=_complex_check,
    infer=lambda x, **a: (tuple(x[0])[:-1], _dtypes.complex_of(x[1])),
    cost=elementwise_cost, saves=False, view=True, complex="rule",
    vjp=lambda n, g: (view_as_real(g),),
    doc="Real pairs in a last dim of 2 as a complex tensor, a view."))


def _from_parts(xp, re, im):
    out = xp.empty(xp.broadcast_shapes(re.shape, im.shape), _dtypes.complex_of(re.dtype))
    out.real = re
    out.imag = im
    return out


def _parts_vjp(n, g):
    re, im = n.inputs
    return (unbroadcast(real(g), re._data.shape) if re._rg else None,
            unbroadcast(imag(g), im._data.shape) if im._rg else None)


def _parts_infer(re, im, **attrs):
    return broadcast_shapes("complex", re[0], im[0]), _dtypes.complex_of(re[1])


COMPLEX = register(OpDef(
    "complex", _from_parts, infer=_parts_infer, cost=elementwise_cost, saves=False,
    complex="rule", vjp=_parts_vjp,
    doc="A complex tensor from its real and imaginary parts."))


def _angle_vjp(n, g):
    # d angle: g * i z / |z|^2 = g * i / conj(z), zero at z = 0 (PyTorch's choice there);
    # the division form stays finite for tiny |z|, where |z|^2 underflows
    z = n.inputs[0]
    from .elementwise import where
    zero = z == 0
    return (where(zero, 0.0, g / where(zero, 1.0, conj(z))) * 1j,)


ANGLE = register(OpDef(
    "angle_complex", lambda xp, z: xp.angle(z), infer=real_infer, cost=elementwise_cost,
    complex="rule", vjp=_angle_vjp, doc="The argument of a complex tensor's elements."))


def _sgn_fwd(xp, z):
    a = xp.abs(z)
    with np.errstate(invalid="ignore", divide="ignore"):
        return xp.where(a == 0, 0, z / xp.where(a == 0, 1, a)).astype(z.dtype, copy=False)


def _sgn_vjp(n, g):
    # PyTorch's sgn_backward: (g - Re(g conj(sgn)) sgn) / |z|, zero at z = 0
    z = n.inputs[0]
    from .elementwise import abs as _abs
    from .elementwise import where
    a = _abs(z)
    s = sgn(z)
    gs = real(g * conj(s))
    return (where(a == 0, 0.0, (g - gs * s) / where(a == 0, 1.0, a)).astype(z.dtype),)


SGN = register(OpDef(
    "sgn_complex", _sgn_fwd, infer=_same_infer, cost=elementwise_cost, complex="rule",
    vjp=_sgn_vjp, doc="z / |z| (0 where z is 0) for complex z."))


# --- public functions -------------------------------------------------------------------
def conj(input) -> Tensor:
    """The complex conjugate (``torch.conj``); a real tensor is returned as it is.

    >>> tl.conj(tl.tensor([1 + 2j]))
    tensor([1.-2.j])
    """
    x = require_tensor("conj", input)
    return apply(CONJ, x) if x._data.dtype.kind == "c" else x


def conj_physical(input) -> Tensor:
    """The conjugate, computed now (``torch.conj_physical``; tensorlib's :func:`conj`
    computes it too): a real tensor is returned as it is."""
    return conj(require_tensor("conj_physical", input))


def resolve_conj(input) -> Tensor:
    """``input`` itself (``torch.resolve_conj``): no tensor is lazily conjugated in
    tensorlib."""
    return require_tensor("resolve_conj", input)


def real(input) -> Tensor:
    """The real part (``torch.real``), a view for complex tensors; a real tensor is
    returned as it is."""
    x = require_tensor("real", input)
    return apply(REAL, x) if x._data.dtype.kind == "c" else x


def imag(input) -> Tensor:
    """The imaginary part (``torch.imag``), a view; real tensors raise, as PyTorch's."""
    x = require_tensor("imag", input)
    if x._data.dtype.kind != "c":
        raise RuntimeError(f"imag is not implemented for tensors with non-complex dtypes "
                           f"(got {x.dtype})")
    return apply(IMAG, x)


def view_as_real(input: Tensor) -> Tensor:
    """A complex tensor as real ``(..., 2)`` pairs of its parts, a view of its memory
    (``torch.view_as_real``)."""
    return apply(VIEW_AS_REAL, require_tensor("view_as_real", input))


def view_as_complex(input: Tensor) -> Tensor:
    """A float32/float64 tensor whose last dim holds (real, imaginary) pairs as a complex
    tensor, a view of its memory (``torch.view_as_complex``)."""
    return apply(VIEW_AS_COMPLEX, require_tensor("view_as_complex", input))


def complex(real: Tensor, imag: Tensor) -> Tensor:     # noqa: A001  (torch.complex)
    """A complex tensor from real and imaginary parts of one float dtype, broadcast
    (``torch.complex``).

    >>> tl.complex(tl.tensor([1.0]), tl.tensor([-1.0]))
    tensor([1.-1.j])
    """
    re, im = require_tensor("complex", real), require_tensor("complex", imag)
    if re.dtype != im.dtype or re.dtype.kind != "f" or re.dtype == _dtypes.float16:
        raise TypeError(f"complex: expected real and imag of one dtype, float32 or float64, "
                        f"got {re.dtype} and {im.dtype}")
    return apply(COMPLEX, re, im)


def polar(abs: Tensor, angle: Tensor) -> Tensor:     # noqa: A002  (torch.polar)
    """``abs * (cos(angle) + i sin(angle))`` (``torch.polar``), differentiable in both."""
    from .elementwise import cos, sin
    r, t = require_tensor("polar", abs), require_tensor("polar", angle)
    if r.dtype != t.dtype or r.dtype.kind != "f" or r.dtype == _dtypes.float16:
        raise TypeError(f"polar: expected abs and angle of one dtype, float32 or float64, "
                        f"got {r.dtype} and {t.dtype}")
    return complex(r * cos(t), r * sin(t))


def sgn(input) -> Tensor:
    """``z / |z|`` for complex tensors (0 where z is 0), the sign for real ones
    (``torch.sgn``)."""
    x = require_tensor("sgn", input)
    if x._data.dtype.kind == "c":
        return apply(SGN, x)
    from .elementwise import sign
    return sign(x)
