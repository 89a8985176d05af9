"""Adam and AdamW."""
from __future__ import annotations

from collections.abc import Iterable

from .. import creation
from ..ops.elementwise import maximum
from . import _fused
from .._hyper import hyper_value
from ..autograd.mode import state as _mode
from .optimizer import Optimizer, check_implementation_flags


def check_adam_hyperparameters(name: str, group: dict) -> None:
    """betas in [0, 1), eps and weight_decay >= 0: the checks Adam's relatives share."""
    b1, b2 = (hyper_value(b) for b in group["betas"])
    if not 0.0 <= b1 < 1.0 or not 0.0 <= b2 < 1.0:
        raise ValueError(f"{name}: invalid betas {group['betas']} (each must be in [0, 1))")
    if not group["eps"] >= 0.0:
        raise ValueError(f"{name}: invalid eps {group['eps']} (must be >= 0)")
    # SparseAdam's groups have no weight_decay (as PyTorch's)
    if not group.get("weight_decay", 0.0) >= 0.0:
        raise ValueError(f"{name}: invalid weight_decay {group['weight_decay']}")


class Adam(Optimizer):
    """Adam (Kingma & Ba), with optional AMSGrad and weight decay: L2 (added to the gradient)
    or, with ``decoupled_weight_decay=True``, decoupled (``p *= 1 - lr * wd`` before the
    step: then Adam is AdamW, as PyTorch >= 2.6). The flag is a group hyper-parameter, saved
    in ``state_dict()``. PyTorch's ``foreach=``, ``fused=`` and ``capturable=`` (which pick
    among implementations of the same update) are kept in ``defaults`` and the groups, as
    PyTorch's, but change nothing; as PyTorch, ``fused=True`` with ``foreach=True`` raises
    RuntimeError; ``differentiable=True`` raises NotImplementedError.

    Args:
        params: the parameters to optimise, or a list of dicts (parameter groups).
        lr: the learning rate (1e-3 by default).
        betas: the decay rates of the running means of the gradient and its square.
        eps: added to the denominator ``sqrt(v_hat) + eps``.
        weight_decay: L2 penalty (decoupled with ``decoupled_weight_decay=True``).
        amsgrad: use the running maximum of ``v_hat`` (AMSGrad); ``maximize`` ascends.

    >>> model = tl.nn.Linear(4, 1)
    >>> opt = tl.optim.Adam(model.parameters(), lr=1e-3)
    >>> loss = model(tl.randn(8, 4)).pow(2).mean()
    >>> opt.zero_grad(); loss.backward(); opt.step()
    """

    _sparse_hint = ", please consider SparseAdam instead"      # PyTorch's words

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, maximize: bool = False, *,
                 foreach: bool | None = None, fused: bool | None = None,
                 capturable: bool = False, differentiable: bool = False,
                 decoupled_weight_decay: bool = False):
        # PyTorch's foreach/fused/capturable choose among its implementations of the same
        # update: ignored (tensorlib's CPU step is a fused kernel already), but kept in the
        # groups as PyTorch's are, for code that reads them or rebuilds from opt.defaults
        check_implementation_flags(type(self).__name__, foreach=foreach, fused=fused,
                                   capturable=capturable, differentiable=differentiable)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach,
                                      capturable=capturable, differentiable=differentiable,
                                      fused=fused,
                                      decoupled_weight_decay=bool(decoupled_weight_decay)))

    def _validate(self, group):
        super()._validate(group)
        check_adam_hyperparameters(type(self).__name__, group)

    def _foreach(self, group) -> bool:
        """Whether ``group`` steps through ``_fused.adam_foreach``: eagerly, without amsgrad
        or maximize (the kernel has neither), and not while graph capture has replaced
        ``_with_grads`` (it primes the state through it, and must see no update)."""
        return (_mode.tracer is None and _mode.fwd_ad is None and not group["amsgrad"]
                and not group["maximize"] and "_with_grads" not in self.__dict__)

    def _check_grad_layout(self, group):
        if not self._foreach(group):      # else adam_foreach refuses, in its one loop
            super()._check_grad_layout(group)

    def _update(self, group):
        lr, eps = self._lr(group), group["eps"]
        b1, b2 = (self._hyper(b) for b in group["betas"])
        wd, amsgrad = group["weight_decay"], group["amsgrad"]
        decoupled = bool(group.get("decoupled_weight_decay", False))
        def init(p):
            st = {"exp_avg": creation.zeros_like(p), "exp_avg_sq": creation.zeros_like(p)}
            if amsgrad:
                st["max_exp_avg_sq"] = creation.zeros_like(p)
            return st
        params = group["params"]
        if self._foreach(group):
            params = _fused.adam_foreach(
                params, self.state, init, self._count_step, lr, b1, b2, eps, wd, decoupled,
                f"{type(self).__name__} does not support sparse gradients{self._sparse_hint}")
            if not params:
                return
        for p, g, st in self._with_grads(group, init, params):
            step = self._count_step(st)
            m, v = st["exp_avg"], st["exp_avg_sq"]
            if not amsgrad and _fused.adam(p, g, m, v, step, lr, b1, b2, eps, wd, decoupled):
                continue
            if wd:
                if decoupled:
                    p.mul_(1.0 - lr * wd)
                else:
                    g = g + wd * p
            bc1, bc2_sqrt = _fused.bias_corrections(p, step, b1, b2)
            m.mul_(b1)
            m.add_((1.0 - b1) * g)
            v.mul_(b2)
            v.add_((1.0 - b2) * g * g)
            if amsgrad:
                vmax = st["max_exp_avg_sq"]
                vmax.copy_(maximum(vmax, v))
                v = vmax
            denom = v.sqrt() / bc2_sqrt + eps
            p.sub_((lr / bc1) * m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * wd``
    before the Adam step; as PyTorch, ``Adam(..., decoupled_weight_decay=True)`` with
    ``weight_decay`` 0.01 by default, and its groups keep ``decoupled_weight_decay=True``
    (also after ``load_state_dict``). ``foreach=``, ``fused=`` and ``capturable=`` are
    kept in the groups and ignored, as Adam's (``torch.optim.AdamW``). The other arguments
    are :class:`Adam`'s.

    >>> model = nn.Linear(4, 1)
    >>> opt = tl.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    >>> model(tl.randn(8, 4)).pow(2).mean().backward()
    >>> opt.step()
    >>> opt.param_groups[0]["decoupled_weight_decay"]
    True"""

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False, *,
                 foreach: bool | None = None, fused: bool | None = None,
                 capturable: bool = False, differentiable: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize,
                         foreach=foreach, fused=fused, capturable=capturable,
                         differentiable=differentiable, decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        # as PyTorch's AdamW.__setstate__: an AdamW stays decoupled whatever it loads
        for g in self.param_groups:
            g["decoupled_weight_decay"] = True
