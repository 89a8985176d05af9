"""Trial 17 (sequence models): the fused gru_cell op, the BPTT loops of the sequence ops,
the dropout warning of one-layer RNNs and ctc_loss's gradient convention, against PyTorch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib._apply import apply
from tensorlib.ops import nn_rnn, nn_rnn_seq

torch = pytest.importorskip("torch")

F64 = dict(rtol=1e-10, atol=1e-12)


def _torch_cell(I, H, bias, dtype, seed):
    torch.manual_seed(seed)
    return torch.nn.GRUCell(I, H, bias=bias).to(dtype)


def _params(cell):
    return [tl.tensor(p.detach().numpy().copy(), requires_grad=True) for p in cell.parameters()]


# --- gru_cell: values, first and second order gradients ----------------------------------------
@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 4), I=st.integers(1, 5), H=st.integers(1, 5),
       bias=st.sampled_from(["both", "ih", "hh", "none"]), seed=st.integers(0, 1000))
def test_gru_cell_matches_torch_f64(N, I, H, bias, seed):
    tc = _torch_cell(I, H, True, torch.float64, seed)
    w_ih, w_hh, b_ih, b_hh = tc.weight_ih, tc.weight_hh, tc.bias_ih, tc.bias_hh
    tb = {"both": (b_ih, b_hh), "ih": (b_ih, None), "hh": (None, b_hh), "none": (None, None)}
    tb = tb[bias]
    x = torch.randn(N, I, dtype=torch.float64, requires_grad=True)
    h = torch.randn(N, H, dtype=torch.float64, requires_grad=True)
    tin = [x, h, w_ih, w_hh] + [b for b in tb if b is not None]
    lin = [tl.tensor(t.detach().numpy().copy(), requires_grad=True) for t in tin]
    it = iter(lin[4:])
    lb = [None if b is None else next(it) for b in tb]

    yt = torch.gru_cell(x, h, w_ih, w_hh, *tb)
    yl = tl.gru_cell(lin[0], lin[1], lin[2], lin[3], *lb)
    np.testing.assert_allclose(yl.numpy(), yt.detach().numpy(), **F64)

    # first order with the fused kernel (backward not recorded)
    gt = torch.autograd.grad((yt ** 3).sum(), tin, create_graph=True)
    gl = tl.grad((tl.gru_cell(lin[0], lin[1], lin[2], lin[3], *lb) ** 3).sum(), lin)
    for a, b in zip(gl, gt):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), **F64)
    # first order recorded, then second order
    gl2 = tl.grad((yl ** 3).sum(), lin, create_graph=True)
    for a, b in zip(gl2, gt):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), **F64)
    ht = torch.autograd.grad(sum((g ** 2).sum() for g in gt), tin)
    hl = tl.grad(sum((g ** 2).sum() for g in gl2), lin)
    for a, b in zip(hl, ht):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-11)


def test_gru_cell_module_f32_and_unbatched():
    tc = _torch_cell(6, 7, True, torch.float32, 1)
    cell = tl.nn.GRUCell(6, 7)
    cell.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in tc.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 3, 6)).astype(np.float32)
    ht, hl = torch.zeros(3, 7), tl.zeros(3, 7)
    xt = torch.tensor(x, requires_grad=True)
    xl = tl.tensor(x, requires_grad=True)
    for t in range(5):
        ht, hl = tc(xt[t], ht), cell(xl[t], hl)
    np.testing.assert_allclose(hl.numpy(), ht.detach().numpy(), rtol=1e-5, atol=1e-6)
    ht.sum().backward()
    hl.sum().backward()
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(cell.weight_hh.grad.numpy(), tc.weight_hh.grad.numpy(),
                               rtol=1e-4, atol=1e-5)
    # unbatched (1-D) input, no state
    np.testing.assert_allclose(cell(tl.tensor(x[0, 0])).numpy(),
                               tc(torch.tensor(x[0, 0])).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_gru_cell_is_one_op():
    tc = _torch_cell(3, 4, True, torch.float64, 0)
    x, h = tl.randn(2, 3, dtype="float64"), tl.randn(2, 4, dtype="float64")
    with tl.capture() as g:
        tl.gru_cell(x, h, *_params(tc))
    ops = [n.op for n in g.nodes]
    assert ops.count("gru_cell") == 1 and "sigmoid" not in ops and "tanh" not in ops, ops


def test_gru_cell_errors():
    x, h = tl.randn(2, 3), tl.randn(2, 4)
    w_hh = tl.randn(12, 4)
    with pytest.raises(ValueError, match="gru_cell: w_ih must have shape"):
        tl.gru_cell(x, h, tl.randn(16, 3), w_hh)
    with pytest.raises(ValueError, match="gru_cell: w_hh must have shape"):
        tl.gru_cell(x, h, tl.randn(12, 3), tl.randn(12, 3))
    with pytest.raises(ValueError, match="gru_cell: b_hh must have shape"):
        tl.gru_cell(x, h, tl.randn(12, 3), w_hh, None, tl.randn(4))
    with pytest.raises(ValueError, match="gru_cell: input"):
        tl.gru_cell(x, tl.randn(3, 4), tl.randn(12, 3), w_hh)
    with pytest.raises(TypeError, match="gru_cell"):
        tl.gru_cell(x, h, tl.randn(12, 3, dtype="float64"), w_hh)
    # the op itself checks its operands' shapes
    with pytest.raises(ValueError, match="gru_cell"):
        apply(nn_rnn.GRU_CELL, tl.randn(2, 12), tl.randn(2, 12), tl.randn(2, 5))


# --- gru_cell under vmap, tl.function, graph files and ONNX -----------------------------------
def test_gru_cell_vmap_matches_loop():
    tc = _torch_cell(3, 4, True, torch.float64, 2)
    ps = [p.detach() for p in _params(tc)]
    xs, hs = tl.randn(5, 2, 3, dtype="float64"), tl.randn(5, 2, 4, dtype="float64")
    got = tl.func.vmap(lambda x, h: tl.gru_cell(x, h, *ps))(xs, hs)
    want = np.stack([tc(torch.tensor(xs.numpy()[i]), torch.tensor(hs.numpy()[i]))
                     .detach().numpy() for i in range(5)])
    np.testing.assert_allclose(got.numpy(), want, **F64)
    # per-example gradients through the fused backward
    g = tl.func.vmap(tl.func.grad(lambda x, h: tl.gru_cell(x[None], h[None], *ps).sum()))(
        xs[:, 0], hs[:, 0])
    x0 = torch.tensor(xs.numpy()[:, 0], requires_grad=True)
    tc(x0, torch.tensor(hs.numpy()[:, 0])).sum().backward()
    np.testing.assert_allclose(g.numpy(), x0.grad.numpy(), **F64)


def _loop_model():
    torch.manual_seed(3)
    tc = torch.nn.GRUCell(3, 4)
    cell = tl.nn.GRUCell(3, 4)
    cell.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in tc.state_dict().items()})

    class Loop(tl.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = cell

        def forward(self, x):
            h = tl.zeros(x.shape[1], 4)
            for t in range(x.shape[0]):
                h = self.cell(x[t], h)
            return h
    return Loop(), tc


def test_gru_cell_function_and_graph_file(tmp_path):
    model, tc = _loop_model()
    x = tl.randn(6, 2, 3)
    want = model(x).numpy()
    f = tl.function(model)
    with tl.no_grad():
        np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-6, atol=1e-7)
    path = tmp_path / "gru_loop.tlg"
    tl.save_graph(f, path)
    np.testing.assert_allclose(tl.load_graph(path)(x).numpy(), want, rtol=1e-6, atol=1e-7)


def test_gru_cell_onnx_export(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model, tc = _loop_model()
    x = tl.randn(6, 2, 3)
    path = str(tmp_path / "gru_loop.onnx")
    tl.onnx.export(model, (x,), path, dynamic_axes={0: [1]})
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for n in (2, 5):
        xn = np.random.default_rng(n).standard_normal((6, n, 3)).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: xn})[0]
        ht = torch.zeros(n, 4)
        for t in range(6):
            ht = tc(torch.tensor(xn[t]), ht)
        np.testing.assert_allclose(got, ht.detach().numpy(), rtol=1e-5, atol=1e-6)


# --- sequence ops: the first-order BPTT kernels against the recorded (composite) backward -----
_SEQ = {"lstm": (nn_rnn_seq.LSTM_SEQ, 4, 2), "gru": (nn_rnn_seq.GRU_SEQ, 3, 1),
        "rnn": (nn_rnn_seq.RNN_SEQ, 1, 1)}


def _seq_inputs(kind, T, N, I, H, bias, dtype, rng):
    _, G, ns = _SEQ[kind]
    shapes = [(T, N, I)] + [(N, H)] * ns + [(G * H, I), (G * H, H)]
    shapes += [(G * H,), (G * H,)] if bias else []
    return [tl.tensor(rng.standard_normal(s).astype(dtype) * 0.5, requires_grad=True)
            for s in shapes]


@pytest.mark.parametrize("kind,attrs", [("lstm", {}), ("gru", {}), ("rnn", {}),
                                        ("rnn", {"nonlinearity": "relu"})])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T", [0, 1, 5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seq_grad_kernel_matches_recorded_backward(kind, attrs, reverse, T, dtype):
    """Every output gets a gradient, the workspace ones included (nonzero gradients there
    take the loops' general path), so the fused BPTT must agree with the differentiable one."""
    rng = np.random.default_rng(T + 10 * reverse)
    op = _SEQ[kind][0]
    ins = _seq_inputs(kind, T, 3, 2, 4, T != 1, dtype, rng)
    outs = apply(op, *ins, reverse=reverse, **attrs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    ws = [tl.tensor(rng.standard_normal(o.shape).astype(dtype)) for o in outs]

    def loss(outs):
        return sum((o * w).sum() for o, w in zip(outs, ws))
    fused = tl.grad(loss(outs), ins, retain_graph=True)
    recorded = tl.grad(loss(outs), ins, create_graph=True)
    tol = F64 if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    for a, b in zip(fused, recorded):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), **tol)
    # and with only y used: the workspace gradients are zeros (the loops' fast path)
    fused = tl.grad(loss(outs[:1]), ins, retain_graph=True)
    recorded = tl.grad(loss(outs[:1]), ins, create_graph=True)
    for a, b in zip(fused, recorded):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), **tol)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_long_sequence_modules_match_torch(mode, dtype):
    torch.manual_seed(0)
    tm = getattr(torch.nn, mode)(3, 5, num_layers=2, bidirectional=True).to(dtype)
    lm = getattr(tl.nn, mode)(3, 5, num_layers=2, bidirectional=True,
                              dtype="float64" if dtype == torch.float64 else "float32")
    lm.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = torch.randn(60, 2, 3, dtype=dtype, requires_grad=True)
    xl = tl.tensor(x.detach().numpy(), requires_grad=True)
    (yt, _), (yl, _) = tm(x), lm(xl)
    (yt ** 2).sum().backward()
    (yl ** 2).sum().backward()
    tol = F64 if dtype == torch.float64 else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(yl.numpy(), yt.detach().numpy(), **tol)
    np.testing.assert_allclose(xl.grad.numpy(), x.grad.numpy(), **tol)
    for k, p in tm.named_parameters():
        np.testing.assert_allclose(dict(lm.named_parameters())[k].grad.numpy(),
                                   p.grad.numpy(), err_msg=k, **tol)


def test_packed_gru_matches_torch():
    torch.manual_seed(4)
    tm = torch.nn.GRU(3, 4).double()
    lm = tl.nn.GRU(3, 4, dtype="float64")
    lm.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)
    xl = tl.tensor(x.detach().numpy(), requires_grad=True)
    lengths = [5, 3, 2]
    pt = torch.nn.utils.rnn.pack_padded_sequence(x, lengths)
    pl = tl.nn.utils.rnn.pack_padded_sequence(xl, lengths)
    (_, ht), (_, hl) = tm(pt), lm(pl)
    np.testing.assert_allclose(hl.numpy(), ht.detach().numpy(), **F64)
    (ht ** 2).sum().backward()
    (hl ** 2).sum().backward()
    np.testing.assert_allclose(xl.grad.numpy(), x.grad.numpy(), **F64)


# --- dropout with one layer warns as PyTorch -------------------------------------------------
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_dropout_one_layer_warns_like_torch(mode):
    with warnings.catch_warnings(record=True) as wt:
        warnings.simplefilter("always")
        getattr(torch.nn, mode)(3, 4, dropout=0.5)
    with pytest.warns(UserWarning) as wl:
        getattr(tl.nn, mode)(3, 4, dropout=0.5)
    assert [str(w.message) for w in wl] == [str(w.message) for w in wt]
    assert wl[0].filename == __file__       # points at the user's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(tl.nn, mode)(3, 4, dropout=0.5, num_layers=2)
        getattr(tl.nn, mode)(3, 4)


# --- ctc_loss's gradient with respect to a leaf log_probs, as documented ----------------------
def test_ctc_leaf_gradient_convention():
    rng = np.random.default_rng(0)
    lp = torch.tensor(rng.standard_normal((12, 2, 5)), dtype=torch.float64).log_softmax(2)
    lp = lp.detach().requires_grad_()
    tg, il, tl_ = torch.tensor([[1, 2, 3], [4, 1, 0]]), [12, 12], [3, 2]
    torch.nn.functional.ctc_loss(lp, tg, il, tl_, reduction="sum").backward()
    lpl = tl.tensor(lp.detach().numpy(), requires_grad=True)
    tl.nn.functional.ctc_loss(lpl, tl.tensor(tg.numpy()), il, tl_, reduction="sum").backward()
    # PyTorch's leaf gradient = exp(log_probs) - posterior; tensorlib's = -posterior
    np.testing.assert_allclose(lpl.grad.numpy() + np.exp(lp.detach().numpy()),
                               lp.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert "exp(log_probs)" in tl.nn.functional.ctc_loss.__doc__
