"""The older, hook-based weight and spectral normalisation (``torch.nn.utils.weight_norm`` /
``spectral_norm`` and their ``remove_*``): the weight is recomputed by a forward pre-hook
and kept as a plain attribute; the parameters are ``<name>_g``/``<name>_v``, or
``<name>_orig`` with buffers ``<name>_u``/``<name>_v``. New code should prefer
``tl.nn.utils.parametrizations``."""
from __future__ import annotations

import warnings

from ..._tensor import Tensor
from ...autograd.mode import no_grad
from ..module import Module
from ..parameter import Parameter
from .parametrizations import _norm_except_dim, _weight_norm

__all__ = ["SpectralNorm", "WeightNorm", "remove_spectral_norm", "remove_weight_norm",
           "spectral_norm", "weight_norm"]


class WeightNorm:
    """The forward pre-hook of :func:`weight_norm`."""

    def __init__(self, name: str, dim: int | None):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module: Module) -> Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return _weight_norm(v, g, self.dim)

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> WeightNorm:
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two weight_norm hooks on the same "
                                   f"parameter {name}")
        fn = WeightNorm(name, dim)
        weight = module._parameters.get(name)
        if weight is None:
            raise ValueError(f"weight_norm: {type(module).__name__} has no parameter {name!r}")
        del module._parameters[name]
        with no_grad():
            g = _norm_except_dim(weight.detach(), fn.dim)
        module.register_parameter(name + "_g", Parameter(g))
        module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        with no_grad():
            weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.detach()))

    @property
    def _capture_recomputes(self) -> str:
        # the attribute this hook sets before every forward: tl.function's guards leave it
        # out (its value between calls is not state), so a captured forward traces once
        return self.name

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))
        _note_traced(module, self.name)


def _note_traced(module: Module, name: str) -> None:
    """Under capture: tell the tracer that ``module.<name>`` was set anew, so a captured
    training step writes the weight its replay computed there (the attribute then holds it
    after each call, as after an eager forward; an inference graph writes nothing and
    ``module.<name>`` keeps the traced call's weight until the next eager forward)."""
    from ...autograd.mode import state
    if state.tracer is not None:
        state.tracer.note_recomputed(module, name)


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Replace parameter ``name`` by ``<name>_g * <name>_v / ||<name>_v||`` (parameters
    ``<name>_g`` and ``<name>_v``), recomputed before each forward. Deprecated in PyTorch (a
    FutureWarning, as there) in favour of ``tl.nn.utils.parametrizations.weight_norm``."""
    warnings.warn("`tl.nn.utils.weight_norm` is deprecated in favor of "
                  "`tl.nn.utils.parametrizations.weight_norm` (as in PyTorch).",
                  FutureWarning, stacklevel=2)
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`weight_norm`: ``name`` is a parameter again, holding the current weight."""
    return _remove_hook(module, name, WeightNorm, "weight_norm")


def _remove_hook(module: Module, name: str, kind: type, what: str) -> Module:
    for k, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, kind) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise ValueError(f"{what} of '{name}' not found in {module}")


class SpectralNorm:
    """The forward pre-hook of :func:`spectral_norm`."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12):
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.name, self.dim = name, dim
        self.n_power_iterations, self.eps = n_power_iterations, eps

    def reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.ndim) if d != self.dim))
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        from ...ops.linalg import dot
        from ...ops.torch_api import mv
        from ..functional import normalize
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():
                for _ in range(self.n_power_iterations):
                    v.copy_(normalize(mv(weight_mat.T, u), dim=0, eps=self.eps))
                    u.copy_(normalize(mv(weight_mat, v), dim=0, eps=self.eps))
            # cloned: a backward through an earlier forward still sees its own u and v
            u, v = u.clone(), v.clone()
        sigma = dot(u, mv(weight_mat, v))
        return weight / sigma

    def remove(self, module: Module) -> None:
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    _capture_recomputes = WeightNorm._capture_recomputes

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name,
                self.compute_weight(module, do_power_iteration=module.training))
        _note_traced(module, self.name)

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int,
              eps: float) -> SpectralNorm:
        from ...creation import randn
        from ..functional import normalize
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise RuntimeError(f"Cannot register two spectral_norm hooks on the same "
                                   f"parameter {name}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters.get(name)
        if weight is None:
            raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter "
                             f"{name!r}")
        with no_grad():
            weight_mat = fn.reshape_weight_to_matrix(weight.detach())
            h, w = weight_mat.shape
            u = normalize(randn(h, dtype=weight.dtype, device=weight.device), dim=0,
                          eps=fn.eps)
            v = normalize(randn(w, dtype=weight.dtype, device=weight.device), dim=0,
                          eps=fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        # the weight stays readable as a plain attribute (not a parameter) until the
        # first forward recomputes it
        setattr(module, fn.name, weight.detach())
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Replace parameter ``name`` by ``<name>_orig / sigma``, ``sigma`` estimated by power
    iteration with buffers ``<name>_u``, ``<name>_v`` (refined before each forward in
    training mode), as PyTorch's hook-based ``torch.nn.utils.spectral_norm``."""
    if dim is None:
        from .. import conv
        transposed = tuple(getattr(conv, c) for c in ("ConvTranspose1d", "ConvTranspose2d",
                                                       "ConvTranspose3d") if hasattr(conv, c))
        dim = 1 if isinstance(module, transposed) else 0
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`spectral_norm`: ``name`` is a parameter again, holding the current
    normalised weight (no further power iteration)."""
    return _remove_hook(module, name, SpectralNorm, "spectral_norm")
