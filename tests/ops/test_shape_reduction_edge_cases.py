"""Shape, reduction and functional differences from PyTorch found by the fuzz trial 14,
each checked against torch itself."""
import math
import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

X23 = np.array([[0.5, -1.0, 2.0], [3.0, 0.25, -0.75]])


def _close(got, want, rtol=1e-6, atol=1e-12):
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(np.asarray(got.detach().numpy(), dtype=np.float64),
                               want.detach().double().numpy(), rtol=rtol, atol=atol)


# --- 1. an empty dim list reduces every dim ----------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean", "std", "var", "amax", "amin", "norm"])
@pytest.mark.parametrize("dim", [[], ()])
@pytest.mark.parametrize("keepdim", [False, True])
def test_empty_dim_reduces_every_dim(name, dim, keepdim):
    got = getattr(tl.tensor(X23), name)(dim=dim, keepdim=keepdim)
    want = getattr(torch.tensor(X23), name)(dim=dim, keepdim=keepdim)
    _close(got, want)
    _close(getattr(tl, name)(tl.tensor(X23), dim=dim), getattr(torch, name)(torch.tensor(X23),
                                                                             dim=dim))


def test_empty_dim_logsumexp_and_the_exceptions():
    # torch's logsumexp(dim=()) with keepdim=False raises (an output-shape bug); keepdim=True
    # shows its meaning: every dim
    _close(tl.tensor(X23).logsumexp(dim=(), keepdim=True),
           torch.tensor(X23).logsumexp(dim=(), keepdim=True))
    assert tl.tensor(X23).logsumexp(dim=[]).shape == ()
    # all/any reduce nothing for an empty dim, as torch's
    for name in ("all", "any"):
        got = getattr(tl.tensor(X23), name)(dim=())
        want = getattr(torch.tensor(X23), name)(dim=())
        assert got.shape == tuple(want.shape) and got.tolist() == want.tolist()
    # and NumPy's axis=() still reduces nothing
    assert tl.tensor(X23).sum(axis=()).shape == (2, 3)
    # torch refuses an empty dim for these
    for name in ("prod", "argmax", "argmin", "aminmax", "max", "min"):
        with pytest.raises(TypeError):
            getattr(torch, name)(torch.tensor(X23), dim=())
        with pytest.raises(TypeError):
            getattr(tl, name)(tl.tensor(X23), dim=())


@pytest.mark.parametrize("name", ["sum", "mean", "std", "amax", "logsumexp"])
def test_positional_empty_list_reduces_every_dim(name):
    # NumPy refuses a list axis, so [] can only mean PyTorch's "every dim"
    got = getattr(tl.tensor(X23), name)([], keepdim=True)
    want = getattr(torch.tensor(X23), name)([], keepdim=True)
    _close(got, want)


def test_empty_dim_sum_gradient():
    x = tl.tensor(X23, requires_grad=True)
    (x.sum(dim=[]) * 2).backward()
    assert x.grad.tolist() == [[2.0] * 3] * 2


# --- 2. flip of a 0-d tensor -------------------------------------------------------------------
def test_flip_of_a_0d_tensor_stays_0d_and_is_a_copy():
    for dims in (0, (0,), (), [-1]):
        got = tl.flip(tl.tensor(2.5), dims)
        want = torch.flip(torch.tensor(2.5), dims if not isinstance(dims, int) else (dims,))
        assert got.shape == tuple(want.shape) == ()
    assert tl.tensor(2.5).flip(0).shape == ()
    x = tl.tensor(2.0, requires_grad=True)
    (x.flip(0) * 3).backward()
    assert x.grad.shape == () and float(x.grad) == 3.0
    a = tl.tensor([1.0, 2.0])
    b = a.flip(())          # flips nothing, but still a new tensor
    b.add_(1.0)
    assert a.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="out of range"):
        tl.tensor(2.0).flip(1)


# --- 3. chunk --------------------------------------------------------------------------------
@pytest.mark.parametrize("n", list(range(0, 14)))
@pytest.mark.parametrize("chunks", [1, 2, 3, 4, 5, 7])
def test_chunk_sizes_match_torch(n, chunks):
    got = [tuple(t.shape) for t in tl.zeros(n, 4).chunk(chunks)]
    want = [tuple(t.shape) for t in torch.zeros(n, 4).chunk(chunks)]
    assert got == want
    got = [tuple(t.shape) for t in tl.chunk(tl.zeros(2, n), chunks, dim=1)]
    want = [tuple(t.shape) for t in torch.chunk(torch.zeros(2, n), chunks, dim=1)]
    assert got == want


# --- 4. named tuples ---------------------------------------------------------------------------
A = np.array([[4.0, 1.0], [1.0, -3.0]])


def _fields(o):
    return tuple(getattr(o, "_fields", None) or type(o).__match_args__)


@pytest.mark.parametrize("call", [
    lambda M: M.linalg.slogdet(M.tensor(A)),
    lambda M: M.slogdet(M.tensor(A)),
    lambda M: M.tensor(A).slogdet(),
    lambda M: M.linalg.eigh(M.tensor(A)),
    lambda M: M.linalg.qr(M.tensor(A)),
    lambda M: M.linalg.svd(M.tensor(A)),
    lambda M: M.linalg.lu_factor(M.tensor(A)),
    lambda M: M.linalg.inv_ex(M.tensor(A)),
    lambda M: M.aminmax(M.tensor(A)),
    lambda M: M.sort(M.tensor(A)),
    lambda M: M.topk(M.tensor(A), 1),
    lambda M: M.frexp(M.tensor(A)),
])
def test_named_tuple_results(call):
    got, want = call(tl), call(torch)
    assert _fields(got) == _fields(want)
    for name in _fields(want):
        _close(getattr(got, name), getattr(want, name))


def test_slogdet_named_fields_are_differentiable():
    a = tl.tensor(A, requires_grad=True)
    t = torch.tensor(A, requires_grad=True)
    tl.linalg.slogdet(a).logabsdet.backward()
    torch.linalg.slogdet(t).logabsdet.backward()
    _close(a.grad, t.grad)
    assert float(tl.linalg.slogdet(tl.tensor(A)).sign) == -1.0


# --- 5. scans of a 0-d tensor ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cumsum", "cumprod", "logcumsumexp"])
def test_scan_of_0d_tensor_gradient(name):
    x = tl.tensor(2.0, requires_grad=True, dtype=tl.float64)
    (g,) = tl.autograd.grad(getattr(x, name)(0).sum() * 3, [x])
    t = torch.tensor(2.0, requires_grad=True, dtype=torch.float64)
    (h,) = torch.autograd.grad(getattr(t, name)(0).sum() * 3, [t])
    _close(g, h)


# --- 6. cat skips the legacy empty 1-d tensor ----------------------------------------------------
def test_cat_skips_legacy_empty_tensors():
    ones = np.ones((2, 4))
    for parts, dim in [((0, "o"), 0), (("o", 0, "o"), 0), (("o", 0), 1), ((0, 0), 0)]:
        def build(M):
            return [M.zeros(0) if p == 0 else M.tensor(ones) for p in parts]
        _close(tl.cat(build(tl), dim=dim), torch.cat(build(torch), dim=dim))
    got = tl.cat([tl.zeros(0, dtype=tl.float64), tl.ones(2, 4)])
    want = torch.cat([torch.zeros(0, dtype=torch.float64), torch.ones(2, 4)])
    assert str(want.dtype).endswith(str(got.dtype))
    x = tl.ones(2, 4, requires_grad=True)
    (tl.cat([tl.zeros(0), x]) * 2).sum().backward()
    assert x.grad.tolist() == [[2.0] * 4] * 2
    with pytest.raises(RuntimeError):
        torch.stack([torch.zeros(0), torch.ones(2, 4)])
    with pytest.raises(ValueError):
        tl.stack([tl.zeros(0), tl.ones(2, 4)])
    with pytest.raises(ValueError):         # a non-empty 1-d tensor is no legacy value
        tl.cat([tl.zeros(1), tl.ones(2, 4)])


# --- 7. narrow with a 0-d tensor start ----------------------------------------------------------
def test_narrow_takes_a_0d_tensor_start():
    for start in (1, -2, 0):
        got = tl.arange(5.0).narrow(0, tl.tensor(start), 2)
        want = torch.arange(5.0).narrow(0, torch.tensor(start), 2)
        assert got.tolist() == want.tolist()
    with pytest.raises(TypeError):
        tl.arange(5.0).narrow(0, tl.tensor(1.0), 2)


# --- 8. losses promote a wider float target -------------------------------------------------------
def test_soft_cross_entropy_promotes_a_float64_target():
    logits = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]], dtype=np.float32)
    probs = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    x = tl.tensor(logits, requires_grad=True)
    got = F.cross_entropy(x, tl.tensor(probs), label_smoothing=0.1)
    t = torch.tensor(logits, requires_grad=True)
    want = TF.cross_entropy(t, torch.tensor(probs), label_smoothing=0.1)
    assert got.dtype == tl.float64 and want.dtype == torch.float64
    _close(got, want)
    got.backward()
    want.backward()
    assert x.grad.dtype == tl.float32
    _close(x.grad, t.grad, atol=1e-6)


def test_margin_losses_promote_a_float64_target():
    a, b = np.array([1.0, 2.0, -0.5], dtype=np.float32), np.array([2.0, 1.0, 0.0], np.float32)
    y = np.array([1.0, -1.0, 1.0])
    got = F.margin_ranking_loss(tl.tensor(a), tl.tensor(b), tl.tensor(y), margin=0.3)
    want = TF.margin_ranking_loss(torch.tensor(a), torch.tensor(b), torch.tensor(y), margin=0.3)
    assert got.dtype == tl.float64 and want.dtype == torch.float64
    _close(got, want)
    # an integer target keeps the input's dtype
    got = F.margin_ranking_loss(tl.tensor(a), tl.tensor(b), tl.tensor([1, -1, 1]))
    assert got.dtype == tl.float32
    x = np.array([[0.3, -1.2, 2.0]], dtype=np.float32)
    t = np.array([[1.0, 0.0, 1.0]])
    got = F.multilabel_soft_margin_loss(tl.tensor(x), tl.tensor(t))
    want = TF.multilabel_soft_margin_loss(torch.tensor(x), torch.tensor(t))
    assert got.dtype == tl.float64 and want.dtype == torch.float64
    _close(got, want)
    # the hinge losses keep the input's dtype, as torch's
    got = F.hinge_embedding_loss(tl.tensor(a), tl.tensor(y))
    want = TF.hinge_embedding_loss(torch.tensor(a), torch.tensor(y))
    assert got.dtype == tl.float32 and want.dtype == torch.float32


# --- 9. median/nanmedian's gradient at ties ----------------------------------------------------
# the rule is reduction.ties_share_grad, which tl.nanmedian() and tl.median() (one middle
# element) apply to their pick
TIES = [
    [2.0, 1.0, 2.0, 0.0, 2.0],
    [2.0, 1.0, 2.0, math.nan],
    [[2.0, 1.0], [2.0, 2.0]],
    [3.0, 1.0, 2.0],
    [5.0],
    [1.0, math.inf, math.inf, 7.0, math.inf],
]


@pytest.mark.parametrize("vals", TIES)
def test_ties_share_grad_is_torchs_nanmedian_backward(vals):
    from tensorlib.ops import statistics
    from tensorlib.ops.reduction import ties_share_grad
    x = tl.tensor(vals, dtype=tl.float64, requires_grad=True)
    t = torch.tensor(vals, dtype=torch.float64, requires_grad=True)
    got, want = ties_share_grad(x, statistics.nanmedian(x)), t.nanmedian()
    _close(got, want)
    (got * 3).backward()
    (want * 3).backward()
    if math.isinf(want.item()):     # documented: a non-finite pick keeps one element's gradient
        assert x.grad.sum().item() == 3.0
    else:
        _close(x.grad, t.grad)


def test_ties_share_grad_keeps_the_value_exact_and_passes_gradcheck():
    from tensorlib.ops import statistics
    from tensorlib.ops.reduction import ties_share_grad
    x = tl.tensor([0.1, 0.7, 0.1, 0.1, 0.9], requires_grad=True)
    assert ties_share_grad(x, statistics.nanmedian(x)).item() == x[0].item()
    assert tl.autograd.gradcheck(lambda a: ties_share_grad(a, statistics.nanmedian(a)),
                                 (tl.tensor([3.0, 1.0, 2.0], dtype=tl.float64,
                                            requires_grad=True),))


@pytest.mark.parametrize("name", ["nanmedian", "median"])
def test_public_median_gradient_at_ties(name):
    x = tl.tensor([2.0, 1.0, 2.0, 0.0, 2.0], requires_grad=True)
    getattr(x, name)().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1 / 3, 0, 1 / 3, 0, 1 / 3], rtol=1e-6)


def test_median_of_an_empty_int_tensor_keeps_the_dtype():
    got = tl.tensor([], dtype=tl.int64).median()
    want = torch.tensor([], dtype=torch.int64).median()
    assert got.dtype == tl.int64 and got.item() == want.item()


# --- 10. norms and aminmax -----------------------------------------------------------------------
def test_norm_p0_and_nuclear():
    v = np.array([[1.0, 0.0, 3.0], [0.0, 0.0, -2.0]])
    for kw in (dict(p=0), dict(p=0, dim=1), dict(p=0, dim=0, keepdim=True), dict(p="nuc"),
               dict(p="nuc", keepdim=True), dict(p="nuc", dim=(1, 0))):
        _close(tl.norm(tl.tensor(v), **kw), torch.norm(torch.tensor(v), **kw))
    _close(tl.tensor(v).norm(p=0), torch.tensor(v).norm(p=0))
    with pytest.raises(ValueError, match="nuc"):
        tl.norm(tl.zeros(2, 3, 4), p="nuc")
    x = tl.tensor(v, requires_grad=True)
    y = tl.norm(x, p="nuc")
    t = torch.tensor(v, requires_grad=True)
    torch.norm(t, p="nuc").backward()
    y.backward()
    _close(x.grad, t.grad)


def test_order_zero_norm_requires_grad_with_zero_gradient():
    v = [1.0, 0.0, math.inf, -2.0]
    for fn in (lambda x: tl.linalg.vector_norm(x, ord=0), lambda x: x.norm(p=0)):
        x = tl.tensor(v, requires_grad=True)
        y = fn(x)
        assert y.requires_grad and y.item() == 3.0
        (g,) = tl.autograd.grad(y, [x])
        assert g.tolist() == [0.0] * 4
    assert torch.linalg.vector_norm(torch.tensor(v, requires_grad=True), ord=0).requires_grad


def test_aminmax_over_a_dim_of_an_empty_tensor():
    got = tl.aminmax(tl.zeros(3, 0), dim=0)
    want = torch.aminmax(torch.zeros(3, 0), dim=0)
    assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in want] == [(0,), (0,)]
    with pytest.raises(IndexError):
        torch.aminmax(torch.zeros(3, 0), dim=1)
    with pytest.raises(ValueError):
        tl.aminmax(tl.zeros(3, 0), dim=1)
    _close(tl.aminmax(tl.tensor(X23), dim=1).max, torch.aminmax(torch.tensor(X23), dim=1).max)


# --- 11. a uint8 index tensor is a mask -----------------------------------------------------------
def test_uint8_tensor_index_is_a_bool_mask_with_a_warning():
    m = [1, 0, 1]
    with pytest.warns(UserWarning, match="uint8"):
        got = tl.arange(6.0).reshape(3, 2)[tl.tensor(m, dtype=tl.uint8)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.arange(6.0).reshape(3, 2)[torch.tensor(m, dtype=torch.uint8)]
        want2 = torch.arange(6.0).reshape(3, 2)[torch.tensor(m, dtype=torch.uint8), 1]
    assert got.tolist() == want.tolist()
    with pytest.warns(UserWarning):
        got2 = tl.arange(6.0).reshape(3, 2)[tl.tensor(m, dtype=tl.uint8), 1]
    assert got2.tolist() == want2.tolist()
    x = tl.arange(6.0).reshape(3, 2)
    with pytest.warns(UserWarning):
        x[tl.tensor(m, dtype=tl.uint8)] = tl.tensor([-1.0, -2.0])
    t = torch.arange(6.0).reshape(3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t[torch.tensor(m, dtype=torch.uint8)] = torch.tensor([-1.0, -2.0])
    assert x.tolist() == t.tolist()


def test_uint8_numpy_array_index_keeps_numpys_meaning():
    x = tl.arange(6.0).reshape(3, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = x[np.array([1, 0, 1], dtype=np.uint8)]
    assert got.tolist() == np.arange(6.0).reshape(3, 2)[[1, 0, 1]].tolist()
