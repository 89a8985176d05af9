"""Softmax and log-softmax along one axis; relu_grad, the fused ReLU backward."""
from __future__ import annotations

import numpy as np

from .._state import state
from ..amp.cast import autocast_call
from .._apply import apply
from .._tensor import Tensor
from .. import _ops
from .elementwise import CLIP, clip_interior, fused_grad
from .nn_util import FLOATS, as_float_tensor, io_cost
from .registry import OpDef, register
from ._util import around_axis, broadcast_shapes, norm_axis, numel, to_tensor


def _softmax_fwd(xp, x, axis):
    if x.size == 0:
        return xp.empty_like(x)
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    e = xp.exp(x - m)
    e /= xp.sum(e, axis=axis, keepdims=True)
    return e


def _log_softmax_fwd(xp, x, axis):
    if x.size == 0:
        return xp.empty_like(x)
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    s = x - m
    s -= xp.log(xp.sum(xp.exp(s), axis=axis, keepdims=True))
    return s


def _blocks(a, axis):
    """``a`` as a contiguous (outer, n, inner) array around ``axis``, for the Cython kernels
    (None: not a float32/float64 array)."""
    if a.dtype not in FLOATS or a.ndim == 0:
        return None
    return around_axis(a, axis % a.ndim)


def _softmax_cpu(log_out):
    def kernel(x, axis):
        xb = _blocks(x, axis)
        if xb is None:
            return (_log_softmax_fwd if log_out else _softmax_fwd)(np, x, axis)
        from .. import _ops
        O, N, inner = xb.shape
        # many short float32 rows: the row-run kernel (no per-row set-up; 2.4x faster on
        # (65536, 16))
        if inner == 1 and x.dtype == np.float32 and N <= _ops.SOFTMAX_SHORT:
            out = np.empty((O, N), x.dtype)
            if _ops.softmax_rows_f32(xb.reshape(O, N), out, log_out):
                return out.reshape(x.shape)
        out = np.empty(xb.shape, x.dtype)
        _ops.softmax_along(xb, out, log_out)
        return out.reshape(x.shape)
    return kernel


def _softmax_grad_fwd(xp, g, y, axis):
    return y * (g - (g * y).sum(axis=axis, keepdims=True))


def _log_softmax_grad_fwd(xp, g, y, axis):
    return g - xp.exp(y) * g.sum(axis=axis, keepdims=True)


def _softmax_grad_cpu(log_out):
    def kernel(g, y, axis):
        gb, yb = _blocks(g, axis), _blocks(y, axis)
        if gb is None or yb is None or g.dtype != y.dtype or g.shape != y.shape:
            return (_log_softmax_grad_fwd if log_out else _softmax_grad_fwd)(np, g, y, axis)
        from .. import _ops
        out = np.empty(gb.shape, g.dtype)
        _ops.softmax_grad_along(gb, yb, out, log_out)
        return out.reshape(g.shape)
    return kernel


def _softmax_vjp(n, g):
    return (apply(SOFTMAX_GRAD, g, n.out, axis=n.attrs["axis"]),)


def _log_softmax_vjp(n, g):
    return (apply(LOG_SOFTMAX_GRAD, g, n.out, axis=n.attrs["axis"]),)


def _softmax_grad_vjp(n, gg):
    # dx = y (g - s), s = sum(g y): linear in g (its adjoint is the same map); w.r.t. y:
    # gg (g - s) - g sum(gg y)
    g, y = n.inputs
    a = n.attrs["axis"]
    dg = apply(SOFTMAX_GRAD, gg, y, axis=a) if g.requires_grad else None
    dy = None
    if y.requires_grad:
        dy = gg * (g - (g * y).sum(axis=a, keepdims=True)) - g * (gg * y).sum(axis=a,
                                                                             keepdims=True)
    return dg, dy


def _log_softmax_grad_vjp(n, gg):
    # dx = g - exp(y) sum(g): w.r.t. g, gg - sum(gg exp(y)); w.r.t. y, -gg exp(y) sum(g)
    g, y = n.inputs
    a = n.attrs["axis"]
    e = y.exp()
    dg = gg - (gg * e).sum(axis=a, keepdims=True) if g.requires_grad else None
    dy = -(gg * e) * g.sum(axis=a, keepdims=True) if y.requires_grad else None
    return dg, dy


_cost = io_cost(lambda i, o, **a: 5 * numel(i[0][0]))
SOFTMAX = register(OpDef("softmax", _softmax_fwd, kernels={"cpu": _softmax_cpu(False)},
                         vjp=_softmax_vjp, saves=False, saves_output=True,
                         infer=lambda x, *, axis: x, cost=_cost, onnx="Softmax"))
LOG_SOFTMAX = register(OpDef("log_softmax", _log_softmax_fwd,
                             kernels={"cpu": _softmax_cpu(True)}, vjp=_log_softmax_vjp,
                             saves=False, saves_output=True, infer=lambda x, *, axis: x,
                             cost=_cost, onnx="LogSoftmax"))
# the backward passes as ops of their own: one fused pass on the CPU instead of four
SOFTMAX_GRAD = register(OpDef("softmax_grad", _softmax_grad_fwd,
                              kernels={"cpu": _softmax_grad_cpu(False)},
                              vjp=_softmax_grad_vjp, saves=True,
                              infer=lambda g, y, *, axis: g, cost=_cost))
LOG_SOFTMAX_GRAD = register(OpDef("log_softmax_grad", _log_softmax_grad_fwd,
                                  kernels={"cpu": _softmax_grad_cpu(True)},
                                  vjp=_log_softmax_grad_vjp, saves=True,
                                  infer=lambda g, y, *, axis: g, cost=_cost))


# --- relu_grad(g, x) = 0 where x <= 0 else g: ReLU's backward in one pass ----------------------
def _relu_grad_fwd(xp, g, x):
    # 0 where x <= 0, else g: at a NaN input the gradient passes, as PyTorch's
    return xp.where(x <= 0, xp.zeros((), g.dtype), g)


def _relu_grad_cpu(g, x):
    if g.shape != x.shape or g.dtype != x.dtype or g.dtype not in FLOATS:
        return _relu_grad_fwd(np, g, x)
    from .. import _ops
    shape = g.shape  # (ascontiguousarray makes 0-d arrays 1-d)
    g = np.ascontiguousarray(g)
    x = np.ascontiguousarray(x)
    out = np.empty_like(g)
    if out.size:
        _ops.relu_backward(g.reshape(-1), x.reshape(-1), out.reshape(-1))
    return out.reshape(shape)


RELU_GRAD = register(OpDef(
    "relu_grad", _relu_grad_fwd, kernels={"cpu": _relu_grad_cpu},
    # linear in g; piecewise constant in x: a zero gradient, given as zeros (not None) as
    # PyTorch's, so a second derivative w.r.t. x is zeros rather than "x was not used"
    vjp=lambda n, gg: (apply(RELU_GRAD, gg, n.inputs[1]), _zero_grad(n.inputs[1])),
    saves="others",
    infer=lambda g, x: g, cost=io_cost(lambda i, o, **a: numel(i[0][0]))))


def _zero_grad(x: Tensor) -> Tensor | None:
    """The zero gradient of a piecewise-constant input (None when it needs none)."""
    if not x.requires_grad:
        return None
    from ..creation import zeros_like
    return zeros_like(x)


def relu_grad(g: Tensor, x: Tensor) -> Tensor:
    """The gradient of relu at ``x`` applied to ``g``: 0 where ``x <= 0``, else ``g`` (a NaN
    ``x`` passes ``g``, as PyTorch)."""
    return apply(RELU_GRAD, g, x)


def _axis(x: Tensor, axis, dim, op):
    if dim is not None:
        axis = dim
    if axis is None:        # no dim given: the last, where PyTorch's deprecated guess differs
        nd = x._data.ndim
        if nd >= 3:
            from .._warn import warn_user
            warn_user(f"{op}: no dim given, so tensorlib uses the last dim ({nd - 1}); "
                      f"PyTorch's implicit choice (deprecated) would be dim "
                      f"{0 if nd == 3 else 1} for a {nd}-d input. Pass dim= explicitly.")
        axis = -1
    return norm_axis(axis, x._data.ndim, op)


def softmax(input, axis: int | None = None, *, dim: int | None = None, dtype=None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim`` (``torch.softmax``,
    ``torch.nn.functional.softmax``): each slice along ``dim`` becomes probabilities
    summing to 1.

    Computed without overflow (the slice's maximum is subtracted first). ``dim`` is
    PyTorch's name (``axis`` NumPy's); ``dtype`` casts the input first, as PyTorch's.
    Without a dim, the last one, with a warning for inputs of 3 or more dims (where
    PyTorch's deprecated implicit choice differs). Integer inputs are refused.

    >>> p = tl.softmax(tl.tensor([[1.0, 2.0, 3.0]]), dim=1)
    >>> p
    tensor([[0.0900, 0.2447, 0.6652]])
    >>> round(p.sum().item(), 6)
    1.0
    """
    x = input
    if state.autocast is not None:
        return autocast_call(softmax, "softmax", x, axis, dim=dim, dtype=dtype)
    if dtype is not None:
        x = to_tensor(x).astype(dtype)
    x = as_float_tensor(x, "softmax")
    return apply(SOFTMAX, x, axis=_axis(x, axis, dim, "softmax"))


def log_softmax(x, axis: int | None = None, *, dim: int | None = None,
                dtype=None) -> Tensor:
    """log(softmax(x)) along ``axis``, computed without overflow (``dtype`` as softmax's)."""
    if state.autocast is not None:
        return autocast_call(log_softmax, "log_softmax", x, axis, dim=dim, dtype=dtype)
    if dtype is not None:
        x = to_tensor(x).astype(dtype)
    x = as_float_tensor(x, "log_softmax")
    return apply(LOG_SOFTMAX, x, axis=_axis(x, axis, dim, "log_softmax"))


def hardtanh(x, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``x`` clipped to [min_val, max_val] (``torch.nn.functional.hardtanh``).

    As PyTorch's: the gradient is 1 strictly inside (min_val, max_val) and 0 at the
    kinks and beyond them (+-inf included). NaN stays NaN, with gradient 0 always; PyTorch's
    CPU backward differs there by length (0 in its vectorised body, 1 in its scalar tail).

    >>> F.hardtanh(tl.tensor([-2.0, 0.5, 2.0]))
    tensor([-1.0000,  0.5000,  1.0000])
    """
    if not min_val < max_val:
        raise ValueError(f"hardtanh: min_val {min_val} must be below max_val {max_val}")
    # clip(strict=True): the one op of the hardtanh family (relu6, hardsigmoid), whose
    # backward is one fused pass
    return apply(CLIP, as_float_tensor(x, "hardtanh"), min=float(min_val), max=float(max_val),
                 strict=True)


def softsign(x) -> Tensor:
    """``x / (1 + |x|)``."""
    x = as_float_tensor(x, "softsign")
    return x / (x.abs() + 1.0)


def mish(x) -> Tensor:
    """``x * tanh(softplus(x))`` (Misra, 2019)."""
    from .elementwise import softplus
    x = as_float_tensor(x, "mish")
    return x * softplus(x).tanh()


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalising constants of Klambauer et al. (2017)."""
    from .elementwise import elu
    return elu(as_float_tensor(x, "selu"), _SELU_ALPHA) * _SELU_SCALE


def celu(x, alpha: float = 1.0) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``: ``alpha * elu(x / alpha)``."""
    from .elementwise import elu
    alpha = float(alpha)
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides the input)")
    x = as_float_tensor(x, "celu")
    return elu(x / alpha, 1.0) * alpha


def relu6(x) -> Tensor:
    """``min(max(x, 0), 6)`` (``torch.nn.functional.relu6``): :func:`hardtanh` on [0, 6].

    The gradient is 1 strictly inside (0, 6) and 0 at 0 and 6 and beyond, as PyTorch's
    (and relu's at 0); NaN stays NaN with gradient 0, as :func:`hardtanh`.

    >>> F.relu6(tl.tensor([-1.0, 3.0, 8.0]))
    tensor([0., 3., 6.])
    """
    return apply(CLIP, as_float_tensor(x, "relu6"), min=0.0, max=6.0, strict=True)


def hardsigmoid(x) -> Tensor:
    """``relu6(x + 3) / 6``: a piecewise-linear sigmoid (gradient 1/6 strictly inside
    (-3, 3), 0 at and beyond the breakpoints, as PyTorch's)."""
    # x + 3 is exact near -3 and 3, so the breakpoints are exactly PyTorch's
    return clip_interior(as_float_tensor(x, "hardsigmoid") + 3.0, 0.0, 6.0) / 6.0


def hardswish(x) -> Tensor:
    """``x * hardsigmoid(x)`` (MobileNetV3); its gradient is 0 at -3 and 1 at 3, as PyTorch's."""
    from .elementwise import HARDSWISH
    return apply(HARDSWISH, as_float_tensor(x, "hardswish"))


def _logsigmoid_fwd(xp, x):
    # min(x, 0) - log1p(exp(-|x|)): no overflow for large |x|
    z = xp.asarray(xp.abs(x))      # (a 0-d input gives a scalar: out= needs an array)
    xp.negative(z, out=z)
    xp.exp(z, out=z)
    xp.log1p(z, out=z)
    return (xp.minimum(x, x.dtype.type(0)) - z).astype(x.dtype, copy=False)


def _logsigmoid_cpu(x):
    # one fused pass (_fused_pointwise.h) where the composite takes six
    from .. import _ops
    if x.dtype == np.float16:      # in float32, rounded once (PyTorch's opmath)
        return _logsigmoid_cpu(x.astype(np.float32)).astype(np.float16)
    if x.dtype in FLOATS:
        out = np.empty(x.shape, x.dtype)
        _ops.logsigmoid_into(np.ascontiguousarray(x).reshape(-1), out.reshape(-1))
        return out
    return _logsigmoid_fwd(np, x)


def _logsigmoid_grad_fwd(xp, g, x):
    # g sigmoid(-x) with z = exp(-|x|) <= 1: g / (1 + z) below 0, g z / (1 + z) from 0
    z = xp.exp(-xp.abs(x))
    r = 1 / (1 + z)
    return (g * xp.where(x < 0, r, z * r)).astype(x.dtype, copy=False)


def _logsigmoid_grad_other(xp, g, x):
    if g.dtype == x.dtype == np.float16:     # in float32, rounded once (PyTorch's opmath)
        return _logsigmoid_grad_cpu(g.astype(np.float32), x.astype(np.float32)).astype(
            np.float16)
    return _logsigmoid_grad_fwd(xp, g, x)


_logsigmoid_grad_cpu = fused_grad(_ops.logsigmoid_grad_into, _logsigmoid_grad_other,
                                  dtypes=FLOATS)


def _logsigmoid_grad_vjp(n, gg):
    # d/dg: sigmoid(-x); d/dx of g sigmoid(-x) = -g s (1 - s), s = sigmoid(-x)
    from ._util import unbroadcast
    from .elementwise import sigmoid
    g, x = n.inputs
    s = sigmoid(-x)
    return (unbroadcast(apply(LOGSIGMOID_GRAD, gg, x), g._data.shape) if g._rg else None,
            unbroadcast(-(gg * g * s * (1.0 - s)), x._data.shape) if x._rg else None)


def _logsigmoid_onnx(ctx, n):
    (x,) = ctx.ins(n)
    return ctx.op("Neg", [ctx.op("Softplus", [ctx.op("Neg", [x])])])


def _logsigmoid_grad_onnx(ctx, n):
    g, x = ctx.ins(n)
    return ctx.op("Mul", [g, ctx.op("Sigmoid", [ctx.op("Neg", [x])])])


LOGSIGMOID_GRAD = register(OpDef(
    "logsigmoid_grad", _logsigmoid_grad_fwd, kernels={"cpu": _logsigmoid_grad_cpu},
    vjp=_logsigmoid_grad_vjp, onnx=_logsigmoid_grad_onnx,
    infer=lambda g, x, **a: (broadcast_shapes("logsigmoid_grad", g[0], x[0]), np.dtype(g[1])),
    cost=io_cost(), doc="log-sigmoid's backward in one pass: g sigmoid(-x)."))
LOGSIGMOID = register(OpDef(
    "logsigmoid", _logsigmoid_fwd, kernels={"cpu": _logsigmoid_cpu},
    vjp=lambda n, g: (apply(LOGSIGMOID_GRAD, g, n.inputs[0]),), onnx=_logsigmoid_onnx,
    infer=lambda x, **a: x, cost=io_cost(),
    doc="log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)) in one pass."))


def logsigmoid(x) -> Tensor:
    """``log(sigmoid(x))`` (``torch.nn.functional.logsigmoid``), computed as
    ``min(x, 0) - log1p(exp(-|x|))``: no overflow for large ``|x|``; -inf at -inf, 0 at +inf,
    NaN at NaN; the gradient is ``sigmoid(-x)`` (twice differentiable)."""
    return apply(LOGSIGMOID, as_float_tensor(x, "logsigmoid"))


def glu(x, dim: int = -1) -> Tensor:
    """Gated linear unit: ``a * sigmoid(b)`` for the two halves ``a, b`` of ``x`` along ``dim``.

    >>> F.glu(tl.ones(2, 4)).shape
    (2, 2)
    """
    x = as_float_tensor(x, "glu")
    a = norm_axis(dim, x.ndim, "glu")
    n = x.shape[a]
    if n % 2:
        raise ValueError(f"glu: dim {dim} has size {n}; halving it needs an even size")
    first, second = x.split(2, axis=a)
    return first * second.sigmoid()


def prelu(x, weight) -> Tensor:
    """``x`` where positive, else ``weight * x``; ``weight`` has one slope, or one per
    channel (dim 1 of an input with at least 2 dims), as PyTorch's ``prelu``."""
    if state.autocast is not None:
        return autocast_call(prelu, "prelu", x, weight)
    from .elementwise import where
    x = as_float_tensor(x, "prelu")
    w = as_float_tensor(weight, "prelu", "weight")
    if w.ndim != 1:
        raise ValueError(f"prelu: weight must be 1-d, got shape {tuple(w.shape)}")
    n = w.shape[0]
    if n != 1:
        if x.ndim < 2 or x.shape[1] != n:
            raise ValueError(f"prelu: {n} slopes for input {tuple(x.shape)}: the channel dim "
                             f"(dim 1) must have {n} entries")
        w = w.reshape((n,) + (1,) * (x.ndim - 2))
    return where(x > 0, x, w * x)      # at 0 the slope's gradient, as PyTorch


def gumbel_softmax(logits, tau: float = 1.0, hard: bool = False, dim: int = -1,
                   generator=None) -> Tensor:
    """A differentiable sample from the categorical distribution of ``logits`` (Jang et al.,
    2017): ``softmax((logits + Gumbel noise) / tau)``; with ``hard`` the result is one-hot in
    value and keeps the soft sample's gradient (straight-through)."""
    from ..creation import rand
    from .elementwise import where
    x = as_float_tensor(logits, "gumbel_softmax")
    if not tau > 0:
        raise ValueError(f"gumbel_softmax: tau must be positive, got {tau}")
    ax = norm_axis(dim, x.ndim, "gumbel_softmax")
    u = rand(*x.shape, generator=generator, dtype=x.dtype, device=x.device)
    tiny = float(np.finfo(x.dtype).tiny)
    g = -(-(u.clip(tiny, None)).log()).log()
    y = softmax((x + g) * (1.0 / tau), ax)
    if not hard:
        return y
    top = y.detach().max(axis=ax, keepdims=True)
    onehot = where(y.detach() == top, 1.0, 0.0).astype(y.dtype)
    return onehot - y.detach() + y
