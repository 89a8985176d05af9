"""Recommender trial 23: include_last_offset's last offset, max_norm lookups of an empty batch
in ONNX and captured graphs, pdist (values, gradients, speed path), optimizers' sparse and
dense gradient refusals, and Embedding / EmbeddingBag reprs, against PyTorch."""
from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
F = tl.nn.functional


# --- 1. include_last_offset: the last offset ends the last bag (documented CSR reading) -----
W10 = np.arange(10.0)[:, None] * np.ones((1, 2))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_entries_past_the_last_offset_are_in_no_bag(mode):
    # (PyTorch's float32 sum/mean kernels read it so, its float64 ones and max do not; kept,
    # not refused, so code that runs under PyTorch float32 keeps running)
    got = F.embedding_bag(tl.tensor([1, 2, 3, 4, 5]), tl.tensor(W10), tl.tensor([0, 2, 3]),
                          mode=mode, include_last_offset=True)
    want = F.embedding_bag(tl.tensor([1, 2, 3]), tl.tensor(W10), tl.tensor([0, 2, 3]),
                           mode=mode, include_last_offset=True)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    bag = tl.nn.EmbeddingBag(10, 2, mode=mode, include_last_offset=True)
    with pytest.raises(ValueError, match="offsets"):       # past the end stays refused
        bag(tl.tensor([1, 2, 3]), tl.tensor([0, 2, 4]))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_last_offset_equal_to_the_input_matches_torch(mode):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((10, 3))
    idx, off = np.array([1, 2, 3, 4, 5, 1]), np.array([0, 2, 2, 6])
    lw = tl.tensor(w, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    out = F.embedding_bag(tl.tensor(idx), lw, tl.tensor(off), mode=mode,
                          include_last_offset=True)
    ref = torch.nn.functional.embedding_bag(torch.tensor(idx), tw, torch.tensor(off),
                                            mode=mode, include_last_offset=True)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), atol=1e-14)
    g = rng.standard_normal(tuple(ref.shape))
    out.backward(tl.tensor(g))
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), atol=1e-14)


# --- 2. max_norm on an empty batch: ONNX and captured graphs -------------------------------
def _big_rows(m):
    """Rows 0 (looked up only sometimes) and others far over max_norm."""
    with tl.no_grad():
        m.weight[...] = m.weight * 3.0
    return m


def _ort(path, feeds):
    ort = pytest.importorskip("onnxruntime")
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


INPUTS = [np.array([3, 4]), np.array([], dtype=np.int64), np.array([0, 7, 0]),
          np.array([5])]


def test_embedding_max_norm_onnx_empty_batch(tmp_path):
    pytest.importorskip("onnx")
    tl.manual_seed(0)
    m = _big_rows(tl.nn.Embedding(30, 4, max_norm=1.0))
    path = tmp_path / "mn.onnx"
    tl.onnx.export(m, (tl.tensor(np.array([1, 2, 2, 5])),), str(path), input_names=["x"],
                   dynamic_axes={"x": [0]})
    loaded = tl.onnx.load(str(path))
    for x in INPUTS:
        with tl.no_grad():
            ref = m(tl.tensor(x)).numpy()
        assert ref.shape == (len(x), 4)
        np.testing.assert_allclose(_ort(path, {"x": x}), ref, atol=1e-6)
        np.testing.assert_allclose(loaded(tl.tensor(x)).numpy(), ref, atol=1e-6)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("last", [False, True])
def test_embedding_bag_max_norm_onnx_empty_batch(tmp_path, mode, last):
    pytest.importorskip("onnx")
    tl.manual_seed(1)
    m = _big_rows(tl.nn.EmbeddingBag(30, 4, max_norm=1.0, mode=mode,
                                     include_last_offset=last))
    path = tmp_path / "bag.onnx"
    off0 = [0, 2, 4] if last else [0, 2]
    tl.onnx.export(m, (tl.tensor(np.array([1, 2, 2, 5])), tl.tensor(np.array(off0))),
                   str(path), input_names=["x", "o"], dynamic_axes={"x": [0], "o": [0]})
    loaded = tl.onnx.load(str(path))
    for x, o in [(np.array([3, 0, 4]), np.array([0, 1] + ([3] if last else []))),
                 (np.array([], dtype=np.int64), np.array([0, 0] + ([0] if last else [])))]:
        with tl.no_grad():
            ref = m(tl.tensor(x), tl.tensor(o)).numpy()
        np.testing.assert_allclose(_ort(path, {"x": x, "o": o}), ref, atol=1e-6)
        np.testing.assert_allclose(loaded(tl.tensor(x), tl.tensor(o)).numpy(), ref, atol=1e-6)


@pytest.mark.parametrize("norm_type", [1.0, 2.0])
def test_embedding_max_norm_captured_takes_every_size_in_one_graph(norm_type):
    tl.manual_seed(2)
    m = _big_rows(tl.nn.Embedding(12, 3, max_norm=1.5, norm_type=norm_type,
                                  dtype=tl.float64))
    t = torch.nn.Embedding(12, 3, max_norm=1.5, norm_type=norm_type, dtype=torch.float64)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(m.weight.numpy()))
    f = tl.function(lambda x: m(x), input_signature=[tl.TensorSpec((None,), tl.int64)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a retrace at size 0 would warn
        for x in [np.array([1, 2, 2]), np.array([], dtype=np.int64), np.array([3, 0]),
                  np.array([], dtype=np.int64), np.array([7])]:
            with tl.no_grad():
                out = f(tl.tensor(x))
            ref = t(torch.tensor(x))
            np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), atol=1e-14)
            # row 0, rescaled only when looked up, and every other row as PyTorch's
            np.testing.assert_allclose(m.weight.numpy(), t.weight.detach().numpy(),
                                       atol=1e-14)
    assert "traced 1 time" in repr(f)


# --- 3. pdist --------------------------------------------------------------------------------
def _pdist_pair(x, p, g):
    lx = tl.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    out = F.pdist(lx, p)
    ref = torch.nn.functional.pdist(tx, p)
    assert tuple(out.shape) == tuple(ref.shape)
    out.backward(tl.tensor(g))
    if x.shape[0] == 0:     # PyTorch 2.13's pdist backward dies of SIGFPE on 0 rows
        return out.numpy(), ref.detach().numpy(), lx.grad.numpy(), np.zeros_like(x)
    ref.backward(torch.tensor(g))
    return out.numpy(), ref.detach().numpy(), lx.grad.numpy(), tx.grad.numpy()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 60), m=st.integers(1, 9), p=st.sampled_from([0.0, 1.0, 2.0, 3.0,
                                                                       math.inf]),
       f64=st.booleans(), dups=st.integers(0, 3), seed=st.integers(0, 2 ** 16),
       shift=st.sampled_from([0.0, 100.0]))
def test_pdist_matches_torch(n, m, p, f64, dups, seed, shift):
    rng = np.random.default_rng(seed)
    dt = np.float64 if f64 else np.float32
    x = rng.standard_normal((n, m)) + shift
    for k in range(min(dups, n // 2)):      # duplicate rows: distance 0
        x[n - 1 - k] = x[k]
    if n > 3:
        x[2] = x[1] + 1e-5                  # a close pair
    x = x.astype(dt)
    g = rng.standard_normal(n * (n - 1) // 2).astype(dt)
    out, ref, gx, gt = _pdist_pair(x, p, g)
    scale = 1.0 + shift
    tol = 1e-12 if f64 else 2e-5
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(gx, gt, rtol=tol, atol=tol * scale * max(n, 1))
    if p == 2:
        for k in range(min(dups, n // 2)):
            assert out[k * (2 * n - k - 1) // 2 + (n - 1 - k) - k - 1] == 0


def test_pdist_large_blocks_match_torch():
    # several row blocks, with duplicates and near pairs scattered over them
    from tensorlib.ops import pairwise
    rng = np.random.default_rng(3)
    n = 700
    x = rng.standard_normal((n, 5)) * 4 + 10
    x[600] = x[10]
    x[650] = x[400] + 1e-6
    old = pairwise._PD_BLOCK
    pairwise._PD_BLOCK = 5000              # blocks of 7 rows
    try:
        for dt, tol in ((np.float64, 1e-12), (np.float32, 3e-5)):
            g = rng.standard_normal(n * (n - 1) // 2).astype(dt)
            out, ref, gx, gt = _pdist_pair(x.astype(dt), 2.0, g)
            np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
            np.testing.assert_allclose(gx, gt, rtol=tol, atol=tol * 100)
    finally:
        pairwise._PD_BLOCK = old


def test_pdist_gradgradcheck():
    # PyTorch has no double backward for pdist; tensorlib's backward is differentiable
    with pytest.raises(NotImplementedError):
        t = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
        torch.autograd.gradgradcheck(torch.nn.functional.pdist, (t,))
    rng = np.random.default_rng(4)
    x = tl.tensor(rng.standard_normal((7, 3)), requires_grad=True)
    assert tl.autograd.gradcheck(lambda a: F.pdist(a), (x,))
    assert tl.autograd.gradgradcheck(lambda a: F.pdist(a), (x,))


def test_pdist_duplicate_rows_gradient_zero_as_torch():
    x = np.array([[1.0, 2.0], [1.0, 2.0], [4.0, 6.0]])
    g = np.array([1.0, 0.0, 0.0])           # only the zero distance
    out, ref, gx, gt = _pdist_pair(x, 2.0, g)
    assert out[0] == 0 == ref[0]
    np.testing.assert_array_equal(gx, gt)
    np.testing.assert_array_equal(gx, 0)


def test_pdist_onnx_and_capture(tmp_path):
    pytest.importorskip("onnx")
    x = np.random.default_rng(5).standard_normal((30, 5)).astype(np.float32)
    ref = torch.nn.functional.pdist(torch.tensor(x)).numpy()

    class M(tl.nn.Module):
        def forward(self, a):
            return F.pdist(a)
    path = tmp_path / "pd.onnx"
    tl.onnx.export(M(), (tl.tensor(x),), str(path), input_names=["x"])
    np.testing.assert_allclose(_ort(path, {"x": x}), ref, atol=1e-5)
    np.testing.assert_allclose(tl.onnx.load(str(path))(tl.tensor(x)).numpy(), ref, atol=1e-5)
    f = tl.function(lambda a: F.pdist(a), input_signature=[tl.TensorSpec((None, 5),
                                                                         tl.float32)])
    with tl.no_grad():
        np.testing.assert_allclose(f(tl.tensor(x)).numpy(), ref, atol=1e-5)
        assert tuple(f(tl.tensor(x[:7])).shape) == (21,)


@pytest.mark.parametrize("bad,err,match", [
    (np.ones(3), ValueError, "pdist: only supports 2-d"),
    (np.ones((3, 2), np.int64), TypeError, "pdist: only supports floating"),
])
def test_pdist_errors(bad, err, match):
    with pytest.raises(err, match=match):
        F.pdist(tl.tensor(bad))
    with pytest.raises(ValueError, match="non-negative"):
        F.pdist(tl.ones(3, 2), -1.0)


def test_cdist_euclid_matches_torch_after_gemm():
    rng = np.random.default_rng(6)
    for dt, tol in ((np.float32, 2e-5), (np.float64, 1e-12)):
        a = rng.standard_normal((2, 40, 7)).astype(dt)
        b = rng.standard_normal((2, 30, 7)).astype(dt)
        la, lb = tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)
        ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        out, ref = tl.cdist(la, lb), torch.cdist(ta, tb)
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=tol, atol=tol)
        out.sum().backward()
        ref.sum().backward()
        np.testing.assert_allclose(la.grad.numpy(), ta.grad.numpy(), rtol=tol, atol=tol * 10)
        np.testing.assert_allclose(lb.grad.numpy(), tb.grad.numpy(), rtol=tol, atol=tol * 10)


# --- 4. optimizers and sparse gradients -----------------------------------------------------
DENSE_ONLY = [("Adam", dict(lr=0.1)), ("AdamW", dict(lr=0.1)), ("RAdam", dict(lr=0.1)),
              ("Adadelta", dict(lr=0.1)), ("ASGD", dict(lr=0.1)), ("Adamax", dict(lr=0.1)),
              ("NAdam", dict(lr=0.1)), ("Rprop", dict(lr=0.1)), ("RMSprop", dict(lr=0.1))]


def _sparse_step(lib, name, kw):
    e = lib.nn.Embedding(10, 4, sparse=True)
    o = getattr(lib.optim, name)(e.parameters(), **kw)
    e(lib.tensor([1, 2])).sum().backward()
    before = np.array(e.weight.detach().numpy(), copy=True)
    try:
        o.step()
    finally:
        after = e.weight.detach().numpy()
    return before, after


@pytest.mark.parametrize("name,kw", DENSE_ONLY, ids=[n for n, _ in DENSE_ONLY])
def test_dense_only_optimizers_refuse_sparse_gradients_as_torch(name, kw):
    with pytest.raises(RuntimeError) as te:
        _sparse_step(torch, name, kw)
    msg = str(te.value)
    if name == "AdamW":     # PyTorch's AdamW reuses Adam's check and its words
        msg = msg.replace("Adam does", "AdamW does")
    with pytest.raises(RuntimeError, match="^" + msg.replace(".", r"\.") + "$"):
        _sparse_step(tl, name, kw)


def test_refusal_moves_no_parameter():
    e = tl.nn.Embedding(10, 4, sparse=True)
    lin = tl.nn.Linear(3, 1)
    o = tl.optim.Adam(list(lin.parameters()) + list(e.parameters()), lr=0.1)
    (lin(tl.ones(2, 3)).sum() + e(tl.tensor([1, 2])).sum()).backward()
    w = lin.weight.numpy().copy()
    with pytest.raises(RuntimeError, match="Adam does not support sparse gradients"):
        o.step()
    np.testing.assert_array_equal(lin.weight.numpy(), w)
    assert not o.state


def test_sparse_adam_refuses_dense_gradients_as_torch():
    tp = torch.nn.Parameter(torch.zeros(3))
    tp.grad = torch.ones(3)
    with pytest.raises(RuntimeError) as te:
        torch.optim.SparseAdam([tp], lr=0.1).step()
    p = tl.nn.Parameter(tl.zeros(3))
    p.grad = tl.ones(3)
    with pytest.raises(RuntimeError, match="^" + str(te.value).replace(".", r"\.") + "$"):
        tl.optim.SparseAdam([p], lr=0.1).step()
    np.testing.assert_array_equal(p.numpy(), 0)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "SparseAdam"])
def test_sparse_optimizers_still_match_torch(name):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((10, 4))
    le = tl.nn.Embedding(10, 4, sparse=True, dtype=tl.float64)
    te = torch.nn.Embedding(10, 4, sparse=True, dtype=torch.float64)
    with tl.no_grad():
        le.weight[...] = w
    with torch.no_grad():
        te.weight.copy_(torch.tensor(w))
    lo = getattr(tl.optim, name)(le.parameters(), lr=0.1)
    to = getattr(torch.optim, name)(te.parameters(), lr=0.1)
    for ids in ([1, 2, 2], [3, 1]):
        for lib, e, o in ((tl, le, lo), (torch, te, to)):
            o.zero_grad()
            (e(lib.tensor(ids)) ** 2).sum().backward()
            o.step()
    np.testing.assert_allclose(le.weight.numpy(), te.weight.detach().numpy(), atol=1e-14)


def test_captured_steps_take_the_dense_gradients_of_sparse_embeddings():
    # under capture nn.Embedding(sparse=True) gives dense gradients: SparseAdam takes them
    e = tl.nn.Embedding(10, 4, sparse=True)
    o = tl.optim.SparseAdam(e.parameters(), lr=0.1)

    def step(ids):
        o.zero_grad()
        e(ids).sum().backward()
        o.step()
    f = tl.function(step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f(tl.tensor([1, 2]))
        f(tl.tensor([1, 3]))
    assert o.state[e.weight]["exp_avg"].numpy()[[1, 2, 3]].any(1).all()


# --- 5. reprs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(max_norm=1.0, sparse=True), dict(),
                                dict(padding_idx=2, max_norm=1.0, norm_type=1.0,
                                     scale_grad_by_freq=True, sparse=True),
                                dict(norm_type=3.0)])
def test_embedding_repr_as_torch(kw):
    assert repr(tl.nn.Embedding(10, 4, **kw)) == repr(torch.nn.Embedding(10, 4, **kw))


@pytest.mark.parametrize("kw", [dict(mode="sum", padding_idx=2, sparse=True,
                                     include_last_offset=True, max_norm=1.0, norm_type=1.0),
                                dict(), dict(mode="max", padding_idx=0),
                                dict(scale_grad_by_freq=True, mode="sum")])
def test_embedding_bag_repr_as_torch(kw):
    assert repr(tl.nn.EmbeddingBag(10, 4, **kw)) == repr(torch.nn.EmbeddingBag(10, 4, **kw))


def test_deepcopy_keeps_repr():
    m = tl.nn.Embedding(10, 4, sparse=True)
    assert repr(copy.deepcopy(m)) == "Embedding(10, 4, sparse=True)"


@pytest.mark.parametrize("case", ["nan", "inf", "big32", "f16", "pinf"])
def test_pdist_non_finite_and_huge_inputs_stay_per_pair(case):
    """A NaN/inf in one row leaves the other pairs finite (the expansion's column means
    would carry it everywhere); squares past float32's or float16's range are not inf."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 5))
    dt, p = np.float64, 2.0
    if case == "nan":
        x[3, 1] = np.nan
    elif case == "inf":
        x[7, 2] = np.inf
    elif case == "big32":
        x, dt = x * 1e19, np.float32
    elif case == "f16":
        x, dt = x * 200, np.float16
    else:
        x[4, 0], p = np.inf, math.inf
    got = tl.pdist(tl.tensor(x.astype(dt)), p).numpy().astype(np.float64)
    ref_dt = np.float32 if dt == np.float16 else dt      # (torch refuses float16 pdist)
    want = torch.pdist(torch.tensor(x.astype(dt).astype(ref_dt)), p).numpy().astype(np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=2e-3 if dt == np.float16 else 1e-6)
