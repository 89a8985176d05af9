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

ALL = (float16, float32, float64, int8, int16, int32, int64, uint8, bool_)
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update({"half": float16, "float": float32, "double": float64, "long": int64,
                 "int": int32, "short": int16, "bool": bool_})

default_float = float32


def as_dtype(d) -> np.dtype:
    """Normalise a dtype given as a tensorlib/NumPy dtype, a type or a name."""
    if isinstance(d, np.dtype):
        dt = d
    elif isinstance(d, str):
        if d not in _BY_NAME:
            raise TypeError(f"unknown dtype {d!r}; expected one of {sorted(_BY_NAME)}")
        dt = _BY_NAME[d]
    elif d is builtins.float:
        dt = default_float
    elif d is builtins.int:
        dt = int64
    elif d is builtins.bool:
        dt = bool_
    else:
        try:
            dt = np.dtype(d)
        except TypeError:
            raise TypeError(f"unknown dtype {d!r}") from None
    if dt not in ALL:
        raise TypeError(f"dtype {dt} is not supported; tensorlib supports "
                        + ", ".join(x.name for x in ALL))
    return dt


def is_floating(d: np.dtype) -> bool:
    return d.kind == "f"
