"""PyTorch's out= argument on tl.* functions: written in place, cast, resized, refused with
autograd, tuples, factories, capture; values and dtypes against PyTorch where it is here."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.ops import out_arg

torch = pytest.importorskip("torch")

R = np.random.default_rng(0)
A = R.standard_normal((3, 4)).astype(np.float32)
B = R.standard_normal((3, 4)).astype(np.float32)
M = R.standard_normal((4, 2)).astype(np.float32)
P = np.abs(A) + 0.5

# name, args (numpy arrays become tensors), kwargs: each result written into out= matches
# PyTorch's out= result
CASES = [
    ("add", (A, B), {}), ("add", (A, 2.0), {"alpha": 3}), ("sub", (A, B), {}),
    ("mul", (A, B), {}), ("div", (A, B), {}), ("div", (A, B), {"rounding_mode": "floor"}),
    ("pow", (P, 1.5), {}), ("atan2", (A, B), {}), ("maximum", (A, B), {}),
    ("exp", (A,), {}), ("log", (P,), {}), ("sqrt", (P,), {}), ("tanh", (A,), {}),
    ("sigmoid", (A,), {}), ("abs", (A,), {}), ("neg", (A,), {}), ("floor", (A,), {}),
    ("clamp", (A,), {"min": -0.5, "max": 0.5}), ("where", (A > 0, A, B), {}),
    ("lerp", (A, B, 0.25), {}), ("addcmul", (A, A, B), {"value": 0.5}),
    ("matmul", (A, M), {}), ("mm", (A, M), {}), ("addmm", (M[:3], A, M), {"beta": 0.5}),
    ("sum", (A, 1), {}), ("mean", (A, 0), {"keepdim": True}), ("prod", (A, 1), {}),
    ("amax", (A, 1), {}), ("logsumexp", (A, 1), {}), ("cumsum", (A, 1), {}),
    ("std", (A, 1), {}), ("var", (A, 0), {}), ("norm", (A,), {}),
    ("cat", ([A, B],), {}), ("stack", ([A, B], 1), {}), ("tril", (A,), {}),
    ("index_select", (A, 1, np.array([0, 2])), {}),
    ("gather", (A, 1, np.array([[0, 1]] * 3)), {}),
    ("eq", (A, A * (A > 0)), {}), ("gt", (A, B), {}), ("logical_not", (A > 0,), {}),
    ("nonzero", (A > 0,), {}),
]


def _args(lib, args):
    conv = (lambda a: tl.tensor(a)) if lib is tl else (lambda a: torch.from_numpy(a.copy()))
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            out.append(conv(a))
        elif isinstance(a, list):
            out.append([conv(x) for x in a])
        else:
            out.append(a)
    return out


@pytest.mark.parametrize("name,args,kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in
                                                         enumerate(CASES)])
def test_out_matches_pytorch_and_is_written_in_place(name, args, kwargs):
    want = getattr(torch, name)(*_args(torch, args), **kwargs)
    out = tl.empty(tuple(want.shape), dtype=getattr(tl, str(want.dtype)[len("torch."):]))
    alias = out[...]                                   # a view sees the write
    ret = getattr(tl, name)(*_args(tl, args), out=out, **kwargs)
    assert ret is out
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(alias.numpy(), out.numpy())
    assert str(out.dtype) == str(want.dtype).replace("torch.", "")


def test_every_listed_function_exists_and_takes_out():
    for name in out_arg.FUNCTIONS + out_arg.FACTORIES:
        f = getattr(tl, name)
        assert f.__wrapped__ is not None, name


def test_out_is_cast_where_pytorch_allows_and_refused_where_not():
    a = tl.tensor([1, 2, 3])
    out = tl.zeros(3, dtype=tl.float64)
    tl.add(a, a, out=out)                              # int result into a float tensor
    assert out.dtype == tl.float64 and out.tolist() == [2.0, 4.0, 6.0]
    with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
        tl.add(tl.ones(3), 1.0, out=tl.zeros(3, dtype=tl.int64))
    with pytest.raises(RuntimeError, match="can't be cast"):
        tl.add(a, 1, out=tl.zeros(3, dtype=tl.bool))     # an int result into bool
    # torch agrees on both
    with pytest.raises(RuntimeError):
        torch.add(torch.ones(3), 1.0, out=torch.zeros(3, dtype=torch.int64))


def test_out_of_another_shape_is_resized_with_pytorchs_warning_unless_empty():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = tl.empty(0)
        tl.mul(tl.ones(2, 3), 2, out=out)              # an empty out: silently
    assert out.shape == (2, 3) and out.tolist() == [[2.0] * 3] * 2
    out = tl.ones(5)
    with pytest.warns(UserWarning, match="was resized since it had shape \\[5\\]") as rec:
        tl.mul(tl.ones(2), 3, out=out)
    assert rec[0].filename == __file__                # points at the caller
    assert out.tolist() == [3.0, 3.0]
    base = tl.zeros(4)
    with pytest.raises(RuntimeError, match="a view cannot be resized"):
        tl.add(tl.ones(3), 1, out=base[:2])


def test_out_refuses_autograd_as_pytorch():
    x = tl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        tl.mul(x, 2, out=tl.empty(2))
    with tl.no_grad():                                 # without grad mode it is a plain write
        out = tl.empty(2)
        tl.mul(x, 2, out=out)
    assert out.tolist() == [2.0, 2.0] and not out.requires_grad
    with pytest.raises(RuntimeError, match="automatic differentiation"):
        torch.mul(torch.ones(2, requires_grad=True), 2, out=torch.empty(2))


def test_tuple_results_write_into_a_tuple_of_outs():
    x = tl.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    v, i = tl.empty(0), tl.empty(0, dtype=tl.int64)
    r = tl.max(x, 1, out=(v, i))
    assert r.values is v and r.indices is i and v.tolist() == [3.0, 5.0] and i.tolist() == [0, 1]
    sv, si = tl.empty(2, 3), tl.empty(2, 3, dtype=tl.int64)
    tl.sort(x, 1, descending=True, out=(sv, si))
    tv, ti = torch.sort(torch.tensor(x.numpy()), 1, descending=True)
    np.testing.assert_array_equal(sv.numpy(), tv.numpy())
    np.testing.assert_array_equal(si.numpy(), ti.numpy())
    with pytest.raises(TypeError, match="tuple of 2 tensors"):
        tl.topk(x, 2, out=tl.empty(2))
    with pytest.raises(TypeError, match="one Tensor"):
        tl.add(x, 1, out=(tl.empty(2, 3),))


def test_factories_take_outs_dtype_and_device():
    t = tl.empty(0, dtype=tl.float64)
    assert tl.zeros(2, 3, out=t) is t and t.shape == (2, 3) and t.dtype == tl.float64
    i = tl.empty(0, dtype=tl.int64)
    tl.arange(5, out=i)
    np.testing.assert_array_equal(i.numpy(), torch.arange(5, out=torch.empty(0, dtype=torch.int64)))
    f = tl.empty(4)
    tl.linspace(0, 1, 4, out=f)
    np.testing.assert_allclose(f.numpy(), torch.linspace(0, 1, 4).numpy())
    tl.manual_seed(0)
    r = tl.empty(3, 2)
    tl.randn(3, 2, out=r)
    tl.manual_seed(0)
    np.testing.assert_array_equal(r.numpy(), tl.randn(3, 2).numpy())


def test_out_inside_a_captured_function_replays():
    buf = tl.zeros(3)

    @tl.function
    def step(x):
        tl.mul(x, 2, out=buf)
        return buf + 1

    for k in range(3):
        x = tl.full((3,), float(k))
        np.testing.assert_array_equal(step(x).numpy(), 2 * k + 1.0)
        np.testing.assert_array_equal(buf.numpy(), 2.0 * k)
    assert step.trace_count == 1


def test_out_may_alias_an_input():
    a = tl.tensor([1.0, 2.0])
    tl.add(a, a, out=a)
    assert a.tolist() == [2.0, 4.0]
