"""Exception classes for inputs an op cannot take.

PyTorch raises ``RuntimeError`` for mismatched shapes and dtypes; NumPy and Python code
expect ``ValueError``/``TypeError``. tensorlib's are both, so ``except RuntimeError`` in a
port from PyTorch catches them as ``except ValueError`` in NumPy-style code does.

>>> try:
...     tl.ones(3, 4) + tl.ones(3)
... except RuntimeError as e:        # also a ValueError
...     print(type(e).__name__)
ShapeError
"""
from __future__ import annotations


class InputError(ValueError, RuntimeError):
    """An input value the op cannot take, such as a row of probabilities summing to 0 (a
    ValueError and a RuntimeError)."""


class ShapeError(InputError):
    """The inputs' shapes or sizes do not fit the op (a ValueError and a RuntimeError)."""


class DTypeError(TypeError, RuntimeError):
    """The inputs' dtypes do not fit the op (a TypeError and a RuntimeError)."""


class DimError(ShapeError, IndexError):
    """A dimension out of range for the tensor: PyTorch's ``IndexError`` ("Dimension out of
    range"), also a ValueError and a RuntimeError (as NumPy's AxisError is a ValueError and
    an IndexError)."""


class EmptyReductionError(ShapeError, IndexError):
    """A reduction with no identity (``max``, ``min``, ``amax``, ``argmax``...) over an empty
    dim. PyTorch raises ``IndexError`` ("Expected reduction dim 0 to have non-zero size") or,
    for ``max()`` of an empty tensor, ``RuntimeError``: this is both (and a ValueError)."""


def as_torch_style(cls: type) -> type:
    """The class an input error of class ``cls`` is raised as: plain ``ValueError`` and
    ``TypeError`` become :class:`ShapeError` / :class:`DTypeError`; others stay."""
    return ShapeError if cls is ValueError else DTypeError if cls is TypeError else cls


class IndexRangeError(IndexError, RuntimeError):
    """An index value out of range for the dim it indexes, as in ``gather``/``scatter``/
    ``index_select`` (an IndexError, as NumPy's, and PyTorch's RuntimeError)."""


class IntegerDivisionError(ZeroDivisionError, RuntimeError):
    """Integer ``//`` or ``%`` by zero: PyTorch's RuntimeError ("ZeroDivisionError"), also
    Python's ZeroDivisionError."""
