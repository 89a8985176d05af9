"""User-facing polish (round 20), against PyTorch 2.13: shape errors of stack / bmm / mm /
scaled_dot_product_attention that name the function and the shapes, with PyTorch's
exception class (a ShapeError: RuntimeError and ValueError); the optimizers' ``fused=``
as PyTorch takes or refuses it; hardtanh / relu6 at NaN, +-inf and the kinks; the target
gradient of binary_cross_entropy; docstrings of the most-read entries."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn
from tensorlib.errors import ShapeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _t(a, grad=False):
    return tl.tensor(np.asarray(a, np.float64), requires_grad=grad)


def _tt(a, grad=False):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


def _close(got, want, rtol=1e-10, atol=1e-12):
    g = got.detach().numpy() if isinstance(got, tl.Tensor) else np.asarray(got)
    w = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert g.shape == w.shape, (g.shape, w.shape)
    np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)


def _both_refuse(tl_call, torch_call, *needles):
    """torch raises RuntimeError; tensorlib a ShapeError (RuntimeError and ValueError) whose
    message holds each of ``needles``."""
    with pytest.raises(RuntimeError):
        torch_call()
    with pytest.raises(ShapeError) as info:
        tl_call()
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, ValueError)
    for n in needles:
        assert n in str(info.value), (n, str(info.value))


# --- (b) shape errors ---------------------------------------------------------------------
def test_bmm_batch_sizes_differ():
    a, b = np.ones((4, 3, 2)), np.ones((5, 2, 3))
    _both_refuse(lambda: tl.bmm(_t(a), _t(b)), lambda: torch.bmm(_tt(a), _tt(b)),
                 "bmm: batch sizes differ (4 != 5) for shapes (4, 3, 2) and (5, 2, 3)")


def test_bmm_inner_and_rank_errors():
    a, b = np.ones((4, 3, 2)), np.ones((4, 3, 3))
    _both_refuse(lambda: tl.bmm(_t(a), _t(b)), lambda: torch.bmm(_tt(a), _tt(b)),
                 "bmm:", "(4, 3, 2)", "(4, 3, 3)", "(2 != 3")
    a2 = np.ones((4, 3))
    _both_refuse(lambda: tl.bmm(_t(a2), _t(b)), lambda: torch.bmm(_tt(a2), _tt(b)),
                 "bmm:", "3-D", "(4, 3)")
    # baddbmm goes through bmm's checks
    with pytest.raises(RuntimeError, match="bmm"):
        tl.baddbmm(tl.zeros(4, 3, 3), _t(a), _t(np.ones((5, 2, 3))))


def test_mm_errors():
    a, b = np.ones((4, 3)), np.ones((4, 3))
    _both_refuse(lambda: tl.mm(_t(a), _t(b)), lambda: torch.mm(_tt(a), _tt(b)),
                 "mm: shapes (4, 3) and (4, 3) cannot be multiplied (3 != 4)")
    c = np.ones((4, 3, 1))
    _both_refuse(lambda: tl.mm(_t(c), _t(b)), lambda: torch.mm(_tt(c), _tt(b)),
                 "mm:", "(4, 3, 1)")
    with pytest.raises(RuntimeError, match="addmm"):
        tl.addmm(tl.zeros(4, 4), _t(a), _t(b))


def test_stack_errors():
    a, b = np.ones((2, 3)), np.ones((3, 2))
    _both_refuse(lambda: tl.stack([_t(a), _t(a), _t(b)]),
                 lambda: torch.stack([_tt(a), _tt(a), _tt(b)]),
                 "stack: all tensors must have the same shape, got (2, 3) at entry 0 and "
                 "(3, 2) at entry 2")
    _both_refuse(lambda: tl.stack([]), lambda: torch.stack([]), "stack:", "empty")
    # a ValueError still, for code written against the old message
    with pytest.raises(ValueError):
        tl.stack([tl.ones(2), tl.ones(3)])


def test_stack_error_under_capture():
    f = tl.function(lambda x, y: tl.stack([x, y]))
    with pytest.raises(RuntimeError, match=r"stack: .*\(2, 3\) at entry 0 and \(3, 2\) at entry 1"):
        f(tl.ones(2, 3), tl.ones(3, 2))


@settings(max_examples=30, deadline=None)
@given(b1=st.integers(1, 3), b2=st.integers(1, 3), n=st.integers(1, 3), m1=st.integers(1, 3),
       m2=st.integers(1, 3), p=st.integers(1, 3))
def test_bmm_matches_torch_or_both_refuse(b1, b2, n, m1, m2, p):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(b1, n, m1)), rng.normal(size=(b2, m2, p))
    if b1 != b2 or m1 != m2:
        _both_refuse(lambda: tl.bmm(_t(a), _t(b)), lambda: torch.bmm(_tt(a), _tt(b)),
                     "bmm:", str((b1, n, m1)), str((b2, m2, p)))
        return
    x, y, xt, yt = _t(a, True), _t(b, True), _tt(a, True), _tt(b, True)
    out, ref = tl.bmm(x, y), torch.bmm(xt, yt)
    _close(out, ref)
    r = rng.normal(size=ref.shape)
    gx, gy = tl.autograd.grad((out * _t(r)).sum(), [x, y])
    gxt, gyt = torch.autograd.grad((ref * _tt(r)).sum(), [xt, yt])
    _close(gx, gxt)
    _close(gy, gyt)


@settings(max_examples=30, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 3)), min_size=1,
                       max_size=4), dim=st.integers(-3, 2))
def test_stack_matches_torch_or_both_refuse(shapes, dim):
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=s) for s in shapes]
    if len(set(shapes)) > 1:
        i = next(i for i, s in enumerate(shapes) if s != shapes[0])
        _both_refuse(lambda: tl.stack([_t(a) for a in arrays], dim=dim),
                     lambda: torch.stack([_tt(a) for a in arrays], dim=dim),
                     f"{shapes[0]} at entry 0 and {shapes[i]} at entry {i}")
        return
    xs, ts = [_t(a, True) for a in arrays], [_tt(a, True) for a in arrays]
    out, ref = tl.stack(xs, dim=dim), torch.stack(ts, dim=dim)
    _close(out, ref)
    r = rng.normal(size=ref.shape)
    for g, gt in zip(tl.autograd.grad((out * _t(r)).sum(), xs),
                     torch.autograd.grad((ref * _tt(r)).sum(), ts)):
        _close(g, gt)


@pytest.mark.parametrize("q,k,v,mask,needles", [
    ((2, 3, 4), (2, 5, 3), (2, 5, 4), None, ("embedding sizes differ (4 != 3)", "(2, 5, 3)")),
    ((2, 3, 4), (2, 5, 4), (2, 6, 4), None, ("sequence lengths differ (5 != 6)", "(2, 6, 4)")),
    ((2, 3, 4), (3, 5, 4), (3, 5, 4), None, ("batch dims", "(2, 3, 4)", "(3, 5, 4)")),
    ((2, 3, 4), (2, 5, 4), (2, 5, 4), (4, 5), ("attn_mask of shape (4, 5)", "(2, 3, 5)")),
    ((4,), (4,), (4,), None, ("at least 2 dimensions", "(4,)")),
])
def test_sdpa_shape_errors(q, k, v, mask, needles):
    a, b, c = np.ones(q), np.ones(k), np.ones(v)
    m = None if mask is None else np.zeros(mask)
    _both_refuse(
        lambda: F.scaled_dot_product_attention(_t(a), _t(b), _t(c),
                                               attn_mask=None if m is None else _t(m)),
        lambda: TF.scaled_dot_product_attention(_tt(a), _tt(b), _tt(c),
                                                attn_mask=None if m is None else _tt(m)),
        "scaled_dot_product_attention:", *needles)


def test_sdpa_broadcast_batch_matches_torch():
    rng = np.random.default_rng(2)
    a, b, c = rng.normal(size=(2, 1, 3, 4)), rng.normal(size=(1, 5, 4)), \
        rng.normal(size=(2, 1, 5, 4))
    xs, ts = [_t(x, True) for x in (a, b, c)], [_tt(x, True) for x in (a, b, c)]
    out, ref = F.scaled_dot_product_attention(*xs), TF.scaled_dot_product_attention(*ts)
    _close(out, ref)
    for g, gt in zip(tl.autograd.grad(out.sum(), xs), torch.autograd.grad(ref.sum(), ts)):
        _close(g, gt)


# --- (c) fused= / foreach= ------------------------------------------------------------------
_OPTIMS = ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax", "NAdam",
           "RAdam", "Rprop", "ASGD", "Adafactor", "LBFGS", "SparseAdam"]


def _construct(lib, name, **kw):
    p = (torch.ones(3, requires_grad=True) if lib is torch
         else tl.ones(3, requires_grad=True))
    return getattr(lib.optim, name)([p], lr=0.1, **kw)


@pytest.mark.parametrize("name", [n for n in _OPTIMS if hasattr(tl.optim, n)])
@pytest.mark.parametrize("flag", ["fused", "foreach"])
def test_implementation_flag_taken_or_refused_as_torch(name, flag):
    try:
        _construct(torch, name, **{flag: True})
    except TypeError as e:
        assert "unexpected keyword argument" in str(e)
        with pytest.raises(TypeError, match=f"unexpected keyword argument '{flag}'"):
            _construct(tl, name, **{flag: True})
        return
    opt = _construct(tl, name, **{flag: True})
    assert opt.param_groups[0][flag] is True


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad"])
def test_fused_errors_as_torch(name):
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together"):
        _construct(torch, name, fused=True, foreach=True)
    with pytest.raises(RuntimeError, match=f"{name}: `fused` and `foreach` cannot be"):
        _construct(tl, name, fused=True, foreach=True)
    with pytest.raises(RuntimeError):
        _construct(torch, name, fused=True, differentiable=True)
    with pytest.raises(RuntimeError):    # NotImplementedError is a RuntimeError
        _construct(tl, name, fused=True, differentiable=True)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_steps_match_torch(name, dtype):
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(4, 3)).astype(dtype)
    p = tl.tensor(w0, requires_grad=True)
    pt = torch.tensor(w0, requires_grad=True)
    kw = dict(lr=0.05, fused=True, weight_decay=0.01)
    if name == "SGD":
        kw["momentum"] = 0.9
    opt, optt = getattr(tl.optim, name)([p], **kw), getattr(torch.optim, name)([pt], **kw)
    for _ in range(3):
        g = rng.normal(size=w0.shape).astype(dtype)
        p.grad, pt.grad = tl.tensor(g), torch.tensor(g)
        opt.step()
        optt.step()
    tol = 1e-5 if dtype == "float32" else 1e-12
    _close(p, pt, rtol=tol, atol=tol)


# --- (d) hardtanh / relu6 and binary_cross_entropy ---------------------------------------
_SPECIAL = [float("-inf"), -7.0, -1.0, -0.5, 0.0, 0.5, 1.0, 6.0, 7.0, float("inf")]


def _act_pairs():
    return [(lambda x: F.hardtanh(x), lambda x: TF.hardtanh(x)),
            (lambda x: F.hardtanh(x, 0.0, 1.0), lambda x: TF.hardtanh(x, 0.0, 1.0)),
            (F.relu6, TF.relu6),
            (nn.Hardtanh(-2.0, 3.0), torch.nn.Hardtanh(-2.0, 3.0)),
            (nn.ReLU6(), torch.nn.ReLU6())]


@pytest.mark.parametrize("pair", range(5))
def test_hardtanh_relu6_at_kinks_and_infinities(pair):
    f, ft = _act_pairs()[pair]
    # 64 values: PyTorch's vectorised kernel covers them all (its scalar tail differs)
    vals = np.resize(np.array(_SPECIAL + [-2.0, 3.0]), 64)
    x, xt = _t(vals, True), _tt(vals, True)
    out, ref = f(x), ft(xt)
    _close(out, ref)
    _close(tl.autograd.grad(out.sum(), x)[0], torch.autograd.grad(ref.sum(), xt)[0])


@pytest.mark.parametrize("pair", range(5))
def test_hardtanh_relu6_at_nan(pair):
    f, ft = _act_pairs()[pair]
    vals = np.full(64, np.nan)
    x, xt = _t(vals, True), _tt(vals, True)
    out, ref = f(x), ft(xt)
    assert np.isnan(out.numpy()).all() and np.isnan(ref.detach().numpy()).all()
    g, gt = tl.autograd.grad(out.sum(), x)[0], torch.autograd.grad(ref.sum(), xt)[0]
    # PyTorch's vectorised CPU kernel gives 0 at NaN (never NaN): tensorlib follows it
    assert (gt.numpy() == 0).all()
    _close(g, gt)


@settings(max_examples=40, deadline=None)
@given(vals=st.lists(st.one_of(st.floats(-10, 10), st.sampled_from(_SPECIAL)),
                     min_size=32, max_size=32))
def test_hardtanh_random_matches_torch(vals):
    x, xt = _t(vals, True), _tt(vals, True)
    out, ref = F.hardtanh(x, -1.5, 2.5), TF.hardtanh(xt, -1.5, 2.5)
    _close(out, ref)
    _close(tl.autograd.grad(out.sum(), x)[0], torch.autograd.grad(ref.sum(), xt)[0])


def test_bce_target_gradient_unclamped_as_torch():
    p = [0.0, 1.0, 0.0, 1.0, 1e-50, 1 - 1e-16, 0.3, 1e-45]
    y = [0.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.2, 0.7]
    for reduction in ("none", "mean", "sum"):
        xs, ts = [_t(p, True), _t(y, True)], [_tt(p, True), _tt(y, True)]
        out = F.binary_cross_entropy(*xs, reduction=reduction)
        ref = TF.binary_cross_entropy(*ts, reduction=reduction)
        _close(out, ref)
        gp, gy = tl.autograd.grad(out.sum(), xs)
        gpt, gyt = torch.autograd.grad(ref.sum(), ts)
        _close(gp, gpt)
        _close(gy, gyt)
        assert np.isinf(gy.numpy()[:4]).all()


@settings(max_examples=30, deadline=None)
@given(p=st.lists(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0])), min_size=1,
                  max_size=6), seed=st.integers(0, 100))
def test_bce_random_matches_torch(p, seed):
    rng = np.random.default_rng(seed)
    y = rng.uniform(size=len(p))
    w = rng.uniform(0.5, 2.0, size=len(p))
    xs, ts = [_t(p, True), _t(y, True)], [_tt(p, True), _tt(y, True)]
    out = F.binary_cross_entropy(*xs, weight=_t(w), reduction="sum")
    ref = TF.binary_cross_entropy(*ts, weight=_tt(w), reduction="sum")
    _close(out, ref, rtol=1e-9)
    for g, gt in zip(tl.autograd.grad(out, xs), torch.autograd.grad(ref, ts)):
        _close(g, gt, rtol=1e-9)


def test_bce_input_errors():
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        F.binary_cross_entropy(tl.tensor([1.5]), tl.tensor([1.0]))


# --- (a) docstrings -----------------------------------------------------------------------
_DOCUMENTED = [tl.zeros, tl.ones, tl.rand, tl.randn, tl.cat, tl.stack, tl.exp, tl.log,
               tl.unsqueeze, tl.Tensor.unsqueeze, tl.permute, tl.Tensor.permute,
               tl.Tensor.detach, nn.Flatten, tl.optim.lr_scheduler.StepLR]


@pytest.mark.parametrize("obj", _DOCUMENTED, ids=lambda o: o.__qualname__)
def test_docstrings_state_torch_semantics_with_example(obj):
    doc = inspect.getdoc(obj)
    assert doc and len(doc.splitlines()) >= 5, obj
    assert ">>>" in doc, obj
    assert "torch" in doc, obj       # names the PyTorch function it follows
