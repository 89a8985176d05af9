"""Variables and the assign ops; _Env, the values of one run (it evaluates Tensors, and
gives a Variable its initial value's shape); initializers and variable collections."""
from __future__ import annotations

import numpy as np

import tensorlib as _tl

from . import graph
from .dtypes import _pybool
from .graph import _get_session
from .ops import _grad_bundle, constant
from .tensor import Operation, Tensor, _as_dtype, _GradBundle, _Placeholder, _Random, _walk


def _new_value(shape, dtype, requires_grad: bool = True):
    t = _tl.zeros(tuple(shape), dtype=dtype)
    if requires_grad and np.dtype(dtype).kind == "f":
        t.requires_grad_()
    return t


class Variable(Tensor):
    """State. Its value lives in a Session, set by the initializer (or ``Saver.restore``,
    ``load``) and updated by train ops; ``tensor`` is the eager tensorlib tensor of the
    Session that last set it."""

    __slots__ = ("initial", "trainable", "_latest")

    def __init__(self, initial_value=None, trainable: bool = True, collections=None,
                 validate_shape: bool = True, caching_device=None, name: str | None = None,
                 variable_def=None, dtype=None, *, _full_name: str | None = None):
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
        full = graph._graph.variable_name(_full_name, scoped=False) if _full_name else \
            graph._graph.variable_name(name or "Variable")
        super().__init__(None, [], full, shape, dt or vdt)
        self.initial = init
        self.trainable = _pybool(trainable)
        self._latest = _new_value(self.shape, self.dtype)
        graph._graph.variables.append(self)

    @property
    def tensor(self):
        """The eager value in the Session that last initialized, restored or loaded this
        variable (zeros before any did)."""
        return self._latest

    def assign(self, value, use_locking=None, name=None, read_value=True,
               validate_shape: bool = True) -> Operation:
        """An op that sets the variable to ``value`` (computed in the same run); the
        value must have the variable's shape (TF1's ``validate_shape``: no broadcasting)."""
        if validate_shape:
            s = tuple(value.shape) if isinstance(value, Tensor) and value.shape is not None \
                else None if isinstance(value, Tensor) else np.shape(value)
            if s is not None and None not in s and s != tuple(self.shape):
                raise ValueError(f"assign: shapes must be equal: variable '{self.name}' has "
                                 f"shape {self.shape}, the value {s}")
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
            if method == "copy_" and tuple(v.shape) != tuple(self.shape):
                raise ValueError(f"assign: shapes must be equal: variable '{self.name}' has "
                                 f"shape {self.shape}, the value {tuple(v.shape)}")
            with _tl.no_grad():
                getattr(env(self), method)(v.astype(self.dtype))
        return Operation(run, [self, value], graph._graph.unique(name))

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
    return ref.assign(value, name=name, validate_shape=validate_shape is not False)


class _SlotVariable(Variable):
    """An optimizer's state (Adam's moments, Momentum's accumulator, ``beta1_power``): a
    global, non-trainable variable, so initializers, ``Saver`` and ``get_slot`` see it.
    ``primary`` is the variable it belongs to (None for per-optimizer state). A Session
    that never initialized it starts it at ``fill`` when a train op first needs it."""

    __slots__ = ("primary", "fill")

    def __init__(self, primary, fill: float, shape, dtype, name: str):
        shape, dtype = tuple(shape), np.dtype(dtype)
        init = Tensor(lambda: _tl.full(shape, fill, dtype=dtype), [],
                      graph._graph.unique(f"{name}/Initializer"), shape, dtype)
        super().__init__(init, trainable=False, dtype=dtype, _full_name=name)
        self.primary = primary
        self.fill = float(fill)


def assign_add(ref: Variable, value, use_locking=None, name=None):
    """``ref.assign_add(value)``."""
    return ref.assign_add(value, name=name)


def assign_sub(ref: Variable, value, use_locking=None, name=None):
    """``ref.assign_sub(value)``."""
    return ref.assign_sub(value, name=name)


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
            # in a Session its own value (raising when uninitialized there, never another
            # Session's); outside one (a shape at graph-building time) the latest value
            v = t.tensor if self.session is None else self.session._read(t)
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
    return Operation(run, [], graph._graph.unique(name), eager=True)


def global_variables_initializer() -> Operation:
    """An op that sets every variable created so far to its initial value (in the Session
    that runs it) and resets the optimizers' state (Adam's moments, ...)."""
    return _initializer(list(graph._graph.variables), "init", everything=True)


initialize_all_variables = global_variables_initializer


def local_variables_initializer() -> Operation:
    """Nothing to do: there are no local variables here (TF1 code runs it with the global
    initializer)."""
    return Operation(lambda env: None, [], graph._graph.unique("init_local"), eager=True)


def global_variables() -> list[Variable]:
    """Every variable created so far (in creation order)."""
    return list(graph._graph.variables)


def trainable_variables() -> list[Variable]:
    """The variables created with ``trainable=True`` (what ``minimize`` updates)."""
    return [v for v in graph._graph.variables if v.trainable]
