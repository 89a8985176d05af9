"""Session 20 fixes (recsys findings 2-3, stats findings 2 and 4-7): multinomial and
Categorical sampling by binary search, tl.load(mmap=True) and a copy-free load, fast accurate
lgamma, cdist's Euclidean op, histogram's equal-width bins, logsumexp over short rows,
integer median, mixed-dtype LBFGS, tl.ops.sampling.binomial, ExponentialFamily and the
Wishart KL; values and gradients against PyTorch (float64)."""
from __future__ import annotations

import math
import mmap
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl
from tensorlib.errors import InputError
from tensorlib.ops.sampling import binomial

torch = pytest.importorskip("torch")
D = tl.distributions
TD = torch.distributions
F64 = tl.float64


def _t(a, grad=False):
    return tl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _tt(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# --- (a) multinomial / Categorical ---------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(1, 300), n=st.integers(1, 40),
       rows=st.integers(1, 3))
def test_multinomial_replacement_never_draws_zero_weight(seed, k, n, rows):
    rng = np.random.default_rng(seed)
    w = rng.random((rows, k)) * (rng.random((rows, k)) < 0.5)
    w[:, rng.integers(k)] += 0.1             # every row has a positive weight
    idx = tl.multinomial(tl.tensor(w), n, replacement=True).numpy()
    assert idx.shape == (rows, n) and idx.dtype == np.int64
    assert (w[np.arange(rows)[:, None], idx] > 0).all()
    tidx = torch.multinomial(torch.tensor(w), n, replacement=True).numpy()
    assert (w[np.arange(rows)[:, None], tidx] > 0).all()


@pytest.mark.parametrize("K", [5, 200])           # the counting and the binary-search paths
def test_multinomial_replacement_frequencies_match_torch(K):
    rng = np.random.default_rng(1)
    w = rng.random(K) ** 3
    w[::7] = 0.0
    p = w / w.sum()
    n = 200_000
    ours = np.bincount(tl.multinomial(tl.tensor(w), n, replacement=True).numpy(), minlength=K)
    theirs = np.bincount(torch.multinomial(torch.tensor(w), n, replacement=True).numpy(),
                         minlength=K)
    sd = np.sqrt(n * p * (1 - p)) + 1e-9
    assert (np.abs(ours - n * p) < 5 * sd + 1).all()
    assert (np.abs(theirs - n * p) < 5 * sd + 1).all()
    assert ours[p == 0].sum() == 0


def test_multinomial_generator_reproducible_and_batched():
    w = tl.tensor(np.random.default_rng(0).random((4, 1000)))
    a = tl.multinomial(w, 50, replacement=True, generator=tl.Generator().manual_seed(3))
    b = tl.multinomial(w, 50, replacement=True, generator=tl.Generator().manual_seed(3))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    tl.manual_seed(7)
    c = tl.multinomial(w, 50, replacement=True)
    tl.manual_seed(7)
    np.testing.assert_array_equal(c.numpy(), tl.multinomial(w, 50, replacement=True).numpy())


def test_multinomial_large_vocab_no_quadratic_memory():
    p = np.random.default_rng(0).random(1_000_000).astype(np.float32)
    out = tl.multinomial(tl.tensor(p), 4096, replacement=True)      # was a 30 GiB MemoryError
    assert out.shape == (4096,) and int(out.max()) < 1_000_000
    c = D.Categorical(probs=tl.tensor(p)).sample((4096,))
    assert c.shape == (4096,)


@pytest.mark.parametrize("w", [[0.5, -0.1], [np.nan, 1.0], [np.inf, 1.0], [0.0, 0.0]])
@pytest.mark.parametrize("replacement", [True, False])
def test_multinomial_errors_as_torch(w, replacement):
    with pytest.raises(RuntimeError):
        torch.multinomial(torch.tensor(w, dtype=torch.float64), 1, replacement=replacement)
    with pytest.raises(InputError, match="multinomial"):
        tl.multinomial(tl.tensor(w, dtype=F64), 1, replacement=replacement)


def test_multinomial_huge_finite_weights():
    out = tl.multinomial(tl.tensor([1e308, 0.0, 1e308], dtype=F64), 100, replacement=True)
    assert set(out.numpy().tolist()) <= {0, 2}


def test_multinomial_captured_redraws():
    f = tl.function(lambda p: tl.multinomial(p, 64, replacement=True))
    p = tl.tensor([0.5, 0.0, 0.5, 0.0])
    draws = [f(p).numpy() for _ in range(3)]
    assert all(set(d.tolist()) <= {0, 2} for d in draws)
    assert not np.array_equal(draws[1], draws[2])


def test_categorical_sample_batched_and_captured():
    probs = tl.tensor([[0.2, 0.0, 0.8], [0.0, 1.0, 0.0]])
    s = D.Categorical(probs=probs).sample((500,)).numpy()
    assert s.shape == (500, 2)
    assert set(s[:, 0].tolist()) <= {0, 2} and set(s[:, 1].tolist()) == {1}
    assert abs((s[:, 0] == 2).mean() - 0.8) < 0.08
    f = tl.function(lambda p: D.Categorical(probs=p).sample((100,)))
    for _ in range(2):
        s = f(probs).numpy()
        assert s.shape == (100, 2) and set(s[:, 1].tolist()) == {1}
        assert set(s[:, 0].tolist()) <= {0, 2}


# --- (b) load: mmap and the copy-free read --------------------------------------------------
def _mapped(a) -> bool:
    """Whether ``a``'s memory is a file mapping (np.memmap somewhere down its bases)."""
    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = a.obj if isinstance(a, memoryview) else getattr(a, "base", None)
    return False


def test_load_mmap_copy_on_write(tmp_path):
    w = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    path = str(tmp_path / "t.st")
    tl.save({"w": tl.tensor(w), "i": tl.tensor(np.arange(5)),
             "h": tl.tensor(w[:2, :3].astype(np.float16))}, path)
    before = open(path, "rb").read()
    m = tl.load(path, mmap=True)
    assert _mapped(m["w"].numpy()) and not _mapped(tl.load(path)["w"].numpy())
    np.testing.assert_array_equal(m["h"].numpy(), w[:2, :3].astype(np.float16))
    np.testing.assert_array_equal(m["w"].numpy(), w)
    np.testing.assert_array_equal(m["i"].numpy(), np.arange(5))
    m["w"][0, 0] = 123.0                       # private: the file is not written
    assert open(path, "rb").read() == before
    np.testing.assert_array_equal(tl.load(path)["w"].numpy(), w)
    # PyTorch's mmap=True has the same semantics (MAP_PRIVATE)
    tpath = str(tmp_path / "t.pt")
    torch.save({"w": torch.tensor(w)}, tpath)
    tb = open(tpath, "rb").read()
    tm = torch.load(tpath, mmap=True)
    tm["w"][0, 0] = 123.0
    assert open(tpath, "rb").read() == tb


def test_load_plain_is_writable_and_independent(tmp_path):
    path = str(tmp_path / "t.st")
    tl.save({"a": tl.tensor([1.0, 2.0]), "b": tl.tensor([[3, 4]])}, path)
    d = tl.load(path)
    d["a"].add_(1.0)
    np.testing.assert_array_equal(d["a"].numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(d["b"].numpy(), [[3, 4]])
    np.testing.assert_array_equal(tl.load(path)["a"].numpy(), [1.0, 2.0])
    with open(path, "rb") as f:
        np.testing.assert_array_equal(tl.load(f)["a"].numpy(), [1.0, 2.0])


def test_load_mmap_errors(tmp_path):
    path = str(tmp_path / "t.st")
    tl.save({"a": tl.tensor([1.0])}, path)
    with open(path, "rb") as f, pytest.raises(TypeError, match="mmap"):
        tl.load(f, mmap=True)
    empty = tmp_path / "e.st"
    empty.write_bytes(b"")
    with pytest.raises(tl.errors.CheckpointError if hasattr(tl.errors, "CheckpointError")
                       else Exception):
        tl.load(str(empty), mmap=True)
    bad = tmp_path / "bad.st"
    bad.write_bytes(open(path, "rb").read()[:-2])
    with pytest.raises(Exception, match="truncated"):
        tl.load(str(bad), mmap=True)


# --- (c) lgamma ---------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.sampled_from([1, 3, 7, 100, 9000]),
       lo=st.sampled_from([0.5, -3.0, 1e-3]), hi=st.sampled_from([2.5, 30.0]))
def test_lgamma_matches_torch_float64(seed, n, lo, hi):
    x = np.random.default_rng(seed).uniform(lo, hi, n)
    got = tl.lgamma(_t(x)).numpy()
    want = torch.lgamma(_tt(x)).numpy()
    near = (x >= 0.5) & (x <= 2.5)
    # near the roots PyTorch's libm is relatively exact, and so is the series
    np.testing.assert_allclose(got[near], want[near], rtol=2e-15, atol=0)
    np.testing.assert_allclose(got[~near], want[~near], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("x", [1.0, 2.0, 1 - 1e-7, 1 + 1e-12, 2 - 1e-9, 0.5, 2.5, 1.5])
def test_lgamma_near_roots_scalar_and_vector(x):
    want = torch.lgamma(torch.tensor(x, dtype=torch.float64)).item()
    for t in (tl.tensor(x, dtype=F64), tl.tensor([x] * 10, dtype=F64)):
        got = tl.lgamma(t).numpy().reshape(-1)[0]
        assert got == want or abs(got - want) <= 2e-15 * abs(want)


def test_lgamma_special_values_and_grad():
    x = [-np.inf, np.inf, np.nan, 0.0, -1.0, -2.5, 1.0, 3.0, 1e300]
    np.testing.assert_allclose(tl.lgamma(_t(x)).numpy(), torch.lgamma(_tt(x)).numpy(),
                               rtol=1e-14)
    v = np.array([0.7, 1.0, 1.3, 2.0, 2.4])
    a, ta = _t(v, True), _tt(v, True)
    g, = tl.autograd.grad(tl.lgamma(a).sum(), a)
    tg, = torch.autograd.grad(torch.lgamma(ta).sum(), ta)
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-13)
    f32 = np.random.default_rng(0).uniform(0.5, 10, 100).astype(np.float32)
    np.testing.assert_allclose(tl.lgamma(tl.tensor(f32)).numpy(),
                               torch.lgamma(torch.tensor(f32)).numpy(), rtol=2e-6, atol=1e-6)


# --- (d) cdist, histogram, logsumexp --------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), p=st.integers(26, 60), r=st.integers(1, 60),
       m=st.integers(1, 6), batch=st.sampled_from([((), ()), ((2,), (2,)), ((2,), (1,))]))
def test_cdist_euclid_values_and_grads(seed, p, r, m, batch):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=batch[0] + (p, m))
    b = rng.normal(size=batch[1] + (r, m))
    # near (not equal) points: at a distance of 0 the mm form's rounding (~1e-8 after the
    # sqrt) is the same in both libraries, but its gradient is not meaningful
    b[..., : min(3, r), :] = (a[..., : min(3, r), :] + 1e-3 if batch[0] == batch[1]
                              else b[..., :3, :])
    x1, x2, t1, t2 = _t(a, True), _t(b, True), _tt(a, True), _tt(b, True)
    d, td = tl.cdist(x1, x2), torch.cdist(t1, t2)
    np.testing.assert_allclose(d.detach().numpy(), td.detach().numpy(), atol=1e-7)
    g = rng.normal(size=td.shape)
    gs = tl.autograd.grad((d * _t(g)).sum(), [x1, x2])
    tgs = torch.autograd.grad((td * _tt(g)).sum(), [t1, t2])
    for u, v in zip(gs, tgs):
        np.testing.assert_allclose(u.numpy(), v.numpy(), atol=1e-6)


def test_cdist_euclid_double_backward_and_modes():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 3)), rng.normal(size=(28, 3))
    x, t = _t(a, True), _tt(a, True)
    g, = tl.autograd.grad(tl.cdist(x, _t(b)).sum(), x, create_graph=True)
    h, = tl.autograd.grad((g * g).sum(), x)
    tg, = torch.autograd.grad(torch.cdist(t, _tt(b)).sum(), t, create_graph=True)
    th, = torch.autograd.grad((tg * tg).sum(), t)
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-9, atol=1e-9)
    small = tl.cdist(_t(a[:5]), _t(b[:4]), compute_mode="use_mm_for_euclid_dist")
    np.testing.assert_allclose(small.numpy(), torch.cdist(_tt(a[:5]), _tt(b[:4])).numpy(),
                               atol=1e-12)
    assert tl.autograd.gradcheck(lambda u, v: tl.cdist(u, v),
                                 (_t(a[:27], True), _t(b, True)))


def test_cdist_euclid_captured_and_onnx(tmp_path):
    a = np.random.default_rng(0).normal(size=(40, 3))
    f = tl.function(lambda u, v: tl.cdist(u, v))
    np.testing.assert_allclose(f(_t(a), _t(a[:30])).numpy(),
                               torch.cdist(_tt(a), _tt(a[:30])).numpy(), atol=1e-7)
    x = _t(a[:30], True)
    g, = tl.autograd.grad(tl.cdist(x, _t(a[:30])).sum(), x)      # zero distances: finite
    assert np.isfinite(g.numpy()).all()
    ort = pytest.importorskip("onnxruntime")

    class M(tl.nn.Module):
        def forward(self, u, v):
            return tl.cdist(u, v)
    x1 = tl.tensor(a.astype(np.float32))
    x2 = tl.tensor(a[:30].astype(np.float32))
    path = str(tmp_path / "c.onnx")
    tl.onnx.export(M(), (x1, x2), path)
    sess = ort.InferenceSession(path)
    feeds = {i.name: v for i, v in zip(sess.get_inputs(), (x1.numpy(), x2.numpy()))}
    exact = np.sqrt(((a[:, None, :] - a[None, :30, :]) ** 2).sum(-1))
    # the ONNX form takes differences (0 exactly at equal points, where float32's mm form
    # is off by ~1e-3 in both libraries)
    np.testing.assert_allclose(sess.run(None, feeds)[0], exact, atol=1e-5)
    np.testing.assert_allclose(M()(x1, x2).numpy(), exact, atol=2e-3)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), nb=st.integers(1, 30),
       dt=st.sampled_from([np.float32, np.float64]), weighted=st.booleans(),
       given_range=st.booleans())
def test_histogram_equal_width_matches_torch(seed, nb, dt, weighted, given_range):
    rng = np.random.default_rng(seed)
    lo, hi = sorted(rng.normal(size=2) * 3)
    tdt = torch.float32 if dt == np.float32 else torch.float64
    edges = torch.linspace(lo, hi, nb + 1, dtype=tdt).numpy()
    x = np.concatenate([rng.normal(size=int(rng.integers(0, 300))) * 3, edges,
                        [lo, hi]]).astype(dt)
    kw = {"range": (float(lo), float(hi))} if given_range else {}
    if given_range:
        x = np.concatenate([x, np.array([np.nan, np.inf, -np.inf], dt)])
    w = rng.random(x.size).astype(dt) if weighted else None
    ours = tl.histogram(tl.tensor(x), bins=nb, weight=None if w is None else tl.tensor(w), **kw)
    theirs = torch.histogram(torch.tensor(x), bins=nb,
                             weight=None if w is None else torch.tensor(w), **kw)
    np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())
    if weighted:
        np.testing.assert_allclose(ours[0].numpy(), theirs[0].numpy(), rtol=1e-5)
    else:
        np.testing.assert_array_equal(ours[0].numpy(), theirs[0].numpy())


def test_histogramdd_and_density_match_torch():
    x = np.random.default_rng(0).normal(size=(500, 2))
    for kw in ({"bins": [3, 4]}, {"bins": [5, 2], "density": True}):
        a = tl.histogramdd(tl.tensor(x), **kw)
        b = torch.histogramdd(torch.tensor(x), **kw)
        np.testing.assert_allclose(a[0].numpy(), b[0].numpy(), rtol=1e-12)
    a = tl.histogram(_t(x[:, 0]), bins=7, density=True)
    b = torch.histogram(_tt(x[:, 0]), bins=7, density=True)
    np.testing.assert_allclose(a[0].numpy(), b[0].numpy(), rtol=1e-12)


@pytest.mark.parametrize("shape,dim", [((300, 10), 1), ((30, 10, 7), -1), ((300, 10), 0),
                                       ((64, 33), 1)])
def test_logsumexp_short_rows_values_and_grads(shape, dim):
    x = np.random.default_rng(0).normal(size=shape) * 5
    flat = x.reshape(-1, shape[-1])
    flat[1] = -np.inf
    flat[2, 3] = np.inf
    flat[3, :4] = -np.inf
    a, t = _t(x, True), _tt(x, True)
    out, tout = tl.logsumexp(a, dim), torch.logsumexp(t, dim)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-13)
    y = np.random.default_rng(1).normal(size=shape)
    y.reshape(-1, shape[-1])[1:3] = 1.0
    y2 = np.where(np.isfinite(x), np.random.default_rng(1).normal(size=shape), 0.0)
    a2, t2 = _t(y2, True), _tt(y2, True)
    g, = tl.autograd.grad(tl.logsumexp(a2, dim).sum(), a2)
    tg, = torch.autograd.grad(torch.logsumexp(t2, dim).sum(), t2)
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12, atol=1e-15)
    nan = x.copy()
    nan.reshape(-1, shape[-1])[5, 1] = np.nan
    np.testing.assert_array_equal(np.isnan(tl.logsumexp(_t(nan), dim).numpy()),
                                  np.isnan(torch.logsumexp(_tt(nan), dim).numpy()))


# --- (e) median, LBFGS, binomial, ExponentialFamily, Wishart KL ------------------------------
@settings(max_examples=40, deadline=None)
@given(vals=st.lists(st.integers(-2**62, 2**62), min_size=1, max_size=12),
       dt=st.sampled_from([np.int64, np.int32, np.int16, np.uint8]))
def test_median_integer_no_dim_matches_torch(vals, dt):
    a = np.array(vals, dtype=np.int64)
    info = np.iinfo(dt)
    a = np.clip(a, info.min, info.max).astype(dt)
    got, want = tl.tensor(a).median(), torch.tensor(a).median()
    assert got.dtype == a.dtype
    assert int(got.item()) == int(want.item())
    assert tl.median(tl.tensor(a.reshape(1, -1)), keepdims=True).shape == (1, 1)


def test_median_float_keeps_numpy_average():
    assert tl.tensor([1.0, 2.0, 3.0, 4.0]).median().item() == 2.5


def test_lbfgs_mixed_dtypes_matches_torch():
    for ls in (None, "strong_wolfe"):
        a = tl.tensor([0.5, -1.0], requires_grad=True)
        b = tl.tensor([2.0, 0.3, 1.0], dtype=F64, requires_grad=True)
        ta = torch.tensor([0.5, -1.0], requires_grad=True)
        tb = torch.tensor([2.0, 0.3, 1.0], dtype=torch.float64, requires_grad=True)
        opt = tl.optim.LBFGS([a, b], lr=0.5, max_iter=5, line_search_fn=ls)
        topt = torch.optim.LBFGS([ta, tb], lr=0.5, max_iter=5, line_search_fn=ls)

        def closure():
            opt.zero_grad()
            loss = ((a - 3) ** 2).sum() + 2 * ((b - 1) ** 2).sum() + a.sum() * b.sum()
            loss.backward()
            return loss

        def tclosure():
            topt.zero_grad()
            loss = ((ta - 3) ** 2).sum() + 2 * ((tb - 1) ** 2).sum() + ta.sum() * tb.sum()
            loss.backward()
            return loss
        opt.step(closure)
        topt.step(tclosure)
        assert a.dtype == np.float32 and b.dtype == np.float64
        np.testing.assert_allclose(a.detach().numpy(), ta.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(b.detach().numpy(), tb.detach().numpy(), rtol=1e-6)
        assert opt.state[a]["d"].dtype == np.float64
        opt.load_state_dict(opt.state_dict())
        opt.step(closure)


def test_lbfgs_still_refuses_two_devices_message():
    a = tl.tensor([1.0], requires_grad=True)
    opt = tl.optim.LBFGS([a, tl.tensor([1.0], dtype=F64, requires_grad=True)])
    assert len(opt.param_groups[0]["params"]) == 2


def test_binomial_values_and_errors():
    n = tl.full((20000,), 10.0, dtype=F64)
    p = tl.full((20000,), 0.3, dtype=F64)
    s = binomial(n, p, generator=tl.Generator().manual_seed(0))
    t = torch.binomial(torch.full((20000,), 10.0, dtype=torch.float64),
                       torch.full((20000,), 0.3, dtype=torch.float64))
    assert s.dtype == np.float64 and s.shape == (20000,) and not s.requires_grad
    assert abs(float(s.mean()) - 3.0) < 0.05 and abs(float(t.mean()) - 3.0) < 0.05
    assert abs(float(s.var()) - 2.1) < 0.1
    s2 = binomial(n, p, generator=tl.Generator().manual_seed(0))
    np.testing.assert_array_equal(s.numpy(), s2.numpy())
    edge = binomial(tl.tensor([5.0, 5.0, 0.0]), tl.tensor([0.0, 1.0, 0.5]))
    np.testing.assert_array_equal(edge.numpy(), [0.0, 5.0, 0.0])
    np.testing.assert_array_equal(
        torch.binomial(torch.tensor([5.0, 5.0, 0.0]), torch.tensor([0.0, 1.0, 0.5])).numpy(),
        [0.0, 5.0, 0.0])
    assert binomial(tl.ones(2, 1) * 4, tl.tensor([0.0, 1.0])).shape == (2, 2)
    with pytest.raises(TypeError, match="binomial"):
        binomial(tl.tensor([10, 5]), tl.tensor([0.5, 0.5]))
    with pytest.raises(ValueError):
        torch.binomial(torch.tensor([10, 5]), torch.tensor([0.5, 0.5]))
    with pytest.raises(TypeError, match="one dtype"):
        binomial(tl.tensor([1.0], dtype=F64), tl.tensor([0.5]))
    with pytest.raises(ValueError, match="prob"):
        binomial(tl.tensor([1.0]), tl.tensor([1.5]))
    with pytest.raises(ValueError, match="count"):
        binomial(tl.tensor([-1.0]), tl.tensor([0.5]))


def _families():
    return [
        (lambda m, g: m.Normal(g([0.3, -1.0]), g([1.7, 0.5])),
         lambda m, g: m.Normal(g([0.1, 2.0]), g([1.2, 0.9]))),
        (lambda m, g: m.Gamma(g([2.5, 0.7]), g([1.3, 2.0])),
         lambda m, g: m.Gamma(g([1.5, 3.0]), g([2.3, 0.4]))),
        (lambda m, g: m.Exponential(g([2.0, 0.3])), lambda m, g: m.Exponential(g([3.0, 1.1]))),
        (lambda m, g: m.Bernoulli(g([0.3, 0.9])), lambda m, g: m.Bernoulli(g([0.6, 0.2]))),
        (lambda m, g: m.Beta(g([2.5]), g([1.3])), lambda m, g: m.Beta(g([1.5]), g([2.3]))),
        (lambda m, g: m.Dirichlet(g([2.5, 1.0, 3.0])),
         lambda m, g: m.Dirichlet(g([1.5, 2.0, 0.5]))),
        (lambda m, g: m.Poisson(g([2.5])), lambda m, g: m.Poisson(g([1.5]))),
    ]


@pytest.mark.parametrize("i", range(7))
def test_expfamily_bregman_kl_matches_torch(i):
    mk_p, mk_q = _families()[i]
    qp, tqp = [], []

    def leaf(v):
        qp.append(_t(v, True))
        return qp[-1]

    def tleaf(v):
        tqp.append(_tt(v, True))
        return tqp[-1]
    p, q = mk_p(D, lambda v: _t(v)), mk_q(D, leaf)
    tp, tq = mk_p(TD, lambda v: _tt(v)), mk_q(TD, tleaf)
    assert isinstance(p, D.ExponentialFamily) and isinstance(tp, TD.ExponentialFamily)
    from torch.distributions.kl import _kl_expfamily_expfamily
    ours = D.exp_family.kl_expfamily(p, q)
    theirs = _kl_expfamily_expfamily(tp, tq)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.detach().numpy(), D.kl_divergence(p, q).detach().numpy(),
                               rtol=1e-10)
    gs = tl.autograd.grad(ours.sum(), qp)
    tgs = torch.autograd.grad(theirs.sum(), tqp)
    for u, v in zip(gs, tgs):
        np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-10)


@pytest.mark.parametrize("i", [0, 1, 2, 3])
def test_expfamily_entropy_matches_closed_form_and_torch(i):
    mk_p, _ = _families()[i]
    p, tp = mk_p(D, lambda v: _t(v)), mk_p(TD, lambda v: _tt(v))
    ours = D.ExponentialFamily.entropy(p)
    np.testing.assert_allclose(ours.numpy(), p.entropy().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.numpy(), TD.ExponentialFamily.entropy(tp).detach().numpy(),
                               rtol=1e-12)
    assert not ours.requires_grad


def test_expfamily_user_subclass_and_cross_family():
    class MyExp(D.ExponentialFamily):
        arg_constraints: dict = {}

        def __init__(self, rate):
            self.rate = rate
            super().__init__(tuple(rate.shape))

        @property
        def _natural_params(self):
            return (-self.rate,)

        _mean_carrier_measure = 0

        def _log_normalizer(self, x):
            return -(-x).log()
    r = _t([2.0, 0.5], True)
    e = MyExp(r).entropy()
    np.testing.assert_allclose(e.detach().numpy(), 1 - np.log([2.0, 0.5]), rtol=1e-12)
    g, = tl.autograd.grad(e.sum(), r)
    np.testing.assert_allclose(g.numpy(), -1 / np.array([2.0, 0.5]), rtol=1e-12)
    kl = D.kl_divergence(MyExp(_t([2.0])), MyExp(_t([3.0])))
    want = TD.kl_divergence(TD.Exponential(_tt([2.0])), TD.Exponential(_tt([3.0])))
    np.testing.assert_allclose(kl.numpy(), want.numpy(), rtol=1e-12)
    with pytest.raises(NotImplementedError, match="no rule for Beta and Dirichlet"):
        D.kl_divergence(D.Beta(_t([2.0]), _t([2.0])), D.Dirichlet(_t([[1.0, 2.0]])))

    class Bare(D.ExponentialFamily):
        arg_constraints: dict = {}
    with pytest.raises(NotImplementedError, match="ExponentialFamily subclass must define"):
        Bare(()).entropy()
    with pytest.raises(NotImplementedError, match="_natural_params"):
        D.kl_divergence(Bare(()), Bare(()))


def _wishart(m, g, df, scale, batch=False):
    return m.Wishart(g(df), covariance_matrix=g(scale))


@pytest.mark.parametrize("case", range(3))
def test_wishart_kl_matches_torch(case):
    rng = np.random.default_rng(case)
    d = [2, 3, 3][case]
    batch = [(), (), (2,)][case]

    def spd():
        a = rng.normal(size=batch + (d, d))
        return a @ np.swapaxes(a, -1, -2) + d * np.eye(d)
    dfp, dfq = rng.uniform(d + 1, d + 6, batch), rng.uniform(d + 1, d + 6, batch)
    sp, sq = spd(), spd()
    P = [_t(dfp, True), _t(sp, True)]
    Q = [_t(dfq, True), _t(sq, True)]
    TQ = [_tt(dfq, True), _tt(sq, True)]
    ours = D.kl_divergence(D.Wishart(P[0], covariance_matrix=P[1]),
                           D.Wishart(Q[0], covariance_matrix=Q[1]))
    if not batch:
        theirs = TD.kl_divergence(TD.Wishart(_tt(dfp), covariance_matrix=_tt(sp)),
                                  TD.Wishart(TQ[0], covariance_matrix=TQ[1]))
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10)
        # q's gradients against PyTorch's (its Bregman rule detaches p); p's against the
        # Bregman form, which keeps them here
        gq = tl.autograd.grad(ours.sum(), Q, retain_graph=True)
        tgq = torch.autograd.grad(theirs.sum(), TQ)
        for u, v in zip(gq, tgq):
            np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-8, atol=1e-10)
    else:
        # PyTorch's batched Wishart KL sums its df term over the batch (negative KLs):
        # compared one batch element at a time
        for i in range(batch[0]):
            one = TD.kl_divergence(TD.Wishart(_tt(dfp[i]), covariance_matrix=_tt(sp[i])),
                                   TD.Wishart(_tt(dfq[i]), covariance_matrix=_tt(sq[i])))
            np.testing.assert_allclose(float(ours[i]), one.item(), rtol=1e-10)
    gp = tl.autograd.grad(ours.sum(), P)
    breg = D.exp_family.kl_expfamily(D.Wishart(P[0], covariance_matrix=P[1]),
                                     D.Wishart(Q[0], covariance_matrix=Q[1]))
    np.testing.assert_allclose(breg.detach().numpy(), ours.detach().numpy(), rtol=1e-10)
    bp = tl.autograd.grad(breg.sum(), P)
    for u, v in zip(gp, bp):
        np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=1e-8, atol=1e-10)


def test_wishart_kl_self_is_zero():
    w = D.Wishart(_t(5.0), covariance_matrix=_t(np.eye(3) * 2))
    assert abs(float(D.kl_divergence(w, w))) < 1e-12
    assert math.isfinite(float(w.entropy()))
    assert os.environ.get("OMP_NUM_THREADS", "1")
