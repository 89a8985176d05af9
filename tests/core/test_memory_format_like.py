"""clone and the *_like creation functions keep a dense input's layout (channels_last (3d), a
transpose, any permutation), as PyTorch's preserve_format, and honour an explicit
memory_format; values and gradients."""
import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")

SHAPES = {"channels_last": (2, 3, 4, 5), "channels_last_3d": (2, 3, 4, 5, 2)}

LIKE = {
    "empty_like": lambda L, t, **k: L.empty_like(t, **k),
    "zeros_like": lambda L, t, **k: L.zeros_like(t, **k),
    "ones_like": lambda L, t, **k: L.ones_like(t, **k),
    "full_like": lambda L, t, **k: L.full_like(t, 2.5, **k),
    "rand_like": lambda L, t, **k: L.rand_like(t, **k),
    "randn_like": lambda L, t, **k: L.randn_like(t, **k),
    "clone": lambda L, t, **k: t.clone(**k),
    "torch_clone": lambda L, t, **k: L.clone(t, **k),
}


def _pair(fmt, shape=None):
    a = np.random.default_rng(0).standard_normal(shape or SHAPES[fmt])
    return (torch.tensor(a).to(memory_format=getattr(torch, fmt)),
            tl.tensor(a).to(memory_format=getattr(tl, fmt)))


@pytest.mark.parametrize("fmt", sorted(SHAPES))
@pytest.mark.parametrize("name", sorted(LIKE))
def test_default_preserves_layout(fmt, name):
    t, x = _pair(fmt)
    want, got = LIKE[name](torch, t), LIKE[name](tl, x)
    assert got.stride() == want.stride()
    for f in ("contiguous_format", fmt):
        assert got.is_contiguous(memory_format=getattr(tl, f)) == \
            want.is_contiguous(memory_format=getattr(torch, f))
    if name in ("zeros_like", "ones_like", "full_like", "clone", "torch_clone"):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("fmt", sorted(SHAPES))
@pytest.mark.parametrize("name", sorted(LIKE))
@pytest.mark.parametrize("to", ["contiguous_format", "preserve_format", "channels_last",
                                "channels_last_3d"])
def test_explicit_memory_format(fmt, name, to):
    results = []
    for L, x in zip((torch, tl), _pair(fmt)):
        try:
            y = LIKE[name](L, x, memory_format=getattr(L, to))
            results.append((y.stride(), y.is_contiguous(),
                            y.is_contiguous(memory_format=getattr(L, fmt))))
        except RuntimeError:
            results.append("raises")
    assert results[1] == results[0]


@pytest.mark.parametrize("shape", [(2, 1, 4, 1), (1, 3, 1, 1), (2, 3, 1, 5), (0, 3, 2, 2)])
def test_size_one_dims(shape):
    t, x = _pair("channels_last", shape)
    for name in ("clone", "empty_like", "zeros_like"):
        assert LIKE[name](tl, x).stride() == LIKE[name](torch, t).stride(), name


@pytest.mark.parametrize("perm", [(0, 2, 3, 1), (1, 0, 2, 3), (3, 2, 1, 0)])
def test_clone_of_permuted_and_strided(perm):
    a = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    t, x = torch.tensor(a).permute(*perm), tl.tensor(a).permute(*perm)
    assert x.clone().stride() == t.clone().stride()
    # a non-dense view (sizes >= 2: NumPy keeps no strides of size-1 dims of a view)
    xs, ts = x[:, :, ::2], t[:, :, ::2]
    assert xs.clone().stride() == ts.clone().stride()
    np.testing.assert_array_equal(xs.clone().numpy(), ts.clone().numpy())
    assert x.contiguous().stride() == t.contiguous().stride()
    cl = x.contiguous(memory_format=tl.channels_last)
    assert cl.stride() == t.contiguous(memory_format=torch.channels_last).stride()


def test_clone_gradients_through_formats():
    a = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    w = np.random.default_rng(3).standard_normal((2, 3, 4, 5))
    grads = []
    for L in (torch, tl):
        x = L.tensor(a).to(memory_format=L.channels_last).requires_grad_(True)
        y = x.clone() * x.clone(memory_format=L.contiguous_format)
        z = y.clone(memory_format=L.channels_last) * L.tensor(w)
        (g,) = L.autograd.grad(z.sum(), x, create_graph=True)
        (gg,) = L.autograd.grad((g * g).sum(), x)
        grads.append((g.detach().numpy(), gg.numpy()))
    np.testing.assert_allclose(grads[1][0], grads[0][0])
    np.testing.assert_allclose(grads[1][1], grads[0][1])
    x = tl.tensor(a).to(memory_format=tl.channels_last).requires_grad_(True)
    assert tl.autograd.gradgradcheck(lambda v: v.clone() * v.clone(), (x,))


VIEWS = {
    "c_order": lambda t: t,
    "transpose": lambda t: t.transpose(0, 1),
    "mT": lambda t: t.transpose(-1, -2),
    "permute_3d": lambda t: t.permute(2, 0, 1),
    "permute_4d": lambda t: t.reshape(2, 3, 2, 2).permute(3, 1, 0, 2),
    "sliced": lambda t: t[:, :, ::2],
    "sliced_transpose": lambda t: t.transpose(0, 2)[::2],
    "expanded": lambda t: t[:, :1].expand(2, 5, 4),
    "size_one_transpose": lambda t: t[:1].transpose(0, 2),
    "scalar": lambda t: t[0, 0, 0],
}


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("name", sorted(LIKE))
def test_default_preserves_any_dense_layout(view, name):
    a = np.random.default_rng(4).standard_normal((2, 3, 4))
    t, x = VIEWS[view](torch.tensor(a)), VIEWS[view](tl.tensor(a))
    want, got = LIKE[name](torch, t), LIKE[name](tl, x)
    assert got.stride() == want.stride()
    assert got.is_contiguous() == want.is_contiguous()
    if name in ("zeros_like", "ones_like", "full_like", "clone", "torch_clone"):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    c = LIKE[name](tl, x, memory_format=tl.contiguous_format)
    assert c.is_contiguous() and c.stride() == \
        LIKE[name](torch, t, memory_format=torch.contiguous_format).stride()


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "full_like", "empty_like"])
def test_like_of_transpose_with_dtype_and_grad(name):
    a = np.random.default_rng(5).standard_normal((3, 4))
    t, x = torch.tensor(a).t(), tl.tensor(a).t()
    want = LIKE[name](torch, t, dtype=torch.float32)
    got = LIKE[name](tl, x, dtype=tl.float32, requires_grad=True)
    assert got.stride() == want.stride() and got.dtype == tl.float32 and got.is_leaf
    # the preserved layout works through ops and their gradients
    w = np.random.default_rng(6).standard_normal((4, 3))
    xs = tl.tensor(a, requires_grad=True)
    y = (LIKE["ones_like"](tl, xs.t()) * xs.t() * tl.tensor(w)).sum()
    (g,) = tl.autograd.grad(y, xs)
    np.testing.assert_allclose(g.numpy(), w.T)


def test_gradcheck_through_transposed_outputs():
    x = tl.tensor(np.random.default_rng(7).standard_normal((3, 4)), requires_grad=True)
    assert tl.autograd.gradcheck(lambda v: (v * v).t(), (x,))
    assert tl.autograd.gradgradcheck(lambda v: (v * v).t().permute(1, 0).t(), (x,))


def test_c_order_fast_path_kept():
    x = tl.randn(3, 4)
    z = tl.zeros_like(x)
    assert z.is_contiguous() and z._data.flags.c_contiguous
    assert tl.randn(2, 3, 4, 5).clone().is_contiguous()


def test_bad_rank_refused():
    with pytest.raises(RuntimeError, match="clone: required rank 4"):
        tl.randn(2, 3).clone(memory_format=tl.channels_last)
    with pytest.raises(RuntimeError, match="zeros_like"):
        tl.zeros_like(tl.randn(2, 3), memory_format=tl.channels_last_3d)
