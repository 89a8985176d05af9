"""Which registry ops run on tensorlib's own CUDA kernels, and the registry audit."""
from __future__ import annotations

import inspect

from ..ops.registry import REGISTRY

# op name -> cuda kernel f(*arrays, **attrs), for ops whose generic CuPy code is slower
BINDINGS: dict = {}


def _bind(name):
    def deco(f):
        BINDINGS[name] = f
        return f
    return deco


# --- softmax family: one block per row instead of five CuPy passes ----------------------------
@_bind("softmax")
def _softmax(x, axis):
    from .kernels import softmax
    return softmax(x, axis, log=False)


@_bind("log_softmax")
def _log_softmax(x, axis):
    from .kernels import softmax
    return softmax(x, axis, log=True)


@_bind("cross_entropy")
def _cross_entropy(x, t, *w, ignore_index, reduction, label_smoothing):
    from ..backends import cupy
    from ..ops import nn_loss
    cp = cupy()
    if w or label_smoothing or x.ndim != 2:
        return nn_loss._ce_fwd(cp, x, t, *w, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=label_smoothing)
    from .kernels import cross_entropy
    loss, _ = cross_entropy(x, t, ignore_index)
    if reduction == "none":
        return loss
    s = loss.sum(dtype=loss.dtype)
    if reduction == "sum":
        return s
    return (s / (t != ignore_index).sum()).astype(x.dtype)


# --- convolution: im2col/col2im as one kernel each, GEMMs on cuBLAS ---------------------------
def _conv(impl_name, helper_name):
    def k(*arrays, **attrs):
        from ..backends import cupy
        from ..ops import nn_conv
        from . import kernels
        return getattr(nn_conv, impl_name)(getattr(kernels, helper_name), cupy(), *arrays,
                                           **attrs)
    k.__name__ = f"cuda_{impl_name}"
    return k


BINDINGS["conv2d"] = _conv("_conv_impl", "im2col_xp")
BINDINGS["conv2d_input_grad"] = _conv("_input_grad_impl", "col2im_xp")
BINDINGS["conv2d_weight_grad"] = _conv("_weight_grad_impl", "im2col_xp")


# --- pooling: one thread per output window, argmax as the op's flat h*W+w index ---------------
_KERNEL_FLOATS = ("float16", "float32", "float64")   # float16 runs in float32 and is cast back


def _generic(name):
    """The op's generic CuPy forward, for inputs a kernel does not take."""
    from ..backends import cupy
    fwd = REGISTRY[name].fwd
    return lambda *a, **k: fwd(cupy(), *a, **k)


@_bind("max_pool2d")
def _max_pool2d(x, *, kernel, stride, padding, dilation, out_hw):
    if x.dtype.name not in _KERNEL_FLOATS or x.ndim != 4:
        return _generic("max_pool2d")(x, kernel=kernel, stride=stride, padding=padding,
                                      dilation=dilation, out_hw=out_hw)
    from .kernels import maxpool2d
    return maxpool2d(x, tuple(kernel), tuple(stride), tuple(padding), tuple(dilation),
                     tuple(out_hw))


@_bind("max_pool2d_grad")
def _max_pool2d_grad(g, idx, *, input_hw):
    if idx.shape != g.shape or idx.dtype.kind not in "iu":
        raise ValueError(f"max_pool2d_grad: indices {idx.shape} {idx.dtype} must be integers "
                         f"with the gradient's shape {g.shape}")
    if g.dtype.name not in _KERNEL_FLOATS:
        return _generic("max_pool2d_grad")(g, idx, input_hw=input_hw)
    from .kernels import maxpool2d_backward
    return maxpool2d_backward(g, idx, tuple(g.shape[:2]) + tuple(input_hw))


# --- embedding backward: one atomic add per gradient element ----------------------------------
@_bind("embedding_grad")
def _embedding_grad(g, idx, *, num_weights, padding_idx):
    if g.dtype.name not in _KERNEL_FLOATS or g.shape[:-1] != idx.shape:
        return _generic("embedding_grad")(g, idx, num_weights=num_weights,
                                          padding_idx=padding_idx)
    from .kernels import embedding_backward
    return embedding_backward(idx, g, num_weights, padding_idx)


# --- LSTM cell: the gate nonlinearities and the state update in one pass ----------------------
@_bind("lstm_cell")
def _lstm_cell(gates, c):
    if gates.dtype.name not in _KERNEL_FLOATS or c.dtype != gates.dtype:
        return _generic("lstm_cell")(gates, c)
    from .kernels import lstm_cell
    return lstm_cell(gates, c)


@_bind("lstm_cell_grad")
def _lstm_cell_grad(acts, c, c_new, gh, gc, gacts):
    if acts.dtype.name not in _KERNEL_FLOATS:
        return _generic("lstm_cell_grad")(acts, c, c_new, gh, gc, gacts)
    from .kernels import lstm_cell_backward
    return lstm_cell_backward(gh, gc, acts, c, c_new, gacts)


def install() -> list[str]:
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
