"""Training-mode batch norm under graph capture with a dynamic batch: one traced graph serves
every batch (and spatial) size, its values and running statistics are exactly eager's, and it
saves to a graph file and exports to ONNX. Values and gradients are checked against PyTorch."""
import copy
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")

STATS = ("running_mean", "running_var", "num_batches_tracked")
CASES = [(nn.BatchNorm1d, torch.nn.BatchNorm1d, ()), (nn.BatchNorm1d, torch.nn.BatchNorm1d, (5,)),
         (nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 2)),
         (nn.BatchNorm3d, torch.nn.BatchNorm3d, (2, 1, 3))]


def _dt(name):
    return getattr(tl, name)


def _same_stats(a, b):
    for k in STATS:
        np.testing.assert_array_equal(getattr(a, k).numpy(), getattr(b, k).numpy(), err_msg=k)


def _escape_free():
    """Warnings turned errors: an escaped traced size (one graph per size) warns."""
    w = warnings.catch_warnings()
    w.__enter__()
    warnings.simplefilter("error")
    warnings.filterwarnings("ignore", message="save_graph: the graph writes state")
    return w


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("cls,tcls,rest", CASES)
def test_one_graph_matches_eager_and_torch(cls, tcls, rest, momentum, dtype):
    m = cls(4, momentum=momentum, dtype=_dt(dtype)).train()
    eager = copy.deepcopy(m)
    tm = tcls(4, momentum=momentum, dtype=getattr(torch, dtype)).train()
    f = tl.function(m, input_signature=[tl.TensorSpec((None, 4) + rest, dtype=_dt(dtype))])
    sizes = [3, 2, 5, 1, 9, 17] if rest else [3, 2, 5, 9, 17]
    w = _escape_free()
    try:
        for B in sizes:
            x = tl.randn(B, 4, *rest, dtype=_dt(dtype))
            with tl.no_grad():
                y = f(x)
                ye = eager(x)
            np.testing.assert_array_equal(y.numpy(), ye.numpy())
            _same_stats(m, eager)
            with torch.no_grad():
                yt = tm(torch.from_numpy(x.numpy().copy()))
            tol = 1e-5 if dtype == "float32" else 1e-12
            np.testing.assert_allclose(y.numpy(), yt.numpy(), rtol=tol, atol=tol)
            for k in STATS:
                np.testing.assert_allclose(getattr(m, k).numpy(), getattr(tm, k).numpy(),
                                           rtol=tol, atol=tol, err_msg=k)
    finally:
        w.__exit__(None, None, None)
    assert len(f.graphs) == 1


def test_compile_dynamic_one_graph():
    m = nn.BatchNorm2d(3).train()
    eager = copy.deepcopy(m)
    c = tl.compile(m, dynamic=True)
    w = _escape_free()
    try:
        for B, H in [(2, 4), (3, 5), (6, 2), (4, 4)]:
            x = tl.randn(B, 3, H, 3)
            with tl.no_grad():
                np.testing.assert_array_equal(c(x).numpy(), eager(x).numpy())
            _same_stats(m, eager)
    finally:
        w.__exit__(None, None, None)
    fn = getattr(c, "_tl_function", None) or getattr(c, "_fn", None)
    graphs = getattr(fn, "graphs", None)
    if graphs is not None:
        assert len(graphs) <= 2     # the static first trace, then one dynamic graph


def test_functional_batch_norm_one_graph():
    rm, rv = tl.zeros(3), tl.ones(3)
    erm, erv = tl.zeros(3), tl.ones(3)
    w, b = tl.randn(3), tl.randn(3)

    def step(x):
        return F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3)

    f = tl.function(step, input_signature=[tl.TensorSpec((None, 3, None))])
    for B, L in [(2, 3), (4, 1), (1, 6), (7, 7)]:
        x = tl.randn(B, 3, L)
        with tl.no_grad():
            y = f(x)
            ye = F.batch_norm(x, erm, erv, w, b, training=True, momentum=0.3)
        np.testing.assert_array_equal(y.numpy(), ye.numpy())
        np.testing.assert_array_equal(rm.numpy(), erm.numpy())
        np.testing.assert_array_equal(rv.numpy(), erv.numpy())
    assert len(f.graphs) == 1


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(2, 40), min_size=1, max_size=6),
       st.sampled_from(["float32", "float64"]))
def test_any_batch_sequence_bits_equal_eager(sizes, dtype):
    m = nn.BatchNorm1d(3, momentum=None, dtype=_dt(dtype)).train()
    eager = copy.deepcopy(m)
    f = tl.function(m, input_signature=[tl.TensorSpec((None, 3), dtype=_dt(dtype))])
    for B in sizes:
        x = tl.randn(B, 3, dtype=_dt(dtype))
        with tl.no_grad():
            np.testing.assert_array_equal(f(x).numpy(), eager(x).numpy())
        _same_stats(m, eager)
    assert len(f.graphs) == 1


def _torch_grads(x, w, b, gy, create=False):
    xt, wt, bt = (torch.tensor(a.numpy(), requires_grad=True) for a in (x, w, b))
    y = torch.nn.functional.batch_norm(xt, None, None, wt, bt, training=True)
    return y, torch.autograd.grad(y, (xt, wt, bt), torch.tensor(gy.numpy()),
                                  create_graph=create), (xt, wt, bt)


def test_backward_under_capture_matches_torch():
    m = nn.BatchNorm1d(3, dtype=tl.float64).train()

    def step(x, gy):
        x = x.detach().requires_grad_()
        y = m(x)
        return tl.grad(y, (x, m.weight, m.bias), gy)

    f = tl.function(step, input_signature=[tl.TensorSpec((None, 3, 4), dtype=tl.float64),
                                           tl.TensorSpec((None, 3, 4), dtype=tl.float64)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _backward_cases(f, m)


def _backward_cases(f, m):
    for B in [2, 5, 1, 8]:
        x, gy = tl.randn(B, 3, 4, dtype=tl.float64), tl.randn(B, 3, 4, dtype=tl.float64)
        got = f(x, gy)
        _, want, _ = _torch_grads(x, m.weight.detach(), m.bias.detach(), gy)
        for g, t in zip(got, want):
            np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-10, atol=1e-12)
    # (a step that differentiates is traced per input shape by tl.function's own rule)


@pytest.mark.parametrize("B", [2, 6])
def test_double_backward_matches_torch(B):
    x = tl.randn(B, 3, 2, dtype=tl.float64, requires_grad=True)
    w = tl.randn(3, dtype=tl.float64, requires_grad=True)
    b = tl.randn(3, dtype=tl.float64, requires_grad=True)
    rm, rv = tl.zeros(3, dtype=tl.float64), tl.ones(3, dtype=tl.float64)
    gy = tl.randn(B, 3, 2, dtype=tl.float64)
    y = F.batch_norm(x, rm, rv, w, b, training=True)
    gx, gw, gb = tl.grad(y, (x, w, b), gy, create_graph=True)
    gg = tl.grad((gx * gx).sum() + (gw * gb).sum(), (x, w))
    _, (tx, tw, tb), (xt, wt, _) = _torch_grads(x.detach(), w.detach(), b.detach(), gy, True)
    tgg = torch.autograd.grad((tx * tx).sum() + (tw * tb).sum(), (xt, wt))
    for g, t in zip(gg, tgg):
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-9, atol=1e-10)


def test_save_graph_and_load_serve_every_batch(tmp_path):
    m = nn.BatchNorm2d(3, momentum=None).train()
    f = tl.function(m, input_signature=[tl.TensorSpec((None, 3, None, 4))])
    with tl.no_grad():
        for B in [3, 5, 7, 9]:
            f(tl.randn(B, 3, 2, 4))
    assert len(f.graphs) == 1
    eager = copy.deepcopy(m)
    path = str(tmp_path / "bn.tlg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # it writes running statistics: said, not refused
        tl.save_graph(f, path)
    gm = tl.load_graph(path)
    for B, H in [(2, 3), (1, 2), (11, 5)]:
        x = tl.randn(B, 3, H, 4)
        with tl.no_grad():
            np.testing.assert_array_equal(gm(x).numpy(), eager(x).numpy())
        for k, v in gm.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), getattr(eager, k).numpy(), err_msg=k)


def test_onnx_export_dynamic_batch_matches_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    m = nn.BatchNorm1d(3).train()

    def step(x):
        return m(x), m.running_mean + 0, m.running_var + 0

    f = tl.function(step, input_signature=[tl.TensorSpec((None, 3, None))])
    with tl.no_grad():
        f(tl.randn(4, 3, 2))
    g = f.graphs[-1]
    # a graph that writes state is still refused unless its updates are dropped
    with pytest.raises(Exception, match="updates state"):
        g.to_onnx(str(tmp_path / "refused.onnx"))
    path = str(tmp_path / "bn.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # no size-predicate assumption to warn about
        g.to_onnx(path, drop_updates=True)
    sess = ort.InferenceSession(path)
    for B, L in [(2, 3), (9, 1), (1, 5)]:
        x = tl.randn(B, 3, L)
        e = copy.deepcopy(m)
        with tl.no_grad():
            want = (e(x), e.running_mean, e.running_var)
        got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
        for a, t in zip(got, want):
            np.testing.assert_allclose(a, t.numpy(), rtol=1e-5, atol=1e-6)


def test_one_value_per_channel_raises_in_every_replay(tmp_path):
    m = nn.BatchNorm1d(3).train()
    f = tl.function(m, input_signature=[tl.TensorSpec((None, 3))])
    msg = "expected more than 1 value per channel"
    with tl.no_grad():
        f(tl.randn(4, 3))
        with pytest.raises(ValueError, match=msg):
            m(tl.randn(1, 3))
        with pytest.raises(ValueError, match=msg):
            f(tl.randn(1, 3))
        with pytest.raises(ValueError, match=msg):
            tl.compile(copy.deepcopy(m), dynamic=True)(tl.randn(1, 3))
    with pytest.raises(ValueError):
        torch.nn.BatchNorm1d(3).train()(torch.randn(1, 3))
    path = str(tmp_path / "bn.tlg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.save_graph(f, path)
    with tl.no_grad(), pytest.raises(ValueError, match=msg):
        tl.load_graph(path)(tl.randn(1, 3))


def test_empty_batch(tmp_path):
    m = nn.BatchNorm1d(3).train()
    before = m.running_mean.numpy().copy()
    with tl.no_grad():
        assert m(tl.randn(0, 3)).shape == (0, 3)     # eager: as PyTorch, stats untouched
    np.testing.assert_array_equal(m.running_mean.numpy(), before)
    f = tl.function(m, input_signature=[tl.TensorSpec((None, 3))])
    with tl.no_grad():
        f(tl.randn(4, 3))
    path = str(tmp_path / "bn.tlg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.save_graph(f, path)
        snap = m.running_mean.numpy().copy()
        with tl.no_grad():
            # tl.function traces an empty batch apart: eager's result
            assert f(tl.randn(0, 3)).shape == (0, 3)
    np.testing.assert_array_equal(m.running_mean.numpy(), snap)
    gm = tl.load_graph(path)
    # the file holds the batch-statistics branch: it refuses, never NaN statistics
    with tl.no_grad(), pytest.raises(ValueError, match="traced with a non-empty batch"):
        gm(tl.randn(0, 3))
    np.testing.assert_array_equal(gm.state_dict()["running_mean"].numpy(), snap)


@pytest.mark.parametrize("cls,tcls,nd", [(nn.InstanceNorm1d, torch.nn.InstanceNorm1d, 1),
                                         (nn.InstanceNorm2d, torch.nn.InstanceNorm2d, 2)])
def test_instance_norm_running_stats_dynamic(cls, tcls, nd):
    m = cls(4, track_running_stats=True, dtype=tl.float64).train()
    eager = copy.deepcopy(m)
    tm = tcls(4, track_running_stats=True, dtype=torch.float64).train()
    f = tl.function(m, input_signature=[tl.TensorSpec((None, 4) + (None,) * nd,
                                                      dtype=tl.float64)])
    w = _escape_free()
    try:
        for B, S in [(2, 3), (3, 5), (1, 7), (4, 2)]:
            x = tl.randn(B, 4, *[S] * nd, dtype=tl.float64)
            with tl.no_grad():
                y = f(x)
                np.testing.assert_array_equal(y.numpy(), eager(x).numpy())
                yt = tm(torch.from_numpy(x.numpy().copy()))
            np.testing.assert_array_equal(m.running_var.numpy(), eager.running_var.numpy())
            np.testing.assert_allclose(y.numpy(), yt.numpy(), atol=1e-10)
            np.testing.assert_allclose(m.running_var.numpy(), tm.running_var.numpy(), atol=1e-12)
            np.testing.assert_allclose(m.running_mean.numpy(), tm.running_mean.numpy(),
                                       atol=1e-12)
    finally:
        w.__exit__(None, None, None)
    assert len(f.graphs) == 1
    with tl.no_grad(), pytest.raises(ValueError, match="more than 1 spatial element"):
        f(tl.randn(2, 4, *[1] * nd, dtype=tl.float64))


def test_group_norm_dynamic_batch_and_spatial():
    m = nn.GroupNorm(2, 4)
    f = tl.function(m, input_signature=[tl.TensorSpec((None, 4, None))])
    tm = torch.nn.GroupNorm(2, 4)
    for B, L in [(2, 3), (5, 1), (1, 6)]:
        x = tl.randn(B, 4, L)
        with tl.no_grad():
            y = f(x)
            yt = tm(torch.from_numpy(x.numpy().copy()))
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert len(f.graphs) == 1
