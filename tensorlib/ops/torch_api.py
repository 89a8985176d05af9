"""PyTorch's names that tensorlib lacked, as thin composites of registry ops (so autograd, grad
of grad and graph capture follow): matrix products (``mm``, ``mv``, ``addmv``, ``addr``),
``fmod`` and other elementwise spellings, stacking and splitting (``hstack``, ``vstack``,
``tensor_split``, ...), index helpers (``tril_indices``, ``combinations``, ...), order
statistics (``kthvalue``, ``nanmedian``, ``mode``, ``nanquantile``) and small matrix functions
(``matrix_power``, ``logdet``, ``pinverse``, ``kron``, ``cross``, ``diag_embed``, ...).

The functions PyTorch exposes as ``torch.<name>`` and that the user trial asked for are
exported at the top level (``tl.mm``, ``tl.hstack``, ...); the rest are bound as Tensor methods
by ``tensorlib/_torch_methods.py``. Integer-valued results (indices, counts, ``signbit``,
``histc``, ``unique_consecutive``) carry no gradient, as in PyTorch.

The second round's names live in modules of their own, gathered here: ``scatter_reduce``
(scatter and index reductions), ``segment`` (``segment_reduce``), ``torch_views`` (windows,
splits, out-of-place scatters), ``torch_math`` (elementwise), ``torch_linalg`` (matrix
functions, integration), ``torch_dtypes`` (promotion queries), ``torch_creation``, ``windows``
(signal windows), ``stft`` (``stft``/``istft`` with real and imaginary parts in a last dim),
``torch_settings`` (global settings) and ``nn_aliases`` (``torch.conv2d`` and the other
functional ops at ``torch.*``). :data:`EXPORTS` maps every name ``tl`` takes from here to
its function (``tensorlib/__init__.py`` adds them); :data:`METHOD_ONLY` are helpers bound as
Tensor methods only.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .. import _dtypes
from .._apply import apply
from .._tensor import Tensor, _wrap
from ..errors import ShapeError
from . import elementwise as E
from ._util import host_values, norm_axis, to_float, to_tensor
from .batched import _scaled_sum
from .linalg import matmul, outer, tensordot
from . import _scan_cpu, _scan_onnx
from .registry import OpDef, register
from .shape import category_dtype, to_common_dtype
from .statistics import cov, nanmedian, nanmedian_result  # noqa: F401  (torch.* names)

_ROUND1 = [
    "addmv", "addr", "aminmax", "atleast_1d", "atleast_2d", "atleast_3d", "block_diag",
    "broadcast_shapes", "broadcast_tensors", "cartesian_prod", "clamp_max", "clamp_min",
    "column_stack", "combinations", "copysign", "cov", "cross", "diag_embed", "dist", "dstack",
    "dsplit", "fill_diagonal_mask", "fix", "fliplr", "flipud", "fmod", "frac", "histc", "hsplit",
    "hstack", "index_copy", "inner", "is_floating_point", "kron", "kthvalue", "logdet",
    "logspace", "matrix_power", "mm", "mode", "msort", "mv", "nanmedian", "nanquantile",
    "numel", "pinverse", "randint_like", "renorm", "sgn", "signbit", "swapdims",
    "take_along_dim", "tensor_split", "tril_indices", "triu_indices", "unique_consecutive",
    "vsplit", "vstack",
]


def _shape(t: Tensor) -> tuple:
    return tuple(t.shape)


def _int(v, op: str, what: str) -> int:
    if isinstance(v, Tensor) and v.ndim == 0 and v.dtype.kind in "iu":
        v = int(v.item())
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
        raise TypeError(f"{op}: {what} must be an int, got {v!r}")
    return int(v)


def _along_np(a: np.ndarray, d: int, sl) -> np.ndarray:
    return a[(slice(None),) * d + (sl,)]


def _along(x: Tensor, d: int, sl) -> Tensor:
    """``x`` indexed by ``sl`` (a slice, an int or an index tensor) along dim ``d``."""
    return x[(slice(None),) * d + (sl,)]


# --- matrix products --------------------------------------------------------------------------
def mm(input, mat2) -> Tensor:
    """Matrix product of 2-D ``input`` (n, m) and ``mat2`` (m, p): (n, p) (``torch.mm``);
    a sparse COO ``input`` gives :func:`tensorlib.sparse.mm`."""
    if getattr(input, "is_sparse", False):
        from ..sparse import mm as sparse_mm
        return sparse_mm(input, mat2)
    a, b = to_tensor(input), to_tensor(mat2)
    if a.ndim != 2 or b.ndim != 2:
        raise ShapeError(f"mm: expects 2-D matrices, got shapes {_shape(a)} and {_shape(b)} "
                         "(use matmul or bmm for stacks)")
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"mm: shapes {_shape(a)} and {_shape(b)} cannot be multiplied "
                         f"({a.shape[1]} != {b.shape[0]})")
    return matmul(a, b)


def mv(input, vec) -> Tensor:
    """Matrix-vector product of 2-D ``input`` (n, m) and 1-D ``vec`` (m,): (n,) (``torch.mv``)."""
    a, v = to_tensor(input), to_tensor(vec)
    if a.ndim != 2 or v.ndim != 1:
        raise ShapeError(f"mv: expects a 2-D matrix and a 1-D vector, got shapes {_shape(a)} "
                         f"and {_shape(v)}")
    if a.shape[1] != v.shape[0]:
        raise ShapeError(f"mv: shapes {_shape(a)} and {_shape(v)} cannot be multiplied "
                         f"({a.shape[1]} != {v.shape[0]})")
    return matmul(a, v)


def addmv(input, mat, vec, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """``beta * input + alpha * mv(mat, vec)``; ``input`` broadcasts to (n,) (``torch.addmv``)."""
    return _scaled_sum("addmv", input, mv(mat, vec), beta, alpha)


def addr(input, vec1, vec2, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """``beta * input + alpha * outer(vec1, vec2)``; ``input`` broadcasts to (n, m)
    (``torch.addr``)."""
    a, b = to_tensor(vec1), to_tensor(vec2)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"addr: vec1 and vec2 must be 1-D, got shapes {_shape(a)} and "
                         f"{_shape(b)}")
    return _scaled_sum("addr", input, outer(a, b), beta, alpha)


def inner(input, other) -> Tensor:
    """Sum of products over the last dims (``torch.inner``); a 0-d operand multiplies."""
    a, b = to_tensor(input), to_tensor(other)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"inner: the last dims of shapes {_shape(a)} and {_shape(b)} differ")
    return tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 1]))


def kron(input, other) -> Tensor:
    """Kronecker product (``torch.kron``): shapes multiply dim by dim (the shorter one is
    padded with leading ones)."""
    a, b = to_tensor(input), to_tensor(other)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + _shape(a)
    sb = (1,) * (nd - b.ndim) + _shape(b)
    a2 = a.reshape(tuple(v for s in sa for v in (s, 1)))
    b2 = b.reshape(tuple(v for s in sb for v in (1, s)))
    return (a2 * b2).reshape(tuple(p * q for p, q in zip(sa, sb)))


def cross(input, other, dim: int | None = None) -> Tensor:
    """Cross product of 3-vectors along ``dim`` (``torch.cross``); inputs broadcast. Without
    ``dim``, the first dim of size 3 (PyTorch's deprecated default; ``torch.linalg.cross``
    uses -1)."""
    a, b = to_tensor(input), to_tensor(other)
    if a.ndim != b.ndim:
        raise ValueError(f"cross: inputs must have the same number of dims, got shapes "
                         f"{_shape(a)} and {_shape(b)}")
    try:
        shape = np.broadcast_shapes(_shape(a), _shape(b))
    except ValueError:
        raise ValueError(f"cross: shapes {_shape(a)} and {_shape(b)} do not broadcast") from None
    if dim is None:
        threes = [i for i, s in enumerate(shape) if s == 3]
        if not threes:
            raise ValueError(f"cross: no dimension of size 3 in shape {tuple(shape)}")
        d = threes[0]
    else:
        d = norm_axis(dim, len(shape), "cross")
        if shape[d] != 3:
            raise ValueError(f"cross: dim {dim} of shape {tuple(shape)} must have size 3")
    a, b = a.broadcast_to(shape), b.broadcast_to(shape)
    a0, a1, a2 = (_along(a, d, i) for i in range(3))
    b0, b1, b2 = (_along(b, d, i) for i in range(3))
    from .shape import stack
    return stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=d)


def diag_embed(input, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """A tensor whose (dim1, dim2) planes have the last dim of ``input`` on their ``offset``
    diagonal, zeros elsewhere (``torch.diag_embed``)."""
    from .diagonal import DIAGONAL_EMBED
    x = to_tensor(input)
    if x.ndim == 0:
        raise ValueError("diag_embed: input must have at least 1 dimension, got a 0-d tensor")
    nd = x.ndim + 1
    d1, d2 = norm_axis(dim1, nd, "diag_embed"), norm_axis(dim2, nd, "diag_embed")
    if d1 == d2:
        raise ValueError(f"diag_embed: dim1 and dim2 are the same dim ({d1})")
    offset = _int(offset, "diag_embed", "offset")
    n = x.shape[-1] + abs(offset)
    rest = iter(_shape(x)[:-1])
    shape = tuple(n if i in (d1, d2) else next(rest) for i in range(nd))
    return apply(DIAGONAL_EMBED, x, shape=shape, offset=offset, axis1=d1, axis2=d2)


def _square(op: str, x: Tensor) -> None:
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{op}: expects a square matrix or a stack of them (..., n, n), got "
                         f"shape {_shape(x)}")


def matrix_power(input, n: int) -> Tensor:
    """``input`` multiplied by itself ``n`` times (``torch.matrix_power``): the identity for
    n = 0, powers of the inverse for n < 0; stacks (..., m, m) too."""
    x = to_tensor(input)
    n = _int(n, "matrix_power", "n")
    _square("matrix_power", x)
    if n == 0:      # the identity for each matrix; x joins with a zero gradient, as PyTorch's
        from ..creation import eye, full
        i = eye(x.shape[-1], dtype=x.dtype, device=x.device)
        return E.where(full(_shape(x), True, device=x.device), i, x)
    if n < 0:
        from .matrix import inv
        x, n = inv(x), -n
    result, base = None, x
    while n:                          # binary powering: O(log n) products
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def logdet(input) -> Tensor:
    """log(det(input)) (``torch.logdet``): NaN where the determinant is negative, -inf where
    it is 0; differentiable (through ``slogdet``). Complex matrices give the principal
    branch ``log|det| + i angle(det)``, as PyTorch's."""
    from .matrix import slogdet
    x = to_tensor(input)
    sign, logabs = slogdet(x)
    if sign.dtype.kind == "c":      # the principal branch: log|det| + i angle(det)
        from .complex import ANGLE, complex as _complex
        return _complex(logabs, apply(ANGLE, sign))
    return E.where(sign < 0, math.nan, logabs)


def pinverse(input, rcond: float = 1e-15) -> Tensor:
    """Moore-Penrose pseudo-inverse from the SVD (``torch.pinverse``): singular values at or
    below ``rcond`` times the largest are treated as 0; stacks (..., m, n) too."""
    x = to_float(to_tensor(input))
    if x.ndim < 2:
        raise ValueError(f"pinverse: expects a matrix or a stack (..., m, n), got shape "
                         f"{_shape(x)}")
    if 0 in x.shape[-2:]:
        from ..creation import zeros
        return zeros(_shape(x)[:-2] + (x.shape[-1], x.shape[-2]), dtype=x.dtype,
                     device=x.device)
    return pinv_svd(x, float(rcond))


def pinv_svd(x: Tensor, rtol, atol=None) -> Tensor:
    """The pseudo-inverse of a non-empty float stack (..., m, n) from its SVD, singular
    values at or below ``max(atol, rtol * largest)`` dropped; ``rtol``/``atol`` are numbers
    or tensors of the batch shape (``pinverse`` and ``linalg.pinv``)."""
    from .decompositions import svd
    u, s, vh = svd(x, full_matrices=False)
    s_inv = inverted_above_cutoff(s, s.detach(), rtol, atol)
    return matmul(vh.mH * s_inv.unsqueeze(-2), u.mH)


def inverted_above_cutoff(vals, mag, rtol, atol):
    """``1 / vals`` where ``mag`` (their sizes) exceeds ``max(atol, rtol * largest)`` along the
    last dim, else 0: the inverted singular values (or eigenvalues) a pseudo-inverse keeps."""
    cutoff = mag.amax(axis=-1, keepdims=True) * _batch_tol(rtol)
    if atol is not None:
        a = _batch_tol(atol)
        cutoff = E.maximum(cutoff, a if isinstance(a, float) else a.astype(mag.dtype))
    keep = mag > cutoff
    return E.where(keep, 1.0 / E.where(keep, vals, 1.0), 0.0)


def _batch_tol(t):
    """A tolerance as a float, or a tensor of batch shape with a trailing 1 (to compare with
    the singular values, (..., k))."""
    if isinstance(t, (int, float)):
        return float(t)
    return to_tensor(t).detach().unsqueeze(-1)


def dist(input, other, p: float = 2) -> Tensor:
    """The ``p``-norm of ``input - other`` over all elements (``torch.dist``)."""
    from .decompositions import vector_norm
    return vector_norm(to_tensor(input) - other, ord=p)


def renorm(input, p: float, dim: int, maxnorm: float) -> Tensor:
    """Each slice along ``dim`` whose ``p``-norm exceeds ``maxnorm`` rescaled to norm
    ``maxnorm`` (``torch.renorm``)."""
    from .decompositions import vector_norm
    x = to_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"renorm: input needs at least 2 dimensions, got shape {_shape(x)}")
    if x.dtype.kind != "f":
        raise TypeError(f"renorm: input must be floating point, got {x.dtype}")
    if not p > 0:
        raise ValueError(f"renorm: p must be positive, got {p}")
    if not maxnorm >= 0:
        raise ValueError(f"renorm: maxnorm must be non-negative, got {maxnorm}")
    d = norm_axis(dim, x.ndim, "renorm")
    others = tuple(i for i in range(x.ndim) if i != d)
    nrm = vector_norm(x, ord=p, dim=others, keepdim=True)
    factor = E.where(nrm > maxnorm, float(maxnorm) / (nrm + 1e-7), 1.0)
    return x * factor


# --- elementwise ------------------------------------------------------------------------------
def fmod(input, other) -> Tensor:
    """C's ``fmod``: the remainder of ``input / other`` with the sign of ``input``
    (``torch.fmod``; ``remainder`` takes the divisor's sign). Gradients 1 and
    ``-trunc(input / other)``."""
    from ._util import as_operands, torch_promote
    a, b = as_operands(input, other, wrap=True)
    if a.dtype.kind == "b" and b.dtype.kind == "b":
        raise NotImplementedError("fmod: not implemented for bool tensors (as PyTorch)")
    # promoted first (a 0-d tensor(-3) meeting uint8 is 253 there, as PyTorch), then
    # exact: fmod(a, b) = fmod(a, |b|), which equals the Python remainder for a >= 0
    # (signbit, not a < 0: fmod(-0.0, b) is -0.0)
    dt = torch_promote(a.dtype, a.ndim, b.dtype, b.ndim)
    a, b = (t if t.dtype == dt else t.astype(dt) for t in (a, b))
    if dt.kind in "iu":
        # from the floor remainder (sign of b), which never negates: -a and |b| wrap for
        # INT_MIN; where the signs differ, r - b is exact (r and b share a sign)
        r = E.mod(a, b)
        if dt.kind == "u":
            return r
        return E.where((r != 0) & ((a < 0) != (b < 0)), r - b, r)
    return apply(E.FMOD, a, b)


# torch.clamp/clip: tensorlib's clip (numbers, tensor bounds, NaN as PyTorch)
clamp = E.clip


def clamp_min(input, min) -> Tensor:
    """``max(input, min)`` elementwise (``torch.clamp_min``); ``min`` a number or tensor."""
    return clamp(input, min=min)


def clamp_max(input, max) -> Tensor:
    """``min(input, max)`` elementwise (``torch.clamp_max``); ``max`` a number or tensor."""
    return clamp(input, max=max)


def sgn(input) -> Tensor:
    """The sign (-1, 0, 1) of each element (``torch.sgn``; the same as ``sign`` for reals)."""
    return E.sign(input)


def signbit(input) -> Tensor:
    """Whether each element's sign bit is set (``torch.signbit``): True for negatives and
    -0.0. (A NaN reads False whatever its sign bit: its sign is not visible to comparisons.)"""
    x = to_tensor(input)
    kind = x.dtype.kind
    if kind == "b" or kind == "u":
        return x != x
    if kind != "f":
        return x < 0
    # atan2(x, -1) is in (-pi, 0) for x < 0 and -pi for -0.0, in (0, pi] otherwise
    return E.atan2(x, -1.0) < 0


def copysign(input, other) -> Tensor:
    """``|input|`` with the sign of ``other`` (``torch.copysign``; integers give floats).
    The gradient passes to ``input`` only (0 at 0, as PyTorch's)."""
    if not isinstance(other, Tensor):
        mag = E.abs(to_float(to_tensor(input)))
        return -mag if math.copysign(1.0, float(other)) < 0 else mag
    from ._util import float_operands
    x, o = float_operands(input, other)      # PyTorch's result dtype (f32 with f64: f64)
    mag = E.abs(x)
    return E.where(signbit(o), -mag, mag)


def frac(input) -> Tensor:
    """The fractional part ``input - trunc(input)``, with the sign of ``input``
    (``torch.frac``); floating point only."""
    x = to_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"frac: input must be floating point, got {x.dtype}")
    return x - E.trunc(x)


def fix(input) -> Tensor:
    """Round toward zero (``torch.fix``, an alias of ``trunc``)."""
    return E.trunc(input)


def swapdims(input, dim0: int, dim1: int) -> Tensor:
    """``input`` with dims ``dim0`` and ``dim1`` swapped (``torch.swapdims``)."""
    from .shape import swapaxes
    return swapaxes(input, dim0, dim1)


def fliplr(input) -> Tensor:
    """Reverse the columns (dim 1) of a tensor with at least 2 dims (``torch.fliplr``)."""
    from .shape import flip
    x = to_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"fliplr: input must have at least 2 dims, got shape {_shape(x)}")
    return flip(x, 1)


def flipud(input) -> Tensor:
    """Reverse the rows (dim 0) of a tensor with at least 1 dim (``torch.flipud``)."""
    from .shape import flip
    x = to_tensor(input)
    if x.ndim < 1:
        raise ValueError("flipud: input must have at least 1 dim, got a 0-d tensor")
    return flip(x, 0)


# --- sizes and types --------------------------------------------------------------------------
def numel(input) -> int:
    """The number of elements (``torch.numel``)."""
    return to_tensor(input).numel()


def is_floating_point(input) -> bool:
    """Whether the tensor's dtype is a floating-point type (``torch.is_floating_point``)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"is_floating_point: expected a Tensor, got {type(input).__name__}")
    return input.dtype.kind == "f"


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    """The shape the given shapes broadcast to (``torch.broadcast_shapes``; an int is a 1-d
    shape)."""
    norm = [(int(s),) if isinstance(s, (int, np.integer)) else tuple(int(v) for v in s)
            for s in shapes]
    try:
        return tuple(int(v) for v in np.broadcast_shapes(*norm))
    except ValueError:
        raise ValueError(f"broadcast_shapes: shapes {', '.join(map(str, norm))} cannot be "
                         "broadcast to a single shape") from None


def broadcast_tensors(*tensors) -> tuple[Tensor, ...]:
    """The tensors broadcast to their common shape (``torch.broadcast_tensors``)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    ts = [to_tensor(t) for t in tensors]
    try:
        shape = tuple(np.broadcast_shapes(*[_shape(t) for t in ts]))
    except ValueError:
        raise ValueError("broadcast_tensors: shapes "
                         f"{', '.join(str(_shape(t)) for t in ts)} cannot be broadcast to a "
                         "single shape") from None
    return tuple(t if _shape(t) == shape else t.broadcast_to(shape) for t in ts)


def _atleast(n: int, tensors: tuple):
    single = len(tensors) == 1 and not isinstance(tensors[0], (list, tuple))
    seq = tensors[0] if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) else tensors
    outs = []
    for t in seq:
        t = to_tensor(t)
        s = _shape(t)
        if t.ndim < n:
            if n == 3 and t.ndim == 2:
                s = s + (1,)
            elif n == 3 and t.ndim == 1:
                s = (1,) + s + (1,)
            else:
                s = (1,) * (n - t.ndim) + s
            t = t.reshape(s)
        outs.append(t)
    return outs[0] if single else tuple(outs)


def atleast_1d(*tensors):
    """Each tensor viewed with at least 1 dim (``torch.atleast_1d``): one tensor in, one
    out; several (or a sequence), a tuple."""
    return _atleast(1, tensors)


def atleast_2d(*tensors):
    """Each tensor viewed with at least 2 dims (a 1-d (n,) becomes (1, n))
    (``torch.atleast_2d``)."""
    return _atleast(2, tensors)


def atleast_3d(*tensors):
    """Each tensor viewed with at least 3 dims ((n,) becomes (1, n, 1), (m, n) becomes
    (m, n, 1)) (``torch.atleast_3d``)."""
    return _atleast(3, tensors)


# --- stacking and splitting -------------------------------------------------------------------
def _tensor_list(name: str, tensors) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, Sequence):
        raise TypeError(f"{name}: expects a sequence of tensors, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{name}: expects a non-empty sequence of tensors")
    return to_common_dtype([to_tensor(t) for t in tensors])


def hstack(tensors) -> Tensor:
    """Concatenate horizontally: along dim 0 for 1-d tensors, else dim 1 (``torch.hstack``)."""
    from .shape import concatenate
    ts = atleast_1d(tuple(_tensor_list("hstack", tensors)))
    return concatenate(list(ts), axis=0 if ts[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """Concatenate vertically (dim 0) after ``atleast_2d`` (``torch.vstack``)."""
    from .shape import concatenate
    return concatenate(list(atleast_2d(tuple(_tensor_list("vstack", tensors)))), axis=0)


def dstack(tensors) -> Tensor:
    """Concatenate along dim 2 after ``atleast_3d`` (``torch.dstack``)."""
    from .shape import concatenate
    return concatenate(list(atleast_3d(tuple(_tensor_list("dstack", tensors)))), axis=2)


def column_stack(tensors) -> Tensor:
    """Stack as columns: 0-d and 1-d tensors become (n, 1) columns, then ``hstack``
    (``torch.column_stack``)."""
    from .shape import concatenate
    ts = [t.reshape((t.numel(), 1)) if t.ndim <= 1 else t
          for t in _tensor_list("column_stack", tensors)]
    return concatenate(ts, axis=1)


def tensor_split(input, indices_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into ``n`` nearly equal parts (the first ``size % n`` one longer) or at the
    given indices along ``dim`` (``torch.tensor_split``); views."""
    x = to_tensor(input)
    if x.ndim == 0:
        raise ValueError("tensor_split: expects a tensor with at least 1 dimension")
    d = norm_axis(dim, x.ndim, "tensor_split")
    size = x.shape[d]
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        if ios.dtype.kind not in "iu" or ios.ndim > 1:
            raise TypeError(f"tensor_split: a tensor indices_or_sections must be a 0-d or 1-d "
                            f"integer tensor, got {ios.dtype} of shape {_shape(ios)}")
        ios = int(ios.item()) if ios.ndim == 0 else [int(v) for v in ios.tolist()]
    if isinstance(ios, (int, np.integer)) and not isinstance(ios, bool):
        from .shape import tensor_split_sections
        return tensor_split_sections(x, int(ios), d)
    if isinstance(ios, (list, tuple)):
        idx = [_int(i, "tensor_split", "an index") for i in ios]
        bounds = [0] + idx + [size]
    else:
        raise TypeError(f"tensor_split: indices_or_sections must be an int, a sequence of ints "
                        f"or an integer tensor, got {type(ios).__name__}")
    return tuple(_along(x, d, slice(bounds[i], bounds[i + 1])) for i in range(len(bounds) - 1))


def _even_split(name: str, x: Tensor, ios, d: int) -> tuple[Tensor, ...]:
    if isinstance(ios, (int, np.integer)) and not isinstance(ios, bool):
        if ios == 0 or x.shape[d] % ios:
            raise ValueError(f"{name}: cannot split dimension {d} of size {x.shape[d]} into "
                             f"{ios} equal parts (shape {_shape(x)})")
    return tensor_split(x, ios, d)


def _split_along(name: str, input, indices_or_sections, min_ndim: int, dim: int):
    x = to_tensor(input)
    if x.ndim < min_ndim:
        raise ValueError(f"{name}: expects a tensor with at least {min_ndim} dimension"
                         f"{'s' if min_ndim > 1 else ''}, got shape {_shape(x)}")
    return _even_split(name, x, indices_or_sections, dim)


def hsplit(input, indices_or_sections) -> tuple[Tensor, ...]:
    """Split horizontally: along dim 1 (dim 0 for 1-d input) into equal parts or at indices
    (``torch.hsplit``)."""
    one_d = to_tensor(input).ndim == 1
    return _split_along("hsplit", input, indices_or_sections, 1, 0 if one_d else 1)


def vsplit(input, indices_or_sections) -> tuple[Tensor, ...]:
    """Split vertically (dim 0) into equal parts or at indices; at least 2-d
    (``torch.vsplit``)."""
    return _split_along("vsplit", input, indices_or_sections, 2, 0)


def dsplit(input, indices_or_sections) -> tuple[Tensor, ...]:
    """Split depth-wise (dim 2) into equal parts or at indices; at least 3-d
    (``torch.dsplit``)."""
    return _split_along("dsplit", input, indices_or_sections, 3, 2)


def take_along_dim(input, indices, dim: int | None = None) -> Tensor:
    """Values at ``indices`` along ``dim`` (``torch.take_along_dim``; input and indices
    broadcast outside ``dim``); with no ``dim``, indices into the flattened input."""
    from .indexing import _strict_take_along_axis
    x, idx = to_tensor(input), to_tensor(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"take_along_dim: indices must be an integer tensor, got {idx.dtype}")
    if dim is None:
        return _strict_take_along_axis(x.reshape(-1), idx.reshape(-1), 0)
    if x.ndim != idx.ndim:
        raise ValueError(f"take_along_dim: input and indices must have the same number of "
                         f"dims, got shapes {_shape(x)} and {_shape(idx)}")
    d = norm_axis(dim, x.ndim, "take_along_dim")
    outside = [tuple(1 if i == d else v for i, v in enumerate(_shape(t))) for t in (x, idx)]
    try:
        shape = list(np.broadcast_shapes(*outside))
    except ValueError:
        raise ValueError(f"take_along_dim: shapes {_shape(x)} and {_shape(idx)} do not "
                         f"broadcast outside dim {d}") from None
    xs, ids = list(shape), list(shape)
    xs[d], ids[d] = x.shape[d], idx.shape[d]
    x = x if _shape(x) == tuple(xs) else x.broadcast_to(tuple(xs))
    idx = idx if _shape(idx) == tuple(ids) else idx.broadcast_to(tuple(ids))
    return _strict_take_along_axis(x, idx, d)


def index_copy(input, dim: int, index, source) -> Tensor:
    """``input`` with the slices at ``index`` along ``dim`` replaced by those of ``source``
    (``torch.index_copy``, out of place)."""
    from .indexing import setitem
    x, idx, src = to_tensor(input), to_tensor(index), to_tensor(source)
    if idx.dtype.kind not in "iu" or idx.ndim > 1:
        raise TypeError(f"index_copy: index must be a 0-d or 1-d integer tensor, got "
                        f"{idx.dtype} of shape {_shape(idx)}")
    if x.ndim == 0:
        raise ValueError("index_copy: input must have at least 1 dimension, got a 0-d tensor")
    d = norm_axis(dim, x.ndim, "index_copy")
    idx = idx.reshape(-1)
    want = tuple(idx.shape[0] if i == d else s for i, s in enumerate(_shape(x)))
    if _shape(src) != want:
        raise ValueError(f"index_copy: source of shape {_shape(src)} does not match "
                         f"{want} (input {_shape(x)} with {idx.shape[0]} indices along dim {d})")
    from .indexing import check_write_dtype, strict_index
    src = check_write_dtype("index_copy", src, x.dtype)
    idx = strict_index("index_copy", idx, _shape(x)[d], d)
    return setitem(x, (slice(None),) * d + (idx,), src)


def fill_diagonal_mask(shape: tuple, wrap: bool = False) -> np.ndarray:
    """A constant boolean mask of the main diagonal of ``shape`` (``fill_diagonal_``'s
    positions: NumPy's ``fill_diagonal``, which PyTorch's follows)."""
    if len(shape) < 2:
        raise ValueError(f"fill_diagonal_: dimensions must be larger than 1, got shape "
                         f"{tuple(shape)}")
    if len(shape) > 2 and len(set(shape)) != 1:
        raise ValueError(f"fill_diagonal_: all dimensions of input must be of equal length, "
                         f"got shape {tuple(shape)}")
    mask = np.zeros(shape, bool)
    np.fill_diagonal(mask, True, wrap=wrap)
    return mask


# --- reductions and order statistics ----------------------------------------------------------
class aminmax_result(NamedTuple):
    """``(min, max)`` of :func:`aminmax` (``torch.return_types.aminmax``)."""
    min: Tensor
    max: Tensor


class kthvalue_result(NamedTuple):
    """``(values, indices)`` of :func:`kthvalue` (``torch.return_types.kthvalue``)."""
    values: Tensor
    indices: Tensor


class mode_result(NamedTuple):
    """``(values, indices)`` of :func:`mode` (``torch.return_types.mode``)."""
    values: Tensor
    indices: Tensor


def aminmax(input, *, dim: int | None = None, keepdim: bool = False) -> aminmax_result:
    """The smallest and largest values, over ``dim`` or everything (``torch.aminmax``); ties
    share the gradient equally."""
    from .reduction import amax, amin
    x = to_tensor(input)
    if dim is not None:
        # one int dim, as torch's (not amin/amax's tuples, nor their "empty is every dim")
        d = norm_axis(_int(dim, "aminmax", "dim"), x.ndim or 1, "aminmax")
        if x.ndim and x.shape[d] == 0:
            from .reduction import empty_reduction
            raise empty_reduction("aminmax", _shape(x), d)
    elif x.numel() == 0:
        from .reduction import empty_reduction
        raise empty_reduction("aminmax", _shape(x), None)
    return aminmax_result(amin(x, dim=dim, keepdim=keepdim), amax(x, dim=dim, keepdim=keepdim))


def msort(input) -> Tensor:
    """The values sorted along dim 0 (``torch.msort``)."""
    from .sorting import sort
    return sort(input, axis=0)[0]


def _prepare_dim(x: Tensor, dim: int, op: str) -> tuple[Tensor, int, bool]:
    scalar = x.ndim == 0
    src = x.reshape((1,)) if scalar else x
    d = norm_axis(_int(dim, op, "dim"), src.ndim, op)
    if src.shape[d] == 0:
        from .reduction import empty_reduction
        raise empty_reduction(op, _shape(x), d)
    return src, d, scalar


def _finish(result, values: Tensor, idx: Tensor, d: int, keepdim: bool, scalar: bool):
    """Keep or drop the reduced dim ``d`` (size 1) of ``values`` and ``idx``."""
    if scalar:
        return result(values.reshape(()), idx.reshape(()))
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return result(values, idx)


def kthvalue(input, k: int, dim: int = -1, keepdim: bool = False) -> kthvalue_result:
    """The ``k``-th smallest value (1-based) along ``dim`` and its index, as a named tuple
    (``torch.kthvalue``); NaN counts as the largest. Among equal values the index is one of
    theirs (PyTorch leaves which unspecified). Differentiable in the values."""
    from .sorting import _kthvalue_scan
    x = input if isinstance(input, Tensor) else to_tensor(input)
    nd = x._data.ndim
    if type(dim) is int and -nd <= dim < nd and x._data.shape[dim]:
        src, d, scalar = x, dim % nd, False     # (what _prepare_dim gives, ~1 us sooner)
    else:
        src, d, scalar = _prepare_dim(x, dim, "kthvalue")
    if type(k) is not int:
        k = _int(k, "kthvalue", "k")
    n = src.shape[d]
    if not 1 <= k <= n:
        raise ValueError(f"kthvalue: k={k} is out of range for dim {d} of size {n} (shape "
                         f"{_shape(x)})")
    got = _kthvalue_scan(src, d, k, keepdim and not scalar)
    if got is not None:
        return kthvalue_result(*got)
    from ..autograd.mode import state
    from .indexing import take_along_axis
    if isinstance(src._data, np.ndarray) and state.tracer is None:
        # a selection, not a sort: O(n) per slice (NaN sorts last in both)
        part = np.argpartition(src._data, k - 1, axis=d)
        idx = _wrap(np.ascontiguousarray(_along_np(part, d, slice(k - 1, k)), np.int64),
                    src._device, False, None, 0)
    else:
        from .sorting import argsort
        order = argsort(src, axis=d)
        idx = _along(order, d, slice(k - 1, k))
    return _finish(kthvalue_result, take_along_axis(src, idx, d), idx, d, keepdim, scalar)


def _mode_idx_fwd(xp, x, axis):
    """The index of the last occurrence of each slice's mode along ``axis`` (dim kept): runs
    of equal values in a stable sort (NaNs one run, last), the first (smallest) of the
    longest runs, its end (its start for NaN)."""
    from .cumulative import _inclusive_scan
    n = x.shape[axis]
    order = xp.argsort(x, axis=axis, kind="stable")
    s = xp.take_along_axis(x, order, axis)

    def along(a, sl):
        key = [slice(None)] * a.ndim
        key[axis] = sl
        return a[tuple(key)]
    shape = [1] * x.ndim
    shape[axis] = n
    pos = xp.arange(n).reshape(shape)
    a, b = along(s, slice(1, None)), along(s, slice(None, -1))
    edge = a != b
    if s.dtype.kind in "fc":
        edge &= ~(xp.isnan(a) & xp.isnan(b))        # NaNs (sorted last) are one value
    true = xp.ones(tuple(1 if i == axis else v for i, v in enumerate(x.shape)), bool)
    starts = xp.concatenate([true, edge], axis=axis)
    ends = xp.concatenate([edge, true], axis=axis)
    start = _inclusive_scan(xp, "maximum", xp.where(starts, pos, 0), axis)
    end = xp.flip(_inclusive_scan(xp, "minimum", xp.flip(xp.where(ends, pos, n - 1), axis),
                                  axis), axis)
    count = end - start + 1
    best = xp.expand_dims(xp.argmax(count == count.max(axis=axis, keepdims=True), axis=axis),
                          axis)
    at = xp.take_along_axis(end, best, axis)
    if s.dtype.kind in "fc":
        # a NaN mode: its first occurrence, as PyTorch (stable sort keeps NaNs in order)
        at = xp.where(xp.isnan(xp.take_along_axis(s, at, axis)),
                      xp.take_along_axis(start, best, axis), at)
    return xp.take_along_axis(order, at, axis)


def _mode_idx_cpu(x, *, axis):
    # one Cython pass over each sorted slice; NumPy's form for a dtype it lacks (float16)
    # the kernel counts each NaN apart; NumPy's form counts them as one value
    idx = None if x.dtype.kind in "fc" and np.isnan(x).any() else _scan_cpu.mode_indices(x, axis)
    return _mode_idx_fwd(np, x, axis) if idx is None else idx


MODE_INDICES = register(OpDef(
    "mode_indices", _mode_idx_fwd, kernels={"cpu": _mode_idx_cpu},
    infer=lambda x, *, axis: (tuple(1 if i == axis else v for i, v in enumerate(x[0])),
                              np.dtype(np.int64)),
    onnx=_scan_onnx.mode_indices,
    doc="index (dim kept) of the last occurrence of each slice's mode along an axis"))


def mode(input, dim: int = -1, keepdim: bool = False) -> mode_result:
    """The most frequent value along ``dim`` (the smallest on ties) and the index of its last
    occurrence, as a named tuple (``torch.mode``; PyTorch's own index is that of an arbitrary
    occurrence on slices longer than 16). NaN counts as one value, larger than every number,
    as in ``scipy.stats.mode``; a NaN mode's index is its first occurrence: ``mode([nan,
    nan, 1.])`` is (NaN, 0), as in PyTorch (whose result with NaN otherwise depends on its
    sort order). Differentiable in the values.

    >>> tl.mode(tl.tensor([[3, 1, 3, 1, 2]]), dim=1)      # values [1], indices [3]
    """
    from .indexing import take_along_axis
    x = to_tensor(input)
    src, d, scalar = _prepare_dim(x, dim, "mode")
    idx = apply(MODE_INDICES, src.detach(), axis=d)
    return _finish(mode_result, take_along_axis(src, idx, d), idx, d, keepdim, scalar)


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def nanquantile(input, q, dim: int | None = None, keepdim: bool = False, *,
                interpolation: str = "linear") -> Tensor:
    """The ``q``-th quantiles ignoring NaNs along ``dim`` (all elements when None), as
    ``torch.nanquantile``: ``q`` a number or a 1-d tensor/sequence in [0, 1] (its dim comes
    first); a slice of only NaN gives NaN. Differentiable in ``input``."""
    from .elementwise import isnan
    from .indexing import take_along_axis
    from .shape import stack
    from .sorting import sort
    x = to_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"nanquantile: input must be float32 or float64, got {x.dtype}")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"nanquantile: interpolation must be one of {_INTERPOLATIONS}, got "
                         f"{interpolation!r}")
    qs = host_values(q, np.float64)
    if qs.ndim > 1:
        raise ValueError(f"nanquantile: q must be a number or 1-d, got shape {qs.shape}")
    if np.any(np.isnan(qs)) or np.any((qs < 0) | (qs > 1)):
        raise ValueError(f"nanquantile: q must lie in [0, 1], got {qs.tolist()}")
    if x.numel() == 0:
        raise ValueError(f"nanquantile: input must be non-empty, got shape {_shape(x)}")
    if dim is None:
        src, d = x.reshape(-1), 0
    else:
        src = x.reshape((1,)) if x.ndim == 0 else x
        d = norm_axis(_int(dim, "nanquantile", "dim"), src.ndim, "nanquantile")
    n = src.shape[d]
    s = sort(src, axis=d)[0]                       # NaN last
    k = (~isnan(src)).astype(x.dtype).sum(axis=d, keepdims=True)
    outs = []
    for qv in qs.reshape(-1):
        rank = ((k - 1) * float(qv)).clip(0, None)
        lo_r, hi_r = E.floor(rank), E.ceil(rank)
        if interpolation == "lower":
            v = take_along_axis(s, lo_r.astype(np.int64), d)
        elif interpolation == "higher":
            v = take_along_axis(s, hi_r.astype(np.int64), d)
        elif interpolation == "nearest":
            v = take_along_axis(s, E.round(rank).astype(np.int64), d)
        else:
            lo = take_along_axis(s, lo_r.astype(np.int64), d)
            hi = take_along_axis(s, hi_r.clip(None, n - 1).astype(np.int64), d)
            w = (rank - lo_r) if interpolation == "linear" else 0.5
            v = lo + (hi - lo) * w
        # a slice of only NaN gives NaN by itself (its sorted values are all NaN)
        outs.append(v if keepdim else v.squeeze(d))
    out = stack(outs, axis=0) if qs.ndim else outs[0]
    if keepdim and dim is None:
        out = out.reshape(tuple(qs.shape) + (1,) * x.ndim)
    return out


def unique_consecutive(input, return_inverse: bool = False, return_counts: bool = False,
                       dim: int | None = None):
    """Collapse each run of equal consecutive values (or slices along ``dim``) to one
    (``torch.unique_consecutive``), optionally with inverse indices and run lengths. Eager
    and not differentiable, as ``unique``."""
    from ..creation import tensor
    from .cumulative import diff
    from .data_dependent import nonzero
    from .indexing import index_select, masked_select
    from .shape import concatenate
    x = to_tensor(input).detach()
    flat = dim is None
    if flat:
        src = x.reshape(-1)
        d = 0
    else:
        if x.ndim == 0:
            raise ValueError("unique_consecutive: dim given for a 0-d tensor")
        d = norm_axis(_int(dim, "unique_consecutive", "dim"), x.ndim, "unique_consecutive")
        src = x.movedim(d, 0)
        src = src.reshape((x.shape[d], src.numel() // max(x.shape[d], 1)))
    n = src.shape[0]
    one = tensor([True], device=x.device)
    if n == 0:
        first = tensor(np.zeros(0, bool), device=x.device)
    elif flat:
        first = concatenate([one, src[1:] != src[:-1]])
    else:
        first = concatenate([one, (src[1:] != src[:-1]).any(axis=1)])
    starts = nonzero(first)[0]
    if flat:
        values = masked_select(src, first)
    else:
        values = index_select(x, d, starts)
    out = [values]
    if return_inverse:
        inv = first.astype(np.int64).cumsum(0) - 1
        out.append(inv.reshape(_shape(x)) if flat else inv)
    if return_counts:
        out.append(diff(starts, append=tensor([n], device=x.device)))
    return out[0] if len(out) == 1 else tuple(out)


def histc(input, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:
    """Counts of values in ``bins`` equal-width bins over [min, max] (``torch.histc``): with
    min = max the data's range is used; values outside are ignored, ``max`` falls in the last
    bin. Floating point only; not differentiable."""
    from ..creation import zeros
    from .indexing import index_add
    x = to_tensor(input).detach()
    if x.dtype.kind != "f":
        raise TypeError(f"histc: input must be floating point, got {x.dtype}")
    from ..graph.tracer import TracedSize
    if isinstance(bins, TracedSize):    # the output's length: fixed per graph
        bins.escape("int()", "histc: bins is the output's length, a fixed attribute")
        bins = int.__int__(bins)
    bins = _int(bins, "histc", "bins")
    if bins <= 0:
        raise ValueError(f"histc: bins must be > 0, got {bins}")
    from ._util import check_alloc
    check_alloc("histc", (bins,), x.dtype.itemsize)
    lo, hi = float(min), float(max)
    if lo > hi:
        raise ValueError(f"histc: max must be larger than min, got min={min}, max={max}")
    from .._state import state
    capturing = state.tracer is not None
    # under capture the counts must come from graph ops (a host histogram would be a
    # constant of the traced values), and so must the data's range
    host = x._data if isinstance(x._data, np.ndarray) and x.dtype.itemsize >= 4 \
        and not capturing else None
    if lo == hi and capturing:
        return _histc_data_range(x, bins)
    if lo == hi and x.numel():
        if host is not None:
            lo, hi = float(host.min()), float(host.max())
        else:
            lo, hi = float(x.min().item()), float(x.max().item())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if not (math.isfinite(lo) and math.isfinite(hi)):
        from ..errors import InputError
        raise InputError(f"histc: range of [{lo}, {hi}] is not finite")
    if host is not None:
        return to_tensor(_histc_np(host.reshape(-1), bins, lo, hi))
    v = x.reshape(-1)
    inside = (v >= lo) & (v <= hi)
    # PyTorch's bin, rounding included: (x - min) * bins / (max - min) in the input's dtype,
    # truncated (a value on an edge computed as 2.9999 lands in bin 2, as there)
    lo_t, hi_t = x.dtype.type(lo), x.dtype.type(hi)
    span = float(hi_t - lo_t)           # (max - min) in the input's dtype too
    pos = ((E.where(inside, v, lo) - float(lo_t)) * bins / span).astype(np.int64)
    pos = pos.clip(0, bins - 1)
    counts = index_add(zeros(bins, dtype=x.dtype, device=x.device), 0, pos,
                       inside.astype(x.dtype))
    return counts


def _histc_data_range(x: Tensor, bins: int) -> Tensor:
    """histc over the data's own range as graph ops (min = max under capture): the bounds
    are 0-d tensors, widened by 1 each way when they meet, as the eager path does."""
    from ..creation import zeros
    from .indexing import index_add
    v = x.reshape(-1)
    lo, hi = v.min(), v.max()
    same = lo == hi
    lo, hi = E.where(same, lo - 1, lo), E.where(same, hi + 1, hi)
    pos = ((v - lo) * bins / (hi - lo)).astype(np.int64).clip(0, bins - 1)
    inside = (v >= lo) & (v <= hi)
    return index_add(zeros(bins, dtype=x.dtype, device=x.device), 0, pos,
                     inside.astype(x.dtype))


def _histc_np(v: np.ndarray, bins: int, lo: float, hi: float) -> np.ndarray:
    """histc's counts on the CPU: the bin ids as below, counted by one ``bincount`` (an
    extra bin takes the values outside [lo, hi] and NaN); the 7 op calls of the general
    path cost 3x PyTorch on 8192 values."""
    dt = v.dtype.type
    lo_t, hi_t = dt(lo), dt(hi)
    inside = (v >= lo_t) & (v <= hi_t)
    t = np.where(inside, v, lo_t)
    t -= lo_t
    t *= dt(bins)
    t /= dt(hi_t - lo_t)
    pos = t.astype(np.int64)
    np.clip(pos, 0, bins - 1, out=pos)
    pos[~inside] = bins
    return np.bincount(pos, minlength=bins + 1)[:bins].astype(v.dtype)


# --- creation ---------------------------------------------------------------------------------
def randint_like(input, low: int = 0, high: int | None = None, *, dtype=None, device=None,
                 requires_grad: bool = False, generator=None, memory_format=None) -> Tensor:
    """Random integers in [low, high) (or [0, low) with one bound) with ``input``'s shape,
    and its dtype and device unless given (``torch.randint_like``); laid out as the other
    ``*_like`` functions (``memory_format``)."""
    from ..creation import _in_format, randint
    x = to_tensor(input)
    if high is None:
        low, high = 0, low
    out = randint(int(low), int(high), _shape(x), generator=generator,
                  dtype=dtype if dtype is not None else x.dtype,
                  device=device if device is not None else x.device)
    out = _in_format("randint_like", x, out, memory_format)
    if requires_grad:
        out.requires_grad = True
    return out


def logspace(start: float, end: float, steps: int, base: float = 10.0, *, dtype=None,
             device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` values from ``base ** start`` to ``base ** end``, evenly spaced in the
    exponent (``torch.logspace``); the default float dtype unless ``dtype`` (complex ends:
    its complex dtype)."""
    from ..creation import linspace
    cx = np.iscomplexobj(start) or np.iscomplexobj(end)
    dt = _dtypes.as_dtype(dtype) if dtype is not None else (
        _dtypes.complex_of(_dtypes.default_float) if cx else _dtypes.default_float)
    if cx and dt.kind != "c":
        raise TypeError(f"logspace: complex start/end ({start}, {end}) cannot be cast to the "
                        f"real dtype {dt}; pass a complex dtype or leave dtype unset")
    if cx:      # complex exponents: base ** z on the principal branch, as PyTorch's
        e = linspace(complex(start), complex(end), steps, dtype=np.complex128, device=device)
    else:
        e = linspace(float(start), float(end), steps, dtype=np.float64, device=device)
    out = (float(base) ** e).astype(dt)
    if requires_grad:
        out.requires_grad = True
    return out


def _indices(kind: str, row: int, col: int, offset: int, dtype, device) -> Tensor:
    from ..creation import tensor
    row, col = _int(row, kind, "row"), _int(col, kind, "col")
    offset = _int(offset, kind, "offset")
    if row < 0 or col < 0:
        raise ValueError(f"{kind}: row and col must be non-negative, got {row} and {col}")
    fn = np.tril_indices if kind == "tril_indices" else np.triu_indices
    r, c = fn(row, offset, col)
    return tensor(np.stack([r, c]).astype(np.int64).reshape(2, -1),
                  dtype=dtype if dtype is not None else np.int64, device=device)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row and column indices of the lower triangle of a row x col matrix, row by
    row (``torch.tril_indices``; ``offset`` as ``tril``'s diagonal)."""
    return _indices("tril_indices", row, col, offset, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row and column indices of the upper triangle of a row x col matrix
    (``torch.triu_indices``)."""
    return _indices("triu_indices", row, col, offset, dtype, device)


def cartesian_prod(*tensors) -> Tensor:
    """Every combination of one element from each 1-d tensor, one per row: (N, k)
    (``torch.cartesian_prod``; one tensor is returned as it is)."""
    from .rearrange import meshgrid
    from .shape import stack
    ts = [to_tensor(t) for t in tensors]
    if not ts:
        raise ValueError("cartesian_prod: expects at least one tensor")
    for t in ts:
        if t.ndim != 1:
            raise ValueError(f"cartesian_prod: expects 1-d tensors, got shape {_shape(t)}")
    if len(ts) == 1:
        return ts[0]
    return stack([g.reshape(-1) for g in meshgrid(*ts, indexing="ij")], axis=1)


def combinations(input, r: int = 2, with_replacement: bool = False) -> Tensor:
    """The length-``r`` combinations of the elements of a 1-d tensor, one per row, in
    lexicographic order of positions (``torch.combinations``); differentiable."""
    from ..creation import tensor
    x = to_tensor(input)
    if x.ndim != 1:
        raise ValueError(f"combinations: expects a 1-d tensor, got shape {_shape(x)}")
    r = _int(r, "combinations", "r")
    if r < 0:
        raise ValueError(f"combinations: r must be non-negative, got {r}")
    if r == 0:
        return x[:0]
    return x[tensor(_combination_table(x.shape[0], r, with_replacement), device=x.device)]


def _combination_table(n: int, r: int, with_replacement: bool) -> np.ndarray:
    """The (count, r) positions of the length-``r`` combinations of ``range(n)`` in
    lexicographic order (``itertools.combinations``' order), built a column at a time:
    each row is followed by every larger (or equal, with replacement) next position."""
    idx = np.arange(n, dtype=np.int64).reshape(-1, 1)
    step = 0 if with_replacement else 1
    for _ in range(r - 1):
        first = idx[:, -1] + step                       # the smallest next position per row
        counts = np.maximum(n - first, 0)
        rows = np.repeat(idx, counts, axis=0)
        starts = np.cumsum(counts) - counts
        nxt = np.arange(rows.shape[0], dtype=np.int64) - np.repeat(starts - first, counts)
        idx = np.concatenate([rows, nxt.reshape(-1, 1)], axis=1)
    return idx


def block_diag(*tensors) -> Tensor:
    """A block-diagonal matrix of the given 0-, 1- or 2-d tensors, zeros elsewhere
    (``torch.block_diag``; a 1-d tensor is one row)."""
    from ..creation import zeros
    from .shape import concatenate
    ts = [to_tensor(t) for t in tensors]
    for t in ts:
        if t.ndim > 2:
            raise ValueError(f"block_diag: expects tensors of at most 2 dims, got shape "
                             f"{_shape(t)}")
    if not ts:
        return zeros(1, 0)
    ts = [t.reshape((1, 1)) if t.ndim == 0 else t.reshape((1, -1)) if t.ndim == 1 else t
          for t in ts]
    dt = category_dtype(t.dtype for t in ts)
    ts = [t.astype(dt) if t.dtype != dt else t for t in ts]
    dev = ts[0].device
    if len({_shape(t) for t in ts}) == 1:
        return _block_diag_uniform(ts)
    width = sum(t.shape[1] for t in ts)
    # one zeros tensor, sliced for every gap (creating a tensor per gap costs more)
    zero = zeros(max(t.shape[0] for t in ts), width, dtype=dt, device=dev)
    rows, left = [], 0
    for t in ts:
        r, c = t.shape
        rows.append(concatenate([zero[:r, :left], t, zero[:r, left + c:]], axis=1))
        left += c
    return concatenate(rows, axis=0)


def _block_diag_uniform(ts: list) -> Tensor:
    """``block_diag`` of k blocks of one shape (r, c) by copies only: row i of every block
    followed by k c zeros, laid end to end, has block b's row at b (k + 1) c; cut into
    rows of k c, that is column b c of row b (the trick that makes a diagonal matrix
    from a vector)."""
    from ..creation import zeros
    from .shape import concatenate, stack
    k, (r, c) = len(ts), _shape(ts[0])
    s = stack(ts, axis=1)                                             # (r, k, c)
    z = zeros(r, k, k * c, dtype=s.dtype, device=s.device)
    flat = concatenate([s, z], axis=2).reshape((r, k * (k + 1) * c))[:, :k * k * c]
    return flat.reshape((r, k, k * c)).permute((1, 0, 2)).reshape((k * r, k * c))


# --- round 2: the names gathered from their own modules ---------------------------------------
# (imported as modules: names such as ``range``, ``t`` and ``svd`` must not shadow the
# builtins and locals of the functions above)
from . import elementwise as _E  # noqa: E402
from . import linalg_more as _linalg_more  # noqa: E402
from . import matrix as _matrix  # noqa: E402
from . import nn_aliases as _nn_aliases  # noqa: E402
from . import scatter_reduce as _scatter_reduce  # noqa: E402
from . import segment as _segment  # noqa: E402
from . import stft as _stft  # noqa: E402
from . import torch_creation as _creation  # noqa: E402
from . import torch_dtypes as _dtypes_api  # noqa: E402
from . import torch_linalg as _linalg_api  # noqa: E402
from . import torch_math as _math  # noqa: E402
from . import torch_settings as _settings  # noqa: E402
from . import torch_views as _views  # noqa: E402
from . import windows as _windows  # noqa: E402
from .linalg import outer as _outer  # noqa: E402


def logit(input, eps: float | None = None) -> Tensor:
    """``log(p / (1 - p))``, with ``p`` first clamped to [eps, 1 - eps] when ``eps`` is given
    (``torch.logit``; the same as ``tl.special.logit``)."""
    from ..special import logit as _logit
    return _logit(input, eps)


def sinc(input) -> Tensor:
    """The normalised sinc, ``sin(pi x) / (pi x)`` and 1 at 0 (``torch.sinc``)."""
    from ..special import sinc as _sinc
    return _sinc(input)


def detach(input) -> Tensor:
    """``input`` cut from the tape (``torch.detach``)."""
    return to_tensor(input).detach()


def unsafe_chunk(input, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """``chunk`` (``torch.unsafe_chunk``: PyTorch's variant without the views' version
    checks; tensorlib's views are as safe either way)."""
    from .shape import chunk
    return chunk(input, chunks, dim)


def unsafe_split(input, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    """``split`` with PyTorch's arguments (``torch.unsafe_split``)."""
    from .shape import split
    return split(input, dim=dim, split_size_or_sections=split_size_or_sections)


def unsafe_split_with_sizes(input, split_sizes, dim: int = 0) -> tuple[Tensor, ...]:
    """``split_with_sizes`` (``torch.unsafe_split_with_sizes``)."""
    return _views.split_with_sizes(input, split_sizes, dim)


def adjoint(input) -> Tensor:
    """The transpose of the last two dims (``torch.adjoint``; real tensors need no
    conjugation)."""
    return to_tensor(input).adjoint()


def get_device(input) -> int:
    """The GPU's index of a CUDA tensor, -1 for a CPU one (``torch.get_device``)."""
    return to_tensor(input).get_device()


def to_dlpack(tensor):
    """A DLPack capsule sharing ``tensor``'s memory (``torch.to_dlpack``; read it with
    another library's ``from_dlpack``)."""
    return to_tensor(tensor).__dlpack__()


def trace(input, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The sum of the main diagonal of a 2-d ``input`` (``torch.trace(input)``; NumPy's
    ``offset``, ``axis1``, ``axis2`` too)."""
    from .diagonal import trace as _trace
    return _trace(input, offset, axis1, axis2)


def equal(input, other) -> bool:
    """Whether ``input`` and ``other`` have the same shape and values (``torch.equal``)."""
    return _E.equal(input, other)


def true_divide(input, other) -> Tensor:
    """``input / other`` in floating point (``torch.true_divide``, an alias of ``div``)."""
    return _E.true_divide(input, other)


def _top_inplace(name: str):
    """``torch.<name>(input, ...)``: the Tensor method of that name (bound by
    ``tensorlib/_torch_methods.py``), as a function."""
    def fn(input, *args, **kwargs):
        return getattr(Tensor, name)(input, *args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"In place: ``input.{name}(...)`` (``torch.{name}``); returns ``input``."
    return fn


#: torch.* in-place functions that are the Tensor method of the same name
TOP_INPLACE = (
    "abs_", "acos_", "acosh_", "arccos_", "arccosh_", "arcsin_", "arcsinh_", "arctan_",
    "arctanh_", "asin_", "asinh_", "atan_", "atanh_", "ceil_", "clamp_", "clamp_max_",
    "clamp_min_", "clip_", "cos_", "cosh_", "deg2rad_", "detach_", "erf_", "erfc_", "exp2_",
    "exp_", "expm1_", "fill_", "fix_", "floor_", "frac_", "gcd_", "i0_", "index_put_",
    "lcm_", "ldexp_", "log10_", "log1p_", "log2_", "log_", "logit_", "nan_to_num_", "neg_",
    "negative_", "rad2deg_", "reciprocal_", "round_", "rsqrt_", "sigmoid_", "sin_", "sinc_",
    "sinh_", "sqrt_", "square_", "tan_", "tanh_", "trunc_", "xlogy_", "zero_", "addmv_",
)

#: Tensor-method helpers of the first round that torch has no ``torch.<name>`` for
METHOD_ONLY = ("fill_diagonal_mask",)


def _exports() -> dict:
    from .. import linalg as _tl_linalg     # (its inv raises PyTorch's singular-matrix text)
    out = {n: globals()[n] for n in _ROUND1 if n not in METHOD_ONLY}
    for mod in (_scatter_reduce, _segment, _creation, _dtypes_api, _linalg_api, _math, _settings,
                _stft, _views, _windows):
        out.update({n: getattr(mod, n) for n in mod.__all__ if n != "COPY_VARIANTS"})
    out.update(_views.COPY_VARIANTS)
    out.update(_nn_aliases.TOP_LEVEL)
    out.update({n: _top_inplace(n) for n in TOP_INPLACE})
    out.update({
        "logit": logit, "sinc": sinc, "detach": detach, "unsafe_chunk": unsafe_chunk,
        "unsafe_split": unsafe_split, "unsafe_split_with_sizes": unsafe_split_with_sizes,
        "absolute": _E.abs, "negative": _E.neg, "bitwise_left_shift": _E.left_shift,
        "bitwise_right_shift": _E.right_shift, "row_stack": vstack, "ger": _outer,
        "det": _matrix.det, "slogdet": _linalg_more.slogdet, "inverse": _tl_linalg.inv,
        "clamp": clamp, "clip": clamp,
    })
    out.update({"adjoint": adjoint, "get_device": get_device, "to_dlpack": to_dlpack})
    # PyTorch's keyword names (trace(input=), equal(other=), true_divide(other=))
    out.update({"trace": trace, "equal": equal, "true_divide": true_divide})
    del out["unfold"]           # Tensor.unfold only (torch.unfold_copy is the function)
    del out["sum_to_size"]      # a Tensor method only in torch
    return out


#: every name ``tl`` exports from here: ``tensorlib/__init__.py`` adds them to ``tl``
EXPORTS = _exports()
__all__ = sorted({n for n in EXPORTS if n in globals()}
                 | {"EXPORTS", "METHOD_ONLY", "TOP_INPLACE", "fill_diagonal_mask"})
