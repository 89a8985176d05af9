"""Activation modules: thin Module wrappers over the functional forms (``inplace=True`` writes
into the input and returns it, as PyTorch's)."""
from __future__ import annotations

from .._tensor import Tensor
from . import functional as F
from .linear import _as_int, _size
from .module import Module


def _dim(dim):
    # an integer of any kind (NumPy's too) as a plain int; anything else for F to check
    i = None if dim is None else _as_int(dim)
    return dim if i is None else i


def _inplace_repr(m: Module, sep: str = "") -> str:
    """``inplace=True`` in a layer's repr when set, as PyTorch's."""
    return f"{sep}inplace=True" if getattr(m, "inplace", False) else ""


class ReLU(Module):
    """``max(x, 0)`` elementwise (gradient 0 at 0, as PyTorch's); ``inplace=True`` writes
    into the input.

    >>> nn.ReLU()(tl.tensor([-1.0, 0.0, 2.0]))
    tensor([0., 0., 2.])
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self)


class LeakyReLU(Module):
    """``x`` for x > 0, else ``negative_slope * x`` elementwise (``torch.nn.LeakyReLU``);
    ``negative_slope`` is 0.01 by default, ``inplace`` writes into the input. The
    gradient at 0 is ``negative_slope``, as PyTorch's.

    >>> nn.LeakyReLU(0.1)(tl.tensor([-2.0, 3.0]))
    tensor([-0.2000,  3.0000])
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + _inplace_repr(self, ", ")


class ELU(Module):
    """``x`` for x > 0, else ``alpha * (exp(x) - 1)``."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + _inplace_repr(self, ", ")


class CELU(Module):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (Barron, 2017)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.celu(x, self.alpha, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + _inplace_repr(self, ", ")


class GELU(Module):
    """Gaussian error linear unit ``x * Phi(x)`` elementwise (``torch.nn.GELU``), Phi the
    standard normal CDF; ``approximate="tanh"`` uses PyTorch's tanh approximation
    ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))`` ("none", exact, by default).

    >>> nn.GELU()(tl.tensor([-1.0, 0.0, 1.0]))
    tensor([-0.1587,  0.0000,  0.8413])
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """``x * sigmoid(x)`` (swish)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self)


class Sigmoid(Module):
    """The logistic sigmoid ``1 / (1 + exp(-x))`` elementwise (``torch.nn.Sigmoid``),
    computed without overflow for large ``|x|``.

    >>> nn.Sigmoid()(tl.tensor([0.0, 2.0]))
    tensor([0.5000, 0.8808])
    """
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """The hyperbolic tangent ``tanh(x)`` elementwise (``torch.nn.Tanh``), in (-1, 1).

    >>> nn.Tanh()(tl.tensor([0.0, 1.0]))
    tensor([0.0000, 0.7616])
    """
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``; ``x`` where ``beta * x > threshold``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    """Softmax along ``dim`` (``torch.nn.Softmax``): each slice becomes probabilities
    summing to 1 (see :func:`tl.softmax`). ``dim=None`` takes the last dim, with
    F.softmax's warning for 3-d and larger inputs, where PyTorch's deprecated implicit
    choice differs: pass ``dim``.

    >>> nn.Softmax(dim=-1)(tl.tensor([[1.0, 1.0], [0.0, 0.0]]))
    tensor([[0.5000, 0.5000],
            [0.5000, 0.5000]])
    """

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = _dim(dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """Log-softmax along ``dim`` (None: as :class:`Softmax`)."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = _dim(dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Hardtanh(Module):
    """``x`` clipped to [min_val, max_val] elementwise (``torch.nn.Hardtanh``); see
    :func:`tl.nn.functional.hardtanh` for the gradient at the kinks and at NaN.

    Args:
        min_val, max_val: the bounds (-1 and 1 by default); ``min_value`` /
            ``max_value`` are PyTorch's deprecated spellings (a FutureWarning).
        inplace: write the result into the input.

    >>> nn.Hardtanh(-2.0, 2.0)(tl.tensor([-3.0, 1.0, 5.0]))
    tensor([-2.,  1.,  2.])
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None):
        super().__init__()
        # min_value / max_value: PyTorch's deprecated spellings, with its FutureWarning
        from .._warn import warn_user
        if min_value is not None:
            warn_user("keyword argument `min_value` is deprecated and rename to `min_val`",
                      FutureWarning)
            min_val = min_value
        if max_value is not None:
            warn_user("keyword argument `max_value` is deprecated and rename to `max_val`",
                      FutureWarning)
            max_val = max_value
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val, inplace=self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + _inplace_repr(self, ", ")


class Softsign(Module):
    """``x / (1 + |x|)``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.softsign(x)


class Mish(Module):
    """``x * tanh(softplus(x))``."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.mish(x, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self)


class SELU(Module):
    """Self-normalising ``scale * elu(x, alpha)``."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.selu(x, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self)


class ReLU6(Module):
    """``min(max(x, 0), 6)`` elementwise (``torch.nn.ReLU6``), as in MobileNet; see
    :func:`tl.nn.functional.relu6` for the gradient at 0, 6 and NaN. ``inplace`` writes
    the result into the input.

    >>> nn.ReLU6()(tl.tensor([-1.0, 3.0, 8.0]))
    tensor([0., 3., 6.])
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(x, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self)


class Hardsigmoid(Module):
    """``relu6(x + 3) / 6``."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.hardsigmoid(x, inplace=self.inplace)


class Hardswish(Module):
    """``x * hardsigmoid(x)``."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.hardswish(x, inplace=self.inplace)


class LogSigmoid(Module):
    """``log(sigmoid(x))``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.logsigmoid(x)


class GLU(Module):
    """Gated linear unit over the two halves of ``dim``."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = _dim(dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.glu(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class PReLU(Module):
    """``x`` where positive, else ``a * x`` with a learned slope ``a`` (one, or one per
    channel), initialised to ``init``."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype=None, device=None):
        super().__init__()
        from .. import creation
        from .parameter import Parameter
        self.num_parameters = _size("num_parameters", "PReLU", num_parameters)
        self.weight = Parameter(creation.full((self.num_parameters,), init, dtype=dtype,
                                              device=device))

    def forward(self, x: Tensor) -> Tensor:
        return F.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Hardshrink(Module):
    """``x`` where ``|x| > lambd``, else 0 (PyTorch's ``nn.Hardshrink``)."""

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, x: Tensor) -> Tensor:
        return F.hardshrink(x, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Softshrink(Hardshrink):
    """``x -+ lambd`` outside [-lambd, lambd], else 0 (PyTorch's ``nn.Softshrink``)."""

    def __init__(self, lambd: float = 0.5):
        if not lambd >= 0:
            raise ValueError(f"Softshrink: lambd must be greater or equal to 0, got {lambd}")
        super().__init__(lambd)

    def forward(self, x: Tensor) -> Tensor:
        return F.softshrink(x, self.lambd)


class Tanhshrink(Module):
    """``x - tanh(x)`` (PyTorch's ``nn.Tanhshrink``)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanhshrink(x)
