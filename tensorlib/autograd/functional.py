"""Derivatives of functions, built on :func:`tl.grad`: ``vjp``, ``jvp``, ``jacobian``,
``hessian``, ``hvp``, ``vhp`` (``tl.autograd.functional``, as in PyTorch).

Each takes ``func`` and ``inputs`` (a tensor or a tuple of tensors) and differentiates
``func(*inputs)`` at ``inputs``. The inputs are not modified: each call differentiates fresh
copies. ``create_graph=True`` keeps the results differentiable (derivatives of
derivatives). ``jvp`` uses the double-vjp identity ``J v = d/du <J^T u, v>``, which needs
nothing beyond reverse mode.

>>> f = lambda x: (x ** 3).sum()
>>> tl.autograd.functional.hessian(f, tl.tensor([1.0, 2.0]))
tensor([[ 6.,  0.],
        [ 0., 12.]])
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .engine import grad
from .mode import enable_grad

if TYPE_CHECKING:
    from .._tensor import Tensor

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vjp"]


def _tuple(x, what: str) -> tuple[tuple[Tensor, ...], bool]:
    from .._tensor import Tensor   # (autograd is imported by _tensor itself)
    if isinstance(x, Tensor):
        return (x,), True
    if isinstance(x, Sequence) and all(isinstance(t, Tensor) for t in x):
        return tuple(x), False
    raise TypeError(f"{what} must be a Tensor or a tuple of Tensors, got {type(x).__name__}")


def _scalar_output(out, what: str) -> Tensor:
    outs, single = _tuple(out, what)
    if not single or outs[0].size != 1:
        raise ValueError(f"{what} must be a single-element tensor")
    return outs[0].reshape(())


def _fresh(inputs: tuple[Tensor, ...], create_graph: bool) -> tuple[Tensor, ...]:
    """The tensors to differentiate at: with ``create_graph`` the caller's own tensors when
    they require grad (so the results stay connected to them), else new leaves that share
    their storage (``requires_grad`` of the caller's tensors is left alone)."""
    out = []
    for t in inputs:
        if t.dtype.kind not in "fc":
            raise TypeError(f"autograd.functional: inputs must be floating point or complex, "
                            f"got {t.dtype}")
        out.append(t if create_graph and t.requires_grad else t.detach().requires_grad_(True))
    return tuple(out)


def _grads(outputs, inputs, grad_outputs, create_graph: bool,
           strict: bool = False) -> tuple[Tensor, ...]:
    """Gradients of ``outputs`` (weighted by ``grad_outputs``) for each input; zeros where
    an input does not reach any output (or no output depends on the inputs at all), or an
    error with ``strict`` (as PyTorch's)."""
    from ..creation import zeros_like
    gos = list(grad_outputs) if grad_outputs is not None else [None] * len(outputs)
    pairs = [(o, g) for o, g in zip(outputs, gos) if o.requires_grad]
    gs: tuple = (None,) * len(inputs)
    if pairs:
        gs = grad([o for o, _ in pairs], inputs, [g for _, g in pairs], retain_graph=True,
                  create_graph=create_graph, allow_unused=True)
    if strict:
        for i, g in enumerate(gs):
            if g is None:
                raise RuntimeError(f"the output does not depend on input {i} (strict=True; "
                                   "leave strict out to get zeros)")
    return tuple(zeros_like(x) if g is None else g for g, x in zip(gs, inputs))


def _results(ts: tuple, create_graph: bool) -> tuple:
    """What the caller gets: the tensors themselves with ``create_graph``, else detached."""
    return ts if create_graph else tuple(t.detach() for t in ts)


def _out(res: tuple, single: bool):
    return res[0] if single else res


def _check_like(vs: tuple[Tensor, ...], like: tuple[Tensor, ...], what: str) -> None:
    if len(vs) != len(like):
        raise ValueError(f"{what}: expected {len(like)} tensors, got {len(vs)}")
    for v, t in zip(vs, like):
        if tuple(v.shape) != tuple(t.shape):
            raise ValueError(f"{what}: shape {tuple(v.shape)} does not match {tuple(t.shape)}")


def vjp(func: Callable, inputs, v=None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """``(func(*inputs), v^T J)``: the vector-Jacobian product; ``v`` may be omitted when
    ``func`` returns one element. ``strict``: raise when the output does not depend on an
    input (else zeros), as PyTorch's."""
    ins, single_in = _tuple(inputs, "vjp: inputs")
    with enable_grad():
        xs = _fresh(ins, create_graph)
        outs = func(*xs)
        os_, single_out = _tuple(outs, "vjp: func's output")
        if v is None:
            if len(os_) != 1 or os_[0].size != 1:
                raise ValueError("vjp: v is needed unless func returns a single element")
            vs = None
        else:
            vs, _ = _tuple(v, "vjp: v")
            _check_like(vs, os_, "vjp: v")
        g = _grads(os_, xs, vs, create_graph, strict)
    return (_out(_results(os_, create_graph), single_out),
            _out(_results(g, create_graph), single_in))


def jvp(func: Callable, inputs, v=None, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """``(func(*inputs), J v)``: the Jacobian-vector product; ``v`` may be omitted when the
    input is a single element. ``strict``: as :func:`vjp`."""
    from ..creation import zeros_like
    ins, single_in = _tuple(inputs, "jvp: inputs")
    if v is None:
        if len(ins) != 1 or ins[0].size != 1:
            raise ValueError("jvp: v is needed unless the input is a single element")
        from ..creation import ones_like
        vs = (ones_like(ins[0]),)
    else:
        vs, _ = _tuple(v, "jvp: v")
        _check_like(vs, ins, "jvp: v")
    with enable_grad():
        xs = _fresh(ins, True)
        os_, single_out = _tuple(func(*xs), "jvp: func's output")
        # g(u) = J^T u is linear in u; its vjp with v is J v
        us = tuple(zeros_like(o).requires_grad_(True) for o in os_)
        g = _grads(os_, xs, us, True, strict)
        jv = _grads(g, us, vs, create_graph)
    return (_out(_results(os_, create_graph), single_out),
            _out(_results(jv, create_graph), single_out))


def _vectorizable(ins: tuple, what: str) -> None:
    for t in ins:
        if t.dtype.kind not in "fc":
            raise TypeError(f"{what}: inputs must be floating point or complex, got {t.dtype}")


def _as_output(out, what: str):
    """``func``'s output as a Tensor or a tuple of them (a list becomes a tuple)."""
    outs, single = _tuple(out, what)
    return outs[0] if single else outs


def _batched_jacobian(func: Callable, ins: tuple, single_in: bool, create_graph: bool,
                      forward: bool):
    """``vectorize=True``: ``tl.func.jacfwd``/``jacrev``, every row (column) at once under
    vmap instead of one backward pass per output element."""
    from ..func import jacfwd, jacrev
    xs = ins if create_graph else tuple(t.detach() for t in ins)
    argnums = 0 if single_in else tuple(range(len(xs)))
    res = (jacfwd if forward else jacrev)(func, argnums=argnums)(*xs)
    return res if create_graph else _detach_tree(res)


def _detach_tree(res):
    if isinstance(res, tuple):
        return tuple(_detach_tree(r) for r in res)
    return res.detach()


def jacobian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``, of shape ``output.shape + input.shape`` (a
    tuple over inputs and/or outputs when there are several), as PyTorch's. ``strict``:
    raise when an output does not depend on an input (else zeros). ``vectorize=True``
    computes all rows at once with :func:`tl.func.jacrev` (``strategy="forward-mode"``:
    all columns with :func:`tl.func.jacfwd`); the default is one backward pass per output
    element (also with ``strict=True``, which PyTorch refuses with ``vectorize``)."""
    from ..ops.shape import stack
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"jacobian: strategy must be 'reverse-mode' or 'forward-mode', got "
                         f"{strategy!r}")
    ins, single_in = _tuple(inputs, "jacobian: inputs")
    if vectorize and not strict:
        _vectorizable(ins, "jacobian")
        with enable_grad():
            return _batched_jacobian(
                lambda *xs: _as_output(func(*xs), "jacobian: func's output"), ins,
                single_in, create_graph, strategy == "forward-mode")
    with enable_grad():
        xs = _fresh(ins, create_graph)
        os_, single_out = _tuple(func(*xs), "jacobian: func's output")
        rows = []
        for o in os_:
            flat = o.reshape(-1)
            per_input: list[list[Tensor]] = [[] for _ in xs]
            # a complex output element is seeded with 1 explicitly (its row is the gradient of
            # its real part, as PyTorch's vectorized jacobian; an implicit seed is refused)
            seed = None
            if o.dtype.kind == "c":
                from ..creation import ones
                seed = (ones((), dtype=o.dtype, device=o.device),)
            for k in range(flat.shape[0]):
                g = _grads((flat[k],), xs, seed, create_graph, strict)
                for i, gi in enumerate(_results(g, create_graph)):
                    per_input[i].append(gi)
            blocks = []
            for i, x in enumerate(xs):
                if per_input[i]:
                    j = stack(per_input[i]).reshape(tuple(o.shape) + tuple(x.shape))
                else:   # an output with no elements
                    from ..creation import zeros
                    j = zeros(*(tuple(o.shape) + tuple(x.shape)), dtype=x.dtype,
                              device=x.device)
                blocks.append(j)
            rows.append(_out(tuple(blocks), single_in))
    return _out(tuple(rows), single_out)


def hessian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a function returning one element: shape ``input.shape * 2`` (nested
    tuples for several inputs), as PyTorch's. ``strict``, ``vectorize``: as
    :func:`jacobian`; with ``vectorize=True`` it is :func:`tl.func.jacrev` of the gradient
    (``outer_jacobian_strategy="forward-mode"``: :func:`tl.func.jacfwd` of it, as
    ``tl.func.hessian``), batched."""
    ins, single_in = _tuple(inputs, "hessian: inputs")
    if outer_jacobian_strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"hessian: outer_jacobian_strategy must be 'reverse-mode' or "
                         f"'forward-mode', got {outer_jacobian_strategy!r}")
    if vectorize and not strict:
        from ..func import jacrev
        _vectorizable(ins, "hessian")
        argnums = 0 if single_in else tuple(range(len(ins)))
        inner = jacrev(lambda *xs: _scalar_output(func(*xs), "hessian: func's output"),
                       argnums=argnums)
        with enable_grad():
            return _batched_jacobian(inner, ins, single_in, create_graph,
                                     outer_jacobian_strategy == "forward-mode")

    def gradient(*xs):
        out = _scalar_output(func(*xs), "hessian: func's output")
        return _out(_grads((out,), xs, None, True, strict), single_in)
    return jacobian(gradient, inputs, create_graph=create_graph, strict=strict,
                    vectorize=False, strategy=outer_jacobian_strategy)


def hvp(func: Callable, inputs, v, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """``(func(*inputs), H v)`` for a function returning one element, without forming the
    Hessian: the gradient of ``<grad func, v>``. ``strict``: as :func:`vjp`."""
    ins, single_in = _tuple(inputs, "hvp: inputs")
    vs, _ = _tuple(v, "hvp: v")
    _check_like(vs, ins, "hvp: v")
    with enable_grad():
        xs = _fresh(ins, True)
        out = _scalar_output(func(*xs), "hvp: func's output")
        g = _grads((out,), xs, None, True, strict)
        if any(x.dtype.kind == "c" for x in xs):
            # complex inputs: H v by the double-vjp identity, as PyTorch's hvp (the gradient
            # is not holomorphic in general, so v^T H is another product)
            from ..creation import zeros_like
            us = tuple(zeros_like(x).requires_grad_(True) for x in xs)
            back = _grads(g, xs, us, True, strict)
            hv = _grads(back, us, vs, create_graph, strict)
        else:
            hv = _grads(g, xs, vs, create_graph, strict)
    return _results((out,), create_graph)[0], _out(_results(hv, create_graph), single_in)


def vhp(func: Callable, inputs, v, create_graph: bool = False,
        strict: bool = False) -> tuple[Any, Any]:
    """``(func(*inputs), v^T H)`` for a function returning one element: the vjp of the
    gradient with ``v``. For real inputs the Hessian is symmetric and this is :func:`hvp`'s
    product; for complex ones it is PyTorch's ``vhp``."""
    ins, single_in = _tuple(inputs, "vhp: inputs")
    vs, _ = _tuple(v, "vhp: v")
    _check_like(vs, ins, "vhp: v")
    with enable_grad():
        xs = _fresh(ins, True)
        out = _scalar_output(func(*xs), "vhp: func's output")
        g = _grads((out,), xs, None, True, strict)
        vh = _grads(g, xs, vs, create_graph, strict)
    return _results((out,), create_graph)[0], _out(_results(vh, create_graph), single_in)
