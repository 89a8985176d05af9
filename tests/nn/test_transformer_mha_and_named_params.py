"""NLP user trial, round 16: named parameters in optimizers, Adam's decoupled_weight_decay,
Transformer's custom encoder/decoder, MultiheadAttention's add_bias_kv / add_zero_attn and
F.multi_head_attention_forward, against PyTorch."""
import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
tF = torch.nn.functional


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.numpy())


def _pair_linear(dtype=np.float64):
    """A two-layer tensorlib model and a PyTorch one with the same weights."""
    tm = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)).to(
        torch.float64 if dtype == np.float64 else torch.float32)
    m = tl.nn.Sequential(tl.nn.Linear(4, 3), tl.nn.Linear(3, 2)).to(dtype=dtype)
    m.load_state_dict({k: tl.tensor(_np(v)) for k, v in tm.state_dict().items()})
    return m, tm


# --- 1. named parameters ------------------------------------------------------------------

OPTIMIZERS = [
    ("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01)), ("AdamW", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01)), ("NAdam", dict(lr=0.01)), ("RAdam", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01)), ("Adagrad", dict(lr=0.1)), ("Adadelta", dict(lr=1.0)),
    ("ASGD", dict(lr=0.01)), ("Rprop", dict(lr=0.01)), ("Adafactor", dict(lr=0.01)),
    ("LBFGS", dict(lr=0.5, max_iter=3)),
]       # (SparseAdam refuses this test's dense gradients, as PyTorch's)


def _sq_step(opt, model, lib, x):
    """One optimizer step on the sum of squares of ``model(x)`` (lib: tl or torch)."""
    opt.zero_grad()
    (model(lib.tensor(x)) ** 2).sum().backward()
    opt.step()


def _run(opt_cls, model, params, kw, steps=3, x=None):
    opt = opt_cls(params, **kw)
    x = np.linspace(-1, 1, 20).reshape(5, 4) if x is None else x
    for _ in range(steps):
        def closure():
            opt.zero_grad()
            loss = (model(tl.tensor(x)) ** 2).sum()
            loss.backward()
            return loss
        if isinstance(opt, tl.optim.LBFGS):
            opt.step(closure)
        else:
            closure()
            opt.step()
    return opt


@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_every_optimizer_takes_named_parameters(name, kw):
    cls = getattr(tl.optim, name)
    m1, tm = _pair_linear()
    m2, _ = _pair_linear()
    m2.load_state_dict(m1.state_dict())
    opt = _run(cls, m1, m1.named_parameters(), kw)
    _run(cls, m2, m2.parameters(), kw)
    names = [n for n, _ in m1.named_parameters()]
    assert opt.param_groups[0]["param_names"] == names
    assert all(isinstance(p, tl.Tensor) for p in opt.param_groups[0]["params"])
    for (_, a), b in zip(m1.named_parameters(), m2.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)
    sd = opt.state_dict()
    assert sd["param_groups"][0]["param_names"] == names
    assert sd["param_groups"][0]["params"] == list(range(len(names)))
    # PyTorch stores the same names
    tcls = getattr(torch.optim, name)
    topt = tcls(tm.named_parameters(), **kw)
    assert topt.state_dict()["param_groups"][0]["param_names"] == names
    # the round trip keeps them
    opt2 = cls(m2.named_parameters(), **kw)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["param_names"] == names
    assert opt2.state_dict()["param_groups"][0]["param_names"] == names


def test_named_parameters_in_group_dicts_match_torch():
    m, tm = _pair_linear()
    named, tnamed = list(m.named_parameters()), list(tm.named_parameters())
    opt = tl.optim.AdamW([{"params": named[:1], "weight_decay": 0.0},
                          {"params": named[1:]}], lr=0.01)
    topt = torch.optim.AdamW([{"params": tnamed[:1], "weight_decay": 0.0},
                              {"params": tnamed[1:]}], lr=0.01)
    x = np.random.default_rng(0).standard_normal((6, 4))
    for _ in range(4):
        _sq_step(opt, m, tl, x)
        _sq_step(topt, tm, torch, x)
    for (n, a), (tn, b) in zip(m.named_parameters(), tm.named_parameters()):
        assert n == tn
        np.testing.assert_allclose(a.numpy(), _np(b), rtol=1e-10, atol=1e-12)
    sd, tsd = opt.state_dict(), topt.state_dict()
    for g, tg in zip(sd["param_groups"], tsd["param_groups"]):
        assert g["param_names"] == tg["param_names"]
        assert g["params"] == tg["params"]
        assert g["weight_decay"] == tg["weight_decay"]
    # a PyTorch state dict (with its names) loads and the next steps agree
    m2, _ = _pair_linear()
    m2.load_state_dict({k: tl.tensor(_np(v)) for k, v in tm.state_dict().items()})
    opt2 = tl.optim.AdamW([{"params": list(m2.parameters())[:1], "weight_decay": 0.0},
                           {"params": list(m2.parameters())[1:]}], lr=0.01)
    opt2.load_state_dict(tsd)
    assert [g["param_names"] for g in opt2.param_groups] == \
        [tg["param_names"] for tg in tsd["param_groups"]]
    _sq_step(opt2, m2, tl, x)
    _sq_step(topt, tm, torch, x)
    for a, b in zip(m2.parameters(), tm.parameters()):
        np.testing.assert_allclose(a.numpy(), _np(b), rtol=1e-10, atol=1e-12)


def test_load_state_dict_names_override_or_stay():
    m, _ = _pair_linear()
    opt = tl.optim.SGD(m.named_parameters(), lr=0.1)
    sd = opt.state_dict()
    sd["param_groups"][0]["param_names"] = ["a", "b", "c", "d"]
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["param_names"] == ["a", "b", "c", "d"]
    del sd["param_groups"][0]["param_names"]
    opt.load_state_dict(sd)      # no names saved: the optimizer keeps its own (PyTorch)
    assert opt.param_groups[0]["param_names"] == ["a", "b", "c", "d"]


def test_mixing_named_and_unnamed_raises_as_torch():
    m, tm = _pair_linear()
    named, tnamed = list(m.named_parameters()), list(tm.named_parameters())
    msg = "all optimizer params should be with/without names. Some param names are missing"
    with pytest.raises(ValueError, match=msg):
        torch.optim.SGD([tnamed[0], tnamed[1][1]], lr=0.1)
    with pytest.raises(ValueError, match=msg):
        tl.optim.SGD([named[0], named[1][1]], lr=0.1)
    msg2 = (r"all optimizer param groups should be with/without names. cannot add param "
            r"group without names to the optimizer")
    with pytest.raises(ValueError, match=msg2):
        torch.optim.SGD([{"params": tnamed[:1]}, {"params": [tnamed[1][1]]}], lr=0.1)
    with pytest.raises(ValueError, match=msg2):
        tl.optim.SGD([{"params": named[:1]}, {"params": [named[1][1]]}], lr=0.1)
    opt = tl.optim.Adam([p for _, p in named[:2]])
    with pytest.raises(ValueError, match="cannot add param group with names"):
        opt.add_param_group({"params": named[2:]})
    topt = torch.optim.Adam([p for _, p in tnamed[:2]])
    with pytest.raises(ValueError, match="cannot add param group with names"):
        topt.add_param_group({"params": tnamed[2:]})
    opt = tl.optim.Adam(named[:2])
    opt.add_param_group({"params": named[2:], "lr": 0.5})
    assert opt.param_groups[1]["param_names"] == [n for n, _ in named[2:]]
    with pytest.raises(TypeError, match="Please use a list instead"):
        tl.optim.SGD([{"params": {named[0][1]}}], lr=0.1)
    with pytest.raises(TypeError, match=r"\(name, tensor\) pair"):
        tl.optim.SGD([("w", named[0][1], 1)], lr=0.1)


def test_lbfgs_named_parameters_take_mixed_dtypes():
    # named parameters of two float dtypes are accepted, as PyTorch's (one device only)
    a = tl.zeros(2, dtype=tl.float32, requires_grad=True)
    b = tl.zeros(2, dtype=tl.float64, requires_grad=True)
    opt = tl.optim.LBFGS([("a", a), ("b", b)])
    assert [p.dtype for p in opt.param_groups[0]["params"]] == [tl.float32, tl.float64]


# --- 2. Adam(decoupled_weight_decay=True) -------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_decoupled_weight_decay_matches_torch_and_adamw(dtype, amsgrad):
    m, tm = _pair_linear(dtype)
    m2, _ = _pair_linear(dtype)
    m2.load_state_dict(m.state_dict())
    kw = dict(lr=0.05, weight_decay=0.3, amsgrad=amsgrad)
    opt = tl.optim.Adam(m.parameters(), decoupled_weight_decay=True, **kw)
    opt2 = tl.optim.AdamW(m2.parameters(), **kw)
    topt = torch.optim.Adam(tm.parameters(), decoupled_weight_decay=True, **kw)
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(dtype)
    for _ in range(5):
        for mod, o in ((m, opt), (m2, opt2)):
            _sq_step(o, mod, tl, x)
        _sq_step(topt, tm, torch, x)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for a, b, c in zip(m.parameters(), m2.parameters(), tm.parameters()):
        np.testing.assert_allclose(a.numpy(), _np(c), rtol=tol, atol=tol)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tol, atol=tol)


def test_adam_l2_weight_decay_still_matches_torch():
    m, tm = _pair_linear()
    opt = tl.optim.Adam(m.parameters(), lr=0.05, weight_decay=0.3)
    topt = torch.optim.Adam(tm.parameters(), lr=0.05, weight_decay=0.3)
    x = np.ones((2, 4))
    for _ in range(3):
        _sq_step(opt, m, tl, x)
        _sq_step(topt, tm, torch, x)
    for a, c in zip(m.parameters(), tm.parameters()):
        np.testing.assert_allclose(a.numpy(), _np(c), rtol=1e-12, atol=1e-12)


def test_adam_state_dict_key_and_adamw_signature():
    import inspect
    p = tl.zeros(3, requires_grad=True)
    tp = torch.zeros(3, requires_grad=True)
    g = tl.optim.Adam([p]).state_dict()["param_groups"][0]
    tg = torch.optim.Adam([tp]).state_dict()["param_groups"][0]
    assert g["decoupled_weight_decay"] is False is tg["decoupled_weight_decay"]
    g = tl.optim.Adam([p], decoupled_weight_decay=True).state_dict()["param_groups"][0]
    assert g["decoupled_weight_decay"] is True
    g = tl.optim.AdamW([p]).state_dict()["param_groups"][0]
    tg = torch.optim.AdamW([tp]).state_dict()["param_groups"][0]
    assert g["decoupled_weight_decay"] is True is tg["decoupled_weight_decay"]
    assert g["weight_decay"] == tg["weight_decay"] == 0.01
    assert "decoupled_weight_decay" not in inspect.signature(tl.optim.AdamW).parameters
    with pytest.raises(TypeError):
        tl.optim.AdamW([p], decoupled_weight_decay=False)
    with pytest.raises(TypeError):
        torch.optim.AdamW([tp], decoupled_weight_decay=False)
    # an AdamW stays decoupled whatever state it loads (PyTorch's __setstate__)
    w = tl.optim.AdamW([p])
    w.load_state_dict(tl.optim.Adam([p]).state_dict())
    assert w.param_groups[0]["decoupled_weight_decay"] is True
    a = tl.optim.Adam([p])
    a.load_state_dict(tl.optim.AdamW([p]).state_dict())
    assert a.param_groups[0]["decoupled_weight_decay"] is True
    # a per-group flag
    q = tl.zeros(3, requires_grad=True)
    a = tl.optim.Adam([{"params": [p]}, {"params": [q], "decoupled_weight_decay": True}])
    assert [g["decoupled_weight_decay"] for g in a.param_groups] == [False, True]


# --- 3. Transformer(custom_encoder=, custom_decoder=) -------------------------------------

def _copy(m, tm):
    m.load_state_dict({k: tl.tensor(_np(v)) for k, v in tm.state_dict().items()})


def test_transformer_custom_encoder_decoder_match_torch():
    torch.manual_seed(0)
    kw = dict(dim_feedforward=16, dropout=0.0)
    tenc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2, **kw), 1,
                                       enable_nested_tensor=False).double()
    tdec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(8, 2, **kw), 3).double()
    tmodel = torch.nn.Transformer(8, 2, dim_feedforward=16, dropout=0.0, custom_encoder=tenc,
                                  custom_decoder=tdec).double()
    enc = tl.nn.TransformerEncoder(tl.nn.TransformerEncoderLayer(8, 2, **kw), 1)
    dec = tl.nn.TransformerDecoder(tl.nn.TransformerDecoderLayer(8, 2, **kw), 3)
    model = tl.nn.Transformer(8, 2, dim_feedforward=16, dropout=0.0, custom_encoder=enc,
                              custom_decoder=dec).double()
    assert model.encoder is enc and model.decoder is dec
    assert list(model.state_dict()) == list(tmodel.state_dict())
    _copy(model, tmodel)
    rng = np.random.default_rng(0)
    src, tgt = rng.standard_normal((5, 2, 8)), rng.standard_normal((4, 2, 8))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    ts, tt = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
    s, t = tl.tensor(src, requires_grad=True), tl.tensor(tgt, requires_grad=True)
    tout = tmodel(ts, tt, tgt_mask=mask)
    out = model(s, t, tgt_mask=tl.tensor(_np(mask)))
    np.testing.assert_allclose(out.numpy(), _np(tout), rtol=1e-10, atol=1e-10)
    tout.sum().backward()
    out.sum().backward()
    np.testing.assert_allclose(s.grad.numpy(), _np(ts.grad), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(t.grad.numpy(), _np(tt.grad), rtol=1e-8, atol=1e-10)


def test_transformer_custom_modules_get_the_call_pytorch_makes():
    calls = []

    class Enc(tl.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = tl.nn.Linear(8, 8)

        def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
            calls.append(("enc", mask is not None, src_key_padding_mask is not None))
            return self.lin(src)

    class Dec(tl.nn.Module):
        def forward(self, tgt, memory, tgt_mask=None, memory_mask=None,
                    tgt_key_padding_mask=None, memory_key_padding_mask=None,
                    tgt_is_causal=None, memory_is_causal=False):
            calls.append(("dec", tuple(memory.shape)))
            return tgt + memory.mean(axis=0, keepdims=True)

    model = tl.nn.Transformer(8, 2, custom_encoder=Enc(), custom_decoder=Dec())
    assert [n for n, _ in model.named_parameters()] == ["encoder.lin.weight",
                                                        "encoder.lin.bias"]
    out = model(tl.randn(5, 2, 8), tl.randn(3, 2, 8),
                src_key_padding_mask=tl.zeros(2, 5, dtype=tl.bool))
    assert out.shape == (3, 2, 8)
    assert calls == [("enc", False, True), ("dec", (5, 2, 8))]
    with pytest.raises(TypeError, match="custom_encoder must be a Module"):
        tl.nn.Transformer(8, 2, custom_encoder=3)


# --- 4. MultiheadAttention(add_bias_kv=, add_zero_attn=) -----------------------------------

def _mha_pair(dtype, **kw):
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    tm = torch.nn.MultiheadAttention(8, 2, **kw).to(tdt)
    m = tl.nn.MultiheadAttention(8, 2, **kw).to(dtype=dtype)
    assert list(m.state_dict()) == list(tm.state_dict())
    _copy(m, tm)
    return m, tm


def _masks(kind, N, L, S, rng):
    """(attn_mask, key_padding_mask) as numpy arrays, no query row fully masked."""
    am = kpm = None
    if kind in ("bool", "both_bool"):
        am = np.triu(np.ones((L, S), bool), 1)
    if kind in ("float", "both_float"):
        am = rng.standard_normal((L, S))
    if kind == "3d":
        am = rng.standard_normal((N * 2, L, S))
    if kind in ("kpm", "both_bool"):
        kpm = np.zeros((N, S), bool)
        kpm[-1, -2:] = True
    if kind == "both_float":
        kpm = np.where(rng.random((N, S)) < 0.3, -1e9, 0.0)
    return am, kpm


def _as(a, lib, dtype):
    if a is None:
        return None
    if a.dtype != np.bool_:
        a = a.astype(dtype)
    return tl.tensor(a) if lib == "tl" else torch.tensor(a)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias_kv,zero_attn", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("masks", ["none", "bool", "float", "3d", "kpm", "both_bool",
                                   "both_float"])
def test_mha_bias_kv_zero_attn_match_torch(dtype, bias_kv, zero_attn, batch_first, masks):
    rng = np.random.default_rng(hash((bias_kv, zero_attn, batch_first, masks)) % 2**32)
    m, tm = _mha_pair(dtype, add_bias_kv=bias_kv, add_zero_attn=zero_attn,
                      batch_first=batch_first)
    if bias_kv:
        assert m.bias_k.shape == (1, 1, 8) and m.bias_v.shape == (1, 1, 8)
    N, L, S = 3, 4, 5
    shape_q, shape_k = ((N, L, 8), (N, S, 8)) if batch_first else ((L, N, 8), (S, N, 8))
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in (shape_q, shape_k, shape_k))
    am, kpm = _masks(masks, N, L, S, rng)
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    for need, avg in ((True, True), (True, False), (False, True)):
        tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
        lq, lk, lv = (tl.tensor(a, requires_grad=True) for a in (q, k, v))
        tout, tw = tm(tq, tk, tv, key_padding_mask=_as(kpm, "torch", dtype),
                      attn_mask=_as(am, "torch", dtype), need_weights=need,
                      average_attn_weights=avg)
        m.zero_grad()
        out, w = m(lq, lk, lv, key_padding_mask=_as(kpm, "tl", dtype),
                   attn_mask=_as(am, "tl", dtype), need_weights=need, average_attn_weights=avg)
        np.testing.assert_allclose(out.numpy(), _np(tout), **tol)
        if need:
            assert w.shape == tuple(tw.shape)
            np.testing.assert_allclose(w.numpy(), _np(tw), **tol)
        else:
            assert w is None and tw is None
        gy = rng.standard_normal(out.shape).astype(dtype)
        tm.zero_grad()
        (tout * torch.tensor(gy)).sum().backward()
        (out * tl.tensor(gy)).sum().backward()
        for a, b in ((lq, tq), (lk, tk), (lv, tv)):
            np.testing.assert_allclose(a.grad.numpy(), _np(b.grad), **tol)
        for (n, a), (tn, b) in zip(m.named_parameters(), tm.named_parameters()):
            assert n == tn
            np.testing.assert_allclose(a.grad.numpy(), _np(b.grad), err_msg=n, **tol)


@pytest.mark.parametrize("bias_kv,zero_attn", [(True, False), (False, True), (True, True)])
def test_mha_unbatched_and_kdim_vdim(bias_kv, zero_attn):
    rng = np.random.default_rng(3)
    tm = torch.nn.MultiheadAttention(8, 2, kdim=5, vdim=6, add_bias_kv=bias_kv,
                                     add_zero_attn=zero_attn).double()
    m = tl.nn.MultiheadAttention(8, 2, kdim=5, vdim=6, add_bias_kv=bias_kv,
                                 add_zero_attn=zero_attn, dtype=tl.float64)
    _copy(m, tm)
    q, k, v = rng.standard_normal((4, 8)), rng.standard_normal((3, 5)), rng.standard_normal((3, 6))
    kpm = np.array([False, True, False])
    am = rng.standard_normal((2, 4, 3))          # unbatched 3-d: (num_heads, L, S)
    tq = torch.tensor(q, requires_grad=True)
    lq = tl.tensor(q, requires_grad=True)
    tout, tw = tm(tq, torch.tensor(k), torch.tensor(v), key_padding_mask=torch.tensor(kpm),
                  attn_mask=torch.tensor(am), average_attn_weights=False)
    out, w = m(lq, tl.tensor(k), tl.tensor(v), key_padding_mask=tl.tensor(kpm),
               attn_mask=tl.tensor(am), average_attn_weights=False)
    assert out.shape == (4, 8) and w.shape == tuple(tw.shape)
    np.testing.assert_allclose(out.numpy(), _np(tout), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), _np(tw), rtol=1e-10, atol=1e-12)
    tout.sum().backward()
    out.sum().backward()
    np.testing.assert_allclose(lq.grad.numpy(), _np(tq.grad), rtol=1e-9, atol=1e-12)
    for (n, a), (_, b) in zip(m.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(a.grad.numpy(), _np(b.grad), rtol=1e-9, atol=1e-12,
                                   err_msg=n)


def test_mha_checkpoint_with_bias_kv_needs_the_flag():
    tm = torch.nn.MultiheadAttention(8, 2, add_bias_kv=True)
    sd = {k: tl.tensor(_np(v)) for k, v in tm.state_dict().items()}
    with pytest.raises(Exception, match="bias_k"):
        tl.nn.MultiheadAttention(8, 2).load_state_dict(sd)
    tl.nn.MultiheadAttention(8, 2, add_bias_kv=True).load_state_dict(sd)


def test_mha_dropout_off_in_eval_and_train_changes_output():
    m = tl.nn.MultiheadAttention(8, 2, dropout=0.5, add_bias_kv=True, add_zero_attn=True)
    x = tl.randn(4, 2, 8)
    m.eval()
    a, _ = m(x, x, x)
    b, _ = m(x, x, x)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    m.train()
    tl.manual_seed(0)
    c, _ = m(x, x, x)
    assert not np.allclose(a.numpy(), c.numpy())


# --- 5. F.multi_head_attention_forward -----------------------------------------------------

def _weights(rng, E=8, kdim=8, vdim=8, separate=False, bias_kv=False):
    w = {"in_proj_weight": rng.standard_normal((3 * E, E)) * 0.3,
         "in_proj_bias": rng.standard_normal(3 * E) * 0.1,
         "out_proj_weight": rng.standard_normal((E, E)) * 0.3,
         "out_proj_bias": rng.standard_normal(E) * 0.1}
    if separate:
        w["q_proj_weight"] = rng.standard_normal((E, E)) * 0.3
        w["k_proj_weight"] = rng.standard_normal((E, kdim)) * 0.3
        w["v_proj_weight"] = rng.standard_normal((E, vdim)) * 0.3
    if bias_kv:
        w["bias_k"] = rng.standard_normal((1, 1, E))
        w["bias_v"] = rng.standard_normal((1, 1, E))
    return w


def _call(lib, inputs, w, **kw):
    mk = (lambda a: tl.tensor(a, requires_grad=True)) if lib == "tl" else \
        (lambda a: torch.tensor(a, requires_grad=True))
    ins = [mk(a) for a in inputs]
    ws = {k: mk(v) for k, v in w.items()}
    fn = F.multi_head_attention_forward if lib == "tl" else tF.multi_head_attention_forward
    sep = "q_proj_weight" in ws
    for key in ("static_k", "static_v"):
        if kw.get(key) is not None:
            kw[key] = mk(kw[key])
            ws[key] = kw[key]
    for key in ("attn_mask", "key_padding_mask"):
        if kw.get(key) is not None:
            kw[key] = tl.tensor(kw[key]) if lib == "tl" else torch.tensor(kw[key])
    out, weights = fn(*ins, 8, 2, None if sep else ws["in_proj_weight"], ws["in_proj_bias"],
                      ws.get("bias_k"), ws.get("bias_v"), kw.pop("add_zero_attn", False), 0.0,
                      ws["out_proj_weight"], ws["out_proj_bias"],
                      use_separate_proj_weight=sep, q_proj_weight=ws.get("q_proj_weight"),
                      k_proj_weight=ws.get("k_proj_weight"),
                      v_proj_weight=ws.get("v_proj_weight"), **kw)
    return out, weights, ins, ws


def _compare(a, b, rtol=1e-9, atol=1e-11):
    oa, wa, ia, pa = a
    ob, wb, ib, pb = b
    np.testing.assert_allclose(_np(oa), _np(ob), rtol=rtol, atol=atol)
    if wb is None:
        assert wa is None
    else:
        np.testing.assert_allclose(_np(wa), _np(wb), rtol=rtol, atol=atol)
    g = np.cos(np.arange(ob.numel())).reshape(tuple(ob.shape))
    (oa * tl.tensor(g)).sum().backward()
    (ob * torch.tensor(g)).sum().backward()
    for x, y in zip(ia, ib):
        if y.grad is None:        # a key / value replaced by static_k / static_v
            assert x.grad is None
            continue
        np.testing.assert_allclose(_np(x.grad), _np(y.grad), rtol=rtol, atol=atol)
    for k in pb:
        if pb[k].grad is None:
            assert pa[k].grad is None, k
            continue
        np.testing.assert_allclose(_np(pa[k].grad), _np(pb[k].grad), rtol=rtol, atol=atol,
                                   err_msg=k)


@pytest.mark.parametrize("bias_kv", [False, True])
@pytest.mark.parametrize("zero_attn", [False, True])
@pytest.mark.parametrize("need_weights,avg", [(True, True), (True, False), (False, True)])
def test_functional_mha_matches_torch(bias_kv, zero_attn, need_weights, avg):
    rng = np.random.default_rng(7)
    w = _weights(rng, bias_kv=bias_kv)
    x = [rng.standard_normal((4, 3, 8)), rng.standard_normal((5, 3, 8))]
    inputs = [x[0], x[1], x[1]]
    kpm = np.zeros((3, 5), bool)
    kpm[0, 1] = True
    am = rng.standard_normal((4, 5))
    kw = dict(add_zero_attn=zero_attn, need_weights=need_weights, average_attn_weights=avg,
              key_padding_mask=kpm, attn_mask=am)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # PyTorch: mismatched mask types deprecated
        _compare(_call("tl", inputs, w, **dict(kw)), _call("torch", inputs, w, **dict(kw)))


@pytest.mark.parametrize("zero_attn", [False, True])
def test_functional_mha_separate_weights_static_kv_unbatched(zero_attn):
    rng = np.random.default_rng(8)
    w = _weights(rng, kdim=5, vdim=6, separate=True)
    inputs = [rng.standard_normal((4, 2, 8)), rng.standard_normal((3, 2, 5)),
              rng.standard_normal((3, 2, 6))]
    kw = dict(add_zero_attn=zero_attn, static_k=rng.standard_normal((4, 6, 4)),
              static_v=rng.standard_normal((4, 6, 4)), average_attn_weights=False)
    _compare(_call("tl", inputs, w, **dict(kw)), _call("torch", inputs, w, **dict(kw)))
    # unbatched, packed weights, bool attn_mask with is_causal as a hint
    w = _weights(rng, bias_kv=True)
    inputs = [rng.standard_normal((4, 8)), rng.standard_normal((4, 8)),
              rng.standard_normal((4, 8))]
    kw = dict(add_zero_attn=zero_attn, attn_mask=np.triu(np.ones((4, 4), bool), 1),
              is_causal=True, need_weights=False)
    _compare(_call("tl", inputs, w, **dict(kw)), _call("torch", inputs, w, **dict(kw)))


def test_functional_mha_float32():
    rng = np.random.default_rng(9)
    w = {k: v.astype(np.float32) for k, v in _weights(rng, bias_kv=True).items()}
    inputs = [rng.standard_normal((4, 2, 8)).astype(np.float32) for _ in range(3)]
    kw = dict(add_zero_attn=True, attn_mask=rng.standard_normal((4, 4)).astype(np.float32))
    a = _call("tl", inputs, w, **dict(kw))
    assert a[0].dtype == np.float32
    _compare(a, _call("torch", inputs, w, **dict(kw)), rtol=2e-4, atol=2e-5)


def test_functional_mha_second_order_matches_torch():
    rng = np.random.default_rng(10)
    w = _weights(rng, bias_kv=True)
    x = rng.standard_normal((3, 2, 8))
    res = []
    for lib in ("tl", "torch"):
        out, _, ins, ws = _call(lib, [x, x, x], w, add_zero_attn=True)
        if lib == "tl":
            (gq,) = tl.grad((out ** 2).sum(), [ins[0]], create_graph=True)
            (gg,) = tl.grad((gq ** 2).sum(), [ws["bias_k"]])
        else:
            (gq,) = torch.autograd.grad((out ** 2).sum(), [ins[0]], create_graph=True)
            (gg,) = torch.autograd.grad((gq ** 2).sum(), [ws["bias_k"]])
        res.append(_np(gg))
    np.testing.assert_allclose(res[0], res[1], rtol=1e-8, atol=1e-10)


def test_functional_mha_errors():
    rng = np.random.default_rng(11)
    w = _weights(rng, bias_kv=True)
    x = [rng.standard_normal((4, 2, 8))] * 3
    with pytest.raises(RuntimeError, match="need attn_mask if specifying the is_causal"):
        _call("tl", x, w, is_causal=True)
    w2 = dict(w)
    del w2["bias_v"]
    with pytest.raises(ValueError, match="bias_k and bias_v must be given together"):
        _call("tl", x, w2)
    with pytest.raises(ValueError, match="embedding dimension of 8, but got 6"):
        _call("tl", [rng.standard_normal((4, 2, 6))] * 3, w)
    with pytest.raises(ValueError, match="static key or value"):
        _call("tl", x, w, static_k=rng.standard_normal((4, 4, 4)))
    with pytest.raises(ValueError, match="key_padding_mask to be None or 2-D"):
        _call("tl", x, w, key_padding_mask=np.zeros(4, bool))
    with pytest.raises(ValueError, match=r"attn_mask must be \(L, S\) = \(4, 4\)"):
        _call("tl", x, w, attn_mask=np.zeros((3, 4)))
    with pytest.raises(TypeError, match="only bool and floating types of attn_mask"):
        _call("tl", x, w, attn_mask=np.zeros((4, 4), np.int64))
    with pytest.raises(ValueError, match="MultiheadAttention: attn_mask must be"):
        tl.nn.MultiheadAttention(8, 2, add_bias_kv=True)(tl.randn(4, 2, 8), tl.randn(3, 2, 8),
                                                         tl.randn(3, 2, 8),
                                                         attn_mask=tl.zeros(3, 3))


def test_functional_mha_is_exported():
    assert "multi_head_attention_forward" in F.__all__
    import inspect
    ours = list(inspect.signature(F.multi_head_attention_forward).parameters)
    theirs = list(inspect.signature(tF.multi_head_attention_forward).parameters)
    assert ours == theirs
