"""PyTorch's creation functions that tensorlib lacked: ``range`` (inclusive end),
``scalar_tensor``, ``asarray``, ``frombuffer``, ``fill``, and ``rsub``."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _dtypes
from .._tensor import Tensor
from ._util import to_tensor

__all__ = ["asarray", "fill", "frombuffer", "range", "rsub", "scalar_tensor"]


def range(start: float = 0, end: float | None = None, step: float = 1, *, dtype=None,
          device=None, requires_grad: bool = False) -> Tensor:
    """``start, start + step, ...`` up to and including ``end`` (``torch.range``,
    deprecated there in favour of ``arange``, whose end is exclusive); the default float
    dtype unless ``dtype``."""
    from ..creation import tensor
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("range: step must be nonzero")
    if (end - start) / step < 0:
        raise ValueError(f"range: upper bound and lower bound inconsistent with step sign "
                         f"(start={start}, end={end}, step={step})")
    n = int(math.floor((end - start) / step)) + 1
    dt = _dtypes.as_dtype(dtype) if dtype is not None else _dtypes.default_float
    vals = start + np.arange(n, dtype=np.float64) * step
    return tensor(vals.astype(dt), device=device, requires_grad=requires_grad)


def scalar_tensor(s, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A 0-d tensor holding ``s``, of the default float dtype unless ``dtype`` (also for
    integers and booleans, as ``torch.scalar_tensor``)."""
    from ..creation import tensor
    dt = _dtypes.as_dtype(dtype) if dtype is not None else _dtypes.default_float
    v = s.item() if isinstance(s, Tensor) else s
    return tensor(np.asarray(v).astype(dt).reshape(()), device=device,
                  requires_grad=requires_grad)


def asarray(obj: Any, *, dtype=None, device=None, copy: bool | None = None,
            requires_grad: bool = False) -> Tensor:
    """``obj`` as a tensor (``torch.asarray``): a tensor or NumPy array is shared when its
    dtype and device fit and ``copy`` is not True; ``copy=False`` raises where a copy is
    needed."""
    from ..creation import as_tensor, tensor
    if copy:
        out = tensor(obj.detach() if isinstance(obj, Tensor) else obj, dtype=dtype,
                     device=device)
    else:
        out = as_tensor(obj, dtype=dtype, device=device)
        if copy is False:
            src = obj._data if isinstance(obj, Tensor) else obj
            if not (isinstance(src, np.ndarray) and np.shares_memory(src, out._data)) and \
                    not (isinstance(obj, Tensor) and out is obj):
                raise ValueError("asarray: copy=False, but a copy is needed (another dtype or "
                                 "device, or not an array)")
    if requires_grad:
        out.requires_grad = True
    return out


def frombuffer(buffer, *, dtype, count: int = -1, offset: int = 0,
               requires_grad: bool = False) -> Tensor:
    """A 1-d tensor over the memory of an object with the buffer protocol (``bytes``,
    ``bytearray``, ``memoryview``, ``array.array``), sharing it (``torch.frombuffer``)."""
    from ..creation import from_numpy
    arr = np.frombuffer(buffer, dtype=_dtypes.as_dtype(dtype), count=count, offset=offset)
    out = from_numpy(arr)
    if requires_grad:
        out.requires_grad = True
    return out


def fill(input, value) -> Tensor:
    """A tensor of ``input``'s shape, dtype and device filled with ``value`` (a number or a
    0-d tensor, which stays differentiable) (``torch.fill``)."""
    from . import elementwise as E
    from ..creation import full
    x = to_tensor(input)
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError(f"fill: value must be a 0-d tensor, got shape "
                             f"{tuple(value.shape)}")
        v = value.astype(x.dtype) if value.dtype != x.dtype else value
        return E.where(full(tuple(x.shape), True, device=x.device), v, x.detach())
    return full(tuple(x.shape), np.asarray(value).astype(x.dtype).item(), dtype=x.dtype,
                device=x.device)


def rsub(input, other, alpha: float = 1) -> Tensor:
    """``other - alpha * input`` (``torch.rsub``)."""
    from . import elementwise as E
    return E.sub(other, input, alpha=alpha)
