"""RMSprop, Adagrad and Adadelta."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .. import creation
from .._tensor import Tensor
from .._hyper import enabled, hyper_value
from .optimizer import Optimizer, check_implementation_flags


class RMSprop(Optimizer):
    """RMSprop (Hinton), as in PyTorch: a running mean of squared gradients scales the
    step; ``centered`` subtracts the squared running mean of gradients; optional
    momentum."""

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, maximize: bool = False, *,
                 foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False):
        check_implementation_flags(type(self).__name__, foreach=foreach,
                                   capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps,
                                      centered=centered, weight_decay=weight_decay,
                                      capturable=capturable, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable))

    def _validate(self, group):
        super()._validate(group)
        for k in ("alpha", "eps", "weight_decay", "momentum"):
            if not hyper_value(group[k]) >= 0.0:
                raise ValueError(f"RMSprop: invalid {k} {group[k]} (must be >= 0)")

    def _update(self, group):
        lr, alpha, eps = self._lr(group), group["alpha"], group["eps"]
        wd, mom, centered = group["weight_decay"], self._hyper(group["momentum"]), \
            group["centered"]
        def init(p):
            st = {"square_avg": creation.zeros_like(p)}
            if enabled(mom):
                st["momentum_buffer"] = creation.zeros_like(p)
            if centered:
                st["grad_avg"] = creation.zeros_like(p)
            return st
        for p, g, st in self._with_grads(group, init):
            self._count_step(st)
            if wd:
                g = g + wd * p
            sq = st["square_avg"]
            sq.mul_(alpha)
            sq.add_((1.0 - alpha) * g * g)
            if centered:
                ga = st["grad_avg"]
                ga.mul_(alpha)
                ga.add_((1.0 - alpha) * g)
                avg = (sq - ga * ga).sqrt() + eps
            else:
                avg = sq.sqrt() + eps
            if enabled(mom):
                buf = st["momentum_buffer"]
                buf.mul_(mom)
                buf.add_(g / avg)
                p.sub_(lr * buf)
            else:
                p.sub_(lr * g / avg)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): steps scaled by the root of the summed squared gradients."""

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, maximize: bool = False, *,
                 foreach: bool | None = None, fused: bool | None = None,
                 capturable: bool = False, differentiable: bool = False):
        check_implementation_flags(type(self).__name__, foreach=foreach, fused=fused,
                                   capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      foreach=foreach, maximize=maximize,
                                      differentiable=differentiable, fused=fused))
        for g in self.param_groups:
            for p in g["params"]:
                # the step count too, as PyTorch's: a captured first step then finds its
                # state complete and the graph is reused rather than traced again
                self.state[p] = {"step": creation.tensor(0.0, dtype=np.float64),
                                 "sum": _initial_sum(p, g["initial_accumulator_value"])}

    def _validate(self, group):
        super()._validate(group)
        for k in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            if not group[k] >= 0.0:
                raise ValueError(f"Adagrad: invalid {k} {group[k]} (must be >= 0)")

    def _update(self, group):
        lr, decay, wd, eps = self._lr(group), group["lr_decay"], group["weight_decay"], group["eps"]
        def init(p):
            return {"sum": _initial_sum(p, group["initial_accumulator_value"])}
        for p, g, st in self._with_grads(group, init):
            step = self._count_step(st)
            if wd:
                g = g + wd * p
            clr = lr / (1.0 + (step - 1) * decay) if decay else lr
            if isinstance(clr, Tensor):
                clr = clr.astype(p.dtype)
            s = st["sum"]
            s.add_(g * g)
            p.sub_(clr * g / (s.sqrt() + eps))


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012): steps scaled by the ratio of running RMS of past updates to
    running RMS of gradients (``lr`` multiplies the result; 1.0 as in the paper)."""

    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, maximize: bool = False, *,
                 foreach: bool | None = None,
                 capturable: bool = False, differentiable: bool = False):
        check_implementation_flags(type(self).__name__, foreach=foreach,
                                   capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize, capturable=capturable,
                                      foreach=foreach, differentiable=differentiable))

    def _validate(self, group):
        super()._validate(group)
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Adadelta: invalid rho {group['rho']} (must be in [0, 1])")
        for k in ("eps", "weight_decay"):
            if not group[k] >= 0.0:
                raise ValueError(f"Adadelta: invalid {k} {group[k]} (must be >= 0)")

    def _update(self, group):
        lr, rho, eps, wd = self._lr(group), group["rho"], group["eps"], group["weight_decay"]

        def init(p):
            return {"square_avg": creation.zeros_like(p), "acc_delta": creation.zeros_like(p)}
        for p, g, st in self._with_grads(group, init):
            self._count_step(st)
            if wd:
                g = g + wd * p
            sq, acc = st["square_avg"], st["acc_delta"]
            sq.mul_(rho)
            sq.add_((1.0 - rho) * g * g)
            delta = (acc + eps).sqrt() / (sq + eps).sqrt() * g
            acc.mul_(rho)
            acc.add_((1.0 - rho) * delta * delta)
            p.sub_(lr * delta)


def _initial_sum(p, v: float):
    """Adagrad's accumulator: ``v`` everywhere; a complex parameter's real and imaginary
    parts each start at ``v``, as PyTorch's."""
    return creation.full_like(p, complex(v, v) if p.dtype.kind == "c" else v)
