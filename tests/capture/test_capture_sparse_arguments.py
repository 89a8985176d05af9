"""Sparse COO tensors as ``tl.function`` arguments: flattened into their indices and values
(nnz a None dim), rebuilt for the traced function, so a GCN inference step traces once for
every sparsity pattern and matches eager and PyTorch; training steps trace once per nnz."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

N, FIN, HID, FOUT = 7, 4, 5, 3


def _adjacency(rng, nnz, n=N):
    """Random (2, nnz) indices (duplicates allowed) and (nnz,) values."""
    idx = np.stack([rng.integers(0, n, nnz), rng.integers(0, n, nnz)]).astype(np.int64)
    return idx, rng.standard_normal(nnz)


def _weights(lib, seed=0):
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((FIN, HID)) * 0.5, rng.standard_normal((HID, FOUT)) * 0.5]
    if lib is tl:
        return [tl.tensor(w, requires_grad=True) for w in ws]
    return [torch.tensor(w, requires_grad=True) for w in ws]


def _gcn(lib, ws, a, x):
    mm = tl.sparse.mm if lib is tl else torch.sparse.mm
    relu = tl.relu if lib is tl else torch.relu
    h = relu(mm(a, x @ ws[0]))
    return mm(a, h @ ws[1])


def _pair(idx, vals, rg=False):
    """The same sparse matrix in tensorlib and PyTorch (values leaves when ``rg``)."""
    tv = tl.tensor(vals, requires_grad=rg)
    pv = torch.tensor(vals, requires_grad=rg)
    a = tl.sparse_coo_tensor(tl.tensor(idx), tv, (N, N))
    ta = torch.sparse_coo_tensor(torch.tensor(idx), pv, (N, N))
    return a, ta, tv, pv


@settings(max_examples=10, deadline=None)
@given(nnzs=st.lists(st.integers(2, 30), min_size=1, max_size=5), seed=st.integers(0, 99))
def test_gcn_inference_traces_once_for_any_nnz(nnzs, seed):
    ws, tws = _weights(tl), _weights(torch)
    f = tl.function(lambda a, x: _gcn(tl, ws, a, x))
    rng = np.random.default_rng(seed)
    for nnz in nnzs:
        idx, vals = _adjacency(rng, nnz)
        a, ta, _, _ = _pair(idx, vals)
        x = rng.standard_normal((N, FIN))
        with tl.no_grad():
            got = f(a, tl.tensor(x))
            eager = _gcn(tl, ws, a, tl.tensor(x))
        with torch.no_grad():
            want = _gcn(torch, tws, ta, torch.tensor(x))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(got.numpy(), eager.numpy())
    assert f.trace_count == 1, f.retrace_reasons
    g = f.graphs[0]
    assert [tuple(v.shape) for v in g.inputs[:2]] == [(2, None), (None,)]
    assert "spmm_coo" in g.op_counts()


def test_sparse_argument_inside_a_structure_and_kwargs():
    f = tl.function(lambda xs, adj=None: tl.sparse.mm(adj, xs[0]) + tl.sparse.mm(xs[1], xs[0]))
    rng = np.random.default_rng(1)
    for nnz in (3, 8, 5):
        a, ta, _, _ = _pair(*_adjacency(rng, nnz))
        b, tb, _, _ = _pair(*_adjacency(rng, nnz + 2))
        x = rng.standard_normal((N, 2))
        got = f([tl.tensor(x), b], adj=a)
        want = torch.sparse.mm(ta, torch.tensor(x)) + torch.sparse.mm(tb, torch.tensor(x))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)
    assert f.trace_count == 1, f.retrace_reasons


def test_input_signature_skips_the_sparse_parts():
    """input_signature lists the dense tensors only; the sparse argument's parts take nnz
    as a None dim whatever the signature says."""
    f = tl.function(lambda a, x: tl.sparse.mm(a, x),
                    input_signature=[tl.TensorSpec((N, None), "float64")])
    rng = np.random.default_rng(2)
    for nnz, k in ((4, 2), (9, 3), (6, 1)):
        a, ta, _, _ = _pair(*_adjacency(rng, nnz))
        x = rng.standard_normal((N, k))
        np.testing.assert_allclose(f(a, tl.tensor(x)).numpy(),
                                   torch.sparse.mm(ta, torch.tensor(x)).numpy(), rtol=1e-12)
    assert f.trace_count == 1, f.retrace_reasons
    assert [tuple(v.shape) for v in f.graphs[0].inputs] == [(2, None), (None,), (N, None)]


def test_dynamic_true_keeps_sparse_dim_fixed():
    f = tl.function(lambda a, x: tl.sparse.mm(a, x), dynamic=True)
    rng = np.random.default_rng(3)
    for nnz in (4, 9):
        a, ta, _, _ = _pair(*_adjacency(rng, nnz))
        x = rng.standard_normal((N, 3))
        np.testing.assert_allclose(f(a, tl.tensor(x)).numpy(),
                                   torch.sparse.mm(ta, torch.tensor(x)).numpy(), rtol=1e-12)
    assert f.trace_count == 1, f.retrace_reasons
    assert tuple(f.graphs[0].inputs[0].shape) == (2, None)


def test_another_sparse_size_traces_again():
    f = tl.function(lambda a: tl.sparse.mm(a, tl.ones(a.shape[1], 2, dtype="float64")))
    rng = np.random.default_rng(4)
    a, _, _, _ = _pair(*_adjacency(rng, 5))
    f(a)
    idx, vals = _adjacency(rng, 5, n=4)
    b = tl.sparse_coo_tensor(tl.tensor(idx), tl.tensor(vals), (4, 4))
    np.testing.assert_allclose(f(b).numpy(), tl.sparse.mm(b, tl.ones(4, 2, dtype="float64"))
                               .numpy(), rtol=1e-12)
    assert f.trace_count == 2


@pytest.mark.parametrize("optim", ["sgd", "adam"])
def test_gcn_training_step_traces_once_per_nnz(optim):
    ws, tws = _weights(tl), _weights(torch)
    if optim == "sgd":
        opt, topt = tl.optim.SGD(ws, lr=0.05, momentum=0.9), torch.optim.SGD(tws, lr=0.05,
                                                                             momentum=0.9)
    else:
        opt, topt = tl.optim.Adam(ws, lr=0.01), torch.optim.Adam(tws, lr=0.01)

    def step(lib, o, w, a, x, y):
        o.zero_grad()
        loss = ((_gcn(lib, w, a, x) - y) ** 2).mean()
        loss.backward()
        o.step()
        return loss

    f = tl.function(lambda a, x, y: step(tl, opt, ws, a, x, y))
    rng = np.random.default_rng(5)
    graphs = {nnz: _adjacency(rng, nnz) for nnz in (6, 10)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, nnz in enumerate([6, 10, 6, 10, 6]):
            a, ta, _, _ = _pair(*graphs[nnz])
            x, y = rng.standard_normal((N, FIN)), rng.standard_normal((N, FOUT))
            got = f(a, tl.tensor(x), tl.tensor(y)).item()
            want = step(torch, topt, tws, ta, torch.tensor(x), torch.tensor(y)).item()
            np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=f"call {i}")
            for w, tw in zip(ws, tws):
                np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-9,
                                           atol=1e-12, err_msg=f"call {i}")
                np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(),
                                           rtol=1e-9, atol=1e-12, err_msg=f"call {i}")
    # one graph per nnz (a training step's gradients hold the batch's sizes)
    assert f.trace_count == 2, f.retrace_reasons


def test_gradient_reaches_the_sparse_arguments_values():
    """Edge weights that require grad: backward() inside the captured function fills the
    values' .grad (and the sparse tensor's), as PyTorch's."""
    ws, tws = _weights(tl), _weights(torch)

    def loss_of(lib, w, a, x):
        return (_gcn(lib, w, a, x) ** 2).sum()

    def step(a, x):
        loss = loss_of(tl, ws, a, x)
        loss.backward()
        return loss
    f = tl.function(step)
    rng = np.random.default_rng(6)
    idx, vals = _adjacency(rng, 9)
    for i in range(3):
        a, ta, tv, pv = _pair(idx, vals + i, rg=True)
        x = rng.standard_normal((N, FIN))
        for w in ws:
            w.grad = None
        for w in tws:
            w.grad = None
        got = f(a, tl.tensor(x)).item()
        tloss = loss_of(torch, tws, ta, torch.tensor(x))
        tloss.backward()
        np.testing.assert_allclose(got, tloss.item(), rtol=1e-12)
        np.testing.assert_allclose(tv.grad.numpy(), pv.grad.numpy(), rtol=1e-10, atol=1e-12)
        # the sparse tensor's own .grad: each position once, as eager's
        a2, _, _, _ = _pair(idx, vals + i, rg=True)
        loss_of(tl, [w.detach() for w in ws], a2, tl.tensor(x)).backward()
        np.testing.assert_allclose(a.grad.to_dense().numpy(), a2.grad.to_dense().numpy(),
                                   rtol=1e-12)
        for w, tw in zip(ws, tws):
            np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-10)
    assert f.trace_count == 1, f.retrace_reasons


def test_host_only_op_on_a_sparse_argument_is_refused():
    """coalesce() reads the indices on the host: under capture they would be frozen at the
    trace's, so it raises and names the op."""
    f = tl.function(lambda a: a.coalesce().values().sum())
    rng = np.random.default_rng(7)
    a, _, _, _ = _pair(*_adjacency(rng, 6))
    with pytest.raises(RuntimeError, match="coalesce"):
        f(a)


def test_to_dense_of_a_sparse_argument_follows_the_call():
    f = tl.function(lambda a, x: a.to_dense() @ x)
    rng = np.random.default_rng(8)
    for nnz in (4, 11):
        a, ta, _, _ = _pair(*_adjacency(rng, nnz))
        x = rng.standard_normal((N, 2))
        np.testing.assert_allclose(f(a, tl.tensor(x)).numpy(),
                                   (ta.to_dense() @ torch.tensor(x)).numpy(), rtol=1e-12)
    assert f.trace_count == 1, f.retrace_reasons


def test_indices_of_a_sparse_argument_follow_the_call():
    f = tl.function(lambda a: a.indices()[0].sum() + 0)
    for idx in ([[0, 1], [1, 2]], [[2, 3], [1, 2]]):
        i = np.array(idx)
        a = tl.sparse_coo_tensor(tl.tensor(i), tl.ones(2, dtype="float64"), (5, 5),
                                 is_coalesced=True)
        assert f(a).item() == i[0].sum()
