"""Finite-difference checks of gradients (first and second order), as PyTorch's
``torch.autograd.gradcheck`` / ``gradgradcheck``.

Complex inputs and outputs are checked as PyTorch does, as pairs of reals: each complex
element is two Jacobian columns (its real and imaginary parts perturbed) or two rows (the
real and imaginary parts of an output, whose backward takes the cotangents 1 and 1j), and a
complex gradient ``dL/dRe z + i dL/dIm z`` fills its two columns.

tensorlib has no forward-mode AD: the options that ask for it (``check_forward_ad``,
``check_batched_forward_grad``, ``check_fwd_over_rev``) raise NotImplementedError when True.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class GradcheckError(RuntimeError, AssertionError):
    """A gradient check failed (PyTorch's ``torch.autograd.gradcheck.GradcheckError``, a
    RuntimeError; also an AssertionError, what tensorlib's checks raised before)."""


def _tupled(inputs) -> list:
    """``inputs`` as a list: one tensor is one input (as PyTorch), not its rows."""
    from .._tensor import Tensor
    return [inputs] if isinstance(inputs, Tensor) else list(inputs)


def _flat_outputs(fn, inputs):
    """The floating-point tensor outputs of ``fn(*inputs)``: integer ones (an argmax, the
    indices of ``max``) have no gradient and are skipped, as PyTorch does."""
    from .._tensor import Tensor
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind in "fc"]


def _numel(t) -> int:
    """Columns of the Jacobian for an input: its elements (two for a complex one: real and
    imaginary parts), none for a non-tensor argument."""
    from .._tensor import Tensor
    if not isinstance(t, Tensor):
        return 0
    return t._data.size * (2 if t._data.dtype.kind == "c" else 1)


def _host64(t) -> np.ndarray:
    """A tensor's values as float64, a complex one as interleaved (real, imaginary) pairs."""
    a = t._host()
    if a.dtype.kind == "c":
        return np.stack([a.real, a.imag], -1).astype(np.float64).ravel()
    return a.astype(np.float64).ravel()


def _steps(a: np.ndarray, eps: float) -> list:
    """The perturbations of one element of ``a``: eps, and eps * 1j for a complex one."""
    return [eps, eps * 1j] if a.dtype.kind == "c" else [eps]


def numerical_jacobian(fn, inputs, eps):
    """J[k][i] = d out_k / d input_i, by central differences, as float64 arrays."""
    from .._tensor import Tensor
    from .mode import no_grad
    with no_grad():
        outs0 = _flat_outputs(fn, inputs)
        jac = [[np.zeros((_numel(o), _numel(t))) for t in inputs] for o in outs0]
        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor) or not t.requires_grad:
                continue
            a = t._data
            steps = _steps(a, eps)
            for j in range(a.size):
                # indexed in place (not through reshape(-1), a copy for a strided input)
                idx = np.unravel_index(j, a.shape)
                orig = a[idx].item()
                for s, h in enumerate(steps):
                    a[idx] = orig + h
                    plus = [_host64(o) for o in _flat_outputs(fn, inputs)]
                    a[idx] = orig - h
                    minus = [_host64(o) for o in _flat_outputs(fn, inputs)]
                    a[idx] = orig
                    for k in range(len(outs0)):
                        jac[k][i][:, j * len(steps) + s] = (plus[k] - minus[k]) / (2 * eps)
    return jac


def analytical_jacobian(fn, inputs, outs=None):
    """J[k][i] from the tape, one vector-Jacobian product per output element (``outs``:
    the outputs of one earlier call, to differentiate the same graph again)."""
    from .._tensor import Tensor
    from ..creation import zeros_like
    from .engine import grad
    if outs is None:
        outs = _flat_outputs(fn, inputs)
    diff = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    where = [next(ii for ii, x in enumerate(inputs) if x is t) for t in diff]
    jac = [[np.zeros((_numel(o), _numel(t))) for t in inputs] for o in outs]
    dtypes: list = []
    for k, o in enumerate(outs):
        if not o.requires_grad:
            continue
        # a complex output's real part takes the cotangent 1, its imaginary part 1j
        units = (1, 1j) if o.dtype.kind == "c" else (1,)
        for r in range(o.size):
            for s, unit in enumerate(units):
                go = zeros_like(o)
                # (by position: a *_like output may keep a channels_last layout)
                go._data[np.unravel_index(r, go._data.shape)] = unit
                gs = grad([o], diff, [go], retain_graph=True, allow_unused=True)
                for i, g in zip(where, gs):
                    if g is not None:
                        jac[k][i][r * len(units) + s, :] = _host64(g)
                        dtypes.append((i, g.dtype))
    return jac, dtypes


def _fail(msg: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(msg)
    return False


def _no_forward_ad(fname: str, **flags: bool) -> None:
    for name, on in flags.items():
        if on:
            raise NotImplementedError(f"{fname}: {name}=True needs forward-mode AD, which "
                                      "tensorlib does not have; leave it False (the default)")


def gradcheck(fn: Callable, inputs: Any, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked: bool | None = None) -> bool:
    """Compare the tape's gradients of ``fn(*inputs)`` with central differences, as
    ``torch.autograd.gradcheck``; ``inputs`` is a tensor or a sequence (non-tensor items are
    passed through). Use float64 inputs with ``requires_grad=True``.

    Integer outputs are skipped; a floating output that does not require grad must have a
    zero numerical gradient. ``nondet_tol``: how far two backward runs with the same
    cotangent may differ (0: bitwise equal). ``check_grad_dtypes``: gradients must have
    their input's dtype. ``check_batched_grad``: vector-Jacobian products under ``tl.vmap``
    must match one-by-one ones. ``fast_mode``: compare one random projection
    ``v^T J u`` per output and input instead of whole Jacobians. ``check_undefined_grad``
    and ``masked`` are accepted and change nothing (tensorlib has no undefined gradient
    tensors and no sparse tensors). Forward-mode options raise NotImplementedError when
    True. A failure raises ``GradcheckError`` (a RuntimeError), or returns False with
    ``raise_exception=False``.
    """
    from .._tensor import Tensor
    _no_forward_ad("gradcheck", check_forward_ad=check_forward_ad,
                   check_batched_forward_grad=check_batched_forward_grad)
    if not check_backward_ad:
        raise ValueError("gradcheck: expected at least one of check_forward_ad or "
                         "check_backward_ad to be True (tensorlib checks backward AD only)")
    inputs = _tupled(inputs)
    for t in inputs:
        if isinstance(t, Tensor) and t.requires_grad and t.dtype not in (np.float64,
                                                                         np.complex128):
            raise TypeError(f"gradcheck: use float64 (or complex128) inputs, got {t.dtype}")
    if not any(isinstance(t, Tensor) and t.requires_grad for t in inputs):
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check "
                         "(pass tensors made with requires_grad=True)")
    outs = _flat_outputs(fn, inputs)
    if fast_mode:
        msg, dtypes = _fast_check(fn, inputs, outs, eps, atol, rtol, nondet_tol)
        if msg is not None:
            return _fail(msg, raise_exception)
    else:
        num = numerical_jacobian(fn, inputs, eps)
        ana, dtypes = analytical_jacobian(fn, inputs, outs)
        msg = _compare(num, ana, outs, atol, rtol)
        if msg is not None:
            return _fail(msg, raise_exception)
        # PyTorch's reentrancy check: the same cotangent through the same graph again
        again, _ = analytical_jacobian(fn, inputs, outs)
        for k, (r1, r2) in enumerate(zip(ana, again)):
            for i, (a1, a2) in enumerate(zip(r1, r2)):
                msg = _reentrant(k, i, a1, a2, nondet_tol)
                if msg is not None:
                    return _fail(msg, raise_exception)
    if check_grad_dtypes:
        for i, dt in dtypes:
            if dt != inputs[i].dtype:
                return _fail(f"gradcheck: gradient for input {i} has dtype {dt}, the input "
                             f"has {inputs[i].dtype}", raise_exception)
    if check_batched_grad:
        msg = _check_batched(inputs, outs, atol, rtol)
        if msg is not None:
            return _fail(msg, raise_exception)
    return True


def _reentrant(k: int, i: int, a1, a2, nondet_tol: float) -> str | None:
    d = np.abs(np.asarray(a1, dtype=np.float64) - np.asarray(a2, dtype=np.float64))
    d = np.nan_to_num(d, nan=0.0)
    if d.size and d.max() > nondet_tol:
        return (f"gradcheck: backward is not reentrant for output {k} with respect to input "
                f"{i}: two runs with the same cotangent differ by {d.max():.3g} (more than "
                f"nondet_tol={nondet_tol}), although the analytical gradient matches the "
                "numerical one; raise nondet_tol for a nondeterministic backward")
    return None


def _compare(num, ana, outs, atol, rtol) -> str | None:
    if len(num) != len(ana):
        # a function whose outputs differ without grad mode would compare nothing
        return (f"gradcheck: {len(num)} floating-point outputs without autograd and "
                f"{len(ana)} with it; nothing to compare")
    for k, (rn, ra) in enumerate(zip(num, ana)):
        for i, (n, a) in enumerate(zip(rn, ra)):
            if np.allclose(a, n, atol=atol, rtol=rtol, equal_nan=True):
                continue
            if not outs[k].requires_grad:
                return (f"gradcheck: output {k} does not require grad, but its numerical "
                        f"gradient with respect to input {i} is not zero (max abs "
                        f"{np.abs(n).max():.3g}): is an op on the path not differentiable "
                        f"(a detach, a no_grad block)?\nnumerical:\n{n}")
            return (f"gradcheck: Jacobian mismatch for output {k} with respect to input {i}: "
                    f"analytical and numerical Jacobians differ (max abs diff "
                    f"{np.abs(a - n).max():.3g})\nnumerical:\n{n}\nanalytical:\n{a}")
    return None


def _fast_check(fn, inputs, outs, eps, atol, rtol, nondet_tol):
    """PyTorch's fast mode: v_k^T J_ki u_i by central differences along u_i against the
    tape's vector-Jacobian product with v_k, dotted with u_i. Returns (None or the error
    message, with the full Jacobians computed then; the gradients' (input, dtype))."""
    from .._tensor import Tensor
    from ..creation import tensor
    from .engine import grad
    from .mode import no_grad
    rng = np.random.default_rng(0)
    diff = [(i, t) for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    us = {}
    for i, t in diff:      # (as real-valued vectors: a complex tensor's (re, im) pairs)
        u = rng.standard_normal(_numel(t))
        us[i] = u / max(np.linalg.norm(u), 1e-12)
    vs = [rng.standard_normal(_numel(o)) for o in outs]
    num = {}
    with no_grad():
        for i, t in diff:
            a = t._data
            orig = a.copy()
            step = tensor(_unpair(us[i], t) * eps, dtype=t.dtype, device=t.device)._data
            a[...] = orig + step
            plus = [_host64(o) for o in _flat_outputs(fn, inputs)]
            a[...] = orig - step
            minus = [_host64(o) for o in _flat_outputs(fn, inputs)]
            a[...] = orig
            if len(plus) != len(outs):
                return (f"gradcheck: {len(plus)} floating-point outputs without autograd and "
                        f"{len(outs)} with it; nothing to compare"), []
            for k in range(len(outs)):
                num[k, i] = float(vs[k] @ ((plus[k] - minus[k]) / (2 * eps)))
    dtypes = []
    for k, o in enumerate(outs):
        gs = gs2 = [None] * len(diff)
        if o.requires_grad:
            v = tensor(_unpair(vs[k], o), dtype=o.dtype, device=o.device)
            gs, gs2 = (grad([o], [t for _, t in diff], [v], retain_graph=True,
                            allow_unused=True) for _ in range(2))
        for (i, _), g, g2 in zip(diff, gs, gs2):
            ana = 0.0 if g is None else float(_host64(g) @ us[i].ravel())
            if g is not None:
                dtypes.append((i, g.dtype))
            if not np.isclose(ana, num[k, i], atol=atol, rtol=rtol, equal_nan=True):
                full = _compare(numerical_jacobian(fn, inputs, eps),
                                analytical_jacobian(fn, inputs, outs)[0], outs, atol, rtol)
                return (f"gradcheck (fast mode): Jacobian mismatch for output {k} with "
                        f"respect to input {i}: v^T J u is {num[k, i]:.6g} numerically, "
                        f"{ana:.6g} analytically. Recomputed in slow mode:\n"
                        f"{full or '(the full Jacobians agree within the tolerances)'}"), dtypes
            if g is not None:
                msg = _reentrant(k, i, _host64(g), _host64(g2), nondet_tol)
                if msg is not None:
                    return msg, dtypes
    return None, dtypes


def _unpair(v: np.ndarray, t) -> np.ndarray:
    """A real vector laid out as ``_host64(t)`` back in ``t``'s shape (complex for a complex
    ``t``)."""
    if t.dtype.kind == "c":
        v = v[0::2] + 1j * v[1::2]
    return v.reshape(tuple(t.shape))


def _check_batched(inputs, outs, atol, rtol) -> str | None:
    """Vector-Jacobian products of a batch of cotangents under ``tl.vmap`` against the same
    products one at a time (PyTorch's ``check_batched_grad``)."""
    from .._tensor import Tensor
    from ..creation import tensor
    from ..func import vmap
    from .engine import grad
    rng = np.random.default_rng(1)
    diff = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    for k, o in enumerate(outs):
        if not o.requires_grad:
            continue
        vals = rng.standard_normal((2, *tuple(o.shape)))
        if o.dtype.kind == "c":
            vals = vals + 1j * rng.standard_normal(vals.shape)
        vs = tensor(vals, dtype=o.dtype, device=o.device)

        def vjp(v, o=o):
            return grad([o], diff, [v], retain_graph=True, materialize_grads=True)
        try:
            got = vmap(vjp)(vs)
        except Exception as e:
            return (f"gradcheck: while computing batched gradients (check_batched_grad) for "
                    f"output {k}, got: {type(e).__name__}: {e}")
        for b in range(2):
            want = vjp(vs[b])
            for i, (g, w) in enumerate(zip(got, want)):
                if not np.allclose(g[b]._host(), w._host(), atol=atol, rtol=rtol,
                                   equal_nan=True):
                    return (f"gradcheck: batched gradient (check_batched_grad) of output {k} "
                            f"with respect to differentiable input {i} differs from the "
                            f"one-by-one gradient (batch row {b})")
    return None


def gradgradcheck(fn: Callable, inputs: Any, grad_outputs: Any = None, *, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3,
                  gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  nondet_tol: float = 0.0, check_undefined_grad: bool = True,
                  check_grad_dtypes: bool = False, check_batched_grad: bool = False,
                  check_fwd_over_rev: bool = False, check_rev_over_rev: bool = True,
                  fast_mode: bool = False, masked: bool = False, seed: int = 0) -> bool:
    """Check second derivatives, as ``torch.autograd.gradgradcheck``: gradcheck of
    ``(inputs, v) -> grad(fn(inputs), inputs, v, create_graph=True)`` (the first derivatives
    are computed with grad mode on, also for the finite differences).

    ``grad_outputs``: the cotangents ``v`` (a tensor or one per floating output that
    requires grad); those that require grad are checked as inputs too. Left out, they are
    random (from ``seed``), require grad, and are non-contiguous with
    ``gen_non_contig_grad_outputs``. The other options are gradcheck's;
    ``check_fwd_over_rev=True`` raises NotImplementedError (no forward-mode AD), and
    ``check_rev_over_rev=False`` checks nothing."""
    from .._tensor import Tensor
    from ..creation import tensor, zeros_like
    from .engine import grad
    from .mode import enable_grad
    _no_forward_ad("gradgradcheck", check_fwd_over_rev=check_fwd_over_rev)
    if not check_rev_over_rev:
        return True
    inputs = _tupled(inputs)
    diff_idx = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    with enable_grad():
        outs = [o for o in _flat_outputs(fn, inputs) if o.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        vs = []
        for o in outs:
            shape = tuple(o.shape)
            cx = o.dtype.kind == "c"

            def draw(shape, cx=cx):
                vals = rng.uniform(-1, 1, shape)
                return vals + 1j * rng.uniform(-1, 1, shape) if cx else vals
            if gen_non_contig_grad_outputs and shape:
                # every other element of a buffer twice the size: a strided view
                base = tensor(draw((*shape, 2)), dtype=o.dtype, device=o.device)
                v = base[..., 0].detach()
            else:
                v = tensor(draw(shape), dtype=o.dtype, device=o.device)
            vs.append(v.requires_grad_())
    else:
        vs = _tupled(grad_outputs)
        if len(vs) != len(outs):
            raise ValueError(f"gradgradcheck: {len(vs)} grad_outputs for {len(outs)} "
                             "differentiable outputs")
        for v, o in zip(vs, outs):
            if not isinstance(v, Tensor) or tuple(v.shape) != tuple(o.shape):
                raise ValueError("gradgradcheck: each of grad_outputs must be a tensor of its "
                                 f"output's shape {tuple(o.shape)}")
    n_in = len(inputs)

    def first(*args):
        xs, gos = args[:n_in], args[n_in:]
        with enable_grad():
            os = [o for o in _flat_outputs(fn, xs) if o.requires_grad]
            if not os:
                return tuple(zeros_like(xs[i]) for i in diff_idx)
            gs = grad(os, [xs[i] for i in diff_idx], list(gos), create_graph=True,
                      allow_unused=True)
        return tuple(zeros_like(xs[i]) if g is None else g for i, g in zip(diff_idx, gs))

    return gradcheck(first, inputs + list(vs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol,
                     check_undefined_grad=check_undefined_grad,
                     check_grad_dtypes=check_grad_dtypes, check_batched_grad=check_batched_grad,
                     fast_mode=fast_mode, masked=masked)


# torch.autograd.gradcheck.GradcheckError: the package's ``gradcheck`` name is the function
gradcheck.GradcheckError = GradcheckError  # type: ignore[attr-defined]
gradgradcheck.GradcheckError = GradcheckError  # type: ignore[attr-defined]
