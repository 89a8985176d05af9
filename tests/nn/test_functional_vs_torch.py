"""Differential tests: tensorlib.nn.functional against torch.nn.functional (float64),
forward values and first-order gradients. Skipped without PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _pair(a, grad=True):
    t = torch.tensor(a, requires_grad=grad and np.asarray(a).dtype.kind == "f")
    x = tl.tensor(a)
    if grad and np.asarray(a).dtype.kind == "f":
        x.requires_grad_(True)
    return x, t


def check(fn_tl, fn_torch, arrays, seed=0, atol=1e-9, rtol=1e-7, kw_tl=None, kw_torch=None):
    """Compare outputs and the gradients of sum(out * r) for a random r."""
    kw_tl, kw_torch = kw_tl or {}, kw_torch or kw_tl or {}
    pairs = [_pair(a) for a in arrays]
    out = fn_tl(*[p[0] for p in pairs], **kw_tl)
    ref = fn_torch(*[p[1] for p in pairs], **kw_torch)
    outs = out if isinstance(out, tuple) else (out,)
    refs = ref if isinstance(ref, tuple) else (ref,)
    rng = np.random.default_rng(seed)
    loss_t, loss_r = 0, 0
    for o, r in zip(outs, refs):
        np.testing.assert_allclose(o.numpy(), r.detach().numpy(), atol=atol, rtol=rtol)
        if r.dtype.is_floating_point and r.requires_grad:
            w = rng.standard_normal(tuple(r.shape))
            loss_t = loss_t + (o * tl.tensor(w)).sum()
            loss_r = loss_r + (r * torch.tensor(w)).sum()
    if isinstance(loss_r, int):
        return
    loss_t.backward()
    loss_r.backward()
    for (x, t) in pairs:
        if t.requires_grad and t.grad is not None:
            assert x.grad is not None
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=atol * 10,
                                       rtol=rtol * 10)


rng = np.random.default_rng(0)


def rn(*s):
    return rng.standard_normal(s)


CONV_CASES = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=1),
    dict(stride=(2, 1), padding=(2, 0), dilation=(1, 2), groups=2),
    dict(stride=3, padding=1, dilation=2, groups=4),
    dict(stride=1, padding="same", dilation=(2, 1), groups=1),
    dict(stride=1, padding="valid", dilation=1, groups=1),
]


@pytest.mark.parametrize("kw", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d(kw, bias):
    x, w = rn(2, 4, 9, 8), rn(8, 4 // kw["groups"], 3, 2)
    arrays = [x, w] + ([rn(8)] if bias else [])
    check(F.conv2d, TF.conv2d, arrays, kw_tl=kw)


def test_conv2d_kernel_equals_input_and_1x1():
    check(F.conv2d, TF.conv2d, [rn(3, 2, 5, 5), rn(4, 2, 5, 5), rn(4)])
    check(F.conv2d, TF.conv2d, [rn(1, 1, 1, 1), rn(1, 1, 1, 1)])


@pytest.mark.parametrize("kw", [dict(stride=1, padding=0), dict(stride=2, padding=2, dilation=2),
                                dict(stride=1, padding="same", groups=3)])
def test_conv1d(kw):
    check(F.conv1d, TF.conv1d, [rn(2, 3, 11), rn(6, 3 // kw.get("groups", 1), 3), rn(6)],
          kw_tl=kw)


@pytest.mark.parametrize("kw", [dict(stride=1, padding=0), dict(stride=2, padding=1),
                                dict(stride=2, padding=1, output_padding=1),
                                dict(stride=(3, 2), padding=(1, 0), output_padding=(2, 1),
                                     dilation=(1, 2)),
                                dict(stride=2, groups=2)])
def test_conv_transpose2d(kw):
    g = kw.get("groups", 1)
    check(F.conv_transpose2d, TF.conv_transpose2d, [rn(2, 4, 5, 6), rn(4, 6 // g, 3, 3), rn(6)],
          kw_tl=kw)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(3, 2), stride=(1, 2), dilation=(2, 1)),
                                dict(kernel_size=3, stride=2, ceil_mode=True),
                                dict(kernel_size=2, stride=3)])
def test_max_pool2d(kw):
    check(F.max_pool2d, TF.max_pool2d, [rn(2, 3, 9, 10)], kw_tl=kw)
    out, idx = F.max_pool2d(tl.tensor(rn(2, 3, 9, 10)), return_indices=True, **kw)
    assert idx.dtype == np.int64 and idx.shape == out.shape


def test_max_pool2d_indices_match_torch():
    x = rn(2, 3, 8, 8)
    _, i1 = F.max_pool2d(tl.tensor(x), 3, 2, 1, return_indices=True)
    _, i2 = TF.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(i1.numpy(), i2.numpy())


def test_max_pool2d_unbatched_and_nan():
    check(F.max_pool2d, TF.max_pool2d, [rn(3, 6, 6)], kw_tl=dict(kernel_size=2))
    x = rn(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    out = F.max_pool2d(tl.tensor(x), 2).numpy()
    ref = TF.max_pool2d(torch.tensor(x), 2).numpy()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=3, stride=2, padding=1,
                                     count_include_pad=False),
                                dict(kernel_size=3, stride=2, ceil_mode=True),
                                dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                     count_include_pad=False),
                                dict(kernel_size=2, divisor_override=3)])
def test_avg_pool2d(kw):
    check(F.avg_pool2d, TF.avg_pool2d, [rn(2, 3, 9, 10)], kw_tl=kw)


@pytest.mark.parametrize("size", [1, 3, (4, 5), (None, 2), 7])
def test_adaptive_avg_pool2d(size):
    check(F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, [rn(2, 3, 7, 9)], kw_tl=dict(
        output_size=size))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax(axis):
    check(F.softmax, TF.softmax, [rn(3, 4, 5)], kw_tl=dict(axis=axis), kw_torch=dict(dim=axis))
    check(F.log_softmax, TF.log_softmax, [rn(3, 4, 5)], kw_tl=dict(axis=axis),
          kw_torch=dict(dim=axis))


@pytest.mark.parametrize("kw", [dict(), dict(reduction="sum"), dict(reduction="none"),
                                dict(label_smoothing=0.2), dict(ignore_index=1),
                                dict(ignore_index=2, label_smoothing=0.1, reduction="none")])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_indices(kw, weighted):
    x = rn(6, 4)
    t = np.array([0, 1, 2, 3, 1, 2])
    w = rng.uniform(0.5, 2, 4)
    for xs, ts in ((x, t), (rn(3, 4, 2, 2), rng.integers(0, 4, (3, 2, 2)))):
        tx, tt = _pair(xs)
        ox, _ = _pair(xs)
        extra_tl = dict(kw, weight=tl.tensor(w)) if weighted else kw
        extra_t = dict(kw, weight=torch.tensor(w)) if weighted else kw
        out = F.cross_entropy(tx, tl.tensor(ts), **extra_tl)
        ref = TF.cross_entropy(tt, torch.tensor(ts), **extra_t)
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), atol=1e-10)
        r = rng.standard_normal(tuple(ref.shape))
        (out * tl.tensor(r)).sum().backward()
        (ref * torch.tensor(r)).sum().backward()
        np.testing.assert_allclose(tx.grad.numpy(), tt.grad.numpy(), atol=1e-10)
        del ox


def test_cross_entropy_probabilities_and_unbatched():
    x = rn(5, 4)
    p = rng.dirichlet(np.ones(4), 5)
    check(F.cross_entropy, TF.cross_entropy, [x, p])
    check(F.cross_entropy, TF.cross_entropy, [x, p], kw_tl=dict(label_smoothing=0.3,
                                                                reduction="sum"))
    out = F.cross_entropy(tl.tensor(rn(4)), tl.tensor(2))
    assert out.shape == ()


@pytest.mark.parametrize("kw", [dict(), dict(reduction="none"), dict(ignore_index=0)])
def test_nll_loss(kw):
    x = rn(5, 3)
    t = np.array([0, 2, 1, 1, 0])
    tx, tt = _pair(x)
    out = F.nll_loss(tx, tl.tensor(t), **kw)
    ref = TF.nll_loss(tt, torch.tensor(t), **kw)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), atol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(tx.grad.numpy(), tt.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_regression_losses(red):
    a, b = rn(4, 3), rn(4, 3)
    check(F.mse_loss, TF.mse_loss, [a, b], kw_tl=dict(reduction=red))
    check(F.l1_loss, TF.l1_loss, [a, b], kw_tl=dict(reduction=red))
    check(F.huber_loss, TF.huber_loss, [a, b], kw_tl=dict(reduction=red, delta=0.7))
    check(F.smooth_l1_loss, TF.smooth_l1_loss, [a, b], kw_tl=dict(reduction=red, beta=0.7))
    check(F.smooth_l1_loss, TF.smooth_l1_loss, [a, b], kw_tl=dict(reduction=red, beta=0.0))


@pytest.mark.parametrize("red", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(red, log_target):
    logp = np.log(rng.dirichlet(np.ones(5), size=4))
    q = rng.dirichlet(np.ones(5), size=4)
    q[0, 1] = 0.0                          # zero target probabilities contribute 0
    target = np.log(q + 1e-3) if log_target else q
    # the gradient with respect to the input (the target's is NaN at 0 in PyTorch, 0 here)
    check(lambda x: F.kl_div(x, tl.tensor(target), red, log_target),
          lambda x: TF.kl_div(x, torch.tensor(target), reduction=red, log_target=log_target),
          [logp])


def test_similarities_and_activations():
    a, b = rn(4, 6), rn(4, 6)
    check(F.cosine_similarity, TF.cosine_similarity, [a, b])
    b0 = b.copy()
    b0[1] = 0.0                            # a zero vector: the eps clamp gives 0, not NaN
    np.testing.assert_allclose(F.cosine_similarity(tl.tensor(a), tl.tensor(b0)).numpy(),
                               TF.cosine_similarity(torch.tensor(a), torch.tensor(b0)).numpy(),
                               atol=1e-12)
    check(lambda x, y: F.cosine_similarity(x, y, dim=0),
          lambda x, y: TF.cosine_similarity(x, y, dim=0), [a, b[:1]])
    check(F.normalize, TF.normalize, [a])
    check(lambda x: F.normalize(x, p=1, axis=0), lambda x: TF.normalize(x, p=1, dim=0), [a])
    check(F.pairwise_distance, TF.pairwise_distance, [a, b])
    x = rn(5, 4) * 3
    check(F.hardtanh, TF.hardtanh, [x])
    check(lambda t: F.hardtanh(t, -0.5, 2.0), lambda t: TF.hardtanh(t, -0.5, 2.0), [x])
    check(F.softsign, TF.softsign, [x])
    check(F.mish, TF.mish, [x])
    for name in ("selu", "relu6", "hardsigmoid", "hardswish", "logsigmoid"):
        check(getattr(F, name), getattr(TF, name), [x])
    big = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])    # logsigmoid without overflow
    check(F.logsigmoid, TF.logsigmoid, [big])
    g = rn(3, 4, 6)
    check(F.glu, TF.glu, [g])
    check(lambda t: F.glu(t, 1), lambda t: TF.glu(t, 1), [g])
    with pytest.raises(ValueError, match="glu: dim 1 has size 3; halving it needs an even"):
        F.glu(tl.ones(2, 3), 1)
    np.testing.assert_array_equal(F.one_hot(tl.tensor([0, 2]), 3).numpy(),
                                  TF.one_hot(torch.tensor([0, 2]), 3).numpy())


def test_binary_losses():
    p = rng.uniform(0.05, 0.95, (4, 3))
    y = rng.uniform(0, 1, (4, 3))
    check(F.binary_cross_entropy, TF.binary_cross_entropy, [p, y])
    w = rn(4, 3)
    check(lambda p, y: F.binary_cross_entropy(p, y, tl.tensor(w), reduction="none"),
          lambda p, y: TF.binary_cross_entropy(p, y, torch.tensor(w), reduction="none"),
          [p, y])
    # saturated probabilities: PyTorch's gradient (p - y) / max(p (1 - p), 1e-12) stays finite
    # (the chain rule through the clamped logs gave NaN). The target's gradient there is
    # log(1 - p) - log(p) unclamped, +-inf as PyTorch's, so the target is a constant here
    for dt in (np.float64, np.float32):
        ps = np.array([[1.0, 0.0, 1.0, 0.0, 0.5]], dt)
        ys = np.array([[1.0, 0.0, 0.0, 1.0, 0.3]], dt)
        check(lambda p: F.binary_cross_entropy(p, tl.tensor(ys)),
              lambda p: TF.binary_cross_entropy(p, torch.tensor(ys)), [ps])
        pt = tl.tensor(ps)
        yt = tl.tensor(ys, requires_grad=True)
        F.binary_cross_entropy(pt, yt, reduction="sum").backward()
        np.testing.assert_allclose(yt.grad.numpy(), [[-np.inf, np.inf, -np.inf, np.inf, 0]],
                                   atol=1e-5)
    x = rn(4, 3) * 5
    x[0, 0] = 0.0
    check(F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits, [x, y])
    pw = rng.uniform(0.5, 2, 3)
    out = F.binary_cross_entropy_with_logits(tl.tensor(x), tl.tensor(y),
                                             pos_weight=tl.tensor(pw), reduction="none")
    ref = TF.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y),
                                              pos_weight=torch.tensor(pw), reduction="none")
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-12)


def test_linear():
    check(F.linear, TF.linear, [rn(5, 3), rn(4, 3), rn(4)])
    check(F.linear, TF.linear, [rn(2, 5, 3), rn(4, 3)])
    check(F.linear, TF.linear, [rn(3), rn(4, 3), rn(4)])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(training):
    x = rn(4, 3, 5, 2)
    rm, rv = rn(3), rng.uniform(0.5, 2, 3)
    w, b = rn(3), rn(3)
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    rm_l, rv_l = tl.tensor(rm), tl.tensor(rv)
    check(lambda x, w, b: F.batch_norm(x, rm_l, rv_l, w, b, training=training, momentum=0.3),
          lambda x, w, b: TF.batch_norm(x, rm_t, rv_t, w, b, training=training, momentum=0.3),
          [x, w, b])
    np.testing.assert_allclose(rm_l.numpy(), rm_t.numpy(), atol=1e-12)
    np.testing.assert_allclose(rv_l.numpy(), rv_t.numpy(), atol=1e-12)


def test_layer_and_group_norm():
    check(lambda x, w, b: F.layer_norm(x, (4, 5), w, b),
          lambda x, w, b: TF.layer_norm(x, (4, 5), w, b), [rn(3, 4, 5), rn(4, 5), rn(4, 5)])
    check(lambda x: F.layer_norm(x, 5), lambda x: TF.layer_norm(x, (5,)), [rn(3, 5)])
    check(lambda x, w, b: F.group_norm(x, 2, w, b), lambda x, w, b: TF.group_norm(x, 2, w, b),
          [rn(3, 4, 5, 2), rn(4), rn(4)])


def test_embedding():
    w = rn(10, 4)
    idx = np.array([[1, 2, 2], [0, 9, 1]])
    check(lambda w: F.embedding(tl.tensor(idx), w, padding_idx=2),
          lambda w: TF.embedding(torch.tensor(idx), w, padding_idx=2), [w])
    check(lambda w: F.embedding(tl.tensor(idx), w), lambda w: TF.embedding(torch.tensor(idx), w),
          [w])


def test_lstm_and_gru_cell():
    N, I, H = 3, 5, 4
    x, h, c = rn(N, I), rn(N, H), rn(N, H)
    wi, wh, bi, bh = rn(4 * H, I), rn(4 * H, H), rn(4 * H), rn(4 * H)
    check(lambda x, h, c, wi, wh, bi, bh: F.lstm_cell(x, (h, c), wi, wh, bi, bh),
          lambda x, h, c, wi, wh, bi, bh: torch._VF.lstm_cell(x, (h, c), wi, wh, bi, bh),
          [x, h, c, wi, wh, bi, bh])
    gi, gh = rn(3 * H, I), rn(3 * H, H)
    check(lambda x, h, wi, wh, bi, bh: F.gru_cell(x, h, wi, wh, bi, bh),
          lambda x, h, wi, wh, bi, bh: torch._VF.gru_cell(x, h, wi, wh, bi, bh),
          [x, h, gi, gh, rn(3 * H), rn(3 * H)])


@pytest.mark.parametrize("mode", ["none", "causal", "bool", "float"])
def test_sdpa(mode):
    q, k, v = rn(2, 3, 4, 5), rn(2, 3, 6, 5), rn(2, 3, 6, 7)
    kw = {}
    if mode == "causal":
        kw = dict(is_causal=True)
        k, v = rn(2, 3, 4, 5), rn(2, 3, 4, 7)
    if mode == "bool":
        m = rng.uniform(size=(4, 6)) > 0.3
        m[:, 0] = True
        kw_tl, kw_t = dict(attn_mask=tl.tensor(m)), dict(attn_mask=torch.tensor(m))
    elif mode == "float":
        m = rn(4, 6)
        kw_tl, kw_t = dict(attn_mask=tl.tensor(m)), dict(attn_mask=torch.tensor(m))
    else:
        kw_tl = kw_t = kw
    check(F.scaled_dot_product_attention, TF.scaled_dot_product_attention, [q, k, v],
          kw_tl=kw_tl, kw_torch=kw_t)


def test_dropout_statistics_and_seed():
    x = tl.ones(2000, 50)
    tl.manual_seed(3)
    a = F.dropout(x, 0.3).numpy()
    tl.manual_seed(3)
    b = F.dropout(x, 0.3).numpy()
    np.testing.assert_array_equal(a, b)
    assert abs((a == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(a[a != 0], 1 / 0.7, rtol=1e-6)
    assert F.dropout(x, 0.3, training=False) is x


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pads", [(1, 2), (2, 0, 1, 1), (0, 1, 2, 1, 1, 0)])
def test_pad_matches_torch(mode, pads):
    # the input ranks PyTorch takes for each padding length in its non-constant modes
    x = rn(*{2: (2, 3, 5), 4: (2, 3, 4, 5), 6: (1, 2, 3, 4, 5)}[len(pads)])
    kw = dict(mode=mode, value=1.5) if mode == "constant" else dict(mode=mode)
    check(lambda t: F.pad(t, pads, **kw), lambda t: TF.pad(t, pads, **kw), [x])


def test_pad_crops_and_checks():
    x = rn(2, 3, 6)
    check(lambda t: F.pad(t, (-1, 2, 1, -2)), lambda t: TF.pad(t, (-1, 2, 1, -2)), [x])
    with pytest.raises(ValueError, match="even length"):
        F.pad(tl.tensor(x), (1, 2, 3))
    with pytest.raises(ValueError, match="3 dims of padding for a 2-d input"):
        F.pad(tl.ones(2, 2), (1,) * 6)
    # negative pads crop in every mode, as PyTorch (reflect pads from the whole input first)
    for mode in ("reflect", "replicate", "circular"):
        check(lambda t, m=mode: F.pad(t, (-1, 2), mode=m),
              lambda t, m=mode: TF.pad(t, (-1, 2), mode=m), [x])
    with pytest.raises(ValueError, match="circular padding"):
        F.pad(tl.tensor(x), (7, 0), mode="circular")
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(tl.tensor(x), (1, 1), mode="wrap")


@pytest.mark.parametrize("mode, shape, kw", [
    ("nearest", (2, 3, 5), dict(size=8)),
    ("nearest", (2, 3, 4, 5), dict(scale_factor=2)),
    ("nearest", (1, 2, 7, 6), dict(size=(3, 4))),
    ("nearest", (1, 2, 5, 4), dict(scale_factor=(1.5, 0.75))),
    ("nearest", (1, 1, 2, 3, 4), dict(size=(3, 5, 2))),
    ("linear", (2, 3, 5), dict(size=9)),
    ("linear", (2, 3, 5), dict(size=9, align_corners=True)),
    ("bilinear", (2, 3, 4, 5), dict(scale_factor=2)),
    ("bilinear", (2, 3, 4, 5), dict(scale_factor=2, align_corners=True)),
    ("bilinear", (1, 2, 7, 6), dict(size=(3, 4))),
    ("bilinear", (1, 2, 7, 6), dict(size=(3, 4), align_corners=True)),
    ("bilinear", (1, 2, 5, 4), dict(scale_factor=(1.5, 0.75))),
    ("bilinear", (1, 1, 4, 4), dict(size=(1, 1), align_corners=True)),
    ("trilinear", (1, 2, 3, 4, 5), dict(size=(5, 3, 6))),
    ("area", (2, 3, 8, 6), dict(size=(4, 3))),
])
def test_interpolate_matches_torch(mode, shape, kw):
    check(lambda t: F.interpolate(t, mode=mode, **kw),
          lambda t: TF.interpolate(t, mode=mode, **kw), [rn(*shape)])


def test_interpolate_checks_and_float32():
    x = tl.ones(1, 2, 3, 3)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="'bilinear' takes 4-d input"):
        F.interpolate(tl.ones(1, 2, 3), size=4, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners only applies"):
        F.interpolate(x, size=4, align_corners=True)
    with pytest.raises(ValueError, match="mode must be"):
        F.interpolate(x, size=4, mode="cubic")
    with pytest.raises(ValueError, match="must give 2 spatial sizes"):
        F.interpolate(x, size=(4, 4, 4))
    a = rn(2, 3, 5, 7).astype(np.float32)
    got = F.interpolate(tl.tensor(a), scale_factor=1.7, mode="bilinear")
    want = TF.interpolate(torch.tensor(a), scale_factor=1.7, mode="bilinear")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def test_pixel_shuffle_and_unshuffle_match_torch():
    check(lambda t: F.pixel_shuffle(t, 2), lambda t: TF.pixel_shuffle(t, 2), [rn(2, 12, 3, 4)])
    check(lambda t: F.pixel_shuffle(t, 3), lambda t: TF.pixel_shuffle(t, 3), [rn(5, 9, 2, 2)])
    for shape in ((8, 2, 3), (2, 3, 8, 2, 2)):     # no batch dim, two leading dims
        check(lambda t: F.pixel_shuffle(t, 2), lambda t: TF.pixel_shuffle(t, 2), [rn(*shape)])
    check(lambda t: F.pixel_unshuffle(t, 2), lambda t: TF.pixel_unshuffle(t, 2),
          [rn(2, 3, 4, 6)])
    x = tl.tensor(rn(2, 8, 3, 5))
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).numpy(),
                                  x.numpy())
    with pytest.raises(ValueError, match="divisible by upscale_factor"):
        F.pixel_shuffle(tl.ones(1, 6, 2, 2), 2)
    with pytest.raises(ValueError, match="positive integer"):
        F.pixel_shuffle(tl.ones(1, 4, 2, 2), 1.5)
    with pytest.raises(ValueError, match="divisible by downscale_factor"):
        F.pixel_unshuffle(tl.ones(1, 1, 3, 4), 2)


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_margin_and_embedding_losses_match_torch(red):
    a, b, c = rn(6, 5), rn(6, 5), rn(6, 5)
    y = np.where(rng.standard_normal(6) > 0, 1.0, -1.0)
    ty = torch.tensor(y)
    check(lambda p, q: F.margin_ranking_loss(p, q, tl.tensor(y), 0.3, red),
          lambda p, q: TF.margin_ranking_loss(p, q, ty, 0.3, reduction=red), [a[:, 0], b[:, 0]])
    d = np.abs(a[:, 0]) * 2
    check(lambda x: F.hinge_embedding_loss(x, tl.tensor(y), 1.5, red),
          lambda x: TF.hinge_embedding_loss(x, ty, 1.5, reduction=red), [d])
    yy = np.where(rng.standard_normal((6, 5)) > 0, 1.0, -1.0)
    check(lambda x: F.soft_margin_loss(x, tl.tensor(yy), red),
          lambda x: TF.soft_margin_loss(x, torch.tensor(yy), reduction=red), [a])
    check(lambda p, q: F.cosine_embedding_loss(p, q, tl.tensor(y), 0.2, red),
          lambda p, q: TF.cosine_embedding_loss(p, q, ty, 0.2, reduction=red), [a, b])
    for kw in (dict(), dict(margin=0.5, p=1.0, swap=True)):
        check(lambda p, q, r: F.triplet_margin_loss(p, q, r, reduction=red, **kw),
              lambda p, q, r: TF.triplet_margin_loss(p, q, r, reduction=red, **kw), [a, b, c])


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_likelihood_losses_match_torch(red):
    mu, t = rn(5, 3), rn(5, 3)
    var = rng.uniform(0.1, 2.0, (5, 3))
    var[0, 0] = 1e-9                       # below eps: clamped in value, gradient still flows
    for v, full in ((var, False), (var, True), (var[:, 0], False), (var[:, :1], True)):
        check(lambda m, s: F.gaussian_nll_loss(m, tl.tensor(t), s, full=full, reduction=red),
              lambda m, s: TF.gaussian_nll_loss(m, torch.tensor(t), s, full=full,
                                                reduction=red), [mu, v], rtol=1e-6)
    counts = rng.poisson(3.0, (5, 3)).astype(np.float64)
    rate = rng.uniform(0.5, 4.0, (5, 3))
    for x, log_input, full in ((np.log(rate), True, False), (np.log(rate), True, True),
                               (rate, False, False), (rate, False, True)):
        check(lambda r: F.poisson_nll_loss(r, tl.tensor(counts), log_input, full, reduction=red),
              lambda r: TF.poisson_nll_loss(r, torch.tensor(counts), log_input, full,
                                            reduction=red), [x])


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, padding=1),
                                dict(kernel_size=(2, 3), dilation=2, stride=(1, 2)),
                                dict(kernel_size=(3, 1), padding=(2, 0), stride=3)])
def test_unfold_and_fold_match_torch(kw):
    x = rn(2, 3, 8, 7)
    check(lambda t: F.unfold(t, **kw), lambda t: TF.unfold(t, **kw), [x])
    cols = TF.unfold(torch.tensor(x), **kw).numpy()
    check(lambda t: F.fold(t, (8, 7), **kw), lambda t: TF.fold(t, (8, 7), **kw),
          [rn(*cols.shape)])
    with pytest.raises(ValueError, match="does not fit"):
        F.unfold(tl.ones(1, 1, 2, 2), 5)
    with pytest.raises(ValueError, match="needs C \\* 4 rows"):
        F.fold(tl.ones(1, 5, 9), (4, 4), 2)


def test_prelu_and_bilinear_functions_match_torch():
    x = rn(2, 3, 4)
    check(lambda t, w: F.prelu(t, w), lambda t, w: TF.prelu(t, w), [x, np.array([0.3])])
    check(lambda t, w: F.prelu(t, w), lambda t, w: TF.prelu(t, w), [x, rn(3)])
    check(lambda t, w: F.prelu(t, w), lambda t, w: TF.prelu(t, w), [rn(5), np.array([0.2])])
    with pytest.raises(ValueError, match="must have 4 entries"):
        F.prelu(tl.tensor(x), tl.ones(4))
    check(F.bilinear, TF.bilinear, [rn(5, 3), rn(5, 2), rn(4, 3, 2), rn(4)])
    with pytest.raises(ValueError, match="do not fit weight"):
        F.bilinear(tl.ones(5, 3), tl.ones(5, 2), tl.ones(4, 2, 2))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_matches_torch(mode):
    w = rn(10, 4)
    flat = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0])
    cases = [(rng.integers(0, 10, (3, 5)), None, {}),                       # bags as rows
             (flat, np.array([0, 2, 2, 6]), {}),                           # an empty bag
             (flat, np.array([0, 3, 7, 9]), dict(include_last_offset=True)),
             (flat, np.array([0, 4]), dict(padding_idx=4))]
    for idx, off, kw in cases:
        o = dict(offsets=tl.tensor(off)) if off is not None else {}
        t = dict(offsets=torch.tensor(off)) if off is not None else {}
        check(lambda W: F.embedding_bag(tl.tensor(idx), W, mode=mode, **o, **kw),
              lambda W: TF.embedding_bag(torch.tensor(idx), W, mode=mode, **t, **kw), [w])
    if mode == "sum":
        psw = rn(9)
        check(lambda W, p: F.embedding_bag(tl.tensor(flat), W, tl.tensor([0, 4]), mode="sum",
                                           per_sample_weights=p),
              lambda W, p: TF.embedding_bag(torch.tensor(flat), W, torch.tensor([0, 4]),
                                            mode="sum", per_sample_weights=p), [w, psw])
    with pytest.raises(ValueError, match="needs offsets"):
        F.embedding_bag(tl.tensor(flat), tl.tensor(w))
    with pytest.raises(ValueError, match="must start at 0"):
        F.embedding_bag(tl.tensor(flat), tl.tensor(w), tl.tensor([1, 3]))


def test_gumbel_softmax_samples_and_gradients():
    tl.manual_seed(0)
    logits = np.log(np.array([0.1, 0.2, 0.7]))
    x = tl.tensor(np.tile(logits, (4000, 1)), requires_grad=True)
    soft = F.gumbel_softmax(x, tau=0.5)
    np.testing.assert_allclose(soft.numpy().sum(-1), 1.0, rtol=1e-12)
    hard = F.gumbel_softmax(x, hard=True)
    h = hard.numpy()
    assert set(np.unique(h)) == {0.0, 1.0} and (h.sum(-1) == 1).all()
    np.testing.assert_allclose(h.mean(0), [0.1, 0.2, 0.7], atol=0.03)     # Gumbel-max
    (hard * tl.tensor(rng.standard_normal(h.shape))).sum().backward()
    assert x.grad is not None and np.abs(x.grad.numpy()).sum() > 0      # straight-through
    with pytest.raises(ValueError, match="tau must be positive"):
        F.gumbel_softmax(x, tau=0.0)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("order", ["first", "second"])
def test_cross_entropy_with_every_target_ignored(weighted, order):
    """The mean over no targets is NaN, its gradient 0 (a batch of padding must not turn
    every weight into NaN), as PyTorch; through the fused backward kernel and the composite
    one that grad-of-grad records."""
    x = np.random.default_rng(0).standard_normal((3, 4))
    y = np.full(3, -100)
    w = np.array([1.0, 2.0, 3.0, 4.0]) if weighted else None
    a = tl.tensor(x, requires_grad=True)
    loss = F.cross_entropy(a, tl.tensor(y), weight=None if w is None else tl.tensor(w))
    (g,) = tl.grad(loss, [a], create_graph=order == "second")
    b = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(b, torch.tensor(y),
                                            weight=None if w is None else torch.tensor(w))
    (gb,) = torch.autograd.grad(ref, [b])
    assert np.isnan(float(loss)) and np.isnan(float(ref))
    np.testing.assert_array_equal(g.numpy(), gb.numpy())


@pytest.mark.parametrize("shape,out", [((2, 3, 8, 8), (4, 4)), ((2, 3, 7, 9), (3, 4)),
                                       ((3, 10, 5), (2, None)), ((2, 3, 7, 9), 1)])
def test_adaptive_max_pool2d(shape, out):
    x = np.random.default_rng(1).standard_normal(shape)
    a, b = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ya = F.adaptive_max_pool2d(a, out)
    yb = torch.nn.functional.adaptive_max_pool2d(b, out)
    (ya * ya).sum().backward()
    (yb * yb).sum().backward()
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy())
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy())
    x1 = np.random.default_rng(2).standard_normal((2, 3, 10))
    np.testing.assert_allclose(tl.nn.AdaptiveMaxPool1d(4)(tl.tensor(x1)).numpy(),
                               torch.nn.AdaptiveMaxPool1d(4)(torch.tensor(x1)).numpy())


@pytest.mark.parametrize("hw,k,stride,pad,dil,ceil", [
    ((1, 1), 2, None, 1, 2, False),   # the window is all padding: -inf, no gradient
    ((2, 2), 2, None, 0, 2, True),    # kernel 2, stride 2 with dilation: not the 2x2 path
    ((2, 3), 2, 2, 0, 2, True)])
def test_max_pool_windows_at_the_edges(hw, k, stride, pad, dil, ceil):
    """Against the generic loop (and PyTorch's values); the Cython kernel read outside the
    input for an all-padding window, and the 2x2 fast path ignored dilation."""
    from tensorlib.ops.registry import REGISTRY
    x = np.random.default_rng(0).standard_normal((2, 1) + hw).astype(np.float32)
    out, idx = F.max_pool2d(tl.tensor(x), k, stride, pad, dil, ceil, return_indices=True)
    attrs = dict(kernel=(k, k), dilation=(dil, dil), padding=(pad, pad),
                 ceil_mode=ceil, stride=(k, k) if stride is None else (stride, stride))
    want, want_idx = REGISTRY["max_pool2d"].fwd(np, x, **attrs)
    np.testing.assert_array_equal(out.numpy(), want)
    ref = torch.nn.functional.max_pool2d(torch.tensor(x), k, stride or k, pad, dil, ceil)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    xt = tl.tensor(x, requires_grad=True)
    F.max_pool2d(xt, k, stride, pad, dil, ceil).sum().backward()
    assert np.isfinite(xt.grad.numpy()).all()


def test_class_target_shape_errors_say_what_to_do():
    # the messages read "target of shape (3, 4) does not match input of shape (3, 4)"
    onehot = tl.tensor(np.eye(4, dtype=np.int64)[[0, 1, 2]])
    with pytest.raises(ValueError, match=r"must hold class probabilities \(floats\), got "
                                         r"int64; for one-hot labels pass target.float\(\)"):
        F.cross_entropy(tl.randn(3, 4), onehot)
    with pytest.raises(ValueError, match=r"1-d input of shape \(4,\) is one sample's scores"):
        F.cross_entropy(tl.ones(4), tl.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"nll_loss: target of shape \(2,\) does not fit input "
                                         r"of shape \(3, 4\): class indices need shape \(3,\)"):
        F.nll_loss(tl.randn(3, 4), tl.tensor([0, 1]))
    # one-hot labels as floats are probabilities, as PyTorch
    x = rng.standard_normal((3, 4))
    check(lambda a: F.cross_entropy(a, onehot.float().astype(tl.float64)),
          lambda a: TF.cross_entropy(a, torch.tensor(np.eye(4)[[0, 1, 2]])), [x])


def test_reflect_pad_gradient_matches_torch_over_random_geometry():
    # the backward folds each pad band back onto the elements it mirrors
    r = np.random.default_rng(3)
    for _ in range(20):
        shape = (2, 3) + tuple(int(d) for d in r.integers(2, 7, r.integers(1, 4)))
        pads = []
        for d in shape[2:][::-1]:
            pads += [int(r.integers(0, d)), int(r.integers(0, d))]
        check(lambda a, p=pads: F.pad(a, p, mode="reflect"),
              lambda a, p=pads: TF.pad(a, p, mode="reflect"), [r.standard_normal(shape)])
