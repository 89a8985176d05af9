"""TF1-style graph programming on tensorlib: ``import tensorlib.compat.v1 as tf``.

A teaching bridge: the seed's graph-and-session code (``placeholder``,
``Variable``, ``Session.run(fetches, feed_dict)``, ``train.*Optimizer(...)
.minimize(loss)``) runs unchanged on tensorlib. Calls such as ``tf.matmul``
build a symbolic expression; ``Session.run`` compiles the expressions its
fetches need into a captured tensorlib graph (``tl.function``, one per set of
fetches and feed shapes) and replays it on later runs. Variables are eager
tensorlib tensors, so a graph's updates are visible to eager code.

Layouts follow TF1: images are NHWC and convolution filters HWIO.
"""
from __future__ import annotations

import builtins
import math
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

__all__ = ["Session", "InteractiveSession", "Tensor", "Variable", "placeholder", "constant",
           "zeros", "ones", "truncated_normal", "random_normal", "random_uniform", "matmul",
           "log", "exp", "sqrt", "square", "reduce_sum", "reduce_mean", "reduce_max", "argmax",
           "equal", "cast", "reshape", "transpose", "add", "multiply", "subtract", "nn",
           "train", "global_variables_initializer", "initialize_all_variables",
           "reset_default_graph", "float32", "float64", "int32", "int64"]


class _Graph:
    """The default graph: the variables created so far (for the initializer)."""

    def __init__(self):
        self.variables: list[Variable] = []
        self.counter = 0

    def unique(self, name: str) -> str:
        self.counter += 1
        return f"{name}_{self.counter}"


_graph = _Graph()
_default_session: list = []


def reset_default_graph() -> None:
    """Forget every variable and op created so far."""
    global _graph
    _graph = _Graph()


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
    """An op run for its effect (``train_step``, the initializer): ``sess.run(op)``."""

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


class Variable(Tensor):
    """State: an eager tensorlib tensor, set by the initializer, updated by train ops."""

    __slots__ = ("initial", "tensor", "initialized", "trainable")

    def __init__(self, initial_value, name: str | None = None, trainable: bool = True,
                 dtype=None):
        init = initial_value if isinstance(initial_value, Tensor) else constant(
            initial_value, dtype=dtype)
        value = _evaluate_eagerly(init)
        super().__init__(None, [], name or _graph.unique("Variable"), value.shape, value.dtype)
        self.initial = init
        self.tensor = _tl.zeros(value.shape, dtype=value.dtype)
        self.tensor.requires_grad_(trainable and value.dtype.kind == "f")
        self.initialized = False
        self.trainable = trainable
        _graph.variables.append(self)

    def assign(self, value) -> Operation:
        def run(env):
            with _tl.no_grad():
                self.tensor.copy_(env(value))
        return Operation(run, [value], _graph.unique("Assign"))

    def __hash__(self) -> int:
        return id(self)


def _evaluate_eagerly(t: Tensor):
    memo: dict = {}
    with _tl.no_grad():
        return _eval(t, memo, {}).detach()


def _variables_of(fetches) -> list[Variable]:
    seen: set[int] = set()
    out = []
    stack = list(fetches)
    while stack:
        t = stack.pop()
        if not isinstance(t, (Tensor, Operation)) or id(t) in seen:
            continue
        seen.add(id(t))
        if isinstance(t, Variable):
            out.append(t)
        stack.extend(t.inputs)
        if isinstance(t, Operation) and hasattr(t, "variables"):
            stack.extend(t.variables)
    return out


def _eval(t, memo: dict, feeds: dict):
    """The tensorlib value of a compat Tensor (memoised per run)."""
    if not isinstance(t, Tensor):
        return t
    v = memo.get(id(t))
    if v is not None:
        return v
    if isinstance(t, Variable):
        v = t.tensor
    elif isinstance(t, _Placeholder):
        if id(t) not in feeds:
            raise ValueError(f"You must feed a value for placeholder tensor '{t.name}' with "
                             f"dtype {t.dtype} and shape {t.shape}")
        v = feeds[id(t)]
    else:
        v = t.fn(*[_eval(i, memo, feeds) for i in t.inputs])
    memo[id(t)] = v
    return v


# --- sessions --------------------------------------------------------------------------------
def _get_session() -> Session:
    if not _default_session:
        raise ValueError("Cannot evaluate tensor using `eval()`/`run()`: no default session is "
                         "registered. Use `with sess.as_default()`, pass session=, or create a "
                         "tf.InteractiveSession()")
    return _default_session[-1]


class Session:
    """Runs fetches with feeds: ``sess.run(fetches, feed_dict={placeholder: value})``.

    ``fetches`` may be one Tensor/Operation, a list/tuple, or a dict of them; results come
    back in the same structure as NumPy values (None for operations).
    """

    def __init__(self, target: str = "", graph=None, config=None):
        self._fns: dict = {}
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

    def run(self, fetches, feed_dict: dict | None = None):
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        flat: list = []
        template = _flatten(fetches, flat)
        for f in flat:
            if not isinstance(f, (Tensor, Operation)):
                raise TypeError(f"Fetch argument {f!r} has invalid type {type(f).__name__}; "
                                "must be a tf Tensor or Operation")
        eager_ops = [f for f in flat if isinstance(f, Operation) and f.eager]
        for op in eager_ops:
            op.fn(None)
        graph_fetches = [f for f in flat if not (isinstance(f, Operation) and f.eager)]
        results = self._run_graph(graph_fetches, feed_dict or {}) if graph_fetches else []
        it = iter(results)
        values = [None if isinstance(f, Operation) else next(it) for f in graph_fetches]
        by_id = {id(f): v for f, v in zip(graph_fetches, values)}
        return _rebuild(template, [by_id.get(id(f)) for f in flat])

    def graph_for(self, fetches, feed_dict: dict | None = None):
        """The captured tensorlib Graph that ``run(fetches, feed_dict)`` replays."""
        flat: list = []
        _flatten(fetches, flat)
        self._run_graph(flat, feed_dict or {})
        fn = self._fns[self._key(flat)][0]
        return fn.graphs[-1]

    @staticmethod
    def _key(flat):
        return tuple(id(f) for f in flat)

    def _run_graph(self, fetches: list, feed_dict: dict):
        key = self._key(fetches)
        entry = self._fns.get(key)
        if entry is None:
            entry = self._fns[key] = self._compile(fetches)
        fn, placeholders, variables = entry
        for v in variables:
            if not v.initialized:
                raise RuntimeError(f"Attempting to use uninitialized value {v.name}: run "
                                   "tf.global_variables_initializer() first")
        by_id = {}
        for k, val in feed_dict.items():
            if not isinstance(k, _Placeholder):
                raise TypeError(f"feed_dict keys must be placeholders, got {k!r}")
            by_id[id(k)] = (k, val)
        feeds = []
        for p in placeholders:
            if id(p) not in by_id:
                raise ValueError(f"You must feed a value for placeholder tensor '{p.name}' "
                                 f"with dtype {p.dtype} and shape {p.shape}")
            feeds.append(_feed_tensor(p, by_id[id(p)][1]))
        outs = fn(*feeds)
        return [None if o is None else o.numpy() for o in outs]

    def _compile(self, fetches: list):
        placeholders = _placeholders_of(fetches)
        variables = _variables_of(fetches)
        train = any(isinstance(f, Operation) for f in fetches)
        fetch_tuple = tuple(fetches)
        pids = [id(p) for p in placeholders]

        def step(*feeds):
            memo: dict = {}
            env_feeds = dict(zip(pids, feeds))
            outs = []
            with _tl.set_grad_enabled(train):
                for f in fetch_tuple:
                    if isinstance(f, Tensor):
                        outs.append(_eval(f, memo, env_feeds).detach())
                    else:
                        outs.append(None)
                for f in fetch_tuple:
                    if isinstance(f, Operation):
                        f.fn(lambda t: _eval(t, memo, env_feeds))
            return outs

        step.__name__ = "session_run"
        return _tl.function(step, max_retraces=20), placeholders, variables


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


def _placeholders_of(fetches) -> list[_Placeholder]:
    seen: set[int] = set()
    out = []
    stack = list(reversed(fetches))
    while stack:
        t = stack.pop()
        if not isinstance(t, (Tensor, Operation)) or id(t) in seen:
            continue
        seen.add(id(t))
        if isinstance(t, _Placeholder):
            out.append(t)
        stack.extend(reversed(t.inputs))
    return out


def _feed_tensor(p: _Placeholder, value):
    a = value.numpy() if isinstance(value, _tl.Tensor) else value
    a = np.ascontiguousarray(np.asarray(a, dtype=p.dtype))
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


# --- initializers ------------------------------------------------------------------------------
def global_variables_initializer() -> Operation:
    """An op that sets every variable created so far to its initial value."""
    variables = list(_graph.variables)

    def run(_env):
        for v in variables:
            value = _evaluate_eagerly(v.initial)
            with _tl.no_grad():
                v.tensor.copy_(value.astype(v.tensor.dtype))
            v.initialized = True
    return Operation(run, [], _graph.unique("init"), eager=True)


initialize_all_variables = global_variables_initializer


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
    s = _shape_arg(shape)
    return _op(lambda: _tl.randn(*s, dtype=dtype) * stddev + mean, [],
               name or "random_normal", s, dtype)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None,
                     name: str | None = None) -> Tensor:
    """Normal draws, redrawn while more than two standard deviations from the mean."""
    s = _shape_arg(shape)

    def fn():
        z = _tl.randn(*s, dtype=float64)
        bad = z.abs() > 2.0
        while _pybool(bad.any()):
            z = _tl.where(bad, _tl.randn(*s, dtype=float64), z)
            bad = z.abs() > 2.0
        return (z * stddev + mean).astype(dtype)
    return _op(fn, [], name or "truncated_normal", s, dtype)


def random_uniform(shape, minval=0.0, maxval=1.0, dtype=float32, seed=None,
                   name: str | None = None) -> Tensor:
    s = _shape_arg(shape)
    return _op(lambda: _tl.uniform(minval, maxval, s, dtype=dtype), [], name or "random_uniform",
               s, dtype)


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


def _axis(axis, reduction_indices):
    a = axis if axis is not None else reduction_indices
    if isinstance(a, list):
        a = tuple(a)
    return a


def reduce_sum(x, axis=None, keepdims=False, name=None, reduction_indices=None,
               keep_dims=None) -> Tensor:
    ax = _axis(axis, reduction_indices)
    kd = _pybool(keep_dims if keep_dims is not None else keepdims)
    return _op(lambda v: v.sum(axis=ax, keepdims=kd), [x], name or "Sum")


def reduce_mean(x, axis=None, keepdims=False, name=None, reduction_indices=None,
                keep_dims=None) -> Tensor:
    ax = _axis(axis, reduction_indices)
    kd = _pybool(keep_dims if keep_dims is not None else keepdims)
    return _op(lambda v: v.astype(np.float32).mean(axis=ax, keepdims=kd)
               if v.dtype.kind != "f" else v.mean(axis=ax, keepdims=kd), [x], name or "Mean")


def reduce_max(x, axis=None, keepdims=False, name=None, reduction_indices=None) -> Tensor:
    ax = _axis(axis, reduction_indices)
    return _op(lambda v: v.max(axis=ax, keepdims=keepdims), [x], name or "Max")


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
        and scale kept ones by 1 / keep_prob; the draw is redone on every run."""
        if keep_prob is None:
            keep_prob = 1.0 - rate

        def fn(v, kp):
            kp = kp if isinstance(kp, _tl.Tensor) else _tl.tensor(float(kp))
            kp = kp.astype(v.dtype)
            mask = (_tl.rand(*v.shape, dtype=v.dtype) < kp).astype(v.dtype)
            return v * mask / kp
        return _op(fn, [x, keep_prob], name or "dropout")


nn = _NN()


# --- training ------------------------------------------------------------------------------
class _Optimizer:
    def minimize(self, loss: Tensor, var_list=None, name: str | None = None) -> Operation:
        variables = list(var_list) if var_list is not None else None
        opt = self

        def run(env):
            vs = variables if variables is not None else [
                v for v in _variables_of([loss]) if v.trainable and v.tensor.requires_grad]
            value = env(loss)
            grads = _tl.grad(value, [v.tensor for v in vs], allow_unused=True)
            with _tl.no_grad():
                for v, g in zip(vs, grads):
                    if g is not None:
                        opt._apply(v, g)
        op = Operation(run, [loss], name or _graph.unique(type(self).__name__))
        return op


class _Train:
    class GradientDescentOptimizer(_Optimizer):
        """``var -= learning_rate * grad``."""

        def __init__(self, learning_rate: float, use_locking: bool = False,
                     name: str = "GradientDescent"):
            self.lr = float(learning_rate)

        def _apply(self, v: Variable, g) -> None:
            v.tensor.sub_(self.lr * g)

    class AdamOptimizer(_Optimizer):
        """Adam as in TF1 (epsilon added to sqrt(v), bias correction in the step size).
        Its state (step count, moments) is held in tensors, so a captured training step
        replays without retracing."""

        def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9,
                     beta2: float = 0.999, epsilon: float = 1e-8, use_locking: bool = False,
                     name: str = "Adam"):
            self.lr, self.b1, self.b2, self.eps = float(learning_rate), beta1, beta2, epsilon
            self.state: dict[int, tuple] = {}
            self.t = _tl.zeros((), dtype=float32)

        def _apply(self, v: Variable, g) -> None:
            st = self.state.get(id(v))
            if st is None:
                st = self.state[id(v)] = (_tl.zeros_like(v.tensor), _tl.zeros_like(v.tensor))
            m, s = st
            m.mul_(self.b1)
            m.add_((1.0 - self.b1) * g)
            s.mul_(self.b2)
            s.add_((1.0 - self.b2) * g * g)
            t = self.t + 1.0
            lr_t = self.lr * (1.0 - _tl.power(self.b2, t)).sqrt() / (1.0 - _tl.power(self.b1, t))
            v.tensor.sub_(lr_t * m / (s.sqrt() + self.eps))

        def minimize(self, loss, var_list=None, name=None) -> Operation:
            op = super().minimize(loss, var_list, name)
            inner = op.fn

            def run(env):
                inner(env)
                with _tl.no_grad():
                    self.t.add_(1.0)
            op.fn = run
            return op


train = _Train()


def get_default_session() -> Any:
    return _default_session[-1] if _default_session else None


globals()["bool"] = np.dtype(np.bool_)   # tf.bool (set last: the module uses builtins.bool)
