"""Captured in-place writes: Embedding/EmbeddingBag ``max_norm`` renormalisation recorded as a
graph write (replays and reloaded graph files perform it), and scatter/index writes into a
variable replayed in place (no full copy of the target per replay)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

V, D = 12, 4


def _table(seed: int, dtype=np.float64) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((V, D)) * 3).astype(dtype)


def _batches(seed: int, n: int = 5, b: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return [rng.integers(0, V, b) for _ in range(n)]


def _models(kind: str, W: np.ndarray, norm_type: float):
    """(tensorlib module, torch module) with the same table and max_norm."""
    if kind == "emb":
        m = tl.nn.Embedding(V, D, max_norm=1.0, norm_type=norm_type, _weight=tl.tensor(W.copy()))
        tm = torch.nn.Embedding(V, D, max_norm=1.0, norm_type=norm_type,
                                _weight=torch.tensor(W.copy()))
    else:
        mode = kind.split("_")[1]
        m = tl.nn.EmbeddingBag(V, D, mode=mode, max_norm=1.0, norm_type=norm_type,
                               _weight=tl.tensor(W.copy()))
        tm = torch.nn.EmbeddingBag(V, D, mode=mode, max_norm=1.0, norm_type=norm_type,
                                   _weight=torch.tensor(W.copy()))
    return m, tm


def _loss(kind, mod, t, lib):
    if kind == "emb":
        out = mod(t)
    else:
        out = mod(t, lib.tensor(np.array([0, 2])))
    w = lib.tensor(np.linspace(-1.0, 1.0, out.shape[-1]))
    return ((out * w).sum(-1) ** 2).sum() + (out * w).sum()


def _step_fn(kind, mod, opt):
    def step(ids):
        opt.zero_grad()
        loss = _loss(kind, mod, ids, tl)
        loss.backward()
        opt.step()
        return loss
    return step


KINDS = ["emb", "bag_sum", "bag_mean", "bag_max"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("norm_type", [1.0, 2.0])
def test_max_norm_sgd_steps_eager_captured_reloaded_torch(kind, norm_type, tmp_path):
    W = _table(3)
    batches = _batches(4)
    (me, tm), (mc, _), (ml, _) = (_models(kind, W, norm_type) for _ in range(3))
    oe = tl.optim.SGD(me.parameters(), lr=0.3)
    oc = tl.optim.SGD(mc.parameters(), lr=0.3)
    ot = torch.optim.SGD(tm.parameters(), lr=0.3)
    eager, captured = _step_fn(kind, me, oe), tl.function(_step_fn(kind, mc, oc))
    # the graph file: traced on a third copy, saved after its first (traced) step
    ol = tl.optim.SGD(ml.parameters(), lr=0.3)
    fl = tl.function(_step_fn(kind, ml, ol))
    fl(tl.tensor(batches[0]))
    path = tmp_path / "step.tlg"
    tl.save_graph(fl, path, model=ml)
    loaded = tl.load_graph(path)
    for i, ids in enumerate(batches):
        le = eager(tl.tensor(ids))
        lc = captured(tl.tensor(ids))
        ot.zero_grad()
        lt = _loss(kind, tm, torch.tensor(ids), torch)
        lt.backward()
        ot.step()
        if i:
            ll = loaded(tl.tensor(ids))
            np.testing.assert_allclose(float(ll), float(lt.detach()), rtol=1e-9, atol=1e-9,
                                       err_msg=f"reloaded graph, step {i}")
        np.testing.assert_allclose(float(le), float(lt.detach()), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(float(lc), float(lt.detach()), rtol=1e-9, atol=1e-9,
                                   err_msg=f"captured, step {i}")
        np.testing.assert_allclose(mc.weight.detach().numpy(), tm.weight.detach().numpy(),
                                   rtol=1e-9, atol=1e-12, err_msg=f"captured weight, step {i}")
    np.testing.assert_allclose(me.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-9,
                               atol=1e-12)
    lw = dict(loaded.named_parameters())
    np.testing.assert_allclose(next(iter(lw.values())).detach().numpy(), tm.weight.detach().numpy(),
                               rtol=1e-9, atol=1e-12)
    assert captured.trace_count <= 2      # (the second call: .grad exists now)


@pytest.mark.parametrize("kind", KINDS)
def test_max_norm_inference_replay_renormalises_weight(kind):
    W = _table(5, np.float32)
    m, tm = _models(kind, W, 2.0)
    f = tl.function(lambda ids: m(ids) if kind == "emb" else m(ids, tl.tensor([0, 2])))
    with tl.no_grad(), torch.no_grad():
        for ids in ([0, 1, 5], [2, 3, 4], [6, 7, 2]):
            a = f(tl.tensor(ids))
            b = tm(torch.tensor(ids)) if kind == "emb" else tm(torch.tensor(ids),
                                                                torch.tensor([0, 2]))
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)
    assert f.trace_count == 1
    np.testing.assert_allclose(m.weight.detach().numpy(), tm.weight.detach().numpy(), rtol=1e-6,
                               atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), max_norm=st.floats(0.3, 4.0),
       norm_type=st.sampled_from([1.0, 2.0, 3.0]))
def test_max_norm_captured_values_and_grads_match_torch(seed, max_norm, norm_type):
    W = _table(seed)
    rng = np.random.default_rng(seed)
    ids = [rng.integers(0, V, 6) for _ in range(3)]
    m = tl.nn.Embedding(V, D, max_norm=max_norm, norm_type=norm_type, _weight=tl.tensor(W))
    tm = torch.nn.Embedding(V, D, max_norm=max_norm, norm_type=norm_type,
                            _weight=torch.tensor(W.copy()))

    def fwd(i):
        out = m(i)
        (out ** 3).sum().backward()
        return out

    f = tl.function(fwd)
    for i in ids:
        m.weight.grad = None
        tm.weight.grad = None
        a = f(tl.tensor(i))
        b = tm(torch.tensor(i))
        (b ** 3).sum().backward()
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(m.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(m.weight.detach().numpy(), tm.weight.detach().numpy(),
                                   rtol=1e-10, atol=1e-12)


def test_max_norm_errors_still_raised_under_capture():
    m = tl.nn.Embedding(4, 2, max_norm=1.0)
    f = tl.function(lambda i: m(i))
    with pytest.raises(IndexError, match="embedding"):
        f(tl.tensor([0, 9]))
    with pytest.raises(ValueError, match="max_norm"):
        tl.nn.functional.embedding(tl.tensor([0]), tl.ones(4, 2), max_norm=-1.0)


# --- (b) scatter / index writes into a variable run in place on replay ---------------------
class _Queue(tl.nn.Module):
    def __init__(self, n: int, d: int, dtype=np.float64):
        super().__init__()
        rng = np.random.default_rng(n)
        self.register_buffer("Q", tl.tensor(rng.standard_normal((n, d)).astype(dtype)))
        self.register_buffer("P", tl.zeros(n, d, dtype=dtype))


WRITES = {
    "setitem": lambda q, idx, k: q.Q.__setitem__(idx, k),
    "index_copy_": lambda q, idx, k: q.Q.index_copy_(0, idx, k),
    "index_put_": lambda q, idx, k: q.Q.index_put_((idx,), k),
    "setitem_2d": lambda q, idx, k: q.Q.__setitem__((idx, slice(None)), k),
}


def _plan_source(f) -> str:
    return "\n".join(p.source for g in f.graphs for p in g._plans.values())


@pytest.mark.parametrize("how", sorted(WRITES))
def test_queue_row_writes_replay_in_place_and_match_eager(how):
    qe, qc = _Queue(16, 3), _Queue(16, 3)
    write = WRITES[how]

    def step(q, idx, k):
        s = q.Q.sum()           # read before the write, as MoCo's logits against the queue
        write(q, idx, k)
        return s

    f = tl.function(step)
    rng = np.random.default_rng(0)
    storage = qc.Q._data
    for _ in range(5):
        # repeated positions: the last write wins, as eager
        idx = tl.tensor(rng.integers(0, 16, 6))
        k = tl.tensor(rng.standard_normal((6, 3)))
        with tl.no_grad():
            a = f(qc, idx, k)
            b = step(qe, idx, k)
        np.testing.assert_array_equal(qc.Q.numpy(), qe.Q.numpy())
        assert float(a) == float(b)
    assert f.trace_count == 1
    assert qc.Q._data is storage
    assert "_write_rows(" in _plan_source(f)


def test_static_slice_and_int_writes_replay_in_place():
    qe, qc = _Queue(10, 2), _Queue(10, 2)

    def step(q, k):
        q.Q[2:5] = k
        q.Q[7] = k[0] * 2
        q.P[1:4].copy_(k)       # through a view: the write-back of its base

    f = tl.function(step)
    with tl.no_grad():
        for i in range(3):
            k = tl.full((3, 2), float(i + 1))
            f(qc, k)
            step(qe, k)
            np.testing.assert_array_equal(qc.Q.numpy(), qe.Q.numpy())
            np.testing.assert_array_equal(qc.P.numpy(), qe.P.numpy())
    assert "_write_setitem(" in _plan_source(f)


ORDERS = {
    # another write reads the old queue (copied before the write, eager order)
    "copy_then_write": lambda q, idx, k: (q.P.copy_(q.Q), q.Q.__setitem__(idx, k)),
    # another write reads the new queue: the write is its value, computed out of place
    "write_then_copy": lambda q, idx, k: (q.Q.__setitem__(idx, k), q.P.copy_(q.Q)),
    # the values written are rows of the queue itself (overlapping memory)
    "self_rows": lambda q, idx, k: q.Q.__setitem__(idx, q.Q[idx.flip(0)] + 1),
    "self_slice": lambda q, idx, k: q.Q.__setitem__(slice(0, 6), q.Q[3:9]),
    "shift": lambda q, idx, k: q.Q.__setitem__(slice(0, -1), q.Q[1:]),
    # a view of the old queue returned: it reads the storage after the step, as eager's
    "swap_queues": lambda q, idx, k: (q.P.__setitem__(idx, q.Q[idx]),
                                      q.Q.__setitem__(idx, q.P[idx] * 2)),
}


@pytest.mark.parametrize("how", sorted(ORDERS))
def test_writes_reading_other_state_keep_eager_order(how):
    qe, qc = _Queue(12, 2), _Queue(12, 2)
    fn = ORDERS[how]

    def step(q, idx, k):
        fn(q, idx, k)
        return q.Q * 1.0, q.P * 1.0

    f = tl.function(step)
    rng = np.random.default_rng(1)
    for _ in range(4):
        idx = tl.tensor(rng.permutation(12)[:4])
        k = tl.tensor(rng.standard_normal((4, 2)))
        with tl.no_grad():
            a = f(qc, idx, k)
            b = step(qe, idx, k)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.numpy(), y.numpy())
        np.testing.assert_array_equal(qc.Q.numpy(), qe.Q.numpy())
        np.testing.assert_array_equal(qc.P.numpy(), qe.P.numpy())


def test_returned_write_result_and_input_queue():
    """The write's result fetched (``return q.index_copy_(...)``), and a queue passed as a
    graph input: same values as eager, the fetched array not the queue's storage."""
    Qe = tl.tensor(np.arange(24.0).reshape(8, 3))
    Qc = tl.tensor(np.arange(24.0).reshape(8, 3))
    f = tl.function(lambda Q, idx, k: Q.index_copy_(0, idx, k) * 1.0)
    g = tl.function(lambda Q, idx, k: Q.__setitem__(idx, k))
    for i in range(3):
        idx, k = tl.tensor([i, 5]), tl.full((2, 3), float(-i), dtype=tl.float64)
        with tl.no_grad():
            a = f(Qc, idx, k)
            b = Qe.index_copy_(0, idx, k) * 1.0
            g(Qc, idx + 1, k)
            Qe[idx + 1] = k
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(Qc.numpy(), Qe.numpy())
        assert not np.shares_memory(a._data, Qc._data)


def test_graph_file_keeps_its_ops_and_reloaded_writes(tmp_path):
    q, qe = _Queue(16, 3), _Queue(16, 3)

    def step(q, idx, k):
        q.Q[idx] = k

    f = tl.function(step)
    idx, k = tl.tensor([3, 4, 3]), tl.tensor(np.ones((3, 3)))
    with tl.no_grad():
        f(q, idx, k)
        step(qe, idx, k)
    g = f.graphs[-1]
    # the graph is unchanged: the plan alone runs the write in place
    assert any(n.op == "scatter_extreme" for n in g.nodes)
    tl.save_graph(f, tmp_path / "q.tlg")
    m = tl.load_graph(tmp_path / "q.tlg")
    k2 = tl.tensor(np.full((3, 3), 7.0))
    m(idx + 5, k2)
    with tl.no_grad():
        step(qe, idx + 5, k2)
    (name, buf), = [(n, t) for n, t in m.state_dict().items() if n.endswith("Q")]
    np.testing.assert_array_equal(buf.numpy(), qe.Q.numpy())


def test_replay_does_not_copy_the_queue():
    """A MoCo queue update (65536 x 128 would be 32 MiB) allocates only the rows: no full
    copy of the queue per replay (there were two: the composite's and the write-back's)."""
    import tracemalloc
    n, d, b = 8192, 64, 128
    q = _Queue(n, d, np.float32)
    ptr = tl.tensor(np.array(0))

    def step(q, ptr, k):
        idx = (tl.arange(b) + ptr) % n
        q.Q[idx] = k
        ptr.copy_((ptr + b) % n)

    f = tl.function(step)
    k = tl.tensor(np.ones((b, d), np.float32))
    with tl.no_grad():
        f(q, ptr, k)
        f(q, ptr, k)
        tracemalloc.start()
        f(q, ptr, k)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < q.Q._data.nbytes // 4, peak
    np.testing.assert_array_equal(q.Q.numpy()[2 * b:3 * b], 1.0)
    assert int(ptr) == 3 * b


def test_write_helpers_fall_back_when_storage_cannot_take_it():
    from tensorlib.graph.passes.inplace import write_rows, write_setitem
    base = np.arange(12.0).reshape(3, 4)
    t = tl.tensor(base.copy())
    x = np.asfortranarray(t._data)
    t._data = x                                  # not C-contiguous: no flat view
    write_rows(t, x, np.array([1, 5]), np.array([-1.0, -5.0]))
    want = base.copy()
    want.reshape(-1)[[1, 5]] = [-1, -5]
    np.testing.assert_array_equal(t.numpy(), want)
    t2 = tl.tensor(base.copy())
    old = t2._data
    t2._data = old.copy()                        # storage replaced since the graph read it
    write_setitem(t2, old, np.zeros(4), (1,))
    want = base.copy()
    want[1] = 0
    np.testing.assert_array_equal(t2.numpy(), want)


def test_max_norm_renorm_write_does_not_block_onnx_export(tmp_path):
    """The renorm write is transient (the lookup recomputes it): an inference export of a
    model with Embedding(max_norm) works and matches eager; a real state write still refuses."""
    ort = pytest.importorskip("onnxruntime")
    tl.manual_seed(0)
    m = tl.nn.Sequential(tl.nn.Embedding(10, 3, max_norm=1.0), tl.nn.Linear(3, 2)).eval()
    with tl.no_grad():
        m[0].weight.mul_(4.0)
    x = tl.tensor([[1, 2, 3, 2]])
    path = str(tmp_path / "emb.onnx")
    tl.onnx.export(m, (x,), path)
    want = m(x).detach().numpy()
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # a training step also writes the weights: still refused, naming them
    opt = tl.optim.SGD(m.parameters(), lr=0.1)

    def step(ids):
        opt.zero_grad()
        loss = m(ids).sum()
        loss.backward()
        opt.step()
        return loss
    f = tl.function(step)
    f(x)
    with pytest.raises(tl.onnx.UnsupportedOpError, match="updates state"):
        tl.onnx.to_model(f.graphs[-1])
