"""PyTorch parity for the gaps a teaching-course trial found: Conv3d / ConvTranspose1d /
BatchNorm3d / CELU, unbatched conv and pooling input, bmm/addmm/baddbmm, count_nonzero,
linalg svd/qr/norms, PyTorch keyword spellings, float16 on the CPU, and error messages and
warnings. Float64 with gradients against torch, unless said otherwise."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.nn import functional as F

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

R = np.random.default_rng(7)


def rnd(*shape):
    return R.standard_normal(shape)


def pair(a):
    """The same float64 values as a tensorlib and a torch leaf that require grad."""
    return tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def close(a, b, tol=1e-9):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def copy_params(ours, theirs):
    ours.load_state_dict({k: tl.tensor(v.detach().numpy())
                          for k, v in theirs.state_dict().items()})


def check_layer(make, x, tol=1e-9):
    """``make(lib)`` builds one layer in float64 for lib in (tl.nn, torch.nn): same weights,
    same output, same input and parameter gradients."""
    theirs = make(torch.nn).double()
    ours = make(nn).double()
    copy_params(ours, theirs)
    xa, xt = pair(x)
    ya, yt = ours(xa), theirs(xt)
    close(ya, yt, tol)
    w = rnd(*yt.shape)
    ya.backward(tl.tensor(w))
    yt.backward(torch.tensor(w))
    close(xa.grad, xt.grad, tol)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p.grad, tp[name].grad, tol)
    for name, b in theirs.named_buffers():
        if b.dtype.is_floating_point:
            close(dict(ours.named_buffers())[name], b, tol)


# --- 1. layers --------------------------------------------------------------------------------
@pytest.mark.parametrize("make, shape", [
    (lambda m: m.Conv3d(3, 4, 3), (2, 3, 5, 6, 7)),
    (lambda m: m.Conv3d(4, 6, (2, 3, 1), stride=(2, 1, 2), padding=(1, 0, 1),
                        dilation=(2, 1, 1), groups=2), (2, 4, 7, 5, 6)),
    (lambda m: m.Conv3d(2, 3, 3, padding="same", bias=False), (1, 2, 4, 5, 4)),
    (lambda m: m.Conv3d(2, 3, 2, padding=1, padding_mode="replicate"), (2, 2, 3, 4, 4)),
    (lambda m: m.Conv3d(2, 3, 3, padding=1), (2, 4, 5, 3)),                  # unbatched
    (lambda m: m.ConvTranspose1d(3, 4, 3, stride=2, padding=1, output_padding=1),
     (2, 3, 6)),
    (lambda m: m.ConvTranspose1d(4, 6, 2, groups=2, dilation=2), (2, 4, 5)),
    (lambda m: m.ConvTranspose1d(3, 2, 3), (3, 5)),                          # unbatched
    (lambda m: m.BatchNorm3d(3), (4, 3, 2, 3, 2)),
    (lambda m: m.BatchNorm3d(3, momentum=None, affine=False), (4, 3, 2, 2, 2)),
    (lambda m: m.CELU(), (3, 5)),
    (lambda m: m.CELU(alpha=0.5), (3, 5)),
    (lambda m: m.Conv1d(3, 4, 3, padding=1), (3, 9)),                       # unbatched
    (lambda m: m.Conv1d(3, 4, 3, padding=1, padding_mode="reflect"), (3, 9)),
    (lambda m: m.Conv2d(3, 4, 3, stride=2), (3, 8, 7)),
    (lambda m: m.Conv2d(2, 4, 3, padding=1, padding_mode="circular"), (2, 5, 5)),
    (lambda m: m.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1),
     (3, 5, 4)),
    (lambda m: m.MaxPool2d(2), (3, 6, 6)),
    (lambda m: m.AvgPool2d(3, stride=2, padding=1), (3, 7, 7)),
    (lambda m: m.MaxPool1d(2), (3, 8)),
    (lambda m: m.AvgPool1d(3, stride=2), (3, 9)),
])
def test_layers_match_torch(make, shape):
    check_layer(make, rnd(*shape))


def test_batchnorm3d_eval_and_shape_check():
    theirs = torch.nn.BatchNorm3d(2).double()
    ours = nn.BatchNorm3d(2).double()
    x = rnd(3, 2, 2, 2, 2)
    theirs(torch.tensor(x))
    ours(tl.tensor(x))
    theirs.eval()
    ours.eval()
    close(ours(tl.tensor(x)), theirs(torch.tensor(x)))
    with pytest.raises(ValueError, match="5-d input"):
        ours(tl.tensor(rnd(3, 2, 2, 2)))


def test_functional_conv3d_celu_match_torch():
    x, w, b = rnd(2, 4, 5, 5, 4), rnd(6, 2, 2, 3, 2), rnd(6)
    (xa, xt), (wa, wt), (ba, bt) = pair(x), pair(w), pair(b)
    ya = F.conv3d(xa, wa, ba, stride=(1, 2, 1), padding=(1, 1, 0), groups=2)
    yt = torch.nn.functional.conv3d(xt, wt, bt, stride=(1, 2, 1), padding=(1, 1, 0), groups=2)
    close(ya, yt)
    (ya ** 2).sum().backward()
    (yt ** 2).sum().backward()
    for a, t in ((xa, xt), (wa, wt), (ba, bt)):
        close(a.grad, t.grad)
    xa, xt = pair(rnd(4, 5) * 2)
    close(F.celu(xa, 1.5), torch.nn.functional.celu(xt, 1.5))
    F.celu(xa, 1.5).sum().backward()
    torch.nn.functional.celu(xt, 1.5).sum().backward()
    close(xa.grad, xt.grad)


def test_conv3d_errors():
    with pytest.raises(ValueError, match="conv3d: input must be 5-D"):
        F.conv3d(tl.ones(2, 3), tl.ones(1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="conv3d: input has 3 channels"):
        F.conv3d(tl.ones(1, 3, 4, 4, 4), tl.ones(2, 2, 1, 1, 1))
    with pytest.raises(ValueError, match="conv3d: the \\(dilated\\) kernel depth"):
        F.conv3d(tl.ones(1, 1, 2, 4, 4), tl.ones(1, 1, 3, 1, 1))


# --- 2. functions -----------------------------------------------------------------------------
def test_bmm_addmm_baddbmm_match_torch():
    (a, at), (b, bt) = pair(rnd(3, 2, 4)), pair(rnd(3, 4, 5))
    close(tl.bmm(a, b), torch.bmm(at, bt))
    (i, it), (m1, m1t), (m2, m2t) = pair(rnd(5)), pair(rnd(3, 4)), pair(rnd(4, 5))
    ya = tl.addmm(i, m1, m2, beta=0.5, alpha=2.0)
    yt = torch.addmm(it, m1t, m2t, beta=0.5, alpha=2.0)
    close(ya, yt)
    (ya * ya).sum().backward()
    (yt * yt).sum().backward()
    for x, t in ((i, it), (m1, m1t), (m2, m2t)):
        close(x.grad, t.grad)
    (i2, i2t) = pair(rnd(3, 1, 5))
    ya = tl.baddbmm(i2, a, b, alpha=-1.0)
    yt = torch.baddbmm(i2t, at, bt, alpha=-1.0)
    close(ya, yt)
    ya.sum().backward()
    yt.sum().backward()
    for x, t in ((i2, i2t), (a, at), (b, bt)):
        close(x.grad, t.grad)
    nan = np.full((3, 5), np.nan)      # beta=0 ignores input, NaN included (as torch)
    close(tl.addmm(tl.tensor(nan), m1, m2, beta=0), torch.addmm(torch.tensor(nan), m1t, m2t,
                                                                  beta=0))
    with pytest.raises(ValueError, match="bmm: shapes"):
        tl.bmm(tl.ones(2, 3, 4), tl.ones(2, 3, 4))
    with pytest.raises(ValueError, match="addmm: mat1 must be 2-D"):
        tl.addmm(tl.ones(2), tl.ones(2, 3, 4), tl.ones(4, 2))


def test_count_nonzero_matches_torch():
    x = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, -3.0]])
    for dim in (None, 0, 1, -1, (0, 1)):
        a = tl.count_nonzero(tl.tensor(x), dim=dim)
        t = torch.count_nonzero(torch.tensor(x), dim=dim)
        assert a.dtype == tl.int64
        np.testing.assert_array_equal(a.numpy(), t.numpy())


SVD_SHAPES = [(4, 3), (3, 5), (3, 3), (2, 5, 3)]


@pytest.mark.parametrize("shape", SVD_SHAPES)
@pytest.mark.parametrize("full", [False, True])
def test_svd_matches_torch(shape, full):
    (a, at) = pair(rnd(*shape))
    u, s, vh = tl.linalg.svd(a, full_matrices=full)
    ut, st, vht = torch.linalg.svd(at, full_matrices=full)
    assert (u.shape, vh.shape) == (tuple(ut.shape), tuple(vht.shape))
    close(s, st)
    k = s.shape[-1]

    def loss(u, s, vh):    # invariant under the singular vectors' signs
        u, vh = u[..., :, :k], vh[..., :k, :]
        return ((u @ vh).sin().sum() + (s * s).sum() + (u * u * 1.7).sum()
                + (vh * vh).sum(-1).mean() + (u[..., :1, :] * vh[..., :, :1].mT).sum())
    close(u[..., :, :k] * s.unsqueeze(-2) @ vh[..., :k, :], at.detach(), 1e-10)
    la, lt = loss(u, s, vh), loss(ut, st, vht)
    close(la, lt)
    la.backward()
    lt.backward()
    close(a.grad, at.grad, 1e-8)
    b, bt = pair(rnd(*shape))
    tl.linalg.svdvals(b).sum().backward()
    torch.linalg.svdvals(bt).sum().backward()
    close(b.grad, bt.grad, 1e-8)


@pytest.mark.parametrize("shape", [(4, 3), (3, 3), (2, 5, 2)])
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_qr_matches_torch(shape, mode):
    (a, at) = pair(rnd(*shape))
    q, r = tl.linalg.qr(a, mode=mode)
    qt, rt = torch.linalg.qr(at, mode=mode)
    close(r, rt, 1e-10)
    if mode == "r":
        with pytest.raises(RuntimeError, match="mode='r'"):
            r.sum().backward()
        return
    close(q, qt, 1e-10)
    if mode == "complete" and shape[-2] > shape[-1]:
        with pytest.raises(RuntimeError, match="not differentiable with mode='complete'"):
            q.sum().backward()
        return
    (q.sin().sum() + (r * r).sum()).backward()
    (qt.sin().sum() + (rt * rt).sum()).backward()
    close(a.grad, at.grad, 1e-8)


MATRIX_ORDS = ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf]


def test_linalg_norm_on_matrices_is_torchs():
    m = tl.tensor([[3.0, 0.0], [0.0, 4.0]])
    assert float(tl.linalg.norm(m, ord=2)) == pytest.approx(4.0)      # not the flat 2-norm 5
    assert float(tl.norm(m)) == pytest.approx(5.0)                  # tl.norm is unchanged


@pytest.mark.parametrize("ord", MATRIX_ORDS + [None])
def test_linalg_norm_matches_torch(ord):
    x = np.array([[3.0, 1.0, -2.0], [0.5, 4.0, 1.0]])
    a, at = pair(x)
    ya, yt = tl.linalg.norm(a, ord), torch.linalg.norm(at, ord)
    close(ya, yt, 1e-10)
    ya.backward()
    yt.backward()
    close(a.grad, at.grad, 1e-8)
    if ord is None:
        return
    b, bt = pair(rnd(2, 3, 4))
    for dim, keep in (((2, 0), True), ((-1, -2), False)):
        ya = tl.linalg.matrix_norm(b, ord, dim=dim, keepdim=keep)
        yt = torch.linalg.matrix_norm(bt, ord, dim=dim, keepdim=keep)
        close(ya, yt, 1e-10)
        close(tl.linalg.norm(b, ord, dim=dim, keepdim=keep), yt, 1e-10)
        (ya * ya).sum().backward()
        (yt * yt).sum().backward()
        close(b.grad, bt.grad, 1e-8)


@pytest.mark.parametrize("ord", [1, 2, 3, 0.5, -1, math.inf, -math.inf, 0])
def test_vector_norms_match_torch(ord):
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])
    for dim, keep in ((None, False), (1, True), ((0, 1), False), (0, False)):
        a, at = pair(x)
        ya = tl.linalg.vector_norm(a, ord, dim=dim, keepdim=keep)
        yt = torch.linalg.vector_norm(at, ord, dim=dim, keepdim=keep)
        close(ya, yt, 1e-10)
        if isinstance(dim, int):
            close(tl.linalg.norm(a, ord, dim=dim, keepdim=keep),
                  torch.linalg.norm(at, ord, dim=dim, keepdim=keep), 1e-10)
        if ord != 0:
            ya.sum().backward()
            yt.sum().backward()
            close(a.grad, at.grad, 1e-8)
    v = tl.tensor([3.0, -4.0])
    assert float(tl.linalg.norm(v, 1)) == 7.0


def test_linalg_norm_errors():
    with pytest.raises(ValueError, match="matrix_norm: ord must be one of"):
        tl.linalg.norm(tl.ones(2, 2), ord=3)
    with pytest.raises(ValueError, match="must be 1-d or 2-d"):
        tl.linalg.norm(tl.ones(2, 2, 2), ord=2)


# --- 3. keyword spellings ---------------------------------------------------------------------
def test_pytorch_keyword_spellings():
    x = tl.tensor(np.arange(6.0).reshape(1, 2, 1, 3))
    t = torch.tensor(np.arange(6.0).reshape(1, 2, 1, 3))
    close(x.squeeze(dim=0), t.squeeze(dim=0))
    close(tl.squeeze(x, dim=(0, 2)), torch.squeeze(t, dim=(0, 2)))
    close(tl.flip(x, dims=(1, 3)), torch.flip(t, dims=(1, 3)))
    close(x.flip(dims=(3,)), t.flip(dims=(3,)))
    m, mt = tl.tensor(rnd(4, 4)), None
    mt = torch.tensor(m.numpy())
    for d in (-1, 0, 2):
        close(tl.triu(m, diagonal=d), torch.triu(mt, diagonal=d))
        close(m.tril(diagonal=d), mt.tril(diagonal=d))
    s, v = tl.tensor([1.0, 2.0, 2.0, 3.0]), tl.tensor([2.0, 0.5, 3.5])
    st, vt = torch.tensor(s.numpy()), torch.tensor(v.numpy())
    for kw in ({}, {"right": True}, {"right": False}, {"side": "right"}, {"side": "left"}):
        np.testing.assert_array_equal(tl.searchsorted(s, v, **kw).numpy(),
                                      torch.searchsorted(st, vt, **kw).numpy())
    c = np.array([[0, 1, 0], [2, 0, 3]])
    got, want = tl.where(tl.tensor(c)), torch.where(torch.tensor(c))
    assert isinstance(got, tuple) and len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    close(tl.where(tl.tensor(c) > 0, 1.0, -1.0), torch.where(torch.tensor(c) > 0, 1.0, -1.0))
    with pytest.raises(TypeError, match="pass both input and other"):
        tl.where(tl.tensor(c), 1.0)


def test_tensor_type():
    x = tl.ones(2)
    assert x.type() == "torch.FloatTensor"       # PyTorch's type name
    assert tl.ones(2, dtype=tl.int64).type() == "torch.LongTensor"
    assert x.type(tl.float64).dtype == tl.float64
    assert x.type("torch.DoubleTensor").dtype == tl.float64
    assert x.type("int64").dtype == tl.int64


def test_kl_uniform_normal_matches_torch():
    lo, hi = np.array([0.0, -1.0, 2.0]), np.array([1.0, 2.0, 2.5])
    loc, scale = np.array([0.3, 0.0, -1.0]), np.array([1.0, 2.0, 0.5])
    ps = [pair(v) for v in (lo, hi, loc, scale)]
    D, TD = tl.distributions, torch.distributions
    ka = D.kl_divergence(D.Uniform(ps[0][0], ps[1][0]), D.Normal(ps[2][0], ps[3][0]))
    kt = TD.kl_divergence(TD.Uniform(ps[0][1], ps[1][1]), TD.Normal(ps[2][1], ps[3][1]))
    close(ka, kt)
    ka.sum().backward()
    kt.sum().backward()
    for a, t in ps:
        close(a.grad, t.grad)


# --- 4. float16 on the CPU --------------------------------------------------------------------
def _half_vs_float(make, x, tol=2e-2, target=None, loss=None):
    """A model in float32 and its .half() copy: float16 outputs and float16 parameter
    gradients close to the float32 ones."""
    tl.manual_seed(0)
    m32 = make()
    m16 = make()
    m16.load_state_dict(m32.state_dict())
    m16.half()
    assert all(p.dtype == tl.float16 for p in m16.parameters())
    y32 = m32(tl.tensor(x, dtype=tl.float32))
    y16 = m16(tl.tensor(x, dtype=tl.float16))
    assert y16.dtype == tl.float16
    np.testing.assert_allclose(y16.numpy().astype(np.float32), y32.numpy(), rtol=tol, atol=tol)
    loss = loss or (lambda y: (y * y).mean())
    loss(y32).backward()
    l16 = loss(y16)
    assert l16.dtype == tl.float16
    l16.backward()
    for (name, p32), p16 in zip(m32.named_parameters(), m16.parameters()):
        assert p16.grad is not None and p16.grad.dtype == tl.float16, name
        g32 = p32.grad.numpy()
        np.testing.assert_allclose(p16.grad.numpy().astype(np.float32), g32,
                                   rtol=5 * tol, atol=5 * tol * (np.abs(g32).max() + 1e-3),
                                   err_msg=name)
    return m16


def test_half_mlp():
    make = lambda: nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.LayerNorm(16),  # noqa: E731
                                 nn.Linear(16, 4), nn.Softmax(-1))
    _half_vs_float(make, rnd(8, 6))


def test_half_conv_net_with_cross_entropy():
    make = lambda: nn.Sequential(  # noqa: E731
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3), nn.AvgPool2d(2, ceil_mode=True), nn.Flatten(), nn.Dropout(0.0),
        nn.Linear(4, 3))
    target = tl.tensor([0, 2, 1, 1])
    m16 = _half_vs_float(make, rnd(4, 2, 8, 8), loss=lambda y: F.cross_entropy(y, target))
    bn = m16[1]
    assert bn.running_mean.dtype == tl.float16 and bool((bn.running_mean != 0).any())


def test_half_transformer_layer():
    make = lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)  # noqa: E731
    _half_vs_float(make, rnd(5, 2, 8), tol=3e-2)


def test_half_functional_ops_and_optimizer_step():
    x16 = tl.tensor(rnd(3, 5), dtype=tl.float16)
    x32 = x16.astype(tl.float32)
    for fn in (lambda v: F.softmax(v, -1), lambda v: F.log_softmax(v, -1),
               lambda v: F.layer_norm(v, (5,)), lambda v: F.normalize(v, dim=1),
               lambda v: F.mse_loss(v, v * 0.5), lambda v: F.celu(v)):
        y16, y32 = fn(x16), fn(x32)
        assert y16.dtype == tl.float16
        np.testing.assert_allclose(y16.numpy().astype(np.float32), y32.numpy(), atol=1e-2,
                                   rtol=1e-2)
    model = nn.Linear(5, 2).half()
    opt = tl.optim.Adam(model.parameters(), lr=1e-2)
    before = model.weight.numpy().copy()
    F.cross_entropy(model(x16), tl.tensor([0, 1, 1])).backward()
    opt.step()
    assert model.weight.dtype == tl.float16 and model.weight.grad.dtype == tl.float16
    assert not np.array_equal(model.weight.numpy(), before)
    sgd = tl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sgd.step()
    assert model.bias.dtype == tl.float16


# --- 5. error messages and warnings -----------------------------------------------------------
def test_cat_without_a_list_says_so():
    with pytest.raises(TypeError, match="takes a sequence of tensors"):
        tl.cat(tl.ones(2), tl.ones(2))
    close(tl.cat([tl.ones(2), tl.zeros(1)]), torch.cat([torch.ones(2), torch.zeros(1)]))


def test_mixing_with_torch_tensors_names_torch():
    for f in (lambda: tl.ones(2) + torch.ones(2), lambda: tl.ones(2) * torch.ones(2),
              lambda: tl.ones(2, 2) @ torch.ones(2, 2)):
        with pytest.raises(TypeError, match=r"torch\.Tensor.*tl\.from_dlpack"):
            f()


def test_viz_of_a_leaf():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from tensorlib.autograd import viz
    leaf = tl.ones(2, requires_grad=True)
    assert "param (2,)" in viz.to_dot(leaf)
    ax = viz.draw(leaf)
    assert ax is not None
    import matplotlib.pyplot as plt
    plt.close("all")


@pytest.mark.parametrize("fn", [
    lambda v: v.sqrt(), lambda v: v ** 0, lambda v: v ** 0.5, lambda v: v ** -1,
    lambda v: tl.sqrt(v) if isinstance(v, tl.Tensor) else torch.sqrt(v)])
def test_no_numpy_warnings_and_torchs_values(fn):
    x = np.array([0.0, 1.0, 4.0])
    g = np.array([0.0, 1.0, 1.0])
    for grad in (np.ones(3), g):
        a, t = pair(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ya = fn(a)
            ya.backward(tl.tensor(grad))
        yt = fn(t)
        yt.backward(torch.tensor(grad))
        np.testing.assert_array_equal(ya.detach().numpy(), yt.detach().numpy())
        np.testing.assert_array_equal(a.grad.numpy(), t.grad.numpy())


def test_pow_tensor_exponent_no_warnings():
    (a, at), (b, bt) = pair(np.array([0.0, -1.0, 4.0, 0.0])), pair(np.array([0.0, 2.0, 0.5,
                                                                              -1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (a ** b).sum().backward()
    (at ** bt).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), at.grad.numpy())
    np.testing.assert_array_equal(b.grad.numpy(), bt.grad.numpy())
