"""Remote workers on a local Ray cluster: placed graphs whose devices include
/worker:K/cpu:0, run in worker processes with Send/Recv through Ray's object store."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn as nn
from tensorlib.graph.placement import place

from placed_training import data_parallel_trains_like_eager, placed_step_trains_like_eager

ray = pytest.importorskip("ray")

W0, W1 = "/worker:0/cpu:0", "/worker:1/cpu:0"


@pytest.fixture(scope="module")
def cluster():
    c = tl.distributed.init(num_workers=2, num_cpus=2)
    yield c
    tl.distributed.shutdown()


def _towers(k=3, width=32):
    tl.manual_seed(0)
    return [nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 8))
            for _ in range(k)]


def _run(g, feeds, timeout=60):
    """g.run in a thread: a hang fails the test instead of stopping the suite."""
    box: dict = {}

    def go():
        try:
            box["out"] = g.run(feeds)
        except BaseException as e:   # noqa: BLE001 - re-raised below
            box["err"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the placed step hung"
    if "err" in box:
        raise box["err"]
    return box["out"]


def test_towers_on_two_workers_and_the_driver_match_eager(cluster):
    a, b, c = _towers()
    x = tl.randn(8, 64)
    with tl.no_grad(), tl.capture(x) as g:
        with tl.device(W0):
            ha = a(x)
        with tl.device(W1):
            hb = b(x)
        with tl.device("cpu"):
            y = ha + hb + c(x)
    g.set_outputs(y)
    p = place(g, ["cpu", W0, W1])
    assert {p.assignment[n.id] for n in g.nodes if n.op == "linear"} == {"cpu", W0, W1}
    # variables stay in this process: a worker receives the values it reads
    assert {n.device for n in g.nodes if n.op == "variable"} == {"cpu"}
    pids = set(ray.get([w.pid.remote() for w in cluster.workers]))
    assert len(pids) == 2
    for seed in range(3):
        xs = tl.tensor(np.random.default_rng(seed).standard_normal((8, 64)).astype(np.float32))
        with tl.no_grad():
            want = (a(xs) + b(xs) + c(xs)).numpy()
        np.testing.assert_allclose(_run(g, {x: xs}).numpy(), want, rtol=1e-6)


def test_a_training_step_with_its_forward_on_a_worker_trains_like_eager(cluster):
    g = placed_step_trains_like_eager(
        lambda params: tl.optim.SGD(params, lr=0.1, momentum=0.9), W0, ["cpu", W0], run=_run)
    assert any(n.device == W0 for n in g.nodes)


def test_an_error_on_a_worker_or_on_the_driver_stops_the_step_everywhere(cluster):
    a, b = tl.tensor(np.eye(3)), tl.tensor(np.eye(3))
    with tl.capture(a, b) as g:
        with tl.device(W0):
            c = tl.linalg.cholesky(b)
        with tl.device("cpu"):
            y = (a @ a) + c
    g.set_outputs(y)
    place(g, ["cpu", W0])
    with pytest.raises(ValueError, match="not positive definite") as info:
        _run(g, {0: np.eye(3), 1: -np.eye(3)})
    assert any(W0 in note for note in info.value.__notes__)
    np.testing.assert_allclose(_run(g, {0: np.eye(3), 1: 4 * np.eye(3)}).numpy(),
                               3 * np.eye(3))
    # the driver fails while the worker waits for the driver's value
    with tl.capture(a, b) as g2:
        with tl.device("cpu"):
            c = tl.linalg.cholesky(a)
        with tl.device(W0):
            y = (c @ b).exp()
    g2.set_outputs(y)
    place(g2, ["cpu", W0])
    with pytest.raises(ValueError, match="not positive definite"):
        _run(g2, {0: -np.eye(3), 1: np.eye(3)})
    np.testing.assert_allclose(_run(g2, {0: np.eye(3), 1: np.eye(3)}).numpy(),
                               np.exp(np.eye(3)))


def test_random_draws_stay_in_the_driver_and_workers_must_exist(cluster):
    x = tl.randn(4, 4)
    with tl.no_grad(), tl.capture(x) as g:
        with tl.device(W0):
            y = (x + tl.randn(4, 4)).exp()
    g.set_outputs(y)
    with pytest.warns(UserWarning, match="cannot run random there"):
        place(g, ["cpu", W0])
    assert next(n for n in g.nodes if n.op == "random").device == "cpu"
    assert _run(g, {x: x}).shape == (4, 4)
    with pytest.raises(ValueError, match="the cluster has 2 workers"):
        place(g, ["cpu", "/worker:5/cpu:0"])


def test_data_parallel_over_the_driver_and_two_workers_trains_like_eager(cluster):
    dp = data_parallel_trains_like_eager(["cpu", W0, W1], run=_run)
    assert set(dp.placement.counts()) == {"cpu", W0, W1}
    assert all(dp.placement.counts().values())


def test_data_parallel_with_every_replica_on_a_worker(cluster):
    with pytest.raises(ValueError, match="stay in this process, so give a local device"):
        data_parallel_trains_like_eager([W0, W1], run=_run, steps=1)
    dp = data_parallel_trains_like_eager([W0, W1], run=_run, steps=2, home="cpu")
    counts = dp.placement.counts()
    assert counts[W0] > 0 and counts[W1] > 0 and counts["cpu"] > 0
    assert {n.device for n in dp.nodes if n.op in ("variable", "assign")} == {"cpu"}


# last: it replaces the module's cluster
def test_a_placed_graph_follows_the_cluster_through_a_restart():
    """Runs on its own cluster (after the module's): shut down, the graph says so; a new
    cluster, the graph loads itself into it."""
    tl.distributed.init(num_workers=1, num_cpus=2)
    try:
        x = tl.randn(4, 4)
        with tl.no_grad(), tl.capture(x) as g:
            with tl.device(W0):
                h = x.exp()
            with tl.device("cpu"):
                y = h + 1
        g.set_outputs(y)
        place(g, ["cpu", W0])
        want = np.exp(x.numpy()) + 1
        np.testing.assert_allclose(_run(g, {x: x}).numpy(), want, rtol=1e-6)
        tl.distributed.shutdown()
        with pytest.raises(RuntimeError, match="the cluster was shut down"):
            g.run({x: x})
        tl.distributed.init(num_workers=1, num_cpus=2)
        np.testing.assert_allclose(_run(g, {x: x}).numpy(), want, rtol=1e-6)
        # a worker that dies: the step fails (it does not hang), and so do later ones
        ray.kill(tl.distributed.current().workers[0])
        for _ in range(2):
            with pytest.raises(Exception, match="(?i)actor|died|worker"):
                _run(g, {x: x})
    finally:
        tl.distributed.shutdown()
