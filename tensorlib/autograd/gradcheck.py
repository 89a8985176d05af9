"""Finite-difference checks of gradients (first and second order)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _flat_outputs(fn, inputs):
    from .._tensor import Tensor
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _numel(t) -> int:
    """Columns of the Jacobian for an input: its elements, none for a non-tensor argument."""
    from .._tensor import Tensor
    return t._data.size if isinstance(t, Tensor) else 0


def numerical_jacobian(fn, inputs, eps):
    """J[k][i] = d out_k / d input_i, by central differences, as float64 arrays."""
    from .._tensor import Tensor
    from .mode import no_grad
    with no_grad():
        outs0 = _flat_outputs(fn, inputs)
        jac = [[np.zeros((o.size, _numel(t))) for t in inputs] for o in outs0]
        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor) or not t.requires_grad:
                continue
            flat = t._data.reshape(-1)
            for j in range(t.size):
                orig = flat[j].item()
                flat[j] = orig + eps
                plus = [o._host().astype(np.float64).ravel() for o in _flat_outputs(fn, inputs)]
                flat[j] = orig - eps
                minus = [o._host().astype(np.float64).ravel() for o in _flat_outputs(fn, inputs)]
                flat[j] = orig
                for k in range(len(outs0)):
                    jac[k][i][:, j] = (plus[k] - minus[k]) / (2 * eps)
    return jac


def analytical_jacobian(fn, inputs):
    from .._tensor import Tensor
    from ..creation import zeros_like
    from .engine import grad
    outs = _flat_outputs(fn, inputs)
    diff = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    jac = [[np.zeros((o.size, _numel(t))) for t in inputs] for o in outs]
    for k, o in enumerate(outs):
        if not o.requires_grad:
            continue
        for r in range(o.size):
            go = zeros_like(o)
            go._data.reshape(-1)[r] = 1
            gs = grad([o], diff, [go], retain_graph=True, allow_unused=True)
            for t, g in zip(diff, gs):
                i = next(ii for ii, x in enumerate(inputs) if x is t)
                if g is not None:
                    jac[k][i][r, :] = g._host().astype(np.float64).ravel()
    return jac


def gradcheck(fn: Callable, inputs: Sequence, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Compare the tape's gradients of ``fn(*inputs)`` with central differences.

    Use float64 inputs with ``requires_grad=True``.
    """
    from .._tensor import Tensor
    inputs = list(inputs)
    for t in inputs:
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck: use float64 inputs, got {t.dtype}")
    if not any(isinstance(t, Tensor) and t.requires_grad for t in inputs):
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check "
                         "(pass tensors made with requires_grad=True)")
    num = numerical_jacobian(fn, inputs, eps)
    ana = analytical_jacobian(fn, inputs)
    if len(num) != len(ana) or not num:
        # nothing compared must not pass: a function whose outputs vanish without grad
        # mode would check nothing
        if raise_exception:
            raise AssertionError(f"gradcheck: {len(num)} outputs without autograd and "
                                 f"{len(ana)} with it; nothing to compare"
                                 if num or ana else "gradcheck: the function returned no "
                                 "floating-point tensor outputs")
        return False
    for k, (rn, ra) in enumerate(zip(num, ana)):
        for i, (n, a) in enumerate(zip(rn, ra)):
            if not np.allclose(a, n, atol=atol, rtol=rtol, equal_nan=True):
                if raise_exception:
                    diff = np.abs(a - n).max()
                    raise AssertionError(f"gradcheck: output {k} / input {i}: analytical and "
                                         f"numerical Jacobians differ (max abs diff {diff:.3g})"
                                         f"\nanalytical:\n{a}\nnumerical:\n{n}")
                return False
    return True


def gradgradcheck(fn: Callable, inputs: Sequence, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, seed: int = 0, raise_exception: bool = True) -> bool:
    """Check second derivatives: gradcheck of x -> grad(fn(x) . v, x, create_graph=True)
    (the first derivatives are computed with grad mode on, also for the finite
    differences)."""
    from .._tensor import Tensor
    from ..creation import tensor, zeros_like
    from .engine import grad
    from .mode import enable_grad
    inputs = list(inputs)
    diff_idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    rng = np.random.default_rng(seed)
    outs = _flat_outputs(fn, inputs)
    vs = [tensor(rng.standard_normal(o.shape), dtype=np.float64) for o in outs]

    def first(*xs):
        with enable_grad():
            os = _flat_outputs(fn, xs)
            pairs = [(o, v) for o, v in zip(os, vs) if o.requires_grad]
            if not pairs:
                return tuple(zeros_like(xs[i]) for i in diff_idx)
            total = sum((o * v).sum() for o, v in pairs)
            gs = grad([total], [xs[i] for i in diff_idx], create_graph=True,
                      allow_unused=True)
        return tuple(zeros_like(xs[i]) if g is None else g for i, g in zip(diff_idx, gs))

    return gradcheck(first, inputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
