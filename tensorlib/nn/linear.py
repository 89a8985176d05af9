"""Linear layers and shape helpers: Identity, Linear, Flatten, Unflatten."""
from __future__ import annotations

import math
import operator

from .. import creation
from .._tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


def _as_int(v) -> int | None:
    """``v`` as a plain int when it is an integer (int, NumPy integer, anything with
    ``__index__``, as PyTorch's size arguments take), else None; bools are not sizes."""
    if isinstance(v, bool):     # (NumPy bools have no __index__)
        return None
    try:
        return operator.index(v)
    except TypeError:
        return None


def _positive(name: str, layer: str, v) -> int:
    i = _as_int(v)
    if i is None or i <= 0:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {v!r}")
    return i


def _size(name: str, layer: str, v) -> int:
    # 0 is a size as PyTorch's (Linear(0, n) outputs its bias, zeros)
    i = _as_int(v)
    if i is None or i < 0:
        raise ValueError(f"{layer}: {name} must be a non-negative integer, got {v!r}")
    return i


def _dim(name: str, layer: str, v) -> int:
    i = _as_int(v)
    if i is None:
        raise TypeError(f"{layer}: {name} must be an int, got {v!r}")
    return i


def reset_uniform_fan_in(weight: Parameter, bias: Parameter | None, fan_in: int) -> None:
    """PyTorch's default for linear and conv layers: kaiming_uniform_(a=sqrt(5)) on the
    weight, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


class Identity(Module):
    """Returns its input unchanged (``torch.nn.Identity``): a placeholder, e.g. for a
    removed classifier head; any constructor arguments are ignored, as PyTorch's.

    >>> backbone = nn.Sequential(nn.Linear(4, 8), nn.Identity())
    >>> nn.Identity(54, unused="x")(tl.ones(2))
    tensor([1., 1.])
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    """``y = x @ weight.T + bias`` with weight of shape (out_features, in_features) and bias
    (out_features,), both drawn from U(-1/sqrt(in), 1/sqrt(in)) as PyTorch's; ``x`` is
    (..., in_features), any number of leading dims.

    >>> fc = nn.Linear(784, 10)
    >>> fc(tl.randn(32, 784)).shape
    (32, 10)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None,
                 device=None):
        super().__init__()
        self.in_features = _size("in_features", "Linear", in_features)
        self.out_features = _size("out_features", "Linear", out_features)
        self.weight = Parameter(creation.empty(self.out_features, self.in_features, dtype=dtype,
                                               device=device))
        if bias:
            self.bias = Parameter(creation.empty(self.out_features, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_uniform_fan_in(self.weight, self.bias, self.in_features)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Flattens the dims ``start_dim`` to ``end_dim`` (both included) into one
    (``torch.nn.Flatten``); by default all but the first (batch) dim, so an image batch
    (N, C, H, W) becomes (N, C * H * W) for a following ``nn.Linear``.

    Args:
        start_dim: the first dim to flatten (1 by default; negative counts from the end).
        end_dim: the last dim to flatten (-1, the last, by default).

    The result is a view where the strides allow (``reshape``'s rule).

    >>> nn.Flatten()(tl.zeros(32, 1, 28, 28)).shape
    (32, 784)
    >>> nn.Flatten(0, 1)(tl.zeros(2, 3, 4)).shape
    (6, 4)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = _dim("start_dim", "Flatten", start_dim), \
            _dim("end_dim", "Flatten", end_dim)

    def forward(self, x: Tensor) -> Tensor:
        nd = x.ndim
        s = self.start_dim % nd if nd else 0
        e = self.end_dim % nd if nd else 0
        if s > e:
            raise ValueError(f"Flatten: start_dim {self.start_dim} comes after end_dim "
                             f"{self.end_dim} for a tensor of shape {tuple(x.shape)}")
        shape = tuple(x.shape[:s]) + (math.prod(x.shape[s:e + 1]),) + tuple(x.shape[e + 1:])
        return x.reshape(shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dim ``dim`` into ``unflattened_size``."""

    def __init__(self, dim: int, unflattened_size: tuple[int, ...]):
        super().__init__()
        self.dim = _dim("dim", "Unflatten", dim)
        # a NumPy array's shape or integers too, as plain ints (-1 infers one size)
        size = tuple(_as_int(s) for s in unflattened_size)
        if any(s is None for s in size):
            raise TypeError(f"Unflatten: unflattened_size must be a sequence of ints, got "
                            f"{unflattened_size!r}")
        self.unflattened_size = size

    def forward(self, x: Tensor) -> Tensor:
        d = self.dim % x.ndim
        shape = tuple(x.shape[:d]) + self.unflattened_size + tuple(x.shape[d + 1:])
        return x.reshape(shape)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Bilinear(Module):
    """``y = x1 @ weight[o] @ x2 + bias[o]`` for each output ``o``; weight (out, in1, in2)."""

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, dtype=None, device=None):
        super().__init__()
        self.in1_features = _positive("in1_features", "Bilinear", in1_features)
        self.in2_features = _positive("in2_features", "Bilinear", in2_features)
        self.out_features = _positive("out_features", "Bilinear", out_features)
        self.weight = Parameter(creation.empty(self.out_features, self.in1_features,
                                               self.in2_features, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(creation.empty(self.out_features, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        bound = 1.0 / math.sqrt(self.in1_features)       # PyTorch's: U(-1/sqrt(in1), 1/sqrt(in1))
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.bilinear(x1, x2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
