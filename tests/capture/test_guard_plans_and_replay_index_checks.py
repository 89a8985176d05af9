"""Fixes from the review of the guard plan, dropout's inplace, gather's range check, the
float16 wrapper's dtype=, ONNX output axes and adaptive max pooling's NaN indices."""
import gc
import warnings
import weakref

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.graph import signature

nn = tl.nn


# --- guard plans do not keep replaced state alive -------------------------------------------
class _Holder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.table = np.ones(1 << 20)       # 8 MiB: beyond what the guard copies by value
        self.cached = tl.ones(3)
        self.head = nn.Linear(4, 4)

    def forward(self, x):
        s = float(self.table.shape[0] > 0) + float(self.cached.shape[0])
        return self.head(self.fc(x)) * s


@pytest.mark.parametrize("attr", ["table", "cached", "head"])
def test_a_replaced_attribute_is_freed_once_the_stale_graph_is_checked(attr):
    m = _Holder()
    f = tl.function(m)
    x = tl.randn(2, 4)
    new = {"table": lambda: np.ones(10), "cached": lambda: tl.ones(3),
           "head": lambda: nn.Linear(4, 4)}[attr]
    with tl.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f(x)
        old = weakref.ref(getattr(m, attr))
        # the stale graph's bindings held the weights too, not only the guard
        old_weight = weakref.ref(m.head.weight) if attr == "head" else None
        setattr(m, attr, new())
        f(x)                    # the old graph's guard fails: a retrace, the old entry goes
        gc.collect()
        assert f.trace_count == 2 and len(f.graphs) == 1
        assert old() is None
        assert old_weight is None or old_weight() is None
        np.testing.assert_allclose(f(x).numpy(), m(x).numpy(), rtol=1e-6)


def test_a_flag_flip_keeps_both_plans_and_a_dropped_plan_comes_back():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    f = tl.function(model)
    x = tl.randn(3, 4)
    with tl.no_grad():
        model.eval()
        f(x)
        model.train()
        f(x)
        model.eval()
        f(x)
    assert f.trace_count == 2
    # a flag flipped: every object the plans hold is still there, so both are kept
    assert all(e.guards.plan is not None for es in f._cache.values() for e in es)

    class S:
        pass

    s = S()
    s.w = tl.ones(2)
    s.table = np.zeros(1 << 20)
    g = signature.Guards(lambda: None, [s])
    w, table = s.w, s.table
    s.table = np.zeros(3)
    assert "table" in g.check() and g.plan is None      # dropped: it held the old table
    assert g.check() is not None and g.plan is None
    s.table = table                                      # the traced state is back
    assert g.check() is None
    assert g.plan is not None and signature._holds(g.plan, g.roots)
    s.w = tl.ones(2)
    assert g.check() is not None and g.plan is None
    s.w = w
    assert g.check() is None and g.plan is not None


# --- dropout: inplace= on the modules, torch's positional inplace -------------------------
@pytest.mark.parametrize("cls,shape", [("Dropout", (6, 50)), ("Dropout1d", (4, 30, 5)),
                                       ("Dropout2d", (4, 30, 3, 3))])
def test_dropout_modules_take_inplace_as_torch(cls, shape):
    torch = pytest.importorskip("torch")
    m = getattr(nn, cls)(0.5, inplace=True)
    assert repr(m) == repr(getattr(torch.nn, cls)(0.5, inplace=True))
    assert repr(getattr(nn, cls)(0.3)) == repr(getattr(torch.nn, cls)(0.3))
    x = tl.ones(*shape)
    assert m(x) is x
    vals = set(np.unique(x.numpy()))
    assert vals == {0.0, 2.0}
    x = tl.ones(*shape)
    y = getattr(nn, cls)(0.5)(x)
    assert y is not x and (x.numpy() == 1).all()
    m.eval()
    assert m(x) is x and (x.numpy() == 1).all()


def test_functional_dropout_takes_torchs_positional_inplace():
    x = tl.ones(40, 30)
    assert F.dropout(x, 0.5, True, True) is x            # torch's nn.Dropout.forward call
    assert set(np.unique(x.numpy())) == {0.0, 2.0}
    x = tl.ones(40, 30)
    assert F.dropout(x, 0.5, True, False) is not x and (x.numpy() == 1).all()
    x = tl.ones(4, 6, 3, 3)
    assert F.dropout2d(x, 0.5, True, True) is x
    x = tl.ones(4, 6, 5)
    assert F.dropout1d(x, 0.5, True, True) is x
    per_channel = x.numpy()
    assert (per_channel.min(-1) == per_channel.max(-1)).all()
    # generator= stays a keyword (and a generator in the fourth place still works)
    a = F.dropout(tl.ones(20, 20), 0.5, True, generator=tl.Generator().manual_seed(3))
    b = F.dropout(tl.ones(20, 20), 0.5, True, False, generator=tl.Generator().manual_seed(3))
    c = F.dropout(tl.ones(20, 20), 0.5, True, tl.Generator().manual_seed(3))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(a.numpy(), c.numpy())
    with pytest.raises(TypeError, match="generator given twice"):
        F.dropout(tl.ones(2), 0.5, True, tl.Generator(), generator=tl.Generator())


def test_inplace_dropout_module_under_capture_in_eval_and_train():
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5, inplace=True), nn.Linear(8, 2))
    f = tl.function(model)
    x = tl.randn(3, 4)
    with tl.no_grad():
        model.eval()
        np.testing.assert_allclose(f(x).numpy(), model(x).numpy(), rtol=1e-6)
        model.train()
        assert f(x).shape == (3, 2)


# --- gather / index_select: the range check is the op's -----------------------------------
def _replayed(fn, good, bad, *more):
    f = tl.function(fn)
    with tl.no_grad():
        f(good, *more)
        with pytest.raises(IndexError, match="out of range"):
            f(bad, *more)
    assert f.trace_count == 1


def test_replayed_gather_and_index_select_refuse_negative_indices():
    x = tl.tensor([[10.0, 20.0, 30.0]])
    good, bad = tl.tensor([[0, 1]]), tl.tensor([[0, -1]])
    _replayed(lambda i, a: tl.gather(a, 1, i), good, bad, x)
    _replayed(lambda i, a: a.gather(1, i), good, tl.tensor([[0, 3]]), x)
    _replayed(lambda i, a: tl.gather(a, i, 1), good, bad, x)      # NumPy's argument order
    _replayed(lambda i, a: a.index_select(1, i), tl.tensor([0, 2]), tl.tensor([0, -1]), x)
    # take_along_axis and take keep NumPy's wrapping when replayed too
    f = tl.function(lambda a, i: (tl.take_along_axis(a, i, 1), tl.take(a, i[0], 1)))
    with tl.no_grad():
        f(x, good)
        a, b = f(x, bad)
    assert f.trace_count == 1
    assert a.tolist() == [[10.0, 30.0]] and b.tolist() == [[10.0, 30.0]]


def test_a_saved_gather_graph_checks_indices(tmp_path):
    f = tl.function(lambda a, i: a.gather(1, i))
    x = tl.tensor([[10.0, 20.0, 30.0]])
    with tl.no_grad():
        f(x, tl.tensor([[2, 0]]))
    tl.save_graph(f, tmp_path / "g.tlg")
    m = tl.load_graph(tmp_path / "g.tlg")
    out = m(x, tl.tensor([[2, 1]]))
    out = out[0] if isinstance(out, (list, tuple)) else out
    assert out.tolist() == [[30.0, 20.0]]
    with pytest.raises(IndexError, match="index -1 is out of range for dim 1 of size 3"):
        m(x, tl.tensor([[0, -1]]))


def test_gather_gradient_and_scatter_add_negative_indices_still_work():
    x = tl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    x.gather(1, tl.tensor([[2, 2], [0, 1]])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 2], [1, 1, 0]])
    src = tl.tensor(np.ones((1, 2)), requires_grad=True)
    # tensorlib's (NumPy-style) form wraps a negative index; PyTorch's form refuses it
    with pytest.raises(IndexError, match="out of bounds"):
        tl.scatter_add(tl.zeros(1, 3, dtype=tl.float64), 1, tl.tensor([[-1, 0]]), src)
    out = tl.scatter_add(tl.zeros(1, 3, dtype=tl.float64), tl.tensor([[-1, 0]]), src, 1)
    (out * tl.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    np.testing.assert_array_equal(src.grad.numpy(), [[3.0, 1.0]])


# --- half_via_float32 honours dtype= -------------------------------------------------------
def test_float16_wrapper_leaves_the_asked_dtype():
    from tensorlib.ops import nn_act
    from tensorlib.ops.nn_util import half_via_float32
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 7)).astype(np.float16)
    for name in ("softmax", "log_softmax"):
        fn = half_via_float32(getattr(nn_act, name))
        got = fn(tl.tensor(x), -1, dtype=tl.float32)
        want = getattr(torch.nn.functional, name)(torch.tensor(x), -1, dtype=torch.float32)
        assert got.dtype == tl.float32
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)
        assert fn(tl.tensor(x), -1, dtype=tl.float64).dtype == tl.float64
        assert fn(tl.tensor(x), -1).dtype == tl.float16
        x32 = tl.tensor(x.astype(np.float32))
        h = fn(x32, -1, dtype=tl.float16)            # float16 asked for: computed in float32
        assert h.dtype == tl.float16
        np.testing.assert_allclose(h.numpy().astype(np.float32),
                                   getattr(F, name)(x32, -1).numpy(), rtol=2e-3, atol=2e-3)
    xg = tl.tensor(x, requires_grad=True)
    F.softmax(xg, -1, dtype=tl.float32)[:, 0].sum().backward()
    assert xg.grad.dtype == tl.float16
    assert not hasattr(F, "_cast_first")


# --- ONNX: export_graph takes output axes --------------------------------------------------
def test_export_graph_writes_dynamic_output_axes(tmp_path):
    onnx = pytest.importorskip("onnx")
    lin = nn.Linear(5, 3)
    f = tl.function(lambda x: lin(x).relu(), input_signature=[tl.TensorSpec((None, 5))])
    with tl.no_grad():
        g = f.get_graph(tl.randn(2, 5))
    p = tmp_path / "g.onnx"
    tl.onnx.export_graph(g, p, input_names=["x"], output_names=["y"],
                         dim_names={(0, 0): "batch"}, output_axes={"y": {0: "batch"}})
    model = onnx.load(str(p))
    out = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert out == ["batch", 3]
    with pytest.raises(ValueError, match="axis 1 of output 'y'.*fixed size 3"):
        tl.onnx.export_graph(g, p, input_names=["x"], output_names=["y"],
                             output_axes={"y": [1]})


# --- adaptive max pooling with NaN ---------------------------------------------------------
@pytest.mark.parametrize("H,W,Ho,Wo", [(4, 4, 2, 2), (7, 5, 3, 2), (3, 7, 5, 6), (5, 5, 1, 1)])
def test_adaptive_max_pool_with_nan_matches_torch(H, W, Ho, Wo):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(H * 10 + W)
    for frac in (0.2, 0.6, 1.0):
        x = rng.integers(0, 3, (2, 3, H, W)).astype(np.float32)
        x[rng.random(x.shape) < frac] = np.nan
        a, ia = F.adaptive_max_pool2d(tl.tensor(x), (Ho, Wo), return_indices=True)
        b, ib = torch.nn.functional.adaptive_max_pool2d(torch.tensor(x), (Ho, Wo),
                                                        return_indices=True)
        np.testing.assert_array_equal(a.numpy(), b.numpy())      # NaN where torch's is
        np.testing.assert_array_equal(ia.numpy(), ib.numpy())
        np.testing.assert_array_equal(F.adaptive_max_pool2d(tl.tensor(x), (Ho, Wo)).numpy(),
                                      b.numpy())
    x = rng.integers(0, 3, (2, 3, 11)).astype(np.float32)
    x[rng.random(x.shape) < 0.4] = np.nan
    a, ia = F.adaptive_max_pool1d(tl.tensor(x), 4, return_indices=True)
    b, ib = torch.nn.functional.adaptive_max_pool1d(torch.tensor(x), 4, return_indices=True)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(ia.numpy(), ib.numpy())
