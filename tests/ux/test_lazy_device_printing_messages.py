"""What the teaching/Jupyter UX trial (round 19) found, against PyTorch 2.13: lazy modules and
the default device / ``.to``, printing as PyTorch's, a module called with the wrong
arguments, indexing and loss messages, doctest-able docstrings, the README quick start."""
from __future__ import annotations

import doctest
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn

torch = pytest.importorskip("torch")


@pytest.fixture
def default_device():
    yield
    tl.set_default_device(None)


@pytest.fixture
def printoptions():
    yield
    for m in (tl, torch):
        m.set_printoptions(profile="default")
        m.set_printoptions(sci_mode=None)


# --- F1: lazy modules materialize on the default device / the .to() target -----------------
def _lazy_pairs():
    return [(lambda: nn.LazyLinear(4), lambda: torch.nn.LazyLinear(4), (2, 3)),
            (lambda: nn.LazyBatchNorm1d(), lambda: torch.nn.LazyBatchNorm1d(), (5, 3)),
            (lambda: nn.LazyConv2d(2, 3), lambda: torch.nn.LazyConv2d(2, 3), (1, 3, 5, 5))]


def _match_torch(ours, theirs, shape):
    """Run both modules (ours already dry-run) with PyTorch's module holding our values, and
    compare outputs and parameter gradients in float64."""
    x = np.random.default_rng(0).standard_normal(shape)
    tx = torch.tensor(x)
    theirs = theirs.double()
    theirs(tx)                                            # PyTorch's dry run
    with torch.no_grad():
        for name, p in ours.named_parameters():
            dict(theirs.named_parameters())[name].copy_(torch.tensor(p.numpy()))
    y = ours(tl.tensor(x, device=ours.weight.device))
    ty = theirs(tx)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), dict(theirs.named_parameters())[name]
                                   .grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", range(3))
def test_lazy_modules_materialize_on_the_default_device(case, default_device):
    make, make_t, shape = _lazy_pairs()[case]
    tl.set_default_device("cpu:1")
    m = make().double()
    x = tl.randn(*shape, dtype=tl.float64)
    assert x.device == tl.device("cpu:1")
    assert m(x).device == tl.device("cpu:1")
    assert all(t.device == tl.device("cpu:1") for t in list(m.parameters()) + list(m.buffers()))
    _match_torch(m, make_t(), shape)


@pytest.mark.parametrize("case", range(3))
def test_lazy_modules_moved_before_the_first_call_materialize_there(case):
    make, make_t, shape = _lazy_pairs()[case]
    m = make().to("cpu:1")                    # was: ValueError from Module.to
    assert m.weight.device == tl.device("cpu:1")
    m = m.to(tl.float64)
    y = m(tl.randn(*shape, dtype=tl.float64, device="cpu:1"))
    assert y.device == tl.device("cpu:1") and y.dtype == tl.float64
    assert all(t.device == tl.device("cpu:1") and (t.dtype == tl.float64 or t.ndim == 0)
               for t in list(m.parameters()) + list(m.buffers()))
    assert type(m).__name__ == type(make_t()).__name__.replace("Lazy", "")
    _match_torch(m, make_t(), shape)


def test_lazy_module_still_refuses_a_mismatched_first_input():
    m = nn.LazyLinear(4).to("cpu:1")
    with pytest.raises(RuntimeError, match="device"):
        m(tl.randn(2, 3))                     # input on cpu, parameters bound for cpu:1


# --- F2/F3: printing as PyTorch's --------------------------------------------------------------
CASES = [
    [1e-5, 1.0, 1e6], [1.0, 5000.0], [1e10, 2.0], [0.0, -math.inf, -math.inf],
    [math.nan, 1.0, -0.0], [0.1, 0.2, 1e-8], [123456.7, 1.0], [1e-300, 1e300],
    [[1.123456, 2.0], [3.0, 4.0]], [-1e-5, 3.0, -1e3], [0.0, 0.0], [1e8, 1e-8],
]


def _suffixes_inline(s: str) -> str:
    # dtype names differ in length (float64 / torch.float64), so a suffix may wrap in one
    return re.sub(r",\s+(?=(dtype|grad_fn|requires_grad|device|size)=)", ", ", s)


def _same_repr(make):
    ours = repr(make(tl)).replace("dtype=", "dtype=torch.").replace("grad_fn=<Mul>",
                                                                      "grad_fn=<MulBackward0>")
    assert _suffixes_inline(ours) == _suffixes_inline(repr(make(torch)))


@pytest.mark.parametrize("sci", [None, False, True])
@pytest.mark.parametrize("values", CASES)
def test_float_tensors_print_as_pytorch(values, sci, printoptions):
    for m in (tl, torch):
        m.set_printoptions(sci_mode=sci)
    dt = "float64" if 1e300 in values else "float32"
    _same_repr(lambda m: m.tensor(values, dtype=getattr(m, dt)))


def test_sci_mode_false_never_prints_an_exponent(printoptions):
    tl.set_printoptions(sci_mode=False)
    for v in ([1e-5, 1.0, 1e6], [1e10, 2.0], [3e-7]):
        assert "e+" not in repr(tl.tensor(v)) and "e-" not in repr(tl.tensor(v))
    assert repr(tl.tensor([1e-5, 1.0, 1e6])) == \
        "tensor([      0.0000,       1.0000, 1000000.0000])"
    r = repr(tl.arange(12.0) * 1e5)
    assert "e+" not in r and "1100000." in r


@pytest.mark.parametrize("make", [
    lambda m: m.arange(12.0) * 1e5,
    lambda m: m.arange(10000.0).reshape(100, 100),
    lambda m: m.arange(5000.0).reshape(50, 100) / 7,
    lambda m: m.arange(24.0).reshape(2, 3, 4) / 7,
    lambda m: m.zeros(0), lambda m: m.zeros(0, dtype=m.int64), lambda m: m.zeros(2, 0),
    lambda m: m.zeros(3, 0, 2, dtype=m.bool),
    lambda m: m.tensor([True, True]), lambda m: m.tensor([True, False]),
    lambda m: m.tensor(3.0), lambda m: m.tensor(-7), lambda m: m.tensor(True),
    lambda m: m.tensor([1, -200, 3]), lambda m: m.tensor([255, 0], dtype=m.uint8),
    lambda m: m.tensor([1.5, 2.0], dtype=m.float16), lambda m: m.arange(2000).reshape(2, 10, 100),
    lambda m: m.zeros(3, 4, requires_grad=True),
    lambda m: m.ones(2, 40, dtype=m.float64, requires_grad=True) * 3.3,
    lambda m: m.nn.Transformer.generate_square_subsequent_mask(3),
])
def test_layouts_print_as_pytorch(make):
    _same_repr(make)


@pytest.mark.parametrize("opts", [dict(precision=2, linewidth=50),
                                  dict(threshold=10, edgeitems=2), dict(profile="short")])
def test_print_options_give_pytorch_layout(opts, printoptions):
    for m in (tl, torch):
        m.set_printoptions(**opts)
    for make in (lambda m: m.arange(300.0).reshape(3, 100) / 3, lambda m: m.arange(64.0),
                 lambda m: m.tensor([1e-5, 2.0, 3e4])):
        _same_repr(make)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1,
                max_size=30),
       st.sampled_from([None, False, True]))
def test_random_float_vectors_print_as_pytorch(values, sci):
    try:
        for m in (tl, torch):
            m.set_printoptions(sci_mode=sci)
        assert repr(tl.tensor(values)) == repr(torch.tensor(values))
    finally:
        for m in (tl, torch):
            m.set_printoptions(sci_mode=None)


# --- F4: a wrong argument count is Python's TypeError -------------------------------------------
@pytest.mark.parametrize("call", [lambda m, x: m(x, x), lambda m, x: m(),
                                  lambda m, x: m(x, bogus=1)])
def test_module_called_with_wrong_arguments_raises_plain_type_error(call):
    with pytest.raises(TypeError) as ours:
        call(nn.Linear(2, 2), tl.ones(2))
    with pytest.raises(TypeError) as theirs:
        call(torch.nn.Linear(2, 2), torch.ones(2))
    assert type(ours.value) is TypeError
    # the same Python message, up to the forward's parameter name
    assert re.sub(r"'\w+'", "'x'", str(ours.value)) == re.sub(r"'\w+'", "'x'",
                                                                str(theirs.value))


def test_a_layers_own_dtype_check_keeps_its_error_class():
    with pytest.raises(tl.errors.DTypeError):
        nn.Linear(2, 2)(tl.ones(2, dtype=tl.int64))
    with pytest.raises(tl.errors.ShapeError):
        nn.Linear(2, 2)(tl.ones(3))


# --- F5: messages -------------------------------------------------------------------------------
@pytest.mark.parametrize("index, words", [
    (lambda x: x[5], "indexing: index 5 is out of bounds for dimension 0 with size 3"),
    (lambda x: x[-4], "indexing: index -4 is out of bounds"),
    (lambda x: x[tl.tensor([True, False])], "indexing: the boolean mask has size 2"),
    (lambda x: x[0, 1], "indexing: too many indices for a tensor of shape (3,)"),
])
def test_indexing_errors_name_indexing_and_the_shape(index, words):
    with pytest.raises(IndexError) as e:
        index(tl.ones(3))
    assert str(e.value).startswith(words) and "slice:" not in str(e.value)
    with pytest.raises(IndexError):               # PyTorch refuses the same keys
        index(torch.ones(3)) if "mask" not in words else torch.ones(3)[
            torch.tensor([True, False])]


def test_indexing_a_0d_tensor_suggests_item():
    with pytest.raises(IndexError, match=r"0-dim tensor.*\.item\(\)"):
        tl.tensor(3.0)[0]
    with pytest.raises(IndexError, match=r"item\(\)"):
        torch.tensor(3.0)[0]


def test_gather_with_a_float_index_names_gather():
    with pytest.raises(TypeError, match="^gather: index must be an integer") as e:
        tl.gather(tl.ones(2, 2), 1, tl.zeros(2, 2))
    assert "take_along_axis" not in str(e.value)
    with pytest.raises(RuntimeError, match="gather"):
        torch.gather(torch.ones(2, 2), 1, torch.zeros(2, 2))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("target", [[1], 2])
def test_nll_loss_takes_a_one_element_target_for_one_sample(target, reduction):
    x = np.random.default_rng(1).standard_normal(4)
    ours = tl.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out = F.nll_loss(ours, tl.tensor(target), reduction=reduction)
    want = torch.nn.functional.nll_loss(theirs, torch.tensor(target), reduction=reduction)
    assert out.shape == tuple(want.shape)
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    # PyTorch 2.13's backward refuses the (1,) target it took forward ("size mismatch"):
    # its gradient is that of the equivalent 0-d target
    want = torch.nn.functional.nll_loss(theirs, torch.tensor(target).reshape(()),
                                        reduction=reduction)
    want.sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)


def test_nll_loss_still_refuses_a_longer_target_for_one_sample():
    with pytest.raises(ValueError, match="nll_loss"):
        F.nll_loss(tl.randn(3), tl.tensor([1, 2]))
    with pytest.raises(ValueError, match="size 1"):
        torch.nn.functional.nll_loss(torch.randn(3), torch.tensor([1, 2]))


# --- F6/F7: docstrings and the README ------------------------------------------------------------
@pytest.mark.parametrize("obj", [tl.Tensor.item, nn.CrossEntropyLoss, nn.MSELoss,
                                 nn.LazyBatchNorm1d, nn.LazyLinear, tl.nn.lazy])
def test_docstring_examples_pass_doctest(obj):
    assert obj.__doc__ and ">>>" in obj.__doc__
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(obj, "example", globs={"tl": tl, "nn": nn}):
        runner.run(test)
    assert runner.failures == 0


def test_cross_entropy_docstring_explains_the_target():
    doc = nn.CrossEntropyLoss.__doc__
    for word in ("weight", "ignore_index", "label_smoothing", "int64", "probabilities",
                 "(N,)"):
        assert word in doc


def test_readme_quick_start_runs_without_a_warning():
    readme = Path(__file__).resolve().parents[2] / "README.md"
    code = re.search(r"```python\n(.*?)```", readme.read_text(), re.S).group(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scope: dict = {}
        exec(compile(code, "README.md", "exec"), scope)
    assert "python3 -m tensorlib.demo" in readme.read_text()
