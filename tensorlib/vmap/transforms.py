"""``vjp``, ``jacrev`` and ``hessian`` (reverse mode, batched over the output's basis with
vmap), and ``stack_module_state`` for model ensembles, as in ``torch.func``."""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from .._tensor import Tensor
from ..autograd.engine import grad as _tl_grad
from ..autograd.mode import enable_grad
from ..func import _argnums, _positions, _with_args
from .api import _flatten, vmap


def check_like(fn: str, kind: str, given: list, whose: str, each: str, like: list) -> None:
    """``given`` (flattened tangents or cotangents) match ``like`` in number and shapes."""
    if len(given) != len(like):
        raise RuntimeError(f"{fn}: expected {kind}s of {whose} structure ({len(like)} "
                           f"tensors), got {len(given)}")
    for r, x in zip(like, given):
        if not isinstance(x, Tensor) or tuple(x.shape) != tuple(r.shape):
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise RuntimeError(f"{fn}: a {kind} of shape {got} for {each} of shape "
                               f"{tuple(r.shape)}; they must match")


def vjp(func: Callable, *primals, has_aux: bool = False):
    """``(func(*primals), vjp_fn)``: ``vjp_fn(cotangents)`` (cotangents shaped as the
    output) gives the vector-Jacobian products, a tuple with one entry per primal (each
    shaped as that primal: a tensor, or a tuple/list/dict of them), as
    ``torch.func.vjp``. With ``has_aux``, ``func`` returns ``(output, aux)`` and this
    ``(output, vjp_fn, aux)``. ``vjp_fn`` may be called many times, and under ``tl.vmap``
    (that is how :func:`jacrev` works).

    >>> out, vjp_fn = tl.func.vjp(tl.sin, x)
    >>> (gx,) = vjp_fn(tl.ones_like(out))          # cos(x)
    """
    from ..func import _reaches_outer, _retire
    if not primals:
        raise RuntimeError("vjp(f, *primals): expected at least one primal")
    leaves, rebuild = _flatten(primals)
    ins, private = [], set()
    for leaf in leaves:
        if not isinstance(leaf, Tensor):
            raise RuntimeError(f"vjp(f, *primals): Expected primals to be tensors (or tuples, "
                               f"lists, dicts of them), got a {type(leaf).__name__}")
        if leaf.dtype.kind not in "fc":
            raise RuntimeError(f"vjp(f, *primals): only floating-point tensors can be "
                               f"differentiated, got a {leaf.dtype} one")
        x = leaf.view(leaf.shape) if leaf.requires_grad else leaf.detach().requires_grad_(True)
        if not leaf.requires_grad:
            private.add(id(x))
        ins.append(x)
    with enable_grad():
        out = func(*rebuild(ins))
    aux = None
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise RuntimeError("vjp(f, *primals): output of function f should be a tuple: "
                               "(output, aux) if has_aux is True")
        out, aux = out
    outs, out_rebuild = _flatten(out)
    for o in outs:
        if not isinstance(o, Tensor):
            raise RuntimeError("vjp(f, *primals): Expected f to be a function that has only "
                               f"Tensors (or tuples, lists, dicts of them) as outputs, got a "
                               f"{type(o).__name__}")
    outer = _reaches_outer(outs, private)

    def vjp_fn(cotangents, *, retain_graph: bool = True, create_graph: bool | None = None):
        from ..creation import zeros_like
        cts, _ = _flatten(cotangents)
        check_like("vjp_fn", "cotangent", cts, "the output's", "an output", outs)
        cg = create_graph if create_graph is not None else (
            outer or any(c.requires_grad for c in cts))
        pairs = [(o, c) for o, c in zip(outs, cts) if o.requires_grad]
        with enable_grad():
            gs = (_tl_grad([o for o, _ in pairs], ins, grad_outputs=[c for _, c in pairs],
                           retain_graph=retain_graph, create_graph=cg, allow_unused=True)
                  if pairs else [None] * len(ins))
        gs = [zeros_like(x) if g is None else g for x, g in zip(ins, gs)]
        if not cg:
            gs = [g.detach() for g in gs]
        return rebuild(gs)

    _retire(x for x in ins if id(x) in private)
    if not outer:
        out = out_rebuild([o.detach() for o in outs])
        if has_aux:
            aux_leaves, aux_rebuild = _flatten(aux)
            aux = aux_rebuild([a.detach() if isinstance(a, Tensor) else a for a in aux_leaves])
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None) -> Callable:
    """``func`` transformed to return its Jacobian with respect to positional argument(s)
    ``argnums``, by reverse mode: one ``vjp`` with the rows of the identity as cotangents,
    batched by vmap (``chunk_size`` rows at a time). As ``torch.func.jacrev``: for an output
    of shape ``O`` and an input of shape ``I`` the Jacobian has shape ``O + I``; outputs and
    inputs that are tuples/lists/dicts give the same nesting (outputs outside, a tuple over
    ``argnums`` inside when it is a tuple).

    >>> tl.func.jacrev(tl.sin)(x)                  # diag(cos(x))
    """
    nums = _argnums(argnums)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        idx = _positions(argnums, nums, len(args))
        res = vjp(_with_args(func, args, kwargs, idx), *[args[i] for i in idx],
                  has_aux=has_aux)
        out, vjp_fn = res[0], res[1]
        outs, out_rebuild = _flatten(out)
        sizes = [o.size for o in outs]
        total = sum(sizes)
        basis, start = [], 0
        for o, k in zip(outs, sizes):
            rows = np.eye(total, k, -start, dtype=o.dtype).reshape((total,) + tuple(o.shape))
            from ..creation import tensor
            basis.append(tensor(rows, device=o.device))
            start += k
        grads = vmap(vjp_fn, chunk_size=chunk_size)(out_rebuild(basis))   # per primal
        prim_leaves, prim_rebuild = _flatten(grads)
        per_out, start = [], 0
        for o, k in zip(outs, sizes):
            pieces = [g.narrow(0, start, k).reshape(tuple(o.shape) + tuple(g.shape[1:]))
                      for g in prim_leaves]
            jac = prim_rebuild(pieces)
            per_out.append(jac[0] if isinstance(argnums, int) else jac)
            start += k
        result = out_rebuild(per_out)
        return (result, res[2]) if has_aux else result
    return wrapper


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """The Hessian of ``func`` (a scalar function) with respect to ``argnums``: the Jacobian
    of its gradient, ``jacrev(jacrev(func))``, as ``torch.func.hessian`` (which takes
    forward mode for the outer Jacobian; the values are the same). For an input of shape
    ``I`` it has shape ``I + I``.

    >>> tl.func.hessian(lambda x: (x ** 3).sum())(x)     # diag(6 x)
    """
    return jacrev(jacrev(func, argnums), argnums)


def stack_module_state(models: Sequence) -> tuple[dict, dict]:
    """``(params, buffers)``: each parameter and buffer of the ``models`` (of one class, in
    one train/eval mode) stacked along a new dim 0, for ``tl.vmap`` over
    ``tl.func.functional_call`` (a model ensemble run in one batched call), as
    ``torch.func.stack_module_state``. The stacked parameters are new leaves (they require
    grad when the models' do).

    >>> params, buffers = tl.func.stack_module_state(models)
    >>> def run(p, b, x):
    ...     return tl.func.functional_call(models[0], (p, b), (x,))
    >>> out = tl.vmap(run, in_dims=(0, 0, None))(params, buffers, x)     # (E, N, ...)
    """
    from ..ops.shape import stack
    models = list(models)
    if len(models) == 0:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same "
                           "training/eval mode.")
    if not all(type(m) is type(models[0]) for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")

    def stacked(ts, name):
        rg = [t.requires_grad for t in ts]
        if any(rg) and not all(rg):
            raise RuntimeError(f"Expected {name} from each model to have the same "
                               ".requires_grad")
        out = stack([t.detach() for t in ts])
        return out.requires_grad_(True) if all(rg) else out

    all_p = [dict(m.named_parameters()) for m in models]
    all_b = [dict(m.named_buffers()) for m in models]
    params = {k: stacked([p[k] for p in all_p], k) for k in all_p[0]}
    buffers = {k: stacked([b[k] for b in all_b], k) for k in all_b[0]}
    return params, buffers
