"""Sparse COO tensors and sparse embedding gradients against PyTorch (float64)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.sparse as tsp
from tensorlib.optim.adagrad import Adagrad

torch = pytest.importorskip("torch")


def _coo(rng, shape=(5, 4), nnz=7, dense=()):
    ind = np.stack([rng.integers(0, s, nnz) for s in shape])
    val = rng.standard_normal((nnz,) + dense)
    return ind, val


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 12), st.sampled_from([(), (3,)]))
def test_construct_coalesce_to_dense_sum(seed, nnz, dense):
    rng = np.random.default_rng(seed)
    ind, val = _coo(rng, (5, 4), nnz, dense)
    size = (5, 4) + dense
    a = tsp.sparse_coo_tensor(ind, val, size)
    b = torch.sparse_coo_tensor(torch.tensor(ind), torch.tensor(val), size)
    assert a.is_sparse and a.layout is tsp.sparse_coo and a._nnz() == nnz
    np.testing.assert_allclose(a.to_dense().numpy(), b.to_dense().numpy())
    ac, bc = a.coalesce(), b.coalesce()
    assert ac.is_coalesced() and ac._nnz() == bc._nnz()
    np.testing.assert_array_equal(ac.indices().numpy(), bc.indices().numpy())
    np.testing.assert_allclose(ac.values().numpy(), bc.values().numpy())
    np.testing.assert_allclose((a + a).to_dense().numpy(), (b + b).to_dense().numpy())
    np.testing.assert_allclose((a * 2.5).to_dense().numpy(), (b * 2.5).to_dense().numpy())
    np.testing.assert_allclose(float(tsp.sum(a)), float(torch.sparse.sum(b)), atol=1e-12)
    for d in (0, 1):
        want = torch.sparse.sum(b, d)
        got = tsp.sum(a, d)
        np.testing.assert_allclose(
            got.to_dense().numpy(), want.to_dense().numpy() if want.is_sparse else want.numpy(),
            atol=1e-12)


def test_to_sparse_and_size_inference():
    x = np.array([[0.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
    a, b = tsp.to_sparse(tl.tensor(x)), torch.tensor(x).to_sparse()
    np.testing.assert_array_equal(a.indices().numpy(), b.indices().numpy())
    np.testing.assert_array_equal(a.values().numpy(), b.values().numpy())
    s = tsp.sparse_coo_tensor([[0, 3]], [1.0, 2.0])
    assert s.shape == (4,) == tuple(torch.sparse_coo_tensor([[0, 3]], [1.0, 2.0]).shape)
    assert "layout=tl.sparse_coo" in repr(s) and "nnz=2" in repr(s)


@pytest.mark.parametrize("k", [1, 3])
def test_mm_values_and_gradients(k):
    rng = np.random.default_rng(1)
    ind, val = _coo(rng, (6, 5), 9)
    X = rng.standard_normal((5, k))
    M = rng.standard_normal((6, k))
    tv = torch.tensor(val, requires_grad=True)
    tx = torch.tensor(X, requires_grad=True)
    A = torch.sparse_coo_tensor(torch.tensor(ind), tv, (6, 5))
    (torch.sparse.addmm(torch.tensor(M), A, tx, beta=0.5, alpha=2.0) ** 2).sum().backward()
    lv = tl.tensor(val, requires_grad=True)
    lx = tl.tensor(X, requires_grad=True)
    B = tsp.sparse_coo_tensor(ind, lv, (6, 5))
    y = tsp.addmm(tl.tensor(M), B, lx, beta=0.5, alpha=2.0)
    (y ** 2).sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(lv.grad.numpy(), tv.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose((B @ lx).detach().numpy(), (A @ tx).detach().numpy())
    # a leaf sparse tensor's gradient is sparse, on its own pattern (PyTorch's sparse_mask)
    L = tsp.sparse_coo_tensor(ind, val, (6, 5), requires_grad=True)
    TL = torch.sparse_coo_tensor(torch.tensor(ind), torch.tensor(val), (6, 5),
                                 requires_grad=True)
    tsp.mm(L, tl.tensor(X)).sum().backward()
    torch.sparse.mm(TL, torch.tensor(X)).sum().backward()
    assert L.grad.is_sparse
    np.testing.assert_allclose(L.grad.to_dense().numpy(), TL.grad.to_dense().numpy())


def test_errors():
    s = tsp.sparse_coo_tensor([[0, 1], [2, 0]], [3.0, 4.0], (2, 3))
    with pytest.raises(NotImplementedError, match=r"exp: .*to_dense"):
        s.exp()
    with pytest.raises(Exception, match="to_dense"):
        tl.exp(s)
    with pytest.raises(IndexError, match="inconsistent with indices"):
        tsp.sparse_coo_tensor([[0, 5]], [1.0, 2.0], (3,))
    with pytest.raises(ValueError, match="entries"):
        tsp.sparse_coo_tensor([[0, 1]], [1.0], (3,))
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        tsp.mm(s, tl.ones(2, 2))
    with pytest.raises(RuntimeError, match="uncoalesced"):
        tsp.sparse_coo_tensor([[0, 0]], [1.0, 2.0], (3,)).indices()


def _pair(padding_idx=None, freq=False):
    W = np.random.default_rng(0).standard_normal((20, 4))
    te = torch.nn.Embedding(20, 4, padding_idx=padding_idx, scale_grad_by_freq=freq,
                            sparse=True, _weight=torch.tensor(W.copy()))
    le = tl.nn.Embedding(20, 4, padding_idx=padding_idx, scale_grad_by_freq=freq,
                         sparse=True, _weight=tl.tensor(W.copy()))
    return te, le


def test_embedding_sparse_scale_grad_by_freq_raises_as_torch():
    te, le = _pair(None, True)
    for lib, e in ((torch, te), (tl, le)):
        with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse"):
            e(lib.tensor([1, 1])).sum().backward()


@pytest.mark.parametrize("padding_idx", [None, 3])
def test_embedding_sparse_grad_matches_torch(padding_idx):
    te, le = _pair(padding_idx)
    idx = np.array([[1, 3, 3], [7, 1, 0]])
    for k in range(2):      # two backward calls accumulate (sparse + sparse)
        (te(torch.tensor(idx)) ** 3).sum().backward()
        (le(tl.tensor(idx)) ** 3).sum().backward()
        g, tg = le.weight.grad, te.weight.grad
        assert g.is_sparse and not g.is_coalesced()
        if k == 0:      # PyTorch's layout: one entry per looked-up id, padding ids dropped
            np.testing.assert_array_equal(g._indices().numpy(), tg._indices().numpy())
            np.testing.assert_allclose(g._values().numpy(), tg._values().numpy())
        np.testing.assert_allclose(g.to_dense().numpy(), tg.to_dense().numpy())
        np.testing.assert_array_equal(g.coalesce().indices().numpy(),
                                      tg.coalesce().indices().numpy())
        np.testing.assert_allclose(g.coalesce().values().numpy(),
                                   tg.coalesce().values().numpy())
    # F.embedding, and a table used twice in one graph
    w = tl.tensor(np.ones((5, 2)), requires_grad=True)
    (tl.nn.functional.embedding(tl.tensor([1]), w, sparse=True).sum()
     + tl.nn.functional.embedding(tl.tensor([1, 2]), w, sparse=True).sum()).backward()
    np.testing.assert_allclose(w.grad.to_dense().numpy()[:, 0], [0, 2, 1, 0, 0])


OPTS = [("SparseAdam", dict(lr=0.1, betas=(0.8, 0.99))), ("SGD", dict(lr=0.1)),
        ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)), ("SGD", dict(lr=0.1, maximize=True)),
        ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1))]


@pytest.mark.parametrize("name,kw", OPTS)
def test_optimizer_trajectories(name, kw):
    te, le = _pair()
    W0 = le.weight.numpy().copy()
    to = getattr(torch.optim, name)(te.parameters(), **kw)
    lo = (Adagrad if name == "Adagrad" else getattr(tl.optim, name))(le.parameters(), **kw)
    rng = np.random.default_rng(5)
    seen = set()
    for k in range(6):
        idx = rng.integers(0, 10, 6)        # rows 10.. are never looked up
        seen.update(idx.tolist())
        tgt = rng.standard_normal((6, 4))
        for lib, e, o in ((torch, te, to), (tl, le, lo)):
            o.zero_grad(set_to_none=(k % 2 == 0))
            ((e(lib.tensor(idx)) - lib.tensor(tgt)) ** 2).sum().backward()
            o.step()
        np.testing.assert_allclose(le.weight.numpy(), te.weight.detach().numpy(), atol=1e-12)
    untouched = sorted(set(range(20)) - seen)
    np.testing.assert_array_equal(le.weight.numpy()[untouched], W0[untouched])
    # state_dict round trip: a fresh optimizer continues the same trajectory
    lo2 = (Adagrad if name == "Adagrad" else getattr(tl.optim, name))(le.parameters(), **kw)
    lo2.load_state_dict(lo.state_dict())
    idx = rng.integers(0, 20, 4)
    for lib, e, o in ((torch, te, to), (tl, le, lo2)):
        o.zero_grad()
        (e(lib.tensor(idx)) ** 2).sum().backward()
        o.step()
    np.testing.assert_allclose(le.weight.numpy(), te.weight.detach().numpy(), atol=1e-12)


def test_sparse_grad_errors_as_torch():
    _, le = _pair()
    le(tl.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match=r"add\(sparse, dense\) is not supported"):
        tl.optim.SGD(le.parameters(), lr=0.1, weight_decay=0.1).step()
    with pytest.raises(RuntimeError, match="weight_decay option is not compatible"):
        Adagrad(le.parameters(), lr=0.1, weight_decay=0.1).step()


def test_clip_grad_norm_sparse():
    te, le = _pair()
    idx = [1, 1, 4]
    (le(tl.tensor(idx)) ** 2).sum().backward()
    (te(torch.tensor(idx)) ** 2).sum().backward()
    dense = te.weight.grad.to_dense()       # PyTorch 2.13 cannot clip a sparse grad itself
    want_norm = float(dense.norm())
    total = tl.nn.utils.clip_grad_norm_(le.parameters(), 1.0)
    np.testing.assert_allclose(float(total), want_norm)
    np.testing.assert_allclose(le.weight.grad.to_dense().numpy(),
                               (dense * (1.0 / (want_norm + 1e-6))).numpy(), rtol=1e-12)


def test_capture_falls_back_to_dense_gradient():
    _, le = _pair()
    opt = tl.optim.SGD(le.parameters(), lr=0.1)

    def step(i):
        opt.zero_grad()
        le(i).sum().backward()
        opt.step()
    with pytest.warns(UserWarning, match="dense gradient under graph capture"):
        tl.function(step)(tl.tensor([1, 2]))
    # a sparse matrix held by the closure is a constant of the captured product
    A = tsp.sparse_coo_tensor([[0], [1]], [3.0], (2, 2))
    x = tl.tensor([[1.0], [2.0]])
    got = tl.function(lambda x: tsp.mm(A, x))(x)
    np.testing.assert_array_equal(got.numpy(), (A.to_dense() @ x).numpy())
