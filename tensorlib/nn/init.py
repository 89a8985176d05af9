"""Weight initializers, in place, drawing from tensorlib's seedable generator.

Names and formulas follow PyTorch's ``torch.nn.init``: ``fan_in``/``fan_out`` of a
weight of shape ``(out, in, *kernel)`` are ``in * prod(kernel)`` and
``out * prod(kernel)``.
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..random import Generator, rng

__all__ = ["calculate_gain", "constant_", "dirac_", "eye_", "kaiming_normal_", "kaiming_uniform_",
           "normal_", "ones_", "orthogonal_", "sparse_", "trunc_normal_", "uniform_",
           "xavier_normal_", "xavier_uniform_", "zeros_"]


def _write(t: Tensor, values: np.ndarray, name: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"init.{name}: expected a Tensor, got {type(t).__name__}")
    if t._device.type == "cpu":
        t._data[...] = values
    else:
        from ..backends import to_device
        t._data[...] = to_device(np.asarray(values, dtype=t.dtype), t._device)
    t._version[0] += 1
    return t


def _check_float(t: Tensor, name: str, complex_ok: bool = True) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"init.{name}: expected a Tensor, got {type(t).__name__}")
    if t.dtype.kind == "c" and not complex_ok:
        raise TypeError(f"init.{name}: complex tensors are not supported (as in PyTorch); "
                        "initialise t.real and t.imag (or a real tensor) instead")
    if t.dtype.kind not in "fc":
        raise TypeError(f"init.{name}: expected a floating-point or complex tensor, got "
                        f"{t.dtype}")


def _complex_parts(t: Tensor, draw) -> np.ndarray:
    """``draw(shape)`` for a real tensor; for a complex one, independent draws for the real
    and the imaginary parts (PyTorch fills ``view_as_real(t)``)."""
    if t.dtype.kind != "c":
        return draw(t.shape)
    return draw(t.shape) + 1j * draw(t.shape)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (as ``torch.nn.init.calculate_gain``)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fans(t: Tensor, name: str) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"init.{name}: fan in and fan out cannot be computed for a tensor "
                         f"with fewer than 2 dimensions (shape {t.shape})")
    receptive = math.prod(t.shape[2:])
    return t.shape[1] * receptive, t.shape[0] * receptive


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)``: ``in * prod(kernel)``
    and ``out * prod(kernel)``, as PyTorch's (private but widely used) helper; ValueError
    for fewer than 2 dims."""
    return _fans(tensor, "_calculate_fan_in_and_fan_out")


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    """The fan ``mode`` names (``"fan_in"`` or ``"fan_out"``, any case), as PyTorch's."""
    mode = mode.lower() if isinstance(mode, str) else mode
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init._calculate_correct_fan: mode {mode} not supported, please use "
                         "one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _fans(tensor, "_calculate_correct_fan")
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             generator: Generator | None = None) -> Tensor:
    """Uniform on [a, b); a complex tensor gets independent uniform real and imaginary parts,
    as PyTorch's."""
    t = tensor
    _check_float(t, "uniform_")
    if b < a:
        raise ValueError(f"init.uniform_: b ({b}) must be >= a ({a})")
    g = rng(generator)
    return _write(t, _complex_parts(t, lambda shape: g.uniform(a, b, shape)), "uniform_")


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: Generator | None = None) -> Tensor:
    """Normal with mean ``mean`` and standard deviation ``std``. A complex tensor, as
    PyTorch's: real and imaginary parts independent, each N(mean, std^2 / 2) (so
    ``E|z - mean(1+i)|^2 = std^2``)."""
    t = tensor
    _check_float(t, "normal_")
    if std < 0:
        raise ValueError(f"init.normal_: std must be non-negative, got {std}")
    g = rng(generator)
    part = std / math.sqrt(2.0) if t.dtype.kind == "c" else std
    return _write(t, _complex_parts(t, lambda shape: g.normal(mean, part, shape)), "normal_")


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: Generator | None = None) -> Tensor:
    """Normal(mean, std) truncated to [a, b], by PyTorch's inverse-CDF method: uniform on
    [2 cdf(a) - 1, 2 cdf(b) - 1], then ``mean + std * sqrt(2) * erfinv(u)``, clamped to
    [a, b]. Warns, as PyTorch, when ``mean`` is more than 2 std outside [a, b] (the CDF
    values round there).

    >>> w = tl.empty(256, 128)
    >>> tl.nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04)
    """
    t = tensor
    _check_float(t, "trunc_normal_", complex_ok=False)
    if std < 0:
        raise ValueError(f"init.trunc_normal_: std must be non-negative, got {std}")
    if a > b:
        raise ValueError(f"init.trunc_normal_: a ({a}) must be <= b ({b})")
    if mean < a - 2 * std or mean > b + 2 * std:
        import warnings
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The "
                      "distribution of values may be incorrect.", stacklevel=2)
    from ..ops.special_fns import ERFINV

    def cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    if std == 0:
        return _write(t, np.full(t.shape, min(max(mean, a), b)), "trunc_normal_")
    lo, hi = cdf((a - mean) / std), cdf((b - mean) / std)
    u = rng(generator).uniform(2 * lo - 1, 2 * hi - 1, t.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ERFINV.kernel_for("cpu")(np.asarray(u, np.float64)) * (std * math.sqrt(2.0)) + mean
    return _write(t, np.clip(out, a, b), "trunc_normal_")


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Every element set to ``val`` (a Python complex for complex tensors too)."""
    t = tensor
    _check_float(t, "constant_")
    return _write(t, val, "constant_")


def zeros_(tensor: Tensor) -> Tensor:
    """Every element set to 0."""
    t = tensor
    return _write(t, 0, "zeros_")


def ones_(tensor: Tensor) -> Tensor:
    """Every element set to 1."""
    t = tensor
    return _write(t, 1, "ones_")


def eye_(tensor: Tensor) -> Tensor:
    """A 2-d tensor set to the identity: ones on the main diagonal (also when not square)."""
    t = tensor
    if t.ndim != 2:
        raise ValueError(f"init.eye_: expected a 2-d tensor, got shape {t.shape}")
    return _write(t, np.eye(*t.shape), "eye_")


def xavier_uniform_(tensor: Tensor, gain: float = 1.0,
                    generator: Generator | None = None) -> Tensor:
    """Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    t = tensor
    fan_in, fan_out = _fans(t, "xavier_uniform_")
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    """Glorot normal: N(0, std), std = gain * sqrt(2 / (fan_in + fan_out))."""
    t = tensor
    fan_in, fan_out = _fans(t, "xavier_normal_")
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _empty(t: Tensor, name: str) -> bool:
    """A zero-element tensor: left as it is, with PyTorch's warning (its fan may be 0)."""
    _check_float(t, name)
    if 0 in tuple(t.shape):
        from .._warn import warn_user
        warn_user("Initializing zero-element tensors is a no-op", UserWarning)
        return True
    return False


def _kaiming_std(t, a, mode, nonlinearity, name):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init.{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(t, name)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: Generator | None = None) -> Tensor:
    """He uniform: U(-b, b), b = gain * sqrt(3 / fan)."""
    t = tensor
    if _empty(t, "kaiming_uniform_"):
        return t
    bound = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity, "kaiming_uniform_")
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: Generator | None = None) -> Tensor:
    """Fill ``tensor`` in place from N(0, std^2) with ``std = gain / sqrt(fan)`` (He et
    al.): ``fan`` is the fan-in (default) or fan-out (``mode="fan_out"``) and ``gain`` that of
    ``nonlinearity`` (``"relu"``: sqrt(2); ``"leaky_relu"`` with slope ``a``), as PyTorch's.

    >>> w = tl.empty(256, 512)
    >>> _ = nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")
    >>> abs(float(w.std()) - (2 / 512) ** 0.5) < 0.003
    True
    """
    t = tensor
    if _empty(t, "kaiming_normal_"):
        return t
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity, "kaiming_normal_"),
                   generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    """A (semi-)orthogonal matrix from the QR decomposition of a normal draw; dims after
    the first are flattened."""
    t = tensor
    _check_float(t, "orthogonal_", complex_ok=False)
    if t.ndim < 2:
        raise ValueError(f"init.orthogonal_: expected at least 2 dimensions, got shape {t.shape}")
    rows = t.shape[0]
    cols = t.size // rows if rows else 0
    flat = rng(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))  # make the decomposition unique (uniform over O(n))
    if rows < cols:
        q = q.T
    return _write(t, gain * q.reshape(t.shape), "orthogonal_")


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3-, 4- or 5-d conv weight (out, in, *k) with the Dirac delta, as
    ``torch.nn.init.dirac_``: each of ``groups`` groups passes its first min(out, in)
    input channels through unchanged."""
    t = tensor
    if t.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: only 3-, 4- and 5-d tensors are supported, got {t.ndim}-d")
    out = int(t.shape[0])
    if out % groups != 0:
        raise ValueError(f"dirac_: dim 0 ({out}) must be divisible by groups ({groups})")
    per = out // groups
    values = np.zeros(tuple(t.shape), dtype=t.dtype)
    centre = tuple(int(k) // 2 for k in t.shape[2:])
    for g in range(groups):
        for d in range(min(per, int(t.shape[1]))):
            values[(g * per + d, d) + centre] = 1
    return _write(t, values, "dirac_")


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01,
            generator: Generator | None = None) -> Tensor:
    """A 2-d ``tensor`` drawn from N(0, std) with ``ceil(sparsity * rows)`` entries of each
    column set to 0, at rows drawn at random (``torch.nn.init.sparse_``); complex tensors
    draw as :func:`normal_` does."""
    t = tensor
    _check_float(t, "sparse_")
    if t.ndim != 2:
        raise ValueError(f"init.sparse_: only tensors with 2 dimensions are supported, got "
                         f"shape {tuple(t.shape)}")
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"init.sparse_: sparsity must be in [0, 1], got {sparsity}")
    if std < 0:
        raise ValueError(f"init.sparse_: std must be non-negative, got {std}")
    rows, cols = t.shape
    num_zeros = int(math.ceil(sparsity * rows))
    g = rng(generator)
    part = std / math.sqrt(2.0) if t.dtype.kind == "c" else std
    values = _complex_parts(t, lambda shape: g.normal(0.0, part, shape))
    for c in range(cols):
        values[g.permutation(rows)[:num_zeros], c] = 0.0
    return _write(t, values, "sparse_")


def _deprecated(new):
    old = new.__name__[:-1]

    def alias(*args, **kwargs):
        from .._warn import warn_user
        warn_user(f"`nn.init.{old}` is now deprecated in favor of `nn.init.{new.__name__}`.",
                  FutureWarning)
        return new(*args, **kwargs)
    alias.__name__ = alias.__qualname__ = old
    alias.__doc__ = f"Deprecated alias of :func:`{new.__name__}` (as PyTorch's ``{old}``)."
    return alias


# PyTorch's deprecated non-underscore names, still found in older code
(uniform, normal, constant, eye, dirac, xavier_uniform, xavier_normal, kaiming_uniform,
 kaiming_normal, orthogonal, sparse) = (_deprecated(f) for f in (
    uniform_, normal_, constant_, eye_, dirac_, xavier_uniform_, xavier_normal_,
    kaiming_uniform_, kaiming_normal_, orthogonal_, sparse_))
