"""PyTorch parity for Embedding's max_norm, bicubic interpolate, and full backward hooks:
forward values, in-place effects, gradients (against PyTorch and finite differences)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn

torch = pytest.importorskip("torch")

SETTINGS = settings(max_examples=25, deadline=None)


def _np(t) -> np.ndarray:
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


# --- Embedding(max_norm) -----------------------------------------------------------------------
@SETTINGS
@given(seed=st.integers(0, 2**16), max_norm=st.floats(0.2, 3.0),
       norm_type=st.sampled_from([1.0, 2.0, 3.0, float("inf")]),
       padding_idx=st.sampled_from([None, 0, 3]), shape=st.sampled_from([(5,), (2, 3), (4, 2)]))
def test_embedding_max_norm_matches_torch(seed, max_norm, norm_type, padding_idx, shape):
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((8, 4)) * 1.5
    ids = rng.integers(0, 8, shape)
    gout = rng.standard_normal(shape + (4,))
    ours = nn.Embedding(8, 4, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                        _weight=tl.tensor(w0.copy()))
    theirs = torch.nn.Embedding(8, 4, padding_idx=padding_idx, max_norm=max_norm,
                                norm_type=norm_type, _weight=torch.tensor(w0.copy()))
    y, yt = ours(tl.tensor(ids)), theirs(torch.tensor(ids))
    np.testing.assert_allclose(_np(y), _np(yt), rtol=1e-12, atol=1e-12)
    # the weight itself changed in place, only at the looked-up rows
    np.testing.assert_allclose(_np(ours.weight), _np(theirs.weight), rtol=1e-12, atol=1e-12)
    untouched = np.setdiff1d(np.arange(8), ids)
    np.testing.assert_array_equal(_np(ours.weight)[untouched], w0[untouched])
    (y * tl.tensor(gout)).sum().backward()
    (yt * torch.tensor(gout)).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(),
                               rtol=1e-12, atol=1e-12)


def test_embedding_max_norm_rows_are_renormalised_and_version_bumps():
    w = tl.tensor(np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]]), requires_grad=True)
    v = w._version_counter
    out = F.embedding(tl.tensor([0, 1]), w, max_norm=1.0)
    assert w._version_counter > v
    got = w.detach().numpy()
    np.testing.assert_allclose(np.linalg.norm(got[0]), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(got[1], [0.3, 0.4])       # under max_norm: unchanged
    np.testing.assert_array_equal(got[2], [6.0, 8.0])       # not looked up: unchanged
    np.testing.assert_allclose(out.detach().numpy(), got[:2])
    # the lookup's gradient only: ones, not the renormalisation's derivative
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[1, 1], [1, 1], [0, 0]])


def test_embedding_max_norm_errors_and_repr():
    with pytest.raises(ValueError, match="max_norm"):
        nn.Embedding(4, 2, max_norm=-1.0)
    m = nn.Embedding(4, 2, max_norm=1.0, norm_type=1.0)
    assert "max_norm=1.0" in repr(m) and "norm_type=1.0" in repr(m)
    p = nn.Embedding.from_pretrained(tl.tensor(np.full((3, 2), 5.0)), max_norm=2.0)
    p(tl.tensor([1]))
    np.testing.assert_allclose(np.linalg.norm(p.weight.detach().numpy()[1]), 2.0, rtol=1e-6)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_max_norm_matches_torch(mode):
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((10, 3)) * 2
    ids, offsets = np.array([1, 2, 4, 5, 4, 9]), np.array([0, 2, 2])
    ours = nn.EmbeddingBag(10, 3, mode=mode, max_norm=1.2, _weight=tl.tensor(w0.copy()))
    theirs = torch.nn.EmbeddingBag(10, 3, mode=mode, max_norm=1.2,
                                   _weight=torch.tensor(w0.copy()))
    y = ours(tl.tensor(ids), tl.tensor(offsets))
    yt = theirs(torch.tensor(ids), torch.tensor(offsets))
    np.testing.assert_allclose(_np(y), _np(yt), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_np(ours.weight), _np(theirs.weight), rtol=1e-12, atol=1e-12)
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(),
                               rtol=1e-12, atol=1e-12)


def test_embedding_max_norm_under_capture_gives_renormalised_rows():
    rng = np.random.default_rng(2)
    w = tl.tensor(rng.standard_normal((6, 3)) * 3)
    f = tl.function(lambda ids: F.embedding(ids, w, max_norm=1.0))
    ids = tl.tensor([0, 2])
    first = f(ids).numpy()
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-6)
    # the replayed graph renormalises rows it did not see while tracing
    again = f(tl.tensor([4, 5])).numpy()
    np.testing.assert_allclose(np.linalg.norm(again, axis=1), 1.0, rtol=1e-6)


# --- bicubic interpolate -----------------------------------------------------------------------
@SETTINGS
@given(seed=st.integers(0, 2**16), h=st.integers(1, 6), w=st.integers(1, 6),
       align=st.booleans(), by_size=st.booleans(),
       out=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       sf=st.tuples(st.sampled_from([0.5, 0.7, 1.0, 1.3, 2.0, 2.5, 3.0]),
                    st.sampled_from([0.6, 1.0, 1.5, 2.0, 3.0])))
def test_bicubic_matches_torch(seed, h, w, align, by_size, out, sf):
    if not by_size and (int(h * sf[0]) < 1 or int(w * sf[1]) < 1):
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, h, w))
    kw = dict(size=out) if by_size else dict(scale_factor=sf)
    xt = torch.tensor(x, requires_grad=True)
    xl = tl.tensor(x, requires_grad=True)
    yt = torch.nn.functional.interpolate(xt, mode="bicubic", align_corners=align, **kw)
    y = F.interpolate(xl, mode="bicubic", align_corners=align, **kw)
    assert tuple(y.shape) == tuple(yt.shape)
    np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    g = rng.standard_normal(tuple(y.shape))
    (y * tl.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    if tuple(y.shape) == x.shape and not by_size and sf != (1.0, 1.0):
        # PyTorch's backward copies the gradient when the sizes match, though its forward
        # interpolated with the scale (found by a thorough hypothesis run: h=3, sf 1.3): the
        # gradient is checked against finite differences of the forward instead
        def fwd(a):
            return F.interpolate(tl.tensor(a), mode="bicubic", align_corners=align,
                                 **kw).numpy()
        num = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            up, down = x.copy(), x.copy()
            up[i] += 1e-6
            down[i] -= 1e-6
            num[i] = ((fwd(up) - fwd(down)) * g).sum() / 2e-6
        np.testing.assert_allclose(xl.grad.numpy(), num, rtol=1e-6, atol=1e-7)
        return
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("align", [False, True])
def test_bicubic_gradcheck_first_and_second_order(align):
    rng = np.random.default_rng(3)
    x = tl.tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)

    def fn(t):
        # squared, so the second derivative is not identically zero
        return F.interpolate(t, size=(5, 3), mode="bicubic", align_corners=align) ** 2
    assert tl.autograd.gradcheck(fn, [x])
    assert tl.autograd.gradgradcheck(fn, [x])


def test_upsample_bicubic_module_matches_torch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 4, 5))
    for kw in (dict(scale_factor=2), dict(size=(3, 7), align_corners=True)):
        ours = nn.Upsample(mode="bicubic", **kw)
        theirs = torch.nn.Upsample(mode="bicubic", **kw)
        np.testing.assert_allclose(ours(tl.tensor(x)).numpy(),
                                   theirs(torch.tensor(x)).numpy(), rtol=1e-10, atol=1e-12)
        assert "bicubic" in repr(ours)


def test_bicubic_errors_name_interpolate():
    with pytest.raises(ValueError, match=r"interpolate: mode 'bicubic' takes 4-d"):
        F.interpolate(tl.ones(1, 1, 4), size=3, mode="bicubic")
    with pytest.raises(ValueError, match="interpolate: mode must be"):
        F.interpolate(tl.ones(1, 1, 4, 4), size=3, mode="cubic")
    with pytest.raises(ValueError, match="interpolate: align_corners"):
        F.interpolate(tl.ones(1, 1, 4, 4), size=3, mode="nearest", align_corners=True)


def test_bicubic_capture_replays_on_new_batch():
    rng = np.random.default_rng(5)
    f = tl.function(lambda t: F.interpolate(t, scale_factor=1.5, mode="bicubic"),
                    input_signature=[tl.TensorSpec((None, 2, 4, 4), dtype="float64")])
    for n in (1, 3):
        x = rng.standard_normal((n, 2, 4, 4))
        want = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=1.5, mode="bicubic")
        np.testing.assert_allclose(f(tl.tensor(x)).numpy(), want.numpy(), rtol=1e-10,
                                   atol=1e-12)


@pytest.mark.parametrize("align", [False, True])
def test_bicubic_onnx_export_matches_onnxruntime(tmp_path, align):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(6)
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.Upsample(size=(7, 5), mode="bicubic",
                                                         align_corners=align))
    x = rng.standard_normal((2, 2, 4, 3)).astype(np.float32)
    path = tmp_path / "bicubic.onnx"
    tl.onnx.export(model, (tl.tensor(x),), path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with tl.no_grad():
        want = model(tl.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# --- full backward hooks -----------------------------------------------------------------------
class _Mix:
    """The same module in both libraries: two tensor inputs and a number, two outputs."""

    @staticmethod
    def build(lib):
        base = nn.Module if lib is tl else torch.nn.Module
        lin = (nn.Linear if lib is tl else torch.nn.Linear)(3, 3)

        class Mix(base):
            def __init__(self):
                super().__init__()
                self.lin = lin

            def forward(self, a, k, b):
                return self.lin(a) * b * k, (a * b).sum()
        return Mix()


def _run_hooks(lib, a_rg: bool, b_rg: bool, replace: bool):
    rng = np.random.default_rng(7)
    if lib is tl:
        tl.manual_seed(0)
    m = _Mix.build(lib).double()
    w = rng.standard_normal((3, 3))
    with (tl.no_grad() if lib is tl else torch.no_grad()):
        m.lin.weight.copy_(lib.tensor(w))
        m.lin.bias.copy_(lib.tensor(np.arange(3.0)))
    log = []

    def pre(mod, gout):
        assert mod is m
        log.append(("pre", [None if g is None else _np(g).copy() for g in gout]))
        return (gout[0] * 3.0, gout[1]) if replace else None

    def hook(mod, gin, gout):
        assert mod is m
        log.append(("hook", [None if g is None else _np(g).copy() for g in gin],
                    [None if g is None else _np(g).copy() for g in gout]))
        return tuple(None if g is None else g * 2.0 for g in gin) if replace else None

    h1 = m.register_full_backward_pre_hook(pre)
    h2 = m.register_full_backward_hook(hook)
    a = lib.tensor(rng.standard_normal((2, 3)), requires_grad=a_rg)
    b = lib.tensor(rng.standard_normal((2, 3)), requires_grad=b_rg)
    y, s = m(a, 0.5, b)
    ((y * y).sum() + s).backward()
    grads = [None if t.grad is None else _np(t.grad).copy() for t in (a, b, m.lin.weight)]
    h1.remove()
    h2.remove()
    n = len(log)
    m(a, 0.5, b)[0].sum().backward()
    assert len(log) == n, "a removed hook still ran"
    return log, grads


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("a_rg,b_rg", [(True, True), (True, False), (False, True),
                                       (False, False)])
@pytest.mark.parametrize("replace", [False, True])
def test_full_backward_hooks_match_torch(a_rg, b_rg, replace):
    ours, ours_g = _run_hooks(tl, a_rg, b_rg, replace)
    theirs, theirs_g = _run_hooks(torch, a_rg, b_rg, replace)
    assert [e[0] for e in ours] == [e[0] for e in theirs] == ["pre", "hook"]
    for o, t in zip(ours[0][1], theirs[0][1]):
        _same(o, t)
    for k, rg in enumerate((a_rg, False, b_rg)):
        o, t = ours[1][1][k], theirs[1][1][k]
        if rg:
            _same(o, t)
        else:
            # PyTorch 2.x fills zeros for a tensor input that does not require grad (None when
            # none does), and so does tensorlib
            _same(o, t)
    for o, t in zip(ours[1][2], theirs[1][2]):
        _same(o, t)
    for o, t in zip(ours_g, theirs_g):
        _same(o, t)


def _same(o, t) -> None:
    assert (o is None) == (t is None), (o, t)
    if o is not None:
        np.testing.assert_allclose(o, t, rtol=1e-10)


def test_full_backward_hook_removed_and_nested_order():
    calls = []
    inner = nn.Linear(2, 2)
    model = nn.Sequential(inner, nn.Tanh())
    h_in = inner.register_full_backward_hook(lambda m, gi, go: calls.append("inner"))
    h_out = model.register_full_backward_hook(lambda m, gi, go: calls.append("outer"))
    x = tl.randn(3, 2, requires_grad=True)
    model(x).sum().backward()
    assert calls == ["inner", "outer"]    # the outer module's input side is reached last
    h_in.remove()
    h_out.remove()
    calls.clear()
    model(x).sum().backward()
    assert calls == []


def test_full_backward_hook_bad_return_length_raises():
    m = nn.Linear(2, 2)
    m.register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    x = tl.randn(1, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad_input"):
        m(x).sum().backward()


def test_full_backward_hook_in_tl_grad_with_create_graph():
    m = nn.Tanh()
    seen = []
    m.register_full_backward_hook(lambda mod, gi, go: seen.append(gi[0]))
    x = tl.tensor(np.array([0.3, -0.2]), requires_grad=True)
    (gx,) = tl.grad(m(x).sum(), [x], create_graph=True)
    np.testing.assert_allclose(seen[0].detach().numpy(), 1 - np.tanh([0.3, -0.2]) ** 2)
    (ggx,) = tl.grad(gx.sum(), [x])      # grad of grad goes through the hook's identity
    t = np.tanh([0.3, -0.2])
    np.testing.assert_allclose(ggx.numpy(), -2 * t * (1 - t ** 2), rtol=1e-10)
