"""NLP trial 18 (nlp2) fixes: scatter with a tensor src under capture, arange with traced
bounds (KV-cache positions), SDPA with attn_mask and is_causal, ONNX import of Neg/Abs of
run-time sizes, GradScaler's capture error, no warnings from captured multinomial."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.graph.tracer import CaptureError

torch = pytest.importorskip("torch")

SET = settings(max_examples=20, deadline=None)


# --- 1. scatter(dim, index, tensor src) under tl.function --------------------------------------
def _perm_index(rng, shape, d, n):
    """An index of ``shape`` whose entries along ``d`` are distinct values in [0, n)."""
    idx = np.empty(shape, np.int64)
    for pos in np.ndindex(*(s for i, s in enumerate(shape) if i != d)):
        sl = list(pos)
        sl.insert(d, slice(None))
        idx[tuple(sl)] = rng.permutation(n)[:shape[d]]
    return idx


@SET
@given(st.integers(1, 3), st.integers(0, 2), st.integers(0, 10 ** 6), st.booleans())
def test_scatter_tensor_src_captured_matches_torch(ndim, dim, seed, small):
    d = dim % ndim
    rng = np.random.default_rng(seed)
    xshape = tuple(int(s) for s in rng.integers(2, 5, ndim))
    ishape = tuple(max(1, s - 1) if small else s for s in xshape)
    x, src = rng.normal(size=xshape), rng.normal(size=ishape)
    fn = tl.function(lambda x, i, s: x.scatter(d, i, s))
    for _ in range(2):                     # new index values: no retrace, values follow
        idx = _perm_index(rng, ishape, d, xshape[d])
        want = torch.tensor(x).scatter(d, torch.tensor(idx), torch.tensor(src)).numpy()
        got = fn(tl.tensor(x), tl.tensor(idx), tl.tensor(src)).numpy()
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(tl.tensor(x).scatter(d, tl.tensor(idx),
                                                           tl.tensor(src)).numpy(), want)
    assert fn.trace_count == 1


@SET
@given(st.integers(0, 10 ** 6))
def test_scatter_tensor_src_captured_gradients_match_torch(seed):
    rng = np.random.default_rng(seed)
    x, src, w = rng.normal(size=(3, 6)), rng.normal(size=(3, 4)), rng.normal(size=(3, 6))
    idx = _perm_index(rng, (3, 4), 1, 6)

    def loss(x, i, s):
        return (x.scatter(1, i, s) ** 2 * tl.tensor(w)).sum()

    step = tl.function(lambda x, i, s: tl.grad(loss(x, i, s), [x, s]))
    xt, st_ = (torch.tensor(a, requires_grad=True) for a in (x, src))
    (xt.scatter(1, torch.tensor(idx), st_) ** 2 * torch.tensor(w)).sum().backward()
    gx, gs = step(tl.tensor(x, requires_grad=True), tl.tensor(idx),
                  tl.tensor(src, requires_grad=True))
    np.testing.assert_allclose(gx.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gs.numpy(), st_.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_scatter_captured_duplicates_last_write_wins_as_eager():
    x, src = np.zeros((2, 4)), np.arange(1.0, 7.0).reshape(2, 3)
    idx = np.array([[1, 1, 3], [0, 2, 0]])
    fn = tl.function(lambda x, i, s: x.scatter(1, i, s))
    eager = tl.tensor(x).scatter(1, tl.tensor(idx), tl.tensor(src)).numpy()
    np.testing.assert_array_equal(fn(tl.tensor(x), tl.tensor(idx), tl.tensor(src)).numpy(),
                                  eager)
    np.testing.assert_array_equal(eager, [[0, 2, 0, 3], [6, 0, 5, 0]])


def test_top_p_filter_captured_matches_torch():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 30)).astype(np.float32)

    def top_p(lo, lib, p=0.8):
        sorted_lo, sorted_idx = lib.sort(lo, descending=True, dim=-1)
        cum = lib.cumsum(lib.softmax(sorted_lo, dim=-1), dim=-1)
        remove = cum > p
        remove[..., 1:] = remove[..., :-1].clone()
        remove[..., 0] = False
        remove = remove.scatter(1, sorted_idx, remove)
        return lo.masked_fill(remove, float("-inf"))

    want = top_p(torch.tensor(logits), torch).numpy()
    fn = tl.function(lambda lo: top_p(lo, tl))
    np.testing.assert_array_equal(fn(tl.tensor(logits)).numpy(), want)
    assert fn.trace_count == 1


def test_scatter_captured_saves_and_exports(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    spec = [tl.TensorSpec((None, 5), "float32"), tl.TensorSpec((None, 5), "int64")]
    fn = tl.function(lambda s, i: tl.zeros_like(s).scatter(1, i, s * 2), input_signature=spec)
    rng = np.random.default_rng(0)
    src = rng.random((3, 5)).astype(np.float32)
    idx = np.argsort(-src, 1)
    want = torch.zeros(3, 5).scatter(1, torch.tensor(idx), torch.tensor(src) * 2).numpy()
    np.testing.assert_array_equal(fn(tl.tensor(src), tl.tensor(idx)).numpy(), want)
    tl.save_graph(fn, tmp_path / "sc.tlg")
    g = tl.load_graph(tmp_path / "sc.tlg")
    np.testing.assert_array_equal(g(tl.tensor(src[:2]), tl.tensor(idx[:2])).numpy(), want[:2])

    class M(tl.nn.Module):
        def forward(self, s, i):
            return tl.zeros_like(s).scatter(1, i, s * 2)

    path = str(tmp_path / "sc.onnx")
    tl.onnx.export(M(), (tl.tensor(src), tl.tensor(idx)), path, opset=18,
                   dynamic_axes={0: [0], 1: [0]})
    sess = ort.InferenceSession(path)
    names = [i.name for i in sess.get_inputs()]
    np.testing.assert_array_equal(sess.run(None, dict(zip(names, (src[:2], idx[:2]))))[0],
                                  want[:2])


def test_scatter_errors_still_raised_under_capture():
    fn = tl.function(lambda x, i, s: x.scatter(1, i, s))
    with pytest.raises(ValueError, match="scatter"):
        fn(tl.zeros(2, 3), tl.tensor([[0], [1], [2]]), tl.ones(3, 1))
    with pytest.raises(IndexError):
        fn(tl.zeros(2, 3), tl.tensor([[0, 5]]), tl.ones(1, 2))
    with pytest.raises(TypeError, match="scatter"):
        fn(tl.zeros(2, 3), tl.tensor([[0.0, 1.0]]), tl.ones(1, 2))


# --- 2. arange with bounds read from None dims ---------------------------------------------------
def test_arange_traced_start_end_one_graph():
    spec = tl.TensorSpec((1, None), "float32")

    @tl.function(input_signature=[spec, tl.TensorSpec((1, None), "float32")])
    def f(past, x):
        off, n = past.shape[1], x.shape[1]
        return (tl.arange(off, off + n), tl.arange(off, 2 * off + 1, 2),
                tl.arange(2, off + 2), tl.arange(off + 4, 1, -3, dtype=tl.float32))

    for p in range(0, 7):
        for n in (1, 3):
            got = f(tl.zeros(1, p), tl.zeros(1, n))
            want = (torch.arange(p, p + n), torch.arange(p, 2 * p + 1, 2),
                    torch.arange(2, p + 2), torch.arange(p + 4, 1, -3, dtype=torch.float32))
            for a, b in zip(got, want):
                assert a.numpy().dtype == b.numpy().dtype
                np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert f.trace_count == 1


def test_arange_offset_as_0d_tensor_one_graph():
    @tl.function(input_signature=[tl.TensorSpec((), "int64"), tl.TensorSpec((1, None), "int64")])
    def pos(off, x):
        return tl.arange(x.shape[1]) + off

    for off in range(5):
        for n in (1, 4):
            np.testing.assert_array_equal(pos(tl.tensor(off), tl.zeros(1, n, dtype=tl.int64))
                                          .numpy(), np.arange(off, off + n))
    assert pos.trace_count == 1


def test_arange_traced_exports_and_saves(tmp_path):
    ort = pytest.importorskip("onnxruntime")

    class P(tl.nn.Module):
        def forward(self, past, x):
            off = past.shape[1]
            return tl.arange(off, off + x.shape[1]) + x

    path = str(tmp_path / "pos.onnx")
    tl.onnx.export(P(), (tl.zeros(1, 4), tl.zeros(1, 3, dtype=tl.int64)), path,
                   dynamic_axes={0: [1], 1: [1]})
    sess = ort.InferenceSession(path)
    names = [i.name for i in sess.get_inputs()]
    for p, n in ((7, 2), (0, 1), (3, 5)):
        out = sess.run(None, dict(zip(names, (np.zeros((1, p), np.float32),
                                              np.ones((1, n), np.int64)))))[0]
        np.testing.assert_array_equal(out, np.arange(p, p + n)[None] + 1)
    spec = [tl.TensorSpec((1, None), "float32"), tl.TensorSpec((1, None), "int64")]
    fn = tl.function(lambda past, x: tl.arange(past.shape[1], past.shape[1] + x.shape[1]) + x,
                     input_signature=spec)
    fn(tl.zeros(1, 4), tl.zeros(1, 3, dtype=tl.int64))
    tl.save_graph(fn, tmp_path / "pos.tlg")
    g = tl.load_graph(tmp_path / "pos.tlg")
    np.testing.assert_array_equal(g(tl.zeros(1, 6), tl.zeros(1, 2, dtype=tl.int64)).numpy(),
                                  [[6, 7]])


def test_arange_traced_errors():
    spec = tl.TensorSpec((None,), "float32")
    with pytest.raises(CaptureError, match=r"arange.*tl\.arange\(n\) \* step \+ start"):
        tl.function(lambda x: tl.arange(x.shape[0], x.shape[0] + 2, 0.5),
                    input_signature=[spec])(tl.zeros(3))
    with pytest.raises(CaptureError, match="arange"):
        tl.function(lambda x: tl.arange(0, 8, x.shape[0]), input_signature=[spec])(tl.zeros(3))
    with pytest.raises(tl.errors.InputError, match="step sign"):
        tl.function(lambda x: tl.arange(x.shape[0] + 2, x.shape[0]),
                    input_signature=[spec])(tl.zeros(3))


# --- 3. SDPA with attn_mask and is_causal ------------------------------------------------------
@SET
@given(st.sampled_from([(4, 6), (6, 4), (5, 5), (1, 3)]), st.sampled_from(["bool", "float"]),
       st.sampled_from([(4, 6), (2, 1, 1, 6), (2, 2, 4, 6)]), st.integers(0, 10 ** 6),
       st.booleans())
def test_sdpa_mask_and_causal_matches_torch(ls, kind, mshape, seed, gqa):
    L, S = ls
    mshape = mshape[:-2] + (L, S) if len(mshape) != 4 or mshape[2] != 1 else \
        mshape[:-1] + (S,)
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(2, 2, L, 8))
    k, v = rng.normal(size=(2, 1 if gqa else 2, S, 8)), rng.normal(size=(2, 1 if gqa else 2, S, 8))
    keep = rng.random(mshape) > 0.4
    m = keep if kind == "bool" else np.where(keep, rng.normal(size=mshape), -np.inf)
    w = rng.normal(size=(2, 2, L, 8))
    tt = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = torch.nn.functional.scaled_dot_product_attention(*tt, torch.tensor(m), is_causal=True,
                                                           enable_gqa=gqa)
    (out * torch.tensor(w)).sum().backward()
    ll = [tl.tensor(a, requires_grad=True) for a in (q, k, v)]
    got = F.scaled_dot_product_attention(*ll, tl.tensor(m), is_causal=True, enable_gqa=gqa)
    (got * tl.tensor(w)).sum().backward()
    np.testing.assert_allclose(got.numpy(), out.detach().numpy(), atol=1e-12)
    for a, b in zip(ll, tt):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-12)


def test_sdpa_mask_and_causal_is_combined_mask_under_capture():
    rng = np.random.default_rng(1)
    q, k, v = (rng.normal(size=(1, 2, 5, 4)).astype(np.float32) for _ in range(3))
    m = rng.random((5, 5)) > 0.3
    both = tl.function(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m,
                                                                         is_causal=True))
    combined = m & np.tril(np.ones((5, 5), bool))
    want = F.scaled_dot_product_attention(*(tl.tensor(a) for a in (q, k, v)),
                                          tl.tensor(combined))
    np.testing.assert_allclose(both(*(tl.tensor(a) for a in (q, k, v)), tl.tensor(m)).numpy(),
                               want.numpy(), atol=1e-6)


def test_sdpa_mask_and_causal_errors():
    q = tl.randn(1, 1, 3, 4)
    with pytest.raises(TypeError, match="scaled_dot_product_attention: attn_mask"):
        F.scaled_dot_product_attention(q, q, q, tl.ones(3, 3, dtype=tl.int64), is_causal=True)
    with pytest.raises(Exception, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(q, q, q, tl.ones(2, 3, dtype=tl.bool), is_causal=True)


# --- 4. ONNX import of Neg / Abs of a run-time size ----------------------------------------------
@pytest.mark.parametrize("form", ["neg", "abs"])
def test_onnx_import_neg_abs_of_runtime_size(tmp_path, form):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")

    class M(torch.nn.Module):
        def forward(self, x):
            n = x.shape[1]
            if form == "neg":
                return torch.arange(n + 2)[-n:] + x
            return x.reshape(-1, abs(-n))

    path = str(tmp_path / f"{form}.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(M(), (torch.zeros(1, 5, dtype=torch.int64),), path,
                          input_names=["x"], dynamic_axes={"x": {0: "b", 1: "t"}},
                          opset_version=17, dynamo=False)
    sess = ort.InferenceSession(path)
    m = tl.onnx.load(path)
    for shape in ((1, 3), (2, 5), (3, 1)):
        x = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
        np.testing.assert_array_equal(np.asarray(m(tl.tensor(x))), sess.run(None, {"x": x})[0])


def test_onnx_import_shape_neg_abs_rules():
    from tensorlib.onnx.import_shapes import SYM_IMPORTERS, SymShape
    v = type("V", (), {"shape": (None, 4)})()
    s = SymShape([("dim", v, 0), 3])
    (neg,) = SYM_IMPORTERS["Neg"](None, None, [s], {})
    assert neg.items == [("mul", ("dim", v, 0), -1), -3]
    (ab,) = SYM_IMPORTERS["Abs"](None, None, [neg], {})
    assert ab.items == [("dim", v, 0), 3]
    with pytest.raises(NotImplementedError, match="Abs"):
        SYM_IMPORTERS["Abs"](None, None, [SymShape([("sub", ("dim", v, 0), 5)])], {})


# --- 5. GradScaler under capture ------------------------------------------------------------------
def test_grad_scaler_under_capture_error_names_what_works():
    model = tl.nn.Linear(3, 1)
    scaler = tl.amp.GradScaler("cpu")
    step = tl.function(lambda x: scaler.scale(model(x).sum()))
    with pytest.raises(CaptureError, match=r"GradScaler\.scale.*fixed loss scale.*div_"):
        step(tl.randn(2, 3))
    with pytest.raises(RuntimeError, match="scaler outside capture"):
        step(tl.randn(2, 3))


def test_fixed_loss_scale_recipe_captured_matches_eager_and_torch():
    rng = np.random.default_rng(0)
    w0, b0 = rng.normal(size=(2, 4)).astype(np.float32), rng.normal(size=2).astype(np.float32)
    xs = [rng.normal(size=(5, 4)).astype(np.float32) for _ in range(5)]
    ys = [rng.integers(0, 2, 5) for _ in range(5)]

    def make():
        m = tl.nn.Linear(4, 2)
        m.load_state_dict({"weight": tl.tensor(w0), "bias": tl.tensor(b0)})
        return m, tl.optim.SGD(m.parameters(), lr=0.1)

    def step(model, opt, x, y):
        with tl.autocast("cpu", dtype=tl.float16):
            loss = F.cross_entropy(model(x), y)
        (loss * 1024.0).backward()
        for p in model.parameters():
            p.grad.div_(1024.0)
        opt.step()
        opt.zero_grad()
        return loss

    mc, oc = make()
    me, oe = make()
    captured = tl.function(lambda x, y: step(mc, oc, x, y))
    tm = torch.nn.Linear(4, 2)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(w0))
        tm.bias.copy_(torch.tensor(b0))
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    traces = []
    for x, y in zip(xs, ys):
        lc = captured(tl.tensor(x), tl.tensor(y)).item()
        le = step(me, oe, tl.tensor(x), tl.tensor(y)).item()
        with torch.autocast("cpu", dtype=torch.float16):
            lt = torch.nn.functional.cross_entropy(tm(torch.tensor(x)), torch.tensor(y))
        (lt * 1024.0).backward()
        for p in tm.parameters():
            p.grad.div_(1024.0)
        topt.step()
        topt.zero_grad()
        assert lc == pytest.approx(le, abs=1e-6)
        assert lc == pytest.approx(lt.item(), abs=2e-3)
        traces.append(captured.trace_count)
    assert traces[1:] == [traces[1]] * 4     # (a retrace once the .grad buffers exist)
    np.testing.assert_allclose(mc.weight.numpy(), me.weight.numpy(), atol=1e-6)


# --- 6. captured multinomial with zero probabilities -------------------------------------------
@pytest.mark.parametrize("replacement", [False, True])
def test_captured_multinomial_zero_probs_no_warnings_same_draws(replacement):
    lo = tl.tensor(np.random.default_rng(0).normal(size=(2, 30)).astype(np.float32))

    def draw(lo):
        return tl.multinomial(F.softmax(lo.masked_fill(lo < 0.5, float("-inf")), dim=-1), 3,
                              replacement=replacement)

    f = tl.function(draw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.manual_seed(0)
        got = [f(lo).numpy() for _ in range(5)]
        tl.manual_seed(0)
        want = [draw(lo).numpy() for _ in range(5)]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
        assert (lo.numpy()[np.arange(2)[:, None], a] >= 0.5).all()   # zero-weight: never drawn
    assert f.trace_count == 1
