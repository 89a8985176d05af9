"""Turning samples into batches: ``default_collate`` (a list of samples into one batch) and
``default_convert`` (one sample's arrays into tensors), with PyTorch's type mapping.

>>> tl.data.default_collate([{"x": np.zeros(2), "y": 1}, {"x": np.ones(2), "y": 0}])
{'x': tensor([[0., 0.],
        [1., 1.]], dtype=float64), 'y': tensor([1, 0])}
"""
from __future__ import annotations

import copy
import operator
from collections.abc import Mapping, MutableMapping, MutableSequence, Sequence
from typing import Any

import numpy as np

from .._tensor import Tensor

_ERR = ("default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        "found {}: pass DataLoader(collate_fn=...) to batch them your own way")


class CollateError(RuntimeError, ValueError):
    """Samples that cannot be stacked: a RuntimeError as PyTorch's (ported ``except
    RuntimeError`` handlers catch it), and a ValueError as tensorlib's earlier releases."""


def _is_text_array(a: np.ndarray) -> bool:
    # byte strings, unicode, object: nothing a tensor can hold
    return a.dtype.kind in "SaUO"


def _as_tensor(a) -> Tensor:
    from ..creation import tensor
    return tensor(np.asarray(a))


def _rebuild(like, items: dict | list):
    """``items`` in the container type of ``like`` where that type can be rebuilt (as
    PyTorch: a copy updated in place for mutable containers, the type's constructor
    otherwise, a plain dict/list when neither works)."""
    try:
        if isinstance(like, Mapping):
            if isinstance(like, MutableMapping):
                clone = copy.copy(like)
                clone.update(items)
                return clone
            return type(like)(items)
        if isinstance(like, MutableSequence):
            clone = copy.copy(like)
            for i, v in enumerate(items):
                clone[i] = v
            return clone
        return type(like)(items)
    except TypeError:
        return items


def default_convert(data: Any) -> Any:
    """Convert one sample's NumPy arrays and NumPy scalars to tensors, keeping its structure
    (as ``torch.utils.data.default_convert``): what a DataLoader with ``batch_size=None``
    applies to each sample. Tuples become lists (as PyTorch); Python numbers, strings and
    arrays of strings or objects are left as they are.

    >>> tl.data.default_convert((np.arange(2), 3))
    [tensor([0, 1]), 3]
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if _is_text_array(data) else _as_tensor(data)
    if isinstance(data, (np.bool_, np.number)):
        return _as_tensor(data)
    if isinstance(data, Mapping):
        return _rebuild(data, {k: default_convert(data[k]) for k in data})
    if isinstance(data, tuple) and hasattr(data, "_fields"):    # namedtuple
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return _rebuild(data, [default_convert(d) for d in data])
    return data


def _stack_arrays(samples: Sequence[Any]) -> Tensor:
    if set(map(type, samples)) == _JUST_TENSOR:
        # a batch of plain tensors (a Dataset returning X[i]): C-level maps instead of a
        # Python loop reading each tensor's shape property
        shapes = set(map(_SHAPE, map(_DATA, samples)))
    else:
        shapes = {tuple(s.shape) if isinstance(s, Tensor) else np.shape(s) for s in samples}
    if len(shapes) != 1:
        raise CollateError(f"default_collate: the samples of a batch must have equal shapes "
                         f"to be stacked, got {sorted(shapes)}: pad, crop or resize them "
                         "in the dataset, or pass DataLoader(collate_fn=...) to batch them "
                         "your own way")
    if isinstance(samples[0], Tensor):
        from ..ops.shape import stack
        return stack(list(samples))
    return _as_tensor(np.stack([np.asarray(s) for s in samples]))


_JUST_TENSOR = {Tensor}
_DATA, _SHAPE = operator.attrgetter("_data"), operator.attrgetter("shape")


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, keeping the samples' structure (as
    ``torch.utils.data.default_collate``).

    Tensors and NumPy arrays are stacked on a new first axis (arrays keep their dtype);
    NumPy scalars become a tensor of their dtype; a batch whose first sample is a Python
    float a float64 tensor; one whose first is an int or bool is typed as ``tensor(batch)``
    types it (int64; the default float dtype when a float follows: ``[1, 2.5]`` is
    float32; bool when all are bools); strings and bytes are left as given; dicts (any mapping
    type), namedtuples and lists are collated field by field into the same type; tuples
    become lists (as PyTorch). Arrays of strings or objects, None and other types raise
    TypeError; samples of unequal shapes or lengths raise :class:`CollateError` (a
    RuntimeError, as PyTorch's, and a ValueError).

    >>> tl.data.default_collate([(np.zeros(2, np.float32), 1), (np.ones(2, np.float32), 2)])
    [tensor([[0., 0.],
            [1., 1.]]), tensor([1, 2])]
    """
    from ..creation import tensor
    if not len(samples):
        raise ValueError("default_collate: empty batch")
    first = samples[0]
    if isinstance(first, Tensor):
        return _stack_arrays(samples)
    if isinstance(first, np.ndarray):
        if _is_text_array(first):
            raise TypeError(_ERR.format(first.dtype))
        return _stack_arrays(samples)
    if isinstance(first, (np.bool_, np.number, np.object_)):
        return _as_tensor(np.asarray(samples))
    if isinstance(first, float):
        return tensor(np.asarray(samples, dtype=np.float64))
    if isinstance(first, int):
        # torch.tensor(batch) as PyTorch: its inference over the whole batch (ints, with a
        # float anywhere the default float dtype, bools alone bool)
        return tensor(list(samples))
    if isinstance(first, (str, bytes)):
        return samples          # as given (a list from the loader), as PyTorch
    if isinstance(first, Mapping):
        return _rebuild(first, {k: default_collate([s[k] for s in samples]) for k in first})
    if isinstance(first, tuple) and hasattr(first, "_fields"):     # namedtuple
        return type(first)(*(default_collate(f) for f in zip(*samples)))
    if isinstance(first, Sequence):
        lengths = [len(s) for s in samples]
        if len(set(lengths)) != 1:
            raise CollateError(f"default_collate: each sample in a batch must have the same "
                             f"number of fields, got lengths {lengths}")
        fields = [default_collate(f) for f in zip(*samples)]      # tuples, as PyTorch
        return fields if isinstance(first, tuple) else _rebuild(first, fields)
    raise TypeError(_ERR.format(type(first)))
