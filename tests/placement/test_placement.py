"""Placement over devices: constraints, the greedy placer, partition with Send/Recv, and the
threaded runtime on virtual CPU devices (cpu:N), with CUDA where a GPU exists."""
from __future__ import annotations

import contextlib
import json
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from tensorlib.graph import Graph
from tensorlib.graph.placement import measure, place
from tensorlib.graph.placement.costs import node_cost

from placed_training import data_parallel_trains_like_eager, placed_step_trains_like_eager

DEVS = ["cpu:0", "cpu:1"]


def _arr(*shape, seed=0, dtype=np.float32):
    return tl.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def _towers(width=256):
    tl.manual_seed(0)
    a = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 8))
    b = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 8))
    return a, b


def _towers_graph(width: int, batch: int):
    """Two towers' sum, captured: (tower a, tower b, the input, the graph)."""
    a, b = _towers(width)
    x = _arr(batch, 64)
    with tl.capture(x) as g:
        y = a(x) + b(x)
    g.set_outputs(y)
    return a, b, x, g


def _partitions(g):
    plans = [p for p in g._plans.values() if hasattr(p, "partitions")]
    assert len(plans) == 1
    return plans[0].partitions


def test_independent_towers_go_to_two_devices_and_match_one_device():
    a, b, x, g = _towers_graph(1024, 32)
    ref = g.run({x: x}).numpy()
    p = place(g, DEVS)
    first, second = (n for n in g.nodes if n.op == "linear" and n.inputs[0].node.op ==
                     "placeholder")
    assert {first.device, second.device} == {"cpu", "cpu:1"}
    assert p.makespan < p.serial and len(p.transfers) == 1
    x2 = _arr(32, 64, seed=3)
    out = g.run({x: x2})
    np.testing.assert_allclose(out.numpy(), (a(x2) + b(x2)).detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(g.run({x: x}).numpy(), ref, rtol=1e-6)
    parts = _partitions(g)
    ops = {str(pt.device): [n.op for n in pt.graph.nodes] for pt in parts}
    assert ops["cpu:1"].count("send") + ops["cpu"].count("send") == 1
    assert ops["cpu:1"].count("recv") + ops["cpu"].count("recv") == 1
    text = "\n".join(str(pt.graph) for pt in parts)
    assert "send %" in text and "= recv <- cpu" in text


def test_a_chain_stays_on_one_device():
    x = _arr(16, 16)
    with tl.capture(x) as g:
        y = x.exp().tanh().sin().sum()
    g.set_outputs(y)
    p = place(g, DEVS)
    assert p.transfers == [] and len({n.device for n in g.nodes}) == 1
    assert not any(hasattr(pl, "partitions") for pl in g._plans.values())


def _pinned_towers(dev="cpu:1"):
    """Tower a pinned to ``dev`` by a with block, tower b free; returns the graph too."""
    a, b = _towers(32)
    x = _arr(8, 64)
    with tl.capture(x) as g:
        with tl.device(dev):
            ha = a(x)
        with tl.device("cpu"):
            hb = b(x)
        y = ha + hb
    g.set_outputs(y)
    return a, b, x, g, ha, hb, y


def test_with_device_during_capture_pins_and_pins_argument_overrides():
    a, b, x, g, h, _, y = _pinned_towers()
    assert {n.pin for n in g.nodes if n.op == "linear"} == {"cpu:1", "cpu"}
    place(g, DEVS)
    pinned = [n for n in g.nodes if n.pin == "cpu:1"]
    assert pinned and all(n.device == "cpu:1" for n in pinned)
    # eager semantics inside the block are unchanged: the ops ran on their inputs' device
    assert h.device == tl.device("cpu")
    np.testing.assert_allclose(g.run({x: x}).numpy(), (a(x) + b(x)).detach().numpy(),
                               rtol=1e-5)
    last = [n for n in g.nodes if n.op == "add"][-1]
    place(g, DEVS, pins={y: "cpu:1"})
    assert last.device == "cpu:1"
    # the pins are part of the saved graph
    doc = json.loads(g.to_json())
    assert sum(1 for n in doc["nodes"] if n.get("pin") == "cpu:1") == len(pinned)
    assert [n.pin for n in Graph.from_json(g.to_json()).nodes] == [n.pin for n in g.nodes]


def test_a_pin_that_cannot_be_honoured_warns_or_raises():
    x = _arr(4, 4)
    with tl.capture(x) as g:
        with tl.device("cpu:3"):
            y = x.exp()
    g.set_outputs(y)
    with pytest.warns(UserWarning, match=r"pinned to cpu:3, which is not among"):
        place(g, DEVS)
    with pytest.raises(ValueError, match=r"pinned to cpu:3"):
        place(g, DEVS, soft=False)
    if tl.distributed.current() is None:
        with pytest.raises(ValueError, match="no cluster is running"):
            place(g, ["cpu:0", "/worker:1/cpu:0"])
    if not tl.cuda.is_available():
        with pytest.raises(ValueError, match="cuda:0 is not available"):
            place(g, ["cpu:0", "cuda:0"])
    with pytest.raises(ValueError, match="at least one device"):
        place(g, [])


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_a_captured_training_step_placed_over_two_devices_trains_like_eager(opt):
    g = placed_step_trains_like_eager(
        lambda params: getattr(tl.optim, opt)(params, lr=0.05), "cpu:1", DEVS, steps=4,
        pins=lambda g: {n: "cpu" for n in g.nodes if n.op == "cross_entropy"})
    counts = g.placement.counts()
    assert set(counts) == {"cpu:0", "cpu:1"} and all(counts.values())
    # a variable, its .grad and the assigns that update them share a device
    by_owner: dict = {}
    for n in g.nodes:
        if n.op in ("variable", "assign"):
            by_owner.setdefault(id(g.bindings[n][0]), set()).add(n.device)
    assert all(len(d) == 1 for d in by_owner.values())


def test_random_draws_of_one_generator_share_a_device():
    gen = tl.Generator().manual_seed(5)
    x = _arr(8, 8)
    with tl.capture(x) as g:
        with tl.device("cpu:1"):
            a = (x + tl.randn(8, 8, generator=gen)).exp()
        b = (x * tl.rand(8, 8, generator=gen)).tanh()
        y = a + b
    g.set_outputs(y)
    place(g, DEVS)
    assert {n.device for n in g.nodes if n.op == "random"} == {"cpu:1"}
    gen.manual_seed(5)
    first = g.run({x: x}).numpy()
    gen.manual_seed(5)
    np.testing.assert_array_equal(g.run({x: x}).numpy(), first)


def test_placement_over_local_devices_needs_no_ray(monkeypatch):
    # the GPU machine had no Ray: every local placed step aborted at the commit gate,
    # whose remote wait imported ray even with no remote part
    import sys
    monkeypatch.setitem(sys.modules, "ray", None)     # `import ray` raises ImportError
    a, b, x, g = _towers_graph(1024, 32)
    ref = g.run({x: x}).numpy()
    place(g, DEVS)
    g.run({x: x})
    assert len(_partitions(g)) == 2
    np.testing.assert_allclose(g.run({x: x}).numpy(), ref, rtol=1e-5, atol=1e-6)


def test_an_error_on_one_device_stops_the_step_everywhere():
    a, b = tl.tensor(np.eye(3)), tl.tensor(np.eye(3))
    with tl.capture(a, b) as g:
        with tl.device("cpu:1"):
            c = tl.linalg.cholesky(b)
        with tl.device("cpu"):
            y = (a @ a) + c
    g.set_outputs(y)
    place(g, DEVS)
    with pytest.raises(ValueError, match="not positive definite") as info:
        g.run({0: np.eye(3), 1: -np.eye(3)})
    assert any("device cpu:1" in note for note in info.value.__notes__)
    # the next step starts clean
    np.testing.assert_allclose(g.run({0: np.eye(3), 1: 4 * np.eye(3)}).numpy(), 3 * np.eye(3))
    # and a failure on the device that waits for the other
    with tl.capture(a, b) as g2:
        with tl.device("cpu:1"):
            c = b.exp()
        with tl.device("cpu"):
            y = tl.linalg.cholesky(a) + c
    g2.set_outputs(y)
    place(g2, DEVS)
    with pytest.raises(ValueError, match="not positive definite"):
        g2.run({0: -np.eye(3), 1: np.eye(3)})


def test_fetching_one_tower_runs_only_what_it_needs():
    a, b, x, g, ha, hb, _ = _pinned_towers()
    place(g, DEVS)
    out = g.run({x: x}, fetches=[ha])
    np.testing.assert_allclose(out[0].numpy(), a(x).detach().numpy(), rtol=1e-5)
    # results come back on the device the eager code made them on, wherever they ran
    assert out[0].device == tl.device("cpu")
    both = g.run({x: x}, fetches=[ha, hb])
    np.testing.assert_allclose(both[1].numpy(), b(x).detach().numpy(), rtol=1e-5)
    plan = g._plans[((g.value(ha).id, g.value(hb).id), ())]
    assert sorted(str(pt.device) for pt in plan.partitions) == ["cpu", "cpu:1"]
    assert not any(n.op in ("send", "recv") for pt in plan.partitions for n in pt.graph.nodes)


def test_tl_function_with_devices_places_each_trace():
    a, b = _towers(32)

    @tl.function(devices=DEVS)
    def f(x):
        with tl.device("cpu:1"):
            h = a(x)
        return h + b(x)

    x = _arr(8, 64)
    with tl.no_grad():
        y1, y2 = f(x), f(x)
        ref = (a(x) + b(x)).numpy()
    np.testing.assert_allclose(y1.numpy(), ref, rtol=1e-5)
    np.testing.assert_allclose(y2.numpy(), ref, rtol=1e-5)
    (entry,) = [e for es in f._cache.values() for e in es]
    assert entry.graph.placement is not None
    assert set(entry.graph.placement.counts()) == {"cpu:0", "cpu:1"}


def test_a_placed_graph_serves_several_threads():
    a, b, x, g = _towers_graph(64, 16)
    place(g, DEVS)
    feeds = [_arr(16, 64, seed=s) for s in range(8)]
    want = [(a(f) + b(f)).detach().numpy() for f in feeds]
    got: dict = {}

    def work(i):
        for _ in range(5):
            got[i] = g.run({x: feeds[i]}).numpy()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        np.testing.assert_allclose(got[i], want[i], rtol=1e-5)


def test_the_cost_model_prices_matmul_and_takes_measured_times():
    x = _arr(64, 128)
    w = _arr(128, 32, seed=1)
    with tl.capture(x) as g:
        y = (x @ w).relu()
    g.set_outputs(y)
    mm = next(n for n in g.nodes if n.op == "matmul")
    flops, nbytes = node_cost(mm, none_dim=1)
    assert flops == 2 * 64 * 128 * 32
    assert nbytes == 4 * (64 * 128 + 128 * 32 + 64 * 32)
    times = measure(g, {x: x})
    assert {k[0] for k in times} == {n.id for n in g.nodes if n.op in ("matmul", "relu")}
    assert all(t > 0 for t in times.values())
    fake = {(n.id, "cpu"): 1.0 for n in g.nodes if n.op in ("matmul", "relu")}
    p = place(g, DEVS, measured=fake)
    assert p.makespan == pytest.approx(2.0) and p.serial == pytest.approx(2.0)


def test_every_op_with_a_cost_rule_prices_a_captured_model():
    tl.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    x = _arr(2, 3, 8, 8)
    with tl.capture(x) as g:
        loss = F.log_softmax(m(x), axis=-1).mean()
        loss.backward()
    g.set_outputs(loss)
    for n in g.nodes:
        fl, by = node_cost(n, none_dim=4)
        assert np.isfinite(fl) and np.isfinite(by) and fl >= 0 and by >= 0, n.op
    p = place(g, ["cpu:0", "cpu:1", "cpu:2"])
    assert p.makespan <= p.serial * 1.0001
    np.testing.assert_allclose(g.run({x: x}).numpy(), loss.detach().numpy(), rtol=1e-5)


_UNARY = ["exp", "tanh", "sin", "neg", "relu", "sigmoid"]
_BINARY = ["add", "mul", "sub", "maximum"]


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 100),
                                st.integers(0, 100), st.integers(0, 2)),
                      min_size=1, max_size=14),
       nfetch=st.integers(1, 3))
def test_any_device_assignment_runs_like_one_device(steps, nfetch):
    """Devices drawn at random per node (not by the placer): partition and runtime must
    give the single-device results, whatever crosses where, and never hang."""
    x = _arr(4, 5)
    with tl.capture(x) as g:
        vals = [x, x * 0.5]
        for binary, k, i, j, _ in steps:
            a, b = vals[i % len(vals)], vals[j % len(vals)]
            if binary:
                vals.append(getattr(tl, _BINARY[k % len(_BINARY)])(a, b))
            else:
                vals.append(getattr(tl, _UNARY[k % len(_UNARY)])(a))
    outs = vals[-nfetch:]
    g.set_outputs(*outs)
    fetches = list(g.outputs)
    ref = [t.numpy() for t in g.run({x: x}, fetches=fetches)]
    devs = ["cpu", "cpu:1", "cpu:2"]
    compute = [n for n in g.nodes if n.op not in ("placeholder", "constant")]
    for n, (_, _, _, _, d) in zip(compute, steps + [(0, 0, 0, 0, 1)] * len(compute)):
        n.device = devs[d]
    g.invalidate()
    got = g.run({x: x}, fetches=fetches)
    for r, t in zip(ref, got):
        np.testing.assert_allclose(t.numpy(), r, rtol=1e-6)


@pytest.mark.skipif(not tl.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_and_cuda_placement_moves_values_between_memories():
    a, b, x, g, *_ = _pinned_towers("cuda:0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        place(g, ["cpu", "cuda:0"])
    np.testing.assert_allclose(g.run({x: x}).numpy(), (a(x) + b(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_tl_function_honours_with_device_blocks_without_a_devices_list():
    @tl.function
    def f(x):
        with tl.device("cpu:1"):
            z = tl.ones(4, 4) * 2.0     # folded into a constant by the optimizer
            h = (x @ z).exp()
        return h.sum(0)

    x = _arr(3, 4)
    y = f(x)
    np.testing.assert_allclose(y.numpy(), np.exp(x.numpy() @ (2 * np.ones((4, 4)))).sum(0),
                               rtol=1e-5)
    (entry,) = [e for es in f._cache.values() for e in es]
    assert "cpu:1" in entry.graph.placement.counts()
    # eager code keeps torch's meaning: the block is the default device of new tensors
    with tl.device("cpu:1"):
        assert tl.ones(2).device == tl.device("cpu:1")


def test_a_variable_read_on_another_device_is_the_value_before_the_update():
    """The owner of a variable assigns to it at the end of its part while another device
    may still be computing with what it received: a send copies, so that device sees the
    value at the start of the step."""
    x = _arr(256, 256)
    w = _arr(256, 256, seed=1).requires_grad_()
    with tl.capture(x) as g:
        with tl.device("cpu:1"):
            h = x
            for _ in range(30):        # keeps cpu:1 busy while cpu finishes and assigns
                h = (h * 0.5).tanh()
            y = (h @ w).sum()
        with tl.no_grad():
            w.mul_(0.5)
    g.set_outputs(y)
    var = next(n for n in g.nodes if n.op == "variable")
    place(g, DEVS, pins={var: "cpu"})
    assert {n.device for n in g.nodes if n.op in ("variable", "assign")} == {"cpu"}
    assert next(n for n in g.nodes if n.op == "matmul").device == "cpu:1"
    hx = x.numpy()
    for _ in range(30):
        hx = np.tanh(hx * 0.5)
    for _ in range(3):
        before = w.detach().numpy().copy()
        got = g.run({x: x}).item()
        assert got == pytest.approx(float((hx @ before).sum()), rel=1e-4)
        np.testing.assert_allclose(w.detach().numpy(), before * 0.5)


def test_a_split_that_does_not_pay_for_its_threads_stays_on_one_device():
    _, _, _, g = _towers_graph(8, 2)
    p = place(g, DEVS)
    assert len({n.device for n in g.nodes}) == 1 and p.transfers == []
    assert p.makespan == pytest.approx(p.serial)


def test_an_input_written_in_place_waits_for_its_reader_on_another_device():
    """x.add_ on cpu while cpu:1 still reads x: the write waits for every device."""
    w = _arr(256, 256, seed=2) * 0.05

    def f(x):
        with tl.device("cpu:1"):
            h = x @ w
            for _ in range(10):
                h = (h @ w).tanh()
            late = h.sum() + x.sum()        # x read late, on cpu:1
        with tl.device("cpu"):
            x.add_(1.0)
        return late

    x0 = _arr(256, 256, seed=3).numpy()
    want_x = tl.tensor(x0.copy())
    want = f(want_x).item()
    fn = tl.function(f)
    for _ in range(3):
        x = tl.tensor(x0.copy())
        assert fn(x).item() == pytest.approx(want, rel=1e-5)
        np.testing.assert_allclose(x.numpy(), want_x.numpy())
    (entry,) = [e for es in fn._cache.values() for e in es]
    assert {n.device for n in entry.graph.nodes if n.op != "placeholder"} == {"cpu", "cpu:1"}


def test_a_failed_step_writes_nothing_on_any_device():
    emb = nn.Embedding(10, 4)
    b = tl.ones(4, 4)

    def f(idx):
        with tl.device("cpu:1"):
            e = emb(idx).sum()          # raises for an index out of range
        with tl.device("cpu"), tl.no_grad():
            b.add_(1.0)
        return e

    fn = tl.function(f, devices=DEVS)
    with tl.no_grad():
        fn(tl.tensor(np.array([1, 2])))
        before = b.numpy().copy()
        with pytest.raises(IndexError, match="indices must lie in"):
            fn(tl.tensor(np.array([1, 99])))
        np.testing.assert_array_equal(b.numpy(), before)
        fn(tl.tensor(np.array([3, 4])))
    np.testing.assert_array_equal(b.numpy(), before + 1)


def test_pins_survive_the_optimizer_passes():
    x = _arr(64, 64)

    def f(x):
        with tl.device("cpu:1"):
            a = x.exp().tanh()          # an elementwise chain: fused, still pinned
            s1 = x.sin()
        s2 = x.sin()                    # the same op outside the block: not merged by CSE
        return (x @ x) + a + s1 * s2

    fn = tl.function(f)
    with tl.no_grad():
        out = fn(x)
        want = (x @ x) + x.exp().tanh() + x.sin() * x.sin()
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-5)
    (entry,) = [e for es in fn._cache.values() for e in es]
    g = entry.graph
    assert any(n.op == "fused" and n.pin == "cpu:1" for n in g.nodes)
    assert any(n.op == "sin" and n.pin == "cpu:1" for n in g.nodes)


def test_batching_and_reorder_passes_keep_pins_and_do_not_merge_across_them():
    """The rewrites that build new nodes (per-step losses batched, matmul sums batched,
    relu after max_pool) keep each with-block's pin and merge only nodes that share one."""
    from tensorlib.graph import passes
    rng = np.random.default_rng(0)
    w, b = _arr(5, 8), _arr(5)
    hs = [_arr(4, 8) for _ in range(4)]
    ys = [tl.tensor(rng.integers(0, 5, 4)) for _ in range(4)]
    img = _arr(2, 3, 8, 8)
    a_s, b_s = [_arr(6, 3) for _ in range(4)], [_arr(6, 2) for _ in range(4)]
    feeds = [*hs, *ys, img, *a_s, *b_s]

    def where(t):             # steps 2 and 3 inside a with tl.device("cpu:1") block
        return tl.device("cpu:1") if t >= 2 else contextlib.nullcontext()
    with tl.no_grad(), tl.capture(*feeds) as g:
        losses, prods = [], []
        for t in range(4):
            with where(t):
                losses.append(F.cross_entropy(F.linear(hs[t], w, b), ys[t]))
                prods.append(a_s[t].T @ b_s[t])
        with tl.device("cpu:1"):
            pooled = F.max_pool2d(F.relu(img), 2)
        total, acc = losses[0], prods[0]
        for t in range(1, 4):
            total, acc = total + losses[t], acc + prods[t]
    g.set_outputs(total, pooled, acc)
    want = [o.numpy() for o in g.run(dict(enumerate(feeds)))]
    assert passes.batch_class_losses(g) == 4
    assert passes.relu_after_max_pool(g) == 1
    assert passes.batch_matmul_sums(g) == 1
    pins = {op: {n.pin for n in g.nodes if n.op == op}
            for op in ("linear", "max_pool2d", "relu", "matmul")}
    assert pins["linear"] == {None, "cpu:1"}        # one batched projection per block
    assert sum(n.op == "linear" for n in g.nodes) == 2
    assert pins["max_pool2d"] == pins["relu"] == {"cpu:1"}
    assert pins["matmul"] == {None, "cpu:1"}        # the pinned products stay apart
    for got, ref in zip(g.run(dict(enumerate(feeds))), want):
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_placing_a_traced_or_loaded_graph_afterwards_is_used_by_its_callers(tmp_path):
    tl.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    x = _arr(5, 8)
    f = tl.function(lambda x: m(x))
    with tl.no_grad():
        ref = m(x).numpy()
        f(x)
        g = f.get_graph(x)
        lin = [n for n in g.nodes if n.op == "linear"]
        place(g, DEVS, pins={lin[0]: "cpu:1", lin[1]: "cpu"})
        np.testing.assert_allclose(f(x).numpy(), ref, rtol=1e-5)
    (entry,) = [e for es in f._cache.values() for e in es]
    assert hasattr(entry.plan, "partitions")
    # saved with its placement; loaded, it runs placed, with gradients too (the eager path)
    tl.save_graph(g, tmp_path / "m.tlg")
    gm = tl.load_graph(tmp_path / "m.tlg")
    assert {n.device for n in gm.graph.nodes if n.op == "linear"} == {"cpu", "cpu:1"}
    # the placer's summary comes back too, equal to the one the placed graph had
    assert gm.graph.placement is not None
    assert gm.graph.placement.to_dict() == g.placement.to_dict()
    assert gm.graph.placement.counts() == g.placement.counts()
    with tl.no_grad():
        np.testing.assert_allclose(gm(x).numpy(), ref, rtol=1e-5)
    out = gm(x)
    assert out.device == tl.device("cpu")
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(reads=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1,
                      max_size=6),
       writer=st.integers(0, 2))
def test_random_devices_with_reads_and_in_place_writes_match_one_device(reads, writer):
    """Readers of a variable on random devices, its in-place update on another: every reader
    sees the value from before the write, and the write happens once."""
    w = tl.tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
    x = _arr(3, 4)
    devs = ["cpu", "cpu:1", "cpu:2"]
    with tl.capture(x) as g:
        outs = []
        for d, k in reads:
            with tl.device(devs[d]):
                outs.append((x * w + k).tanh().sum())
        with tl.device(devs[writer]), tl.no_grad():
            w.mul_(0.5)
        total = outs[0]
        for o in outs[1:]:
            total = total + o
    g.set_outputs(total)
    place(g, devs)
    before = w.numpy().copy()
    want = sum(float(np.tanh(x.numpy() * before + k).sum()) for _, k in reads)
    assert g.run({x: x}).item() == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(w.numpy(), before * 0.5)


def test_data_parallel_replicas_average_their_gradients_like_one_big_batch():
    dp = data_parallel_trains_like_eager(DEVS)
    counts = dp.placement.counts()
    assert counts["cpu:1"] > 0 and counts["cpu:0"] > counts["cpu:1"]   # update on the first
    assert {n.device for n in dp.nodes if n.op in ("variable", "assign")} == {"cpu"}


def test_data_parallel_averages_batch_statistics_and_refuses_what_it_cannot_split():
    tl.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    opt = tl.optim.SGD(m.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    x = tl.tensor(rng.standard_normal((12, 6)).astype(np.float32))
    y = tl.tensor(rng.integers(0, 3, 12))

    def step(xb, yb):
        opt.zero_grad()
        loss = F.cross_entropy(m(xb), yb)
        loss.backward()
        opt.step()
        return loss

    xs, ys = x[:4], y[:4]
    step(xs, ys)
    with tl.capture(xs, ys) as g:
        loss = step(xs, ys)
    g.set_outputs(loss)
    dp = tl.graph.data_parallel(g, ["cpu", "cpu:1", "cpu:2"])
    bn = m[1]
    before = bn.running_mean.numpy().copy()
    with tl.no_grad():
        h = m[0](x).numpy()         # the batch statistics come from the layer before
    dp.run({0: x, 1: y})
    # the shards' means, averaged: the whole batch's mean (equal shards)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.9 * before + 0.1 * h.mean(0),
                               rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked.item()) == 3      # once per step, not per replica
    with pytest.raises(ValueError, match="two or more distinct devices"):
        tl.graph.data_parallel(g, ["cpu"])
    with tl.no_grad(), tl.capture(x) as g2:
        out = m(x)
    g2.set_outputs(out)
    with pytest.raises(ValueError, match="writes no gradients"):
        tl.graph.data_parallel(g2, DEVS)


def test_data_parallel_clips_the_averaged_gradients_and_draws_per_replica():
    """Clipping reads the gradients after they were averaged (DDP's order), and a dropout
    mask is drawn by each replica, not shared."""
    rng = np.random.default_rng(0)
    x = tl.tensor(rng.standard_normal((16, 6)).astype(np.float32))
    y = tl.tensor(rng.integers(0, 3, 16))

    def make():
        tl.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
        return m, tl.optim.SGD(m.parameters(), lr=0.5)

    def step(m, o, xb, yb):
        o.zero_grad()
        loss = F.cross_entropy(m(xb), yb)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(m.parameters(), 0.05)
        o.step()
        return loss, norm

    (m1, o1), (m2, o2) = make(), make()
    for m, o in ((m1, o1), (m2, o2)):
        step(m, o, x[:8], y[:8])
    xs, ys = x[:8], y[:8]
    with tl.capture(xs, ys) as g:
        outs = step(m2, o2, xs, ys)
    g.set_outputs(*outs)
    step(m1, o1, xs, ys)
    dp = tl.graph.data_parallel(g, DEVS, combine={1: "first"})
    for _ in range(2):
        loss1, norm1 = step(m1, o1, x, y)
        loss2, norm2 = dp.run({0: x, 1: y})
        assert norm2.item() == pytest.approx(norm1.item(), rel=1e-5)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(p2.numpy(), p1.numpy(), rtol=1e-5, atol=1e-6)

    drop = nn.Dropout(0.5)
    w = tl.ones(6, 6, requires_grad=True)
    sgd = tl.optim.SGD([w], lr=0.0)
    same = tl.tensor(np.ones((4, 6), np.float32))
    with tl.capture(same) as g2:
        sgd.zero_grad()
        out = drop(same @ w)
        out.sum().backward()
        sgd.step()
    g2.set_outputs(out)
    dp2 = tl.graph.data_parallel(g2, DEVS)
    both = dp2.run({0: np.ones((8, 6), np.float32)}).numpy()
    assert both.shape == (8, 6) and not np.array_equal(both[:4], both[4:])


def test_data_parallel_shard_and_combine_arguments():
    w = tl.ones(3, requires_grad=True)
    sgd = tl.optim.SGD([w], lr=0.1)
    x, scale = tl.tensor(np.arange(6, dtype=np.float32).reshape(2, 3)), tl.tensor([2.0])
    with tl.capture(x, scale) as g:
        sgd.zero_grad()
        per_row = (x * w * scale).sum(1)
        loss = per_row.mean()
        loss.backward()
        sgd.step()
        count = (per_row > 5).sum()
    g.set_outputs(loss, per_row, count)
    with pytest.raises(ValueError, match="shard names input 2, the graph has 2"):
        tl.graph.data_parallel(g, DEVS, shard=[0, 2])
    with pytest.raises(ValueError, match="combine"):
        tl.graph.data_parallel(g, DEVS, combine={0: "max"})
    dp = tl.graph.data_parallel(g, DEVS, shard=[0], combine={1: "concat"})
    assert [v.shape for v in dp.inputs] == [(4, 3), (1,)]
    xx = np.arange(12, dtype=np.float32).reshape(4, 3)
    want = 2 * (xx * w.detach().numpy()).sum(1)     # the captured step already moved w
    loss, rows, count = dp.run({0: xx, 1: np.array([2.0], np.float32)})
    np.testing.assert_allclose(rows.numpy(), want, rtol=1e-6)
    assert loss.item() == pytest.approx(want.mean())
    assert count.item() == int((want > 5).sum())


def test_inputs_never_read_are_reported_by_capture_and_data_parallel():
    x = _arr(8, 4)
    w = tl.ones(4, requires_grad=True)
    sgd = tl.optim.SGD([w], lr=0.1)
    with pytest.warns(UserWarning, match=r"input 0 \(%x\) is never read"):
        with tl.capture(x[:4]) as g:        # the block reads another slice: a new tensor
            sgd.zero_grad()
            loss = (x[:4] * w).sum(1).mean()
            loss.backward()
            sgd.step()
    g.set_outputs(loss)
    with pytest.raises(ValueError, match="no node of the step reads input %x"):
        tl.graph.data_parallel(g, DEVS)


def test_placement_reports_devices_by_the_names_given_and_warns_once_for_unmet_pins():
    a, b = _towers(1024)
    x = _arr(32, 64)
    with tl.capture(x) as g:
        with tl.device("cpu:7"):
            h = a(x)
        y = h + b(x)
    g.set_outputs(y)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        p = place(g, DEVS)
    unmet = [w for w in seen if "pinned to cpu:7" in str(w.message)]
    assert len(unmet) == 1 and "node(s) (" in str(unmet[0].message)
    assert unmet[0].filename == __file__
    assert set(p.counts()) == {"cpu:0", "cpu:1"} and p.devices == DEVS
    assert set(p.assignment.values()) <= {"cpu:0", "cpu:1"}


def test_data_parallel_sums_scalars_made_by_a_sum():
    w = tl.ones(3, requires_grad=True)
    sgd = tl.optim.SGD([w], lr=0.0)
    x = tl.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    with tl.capture(x) as g:
        sgd.zero_grad()
        rows = (x * w).sum(1)
        loss = rows.mean()
        loss.backward()
        sgd.step()
        big = (rows > 5).float().sum()      # a float count: summed over replicas
    g.set_outputs(loss, big)
    dp = tl.graph.data_parallel(g, DEVS)
    xx = np.arange(12, dtype=np.float32).reshape(4, 3)
    loss, big = dp.run({0: xx})
    assert big.item() == float((xx.sum(1) > 5).sum()) and loss.item() == xx.sum(1).mean()


@pytest.mark.skipif(not tl.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_cuda_block_inside_tl_function_keeps_its_eager_meaning():
    """Only CPU blocks leave creation in host memory while tracing; a GPU block creates on
    the GPU as in eager code (torch's meaning), so mixing with GPU inputs works."""
    @tl.function
    def f(x):
        with tl.device("cuda"):
            z = tl.ones(3) * 2.0
        return x + z

    x = tl.ones(3, device="cuda")
    with tl.no_grad():
        y = f(x)
    assert y.device.type == "cuda"
    np.testing.assert_allclose(tl.tensor(y.numpy()).numpy(), [3.0, 3.0, 3.0])


def test_a_cpu_block_mixes_with_inputs_on_its_own_device_while_tracing():
    """Inside tl.function, a with tl.device("cpu:1") block pins; creations stay in host
    memory and meet inputs that already live on cpu:1 (as the eager code does)."""
    def f(x):
        with tl.device("cpu:1"):
            return (x * tl.arange(3) + tl.ones(3)).sum()

    x1 = tl.ones(3, device="cpu:1")
    want = f(x1)
    got = tl.function(f)(x1)
    assert got.item() == want.item() == 6.0 and got.device == want.device


def test_results_come_back_on_the_traced_device_after_optimize_and_data_parallel():
    _, _, x, g = _towers_graph(64, 4)
    place(g, ["cpu:1", "cpu:2"])
    g.optimize()            # rebuilds nodes (fusion): the traced device goes with the values
    assert g.run({x: x}).device == tl.device("cpu")
    w = tl.ones(3, requires_grad=True)
    sgd = tl.optim.SGD([w], lr=0.1)
    xs = tl.ones(2, 3)
    with tl.capture(xs) as step:
        sgd.zero_grad()
        loss = (xs * w).sum(1).mean()
        loss.backward()
        sgd.step()
    step.set_outputs(loss)
    dp = tl.graph.data_parallel(step, ["cpu:1", "cpu:2"])
    out = dp.run({0: np.ones((4, 3), np.float32)})
    assert out.device == tl.device("cpu")
    assert (out + tl.tensor(1.0)).item() == pytest.approx(out.item() + 1.0)


def test_an_optimizer_state_dict_is_a_snapshot_of_tensor_hyperparameters():
    m = nn.Linear(3, 2)
    opt = tl.optim.Adam(m.parameters(), lr=tl.tensor(0.01), betas=(tl.tensor(0.9), 0.999))
    saved = opt.state_dict()
    betas = opt.param_groups[0]["betas"]
    betas[0].fill_(0.3)
    opt.param_groups[0]["lr"].fill_(0.5)
    assert float(saved["param_groups"][0]["betas"][0]) == pytest.approx(0.9)
    opt.load_state_dict(saved)
    # restored in place: a captured step holding these tensors reads the restored values
    assert opt.param_groups[0]["betas"] is betas and float(betas[0]) == pytest.approx(0.9)
    assert float(opt.param_groups[0]["lr"]) == pytest.approx(0.01)


def test_random_ops_pinned_in_two_towers_place_with_a_warning():
    """Dropout in two pinned blocks shares one random stream: the soft-pin contract puts
    the stream's nodes on one device (a warning) instead of refusing (a capture trial);
    soft=False still raises."""
    import tensorlib.nn.functional as F

    def f(x):
        with tl.device("cpu:0"):
            a = F.dropout(x, 0.5, training=True)
        with tl.device("cpu:1"):
            b = F.dropout(x, 0.5, training=True)
        return a + b
    x = tl.ones(64)
    tl.manual_seed(3)
    want = f(x).numpy()
    with pytest.warns(UserWarning, match="random stream"):
        g = tl.function(f, devices=["cpu:0", "cpu:1"])
        tl.manual_seed(3)
        got = g(x).numpy()
    np.testing.assert_array_equal(got, want)
    with tl.capture(x) as cg:
        y = f(x)
    cg.set_outputs(y)
    with pytest.raises(ValueError, match="random stream 'random'"):
        tl.graph.place(cg, ["cpu:0", "cpu:1"], soft=False)
