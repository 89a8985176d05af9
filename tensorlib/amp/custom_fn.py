"""``custom_fwd`` / ``custom_bwd``: autocast-aware decorators for the ``forward`` and
``backward`` of a :class:`tl.autograd.Function`, as ``torch.amp``'s."""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from .._tensor import Tensor
from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled

__all__ = ["custom_bwd", "custom_fwd"]


def _check(device_type: Any, where: str) -> None:
    if not isinstance(device_type, str):
        raise ValueError(f"{where}: expected `device_type` of type `str`, got: "
                         f"`{type(device_type).__name__}`")


def _cast(value: Any, device_type: str, dtype: np.dtype) -> Any:
    """Floating-point tensors on ``device_type`` (float64 excepted, as PyTorch) cast to
    ``dtype``, through containers."""
    if isinstance(value, Tensor):
        ok = (value.dtype.kind == "f" and value.device.type == device_type
              and value.dtype != np.float64)
        return value.astype(dtype) if ok else value
    if isinstance(value, (str, bytes, np.ndarray)):
        return value
    if isinstance(value, Mapping):
        return {_cast(k, device_type, dtype): _cast(v, device_type, dtype)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, device_type, dtype) for v in value)
    if isinstance(value, Iterable):
        return (_cast(v, device_type, dtype) for v in value)
    return value


def _float_dtype(dtype: Any) -> np.dtype:
    """``cast_inputs``: any floating dtype, as PyTorch's (``tl.float32`` forces a forward to
    full precision inside autocast, the documented use), not only autocast's own."""
    name = getattr(dtype, "name", None) or str(dtype)
    if name.rsplit(".", 1)[-1] == "bfloat16":
        raise TypeError("custom_fwd: cast_inputs=bfloat16 is not supported (NumPy and CuPy "
                        "have no bfloat16); use tl.float16 or tl.float32")
    from .._dtypes import as_dtype
    try:
        dt = as_dtype(dtype)
    except (TypeError, ValueError) as e:
        raise TypeError(f"custom_fwd: cast_inputs must be a floating dtype, got "
                        f"{dtype!r} ({e})") from None
    if dt.kind != "f":
        raise TypeError(f"custom_fwd: cast_inputs must be a floating dtype (tl.float16, "
                        f"tl.float32, tl.float64), got {dt}")
    return dt


def custom_fwd(fwd: Callable | None = None, *, device_type: str,
               cast_inputs: Any = None) -> Callable:
    """Decorate a custom Function's ``forward`` (``torch.amp.custom_fwd``). With
    ``cast_inputs=None`` it runs under the surrounding autocast state, which
    :func:`custom_bwd` restores for ``backward``; with a floating dtype, inside an autocast
    block the floating-point tensor arguments on ``device_type`` (float64 excepted) are cast
    to it and ``forward`` runs with autocast off (outside a block nothing changes).
    ``cast_inputs=tl.float32`` runs a numerically sensitive forward in float32."""
    _check(device_type, "custom_fwd")
    if cast_inputs is not None:
        cast_inputs = _float_dtype(cast_inputs)
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args: Any, **kwargs: Any) -> Any:
        ctx = args[0]
        try:
            ctx._dtype = get_autocast_dtype(device_type)
        except ValueError:      # the CPU has no default (PyTorch's is bfloat16)
            ctx._dtype = None
        enabled = is_autocast_enabled(device_type)
        if cast_inputs is None:
            ctx._fwd_used_autocast = enabled
            return fwd(*args, **kwargs)
        ctx._fwd_used_autocast = False
        if not enabled:
            return fwd(*args, **kwargs)
        with autocast(device_type, enabled=False):
            return fwd(*_cast(args, device_type, cast_inputs),
                       **_cast(kwargs, device_type, cast_inputs))
    return decorate_fwd


def custom_bwd(bwd: Callable | None = None, *, device_type: str) -> Callable:
    """Decorate a custom Function's ``backward`` (``torch.amp.custom_bwd``): it runs with
    the autocast state its :func:`custom_fwd`-decorated ``forward`` ran with."""
    _check(device_type, "custom_bwd")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args: Any, **kwargs: Any) -> Any:
        ctx = args[0]
        if not hasattr(ctx, "_fwd_used_autocast"):
            raise RuntimeError("custom_bwd: the forward of this Function was not decorated "
                               "with tl.amp.custom_fwd")
        with autocast(device_type, enabled=ctx._fwd_used_autocast, dtype=ctx._dtype):
            return bwd(*args, **kwargs)
    return decorate_bwd
