"""Adam's relatives, as PyTorch defines them: Adamax, NAdam and RAdam.

Step counts (and NAdam's running product of momentum coefficients) are 0-d tensors updated in
place, so a captured training step keeps them as graph state; eagerly they are read as
numbers.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import _dtypes, creation
from .._tensor import Tensor
from ..ops.elementwise import maximum, where
from . import _fused
from .adam import check_adam_hyperparameters
from .optimizer import Optimizer, check_implementation_flags


def _as_param(v, p: Tensor):
    """A float stays a float; a 0-d tensor (under capture) moves to ``p``'s dtype and device."""
    return v.to(device=p.device, dtype=p.dtype) if isinstance(v, Tensor) else v



def _moments(ma, va, d, f, b1: float, b2: float) -> None:
    """Adam's moment updates on the arrays, in place: ``m = b1 m + (1 - b1) d``, ``v = b2 v
    + (1 - b2) d d`` (the tensor path's operations in its order; ``f``: the dtype's type)."""
    ma *= f(b1)
    ma += d * f(1.0 - b1)
    va *= f(b2)
    d2 = d * f(1.0 - b2)
    d2 *= d
    va += d2

class _AdamLike(Optimizer):
    """What Adamax, NAdam and RAdam share: Adam's hyperparameter checks and reading, and
    weight decay either added to the gradient (L2) or applied to the weights (decoupled)."""

    def _validate(self, group):
        super()._validate(group)
        check_adam_hyperparameters(type(self).__name__, group)

    def _read(self, group):
        return (self._lr(group), *(self._hyper(b) for b in group["betas"]), group["eps"],
                group["weight_decay"])

    @staticmethod
    def _decay(p: Tensor, g: Tensor, group, lr, wd) -> Tensor:
        if not wd:
            return g
        if group.get("decoupled_weight_decay"):
            p.mul_(1.0 - lr * wd)
            return g
        return g + wd * p


    @staticmethod
    def _decay_arrays(a: np.ndarray, d: np.ndarray, p: Tensor, group, lr, wd) -> np.ndarray:
        """:meth:`_decay` on the arrays of ``p`` (``a``) and its gradient (``d``)."""
        if not wd:
            return d
        f = a.dtype.type
        if group.get("decoupled_weight_decay"):
            a *= f(1.0 - lr * wd)
            p._version[0] += 1
            return d
        return d + a * f(wd)


class Adamax(_AdamLike):
    """Adamax (Kingma & Ba): Adam with the infinity norm of past gradients as the scale."""

    def __init__(self, params: Iterable, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, maximize: bool = False, *,
                 foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False):
        check_implementation_flags(type(self).__name__, foreach=foreach,
                                   capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def _update(self, group):
        lr, b1, b2, eps, wd = self._read(group)

        def init(p):
            return {"exp_avg": creation.zeros_like(p), "exp_inf": creation.zeros_like(p)}
        for p, g, st in self._with_grads(group, init):
            step = self._count_step(st)
            m, u = st["exp_avg"], st["exp_inf"]
            if type(step) is int and _fused.eager_arrays(p, g, m, u):
                a, f, ma, ua = p._data, p._data.dtype.type, m._data, u._data
                d = self._decay_arrays(a, g._data, p, group, lr, wd)
                ma *= f(b1)
                ma += d * f(1.0 - b1)
                np.maximum(ua * f(b2), np.abs(d) + f(eps), out=ua)
                a -= (f(lr / (1.0 - b1 ** step)) * ma) / ua
                m._version[0] += 2
                u._version[0] += 1
                p._version[0] += 1
                continue
            g = self._decay(p, g, group, lr, wd)
            m.mul_(b1)
            m.add_((1.0 - b1) * g)
            u.copy_(maximum(u * b2, g.abs() + eps))
            bc1 = _as_param(1.0 - b1 ** step, p)
            p.sub_((lr / bc1) * m / u)


class NAdam(_AdamLike):
    """Adam with Nesterov momentum (Dozat, 2016), with PyTorch's momentum decay schedule
    ``mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))``. As PyTorch's,
    ``state['mu_product']`` is a 0-d tensor of the default float dtype (float32 unless
    ``tl.set_default_dtype(tl.float64)``) whatever the parameter's dtype."""

    def __init__(self, params: Iterable, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, maximize: bool = False, *,
                 foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False):
        check_implementation_flags(type(self).__name__, foreach=foreach,
                                   capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable))

    def _validate(self, group):
        super()._validate(group)
        if not group["momentum_decay"] >= 0.0:
            raise ValueError(f"NAdam: invalid momentum_decay {group['momentum_decay']}")

    def _update(self, group):
        lr, b1, b2, eps, wd = self._read(group)
        md = group["momentum_decay"]

        def init(p):
            return {"exp_avg": creation.zeros_like(p), "exp_avg_sq": creation.zeros_like(p),
                    # PyTorch's scalar dtype (float32 unless the default is float64),
                    # whatever the parameter's: the product is rounded to it every step
                    "mu_product": creation.tensor(1.0, dtype=_dtypes.default_float)}
        for p, g, st in self._with_grads(group, init):
            step = self._count_step(st)
            mu = b1 * (1.0 - 0.5 * 0.96 ** (step * md))
            mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * md))
            mp = st["mu_product"]
            m, v = st["exp_avg"], st["exp_avg_sq"]
            if type(step) is int and _fused.eager_arrays(p, g, m, v) \
                    and type(mp._data) is np.ndarray and mp._data.flags.writeable:
                a, f, ma, va = p._data, p._data.dtype.type, m._data, v._data
                d = self._decay_arrays(a, g._data, p, group, lr, wd)
                mpa = mp._data
                np.multiply(mpa, mpa.dtype.type(mu), out=mpa)
                mp._version[0] += 1
                prod = float(mpa)
                prod_next = prod * mu_next
                _moments(ma, va, d, f, b1, b2)
                denom = np.sqrt(va / f(1.0 - b2 ** step))
                denom += f(eps)
                a -= (f(lr * (1.0 - mu) / (1.0 - prod)) * d) / denom
                a -= (f(lr * mu_next / (1.0 - prod_next)) * ma) / denom
                m._version[0] += 2
                v._version[0] += 2
                p._version[0] += 2
                continue
            g = self._decay(p, g, group, lr, wd)
            if isinstance(step, Tensor):
                # PyTorch's arithmetic: the product in mu_product's dtype, then read as a
                # double (eagerly Python floats; here float64 tensors)
                mp.mul_(mu.astype(mp.dtype))
                prod = mp.astype(np.float64)
            else:
                mp.mul_(mu)
                prod = float(mp._data)
            prod_next = prod * mu_next
            m.mul_(b1)
            m.add_((1.0 - b1) * g)
            v.mul_(b2)
            v.add_((1.0 - b2) * g * g)
            bc2 = _as_param(1.0 - b2 ** step, p)
            denom = (v / bc2).sqrt() + eps
            c_grad = _as_param(lr * (1.0 - mu) / (1.0 - prod), p)
            c_avg = _as_param(lr * mu_next / (1.0 - prod_next), p)
            p.sub_(c_grad * g / denom)
            p.sub_(c_avg * m / denom)


class RAdam(_AdamLike):
    """Rectified Adam (Liu et al., 2019): plain momentum SGD while the variance estimate is
    unreliable (rho_t <= 5), then Adam scaled by the rectification term."""

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False,
                 maximize: bool = False, *,
                 foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False):
        check_implementation_flags(type(self).__name__, foreach=foreach,
                                   capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, maximize=maximize,
                                      foreach=foreach, capturable=capturable,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      differentiable=differentiable))

    def _update(self, group):
        lr, b1, b2, eps, wd = self._read(group)
        rho_inf = 2.0 / (1.0 - b2) - 1.0

        def init(p):
            return {"exp_avg": creation.zeros_like(p), "exp_avg_sq": creation.zeros_like(p)}
        for p, g, st in self._with_grads(group, init):
            step = self._count_step(st)
            m, v = st["exp_avg"], st["exp_avg_sq"]
            if type(step) is int and _fused.eager_arrays(p, g, m, v):
                self._radam_arrays(p, g, m, v, group, step, lr, b1, b2, eps, wd, rho_inf)
                continue
            g = self._decay(p, g, group, lr, wd)
            m.mul_(b1)
            m.add_((1.0 - b1) * g)
            v.mul_(b2)
            v.add_((1.0 - b2) * g * g)
            bc1, bc2 = 1.0 - b1 ** step, 1.0 - b2 ** step
            rho_t = rho_inf - 2.0 * step * b2 ** step / bc2
            if isinstance(step, Tensor):     # captured: both branches, selected in the graph
                ok = rho_t > 5.0
                r2 = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                      / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                rect = _as_param(where(ok, r2.clip(0.0, None).sqrt() * bc2.sqrt(), 0.0), p)
                adapt = where(ok.to(device=p.device), rect / (v.sqrt() + eps), 1.0)
            elif rho_t > 5.0:
                rect = math.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                                 / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                adapt = rect * math.sqrt(bc2) / (v.sqrt() + eps)
            else:
                adapt = 1.0
            p.sub_((lr / _as_param(bc1, p)) * m * adapt)

    def _radam_arrays(self, p, g, m, v, group, step, lr, b1, b2, eps, wd, rho_inf) -> None:
        """The eager step of :meth:`_update` on the NumPy arrays (see ``eager_arrays``)."""
        a, f, ma, va = p._data, p._data.dtype.type, m._data, v._data
        d = self._decay_arrays(a, g._data, p, group, lr, wd)
        _moments(ma, va, d, f, b1, b2)
        bc1, bc2 = 1.0 - b1 ** step, 1.0 - b2 ** step
        rho_t = rho_inf - 2.0 * step * b2 ** step / bc2
        upd = f(lr / bc1) * ma
        if rho_t > 5.0:
            rect = math.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                             / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
            den = np.sqrt(va)
            den += f(eps)
            upd *= f(rect * math.sqrt(bc2)) / den
        a -= upd
        m._version[0] += 2
        v._version[0] += 2
        p._version[0] += 1
