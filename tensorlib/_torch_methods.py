"""More of PyTorch's Tensor methods, bound onto :class:`Tensor` (imported by the package after
``_tensor_methods``): thin wrappers over the registry's functions and the composites of
``tensorlib/ops/torch_api.py``, PyTorch's in-place random fills (drawn from tensorlib's global
generator or a given ``tl.Generator``, as ``uniform_``/``normal_``, so ``tl.manual_seed``
controls them) and ``fill_diagonal_``. A name some other module already bound is left alone.

The second round adds the methods of the round-2 modules (``Tensor.unfold``,
``scatter_reduce``, ``index_reduce``, the PyTorch spellings of comparisons and arithmetic,
...), every in-place form generated from its out-of-place function by one helper
(``_inplace_fn``: leaf check, views' write-back, version counter, capture) from the table
``_INPLACE``, and the in-place shape changes (``t_``, ``squeeze_``, ``transpose_``, ...).
"""
from __future__ import annotations

import math

import numpy as np

from . import _dtypes
from . import linalg as _linalg
from ._tensor import Tensor
from ._tensor_methods import _check_leaf, _copy_, _current, _inplace_fn
from .ops import inplace_index as FI
from .ops.inplace_index import fast_or
from .autograd.mode import state
from .ops import batched as B
from .ops import data_dependent as DD
from .ops import diagonal as DG
from .ops import elementwise as E
from .ops import nn_act as NA
from .ops import numeric as NU
from .ops import pairwise as PW
from .ops import reduction as R
from .ops import sampling as SA
from .ops import scatter_reduce as SR
from .ops import shape as S
from .ops import special_fns as SF
from .ops import special_more as SMO
from .ops import stft as ST
from .ops import torch_api as TA
from .ops import torch_dtypes as TD
from .ops import linalg_more as _linalg_more
from .ops import torch_linalg as TL
from .ops import torch_math as TM
from .ops import torch_views as TV
from .ops._util import require_tensor


# --- plain methods -----------------------------------------------------------------------------
def _bmm(self, mat2) -> Tensor:
    """Batched matrix product with ``mat2`` (PyTorch's ``Tensor.bmm``)."""
    return B.bmm(self, mat2)


def _addmm(self, mat1, mat2, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """``beta * self + alpha * (mat1 @ mat2)`` (PyTorch's ``Tensor.addmm``)."""
    return B.addmm(self, mat1, mat2, beta=beta, alpha=alpha)


def _baddbmm(self, batch1, batch2, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """``beta * self + alpha * bmm(batch1, batch2)`` (PyTorch's ``Tensor.baddbmm``)."""
    return B.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)


def _addmv(self, mat, vec, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """``beta * self + alpha * (mat @ vec)`` (PyTorch's ``Tensor.addmv``)."""
    return TA.addmv(self, mat, vec, beta=beta, alpha=alpha)


def _addr(self, vec1, vec2, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """``beta * self + alpha * outer(vec1, vec2)`` (PyTorch's ``Tensor.addr``)."""
    return TA.addr(self, vec1, vec2, beta=beta, alpha=alpha)


def _where(self, condition, other) -> Tensor:
    """``self`` where ``condition`` else ``other`` (PyTorch's ``x.where(cond, y)``)."""
    return E.where(DD.bool_condition(condition), self, other)


def _reshape_as(self, other: Tensor) -> Tensor:
    """This tensor reshaped to ``other``'s shape (PyTorch's ``reshape_as``)."""
    return self.reshape(tuple(other.shape))


def _element_size(self) -> int:
    """Bytes per element (PyTorch's ``element_size``)."""
    return int(self._data.itemsize)


def _nelement(self) -> int:
    """The number of elements (PyTorch's ``nelement``, ``numel``)."""
    return self.numel()


def _ndimension(self) -> int:
    """The number of dims (PyTorch's ``ndimension``)."""
    return self.ndim


def _isin(self, test_elements, *, assume_unique: bool = False,
          invert: bool = False) -> Tensor:
    """Whether each element is among ``test_elements`` (``torch.isin(self, ...)``)."""
    return DD.isin(self, test_elements, assume_unique=assume_unique, invert=invert)


def _diag(self, diagonal: int = 0) -> Tensor:
    """A 1-d tensor as a diagonal matrix, or a copy of a matrix's diagonal (PyTorch's
    ``diag``)."""
    return DG.diag(self, diagonal)


def _det(self) -> Tensor:
    """The determinant (``tl.linalg.det``)."""
    return _linalg.det(self)


def _inverse(self) -> Tensor:
    """The matrix inverse (``tl.linalg.inv``)."""
    return _linalg.inv(self)


def _cdist(self, x2, p: float = 2.0,
           compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """p-norm distances between the rows of ``self`` and of ``x2`` (``tl.cdist``)."""
    return PW.cdist(self, x2, p, compute_mode)


def _aminmax(self, *, dim: int | None = None, keepdim: bool = False):
    """``(min, max)`` over ``dim`` or everything (PyTorch's ``aminmax``)."""
    return TA.aminmax(self, dim=dim, keepdim=keepdim)


def _histc(self, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:
    """Counts in ``bins`` equal bins over [min, max] (PyTorch's ``histc``)."""
    return TA.histc(self, bins, min, max)


def _unique_consecutive(self, return_inverse: bool = False, return_counts: bool = False,
                        dim: int | None = None):
    """Collapse runs of equal consecutive values (PyTorch's ``unique_consecutive``)."""
    return TA.unique_consecutive(self, return_inverse, return_counts, dim)


def _fill_diagonal_(self, fill_value, wrap: bool = False) -> Tensor:
    """Fill the main diagonal in place (PyTorch's ``fill_diagonal_``; ``wrap`` continues
    below the square part of a tall matrix)."""
    from .creation import tensor
    mask = TA.fill_diagonal_mask(tuple(self.shape), wrap)
    return self.masked_fill_(tensor(mask, device=self.device), fill_value)


# --- in-place random fills ---------------------------------------------------------------------
def _float_fill(self, name: str) -> None:
    if self.dtype.kind != "f":
        raise TypeError(f"{name}: a continuous distribution needs a floating-point tensor, got "
                        f"{self.dtype}")


def _uniform01(self, generator) -> Tensor:
    """Draws from U[0, 1) of this shape, in float64 (the global or a given generator)."""
    from .creation import rand
    return rand(*tuple(self.shape), generator=generator, dtype=np.float64,
                device=self.device)


def _exponential_(self, lambd: float = 1.0, *, generator=None) -> Tensor:
    """Fill with draws from Exp(``lambd``) in place (PyTorch's ``exponential_``; not
    recorded)."""
    _float_fill(self, "exponential_")
    if not lambd > 0:
        raise ValueError(f"exponential_: lambd must be positive, got {lambd}")
    u = _uniform01(self, generator)
    return _copy_(self, -E.log1p(-u) / float(lambd))


def _cauchy_(self, median: float = 0.0, sigma: float = 1.0, *, generator=None) -> Tensor:
    """Fill with draws from Cauchy(``median``, ``sigma``) in place (PyTorch's ``cauchy_``)."""
    _float_fill(self, "cauchy_")
    if not sigma > 0:
        raise ValueError(f"cauchy_: sigma must be positive, got {sigma}")
    u = _uniform01(self, generator)
    return _copy_(self, float(median) + float(sigma) * E.tan(math.pi * (u - 0.5)))


def _log_normal_(self, mean: float = 1.0, std: float = 2.0, *, generator=None) -> Tensor:
    """Fill with ``exp`` of draws from N(``mean``, ``std``**2) in place (PyTorch's
    ``log_normal_``)."""
    from .creation import normal
    _float_fill(self, "log_normal_")
    if not std > 0:
        raise ValueError(f"log_normal_: std must be positive, got {std}")
    z = normal(float(mean), float(std), tuple(self.shape), generator=generator,
               dtype=np.float64, device=self.device)
    return _copy_(self, E.exp(z))


def _geometric_(self, p: float, *, generator=None) -> Tensor:
    """Fill with the number of Bernoulli(``p``) trials up to the first success, 1, 2, ...,
    in place (PyTorch's ``geometric_``)."""
    if not 0 < p < 1:
        raise ValueError(f"geometric_: p must be in (0, 1), got {p}")
    u = _uniform01(self, generator)
    return _copy_(self, E.floor(E.log1p(-u) / math.log1p(-p)) + 1)


def _bernoulli_(self, p=0.5, *, generator=None) -> Tensor:
    """Fill with 1 with probability ``p`` (a number, or a tensor broadcast to this shape),
    else 0, in place (PyTorch's ``bernoulli_``)."""
    u = _uniform01(self, generator)
    if isinstance(p, Tensor):
        if p.dtype.kind != "f":
            raise TypeError(f"bernoulli_: p must be floating point, got {p.dtype}")
        if state.tracer is None and p.numel() and not bool(((p >= 0) & (p <= 1)).all().item()):
            raise ValueError("bernoulli_: p must lie in [0, 1]")
        try:
            p = p.detach().broadcast_to(tuple(self.shape))
        except ValueError:
            raise ValueError(f"bernoulli_: p of shape {tuple(p.shape)} does not broadcast to "
                             f"the tensor's shape {tuple(self.shape)}") from None
        p = p.astype(np.float64)
    elif not 0 <= p <= 1:
        raise ValueError(f"bernoulli_: p must lie in [0, 1], got {p}")
    return _copy_(self, (u < p).astype(self.dtype))


_MANTISSA = {np.dtype(np.float16): 11, np.dtype(np.float32): 24, np.dtype(np.float64): 53}


def _random_(self, from_: int = 0, to: int | None = None, *, generator=None) -> Tensor:
    """Fill with integers drawn uniformly from [from, to - 1] in place (PyTorch's
    ``random_``: one argument is ``to``; none spans the dtype, [0, 2**mantissa] for floats)."""
    from .creation import randint
    dt = self._data.dtype
    if to is None and from_ != 0:
        from_, to = 0, from_
    if to is None:
        if dt.kind == "f":
            to = 2 ** _MANTISSA[dt] + 1
        elif dt.kind == "b":
            to = 2
        else:
            to = int(np.iinfo(dt).max) + 1
    if not from_ < to:
        raise ValueError(f"random_: expects 'from' to be less than 'to', got from={from_} >= "
                         f"to={to}")
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if from_ < info.min or to - 1 > info.max:
            raise ValueError(f"random_: [from, to) = [{from_}, {to}) does not fit {dt}")
    r = randint(int(from_), int(to), tuple(self.shape), generator=generator,
                dtype=np.int64, device=self.device)
    return _copy_(self, r.astype(dt))


_METHODS = {
    # matrix products
    "mm": TA.mm, "mv": TA.mv, "bmm": _bmm, "addmm": _addmm, "baddbmm": _baddbmm,
    "addmv": _addmv, "addr": _addr, "inner": TA.inner, "kron": TA.kron, "cross": TA.cross,
    # elementwise
    "remainder": E.remainder, "fmod": TA.fmod, "floor_divide": E.floor_divide,
    "true_divide": E.true_divide, "where": _where, "clamp_min": TA.clamp_min,
    "clamp_max": TA.clamp_max, "sgn": TA.sgn, "signbit": TA.signbit, "copysign": TA.copysign,
    "frac": TA.frac, "fix": TA.fix, "isin": _isin,
    # shapes, sizes and memory
    "reshape_as": _reshape_as,
    "element_size": _element_size, "nelement": _nelement, "ndimension": _ndimension,
    "swapdims": TA.swapdims, "fliplr": TA.fliplr, "flipud": TA.flipud,
    "tensor_split": TA.tensor_split, "hsplit": TA.hsplit, "vsplit": TA.vsplit,
    "take_along_dim": TA.take_along_dim, "index_copy": TA.index_copy,
    # matrices
    "diag": _diag, "diag_embed": TA.diag_embed, "matrix_power": TA.matrix_power, "det": _det,
    "logdet": TA.logdet, "inverse": _inverse, "pinverse": TA.pinverse, "dist": TA.dist,
    "cdist": _cdist, "renorm": TA.renorm,
    # reductions, order statistics, eager data-dependent ops
    "aminmax": _aminmax, "msort": TA.msort, "unique_consecutive": _unique_consecutive,
    "histc": _histc, "kthvalue": TA.kthvalue, "nanmedian": TA.nanmedian, "mode": TA.mode,
    "nanquantile": TA.nanquantile,
    # in place
    "index_copy_": fast_or(_inplace_fn(TA.index_copy, "index_copy_"), FI.index_copy_,
                           _check_leaf),
    "fill_diagonal_": _fill_diagonal_,
    "exponential_": _exponential_, "bernoulli_": _bernoulli_, "random_": _random_,
    "geometric_": _geometric_, "cauchy_": _cauchy_, "log_normal_": _log_normal_,
}

for _name, _fn in _METHODS.items():
    if not hasattr(Tensor, _name):        # another module's binding wins (none at writing)
        setattr(Tensor, _name, _fn)


# --- round 2 -----------------------------------------------------------------------------------
def _divide(self, other, *, rounding_mode: str | None = None) -> Tensor:
    """``self / other``; ``rounding_mode`` ``"trunc"`` or ``"floor"`` (PyTorch's
    ``divide``)."""
    return E.div(self, other, rounding_mode=rounding_mode)


def _subtract(self, other, *, alpha=1) -> Tensor:
    """``self - alpha * other`` (PyTorch's ``subtract``)."""
    return E.sub(self, other, alpha=alpha)


def _bernoulli(self, p=None, *, generator=None) -> Tensor:
    """Draws of 1 with probability ``self`` (elementwise, in [0, 1]), or with probability
    ``p`` in this tensor's shape and dtype when ``p`` is given (PyTorch's ``bernoulli``)."""
    if p is None:
        return SA.bernoulli(self, generator=generator)
    from .creation import zeros_like
    return zeros_like(self).bernoulli_(p, generator=generator)


def _multinomial(self, num_samples: int, replacement: bool = False, *,
                 generator=None) -> Tensor:
    """Indices drawn from the categorical distributions in the rows of ``self``
    (``torch.multinomial``)."""
    return SA.multinomial(self, num_samples, replacement, generator=generator)


def _polygamma(self, n: int) -> Tensor:
    return SF.polygamma(n, self)


def _get_device(self) -> int:
    """The GPU's index for a CUDA tensor, -1 for a CPU one (PyTorch's ``get_device``)."""
    d = self.device
    return -1 if d.type == "cpu" else int(d.index or 0)


def _is_pinned(self) -> bool:
    """False: tensorlib keeps no page-locked host memory (PyTorch's ``is_pinned``)."""
    return False


def _pin_memory(self) -> Tensor:
    """The tensor itself: tensorlib keeps no page-locked host memory (CuPy stages its own
    host-to-GPU copies), so ``pin_memory()`` in data-loading code has nothing to do. A GPU
    tensor is refused, as PyTorch's."""
    if self.device.type != "cpu":
        raise RuntimeError(f"pin_memory: cannot pin a {self.device} tensor, only dense CPU "
                           "tensors can be pinned")
    return self


def _dim_order(self) -> tuple[int, ...]:
    """The dims from outermost to innermost in memory (PyTorch's ``dim_order``)."""
    st = self.stride()
    return tuple(sorted(range(len(st)), key=lambda i: -st[i]))


def _data_ptr_method(self) -> int:
    """The address of the first element (PyTorch's ``const_data_ptr``, as ``data_ptr``)."""
    return self.data_ptr()


def _H(self) -> Tensor:
    if self.ndim == 0:
        from .ops.complex import conj
        return conj(self)
    if self.ndim != 2:
        raise ValueError(f"H: only supported on matrices (2-D tensors), got {self.ndim}-D "
                         "(for batches of matrices, use .mH)")
    from .ops.complex import conj
    return conj(S.swapaxes(self, 0, 1))


def _adjoint(self) -> Tensor:
    """The conjugate transpose of the last two dims (PyTorch's ``adjoint``/``mH``)."""
    from .ops.complex import conj
    if self.ndim == 0:
        return conj(self)
    if self.ndim < 2:
        raise ValueError(f"adjoint: only supported on matrices or batches of matrices, got "
                         f"a {self.ndim}-D tensor")
    return conj(S.swapaxes(self, -1, -2))


def _float_power_(self, exponent) -> Tensor:
    """In-place ``float_power``: the tensor must be float64, as PyTorch's."""
    if self.dtype != np.float64:
        raise TypeError(f"float_power_: the base has dtype {self.dtype} but the result is "
                        "float64; call it on a float64 tensor (or use float_power)")
    return _float_power_inplace(self, exponent)


_float_power_inplace = _inplace_fn(TM.float_power, "float_power_")


def _meta_inplace(fn, name: str):
    """An in-place shape change (``t_``, ``squeeze_``, ...): the tensor takes the view
    ``fn(self)`` makes of its memory, that view's history and a version bump, as PyTorch's.
    Refused under capture, whose graph values keep their shapes."""
    def method(self, *args, **kwargs):
        if self._rg and self._node is None and state.grad_enabled:
            raise RuntimeError(f"{name}: a leaf tensor that requires grad is used in an "
                               "in-place operation; wrap it in `with tl.no_grad():` or use "
                               f"the out-of-place {name[:-1]}")
        if state.tracer is not None:
            from .graph.tracer import CaptureError
            raise CaptureError(f"{name} changes a tensor's shape in place, which a captured "
                               f"graph cannot follow; use the out-of-place {name[:-1]}")
        src = _current(self)              # stands for self's old layout, history and base
        src._base, src._hv = self._base, self._hv
        res = fn(src, *args, **kwargs)
        self._data = res._data
        self._version[0] += 1
        if res._rg:
            self._node, self._idx, self._rg = res._node, res._idx, True
        self._base = res._base
        self._hv = self._version[0]
        return self
    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}`` (PyTorch's ``{name}``): a new shape, same memory."
    return method


_METHODS2 = {
    # shapes, windows, splits and out-of-place scatters
    "unfold": TV.unfold, "ravel": TV.ravel, "sum_to_size": TV.sum_to_size,
    "igamma": SMO.igamma, "igammac": SMO.igammac,
    "split_with_sizes": TV.split_with_sizes, "dsplit": TA.dsplit,
    "unsafe_chunk": TA.unsafe_chunk, "unsafe_split": TA.unsafe_split,
    "unsafe_split_with_sizes": TA.unsafe_split_with_sizes, "narrow_copy": TV.narrow_copy,
    "diagflat": TV.diagflat, "slice_scatter": TV.slice_scatter,
    "select_scatter": TV.select_scatter, "diagonal_scatter": TV.diagonal_scatter,
    "masked_scatter": TV.masked_scatter, "put": TV.put, "index_reduce": SR.index_reduce,
    "nonzero_static": TV.nonzero_static,
    "scatter_reduce": SR.scatter_reduce, "adjoint": _adjoint,
    # arithmetic and comparison spellings
    "multiply": E.mul, "divide": _divide, "subtract": _subtract, "negative": E.neg,
    "positive": TM.positive, "absolute": E.abs, "greater": E.gt, "greater_equal": E.ge,
    "less": E.lt, "less_equal": E.le, "not_equal": E.ne, "bitwise_and": E.bitwise_and,
    "bitwise_or": E.bitwise_or, "bitwise_xor": E.bitwise_xor, "bitwise_not": E.bitwise_not,
    "bitwise_left_shift": E.left_shift, "bitwise_right_shift": E.right_shift,
    "logical_xor": E.logical_xor,
    # elementwise math
    "arctan2": E.atan2, "arccosh": E.acosh, "arcsinh": E.asinh, "arctanh": E.atanh,
    "log10": TM.log10, "logaddexp2": TM.logaddexp2, "deg2rad": TM.deg2rad,
    "rad2deg": TM.rad2deg, "fmax": TM.fmax, "fmin": TM.fmin, "heaviside": TM.heaviside,
    "float_power": TM.float_power, "ldexp": TM.ldexp, "gcd": TM.gcd, "lcm": TM.lcm,
    "nextafter": TM.nextafter, "frexp": TM.frexp, "angle": TM.angle,
    "isposinf": TM.isposinf, "isneginf": TM.isneginf, "isreal": TM.isreal,
    "mvlgamma": TM.mvlgamma, "hardshrink": TM.hardshrink, "prelu": NA.prelu,
    # matrices
    "matrix_exp": TL.matrix_exp, "slogdet": _linalg.slogdet, "qr": TL.qr, "svd": TL.svd,
    "cholesky": TL.cholesky, "cholesky_inverse": TL.cholesky_inverse,
    "cholesky_solve": TL.cholesky_solve, "triangular_solve": TL.triangular_solve,
    "vdot": TL.vdot, "addbmm": TL.addbmm, "corrcoef": TL.corrcoef, "cov": TA.cov,
    "ger": TA._outer, "geqrf": _linalg_more.geqrf, "orgqr": TL.orgqr,
    "ormqr": _linalg_more.ormqr,
    # sampling
    "multinomial": _multinomial, "bernoulli": _bernoulli,
    # dtype, device and memory queries
    "is_complex": TD.is_complex, "is_signed": TD.is_signed, "is_nonzero": TD.is_nonzero,
    "is_same_size": TD.is_same_size, "is_conj": TD.is_conj, "is_neg": TD.is_neg,
    "get_device": _get_device, "is_pinned": _is_pinned, "pin_memory": _pin_memory,
    "dim_order": _dim_order, "const_data_ptr": _data_ptr_method,
    # signals
    "stft": ST.stft, "istft": ST.istft,
    "byte": lambda self: S.astype(self, np.uint8),
    "char": lambda self: S.astype(self, np.int8),
    "short": lambda self: S.astype(self, np.int16),
}

# in place, each from its out-of-place function (one helper, _inplace_fn)
_INPLACE = {
    "absolute_": E.abs, "acos_": E.acos, "acosh_": E.acosh, "arccos_": E.acos,
    "arccosh_": E.acosh, "arcsin_": E.asin, "arcsinh_": E.asinh, "arctan_": E.atan,
    "arctanh_": E.atanh, "asin_": E.asin, "asinh_": E.asinh, "atan_": E.atan,
    "atanh_": E.atanh, "cosh_": E.cosh, "sinh_": E.sinh, "atan2_": E.atan2,
    "arctan2_": E.atan2, "hypot_": E.hypot, "erfc_": SF.erfc, "erfinv_": SF.erfinv,
    "digamma_": SF.digamma, "lgamma_": SF.lgamma, "i0_": SF.i0, "polygamma_": _polygamma,
    "mvlgamma_": TM.mvlgamma, "logit_": TA.logit, "sinc_": TA.sinc,
    "xlogy_": lambda self, other: _special_xlogy(self, other), "log10_": TM.log10,
    "deg2rad_": TM.deg2rad, "rad2deg_": TM.rad2deg, "negative_": E.neg, "sgn_": TA.sgn,
    "fix_": TA.fix, "frac_": TA.frac, "clamp_min_": TA.clamp_min, "clamp_max_": TA.clamp_max,
    "copysign_": TA.copysign, "fmod_": TA.fmod, "remainder_": E.remainder,
    "floor_divide_": E.floor_divide, "true_divide_": E.true_divide, "multiply_": E.mul,
    "subtract_": _subtract, "eq_": E.eq, "ne_": E.ne, "lt_": E.lt, "le_": E.le, "gt_": E.gt,
    "ge_": E.ge, "greater_": E.gt, "greater_equal_": E.ge, "less_": E.lt,
    "less_equal_": E.le, "not_equal_": E.ne, "logical_and_": E.logical_and,
    "logical_or_": E.logical_or, "logical_xor_": E.logical_xor,
    "logical_not_": E.logical_not, "bitwise_and_": E.bitwise_and,
    "bitwise_or_": E.bitwise_or, "bitwise_xor_": E.bitwise_xor,
    "bitwise_not_": E.bitwise_not, "bitwise_left_shift_": E.left_shift,
    "bitwise_right_shift_": E.right_shift, "heaviside_": TM.heaviside, "ldexp_": TM.ldexp,
    "gcd_": TM.gcd, "lcm_": TM.lcm, "nextafter_": TM.nextafter,
    "nan_to_num_": NU.nan_to_num, "renorm_": TA.renorm,
    "cumsum_": lambda self, dim, *, dtype=None: R.cumsum(self, dim, dtype=dtype),
    "cumprod_": lambda self, dim, *, dtype=None: R.cumprod(self, dim, dtype=dtype),
    "tril_": S.tril, "triu_": S.triu, "addmm_": _addmm, "addmv_": _addmv, "addr_": _addr,
    "baddbmm_": _baddbmm, "addbmm_": TL.addbmm, "index_reduce_": SR.index_reduce,
    "scatter_reduce_": SR.scatter_reduce, "masked_scatter_": TV.masked_scatter,
    "put_": TV.put, "igamma_": SMO.igamma, "igammac_": SMO.igammac,
}


def _special_xlogy(self, other) -> Tensor:
    from .special import xlogy
    return xlogy(self, other)


def _zero_grad(fn):
    """``fn`` for an in-place op whose result has no gradient (comparisons, logic): where the
    target has a history, the result takes a zero-gradient link to it, as PyTorch's
    (``EqBackward``); the in-place machinery would otherwise keep the target's old history
    for the new values (see the report: ``_tensor_methods._assign``)."""
    def wrapped(self, *args, **kwargs):
        out = fn(self, *args, **kwargs)
        if state.grad_enabled and self.requires_grad and not out.requires_grad:
            from .creation import full
            never = full(tuple(out.shape), False, device=self.device)
            out = E.where(never, self, out.astype(self.dtype))
        return out
    return wrapped


_NO_GRADIENT = ("eq_", "ne_", "lt_", "le_", "gt_", "ge_", "greater_", "greater_equal_",
                "less_", "less_equal_", "not_equal_", "logical_and_", "logical_or_",
                "logical_xor_", "logical_not_", "heaviside_", "nextafter_")
_METHODS2.update({name: _inplace_fn(_zero_grad(fn) if name in _NO_GRADIENT else fn, name)
                  for name, fn in _INPLACE.items()})
_METHODS2["float_power_"] = _float_power_
# without a record to make, put_ writes into self directly (O(elements written))
_METHODS2["put_"] = fast_or(_METHODS2["put_"], FI.put_, _check_leaf)
_METHODS2.update({
    "t_": _meta_inplace(lambda x: x.t(), "t_"),
    "squeeze_": _meta_inplace(S.squeeze, "squeeze_"),
    "unsqueeze_": _meta_inplace(S.unsqueeze, "unsqueeze_"),
    "transpose_": _meta_inplace(lambda x, dim0, dim1: S.swapaxes(x, dim0, dim1), "transpose_"),
    "swapdims_": _meta_inplace(lambda x, dim0, dim1: S.swapaxes(x, dim0, dim1), "swapdims_"),
    "swapaxes_": _meta_inplace(lambda x, axis0, axis1: S.swapaxes(x, axis0, axis1),
                               "swapaxes_"),
})

for _name, _fn in _METHODS2.items():
    if not hasattr(Tensor, _name):        # another module's binding wins
        setattr(Tensor, _name, _fn)

for _name, _prop in (("H", _H), ("mH", _adjoint), ("is_cpu", lambda self:
                                                   self.device.type == "cpu")):
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, property(_prop))


def _never(self) -> bool:
    return False


# the kinds of tensor tensorlib has none of (sparse, quantized, meta, nested) and the devices
# it does not run on: code that asks (an optimizer's ``if grad.is_sparse``) gets False
for _name in ("is_sparse", "is_sparse_csr", "is_quantized", "is_meta", "is_mkldnn",
              "is_nested", "is_mps", "is_xla", "is_xpu", "is_ipu", "is_maia", "is_mtia",
              "is_vulkan"):
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, property(_never))


def _dims_varargs(fn, name: str):
    """``x.flip(0, 2)``, ``x.tile(2, 1)``, ``x.squeeze(0, 1)``: PyTorch's methods take the
    dims (or repeats) as separate arguments as well as one tuple."""
    def method(self, *dims, **kwargs):
        if len(dims) > 1:
            return fn(self, tuple(dims), **kwargs)
        return fn(self, *dims, **kwargs)
    method.__name__ = name
    method.__doc__ = fn.__doc__
    return method


Tensor.flip = _dims_varargs(S.flip, "flip")
Tensor.tile = _dims_varargs(S.tile, "tile")
Tensor.squeeze = _dims_varargs(S.squeeze, "squeeze")


# --- legacy constructor, real-tensor identities, shared memory (API audit 18) ------------------
def _new_legacy(self, *args, device=None) -> Tensor:
    """PyTorch's legacy constructor, with this tensor's dtype and device (``device=`` moves
    it): ``x.new()`` is empty, ``x.new(2, 3)`` an uninitialised tensor of that size,
    ``x.new([1, 2])``, ``x.new((2, 3))`` (or an array) a copy of the data cast to
    ``x.dtype``, ``x.new(t)`` the tensor ``t`` itself (which must have ``x``'s dtype).
    As PyTorch, a tuple is data: only separate ints (or a ``torch.Size``) are a size. Since
    tensorlib's ``x.shape`` and ``x.size()`` are plain tuples, PyTorch's ``x.new(y.size())``
    reads as data here: write ``x.new(*y.shape)`` or ``x.new_empty(y.shape)``."""
    from . import creation
    dev = self.device if device is None else device
    if len(args) == 1 and isinstance(args[0], Tensor):
        t = args[0]
        if t.dtype != self.dtype:
            raise TypeError(f"Tensor.new: the tensor given has dtype {t.dtype}, this one "
                            f"{self.dtype} (use x.new_tensor(t) to copy and cast)")
        return t if device is None else t.to(device)
    if len(args) == 1 and type(args[0]).__name__ == "Size" \
            and type(args[0]).__module__.startswith("torch"):
        args = tuple(args[0])
    if all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args):
        if any(a < 0 for a in args):
            raise ValueError(f"Tensor.new: negative dimension in size {tuple(args)}")
        shape = tuple(int(a) for a in args) if args else (0,)
        return creation.empty(shape, dtype=self.dtype, device=dev)
    if len(args) == 1 and isinstance(args[0], (list, tuple, np.ndarray)):
        return creation.tensor(np.asarray(args[0]).astype(self.dtype), device=dev)
    raise TypeError(f"Tensor.new: pass sizes (separate ints), data (a list, tuple or array) "
                    f"or a tensor, got {args!r}")


def _identity(name: str, doc: str):
    def method(self) -> Tensor:
        return self
    method.__name__ = method.__qualname__ = name
    method.__doc__ = doc
    return method


_IDENTITIES = {
    "resolve_neg": "``input`` itself (``torch.resolve_neg``): no tensor is lazily negated "
                   "in tensorlib.",
}
for _name, _doc in _IDENTITIES.items():
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _identity(_name, _doc))


def _shared_block(data) -> bool:
    """Whether ``data`` lives in a block ``share_memory_`` made (an anonymous shared map)."""
    import mmap
    base = data
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, mmap.mmap)


def _is_shared(self) -> bool:
    """Whether the values are in memory shared with forked child processes (PyTorch's
    ``is_shared``): after :meth:`share_memory_`, and always for CUDA tensors."""
    return self.device.type == "cuda" or _shared_block(self._data)


def _root_array(data):
    """The last ndarray of ``data``'s chain of bases: the block every view of it lives in."""
    while isinstance(data.base, np.ndarray):
        data = data.base
    return data


def share_storages(tensors) -> None:
    """Move the storages of ``tensors`` to shared memory (``Tensor.share_memory_`` for all of
    them with one scan of the live objects): a NumPy array cannot change its buffer, so
    every tensor on a moved block (bases, views made before or after, ``.data`` aliases) is
    re-pointed at the new one; a partial move would silently split views."""
    import gc

    from ._core import TensorBase
    roots: dict[int, np.ndarray] = {}
    for t in tensors:
        if isinstance(t._data, np.ndarray) and not _is_shared(t):
            r = _root_array(t._data)
            roots[id(r)] = r
    if not roots:
        return
    holders: dict[int, dict[int, TensorBase]] = {k: {} for k in roots}
    for o in gc.get_objects():
        # (type(), not isinstance: a proxy's __class__ property may run code)
        if issubclass(type(o), TensorBase) and isinstance(o._data, np.ndarray):
            k = id(_root_array(o._data))
            if k in holders:
                holders[k][id(o)] = o
    for t in tensors:
        if isinstance(t._data, np.ndarray):
            k = id(_root_array(t._data))
            if k in holders:
                holders[k][id(t)] = t
    for k, root in roots.items():
        _move_to_shared(root, holders[k].values())


def _move_to_shared(root: np.ndarray, holders) -> None:
    import ctypes
    import mmap
    lo, hi = np.lib.array_utils.byte_bounds(root)
    block = mmap.mmap(-1, max(hi - lo, 1))     # anonymous and MAP_SHARED
    raw = np.frombuffer(block, dtype=np.uint8)
    if hi > lo:
        ctypes.memmove(raw.ctypes.data, lo, hi - lo)
    moved: dict[int, np.ndarray] = {}
    for o in holders:
        d = o._data
        new = moved.get(id(d))
        if new is None:
            new = np.ndarray(d.shape, d.dtype, buffer=block,
                             offset=d.__array_interface__["data"][0] - lo, strides=d.strides)
            new.flags.writeable = d.flags.writeable
            moved[id(d)] = new
        o._data = new


def _share_memory_(self) -> Tensor:
    """Move the storage to shared memory (PyTorch's ``share_memory_``): processes forked
    afterwards (``multiprocessing`` on Linux, Hogwild training) read and write the same
    values. As PyTorch's, the whole storage moves, so the tensor it is called on, its base
    and every view of that storage (made before or after) stay views of one another and
    are all shared. A no-op for CUDA tensors and tensors already shared. NumPy arrays taken
    earlier with ``x.numpy()`` keep the old memory. Costs one scan of the live objects
    (``Module.share_memory()`` shares all its tensors with one)."""
    share_storages([self])
    return self


for _name, _fn in (("new", _new_legacy), ("share_memory_", _share_memory_),
                   ("is_shared", _is_shared)):
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _fn)


def _lu(self, pivot: bool = True, get_infos: bool = False):
    """``(LU, pivots)`` or ``(LU, pivots, infos)`` (PyTorch's legacy ``Tensor.lu``; see
    ``tl.linalg.lu_factor_ex``)."""
    return TL.lu(self, pivot=pivot, get_infos=get_infos)


def _lu_solve(self, LU_data, LU_pivots) -> Tensor:
    """``X`` with ``A X = self`` from ``A``'s LU factors (PyTorch's legacy
    ``Tensor.lu_solve``)."""
    return TL.lu_solve(self, LU_data, LU_pivots)


for _name, _fn in (("lu", _lu), ("lu_solve", _lu_solve)):
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _fn)


def _top_identity(name: str):
    def fn(input: Tensor) -> Tensor:
        return require_tensor(name, input)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = _IDENTITIES[name]
    return fn


resolve_neg = _top_identity("resolve_neg")


def is_inference(input: Tensor) -> bool:
    """Whether ``input`` was made inside ``tl.inference_mode()`` (``torch.is_inference``)."""
    return require_tensor("is_inference", input).is_inference()


class layout:
    """PyTorch's tensor layouts (``tl.strided``): tensorlib's tensors are all dense and
    strided, so ``layout=tl.strided`` is the one value there is; ``x.layout`` reports it."""

    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __repr__(self) -> str:
        return f"tl.{self._name}"

    def __reduce__(self):
        return _layout_named, (self._name,)


def _layout_named(name: str) -> layout:
    return strided if name == "strided" else layout(name)


strided = layout("strided")
if not hasattr(Tensor, "layout"):
    Tensor.layout = property(lambda self: strided)


def _attach_complex() -> None:
    from .ops import complex as C

    def _real_prop(self) -> Tensor:
        """The real part: a view for complex tensors, the tensor itself for real ones."""
        return C.real(self)

    def _imag_prop(self) -> Tensor:
        """The imaginary part of a complex tensor, a view (real tensors raise)."""
        return C.imag(self)

    def _setter(view):
        # z.real = t, and z.real += t (the in-place add, then this write-back): as PyTorch's
        def set_part(self, value) -> None:
            part = view(self)
            if part is not value:
                part.copy_(value)
        return set_part

    Tensor.real = property(_real_prop, _setter(C.real))
    Tensor.imag = property(_imag_prop, _setter(C.imag))
    for name in ("conj", "conj_physical", "resolve_conj", "sgn"):
        setattr(Tensor, name, getattr(C, name))

    def conj_physical_(self) -> Tensor:
        """Conjugate in place (``Tensor.conj_physical_``); a no-op for real tensors."""
        if self._data.dtype.kind == "c":
            self.copy_(C.conj(self))
        return self

    def sgn_(self) -> Tensor:
        """``sgn`` in place."""
        return self.copy_(C.sgn(self))

    def cfloat(self) -> Tensor:
        """This tensor as complex64 (``Tensor.cfloat``)."""
        return self.astype(_dtypes.complex64)

    def cdouble(self) -> Tensor:
        """This tensor as complex128 (``Tensor.cdouble``)."""
        return self.astype(_dtypes.complex128)

    Tensor.conj_physical_ = conj_physical_
    Tensor.sgn_ = sgn_
    Tensor.cfloat, Tensor.cdouble = cfloat, cdouble


_attach_complex()
