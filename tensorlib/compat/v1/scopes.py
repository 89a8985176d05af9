"""Scopes: ``name_scope``, ``variable_scope``/``get_variable`` (reuse, ``AUTO_REUSE``),
``control_dependencies``, and the initializers ``get_variable`` takes."""
from __future__ import annotations

import contextlib
import math

import numpy as np

from . import graph
from .dtypes import float32
from .ops import constant, random_normal, random_uniform, truncated_normal
from .tensor import _as_dtype

AUTO_REUSE = "AUTO_REUSE"


@contextlib.contextmanager
def name_scope(name, default_name=None, values=None):
    """Ops and ``tf.Variable``s made inside are named ``name/...`` (``get_variable`` uses
    variable scopes only, as TF1)."""
    name = name or default_name
    g = graph._graph
    if name:
        g.name_stack.append(str(name).rstrip("/"))
    try:
        yield "/".join(g.name_stack) + "/" if g.name_stack else ""
    finally:
        if name:
            g.name_stack.pop()


class _Scope:
    """What ``variable_scope`` yields: its name, reuse mode and default initializer."""

    def __init__(self, name: str, reuse, initializer):
        self.name, self.reuse, self.initializer = name, reuse, initializer

    def reuse_variables(self) -> None:
        self.reuse = True


@contextlib.contextmanager
def variable_scope(name_or_scope, default_name=None, values=None, initializer=None,
                   reuse=None, dtype=None, **_ignored):
    """A scope for ``get_variable`` names (``scope/w``) and, as in TF1, a name scope for
    ops. ``reuse=True`` gets existing variables (a missing one raises), ``AUTO_REUSE``
    gets or creates, otherwise creating an existing name raises. Nested scopes inherit
    reuse and initializer."""
    g = graph._graph
    parent = g.var_scopes[-1] if g.var_scopes else None
    base = name_or_scope.name.split("/")[-1] if isinstance(name_or_scope, _Scope) \
        else (name_or_scope or default_name)
    full = "/".join(([parent.name] if parent else []) + [str(base)])
    if reuse is None or reuse is False:
        reuse = parent.reuse if parent else None
    if isinstance(name_or_scope, _Scope) and reuse is None:
        reuse = name_or_scope.reuse
    init = initializer or (parent.initializer if parent else None)
    scope = _Scope(full, reuse, init)
    g.var_scopes.append(scope)
    g.name_stack.append(str(base))
    try:
        yield scope
    finally:
        g.name_stack.pop()
        g.var_scopes.pop()


def get_variable_scope() -> _Scope:
    g = graph._graph
    return g.var_scopes[-1] if g.var_scopes else _Scope("", None, None)


def get_variable(name: str, shape=None, dtype=None, initializer=None, regularizer=None,
                 trainable: bool = True, collections=None, **_ignored):
    """The variable ``scope/name``: created (``initializer``, else the scope's, else
    Glorot uniform for floats and zeros otherwise, as TF1), or with ``reuse`` the existing
    one (whose shape must match)."""
    from .variables import Variable
    g = graph._graph
    scope = g.var_scopes[-1] if g.var_scopes else None
    full = f"{scope.name}/{name}" if scope and scope.name else name
    reuse = scope.reuse if scope else None
    found = g.var_store.get(full)
    if found is not None:
        if reuse is None or reuse is False:
            raise ValueError(f"get_variable: Variable {full} already exists, disallowed. Did "
                             "you mean to set reuse=True or reuse=tf.AUTO_REUSE in VarScope?")
        if shape is not None and tuple(int(s) for s in shape) != tuple(found.shape):
            raise ValueError(f"get_variable: Trying to share variable {full}, but specified "
                             f"shape {tuple(shape)} and found shape {found.shape}.")
        return found
    if reuse is True:
        raise ValueError(f"get_variable: Variable {full} does not exist, or was not created "
                         "with tf.get_variable(). Did you mean to set reuse=tf.AUTO_REUSE "
                         "in VarScope?")
    dt = _as_dtype(dtype) or float32
    init = initializer or (scope.initializer if scope else None)
    if init is None:
        init = glorot_uniform_initializer() if dt.kind == "f" else zeros_initializer()
    if callable(init):
        if shape is None:
            raise ValueError(f"get_variable: the shape of new variable {full} must be given")
        value = init(tuple(int(s) for s in shape), dtype=dt)
    else:
        value = constant(init, dtype=dt)
    v = Variable(value, trainable=trainable, dtype=dt, _full_name=full)
    if v.name != full:
        raise ValueError(f"get_variable: the name {full} is taken by a tf.Variable")
    g.var_store[full] = v
    return v


@contextlib.contextmanager
def control_dependencies(control_inputs):
    """Ops and tensors made inside run ``control_inputs`` in every run that fetches them.
    (A run reads its values before any op updates a variable, so "before" holds for the
    updates of train ops and assigns, not for reads made in the same run.)"""
    g = graph._graph
    g.control.append([c for c in (control_inputs or []) if c is not None])
    try:
        yield
    finally:
        g.control.pop()


# --- initializers: callables (shape, dtype) -> a compat Tensor ---------------------------
def zeros_initializer(dtype=float32):
    return lambda shape, dtype=dtype, **_: constant(np.zeros(shape, _as_dtype(dtype)))


def ones_initializer(dtype=float32):
    return lambda shape, dtype=dtype, **_: constant(np.ones(shape, _as_dtype(dtype)))


def constant_initializer(value=0, dtype=float32):
    def init(shape, dtype=dtype, **_):
        return constant(np.broadcast_to(np.asarray(value, _as_dtype(dtype)), shape).copy())
    return init


def random_normal_initializer(mean=0.0, stddev=1.0, seed=None, dtype=float32):
    return lambda shape, dtype=dtype, **_: random_normal(shape, mean, stddev, dtype, seed)


def truncated_normal_initializer(mean=0.0, stddev=1.0, seed=None, dtype=float32):
    return lambda shape, dtype=dtype, **_: truncated_normal(shape, mean, stddev, dtype, seed)


def random_uniform_initializer(minval=0.0, maxval=None, seed=None, dtype=float32):
    return lambda shape, dtype=dtype, **_: random_uniform(shape, minval, maxval, dtype, seed)


def glorot_uniform_initializer(seed=None, dtype=float32):
    """Uniform in +-sqrt(6 / (fan_in + fan_out)) (fans as TF1: receptive field times the
    last two dims)."""
    def init(shape, dtype=dtype, **_):
        shape = tuple(shape)
        rf = math.prod(shape[:-2]) if len(shape) > 2 else 1
        fan_in = shape[-2] * rf if len(shape) > 1 else (shape[0] if shape else 1)
        fan_out = shape[-1] * rf if shape else 1
        lim = math.sqrt(6.0 / max(fan_in + fan_out, 1))
        return random_uniform(shape, -lim, lim, dtype, seed)
    return init
