"""Creating tensors: from data, filled, ranges and random draws."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _dtypes
from ._device import CPU, Device, current_scope
from ._tensor import Tensor, _wrap
from .backends import to_device, xp_for
from .autograd.mode import state
from .errors import DTypeError, InputError, ShapeError
from .random import Generator, rng

_SUPPORTED = set(_dtypes.ALL)


def _leaves(data):
    """The scalars of a nested list/tuple, depth first."""
    stack = [data]
    while stack:
        d = stack.pop()
        if isinstance(d, (list, tuple)):
            stack.extend(reversed(d))
        else:
            yield d


def _list_float_dtype(data, arr_dtype):
    """The dtype PyTorch's tensor() gives a nested list whose NumPy array came out floating:
    each element's own dtype (a tensor's or NumPy scalar's; Python floats the default float,
    ints int64), combined as ``torch.promote_types`` (the higher category wins: a float16
    tensor beside a Python int stays float16, where NumPy makes float64). None: keep NumPy's.

    >>> tl.tensor([tl.tensor(1.5, dtype=tl.float16), 2]).dtype      # float16
    """
    if not isinstance(data, (list, tuple)):
        return None if isinstance(data, np.floating) or hasattr(data, "__array__") \
            or hasattr(data, "__array_interface__") or hasattr(data, "__dlpack__") \
            else _dtypes.default_float
    from .ops._util import promote_types
    out = None
    for v in _leaves(data):
        if isinstance(v, (np.generic, Tensor)):     # (np.float64 is also a Python float)
            dt = np.dtype(v.dtype)
        elif isinstance(v, bool):
            dt = _dtypes.bool_
        elif isinstance(v, int):
            dt = _dtypes.int64
        elif isinstance(v, float):
            dt = _dtypes.default_float
        elif _dtypes.is_torch_tensor(v):
            dt = np.dtype(_dtypes.torch_dtype_name(v.dtype))
        else:
            return None                 # arrays inside: NumPy's promotion
        if dt.kind not in "buif":
            return None
        out = dt if out is None else promote_types(out, dt)
    if out is None or out.kind != "f":
        out = _dtypes.default_float
    return out if out != arr_dtype else None


def _list_complex_dtype(data) -> np.dtype:
    """PyTorch's dtype for complex data given as Python numbers: the default complex dtype
    (complex64 beside float32), complex128 where an element is a complex128 array scalar or
    tensor or a float64 one."""
    for v in _leaves(data) if isinstance(data, (list, tuple)) else (data,):
        if isinstance(v, (np.generic, Tensor)) and np.dtype(v.dtype) in (np.complex128,
                                                                          np.float64):
            return _dtypes.complex128
    return _dtypes.complex_of(_dtypes.default_float)


def _to_array(data: Any, dtype=None) -> np.ndarray:
    dt = _dtypes.as_dtype(dtype) if dtype is not None else None
    if isinstance(data, Tensor):
        data._read("tl.tensor(t) (a copy of a traced tensor would be a frozen constant; "
                   "use t.detach().clone())")
        arr = data._host()
        return arr.astype(dt) if dt is not None else arr.copy()
    if isinstance(data, np.ndarray):
        arr = data
    elif _dtypes.is_torch_tensor(data):
        # any device, requires_grad or not; bfloat16 has no NumPy dtype
        if _dtypes.torch_dtype_name(data.dtype) == "bfloat16":
            raise TypeError(f"tensor(): {_dtypes.BFLOAT16}")
        arr = data.detach().cpu().numpy()
    elif hasattr(data, "__cuda_array_interface__"):
        arr = data.get()
    else:
        try:
            arr = np.asarray(data)
        except ValueError as e:
            where = _ragged(data) if isinstance(data, (list, tuple)) else None
            raise ValueError(f"tensor(): {where}" if where else
                             f"tensor(): cannot build a tensor from {type(data).__name__}: "
                             f"{e}") from None
        if arr.dtype.kind == "f" and dt is None:
            want = _list_float_dtype(data, arr.dtype)   # Python floats: the default float
            if want is not None:
                arr = arr.astype(want)
        elif arr.dtype.kind == "c" and dt is None:
            arr = arr.astype(_list_complex_dtype(data))
        elif dt is not None and dt.kind in "iu" and arr.dtype.kind in "fiu" and arr.size:
            _check_int_range(arr, dt)
    if arr.dtype == object and dt is not None and dt.kind in "fc":
        # Python ints beyond int64 (2**64) are objects to NumPy, but a float dtype holds
        # them (PyTorch: tensor([2**64], dtype=float32) is 1.8447e+19)
        try:
            with np.errstate(over="ignore"):
                arr = np.asarray(data, dtype=dt)
        except OverflowError as e:
            raise OverflowError(f"tensor(): a number does not fit {dt}: {e}") from None
        except (TypeError, ValueError):
            pass
    if arr.dtype == object:
        raise TypeError("tensor(): data must be numbers or nested sequences of numbers of a "
                        "regular shape")
    if not arr.dtype.isnative and arr.dtype.kind in "biuf":
        arr = arr.astype(arr.dtype.newbyteorder("="))    # a copy anyway: to native order
    if dt is not None:
        arr = arr.astype(dt, copy=False)
    elif arr.dtype not in _SUPPORTED:
        raise TypeError(f"tensor(): {_dtypes.unsupported_hint(arr.dtype)}")
    return arr


def _ragged(data) -> str | None:
    """Where a nested list stops being rectangular, in PyTorch's words ("expected sequence
    of length 2 at dim 1 (got 1)"), with the element's position; None if it is not that."""
    def walk(d, dim, pos):
        if not isinstance(d, (list, tuple)):
            return None
        lens = [len(e) if isinstance(e, (list, tuple)) else None for e in d]
        first = lens[0] if lens else None
        for i, n in enumerate(lens):
            if n != first:
                what = "a number" if n is None else f"{n}"
                return (f"the nested lists are ragged: expected a sequence of length {first} "
                        f"at dim {dim + 1} (got {what} at index {list(pos) + [i]}); every "
                        "row of a tensor has the same length (pad the short ones)")
        for i, e in enumerate(d):
            r = walk(e, dim + 1, pos + [i])
            if r:
                return r
        return None
    return walk(data, 0, [])


def _check_int_range(values: np.ndarray, dt: np.dtype, what: str = "value") -> None:
    """Python numbers going into an integer dtype: PyTorch refuses those that would wrap
    (1e40, 2**40 into int32, NaN, inf) instead of storing garbage."""
    info = np.iinfo(dt)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values < info.min) | (values > info.max)
    elif info.min == 0:     # an unsigned dtype also takes -max..-1, wrapped (uint8: -1 is 255)
        bad = (values < -int(info.max)) | (values > info.max)
    else:
        bad = (values < info.min) | (values > info.max)
    if bad.any():
        v = values[bad].flat[0].item()
        raise RuntimeError(f"{what} {v!r} cannot be converted to type {dt} without overflow")


def _target(device) -> Device:
    """``device``, or the innermost ``with tl.device(...)`` block's, or the CPU. While a
    graph is captured, a block naming a CPU device (``cpu:1``, ``/worker:0/cpu:0``) only
    pins the ops for the placer: the trace runs in host memory, where tensors made inside
    the block mix with those made outside. A GPU block keeps its eager meaning (and pins)."""
    if device is not None:
        return Device(device)
    scope = current_scope()
    if scope is None or (state.tracer is not None and scope.type == "cpu"):
        return CPU
    return scope


def _made(t: Tensor) -> Tensor:
    """A tensor this call created: under capture, the trace learns that it is the function's
    own (an in-place write to it is a value of this run, not state kept between runs);
    inside ``inference_mode`` it is an inference tensor, as PyTorch's factories make."""
    tracer = state.tracer
    if tracer is not None:
        tracer.note_fresh(t)
    if getattr(state, "inference", False):
        from .autograd.mode import InferenceVersion
        t._version = InferenceVersion([0])
        t._hv = 0
    return t


def _place(arr, device, requires_grad: bool) -> Tensor:
    dev = _target(device)
    if dev.type != "cpu":
        arr = to_device(arr, dev)
    t = _made(_wrap(arr, dev, False, None, 0))
    if requires_grad:
        t.requires_grad = True
    return t


def tensor(data: Any, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data``.

    Python floats become float32, ints int64, bools bool; arrays (NumPy, PyTorch, DLPack)
    and NumPy scalars keep their dtype.

    >>> tl.tensor([[1., 2.], [3., 4.]], requires_grad=True)
    """
    arr = _to_array(data, dtype)
    if (isinstance(data, np.ndarray) and arr is data) or (
            _dtypes.is_torch_tensor(data) and not arr.flags.owndata):
        arr = arr.copy()         # a torch tensor's .numpy() shares its memory
    return _made(_place(arr, device, requires_grad))


def as_tensor(data: Any, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with a NumPy array or a Tensor when it can."""
    same_device = device is None or (isinstance(data, Tensor) and Device(device) is data.device)
    if isinstance(data, Tensor) and dtype is None and same_device:
        return data
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype)
    return _place(_to_array(data, dtype), device, False)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (changes show through both ways)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    if not array.dtype.isnative and array.dtype.newbyteorder("=") in _SUPPORTED:
        # zero-copy cannot swap bytes (PyTorch refuses these arrays too)
        raise TypeError(f"from_numpy: the array is big-endian ({array.dtype.str}); tensorlib "
                        "shares memory in native byte order only. Convert first: "
                        "tl.from_numpy(a.astype(a.dtype.newbyteorder('=')))")
    if array.dtype not in _SUPPORTED:
        raise TypeError(f"from_numpy: {_dtypes.unsupported_hint(array.dtype)}")
    return _wrap(array, CPU, False, None, 0)


def from_dlpack(obj) -> Tensor:
    """Zero-copy import of a DLPack-capable array (NumPy, PyTorch, CuPy, JAX)."""
    dev_type, dev_id = obj.__dlpack_device__()
    if int(dev_type) == 1:  # kDLCPU
        return from_numpy(np.from_dlpack(obj))
    from .backends import cupy
    cp = cupy()
    arr = cp.from_dlpack(obj)
    return _wrap(arr, Device(f"cuda:{arr.device.id}"), False, None, 0)


def _flat(size) -> tuple:
    """The sizes given as varargs ``(2, 3)`` or as one tuple or list ``((2, 3),)``."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _shape(size) -> tuple[int, ...]:
    size = _flat(size)
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s)
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"sizes must be integers, got {s!r}")
        if s < 0:
            raise ShapeError(f"negative dimension {s} in size {tuple(size)}")
        out.append(int(s))
    out = tuple(out)
    if math.prod(out) > 1 << 30:        # absurd sizes: a clear error before NumPy tries
        from .ops._util import check_alloc
        check_alloc("tensor creation", out, 1, "tensor")
    return out


def _traced_sizes(size) -> list:
    """The sizes in ``size`` read from a None dim while capturing (TracedSize)."""
    from .graph.tracer import TracedSize
    return [(i, s) for i, s in enumerate(_flat(size)) if isinstance(s, TracedSize)]


def _from_traced(kind: str, size, fill, dt, traced) -> Tensor:
    """Under capture with None dims: a tensor whose traced sizes follow their dims at run
    time (ops.fill), instead of a constant of the example's sizes."""
    from .ops.fill import fill_traced
    return fill_traced(kind, size, fill, dt)


def _layout_args(kind: str, layout=None, memory_format=None, pin_memory=False) -> None:
    """PyTorch's layout arguments of the creation functions: tensorlib's tensors are dense,
    strided, so ``layout=tl.strided`` is the one accepted; ``memory_format`` must be a
    memory format (the ``*_like`` functions lay their result out in it, see
    :func:`_in_format`); ``pin_memory`` is for host-to-GPU copies (``x.pin_memory()``)."""
    from .ops.torch_settings import check_memory_format
    if layout is not None and getattr(layout, "_name", None) != "strided":
        raise ValueError(f"{kind}(): layout {layout!r} is not supported; tensorlib's "
                         "tensors are dense and strided (tl.strided)")
    check_memory_format(f"{kind}()", memory_format)
    if not isinstance(pin_memory, bool):
        raise TypeError(f"{kind}(): pin_memory must be a bool, got {pin_memory!r}")


def _in_format(kind: str, t: Tensor, out: Tensor, memory_format) -> Tensor:
    """``out`` (a new tensor like ``t``) laid out in ``memory_format`` as PyTorch's
    ``*_like``: ``tl.preserve_format`` (the default, None) gives a dense (non-overlapping)
    ``t``'s strides (a transpose's too), else its dims' order packed; ``tl.contiguous_format``
    C order; ``tl.channels_last`` needs a 4-D ``t``, ``channels_last_3d`` 5-D. Internal
    callers that read the result's array in C order ask for ``contiguous_format``."""
    a, src = out._data, t._data
    if memory_format is None:
        # the common case, a C-order t, is out as made; a C-contiguous 4-D / 5-D one can
        # also be exactly channels_last (NumPy ignores the strides of size-1 dims, and of
        # all dims of an empty array) only with a size-1 or empty dim
        if not hasattr(src, "flags") or src.flags.c_contiguous and (
                src.ndim not in (4, 5) or src.size and 1 not in src.shape[1:]):
            return out
        from .ops.torch_settings import preserve_format
        memory_format = preserve_format
    if not isinstance(src, np.ndarray) and not type(src).__module__.startswith("cupy"):
        return out      # (a vmap batch: its own layout)
    from ._tensor_methods import empty_strided_like, format_strides
    st = format_strides(kind, src, memory_format)
    if st is not None:
        b = empty_strided_like(a, st)
        b[...] = a
        out._data = b
    return out


def _size_kw(kind: str, size: tuple, kw: dict) -> tuple:
    """The sizes given positionally or as PyTorch's ``size=`` keyword (a tuple or list),
    never both; ``layout=tl.strided`` (the one layout there is), ``memory_format=`` and
    ``pin_memory=`` are accepted too (see :func:`_layout_args`)."""
    if not kw:
        return size
    _layout_args(kind, kw.pop("layout", None), kw.pop("memory_format", None),
                 kw.pop("pin_memory", False))
    if not kw:
        return size
    extra = sorted(set(kw) - {"size"})
    if extra:
        raise TypeError(f"{kind}() got an unexpected keyword argument {extra[0]!r}")
    given = kw["size"]
    if size:
        raise TypeError(f"{kind}(): the size was given both positionally {size} and as "
                        f"size={given!r}; give it once")
    if not isinstance(given, (tuple, list)):
        raise TypeError(f"{kind}(): size= must be a tuple or list of ints, got "
                        f"{type(given).__name__} (write size=({given!r},))")
    return (tuple(given),)


def _filled(kind: str, size, fill, dtype, device, requires_grad) -> Tensor:
    dev = _target(device)
    dt = _dtypes.as_dtype(dtype) if dtype is not None else None
    if dt is None:
        if isinstance(fill, bool):
            dt = _dtypes.bool_
        elif isinstance(fill, (int, np.integer)) and kind == "full":
            dt = _dtypes.int64
        elif isinstance(fill, (complex, np.complexfloating)) and kind == "full":
            dt = _dtypes.complex_of(_dtypes.default_float)
        else:
            dt = _dtypes.default_float
    if state.tracer is not None:
        traced = _traced_sizes(size)
        if traced:
            t = _from_traced(kind, size, fill, dt, traced)
            if requires_grad:
                t.requires_grad = True
            return t
    xp = xp_for(dev)
    shape = _shape(size)
    if dt.kind in "iu" and isinstance(fill, (int, float, np.number)) \
            and not isinstance(fill, (bool, np.bool_)):
        _check_int_range(np.asarray(fill), dt, f"{kind}: fill value")
        if fill < 0 and dt.kind == "u":
            fill = int(fill) + (1 << (8 * dt.itemsize))
    arr = xp.empty(shape, dt) if kind == "empty" else xp.full(shape, fill, dt)
    t = _made(_wrap(arr, dev, False, None, 0))
    if requires_grad:
        t.requires_grad = True
    return t


def zeros(*size, dtype=None, device=None, requires_grad: bool = False,
          **kw) -> Tensor:
    """A tensor of the given size filled with 0 (``torch.zeros``).

    Args:
        *size: the shape, as ints (``tl.zeros(2, 3)``), one sequence
            (``tl.zeros((2, 3))``) or ``size=(2, 3)``.
        dtype: the element type; the default float dtype (float32, see
            ``tl.set_default_dtype``) unless given.
        device: where the tensor lives (``"cpu"``, ``"cuda"``); the default device unless
            given.
        requires_grad: whether autograd records operations on the result (a leaf).
        out: a tensor to write the result into (PyTorch's ``out=``).

    >>> tl.zeros(2, 3)
    tensor([[0., 0., 0.],
            [0., 0., 0.]])
    >>> tl.zeros((2,), dtype=tl.int64)
    tensor([0, 0])
    """
    return _filled("zeros", _size_kw("zeros", size, kw), 0, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:
    """A tensor of the given size filled with 1 (``torch.ones``).

    Args:
        *size: the shape, as ints (``tl.ones(2, 3)``), one sequence (``tl.ones((2, 3))``)
            or ``size=(2, 3)``.
        dtype: the element type; the default float dtype (float32) unless given.
        device: where the tensor lives; the default device unless given.
        requires_grad: whether autograd records operations on the result (a leaf).
        out: a tensor to write the result into (PyTorch's ``out=``).

    >>> tl.ones(2, 2)
    tensor([[1., 1.],
            [1., 1.]])
    >>> tl.ones(3, dtype=tl.bool)
    tensor([True, True, True])
    """
    return _filled("ones", _size_kw("ones", size, kw), 1, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False, **kw) -> Tensor:
    """A tensor of the given size whose values are not initialised (``torch.empty``): fill
    it before reading. ``size``, ``dtype``, ``device`` and ``requires_grad`` as
    :func:`zeros`'s.

    >>> tl.empty(2, 3).shape
    (2, 3)
    """
    return _filled("empty", _size_kw("empty", size, kw), 0, dtype, device, requires_grad)


def full(size: Sequence[int] | int, fill_value, dtype=None, device=None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` (an int or a sequence) filled with ``fill_value``
    (``torch.full``).

    Without ``dtype`` the value picks it, as PyTorch: a bool gives bool, an int int64, a
    float the default float dtype, a complex the default float's complex dtype (complex64,
    or complex128 when the default is float64). ``device`` and ``requires_grad`` as :func:`zeros`'s.

    >>> tl.full((2, 2), 7)
    tensor([[7, 7],
            [7, 7]])
    >>> tl.full((3,), 0.5).dtype == tl.float32
    True
    """
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    if isinstance(fill_value, float) and dtype is None:
        dtype = _dtypes.default_float
    return _filled("full", size, fill_value, dtype, device, requires_grad)


def _like(t: Tensor, dtype, device):
    return (dtype if dtype is not None else t.dtype), (device if device is not None else t.device)


def batched_like(t: Tensor, out: Tensor) -> Tensor:
    """``out`` (made on ``t``'s device) batched as ``t`` is inside ``tl.vmap``: a tensor
    made like a batched one (``zeros_like(x)``, ``x.new_zeros(3)``) has a copy per example,
    as in PyTorch's vmap, so in-place writes of batched values into it work."""
    d = t._data
    if out._device is not t._device or getattr(d, "bdim", None) is None \
            or type(d).__name__ != "BatchedArray":
        return out
    from .vmap.batched import BatchedArray
    one = out._data.phys
    xp = xp_for(t._device.base)
    phys = xp.empty((d.batch_size,) + tuple(one.shape), one.dtype)
    phys[...] = one
    out._data = BatchedArray(phys, 0, t._device)
    return out


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False, *,
              layout=None, memory_format=None) -> Tensor:
    """Zeros with ``t``'s shape, and its dtype and device unless ``dtype`` / ``device`` are
    given (``torch.zeros_like``); ``requires_grad`` makes the result a leaf that needs a
    gradient.

    >>> tl.zeros_like(tl.tensor([[1, 2], [3, 4]]))
    tensor([[0, 0],
            [0, 0]])
    """
    _layout_args("zeros_like", layout, memory_format)
    dt, dev = _like(t, dtype, device)
    out = zeros(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)
    return _in_format("zeros_like", t, batched_like(t, out), memory_format)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False, *,
              layout=None, memory_format=None) -> Tensor:
    """Ones with ``t``'s shape, and its dtype and device unless ``dtype`` / ``device`` are
    given (``torch.ones_like``); ``requires_grad`` makes the result a leaf that needs a
    gradient.

    >>> tl.ones_like(tl.zeros(2, dtype=tl.float64))
    tensor([1., 1.], dtype=float64)
    """
    _layout_args("ones_like", layout, memory_format)
    dt, dev = _like(t, dtype, device)
    out = ones(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)
    return _in_format("ones_like", t, batched_like(t, out), memory_format)


def empty_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False, *,
              layout=None, memory_format=None) -> Tensor:
    """Uninitialised values with ``t``'s shape, and its dtype and device unless given."""
    _layout_args("empty_like", layout, memory_format)
    dt, dev = _like(t, dtype, device)
    out = empty(t.shape, dtype=dt, device=dev, requires_grad=requires_grad)
    return _in_format("empty_like", t, batched_like(t, out), memory_format)


def full_like(t: Tensor, fill_value, dtype=None, device=None,
              requires_grad: bool = False, *, layout=None, memory_format=None) -> Tensor:
    """``fill_value`` with ``t``'s shape, and its dtype and device unless ``dtype`` /
    ``device`` are given (``torch.full_like``): the value is cast to ``t``'s dtype, so
    ``full_like(int_tensor, 0.5)`` is zeros, as in PyTorch.

    >>> tl.full_like(tl.zeros(3), 2.5)
    tensor([2.5000, 2.5000, 2.5000])
    """
    _layout_args("full_like", layout, memory_format)
    dt, dev = _like(t, dtype, device)
    out = full(t.shape, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)
    return _in_format("full_like", t, batched_like(t, out), memory_format)


def rand_like(t: Tensor, generator: Generator | None = None, dtype=None, device=None,
              requires_grad: bool = False, *, layout=None, memory_format=None) -> Tensor:
    """Uniform on [0, 1), with ``t``'s shape, dtype and device (``torch.rand_like``); an
    integer or bool ``t`` needs a floating ``dtype=`` (DTypeError otherwise, as PyTorch)."""
    _layout_args("rand_like", layout, memory_format)
    dt, dev = _like(t, dtype, device)
    out = rand(*t.shape, generator=generator, dtype=_float_like(dt, dtype, "rand_like"),
               device=dev, requires_grad=requires_grad)
    return _in_format("rand_like", t, out, memory_format)


def randn_like(t: Tensor, generator: Generator | None = None, dtype=None, device=None,
               requires_grad: bool = False, *, layout=None, memory_format=None) -> Tensor:
    """Standard normal, with ``t``'s shape, dtype and device (``torch.randn_like``); an
    integer or bool ``t`` needs a floating ``dtype=`` (DTypeError otherwise, as PyTorch)."""
    _layout_args("randn_like", layout, memory_format)
    dt, dev = _like(t, dtype, device)
    out = randn(*t.shape, generator=generator, dtype=_float_like(dt, dtype, "randn_like"),
                device=dev, requires_grad=requires_grad)
    return _in_format("randn_like", t, out, memory_format)


def _float_like(dt, asked=None, name: str = "rand_like"):
    """The dtype of a random ``*_like``: floating or complex, as PyTorch, which has no such
    sampler for integers or bool. An integer or bool ``t`` without ``dtype=`` is refused too
    (PyTorch raises NotImplementedError; returning float32 hid the mistake); ``dtype=`` of a
    floating kind makes it valid."""
    if np.dtype(dt).kind not in "fc":
        from .errors import DTypeError
        got = f"dtype={np.dtype(dt)}" if asked is not None else \
            f"an input of dtype {np.dtype(dt)}"
        raise DTypeError(f"{name}: got {got}, but {name} draws only values of a floating "
                         f"dtype (or a complex one), as torch.{name}; pass dtype=tl.float32, "
                         f"or use tl.randint_like for integers")
    return dt


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` up to (not including) ``end`` every ``step``, as PyTorch:
    integer arguments give int64, any float gives the default float. Each value is
    ``start + i * step`` computed in double (float32 for float16) and rounded once to the
    dtype, and the length is ``ceil((end - start) / step)`` in double, so float32 ranges
    do not drift.

    Under capture (``tl.function``) integer bounds read from ``None`` dims follow them at
    run time, as ``torch.compile(dynamic=True)`` does: one graph serves every length. The
    KV-cache position ids of a decode step, ``off = past_k.shape[2]``, are
    ``tl.arange(off, off + T)``; an offset held in a 0-d int tensor ``off_t`` (an input of
    the function) is ``tl.arange(T) + off_t``. (``tl.arange(T) + off`` with ``off`` a size
    turns ``off`` into a Python number, so the function is traced once per value.)

    >>> tl.arange(-8.0, 8.0, 0.1)[80]          # 0 (4e-16), not -7.6e-06
    """
    if end is None:
        start, end = 0, start
    start, end, step = (_scalar_arg(v) for v in (start, end, step))
    if step == 0:
        raise InputError("arange: step must be non-zero")
    if dtype is None:
        dtype = (_dtypes.default_float if any(isinstance(v, float) for v in (start, end, step))
                 else _dtypes.int64)
    traced = _traced_sizes((start, end, step)) if state.tracer is not None else []
    if traced:
        return _arange_traced(start, end, step, dtype)
    dev = _target(device)
    xp = xp_for(dev)
    if dev.type == "vmap":      # computed on the level's base device, then lifted
        arr = xp.lift(_arange_array(xp.base_module(), start, end, step, _dtypes.as_dtype(dtype)))
    else:
        arr = _arange_array(xp, start, end, step, _dtypes.as_dtype(dtype))
    t = _made(_wrap(arr, dev, False, None, 0))
    if requires_grad:
        t.requires_grad = True
    return t


def _arange_traced(start, end, step, dtype) -> Tensor:
    """``arange`` under capture with integer bounds read from None dims: ``start + step *
    (ones(n).cumsum() - 1)`` with ``n`` and ``start`` computed from the dims when the graph
    runs (``fill``), so it follows them in the graph, its file and ONNX."""
    from .graph.tracer import CaptureError, TracedSize
    if isinstance(step, TracedSize) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool)
            for v in (start, end, step)):
        raise CaptureError(
            "arange: under capture, bounds read from None dims are followed when start and "
            "end are integers and step is a plain int (arange(n), arange(off, off + n, 2)); "
            f"got start={start!r}, end={end!r}, step={step!r}. For a float range write "
            "tl.arange(n) * step + start with step and start numbers or 0-d tensors")
    sgn = 1 if step > 0 else -1
    n = (end - start + step - sgn) // step      # PyTorch's integer length (C truncation)
    if int.__int__(n) < 0:      # n is a TracedSize: start or end is one
        raise InputError(f"arange: upper bound and larger bound inconsistent with step sign "
                         f"(start={int.__int__(start)}, end={int.__int__(end)}, step={step})")
    t = _from_traced("arange", (n,), 1, _dtypes.int64, [(0, n)]).cumsum(0) - 1
    if step != 1:
        t = t * step
    if isinstance(start, TracedSize):
        if int.__int__(start) < 0:
            raise CaptureError(f"arange: under capture a start read from a None dim must not "
                               f"be negative, got {start.describe()} = {int.__int__(start)}")
        # the start's value as a 0-d tensor that follows the dims: the size of a fill
        t = t + _from_traced("arange", (start,), 1, _dtypes.int64, [(0, start)]).sum()
    elif start:
        t = t + int(start)
    return t.astype(dtype) if _dtypes.as_dtype(dtype) != np.int64 else t


def _scalar_arg(v):
    """A 0-d tensor bound (``tl.arange(n_tensor)``) or a NumPy scalar as its Python number
    (an ``np.float32`` bound is a float: a float range)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Tensor):
        if v.ndim != 0:
            raise ValueError(f"arange: bounds and step must be numbers or 0-d tensors, got a "
                             f"tensor of shape {tuple(v.shape)}")
        return v.item()
    return v


def _arange_array(xp, start, end, step, dt):
    """PyTorch's arange values on backend ``xp``: integer dtypes count from the truncated
    ``start`` by the truncated ``step``; int64 also takes its length from the truncated
    bounds (PyTorch's exact integer formula), other dtypes from ``ceil((end - start) / step)``
    in double. Floats are ``start + i * step`` in the accumulate type (double; float32
    for float16) rounded once."""
    kind = np.dtype(dt).kind
    if kind not in "iuf":
        return xp.arange(start, end, step, dtype=dt)
    fs, fe, fst = float(start), float(end), float(step)
    if kind in "iu" and dt == np.int64:
        s, e, st = int(start), int(end), int(step)
        if st == 0:
            raise ValueError(f"arange: step {step!r} truncates to 0 for dtype int64")
        _arange_bounds(s, e, st)
        sgn = 1 if st > 0 else -1
        q = e - s + st - sgn
        n = abs(q) // abs(st) * (1 if (q >= 0) == (st > 0) else -1)   # C's truncation
    else:
        if not (np.isfinite(fs) and np.isfinite(fe)):
            raise ValueError(f"arange: unsupported range: {start} -> {end}")
        if not fst == fst:
            raise ValueError("arange: step must be non-zero (got NaN)")
        _arange_bounds(fs, fe, fst)
        n = int(np.ceil((fe - fs) / fst))
    if kind in "iu":
        i = xp.arange(n, dtype=np.int64)
        return (int(start) + int(step) * i).astype(dt)
    i = xp.arange(n, dtype=np.float64)
    if dt == np.float16:
        # float32 accumulation: the float32 start and step, product and sum exact in double
        # (24-bit operands), rounded once to float32, then to float16
        s32, st32 = float(np.float32(start)), float(np.float32(step))
        return (s32 + st32 * i).astype(np.float32).astype(dt)
    return _fma(fst, i, fs).astype(dt)


def _fma(a: float, b, c: float):
    """``a * b + c`` rounded once (a fused multiply-add, as PyTorch's compiled kernel
    computes ``start + step * i``; two roundings would put -8 + 0.1 * 80 at 0 instead of
    4.4e-16, flipping relu's gradient there), by the error-free product and sum
    transformations, on any backend's arrays ``b``."""
    p = a * b
    split = 134217729.0                     # 2**27 + 1 (Dekker)
    t = split * a
    ah = t - (t - a)
    al = a - ah
    t = split * b
    bh = t - (t - b)
    bl = b - bh
    perr = ((ah * bh - p) + ah * bl + al * bh) + al * bl     # a * b - p, exactly
    s = p + c
    bb = s - p
    serr = (p - (s - bb)) + (c - bb)                         # p + c - s, exactly
    return s + (serr + perr)


def _arange_bounds(start, end, step) -> None:
    if not ((step > 0 and end >= start) or (step < 0 and end <= start)):
        raise InputError(f"arange: upper bound and lower bound inconsistent with step sign "
                         f"(start={start}, end={end}, step={step})")


def _escapes(kind: str, sizes) -> None:
    """Under capture, sizes read from None dims that NumPy reads as plain ints (np.eye,
    np.linspace take an int subclass without calling it): the graph keeps the traced size,
    so note the escape (the function is traced per shape, ONNX export refuses it)."""
    if state.tracer is None:
        return
    for _, s in _traced_sizes(sizes):
        s.escape(f"the size of tl.{kind}")


def linspace(start: float, end: float, steps: int, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included
    (``torch.linspace``).

    The default float dtype unless ``dtype``; the values are PyTorch's bit for bit on the
    CPU for float32/float64 (the first half counted from ``start``, the rest back from
    ``end``). An integer ``dtype`` truncates the points toward 0, as PyTorch.
    ``device`` and ``requires_grad`` as :func:`zeros`'s. Complex ends give the complex of
    the default float dtype (a real ``dtype`` raises), each part spaced as a real linspace.
    Under capture, a float32/float64 ``steps`` read from None dims (``x.shape[1]``) is
    followed when the graph runs (its file and ONNX too), with eager's values.

    >>> tl.linspace(0, 1, 5)
    tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000])
    """
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative, got {steps}")
    cx = np.iscomplexobj(start) or np.iscomplexobj(end)
    dt = _dtypes.as_dtype(dtype) if dtype is not None else (
        _dtypes.complex_of(_dtypes.default_float) if cx else _dtypes.default_float)
    if (state.tracer is not None and _traced_sizes((steps,)) and not cx
            and dt in (_dtypes.float32, _dtypes.float64)):
        t = _linspace_traced(float(start), float(end), steps, dt, device)
        if requires_grad:
            t.requires_grad = True
        return t
    _escapes("linspace", (steps,))
    if cx and dt.kind != "c":
        raise TypeError(f"linspace: complex start/end ({start}, {end}) cannot be cast to the "
                        f"real dtype {dt}; pass a complex dtype or leave dtype unset")
    dev = _target(device)
    xp = xp_for(dev)
    if dt.kind == "c":
        # PyTorch's complex linspace is its real one on each part (the step is split too)
        s, e = complex(start), complex(end)
        if steps > 1 and xp is np:
            arr = np.empty(steps, dt)
            arr.real = _torch_linspace(s.real, e.real, steps, _dtypes.real_of(dt))
            arr.imag = _torch_linspace(s.imag, e.imag, steps, _dtypes.real_of(dt))
        else:
            arr = xp.linspace(s, e, steps).astype(dt)
    elif dt in (_dtypes.float32, _dtypes.float64) and steps > 1 and xp is np:
        arr = _torch_linspace(start, end, steps, dt)
    elif dt.kind in "iu":
        # PyTorch's: the ends cast to the integer dtype first, the points computed in double
        # between them, then truncated toward 0
        arr = xp.linspace(int(start), int(end), steps, dtype=np.float64).astype(dt)
    else:
        arr = xp.linspace(start, end, steps, dtype=dt)
    t = _made(_wrap(arr, dev, False, None, 0))
    if requires_grad:
        t.requires_grad = True
    return t


def _linspace_traced(start: float, end: float, steps, dt, device=None) -> Tensor:
    """``linspace`` under capture with ``steps`` read from None dims: :func:`_torch_linspace`'s
    values from tensor ops (an arange and the step as a run-time ``dim_size``), so the graph,
    its file and ONNX follow the dims and give eager's values bit for bit in float32."""
    from .ops.elementwise import where
    from .ops.size_guard import size_tensor
    i = arange(steps, device=device)
    like = i
    s, e = dt.type(start), dt.type(end)
    # steps == 1 is [start]: a divisor of 1 keeps the step finite, i == 0 takes the first half
    div = size_tensor(steps - 1, like).clamp(min=1)
    step = float(e - s) / div.astype(dt)    # in the dtype, as eager's (e - s) / (steps - 1)
    j = size_tensor(steps - 1, like) - i
    first = (i < size_tensor(steps // 2, like)) | (i == 0)
    if dt == _dtypes.float32:
        # float64 holds each step * i exactly: one rounding to float32 after the sum
        step = step.astype(np.float64)
        lo = float(s) + step * i.astype(np.float64)
        hi = float(e) - step * j.astype(np.float64)
    else:       # a fused multiply-add, as eager's extended-precision start + step * i
        lo = _fma(step, i.astype(np.float64), float(s))
        hi = _fma(-step, j.astype(np.float64), float(e))
    return where(first, lo, hi).astype(dt)


def _torch_linspace(start, end, steps: int, dt):
    """PyTorch's CPU linspace bit for bit (NumPy's differs by an ulp at some points, which
    moved grid points built from it off pixel knots: a grid_sample warp trained otherwise):
    the step in the dtype, the first half counted from ``start`` and the rest back from
    ``end``, each ``start + step * i`` rounded once (a fused multiply-add, emulated in a
    wider type)."""
    wide = np.float64 if dt == _dtypes.float32 else np.longdouble
    s, e = dt.type(start), dt.type(end)
    step = wide((e - s) / dt.type(steps - 1))
    half = steps // 2
    i = np.arange(steps, dtype=wide)
    out = np.empty(steps, dt)
    out[:half] = wide(s) + step * i[:half]
    out[half:] = wide(e) - step * (steps - 1 - i[half:])
    return out


def eye(n: int, m: int | None = None, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    """An ``n`` x ``m`` matrix (square when ``m`` is None) with ones on the main diagonal
    and zeros elsewhere (``torch.eye``); the default float dtype unless ``dtype``.
    ``device`` and ``requires_grad`` as :func:`zeros`'s.

    >>> tl.eye(2, 3)
    tensor([[1., 0., 0.],
            [0., 1., 0.]])
    """
    _escapes("eye", (n, m))
    dt = _dtypes.as_dtype(dtype) if dtype is not None else _dtypes.default_float
    dev = _target(device)
    t = _made(_wrap(xp_for(dev).eye(n, m, dtype=dt), dev, False, None, 0))
    if requires_grad:
        t.requires_grad = True
    return t


# --- random -----------------------------------------------------------------
def _drawn(size) -> tuple:
    """``size`` for a random draw as plain ints, and under capture its sizes read from None
    dims (TracedSize, ``x.shape[0] * 2`` too) as run-time expressions over their source
    tensors (:func:`tensorlib.graph.sizes.lower`): the graph's draw follows the batch.
    Returns (shape, sizes, sources)."""
    size = _flat(size)
    if state.tracer is not None and _traced_sizes(size):
        from .graph.sizes import lower
        plain, sizes, srcs = lower(size)
        return _shape(plain), sizes, srcs
    return _shape(size), (), []


def _complex_draw(name: str, draw, shape: tuple, dtype, scale: float = 1.0):
    """For a complex ``dtype``: ``draw`` (a sampler taking a shape) for the real and the
    imaginary parts, each times ``scale`` (PyTorch's complex rand: both parts U[0, 1);
    randn: both N(0, 1/2), so E|z|^2 = 1); None for any other dtype."""
    if dtype is None or _dtypes.as_dtype(dtype).kind != "c":
        return None
    if state.tracer is not None:
        raise NotImplementedError(f"{name}: a complex draw cannot be captured in a graph yet "
                                  "(draw its real and imaginary parts and combine them with "
                                  "tl.complex)")
    parts = np.ascontiguousarray(draw(tuple(shape) + (2,)), dtype=np.float64)
    if scale != 1.0:
        parts *= scale
    return parts.view(np.complex128).reshape(shape)


def _random(arr, dtype, device, requires_grad, name: str = "") -> Tensor:
    dt = _dtypes.as_dtype(dtype) if dtype is not None else _dtypes.default_float
    kind = np.dtype(dt).kind
    if kind != "f" and not (kind == "c" and name in ("rand", "randn", "normal", "uniform")):
        raise DTypeError(f"random floats cannot have dtype {np.dtype(dt).name} (use "
                        "tl.randint for integers)")
    return _place(np.asarray(arr).astype(dt, copy=False), device, requires_grad)


def rand(*size, generator: Generator | None = None, dtype=None, device=None,
         requires_grad: bool = False, **kw) -> Tensor:
    """Random values drawn uniformly from [0, 1) (``torch.rand``).

    Args:
        *size: the shape, as ints (``tl.rand(2, 3)``), one sequence (``tl.rand((2, 3))``)
            or ``size=(2, 3)``.
        generator: a ``tl.Generator`` to draw from instead of the global one (seeded by
            ``tl.manual_seed``).
        dtype: a floating or complex dtype (complex: real and imaginary parts each
            uniform on [0, 1), as PyTorch); the default float dtype (float32) unless given
            (integer dtypes are refused: use :func:`randint`).
        device: where the tensor lives; ``requires_grad`` makes it a leaf that needs a
            gradient.

    The stream is tensorlib's (NumPy's PCG64), not PyTorch's: the same seed gives other
    values than ``torch.rand``.

    >>> x = tl.rand(2, 3)
    >>> x.shape, x.dtype == tl.float32, bool(((x >= 0) & (x < 1)).all())
    ((2, 3), True, True)
    """
    shape, *dyn = _drawn(_size_kw("rand", size, kw))
    z = _complex_draw("rand", rng(generator).random, shape, dtype)
    t = _random(rng(generator).random(shape) if z is None else z, dtype, device,
                requires_grad, "rand")
    return _traced(t, "rand", {}, generator, *dyn)


def randn(*size, generator: Generator | None = None, dtype=None, device=None,
          requires_grad: bool = False, **kw) -> Tensor:
    """Random values drawn from the standard normal distribution N(0, 1)
    (``torch.randn``).

    Args:
        *size: the shape, as ints (``tl.randn(2, 3)``), one sequence
            (``tl.randn((2, 3))``) or ``size=(2, 3)`` (d2l's spelling).
        generator: a ``tl.Generator`` to draw from instead of the global one (seeded by
            ``tl.manual_seed``).
        dtype: a floating or complex dtype (complex: real and imaginary parts each
            N(0, 1/2), so ``E|z|^2 = 1``, as PyTorch); the default float dtype (float32)
            unless given.
        device: where the tensor lives; ``requires_grad`` makes it a leaf that needs a
            gradient, as for weights: ``w = tl.randn(3, 4, requires_grad=True)``.

    The stream is tensorlib's (NumPy's PCG64), not PyTorch's: the same seed gives other
    values than ``torch.randn``.

    >>> w = tl.randn(3, 4, requires_grad=True)
    >>> w.shape, w.requires_grad
    ((3, 4), True)
    """
    shape, *dyn = _drawn(_size_kw("randn", size, kw))
    r = rng(generator)
    z = _complex_draw("randn", r.standard_normal, shape, dtype, np.sqrt(0.5))
    t = _random(r.standard_normal(shape, dtype=np.float64) if z is None else z, dtype,
                device, requires_grad, "randn")
    return _traced(t, "randn", {}, generator, *dyn)


def randint(low: int | None = None, high: int | None = None, size: Sequence[int] = (),
            generator=None, dtype=None, device=None) -> Tensor:
    """Integers in [low, high) (or [0, low) with one bound); ``randint(10, (3,))`` is
    ``randint(0, 10, (3,))``, and ``randint(high=10, size=(3,))`` too, as PyTorch."""
    if isinstance(high, (tuple, list)):
        if size != ():
            raise TypeError("randint: size given twice")
        high, size = None, high
    if low is None and high is None:
        raise TypeError("randint() missing the upper bound: randint(high, size) or "
                        "randint(low, high, size)")
    if high is None:
        low, high = 0, low
    elif low is None:
        low = 0
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    shape, *dyn = _drawn(tuple(size))
    arr = rng(generator).integers(low, high, size=shape)
    t = _place(arr.astype(_dtypes.as_dtype(dtype) if dtype else np.int64), device, False)
    return _traced(t, "randint", {"low": int(low), "high": int(high)}, generator, *dyn)


def normal(mean: float = 0.0, std: float = 1.0, size: Sequence[int] = (), generator=None,
           dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Normal draws with mean ``mean`` and standard deviation ``std``; ``size`` is a tuple
    (the default ``()`` gives a 0-d tensor). A complex ``dtype`` draws each part from
    N(``mean``, ``std``**2 / 2), as PyTorch's.

    As PyTorch's overloads, ``mean`` and/or ``std`` may be tensors: one draw per element of
    their broadcast shape (``size`` not given), with their float dtype and device.
    PyTorch's result is not differentiable in them (their gradient is zero); here it is
    detached. Use ``mean + std * tl.randn_like(mean)`` for a reparameterized draw.

    >>> a = tl.normal(mu, 0.1)                  # exploration noise around mu, mu's shape
    """
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        return _normal_elementwise(mean, std, size, generator, dtype, device, requires_grad)
    if std < 0:
        raise ValueError(f"normal: std must be non-negative, got {std}")
    shape, *dyn = _drawn(tuple(size))
    r = rng(generator)
    # complex: both parts N(mean, std^2 / 2), so E|z - mean(1 + i)|^2 = std^2, as PyTorch's
    z = _complex_draw("normal", lambda s: r.normal(mean, std * np.sqrt(0.5), s), shape, dtype)
    t = _random(r.normal(mean, std, shape) if z is None else z, dtype, device, requires_grad,
                "normal")
    return _traced(t, "normal", {"mean": float(mean), "std": float(std)}, generator, *dyn)


def _normal_elementwise(mean, std, size, generator, dtype, device, requires_grad) -> Tensor:
    """``normal(mean, std)`` with a tensor mean and/or std (PyTorch's tensor overloads)."""
    if tuple(size) != ():
        raise TypeError("normal: size cannot be given with a tensor mean or std (the draw "
                        "has their broadcast shape)")
    if dtype is not None or device is not None or requires_grad:
        raise TypeError("normal: dtype, device and requires_grad cannot be given with a "
                        "tensor mean or std (the draw takes theirs)")
    ts = [t for t in (mean, std) if isinstance(t, Tensor)]
    for t in ts:
        if t.dtype.kind != "f":
            raise TypeError(f"normal: a tensor mean or std must be floating point, got "
                            f"{t.dtype}")
    if len(ts) == 2 and ts[0].device != ts[1].device:
        raise ValueError(f"normal: mean is on {ts[0].device}, std on {ts[1].device}")
    if isinstance(std, Tensor):
        std = std.detach()
        if state.tracer is None:       # values cannot be read while capturing a graph
            s = std._data
            if not bool((s >= 0).all()):
                raise ValueError("normal: std must be non-negative (and not NaN)")
    elif not std >= 0:
        raise ValueError(f"normal: std must be non-negative, got {std}")
    mean = mean.detach() if isinstance(mean, Tensor) else float(mean)
    std = std if isinstance(std, Tensor) else float(std)
    dt = np.result_type(*[t.dtype for t in ts])
    from .ops._util import broadcast_shapes     # keeps the sizes that follow a None dim
    shape = broadcast_shapes("normal", *[tuple(t.shape) for t in ts])
    eps = randn(*shape, generator=generator, dtype=dt, device=ts[0].device)
    return eps * std + mean


def uniform(low: float = 0.0, high: float = 1.0, size: Sequence[int] = (), generator=None,
            dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform on [``low``, ``high``); ``size`` is a tuple (the default ``()`` gives a 0-d
    tensor). A complex ``dtype`` draws both parts so, as PyTorch's ``uniform_``."""
    if high < low:
        raise ValueError(f"uniform: high ({high}) must be >= low ({low})")
    shape, *dyn = _drawn(tuple(size))
    r = rng(generator)
    z = _complex_draw("uniform", lambda s: r.uniform(low, high, s), shape, dtype)   # both parts
    t = _random(r.uniform(low, high, shape) if z is None else z, dtype, device, requires_grad,
                "uniform")
    return _traced(t, "uniform", {"low": float(low), "high": float(high)}, generator, *dyn)


def randperm(n: int, generator=None, device=None, dtype=None,
             requires_grad: bool = False) -> Tensor:
    """A random permutation of 0 .. n-1, as int64 (or ``dtype``)."""
    if int(n) < 0:
        raise ValueError(f"randperm: negative dimension {n}")
    dt = _dtypes.as_dtype(dtype) if dtype is not None else _dtypes.int64
    t = _place(rng(generator).permutation(n).astype(dt), device, requires_grad)
    return _traced(t, "randperm", {"n": int(n)}, generator)


def _traced(t: Tensor, dist: str, params: dict, generator, sizes=(), srcs=()) -> Tensor:
    """Under graph capture, a random draw becomes a node that draws anew on every run (of
    the size that ``sizes`` computes from ``srcs``' dims, where given: see ``_drawn``)."""
    tracer = state.tracer
    if tracer is not None:
        tracer.on_random(t, dist, params, generator, sizes, srcs)
    return t
