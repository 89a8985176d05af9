"""``round`` with PyTorch's ``decimals=``: rounding half to even at a power of ten."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from . import elementwise as E
from ._util import to_tensor


def round(input, *, decimals: int = 0) -> Tensor:  # noqa: A001  (torch.round's name)
    """Round half to even, to ``decimals`` places (negative: to tens, hundreds, ...), as
    ``torch.round(x, decimals=d)``: ``round(x * 10^d) / 10^d``, or ``round(x / 10^-d) *
    10^-d`` for d < 0, computed as PyTorch does (in float32 for float16 input, so the
    result rounds the same way). The gradient is 0, as ``round``'s.

    >>> tl.ops.rounding.round(tl.tensor([1.2345, 1250.0]), decimals=2)
    tensor([1.2300e+00, 1.2500e+03])
    """
    x = to_tensor(input)
    if isinstance(decimals, bool) or not isinstance(decimals, (int, np.integer)):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    if decimals == 0:
        return E.round(x)
    if x.dtype.kind != "f":
        raise TypeError(f"round: decimals= needs a floating-point tensor, got {x.dtype} "
                        "(PyTorch has no integer kernel for it either)")
    half = x.dtype == np.float16
    src = x.astype(np.float32) if half else x
    p = 10.0 ** abs(int(decimals))
    out = E.round(src / p) * p if decimals < 0 else E.round(src * p) / p
    return out.astype(np.float16) if half else out
