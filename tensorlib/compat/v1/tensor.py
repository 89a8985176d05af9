"""Symbolic values: Tensor (with its operators and the ops they build: add, subtract,
multiply, matmul), Operation, placeholders, random and gradient nodes, graph walking."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import tensorlib as _tl

from ... import _dtypes
from . import graph
from .graph import _get_session, _op_seeds


class Tensor:
    """A symbolic value: computed by ``Session.run`` (or ``.eval()``)."""

    __slots__ = ("fn", "inputs", "name", "shape", "dtype", "control", "__weakref__")
    # NumPy defers to our reflected operators: ``ndarray + tensor`` is one Tensor (as TF1)
    __array_priority__ = 100

    def __init__(self, fn, inputs: Sequence, name: str, shape=None, dtype=None):
        self.fn = fn
        self.inputs = list(inputs)
        self.name = name
        self.shape = None if shape is None else tuple(shape)
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.control = graph._graph.control_inputs()   # tf.control_dependencies

    def get_shape(self):
        """The static shape as a ``TensorShape`` (``.as_list()``; None for a dim that
        depends on a placeholder's None dim), inferred for op results."""
        from .shapes import static_shape
        return static_shape(self)

    def __bool__(self):
        raise TypeError("Using a tf.Tensor as a Python `bool` is not allowed: the value is "
                        f"known only when a Session runs '{self.name}'; use tf.cond/tf.where, "
                        "or sess.run the tensor and test the NumPy result")

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
        return _binary(_truediv, self, o, "truediv")

    def __rtruediv__(self, o):
        return _binary(_truediv, o, self, "truediv")

    def __floordiv__(self, o):
        return _binary(lambda a, b: a // b, self, o, "floordiv")

    def __rfloordiv__(self, o):
        return _binary(lambda a, b: a // b, o, self, "floordiv")

    def __mod__(self, o):
        return _binary(lambda a, b: a % b, self, o, "floormod")

    def __rmod__(self, o):
        return _binary(lambda a, b: a % b, o, self, "floormod")

    def __pow__(self, o):
        return _binary(lambda a, b: a ** b, self, o, "pow")

    def __rpow__(self, o):
        return _binary(lambda a, b: a ** b, o, self, "pow")

    def __lt__(self, o):
        return _binary(lambda a, b: a < b, self, o, "Less")

    def __le__(self, o):
        return _binary(lambda a, b: a <= b, self, o, "LessEqual")

    def __gt__(self, o):
        return _binary(lambda a, b: a > b, self, o, "Greater")

    def __ge__(self, o):
        return _binary(lambda a, b: a >= b, self, o, "GreaterEqual")

    def __abs__(self):
        return _op(lambda a: a.abs(), [self], "Abs", self.shape, self.dtype)

    def __neg__(self):
        return _op(lambda a: -a, [self], "neg", self.shape, self.dtype)

    def __matmul__(self, o):
        return matmul(self, o)

    def __getitem__(self, key):
        if isinstance(key, Tensor):       # x[idx] with a fed index
            return _op(lambda a, k: a[k], [self, key], "strided_slice")
        return _op(lambda a: a[key], [self], "strided_slice")


class Operation:
    """An op run for its effect (``train_step``, the initializer): ``sess.run(op)``.
    ``fn(env)`` does the work; ``env(t)`` gives a compat Tensor's value in the run."""

    def __init__(self, fn, inputs: Sequence, name: str, eager: bool = False):
        self.fn = fn
        self.inputs = list(inputs)
        self.name = name
        self.eager = eager
        self.control = graph._graph.control_inputs()   # tf.control_dependencies

    def run(self, feed_dict=None, session=None) -> None:
        (session or _get_session()).run(self, feed_dict)

    def __repr__(self) -> str:
        return f"<tf.Operation '{self.name}'>"


def _op(fn, inputs, name, shape=None, dtype=None) -> Tensor:
    return Tensor(fn, inputs, graph._graph.unique(name), shape, dtype)


def _as_dtype(dtype):
    return np.dtype(_dtypes.as_dtype(dtype)) if dtype is not None else None


class _Placeholder(Tensor):
    __slots__ = ()


def placeholder(dtype, shape=None, name: str | None = None) -> Tensor:
    """A value fed at run time through ``feed_dict``; ``None`` dims take any size."""
    return _Placeholder(None, [], name or graph._graph.unique("Placeholder"),
                        None if shape is None else tuple(shape), _as_dtype(dtype))


class _Random(Tensor):
    """A random op: ``fn(generator, *inputs)``. ``seeds`` is None (tensorlib's global
    generator) or (graph seed, op seed): the op's own stream, one per Session. A seeded op
    of fixed shape (``static``) is drawn outside the captured graph and fed to it."""

    __slots__ = ("seeds", "static")


def _random_op(fn, inputs, name, shape, dtype, seed, static) -> _Random:
    t = _Random(fn, inputs, graph._graph.unique(name), shape, dtype)
    t.seeds = _op_seeds(seed)
    t.static = static
    return t


class _GradBundle(Tensor):
    """The gradients of ``tf.gradients(ys, xs, grad_ys)``, all from one backward pass
    (``_grad_bundle``): ``inputs`` is ys + xs + grad_ys; the value is a tuple, one
    gradient per x."""

    __slots__ = ("n_ys", "n_xs")


def _python_array(x) -> np.ndarray:
    """TF1's conversion of Python data: floats become float32, ints int32 (int64 when they
    do not fit); NumPy arrays and scalars keep their dtype."""
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    a = np.asarray(x)
    if a.dtype == np.float64:
        return a.astype(np.float32)
    if a.dtype == np.int64 and (a.size == 0 or (np.abs(a).max() < 2 ** 31)):
        return a.astype(np.int32)
    return a


def _t(x):
    """A tensorlib tensor for a list/NumPy operand (Python scalars stay weak scalars)."""
    if isinstance(x, (list, tuple, np.ndarray, np.generic)):
        return _tl.tensor(_python_array(x))
    return x


def _pair(x, y):
    """TF1 converts a NumPy/list operand to the dtype of the tensor it meets (an int64
    tensor plus an int array stays int64, exact)."""
    arrays = (list, tuple, np.ndarray, np.generic)
    if isinstance(x, _tl.Tensor) and isinstance(y, arrays):
        return x, _tl.tensor(np.asarray(y, dtype=x.dtype))
    if isinstance(y, _tl.Tensor) and isinstance(x, arrays):
        return _tl.tensor(np.asarray(x, dtype=y.dtype)), y
    return _t(x), _t(y)


def _binary(f, a, b, name: str) -> Tensor:
    return _op(lambda x, y: f(*_pair(x, y)), [a, b], name)


def _truediv(a, b):
    return a / b


def add(a, b, name=None) -> Tensor:
    return _binary(lambda x, y: x + y, a, b, name or "add")


def subtract(a, b, name=None) -> Tensor:
    return _binary(lambda x, y: x - y, a, b, name or "sub")


def multiply(a, b, name=None) -> Tensor:
    return _binary(lambda x, y: x * y, a, b, name or "mul")


def matmul(a, b, transpose_a: bool = False, transpose_b: bool = False, name=None) -> Tensor:
    def fn(x, y):
        x = x.mT if transpose_a else x
        y = y.mT if transpose_b else y
        return x @ y
    return _op(fn, [a, b], name or "MatMul")


def _walk(fetches, stop=None):
    """Every Tensor and Operation the fetches depend on, each once (depth first); the
    inputs of a node of type ``stop`` are not followed."""
    seen: set[int] = set()
    stack = list(reversed(list(fetches)))
    while stack:
        t = stack.pop()
        if not isinstance(t, (Tensor, Operation)) or id(t) in seen:
            continue
        seen.add(id(t))
        yield t
        if stop is None or not isinstance(t, stop):
            stack.extend(reversed(t.inputs))
