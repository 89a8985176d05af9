"""Rprop, ASGD and Adafactor, with PyTorch's update rules (``torch.optim.Rprop``,
``torch.optim.ASGD``, ``torch.optim.Adafactor``).

>>> opt = tl.optim.Rprop(model.parameters(), lr=0.01)
>>> opt = tl.optim.Adafactor(model.parameters(), lr=1e-2)     # factored second moments
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import _dtypes, creation
from .._hyper import hyper_value
from .._tensor import Tensor
from ..ops.elementwise import where
from .optimizer import Optimizer, check_implementation_flags


class Rprop(Optimizer):
    """Resilient backpropagation (Riedmiller & Braun, 1993), as PyTorch's: each element has
    its own step size (``lr`` at first), multiplied by ``etas[1]`` while the gradient keeps
    its sign and by ``etas[0]`` when it flips (that step then skips the element), clamped to
    ``step_sizes``; the parameter moves by ``-sign(grad) * step_size``. Full-batch
    training only: the magnitudes of the gradients are ignored.
    """

    def __init__(self, params: Iterable, lr: float = 1e-2,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *,
                 capturable: bool = False, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False):
        check_implementation_flags(type(self).__name__, foreach=foreach,
                                   capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes),
                                      foreach=foreach, maximize=maximize,
                                      differentiable=differentiable, capturable=capturable))

    def _validate(self, group):
        super()._validate(group)
        etaminus, etaplus = group["etas"]
        if not 0.0 < etaminus < 1.0 < etaplus:
            raise ValueError(f"Rprop: invalid etas {group['etas']} (need 0 < etas[0] < 1 < "
                             "etas[1])")
        lo, hi = group["step_sizes"]
        if not 0.0 <= lo <= hi:
            raise ValueError(f"Rprop: invalid step_sizes {group['step_sizes']} (need 0 <= "
                             "step_sizes[0] <= step_sizes[1])")

    def _update(self, group):
        etaminus, etaplus = group["etas"]
        lo, hi = group["step_sizes"]
        lr = hyper_value(group["lr"])

        def init(p):
            # a complex parameter's real and imaginary parts each start at lr, as PyTorch's
            fill = complex(lr, lr) if p.dtype.kind == "c" else lr
            return {"prev": creation.zeros_like(p), "step_size": creation.full_like(p, fill)}
        for p, g, st in self._with_grads(group, init):
            self._count_step(st)
            prev, step_size = st["prev"], st["step_size"]
            s = (g * prev).sign()
            # from the masks, not where() of Python floats, which would round the etas to
            # the default float32 for a float64 parameter
            up, down = (s > 0).astype(p.dtype), (s < 0).astype(p.dtype)
            factor = 1.0 + up * (etaplus - 1.0) + down * (etaminus - 1.0)
            step_size.copy_((step_size * factor).clip(lo, hi))
            # after a sign flip the element stays put, and the next step sees no previous
            # sign there (so its step size is not shrunk twice)
            g = g * (1.0 - down)
            p.sub_(g.sign() * step_size)
            prev.copy_(g)


class ASGD(Optimizer):
    """Averaged SGD (Polyak & Juditsky, 1992), as PyTorch's: an SGD step of size ``eta``
    with decay ``lambd``, ``eta = lr / (1 + lambd * lr * t) ** alpha``; from step ``t0`` on,
    ``state['ax']`` holds the running average of the iterates (``mu = 1 / max(1, t - t0)``).
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lambd: float = 1e-4,
                 alpha: float = 0.75, t0: float = 1e6, weight_decay: float = 0,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False):
        check_implementation_flags(type(self).__name__, foreach=foreach,
                                   capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def _validate(self, group):
        super()._validate(group)
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"ASGD: invalid weight_decay {group['weight_decay']} "
                             "(must be >= 0)")

    def _update(self, group):
        lr = self._lr(group)
        lambd, alpha, t0, wd = group["lambd"], group["alpha"], group["t0"], \
            group["weight_decay"]

        # eta and mu are 0-d tensors of the default float dtype, as PyTorch's (its scalar
        # dtype): the step reads them back rounded to it, so trajectories agree
        sdt = _dtypes.default_float

        def init(p):
            return {"eta": creation.tensor(hyper_value(lr), dtype=sdt),
                    "mu": creation.tensor(1.0, dtype=sdt),
                    "ax": creation.zeros_like(p)}
        for p, g, st in self._with_grads(group, init):
            step = self._count_step(st)
            if wd:
                g = g + wd * p
            for k in ("eta", "mu"):
                if st[k].dtype != sdt:      # load_state_dict casts state to the param dtype
                    st[k] = st[k].astype(sdt)
            ax = st["ax"]
            if isinstance(step, Tensor):
                self._captured(p, g, ax, st, step, lr, lambd, alpha, t0)
                continue
            eta, mu = float(st["eta"]._data), float(st["mu"]._data)
            p.mul_(1.0 - lambd * eta)
            p.sub_(eta * g)
            if mu != 1.0:
                ax.add_((p - ax) * mu)
            else:
                ax.copy_(p)
            st["eta"].fill_(lr / (1.0 + lambd * lr * step) ** alpha)
            st["mu"].fill_(1.0 / max(1.0, step - t0))

    @staticmethod
    def _captured(p: Tensor, g: Tensor, ax: Tensor, st: dict, step: Tensor, lr, lambd: float,
                  alpha: float, t0: float) -> None:
        """The step under graph capture: eta, mu and the step count are read and written as
        graph state (not frozen at their traced values). The eager step's Python arithmetic
        is double precision, then rounded to ``p``'s dtype as a weak scalar: so here."""
        f64 = np.dtype(np.float64)
        eta = st["eta"].astype(f64)
        mu = st["mu"].astype(f64)
        p.mul_((1.0 - lambd * eta).astype(p.dtype))
        p.sub_(eta.astype(p.dtype) * g)
        # mu == 1 copies p, as the eager step (ax + (p - ax) may differ from p in the ulp)
        ax.copy_(where(mu == 1.0, p, ax + (p - ax) * mu.astype(p.dtype)))
        st["eta"].copy_(lr / (1.0 + lambd * lr * step) ** alpha)
        st["mu"].copy_(1.0 / (step - t0).clip(1.0, None))


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern, 2018) as ``torch.optim.Adafactor``: the second moment of a
    matrix (or a batch of them, over the last two dims) is kept factored as row and column
    means (``state['row_var']``, ``state['col_var']``); a vector keeps it whole
    (``state['variance']``). ``beta2_t = 1 - t ** beta2_decay``; the relative step is
    ``min(lr, 1 / sqrt(t)) * max(eps[1], RMS(param))``; the update's RMS is clipped to
    ``d``; ``eps[0]`` (None: the dtype's eps) floors the variance estimate. No first moment.
    """

    # the factored state is not shaped like its parameter
    state_shaped_like_params = False

    def __init__(self, params: Iterable, lr: float = 1e-2, beta2_decay: float = -0.8,
                 eps: tuple[float | None, float] = (None, 1e-3), d: float = 1.0,
                 weight_decay: float = 0.0, *, foreach: bool | None = None,
                 maximize: bool = False):
        check_implementation_flags(type(self).__name__, foreach=foreach)
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize))

    def _validate(self, group):
        super()._validate(group)
        if not group["beta2_decay"] <= 0.0:
            raise ValueError(f"Adafactor: beta2_decay must be <= 0, got {group['beta2_decay']}")
        eps1, eps2 = group["eps"]
        if eps1 is not None and not eps1 >= 0.0:
            raise ValueError(f"Adafactor: eps[0] must be >= 0 (or None), got {eps1}")
        if not eps2 >= 0.0:
            raise ValueError(f"Adafactor: eps[1] must be >= 0, got {eps2}")
        if not group["d"] >= 1.0:
            raise ValueError(f"Adafactor: the clipping threshold d must be >= 1, got "
                             f"{group['d']}")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"Adafactor: weight_decay must be >= 0, got "
                             f"{group['weight_decay']}")

    def _update(self, group):
        lr = hyper_value(group["lr"])
        decay, d, wd = group["beta2_decay"], group["d"], group["weight_decay"]
        eps1, eps2 = group["eps"]

        def init(p):
            if p.ndim > 1:
                return {"row_var": creation.zeros(tuple(p.shape[:-1]) + (1,), dtype=p.dtype,
                                                  device=p.device),
                        "col_var": creation.zeros(tuple(p.shape[:-2]) + (1, p.shape[-1]),
                                                  dtype=p.dtype, device=p.device)}
            return {"variance": creation.zeros_like(p)}
        for p, g, st in self._with_grads(group, init):
            e1 = float(np.finfo(p.dtype).eps) if eps1 is None else eps1
            step = self._count_step(st)
            n = max(p.numel(), 1)
            if isinstance(step, Tensor):
                # captured: the step count and the RMS are read in the graph, in float64 as
                # the eager step's Python floats, then rounded to p's dtype as those are
                one_minus_beta2 = (step ** decay).astype(p.dtype)
                rho = (1.0 / step.sqrt()).clip(None, lr)
                alpha = (_norm64(p) / math.sqrt(n)).clip(eps2, None) * rho
            else:
                step = float(step)
                one_minus_beta2 = step ** decay
                rho = min(lr, 1.0 / math.sqrt(step))
                alpha = max(eps2, float((p * p).sum().sqrt()) / math.sqrt(n)) * rho
            if wd:
                p.mul_(1.0 - lr * wd)
            g2 = g * g
            if p.ndim > 1:
                row, col = st["row_var"], st["col_var"]
                row.add_((g2.mean(axis=-1, keepdims=True) - row) * one_minus_beta2)
                col.add_((g2.mean(axis=-2, keepdims=True) - col) * one_minus_beta2)
                var = (row @ col) / row.mean(axis=-2, keepdims=True).clip(e1, None)
            else:
                v = st["variance"]
                v.add_((g2 - v) * one_minus_beta2)
                var = v
            update = var.clip(e1 * e1, None).rsqrt() * g
            if isinstance(alpha, Tensor):
                denom = (_norm64(update) / (math.sqrt(n) * d)).clip(1.0, None)
                p.sub_(update * (alpha / denom).astype(p.dtype))
                continue
            denom = max(1.0, float((update * update).sum().sqrt()) / (math.sqrt(n) * d))
            p.sub_(update * (alpha / denom))


def _norm64(t: Tensor) -> Tensor:
    """``t``'s 2-norm as the eager step computes it (in ``t``'s dtype), as a float64 0-d
    tensor."""
    return (t * t).sum().sqrt().astype(np.float64)
