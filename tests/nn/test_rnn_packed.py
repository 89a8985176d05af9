"""Packed variable-length batches (nn.utils.rnn) and the recurrent layers on them, and
LSTM's proj_size, against PyTorch: torch's weights copied into ours, float64, then the
outputs, final states and the gradients of inputs, initial states and every parameter."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import nn
from tensorlib.nn.utils import rnn as U

torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install torch==2.13.0)")
pytestmark = pytest.mark.torch
TU = torch.nn.utils.rnn

MODES = ["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]


def _pair(mode, input_size, hidden, layers=1, bidirectional=False, batch_first=False,
          bias=True, proj_size=0):
    """(ours, torch's) with the same float64 weights."""
    kw = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
              bias=bias)
    if proj_size:
        kw["proj_size"] = proj_size
    if mode.startswith("RNN"):
        kw["nonlinearity"] = "tanh" if mode == "RNN_TANH" else "relu"
    cls = mode[:3] if mode.startswith("RNN") else mode
    theirs = getattr(torch.nn, cls)(input_size, hidden, dtype=torch.float64, **kw)
    ours = getattr(nn, cls)(input_size, hidden, dtype="float64", **kw)
    ours.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})     # strict: names and shapes
    return ours, theirs


def _close(a, b, what, tol=1e-10):
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert tuple(a.shape) == tuple(b.shape), what
    np.testing.assert_allclose(a.numpy(), b, rtol=tol, atol=tol, err_msg=what)


def _check_packed(mode, lengths, *, layers=1, bidirectional=False, batch_first=False,
                  enforce_sorted=True, with_hx=False, proj_size=0, bias=True, extra_pad=0,
                  input_size=3, hidden=5, seed=0):
    """Pack a padded batch, run both libraries, pad the output back, compare everything."""
    rng = np.random.default_rng(seed)
    if enforce_sorted:
        lengths = sorted(lengths, reverse=True)
    B, T = len(lengths), max(lengths) + extra_pad
    ours, theirs = _pair(mode, input_size, hidden, layers, bidirectional, batch_first, bias,
                         proj_size)
    x = rng.standard_normal((B, T, input_size) if batch_first else (T, B, input_size))
    dirs = 2 if bidirectional else 1
    out_f = proj_size or hidden
    hx = None
    if with_hx:
        hx = [rng.standard_normal((layers * dirs, B, out_f))]
        if mode == "LSTM":
            hx.append(rng.standard_normal((layers * dirs, B, hidden)))
    xo, xt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ho = [tl.tensor(h, requires_grad=True) for h in hx] if hx else []
    ht = [torch.tensor(h, requires_grad=True) for h in hx] if hx else []

    def state(hs):
        if not hs:
            return None
        return tuple(hs) if mode == "LSTM" else hs[0]

    po = U.pack_padded_sequence(xo, lengths, batch_first=batch_first,
                                enforce_sorted=enforce_sorted)
    pt = TU.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first,
                                 enforce_sorted=enforce_sorted)
    # torch's sort need not be stable: tied lengths may be packed in another order, which
    # changes the packed rows but not the padded results compared below
    same_order = po.sorted_indices is None or (po.sorted_indices.tolist()
                                               == pt.sorted_indices.tolist())
    if same_order:
        _close(po.data, pt.data, "packed data")
    assert po.batch_sizes.tolist() == pt.batch_sizes.tolist()
    out_o, st_o = ours(po, state(ho))
    out_t, st_t = theirs(pt, state(ht))
    assert isinstance(out_o, U.PackedSequence)
    assert out_o.batch_sizes.tolist() == out_t.batch_sizes.tolist()
    if same_order:
        _close(out_o.data, out_t.data, "packed output")
    pad_o, len_o = U.pad_packed_sequence(out_o, batch_first=batch_first, total_length=T)
    pad_t, len_t = TU.pad_packed_sequence(out_t, batch_first=batch_first, total_length=T)
    _close(pad_o, pad_t, "padded output")
    assert len_o.tolist() == len_t.tolist() == list(lengths)
    finals_o = list(st_o) if mode == "LSTM" else [st_o]
    finals_t = list(st_t) if mode == "LSTM" else [st_t]
    for name, a, b in zip(("h_n", "c_n"), finals_o, finals_t):
        _close(a, b, name)
    # a random cotangent on every output, so every path into every gradient is checked
    cots = [rng.standard_normal(tuple(a.shape)) for a in [pad_o] + finals_o]
    loss_o = sum(((a * tl.tensor(g)).sum() for a, g in zip([pad_o] + finals_o, cots)),
                 tl.tensor(0.0, dtype="float64"))
    loss_t = sum((a * torch.tensor(g)).sum() for a, g in zip([pad_t] + finals_t, cots))
    loss_o.backward()
    loss_t.backward()
    _close(xo.grad, xt.grad, "grad of input")
    for i, (a, b) in enumerate(zip(ho, ht)):
        _close(a.grad, b.grad, f"grad of hx[{i}]")
    tparams = dict(theirs.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert names == list(tparams)
    for name, p in ours.named_parameters():
        _close(p.grad, tparams[name].grad, f"grad of {name}")


# --- the layers on packed input --------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (1, True),
                                                  (2, True)])
def test_packed_layers_match_torch(mode, layers, bidirectional):
    _check_packed(mode, [4, 1, 3, 4, 2], layers=layers, bidirectional=bidirectional,
                  enforce_sorted=False, with_hx=True)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_packed_layout_options_match_torch(mode, batch_first, enforce_sorted):
    _check_packed(mode, [2, 5, 1, 3], layers=2, bidirectional=True, batch_first=batch_first,
                  enforce_sorted=enforce_sorted, with_hx=False, extra_pad=2)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_packed_lstm_proj_size_matches_torch(bidirectional, with_hx, bias):
    _check_packed("LSTM", [3, 5, 1, 5], layers=2, bidirectional=bidirectional,
                  enforce_sorted=False, with_hx=with_hx, proj_size=2, bias=bias, hidden=4)


def test_packed_final_state_is_each_sequences_own_last_step():
    """h_n of a length-2 sequence is its state after step 2, whatever the padding after it;
    the reverse direction's h_n is after it has read the sequence back to step 1."""
    lstm = nn.LSTM(2, 3, bidirectional=True, dtype="float64")
    seq = tl.tensor(np.random.default_rng(1).standard_normal((2, 2)))
    alone = lstm(seq.unsqueeze(1))[1][0]                  # (2, 1, 3): just that sequence
    padded = tl.zeros(4, 2, 2, dtype="float64")
    padded[:2, 1] = seq
    padded[:, 0] = tl.tensor(np.ones((4, 2)))
    h_n = lstm(U.pack_padded_sequence(padded, [4, 2]))[1][0]
    np.testing.assert_allclose(h_n[:, 1].numpy(), alone[:, 0].numpy(), atol=1e-12)
    full = lstm(padded)[1][0]                              # unpacked: runs through the pad
    assert not np.allclose(full[:, 1].numpy(), alone[:, 0].numpy())


@given(mode=st.sampled_from(MODES), lengths=st.lists(st.integers(1, 5), min_size=1,
                                                     max_size=5),
       layers=st.integers(1, 2), bidirectional=st.booleans(), batch_first=st.booleans(),
       enforce_sorted=st.booleans(), with_hx=st.booleans(), proj=st.booleans(),
       bias=st.booleans(), extra_pad=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_packed_layers_fuzz(mode, lengths, layers, bidirectional, batch_first,
                            enforce_sorted, with_hx, proj, bias, extra_pad, seed):
    _check_packed(mode, lengths, layers=layers, bidirectional=bidirectional,
                  batch_first=batch_first, enforce_sorted=enforce_sorted, with_hx=with_hx,
                  proj_size=2 if proj and mode == "LSTM" else 0, bias=bias,
                  extra_pad=extra_pad, seed=seed)


def test_packed_float32_fused_kernel_path():
    """Float32 takes the fused Cython LSTM kernel: still matches torch (looser tolerance)."""
    rng = np.random.default_rng(3)
    theirs = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True)
    ours = nn.LSTM(4, 6, num_layers=2, bidirectional=True)
    ours.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    lengths = [3, 6, 2]
    xo, xt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_o, (h_o, c_o) = ours(U.pack_padded_sequence(xo, lengths, enforce_sorted=False))
    out_t, (h_t, c_t) = theirs(TU.pack_padded_sequence(xt, lengths, enforce_sorted=False))
    for a, b in ((out_o.data, out_t.data), (h_o, h_t), (c_o, c_t)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)
    (out_o.data.sum() + h_o.sum()).backward()
    (out_t.data.sum() + h_t.sum()).backward()
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_packed_backward_with_unused_final_state():
    """Only the output feeds the loss: the split-off rows of the state get no gradient."""
    ours, theirs = _pair("GRU", 3, 4, layers=2)
    x = np.random.default_rng(4).standard_normal((5, 3, 3))
    xo, xt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours(U.pack_padded_sequence(xo, [5, 3, 1]))[0].data.sum().backward()
    theirs(TU.pack_padded_sequence(xt, [5, 3, 1]))[0].data.sum().backward()
    _close(xo.grad, xt.grad, "grad of input")


def test_packed_sequence_through_pack_sequence_and_dropout_shapes():
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5, bidirectional=True)
    p = U.pack_sequence([tl.randn(2, 3), tl.randn(5, 3), tl.randn(1, 3)], enforce_sorted=False)
    out, (h, c) = lstm(p)
    assert tuple(out.data.shape) == (8, 8) and tuple(h.shape) == (4, 3, 4)
    assert out.sorted_indices.tolist() == [1, 0, 2]


def test_packed_input_errors():
    lstm = nn.LSTM(3, 4)
    p = U.pack_sequence([tl.randn(3, 3), tl.randn(2, 3)])
    with pytest.raises(ValueError, match=r"LSTM: expected h0 of shape \(1, 2, 4\)"):
        lstm(p, (tl.zeros(1, 3, 4), tl.zeros(1, 3, 4)))
    with pytest.raises(ValueError, match=r"LSTM: expected packed data of shape \(steps, 3\)"):
        lstm(U.pack_sequence([tl.randn(3, 5)]))
    with pytest.raises(TypeError, match="GRU: hx must be one tensor"):
        nn.GRU(3, 4)(p, (tl.zeros(1, 2, 4), tl.zeros(1, 2, 4)))


def test_packed_input_under_capture_raises_clearly():
    lstm = nn.LSTM(3, 4)
    f = tl.function(lambda x: lstm(U.pack_padded_sequence(x, [2, 1]))[1][0])
    with pytest.raises(NotImplementedError, match="not supported under graph capture"):
        f(tl.randn(2, 2, 3))


# --- proj_size on padded input ----------------------------------------------------------
@pytest.mark.parametrize("layers,bidirectional,batch_first", [(1, False, False),
                                                              (2, True, True),
                                                              (2, False, True)])
@pytest.mark.parametrize("with_hx", [False, True])
def test_lstm_proj_size_matches_torch(layers, bidirectional, batch_first, with_hx):
    rng = np.random.default_rng(5)
    ours, theirs = _pair("LSTM", 3, 5, layers, bidirectional, batch_first, proj_size=2)
    for n, p in ours.named_parameters():   # PyTorch's names and shapes (load was strict)
        if "weight_hr" in n:
            assert tuple(p.shape) == (2, 5)
    x = rng.standard_normal((2, 4, 3) if batch_first else (4, 2, 3))
    d = (2 if bidirectional else 1) * layers
    hx = [rng.standard_normal((d, 2, 2)), rng.standard_normal((d, 2, 5))] if with_hx else []
    xo, xt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ho = [tl.tensor(h, requires_grad=True) for h in hx]
    ht = [torch.tensor(h, requires_grad=True) for h in hx]
    out_o, (h_o, c_o) = ours(xo, tuple(ho) if ho else None)
    out_t, (h_t, c_t) = theirs(xt, tuple(ht) if ht else None)
    for what, a, b in (("output", out_o, out_t), ("h_n", h_o, h_t), ("c_n", c_o, c_t)):
        _close(a, b, what)
    assert tuple(h_o.shape)[-1] == 2 and tuple(c_o.shape)[-1] == 5
    cots = [rng.standard_normal(tuple(a.shape)) for a in (out_o, h_o, c_o)]
    sum((a * tl.tensor(g)).sum() for a, g in zip((out_o, h_o, c_o), cots)).backward()
    sum((a * torch.tensor(g)).sum() for a, g in zip((out_t, h_t, c_t), cots)).backward()
    _close(xo.grad, xt.grad, "grad of input")
    for a, b in zip(ho, ht):
        _close(a.grad, b.grad, "grad of hx")
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, tparams[name].grad, f"grad of {name}")


def test_lstm_proj_size_unbatched_and_init():
    ours, theirs = _pair("LSTM", 3, 5, proj_size=2)
    x = np.random.default_rng(6).standard_normal((4, 3))
    out_o, (h_o, c_o) = ours(tl.tensor(x))
    out_t, (h_t, c_t) = theirs(torch.tensor(x))
    _close(out_o, out_t, "output")
    _close(h_o, h_t, "h_n")
    _close(c_o, c_t, "c_n")
    lstm = nn.LSTM(3, 100, proj_size=7)
    w = lstm.weight_hr_l0.numpy()
    assert w.shape == (7, 100) and np.abs(w).max() <= 0.1 and np.abs(w).max() > 0.05
    assert "proj_size=7" in repr(lstm)
    assert [n for n, _ in lstm.named_parameters()] == [
        n for n, _ in torch.nn.LSTM(3, 100, proj_size=7).named_parameters()]


def test_proj_size_errors():
    with pytest.raises(ValueError, match="LSTM: proj_size .* must be smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="LSTM: proj_size must be a positive integer"):
        nn.LSTM(3, 4, proj_size=-1)
    with pytest.raises(ValueError, match="GRU: proj_size is only supported by LSTM"):
        nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match=r"LSTM: expected c0 of shape \(1, 2, 4\)"):
        nn.LSTM(3, 4, proj_size=2)(tl.randn(5, 2, 3), (tl.zeros(1, 2, 2), tl.zeros(1, 2, 2)))


# --- the utilities ----------------------------------------------------------------------
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("enforce_sorted", [False, True])
@pytest.mark.parametrize("tail", [(), (2,), (2, 3)])
def test_pack_pad_roundtrip_matches_torch(batch_first, enforce_sorted, tail):
    rng = np.random.default_rng(7)
    lengths = [4, 4, 2, 1] if enforce_sorted else [1, 4, 2, 4]
    x = rng.standard_normal(((4, 5) if batch_first else (5, 4)) + tail)
    xo, xt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    po = U.pack_padded_sequence(xo, tl.tensor(lengths), batch_first, enforce_sorted)
    pt = TU.pack_padded_sequence(xt, torch.tensor(lengths), batch_first, enforce_sorted)
    _close(po.data, pt.data, "data")
    assert po.batch_sizes.tolist() == pt.batch_sizes.tolist()
    assert po.batch_sizes.dtype == np.int64 and po.batch_sizes.device.type == "cpu"
    for a, b in ((po.sorted_indices, pt.sorted_indices),
                 (po.unsorted_indices, pt.unsorted_indices)):
        assert (a is None) == (b is None) and (a is None or a.tolist() == b.tolist())
    for total, pad in ((None, 0.0), (7, -2.5)):
        out_o, len_o = U.pad_packed_sequence(po, batch_first, pad, total)
        out_t, len_t = TU.pad_packed_sequence(pt, batch_first, pad, total)
        _close(out_o, out_t, f"padded (total_length={total}, padding_value={pad})")
        assert len_o.tolist() == len_t.tolist() and len_o.dtype == np.int64
    g = rng.standard_normal(tuple(out_o.shape))
    (out_o * tl.tensor(g)).sum().backward()
    (out_t * torch.tensor(g)).sum().backward()
    _close(xo.grad, xt.grad, "grad through pack and pad")


@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_pack_sequence_and_unpack_match_torch(enforce_sorted):
    rng = np.random.default_rng(8)
    shapes = [(5, 2), (3, 2), (3, 2), (1, 2)] if enforce_sorted else [(3, 2), (5, 2), (1, 2)]
    arrs = [rng.standard_normal(s) for s in shapes]
    so = [tl.tensor(a, requires_grad=True) for a in arrs]
    st_ = [torch.tensor(a, requires_grad=True) for a in arrs]
    po = U.pack_sequence(so, enforce_sorted)
    pt = TU.pack_sequence(st_, enforce_sorted)
    _close(po.data, pt.data, "data")
    assert po.batch_sizes.tolist() == pt.batch_sizes.tolist()
    uo, ut = U.unpack_sequence(po), TU.unpack_sequence(pt)
    assert len(uo) == len(ut)
    for a, b in zip(uo, ut):
        _close(a, b, "unpacked")
    gs = [rng.standard_normal(s) for s in shapes]
    sum((a * tl.tensor(g)).sum() for a, g in zip(uo, gs)).backward()
    sum((a * torch.tensor(g)).sum() for a, g in zip(ut, gs)).backward()
    for a, b in zip(so, st_):
        _close(a.grad, b.grad, "grad through pack_sequence and unpack_sequence")


@pytest.mark.parametrize("batch_first", [False, True])
def test_unpad_sequence_matches_torch(batch_first):
    x = np.random.default_rng(9).standard_normal((3, 4, 2))
    lengths = [2, 4, 1] if batch_first else [3, 1, 3, 2]
    uo = U.unpad_sequence(tl.tensor(x), lengths, batch_first)
    ut = TU.unpad_sequence(torch.tensor(x), torch.tensor(lengths), batch_first)
    for a, b in zip(uo, ut, strict=True):
        _close(a, b, "unpadded")


def test_packed_sequence_is_a_namedtuple_with_inverse_indices():
    p = U.PackedSequence(tl.zeros(3, 2), tl.tensor([2, 1]), tl.tensor([1, 0]))
    data, batch_sizes, sorted_idx, unsorted_idx = p
    assert unsorted_idx.tolist() == [1, 0] and p.data is data
    assert p.double().data.dtype == np.float64 and not p.is_cuda


def test_pack_padded_sequence_errors():
    x = tl.randn(4, 3, 2)
    with pytest.raises(ValueError, match="pack_padded_sequence: lengths must be sorted in "
                                         "decreasing order with enforce_sorted=True"):
        U.pack_padded_sequence(x, [2, 4, 1])
    with pytest.raises(ValueError, match="pack_padded_sequence: every length must be at "
                                         "least 1"):
        U.pack_padded_sequence(x, [4, 2, 0])
    with pytest.raises(ValueError, match="pack_padded_sequence: length 5 is longer than the "
                                         "padded input's 4 steps"):
        U.pack_padded_sequence(x, [5, 2, 1])
    with pytest.raises(ValueError, match="pack_padded_sequence: got 2 lengths for a batch "
                                         "of 3 sequences"):
        U.pack_padded_sequence(x, [4, 2])
    with pytest.raises(ValueError, match="pack_padded_sequence: got 2 lengths for a batch "
                                         "of 4 sequences"):
        U.pack_padded_sequence(x, [3, 2], batch_first=True)
    with pytest.raises(ValueError, match="pack_padded_sequence: lengths must be integers"):
        U.pack_padded_sequence(x, [4.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="pack_padded_sequence: lengths must be a 1-D"):
        U.pack_padded_sequence(x, [[4, 2, 1]])
    with pytest.raises(ValueError, match="pack_padded_sequence: expected a padded batch"):
        U.pack_padded_sequence(tl.randn(4), [4])


def test_other_utility_errors():
    p = U.pack_padded_sequence(tl.randn(4, 2, 2), [4, 3])
    with pytest.raises(ValueError, match="pad_packed_sequence: total_length 3 is shorter"):
        U.pad_packed_sequence(p, total_length=3)
    with pytest.raises(TypeError, match="pad_packed_sequence: expected a PackedSequence"):
        U.pad_packed_sequence(tl.randn(4, 2, 2))
    with pytest.raises(ValueError, match="pack_sequence: lengths must be sorted"):
        U.pack_sequence([tl.randn(1, 2), tl.randn(3, 2)])
    with pytest.raises(ValueError, match="pack_sequence: sequence 1 is empty"):
        U.pack_sequence([tl.randn(1, 2), tl.randn(0, 2)], enforce_sorted=False)
    with pytest.raises(ValueError, match="pack_sequence: sequence 1 has shape"):
        U.pack_sequence([tl.randn(3, 2), tl.randn(1, 3)])
    with pytest.raises(ValueError, match="unpad_sequence: got 1 lengths for a batch of 2"):
        U.unpad_sequence(tl.randn(4, 2, 2), [3])


def test_lstm_proj_size_captures_and_exports_with_a_dynamic_batch(tmp_path):
    """proj_size keeps the padded path capturable: a None batch, and ONNX through ORT."""
    lstm = nn.LSTM(4, 5, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
    lstm.eval()

    def model(x):
        out, (h, c) = lstm(x)
        return out, h, c
    x6 = tl.randn(6, 3, 4)
    want = [t.detach().numpy() for t in model(x6)]
    f = tl.function(model, input_signature=[tl.TensorSpec((None, 3, 4))])
    with tl.no_grad():
        f(tl.randn(2, 3, 4))
        for got, w in zip(f(x6), want, strict=True):
            np.testing.assert_allclose(got.numpy(), w, rtol=1e-6, atol=1e-7)
    ort = pytest.importorskip("onnxruntime")
    tl.onnx.export(tl.function(model), (tl.randn(2, 3, 4),), tmp_path / "m.onnx",
                   dynamic_axes={0: [0]})
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for got, w in zip(sess.run(None, {"input0": x6.numpy()}), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
