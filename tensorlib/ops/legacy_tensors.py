"""PyTorch's legacy typed constructors (``torch.LongTensor([1, 2])``, ``torch.FloatTensor(2,
3)``) that tutorials still use: data gives a tensor of that dtype, sizes an uninitialised
one."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._tensor import Tensor


def _typed(name: str, dtype) -> Callable[..., Tensor]:
    def ctor(*args, device=None) -> Tensor:
        from ..creation import empty, tensor
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            return tensor(args[0], dtype=dtype, device=device)
        if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                   for a in args):
            raise TypeError(f"{name}: pass data (a list, array or tensor) or sizes (ints), "
                            f"got {args!r}")
        return empty(*args, dtype=dtype, device=device)
    ctor.__name__ = ctor.__qualname__ = name
    ctor.__doc__ = (f"``torch.{name}``: ``{name}(data)`` is ``tl.tensor(data, dtype="
                    f"{np.dtype(dtype).name})``, ``{name}(*sizes)`` an uninitialised tensor.")
    return ctor


EXPORTS = {name: _typed(name, dt) for name, dt in (
    ("FloatTensor", np.float32), ("DoubleTensor", np.float64), ("HalfTensor", np.float16),
    ("LongTensor", np.int64), ("IntTensor", np.int32), ("ShortTensor", np.int16),
    ("CharTensor", np.int8), ("ByteTensor", np.uint8), ("BoolTensor", np.bool_))}
