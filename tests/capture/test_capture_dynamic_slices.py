"""Slices and split/chunk along None dims of input_signature (progfuzz findings 1-3).

A slice of a None dim has Python's clamped length ``len(range(*k.indices(n)))``: the graph
marks it None (recomputed when it runs) instead of a stand-in number (``x[::2]`` was
2**39 long) or the traced length (``x[0:3]`` at n=2 was refused). A split/chunk into one
piece traces as eager. Each case is checked at several sizes against PyTorch (values and
gradients, float64), in the replayed graph, a saved graph file and ONNX."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.ops.indexing import SLICE
from tensorlib.onnx.context import UnsupportedOpError

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

F64 = np.float64

# name -> (key, input_signature shape, make a shape from the None dim's size n)
SLICES = {
    "step2": (np.s_[::2], (None,), lambda n: (n,)),
    "start1_step2": (np.s_[1::2], (None, 2), lambda n: (n, 2)),
    "step3": (np.s_[::3], (None, 2), lambda n: (n, 2)),
    "cols_step2": (np.s_[:, ::2], (2, None), lambda n: (2, n)),
    "rows_step2_none_rows": (np.s_[:, ::2], (None, 6), lambda n: (n, 6)),
    "fixed_0_3": (np.s_[0:3], (None,), lambda n: (n,)),
    "fixed_1_2": (np.s_[1:2], (None, 3), lambda n: (n, 3)),
    "last_two": (np.s_[-2:], (None,), lambda n: (n,)),
    "neg_bounds": (np.s_[-3:-1], (None,), lambda n: (n,)),
    "fixed_step": (np.s_[1:4:2], (None,), lambda n: (n,)),
    "ellipsis_step": (np.s_[..., 1::3], (2, None), lambda n: (2, n)),
    "int_and_step": (np.s_[0, ::2], (3, None), lambda n: (3, n)),
}
# the first traces, the second verifies that graph (a size past every bound: at n=2,
# x[0:3] spans the dim as a loop over its positions would, which traces per size); then
# sizes below the bounds
SIZES = (5, 8, 2, 1, 3, 12)


def _arr(shape, seed=0, dtype=F64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _fn(key):
    return lambda x: x[key] * 2


def _torch_ref(key, a, cot):
    """PyTorch's x[key] * 2 and the gradient of sum(out * cot) w.r.t. x."""
    x = torch.tensor(a, requires_grad=True)
    out = x[key] * 2
    (g,) = torch.autograd.grad((out * torch.tensor(cot)).sum(), [x])
    return out.detach().numpy(), g.numpy()


def _function(key, sig, dtype="float64"):
    return tl.function(_fn(key), input_signature=[tl.TensorSpec(sig, dtype)])


@pytest.mark.parametrize("name", sorted(SLICES))
def test_eager_values_and_gradients_match_torch(name):
    key, _, shape = SLICES[name]
    for k, n in enumerate(SIZES):
        a = _arr(shape(n), seed=k)
        cot = _arr(np.empty(shape(n))[key].shape, seed=k + 50)
        want, gwant = _torch_ref(key, a, cot)
        x = tl.tensor(a, requires_grad=True)
        out = _fn(key)(x)
        (g,) = tl.grad((out * tl.tensor(cot)).sum(), [x])
        assert out.shape == want.shape
        np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
        np.testing.assert_allclose(g.numpy(), gwant, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(SLICES))
def test_one_graph_serves_every_size(name):
    key, sig, shape = SLICES[name]
    f = _function(key, sig)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tl.no_grad():
            for k, n in enumerate(SIZES):
                a = _arr(shape(n), seed=k)
                want, _ = _torch_ref(key, a, np.ones(np.empty(shape(n))[key].shape))
                got = f(tl.tensor(a))
                assert got.shape == want.shape, (n, got.shape, want.shape)
                np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert f.trace_count == 1
    g = f.graphs[0]
    (node,) = [nd for nd in g.nodes if nd.op == "slice"]
    assert None in node.out.shape
    # no stand-in size leaks into the graph (x[::2] was 2**39 long)
    assert all(d is None or d <= 12 for v in g.values for d in v.shape)


@pytest.mark.parametrize("name", sorted(SLICES))
def test_gradients_of_a_captured_step_match_torch(name):
    """The forward and its input gradient in one tl.function (traced per shape: the gradient
    holds the batch's sizes), at sizes below and above the slice's bounds."""
    key, sig, shape = SLICES[name]

    def step(x, cot):
        x = x.detach().requires_grad_()
        out = _fn(key)(x)
        (g,) = tl.grad((out * cot).sum(), [x])
        return out.detach(), g
    out_sig = tl.TensorSpec((None,) * len(np.empty(shape(4))[key].shape), "float64")
    f = tl.function(step, input_signature=[tl.TensorSpec(sig, "float64"), out_sig])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # (the per-shape trace warns once)
        for k, n in enumerate(SIZES):
            a = _arr(shape(n), seed=k)
            cot = _arr(np.empty(shape(n))[key].shape, seed=k + 9)
            want, gwant = _torch_ref(key, a, cot)
            out, g = f(tl.tensor(a), tl.tensor(cot))
            np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)
            np.testing.assert_allclose(g.numpy(), gwant, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(SLICES))
def test_saved_graph_round_trips_at_every_size(name, tmp_path):
    key, sig, shape = SLICES[name]
    f = _function(key, sig)
    with tl.no_grad():
        f(tl.tensor(_arr(shape(SIZES[0]))))
    tl.save_graph(f, tmp_path / "s.tlg")
    m = tl.load_graph(tmp_path / "s.tlg")
    for k, n in enumerate(SIZES):
        a = _arr(shape(n), seed=k + 3)
        want, _ = _torch_ref(key, a, np.ones(np.empty(shape(n))[key].shape))
        got = m(tl.tensor(a))
        got = got[0] if isinstance(got, (tuple, list)) else got
        assert got.shape == want.shape, (n, got.shape, want.shape)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(SLICES))
def test_onnx_with_dynamic_axes_at_every_size(name, tmp_path):
    key, sig, shape = SLICES[name]
    axis = sig.index(None)
    ex = tl.tensor(_arr(shape(SIZES[0]), dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.onnx.export(_fn(key), (ex,), tmp_path / "s.onnx", dynamic_axes={0: [axis]})
    sess = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    for k, n in enumerate(SIZES[1:]):
        a = _arr(shape(n), seed=k + 5, dtype=np.float32)
        want, _ = _torch_ref(key, a, np.ones(np.empty(shape(n))[key].shape, np.float32))
        got = sess.run(None, {sess.get_inputs()[0].name: a})[0]
        assert got.shape == want.shape, (n, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(start=st.one_of(st.none(), st.integers(-7, 7)),
       stop=st.one_of(st.none(), st.integers(-7, 7)),
       step=st.one_of(st.none(), st.integers(1, 4)),
       sizes=st.lists(st.integers(0, 9), min_size=3, max_size=3))
def test_any_positive_step_slice_follows_the_size(start, stop, step, sizes):
    key = np.s_[start:stop:step]
    f = _function(key, (None, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # a slice that reads every position retraces
        with tl.no_grad():
            for k, n in enumerate(sizes):
                a = _arr((n, 2), seed=k)
                want, _ = _torch_ref(key, a, np.ones(np.empty((n, 2))[key].shape))
                got = f(tl.tensor(a))
                assert got.shape == want.shape, (key, n, got.shape, want.shape)
                np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(start=st.one_of(st.none(), st.integers(-6, 6)),
       stop=st.one_of(st.none(), st.integers(-6, 6)),
       step=st.one_of(st.none(), st.integers(-3, 3).filter(bool)))
def test_infer_gives_none_unless_empty_at_every_size(start, stop, step):
    """The slice op's shape rule on a None dim: None, or 0 for a slice that is empty at every
    size (checked at 0..40), never a number that holds at some sizes only."""
    k = slice(start, stop, step)
    lengths = {len(range(*k.indices(n))) for n in range(41)}
    (shape, dt) = SLICE.infer(((None, 3), np.dtype(np.float32)), index=(k,))
    assert dt == np.float32 and shape[1] == 3
    assert shape[0] == (0 if lengths == {0} else None)


def test_infer_keeps_static_dims_exact():
    spec = ((None, 7, 5), np.dtype(np.float64))
    shape, _ = SLICE.infer(spec, index=(slice(None, None, 2), slice(1, None, 3), 2))
    assert shape == (None, 2)
    shape, _ = SLICE.infer(spec, index=(Ellipsis, slice(-2, None)))
    assert shape == (None, 7, 2)
    shape, _ = SLICE.infer(spec, index=(slice(3, 1), None, slice(0, 3)))
    assert shape == (0, 1, 3, 5)


def test_slice_step_zero_is_an_error_under_capture():
    f = _function(np.s_[::0], (None,))
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        with tl.no_grad():
            f(tl.tensor(_arr((4,))))


# --- split / chunk into one piece ---------------------------------------------------------------
def test_split_into_one_piece_along_the_none_dim_matches_torch():
    f = tl.function(lambda x: x.split(2, dim=0)[0] * 2,
                    input_signature=[tl.TensorSpec((None, 4), "float64")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the piece count fixes the dim: traced per size
        with tl.no_grad():
            for k, n in enumerate((1, 2, 5, 1, 3)):
                a = _arr((n, 4), seed=k)
                want = (torch.tensor(a).split(2, 0)[0] * 2).numpy()
                got = f(tl.tensor(a))
                assert got.shape == want.shape
                np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_split_by_size_along_the_none_dim_is_refused_by_exports(tmp_path):
    f = tl.function(lambda x: x.split(2, dim=0)[0] * 2,
                    input_signature=[tl.TensorSpec((None, 4), "float32")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tl.no_grad():
            f(tl.ones(1, 4))
            f(tl.ones(3, 4))
        with pytest.raises(Exception, match="plain Python number"):
            tl.save_graph(f, tmp_path / "x.tlg")
        with pytest.raises(UnsupportedOpError, match="plain Python number"):
            tl.onnx.export(lambda x: x.split(2, dim=0)[0] * 2, (tl.ones(1, 4),),
                           tmp_path / "x.onnx", dynamic_axes={0: [0]})


@pytest.mark.parametrize("make", [
    lambda L: (lambda x: L.chunk(x, 3, dim=1)[0] * 2),
    lambda L: (lambda x: x.split(4, dim=1)[0] * 2),
    lambda L: (lambda x: L.split(x, [1], dim=1)[0] * 2),
])
def test_one_piece_of_a_static_dim_beside_a_none_dim(make, tmp_path):
    fn, ref = make(tl), make(torch)
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, 1), "float64")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tl.no_grad():
            for k, n in enumerate((1, 4, 2)):
                a = _arr((n, 1), seed=k)
                np.testing.assert_allclose(f(tl.tensor(a)).numpy(),
                                           ref(torch.tensor(a)).numpy(), rtol=1e-12)
    assert f.trace_count == 1
    # gradient through the single piece, eager vs torch
    a = _arr((3, 1), seed=7)
    x, xt = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (g,) = tl.grad((fn(x) * 3).sum(), [x])
    (gt,) = torch.autograd.grad((ref(xt) * 3).sum(), [xt])
    np.testing.assert_allclose(g.numpy(), gt.numpy(), rtol=1e-12)
    # saved file and ONNX
    tl.save_graph(f, tmp_path / "c.tlg")
    m = tl.load_graph(tmp_path / "c.tlg")
    a = _arr((6, 1), seed=8)
    got = m(tl.tensor(a))
    got = got[0] if isinstance(got, (tuple, list)) else got
    np.testing.assert_allclose(got.numpy(), ref(torch.tensor(a)).numpy(), rtol=1e-12)
    tl.onnx.export(fn, (tl.ones(2, 1),), tmp_path / "c.onnx", dynamic_axes={0: [0]})
    sess = ort.InferenceSession(str(tmp_path / "c.onnx"), providers=["CPUExecutionProvider"])
    a32 = a.astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: a32})[0],
                               ref(torch.tensor(a32)).numpy(), rtol=1e-6)


def test_infer_shapes_over_a_single_piece_split():
    x = tl.ones(3, 1)
    with tl.capture(x, input_shapes=[(None, 1)]) as g:
        (y,) = tl.chunk(x, 3, dim=1)
        z = y * 2
    g.set_outputs(z)
    g.infer_shapes()
    (node,) = [n for n in g.nodes if n.op == "split"]
    assert len(node.outputs) == 1 and node.outputs[0].shape == (None, 1)
    out = g.run({0: tl.ones(5, 1)})
    out = out[0] if isinstance(out, (list, tuple)) else out
    np.testing.assert_allclose(out.numpy(), np.full((5, 1), 2.0))


def test_a_slice_that_spans_a_small_dim_traces_per_size_and_says_so():
    """x[0:3] traced at n=2 reads every position, as an unrolled loop of chunks would: it is
    traced per size (right at each), and the warning names the slice, not a size read."""
    f = _function(np.s_[0:3], (None,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tl.no_grad():
            for n in (2, 6, 1, 4):
                a = _arr((n,), seed=n)
                np.testing.assert_allclose(f(tl.tensor(a)).numpy(), a[:3] * 2, rtol=1e-12)
    msgs = [str(w.message) for w in caught]
    assert any("one slice with constant bounds spans each of the 2 positions" in m
               for m in msgs), msgs
    assert not any("turned into a plain Python number" in m for m in msgs), msgs
