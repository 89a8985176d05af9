"""What a teaching trial (a first deep-learning course, against PyTorch 2.13) found: printing,
beginner diagnostics, the names course material uses."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")


@pytest.fixture
def printoptions():
    yield
    tl.set_printoptions(profile="default")
    tl.set_printoptions(sci_mode=None)


def test_a_0d_tensor_formats_as_its_number():
    w = tl.tensor(0.123456789, requires_grad=True)
    tw = torch.tensor(0.123456789, requires_grad=True)
    for ours, theirs in ((w * 2, tw * 2), (tl.tensor(3), torch.tensor(3)),
                         (tl.tensor(True), torch.tensor(True))):
        assert f"{ours}" == f"{theirs}"
        assert format(ours) == format(theirs)
    assert f"{w * 2:.3f}" == "0.247"
    assert f"{tl.tensor([1.5])}" == "tensor([1.5000])"      # 1-d: still a tensor
    assert str(w * 2).startswith("tensor(")


@pytest.mark.parametrize("sci", [False, True])
def test_sci_mode_prints_aligned_columns_as_pytorch(sci, printoptions):
    values = [[[0.0028, -0.0117], [0.0007, -0.0005], [-0.0033, 0.0045]],
              [[0.0028, -0.0117], [-0.0033, 0.0045]]]
    if not sci:
        values += [[[1., 2.], [30., 400.]], [0.001, 1000., 1.]]
    for v in values:
        tl.set_printoptions(sci_mode=sci)
        torch.set_printoptions(sci_mode=sci)
        try:
            assert repr(tl.tensor(v)) == repr(torch.tensor(v))
        finally:
            torch.set_printoptions(profile="default")
            torch.set_printoptions(sci_mode=None)


def test_threshold_inf_prints_everything(printoptions):
    tl.set_printoptions(threshold=float("inf"))
    assert "..." not in repr(tl.arange(5000))
    tl.set_printoptions(profile="default")
    assert "..." in repr(tl.arange(5000))
    with pytest.raises(ValueError, match="threshold"):
        tl.set_printoptions(threshold=-1)


def test_data_of_a_leaf_requiring_grad_must_stay_floating():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating-point"):
        x.data = tl.tensor([1, 2])
    assert x.dtype == tl.float32
    x.data = tl.tensor([3.0, 4.0])             # floats are fine
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    y = tl.tensor([1.0, 2.0])                  # no grad: any dtype, as PyTorch
    y.data = tl.tensor([1, 2])
    assert y.dtype == tl.int64


@pytest.mark.parametrize("p", [2, 3, 0.5, -1])
def test_a_power_may_be_changed_in_place_before_backward(p):
    """PyTorch's pow saves its input, not its result: scaling the result in place is fine."""
    res = []
    for m in (tl, torch):
        pred = m.tensor([1.0, 2.0, 3.0], dtype=m.float64, requires_grad=True)
        t = m.tensor([1.5, 2.5, 2.0], dtype=m.float64)
        sq = (pred - t).abs() ** p
        sq *= 0.5
        sq.mean().backward()
        res.append(pred.grad.detach().numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-12)
    # a tensor exponent's gradient still reads a ** b (recomputed, not the changed output)
    a = tl.tensor([1.5, 2.0], dtype=tl.float64, requires_grad=True)
    b = tl.tensor([2.0, 0.5], dtype=tl.float64, requires_grad=True)
    ta = torch.tensor([1.5, 2.0], dtype=torch.float64, requires_grad=True)
    tb = torch.tensor([2.0, 0.5], dtype=torch.float64, requires_grad=True)
    (a ** b).sum().backward()
    (ta ** tb).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12)
    assert tl.autograd.gradgradcheck(lambda u, v: u ** v, (a, b))


@pytest.mark.parametrize("loss", ["mse_loss", "l1_loss"])
def test_regression_losses_take_an_integer_target(loss):
    x = tl.tensor([[0.5], [1.0], [4.0]], requires_grad=True)
    tx = torch.tensor([[0.5], [1.0], [4.0]], requires_grad=True)
    out = getattr(F, loss)(x, tl.tensor([[1], [2], [3]]))
    ref = getattr(torch.nn.functional, loss)(tx, torch.tensor([[1], [2], [3]]))
    assert out.dtype == tl.float32
    np.testing.assert_allclose(out.item(), ref.item(), rtol=1e-6)
    out.backward()
    ref.backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)
    with pytest.raises(TypeError):          # huber keeps refusing one, as PyTorch
        F.huber_loss(x, tl.tensor([[1], [2], [3]]))


def test_reading_a_non_leaf_grad_warns_unless_retained():
    x = tl.ones(2, requires_grad=True)
    y = x * 2
    z = x * 3
    z.retain_grad()
    (y.sum() + z.sum()).backward()
    with pytest.warns(UserWarning, match="retain_grad") as rec:
        assert y.grad is None
    assert rec[0].filename == __file__          # points at the reader's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is not None and z.grad is not None
        # tensorlib's own reads (capture, the engine) do not warn
        a = tl.ones(2, requires_grad=True)
        h = a * 2                                   # backward(inputs=) of a non-leaf
        (h * h).sum().backward(inputs=[h])
        assert h.grad is not None


def test_warnings_point_at_the_users_line():
    with pytest.warns(UserWarning, match="broadcasts") as rec:
        F.mse_loss(tl.ones(3, 1), tl.ones(3))
    assert rec[0].filename == __file__
    with pytest.warns(UserWarning, match="no dim given") as rec:
        tl.nn.Softmax()(tl.ones(2, 2, 2))
    assert rec[0].filename == __file__


def test_next_functions_reach_the_parameters():
    w = tl.ones(3, 2, requires_grad=True)
    b = tl.ones(2, requires_grad=True)
    y = tl.ones(4, 3) @ w + b
    (mm, _), (acc_b, _) = y.grad_fn.next_functions
    assert acc_b.variable is b and acc_b.name() == "torch::autograd::AccumulateGrad"
    (const, _), (acc_w, _) = mm.next_functions
    assert const is None and acc_w.variable is w and acc_w.next_functions == ()


def test_mistakes_raise_runtime_errors_as_pytorch():
    for bad in (lambda: tl.tensor([1.0, 2.0]).item(), lambda: bool(tl.tensor([1.0, 2.0]))):
        with pytest.raises(RuntimeError):
            bad()
    for bad in (lambda: tl.zeros(-1), lambda: tl.arange(1, 0, 1), lambda: tl.arange(0, 1, 0),
                lambda: tl.rand(2, dtype=tl.int64), lambda: tl.ones(5).split([2, 2]),
                lambda: tl.tensor([1]) // 0, lambda: tl.tensor([3]) % tl.tensor([0])):
        with pytest.raises(RuntimeError):
            bad()
    w = tl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="shape"):
        w.grad = tl.ones(3)
    with pytest.raises(RuntimeError, match="dtype"):
        w.grad = tl.ones(2, dtype=tl.float64)


def test_integer_division_by_zero_is_both_error_kinds():
    with pytest.raises(ZeroDivisionError):
        tl.tensor([1]) // 0
    with pytest.raises(RuntimeError):
        torch.tensor([1]) // 0


def test_constants_variable_and_testing():
    import math
    assert (tl.pi, tl.e, tl.inf) == (math.pi, math.e, math.inf) and math.isnan(tl.nan)
    assert tl.ones(2)[:, tl.newaxis].shape == (2, 1)
    v = tl.autograd.Variable(tl.ones(2), requires_grad=True)
    assert v.requires_grad


def test_assert_close_agrees_with_pytorch():
    cases = [([1.0, 2.0], [1.0, 2.0 + 1e-7], "float32"),
             ([1.0, 2.0, 3.0], [1.0, 2.5, 3.1], "float32"),
             ([1.0, 2.0], [1.0, 2.0 + 1e-9], "float64"),
             ([1.0, 2.0], [1.0, 2.0 + 1e-6], "float64"),
             ([1, 2], [1, 3], "int64"), ([1, 2], [1, 2], "int64"),
             ([float("nan")], [float("nan")], "float32")]
    for a, b, dt in cases:
        for kw in ({}, {"equal_nan": True}, {"rtol": 0.3, "atol": 0.0}):
            got = want = None
            try:
                tl.testing.assert_close(tl.tensor(a, dtype=dt), tl.tensor(b, dtype=dt), **kw)
            except AssertionError as e:
                got = str(e)
            try:
                torch.testing.assert_close(torch.tensor(a, dtype=getattr(torch, dt)),
                                           torch.tensor(b, dtype=getattr(torch, dt)), **kw)
            except AssertionError as e:
                want = str(e)
            assert (got is None) == (want is None), (a, b, dt, kw, got, want)
            if got is not None:
                assert got.splitlines()[2] == want.splitlines()[2]     # mismatched count
    with pytest.raises(AssertionError, match="dtype"):
        tl.testing.assert_close(tl.ones(2), tl.ones(2, dtype=tl.float64))
    with pytest.raises(AssertionError, match="shape"):
        tl.testing.assert_close(tl.ones(2), tl.ones(3))
    tl.testing.assert_close(tl.ones(2), tl.ones(2, dtype=tl.float64), check_dtype=False)
    tl.testing.assert_close({"a": [tl.ones(1), 2.0]}, {"a": [tl.ones(1), 2.0]})
    with pytest.raises(AssertionError, match="custom"):
        tl.testing.assert_close(tl.ones(1), tl.zeros(1), msg="custom")
    with pytest.raises(ValueError, match="both"):
        tl.testing.assert_close(tl.ones(1), tl.ones(1), rtol=1e-3)
    t = tl.testing.make_tensor(3, 4, dtype=tl.float32, low=-1, high=1, noncontiguous=True)
    assert t.shape == (3, 4) and not t.is_contiguous() and float(t.abs().max()) <= 1


def test_notebook_reprs_match_pytorch():
    for name in ("MSELoss", "CrossEntropyLoss", "L1Loss", "CTCLoss", "TripletMarginLoss"):
        assert repr(getattr(tl.nn, name)()) == repr(getattr(torch.nn, name)())
    assert repr(tl.nn.MSELoss(reduction="sum")) == repr(torch.nn.MSELoss(reduction="sum"))
    m, tm = tl.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    assert repr(m.load_state_dict(m.state_dict())) == repr(tm.load_state_dict(tm.state_dict()))
    keys = m.load_state_dict({"weight": m.weight.detach()}, strict=False)
    assert keys.missing_keys == ["bias"] and "bias" in repr(keys)
