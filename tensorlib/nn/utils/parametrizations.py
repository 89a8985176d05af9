"""Weight normalisation and spectral normalisation as parametrizations, as
``torch.nn.utils.parametrizations``.

>>> m = tl.nn.utils.parametrizations.weight_norm(nn.Linear(20, 40))
>>> m.parametrizations.weight.original0.shape      # g
(40, 1)
>>> m = tl.nn.utils.parametrizations.orthogonal(nn.Linear(20, 40))
>>> sorted(m.state_dict())
['bias', 'parametrizations.weight.0.base', 'parametrizations.weight.original']
>>> m = tl.nn.utils.parametrizations.spectral_norm(nn.Linear(20, 40))
>>> sorted(m.state_dict())
['bias', 'parametrizations.weight.0._u', 'parametrizations.weight.0._v',
 'parametrizations.weight.original']
"""
from __future__ import annotations

from ..._tensor import Tensor
from ...autograd.mode import no_grad
from ...ops.reduction import norm
from ..module import Module
from . import parametrize

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


def _norm_except_dim(v: Tensor, dim: int) -> Tensor:
    """The 2-norm of ``v`` over every dim but ``dim``, keeping dims (PyTorch's
    ``norm_except_dim(v, 2, dim)``); ``dim=-1`` means the norm of the whole tensor (0-d),
    as in PyTorch's weight_norm with ``dim=None``."""
    if dim == -1:
        return norm(v)
    d = dim + v.ndim if dim < 0 else dim
    axes = tuple(a for a in range(v.ndim) if a != d)
    if not axes:
        return v.abs()
    return norm(v, ord=2, axis=axes, keepdims=True)


def _weight_norm(v: Tensor, g: Tensor, dim: int) -> Tensor:
    """``v * (g / ||v||)``, the norm over all dims but ``dim`` (PyTorch's ``_weight_norm``)."""
    return v * (g / _norm_except_dim(v, dim))


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor):
        return _norm_except_dim(weight, self.dim), weight

    def extra_repr(self) -> str:
        return ""


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize ``module.<name>`` as ``g * v / ||v||`` (Salimans & Kingma), the norm
    taken over every dim but ``dim`` (per output row for a Linear with ``dim=0``; the whole
    tensor for ``dim=None``). ``g`` is ``parametrizations.<name>.original0`` (shaped like
    the norm, dims kept), ``v`` is ``original1``. As PyTorch's
    ``parametrizations.weight_norm``."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            from ...creation import randn
            from ..functional import normalize
            self.n_power_iterations = n_power_iterations
            with no_grad():
                weight_mat = self._reshape_weight_to_matrix(weight.detach())
                h, w = weight_mat.shape
                u = randn(h, dtype=weight.dtype, device=weight.device)
                v = randn(w, dtype=weight.dtype, device=weight.device)
                self.register_buffer("_u", normalize(u, dim=0, eps=self.eps))
                self.register_buffer("_v", normalize(v, dim=0, eps=self.eps))
                # start from u, v near the top singular vectors
                self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, weight_mat: Tensor, n_power_iterations: int) -> None:
        # u and v are updated in place (a captured training step advances them as graph
        # state); forward clones them, so a graph that read them stays valid afterwards
        from ...ops.torch_api import mv
        from ..functional import normalize
        with no_grad():
            wt = weight_mat.T
            for _ in range(n_power_iterations):
                self._u.copy_(normalize(mv(weight_mat, self._v), dim=0, eps=self.eps))
                self._v.copy_(normalize(mv(wt, self._u), dim=0, eps=self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        from ..functional import normalize
        if weight.ndim == 1:
            return normalize(weight, dim=0, eps=self.eps)
        from ...ops.linalg import dot
        from ...ops.torch_api import mv
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = dot(u, mv(weight_mat, v))
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Reparametrize ``module.<name>`` as ``W / sigma(W)``, ``sigma`` the largest singular
    value of ``W`` (as a matrix: ``dim`` first, the rest flattened) estimated by power
    iteration (Miyato et al.). The singular-vector estimates ``u``, ``v`` are buffers
    (``parametrizations.<name>.0._u`` / ``._v``), refined by ``n_power_iterations`` steps on
    each access in training mode only; in eval mode they are read as they are. ``dim``
    defaults to 0, or 1 for transposed convolutions. A 1-D tensor is just divided by its
    norm. As PyTorch's ``parametrizations.spectral_norm``."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        from .. import conv
        transposed = tuple(getattr(conv, c) for c in ("ConvTranspose1d", "ConvTranspose2d",
                                                       "ConvTranspose3d") if hasattr(conv, c))
        dim = 1 if isinstance(module, transposed) else 0
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


def orthogonal(module: Module, name: str = "weight", orthogonal_map: str | None = None, *,
               use_trivialization: bool = True) -> Module:
    """Reparametrize ``module.<name>`` (a matrix or a batch of them, ``(..., m, n)``) to be
    orthogonal: orthonormal columns when ``m >= n``, rows otherwise, as PyTorch's
    ``parametrizations.orthogonal``. ``orthogonal_map``: ``"matrix_exp"`` or ``"cayley"``
    (of a skew-symmetric matrix made from the lower triangle), or ``"householder"`` (a
    product of reflectors); default ``"matrix_exp"`` for square matrices, else
    ``"householder"``. With ``use_trivialization`` (PyTorch's dynamic trivialization) an
    ``n x n`` base is kept as the buffer ``parametrizations.<name>.0.base``, and the
    initial value is the tensor itself if orthogonal, else the Q of its QR decomposition;
    the state dict's keys are PyTorch's, so its state dicts load.

    >>> m = orthogonal(nn.Linear(4, 6))
    >>> Q = m.weight
    >>> tl.allclose(Q.T @ Q, tl.eye(4), atol=1e-5)
    True
    """
    from ._orthogonal import MAPS, _Orthogonal
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError("Expected a matrix or batch of matrices. "
                         f"Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in MAPS:
        raise ValueError('orthogonal_map has to be one of "matrix_exp", "cayley", '
                         f'"householder". Got: {orthogonal_map}')
    orth = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module
