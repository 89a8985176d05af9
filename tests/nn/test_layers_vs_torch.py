"""Layers against PyTorch: copy torch's weights through state_dict, compare outputs and
the gradients of inputs and parameters."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn

torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install torch==2.13.0)")
pytestmark = pytest.mark.torch

R = np.random.default_rng(0)


def f32(*shape, scale=1.0):
    return (R.standard_normal(shape) * scale).astype(np.float32)


# (id, our constructor, torch constructor, inputs: list of arrays, kwargs for forward)
LAYERS = [
    ("linear", lambda m: m.Linear(5, 3), [f32(4, 5)]),
    ("linear-nobias-3d", lambda m: m.Linear(5, 3, bias=False), [f32(2, 4, 5)]),
    ("conv1d", lambda m: m.Conv1d(3, 4, 3, stride=2, padding=1), [f32(2, 3, 9)]),
    ("conv2d", lambda m: m.Conv2d(3, 4, 3, padding=1), [f32(2, 3, 8, 8)]),
    ("conv2d-groups", lambda m: m.Conv2d(4, 6, 3, stride=2, groups=2, dilation=1),
     [f32(2, 4, 9, 9)]),
    ("conv_transpose2d", lambda m: m.ConvTranspose2d(3, 2, 3, stride=2, padding=1,
                                                     output_padding=1), [f32(2, 3, 5, 5)]),
    ("maxpool", lambda m: m.MaxPool2d(2), [f32(2, 3, 8, 8)]),
    ("maxpool-stride-pad", lambda m: m.MaxPool2d(3, stride=2, padding=1), [f32(2, 3, 9, 9)]),
    ("avgpool", lambda m: m.AvgPool2d(3, stride=2, padding=1), [f32(2, 3, 9, 9)]),
    ("adaptive_avgpool", lambda m: m.AdaptiveAvgPool2d((3, 2)), [f32(2, 3, 8, 7)]),
    ("batchnorm1d", lambda m: m.BatchNorm1d(4), [f32(8, 4)]),
    ("batchnorm1d-3d", lambda m: m.BatchNorm1d(4, momentum=None), [f32(8, 4, 5)]),
    ("batchnorm2d", lambda m: m.BatchNorm2d(3, affine=False), [f32(4, 3, 5, 5)]),
    ("layernorm", lambda m: m.LayerNorm((4, 5)), [f32(3, 4, 5)]),
    ("groupnorm", lambda m: m.GroupNorm(2, 4), [f32(3, 4, 5, 5)]),
    ("flatten", lambda m: m.Flatten(), [f32(3, 4, 5)]),
    ("relu", lambda m: m.ReLU(), [f32(4, 5)]),
    ("gelu", lambda m: m.GELU(), [f32(4, 5)]),
    ("gelu-tanh", lambda m: m.GELU(approximate="tanh"), [f32(4, 5)]),
    ("silu", lambda m: m.SiLU(), [f32(4, 5)]),
    ("tanh", lambda m: m.Tanh(), [f32(4, 5)]),
    ("sigmoid", lambda m: m.Sigmoid(), [f32(4, 5)]),
    ("leaky_relu", lambda m: m.LeakyReLU(0.2), [f32(4, 5)]),
    ("elu", lambda m: m.ELU(0.7), [f32(4, 5)]),
    ("selu", lambda m: m.SELU(), [f32(4, 5)]),
    ("relu6", lambda m: m.ReLU6(), [f32(4, 5) * 5]),
    ("hardsigmoid", lambda m: m.Hardsigmoid(), [f32(4, 5) * 4]),
    ("hardswish", lambda m: m.Hardswish(), [f32(4, 5) * 4]),
    ("logsigmoid", lambda m: m.LogSigmoid(), [f32(4, 5)]),
    ("glu", lambda m: m.GLU(dim=1), [f32(4, 6)]),
    ("upsample-nearest", lambda m: m.Upsample(scale_factor=2), [f32(2, 3, 4, 5)]),
    ("maxpool1d", lambda m: m.MaxPool1d(3, stride=2, padding=1), [f32(2, 3, 9)]),
    ("prelu-1", lambda m: m.PReLU(), [f32(2, 3, 4)]),
    ("embedding_bag-max", lambda m: m.EmbeddingBag(10, 3, mode="max"),
     [R.integers(0, 10, (4, 5))]),
    ("embedding_bag-offsets", lambda m: m.EmbeddingBag(10, 3, padding_idx=0),
     [np.array([1, 0, 4, 5, 4, 3]), np.array([0, 2, 5])]),
    ("prelu-channels", lambda m: m.PReLU(3, init=0.1), [f32(2, 3, 4, 5)]),
    ("bilinear", lambda m: m.Bilinear(3, 4, 5), [f32(6, 3), f32(6, 4)]),
    ("bilinear-lead", lambda m: m.Bilinear(3, 4, 2, bias=False), [f32(2, 6, 3), f32(2, 6, 4)]),
    ("unfold", lambda m: m.Unfold((3, 2), dilation=(1, 2), padding=1, stride=(2, 1)),
     [f32(2, 3, 7, 6)]),
    ("fold", lambda m: m.Fold((5, 6), 2, stride=(1, 2)), [f32(2, 12, 12)]),
    ("cosine_similarity", lambda m: m.CosineSimilarity(dim=-1), [f32(4, 5), f32(4, 5)]),
    ("pairwise_distance", lambda m: m.PairwiseDistance(p=1.0, keepdim=True),
     [f32(4, 5), f32(4, 5)]),
    ("maxpool1d-dilation-ceil", lambda m: m.MaxPool1d(2, dilation=2, ceil_mode=True),
     [f32(2, 3, 10)]),
    ("avgpool1d", lambda m: m.AvgPool1d(3, stride=2, padding=1, count_include_pad=False),
     [f32(2, 3, 9)]),
    ("adaptive_avgpool1d", lambda m: m.AdaptiveAvgPool1d(4), [f32(2, 3, 10)]),
    ("instancenorm1d", lambda m: m.InstanceNorm1d(3), [f32(2, 3, 7)]),
    ("instancenorm2d-affine", lambda m: m.InstanceNorm2d(3, affine=True), [f32(2, 3, 4, 5)]),
    ("instancenorm2d-tracked", lambda m: m.InstanceNorm2d(3, track_running_stats=True),
     [f32(2, 3, 4, 5)]),
    ("instancenorm2d-unbatched", lambda m: m.InstanceNorm2d(3, affine=True), [f32(3, 4, 5)]),
    ("upsample-bilinear", lambda m: m.Upsample(size=(7, 3), mode="bilinear",
                                               align_corners=True), [f32(2, 3, 4, 5)]),
    ("pixel_shuffle", lambda m: m.PixelShuffle(2), [f32(2, 8, 3, 4)]),
    ("pixel_unshuffle", lambda m: m.PixelUnshuffle(2), [f32(2, 2, 4, 6)]),
    ("zeropad2d", lambda m: m.ZeroPad2d((1, 0, 2, 1)), [f32(2, 3, 4, 5)]),
    ("reflectionpad2d", lambda m: m.ReflectionPad2d(2), [f32(2, 3, 4, 5)]),
    ("replicationpad2d", lambda m: m.ReplicationPad2d((0, 1, 3, 2)), [f32(2, 3, 4, 5)]),
    ("softplus", lambda m: m.Softplus(), [f32(4, 5)]),
    ("softmax", lambda m: m.Softmax(dim=1), [f32(4, 5)]),
    ("log_softmax", lambda m: m.LogSoftmax(dim=-1), [f32(4, 5)]),
    ("rnn", lambda m: m.RNN(3, 4, num_layers=2), [f32(5, 2, 3)]),
    ("rnn-relu-batch_first", lambda m: m.RNN(3, 4, nonlinearity="relu", batch_first=True),
     [f32(2, 5, 3)]),
    ("lstm", lambda m: m.LSTM(3, 4, num_layers=2, batch_first=True), [f32(2, 6, 3)]),
    ("lstm-bidirectional", lambda m: m.LSTM(3, 4, num_layers=2, bidirectional=True),
     [f32(6, 2, 3)]),
    ("lstm-h0c0", lambda m: m.LSTM(3, 4), [f32(5, 2, 3), (f32(1, 2, 4), f32(1, 2, 4))]),
    ("gru", lambda m: m.GRU(3, 4, batch_first=True, num_layers=2), [f32(2, 5, 3)]),
    ("gru-unbatched-h0", lambda m: m.GRU(3, 4, bidirectional=True), [f32(5, 3), f32(2, 4)]),
    ("lstmcell", lambda m: m.LSTMCell(3, 4), [f32(2, 3), (f32(2, 4), f32(2, 4))]),
    ("grucell", lambda m: m.GRUCell(3, 4), [f32(2, 3), f32(2, 4)]),
    ("rnncell", lambda m: m.RNNCell(3, 4), [f32(2, 3)]),
    ("mha", lambda m: m.MultiheadAttention(8, 2), [f32(5, 2, 8), f32(7, 2, 8), f32(7, 2, 8)]),
    ("mha-batch_first-kdim", lambda m: m.MultiheadAttention(8, 4, batch_first=True, kdim=6,
                                                            vdim=5),
     [f32(2, 5, 8), f32(2, 7, 6), f32(2, 7, 5)]),
    ("encoder", lambda m: m.TransformerEncoderLayer(8, 2, 16, dropout=0.0), [f32(5, 2, 8)]),
    ("encoder-norm_first-gelu", lambda m: m.TransformerEncoderLayer(
        8, 2, 16, dropout=0.0, activation="gelu", batch_first=True, norm_first=True),
     [f32(2, 5, 8)]),
    ("encoder-stack", lambda m: m.TransformerEncoder(
        m.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2, norm=m.LayerNorm(8),
        enable_nested_tensor=False) if m is torch.nn else m.TransformerEncoder(
        m.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2, norm=m.LayerNorm(8)),
     [f32(5, 2, 8)]),
    ("decoder", lambda m: m.TransformerDecoderLayer(8, 2, 16, dropout=0.0),
     [f32(4, 2, 8), f32(6, 2, 8)]),
    ("decoder-norm_first-batch_first", lambda m: m.TransformerDecoderLayer(
        8, 4, 16, dropout=0.0, activation="gelu", batch_first=True, norm_first=True),
     [f32(2, 4, 8), f32(2, 6, 8)]),
    ("decoder-stack", lambda m: m.TransformerDecoder(
        m.TransformerDecoderLayer(8, 2, 16, dropout=0.0), 3), [f32(4, 2, 8), f32(6, 2, 8)]),
    ("transformer", lambda m: m.Transformer(8, 2, 2, 2, 16, dropout=0.0),
     [f32(6, 2, 8), f32(4, 2, 8)]),
]


def _to_torch(x):
    if isinstance(x, tuple):
        return tuple(_to_torch(v) for v in x)
    return torch.tensor(x, requires_grad=x.dtype.kind == "f")


def _to_ours(x):
    if isinstance(x, tuple):
        return tuple(_to_ours(v) for v in x)
    return tl.tensor(x, requires_grad=x.dtype.kind == "f")


def _flat(x):
    if isinstance(x, (tuple, list)):
        return [v for item in x for v in _flat(item)]
    return [] if x is None else [x]


def _copy_weights(ours, theirs):
    sd = {k: tl.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(sd)  # strict: same names and shapes as PyTorch


def _compare(ours, theirs, inputs, kwargs=None, training=True, atol=1e-5):
    kwargs = kwargs or {}
    _copy_weights(ours, theirs)
    ours.train(training)
    theirs.train(training)
    xs, ts = [_to_ours(a) for a in inputs], [_to_torch(a) for a in inputs]
    out, tout = _flat(ours(*xs, **kwargs)), _flat(theirs(*ts, **kwargs))
    assert len(out) == len(tout)
    for o, t in zip(out, tout):
        assert tuple(o.shape) == tuple(t.shape)
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=1e-4, atol=atol)
    gs = [f32(*o.shape) for o in out]
    sum(((o * tl.tensor(g)).sum() for o, g in zip(out, gs)), tl.tensor(0.0)).backward()
    sum((t * torch.tensor(g)).sum() for t, g in zip(tout, gs)).backward()
    for x, t in zip(_flat(xs), _flat(ts)):
        if t.requires_grad:
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-4, atol=atol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-4,
                                   atol=atol, err_msg=name)
    tbufs = dict(theirs.named_buffers())
    for name, b in ours.named_buffers():
        np.testing.assert_allclose(b.numpy(), tbufs[name].numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)


@pytest.mark.parametrize("ctor,inputs", [L[1:] for L in LAYERS], ids=[L[0] for L in LAYERS])
def test_layer_matches_torch(ctor, inputs):
    torch.manual_seed(0)
    _compare(ctor(nn), ctor(torch.nn), inputs)


@pytest.mark.parametrize("ctor", [lambda m: m.BatchNorm2d(3), lambda m: m.BatchNorm1d(3)])
def test_batchnorm_eval_after_training_matches_torch(ctor):
    ours, theirs = ctor(nn), ctor(torch.nn)
    shape = (6, 3, 4, 4) if isinstance(ours, nn.BatchNorm2d) else (6, 3)
    for _ in range(3):  # accumulate running statistics in both
        x = f32(*shape, scale=2.0) + 1.0
        ours(tl.tensor(x))
        theirs(torch.tensor(x))
    _compare(ours, theirs, [f32(*shape)], training=False)


def test_embedding_matches_torch():
    ours, theirs = nn.Embedding(10, 3, padding_idx=2), torch.nn.Embedding(10, 3, padding_idx=2)
    _copy_weights(ours, theirs)
    idx = R.integers(0, 10, (4, 5))
    o, t = ours(tl.tensor(idx)), theirs(torch.tensor(idx))
    np.testing.assert_allclose(o.numpy(), t.detach().numpy())
    g = f32(4, 5, 3)
    (o * tl.tensor(g)).sum().backward()
    (t * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-5,
                               atol=1e-6)


def test_mha_masks_match_torch():
    ours, theirs = nn.MultiheadAttention(8, 2, batch_first=True), torch.nn.MultiheadAttention(
        8, 2, batch_first=True)
    q, k = f32(2, 4, 8), f32(2, 6, 8)
    kpm = np.zeros((2, 6), bool)
    kpm[0, -2:] = True
    attn = np.triu(np.ones((4, 6), bool), 3)
    for kw in (dict(key_padding_mask=kpm, attn_mask=attn),
               dict(attn_mask=f32(4, 6)),
               dict(key_padding_mask=kpm, average_attn_weights=False),
               dict(attn_mask=attn, need_weights=False)):
        ours.zero_grad()
        theirs.zero_grad()
        ok = {k_: (tl.tensor(v) if isinstance(v, np.ndarray) else v) for k_, v in kw.items()}
        tk = {k_: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k_, v in kw.items()}
        _copy_weights(ours, theirs)
        o, w = ours(tl.tensor(q), tl.tensor(k), tl.tensor(k), **ok)
        t, tw = theirs(torch.tensor(q), torch.tensor(k), torch.tensor(k), **tk)
        np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=1e-4, atol=1e-5)
        assert (w is None) == (tw is None)
        if w is not None:
            np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_transformer_masks_match_torch_and_capture():
    ours = nn.Transformer(8, 2, 2, 1, 16, dropout=0.0, batch_first=True)
    theirs = torch.nn.Transformer(8, 2, 2, 1, 16, dropout=0.0, batch_first=True)
    _copy_weights(ours, theirs)
    src, tgt = f32(2, 6, 8), f32(2, 4, 8)
    causal = nn.Transformer.generate_square_subsequent_mask(4)
    np.testing.assert_array_equal(
        causal.numpy(), torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())
    spad = np.zeros((2, 6), bool)
    spad[1, -2:] = True
    kw = dict(tgt_mask=causal, src_key_padding_mask=tl.tensor(spad),
              memory_key_padding_mask=tl.tensor(spad))
    tkw = dict(tgt_mask=torch.tensor(causal.numpy()), src_key_padding_mask=torch.tensor(spad),
               memory_key_padding_mask=torch.tensor(spad))
    o = ours(tl.tensor(src), tl.tensor(tgt), **kw)
    t = theirs(torch.tensor(src), torch.tensor(tgt), **tkw)
    np.testing.assert_allclose(o.numpy(), t.detach().numpy(), rtol=1e-4, atol=1e-5)
    # the whole encoder-decoder as one captured graph: same outputs on new inputs
    f = tl.function(lambda s_, t_: ours(s_, t_, tgt_mask=causal))
    for _ in range(2):
        s_, t_ = tl.tensor(f32(2, 6, 8)), tl.tensor(f32(2, 4, 8))
        with tl.no_grad():
            got = f(s_, t_)
        np.testing.assert_allclose(got.numpy(), ours(s_, t_, tgt_mask=causal).numpy(),
                                   rtol=1e-5, atol=1e-6)
    assert f.trace_count == 1
    with pytest.raises(ValueError, match="same batch size"):
        ours(tl.tensor(f32(3, 6, 8)), tl.tensor(tgt))
    with pytest.raises(ValueError, match="num_layers must be at least 1"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2), 0)


def test_instance_norm_running_stats_and_eval_match_torch():
    ours = nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3)
    theirs = torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3)
    _copy_weights(ours, theirs)
    for _ in range(3):
        x = f32(4, 3, 5, 6)
        ours(tl.tensor(x))
        theirs(torch.tensor(x))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(ours, name).numpy(),
                                   getattr(theirs, name).numpy(), rtol=1e-5, err_msg=name)
    ours.eval()
    theirs.eval()
    x = f32(2, 3, 5, 6)
    np.testing.assert_allclose(ours(tl.tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_max_pool1d_indices_and_channel_dropout():
    x = f32(2, 3, 9)
    o, i = nn.functional.max_pool1d(tl.tensor(x), 3, 2, 1, return_indices=True)
    to, ti = torch.nn.functional.max_pool1d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_allclose(o.numpy(), to.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    tl.manual_seed(0)
    for drop, shape, spatial in ((nn.Dropout2d(0.5), (8, 16, 3, 3), 2),
                                 (nn.Dropout1d(0.5), (8, 16, 4), 1),
                                 (nn.Dropout2d(0.5), (16, 3, 3), 2)):
        y = drop(tl.ones(*shape)).numpy()
        per_channel = y.reshape(y.shape[:-spatial] + (-1,))
        # each channel is all zeros or all 2s, and both occur
        assert set(np.unique(per_channel)) <= {0.0, 2.0}
        assert (per_channel.min(axis=-1) == per_channel.max(axis=-1)).all()
        assert 0 < (per_channel[..., 0] == 0).mean() < 1
        drop.eval()
        np.testing.assert_array_equal(drop(tl.ones(*shape)).numpy(), np.ones(shape))
    # another rank warns and runs as PyTorch's: rows of a 2-d input are its channels
    with pytest.warns(UserWarning, match="dropout2d: Received a 2-D input"):
        y = nn.functional.dropout2d(tl.ones(6, 50), 0.5).numpy()
    assert (y.min(axis=1) == y.max(axis=1)).all() and set(np.unique(y)) <= {0.0, 2.0}


def test_parameter_list_registers_and_state_dict_matches_torch():
    ours = nn.ParameterList([tl.zeros(2), nn.Parameter(tl.ones(3))])
    ours.append(tl.ones(1))
    theirs = torch.nn.ParameterList([torch.zeros(2), torch.ones(3), torch.ones(1)])
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["0", "1", "2"]
    assert len(ours) == 3 and len(list(ours.parameters())) == 3
    assert all(isinstance(p, nn.Parameter) for p in ours)
    assert ours[-1].shape == (1,) and len(ours[1:]) == 2
    with pytest.raises(IndexError, match="out of range for 3 parameters"):
        ours[3]
    ours.append(3.0)                  # kept as it is, not a parameter (as PyTorch)
    assert ours[3] == 3.0 and len(list(ours.parameters())) == 3


def _signs(*shape):
    return np.where(R.standard_normal(shape) > 0, 1, -1)     # int: not differentiated


LOSSES = [
    ("cross_entropy", lambda m: m.CrossEntropyLoss(), [f32(4, 5), R.integers(0, 5, 4)]),
    ("cross_entropy-smooth-sum", lambda m: m.CrossEntropyLoss(label_smoothing=0.1,
                                                              reduction="sum"),
     [f32(4, 5), R.integers(0, 5, 4)]),
    ("nll", lambda m: m.NLLLoss(), [f32(4, 5), R.integers(0, 5, 4)]),
    ("mse", lambda m: m.MSELoss(), [f32(4, 5), f32(4, 5)]),
    ("l1", lambda m: m.L1Loss(reduction="none"), [f32(4, 5), f32(4, 5)]),
    ("huber", lambda m: m.HuberLoss(delta=0.5), [f32(4, 5), f32(4, 5)]),
    ("bce", lambda m: m.BCELoss(), [R.uniform(0.05, 0.95, (4, 5)).astype(np.float32),
                                    R.uniform(0, 1, (4, 5)).astype(np.float32)]),
    ("bce_logits", lambda m: m.BCEWithLogitsLoss(), [f32(4, 5),
                                                     R.uniform(0, 1, (4, 5)).astype(np.float32)]),
    ("margin_ranking", lambda m: m.MarginRankingLoss(0.2), [f32(6), f32(6), _signs(6)]),
    ("hinge_embedding", lambda m: m.HingeEmbeddingLoss(reduction="sum"),
     [np.abs(f32(6)), _signs(6)]),
    ("soft_margin", lambda m: m.SoftMarginLoss(), [f32(4, 5), _signs(4, 5)]),
    ("cosine_embedding", lambda m: m.CosineEmbeddingLoss(0.1), [f32(6, 4), f32(6, 4),
                                                               _signs(6)]),
    ("triplet_margin", lambda m: m.TripletMarginLoss(swap=True), [f32(6, 4), f32(6, 4),
                                                                 f32(6, 4)]),
    ("gaussian_nll", lambda m: m.GaussianNLLLoss(full=True),
     [f32(4, 3), f32(4, 3), R.uniform(0.2, 2, (4, 3)).astype(np.float32)]),
    ("poisson_nll", lambda m: m.PoissonNLLLoss(), [f32(4, 3),
                                                   R.poisson(2.0, (4, 3)).astype(np.float32)]),
]


@pytest.mark.parametrize("ctor,inputs", [L[1:] for L in LOSSES], ids=[L[0] for L in LOSSES])
def test_loss_module_matches_torch(ctor, inputs):
    _compare(ctor(nn), ctor(torch.nn), inputs)


def test_deep_mnist_training_steps_match_torch():
    """The demo's network: same weights, same batches, 3 SGD steps agree with PyTorch."""
    from tensorlib.demo import DeepMnist
    ours = DeepMnist(dropout=0.0)
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(3136, 1024), torch.nn.ReLU(),
        torch.nn.Linear(1024, 10))
    names = ["conv1", "conv2", "fc1", "fc2"]
    torch_layers = [theirs[0], theirs[3], theirs[7], theirs[9]]
    ours.load_state_dict({f"{n}.{w}": tl.tensor(getattr(t, w).detach().numpy())
                          for n, t in zip(names, torch_layers) for w in ("weight", "bias")})
    o = tl.optim.SGD(ours.parameters(), lr=0.05, momentum=0.9)
    t = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        x, y = f32(8, 1, 28, 28), R.integers(0, 10, 8)
        lo = tl.nn.functional.cross_entropy(ours(tl.tensor(x)), tl.tensor(y))
        lt = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        assert float(lo) == pytest.approx(float(lt.detach()), rel=1e-4, abs=1e-5)
        o.zero_grad()
        t.zero_grad()
        lo.backward()
        lt.backward()
        o.step()
        t.step()
    np.testing.assert_allclose(ours.fc2.weight.numpy(), theirs[9].weight.detach().numpy(),
                               rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, side):
    from tensorlib.nn.utils.rnn import pad_sequence
    seqs = [f32(n, 3) for n in (4, 1, 6)]
    ours = [tl.tensor(s, requires_grad=True) for s in seqs]
    theirs = [torch.tensor(s, requires_grad=True) for s in seqs]
    o = pad_sequence(ours, batch_first, -1.0, side)
    t = torch.nn.utils.rnn.pad_sequence(theirs, batch_first, -1.0, side)
    np.testing.assert_array_equal(o.numpy(), t.detach().numpy())
    w = f32(*o.shape)
    (o * tl.tensor(w)).sum().backward()
    (t * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy())
    with pytest.raises(ValueError, match="same trailing dims"):
        pad_sequence([tl.ones(2, 3), tl.ones(2, 4)])


def test_parameters_to_vector_and_back_match_torch():
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    _copy_weights(ours, theirs)
    v = nn.utils.parameters_to_vector(ours.parameters())
    np.testing.assert_allclose(v.numpy(), torch.nn.utils.parameters_to_vector(
        theirs.parameters()).detach().numpy())
    nn.utils.vector_to_parameters(tl.arange(8.0), ours.parameters())
    np.testing.assert_array_equal(ours.weight.numpy().ravel(), np.arange(6.0))
    np.testing.assert_array_equal(ours.bias.numpy(), [6.0, 7.0])
    with pytest.raises(ValueError, match="a vector of 8 elements"):
        nn.utils.vector_to_parameters(tl.ones(5), ours.parameters())


def test_a_pytorch_state_dict_loads_as_it_is():
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                                 torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
    ours = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3))
    theirs.train()(torch.randn(5, 1, 8, 8))            # running statistics move off 0 / 1
    theirs.eval()
    ours.load_state_dict(theirs.state_dict())          # torch tensors, no conversion
    ours.eval()
    x = f32(2, 1, 8, 8)
    np.testing.assert_allclose(ours(tl.tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, (2, 1), "same"])
@pytest.mark.parametrize("nd", [1, 2])
def test_conv_padding_modes_match_torch(mode, padding, nd):
    if nd == 1 and isinstance(padding, tuple):
        padding = 2
    t = getattr(torch.nn, f"Conv{nd}d")(3, 4, 3, padding=padding, padding_mode=mode,
                                         dilation=2 if padding == "same" else 1)
    m = getattr(tl.nn, f"Conv{nd}d")(3, 4, 3, padding=padding, padding_mode=mode,
                                      dilation=2 if padding == "same" else 1)
    m.weight.data = tl.tensor(t.weight.detach().numpy())
    m.bias.data = tl.tensor(t.bias.detach().numpy())
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8)[:nd + 2]).astype(np.float32)
    xt, xl = torch.tensor(x, requires_grad=True), tl.tensor(x, requires_grad=True)
    yt, yl = t(xt), m(xl)
    yt.square().sum().backward()
    yl.square().sum().backward()
    np.testing.assert_allclose(yl.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    assert f"padding_mode='{mode}'" in repr(m)
