"""ONNX lowering rules, one per registry op, attached as ``REGISTRY[name].onnx``.

A rule is ``rule(ctx, node) -> name | [names]``: it reads the graph node (its
attributes and its inputs' static shapes/dtypes), adds ONNX nodes through the
:class:`~tensorlib.onnx.context.ExportContext` and returns the ONNX names of the
node's outputs (None for an output it cannot produce, e.g. max-pool indices
nobody reads). Ops listed in :data:`UNSUPPORTED` have no ONNX form; exporting a
graph that uses one raises an error naming it (``docs/onnx_ops.md`` lists them).
"""
from __future__ import annotations

import math

import numpy as np

from .context import INT64_MAX, INT64_MIN, ExportContext, tensor_type

RULES: dict = {}

# op -> why it has no ONNX form (training-only gradient kernels, data-dependent ops)
_COMPLEX = ("ONNX has complex tensor types but no operator computes on them (export a "
            "real graph: the parts as tl.view_as_real pairs)")
UNSUPPORTED = {
    "conj": _COMPLEX,
    "real": _COMPLEX,
    "imag": _COMPLEX,
    "view_as_real": _COMPLEX,
    "view_as_complex": _COMPLEX,
    "complex": _COMPLEX,
    "angle_complex": _COMPLEX,
    "sgn_complex": _COMPLEX,
    "fft_c2c": "a complex FFT: " + _COMPLEX,
    "fft_r2c": "a complex FFT: " + _COMPLEX + "; `view_as_real(rfft(x))` alone exports, as "
               "ONNX DFT (opset 17+)",
    "fft_c2r": "a complex FFT: " + _COMPLEX,
    "fft_resize": "a complex FFT's padding: " + _COMPLEX,
    "cumprod": "ONNX has no cumulative product",
    "ctc_loss": "no CTC operator in ONNX (export the model up to its log_probs)",
    "erfcx": "ONNX has no scaled complementary error function",
    "i0e": "ONNX has no Bessel functions",
    "i1e": "ONNX has no Bessel functions",
    "zeta": "ONNX has no Hurwitz zeta function",
    "orthogonal_poly": "ONNX has no orthogonal polynomials (a recurrence as long as the "
                       "largest degree, read from the data)",
    "ctc_loss_grad": "a gradient kernel (export inference graphs)",
    "embedding_bag_grad": "a gradient kernel (export inference graphs)",
    "resize_linear_grad": "a gradient kernel (export inference graphs)",
    "resize_grad": "a gradient kernel (export inference graphs)",
    "slice_sized_grad": "a gradient kernel (export inference graphs)",
    "lu_factor": "the ONNX standard has no LU factorisation",
    "lu_pivots_to_permutation": "the ONNX standard has no LU factorisation",
    "triangular_solve_nocheck": "the ONNX standard has no linear solve",
    "lstsq": "the ONNX standard has no least-squares solve",
    "linalg_eig": "the ONNX standard has no eigendecomposition (and no complex results)",
    "cholesky_ex": "the ONNX standard has no Cholesky factorisation",
    "ldl_factor": "the ONNX standard has no LDL factorisation",
    "ldl_solve": "the ONNX standard has no linear solve",
    "getitem_grad": "a gradient kernel (export inference graphs)",
    "conv2d_weight_grad": "a gradient kernel (export inference graphs)",
    "conv3d_weight_grad": "a gradient kernel (export inference graphs)",
    "gelu_grad": "a gradient kernel (export inference graphs)",
    "elu_grad": "a gradient kernel (export inference graphs)",
    "softplus_grad": "a gradient kernel (export inference graphs)",
    "silu_grad": "a gradient kernel (export inference graphs)",
    "hardswish_grad": "a gradient kernel (export inference graphs)",
    "pad_grad": "a gradient kernel (export inference graphs)",
    "leaky_relu_grad": "a gradient kernel (export inference graphs)",
    "max_pool2d_grad": "a gradient kernel (export inference graphs)",
    "avg_pool2d_grad": "a gradient kernel (export inference graphs)",
    "embedding_grad": "a gradient kernel (export inference graphs)",
    "lstm_cell_grad": "a gradient kernel (export inference graphs)",
    "gru_cell_grad": "a gradient kernel (export inference graphs)",
    "lstm_seq_grad": "a gradient kernel (export inference graphs)",
    "gru_seq_grad": "a gradient kernel (export inference graphs)",
    "rnn_seq_grad": "a gradient kernel (export inference graphs)",
    "cross_entropy_grad": "a gradient kernel (export inference graphs)",
    "nll_loss_grad": "a gradient kernel (export inference graphs)",
    "softmax_grad": "a gradient kernel (export inference graphs)",
    "log_softmax_grad": "a gradient kernel (export inference graphs)",
    "linear_grad": "a gradient kernel (export inference graphs)",
    "layer_norm_grad": "a gradient kernel (export inference graphs)",
    "cumprod_grad": "a gradient kernel (export inference graphs)",
    "batch_norm_grad": "a gradient kernel (export inference graphs)",
    "group_norm_grad": "a gradient kernel (export inference graphs)",
    "inv": "the ONNX standard has no matrix inverse",
    "solve": "the ONNX standard has no linear solve",
    "slogdet": "the ONNX standard has no log-determinant (det is exported as Det)",
    "cholesky": "the ONNX standard has no Cholesky factorisation",
    "eigh": "the ONNX standard has no eigendecomposition",
    "eigvalsh": "the ONNX standard has no eigendecomposition",
    "svd": "the ONNX standard has no singular value decomposition",
    "svdvals": "the ONNX standard has no singular value decomposition",
    "qr": "the ONNX standard has no QR decomposition",
    "geqrf": "the ONNX standard has no QR decomposition",
    "erfinv": "the ONNX standard has no inverse error function",
    **{n: "the ONNX standard has no Bessel functions" for n in (
        "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "modified_bessel_i0",
        "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
        "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0")},
    "airy_ai": "the ONNX standard has no Airy function",
    "airy_ai_prime": "the ONNX standard has no Airy function",
    "gammainc": "the ONNX standard has no incomplete gamma function",
    "gammaincc": "the ONNX standard has no incomplete gamma function",
    "multinomial_draw": "ONNX's Multinomial samples with its own generator (not tensorlib's)",
    "lgamma": "the ONNX standard has no log-gamma function",
    "digamma": "the ONNX standard has no digamma function",
    "polygamma": "the ONNX standard has no polygamma function",
    "i0": "the ONNX standard has no Bessel functions",
    "i1": "the ONNX standard has no Bessel functions",
    "grid_sample_input_grad": "a gradient kernel (export inference graphs)",
    "rdft_adjoint": "the real DFT's gradient (export inference graphs)",
    "grid_sample_grid_grad": "a gradient kernel (export inference graphs)",
}
# ops whose rule covers only some attribute values (the rule raises otherwise)
PARTIAL = {
    "abs": "its input is real (ONNX has no complex arithmetic; for |z| export the norm of "
           "the pairs of `view_as_real(z)`)",
    **{op: "booleans at any opset; integers from opset 18 (Bitwise*; export with no opset "
           "picks 18)"
       for op in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not")},
    "embedding_bag_sum": "2-d input at any opset; 1-d input with offsets from opset 16 "
                         "(ScatterElements reduction='add')",
    "embedding_bag_max": "2-d input at any opset; 1-d input with offsets from opset 18 "
                         "(ScatterElements reduction='max'; export with no opset picks 18)",
    "scatter_extreme": "opset >= 18 (ScatterElements reduction='max'/'min'; export with "
                       "no opset picks 18)",
    "scatter_product": "opset >= 16 (ScatterElements reduction='mul')",
    "getitem": "integer index arrays (any number, broadcast, NumPy's placement of their "
               "dims), ints, slices, None and boolean masks (as their nonzero indices) "
               "through Gather/GatherND; not a boolean mask over a dynamic axis",
    "setitem": "indices that hit each element at most once; over dynamic dims, basic keys "
               "only (ints, slices with a positive step, None, ...) through ScatterND",
    "avg_pool2d": "no divisor_override",
    "cross_entropy": "no label smoothing",
    "repeat": "static trailing sizes",
    "gelu": "opset >= 20 uses Gelu, older opsets the erf/tanh formula",
    "logcumsumexp": "a static size along the scanned axis",
    "grid_sample": "GridSample: 4-d input from opset 16, 5-d input from opset 20",
    "det": "float64 is computed in float32 (Cast around Det: onnxruntime has no double Det; "
           "export warns)",
    "diagonal_embed": "static output shape",
    "diagonal": "static sizes of the two matrix axes",
    "random": "a graph's random draws (not a registry op: dropout in training mode, rand, "
              "randn, rand_like, randn_like, normal, uniform, bernoulli, randint, randperm, "
              "multinomial without replacement): RandomUniform/RandomNormal, or "
              "ConstantOfShape + RandomUniformLike/RandomNormalLike where the shape follows "
              "a dynamic axis; bernoulli and dropout masks as RandomUniform + Less/"
              "GreaterOrEqual (not the Bernoulli op, which onnxruntime 1.32 draws as 1 - p), "
              "randint as Floor of a float64 uniform (up to 2**53 values), randperm as TopK "
              "of uniforms. Unseeded: onnxruntime draws anew on each run from its own "
              "generator, so the values differ from tensorlib's for the same tl.manual_seed "
              "(the distribution is the same). multinomial with replacement (or one sample) "
              "uses multinomial_draw, which has no ONNX form",
}


def rule(*names):
    def deco(f):
        for n in names:
            RULES[n] = f
        return f
    return deco


def _dt(v):
    return np.dtype(v.dtype)


def _scalar(ctx: ExportContext, value, v) -> str:
    return ctx.const(np.asarray(value, dtype=_dt(v)))


# --- elementwise unary ---------------------------------------------------------------------
_UNARY = {"neg": "Neg", "abs": "Abs", "sign": "Sign", "exp": "Exp", "log": "Log",
          "sqrt": "Sqrt", "reciprocal": "Reciprocal", "sin": "Sin", "cos": "Cos",
          "tan": "Tan", "tanh": "Tanh", "erf": "Erf", "sigmoid": "Sigmoid", "relu": "Relu",
          "floor": "Floor", "ceil": "Ceil", "round": "Round", "isnan": "IsNaN",
          "isinf": "IsInf", "logical_not": "Not", "copy": "Identity", "to_device": "Identity",
          "asin": "Asin", "acos": "Acos", "atan": "Atan", "sinh": "Sinh", "cosh": "Cosh",
          "asinh": "Asinh", "acosh": "Acosh", "atanh": "Atanh"}


def _unary(onnx_op):
    def r(ctx, n):
        x = ctx.name(n.inputs[0])
        if onnx_op == "Not" and _dt(n.inputs[0]) != np.bool_:
            x = ctx.cast(x, _dt(n.inputs[0]), np.bool_)
        return ctx.op(onnx_op, [x])
    return r


for _k, _v in _UNARY.items():
    RULES[_k] = _unary(_v)


@rule("atan2")
def _atan2(ctx, n):
    # ONNX has no Atan2: atan(y / x), moved by +-pi into the left half-plane, and +-pi/2 (or 0)
    # on the y axis
    y, x = ctx.ins(n)
    dt = n.out
    zero, pi, half = (_scalar(ctx, v, dt) for v in (0.0, math.pi, math.pi / 2))
    y_neg = ctx.op("Less", [y, zero])
    base = ctx.op("Atan", [ctx.op("Div", [y, x])])
    shift = ctx.op("Where", [y_neg, ctx.op("Neg", [pi]), pi])
    left = ctx.op("Add", [base, shift])
    axis = ctx.op("Where", [y_neg, ctx.op("Neg", [half]),
                            ctx.op("Where", [ctx.op("Greater", [y, zero]), half, zero])])
    on_axis = ctx.op("Where", [ctx.op("Less", [x, zero]), left, axis])
    return ctx.op("Where", [ctx.op("Greater", [x, zero]), base, on_axis])


@rule("logaddexp")
def _logaddexp(ctx, n):
    a, b = ctx.ins(n)
    m = ctx.op("Max", [a, b])
    s = ctx.op("Add", [ctx.op("Exp", [ctx.op("Sub", [a, m])]),
                       ctx.op("Exp", [ctx.op("Sub", [b, m])])])
    return ctx.op("Add", [m, ctx.op("Log", [s])])


@rule("hypot")
def _hypot(ctx, n):
    a, b = ctx.ins(n)
    return ctx.op("Sqrt", [ctx.op("Add", [ctx.op("Mul", [a, a]), ctx.op("Mul", [b, b])])])


@rule("exp2")
def _exp2(ctx, n):
    return ctx.op("Pow", [_scalar(ctx, 2.0, n.out), ctx.name(n.inputs[0])])


@rule("log2")
def _log2(ctx, n):
    return ctx.op("Div", [ctx.op("Log", [ctx.name(n.inputs[0])]),
                          _scalar(ctx, math.log(2.0), n.out)])


@rule("log1p")
def _log1p(ctx, n):
    return ctx.op("Log", [ctx.op("Add", [ctx.name(n.inputs[0]), _scalar(ctx, 1, n.out)])])


@rule("expm1")
def _expm1(ctx, n):
    return ctx.op("Sub", [ctx.op("Exp", [ctx.name(n.inputs[0])]), _scalar(ctx, 1, n.out)])


@rule("rsqrt")
def _rsqrt(ctx, n):
    return ctx.op("Reciprocal", [ctx.op("Sqrt", [ctx.name(n.inputs[0])])])


@rule("square")
def _square(ctx, n):
    x = ctx.name(n.inputs[0])
    return ctx.op("Mul", [x, x])


@rule("trunc")
def _trunc(ctx, n):
    x = ctx.name(n.inputs[0])
    neg = ctx.op("Less", [x, _scalar(ctx, 0, n.out)])
    return ctx.op("Where", [neg, ctx.op("Ceil", [x]), ctx.op("Floor", [x])])


@rule("isfinite")
def _isfinite(ctx, n):
    x = ctx.name(n.inputs[0])
    if _dt(n.inputs[0]).kind != "f":
        return ctx.op("Equal", [x, x])      # integers are always finite
    return ctx.op("Not", [ctx.op("Or", [ctx.op("IsNaN", [x]), ctx.op("IsInf", [x])])])


@rule("tanh_grad")
def _tanh_grad(ctx, n):
    g, y = ctx.ins(n)
    return ctx.op("Mul", [g, ctx.op("Sub", [_scalar(ctx, 1, n.out), ctx.op("Mul", [y, y])])])


@rule("relu_grad")
def _relu_grad(ctx, n):
    g, x = ctx.ins(n)
    pos = ctx.op("Greater", [x, _scalar(ctx, 0, n.inputs[1])])
    return ctx.op("Where", [pos, g, _scalar(ctx, 0, n.out)])


@rule("sigmoid_grad")
def _sigmoid_grad(ctx, n):
    g, y = ctx.ins(n)
    return ctx.op("Mul", [ctx.op("Mul", [g, y]),
                          ctx.op("Sub", [_scalar(ctx, 1, n.out), y])])


@rule("leaky_relu")
def _leaky(ctx, n):
    return ctx.op("LeakyRelu", ctx.ins(n), alpha=float(n.attrs["negative_slope"]))


@rule("elu")
def _elu(ctx, n):
    return ctx.op("Elu", ctx.ins(n), alpha=float(n.attrs["alpha"]))


@rule("silu")
def _silu(ctx, n):
    x = ctx.name(n.inputs[0])
    return ctx.op("Mul", [x, ctx.op("Sigmoid", [x])])


@rule("hardswish")
def _hardswish(ctx, n):
    x = ctx.name(n.inputs[0])
    if ctx.opset >= 14:
        return ctx.op("HardSwish", [x])
    return ctx.op("Mul", [x, ctx.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)])


@rule("gelu")
def _gelu(ctx, n):
    x = ctx.name(n.inputs[0])
    approx = n.attrs["approximate"]
    if ctx.opset >= 20:
        return ctx.op("Gelu", [x], approximate=approx)
    half, one = _scalar(ctx, 0.5, n.out), _scalar(ctx, 1.0, n.out)
    if approx == "tanh":
        x3 = ctx.op("Mul", [ctx.op("Mul", [x, x]), x])
        inner = ctx.op("Mul", [_scalar(ctx, math.sqrt(2 / math.pi), n.out),
                               ctx.op("Add", [x, ctx.op("Mul", [_scalar(ctx, 0.044715, n.out),
                                                                x3])])])
        t = ctx.op("Tanh", [inner])
    else:
        t = ctx.op("Erf", [ctx.op("Mul", [x, _scalar(ctx, 1 / math.sqrt(2), n.out)])])
    return ctx.op("Mul", [ctx.op("Mul", [half, x]), ctx.op("Add", [one, t])])


@rule("binary_cross_entropy")
def _bce(ctx, n):
    p, y = ctx.ins(n)
    one, floor = _scalar(ctx, 1.0, n.out), _scalar(ctx, -100.0, n.out)
    lp = ctx.op("Max", [ctx.op("Log", [p]), floor])
    lq = ctx.op("Max", [ctx.op("Log", [ctx.op("Sub", [one, p])]), floor])
    both = ctx.op("Add", [ctx.op("Mul", [y, lp]),
                          ctx.op("Mul", [ctx.op("Sub", [one, y]), lq])])
    return ctx.op("Neg", [both])


@rule("softplus")
def _softplus(ctx, n):
    x = ctx.name(n.inputs[0])
    beta, th = float(n.attrs["beta"]), float(n.attrs["threshold"])
    bx = x if beta == 1.0 else ctx.op("Mul", [x, _scalar(ctx, beta, n.out)])
    sp = ctx.op("Softplus", [bx])
    if beta != 1.0:
        sp = ctx.op("Div", [sp, _scalar(ctx, beta, n.out)])
    return ctx.op("Where", [ctx.op("Greater", [bx, _scalar(ctx, th, n.out)]), x, sp])


@rule("clip")
def _clip(ctx, n):
    # ("strict" only changes the gradient); crossed bounds give max, as PyTorch's clamp:
    # spelled Max then Min, since ONNX leaves Clip with min > max unspecified
    lo, hi = n.attrs["min"], n.attrs["max"]
    if lo is not None and hi is not None and lo > hi:
        return ctx.op("Min", [ctx.op("Max", [ctx.name(n.inputs[0]), _scalar(ctx, lo, n.out)]),
                              _scalar(ctx, hi, n.out)])
    return ctx.op("Clip", [ctx.name(n.inputs[0]),
                           "" if lo is None else _scalar(ctx, lo, n.out),
                           "" if hi is None else _scalar(ctx, hi, n.out)])


@rule("clip_interior_grad")
def _clip_interior_grad(ctx, n):
    # g where min < x < max, else 0 (NaN included: both compares are false)
    g, x = ctx.ins(n)
    inside = ctx.op("And", [ctx.op("Greater", [x, _scalar(ctx, n.attrs["min"], n.out)]),
                            ctx.op("Less", [x, _scalar(ctx, n.attrs["max"], n.out)])])
    return ctx.op("Where", [inside, g, _scalar(ctx, 0.0, n.out)])


@rule("cast")
def _cast(ctx, n):
    return ctx.op("Cast", ctx.ins(n), to=tensor_type(n.attrs["dtype"]))


# --- elementwise binary --------------------------------------------------------------------
def _operands(ctx, n, dtype=None):
    dt = np.dtype(dtype) if dtype is not None else _dt(n.out)
    return [ctx.cast(ctx.name(v), _dt(v), dt) for v in n.inputs]


def _binary(onnx_op):
    def r(ctx, n):
        return ctx.op(onnx_op, _operands(ctx, n))
    return r


for _k, _v in {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow",
               "maximum": "Max", "minimum": "Min"}.items():
    RULES[_k] = _binary(_v)


def _compare(onnx_op, negate=False):
    def r(ctx, n):
        dt = np.result_type(*[_dt(v) for v in n.inputs])
        out = ctx.op(onnx_op, _operands(ctx, n, dt))
        return ctx.op("Not", [out]) if negate else out
    return r


for _k, _v in {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
               "ge": "GreaterOrEqual"}.items():
    RULES[_k] = _compare(_v)
RULES["ne"] = _compare("Equal", negate=True)

for _k, _v in {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor"}.items():
    RULES[_k] = (lambda o: lambda ctx, n: ctx.op(o, _operands(ctx, n, np.bool_)))(_v)


def _bitwise(logical, bitwise):
    def r(ctx, n):
        if _dt(n.out).kind == "b":
            return ctx.op(logical, ctx.ins(n))
        ctx.need_opset(18, f"{bitwise} on integers")
        return ctx.op(bitwise, _operands(ctx, n, _dt(n.out)))
    return r


for _k, _v in {"bitwise_and": ("And", "BitwiseAnd"), "bitwise_or": ("Or", "BitwiseOr"),
               "bitwise_xor": ("Xor", "BitwiseXor"), "bitwise_not": ("Not", "BitwiseNot")}.items():
    RULES[_k] = _bitwise(*_v)


def _shift(direction):
    """``a << b`` / ``a >> b`` with NumPy's (and PyTorch's) semantics on every integer dtype:
    ONNX's BitShift takes unsigned integers and leaves counts >= the bit width undefined, so
    the shift runs on uint64 with the count clamped into range. A count that is negative or
    >= the width gives 0 (left; right on unsigned) or the sign (-1 or 0; arithmetic right on
    signed). Signed right shifts go through the complement: a >> b == ~(~a >> b) for a < 0
    (~a = -1 - a needs no BitwiseNot, so this works from opset 13)."""
    def r(ctx, n):
        dt = _dt(n.out)
        if dt.kind not in "iu":
            ctx.unsupported(f"shifts of {dt} tensors have no ONNX form (integers only)")
        x, c = n.inputs
        wide = np.int64 if dt.kind == "i" else np.uint64
        a = ctx.cast(ctx.name(x), _dt(x), wide)
        # counts as int64 (a uint64 count past 2**63 turns negative: out of range either way)
        b = ctx.cast(ctx.name(c), _dt(c), np.int64)
        width = dt.itemsize * 8

        def i64(v):
            return ctx.const(np.asarray(v, np.int64))
        bad = ctx.op("Or", [ctx.op("GreaterOrEqual", [b, i64(width)]),
                            ctx.op("Less", [b, i64(0)])])
        if dt.kind == "i" and direction == "RIGHT":
            # out-of-range counts shift by width - 1: the sign, -1 or 0
            safe = ctx.cast(ctx.op("Where", [bad, i64(width - 1), b]), np.int64, np.uint64)
            neg = ctx.op("Less", [a, i64(0)])
            pos = ctx.op("Where", [neg, ctx.op("Sub", [i64(-1), a]), a])
            sh = ctx.cast(ctx.op("BitShift", [ctx.cast(pos, np.int64, np.uint64), safe],
                                 direction=direction), np.uint64, np.int64)
            out = ctx.op("Where", [neg, ctx.op("Sub", [i64(-1), sh]), sh])
            return ctx.cast(out, np.int64, dt)
        # out-of-range counts shift twice by 32 (0 in uint64; onnxruntime has no uint64
        # Where to mask with); left shifts wrap modulo 2**64 and the cast back to a narrower
        # type keeps the low bits, as the two's complement shift does
        first = ctx.cast(ctx.op("Where", [bad, i64(32), b]), np.int64, np.uint64)
        second = ctx.cast(ctx.op("Where", [bad, i64(32), i64(0)]), np.int64, np.uint64)
        sh = ctx.op("BitShift", [ctx.cast(a, wide, np.uint64), first],
                    direction=direction)
        sh = ctx.op("BitShift", [sh, second], direction=direction)
        return ctx.cast(sh, np.uint64, dt)
    return r


RULES["left_shift"], RULES["right_shift"] = _shift("LEFT"), _shift("RIGHT")


@rule("fill")
def _fill(ctx, n):
    from onnx import numpy_helper
    shape, src = n.attrs["shape"], n.inputs[0].shape
    dynamic = {p: ("dim", 0, a) for p, a in n.attrs["dims"] if src[a] is None}
    dynamic.update(dict(n.attrs.get("sizes", ())))
    if dynamic:     # sizes of a None dim: read from the inputs' shapes at run time
        target = _shape_input(ctx, n, [dynamic.get(i, s) for i, s in enumerate(shape)])
    else:
        target = ctx.ints(shape)
    value = np.array([n.attrs["value"]], dtype=n.attrs["dtype"])
    return ctx.op("ConstantOfShape", [target], value=numpy_helper.from_array(value, "value"))


def _size_expr(ctx, n, e, shapes: dict) -> str:
    """A run-time size (tensorlib.graph.sizes expression over ``n``'s inputs) as a 1-element
    int64 tensor: Shape, Gather, Add/Sub/Mul, floor division and Python's modulo."""
    if isinstance(e, int):
        return ctx.ints([e])
    if e[0] == "dim":
        k = e[1]
        if k not in shapes:
            shapes[k] = ctx.op("Shape", [ctx.name(n.inputs[k])])
        return ctx.op("Gather", [shapes[k], ctx.ints([e[2]])], axis=0)
    a, b = _size_expr(ctx, n, e[1], shapes), _size_expr(ctx, n, e[2], shapes)
    if e[0] in ("add", "sub", "mul"):
        return ctx.op({"add": "Add", "sub": "Sub", "mul": "Mul"}[e[0]], [a, b])
    mod = ctx.op("Mod", [a, b], fmod=0)         # Python's sign: the divisor's
    if e[0] == "mod":
        return mod
    return ctx.op("Div", [ctx.op("Sub", [a, mod]), b])      # exact: floor division


@rule("dim_size")
def _dim_size(ctx, n):
    return ctx.squeeze(_size_expr(ctx, n, n.attrs["expr"], {}), [0])


def _numel(ctx, x: str, dt) -> str:
    """The element count of ONNX tensor ``x`` as a 0-d ``dt`` scalar read from its run-time
    shape (Shape, ReduceProd): what a dynamic axis needs where a mean divides by it."""
    count = ctx.reduce("Prod", ctx.op("Shape", [x]), None, False)
    return ctx.cast(count, np.int64, dt)


def count_scale(ctx, k: float, x: str, shape, dt) -> str:
    """``k`` over the element count of ONNX tensor ``x`` as a 0-d ``dt`` scalar (a mean's
    scale): a constant for a static ``shape`` (``k`` itself when it holds no element), read
    from ``x``'s run-time shape when ``shape`` has None dims."""
    if any(s is None for s in shape):
        return ctx.op("Div", [ctx.const(np.asarray(k, dt)), _numel(ctx, x, dt)])
    count = math.prod(shape)
    return ctx.const(np.asarray(k / count if count else k, dt))


def _shape_input(ctx, n, parts) -> str:
    """A 1-D int64 shape whose entries are ints or size expressions over ``n``'s inputs."""
    shapes: dict = {}
    out, run = [], []
    for p in parts:
        if isinstance(p, int):
            run.append(p)
            continue
        if run:
            out.append(ctx.ints(run))
            run = []
        out.append(_size_expr(ctx, n, p, shapes))
    if run:
        out.append(ctx.ints(run))
    return ctx.op("Concat", out, axis=0) if len(out) > 1 else out[0]


# --- random draws ("random" graph nodes, see tensorlib.graph.tracer.on_random) -------------
# every dist tensorlib.creation records (rand_like/randn_like, dropout, bernoulli, bernoulli_,
# uniform_, normal_ and multinomial draw through these) -> its ONNX form
RANDOM_FORMS = {"rand": "RandomUniform", "uniform": "RandomUniform",
                "randn": "RandomNormal", "normal": "RandomNormal",
                "randint": "RandomUniform (float64), Floor, Cast",
                "randperm": "RandomUniform (float64), TopK"}
_EXACT_INT = 1 << 53        # a float64 uniform times the span floors to every integer below it


def _f32_exact(*values) -> bool:
    """Whether ``values`` survive ONNX's float32 attributes (else: arithmetic in the draw's
    dtype after a standard draw, so a float64 draw keeps its parameters)."""
    return all(float(np.float32(v)) == float(v) for v in values)


def _draw(ctx, n, kind: str, dt, **params) -> str:
    """Random{kind} of node ``n``'s shape in ``dt`` (float32 or float64: onnxruntime has no
    other): ConstantOfShape + Random{kind}Like when a size follows a dynamic axis (or the draw
    is 0-d, which a ``shape`` attribute cannot say)."""
    shape, sizes = tuple(n.attrs["shape"]), dict(n.attrs.get("sizes", ()))
    if sizes or not shape:
        target = (_shape_input(ctx, n, [sizes.get(i, s) for i, s in enumerate(shape)])
                  if sizes else ctx.ints(shape))
        like = ctx.op("ConstantOfShape", [target])
        return ctx.op(f"Random{kind}Like", [like], dtype=tensor_type(dt), **params)
    return ctx.op(f"Random{kind}", [], shape=[int(s) for s in shape], dtype=tensor_type(dt),
                  **params)


def lower_random(ctx, n) -> str:
    """A graph ``random`` node as ONNX random ops (unseeded: fresh draws on every run)."""
    a, dt = n.attrs, np.dtype(n.attrs["dtype"])
    dist = a["dist"]
    if dist not in RANDOM_FORMS:
        ctx.unsupported(f"random draws of distribution {dist!r} have no ONNX form (exported: "
                        f"{', '.join(sorted(RANDOM_FORMS))})")
    if dist in ("randint", "randperm"):
        return _lower_integers(ctx, n, dist, dt)
    if dt.kind != "f":
        ctx.unsupported(f"a {dist} draw of dtype {dt} (ONNX draws floating point only)")
    draw_dt = dt if dt in (np.float32, np.float64) else np.dtype(np.float32)
    if dist in ("rand", "randn"):
        out = _draw(ctx, n, "Uniform" if dist == "rand" else "Normal", draw_dt)
    elif dist == "uniform":
        lo, hi = float(a["low"]), float(a["high"])
        if hi > lo and _f32_exact(lo, hi):     # (onnxruntime aborts on an empty range)
            out = _draw(ctx, n, "Uniform", draw_dt, low=lo, high=hi)
        else:
            u = _draw(ctx, n, "Uniform", draw_dt)
            out = ctx.op("Add", [ctx.op("Mul", [u, ctx.const(np.asarray(hi - lo, draw_dt))]),
                                 ctx.const(np.asarray(lo, draw_dt))])
    else:
        mean, std = float(a["mean"]), float(a["std"])
        if std > 0 and _f32_exact(mean, std):     # (onnxruntime aborts on scale 0)
            out = _draw(ctx, n, "Normal", draw_dt, mean=mean, scale=std)
        else:
            z = _draw(ctx, n, "Normal", draw_dt)
            out = ctx.op("Add", [ctx.op("Mul", [z, ctx.const(np.asarray(std, draw_dt))]),
                                 ctx.const(np.asarray(mean, draw_dt))])
    return ctx.cast(out, draw_dt, dt)


def _lower_integers(ctx, n, dist: str, dt) -> str:
    """randint: ``low + floor(u * span)`` of float64 uniforms (capped at ``span - 1`` against
    rounding up); randperm: the order of ``n`` float64 uniforms (TopK), a uniform permutation."""
    a = n.attrs
    if dist == "randperm":
        k = int(a["n"])
        if k == 0:
            return ctx.const(np.zeros(0, dt))
        u = _draw(ctx, n, "Uniform", np.float64)
        _, idx = ctx.op("TopK", [u, ctx.ints([k])], n_out=2, axis=0, largest=1, sorted=1)
        return ctx.cast(idx, np.int64, dt)
    lo, hi = int(a["low"]), int(a["high"])
    span = hi - lo
    if span > _EXACT_INT:
        ctx.unsupported(f"randint over {span} integers: ONNX draws it from a float64 uniform, "
                        f"exact up to 2**53 values")
    u = _draw(ctx, n, "Uniform", np.float64)
    k = ctx.op("Floor", [ctx.op("Mul", [u, ctx.const(np.asarray(span, np.float64))])])
    k = ctx.op("Min", [k, ctx.const(np.asarray(span - 1, np.float64))])
    k = ctx.op("Add", [ctx.cast(k, np.float64, np.int64), ctx.const(np.asarray(lo, np.int64))])
    return ctx.cast(k, np.int64, dt)


@rule("floordiv")
def _floordiv(ctx, n):
    a, b = _operands(ctx, n)
    if _dt(n.out).kind == "f":
        return ctx.op("Floor", [ctx.op("Div", [a, b])])
    return ctx.op("Div", [ctx.op("Sub", [a, ctx.op("Mod", [a, b], fmod=0)]), b])


@rule("mod")
def _mod(ctx, n):
    a, b = _operands(ctx, n)
    if _dt(n.out).kind == "f":
        return ctx.op("Sub", [a, ctx.op("Mul", [ctx.op("Floor", [ctx.op("Div", [a, b])]), b])])
    return ctx.op("Mod", [a, b], fmod=0)


@rule("fmod")
def _fmod(ctx, n):
    a, b = _operands(ctx, n)
    return ctx.op("Mod", [a, b], fmod=1)


@rule("where")
def _where(ctx, n):
    c = ctx.name(n.inputs[0])
    a, b = (ctx.cast(ctx.name(v), _dt(v), _dt(n.out)) for v in n.inputs[1:])
    return ctx.op("Where", [c, a, b])


@rule("masked_fill")
def _masked_fill(ctx, n):
    x, m = ctx.ins(n)
    return ctx.op("Where", [m, _scalar(ctx, n.attrs["value"], n.out), x])


# --- reductions ----------------------------------------------------------------------------
def _reduction(kind):
    def r(ctx, n):
        x = ctx.name(n.inputs[0])
        src, dst = _dt(n.inputs[0]), _dt(n.out)
        if kind in ("Sum", "Prod"):
            x = ctx.cast(x, src, dst)
        return ctx.reduce(kind, x, n.attrs["axis"], n.attrs["keepdims"])
    return r


for _k, _v in {"sum": "Sum", "mean": "Mean", "max": "Max", "min": "Min", "prod": "Prod",
               "logsumexp": "LogSumExp"}.items():
    RULES[_k] = _reduction(_v)


def _bool_reduction(kind):
    def r(ctx, n):
        x = ctx.name(n.inputs[0])
        if _dt(n.inputs[0]) != np.bool_:
            x = ctx.cast(x, _dt(n.inputs[0]), np.bool_)
        x = ctx.cast(x, np.bool_, np.int32)
        y = ctx.reduce(kind, x, n.attrs["axis"], n.attrs["keepdims"])
        return ctx.cast(y, np.int32, np.bool_)
    return r


RULES["all"] = _bool_reduction("Min")
RULES["any"] = _bool_reduction("Max")


def _dof(ctx, n) -> str:
    """The divisor ``max(count - correction, 0)`` of var/std as a scalar of the output dtype:
    a constant when the reduced dims are static, else computed from the input's run-time
    shape (Shape -> Gather -> ReduceProd), so dynamic axes export."""
    shape, axis = n.inputs[0].shape, n.attrs["axis"]
    axes = list(range(len(shape))) if axis is None else [int(a) for a in axis]
    dims = [shape[a] for a in axes]
    c = n.attrs["correction"]
    if None not in dims:
        return _scalar(ctx, max(math.prod(dims) - c, 0), n.out)
    sizes = ctx.op("Shape", [ctx.name(n.inputs[0])])
    if axis is not None:
        sizes = ctx.op("Gather", [sizes, ctx.ints(axes)], axis=0)
    count = ctx.cast(ctx.reduce("Prod", sizes, None, False), np.int64, _dt(n.out))
    dof = ctx.op("Sub", [count, _scalar(ctx, c, n.out)])
    return ctx.op("Max", [dof, _scalar(ctx, 0, n.out)])


def _var(ctx, n) -> str:
    x = ctx.name(n.inputs[0])
    axis, keep = n.attrs["axis"], n.attrs["keepdims"]
    d = ctx.op("Sub", [x, ctx.reduce("Mean", x, axis, True)])
    s = ctx.reduce("Sum", ctx.op("Mul", [d, d]), axis, keep)
    return ctx.op("Div", [s, _dof(ctx, n)])


RULES["var"] = _var
RULES["std"] = lambda ctx, n: ctx.op("Sqrt", [_var(ctx, n)])


@rule("norm")
def _norm(ctx, n):
    x = ctx.name(n.inputs[0])
    p, axis, keep = n.attrs["ord"], n.attrs["axis"], n.attrs["keepdims"]
    if p == 2:
        return ctx.reduce("L2", x, axis, keep)
    if p == 1:
        return ctx.reduce("L1", x, axis, keep)
    a = ctx.op("Abs", [x])
    if p == math.inf:
        return ctx.reduce("Max", a, axis, keep)
    if p == -math.inf:
        return ctx.reduce("Min", a, axis, keep)
    s = ctx.reduce("Sum", ctx.op("Pow", [a, _scalar(ctx, p, n.out)]), axis, keep)
    return ctx.op("Pow", [s, _scalar(ctx, 1.0 / p, n.out)])


def _arg(kind):
    def r(ctx, n):
        x = ctx.name(n.inputs[0])
        axis, keep = n.attrs["axis"], n.attrs["keepdims"]
        if axis is None:
            flat = ctx.op("Reshape", [x, ctx.ints([-1])])
            y = ctx.op(kind, [flat], axis=0, keepdims=0)
            if keep:
                y = ctx.op("Reshape", [y, ctx.ints([1] * n.inputs[0].ndim)])
            return y
        return ctx.op(kind, [x], axis=int(axis), keepdims=int(bool(keep)))
    return r


RULES["argmax"] = _arg("ArgMax")
RULES["argmin"] = _arg("ArgMin")


@rule("topk_indices")
def _topk_indices(ctx, n):
    # values and indices; k=None (tl.sort) is the whole axis, read from the shape when dynamic
    x = ctx.name(n.inputs[0])
    axis, k = int(n.attrs["axis"]), n.attrs["k"]
    if k is None:
        k = n.inputs[0].shape[axis]
    k = ctx.ints([int(k)]) if k is not None else ctx.op(
        "Gather", [ctx.op("Shape", [x]), ctx.ints([axis])], axis=0)
    return ctx.op("TopK", [x, k], n_out=2, axis=axis, largest=int(bool(n.attrs["largest"])),
                  sorted=1)


@rule("argsort")
def _argsort(ctx, n):
    # TopK over the whole axis sorts it; ONNX puts the lower index first among equal
    # values, ascending or descending, which is argsort's stable order
    x = ctx.name(n.inputs[0])
    axis = int(n.attrs["axis"])
    d = n.inputs[0].shape[axis]
    k = ctx.ints([d]) if d is not None else ctx.op(
        "Gather", [ctx.op("Shape", [x]), ctx.ints([axis])], axis=0)
    return ctx.op("TopK", [x, k], n_out=2, axis=axis,
                  largest=int(bool(n.attrs["descending"])), sorted=1)[1]


@rule("erfc")
def _erfc(ctx, n):
    # 1 - Erf: exact to the dtype's absolute precision (the far tail rounds to 0)
    x = ctx.name(n.inputs[0])
    return ctx.op("Sub", [_scalar(ctx, 1.0, n.out), ctx.op("Erf", [x])])


@rule("logcumsumexp")
def _logcumsumexp(ctx, n):
    # log2(size) doubling steps y = logaddexp(y, y shifted by k along the axis), padded with
    # a value far below any term (ONNX has CumSum but no stable log-cum-sum-exp)
    y = ctx.name(n.inputs[0])
    shape = n.inputs[0].shape
    if not shape:
        return ctx.op("Identity", [y])
    a = n.attrs["axis"]
    size = shape[a]
    if size is None:
        ctx.unsupported("logcumsumexp along a dynamic axis")
    # padded with -inf (no term); the shift m is 0 where both terms are infinite, so -inf
    # and -inf give -inf (inf - inf would be NaN)
    neg_inf, zero = _scalar(ctx, -np.inf, n.out), _scalar(ctx, 0.0, n.out)
    k = 1
    while k < size:
        head = ctx.slice(y, [0], [size - k], [a])
        pads = [0] * (2 * len(shape))
        pads[a] = k
        shifted = ctx.op("Pad", [head, ctx.ints(pads), neg_inf])
        m = ctx.op("Max", [y, shifted])
        m = ctx.op("Where", [ctx.op("IsInf", [m]), zero, m])
        s = ctx.op("Add", [ctx.op("Exp", [ctx.op("Sub", [y, m])]),
                           ctx.op("Exp", [ctx.op("Sub", [shifted, m])])])
        y = ctx.op("Add", [m, ctx.op("Log", [s])])
        k *= 2
    return ctx.op("Identity", [y])


@rule("cumsum")
def _cumsum(ctx, n):
    x = ctx.cast(ctx.name(n.inputs[0]), _dt(n.inputs[0]), _dt(n.out))
    return ctx.op("CumSum", [x, ctx.const(np.asarray(n.attrs["axis"], np.int64))])


@rule("rdft")
def _rdft(ctx, n):
    """ONNX DFT over the signal axis with onesided=1: the same (..., n // 2 + 1, 2)."""
    ctx.need_opset(17, "the real DFT (ONNX's DFT)")
    axis = len(n.inputs[0].shape) - 1
    x = ctx.unsqueeze(ctx.ins(n)[0], [axis + 1])        # (..., n, 1): a real signal
    if ctx.opset >= 20:     # (the axis became an input)
        return ctx.op("DFT", [x, "", ctx.const(np.asarray(axis, np.int64))], onesided=1)
    return ctx.op("DFT", [x], axis=axis, onesided=1)


# --- linear algebra ------------------------------------------------------------------------
@rule("det")
def _det(ctx, n):
    x = n.inputs[0]
    if _dt(x) != np.float64:
        return ctx.op("Det", ctx.ins(n))
    # ONNX allows a double Det but onnxruntime implements only float, so a double one makes a
    # model that does not load there; round-trip through float32, saying so
    import warnings
    warnings.warn("ONNX export: det of a float64 matrix is exported as Det in float32 (Cast "
                  "around it), as onnxruntime has no double Det: expect float32 accuracy and "
                  "range; export a float32 model to avoid the casts", stacklevel=2)
    d = ctx.op("Det", [ctx.cast(ctx.name(x), np.float64, np.float32)])
    return ctx.cast(d, np.float32, np.float64)


@rule("diagonal_embed")
def _diagonal_embed(ctx, n):
    # each (a1, a2) plane gathers g at its row's diagonal index, kept only on the diagonal
    # (a Where, not a multiply by eye: 0 * inf off the diagonal would be NaN)
    g = n.inputs[0]
    shape = tuple(n.attrs["shape"])
    if None in shape or None in tuple(g.shape):
        # (a dynamic diagonal length read as None would pass for an empty one below)
        ctx.unsupported("diagonal_embed needs static input and output shapes")
    a1, a2, off = int(n.attrs["axis1"]), int(n.attrs["axis2"]), int(n.attrs["offset"])
    rest = [a for a in range(len(shape)) if a not in (a1, a2)]
    R, C, L = shape[a1], shape[a2], g.shape[-1]
    if not L:
        return ctx.const(np.zeros(shape, _dt(g)))
    rr, cc = np.meshgrid(np.arange(R), np.arange(C), indexing="ij")
    pos = rr - max(0, -off)
    mask = (cc - rr == off) & (pos >= 0) & (pos < L)
    picked = ctx.op("Gather", [ctx.name(g), ctx.const(np.clip(pos, 0, L - 1).astype(np.int64))],
                    axis=len(rest))
    out = ctx.op("Where", [ctx.const(mask), picked, _scalar(ctx, 0, g)])
    order = rest + [a1, a2]
    if order == sorted(order):
        return out
    return ctx.op("Transpose", [out], perm=[order.index(a) for a in range(len(shape))])
RULES["matmul"] = _binary("MatMul")
RULES["dot"] = _binary("MatMul")


@rule("outer")
def _outer(ctx, n):
    a, b = _operands(ctx, n)
    return ctx.op("Mul", [ctx.unsqueeze(a, [1]), ctx.unsqueeze(b, [0])])


@rule("einsum")
def _einsum(ctx, n):
    return ctx.op("Einsum", _operands(ctx, n), equation=n.attrs["subscripts"])


@rule("tensordot")
def _tensordot(ctx, n):
    from ..ops.linalg import _tensordot_subscripts
    a, b = n.inputs
    eq = _tensordot_subscripts(a.ndim, b.ndim, n.attrs["axes"])
    return ctx.op("Einsum", _operands(ctx, n), equation=eq)


@rule("linear")
def _linear(ctx, n):
    ins = ctx.ins(n)
    if n.inputs[0].ndim == 2:
        return ctx.op("Gemm", ins, transB=1)
    y = ctx.op("MatMul", [ins[0], ctx.op("Transpose", [ins[1]], perm=[1, 0])])
    return ctx.op("Add", [y, ins[2]]) if len(ins) == 3 else y


# --- shape ---------------------------------------------------------------------------------
@rule("reshape")
def _reshape(ctx, n):
    shape = list(n.attrs["shape"])
    keep, sizes = n.attrs.get("keep", ()), n.attrs.get("sizes", ())
    # ONNX's Reshape reads a 0 as "copy the input's dim" unless allowzero=1 (opset 14): a
    # size computed at run time that comes out 0 (an empty batch), or a static 0, would be
    # misread; from opset 14 a 0 is a 0, and a copied dim is read from the input's shape
    allowzero = ctx.opset >= 14 and (0 in shape or bool(sizes))
    for i in keep:      # a dynamic dim copied from the input
        shape[i] = ("dim", 0, i) if allowzero else 0
    for i, e in sizes:      # computed from the inputs' shapes at run time
        shape[i] = e
    x = ctx.name(n.inputs[0])
    if sizes or (allowzero and keep):
        return ctx.op("Reshape", [x, _shape_input(ctx, n, shape)],
                      allowzero=1 if allowzero else None)
    return ctx.op("Reshape", [x, ctx.ints(shape)], allowzero=1 if allowzero else None)


@rule("squeeze")
def _squeeze(ctx, n):
    return ctx.squeeze(ctx.name(n.inputs[0]), n.attrs["axis"])


@rule("expand_dims")
def _expand_dims(ctx, n):
    return ctx.unsqueeze(ctx.name(n.inputs[0]), sorted(n.attrs["axis"]))


@rule("transpose")
def _transpose(ctx, n):
    return ctx.op("Transpose", ctx.ins(n), perm=[int(a) for a in n.attrs["axes"]])


@rule("broadcast_to")
def _broadcast_to(ctx, n):
    src, shape = n.inputs[0].shape, list(n.attrs["shape"])
    sizes = dict(n.attrs.get("sizes", ()))
    lead = len(shape) - len(src)
    for i, d in enumerate(src):   # dynamic dims broadcast from the input (Expand with 1)
        if d is None and lead + i not in sizes:
            shape[lead + i] = 1
    if sizes:       # sizes computed from the inputs' shapes at run time
        parts = [sizes.get(i, s) for i, s in enumerate(shape)]
        return ctx.op("Expand", [ctx.name(n.inputs[0]), _shape_input(ctx, n, parts)])
    return ctx.op("Expand", [ctx.name(n.inputs[0]), ctx.ints(shape)])


@rule("concatenate")
def _concat(ctx, n):
    return ctx.op("Concat", _operands(ctx, n), axis=int(n.attrs["axis"]))


@rule("stack")
def _stack(ctx, n):
    a = int(n.attrs["axis"])
    return ctx.op("Concat", [ctx.unsqueeze(x, [a]) for x in _operands(ctx, n)], axis=a)


@rule("split")
def _split(ctx, n):
    x = ctx.name(n.inputs[0])
    axis = int(n.attrs["axis"])
    sizes = dict(n.attrs.get("sizes", ()))
    if sizes:
        # split points computed from the inputs' shapes (chunk(2) along a dynamic batch):
        # a Slice per piece with run-time starts/ends (Slice clamps, as the kernel's split)
        points = [sizes.get(i, int(p)) for i, p in enumerate(n.attrs["indices"])]
        bounds = [0, *points, INT64_MAX]
        axes = ctx.ints([axis])
        return [ctx.op("Slice", [x, _shape_input(ctx, n, [a]), _shape_input(ctx, n, [b]), axes])
                for a, b in zip(bounds[:-1], bounds[1:])]
    bounds = [0] + [int(i) for i in n.attrs["indices"]] + [INT64_MAX]
    outs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        outs.append(ctx.slice(x, [a], [max(a, b)], [axis]))
    return outs


@rule("unbind")
def _unbind(ctx, n):
    x, axis = ctx.name(n.inputs[0]), int(n.attrs["axis"])
    return [ctx.op("Gather", [x, ctx.const(np.asarray(i, np.int64))], axis=axis)
            for i in range(int(n.attrs["n"]))]


@rule("pad")
def _pad(ctx, n):
    pw = n.attrs["pad_width"]
    pads = [int(b) for b, _ in pw] + [int(a) for _, a in pw]
    mode = n.attrs["mode"]
    ins = [ctx.name(n.inputs[0]), ctx.ints(pads)]
    if mode == "constant":
        ins.append(_scalar(ctx, n.attrs["value"], n.out))
    return ctx.op("Pad", ins, mode=mode)


@rule("flip")
def _flip(ctx, n):
    axes = n.attrs["axis"]
    if axes is None:
        axes = range(n.inputs[0].ndim)
    axes = [int(a) for a in axes]
    if not axes:
        return ctx.op("Identity", ctx.ins(n))
    k = len(axes)
    return ctx.slice(ctx.name(n.inputs[0]), [-1] * k, [INT64_MIN] * k, axes, [-1] * k)


@rule("roll")
def _roll(ctx, n):
    x = ctx.name(n.inputs[0])
    shape = n.inputs[0].shape
    shift, axis = n.attrs["shift"], n.attrs["axis"]
    if axis is None:
        if None in shape:
            ctx.unsupported("roll without axis needs a static shape")
        flat = ctx.op("Reshape", [x, ctx.ints([-1])])
        r = _roll_axis(ctx, flat, int(shift if not isinstance(shift, tuple) else sum(shift)),
                       0, math.prod(shape))
        return ctx.op("Reshape", [r, ctx.ints(shape)])
    shifts = shift if isinstance(shift, tuple) else (shift,) * (
        len(axis) if isinstance(axis, tuple) else 1)
    axes = axis if isinstance(axis, tuple) else (axis,)
    for s, a in zip(shifts, axes):
        if shape[a] is None:
            x = _roll_dynamic(ctx, x, int(s), int(a))
        else:
            x = _roll_axis(ctx, x, int(s), int(a), shape[a])
    return x


def _roll_dynamic(ctx, x, s, a):
    """A roll by ``s`` along an axis whose size is known at run time only: the split point
    ``n - s mod n`` from Shape (Max(n, 1) keeps Mod defined on an empty axis), then the two
    Slices swapped by a Concat."""
    n = ctx.op("Gather", [ctx.op("Shape", [x]), ctx.ints([a])], axis=0)
    r = ctx.op("Mod", [ctx.ints([s]), ctx.op("Max", [n, ctx.ints([1])])], fmod=0)
    cut = ctx.op("Sub", [n, r])
    axes = ctx.ints([a])
    tail = ctx.op("Slice", [x, cut, ctx.ints([INT64_MAX]), axes])
    head = ctx.op("Slice", [x, ctx.ints([0]), cut, axes])
    return ctx.op("Concat", [tail, head], axis=a)


def _block_index(ctx, hp: str, wp: str, attrs) -> tuple[str, str]:
    """im2col's flat indices into a padded Hp x Wp plane, built from the run-time sizes
    (1-element int64 ``hp``, ``wp``): (K * L,) offset-major as the kernel's; and L."""
    (kh, kw), (dh, dw), _, (sh, sw) = (attrs[k] for k in ("kernel", "dilation", "padding",
                                                          "stride"))

    def count(size, k, d, st):      # (size - d (k - 1) - 1) // st + 1, for size that fits
        span = ctx.op("Sub", [size, ctx.ints([d * (k - 1) + 1])])
        return ctx.op("Add", [ctx.op("Div", [span, ctx.ints([st])]), ctx.ints([1])])

    def steps(cnt, st, shape):      # arange(cnt) * st, reshaped to ``shape``
        r = ctx.op("Range", [ctx.const(np.int64(0)), ctx.squeeze(cnt, [0]),
                             ctx.const(np.int64(1))])
        return ctx.op("Reshape", [ctx.op("Mul", [r, ctx.ints([st])]), ctx.ints(shape)])
    nh, nw = count(hp, kh, dh, sh), count(wp, kw, dw, sw)
    ki = ctx.const((np.arange(kh, dtype=np.int64) * dh).reshape(kh, 1, 1, 1))
    kj = ctx.const((np.arange(kw, dtype=np.int64) * dw).reshape(1, kw, 1, 1))
    rows = ctx.op("Add", [ki, steps(nh, sh, [1, 1, -1, 1])])
    cols = ctx.op("Add", [kj, steps(nw, sw, [1, 1, 1, -1])])
    flat = ctx.op("Add", [ctx.op("Mul", [rows, wp]), cols])
    return ctx.op("Reshape", [flat, ctx.ints([-1])]), ctx.op("Mul", [nh, nw])


def _pad2(ctx, x, padding):
    ph, pw = padding
    if not (ph or pw):
        return x
    return ctx.op("Pad", [x, ctx.ints([0, 0, ph, pw, 0, 0, ph, pw])])


@rule("im2col")
def _im2col(ctx, n):
    # a Gather of the padded plane at indices built from its run-time size (dynamic H/W)
    x = _pad2(ctx, ctx.name(n.inputs[0]), n.attrs["padding"])
    shape = ctx.op("Shape", [x])
    hp = ctx.op("Gather", [shape, ctx.ints([2])], axis=0)
    wp = ctx.op("Gather", [shape, ctx.ints([3])], axis=0)
    idx, L = _block_index(ctx, hp, wp, n.attrs)
    cols = ctx.op("Gather", [ctx.op("Reshape", [x, ctx.ints([0, 0, -1])]), idx], axis=2)
    return ctx.op("Reshape", [cols, ctx.op("Concat", [ctx.ints([0, -1]), L], axis=0)])


@rule("col2im")
def _col2im(ctx, n):
    # ScatterElements(reduction='add') of the columns into a zero padded plane at the
    # indices im2col gathers from, then the padding cropped
    ctx.need_opset(16, "fold (ScatterElements reduction='add')")
    a = n.attrs
    (kh, kw), (ph, pw) = a["kernel"], a["padding"]
    sizes = dict(a.get("sizes", ()))
    hw = [sizes.get(i, int(v)) for i, v in enumerate(a["output_size"])]
    hp = _shape_input(ctx, n, [hw[0]])
    wp = _shape_input(ctx, n, [hw[1]])
    if ph:
        hp = ctx.op("Add", [hp, ctx.ints([2 * ph])])
    if pw:
        wp = ctx.op("Add", [wp, ctx.ints([2 * pw])])
    idx, _ = _block_index(ctx, hp, wp, a)
    x = ctx.name(n.inputs[0])
    cshape = ctx.op("Shape", [x])
    batch = ctx.op("Gather", [cshape, ctx.ints([0])], axis=0)
    chans = ctx.op("Div", [ctx.op("Gather", [cshape, ctx.ints([1])], axis=0),
                           ctx.ints([kh * kw])])
    upd = ctx.op("Reshape", [x, ctx.op("Concat", [ctx.ints([0]), chans, ctx.ints([-1])],
                                       axis=0)])
    plane_shape = ctx.op("Concat", [batch, chans, ctx.op("Mul", [hp, wp])], axis=0)
    from onnx import numpy_helper
    zero = numpy_helper.from_array(np.zeros(1, dtype=_dt(n.out)), "value")
    plane = ctx.op("ConstantOfShape", [plane_shape], value=zero)
    where = ctx.op("Expand", [ctx.op("Reshape", [idx, ctx.ints([1, 1, -1])]),
                              ctx.op("Shape", [upd])])
    plane = ctx.op("ScatterElements", [plane, where, upd], axis=2, reduction="add")
    img = ctx.op("Reshape", [plane, ctx.op("Concat", [ctx.ints([0, 0]), hp, wp], axis=0)])
    if not (ph or pw):
        return img
    return ctx.slice(img, [ph, pw], [-ph if ph else INT64_MAX, -pw if pw else INT64_MAX],
                     [2, 3])


def _roll_axis(ctx, x, s, a, size):
    if size == 0 or s % size == 0:
        return ctx.op("Identity", [x])
    s %= size
    tail = ctx.slice(x, [size - s], [INT64_MAX], [a])
    head = ctx.slice(x, [0], [size - s], [a])
    return ctx.op("Concat", [tail, head], axis=a)


@rule("repeat")
def _repeat(ctx, n):
    x = ctx.name(n.inputs[0])
    r, axis = int(n.attrs["repeats"]), n.attrs["axis"]
    shape = list(n.inputs[0].shape)
    if axis is None:
        x = ctx.op("Reshape", [x, ctx.ints([-1])])
        shape, axis = [None if None in shape else math.prod(shape)], 0
    tail = shape[axis + 1:]
    if None in tail:
        ctx.unsupported("repeat needs static sizes after the repeated axis")
    u = ctx.unsqueeze(x, [axis + 1])
    e = ctx.op("Expand", [u, ctx.ints([1] * (axis + 1) + [r] + [1] * len(tail))])
    return ctx.op("Reshape", [e, ctx.ints([0] * axis + [-1] + tail)])


@rule("tile")
def _tile(ctx, n):
    reps = [int(r) for r in n.attrs["reps"]]
    x = ctx.name(n.inputs[0])
    extra = len(reps) - n.inputs[0].ndim
    if extra > 0:
        x = ctx.unsqueeze(x, list(range(extra)))
    sizes = dict(n.attrs.get("sizes", ()))
    if sizes:       # counts read from None dims: computed from the inputs' shapes at run time
        return ctx.op("Tile", [x, _shape_input(ctx, n, [sizes.get(i, r)
                                                        for i, r in enumerate(reps)])])
    return ctx.op("Tile", [x, ctx.ints(reps)])


def _trilu(upper):
    def r(ctx, n):
        x, k = ctx.name(n.inputs[0]), ctx.const(np.asarray(n.attrs["k"], np.int64))
        if ctx.opset >= 14:
            return ctx.op("Trilu", [x, k], upper=upper)
        # before Trilu (opset 14): keep where column - row >= k (triu) or <= k (tril), from
        # the run-time shape, so dynamic dims stay dynamic
        shape = ctx.op("Shape", [x])
        zero, one = ctx.const(np.asarray(0, np.int64)), ctx.const(np.asarray(1, np.int64))
        rows = ctx.unsqueeze(ctx.op("Range", [zero, ctx.op("Gather", [
            shape, ctx.const(np.asarray(-2, np.int64))]), one]), [1])
        cols = ctx.op("Range", [zero, ctx.op("Gather", [
            shape, ctx.const(np.asarray(-1, np.int64))]), one])
        d = ctx.op("Sub", [cols, rows])
        keep = ctx.op("GreaterOrEqual" if upper else "LessOrEqual", [d, k])
        return ctx.op("Where", [keep, x, _scalar(ctx, 0, n.out)])
    return r


RULES["tril"] = _trilu(0)
RULES["triu"] = _trilu(1)


# --- indexing ------------------------------------------------------------------------------
def _expand_ellipsis(index, ndim):
    n_real = sum(1 for k in index if k is not None and k is not Ellipsis
                 and not (isinstance(k, np.ndarray) and k.dtype == np.bool_))
    out = []
    for k in index:
        if k is Ellipsis:
            out.extend([slice(None)] * (ndim - n_real))
        else:
            out.append(k)
    if not any(k is Ellipsis for k in index):
        out.extend([slice(None)] * (ndim - n_real))
    return out


@rule("slice")
def _basic_index(ctx, n):
    x = ctx.name(n.inputs[0])
    index = _expand_ellipsis(list(n.attrs["index"]), n.inputs[0].ndim)
    starts, ends, axes, steps, drop, new = [], [], [], [], [], []
    d = out_pos = 0
    for k in index:
        if k is None:
            new.append(out_pos)
            out_pos += 1
            continue
        if isinstance(k, (int, np.integer)):
            k = int(k)
            starts.append(k)
            ends.append(k + 1 if k != -1 else INT64_MAX)
            axes.append(d)
            steps.append(1)
            drop.append(d)
        else:
            b = _slice_bounds(k)
            if b is not None:
                starts.append(b[0])
                ends.append(b[1])
                axes.append(d)
                steps.append(b[2])
            out_pos += 1
        d += 1
    if axes:
        x = ctx.slice(x, starts, ends, axes, steps)
    x = ctx.squeeze(x, drop)
    return ctx.unsqueeze(x, new)


@rule("slice_sized")
def _sized_slice(ctx, n):
    # x[:, :n] with n read from a None dim: Slice with starts/ends computed from the shapes
    sizes = dict(n.attrs["sizes"])
    index = list(n.attrs["index"])
    starts, ends, axes, steps, drop, new = [], [], [], [], [], []
    n_real = sum(1 for k in index if k is not None and k is not Ellipsis)
    d = out_pos = 0
    for i, k in enumerate(index):
        if k is Ellipsis:
            d += n.inputs[0].ndim - n_real
            out_pos += n.inputs[0].ndim - n_real
        elif k is None:
            new.append(out_pos)
            out_pos += 1
        elif isinstance(k, (int, np.integer)):
            starts.append(int(k))
            ends.append(int(k) + 1 if k != -1 else INT64_MAX)
            axes.append(d)
            steps.append(1)
            drop.append(d)
            d += 1
        else:
            b = _slice_bounds(k) or (0, INT64_MAX, 1)
            starts.append(sizes.get(3 * i, b[0]))
            ends.append(sizes.get(3 * i + 1, b[1]))
            axes.append(d)
            steps.append(b[2])
            out_pos += 1
            d += 1
    x = ctx.name(n.inputs[0])
    if axes:
        x = ctx.op("Slice", [x, _shape_input(ctx, n, starts), _shape_input(ctx, n, ends),
                             ctx.ints(axes), ctx.ints(steps)])
    return ctx.unsqueeze(ctx.squeeze(x, drop), new)


def _host_key(index) -> list:
    """The key's index arrays as host NumPy arrays (a GPU tensor's index stays a CuPy array)."""
    return [np.asarray(k.get()) if hasattr(k, "__cuda_array_interface__") else k
            for k in index]


def _is_array(k) -> bool:
    return isinstance(k, np.ndarray)


def _advanced_items(ctx, x, index):
    """Walks a getitem key over input ``x``: the Slice of its non-full slices, the new axes
    (None, and 0-d booleans, which add a length-1 axis they then index), and for each axis
    of that sliced-and-unsqueezed tensor ``y`` its index array (int64) or None, with ``y``'s
    static shape. A boolean mask becomes its nonzero indices, one array per masked axis
    (NumPy defines ``x[mask]`` as ``x[mask.nonzero()]``)."""
    consumed = sum(0 if k is None or k is Ellipsis else k.ndim if _is_array(k) and
                   k.dtype == np.bool_ else 1 for k in index)
    if not any(k is Ellipsis for k in index):
        index = [*index, Ellipsis]           # the axes the key leaves out, at its end
    starts, ends, axes, steps, new, items, shape = [], [], [], [], [], [], []
    d = 0
    for k in index:
        if k is Ellipsis:
            for _ in range(x.ndim - consumed):
                items.append(None)
                shape.append(x.shape[d])
                d += 1
        elif k is None:
            new.append(len(items))
            items.append(None)
            shape.append(1)
        elif isinstance(k, slice):
            size = x.shape[d]
            b = _slice_bounds(k)
            if b is not None:
                starts.append(b[0])
                ends.append(b[1])
                axes.append(d)
                steps.append(b[2])
                size = None if size is None else len(range(*k.indices(size)))
            items.append(None)
            shape.append(size)
            d += 1
        elif _is_array(k) and k.dtype == np.bool_ and k.ndim == 0:
            new.append(len(items))
            items.append(np.zeros(int(bool(k)), np.int64))
            shape.append(1)
        elif _is_array(k) and k.dtype == np.bool_:
            dims = x.shape[d:d + k.ndim]
            if None in dims:
                ctx.unsupported(
                    f"a boolean mask of shape {k.shape} over dynamic axes {x.shape}: the "
                    "mask's constant length fixes those axes. Export with static sizes "
                    "there (leave them out of dynamic_axes), or, where the same positions "
                    "are meant at every size, index with integer arrays (mask.nonzero())")
            for j, nz in enumerate(np.nonzero(k)):
                items.append(nz.astype(np.int64))
                shape.append(dims[j])
            d += k.ndim
        else:                                   # an int or an integer array
            items.append(np.asarray(k, dtype=np.int64))
            shape.append(x.shape[d])
            d += 1
    return (starts, ends, axes, steps), new, items, shape


def _slice_bounds(k: slice):
    """(start, end, step) of a Python slice as ONNX Slice takes them (open ends as the
    int64 extremes), or None for the full slice."""
    st = 1 if k.step is None else int(k.step)
    if (k.start, k.stop, st) == (None, None, 1):
        return None
    start = k.start if k.start is not None else (0 if st > 0 else INT64_MAX)
    end = k.stop if k.stop is not None else (INT64_MAX if st > 0 else INT64_MIN)
    return start, end, st


@rule("getitem")
def _advanced_index(ctx, n):
    # NumPy's advanced indexing: the index arrays (ints count as 0-d arrays, a mask as its
    # nonzero indices) broadcast together to B; B replaces their axes in place when they
    # are adjacent in the key, else goes in front. Lowered as: Slice and Unsqueeze for the
    # basic items, the indexed axes moved first (Transpose), GatherND with the arrays
    # stacked into a constant (B..., k) index, then B moved back in place if adjacent.
    x = n.inputs[0]
    key = _host_key(n.attrs["index"])
    adv = [i for i, k in enumerate(key) if _is_array(k) or isinstance(k, (int, np.integer))]
    adjacent = bool(adv) and adv[-1] - adv[0] == len(adv) - 1
    (starts, ends, axes, steps), new, items, shape = _advanced_items(ctx, x, key)
    y = ctx.name(x)
    if axes:
        y = ctx.slice(y, starts, ends, axes, steps)
    if new:
        y = ctx.unsqueeze(y, new)
    pos = [i for i, k in enumerate(items) if k is not None]
    if not pos:
        return ctx.op("Identity", [y])
    # negative indices wrap here where the size is known; over a dynamic axis they stay
    # negative, which Gather and GatherND take (indices in [-size, size))
    arrs = [np.where(items[p] < 0, items[p] + shape[p], items[p])
            if shape[p] is not None else items[p] for p in pos]
    if len(pos) == 1:           # one array: its dims replace its axis (Gather's own rule)
        return ctx.op("Gather", [y, ctx.const(arrs[0])], axis=pos[0])
    bshape = np.broadcast_shapes(*(a.shape for a in arrs))
    idx = np.stack([np.broadcast_to(a, bshape) for a in arrs], axis=-1)
    rank, nb = len(items), len(bshape)
    perm = pos + [i for i in range(rank) if i not in pos]
    if perm != list(range(rank)):
        y = ctx.op("Transpose", [y], perm=perm)
    if rank == len(pos) and not nb:
        # a single element: ONNX's shape inference gives a 0-d GatherND no shape (and the
        # checker then refuses the model), so it gathers a (1,) and squeezes that
        return ctx.squeeze(ctx.op("GatherND", [y, ctx.const(idx[None])]), [0])
    out = ctx.op("GatherND", [y, ctx.const(idx)])
    first = pos[0] if adjacent else 0   # where B goes among the remaining axes
    if first:
        n_rest = rank - len(pos)
        out = ctx.op("Transpose", [out], perm=list(range(nb, nb + first)) + list(range(nb))
                     + list(range(nb + first, nb + n_rest)))
    return out


@rule("setitem")
def _setitem(ctx, n):
    x, v = n.inputs
    if None in x.shape:
        return _setitem_dynamic(ctx, n)
    pos = np.arange(math.prod(x.shape), dtype=np.int64).reshape(x.shape)[n.attrs["index"]]
    flat = np.asarray(pos).reshape(-1)
    if len(np.unique(flat)) != flat.size:
        ctx.unsupported("setitem with repeated positions")
    val = ctx.cast(ctx.name(v), _dt(v), _dt(x))
    val = ctx.op("Expand", [val, ctx.ints(np.shape(pos))])
    val = ctx.op("Reshape", [val, ctx.ints([-1])])
    xf = ctx.op("Reshape", [ctx.name(x), ctx.ints([-1])])
    out = ctx.op("ScatterElements", [xf, ctx.const(flat), val], axis=0)
    return ctx.op("Reshape", [out, ctx.ints(x.shape)])


def _setitem_dynamic(ctx, n):
    """``x[key] = v`` over dynamic dims, for basic keys (ints, slices, None, Ellipsis): the
    region's positions as a grid of run-time Ranges (bounds normalised as Python's
    slice.indices would, from the Shape of ``x``), ``v`` broadcast to the region, one
    ScatterND (a basic key never repeats a position)."""
    x, v = n.inputs
    index = list(n.attrs["index"])
    if any(not (k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice)))
           for k in index):
        ctx.unsupported("setitem with index arrays or masks needs a static shape; over "
                        "dynamic dims only ints, slices, None and ... are lowered")
    rank = x.ndim
    n_real = sum(1 for k in index if k is not None and k is not Ellipsis)
    if not any(k is Ellipsis for k in index):
        index.append(Ellipsis)
    shape = ctx.op("Shape", [ctx.name(x)])
    i64 = ctx.ints

    def dim(d):     # x's size along d: an int, or a 1-element int64 tensor
        return x.shape[d] if x.shape[d] is not None else ctx.op("Gather", [shape, i64([d])],
                                                                axis=0)

    def bound(b, size, default):    # a slice bound clamped to [0, size], as slice.indices
        if b is None:
            return default
        if b >= 0:
            return ctx.op("Min", [i64([int(b)]), size])
        return ctx.op("Max", [ctx.op("Add", [size, i64([int(b)])]), i64([0])])

    region, kept, idx = [], [], []      # x[key].shape, that shape with ints as 1s, per axis
    d = 0
    for k in index:
        if k is None:
            region.append(i64([1]))
            continue
        if k is Ellipsis:
            ks = [slice(None)] * (rank - n_real)
        else:
            ks = [k]
        for k1 in ks:
            size = dim(d)
            if isinstance(size, int):       # a static axis: its positions are constants
                pos = np.arange(size)[k1]
                ids = i64(np.atleast_1d(pos))
                length = i64([np.size(pos)])
            elif isinstance(k1, slice):
                step = 1 if k1.step is None else int(k1.step)
                if step < 0:
                    ctx.unsupported("setitem with a negative slice step over a dynamic axis")
                lo, hi = bound(k1.start, size, i64([0])), bound(k1.stop, size, size)
                ids = ctx.op("Range", [ctx.squeeze(lo, [0]), ctx.squeeze(hi, [0]),
                                       ctx.const(np.asarray(step, np.int64))])
                length = ctx.op("Shape", [ids])
            else:
                k1 = int(k1)
                ids = i64([k1]) if k1 >= 0 else ctx.op("Add", [size, i64([k1])])
                length = i64([1])
            if isinstance(k1, slice):
                region.append(length)
            kept.append(length)
            idx.append(ids)
            d += 1
    kept_shape = ctx.op("Concat", kept, axis=0)
    grid = []
    for a, ids in enumerate(idx):
        ids = ctx.op("Reshape", [ids, i64([-1 if b == a else 1 for b in range(rank)])])
        grid.append(ctx.unsqueeze(ctx.op("Expand", [ids, kept_shape]), [rank]))
    indices = ctx.op("Concat", grid, axis=-1)
    val = ctx.cast(ctx.name(v), _dt(v), _dt(x))
    val = ctx.op("Expand", [val, ctx.op("Concat", region, axis=0) if region else i64([])])
    val = ctx.op("Reshape", [val, kept_shape])
    return ctx.op("ScatterND", [ctx.name(x), indices, val])


@rule("diagonal")
def _diagonal(ctx, n):
    # the two axes moved last and merged, then a Gather of the diagonal's flat positions
    x = n.inputs[0]
    a1, a2, off = int(n.attrs["axis1"]), int(n.attrs["axis2"]), int(n.attrs["offset"])
    rest = [a for a in range(x.ndim) if a not in (a1, a2)]
    rows, cols = x.shape[a1], x.shape[a2]
    if rows is None or cols is None:
        ctx.unsupported("diagonal needs static sizes of its two matrix axes (a dynamic batch "
                        "axis is fine); give the matrix axes fixed sizes in dynamic_axes")
    y = ctx.op("Transpose", [ctx.name(x)], perm=rest + [a1, a2])
    flat = ctx.op("Reshape", [y, ctx.ints([0] * len(rest) + [rows * cols])])
    r0 = max(0, -off)
    r = np.arange(r0, r0 + n.out.shape[-1])
    return ctx.op("Gather", [flat, ctx.const(r * cols + r + off)], axis=len(rest))


@rule("take")
def _take(ctx, n):
    return ctx.op("Gather", ctx.ins(n), axis=int(n.attrs["axis"]))


@rule("take_along_axis")
def _take_along(ctx, n):
    return ctx.op("GatherElements", ctx.ins(n), axis=int(n.attrs["axis"]))


@rule("scatter_add")
def _scatter_add(ctx, n):
    ctx.need_opset(16, "scatter_add (ScatterElements reduction='add')")
    return ctx.op("ScatterElements", ctx.ins(n), axis=int(n.attrs["axis"]), reduction="add")


@rule("index_add")
def _index_add(ctx, n):
    ctx.need_opset(16, "index_add (ScatterElements reduction='add')")
    x, idx, src = ctx.ins(n)
    axis, nd = int(n.attrs["axis"]), n.inputs[2].ndim
    shape = [1] * nd
    shape[axis] = -1
    idx = ctx.op("Reshape", [idx, ctx.ints(shape)])
    idx = ctx.op("Expand", [idx, ctx.op("Shape", [src])])
    return ctx.op("ScatterElements", [x, idx, src], axis=axis, reduction="add")


@rule("spmm_coo")
def _spmm_coo(ctx, n):
    # ONNX has no sparse tensors: gather the dense rows each entry reads, scale them by the
    # values and scatter-add them into the result's rows (duplicates sum, as in the op)
    ctx.need_opset(16, "spmm_coo (ScatterND reduction='add')")
    idx, vals, dense = ctx.ins(n)
    shape, tr = n.attrs["shape"], bool(n.attrs.get("transpose", False))
    rows = int(shape[1] if tr else shape[0])
    r = ctx.op("Gather", [idx, ctx.const(np.int64(1 if tr else 0))], axis=0)
    c = ctx.op("Gather", [idx, ctx.const(np.int64(0 if tr else 1))], axis=0)
    dt = np.result_type(_dt(n.inputs[1]), _dt(n.inputs[2]))
    vals, dense = ctx.cast(vals, _dt(n.inputs[1]), dt), ctx.cast(dense, _dt(n.inputs[2]), dt)
    upd = ctx.op("Gather", [dense, c], axis=0)
    if n.inputs[2].ndim == 2:
        upd = ctx.op("Mul", [upd, ctx.unsqueeze(vals, [1])])
        size = ctx.op("Concat", [ctx.ints([rows]), ctx.op("Shape", [dense], start=1)], axis=0)
    else:
        upd = ctx.op("Mul", [upd, vals])
        size = ctx.ints([rows])
    zeros = ctx.op("Expand", [ctx.const(np.zeros((), dt)), size])
    return ctx.op("ScatterND", [zeros, ctx.unsqueeze(r, [1]), upd], reduction="add")


@rule("one_hot")
def _one_hot(ctx, n):
    return ctx.op("OneHot", [ctx.name(n.inputs[0]),
                             ctx.const(np.asarray([n.attrs["num_classes"]], np.int64)),
                             ctx.const(np.asarray([0, 1], np.int64))], axis=-1)


@rule("bincount")
def _bincount(ctx, n):
    # the captured op's minlength bins: ScatterElements(reduction='add') of ones (or of the
    # weights) into zeros from opset 16, OneHot rows summed before. ONNX has no assertion, so
    # the replay check on the values is not exported (onnxruntime refuses a value >= minlength
    # in ScatterElements; OneHot drops it, and a negative value counts from the end in both)
    m, dt = int(n.attrs["minlength"]), _dt(n.out)
    idx = ctx.cast(ctx.name(n.inputs[0]), _dt(n.inputs[0]), np.int64)
    w = ctx.cast(ctx.name(n.inputs[1]), _dt(n.inputs[1]), dt) if len(n.inputs) > 1 else None
    if ctx.opset >= 16:
        if w is None:
            w = ctx.op("Expand", [ctx.const(np.ones(1, dt)), ctx.op("Shape", [idx])])
        return ctx.op("ScatterElements", [ctx.const(np.zeros(m, dt)), idx, w], axis=0,
                      reduction="add")
    hot = ctx.op("OneHot", [idx, ctx.ints([m]), ctx.const(np.asarray([0, 1], dt))], axis=-1)
    if w is not None:
        hot = ctx.op("Mul", [hot, ctx.unsqueeze(w, [1])])
    return ctx.reduce("Sum", hot, [0], keepdims=False)


# --- neural-network ops --------------------------------------------------------------------
@rule("conv2d")
def _conv(ctx, n):
    pt, pb, pl, pr = (int(p) for p in n.attrs["padding"])
    kh, kw = n.inputs[1].shape[2:]
    return ctx.op("Conv", ctx.ins(n), kernel_shape=[kh, kw],
                  strides=list(n.attrs["stride"]), pads=[pt, pl, pb, pr],
                  dilations=list(n.attrs["dilation"]), group=int(n.attrs["groups"]))


@rule("conv2d_input_grad")
def _conv_transpose(ctx, n):
    from ..ops.nn_conv import out_size  # noqa: F401
    pt, pb, pl, pr = (int(p) for p in n.attrs["padding"])
    (sh, sw), (dh, dw) = n.attrs["stride"], n.attrs["dilation"]
    _, _, kh, kw = n.inputs[1].shape
    _, _, Hi, Wi = n.inputs[0].shape
    if n.attrs.get("input_hw") is None:         # a ConvTranspose2d: dynamic sizes fine
        oph, opw = (int(o) for o in n.attrs["output_padding"])
    else:
        H, W = n.attrs["input_hw"]
        if Hi is None or Wi is None:
            ctx.unsupported("a convolution's input gradient over dynamic spatial dims "
                            "(export inference graphs)")
        oph = H - ((Hi - 1) * sh - pt - pb + dh * (kh - 1) + 1)
        opw = W - ((Wi - 1) * sw - pl - pr + dw * (kw - 1) + 1)
    return ctx.op("ConvTranspose", ctx.ins(n), kernel_shape=[kh, kw], strides=[sh, sw],
                  pads=[pt, pl, pb, pr], dilations=[dh, dw], group=int(n.attrs["groups"]),
                  output_padding=[oph, opw])


def _ceil_mode(n, hw, dilation=(1, 1)) -> int:
    """ONNX's ceil_mode: PyTorch's drops a last window that would start in the right padding,
    so with known sizes it is 1 only where ceil and floor differ."""
    from ..ops.nn_pool import _out_hw
    a = n.attrs
    if not a["ceil_mode"]:
        return 0
    if None in tuple(hw):
        return 1
    floor = _out_hw(hw, a["kernel"], a["stride"], a["padding"], dilation, False)
    return int(floor != _out_hw(hw, a["kernel"], a["stride"], a["padding"], dilation, True))


@rule("max_pool2d")
def _max_pool(ctx, n):
    (ph, pw), hw = n.attrs["padding"], n.inputs[0].shape[2:]
    want_idx = n.outputs[1].id in ctx.used and None not in hw
    res = ctx.op("MaxPool", ctx.ins(n), n_out=2 if want_idx else 1,
                 kernel_shape=list(n.attrs["kernel"]), strides=list(n.attrs["stride"]),
                 pads=[ph, pw, ph, pw], dilations=list(n.attrs["dilation"]),
                 ceil_mode=_ceil_mode(n, hw, n.attrs["dilation"]))
    if not want_idx:
        return [res, None]
    y, idx = res
    # ONNX indices run over the whole (N, C, H, W) tensor; tensorlib's over one plane
    return [y, ctx.op("Mod", [idx, ctx.const(np.asarray(hw[0] * hw[1], np.int64))], fmod=0)]


@rule("avg_pool2d")
def _avg_pool(ctx, n):
    if n.attrs["divisor"]:
        ctx.unsupported("avg_pool2d with divisor_override has no ONNX form")
    (ph, pw), hw = n.attrs["padding"], n.inputs[0].shape[2:]
    return ctx.op("AveragePool", ctx.ins(n), kernel_shape=list(n.attrs["kernel"]),
                  strides=list(n.attrs["stride"]), pads=[ph, pw, ph, pw],
                  count_include_pad=int(bool(n.attrs["count_include_pad"])),
                  ceil_mode=_ceil_mode(n, hw))


@rule("embedding")
def _embedding(ctx, n):
    return ctx.op("Gather", ctx.ins(n), axis=0)


@rule("softmax")
def _softmax(ctx, n):
    return _softmax_like(ctx, n, "Softmax")


@rule("log_softmax")
def _log_softmax(ctx, n):
    return _softmax_like(ctx, n, "LogSoftmax")


def _softmax_like(ctx, n, kind):
    x, axis, nd = ctx.name(n.inputs[0]), int(n.attrs["axis"]), n.inputs[0].ndim
    if ctx.opset >= 13 or axis == nd - 1:
        return ctx.op(kind, [x], axis=axis)
    perm = list(range(nd))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    y = ctx.op(kind, [ctx.op("Transpose", [x], perm=perm)], axis=nd - 1)
    return ctx.op("Transpose", [y], perm=perm)


@rule("cross_entropy")
def _cross_entropy(ctx, n):
    if n.attrs["label_smoothing"]:
        ctx.unsupported("cross_entropy with label smoothing")
    return ctx.op("SoftmaxCrossEntropyLoss", ctx.ins(n), reduction=n.attrs["reduction"],
                  ignore_index=int(n.attrs["ignore_index"]))


@rule("nll_loss")
def _nll_loss(ctx, n):
    return ctx.op("NegativeLogLikelihoodLoss", ctx.ins(n), reduction=n.attrs["reduction"],
                  ignore_index=int(n.attrs["ignore_index"]))


@rule("layer_norm")
def _layer_norm(ctx, n):
    x, *wb = ctx.ins(n)
    k, eps, affine = n.attrs["ndim"], float(n.attrs["eps"]), n.attrs["affine"]
    w = wb[0] if "w" in affine else None
    b = wb[-1] if "b" in affine else None
    nd = n.inputs[0].ndim
    ns = tuple(n.inputs[0].shape[nd - k:])
    dt = n.inputs[0].dtype
    if ctx.opset >= 17 and None not in ns:
        if w is None:       # ONNX's Scale is not optional
            w = ctx.const(np.ones(ns, dt))
        return ctx.op("LayerNormalization", [x, w] + ([b] if b is not None else []), n_out=3,
                      axis=-k, epsilon=eps)
    y, mean, _, rstd = _normalize(ctx, x, list(range(nd - k, nd)), eps, dt)
    return [_scale_shift(ctx, y, w, b), mean, rstd]


def _normalize(ctx, x, axes, eps: float, dt):
    """(x - mean) * rstd over ``axes``, and the mean, biased variance and rstd it used
    (kept dims): the normalisation ops written out in ONNX's primitives."""
    mean = ctx.reduce("Mean", x, axes, True)
    xc = ctx.op("Sub", [x, mean])
    var = ctx.reduce("Mean", ctx.op("Mul", [xc, xc]), axes, True)
    rstd = ctx.op("Reciprocal", [ctx.op("Sqrt", [ctx.op("Add", [var, ctx.const(eps, dt)])])])
    return ctx.op("Mul", [xc, rstd]), mean, var, rstd


def _scale_shift(ctx, y, w, b):
    if w is not None:
        y = ctx.op("Mul", [y, w])
    if b is not None:
        y = ctx.op("Add", [y, b])
    return y


@rule("batch_norm")
def _batch_norm(ctx, n):
    # training-mode statistics; ONNX's BatchNormalization returns the running ones instead
    x, *wb = ctx.ins(n)
    affine, nd = n.attrs["affine"], n.inputs[0].ndim
    per_channel = ctx.const(np.array([1, -1] + [1] * (nd - 2), np.int64))
    w, b = (ctx.op("Reshape", [wb[0], per_channel]) if "w" in affine else None,
            ctx.op("Reshape", [wb[-1], per_channel]) if "b" in affine else None)
    y, mean, var, _ = _normalize(ctx, x, [0] + list(range(2, nd)), float(n.attrs["eps"]),
                                 n.inputs[0].dtype)
    flat = ctx.const(np.array([-1], np.int64))
    return [_scale_shift(ctx, y, w, b), *_stats(ctx, n, [mean, var], flat)]


@rule("group_norm")
def _group_norm(ctx, n):
    # (N, G, D) rows normalised, back to x's shape, then the per-channel affine (opset 21's
    # GroupNormalization would do it in one node; 17 is the default)
    x, *wb = ctx.ins(n)
    affine, nd, G = n.attrs["affine"], n.inputs[0].ndim, int(n.attrs["groups"])
    xg = ctx.op("Reshape", [x, ctx.const(np.array([0, G, -1], np.int64))])
    y, mean, _, rstd = _normalize(ctx, xg, [2], float(n.attrs["eps"]), n.inputs[0].dtype)
    y = ctx.op("Reshape", [y, ctx.op("Shape", [x])])
    per_channel = ctx.const(np.array([1, -1] + [1] * (nd - 2), np.int64))
    w, b = (ctx.op("Reshape", [wb[0], per_channel]) if "w" in affine else None,
            ctx.op("Reshape", [wb[-1], per_channel]) if "b" in affine else None)
    stats = ctx.const(np.array([0, G], np.int64))
    return [_scale_shift(ctx, y, w, b), *_stats(ctx, n, [mean, rstd], stats)]


def _stats(ctx, n, stats, shape):
    """The saved statistics outputs (n.outputs[1:]) reshaped to ``shape``; None for one no
    exported node or output reads, so that no dead Reshape lands in the model."""
    return [ctx.op("Reshape", [s, shape]) if v.id in ctx.used else None
            for s, v in zip(stats, n.outputs[1:])]


@rule("batch_norm_eval")
def _batch_norm_eval(ctx, n):
    x, mean, var, *wb = ctx.ins(n)
    affine, C, dt = n.attrs["affine"], n.inputs[0].shape[1], n.inputs[0].dtype
    if "w" not in affine or "b" not in affine:
        if C is None:
            ctx.unsupported("batch_norm_eval without weight or bias needs a static channel count")
    # ONNX's scale and bias are not optional
    w = wb[0] if "w" in affine else ctx.const(np.ones(C, dt))
    b = wb[-1] if "b" in affine else ctx.const(np.zeros(C, dt))
    return ctx.op("BatchNormalization", [x, w, b, mean, var], epsilon=float(n.attrs["eps"]))


@rule("lstm_cell")
def _lstm_cell(ctx, n):
    gates, c, *addends = ctx.ins(n)
    for a in addends:       # the hidden projection and biases the op adds in its kernel
        gates = ctx.op("Add", [gates, a])
    H = n.inputs[1].shape[1]
    if H is None:
        ctx.unsupported("lstm_cell needs a static hidden size")
    ifg = ctx.op("Sigmoid", [ctx.slice(gates, [0], [2 * H], [1])])
    g = ctx.op("Tanh", [ctx.slice(gates, [2 * H], [3 * H], [1])])
    o = ctx.op("Sigmoid", [ctx.slice(gates, [3 * H], [4 * H], [1])])
    i = ctx.slice(ifg, [0], [H], [1])
    f = ctx.slice(ifg, [H], [2 * H], [1])
    c_new = ctx.op("Add", [ctx.op("Mul", [f, c]), ctx.op("Mul", [i, g])])
    h_new = ctx.op("Mul", [o, ctx.op("Tanh", [c_new])])
    acts = ctx.op("Concat", [ifg, g, o], axis=1)
    return [h_new, c_new, acts]


@rule("gru_cell")
def _gru_cell(ctx, n):
    gi, gh, h = ctx.ins(n)      # the biases are already in gi and gh
    H = n.inputs[2].shape[1]
    if H is None:
        ctx.unsupported("gru_cell needs a static hidden size")
    rz = ctx.op("Sigmoid", [ctx.op("Add", [ctx.slice(gi, [0], [2 * H], [1]),
                                           ctx.slice(gh, [0], [2 * H], [1])])])
    r = ctx.slice(rz, [0], [H], [1])
    z = ctx.slice(rz, [H], [2 * H], [1])
    nn = ctx.op("Tanh", [ctx.op("Add", [ctx.slice(gi, [2 * H], [3 * H], [1]),
                                        ctx.op("Mul", [r, ctx.slice(gh, [2 * H], [3 * H],
                                                                    [1])])])])
    h_new = ctx.op("Add", [nn, ctx.op("Mul", [z, ctx.op("Sub", [h, nn])])])
    acts = ctx.op("Concat", [rz, nn], axis=1)
    return [h_new, acts]


# tensorlib's gate blocks (PyTorch's order) in ONNX's order: LSTM i,f,g,o -> i,o,f,c; GRU
# r,z,n -> z,r,h (with linear_before_reset=1, PyTorch's GRU); an RNN has one block
_SEQ_ONNX = {"lstm_seq": ("LSTM", (0, 3, 1, 2), 2), "gru_seq": ("GRU", (1, 0, 2), 1),
             "rnn_seq": ("RNN", (0,), 1)}


@rule("lstm_seq", "gru_seq", "rnn_seq")
def _rnn_seq(ctx, n):
    """One ONNX LSTM/GRU/RNN node (direction forward or reverse) for one layer direction:
    the sequence and batch axes stay dynamic."""
    kind, order, ns = _SEQ_ONNX[n.op]
    ins = ctx.ins(n)
    x, states, (w_ih, w_hh), biases = ins[0], ins[1:1 + ns], ins[1 + ns:3 + ns], ins[3 + ns:]
    H = n.inputs[2 + ns].shape[1]           # w_hh (G * H, H)
    if H is None:
        ctx.unsupported(f"{n.op} needs a static hidden size")
    perm = ctx.ints(np.concatenate([np.arange(k * H, (k + 1) * H) for k in order]))

    def onnx_order(w):
        return w if len(order) == 1 else ctx.op("Gather", [w, perm], axis=0)
    W, R = (ctx.unsqueeze(onnx_order(w), [0]) for w in (w_ih, w_hh))
    B = (ctx.unsqueeze(ctx.op("Concat", [onnx_order(b) for b in biases], axis=0), [0])
         if biases else "")
    attrs = {"hidden_size": int(H),
             "direction": "reverse" if n.attrs.get("reverse") else "forward"}
    if kind == "GRU":
        attrs["linear_before_reset"] = 1
    if kind == "RNN":
        attrs["activations"] = ["Relu" if n.attrs.get("nonlinearity") == "relu" else "Tanh"]
    outs = ctx.op(kind, [x, W, R, B, ""] + [ctx.unsqueeze(s, [0]) for s in states],
                  n_out=1 + ns, **attrs)
    # Y is (T, directions, N, H), the final states (directions, N, H); the workspace
    # outputs (read only by the backward) have no ONNX form
    workspace = {"lstm_seq": 2, "gru_seq": 1, "rnn_seq": 0}[n.op]
    return ([ctx.squeeze(outs[0], [1])] + [ctx.squeeze(o, [0]) for o in outs[1:]]
            + [None] * workspace)


# --- grid sampling (tensorlib/ops/nn_grid.py) -----------------------------------------------
_GRID_MODES_20 = {"bilinear": "linear", "nearest": "nearest", "bicubic": "cubic"}


@rule("grid_sample")
def _grid_sample(ctx, n):
    if any(n.attrs["deriv"]):
        ctx.unsupported("a derivative of the sampling weights (a gradient kernel; export "
                        "inference graphs)")
    nd = n.inputs[0].ndim
    ctx.need_opset(16, "GridSample")
    if nd != 4:
        ctx.need_opset(20, f"GridSample of a {nd}-d input")
    mode = n.attrs["mode"]
    # opset 20 renamed the modes (and made GridSample N-d)
    return ctx.op("GridSample", ctx.ins(n), mode=_GRID_MODES_20[mode] if ctx.opset >= 20
                  else mode, padding_mode=n.attrs["padding_mode"],
                  align_corners=int(bool(n.attrs["align_corners"])))


@rule("affine_grid")
def _affine_grid(ctx, n):
    from ..ops.nn_grid import base_grid
    theta, size = ctx.name(n.inputs[0]), [int(s) for s in n.attrs["size"]]
    ac = bool(n.attrs["align_corners"])
    sizes = dict(n.attrs.get("sizes", ()))
    if sizes:       # sizes read from a None dim: AffineGrid takes them at run time
        ctx.need_opset(20, "affine_grid over a dynamic size (AffineGrid)")
        batch = ctx.op("Shape", [theta], start=0, end=1)
        parts = [sizes.get(i, s) for i, s in enumerate(size)]
        full = ctx.op("Concat", [batch, _shape_input(ctx, n, parts)], axis=0)
        return ctx.op("AffineGrid", [theta, full], align_corners=int(ac))
    if ctx.opset >= 20:
        # AffineGrid reads the batch from its size input: the batch of theta, at run time
        batch = ctx.op("Shape", [theta], start=0, end=1)
        full = ctx.op("Concat", [batch, ctx.ints(size)], axis=0)
        return ctx.op("AffineGrid", [theta, full], align_corners=int(ac))
    # before opset 20: the base grid (positions, k + 1) times theta transposed
    k = len(size) - 1
    base = ctx.const(base_grid(size[1:], ac, _dt(n.inputs[0])))
    grid = ctx.op("MatMul", [base, ctx.op("Transpose", [theta], perm=[0, 2, 1])])
    return ctx.op("Reshape", [grid, ctx.ints([-1, *size[1:], k])])


def attach() -> None:
    """Install the rules on the registry entries (``REGISTRY[name].onnx = rule``)."""
    from ..ops.registry import REGISTRY
    for name, op in REGISTRY.items():
        if name in RULES:
            op.onnx = RULES[name]
        elif name in UNSUPPORTED or not callable(op.onnx):
            op.onnx = None


def unsupported_ops() -> dict[str, str]:
    """Registry ops with no ONNX rule, and why."""
    from ..ops.registry import REGISTRY
    return {name: UNSUPPORTED.get(name, "no lowering rule yet")
            for name, op in sorted(REGISTRY.items()) if not callable(op.onnx)}
