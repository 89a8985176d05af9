"""Dtype promotion of two tensors follows PyTorch's rules (not NumPy's), checked against
PyTorch for every pair of dtypes, with and without 0-d operands."""
import itertools

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
OPS = {
    "add": lambda m, a, b: a + b,
    "mul": lambda m, a, b: a * b,
    "div": lambda m, a, b: a / b,
    "maximum": lambda m, a, b: m.maximum(a, b),
    "lt": lambda m, a, b: a < b,
    "where": lambda m, a, b: m.where(m.ones(a.shape, dtype=m.bool), a, b),
    "atan2": lambda m, a, b: m.atan2(a, b),
    "hypot": lambda m, a, b: m.hypot(a, b),
}


def _operand(m, dtype: str, zero_d: bool):
    v = np.array(2 if zero_d else [1, 2, 3]).astype(dtype)
    return tl.tensor(v) if m is tl else torch.from_numpy(v.copy())


@pytest.mark.parametrize("name", sorted(OPS))
def test_result_dtype_and_values_match_pytorch(name):
    f = OPS[name]
    checked = 0
    for da, db, (za, zb) in itertools.product(DTYPES, DTYPES, [(False, True), (True, False),
                                                              (True, True), (False, False)]):
        try:
            want = f(torch, _operand(torch, da, za), _operand(torch, db, zb))
        except RuntimeError:
            continue          # PyTorch refuses the pair (e.g. hypot of integers)
        got = f(tl, _operand(tl, da, za), _operand(tl, db, zb))
        where = f"{name}({da}{' 0-d' if za else ''}, {db}{' 0-d' if zb else ''})"
        assert str(got.dtype) == str(want.dtype).replace("torch.", ""), where
        np.testing.assert_allclose(got.numpy().astype(np.float64),
                                   want.numpy().astype(np.float64), rtol=1e-3, err_msg=where)
        checked += 1
    assert checked > 100


def test_zero_d_float64_does_not_widen_float32_and_gets_its_gradient_in_float64():
    x = tl.ones(3, requires_grad=True)
    s = tl.tensor(2.0, dtype=tl.float64, requires_grad=True)
    y = x * s
    assert y.dtype == tl.float32            # NumPy would give float64
    y.sum().backward()
    assert x.grad.dtype == tl.float32 and s.grad.dtype == tl.float64
    np.testing.assert_allclose(s.grad.numpy(), 3.0)
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 2.0])
