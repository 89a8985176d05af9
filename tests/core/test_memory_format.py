"""Memory formats (channels_last, channels_last_3d) against PyTorch: is_contiguous, stride,
contiguous, to, *_like, Module.to, and op values on channels_last inputs."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")

FMT = {"contiguous_format": (tl.contiguous_format, torch.contiguous_format),
       "channels_last": (tl.channels_last, torch.channels_last),
       "channels_last_3d": (tl.channels_last_3d, torch.channels_last_3d),
       "preserve_format": (tl.preserve_format, torch.preserve_format)}
RANK = {"channels_last": 4, "channels_last_3d": 5}

sizes = st.integers(0, 3)


def _pair(shape, perm=None, step=None):
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    x, t = tl.tensor(a), torch.tensor(a)
    if step is not None:
        x, t = x[:, ::step], t[:, ::step]
    if perm is not None:
        x, t = x.permute(*perm), t.permute(*perm)
    return x, t


def _check_same_layout(x, t):
    assert tuple(x.shape) == tuple(t.shape)
    assert x.stride() == t.stride(), (x.stride(), t.stride())
    for name, (f, tf) in FMT.items():
        assert x.is_contiguous(memory_format=f) == t.is_contiguous(memory_format=tf), name
    np.testing.assert_array_equal(x.numpy(), t.numpy())


@settings(max_examples=60, deadline=None)
@given(nd=st.sampled_from([4, 5]), data=st.data())
def test_formats_match_torch(nd, data):
    perm = data.draw(st.one_of(st.none(), st.permutations(range(nd))))
    # a permuted view of size-0/1 dims: NumPy keeps no strides for those dims (a known
    # limit of stride() on views), so permuted views draw sizes >= 2
    shape = tuple(data.draw(sizes if perm is None else st.integers(2, 3)) for _ in range(nd))
    x, t = _pair(shape, perm)
    _check_same_layout(x, t)
    name = "channels_last" if nd == 4 else "channels_last_3d"
    f, tf = FMT[name]
    _check_same_layout(x.contiguous(memory_format=f), t.contiguous(memory_format=tf))
    _check_same_layout(x.to(memory_format=f), t.to(memory_format=tf))
    y, u = x.to(memory_format=f), t.to(memory_format=tf)
    _check_same_layout(y.contiguous(), u.contiguous())
    _check_same_layout(y.to(memory_format=tl.contiguous_format),
                       u.to(memory_format=torch.contiguous_format))
    for like, tlike in ((tl.empty_like, torch.empty_like), (tl.zeros_like, torch.zeros_like)):
        for k in FMT:
            if k in RANK and RANK[k] != nd:
                continue
            a = like(y, memory_format=FMT[k][0])
            b = tlike(u, memory_format=FMT[k][1])
            assert a.stride() == b.stride(), (k, a.stride(), b.stride())
        assert like(x, memory_format=tl.preserve_format).stride() == tlike(t).stride()
        assert like(y).stride() == tlike(u).stride()     # preserve_format by default
    np.testing.assert_array_equal(tl.zeros_like(y).numpy(), 0)
    np.testing.assert_array_equal(tl.ones_like(y).numpy(), 1)
    np.testing.assert_array_equal(tl.full_like(y, 2.5).numpy(), 2.5)


@pytest.mark.parametrize("shape,perm,step", [
    ((2, 3, 4, 10), (0, 2, 3, 1), None), ((2, 10, 4, 5), None, 2),
    ((2, 5, 4, 10), (0, 2, 3, 1), 2), ((4, 5, 2), (2, 0, 1), None),
    ((2, 3, 4, 5), (0, 3, 2, 1), None)])
def test_preserve_format_non_dense(shape, perm, step):
    x, t = _pair(shape, perm, step)
    assert x.stride() == t.stride()
    pf = tl.preserve_format
    assert tl.empty_like(x, memory_format=pf).stride() == torch.empty_like(t).stride()
    assert tl.ones_like(x, memory_format=pf).stride() == torch.ones_like(t).stride()


def test_sliced_channels_last_to_aliases():
    x, t = _pair((2, 10, 4, 5))
    x, t = x.contiguous(memory_format=tl.channels_last)[:, ::2], \
        t.contiguous(memory_format=torch.channels_last)[:, ::2]
    assert x.stride() == t.stride()
    assert x.to(memory_format=tl.channels_last) is x        # strides suggest channels_last
    assert not x.is_contiguous(memory_format=tl.channels_last)
    assert x.contiguous(memory_format=tl.channels_last).stride() == \
        t.contiguous(memory_format=torch.channels_last).stride()
    y = tl.zeros(2, 3, 4, 5)
    assert y.contiguous(memory_format=tl.contiguous_format) is y
    assert y.to(memory_format=tl.preserve_format) is y
    z = y.to(memory_format=tl.channels_last)
    assert z.contiguous(memory_format=tl.channels_last) is z
    assert z.to(memory_format=tl.channels_last) is z
    assert z.to(tl.float64).stride() == (60, 1, 15, 3)          # preserve on a cast
    assert z.to(tl.float64, memory_format=tl.contiguous_format).stride() == (60, 20, 5, 1)
    assert z.to(memory_format=tl.channels_last, copy=True) is not z


def test_gradients_through_format_copies():
    a = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    x = tl.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    w = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    y = x.to(memory_format=tl.channels_last).contiguous(memory_format=tl.channels_last)
    u = t.to(memory_format=torch.channels_last).contiguous(memory_format=torch.channels_last)
    (y * tl.tensor(w)).sin().sum().backward()
    (u * torch.tensor(w)).sin().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)
    # grad of grad through the copy
    x2 = tl.tensor(a, requires_grad=True)
    g, = tl.grad((x2.contiguous(memory_format=tl.channels_last) ** 3).sum(), x2,
                 create_graph=True)
    gg, = tl.grad(g.sum(), x2)
    np.testing.assert_allclose(gg.numpy(), 6 * a, rtol=1e-12)


def test_errors_as_torch():
    x, x5 = tl.zeros(2, 3, 4), tl.zeros(1, 2, 3, 4, 5)
    assert x.is_contiguous(memory_format=tl.channels_last) is False
    assert x5.is_contiguous(memory_format=tl.channels_last) is False
    with pytest.raises(RuntimeError, match="rank 4"):
        x.contiguous(memory_format=tl.channels_last)
    with pytest.raises(RuntimeError, match="rank 5"):
        tl.zeros(2, 3, 4, 5).contiguous(memory_format=tl.channels_last_3d)
    with pytest.raises(RuntimeError, match="rank 4"):
        x.to(memory_format=tl.channels_last)
    with pytest.raises(RuntimeError, match="rank 4"):
        tl.empty_like(x, memory_format=tl.channels_last)
    with pytest.raises(RuntimeError, match="preserve"):
        tl.zeros(2, 3, 4, 5).contiguous(memory_format=tl.preserve_format)
    for bad in (3, "channels_last", torch.channels_last):
        with pytest.raises(TypeError, match="is_contiguous"):
            x.is_contiguous(memory_format=bad)
        with pytest.raises(TypeError, match="contiguous"):
            x.contiguous(memory_format=bad)
        with pytest.raises(TypeError, match="zeros_like"):
            tl.zeros_like(x, memory_format=bad)


def _cl(a):
    return tl.tensor(a).contiguous(memory_format=tl.channels_last), \
        torch.tensor(a).contiguous(memory_format=torch.channels_last)


def test_op_values_on_channels_last():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((2, 3, 6, 5))
    (x, t), (y, u) = _cl(a), _cl(b)
    assert x.is_contiguous(memory_format=tl.channels_last) and not x.is_contiguous()
    close = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose((x + y).numpy(), (t + u).numpy(), **close)
    np.testing.assert_allclose((x + tl.tensor(b)).numpy(), (t + u).numpy(), **close)
    w = rng.standard_normal((4, 3, 3, 3))
    wl, wt = _cl(w)
    bias = rng.standard_normal(4)
    np.testing.assert_allclose(
        F.conv2d(x, wl, tl.tensor(bias), padding=1, stride=2).numpy(),
        torch.nn.functional.conv2d(t, wt, torch.tensor(bias), padding=1, stride=2).numpy(),
        **close)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    g, bb = rng.standard_normal(3), rng.standard_normal(3)
    for training in (True, False):
        np.testing.assert_allclose(
            F.batch_norm(x, tl.tensor(rm), tl.tensor(rv), tl.tensor(g), tl.tensor(bb),
                         training=training).numpy(),
            torch.nn.functional.batch_norm(t, torch.tensor(rm), torch.tensor(rv),
                                           torch.tensor(g), torch.tensor(bb),
                                           training=training).numpy(), **close)
    for mode, kw in (("nearest", {}), ("bilinear", {"align_corners": False}),
                     ("bicubic", {"align_corners": True})):
        np.testing.assert_allclose(
            F.interpolate(x, size=(9, 7), mode=mode, **kw).numpy(),
            torch.nn.functional.interpolate(t, size=(9, 7), mode=mode, **kw).numpy(), **close)


def test_op_gradients_on_channels_last():
    rng = np.random.default_rng(3)
    a, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    x = tl.tensor(a, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    wl = tl.tensor(w, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    out = F.conv2d(x.contiguous(memory_format=tl.channels_last),
                   wl.contiguous(memory_format=tl.channels_last), padding=1)
    out = F.interpolate(out + out, scale_factor=2, mode="bilinear", align_corners=False)
    ref = torch.nn.functional.conv2d(t.contiguous(memory_format=torch.channels_last),
                                     wt.contiguous(memory_format=torch.channels_last), padding=1)
    ref = torch.nn.functional.interpolate(ref + ref, scale_factor=2, mode="bilinear",
                                          align_corners=False)
    (out ** 2).sum().backward()
    (ref ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(wl.grad.numpy(), wt.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_module_to_channels_last():
    tl.manual_seed(0)
    m = tl.nn.Sequential(tl.nn.Conv2d(3, 4, 3), tl.nn.BatchNorm2d(4), tl.nn.ReLU())
    x = tl.randn(2, 3, 6, 6)
    before = m(x).detach().numpy()
    out = m.to(memory_format=tl.channels_last)
    assert out is m
    w = m[0].weight
    assert w.is_contiguous(memory_format=tl.channels_last)           # 4-D: converted
    assert m[0].bias.is_contiguous()                                 # 1-D: left alone
    after = m(x.to(memory_format=tl.channels_last)).detach().numpy()
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
