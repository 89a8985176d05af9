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
  ``Generator.seed``) called while tracing (by ``tl.function`` or in a ``tl.capture``
  block) are recorded in the graph: the first draw from that generator after it reseeds
  first (its ``random`` node's ``reseed`` attribute, read by
  :func:`tensorlib.graph.runtime._random`), so replays draw what eager draws. So are
  ``tl.set_rng_state`` / ``Generator.set_state`` (``rng_ops``): a state this call's own
  ``get_rng_state`` / ``get_state`` gave is saved and restored by each replay at the same
  points (round trips, ``fork_rng``), a fixed state from outside is set as traced, and a
  state passed as an argument or computed raises CaptureError. Actions no draw follows are
  redone after the replay (``graph.reseed_tail``).
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
# a generator state a replay saved (its get_state / get_rng_state / the library's own
# snapshot), by "<graph token>:<k>", for the restore that follows it in the same replay
_SAVED: dict = {}


def _marks(tracer) -> list:
    return tracer.__dict__.setdefault("reseeds", [])


def note_reseed(generator, seed) -> None:
    """``generator`` was reseeded (``seed``: the int, or None for fresh entropy) during a
    trace: remember where in the graph, for :func:`finish_reseeds`."""
    tracer = state.tracer
    if tracer is None:
        return
    _marks(tracer).append((generator, ("seed", seed), tracer.g._next_node))


def _state_key(obj):
    return id(obj._data) if hasattr(obj, "_data") else id(obj)


def note_rng_save(generator, obj) -> None:
    """``generator``'s state was read during a trace into ``obj`` (get_state's uint8 tensor,
    or the library's state dict): a replay saves the state it has there, for a
    ``set_state(obj)`` later in the same call (:func:`note_rng_set`)."""
    tracer = state.tracer
    if tracer is None:
        return
    saves = tracer.__dict__.setdefault("rng_saves", {})
    k = len(saves)
    # (obj kept alive: its id names it until the trace ends)
    saves[_state_key(obj)] = (k, generator, obj, hasattr(obj, "_data"))
    _marks(tracer).append((generator, ("save", k), tracer.g._next_node))


def note_rng_set(generator, st, who: str) -> None:
    """``generator.set_state(st)`` / ``tl.set_rng_state(st)`` ran during a trace: a replay
    restores what that call's own ``get_state`` saved (``st`` came from one in the traced
    code), or the fixed state ``st`` holds (a tensor or dict from outside, which the graph
    keeps as a constant); a state each call passes anew (an argument) or computes is
    refused, naming ``who``."""
    tracer = state.tracer
    if tracer is None:
        return
    from .tracer import CaptureError
    hit = tracer.__dict__.get("rng_saves", {}).get(_state_key(st))
    if hit is not None:
        k, gen0, _obj, with_seed = hit
        if gen0 is not generator:
            raise CaptureError(
                f"{who}: inside a captured function, a state another generator's get_state "
                "gave in the same call cannot be replayed (the graph restores a generator "
                "from its own saved state); take the state from this generator, or call "
                f"{who} outside the function")
        op = ("restore", k, with_seed)
    elif isinstance(st, dict):
        op = ("dict", {k: (dict(v) if isinstance(v, dict) else v) for k, v in st.items()})
    else:
        v = tracer.lookup(st)
        op = None if v is None or v.node is None else v.node.op
        if op in (None, "variable") and not st._rg and id(st) not in tracer._arg_index:
            # a tensor from outside (a checkpoint in a global): its bytes as traced, an
            # in-place change to it retracing as for a constant
            kind = "constant"
            tracer.constants.append((st, st._version, st._version[0]))
        else:
            kind = "constant" if op == "constant" else \
                "computed" if op != "placeholder" else "argument"
        if kind != "constant":
            what = ("computed in the function" if kind == "computed"
                    else "an argument or state read anew by each call")
            raise CaptureError(
                f"{who}: inside a captured function the state must be one this call's "
                "get_rng_state / get_state gave, or a fixed tensor from outside; this one is "
                f"{what}, whose bytes a replay cannot read on the host. Call it outside the "
                "function, or take the state inside it")
        from ..random import Generator
        tmp = Generator(0)
        tmp._set_state_bytes(st)
        op = ("state", tmp._state_bytes().hex())
    _marks(tracer).append((generator, op, tracer.g._next_node))


def finish_reseeds(tracer, g) -> None:
    """Put the generator actions noted while tracing (reseeds, state saves and restores)
    into ``g``: each onto the first draw from its generator that follows it (a
    ``reseed`` attribute when they are seeds only, else ``rng_ops``), the rest into
    ``g.reseed_tail`` (redone after a replay)."""
    marks = tracer.__dict__.pop("reseeds", None)
    tracer.__dict__.pop("rng_saves", None)
    if not marks:
        return
    from ..random import default_generator
    import uuid
    token = uuid.uuid4().hex[:12]

    def data(op):
        if op[0] in ("save", "restore"):
            return (op[0], f"{token}:{op[1]}", *op[2:])
        return op
    draws = [(n.id, n) for n in g.nodes if n.op == "random"]
    on: dict = {}
    tail: dict = {}
    for gen, op, mark in marks:     # (in the order the code ran them)
        first = next((n for i, n in draws if i >= mark
                      and (g.bindings.get(n) or default_generator) is gen), None)
        if first is None:
            tail.setdefault(id(gen), (gen, []))[1].append(data(op))
        else:
            on.setdefault(first.id, (first, []))[1].append(data(op))
    for n, ops in on.values():
        if all(op[0] == "seed" for op in ops):
            n.attrs["reseed"] = ops[-1][1]      # (a later reseed overrides, as in eager)
        else:
            n.attrs["rng_ops"] = tuple(ops)
    if tail:
        g.reseed_tail = [(gen, tuple(ops)) for gen, ops in tail.values()]


def reseed(generator, seed) -> None:
    """Reseed ``generator`` (None: the global one) as a recorded ``manual_seed`` did."""
    from ..random import default_generator
    gen = generator or default_generator
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)


def rng_ops(generator, ops) -> None:
    """Redo the generator actions a traced call made (see :func:`finish_reseeds`)."""
    from ..random import default_generator
    gen = generator or default_generator
    for op in ops:
        kind = op[0]
        if kind == "seed":
            reseed(gen, op[1])
        elif kind == "save":
            _SAVED[op[1]] = (gen._state_dict(), gen._seed)
        elif kind == "restore":
            got = _SAVED.get(op[1])
            if got is None:
                raise RuntimeError("graph replay: a generator state restore found no state "
                                   "saved before it in this run")
            gen.set_state(got[0])
            if op[2]:               # (a get_state tensor carries the initial seed too)
                gen._seed = got[1]
        elif kind == "state":
            gen._set_state_bytes(bytes.fromhex(op[1]))
        elif kind == "dict":
            gen.set_state({k: (dict(v) if isinstance(v, dict) else v)
                           for k, v in op[1].items()})
        else:
            raise ValueError(f"graph replay: unknown generator action {kind!r}")


def replay_tail(g) -> None:
    """After a replay: the generator actions the traced call made after its last draw."""
    for gen, ops in getattr(g, "reseed_tail", ()):
        rng_ops(gen, ops)


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
