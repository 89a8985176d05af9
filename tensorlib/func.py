"""Function transforms, as ``torch.func``: ``functional_call`` (run a module with other
tensors in place of its parameters and buffers), ``grad`` and ``grad_and_value`` (the
gradient of a scalar function as a function), built on :func:`tl.grad`; ``vmap`` (a
function of one example run on a batch, :mod:`tensorlib.vmap`), and on top of it ``vjp``,
``jacrev``, ``hessian`` and ``stack_module_state`` (model ensembles); ``jvp``, ``jacfwd``
and ``linearize`` (forward mode, computed from reverse mode).

>>> params = {k: v.detach() for k, v in model.named_parameters()}
>>> def loss(params, x, y):
...     return F.mse_loss(tl.func.functional_call(model, params, (x,)), y)
>>> grads = tl.func.grad(loss)(params, x, y)       # a dict like params
>>> per_sample = tl.func.vmap(tl.func.grad(loss), in_dims=(None, 0, 0))(params, xb, yb)
"""
from __future__ import annotations

import functools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from ._tensor import Tensor
from .autograd.engine import grad as _tl_grad
from .autograd.mode import enable_grad
from .nn.module import Module

__all__ = ["functional_call", "grad", "grad_and_value", "vmap", "vjp", "jacrev", "hessian",
           "jvp", "jacfwd", "linearize", "stack_module_state", "replace_all_batch_norm_modules_"]

_MISSING = object()


# --- functional_call ----------------------------------------------------------------------
def functional_call(module: Module, parameter_and_buffer_dicts, args=None,
                    kwargs: dict | None = None, *, tie_weights: bool = True,
                    strict: bool = False):
    """Call ``module(*args, **kwargs)`` with the tensors of ``parameter_and_buffer_dicts``
    (a dict from dotted names such as ``"fc.weight"`` to tensors, or a list of such dicts
    with no key twice) in place of its parameters and buffers of those names; the module's
    own tensors are put back afterwards, also when the call raises. Gradients flow to the
    given tensors. As ``torch.func.functional_call``:

    - ``args`` is a tuple of positional arguments (anything else is the one argument);
    - with ``tie_weights`` a value given for one name of a tied (shared) tensor is used for
      all of its names; two different values for one tied tensor raise;
    - with ``strict`` the names must be exactly the module's parameters and buffers;
    - a name that is not a parameter or buffer sets (then restores) that attribute;
    - on a parametrized module (``tl.nn.utils.parametrize``), the name of the parametrized
      tensor (``"weight"``) gives the tensor to use as it is, the parametrization not run;
      to have it run on a value, give ``"parametrizations.weight.original"``.
    - a module that reassigns a given name during the call (rather than updating it in
      place) has the new tensor written back into the caller's dict.

    >>> out = tl.func.functional_call(model, {"fc.weight": w}, (x,))
    """
    if isinstance(parameter_and_buffer_dicts, dict):
        values = parameter_and_buffer_dicts
    elif isinstance(parameter_and_buffer_dicts, Sequence):
        if not all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
            raise ValueError("Expected all elements of parameter_and_buffer_dicts to be "
                             "dictionaries")
        seen: dict[str, int] = {}
        for d in parameter_and_buffer_dicts:
            for k in d:
                seen[k] = seen.get(k, 0) + 1
        repeated = [k for k, n in seen.items() if n > 1]
        if repeated:
            raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of "
                             "functional call is ambiguous")
        values = {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}
    else:
        raise ValueError("Expected parameter_and_buffer_dicts to be a dict, or a list/tuple "
                         f"of dicts, but got {type(parameter_and_buffer_dicts)}")
    if not isinstance(module, Module):
        raise TypeError(f"functional_call: expected an nn.Module, got {type(module).__name__}")
    if kwargs is None:
        kwargs = {}
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    untied = _untie(module, values) if tie_weights else dict(values)
    if strict:
        valid = {n for n, _ in _named_tensors(module)}
        missing, unexpected = sorted(valid - set(untied)), sorted(set(untied) - valid)
        msgs = []
        if unexpected:
            msgs.append(f"Unexpected key(s): {', '.join(map(repr, unexpected))}.")
        if missing:
            msgs.append(f"Missing key(s): {', '.join(map(repr, missing))}.")
        if msgs:
            raise RuntimeError(f"Error(s) in reparametrizing for {module._get_name()}:\n\t"
                               + "\n\t".join(msgs))
    for k, v in untied.items():
        if v is not None and not isinstance(v, Tensor):
            raise TypeError(f"functional_call: the value for {k!r} is a {type(v).__name__}, "
                            "expected a Tensor")
    originals: list[tuple[str, Any]] = []
    try:
        for name, value in untied.items():
            originals.append((name, _swap(module, name, value)))
        return module(*args, **kwargs)
    finally:
        now = {}
        for name, orig in reversed(originals):
            now[name] = _swap(module, name, orig)
        values.update({k: now[k] for k in values if k in now and now[k] is not _MISSING})


def _named_tensors(module: Module):
    yield from module.named_parameters(remove_duplicate=False)
    yield from module.named_buffers(remove_duplicate=False)


def _untie(module: Module, values: dict) -> dict:
    """``values`` with each value given for a name of a tied tensor spread to all of the
    tensor's names (PyTorch's ``_untie_named_tensors_map``)."""
    names_of: dict[int, set] = {}
    for name, t in _named_tensors(module):
        names_of.setdefault(id(t), set()).add(name)
    tied = {n: names for names in names_of.values() if len(names) > 1 for n in names}
    given_tied = [n for n in values if n in tied]
    for n in given_tied:
        group = tied[n]
        given = [m for m in group if m in values]
        if len(given) > 1 and len({id(values[m]) for m in given}) != 1:
            raise ValueError(f"functional_call got multiple values for keys {sorted(group)}, "
                             "which are tied. Consider using tie_weights=False")
    out = dict(values)
    for n in given_tied:
        for m in tied[n]:
            out[m] = values[n]
    return out


def _swap(module: Module, name: str, value):
    """Put ``value`` at dotted ``name`` (``_MISSING``: remove it); return what was there
    (``_MISSING`` when nothing was). As PyTorch's ``NamedMemberAccessor.swap_tensor``."""
    from .nn.utils import parametrize
    prefix, _, attr = name.rpartition(".")
    if not attr:
        raise KeyError('tensor name can\'t be empty string ""')
    mod = module.get_submodule(prefix)
    for store in (mod._parameters, mod._buffers):
        if attr in store:
            orig = store[attr]
            if value is _MISSING:
                del store[attr]
            else:
                store[attr] = value
            return orig
    if parametrize.is_parametrized(mod, attr):
        return parametrize._swap_override(mod, attr, value)
    orig = getattr(mod, attr, _MISSING)
    if orig is not _MISSING and orig is not None and not isinstance(orig, Tensor):
        raise TypeError(f"functional_call: attribute {name!r} of {type(mod).__name__} is a "
                        f"{type(orig).__name__}, not a Tensor")
    if value is not _MISSING:
        setattr(mod, attr, value)
    elif hasattr(mod, attr):
        delattr(mod, attr)
    return orig


def replace_all_batch_norm_modules_(root: Module) -> Module:
    """Make every BatchNorm module in ``root`` (``root`` included) stop tracking running
    statistics, in place: ``running_mean``, ``running_var`` and ``num_batches_tracked``
    become None and ``track_running_stats`` False, so the module always normalises with the
    batch's statistics and runs under :func:`vmap` (which cannot update unbatched running
    statistics per example). Returns ``root``, as ``torch.func.replace_all_batch_norm_modules_``.
    """
    from .nn.normalization import _BatchNorm
    if not isinstance(root, Module):
        raise TypeError("replace_all_batch_norm_modules_: expected an nn.Module, got "
                        f"{type(root).__name__}")
    for m in root.modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats:
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
            m.track_running_stats = False
    return root


# --- grad -------------------------------------------------------------------------------
def _flatten(tree) -> tuple[list, Callable]:
    """The tensors (and other leaves) of a pytree of tuples, lists and dicts, and a function
    rebuilding the same structure from a list of new leaves."""
    if isinstance(tree, (list, tuple)):
        parts = [_flatten(x) for x in tree]
        leaves = [leaf for p in parts for leaf in p[0]]

        def rebuild(new, parts=parts, tree=tree):
            out, i = [], 0
            for p_leaves, p_rebuild in parts:
                out.append(p_rebuild(new[i:i + len(p_leaves)]))
                i += len(p_leaves)
            if isinstance(tree, tuple):
                return type(tree)(*out) if hasattr(tree, "_fields") else tuple(out)
            return out
        return leaves, rebuild
    if isinstance(tree, dict):
        keys = list(tree)
        parts = [_flatten(tree[k]) for k in keys]
        leaves = [leaf for p in parts for leaf in p[0]]

        def rebuild(new, parts=parts, keys=keys, tree=tree):
            out, i = [], 0
            for p_leaves, p_rebuild in parts:
                out.append(p_rebuild(new[i:i + len(p_leaves)]))
                i += len(p_leaves)
            pairs = zip(keys, out)
            return OrderedDict(pairs) if isinstance(tree, OrderedDict) else dict(pairs)
        return leaves, rebuild
    return [tree], lambda new: new[0]


# the leaves transforms made to differentiate, once the transform has returned: no one can
# ask for a gradient with respect to them any more, so a graph reaching only them (a closure
# differentiated by an inner grad) is no reason for an outer transform to keep its history
_RETIRED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _retire(leaves) -> None:
    for x in leaves:
        _RETIRED[id(x)] = x


def _reaches_outer(roots: list, private: set[int]) -> bool:
    """Whether any of ``roots`` depends, through the tape, on a tensor that requires grad
    other than the ``private`` leaves (ids) and the leaves of transforms that have returned:
    then derivatives must stay differentiable."""
    stack = [t for t in roots if isinstance(t, Tensor) and t.requires_grad]
    seen: set[int] = set()
    while stack:
        t = stack.pop()
        node = t.grad_fn
        if node is None:
            if id(t) not in private and _RETIRED.get(id(t)) is not t:
                return True
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        inputs = getattr(node, "inputs", None)
        if inputs is None:
            return True        # a node we cannot look into: assume it does
        stack.extend(x for x in inputs if isinstance(x, Tensor) and x.requires_grad)
    return False


def _argnums(argnums) -> tuple[int, ...]:
    """``argnums`` (an int or a non-empty tuple of ints) as a tuple, as torch.func checks."""
    if isinstance(argnums, int) and not isinstance(argnums, bool):
        return (argnums,)
    if isinstance(argnums, tuple) and argnums and all(isinstance(a, int) for a in argnums):
        return argnums
    raise RuntimeError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")


def _positions(argnums, nums: tuple[int, ...], n: int) -> list[int]:
    """The positional indices ``nums`` name among ``n`` arguments (negative ones counted
    from the end), checked in range and unique."""
    for a in nums:
        if not -n <= a < n:
            raise RuntimeError(f"Got argnums={argnums}, but only {n} positional inputs")
    idx = [a % n for a in nums]
    if len(set(idx)) != len(idx):
        raise RuntimeError(f"argnums must be unique, got {argnums}")
    return idx


def _with_args(func: Callable, args: tuple, kwargs: dict, idx: list[int]) -> Callable:
    """``func`` of the arguments at ``idx`` alone, the others fixed to ``args``/``kwargs``."""
    def f(*diff):
        full = list(args)
        for i, v in zip(idx, diff):
            full[i] = v
        return func(*full, **kwargs)
    return f


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0,
                   has_aux: bool = False) -> Callable:
    """``func`` transformed to return ``(gradient, value)``: the gradient of its scalar
    result with respect to positional argument(s) ``argnums`` (each a tensor or a
    tuple/list/dict of tensors; the gradient has the same structure, a tuple of such for a
    tuple ``argnums``), and the result itself. With ``has_aux``, ``func`` returns
    ``(scalar, aux)`` and this returns ``(gradient, (value, aux))``. As
    ``torch.func.grad_and_value``: the arguments are not modified, an argument the result
    does not depend on gets zeros, and transforms nest (``grad(grad(f))``); results stay
    differentiable with respect to tensors outside that require grad.
    """
    nums = _argnums(argnums)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from .creation import zeros_like
        idx = _positions(argnums, nums, len(args))
        new_args = list(args)
        diff_leaves: list[list[Tensor]] = []
        rebuilds = []
        private: set[int] = set()
        for i in idx:
            leaves, rebuild = _flatten(args[i])
            ins = []
            for leaf in leaves:
                if not isinstance(leaf, Tensor):
                    raise RuntimeError(f"grad: argument {i} holds a {type(leaf).__name__}; "
                                       "the arguments differentiated must be tensors (or "
                                       "tuples, lists, dicts of them)")
                if leaf.dtype.kind not in "fc":
                    raise RuntimeError(f"grad: only floating-point tensors can be "
                                       f"differentiated, argument {i} holds a {leaf.dtype} "
                                       "one")
                x = leaf.view(leaf.shape) if leaf.requires_grad else \
                    leaf.detach().requires_grad_(True)
                if not leaf.requires_grad:
                    private.add(id(x))
                ins.append(x)
            diff_leaves.append(ins)
            rebuilds.append(rebuild)
            new_args[i] = rebuild(ins)
        with enable_grad():
            out = func(*new_args, **kwargs)
            if has_aux:
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise RuntimeError("grad_and_value(f)(*args): output of function f should "
                                       "be a tuple: (output, aux) if has_aux is True")
                out, aux = out
            if not isinstance(out, Tensor):
                raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a "
                                   f"Tensor, got {type(out).__name__}")
            if out.ndim != 0:
                raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a "
                                   f"scalar Tensor, got tensor with {out.ndim} dims. Maybe "
                                   "you wanted to use the vjp or jacrev APIs instead?")
            flat_in = [x for ins in diff_leaves for x in ins]
            outer = _reaches_outer([out], private)
            if out.requires_grad:
                gs = _tl_grad(out, flat_in, create_graph=outer, allow_unused=True)
            else:
                gs = [None] * len(flat_in)
        gs = [zeros_like(x) if g is None else g for x, g in zip(flat_in, gs)]
        _retire(x for x in flat_in if id(x) in private)
        if not outer:
            gs = [g.detach() for g in gs]
            out = out.detach()
        grads, k = [], 0
        for ins, rebuild in zip(diff_leaves, rebuilds):
            grads.append(rebuild(gs[k:k + len(ins)]))
            k += len(ins)
        result = grads[0] if isinstance(argnums, int) else tuple(grads)
        if has_aux:
            if not outer:
                aux_leaves, aux_rebuild = _flatten(aux)
                aux = aux_rebuild([a.detach() if isinstance(a, Tensor) else a
                                   for a in aux_leaves])
            return result, (out, aux)
        return result, out
    return wrapper


def grad(func: Callable, argnums: int | tuple[int, ...] = 0,
         has_aux: bool = False) -> Callable:
    """``func`` transformed to return the gradient of its scalar result with respect to
    positional argument(s) ``argnums`` (``(gradient, aux)`` with ``has_aux``), as
    ``torch.func.grad``; see :func:`grad_and_value`.

    >>> tl.func.grad(lambda x: (x ** 3).sum())(tl.tensor([1.0, 2.0]))
    tensor([ 3., 12.])
    >>> tl.func.grad(tl.func.grad(lambda x: x.sin()))(tl.tensor(0.5))   # -sin(0.5)
    """
    gv = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        if has_aux:
            return g, value[1]
        return g
    return wrapper


# the vmap family lives in tensorlib.vmap (it imports this module's pytree helpers)
from .vmap import (hessian, jacfwd, jacrev, linearize, stack_module_state, vjp,  # noqa: E402
                   vmap)
from .vmap import jvp as _float_jvp  # noqa: E402


def jvp(func: Callable, primals, tangents, *, strict: bool = False, has_aux: bool = False):
    """``(func(*primals), J tangents)``, as ``torch.func.jvp``: ``primals`` and ``tangents``
    are tuples (or lists) of the same structure. With ``has_aux`` ``func`` returns
    ``(output, aux)`` and this ``(output, jvp_out, aux)``. An integer or bool output has a
    zero tangent of its own dtype, as PyTorch's. ``strict`` is refused, as PyTorch's.

    >>> out, jv = tl.func.jvp(tl.sin, (x,), (tl.ones_like(x),))       # cos(x)
    """
    ints: dict[int, Tensor] = {}

    def floats_only(*args):
        # the double-vjp needs an output that can require grad: an integer output (constant
        # in the inputs) is replaced by a float stand-in here and put back below
        res = func(*args)
        out = res[0] if has_aux and isinstance(res, tuple) and len(res) == 2 else res
        leaves, rebuild = _flatten(out)
        ints.clear()
        new = []
        for i, o in enumerate(leaves):
            if isinstance(o, Tensor) and o.dtype.kind not in "fc":
                ints[i] = o
                o = o.detach().astype("float32")
            new.append(o)
        if not ints:
            return res
        return (rebuild(new), res[1]) if has_aux else rebuild(new)

    res = _float_jvp(floats_only, primals, tangents, strict=strict, has_aux=has_aux)
    if not ints:
        return res
    from .creation import zeros_like
    out_leaves, rebuild = _flatten(res[0])
    jv_leaves, _ = _flatten(res[1])
    for i, o in ints.items():
        out_leaves[i], jv_leaves[i] = o, zeros_like(o)
    return (rebuild(out_leaves), rebuild(jv_leaves)) + tuple(res[2:])
