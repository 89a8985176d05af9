"""Capture with None dims of code whose Python follows a size: RNN loops over time steps and
splits into a Python count of pieces (they fix that size, the batch stays dynamic, one
warning), the Transformer's causal mask (built from tensor ops, it follows the length),
adaptive average pooling (follows H and W), the retrace reason in words, and NumPy arrays
captured as constants (changed in place: retraced)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn
from tensorlib.onnx import UnsupportedOpError

ort = pytest.importorskip("onnxruntime")


def _x(*shape, seed=0):
    return tl.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _calls(f, fn, shapes, feat=4):
    """Run ``f`` and eager ``fn`` on inputs of each shape; returns the warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tl.no_grad():
            for k, s in enumerate(shapes):
                x = _x(*s, *((feat,) if feat else ()), seed=k)
                got, want = f(x), fn(x)
                assert got.shape == want.shape, (s, got.shape, want.shape)
                np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    return [str(w.message) for w in caught]


# --- 1. recurrent layers -------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_with_a_none_time_dim_is_one_graph_for_every_length_and_batch(
        mode, batch_first, bidirectional):
    # each layer direction is one sequence op (lstm_seq, ...), whose time dim the graph
    # keeps symbolic: one trace, no warning, right at every length
    tl.manual_seed(0)
    m = getattr(nn, mode)(4, 8, num_layers=2, batch_first=batch_first,
                          bidirectional=bidirectional).eval()
    fn = lambda x: m(x)[0]          # noqa: E731
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 4))])

    def shape(b, t):
        return (b, t) if batch_first else (t, b)
    msgs = _calls(f, fn, [shape(2, 5), shape(3, 9), shape(4, 5), shape(1, 3), shape(2, 9)])
    assert f.trace_count == 1 and not msgs, msgs
    assert f.graphs[0].inputs[0].shape == (None, None, 4)


def test_a_projection_lstm_still_loops_and_is_traced_per_length():
    # proj_size keeps the per-step path: the graph holds the traced number of steps, so a
    # None time dim is traced per length (with a warning saying so), the batch stays dynamic
    tl.manual_seed(0)
    m = nn.LSTM(4, 8, num_layers=2, proj_size=3, batch_first=True).eval()
    fn = lambda x: m(x)[0]          # noqa: E731
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 4))])
    msgs = _calls(f, fn, [(2, 5), (3, 9), (4, 5), (1, 3), (2, 9)])
    assert f.trace_count == 3
    loops = [w for w in msgs if "loops over the time steps" in w]
    assert len(loops) == 1 and "nn.LSTM" in loops[0] and len(msgs) == 1, msgs
    assert "traced per sequence length" in loops[0]
    g = f.graphs[0]
    assert g.inputs[0].shape[1] == 5 and g.inputs[0].shape[0] is None
    assert any("input 0 axis 1 is 9" in r for r in f.retrace_reasons), f.retrace_reasons


def test_rnn_with_a_fixed_time_dim_and_hidden_state_stays_one_graph():
    m = nn.GRU(4, 8, batch_first=True).eval()
    fn = lambda x, h: m(x, h)[0]        # noqa: E731
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, 6, 4)),
                                         tl.TensorSpec((1, None, 8))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tl.no_grad():
            for n in (2, 5, 1):
                x, h = _x(n, 6, 4, seed=n), _x(1, n, 8, seed=n + 10)
                np.testing.assert_allclose(f(x, h).numpy(), fn(x, h).numpy(), rtol=1e-5,
                                           atol=1e-6)
    assert f.trace_count == 1


def test_projection_lstm_onnx_export_refuses_a_dynamic_time_axis_and_keeps_a_dynamic_batch(
        tmp_path):
    tl.manual_seed(1)
    m = nn.LSTM(4, 8, proj_size=3, batch_first=True).eval()

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = m

        def forward(self, x):
            return self.lstm(x)[0]
    w = Wrap()
    path = tmp_path / "lstm.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UnsupportedOpError,
                           match="loops over the time steps.*input 0 axis 1 = 5.*fixed size"):
            tl.onnx.export(w, (_x(2, 5, 4),), path, dynamic_axes={0: [0, 1]})
        tl.onnx.export(w, (_x(2, 5, 4),), path, dynamic_axes={0: [0]})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 3, 6):
        x = _x(n, 5, 4, seed=n)
        with tl.no_grad():
            want = w(x).numpy()
        np.testing.assert_allclose(sess.run(None, {"input0": x.numpy()})[0], want, rtol=1e-5,
                                   atol=1e-6)
    with pytest.raises(Exception, match="[Dd]imension|[Ss]hape"):
        sess.run(None, {"input0": _x(2, 9, 4).numpy()})


def test_a_saved_lstm_graph_runs_at_other_lengths_and_batches(tmp_path):
    m = nn.LSTM(4, 8, batch_first=True).eval()
    fn = lambda x: m(x)[0]          # noqa: E731
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 4))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tl.no_grad():
            f(_x(2, 5, 4))
    tl.save_graph(f, tmp_path / "m.tlg")
    g = tl.load_graph(tmp_path / "m.tlg")
    with tl.no_grad():
        for n, t in ((1, 5), (4, 5), (2, 3), (3, 9)):
            x = _x(n, t, 4, seed=n + t)
            np.testing.assert_allclose(g(x).numpy(), fn(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("how", ["unbind", "chunk", "split", "len", "split_size",
                                 "iterate"])
def test_splitting_a_none_dim_into_a_python_count_of_pieces_is_traced_per_size(how):
    def fn(x):
        if how == "unbind":
            parts = x.unbind(1)
        elif how == "chunk":
            parts = x.chunk(x.shape[1], 1)
        elif how == "split":
            parts = tl.split(x, x.shape[1], axis=1)
        elif how == "split_size":
            parts = x.split(1, dim=1)
        elif how == "iterate":
            parts = [t * 2 for t in x.swapaxes(0, 1)]
            return tl.stack(parts[::-1])
        else:
            return x[:, : len(x.swapaxes(0, 1)) - 1]
        return tl.stack([p * (k + 1) for k, p in enumerate(parts)][::-1])
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 3))])
    msgs = _calls(f, fn, [(2, 4), (2, 6), (5, 4), (3, 2)], feat=3)
    assert f.trace_count == 3
    assert sum("traced once per input shape along input 0 axis 1" in w for w in msgs) == 1
    assert f.graphs[0].inputs[0].shape == (None, 4, 3)


def test_split_along_a_concrete_dim_keeps_the_none_batch():
    fn = lambda x: tl.stack(x.unbind(1)[::-1], axis=1)    # noqa: E731
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, 3))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _calls(f, fn, [(2,), (7,)], feat=3)
    assert f.trace_count == 1


@pytest.mark.parametrize("how", ["int", "slice", "select", "narrow", "setitem", "transposed",
                                 "array"])
def test_a_python_loop_over_range_of_a_none_size_is_traced_per_size(how):
    # range(x.shape[1]) takes the TracedSize as a plain int; the constant positions the
    # loop reads, all of 0..n-1, tell the trace instead
    cell = nn.RNNCell(3, 5)

    def fn(x):
        h = tl.zeros(x.shape[0], 5)
        if how == "setitem":
            out = tl.zeros(x.shape[0], x.shape[1], 5)
        hs = []
        for t in range(x.shape[1]):
            if how == "int":
                xt = x[:, t]
            elif how == "slice":
                xt = x[:, t:t + 1, :].squeeze(1)
            elif how == "select":
                xt = x.select(1, t)
            elif how == "narrow":
                xt = x.narrow(1, t, 1)[:, 0]
            elif how == "transposed":
                xt = x.transpose(0, 1)[t]
            elif how == "array":
                xt = x[:, np.array([t])][:, 0]
            else:
                xt = x[:, t]
            h = cell(xt, h)
            if how == "setitem":
                out[:, t] = h
            hs.append(h)
        return out if how == "setitem" else tl.stack(hs, 1)
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 3))])
    msgs = _calls(f, fn, [(2, 4), (2, 6), (5, 4), (3, 2)], feat=3)
    assert f.trace_count == 3
    assert sum("each of the 4 positions of the None dim" in w for w in msgs) == 1
    assert f.graphs[0].inputs[0].shape == (None, 4, 3)


def test_reading_some_positions_of_a_none_dim_keeps_it_dynamic():
    # the first tokens, the last and shifted windows are no loop when traced at a length
    # beyond the positions read (at 3, three reads cover it and it is traced per length)
    def fn(x):
        return x[:, 0] + x[:, -1] + x[:, 1] + (x[:, 1:] - x[:, :-1]).sum(1)
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 3))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _calls(f, fn, [(2, 6), (2, 3), (4, 9)], feat=3)
    assert f.trace_count == 1


def test_onnx_export_refuses_a_python_loop_over_a_dynamic_axis(tmp_path):
    class Loop(nn.Module):
        def forward(self, x):
            return tl.stack([x[:, t] * (t + 1) for t in range(x.shape[1])], 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UnsupportedOpError, match="each of the 3 positions"):
            tl.onnx.export(Loop(), (_x(2, 3, 4),), tmp_path / "l.onnx",
                           dynamic_axes={0: [0, 1]})


# --- 2. Transformer's causal mask -------------------------------------------------------------
def test_square_subsequent_mask_eager_matches_torch():
    torch = pytest.importorskip("torch")
    for n in (0, 1, 4, 7):
        got = nn.Transformer.generate_square_subsequent_mask(n)
        want = torch.nn.Transformer.generate_square_subsequent_mask(n)
        assert got.dtype == tl.float32 and got.shape == (n, n)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    m64 = nn.Transformer.generate_square_subsequent_mask(3, dtype=tl.float64)
    assert m64.dtype == tl.float64 and np.isneginf(m64.numpy()[0, 1])


@pytest.mark.parametrize("first", [1, 6])
def test_captured_causal_mask_follows_the_sequence_length(first):
    tl.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).eval()

    def fn(x):
        return layer(x, src_mask=nn.Transformer.generate_square_subsequent_mask(x.shape[1]))
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 8))])
    msgs = _calls(f, fn, [(2, first), (3, 5), (1, 10), (2, 1)], feat=8)
    assert f.trace_count == 1 and not msgs, msgs


def test_exported_causal_mask_follows_the_sequence_length(tmp_path):
    tl.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).eval()

    def fn(x):
        return layer(x, src_mask=nn.Transformer.generate_square_subsequent_mask(x.shape[1]))
    tl.onnx.export(fn, (_x(2, 1, 8),), tmp_path / "t.onnx", dynamic_axes={0: [0, 1]})
    sess = ort.InferenceSession(str(tmp_path / "t.onnx"), providers=["CPUExecutionProvider"])
    for shape in ((2, 1, 8), (3, 7, 8)):
        x = _x(*shape, seed=3)
        with tl.no_grad():
            want = fn(x).numpy()
        np.testing.assert_allclose(sess.run(None, {"input0": x.numpy()})[0], want, rtol=1e-4,
                                   atol=1e-5)


# --- 3. adaptive average pooling --------------------------------------------------------------
class _Head(nn.Module):
    def __init__(self, size=1, one_d=False):
        super().__init__()
        self.one_d, self.size = one_d, size
        self.conv = (nn.Conv1d if one_d else nn.Conv2d)(3, 4, 3, padding=1)

    def forward(self, x):
        h = self.conv(x)
        if self.one_d:
            return F.adaptive_avg_pool1d(h, self.size)
        return F.adaptive_avg_pool2d(h, self.size)


@pytest.mark.parametrize("size", [1, 2, 3, (2, 5), (None, 2)])
def test_adaptive_avg_pool_follows_none_spatial_dims(size):
    tl.manual_seed(0)
    m = _Head(size).eval()
    f = tl.function(m, input_signature=[tl.TensorSpec((None, 3, None, None))])
    msgs = _calls(f, m, [(2, 3, 8, 8), (3, 3, 7, 11), (1, 3, 6, 5)], feat=None)
    assert f.trace_count == 1 and not msgs, msgs


def test_adaptive_avg_pool1d_follows_a_none_length():
    m = _Head(1, one_d=True).eval()
    f = tl.function(m, input_signature=[tl.TensorSpec((None, 3, None))])
    msgs = _calls(f, m, [(2, 3, 8), (4, 3, 5)], feat=None)
    assert f.trace_count == 1 and not msgs, msgs


def test_adaptive_avg_pool_eager_matches_torch():
    torch = pytest.importorskip("torch")
    x = _x(2, 3, 5, 7)
    for size in (1, 3, (5, 7), (2, 4), (None, 3)):
        want = torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x.numpy()), size).numpy()
        np.testing.assert_allclose(F.adaptive_avg_pool2d(x, size).numpy(), want, rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("size", [1, 3])
def test_adaptive_avg_pool_exports_with_dynamic_spatial_axes(size, tmp_path):
    tl.manual_seed(0)
    m = _Head(size).eval()
    tl.onnx.export(m, (_x(2, 3, 8, 8),), tmp_path / "p.onnx", dynamic_axes={0: [0, 2, 3]})
    sess = ort.InferenceSession(str(tmp_path / "p.onnx"), providers=["CPUExecutionProvider"])
    for shape in ((2, 3, 8, 8), (3, 3, 7, 11), (1, 3, 9, 5)):
        x = _x(*shape, seed=5)
        with tl.no_grad():
            want = m(x).numpy()
        np.testing.assert_allclose(sess.run(None, {"input0": x.numpy()})[0], want, rtol=1e-4,
                                   atol=1e-6)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("norm", ["group", "instance"])
def test_group_and_instance_norm_follow_none_spatial_dims_captured_and_in_onnx(
        norm, affine, tmp_path):
    # group_norm is one op over (N, G, D) rows: its reshape's -1 froze D at the traced size;
    # instance_norm checked its spatial count with int()
    tl.manual_seed(0)
    layer = (nn.GroupNorm(4, 8, affine=affine) if norm == "group"
             else nn.InstanceNorm2d(8, affine=affine))
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), layer).eval()
    f = tl.function(m, input_signature=[tl.TensorSpec((None, 3, None, None))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _calls(f, m, [(2, 3, 5, 6), (4, 3, 7, 3)], feat=0)
        tl.onnx.export(m, (_x(2, 3, 5, 6),), tmp_path / "g.onnx", dynamic_axes={0: [0, 2, 3]})
    assert f.trace_count == 1
    sess = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    for shape in ((2, 3, 5, 6), (3, 3, 7, 11), (1, 3, 2, 2)):
        x = _x(*shape, seed=6)
        with tl.no_grad():
            want = m(x).numpy()
        np.testing.assert_allclose(sess.run(None, {"input0": x.numpy()})[0], want, rtol=1e-4,
                                   atol=1e-5)


def test_retrace_reason_of_an_inference_graph_names_the_size_and_where():
    def by_hand(x):
        return x.sum(0) / x.shape[0]
    f = tl.function(by_hand, input_signature=[tl.TensorSpec((None, 3))])
    _calls(f, by_hand, [(2,), (5,)], feat=3)
    (reason,) = f.retrace_reasons
    assert "training step" not in reason
    assert "input 0 axis 0 is 5" in reason and "traced with" in reason
    assert "shape[0]" in reason and "test_capture_loops_and_masks.py" in reason


# --- 6. NumPy arrays captured as constants ----------------------------------------------------
_ARR = np.arange(4, dtype=np.float32)


def test_a_numpy_array_changed_in_place_retraces():
    fa = tl.function(lambda x: x + tl.tensor(_ARR))
    x = tl.ones(4)
    try:
        with tl.no_grad():
            np.testing.assert_array_equal(fa(x).numpy(), [1, 2, 3, 4])
            np.testing.assert_array_equal(fa(x).numpy(), [1, 2, 3, 4])
            _ARR[:] = 10
            np.testing.assert_array_equal(fa(x).numpy(), [11, 11, 11, 11])
            _ARR[1] = np.nan
            assert np.isnan(fa(x).numpy()[1])
            np.testing.assert_array_equal(fa(x).numpy()[[0, 2, 3]], [11, 11, 11])
    finally:
        _ARR[:] = np.arange(4)
    assert fa.trace_count == 3
    assert "NumPy array global '_ARR' was changed in place" in fa.retrace_reasons[0]


def test_a_numpy_array_in_a_closure_or_module_attribute_changed_in_place_retraces():
    table = np.ones((2, 3), np.float32)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = np.full(3, 2.0, np.float32)

        def forward(self, x):
            return x * tl.tensor(self.scale)
    m = M()
    f = tl.function(lambda x: m(x) + tl.tensor(table))
    x = tl.ones(2, 3)
    with tl.no_grad():
        f(x)
        m.scale[0] = 5
        np.testing.assert_array_equal(f(x).numpy()[:, 0], [6, 6])
        table[1, 2] = 0
        np.testing.assert_array_equal(f(x).numpy()[1], [6, 3, 2])
    assert f.trace_count == 3


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_nearest_upsampling_by_whole_factors_follows_none_spatial_dims(mode, tmp_path):
    # the gather indices were built for the traced size: traced per image size, and ONNX
    # export with dynamic H, W refused
    tl.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Upsample(scale_factor=2, mode=mode))
    f = tl.function(m, input_signature=[tl.TensorSpec((None, 3, None, None))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _calls(f, m, [(2, 3, 5, 6), (1, 3, 7, 4)], feat=0)
        tl.onnx.export(m, (_x(2, 3, 5, 6),), tmp_path / "u.onnx", dynamic_axes={0: [0, 2, 3]})
    assert f.trace_count == 1
    sess = ort.InferenceSession(str(tmp_path / "u.onnx"), providers=["CPUExecutionProvider"])
    for shape in ((2, 3, 5, 6), (1, 3, 7, 4)):
        x = _x(*shape, seed=8)
        with tl.no_grad():
            want = m(x).numpy()
        np.testing.assert_allclose(sess.run(None, {"input0": x.numpy()})[0], want, rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("how", ["reverse", "from_one"])
def test_loops_reading_from_the_end_or_writing_from_one_are_traced_per_size(how):
    # x[:, -t - 1] (a backward direction) and outputs[t] = h for t in 1..T-1 (the classic
    # seq2seq decoder) got past the every-position rule and unrolled silently
    cell = nn.RNNCell(3, 5)

    def fn(x):
        h = tl.zeros(x.shape[0], 5)
        if how == "reverse":
            hs = []
            for t in range(x.shape[1]):
                h = cell(x[:, -t - 1], h)
                hs.append(h)
            return tl.stack(hs, 1)
        out = tl.zeros(x.shape[0], x.shape[1], 5)
        for t in range(1, x.shape[1]):
            h = cell(x[:, 0] * t, h)
            out[:, t] = h
        return out
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None, 3))])
    _calls(f, fn, [(2, 4), (2, 6), (3, 4)], feat=3)
    assert f.trace_count == 2


def test_a_loop_whose_count_comes_from_a_size_is_caught_by_tracing_again():
    # greedy decoding for 2 * T steps reading only src[:, 0]: no index reveals the loop;
    # the first call at another length traces again, finds another graph and keeps the
    # length per trace (the replay returned 2 * the traced T steps)
    cell = nn.RNNCell(3, 3)

    def decode(src):
        h, inp, outs = tl.zeros(src.shape[0], 3), src[:, 0], []
        for _ in range(src.shape[1] * 2):
            h = cell(inp, h)
            outs.append(h)
            inp = h
        return tl.stack(outs, 1)
    f = tl.function(decode, input_signature=[tl.TensorSpec((None, None, 3))])
    msgs = _calls(f, decode, [(2, 3), (2, 5), (4, 3), (4, 5)], feat=3)
    assert f.trace_count == 2
    assert sum("built another graph" in m for m in msgs) == 1


def test_a_graph_that_is_the_same_at_another_size_is_verified_once():
    mlp = nn.Sequential(nn.Linear(3, 4), nn.ReLU()).eval()
    f = tl.function(mlp, input_signature=[tl.TensorSpec((None, 3))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _calls(f, mlp, [(2,), (5,), (7,), (1,)], feat=3)
    assert f.trace_count == 1 and len(f.graphs) == 1
    assert next(e for es in f._cache.values() for e in es).verified


def test_onnx_export_refuses_a_loop_that_no_index_reveals(tmp_path):
    # export traces once: it now traces again with the dynamic axes doubled and compares
    cell = nn.RNNCell(3, 3)

    class Decode(nn.Module):
        def forward(self, src):
            h, inp, outs = tl.zeros(src.shape[0], 3), src[:, 0], []
            for _ in range(src.shape[1] * 2):
                h = cell(inp, h)
                outs.append(h)
                inp = h
            return tl.stack(outs, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UnsupportedOpError, match="built another graph"):
            tl.onnx.export(Decode(), (_x(2, 3, 3),), tmp_path / "d.onnx",
                           dynamic_axes={0: [0, 1]})
        tl.onnx.export(Decode(), (_x(2, 3, 3),), tmp_path / "d.onnx", dynamic_axes={0: [0]})
