"""PyTorch 2.13 keyword arguments accepted by tensorlib (API-coverage audit, Part A)."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _pair(seed, shape=(3, 4)):
    r = np.random.default_rng(seed)
    return r.standard_normal(shape), r.standard_normal(shape), r.random(shape) + 0.1


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a.detach().numpy() if hasattr(a, "detach") else a),
                               b.detach().numpy(), rtol=1e-7, atol=1e-9)


LEGACY = [(None, False), (False, None), (False, True), (True, False), (True, True), (None, True)]


@pytest.mark.parametrize("size_average,reduce", LEGACY)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "soft_margin_loss",
                                  "kl_div", "binary_cross_entropy_with_logits"])
def test_functional_legacy_reduction(name, size_average, reduce):
    a, b, w = _pair(0)
    if name == "kl_div":    # targets are probabilities
        b = w
    if name == "binary_cross_entropy_with_logits":
        b = (b > 0).astype(float)
    x, tx = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        out = getattr(F, name)(x, tl.tensor(b), size_average=size_average, reduce=reduce)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = getattr(TF, name)(tx, torch.tensor(b), size_average=size_average, reduce=reduce)
    _close(out, ref)
    out.sum().backward()
    ref.sum().backward()
    _close(x.grad, tx.grad)


@pytest.mark.parametrize("size_average,reduce", LEGACY)
def test_class_losses_legacy_reduction(size_average, reduce):
    a, _, _ = _pair(1)
    t = np.array([0, 3, 1])
    for tl_cls, t_cls in [(tl.nn.CrossEntropyLoss, torch.nn.CrossEntropyLoss),
                          (tl.nn.NLLLoss, torch.nn.NLLLoss),
                          (tl.nn.MultiMarginLoss, torch.nn.MultiMarginLoss)]:
        with pytest.warns(UserWarning):
            m = tl_cls(size_average=size_average, reduce=reduce)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tm = t_cls(size_average=size_average, reduce=reduce)
        assert m.reduction == tm.reduction
        _close(m(tl.tensor(a), tl.tensor(t)), tm(torch.tensor(a), torch.tensor(t)))


def test_every_legacy_loss_class_accepts_the_flags():
    for name in ["BCELoss", "BCEWithLogitsLoss", "NLLLoss", "L1Loss", "MSELoss", "SmoothL1Loss",
                 "KLDivLoss", "MarginRankingLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss",
                 "MultiMarginLoss", "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss",
                 "PoissonNLLLoss", "SoftMarginLoss", "TripletMarginLoss", "CrossEntropyLoss"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert getattr(tl.nn, name)(size_average=False).reduction == \
                getattr(torch.nn, name)(size_average=False).reduction == "sum"
            assert getattr(tl.nn, name)(reduce=False).reduction == "none"
    assert tl.nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    with pytest.raises(TypeError, match="MSELoss: size_average must be a bool"):
        tl.nn.MSELoss("sum")


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 1000))
def test_weighted_regression_losses(name, reduction, seed):
    a, b, w = _pair(seed)
    x, tx = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    tw, ww = torch.tensor(w, requires_grad=True), tl.tensor(w, requires_grad=True)
    out = getattr(F, name)(x, tl.tensor(b), reduction=reduction, weight=ww)
    ref = getattr(TF, name)(tx, torch.tensor(b), reduction=reduction, weight=tw)
    _close(out, ref)
    out.sum().backward()
    ref.sum().backward()
    _close(x.grad, tx.grad)
    _close(ww.grad, tw.grad)


def test_weight_shape_error():
    with pytest.raises(ValueError, match="mse_loss: weight of shape"):
        F.mse_loss(tl.ones(3), tl.zeros(3), weight=tl.ones(2))


def test_shape_and_index_keywords():
    a = np.arange(12.0).reshape(3, 4)
    x, tx = tl.tensor(a), torch.tensor(a)
    idx = [2, 0]
    _close(tl.index_select(x, dim=0, index=tl.tensor(idx)),
           torch.index_select(tx, dim=0, index=torch.tensor(idx)))
    _close(x.index_select(dim=1, index=tl.tensor(idx)),
           tx.index_select(dim=1, index=torch.tensor(idx)))
    _close(tl.index_select(x, axis=1, indices=tl.tensor(idx)), tx[:, idx])
    _close(tl.diag(tl.tensor([1.0, 2.0]), diagonal=1), torch.diag(torch.tensor([1.0, 2.0]), 1))
    _close(tl.permute(x, dims=(1, 0)), torch.permute(tx, dims=(1, 0)))
    _close(tl.tile(x, dims=(2, 1)), torch.tile(tx, dims=(2, 1)))
    _close(tl.transpose(x, dim0=0, dim1=1), torch.transpose(tx, dim0=0, dim1=1))
    _close(x.transpose(0, dim1=1), tx.transpose(0, dim1=1))
    _close(x.reshape(shape=(4, 3)), tx.reshape(shape=(4, 3)))
    _close(x.view(size=(12,)), tx.view(size=(12,)))
    _close(x[:1].expand(size=(3, 4)), tx[:1].expand(size=(3, 4)))
    for p, q in zip(x.split(split_size=2, dim=1), tx.split(split_size=2, dim=1)):
        _close(p, q)
    # (torch 2.13's narrow takes dim= only; dimension= is the older documented name)
    _close(x.narrow(dimension=1, start=1, length=2), tx.narrow(dim=1, start=1, length=2))
    i = torch.tensor([[0], [1], [2]])
    _close(tl.gather(x, 1, tl.tensor(i.numpy()), sparse_grad=False),
           torch.gather(tx, 1, i, sparse_grad=False))
    with pytest.raises(NotImplementedError, match="gather: sparse_grad"):
        tl.gather(x, 1, tl.tensor(i.numpy()), sparse_grad=True)
    with pytest.raises(TypeError, match="index_select: got both"):
        tl.index_select(x, 0, dim=0, index=tl.tensor(idx))
    with pytest.raises(TypeError, match="reshape"):
        x.reshape(4, 3, shape=(4, 3))


def test_take_along_axis_negative_out_of_range_names_op():
    with pytest.raises(IndexError, match="take_along_axis: index -5 is out of range"):
        tl.take_along_axis(tl.ones(3, 4), tl.tensor([[-5]]), 1)
    _close(tl.take_along_axis(tl.tensor(np.arange(4.0)), tl.tensor([-4]), 0),
           torch.tensor([0.0], dtype=torch.float64))


def test_binary_other_keyword_and_pow_exponent():
    a, b, _ = _pair(3)
    x, y = tl.tensor(a, requires_grad=True), tl.tensor(b)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b)
    _close(tl.add(x, other=y, alpha=2), torch.add(tx, other=ty, alpha=2))
    for n in ["sub", "mul", "div", "maximum", "minimum", "logaddexp", "hypot", "atan2",
              "eq", "ne", "lt", "le", "gt", "ge"]:
        _close(getattr(tl, n)(x, other=y), getattr(torch, n)(tx, other=ty))
    i, j = tl.tensor([5, 6]), tl.tensor([3, 1])
    for n in ["bitwise_and", "bitwise_or", "bitwise_xor"]:
        _close(getattr(tl, n)(i, other=j), getattr(torch, n)(torch.tensor([5, 6]),
                                                             other=torch.tensor([3, 1])))
    out, ref = tl.pow(x, exponent=2), torch.pow(tx, exponent=2)
    _close(out, ref)
    out.sum().backward()
    ref.sum().backward()
    _close(x.grad, tx.grad)


def test_autograd_backward_tensors_keyword():
    x, tx = tl.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0],
                                                                     requires_grad=True)
    tl.autograd.backward(tensors=[(x * x).sum()], grad_tensors=[tl.tensor(2.0)])
    torch.autograd.backward(tensors=[(tx * tx).sum()], grad_tensors=[torch.tensor(2.0)])
    _close(x.grad, tx.grad)
    with pytest.raises(TypeError, match="backward"):
        tl.autograd.backward()


def test_embedding_sparse_and_init_keywords():
    w = np.random.default_rng(0).standard_normal((5, 3))
    _close(F.embedding(tl.tensor([1, 4]), tl.tensor(w), sparse=False),
           TF.embedding(torch.tensor([1, 4]), torch.tensor(w), sparse=False))
    wt = tl.tensor(w, requires_grad=True)
    F.embedding(tl.tensor([1]), wt, sparse=True).sum().backward()
    assert wt.grad.is_sparse      # as PyTorch's: the rows looked up, as a sparse COO tensor
    t = tl.zeros(2, 3)
    tl.nn.init.constant_(tensor=t, val=3.0)
    assert (t.numpy() == 3).all()
    with pytest.warns(FutureWarning, match="nn.init.eye` is now deprecated"):
        tl.nn.init.eye(t)
    a, b = tl.zeros(6, 4, 3), torch.zeros(6, 4, 3)
    tl.nn.init.dirac_(a, groups=2)
    torch.nn.init.dirac_(b, groups=2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_module_keywords():
    lin = tl.nn.Linear(2, 2)
    seq = tl.nn.Sequential(lin, lin)
    assert len(list(seq.modules(remove_duplicate=False))) == len(list(
        torch.nn.Sequential(*[torch.nn.Linear(2, 2)] * 2).modules(remove_duplicate=False))) == 3
    order = []
    m = tl.nn.Linear(2, 2)
    m.register_full_backward_hook(lambda *a: order.append(1))
    m.register_full_backward_hook(lambda *a: order.append(0), prepend=True)
    m.register_full_backward_pre_hook(lambda *a: order.append(-1), prepend=True)
    m(tl.ones(1, 2, requires_grad=True)).sum().backward()
    assert order == [-1, 0, 1]
    bn = tl.nn.LazyBatchNorm1d(bias=False)
    bn(tl.randn(4, 3))
    assert bn.bias is None and bn.weight.shape == (3,)
    assert tl.nn.LazyInstanceNorm2d(bias=True).bias is not None
    with pytest.warns(FutureWarning, match="min_value") as rec:
        h = tl.nn.Hardtanh(min_value=-0.5, max_value=0.5)
    assert any("max_value" in str(r.message) for r in rec)
    with pytest.warns(FutureWarning):
        th = torch.nn.Hardtanh(min_value=-0.5, max_value=0.5)
    v = np.linspace(-1, 1, 5)
    _close(h(tl.tensor(v)), th(torch.tensor(v)))


def test_where_matmul_isclose_take_pytorch_keyword_names():
    a = np.array([[1.0, -2.0], [3.0, 4.0]])
    x, xt = tl.tensor(a), torch.tensor(a)
    np.testing.assert_array_equal(tl.where(x > 0, input=x, other=tl.zeros(2, 2)).numpy(),
                                  torch.where(xt > 0, input=xt, other=torch.zeros(2, 2)).numpy())
    np.testing.assert_array_equal(tl.matmul(x, other=x).numpy(),
                                  torch.matmul(xt, other=xt).numpy())
    assert tl.allclose(input=x, other=x) and bool(tl.isclose(x, other=x).all())
    assert tuple(x.tile(dims=(2, 1)).shape) == tuple(xt.tile(dims=(2, 1)).shape)
    np.testing.assert_array_equal(x.diag(diagonal=1).numpy(), xt.diag(diagonal=1).numpy())
