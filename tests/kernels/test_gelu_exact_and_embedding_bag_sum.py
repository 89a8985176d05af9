"""Kernels of round 21 against PyTorch: exact GELU on vector registers (every SIMD path:
values, gradients, left tail, NaN/inf, lengths around the vector widths) and the float32
embedding-bag sum kernel (sum/mean, per_sample_weights, offsets, gradients, errors)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import _ops

torch = pytest.importorskip("torch")

SIZES = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1000]


def _close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _phi(x):
    return np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x.astype(np.float64)])


# --- GELU (exact form) -----------------------------------------------------------------------
@pytest.mark.parametrize("n", SIZES)
def test_gelu_erf_kernel_vs_torch(cap, n):
    rng = np.random.default_rng(n)
    a = (rng.standard_normal(n) * 4).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    out = np.empty_like(a)
    _ops.gelu_into(a, out)
    # float64 PyTorch: its float32 backward cancels where the gradient crosses 0 (x ~ -0.75)
    ta = torch.from_numpy(a.astype(np.float64))
    _close(out, torch.nn.functional.gelu(ta).numpy(), rtol=2e-6, atol=2e-7)
    _ops.gelu_grad_into(g, a, out)
    want = torch.ops.aten.gelu_backward(torch.from_numpy(g.astype(np.float64)), ta).numpy()
    _close(out, want, rtol=2e-6, atol=5e-7)


def test_gelu_erf_left_tail_relative(cap):
    # PyTorch's 1 + erf cancels to 0 below about -5.5; the kernel keeps relative accuracy
    a = np.linspace(-12.5, -0.5, 2001).astype(np.float32)
    out = np.empty_like(a)
    _ops.gelu_into(a, out)
    want = a.astype(np.float64) * _phi(a)
    _close(out, want, rtol=2e-5, atol=0)
    gout = np.empty_like(a)
    _ops.gelu_grad_into(np.ones_like(a), a, gout)
    x = a.astype(np.float64)
    gwant = _phi(a) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    far = a < -3.0      # (the gradient crosses 0 near -0.75, where it cancels)
    _close(gout[far], gwant[far], rtol=2e-5, atol=0)


def test_gelu_erf_special_values(cap):
    a = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 3e38, -3e38, 20.0,
                  -20.0, 40.0, -40.0, 1e-45, -1e-45, 0.5, -0.5] * 2, np.float32)
    out = np.empty_like(a)
    _ops.gelu_into(a, out)
    want = np.where(np.isposinf(a), np.inf,
                    a.astype(np.float64) * _phi(np.nan_to_num(a, posinf=50, neginf=-50)))
    want = np.where(np.isnan(a) | np.isneginf(a), np.nan, want)
    _close(out, want, rtol=2e-6, atol=1e-37)
    assert np.signbit(out[4]) and np.signbit(out[6])        # -0 and -1e-30 stay negative
    gout = np.empty_like(a)
    _ops.gelu_grad_into(np.ones_like(a), a, gout)
    # PyTorch's backward: NaN at +-inf (inf * 0) and NaN; 1 far right, 0 far left
    assert np.isnan(gout[:3]).all()
    _close(gout[[3, 4, 5, 6]], [0.5] * 4)
    _close(gout[[9, 11]], [1.0, 1.0])
    _close(gout[[10, 12]], [0.0, 0.0], atol=1e-30)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-30, 30, width=32), min_size=1, max_size=70))
def test_gelu_erf_hypothesis(xs):
    a = np.array(xs, np.float32)
    ta = torch.from_numpy(a.astype(np.float64)).requires_grad_()
    torch.nn.functional.gelu(ta).sum().backward()
    x = tl.tensor(a, requires_grad=True)
    y = F.gelu(x)
    y.sum().backward()
    want = a.astype(np.float64) * _phi(a)
    _close(y.numpy(), want, rtol=2e-6, atol=2e-7)
    _close(x.grad.numpy(), ta.grad.numpy(), rtol=2e-6, atol=5e-7)


def test_gelu_grad_of_grad_vs_torch():
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(40) * 2).astype(np.float32)
    x = tl.tensor(a, requires_grad=True)
    (gx,) = tl.autograd.grad(F.gelu(x).sum(), x, create_graph=True)
    gx.sum().backward()
    t = torch.from_numpy(a).requires_grad_()
    (tg,) = torch.autograd.grad(torch.nn.functional.gelu(t).sum(), t, create_graph=True)
    tg.sum().backward()
    _close(gx.detach().numpy(), tg.detach().numpy(), rtol=1e-5, atol=1e-6)
    _close(x.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_gelu_non_contiguous_and_float64():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((33, 17))
    for arr in (a.astype(np.float32).T, a):
        got = F.gelu(tl.tensor(arr)).numpy()
        want = torch.nn.functional.gelu(torch.from_numpy(np.ascontiguousarray(arr))).numpy()
        _close(got, want, rtol=2e-6, atol=2e-7)


def test_gelu_bad_approximate():
    with pytest.raises(ValueError, match="gelu"):
        F.gelu(tl.tensor([1.0]), approximate="erf")


# --- embedding_bag sum / mean (float32 kernel) -------------------------------------------------
def _bag_pair(V, D, B, M, seed, psw, mode, padding_idx=None):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((V, D)).astype(np.float32)
    idx = rng.integers(0, V, (B, M))
    p = rng.random((B, M)).astype(np.float32) if psw else None
    w, tw = tl.tensor(W, requires_grad=True), torch.from_numpy(W).requires_grad_()
    pt = None if p is None else tl.tensor(p, requires_grad=True)
    tp = None if p is None else torch.from_numpy(p).requires_grad_()
    got = F.embedding_bag(tl.tensor(idx), w, mode=mode, per_sample_weights=pt,
                          padding_idx=padding_idx)
    want = torch.nn.functional.embedding_bag(torch.from_numpy(idx), tw, mode=mode,
                                             per_sample_weights=tp, padding_idx=padding_idx)
    return got, want, (w, tw), (pt, tp), rng


@pytest.mark.parametrize("D", [1, 3, 15, 16, 17, 31, 33, 64, 65, 100, 128, 130])
@pytest.mark.parametrize("mode,psw", [("sum", False), ("sum", True), ("mean", False)])
def test_embedding_bag_widths_vs_torch(cap, D, mode, psw):
    got, want, (w, tw), (pt, tp), rng = _bag_pair(50, D, 70, 5, D, psw, mode)
    _close(got.numpy(), want.detach().numpy())
    g = rng.standard_normal(tuple(want.shape)).astype(np.float32)
    got.backward(tl.tensor(g))
    want.backward(torch.from_numpy(g))
    _close(w.grad.numpy(), tw.grad.numpy())
    if psw:
        _close(pt.grad.numpy(), tp.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_offsets_padding_vs_torch(cap, mode):
    rng = np.random.default_rng(3)
    W = rng.standard_normal((40, 24)).astype(np.float32)
    idx = rng.integers(0, 40, 300)
    off = np.sort(np.concatenate([[0], rng.integers(0, 300, 60)]))   # some empty bags
    # (include_last_offset: PyTorch's kernels follow its docs only for sums without padding)
    cases = [(False, int(idx[5]))] + ([(True, None)] if mode == "sum" else [])
    for last, pad in cases:
        got = F.embedding_bag(tl.tensor(idx), tl.tensor(W), tl.tensor(off), mode=mode,
                              padding_idx=pad, include_last_offset=last)
        want = torch.nn.functional.embedding_bag(
            torch.from_numpy(idx), torch.from_numpy(W), torch.from_numpy(off), mode=mode,
            padding_idx=pad, include_last_offset=last)
        _close(got.numpy(), want.numpy())


def test_embedding_bag_nan_inf_rows(cap):
    W = np.ones((6, 20), np.float32)
    W[1, 3], W[2, 4], W[3, 4] = np.nan, np.inf, -np.inf
    idx = np.array([[0, 1], [2, 0], [2, 3], [4, 5]])
    got = F.embedding_bag(tl.tensor(idx), tl.tensor(W), mode="sum").numpy()
    want = torch.nn.functional.embedding_bag(torch.from_numpy(idx), torch.from_numpy(W),
                                             mode="sum").numpy()
    _close(got, want)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 20), st.integers(1, 40), st.integers(0, 12), st.integers(1, 8),
       st.booleans())
def test_embedding_bag_hypothesis(V, D, B, M, psw):
    got, want, *_ = _bag_pair(V, D, B, M, V * 1000 + D, psw and True, "sum")
    _close(got.numpy(), want.detach().numpy())


def test_bag_sum_f32_checks_its_input():
    w = np.ones((5, 4), np.float32)
    out = np.empty((2, 4), np.float32)
    ip = np.array([0, 2, 3], np.int64)
    c = np.ones(3, np.float32)
    with pytest.raises(IndexError, match="bag_sum_f32"):
        _ops.bag_sum_f32(w, np.array([0, 5, 1], np.int64), ip, c, out)
    with pytest.raises(IndexError, match="bag_sum_f32"):
        _ops.bag_sum_f32(w, np.array([0, -1, 1], np.int64), ip, c, out)
    with pytest.raises(ValueError, match="bag_sum_f32"):
        _ops.bag_sum_f32(w, np.array([0, 1, 1], np.int64), np.array([0, 3, 2], np.int64), c,
                         out)
    with pytest.raises(ValueError, match="bag_sum_f32"):
        _ops.bag_sum_f32(w, np.array([0, 1, 1], np.int64), np.array([1, 2, 3], np.int64), c,
                         out)
    with pytest.raises(ValueError, match="bag_sum_f32"):
        _ops.bag_sum_f32(w, np.array([0, 1, 1], np.int64), ip, np.ones(2, np.float32), out)
    _ops.bag_sum_f32(w, np.array([0, 1, 4], np.int64), ip, c, out)
    _close(out, [[2.0] * 4, [1.0] * 4])


def test_embedding_bag_bad_index_raises():
    w = tl.tensor(np.ones((5, 4), np.float32))
    with pytest.raises(IndexError, match="embedding_bag"):
        F.embedding_bag(tl.tensor([[0, 5]]), w, mode="sum")
    with pytest.raises(IndexError, match="embedding_bag"):
        F.embedding_bag(tl.tensor([[0, -1]]), w, mode="mean")


# --- where: the branch-free select (_ops.where_bits) -------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("form", ["arrays", "scalar_a", "scalar_b", "broadcast_b", "both"])
def test_where_bits_selects_every_bit_pattern(dtype, form):
    """The select keeps each element's exact bits (NaN payloads, -0.0, inf) and serves 0-d
    and broadcast single values, as np.where."""
    r = np.random.default_rng(3)
    n = 5000                                    # past _WHERE_MIN: the kernel runs
    c = r.random(n) < 0.5
    if np.dtype(dtype).kind == "f":
        a = r.standard_normal(n).astype(dtype)
        b = r.standard_normal(n).astype(dtype)
        a[:6] = [np.nan, -0.0, np.inf, -np.inf, 0.0, -np.nan]
        b[:6] = [-0.0, np.nan, -np.inf, np.inf, -0.0, 1.0]
    else:
        a = r.integers(-1000, 1000, n).astype(dtype)
        b = r.integers(-1000, 1000, n).astype(dtype)
    if form in ("scalar_a", "both"):
        a = np.array(a[0])
    if form in ("scalar_b", "both"):
        b = np.array(b[1])
    if form == "broadcast_b":
        b = np.broadcast_to(b[2], (n,))
    got = tl.where(tl.tensor(c), tl.tensor(a), tl.tensor(b)).numpy()
    want = np.where(c, a, b)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.view(f"u{want.dtype.itemsize}"),
                                  want.view(f"u{want.dtype.itemsize}"))


def test_where_bits_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="where_bits"):
        _ops.where_bits(np.zeros(4, np.uint8), np.zeros(3, np.uint32), np.zeros(4, np.uint32),
                        np.zeros(4, np.uint32))


def test_where_gradient_through_the_kernel_matches_torch():
    r = np.random.default_rng(4)
    x = r.standard_normal((64, 100))
    t = tl.tensor(x, requires_grad=True)
    tt = torch.tensor(x, requires_grad=True)
    tl.where(t > 0, t * 2, t.exp()).sum().backward()
    torch.where(tt > 0, tt * 2, tt.exp()).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-12)
