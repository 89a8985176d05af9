"""Sizes as graph values (``dim_size``): quantile/median/nanmedian, var/std, adaptive max
pooling and a mean Huber backward over dynamic axes agree eager == captured graph at other
sizes == tl.load'ed graph file == ONNX in onnxruntime == the ONNX re-imported by tensorlib,
and against PyTorch; the counts are O(1) dim_size nodes, not sums of ones."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.ops.size_guard import DIM_SIZE, dim_size, size_tensor
from tensorlib.ops.statistics import _quantile_at

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

QS = [0.0, 0.3, 0.5, 0.77, 1.0]
METHODS = ("linear", "lower", "higher", "nearest", "midpoint")
# name -> (tensorlib fn, torch fn); input (B, T, 4) with B and T dynamic
CASES = {f"quantile_{m}": (lambda x, m=m: tl.quantile(x, QS, dim=1, method=m),
                           lambda t, m=m: torch.quantile(t, torch.tensor(QS, dtype=t.dtype),
                                                         dim=1, interpolation=m))
         for m in METHODS}
CASES.update({
    "quantile_flat": (lambda x: tl.quantile(x, 0.3), lambda t: torch.quantile(t, 0.3)),
    "median_axis": (lambda x: tl.median(x, axis=1),
                    lambda t: torch.quantile(t, 0.5, dim=1)),     # NumPy's median
    "median_dim": (lambda x: tl.median(x, dim=1).values, lambda t: t.median(dim=1).values),
    "median_idx": (lambda x: tl.median(x, dim=1).indices, lambda t: t.median(dim=1).indices),
    "nanmedian_idx": (lambda x: tl.nanmedian(x, 1).indices,
                      lambda t: t.nanmedian(dim=1).indices),
    "var": (lambda x: x.var(dim=1), lambda t: t.var(dim=1)),
    "std_all": (lambda x: x.std(dim=(0, 1), correction=0),
                lambda t: t.std(dim=(0, 1), correction=0)),
    "adaptive_max": (lambda x: F.adaptive_max_pool1d(x.transpose(1, 2), 3),
                     lambda t: torch.nn.functional.adaptive_max_pool1d(t.transpose(1, 2), 3)),
})
SIZES = ((2, 7), (3, 4), (1, 9), (2, 1))


def _x(b, t, seed, nan=False, dtype=np.float32):
    x = np.random.default_rng(seed).standard_normal((b, t, 4)).astype(dtype)
    if nan:
        x[0, ::3, 1] = np.nan
        x[-1, :, 2] = np.nan           # an all-NaN row
    return x


class _Fn(tl.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _close(got, want, what, rtol=1e-5):
    got = np.asarray(got.numpy() if isinstance(got, tl.Tensor) else got)
    want = np.asarray(want.detach().numpy() if isinstance(want, torch.Tensor) else want)
    assert got.shape == want.shape, f"{what}: {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-6, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_graph_file_onnx_and_reimport_agree(name, tmp_path):
    fn, tfn = CASES[name]
    nan = name.startswith("nanmedian")
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 4), tl.float32)])
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no size escapes, no retracing
        with tl.no_grad():
            f(tl.tensor(_x(2, 5, 0, nan)))
            tl.save_graph(f, tmp_path / "m.tlg")
            tl.onnx.export(_Fn(fn), (tl.tensor(_x(2, 5, 0, nan)),), path,
                           dynamic_axes={0: {0: "B", 1: "T"}})
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    loaded, back = tl.load_graph(tmp_path / "m.tlg"), tl.onnx.load(path)
    for i, (b, t) in enumerate(SIZES):
        x = _x(b, t, i + 1, nan)
        want = tfn(torch.from_numpy(x))
        with tl.no_grad():
            eager = fn(tl.tensor(x))
            _close(eager, want, f"{name} eager {b, t}")
            _close(f(tl.tensor(x)), eager, f"{name} captured {b, t}")
            _close(loaded(tl.tensor(x)), eager, f"{name} graph file {b, t}")
            _close(sess.run(None, {sess.get_inputs()[0].name: x})[0], eager,
                   f"{name} onnxruntime {b, t}")
            _close(back(x), eager, f"{name} re-imported {b, t}")
    assert f.trace_count == 1


@pytest.mark.parametrize("name", ["quantile_linear", "median_dim", "nanmedian_idx",
                                  "adaptive_max", "quantile_flat"])
def test_counts_are_dim_size_nodes_not_sums_of_ones(name):
    f = tl.function(CASES[name][0], input_signature=[tl.TensorSpec((None, None, 4),
                                                                   tl.float32)])
    with tl.no_grad():
        f(tl.tensor(_x(2, 5, 0)))
    nodes = f.graphs[0].nodes
    assert "dim_size" in [n.op for n in nodes]
    # (adaptive max pooling keeps one: the arange of its window taps, a vector)
    ones_summed = [n.op for n in nodes if n.op in ("sum", "cumsum")
                   and n.inputs[0].node.op == "fill"]
    assert len(ones_summed) == (name == "adaptive_max"), ones_summed


def test_var_reimport_keeps_one_dim_size_node(tmp_path):
    path = tmp_path / "v.onnx"
    tl.onnx.export(_Fn(lambda x: x.var(dim=(0, 1))), (tl.tensor(_x(2, 5, 0)),), path,
                   dynamic_axes={0: [0, 1]})
    g = tl.onnx.load(path)
    ops = [n.op for n in g.graph.nodes]
    assert ops.count("dim_size") == 1 and "fill" not in ops, ops
    x = _x(3, 8, 1)
    _close(g(x), torch.from_numpy(x).var(dim=(0, 1)), "var re-imported")


def test_a_pytorch_size_used_as_data_imports(tmp_path):
    class ShapeAsData(torch.nn.Module):
        def forward(self, x):
            return x / x.size(0) + x.shape[1]
    path = tmp_path / "d.onnx"
    torch.onnx.export(ShapeAsData(), (torch.randn(2, 3),), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "N", 1: "C"}})
    g = tl.onnx.load(path)
    for shape in ((2, 3), (5, 7)):
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        _close(g(x), ShapeAsData()(torch.from_numpy(x)), f"x / x.size(0) at {shape}")


def test_mean_huber_backward_exports_with_dynamic_axes(tmp_path):
    def grad_of_huber(x, y):
        x = x.detach().requires_grad_(True)
        with tl.enable_grad():
            (g,) = tl.grad(F.huber_loss(x, y, delta=0.5), [x])
        return g
    path = tmp_path / "h.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # (a backward is traced once per input shape)
        tl.onnx.export(grad_of_huber, (tl.randn(2, 3), tl.randn(2, 3)), path,
                       dynamic_axes={0: [0], 1: [0]})
    assert "ReduceProd" in {n.op_type for n in onnx.load(str(path)).graph.node}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    back = tl.onnx.load(path)
    for b in (2, 5, 1):
        x, y = (np.random.default_rng(b + k).standard_normal((b, 3)).astype(np.float32)
                for k in range(2))
        t = torch.from_numpy(x).requires_grad_(True)
        (want,) = torch.autograd.grad(torch.nn.functional.huber_loss(
            t, torch.from_numpy(y), delta=0.5), [t])
        _close(grad_of_huber(tl.tensor(x), tl.tensor(y)), want, f"eager {b}")
        _close(sess.run(None, {"input0": x, "input1": y})[0], want, f"onnxruntime {b}")
        _close(back(x, y), want, f"re-imported {b}")


# --- the one rank function, both kinds of rank: values and gradients against PyTorch ---------
@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 9), q=st.floats(0, 1), method=st.sampled_from(METHODS),
       seed=st.integers(0, 2**16), ties=st.booleans())
def test_graph_ranks_match_python_ranks_and_torch(n, q, method, seed, ties):
    x = np.random.default_rng(seed).standard_normal((3, n))
    if ties:
        x = np.round(x)
    t = torch.tensor(x, requires_grad=True)
    want = torch.quantile(t, q, dim=1, interpolation=method)
    (gwant,) = torch.autograd.grad(want.sum(), [t])
    for count in (n, tl.tensor(n)):          # Python ranks (eager), graph-value ranks
        a = tl.tensor(x, requires_grad=True)
        s = tl.sort(a, axis=1)[0]
        got = _quantile_at(s, 1, q, count, method)
        (g,) = tl.grad(got.sum(), [a])
        kind = type(count).__name__
        _close(got, want, f"{method} q={q} n={n} ({kind})", rtol=1e-12)
        _close(g, gwant, f"{method} q={q} n={n} gradient ({kind})", rtol=1e-12)


def test_q_gradient_through_graph_ranks_matches_torch():
    x = np.random.default_rng(3).standard_normal((2, 6))
    qv = np.array([0.1, 0.5, 0.95])
    t, tq = torch.tensor(x, requires_grad=True), torch.tensor(qv, requires_grad=True)
    want = torch.quantile(t, tq, dim=1)
    gx, gq = torch.autograd.grad((want * torch.arange(6.0).reshape(3, 2)).sum(), [t, tq])
    for count in (6, tl.tensor(6)):
        a, q = tl.tensor(x, requires_grad=True), tl.tensor(qv, requires_grad=True)
        s = tl.sort(a, axis=1)[0]
        got = tl.stack([_quantile_at(s, 1, float(qv[i]), count, "linear", q[i])
                        for i in range(3)])
        ga, gqq = tl.grad((got * tl.arange(6.0).reshape(3, 2)).sum(), [a, q])
        _close(got, want, "values")
        _close(ga, gx, "x gradient", rtol=1e-10)
        _close(gqq, gq, "q gradient", rtol=1e-10)


def test_midpoint_of_one_middle_value_does_not_overflow():
    x = np.full((1, 3), 1e308)
    want = torch.quantile(torch.tensor(x), 0.5, dim=1, interpolation="midpoint")
    _close(tl.quantile(tl.tensor(x), 0.5, dim=1, method="midpoint"), want, "eager")
    f = tl.function(lambda x: tl.median(x, axis=1),
                    input_signature=[tl.TensorSpec((1, None), tl.float64)])
    _close(f(tl.tensor(x)), want, "median, captured")


def test_median_axis_is_one_graph_for_both_parities():
    f = tl.function(lambda x: tl.median(x, axis=-1),
                    input_signature=[tl.TensorSpec((2, None), tl.float64)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in (5, 6, 1, 2, 9):
            x = np.random.default_rng(n).standard_normal((2, n))
            _close(f(tl.tensor(x)), np.median(x, axis=-1), f"n={n}", rtol=1e-12)
    assert f.trace_count == 1


# --- dim_size itself ----------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=4), data=st.data())
def test_dim_size_matches_torch_size(shape, data):
    d = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.zeros(shape, np.float32)
    got = dim_size(tl.tensor(x), d)
    want = torch.tensor(torch.from_numpy(x).size(d))
    assert got.dtype == tl.int64 and got.shape == () and int(got.item()) == int(want)


def test_dim_size_follows_none_dims_and_is_not_differentiable(tmp_path):
    def fn(x):
        return size_tensor(x.shape[0] * x.shape[1] - 1, x) * 10 + dim_size(x, -1)
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 2), tl.float32)])
    for shape in ((2, 3, 2), (4, 1, 2)):
        assert int(f(tl.zeros(*shape)).item()) == (shape[0] * shape[1] - 1) * 10 + 2
    assert f.trace_count == 1
    tl.onnx.export(fn, (tl.zeros(2, 3, 2),), tmp_path / "s.onnx", dynamic_axes={0: [0, 1]})
    sess = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"input0": np.zeros((5, 3, 2), np.float32)})
    assert got.shape == () and int(got) == 142
    x = tl.randn(3, 2, requires_grad=True)
    assert not dim_size(x, 0).requires_grad
    assert size_tensor(7, x).item() == 7


def test_dim_size_under_vmap_is_the_per_example_size():
    out = tl.vmap(lambda t: dim_size(t, 0) * t)(tl.ones(4, 3))
    np.testing.assert_array_equal(out.numpy(), np.full((4, 3), 3.0))


def test_dim_size_errors():
    x = tl.zeros(2, 3)
    with pytest.raises(TypeError, match="dim_size: dim must be an int"):
        dim_size(x, 1.0)
    with pytest.raises((IndexError, ValueError), match="dim_size"):
        dim_size(x, 2)
    with pytest.raises(ValueError, match="reads a dim the node's inputs lack"):
        tl.apply(DIM_SIZE, x, expr=("dim", 1, 0))
    with pytest.raises(ValueError, match="bad size expression"):
        tl.apply(DIM_SIZE, x, expr=("pow", 2, 3))
