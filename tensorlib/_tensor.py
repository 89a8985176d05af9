"""The Tensor: a backend array plus what autograd needs to know about it."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _dtypes
from ._core import TensorBase, make_tensor, set_nonleaf_grad_read, set_tensor_class
from ._device import CPU, Device
from .autograd.mode import state
from .errors import InputError


class Size(int):
    """``x.size``: the element count (an int, as NumPy's ``a.size``) that is also callable
    as PyTorch's ``x.size()``, which gives the shape, and ``x.size(d)``, the length of dim
    ``d`` (negative counts from the end). Arithmetic on it gives plain ints; it prints,
    compares, hashes and pickles as its int value."""

    def __new__(cls, n: int, shape: tuple) -> Size:
        self = super().__new__(cls, n)
        self._shape = shape
        return self

    def __call__(self, dim: int | None = None):
        if dim is None:
            return tuple(self._shape)
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError(f"size: dim must be an int, got {dim!r}")
        nd = len(self._shape)
        if not -nd <= dim < nd:
            raise IndexError(f"size: dim {dim} is out of range for a tensor of {nd} "
                             "dimensions")
        return self._shape[dim]

    def __reduce__(self):
        return int, (int(self),)

    __repr__ = int.__repr__
    __str__ = int.__repr__


_int_new = int.__new__


# NumPy's operator ufuncs -> (Tensor's operator, the one to call when the Tensor is on the
# right): ``array + t`` reaches Tensor.__array_ufunc__ as np.add(array, t)
_OPERATOR_UFUNCS = {
    **{u: (o, "r" + o) for u, o in (
        ("add", "add"), ("subtract", "sub"), ("multiply", "mul"), ("true_divide", "truediv"),
        ("divide", "truediv"), ("floor_divide", "floordiv"), ("remainder", "mod"),
        ("power", "pow"), ("matmul", "matmul"), ("bitwise_and", "and"), ("bitwise_or", "or"),
        ("bitwise_xor", "xor"), ("left_shift", "lshift"), ("right_shift", "rshift"))},
    "equal": ("eq", "eq"), "not_equal": ("ne", "ne"), "less": ("lt", "gt"),
    "less_equal": ("le", "ge"), "greater": ("gt", "lt"), "greater_equal": ("ge", "le"),
}


class Tensor(TensorBase):
    """An n-dimensional array on a device, recorded on the tape when it needs a grad.

    >>> x = tl.tensor([[1., 2.]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward(); x.grad
    tensor([[2., 4.]])
    """

    # storage and autograd slots live in the Cython base (_core.TensorBase)
    __slots__ = ()

    __array_priority__ = 1000  # make ndarray + Tensor defer to Tensor.__radd__

    def __init__(self, *data: Any, dtype=None, device=None, requires_grad: bool = False,
                 **kwargs: Any):
        """``Tensor(data)`` as ``torch.Tensor(data)``: the default float dtype (float32)
        unless ``dtype`` is given, whatever the data's (``tl.tensor`` keeps it);
        ``Tensor(2, 3)`` is a (2, 3) tensor of zeros (PyTorch's is uninitialised).

        A subclass whose ``__new__`` returned a ready tensor (``x.as_subclass(cls)``,
        ``Tensor._make_subclass``) is left as ``__new__`` made it, as PyTorch's: the
        arguments (also ``__new__``'s own keywords, such as a ``meta=``) are not read again."""
        if self._data is not None and type(self) is not Tensor:
            return
        if kwargs:
            raise TypeError(f"Tensor(): unexpected keyword argument {next(iter(kwargs))!r}")
        from .creation import _to_array
        sizes = len(data) != 1 or (isinstance(data[0], (int, np.integer))
                                   and not isinstance(data[0], (bool, np.bool_)))
        # a tensor argument keeps its dtype, as torch.Tensor(t) does
        dt = (dtype if dtype is not None else data[0].dtype
              if len(data) == 1 and isinstance(data[0], TensorBase) else _dtypes.default_float)
        if sizes:
            if not all(isinstance(d, (int, np.integer)) for d in data):
                raise TypeError(f"Tensor(): give data, or sizes as ints, got {data!r}")
            arr = np.zeros(tuple(int(d) for d in data) if data else (0,), _dtypes.as_dtype(dt))
        else:
            arr = _to_array(data[0], dt)
        dev = Device(device) if device is not None else CPU
        if dev.type != "cpu":
            from .backends import to_device
            arr = to_device(arr, dev)
        self._init_leaf(arr, dev, requires_grad)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        from . import _subclass      # (its ops keep the subclass unless it opts out)
        _subclass.on_new_class(cls)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """PyTorch's default: run ``func(*args, **kwargs)`` without dispatch and return its
        tensors as ``cls`` instances (NotImplemented when a type in ``types`` is not a base
        of ``cls``). A subclass overrides it as a classmethod and calls
        ``super().__torch_function__(func, types, args, kwargs)`` for this behaviour; setting
        it to ``tl._C._disabled_torch_function_impl`` makes ops give plain tensors, as
        ``nn.Parameter``'s."""
        from ._subclass import default_torch_function
        return default_torch_function(cls, func, types, args, kwargs)

    def as_subclass(self, cls: type) -> Tensor:
        """This tensor as an instance of ``cls`` (a Tensor subclass), as PyTorch's: the same
        storage and version counter, and on the tape (its gradient reaches ``self``) when
        ``self`` requires grad; ``cls.__init__`` is not called."""
        from ._subclass import as_subclass
        return as_subclass(self, cls)

    @staticmethod
    def _make_subclass(cls: type, data: Tensor, require_grad: bool = False) -> Tensor:
        """A ``cls`` instance sharing ``data``'s storage, detached, a leaf that requires grad
        when ``require_grad`` (PyTorch's ``Tensor._make_subclass``, for ``__new__``)."""
        from ._subclass import make_subclass
        return make_subclass(cls, data, require_grad)

    def _init_leaf(self, data, device: Device, requires_grad: bool) -> None:
        """Fill the slots of a new leaf tensor around ``data`` (no copy)."""
        self._data = data
        self._device = device
        self._rg = False
        self._node = None
        self._idx = 0
        self._version = [0]
        self.grad = None
        self._hooks = None
        if requires_grad:
            self.requires_grad = True

    # --- metadata -------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        tracer = state.tracer
        if tracer is not None:   # capture: sizes of None dims are marked (reshape keeps them)
            s = tracer.traced_shape(self)
            if s is not None:
                return s
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> Size:
        """The element count, as NumPy's ``a.size``: an int that can also be called as
        PyTorch's method, ``x.size()`` (the shape) and ``x.size(d)`` (the length of dim d)."""
        d = self._data
        n = _int_new(Size, d.size)
        # under capture x.size(0) of a None dim follows it, as x.shape[0] does
        n._shape = d.shape if state.tracer is None else self.shape
        return n

    def numel(self) -> int:
        return self._data.size

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def device(self) -> Device:
        return self._device

    @property
    def is_cuda(self) -> bool:
        """Whether the tensor lives on a CUDA device (PyTorch's ``is_cuda``)."""
        return self._device.type == "cuda"

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    @property
    def data(self) -> Tensor:
        """A detached Tensor sharing this one's storage; assigning one replaces the
        storage (``p.data = new``, as PyTorch: no autograd record, same shape not required).
        Unlike ``detach()`` it has a version counter of its own, as PyTorch's: in-place
        changes through it (``p.data.clamp_(-c, c)``) are hidden from autograd's check of
        saved tensors."""
        return _wrap(self._data, self._device, False, None, 0)

    @data.setter
    def data(self, value) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data: expected a Tensor, got {type(value).__name__}")
        if value._device != self._device:
            raise ValueError(f"data: the new value is on {value._device}, this tensor on "
                             f"{self._device}")
        if self._rg and value._data.dtype.kind not in "fc":
            # as PyTorch: an integer tensor that requires grad would get no gradient
            raise RuntimeError(f"data: a tensor that requires grad needs floating-point data, "
                               f"got {value._data.dtype}; convert it first "
                               f"(.data = new.to({self._data.dtype}))")
        old = self._data
        self._data = value._data
        self._version[0] += 1
        if state.tracer is not None:    # a write of the new value, replayed into the storage
            state.tracer.on_set_data(self, value, old)

    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        value = bool(value)
        if self._node is not None and not value:
            raise RuntimeError("requires_grad can only be changed on leaf tensors; "
                               "use .detach() to get a tensor without gradient history")
        if value and self._data.dtype.kind not in "fc":
            # RuntimeError, as PyTorch's ("Only Tensors of floating point ... can require
            # gradients"), so ports' except clauses catch it
            raise RuntimeError(f"only floating-point and complex tensors can require "
                               f"gradients, got dtype {self._data.dtype}")
        if value and self.is_inference() and not getattr(state, "inference", False):
            # as PyTorch's, at once (it failed later, at the first op that saved it)
            raise RuntimeError("Setting requires_grad=True on inference tensor outside "
                               "InferenceMode is not allowed; .clone() it first")
        self._rg = value

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        """True for a tensor no recorded op made, and for every tensor that does not require
        grad (an op's integer output, such as cummax's indices), as PyTorch's."""
        return self._node is None or not self._rg

    @property
    def grad_fn(self):
        """The tape node that made this tensor (None for a leaf or a tensor that does not
        require grad)."""
        return self._node if self._rg else None

    @property
    def _version_counter(self) -> int:
        return self._version[0]

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        if state.tracer is not None:        # a None dim's size becomes a plain int
            from .graph.tracer import note_split
            note_split(self, 0, "len()")
        return self._data.shape[0]

    # --- values into Python --------------------------------------------
    def _read(self, what: str) -> None:
        tracer = state.tracer
        if tracer is not None:
            tracer.on_read(self, what)

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The values as a NumPy array (shares memory on the CPU; a copy off the GPU).
        ``force`` is PyTorch's and changes nothing: tensorlib hands out the values of a
        tensor that requires grad too."""
        self._read(".numpy()")
        return self._host()

    def _host(self) -> np.ndarray:
        d = self._data
        return d if isinstance(d, np.ndarray) else d.get()

    def __array__(self, dtype=None, copy=None):
        # NumPy 2's protocol: copy=True (np.array(t)) must hand over new memory, as
        # PyTorch's; None (np.asarray(t)) may share it; False must share it or raise
        self._read("np.asarray()")
        a = self._host()
        if dtype is not None and a.dtype != np.dtype(dtype):
            if copy is False:
                raise ValueError(f"np.asarray(tensor, dtype={np.dtype(dtype)}, copy=False): "
                                 f"the tensor holds {a.dtype}, so a copy is needed")
            return a.astype(dtype)
        if copy and a is self._data:
            return a.copy()
        return a

    def is_inference(self) -> bool:
        """Whether an op made this tensor inside ``tl.inference_mode()`` (PyTorch's)."""
        from .autograd.mode import InferenceVersion
        return type(self._version) is InferenceVersion

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """``np.exp(t)``, ``np.add(t, a)``: tensorlib's op for the ufunc, so the result is a
        Tensor on the tape (as PyTorch). Other ufunc calls (``out=``, ``.reduce``, a ufunc
        tensorlib lacks) run NumPy on the values, and refuse a tensor that requires grad
        (its gradient would be lost silently)."""
        if method == "__call__" and not kwargs:
            ops = _OPERATOR_UFUNCS.get(ufunc.__name__)
            if ops is not None and len(inputs) == 2:
                # ndarray (op) Tensor: the Tensor's operator, as with __array_priority__
                a, b = inputs
                if isinstance(a, Tensor):
                    return getattr(a, f"__{ops[0]}__")(b)
                return getattr(b, f"__{ops[1]}__")(a)
            from .ops.elementwise import UFUNC_PUBLIC
            fn = UFUNC_PUBLIC.get(ufunc.__name__)
            if fn is not None and len(inputs) == ufunc.nin:
                return fn(*inputs)
        from .autograd.mode import state
        if state.grad_enabled and any(isinstance(x, Tensor) and x._rg for x in inputs):
            call = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}")
            raise TypeError(f"{call} on a tensor that requires grad would lose its gradient; "
                            f"use tensorlib's function, or .detach() the tensor first")
        arrays = [x.numpy() if isinstance(x, Tensor) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(o.numpy() if isinstance(o, Tensor) else o
                                  for o in kwargs["out"])
        return getattr(ufunc, method)(*arrays, **kwargs)

    def item(self) -> bool | int | float | complex:
        """The value of a one-element tensor (any shape with one element) as a Python number
        (``float``, ``int``, ``bool`` or ``complex`` by dtype), as ``torch.Tensor.item``;
        copies it to the host. Use it to log a loss without keeping its graph alive; more than one
        element raises (``tolist()`` gives them all).

        >>> tl.tensor([[1.5]]).item()
        1.5
        >>> tl.tensor(3).item()
        3
        """
        self._read(".item()")
        if self._data.size != 1:
            raise InputError(f"item(): only one-element tensors can be converted to a Python "
                             f"scalar, this one has shape {self.shape}")
        return self._host().item()

    def tolist(self):
        self._read(".tolist()")
        return self._host().tolist()

    def __bool__(self) -> bool:
        self._read("bool()")
        if self._data.size != 1:
            raise InputError(f"the truth value of a tensor with {self._data.size} elements is "
                             "ambiguous; use .any() or .all()")
        return bool(self._host())

    def __float__(self) -> float:
        self._read("float()")
        return float(_real_item(self, "float"))

    def __int__(self) -> int:
        self._read("int()")
        return int(_real_item(self, "int"))

    def __complex__(self) -> complex:
        """``complex(t)`` of a one-element tensor of any dtype, as PyTorch."""
        self._read("complex()")
        return complex(self.item())

    def __index__(self) -> int:
        self._read("index")
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __hash__(self) -> int:
        return id(self)

    # --- DLPack --------------------------------------------------------
    def __dlpack__(self, *args, **kwargs):
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    # --- autograd --------------------------------------------------------
    def backward(self, gradient: Tensor | None = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``gradient``: d(loss)/d(self), of self's shape; required unless self has one
        element. ``retain_graph``: keep the tape for another backward pass (default:
        ``create_graph``). ``create_graph``: record the backward pass itself, so the
        gradients can be differentiated again. ``inputs``: accumulate only into these
        tensors (leaves or not). Gradients add up over calls: zero them between steps
        (``optimizer.zero_grad()``).

        >>> w = tl.tensor([1.0, 2.0], requires_grad=True)
        >>> (w * w).sum().backward()
        >>> w.grad
        tensor([2., 4.])
        """
        _backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph,
                  inputs=inputs)

    def detach(self) -> Tensor:
        """A new tensor with the same values and storage, cut off from autograd
        (``torch.Tensor.detach``).

        The result has no gradient history and ``requires_grad=False``; it shares
        ``self``'s memory and version counter, as PyTorch's, so in-place changes to either
        show in both (and autograd still notices when a value it saved was changed). Use
        it to read values without building a graph (``loss.detach()`` for logging) or to
        stop gradients flowing into part of a computation; ``.detach().clone()`` gives
        an independent copy.

        >>> w = tl.ones(2, requires_grad=True)
        >>> d = (w * 3).detach()
        >>> d, d.requires_grad
        (tensor([3., 3.]), False)
        """
        t = _wrap(self._data, self._device, False, None, 0)
        t._version = self._version
        if state.fwd_ad is not None:      # a dual level: the detached tensor has no tangent
            from .autograd.forward_ad import on_detach
            return on_detach(self, t)
        return t

    def detach_(self) -> Tensor:
        """Detach in place (PyTorch's ``detach_``): no history, and no forward-AD tangent."""
        if self._base is not None:      # the base would still see the view's history
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self._node = None
        self._rg = False
        if state.fwd_ad is not None:
            from .autograd.forward_ad import on_detach_
            on_detach_(self)
        return self

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a non-None
        return value replaces the gradient and must be a Tensor of its shape, dtype and
        device (else backward raises naming the hook, as PyTorch). Returns a handle with
        ``remove()``."""
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            lst = self._hooks
        else:
            node = self._node
            if node.hooks is None:
                node.hooks = {}
            lst = node.hooks.setdefault(self._idx, [])
        lst.append(hook)
        return _HookHandle(lst, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on this leaf after a backward pass has added into its
        ``.grad`` (an optimizer step per parameter as soon as its gradient is ready); it
        must return None, as PyTorch. Returns a handle with ``remove()``."""
        if not self._rg or self._node is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only a leaf tensor that "
                               "requires grad has an accumulated .grad to hook")
        from .autograd.engine import PostAccumulateHook
        if self._hooks is None:
            self._hooks = []
        entry = PostAccumulateHook(hook)
        self._hooks.append(entry)
        return _HookHandle(self._hooks, entry)

    @property
    def retains_grad(self) -> bool:
        """Whether :meth:`retain_grad` was called on this non-leaf tensor."""
        node = self._node
        return bool(node is not None and node.retained and self._idx in node.retained
                    and node.retained[self._idx]() is self)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        if self._node is None:
            return
        import weakref
        node = self._node
        if node.retained is None:
            node.retained = {}
        node.retained[self._idx] = weakref.ref(self)

    # --- devices -------------------------------------------------------
    def to(self, device=None, dtype=None, non_blocking: bool = False, copy: bool = False,
           memory_format=None) -> Tensor:
        """Copy to another device and/or cast; differentiable.

        As in PyTorch the first argument may also be a dtype or a tensor (whose device and
        dtype are taken): ``x.to("cuda")``, ``x.to(tl.float64)``, ``x.to("cuda", tl.float16)``,
        ``x.to(other)``. ``non_blocking`` is accepted for PyTorch's signature: copies
        complete before the next op reads them. ``memory_format`` as PyTorch's: the default
        ``tl.preserve_format`` keeps the layout; ``tl.contiguous_format``, ``tl.channels_last``
        (4-D) or ``tl.channels_last_3d`` (5-D) lays the result out so, returning ``x`` itself
        when nothing else changes and its strides already suggest that format.
        """
        if isinstance(device, Tensor):
            device, dtype = device._device, dtype if dtype is not None else device.dtype
        elif device is not None and not isinstance(device, Device) and _is_dtype(device):
            if dtype is not None:
                raise TypeError(f"to: got two dtypes, {device!r} and {dtype!r}")
            device, dtype = None, device
        t = self
        if dtype is not None:
            t = t.astype(dtype)
        if device is not None:
            dev = Device(device)
            if dev is not t._device:
                from .ops.shape import to_device
                t = to_device(t, dev)
        if memory_format is not None:
            from ._tensor_methods import tensor_to_format
            t = tensor_to_format(self, t, memory_format, copy)
        if copy and t is self:
            t = self.clone()
        return t

    def cpu(self, memory_format=None) -> Tensor:
        return self.to("cpu", memory_format=memory_format)

    def cuda(self, device=None, non_blocking: bool = False, memory_format=None) -> Tensor:
        """This tensor on CUDA device ``device`` (an index, 'cuda:N' or a Device; 0 when None)."""
        if device is None:
            return self.to("cuda:0", memory_format=memory_format)
        return self.to(device if isinstance(device, (Device, str)) else f"cuda:{int(device)}",
                       memory_format=memory_format)

    # --- printing ------------------------------------------------------
    def __repr__(self) -> str:
        a = self._host()
        cls = type(self)
        # a user's subclass shows its name, as PyTorch's ("MyTensor([1., 2.])")
        prefix = ("tensor(" if cls is Tensor or _internal(cls)
                  else f"{cls.__name__}(")
        indent = len(prefix)
        suffixes = []
        if self._device is not CPU:
            suffixes.append(f"device='{self._device}'")
        default = _dtypes.default_float
        if a.size == 0:
            if a.ndim != 1:
                suffixes.append(f"size={tuple(a.shape)}")
            if a.dtype != default:          # PyTorch: only the default float goes unsaid
                suffixes.append(f"dtype={a.dtype}")
            body = "[]"
        else:
            if not PRINT_OPTIONS["edgeitems"]:
                suffixes.append(f"size={tuple(a.shape)}")
            cdefault = np.complex128 if default == np.float64 else np.complex64
            if a.dtype not in (default, cdefault, np.int64, np.bool_):
                suffixes.append(f"dtype={a.dtype}")
            body = _body_str(a, indent)
        if self.grad_fn is not None:
            suffixes.append(f"grad_fn={self._node!r}")
        elif self._rg:
            suffixes.append("requires_grad=True")
        return _with_suffixes(prefix + body, suffixes, indent)

    def __str__(self) -> str:
        return type(self).__repr__(self)     # a subclass's own __repr__, as PyTorch's

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a one-element tensor's value, and ``f"{loss}"`` a 0-d
        tensor's (its Python number, not ``tensor(...)``), as PyTorch."""
        if self._data.size == 1 and (spec or self._data.ndim == 0):
            return format(self.item(), spec)
        if spec:
            raise TypeError(f"unsupported format string {spec!r} for a tensor of shape "
                            f"{tuple(self.shape)} (only one-element tensors take one)")
        return str(self)


# How tensors print (``tl.set_printoptions``), PyTorch's options and layout
PRINT_OPTIONS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80,
                 "sci_mode": None}
_PROFILES = {"default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
             "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
             "full": dict(precision=4, threshold=2**63 - 1, edgeitems=3, linewidth=80)}


class _Formatter:
    """One column width and notation for every element, chosen as PyTorch's ``_Formatter``
    (``torch/_tensor_str.py``) so the same values print the same: whole floats as ``1.``,
    scientific when the nonzero magnitudes span more than 1000x, pass 1e8 or go under
    1e-4 (unless ``sci_mode`` says otherwise), else ``precision`` fixed digits."""

    def __init__(self, a: np.ndarray):
        self.floating = a.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.width = True, False, 1
        self.precision = p = PRINT_OPTIONS["precision"]
        if not self.floating:
            if a.size:
                if a.dtype.kind == "b":
                    self.width = 5 if not a.all() else 4
                else:
                    self.width = max(len(str(a.max())), len(str(a.min())))
            return
        v = a.reshape(-1).astype(np.float64)
        nz = v[np.isfinite(v) & (v != 0)]
        if nz.size == 0:
            return
        mag = np.abs(nz)
        lo, hi = float(mag.min()), float(mag.max())
        self.int_mode = bool((nz == np.ceil(nz)).all())
        sci = PRINT_OPTIONS["sci_mode"]
        if sci is None:
            sci = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        self.sci_mode = bool(sci)
        if self.sci_mode:
            fmt = f"{{:.{p}e}}"
        elif self.int_mode:
            fmt = "{:.0f}."
        else:
            fmt = f"{{:.{p}f}}"
        # the widest string is at an extreme of the positives or of the negatives (the
        # exponent's digit count grows at both ends of the magnitudes)
        pos, neg = nz[nz > 0], nz[nz < 0]
        ends = [float(f(s)) for s in (pos, neg) if s.size for f in (np.min, np.max)]
        self.width = max(len(fmt.format(x)) for x in ends)

    def format(self, value) -> str:
        if self.floating:
            if self.sci_mode:
                s = f"{value:{self.width}.{self.precision}e}"
            elif self.int_mode:
                s = f"{value:.0f}"
                if math.isfinite(value):
                    s += "."
            else:
                s = f"{value:.{self.precision}f}"
        else:
            s = f"{value}"
        return s.rjust(self.width)


def _summarized(a: np.ndarray, edge: int) -> np.ndarray:
    """The elements a summarized print shows (``edge`` at each end of every long dim): the
    values that decide the formatter, as PyTorch's ``get_summarized_data``."""
    for ax, n in enumerate(a.shape):
        if n > 2 * edge:
            a = np.concatenate((a[(slice(None),) * ax + (slice(0, edge),)],
                                a[(slice(None),) * ax + (slice(n - edge, n),)]), axis=ax)
    return a


def _element(val, f1: _Formatter, f2: _Formatter | None) -> str:
    if f2 is None:
        return f1.format(val)
    imag = (f2.format(val.imag) + "j").lstrip()
    return f1.format(val.real) + ("" if imag[0] in "+-" else "+") + imag


def _nested_str(a: np.ndarray, indent: int, summarize: bool, f1: _Formatter,
                f2: _Formatter | None) -> str:
    """PyTorch's ``_tensor_str_with_formatter``: rows wrapped at ``linewidth``, one blank
    line more between blocks for each dim above the second."""
    edge = PRINT_OPTIONS["edgeitems"]
    if a.ndim == 0:
        return _element(a.item(), f1, f2)
    n = a.shape[0]
    if a.ndim == 1:
        per_elem = f1.width + 2 + (f2.width + 1 if f2 is not None else 0)
        per_line = max(1, (PRINT_OPTIONS["linewidth"] - indent) // per_elem)
        if summarize and not edge:
            data = ["..."]
        elif summarize and n > 2 * edge:
            data = ([_element(v, f1, f2) for v in a[:edge].tolist()] + [" ..."]
                    + [_element(v, f1, f2) for v in a[n - edge:].tolist()])
        else:
            data = [_element(v, f1, f2) for v in a.tolist()]
        lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    if summarize and n > 2 * edge:
        rows = ([_nested_str(a[i], indent + 1, summarize, f1, f2) for i in range(edge)]
                + ["..."]
                + [_nested_str(a[i], indent + 1, summarize, f1, f2)
                   for i in range(n - edge, n)])
    else:
        rows = [_nested_str(a[i], indent + 1, summarize, f1, f2) for i in range(n)]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _body_str(a: np.ndarray, indent: int) -> str:
    """The ``[...]`` part of a non-empty tensor's repr, as PyTorch's ``_tensor_str``."""
    summarize = a.size > PRINT_OPTIONS["threshold"]
    shown = _summarized(a, PRINT_OPTIONS["edgeitems"]) if summarize else a
    if a.dtype.kind == "c":
        return _nested_str(a, indent, summarize, _Formatter(shown.real),
                           _Formatter(shown.imag))
    return _nested_str(a, indent, summarize, _Formatter(shown), None)


def _with_suffixes(body: str, suffixes: list[str], indent: int) -> str:
    """``body`` then ``, suffix`` for each, a suffix that would pass ``linewidth`` on a new
    line (PyTorch's ``_add_suffixes``)."""
    out = [body]
    last = len(body) - body.rfind("\n") + 1
    for s in suffixes:
        if last + len(s) + 2 > PRINT_OPTIONS["linewidth"]:
            out.append(",\n" + " " * indent + s)
            last = indent + len(s)
        else:
            out.append(", " + s)
            last += len(s) + 2
    return "".join(out) + ")"


def set_printoptions(precision: int | None = None, threshold: int | None = None,
                     edgeitems: int | None = None, linewidth: int | None = None,
                     profile: str | None = None, sci_mode: bool | None = None) -> None:
    """How tensors print, as PyTorch's ``set_printoptions``: digits after the point, the
    element count above which the middle is elided, the items kept at each edge, the line
    width, a ``profile`` ('default', 'short', 'full') and ``sci_mode`` (True: always
    scientific; False: never; None: PyTorch's choice, scientific when the nonzero
    magnitudes span more than 1000x, pass 1e8 or go under 1e-4)."""
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(_PROFILES)}, "
                             f"got {profile!r}")
        PRINT_OPTIONS.update(_PROFILES[profile])
    for k, v in (("precision", precision), ("threshold", threshold),
                 ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if v is not None:
            if v < 0:
                raise ValueError(f"set_printoptions: {k} must not be negative, got {v}")
            # threshold=float('inf'), PyTorch's "print everything" idiom
            PRINT_OPTIONS[k] = 2**63 - 1 if v == float("inf") else int(v)
    PRINT_OPTIONS["sci_mode"] = sci_mode


class _HookHandle:
    def __init__(self, lst, hook):
        self._lst = lst
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._lst:
            self._lst.remove(self._hook)


_wrap = make_tensor  # _wrap(data, device, requires_grad, node, output_index)
set_tensor_class(Tensor)


def _real_item(t: Tensor, to: str):
    """``t.item()`` for ``float()``/``int()``: a complex value only when its imaginary part
    is zero, as PyTorch (which refuses to drop a nonzero one)."""
    v = t.item()
    if isinstance(v, complex):
        if v.imag != 0:
            raise RuntimeError(f"{to}(): cannot convert the complex value {v} to {to} (its "
                               "imaginary part is not zero); take .real or .abs() first")
        v = v.real
    return v


def _internal(cls: type) -> bool:
    """Whether ``cls`` is one of tensorlib's own Tensor subclasses."""
    mod = cls.__module__ or ""
    return mod == "tensorlib" or mod.startswith("tensorlib.")


def _is_dtype(obj) -> bool:
    """Whether ``obj`` names a dtype rather than a device (``np.float32``, ``"float16"``)."""
    if isinstance(obj, str):
        if obj.split(":")[0] in ("cpu", "cuda"):
            return False
        if obj == "bfloat16":           # a dtype: astype says it is not supported
            return True
    elif _dtypes.torch_dtype_name(obj) is not None:     # torch.float16
        return True
    elif not isinstance(obj, (type, np.dtype)):
        return False
    try:
        np.dtype(obj)
    except TypeError:
        return False
    return True


def _backward(root, gradient, **kwargs) -> None:
    # bound on first use (autograd.engine imports this module): no import per backward()
    global _backward
    from .autograd.engine import backward as _backward
    _backward(root, gradient, **kwargs)


def _warn_nonleaf_grad(t: Tensor) -> None:
    import sys

    from ._warn import _PKG
    # only a user's read: the engine, capture and tracing look at .grad of any tensor
    if sys._getframe(1).f_code.co_filename.startswith(_PKG):
        return
    if not t.retains_grad:
        import warnings
        warnings.warn("The .grad attribute of a tensor that is not a leaf is being read: "
                      "backward() does not fill it (None). Call .retain_grad() on it before "
                      "backward() to keep its gradient, or read the leaf's .grad instead.",
                      UserWarning, stacklevel=2)


set_nonleaf_grad_read(_warn_nonleaf_grad)
