"""PyTorch's dtype promotion queries (``result_type``, ``promote_types``, ``can_cast``) and
tensor predicates (``is_complex``, ``is_nonzero``, ``is_same_size``, ``is_signed``, ...).

tensorlib promotes as PyTorch, by one rule (``_util.result_dtype``): categories bool <
integer < float < complex; a higher category wins and keeps its own dtype (int32 with float16
is float16, where NumPy says float64), except that complex meeting float takes the wider
precision (complex64 with float64 is complex128); within a category the wider type wins; a
0-d tensor or a Python number does not widen a tensor with dims of its category or a higher
one.
"""
from __future__ import annotations

import numpy as np

from .. import _dtypes
from .._tensor import Tensor
from . import _util
from ._util import to_tensor

__all__ = ["can_cast", "is_complex", "is_conj", "is_neg", "is_nonzero", "is_same_size",
           "is_signed", "promote_types", "result_type"]


def _category(dt: np.dtype) -> int:
    return _util._CATEGORY[np.dtype(dt).kind]


def promote_types(type1, type2) -> np.dtype:
    """The dtype two tensors of these dtypes (with dims) combine to (``torch.promote_types``):
    float16 with int32 is float16, uint8 with int8 is int16.

    >>> tl.promote_types(tl.int32, tl.float16)
    dtype('float16')
    """
    return _util.promote_types(_dtypes.as_dtype(type1), _dtypes.as_dtype(type2))


def can_cast(from_, to) -> bool:
    """Whether PyTorch's type promotion allows casting ``from_`` to ``to``: not to a lower
    category (float to int, int to bool), any width within one (``torch.can_cast``)."""
    return _category(_dtypes.as_dtype(from_)) <= _category(_dtypes.as_dtype(to))


def _number_dtype(x) -> np.dtype:
    """A Python number's default dtype (PyTorch's for a wrapped number)."""
    if isinstance(x, (bool, np.bool_)):
        return _dtypes.bool_
    if isinstance(x, (int, np.integer)):
        return _dtypes.int64
    if isinstance(x, (float, np.floating)):
        return np.dtype(_dtypes.default_float)
    if isinstance(x, (complex, np.complexfloating)):
        return _dtypes.complex_of(_dtypes.default_float)
    raise TypeError(f"result_type: expected a Tensor or a Python number, got "
                    f"{type(x).__name__}")


def result_type(tensor1, tensor2) -> np.dtype:
    """The dtype of an arithmetic op on these two operands (tensors or Python numbers), as
    ``torch.result_type``.

    >>> tl.result_type(tl.tensor([1], dtype=tl.int32), 1.0)
    dtype('float32')
    """
    # PyTorch's ResultTypeState: tensors with dims, 0-d tensors and Python numbers (as their
    # default dtypes), each group promoted among itself
    groups: list = [None, None, None]
    for x in (tensor1, tensor2):
        if isinstance(x, Tensor):
            i, dt = (0 if x.ndim else 1), x._data.dtype
        else:
            i, dt = 2, _number_dtype(x)
        g = groups[i]
        groups[i] = dt if g is None else _util.promote_types(g, dt)
    return _util.result_dtype(*groups)


def is_complex(input) -> bool:
    """Whether the tensor's dtype is complex (``torch.is_complex``)."""
    return to_tensor(input).dtype.kind == "c"


def is_signed(input) -> bool:
    """Whether the dtype is signed: floats and signed integers (``Tensor.is_signed``)."""
    return to_tensor(input).dtype.kind in "ifc"


def is_conj(input) -> bool:
    """Whether the tensor is a lazily conjugated view: never in tensorlib, which conjugates
    eagerly (``torch.is_conj``)."""
    to_tensor(input)
    return False


def is_neg(input) -> bool:
    """Whether the tensor is a lazily negated view: never in tensorlib (``torch.is_neg``)."""
    to_tensor(input)
    return False


def is_nonzero(input) -> bool:
    """The truth value of a one-element tensor (``torch.is_nonzero``); more or fewer
    elements raise."""
    x = to_tensor(input)
    n = x.numel()
    if n == 0:
        raise RuntimeError("is_nonzero: Boolean value of Tensor with no values is ambiguous")
    if n > 1:
        raise RuntimeError("is_nonzero: Boolean value of Tensor with more than one value is "
                           "ambiguous")
    return bool(x.reshape(()).item())


def is_same_size(input, other) -> bool:
    """Whether two tensors have the same shape (``torch.is_same_size``)."""
    return tuple(to_tensor(input).shape) == tuple(to_tensor(other).shape)
