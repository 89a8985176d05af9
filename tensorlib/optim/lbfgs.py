"""L-BFGS: a quasi-Newton optimizer over all parameters as one flat vector, with an optional
strong-Wolfe line search; the same algorithm, stopping rules and state as PyTorch's."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .. import creation
from .._hyper import hyper_value
from .._tensor import Tensor
from ..autograd.mode import enable_grad, no_grad, state as _mode
from ..ops.shape import cat
from .optimizer import Optimizer

# Scalars computed from the flat vectors (dot products, norms, and what follows from them)
# are NumPy scalars of the parameters' dtype: float32 arithmetic stays float32 and Python
# numbers mix in weakly, as with PyTorch's 0-d tensors, so a float32 run takes the same
# decisions as PyTorch's. The loss is a Python float, as PyTorch's float(closure()).
_SCALARS = ("t", "H_diag")
_SCALAR_LISTS = ("ro", "al")
_VECTORS = ("d", "prev_flat_grad")
_VECTOR_LISTS = ("old_dirs", "old_stps")


class LBFGS(Optimizer):
    """Limited-memory BFGS (Nocedal & Wright, Algorithm 7.4/7.5), as ``torch.optim.LBFGS``.

    Each ``step(closure)`` runs up to ``max_iter`` iterations (and ``max_eval`` closure calls):
    the search direction comes from the two-loop recursion over the last ``history_size``
    pairs ``s = x_{k+1} - x_k``, ``y = g_{k+1} - g_k``; the step length is ``lr`` (on the very
    first iteration ``lr * min(1, 1/|g|_1)``) or, with ``line_search_fn="strong_wolfe"``,
    found by a line search satisfying the strong Wolfe conditions. It stops early when the
    gradient's largest entry is <= ``tolerance_grad``, or a step or the change of loss is
    below ``tolerance_change``. All parameters are one flat vector, so one parameter group
    only, and they must share one device; parameters of mixed float dtypes form a flat
    vector of the promoted dtype, each updated in its own dtype, as PyTorch's. A parameter
    that gets no gradient counts as having a zero gradient. ``step`` cannot be captured with
    ``tl.function``: the line search and the stopping rules read values in Python.

    >>> opt = tl.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe")
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = F.mse_loss(model(x), y)
    ...     loss.backward()
    ...     return loss
    >>> first_loss = opt.step(closure)
    """

    state_shaped_like_params = False      # its state is flat vectors and lists of them

    def __init__(self, params: Iterable, lr: float = 1, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None):
        if max_eval is None and isinstance(max_iter, int):
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                                      tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change,
                                      history_size=history_size,
                                      line_search_fn=line_search_fn))

    def add_param_group(self, group: dict[str, Any]) -> None:
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups): "
                             "pass all parameters as one list, with one set of options")
        if isinstance(group, dict):
            params = group.get("params")
            params = [params] if isinstance(params, Tensor) else list(params or ())
            devices = {str(p.device) for p in params if isinstance(p, Tensor)}
            if len(devices) > 1:
                raise ValueError(f"LBFGS: all parameters must be on one device (they form "
                                 f"one flat vector), got {', '.join(sorted(devices))}; move "
                                 "them with .to()")
            group = {**group, "params": params}
        super().add_param_group(group)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        for key in ("max_iter", "max_eval", "history_size"):
            v = group[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"LBFGS: {key} must be an int >= 1, got {v!r}")
        for key in ("tolerance_grad", "tolerance_change"):
            if not float(group[key]) >= 0.0:
                raise ValueError(f"LBFGS: {key} must be >= 0, got {group[key]!r}")
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                             f"{group['line_search_fn']!r}")
        if group["line_search_fn"] and not hyper_value(group["lr"]) > 0:
            raise ValueError("LBFGS: lr must be > 0 with line_search_fn='strong_wolfe' (the "
                             "line search starts from a step of lr)")

    # --- the flat vector ---------------------------------------------------------------
    @property
    def _params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    @property
    def _flat_dtype(self) -> np.dtype:
        """The flat vectors' dtype: the parameters' promoted dtype, as PyTorch's ``cat`` of
        mixed float32/float64 gradients (float64)."""
        return np.result_type(*[p.dtype for p in self._params]) if self._params \
            else np.dtype(np.float32)

    def _gather_flat_grad(self) -> Tensor:
        """All gradients as one new 1-d tensor (zeros for a parameter without one)."""
        group = self.param_groups[0]
        dt = self._flat_dtype
        parts = [creation.zeros(p.numel(), dtype=dt, device=p.device) if p.grad is None
                 else self._grad(p, group).reshape(-1).astype(dt) for p in self._params]
        return cat(parts)       # always a copy: a later zero_grad must not change it

    def _add_to_params(self, t: float, d: Tensor) -> None:
        """``params += t * d``, ``d`` flat (in the flat dtype; each parameter keeps its own,
        as PyTorch's in-place ``add_``)."""
        offset = 0
        for p in self._params:
            n = p.numel()
            step = d[offset:offset + n].reshape(p.shape)
            if step.dtype != p.dtype:
                # PyTorch's add_ of a wider step: summed in the wider dtype, rounded once
                p.copy_((p.detach().astype(step.dtype) + step * t).astype(p.dtype))
            else:
                _axpy_(p, t, step)
            offset += n

    def _directional_evaluate(self, closure: Callable, x: list[Tensor], t: float,
                              d: Tensor) -> tuple[float, Tensor]:
        """Loss and flat gradient at ``x + t * d``; the parameters are left at ``x``."""
        self._add_to_params(t, d)
        loss = _loss_value(_call(closure))
        flat_grad = self._gather_flat_grad()
        for p, x0 in zip(self._params, x):
            p.copy_(x0)
        return loss, flat_grad

    # --- step --------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Run up to ``max_iter`` L-BFGS iterations. ``closure`` zeroes the gradients,
        computes the loss, calls ``backward()`` and returns the loss (a 0-d tensor or a
        float); it is called with grad enabled. Returns the closure's first loss."""
        if closure is None or not callable(closure):
            raise TypeError("LBFGS.step needs a closure that zeroes the gradients, computes "
                            "the loss, calls loss.backward() and returns the loss")
        if _mode.tracer is not None:
            raise RuntimeError("LBFGS.step cannot be captured by tl.function or tl.capture: "
                               "its line search and stopping rules read values in Python; "
                               "call it eagerly (a captured closure is not supported either)")
        with no_grad():
            loss = self._run(closure)
        if not self._stepped:
            self._stepped = True
        return loss

    def _run(self, closure: Callable) -> Any:
        group = self.param_groups[0]
        lr = float(self._lr(group))
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size, line_search_fn = group["history_size"], group["line_search_fn"]

        # the state lives under the first parameter (as PyTorch keeps it)
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = _call(closure)
        loss = _loss_value(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if _abs_max(flat_grad) <= tolerance_grad:
            return orig_loss            # already optimal

        d, t = state.get("d"), state.get("t")
        # fresh lists: a state_dict() taken earlier keeps its own history
        old_dirs = list(state.get("old_dirs", []))
        old_stps = list(state.get("old_stps", []))
        ro = list(state.get("ro", []))
        al = list(state.get("al", [None] * history_size))
        H_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # direction
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = _num(y.dot(s))
                if ys > 1e-10:          # keep only pairs with positive curvature
                    if len(old_dirs) == history_size:
                        del old_dirs[0], old_stps[0], ro[0]
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / _num(y.dot(y))
                d, al = _two_loop(flat_grad, old_dirs, old_stps, ro, H_diag, al)

            prev_flat_grad = flat_grad.clone()
            prev_loss = loss

            # step length
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / _num(flat_grad.abs().sum())) * lr
            else:
                t = lr
            gtd = _num(flat_grad.dot(d))
            if gtd > -tolerance_change:     # not a descent direction (to tolerance)
                break

            if line_search_fn is not None:
                x_init = [p.clone() for p in self._params]

                def evaluate(step: float) -> tuple[float, Tensor]:
                    return self._directional_evaluate(closure, x_init, step, d)

                # the line search may spend what max_eval leaves of this step's budget
                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    evaluate, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals)
                self._add_to_params(t, d)
                opt_cond = _abs_max(flat_grad) <= tolerance_grad
            else:
                self._add_to_params(t, d)
                ls_func_evals = 0
                opt_cond = False
                if n_iter != max_iter:
                    # the last iteration's gradient is evaluated by the next step() instead
                    loss = _loss_value(_call(closure))
                    flat_grad = self._gather_flat_grad()
                    opt_cond = _abs_max(flat_grad) <= tolerance_grad
                    ls_func_evals = 1

            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # stopping rules, in PyTorch's order
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if _abs_max(d) * abs(t) <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, al=al,
                     H_diag=H_diag, prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss

    # --- state dict --------------------------------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (also through ``tl.save``/``tl.load``,
        which keep numbers as Python floats), or one from ``torch.optim.LBFGS`` (0-d
        tensors and lists of tensors)."""
        super().load_state_dict(state_dict)
        numel = sum(p.numel() for p in self._params)
        flat = self._flat_dtype
        for p, st in self.state.items():
            as_dtype = flat.type
            for k in _SCALARS:
                if st.get(k) is not None:
                    st[k] = as_dtype(_scalar(st[k]))
            for k in _SCALAR_LISTS:
                if k in st:
                    st[k] = [None if v is None else as_dtype(_scalar(v)) for v in st[k]]
            if st.get("prev_loss") is not None:
                st["prev_loss"] = _scalar(st["prev_loss"])
            for k in _VECTOR_LISTS:
                if k in st:
                    st[k] = [_vector(v, p, k, numel, flat) for v in st[k]]
            for k in _VECTORS:
                if st.get(k) is not None:
                    st[k] = _vector(st[k], p, k, numel, flat)
            for k in ("func_evals", "n_iter"):
                if k in st:
                    st[k] = int(_scalar(st[k]))


def _two_loop(flat_grad: Tensor, old_dirs: list[Tensor], old_stps: list[Tensor],
              ro: list[float], H_diag: float, al: list) -> tuple[Tensor, list]:
    """``-H g`` by the L-BFGS two-loop recursion (Nocedal & Wright, Algorithm 7.4), ``H``
    the inverse-Hessian estimate from the (s, y) pairs with initial scale ``H_diag``."""
    al = list(al)
    if len(al) < len(old_dirs):
        al.extend([None] * (len(old_dirs) - len(al)))
    q = -flat_grad
    for i in range(len(old_dirs) - 1, -1, -1):
        al[i] = _num(old_stps[i].dot(q)) * ro[i]
        _axpy_(q, -al[i], old_dirs[i])
    r = q * H_diag
    for i in range(len(old_dirs)):
        be_i = _num(old_dirs[i].dot(r)) * ro[i]
        _axpy_(r, al[i] - be_i, old_stps[i])
    return r, al


def _axpy_(y: Tensor, a: float, x: Tensor) -> None:
    """``y += a * x`` in place. PyTorch fuses this (``y.add_(x, alpha=a)`` is one rounding,
    a fused multiply-add, on CPUs with FMA and on GPUs); here ``a * x`` is rounded first,
    so iterates can differ from PyTorch's in the last bits (NumPy has no FMA)."""
    y.add_(x, alpha=a)


# --- strong-Wolfe line search (Nocedal & Wright, Algorithms 3.5 and 3.6) ------------------
def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """Minimizer of the cubic through ``(x1, f1)``, ``(x2, f2)`` with slopes ``g1``, ``g2``
    (Nocedal & Wright, eq. 3.59), clipped to ``bounds`` (default: between x1 and x2); the
    bounds' midpoint where the cubic has no minimizer."""
    if bounds is not None:
        lo, hi = bounds
    else:
        lo, hi = (x1, x2) if x1 <= x2 else (x2, x1)
    # the slopes are NumPy scalars: a degenerate cubic gives inf/nan, as PyTorch's tensors do
    with np.errstate(all="ignore"):
        num, den = 3 * (f1 - f2), x1 - x2
        if isinstance(den, np.floating) and not isinstance(num, np.floating):
            # PyTorch evaluates number / 0-d tensor as reciprocal(tensor) * number; rounding
            # as it does keeps the line search's trial steps identical to the last bit
            secant = (1 / den) * num
        else:
            secant = num / den
        d1 = g1 + g2 - secant
        d2_square = d1 ** 2 - g1 * g2
        if d2_square >= 0:
            d2 = np.sqrt(d2_square)
            if x1 <= x2:
                min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
            else:
                min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
            return min(max(min_pos, lo), hi)
        return (lo + hi) / 2.0


def _strong_wolfe(evaluate: Callable[[float], tuple[float, Tensor]], t: float, d: Tensor,
                  f: float, g: Tensor, gtd: float, c1: float = 1e-4, c2: float = 0.9,
                  tolerance_change: float = 1e-9,
                  max_ls: int = 25) -> tuple[float, Tensor, float, int]:
    """A step ``t`` along ``d`` meeting the strong Wolfe conditions: sufficient decrease
    ``f(t) <= f + c1 t g.d`` and curvature ``|g(t).d| <= c2 |g.d|``. ``evaluate(t)`` gives
    ``(loss, flat gradient)`` at ``x + t d``; ``f``, ``g``, ``gtd`` are the loss, gradient and
    directional derivative at ``t = 0``. A bracketing phase grows ``t`` (cubic extrapolation)
    until it brackets an acceptable step; a zoom phase shrinks the bracket (cubic
    interpolation, safeguarded). At most ``max_ls`` evaluations after the first.
    Returns ``(loss, gradient, t, number of evaluations)``."""
    d_norm = _abs_max(d)
    f_new, g_new = evaluate(t)
    evals = 1
    gtd_new = _num(g_new.dot(d))

    # bracketing: [t_prev, t] brackets a step as soon as t fails sufficient decrease, stops
    # decreasing, or the slope turns nonnegative
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            bracket = [t_prev, t]
            bracket_f, bracket_g, bracket_gtd = [f_prev, f_new], [g_prev, g_new], \
                [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g, bracket_gtd = [t], [f_new], [g_new], [gtd_new]
            done = True
            break
        if gtd_new >= 0:
            bracket = [t_prev, t]
            bracket_f, bracket_g, bracket_gtd = [f_prev, f_new], [g_prev, g_new], \
                [gtd_prev, gtd_new]
            break
        # extrapolate, at least 1% beyond t and at most to 10 t
        t_next = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                   bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = _num(g_new.dot(d))
        ls_iter += 1
    if ls_iter == max_ls:     # no bracket found: the best of 0 and the last t
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]

    # zoom: bracket[low] is the best point so far, bracket[high] the other end
    insuf_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                              bracket[1], bracket_f[1], bracket_gtd[1])
        # safeguard: a trial too close to an end of the bracket (within 10% of its width)
        # is accepted once; the second time in a row, or outside the bracket, it is moved
        # 10% inside
        b_max, b_min = max(bracket), min(bracket)
        eps = 0.1 * (b_max - b_min)
        if min(b_max - t, t - b_min) < eps:
            if insuf_progress or t >= b_max or t <= b_min:
                t = b_max - eps if abs(t - b_max) < abs(t - b_min) else b_min + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = _num(g_new.dot(d))
        ls_iter += 1

        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low]:
            bracket[high], bracket_f[high], bracket_g[high], bracket_gtd[high] = \
                t, f_new, g_new, gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                # the slope at t points away from high: the old low becomes high
                bracket[high], bracket_f[high], bracket_g[high], bracket_gtd[high] = \
                    bracket[low], bracket_f[low], bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low], bracket_g[low], bracket_gtd[low] = \
                t, f_new, g_new, gtd_new

    return bracket_f[low], bracket_g[low], bracket[low], evals


# --- helpers ------------------------------------------------------------------------------
def _call(closure: Callable) -> Any:
    with enable_grad():
        return closure()


def _loss_value(loss: Any) -> float:
    if loss is None:
        raise TypeError("LBFGS: the closure returned None; it must return the loss (a 0-d "
                        "tensor or a float)")
    if isinstance(loss, Tensor) and loss.numel() != 1:
        raise ValueError(f"LBFGS: the closure must return a scalar loss, got a tensor of "
                         f"shape {tuple(loss.shape)}")
    return float(loss)


def _num(v: Tensor) -> np.floating:
    """A 0-d tensor's value as a NumPy scalar of its dtype."""
    return v._host()[()]


def _abs_max(v: Tensor) -> np.floating:
    return _num(v.abs().max())


def _scalar(v) -> float:
    return float(v.item() if hasattr(v, "item") else v)


def _vector(v, p: Tensor, key: str, numel: int, dtype) -> Tensor:
    """A saved flat vector as a tensor of the flat ``dtype``, on ``p``'s device."""
    if not isinstance(v, Tensor):
        v = creation.tensor(v)          # a torch tensor from torch.optim.LBFGS's state
    if v.shape != (numel,):
        raise ValueError(f"LBFGS.load_state_dict: state {key!r} has shape {tuple(v.shape)}, "
                         f"but the parameters hold {numel} numbers in all (a state saved "
                         "for another model?)")
    return v.to(device=p.device, dtype=dtype)
