"""Batching rules: elementwise ops, reductions, ops along one axis, matrix functions."""
from __future__ import annotations

from . import phys as P
from ._common import aligned, any_batched, batch_size, batched, rule, shift, simple, \
    unbatched, wrap

# elementwise (broadcasting) ops that are not plain ufuncs (those get this rule anyway)
ELEMENTWISE = (
    "rsqrt", "reciprocal", "tanh_grad", "sigmoid_grad", "erf", "sigmoid", "relu", "round",
    "leaky_relu_grad", "leaky_relu", "elu", "elu_grad", "gelu", "gelu_grad", "silu", "softplus",
    "softplus_grad", "clip",
    "div", "where", "relu_grad", "cast", "copy", "masked_fill", "binary_cross_entropy",
    "erfc", "erfinv", "lgamma", "digamma", "polygamma", "i0", "i1", "clip_interior_grad",
    "fmod", "logsigmoid", "logsigmoid_grad", "sign", "silu_grad", "hardswish",
    "hardswish_grad", "nan_to_num", "erfcx", "i0e", "i1e")


def elementwise(op):
    """Align the batched inputs' dims to the broadcast rank (size-1 dims after the batch
    dim), then one call of the op: NumPy broadcasting does the rest."""
    is_mul = op.name == "mul"

    def r(*arrays, **attrs):
        if not any_batched(arrays):
            return unbatched(op, arrays, attrs)
        n = max(a.ndim for a in arrays)
        ins = [aligned(a, n) for a in arrays]
        if is_mul and len(ins) == 2 and not attrs and n >= 2 and ins[0].ndim == ins[1].ndim:
            # (m, 1) * (1, n) per example: matmul's backward for a shared weight; kept as
            # factors so that the sum over the batch is one GEMM (phys.Outer)
            a, b = ins
            if a.shape[-1] != 1 or b.shape[-2] != 1:
                a, b = b, a         # (a product: the operands commute exactly)
            if a.shape[-1] == 1 and b.shape[-2] == 1:
                o = P.outer(a, b)
                if o is not None:
                    return wrap(o, arrays[0].dev)
        return wrap(P.call(op, *ins, **attrs), arrays[0].dev)
    r.__name__ = f"vmap_elementwise_{op.name}"
    return r


rule(*ELEMENTWISE)(elementwise)


# --- reductions over axis=None or a tuple, with keepdims -------------------------------
@simple("sum", "mean", "max", "min", "all", "any", "var", "std", "logsumexp", "norm", "prod",
        "nansum", "nanmean")
def _reduce(op, x, *, axis, keepdims, **rest):
    return wrap(P.call(op, x.phys, axis=shift(axis, x.ndim), keepdims=keepdims, **rest), x.dev)


@simple("argmax", "argmin")
def _arg_reduce(op, x, *, axis, keepdims):
    B = x.phys.shape[0]
    if axis is None:        # an index into the flattened example
        out = P.call(op, P.reshape(x.phys, (B, x.size)), axis=1, keepdims=False)
        if keepdims:
            out = P.reshape(out, (B,) + (1,) * x.ndim)
        return wrap(out, x.dev)
    if x.ndim == 0:
        return wrap(P.call(op, P.expand_dims(x.phys, (1,)), axis=1, keepdims=False), x.dev)
    return wrap(P.call(op, x.phys, axis=shift(axis, x.ndim), keepdims=keepdims), x.dev)


# --- ops along one axis (an int attr ``axis``) -----------------------------------------------
@simple("cumsum", "cumprod", "logcumsumexp", "cum_extreme", "mode_indices", "softmax",
        "log_softmax", "argsort", "topk_indices")
def _along_axis(op, x, *, axis, **rest):
    if x.ndim == 0:     # a 0-d example: the op along a size-1 axis, then that axis dropped
        out = P.call(op, P.expand_dims(x.phys, (1,)), axis=1, **rest)
        if type(out) is tuple:      # cum_extreme: values and indices
            return wrap(tuple(P.squeeze(o, (1,)) for o in out), x.dev)
        return wrap(P.squeeze(out, (1,)), x.dev)
    return wrap(P.call(op, x.phys, axis=shift(axis, x.ndim), **rest), x.dev)


@simple("softmax_grad", "log_softmax_grad")
def _along_axis_pair(op, g, y, *, axis):
    """The softmax gradients: g and y have one logical shape, so both go batched."""
    B = batch_size((g, y))
    gp, yp = batched(g, B), batched(y, B)
    if g.ndim == 0:
        out = P.call(op, P.expand_dims(gp, (1,)), P.expand_dims(yp, (1,)), axis=1)
        return wrap(P.squeeze(out, (1,)), g.dev)
    return wrap(P.call(op, gp, yp, axis=shift(axis, g.ndim)), g.dev)


# --- ops on the trailing dims that broadcast over leading ones -------------------------------
@simple("inv", "det", "slogdet", "cholesky", "eigh", "svd", "qr", "tril", "triu", "one_hot")
def _leading(op, x, **attrs):
    return wrap(P.call(op, x.phys, **attrs), x.dev)


@simple("solve")
def _solve(op, a, b):
    """Both with the batch dim first and the same number of batch dims; a vector
    right-hand side (torch.linalg.solve's rule) as one column, dropped again."""
    from ..ops.matrix import _vector_rhs
    B = batch_size((a, b))
    vec = _vector_rhs(a.shape, b.shape)
    pb = batched(b, B)
    if vec:
        pb = P.expand_dims(pb, (pb.ndim,))
    nb = b.ndim + vec
    r = max(a.ndim, nb) - 2
    pa = P.expand_dims(batched(a, B), tuple(range(1, 1 + r - (a.ndim - 2))))
    pb = P.expand_dims(pb, tuple(range(1, 1 + r - (nb - 2))))
    out = P.call(op, pa, pb)
    return wrap(P.squeeze(out, (out.ndim - 1,)) if vec else out, a.dev)


@simple("diagonal")
def _diagonal(op, x, *, offset, axis1, axis2):
    return wrap(P.call(op, x.phys, offset=offset, axis1=axis1 + 1, axis2=axis2 + 1), x.dev)


@simple("diagonal_embed")
def _diagonal_embed(op, g, *, shape, offset, axis1, axis2):
    B = g.phys.shape[0]
    return wrap(P.call(op, g.phys, shape=(B,) + tuple(shape), offset=offset, axis1=axis1 + 1,
                       axis2=axis2 + 1), g.dev)
