"""Hyper-parameters that may be 0-d tensors (``lr=tl.tensor(0.1)``, ``momentum=``...), which
schedulers update in place so that a captured training step reads them as graph state."""
from __future__ import annotations

from ._tensor import Tensor


def hyper_value(v):
    """A hyper-parameter's number (a tensor one's current value)."""
    return float(v._data) if isinstance(v, Tensor) else v


def enabled(v) -> bool:
    """Whether a hyper-parameter switches its term on: a tensor one always does (its value
    may change between replays of a captured step), a number when it is not 0."""
    return isinstance(v, Tensor) or bool(v)
