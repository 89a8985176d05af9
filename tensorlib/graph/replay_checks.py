"""What, besides the arguments' shapes and the guarded Python state, decides whether a
``tl.function`` call may replay a traced graph, and the state a replay must redo.

- **Grad mode**: code may branch on ``tl.is_grad_enabled()``, and ``backward()`` raises
  under ``tl.no_grad()``: a call in another grad mode than the trace's takes its own graph
  (PyTorch's ``torch.compile`` guards on it too). See :func:`with_grad_mode`.
- **Overlapping arguments**: a graph reads each input as a separate buffer, so a step traced
  with separate tensors gives other values when an in-place write through one argument
  should show through another (``f(t[:4], t[2:])``). Arguments that view overlapping memory
  are part of the call's key. See :func:`arg_overlaps`.
- **Reseeding inside the step**: ``tl.manual_seed`` / ``Generator.manual_seed`` (and
  ``Generator.seed``) called while tracing are recorded in the graph: the first draw from
  that generator after it reseeds first (its ``random`` node's ``reseed`` attribute, read by
  :func:`tensorlib.graph.runtime._random`), so replays draw what eager draws. A reseed no
  draw follows is redone after the replay (``graph.reseed_tail``).
"""
from __future__ import annotations

import numpy as np

from ..autograd.mode import state

_NO_GRAD = "no_grad"
_OVERLAP = "overlap"


# --- grad mode ------------------------------------------------------------------------------
def with_grad_mode(key):
    """``key`` marked when grad mode is off (keys of grad-enabled calls are unchanged)."""
    return key if state.grad_enabled else (key, _NO_GRAD)


# --- overlapping arguments ------------------------------------------------------------------
def _overlap(a, b) -> bool:
    """Whether two views of one buffer share an element (bounds only where the exact answer
    is too costly: a spurious overlap costs a trace, a missed one a wrong result)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        try:
            return bool(np.shares_memory(a, b, max_work=10_000))
        except Exception:   # noqa: BLE001 - TooHardError: assume the worst
            return True
    try:
        from ..backends import cupy
        return bool(cupy().may_share_memory(a, b))
    except Exception:       # noqa: BLE001 - an array type we cannot ask: assume the worst
        return True


def arg_overlaps(tensors) -> tuple:
    """The pairs ``(i, j)`` of tensor arguments that are distinct views of overlapping memory
    (the same array twice is the key's aliasing already). Only arguments that share a root
    buffer are compared, so calls with unrelated tensors pay one ``.base`` walk each."""
    if len(tensors) < 2:
        return ()
    from ..backends import root_buffer
    groups: dict[int, list] = {}
    for k, t in enumerate(tensors):
        a = t._data
        if getattr(a, "base", None) is None and id(a) not in groups:
            groups[id(a)] = [(k, a)]    # owns its memory: a view of it would come later
            continue
        groups.setdefault(id(root_buffer(a)), []).append((k, a))
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        for x, (i, a) in enumerate(members):
            for j, b in members[x + 1:]:
                if a is not b and _overlap(a, b):
                    out.append((i, j))
    return tuple(sorted(out))


def with_overlaps(key, tensors):
    """``key`` with the overlapping argument pairs added, when there are any."""
    ov = arg_overlaps(tensors)
    return key if not ov else (*key, (_OVERLAP, ov))


def mode_reason(key, old_keys) -> str | None:
    """Why ``key`` misses, in words, when an old key differs from it in grad mode or in its
    arguments' overlap alone; otherwise None."""
    def strip(k):
        ng = isinstance(k, tuple) and len(k) == 2 and k[1] == _NO_GRAD
        k = k[0] if ng else k
        ov = ()
        if isinstance(k, tuple) and k and isinstance(k[-1], tuple) and len(k[-1]) == 2 \
                and k[-1][0] == _OVERLAP:
            k, ov = k[:-1], k[-1][1]
        return k, ng, ov
    base, ng, ov = strip(key)
    for old in old_keys:
        b, ng0, ov0 = strip(old)
        if b != base:
            continue
        if ng != ng0:
            return (f"grad mode changed: the graph was traced with gradients "
                    f"{'enabled' if ng else 'disabled'}, this call runs with them "
                    f"{'disabled' if ng else 'enabled'} (tl.no_grad / set_grad_enabled)")
        if ov != ov0:
            return (f"the tensor arguments overlap in memory differently (overlapping "
                    f"argument pairs {list(ov0)} then, {list(ov)} now): in-place writes "
                    "through one would show through the other")
    return None


# --- reseeding inside a traced step ---------------------------------------------------------
def note_reseed(generator, seed) -> None:
    """``generator`` was reseeded (``seed``: the int, or None for fresh entropy) during a
    trace: remember where in the graph, for :func:`finish_reseeds`."""
    tracer = state.tracer
    if tracer is None:
        return
    marks = tracer.__dict__.setdefault("reseeds", [])
    marks.append((generator, seed, tracer.g._next_node))


def finish_reseeds(tracer, g) -> None:
    """Put the reseeds noted while tracing into ``g``: each onto the first draw from its
    generator that follows it, the rest into ``g.reseed_tail`` (redone after a replay)."""
    marks = tracer.__dict__.pop("reseeds", None)
    if not marks:
        return
    from ..random import default_generator
    draws = [(n.id, n) for n in g.nodes if n.op == "random"]
    tail = {}
    for gen, seed, mark in marks:
        first = next((n for i, n in draws if i >= mark
                      and (g.bindings.get(n) or default_generator) is gen), None)
        if first is None:
            tail[id(gen)] = (gen, seed)
            continue
        # (a later reseed before the same draw overrides an earlier one, as in eager)
        if "reseed" not in first.attrs or first.attrs.get("_reseed_mark", -1) <= mark:
            first.attrs["reseed"] = seed
            first.attrs["_reseed_mark"] = mark
    for n in g.nodes:
        if n.op == "random":
            n.attrs.pop("_reseed_mark", None)
    if tail:
        g.reseed_tail = list(tail.values())


def reseed(generator, seed) -> None:
    """Reseed ``generator`` (None: the global one) as a recorded ``manual_seed`` did."""
    from ..random import default_generator
    gen = generator or default_generator
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)


def replay_tail(g) -> None:
    """After a replay: the reseeds the traced call made after its last draw."""
    for gen, seed in getattr(g, "reseed_tail", ()):
        reseed(gen, seed)


def _key_overlaps(key) -> tuple:
    """The overlapping argument pairs a call key holds (under its grad-mode and autocast
    wrappers), or ()."""
    while isinstance(key, tuple) and len(key) in (2, 3) and key[1] in (_NO_GRAD, "autocast"):
        key = key[0]
    if isinstance(key, tuple) and key and isinstance(key[-1], tuple) and len(key[-1]) == 2 \
            and key[-1][0] == _OVERLAP:
        return key[-1][1]
    return ()


def overlap_writes(key, cache) -> tuple:
    """The overlapping argument pairs of a call that fits no graph, when a graph already
    traced for the function writes in place into one of those arguments: tracing such a call
    would fail (the tracer cannot follow a write through one view into another), so it runs
    eagerly. () otherwise (read-only overlap traces and replays as usual)."""
    ov = _key_overlaps(key)
    if not ov:
        return ()
    idx = {i for pair in ov for i in pair}
    for entries in list(cache.values()):
        for e in entries:
            if any(n.op == "assign" and n.attrs.get("slot") == "input"
                   and n.attrs.get("input") in idx for n in e.graph.nodes):
                return ov
    return ()


def eager_for_overlap(fn, pairs, args, kwargs):
    """Run ``fn``'s Python for a call whose overlapping arguments it writes (warned once)."""
    import warnings
    if not getattr(fn, "_warned_overlap", False):
        fn._warned_overlap = True
        warnings.warn(
            f"tl.function {fn._name}: tensor arguments {list(pairs)} are views of overlapping "
            "memory and the function writes into its arguments in place; a graph reads each "
            "argument as its own buffer, so such calls run eagerly. Pass separate tensors "
            "(or .clone() one) to replay the graph.", UserWarning, stacklevel=3)
    return fn.fn(*args, **kwargs)
