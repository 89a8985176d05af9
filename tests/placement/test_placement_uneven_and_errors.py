"""Data-parallel graphs on uneven batches (torch.chunk's split, gradients weighted by each
replica's share), errors that name the failing node of a placed graph (locally and from Ray
workers), nn.DataParallel with CPU device ids, pins of modules, and drawings of placed graphs."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from tensorlib.graph import viz
from tensorlib.graph.placement.runtime import RemoteTraceback, unwrap_remote

torch = pytest.importorskip("torch")

DEVS = ["cpu:0", "cpu:1", "cpu:2"]


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((6, 5)), rng.standard_normal(6),
            rng.standard_normal((3, 6)), rng.standard_normal(3)]


def _models():
    ws = _weights()
    m = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    tm = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(),
                             torch.nn.Linear(6, 3)).double()
    with tl.no_grad(), torch.no_grad():
        for p, tp, w in zip(m.parameters(), tm.parameters(), ws):
            p.copy_(tl.tensor(w))
            tp.copy_(torch.tensor(w))
    return m, tm


def _dp_step(devices=DEVS, dynamic=True):
    """A data-parallel SGD-momentum step (captured warm, at 4 rows) and torch's model."""
    m, tm = _models()
    opt = tl.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    x = tl.tensor(np.random.default_rng(1).standard_normal((4, 5)))
    y = tl.tensor(np.arange(4) % 3)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss

    def tstep(x, y):
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tm(torch.tensor(x)), torch.tensor(y))
        loss.backward()
        topt.step()
        return loss.item()

    step(x, y)
    tstep(x.numpy(), y.numpy())
    shapes = [(None, 5), (None,)] if dynamic else None
    with tl.capture(x, y, input_shapes=shapes) as g:
        loss = step(x, y)
    g.set_outputs(loss)
    tstep(x.numpy(), y.numpy())
    return tl.graph.data_parallel(g, devices), m, tm, tstep


def _batch(b, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((b, 5)), rng.integers(0, 3, b)


def _close_to_torch(m, tm):
    for p, tp in zip(m.parameters(), tm.parameters()):
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-12)


# --- uneven batches -------------------------------------------------------------------------
def test_uneven_batches_train_like_torch_full_batch_steps():
    dp, m, tm, tstep = _dp_step()
    # 9 = 3+3+3, 7 = 3+3+1, 4 = 2+2 (two replicas), 5 = 2+2+1, 1 (one replica), 2 = 1+1
    for i, b in enumerate([9, 7, 4, 5, 1, 2, 16, 7]):
        xb, yb = _batch(b, i)
        got = dp.run({0: tl.tensor(xb), 1: tl.tensor(yb)}).item()
        want = tstep(xb, yb)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), b
        _close_to_torch(m, tm)


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 13), st.integers(2, 4))
def test_any_batch_size_equals_the_full_batch_step(b, k):
    dp, m, tm, tstep = _dp_step([f"cpu:{i}" for i in range(k)])
    xb, yb = _batch(b, b)
    assert dp.run({0: tl.tensor(xb), 1: tl.tensor(yb)}).item() == pytest.approx(
        tstep(xb, yb), rel=1e-12)
    _close_to_torch(m, tm)


def test_concatenated_outputs_follow_the_uneven_split():
    m, _ = _models()
    opt = tl.optim.SGD(m.parameters(), lr=0.0)
    x = tl.tensor(np.random.default_rng(1).standard_normal((4, 5)))
    y = tl.tensor(np.arange(4) % 3)
    opt.zero_grad()
    with tl.capture(x, y, input_shapes=[(None, 5), (None,)]) as g:
        logits = m(x)
        F.cross_entropy(logits, y).backward()
        opt.step()
    g.set_outputs(logits)
    dp = tl.graph.data_parallel(g, DEVS)
    xb, yb = _batch(7, 3)
    out = dp.run({0: tl.tensor(xb), 1: tl.tensor(yb)})
    with tl.no_grad():
        np.testing.assert_allclose(out.numpy(), m(tl.tensor(xb)).numpy(), rtol=1e-12)


def test_static_capture_keeps_the_exact_batch_and_says_how_to_take_any():
    dp, *_ = _dp_step(dynamic=False)
    xb, yb = _batch(7, 0)
    with pytest.raises(ValueError, match=r"exactly.*input_shapes"):
        dp.run({0: tl.tensor(xb), 1: tl.tensor(yb)})
    xb, yb = _batch(12, 0)
    dp.run({0: tl.tensor(xb), 1: tl.tensor(yb)})


def test_uneven_batch_errors():
    dp, *_ = _dp_step()
    xb, yb = _batch(7, 0)
    with pytest.raises(ValueError, match="same batch size"):
        dp.run({0: tl.tensor(xb), 1: tl.tensor(yb[:5])})
    with pytest.raises(ValueError, match="empty"):
        dp.run({0: tl.tensor(xb[:0]), 1: tl.tensor(yb[:0])})
    with pytest.raises(ValueError, match="targets"):
        dp.run({0: tl.tensor(xb[:1]), 1: tl.tensor(yb[:1])}, targets=[])


# --- errors name the node ---------------------------------------------------------------------
def _failing_graph():
    a = tl.eye(3) * 2.0
    b = tl.randn(3, 3)
    with tl.no_grad(), tl.capture(a, b) as g:
        h0 = b @ b
        with tl.device("cpu:1"):
            chol = tl.linalg.cholesky(a)
        out = chol.sum() + h0.sum()
    g.set_outputs(out)
    return g, a, b, h0, out


def test_a_failing_node_is_named_with_its_device():
    g, a, b, h0, out = _failing_graph()
    tl.graph.place(g, ["cpu:0", "cpu:1"], pins={h0: "cpu:0", out: "cpu:0"}, soft=False)
    with pytest.raises(Exception, match="not positive definite") as info:
        g.run({a: -tl.eye(3), b: b})
    note = " ".join(getattr(info.value, "__notes__", []))
    assert "node %3 = cholesky" in note and "device cpu:1" in note, note
    with pytest.raises(RuntimeError):
        torch.linalg.cholesky(-torch.eye(3))      # torch refuses it too
    assert g.run({a: a, b: b}).item() == pytest.approx(
        float(np.linalg.cholesky(2 * np.eye(3)).sum() + (b.numpy() @ b.numpy()).sum()),
        rel=1e-5)


def test_ray_task_errors_are_unwrapped_to_the_original_exception():
    class RayTaskError(RuntimeError):
        def __init__(self, cause):
            super().__init__("\x1b[36mray::Worker.run()\x1b[39m (pid=1, actor_id=ab12) boom")
            self.cause = cause
            self.traceback_str = "\x1b[36mray::Worker.run()\x1b[39m\nTraceback: ValueError: x"

    cause = ValueError("cholesky: matrix is not positive definite")
    err = unwrap_remote(RayTaskError(cause))
    assert err is cause and str(err) == "cholesky: matrix is not positive definite"
    assert isinstance(err.__cause__, RemoteTraceback)
    assert "\x1b" not in str(err.__cause__) and "ray::Worker.run()" in err.remote_traceback
    other = KeyError("k")
    assert unwrap_remote(other) is other


def test_ray_worker_failure_names_node_and_type():
    pytest.importorskip("ray")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.distributed.init(num_workers=1, num_cpus=1)
    try:
        a = tl.eye(3) * 2.0
        b = tl.randn(3, 3)
        with tl.no_grad(), tl.capture(a, b) as g:
            h0 = b @ b
            with tl.device("/worker:0/cpu:0"):
                chol = tl.linalg.cholesky(a)
            out = chol.sum() + h0.sum()
        g.set_outputs(out)
        tl.graph.place(g, ["cpu", "/worker:0/cpu:0"], pins={h0: "cpu", out: "cpu"},
                       soft=False)
        from tensorlib.ops.matrix import LinAlgError
        with pytest.raises(LinAlgError) as info:
            g.run({a: -tl.eye(3), b: b})
        assert "\x1b" not in str(info.value) and "actor_id" not in str(info.value)
        note = " ".join(getattr(info.value, "__notes__", []))
        assert "cholesky" in note and "/worker:0/cpu:0" in note, note
        assert isinstance(info.value.__cause__, RemoteTraceback)
    finally:
        tl.distributed.shutdown()


# --- nn.DataParallel, pins, drawings ------------------------------------------------------------
def test_data_parallel_module_with_cpu_ids_matches_torch_and_warns():
    from tensorlib import cuda
    if cuda.is_available():
        pytest.skip("CPU-only behaviour")
    m, tm = _models()
    with pytest.warns(UserWarning, match="one device"):
        dp = nn.DataParallel(m, device_ids=["cpu:0", "cpu:1"])
    tdp = torch.nn.DataParallel(tm, device_ids=["cpu:0", "cpu:1"])
    assert dp.device_ids == tdp.device_ids == []
    x = np.random.default_rng(0).standard_normal((3, 5))
    xt = torch.tensor(x, requires_grad=True)
    xl = tl.tensor(x, requires_grad=True)
    dp(xl).sum().backward()
    tdp(xt).sum().backward()
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.DataParallel(m, device_ids=[0])


def test_pins_of_modules_place_their_nodes_and_foreign_keys_say_what_pins_accept():
    m = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    x = tl.randn(2, 4)
    with tl.no_grad(), tl.capture(x) as g:
        o = m(x)
    g.set_outputs(o)
    tl.graph.place(g, ["cpu:0", "cpu:1"], pins={m[0]: "cpu:1"}, soft=False)
    mods = g.node_modules
    ops = [n for n in g.nodes if n.op not in ("placeholder", "variable", "constant",
                                              "send", "recv")]
    first = [n for n in ops if mods.get(n.id) == "0"]
    assert first and all(n.device == "cpu:1" for n in first)
    with pytest.raises(ValueError, match="pins accept"):
        tl.graph.place(g, ["cpu:0", "cpu:1"], pins={"nope": "cpu:1"})
    with pytest.raises(ValueError, match="pins accept"):
        tl.graph.place(g, ["cpu:0", "cpu:1"], pins={tl.randn(2): "cpu:1"})


def test_drawings_show_devices_and_send_recv():
    g, a, b, h0, out = _failing_graph()
    tl.graph.place(g, ["cpu:0", "cpu:1"], pins={h0: "cpu:0", out: "cpu:0"}, soft=False)
    dot = viz.to_dot(g)
    assert 'label="cpu:1"' in dot and "cluster_" in dot and "send/recv" in dot
    parts = viz.device_subgraphs(g)
    assert set(parts) == {"cpu", "cpu:1"}
    assert [n.op for n in parts["cpu:1"].nodes if n.op in ("send", "recv")] == ["send"]
    assert [n.op for n in parts["cpu"].nodes if n.op in ("send", "recv")] == ["recv"]
    assert "send\\nto cpu" in viz.to_dot(parts["cpu:1"])
    unplaced = _failing_graph()[0]
    assert "cluster_" not in viz.to_dot(unplaced) and "send/recv" not in viz.to_dot(unplaced)


def test_loaded_graph_moved_to_one_device_and_run_feeds(tmp_path):
    lin = tl.nn.Linear(3, 2)
    f = tl.function(lambda x: lin(x).relu(), devices=["cpu:0", "cpu:1"])
    x = tl.randn(4, 3)
    with tl.no_grad():
        want = f(x)
    tl.save_graph(f, tmp_path / "p.tlg")
    g = tl.load_graph(tmp_path / "p.tlg", device="cpu")
    assert g.graph.placement is None
    assert {n.device for n in g.graph.nodes} == {"cpu"}
    np.testing.assert_allclose(g(x).numpy(), want.numpy(), rtol=1e-6)
    with pytest.raises(TypeError, match="GraphModule.run takes a dict of feeds"):
        g.run(x)
