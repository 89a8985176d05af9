"""Helpers the compiled graph functions call: variable reads/writes and random draws."""
from __future__ import annotations

import numpy as np

from .._tensor import _wrap
from .sizes import apply_sizes


def _read_grad(owner, name):
    g = owner.grad
    if g is None:
        raise RuntimeError(f"graph variable {name}: the tensor's .grad is None, but the graph "
                           "was traced when it held a gradient (call the function again "
                           "through tl.function, which retraces, or set .grad first)")
    return g._data


def _write_data(t, arr) -> None:
    if t is None:       # an input fed as an array (graph.run): no tensor to write back into
        return
    if arr is not t._data:
        t._data[...] = arr
    t._version[0] += 1


def _write_grad_data(owner, arr) -> None:
    g = owner.grad
    if g is None:
        copy = arr.copy() if hasattr(arr, "__cuda_array_interface__") else np.array(arr, copy=True)
        owner.grad = _wrap(copy, owner._device, False, None, 0)
        return
    _write_data(g, arr)


def _set_grad(owner, arr) -> None:
    owner.grad = None if arr is None else _wrap(arr, owner._device, False, None, 0)


def _sgd_inplace(t, g, lr: float) -> None:
    """``t -= lr * g`` in the variable's storage (one fused kernel when it applies: Cython on
    the CPU, tensorlib.cuda's SGD kernel on a GPU)."""
    p = t._data
    fused = (p.flags.c_contiguous and p.dtype in (np.float32, np.float64) and g.dtype == p.dtype
             and g.shape == p.shape and p.size)
    if fused and isinstance(p, np.ndarray) and p.flags.writeable:
        from .. import _ops
        gf = np.ascontiguousarray(g).reshape(-1)
        pf = p.reshape(-1)
        _ops.sgd_update(pf, gf, pf, lr, 0.0, 0.0, 0.0, False, False)
    elif fused and hasattr(p, "__cuda_array_interface__"):
        from ..cuda.kernels import sgd_update_
        sgd_update_(p, g, None, lr)
    else:
        p -= lr * g
    t._version[0] += 1


def _sgd_gemm_inplace(t, g, x, lr: float) -> None:
    """``t -= lr * g.T @ x``: a weight gradient folded into its SGD update (one BLAS GEMM
    adding into the variable's storage, see ``passes.fusion.fuse_sgd_gemm``)."""
    from .. import _blas
    p = t._data
    if not (isinstance(p, np.ndarray) and _blas.add_at_b(p, g, x, -lr)):
        p -= lr * (g.T @ x)
    t._version[0] += 1


def _kernel_operand(g, *state):
    """``g`` flat and contiguous for a fused update of ``state``; a copy when it overlaps
    their storage other than element for element (the kernels read index i of every
    operand before writing index i)."""
    if any(np.may_share_memory(g, s) for s in state) and not any(
            g.shape == s.shape and g.strides == s.strides
            and g.__array_interface__["data"][0] == s.__array_interface__["data"][0]
            for s in state):
        g = g.copy()
    return np.ascontiguousarray(g).reshape(-1)


def _fusable(*ts) -> bool:
    a = ts[0]._data
    return all(type(t._data) is np.ndarray and t._data.dtype == a.dtype
               and t._data.shape == a.shape and t._data.flags.c_contiguous
               and t._data.flags.writeable for t in ts)


def _adam_inplace(p, m, v, g, step, lr, beta1, beta2, eps, weight_decay, decoupled) -> None:
    """The eager Adam/AdamW kernel (``_ops.adam_update``) in the variables' storage, with the
    bias corrections from the graph's step count as eager computes them (recognised by
    ``passes.inplace``)."""
    from .. import _ops
    k = int(step)
    bc1, bc2 = 1.0 - beta1 ** k, 1.0 - beta2 ** k
    pa, ma, va = p._data, m._data, v._data
    if _fusable(p, m, v) and g.dtype == pa.dtype and g.shape == pa.shape:
        if pa.size:
            _ops.adam_update(pa.reshape(-1), _kernel_operand(g, pa, ma, va), ma.reshape(-1),
                             va.reshape(-1), lr, beta1, beta2, eps, weight_decay, decoupled,
                             bc1, bc2)
    else:   # storage the kernel cannot take (replaced by non-contiguous data): its math
        d = g.astype(np.float64)
        pi = pa.astype(np.float64)
        if weight_decay:
            if decoupled:
                pi = pi * (1.0 - lr * weight_decay)
            else:
                d = d + weight_decay * pi
        mi = beta1 * ma.astype(np.float64) + (1.0 - beta1) * d
        vi = beta2 * va.astype(np.float64) + (1.0 - beta2) * d * d
        ma[...] = mi
        va[...] = vi
        pa[...] = pi - (lr / bc1) * mi / (np.sqrt(vi) / np.sqrt(bc2) + eps)
    for t in (p, m, v):
        t._version[0] += 1


def _sgd_momentum_inplace(p, buf, g, lr, momentum, dampening, weight_decay,
                          nesterov) -> None:
    """The eager SGD kernel (``_ops.sgd_update``) with a momentum buffer, in the variables'
    storage (recognised by ``passes.inplace``)."""
    from .. import _ops
    pa, ba = p._data, buf._data
    if _fusable(p, buf) and g.dtype == pa.dtype and g.shape == pa.shape:
        if pa.size:
            _ops.sgd_update(pa.reshape(-1), _kernel_operand(g, pa, ba), ba.reshape(-1), lr,
                            momentum, dampening, weight_decay, nesterov, False)
    else:
        d = g.astype(np.float64)
        pi = pa.astype(np.float64)
        if weight_decay:
            d = d + weight_decay * pi
        b = momentum * ba.astype(np.float64) + (1.0 - dampening) * d
        ba[...] = b
        pa[...] = pi - lr * (d + momentum * b if nesterov else b)
    p._version[0] += 1
    buf._version[0] += 1


def random_shape(attrs, shapes) -> tuple:
    """A random node's shape for its inputs' ``shapes``: ``attrs["shape"]`` with the
    positions of ``attrs["sizes"]`` computed from them (a draw that follows a None dim)."""
    return apply_sizes(attrs["shape"], attrs.get("sizes", ()), shapes)


def _random(generator, attrs, *inputs):
    """Draw like tensorlib.creation does, so a captured draw matches the eager one;
    ``inputs``: the arrays whose dims a draw that follows a None dim reads."""
    from ..random import rng
    if "reseed" in attrs:   # the traced call reseeded this generator before this draw
        from .replay_checks import reseed
        reseed(generator, attrs["reseed"])
    elif "rng_ops" in attrs:    # ... or saved / set its state (see replay_checks)
        from .replay_checks import rng_ops
        rng_ops(generator, attrs["rng_ops"])
    r = rng(generator)
    dist = attrs["dist"]
    shape = random_shape(attrs, [x.shape for x in inputs]) if inputs else attrs["shape"]
    if dist == "rand":
        a = r.random(shape)
    elif dist == "randn":
        a = r.standard_normal(shape, dtype=np.float64)
    elif dist == "normal":
        a = r.normal(attrs["mean"], attrs["std"], shape)
    elif dist == "uniform":
        a = r.uniform(attrs["low"], attrs["high"], shape)
    elif dist == "randint":
        a = r.integers(attrs["low"], attrs["high"], size=shape)
    elif dist == "randperm":
        a = r.permutation(attrs["n"])
    else:
        raise ValueError(f"random node: unknown distribution {dist!r}")
    return np.asarray(a).astype(attrs["dtype"], copy=False)


RUNTIME = {"_read_grad": _read_grad, "_write_data": _write_data,
           "_write_grad_data": _write_grad_data, "_set_grad": _set_grad, "_random": _random,
           "_sgd_inplace": _sgd_inplace, "_sgd_gemm_inplace": _sgd_gemm_inplace,
           "_adam_inplace": _adam_inplace, "_sgd_momentum_inplace": _sgd_momentum_inplace}
