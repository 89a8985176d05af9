"""Helpers shared by the neural-network op families (argument checks, constants)."""
from __future__ import annotations

import numpy as np

from .._state import state as _state
from ..amp.cast import float32_results_to, takes_over
from .._tensor import Tensor, _wrap
from ._util import numel, to_tensor

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
COMPLEX = (np.dtype(np.complex64), np.dtype(np.complex128))


def const(arr, like: Tensor) -> Tensor:
    """A constant (no-grad) tensor on ``like``'s device holding ``arr``."""
    if like._device.type == "cpu":
        a = np.asarray(arr)
    else:       # a GPU, or the unbatched value of a vmap level
        from ..backends import to_device
        a = to_device(arr if hasattr(arr, "dtype") else np.asarray(arr), like._device)
    return _wrap(a, like._device, False, None, 0)


def as_float_tensor(x, op: str, name: str = "input") -> Tensor:
    """The argument as a float32/float64 tensor, or a TypeError naming the op."""
    t = to_tensor(x)
    if t._data.dtype not in FLOATS:
        from ..errors import DTypeError
        raise DTypeError(f"{op}: {name} must be float32 or float64, got {t._data.dtype}")
    return t


def as_float_or_complex_tensor(x, op: str, name: str = "input") -> Tensor:
    """The argument as a float32/float64/complex64/complex128 tensor, or a TypeError naming
    the op (the ops whose PyTorch versions take complex tensors too)."""
    t = to_tensor(x)
    dt = t._data.dtype
    if dt not in FLOATS and dt not in COMPLEX:
        from ..errors import DTypeError
        raise DTypeError(f"{op}: {name} must be float32, float64, complex64 or complex128, "
                         f"got {dt}")
    return t


def is_complex(t) -> bool:
    return isinstance(t, Tensor) and t._data.dtype.kind == "c"


def as_index_tensor(x, op: str, name: str = "target") -> Tensor:
    t = to_tensor(x)
    if t._data.dtype.kind not in "iu":
        raise TypeError(f"{op}: {name} must be an integer tensor of class indices, "
                        f"got {t._data.dtype}")
    return t


def same_dtype(op: str, ref: Tensor, *others) -> None:
    for name, t in others:
        if t is not None and t._data.dtype != ref._data.dtype:
            raise TypeError(f"{op}: {name} has dtype {t._data.dtype}, the input has "
                            f"{ref._data.dtype}; cast one of them")


def tuple_n(v, n: int, op: str, name: str, minimum: int | None = None) -> tuple[int, ...]:
    """An int or a sequence of n ints, checked against ``minimum``."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        out = (int(v),) * n
    else:
        try:
            out = tuple(int(x) for x in v)
        except TypeError:
            raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, "
                            f"got {v!r}") from None
        if len(out) != n or any(isinstance(x, bool) for x in v):
            raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v!r}")
    if minimum is not None and any(x < minimum for x in out):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {out}")
    return out


def check_reduction(op: str, reduction: str) -> str:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def nbytes(specs) -> int:
    return sum(numel(s) * np.dtype(d).itemsize for s, d in specs)


def io_cost(flops_fn=None):
    """A cost rule: flops from ``flops_fn(in_specs, out_specs, **attrs)`` (default: one per
    output element), bytes of every input and output."""
    def cost(in_specs, out_specs, **attrs):
        outs = out_specs if isinstance(out_specs, (list, tuple)) and out_specs and \
            isinstance(out_specs[0], tuple) and isinstance(out_specs[0][0], tuple) \
            else [out_specs]
        fl = flops_fn(in_specs, outs, **attrs) if flops_fn else sum(numel(s) for s, _ in outs)
        return int(fl), nbytes(list(in_specs) + list(outs))
    return cost


_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_WIDE = (_F32, _F64)


def _half(a) -> bool:
    # identity checks first: this runs on every nn.functional call (dtype == is ~10x slower)
    dt = a._data.dtype
    return dt is _F16 or (dt is not _F32 and dt is not _F64 and dt == _F16)


def _has_half(args, kwargs) -> bool:
    for a in args:
        if type(a) is Tensor or isinstance(a, Tensor):
            if _half(a):
                return True
        elif type(a) in (list, tuple) and a and isinstance(a[0], Tensor) and \
                any(isinstance(t, Tensor) and _half(t) for t in a):
            return True
    if kwargs:
        return any(isinstance(a, Tensor) and _half(a) for a in kwargs.values())
    return False


def half_activation(fn):
    """``fn(x, ...)`` (an elementwise activation) computing a float16 CPU tensor in float32
    and rounding once, as PyTorch's CPU kernels do: NumPy's float16 loops convert each
    element in software (relu of 64k float16 took 0.35 ms), where the casts here go through
    F16C. Other inputs go straight to ``fn``."""
    import functools

    @functools.wraps(fn)
    def wrapper(x, *args, **kwargs):
        if type(x) is Tensor and x._data.dtype is _F16 and x._device.type == "cpu" \
                and x._data.size >= 256:
            return fn(x.astype(_F32), *args, **kwargs).astype(_F16)
        return fn(x, *args, **kwargs)
    return wrapper


def half_via_float32(fn):
    """``fn`` taking float16 tensors as PyTorch's CPU ops do: float16 arguments are cast to
    float32 (a recorded cast, so gradients flow back to them in float16), ``fn`` computes in
    float32 and its float32 results are cast back to float16. A float16 buffer that ``fn``
    updates in place (batch norm's running statistics) gets the new values written back.
    Calls without float16 tensors go straight to ``fn``. A ``dtype=`` keyword (PyTorch's
    ``softmax(x, dtype=)``: the input is cast to it first) decides the result's dtype
    instead: its results are left as ``fn`` returns them, and ``dtype=float16`` is computed
    as float32 and cast back."""
    import functools

    def up(a, cast):
        if isinstance(a, Tensor) and a._data.dtype == _F16:
            b = a.astype(_F32)
            cast.append((a, b, b._version[0]))
            return b
        if isinstance(a, (list, tuple)) and not hasattr(a, "_fields") and \
                any(isinstance(t, Tensor) for t in a):
            return type(a)(up(t, cast) for t in a)
        return a

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _state.autocast is not None and takes_over(fn.__name__, args, kwargs):
            return fn(*args, **kwargs)      # autocast decides the dtypes (float32 losses)
        if kwargs and kwargs.get("dtype") is not None:
            from .._dtypes import as_dtype
            if as_dtype(kwargs["dtype"]) != _F16:
                # the result is in the dtype asked for: float16 inputs go up, nothing down
                return run(args, kwargs, False) if _has_half(args, kwargs) else \
                    fn(*args, **kwargs)
            return run(args, dict(kwargs, dtype=_F32), True)
        # the common call: a float32/64 input first (a float16 weight with it is a dtype
        # mismatch that fn reports); only then look at every argument
        if args and type(args[0]) is Tensor and args[0]._data.dtype in _WIDE:
            return fn(*args, **kwargs)
        if not _has_half(args, kwargs):
            return fn(*args, **kwargs)
        return run(args, kwargs, True)

    def run(args, kwargs, back: bool):
        cast: list = []
        args = tuple(up(a, cast) for a in args)
        kwargs = {k: up(v, cast) for k, v in kwargs.items()}
        out = fn(*args, **kwargs)
        for orig, copy, version in cast:     # in-place updates of float16 buffers
            if copy._version[0] != version and not orig.requires_grad:
                orig._data[...] = copy._data.astype(_F16)
                orig._version[0] += 1
        return float32_results_to(out, _F16) if back else out
    return wrapper
