"""nn.LSTM / nn.GRU / nn.RNN on the whole-sequence ops (lstm_seq, gru_seq, rnn_seq): PyTorch
parity of outputs, final states and every gradient; finite differences in float64 (first and
second order); one captured graph, one saved graph file and one ONNX model (LSTM/GRU/RNN
nodes, checked in onnxruntime and imported back) for every sequence length and batch; ONNX
LSTM/GRU/RNN import with a dynamic sequence axis."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.ops import nn_rnn_seq as S

torch = pytest.importorskip("torch")

I, H = 3, 4
KINDS = {"LSTM": ("LSTM", {}), "GRU": ("GRU", {}), "RNN_TANH": ("RNN", {}),
         "RNN_RELU": ("RNN", {"nonlinearity": "relu"})}
SEQ_OP = {"LSTM": "lstm_seq", "GRU": "gru_seq", "RNN_TANH": "rnn_seq", "RNN_RELU": "rnn_seq"}
ONNX_OP = {"LSTM": "LSTM", "GRU": "GRU", "RNN_TANH": "RNN", "RNN_RELU": "RNN"}


def _pair(kind, seed=0, **kw):
    """A tensorlib layer and a PyTorch one with the same weights."""
    cls, extra = KINDS[kind]
    torch.manual_seed(seed)
    ref = getattr(torch.nn, cls)(I, H, **extra, **kw)
    mine = getattr(nn, cls)(I, H, **extra, **kw)
    for name, p in ref.named_parameters():
        getattr(mine, name).data[...] = tl.tensor(p.detach().numpy())
    return mine, ref


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _close(got, want, what="", tol=2e-5):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=tol, atol=tol,
                               err_msg=what)


def _ops(g) -> set:
    return {n.op for n in g.nodes}


# --- PyTorch parity --------------------------------------------------------------------------
CONFIGS = [  # num_layers, bidirectional, batch_first, initial state, bias
    (1, False, False, False, True),
    (2, True, True, True, True),
    (2, False, False, True, False),
    (1, True, False, False, False),
    (2, True, False, True, True),
]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("layers,bidir,batch_first,with_state,bias", CONFIGS)
def test_outputs_states_and_all_gradients_match_torch(kind, layers, bidir, batch_first,
                                                      with_state, bias):
    mine, ref = _pair(kind, num_layers=layers, bidirectional=bidir, batch_first=batch_first,
                      bias=bias)
    T, N, D = 5, 3, 2 if bidir else 1
    xa = _x(N, T, I) if batch_first else _x(T, N, I)
    lstm = kind == "LSTM"
    states = [_x(layers * D, N, H, seed=k + 1) for k in range(2 if lstm else 1)]
    tx = torch.tensor(xa, requires_grad=True)
    x = tl.tensor(xa, requires_grad=True)
    t_st = [torch.tensor(s, requires_grad=True) for s in states]
    m_st = [tl.tensor(s, requires_grad=True) for s in states]
    if with_state:
        want = ref(tx, tuple(t_st) if lstm else t_st[0])
        got = mine(x, tuple(m_st) if lstm else m_st[0])
    else:
        want, got = ref(tx), mine(x)
    want_out = [want[0], *(want[1] if lstm else (want[1],))]
    got_out = [got[0], *(got[1] if lstm else (got[1],))]
    for k, (g, w) in enumerate(zip(got_out, want_out)):
        assert tuple(g.shape) == tuple(w.shape)
        _close(g.numpy(), w.detach().numpy(), f"output {k}")
    # one backward through every output, with random cotangents
    rng = np.random.default_rng(7)
    cots = [rng.standard_normal(tuple(w.shape)).astype(np.float32) for w in want_out]
    sum((w * torch.tensor(c)).sum() for w, c in zip(want_out, cots)).backward()
    sum((g * tl.tensor(c)).sum() for g, c in zip(got_out, cots)).backward()
    _close(x.grad.numpy(), tx.grad.numpy(), "x.grad")
    if with_state:
        for k, (m, t) in enumerate(zip(m_st, t_st)):
            _close(m.grad.numpy(), t.grad.numpy(), f"state {k} grad")
    for name, p in ref.named_parameters():
        _close(getattr(mine, name).grad.numpy(), p.grad.numpy(), f"{name}.grad", 5e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_unbatched_input_with_a_state_matches_torch(kind):
    mine, ref = _pair(kind, num_layers=2, bidirectional=True)
    xa, ha = _x(6, I), _x(4, H, seed=1)
    if kind == "LSTM":
        got, want = mine(tl.tensor(xa), (tl.tensor(ha), tl.tensor(ha * 0.5))), \
            ref(torch.tensor(xa), (torch.tensor(ha), torch.tensor(ha * 0.5)))
        _close(got[1][1].numpy(), want[1][1].detach().numpy())
        got, want = (got[0], got[1][0]), (want[0], want[1][0])
    else:
        got, want = mine(tl.tensor(xa), tl.tensor(ha)), ref(torch.tensor(xa), torch.tensor(ha))
    _close(got[0].numpy(), want[0].detach().numpy())
    _close(got[1].numpy(), want[1].detach().numpy())


def test_the_layers_run_on_the_sequence_ops():
    # one op per layer direction, no per-step cell ops
    for kind in KINDS:
        mine, _ = _pair(kind, num_layers=2, bidirectional=True)
        x = tl.tensor(_x(5, 2, I))
        with tl.capture(x) as g:
            out = mine(x)[0]
        g.set_outputs(out)
        ops = [n.op for n in g.nodes]
        assert ops.count(SEQ_OP[kind]) == 4, ops
        assert not {"lstm_cell", "tanh", "relu", "sigmoid"} & set(ops), ops


def test_dropout_between_layers_in_training():
    mine, ref = _pair("LSTM", num_layers=2, dropout=1.0)
    mine.train()
    ref.train()
    xa = _x(4, 2, I)
    # p = 1: the second layer reads zeros, deterministically in both libraries
    _close(mine(tl.tensor(xa))[0].numpy(), ref(torch.tensor(xa))[0].detach().numpy())
    mine.dropout = 0.5
    tl.manual_seed(3)
    x = tl.tensor(xa, requires_grad=True)
    train_out = mine(x)[0]
    train_out.sum().backward()
    assert x.grad is not None and np.isfinite(x.grad.numpy()).all()
    mine.eval()
    ref.eval()
    eval_out = mine(tl.tensor(xa))[0]
    _close(eval_out.numpy(), ref(torch.tensor(xa))[0].detach().numpy())
    assert not np.allclose(train_out.numpy(), eval_out.numpy())


def test_lstm_with_a_projection_keeps_matching_torch():
    mine, ref = _pair("LSTM", num_layers=2, proj_size=2, bidirectional=True)
    xa = _x(5, 2, I)
    got, want = mine(tl.tensor(xa)), ref(torch.tensor(xa))
    _close(got[0].numpy(), want[0].detach().numpy())
    _close(got[1][0].numpy(), want[1][0].detach().numpy())
    _close(got[1][1].numpy(), want[1][1].detach().numpy())


# --- finite differences (float64) --------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
def test_module_gradcheck_and_gradgradcheck_float64(kind):
    cls, extra = KINDS[kind]
    tl.manual_seed(0)
    m = getattr(nn, cls)(2, 2, num_layers=2, bidirectional=True, dtype=tl.float64, **extra)
    rng = np.random.default_rng(0)
    x = tl.tensor(rng.uniform(-1, 1, (3, 2, 2)), requires_grad=True)
    h0 = tl.tensor(rng.uniform(-1, 1, (4, 2, 2)), requires_grad=True)
    if kind == "LSTM":
        c0 = tl.tensor(rng.uniform(-1, 1, (4, 2, 2)), requires_grad=True)

        def fn(x, h0, c0):
            out, (h, c) = m(x, (h0, c0))
            return out, h, c
        ins = [x, h0, c0]
    else:
        def fn(x, h0):
            return m(x, h0)
        ins = [x, h0]
    assert tl.gradcheck(fn, ins, eps=1e-6, atol=1e-5, rtol=1e-4)
    assert tl.gradgradcheck(fn, ins, eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("op", ["lstm_seq", "gru_seq", "rnn_seq"])
@pytest.mark.parametrize("reverse", [False, True])
def test_op_gradients_including_the_workspace_outputs_float64(op, reverse):
    # every output of the op, workspace included: the vjp takes gradients on all of them
    rng = np.random.default_rng(1)
    G = {"lstm_seq": 4, "gru_seq": 3, "rnn_seq": 1}[op] * 2

    def t(*shape):
        return tl.tensor(rng.uniform(-1, 1, shape), requires_grad=True)
    states = [t(2, 2)] * (2 if op == "lstm_seq" else 1)
    ins = [t(3, 2, 2), *[t(2, 2) for _ in states], t(G, 2), t(G, 2), t(G), t(G)]

    def fn(*ts):
        return tl.apply(tl.REGISTRY[op], *ts, reverse=reverse)
    assert tl.gradcheck(fn, ins, eps=1e-6, atol=1e-5, rtol=1e-4)
    assert tl.gradgradcheck(fn, ins, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_zero_steps_return_the_initial_state():
    x = tl.zeros(0, 2, I)
    h0 = tl.tensor(_x(2, H), requires_grad=True)
    c0 = tl.tensor(_x(2, H, seed=1), requires_grad=True)
    w_ih, w_hh = tl.tensor(_x(4 * H, I)), tl.tensor(_x(4 * H, H))
    y, h, c = S.lstm_seq(x, h0, c0, w_ih, w_hh)
    assert tuple(y.shape) == (0, 2, H)
    _close(h.numpy(), h0.numpy())
    _close(c.numpy(), c0.numpy())
    (h.sum() + 2 * c.sum()).backward()
    _close(h0.grad.numpy(), np.ones((2, H)))
    _close(c0.grad.numpy(), 2 * np.ones((2, H)))


def test_bad_operands_raise_clear_errors():
    x, h = tl.randn(5, 2, I), tl.randn(2, H)
    w_ih, w_hh = tl.randn(3 * H, I), tl.randn(3 * H, H)
    with pytest.raises(ValueError, match=r"gru_seq: x of shape \(2, 3\) must be 3-d"):
        S.gru_seq(tl.randn(2, 3), h, w_ih, w_hh)
    with pytest.raises(ValueError, match=r"gru_seq: w_ih of shape \(12, 4\) must be"):
        S.gru_seq(x, h, tl.randn(3 * H, 4), w_hh)
    with pytest.raises(ValueError, match="do not agree on"):
        S.gru_seq(x, tl.randn(3, H), w_ih, w_hh)
    with pytest.raises(ValueError, match="both biases"):
        S.gru_seq(x, h, w_ih, w_hh, b_ih=tl.randn(3 * H))
    with pytest.raises(TypeError, match="one float or complex dtype"):
        S.gru_seq(x, h.double(), w_ih, w_hh)
    with pytest.raises(ValueError, match="nonlinearity"):
        S.rnn_seq(x, h, tl.randn(H, I), tl.randn(H, H), nonlinearity="gelu")
    # straight to the op (as a loaded graph would): checked before the kernel runs
    with pytest.raises(ValueError, match=r"lstm_seq: w_hh of shape \(12, 4\)"):
        tl.apply(S.LSTM_SEQ, x, h, h, tl.randn(4 * H, I), w_hh)


# --- one graph for every length ----------------------------------------------------------------
class Tagger(nn.Module):
    """A recurrent layer and a linear readout; returns the readout and the final state."""

    def __init__(self, kind, **kw):
        super().__init__()
        self.rnn, _ = _pair(kind, **kw)
        self.lstm = kind == "LSTM"
        self.lin = nn.Linear(H * (2 if kw.get("bidirectional") else 1), 2)

    def forward(self, x):
        out, st = self.rnn(x)
        return self.lin(out), (st[0] if self.lstm else st)


def _shapes(batch_first):
    return [(n, t) if batch_first else (t, n) for n, t in ((2, 5), (3, 9), (1, 2), (4, 5))]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("batch_first", [True, False])
def test_capture_with_none_batch_and_time_traces_once(kind, batch_first):
    m = Tagger(kind, num_layers=2, bidirectional=True, batch_first=batch_first).eval()
    f = tl.function(m, input_signature=[tl.TensorSpec((None, None, I))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # no "traced per sequence length" warning
        with tl.no_grad():
            for k, s in enumerate(_shapes(batch_first)):
                x = tl.tensor(_x(*s, I, seed=k))
                got, want = f(x), m(x)
                for g, w in zip(got, want):
                    assert tuple(g.shape) == tuple(w.shape)
                    _close(g.numpy(), w.numpy())
    assert f.trace_count == 1
    assert SEQ_OP[kind] in _ops(f.graphs[0])


@pytest.mark.parametrize("kind", list(KINDS))
def test_saved_graph_runs_at_other_lengths_and_batches(kind, tmp_path):
    m = Tagger(kind, num_layers=2, bidirectional=True, batch_first=True).eval()
    f = tl.function(m, input_signature=[tl.TensorSpec((None, None, I))])
    with tl.no_grad():
        f(tl.tensor(_x(2, 5, I)))
    tl.save_graph(f, tmp_path / "m.tlg")
    g = tl.load_graph(tmp_path / "m.tlg")
    with tl.no_grad():
        for k, (n, t) in enumerate(((1, 9), (3, 2), (4, 13))):
            x = tl.tensor(_x(n, t, I, seed=k))
            for a, b in zip(g(x), m(x)):
                _close(a.numpy(), b.numpy())


# --- ONNX ----------------------------------------------------------------------------------------
def _onnx():
    return pytest.importorskip("onnx"), pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("batch_first", [True, False])
def test_onnx_export_with_dynamic_batch_and_time(kind, batch_first, tmp_path):
    onnx, ort = _onnx()
    m = Tagger(kind, num_layers=2, bidirectional=True, batch_first=batch_first).eval()
    path = tmp_path / "m.onnx"
    shapes = _shapes(batch_first)
    tl.onnx.export(m, (tl.tensor(_x(*shapes[0], I)),), path, dynamic_axes={0: [0, 1]})
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    types = [n.op_type for n in proto.graph.node]
    assert types.count(ONNX_OP[kind]) == 4, types          # one node per layer direction
    assert not {"Loop", "Scan"} & set(types)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_param
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    back = tl.onnx.load(path)
    assert SEQ_OP[kind] in _ops(back.graph if hasattr(back, "graph") else back)
    with tl.no_grad():
        for k, s in enumerate(shapes[1:]):
            xa = _x(*s, I, seed=k + 1)
            want = [w.numpy() for w in m(tl.tensor(xa))]
            got = sess.run(None, {"input0": xa})
            imported = back(xa)
            for g, i, w in zip(got, imported, want):
                _close(g, w, "onnxruntime", 1e-4)
                _close(i.numpy(), w, "tl.onnx.load", 1e-4)


@pytest.mark.parametrize("kind", list(KINDS))
def test_torch_exported_model_with_a_dynamic_time_axis_imports(kind, tmp_path):
    onnx, _ = _onnx()
    cls, extra = KINDS[kind]
    torch.manual_seed(0)
    ref = getattr(torch.nn, cls)(I, H, num_layers=2, bidirectional=True, **extra).eval()
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(ref, (torch.tensor(_x(5, 2, I)),), str(path), dynamo=False,
                          input_names=["x"], output_names=["y", "h"],
                          dynamic_axes={"x": {0: "T", 1: "N"}})
    assert ONNX_OP[kind] in {n.op_type for n in onnx.load(str(path)).graph.node}
    g = tl.onnx.load(path)
    assert SEQ_OP[kind] in _ops(g.graph if hasattr(g, "graph") else g)
    for k, (t, n) in enumerate(((9, 3), (2, 1))):
        xa = _x(t, n, I, seed=k)
        with torch.no_grad():
            want = ref(torch.tensor(xa))
        with tl.no_grad():
            got = g(xa)
        _close(got[0].numpy(), want[0].numpy(), "y", 1e-4)
        _close(got[1].numpy(), (want[1][0] if kind == "LSTM" else want[1]).numpy(), "h", 1e-4)


def _onnx_layer(kind, direction, layout, with_state, seed=0, lbr=1):
    """One ONNX LSTM/GRU/RNN node with symbolic T and N (helper API)."""
    onnx, _ = _onnx()
    from onnx import TensorProto, helper, numpy_helper
    op = ONNX_OP[kind]
    G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    D = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array((rng.standard_normal((D, G * H, I)) * .5)
                                     .astype(np.float32), "W"),
             numpy_helper.from_array((rng.standard_normal((D, G * H, H)) * .5)
                                     .astype(np.float32), "R"),
             numpy_helper.from_array(rng.standard_normal((D, 2 * G * H)).astype(np.float32),
                                     "B")]
    xdims = ["N", "T", I] if layout else ["T", "N", I]
    sdims = ["N", D, H] if layout else [D, "N", H]
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, xdims)]
    names = ["X", "W", "R", "B", ""]
    n_states = 2 if op == "LSTM" else 1
    if with_state:
        for s in ("H0", "C0")[:n_states]:
            names.append(s)
            inputs.append(helper.make_tensor_value_info(s, TensorProto.FLOAT, sdims))
    attrs = {"hidden_size": H, "direction": direction, "layout": layout}
    if op == "GRU":
        attrs["linear_before_reset"] = lbr
    if kind == "RNN_RELU":
        attrs["activations"] = ["Relu"] * D
    outs = ["Y", "Y_h", "Y_c"][:1 + n_states]
    ydims = ["N", "T", D, H] if layout else ["T", D, "N", H]
    node = helper.make_node(op, names, outs, **attrs)
    graph = helper.make_graph([node], "rnn", inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT,
                                                             ydims if o == "Y" else sdims)
                               for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.checker.check_model(model)
    return model, D


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("direction,layout,with_state", [
    ("forward", 0, True), ("reverse", 1, False), ("bidirectional", 0, False),
    ("bidirectional", 1, True)])
def test_onnx_recurrent_node_imports_with_a_dynamic_time_axis(kind, direction, layout,
                                                              with_state, tmp_path):
    onnx, ort = _onnx()
    model, D = _onnx_layer(kind, direction, layout, with_state)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    g = tl.onnx.load(path)
    # onnxruntime runs only layout 0: the batch-first model's reference is the same weights
    # in layout 0, on transposed inputs and outputs
    onnx.save(_onnx_layer(kind, direction, 0, with_state)[0], str(tmp_path / "ref.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "ref.onnx"), providers=["CPUExecutionProvider"])
    for k, (t, n) in enumerate(((4, 3), (7, 1))):
        feeds = {"X": _x(t, n, I, seed=k)}
        if with_state:
            for s in ("H0", "C0")[:2 if kind == "LSTM" else 1]:
                feeds[s] = _x(D, n, H, seed=k + 5)
        want = sess.run(None, feeds)
        if layout:
            feeds = {k: v.swapaxes(0, 1) for k, v in feeds.items()}
            want = [want[0].transpose(2, 0, 1, 3)] + [w.swapaxes(0, 1) for w in want[1:]]
        with tl.no_grad():
            got = g(*feeds.values())
        assert len(got) == len(want)
        for a, w in zip(got, want):
            _close(a.numpy(), w, "", 1e-4)


def test_an_onnx_gru_with_linear_before_reset_0_needs_a_static_length(tmp_path):
    onnx, _ = _onnx()
    # that form stays unrolled at import: a dynamic time axis is refused with what to do
    model, _ = _onnx_layer("GRU", "forward", 0, False, lbr=0)
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(NotImplementedError, match="linear_before_reset=0 over a dynamic "
                                                  "sequence length.*linear_before_reset=1"):
        tl.onnx.load(tmp_path / "m.onnx")


class _ArrayModule:
    """NumPy behind another module object: the kernels take their generic (CuPy) branch."""

    def __getattr__(self, name):
        return getattr(np, name)


@pytest.mark.parametrize("op", ["lstm_seq", "gru_seq", "rnn_seq"])
@pytest.mark.parametrize("reverse", [False, True])
def test_the_generic_array_module_kernels_match_the_cpu_ones(op, reverse):
    # the forward and BPTT kernels a GPU runs (the same code on CuPy) against the CPU's
    # fused float32 ones
    rng = np.random.default_rng(2)
    G = {"lstm_seq": 4, "gru_seq": 3, "rnn_seq": 1}[op] * H
    ns = 2 if op == "lstm_seq" else 1
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)   # noqa: E731
    ins = [f32(6, 3, I), *[f32(3, H) for _ in range(ns)], f32(G, I), f32(G, H), f32(G), f32(G)]
    attrs = {"reverse": reverse, **({"nonlinearity": "relu"} if op == "rnn_seq" else {})}
    fwd, grad = tl.REGISTRY[op], tl.REGISTRY[op + "_grad"]
    want = fwd.cpu(*ins, **attrs)
    got = fwd.fwd(_ArrayModule(), *ins, **attrs)
    for a, b in zip(got, want):
        _close(a, b, "forward", 1e-5)
    saved = [want[k] for k in {"lstm_seq": (0, 3, 4), "gru_seq": (0, 2), "rnn_seq": (0,)}[op]]
    cots = [f32(*o.shape) for o in want]
    need = tuple(range(len(ins)))
    args = [*ins[:3 + ns], *saved, *cots]
    for a, b in zip(grad.fwd(_ArrayModule(), *args, need=need, **attrs),
                    grad.cpu(*args, need=need, **attrs)):
        _close(a, b, "backward", 1e-4)
