"""``rot90``: a quarter-turn rotation in a plane of two dims (PyTorch's), from flip and
swapaxes."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._tensor import Tensor
from ._util import to_tensor


def rot90(input, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """Rotate by ``k`` quarter turns in the plane of ``dims``, from the first dim towards
    the second, as ``torch.rot90`` (negative ``k`` turns the other way).

    >>> tl.rot90(tl.tensor([[1, 2], [3, 4]]))         # [[2, 4], [1, 3]]
    """
    x = to_tensor(input)
    dims = tuple(dims)
    if len(dims) != 2:
        raise ValueError(f"rot90: expected total rotation dims == 2, got {len(dims)}")
    if x.ndim < 2:
        raise ValueError(f"rot90: expected total dims >= 2, got {x.ndim}")
    for d in dims:
        if not isinstance(d, (int, np.integer)) or not -x.ndim <= d < x.ndim:
            raise ValueError(f"rot90: dim {d!r} is out of range for a tensor of {x.ndim} dims")
    a, b = (int(d) % x.ndim for d in dims)
    if a == b:
        raise ValueError(f"rot90: the two rotation dims must differ, got {dims}")
    k = int(k) % 4
    if k == 1:
        return x.flip(b).swapaxes(a, b)
    if k == 2:
        return x.flip((a, b))
    if k == 3:
        return x.flip(a).swapaxes(a, b)
    return x.clone()
