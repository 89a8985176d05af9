"""Round-15 fuzzer findings in tensorlib.nn: conv_transpose3d / ConvTranspose3d, 'area'
interpolation of 3-d and 5-d input, F.pad cropping in reflect/replicate/circular mode,
integer max_pool2d/3d, multilabel_margin_loss and triplet_margin_with_distance_loss; each
against PyTorch (float64 values and gradients) and its errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _compare(fn_tl, fn_torch, arrays, seed=0, atol=1e-9, grads=True):
    """Outputs, and the gradients of sum(out * r) for a random r, of every float array."""
    xs = [tl.tensor(a, requires_grad=grads and a.dtype.kind == "f") for a in arrays]
    ts = [torch.tensor(a, requires_grad=grads and a.dtype.kind == "f") for a in arrays]
    out, ref = fn_tl(*xs), fn_torch(*ts)
    assert tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), atol=atol, rtol=1e-7)
    if not grads or not ref.requires_grad:
        return
    r = np.random.default_rng(seed).standard_normal(tuple(ref.shape))
    (out * tl.tensor(r)).sum().backward()
    (ref * torch.tensor(r)).sum().backward()
    for x, t in zip(xs, ts):
        if t.requires_grad:
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), atol=atol, rtol=1e-7)


# --- 1. conv_transpose3d ------------------------------------------------------------------------
@st.composite
def _ct3_case(draw):
    groups = draw(st.integers(1, 2))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(3))
    s = tuple(draw(st.integers(1, 3)) for _ in range(3))
    d = tuple(draw(st.integers(1, 2)) for _ in range(3))
    o = tuple(draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))
    size = tuple(draw(st.integers(1, 4)) for _ in range(3))
    p = tuple(draw(st.integers(0, ((n - 1) * si + di * (ki - 1) + oi) // 2))
              for n, si, di, ki, oi in zip(size, s, d, k, o))
    return dict(n=draw(st.integers(1, 2)), cin=cin, cout=cout, k=k, s=s, d=d, o=o, p=p,
                size=size, groups=groups, bias=draw(st.booleans()), seed=draw(st.integers(0, 99)))


@FUZZ
@given(_ct3_case())
def test_conv_transpose3d_matches_torch(c):
    rng = np.random.default_rng(c["seed"])
    x = rng.standard_normal((c["n"], c["cin"]) + c["size"])
    w = rng.standard_normal((c["cin"], c["cout"] // c["groups"]) + c["k"])
    arrays = [x, w] + ([rng.standard_normal(c["cout"])] if c["bias"] else [])
    args = (c["s"], c["p"], c["o"], c["groups"], c["d"])

    def run(fn):
        return lambda x, w, b=None: fn(x, w, b, *args)
    _compare(run(F.conv_transpose3d), run(TF.conv_transpose3d), arrays, c["seed"])


def test_conv_transpose3d_unbatched_double_backward_and_errors():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 3, 2, 2, 2))
    _compare(lambda x, w: F.conv_transpose3d(x, w, stride=2, padding=1, output_padding=1),
             lambda x, w: TF.conv_transpose3d(x, w, stride=2, padding=1, output_padding=1),
             [x, w])
    # grad of grad (the conv2d gradient ops' vjps)
    xt, wt = tl.tensor(x, requires_grad=True), tl.tensor(w, requires_grad=True)
    gx, = tl.grad((F.conv_transpose3d(xt, wt, stride=2) ** 2).sum(), [xt], create_graph=True)
    gw, = tl.grad(gx.sum(), [wt])
    xr, wr = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    rx, = torch.autograd.grad((TF.conv_transpose3d(xr, wr, stride=2) ** 2).sum(), [xr],
                              create_graph=True)
    rw, = torch.autograd.grad(rx.sum(), [wr])
    np.testing.assert_allclose(gw.numpy(), rw.numpy(), atol=1e-9)
    with pytest.raises(ValueError, match="conv_transpose3d: output_padding"):
        F.conv_transpose3d(tl.tensor(x), tl.tensor(w), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="conv_transpose3d: input has 2 channels"):
        F.conv_transpose3d(tl.tensor(x), tl.tensor(w[:1]))
    with pytest.raises(ValueError, match="conv_transpose3d: input must be 5-D"):
        F.conv_transpose3d(tl.ones(2, 3, 3), tl.tensor(w))
    with pytest.raises(ValueError, match="conv_transpose3d: output size"):
        F.conv_transpose3d(tl.tensor(x), tl.tensor(w), padding=3)
    with pytest.raises(ValueError, match="conv_transpose3d: bias must have shape"):
        F.conv_transpose3d(tl.tensor(x), tl.tensor(w), tl.ones(2, dtype="float64"))


def test_conv_transpose3d_module_matches_torch():
    torch.manual_seed(0)
    ref = torch.nn.ConvTranspose3d(4, 6, (2, 3, 2), stride=(2, 1, 2), padding=(1, 0, 1),
                                   groups=2, dilation=(1, 2, 1)).double()
    mod = nn.ConvTranspose3d(4, 6, (2, 3, 2), stride=(2, 1, 2), padding=(1, 0, 1), groups=2,
                             dilation=(1, 2, 1), dtype="float64")
    assert tuple(mod.weight.shape) == tuple(ref.weight.shape) == (4, 3, 2, 3, 2)
    mod.weight.data = tl.tensor(ref.weight.detach().numpy())
    mod.bias.data = tl.tensor(ref.bias.detach().numpy())
    x = np.random.default_rng(2).standard_normal((2, 4, 3, 4, 3))
    for size in (None, (5, 8, 5), (2, 6, 4, 8, 5)):
        out = mod(tl.tensor(x), output_size=size)
        want = ref(torch.tensor(x), output_size=size)
        np.testing.assert_allclose(out.numpy(), want.detach().numpy(), atol=1e-9)
    with pytest.raises(ValueError, match="ConvTranspose3d: requested an output size"):
        mod(tl.tensor(x), output_size=(9, 8, 6))
    assert "ConvTranspose3d" in repr(mod)


# --- 2. interpolate(mode='area') on 3-d and 5-d input ---------------------------------------------
def test_area_repro():
    x = tl.tensor(np.arange(6.).reshape(1, 1, 6))
    np.testing.assert_allclose(F.interpolate(x, size=4, mode="area").numpy(),
                               [[[0.5, 1.5, 3.5, 4.5]]])


@FUZZ
@given(st.integers(1, 3), st.lists(st.integers(1, 7), min_size=3, max_size=3),
       st.one_of(st.integers(1, 9), st.floats(0.3, 2.5)), st.booleans(), st.integers(0, 99))
def test_area_3d_and_5d_match_torch(nsp, sizes, target, recompute, seed):
    shape = (2, 2) + tuple(sizes[:nsp])
    if nsp == 2 or any(n * target < 1 for n in shape[2:]):
        nsp, shape = 3 if nsp == 2 else nsp, (2, 2) + tuple(sizes[:3 if nsp == 2 else nsp])
    if isinstance(target, float) and any(int(n * target) < 1 for n in shape[2:]):
        target = 1.0
    kw = (dict(size=target) if isinstance(target, int)
          else dict(scale_factor=target, recompute_scale_factor=recompute))
    x = np.random.default_rng(seed).standard_normal(shape)
    _compare(lambda t: F.interpolate(t, mode="area", **kw),
             lambda t: TF.interpolate(t, mode="area", **kw), [x], seed)


def test_area_errors():
    with pytest.raises(ValueError, match="'area' takes 3-, 4- or 5-d"):
        F.interpolate(tl.ones(1, 1, 2, 2, 2, 2), size=1, mode="area")
    with pytest.raises(ValueError, match="antialias"):
        F.interpolate(tl.ones(1, 1, 4, 4), size=2, mode="area", antialias=True)


# --- 3. F.pad cropping in the non-constant modes ----------------------------------------------
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_crop_repros(mode):
    want = {"reflect": [1, 2, 3, 4, 5, 4, 3], "replicate": [1, 2, 3, 4, 5, 5, 5],
            "circular": [1, 2, 3, 4, 5, 1, 2]}[mode]
    out = F.pad(tl.tensor(np.arange(6.).reshape(1, 1, 6)), (-1, 2), mode=mode)
    np.testing.assert_array_equal(out.numpy(), [[want]])


def _torch_pad(t, p, mode):
    try:
        return TF.pad(t, p, mode=mode), None
    except RuntimeError as e:
        return None, e


@FUZZ
@given(st.sampled_from(["reflect", "replicate", "circular"]), st.integers(1, 3),
       st.lists(st.integers(1, 6), min_size=3, max_size=3),
       st.lists(st.integers(-6, 6), min_size=6, max_size=6), st.integers(0, 99))
def test_pad_negative_matches_torch(mode, nd, sizes, widths, seed):
    shape = (2, 2) + tuple(sizes[:nd])
    p = tuple(widths[:2 * nd])
    x = np.random.default_rng(seed).standard_normal(shape)
    ref, err = _torch_pad(torch.tensor(x), p, mode)
    cropped = [n + min(a, 0) + min(b, 0) for n, (a, b) in
               zip(reversed(shape), zip(p[::2], p[1::2]))]
    if mode == "circular" and (min(cropped) < 1 or ref is not None and ref.numel() == 0):
        return      # PyTorch reads uninitialised memory or returns empty here: not compared
    if err is not None:
        with pytest.raises(ValueError, match="pad: "):
            F.pad(tl.tensor(x), p, mode=mode)
        return
    _compare(lambda t: F.pad(t, p, mode=mode), lambda t: TF.pad(t, p, mode=mode), [x], seed)


def test_pad_negative_errors():
    x = tl.tensor(np.arange(6.).reshape(1, 1, 6))
    with pytest.raises(ValueError, match="reflect padding \\(6, -1\\) must be smaller"):
        F.pad(x, (6, -1), mode="reflect")
    with pytest.raises(ValueError, match="too small .* would have sizes \\(0,\\)"):
        F.pad(x, (-3, -3), mode="replicate")
    with pytest.raises(ValueError, match="circular padding \\(6, -1\\) wraps around"):
        F.pad(x, (6, -1), mode="circular")
    with pytest.raises(ValueError, match="crops more than input"):
        F.pad(x, (-4, -3), mode="circular")


# --- 4. integer max_pool2d / max_pool3d -------------------------------------------------------
@FUZZ
@given(st.sampled_from([np.int64, np.int32, np.int16, np.int8, np.uint8]), st.booleans(),
       st.integers(1, 3), st.integers(1, 3), st.integers(0, 1), st.integers(1, 2),
       st.booleans(), st.integers(0, 99))
def test_integer_max_pool_matches_torch(dtype, three, k, s, p, d, ceil, seed):
    if p > (d * (k - 1) + 1) // 2:
        p = 0
    info = np.iinfo(dtype)
    shape = (2, 3, 4, 5, 6) if three else (2, 3, 5, 6)
    a = np.random.default_rng(seed).integers(info.min, info.max, shape, endpoint=True,
                                             dtype=dtype)
    fn_tl, fn_t = (F.max_pool3d, TF.max_pool3d) if three else (F.max_pool2d, TF.max_pool2d)
    out, idx = fn_tl(tl.tensor(a), k, s, p, d, ceil, return_indices=True)
    ref, ridx = fn_t(torch.tensor(a), k, s, p, d, ceil, return_indices=True)
    assert out.dtype == np.dtype(dtype) and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    np.testing.assert_array_equal(idx.numpy(), ridx.numpy())


def test_integer_max_pool_refusals_as_torch():
    xi = tl.tensor(np.arange(8).reshape(1, 2, 4))
    with pytest.raises(TypeError, match="max_pool1d"):
        F.max_pool1d(xi, 2)
    with pytest.raises(TypeError, match="adaptive_max_pool1d"):
        F.adaptive_max_pool1d(xi, 2)
    with pytest.raises(TypeError, match="max_pool2d"):
        F.max_pool2d(tl.tensor(np.ones((1, 1, 2, 2), bool)), 2)
    big = np.array([[[[2 ** 62 + 1, 2 ** 62]]]], np.int64)      # beyond float64's precision
    assert F.max_pool2d(tl.tensor(big), (1, 2)).numpy().item() == 2 ** 62 + 1
    assert F.max_pool3d(tl.tensor(big[None]), (1, 1, 2)).numpy().item() == 2 ** 62 + 1


# --- 5. multilabel_margin_loss, triplet_margin_with_distance_loss -------------------------------
@st.composite
def _multilabel_case(draw):
    c = draw(st.integers(1, 6))
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, c))
        labels = draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n))
        tail = draw(st.lists(st.integers(-1, c - 1), min_size=c - n, max_size=c - n))
        rows.append(labels + ([-1] + tail[1:] if tail else []))
    return np.array(rows, np.int64), draw(st.sampled_from(["mean", "sum", "none"])), \
        draw(st.booleans()), draw(st.integers(0, 99))


@FUZZ
@given(_multilabel_case())
def test_multilabel_margin_loss_matches_torch(case):
    target, reduction, vector, seed = case
    if vector:
        target = target[0]
    x = np.random.default_rng(seed).standard_normal(target.shape)
    _compare(lambda a, t: F.multilabel_margin_loss(a, t, reduction=reduction),
             lambda a, t: TF.multilabel_margin_loss(a, t, reduction=reduction), [x, target], seed)
    _compare(lambda a, t: nn.MultiLabelMarginLoss(reduction=reduction)(a, t),
             lambda a, t: torch.nn.MultiLabelMarginLoss(reduction=reduction)(a, t),
             [x, target], seed)


def test_multilabel_margin_loss_values_and_errors():
    x = tl.tensor([[0.1, 0.2, 0.4, 0.8]])
    np.testing.assert_allclose(F.multilabel_margin_loss(x, tl.tensor([[3, 0, -1, 1]])).item(),
                               0.85, rtol=1e-6)
    assert F.multilabel_margin_loss(tl.tensor(0.3), tl.tensor(-1)).item() == 0.0
    with pytest.raises(IndexError, match="multilabel_margin_loss: target values"):
        F.multilabel_margin_loss(x, tl.tensor([[3, -1, 5, 1]]))     # checked after a -1 too
    with pytest.raises(ValueError, match="multilabel_margin_loss: target of shape"):
        F.multilabel_margin_loss(tl.ones(2, 4), tl.tensor([[3, 0, -1, 1]]))
    with pytest.raises(TypeError, match="multilabel_margin_loss: target must hold integer"):
        F.multilabel_margin_loss(x, tl.tensor([[3.0, 0, -1, 1]]))
    with pytest.raises(ValueError, match="multilabel_margin_loss: input must be"):
        F.multilabel_margin_loss(tl.ones(2, 3, 4), tl.tensor(np.zeros((2, 3, 4), np.int64)))
    with pytest.raises(ValueError, match="reduction"):
        F.multilabel_margin_loss(x, tl.tensor([[3, 0, -1, 1]]), reduction="avg")


@FUZZ
@given(st.sampled_from(["default", "l1", "cosine"]), st.floats(0.1, 3.0), st.booleans(),
       st.sampled_from(["mean", "sum", "none"]), st.integers(0, 99))
def test_triplet_margin_with_distance_loss_matches_torch(dist, margin, swap, reduction, seed):
    rng = np.random.default_rng(seed)
    a, p, n = (rng.standard_normal((4, 5)) for _ in range(3))
    fns = {"default": (None, None),
           "l1": (lambda u, v: (u - v).abs().sum(-1), lambda u, v: (u - v).abs().sum(-1)),
           "cosine": (lambda u, v: 1.0 - F.cosine_similarity(u, v),
                      lambda u, v: 1.0 - TF.cosine_similarity(u, v))}
    f_tl, f_t = fns[dist]
    kw = dict(margin=margin, swap=swap, reduction=reduction)
    _compare(lambda *z: F.triplet_margin_with_distance_loss(*z, distance_function=f_tl, **kw),
             lambda *z: TF.triplet_margin_with_distance_loss(*z, distance_function=f_t, **kw),
             [a, p, n], seed)
    _compare(lambda *z: nn.TripletMarginWithDistanceLoss(distance_function=f_tl, **kw)(*z),
             lambda *z: torch.nn.TripletMarginWithDistanceLoss(distance_function=f_t, **kw)(*z),
             [a, p, n], seed)


def test_triplet_margin_with_distance_loss_errors():
    a = tl.ones(2, 3)
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        F.triplet_margin_with_distance_loss(a, a, a, margin=0.0)
    with pytest.raises(ValueError, match="TripletMarginWithDistanceLoss: margin"):
        nn.TripletMarginWithDistanceLoss(margin=-1.0)
    with pytest.raises(ValueError, match="same number of dims"):
        F.triplet_margin_with_distance_loss(a, a, tl.ones(3))
    with pytest.raises(ValueError, match="reduction"):
        F.triplet_margin_with_distance_loss(a, a, a, reduction="avg")
