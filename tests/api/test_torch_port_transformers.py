"""Fixes from porting nanoGPT-style code from PyTorch: attention with fully masked rows,
PyTorch's order for ints mixed with index arrays, gather's range check, Categorical with -inf
logits, bfloat16 and torch-interop messages, and the small PyTorch APIs a porter expects.
Each is compared with PyTorch 2.13 where it has the same API."""
import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn

F = nn.functional
R = np.random.default_rng(0)


def _torch():
    return pytest.importorskip("torch", reason="PyTorch not installed (pip install "
                                               "torch==2.13.0)")


def f32(*shape):
    return R.standard_normal(shape).astype(np.float32)


def f64(*shape):
    return R.standard_normal(shape)


# --- A2: attention over a query row whose mask hides every key ------------------------------
def _left_pad_mask(L):
    m = np.tril(np.ones((L, L), bool))
    m[:, 0] = False                 # key 0 is padding: query 0 sees nothing
    return m


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_sdpa_fully_masked_row_is_zero_with_finite_gradients(kind):
    torch = _torch()
    q, k, v = f64(2, 1, 4, 8), f64(2, 1, 4, 8), f64(2, 1, 4, 6)
    m = _left_pad_mask(4)
    mask = m if kind == "bool" else np.where(m, 0.0, -np.inf)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    lq, lk, lv = (tl.tensor(a, requires_grad=True) for a in (q, k, v))
    to = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv,
                                                          attn_mask=torch.tensor(mask))
    lo = F.scaled_dot_product_attention(lq, lk, lv, attn_mask=tl.tensor(mask))
    np.testing.assert_allclose(lo.detach().numpy(), to.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    assert not lo[:, :, 0].detach().numpy().any()
    w = f64(2, 1, 4, 6)
    w[:, :, 0] = 0.0                 # the loss reads the real rows only, as t30_leftpad's
    (to * torch.tensor(w)).sum().backward()
    (lo * tl.tensor(w)).sum().backward()
    for a, b in ((lq, tq), (lk, tk), (lv, tv)):
        assert np.isfinite(a.grad.numpy()).all()
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_mha_without_weights_fully_masked_row_matches_torch():
    torch = _torch()
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        tm.out_proj.bias.normal_()
    lm = nn.MultiheadAttention(8, 2, batch_first=True)
    lm.load_state_dict(tm.state_dict())
    x = f32(1, 4, 8)
    am = ~_left_pad_mask(4)          # True = not allowed
    want = tm(*(torch.tensor(x),) * 3, attn_mask=torch.tensor(am), need_weights=False)[0]
    got = lm(*(tl.tensor(x),) * 3, attn_mask=tl.tensor(am), need_weights=False)[0]
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_sdpa_fully_masked_row_captured_and_in_onnx(tmp_path):
    q, k, v = f32(1, 2, 4, 8), f32(1, 2, 4, 8), f32(1, 2, 4, 8)
    mask = _left_pad_mask(4)

    def fn(q, k, v, m):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m)
    args = (tl.tensor(q), tl.tensor(k), tl.tensor(v), tl.tensor(mask))
    want = fn(*args).numpy()
    assert np.isfinite(want).all() and not want[:, :, 0].any()
    with tl.no_grad():
        np.testing.assert_allclose(tl.function(fn)(*args).numpy(), want, rtol=1e-6, atol=1e-7)
    ort = pytest.importorskip("onnxruntime")
    tl.onnx.export(fn, args, str(tmp_path / "sdpa.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "sdpa.onnx"))
    got = sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), (q, k, v, mask))})[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_sdpa_enable_gqa_matches_torch():
    torch = _torch()
    q, k, v = f64(2, 6, 5, 4), f64(2, 2, 5, 4), f64(2, 2, 5, 3)
    want = torch.nn.functional.scaled_dot_product_attention(
        *map(torch.tensor, (q, k, v)), is_causal=True, enable_gqa=True)
    got = F.scaled_dot_product_attention(*map(tl.tensor, (q, k, v)), is_causal=True,
                                         enable_gqa=True)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="enable_gqa"):
        F.scaled_dot_product_attention(tl.tensor(f64(1, 5, 2, 4)), tl.tensor(f64(1, 2, 2, 4)),
                                       tl.tensor(f64(1, 2, 2, 4)), enable_gqa=True)


# --- A3: ints beside index arrays select first, as PyTorch ----------------------------------
KEYS = [   # (shape, key)
    ((2, 3, 5), (0, slice(None), [1, 4])),
    ((2, 3, 4, 5), (slice(None), [0, 1], slice(None), 0)),
    ((2, 3, 5), (0, None, slice(None), [1, 2])),
    ((2, 3, 4, 5), (Ellipsis, 0, [1, 2], slice(None))),
    ((2, 3, 5), (0, Ellipsis, [1, 2])),
    ((2, 3, 5), (-1, slice(1, 3), [[0], [2]])),
    ((2, 3, 5), ([0, 1], slice(None), 0)),          # NumPy and PyTorch agree here
    ((2, 3, 5), (0, [1, 2])),                       # adjacent: agree
    ((2, 3, 5), (1, slice(None), np.array([True, False, True, False, True]))),
]


@pytest.mark.parametrize("shape,key", KEYS, ids=[str(i) for i in range(len(KEYS))])
def test_mixed_int_and_array_index_follows_torch(shape, key):
    torch = _torch()
    x = f64(*shape)
    want = torch.tensor(x)[key]
    a = tl.tensor(x, requires_grad=True)
    got = a[key]
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_array_equal(got.detach().numpy(), want.numpy())
    w = f64(*want.shape)
    b = torch.tensor(x, requires_grad=True)
    (b[key] * torch.tensor(w)).sum().backward()
    (got * tl.tensor(w)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
    # setitem: in place without autograd, recorded with it, and out of place
    v = f64(*want.shape)
    tx = torch.tensor(x)
    tx[key] = torch.tensor(v)
    lx = tl.tensor(x)
    lx[key] = tl.tensor(v)
    np.testing.assert_array_equal(lx.numpy(), tx.numpy())
    np.testing.assert_array_equal(tl.setitem(tl.tensor(x), key, tl.tensor(v)).numpy(),
                                  tx.numpy())
    base, tb = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    val, tval = tl.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    y, ty = base * 2, tb * 2
    y[key] = val * 3
    ty[key] = tval * 3
    wx = f64(*x.shape)
    (y * tl.tensor(wx)).sum().backward()
    (ty * torch.tensor(wx)).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy())
    np.testing.assert_allclose(base.grad.numpy(), tb.grad.numpy())
    np.testing.assert_allclose(val.grad.numpy(), tval.grad.numpy())


def test_mixed_index_with_tensors_and_square_shapes():
    torch = _torch()
    x = f64(2, 2, 5)
    for key_t, key_l in (((0, slice(None), torch.tensor([1, 4])),
                          (0, slice(None), tl.tensor([1, 4]))),
                         ((torch.tensor(0), slice(None), [1, 4]),
                          (tl.tensor(0), slice(None), [1, 4]))):
        want = torch.tensor(x)[key_t]
        got = tl.tensor(x)[key_l]
        np.testing.assert_array_equal(got.numpy(), want.numpy())   # not transposed


def test_mixed_index_captured_with_none_dims_and_exported(tmp_path):
    def fn(x):
        return x[0, :, [1, 4]] * 2.0

    def put(x):
        y = x * 1.0
        y[0, :, [1, 4]] = tl.ones(3, 2) * 5.0
        return y
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 6))])
    with tl.no_grad():
        for shape in ((2, 3, 6), (3, 5, 6)):
            x = tl.randn(*shape)
            np.testing.assert_array_equal(f(x).numpy(), fn(x).numpy())
    assert f.trace_count == 1
    ort = pytest.importorskip("onnxruntime")
    tl.onnx.export(fn, (tl.randn(2, 3, 6),), str(tmp_path / "g.onnx"), dynamic_axes={0: [0, 1]})
    tl.onnx.export(put, (tl.randn(2, 3, 6),), str(tmp_path / "s.onnx"))
    for name, func, shape in (("g", fn, (3, 5, 6)), ("s", put, (2, 3, 6))):
        sess = ort.InferenceSession(str(tmp_path / f"{name}.onnx"))
        x = f32(*shape)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, func(tl.tensor(x)).numpy(), rtol=1e-6)


# --- A5: negative indices in gather / index_select ------------------------------------------
def test_gather_and_index_select_refuse_negative_indices():
    torch = _torch()
    logp = tl.tensor(f32(1, 4, 16)).log_softmax(-1)
    labels = tl.tensor([[5, 7, -100, -100]])
    with pytest.raises(IndexError, match="index -100 is out of range for dim 2 of size 16"):
        logp.gather(-1, labels[..., None])
    with pytest.raises(IndexError, match="out of range"):
        tl.gather(logp, labels[..., None], -1)            # NumPy's argument order
    with pytest.raises(IndexError, match="index -1 is out of range"):
        tl.arange(5.0).index_select(0, tl.tensor([-1]))
    with pytest.raises(IndexError, match="index 5 is out of range"):
        tl.arange(5.0).index_select(0, tl.tensor([5]))
    # take_along_axis and take keep NumPy's wrapping (torch.take_along_dim wraps too)
    x = f32(3, 5)
    idx = np.array([[-1], [0], [1]])
    np.testing.assert_array_equal(
        tl.take_along_axis(tl.tensor(x), tl.tensor(idx), 1).numpy(),
        torch.take_along_dim(torch.tensor(x), torch.tensor(idx), 1).numpy())
    assert tl.take(tl.arange(5.0), tl.tensor([-1])).tolist() == [4.0]


def test_scatter_add_negative_index_gradient_still_works():
    src = tl.tensor(f64(2, 2), requires_grad=True)
    out = tl.scatter_add(tl.zeros(2, 3, dtype=tl.float64), tl.tensor([[-1, 0], [1, -1]]), src,
                         1)     # (tensorlib's form wraps; PyTorch's refuses, as PyTorch)
    w = f64(2, 3)
    (out * tl.tensor(w)).sum().backward()
    np.testing.assert_allclose(src.grad.numpy(), np.take_along_axis(w, np.array([[2, 0], [1, 2]]),
                                                                    1))


# --- B6: torch-style gather under capture keeps None dims -----------------------------------
def test_torch_style_gather_keeps_dynamic_dims(tmp_path):
    def tok_logp(logits, labels):
        return F.log_softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    sig = [tl.TensorSpec((None, None, 10)), tl.TensorSpec((None, None), dtype=tl.int64)]
    f = tl.function(tok_logp, input_signature=sig)
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for B, T in ((2, 5), (3, 4), (1, 9)):
            lg, lb = tl.randn(B, T, 10), tl.tensor(rng.integers(0, 10, (B, T)))
            np.testing.assert_allclose(f(lg, lb).numpy(), tok_logp(lg, lb).numpy(), rtol=1e-6)
    assert f.trace_count == 1
    ort = pytest.importorskip("onnxruntime")
    tl.onnx.export(tok_logp, (tl.randn(2, 5, 10), tl.tensor(rng.integers(0, 10, (2, 5)))),
                   str(tmp_path / "g.onnx"), dynamic_axes={0: [0, 1], 1: [0, 1]})
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"))
    lg, lb = f32(3, 7, 10), rng.integers(0, 10, (3, 7))
    got = sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), (lg, lb))})[0]
    np.testing.assert_allclose(got, tok_logp(tl.tensor(lg), tl.tensor(lb)).numpy(), rtol=1e-5)
    # an index smaller than the input outside dim still reads that window
    x = np.arange(12.0).reshape(3, 4)
    assert tl.tensor(x).gather(1, tl.tensor([[1], [2]])).tolist() == [[1.0], [6.0]]


# --- A4: Categorical with -inf logits -------------------------------------------------------
def test_categorical_entropy_with_masked_logits_matches_torch():
    torch = _torch()
    logits = np.array([[2.0, 1.0, -np.inf, 0.5], [0.0, -np.inf, -np.inf, 1.0]])
    tx, lx = torch.tensor(logits, requires_grad=True), tl.tensor(logits, requires_grad=True)
    te = torch.distributions.Categorical(logits=tx).entropy()
    le = tl.distributions.Categorical(logits=lx).entropy()
    np.testing.assert_allclose(le.detach().numpy(), te.detach().numpy(), rtol=1e-12)
    te.sum().backward()
    le.sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_categorical_kl_with_masked_logits_has_finite_gradient():
    torch = _torch()
    a, b = np.array([[2.0, 1.0, -np.inf, 0.5]]), np.array([[0.0, 1.0, -1.0, 0.5]])
    D = tl.distributions
    la, lb = tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)
    kl = D.kl_divergence(D.Categorical(logits=la), D.Categorical(logits=lb))
    tk = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=torch.tensor(a)),
                                           torch.distributions.Categorical(logits=torch.tensor(b)))
    np.testing.assert_allclose(kl.detach().numpy(), tk.numpy(), rtol=1e-12)
    kl.sum().backward()
    # the masked class drops out: the gradient of KL over the three others (PyTorch: NaN)
    ta = torch.tensor(a[:, [0, 1, 3]], requires_grad=True)
    p = torch.softmax(ta, -1)
    (p * (torch.log(p) - torch.log_softmax(torch.tensor(b), -1)[:, [0, 1, 3]])).sum().backward()
    np.testing.assert_allclose(la.grad.numpy()[:, [0, 1, 3]], ta.grad.numpy(), rtol=1e-10)
    assert la.grad.numpy()[0, 2] == 0.0 and np.isfinite(lb.grad.numpy()).all()


# --- C8: bfloat16, torch dtypes and torch tensors -------------------------------------------
def test_bfloat16_gives_a_clear_error():
    torch = _torch()
    bf = torch.ones(2, dtype=torch.bfloat16)
    for call in (lambda: tl.tensor(bf), lambda: tl.ones(2).to("bfloat16"),
                 lambda: tl.ones(2).to(torch.bfloat16), lambda: tl.ones(2, dtype="bfloat16")):
        with pytest.raises(TypeError, match=r"bfloat16 is not supported.*\.float\(\)"):
            call()
    tm = torch.nn.Linear(4, 3).to(torch.bfloat16)
    with pytest.raises(RuntimeError, match=r"bfloat16.*'weight', 'bias'"):
        nn.Linear(4, 3).load_state_dict(tm.state_dict())


def test_torch_dtypes_and_tensors_convert():
    torch = _torch()
    assert tl.ones(2).to(torch.float16).dtype == tl.float16
    assert tl.ones(2, dtype=torch.int64).dtype == tl.int64
    assert tl.zeros(2, dtype=torch.float64).to("cpu", torch.float32).dtype == tl.float32
    t = torch.zeros(3)
    a = tl.tensor(t)
    t[0] = 5.0                       # tl.tensor copies (it shared torch's memory before)
    assert a.tolist() == [0.0, 0.0, 0.0]
    assert tl.tensor(torch.ones(2, requires_grad=True)).tolist() == [1.0, 1.0]
    assert tl.tensor(torch.ones(2, dtype=torch.float64)).dtype == tl.float64


def test_uint16_gives_a_clear_error():
    tokens = np.arange(10, dtype=np.uint16)          # nanoGPT's token files
    for call in (lambda: tl.tensor(tokens), lambda: tl.from_numpy(tokens)):
        with pytest.raises(TypeError, match=r"uint16 is not supported.*astype\(np\.int64\)"):
            call()
    assert tl.from_numpy(tokens.astype(np.int64)).tolist() == list(range(10))


# --- C9, C10, C11 ---------------------------------------------------------------------------
def test_einsum_takes_a_list_of_operands():
    torch = _torch()
    a, b = f64(2, 3), f64(3, 4)
    want = torch.einsum("ij,jk", [torch.tensor(a), torch.tensor(b)]).numpy()
    np.testing.assert_allclose(tl.einsum("ij,jk", [tl.tensor(a), tl.tensor(b)]).numpy(), want)
    np.testing.assert_allclose(tl.einsum("ij,jk->ik", (tl.tensor(a), tl.tensor(b))).numpy(),
                               want)
    np.testing.assert_allclose(tl.einsum("i->", [1.0, 2.0]).item(), 3.0)   # a list operand


def test_copy_from_a_torch_tensor_or_array():
    torch = _torch()
    w = tl.zeros(2, 3)
    src = torch.arange(6.0, dtype=torch.float64).reshape(2, 3)
    w.copy_(src)
    assert w.dtype == tl.float32 and w.tolist() == src.tolist()
    w.copy_(np.ones(3))              # broadcast, as copy_ of a tensor
    assert w.tolist() == [[1.0] * 3] * 2
    with pytest.raises(TypeError, match=r"bfloat16 is not supported"):
        w.copy_(src.to(torch.bfloat16))


def test_save_graph_names_the_escape_when_input_signature_is_set(tmp_path):
    buf = tl.tril(tl.ones(16, 16))

    def f(x):
        T = x.shape[1]
        return (x @ buf[:T, :T]) / float(T)     # (the slice follows T; float() fixes it)
    g = tl.function(f, input_signature=[tl.TensorSpec((None, None))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g(tl.ones(2, 4))
        g(tl.ones(2, 6))
    with pytest.raises(ValueError) as e:
        tl.save_graph(g, tmp_path / "g.tlg")
    msg = str(e.value)
    assert "give it an input_signature" not in msg
    assert "although it has an input_signature" in msg and "shape[1]" in msg
    assert "fn.get_graph" in msg
    h = tl.function(lambda x: x * 2)
    h(tl.ones(2))
    h(tl.ones(3))
    with pytest.raises(ValueError, match="give it an input_signature"):
        tl.save_graph(h, tmp_path / "h.tlg")


# --- D: small PyTorch APIs ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("eps", [None, 1e-6])
def test_rms_norm_matches_torch(dtype, eps):
    torch = _torch()
    x = f64(2, 3, 8).astype(dtype) * 1e-3
    w = (1.0 + f64(8)).astype(dtype)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    lx, lw = tl.tensor(x, requires_grad=True), tl.tensor(w, requires_grad=True)
    want = torch.nn.functional.rms_norm(tx, (8,), tw, eps)
    got = F.rms_norm(lx, 8, lw, eps)
    assert got.dtype == np.dtype(dtype)
    tol = dict(float16=1e-3, float32=1e-6, float64=1e-12)[dtype]
    np.testing.assert_allclose(got.detach().numpy().astype(np.float64),
                               want.detach().numpy().astype(np.float64), rtol=tol, atol=tol)
    g = f64(2, 3, 8).astype(dtype)
    (want * torch.tensor(g)).sum().backward()
    (got * tl.tensor(g)).sum().backward()
    for a, b in ((lx, tx), (lw, tw)):
        np.testing.assert_allclose(a.grad.numpy().astype(np.float64),
                                   b.grad.numpy().astype(np.float64), rtol=tol * 10,
                                   atol=tol * 10 * np.abs(b.grad.numpy()).max())
    np.testing.assert_allclose(F.rms_norm(tl.tensor(x), (3, 8)).numpy().astype(np.float64),
                               torch.nn.functional.rms_norm(torch.tensor(x), (3, 8)).numpy()
                               .astype(np.float64), rtol=tol, atol=tol)


def test_rms_norm_module_loads_torch_weights_captures_and_exports(tmp_path):
    torch = _torch()
    tm = torch.nn.RMSNorm(8, eps=1e-5)
    with torch.no_grad():
        tm.weight.normal_()
    lm = nn.RMSNorm(8, eps=1e-5)
    lm.load_state_dict(tm.state_dict())
    assert list(lm.state_dict()) == ["weight"] and nn.RMSNorm(4, elementwise_affine=False) \
        .weight is None
    x = f32(2, 5, 8)
    want = tm(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(lm(tl.tensor(x)).detach().numpy(), want, rtol=1e-5, atol=1e-6)
    f = tl.function(lm, input_signature=[tl.TensorSpec((None, None, 8))])
    with tl.no_grad():
        np.testing.assert_allclose(f(tl.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-6)
        f(tl.randn(3, 2, 8))
    assert f.trace_count == 1
    ort = pytest.importorskip("onnxruntime")
    with tl.no_grad():
        tl.onnx.export(lm, (tl.tensor(x),), str(tmp_path / "r.onnx"), dynamic_axes={0: [0, 1]})
    sess = ort.InferenceSession(str(tmp_path / "r.onnx"))
    x2 = f32(3, 7, 8)
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x2})[0],
                               tm(torch.tensor(x2)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_finfo_and_iinfo_match_torch():
    torch = _torch()
    for ours, theirs in ((tl.float16, torch.float16), (tl.float32, torch.float32),
                         (tl.float64, torch.float64)):
        a, b = tl.finfo(ours), torch.finfo(theirs)
        for name in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
            assert getattr(a, name) == getattr(b, name), name
    assert tl.finfo().eps == torch.finfo().eps and tl.finfo(torch.float16).min == -65504.0
    for ours, theirs in ((tl.int8, torch.int8), (tl.int64, torch.int64), (tl.uint8, torch.uint8)):
        a, b = tl.iinfo(ours), torch.iinfo(theirs)
        assert (a.bits, a.min, a.max) == (b.bits, b.min, b.max)
    with pytest.raises(TypeError, match="iinfo"):
        tl.finfo(tl.int32)
    with pytest.raises(TypeError, match="finfo"):
        tl.iinfo(tl.float32)


def test_is_cuda_isin_bucketize_match_torch():
    torch = _torch()
    assert tl.ones(2).is_cuda is False
    e, t = np.array([[1, 2, 3], [4, 5, 6]]), np.array([2, 6, 9])
    for kw in ({}, {"invert": True}):
        np.testing.assert_array_equal(tl.isin(tl.tensor(e), tl.tensor(t), **kw).numpy(),
                                      torch.isin(torch.tensor(e), torch.tensor(t), **kw).numpy())
    assert tl.isin(tl.tensor(e), 5).numpy().sum() == 1
    v, bnd = np.array([[1, 5, 7], [9, 0, 10]]), np.array([1, 3, 5, 7, 9])
    for kw in ({}, {"right": True}, {"out_int32": True}):
        want = torch.bucketize(torch.tensor(v), torch.tensor(bnd), **kw)
        got = tl.bucketize(tl.tensor(v), tl.tensor(bnd), **kw)
        assert str(got.dtype) == str(want.dtype).replace("torch.", "")
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_softmax_dtype_and_repeat_interleave_dim():
    torch = _torch()
    x = f32(2, 5).astype(np.float16)
    for fn, tfn in ((F.softmax, torch.nn.functional.softmax),
                    (F.log_softmax, torch.nn.functional.log_softmax)):
        got, want = fn(tl.tensor(x), -1, dtype=tl.float32), tfn(torch.tensor(x), -1,
                                                                  dtype=torch.float32)
        assert got.dtype == tl.float32
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)
    assert tl.tensor(x).softmax(-1, dtype=tl.float64).dtype == tl.float64
    assert tl.softmax(tl.tensor(x), dim=-1, dtype=torch.float32).dtype == tl.float32
    y = np.arange(6).reshape(2, 3)
    for d in (0, 1, -1):
        np.testing.assert_array_equal(tl.tensor(y).repeat_interleave(2, dim=d).numpy(),
                                      torch.tensor(y).repeat_interleave(2, dim=d).numpy())
    np.testing.assert_array_equal(tl.repeat_interleave(tl.tensor(y), 3, dim=1).numpy(),
                                  np.repeat(y, 3, axis=1))


def test_torch_keywords_accepted():
    torch = _torch()
    block = nn.Linear(4, 4)
    x = tl.randn(2, 4, requires_grad=True)
    tl.autograd.checkpoint(block, x, use_reentrant=False).sum().backward()
    assert x.grad is not None
    for opt in (tl.optim.AdamW(block.parameters(), fused=False, foreach=False),
                tl.optim.Adam(block.parameters(), foreach=True, fused=None, capturable=False)):
        block(x).sum().backward()
        opt.step()
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2,
                                enable_nested_tensor=False)
    assert enc(tl.randn(3, 2, 8)).shape == (3, 2, 8)
    # load_state_dict(assign=True): the values' dtype replaces the module's
    tm = torch.nn.Linear(3, 2).double()
    lm = nn.Linear(3, 2)
    lm.load_state_dict(tm.state_dict(), assign=True)
    assert lm.weight.dtype == tl.float64 and lm.weight.requires_grad
    assert isinstance(lm.weight, nn.Parameter)
    np.testing.assert_array_equal(lm.weight.detach().numpy(), tm.weight.detach().numpy())
    lm2 = nn.Linear(3, 2)
    lm2.load_state_dict(tm.state_dict())
    assert lm2.weight.dtype == tl.float32
