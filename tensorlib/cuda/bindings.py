"""Which registry ops run on tensorlib's own CUDA kernels, and the registry audit."""
from __future__ import annotations

import inspect

import numpy as np

from ..backends import cupy
from ..ops import accumulate
from ..ops.nn_rnn import split_acts_grad
from ..ops.registry import REGISTRY
from . import kernels

# op name -> cuda kernel f(*arrays, **attrs), for ops whose generic CuPy code is slower
BINDINGS: dict = {}
# dtypes, not names: a dtype's .name is a Python-level property, slow on a hot path
_KERNEL_FLOATS = frozenset(map(np.dtype, ("float16", "float32", "float64")))  # f16 via f32
_FLOATS = frozenset(map(np.dtype, ("float32", "float64")))   # kernels that take no float16


def _bind(name):
    def deco(f):
        BINDINGS[name] = f
        return f
    return deco


# --- softmax family: one block per row instead of five CuPy passes ----------------------------
@_bind("softmax")
def _softmax(x, axis):
    return kernels.softmax(x, axis, log=False)


@_bind("log_softmax")
def _log_softmax(x, axis):
    return kernels.softmax(x, axis, log=True)


@_bind("cross_entropy")
def _cross_entropy(x, t, *w, ignore_index, reduction, label_smoothing):
    from ..ops import nn_loss
    cp = cupy()
    if w or label_smoothing or x.ndim != 2 or x.dtype not in _KERNEL_FLOATS:
        loss = nn_loss._ce_fwd(cp, x, t, *w, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=label_smoothing)
        return _poison_bad_targets(cp, loss, t, x.shape[1], ignore_index, reduction)
    if reduction == "none":
        return kernels.cross_entropy(x, t, ignore_index)[0]
    return kernels.cross_entropy_reduced(x, t, ignore_index, reduction)


def _poison_bad_targets(cp, loss, t, C, ignore_index, reduction):
    """NaN where a target is out of range (and not ignore_index): the GPU path checks on the
    device instead of copying the target to the host, which would synchronise every call."""
    bad = (t != ignore_index) & ((t < 0) | (t >= C))
    nan = cp.full((), np.nan, loss.dtype)   # a fill kernel: no host-to-device copy
    return cp.where(bad if reduction == "none" else bad.any(), nan, loss)


@_bind("cross_entropy_grad")
def _cross_entropy_grad(x, t, g, **attrs):
    if (set(attrs) != {"ignore_index", "reduction"} or x.ndim != 2 or x.dtype not in _FLOATS
            or t.dtype.kind not in "iu" or g.size != (x.shape[0] if attrs["reduction"] == "none"
                                                         else 1)):
        return _generic("cross_entropy_grad")(x, t, g, **attrs)
    return kernels.cross_entropy_grad(x, t, g, int(attrs["ignore_index"]), attrs["reduction"])


@_bind("nll_loss")
def _nll_loss(x, t, *w, ignore_index, reduction):
    from ..ops import nn_loss
    cp = cupy()
    loss = nn_loss._nll_fwd(cp, x, t, *w, ignore_index=ignore_index, reduction=reduction)
    C = x.shape[1] if x.ndim >= 2 else x.shape[0]
    return _poison_bad_targets(cp, loss, t, C, ignore_index, reduction)


# --- convolution: im2col/col2im as one kernel each, GEMMs on cuBLAS ---------------------------
def _conv(impl_name, helper_name):
    def k(*arrays, **attrs):
        from ..ops import nn_conv
        return getattr(nn_conv, impl_name)(getattr(kernels, helper_name), cupy(), *arrays,
                                           **attrs)
    k.__name__ = f"cuda_{impl_name}"
    return k


BINDINGS["conv2d"] = _conv("_conv_impl", "im2col_xp")
BINDINGS["conv2d_input_grad"] = _conv("_input_grad_impl", "col2im_xp")
BINDINGS["conv2d_weight_grad"] = _conv("_weight_grad_impl", "im2col_xp")


# --- pooling: one thread per output window, argmax as the op's flat h*W+w index ---------------


def _generic(name):
    """The op's generic CuPy forward, for inputs a kernel does not take."""
    fwd = REGISTRY[name].fwd
    return lambda *a, **k: fwd(cupy(), *a, **k)


@_bind("max_pool2d")
def _max_pool2d(x, *, kernel, stride, padding, dilation, ceil_mode):
    if x.dtype not in _KERNEL_FLOATS or x.ndim != 4:
        return _generic("max_pool2d")(x, kernel=kernel, stride=stride, padding=padding,
                                      dilation=dilation, ceil_mode=ceil_mode)
    from ..ops.nn_pool import _out_hw
    return kernels.maxpool2d(x, tuple(kernel), tuple(stride), tuple(padding), tuple(dilation),
                     _out_hw(x.shape[2:], kernel, stride, padding, dilation, ceil_mode))


@_bind("max_pool2d_grad")
def _max_pool2d_grad(g, idx, *, input_hw):
    if idx.shape != g.shape or idx.dtype.kind not in "iu":
        raise ValueError(f"max_pool2d_grad: indices {idx.shape} {idx.dtype} must be integers "
                         f"with the gradient's shape {g.shape}")
    if g.dtype not in _KERNEL_FLOATS:
        return _generic("max_pool2d_grad")(g, idx, input_hw=input_hw)
    return kernels.maxpool2d_backward(g, idx, tuple(g.shape[:2]) + tuple(input_hw))


# --- embedding backward: one atomic add per gradient element ----------------------------------
@_bind("embedding_grad")
def _embedding_grad(g, idx, *into, num_weights, padding_idx):
    # a running sum (into) is added into straight, where it has g's dtype and layout
    if (g.dtype not in _KERNEL_FLOATS or g.shape[:-1] != idx.shape
            or into and (into[0].dtype != g.dtype or g.dtype not in _FLOATS
                         or not into[0].flags.c_contiguous)):
        return _generic("embedding_grad")(g, idx, *into, num_weights=num_weights,
                                          padding_idx=padding_idx)
    return kernels.embedding_backward(idx, g, num_weights, padding_idx,
                                      out=into[0] if into else None)


# --- embedding forward: rows for out-of-range indices are NaN (checked on the device) ---------
@_bind("embedding")
def _embedding(w, idx, *, padding_idx):
    cp = cupy()
    if w.ndim == 2 and w.dtype in _FLOATS and idx.dtype.kind in "iu":
        return kernels.embedding_forward(w, idx)
    out = cp.take(w, idx, axis=0)    # CuPy wraps out-of-range indices: never reads outside
    if out.dtype.kind != "f" or not out.size:
        return out
    bad = (idx < 0) | (idx >= w.shape[0])
    return cp.where(bad[..., None], cp.full((), np.nan, out.dtype), out)


# --- sum over leading and trailing axes at once (a conv bias gradient): two passes -----------
def sum_in_two_passes(xp, x, axis, keepdims):
    """``x.sum(axis)`` when ``axis`` holds the last axes and some leading ones, as
    (N, C, H, W) -> (C,) does: the trailing run first (contiguous rows, one block each), then
    the rest. One CuPy reduction over (0, 2, 3) gives only C blocks for all the work."""
    nd = x.ndim
    ax = (tuple(range(nd)) if axis is None else
          tuple(sorted(a % nd for a in ((axis,) if isinstance(axis, int) else axis))))
    t = 0
    while t < len(ax) and ax[len(ax) - 1 - t] == nd - 1 - t:
        t += 1
    if not (0 < t < len(ax)) or not x.flags.c_contiguous or x.dtype not in _FLOATS:
        return None
    y = x.reshape(x.shape[:nd - t] + (-1,)).sum(axis=-1)
    y = y.sum(axis=ax[:len(ax) - t])
    if keepdims:
        y = y.reshape(tuple(1 if i in ax else d for i, d in enumerate(x.shape)))
    return y


@_bind("sum")
def _sum(x, *, axis, keepdims):
    if x.ndim == 2 and axis in (0, -2, (0,), (-2,)):
        y = _col_sum(x)
        if y is not None:
            return y.reshape(1, -1) if keepdims else y
    y = sum_in_two_passes(cupy(), x, axis, keepdims)
    return y if y is not None else _generic("sum")(x, axis=axis, keepdims=keepdims)


# --- linear: cuBLAS GEMMs; the bias added in place, its gradient by column sums ---------------
def _same_float(*arrays) -> bool:
    d = arrays[0].dtype
    return d in _FLOATS and all(a.dtype == d for a in arrays)


@_bind("linear")
def _linear(x, w, *b):
    if not b or b[0].ndim != 1 or not _same_float(x, w, b[0]):
        return _generic("linear")(x, w, *b)
    from ..ops.nn_layers import _rows
    out = cupy().matmul(_rows(x) if x.ndim != 2 else x, w.T)
    kernels.add_bias_(out, b[0])
    return out.reshape(x.shape[:-1] + (w.shape[0],)) if x.ndim != 2 else out


_COL_SUM_ROWS = 4096    # beyond it CuPy's reduction spreads the rows over more blocks


def _col_sum(x2, into=()):
    """``x2.sum(axis=0)`` of a 2-D float32/float64 array in one launch of a column-sum
    kernel (CuPy's reduction costs the host twice as much), or added into the one or two
    arrays ``into`` (then ``into[0]`` is returned); None where it does not fit."""
    if (x2.dtype in _FLOATS and x2.flags.c_contiguous and x2.shape[0] <= _COL_SUM_ROWS
            and len(into) <= 2 and all(t.dtype == x2.dtype and t.flags.c_contiguous
                                       and t.shape == x2.shape[1:] for t in into)):
        return kernels.col_sum(x2, *into)
    return None


# the backward pass's running sums (tensorlib.ops.accumulate): cuBLAS's GEMM with beta = 1
# and the column-sum kernel
ACCUMULATE_KERNELS = {"add_product": kernels.add_product, "col_sum": _col_sum}


# --- elementwise: one kernel launch where the generic code launches several -------------------
@_bind("sigmoid")
def _sigmoid(x):
    if x.dtype not in _FLOATS:
        return _generic("sigmoid")(x)
    return kernels.act_forward(x, "sigmoid")


def _act_grad(name, act):
    def k(g, v):
        if g.dtype not in _FLOATS or g.dtype != v.dtype or g.shape != v.shape:
            return _generic(name)(g, v)
        return kernels.act_backward(g, v, act)
    k.__name__ = f"cuda_{name}"
    return k


BINDINGS["tanh_grad"] = _act_grad("tanh_grad", "tanh")
BINDINGS["sigmoid_grad"] = _act_grad("sigmoid_grad", "sigmoid")
BINDINGS["relu_grad"] = _act_grad("relu_grad", "relu")   # 0 where x <= 0 else g


def _binary(name, ufunc):
    def k(a, b):
        if kernels.binary_ok(a, b):
            return kernels.binary(a, b, name)
        return getattr(cupy(), ufunc)(a, b)
    k.__name__ = f"cuda_{name}"
    return k


BINDINGS["add"] = _binary("add", "add")
BINDINGS["sub"] = _binary("sub", "subtract")
BINDINGS["mul"] = _binary("mul", "multiply")


# --- layer norm: one block per row each way (statistics two-pass, in the row's registers) -----
def _ln_rows(x, ndim):
    """(rows, statistics' shape) of layer_norm over the trailing ``ndim`` dims of ``x``."""
    from ..ops.nn_norm import _ln_stat_shape
    return int(np.prod(x.shape[:x.ndim - ndim], dtype=np.int64)), _ln_stat_shape(x.shape, ndim)


@_bind("layer_norm")
def _layer_norm(x, *wb, eps, ndim, affine):
    if x.dtype not in _KERNEL_FLOATS or not x.size or any(a.dtype != x.dtype for a in wb):
        return _generic("layer_norm")(x, *wb, eps=eps, ndim=ndim, affine=affine)
    from ..ops.nn_norm import _split_affine
    w, b = _split_affine(wb, affine)
    y, mean, rstd = kernels.layer_norm(x, w, b, eps, n_last=ndim)
    _, stat = _ln_rows(x, ndim)
    return (y, mean.astype(x.dtype, copy=False).reshape(stat),
            rstd.astype(x.dtype, copy=False).reshape(stat))


@_bind("layer_norm_grad")
def _layer_norm_grad(x, mean, rstd, gy, gmean, grstd, *w, ndim):
    rows, stat = _ln_rows(x, ndim)
    if (x.dtype not in _KERNEL_FLOATS or not x.size or gy.shape != x.shape
            or not mean.shape == rstd.shape == gmean.shape == grstd.shape == stat
            or any(a.dtype != x.dtype for a in (mean, rstd, gy, gmean, grstd, *w))):
        return _generic("layer_norm_grad")(x, mean, rstd, gy, gmean, grstd, *w, ndim=ndim)
    dx = kernels.layer_norm_backward_input(x, gy, w[0] if w else None, mean, rstd, ndim,
                                           gmean, grstd)
    # the weight and bias gradients: sums over the rows of gy * xhat and of gy
    ns = x.shape[x.ndim - ndim:]
    xhat = (x.reshape(rows, -1) - mean.reshape(rows, 1)) * rstd.reshape(rows, 1)
    g2 = gy.reshape(rows, -1)
    return dx, (g2 * xhat).sum(axis=0).reshape(ns), g2.sum(axis=0).reshape(ns)


# --- LSTM cell: the gate nonlinearities and the state update in one pass ----------------------
@_bind("lstm_cell")
def _lstm_cell(gates, c, *addends):
    # the kernel adds one gates-shaped addend, then up to two rows: the CPU's order when
    # they come in that order (F.lstm_cell's); anything else goes to the generic code
    lead = 1 if addends and addends[0].shape == gates.shape else 0
    rows = addends[lead:]
    if (gates.dtype not in _KERNEL_FLOATS or any(a.dtype != gates.dtype for a in (c, *addends))
            or len(rows) > 2 or any(a.ndim != 1 for a in rows)):
        return _generic("lstm_cell")(gates, c, *addends)
    return kernels.lstm_cell(gates, c, addends[0] if lead else None, *rows)


@_bind("lstm_cell_grad")
def _lstm_cell_grad(acts, c, c_new, gh, gc, *rest, acts_grad=True):
    if acts.dtype not in _KERNEL_FLOATS:
        return _generic("lstm_cell_grad")(acts, c, c_new, gh, gc, *rest, acts_grad=acts_grad)
    gacts, sums = split_acts_grad(rest, acts_grad)
    dgates, dc = kernels.lstm_cell_backward(gh, gc, acts, c, c_new, gacts)
    if sums:    # the biases' running sums: one column-sum launch for both
        accumulate.col_sum(cupy(), dgates, sums)
    return dgates, dc


def install() -> list[str]:
    accumulate.KERNELS["cupy"] = ACCUMULATE_KERNELS
    bound = []
    for name, k in BINDINGS.items():
        op = REGISTRY.get(name)
        if op is not None and op.kernels.get("cuda") is not k:
            op.set_kernel("cuda", k)
            bound.append(name)
    return bound


def _cpu_only_call(fwd) -> bool:
    """Whether generic ``fwd(xp, ...)`` code calls a CPU-only kernel (tensorlib._ops)
    without a branch for other array modules."""
    try:
        src = inspect.getsource(fwd)
    except (OSError, TypeError):
        return False
    return "_ops." in src and "xp is np" not in src and "xp is not np" not in src


def missing_cuda_kernels() -> list[str]:
    """Registered ops with no CUDA forward: a backend-specific kernel set without a
    ``cuda`` one, or generic code that calls a CPU-only kernel."""
    missing = []
    for name, op in sorted(REGISTRY.items()):
        if "cuda" in op.kernels:
            continue
        if op.ufunc is not None:
            continue
        if op.fwd is not None and not _cpu_only_call(op.fwd):
            continue
        missing.append(name)
    return missing
