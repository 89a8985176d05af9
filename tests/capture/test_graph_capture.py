"""Graph capture: IR, tl.capture, tl.function, executor, guards and the known footguns."""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from tensorlib.graph import CaptureError, Graph


def _arr(*shape, seed=0):
    return tl.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


# --- IR and tl.capture -------------------------------------------------------------------
def test_capture_records_ops_with_types_and_runs_with_new_feeds():
    x, w = _arr(4, 3), _arr(3, 2, seed=1).requires_grad_()
    with tl.capture(x) as g:
        y = (x @ w).tanh() * 2.0 + 1.0
    g.set_outputs(y)
    ops = [n.op for n in g.nodes]
    assert ops[:4] == ["placeholder", "variable", "matmul", "tanh"]
    assert g.outputs[0].shape == (4, 2) and g.outputs[0].dtype == np.float32
    assert all(n.device == "cpu" for n in g.nodes)
    x2 = _arr(4, 3, seed=5)
    np.testing.assert_allclose(g.run({x: x2}).numpy(),
                               ((x2 @ w).tanh() * 2 + 1).detach().numpy(), rtol=1e-6)
    # feeds by name and by index, NumPy feeds
    np.testing.assert_allclose(g.run({"x": x2.numpy()}).numpy(), g.run({0: x2}).numpy())


def test_listing_is_readable():
    x = _arr(2, 3)
    with tl.capture(x) as g:
        y = x.exp().sum(axis=1)
    g.set_outputs(y)
    text = str(g)
    assert text.splitlines()[0] == "graph(%x:f32[2,3]) {"
    assert "exp %x" in text and "sum[axis=(1,), keepdims=False] %1" in text
    assert text.rstrip().endswith("}")


def test_json_round_trip_keeps_structure_and_attrs():
    x = _arr(4, 6)
    with tl.capture(x) as g:
        y = x[1:3, ::2].reshape(-1) + x[np.array([0, 2])].sum()
    g.set_outputs(y)
    doc = json.loads(g.to_json())
    assert doc["format"] == "tensorlib.graph"
    g2 = Graph.from_json(g.to_json())
    assert [n.op for n in g2.nodes] == [n.op for n in g.nodes]
    assert [n.attrs for n in g2.nodes if n.op == "slice"][0]["index"] == \
        [n.attrs for n in g.nodes if n.op == "slice"][0]["index"]
    np.testing.assert_allclose(g2.run({0: x.numpy()}).numpy(), y.numpy())


def test_partial_execution_runs_only_what_fetches_need():
    x, z = _arr(3), _arr(3, seed=1)
    with tl.capture(x, z) as g:
        a = x * 2.0
        b = z.exp()
    # fetching a needs only x: z is not fed and not needed
    assert np.allclose(g.run({"x0": x}, fetches=a).numpy(), x.numpy() * 2)
    with pytest.raises(ValueError, match="must be fed"):
        g.run({"x0": x}, fetches=b)


def test_feed_shape_and_dtype_checked():
    x = _arr(3, 2)
    with tl.capture(x) as g:
        y = x * 3.0
    g.set_outputs(y)
    with pytest.raises(ValueError, match="shape"):
        g.run({x: np.zeros((2, 2), np.float32)})
    with pytest.raises(TypeError, match="dtype"):
        g.run({x: tl.zeros(3, 2, dtype=tl.float64)})


def test_variables_are_shared_with_eager_both_ways():
    x = _arr(2, 3)
    w = tl.ones(3, 3, requires_grad=True)
    with tl.capture(x) as g:
        with tl.no_grad():
            w += 1.0           # the graph updates the variable
        y = x @ w
    g.set_outputs(y)
    assert [n.op for n in g.nodes].count("assign") == 1
    assert g.assigns[0].control, "the assign waits for the readers of the variable"
    with tl.no_grad():
        w.fill_(5.0)           # eager update seen by the graph
    out = g.run({x: x})        # outputs and the assigns
    np.testing.assert_allclose(out.numpy(), x.numpy() @ np.full((3, 3), 6, np.float32),
                               rtol=1e-6)
    assert np.allclose(w.numpy(), 6.0)     # the graph's update seen by eager code
    g.run({x: x}, fetches=g.assigns)
    assert np.allclose(w.numpy(), 7.0)
    g.run({x: x}, fetches=y)   # fetching y alone does not update w
    assert np.allclose(w.numpy(), 7.0)


def test_svg_or_clear_message(monkeypatch):
    x = _arr(2)
    with tl.capture(x) as g:
        y = x.relu()
    g.set_outputs(y)
    assert "digraph" in g.to_dot()
    if shutil.which("dot") is not None:
        assert "<svg" in g._repr_svg_()
    # without Graphviz: Jupyter's hook gives None (the notebook shows the text form instead
    # of failing the cell), and asking for the picture explains what to install
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert g._repr_svg_() is None
    from tensorlib.graph import viz
    with pytest.raises(RuntimeError, match="Graphviz 'dot' program"):
        viz.to_svg(g)


def test_random_draws_are_nodes_not_frozen_constants():
    x = _arr(1000)
    with tl.capture(x) as g:
        y = F.dropout(x, 0.5)
    g.set_outputs(y)
    assert "random" in [n.op for n in g.nodes]
    a, b = g.run({x: x}).numpy(), g.run({x: x}).numpy()
    assert not np.array_equal(a == 0, b == 0)


# --- tl.function ----------------------------------------------------------------------------
def test_function_traces_once_and_replays():
    @tl.function
    def f(x, y):
        return (x * y).sum(axis=0), x - y

    a, b = _arr(3, 2), _arr(3, 2, seed=1)
    for seed in range(3):
        a2, b2 = _arr(3, 2, seed=seed), _arr(3, 2, seed=seed + 10)
        s, d = f(a2, b2)
        np.testing.assert_allclose(s.numpy(), (a2.numpy() * b2.numpy()).sum(0), rtol=1e-6)
        np.testing.assert_allclose(d.numpy(), a2.numpy() - b2.numpy())
    assert f.trace_count == 1
    f(a[:2], b[:2])                    # new shape: retrace
    assert f.trace_count == 2 and "shape" in f.retrace_reasons[-1]


def test_python_scalar_arguments_are_part_of_the_signature():
    @tl.function
    def f(x, k):
        return x * k

    x = _arr(3)
    assert np.allclose(f(x, 2.0).numpy(), x.numpy() * 2)
    assert np.allclose(f(x, 3.0).numpy(), x.numpy() * 3)
    assert f.trace_count == 2 and "2.0 to 3.0" in f.retrace_reasons[-1]


def test_retrace_warning_names_the_reason():
    @tl.function(max_retraces=2)
    def f(x, k):
        return x + k

    x = _arr(2)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for k in range(4):
            f(x, float(k))
    msgs = [str(m.message) for m in w]
    assert any("traced 3 times" in m and "Python value changed" in m for m in msgs)


def test_graphs_kept_are_bounded_when_python_state_changes_every_call():
    # a per-step learning rate read from Python state, and a scalar argument that changes:
    # each call retraces (correctly), but only the most recently used graphs stay alive
    state = {"lr": 0.0}

    @tl.function(max_retraces=10_000, max_cached=3)
    def f(x, k):
        return x * state["lr"] + k

    x = _arr(4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(20):
            state["lr"] = 0.1 * i
            got = f(x, float(i % 2))
            np.testing.assert_allclose(got.numpy(), x.numpy() * state["lr"] + i % 2, rtol=1e-6)
            assert len(f.graphs) <= 3
        assert f.trace_count == 20
        n = f.trace_count
        f(x, 1.0)               # the most recent graph (same lr, same k) replays
        f(x, 1.0)
        assert f.trace_count == n
        assert f.graphs[-1] is f.get_graph(x, 1.0)     # graphs: oldest trace first


def test_input_signature_none_dims_one_graph_any_batch():
    lin = nn.Linear(5, 3)

    @tl.function(input_signature=[tl.TensorSpec((None, 5), "float32")])
    def f(x):
        return F.relu(lin(x)).sum(axis=1)

    for n in (4, 7, 1):
        x = _arr(n, 5, seed=n)
        with tl.no_grad():
            got = f(x)
        np.testing.assert_allclose(got.numpy(), F.relu(lin(x)).sum(axis=1).detach().numpy(),
                                   rtol=1e-5)
    assert f.trace_count == 1
    g = f.graphs[0]
    assert g.inputs[0].shape == (None, 5) and g.outputs[0].shape == (None,)
    with pytest.raises(TypeError, match="input_signature"):
        f(_arr(3, 4))


def test_outputs_identity_for_inputs_and_variables():
    w = tl.zeros(3, requires_grad=True)

    @tl.function
    def f(x):
        return x, w

    x = _arr(3)
    for _ in range(2):
        a, b = f(x)
        assert a is x and b is w


# --- reading values during capture ----------------------------------------------------------
@pytest.mark.parametrize("read", [bool, float, int, lambda t: t.item(), lambda t: t.numpy(),
                                  lambda t: t.tolist(), np.asarray, tl.tensor])
def test_reading_a_traced_value_raises_with_advice(read):
    @tl.function
    def f(x):
        return read(x.sum())

    with pytest.raises(CaptureError, match="tl.where"):
        f(_arr(1))


def test_branch_on_tensor_value_raises():
    @tl.function
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(CaptureError, match="bool"):
        f(_arr(3))


def test_tensor_index_with_traced_values_follows_new_values_as_take_does():
    # x[i] with i an input of the graph reads i at each replay (a take in the graph), as
    # tl.take does; a bool mask (a data-dependent shape) is refused
    @tl.function
    def index(x, i):
        return x[i]

    @tl.function
    def take(x, i):
        return tl.take(x, i, 0)

    x, i = _arr(5), tl.tensor([3, 1])
    for f in (index, take):
        assert np.allclose(f(x, i).numpy(), x.numpy()[[3, 1]])
        assert np.allclose(f(x, tl.tensor([0, 4])).numpy(), x.numpy()[[0, 4]])
    assert index.trace_count == 1
    with pytest.raises(CaptureError, match="bool mask"):
        tl.function(lambda x: x[x > 0])(x)


def test_reading_constants_and_guarded_state_is_fine_but_a_value_of_the_run_is_not():
    c = tl.tensor([2.0])

    @tl.function
    def f(x):
        return x * float(tl.tensor([2.0]) + 1.0)   # built from constants only

    @tl.function
    def g(x):
        return x * float(c)       # state: read under a version guard

    @tl.function
    def h(x):
        return x * float(x.sum())     # a value of this run: refused

    assert np.allclose(f(_arr(2)).numpy(), _arr(2).numpy() * 3)
    assert np.allclose(g(_arr(2)).numpy(), _arr(2).numpy() * 2)
    c.mul_(5.0)                   # changed in place: the guard retraces
    assert np.allclose(g(_arr(2)).numpy(), _arr(2).numpy() * 10)
    assert g.trace_count == 2
    with pytest.raises(CaptureError):
        h(_arr(2))


# --- footguns ---------------------------------------------------------------------------
SCALE = 2.0


def test_footgun_python_global_that_changes_retraces():
    global SCALE

    @tl.function
    def f(x):
        return x * SCALE

    x = _arr(3)
    SCALE = 2.0
    assert np.allclose(f(x).numpy(), x.numpy() * 2)
    SCALE = 5.0
    assert np.allclose(f(x).numpy(), x.numpy() * 5)
    assert f.trace_count == 2 and "SCALE" in f.retrace_reasons[-1]
    SCALE = 2.0


def test_footgun_closure_constant_that_changes_retraces():
    k = [3.0]
    cfg = {"k": 3.0}

    @tl.function
    def f(x):
        return x * cfg["k"] + k[0]

    x = _arr(3)
    assert np.allclose(f(x).numpy(), x.numpy() * 3 + 3)
    cfg["k"] = 4.0
    k[0] = 1.0
    assert np.allclose(f(x).numpy(), x.numpy() * 4 + 1)


def test_footgun_input_mutated_in_place_is_written_back():
    @tl.function
    def f(x):
        x += 1.0
        return x * 2.0

    for seed in range(3):
        x = _arr(3, seed=seed)
        x0 = x.numpy().copy()
        y = f(x)
        np.testing.assert_allclose(x.numpy(), x0 + 1)      # as eager would
        np.testing.assert_allclose(y.numpy(), (x0 + 1) * 2)
    assert f.trace_count == 1


def test_footgun_returned_tensor_not_overwritten_by_next_call():
    @tl.function
    def f(x):
        return (x * 2.0).exp() + 1.0, (x - 1.0).tanh()

    a1, b1 = f(_arr(4, seed=1))
    keep = a1.numpy().copy(), b1.numpy().copy()
    f(_arr(4, seed=2))
    f(_arr(4, seed=3))
    np.testing.assert_array_equal(a1.numpy(), keep[0])
    np.testing.assert_array_equal(b1.numpy(), keep[1])


def test_footgun_list_argument():
    @tl.function
    def f(xs, scales):
        return sum(x * s for x, s in zip(xs, scales))

    a, b = _arr(3, seed=1), _arr(3, seed=2)
    np.testing.assert_allclose(f([a, b], [1.0, 2.0]).numpy(), a.numpy() + 2 * b.numpy(),
                               rtol=1e-6)
    c, d = _arr(3, seed=3), _arr(3, seed=4)        # new tensors: same graph
    np.testing.assert_allclose(f([c, d], [1.0, 2.0]).numpy(), c.numpy() + 2 * d.numpy(),
                               rtol=1e-6)
    assert f.trace_count == 1
    np.testing.assert_allclose(f([c, d], [3.0, 2.0]).numpy(), 3 * c.numpy() + 2 * d.numpy(),
                               rtol=1e-6)          # new scalar values: retrace
    np.testing.assert_allclose(f([c, d, a], [1.0, 1.0, 1.0]).numpy(),
                               (c + d + a).numpy(), rtol=1e-6)   # longer list: retrace
    assert f.trace_count == 3


def test_footgun_aliased_arguments():
    @tl.function
    def f(a, b):
        return a + 2.0 * b

    x, y = _arr(3, seed=1), _arr(3, seed=2)
    np.testing.assert_allclose(f(x, x).numpy(), 3 * x.numpy(), rtol=1e-6)
    np.testing.assert_allclose(f(x, y).numpy(), x.numpy() + 2 * y.numpy(), rtol=1e-6)


def test_footgun_method_shared_by_two_instances():
    class Scaler:
        def __init__(self, k):
            self.w = tl.full((3,), float(k), requires_grad=True)
            self.offset = float(k)

        @tl.function
        def __call__(self, x):
            return x * self.w + self.offset

    s1, s2 = Scaler(2), Scaler(3)
    x = _arr(3)
    with tl.no_grad():        # the graphs replay (outputs needing gradients run eagerly)
        np.testing.assert_allclose(s1(x).numpy(), x.numpy() * 2 + 2, rtol=1e-6)
        np.testing.assert_allclose(s2(x).numpy(), x.numpy() * 3 + 3, rtol=1e-6)
        np.testing.assert_allclose(s1(x).numpy(), x.numpy() * 2 + 2, rtol=1e-6)
        s1.offset = 10.0          # Python attribute of the instance changed: retrace
        np.testing.assert_allclose(s1(x).numpy(), x.numpy() * 2 + 10, rtol=1e-6)


def test_footgun_parameters_created_on_a_later_call():
    class Lazy(nn.Module):
        def __init__(self):
            super().__init__()
            self.extra = None

        def forward(self, x, grow):
            y = x * 2.0
            if grow and self.extra is None:
                self.extra = nn.Parameter(tl.ones(x.shape[-1]) * 3.0)
            if self.extra is not None:
                y = y + self.extra
            return y

    m = Lazy()
    f = tl.function(lambda x, grow: m(x, grow))
    x = _arr(4)
    with tl.no_grad():
        np.testing.assert_allclose(f(x, False).numpy(), x.numpy() * 2, rtol=1e-6)
        np.testing.assert_allclose(f(x, True).numpy(), x.numpy() * 2 + 3, rtol=1e-6)
        # the parameter now exists: a call with grow=False must use it too
        np.testing.assert_allclose(f(x, False).numpy(), x.numpy() * 2 + 3, rtol=1e-6)
    with tl.no_grad():
        m.extra.fill_(7.0)     # eager update of the new parameter seen by the graph
        np.testing.assert_allclose(f(x, False).numpy(), x.numpy() * 2 + 7, rtol=1e-6)


def test_footgun_module_train_eval_flag():
    m = nn.Sequential(nn.Dropout(0.5))
    f = tl.function(lambda x: m(x))
    x = tl.ones(200)
    assert (f(x).numpy() == 0).any()
    m.eval()
    np.testing.assert_array_equal(f(x).numpy(), x.numpy())


def test_footgun_captured_constant_mutated_in_place_retraces():
    c = tl.tensor([1.0, 2.0])          # not requiring grad, not reachable: a constant

    def helper():
        return c

    @tl.function
    def f(x):
        return x + helper()

    x = _arr(2)
    np.testing.assert_allclose(f(x).numpy(), x.numpy() + [1, 2], rtol=1e-6)
    c.add_(10.0)
    np.testing.assert_allclose(f(x).numpy(), x.numpy() + [11, 12], rtol=1e-6)


def test_in_place_update_through_a_view_is_followed():
    def f(x):
        y = x * 1.0
        v = y.reshape(-1)      # a view of y
        v.add_(1.0)            # changes y's storage: the graph writes it into y's value
        return y * 2.0

    g = tl.function(f)
    for _ in range(2):
        x = _arr(2, 2)
        np.testing.assert_allclose(g(x).numpy(), f(x).numpy())


def test_reshape_to_a_traced_none_dim_follows_the_input(tmp_path):
    """``x.reshape(x.shape[0], ...)`` and ``flatten(x, 1)`` under a None batch dim copy the
    batch size at run time: in the graph, after saving it, and in ONNX."""
    w = tl.ones(784, 10)

    @tl.function(input_signature=[tl.TensorSpec((None, 28, 28), "float32")])
    def f(x):
        return x.reshape(x.shape[0], -1).sum(axis=1), tl.flatten(x, 1) @ w

    x4, x6 = _arr(4, 28, 28), _arr(6, 28, 28)
    assert [t.shape for t in f(x4)] == [(4,), (4, 10)]
    got = f(x6)
    assert [t.shape for t in got] == [(6,), (6, 10)]
    np.testing.assert_allclose(got[0].numpy(), x6.numpy().reshape(6, -1).sum(1), rtol=1e-5)
    g = f.get_graph(x4)
    assert [v.shape for v in g.outputs] == [(None,), (None, 10)]
    assert f.trace_count == 1
    path = tmp_path / "f.tlg"
    tl.save_graph(g, path)
    np.testing.assert_allclose(tl.load_graph(path)(x6.numpy())[1], got[1].numpy(),
                               rtol=1e-4, atol=1e-3)
    ort = pytest.importorskip("onnxruntime")
    g.to_onnx(tmp_path / "f.onnx")
    sess = ort.InferenceSession(str(tmp_path / "f.onnx"))
    res = sess.run(None, {sess.get_inputs()[0].name: x6.numpy()})
    assert [r.shape for r in res] == [(6,), (6, 10)]
    np.testing.assert_allclose(res[1], got[1].numpy(), rtol=1e-4, atol=1e-3)


def test_input_signature_with_size_computed_in_python_follows_the_dim():
    """2 * x.shape[0] is a traced size too: the graph computes it when it runs (it used to
    be frozen and fail; tests/capture/test_capture_dynamic_sizes.py has the rest)."""
    w = tl.ones(392, 10)

    @tl.function(input_signature=[tl.TensorSpec((None, 28, 28), "float32")])
    def f(x):
        return x.reshape(2 * x.shape[0], 392) @ w

    assert f(_arr(4, 28, 28)).shape == (8, 10)
    assert f(_arr(6, 28, 28)).shape == (12, 10)
    assert f.trace_count == 1


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_statistics_advance_in_a_captured_step(momentum):
    """num_batches_tracked and the cumulative average (momentum=None) are tensor state the
    replayed graph updates, not Python numbers frozen at the trace."""
    rng = np.random.default_rng(0)
    xs = [tl.tensor(rng.standard_normal((8, 3)).astype(np.float32) * (i + 1))
          for i in range(4)]
    eager, cap = tl.nn.BatchNorm1d(3, momentum=momentum), tl.nn.BatchNorm1d(3, momentum=momentum)
    f = tl.function(cap)
    for x in xs:
        eager(x)
        with tl.no_grad():     # so that the graph replays
            f(x)
    assert int(cap.num_batches_tracked.item()) == int(eager.num_batches_tracked.item()) == 4
    np.testing.assert_allclose(cap.running_var.numpy(), eager.running_var.numpy(), rtol=1e-5)
    np.testing.assert_allclose(cap.running_mean.numpy(), eager.running_mean.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_outputs_that_need_gradients_run_eagerly_with_a_warning():
    """A replayed graph's outputs have no autograd history: where the caller could
    differentiate them (grad enabled, parameters that require grad, no backward() inside)
    tl.function runs the Python instead of silently cutting the gradient off."""
    import warnings
    tl.manual_seed(0)
    backbone, head = tl.nn.Sequential(tl.nn.Linear(3, 8), tl.nn.ReLU()), tl.nn.Linear(8, 2)
    fast = tl.function(backbone)
    x, y = tl.randn(4, 3), tl.tensor(np.array([0, 1, 1, 0]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            backbone.zero_grad()
            tl.nn.functional.cross_entropy(head(fast(x)), y).backward()
            assert backbone[0].weight.grad is not None
    assert sum("runs eagerly" in str(w.message) for w in caught) == 1
    entry = next(e for es in fast._cache.values() for e in es)
    assert entry.grad_outputs and entry.n_calls == 0
    with tl.no_grad():                       # inference: the graph replays
        fast(x)     # traced again: the module's state is guarded, .grad went None -> set
        np.testing.assert_allclose(fast(x).numpy(), backbone(x).numpy(), rtol=1e-6)
    assert sum(e.n_calls for es in fast._cache.values() for e in es) == 1
    assert fast.trace_count == 2


def test_in_place_writes_through_views_in_a_captured_training_step():
    w = tl.tensor(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), requires_grad=True)

    def step(x):
        y = x @ w
        y[:, 0] *= 2
        y.T[1] = y[:, 1] * 3
        loss = (y * y).sum()
        loss.backward()
        g = w.grad.clone()
        w.grad = None
        return loss, g

    x = tl.tensor(np.array([[1.0, 0.5], [2.0, 1.0]], np.float32))
    want = step(x)
    f = tl.function(step)
    for _ in range(3):
        got = f(x)
    assert f.trace_count == 1 and float(got[0]) == float(want[0])
    np.testing.assert_allclose(got[1].numpy(), want[1].numpy(), rtol=1e-6)


def test_retrace_reasons_read_as_what_changed():
    """A per-step learning rate set by a scheduler inside the step retraces each call; the
    reason names it (the most recent graph's reason, not the oldest's), in words."""
    import warnings
    m = nn.Linear(3, 2)
    opt = tl.optim.SGD(m.parameters(), lr=0.1)
    sched = tl.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    @tl.function
    def step(x, y):
        opt.zero_grad()
        loss = F.mse_loss(m(x), y)
        loss.backward()
        opt.step()
        sched.step()
        return loss

    x, y = tl.randn(4, 3), tl.randn(4, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(4):
            step(x, y)
    # (zero_grad() first: the first trace starts with zero grads, so .grad None -> set does
    # not retrace; each lr change does)
    assert step.retrace_reasons[0].endswith("['lr'] changed from 0.1 to 0.05")
    assert step.retrace_reasons[-1].endswith("['lr'] changed from 0.025 to 0.0125")


def test_reshape_literals_equal_to_the_traced_batch_stay_literals():
    """Only a size read from the None dim itself follows it: x.reshape(2, -1) traced at batch
    2 keeps 2 rows at batch 8, and a size moved to another position follows its dim."""
    f = tl.function(lambda x: x.reshape(2, -1).sum(0),
                    input_signature=[tl.TensorSpec((None, 3))])
    with tl.no_grad():
        f(tl.ones(2, 3))
        assert f(tl.ones(8, 3)).shape == (12,)
    g = tl.function(lambda x: x.reshape(x.shape[1], x.shape[0], 4),
                    input_signature=[tl.TensorSpec((None, None, 4))])
    with tl.no_grad():     # a size moved to another position is computed when it runs
        g(tl.ones(3, 3, 4))
        assert g(tl.ones(2, 5, 4)).shape == (5, 2, 4) and g.trace_count == 1


def test_training_step_with_none_dims_is_traced_per_batch_size():
    """A backward holds sizes from the batch (a mean's 1/N, broadcasts to the batch): with a
    None batch dim the step still matches eager at every size, one graph per size."""
    import warnings
    lin, lin2 = nn.Linear(6, 1), nn.Linear(6, 1)
    lin2.load_state_dict(lin.state_dict())
    opt, opt2 = tl.optim.SGD(lin.parameters(), lr=0.1), tl.optim.SGD(lin2.parameters(), lr=0.1)

    def make(layer, o):
        def step(x):
            o.zero_grad()
            loss = layer(x.reshape(x.shape[0], -1)).mean()
            loss.backward()
            o.step()
            return loss
        return step
    f = tl.function(make(lin, opt), input_signature=[tl.TensorSpec((None, 2, 3))])
    eager = make(lin2, opt2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in (4, 9, 2, 4, 9):
            x = tl.randn(n, 2, 3)
            assert abs(float(f(x)) - float(eager(x))) < 1e-5
    assert sum("traced once per input shape" in str(w.message) for w in caught) == 1
    np.testing.assert_allclose(lin.weight.numpy(), lin2.weight.numpy(), rtol=1e-5, atol=1e-6)
    assert f.trace_count == 3      # 4, 9, 2


def test_writes_through_views_without_grad_are_captured():
    """A buffer updated through a view under no_grad (a queue), and an inference graph that
    writes through a view: the graph replays the writes."""
    class Queue(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("queue", tl.zeros(4, 6))
    q = Queue()

    @tl.function
    def push(k):
        with tl.no_grad():
            q.queue.T[0:2] = k
        return q.queue.sum()
    for i in range(3):
        assert float(push(tl.full((2, 4), float(i + 1)))) == 8.0 * (i + 1)
        assert q.queue[:, :2].tolist() == [[float(i + 1)] * 2] * 4
    assert push.trace_count == 1
    f = tl.function(lambda h: (h.T[1].mul_(2), h)[1])
    with tl.no_grad():
        for _ in range(2):
            assert f(tl.ones(3, 2)).tolist() == [[1.0, 2.0]] * 3


@pytest.mark.parametrize("index", ["[:, 0]", "[0]", "[:, -1]", "[:, 1:]", "[None]",
                                   "[..., None]", "[:, :3]"])
def test_indexing_with_two_none_dims(index):
    fn = eval(f"lambda x: x{index}")
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 4))])
    with tl.no_grad():
        f(tl.zeros((2, 5, 4)))
        x = tl.randn(3, 7, 4)
        np.testing.assert_array_equal(f(x).numpy(), fn(x).numpy())


def test_sizes_read_from_none_dims_create_tensors_that_follow_them(tmp_path):
    """tl.arange(x.shape[1]) (positions), tl.zeros(x.shape[0], ...) and the causal mask of
    attention follow the sequence length they run with, in the graph and in ONNX; so does
    a random draw (tests/capture/test_capture_random_sizes.py)."""
    pos = tl.nn.Embedding(32, 8)
    layer = tl.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).eval()

    def model(x):
        h = x + pos(tl.arange(x.shape[1])) + tl.zeros(x.shape[0], 1, 8)
        return layer(h, is_causal=True)
    f = tl.function(model, input_signature=[tl.TensorSpec((None, None, 8))])
    x = tl.randn(3, 9, 8)
    with tl.no_grad():
        f(tl.randn(1, 1, 8))          # traced at length 1: a constant would broadcast
        want = model(x).numpy()
        np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-5, atol=1e-6)
        f.graphs[0].to_onnx(tmp_path / "m.onnx")
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    r = tl.function(lambda x: x + tl.randn(x.shape[0], 8),
                    input_signature=[tl.TensorSpec((None, 8))])
    assert tuple(r(tl.ones(2, 8)).shape) == (2, 8) and tuple(r(tl.ones(5, 8)).shape) == (5, 8)


def test_an_in_place_update_of_a_parameter_without_backward_is_captured():
    # a manual SGD or EMA step: tracing raised IndexError (assign nodes have no outputs)
    w = tl.ones(3, requires_grad=True)
    ema = tl.zeros(3)

    @tl.function
    def update(g):
        with tl.no_grad():
            w.sub_(0.1 * g)
            ema.mul_(0.5).add_(w * 0.5)
    for _ in range(3):
        update(tl.ones(3))
    assert update.trace_count == 1
    np.testing.assert_allclose(w.numpy(), [0.7] * 3, rtol=1e-6)
    np.testing.assert_allclose(ema.numpy(), [0.6625] * 3, rtol=1e-6)    # 0.45, 0.625, 0.6625


def test_a_draw_from_an_explicit_generator_is_captured_and_replays_fresh():
    # tracing raised TypeError: the generator bound to the random node is not a tuple
    g = tl.Generator()
    g.manual_seed(0)

    def act(mu):
        return mu + 0.1 * tl.randn(*mu.shape, generator=g)
    f = tl.function(act)
    mu = tl.zeros(3)
    with tl.no_grad():
        a, b = f(mu).numpy(), f(mu).numpy()
    assert f.trace_count == 1 and not np.array_equal(a, b)
    g.manual_seed(0)
    want = act(mu).numpy()
    g.manual_seed(0)
    with tl.no_grad():
        np.testing.assert_allclose(f(mu).numpy(), want, rtol=1e-6)


def test_host_random_draws_while_tracing_are_warned_about():
    # a teacher-forcing coin flip with random.random() is frozen into the graph
    import random

    def step(x):
        return x * 2 if random.random() < 0.5 else x * 3
    f = tl.function(step)
    with pytest.warns(UserWarning, match="drew from Python's `random`"):
        f(tl.ones(2))
    g = tl.function(lambda x: x * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g(tl.ones(2))


def test_numpy_generator_objects_drawn_while_tracing_are_warned_about():
    # a replay buffer sampled with a np.random.Generator inside the captured update: every
    # replay would train on the batch drawn while tracing (RL trial). The generator is
    # found in the closure, or one attribute deep in an argument (an agent's self.rng)
    buf = np.arange(100, dtype=np.float32).reshape(100, 1)
    rng = np.random.default_rng(0)
    f = tl.function(lambda: tl.tensor(buf[rng.integers(0, 100, 8)]).sum())
    with pytest.warns(UserWarning, match="np.random.Generator / RandomState"):
        f()

    class Agent:
        def __init__(self):
            self.rng = np.random.RandomState(0)

        @tl.function
        def act(self, x):
            return x + float(self.rng.rand())
    with pytest.warns(UserWarning, match="NumPy generator"):
        Agent().act(tl.ones(1))
    # a generator the function holds but does not draw from: no warning
    g = tl.function(lambda x: x * 2 if rng is not None else x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g(tl.ones(2))


def test_dict_batches_in_input_signature_and_in_retrace_reasons():
    lin, emb = tl.nn.Linear(3, 2), tl.nn.Embedding(10, 2)

    def fn(b):
        return lin(b["x"]) + emb(b["ids"])
    f = tl.function(fn, input_signature=[{"x": tl.TensorSpec((None, 3)),
                                          "ids": tl.TensorSpec((None,), "int64")}])
    with tl.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in (4, 5, 7):     # any batch size: one trace
            b = {"x": tl.ones(n, 3), "ids": tl.tensor(np.arange(n) % 10)}
            np.testing.assert_allclose(f(b).numpy(), fn(b).numpy(), rtol=1e-6)
    assert f.trace_count == 1
    g = tl.function(fn)
    with tl.no_grad():
        for n in (4, 5):
            g({"x": tl.ones(n, 3), "ids": tl.tensor(np.arange(n))})
    assert g.retrace_reasons == ["the positional arguments[0]['x']: tensor shape changed "
                                 "from (4, 3) to (5, 3)"]
    # the keys' order is part of the signature: code may read the dict in that order
    h = tl.function(lambda d: tl.cat(list(d.values())))
    a, b = tl.tensor([1.0]), tl.tensor([2.0])
    with tl.no_grad():
        h({"b": b, "a": a})
        assert h({"a": a, "b": b}).tolist() == [1.0, 2.0]
    assert h.trace_count == 2
    with pytest.raises(TypeError, match=r"input_signature\[0\]\['x'\] is 'bad'"):
        tl.function(fn, input_signature=[{"x": "bad"}])


def test_function_repr_and_spec_names_reach_the_graph_and_onnx(tmp_path):
    lin = tl.nn.Linear(3, 2)
    f = tl.function(lambda x: lin(x), input_signature=[tl.TensorSpec((None, 3),
                                                                     name="features")])
    assert "traced 0 times" in repr(f) and "TensorSpec((None, 3), float32)" in repr(f)
    with tl.no_grad():
        g = f.get_graph(tl.ones(2, 3))
    assert "traced 1 time, 1 graph kept" in repr(f)
    assert g.inputs[0].name == "features"
    onnx = pytest.importorskip("onnx")
    g.to_onnx(str(tmp_path / "f.onnx"))
    assert [i.name for i in onnx.load(str(tmp_path / "f.onnx")).graph.input] == ["features"]
    assert tl.autograd.viz.__name__ == "tensorlib.autograd.viz"


def test_a_function_taking_tl_grad_returns_outputs_with_a_history():
    # a PINN residual: tl.grad(create_graph=True) inside, no backward() into .grad. It is
    # not a training step, so its outputs must carry the parameters' history (they came
    # back without it, and the residual's term silently left the parameter gradients)
    tl.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8, dtype=tl.float64), nn.Tanh(),
                        nn.Linear(8, 1, dtype=tl.float64))
    X = tl.rand(16, 2, dtype=tl.float64)

    def resid(X):
        X = X.detach().requires_grad_(True)
        u = net(X)
        (du,) = tl.autograd.grad(u, X, grad_outputs=tl.ones_like(u), create_graph=True)
        return du[:, 0:1] + u

    def weight_grad(f):
        net.zero_grad()
        f(X).pow(2).mean().backward()
        return net[0].weight.grad.numpy().copy()

    want = weight_grad(resid)
    captured = tl.function(resid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # (it runs eagerly, with a warning that says so)
        for _ in range(2):
            np.testing.assert_allclose(weight_grad(captured), want, rtol=1e-12)


def test_tensors_made_inside_the_function_start_fresh_on_every_replay():
    """tl.zeros/zeros_like/tl.tensor/arange made in the function and written in place are
    values of each run (as eager), not state kept between replays; outside tensors written
    in place stay state."""
    idx = tl.tensor([0, 0, 2])

    def agg(x):
        out = tl.zeros(3)
        out.index_add_(0, idx, x)
        m = tl.zeros_like(x).scatter_reduce_(0, idx, x, "amax")
        buf = tl.tensor([1.0, 2.0, 3.0])
        buf[1:].mul_(x[0])
        acc = tl.arange(3).float()
        acc += x
        return out, m, buf, acc
    f = tl.function(agg)
    seen = []
    for x in ([1.0, 2.0, 3.0], [-1.0, -5.0, -3.0], [1.0, 2.0, 3.0]):
        got = f(tl.tensor(x))
        want = agg(tl.tensor(x))
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        seen.append(got[0])
    assert seen[0] is not seen[2]           # each call hands out a new tensor
    assert f.trace_count == 1
    counter = tl.zeros(1)

    @tl.function
    def inc(x):
        counter.add_(1.0)
        return x + counter
    assert [inc(tl.zeros(1)).item() for _ in range(3)] == [1.0, 2.0, 3.0]


def test_index_and_mask_tensors_from_state_are_read_under_a_version_guard():
    """x[idx] and out[train_mask] with tensors the function reaches (globals, buffers):
    the graph holds the values read; an in-place change to them retraces."""
    idx = tl.tensor([0, 2])
    mask = tl.tensor([True, False, True])

    @tl.function
    def f(x):
        return x[idx].sum(0) + x[mask].sum(0)
    for seed in range(2):
        x = tl.tensor(np.random.default_rng(seed).standard_normal((3, 4)))
        np.testing.assert_allclose(f(x).numpy(), (x[idx].sum(0) + x[mask].sum(0)).numpy())
    assert f.trace_count == 1
    idx[1] = 1
    np.testing.assert_allclose(f(x).numpy(), (x[idx].sum(0) + x[mask].sum(0)).numpy())
    assert f.trace_count == 2

    # an index computed from state only (a buffer + 1): guarded on the buffer
    class M(tl.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("cols", tl.tensor([0, 2]))

        def forward(self, z):
            return z[:, self.cols + 1]
    m = M()
    g = tl.function(lambda z: m(z))
    z = tl.tensor(np.arange(8.0).reshape(2, 4))
    np.testing.assert_array_equal(g(z).numpy(), z.numpy()[:, [1, 3]])
    m.cols.sub_(1)
    np.testing.assert_array_equal(g(z).numpy(), z.numpy()[:, [0, 2]])
    # a masked loss in a captured training step matches eager
    y = tl.tensor([0, 1, 2])

    def make():
        tl.manual_seed(0)
        lin = tl.nn.Linear(4, 3)
        opt = tl.optim.SGD(lin.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            loss = tl.nn.functional.cross_entropy(lin(x)[mask], y[mask])
            loss.backward()
            opt.step()
            return loss
        return step
    x = tl.tensor(np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32))
    captured, eager = tl.function(make()), make()
    np.testing.assert_allclose([captured(x).item() for _ in range(3)],
                               [eager(x).item() for _ in range(3)], rtol=1e-6)


def test_scatter_reduce_extremes_follow_a_none_dim():
    def pool(x, idx):
        return tl.zeros(5, 4).scatter_reduce(0, idx[:, None].expand(-1, 4), x, "amax",
                                             include_self=False)
    f = tl.function(pool, input_signature=[tl.TensorSpec((None, 4)),
                                           tl.TensorSpec((None,), dtype=tl.int64)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for e in (7, 11, 3):
            rng = np.random.default_rng(e)
            x = tl.tensor(rng.standard_normal((e, 4)).astype(np.float32))
            idx = tl.tensor(rng.integers(0, 5, e))
            np.testing.assert_array_equal(f(x, idx).numpy(), pool(x, idx).numpy())
    assert f.trace_count == 1


def test_a_view_made_after_its_base_changed_in_place_is_current():
    """A view created after an in-place update (a trained or loaded parameter) has a fresh
    history: expanding it to a dynamic batch captures and exports (recsys trial: a CLS
    token parameter, expand(x.shape[0], -1, -1), failed after load_state_dict)."""
    class M(tl.nn.Module):
        def __init__(self):
            super().__init__()
            self.cls = tl.nn.Parameter(tl.tensor(np.ones((1, 1, 4), np.float32)))

        def forward(self, x):
            return tl.cat([self.cls.expand(x.shape[0], -1, -1), x], 1)
    m = M()
    with tl.no_grad():
        m.cls.mul_(2.0)
    v = m.cls.expand(3, -1, -1)
    assert v._hv == v._version[0] == 1
    f = tl.function(lambda x: m(x), input_signature=[tl.TensorSpec((None, 3, 4))])
    for n in (2, 5):
        x = tl.tensor(np.random.default_rng(n).standard_normal((n, 3, 4)).astype(np.float32))
        got = f(x)
        assert got.shape == (n, 4, 4)
        np.testing.assert_array_equal(got.numpy()[:, 0], np.full((n, 4), 2.0, np.float32))


def test_past_the_trace_limit_new_shapes_run_eagerly_and_kept_graphs_replay():
    tl.manual_seed(0)
    lin = tl.nn.Linear(4, 2)
    opt = tl.optim.SGD(lin.parameters(), lr=0.01)

    def step(x):
        opt.zero_grad()
        loss = lin(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss
    f = tl.function(step, max_cached=2)
    assert f.eager_after == 8
    with pytest.warns(UserWarning, match=r"eager_after=8.*pad batches"):
        for n in range(1, 13):
            f(tl.ones(n, 4))
    assert f.trace_count == 8
    # a kept graph still replays: no new trace for the most recent shapes
    f(tl.ones(8, 4))
    assert f.trace_count == 8
    w = lin.weight.numpy().copy()
    f(tl.ones(30, 4))                   # a new shape: eager, and it still trains
    assert f.trace_count == 8 and not np.array_equal(lin.weight.numpy(), w)
