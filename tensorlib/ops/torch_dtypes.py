"""PyTorch's dtype promotion queries (``result_type``, ``promote_types``, ``can_cast``) and
tensor predicates (``is_complex``, ``is_nonzero``, ``is_same_size``, ``is_signed``, ...).

tensorlib promotes as PyTorch (``_util.same_category``): categories bool < integer < float <
complex; a higher category wins and keeps its own dtype (int32 with float16 is float16, where
NumPy says float64), except that complex meeting float takes the wider precision (complex64
with float64 is complex128); within a category the wider type wins; a 0-d tensor or a Python
number does not widen a tensor with dims of its category or a higher one.
"""
from __future__ import annotations

import numpy as np

from .. import _dtypes
from .._tensor import Tensor
from ._util import to_tensor

__all__ = ["can_cast", "is_complex", "is_conj", "is_neg", "is_nonzero", "is_same_size",
           "is_signed", "promote_types", "result_type"]

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _category(dt: np.dtype) -> int:
    return _CATEGORY[np.dtype(dt).kind]


def promote_types(type1, type2) -> np.dtype:
    """The dtype two tensors of these dtypes (with dims) combine to (``torch.promote_types``):
    float16 with int32 is float16, uint8 with int8 is int16.

    >>> tl.promote_types(tl.int32, tl.float16)
    dtype('float16')
    """
    a, b = _dtypes.as_dtype(type1), _dtypes.as_dtype(type2)
    ca, cb = _category(a), _category(b)
    if ca != cb and {ca, cb} != {2, 3}:
        return a if ca > cb else b
    return np.promote_types(a, b)      # complex64 with float64 is complex128, as PyTorch


def can_cast(from_, to) -> bool:
    """Whether PyTorch's type promotion allows casting ``from_`` to ``to``: not to a lower
    category (float to int, int to bool), any width within one (``torch.can_cast``)."""
    return _category(_dtypes.as_dtype(from_)) <= _category(_dtypes.as_dtype(to))


def _operand(x) -> Tensor:
    """A Python number as a 0-d tensor of its default dtype."""
    from ..creation import tensor
    if isinstance(x, (bool, np.bool_)):
        return tensor(bool(x))
    if isinstance(x, (int, np.integer)):
        return tensor(int(x), dtype=np.int64)
    if isinstance(x, (float, np.floating)):
        return tensor(float(x), dtype=_dtypes.default_float)
    if isinstance(x, (complex, np.complexfloating)):
        return tensor(complex(x), dtype=_dtypes.complex_of(_dtypes.default_float))
    raise TypeError(f"result_type: expected a Tensor or a Python number, got "
                    f"{type(x).__name__}")


def _promote(a: np.dtype | None, b: np.dtype | None) -> np.dtype | None:
    return b if a is None else a if b is None else promote_types(a, b)


def _combine(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    """PyTorch's ``combine_categories``: ``higher`` (a higher-priority operand group's dtype)
    keeps its dtype unless ``lower`` is of a higher category; a complex ``lower`` over a
    float ``higher`` takes ``higher``'s precision (float64 with a complex64 scalar is
    complex128)."""
    kh = None if higher is None else higher.kind
    kl = None if lower is None else lower.kind
    if kh == "c":
        return higher
    if kl == "c":
        return _dtypes.complex_of(higher) if kh == "f" else lower
    if kh == "f":
        return higher
    if kh == "b" or kl == "f":
        return _promote(higher, lower)
    return higher if higher is not None else lower


def result_type(tensor1, tensor2) -> np.dtype:
    """The dtype of an arithmetic op on these two operands (tensors or Python numbers), as
    ``torch.result_type``.

    >>> tl.result_type(tl.tensor([1], dtype=tl.int32), 1.0)
    dtype('float32')
    """
    # PyTorch's ResultTypeState: tensors with dims, 0-d tensors and Python numbers (as their
    # default dtypes) each promote among themselves, then combine in that order of priority
    groups: list = [None, None, None]
    for x in (tensor1, tensor2):
        if isinstance(x, Tensor):
            i = 0 if x.ndim else 1
        else:
            x, i = _operand(x), 2
        groups[i] = _promote(groups[i], x.dtype)
    return _combine(groups[0], _combine(groups[1], groups[2]))


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
