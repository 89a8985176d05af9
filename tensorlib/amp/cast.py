"""The cast decision every autocast-aware op function makes at its entry.

An op function starts with::

    if state.autocast is not None:
        return autocast_call(linear, "linear", input, weight, bias)

so that with autocast off the cost is one thread-local read. ``autocast_call`` looks up the
op's policy for the device type of its tensors (:mod:`tensorlib.amp.policy`), casts the
tensor arguments with recorded ``astype`` ops (differentiable, captured by ``tl.function``,
exported to ONNX as Cast), and calls the function again with autocast off for that call,
so the ops it is built of are not cast a second time (PyTorch runs them below its
autocast dispatch key). A call with a complex tensor argument runs as called: PyTorch's
autocast casts floating tensors only, and a complex op's real parts (a complex convolution's
three real ones) must not be cast either.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._state import state
from .._tensor import Tensor
from . import policy as P
from .autocast_mode import cache

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


def autocast_call(fn: Callable, name: str, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` under the autocast policy of op ``name`` (see module doc)."""
    settings = state.autocast
    dev = _device_type(args, kwargs)
    dtype = settings.dtypes.get(dev) if dev is not None else None
    rule = P.POLICIES[dev].get(name) if dtype is not None else None
    state.autocast = None
    try:
        if rule is None or rule == P.KEEP or _any_complex(args, kwargs):
            return fn(*args, **kwargs)
        if rule == P.BANNED:
            raise RuntimeError(
                f"{name}: unsafe to autocast (float16 probabilities near 0 and 1 overflow its "
                "logs and gradient). Many models put a sigmoid right before this loss; use "
                "binary_cross_entropy_with_logits "
                "(or nn.BCEWithLogitsLoss), which fuses the two and is safe to autocast. To "
                f"run {name} anyway, call it in `with tl.autocast('{dev}', enabled=False)` "
                "with float32 inputs")
        if rule == P.LOWER_PRODUCT:
            rule = P.LOWER if _count_tensors(args) > 1 else P.KEEP
            if rule == P.KEEP:
                return fn(*args, **kwargs)
        if rule == P.LOWER:
            args, kwargs = _cast_all(args, kwargs, dev, _lower_eligible, dtype)
            if name in P.NATIVE_HALF[dev]:
                return fn(*args, **kwargs)
            return _via_float32(fn, args, kwargs, dtype)
        if rule == P.FP32_OPT and kwargs.get("dtype") is not None:
            return fn(*args, **kwargs)
        if rule in (P.FP32, P.FP32_OPT):
            args, kwargs = _cast_all(args, kwargs, dev, _half_eligible, _F32)
            return fn(*args, **kwargs)
        if rule == P.PROMOTE:
            widest = _widest(args, kwargs, dev)
            if widest is not None:
                args, kwargs = _cast_all(args, kwargs, dev, _lower_eligible, widest)
            return fn(*args, **kwargs)
        raise AssertionError(f"autocast: unknown policy {rule!r} for {name}")
    finally:
        state.autocast = settings


def takes_over(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether, under this thread's autocast settings, ``autocast_call`` gives the
    function of op ``name`` no float16 tensor and decides its result's dtype itself. The
    float16 adapter of ``tl.nn.functional`` (``ops.nn_util.half_via_float32``: float16 in,
    computed in float32, float16 out) must then hand the call over unchanged, or a loss
    that autocast runs in float32 would come back as float16."""
    settings = state.autocast
    if settings is None or _any_complex(args, kwargs):
        return False
    dev = _device_type(args, kwargs)
    dtype = settings.dtypes.get(dev) if dev is not None else None
    rule = P.POLICIES[dev].get(name) if dtype is not None else None
    if rule == P.LOWER:
        return name not in P.NATIVE_HALF[dev]
    if rule in (P.FP32, P.BANNED):
        return True
    if rule == P.LOWER_PRODUCT:
        return _count_tensors(args) > 1
    if rule == P.FP32_OPT:
        return kwargs.get("dtype") is None
    if rule == P.PROMOTE:
        return _widest(args, kwargs, dev) not in (None, _F16)
    return False


# --- which tensors ---------------------------------------------------------------------------
def _tensors(args, kwargs):
    for a in args:
        if isinstance(a, Tensor):
            yield a
        elif type(a) in (list, tuple):
            for t in a:
                if isinstance(t, Tensor):
                    yield t
    for a in kwargs.values():
        if isinstance(a, Tensor):
            yield a


def _device_type(args, kwargs) -> str | None:
    for t in _tensors(args, kwargs):
        return t._device.type
    return None


def _any_complex(args, kwargs) -> bool:
    return any(t._data.dtype.kind == "c" for t in _tensors(args, kwargs))


def _count_tensors(args) -> int:
    return sum(1 for _ in _tensors(args, {}))


def _lower_eligible(t: Tensor, dev: str) -> bool:
    # floating, on the block's device type, not float64 (PyTorch's is_eligible)
    d = t._data.dtype
    return d.kind == "f" and d != _F64 and t._device.type == dev


def _half_eligible(t: Tensor, dev: str) -> bool:
    return t._data.dtype == _F16 and t._device.type == dev


def _widest(args, kwargs, dev) -> np.dtype | None:
    found = [t._data.dtype for t in _tensors(args, kwargs)
             if t._data.dtype.kind == "f" and t._device.type == dev]
    return np.result_type(*found) if found else None


# --- casting ---------------------------------------------------------------------------------
def _cast_all(args, kwargs, dev, eligible, dtype):
    def one(a):
        if isinstance(a, Tensor):
            return _cast(a, dtype) if eligible(a, dev) and a._data.dtype != dtype else a
        if type(a) in (list, tuple) and any(isinstance(t, Tensor) for t in a):
            return type(a)(one(t) for t in a)
        return a
    return tuple(one(a) for a in args), {k: one(v) for k, v in kwargs.items()}


def _cast(t: Tensor, dtype: np.dtype) -> Tensor:
    """``t.astype(dtype)``; a leaf that requires grad (a parameter) cast to float16 is cast
    once per outermost autocast block, while its version, the grad mode and the cast's tape
    node (freed by a backward pass) last; never under capture, where each use must record
    its cast in the graph."""
    from ..ops.shape import astype
    store, enabled = cache()
    if not (enabled and dtype == _F16 and t._rg and t._node is None
            and state.tracer is None):
        return astype(t, dtype)
    key = id(t)
    hit = store.get(key)
    grad = state.grad_enabled
    if hit is not None and hit[0] is t and hit[1] == t._version[0] and hit[2] == grad:
        node = hit[3]._node
        if node is None or node.inputs is not None:   # (a backward pass frees the node)
            return hit[3]
    out = astype(t, dtype)
    store[key] = (t, t._version[0], grad, out)      # holds t: its id is not reused
    return out


def _via_float32(fn, args, kwargs, dtype):
    """``fn`` on its float16 arguments as PyTorch's CPU kernels run them: the (already
    float16) inputs go up to float32, ``fn`` computes in float32, and its float32 results
    are rounded to ``dtype``. For functions that take only float32/float64 (their kernels
    are fused float32/float64 Cython or check for it), and for NumPy, which has no float16
    BLAS."""
    from ..ops.shape import astype

    def up(a):
        if isinstance(a, Tensor):
            return astype(a, _F32) if a._data.dtype == dtype else a
        if type(a) in (list, tuple) and any(isinstance(t, Tensor) for t in a):
            return type(a)(up(t) for t in a)
        return a

    return float32_results_to(
        fn(*(up(a) for a in args), **{k: up(v) for k, v in kwargs.items()}), dtype)


def float32_results_to(r, dtype):
    """The float32 tensors in ``r`` (a tensor, or tuples, named tuples and lists of them)
    cast to ``dtype`` (recorded casts); anything else as it is."""
    if isinstance(r, Tensor):
        return r.astype(dtype) if r._data.dtype == _F32 else r
    if isinstance(r, tuple):
        items = [float32_results_to(v, dtype) for v in r]
        return type(r)(*items) if hasattr(r, "_fields") else tuple(items)
    if isinstance(r, list):
        return [float32_results_to(v, dtype) for v in r]
    return r
