"""nn module constructors take any integer for sizes (NumPy integers, objects with
``__index__``), as PyTorch's, and store plain ints (reprs as PyTorch's with ints); floats
(and bools, where tensorlib refuses them) are still refused."""
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")


class Idx:
    """An integer-like object (operator.index), as PyTorch's size arguments take."""

    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


def _builders(i):
    """(name, build(nn)) with every size argument made by ``i``."""
    return [
        ("Conv1d", lambda nn: nn.Conv1d(i(4), i(4), i(3), stride=i(2), padding=i(1),
                                        dilation=i(1), groups=i(2))),
        ("Conv2d", lambda nn: nn.Conv2d(i(4), i(6), (i(3), 3), stride=(i(2), 1),
                                        padding=(i(1), 0))),
        ("Conv3d", lambda nn: nn.Conv3d(i(2), i(4), i(3))),
        ("ConvTranspose1d", lambda nn: nn.ConvTranspose1d(i(4), i(2), i(3))),
        ("ConvTranspose2d", lambda nn: nn.ConvTranspose2d(i(4), i(4), i(3), stride=i(2),
                                                          output_padding=i(1))),
        ("ConvTranspose3d", lambda nn: nn.ConvTranspose3d(i(2), i(2), i(3))),
        ("Linear", lambda nn: nn.Linear(i(4), i(5))),
        ("Bilinear", lambda nn: nn.Bilinear(i(2), i(3), i(4))),
        ("BatchNorm1d", lambda nn: nn.BatchNorm1d(i(4))),
        ("BatchNorm2d", lambda nn: nn.BatchNorm2d(i(4))),
        ("BatchNorm3d", lambda nn: nn.BatchNorm3d(i(4))),
        ("InstanceNorm2d", lambda nn: nn.InstanceNorm2d(i(4), affine=True)),
        ("GroupNorm", lambda nn: nn.GroupNorm(i(2), i(4))),
        ("LayerNorm", lambda nn: nn.LayerNorm(i(4))),
        ("LayerNorm-tuple", lambda nn: nn.LayerNorm((i(4), i(3)))),
        ("RMSNorm", lambda nn: nn.RMSNorm([i(4)])),
        ("MaxPool1d", lambda nn: nn.MaxPool1d(i(3), stride=i(2), padding=i(1))),
        ("MaxPool2d", lambda nn: nn.MaxPool2d((i(3), 2), dilation=i(1))),
        ("MaxPool3d", lambda nn: nn.MaxPool3d(i(2))),
        ("AvgPool2d", lambda nn: nn.AvgPool2d((i(3), i(3)), padding=i(1))),
        ("AvgPool3d", lambda nn: nn.AvgPool3d(i(2))),
        ("AdaptiveAvgPool2d", lambda nn: nn.AdaptiveAvgPool2d((i(4), None))),
        ("AdaptiveMaxPool1d", lambda nn: nn.AdaptiveMaxPool1d(i(4))),
        ("LPPool2d", lambda nn: nn.LPPool2d(2, i(3))),
        ("MaxUnpool2d", lambda nn: nn.MaxUnpool2d(i(2))),
        ("Upsample", lambda nn: nn.Upsample(size=i(4))),
        ("Upsample-tuple", lambda nn: nn.Upsample(size=(i(4), i(3)))),
        ("Flatten", lambda nn: nn.Flatten(i(1), i(-1))),
        ("ChannelShuffle", lambda nn: nn.ChannelShuffle(i(2))),
        ("LocalResponseNorm", lambda nn: nn.LocalResponseNorm(i(2))),
        ("PReLU", lambda nn: nn.PReLU(i(3))),
        ("Softmax", lambda nn: nn.Softmax(i(1))),
        ("GLU", lambda nn: nn.GLU(i(1))),
    ]


def _torch_repr(m) -> str:
    # PyTorch keeps the NumPy integers it is given (its repr shows np.int64(3));
    # tensorlib stores plain ints
    return re.sub(r"np\.u?int\d+\((-?\d+)\)", r"\1", repr(m)).replace("torch.", "")


def _ints(v):
    if isinstance(v, tuple):
        return all(_ints(e) for e in v)
    return v is None or type(v) is int


SIZE_ATTRS = ("in_channels", "out_channels", "groups", "kernel_size", "stride", "padding",
              "dilation", "output_padding", "in_features", "out_features", "in1_features",
              "in2_features", "num_features", "num_groups", "num_channels", "normalized_shape",
              "output_size", "size", "start_dim", "end_dim", "embed_dim", "num_heads", "kdim",
              "vdim", "head_dim", "input_size", "hidden_size", "num_layers", "proj_size",
              "num_parameters", "dim")


@pytest.mark.parametrize("make", [np.int64, np.int32, np.uint8, Idx],
                         ids=["int64", "int32", "uint8", "index"])
@pytest.mark.parametrize("name,build", _builders(lambda v: v), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_numpy_integers_as_pytorch(name, build, make):
    def i(v):       # uint8 cannot hold Flatten's -1
        return make(v) if v >= 0 or make is not np.uint8 else np.int64(v)
    m = dict(_builders(i))[name](tl.nn)
    # PyTorch's modules take NumPy integers, not every __index__ object: it gets ints then
    tbuild = dict(_builders(i if make is not Idx else (lambda v: v)))[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = tbuild(torch.nn)
    assert repr(m) == _torch_repr(t)
    for a in SIZE_ATTRS:
        if hasattr(m, a) and not callable(getattr(m, a)):
            assert _ints(getattr(m, a)), (a, getattr(m, a))
    assert sorted((k, tuple(v.shape)) for k, v in m.state_dict().items()) == \
        sorted((k, tuple(v.shape)) for k, v in t.state_dict().items())


def test_same_module_as_plain_ints():
    tl.manual_seed(0)
    a = tl.nn.Conv2d(np.int64(2), np.int64(3), np.int64(3), padding=np.int64(1))
    tl.manual_seed(0)
    b = tl.nn.Conv2d(2, 3, 3, padding=1)
    x = tl.randn(1, 2, 5, 5)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    assert repr(a) == repr(b)


@pytest.mark.parametrize("name", ["MultiheadAttention", "TransformerEncoderLayer",
                                  "Transformer", "RNN", "LSTM", "GRU", "LSTMCell",
                                  "GRUCell", "RNNCell", "Unflatten"])
def test_more_modules(name):
    n, two = np.int64(4), np.int64(2)
    build = {
        "MultiheadAttention": lambda nn: nn.MultiheadAttention(n, two, kdim=np.int64(3),
                                                               vdim=np.int64(5)),
        "TransformerEncoderLayer": lambda nn: nn.TransformerEncoderLayer(
            n, two, dim_feedforward=np.int64(8)),
        "Transformer": lambda nn: nn.Transformer(n, two, np.int64(1), np.int64(2),
                                                 np.int64(8)),
        # PyTorch refuses NumPy integers in the RNNs ("should be of type int"): a superset
        "RNN": lambda nn: nn.RNN(n, n, num_layers=two),
        "LSTM": lambda nn: nn.LSTM(n, n, proj_size=two),
        "GRU": lambda nn: nn.GRU(n, np.int32(3), bidirectional=True),
        "LSTMCell": lambda nn: nn.LSTMCell(n, two), "GRUCell": lambda nn: nn.GRUCell(n, two),
        "RNNCell": lambda nn: nn.RNNCell(n, two),
        "Unflatten": lambda nn: nn.Unflatten(np.int64(1), (two, np.int64(-1))),
    }[name]
    m = build(tl.nn)
    plain = {"RNN": lambda nn: nn.RNN(4, 4, num_layers=2),
             "LSTM": lambda nn: nn.LSTM(4, 4, proj_size=2),
             "GRU": lambda nn: nn.GRU(4, 3, bidirectional=True),
             "Unflatten": lambda nn: nn.Unflatten(1, (2, -1))}.get(name, build)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = plain(torch.nn)
    for mod in m.modules():
        for a in SIZE_ATTRS:
            if hasattr(mod, a) and not callable(getattr(mod, a)):
                assert _ints(getattr(mod, a)), (type(mod).__name__, a, getattr(mod, a))
    assert sorted((k, tuple(v.shape)) for k, v in m.state_dict().items()) == \
        sorted((k, tuple(v.shape)) for k, v in t.state_dict().items())
    if name == "Unflatten":
        assert m(tl.zeros(3, 8)).shape == (3, 2, 4)
    if name == "Transformer":
        assert len(m.decoder.layers) == 2 and type(m.decoder.num_layers) is int


REFUSED = [
    ("Linear float", lambda nn: nn.Linear(4.0, 2)),
    ("Linear np.float64", lambda nn: nn.Linear(np.float64(4), 2)),
    ("Conv2d float channels", lambda nn: nn.Conv2d(4.0, 2, 3)),
    ("Conv2d float kernel", lambda nn: nn.Conv2d(4, 2, 2.5)),
    ("Conv2d float in tuple", lambda nn: nn.Conv2d(4, 2, (3, 2.0))),
    ("Conv2d np.float64 channels", lambda nn: nn.Conv2d(np.float64(4), 2, 3)),
    ("BatchNorm2d float", lambda nn: nn.BatchNorm2d(4.0)),
    ("BatchNorm2d bool", lambda nn: nn.BatchNorm2d(True)),
    ("LayerNorm float", lambda nn: nn.LayerNorm(4.0)),
    ("LayerNorm np.bool_", lambda nn: nn.LayerNorm(np.bool_(True))),
    ("MultiheadAttention float", lambda nn: nn.MultiheadAttention(4.0, 2)),
    ("Bilinear float", lambda nn: nn.Bilinear(2.0, 2, 2)),
    ("LSTM float", lambda nn: nn.LSTM(4.0, 2)),
    ("Unflatten float", lambda nn: nn.Unflatten(1, (2.0, 2))),
    ("PReLU float", lambda nn: nn.PReLU(2.0)),
]


@pytest.mark.parametrize("name,build", REFUSED, ids=[r[0] for r in REFUSED])
def test_floats_refused_as_pytorch(name, build):
    with pytest.raises((TypeError, ValueError)):
        build(torch.nn)
    with pytest.raises((TypeError, ValueError)) as e:
        build(tl.nn)
    msg = str(e.value)
    assert "must be" in msg, msg


def test_bools_still_refused_in_sizes():
    # PyTorch takes Linear(True, 2) as Linear(1, 2); tensorlib refuses a bool as a size
    with pytest.raises(ValueError, match="Linear: in_features"):
        tl.nn.Linear(True, 2)
    with pytest.raises(ValueError, match="Conv2d: in_channels"):
        tl.nn.Conv2d(True, 2, 3)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint64]),
       st.integers(1, 6), st.integers(1, 6), st.integers(1, 3), st.integers(1, 2))
def test_conv_linear_shapes_random(dt, cin, cout, k, s):
    m = tl.nn.Conv1d(dt(cin), dt(cout), dt(k), stride=dt(s))
    t = torch.nn.Conv1d(cin, cout, k, stride=s)
    assert tuple(m.weight.shape) == tuple(t.weight.shape)
    assert repr(m) == _torch_repr(t)
    lin = tl.nn.Linear(dt(cin), dt(cout))
    assert tuple(lin.weight.shape) == (cout, cin) and type(lin.in_features) is int


def test_embedding_and_padding_modules_take_numpy_integers():
    torch = pytest.importorskip("torch")
    e = tl.nn.Embedding(np.int64(5), np.int64(3), padding_idx=np.int64(1))
    assert (type(e.num_embeddings), e.padding_idx) == (int, 1)
    assert repr(e) == repr(torch.nn.Embedding(5, 3, padding_idx=1))
    assert repr(tl.nn.EmbeddingBag(np.int32(5), 3)) == repr(torch.nn.EmbeddingBag(5, 3))
    assert repr(tl.nn.ZeroPad2d(np.int64(2))) == repr(torch.nn.ZeroPad2d(2))
    assert tl.nn.ConstantPad1d((1, np.int32(2)), 0.5).padding == (1, 2)
    with pytest.raises(ValueError, match="padding must be an int"):
        tl.nn.ZeroPad2d(1.5)
    with pytest.raises(ValueError, match="padding_idx must be an integer"):
        tl.nn.Embedding(5, 3, padding_idx=1.0)
