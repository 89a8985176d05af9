"""PyTorch's ``out=`` argument, for the ``tl.*`` functions that take one in PyTorch.

The result is computed as without ``out=``, then written into ``out`` (a tuple of tensors
for functions returning several, such as ``max`` along a dim or ``sort``), which is
returned. As in PyTorch:

- ``out`` keeps its dtype: the result is cast to it where PyTorch's ``canCast`` allows
  (an int result into a float tensor), else ``RuntimeError`` (a float result into an int
  tensor);
- an ``out`` of another shape is resized, with a ``UserWarning`` unless it was empty;
- a result that would need a gradient refuses ``out=`` (``RuntimeError``): autograd does
  not record writes into ``out``;
- factories (``tl.zeros(2, 3, out=t)``) make ``out``'s dtype and device unless told.

>>> c = tl.empty(3)
>>> tl.add(tl.tensor([1., 2., 3.]), 1, out=c) is c
True
"""
from __future__ import annotations

import functools
import warnings

from .. import _dtypes
from .._tensor import Tensor
from ..autograd.mode import state

__all__ = ["with_out", "write_out"]


def _write_one(name: str, result, out) -> None:
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): out= must be a Tensor, got {type(out).__name__}")
    if not isinstance(result, Tensor):
        from ..creation import tensor
        result = tensor(result)
    if state.grad_enabled and (result.requires_grad or out.requires_grad):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support "
                           "automatic differentiation, but one of the arguments requires grad")
    if result.device != out.device:
        raise RuntimeError(f"{name}(): expected out= on {result.device}, the device of the "
                           f"result, got {out.device}")
    if not _dtypes.can_store(result.dtype, out.dtype):
        raise RuntimeError(f"{name}(): result type {result.dtype} can't be cast to the "
                           f"desired output type {out.dtype}")
    if tuple(out.shape) == tuple(result.shape):
        out.copy_(result)
        return
    if state.tracer is not None:
        raise RuntimeError(f"{name}(): out= of shape {tuple(out.shape)} would be resized to "
                           f"{tuple(result.shape)}, which a captured graph cannot record; "
                           "pass an out= of the result's shape")
    if out._base is not None:
        raise RuntimeError(f"{name}(): out= is a view of shape {tuple(out.shape)}; the result "
                           f"has shape {tuple(result.shape)} and a view cannot be resized")
    if out.numel():
        warnings.warn(f"{name}(): an output with one or more elements was resized since it "
                      f"had shape {list(out.shape)}, which does not match the required output "
                      f"shape {list(result.shape)}", UserWarning, stacklevel=4)
    value = result.detach()
    out.data = value.astype(out.dtype) if value.dtype != out.dtype else value.clone()


def write_out(name: str, result, out):
    """Write ``result`` (a tensor, or a tuple of them) into ``out`` as PyTorch's ``out=``
    does and return what the function returns with it: ``out``, or a tuple of ``out``'s
    tensors of ``result``'s tuple type (a named tuple keeps its field names)."""
    if not isinstance(result, tuple):
        if isinstance(out, (tuple, list)):
            raise TypeError(f"{name}(): out= must be one Tensor here, got a "
                            f"{type(out).__name__}")
        _write_one(name, result, out)
        return out
    if not isinstance(out, (tuple, list)) or len(out) != len(result):
        raise TypeError(f"{name}(): out= must be a tuple of {len(result)} tensors here, got "
                        f"{type(out).__name__}"
                        + (f" of {len(out)}" if isinstance(out, (tuple, list)) else ""))
    for r, o in zip(result, out):
        _write_one(name, r, o)
    return type(result)(*out) if hasattr(result, "_fields") else tuple(out)


def with_out(fn, factory: bool = False):
    """``fn`` taking PyTorch's keyword ``out=`` too (see the module docstring); a
    ``factory`` also takes ``dtype`` and ``device`` from ``out`` unless they are given."""
    name = fn.__name__
    single = _ONE_TENSOR_FORM.get(name)

    @functools.wraps(fn)
    def call(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        if single and isinstance(out, Tensor):
            kwargs = {**single, **kwargs}
        if factory and isinstance(out, Tensor):
            if kwargs.get("dtype") is None:
                kwargs["dtype"] = out.dtype
            if kwargs.get("device") is None:
                kwargs["device"] = out.device
        return write_out(name, fn(*args, **kwargs), out)
    return call


# keyword arguments that give PyTorch's one-tensor result where tensorlib's default is
# NumPy's tuple (torch.nonzero(x, out=t) fills an (n, ndim) tensor)
_ONE_TENSOR_FORM = {"nonzero": {"as_tuple": False}}

# The functions that take out= in PyTorch (those tensorlib has get it in tensorlib/__init__)
FUNCTIONS = """
abs absolute acos acosh add addbmm addcdiv addcmul addmm addmv addr amax amin aminmax all any
arccos arccosh arcsin arcsinh arctan arctan2 arctanh asin asinh atan atan2 atanh baddbmm
bitwise_and bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift bitwise_xor bmm
bucketize cat ceil clamp clip column_stack concat concatenate copysign cos cosh cross cummax
cummin cumprod cumsum deg2rad diag diff digamma div divide dot dstack eq erf erfc erfinv exp
exp2 expm1 fix float_power floor floor_divide fmax fmin fmod frac gather gcd ge ger greater
greater_equal gt heaviside histc hstack hypot i0 index_select inner inverse isin kron
kthvalue lcm ldexp le lerp less less_equal lgamma log log10 log1p log2 logaddexp logaddexp2
logcumsumexp logical_and logical_not logical_or logical_xor logit logsumexp lt masked_select
matmul max maximum mean median min minimum mm mode msort mul multiply mv mvlgamma nan_to_num
nanmean nanmedian nanquantile nansum narrow_copy ne neg negative nextafter nonzero norm
not_equal outer polygamma pow prod quantile rad2deg reciprocal remainder round rsqrt
searchsorted sgn sigmoid sign signbit sin sinc sinh sort sqrt square stack std sub subtract
sum take take_along_dim tan tanh tensordot topk trapz tril triu true_divide trunc var vdot
vstack where xlogy
""".split()

FACTORIES = "arange empty eye full linspace logspace ones rand randint randn randperm zeros".split()
