"""``tl.vmap``: a function of one example run on a batch, as ``torch.func.vmap``."""
from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

from .._device import vmap_device
from .._tensor import Tensor
from ..autograd.mode import state
from . import levels
from .batched import BatchedArray

_LEVELS = itertools.count(1)     # unique per call: see batched.py on the order of levels
_RANDOMNESS = ("error", "different", "same")


def vmap(func: Callable, in_dims: int | tuple = 0, out_dims: int | tuple = 0,
         randomness: str = "error", *, chunk_size: int | None = None) -> Callable:
    """``func`` (written for one example) mapped over a batch dim of its inputs, as
    ``torch.func.vmap``: the ops run batched (one kernel call for the whole batch, not one
    per example), and gradients flow through it both ways.

    - ``in_dims``: the batch dim of each positional argument: an int (all of them), or a
      tuple with one entry per argument, each an int, None (not batched: the same for every
      example; non-tensor arguments need None) or a nested tuple/list/dict matching a
      tuple/list/dict argument. Negative dims count from the end.
    - ``out_dims``: where the batch dim goes in each output (an int or a matching
      structure; None for an output that is the same for every example).
    - ``randomness``: ``"error"`` (a draw from the global generator inside raises),
      ``"same"`` (one draw shared by the examples) or ``"different"`` (independent draws:
      the function then runs once per example, the results stacked).
    - ``chunk_size``: map that many examples at a time (less memory), the results joined.

    Reading values inside (``.item()``, ``bool(t)``, ``.numpy()``) raises: the values differ
    per example. Keyword arguments are passed through unbatched. Inside ``tl.function`` the
    captured graph holds the batched ops once, whatever the batch size (one copy of
    ``func`` per example where that cannot be recorded: in-place writes, randomness other
    than "error").

    >>> x = tl.randn(8, 3)
    >>> tl.vmap(lambda v: (v * v).sum())(x)                   # shape (8,)
    >>> per_sample = tl.vmap(tl.func.grad(loss), in_dims=(None, 0, 0))(params, xb, yb)
    """
    if randomness not in _RANDOMNESS:
        raise RuntimeError("Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got "
                         f"{chunk_size})")

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        return _call(func, in_dims, out_dims, randomness, chunk_size, args, kwargs)
    return wrapped


def _name(func) -> str:
    if hasattr(func, "__name__"):
        return func.__name__
    if isinstance(func, functools.partial):
        return f"functools.partial({_name(func.func)}, ...)"
    return repr(func)


# --- pytrees: tuples, lists and dicts ----------------------------------------------------------
def _flatten(tree) -> tuple[list, Callable]:
    from ..func import _flatten as flatten
    return flatten(tree)


def _spread(dims, tree):
    """``dims`` (a prefix of ``tree``'s structure: an int or None stands for a whole
    subtree) as one entry per leaf of ``tree``; None when the structures do not match."""
    if dims is None or isinstance(dims, int):
        return [dims] * len(_flatten(tree)[0])
    if isinstance(dims, (tuple, list)) and type(dims) is type(tree) or (
            isinstance(dims, tuple) and isinstance(tree, tuple)):
        if len(dims) != len(tree):
            return None
        out = []
        for d, t in zip(dims, tree):
            s = _spread(d, t)
            if s is None:
                return None
            out += s
        return out
    if isinstance(dims, dict) and isinstance(tree, dict):
        if set(dims) != set(tree):
            return None
        out = []
        for k in tree:      # the order _flatten gives the leaves
            s = _spread(dims[k], tree[k])
            if s is None:
                return None
            out += s
        return out
    return [dims] if not isinstance(tree, (tuple, list, dict)) else None


def _is_dims(d) -> bool:
    if d is None or (isinstance(d, int) and not isinstance(d, bool)):
        return True
    if isinstance(d, (tuple, list)):
        return all(_is_dims(x) for x in d)
    if isinstance(d, dict):
        return all(_is_dims(x) for x in d.values())
    return False


# --- the call ---------------------------------------------------------------------------------
def _inputs(func, in_dims, args):
    """(batch size, one in_dim per leaf, the leaves, rebuild), checked as PyTorch does."""
    name = _name(func)
    if not isinstance(in_dims, (int, tuple)) or isinstance(in_dims, bool):
        raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): expected `in_dims` "
                         "to be int or a (potentially nested) tuple matching the structure of "
                         f"inputs, got: {type(in_dims)}.")
    if not args:
        raise ValueError(f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add "
                         "inputs, or you are trying to vmap over a function with no inputs. "
                         "The latter is unsupported.")
    leaves, rebuild = _flatten(args)
    dims = _spread(in_dims, args)
    if dims is None:
        raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims is not "
                         "compatible with the structure of `inputs`. in_dims has structure "
                         f"{_structure(in_dims)} but inputs has structure {_structure(args)}.")
    sizes = []
    for i, (a, d) in enumerate(zip(leaves, dims)):
        if d is not None and (not isinstance(d, int) or isinstance(d, bool)):
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} "
                             "for an input but in_dim must be either an integer dimension or "
                             "None.")
        if d is None:
            continue
        if not isinstance(a, Tensor):
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} "
                             f"for an input but the input is of type {type(a)}. We cannot "
                             "vmap over non-Tensor arguments, please use None as the "
                             "respective in_dim")
        n = a.ndim
        if not -n <= d < n:
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} "
                             f"for some input, but that input is a Tensor of dimensionality {n} "
                             f"so expected in_dim to satisfy -{n} <= in_dim < {n}.")
        dims[i] = d % n
        sizes.append(a.shape[d])
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if any(s != sizes[0] for s in sizes):
        raise ValueError("vmap: Expected all tensors to have the same size in the mapped "
                         f"dimension, got sizes {sizes} for the mapped dimension")
    return sizes[0], dims, leaves, rebuild


def _structure(tree) -> str:
    if isinstance(tree, tuple):
        return "(" + ", ".join(_structure(t) for t in tree) + ("," if len(tree) == 1 else "") \
            + ")"
    if isinstance(tree, list):
        return "[" + ", ".join(_structure(t) for t in tree) + "]"
    if isinstance(tree, dict):
        return "{" + ", ".join(f"{k!r}: {_structure(v)}" for k, v in tree.items()) + "}"
    return "*"


def _call(func, in_dims, out_dims, randomness, chunk_size, args, kwargs):
    if not _is_dims(out_dims):
        raise ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims}): `out_dims` must be "
                         "an int, None or a python collection of ints representing where in "
                         "the outputs the vmapped dimension should appear.")
    B, dims, leaves, rebuild = _inputs(func, in_dims, args)
    if state.tracer is not None:
        return _captured(func, B, dims, leaves, rebuild, out_dims, randomness, kwargs)
    if randomness == "different":
        return _per_example(func, B, dims, leaves, rebuild, out_dims, kwargs)
    if chunk_size is not None and chunk_size < B:
        return _chunked(func, B, dims, leaves, rebuild, out_dims, randomness, chunk_size,
                        kwargs)
    return _batched(func, B, dims, leaves, rebuild, out_dims, randomness, kwargs)


def _rng_state():
    from ..random import default_generator
    return default_generator._state_dict()


def _batched(func, B, dims, leaves, rebuild, out_dims, randomness, kwargs):
    tensors = [a for a in leaves if isinstance(a, Tensor)]
    d0 = tensors[0]._device
    dev = vmap_device(next(_LEVELS), d0.base if d0.type == "vmap" else d0)
    ins = []
    for a, d in zip(leaves, dims):
        if d is not None:
            ins.append(levels.wrap(a, d, dev, B))
        elif isinstance(a, Tensor):
            ins.append(levels.lift(a, dev))
        else:
            ins.append(a)
    before = _rng_state() if randomness == "error" else None
    levels.ACTIVE.add(dev.index)
    try:
        out = func(*rebuild(ins), **kwargs)
    finally:
        levels.ACTIVE.discard(dev.index)
    if before is not None and _rng_state() != before:
        raise RuntimeError("vmap: called random operation while in randomness error mode. "
                           "Please either use the 'same' or 'different' randomness flags on "
                           "vmap or perform the randomness operation out of vmap")
    return _outputs(func, out, out_dims, lambda o, d: _unwrap(func, o, d, dev, B))


def _unwrap(func, o, d, dev, B):
    name = _name(func)
    if d is None:
        if isinstance(o, Tensor) and o._device is dev:
            if o._data.bdim is not None:
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor "
                                 "when out_dim is None")
            p = o._data.phys     # the same for every example: the value under the level
            return levels.unlift(o, p.dev.index if type(p) is BatchedArray else 0, dev)
        return o
    if not isinstance(o, Tensor):
        raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                         f"{type(o)}. Did you mean to set out_dims= to None for output?")
    n = o.ndim + 1
    if not -n <= d < n:
        raise ValueError(f"vmap({name}, ..., out_dims={d}): out_dim {d} is out of range for an "
                         f"output of {n - 1} dims (with the batch dim: -{n} <= out_dim < {n})")
    return levels.unwrap(o, d % n, dev, B)


def _outputs(func, out, out_dims, each):
    """Apply ``each(output, out_dim)`` over the outputs' structure."""
    leaves, rebuild = _flatten(out)
    if isinstance(out, Tensor):
        if isinstance(out_dims, tuple) and len(out_dims) == 1:
            out_dims = out_dims[0]
        dims = [out_dims] if out_dims is None or isinstance(out_dims, int) else None
    else:
        dims = _spread(out_dims, out)
    if dims is None:
        raise ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims})(<inputs>): out_dims is "
                         "not compatible with the structure of `outputs`. out_dims has "
                         f"structure {_structure(out_dims)} but outputs has structure "
                         f"{_structure(out)}.")
    return rebuild([each(o, d) for o, d in zip(leaves, dims)])


def _select(leaves, dims, pick):
    return [pick(a, d) if d is not None else a for a, d in zip(leaves, dims)]


def _join(func, results: list, out_dims, joiner):
    """Outputs of several calls (chunks or examples) joined along each output's out_dim."""
    flat = [_flatten(r)[0] for r in results]
    _, rebuild = _flatten(results[0])
    first = results[0]
    if isinstance(first, Tensor):
        od = out_dims[0] if isinstance(out_dims, tuple) and len(out_dims) == 1 else out_dims
        dims = [od]
    else:
        dims = _spread(out_dims, first)
    if dims is None:
        raise ValueError(f"vmap({_name(func)}, ..., out_dims={out_dims})(<inputs>): out_dims is "
                         "not compatible with the structure of `outputs`.")
    joined = []
    for k, d in enumerate(dims):
        parts = [f[k] for f in flat]
        if d is None:
            joined.append(parts[0])
            continue
        if not isinstance(parts[0], Tensor):
            raise ValueError(f"vmap({_name(func)}, ...): `{_name(func)}` must only return "
                             f"Tensors, got type {type(parts[0])}. Did you mean to set "
                             "out_dims= to None for output?")
        joined.append(joiner(parts, d))
    return rebuild(joined)


def _chunked(func, B, dims, leaves, rebuild, out_dims, randomness, chunk_size, kwargs):
    from ..ops.shape import concatenate
    starts = range(0, B, chunk_size)
    same = _rng_state() if randomness == "same" else None
    results = []
    for s in starts:
        n = min(chunk_size, B - s)
        part = _select(leaves, dims, lambda a, d: a.narrow(d, s, n))
        if same is not None:
            from ..random import default_generator
            default_generator.set_state(same)
        results.append(_batched(func, n, dims, part, rebuild, out_dims, randomness, kwargs))

    def cat(parts, d):
        nd = parts[0].ndim
        return concatenate(parts, axis=d % nd)
    return _join(func, results, out_dims, cat)


def _captured(func, B, dims, leaves, rebuild, out_dims, randomness, kwargs):
    """Under graph capture (tl.function, tl.capture): the graph records the batched ops
    (:mod:`.capture`), once for the whole batch. Where a rule does what that cannot record
    (in-place writes into batched values), and for randomness other than "error", the graph
    holds one copy of ``func`` per example instead (same values; a larger graph)."""
    from . import capture
    tracer = state.tracer
    if B == 0:
        raise ValueError("vmap: a batch of size 0 is not supported under graph capture")
    if randomness == "error":
        saved = tracer
        capture.install()
        try:
            return _batched(func, B, dims, leaves, rebuild, out_dims, randomness, kwargs)
        except capture.Untraceable:
            state.tracer = saved
    n_random = sum(nd.op == "random" for nd in tracer.g.nodes)
    before = _rng_state() if randomness == "error" else None
    out = _per_example(func, B, dims, leaves, rebuild, out_dims, kwargs)
    if before is not None and _rng_state() != before:
        raise RuntimeError("vmap: called random operation while in randomness error mode. "
                           "Please either use the 'same' or 'different' randomness flags on "
                           "vmap or perform the randomness operation out of vmap")
    if randomness == "same" and sum(nd.op == "random" for nd in tracer.g.nodes) > n_random:
        raise RuntimeError("vmap: randomness='same' is not supported under graph capture "
                           "(the captured graph draws for each example); use "
                           "randomness='different', or draw outside the vmapped function")
    return out


def _per_example(func, B, dims, leaves, rebuild, out_dims, kwargs):
    """One call per example, the results stacked (randomness="different": each example's
    own draws; and under graph capture)."""
    from ..ops.shape import stack
    results = [func(*rebuild(_select(leaves, dims, lambda a, d: a.select(d, i))), **kwargs)
               for i in range(B)]

    def stacked(parts, d):
        n = parts[0].ndim + 1
        return stack(parts, axis=d % n)
    if B == 0:
        raise ValueError("vmap: randomness='different' over a batch of size 0 is not "
                         "supported")
    return _join(func, results, out_dims, stacked)
