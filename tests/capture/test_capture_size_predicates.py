"""Size comparisons under tl.function with None dims: a size read from an op's result
(reshape with -1, cat, unsqueeze, matmul, reductions, conv/pool) is a recorded predicate over
the input dims, one that cannot be followed (a slice with a traced bound, flatten) is a retrace
per size, and data-dependent sizes (nonzero, unique) are refused while tracing. Predicates
are a Graph field every copy carries, and every miss is worded by one function."""
import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.graph.capture import CaptureError
from tensorlib.graph.ir import Graph

torch = pytest.importorskip("torch")


def _x(*shape, seed=0):
    return tl.tensor(np.random.default_rng(seed).standard_normal(shape))


def _branchy(make, axis=0, bound=3):
    """f(x): x.sum() plus 1 or -1 by a comparison of a size of make(x) (torch's too)."""
    def f(x):
        y = make(x)
        return x.sum() + (1.0 if y.shape[axis] > bound else -1.0)
    return f


# name -> (tl make, torch make, spec, axis, shapes whose branches differ, predicate kept?)
CASES = {
    "reshape_minus_one": (lambda x: x.reshape(-1, 4), lambda x: x.reshape(-1, 4),
                          (None, 4), 0, [(2, 4), (6, 4), (3, 4), (4, 4)], True),
    "cat": (lambda x: tl.cat([x, x]), lambda x: torch.cat([x, x]), (None, 3), 0,
            [(1, 3), (3, 3), (2, 3)], True),
    "unsqueeze_transpose": (lambda x: x.unsqueeze(0).transpose(0, 1),
                            lambda x: x.unsqueeze(0).transpose(0, 1), (None, 3), 0,
                            [(2, 3), (5, 3), (3, 3)], True),
    "matmul": (lambda x: x @ x.T, lambda x: x @ x.T, (None, 3), 1, [(2, 3), (5, 3)], True),
    "sum": (lambda x: x.sum(1), lambda x: x.sum(1), (None, 3), 0, [(2, 3), (5, 3)], True),
    "conv2d": (lambda x: F.conv2d(x, tl.ones(1, 1, 3, 3, dtype="float64")),
               lambda x: torch.nn.functional.conv2d(x, torch.ones(1, 1, 3, 3,
                                                                  dtype=torch.float64)),
               (1, 1, None, 5), 2, [(1, 1, 4, 5), (1, 1, 8, 5), (1, 1, 6, 5)], True),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), lambda x: torch.nn.functional.max_pool2d(x, 2),
                   (1, 1, None, 4), 2, [(1, 1, 4, 4), (1, 1, 10, 4), (1, 1, 9, 4),
                                        (1, 1, 7, 4)], True),
    # a traced bound in a slice and flatten's merged dims are not followed: per-size traces
    "slice_half": (lambda x: x[x.shape[0] // 2:], lambda x: x[x.shape[0] // 2:], (None, 3), 0,
                   [(4, 3), (10, 3), (4, 3)], False),
    "flatten": (lambda x: x.flatten(), lambda x: x.flatten(), (None, 3), 0,
                [(1, 3), (3, 3)], False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_comparison_of_an_op_result_size_matches_eager_and_torch(name):
    make, tmake, spec, axis, shapes, kept = CASES[name]
    f = _branchy(make, axis)
    tf = tl.function(f, input_signature=[tl.TensorSpec(spec, "float64")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, s in enumerate(shapes):
            x = _x(*s, seed=i)
            xt = torch.tensor(x.numpy())
            want = xt.sum() + (1.0 if tmake(xt).shape[axis] > 3 else -1.0)
            np.testing.assert_allclose(tf(x).numpy(), want.numpy(), rtol=1e-12)
            np.testing.assert_allclose(f(x).numpy(), want.numpy(), rtol=1e-12)
    g = tf.graphs[0]
    if kept:
        assert g.size_predicates and not g.size_fixed
        assert None in g.inputs[0].shape
    else:
        assert not g.size_predicates and g.size_fixed


def test_op_result_predicate_reuses_the_graph_within_the_branch():
    f = tl.function(_branchy(lambda x: tl.cat([x, x])),
                    input_signature=[tl.TensorSpec((None, 3), "float64")])
    for n in (1, 1, 1):
        f(_x(n, 3))
    f(_x(4, 3))      # 8 > 3: the other branch, a new trace
    n_traces = f.trace_count
    for n in (5, 6, 2, 7):      # the two graphs serve every size, in either branch
        x = _x(n, 3)
        np.testing.assert_allclose(f(x).numpy(),
                                   x.numpy().sum() + (1.0 if 2 * n > 3 else -1.0))
    assert f.trace_count <= n_traces + 1    # (a first call at a new size verifies once)
    assert sorted(f.graphs[0].size_predicates + f.graphs[1].size_predicates) == sorted(
        [("le", ("add", ("dim", 0, 0), ("dim", 0, 0)), 3, True),
         ("ge", ("add", ("dim", 0, 0), ("dim", 0, 0)), 4, True)])


@pytest.mark.parametrize("fn", [lambda x: tl.nonzero(x > 0), lambda x: tl.unique(x)])
def test_data_dependent_sizes_are_refused_not_predicates(fn):
    def f(x):
        y = fn(x)
        return x.sum() + (1.0 if y.shape[0] > 3 else -1.0)
    tf = tl.function(f, input_signature=[tl.TensorSpec((None,), "float64")])
    with pytest.raises(CaptureError, match="depends on the values"):
        tf(_x(5))


def _predicated_graph():
    @tl.function(input_signature=[tl.TensorSpec((None, 3), "float64")])
    def f(x):
        y = tl.cat([x, x])
        if y.shape[0] > 3:
            return x * 2.0
        return x * 3.0
    f(_x(1, 3))
    return f, f.graphs[0]


def test_message_shows_the_comparison_as_written_and_is_shared():
    f, g = _predicated_graph()
    bad = _x(4, 3)
    with pytest.raises(ValueError) as run_err:
        g.run({0: bad})
    said = str(run_err.value)
    assert "((x.shape[0] + x.shape[0]) <= 3)" in said or "<= 3" in said
    assert "`if y.shape[0] > 3:`" in said and "test_capture_size_predicates.py:" in said
    from tensorlib.graph.capture import _predicate_miss
    why = _predicate_miss(f._cache[next(iter(f._cache))][0], [bad])
    # tl.function's retrace reason and graph.run word it the same way
    core = said.split(": ", 1)[1].split("; ")[0]
    assert str(why).startswith(core)


def test_merged_bounds_message_names_the_comparison_made():
    def g(x):
        return x * sum(1 for i in range(50) if x.shape[0] > i)
    f = tl.function(g, input_signature=[tl.TensorSpec((None,), "float64")])
    f(tl.ones(3, dtype="float64"))
    gr = f.graphs[0]
    assert sorted(gr.size_predicates) == [("ge", ("dim", 0, 0), 3, True),
                                          ("le", ("dim", 0, 0), 3, True)]
    with pytest.raises(ValueError, match=r"shape\[0\] <= 3 \(from not x.shape\[0\] > 3 `return"):
        gr.run({0: tl.ones(5, dtype="float64")})


def test_saved_graph_keeps_predicates_and_sources(tmp_path):
    _, g = _predicated_graph()
    tl.save_graph(g, tmp_path / "g.tlg")
    loaded = tl.load_graph(tmp_path / "g.tlg")
    assert loaded.graph.size_predicates == g.size_predicates
    np.testing.assert_allclose(loaded(_x(1, 3)).numpy(), _x(1, 3).numpy() * 3.0)
    with pytest.raises(ValueError, match=r"`if y.shape\[0\] > 3:`"):
        loaded(_x(2, 3))


def test_onnx_export_still_warns_for_predicates(tmp_path):
    pytest.importorskip("onnx")
    _, g = _predicated_graph()
    with pytest.warns(UserWarning, match="assumes"):
        g.to_onnx(tmp_path / "g.onnx")


def test_graph_field_defaults_and_round_trips():
    g = Graph()
    assert g.size_predicates == [] and g.size_predicate_sources == {}
    _, pg = _predicated_graph()
    back = Graph.from_json(pg.to_json())
    assert back.size_predicates == pg.size_predicates
    with pytest.raises(ValueError, match="bad size predicate"):
        Graph.from_dict({**pg.to_dict(), "size_predicates": [["lt", 1]]})


def test_passes_keep_predicates():
    from tensorlib.graph.placement.partition import partition
    _, g = _predicated_graph()
    preds = list(g.size_predicates)
    g.optimize()
    assert g.size_predicates == preds
    g.place(["cpu:0", "cpu:1"])
    assert g.size_predicates == preds
    parts = partition(g, list(g.outputs), [], lambda key, dev: None, compile=False)
    assert [p.graph.size_predicates for p in parts if p.graph.inputs] == \
        [preds for p in parts if p.graph.inputs]
    with pytest.raises(ValueError, match="size comparison"):
        g.run({0: _x(4, 3)})


def test_data_parallel_and_gradients_keep_predicates():
    from tensorlib.graph.sizes import carry_predicates
    w = tl.ones(3, 1, dtype="float64", requires_grad=True)
    x, z = _x(4, 3), _x(2, 3, seed=1)
    with tl.capture(x, z, input_shapes=[(None, 3), (2, 3)]) as g:
        y = tl.cat([x, x])
        loss = (z @ w).sum() * (2.0 if y.shape[0] > 3 else 3.0)
    g.set_outputs(loss)
    assert g.size_predicates
    preds = list(g.size_predicates)
    g.gradients(loss, [w])
    assert g.size_predicates == preds
    dst = Graph()
    carry_predicates(g, dst, {0: 0}, {0: 2})      # as data_parallel with 2 shards
    assert dst.size_predicates == [
        (p[0], ("add", ("floordiv", ("dim", 0, 0), 2), ("floordiv", ("dim", 0, 0), 2)),
         *p[2:]) for p in preds]
