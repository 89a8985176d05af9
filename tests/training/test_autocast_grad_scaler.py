"""tl.autocast and tl.amp.GradScaler against torch.autocast / torch.amp.GradScaler (CPU)."""
from __future__ import annotations

import inspect
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.amp import policy as P
from tensorlib.amp.cast import takes_over
from tensorlib.ops import matrix as OM
from tensorlib.ops import nn_act as OA
from tensorlib.ops import nn_distance as OD
from tensorlib.ops import nn_layers as OLY
from tensorlib.ops import nn_loss as OLS
from tensorlib.ops import nn_loss_likelihood as OLL
from tensorlib.ops import nn_loss_margin as OLM
from tensorlib.ops import nn_norm as ON
from tensorlib.ops import reduction as OR

torch = pytest.importorskip("torch")
TF = torch.nn.functional

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
TORCH_DT = {torch.float16: F16, torch.float32: F32, torch.float64: F64}


def ac():
    return tl.autocast("cpu", dtype=tl.float16)


def tac():
    return torch.autocast("cpu", dtype=torch.float16)


# --- inputs: one set of arrays for both libraries -------------------------------------------
def normal(*shape, lo=None):
    def make(rng):
        a = rng.standard_normal(shape).astype(np.float32)
        return np.abs(a) + lo if lo is not None else a
    return make


def uniform(*shape, lo=0.05, hi=0.95):
    return lambda rng: rng.uniform(lo, hi, shape).astype(np.float32)


def signs(*shape):
    return lambda rng: np.where(rng.standard_normal(shape) > 0, 1.0, -1.0).astype(np.float32)


def classes(n, c):
    return lambda rng: rng.integers(0, c, n).astype(np.int64)


def spd(n):
    def make(rng):
        a = rng.standard_normal((n, n)).astype(np.float32)
        return (a @ a.T / n + np.eye(n, dtype=np.float32)).astype(np.float32)
    return make


def make_inputs(makers, dtype, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [m(rng) for m in makers]
    return [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]


def both(arrays, grad=False):
    xs = [tl.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    ys = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    return xs, ys


def host(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().numpy()
    return x.numpy() if isinstance(x, tl.Tensor) else np.asarray(x)


def close16(got, want, scale=None):
    """Within float16 rounding of the result (and of the float16 inputs it was made from)."""
    g, w = host(got).astype(np.float64), host(want).astype(np.float64)
    assert g.shape == w.shape, (g.shape, w.shape)
    s = scale if scale is not None else max(1.0, float(np.abs(w).max()))
    np.testing.assert_allclose(g, w, rtol=2e-2, atol=1e-2 * s)


# --- the CPU rules, each op against PyTorch -------------------------------------------------
# (id, tensorlib function, torch function, input makers, input dtype)
LOWER_CASES = [
    ("matmul", tl.matmul, torch.matmul, [normal(4, 6), normal(6, 5)]),
    ("mm", tl.mm, torch.mm, [normal(4, 6), normal(6, 5)]),
    ("bmm", tl.bmm, torch.bmm, [normal(2, 3, 4), normal(2, 4, 5)]),
    ("addmm", tl.addmm, torch.addmm, [normal(3, 5), normal(3, 4), normal(4, 5)]),
    ("baddbmm", tl.baddbmm, torch.baddbmm, [normal(2, 3, 5), normal(2, 3, 4), normal(2, 4, 5)]),
    ("linear", F.linear, TF.linear, [normal(4, 6), normal(5, 6), normal(5)]),
    ("conv1d", F.conv1d, TF.conv1d, [normal(2, 3, 9), normal(4, 3, 3), normal(4)]),
    ("conv2d", F.conv2d, TF.conv2d, [normal(2, 3, 7, 7), normal(4, 3, 3, 3), normal(4)]),
    ("conv3d", F.conv3d, TF.conv3d, [normal(1, 2, 5, 5, 5), normal(3, 2, 2, 2, 2)]),
    ("conv_transpose1d", F.conv_transpose1d, TF.conv_transpose1d,
     [normal(2, 3, 6), normal(3, 4, 3), normal(4)]),
    ("conv_transpose2d", F.conv_transpose2d, TF.conv_transpose2d,
     [normal(2, 3, 5, 5), normal(3, 4, 3, 3), normal(4)]),
    ("conv_transpose3d", F.conv_transpose3d, TF.conv_transpose3d,
     [normal(1, 2, 3, 3, 3), normal(2, 3, 2, 2, 2), normal(3)]),
    ("sdpa", F.scaled_dot_product_attention, TF.scaled_dot_product_attention,
     [normal(2, 2, 5, 8), normal(2, 2, 6, 8), normal(2, 2, 6, 4)]),
    ("sdpa_mask", F.scaled_dot_product_attention, TF.scaled_dot_product_attention,
     [normal(2, 5, 8), normal(2, 6, 8), normal(2, 6, 4), normal(5, 6)]),
    ("prelu", F.prelu, TF.prelu, [normal(2, 3, 4), uniform(3)]),
    ("einsum", lambda a, b: tl.einsum("bij,bkj->bik", a, b),
     lambda a, b: torch.einsum("bij,bkj->bik", a, b), [normal(2, 3, 4), normal(2, 5, 4)]),
    ("tensordot", lambda a, b: tl.tensordot(a, b, 1), lambda a, b: torch.tensordot(a, b, 1),
     [normal(3, 4), normal(4, 5)]),
    ("mha_module", None, None, None),   # below: a module built of linear and sdpa
]

# float32 ops of PyTorch's CPU list: float16 inputs, float32 results (the tensorlib function
# that carries the policy; the tl.nn.functional spelling is tested below)
FP32_CASES = [
    ("cross_entropy", OLS.cross_entropy, TF.cross_entropy, [normal(4, 6), classes(4, 6)]),
    ("nll_loss", OLS.nll_loss, TF.nll_loss, [normal(4, 6), classes(4, 6)]),
    ("mse_loss", OLS.mse_loss, TF.mse_loss, [normal(4, 6), normal(4, 6)]),
    ("l1_loss", OLS.l1_loss, TF.l1_loss, [normal(4, 6), normal(4, 6)]),
    ("smooth_l1_loss", OLS.smooth_l1_loss, TF.smooth_l1_loss, [normal(4, 6), normal(4, 6)]),
    ("huber_loss", OLS.huber_loss, TF.huber_loss, [normal(4, 6), normal(4, 6)]),
    ("kl_div", lambda x, y: OLS.kl_div(x, y, reduction="batchmean"),
     lambda x, y: TF.kl_div(x, y, reduction="batchmean"), [normal(4, 6), uniform(4, 6)]),
    ("binary_cross_entropy", OLS.binary_cross_entropy, TF.binary_cross_entropy,
     [uniform(4, 6), uniform(4, 6)]),
    ("binary_cross_entropy_with_logits", OLS.binary_cross_entropy_with_logits,
     TF.binary_cross_entropy_with_logits, [normal(4, 6), uniform(4, 6)]),
    ("poisson_nll_loss", OLL.poisson_nll_loss, TF.poisson_nll_loss,
     [normal(4, 6), normal(4, 6, lo=0.0)]),
    ("margin_ranking_loss", OLM.margin_ranking_loss, TF.margin_ranking_loss,
     [normal(6), normal(6), signs(6)]),
    ("hinge_embedding_loss", OLM.hinge_embedding_loss, TF.hinge_embedding_loss,
     [normal(4, 6), signs(4, 6)]),
    ("soft_margin_loss", OLM.soft_margin_loss, TF.soft_margin_loss, [normal(4, 6), signs(4, 6)]),
    ("cosine_embedding_loss", OLM.cosine_embedding_loss, TF.cosine_embedding_loss,
     [normal(4, 6), normal(4, 6), signs(4)]),
    ("triplet_margin_loss", OLM.triplet_margin_loss, TF.triplet_margin_loss,
     [normal(4, 6), normal(4, 6), normal(4, 6)]),
    ("multi_margin_loss", OLM.multi_margin_loss, TF.multi_margin_loss,
     [normal(4, 6), classes(4, 6)]),
    ("multilabel_margin_loss", OLM.multilabel_margin_loss, TF.multilabel_margin_loss,
     [normal(4, 6), lambda rng: np.array([[3, 0, -1, 1, 2, 2]] * 4)]),
    ("ctc_loss", lambda lp, t: F.ctc_loss(lp, t, [6, 5, 6], [2, 2, 1]),
     lambda lp, t: TF.ctc_loss(lp, t, [6, 5, 6], [2, 2, 1]),
     [normal(6, 3, 4), lambda rng: rng.integers(1, 4, (3, 2))]),
    ("prod", lambda x: OR.prod(x, axis=1), lambda x: torch.prod(x, 1), [uniform(4, 3, lo=0.5,
                                                                             hi=1.5)]),
    ("cdist", tl.cdist, torch.cdist, [normal(3, 4), normal(5, 4)]),
    ("inv", OM.inv, torch.linalg.inv, [spd(4)]),
    ("solve", OM.solve, torch.linalg.solve, [spd(4), normal(4, 2)]),
    ("cholesky", OM.cholesky, torch.linalg.cholesky, [spd(4)]),
    ("eigh", lambda a: OM.eigh(a)[0], lambda a: torch.linalg.eigh(a)[0], [spd(4)]),
    # (a spatial transformer's float16 affine grid: PyTorch samples in float32)
    ("grid_sample", lambda x, g: F.grid_sample(x, g, align_corners=False),
     lambda x, g: torch.nn.functional.grid_sample(x, g, align_corners=False),
     [normal(2, 3, 5, 5), uniform(2, 4, 4, 2, lo=-0.9, hi=0.9)]),
]

# ops on PyTorch's CUDA float32 list but on no CPU list: with autocast("cpu") float16 stays
# float16 (PyTorch's CPU does the same), and a float16/float32 mix promotes as NumPy's rule
KEEP_CASES = [
    ("softmax", lambda x: F.softmax(x, -1), lambda x: TF.softmax(x, -1), [normal(4, 6)]),
    ("log_softmax", lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1),
     [normal(4, 6)]),
    ("layer_norm", lambda x: F.layer_norm(x, (6,)), lambda x: TF.layer_norm(x, (6,)),
     [normal(4, 6)]),
    ("group_norm", lambda x: F.group_norm(x, 2), lambda x: TF.group_norm(x, 2),
     [normal(2, 4, 3)]),
    ("exp", tl.exp, torch.exp, [normal(4, 6)]),
    ("log", tl.log, torch.log, [normal(4, 6, lo=0.5)]),
    ("pow", lambda x: tl.pow(x, 2.0), lambda x: torch.pow(x, 2.0), [normal(4, 6)]),
    ("sum", lambda x: x.sum(), lambda x: x.sum(), [normal(4, 6)]),
    ("cumsum", lambda x: tl.cumsum(x, 1), lambda x: torch.cumsum(x, 1), [normal(4, 6)]),
    ("norm", lambda x: x.norm(), lambda x: x.norm(), [normal(4, 6)]),
    ("cosine_similarity", F.cosine_similarity, TF.cosine_similarity,
     [normal(4, 6), normal(4, 6)]),
    ("relu", F.relu, TF.relu, [normal(4, 6)]),
    ("einsum_one_operand", lambda x: tl.einsum("ij->j", x), lambda x: torch.einsum("ij->j", x),
     [normal(4, 6)]),
]


def _mha_pair():
    tm = torch.nn.MultiheadAttention(8, 2)
    m = tl.nn.MultiheadAttention(8, 2)
    m.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    return m, tm


def _run_case(tl_fn, torch_fn, makers, dtype, grad=False, seed=0):
    if tl_fn is None:       # the attention module
        m, tm = _mha_pair()
        xs, ys = both(make_inputs([normal(5, 2, 8)], dtype), grad)
        with ac():
            out = m(xs[0], xs[0], xs[0])[0]
        with tac():
            ref = tm(ys[0], ys[0], ys[0])[0]
        return out, ref, xs, ys
    xs, ys = both(make_inputs(makers, dtype, seed), grad)
    with ac():
        out = tl_fn(*xs)
    with tac():
        ref = torch_fn(*ys)
    return out, ref, xs, ys


@pytest.mark.parametrize("case", LOWER_CASES, ids=[c[0] for c in LOWER_CASES])
def test_lower_precision_ops_match_torch(case):
    _, tl_fn, torch_fn, makers = case
    out, ref, xs, _ = _run_case(tl_fn, torch_fn, makers, np.float32)
    assert ref.dtype == torch.float16          # the case is on PyTorch's CPU list
    assert out.dtype == F16
    close16(out, ref)
    if tl_fn is not None:                       # and the float32 run, to float16's precision
        close16(out, tl_fn(*xs))


@pytest.mark.parametrize("case", FP32_CASES, ids=[c[0] for c in FP32_CASES])
def test_float32_ops_match_torch(case):
    _, tl_fn, torch_fn, makers = case
    out, ref, xs, _ = _run_case(tl_fn, torch_fn, makers, np.float16)
    assert ref.dtype == torch.float32
    assert out.dtype == F32
    close16(out, ref)
    # the same values as float32 inputs (made from the float16 ones) give without autocast
    want = tl_fn(*[x.float() if x.dtype == F16 else x for x in xs])
    np.testing.assert_allclose(host(out), host(want), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", KEEP_CASES, ids=[c[0] for c in KEEP_CASES])
def test_ops_off_the_cpu_lists_keep_their_dtype(case):
    _, tl_fn, torch_fn, makers = case
    out, ref, _, _ = _run_case(tl_fn, torch_fn, makers, np.float16)
    assert TORCH_DT[ref.dtype] == out.dtype == F16
    close16(out, ref)
    out32, ref32, _, _ = _run_case(tl_fn, torch_fn, makers, np.float32)
    assert TORCH_DT[ref32.dtype] == out32.dtype == F32


def test_mixed_float16_float32_binary_ops_promote():
    a, b = tl.randn(3).half(), tl.randn(3)
    with ac():
        for r in (a + b, a * b, b - a, a / b, tl.maximum(a, b)):
            assert r.dtype == F32
        with tac():
            assert (torch.ones(3).half() + torch.ones(3)).dtype == torch.float32


def test_float64_is_left_alone():
    a, b = tl.randn(3, 4, dtype=tl.float64), tl.randn(4, 2, dtype=tl.float64)
    with ac():
        assert tl.matmul(a, b).dtype == F64
        assert F.linear(a, b.T).dtype == F64
    with tac():
        assert torch.matmul(torch.ones(2, 2, dtype=torch.float64),
                            torch.ones(2, 2, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("case", [c for c in LOWER_CASES if c[1] is not None],
                         ids=[c[0] for c in LOWER_CASES if c[1] is not None])
def test_gradients_reach_float32_leaves_in_float32(case):
    _, tl_fn, torch_fn, makers = case
    out, ref, xs, ys = _run_case(tl_fn, torch_fn, makers, np.float32, grad=True)
    r = np.random.default_rng(1).standard_normal(tuple(ref.shape)).astype(np.float32)
    (out.float() * tl.tensor(r)).sum().backward()
    (ref.float() * torch.tensor(r)).sum().backward()
    for x, y in zip(xs, ys):
        if not y.requires_grad:
            continue
        assert x.grad is not None and x.grad.dtype == F32
        close16(x.grad, y.grad)


def test_float32_list_gradients_flow_back_in_float16():
    x = tl.tensor(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float16),
                  requires_grad=True)
    t = tl.tensor([0, 1, 2, 3])
    with ac():
        loss = OLS.cross_entropy(x, t)
    assert loss.dtype == F32
    loss.backward()
    assert x.grad.dtype == F16
    want = tl.grad(OLS.cross_entropy(x.float(), t), [x])[0]
    close16(x.grad, want)


def test_lstm_and_gru_cells_run_in_float32_on_the_cpu():
    # PyTorch's CPU runs lstm_cell/gru_cell unconverted: the products they are built of must
    # not autocast (the fused float32 cell kernel would get float16 gates)
    x, h = tl.randn(4, 6), tl.randn(4, 3)
    with ac():
        h1, c1 = tl.nn.LSTMCell(6, 3)(x, (h, h))
        g1 = tl.nn.GRUCell(6, 3)(x, h)
        o, _ = tl.nn.LSTM(6, 3)(tl.randn(5, 2, 6))
    assert h1.dtype == c1.dtype == g1.dtype == o.dtype == F32
    with tac():
        assert torch.nn.GRUCell(6, 3)(torch.randn(4, 6)).dtype == torch.float32


# --- tl.nn.functional's float16 adapter ------------------------------------------------------
F_FP32 = [
    ("cross_entropy", F.cross_entropy, TF.cross_entropy, [normal(4, 6), classes(4, 6)]),
    ("mse_loss", F.mse_loss, TF.mse_loss, [normal(4, 6), normal(4, 6)]),
    ("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
     TF.binary_cross_entropy_with_logits, [normal(4, 6), uniform(4, 6)]),
]


@pytest.mark.parametrize("case", F_FP32, ids=[c[0] for c in F_FP32])
def test_functional_losses_of_float16_inputs_give_float32(case):
    _, tl_fn, torch_fn, makers = case
    out, ref, _, _ = _run_case(tl_fn, torch_fn, makers, np.float16)
    assert ref.dtype == torch.float32
    assert out.dtype == F32


def test_matmul_operator_autocasts():
    a, b = tl.randn(2, 3), tl.randn(3, 2)
    with ac():
        assert (a @ b).dtype == F16
        assert (a.numpy() @ b).dtype == F16         # __rmatmul__
    assert (a @ b).dtype == F32
    with tac():
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.float16


def test_takes_over_says_which_calls_autocast_decides():
    x16, x32 = tl.randn(2, 3).half(), tl.randn(2, 3)
    t = tl.tensor([0, 1])
    assert not takes_over("cross_entropy", (x16, t), {})          # no block
    with ac():
        assert takes_over("cross_entropy", (x16, t), {})
        assert takes_over("linear", (x32, x32), {})
        assert not takes_over("softmax", (x16,), {})               # not on the CPU list
        assert not takes_over("einsum", ("ij->j", x32), {})        # one operand: a sum
        assert takes_over("einsum", ("ij,kj->ik", x32, x32), {})
        with tl.autocast("cpu", enabled=False):
            assert not takes_over("cross_entropy", (x16, t), {})


# --- the CUDA rules, as data and by their mechanics -------------------------------------------
# PyTorch 2.13 CUDA autocast (aten/src/ATen/autocast_mode.cpp; the AMP docs' CUDA lists),
# in tensorlib's function names
TORCH_CUDA_LOWER = {"matmul", "mm", "bmm", "addmm", "baddbmm", "addbmm", "mv", "addmv", "addr",
                    "einsum", "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                    "conv_transpose2d", "conv_transpose3d", "prelu", "lstm_cell", "gru_cell",
                    "scaled_dot_product_attention", "chain_matmul", "multi_dot"}
TORCH_CUDA_FP32 = {"acos", "asin", "cosh", "erfinv", "exp", "expm1", "log", "log10", "log2",
                   "log1p", "reciprocal", "rsqrt", "sinh", "tan", "pow", "softplus",
                   "layer_norm", "group_norm", "norm", "cosine_similarity", "normalize",
                   "poisson_nll_loss", "cosine_embedding_loss", "nll_loss", "cross_entropy",
                   "hinge_embedding_loss", "kl_div", "l1_loss", "smooth_l1_loss", "huber_loss",
                   "mse_loss", "margin_ranking_loss", "multilabel_margin_loss",
                   "soft_margin_loss", "triplet_margin_loss", "multi_margin_loss",
                   "binary_cross_entropy_with_logits", "dist", "pdist", "cdist", "renorm",
                   "logsumexp", "softmax", "log_softmax", "sum", "prod", "cumsum", "cumprod"}
TORCH_CUDA_OPT_DTYPE = {"softmax", "log_softmax", "sum", "prod", "cumsum", "cumprod", "norm"}
TORCH_CUDA_PROMOTE = {"addcdiv", "addcmul", "atan2", "bilinear", "cross", "dot",
                      "grid_sample", "index_put", "scatter_add", "tensordot", "cat", "stack"}


def test_cuda_table_follows_pytorch_lists():
    for name, rule in P.CUDA.items():
        want = (P.LOWER if name in TORCH_CUDA_LOWER else
                P.FP32_OPT if name in TORCH_CUDA_OPT_DTYPE else
                P.FP32 if name in TORCH_CUDA_FP32 else
                P.PROMOTE if name in TORCH_CUDA_PROMOTE else
                P.BANNED if name == "binary_cross_entropy" else None)
        assert rule == want, name
    # every op PyTorch's CUDA lists name that has a tensorlib function with the hook is there
    for name in ("softmax", "log_softmax", "layer_norm", "group_norm", "exp", "sum", "norm",
                 "cosine_similarity", "cross_entropy", "linear", "matmul", "einsum"):
        assert name in P.CUDA


@pytest.fixture
def cuda_rules_on_cpu(monkeypatch):
    """Run CUDA's table for tensors on the CPU (the mechanics are per device type)."""
    monkeypatch.setitem(P.POLICIES, "cpu", P.CUDA)
    monkeypatch.setitem(P.NATIVE_HALF, "cpu", P.NATIVE_HALF["cuda"])


def _h(*shape, lo=None):
    a = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float16)
    return tl.tensor(np.abs(a) + np.float16(lo) if lo is not None else a)


def _f(*shape):
    return tl.randn(*shape)


# each hooked name: a call and the dtype its result must have under CUDA's rules
CUDA_CALLS = {
    "matmul": (lambda: tl.matmul(_f(3, 4), _f(4, 2)), F16),
    "addmm": (lambda: tl.addmm(_f(3, 2), _f(3, 4), _f(4, 2)), F16),
    "baddbmm": (lambda: tl.baddbmm(_f(2, 3, 2), _f(2, 3, 4), _f(2, 4, 2)), F16),
    "linear": (lambda: F.linear(_f(3, 4), _f(2, 4)), F16),
    "conv1d": (lambda: F.conv1d(_f(1, 2, 5), _f(3, 2, 2)), F16),
    "conv2d": (lambda: F.conv2d(_f(1, 2, 5, 5), _f(3, 2, 2, 2)), F16),
    "conv3d": (lambda: F.conv3d(_f(1, 2, 3, 3, 3), _f(3, 2, 2, 2, 2)), F16),
    "conv_transpose1d": (lambda: F.conv_transpose1d(_f(1, 2, 5), _f(2, 3, 2)), F16),
    "conv_transpose2d": (lambda: F.conv_transpose2d(_f(1, 2, 4, 4), _f(2, 3, 2, 2)), F16),
    "conv_transpose3d": (lambda: F.conv_transpose3d(_f(1, 2, 3, 3, 3), _f(2, 3, 2, 2, 2)), F16),
    "prelu": (lambda: F.prelu(_f(2, 3), _f(3)), F16),
    "scaled_dot_product_attention": (lambda: F.scaled_dot_product_attention(
        _f(2, 3, 4), _f(2, 3, 4), _f(2, 3, 4)), F16),
    "einsum": (lambda: tl.einsum("ij->j", _f(3, 4)), F16),       # any einsum on CUDA
    "lstm_cell": (lambda: tl.nn.LSTMCell(4, 2)(_f(3, 4))[0], F16),
    "gru_cell": (lambda: tl.nn.GRUCell(4, 2)(_f(3, 4)), F16),
    "softmax": (lambda: OA.softmax(_h(2, 3), -1), F32),
    "log_softmax": (lambda: _h(2, 3).log_softmax(-1), F32),
    "layer_norm": (lambda: ON.layer_norm(_h(2, 3), (3,)), F32),
    "group_norm": (lambda: ON.group_norm(_h(2, 4, 3), 2), F32),
    "exp": (lambda: _h(3).exp(), F32),
    "expm1": (lambda: tl.expm1(_h(3)), F32),
    "log": (lambda: tl.log(_h(3, lo=0.5)), F32),
    "log2": (lambda: tl.log2(_h(3, lo=0.5)), F32),
    "log1p": (lambda: tl.log1p(_h(3, lo=0.5)), F32),
    "reciprocal": (lambda: tl.reciprocal(_h(3, lo=0.5)), F32),
    "rsqrt": (lambda: tl.rsqrt(_h(3, lo=0.5)), F32),
    "sinh": (lambda: tl.sinh(_h(3)), F32),
    "cosh": (lambda: tl.cosh(_h(3)), F32),
    "tan": (lambda: tl.tan(_h(3)), F32),
    "asin": (lambda: tl.asin(_h(3) * 0.5), F32),
    "acos": (lambda: tl.acos(_h(3) * 0.5), F32),
    "pow": (lambda: tl.pow(_h(3), 2.0), F32),
    "softplus": (lambda: tl.nn.functional.softplus(_h(3)), F32),
    "sum": (lambda: _h(2, 3).sum(), F32),
    "prod": (lambda: _h(2, 3).prod(), F32),
    "cumsum": (lambda: _h(2, 3).cumsum(1), F32),
    "cumprod": (lambda: _h(2, 3).cumprod(1), F32),
    "norm": (lambda: _h(2, 3).norm(), F32),
    "logsumexp": (lambda: _h(2, 3).logsumexp(1), F32),
    "cosine_similarity": (lambda: OD.cosine_similarity(_h(2, 3), _h(2, 3)), F32),
    "normalize": (lambda: OD.normalize(_h(2, 3)), F32),
    "cdist": (lambda: tl.cdist(_h(2, 3), _h(4, 3)), F32),
    "cross_entropy": (lambda: OLS.cross_entropy(_h(2, 3), tl.tensor([0, 2])), F32),
    "nll_loss": (lambda: OLS.nll_loss(_h(2, 3), tl.tensor([0, 2])), F32),
    "mse_loss": (lambda: OLS.mse_loss(_h(2, 3), _h(2, 3)), F32),
    "l1_loss": (lambda: OLS.l1_loss(_h(2, 3), _h(2, 3)), F32),
    "smooth_l1_loss": (lambda: OLS.smooth_l1_loss(_h(2, 3), _h(2, 3)), F32),
    "huber_loss": (lambda: OLS.huber_loss(_h(2, 3), _h(2, 3)), F32),
    "kl_div": (lambda: OLS.kl_div(_h(2, 3), _h(2, 3, lo=0.1)), F32),
    "binary_cross_entropy_with_logits": (lambda: OLS.binary_cross_entropy_with_logits(
        _h(2, 3), _h(2, 3, lo=0.0) * 0.1), F32),
    "poisson_nll_loss": (lambda: OLL.poisson_nll_loss(_h(2, 3), _h(2, 3, lo=0.0)), F32),
    "margin_ranking_loss": (lambda: OLM.margin_ranking_loss(_h(3), _h(3), _h(3)), F32),
    "hinge_embedding_loss": (lambda: OLM.hinge_embedding_loss(_h(2, 3), _h(2, 3).sign()), F32),
    "soft_margin_loss": (lambda: OLM.soft_margin_loss(_h(2, 3), _h(2, 3).sign()), F32),
    "cosine_embedding_loss": (lambda: OLM.cosine_embedding_loss(_h(2, 3), _h(2, 3),
                                                               tl.tensor([1.0, -1.0])), F32),
    "triplet_margin_loss": (lambda: OLM.triplet_margin_loss(_h(2, 3), _h(2, 3), _h(2, 3)), F32),
    "multi_margin_loss": (lambda: OLM.multi_margin_loss(_h(2, 3), tl.tensor([0, 2])), F32),
    "multilabel_margin_loss": (lambda: OLM.multilabel_margin_loss(
        _h(2, 3), tl.tensor([[0, 2, -1], [1, -1, 0]])), F32),
    "bilinear": (lambda: OLY.bilinear(_h(2, 3), _f(2, 3), _f(4, 3, 3)), F32),
    "tensordot": (lambda: tl.tensordot(_h(2, 3), _f(3, 4), 1), F32),
    "grid_sample": (lambda: F.grid_sample(_h(1, 2, 4, 4), _f(1, 3, 3, 2) * 0.5,
                                          align_corners=False), F32),
    "binary_cross_entropy": (None, None),
}


# the CPU table's names that CUDA's lacks, with a call each
CPU_ONLY_CALLS = {
    "ctc_loss": lambda: F.ctc_loss(_h(4, 1, 3), tl.tensor([[1, 2]]), [4], [2]),
    "inv": lambda: OM.inv(_f(3, 3) + 3 * tl.eye(3)),
    "solve": lambda: OM.solve(_f(3, 3) + 3 * tl.eye(3), _f(3)),
    "cholesky": lambda: OM.cholesky(tl.eye(3)),
    "eigh": lambda: OM.eigh(tl.eye(3))[0],
}


@pytest.mark.parametrize("name", sorted(set(P.CPU) | set(P.CUDA)))
def test_every_table_entry_is_a_hooked_function(monkeypatch, name):
    # a table naming only this op, as refused: its function must consult the table by name
    monkeypatch.setitem(P.POLICIES, "cpu", {name: P.BANNED})
    call = CPU_ONLY_CALLS.get(name) or CUDA_CALLS[name][0] or (
        lambda: OLS.binary_cross_entropy(_h(2, 3, lo=0.0) * 0.1, _h(2, 3, lo=0.0) * 0.1))
    with ac(), pytest.raises(RuntimeError, match=f"{name}: unsafe to autocast"):
        call()


def test_the_tables_cover_the_tested_cases():
    assert set(CUDA_CALLS) == set(P.CUDA)
    cpu_cases = {c[0] for c in LOWER_CASES + FP32_CASES}
    assert set(P.CPU) <= cpu_cases | {"einsum", "lstm_cell", "gru_cell",
                                      "scaled_dot_product_attention"}


@pytest.mark.parametrize("name", sorted(CUDA_CALLS))
def test_cuda_rules_by_their_mechanics(cuda_rules_on_cpu, name):
    call, dtype = CUDA_CALLS[name]
    if call is None:
        with ac(), pytest.raises(RuntimeError, match="unsafe to autocast"):
            OLS.binary_cross_entropy(_h(2, 3, lo=0.0) * 0.1, _h(2, 3, lo=0.0) * 0.1)
        return
    with ac():
        out = call()
    assert out.dtype == dtype


def test_cuda_opt_dtype_and_promote_rules(cuda_rules_on_cpu):
    x = _h(2, 3)
    with ac():
        assert x.sum(dtype=tl.float16).dtype == F16         # an explicit dtype is kept
        assert OA.softmax(x, -1, dtype=tl.float64).dtype == F64
        assert F.bilinear(x, x, _h(4, 3, 3)).dtype == F16  # all float16: nothing to widen
        assert tl.tensordot(x, tl.randn(3, 2, dtype=tl.float64), 1).dtype == F64
        # matmul is native float16 on CUDA: its own inputs are the float16 casts
        a = tl.randn(3, 4, requires_grad=True)
        m = tl.matmul(a, tl.randn(4, 2))
        assert m.dtype == F16 and m.grad_fn.inputs[0].dtype == F16
        lin = F.linear(a, tl.randn(2, 4))       # linear rounds to float16, computes in float32
        assert lin.dtype == F16 and lin.grad_fn.inputs[0].dtype == F32


# --- blocks: nesting, decorator, threads, errors ----------------------------------------------
def test_nested_and_disabled_blocks():
    a, b = tl.randn(2, 3), tl.randn(3, 2)
    assert not tl.is_autocast_enabled("cpu")
    with ac():
        assert tl.is_autocast_enabled("cpu") and not tl.is_autocast_enabled()
        assert tl.matmul(a, b).dtype == F16
        with tl.autocast("cpu", enabled=False):
            assert not tl.is_autocast_enabled("cpu")
            assert tl.matmul(a, b).dtype == F32
            with ac():
                assert tl.matmul(a, b).dtype == F16
            assert tl.matmul(a, b).dtype == F32
        assert tl.matmul(a, b).dtype == F16
        assert tl.get_autocast_dtype("cpu") == F16
    assert tl.matmul(a, b).dtype == F32
    assert not tl.is_autocast_enabled("cpu")
    with pytest.raises(ValueError):
        tl.get_autocast_dtype("cpu")


def test_state_is_restored_after_an_error():
    with pytest.raises(ZeroDivisionError), ac():
        raise ZeroDivisionError("inside the block")
    assert not tl.is_autocast_enabled("cpu")
    assert tl.matmul(tl.randn(2, 2), tl.randn(2, 2)).dtype == F32


def test_decorator_form():
    @tl.autocast("cpu", dtype=tl.float16)
    def f(a, b, depth=0):
        assert tl.is_autocast_enabled("cpu")
        return tl.matmul(a, b) if depth == 0 else f(a, b, depth - 1)

    a, b = tl.randn(2, 3), tl.randn(3, 2)
    assert f(a, b, depth=2).dtype == F16
    assert not tl.is_autocast_enabled("cpu")
    assert tl.amp.autocast is tl.autocast
    with tl.amp.autocast("cpu", dtype=tl.float16):
        assert tl.is_autocast_enabled("cpu")


def test_state_is_per_thread():
    a, b = tl.randn(2, 3), tl.randn(3, 2)
    inside, entered, seen = threading.Event(), threading.Event(), {}

    def other():
        inside.wait(5)
        seen["other_off"] = (not tl.is_autocast_enabled("cpu"), tl.matmul(a, b).dtype)
        with ac():
            entered.set()
            seen["other_on"] = tl.matmul(a, b).dtype

    t = threading.Thread(target=other)
    t.start()
    with ac():
        inside.set()
        entered.wait(5)
        seen["main_on"] = tl.matmul(a, b).dtype
    t.join(5)
    with ac():
        pass
    assert seen == {"other_off": (True, F32), "other_on": F16, "main_on": F16}
    assert not tl.is_autocast_enabled("cpu")


def test_argument_errors():
    with pytest.raises(ValueError, match="dtype=tl.float16"):
        tl.autocast("cpu")
    with tl.autocast("cpu", enabled=False):     # no dtype needed to turn it off
        pass
    with pytest.raises(TypeError, match="bfloat16"):
        tl.autocast("cpu", dtype=torch.bfloat16)
    with pytest.raises(TypeError, match="bfloat16"):
        tl.autocast("cuda", dtype="bfloat16")
    with pytest.raises(TypeError, match="float16"):
        tl.autocast("cpu", dtype=tl.float32)
    with pytest.raises(ValueError, match="'cuda'"):
        tl.autocast("cuda:0")
    with pytest.raises(ValueError, match="device_type"):
        tl.autocast("tpu")
    assert tl.get_autocast_dtype("cuda") == F16
    ok = tl.autocast("cpu", dtype=torch.float16)       # PyTorch's dtype objects are accepted
    assert ok.fast_dtype == F16


@pytest.mark.skipif(tl.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_warns_and_is_disabled():
    with pytest.warns(UserWarning, match="CUDA is not available"):
        ctx = tl.autocast("cuda")
    with ctx:
        assert not tl.is_autocast_enabled("cuda")
    with pytest.warns(UserWarning, match="disabled"):
        assert not tl.amp.GradScaler().is_enabled()


# --- the cast cache -------------------------------------------------------------------------
def _count_casts(monkeypatch):
    from tensorlib.ops import shape
    calls = []
    orig = shape.astype

    def spy(x, dtype):
        calls.append(id(x))
        return orig(x, dtype)
    monkeypatch.setattr(shape, "astype", spy)
    return calls


def test_parameter_casts_are_cached_per_block(monkeypatch):
    w = tl.randn(4, 3, requires_grad=True)
    x = tl.randn(2, 3)
    calls = _count_casts(monkeypatch)
    with ac():
        y1, y2 = F.linear(x, w), F.linear(x, w)
        assert calls.count(id(w)) == 1                 # one float16 copy of the parameter
        (y1.float().sum() + y2.float().sum()).backward()
        F.linear(x, w)                                  # that copy's tape node was freed
        assert calls.count(id(w)) == 2
        F.linear(x, w)
        assert calls.count(id(w)) == 2
        with tl.no_grad():
            w.add_(1.0)
        y3 = F.linear(x, w)                              # a new version: cast again
        assert calls.count(id(w)) == 3
        with tl.no_grad():
            F.linear(x, w)                               # another grad mode, another copy
            assert calls.count(id(w)) == 4
            F.linear(x, w)
            assert calls.count(id(w)) == 4
    assert tl.amp.autocast_mode._tls.cache == {}
    close16(y3, F.linear(x, w))
    with tl.autocast("cpu", dtype=tl.float16, cache_enabled=False):
        F.linear(x, w), F.linear(x, w)
    assert calls.count(id(w)) == 6


def test_no_cache_under_capture():
    # a float16 copy cached eagerly must not become a constant of a graph traced in the
    # same block: the replay follows the parameter's new values
    w = tl.randn(4, 3, requires_grad=True)
    x = tl.randn(2, 3)

    @tl.function
    def f(x):
        with ac():
            return F.linear(x, w)

    with tl.no_grad(), ac():
        F.linear(x, w)                          # cached
        before = f(x)                           # traced
        assert len(tl.amp.autocast_mode._tls.cache) == 1
        w.add_(1.0)
        after = f(x)                            # replayed
    assert len(f.graphs) == 1
    with tl.no_grad(), ac():
        want = F.linear(x, w)
    np.testing.assert_array_equal(host(after), host(want))
    assert not np.array_equal(host(after), host(before))


# --- graph capture and ONNX -----------------------------------------------------------------
def _mlp():
    tl.manual_seed(0)
    return tl.nn.Sequential(tl.nn.Linear(6, 8), tl.nn.ReLU(), tl.nn.Linear(8, 3))


def test_capture_records_the_casts_and_replays_them():
    model = _mlp()

    @tl.function
    def f(x):
        with ac():
            h = model(x)
            return h, F.cross_entropy(h.float(), tl.tensor([0, 1, 2, 0]))

    x = tl.randn(4, 6)
    with tl.no_grad():
        h1, l1 = f(x)
        h2, l2 = f(x)                      # replay
        with ac():
            he = model(x)
    assert len(f.graphs) == 1
    assert h1.dtype == h2.dtype == he.dtype == F16 and l2.dtype == F32
    np.testing.assert_array_equal(host(h2), host(he))
    np.testing.assert_array_equal(host(l1), host(l2))
    g = f.get_graph(x)
    dts = {n.attrs.get("dtype") for n in g.nodes if n.op == "cast"}
    assert "float16" in dts and "float32" in dts


def test_onnx_export_of_an_autocast_graph():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _mlp()

    @tl.function
    def f(x):
        with ac():
            return model(x)

    x = tl.randn(4, 6)
    with tl.no_grad():
        want = f(x)
        g = f.get_graph(x)
    import os
    import tempfile
    path = os.path.join(tempfile.mkdtemp(), "amp.onnx")
    g.to_onnx(path)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    assert "Cast" in {n.op_type for n in m.graph.node}
    s = ort.InferenceSession(path)
    out = s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]
    assert out.dtype == np.float16
    close16(out.astype(np.float32), want)


# --- GradScaler against torch.amp.GradScaler("cpu") -----------------------------------------
def _regression(seed=0):
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((3, 5)).astype(np.float32)
    b0 = rng.standard_normal(3).astype(np.float32)
    xs = rng.standard_normal((8, 5)).astype(np.float32)
    ys = rng.standard_normal((8, 3)).astype(np.float32)
    return w0, b0, xs, ys


def _train_pair(opt_name, steps, inf_steps, clip=None, **scaler_kw):
    """The same model trained by both libraries with their scalers; at ``inf_steps`` a
    gradient is set to inf after backward."""
    w0, b0, xs, ys = _regression()
    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    lw, lb = tl.tensor(w0, requires_grad=True), tl.tensor(b0, requires_grad=True)
    kw = {"lr": 0.05, "momentum": 0.9} if opt_name == "SGD" else {"lr": 0.05}
    topt = getattr(torch.optim, opt_name)([tw, tb], **kw)
    lopt = getattr(tl.optim, opt_name)([lw, lb], **kw)
    ts, ls = torch.amp.GradScaler("cpu", **scaler_kw), tl.amp.GradScaler("cpu", **scaler_kw)
    trace = []
    for step in range(steps):
        for opt, sc, w, b, X, Y, lib in ((topt, ts, tw, tb, torch.tensor(xs),
                                          torch.tensor(ys), torch),
                                         (lopt, ls, lw, lb, tl.tensor(xs), tl.tensor(ys), tl)):
            opt.zero_grad()
            loss = ((X @ w.T + b - Y) ** 2).mean()
            sc.scale(loss).backward()
            if step in inf_steps:
                if lib is torch:
                    w.grad[0, 0] = float("inf")
                else:
                    w.grad._data[0, 0] = np.inf
            if clip is not None:
                sc.unscale_(opt)
                (torch.nn.utils.clip_grad_norm_ if lib is torch else
                 tl.nn.utils.clip_grad_norm_)([w, b], clip)
            sc.step(opt)
            sc.update()
        trace.append((ts.get_scale(), ls.get_scale(), ts._get_growth_tracker(),
                      ls._get_growth_tracker()))
    return (tw, tb, lw, lb), trace, (ts, ls)


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_scale_sequence_skips_and_parameters_match_torch(opt_name):
    (tw, tb, lw, lb), trace, (ts, ls) = _train_pair(opt_name, 12, {1, 2, 7},
                                                    init_scale=2.0 ** 10, growth_interval=3)
    scales_t = [t[0] for t in trace]
    assert [t[1] for t in trace] == scales_t
    assert [t[3] for t in trace] == [t[2] for t in trace]
    assert scales_t[1] == 2.0 ** 9 and scales_t[2] == 2.0 ** 8 and max(scales_t) > 2.0 ** 9
    np.testing.assert_allclose(host(lw), host(tw), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(host(lb), host(tb), rtol=1e-5, atol=1e-6)
    assert ls.state_dict() == ts.state_dict()


@given(flags=st.lists(st.booleans(), min_size=1, max_size=14),
       interval=st.integers(1, 4), growth=st.sampled_from([2.0, 1.5, 4.0]),
       backoff=st.sampled_from([0.5, 0.25, 0.9]), init=st.sampled_from([2.0 ** 16, 3.0, 1e38]))
def test_scale_updates_match_torch_for_any_inf_pattern(flags, interval, growth, backoff, init):
    kw = dict(init_scale=init, growth_factor=growth, backoff_factor=backoff,
              growth_interval=interval)
    ts, ls = torch.amp.GradScaler("cpu", **kw), tl.amp.GradScaler("cpu", **kw)
    tp, lp = torch.zeros(2, requires_grad=True), tl.zeros(2, requires_grad=True)
    topt, lopt = torch.optim.SGD([tp], lr=0.0), tl.optim.SGD([lp], lr=0.0)
    for bad in flags:
        ts.scale(tp.sum()).backward()
        ls.scale(lp.sum()).backward()
        if bad:
            tp.grad[1] = float("nan")
            lp.grad._data[1] = np.nan
        ts.step(topt)
        ls.step(lopt)
        ts.update()
        ls.update()
        assert ls.get_scale() == ts.get_scale()
        assert ls._get_growth_tracker() == ts._get_growth_tracker()
        tp.grad = None
        lp.grad = None


@given(n=st.integers(1, 6), k=st.integers(1, 9), m=st.integers(1, 5), bias=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_linear_under_autocast_matches_torch_for_any_shape(n, k, m, bias, seed):
    makers = [normal(n, k), normal(m, k)] + ([normal(m)] if bias else [])
    out, ref, _, _ = _run_case(F.linear, TF.linear, makers, np.float32, seed=seed)
    assert out.dtype == F16 and ref.dtype == torch.float16
    close16(out, ref)


def test_unscale_then_clip_matches_torch():
    (tw, tb, lw, lb), trace, _ = _train_pair("SGD", 6, {3}, clip=0.5, init_scale=2.0 ** 12,
                                             growth_interval=2)
    assert [t[0] for t in trace] == [t[1] for t in trace]
    np.testing.assert_allclose(host(lw), host(tw), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(host(lb), host(tb), rtol=1e-5, atol=1e-6)


def test_growth_stops_at_an_infinite_scale():
    ts = torch.amp.GradScaler("cpu", init_scale=3e38, growth_interval=1)
    ls = tl.amp.GradScaler("cpu", init_scale=3e38, growth_interval=1)
    for sc, lib, opt_mod in ((ts, torch, torch.optim), (ls, tl, tl.optim)):
        p = lib.zeros(2, requires_grad=True)
        opt = opt_mod.SGD([p], lr=0.0)
        for _ in range(2):
            sc.scale(p.sum() * 0.0).backward()
            sc.step(opt)
            sc.update()
    assert ls.get_scale() == ts.get_scale() and np.isfinite(ls.get_scale())


def _all_optimizers():
    from tensorlib.optim import Optimizer
    seen, todo = [], list(Optimizer.__subclasses__())
    while todo:
        c = todo.pop()
        closure = inspect.signature(c.step).parameters.get("closure")
        needs_closure = (closure is not None and closure.default is inspect.Parameter.empty
                         or c.__name__ == "LBFGS")   # (closure=None, but required to run)
        # (GradScaler refuses closures, as PyTorch's: L-BFGS cannot run under it)
        # (SparseAdam refuses the dense gradients of this test, as PyTorch's)
        if c not in seen and not c.__name__.startswith("_") and not needs_closure \
                and c.__module__.startswith("tensorlib.") and c.__name__ != "SparseAdam":
            seen.append(c)
        todo.extend(c.__subclasses__())
    return sorted(seen, key=lambda c: c.__name__)


@pytest.mark.parametrize("opt_cls", _all_optimizers(), ids=lambda c: c.__name__)
def test_every_optimizer_steps_on_true_gradients_and_skips_inf(opt_cls):
    w0 = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    x = tl.tensor(np.random.default_rng(4).standard_normal((5, 4)).astype(np.float32))
    pa, pb = tl.tensor(w0, requires_grad=True), tl.tensor(w0, requires_grad=True)
    oa, ob = opt_cls([pa], lr=0.01), opt_cls([pb], lr=0.01)
    sc = tl.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    for _ in range(3):
        oa.zero_grad()
        ob.zero_grad()
        sc.scale((x @ pa.T).square().mean()).backward()
        (x @ pb.T).square().mean().backward()
        assert sc.step(oa) is None
        sc.update()
        ob.step()
    np.testing.assert_allclose(host(pa), host(pb), rtol=1e-5, atol=1e-6)
    before = host(pa).copy()
    oa.zero_grad()
    sc.scale((x @ pa.T).sum()).backward()
    pa.grad._data[1, 1] = np.nan
    sc.step(oa)
    sc.update()
    np.testing.assert_array_equal(host(pa), before)
    assert sc.get_scale() == 2.0 ** 7


def test_scaler_api():
    sc = tl.amp.GradScaler("cpu", init_scale=4.0, growth_factor=3.0, backoff_factor=0.25,
                           growth_interval=5)
    assert sc.is_enabled() and sc.get_scale() == 4.0
    assert (sc.get_growth_factor(), sc.get_backoff_factor(), sc.get_growth_interval()) == \
        (3.0, 0.25, 5)
    sc.set_growth_factor(2.0)
    sc.set_backoff_factor(0.5)
    sc.set_growth_interval(7)
    assert (sc.get_growth_factor(), sc.get_backoff_factor(), sc.get_growth_interval()) == \
        (2.0, 0.5, 7)
    # nested outputs; a 0-d float16 loss scales to float32, a float16 tensor stays float16
    out = sc.scale([tl.ones(2), (tl.ones(1), tl.tensor(2.0).half())])
    assert isinstance(out, list) and isinstance(out[1], tuple)
    assert host(out[0]).tolist() == [4.0, 4.0] and out[1][1].dtype == F32
    assert sc.scale(tl.ones(3).half()).dtype == F16
    ts = torch.amp.GradScaler("cpu", init_scale=4.0)
    assert ts.scale(torch.tensor(2.0).half()).dtype == torch.float32
    assert ts.scale(torch.ones(3).half()).dtype == torch.float16
    with pytest.raises(ValueError, match="Tensor"):
        sc.scale(3.0)
    p = tl.zeros(2, requires_grad=True)
    opt = tl.optim.SGD([p], lr=0.1)
    sc.scale(p.sum()).backward()
    sc.unscale_(opt)
    np.testing.assert_array_equal(host(p.grad), [1.0, 1.0])
    with pytest.raises(RuntimeError, match="already"):
        sc.unscale_(opt)
    with pytest.raises(RuntimeError, match="closure"):
        sc.step(opt, closure=lambda: None)
    sc.step(opt)
    with pytest.raises(RuntimeError, match="already"):
        sc.step(opt)
    with pytest.raises(RuntimeError, match="after step"):
        sc.unscale_(opt)
    sc.update(16.0)
    assert sc.get_scale() == 16.0
    sc.update(tl.tensor([8.0]))
    assert sc.get_scale() == 8.0
    with pytest.raises(ValueError, match="1-element"):
        sc.update(tl.tensor([1.0, 2.0]))
    # state dicts: PyTorch's keys, both ways
    sd = sc.state_dict()
    assert set(sd) == set(ts.state_dict())
    other = tl.amp.GradScaler("cpu")
    other.load_state_dict(ts.state_dict())
    assert other.get_scale() == 4.0
    other.load_state_dict(sd)
    assert other.state_dict() == sd
    ts.load_state_dict(sd)
    assert ts.get_scale() == sd["scale"]
    fresh = tl.amp.GradScaler("cpu")
    with pytest.raises(RuntimeError, match="scale"):
        fresh.step(opt)
    with pytest.raises(RuntimeError, match="empty"):
        fresh.load_state_dict({})
    with pytest.raises(ValueError, match="growth_factor"):
        tl.amp.GradScaler("cpu", growth_factor=1.0)


def test_scaler_refuses_graph_capture():
    sc = tl.amp.GradScaler("cpu")
    p = tl.ones(2, requires_grad=True)

    @tl.function
    def step(x):
        return sc.scale((p * x).sum())

    with pytest.raises(RuntimeError, match="graph capture"):
        step(tl.ones(2))
    sc.scale(p.sum()).backward()            # eagerly it works
    assert float(p.grad[0]) == 2.0 ** 16


def test_unscale_refuses_float16_gradients():
    p = tl.zeros(2, dtype=tl.float16, requires_grad=True)
    opt = tl.optim.SGD([p], lr=0.1)
    sc = tl.amp.GradScaler("cpu")
    sc.scale(p.float().sum()).backward()
    with pytest.raises(ValueError, match="float16 gradients"):
        sc.step(opt)


def test_disabled_scaler_is_a_pass_through():
    sc = tl.amp.GradScaler("cpu", enabled=False)
    p = tl.ones(2, requires_grad=True)
    opt = tl.optim.SGD([p], lr=0.5)
    loss = p.sum()
    assert sc.scale(loss) is loss
    loss.backward()
    sc.unscale_(opt)
    assert sc.step(opt) is None
    sc.update()
    np.testing.assert_array_equal(host(p), [0.5, 0.5])
    assert sc.get_scale() == 1.0 and sc.state_dict() == {} and not sc.is_enabled()


# --- end to end ------------------------------------------------------------------------------
class _Net(tl.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = tl.nn.Conv2d(1, 4, 3, padding=1)
        self.pool = tl.nn.MaxPool2d(2)
        self.fc1 = tl.nn.Linear(4 * 4 * 4, 16)
        self.fc2 = tl.nn.Linear(16, 3)

    def forward(self, x):
        h = self.pool(F.relu(self.conv(x)))
        return self.fc2(F.relu(self.fc1(h.reshape(h.shape[0], -1))))


def test_training_loop_with_autocast_and_grad_scaler():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 48)
    images = rng.standard_normal((48, 1, 8, 8)).astype(np.float32) * 0.3
    for k in range(3):                        # a class-dependent bright row
        images[labels == k, 0, 2 * k + 1, :] += 1.5
    x, y = tl.tensor(images), tl.tensor(labels)
    tl.manual_seed(0)
    net = _Net()
    opt = tl.optim.Adam(net.parameters(), lr=0.02)
    scaler = tl.amp.GradScaler("cpu")
    losses = []
    for _ in range(25):
        opt.zero_grad()
        with ac():
            logits = net(x)
            loss = F.cross_entropy(logits, y)
        assert logits.dtype == F16
        scaler.scale(loss).backward()
        assert all(p.grad.dtype == F32 for p in net.parameters())
        scaler.unscale_(opt)
        tl.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss))
    assert all(p.dtype == F32 and np.isfinite(host(p)).all() for p in net.parameters())
    assert np.mean(losses[-3:]) < 0.5 * losses[0], losses
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert 0 < scaler.get_scale() <= 2.0 ** 16


def test_a_function_traced_outside_an_autocast_block_is_traced_again_inside_one():
    w = tl.randn(3, 2)

    @tl.function
    def f(x):
        return tl.matmul(x, w)

    x = tl.randn(2, 3)
    assert f(x).dtype == F32
    with ac():
        assert f(x).dtype == F16
    assert f(x).dtype == F32


def test_tensor_softmax_methods_take_float16():
    x = tl.randn(2, 5).half()
    assert x.softmax(-1).dtype == F16 and x.log_softmax(dim=1).dtype == F16
    np.testing.assert_allclose(x.softmax(-1).numpy().astype(np.float32),
                               torch.from_numpy(x.numpy()).softmax(-1).float().numpy(),
                               atol=1e-3)
