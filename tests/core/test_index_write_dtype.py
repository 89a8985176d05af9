"""Writes through advanced indexing (``x[idx] = v``, ``x[mask] = v``, ``index_put(_)``) with a
tensor value of another dtype: refused as PyTorch's index_put, eager and captured; basic-slice
writes, Python scalars and PyTorch's one-element masked_fill dispatch keep casting."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.errors import DTypeError

torch = pytest.importorskip("torch")


def _t(lib, a, dt):
    return lib.tensor(np.asarray(a), dtype=getattr(lib, dt))


def _mask(lib, bits):
    return _t(lib, bits, "bool")


# name -> fn(lib) doing one write; the outcome (raises or not, and the result) must match
CASES = {
    "index_f64": lambda L: L.zeros(4).__setitem__(_t(L, [0, 1], "int64"),
                                                  _t(L, [1.5, 2.5], "float64")),
    "list_index": lambda L: L.zeros(4).__setitem__([0, 1], _t(L, [1.5, 2.5], "float64")),
    "mask_many": lambda L: L.zeros(4).__setitem__(_mask(L, [1, 0, 1, 0]),
                                                  _t(L, [1.5, 2.5], "float64")),
    "index_0d_value": lambda L: L.zeros(4).__setitem__(_t(L, [0, 1], "int64"),
                                                       _t(L, 1.5, "float64")),
    "int64_into_float": lambda L: L.zeros(4).__setitem__(_t(L, [0, 1], "int64"),
                                                         _t(L, [1, 2], "int64")),
    "int32_into_int64": lambda L: L.zeros(4, dtype=L.int64).__setitem__(
        _t(L, [0, 1], "int64"), _t(L, [1, 2], "int32")),
    "half_into_float": lambda L: L.zeros(4).__setitem__(_t(L, [0, 1], "int64"),
                                                        _t(L, [1, 2], "float16")),
    "bool_into_float": lambda L: L.zeros(4).__setitem__(_t(L, [0, 1], "int64"),
                                                        _t(L, [1, 0], "bool")),
    "slice_and_index": lambda L: L.zeros(3, 4).__setitem__(
        (slice(None), _t(L, [0, 1], "int64")), L.ones(3, 2, dtype=L.float64)),
    "int_and_index": lambda L: L.zeros(3, 4).__setitem__(
        (0, _t(L, [0, 1], "int64")), L.ones(2, dtype=L.float64)),
    "row_mask_row_value": lambda L: L.zeros(3, 4).__setitem__(
        _mask(L, [1, 0, 1]), L.ones(4, dtype=L.float64)),
    "two_masks_0d": lambda L: L.zeros(2, 3).__setitem__(
        (_mask(L, [1, 0]), _mask(L, [1, 0, 1])), _t(L, 4.0, "float64")),
    "index_put_": lambda L: L.zeros(4).index_put_((_t(L, [0, 1], "int64"),),
                                                  _t(L, [1.5, 2.5], "float64")),
    "index_put_accumulate": lambda L: L.zeros(4).index_put_(
        (_t(L, [0, 1], "int64"),), _t(L, [1.5, 2.5], "float64"), accumulate=True),
    "index_put": lambda L: L.zeros(4).index_put((_t(L, [0, 1], "int64"),),
                                                _t(L, [1.5, 2.5], "float64")),
    "index_put_mask_0d_accumulate": lambda L: L.zeros(4).index_put_(
        (_mask(L, [1, 0, 1, 0]),), _t(L, 1.5, "float64"), accumulate=True),
    "grad_index": lambda L: L.zeros(4, requires_grad=True).clone().__setitem__(
        _t(L, [0, 1], "int64"), _t(L, [1.5, 2.5], "float64")),
}

# writes PyTorch accepts (casting): returns the written tensor
ACCEPTED = {
    "slice": lambda L: _w(L.zeros(4), slice(0, 2), _t(L, [1.5, 2.5], "float64")),
    "int": lambda L: _w(L.zeros(4), 1, _t(L, 1.5, "float64")),
    "ellipsis": lambda L: _w(L.zeros(2, 2), Ellipsis, L.ones(2, 2, dtype=L.float64)),
    "index_python_scalar": lambda L: _w(L.zeros(4), _t(L, [0, 1], "int64"), 2.5),
    "int_index_python_float": lambda L: _w(L.zeros(4, dtype=L.int64), _t(L, [0, 1], "int64"),
                                           3.7),
    "0d_int_tensor_index": lambda L: _w(L.zeros(4), _t(L, 2, "int64"), _t(L, 1.5, "float64")),
    "python_true": lambda L: _w(L.zeros(4), True, _t(L, [1, 2, 3, 4], "float64")),
    # one value and one bool mask: PyTorch's masked_fill_ dispatch (value.item(), cast)
    "mask_0d": lambda L: _w(L.zeros(4), _mask(L, [1, 0, 1, 0]), _t(L, 1.5, "float64")),
    "mask_1x1": lambda L: _w(L.zeros(4), _mask(L, [1, 0, 1, 0]), _t(L, [[1.5]], "float64")),
    "mask_int64_value": lambda L: _w(L.zeros(4), _mask(L, [0, 1, 1, 0]), _t(L, 7, "int64")),
    "mask_float_into_int": lambda L: _w(L.zeros(4, dtype=L.int64), _mask(L, [0, 1, 1, 0]),
                                        _t(L, 7.9, "float64")),
    "int_then_mask": lambda L: _w(L.zeros(3, 4), (1, _mask(L, [1, 0, 1, 0])),
                                  _t(L, 2.5, "float64")),
    "row_mask_0d": lambda L: _w(L.zeros(3, 4), _mask(L, [1, 0, 1]), _t(L, 2.5, "float64")),
    "index_put_mask_0d": lambda L: L.zeros(4).index_put_((_mask(L, [1, 0, 1, 0]),),
                                                         _t(L, 1.5, "float64")),
    "index_put_oop_mask_0d": lambda L: L.zeros(4).index_put((_mask(L, [1, 0, 1, 0]),),
                                                            _t(L, 1.5, "float64")),
}


def _w(x, key, v):
    x[key] = v
    return x


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_as_pytorch(name):
    fn = CASES[name]
    with pytest.raises(RuntimeError, match="dtypes match"):
        fn(torch)
    with pytest.raises(DTypeError, match=r"must have the same dtype.*source\.to"):
        fn(tl)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_as_pytorch(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = ACCEPTED[name](torch)
        got = ACCEPTED[name](tl)
    assert got.dtype == getattr(tl, str(want.dtype).split(".")[1])
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=6),
       st.sampled_from(["float32", "float16", "int64", "int32"]))
def test_mask_value_dtype_property(bits, vdt):
    n = len(bits)
    for shape in ((), (n,)):
        v = np.arange(1, 1 + int(np.prod(shape))).reshape(shape)
        outcome = []
        for lib in (torch, tl):
            x = lib.zeros(n, dtype=lib.float64)
            try:
                x[_mask(lib, bits)] = _t(lib, v if shape else 3, vdt)
                outcome.append(x.numpy())
            except RuntimeError:
                outcome.append(None)
        if outcome[0] is None or outcome[1] is None:
            assert outcome[0] is None and outcome[1] is None, (bits, shape, vdt)
        else:
            np.testing.assert_array_equal(outcome[1], outcome[0])


def test_mask_fill_gradients_match():
    m = [True, False, True, False]
    res = []
    for lib in (torch, tl):
        z = lib.zeros(4, requires_grad=True)
        v = _t(lib, 2.0, "float64")
        v.requires_grad_(True)
        w = z.clone() * 3
        w[_mask(lib, m)] = v
        (w * _t(lib, [1.0, 2.0, 3.0, 4.0], "float32")).sum().backward()
        res.append((v.grad, z.grad))
    (tv, tz), (lv, lz) = res
    assert lv.dtype == tl.float64
    np.testing.assert_allclose(lv.numpy(), tv.numpy())
    np.testing.assert_allclose(lz.numpy(), tz.numpy())


def test_same_dtype_writes_unchanged():
    x = tl.zeros(4, dtype=tl.float64)
    x[tl.tensor([0, 2])] = tl.tensor([1.0, 2.0], dtype=tl.float64)
    np.testing.assert_array_equal(x.numpy(), [1, 0, 2, 0])


def test_complex_into_real_mask_refused():
    with pytest.raises(RuntimeError):
        _w(torch.zeros(4), _mask(torch, [1, 0, 1, 0]), torch.tensor(1.5 + 2j))
    with pytest.raises(RuntimeError, match="imaginary"):
        _w(tl.zeros(4), _mask(tl, [1, 0, 1, 0]), tl.tensor(1.5 + 2j))


# --- under capture (tl.function): captured writes refuse as eager -----------------------
@tl.function
def _traced_index_write(x, i, v):
    y = x.clone()
    y[i] = v
    return y


@tl.function
def _const_index_write(x, v):
    y = x.clone()
    y[tl.tensor([0, 1])] = v
    return y


@tl.function
def _traced_index_put(x, i, v):
    return x.index_put((i,), v)


@tl.function
def _traced_index_put_(x, i, v):
    y = x.clone()
    y.index_put_((i,), v)
    return y


@tl.function
def _slice_write(x, v):
    y = x.clone()
    y[0:2] = v
    return y


@tl.function
def _mask_write(x, m, v):
    y = x.clone()
    y[m] = v
    return y


def test_capture_refuses_index_writes():
    i, v64 = tl.tensor([0, 1]), tl.tensor([1.5, 2.5], dtype=tl.float64)
    with pytest.raises(DTypeError, match="setitem: source of dtype float64"):
        _traced_index_write(tl.zeros(4), i, v64)
    with pytest.raises(DTypeError, match="setitem: source of dtype float64"):
        _const_index_write(tl.zeros(4), v64)
    with pytest.raises(DTypeError, match="index_put"):
        _traced_index_put(tl.zeros(4), i, v64)
    with pytest.raises(DTypeError, match="index_put"):
        _traced_index_put_(tl.zeros(4), i, v64)


def test_capture_keeps_casting_where_pytorch_does():
    v64 = tl.tensor([1.5, 2.5], dtype=tl.float64)
    out = _slice_write(tl.zeros(4), v64)
    assert out.dtype == tl.float32
    np.testing.assert_array_equal(out.numpy(), [1.5, 2.5, 0, 0])
    out = _traced_index_write(tl.zeros(4), tl.tensor([0, 3]), tl.tensor([1.0, 2.0]))
    np.testing.assert_array_equal(out.numpy(), [1, 0, 0, 2])
    out = _mask_write(tl.zeros(4), tl.tensor([True, False, True, False]),
                      tl.tensor(2.5, dtype=tl.float64))
    assert out.dtype == tl.float32
    np.testing.assert_array_equal(out.numpy(), [2.5, 0, 2.5, 0])
