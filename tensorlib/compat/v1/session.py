"""Session and InteractiveSession: running fetches (compiled into captured graphs), the
Session's variable values and optimizer state, feeds, fetch flattening."""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np

import tensorlib as _tl

from .dtypes import _pybool
from .errors import FailedPreconditionError
from .graph import _default_session
from .tensor import Operation, Tensor, _GradBundle, _Placeholder, _Random, _walk
from .training import _TrainOp
from .variables import Variable, _Env, _new_value, _SlotVariable, _variables_of


def _fetched(o) -> Any:
    """A run's result as TF1 gives it: a NumPy copy (a NumPy scalar for 0-d)."""
    a = np.array(o.numpy(), copy=True)
    return a[()] if a.ndim == 0 else a


class _Compiled:
    __slots__ = ("fn", "placeholders", "randoms", "variables", "tape", "wrt", "dynamic")

    def __init__(self, fn, placeholders, randoms, variables, tape, wrt, dynamic=False):
        self.dynamic = dynamic
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
    the variables' values and the optimizers' state (see the package docstring).
    """

    def __init__(self, target: str = "", graph=None, config=None):
        self._fns: dict = {}
        self._values: dict[int, tuple] = {}     # id(Variable) -> (Variable, tensor)
        self._expanded: dict[tuple, list] = {}  # fetch ids -> the ops and tensors they run
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
        self._expanded.clear()
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
        unique = self._expand(flat)
        for op in unique:
            if isinstance(op, Operation) and op.eager:
                op.fn(_Env(self._memo(), session=self))
        graph_fetches = [f for f in unique if not (isinstance(f, Operation) and f.eager)]
        results = self._run_graph(graph_fetches, feed_dict or {}) if graph_fetches else []
        by_id = {id(f): v for f, v in zip(graph_fetches, results)}
        return _rebuild(template, [by_id.get(id(f)) for f in flat])

    def _expand(self, flat: list) -> list:
        """The fetches, each once (fetched twice: run once), with ``tf.group`` members and
        the ``tf.control_dependencies`` of everything they depend on added."""
        key = self._key(flat)
        out = self._expanded.get(key)
        if out is None:
            out, seen, todo = [], set(), list(flat)
            while todo:
                f = todo.pop(0)
                if id(f) in seen:
                    continue
                seen.add(id(f))
                if isinstance(f, _Group):
                    todo.extend(f.members)
                    continue
                out.append(f)
                for node in _walk([f]):
                    todo.extend(getattr(node, "control", ()))
            self._expanded[key] = out
        return out

    def graph_for(self, fetches, feed_dict: dict | None = None):
        """The captured tensorlib Graph that ``run(fetches, feed_dict)`` replays."""
        flat: list = []
        _flatten(fetches, flat)
        unique = [f for f in self._expand(flat)
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
            raise FailedPreconditionError(
                f"Attempting to use uninitialized value {v.name}: run "
                "tf.global_variables_initializer() (or Saver.restore) in this Session first")
        return e[1]

    def _read(self, v: Variable):
        """``v``'s value here; an optimizer's slot this Session never set starts at its
        initial fill."""
        if isinstance(v, _SlotVariable) and id(v) not in self._values:
            t = _new_value(v.shape, v.dtype, requires_grad=False)
            with _tl.no_grad():
                t.fill_(v.fill)
            self._values[id(v)] = (v, t)
        return self._value(v)

    def _set_value(self, v: Variable, value) -> None:
        a = value if isinstance(value, _tl.Tensor) else _tl.tensor(np.asarray(value))
        if tuple(a.shape) != tuple(v.shape):
            raise ValueError(f"Cannot assign a value of shape {tuple(a.shape)} to variable "
                             f"'{v.name}' of shape {v.shape}")
        e = self._values.get(id(v))
        if e is None:
            e = self._values[id(v)] = (v, _new_value(
                v.shape, v.dtype, requires_grad=not isinstance(v, _SlotVariable)))
        with _tl.no_grad():
            e[1].copy_(a.detach().astype(e[1].dtype))
        v._latest = e[1]

    def _reset_slots(self, variables, everything: bool) -> None:
        """Optimizer state of ``variables`` (and, with ``everything``, per-optimizer state
        such as ``beta1_power``) back to its initial fill."""
        ids = {id(v) for v in variables}
        with _tl.no_grad():
            for v, t in self._values.values():
                if isinstance(v, _SlotVariable) and (
                        (everything and v.primary is None) or id(v.primary) in ids):
                    t.fill_(v.fill)

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
            self._read(v)             # raises for an uninitialized variable
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
            try:
                outs = iter(entry.fn(*feeds))
            except Exception:
                if not entry.dynamic:
                    raise
                # an op whose shape rule refuses a None dim: one graph per feed shape
                entry = self._fns[key] = self._compile(fetches, dynamic=False)
                outs = iter(entry.fn(*feeds))
        return [None if isinstance(f, Operation) else _fetched(next(outs)) for f in fetches]

    def _compile(self, fetches: list, dynamic: bool = True) -> _Compiled:
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
        state = {v.name: self._read(v) for v in variables}
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
                    # a run that updates variables: the values its forward read (a fetch may
                    # be a variable, or a view or cast of one, that the update would change)
                    outs.append(v.clone() if clone else v)
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
        # evaluation fetches: the placeholders' None dims are the graph's dynamic dims, one
        # graph for every batch size (a training step is traced per shape by tl.function)
        signature = None
        if dynamic and not tape and not ops and all(p.shape is not None for p in placeholders):
            signature = [_tl.TensorSpec(p.shape, p.dtype) for p in placeholders] + [
                _tl.TensorSpec(r.shape, r.dtype) for r in randoms]
        return _Compiled(_tl.function(step, max_retraces=20, input_signature=signature),
                         placeholders, randoms, variables, tape, wrt, signature is not None)


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
    if isinstance(x, tuple) and hasattr(x, "_fields"):    # a namedtuple keeps its type
        return ("N", ([_flatten(v, out) for v in x], type(x)))
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
    if tag == "N":
        return body[1](*[_rebuild(v, values) for v in body[0]])
    seq = [_rebuild(v, values) for v in body]
    return seq if tag == "L" else tuple(seq)


class _Group(Operation):
    """``tf.group``: running it runs each member (in the same run)."""

    def __init__(self, members: list, name: str):
        super().__init__(lambda env: None, [], name)
        self.members = members


def get_default_session() -> Any:
    return _default_session[-1] if _default_session else None
