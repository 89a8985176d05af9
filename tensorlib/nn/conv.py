"""Convolution layers: Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
(each also takes an unbatched sample, as PyTorch)."""
from __future__ import annotations

from .. import creation
from .._tensor import Tensor
from . import functional as F
from .linear import _as_int, _positive, reset_uniform_fan_in
from .module import Module
from .parameter import Parameter


_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}


def _tuple(v, n: int, name: str, layer: str) -> tuple[int, ...]:
    """``v`` (an integer or n of them, NumPy integers included) as n plain ints."""
    i = _as_int(v)
    if i is not None:
        return (i,) * n
    try:
        t = tuple(_as_int(e) for e in v)
    except TypeError:       # not iterable
        t = ()
    if len(t) != n or any(e is None for e in t):
        raise ValueError(f"{layer}: {name} must be an int or {n} ints, got {v!r}")
    return t


class _ConvNd(Module):
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, output_padding=0, dtype=None, device=None,
                 padding_mode: str = "zeros"):
        super().__init__()
        name = type(self).__name__
        if padding_mode != "zeros" and self._transposed:
            raise ValueError(f'Only "zeros" padding mode is supported for {name} (got '
                             f"padding_mode={padding_mode!r})")
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {sorted(_PAD_MODES)}, got "
                             f"{padding_mode!r}")
        self.padding_mode = padding_mode
        in_channels = _positive("in_channels", name, in_channels)
        out_channels = _positive("out_channels", name, out_channels)
        groups = _positive("groups", name, groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        n = self._nd
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", name)
        self.stride = _tuple(stride, n, "stride", name)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, n, "padding",
                                                                       name)
        if isinstance(padding, str):     # refused here, at the line that asks for it
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be 'same', 'valid', an int or a tuple, "
                                 f"got {padding!r}")
            if padding == "same" and any(s_ != 1 for s_ in self.stride):
                raise ValueError(f"{name}: padding='same' needs stride 1, got stride "
                                 f"{self.stride} (PyTorch refuses it too)")
        self.dilation = _tuple(dilation, n, "dilation", name)
        self.output_padding = _tuple(output_padding, n, "output_padding", name)
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(creation.empty(*shape, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(creation.empty(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        w = self.weight
        fan_in = w.shape[1]
        for k in self.kernel_size:
            fan_in *= k
        reset_uniform_fan_in(w, self.bias, fan_in)

    def _padded(self, x: Tensor):
        """(input, padding for the conv): with a padding_mode other than zeros the input is
        padded here (F.pad) and the convolution itself pads nothing."""
        if self.padding_mode != "zeros" and x.ndim == self._nd + 1:   # unbatched (C, ...)
            y, p = self._padded(x.unsqueeze(0))
            return y.squeeze(0), p
        if self.padding_mode == "zeros":
            return x, self.padding
        if self.padding == "valid":
            return x, 0
        if self.padding == "same":
            amounts = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                       for k, d in zip(self.kernel_size, self.dilation)]
        else:
            amounts = [(p, p) for p in self.padding]
        flat = [v for pair in reversed(amounts) for v in pair]   # last dim first
        return F.pad(x, flat, mode=_PAD_MODES[self.padding_mode]), 0

    def _output_padding(self, x: Tensor, output_size) -> tuple[int, ...]:
        """A transposed convolution's output_padding: the layer's, or, for a requested
        ``output_size`` (spatial sizes, or the full shape), the one that gives it, as
        PyTorch's (the stride makes several output sizes map to the same input size)."""
        if output_size is None:
            return self.output_padding
        n = self._nd
        name = type(self).__name__
        size = tuple(int(s) for s in output_size)
        lead = 2 if x.ndim == n + 2 else 1
        if len(size) == lead + n:
            size = size[lead:]
        if len(size) != n:
            raise ValueError(f"{name}: output_size must have {n} or {n + lead} elements "
                             f"(got {len(size)}: {tuple(output_size)})")
        spatial = tuple(int(s) for s in x.shape[lead:])
        if isinstance(self.padding, str):
            raise ValueError(f"{name}: output_size needs numeric padding")
        lo = tuple((i - 1) * s - 2 * p + d * (k - 1) + 1 for i, s, p, d, k in
                   zip(spatial, self.stride, self.padding, self.dilation, self.kernel_size))
        hi = tuple(m + s - 1 for m, s in zip(lo, self.stride))
        if any(not a <= want <= b for want, a, b in zip(size, lo, hi)):
            raise ValueError(f"{name}: requested an output size of {size}, but valid sizes "
                             f"range from {lo} to {hi} (for an input of {spatial})")
        return tuple(want - a for want, a in zip(size, lo))

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self._transposed and self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s


class _Conv(_ConvNd):
    """Conv1d/2d/3d: one constructor and forward, the functional per dimension."""

    _functional = staticmethod(F.conv2d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 dtype=None, device=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, dtype=dtype, device=device, padding_mode=padding_mode)

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._padded(x)
        return self._functional(x, self.weight, self.bias, self.stride, padding,
                                self.dilation, self.groups)


class Conv1d(_Conv):
    """1-D convolution (cross-correlation, as PyTorch's ``torch.nn.Conv1d``) over
    (N, C_in, L) or unbatched (C_in, L); ``weight`` (C_out, C_in/groups, k), ``bias``
    (C_out,), both from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's.

    ``kernel_size``, ``stride``, ``dilation``: ints; ``padding``: an int, ``"same"`` or
    ``"valid"``; ``padding_mode``, ``groups`` and ``bias`` as :class:`Conv2d`'s. The output
    length is ``(L + 2 p - d (k - 1) - 1) // s + 1``.

    >>> nn.Conv1d(3, 8, 5, padding=2)(tl.randn(4, 3, 50)).shape
    (4, 8, 50)
    """

    _nd = 1
    _functional = staticmethod(F.conv1d)


class Conv2d(_Conv):
    """2-D convolution (cross-correlation, as PyTorch) over (N, C_in, H, W) or unbatched
    (C_in, H, W); ``weight`` (C_out, C_in/groups, kh, kw), ``bias`` (C_out,).

    ``kernel_size``, ``stride``, ``dilation``: an int or an (h, w) pair; ``padding``: the
    same, or ``"same"`` / ``"valid"``; ``padding_mode``: "zeros", "reflect", "replicate" or
    "circular". ``groups`` splits the channels into independent groups (``groups=C_in``:
    depthwise). Each output size is ``(H + 2 p - d (k - 1) - 1) // s + 1``.

    >>> conv = nn.Conv2d(1, 32, 5, padding=2)
    >>> conv(tl.randn(8, 1, 28, 28)).shape
    (8, 32, 28, 28)
    """


class Conv3d(_Conv):
    """3-D convolution over (N, C_in, D, H, W) (or (C_in, D, H, W)); weight
    (C_out, C_in/groups, kd, kh, kw).

    >>> nn.Conv3d(2, 4, 3, padding=1)(tl.randn(1, 2, 5, 6, 7)).shape
    (1, 4, 5, 6, 7)
    """

    _nd = 3
    _functional = staticmethod(F.conv3d)


class _ConvTransposeNd(_ConvNd):
    """The transposed layers' constructor: PyTorch's argument order (output_padding after
    padding, dilation last)."""

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, output_padding=output_padding, dtype=dtype,
                         device=device, padding_mode=padding_mode)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution over (N, C_in, L) (or (C_in, L)); weight
    (C_in, C_out/groups, k)."""

    _nd = 1

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        """``output_size`` (PyTorch's): the wanted output length (or full shape), which picks
        the output_padding."""
        return F.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(x, output_size), self.groups,
                                  self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution (the gradient of Conv2d with respect to its input);
    weight (C_in, C_out/groups, kh, kw)."""

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        """``output_size`` (PyTorch's): the wanted (H, W) (or full shape), which picks the
        output_padding, e.g. ``up(x, output_size=skip.shape)`` in a UNet."""
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(x, output_size), self.groups,
                                  self.dilation)


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-D convolution (the gradient of Conv3d with respect to its input) over
    (N, C_in, D, H, W) (or (C_in, D, H, W)); weight (C_in, C_out/groups, kd, kh, kw).

    >>> nn.ConvTranspose3d(2, 4, 3, stride=2)(tl.randn(1, 2, 3, 4, 5)).shape
    (1, 4, 7, 9, 11)
    """

    _nd = 3

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        """``output_size`` (PyTorch's): the wanted (D, H, W) (or full shape), which picks the
        output_padding."""
        return F.conv_transpose3d(x, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(x, output_size), self.groups,
                                  self.dilation)
