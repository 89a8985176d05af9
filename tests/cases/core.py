"""Cases for the core ops: elementwise, reductions, linear algebra, shape, indexing."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.ops.fill import fill

from . import COVERED_ELSEWHERE, add, arr, broadcastable, shapes

_erf = np.vectorize(math.erf, otypes=[np.float64])


def unary_inputs(low=-2.0, high=2.0, away_from=None, min_dims=0):
    def inputs(draw):  # zero-size shapes included
        return [arr(draw, draw(shapes(min_dims=min_dims, min_side=0)), low, high, away_from)]
    return inputs


def binary_inputs(low=-2.0, high=2.0, b_low=None, b_high=None, away=None):
    def inputs(draw):
        sa = draw(shapes(min_side=0))
        sb = broadcastable(draw, sa)
        if draw(st.booleans()):
            sa, sb = sb, sa
        a = arr(draw, sa, low, high)
        b = arr(draw, sb, b_low if b_low is not None else low,
                b_high if b_high is not None else high)
        if away is not None:
            a, b = away(a, b)
        return [a, b]
    return inputs


def off_integers(draw, shape):
    base = arr(draw, shape, -3, 3)
    return np.floor(base) + 0.5 + 0.3 * (base - np.floor(base) - 0.5)


def sigmoid_ref(x):
    return 1 / (1 + np.exp(-x))


# --- unary ----------------------------------------------------------------------------
UNARY = [
    ("neg", tl.neg, np.negative, {}),
    ("abs", tl.abs, np.abs, {"away_from": 0.0}),
    ("exp", tl.exp, np.exp, {}),
    ("exp2", tl.exp2, np.exp2, {}),
    ("log", tl.log, np.log, {"low": 0.2, "high": 3.0}),
    ("log2", tl.log2, np.log2, {"low": 0.2, "high": 3.0}),
    ("log1p", tl.log1p, np.log1p, {"low": -0.5, "high": 3.0}),
    ("expm1", tl.expm1, np.expm1, {}),
    ("sqrt", tl.sqrt, np.sqrt, {"low": 0.2, "high": 3.0}),
    ("rsqrt", tl.rsqrt, lambda x: 1 / np.sqrt(x), {"low": 0.2, "high": 3.0}),
    ("square", tl.square, np.square, {}),
    ("reciprocal", tl.reciprocal, np.reciprocal, {"low": 0.3, "high": 3.0}),
    ("sin", tl.sin, np.sin, {}),
    ("cos", tl.cos, np.cos, {}),
    ("tan", tl.tan, np.tan, {"low": -1.2, "high": 1.2}),
    ("tanh", tl.tanh, np.tanh, {}),
    ("sigmoid", tl.sigmoid, sigmoid_ref, {"low": -6, "high": 6}),
    ("relu", tl.relu, lambda x: np.maximum(x, 0), {"away_from": 0.0}),
    ("erf", tl.erf, _erf, {}),
    ("silu", tl.silu, lambda x: x * sigmoid_ref(x), {}),
    ("asin", tl.asin, np.arcsin, {"low": -0.9, "high": 0.9}),
    ("acos", tl.acos, np.arccos, {"low": -0.9, "high": 0.9}),
    ("atan", tl.atan, np.arctan, {}),
    ("sinh", tl.sinh, np.sinh, {}),
    ("cosh", tl.cosh, np.cosh, {}),
    ("asinh", tl.asinh, np.arcsinh, {}),
    ("acosh", tl.acosh, np.arccosh, {"low": 1.2, "high": 3.0}),
    ("atanh", tl.atanh, np.arctanh, {"low": -0.9, "high": 0.9}),
]
for name, fn, ref, kw in UNARY:
    add(name, fn, unary_inputs(**kw), ref)

add("sign", tl.sign, unary_inputs(away_from=0.0), np.sign, gradgrad=False)
for name, fn, ref in [("floor", tl.floor, np.floor), ("ceil", tl.ceil, np.ceil),
                      ("round", tl.round, np.round), ("trunc", tl.trunc, np.trunc)]:
    add(name, fn, lambda draw: [off_integers(draw, draw(shapes()))], ref, gradgrad=False)

add("leaky_relu", lambda x: tl.leaky_relu(x, 0.2), unary_inputs(away_from=0.0),
    lambda x: np.where(x > 0, x, 0.2 * x))
add("elu", lambda x: tl.elu(x, 1.5), unary_inputs(away_from=0.0),
    lambda x: np.where(x > 0, x, 1.5 * np.expm1(x)))
add("gelu", tl.gelu, unary_inputs(), lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))))
add("gelu", lambda x: tl.gelu(x, approximate="tanh"), unary_inputs(),
    lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
    name="tanh")
add("softplus", lambda x: tl.softplus(x, beta=2.0, threshold=3.0), unary_inputs(-3, 3),
    lambda x: np.where(2 * x > 3, x, np.log1p(np.exp(2 * x)) / 2),
    extra={"note": "kink at the threshold is avoided by the draw range"})
add("clip", lambda x: tl.clip(x, -0.5, 0.7),
    lambda draw: [np.where(np.abs(np.abs(a := arr(draw, draw(shapes()))) - 0.6) < 0.15,
                           a * 1.5, a)], lambda x: np.clip(x, -0.5, 0.7))

for name, fn in [("isnan", tl.isnan), ("isinf", tl.isinf), ("isfinite", tl.isfinite)]:
    add(name, fn, lambda draw: [np.array([1.0, np.nan, np.inf, -np.inf, 0.0])],
        getattr(np, name), grad=False)
add("logical_not", tl.logical_not, lambda draw: [arr(draw, draw(shapes())) > 0],
    np.logical_not, grad=False)


# --- binary ---------------------------------------------------------------------------
def _away_equal(a, b):
    a = a + 0.0
    close = np.abs(a - b) < 0.1
    return np.where(close, a + 0.3, a), b


BINARY = [
    ("add", tl.add, np.add, {}),
    ("sub", tl.sub, np.subtract, {}),
    ("mul", tl.mul, np.multiply, {}),
    ("div", tl.div, np.divide, {"b_low": 0.5, "b_high": 2.0}),
    ("pow", tl.pow, np.power, {"low": 0.3, "high": 2.0}),
    ("maximum", tl.maximum, np.maximum, {"away": _away_equal}),
    ("minimum", tl.minimum, np.minimum, {"away": _away_equal}),
    ("logaddexp", tl.logaddexp, np.logaddexp, {}),
    ("hypot", tl.hypot, np.hypot, {"low": 0.2, "high": 2.0}),
]
for name, fn, ref, kw in BINARY:
    add(name, fn, binary_inputs(**kw), ref)
# atan2 in every quadrant, away from the origin (where it has no derivative)
add("atan2", tl.atan2, binary_inputs(away=lambda y, x: (y, np.where(np.abs(x) < 0.2, x + 0.5,
                                                                     x))), np.arctan2)
add("floordiv", tl.floor_divide, binary_inputs(0.2, 3.0, 0.7, 1.3,
                                               away=lambda a, b: (a + 0.0, b)),
    np.floor_divide, gradgrad=False,
    extra={"note": "piecewise constant: zero gradient away from jumps"})
add("floordiv", tl.floor_divide, lambda draw: [np.arange(-5, 6), np.array([3])],
    np.floor_divide, grad=False, name="int")


def _mod_inputs(draw):
    s = draw(shapes())
    a = off_integers(draw, s) * 1.0
    return [a, np.ones(()) * 1.0]


add("mod", tl.mod, _mod_inputs, np.mod)
add("fmod", tl.fmod, _mod_inputs, np.fmod)
add("pow", lambda a: a ** 3, unary_inputs(), lambda a: a ** 3, name="int-exponent")

for name, fn, ref in [("eq", tl.eq, np.equal), ("ne", tl.ne, np.not_equal),
                      ("lt", tl.lt, np.less), ("le", tl.le, np.less_equal),
                      ("gt", tl.gt, np.greater), ("ge", tl.ge, np.greater_equal)]:
    add(name, fn, lambda draw: [np.round(a := arr(draw, (3, 4))), np.round(a[::-1])], ref,
        grad=False)
for name, fn, ref in [("logical_and", tl.logical_and, np.logical_and),
                      ("logical_or", tl.logical_or, np.logical_or),
                      ("logical_xor", tl.logical_xor, np.logical_xor)]:
    add(name, fn, lambda draw: [arr(draw, (2, 3)) > 0, arr(draw, (3,)) > 0], ref, grad=False)


def _int_inputs(low, high, b_low, b_high, dtype=np.int64):
    def inputs(draw):
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        sa = draw(shapes(min_side=0))
        sb = broadcastable(draw, sa)
        return [rng.integers(low, high, sa).astype(dtype),
                rng.integers(b_low, b_high, sb).astype(dtype)]
    return inputs


for name, fn, ref in [("bitwise_and", tl.bitwise_and, np.bitwise_and),
                      ("bitwise_or", tl.bitwise_or, np.bitwise_or),
                      ("bitwise_xor", tl.bitwise_xor, np.bitwise_xor)]:
    add(name, fn, _int_inputs(-100, 100, -100, 100), ref, grad=False)
    add(name, fn, lambda draw: [arr(draw, (2, 3)) > 0, arr(draw, (3,)) > 0], ref, grad=False,
        name="bool")
add("bitwise_not", tl.bitwise_not, lambda draw: [_int_inputs(-100, 100, 0, 1)(draw)[0]],
    np.invert, grad=False)
add("bitwise_not", tl.bitwise_not, lambda draw: [arr(draw, (2, 3)) > 0], np.invert,
    grad=False, name="bool")
for name, fn, ref in [("left_shift", tl.left_shift, np.left_shift),
                      ("right_shift", tl.right_shift, np.right_shift)]:
    add(name, fn, _int_inputs(-1000, 1000, 0, 8), ref, grad=False)
    add(name, fn, _int_inputs(0, 32, 0, 3, np.uint8), ref, grad=False, name="unsigned")


add("fill", lambda a: fill(a, (2, a.shape[0], 3), 1.5, dims=[(1, 0)]),
    lambda draw: [arr(draw, draw(shapes(min_dims=1, min_side=0)))],
    lambda a: np.full((2, a.shape[0], 3), 1.5, a.dtype), grad=False)


def _where_inputs(draw):
    s = draw(shapes())
    return [arr(draw, s) > 0, arr(draw, broadcastable(draw, s)), arr(draw, s)]


add("where", tl.where, _where_inputs, np.where)


# --- reductions -------------------------------------------------------------------------
def axis_inputs(low=-2.0, high=2.0, min_dims=1, distinct=False, min_side=1):
    def inputs(draw):
        s = draw(shapes(min_dims=min_dims, min_side=min_side))
        a = arr(draw, s, low, high)
        if distinct and a.size:
            # distinct values so max/min have no ties (finite differences need that)
            perm = np.random.default_rng(draw(st.integers(0, 1000))).permutation(a.size)
            a = (perm.reshape(a.shape) * 0.37 - a.size * 0.15).astype(a.dtype)
        return [a]
    return inputs


def axis_strategy(draw, nd):
    choice = draw(st.sampled_from(["none", "int", "tuple"]))
    if choice == "none" or nd == 0:
        return None
    if choice == "int":
        return draw(st.integers(-nd, nd - 1))
    return tuple(sorted(draw(st.sets(st.integers(0, nd - 1), min_size=1, max_size=nd))))


def reduction_case(name, fn, ref, **kw):
    def inputs(draw):
        xs = axis_inputs(**kw)(draw)
        return xs, {"axis": axis_strategy(draw, xs[0].ndim), "keepdims": draw(st.booleans())}
    add(name, fn, inputs, ref)


reduction_case("sum", tl.sum, np.sum)
reduction_case("mean", tl.mean, np.mean)
reduction_case("prod", tl.prod, np.prod)
reduction_case("max", tl.max, np.max, distinct=True)
reduction_case("min", tl.min, np.min, distinct=True)
reduction_case("logsumexp", tl.logsumexp,
               lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)))
reduction_case("var", tl.var, lambda x, axis, keepdims: np.var(x, axis=axis, keepdims=keepdims,
                                                               ddof=1), min_side=2)
reduction_case("std", tl.std, lambda x, axis, keepdims: np.std(x, axis=axis, keepdims=keepdims,
                                                               ddof=1), min_side=2)
add("var", lambda x: tl.var(x, axis=1, correction=0), lambda draw: [arr(draw, (3, 4))],
    lambda x: np.var(x, axis=1), name="correction0")
add("std", lambda x: tl.std(x, axis=0, correction=0, keepdims=True),
    lambda draw: [arr(draw, (3, 4))], lambda x: np.std(x, axis=0, keepdims=True),
    name="correction0")
add("norm", lambda x: tl.norm(x, axis=-1), lambda draw: [arr(draw, (3, 4))],
    lambda x: np.linalg.norm(x, axis=-1))
add("norm", lambda x: tl.norm(x, ord=1, axis=0), lambda draw: [arr(draw, (3, 4), away_from=0.0)],
    lambda x: np.linalg.norm(x, ord=1, axis=0), name="l1")
add("norm", lambda x: tl.norm(x, ord=3), lambda draw: [arr(draw, (5,), away_from=0.0)],
    lambda x: np.linalg.norm(x, ord=3), name="p3")
add("norm", lambda x: tl.norm(x, ord=math.inf, axis=1), axis_inputs(min_dims=2, distinct=True),
    lambda x: np.max(np.abs(x), axis=1), name="inf")
add("prod", lambda x: tl.prod(x, axis=1),
    lambda draw: [np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0], [1.5, 2.0, -1.0]])],
    lambda x: np.prod(x, axis=1), name="zeros")
add("argmax", lambda x: tl.argmax(x, axis=-1), axis_inputs(distinct=True),
    lambda x: np.argmax(x, axis=-1), grad=False)
add("argmin", lambda x: tl.argmin(x), axis_inputs(distinct=True), np.argmin, grad=False)
add("all", lambda x: tl.all(x > 0, axis=0), axis_inputs(), lambda x: np.all(x > 0, axis=0),
    grad=False)
add("any", lambda x: tl.any(x > 0, axis=-1, keepdims=True), axis_inputs(),
    lambda x: np.any(x > 0, axis=-1, keepdims=True), grad=False)


def scan_inputs(draw):
    s = draw(shapes(min_dims=1))
    return [arr(draw, s)], {"axis": draw(st.integers(-len(s), len(s) - 1))}


add("cumsum", tl.cumsum, scan_inputs, np.cumsum)
add("cumprod", tl.cumprod, scan_inputs, np.cumprod)
add("cumprod", lambda x: tl.cumprod(x, 0), lambda draw: [np.array([2.0, 0.0, 3.0, 0.5])],
    lambda x: np.cumprod(x, 0), name="zeros")


# --- linear algebra ----------------------------------------------------------------------
def matmul_inputs(draw):
    kind = draw(st.sampled_from(["11", "12", "21", "22", "batched", "broadcast"]))
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    b = draw(st.integers(1, 3))
    sa, sb = {"11": ((k,), (k,)), "12": ((k,), (k, n)), "21": ((m, k), (k,)),
              "22": ((m, k), (k, n)), "batched": ((b, m, k), (b, k, n)),
              "broadcast": ((b, 1, m, k), (2, k, n))}[kind]
    return [arr(draw, sa), arr(draw, sb)]


add("matmul", tl.matmul, matmul_inputs, np.matmul)
add("dot", tl.dot, lambda draw: [arr(draw, (4,)), arr(draw, (4,))], np.dot)
add("outer", tl.outer, lambda draw: [arr(draw, (3,)), arr(draw, (4,))], np.outer)
add("einsum", lambda a, b: tl.einsum("bij,bjk->bik", a, b),
    lambda draw: [arr(draw, (2, 3, 4)), arr(draw, (2, 4, 2))],
    lambda a, b: np.einsum("bij,bjk->bik", a, b))
add("einsum", lambda a, b: tl.einsum("ij,k->ik", a, b),
    lambda draw: [arr(draw, (2, 3)), arr(draw, (4,))],
    lambda a, b: np.einsum("ij,k->ik", a, b), name="sum-only-in-one")
add("einsum", lambda a: tl.einsum("...ij->...ji", a), lambda draw: [arr(draw, (2, 3, 4))],
    lambda a: np.einsum("...ij->...ji", a), name="ellipsis")
add("tensordot", lambda a, b: tl.tensordot(a, b, axes=([1, 2], [0, 1])),
    lambda draw: [arr(draw, (2, 3, 4)), arr(draw, (3, 4, 5))],
    lambda a, b: np.tensordot(a, b, axes=([1, 2], [0, 1])))


# --- shape ------------------------------------------------------------------------------
def one(shape):
    return lambda draw: [arr(draw, shape)]


add("reshape", lambda x: x.reshape(4, -1), one((2, 3, 2)), lambda x: x.reshape(4, -1))
add("reshape", lambda x: tl.flatten(x, 1), one((2, 3, 2)), lambda x: x.reshape(2, 6),
    name="flatten")
add("squeeze", lambda x: x.squeeze(), one((1, 3, 1, 2)), np.squeeze)
add("squeeze", lambda x: x.squeeze(axis=2), one((1, 3, 1, 2)), lambda x: np.squeeze(x, 2),
    name="axis")
add("expand_dims", lambda x: x.unsqueeze(-1), one((2, 3)), lambda x: x[..., None])
add("transpose", lambda x: x.permute(2, 0, 1), one((2, 3, 4)),
    lambda x: np.transpose(x, (2, 0, 1)))
add("transpose", lambda x: x.T, one((2, 3)), lambda x: x.T, name="T")
add("transpose", lambda x: x.swapaxes(0, -1), one((2, 3, 4)),
    lambda x: np.swapaxes(x, 0, -1), name="swapaxes")
add("broadcast_to", lambda x: x.broadcast_to((2, 3, 4)), one((3, 1)),
    lambda x: np.broadcast_to(x, (2, 3, 4)))
add("broadcast_to", lambda x: x.expand(2, -1, 4), one((3, 1)),
    lambda x: np.broadcast_to(x, (2, 3, 4)), name="expand")
add("concatenate", lambda a, b: tl.concatenate([a, b], axis=1),
    lambda draw: [arr(draw, (2, 3)), arr(draw, (2, 1))], lambda a, b: np.concatenate([a, b], 1))
add("stack", lambda a, b: tl.stack([a, b], axis=-1),
    lambda draw: [arr(draw, (2, 3)), arr(draw, (2, 3))], lambda a, b: np.stack([a, b], -1))
add("unbind", lambda x: tl.unbind(x, 1), one((2, 3, 4)),
    lambda x: tuple(np.moveaxis(x, 1, 0)))
add("unbind", lambda x: tl.unbind(x, -1)[2] * tl.unbind(x, 0)[1][2], one((3, 3)),
    lambda x: x[:, 2] * x[1, 2], name="some_outputs")
add("unbind", lambda x: tl.unbind(x, 0)[0], one((1, 3)), lambda x: x[0], name="one_output")
add("split", lambda x: tl.split(x, [1, 3], axis=1), one((2, 5)),
    lambda x: tuple(np.split(x, [1, 3], axis=1)))
add("split", lambda x: tl.chunk(x, 3, axis=0), one((5, 2)),
    lambda x: tuple(np.split(x, [2, 4], axis=0)), name="chunk")
add("split", lambda x: tl.split(x, [1, 3], axis=1)[1], one((2, 5)),
    lambda x: np.split(x, [1, 3], axis=1)[1], name="one-output-used")
for mode in ("constant", "reflect", "edge"):
    add("pad", lambda x, mode=mode: tl.pad(x, ((1, 2), (2, 1)), mode=mode), one((3, 4)),
        lambda x, mode=mode: np.pad(x, ((1, 2), (2, 1)), mode=mode), name=mode)


def _pad_adjoint(g, widths, mode):
    """The transpose of np.pad's Jacobian applied to ``g``: the reference for pad_grad."""
    shape = tuple(n - b - a for n, (b, a) in zip(g.shape, widths))
    out = np.zeros(shape, g.dtype)
    for i in np.ndindex(*shape):
        e = np.zeros(shape, g.dtype)
        e[i] = 1
        out[i] = (np.pad(e, widths, mode=mode) * g).sum()
    return out


# the first two: the planes kernel (pads of the last two axes); the next: NumPy slices
for mode in ("reflect", "edge"):
    for widths, shape in ((((1, 2), (2, 1)), (6, 7)), (((0, 0), (0, 0), (2, 3)), (2, 1, 9)),
                          (((1, 1), (0, 0), (2, 0)), (5, 2, 5)), (((3, 1),), (8,))):
        add("pad_grad", lambda g, mode=mode, w=widths: tl.apply(
                tl.REGISTRY["pad_grad"], g, pad_width=w, mode=mode),
            one(shape), lambda g, mode=mode, w=widths: _pad_adjoint(g, w, mode),
            name=f"{mode}-{widths}")
    add("pad", lambda x, mode=mode: tl.pad(x, ((0, 0), (3, 3), (1, 0)), mode=mode),
        one((2, 4, 3)), lambda x, mode=mode: np.pad(x, ((0, 0), (3, 3), (1, 0)), mode=mode),
        name=f"{mode}-3d-widest")
    add("pad", lambda x, mode=mode: tl.pad(x, ((2, 1), (0, 0), (1, 3)), mode=mode),
        one((3, 2, 4)), lambda x, mode=mode: np.pad(x, ((2, 1), (0, 0), (1, 3)), mode=mode),
        name=f"{mode}-3d-first-axis")
    add("pad", lambda x, mode=mode: tl.pad(x, (2, 1), mode=mode), one((4,)),
        lambda x, mode=mode: np.pad(x, (2, 1), mode=mode), name=f"{mode}-1d")
add("flip", lambda x: x.flip((0, 2)), one((2, 3, 4)), lambda x: np.flip(x, (0, 2)))
add("roll", lambda x: x.roll(2, 1), one((2, 5)), lambda x: np.roll(x, 2, 1))
add("roll", lambda x: x.roll((1, -1), (0, 1)), one((2, 5)),
    lambda x: np.roll(x, (1, -1), (0, 1)), name="multi")
add("repeat", lambda x: x.repeat(3, axis=1), one((2, 3)), lambda x: np.repeat(x, 3, 1))
add("repeat", lambda x: tl.repeat(x, 2), one((2, 3)), lambda x: np.repeat(x, 2), name="flat")
add("tile", lambda x: x.tile((2, 1, 3)), one((2, 3)), lambda x: np.tile(x, (2, 1, 3)))
add("tril", lambda x: x.tril(-1), one((2, 4, 4)), lambda x: np.tril(x, -1))
add("triu", lambda x: x.triu(1), one((3, 5)), lambda x: np.triu(x, 1))
add("cast", lambda x: x.astype(tl.float32).astype(tl.float64) * 2, one((3,)),
    lambda x: x.astype(np.float32).astype(np.float64) * 2, atol=1e-4, rtol=1e-4,
    gradgrad=False, extra={"eps": 1e-2})
add("copy", tl.clone, one((2, 3)), lambda x: x.copy())
add("to_device", lambda x: tl.to_device(tl.to_device(x, "cpu:1") * 2, "cpu"), one((2, 3)),
    lambda x: x * 2)


# --- indexing ---------------------------------------------------------------------------
add("slice", lambda x: x[1:, ::2, None, ..., -1], one((3, 4, 5)),
    lambda x: x[1:, ::2, None, ..., -1])
add("getitem", lambda x: x[[0, 2, 0], 1:], one((3, 4)), lambda x: x[[0, 2, 0], 1:])
add("getitem", lambda x: x[x > 0.5], one((3, 4)), lambda x: x[x > 0.5], name="bool")
add("getitem", lambda x, i: x[:, i], lambda draw: [arr(draw, (3, 4)), np.array([3, 0, 3])],
    lambda x, i: x[:, i], name="tensor-index")
COVERED_ELSEWHERE["getitem_grad"] = "the gradient op of slice/getitem: their gradgradchecks"


def _setitem(x, v):
    y = x * 1.0
    y[1:, 0] = v
    return y


add("setitem", _setitem, lambda draw: [arr(draw, (3, 4)), arr(draw, (2,))],
    lambda x, v: np.concatenate([x[:1], np.concatenate([v[:, None], x[1:, 1:]], 1)], 0))
add("setitem", lambda x, v: tl.setitem(x, (slice(None), [0, 2]), v),
    lambda draw: [arr(draw, (3, 4)), arr(draw, (1,))],
    lambda x, v: np.where(np.isin(np.arange(4), [0, 2])[None, :], v, x), name="functional")


def _gather_inputs(draw):
    idx = np.random.default_rng(draw(st.integers(0, 99))).integers(0, 4, size=(3, 2))
    return [arr(draw, (3, 4)), idx]


add("take_along_axis", lambda x, i: tl.take_along_axis(x, i, 1), _gather_inputs,
    lambda x, i: np.take_along_axis(x, i, 1))


def _scatter_ref(x, i, s):
    out = x.copy()
    for r in range(i.shape[0]):
        for c in range(i.shape[1]):
            out[r, i[r, c]] += s[r, c]
    return out


add("scatter_add", lambda x, i, s: tl.scatter_add(x, i, s, 1),
    lambda draw: _gather_inputs(draw) + [arr(draw, (3, 2))], _scatter_ref, diff=(0, 2))


def _scatter_extreme_ref(x, i, s, reduce, include_self):
    out = x.copy()
    pick = np.maximum if reduce == "amax" else np.minimum
    for r in range(i.shape[0]):
        for c in range(i.shape[1]):
            first = not (i[r, :c] == i[r, c]).any()
            out[r, i[r, c]] = s[r, c] if first and not include_self else \
                pick(out[r, i[r, c]], s[r, c])
    return out


def _scatter_extreme_inputs(draw):
    return _gather_inputs(draw) + [arr(draw, (3, 2))], {
        "reduce": draw(st.sampled_from(["amax", "amin"])),
        "include_self": draw(st.booleans())}


# scatter_extreme is scatter_reduce's amax/amin value; the gradient around it is composed of
# index_adds (ties share it evenly), which gradcheck checks through the public call
add("scatter_extreme", lambda x, i, s, reduce, include_self:
    x.scatter_reduce(1, i, s, reduce, include_self=include_self),
    _scatter_extreme_inputs, _scatter_extreme_ref, diff=(0, 2))


def _scatter_product_ref(x, i, s, include_self):
    out = x.copy()
    for r in range(i.shape[0]):
        for c in range(i.shape[1]):
            first = not (i[r, :c] == i[r, c]).any()
            out[r, i[r, c]] = s[r, c] if first and not include_self else \
                out[r, i[r, c]] * s[r, c]
    return out


# scatter_product is scatter_reduce's prod (its vjp divides by the values where no zero is
# alone in its target, so inputs stay away from 0)
add("scatter_product", lambda x, i, s, include_self:
    x.scatter_reduce(1, i, s, "prod", include_self=include_self),
    lambda draw: ([arr(draw, (3, 4), 0.5, 2.0), draw(st.sampled_from(
        [np.array([[0, 3], [3, 3], [1, 2]]), np.array([[2, 2], [0, 1], [3, 0]])])),
        arr(draw, (3, 2), 0.5, 2.0)], {"include_self": draw(st.booleans())}),
    _scatter_product_ref, diff=(0, 2))


add("take", lambda x, i: tl.take(x, i, axis=0),
    lambda draw: [arr(draw, (4, 3)), np.array([[0, 3], [3, 1]])],
    lambda x, i: np.take(x, i, axis=0))


def _index_add_ref(x, i, s):
    out = x.copy()
    np.add.at(out, (slice(None), i), s)
    return out


add("index_add", lambda x, i, s: tl.index_add(x, i, s, axis=1),
    lambda draw: [arr(draw, (2, 4)), np.array([1, 3, 1]), arr(draw, (2, 3))], _index_add_ref,
    diff=(0, 2))
add("masked_fill", lambda x, m: x.masked_fill(m, -1.0),
    lambda draw: [arr(draw, (3, 4)), arr(draw, (4,)) > 0],
    lambda x, m: np.where(m, -1.0, x))
add("one_hot", lambda i: tl.one_hot(i, 5), lambda draw: [np.array([[0, 4], [2, 2]])],
    lambda i: np.eye(5, dtype=np.int64)[i], grad=False)


def _grad_op_inputs(draw):
    s = draw(shapes())
    return [arr(draw, s), arr(draw, s, -0.9, 0.9)]


add("tanh_grad", lambda g, y: tl.apply(tl.REGISTRY["tanh_grad"], g, y), _grad_op_inputs,
    lambda g, y: g * (1 - y * y))
add("leaky_relu_grad", lambda g, x: tl.apply(tl.REGISTRY["leaky_relu_grad"], g, x,
                                              negative_slope=0.2),
    _grad_op_inputs, lambda g, x: np.where(x > 0, g, 0.2 * g))
add("elu_grad", lambda g, x: tl.apply(tl.REGISTRY["elu_grad"], g, x, alpha=1.5),
    lambda draw: (lambda s: [arr(draw, s), arr(draw, s, away_from=0.0)])(draw(shapes())),
    lambda g, x: np.where(x > 0, g, 1.5 * np.exp(np.minimum(x, 0)) * g))
add("softplus_grad", lambda g, x: tl.apply(tl.REGISTRY["softplus_grad"], g, x, beta=2.0,
                                            threshold=3.0),
    lambda draw: (lambda s: [arr(draw, s), arr(draw, s, away_from=1.5)])(draw(shapes())),
    lambda g, x: np.where(2 * x > 3.0, g, g / (1 + np.exp(-2 * x))))
add("gelu_grad", lambda g, x: tl.apply(tl.REGISTRY["gelu_grad"], g, x), _grad_op_inputs,
    lambda g, x: g * (0.5 * (1 + _erf(x / np.sqrt(2))) + x * np.exp(-x * x / 2)
                      / np.sqrt(2 * np.pi)))
add("sigmoid_grad", lambda g, y: tl.apply(tl.REGISTRY["sigmoid_grad"], g, y),
    lambda draw: [arr(draw, (3, 2)), arr(draw, (3, 2), 0.05, 0.95)],
    lambda g, y: g * y * (1 - y))


def _away_from_hardswish_kinks(a):
    # finite differences are invalid within a step of -3 and 3
    return np.where(np.abs(np.abs(a) - 3.0) < 0.1, a * 0.9, a)


def _hardswish_ref(x):
    return x * np.clip(x + 3, 0, 6) / 6


def _hardswish_grad_ref(g, x):
    return np.where(x <= -3, 0.0, np.where(x < 3, g * (x / 3 + 0.5), g))


add("hardswish", tl.nn.functional.hardswish,
    lambda draw: [_away_from_hardswish_kinks(arr(draw, draw(shapes()), -6.0, 6.0))],
    _hardswish_ref)
add("hardswish_grad", lambda g, x: tl.apply(tl.REGISTRY["hardswish_grad"], g, x),
    lambda draw: (lambda s: [arr(draw, s), _away_from_hardswish_kinks(arr(draw, s, -6.0, 6.0))])(
        draw(shapes())),
    _hardswish_grad_ref)
add("silu_grad", lambda g, x: tl.apply(tl.REGISTRY["silu_grad"], g, x), _grad_op_inputs,
    lambda g, x: g * (1 / (1 + np.exp(-x))) * (1 + x * (1 - 1 / (1 + np.exp(-x)))))


def _away_from(a, *points):
    # finite differences are invalid within a step of a kink
    for p in points:
        a = np.where(np.abs(a - p) < 0.1, a + 0.25, a)
    return a


add("clip", lambda x: tl.nn.functional.hardtanh(x, -0.5, 0.7),
    lambda draw: [_away_from(arr(draw, draw(shapes())), -0.5, 0.7)],
    lambda x: np.clip(x, -0.5, 0.7), name="hardtanh")
add("clip_interior_grad",
    lambda g, x: tl.apply(tl.REGISTRY["clip_interior_grad"], g, x, min=-0.5, max=0.7),
    lambda draw: (lambda s: [arr(draw, s), _away_from(arr(draw, s), -0.5, 0.7)])(draw(shapes())),
    lambda g, x: np.where((x > -0.5) & (x < 0.7), g, 0.0))
add("logsigmoid", tl.nn.functional.logsigmoid, unary_inputs(-4, 4),
    lambda x: -np.logaddexp(0, -x))
add("logsigmoid_grad", lambda g, x: tl.apply(tl.REGISTRY["logsigmoid_grad"], g, x),
    _grad_op_inputs, lambda g, x: g / (1 + np.exp(x)))


def _with_nonfinite(draw):
    a = arr(draw, draw(shapes(1, 3)))
    flat = a.reshape(-1)
    flat[::3] = np.array([np.nan, np.inf, -np.inf])[np.arange(flat[::3].size) % 3]
    return [a]


add("nan_to_num", tl.nan_to_num, _with_nonfinite, np.nan_to_num, name="nonfinite", grad=False)
add("nan_to_num", tl.nan_to_num, lambda draw: [arr(draw, draw(shapes()))], np.nan_to_num)
