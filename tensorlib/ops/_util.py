"""Helpers shared by op definitions: operand conversion, broadcasting, inference."""
from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence

import numpy as np

from .. import _dtypes
from .._tensor import Tensor, _wrap
from ..errors import InputError, ShapeError


@functools.cache
def _memory_bytes() -> int:
    """The machine's physical memory (lowered by an address-space rlimit), or 2**63 when the
    platform does not say."""
    limit = (1 << 63) - 1
    try:
        limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            limit = min(limit, soft)
    except (ImportError, OSError, ValueError):
        pass
    return limit


def check_alloc(op: str, shape, itemsize: int = 4, what: str = "output") -> None:
    """Raise a ShapeError naming ``op`` when a ``shape`` buffer of ``itemsize``-byte elements
    would not fit in memory: absurd sizes are refused before NumPy tries (its MemoryError names
    no op, and under overcommit a huge allocation can get the process killed). Sizes read
    from a None dim under capture are not checked."""
    # a TracedSize is an int too: reading it (int(), >) would freeze the captured size
    if any(not isinstance(d, (int, np.integer)) or hasattr(d, "expr") for d in shape):
        return
    n = 1
    for d in shape:
        n *= int(d)
    need, have = n * int(itemsize), _memory_bytes()
    if need > have:
        from ..errors import ShapeError
        raise ShapeError(f"{op}: the {what} of shape {tuple(int(d) for d in shape)} would need "
                         f"{need / 2**30:,.1f} GiB, more than the {have / 2**30:,.1f} GiB of "
                         "memory available")


def one_of(op: str, name: str, value, alias_name: str, alias):
    """An argument given under its own ``name`` or PyTorch's ``alias_name`` (None: not
    given), never both: ``axis = one_of("tile", "reps", reps, "dims", dims)``."""
    if alias is None:
        return value
    if value is not None:
        raise TypeError(f"{op}: got both {name}= and {alias_name}=; pass one")
    return alias


def weak_scalar(value, ref: Tensor, *, wrap: bool = False, fill: str | None = None) -> Tensor:
    """A Python scalar as a 0-d tensor whose dtype defers to ``ref`` (weak typing).

    float32 tensor + 2.0 stays float32; an integer tensor + 2.5 gives float32. A Python int
    outside an integer ``ref``'s range raises OverflowError, unless ``wrap``: then it is
    wrapped into the dtype (:func:`wrap_int`), as PyTorch's integer arithmetic and
    comparisons do (``uint8 > -1`` compares with 255). Pass ``wrap=True`` only for ops that
    compute in the integer dtype; true division and float functions use the exact value in
    PyTorch. ``fill``: the name of a fill (setitem, ``fill_``, ``masked_fill``, ``where``),
    which converts as PyTorch's ``checked_convert`` (:func:`fill_int`): ints always, floats
    going into an integer tensor too, except for ``where``, whose result is then float.

    >>> weak_scalar(200, tl.tensor([1], dtype=tl.int8), wrap=True)      # tensor(-56, int8)
    """
    kind = ref._data.dtype.kind
    if isinstance(value, (bool, np.bool_)):
        dt = ref._data.dtype
    elif isinstance(value, (int, np.integer)):
        dt = ref._data.dtype if kind != "b" else _dtypes.int64
        if kind in "iub":
            info = np.iinfo(dt)
            if not info.min <= value <= info.max:
                if fill is not None:
                    value = fill_int(int(value), dt, fill)
                elif not wrap:
                    raise OverflowError(f"Python integer {value} out of bounds for {dt}")
                else:
                    value = wrap_int(int(value), dt)
    elif isinstance(value, (complex, np.complexfloating)):
        if fill is not None and fill != "where" and kind != "c":
            raise TypeError(f"{fill}: a complex value cannot be stored in a tensor of dtype "
                            f"{ref._data.dtype}")
        dt = _dtypes.complex_of(ref._data.dtype)
    elif isinstance(value, (float, np.floating)):
        if fill is not None and fill != "where" and kind in "iu":
            # a fill stores into the tensor's dtype (where promotes to float instead)
            value = fill_int(value, ref._data.dtype, fill)
            dt = ref._data.dtype
        else:
            dt = ref._data.dtype if kind in "fc" else _dtypes.default_float
    else:
        raise TypeError(f"unsupported operand type {type(value).__name__}; expected a Tensor "
                        "or a Python number")
    if ref._device.type == "cpu":
        return _wrap(np.array(value, dtype=dt), ref._device, False, None, 0)
    return _wrap(_device_constant(value, dt, ref._device), ref._device, False, None, 0)


_F16 = np.dtype(np.float16)
_NUMBER = (int, float, np.integer, np.floating)


def half_opmath_operand(a, b) -> bool:
    """Whether PyTorch's CPU kernel computes ``a * b``, ``a / b`` or ``a // b`` in float32
    ("opmath"): ``a`` a float16 tensor, ``b`` a Python number or a 0-d tensor (not float16)
    and the result float16. It then reads ``b``'s full value rather than its float16 rounding
    (``x16 / 65536.0`` is not ``x16 / inf``) and rounds the result once. Other ops (``+``,
    ``-``, ``%``, a scalar on the left) round the scalar to float16 first there, as NumPy.
    """
    if not isinstance(a, Tensor) or a._data.dtype is not _F16:
        return False
    if isinstance(b, Tensor):
        d = b._data
        if d.ndim or d.dtype is _F16:
            return False
        k = d.dtype.kind
        return k in "biu" or (k == "f" and a._data.ndim > 0)
    # (a bool is 0 or 1: exact in float16 anyway)
    return isinstance(b, _NUMBER) and not isinstance(b, bool)


def half_opmath(op, a: Tensor, b) -> Tensor:
    """``op(a, b)`` for a float16 ``a`` and a scalar ``b`` (:func:`half_opmath_operand`):
    in float32 with ``b``'s value, rounded to float16 once, as PyTorch's CPU kernels."""
    from .._core import apply
    f32 = _dtypes.float32
    a = a.astype(f32)
    b = b.astype(f32) if isinstance(b, Tensor) else weak_scalar(b, a)
    return apply(op, a, b).astype(_F16)


def wrap_int(value: int, dtype) -> int:
    """``value`` converted to the integer ``dtype`` with two's-complement wraparound, as
    PyTorch converts a Python int operand (``int8 + 200`` adds -56). Only ints that fit in
    64 bits (-2**63 .. 2**64 - 1) have that conversion there; others raise OverflowError.

    >>> wrap_int(256, np.uint8), wrap_int(-1, np.uint8), wrap_int(200, np.int8)
    (0, 255, -56)
    """
    if not -(1 << 63) <= value < (1 << 64):
        raise OverflowError(f"Python integer {value} does not fit in 64 bits (the widest "
                            f"integer a tensor of {np.dtype(dtype)} can meet)")
    info = np.iinfo(dtype)
    span = 1 << info.bits
    v = value % span
    return v - span if v > info.max else v


class ValueRangeError(InputError, OverflowError):
    """A number that does not fit the dtype it is stored in (PyTorch: RuntimeError)."""


def fill_int(value: int | float, dtype, op: str) -> int:
    """A Python number stored into the integer ``dtype`` by a fill, as PyTorch's
    ``checked_convert``: a signed dtype takes its range only; an unsigned one also takes the
    ints -max..-1, wrapped (``uint8.fill_(-1)`` stores 255, ``fill_(-256)`` raises). A float
    must be finite and within the range (``uint8.fill_(-1.0)``, ``int8.fill_(127.5)`` and
    NaN raise) and is truncated toward zero (``int32.fill_(-2.7)`` stores -2).

    >>> fill_int(-1, np.uint8, "fill_")      # 255
    """
    info = np.iinfo(dtype)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        # (a float compared with Python ints is exact, so 2.0**63 does not pass for int64)
        if math.isfinite(v) and info.min <= v <= info.max:
            return int(v)
    elif info.min <= value <= info.max:
        return value
    elif info.min == 0 and -info.max <= value < 0:
        return value + (1 << info.bits)
    raise ValueRangeError(f"{op}: value {value} cannot be converted to type {np.dtype(dtype)} "
                          "without overflow")


def check_alpha(alpha, dtype, op: str, *, negate: bool = False):
    """``add``/``sub``'s ``alpha`` for a result of ``dtype``, checked as PyTorch's: an
    integer or bool result refuses a float alpha, and an integer alpha must fit the dtype
    as a fill value does (:func:`fill_int`; ``sub`` checks ``-alpha``, so int8
    ``sub(alpha=-128)`` raises there too). Returns ``alpha`` converted (uint8: -1 is 255)."""
    dt = np.dtype(dtype)
    if dt.kind not in "iub":
        return alpha
    if isinstance(alpha, (float, np.floating)):
        raise TypeError(f"{op}: for integral input tensors, argument alpha must not be a "
                        f"floating point number (got {alpha!r} for dtype {dt})")
    if isinstance(alpha, (bool, np.bool_)) != (dt.kind == "b"):
        raise TypeError(f"{op}: a boolean alpha only goes with a boolean result, and a bool "
                        f"result takes a boolean alpha only (got {alpha!r} for dtype {dt})")
    if dt.kind == "b":
        return alpha
    fill_int(-int(alpha) if negate else int(alpha), dt, f"{op} (alpha)")
    # (sub's alpha itself may sit just outside, as int8's 128; the product wraps the same)
    return wrap_int(int(alpha), dt)


_DEVICE_CONSTANTS: dict = {}


def _device_constant(value, dt, device):
    """A 0-d device array holding ``value``, cached: a host-to-device copy per scalar would
    synchronise the stream on every ``x * 0.5``. Nothing writes into these arrays (in-place
    ops write into their target, never into an operand)."""
    key = (type(value), value, dt, device)
    arr = _DEVICE_CONSTANTS.get(key)
    if arr is None:
        from ..backends import to_device
        arr = to_device(np.array(value, dtype=dt), device)
        if len(_DEVICE_CONSTANTS) > 4096:
            _DEVICE_CONSTANTS.clear()
        _DEVICE_CONSTANTS[key] = arr
    return arr


def as_operands(a, b, *, wrap: bool = False,
                fill: str | None = None) -> tuple[Tensor, Tensor]:
    """Convert a binary op's operands; at least one must be a Tensor. ``wrap``: an
    out-of-range Python int meeting an integer tensor wraps into its dtype (see
    :func:`weak_scalar`; for ops that compute in that integer dtype); ``fill``: it converts
    as a fill value of op ``fill`` does (:func:`fill_int`)."""
    ta = type(a) is Tensor or isinstance(a, Tensor)
    tb = type(b) is Tensor or isinstance(b, Tensor)
    if ta and tb:
        return a, b
    if ta:
        if _is_scalar(b):
            b = weak_scalar(b, a, wrap=wrap, fill=fill)
            return promote_for_scalar(a, b), b
        return a, to_tensor(b)
    if tb:
        if _is_scalar(a):
            a = weak_scalar(a, b, wrap=wrap, fill=fill)
            return a, promote_for_scalar(b, a)
        return to_tensor(a), b
    from ..creation import tensor
    return tensor(a), tensor(b)


# PyTorch's type categories: bool < integer < float < complex (9: a dtype outside them)
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def promote_types(da: np.dtype, db: np.dtype) -> np.dtype:
    """``torch.promote_types`` on NumPy dtypes: the higher category wins with its own dtype
    (int32 with float16 is float16, where NumPy says float64); complex with float and two
    dtypes of one category take the wider precision (complex64 with float64 is
    complex128, uint8 with int8 int16), as NumPy."""
    if da is db:
        return da
    ca, cb = _CATEGORY.get(da.kind, 9), _CATEGORY.get(db.kind, 9)
    if ca != cb and ca + cb != 5:       # (5: float with complex, NumPy's rule below)
        return da if ca > cb else db
    return np.promote_types(da, db)


def combine_categories(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    """PyTorch's ``combine_categories``: the dtype of a higher-priority operand group
    (``higher``) meeting a lower one's (None: an empty group). ``higher`` keeps its dtype
    unless ``lower`` is of a higher category; a complex ``lower`` over a float ``higher``
    takes ``higher``'s precision (float64 with a complex64 0-d tensor is complex128)."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    kh, kl = higher.kind, lower.kind
    if kh == "c":
        return higher
    if kl == "c":
        return _dtypes.complex_of(higher) if kh == "f" else lower
    if kh == "f":
        return higher
    if kh == "b" or kl == "f":
        return promote_types(higher, lower)
    return higher


def result_dtype(dims: np.dtype | None, zero_dim: np.dtype | None = None,
                 numbers: np.dtype | None = None) -> np.dtype | None:
    """The dtype of an op on operands in PyTorch's three groups (its ``ResultTypeState``):
    tensors with dims, 0-d tensors and Python numbers (as their default dtypes), each
    group's dtypes already combined by :func:`promote_types` (None: no such operand). The
    groups then combine by category in that order of priority: a 0-d tensor or a number
    widens the result only when of a higher category (``x32 * tensor(2.0, float64)`` is
    float32, ``int32 tensor + 2.5`` float32). tensorlib's one promotion rule:
    :func:`torch_promote`, :func:`same_category`, :func:`promote_for_scalar` and
    ``tl.result_type`` are its cases.

    >>> result_dtype(np.dtype("uint8"), np.dtype("int64"))      # dtype('uint8')
    """
    return combine_categories(dims, combine_categories(zero_dim, numbers))


def torch_promote(da, nda: int, db, ndb: int) -> np.dtype:
    """The dtype PyTorch computes a binary op of operands of dtypes ``da``, ``db`` with
    ``nda``, ``ndb`` dims in (:func:`result_dtype` for two tensors; for kernels and
    ``infer`` rules, which see arrays or specs rather than Tensors).

    >>> torch_promote(np.dtype("uint8"), 1, np.dtype("int64"), 0)     # dtype('uint8')
    """
    da, db = np.dtype(da), np.dtype(db)
    if (nda == 0) == (ndb == 0):
        return promote_types(da, db)
    # (result_dtype's two groups, without its call: this is on every mixed-dtype op's path)
    return combine_categories(da, db) if nda else combine_categories(db, da)


def same_category(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """The two operands cast to the dtype PyTorch's promotion gives the pair
    (:func:`torch_promote`), where NumPy's kernel would not reach it by itself: an integer
    tensor meeting a float one (NumPy makes int64 and float32 float64), a 0-d tensor beside
    a tensor with dims (``x32 * tl.tensor(2.0, dtype=tl.float64)`` stays float32), complex
    meeting real. Two tensors of one group and kind, or of the bool and integer kinds,
    NumPy promotes as PyTorch: they stay as they are."""
    da, db = a._data, b._data
    ta, tb = da.dtype, db.dtype
    if (da.ndim == 0) == (db.ndim == 0):
        ka, kb = ta.kind, tb.kind
        if ka == kb or (ka in "biu" and kb in "biu"):
            return a, b
        dt = promote_types(ta, tb)
    else:       # (torch_promote's two groups, inline: every mixed-dtype op comes here)
        dt = combine_categories(ta, tb) if da.ndim else combine_categories(tb, ta)
    # (astype returns an operand of an equal, non-identical dtype itself)
    return (a if ta is dt else a.astype(dt)), (b if tb is dt else b.astype(dt))


def float_operands(a, b) -> tuple[Tensor, Tensor]:
    """A float-result binary op's operands (true division, ``atan2``), both cast to the
    float dtype it computes in, as PyTorch: integer operands go straight to that dtype, so a
    0-d ``tensor(-2)`` meeting a uint8 tensor divides by -2, not by its uint8 wrap 254, and a
    Python int is taken exactly (``uint8 / -3``, ``atan2(uint8, 300)``).

    >>> float_operands(tl.tensor([6], dtype=tl.uint8), tl.tensor(-2))   # float32 6., -2.
    """
    if _int_number(a) and isinstance(b, Tensor) and b._data.dtype.kind != "f":
        a = float(a)        # exact, where the integer tensor's dtype would wrap or refuse it
    if _int_number(b) and isinstance(a, Tensor) and a._data.dtype.kind != "f":
        b = float(b)
    a, b = as_operands(a, b)
    da, db = a._data, b._data
    dt = torch_promote(da.dtype, da.ndim, db.dtype, db.ndim)
    if dt.kind not in "fc":
        dt = _dtypes.default_float
    if da.dtype != dt:
        a = a.astype(dt)
    if db.dtype != dt:
        b = b.astype(dt)
    return a, b


def promote_for_scalar(t: Tensor, scalar: Tensor) -> Tensor:
    """``t`` cast to the dtype it computes in beside a Python number (``scalar``, from
    :func:`weak_scalar`), by :func:`result_dtype`'s rule, where that is a float or complex
    dtype NumPy would not reach itself: an integer tensor meeting a float number computes in
    the default float type (NumPy would promote the pair to float64)."""
    ts, tt = scalar._data.dtype, t._data.dtype
    if ts.kind == tt.kind or ts.kind not in "fc":
        return t        # (the common case, decided without a call: ``x * 0.5``)
    dt = combine_categories(tt, ts)
    return t if dt is tt else t.astype(dt)


def _int_number(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _is_scalar(x) -> bool:
    return isinstance(x, (int, float, complex, bool, np.number, np.bool_))


def around_axis(a: np.ndarray, axis: int) -> np.ndarray:
    """``a`` as a C-contiguous (outer, n, inner) array around ``axis`` (``n`` its length),
    the layout of the Cython kernels that work along one dim; a copy only when ``a`` is
    not C-contiguous (a fresh output array is a view of itself, so writes land in it)."""
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    s = a.shape
    return a.reshape(math.prod(s[:axis]), s[axis], math.prod(s[axis + 1:]))


def to_tensor(x) -> Tensor:
    if isinstance(x, Tensor):
        return x
    from ..creation import as_tensor
    return as_tensor(x)


def host_values(x, dtype=None) -> np.ndarray:
    """An argument's values on the host, for ops that need them as Python-side data (counts,
    offsets, levels). A tensor is read through ``.numpy()``, so graph capture refuses one
    that is a graph input instead of freezing its traced value."""
    a = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
    return a if dtype is None else a.astype(dtype, copy=False)


def to_float(x: Tensor) -> Tensor:
    """Integer/bool inputs of transcendental ops compute in the default float type."""
    if x._data.dtype.kind in "fc":
        return x
    return x.astype(_dtypes.default_float)


def unbroadcast(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum ``g`` down to ``shape`` (the adjoint of broadcasting), differentiably."""
    gs = g._data.shape
    if gs == shape:
        return g
    from .reduction import sum as _sum
    if len(gs) < len(shape):    # a value with extra leading 1s (x[0] = v of shape (1, 1, 5))
        g = g.reshape((1,) * (len(shape) - len(gs)) + tuple(gs))
        gs = g._data.shape
    lead = len(gs) - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and gs[i + lead] != 1)
    out = _sum(g, axis=axes, keepdims=True) if axes else g
    if out._data.shape != shape:
        out = out.reshape(shape)
    return out


def norm_axis(axis: int, ndim: int, op: str, of: str = "a tensor") -> int:
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{op}: axis must be an integer, got {axis!r}")
    if not -max(ndim, 1) <= axis < max(ndim, 1):
        n = max(ndim, 1)
        from ..errors import DimError
        raise DimError(f"{op}: axis {axis} is out of range for {of} of {ndim} dimensions "
                       f"(valid: {-n} to {n - 1})")
    return int(axis) % max(ndim, 1)


def norm_axes(axis, ndim: int, op: str, of: str = "a tensor") -> tuple[int, ...]:
    """Normalise an ``axis`` argument (None, int or sequence) to sorted positive axes
    (``of``: what has the ``ndim`` dims, for the error)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = []
    for a in axis:
        if ndim == 0 and a in (0, -1):
            continue
        out.append(norm_axis(a, ndim, op, of))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {tuple(axis)}")
    return tuple(sorted(out))


def broadcast_shapes(op: str, *shapes) -> tuple:
    """NumPy broadcasting of static shapes (``None`` dims allowed)."""
    nd = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(nd):
        dim = 1
        for s in shapes:
            j = i - (nd - len(s))
            if j < 0:
                continue
            d = s[j]
            if d == 1:
                continue
            if dim == 1 or dim is None:
                dim = d if dim == 1 or d is not None else dim
            elif d is not None and d != dim:
                raise ShapeError(f"{op}: shapes {' and '.join(str(tuple(x)) for x in shapes)} "
                                 f"cannot be broadcast together (dimension {j}: {dim} vs {d})")
        out.append(dim)
    return tuple(out)


# --- inference / cost helpers for registry entries -----------------------
def same_infer(x, **attrs):
    return x


def real_infer(x, **attrs):
    """A same-shape result in the real dtype of the input's (complex64 -> float32; real
    dtypes as they are): abs, real, imag, angle."""
    return x[0], _dtypes.real_of(x[1])


def require_tensor(op: str, x) -> Tensor:
    """``x`` itself when it is a Tensor, else a TypeError naming ``op`` (for functions that,
    as PyTorch's, take tensors only)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    return x


def float_infer(x, **attrs):
    shape, dt = x
    return shape, (dt if np.dtype(dt).kind in "fc" else _dtypes.default_float)


def bool_infer(x, **attrs):
    return x[0], _dtypes.bool_


def make_binary_infer(name: str, result_dtype=None):
    def infer(a, b, **attrs):
        shape = broadcast_shapes(name, a[0], b[0])
        if result_dtype is not None:
            return shape, np.dtype(result_dtype)
        # (apply casts the operands so before the kernel runs: PyTorch's dtype, not NumPy's)
        return shape, torch_promote(a[1], len(a[0]), b[1], len(b[0]))
    return infer


def numel(shape: Sequence) -> int:
    return math.prod(1 if d is None else int(d) for d in shape)


def elementwise_cost(in_specs, out_specs, **attrs):
    outs = out_specs if isinstance(out_specs, list) else [out_specs]
    n = sum(numel(s) for s, _ in outs)
    b = sum(numel(s) * np.dtype(d).itemsize for s, d in list(in_specs) + outs)
    return n, b
