"""Lazy modules, as PyTorch's: layers whose input size (``in_features``, ``in_channels``,
``num_features``) is read from the first input. Until that first forward their parameters
are :class:`UninitializedParameter` (buffers :class:`UninitializedBuffer`); the first call
materializes them, initializes them as the ordinary layer does, and turns the module into
that layer (``LazyLinear`` becomes ``Linear``, see ``cls_to_become``).

Their parameters go to the device a ``.to(device)`` before the first call named, else the
default device (``tl.set_default_device``) when the module was built, as PyTorch's.

>>> net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
>>> net(tl.randn(2, 20)).shape           # dry run: the shapes are now known
(2, 10)
>>> net[0].weight.shape                  # then initialise, build the optimizer, train
(256, 20)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import _dtypes, creation
from .._device import CPU, Device, current_scope
from .._tensor import Tensor
from ..autograd.mode import no_grad
from .conv import (Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d)
from .linear import Linear, _positive
from .module import Module
from .normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d,
                            InstanceNorm2d)
from .parameter import Parameter

_USE_MSG = ("Attempted to use an uninitialized parameter in {}. This error happens when you "
            "are using a `LazyModule` or explicitly manipulating "
            "`UninitializedParameter` objects. When using LazyModules Call `forward` with a "
            "dummy batch to initialize the parameters before calling tensorlib functions")
_SHAPE_MSG = ("Can't access the shape of an uninitialized parameter or buffer. This error "
              "usually happens in `load_state_dict` when trying to load an uninitialized "
              "parameter into an initialized one. Call `forward` to initialize the "
              "parameters before accessing their attributes.")


class _Unmaterialized:
    """The storage of an uninitialized tensor: only a dtype. Reading its shape raises
    PyTorch's RuntimeError, anything else PyTorch's ValueError (so an op, ``tl.save``,
    ``numel()`` on it fail with a message that says to run a forward first)."""

    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    @property
    def shape(self):
        raise RuntimeError(_SHAPE_MSG)

    def astype(self, dtype, copy: bool = True) -> _Unmaterialized:
        return _Unmaterialized(dtype)     # Module.to(dtype=...) before the dry run

    def __getattr__(self, name: str):
        raise ValueError(_USE_MSG.format(name))

    def __array__(self, *args, **kwargs):
        raise ValueError(_USE_MSG.format("__array__"))


class UninitializedTensorMixin:
    """What the uninitialized parameter and buffer share: a dtype and device but no shape
    yet, until :meth:`materialize`."""

    __slots__ = ()
    cls_to_become: type
    _tl_uninitialized = True     # (graph capture runs a first call eagerly to materialise)

    def _init_uninitialized(self, requires_grad: bool, device, dtype) -> None:
        dt = _dtypes.as_dtype(dtype) if dtype is not None else _dtypes.default_float
        # the default device (set_default_device, ``with tl.device``) at construction, where
        # PyTorch's factory would have put it: the first forward materializes there
        dev = Device(device) if device is not None else (current_scope() or CPU)
        self._init_leaf(_Unmaterialized(dt), dev, requires_grad)

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give the tensor storage of ``shape`` (uninitialised values) on ``device`` with
        ``dtype`` (its own unless given), in place: it becomes a plain ``cls_to_become``
        (Parameter or Tensor), the same object, so an optimizer already holding it sees
        the real tensor."""
        dev = Device(device) if device is not None else self._device
        dt = _dtypes.as_dtype(dtype) if dtype is not None else self._data.dtype
        if isinstance(shape, int):
            shape = (shape,)
        self._data = creation.empty(tuple(shape), dtype=dt, device=dev)._data
        self._device = dev
        self._version[0] += 1
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise RuntimeError(_SHAPE_MSG)

    def detach(self):
        return self          # a state_dict of a lazy module holds the uninitialized tensors

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    __str__ = __repr__

    def __deepcopy__(self, memo):
        new = type(self)(requires_grad=self.requires_grad, device=self._device,
                         dtype=self._data.dtype)
        memo[id(self)] = new
        return new


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A parameter whose shape is not known yet (a lazy module's before its first forward).

    >>> p = nn.UninitializedParameter()
    >>> p.materialize((3, 4))                # now an ordinary Parameter
    """

    __slots__ = ()
    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device=None, dtype=None):
        self._init_uninitialized(requires_grad, device, dtype)


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer whose shape is not known yet (a lazy BatchNorm's running statistics)."""

    __slots__ = ()
    cls_to_become = Tensor

    def __init__(self, requires_grad: bool = False, device=None, dtype=None):
        self._init_uninitialized(requires_grad, device, dtype)


def is_lazy(t: Any) -> bool:
    """Whether ``t`` is an uninitialized parameter or buffer."""
    return isinstance(t, UninitializedTensorMixin)


def _infer_parameters(module: LazyModuleMixin, args: tuple, kwargs: dict):
    """The forward pre-hook: materialize from the first input, then become the ordinary
    class (PyTorch's ``_infer_parameters``)."""
    module.initialize_parameters(*args, **kwargs)
    if module.has_uninitialized_params():
        raise RuntimeError(f"module {module._get_name()} has not been fully initialized")
    module._lazy_hook.remove()
    del module.__dict__["_lazy_hook"]
    if module.cls_to_become is not None:
        module.__class__ = module.cls_to_become
    return None


class LazyModuleMixin:
    """The lazy protocol: ``initialize_parameters(*inputs)`` materializes the
    uninitialized tensors on the first forward, after which the module becomes
    ``cls_to_become``. ``load_state_dict`` on the lazy module itself materializes them with
    the checkpoint's shapes."""

    cls_to_become: type | None = None

    def _lazy_init(self) -> None:
        hook = self.register_forward_pre_hook(_infer_parameters, with_kwargs=True)
        object.__setattr__(self, "_lazy_hook", hook)

    def has_uninitialized_params(self) -> bool:
        """Whether any of this module's own parameters or buffers is uninitialized."""
        return any(is_lazy(t) for store in (self._parameters, self._buffers)
                   for t in store.values())

    def initialize_parameters(self, *args, **kwargs) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement "
                                  "initialize_parameters")

    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False):
        """As ``Module.load_state_dict``; uninitialized tensors first take the shapes of
        their entries in ``state_dict`` (PyTorch's lazy load hook)."""
        if isinstance(state_dict, dict):
            self._lazy_load_hook(state_dict, "")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _lazy_load_hook(self, state_dict: dict, prefix: str) -> None:
        """Materialize each uninitialized tensor that ``state_dict`` has an entry for (under
        ``prefix``) with that entry's shape (PyTorch's ``_lazy_load_hook``); a parent's
        ``Module.load_state_dict`` calls it for each lazy submodule."""
        with no_grad():
            for store in (self._parameters, self._buffers):
                for name, t in store.items():
                    v = state_dict.get(prefix + name)
                    if is_lazy(t) and v is not None and hasattr(v, "shape"):
                        t.materialize(tuple(v.shape))
            if not self.has_uninitialized_params():
                self._sizes_from_weights()

    def _sizes_from_weights(self) -> None:
        """Set the inferred size attribute from loaded weights (what the forward would
        infer)."""

    def _check_not_capturing(self) -> None:
        from .._state import state
        if state.tracer is not None:
            raise RuntimeError(f"{type(self).__name__}: run one eager forward (a dry run "
                               "with a sample batch) before capturing a graph, so the lazy "
                               "parameters exist outside the trace")


class LazyLinear(LazyModuleMixin, Linear):
    """``Linear`` whose ``in_features`` is the last dim of the first input.

    >>> fc = nn.LazyLinear(10)
    >>> fc(tl.randn(32, 784)).shape, type(fc).__name__
    ((32, 10), 'Linear')
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None):
        Module.__init__(self)
        self.in_features = 0
        self.out_features = _positive("out_features", "LazyLinear", out_features)
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self._lazy_init()

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:
        if self.has_uninitialized_params():
            self._check_not_capturing()
            if input.ndim < 1:
                raise ValueError(f"LazyLinear: expected an input with a feature dim, got "
                                 f"shape {tuple(input.shape)}")
            with no_grad():
                self.in_features = int(input.shape[-1])
                self.weight.materialize((self.out_features, self.in_features))
                if self.bias is not None:
                    self.bias.materialize((self.out_features,))
                self.reset_parameters()
        elif self.in_features == 0:
            self._sizes_from_weights()

    def _sizes_from_weights(self) -> None:
        self.in_features = int(self.weight.shape[1])


class _LazyConvMixin(LazyModuleMixin):
    """What the lazy convolutions share: ``in_channels`` from the first input's channel dim
    (dim 1 of a batch, dim 0 of an unbatched input)."""

    def _lazy_conv_init(self, device, dtype, bias: bool) -> None:
        # built as a layer of ``groups`` input channels (the base checks need a positive
        # count), then emptied: the real count comes with the first input
        self.in_channels = 0
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)
        self._lazy_init()

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def _in_channels(self, input: Tensor) -> int:
        n = self._nd
        if input.ndim not in (n + 1, n + 2):
            raise RuntimeError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to "
                               f"{type(self).__name__}, but got input of size: "
                               f"{tuple(input.shape)}")
        return int(input.shape[1] if input.ndim == n + 2 else input.shape[0])

    def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:
        if not self.has_uninitialized_params():
            if self.in_channels == 0:
                self._sizes_from_weights()
            return
        self._check_not_capturing()
        c = self._in_channels(input)
        if c % self.groups:
            raise ValueError(f"{type(self).__name__}: in_channels ({c}, from the input of shape "
                             f"{tuple(input.shape)}) must be divisible by groups "
                             f"({self.groups})")
        with no_grad():
            self.in_channels = c
            g = self.groups
            if self._transposed:
                shape = (c, self.out_channels // g) + self.kernel_size
            else:
                shape = (self.out_channels, c // g) + self.kernel_size
            self.weight.materialize(shape)
            if self.bias is not None:
                self.bias.materialize((self.out_channels,))
            self.reset_parameters()

    def _sizes_from_weights(self) -> None:
        w = self.weight.shape
        self.in_channels = int(w[0] if self._transposed else w[1] * self.groups)


def _lazy_conv(base: type, doc: str) -> type:
    """``Lazy<base>``: the convolution ``base`` without ``in_channels``."""

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None):
        base.__init__(self, groups, out_channels, kernel_size, stride=stride, padding=padding,
                      dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode,
                      device=device, dtype=dtype)
        self._lazy_conv_init(device, dtype, bias)

    def __init_t__(self, out_channels: int, kernel_size, stride=1, padding=0,
                   output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                   padding_mode: str = "zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f"Lazy{base.__name__}: only padding_mode='zeros' is supported "
                             "(as PyTorch)")
        base.__init__(self, groups, out_channels, kernel_size, stride=stride, padding=padding,
                      output_padding=output_padding, groups=groups, bias=bias,
                      dilation=dilation, device=device, dtype=dtype)
        self._lazy_conv_init(device, dtype, bias)

    init = __init_t__ if base._transposed else __init__
    name = f"Lazy{base.__name__}"
    init.__qualname__ = f"{name}.__init__"
    return type(name, (_LazyConvMixin, base), {
        "__init__": init, "cls_to_become": base, "__module__": __name__, "__doc__": doc})


LazyConv1d = _lazy_conv(Conv1d, "``Conv1d`` whose ``in_channels`` comes from the first input.")
LazyConv2d = _lazy_conv(Conv2d, """``Conv2d`` whose ``in_channels`` comes from the first input.

    >>> conv = nn.LazyConv2d(6, kernel_size=5, padding=2)
    >>> conv(tl.randn(1, 1, 28, 28)).shape
    (1, 6, 28, 28)
    """)
LazyConv3d = _lazy_conv(Conv3d, "``Conv3d`` whose ``in_channels`` comes from the first input.")
LazyConvTranspose1d = _lazy_conv(ConvTranspose1d, "``ConvTranspose1d`` whose ``in_channels`` "
                                 "comes from the first input.")
LazyConvTranspose2d = _lazy_conv(ConvTranspose2d, "``ConvTranspose2d`` whose ``in_channels`` "
                                 "comes from the first input.")


class _LazyNormMixin(LazyModuleMixin):
    """What the lazy batch and instance norms share: ``num_features`` from the first
    input's channel dim."""

    def _lazy_norm_init(self, affine: bool, track_running_stats: bool, device, dtype,
                        bias: bool = True) -> None:
        self.num_features = 0
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(device=device, dtype=dtype)
            else:   # bias=False (PyTorch 2.13): the affine map without its shift
                self.register_parameter("bias", None)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
            self.num_batches_tracked = creation.zeros((), dtype=_dtypes.int64, device=device)
        self._lazy_init()

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def _channel_dim(self, input: Tensor) -> int:
        return 1

    def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:
        if not self.has_uninitialized_params():
            if self.num_features == 0:      # loaded weights, or none at all (no affine)
                self._check_input(input)
                self.num_features = int(input.shape[self._channel_dim(input)])
            return
        self._check_not_capturing()
        self._check_input(input)
        with no_grad():
            self.num_features = c = int(input.shape[self._channel_dim(input)])
            if self.affine:
                self.weight.materialize((c,))
                if self.bias is not None:
                    self.bias.materialize((c,))
            if self.track_running_stats:
                self.running_mean.materialize((c,))
                self.running_var.materialize((c,))
            self.reset_parameters()

    def _sizes_from_weights(self) -> None:
        t = self.weight if self.affine else self.running_mean
        if t is not None:
            self.num_features = int(t.shape[0])


def _lazy_norm(base: type, instance: bool, doc: str) -> type:
    """``Lazy<base>``: the normalization ``base`` without ``num_features``. As PyTorch's, the
    lazy instance norms too default to ``affine=True, track_running_stats=True`` (unlike
    the eager InstanceNorm classes)."""

    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *,
                 bias: bool = True):
        base.__init__(self, 1, eps, momentum, False, False, dtype=dtype, device=device)
        self._lazy_norm_init(affine, track_running_stats, device, dtype, bias)

    name = f"Lazy{base.__name__}"
    __init__.__qualname__ = f"{name}.__init__"
    ns = {"__init__": __init__, "cls_to_become": base, "__module__": __name__, "__doc__": doc}
    if instance:
        # an unbatched (C, L) input has its channels first
        ns["_channel_dim"] = lambda self, x: 0 if x.ndim == self._dims[0] else 1
    return type(name, (_LazyNormMixin, base), ns)


LazyBatchNorm1d = _lazy_norm(BatchNorm1d, False, """``BatchNorm1d`` whose ``num_features``
    comes from the first input (dim 1).

    >>> bn = nn.LazyBatchNorm1d()
    >>> _ = bn(tl.randn(8, 120))
    >>> bn.num_features
    120
    """)
LazyBatchNorm2d = _lazy_norm(BatchNorm2d, False, "``BatchNorm2d`` whose ``num_features`` "
                             "comes from the first input.")
LazyBatchNorm3d = _lazy_norm(BatchNorm3d, False, "``BatchNorm3d`` whose ``num_features`` "
                             "comes from the first input.")
LazyInstanceNorm1d = _lazy_norm(InstanceNorm1d, True, "``InstanceNorm1d`` whose "
                                "``num_features`` comes from the first input.")
LazyInstanceNorm2d = _lazy_norm(InstanceNorm2d, True, "``InstanceNorm2d`` whose "
                                "``num_features`` comes from the first input.")

__all__ = ["LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyConv1d", "LazyConv2d",
           "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyInstanceNorm1d",
           "LazyInstanceNorm2d", "LazyLinear", "LazyModuleMixin", "UninitializedBuffer",
           "UninitializedParameter"]
