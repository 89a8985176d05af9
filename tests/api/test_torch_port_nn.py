"""Fixes from porting trials (CV models and scientific autograd), each checked against
PyTorch: clamp with tensor bounds, atan2's gradient at the origin, the hardtanh family's
gradients at their breakpoints, PyTorch keywords and methods (``inplace=``,
``output_size=``, ``return_indices=``, ``antialias=``, ``rounding_mode=``, ``roll(shifts=,
dims=)``, ``expand_as``, ``type_as``) and clearer errors. Skipped without PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _pair(a, grad=True):
    """The same float64 values as a tensorlib and a torch tensor (both leaves)."""
    a = np.asarray(a, dtype=np.float64)
    return tl.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad)


def _close(got, want, atol=1e-12, rtol=1e-10, what=""):
    got = got.numpy() if isinstance(got, tl.Tensor) else np.asarray(got)
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, atol=atol, rtol=rtol, err_msg=what)


def _grads_match(tl_fn, torch_fn, arrays, seed=0, atol=1e-12):
    """Values, and the gradients of sum(out * w) for a random w, against torch."""
    pairs = [_pair(a) for a in arrays]
    out = tl_fn(*[p[0] for p in pairs])
    ref = torch_fn(*[p[1] for p in pairs])
    _close(out, ref, atol=atol, what="value")
    w = np.random.default_rng(seed).standard_normal(tuple(ref.shape))
    (out * tl.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for k, (x, t) in enumerate(pairs):
        want = t.grad if t.grad is not None else torch.zeros_like(t)
        assert x.grad is not None, f"input {k}: no gradient (torch: {want})"
        _close(x.grad, want, atol=atol, what=f"gradient of input {k}")


# --- 1. clamp / clip with tensor bounds ------------------------------------------------------
def test_clamp_tensor_min_gives_the_bound_its_gradient():
    # trial_sci #10: lo.grad stayed None
    _grads_match(lambda x, lo: x.clamp(min=lo), lambda x, lo: x.clamp(min=lo),
                 [[-2.0, 0.7, 0.5, 3.0], [-1.0, 0.5, 0.5, 4.0]])
    _grads_match(lambda x, hi: tl.clip(x, max=hi), lambda x, hi: torch.clip(x, max=hi),
                 [[-2.0, 0.7, 0.5, 3.0], [-1.0, 0.5, 0.5, 4.0]])


def test_clamp_both_tensor_bounds_values_and_gradients():
    # trial_sci #14: "truth value of a tensor is ambiguous"; ties (x == lo, x == hi, lo == hi
    # with x inside) and crossed bounds (lo > hi: the result is hi) included
    x = [-2.0, 0.7, 1.2, 0.0, 0.5, 1.0, 3.0, -3.0, 0.3]
    lo = [-1.0, 0.5, -1.0, 0.5, 0.5, -1.0, 2.0, 1.0, 0.3]
    hi = [1.0, 1.0, 1.5, 1.0, 1.0, 1.0, 1.0, -1.0, 0.3]
    _grads_match(lambda a, b, c: tl.clamp(a, b, c), lambda a, b, c: torch.clamp(a, b, c),
                 [x, lo, hi])
    _grads_match(lambda a, b, c: a.clip(b, c), lambda a, b, c: a.clip(b, c), [x, lo, hi])


def test_clamp_tensor_bounds_broadcast_and_mix_with_numbers():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5))
    lo = rng.standard_normal((4, 1)) - 0.5
    hi = rng.standard_normal((5,)) + 0.5
    _grads_match(lambda a, b, c: tl.clamp(a, b, c), lambda a, b, c: torch.clamp(a, b, c),
                 [x, lo, hi])
    # (torch takes no mix of a tensor and a number: its number as a 0-d tensor)
    def num(v):
        return torch.tensor(v, dtype=torch.float64)
    _grads_match(lambda a, b: tl.clamp(a, b, 0.4), lambda a, b: torch.clamp(a, b, num(0.4)),
                 [x, lo])
    _grads_match(lambda a, c: tl.clamp(a, -0.3, c), lambda a, c: torch.clamp(a, num(-0.3), c),
                 [x, hi])


def test_clamp_tensor_bounds_gradcheck_and_gradgradcheck():
    rng = np.random.default_rng(2)
    x = rng.uniform(-2, 2, (3, 4))
    lo = rng.uniform(-1.2, -0.2, (3, 4))
    hi = rng.uniform(0.2, 1.2, (4,))
    x = np.where(np.minimum(np.abs(x - lo), np.abs(x - hi)) < 0.05, x + 0.2, x)  # off the kinks
    ins = [tl.tensor(a, requires_grad=True) for a in (x, lo, hi)]
    assert gradcheck(lambda a, b, c: tl.clamp(a, b, c), ins)
    assert gradgradcheck(lambda a, b, c: tl.clamp(a, b, c) * a, ins)


def test_clamp_numbers_min_above_max_gives_max():
    # torch returns max everywhere (and no gradient to x); tensorlib raised
    for lo, hi in ((2.0, 1.0), (0.5, -0.5)):
        _grads_match(lambda a: tl.clamp(a, lo, hi), lambda a: torch.clamp(a, lo, hi),
                     [[-3.0, 0.0, 0.7, 1.5, 4.0]])
        _grads_match(lambda a: a.clip(lo, hi), lambda a: a.clip(lo, hi), [[-3.0, 1.5, 4.0]])


def test_clamp_inplace_with_a_tensor_bound_that_requires_grad():
    xs, xs_t = _pair([-2.0, 0.7, 3.0], grad=False)
    lo, lo_t = _pair([-1.0, 1.0, 0.0])
    w, w_t = _pair([1.0, 2.0, 3.0])
    h, h_t = xs * w, xs_t * w_t
    r = h.clamp_(min=lo)
    h_t.clamp_(min=lo_t)
    assert r is h
    _close(h, h_t)
    (h * h).sum().backward()
    (h_t * h_t).sum().backward()
    _close(lo.grad, lo_t.grad)
    _close(w.grad, w_t.grad)


def test_clamp_tensor_bounds_capture_and_onnx(tmp_path):
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3)]
    arrays[2] = arrays[2] + 1.0

    def fn(x, lo, hi):
        return tl.clamp(x, lo, hi) * 2.0

    step = tl.function(fn)
    for k in range(2):
        a = [v + k for v in arrays]
        _close(step(*[tl.tensor(v) for v in a]), fn(*[tl.tensor(v) for v in a]).numpy())
    ts = [tl.tensor(v) for v in arrays]
    with tl.capture(*ts) as g:
        out = fn(*ts)
        crossed = tl.clamp(ts[0], 0.5, -0.5)          # numbers, min > max: max
    g.set_outputs(out, crossed)
    want = [torch.clamp(*[torch.tensor(v) for v in arrays]).numpy() * 2.0,
            np.full((3, 4), -0.5, np.float32)]
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = tl.onnx.to_model(g, opset=17)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {i.name: a for i, a in zip(model.graph.input, arrays)})
    for gv, w in zip(got, want):
        np.testing.assert_allclose(gv, w, rtol=1e-6)


# --- 2. atan2 at the origin ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_atan2_gradient_at_the_origin_is_zero(dtype):
    # trial_sci #9: NaN; torch gives 0 where x^2 + y^2 == 0 (1e-200 squared underflows too)
    y = np.array([0.0, 1.0, 0.0, -2.0, 1e-200 if dtype == "float64" else 1e-30])
    x = np.array([0.0, 1.0, 3.0, 0.0, 1e-200 if dtype == "float64" else 1e-30])
    res = []
    for lib in (tl, torch):
        ty = lib.tensor(y.astype(dtype), requires_grad=True)
        tx = lib.tensor(x.astype(dtype), requires_grad=True)
        lib.atan2(ty, tx).sum().backward()
        res.append((np.asarray(ty.grad.tolist()), np.asarray(tx.grad.tolist())))
    for got, want in zip(res[0], res[1]):
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_atan2_gradcheck_gradgradcheck_and_finite_second_derivative_at_origin():
    rng = np.random.default_rng(4)
    y = rng.uniform(-2, 2, (3, 4))
    x = rng.uniform(-2, 2, (4,))
    x = np.where(np.abs(x) < 0.2, x + 0.5, x)
    ins = [tl.tensor(y, requires_grad=True), tl.tensor(x, requires_grad=True)]
    assert gradcheck(tl.atan2, ins)
    assert gradgradcheck(tl.atan2, ins)
    # grad of grad where the first derivative was masked: finite (0), not NaN
    ty = tl.tensor([0.0, 1.0], dtype=tl.float64, requires_grad=True)
    tx = tl.tensor([0.0, 2.0], dtype=tl.float64, requires_grad=True)
    gy, gx = tl.grad(tl.atan2(ty, tx).sum(), [ty, tx], create_graph=True)
    hy, hx = tl.grad((gy * gy + gx).sum(), [ty, tx])
    assert np.isfinite(hy.numpy()).all() and np.isfinite(hx.numpy()).all()
    # away from the origin: torch's second derivatives
    py, px = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True), \
        torch.tensor([0.0, 2.0], dtype=torch.float64, requires_grad=True)
    qy, qx = torch.autograd.grad(torch.atan2(py, px).sum(), [py, px], create_graph=True)
    ry, rx = torch.autograd.grad((qy * qy + qx).sum(), [py, px])
    _close(hy.numpy()[1:], ry.numpy()[1:])
    _close(hx.numpy()[1:], rx.numpy()[1:])


# --- 3. the hardtanh family at its breakpoints -----------------------------------------------
BREAKS = np.array([-4, -3, -1, -0.5, 0, 0.5, 1, 3, 5.5, 6, 7], dtype=np.float64)
HARD = [
    ("relu6", F.relu6, TF.relu6),
    ("hardtanh", F.hardtanh, TF.hardtanh),
    ("hardtanh(-0.5, 3)", lambda x: F.hardtanh(x, -0.5, 3.0), lambda x: TF.hardtanh(x, -0.5, 3.0)),
    ("hardsigmoid", F.hardsigmoid, TF.hardsigmoid),
    ("hardswish", F.hardswish, TF.hardswish),
]


@pytest.mark.parametrize("name,fn,ref", HARD, ids=[h[0] for h in HARD])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hard_activations_gradients_at_breakpoints_match_torch(name, fn, ref, dtype):
    x, t = tl.tensor(BREAKS.astype(dtype), requires_grad=True), \
        torch.tensor(BREAKS.astype(dtype), requires_grad=True)
    out, want = fn(x), ref(t)
    # (torch's float64 hardsigmoid uses a float32 1/6 in its backward: rtol 1e-7)
    _close(out, want, atol=1e-7, rtol=1e-6, what=f"{name} value")
    gx, = tl.grad((out * x).sum(), [x], create_graph=True)
    gt, = torch.autograd.grad((want * t).sum(), [t], create_graph=True)
    _close(gx, gt, atol=1e-7, rtol=1e-6, what=f"{name} gradient")
    if dtype == "float64":     # second derivatives, at the breakpoints too
        hx, = tl.grad((gx * gx).sum(), [x])
        if name == "hardsigmoid":  # torch has no double backward: f'' = 0, so 4 (f + x f') f'
            d1, = torch.autograd.grad(ref(t).sum(), [t])
            ht = 4 * gt * d1
        else:
            ht, = torch.autograd.grad((gt * gt).sum(), [t])
        _close(hx, ht, atol=1e-12, rtol=1e-7, what=f"{name} second derivative")


@pytest.mark.parametrize("name,fn,ref", HARD, ids=[h[0] for h in HARD])
def test_hard_activations_modules_match_torch_at_breakpoints(name, fn, ref):
    mods = {"relu6": "ReLU6", "hardtanh": "Hardtanh", "hardsigmoid": "Hardsigmoid",
            "hardswish": "Hardswish"}
    if name not in mods:
        return
    x, t = _pair(BREAKS)
    getattr(tl.nn, mods[name])()(x).sum().backward()
    getattr(torch.nn, mods[name])()(t).sum().backward()
    _close(x.grad, t.grad, rtol=1e-7)


@pytest.mark.parametrize("name,fn,ref", HARD, ids=[h[0] for h in HARD])
def test_hard_activations_gradcheck(name, fn, ref):
    rng = np.random.default_rng(5)
    x = rng.uniform(-8, 8, (3, 5))
    kinks = np.array([-3.0, -1.0, -0.5, 0.0, 1.0, 3.0, 6.0])
    x = np.where(np.min(np.abs(x[..., None] - kinks), axis=-1) < 0.05, x + 0.2, x)
    ins = [tl.tensor(x, requires_grad=True)]
    assert gradcheck(fn, ins)
    assert gradgradcheck(fn, ins)


def test_clip_keeps_its_closed_interval_gradient():
    # clamp's own rule is unchanged: the gradient passes at the bounds
    _grads_match(lambda a: tl.clip(a, -1.0, 1.0), lambda a: torch.clamp(a, -1.0, 1.0),
                 [[-2.0, -1.0, 0.0, 1.0, 2.0]])


def test_hard_activations_capture_and_onnx():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    a = BREAKS.astype(np.float32)
    x = tl.tensor(a)
    with tl.capture(x) as g:
        outs = [fn(x) for _, fn, _ in HARD]
    g.set_outputs(*outs)
    model = tl.onnx.to_model(g, opset=17)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {model.graph.input[0].name: a})
    for (name, _, ref), gv in zip(HARD, got):
        np.testing.assert_allclose(gv, ref(torch.tensor(a)).numpy(), atol=1e-6, err_msg=name)


# --- 4. PyTorch keywords and methods ---------------------------------------------------------
INPLACE = [
    ("relu", lambda F_, x, ip: F_.relu(x, inplace=ip)),
    ("relu6", lambda F_, x, ip: F_.relu6(x, inplace=ip)),
    ("elu", lambda F_, x, ip: F_.elu(x, 0.7, inplace=ip)),
    ("celu", lambda F_, x, ip: F_.celu(x, 1.3, inplace=ip)),
    ("selu", lambda F_, x, ip: F_.selu(x, inplace=ip)),
    ("leaky_relu", lambda F_, x, ip: F_.leaky_relu(x, 0.2, inplace=ip)),
    ("leaky_relu positional", lambda F_, x, ip: F_.leaky_relu(x, 0.2, ip)),
    ("relu positional", lambda F_, x, ip: F_.relu(x, ip)),
    ("hardtanh", lambda F_, x, ip: F_.hardtanh(x, -0.5, 0.5, inplace=ip)),
    ("hardsigmoid", lambda F_, x, ip: F_.hardsigmoid(x, inplace=ip)),
    ("hardswish", lambda F_, x, ip: F_.hardswish(x, inplace=ip)),
    ("silu", lambda F_, x, ip: F_.silu(x, inplace=ip)),
    ("mish", lambda F_, x, ip: F_.mish(x, inplace=ip)),
]


@pytest.mark.parametrize("name,call", INPLACE, ids=[c[0] for c in INPLACE])
def test_functional_inplace_modifies_the_input_and_keeps_gradients(name, call):
    rng = np.random.default_rng(6)
    a = rng.standard_normal((3, 4)) * 3
    # no autograd: the input itself holds the result
    x, t = tl.tensor(a), torch.tensor(a)
    out = call(F, x, True)
    call(TF, t, True)
    assert out is x
    _close(x, t, atol=1e-12, rtol=1e-7)    # (torch computes a few of these with float32 constants)
    # out of place leaves the input alone
    x = tl.tensor(a)
    call(F, x, False)
    _close(x, a)
    # through autograd: a non-leaf written in place, gradient as torch's
    w, w_t = _pair(np.ones((3, 4)))
    h, h_t = tl.tensor(a) * w, torch.tensor(a) * w_t
    out = call(F, h, True)
    call(TF, h_t, True)
    assert out is h
    (h * tl.tensor(a)).sum().backward()
    (h_t * torch.tensor(a)).sum().backward()
    _close(w.grad, w_t.grad, atol=1e-12, rtol=1e-7)
    # a leaf that requires grad is refused, as torch
    leaf = tl.tensor(a, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        call(F, leaf, True)


@pytest.mark.parametrize("cls,kw", [("ReLU", {}), ("ReLU6", {}),
                                    ("LeakyReLU", {"negative_slope": 0.3}), ("ELU", {}),
                                    ("CELU", {}), ("SELU", {}), ("Hardtanh", {}),
                                    ("Hardsigmoid", {}), ("Hardswish", {}), ("SiLU", {}),
                                    ("Mish", {})])
def test_activation_layers_honour_inplace(cls, kw):
    a = np.random.default_rng(7).standard_normal((2, 5)) * 4
    for inplace in (False, True):
        x, t = tl.tensor(a), torch.tensor(a)
        m, mt = getattr(tl.nn, cls)(inplace=inplace, **kw), getattr(torch.nn, cls)(inplace=inplace,
                                                                                    **kw)
        out, ref = m(x), mt(t)
        assert (out is x) == inplace
        _close(out, ref, atol=1e-12, rtol=1e-7)
        _close(x, t, atol=1e-12, rtol=1e-7)        # modified exactly when torch's is
        assert repr(m) == repr(mt)


def test_dropout_inplace():
    a = np.ones((50, 40))
    x = tl.tensor(a)
    out = F.dropout(x, 0.5, True, inplace=True)
    assert out is x
    assert set(np.unique(x.numpy())) <= {0.0, 2.0} and (x.numpy() == 0).any()
    x = tl.tensor(a)
    assert F.dropout(x, 0.5, False, inplace=True) is x
    _close(x, a)
    x = tl.tensor(np.ones((4, 6, 3, 3)))
    assert F.dropout2d(x, 0.5, True, inplace=True) is x
    per_channel = x.numpy().reshape(4, 6, 9)
    assert (per_channel.min(-1) == per_channel.max(-1)).all()


@pytest.mark.parametrize("nd", [1, 2])
def test_conv_transpose_forward_output_size(nd):
    rng = np.random.default_rng(8)
    kw = dict(stride=3, padding=1, dilation=2)
    Tl, Tt = (tl.nn.ConvTranspose1d, torch.nn.ConvTranspose1d) if nd == 1 else \
        (tl.nn.ConvTranspose2d, torch.nn.ConvTranspose2d)
    mt = Tt(4, 2, 3, **kw).double()
    m = Tl(4, 2, 3, **kw, dtype=tl.float64)
    m.load_state_dict({k: v.detach().numpy() for k, v in mt.state_dict().items()})
    spatial = (5,) * nd
    a = rng.standard_normal((2, 4) + spatial)
    lo = (5 - 1) * 3 - 2 + 2 * 2 + 1
    for size in [(lo,) * nd, (lo + 2,) * nd, (lo + 1, lo)[:nd], (2, 2) + (lo + 1,) * nd]:
        x, t = _pair(a)
        out, ref = m(x, output_size=size), mt(t, output_size=size)
        _close(out, ref, atol=1e-10)
        w = rng.standard_normal(tuple(ref.shape))
        (out * tl.tensor(w)).sum().backward()
        (ref * torch.tensor(w)).sum().backward()
        _close(x.grad, t.grad, atol=1e-10)
    unbatched = m(tl.tensor(a[0]), output_size=(lo + 1,) * nd)
    _close(unbatched, mt(torch.tensor(a[0]), output_size=(lo + 1,) * nd), atol=1e-10)
    with pytest.raises(ValueError, match="valid sizes range"):
        m(tl.tensor(a), output_size=(lo + 3,) * nd)


def test_adaptive_max_pool_return_indices_match_torch():
    rng = np.random.default_rng(9)
    cases = [((2, 3, 7, 9), (3, 4)), ((2, 3, 8, 8), 2), ((3, 5, 6), (4, None)),
             ((1, 2, 5, 5), (7, 3))]
    for shape, osz in cases:
        for ties in (False, True):
            a = rng.standard_normal(shape)
            if ties:
                a = np.round(a)
            for fn, ref in ((lambda x: F.adaptive_max_pool2d(x, osz, return_indices=True),
                             lambda x: TF.adaptive_max_pool2d(x, osz, return_indices=True)),
                            (lambda x: tl.nn.AdaptiveMaxPool2d(osz, return_indices=True)(x),
                             lambda x: torch.nn.AdaptiveMaxPool2d(osz, return_indices=True)(x))):
                (o, oi), (r, ri) = fn(tl.tensor(a)), ref(torch.tensor(a))
                _close(o, r)
                assert oi.dtype == tl.int64
                np.testing.assert_array_equal(oi.numpy(), ri.numpy())
    a = rng.standard_normal((2, 3, 11))
    (o, oi), (r, ri) = (tl.nn.AdaptiveMaxPool1d(4, return_indices=True)(tl.tensor(a)),
                        torch.nn.AdaptiveMaxPool1d(4, return_indices=True)(torch.tensor(a)))
    _close(o, r)
    np.testing.assert_array_equal(oi.numpy(), ri.numpy())
    # float16 (values in float16, as the pooling without indices)
    a = rng.standard_normal((2, 3, 7, 9)).astype(np.float16)
    o, oi = F.adaptive_max_pool2d(tl.tensor(a), (3, 4), return_indices=True)
    r, ri = TF.adaptive_max_pool2d(torch.tensor(a).float(), (3, 4), return_indices=True)
    assert o.dtype == tl.float16
    np.testing.assert_array_equal(oi.numpy(), ri.numpy())
    # captured: the indices follow the input
    step = tl.function(lambda x: F.adaptive_max_pool2d(x, (3, 2), return_indices=True)[1])
    for _ in range(2):
        b = rng.standard_normal((2, 3, 7, 5)).astype(np.float32)
        np.testing.assert_array_equal(
            step(tl.tensor(b)).numpy(),
            TF.adaptive_max_pool2d(torch.tensor(b), (3, 2), return_indices=True)[1].numpy())


AA = [dict(size=(5, 4)), dict(size=(3, 3)), dict(size=(40, 29)), dict(size=(1, 1)),
      dict(scale_factor=0.3), dict(scale_factor=(0.5, 0.25)), dict(scale_factor=2.5),
      dict(scale_factor=0.37, recompute_scale_factor=True)]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("kw", AA, ids=[str(k) for k in AA])
def test_interpolate_antialias_matches_torch(mode, align_corners, kw):
    a = np.random.default_rng(10).standard_normal((2, 3, 17, 13))
    _grads_match(lambda x: F.interpolate(x, mode=mode, align_corners=align_corners,
                                         antialias=True, **kw),
                 lambda x: TF.interpolate(x, mode=mode, align_corners=align_corners,
                                          antialias=True, **kw), [a], atol=1e-12)


def test_interpolate_antialias_float32_and_errors():
    a = np.random.default_rng(11).standard_normal((1, 2, 20, 20)).astype(np.float32)
    out = F.interpolate(tl.tensor(a), size=(6, 7), mode="bilinear", antialias=True)
    assert out.dtype == tl.float32
    _close(out, TF.interpolate(torch.tensor(a), size=(6, 7), mode="bilinear", antialias=True),
           atol=1e-6, rtol=1e-5)
    half = F.interpolate(tl.tensor(a.astype(np.float16)), size=(6, 7), mode="bicubic",
                         antialias=True)
    assert half.dtype == tl.float16
    with pytest.raises(ValueError, match="antialias"):
        F.interpolate(tl.tensor(a), size=(6, 7), mode="nearest", antialias=True)
    # antialias=False is the plain interpolation
    _close(F.interpolate(tl.tensor(a), size=(6, 7), mode="bilinear", antialias=False),
           TF.interpolate(torch.tensor(a), size=(6, 7), mode="bilinear"), atol=1e-6, rtol=1e-5)


def test_roll_with_torch_keywords():
    a = np.arange(24.0).reshape(2, 3, 4)
    x, t = tl.tensor(a), torch.tensor(a)
    _close(x.roll(shifts=1, dims=2), t.roll(shifts=1, dims=2))
    _close(x.roll(shifts=(1, -2), dims=(0, 2)), t.roll(shifts=(1, -2), dims=(0, 2)))
    _close(x.roll(2, 1), t.roll(2, 1))
    _close(x.roll(shifts=5), t.roll(shifts=5))
    _close(x.roll(shift=1, axis=0), np.roll(a, 1, axis=0))      # NumPy's names still work
    _close(tl.roll(x, shifts=(1, -2), dims=(0, 2)), torch.roll(t, shifts=(1, -2), dims=(0, 2)))


def _div_pairs():
    rng = np.random.default_rng(12)
    fa = np.concatenate([rng.uniform(-9, 9, 40), [7.0, -7.0, 1.0, -1.0, 0.0]])
    fb = np.concatenate([rng.uniform(-3, 3, 40), [2.0, 2.0, 0.1, 0.1, -2.0]])
    ia = np.array([7, -7, 7, -7, 6, -6, 0, 5, -9223372036854775807], np.int64)
    ib = np.array([2, 2, -2, -2, 3, 3, 4, -5, 2], np.int64)
    return [(fa, fb), (ia, ib), (ia.astype(np.int32), np.int32(3)), (ia, 3), (fa, 0.7)]


@pytest.mark.parametrize("mode", ["trunc", "floor", None])
def test_div_rounding_mode_matches_torch(mode):
    for a, b in _div_pairs():
        ta = torch.tensor(a)
        tb = torch.tensor(b) if isinstance(b, np.ndarray) else b
        la = tl.tensor(a)
        lb = tl.tensor(b) if isinstance(b, np.ndarray) else b
        want = torch.div(ta, tb, rounding_mode=mode)
        for got in (tl.div(la, lb, rounding_mode=mode), la.div(lb, rounding_mode=mode)):
            assert got.dtype == getattr(tl, str(want.dtype).split(".")[1]), (got.dtype, want.dtype)
            np.testing.assert_array_equal(got.numpy(), want.numpy())
        ip = tl.tensor(a.copy())
        ip_t = torch.tensor(a.copy())
        if mode is None and ip_t.dtype.is_floating_point is False:
            continue                    # int /= int: torch raises, tensorlib too
        assert ip.div_(lb, rounding_mode=mode) is ip
        ip_t.div_(tb, rounding_mode=mode)
        np.testing.assert_array_equal(ip.numpy(), ip_t.numpy())


@pytest.mark.parametrize("mode", ["trunc", "floor"])
def test_div_rounding_mode_gradient_is_zero_as_torch(mode):
    _grads_match(lambda a, b: tl.div(a, b, rounding_mode=mode),
                 lambda a, b: torch.div(a, b, rounding_mode=mode),
                 [[7.5, -7.5, 3.2, -0.4], [2.0, 2.0, -1.5, 0.3]])


def test_div_rounding_mode_error():
    with pytest.raises(ValueError, match="rounding_mode"):
        tl.div(tl.ones(2), 2.0, rounding_mode="round")


def test_expand_as_and_type_as():
    a = np.arange(3.0).reshape(3, 1)
    x, t = tl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    other = np.zeros((2, 3, 4))
    out, ref = x.expand_as(tl.tensor(other)), t.expand_as(torch.tensor(other))
    _close(out, ref)
    (out * tl.tensor(np.arange(24.0).reshape(2, 3, 4))).sum().backward()
    (ref * torch.arange(24.0, dtype=torch.float64).reshape(2, 3, 4)).sum().backward()
    _close(x.grad, t.grad)
    idx = tl.tensor(np.array([[1, 0], [2, 5]]))
    for like, want in ((tl.zeros(1), tl.float32), (tl.zeros(1, dtype=tl.float64), tl.float64),
                       (tl.zeros(1, dtype=tl.int32), tl.int32)):
        got = idx.type_as(like)
        assert got.dtype == want
        np.testing.assert_array_equal(got.numpy(), [[1, 0], [2, 5]])
    f = tl.tensor([1.0, 2.0], requires_grad=True)
    (f.type_as(tl.zeros(1, dtype=tl.float64)) * 3.0).sum().backward()
    _close(f.grad, np.array([3.0, 3.0], np.float32))


# --- 5. clearer errors -----------------------------------------------------------------------
def test_cross_entropy_float_class_index_target_says_integer():
    logits = tl.randn(2, 5, 4, 4)
    target = tl.tensor(np.random.default_rng(13).integers(0, 5, (2, 4, 4)).astype(np.float32))
    with pytest.raises(TypeError, match=r"class-index targets must be integers.*long\(\)"):
        F.cross_entropy(logits, target)
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(tl.randn(3, 5), tl.tensor([1.0, 2.0, 0.0]))
    # a probability target of the input's shape still works, and a wrong shape keeps its message
    p = F.softmax(tl.randn(3, 5), axis=1)
    assert np.isfinite(F.cross_entropy(tl.randn(3, 5), p).item())
    with pytest.raises(ValueError, match="probability target"):
        F.cross_entropy(tl.randn(3, 5), tl.randn(3, 4))
