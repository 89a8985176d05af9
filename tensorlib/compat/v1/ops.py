"""Ops that build symbolic Tensors: constants, random draws, math and reductions, casts and
reshapes, stop_gradient, and tf.gradients."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

import tensorlib as _tl

from . import graph
from .dtypes import _pybool, float32, float64
from .tensor import (Tensor, _as_dtype, _binary, _GradBundle, _op, _python_array, _random_op,
                     _t, _walk)

if TYPE_CHECKING:
    from .variables import _Env


def _shape_arg(shape):
    return tuple(int(s) for s in (shape if isinstance(shape, (list, tuple)) else [shape]))


def constant(value, dtype=None, shape=None, name: str | None = None) -> Tensor:
    """A fixed value. Without ``dtype``, as TF1: Python floats become float32 and Python
    ints int32, while a NumPy array keeps its dtype (float64 stays float64)."""
    dt = _as_dtype(dtype)
    a = _python_array(value) if dt is None else np.asarray(value, dtype=dt)
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


class _StopGradient(Tensor):
    __slots__ = ()


def stop_gradient(x, name=None) -> Tensor:
    """The value of ``x``, through which no gradient flows (``tf.gradients`` gives None
    for an x reached only through it, as TF1)."""
    return _StopGradient(lambda v: _t(v).detach(), [x], graph._graph.unique(name or "StopGradient"),
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
            v = _t(v)
            if method == "mean" and v.dtype.kind in "iu":
                # TF1: an integer mean stays an integer, truncated toward zero
                m = v.astype(float64).mean(axis=ax, keepdims=kd)
                return (m.abs().floor() * m.sign()).astype(v.dtype)
            if method == "mean" and v.dtype.kind == "b":
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
reduce_prod = _reduction("prod", "Prod")


def argmax(x, axis=None, name=None, dimension=None) -> Tensor:
    ax = axis if axis is not None else (dimension if dimension is not None else 0)
    return _op(lambda v: v.argmax(axis=ax), [x], name or "ArgMax")


def equal(a, b, name=None) -> Tensor:
    return _binary(lambda x, y: x == y, a, b, name or "Equal")


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
    upstream = {id(t) for t in _walk(ys, stop=_StopGradient)}
    wrt = [x for x in xs_list if isinstance(x, Tensor) and id(x) in upstream
           and (x.dtype is None or x.dtype.kind == "f")]
    if not wrt:
        return [None] * len(xs_list)
    bundle = _GradBundle(None, [*ys, *wrt, *gys], graph._graph.unique(name))
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
