"""TF1-style graph programming on tensorlib: ``import tensorlib.compat.v1 as tf``.

A teaching bridge: the seed's graph-and-session code (``placeholder``,
``Variable``, ``Session.run(fetches, feed_dict)``, ``train.*Optimizer(...)
.minimize(loss)``) runs unchanged on tensorlib. Calls such as ``tf.matmul``
build a symbolic expression; ``Session.run`` compiles the expressions its
fetches need into a captured tensorlib graph (``tl.function``, one per set of
fetches and feed shapes) and replays it on later runs, training steps and
evaluation fetches alike.

Layouts follow TF1: images are NHWC and convolution filters HWIO.

Session semantics, as in TF1:

- ``sess.run`` returns NumPy copies (a 0-d result is a NumPy scalar): editing a result
  never changes a variable.
- Each op runs once per ``run``, however often it is fetched. All train ops of a run
  compute their gradients from the same forward pass, then all of them update their
  variables; a variable fetched in that run gives the value the forward read.
- Variables live in the graph, their values in a Session: a new Session starts with every
  variable uninitialized and needs ``tf.global_variables_initializer()`` (or
  ``Saver.restore``), and two Sessions hold separate values and separate optimizer state
  (Adam's moments, Momentum's accumulators). ``Variable.tensor`` is the eager tensorlib
  tensor of the Session that last initialized, restored or loaded the variable, so a
  graph's updates are visible to eager code.
- ``seed=`` on a random op, and ``tf.set_random_seed``, give the op its own reproducible
  sequence; a new Session starts it again from the beginning. Without seeds, random ops
  draw from tensorlib's global generator (``tl.manual_seed``).
- ``tf.train.Saver`` writes a safetensors file (one tensor per variable name), not TF's
  checkpoint format.
"""
from __future__ import annotations

import builtins
import math
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

import tensorlib as _tl

from .. import _dtypes
from ..ops.nn_act import log_softmax as _log_softmax
from ..ops.nn_act import softmax as _softmax

_pybool = builtins.bool
float16, float32, float64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
int8, int16, int32, int64 = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32),
                             np.dtype(np.int64))
uint8 = np.dtype(np.uint8)

__all__ = ["Session", "InteractiveSession", "Tensor", "Operation", "Variable", "placeholder",
           "constant", "zeros", "ones", "truncated_normal", "random_normal", "random_uniform",
           "set_random_seed", "matmul", "log", "exp", "sqrt", "square", "tanh", "sigmoid",
           "reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "argmax", "equal", "cast",
           "reshape", "transpose", "add", "multiply", "subtract", "stop_gradient", "gradients",
           "assign", "assign_add", "assign_sub",
           "nn", "train", "global_variables_initializer", "initialize_all_variables",
           "variables_initializer", "local_variables_initializer", "global_variables",
           "trainable_variables", "get_default_session", "reset_default_graph", "float32",
           "float64", "int32", "int64"]

_DEFAULT_GRAPH_SEED = 87654321      # TF1's graph seed when only an op seed is given


class _Graph:
    """The default graph: the variables created so far (for the initializer), the names
    taken, the graph-level random seed."""

    def __init__(self):
        self.variables: list[Variable] = []
        self.counter = 0
        self.names: set[str] = set()
        self.seed: int | None = None

    def unique(self, name: str) -> str:
        self.counter += 1
        return f"{name}_{self.counter}"

    def variable_name(self, name: str) -> str:
        """``name``, or ``name_1``, ``name_2``... when taken (as TF1 does)."""
        out, k = name, 0
        while out in self.names:
            k += 1
            out = f"{name}_{k}"
        self.names.add(out)
        return out


_graph = _Graph()
_default_session: list = []


def reset_default_graph() -> None:
    """Forget every variable and op created so far, and the graph-level seed."""
    global _graph
    _graph = _Graph()


def set_random_seed(seed: int | None) -> None:
    """The graph-level seed: random ops created after it without an op seed draw a
    reproducible sequence each (told apart by the order the ops were created in)."""
    _graph.seed = None if seed is None else int(seed)


def _op_seeds(seed) -> tuple[int, int] | None:
    """TF1's rule: (graph seed, op seed), or None for an unseeded draw."""
    if _graph.seed is None and seed is None:
        return None
    g = _graph.seed if _graph.seed is not None else _DEFAULT_GRAPH_SEED
    op = int(seed) if seed is not None else _graph.counter
    return g % 2 ** 63, op % 2 ** 63


# --- symbolic tensors ------------------------------------------------------------------------
class Tensor:
    """A symbolic value: computed by ``Session.run`` (or ``.eval()``)."""

    __slots__ = ("fn", "inputs", "name", "shape", "dtype", "__weakref__")

    def __init__(self, fn, inputs: Sequence, name: str, shape=None, dtype=None):
        self.fn = fn
        self.inputs = list(inputs)
        self.name = name
        self.shape = None if shape is None else tuple(shape)
        self.dtype = None if dtype is None else np.dtype(dtype)

    def get_shape(self):
        return None if self.shape is None else list(self.shape)

    def eval(self, feed_dict=None, session=None):
        return (session or _get_session()).run(self, feed_dict)

    def __repr__(self) -> str:
        return f"<tf.Tensor '{self.name}' shape={self.shape} dtype={self.dtype}>"

    def __hash__(self) -> int:
        return id(self)

    def __iter__(self):
        # without this, iteration would go through __getitem__ and never stop
        raise TypeError("Tensor objects are only iterable when eager execution is enabled; "
                        f"{self.name} is a symbolic tensor")

    def __add__(self, o):
        return add(self, o)

    def __radd__(self, o):
        return add(o, self)

    def __sub__(self, o):
        return subtract(self, o)

    def __rsub__(self, o):
        return subtract(o, self)

    def __mul__(self, o):
        return multiply(self, o)

    def __rmul__(self, o):
        return multiply(o, self)

    def __truediv__(self, o):
        return _op(lambda a, b: a / b, [self, o], "truediv")

    def __rtruediv__(self, o):
        return _op(lambda a, b: a / b, [o, self], "truediv")

    def __neg__(self):
        return _op(lambda a: -a, [self], "neg", self.shape, self.dtype)

    def __matmul__(self, o):
        return matmul(self, o)

    def __getitem__(self, key):
        return _op(lambda a: a[key], [self], "strided_slice")


class Operation:
    """An op run for its effect (``train_step``, the initializer): ``sess.run(op)``.
    ``fn(env)`` does the work; ``env(t)`` gives a compat Tensor's value in the run."""

    def __init__(self, fn, inputs: Sequence, name: str, eager: bool = False):
        self.fn = fn
        self.inputs = list(inputs)
        self.name = name
        self.eager = eager

    def run(self, feed_dict=None, session=None) -> None:
        (session or _get_session()).run(self, feed_dict)

    def __repr__(self) -> str:
        return f"<tf.Operation '{self.name}'>"


def _op(fn, inputs, name, shape=None, dtype=None) -> Tensor:
    return Tensor(fn, inputs, _graph.unique(name), shape, dtype)


def _as_dtype(dtype):
    return np.dtype(_dtypes.as_dtype(dtype)) if dtype is not None else None


class _Placeholder(Tensor):
    __slots__ = ()


def placeholder(dtype, shape=None, name: str | None = None) -> Tensor:
    """A value fed at run time through ``feed_dict``; ``None`` dims take any size."""
    return _Placeholder(None, [], name or _graph.unique("Placeholder"),
                        None if shape is None else tuple(shape), _as_dtype(dtype))


class _Random(Tensor):
    """A random op: ``fn(generator, *inputs)``. ``seeds`` is None (tensorlib's global
    generator) or (graph seed, op seed): the op's own stream, one per Session. A seeded op
    of fixed shape (``static``) is drawn outside the captured graph and fed to it."""

    __slots__ = ("seeds", "static")


def _random_op(fn, inputs, name, shape, dtype, seed, static) -> _Random:
    t = _Random(fn, inputs, _graph.unique(name), shape, dtype)
    t.seeds = _op_seeds(seed)
    t.static = static
    return t


class _GradBundle(Tensor):
    """The gradients of ``tf.gradients(ys, xs, grad_ys)``, all from one backward pass
    (``_grad_bundle``): ``inputs`` is ys + xs + grad_ys; the value is a tuple, one
    gradient per x."""

    __slots__ = ("n_ys", "n_xs")


def _new_value(shape, dtype):
    t = _tl.zeros(tuple(shape), dtype=dtype)
    if np.dtype(dtype).kind == "f":
        t.requires_grad_()
    return t


class Variable(Tensor):
    """State. Its value lives in a Session, set by the initializer (or ``Saver.restore``,
    ``load``) and updated by train ops; ``tensor`` is the eager tensorlib tensor of the
    Session that last set it."""

    __slots__ = ("initial", "trainable", "_latest")

    def __init__(self, initial_value=None, trainable: bool = True, collections=None,
                 validate_shape: bool = True, caching_device=None, name: str | None = None,
                 variable_def=None, dtype=None):
        if initial_value is None:
            raise ValueError("initial_value must be specified")
        dt = _as_dtype(dtype)
        init = initial_value if isinstance(initial_value, Tensor) else constant(
            initial_value, dtype=dt)
        shape, vdt = init.shape, init.dtype
        if shape is None or vdt is None:        # an expression: evaluate it for its shape
            with _tl.no_grad():
                value = _Env()(init)
            shape, vdt = tuple(value.shape), np.dtype(value.dtype)
        super().__init__(None, [], _graph.variable_name(name or "Variable"), shape, dt or vdt)
        self.initial = init
        self.trainable = _pybool(trainable)
        self._latest = _new_value(self.shape, self.dtype)
        _graph.variables.append(self)

    @property
    def tensor(self):
        """The eager value in the Session that last initialized, restored or loaded this
        variable (zeros before any did)."""
        return self._latest

    def assign(self, value, use_locking=None, name=None, read_value=True) -> Operation:
        """An op that sets the variable to ``value`` (computed in the same run)."""
        return self._update(value, "copy_", name or "Assign")

    def assign_add(self, delta, use_locking=None, name=None, read_value=True) -> Operation:
        """An op that adds ``delta`` to the variable."""
        return self._update(delta, "add_", name or "AssignAdd")

    def assign_sub(self, delta, use_locking=None, name=None, read_value=True) -> Operation:
        """An op that subtracts ``delta`` from the variable."""
        return self._update(delta, "sub_", name or "AssignSub")

    def _update(self, value, method: str, name: str) -> Operation:
        def run(env):
            v = env(value)
            if not isinstance(v, _tl.Tensor):
                v = _tl.tensor(np.asarray(v, dtype=self.dtype))
            with _tl.no_grad():
                getattr(env(self), method)(v.astype(self.dtype))
        return Operation(run, [self, value], _graph.unique(name))

    def initialized_value(self) -> Tensor:
        """The initial value (evaluated once per run, so a variable initialized from it
        gets the same draw)."""
        return self.initial

    def value(self) -> Variable:
        return self

    read_value = value

    def load(self, value, session=None) -> None:
        """Set the value in ``session`` (the default one if None), as TF1's ``load``."""
        (session or _get_session())._set_value(self, value)


def assign(ref: Variable, value, validate_shape=None, use_locking=None, name=None):
    """``ref.assign(value)``."""
    return ref.assign(value, name=name)


def assign_add(ref: Variable, value, use_locking=None, name=None):
    """``ref.assign_add(value)``."""
    return ref.assign_add(value, name=name)


def assign_sub(ref: Variable, value, use_locking=None, name=None):
    """``ref.assign_sub(value)``."""
    return ref.assign_sub(value, name=name)


def _walk(fetches):
    """Every Tensor and Operation the fetches depend on, each once (depth first)."""
    seen: set[int] = set()
    stack = list(reversed(list(fetches)))
    while stack:
        t = stack.pop()
        if not isinstance(t, (Tensor, Operation)) or id(t) in seen:
            continue
        seen.add(id(t))
        yield t
        stack.extend(reversed(t.inputs))


def _variables_of(fetches) -> list[Variable]:
    return [t for t in _walk(fetches) if isinstance(t, Variable)]


def _placeholders_of(fetches) -> list[_Placeholder]:
    return [t for t in _walk(fetches) if isinstance(t, _Placeholder)]


class _Env:
    """The values of one run: each compat Tensor evaluated once (memoised by id).

    ``wrt``: ids of the tensors ``tf.gradients`` differentiates with respect to (made to
    require grad when computed); ``create_graph``: gradients stay differentiable (a
    gradient penalty in a loss); ``slots``: the optimizers' state tensors of the run."""

    __slots__ = ("memo", "feeds", "wrt", "create_graph", "session", "slots")

    def __init__(self, memo=None, feeds=None, wrt=frozenset(), create_graph=False,
                 session=None, slots=None):
        self.memo = {} if memo is None else memo
        self.feeds = {} if feeds is None else feeds
        self.wrt = wrt
        self.create_graph = create_graph
        self.session = session
        self.slots = {} if slots is None else slots    # optimizer state, by slot name

    def __call__(self, t):
        if not isinstance(t, Tensor):
            return t
        memo = self.memo
        if id(t) in memo:
            return memo[id(t)]
        stack = [(t, False)]          # iterative: a long chain of ops must not recurse
        while stack:
            node, ready = stack.pop()
            if id(node) in memo:
                continue
            if ready:
                memo[id(node)] = self._compute(node)
                continue
            stack.append((node, True))
            stack.extend((i, False) for i in node.inputs
                         if isinstance(i, Tensor) and id(i) not in memo)
        return memo[id(t)]

    def _compute(self, t):
        if isinstance(t, Variable):
            v = t.tensor              # outside a Session (a shape at graph-building time)
        elif isinstance(t, _Placeholder):
            if id(t) not in self.feeds:
                raise ValueError(f"You must feed a value for placeholder tensor '{t.name}' "
                                 f"with dtype {t.dtype} and shape {t.shape}")
            v = self.feeds[id(t)]
        else:
            args = [self.memo[id(i)] if isinstance(i, Tensor) else i for i in t.inputs]
            if isinstance(t, _Random):
                v = t.fn(self.generator(t), *args)
            elif isinstance(t, _GradBundle):
                v = _grad_bundle(self, t, args)
            else:
                v = t.fn(*args)
        if id(t) in self.wrt and isinstance(v, _tl.Tensor) and not v.requires_grad and \
                v.dtype.kind == "f":
            v.requires_grad_()        # a leaf: tf.gradients differentiates with respect to it
        return v

    def generator(self, t: _Random):
        if t.seeds is None:
            return None
        if self.session is None:      # outside a Session: the sequence's start
            return _tl.Generator(list(t.seeds))
        return self.session._generator(t)


# --- sessions --------------------------------------------------------------------------------
def _get_session() -> Session:
    if not _default_session:
        raise ValueError("Cannot evaluate tensor using `eval()`/`run()`: no default session is "
                         "registered. Use `with sess.as_default()`, pass session=, or create a "
                         "tf.InteractiveSession()")
    return _default_session[-1]


def _fetched(o) -> Any:
    """A run's result as TF1 gives it: a NumPy copy (a NumPy scalar for 0-d)."""
    a = np.array(o.numpy(), copy=True)
    return a[()] if a.ndim == 0 else a


class _Compiled:
    __slots__ = ("fn", "placeholders", "randoms", "variables", "tape", "wrt")

    def __init__(self, fn, placeholders, randoms, variables, tape, wrt):
        self.fn = fn
        self.placeholders = placeholders
        self.randoms = randoms
        self.variables = variables
        self.tape = tape
        self.wrt = wrt


class Session:
    """Runs fetches with feeds: ``sess.run(fetches, feed_dict={placeholder: value})``.

    ``fetches`` may be one Tensor/Operation, a list/tuple, or a dict of them; results come
    back in the same structure as NumPy copies (None for operations). The Session holds
    the variables' values and the optimizers' state (see the module docstring).
    """

    def __init__(self, target: str = "", graph=None, config=None):
        self._fns: dict = {}
        self._values: dict[int, tuple] = {}     # id(Variable) -> (Variable, tensor)
        self._slots: dict[tuple, tuple] = {}    # (optimizer, Variable|None, name) -> (t, init)
        self._generators: dict[int, tuple] = {}  # id(seeded op) -> (op, tl.Generator)
        self._closed = False

    def __enter__(self) -> Session:
        _default_session.append(self)
        return self

    def __exit__(self, *exc) -> None:
        if _default_session and _default_session[-1] is self:
            _default_session.pop()
        self.close()

    def as_default(self):
        return _AsDefault(self)

    def close(self) -> None:
        self._closed = True
        self._fns.clear()
        self._values.clear()
        self._slots.clear()
        self._generators.clear()

    def run(self, fetches, feed_dict: dict | None = None, options=None, run_metadata=None):
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        flat: list = []
        template = _flatten(fetches, flat)
        for f in flat:
            if not isinstance(f, (Tensor, Operation)):
                raise TypeError(f"Fetch argument {f!r} has invalid type {type(f).__name__}; "
                                "must be a tf Tensor or Operation")
        unique = list({id(f): f for f in flat}.values())    # fetched twice: run once
        for op in unique:
            if isinstance(op, Operation) and op.eager:
                op.fn(_Env(self._memo(), session=self))
        graph_fetches = [f for f in unique if not (isinstance(f, Operation) and f.eager)]
        results = self._run_graph(graph_fetches, feed_dict or {}) if graph_fetches else []
        by_id = {id(f): v for f, v in zip(graph_fetches, results)}
        return _rebuild(template, [by_id.get(id(f)) for f in flat])

    def graph_for(self, fetches, feed_dict: dict | None = None):
        """The captured tensorlib Graph that ``run(fetches, feed_dict)`` replays."""
        flat: list = []
        _flatten(fetches, flat)
        unique = [f for f in {id(f): f for f in flat}.values()
                  if not (isinstance(f, Operation) and f.eager)]
        self._run_graph(unique, feed_dict or {})
        return self._fns[self._key(unique)].fn.graphs[-1]

    @staticmethod
    def _key(flat):
        return tuple(id(f) for f in flat)

    # --- state -----------------------------------------------------------------------------
    def _memo(self) -> dict:
        return {k: t for k, (_, t) in self._values.items()}

    def _value(self, v: Variable):
        e = self._values.get(id(v))
        if e is None:
            raise RuntimeError(f"Attempting to use uninitialized value {v.name}: run "
                               "tf.global_variables_initializer() (or Saver.restore) in this "
                               "Session first")
        return e[1]

    def _set_value(self, v: Variable, value) -> None:
        a = value if isinstance(value, _tl.Tensor) else _tl.tensor(np.asarray(value))
        if tuple(a.shape) != tuple(v.shape):
            raise ValueError(f"Cannot assign a value of shape {tuple(a.shape)} to variable "
                             f"'{v.name}' of shape {v.shape}")
        e = self._values.get(id(v))
        if e is None:
            e = self._values[id(v)] = (v, _new_value(v.shape, v.dtype))
        with _tl.no_grad():
            e[1].copy_(a.detach().astype(e[1].dtype))
        v._latest = e[1]

    def _slot(self, opt, v, name: str, init: float, shape, dtype):
        """An optimizer's state tensor for ``v`` (or for the optimizer: v None), made at
        ``init`` the first time a run needs it and reset by the initializer."""
        e = self._slots.get((opt, v, name))
        if e is None:
            t = _tl.zeros(tuple(shape), dtype=dtype)
            with _tl.no_grad():
                t.fill_(init)
            e = self._slots[(opt, v, name)] = (t, init)
        return e[0]

    def _reset_slots(self, variables, everything: bool) -> None:
        ids = {id(v) for v in variables}
        with _tl.no_grad():
            for (_, v, _), (t, init) in self._slots.items():
                if (everything and v is None) or (v is not None and id(v) in ids):
                    t.fill_(init)

    def _generator(self, t: _Random):
        e = self._generators.get(id(t))
        if e is None:
            e = self._generators[id(t)] = (t, _tl.Generator(list(t.seeds)))
        return e[1]

    # --- graphs ----------------------------------------------------------------------------
    def _run_graph(self, fetches: list, feed_dict: dict):
        key = self._key(fetches)
        entry = self._fns.get(key)
        for v in (entry.variables if entry is not None else _variables_of(fetches)):
            self._value(v)            # raises for an uninitialized variable
        if entry is None:
            entry = self._fns[key] = self._compile(fetches)
        by_id = {}
        for k, val in feed_dict.items():
            if not isinstance(k, _Placeholder):
                raise TypeError(f"feed_dict keys must be placeholders, got {k!r}")
            by_id[id(k)] = (k, val)
        feeds = []
        for p in entry.placeholders:
            if id(p) not in by_id:
                raise ValueError(f"You must feed a value for placeholder tensor '{p.name}' "
                                 f"with dtype {p.dtype} and shape {p.shape}")
            t = _feed_tensor(p, by_id[id(p)][1])
            if id(p) in entry.wrt and t.dtype.kind == "f":
                t.requires_grad_()    # tf.gradients with respect to this placeholder
            feeds.append(t)
        with _tl.no_grad():           # seeded draws: this Session's sequence, per run
            feeds += [r.fn(self._generator(r)) for r in entry.randoms]
        # evaluation fetches run without a tape: their graph replays (outputs need no grad)
        with _tl.set_grad_enabled(entry.tape):
            outs = iter(entry.fn(*feeds))
        return [None if isinstance(f, Operation) else _fetched(next(outs)) for f in fetches]

    def _compile(self, fetches: list) -> _Compiled:
        closure = list(_walk(fetches))
        variables = [t for t in closure if isinstance(t, Variable)]
        placeholders = [t for t in closure if isinstance(t, _Placeholder)]
        randoms = [t for t in closure if isinstance(t, _Random) and t.static
                   and t.seeds is not None]
        bundles = [t for t in closure if isinstance(t, _GradBundle)]
        tensors = [f for f in fetches if isinstance(f, Tensor)]
        ops = [f for f in fetches if isinstance(f, Operation)]
        train_ops = [op for op in ops if isinstance(op, _TrainOp)]
        other_ops = [op for op in ops if not isinstance(op, _TrainOp)]
        tape = _pybool(train_ops or bundles)
        create_graph = _pybool(train_ops) or len(bundles) > 1
        wrt = frozenset(id(x) for b in bundles
                        for x in b.inputs[b.n_ys:b.n_ys + b.n_xs])
        ids = [id(p) for p in placeholders] + [id(r) for r in randoms]
        var_ids = [id(v) for v in variables]
        # the Session's tensors, reachable from the function so that the capture binds them
        # as variables (named after the TF1 variables)
        state = {v.name: self._value(v) for v in variables}
        slots: dict = {}              # the optimizers' state, bound as variables too
        for op in train_ops:
            slots.update(op.optimizer._prepare(self, op.variables))
        clone = _pybool(ops)
        session = weakref.ref(self)

        def step(*feeds):
            env = _Env(dict(zip(var_ids, state.values())), dict(zip(ids, feeds)), wrt,
                       create_graph, session(), slots)
            with _tl.set_grad_enabled(tape):
                outs = []
                for f in tensors:
                    v = env(f).detach()
                    # a variable updated by this run: the value its forward read
                    outs.append(v.clone() if clone and isinstance(f, Variable) else v)
                for op in ops:        # every op's inputs before any op changes a variable
                    for i in op.inputs:
                        env(i)
                # every train op's gradients from this one forward, then the updates
                grads = [op._gradients(env, retain=k + 1 < len(train_ops))
                         for k, op in enumerate(train_ops)]
            with _tl.no_grad():
                for op, gs in zip(train_ops, grads):
                    op._apply(env, gs)
                for op in other_ops:
                    op.fn(env)
            return outs

        step.__name__ = "session_run"
        step.__qualname__ = "session_run"
        return _Compiled(_tl.function(step, max_retraces=20), placeholders, randoms,
                         variables, tape, wrt)


class InteractiveSession(Session):
    """A Session that installs itself as the default (for ``t.eval()``, ``op.run()``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _default_session.append(self)

    def close(self) -> None:
        if self in _default_session:
            _default_session.remove(self)
        super().close()


class _AsDefault:
    def __init__(self, sess):
        self.sess = sess

    def __enter__(self):
        _default_session.append(self.sess)
        return self.sess

    def __exit__(self, *exc):
        _default_session.remove(self.sess)


def _feed_tensor(p: _Placeholder, value):
    a = value.numpy() if isinstance(value, _tl.Tensor) else value
    a = np.asarray(a, dtype=p.dtype, order="C")     # (ascontiguousarray makes 0-d 1-d)
    if p.shape is not None and (a.ndim != len(p.shape) or any(
            d is not None and d != s for d, s in zip(p.shape, a.shape))):
        raise ValueError(f"Cannot feed value of shape {a.shape} for Tensor '{p.name}', which "
                         f"has shape {p.shape}")
    return _tl.from_numpy(a)


def _flatten(x, out: list):
    if isinstance(x, (Tensor, Operation)):
        out.append(x)
        return ("T", len(out) - 1)
    if isinstance(x, dict):
        return ("D", [(k, _flatten(v, out)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return ("L" if isinstance(x, list) else "U", [_flatten(v, out) for v in x])
    out.append(x)
    return ("T", len(out) - 1)


def _rebuild(tpl, values):
    tag, body = tpl
    if tag == "T":
        return values[body]
    if tag == "D":
        return {k: _rebuild(v, values) for k, v in body}
    seq = [_rebuild(v, values) for v in body]
    return seq if tag == "L" else tuple(seq)


# --- variables: initializers, collections ----------------------------------------------------
def variables_initializer(var_list, name: str = "init") -> Operation:
    """An op that sets each variable of ``var_list`` to its initial value in the Session
    that runs it (and resets the optimizer state kept for those variables)."""
    return _initializer(list(var_list), name, everything=False)


def _initializer(variables: list, name: str, everything: bool) -> Operation:
    def run(env):
        sess = env.session
        with _tl.no_grad():
            for v in variables:
                # one env for all: a random op shared by two initial values draws once
                sess._set_value(v, env(v.initial))
                env.memo[id(v)] = sess._value(v)
        sess._reset_slots(variables, everything)
    return Operation(run, [], _graph.unique(name), eager=True)


def global_variables_initializer() -> Operation:
    """An op that sets every variable created so far to its initial value (in the Session
    that runs it) and resets the optimizers' state (Adam's moments, ...)."""
    return _initializer(list(_graph.variables), "init", everything=True)


initialize_all_variables = global_variables_initializer


def local_variables_initializer() -> Operation:
    """Nothing to do: there are no local variables here (TF1 code runs it with the global
    initializer)."""
    return Operation(lambda env: None, [], _graph.unique("init_local"), eager=True)


def global_variables() -> list[Variable]:
    """Every variable created so far (in creation order)."""
    return list(_graph.variables)


def trainable_variables() -> list[Variable]:
    """The variables created with ``trainable=True`` (what ``minimize`` updates)."""
    return [v for v in _graph.variables if v.trainable]


# --- ops --------------------------------------------------------------------------------------
def _shape_arg(shape):
    return tuple(int(s) for s in (shape if isinstance(shape, (list, tuple)) else [shape]))


def constant(value, dtype=None, shape=None, name: str | None = None) -> Tensor:
    dt = _as_dtype(dtype)
    a = np.asarray(value, dtype=dt)
    if a.dtype == np.float64 and dt is None:
        a = a.astype(np.float32)
    if shape is not None:
        a = np.broadcast_to(a, _shape_arg(shape)).copy()
    return _op(lambda: _tl.tensor(a), [], name or "Const", a.shape, a.dtype)


def zeros(shape, dtype=float32, name: str | None = None) -> Tensor:
    s = _shape_arg(shape)
    return _op(lambda: _tl.zeros(s, dtype=dtype), [], name or "zeros", s, dtype)


def ones(shape, dtype=float32, name: str | None = None) -> Tensor:
    s = _shape_arg(shape)
    return _op(lambda: _tl.ones(s, dtype=dtype), [], name or "ones", s, dtype)


def random_normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None,
                  name: str | None = None) -> Tensor:
    s, dt = _shape_arg(shape), _as_dtype(dtype)

    def draw(g):
        return _tl.randn(*s, dtype=dt, generator=g) * stddev + mean
    return _random_op(draw, [], name or "random_normal", s, dt, seed, static=True)


# truncated at two standard deviations: the normal's quantiles of a uniform draw in
# [Phi(-2), Phi(2)] (no redraw loop, which a captured graph could not hold)
_TRUNC_LO = 0.5 * math.erfc(2.0 / math.sqrt(2.0))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None,
                     name: str | None = None) -> Tensor:
    """Normal draws, those more than two standard deviations from the mean drawn again
    (the same distribution: quantiles of a uniform draw between the cut-offs)."""
    s, dt = _shape_arg(shape), _as_dtype(dtype)

    def draw(g):
        u = _tl.uniform(_TRUNC_LO, 1.0 - _TRUNC_LO, s, generator=g, dtype=float64)
        return (_tl.special.ndtri(u) * stddev + mean).astype(dt)
    return _random_op(draw, [], name or "truncated_normal", s, dt, seed, static=True)


def random_uniform(shape, minval=0, maxval=None, dtype=float32, seed=None,
                   name: str | None = None) -> Tensor:
    s, dt = _shape_arg(shape), _as_dtype(dtype)
    if dt.kind in "iu":
        if maxval is None:
            raise ValueError("random_uniform: an integer dtype needs maxval")

        def draw(g):
            return _tl.randint(int(minval), int(maxval), s, generator=g).astype(dt)
    else:
        hi = 1.0 if maxval is None else float(maxval)

        def draw(g):
            return _tl.uniform(float(minval), hi, s, generator=g, dtype=dt)
    return _random_op(draw, [], name or "random_uniform", s, dt, seed, static=True)


def _t(x):
    return x if isinstance(x, _tl.Tensor) else _tl.tensor(np.asarray(x, np.float32)) \
        if isinstance(x, (list, np.ndarray)) else x


def add(a, b, name=None) -> Tensor:
    return _op(lambda x, y: _t(x) + _t(y), [a, b], name or "add")


def subtract(a, b, name=None) -> Tensor:
    return _op(lambda x, y: _t(x) - _t(y), [a, b], name or "sub")


def multiply(a, b, name=None) -> Tensor:
    return _op(lambda x, y: _t(x) * _t(y), [a, b], name or "mul")


def matmul(a, b, transpose_a: bool = False, transpose_b: bool = False, name=None) -> Tensor:
    def fn(x, y):
        x = x.mT if transpose_a else x
        y = y.mT if transpose_b else y
        return x @ y
    return _op(fn, [a, b], name or "MatMul")


def _unary(f, name):
    def op(x, name_=None):
        return _op(f, [x], name_ or name)
    op.__name__ = name
    return op


log = _unary(lambda x: x.log(), "Log")
exp = _unary(lambda x: x.exp(), "Exp")
sqrt = _unary(lambda x: x.sqrt(), "Sqrt")
square = _unary(lambda x: x * x, "Square")
tanh = _unary(lambda x: x.tanh(), "Tanh")
sigmoid = _unary(lambda x: x.sigmoid(), "Sigmoid")


def stop_gradient(x, name=None) -> Tensor:
    """The value of ``x``, through which no gradient flows."""
    return _op(lambda v: _t(v).detach(), [x], name or "StopGradient",
               getattr(x, "shape", None), getattr(x, "dtype", None))


def _axis(axis, reduction_indices):
    a = axis if axis is not None else reduction_indices
    if isinstance(a, list):
        a = tuple(a)
    return a


def _reduction(method: str, op_name: str):
    def reduce(x, axis=None, keepdims=None, name=None, reduction_indices=None,
               keep_dims=None) -> Tensor:
        ax = _axis(axis, reduction_indices)
        kd = _pybool(keep_dims if keep_dims is not None else keepdims)

        def fn(v):
            if method == "mean" and v.dtype.kind != "f":
                v = v.astype(np.float32)
            return getattr(v, method)(axis=ax, keepdims=kd)
        return _op(fn, [x], name or op_name)
    reduce.__name__ = f"reduce_{method}"
    reduce.__doc__ = (f"``{method}`` over ``axis`` (``reduction_indices``); ``keepdims`` "
                      "(TF1's old spelling ``keep_dims`` too) keeps the reduced dims.")
    return reduce


reduce_sum = _reduction("sum", "Sum")
reduce_mean = _reduction("mean", "Mean")
reduce_max = _reduction("max", "Max")
reduce_min = _reduction("min", "Min")


def argmax(x, axis=None, name=None, dimension=None) -> Tensor:
    ax = axis if axis is not None else (dimension if dimension is not None else 0)
    return _op(lambda v: v.argmax(axis=ax), [x], name or "ArgMax")


def equal(a, b, name=None) -> Tensor:
    return _op(lambda x, y: _t(x) == _t(y), [a, b], name or "Equal")


def cast(x, dtype, name=None) -> Tensor:
    dt = _as_dtype(dtype)
    return _op(lambda v: v.astype(dt), [x], name or "Cast", None, dt)


def reshape(x, shape, name=None) -> Tensor:
    s = _shape_arg(shape)
    return _op(lambda v: v.reshape(s), [x], name or "Reshape")


def transpose(x, perm=None, name=None) -> Tensor:
    return _op(lambda v: v.transpose(tuple(perm)) if perm is not None else v.transpose(),
               [x], name or "transpose")


# --- tf.gradients -----------------------------------------------------------------------------
def gradients(ys, xs, grad_ys=None, name: str = "gradients", colocate_gradients_with_ops=False,
              gate_gradients=False, aggregation_method=None, stop_gradients=None) -> list:
    """The symbolic gradients of ``sum(ys)`` (weighted by ``grad_ys``, ones by default)
    with respect to each of ``xs``: a list of Tensors, None for an x that the ys do not
    depend on (as TF1). The xs may be variables, placeholders or intermediate tensors; all
    gradients of one call come from one backward pass per run."""
    if stop_gradients is not None:
        raise NotImplementedError("gradients(stop_gradients=...): use tf.stop_gradient on "
                                  "those tensors instead")
    ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
    xs_list = list(xs) if isinstance(xs, (list, tuple)) else [xs]
    gys = [None] * len(ys) if grad_ys is None else (
        list(grad_ys) if isinstance(grad_ys, (list, tuple)) else [grad_ys])
    if len(gys) != len(ys):
        raise ValueError(f"gradients: {len(ys)} ys but {len(gys)} grad_ys")
    upstream = {id(t) for t in _walk(ys)}
    wrt = [x for x in xs_list if isinstance(x, Tensor) and id(x) in upstream
           and (x.dtype is None or x.dtype.kind == "f")]
    if not wrt:
        return [None] * len(xs_list)
    bundle = _GradBundle(None, [*ys, *wrt, *gys], _graph.unique(name))
    bundle.n_ys, bundle.n_xs = len(ys), len(wrt)
    index = {id(x): k for k, x in enumerate(wrt)}
    out = []
    for x in xs_list:
        k = index.get(id(x))
        out.append(None if k is None else _op(lambda b, k=k: b[k], [bundle], f"{name}/grad",
                                              x.shape, x.dtype))
    return out


def _grad_bundle(env: _Env, b: _GradBundle, args: list) -> tuple:
    ys, xs = args[:b.n_ys], args[b.n_ys:b.n_ys + b.n_xs]
    gys = args[b.n_ys + b.n_xs:]
    pairs = [(y, gy) for y, gy in zip(ys, gys) if isinstance(y, _tl.Tensor) and y.requires_grad]
    need = [k for k, x in enumerate(xs) if isinstance(x, _tl.Tensor) and x.requires_grad]
    res: list = [None] * len(xs)
    if pairs and need:
        outs = [y for y, _ in pairs]
        gos = [_tl.ones_like(y) if gy is None else _t(gy).astype(y.dtype) for y, gy in pairs]
        # the graph is kept: train ops of the same run differentiate the same forward
        gs = _tl.grad(outs, [xs[k] for k in need], grad_outputs=gos, retain_graph=True,
                      create_graph=env.create_graph, allow_unused=True)
        for k, g in zip(need, gs):
            res[k] = g
    return tuple(_tl.zeros_like(x) if g is None else g for x, g in zip(xs, res))


# --- tf.nn ----------------------------------------------------------------------------------
def _same_pads(size: int, k: int, stride: int, what: str) -> int:
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    if total % 2:
        raise ValueError(f"{what}: padding='SAME' needs asymmetric padding here (input "
                         f"{size}, kernel {k}, stride {stride}); tensorlib.compat.v1 supports "
                         "only symmetric SAME padding")
    return total // 2


class _NN:
    """``tf.nn``: NHWC images, HWIO filters, as in TF1."""

    @staticmethod
    def softmax(logits, axis=-1, name=None) -> Tensor:
        return _op(lambda v: _softmax(v, axis=axis), [logits], name or "Softmax")

    @staticmethod
    def log_softmax(logits, axis=-1, name=None) -> Tensor:
        return _op(lambda v: _log_softmax(v, axis=axis), [logits], name or "LogSoftmax")

    @staticmethod
    def relu(x, name=None) -> Tensor:
        return _op(lambda v: v.relu(), [x], name or "Relu")

    @staticmethod
    def sigmoid(x, name=None) -> Tensor:
        return sigmoid(x)

    @staticmethod
    def tanh(x, name=None) -> Tensor:
        return tanh(x)

    @staticmethod
    def softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, dim=-1,
                                          name=None) -> Tensor:
        if labels is None or logits is None:
            raise ValueError("softmax_cross_entropy_with_logits needs labels= and logits=")
        return _op(lambda y, z: -(y * _log_softmax(z, axis=dim)).sum(axis=dim),
                   [labels, logits], name or "SoftmaxCrossEntropyWithLogits")

    softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits

    @staticmethod
    def conv2d(input, filter=None, strides=(1, 1, 1, 1), padding="SAME", name=None,
               filters=None) -> Tensor:
        w = filter if filter is not None else filters
        if list(strides)[0] != 1 or list(strides)[3] != 1:
            raise ValueError("conv2d: strides must be [1, sh, sw, 1] (NHWC)")
        sh, sw = int(strides[1]), int(strides[2])

        def fn(x, k):
            from ..nn import functional as F
            kh, kw = k.shape[0], k.shape[1]
            if padding == "SAME":
                pad = (_same_pads(x.shape[1], kh, sh, "conv2d"),
                       _same_pads(x.shape[2], kw, sw, "conv2d"))
            elif padding == "VALID":
                pad = (0, 0)
            else:
                raise ValueError(f"conv2d: padding must be 'SAME' or 'VALID', got {padding!r}")
            y = F.conv2d(x.permute(0, 3, 1, 2), k.permute(3, 2, 0, 1), stride=(sh, sw),
                         padding=pad)
            return y.permute(0, 2, 3, 1)
        return _op(fn, [input, w], name or "Conv2D")

    @staticmethod
    def max_pool(value, ksize, strides, padding="SAME", name=None) -> Tensor:
        kh, kw = int(ksize[1]), int(ksize[2])
        sh, sw = int(strides[1]), int(strides[2])

        def fn(x):
            from ..nn import functional as F
            if padding == "SAME":
                pad = (_same_pads(x.shape[1], kh, sh, "max_pool"),
                       _same_pads(x.shape[2], kw, sw, "max_pool"))
            else:
                pad = (0, 0)
            y = F.max_pool2d(x.permute(0, 3, 1, 2), (kh, kw), stride=(sh, sw), padding=pad)
            return y.permute(0, 2, 3, 1)
        return _op(fn, [value], name or "MaxPool")

    @staticmethod
    def dropout(x, keep_prob=None, noise_shape=None, seed=None, name=None, rate=None) -> Tensor:
        """Keep each element with probability ``keep_prob`` (a number or a fed placeholder)
        and scale kept ones by 1 / keep_prob; the draw is redone on every run (``seed``: a
        reproducible sequence of draws, restarted by each Session)."""
        if keep_prob is None:
            keep_prob = 1.0 - rate
        ns = None if noise_shape is None else _shape_arg(noise_shape)

        def fn(g, v, kp):
            kp = kp if isinstance(kp, _tl.Tensor) else _tl.tensor(float(kp))
            kp = kp.astype(v.dtype)
            u = _tl.rand(*(v.shape if ns is None else ns), dtype=v.dtype, generator=g)
            return v * (u < kp).astype(v.dtype) / kp
        return _random_op(fn, [x, keep_prob], name or "dropout", None, None, seed,
                          static=False)


nn = _NN()


# --- training ------------------------------------------------------------------------------
class _TrainOp(Operation):
    """``optimizer.minimize(loss)``: in a run, the gradients of ``loss`` with respect to
    ``variables`` (from the run's forward), then the optimizer's update."""

    def __init__(self, optimizer, loss, variables: list, global_step, name: str):
        extra = [h for h in optimizer._hyper() if isinstance(h, Tensor)]
        gs = [] if global_step is None else [global_step]
        super().__init__(None, [loss, *variables, *gs, *extra], name)
        self.optimizer = optimizer
        self.loss = loss
        self.variables = variables
        self.global_step = global_step

    def _gradients(self, env: _Env, retain: bool) -> list:
        value = env(self.loss)
        if not (isinstance(value, _tl.Tensor) and value.requires_grad):
            return [None] * len(self.variables)
        go = None if value.ndim == 0 else _tl.ones_like(value)   # TF1: the sum of a tensor
        return list(_tl.grad(value, [env(v) for v in self.variables], grad_outputs=go,
                             retain_graph=retain, allow_unused=True))

    def _apply(self, env: _Env, grads: list) -> None:
        opt = self.optimizer
        for v, g in zip(self.variables, grads):
            if g is not None:
                opt._apply_dense(env, v, env(v), g)
        opt._finish(env)
        if self.global_step is not None:
            env(self.global_step).add_(1)


class _Optimizer:
    _name = "Optimizer"
    _slot_specs: tuple = ()        # (name, initial value): state kept per variable
    _global_specs: tuple = ()      # (name, initial value): state kept per optimizer

    def _hyper(self) -> tuple:
        return (self.lr,)

    def minimize(self, loss: Tensor, global_step=None, var_list=None, gate_gradients=1,
                 aggregation_method=None, colocate_gradients_with_ops=False,
                 name: str | None = None, grad_loss=None) -> Operation:
        """An op that updates the variables (``var_list``, else the trainable ones) that
        ``loss`` depends on, and adds 1 to ``global_step`` if given."""
        if grad_loss is not None:
            raise NotImplementedError("minimize(grad_loss=...) is not supported")
        candidates = list(var_list) if var_list is not None else trainable_variables()
        used = {id(v) for v in _variables_of([loss])}
        variables = [v for v in candidates if id(v) in used and v.dtype.kind == "f"]
        if not variables:
            raise ValueError("No gradients provided for any variable: the loss "
                             f"'{getattr(loss, 'name', loss)}' depends on none of "
                             f"{[v.name for v in candidates]}")
        return _TrainOp(self, loss, variables, global_step,
                        name or _graph.unique(self._name))

    def _prepare(self, sess: Session, variables: list) -> dict:
        """This Session's state tensors for ``variables``, by ``_key`` (TF1's slot names,
        which also name them in the captured graph)."""
        out = {}
        for v in variables:
            for slot, init in self._slot_specs:
                out[self._key(v, slot)] = sess._slot(self, v, slot, init, v.shape, v.dtype)
        for slot, init in self._global_specs:
            out[self._key(None, slot)] = sess._slot(self, None, slot, init, (), float32)
        return out

    def _key(self, v, slot: str) -> str:
        return f"{self._name}/{slot}" if v is None else f"{v.name}/{self._name}/{slot}"

    def _lr(self, env: _Env):
        return env(self.lr)

    def _finish(self, env: _Env) -> None:
        pass


def _rate(x):
    return x if isinstance(x, Tensor) else float(x)


class _Train:
    class GradientDescentOptimizer(_Optimizer):
        """``var -= learning_rate * grad``. The learning rate may be a fed placeholder."""

        def __init__(self, learning_rate, use_locking: bool = False,
                     name: str = "GradientDescent"):
            self.lr, self._name = _rate(learning_rate), _graph.variable_name(name)

        def _apply_dense(self, env, v, t, g) -> None:
            t.sub_(self._lr(env) * g)

    class MomentumOptimizer(_Optimizer):
        """TF1's momentum: ``accum = momentum * accum + grad; var -= lr * accum`` (with
        ``use_nesterov``: ``var -= lr * (grad + momentum * accum)``)."""

        _slot_specs = (("momentum", 0.0),)

        def __init__(self, learning_rate, momentum: float, use_locking: bool = False,
                     name: str = "Momentum", use_nesterov: bool = False):
            self.lr, self._name = _rate(learning_rate), _graph.variable_name(name)
            self.momentum, self.nesterov = float(momentum), _pybool(use_nesterov)

        def _apply_dense(self, env, v, t, g) -> None:
            acc = env.slots[self._key(v, "momentum")]
            acc.mul_(self.momentum)
            acc.add_(g)
            lr = self._lr(env)
            t.sub_(lr * (g + self.momentum * acc) if self.nesterov else lr * acc)

    class AdagradOptimizer(_Optimizer):
        """TF1's Adagrad: ``accum += grad ** 2; var -= lr * grad / sqrt(accum)``, the
        accumulators starting at ``initial_accumulator_value``."""

        def __init__(self, learning_rate, initial_accumulator_value: float = 0.1,
                     use_locking: bool = False, name: str = "Adagrad"):
            if initial_accumulator_value <= 0:
                raise ValueError("initial_accumulator_value must be positive")
            self.lr, self._name = _rate(learning_rate), _graph.variable_name(name)
            self._slot_specs = (("accumulator", float(initial_accumulator_value)),)

        def _apply_dense(self, env, v, t, g) -> None:
            acc = env.slots[self._key(v, "accumulator")]
            acc.add_(g * g)
            t.sub_(self._lr(env) * g / acc.sqrt())

    class AdamOptimizer(_Optimizer):
        """Adam as in TF1 (epsilon added to sqrt(v), bias correction in the step size).
        Its state (step count, moments) is held in tensors of the Session, so a captured
        training step replays without retracing."""

        _slot_specs = (("m", 0.0), ("v", 0.0))
        _global_specs = (("t", 0.0),)

        def __init__(self, learning_rate=0.001, beta1: float = 0.9, beta2: float = 0.999,
                     epsilon: float = 1e-8, use_locking: bool = False, name: str = "Adam"):
            self.lr, self._name = _rate(learning_rate), _graph.variable_name(name)
            self.b1, self.b2, self.eps = float(beta1), float(beta2), float(epsilon)

        def _apply_dense(self, env, v, t, g) -> None:
            m, s = env.slots[self._key(v, "m")], env.slots[self._key(v, "v")]
            m.mul_(self.b1)
            m.add_((1.0 - self.b1) * g)
            s.mul_(self.b2)
            s.add_((1.0 - self.b2) * g * g)
            step = env.slots[self._key(None, "t")] + 1.0
            lr_t = self._lr(env) * (1.0 - _tl.power(self.b2, step)).sqrt() / (
                1.0 - _tl.power(self.b1, step))
            t.sub_(lr_t * m / (s.sqrt() + self.eps))

        def _finish(self, env) -> None:
            env.slots[self._key(None, "t")].add_(1.0)

    class Saver:
        """Saves and restores variables' values of a Session, in a safetensors file (one
        tensor per variable name; not TF's checkpoint format, and never pickle).

        ``var_list``: the variables (all global variables by default), or a dict
        ``{name in the file: variable}``."""

        def __init__(self, var_list=None, max_to_keep: int = 5, **_ignored):
            if var_list is None:
                var_list = global_variables()
            if isinstance(var_list, dict):
                self._vars = dict(var_list)
            else:
                self._vars = {}
                for v in var_list:
                    if v.name in self._vars:
                        raise ValueError(f"Saver: two variables are named '{v.name}'")
                    self._vars[v.name] = v

        def save(self, sess: Session, save_path: str, global_step=None, **_ignored) -> str:
            """Write the values to ``save_path`` (``save_path-<step>`` with
            ``global_step``, an int or a variable); returns the path written."""
            path = str(save_path)
            if global_step is not None:
                step = global_step if isinstance(global_step, (int, np.integer)) \
                    else sess.run(global_step)
                path = f"{path}-{int(step)}"
            arrays = {name: np.array(sess._value(v).detach().numpy(), copy=True)
                      for name, v in self._vars.items()}
            _tl.save(arrays, path)
            return path

        def restore(self, sess: Session, save_path: str) -> None:
            """Set the variables' values in ``sess`` from a file ``save`` wrote (no
            initializer needed for them afterwards)."""
            data = _tl.load(str(save_path))
            for name, v in self._vars.items():
                if name not in data:
                    raise ValueError(f"Key {name} not found in checkpoint {save_path}")
                a = data[name]
                a = a.numpy() if isinstance(a, _tl.Tensor) else np.asarray(a)
                if tuple(a.shape) != tuple(v.shape):
                    raise ValueError(f"Saver.restore: '{name}' has shape {a.shape} in "
                                     f"{save_path}, but variable '{v.name}' has shape "
                                     f"{v.shape}")
                sess._set_value(v, a.astype(v.dtype))


train = _Train()


def get_default_session() -> Any:
    return _default_session[-1] if _default_session else None


globals()["bool"] = np.dtype(np.bool_)   # tf.bool (set last: the module uses builtins.bool)
