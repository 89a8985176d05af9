"""tl.vmap / tl.func.vmap, jacrev, hessian, vjp, stack_module_state: against torch.func with
the same inputs, against per-example loops, and against finite differences (float64)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from cases import draw_inputs, load_all

torch = pytest.importorskip("torch")
from torch_ref import _close as _close_ref, _np  # noqa: E402
tF = torch.nn.functional
tfunc = torch.func

CASES = load_all()
BY_ID = {c.id: c for c in CASES}


def _t(a, grad=False):
    return tl.tensor(np.asarray(a), requires_grad=grad)


def _tt(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def _close(got, want, rtol=1e-7, atol=1e-9):
    _close_ref(got, want, rtol, atol)       # (this file's looser default tolerances)


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


# --- every registry op: vmap against a loop over the examples ---------------------------------
B = 3
# ops that vmap refuses, with the reason PyTorch's vmap refuses them too (or a clear one)
REFUSED = {"to_device": "moving a tensor",
           "setitem": "in-place write of a batched value into a tensor that is the same"}


def _batched_inputs(case, draw):
    """The case's inputs, each batched (B variants stacked on dim 0) or not (in_dim None),
    and the inputs of each example."""
    arrays, params = draw_inputs(case, draw)
    arrays = [np.asarray(a) for a in arrays]
    dims = [draw(st.sampled_from([0, None])) for _ in arrays]
    if all(d is None for d in dims):
        dims[draw(st.integers(0, len(arrays) - 1))] = 0
    per = [[a * (1 + 0.05 * b) if a.dtype.kind == "f" and d == 0 else a
            for a, d in zip(arrays, dims)] for b in range(B)]
    ins = [_t(np.stack([p[i] for p in per])) if d == 0 else _t(arrays[i])
           for i, d in enumerate(dims)]
    return per, ins, tuple(dims), params


def _refused(cid, err) -> bool:
    reason = REFUSED.get(BY_ID[cid].op)
    return reason is not None and "vmap:" in str(err) and reason in str(err)


@pytest.mark.parametrize("cid", sorted(BY_ID))
@settings(max_examples=4)
@given(data=st.data())
def test_registry_op_matches_loop(cid, data):
    case = BY_ID[cid]
    per, ins, dims, params = _batched_inputs(case, data.draw)

    def fn(*ts):
        return case.fn(*ts, **params)
    try:
        refs = [_tuple(fn(*[_t(a) for a in ex])) for ex in per]
    except Exception:       # (inputs an example itself refuses, e.g. a scaled probability)
        return
    try:
        got = _tuple(tl.vmap(fn, in_dims=dims)(*ins))
    except (RuntimeError, NotImplementedError) as e:
        assert _refused(cid, e), e
        return
    assert len(got) == len(refs[0])
    for k, g in enumerate(got):
        want = np.stack([_np(r[k]) for r in refs])
        _close(g, want, rtol=1e-6, atol=1e-7)


GRAD_CASES = sorted(c.id for c in CASES if c.grad)


def _scalar_of(case, params, example, diff):
    """sum(out * w) over the float outputs, w fixed random weights shaped as each output."""
    outs = _tuple(case.fn(*[_t(a) for a in example], **params))
    rng = np.random.default_rng(1)
    ws = [_t(rng.standard_normal(o.shape)) if o.dtype.kind == "f" else None for o in outs]

    def scalar(*ts):
        total = None
        for o, w in zip(_tuple(case.fn(*ts, **params)), ws):
            if w is not None and o.requires_grad:
                s = (o * w).sum()
                total = s if total is None else total + s
        return total if total is not None else sum((ts[k] * 0.0).sum() for k in diff)
    return scalar


@pytest.mark.parametrize("cid", GRAD_CASES)
@settings(max_examples=3)
@given(data=st.data(), outer=st.booleans())
def test_registry_op_gradients_through_vmap(cid, data, outer):
    """vmap(grad(f)) (per-example gradients) and grad(sum(vmap(f))) (gradients summed over
    the examples for unbatched inputs) against the gradient of each example."""
    case = BY_ID[cid]
    per, ins, dims, params = _batched_inputs(case, data.draw)
    diff = case.diff if case.diff is not None else tuple(
        k for k, a in enumerate(per[0]) if np.asarray(a).dtype.kind == "f")
    if not diff:
        return
    try:
        scalar = _scalar_of(case, params, per[0], diff)
        g = tl.func.grad(scalar, argnums=tuple(diff))
        refs = [g(*[_t(a) for a in ex]) for ex in per]
    except Exception:
        return
    try:
        if not outer:
            got = tl.vmap(g, in_dims=dims)(*ins)
            want = [np.stack([_np(r[j]) for r in refs]) for j in range(len(diff))]
        else:
            vm = tl.vmap(scalar, in_dims=dims)
            got = tl.func.grad(lambda *ts: vm(*ts).sum(), argnums=tuple(diff))(*ins)
            want = [np.stack([_np(r[j]) for r in refs]) for j in range(len(diff))]
            want = [w.sum(0) if dims[k] is None else w for w, k in zip(want, diff)]
    except (RuntimeError, NotImplementedError) as e:
        assert _refused(cid, e), e
        return
    for gk, wk in zip(got, want):
        _close(gk, wk, rtol=1e-6, atol=1e-7)


def test_registry_fallback_ops():
    """Informational: the ops vmap runs once per example. The important ones must not be
    among them (this fails if their batching rule is removed)."""
    from tensorlib.vmap import rules
    fallback = sorted(n for n, op in tl.REGISTRY.items() if rules.kind(op) == "fallback")
    print(f"\nvmap per-example fallback ({len(fallback)} ops): {', '.join(fallback)}")
    important = {
        "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "tanh", "sigmoid", "relu",
        "gelu", "silu", "softplus", "leaky_relu", "elu", "clip", "where", "maximum",
        "sum", "mean", "max", "min", "var", "std", "logsumexp", "norm", "argmax", "argmin",
        "softmax", "log_softmax", "matmul", "linear", "linear_grad", "einsum", "dot",
        "reshape", "transpose", "broadcast_to", "squeeze", "expand_dims", "concatenate",
        "stack", "slice", "getitem", "getitem_grad", "conv2d", "conv2d_input_grad",
        "conv2d_weight_grad", "layer_norm", "layer_norm_grad", "cross_entropy",
        "cross_entropy_grad", "nll_loss", "embedding", "embedding_grad", "relu_grad",
        "tanh_grad", "sigmoid_grad", "gelu_grad", "max_pool2d", "max_pool2d_grad",
        "avg_pool2d", "batch_norm", "batch_norm_grad", "cast", "copy", "split", "unbind",
        "pad", "cumsum", "take", "take_along_axis"}
    assert not important & set(fallback), sorted(important & set(fallback))
    for name in important:
        k = tl.REGISTRY[name].kernel_for("vmap")
        assert not getattr(k, "vmap_fallback", False), name


def test_fallback_op_is_correct():
    """index_add has no batching rule: the per-example fallback, against torch.func.vmap."""
    from tensorlib.vmap import rules
    assert rules.kind(tl.REGISTRY["index_add"]) == "fallback"
    x, src = _rand(4, 5, 3), _rand(4, 2, 3, seed=1)
    idx = np.array([4, 1])
    got = tl.vmap(lambda a, s: tl.index_add(a, 0, _t(idx), s))(_t(x), _t(src))
    want = tfunc.vmap(lambda a, s: a.index_add(0, _tt(idx), s))(_tt(x), _tt(src))
    _close(got, want)
    # and its gradient, through the fallback of the op's backward
    xs = _t(x, True)
    tl.vmap(lambda a, s: tl.index_add(a, 0, _t(idx), s))(xs, _t(src)).pow(2).sum().backward()
    xt = _tt(x, True)
    tfunc.vmap(lambda a, s: a.index_add(0, _tt(idx), s))(xt, _tt(src)).pow(2).sum().backward()
    _close(xs.grad, xt.grad)


# --- the op list, against torch.func.vmap -------------------------------------------------------
def _pair(tl_fn, torch_fn, arrays, in_dims, rtol=1e-7, atol=1e-9, out_dims=0):
    got = tl.vmap(tl_fn, in_dims=in_dims, out_dims=out_dims)(*[_t(a) for a in arrays])
    want = tfunc.vmap(torch_fn, in_dims=in_dims, out_dims=out_dims)(*[_tt(a) for a in arrays])
    for g, w in zip(_tuple(got), _tuple(want)):
        _close(g, w, rtol, atol)


UNARY = [
    (tl.exp, torch.exp), (tl.log, lambda x: torch.log(x)), (tl.tanh, torch.tanh),
    (tl.sigmoid, torch.sigmoid), (F.relu, torch.relu), (F.gelu, tF.gelu), (F.silu, tF.silu),
    (F.softplus, tF.softplus), (F.elu, tF.elu), (lambda x: F.leaky_relu(x, 0.1),
                                                 lambda x: tF.leaky_relu(x, 0.1)),
    (tl.sin, torch.sin), (tl.sqrt, torch.sqrt), (tl.abs, torch.abs), (tl.neg, torch.neg),
    (lambda x: tl.clamp(x, -0.5, 0.5), lambda x: torch.clamp(x, -0.5, 0.5)),
    (lambda x: x ** 2 + 1.0, lambda x: x ** 2 + 1.0), (tl.rsqrt, torch.rsqrt),
    (tl.erf, torch.erf), (tl.floor, torch.floor)]


@pytest.mark.parametrize("k", range(len(UNARY)))
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), dim=st.integers(0, 5))
def test_unary_ops_vs_torch(k, shape, dim):
    tl_fn, t_fn = UNARY[k]
    a = np.abs(_rand(*shape)) + 0.1 if k in (1, 11, 16) else _rand(*shape)
    _pair(tl_fn, t_fn, [a], dim % len(shape))


BINARY = [(tl.add, torch.add), (tl.sub, torch.sub), (tl.mul, torch.mul), (tl.div, torch.div),
          (tl.maximum, torch.maximum), (tl.pow, torch.pow),
          (lambda a, b: tl.where(a > b, a, b * 2.0), lambda a, b: torch.where(a > b, a, b * 2))]


@pytest.mark.parametrize("k", range(len(BINARY)))
@given(sa=st.lists(st.integers(1, 3), min_size=0, max_size=3),
       drop=st.integers(0, 3), dims=st.tuples(st.sampled_from([0, 1, -1, None]),
                                               st.sampled_from([0, -1, None])))
def test_binary_ops_broadcast_vs_torch(k, sa, drop, dims):
    tl_fn, t_fn = BINARY[k]
    sb = sa[min(drop, len(sa)):]
    da, db = dims
    if da is None and db is None:
        da = 0
    da = None if da is None else da % (len(sa) + 1)
    db = None if db is None else db % (len(sb) + 1)
    a = _rand(*(sa if da is None else _insert(sa, da, B)))
    b = _rand(*(sb if db is None else _insert(sb, db, B)), seed=1)
    if k == 5:
        a = np.abs(a) + 0.5
    _pair(tl_fn, t_fn, [a, b], (da, db))


def _insert(shape, dim, n):
    s = list(shape)
    s.insert(dim % (len(s) + 1), n)
    return tuple(s)


REDUCTIONS = [
    (lambda x: x.sum(), lambda x: x.sum()), (lambda x: x.sum(-1), lambda x: x.sum(-1)),
    (lambda x: x.mean(0, keepdims=True), lambda x: x.mean(0, keepdim=True)),
    (lambda x: x.max(), lambda x: x.max()), (lambda x: tl.amin(x, -1), lambda x: x.amin(-1)),
    (lambda x: x.var(0), lambda x: x.var(0)), (lambda x: x.std(), lambda x: x.std()),
    (lambda x: tl.logsumexp(x, -1), lambda x: torch.logsumexp(x, -1)),
    (lambda x: F.softmax(x, -1), lambda x: torch.softmax(x, -1)),
    (lambda x: F.log_softmax(x, 0), lambda x: torch.log_softmax(x, 0)),
    (lambda x: tl.argmax(x, -1), lambda x: torch.argmax(x, -1)),
    (lambda x: tl.argmax(x), lambda x: torch.argmax(x)),
    (lambda x: tl.norm(x, dim=-1), lambda x: torch.linalg.vector_norm(x, dim=-1)),
    (lambda x: x.max(-1).values, lambda x: x.max(-1).values),
    (lambda x: x.cumsum(0), lambda x: x.cumsum(0))]


@pytest.mark.parametrize("k", range(len(REDUCTIONS)))
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=3), dim=st.integers(0, 5))
def test_reductions_vs_torch(k, shape, dim):
    tl_fn, t_fn = REDUCTIONS[k]
    _pair(tl_fn, t_fn, [_rand(*shape)], dim % len(shape))


def test_matmul_family_vs_torch():
    a, b = _rand(B, 3, 4), _rand(4, 5, seed=1)
    for dims in ((0, None), (None, 0), (0, 0)):
        bb = np.stack([b] * B) if dims[1] == 0 else b
        aa = a if dims[0] == 0 else a[0]
        _pair(tl.matmul, torch.matmul, [aa, bb], dims)
    # vectors, batched or not, on either side
    _pair(tl.matmul, torch.matmul, [_rand(B, 4), _rand(4, 5)], (0, None))
    _pair(tl.matmul, torch.matmul, [_rand(4), _rand(B, 4, 5)], (None, 0))
    _pair(tl.matmul, torch.matmul, [_rand(B, 4), _rand(B, 4)], (0, 0))
    _pair(tl.matmul, torch.matmul, [_rand(2, 3, 4), _rand(B, 4)], (None, 0))
    _pair(tl.dot, torch.dot, [_rand(B, 4), _rand(4)], (0, None))
    _pair(tl.outer, torch.outer, [_rand(B, 4), _rand(3)], (0, None))
    _pair(tl.bmm, torch.bmm, [_rand(B, 2, 3, 4), _rand(2, 4, 5)], (0, None))
    _pair(lambda x, y: tl.einsum("ij,jk->ik", x, y), lambda x, y: torch.einsum("ij,jk->ik", x, y),
          [_rand(3, B, 4), _rand(B, 4, 2)], (1, 0))
    _pair(lambda x, y: tl.einsum("...i,i", x, y), lambda x, y: torch.einsum("...i,i", x, y),
          [_rand(B, 2, 4), _rand(4)], (0, None))
    _pair(F.linear, tF.linear, [_rand(B, 5, 4), _rand(3, 4), _rand(3)], (0, None, None))
    _pair(F.linear, tF.linear, [_rand(5, 4), _rand(B, 3, 4), _rand(B, 3)], (None, 0, 0))
    _pair(F.linear, tF.linear, [_rand(B, 4), _rand(B, 3, 4), _rand(3)], (0, 0, None))


SHAPE_OPS = [
    (lambda x: x.reshape(-1), lambda x: x.reshape(-1)),
    (lambda x: x.view(x.shape[1], x.shape[0]), lambda x: x.reshape(x.shape[1], x.shape[0])),
    (lambda x: x.transpose(0, 1), lambda x: x.transpose(0, 1)),
    (lambda x: x.permute(1, 0), lambda x: x.permute(1, 0)),
    (lambda x: x.unsqueeze(1).expand(-1, 3, -1), lambda x: x.unsqueeze(1).expand(-1, 3, -1)),
    (lambda x: tl.broadcast_to(x, (2,) + tuple(x.shape)),
     lambda x: torch.broadcast_to(x, (2,) + tuple(x.shape))),
    (lambda x: x[:1].squeeze(0), lambda x: x[:1].squeeze(0)),
    (lambda x: tl.cat([x, x * 2], dim=-1), lambda x: torch.cat([x, x * 2], dim=-1)),
    (lambda x: tl.stack([x, x + 1], dim=1), lambda x: torch.stack([x, x + 1], dim=1)),
    (lambda x: x[1:, ::2], lambda x: x[1:, ::2]), (lambda x: x[-1], lambda x: x[-1]),
    (lambda x: x[None, ..., 0], lambda x: x[None, ..., 0]),
    (lambda x: x[:, [2, 0]], lambda x: x[:, [2, 0]]),
    (lambda x: x.flip(0), lambda x: x.flip(0)),
    (lambda x: x.split(1, dim=1)[1], lambda x: x.split(1, dim=1)[1]),
    (lambda x: x.unbind(0)[1], lambda x: x.unbind(0)[1]),
    (lambda x: F.pad(x, (1, 2)), lambda x: tF.pad(x, (1, 2))),
    (lambda x: x.tril(), lambda x: x.tril()), (lambda x: x.flatten(), lambda x: x.flatten()),
    (lambda x: tl.tile(x, (2, 1)), lambda x: x.repeat(2, 1))]


@pytest.mark.parametrize("k", range(len(SHAPE_OPS)))
@given(dim=st.integers(0, 2))
def test_shape_and_indexing_ops_vs_torch(k, dim):
    tl_fn, t_fn = SHAPE_OPS[k]
    _pair(tl_fn, t_fn, [_rand(*_insert((2, 3), dim, B))], dim)


def test_tensor_index_batched_per_example():
    x, i = _rand(B, 5), np.array([[0, 4], [1, 1], [3, 2]])
    _pair(lambda a, j: a[j], lambda a, j: a[j], [x, i], (0, 0))
    _pair(lambda a, j: a[j], lambda a, j: a[j], [x[0], i], (None, 0))
    x3 = _rand(B, 4, 5)
    for axis in (0, 1):
        _pair(lambda a, j: tl.index_select(a, axis, j),
              lambda a, j: torch.index_select(a, axis, j), [x3, i % 4], (0, 0))
    _pair(lambda a, j: tl.take(a, j, axis=1), lambda a, j: a[:, j], [x3, i - 4], (0, 0))
    # out-of-range per-example indices raise, as outside vmap (no read of another example)
    with pytest.raises(IndexError, match="indices must lie in"):
        tl.vmap(lambda a, j: tl.index_select(a, 0, j))(_t(x3), _t(i + 1))
    with pytest.raises(IndexError, match="indices must lie in"):
        tl.vmap(lambda j, e: F.embedding(j, e))(_t(i - 1), _t(np.stack([_rand(5, 2)] * B)))
    with pytest.raises(IndexError, match="out of range for 5 classes"):
        tl.vmap(lambda a, t: F.cross_entropy(a, t))(_t(x), _t(np.array([0, -2, 1])))


def test_conv2d_vs_torch():
    x, w, b = _rand(B, 2, 3, 6, 6), _rand(4, 3, 3, 3, seed=1), _rand(4, seed=2)
    conv = (lambda a, k, c: F.conv2d(a, k, c, padding=1, stride=2),
            lambda a, k, c: tF.conv2d(a, k, c, padding=1, stride=2))
    _pair(*conv, [x, w, b], (0, None, None))                        # the batch folded into N
    _pair(*conv, [x[0], np.stack([w] * B) * 0.5, b], (None, 0, None))   # ensemble: groups
    _pair(*conv, [x, np.stack([w, w * 2, -w]), np.stack([b] * B)], (0, 0, 0))
    g = (lambda a, k: F.conv2d(a, k, groups=3), lambda a, k: tF.conv2d(a, k, groups=3))
    _pair(*g, [x, np.stack([_rand(6, 1, 2, 2)] * B)], (0, 0))
    _pair(*conv, [x[:, 0], w, b], (0, None, None))                  # unbatched (C, H, W)


def test_norms_losses_embedding_vs_torch():
    x = _rand(B, 4, 6)
    w, b = _rand(6, seed=1), _rand(6, seed=2)
    _pair(lambda a, p, q: F.layer_norm(a, (6,), p, q), lambda a, p, q: tF.layer_norm(a, (6,), p, q),
          [x, w, b], (0, None, None))
    _pair(lambda a, p, q: F.layer_norm(a, (6,), p, q), lambda a, p, q: tF.layer_norm(a, (6,), p, q),
          [x[0], np.stack([w] * B) * [[1], [2], [3]], b], (None, 0, None))
    t = np.array([[0, 5, 2, 1], [3, 3, 0, 1], [5, 4, 2, 0]])
    for red in ("mean", "sum", "none"):
        _pair(lambda a, y: F.cross_entropy(a, y, reduction=red),
              lambda a, y: tF.cross_entropy(a, y, reduction=red), [x, t], (0, 0))
        # (torch.func.vmap refuses ignore_index: against torch per example)
        got = tl.vmap(lambda a, y: F.cross_entropy(a, y, reduction=red, ignore_index=3))(
            _t(x), _t(t))
        want = torch.stack([tF.cross_entropy(_tt(x[i]), _tt(t[i]), reduction=red,
                                             ignore_index=3) for i in range(B)])
        _close(got, want)
    _pair(lambda a, y: F.cross_entropy(a, y), lambda a, y: tF.cross_entropy(a, y),
          [x[:, 0], t[:, 0]], (0, 0))
    got = tl.vmap(lambda a, y, c: F.cross_entropy(a, y, weight=c, label_smoothing=0.1),
                  in_dims=(0, 0, None))(_t(x), _t(t), _t(np.abs(w)))
    want = torch.stack([tF.cross_entropy(_tt(x[i]), _tt(t[i]), weight=_tt(np.abs(w)),
                                         label_smoothing=0.1) for i in range(B)])
    _close(got, want)
    _pair(lambda a, y: F.mse_loss(a, y), lambda a, y: tF.mse_loss(a, y), [x, x[0] * 0.5],
          (0, None))
    _pair(lambda a, y: F.nll_loss(F.log_softmax(a, -1), y),
          lambda a, y: tF.nll_loss(torch.log_softmax(a, -1), y), [x, t], (0, 0))
    table = _rand(7, 3)
    idx = np.array([[0, 6, 2], [1, 1, 5], [4, 3, 0]])
    _pair(lambda i, e: F.embedding(i, e), lambda i, e: tF.embedding(i, e), [idx, table],
          (0, None))
    _pair(lambda i, e: F.embedding(i, e), lambda i, e: tF.embedding(i, e),
          [idx[0], np.stack([table, -table, table * 2])], (None, 0))


# --- in_dims / out_dims -------------------------------------------------------------------------
def test_in_dims_and_out_dims_forms():
    x, y = _rand(3, B), _rand(B, 2, seed=1)

    def f(a, pair, d, k, *, scale=1.0):
        return a * scale + pair[0].sum() + pair[1]["w"].sum() * k + d["u"].sum()
    args = (x, (y, {"w": _rand(2)}), {"u": _rand(B, 1)}, 2.0)
    in_dims = (1, (0, {"w": None}), {"u": 0}, None)
    got = tl.vmap(f, in_dims=in_dims)(_t(x), (_t(y), {"w": _t(args[1][1]["w"])}),
                                      {"u": _t(args[2]["u"])}, 2.0, scale=3.0)
    want = tfunc.vmap(f, in_dims=in_dims)(_tt(x), (_tt(y), {"w": _tt(args[1][1]["w"])}),
                                          {"u": _tt(args[2]["u"])}, 2.0, scale=3.0)
    _close(got, want)
    # negative dims, a list argument, nested outputs with per-output out_dims
    def g(a, ls):
        return {"s": a * ls[0], "t": (a.sum(), ls[1])}
    ins = (_rand(2, B), [_rand(B, 2, seed=2), _rand(4, seed=3)])
    od = {"s": -1, "t": (0, None)}
    got = tl.vmap(g, in_dims=(-1, [0, None]), out_dims=od)(_t(ins[0]), [_t(a) for a in ins[1]])
    want = tfunc.vmap(g, in_dims=(-1, [0, None]), out_dims=od)(_tt(ins[0]),
                                                               [_tt(a) for a in ins[1]])
    _close(got["s"], want["s"])
    _close(got["t"][0], want["t"][0])
    _close(got["t"][1], want["t"][1])
    # an output that is the same for every example, with an int out_dim: expanded
    got = tl.vmap(lambda a: (a, tl.ones(2)), out_dims=(0, 1))(_t(x))
    _close(got[1], np.ones((2, x.shape[0]), np.float32))
    assert tl.vmap(lambda a: (a, 5), out_dims=(0, None))(_t(x))[1] == 5


def test_nested_vmap_vs_torch():
    x, y = _rand(2, 3, 4), _rand(3, 4, seed=1)

    def f(a, b):
        return (a @ b.T).tanh().sum(-1) * a.mean()
    got = tl.vmap(tl.vmap(f, in_dims=(0, None)), in_dims=(0, None))(_t(x), _t(y))
    want = tfunc.vmap(tfunc.vmap(f, in_dims=(0, None)), in_dims=(0, None))(_tt(x), _tt(y))
    _close(got, want)
    got = tl.vmap(tl.vmap(f, in_dims=(None, 0)), in_dims=(0, None))(_t(x[:, 0]), _t(y))
    want = tfunc.vmap(tfunc.vmap(f, in_dims=(None, 0)), in_dims=(0, None))(_tt(x[:, 0]), _tt(y))
    _close(got, want)
    # an outer level's tensor used inside the inner function (a closure), and grad through
    xs = _t(x, True)
    tl.vmap(lambda a: tl.vmap(lambda r: (r * a.sum()).sin())(a))(xs).sum().backward()
    xt = _tt(x, True)
    tfunc.vmap(lambda a: tfunc.vmap(lambda r: (r * a.sum()).sin())(a))(xt).sum().backward()
    _close(xs.grad, xt.grad)


def test_closure_weights_and_backward_into_them():
    x, w, b = _rand(B, 5, 4), _rand(3, 4, seed=1), _rand(3, seed=2)
    lw, lb = _t(w, True), _t(b, True)
    tw, tb = _tt(w, True), _tt(b, True)
    out = tl.vmap(lambda a: tl.tanh(F.linear(a, lw, lb) + tl.zeros(3)).sum(0))(_t(x))
    ref = tfunc.vmap(lambda a: torch.tanh(tF.linear(a, tw, tb) + torch.zeros(3)).sum(0))(_tt(x))
    _close(out, ref)
    (out ** 2).sum().backward()
    (ref ** 2).sum().backward()
    _close(lw.grad, tw.grad)
    _close(lb.grad, tb.grad)
    # an output that does not depend on the example is expanded; its gradient sums
    lw.grad = None
    tl.vmap(lambda a: lw * 1.0)(_t(x)).pow(2).sum().backward()
    _close(lw.grad, 2 * B * w)
    # a tensor made inside from the example's own (zeros_like) and a scalar constant
    _close(tl.vmap(lambda a: tl.zeros_like(a) + a * 2.0 + tl.ones_like(a))(_t(x)), 2 * x + 1)


# --- per-sample gradients ------------------------------------------------------------------------
def _mlp():
    m = tl.nn.Sequential(tl.nn.Linear(6, 8), tl.nn.ReLU(), tl.nn.Linear(8, 4))
    return m.double()


def test_per_sample_gradients_mlp_match_loop_and_torch():
    model = _mlp()
    params = {k: v.detach() for k, v in model.named_parameters()}
    xs, ys = _rand(5, 6), np.array([0, 3, 1, 1, 2])

    def loss(p, x, y):
        return F.cross_entropy(tl.func.functional_call(model, p, (x.unsqueeze(0),)),
                               y.unsqueeze(0))
    got = tl.vmap(tl.func.grad(loss), in_dims=(None, 0, 0))(params, _t(xs), _t(ys))
    for i in range(5):
        one = tl.func.grad(loss)(params, _t(xs[i]), _t(ys[i]))
        for k in params:
            _close(got[k][i], one[k])
    tm = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    tp = {k: _tt(v.numpy()) for k, v in params.items()}

    def tloss(p, x, y):
        return tF.cross_entropy(tfunc.functional_call(tm, p, (x.unsqueeze(0),)), y.unsqueeze(0))
    want = tfunc.vmap(tfunc.grad(tloss), in_dims=(None, 0, 0))(tp, _tt(xs), _tt(ys))
    for k in params:
        _close(got[k], want[k])


def test_per_sample_gradients_cnn_match_loop():
    model = tl.nn.Sequential(tl.nn.Conv2d(2, 3, 3, padding=1), tl.nn.ReLU(),
                             tl.nn.MaxPool2d(2), tl.nn.Flatten(), tl.nn.Linear(12, 3)).double()
    params = {k: v.detach() for k, v in model.named_parameters()}
    xs, ys = _rand(4, 2, 4, 4), np.array([2, 0, 1, 1])

    def loss(p, x, y):
        out = tl.func.functional_call(model, p, (x.unsqueeze(0),))
        return F.cross_entropy(out, y.unsqueeze(0))
    got = tl.vmap(tl.func.grad(loss), in_dims=(None, 0, 0))(params, _t(xs), _t(ys))
    for i in range(4):
        one = tl.func.grad(loss)(params, _t(xs[i]), _t(ys[i]))
        for k in params:
            _close(got[k][i], one[k], rtol=1e-9, atol=1e-12)


def test_grad_through_vmap_vs_torch():
    x, w = _rand(B, 4), _rand(4, 4, seed=1)

    def f(a, m):
        return (a @ m).sin().sum()
    got = tl.func.grad(lambda a, m: tl.vmap(f, in_dims=(0, None))(a, m).sum(), argnums=(0, 1))(
        _t(x), _t(w))
    want = tfunc.grad(lambda a, m: tfunc.vmap(f, in_dims=(0, None))(a, m).sum(),
                      argnums=(0, 1))(_tt(x), _tt(w))
    _close(got[0], want[0])
    _close(got[1], want[1])


def test_gradcheck_through_vmap_float64():
    x, w = _t(_rand(B, 3), True), _t(_rand(3, 2, seed=1), True)
    fn = tl.vmap(lambda a, m: (a @ m).tanh() * a.sum(), in_dims=(0, None))
    assert tl.gradcheck(fn, [x, w])
    assert tl.gradgradcheck(fn, [x, w])


def test_second_order_inside_vmap_vs_torch():
    x = _rand(B, 3)

    def f(a):
        return (a.sin() * a).sum()
    _close(tl.vmap(tl.func.grad(tl.func.grad(lambda a: f(a) * 1.0)))(_t(x[:, 0])),
           tfunc.vmap(tfunc.grad(tfunc.grad(f)))(_tt(x[:, 0])))
    _close(tl.vmap(tl.func.hessian(f))(_t(x)), tfunc.vmap(tfunc.hessian(f))(_tt(x)))


# --- jacrev / hessian / vjp ----------------------------------------------------------------------
def test_jacrev_vs_torch():
    x, y = _rand(3), _rand(2, 3, seed=1)
    _close(tl.func.jacrev(tl.sin)(_t(x)), tfunc.jacrev(torch.sin)(_tt(x)))

    def f(a, b):
        return (b @ a).tanh(), (a * 2).sum()
    for argnums in (0, 1, (0, 1)):
        got = tl.func.jacrev(f, argnums=argnums)(_t(x), _t(y))
        want = tfunc.jacrev(f, argnums=argnums)(_tt(x), _tt(y))
        for g, w in zip(_tuple(got), _tuple(want)):
            for gg, ww in zip(_tuple(g), _tuple(w)):
                _close(gg, ww)
    got = tl.func.jacrev(lambda d: d["a"] * d["b"].sum())({"a": _t(x), "b": _t(y)})
    want = tfunc.jacrev(lambda d: d["a"] * d["b"].sum())({"a": _tt(x), "b": _tt(y)})
    _close(got["a"], want["a"])
    _close(got["b"], want["b"])
    got, aux = tl.func.jacrev(lambda a: (a.exp(), a.sum()), has_aux=True)(_t(x))
    _close(got, np.diag(np.exp(x)))
    _close(aux, x.sum())
    _close(tl.func.jacrev(tl.sin, chunk_size=2)(_t(x)), np.diag(np.cos(x)))


def test_hessian_vs_torch():
    x = _rand(4)

    def f(a):
        return (a ** 3).sum() + (a[0] * a[1:]).exp().sum()
    _close(tl.func.hessian(f)(_t(x)), tfunc.hessian(f)(_tt(x)))
    m = _rand(2, 3, seed=1)
    _close(tl.func.hessian(lambda a: (a.tanh() ** 2).sum())(_t(m)),
           tfunc.hessian(lambda a: (a.tanh() ** 2).sum())(_tt(m)))


def test_transforms_of_functions_that_call_vmap_vs_torch():
    """jacrev/hessian of a function that itself calls vmap: their backward passes run under
    a vmap that began after the inner one finished (the levels' order)."""
    x, w = _rand(3, 2), _rand(2, 2, seed=1)

    def f(a, lib, vm):
        m = lib.tensor(w) if lib is tl else torch.tensor(w)
        return vm(lambda r: (r @ m).tanh().sum())(a).sum() * a.sum()

    def tf_(a):
        return f(a, torch, tfunc.vmap)
    _close(tl.func.jacrev(lambda a: tl.vmap(lambda r: (r ** 3).sin())(a))(_t(x)),
           tfunc.jacrev(lambda a: tfunc.vmap(lambda r: (r ** 3).sin())(a))(_tt(x)))
    _close(tl.func.hessian(lambda a: f(a, tl, tl.vmap))(_t(x)), tfunc.hessian(tf_)(_tt(x)))
    xs = _rand(4, 3, 2, seed=2)
    _close(tl.vmap(tl.func.hessian(lambda a: f(a, tl, tl.vmap)))(_t(xs)),
           tfunc.vmap(tfunc.hessian(tf_))(_tt(xs)))


def test_vjp_vs_torch():
    x, y = _rand(3), _rand(3, seed=1)

    def f(a, b):
        return a * b.sin(), (a ** 2).sum()
    out, fn = tl.func.vjp(f, _t(x), _t(y))
    tout, tfn = tfunc.vjp(f, _tt(x), _tt(y))
    _close(out[0], tout[0])
    ct = (_rand(3, seed=2), np.array(1.5))
    got, want = fn((_t(ct[0]), _t(ct[1]))), tfn((_tt(ct[0]), _tt(ct[1])))
    assert isinstance(got, tuple) and len(got) == 2
    _close(got[0], want[0])
    _close(got[1], want[1])
    out, fn, aux = tl.func.vjp(lambda a: (a.exp(), {"n": a.sum()}), _t(x), has_aux=True)
    _close(fn(tl.ones(3, dtype=tl.float64))[0], np.exp(x))
    _close(aux["n"], x.sum())


# --- ensembles --------------------------------------------------------------------------------
def test_ensemble_with_stack_module_state_vs_torch():
    tl.manual_seed(0)
    models = [_mlp() for _ in range(3)]
    params, buffers = tl.func.stack_module_state(models)
    assert params["0.weight"].shape == (3, 8, 6) and params["0.weight"].requires_grad
    x = _rand(5, 6)

    def run(p, b, a):
        return tl.func.functional_call(models[0], (p, b), (a,))
    got = tl.vmap(run, in_dims=(0, 0, None))(params, buffers, _t(x))
    assert got.shape == (3, 5, 4)
    for i, m in enumerate(models):
        _close(got[i], m(_t(x)))
    tms = [torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
           for _ in range(3)]
    for tm, m in zip(tms, models):
        tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in m.state_dict().items()})
    tp, tb = tfunc.stack_module_state(tms)
    want = tfunc.vmap(lambda p, b, a: tfunc.functional_call(tms[0].double(), (p, b), (a,)),
                      in_dims=(0, 0, None))({k: v.double() for k, v in tp.items()}, tb, _tt(x))
    _close(got, want)
    # training the ensemble: the stacked parameters get their gradients
    got.pow(2).mean().backward()
    assert params["0.weight"].grad.shape == (3, 8, 6)
    with pytest.raises(RuntimeError, match="Expected at least one model"):
        tl.func.stack_module_state([])
    with pytest.raises(RuntimeError, match="same training/eval mode"):
        tl.func.stack_module_state([models[0], _mlp().eval()])


# --- randomness -------------------------------------------------------------------------------
def test_randomness_modes():
    x = tl.zeros(4, 3)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        tl.vmap(lambda a: a + tl.randn(3))(x)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        tl.vmap(lambda a: F.dropout(a + 1.0, 0.5))(x)
    same = tl.vmap(lambda a: a + tl.randn(3), randomness="same")(x).numpy()
    assert np.all(same == same[0]) and np.any(same[0] != 0)
    diff = tl.vmap(lambda a: a + tl.randn(3), randomness="different")(x).numpy()
    assert len({tuple(r) for r in diff}) == 4
    drop = tl.vmap(lambda a: F.dropout(a + 1.0, 0.5), randomness="different")(tl.zeros(4, 50))
    assert len({tuple(r) for r in drop.numpy()}) == 4
    drop = tl.vmap(lambda a: F.dropout(a + 1.0, 0.5), randomness="same")(tl.zeros(4, 50))
    assert len({tuple(r) for r in drop.numpy()}) == 1 and set(np.unique(drop.numpy())) <= {0, 2}
    # no draw, no error
    _close(tl.vmap(lambda a: F.dropout(a, 0.5, training=False))(x), x.numpy())
    with pytest.raises(RuntimeError, match="Only allowed values for randomness"):
        tl.vmap(lambda a: a, randomness="sometimes")


# --- errors -------------------------------------------------------------------------------------
def test_errors_as_pytorch():
    x = tl.zeros(3, 4)

    def f(a, b=None):
        return a

    def msg(fn):
        with pytest.raises(ValueError) as e:
            fn()
        return str(e.value)
    assert "Expected all tensors to have the same size in the mapped dimension, got sizes " \
        "[3, 4]" in msg(lambda: tl.vmap(f, in_dims=(0, 1))(x, x))
    assert "Got in_dim=2 for some input, but that input is a Tensor of dimensionality 2 so " \
        "expected in_dim to satisfy -2 <= in_dim < 2." in msg(lambda: tl.vmap(f, in_dims=2)(x))
    assert "We cannot vmap over non-Tensor arguments" in msg(lambda: tl.vmap(f)(x, 3.0))
    assert "in_dims is not compatible with the structure of `inputs`" in msg(
        lambda: tl.vmap(f, in_dims=(0, 0, 0))(x, x))
    assert "Expected at least one Tensor to vmap over" in msg(
        lambda: tl.vmap(f, in_dims=(None,))(x))
    for bad in ([0], None):
        assert "expected `in_dims` to be int or a (potentially nested) tuple" in msg(
            lambda: tl.vmap(f, in_dims=bad)(x))
    assert "got no inputs" in msg(lambda: tl.vmap(f)())
    assert "can not return a BatchedTensor when out_dim is None" in msg(
        lambda: tl.vmap(f, out_dims=None)(x))
    assert "must only return Tensors" in msg(lambda: tl.vmap(lambda a: 3)(x))
    assert "`out_dims` must be an int, None or a python collection of ints" in msg(
        lambda: tl.vmap(f, out_dims="0")(x))
    assert "out_dims is not compatible with the structure of `outputs`" in msg(
        lambda: tl.vmap(lambda a: (a, a), out_dims=(0, 0, 0))(x))
    assert "chunk_size should be None or greater than 0" in msg(
        lambda: tl.vmap(f, chunk_size=0))
    for read in (lambda a: a.sum().item(), lambda a: a.numpy(), lambda a: float(a.sum()),
                 lambda a: 1.0 if a.sum() > 0 else 0.0, lambda a: a.tolist()):
        with pytest.raises(RuntimeError, match="vmap: .*data-dependent.*not supported"):
            tl.vmap(read)(x)
    # the same error through the Tensor API
    with pytest.raises(RuntimeError, match="data-dependent"):
        tl.vmap(lambda a: a + a.max().item())(x)


def test_in_place_ops_inside_vmap():
    x = _rand(B, 4)
    got = tl.vmap(lambda a: a.clone().mul_(2.0).add_(a))(_t(x))
    _close(got, 3 * x)

    def write(a):
        y = a.clone()
        y[1:3] = a[:2] * 10.0
        return y
    _close(tl.vmap(write)(_t(x)), tfunc.vmap(write)(_tt(x)))
    xs = _t(x, True)
    tl.vmap(write)(xs).sum().backward()
    xt = _tt(x, True)
    tfunc.vmap(write)(xt).sum().backward()
    _close(xs.grad, xt.grad)
    with pytest.raises(RuntimeError, match="in-place write of a batched value"):
        tl.vmap(lambda a: tl.zeros(4).add_(a))(_t(x))
    # an input that requires grad is not written through (PyTorch refuses it too)
    with pytest.raises(ValueError, match="read-only"):
        tl.vmap(lambda a: a.mul_(2.0))(_t(x, True))
    y = _t(x)
    tl.vmap(lambda a: a.mul_(2.0))(y)       # without autograd it writes into the input
    _close(y, 2 * x)


def test_chunk_size_and_zero_batch():
    x = _rand(7, 3)
    def f(a):
        return a * a.sum(), a.mean()
    full = tl.vmap(f)(_t(x))
    for c in (1, 3, 7, 10):
        got = tl.vmap(f, chunk_size=c)(_t(x))
        _close(got[0], full[0])
        _close(got[1], full[1])
    assert tl.vmap(lambda a: a.sum(-1))(tl.zeros(0, 3)).shape == (0,)


def test_functional_grad_and_vmap_compose_with_modules():
    """vmap over a Module call: the module's own parameters are closures (lifted), the
    gradient of a loss over vmap accumulates into them."""
    model = _mlp()
    x = _t(_rand(5, 6))
    out = tl.vmap(model)(x)
    _close(out, model(x))
    out.pow(2).sum().backward()
    g = model[0].weight.grad.numpy().copy()
    model.zero_grad()
    model(x).pow(2).sum().backward()
    _close(g, model[0].weight.grad)


def test_vmap_is_exported():
    assert tl.vmap is tl.func.vmap
    for name in ("vmap", "vjp", "jacrev", "hessian", "stack_module_state"):
        assert name in tl.func.__all__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.vmap(lambda a: a * 2)(tl.ones(2, 2))


def test_benchmark_script_runs():
    """benchmarks/vmap_per_sample.py checks its three results agree (no timing asserted)."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "vmap_per_sample.py"),
                           "--batch", "4", "--repeat", "1"], capture_output=True, text=True,
                          timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tensorlib vmap(grad)" in proc.stdout and "torch.func vmap(grad)" in proc.stdout


# --- forward-mode transforms (jvp, jacfwd, linearize), from reverse mode --------------------
def _fwd_case():
    rng = np.random.default_rng(3)
    x, w, t = rng.standard_normal(4), rng.standard_normal((3, 4)), rng.standard_normal(4)

    def f(m):
        return lambda x, w: m.tanh(w @ x) * x[:3]
    return x, w, t, f


def test_jvp_and_linearize_match_torch_func():
    x, w, t, f = _fwd_case()
    zw = np.zeros_like(w)
    out, jv = tl.func.jvp(f(tl), (tl.tensor(x), tl.tensor(w)), (tl.tensor(t), tl.tensor(zw)))
    out_t, jv_t = torch.func.jvp(f(torch), (torch.tensor(x), torch.tensor(w)),
                                 (torch.tensor(t), torch.tensor(zw)))
    np.testing.assert_allclose(out.numpy(), out_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(jv.numpy(), jv_t.numpy(), rtol=1e-12, atol=1e-15)
    _, lin = tl.func.linearize(f(tl), tl.tensor(x), tl.tensor(w))
    for k in range(3):              # one linearization, many products
        tk = np.roll(t, k)
        _, want = torch.func.jvp(f(torch), (torch.tensor(x), torch.tensor(w)),
                                 (torch.tensor(tk), torch.tensor(zw)))
        np.testing.assert_allclose(lin(tl.tensor(tk), tl.tensor(zw)).numpy(), want.numpy(),
                                   rtol=1e-12, atol=1e-15)
    # has_aux, and a gradient through the product (transforms compose)
    o, j, aux = tl.func.jvp(lambda x: (tl.sin(x), x.sum()), (tl.tensor(x),), (tl.tensor(t),),
                            has_aux=True)
    np.testing.assert_allclose(j.numpy(), np.cos(x) * t, rtol=1e-12)
    assert float(aux) == pytest.approx(x.sum())
    g = tl.func.grad(lambda x: tl.func.jvp(tl.sin, (x,), (tl.tensor(t),))[1].sum())(
        tl.tensor(x))
    np.testing.assert_allclose(g.numpy(), -np.sin(x) * t, rtol=1e-12)
    with pytest.raises(RuntimeError, match="same length"):
        tl.func.jvp(tl.sin, (tl.tensor(x),), ())
    with pytest.raises(RuntimeError, match="tangent of shape"):
        tl.func.jvp(tl.sin, (tl.tensor(x),), (tl.ones(3),))


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_jacfwd_matches_torch_func(argnums):
    x, w, _, f = _fwd_case()
    ours = tl.func.jacfwd(f(tl), argnums)(tl.tensor(x), tl.tensor(w))
    theirs = torch.func.jacfwd(f(torch), argnums)(torch.tensor(x), torch.tensor(w))
    if isinstance(argnums, int):
        ours, theirs = (ours,), (theirs,)
    for a, b in zip(ours, theirs):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)
    # the Hessian as jacfwd(jacrev), as torch.func.hessian builds it
    h = tl.func.jacfwd(tl.func.jacrev(lambda v: (v ** 3).sum()))(tl.tensor(x))
    np.testing.assert_allclose(h.numpy(), np.diag(6 * x), atol=1e-12)


@pytest.mark.parametrize("reduce", ["amax", "amin", "prod", "sum", "mean"])
def test_scatter_reduce_with_a_batched_index_matches_torch(reduce):
    # amax/amin/prod read the longest run on the host eagerly; inside vmap they cannot
    rng = np.random.default_rng(1)
    src, idx = rng.standard_normal((3, 6)), rng.integers(0, 4, (3, 6))

    def run(m):
        return lambda s, i: m.zeros(4, dtype=s.dtype).scatter_reduce(0, i, s, reduce,
                                                                   include_self=False)
    ours = tl.func.vmap(run(tl))(tl.tensor(src), tl.tensor(idx))
    theirs = torch.func.vmap(run(torch))(torch.tensor(src), torch.tensor(idx))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


@pytest.mark.parametrize("value", ["scalar", "batched"])
def test_in_place_write_at_batched_indices_matches_torch(value):
    # y[i] = v with a per-example index (it raised NotImplementedError; new-features trial)
    rng = np.random.default_rng(2)
    x, i, v = rng.standard_normal((3, 4)), np.array([[0, 1], [2, 3], [1, 1]]), \
        rng.standard_normal((3, 2))

    def f(m):
        def g(x, i, v):
            y = x.clone()
            y[i] = 0.0 if value == "scalar" else v
            return (y * y).sum()
        return g
    xs = tl.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ours = tl.vmap(f(tl))(xs, tl.tensor(i), tl.tensor(v))
    theirs = torch.func.vmap(f(torch))(xt, torch.tensor(i), torch.tensor(v))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


class _MulFn(tl.autograd.Function):
    """a * b whose backward applies the Function again (differentiable to any order)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _MulFn.apply(g, b), _MulFn.apply(g, a)


def test_a_custom_function_mixing_batched_and_unbatched_inputs_stays_in_its_level():
    # its backward saw a batched cotangent and an unbatched saved input: the gradient for
    # the unbatched one left the vmap level still batched (grad(jacrev(f)) came out on vmap)
    c = np.array([2.0, 3.0, 4.0])
    x = np.array([1.0, 2.0, 3.0])

    def f(m, mul):
        return lambda v: mul(v, v * m.tensor(c))
    got = tl.func.grad(lambda v: tl.func.jacrev(f(tl, _MulFn.apply))(v).sum())(tl.tensor(x))
    want = torch.func.grad(lambda v: torch.func.jacrev(f(torch, torch.mul))(v).sum())(
        torch.tensor(x))
    assert got.device.type == "cpu"
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    hh = tl.func.jacrev(tl.func.jacrev(f(tl, _MulFn.apply)))(tl.tensor(x))
    want = torch.func.jacrev(torch.func.jacrev(f(torch, torch.mul)))(torch.tensor(x))
    np.testing.assert_allclose(hh.numpy(), want.numpy(), rtol=1e-12)
