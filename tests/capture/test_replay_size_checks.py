"""Size checks at replay of graphs with None (dynamic) dims (REPORT F1).

A ``tl.function`` with None H/W re-traces on its second size, then replays one graph for
every later size: the size rules that eager tensorlib and PyTorch enforce (reflect/circular
pad widths, replicate of an empty dim, pool kernels larger than the input, empty adaptive
pools, a bilinear resize to 0) must raise there too, from the ops' checks.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# (captured fn, the same in PyTorch, bad input shape, a message eager gives)
CASES = [
    ("reflect2d", lambda x: F.pad(x, (2, 2, 2, 2), mode="reflect"),
     lambda x: TF.pad(x, (2, 2, 2, 2), mode="reflect"), (1, 1, 2, 2), "reflect padding"),
    ("reflect1d", lambda x: F.pad(x, (3, 3), mode="reflect"),
     lambda x: TF.pad(x, (3, 3), mode="reflect"), (1, 1, 3), "reflect padding"),
    ("circular", lambda x: F.pad(x, (3, 3, 3, 3), mode="circular"),
     lambda x: TF.pad(x, (3, 3, 3, 3), mode="circular"), (1, 1, 2, 2), "wraps around"),
    ("replicate_empty", lambda x: F.pad(x, (1, 1, 1, 1), mode="replicate"),
     lambda x: TF.pad(x, (1, 1, 1, 1), mode="replicate"), (1, 1, 0, 3), "empty dim"),
    ("max_pool", lambda x: F.max_pool2d(x, 5), lambda x: TF.max_pool2d(x, 5), (1, 1, 3, 3),
     "too small"),
    ("avg_pool", lambda x: F.avg_pool2d(x, 5), lambda x: TF.avg_pool2d(x, 5), (1, 1, 3, 3),
     "too small"),
    ("adaptive_avg_empty", lambda x: F.adaptive_avg_pool2d(x, 2),
     lambda x: TF.adaptive_avg_pool2d(x, 2), (1, 1, 0, 3), "empty spatial"),
    ("bilinear_zero", lambda x: F.interpolate(x, scale_factor=0.3, mode="bilinear"),
     lambda x: TF.interpolate(x, scale_factor=0.3, mode="bilinear"), (1, 1, 2, 2),
     "empty output"),
    ("dilated_max_pool", lambda x: F.max_pool2d(x, 3, 1, 0, dilation=2),
     lambda x: TF.max_pool2d(x, 3, 1, 0, dilation=2), (1, 1, 4, 4), "too small"),
]
IDS = [c[0] for c in CASES]


def _sig(nd):
    return [tl.TensorSpec((1, 1) + (None,) * (nd - 2), tl.float64)]


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _warm(f, nd):
    """Two sizes: the trace and the re-trace that turns the graph dynamic."""
    with tl.no_grad():
        for n in (8, 9):
            f(tl.tensor(_rand((1, 1) + (n,) * (nd - 2))))


@pytest.mark.parametrize("name,fn,tfn,bad,msg", CASES, ids=IDS)
def test_replay_raises_like_eager(name, fn, tfn, bad, msg):
    f = tl.function(fn, input_signature=_sig(len(bad)))
    _warm(f, len(bad))
    traces = f.trace_count
    x = tl.tensor(_rand(bad))
    with pytest.raises(ValueError, match=msg) as eager:
        fn(x)
    with pytest.raises(RuntimeError):
        tfn(torch.tensor(_rand(bad)))
    with tl.no_grad():
        for _ in range(2):      # and again: no state is cached by the failing replay
            with pytest.raises(ValueError) as replay:
                f(x)
            assert msg in str(replay.value)
        assert f.trace_count == traces      # raised by the replayed graph
        if "interpolate" not in str(eager.value):
            # same message; interpolate's per-axis op check names the dim instead of the pair
            assert str(replay.value) == str(eager.value)


@pytest.mark.parametrize("name,fn,tfn,bad,msg", CASES, ids=IDS)
def test_valid_sizes_still_match_torch(name, fn, tfn, bad, msg):
    f = tl.function(fn, input_signature=_sig(len(bad)))
    _warm(f, len(bad))
    for k, n in enumerate((10, 7, 13)):
        a = _rand((1, 1) + (n,) * (len(bad) - 2), k)
        with tl.no_grad():
            got = f(tl.tensor(a)).numpy()
        np.testing.assert_allclose(got, fn(tl.tensor(a)).numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got, tfn(torch.tensor(a)).numpy(), rtol=1e-10, atol=1e-12)
    with tl.no_grad():
        with pytest.raises(ValueError, match=msg):
            f(tl.tensor(_rand(bad)))


@pytest.mark.parametrize("name,fn,tfn,bad,msg", CASES, ids=IDS)
def test_gradients_through_checked_ops_match_torch(name, fn, tfn, bad, msg):
    # a graph with gradients traces once per shape (its sizes come from the batch), so the
    # ops' checks and gradients are those of eager mode
    nd = len(bad)

    def f(x):
        return (fn(x) ** 2).sum()
    for n in (8, 9, 11):
        a = _rand((1, 1) + (n,) * (nd - 2), n)
        x = tl.tensor(a, requires_grad=True)
        f(x).backward()
        t = torch.tensor(a, requires_grad=True)
        (tfn(t) ** 2).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=msg):
        f(tl.tensor(_rand(bad), requires_grad=True))


def test_bigger_pipeline_raises_at_third_size():
    w = tl.tensor(np.full((3, 1, 3, 3), 1 / 9.0))

    def pipe(x):
        y = F.pad(x, (2, 2, 2, 2), mode="reflect")
        y = F.conv2d(y, w, groups=3)
        y = F.max_pool2d(y, 4)
        y = F.pad(y, (2, 2, 2, 2), mode="circular")
        return F.adaptive_avg_pool2d(y, 2)

    f = tl.function(pipe, input_signature=[tl.TensorSpec((None, 3, None, None), tl.float64)])
    with tl.no_grad():
        for s in [(1, 3, 30, 30), (2, 3, 33, 40)]:
            f(tl.tensor(_rand(s)))
        for s in [(1, 3, 26, 29), (3, 3, 40, 31)]:
            a = _rand(s)
            np.testing.assert_allclose(f(tl.tensor(a)).numpy(), pipe(tl.tensor(a)).numpy(),
                                       rtol=1e-12)
        for s in [(1, 3, 1, 1), (1, 3, 2, 8)]:
            with pytest.raises(ValueError, match="reflect padding"):
                pipe(tl.tensor(_rand(s)))
            with pytest.raises(ValueError, match="reflect padding"):
                f(tl.tensor(_rand(s)))
        # the reflect pad passes, the circular one not: 3 rows -> conv 5 -> pool 1 row
        with pytest.raises(ValueError, match="wraps around"):
            pipe(tl.tensor(_rand((1, 3, 3, 9))))
        with pytest.raises(ValueError, match="wraps around"):
            f(tl.tensor(_rand((1, 3, 3, 9))))
    assert f.trace_count <= 2      # the bad sizes met the replayed graph, not a re-trace


@settings(max_examples=25, deadline=None)
@given(h=st.integers(0, 6), w=st.integers(1, 6), p=st.integers(1, 4),
       mode=st.sampled_from(["reflect", "replicate", "circular"]))
def test_pad_replay_raises_iff_torch_does(h, w, p, mode):
    f = _PADS.setdefault((p, mode), _padder(p, mode))
    a = _rand((1, 1, h, w))
    try:
        want = TF.pad(torch.tensor(a), (p, p, p, p), mode=mode).numpy()
    except RuntimeError:
        want = None
    with tl.no_grad():
        if want is None:
            with pytest.raises(ValueError):
                f(tl.tensor(a))
        else:
            np.testing.assert_allclose(f(tl.tensor(a)).numpy(), want, rtol=0, atol=0)


_PADS: dict = {}


def _padder(p, mode):
    f = tl.function(lambda x: F.pad(x, (p, p, p, p), mode=mode),
                    input_signature=[tl.TensorSpec((1, 1, None, None), tl.float64)])
    _warm(f, 4)
    return f


def test_static_graph_still_checked_by_trace():
    # static shapes: the trace ran the check, a different shape is refused at the feed
    f = tl.function(lambda x: F.pad(x, (2, 2), mode="reflect"))
    with tl.no_grad():
        f(tl.ones(1, 1, 5))
        with pytest.raises(ValueError, match="reflect padding"):
            f(tl.ones(1, 1, 2))


def test_size_guard_op_is_identity_with_gradient():
    from tensorlib.ops.size_guard import SIZE_GUARD
    a = _rand((1, 1, 3, 4))
    x = tl.tensor(a, requires_grad=True)
    y = tl.apply(SIZE_GUARD, x, rule="nonempty_hw", args=("op",))
    np.testing.assert_array_equal(y.numpy(), a)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * a)
    with pytest.raises(ValueError, match="op: input of shape .* empty spatial"):
        tl.apply(SIZE_GUARD, tl.ones(1, 1, 0, 2), rule="nonempty_hw", args=("op",))


def test_onnx_export_unaffected(tmp_path):
    ort = pytest.importorskip("onnxruntime")

    class M(tl.nn.Module):
        def forward(self, x):
            y = F.pad(x, (2, 2, 2, 2), mode="reflect")
            y = F.pad(y, (1, 1, 1, 1), mode="circular")
            y = F.max_pool2d(y, 2) + F.avg_pool2d(y, 2)
            y = F.interpolate(y, scale_factor=0.5, mode="bilinear")
            return F.adaptive_avg_pool2d(y, 3)

    m = M()
    path = tmp_path / "m.onnx"
    x0 = tl.tensor(_rand((2, 3, 16, 18)).astype(np.float32))
    tl.onnx.export(m, (x0,), str(path), dynamic_axes={0: [0, 2, 3]})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for s in [(2, 3, 16, 18), (1, 3, 20, 13)]:
        a = _rand(s, 1).astype(np.float32)
        got = sess.run(None, {name: a})[0]
        np.testing.assert_allclose(got, m(tl.tensor(a)).numpy(), rtol=1e-4, atol=1e-5)


def test_narrow_past_a_dynamic_dims_end_raises_at_replay():
    f = tl.function(lambda x: x.narrow(1, 2, 3) * 2, input_signature=[tl.TensorSpec((2, None))])
    for n in (6, 7, 9):
        assert f(tl.ones(2, n)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"narrow: start \(2\) \+ length \(3\) exceeds dim 1"):
        f(tl.ones(2, 4))        # the slice would quietly return 2 columns
    assert f.trace_count == 1
