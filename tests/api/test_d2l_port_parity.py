"""What the d2l.ai port found, checked against PyTorch: arange's values and lengths,
``size=`` on the factories, Sequential's renumbering and list methods, the transformer
layers' parameter order, bare grad-mode decorators, lazy modules, RNN flat weights and
Multinomial."""
import copy
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tensorlib as tl
from tensorlib import nn

torch = pytest.importorskip("torch", reason="PyTorch not installed (pip install torch==2.13.0)")
pytestmark = pytest.mark.torch


def _attempt(f):
    try:
        return f()
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        return type(e)


# --- 1. arange -----------------------------------------------------------------------------

ARANGES = [(-8.0, 8.0, 0.1), (-7, 7, 0.01), (0, 1, 0.1), (1e6, 1e6 + 100, 0.37),
           (5.0, -3.0, -0.3), (0, 1000, 0.01), (5,), (1, 10, 3), (10, 1, -3),
           (0.0, -1.0, -0.25), (-3.7, 4.2, 1.3), (0,), (2.5,)]
DTYPES = [None, "float16", "float32", "float64", "int64", "int32", "int16"]


def _compare_arange(args, dtype):
    kw_t = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    kw = {} if dtype is None else {"dtype": dtype}
    want = _attempt(lambda: torch.arange(*args, **kw_t).numpy())
    got = _attempt(lambda: tl.arange(*args, **kw).numpy())
    if isinstance(want, type):                  # PyTorch refuses: so do we
        assert isinstance(got, type), (args, dtype, got)
        return
    assert got.shape == want.shape and got.dtype == want.dtype, (args, dtype)
    if want.dtype.kind == "f":
        # PyTorch's vectorised CPU kernel rounds each block's base to the dtype first, so
        # its values sit within an ulp of the range's magnitude of start + i * step (never
        # the drift of accumulating in float32, 16 ulps at the end of (-8, 8, 0.1))
        bounds = (0.0, args[0]) if len(args) == 1 else args[:2]
        top = np.array(max(abs(float(b)) for b in bounds), want.dtype)
        ulp = float(np.spacing(top)) if np.isfinite(top) else 0.0
        same = got == want                      # inf where a float16 range overflows
        with np.errstate(invalid="ignore"):
            diff = np.where(same, 0.0, np.abs(got.astype(np.float64) - want.astype(np.float64)))
        assert float(diff.max(initial=0.0)) <= ulp, (args, dtype, float(diff.max()), ulp)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("args", ARANGES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_arange_matches_torch(args, dtype):
    _compare_arange(args, dtype)


@given(st.floats(-50, 50), st.floats(0.01, 20), st.floats(0.003, 3), st.booleans(),
       st.sampled_from(["float16", "float32", "float64", "int64", "int32"]))
def test_arange_matches_torch_hypothesis(start, span, step, down, dtype):
    if down:
        _compare_arange((start, start - span, -step), dtype)
    else:
        _compare_arange((start, start + span, step), dtype)


def test_arange_float32_is_start_plus_i_step_in_double():
    # start + i * step rounded once to double (a fused multiply-add, as PyTorch's kernel),
    # then to float32: the exact rational value, rounded
    x = tl.arange(-8.0, 8.0, 0.1)
    want = np.array([float(Fraction(-8.0) + Fraction(0.1) * i) for i in range(160)],
                    np.float64).astype(np.float32)
    np.testing.assert_array_equal(x.numpy(), want)
    assert x[80].item() == torch.arange(-8.0, 8.0, 0.1)[80].item() == 2.0 ** -51  # not -7.6e-06
    d = tl.arange(0.0, 3.0, 0.1, dtype="float64").numpy()
    np.testing.assert_array_equal(d, [float(Fraction(0.1) * i) for i in range(30)])
    assert x[-1].item() == np.float32(7.9)
    xt = tl.arange(-8.0, 8.0, 0.1, requires_grad=True)
    tl.relu(xt).sum().backward()
    assert xt.grad[80].item() == 1.0                      # relu'(0+) as PyTorch's, not 0
    h = tl.arange(0.0, 100.0, 0.3, dtype="float16").numpy()
    np.testing.assert_array_equal(
        h, (np.float32(0.0) + np.float32(0.3) * np.arange(h.size, dtype=np.float32))
        .astype(np.float16))


def test_arange_length_and_errors():
    assert tl.arange(0, 1, 0.1).shape == (10,)            # ceil(1 / 0.1) in double
    assert tl.arange(0.5, 5, 1.5, dtype="int64").tolist() == [0, 1, 2, 3, 4]
    assert tl.arange(0, -5, -1.5, dtype="int32").tolist() == [0, -1, -2, -3]
    assert tl.arange(tl.tensor(3)).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="inconsistent with step sign"):
        tl.arange(5, 0)
    with pytest.raises(ValueError, match="unsupported range"):
        tl.arange(float("nan"), 5.0)
    with pytest.raises(ValueError, match="truncates to 0"):
        tl.arange(0, 5, 0.5, dtype="int64")
    with pytest.raises(ValueError, match="non-zero"):
        tl.arange(0, 5, 0)


# --- 2. size= ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["rand", "randn", "zeros", "ones", "empty"])
def test_factories_accept_size_keyword(name):
    f, tf = getattr(tl, name), getattr(torch, name)
    assert f(size=(2, 4)).shape == tuple(tf(size=(2, 4)).shape)
    assert f(size=[3]).shape == (3,)
    assert f(size=()).shape == ()
    assert f(size=(2, 3), dtype="float64").dtype == np.float64
    with pytest.raises(TypeError, match="both positionally"):
        f(2, size=(3,))
    with pytest.raises(TypeError, match="tuple or list"):
        f(size=3)
    with pytest.raises(TypeError, match="unexpected keyword"):
        f(sizes=(3,))


def test_randint_full_normal_size_keyword():
    assert tl.randint(high=5, size=(2, 3)).shape == (2, 3)
    assert tl.randint(2, 5, size=(4,)).shape == (4,)
    assert int(tl.randint(3, 5, size=(100,)).min()) >= 3
    assert tl.full(size=(2,), fill_value=3.0).tolist() == [3.0, 3.0]
    assert tl.normal(0.0, 1.0, size=(2, 20)).shape == (2, 20)
    with pytest.raises(TypeError, match="upper bound"):
        tl.randint(size=(2,))


def test_randn_size_keyword_is_random_and_seeded():
    tl.manual_seed(1)
    a = tl.randn(size=(2, 20))
    tl.manual_seed(1)
    b = tl.randn(2, 20)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


# --- 3. Sequential -------------------------------------------------------------------------

def _seq(lib):
    m = lib.nn
    return m.Sequential(m.Linear(3, 4), m.ReLU(), m.Linear(4, 2), m.Tanh())


SEQ_EDITS = {
    "del": lambda s, m: s.__delitem__(1),
    "del-append": lambda s, m: (s.__delitem__(1), s.append(m.Linear(2, 2))),
    "del-neg": lambda s, m: s.__delitem__(-1),
    "del-slice": lambda s, m: s.__delitem__(slice(0, 2)),
    "del-step": lambda s, m: s.__delitem__(slice(None, None, 2)),
    "del-out": lambda s, m: s.__delitem__(7),
    "insert": lambda s, m: s.insert(1, m.Linear(4, 4)),
    "insert-neg": lambda s, m: s.insert(-1, m.Linear(2, 2)),
    "insert-end": lambda s, m: s.insert(4, m.Linear(2, 2)),
    "insert-out": lambda s, m: s.insert(5, m.Linear(2, 2)),
    "pop": lambda s, m: s.pop(1),
    "extend": lambda s, m: s.extend([m.Linear(2, 3), m.ReLU()]),
    "setitem": lambda s, m: s.__setitem__(-2, m.Linear(4, 5)),
    "iadd": lambda s, m: s.__iadd__(_seq(torch if m is torch.nn else tl)),
}


@pytest.mark.parametrize("edit", list(SEQ_EDITS))
def test_sequential_edits_match_torch(edit):
    results = []
    for lib in (torch, tl):
        s = _seq(lib)
        r = _attempt(lambda: SEQ_EDITS[edit](s, lib.nn))
        results.append((r if isinstance(r, type) else None, list(s.state_dict()),
                        [type(x).__name__ for x in s], list(s._modules)))
    (te, tk, tt, tm), (ge, gk, gt, gm) = results
    assert (te is None) == (ge is None) and (te is None or issubclass(ge, (IndexError,)) ==
                                             issubclass(te, IndexError))
    assert gk == tk and gt == tt and gm == tm


def test_sequential_slices_and_products_match_torch():
    t, g = _seq(torch), _seq(tl)
    assert list(g[1:].state_dict()) == list(t[1:].state_dict())
    assert list(g[::2]._modules) == list(t[::2]._modules)
    assert list((g + g).state_dict()) == list((t + t).state_dict())
    assert list((g * 2).state_dict()) == list((t * 2).state_dict())
    assert list((2 * g).state_dict()) == list((2 * t).state_dict())


def test_sequential_del_then_load_torch_state_dict():
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    del t[1]
    g = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    del g[1]
    g.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(g(tl.tensor(x)).numpy(),
                               t(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    first = g[0]
    g.append(nn.Linear(2, 2))
    assert g[0] is first and len(g) == 3        # the append did not overwrite a layer


def test_sequential_insert_errors():
    s = nn.Sequential(nn.ReLU())
    with pytest.raises(TypeError, match="nn.Module"):
        s.insert(0, "relu")
    assert s.insert(0, nn.Tanh()) is s


# --- 4. transformer parameter order ---------------------------------------------------------

TRANSFORMER_CASES = {
    "encoder-layer": lambda m: m.TransformerEncoderLayer(8, 2, 16),
    "encoder-layer-norm-first-nobias": lambda m: m.TransformerEncoderLayer(
        8, 2, 16, norm_first=True, bias=False),
    "decoder-layer": lambda m: m.TransformerDecoderLayer(8, 2, 16),
    "decoder-layer-norm-first": lambda m: m.TransformerDecoderLayer(8, 2, 16, norm_first=True),
    "encoder": lambda m: m.TransformerEncoder(m.TransformerEncoderLayer(8, 2, 16), 2,
                                              m.LayerNorm(8)),
    "decoder": lambda m: m.TransformerDecoder(m.TransformerDecoderLayer(8, 2, 16), 2,
                                              m.LayerNorm(8)),
    "transformer": lambda m: m.Transformer(8, 2, 2, 2, 16),
    "mha": lambda m: m.MultiheadAttention(8, 2),
    "mha-kdim-vdim": lambda m: m.MultiheadAttention(8, 2, kdim=4, vdim=6),
    "mha-nobias": lambda m: m.MultiheadAttention(8, 2, bias=False),
}


@pytest.mark.parametrize("case", list(TRANSFORMER_CASES))
@pytest.mark.filterwarnings("ignore")
def test_transformer_parameter_order_matches_torch(case):
    t, g = TRANSFORMER_CASES[case](torch.nn), TRANSFORMER_CASES[case](nn)
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert list(g.state_dict()) == list(t.state_dict())
    assert [n for n, _ in g.named_modules()] == [n for n, _ in t.named_modules()]


@pytest.mark.filterwarnings("ignore")
def test_decoder_layer_loads_torch_weights_in_order():
    t = torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0).eval()
    g = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0).eval()
    # positional copy: only right when both orders agree
    for p, q in zip(g.parameters(), t.parameters()):
        p.data = tl.tensor(q.detach().numpy())
    rng = np.random.default_rng(0)
    x, mem = (rng.standard_normal(s).astype(np.float32) for s in ((5, 2, 8), (4, 2, 8)))
    np.testing.assert_allclose(g(tl.tensor(x), tl.tensor(mem)).numpy(),
                               t(torch.tensor(x), torch.tensor(mem)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


# --- 5. bare grad-mode decorators ----------------------------------------------------------

def test_bare_no_grad_enable_grad_inference_mode():
    @tl.no_grad
    def doubled(x):
        return x * 2

    @tl.enable_grad
    def tracked(x):
        return x * 2

    @tl.inference_mode
    def inferred(x):
        return x * 2

    x = tl.ones(2, requires_grad=True)
    assert doubled.__name__ == "doubled"
    assert not doubled(x).requires_grad
    with tl.no_grad():
        assert tracked(x).requires_grad
    assert inferred(x).is_inference()
    assert tl.is_grad_enabled()

    @tl.no_grad
    def gen():
        yield tl.is_grad_enabled()
    assert list(gen()) == [False]
    with pytest.raises(TypeError, match="no arguments"):
        tl.no_grad(3)

    # the same spellings in PyTorch behave alike
    tx = torch.ones(2, requires_grad=True)
    assert torch.no_grad(lambda v: v * 2)(tx).requires_grad is False
    assert not tl.no_grad(lambda v: v * 2)(x).requires_grad


# --- 6. lazy modules -----------------------------------------------------------------------

def _copy_weights(src_torch, dst):
    assert list(src_torch.state_dict()) == list(dst.state_dict())
    dst.load_state_dict({k: v.detach().numpy() for k, v in src_torch.state_dict().items()})


LAZY = [
    ("linear", "LazyLinear", (4,), {}, (3, 5), "Linear"),
    ("linear-nobias-3d", "LazyLinear", (4,), {"bias": False}, (2, 3, 5), "Linear"),
    ("conv1d", "LazyConv1d", (4, 3), {"stride": 2}, (2, 3, 10), "Conv1d"),
    ("conv2d", "LazyConv2d", (4, 3), {"padding": 1}, (2, 3, 8, 8), "Conv2d"),
    ("conv2d-groups", "LazyConv2d", (4, 3), {"groups": 2}, (2, 6, 7, 7), "Conv2d"),
    ("conv2d-unbatched", "LazyConv2d", (4, 3), {}, (3, 6, 6), "Conv2d"),
    ("conv3d", "LazyConv3d", (2, 3), {}, (1, 2, 5, 5, 5), "Conv3d"),
    ("convT1d", "LazyConvTranspose1d", (4, 3), {"stride": 2}, (2, 3, 6), "ConvTranspose1d"),
    ("convT2d", "LazyConvTranspose2d", (4, 3), {"padding": 1}, (2, 3, 5, 5),
     "ConvTranspose2d"),
    ("bn1d", "LazyBatchNorm1d", (), {}, (6, 7), "BatchNorm1d"),
    ("bn2d", "LazyBatchNorm2d", (), {}, (4, 3, 5, 5), "BatchNorm2d"),
    ("bn3d", "LazyBatchNorm3d", (), {}, (2, 3, 2, 3, 2), "BatchNorm3d"),
    ("in1d", "LazyInstanceNorm1d", (), {}, (2, 3, 6), "InstanceNorm1d"),
    ("in1d-plain", "LazyInstanceNorm1d", (), {"affine": False, "track_running_stats": False},
     (2, 3, 6), "InstanceNorm1d"),
    ("in2d-untracked", "LazyInstanceNorm2d", (), {"track_running_stats": False},
     (2, 3, 4, 4), "InstanceNorm2d"),
]


@pytest.mark.parametrize("case", LAZY, ids=[c[0] for c in LAZY])
@pytest.mark.filterwarnings("ignore:input's size at dim=1")
def test_lazy_module_matches_torch(case):
    _, cls, args, kw, shape, becomes = case
    t, g = getattr(torch.nn, cls)(*args, **kw), getattr(nn, cls)(*args, **kw)
    assert g.has_uninitialized_params() == t.has_uninitialized_params()
    assert type(g).__name__ == cls
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    t(torch.tensor(x))
    g(tl.tensor(x))
    assert type(g) is getattr(nn, becomes) and type(t).__name__ == becomes
    assert list(g.state_dict()) == list(t.state_dict())
    for (n, p), q in zip(g.state_dict().items(), t.state_dict().values()):
        assert tuple(p.shape) == tuple(q.shape), n
    _copy_weights(t, g)
    x2 = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    g.eval()
    t.eval()
    np.testing.assert_allclose(g(tl.tensor(x2)).numpy(), t(torch.tensor(x2)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    assert "in_features=0" not in repr(g) and "(0," not in repr(g)


def test_lazy_uninitialized_errors_and_state():
    m = nn.LazyLinear(4)
    assert m.has_uninitialized_params()
    assert isinstance(m.weight, nn.UninitializedParameter)
    assert repr(m.weight) == "<UninitializedParameter>"
    assert repr(m) == repr(torch.nn.LazyLinear(4))
    with pytest.raises(RuntimeError, match="Can't access the shape of an uninitialized"):
        _ = m.weight.shape
    with pytest.raises((RuntimeError, ValueError), match="uninitialized parameter"):
        m.weight + 1
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
        m.weight.numel()
    with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter"):
        np.asarray(m.weight)
    sd = m.state_dict()                            # PyTorch's: the uninitialized tensors
    assert all(isinstance(v, nn.UninitializedParameter) for v in sd.values())
    with pytest.raises((RuntimeError, ValueError), match="uninitialized parameter"):
        tl.save(sd, "/tmp/_d2l_lazy_never_written.safetensors")
    # a model whose lazy layers never ran takes a checkpoint's shapes (d2l's clone pattern)
    clone = nn.Sequential(nn.LazyLinear(2), nn.ReLU(), nn.LazyLinear(1))
    clone.load_state_dict({"0.weight": np.ones((2, 3)), "0.bias": np.zeros(2),
                           "2.weight": np.ones((1, 2)), "2.bias": np.zeros(1)})
    assert not clone[0].has_uninitialized_params() and clone[0].weight.shape == (2, 3)
    np.testing.assert_allclose(clone(tl.ones(1, 3)).numpy(), [[6.0]])


def test_lazy_optimizer_built_before_the_dry_run_trains():
    # PyTorch allows it: materializing keeps each parameter object
    m = nn.LazyLinear(3)
    w = m.weight
    opt = tl.optim.SGD(m.parameters(), lr=0.1)
    y = m(tl.randn(4, 5))
    assert m.weight is w and isinstance(w, nn.Parameter)
    assert not isinstance(w, nn.UninitializedParameter)
    before = w.numpy().copy()
    y.sum().backward()
    opt.step()
    np.testing.assert_allclose(w.numpy(), before - 0.1 * w.grad.numpy(), rtol=1e-6)


def test_lazy_load_state_dict_materializes():
    t = torch.nn.Linear(3, 4)
    g = nn.LazyLinear(4)
    g.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    assert not g.has_uninitialized_params()
    np.testing.assert_array_equal(g.weight.numpy(), t.weight.detach().numpy())
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(g(tl.tensor(x)).numpy(), t(torch.tensor(x)).detach().numpy(),
                               rtol=1e-6)
    assert type(g) is nn.Linear and g.in_features == 3
    c = nn.LazyConv2d(4, 3, groups=2)
    c.load_state_dict({k: v.detach().numpy()
                       for k, v in torch.nn.Conv2d(6, 4, 3, groups=2).state_dict().items()})
    assert c.in_channels == 6
    b = nn.LazyBatchNorm1d()
    b.load_state_dict({k: v.numpy() for k, v in torch.nn.BatchNorm1d(5).state_dict().items()})
    assert b.num_features == 5 and tuple(b.running_var.shape) == (5,)


def test_lazy_d2l_apply_after_dry_run_and_deepcopy():
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))
    twin = copy.deepcopy(net)
    net(tl.randn(2, 5))

    def init_fn(m):
        if type(m) is nn.Linear:
            nn.init.constant_(m.weight, 0.5)
            nn.init.zeros_(m.bias)
    net.apply(init_fn)
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear"]
    np.testing.assert_array_equal(net[0].weight.numpy(), np.full((8, 5), 0.5, np.float32))
    out = net(tl.ones(1, 5))
    np.testing.assert_allclose(out.numpy(), np.full((1, 2), 8 * 2.5 * 0.5, np.float32))
    assert twin.state_dict()["0.weight"] is not net.state_dict()["0.weight"]
    assert twin[0].has_uninitialized_params()
    twin(tl.randn(3, 7))
    assert twin[0].in_features == 7


def test_lazy_dtype_device_and_bad_input():
    m = nn.LazyLinear(4, dtype="float64")
    m(tl.randn(2, 3, dtype="float64"))
    assert m.weight.dtype == np.float64
    d = nn.LazyLinear(4).double()
    d(tl.randn(2, 3, dtype="float64"))
    assert d.weight.dtype == np.float64
    c = nn.LazyConv2d(4, 3)
    with pytest.raises(RuntimeError, match="Expected 3D"):
        c(tl.randn(2, 2))
    g = nn.LazyConv2d(4, 3, groups=2)
    with pytest.raises(ValueError, match="divisible by groups"):
        g(tl.randn(1, 3, 5, 5))


# --- 7. RNN flat weights -------------------------------------------------------------------

RNNS = [lambda m: m.GRU(2, 3), lambda m: m.RNN(2, 3, num_layers=3, bias=False),
        lambda m: m.LSTM(2, 4, num_layers=2, bidirectional=True, proj_size=2)]


@pytest.mark.parametrize("make", RNNS, ids=["gru", "rnn-3-nobias", "lstm-bi-proj"])
def test_rnn_flat_weights_match_torch(make):
    t, g = make(torch.nn), make(nn)
    assert g._flat_weights_names == t._flat_weights_names
    assert len(g._flat_weights) == len(t._flat_weights)
    assert all(w is getattr(g, n) for w, n in zip(g._flat_weights, g._flat_weights_names))


def test_d2l_init_seq2seq_pattern():
    gru = nn.GRU(2, 3, num_layers=2)
    for name in gru._flat_weights_names:
        if "weight" in name:
            nn.init.constant_(gru._parameters[name], 0.25)
    assert all(float(abs(p - 0.25).max()) == 0 for n, p in gru.named_parameters()
               if "weight" in n)
    gru.weight_hh_l0 = nn.Parameter(tl.zeros(9, 3))
    assert gru._flat_weights[1] is gru.weight_hh_l0


# --- 8. Multinomial ------------------------------------------------------------------------

MULTI = [
    (7, "probs", [[0.1, 0.2, 0.7], [0.5, 0.5, 0.0]], [[1, 2, 4], [3, 4, 0]]),
    (7, "logits", [[0.3, -1.0, 2.0], [0.0, 0.0, -math.inf]], [[1, 2, 4], [3, 4, 0]]),
    (10, "probs", [1 / 6] * 6, [[1, 2, 3, 4, 0, 0], [10, 0, 0, 0, 0, 0]]),
    (3, "probs", [0.2, 0.3, 0.5], [0, 0, 3]),
]


@pytest.mark.parametrize("case", MULTI, ids=[str(i) for i in range(len(MULTI))])
def test_multinomial_matches_torch(case):
    n, which, param, value = case
    p64 = np.array(param, np.float64)
    t = torch.distributions.Multinomial(n, **{which: torch.tensor(p64)})
    g = tl.distributions.Multinomial(n, **{which: tl.tensor(p64)})
    v = np.array(value, np.float64)
    np.testing.assert_allclose(g.log_prob(tl.tensor(v)).numpy(),
                               t.log_prob(torch.tensor(v)).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.mean.numpy(), t.mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(g.variance.numpy(), t.variance.numpy(), rtol=1e-12)
    # PyTorch takes log(n!) of an int64 tensor, in float32: 1e-6 is its precision
    np.testing.assert_allclose(g.entropy().numpy(), t.entropy().numpy(), rtol=1e-6)
    assert g.batch_shape == tuple(t.batch_shape) and g.event_shape == tuple(t.event_shape)
    for shape in [(), (5,), (4, 2)]:
        s = g.sample(shape)
        assert tuple(s.shape) == tuple(t.sample(shape).shape)
        assert s.dtype == np.float64
        np.testing.assert_array_equal(s.numpy().sum(-1), n)
        assert bool(g.support.check(s).all())


def test_multinomial_sample_statistics_and_gradient():
    probs = tl.tensor([0.1, 0.2, 0.3, 0.4])
    counts = tl.distributions.Multinomial(10, probs).sample((4000,))
    assert counts.dtype == np.float32
    np.testing.assert_allclose(counts.numpy().mean(0), [1, 2, 3, 4], atol=0.1)
    assert float(counts.numpy()[:, 0].max()) <= 10
    never = tl.distributions.Multinomial(5, tl.tensor([0.5, 0.0, 0.5])).sample((200,))
    assert float(never.numpy()[:, 1].max()) == 0
    logits = tl.tensor([0.2, -0.4, 1.0], dtype="float64", requires_grad=True)
    v = tl.tensor([2.0, 1.0, 3.0], dtype="float64")
    tl.distributions.Multinomial(6, logits=logits).log_prob(v).backward()
    tlog = torch.tensor([0.2, -0.4, 1.0], dtype=torch.float64, requires_grad=True)
    torch.distributions.Multinomial(6, logits=tlog).log_prob(
        torch.tensor([2.0, 1.0, 3.0], dtype=torch.float64)).backward()
    np.testing.assert_allclose(logits.grad.numpy(), tlog.grad.numpy(), rtol=1e-10)


def test_multinomial_validation_and_expand():
    d = tl.distributions.Multinomial(5, tl.tensor([0.2, 0.8]))
    with pytest.raises(ValueError, match="summing to at most total_count=5"):
        d.log_prob(tl.tensor([6.0, 0.0]))
    with pytest.raises(ValueError, match="summing to at most"):
        d.log_prob(tl.tensor([-1.0, 2.0]))
    with pytest.raises(NotImplementedError, match="inhomogeneous"):
        tl.distributions.Multinomial(tl.tensor([3, 4]), tl.tensor([0.2, 0.8]))
    e = d.expand((3,))
    assert e.batch_shape == (3,) and tuple(e.sample().shape) == (3, 2)
    assert d.support.upper_bound == 5 and d.support.event_dim == 1
    assert tl.distributions.Multinomial(0, tl.tensor([0.5, 0.5])).sample().tolist() == [0, 0]


def test_new_tensor_methods_take_size_keyword():
    x = tl.ones(2, dtype=tl.float64)
    for name in ("new_zeros", "new_ones", "new_empty"):
        t = getattr(x, name)(size=(2, 3))
        assert t.shape == (2, 3) and t.dtype == tl.float64
    with pytest.raises(TypeError, match="positionally or as size="):
        x.new_zeros(2, size=(3,))
