"""chunk / split / tensor_split along a dynamic batch dim, and setitem over dynamic dims:
eager vs tl.function (None batch) vs onnxruntime (dynamic_axes), several batch sizes."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.onnx.context import UnsupportedOpError
from tensorlib.ops import shape as S

ort = pytest.importorskip("onnxruntime")
BATCHES = (3, 4, 8)


def _export(model, example, path, n_out=1, out_axis=0):
    outs = [f"o{i}" for i in range(n_out)]
    axes = {"x": {0: "B"}}
    axes.update({o: {out_axis: "B"} for o in outs})
    tl.onnx.export(model, example, str(path), input_names=["x"], output_names=outs,
                   dynamic_axes=axes)
    return ort.InferenceSession(str(path))


def _function(f, shape, dtype=tl.float32):
    return tl.function(f, input_signature=[tl.TensorSpec(shape, dtype)])


class _Fn(tl.nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x)


class CFG(tl.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = tl.nn.Linear(4, 4)

    def forward(self, x, w):
        c, u = self.lin(tl.cat([x, x * 0])).chunk(2)
        return u + w * (c - u)


def test_cfg_chunk2_exports_with_dynamic_batch(tmp_path):
    m = CFG()
    path = tmp_path / "cfg.onnx"
    tl.onnx.export(m, (tl.randn(4, 4), tl.tensor(2.0)), str(path), input_names=["x", "w"],
                   output_names=["o"], dynamic_axes={"x": {0: "B"}, "o": {0: "B"}})
    sess = ort.InferenceSession(str(path))
    imported = tl.onnx.load(str(path))
    for b in BATCHES:
        x = np.random.randn(b, 4).astype(np.float32)
        want = m(tl.tensor(x), tl.tensor(2.0)).numpy()
        got = sess.run(None, {"x": x, "w": np.array(2.0, np.float32)})[0]
        assert got.shape == (b, 4)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        back = imported(tl.tensor(x), tl.tensor(np.array(2.0, np.float32)))
        back = back[0] if isinstance(back, (tuple, list)) else back
        np.testing.assert_allclose(np.asarray(back), want, rtol=1e-5, atol=1e-6)


SPLITS = {
    "chunk2": lambda y, b: y.chunk(2),
    "chunk2_dim1": lambda y, b: y.transpose(0, 1).chunk(2, dim=1),
    "split_size": lambda y, b: y.split(b),
    "split_list": lambda y, b: y.split([b, b]),
    "split_list_mixed": lambda y, b: tl.cat([y, y[:1]]).split([b, 1, b]),
    "tensor_split_sections": lambda y, b: S.tensor_split_sections(y, 3),
    "tensor_split_method": lambda y, b: y.tensor_split(2),
    "tensor_split_3": lambda y, b: tl.tensor_split(y, 3),
    "numpy_split": lambda y, b: tl.split(y, 2, axis=0),
}
TORCH = {
    "chunk2": lambda y, b: y.chunk(2),
    "chunk2_dim1": lambda y, b: y.transpose(0, 1).chunk(2, dim=1),
    "split_size": lambda y, b: y.split(b),
    "split_list": lambda y, b: y.split([b, b]),
    "split_list_mixed": lambda y, b: __import__("torch").cat([y, y[:1]]).split([b, 1, b]),
    "tensor_split_sections": lambda y, b: y.tensor_split(3),
    "tensor_split_method": lambda y, b: y.tensor_split(2),
    "tensor_split_3": lambda y, b: y.tensor_split(3),
    "numpy_split": lambda y, b: y.chunk(2),
}


def _pieces_fn(kind):
    def f(x):
        y = tl.cat([x, x * 2.0 + 1.0])
        return tuple(p * 1.0 for p in SPLITS[kind](y, x.shape[0]))
    return f


@pytest.mark.parametrize("kind", list(SPLITS))
def test_split_forms_follow_dynamic_batch(kind, tmp_path):
    torch = pytest.importorskip("torch")
    f = _pieces_fn(kind)
    fn = _function(f, (None, 3), tl.float64)
    example = tl.tensor(np.random.randn(4, 3))
    n_out = len(f(example))
    sess = _export(_Fn(f), (example.float(),), tmp_path / "s.onnx", n_out=n_out,
                   out_axis=1 if kind.endswith("dim1") else 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # no retrace warning: one graph for all sizes
        for b in BATCHES:
            x = np.random.randn(b, 3)
            t = torch.tensor(x)
            want = [p.numpy() for p in TORCH[kind](torch.cat([t, t * 2.0 + 1.0]), b)]
            eager = f(tl.tensor(x))
            traced = fn(tl.tensor(x))
            onnx = sess.run(None, {"x": x.astype(np.float32)})
            assert len(want) == len(eager) == len(traced) == len(onnx), kind
            for w, e, g, o in zip(want, eager, traced, onnx):
                assert w.shape == e.shape == g.shape == o.shape, kind
                np.testing.assert_allclose(e.numpy(), w)
                np.testing.assert_allclose(g.numpy(), w)
                np.testing.assert_allclose(o, w, rtol=1e-5, atol=1e-5)
    assert fn.trace_count == 1


@pytest.mark.parametrize("kind", ["chunk2", "split_size", "split_list", "tensor_split_sections"])
def test_split_forms_gradients_match_torch(kind):
    torch = pytest.importorskip("torch")
    weights = [1.0, -2.0, 3.0]

    def loss(x):
        y = tl.cat([x, x * 2.0 + 1.0])
        return sum(((p * p).sum() * w for p, w in zip(SPLITS[kind](y, x.shape[0]), weights)))

    def step(x):
        return tl.grad(loss(x), [x])[0]

    fn = _function(step, (None, 3), tl.float64)
    for b in BATCHES:
        x = np.random.randn(b, 3)
        t = torch.tensor(x, requires_grad=True)
        pieces = TORCH[kind](torch.cat([t, t * 2.0 + 1.0]), b)
        sum((p * p).sum() * w for p, w in zip(pieces, weights)).backward()
        xt = tl.tensor(x, requires_grad=True)
        np.testing.assert_allclose(step(xt).numpy(), t.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(fn(tl.tensor(x, requires_grad=True)).numpy(),
                                   t.grad.numpy(), rtol=1e-10)


def test_chunk_with_size_dependent_count_is_refused_for_export(tmp_path):
    with pytest.raises(UnsupportedOpError, match=r"chunk\(3\).*number of pieces"):
        _export(_Fn(lambda x: x.chunk(3)[0] * 1.0), (tl.randn(6, 3),), tmp_path / "c3.onnx")
    with pytest.raises(UnsupportedOpError, match=r"split\(2\).*number of pieces"):
        _export(_Fn(lambda x: x.split(2)[0] * 1.0), (tl.randn(6, 3),), tmp_path / "s2.onnx")


def test_chunk3_under_function_retraces_and_matches_torch():
    torch = pytest.importorskip("torch")
    fn = _function(lambda x: x.chunk(3), (None, 2), tl.float64)
    with pytest.warns(UserWarning, match=r"chunk\(3\)"):
        for b in (6, 4, 5):
            x = np.random.randn(b, 2)
            got, want = fn(tl.tensor(x)), torch.tensor(x).chunk(3)
            assert [g.shape for g in got] == [tuple(w.shape) for w in want]
            for g, w in zip(got, want):
                np.testing.assert_allclose(g.numpy(), w.numpy())


def test_split_list_that_misses_the_size_raises():
    with pytest.raises(tl.errors.ShapeError, match="do not sum"):
        tl.randn(5, 2).split([2, 2])
    fn = _function(lambda x: tl.cat([x, x]).split([x.shape[0], 1]), (None, 2))
    with pytest.raises(tl.errors.ShapeError, match="do not sum"):
        fn(tl.randn(3, 2))


# --- setitem over dynamic dims ------------------------------------------------------
class FPS(tl.nn.Module):
    """Farthest point sampling: ``centroids[:, i] = farthest`` into a (B, npoint) buffer."""

    def forward(self, xyz):
        b, n, _ = xyz.shape
        centroids = tl.zeros(b, 4, dtype=tl.int64)
        distance = tl.ones(b, n) * 1e10
        farthest = tl.zeros(b, dtype=tl.int64)
        for i in range(4):
            centroids[:, i] = farthest
            c = tl.take_along_axis(xyz, farthest.reshape(b, 1, 1).expand(b, 1, 3), 1)
            distance = tl.minimum(distance, ((xyz - c) ** 2).sum(-1))
            farthest = distance.argmax(-1)
        return centroids


def test_farthest_point_sampling_exports_with_dynamic_batch(tmp_path):
    m = FPS()
    sess = _export(m, (tl.randn(2, 10, 3),), tmp_path / "fps.onnx")
    fn = _function(m, (None, 10, 3))
    for b in BATCHES:
        x = np.random.randn(b, 10, 3).astype(np.float32)
        want = m(tl.tensor(x)).numpy()
        np.testing.assert_array_equal(sess.run(None, {"x": x})[0], want)
        np.testing.assert_array_equal(fn(tl.tensor(x)).numpy(), want)


KEYS = [
    (slice(None), 1),
    (Ellipsis, slice(1, 3)),
    (slice(1, None), None, slice(None, None, 2)),
    (-1,),
    (slice(-2, None),),
    (slice(None, -1), -1),
    (slice(1, 100, 3), 0),
    (Ellipsis, None, 2),
]


def _setter(key, scalar):
    def f(x):
        out = x * 1.0
        v = 7.0 if scalar else out[key] * -3.0 + 0.5
        out[key] = v
        return out
    return f


@pytest.mark.parametrize("key", KEYS, ids=repr)
@pytest.mark.parametrize("scalar", [False, True])
def test_setitem_basic_keys_over_dynamic_batch(key, scalar, tmp_path):
    torch = pytest.importorskip("torch")
    f = _setter(key, scalar)
    sess = _export(_Fn(f), (tl.randn(5, 4),), tmp_path / "set.onnx")
    fn = _function(f, (None, 4))
    for b in BATCHES:
        x = np.random.randn(b, 4).astype(np.float32)
        t = torch.tensor(x)
        t[key] = 7.0 if scalar else t[key] * -3.0 + 0.5
        np.testing.assert_allclose(f(tl.tensor(x)).numpy(), t.numpy(), rtol=1e-6)
        np.testing.assert_allclose(fn(tl.tensor(x)).numpy(), t.numpy(), rtol=1e-6)
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], t.numpy(), rtol=1e-6)


_bound = st.one_of(st.none(), st.integers(-5, 5))


@settings(max_examples=12, deadline=None)
@given(start=_bound, stop=_bound, step=st.integers(1, 3), col=st.integers(-4, 3))
def test_setitem_random_slices_over_dynamic_axis(start, stop, step, col, tmp_path_factory):
    key = (slice(start, stop, step), col)
    f = _setter(key, False)
    sess = _export(_Fn(f), (tl.randn(12, 4),), tmp_path_factory.mktemp("h") / "h.onnx")
    for b in (2, 7, 13):
        x = np.random.randn(b, 4).astype(np.float32)
        want = x.copy()
        want[key] = want[key] * -3.0 + 0.5
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], want, rtol=1e-6)


def test_setitem_gradient_through_dynamic_function():
    torch = pytest.importorskip("torch")

    def g(x, v):
        out = x * 2.0
        out[:, 1] = v * v
        return tl.grad((out * out).sum(), [x, v])

    fn = tl.function(g, input_signature=[tl.TensorSpec((None, 3), tl.float64),
                                         tl.TensorSpec((None,), tl.float64)])
    for b in BATCHES:
        x, v = np.random.randn(b, 3), np.random.randn(b)
        tx, tv = torch.tensor(x, requires_grad=True), torch.tensor(v, requires_grad=True)
        out = tx * 2.0
        out[:, 1] = tv * tv
        (out * out).sum().backward()
        gx, gv = fn(tl.tensor(x, requires_grad=True), tl.tensor(v, requires_grad=True))
        np.testing.assert_allclose(gx.numpy(), tx.grad.numpy())
        np.testing.assert_allclose(gv.numpy(), tv.grad.numpy())


def test_setitem_unsupported_dynamic_keys_name_the_reason(tmp_path):
    def arrays(x):
        out = x * 1.0
        out[tl.tensor([0, 1])] = 0.0
        return out

    def backwards(x):
        out = x * 1.0
        out[::-1, 0] = 0.0
        return out

    with pytest.raises(UnsupportedOpError, match="setitem"):
        _export(_Fn(arrays), (tl.randn(4, 3),), tmp_path / "a.onnx")
    with pytest.raises(UnsupportedOpError, match="negative slice step"):
        _export(_Fn(backwards), (tl.randn(4, 3),), tmp_path / "b.onnx")


def test_setitem_static_export_is_unchanged(tmp_path):
    f = _setter((slice(None), 1), False)
    path = tmp_path / "static.onnx"
    tl.onnx.export(_Fn(f), (tl.randn(3, 4),), str(path), input_names=["x"])
    import onnx
    ops = {nd.op_type for nd in onnx.load(str(path)).graph.node}
    assert "ScatterElements" in ops and "ScatterND" not in ops
    x = np.random.randn(3, 4).astype(np.float32)
    np.testing.assert_allclose(ort.InferenceSession(str(path)).run(None, {"x": x})[0],
                               f(tl.tensor(x)).numpy(), rtol=1e-6)


def test_diagonal_embed_over_a_dynamic_length_is_refused(tmp_path):
    # the dynamic diagonal length was read as None and exported as an empty diagonal (zeros)
    from tensorlib.ops import diagonal as DG
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(tl.onnx.UnsupportedOpError, match="diagonal_embed"):
            tl.onnx.export(
                lambda g: tl.apply(DG.DIAGONAL_EMBED, g, shape=(1, 1), offset=0, axis1=0,
                                   axis2=1),
                (tl.tensor(np.array([0.5], np.float32)),), str(tmp_path / "d.onnx"),
                dynamic_axes={0: [0]})
