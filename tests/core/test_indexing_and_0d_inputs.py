"""Fixes from the fifteenth session's differential fuzzing against PyTorch: masked_fill with a
tensor value and a broadcasting mask, setitem values with extra leading 1s, 0-d inputs to
quantile / vector_norm / nonzero / gather, einsum's sublist form, pdist with p=0."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


def _both(fn):
    """fn(M) for M in (torch, tl): their results as NumPy arrays."""
    return [np.asarray(fn(M).detach().numpy()) for M in (torch, tl)]


def test_masked_fill_with_a_0d_tensor_value_gives_it_its_gradient():
    mask = np.array([True, False, True])
    w = np.array([1.0, 2.0, 3.0])
    grads = []
    for M in (torch, tl):
        x = M.tensor(np.ones(3), requires_grad=True)
        v = M.tensor(2.0, requires_grad=True)
        y = x.masked_fill(M.tensor(mask), v)
        (y * M.tensor(w)).sum().backward()
        grads.append((y.detach().numpy(), x.grad.numpy(), v.grad.numpy()))
    for a, b in zip(*grads):
        np.testing.assert_allclose(b, a)
    # a float64 value into a float32 tensor: x's dtype, and the value still learns
    x = tl.ones(3)
    v = tl.tensor(0.5, dtype=tl.float64, requires_grad=True)
    y = x.masked_fill(tl.tensor(mask), v)
    assert y.dtype == tl.float32
    y.sum().backward()
    assert v.grad.item() == 2.0
    with pytest.raises(ValueError, match="0-d tensor"):
        x.masked_fill(tl.tensor(mask), tl.ones(3))
    with pytest.raises(TypeError, match="mask must be bool"):
        x.masked_fill(tl.tensor([1, 0, 1]), 2.0)


def test_masked_fill_broadcasts_to_a_larger_mask_out_of_place_only():
    x = np.random.default_rng(0).standard_normal((4, 5))
    m = np.random.default_rng(1).random((2, 4, 5)) > 0.5
    want, got = _both(lambda M: M.tensor(x).masked_fill(M.tensor(m), 0.0))
    assert got.shape == (2, 4, 5)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(RuntimeError):                 # both raise in place
        torch.tensor(x).masked_fill_(torch.tensor(m), 0.0)
    with pytest.raises(RuntimeError, match="does not broadcast"):
        tl.tensor(x).masked_fill_(tl.tensor(m), 0.0)


@pytest.mark.parametrize("key,vshape", [
    (0, (1, 1, 5, 6)), (0, (1, 1, 1, 6)), (slice(0, 2), (1, 2, 5, 6)),
    ((Ellipsis, 0), (1, 4, 5)), ("tensor", (1, 2, 5, 6))])
def test_setitem_value_with_extra_leading_ones_backpropagates(key, vshape):
    r = np.random.default_rng(0)
    v0, w = r.standard_normal(vshape), r.standard_normal((4, 5, 6))
    grads = []
    for M in (torch, tl):
        b = M.tensor(np.zeros((4, 5, 6)))
        v = M.tensor(v0, requires_grad=True)
        k = M.tensor([0, 2]) if key == "tensor" else key
        b[k] = v
        (b * M.tensor(w)).sum().backward()
        grads.append((b.detach().numpy(), v.grad.numpy()))
    for a, g in zip(*grads):
        assert g.shape == a.shape
        np.testing.assert_allclose(g, a)


@pytest.mark.parametrize("fn", [
    lambda M: M.quantile(M.tensor(3.0), 0.3, dim=0),
    lambda M: M.quantile(M.tensor(3.0), 0.3, dim=-1, keepdim=True),
    lambda M: M.quantile(M.tensor(3.0), M.tensor([0.3, 0.5]), dim=0),
    lambda M: M.linalg.vector_norm(M.tensor(-3.0), dim=-1),
    lambda M: M.linalg.vector_norm(M.tensor(-3.0), dim=(0,), keepdim=True),
    lambda M: M.tensor(3.0).gather(0, M.tensor(0)),
    lambda M: M.nonzero(M.tensor(1.0), as_tuple=True)[0],
    lambda M: M.argwhere(M.tensor(0.0)),
], ids=["quantile", "quantile-keepdim", "quantile-q", "vector_norm", "vector_norm-tuple",
        "gather", "nonzero-tuple", "argwhere"])
def test_0d_inputs_as_pytorch(fn):
    want, got = _both(fn)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want)


def test_0d_inputs_still_refuse_dims_beyond_0_and_minus_1():
    with pytest.raises((IndexError, ValueError)):
        tl.quantile(tl.tensor(3.0), 0.3, dim=1)
    with pytest.raises((IndexError, ValueError)):
        tl.linalg.vector_norm(tl.tensor(3.0), dim=1)
    # tensorlib's own nonzero (NumPy's tuple) of a 0-d tensor: one index tensor, as PyTorch's
    # as_tuple=True
    assert [t.tolist() for t in tl.nonzero(tl.tensor(2.0))] == [[0]]
    assert [t.tolist() for t in tl.nonzero(tl.tensor(0.0))] == [[]]


def test_einsum_sublist_form_as_pytorch():
    r = np.random.default_rng(0)
    a, b, c = r.standard_normal((2, 3)), r.standard_normal((3, 4)), r.standard_normal((5, 2, 3))
    for args in (lambda M: (M.tensor(a), [0, 1], M.tensor(b), [1, 2], [0, 2]),
                 lambda M: (M.tensor(a), [0, 1], M.tensor(b), [1, 2]),
                 lambda M: (M.tensor(c), [Ellipsis, 0, 1], [Ellipsis, 1, 0]),
                 lambda M: (M.tensor(c), [27, 0, 1], M.tensor(a), [0, 1], [27])):
        want, got = _both(lambda M, args=args: M.einsum(*args(M)))
        np.testing.assert_allclose(got, want)
    x = tl.tensor(a, requires_grad=True)
    tl.einsum(x, [0, 1], x, [0, 1], []).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * a)
    with pytest.raises(ValueError, match=r"ints in \[0, 52\)"):
        tl.einsum(tl.tensor(a), [0, 60])
    with pytest.raises(TypeError, match="sublist"):
        tl.einsum(tl.tensor(a), tl.tensor(b))


def test_pdist_p0_requires_grad_with_a_zero_gradient():
    x = tl.tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    d = tl.nn.functional.pdist(x, p=0)
    assert d.requires_grad
    d.sum().backward()
    assert (x.grad.numpy() == 0).all()
    want, got = _both(lambda M: M.nn.functional.pdist(
        M.tensor(np.array([[0.0, 1.0], [0.0, 2.0], [3.0, 1.0]])), p=0))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape,key", [((4, 2), lambda i: i), ((4,), lambda i: i),
                                       ((4,), lambda i: (i, slice(1, None))),
                                       ((3,), lambda i: (slice(None), i))])
def test_vmap_indexing_an_unbatched_tensor_with_per_example_indices(shape, key):
    # the research trial: q_table[state], codebook[code] inside vmap
    x = np.arange(18.0).reshape(6, 3)
    idx = np.random.default_rng(0).integers(0, 3, shape)
    X, TX = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    got = tl.func.vmap(lambda i: X[key(i)])(tl.tensor(idx))
    want = torch.func.vmap(lambda i: TX[key(i)])(torch.tensor(idx))
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    w = np.random.default_rng(1).standard_normal(tuple(want.shape))
    (got * tl.tensor(w)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(X.grad.numpy(), TX.grad.numpy())


def test_changes_through_data_are_hidden_from_autograd_as_pytorch():
    # WGAN-style clipping or a manual update through .data between backward passes
    for lib in (torch, tl):
        p = lib.nn.Parameter(lib.tensor([1.0, 2.0]))
        y = (p * p).sum()
        p.data.mul_(10)
        y.backward()
        assert p.grad.tolist() == [20.0, 40.0], lib.__name__
        assert p.tolist() == [10.0, 20.0]
    # detach() still shares the version counter: the saved tensor's change is caught
    p = tl.nn.Parameter(tl.tensor([1.0, 2.0]))
    y = (p * p).sum()
    p.detach().mul_(10)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_torch_nn_modules_path_for_ported_code():
    import tensorlib.nn.modules.module as m
    from tensorlib.nn.modules.batchnorm import _BatchNorm
    from tensorlib.nn.modules.loss import _Loss
    assert m.Module is tl.nn.Module and m.register_module_forward_hook is not None
    assert tl.nn.modules.Linear is tl.nn.Linear and tl.nn.modules.container.Sequential \
        is tl.nn.Sequential
    assert issubclass(tl.nn.BatchNorm1d, _BatchNorm) and issubclass(tl.nn.MSELoss, _Loss)
