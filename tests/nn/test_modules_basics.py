"""Module, Parameter, containers, init and the layers' own behaviour."""
from collections import OrderedDict

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
        self.register_buffer("scale", tl.ones(1))
        self.register_buffer("cache", tl.zeros(2), persistent=False)

    def forward(self, x):
        return self.head(F.relu(self.bn(self.conv(x))) * self.scale)


def test_registration_and_traversal():
    m = Net()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "head.1.weight",
                     "head.1.bias"]
    assert len(list(m.parameters())) == 6
    assert [n for n, _ in m.named_buffers()] == [
        "scale", "cache", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert [n for n, _ in m.named_children()] == ["conv", "bn", "head"]
    assert [n for n, _ in m.named_modules()] == ["", "conv", "bn", "head", "head.0", "head.1"]
    assert m.get_submodule("head.1") is m.head[1]
    assert m.get_parameter("head.1.bias") is m.head[1].bias
    assert m.get_parameter("conv.weight") is m.conv.weight
    with pytest.raises(AttributeError, match="has no parameter 'running_mean'"):
        m.get_parameter("bn.running_mean")          # a buffer, not a parameter
    assert m.num_parameters() == 4 * 9 + 4 + 4 + 4 + 256 * 10 + 10


def test_shared_parameters_counted_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    # as PyTorch, the state dict names a shared parameter under each path
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_state_dict_and_strict_loading():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert "cache" not in sd and "scale" in sd and "bn.num_batches_tracked" in sd
    b.load_state_dict(sd)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k].numpy())
    bad = dict(sd)
    del bad["conv.bias"]
    bad["extra.weight"] = tl.zeros(1)
    bad["head.1.weight"] = tl.zeros(3, 3)
    with pytest.raises(RuntimeError) as e:
        b.load_state_dict(bad)
    msg = str(e.value)
    # PyTorch's wording, as ported code and tests match on it
    assert 'Missing key(s) in state_dict: "conv.bias". ' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight". ' in msg
    assert ("size mismatch for head.1.weight: copying a param with shape (3, 3) from "
            "checkpoint, the shape in current model is (10, 256).") in msg
    del bad["head.1.weight"]
    res = b.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["conv.bias", "head.1.weight"]
    assert res.unexpected_keys == ["extra.weight"]


def test_state_dict_shares_storage_and_load_keeps_identity():
    m = nn.Linear(2, 3)
    w = m.weight
    m.load_state_dict({"weight": tl.ones(3, 2), "bias": tl.zeros(3)})
    assert m.weight is w
    assert m.weight.numpy().sum() == 6
    m.state_dict()["bias"].fill_(2.0)
    assert m.bias.numpy().tolist() == [2.0, 2.0, 2.0]


def test_train_eval_zero_grad_apply_requires_grad():
    m = Net()
    assert m.training and m.head[1].training
    m.eval()
    assert not m.training and not m.bn.training
    m.train()
    assert m.bn.training
    out = m(tl.randn(2, 1, 8, 8)).sum()
    out.backward()
    assert m.conv.weight.grad is not None
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen[-1] == "Net" and "Linear" in seen
    m.head.requires_grad_(False)
    assert not m.head[1].weight.requires_grad and m.conv.weight.requires_grad


def test_to_dtype_keeps_parameter_identity():
    m = nn.Linear(2, 2)
    w = m.weight
    m.to(tl.float64)
    assert m.weight is w and w.dtype == np.float64
    assert m(tl.randn(1, 2, dtype=tl.float64)).dtype == np.float64
    with pytest.raises(TypeError, match="floating-point"):
        m.to(dtype=tl.int64)


def test_repr_tree():
    r = repr(Net())
    assert r.startswith("Net(\n  (conv): Conv2d(1, 4, kernel_size=(3, 3)")
    assert "(head): Sequential(\n    (0): Flatten(" in r
    assert repr(nn.Parameter(tl.zeros(1))).startswith("Parameter containing:")


def test_attribute_errors():
    class NoInit(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)
    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        NoInit()
    m = nn.Linear(1, 1)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = tl.zeros(1, 1)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        m.nope  # noqa: B018
    with pytest.raises(KeyError, match="contain no '.'"):
        m.register_buffer("a.b", tl.zeros(1))


def test_forward_hooks():
    m = nn.Linear(2, 2)
    calls = []
    h = m.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out * 0)
    assert m(tl.ones(1, 2)).numpy().sum() == 0
    h.remove()
    assert m(tl.ones(1, 2)).shape == (1, 2) and calls == [(1, 2)]


def test_containers():
    seq = nn.Sequential(OrderedDict(a=nn.Linear(2, 3), b=nn.ReLU()))
    assert isinstance(seq.a, nn.Linear) and len(seq) == 2
    assert isinstance(seq[0:1], nn.Sequential) and len(seq[0:1]) == 1
    seq.append(nn.Linear(3, 1))
    assert seq(tl.ones(4, 2)).shape == (4, 1)
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    ml.insert(0, nn.ReLU())
    assert isinstance(ml[0], nn.ReLU) and len(ml) == 4 and len(list(ml.parameters())) == 6
    del ml[0]
    assert isinstance(ml[-1], nn.Linear)
    md = nn.ModuleDict({"x": nn.Linear(1, 2)})
    md["y"] = nn.Tanh()
    assert list(md.keys()) == ["x", "y"] and "x" in md
    assert [n for n, _ in md.named_parameters()] == ["x.weight", "x.bias"]
    with pytest.raises(TypeError, match="nn.Module"):
        nn.Sequential(lambda x: x)
    with pytest.raises(IndexError):
        ml[10]


# --- init ------------------------------------------------------------------------------
def test_init_statistics():
    tl.manual_seed(0)
    w = tl.empty(400, 300)
    nn.init.xavier_uniform_(w)
    bound = np.sqrt(6 / 700)
    a = w.numpy()
    assert a.max() <= bound and a.min() >= -bound and a.std() == pytest.approx(bound / np.sqrt(3),
                                                                               rel=0.05)
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(np.sqrt(2 / 300), rel=0.05)
    nn.init.kaiming_uniform_(w, mode="fan_out")
    bound = np.sqrt(3) * np.sqrt(2) / np.sqrt(400)  # a=0: gain sqrt(2); fan_out = 400
    assert bound * 0.99 < np.abs(w.numpy()).max() <= bound * (1 + 1e-6)
    nn.init.xavier_normal_(w, gain=2.0)
    assert w.numpy().std() == pytest.approx(2 * np.sqrt(2 / 700), rel=0.05)
    nn.init.normal_(w, 1.0, 0.1)
    assert w.numpy().mean() == pytest.approx(1.0, abs=0.01)
    nn.init.uniform_(w, -1, 1)
    assert -1 <= w.numpy().min() and w.numpy().max() <= 1
    nn.init.zeros_(w)
    assert not w.numpy().any()
    nn.init.ones_(w)
    assert (w.numpy() == 1).all()
    q = tl.empty(5, 8)
    nn.init.orthogonal_(q)
    np.testing.assert_allclose(q.numpy() @ q.numpy().T, np.eye(5), atol=1e-5)
    q = tl.empty(8, 3)
    nn.init.orthogonal_(q, gain=2.0)
    np.testing.assert_allclose(q.numpy().T @ q.numpy(), 4 * np.eye(3), atol=1e-4)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(tl.empty(3))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        nn.init.calculate_gain("swish")


def test_init_is_seeded():
    tl.manual_seed(3)
    a = nn.Linear(4, 4).weight.numpy().copy()
    tl.manual_seed(3)
    b = nn.Linear(4, 4).weight.numpy()
    np.testing.assert_array_equal(a, b)


# --- layer behaviour ---------------------------------------------------------------------
def test_dropout_train_and_eval():
    d = nn.Dropout(0.5)
    x = tl.ones(1000)
    y = d(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    d.eval()
    assert (d(x).numpy() == 1).all()
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


def test_batchnorm_running_stats_and_eval():
    bn = nn.BatchNorm1d(3)
    x = tl.randn(16, 3) * 2 + 1
    bn(x)
    assert int(bn.num_batches_tracked.item()) == 1
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * x.numpy().mean(0), rtol=1e-4,
                               atol=1e-6)
    bn.eval()
    y = bn(x).numpy()
    rm, rv = bn.running_mean.numpy(), bn.running_var.numpy()
    np.testing.assert_allclose(y, (x.numpy() - rm) / np.sqrt(rv + 1e-5), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="2 or 3-d input"):
        bn(tl.randn(2, 3, 4, 5))


def test_embedding_padding_idx_and_pretrained():
    e = nn.Embedding(5, 3, padding_idx=0)
    assert not e.weight.numpy()[0].any()
    e(tl.tensor([[0, 1, 0]])).sum().backward()
    assert not e.weight.grad.numpy()[0].any() and e.weight.grad.numpy()[1].sum() == 3
    p = nn.Embedding.from_pretrained(tl.eye(4))
    assert not p.weight.requires_grad
    np.testing.assert_array_equal(p(tl.tensor([2])).numpy(), [[0, 0, 1, 0]])


def test_rnn_shapes_and_state_errors():
    lstm = nn.LSTM(4, 6, num_layers=2, batch_first=True, bidirectional=True, dropout=0.2)
    out, (h, c) = lstm(tl.randn(3, 5, 4))
    assert out.shape == (3, 5, 12) and h.shape == (4, 3, 6) and c.shape == (4, 3, 6)
    out, (h, c) = lstm(tl.randn(5, 4))  # unbatched
    assert out.shape == (5, 12) and h.shape == (4, 6)
    gru = nn.GRU(4, 6)
    with pytest.raises(ValueError, match="h0 of shape"):
        gru(tl.randn(5, 3, 4), tl.zeros(2, 3, 6))
    with pytest.raises(ValueError, match="input_size 4"):
        gru(tl.randn(5, 3, 7))
    rnn = nn.RNN(4, 6, nonlinearity="relu")
    assert rnn(tl.randn(5, 2, 4))[0].numpy().min() >= 0
    names = [n for n, _ in lstm.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "weight_ih_l1_reverse" in names


def test_lstm_gradients_flow_through_time():
    tl.manual_seed(0)
    lstm = nn.LSTM(3, 4)
    x = tl.randn(20, 2, 3, requires_grad=True)
    out, _ = lstm(x)
    out[-1].sum().backward()
    g = x.grad.numpy()
    assert np.abs(g[0]).sum() > 0 and lstm.weight_hh_l0.grad is not None


def test_transformer_encoder_layer_masks():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    x = tl.randn(2, 5, 8)
    y1 = layer(x, is_causal=True).numpy()
    x2 = x.numpy().copy()
    x2[:, -1] += 10.0  # a later token must not change earlier outputs under a causal mask
    y2 = layer(tl.tensor(x2), is_causal=True).numpy()
    np.testing.assert_allclose(y1[:, :-1], y2[:, :-1], rtol=1e-4, atol=1e-5)
    kpm = tl.tensor([[False] * 4 + [True]] * 2)
    y3 = layer(x, src_key_padding_mask=kpm).numpy()
    y4 = layer(tl.tensor(x2), src_key_padding_mask=kpm).numpy()
    np.testing.assert_allclose(y3[:, :-1], y4[:, :-1], rtol=1e-4, atol=1e-5)


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(-1, 3)            # (Linear(0, n) builds, as PyTorch's)
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="num_groups"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(2, 2, nonlinearity="gelu")


def test_dtype_conversions_of_a_module():
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    assert m.double()[0].weight.dtype == np.float64
    assert m[1].running_mean.dtype == np.float64
    assert m.half()[0].weight.dtype == np.float16
    assert m.float()[1].weight.dtype == np.float32


def test_state_and_mask_mistakes_are_named():
    with pytest.raises(TypeError, match=r"LSTM: hx must be a pair of tensors \(h, c\)"):
        tl.nn.LSTM(4, 5)(tl.randn(3, 2, 4), tl.zeros(1, 2, 5))
    with pytest.raises(TypeError, match="GRU: hx must be one tensor"):
        tl.nn.GRU(4, 5)(tl.randn(3, 2, 4), (tl.zeros(1, 2, 5), tl.zeros(1, 2, 5)))
    with pytest.raises(TypeError, match="LSTMCell: hx must be a pair"):
        tl.nn.LSTMCell(4, 5)(tl.randn(2, 4), tl.zeros(2, 5))
    attn = tl.nn.MultiheadAttention(8, 2)
    with pytest.raises(ValueError, match=r"attn_mask must be \(L, S\) = \(4, 3\)"):
        attn(tl.randn(4, 2, 8), tl.randn(3, 2, 8), tl.randn(3, 2, 8), attn_mask=tl.zeros(3, 3))


def test_regression_loss_warns_when_target_broadcasts_the_input():
    import tensorlib.nn.functional as F
    with pytest.warns(UserWarning, match=r"broadcasts against input of shape \(4, 1\)"):
        F.mse_loss(tl.randn(4, 1), tl.randn(4))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.mse_loss(tl.randn(4, 3), tl.randn(3))       # broadcasting to the input: fine
        assert tl.zeros(2, dtype=tl.bool).dtype == tl.bool_


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_binary_cross_entropy_needs_the_inputs_shape(loss):
    # as PyTorch: a (N, 1) logit against (N,) labels raises (it broadcast to an (N, N) loss)
    import tensorlib.nn.functional as F
    f = getattr(F, loss)
    x, y = tl.rand(6, 1) * 0.5 + 0.25, tl.ones(6)
    with pytest.raises(ValueError, match=r"target of shape \(6,\) must have the input's shape "
                                         r"\(6, 1\)"):
        f(x, y)
    assert f(x.squeeze(-1), y).shape == ()


@pytest.mark.parametrize("layer", ["bn", "ln", "gn", "in", "maxpool", "lstm_cell"])
def test_in_place_ops_on_a_layers_output_backprop_as_torch(layer):
    # the norms' and max pooling's backward read their statistics / indices, not y, so
    # torchvision's BasicBlock (out = bn2(...); out += identity; relu_) must train
    torch = pytest.importorskip("torch")
    xa = np.random.default_rng(0).standard_normal((2, 4, 6, 6)).astype(np.float32)
    mk = {"bn": lambda lib: lib.nn.BatchNorm2d(4), "ln": lambda lib: lib.nn.LayerNorm(6),
          "gn": lambda lib: lib.nn.GroupNorm(2, 4), "maxpool": lambda lib: lib.nn.MaxPool2d(2),
          "in": lambda lib: lib.nn.InstanceNorm2d(4, affine=True),
          "lstm_cell": lambda lib: lib.nn.LSTMCell(6, 6)}[layer]
    grads = []
    torch.manual_seed(0)
    ref = mk(torch)
    for lib in (torch, tl):
        m = ref if lib is torch else mk(tl)
        if lib is tl:
            m.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
        x = lib.tensor(xa, requires_grad=True)
        if layer == "lstm_cell":
            out, c = m(x.reshape(-1, 6))
            out += 1.0
            (out * out + c * c).sum().backward()
        else:
            out = m(x)
            out += x[..., :out.shape[-2], :out.shape[-1]]
            out.relu_()
            (out * out).sum().backward()
        grads.append(x.grad.numpy() if lib is tl else x.grad.detach().numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("loss", ["binary_cross_entropy_with_logits", "mse_loss", "l1_loss",
                                  "binary_cross_entropy"])
def test_a_float64_target_promotes_the_loss_as_torch(loss):
    torch = pytest.importorskip("torch")
    import tensorlib.nn.functional as F
    x = np.array([0.2, 0.5, 0.7], np.float32)
    y = np.array([0.0, 1.0, 1.0])               # pandas labels: float64
    xt = tl.tensor(x, requires_grad=True)
    got = getattr(F, loss)(xt, tl.tensor(y))
    # (torch's binary_cross_entropy refuses mixed dtypes; the others promote: all in float64)
    want = getattr(torch.nn.functional, loss)(torch.tensor(x, dtype=torch.float64),
                                              torch.tensor(y))
    assert got.dtype == tl.float64
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-6)
    got.backward()
    assert xt.grad.dtype == tl.float32


def test_register_buffer_over_a_parameter_or_submodule_raises_as_torch():
    m = tl.nn.Linear(2, 2)
    with pytest.raises(KeyError, match="'weight' already exists: Linear has a parameter"):
        m.register_buffer("weight", tl.ones(1))
    m.sub = tl.nn.Linear(1, 1)
    with pytest.raises(KeyError, match="'sub' already exists: Linear has a module"):
        m.register_buffer("sub", tl.ones(1))
    with pytest.raises(KeyError, match="'bias' already exists"):
        m.add_module("bias", tl.nn.ReLU())
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias", "sub.weight", "sub.bias"]
    m.register_buffer("scale", tl.ones(1))
    m.register_buffer("scale", tl.zeros(1))                # the same kind: replaced
    assert m.get_buffer("scale").tolist() == [0.0]
    seq = tl.nn.Sequential(tl.nn.BatchNorm1d(3))
    assert seq.get_buffer("0.running_mean").shape == (3,)
    with pytest.raises(AttributeError, match="no buffer 'nope'"):
        seq.get_buffer("0.nope")
