"""tensorlib: an eager-mode autograd tensor library.

>>> import tensorlib as tl
>>> x = tl.randn(3, 4, requires_grad=True)
>>> loss = (x.tanh() ** 2).sum()
>>> loss.backward()
>>> x.grad.shape
(3, 4)
"""
from __future__ import annotations

import os as _os
import math as _math

# The Cython kernels use OpenMP and NumPy's BLAS has its own thread pool. With OpenMP's
# default (active) wait policy, idle OpenMP threads spin after every parallel region and
# take the cores BLAS needs: on 2 cores that made a convnet step 8x slower (W3: 378 ms ->
# 44 ms with PASSIVE). libgomp reads this once, when the kernels' module loads; a value
# the user set wins. The price is the wake-up of sleeping threads, 60-160 µs per parallel
# region on 2-core VMs. A short spin (GOMP_SPINCOUNT=3000, ~0.1 ms) halved mid-sized ops'
# times but made W3 16% slower where its products run on threaded OpenBLAS, so it is not
# the default (benchmarks/README.md, twenty-eighth session).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import _ops as _kernels  # noqa: E402  (loads OpenMP with the policy above)

# a forked child (multiprocessing on Linux) cannot use the parent's OpenMP threads
_os.register_at_fork(after_in_child=_kernels._after_fork_in_child)

from . import _malloc

_malloc.tune()     # keep freed step-sized arrays in the heap (see _malloc; opt out there)

# NumPy's floating-point warnings (log of a negative, 0 / 0) surface at tensorlib's own call
# sites, pointing into the library; tensors give inf and nan silently, as PyTorch's do. The
# filter matches warnings attributed to tensorlib's modules only (the user's own NumPy code
# still warns); TENSORLIB_FP_WARNINGS=1 keeps them, and tl.autograd.detect_anomaly finds NaN.
if _os.environ.get("TENSORLIB_FP_WARNINGS", "0") != "1":
    import warnings as _warnings

    _warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tensorlib(\.|$)")

from . import _dtypes as dtypes
from ._device import Device, device
from ._dtypes import (bool_, double, float16, float32, float64, half, int8, int16, int32,
                      int64, long, uint8)
from ._dtypes import bool_ as bool  # noqa: A001  (tl.bool, as torch.bool; no bool() below)
from ._tensor import Tensor, set_printoptions
from . import ops as _ops_registry  # noqa: F401  (registers every op)
from . import _tensor_methods  # noqa: F401  (binds operators to the registry)
from ._apply import apply
from .autograd import (Function, detect_anomaly, enable_grad, grad, gradcheck, gradgradcheck,
                       inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                       set_grad_enabled)
from .creation import (arange, as_tensor, empty, empty_like, eye, from_dlpack, from_numpy,
                       full, full_like, linspace, normal, ones, ones_like, rand, rand_like,
                       randint, randn, randn_like, randperm, tensor, uniform, zeros, zeros_like)
from .ops.elementwise import (acos, acosh, arccos, arccosh, arcsin, arcsinh, arctan, arctan2,
                              arctanh, asin, asinh, atan, atan2, atanh, cosh, hypot, logaddexp,
                              sinh)
from .ops.elementwise import (bitwise_and, bitwise_not, bitwise_or, bitwise_xor, left_shift,
                              right_shift)
from .ops.elementwise import (abs, add, ceil, clamp, clip, cos, div, divide, elu, eq, equal,
                              erf, exp, exp2, expm1, floor, floor_divide, ge, gelu, greater,
                              greater_equal, gt, isfinite, isinf, isnan, le, leaky_relu, less,
                              less_equal, log, log1p, log2, logical_and, logical_not,
                              logical_or, logical_xor, lt, maximum, minimum, mod, mul, multiply,
                              ne, neg, not_equal, pow, power, reciprocal, relu, remainder,
                              rsqrt, sigmoid, sign, silu, sin, softplus, sqrt, square,
                              sub, subtract, tan, tanh, true_divide, trunc)
from .ops.indexing import (gather, getitem, index_add, index_select, masked_fill, one_hot,
                           scatter_add, setitem, take, take_along_axis)
from .ops.indexing import index_fill, index_put, masked_select, scatter
from .ops.linalg import dot, einsum, matmul, outer, tensordot
from .ops.reduction import (all, amax, amin, any, argmax, argmin, cumprod, cumsum, logsumexp,
                            max, mean, min, norm, prod, std, sum, var)
from .ops.registry import REGISTRY, OpDef
from .ops.sorting import argsort, sort, topk
from .ops.diagonal import diag, diagonal, trace
from .ops.numeric import addcdiv, addcmul, allclose, isclose, lerp, nan_to_num
from .ops.rearrange import meshgrid, moveaxis, movedim, repeat_interleave
from .ops.statistics import median, quantile
from .ops.data_dependent import argwhere, bincount, nonzero, searchsorted, unique, where
from .ops.data_dependent import bucketize, isin
from ._dtypes import finfo, iinfo
from .ops.sampling import bernoulli, binomial, multinomial
from .ops.shape import (astype, broadcast_to, cat, chunk, clone, concat, concatenate, expand,
                        expand_dims, flatten, flip, pad, permute, repeat, reshape, roll, split,
                        split_sizes, squeeze, stack, swapaxes, tile, to_device, transpose, tril,
                        triu, unbind, unsqueeze)
from .ops.shape import narrow, select, unflatten
from .random import Generator, manual_seed
from .random import default_generator, get_rng_state, initial_seed, seed, set_rng_state
from .ops.cumulative import cummax, cummin, diff, logcumsumexp
from .ops.moments import count_nonzero, nanmean, nansum, std_mean, var_mean
from .ops.batched import addmm, baddbmm, bmm
from .ops.pairwise import cdist
from .ops.rotation import rot90
from .ops.special_fns import digamma, erfc, erfinv, i0, lgamma, polygamma
from .ops.torch_api import EXPORTS as _torch_api_exports
globals().update(_torch_api_exports)  # torch.* names; tl.range shadows the builtin below
from .ops.histogram import histogram, histogramdd
from .ops.lowrank import pca_lowrank, svd_lowrank
from .ops.rounding import round  # noqa: A004  (torch.round(x, decimals=); E.round without)
from .random import poisson
from .special import xlogy
from .ops.special_more import igamma, igammac
from .ops.foreach import EXPORTS as _exports_foreach  # noqa: E402  (tl._foreach_add_...)
globals().update(_exports_foreach)
from . import _torch_methods  # noqa: F401  (more of PyTorch's Tensor methods)
from . import sparse  # noqa: E402  (sparse COO tensors; binds Tensor.to_sparse/to_dense)
from .sparse import sparse_coo, sparse_coo_tensor  # noqa: E402
from .sparse import _dense_to_dense, _dense_to_sparse  # noqa: E402
Tensor.to_sparse = _dense_to_sparse
Tensor.to_dense = _dense_to_dense
from ._torch_methods import is_inference, layout, resolve_neg, strided  # noqa: E402
from .ops.complex import (complex, conj, conj_physical, imag, polar, real,  # noqa: E402,A004
                          resolve_conj, sgn, view_as_complex, view_as_real)
from ._dtypes import cdouble, cfloat, complex64, complex128  # noqa: E402
import numpy as _np  # noqa: E402

#: the class of tensorlib's dtypes (``isinstance(x.dtype, tl.dtype)``, as ``torch.dtype``):
#: they are NumPy dtypes, so ``np.dtype`` itself
dtype = _np.dtype
from . import func  # noqa: E402  (tl.func: functional_call, grad)
from .func import vmap  # noqa: E402  (tl.vmap, as tl.func.vmap)
from . import special  # noqa: E402  (tl.special: torch.special's functions)
from . import fft  # noqa: E402, F401  (tl.fft: torch.fft's transforms)
from . import signal  # noqa: E402, F401  (tl.signal.windows: torch.signal.windows)
from . import autograd  # noqa: E402
from . import cuda  # noqa: E402  (GPU queries and kernels; imports without a GPU)
from . import nn, optim, data, train  # noqa: E402  (training stack)
softmax, log_softmax = nn.functional.softmax, nn.functional.log_softmax  # F's, float16 too
from .io import load, save  # noqa: E402  (checkpoints, safetensors)
from . import graph  # noqa: E402  (graph capture)
from . import distributed  # noqa: E402  (remote workers on Ray; imports ray lazily)
from . import linalg  # noqa: E402  (tl.linalg: matrix functions)
from . import distributions  # noqa: E402  (tl.distributions: Normal, Categorical, ...)
from .graph import Graph, TensorSpec, capture, function  # noqa: E402
from .export import GraphModule, load_graph, save_graph  # noqa: E402  (native graph file)
from . import onnx  # noqa: E402  (ONNX export/import; imports the onnx package lazily)
from . import amp  # noqa: E402  (mixed precision: autocast, GradScaler)
from . import profiler  # noqa: E402  (tl.profiler.profile: per-op times, as torch.profiler)
from .amp import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: E402

__version__ = "0.1.0"

from ._config import show_config  # noqa: E402
from ._threads import get_num_threads, set_num_threads  # noqa: E402


def is_tensor(obj) -> bool:
    """Whether ``obj`` is a :class:`Tensor` (a Parameter is one)."""
    return isinstance(obj, Tensor)


def get_default_dtype():
    """The dtype of tensors made from Python floats, and of new layers' parameters."""
    return dtypes.default_float


from . import errors  # noqa: E402, F401  (ShapeError, DTypeError: also RuntimeErrors)
from . import testing  # noqa: E402, F401  (tl.testing.assert_close)

# torch's math constants (torch.pi, torch.inf, ...) and NumPy's newaxis
pi, e, inf, nan, newaxis = _math.pi, _math.e, _math.inf, _math.nan, None
from . import utils  # noqa: E402  (tensorlib.utils.data: torch.utils.data's path)
from .utils import checkpoint as _utils_checkpoint  # noqa: E402, F401  (tl.utils.checkpoint)
from .utils import hooks as _utils_hooks  # noqa: E402, F401  (tl.utils.hooks)
from .distributions import utils as _distributions_utils  # noqa: E402, F401
from .compile import compile  # noqa: E402, A004  (torch.compile's stand-in over tl.function)
from .ops.legacy_tensors import EXPORTS as _legacy  # noqa: E402
globals().update(_legacy)       # LongTensor, FloatTensor, ...


def set_default_dtype(dtype) -> None:
    """Set :func:`get_default_dtype`: float32 (the default), float64 or float16.

    >>> tl.set_default_dtype(tl.float64)     # e.g. for gradient checks in a notebook
    >>> tl.set_default_dtype(tl.float32)     # back to the default
    """
    dt = dtypes.as_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"set_default_dtype: only floating dtypes can be the default, got {dt}")
    dtypes.default_float = dt


# PyTorch's dtype names that shadow Python builtins, bound last (the code above uses the
# builtins): tl.float is float32, tl.int int32, tl.bool bool, as torch.float/int/bool
globals().update({"float": dtypes.float32, "int": dtypes.int32, "bool": dtypes.bool_,
                  "short": dtypes.int16})

# PyTorch's out= on the functions that take it there (tl.add(a, b, out=c)); bound last, over
# the final names (the library's own modules call the plain functions)
from .ops import out_arg as _out_arg  # noqa: E402

for _name in _out_arg.FUNCTIONS + _out_arg.FACTORIES:
    globals()[_name] = _out_arg.with_out(globals()[_name], factory=_name in _out_arg.FACTORIES)
del _name
from ._subclass import install as _install_subclass  # noqa: E402  (tl._C, __torch_function__)
_install_subclass(globals())
