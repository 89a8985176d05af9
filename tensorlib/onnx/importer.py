"""ONNX -> tensorlib: ``tl.onnx.load(path)`` builds a Graph of registry ops.

Each ONNX op has an importer ``imp(b, node, ins, attrs) -> [Value, ...]`` that emits
registry nodes through :class:`Builder` (output shapes come from each op's ``infer``
rule, so symbolic batch dims stay ``None``). Float initializers become variables bound
to trainable tensors (``requires_grad=True``; batch-norm statistics are not trainable);
integer initializers and ``Constant`` nodes become constants, and ops whose inputs are
all constants are folded at import (shape arithmetic). A model that uses ops with no
importer raises one error listing all of them.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..graph.ir import Graph, Value

IMPORTERS: dict = {}


class Builder:
    """Emits registry nodes into a Graph, folding ops whose inputs are all constants. The
    graph is built on the host; ``load`` moves it afterwards (``GraphModule.to``)."""

    device = "cpu"

    def __init__(self, opset: int):
        self.g = Graph("onnx")
        self.opset = opset
        self.env: dict[str, Value | None] = {}
        self.owners: dict[str, object] = {}
        self._pending: dict[str, np.ndarray] = {}   # float initializers not yet used

    # --- values -----------------------------------------------------------------------
    def value(self, name: str) -> Value | None:
        if name == "":
            return None
        if name in self.env:
            return self.env[name]
        if name in self._pending:
            return self._variable(name, self._pending.pop(name))
        raise ValueError(f"ONNX import: tensor {name!r} is used before it is produced")

    def _variable(self, name: str, arr: np.ndarray, trainable: bool = True) -> Value:
        from ..creation import from_numpy
        t = from_numpy(np.array(arr, copy=True))
        t.requires_grad_(trainable)
        node = self.g.add_node("variable", [], {"slot": "data"}, self.device,
                               [(arr.shape, arr.dtype)], name=name)
        node.outputs[0].name = name
        self.g.bindings[node] = (t, "data")
        self.owners[name] = t
        self.env[name] = node.outputs[0]
        return node.outputs[0]

    def param(self, name: str, arr: np.ndarray, trainable: bool = True) -> Value:
        """A new variable (e.g. a re-laid-out copy of an initializer)."""
        return self._variable(name, arr, trainable)

    def const(self, array) -> Value:
        a = np.asarray(array)
        return self.g.constant(a, device=self.device)

    def array(self, v: Value | None, what: str = "input") -> np.ndarray:
        """The value of a constant (or an initializer read once at import)."""
        if v is None:
            raise ValueError(f"ONNX import: {what} is missing")
        if v.node.op == "constant":
            return np.asarray(v.node.attrs["value"])
        if v.node.op == "variable":
            return self.g.bindings[v.node][0]._host()
        raise NotImplementedError(f"ONNX import: {what} must be a constant (it is computed at "
                                  "run time, which tensorlib's static-attribute ops need "
                                  "at import)")

    def is_const(self, v: Value | None) -> bool:
        return v is not None and v.node.op == "constant"

    def freeze(self, v: Value | None) -> None:
        """Mark a variable as not trainable (running statistics)."""
        if v is not None and v.node.op == "variable":
            self.g.bindings[v.node][0].requires_grad_(False)

    # --- ops --------------------------------------------------------------------------
    def op(self, name: str, *ins: Value, **attrs):
        from ..export import _specs
        from ..ops.registry import REGISTRY
        op = REGISTRY[name]
        if ins and all(self.is_const(v) for v in ins):
            try:
                out = _specs(op.infer(*[(v.shape, v.dtype) for v in ins], **attrs))
            except (ValueError, TypeError, IndexError):
                out = None          # the kernel reports it
            if out is not None:
                for shape, _ in out:
                    check_elements(shape, f"{name} output")
            # a large result (a Tile or Expand of a constant) is computed when the graph
            # runs, not held in memory from the load on
            if out is None or sum(math.prod(s) for s, _ in out) <= FOLD_MAX_ELEMENTS:
                res = op.cpu(*[np.asarray(v.node.attrs["value"]) for v in ins], **attrs)
                if isinstance(res, tuple):
                    return tuple(self.const(np.asarray(r)) for r in res)
                return self.const(np.asarray(res))
        specs = _specs(op.infer(*[(v.shape, v.dtype) for v in ins], **attrs))
        for shape, _ in specs:
            check_elements(shape, f"{name} output")
        node = self.g.add_node(name, list(ins), attrs, self.device,
                               [(tuple(s), np.dtype(d)) for s, d in specs])
        return node.outputs[0] if len(node.outputs) == 1 else tuple(node.outputs)

    def scalar(self, value, like: Value) -> Value:
        return self.const(np.asarray(value, dtype=like.dtype))

    def cast(self, v: Value, dtype) -> Value:
        dt = np.dtype(dtype)
        return v if v.dtype == dt else self.op("cast", v, dtype=dt.name)


# constants computed at import up to this many elements; larger ones (ConstantOfShape,
# Range, Tile, Expand of constants) become nodes that allocate when the graph runs
FOLD_MAX_ELEMENTS = 1 << 20


def check_elements(shape, what: str) -> tuple:
    """``shape`` as ints, or a ValueError when it is negative or holds more elements than
    the limit of tl.load_graph and the executor (``export.MAX_ELEMENTS``): a broken or
    hostile file, refused before anything is allocated. ``None`` dims count as 1."""
    from ..export import MAX_ELEMENTS
    dims = tuple(None if d is None else int(d) for d in shape)
    if any(d is not None and d < 0 for d in dims):
        raise ValueError(f"{what} {list(dims)} has a negative size")
    n = math.prod(d for d in dims if d is not None)
    if n > MAX_ELEMENTS:
        raise ValueError(f"{what} {list(dims)} has {n:,} elements, more than the "
                         f"{MAX_ELEMENTS:,} a tensorlib graph allows")
    return dims


_DYNAMIC_T = ("ONNX import: {op} with linear_before_reset=0 over a dynamic sequence length: "
              "tensorlib unrolls the time steps of that form at import, so it needs a fixed "
              "one. Export with a fixed sequence length (no dynamic time axis; a dynamic batch "
              "axis is fine), or with linear_before_reset=1 (PyTorch's GRU), which imports "
              "with any length")


def imp(*names):
    def deco(f):
        for n in names:
            IMPORTERS[n] = f
        return f
    return deco


def _ax(a, nd: int) -> int:
    a = int(a)
    if not -max(nd, 1) <= a < max(nd, 1):
        raise ValueError(f"ONNX import: axis {a} out of range for rank {nd}")
    return a % max(nd, 1)


def _axes_input(b, ins, attrs, pos=1):
    """Axes from an input (newer opsets) or an attribute; None when absent."""
    if len(ins) > pos and ins[pos] is not None:
        return [int(a) for a in b.array(ins[pos], "axes").reshape(-1)]
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    return None


# --- elementwise -------------------------------------------------------------------------------
_UNARY = {"Neg": "neg", "Abs": "abs", "Sign": "sign", "Exp": "exp", "Log": "log",
          "Sqrt": "sqrt", "Reciprocal": "reciprocal", "Sin": "sin", "Cos": "cos", "Tan": "tan",
          "Tanh": "tanh", "Erf": "erf", "Sigmoid": "sigmoid", "Relu": "relu", "Floor": "floor",
          "Ceil": "ceil", "Round": "round", "IsNaN": "isnan", "Not": "logical_not",
          "Asin": "asin", "Acos": "acos", "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh",
          "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh", "BitwiseNot": "bitwise_not"}
for _k, _v in _UNARY.items():
    IMPORTERS[_k] = (lambda op: lambda b, n, ins, at: [b.op(op, ins[0])])(_v)

_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Pow": "pow", "Equal": "eq",
           "Less": "lt", "LessOrEqual": "le", "Greater": "gt", "GreaterOrEqual": "ge",
           "And": "logical_and", "Or": "logical_or", "Xor": "logical_xor",
           "BitwiseAnd": "bitwise_and", "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor"}
for _k, _v in _BINARY.items():
    IMPORTERS[_k] = (lambda op: lambda b, n, ins, at: [b.op(op, ins[0], ins[1])])(_v)


@imp("BitShift")
def _bitshift(b, n, ins, at):
    op = "left_shift" if at.get("direction", b"LEFT") in (b"LEFT", "LEFT") else "right_shift"
    return [b.op(op, ins[0], ins[1])]


@imp("Identity")
def _identity(b, n, ins, at):
    return [ins[0]]


# --- random draws ------------------------------------------------------------------------------
# A random op becomes a graph "random" node drawing from tensorlib's global generator on every
# run (tl.manual_seed reproduces it); an ONNX ``seed`` is not onnxruntime's stream, so it is
# not followed.
def _onnx_np_dtype(code, default) -> np.dtype:
    from onnx import helper
    return np.dtype(default) if code is None else np.dtype(helper.tensor_dtype_to_np_dtype(
        int(code)))


def _random(b, dist: str, params: dict, dtype, shape=None, like: Value | None = None) -> Value:
    """A random node of ``shape`` (static ints) or of ``like``'s shape, dynamic dims included
    (read when the graph runs: the node's ``sizes``)."""
    dt = np.dtype(dtype)
    if dist != "randint" and dt.kind != "f":
        raise ValueError(f"random draws of dtype {dt} (a floating dtype is needed)")
    ins, sizes = [], ()
    if like is not None:
        src = like.node
        if src.op == "fill" and not src.attrs.get("dims"):
            # ConstantOfShape feeding a *Like op (tensorlib's own export of a dynamic draw):
            # read its sizes directly, so no filled tensor is made to be thrown away
            shape, ins = tuple(src.attrs["shape"]), list(src.inputs)
            sizes = tuple(src.attrs.get("sizes", ()))
        else:
            shape = tuple(0 if d is None else d for d in like.shape)
            sizes = tuple((i, ("dim", 0, i)) for i, d in enumerate(like.shape) if d is None)
            ins = [like] if sizes else []
    shape = check_elements(shape, "random draw shape")
    attrs = {"dist": dist, "shape": tuple(int(d) for d in shape), "dtype": dt, **params}
    if sizes:
        attrs["sizes"] = sizes
    from ..graph.runtime import random_shape
    out = random_shape(attrs, [v.shape for v in ins]) if ins else attrs["shape"]
    node = b.g.add_node("random", ins, attrs, b.device, [(tuple(out), dt)])
    b.g.bindings[node] = None       # the global generator
    return node.outputs[0]


def _uniform_params(at) -> tuple[str, dict]:
    lo, hi = float(at.get("low", 0.0)), float(at.get("high", 1.0))
    if hi < lo:
        raise ValueError(f"high ({hi}) is below low ({lo})")
    return ("rand", {}) if (lo, hi) == (0.0, 1.0) else ("uniform", {"low": lo, "high": hi})


def _normal_params(at) -> tuple[str, dict]:
    mean, std = float(at.get("mean", 0.0)), float(at.get("scale", 1.0))
    if not std >= 0:
        raise ValueError(f"scale must be non-negative, got {std}")
    return ("randn", {}) if (mean, std) == (0.0, 1.0) else ("normal", {"mean": mean,
                                                                       "std": std})


@imp("RandomUniform", "RandomNormal")
def _random_static(b, n, ins, at):
    dist, params = (_uniform_params if n.op_type == "RandomUniform" else _normal_params)(at)
    dt = _onnx_np_dtype(at.get("dtype"), np.float32)
    return [_random(b, dist, params, dt, shape=[int(d) for d in at["shape"]])]


@imp("RandomUniformLike", "RandomNormalLike")
def _random_like(b, n, ins, at):
    dist, params = (_uniform_params if n.op_type == "RandomUniformLike" else _normal_params)(at)
    x = ins[0]
    dt = _onnx_np_dtype(at.get("dtype"), x.dtype if x.dtype.kind == "f" else np.float32)
    return [_random(b, dist, params, dt, like=x)]


@imp("Bernoulli")
def _bernoulli(b, n, ins, at):
    # 1 where a uniform falls below the probability, as tl.bernoulli draws
    p = ins[0]
    if p.dtype.kind != "f":
        raise ValueError(f"Bernoulli: probabilities must be floating point, got {p.dtype}")
    u = _random(b, "rand", {}, p.dtype, like=p)
    return [b.cast(b.op("lt", u, p), _onnx_np_dtype(at.get("dtype"), p.dtype))]


@imp("Dropout")
def _dropout(b, n, ins, at):
    # the identity in inference (before opset 12 always; from 12 unless training_mode is
    # true); in training, as tl.nn.functional.dropout: keep where a float64 uniform >= ratio,
    # scaled by 1 / (1 - ratio)
    x = ins[0]
    train, ratio = False, float(at.get("ratio", 0.5))
    if b.opset >= 12:
        if len(ins) > 2 and ins[2] is not None:
            if not (b.is_const(ins[2]) or ins[2].node.op == "variable"):
                raise NotImplementedError(
                    "Dropout: training_mode is computed at run time (a graph input); tensorlib "
                    "graphs have no branches, so it must be a constant: export with a fixed "
                    "training_mode")
            train = bool(np.asarray(b.array(ins[2], "training_mode")).reshape(-1)[0])
        if train and len(ins) > 1 and ins[1] is not None:
            if not (b.is_const(ins[1]) or ins[1].node.op == "variable"):
                raise NotImplementedError("Dropout: ratio is computed at run time; export "
                                          "with a constant ratio")
            ratio = float(np.asarray(b.array(ins[1], "ratio")).reshape(-1)[0])
    if train and not 0.0 <= ratio <= 1.0:
        raise ValueError(f"Dropout: ratio must be in [0, 1], got {ratio}")
    if not train or ratio == 0.0:
        out, keep = x, None
    else:
        u = _random(b, "rand", {}, np.float64, like=x)
        keep = b.op("ge", u, b.const(np.asarray(ratio, np.float64)))
        scale = 0.0 if ratio == 1.0 else 1.0 / (1.0 - ratio)
        out = b.op("mul", x, b.op("mul", b.cast(keep, x.dtype), b.scalar(scale, x)))
    if len(n.output) < 2 or not n.output[1]:
        return [out]
    if keep is None:        # the mask of an inference Dropout: all true, x's shape
        if None not in x.shape:
            keep = b.const(np.ones(x.shape, np.bool_))
        else:
            keep = b.op("fill", x, shape=tuple(0 if d is None else d for d in x.shape),
                        dims=tuple((i, i) for i, d in enumerate(x.shape) if d is None),
                        value=1.0, dtype="bool")
    return [out, keep]


@imp("IsInf")
def _isinf(b, n, ins, at):
    x = ins[0]
    y = b.op("isinf", x)
    if not at.get("detect_negative", 1):
        y = b.op("logical_and", y, b.op("gt", x, b.scalar(0, x)))
    if not at.get("detect_positive", 1):
        y = b.op("logical_and", y, b.op("lt", x, b.scalar(0, x)))
    return [y]


@imp("Div")
def _div(b, n, ins, at):
    x, y = ins
    if x.dtype.kind in "iu" and y.dtype.kind in "iu":
        # ONNX's integer Div truncates toward zero; floor division rounds down: one more
        # where the remainder is not 0 and the signs differ
        q = b.op("floordiv", x, y)
        zero = b.scalar(0, x)
        inexact = b.op("ne", b.op("mod", x, y), zero)
        signs = b.op("ne", b.op("lt", x, zero), b.op("lt", y, b.scalar(0, y)))
        return [b.op("add", q, b.cast(b.op("logical_and", inexact, signs), q.dtype))]
    return [b.op("div", x, y)]


@imp("Mod")
def _mod(b, n, ins, at):
    x, y = ins
    if at.get("fmod", 0):
        q = b.op("trunc", b.op("div", x, y))
        return [b.op("sub", x, b.op("mul", q, y))]
    return [b.op("mod", x, y)]


def _fold(op):
    def f(b, n, ins, at):
        acc = ins[0]
        for v in ins[1:]:
            acc = b.op(op, acc, v)
        return [acc]
    return f


IMPORTERS["Max"] = _fold("maximum")
IMPORTERS["Min"] = _fold("minimum")
IMPORTERS["Sum"] = _fold("add")


@imp("Mean")
def _mean(b, n, ins, at):
    s = _fold("add")(b, n, ins, at)[0]
    return [b.op("div", s, b.scalar(len(ins), s))]


@imp("Where")
def _where(b, n, ins, at):
    return [b.op("where", *ins)]


@imp("Cast")
def _cast(b, n, ins, at):
    from onnx import helper
    try:
        dt = helper.tensor_dtype_to_np_dtype(int(at["to"]))
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"Cast to={at.get('to')!r} is not an ONNX tensor type") from None
    return [b.cast(ins[0], dt)]


@imp("Clip")
def _clip(b, n, ins, at):
    if b.opset < 11:
        lo, hi = at.get("min"), at.get("max")
    else:
        lo = None if len(ins) < 2 or ins[1] is None else b.array(ins[1], "Clip min").item()
        hi = None if len(ins) < 3 or ins[2] is None else b.array(ins[2], "Clip max").item()
    return [b.op("clip", ins[0], min=lo, max=hi)]


@imp("LeakyRelu")
def _leaky(b, n, ins, at):
    return [b.op("leaky_relu", ins[0], negative_slope=float(at.get("alpha", 0.01)))]


@imp("Elu")
def _elu(b, n, ins, at):
    return [b.op("elu", ins[0], alpha=float(at.get("alpha", 1.0)))]


@imp("Selu")
def _selu(b, n, ins, at):
    x = ins[0]
    alpha = float(at.get("alpha", 1.67326319217681884765625))
    gamma = float(at.get("gamma", 1.05070102214813232421875))
    return [b.op("mul", b.op("elu", x, alpha=alpha), b.scalar(gamma, x))]


@imp("Celu")
def _celu(b, n, ins, at):
    x = ins[0]
    alpha = float(at.get("alpha", 1.0))      # alpha * elu(x / alpha)
    return [b.op("mul", b.op("elu", b.op("div", x, b.scalar(alpha, x)), alpha=1.0),
                 b.scalar(alpha, x))]


@imp("DepthToSpace", "SpaceToDepth")
def _depth_to_space(b, n, ins, at):
    """PyTorch's pixel_shuffle exports DepthToSpace in mode CRD (pixel_unshuffle: an
    equivalent Reshape/Transpose chain); both ONNX modes as reshape, transpose, reshape."""
    x = ins[0]
    r = int(at["blocksize"])
    if r < 1:
        raise ValueError(f"{n.op_type} blocksize must be positive, got {r}")
    if x.ndim != 4 or None in tuple(x.shape[1:]):
        raise NotImplementedError(f"ONNX import: {n.op_type} needs a 4-D input with static "
                                  f"channels and spatial sizes, got {tuple(x.shape)}")
    N, C, H, W = x.shape
    N = -1 if N is None else N
    # as onnxruntime: the sizes must divide, else the reshapes would mix channels
    if n.op_type == "SpaceToDepth" and (H % r or W % r):
        raise ValueError(f"SpaceToDepth blocksize {r} does not divide the spatial sizes "
                         f"{(H, W)}")
    if n.op_type == "DepthToSpace" and C % (r * r):
        raise ValueError(f"DepthToSpace blocksize {r}: channels {C} are not a multiple of "
                         f"{r * r}")
    if n.op_type == "SpaceToDepth":     # (N, C, H, W) -> (N, C r r, H / r, W / r), DCR order
        y = b.op("reshape", x, shape=(N, C, H // r, r, W // r, r))
        y = b.op("transpose", y, axes=(0, 3, 5, 1, 2, 4))
        return [b.op("reshape", y, shape=(N, C * r * r, H // r, W // r))]
    c = C // (r * r)
    if at.get("mode", "DCR") == "CRD":
        y = b.op("reshape", x, shape=(N, c, r, r, H, W))
        y = b.op("transpose", y, axes=(0, 1, 4, 2, 5, 3))
    else:
        y = b.op("reshape", x, shape=(N, r, r, c, H, W))
        y = b.op("transpose", y, axes=(0, 3, 4, 1, 5, 2))
    return [b.op("reshape", y, shape=(N, c, H * r, W * r))]


@imp("Gelu")
def _gelu(b, n, ins, at):
    return [b.op("gelu", ins[0], approximate=at.get("approximate", "none"))]


@imp("Softplus")
def _softplus(b, n, ins, at):
    return [b.op("softplus", ins[0], beta=1.0, threshold=20.0)]


@imp("HardSigmoid", "HardSwish")
def _hardsigmoid(b, n, ins, at):
    x = ins[0]
    alpha = at.get("alpha", 1 / 6 if n.op_type == "HardSwish" else 0.2)
    beta = at.get("beta", 0.5)
    y = b.op("clip", b.op("add", b.op("mul", x, b.scalar(alpha, x)), b.scalar(beta, x)),
             min=0.0, max=1.0)
    return [b.op("mul", x, y) if n.op_type == "HardSwish" else y]


@imp("PRelu")
def _prelu(b, n, ins, at):
    x, slope = ins
    return [b.op("where", b.op("gt", x, b.scalar(0, x)), x, b.op("mul", x, slope))]


# --- linear algebra ----------------------------------------------------------------------------
@imp("MatMul")
def _matmul(b, n, ins, at):
    return [b.op("matmul", ins[0], ins[1])]


@imp("Gemm")
def _gemm(b, n, ins, at):
    a, w = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    if at.get("transA", 0):
        a = b.op("transpose", a, axes=(1, 0))
    if at.get("transB", 0) and alpha == 1.0 and beta == 1.0 and (
            c is None or (c.ndim == 1 and c.shape[0] == w.shape[0])):
        return [b.op("linear", a, w, *([c] if c is not None else []))]
    if at.get("transB", 0):
        w = b.op("transpose", w, axes=(1, 0))
    y = b.op("matmul", a, w)
    if alpha != 1.0:
        y = b.op("mul", y, b.scalar(alpha, y))
    if c is not None:
        y = b.op("add", y, c if beta == 1.0 else b.op("mul", c, b.scalar(beta, c)))
    return [y]


@imp("Einsum")
def _einsum(b, n, ins, at):
    from ..ops.linalg import _normalize_subscripts
    eq = _normalize_subscripts(at["equation"], [v.ndim for v in ins])
    return [b.op("einsum", *ins, subscripts=eq)]


# --- convolution, pooling, normalisation --------------------------------------------------------
def _same_pads(auto_pad, sizes, kernel, strides, dilations):
    pads_b, pads_e = [], []
    for n, k, s, d in zip(sizes, kernel, strides, dilations):
        if auto_pad == "VALID":
            pads_b.append(0)
            pads_e.append(0)
            continue
        if n is None:
            raise NotImplementedError("ONNX import: auto_pad SAME needs static spatial sizes")
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        lo = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        pads_b.append(lo)
        pads_e.append(total - lo)
    return pads_b + pads_e


def _geometry(n_in, at, kernel):
    k = len(kernel)
    strides = list(at.get("strides", [1] * k))
    dil = list(at.get("dilations", [1] * k))
    for what, vals in (("kernel_shape", kernel), ("strides", strides), ("dilations", dil)):
        if any(v is None or int(v) < 1 for v in vals):
            raise ValueError(f"{what} must be positive, got {list(vals)}")
    auto = at.get("auto_pad", "NOTSET")
    if auto not in ("NOTSET", ""):
        pads = _same_pads(auto, n_in, kernel, strides, dil)
    else:
        pads = list(at.get("pads", [0] * (2 * k)))
    return strides, dil, pads


def _spatial_2d(x, what):
    if x.ndim != 4:
        raise NotImplementedError(f"ONNX import: {what} on a {x.ndim}-D input; tensorlib "
                                  "imports the 2-D form (N, C, H, W)")


@imp("Conv")
def _conv(b, n, ins, at):
    x, w = ins[0], ins[1]
    _spatial_2d(x, "Conv")
    kernel = list(at.get("kernel_shape", w.shape[2:]))
    strides, dil, pads = _geometry(x.shape[2:], at, kernel)
    extra = [ins[2]] if len(ins) > 2 and ins[2] is not None else []
    return [b.op("conv2d", x, w, *extra, stride=tuple(strides),
                 padding=(pads[0], pads[2], pads[1], pads[3]), dilation=tuple(dil),
                 groups=int(at.get("group", 1)))]


@imp("ConvTranspose")
def _conv_transpose(b, n, ins, at):
    x, w = ins[0], ins[1]
    _spatial_2d(x, "ConvTranspose")
    strides = list(at.get("strides", [1, 1]))
    dil = list(at.get("dilations", [1, 1]))
    pads = list(at.get("pads", [0, 0, 0, 0]))
    opad = list(at.get("output_padding", [0, 0]))
    if at.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise NotImplementedError("ONNX import: ConvTranspose with auto_pad")
    geo = dict(stride=tuple(strides), padding=(pads[0], pads[2], pads[1], pads[3]),
               dilation=tuple(dil), groups=int(at.get("group", 1)))
    if "output_shape" in at:
        hw = tuple(int(v) for v in list(at["output_shape"])[-2:])
        y = b.op("conv2d_input_grad", x, w, input_hw=hw, **geo)
    else:       # the size follows the input (dynamic spatial dims import too)
        y = b.op("conv2d_input_grad", x, w, output_padding=tuple(int(o) for o in opad), **geo)
    if len(ins) > 2 and ins[2] is not None:
        y = b.op("add", y, b.op("reshape", ins[2], shape=(1, -1, 1, 1)))
    return [y]


def _pool_geometry(x, at):
    """Kernel, strides, dilations, pads and ceil_mode of an ONNX pool (the spatial sizes may
    be dynamic: the pool ops derive their output size from their input)."""
    _spatial_2d(x, "pooling")
    kernel = list(at["kernel_shape"])
    if at.get("auto_pad", "NOTSET") not in ("NOTSET", "") and None in tuple(x.shape[2:]):
        raise NotImplementedError("ONNX import: pooling with auto_pad needs static spatial "
                                  "sizes")
    strides, dil, pads = _geometry(x.shape[2:], at, kernel)
    return kernel, strides, dil, pads, bool(at.get("ceil_mode", 0))


@imp("MaxPool")
def _max_pool(b, n, ins, at):
    x = ins[0]
    kernel, strides, dil, pads, ceil = _pool_geometry(x, at)
    if len(n.output) > 1 and n.output[1]:
        raise NotImplementedError("ONNX import: MaxPool's Indices output")
    sym = pads[0] == pads[2] and pads[1] == pads[3] and all(
        pads[i] <= (dil[i] * (kernel[i] - 1) + 1) // 2 for i in range(2))
    if not sym:   # pad with -inf explicitly, then pool without padding
        x = b.op("pad", x, pad_width=((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])),
                 mode="constant", value=-math.inf)
        pads = [0, 0, 0, 0]
    y, _ = b.op("max_pool2d", x, kernel=tuple(kernel), stride=tuple(strides),
                padding=(pads[0], pads[1]), dilation=tuple(dil), ceil_mode=ceil)
    return [y]


@imp("AveragePool")
def _avg_pool(b, n, ins, at):
    x = ins[0]
    kernel, strides, dil, pads, ceil = _pool_geometry(x, at)
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise NotImplementedError("ONNX import: AveragePool with asymmetric pads")
    return [b.op("avg_pool2d", x, kernel=tuple(kernel), stride=tuple(strides),
                 padding=(pads[0], pads[1]), ceil_mode=ceil,
                 count_include_pad=bool(at.get("count_include_pad", 0)), divisor=0)]


def _lift_1d(fn):
    """A 2-D importer serving the op's 1-D form (N, C, L) too (Conv1d, ConvTranspose1d,
    MaxPool1d, AvgPool1d): a unit height is inserted into the input (and a conv's weight)
    and the attributes, and squeezed out of the outputs. MaxPool's indices, h * W + w with
    h = 0, are then positions along L, as PyTorch's."""
    def lifted(b, n, ins, at):
        x = ins[0]
        if x is None or x.ndim != 3:
            return fn(b, n, ins, at)
        at = dict(at)
        for key, unit in (("kernel_shape", 1), ("strides", 1), ("dilations", 1),
                          ("output_padding", 0), ("output_shape", 1)):
            if key in at:
                at[key] = [unit] + list(at[key])[-1:]
        if "pads" in at:
            p = list(at["pads"])
            at["pads"] = [0, p[0], 0, p[1]]
        ins = list(ins)
        ins[0] = b.op("expand_dims", x, axis=(2,))
        if n.op_type in ("Conv", "ConvTranspose"):
            ins[1] = b.op("expand_dims", ins[1], axis=(2,))
        return [None if o is None else b.op("squeeze", o, axis=(2,))
                for o in fn(b, n, ins, at)]
    lifted.__name__ = fn.__name__
    return lifted


for _name in ("Conv", "ConvTranspose", "MaxPool", "AveragePool"):
    IMPORTERS[_name] = _lift_1d(IMPORTERS[_name])


@imp("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(b, n, ins, at):
    x = ins[0]
    op = "mean" if n.op_type == "GlobalAveragePool" else "max"
    return [b.op(op, x, axis=tuple(range(2, x.ndim)), keepdims=True)]


@imp("BatchNormalization")
def _batch_norm(b, n, ins, at):
    x, scale, bias, mean, var = ins[:5]
    if at.get("training_mode", 0) or (len(n.output) > 1 and any(n.output[1:])):
        raise NotImplementedError("ONNX import: BatchNormalization in training mode")
    # PyTorch's exporter shares equal initializers: running_mean = Identity(bias) and
    # running_var = Identity(weight) while the statistics are still 0 and 1. Untie them:
    # frozen statistics must not freeze the trainable weight and bias they equal
    mean, var = (_untied(b, v, n.input[k], (scale, bias)) for k, v in ((3, mean), (4, var)))
    b.freeze(mean)
    b.freeze(var)
    return [b.op("batch_norm_eval", x, mean, var, scale, bias,
                 eps=float(at.get("epsilon", 1e-5)), affine="wb")]


def _untied(b, v, name: str, trainable: tuple):
    """``v``, or a copy of its value as a variable of its own (named ``name``, the BN input's
    name) when it is one of the ``trainable`` variables."""
    if v is None or v.node.op != "variable" or not any(v is w for w in trainable):
        return v
    while name in b.owners:
        name += "_"
    return b.param(name, b.array(v).copy())


@imp("LayerNormalization")
def _layer_norm(b, n, ins, at):
    x = ins[0]
    k = x.ndim - _ax(at.get("axis", -1), x.ndim)
    wb = [v for v in ins[1:3] if v is not None]
    affine = "w" + ("b" if len(ins) > 2 and ins[2] is not None else "")
    outs = b.op("layer_norm", x, *wb, eps=float(at.get("epsilon", 1e-5)), ndim=k,
                affine=affine)
    return list(outs[:max(1, len(n.output))])


@imp("InstanceNormalization")
def _instance_norm(b, n, ins, at):
    """Normalise (N, C, *spatial) per sample and channel: tensorlib's ``group_norm`` with one
    channel per group (PyTorch exports GroupNorm as this over (N, G, -1) plus Mul and Add)."""
    x, scale, bias = ins[:3]
    if x.ndim < 2:
        raise ValueError(f"ONNX import: InstanceNormalization of a {x.ndim}-D input (ONNX "
                         "defines it for (N, C, D1, ...))")
    C = x.shape[1] if x.shape[1] is not None else scale.shape[0]
    if C is None or tuple(scale.shape) != (C,) or tuple(bias.shape) != (C,):
        raise ValueError(f"ONNX import: InstanceNormalization scale {scale.shape} and B "
                         f"{bias.shape} must have the {C} channels of the input {x.shape}")
    wb, affine = [], ""
    # constant ones and zeros (PyTorch's GroupNorm export) apply nothing
    if not (b.is_const(scale) and np.all(b.array(scale) == 1)):
        wb, affine = [scale], "w"
    if not (b.is_const(bias) and np.all(b.array(bias) == 0)):
        wb, affine = wb + [bias], affine + "b"
    y = b.op("group_norm", x, *wb, groups=int(C), eps=float(at.get("epsilon", 1e-5)),
             affine=affine)
    return [y[0]]


@imp("Softmax", "LogSoftmax")
def _softmax(b, n, ins, at):
    x = ins[0]
    op = "softmax" if n.op_type == "Softmax" else "log_softmax"
    axis = _ax(at.get("axis", -1 if b.opset >= 13 else 1), x.ndim)
    if b.opset >= 13 or axis == x.ndim - 1:
        return [b.op(op, x, axis=axis)]
    tail = x.shape[axis:]
    if None in tail:
        raise NotImplementedError("ONNX import: opset<13 Softmax over dynamic dims")
    flat = b.op("reshape", x, shape=(-1, math.prod(tail)))
    y = b.op(op, flat, axis=1)
    return [b.op("reshape", y, shape=tuple(-1 if d is None else d for d in x.shape))]


@imp("SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss")
def _class_loss(b, n, ins, at):
    if len(n.output) > 1 and n.output[1]:
        raise NotImplementedError(f"ONNX import: {n.op_type}'s log_prob output")
    extra = [ins[2]] if len(ins) > 2 and ins[2] is not None else []
    t = b.cast(ins[1], np.int64)
    kw = dict(reduction=at.get("reduction", "mean"), ignore_index=int(at.get("ignore_index",
                                                                             -100)))
    if n.op_type == "SoftmaxCrossEntropyLoss":
        return [b.op("cross_entropy", ins[0], t, *extra, label_smoothing=0.0, **kw)]
    return [b.op("nll_loss", ins[0], t, *extra, **kw)]


# --- shape and indexing ------------------------------------------------------------------------
def _shape_attr(b, x, target, allowzero=0):
    """ONNX Reshape semantics (0 copies a dim, one -1) as a static shape with -1."""
    out = []
    for i, s in enumerate(int(v) for v in target):
        if s == 0 and not allowzero:
            d = x.shape[i]
            out.append(-1 if d is None else d)
        else:
            out.append(s)
    if out.count(-1) > 1:   # dynamic dims copied by 0 and a -1: solve the -1 statically
        copied = [i for i, v in enumerate(target) if int(v) == 0 and not allowzero
                  and x.shape[i] is None]
        if len(copied) == 1 and x.shape.count(None) == 1:
            static_in = math.prod(d for d in x.shape if d is not None)
            static_out = math.prod(v for i, v in enumerate(out) if v != -1)
            k = next(i for i, v in enumerate(out) if v == -1 and i not in copied)
            if static_out and static_in % static_out == 0:
                out[k] = static_in // static_out
    if out.count(-1) > 1:
        raise NotImplementedError(f"ONNX import: Reshape to {list(target)} of a tensor of shape "
                                  f"{x.shape} has more than one unknown dimension")
    return tuple(out)


@imp("Reshape")
def _reshape(b, n, ins, at):
    x = ins[0]
    if None in x.shape:
        # ONNX's 0 copies a dim that may be dynamic: the run-time-shape importer keeps it
        from .import_shapes import SYM_IMPORTERS
        return SYM_IMPORTERS["Reshape"](b, n, ins, at)
    shape = _shape_attr(b, x, b.array(ins[1], "Reshape shape"), at.get("allowzero", 0))
    return [b.op("reshape", x, shape=shape)]


@imp("Flatten")
def _flatten(b, n, ins, at):
    x = ins[0]
    a = _ax(at.get("axis", 1), x.ndim + 1) if at.get("axis", 1) != x.ndim else x.ndim
    lead, tail = x.shape[:a], x.shape[a:]
    if None not in tail:
        shape = (-1 if None in lead or not lead else math.prod(lead), math.prod(tail))
        if not lead:
            shape = (1, math.prod(tail))
    elif None not in lead:
        shape = (math.prod(lead), -1)
    else:       # dynamic on both sides: the leading size as a run-time product
        from .import_shapes import SYM_IMPORTERS, SymShape, fold
        lead_size = 1
        for i in range(a):
            lead_size = fold(("mul", lead_size, ("dim", x, i)))
        return SYM_IMPORTERS["Reshape"](b, n, [x, SymShape([lead_size, -1])], {"allowzero": 1})
    return [b.op("reshape", x, shape=shape)]


@imp("Transpose")
def _transpose(b, n, ins, at):
    x = ins[0]
    perm = tuple(int(p) for p in at.get("perm", range(x.ndim - 1, -1, -1)))
    return [b.op("transpose", x, axes=perm)]


@imp("Concat")
def _concat(b, n, ins, at):
    xs = [v for v in ins if v is not None]
    return [b.op("concatenate", *xs, axis=_ax(at["axis"], xs[0].ndim))]


@imp("Squeeze")
def _squeeze(b, n, ins, at):
    x = ins[0]
    axes = _axes_input(b, ins, at)
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    return [b.op("squeeze", x, axis=tuple(sorted(_ax(a, x.ndim) for a in axes)))]


@imp("Unsqueeze")
def _unsqueeze(b, n, ins, at):
    x = ins[0]
    axes = _axes_input(b, ins, at)
    nd = x.ndim + len(axes)
    return [b.op("expand_dims", x, axis=tuple(sorted(_ax(a, nd) for a in axes)))]


def _const_indices_in_range(b, x, idx, axis: int) -> None:
    """Constant indices checked at import against ONNX's range [-s, s) (onnxruntime checks
    them at run time; an initializer holding them is known now)."""
    s = x.shape[axis]
    if s is None or not b.is_const(idx):
        return
    a = np.asarray(b.array(idx, "indices"))
    if a.size and a.dtype.kind in "iu" and (int(a.min()) < -s or int(a.max()) >= s):
        bad = int(a.min()) if int(a.min()) < -s else int(a.max())
        raise ValueError(f"index {bad} is out of range [-{s}, {s}) of axis {axis}")


@imp("Gather")
def _gather(b, n, ins, at):
    x, idx = ins
    axis = _ax(at.get("axis", 0), x.ndim)
    _const_indices_in_range(b, x, idx, axis)
    return [b.op("take", x, b.cast(idx, np.int64), axis=axis)]


@imp("GatherElements")
def _gather_elements(b, n, ins, at):
    x, idx = ins
    axis = _ax(at.get("axis", 0), x.ndim)
    _const_indices_in_range(b, x, idx, axis)
    return [b.op("take_along_axis", x, b.cast(idx, np.int64), axis=axis)]


@imp("GatherND")
def _gather_nd(b, n, ins, at):
    x, idx = ins
    if not b.is_const(idx):
        raise NotImplementedError(
            "GatherND with indices computed at run time: tensorlib's getitem takes its index "
            "arrays as constants; export the indices as an initializer or a Constant")
    ind = b.array(idx, "GatherND indices").astype(np.int64)
    bd = int(at.get("batch_dims", 0))
    k = ind.shape[-1] if ind.ndim else 0
    if k < 1 or not 0 <= bd < ind.ndim or bd + k > x.ndim or \
            any(d is not None and d != e for d, e in zip(x.shape[:bd], ind.shape)):
        raise ValueError(f"GatherND: indices of shape {ind.shape} (batch_dims={bd}) do not "
                         f"fit data of shape {x.shape}")
    if None in x.shape[:bd]:
        raise NotImplementedError("GatherND with batch_dims over dynamic dims")
    # x[i0, i1, ...] with the index columns as arrays: adjacent and leading, so NumPy puts
    # their broadcast shape first, as GatherND does; a batch dim indexes itself with an
    # arange along its own axis of the indices
    lead = ind.shape[:-1]
    key = tuple(np.arange(x.shape[j]).reshape([-1 if a == j else 1 for a in range(len(lead))])
                for j in range(bd))
    key += tuple(ind[..., j] for j in range(k))
    return [b.op("getitem", x, index=key)]


@imp("ScatterElements")
def _scatter_elements(b, n, ins, at):
    x, idx, src = ins
    axis = _ax(at.get("axis", 0), x.ndim)
    idx = b.cast(idx, np.int64)
    # the reductions as differentiable ops (_scatter); a plain write keeps the largest of
    # repeated indices' values, right for repeats writing one value (as the exports of
    # scatter_reduce without include_self do); ONNX leaves other repeats undefined
    return [_scatter(b, x, idx, b.cast(src, x.dtype), at.get("reduction", "none"), axis)]


@imp("Shape")
def _shape(b, n, ins, at):
    # dynamic dims: followed symbolically to the ops that consume the shape (import_shapes)
    from .import_shapes import shape_of
    return [shape_of(b, ins[0], int(at.get("start", 0)), at.get("end"))]


@imp("Size")
def _size(b, n, ins, at):
    if None in ins[0].shape:
        raise NotImplementedError("ONNX import: Size of a tensor with dynamic dims")
    return [b.const(np.asarray(math.prod(ins[0].shape), np.int64))]


@imp("Constant")
def _constant(b, n, ins, at):
    for k in ("value", "value_float", "value_int", "value_floats", "value_ints"):
        if k in at:
            v = at[k]
            if k == "value_float" or k == "value_floats":
                return [b.const(np.asarray(v, np.float32))]
            if k in ("value_int", "value_ints"):
                return [b.const(np.asarray(v, np.int64))]
            return [b.const(v)]
    raise NotImplementedError("ONNX import: Constant without a tensor value")


@imp("ConstantOfShape")
def _constant_of_shape(b, n, ins, at):
    shape = check_elements(b.array(ins[0], "ConstantOfShape shape").astype(np.int64)
                           .reshape(-1), "ConstantOfShape shape")
    val = np.asarray(at.get("value", np.zeros(1, np.float32)))
    fill = np.asarray(val.reshape(-1)[0], dtype=val.dtype)
    if math.prod(shape) <= FOLD_MAX_ELEMENTS:
        return [b.const(np.full(shape, fill, dtype=val.dtype))]
    return [b.op("broadcast_to", b.const(fill), shape=shape)]     # allocated at run time


@imp("Range")
def _range(b, n, ins, at):
    s, e, d = (b.array(v, "Range bound").reshape(-1)[0] for v in ins)
    if d == 0:
        raise ValueError("Range delta is 0")
    if s.dtype.kind in "iu":
        count = max(-(-(int(e) - int(s)) // int(d)), 0)
    else:
        count = max(math.ceil((float(e) - float(s)) / float(d)), 0)
    check_elements((count,), "Range output")
    if count <= FOLD_MAX_ELEMENTS:
        return [b.const(np.arange(s.item(), e.item(), d.item(), dtype=s.dtype))]
    # start + i * delta, counted when the graph runs (ones summed, as tl.arange under capture)
    ones = b.op("broadcast_to", b.const(np.asarray(1, np.int64)), shape=(count,))
    i = b.op("sub", b.op("cumsum", ones, axis=0), b.const(np.asarray(1, np.int64)))
    i = b.cast(i, s.dtype)
    return [b.op("add", b.op("mul", i, b.const(np.asarray(d, s.dtype))),
                 b.const(np.asarray(s, s.dtype)))]


@imp("Slice")
def _slice(b, n, ins, at):
    x = ins[0]
    if b.opset < 10:
        starts, ends = at["starts"], at["ends"]
        axes, steps = at.get("axes"), None
    else:
        starts = _bounds(b, ins[1], "Slice starts")
        ends = _bounds(b, ins[2], "Slice ends")
        axes = b.array(ins[3], "Slice axes").tolist() if len(ins) > 3 and ins[3] is not None \
            else None
        steps = b.array(ins[4], "Slice steps").tolist() if len(ins) > 4 and \
            ins[4] is not None else None
    axes = list(range(len(starts))) if axes is None else [_ax(a, x.ndim) for a in axes]
    steps = steps or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ValueError("Slice starts, ends, axes and steps differ in length")
    index = [slice(None)] * x.ndim
    exprs = []      # (3 * axis + (0 start, 1 end), expression): bounds known at run time
    big = 1 << 62
    for a, s, e, st in zip(axes, starts, ends, steps):
        if st == 0:
            raise ValueError("Slice step is 0")
        run_time = [(f, v) for f, v in enumerate((s, e)) if not isinstance(v, int)]
        if run_time and st < 0:
            # ONNX clamps a negative-step end of -1 to "before the start"; Python reads it
            # as the last element: the two agree only on bounds known here
            raise NotImplementedError("Slice with a negative step and bounds known only at "
                                      "run time")
        exprs += [(3 * a + f, v) for f, v in run_time]
        s = None if not isinstance(s, int) else int(max(min(s, big), -big))
        e = None if not isinstance(e, int) else int(max(min(e, big), -big))
        if st < 0 and e is not None and e <= -big:
            e = None
        index[a] = slice(s, e, int(st))
    if not exprs:
        return [b.op("slice", x, index=tuple(index))]
    from ..graph.sizes import number_sources
    lowered, srcs = number_sources([e for _, e in exprs], [x], 1)
    return [b.op("slice_sized", x, *srcs, index=tuple(index),
                 sizes=tuple((w, e) for (w, _), e in zip(exprs, lowered)))]


def _bounds(b, v, what: str) -> list:
    """Slice bounds: ints, or size expressions where they follow a dynamic dim."""
    from .import_shapes import SymShape
    if isinstance(v, SymShape):
        return list(v.items)
    return [int(i) for i in np.asarray(b.array(v, what)).reshape(-1)]


@imp("Split")
def _split(b, n, ins, at):
    x = ins[0]
    axis = _ax(at.get("axis", 0), x.ndim)
    if len(ins) > 1 and ins[1] is not None:
        sizes = b.array(ins[1], "Split sizes").tolist()
    elif "split" in at:
        sizes = list(at["split"])
    else:
        size, k = x.shape[axis], len(n.output)
        if size is None:
            raise NotImplementedError("ONNX import: Split along a dynamic axis")
        part = -(-size // k)
        sizes = [min(part, size - i * part) for i in range(k)]
    sizes = [int(s) for s in np.asarray(sizes).reshape(-1)]
    # onnxruntime refuses these models at load; so does tensorlib rather than guessing
    if len(sizes) != len(n.output):
        raise ValueError(f"{len(sizes)} split sizes {sizes} for {len(n.output)} outputs")
    if any(s < 0 for s in sizes):
        raise ValueError(f"split sizes {sizes} must be non-negative")
    if x.shape[axis] is not None and sum(sizes) != x.shape[axis]:
        raise ValueError(f"split sizes {sizes} add up to {sum(sizes)}, not to the size "
                         f"{x.shape[axis]} of axis {axis}")
    idx = tuple(int(i) for i in np.cumsum(sizes)[:-1])
    res = b.op("split", x, indices=idx, axis=axis)
    return list(res) if isinstance(res, tuple) else [res]


@imp("Pad")
def _pad(b, n, ins, at):
    x = ins[0]
    mode = at.get("mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        raise NotImplementedError(f"ONNX import: Pad mode {mode!r}")
    if b.opset < 11:
        pads, value = list(at["pads"]), float(at.get("value", 0.0))
    else:
        pads = b.array(ins[1], "Pad pads").tolist()
        value = b.array(ins[2], "Pad value").item() if len(ins) > 2 and ins[2] is not None \
            else 0.0
    axes = list(range(x.ndim))
    if len(ins) > 3 and ins[3] is not None:
        axes = [_ax(a, x.ndim) for a in b.array(ins[3], "Pad axes").tolist()]
    k = len(axes)
    pw = [(0, 0)] * x.ndim
    for i, a in enumerate(axes):
        pw[a] = (int(pads[i]), int(pads[i + k]))
    if any(p < 0 for q in pw for p in q):
        raise NotImplementedError("ONNX import: Pad with negative pads (cropping)")
    if mode == "reflect":       # NumPy would reflect repeatedly; ONNX (and F.pad) refuse
        for a, (lo, hi) in enumerate(pw):
            size = x.shape[a]
            if size is not None and (lo or hi) and max(lo, hi) >= size:
                raise ValueError(f"reflect pads {(lo, hi)} on axis {a} must be less than "
                                 f"its size {size}")
    return [b.op("pad", x, pad_width=tuple(pw), mode=mode, value=value)]


@imp("Expand")
def _expand(b, n, ins, at):
    x = ins[0]
    if None in x.shape:         # dynamic input dims kept where the target has a 1
        from .import_shapes import SYM_IMPORTERS
        return SYM_IMPORTERS["Expand"](b, n, ins, at)
    shape = [int(s) for s in b.array(ins[1], "Expand shape")]
    out = tuple(np.broadcast_shapes(tuple(x.shape), tuple(shape)))
    return [x if out == x.shape else b.op("broadcast_to", x, shape=out)]


@imp("Tile")
def _tile(b, n, ins, at):
    return [b.op("tile", ins[0], reps=tuple(int(r) for r in b.array(ins[1], "Tile repeats")))]


@imp("Trilu")
def _trilu(b, n, ins, at):
    k = int(b.array(ins[1], "Trilu k").item()) if len(ins) > 1 and ins[1] is not None else 0
    return [b.op("triu" if at.get("upper", 1) else "tril", ins[0], k=k)]


@imp("OneHot")
def _one_hot(b, n, ins, at):
    idx, depth, values = ins
    if _ax(at.get("axis", -1), idx.ndim + 1) != idx.ndim:
        raise NotImplementedError("ONNX import: OneHot with an axis other than the last")
    d = int(b.array(depth, "OneHot depth").item())
    vals = b.array(values, "OneHot values")
    # the spec's indices: a negative one counts from the end, one outside [-d, d) gives a
    # row of off values (as onnxruntime)
    i = b.cast(idx, np.int64)
    zero = b.const(np.asarray(0, np.int64))
    i = b.op("where", b.op("lt", i, zero), b.op("add", i, b.const(np.asarray(d, np.int64))), i)
    ok = b.op("logical_and", b.op("ge", i, zero), b.op("lt", i, b.const(np.asarray(d, np.int64))))
    oh = b.op("one_hot", b.op("where", ok, i, zero), num_classes=d)
    oh = b.op("mul", oh, b.cast(b.op("expand_dims", ok, axis=(idx.ndim,)), np.int64))
    if vals.dtype == np.int64 and vals.tolist() == [0, 1]:
        return [oh]
    oh = b.cast(oh, vals.dtype)
    off, on = vals[0], vals[1]
    return [b.op("add", b.op("mul", oh, b.const(np.asarray(on - off, vals.dtype))),
                 b.const(np.asarray(off, vals.dtype)))]


# --- reductions --------------------------------------------------------------------------------
def _reduce_axes(b, ins, at, x, op_type):
    pos_input = b.opset >= 18 or (b.opset >= 13 and op_type == "ReduceSum")
    axes = _axes_input(b, ins, at) if pos_input or "axes" in at else None
    if axes is None or (not axes and not at.get("noop_with_empty_axes", 0)):
        return None
    return tuple(sorted(_ax(a, x.ndim) for a in axes))


def _reducer(kind):
    def f(b, n, ins, at):
        x = ins[0]
        axes = _reduce_axes(b, ins, at, x, n.op_type)
        if axes == ():
            return [x]
        keep = bool(at.get("keepdims", 1))
        if kind == "sumsquare":
            return [b.op("sum", b.op("square", x), axis=axes, keepdims=keep)]
        if kind in ("l1", "l2"):
            return [b.op("norm", x, axis=axes, keepdims=keep, ord=1 if kind == "l1" else 2)]
        return [b.op(kind, x, axis=axes, keepdims=keep)]
    return f


for _k, _v in {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max",
               "ReduceMin": "min", "ReduceProd": "prod", "ReduceLogSumExp": "logsumexp",
               "ReduceL1": "l1", "ReduceL2": "l2", "ReduceSumSquare": "sumsquare"}.items():
    IMPORTERS[_k] = _reducer(_v)


@imp("ArgMax", "ArgMin")
def _argmax(b, n, ins, at):
    if at.get("select_last_index", 0):
        raise NotImplementedError(f"ONNX import: {n.op_type} with select_last_index=1")
    x = ins[0]
    op = "argmax" if n.op_type == "ArgMax" else "argmin"
    return [b.op(op, x, axis=_ax(at.get("axis", 0), x.ndim),
                 keepdims=bool(at.get("keepdims", 1)))]


@imp("Det")
def _det(b, n, ins, at):
    return [b.op("det", ins[0])]


@imp("TopK")
def _topk(b, n, ins, at):
    if b.opset < 10:
        raise NotImplementedError("ONNX import: TopK before opset 10 (k as an attribute)")
    x = ins[0]
    axis = _ax(at.get("axis", -1), x.ndim)
    kk = b.array(ins[1], "TopK k").reshape(-1)
    if kk.size != 1:
        raise ValueError(f"k must hold one value, got {kk.size}")
    k = int(kk[0])
    if k < 0 or (x.shape[axis] is not None and k > x.shape[axis]):
        raise ValueError(f"k={k} is out of range for axis {axis} of size {x.shape[axis]}")
    order = b.op("argsort", x, axis=axis, descending=bool(at.get("largest", 1)))
    # (sorted=0 allows any order; sorted order is one of them)
    idx = b.op("slice", order, index=(slice(None),) * axis + (slice(0, k),))
    return [b.op("take_along_axis", x, idx, axis=axis), idx]


def _topk_sym(b, n, ins, at):
    """TopK with k a run-time size (``x.shape[axis]`` for a full sort, as tensorlib exports
    argsort over a dynamic axis): the sorted order sliced at run time."""
    from ..graph.sizes import number_sources
    from .import_shapes import SymShape, _items, fold
    x = ins[0]
    if isinstance(x, SymShape):
        raise NotImplementedError("TopK of a shape computed at run time")
    items, _ = _items(b, ins[1], "TopK k")
    if len(items) != 1:
        raise ValueError(f"k must hold one value, got {len(items)}")
    axis = _ax(at.get("axis", -1), x.ndim)
    order = b.op("argsort", x, axis=axis, descending=bool(at.get("largest", 1)))
    e = fold(items[0])
    if e != fold(("dim", x, axis)):
        lowered, srcs = number_sources([e], [order], 1)
        order = b.op("slice_sized", order, *srcs, index=(slice(None),) * x.ndim,
                     sizes=((3 * axis + 1, lowered[0]),))
    return [b.op("take_along_axis", x, order, axis=axis), order]


def _register_topk():
    from .import_shapes import SYM_IMPORTERS
    SYM_IMPORTERS["TopK"] = _topk_sym


_register_topk()


@imp("CumSum")
def _cumsum(b, n, ins, at):
    x = ins[0]
    if at.get("exclusive", 0):
        raise NotImplementedError("ONNX import: CumSum with exclusive=1")
    a = _ax(b.array(ins[1], "CumSum axis").item(), x.ndim)
    if at.get("reverse", 0):
        x = b.op("flip", x, axis=(a,))
        return [b.op("flip", b.op("cumsum", x, axis=a), axis=(a,))]
    return [b.op("cumsum", x, axis=a)]


@imp("DFT")
def _dft(b, n, ins, at):
    """The one-sided DFT of a real signal (tensorlib's ``rdft``): input (..., n, 1),
    ``onesided=1``, no ``inverse``, no ``dft_length``, the signal axis next to last."""
    x = ins[0]
    axis = at.get("axis", 1)
    if len(ins) > 2 and ins[2] is not None:
        axis = int(b.array(ins[2], "DFT axis").item())
    if len(ins) > 1 and ins[1] is not None:
        raise NotImplementedError("ONNX import: DFT with dft_length")
    if at.get("inverse", 0) or not at.get("onesided", 0) or x.shape[-1] != 1:
        raise NotImplementedError("ONNX import: DFT other than the one-sided transform of a "
                                  "real signal (inverse=0, onesided=1, last dim 1)")
    if _ax(axis, x.ndim) != x.ndim - 2:
        raise NotImplementedError("ONNX import: DFT over an axis other than the one before "
                                  "the last")
    return [b.op("rdft", b.op("squeeze", x, axis=(x.ndim - 1,)))]


# --- recurrent ---------------------------------------------------------------------------------
_IOFC_TO_IFGO = [0, 2, 3, 1]


def _recurrent(b, ins, at, op: str, acts: list):
    """The checks of the unrolled GRU (linear_before_reset=0): sequence_lens, activations;
    (x, bias)."""
    x = ins[0]
    bias = ins[3] if len(ins) > 3 else None
    if len(ins) > 4 and ins[4] is not None:
        lens = b.array(ins[4], f"{op} sequence_lens") if b.is_const(ins[4]) else None
        if lens is None or not np.all(lens == x.shape[0]):
            raise NotImplementedError(f"ONNX import: {op} with varying sequence_lens")
    given = [a.decode() if isinstance(a, bytes) else a for a in at.get("activations", [])]
    if given and [a.lower() for a in given] not in (acts, acts * 2):
        raise NotImplementedError(f"ONNX import: {op} activations {given}")
    return x, bias


def _recurrent_arrays(b, n, ins, at, op: str, n_gates: int, x, bias):
    """(H, T, W, R, B, directions, per-step inputs, a zero state matrix, name base)."""
    H = int(at["hidden_size"])
    T = x.shape[0]
    if T is None:
        raise NotImplementedError(_DYNAMIC_T.format(op=op))
    W, R = b.array(ins[1], f"{op} W"), b.array(ins[2], f"{op} R")
    B = b.array(bias, f"{op} B") if bias is not None else np.zeros(
        (W.shape[0], 2 * n_gates * H), W.dtype)
    direction = at.get("direction", "forward")
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    steps = [b.op("slice", x, index=(t,)) for t in range(T)]
    zeros = b.const(np.zeros((x.shape[2], H), W.dtype))
    return H, T, W, R, B, dirs, steps, zeros, n.name or n.output[0]


def _initial(b, state, d: int, steps, zeros):
    """Direction d's initial state: the given one, or zeros with the batch of the input."""
    return b.op("slice", state, index=(d,)) if state is not None else \
        b.op("matmul", steps[0], zeros)


def _unroll(b, kind: str, T: int, step, state):
    """``state = step(t, state)`` over the steps in the direction's order; (the stacked
    first element of each step's state, the last state)."""
    outs = [None] * T
    for t in (range(T - 1, -1, -1) if kind == "reverse" else range(T)):
        state = step(t, state)
        outs[t] = state[0]
    return b.op("stack", *outs, axis=0), state


# ONNX's gate blocks -> tensorlib's (PyTorch's) order: LSTM i,o,f,c -> i,f,g,o; GRU z,r,h ->
# r,z,n (linear_before_reset=1 is PyTorch's GRU; 0 is unrolled by _gru below)
_SEQ_OPS = {"LSTM": ("lstm_seq", _IOFC_TO_IFGO, 2), "GRU": ("gru_seq", [1, 0, 2], 1),
            "RNN": ("rnn_seq", [0], 1)}


def _seq_weight(b, v, index: tuple, order, H: int, name: str):
    """One direction's block of an ONNX W, R or B (``index`` picks it) in tensorlib's gate
    order: a new parameter when the tensor is known at import, gather ops otherwise."""
    perm = np.concatenate([np.arange(k * H, (k + 1) * H) for k in order])
    if v.node.op in ("constant", "variable"):
        return b.param(name, np.ascontiguousarray(b.array(v)[index][perm]))
    return b.op("take", b.op("slice", v, index=index), b.const(perm), axis=0)


def _seq_import(b, n, ins, at, kind: str):
    """ONNX LSTM / GRU (linear_before_reset=1) / RNN as one whole-sequence op per direction
    (ops/nn_rnn_seq.py): the sequence length and the batch stay dynamic."""
    op, order, ns = _SEQ_OPS[kind]
    G = len(order)
    x = ins[0]
    if len(ins) > 4 and ins[4] is not None:
        lens = b.array(ins[4], f"{kind} sequence_lens") if b.is_const(ins[4]) else None
        if lens is None or x.shape[0] is None or not np.all(lens == x.shape[0]):
            raise NotImplementedError(f"ONNX import: {kind} with sequence_lens (only all equal "
                                      "to a static sequence length is supported)")
    if at.get("clip") is not None:
        raise NotImplementedError(f"ONNX import: {kind} with clip")
    given = [a.lower() for a in at.get("activations", [])]
    acts = {"LSTM": [["sigmoid", "tanh", "tanh"]], "GRU": [["sigmoid", "tanh"]],
            "RNN": [["tanh"], ["relu"]]}[kind]
    if given and not any(given in (a, a * 2) for a in acts):
        raise NotImplementedError(f"ONNX import: {kind} activations {at['activations']}")
    direction = at.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"ONNX import: {kind} direction {direction!r}")
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    H = int(at["hidden_size"])
    layout = int(at.get("layout", 0))
    states = [ins[k] if len(ins) > k else None for k in (5, 6)[:ns]]
    if layout:      # batch first: X (N, T, I), states (N, D, H)
        x = b.op("transpose", x, axes=(1, 0, 2))
        states = [None if s is None else b.op("transpose", s, axes=(1, 0, 2)) for s in states]
    bias = ins[3] if len(ins) > 3 else None
    base = n.name or n.output[0]
    extra = {"nonlinearity": given[0] if given else "tanh"} if kind == "RNN" else {}
    ys, finals = [], [[] for _ in range(ns)]
    for d, walk in enumerate(dirs):
        w = [_seq_weight(b, ins[1], (d,), order, H, f"{base}.W{d}"),
             _seq_weight(b, ins[2], (d,), order, H, f"{base}.R{d}")]
        if bias is not None:
            w += [_seq_weight(b, bias, (d, slice(k * G * H, (k + 1) * G * H)), order, H,
                              f"{base}.{nm}{d}") for k, nm in enumerate(("Wb", "Rb"))]
        init = [b.op("slice", s, index=(d,)) if s is not None else
                b.op("fill", x, shape=(0, H), dims=((0, 1),), value=0.0,
                     dtype=np.dtype(x.dtype).name) for s in states]
        outs = b.op(op, x, *init, *w, reverse=walk == "reverse", **extra)
        ys.append(outs[0])
        for k in range(ns):
            finals[k].append(outs[1 + k])
    y = b.op("stack", *ys, axis=1)                              # (T, D, N, H)
    finals = [b.op("stack", *f, axis=0) for f in finals]        # (D, N, H)
    if layout:
        y = b.op("transpose", y, axes=(2, 0, 1, 3))
        finals = [b.op("transpose", f, axes=(1, 0, 2)) for f in finals]
    return [y, *finals]


@imp("LSTM")
def _lstm(b, n, ins, at):
    if len(ins) > 7 and ins[7] is not None:
        raise NotImplementedError("ONNX import: LSTM with peepholes")
    if at.get("input_forget", 0):
        raise NotImplementedError("ONNX import: LSTM with input_forget")
    return _seq_import(b, n, ins, at, "LSTM")


@imp("RNN")
def _rnn(b, n, ins, at):
    return _seq_import(b, n, ins, at, "RNN")


@imp("GRU")
def _gru(b, n, ins, at):
    """ONNX GRU (gate order z, r, h), either ``linear_before_reset`` (1 is what PyTorch
    exports: the reset gate scales ``R_h h + Rb_h``; 0 scales ``h`` before ``R_h``). The first
    is one ``gru_seq`` op per direction; the second is unrolled (a static length only)."""
    if at.get("linear_before_reset", 0):
        return _seq_import(b, n, ins, at, "GRU")
    x, bias = _recurrent(b, ins, at, "GRU", ["sigmoid", "tanh"])
    h0 = ins[5] if len(ins) > 5 else None
    if at.get("clip") is not None or at.get("layout", 0):
        raise NotImplementedError("ONNX import: GRU with clip or layout=1")
    direction = at.get("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise ValueError(f"ONNX import: GRU direction {direction!r}")
    before_reset = bool(at.get("linear_before_reset", 0))
    H, T, W, R, B, dirs, steps, zeros, base = _recurrent_arrays(b, n, ins, at, "GRU", 3, x,
                                                                 bias)
    zr, hh = (slice(None), slice(0, 2 * H)), (slice(None), slice(2 * H, 3 * H))
    ys, hs = [], []
    for d, kind in enumerate(dirs):
        wd = b.param(f"{base}.W{d}", W[d])
        bw = b.param(f"{base}.Wb{d}", B[d][:3 * H])
        # the z, r rows of R and the h rows apart: with linear_before_reset=0 the h rows act
        # on r * h, which is only known after the z, r gates
        r_zr = b.param(f"{base}.R{d}", R[d][:2 * H])
        b_zr = b.param(f"{base}.Rb{d}", B[d][3 * H:5 * H])
        r_h = b.param(f"{base}.Rh{d}", R[d][2 * H:])
        b_h = b.param(f"{base}.Rbh{d}", B[d][5 * H:])

        def step(t, state, wd=wd, bw=bw, r_zr=r_zr, b_zr=b_zr, r_h=r_h, b_h=b_h):
            h = state[0]
            xw = b.op("linear", steps[t], wd, bw)
            gates = b.op("sigmoid", b.op("add", b.op("slice", xw, index=zr),
                                         b.op("linear", h, r_zr, b_zr)))
            z = b.op("slice", gates, index=(slice(None), slice(0, H)))
            rg = b.op("slice", gates, index=(slice(None), slice(H, 2 * H)))
            if before_reset:
                rec = b.op("mul", rg, b.op("linear", h, r_h, b_h))
            else:
                rec = b.op("linear", b.op("mul", rg, h), r_h, b_h)
            cand = b.op("tanh", b.op("add", b.op("slice", xw, index=hh), rec))
            # h' = (1 - z) * cand + z * h = cand + z * (h - cand)
            return (b.op("add", cand, b.op("mul", z, b.op("sub", h, cand))),)
        y, (h,) = _unroll(b, kind, T, step, (_initial(b, h0, d, steps, zeros),))
        ys.append(y)
        hs.append(h)
    return [b.op("stack", *ys, axis=1), b.op("stack", *hs, axis=0)]


# --- grid sampling -----------------------------------------------------------------------------
_GRID_MODES = {"bilinear": "bilinear", "linear": "bilinear", "nearest": "nearest",
               "bicubic": "bicubic", "cubic": "bicubic"}


@imp("GridSample")
def _grid_sample(b, n, ins, at):
    x, grid = ins[0], ins[1]
    mode = at.get("mode", "linear" if b.opset >= 20 else "bilinear")
    pad = at.get("padding_mode", "zeros")
    if mode not in _GRID_MODES or pad not in ("zeros", "border", "reflection"):
        raise NotImplementedError(f"ONNX import: GridSample with mode={mode!r}, "
                                  f"padding_mode={pad!r}")
    if x.ndim not in (4, 5) or (x.ndim == 5 and _GRID_MODES[mode] == "bicubic"):
        raise NotImplementedError(f"ONNX import: GridSample {mode!r} of a {x.ndim}-d input; "
                                  "tensorlib samples 4-d inputs and 5-d ones (not cubic)")
    return [b.op("grid_sample", x, b.cast(grid, x.dtype), mode=_GRID_MODES[mode],
                 padding_mode=pad, align_corners=bool(at.get("align_corners", 0)),
                 deriv=(0,) * (x.ndim - 2))]


def _affine_grid(b, n, ins, at):
    from .import_shapes import SymShape
    theta, size = ins[0], ins[1]
    items = (list(size.items) if isinstance(size, SymShape)
             else [int(v) for v in b.array(size, "AffineGrid size").reshape(-1)])
    # the batch comes from theta; the other sizes must be known at import
    rest = items[1:]
    if len(items) not in (4, 5) or not all(isinstance(v, int) for v in rest):
        raise NotImplementedError(f"ONNX import: AffineGrid with size {items}: tensorlib needs "
                                  "(N, C, H, W) or (N, C, D, H, W) with C and the spatial "
                                  "sizes known at import")
    return [b.op("affine_grid", theta, size=tuple(rest),
                 align_corners=bool(at.get("align_corners", 0)))]


def _register_affine_grid():
    from .import_shapes import SYM_IMPORTERS
    IMPORTERS["AffineGrid"] = _affine_grid
    SYM_IMPORTERS["AffineGrid"] = _affine_grid     # size from Shape of a dynamic batch


_register_affine_grid()


# --- resampling (import_resize) --------------------------------------------------------------
def _register_resize():
    from .import_shapes import SYM_IMPORTERS
    IMPORTERS["Resize"] = _resize
    SYM_IMPORTERS["Resize"] = _resize     # sizes from Shape of a dynamic batch


# ONNX (mode, coordinate_transformation_mode, nearest_mode or cubic_coeff_a) -> the
# registry's ``resize`` (PyTorch's interpolate along one axis, sizes known at run time):
# the forms whose sampling is the same
_RUN_TIME_RESIZE = {
    ("nearest", "asymmetric", "floor"): ("nearest", False),
    ("nearest", "half_pixel", "round_prefer_ceil"): ("nearest-exact", False),
    ("nearest", "tf_half_pixel_for_nn", "floor"): ("nearest-exact", False),
    ("linear", "half_pixel", None): ("linear", False),
    ("linear", "pytorch_half_pixel", None): ("linear", False),
    ("linear", "align_corners", None): ("linear", True),
    ("cubic", "half_pixel", -0.75): ("cubic", False),
    ("cubic", "pytorch_half_pixel", -0.75): ("cubic", False),
    ("cubic", "align_corners", -0.75): ("cubic", True),
}


def _resize(b, n, ins, at):
    """Resize: the constant resampling of import_resize where the sizes are known at
    import, else (a dynamic axis resized other than by an integer upscale, or output sizes
    computed at run time) one registry ``resize`` (``resize_linear`` for linear by a
    scale) per resized axis, which builds its rows when it runs: the nodes ``interpolate``
    captures over None dims."""
    from .import_resize import ResizeImportError, resize
    try:
        return resize(b, n, ins, at)
    except ResizeImportError as e:
        out = _resize_run_time(b, ins, at)
        if out is None:
            raise ResizeImportError(f"{e}{_resize_hint(b, ins)}") from None
        return [out]


def _resize_hint(b, ins) -> str:
    """What to do about a Resize neither import form takes: input_shapes= where fixing the
    dynamic sizes makes it constant, else which size computations the importer follows."""
    from .import_resize import _inputs
    from .import_shapes import SymShape
    x = ins[0]
    if isinstance(x, SymShape):
        return ""
    try:
        _, sc, sz = _inputs(b, ins)
    except ValueError:
        return ""
    v = sc if sc is not None else sz
    if not isinstance(v, SymShape) and v.node.op not in ("constant", "variable") and (
            sc is not None or _sizes_from_data(b, v) is None):
        return ("; tl.onnx.load follows sizes computed from Shape by integer arithmetic "
                "(Gather, Slice, Concat, Add/Sub/Mul/Div) or by Cast -> Mul by constant "
                "scales -> Floor/Ceil -> Cast(int64), and constant scales, not this "
                "computation")
    if None in tuple(x.shape):
        return ("; or pass input_shapes={input name: full shape} to tl.onnx.load to fix "
                "the dynamic sizes at import (tensorlib then builds the resampling as "
                "constants)")
    return ""


def _resize_form(b, at, x):
    """(tensorlib's resize mode, align_corners, ctm) of a Resize whose sampling a registry
    ``resize`` reproduces at every size, or None."""
    if int(at.get("antialias", 0)) or int(at.get("exclude_outside", 0)) or \
            at.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        return None
    mode = at.get("mode", "nearest")
    if b.opset < 11:
        # Resize-10: asymmetric; its nearest rule truncates when upsampling (floor, for
        # coordinates >= 0), the only case mapped (downsampling is checked by the caller)
        ctm, extra = "asymmetric", "floor" if mode == "nearest" else None
    else:
        ctm = at.get("coordinate_transformation_mode", "half_pixel")
        extra = (at.get("nearest_mode", "round_prefer_floor") if mode == "nearest" else
                 float(at.get("cubic_coeff_a", -0.75)) if mode == "cubic" else None)
    form = _RUN_TIME_RESIZE.get((mode, ctm, extra))
    if form is None or (mode != "nearest" and x.dtype.kind != "f"):
        return None
    return form[0], form[1], ctm


def _factor(s) -> float:
    """The Python float of a float32 scale, as written before export (0.7, not
    0.69999998807907): ``floor(n * factor)`` then gives onnxruntime's float32 output size
    and eager interpolate's."""
    return float(str(np.float32(s)))


def _unlower(e, node):
    """A ``dim_size`` expression over ``node``'s input indices -> over its input values."""
    if isinstance(e, (int, np.integer)):
        return int(e)
    if e[0] == "dim":
        return ("dim", node.inputs[e[1]], e[2])
    return (e[0], _unlower(e[1], node), _unlower(e[2], node))


def _exact_ratio(v: float, dtype) -> tuple[int, int]:
    """(p, q) of a float scale as it was written (0.7 -> 7 / 10, not the binary value just
    below it), so ``n * p // q`` is the float product rounded as onnxruntime rounds it."""
    from fractions import Fraction
    f = Fraction(str(np.dtype(dtype).type(v)) if np.dtype(dtype).itemsize == 4 else repr(v))
    return f.numerator, f.denominator


def _sizes_from_data(b, v, depth: int = 0):
    """The elements of a 1-d int shape tensor computed as data from dims (``Shape`` ->
    Cast(float) -> Mul by constant scales -> Floor/Ceil -> Cast(int64): the export of
    ``interpolate(recompute_scale_factor=True)``) as size expressions, or None where the
    chain is something else."""
    from .import_shapes import fold
    n = v.node
    if depth > 16 or v.ndim != 1 or v.shape[0] is None:
        return None
    if n.op == "constant" and v.dtype.kind in "iu":
        return [int(a) for a in np.asarray(n.attrs["value"]).reshape(-1)]
    if n.op == "stack" and all(i.ndim == 0 and (i.node.op == "dim_size" or (
            i.node.op == "constant" and i.dtype.kind in "iu")) for i in n.inputs):
        return [_unlower(i.node.attrs["expr"], i.node) if i.node.op == "dim_size"
                else int(np.asarray(i.node.attrs["value"])) for i in n.inputs]
    if n.op == "cast" and v.dtype.kind in "iu":
        src = n.inputs[0]
        if src.node.op in ("floor", "ceil") and src.node.inputs[0].node.op == "mul":
            m = src.node.inputs[0].node
            cs = [i for i in m.inputs if i.node.op in ("constant", "variable")]
            data = [i for i in m.inputs if i not in cs]
            if len(cs) != 1 or len(data) != 1 or data[0].node.op != "cast":
                return None
            dims = _sizes_from_data(b, data[0].node.inputs[0], depth + 1)
            f = np.asarray(b.array(cs[0]), np.float64).reshape(-1)
            if dims is None or f.size not in (1, len(dims)) or not np.all(f > 0):
                return None
            f = np.broadcast_to(f, (len(dims),))
            out = []
            for e, s in zip(dims, f):
                p, q = _exact_ratio(float(s), cs[0].dtype)
                num = ("mul", e, p)
                out.append(fold(("floordiv", num, q) if src.node.op == "floor"
                                else ("floordiv", ("add", num, q - 1), q)))
            return out
        if src.dtype.kind in "iu":
            return _sizes_from_data(b, src, depth + 1)
    return None


def _resize_run_time(b, ins, at):
    """The run-time form of a Resize (constant scales, or sizes constant or computed from
    shapes), or None where it has none."""
    from ..graph.sizes import number_sources
    from .import_resize import _inputs
    from .import_shapes import SymShape, fold
    x = ins[0]
    if isinstance(x, SymShape):
        return None
    form = _resize_form(b, at, x)
    if form is None:
        return None
    mode, align, ctm = form
    _, scales_v, sizes_v = _inputs(b, ins)
    axes = [_ax(a, x.ndim) for a in at["axes"]] if "axes" in at else list(range(x.ndim))
    if scales_v is not None:
        if isinstance(scales_v, SymShape) or scales_v.node.op not in ("constant", "variable"):
            return None                       # scales computed at run time from data
        sc = np.asarray(b.array(scales_v), np.float32).reshape(-1)
        if sc.size != len(axes):
            raise ValueError(f"ONNX import: Resize scales has {sc.size} values for "
                             f"{len(axes)} axes")
        if b.opset < 11 and np.any(sc < 1):
            return None                       # Resize-10 nearest downsampling: ceil
        items = [None if s == 1 else _factor(s) for s in sc]
    elif isinstance(sizes_v, SymShape):
        items = [fold(e) for e in sizes_v.items]
    elif sizes_v.node.op in ("constant", "variable") and sizes_v.dtype.kind in "iu":
        items = [int(v) for v in b.array(sizes_v).reshape(-1)]
    else:
        items = _sizes_from_data(b, sizes_v)
        if items is None:
            return None                       # sizes computed at run time from data
    if len(items) != len(axes):
        raise ValueError(f"ONNX import: Resize sizes has {len(items)} values for {len(axes)} "
                         "axes")
    y = x
    for a, e in zip(axes, items):
        if e is None or (scales_v is None and e == fold(("dim", x, a))):
            continue                          # kept as it is (onnxruntime copies the rows)
        if scales_v is not None:
            kw = dict(axis=a, size=None, factor=e, recompute=False, align_corners=align)
            srcs: tuple = ()
            if mode == "linear":              # as interpolate captures it
                out = b.op("resize_linear", y, axis=a, factor=e, align_corners=align)
            else:
                out = b.op("resize", y, mode=mode, **kw)
        else:
            if isinstance(e, int) and e <= 0:
                raise ValueError(f"ONNX import: Resize to size {e} along axis {a}")
            lowered, srcs = number_sources([e] if not isinstance(e, int) else [], (), 1)
            kw = dict(axis=a, size=e if isinstance(e, int) else None, factor=None,
                      recompute=False, align_corners=align,
                      **({"sizes": ((0, lowered[0]),)} if lowered else {}))
            out = b.op("resize", y, *srcs, mode=mode, **kw)
        if ctm == "pytorch_half_pixel" and not (isinstance(e, int) and scales_v is None
                                                and e != 1):
            # a single output reads coordinate 0 (half_pixel's formula otherwise): row 0,
            # which nearest (asymmetric, floor) reads at that size
            first = b.op("resize", y, *srcs, mode="nearest", **kw)
            if scales_v is None and e == 1:
                out = first
            else:
                one = b.op("eq", _size_value(b, ("dim", out, a)),
                           b.const(np.asarray(1, np.int64)))
                out = b.op("where", one, first, out)
        y = out
    return y


_register_resize()


# --- run-time sizes as data: Min/Max, Range, ScatterND (tensorlib's own dynamic setitem) ------
# A comparison of two sizes as size arithmetic: d // _BIG is -1 for -_BIG <= d < 0 and 0 for
# 0 <= d < _BIG, far beyond any tensor's size; graph.sizes has only + - * // %
_BIG = 1 << 62


def _is_neg(d):
    """1 where expression ``d`` is negative, else 0 (an expression)."""
    return ("mul", ("floordiv", d, _BIG), -1)


def _min2(a, c):
    d = ("sub", a, c)
    return ("add", c, ("mul", d, _is_neg(d)))


def _max2(a, c):
    d = ("sub", a, c)
    return ("sub", a, ("mul", d, _is_neg(d)))


def _sym_extreme(pick):
    def f(b, n, ins, at):
        from .import_shapes import SymShape, _broadcast, _items
        parts = [_items(b, v, f"{n.op_type} operand") for v in ins if v is not None]
        acc = parts[0][0]
        for items, _ in parts[1:]:
            acc, items = _broadcast(acc, items)
            acc = [pick(x, y) for x, y in zip(acc, items)]
        return [SymShape(acc, scalar=all(s for _, s in parts))]
    return f


def _size_value(b, e) -> Value:
    """A 0-d int64 tensor holding size expression ``e`` (over graph values' dims) when the
    graph runs: one ``dim_size`` node (O(1), any sign)."""
    from ..graph.sizes import number_sources
    from .import_shapes import fold
    e = fold(e)
    if isinstance(e, int):
        return b.const(np.asarray(e, np.int64))
    (lowered,), srcs = number_sources([e])
    return b.op("dim_size", *srcs, expr=lowered)


def _materialize(b, v) -> Value:
    """A SymShape as an int64 tensor computed at run time (an index used as data)."""
    from .import_shapes import SymShape
    if not isinstance(v, SymShape):
        return v
    vals = [_size_value(b, e) for e in v.items]
    if v.scalar:
        return vals[0]
    if not vals:
        return b.const(np.zeros(0, np.int64))
    return b.op("stack", *vals, axis=0)


def _sym_range(b, n, ins, at):
    """Range with a run-time start or limit (a constant integer delta): the count
    ``max(ceil((limit - start) / delta), 0)`` as a size expression, then
    ``start + delta * i`` from a cumulative sum of ones of that length."""
    from ..graph.sizes import number_sources
    from .import_shapes import SymShape, _items
    (start,), _ = _items(b, ins[0], "Range start")
    (limit,), _ = _items(b, ins[1], "Range limit")
    (delta,), _ = _items(b, ins[2], "Range delta")
    if not isinstance(delta, int):
        raise NotImplementedError("Range with a run-time delta: tensorlib needs the step at "
                                  "import")
    if delta == 0:
        raise ValueError("Range delta is 0")
    dts = [v.dtype for v in ins if not isinstance(v, SymShape)]
    dt = np.dtype(dts[0] if dts else np.int64)
    # ceil(a / d) = -((-a) // d) for either sign of d (Python's floor division)
    count = _max2(("mul", ("floordiv", ("mul", ("sub", limit, start), -1), delta), -1), 0)
    lowered, srcs = number_sources([count])
    ones = b.op("fill", *srcs, shape=(0,), dims=(), value=1, dtype=dt.name,
                sizes=((0, lowered[0]),))
    i = b.op("sub", b.op("cumsum", ones, axis=0), b.const(np.asarray(1, dt)))
    if delta != 1:
        i = b.op("mul", i, b.const(np.asarray(delta, dt)))
    first = (b.const(np.asarray(start, dt)) if isinstance(start, int)
             else b.cast(_size_value(b, start), dt))
    return [b.op("add", i, first)]


def _sym_tile(b, n, ins, at):
    """Tile with repeats computed at run time (``x.repeat(y.size(0), 1)`` from PyTorch): the
    counts as ``tile``'s ``sizes`` (0 at those positions of ``reps``)."""
    from ..graph.sizes import number_sources
    from .import_shapes import _items
    items, _ = _items(b, ins[1], "Tile repeats")
    exprs = [(i, e) for i, e in enumerate(items) if not isinstance(e, int)]
    lowered, srcs = number_sources([e for _, e in exprs], [ins[0]], 1)
    reps = tuple(0 if not isinstance(e, int) else e for e in items)
    return [b.op("tile", ins[0], *srcs, reps=reps,
                 sizes=tuple((i, e) for (i, _), e in zip(exprs, lowered)))]


def _register_sizes():
    from .import_shapes import SYM_IMPORTERS
    SYM_IMPORTERS["Tile"] = _sym_tile
    SYM_IMPORTERS["Min"] = _sym_extreme(_min2)
    SYM_IMPORTERS["Max"] = _sym_extreme(_max2)
    SYM_IMPORTERS["Range"] = _sym_range


_register_sizes()

# a run-time shape used as data (an index: the int key of a dynamic setitem export; a count
# in float arithmetic: var's divisor, x / x.size(0)) is computed as a tensor (dim_size nodes)
# where the shape importers cannot follow it; ops that need it at import still refuse


def _flat_sizes(b, v, items) -> Value:
    """``v`` reshaped to ``items`` (ints, one -1, or size expressions over graph values)."""
    from .import_shapes import SYM_IMPORTERS, SymShape, fold
    items = [fold(e) for e in items]
    if all(isinstance(e, int) for e in items):
        return b.op("reshape", v, shape=tuple(items))
    return SYM_IMPORTERS["Reshape"](b, None, [v, SymShape(items)], {"allowzero": 1})[0]


def _prod(dims):
    from .import_shapes import fold
    acc = 1
    for d in dims:
        acc = fold(("mul", acc, d))
    return acc


def _window(b, t, idx, axis: int) -> Value:
    """``t`` cut to ``idx``'s extent off ``axis`` (ScatterElements takes indices smaller
    than the data there; take_along_axis broadcasts, so it reads that window)."""
    index, exprs = [slice(None)] * t.ndim, []
    for d in range(t.ndim):
        if d == axis or (t.shape[d] is not None and t.shape[d] == idx.shape[d]):
            continue
        if idx.shape[d] is not None:
            index[d] = slice(0, idx.shape[d])
        else:
            exprs.append((3 * d + 1, ("dim", idx, d)))
    if not exprs:
        return t if all(k == slice(None) for k in index) else b.op("slice", t,
                                                                     index=tuple(index))
    from ..graph.sizes import number_sources
    lowered, srcs = number_sources([e for _, e in exprs], [t], 1)
    return b.op("slice_sized", t, *srcs, index=tuple(index),
                sizes=tuple((w, e) for (w, _), e in zip(exprs, lowered)))


def _scatter(b, x, idx, u, red: str, axis: int) -> Value:
    """ScatterElements semantics (``idx`` and ``u`` of one shape) as differentiable ops:
    add and mul through scatter_add and scatter_product; none, max and min as the value of
    scatter_extreme (which has no gradient) plus zero-valued terms whose gradient reaches
    the elements that won each position (ties share it evenly, as PyTorch's amax)."""
    if red == "add":
        return b.op("scatter_add", x, idx, u, axis=axis)
    if red == "mul":
        return b.op("scatter_product", x, idx, u, include_self=True, axis=axis)
    if red not in ("none", "max", "min"):
        raise NotImplementedError(f"ONNX import: reduction={red!r} (ONNX defines none, add, "
                                  "mul, max and min)")
    # none: a plain write; repeated indices keep their largest value, right for repeats
    # writing one value (scatter_reduce's exports without include_self), which ONNX leaves
    # undefined otherwise
    m = b.op("scatter_extreme", x, idx, u, reduce="amin" if red == "min" else "amax",
             include_self=red != "none", axis=axis)
    if x.dtype.kind not in "fc":
        return m
    dt = x.dtype
    # zeros of x's shape (x * 0 would be NaN at infinite elements: -inf is what exports of
    # scatter_reduce amax without include_self write first)
    zeros = b.op("fill", x, shape=(0,) * x.ndim, dims=tuple((i, i) for i in range(x.ndim)),
                 value=0, dtype=dt.name)
    got = b.op("take_along_axis", _window(b, m, idx, axis), idx, axis=axis)
    u_won = b.op("eq", u, got)
    if red == "none":
        ones = b.op("fill", u, shape=(0,) * u.ndim, dims=tuple((i, i) for i in range(u.ndim)),
                    value=1, dtype=dt.name)
        hit = b.op("scatter_add", zeros, idx, ones, axis=axis)
        x_won = b.op("eq", hit, b.scalar(0, x))
    else:
        x_won = b.op("eq", x, m)
    count = b.op("add", b.cast(x_won, dt), b.op("scatter_add", zeros, idx, b.cast(u_won, dt),
                                                   axis=axis))
    count = b.op("maximum", count, b.scalar(1, x))
    cu = b.op("take_along_axis", _window(b, count, idx, axis), idx, axis=axis)
    return b.op("add", b.op("add", m, _zero_valued(b, x_won, x, m, count)),
                b.op("scatter_add", zeros, idx, _zero_valued(b, u_won, u, got, cu),
                     axis=axis))


def _zero_valued(b, won, v, same, count) -> Value:
    """``(v - same) / count`` where ``won`` (there ``same`` holds ``v``'s value, and has no
    gradient), 0 elsewhere: exactly 0, with gradient ``1 / count`` w.r.t. ``v`` where it
    won. Infinite winners are left out (inf - inf would be NaN)."""
    zero = b.scalar(0, v)
    ok = b.op("logical_and", won, b.op("logical_not", b.op("isinf", v)))
    diff = b.op("sub", b.op("where", ok, v, zero), b.op("where", ok, same, zero))
    return b.op("div", diff, count)


@imp("ScatterND")
def _scatter_nd(b, n, ins, at):
    """``data[indices[..., :k]] (op)= updates`` as ONNX's ScatterND: data viewed as (M, S)
    (M the product of its first k dims, S of the rest), each index tuple made one row number
    (negative entries count from the end), and the rows scattered as ScatterElements along
    axis 0. Dynamic dims follow at run time."""
    from .import_shapes import fold
    x, idx, u = ins[:3]
    red = at.get("reduction", "none")
    need = {"none": 11, "add": 16, "mul": 16}.get(red, 18)
    if b.opset < need:
        raise ValueError(f"ScatterND reduction={red!r} needs opset >= {need} (the model's is "
                         f"{b.opset})")
    if idx.dtype.kind not in "iu":
        raise ValueError(f"ScatterND indices must be integers, got {idx.dtype}")
    k, r = idx.shape[-1] if idx.ndim else None, x.ndim
    if k is None or not 1 <= k <= r:
        raise ValueError(f"ScatterND indices of shape {idx.shape}: the last dim must be known "
                         f"and between 1 and the data's rank {r}")
    want = tuple(idx.shape[:-1]) + tuple(x.shape[k:])
    if u.ndim != len(want) or any(p is not None and q is not None and p != q
                                  for p, q in zip(u.shape, want)):
        raise ValueError(f"ScatterND updates of shape {u.shape} must have the shape "
                         f"indices.shape[:-1] + data.shape[{k}:] = {want}")
    u = b.cast(u, x.dtype)
    idx = b.cast(idx, np.int64)
    dims = [fold(("dim", x, a)) for a in range(r)]
    row = None
    for j in range(k):
        col = b.op("squeeze", b.op("slice", idx, index=(Ellipsis, slice(j, j + 1))),
                   axis=(idx.ndim - 1,))
        size = dims[j] if isinstance(dims[j], int) else _size_value(b, dims[j])
        size = b.const(np.asarray(size, np.int64)) if isinstance(size, int) else size
        zero = b.const(np.asarray(0, np.int64))
        col = b.op("where", b.op("lt", col, zero), b.op("add", col, size), col)
        stride = _prod(dims[j + 1:k])
        if stride != 1:
            col = b.op("mul", col, b.const(np.asarray(stride, np.int64)) if isinstance(
                stride, int) else _size_value(b, stride))
        row = col if row is None else b.op("add", row, col)
    rows, width = _prod(dims[:k]), _prod(dims[k:])
    x2 = _flat_sizes(b, x, [rows, width])
    u2 = _flat_sizes(b, u, [-1, width])
    from .import_shapes import SYM_IMPORTERS, SymShape
    row = _flat_sizes(b, row, [-1, 1])
    target = [fold(("dim", u2, 0)), fold(("dim", u2, 1))]
    if all(isinstance(e, int) for e in target):
        idx2 = b.op("broadcast_to", row, shape=tuple(target))
    else:
        idx2 = SYM_IMPORTERS["Expand"](b, None, [row, SymShape(target)], {})[0]
    out = _scatter(b, x2, idx2, u2, red, 0)
    return [_flat_sizes(b, out, dims)]


# --- the loader --------------------------------------------------------------------------------
def supported_onnx_ops() -> list[str]:
    """The ONNX op types that :func:`load` can import, sorted."""
    return sorted(IMPORTERS)


def _attrs(node) -> dict:
    from onnx import helper, numpy_helper
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif hasattr(v, "raw_data") or hasattr(v, "dims"):
            v = numpy_helper.to_array(v)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [x.decode("utf-8", "replace") for x in v]
        out[a.name] = v
    return out


def _settled(b, v):
    """A run-time shape whose elements are all known at import is a constant again (the
    head dim of an attention, read from a static dim, then cast to float for the scale)."""
    from .import_shapes import SymShape
    if isinstance(v, SymShape) and all(isinstance(e, int) for e in v.items):
        a = np.asarray(v.items, np.int64)
        return b.const(a.reshape(()) if v.scalar else a)
    return v


def load(path_or_model, device: str = "cpu", input_shapes=None):
    """Import an ONNX model (a path, bytes or ``onnx.ModelProto``) as a runnable
    :class:`~tensorlib.export.GraphModule`.

    Float initializers become trainable tensors (``model.parameters()``), so the imported
    network can be fine-tuned with ``tl.optim``; symbolic input dims stay dynamic. Ops
    with no importer raise one ``NotImplementedError`` that lists them all. A graph input
    the file gives no shape (unknown rank, as some converters write) needs one:
    ``input_shapes={"x": (None, 3)}`` (None for a dynamic dim); it also overrides the
    shapes the file declares.

    >>> m = tl.onnx.load("resnet18.onnx")
    >>> logits = m(images)
    """
    import onnx

    from ..export import GraphModule, _validate
    if isinstance(path_or_model, onnx.ModelProto):
        model, src = path_or_model, None
    elif isinstance(path_or_model, (bytes, bytearray)):
        model, src = onnx.load_from_string(bytes(path_or_model)), None
    else:
        src = os.fspath(path_or_model)
        try:
            model = onnx.load(src)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except Exception as e:   # protobuf DecodeError and friends
            raise ValueError(f"tl.onnx.load: {src!r} is not a valid ONNX model ({e})") from None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                default=1)
    graph = model.graph
    if not graph.output:
        raise ValueError(f"tl.onnx.load: {src or 'the model'} has no graph outputs (an "
                         "empty or truncated file?)")
    missing = sorted(_op_types(graph))
    if missing:
        raise NotImplementedError(f"tl.onnx.load: the model uses ONNX ops tensorlib cannot "
                                  f"import: {', '.join(missing)} (supported: "
                                  f"{', '.join(supported_onnx_ops())})")
    b = Builder(opset)
    inits = {t.name: _initializer(t) for t in graph.initializer}
    for name, arr in inits.items():
        if arr.dtype.kind == "f":
            b._pending[name] = arr
        else:
            b.env[name] = b.const(arr)
    from onnx import helper
    given = dict(input_shapes or {})
    for vi in (v for v in graph.input if v.name not in inits):
        tt = vi.type.tensor_type
        if vi.name in given:
            dims = tuple(None if d is None else int(d) for d in given.pop(vi.name))
        elif not tt.HasField("shape"):
            raise ValueError(f"tl.onnx.load: graph input {vi.name!r} has no shape in the "
                             "file (unknown rank); tensorlib graphs need each input's rank: "
                             f"pass input_shapes={{{vi.name!r}: (None, ...)}} with None for "
                             "its dynamic dims")
        else:
            dims = tuple(d.dim_value if d.HasField("dim_value") else None
                         for d in tt.shape.dim)
        dt = helper.tensor_dtype_to_np_dtype(tt.elem_type)
        b.env[vi.name] = b.g.placeholder(dims, dt, b.device, name=vi.name)
    if given:
        raise ValueError(f"tl.onnx.load: input_shapes names no graph input: "
                         f"{sorted(given)}")
    from .import_shapes import SymShape
    for nd in graph.node:
        _import_node(b, nd)
    g = b.g
    g.name = graph.name or "onnx"
    g.outputs = []
    for o in graph.output:
        v = b.value(o.name)
        if isinstance(v, SymShape):
            raise NotImplementedError(f"tl.onnx.load: output {o.name!r} is a shape computed at "
                                      "run time; tensorlib graphs output tensors only")
        if v.node.op in ("constant", "variable", "placeholder") or v.name:
            v = b.op("copy", v) if v.node.op != "constant" else v
        v.name = o.name
        g.outputs.append(v)
    _prune(g)
    _validate(g, {n.id: n for n in g.nodes})
    owners = [(n.name, g.bindings[n][0]) for n in g.nodes if n.op == "variable"]
    meta = {"opset": opset, "producer": f"{model.producer_name} {model.producer_version}"}
    gm = GraphModule(g, owners, source=src, meta=meta)
    return gm.to(device) if device != "cpu" else gm


def _initializer(t) -> np.ndarray:
    """An initializer's array, or a ValueError naming it (dims that claim more elements
    than the data holds, truncated raw data): checked before NumPy allocates."""
    from onnx import numpy_helper
    what = f"tl.onnx.load: initializer {t.name!r}"
    check_elements(tuple(t.dims), f"{what} of shape")
    try:
        return numpy_helper.to_array(t)
    except Exception as e:     # NumPy ValueError, onnx's TypeError for unknown types, ...
        raise ValueError(f"{what} (shape {list(t.dims)}) is unreadable: {e}") from None


def _import_node(b, nd) -> None:
    """One ONNX node into the builder: its outputs go into ``b.env`` under their names."""
    from .import_shapes import SymShape
    try:
        ins = [b.value(x) for x in nd.input]
        importer = IMPORTERS[nd.op_type]
        # a data tensor sliced at run-time bounds (pos[:, :x.shape[1]]) is the data
        # importer's: only the bounds are shapes
        data_slice = nd.op_type == "Slice" and ins and not isinstance(ins[0], SymShape)
        if any(isinstance(v, SymShape) for v in ins) and not data_slice:
            # a shape computed at run time: only the shape ops follow it
            outs = _import_sym(b, nd, ins, importer)
        else:
            outs = importer(b, nd, ins, _attrs(nd))
        outs = [_settled(b, v) for v in outs]
    except (NotImplementedError, ValueError, TypeError) as e:
        raise type(e)(f"tl.onnx.load: node {nd.name or nd.output[0]!r} ({nd.op_type}): "
                      f"{e}") from None
    except (KeyError, ArithmeticError, IndexError) as e:
        # a missing attribute, a zero size: the file is broken, not tensorlib
        detail = f"missing attribute {e.args[0]!r}" if isinstance(e, KeyError) else repr(e)
        raise ValueError(f"tl.onnx.load: node {nd.name or nd.output[0]!r} ({nd.op_type}): "
                         f"invalid node ({detail})") from None
    for name, v in zip(nd.output, outs):
        if not name:
            continue
        # ONNX graphs are SSA (onnxruntime refuses a second writer): overwriting a graph
        # input or an earlier output would silently rewire the nodes that read it
        if name in b.env or name in b._pending:
            raise ValueError(f"tl.onnx.load: node {nd.name or nd.output[0]!r} "
                             f"({nd.op_type}) writes {name!r}, which is already a graph "
                             "input, initializer or node output (ONNX names are assigned "
                             "once)")
        b.env[name] = v


def _import_sym(b, nd, ins, data_importer) -> list:
    """A node reading a shape computed at run time: the shape importers follow it; where
    they cannot, it is computed as a tensor (:func:`_materialize`)."""
    from .import_shapes import SYM_IMPORTERS, SymShape
    importer = SYM_IMPORTERS.get(nd.op_type)
    err = NotImplementedError(
        f"ONNX import: {nd.op_type} of a shape computed at run time (from Shape of a dynamic "
        f"dim); tensorlib follows such shapes through {', '.join(sorted(SYM_IMPORTERS))}")
    if importer is not None:
        try:
            return importer(b, nd, ins, _attrs(nd))
        except NotImplementedError as e:
            err = e
    try:
        return data_importer(b, nd, [_materialize(b, v) if isinstance(v, SymShape) else v
                                     for v in ins], _attrs(nd))
    except NotImplementedError:
        raise err from None


def _op_types(graph) -> set[str]:
    """The op types of ``graph`` and of the subgraphs its nodes hold (If branches)."""
    out = set()
    for nd in graph.node:
        out.add(f"{nd.domain + '.' if nd.domain else ''}{nd.op_type}"
                if nd.op_type not in IMPORTERS or nd.domain not in ("", "ai.onnx") else "")
        for a in nd.attribute:
            if a.HasField("g"):
                out |= _op_types(a.g)
    return out - {""}


def _static(b, v):
    """The value of graph Value ``v`` as an array when it depends on no input, variable or
    random draw (shape arithmetic on static dims), else None."""
    from ..graph.executor import needed_nodes
    if any(n.op in ("placeholder", "variable", "random") for n in needed_nodes(b.g, [v], [])):
        return None
    out = b.g.run({}, fetches=[v])
    return (out[0] if isinstance(out, (list, tuple)) else out).numpy()


@imp("If")
def _if(b, n, ins, at):
    # tensorlib graphs have no control flow: an If whose condition is known at import (the
    # size of a static dim, as torch.onnx writes for squeeze(dim)) becomes its branch
    cond = _static(b, ins[0])
    if cond is None:
        raise NotImplementedError(
            "If: its condition depends on the inputs at run time, and tensorlib graphs have "
            "no control flow; only an If whose condition is known at import (a static size) "
            "is imported. Export with that size fixed, or without the branch")
    branch = at["then_branch"] if bool(np.asarray(cond).reshape(-1)[0]) else at["else_branch"]
    from onnx import numpy_helper
    for t in branch.initializer:
        b.env[t.name] = b.const(numpy_helper.to_array(t))
    for nd in branch.node:
        _import_node(b, nd)
    return [b.value(o.name) for o in branch.output]


def _prune(g: Graph) -> None:
    """Drop nodes the outputs do not need (unused initializers, folded shape math)."""
    from ..graph.executor import needed_nodes
    keep = {n.id for n in needed_nodes(g, g.outputs, [])}
    keep.update(v.node.id for v in g.inputs)
    dead = [n for n in g.nodes if n.id not in keep]
    for n in dead:
        g.bindings.pop(n, None)
    g.nodes = [n for n in g.nodes if n.id in keep]
    live = {v.id for n in g.nodes for v in n.outputs}
    g.values = [v for v in g.values if v.id in live]
    g.invalidate()
