"""dtypes: tensorlib uses NumPy's dtype objects, so interop needs no mapping."""
from __future__ import annotations

import builtins

import numpy as np

float16 = half = np.dtype("float16")
float32 = float = np.dtype("float32")
float64 = double = np.dtype("float64")
int8 = np.dtype("int8")
int16 = short = np.dtype("int16")
int32 = int = np.dtype("int32")
int64 = long = np.dtype("int64")
uint8 = np.dtype("uint8")
bool_ = np.dtype("bool")
complex64 = cfloat = np.dtype("complex64")
complex128 = cdouble = np.dtype("complex128")

ALL = (float16, float32, float64, int8, int16, int32, int64, uint8, bool_, complex64,
       complex128)
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update({"half": float16, "float": float32, "double": float64, "long": int64,
                 "int": int32, "short": int16, "bool": bool_, "cfloat": complex64,
                 "cdouble": complex128})

default_float = float32


BFLOAT16 = "bfloat16 is not supported by tensorlib; convert with .float() first (float32)"


def torch_dtype_name(d) -> str | None:
    """The name of a PyTorch dtype (``torch.float16`` -> ``"float16"``), None for anything
    else; torch is not imported."""
    if type(d).__name__ == "dtype" and type(d).__module__ == "torch":
        return str(d).rpartition(".")[2]
    return None


def is_torch_tensor(v) -> bool:
    """Whether ``v`` is a PyTorch tensor (torch is not imported)."""
    return any(c.__module__ == "torch" and c.__name__ == "Tensor" for c in type(v).__mro__)


def unsupported_hint(dt) -> str:
    """What to do about an array of an unsupported dtype, for error messages."""
    name = getattr(dt, "name", str(dt))
    if name == "bfloat16":
        return BFLOAT16
    conv = "int64" if name.startswith(("uint", "int")) else "float32"
    return (f"dtype {name} is not supported; tensorlib supports "
            + ", ".join(x.name for x in ALL) + f": convert first, e.g. a.astype(np.{conv})")


def as_dtype(d) -> np.dtype:
    """Normalise a dtype given as a tensorlib/NumPy dtype, a type, a name, or a PyTorch
    dtype (``torch.float16``)."""
    name = torch_dtype_name(d)
    if name is not None:
        d = name
    if isinstance(d, str) and d == "bfloat16":
        raise TypeError(BFLOAT16)
    if isinstance(d, np.dtype):
        dt = d
    elif isinstance(d, str):
        if d not in _BY_NAME:
            raise TypeError(f"unknown dtype {d!r}; expected one of {sorted(_BY_NAME)}")
        dt = _BY_NAME[d]
    elif d is builtins.float:       # Python's float is a double, as in PyTorch and NumPy
        dt = float64
    elif d is builtins.int:
        dt = int64
    elif d is builtins.bool:
        dt = bool_
    elif d is builtins.complex:
        dt = complex128
    else:
        try:
            dt = np.dtype(d)
        except TypeError:
            raise TypeError(f"unknown dtype {d!r}") from None
    if dt not in ALL:
        raise TypeError(BFLOAT16 if dt.name == "bfloat16" else
                        f"dtype {dt} is not supported; tensorlib supports "
                        + ", ".join(x.name for x in ALL))
    return dt


def is_floating(d: np.dtype) -> bool:
    return d.kind == "f"


def is_complex(d: np.dtype) -> bool:
    return d.kind == "c"


def complex_of(d: np.dtype) -> np.dtype:
    """The complex dtype with ``d``'s precision for its parts (float16 and integer dtypes:
    the default float's; a complex dtype: itself).

    >>> complex_of(float64), complex_of(float32)
    (dtype('complex128'), dtype('complex64'))
    """
    d = np.dtype(d)
    if d.kind == "c":
        return d
    if d.kind != "f" or d == float16:
        d = default_float if d.kind != "f" else float32
    return complex128 if d == float64 else complex64


def real_of(d: np.dtype) -> np.dtype:
    """The real dtype of a complex dtype's parts (complex64 -> float32); other dtypes are
    returned as they are."""
    d = np.dtype(d)
    return np.dtype(f"float{d.itemsize * 4}") if d.kind == "c" else d


def can_store(result: np.dtype, target: np.dtype) -> bool:
    """Whether an in-place op may write a result of dtype ``result`` into a tensor of dtype
    ``target`` (PyTorch's ``canCast``): any cast within a category or up one (int64 into
    uint8 wraps), but no float into an integer or bool tensor, no complex into a real one,
    and nothing but bool into a bool one.

    >>> can_store(int64, uint8), can_store(float32, int8), can_store(int64, bool_)
    (True, False, False)
    """
    rk, tk = np.dtype(result).kind, np.dtype(target).kind
    if rk == "c" and tk != "c":
        return False
    if rk == "f" and tk in "biu":
        return False
    return rk == "b" or tk != "b"


class finfo:
    """Machine limits of a float dtype, as ``torch.finfo``: ``bits``, ``eps``, ``max``,
    ``min``, ``tiny`` (= ``smallest_normal``), ``resolution`` (Python floats) and ``dtype``
    (its name). ``tl.finfo()`` is the default float dtype's; ``tl.finfo(x.dtype).min`` is the
    usual attention-mask value."""

    def __init__(self, dtype=None):
        dt = default_float if dtype is None else as_dtype(dtype)
        if dt.kind == "c":      # a complex dtype: its parts' float dtype, as PyTorch's
            dt = real_of(dt)
        if dt.kind != "f":
            raise TypeError(f"finfo: {dt} is not a floating-point dtype (tl.iinfo takes "
                            "integer dtypes)")
        f = np.finfo(dt)
        self.bits, self.dtype = builtins.int(f.bits), dt.name
        self.eps, self.max, self.min = builtins.float(f.eps), builtins.float(f.max), \
            builtins.float(f.min)
        self.tiny = self.smallest_normal = builtins.float(f.tiny)
        self.resolution = 10.0 ** -builtins.int(f.precision)

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, "
                f"eps={self.eps}, smallest_normal={self.tiny}, tiny={self.tiny}, "
                f"dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype, as ``torch.iinfo``: ``bits``, ``min``, ``max`` (Python
    ints) and ``dtype`` (its name)."""

    def __init__(self, dtype):
        dt = as_dtype(dtype)
        if dt.kind not in "iu":
            raise TypeError(f"iinfo: {dt} is not an integer dtype (tl.finfo takes float "
                            "dtypes)")
        i = np.iinfo(dt)
        self.bits, self.dtype = builtins.int(i.bits), dt.name
        self.min, self.max = builtins.int(i.min), builtins.int(i.max)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
