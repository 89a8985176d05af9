"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay."""
from __future__ import annotations

from collections.abc import Iterable

from . import _fused
from .._hyper import enabled, hyper_value
from ..autograd.mode import state as _mode
from .optimizer import Optimizer, check_implementation_flags


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (``torch.optim.SGD``).

    Each step, with ``g = grad + weight_decay * p``: ``v = momentum * v + (1 - dampening)
    * g`` (``v = g`` on the first step), then ``p -= lr * v``, or ``p -= lr * (g +
    momentum * v)`` with ``nesterov=True`` (PyTorch's formulation, not Sutskever's).

    Args:
        params: the parameters to optimise, or a list of dicts (parameter groups, each
            with its own hyperparameters).
        lr: the learning rate (1e-3 by default, as PyTorch >= 2.6).
        momentum, dampening, weight_decay, nesterov: as above; ``maximize`` ascends.
        foreach, fused, capturable: PyTorch's choices of implementation, accepted and
            kept in the groups (``foreach`` with ``fused`` raises RuntimeError, as
            PyTorch's), but tensorlib has one (fused) CPU update;
            ``differentiable=True`` raises NotImplementedError.

    >>> model = nn.Linear(4, 1)
    >>> opt = tl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> loss = model(tl.randn(8, 4)).pow(2).mean()
    >>> opt.zero_grad(); loss.backward(); opt.step()
    """

    _sparse_grads = True

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False,
                 maximize: bool = False, *,
                 foreach: bool | None = None, fused: bool | None = None,
                 capturable: bool = False, differentiable: bool = False):
        check_implementation_flags(type(self).__name__, foreach=foreach, fused=fused,
                                   capturable=capturable, differentiable=differentiable)
        # the implementation flags are kept (in PyTorch's keys and order) though they change
        # nothing, so code that reads or rebuilds from opt.defaults works as with PyTorch
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    def _validate(self, group):
        super()._validate(group)
        if hyper_value(group["momentum"]) < 0.0:
            raise ValueError(f"SGD: invalid momentum {group['momentum']} (must be >= 0)")
        if group["weight_decay"] < 0.0:
            raise ValueError(f"SGD: invalid weight_decay {group['weight_decay']} (must be >= 0)")
        if group["nesterov"] and (hyper_value(group["momentum"]) <= 0
                                  or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")

    def _prime_first_step(self, p) -> dict:
        """The state a captured step starts ``p`` with (see ``graph.capture._prime``): a zero
        momentum buffer and a 0-d flag, 1 until the first step, which the step reads to
        take the gradient undamped then. The first and later steps share one graph. The
        flag is kept outside ``state`` (``state_dict`` keeps PyTorch's keys) and holds only
        while ``state[p]["momentum_buffer"]`` is this buffer (a loaded state replaces it)."""
        from ..creation import ones, zeros_like
        st = {"momentum_buffer": zeros_like(p)}
        self.__dict__.setdefault("_first_step", {})[p] = (
            st["momentum_buffer"], ones((), dtype=p.dtype, device=p.device))
        return st

    def _first_flag(self, p, st: dict):
        """``p``'s first-step flag (see ``_prime_first_step``), or None."""
        hit = self.__dict__.get("_first_step", {}).get(p)
        if hit is None:
            return None
        if st.get("momentum_buffer") is not hit[0]:
            del self._first_step[p]      # a loaded or replaced buffer: the flag is stale
            return None
        return hit[1]

    def _unflag(self, params) -> None:
        """Eagerly: a primed buffer whose first step has not run is no buffer yet (the
        fused kernels then take the first step as eager does)."""
        for p in params:
            st = self.state.get(p)
            flag = None if st is None else self._first_flag(p, st)
            if flag is not None:
                if float(flag._data) != 0.0:
                    del st["momentum_buffer"]
                del self._first_step[p]

    def state_dict(self) -> dict:
        out = super().state_dict()
        index: dict[int, int] = {}
        for g in self.param_groups:
            for p in g["params"]:
                index.setdefault(id(p), len(index))
        for p in list(self.__dict__.get("_first_step", ())):
            st = self.state.get(p)
            flag = None if st is None else self._first_flag(p, st)
            saved = out["state"].get(index.get(id(p)))
            if flag is not None and float(flag._data) != 0.0 and isinstance(saved, dict):
                # primed by a capture and never stepped: no state yet, as PyTorch's
                saved.pop("momentum_buffer", None)
        return out

    def _update(self, group):
        lr, mom, damp = self._lr(group), self._hyper(group["momentum"]), group["dampening"]
        wd, nesterov = group["weight_decay"], group["nesterov"]
        params = group["params"]
        if self.__dict__.get("_first_step") and _mode.tracer is None:
            self._unflag(params)
        if _mode.tracer is None and _mode.fwd_ad is None and not group["maximize"]:
            # eager: one loop over every parameter into the fused kernel; capture records the
            # tensor ops below instead (the kernel would change storage behind the tracer),
            # and so does a dual level (the kernel would skip the tangents)
            params = _fused.sgd_foreach(params, self.state, lr, mom, damp, wd, nesterov)
            if not params:
                return
        for p, g, st in self._with_grads(group, lambda p: {}, params):
            if g.is_sparse:
                _sparse_step(p, g, st, lr, mom, damp, wd, nesterov)
                continue
            buf = st.get("momentum_buffer")
            # a primed first step (see _prime_first_step) reads its flag: the tensor ops
            first = (self._first_flag(p, st) if damp and buf is not None and enabled(mom)
                     else None)
            if first is None and _fused.sgd(p, g, buf, lr, mom, damp, wd, nesterov, st):
                continue
            if wd:
                g = g + wd * p
            if enabled(mom):
                if buf is None:
                    buf = st["momentum_buffer"] = g.clone()
                elif first is not None:
                    # the buffer is zero until the flag drops: 1 - damp * (1 - first) is 1
                    # then (the undamped gradient, as eager's first step), 1 - damp after
                    buf.mul_(mom)
                    buf.add_(g * (1.0 - damp * (1.0 - first)))
                    first.zero_()
                else:
                    buf.mul_(mom)
                    buf.add_(g * (1.0 - damp) if damp else g)
                g = g + mom * buf if nesterov else buf
            p.sub_(lr * g)


def _sparse_step(p, g, st: dict, lr, mom, damp, wd, nesterov) -> None:
    """PyTorch's SGD step with a sparse gradient: only its rows move. The momentum buffer
    is sparse too (it gathers every row seen, as PyTorch's); weight decay raises, as there
    (it would add the dense parameter to the sparse gradient)."""
    if wd:
        raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) "
                           "instead.")
    from ..sparse import rows_of
    if enabled(mom):
        buf = st.get("momentum_buffer")
        if buf is None:
            buf = st["momentum_buffer"] = g.clone()
        else:
            buf.mul_(float(mom))
            buf.add_(g, alpha=1.0 - damp)
        g = g + buf * float(mom) if nesterov else buf
    rows, gv = rows_of(g)
    if gv.size:
        P = p._data.reshape((-1,) + tuple(p.shape[g.sparse_dim():]))
        P[rows] += gv.astype(P.dtype, copy=False) * (-float(lr))
        p._version[0] += 1
