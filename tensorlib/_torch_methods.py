"""More of PyTorch's Tensor methods, bound onto :class:`Tensor` (imported by the package after
``_tensor_methods``): thin wrappers over the registry's functions and the composites of
``tensorlib/ops/torch_api.py``, PyTorch's in-place random fills (drawn from tensorlib's global
generator or a given ``tl.Generator``, as ``uniform_``/``normal_``, so ``tl.manual_seed``
controls them) and ``fill_diagonal_``. A name some other module already bound is left alone.
"""
from __future__ import annotations

import math

import numpy as np

from . import linalg as _linalg
from ._tensor import Tensor
from ._tensor_methods import _copy_, _inplace_fn
from .autograd.mode import state
from .ops import batched as B
from .ops import data_dependent as DD
from .ops import diagonal as DG
from .ops import elementwise as E
from .ops import pairwise as PW
from .ops import torch_api as TA


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
    return E.where(condition, self, other)


def _reshape_as(self, other: Tensor) -> Tensor:
    """This tensor reshaped to ``other``'s shape (PyTorch's ``reshape_as``)."""
    return self.reshape(tuple(other.shape))


def _is_contiguous(self) -> bool:
    """Whether the underlying array is C-contiguous (PyTorch's ``is_contiguous``)."""
    return bool(self._data.flags.c_contiguous)


def _contiguous_strides(shape: tuple) -> tuple[int, ...]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= max(int(s), 1)
    return tuple(reversed(out))


def _stride(self, dim: int | None = None):
    """Element strides, a tuple or one dim's (PyTorch's ``stride``): a C-contiguous tensor
    reports PyTorch's contiguous strides; a view its array's (negative after a ``flip``
    view, which PyTorch copies)."""
    d = self._data
    if d.flags.c_contiguous:
        st = _contiguous_strides(tuple(d.shape))
    else:
        st = tuple(int(s) // d.itemsize for s in d.strides)
    if dim is None:
        return st
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"stride: dim must be an int, got {dim!r}")
    n = len(st)
    if not -max(n, 1) <= dim < max(n, 1) or n == 0:
        raise IndexError(f"stride: dim {dim} is out of range for a tensor of {n} dimensions")
    return st[dim]


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
    return rand(*tuple(self._data.shape), generator=generator, dtype=np.float64,
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
    z = normal(float(mean), float(std), tuple(self._data.shape), generator=generator,
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
    r = randint(int(from_), int(to), tuple(self._data.shape), generator=generator,
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
    "reshape_as": _reshape_as, "is_contiguous": _is_contiguous, "stride": _stride,
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
    "index_copy_": _inplace_fn(TA.index_copy, "index_copy_"),
    "fill_diagonal_": _fill_diagonal_,
    "exponential_": _exponential_, "bernoulli_": _bernoulli_, "random_": _random_,
    "geometric_": _geometric_, "cauchy_": _cauchy_, "log_normal_": _log_normal_,
}

for _name, _fn in _METHODS.items():
    if not hasattr(Tensor, _name):        # another module's binding wins (none at writing)
        setattr(Tensor, _name, _fn)
