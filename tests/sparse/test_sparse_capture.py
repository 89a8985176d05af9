"""Sparse COO products under the tape, graph capture, graph files and ONNX: ``tl.sparse.mm``
records the registry op ``spmm_coo`` on (indices, values, dense), compared with PyTorch's
``torch.sparse.mm`` (values, gradients, second order), a captured GCN train step whose
adjacency (and nnz) changes between calls, and exported GNNs run on another adjacency."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.autograd.gradcheck import gradcheck, gradgradcheck
from tensorlib.ops.sparse_mm import spmm_coo

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")


def _coo(rng, n, m, nnz):
    return np.stack([rng.integers(0, n, nnz), rng.integers(0, m, nnz)]).astype(np.int64)


def _torch_mm(ind, vals, dense, shape, need_grad=True):
    v = torch.tensor(vals, requires_grad=need_grad)
    x = torch.tensor(dense, requires_grad=need_grad)
    a = torch.sparse_coo_tensor(torch.tensor(ind), v, shape)
    return torch.sparse.mm(a, x if x.ndim == 2 else x[:, None]), v, x


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), m=st.integers(1, 6), nnz=st.integers(0, 12),
       k=st.integers(0, 4), seed=st.integers(0, 2 ** 31 - 1))
def test_values_and_gradients_match_torch(n, m, nnz, k, seed):
    rng = np.random.default_rng(seed)
    ind, vals = _coo(rng, n, m, nnz), rng.standard_normal(nnz)
    dense = rng.standard_normal((m, k) if k else (m,))     # k == 0: a vector
    a = tl.sparse_coo_tensor(ind, vals, (n, m), requires_grad=True)
    x = tl.tensor(dense, requires_grad=True)
    out = tl.sparse.mm(a, x)
    want, tv, tx = _torch_mm(ind, vals, dense, (n, m))
    want_out = want if k else want[:, 0]
    np.testing.assert_allclose(out.numpy(), want_out.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(tl.tensor(g))
    want_out.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    # a leaf's gradient: sparse, one entry per position (torch coalesces)
    np.testing.assert_allclose(a.grad.to_dense().numpy(),
                               _dense_grad(ind, tv.grad.numpy(), (n, m)), rtol=1e-12,
                               atol=1e-12)


def _dense_grad(ind, gv, shape):
    # torch's values gradient is per entry (duplicates each get the position's gradient)
    out = np.zeros(shape)
    out[ind[0], ind[1]] = gv
    return out


def test_values_gradient_is_per_entry_like_torch():
    ind = np.array([[0, 0, 1], [1, 1, 0]])
    vals, dense = np.array([1.0, 2.0, 3.0]), np.arange(6.0).reshape(2, 3)
    v, x = tl.tensor(vals, requires_grad=True), tl.tensor(dense, requires_grad=True)
    out = spmm_coo(tl.tensor(ind), v, x, shape=(2, 2))
    (out * out).sum().backward()
    want, tv, tx = _torch_mm(ind, vals, dense, (2, 2))
    (want * want).sum().backward()
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(v.grad.numpy(), tv.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("vector", [False, True])
def test_gradcheck_and_gradgradcheck(transpose, vector):
    rng = np.random.default_rng(1)
    ind = tl.tensor(_coo(rng, 4, 3, 9))
    v = tl.tensor(rng.standard_normal(9), requires_grad=True)
    x = tl.tensor(rng.standard_normal(((4 if transpose else 3),) + (() if vector else (2,))),
                  requires_grad=True)

    def f(v, x):
        return spmm_coo(ind, v, x, shape=(4, 3), transpose=transpose)
    assert gradcheck(f, (v, x))
    assert gradgradcheck(f, (v, x))


def test_double_backward_matches_torch():
    rng = np.random.default_rng(2)
    ind, vals, dense = _coo(rng, 3, 4, 7), rng.standard_normal(7), rng.standard_normal((4, 2))
    a = tl.sparse_coo_tensor(ind, vals, (3, 4), requires_grad=True)
    x = tl.tensor(dense, requires_grad=True)
    (gx,) = tl.autograd.grad((tl.sparse.mm(a, x) ** 2).sum(), [x], create_graph=True)
    (gx ** 2).sum().backward()
    want, tv, tx = _torch_mm(ind, vals, dense, (3, 4))
    (tgx,) = torch.autograd.grad((want ** 2).sum(), [tx], create_graph=True)
    (tgx ** 2).sum().backward()
    np.testing.assert_allclose(gx.detach().numpy(), tgx.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(a.grad.to_dense().numpy(), _dense_grad(ind, tv.grad.numpy(),
                                                                      (3, 4)), rtol=1e-10)


def test_aliases_and_addmm_record_the_op():
    rng = np.random.default_rng(3)
    ind, vals = _coo(rng, 3, 3, 5), rng.standard_normal(5)
    a = tl.sparse_coo_tensor(ind, vals, (3, 3))
    x, m = tl.tensor(rng.standard_normal((3, 2))), tl.tensor(rng.standard_normal((3, 2)))
    want = torch.sparse.mm(torch.sparse_coo_tensor(torch.tensor(ind), torch.tensor(vals),
                                                   (3, 3)), torch.tensor(x.numpy()))
    for f in (lambda x: tl.sparse.mm(a, x), lambda x: a @ x, lambda x: tl.matmul(a, x),
              lambda x: a.mm(x)):
        g = tl.function(f).get_graph(x)
        assert [n.op for n in g.nodes if n.op == "spmm_coo"] == ["spmm_coo"]
        np.testing.assert_allclose(f(x).numpy(), want.numpy(), rtol=1e-12)
    got = tl.function(lambda m, x: tl.sparse.addmm(m, a, x, beta=0.5, alpha=2.0))(m, x)
    tw = torch.sparse.addmm(torch.tensor(m.numpy()), torch.sparse_coo_tensor(
        torch.tensor(ind), torch.tensor(vals), (3, 3)), torch.tensor(x.numpy()),
        beta=0.5, alpha=2.0)
    np.testing.assert_allclose(got.numpy(), tw.numpy(), rtol=1e-12)


def test_errors():
    a = tl.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (2, 2))
    with pytest.raises(RuntimeError, match="sparse.mm: mat1 and mat2 shapes"):
        tl.sparse.mm(a, tl.ones(3, 2))
    with pytest.raises(RuntimeError, match="same dtype"):
        tl.sparse.mm(a, tl.ones(2, 2, dtype=tl.float64))
    with pytest.raises(IndexError, match="spmm_coo: indices out of range"):
        spmm_coo(tl.tensor([[0, 5], [0, 0]]), tl.ones(2), tl.ones(2, 1), shape=(2, 2))
    with pytest.raises(ValueError, match="spmm_coo: a sparse"):
        spmm_coo(tl.tensor([[0], [0]]), tl.ones(1), tl.ones(3, 1), shape=(2, 2))
    # a SparseTensor argument of a captured function: its indices and values are inputs
    got = tl.function(lambda a, x: tl.sparse.mm(a, x))(a, tl.ones(2, 1))
    np.testing.assert_array_equal(got.numpy(), (a.to_dense() @ tl.ones(2, 1)).numpy())
    # built in the function from tensors: the size cannot come from the trace's values
    with pytest.raises(ValueError, match="give size"):
        tl.function(lambda i, v: tl.sparse_coo_tensor(i, v).to_dense())(
            tl.tensor([[0], [1]]), tl.ones(1))


def test_replay_checks_indices_against_the_shape():
    f = tl.function(lambda i, v, x: tl.sparse.mm(tl.sparse_coo_tensor(i, v, (3, 3)), x),
                    input_signature=[tl.TensorSpec((2, None), "int64"),
                                     tl.TensorSpec((None,), "float64"),
                                     tl.TensorSpec((3, 2), "float64")])
    x = tl.tensor(np.ones((3, 2)))
    v = tl.tensor(np.array([1.0, 2.0]))
    np.testing.assert_allclose(f(tl.tensor([[0, 1], [1, 2]]), v, x).numpy(),
                               [[1, 1], [2, 2], [0, 0]])
    with pytest.raises(IndexError, match="out of range"):
        f(tl.tensor([[0, 3], [1, 2]]), v, x)


# --- a 2-layer GCN ----------------------------------------------------------------------
N, F_IN, HID, C = 7, 4, 5, 3


def _gcn(seed=0):
    rng = np.random.default_rng(seed)
    w1 = tl.tensor(rng.standard_normal((F_IN, HID)) * 0.5, requires_grad=True)
    w2 = tl.tensor(rng.standard_normal((HID, C)) * 0.5, requires_grad=True)
    ew = tl.tensor(np.array(0.9), requires_grad=True)    # a learned edge scale: values' grad
    opt = tl.optim.SGD([w1, w2, ew], lr=0.05)

    def forward(ind, val, x):
        a = tl.sparse_coo_tensor(ind, val * ew, (N, N))
        h = tl.sparse.mm(a, x @ w1).relu()
        return tl.sparse.mm(a, h @ w2)

    def step(ind, val, x, y):
        opt.zero_grad()
        loss = ((forward(ind, val, x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss
    return (w1, w2, ew), forward, step


def _graph_batch(rng, nnz):
    ind = _coo(rng, N, N, nnz)
    return (tl.tensor(ind), tl.tensor(rng.uniform(0.1, 1.0, nnz)),
            tl.tensor(rng.standard_normal((N, F_IN))), tl.tensor(rng.standard_normal((N, C))))


@pytest.mark.filterwarnings("ignore:tl.function step")
@pytest.mark.parametrize("how", ["signature", "auto"])
def test_captured_gcn_train_step_matches_eager(how):
    params_e, _, step_e = _gcn()
    params_c, _, step_c = _gcn()
    sig = [tl.TensorSpec((2, None), "int64"), tl.TensorSpec((None,), "float64"),
           tl.TensorSpec((N, F_IN), "float64"), tl.TensorSpec((N, C), "float64")]
    f = tl.function(step_c, input_signature=sig) if how == "signature" else \
        tl.function(step_c)
    rng = np.random.default_rng(5)
    batches = [_graph_batch(rng, e) for e in (12, 12, 17, 9, 17)]   # nnz changes
    for b in batches:
        want = step_e(*b)
        got = f(*b)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)
        for pc, pe in zip(params_c, params_e):
            np.testing.assert_allclose(pc.numpy(), pe.numpy(), rtol=1e-10, atol=1e-12)
    assert any(n.op == "spmm_coo" for g in f.graphs for n in g.nodes)
    # tensorlib.graph traces a training step once per input shape (its gradients hold the
    # batch's sizes), even with None dims: one graph per nnz, replayed when it comes back
    assert f.trace_count == len({12, 17, 9})


def test_captured_inference_traces_once_for_any_nnz():
    _, forward, _ = _gcn(3)
    f = _inference(forward)
    rng = np.random.default_rng(8)
    for nnz in (12, 30, 5, 0):
        i, v, x, _ = _graph_batch(rng, nnz)
        with tl.no_grad():
            got = f(i, v, x)
            a = torch.sparse_coo_tensor(torch.tensor(i.numpy()), torch.tensor(v.numpy()),
                                        (N, N))
        w1, w2 = (torch.tensor(p.detach().numpy()) for p in _gcn(3)[0][:2])
        t = a * 0.9
        want = torch.sparse.mm(t, torch.sparse.mm(t, torch.tensor(x.numpy()) @ w1).relu() @ w2)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)
    assert f.trace_count == 1


def _inference(forward):
    return tl.function(lambda i, v, x: forward(i, v, x),
                       input_signature=[tl.TensorSpec((2, None), "int64"),
                                        tl.TensorSpec((None,), "float64"),
                                        tl.TensorSpec((N, F_IN), "float64")])


def test_graph_file_round_trip(tmp_path):
    _, forward, _ = _gcn(1)
    f = _inference(forward)
    rng = np.random.default_rng(6)
    i, v, x, _ = _graph_batch(rng, 10)
    f(i, v, x)
    path = tmp_path / "gcn.tlg"
    tl.save_graph(f, path)
    m = tl.load_graph(path)
    for nnz in (10, 21, 3):
        i, v, x, _ = _graph_batch(rng, nnz)
        with tl.no_grad():
            want = forward(i, v, x)
        np.testing.assert_allclose(m(i, v, x).numpy(), want.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("opset", [16, 18])
def test_onnx_export_runs_in_onnxruntime(tmp_path, opset):
    ort = pytest.importorskip("onnxruntime")
    _, forward, _ = _gcn(2)
    rng = np.random.default_rng(7)
    g = _inference(forward).get_graph(*_graph_batch(rng, 11)[:3])
    path = tmp_path / "gcn.onnx"
    g.to_onnx(path, opset=opset)
    import onnx
    ops = {nd.op_type for nd in onnx.load(str(path)).graph.node}
    assert {"ScatterND", "Gather"} <= ops
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [s.name for s in sess.get_inputs()]
    for nnz in (11, 25, 0):     # another adjacency at run time (duplicates included)
        i, v, x, _ = _graph_batch(rng, nnz)
        (got,) = sess.run(None, dict(zip(names, [i.numpy(), v.numpy(), x.numpy()])))
        with tl.no_grad():
            want = forward(i, v, x)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)


def test_onnx_opset_below_16_is_refused(tmp_path):
    pytest.importorskip("onnx")
    f = tl.function(lambda i, v, x: tl.sparse.mm(tl.sparse_coo_tensor(i, v, (2, 2)), x))
    g = f.get_graph(tl.tensor([[0], [1]]), tl.ones(1), tl.ones(2, 2))
    with pytest.raises(Exception, match="opset >= 16"):
        g.to_onnx(tmp_path / "a.onnx", opset=15)


def test_onnx_rule_is_attached():
    assert callable(tl.REGISTRY["spmm_coo"].onnx)
    assert "spmm_coo" not in tl.onnx.UNSUPPORTED


def test_to_dense_in_a_captured_function_reads_the_replays_indices():
    f = tl.function(lambda i, v: tl.sparse_coo_tensor(i, v, (3, 4)).to_dense() * 2,
                    input_signature=[tl.TensorSpec((2, None), "int64"),
                                     tl.TensorSpec((None,), "float64")])
    rng = np.random.default_rng(9)
    for nnz in (5, 9, 2):
        ind, vals = _coo(rng, 3, 4, nnz), rng.standard_normal(nnz)
        got = f(tl.tensor(ind), tl.tensor(vals))
        want = torch.sparse_coo_tensor(torch.tensor(ind), torch.tensor(vals), (3, 4))
        np.testing.assert_allclose(got.numpy(), 2 * want.to_dense().numpy(), rtol=1e-12)
    assert f.trace_count == 1


def test_host_index_ops_on_traced_indices_are_refused():
    f = tl.function(lambda i, v: tl.sparse_coo_tensor(i, v, (3, 3)).coalesce().values())
    with pytest.raises(RuntimeError, match="coalesce: a sparse tensor whose indices are a "
                                           "graph value"):
        f(tl.tensor([[0, 0], [1, 1]]), tl.tensor(np.ones(2)))


def test_a_sparse_constant_of_the_function_is_captured():
    a = tl.sparse_coo_tensor([[0, 1, 1], [1, 0, 0]], np.array([1.0, 2.0, 3.0]), (2, 2))
    f = tl.function(lambda x: tl.sparse.mm(a, x) + a.coalesce().to_dense() @ x)
    x = tl.tensor(np.arange(4.0).reshape(2, 2))
    want = 2 * (np.array([[0, 1], [5, 0]]) @ x.numpy())
    for _ in range(2):
        np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-12)
