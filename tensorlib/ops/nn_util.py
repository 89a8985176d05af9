"""Helpers shared by the neural-network op families (argument checks, constants)."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor, _wrap
from ._util import numel, to_tensor

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def const(arr, like: Tensor) -> Tensor:
    """A constant (no-grad) tensor on ``like``'s device holding ``arr``."""
    if like._device.type == "cpu":
        a = np.asarray(arr)
    else:
        from ..backends import cupy
        a = cupy().asarray(arr)
    return _wrap(a, like._device, False, None, 0)


def as_float_tensor(x, op: str, name: str = "input") -> Tensor:
    """The argument as a float32/float64 tensor, or a TypeError naming the op."""
    t = to_tensor(x)
    if t._data.dtype not in FLOATS:
        raise TypeError(f"{op}: {name} must be float32 or float64, got {t._data.dtype}")
    return t


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
