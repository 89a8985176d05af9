"""One type-promotion rule (PyTorch's ResultTypeState), one checked cast for indexed writes,
error classes for complex inputs and bad convolution shapes, autocast leaving complex alone.
Every result dtype is compared with PyTorch's over a grid of dtypes and operand kinds."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.errors import DTypeError, ShapeError

torch = pytest.importorskip("torch")

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64",
          "complex64", "complex128"]
SCALARS = [True, 3, 2.5, 1 + 2j]


def _tensors(dt: str, zero_dim: bool):
    vals = [True, False] if dt == "bool" else [1, 2]
    if zero_dim:
        vals = vals[0]
    return (tl.tensor(vals, dtype=getattr(tl, dt)),
            torch.tensor(vals, dtype=getattr(torch, dt)))


# (a tensorlib operand, a torch operand, a label): tensors with dims, 0-d tensors, numbers
TENSOR_OPERANDS = [(*_tensors(dt, z), f"{'0-d' if z else 'dims'} {dt}")
                   for z in (False, True) for dt in DTYPES]
OPERANDS = TENSOR_OPERANDS + [(s, s, f"python {type(s).__name__}") for s in SCALARS]


def _torch_name(dt) -> str | None:
    # dtypes NumPy lacks (complex32, bfloat16): not comparable
    name = str(dt).replace("torch.", "")
    return None if name in ("complex32", "bfloat16") else name


def _mismatches(tl_fn, torch_fn, pairs) -> list[str]:
    bad = []
    for (ta, pa, la), (tb, pb, lb) in pairs:
        try:
            want = torch_fn(pa, pb)
        except (RuntimeError, TypeError):
            continue            # a combination PyTorch refuses (bool - bool, ...)
        want = _torch_name(want.dtype if isinstance(want, torch.Tensor) else want)
        if want is None:
            continue
        try:
            got = tl_fn(ta, tb)
        except Exception as e:     # noqa: BLE001 -- reported as a mismatch
            bad.append(f"{la} with {lb}: {type(e).__name__}: {e}")
            continue
        got = str(np.dtype(got.dtype if isinstance(got, tl.Tensor) else got))
        if got != want:
            bad.append(f"{la} with {lb}: tensorlib {got}, torch {want}")
    return bad


def _pairs(left, right):
    return [(a, b) for a in left for b in right]


BINARY = {"add": (lambda a, b: a + b), "mul": (lambda a, b: a * b),
          "truediv": (lambda a, b: a / b)}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_result_dtype_grid(name):
    fn = BINARY[name]
    pairs = _pairs(TENSOR_OPERANDS, OPERANDS) + _pairs(OPERANDS[-4:], TENSOR_OPERANDS)
    bad = _mismatches(fn, fn, pairs)
    assert not bad, f"{len(bad)} mismatches:\n" + "\n".join(bad[:40])


def test_result_type_grid():
    pairs = _pairs(OPERANDS, OPERANDS)
    pairs = [(a, b) for a, b in pairs if isinstance(a[0], tl.Tensor)
             or isinstance(b[0], tl.Tensor)]
    bad = _mismatches(tl.result_type, torch.result_type, pairs)
    assert not bad, f"{len(bad)} mismatches:\n" + "\n".join(bad[:40])


def test_promote_types_grid():
    bad = []
    for a in DTYPES:
        for b in DTYPES:
            want = _torch_name(torch.promote_types(getattr(torch, a), getattr(torch, b)))
            got = str(tl.promote_types(getattr(tl, a), getattr(tl, b)))
            if got != want:
                bad.append(f"{a}, {b}: tensorlib {got}, torch {want}")
    assert not bad, "\n".join(bad)


def test_where_grid():
    def tl_where(a, b):
        return tl.where(tl.tensor([True, False]), a, b)

    def torch_where(a, b):
        return torch.where(torch.tensor([True, False]), a, b)

    pairs = _pairs(TENSOR_OPERANDS, OPERANDS) + _pairs(OPERANDS[-4:], TENSOR_OPERANDS)
    bad = _mismatches(tl_where, torch_where, pairs)
    assert not bad, f"{len(bad)} mismatches:\n" + "\n".join(bad[:40])


def test_cat_grid():
    dims = TENSOR_OPERANDS[:len(DTYPES)]
    bad = _mismatches(lambda a, b: tl.cat([a, b]), lambda a, b: torch.cat([a, b]),
                      _pairs(dims, dims))
    assert not bad, f"{len(bad)} mismatches:\n" + "\n".join(bad[:40])


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(DTYPES), st.sampled_from(DTYPES), st.booleans(), st.booleans())
def test_torch_promote_matches_result_type(a, b, za, zb):
    """The dtype-level rule the kernels and infer rules use is torch.result_type's."""
    from tensorlib.ops._util import torch_promote
    ta, pa = _tensors(a, za)
    tb, pb = _tensors(b, zb)
    want = _torch_name(torch.result_type(pa, pb))
    if want is not None:
        got = torch_promote(np.dtype(a), 0 if za else 1, np.dtype(b), 0 if zb else 1)
        assert str(got) == want


def test_promotion_values_and_grads_vs_torch():
    """A float32 tensor with a 0-d float64 tensor computes in float32, gradients in each
    operand's own dtype."""
    x = tl.tensor([0.5, -1.25, 2.0], requires_grad=True)
    s = tl.tensor(3.0, dtype=tl.float64, requires_grad=True)
    px = torch.tensor([0.5, -1.25, 2.0], requires_grad=True)
    ps = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    out, pout = x * s / (s + 1), px * ps / (ps + 1)
    assert str(out.dtype) == "float32"
    np.testing.assert_allclose(out.numpy(), pout.detach().numpy(), rtol=1e-6)
    out.sum().backward()
    pout.sum().backward()
    assert str(x.grad.dtype) == "float32" and str(s.grad.dtype) == "float64"
    np.testing.assert_allclose(x.grad.numpy(), px.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(s.grad.numpy(), ps.grad.numpy(), rtol=1e-5)


# --- (2) one checked cast for indexed writes ---------------------------------------------
def _write_ops():
    idx = [0, 2]
    return {
        "index_put": (lambda x, v: x.index_put((tl.tensor(idx),), v),
                      lambda x, v: x.index_put((torch.tensor(idx),), v)),
        "index_copy": (lambda x, v: x.index_copy(0, tl.tensor(idx), v),
                       lambda x, v: x.index_copy(0, torch.tensor(idx), v)),
        "scatter": (lambda x, v: x.scatter(0, tl.tensor(idx), v),
                    lambda x, v: x.scatter(0, torch.tensor(idx), v)),
        "scatter_add": (lambda x, v: x.scatter_add(0, tl.tensor(idx), v),
                        lambda x, v: x.scatter_add(0, torch.tensor(idx), v)),
        "put": (lambda x, v: x.put(tl.tensor(idx), v),
                lambda x, v: x.put(torch.tensor(idx), v)),
        "index_put_": (lambda x, v: x.clone().index_put_((tl.tensor(idx),), v),
                       lambda x, v: x.clone().index_put_((torch.tensor(idx),), v)),
        "index_copy_": (lambda x, v: x.clone().index_copy_(0, tl.tensor(idx), v),
                        lambda x, v: x.clone().index_copy_(0, torch.tensor(idx), v)),
        "scatter_": (lambda x, v: x.clone().scatter_(0, tl.tensor(idx), v),
                     lambda x, v: x.clone().scatter_(0, torch.tensor(idx), v)),
        "scatter_add_": (lambda x, v: x.clone().scatter_add_(0, tl.tensor(idx), v),
                         lambda x, v: x.clone().scatter_add_(0, torch.tensor(idx), v)),
        "put_": (lambda x, v: x.clone().put_(tl.tensor(idx), v),
                 lambda x, v: x.clone().put_(torch.tensor(idx), v)),
    }


WRITE_OPS = _write_ops()


@pytest.mark.parametrize("name", sorted(WRITE_OPS))
def test_indexed_write_refuses_complex_into_real(name):
    fn, _ = WRITE_OPS[name]
    x = tl.tensor([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(RuntimeError, match=name.rstrip("_") + r".*complex128.*imaginary"):
        fn(x, tl.tensor([1 + 1j, 2 - 1j], dtype=tl.complex128))


@pytest.mark.parametrize("name", sorted(WRITE_OPS))
def test_indexed_write_same_dtype_vs_torch(name):
    """Equal dtypes (PyTorch's requirement for most of these): values as PyTorch's."""
    fn, pfn = WRITE_OPS[name]
    for dt in ("float64", "int32", "complex128"):
        x = tl.tensor([1, 2, 3, 4], dtype=getattr(tl, dt))
        v = tl.tensor([7, -5], dtype=getattr(tl, dt))
        px, pv = torch.tensor([1, 2, 3, 4], dtype=getattr(torch, dt)), torch.tensor(
            [7, -5], dtype=getattr(torch, dt))
        got, want = fn(x, v), pfn(px, pv)
        assert str(got.dtype) == dt
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("name", sorted(WRITE_OPS))
def test_indexed_write_refuses_another_dtype_as_torch(name):
    """A source of another dtype is refused, as PyTorch refuses it (a float source written
    into an int tensor would be truncated element by element)."""
    fn, pfn = WRITE_OPS[name]
    for dst, src, vals in (("float32", "float64", [1.5, -2.25]), ("int64", "float32",
                           [0.6, 0.7]), ("complex64", "float32", [1.5, 2.0])):
        with pytest.raises(RuntimeError):
            pfn(torch.tensor([1, 2, 3, 4], dtype=getattr(torch, dst)),
                torch.tensor(vals, dtype=getattr(torch, src)))
        x = tl.tensor([1, 2, 3, 4], dtype=getattr(tl, dst))
        with pytest.raises(tl.errors.DTypeError, match=name.rstrip("_") + f".*{src}.*{dst}"):
            fn(x, tl.tensor(vals, dtype=getattr(tl, src)))


def test_check_write_dtype_helper():
    from tensorlib.ops.indexing import check_write_dtype
    a = np.array([1.5, 2.5])
    assert check_write_dtype("op", a, np.dtype(np.float64)) is a
    with pytest.raises(TypeError, match="myop: source of dtype float64"):
        check_write_dtype("myop", a, np.dtype(np.int32))
    with pytest.raises(RuntimeError, match="myop: source of dtype complex64.*imaginary"):
        check_write_dtype("myop", np.array([1j], np.complex64), np.dtype(np.float32))


def test_index_put_grad_through_cast_vs_torch():
    x = tl.tensor([1.0, 2.0, 3.0], dtype=tl.float64, requires_grad=True)
    v = tl.tensor([5.0, 6.0], dtype=tl.float64, requires_grad=True)
    px = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    pv = torch.tensor([5.0, 6.0], dtype=torch.float64, requires_grad=True)
    w = tl.tensor([1.0, 2.0, 3.0], dtype=tl.float64)
    (x.index_put((tl.tensor([0, 2]),), v) * w).sum().backward()
    (px.index_put((torch.tensor([0, 2]),), pv) * torch.tensor([1.0, 2.0, 3.0],
                                                                dtype=torch.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), px.grad.numpy())
    np.testing.assert_array_equal(v.grad.numpy(), pv.grad.numpy())


# --- (3) error classes -----------------------------------------------------------------------
COMPLEX_REFUSED = {
    "lt": (lambda z: z < z, lambda z: z < z),
    "max": (lambda z: tl.max(z), lambda z: torch.max(z)),
    "clamp": (lambda z: tl.clamp(z, 0, 1), lambda z: torch.clamp(z, 0, 1)),
    "sort": (lambda z: tl.sort(z), lambda z: torch.sort(z)),
    "argsort": (lambda z: tl.argsort(z), lambda z: torch.argsort(z)),
    "cummax": (lambda z: tl.cummax(z, 0), lambda z: torch.cummax(z, 0)),
    "atan2": (lambda z: tl.atan2(z, z), lambda z: torch.atan2(z, z)),
    "scatter_reduce": (
        lambda z: z.scatter_reduce(0, tl.tensor([0, 0]), z, "amax"),
        lambda z: z.scatter_reduce(0, torch.tensor([0, 0]), z, "amax")),
}
@pytest.mark.parametrize("name", sorted(COMPLEX_REFUSED))
def test_complex_refused_raises_dtype_error(name):
    fn, pfn = COMPLEX_REFUSED[name]
    with pytest.raises(RuntimeError):       # PyTorch's class
        pfn(torch.tensor([1 + 1j, 2j]))
    with pytest.raises(DTypeError) as info:
        fn(tl.tensor([1 + 1j, 2j]))
    assert isinstance(info.value, TypeError) and isinstance(info.value, RuntimeError)


def test_unsupported_is_dtype_error():
    from tensorlib.autograd.complex_grad import unsupported

    class Op:
        name = "myop"

    e = unsupported(Op)
    assert isinstance(e, DTypeError) and "myop" in str(e)


CONV_BAD = {
    "conv1d_input_dims": (lambda m: m.conv1d, (2, 3), (4, 3, 2)),
    "conv1d_channels": (lambda m: m.conv1d, (1, 2, 5), (4, 3, 2)),
    "conv2d_input_dims": (lambda m: m.conv2d, (2, 3), (4, 3, 2, 2)),
    "conv2d_channels": (lambda m: m.conv2d, (1, 2, 5, 5), (4, 3, 2, 2)),
    "conv2d_kernel_too_big": (lambda m: m.conv2d, (1, 3, 2, 2), (4, 3, 3, 3)),
    "conv3d_channels": (lambda m: m.conv3d, (1, 2, 4, 4, 4), (4, 3, 2, 2, 2)),
    "conv_transpose1d_channels": (lambda m: m.conv_transpose1d, (1, 2, 5), (3, 4, 2)),
    "conv_transpose2d_channels": (lambda m: m.conv_transpose2d, (1, 2, 5, 5), (3, 4, 2, 2)),
    "conv_transpose3d_channels": (lambda m: m.conv_transpose3d, (1, 2, 4, 4, 4),
                                  (3, 4, 2, 2, 2)),
}


@pytest.mark.parametrize("name", sorted(CONV_BAD))
def test_conv_bad_shapes_raise_shape_error(name):
    get, xs, ws = CONV_BAD[name]
    with pytest.raises(RuntimeError):
        get(torch.nn.functional)(torch.zeros(xs), torch.zeros(ws))
    with pytest.raises(ShapeError) as info:
        get(F)(tl.zeros(xs), tl.zeros(ws))
    assert isinstance(info.value, ValueError)
    assert name.split("_")[0] in str(info.value) or "conv" in str(info.value)


def test_conv_bad_padding_is_shape_error():
    with pytest.raises(ShapeError, match="conv2d: padding must be non-negative"):
        F.conv2d(tl.zeros((1, 1, 4, 4)), tl.zeros((1, 1, 2, 2)), padding=-1)


# --- (4) autocast leaves complex convolutions alone ------------------------------------------
@pytest.mark.parametrize("nd", [1, 2])
def test_complex_conv_under_autocast_vs_torch(nd):
    rng = np.random.default_rng(0)
    shape_x, shape_w = (1, 2) + (5,) * nd, (3, 2) + (2,) * nd
    x = rng.standard_normal(shape_x) + 1j * rng.standard_normal(shape_x)
    w = rng.standard_normal(shape_w) + 1j * rng.standard_normal(shape_w)
    fn = F.conv1d if nd == 1 else F.conv2d
    pfn = torch.nn.functional.conv1d if nd == 1 else torch.nn.functional.conv2d
    tx = tl.tensor(x, dtype=tl.complex128, requires_grad=True)
    tw = tl.tensor(w, dtype=tl.complex128, requires_grad=True)
    px = torch.tensor(x, requires_grad=True)
    pw = torch.tensor(w, requires_grad=True)
    with tl.autocast("cpu", dtype=tl.float16):
        out = fn(tx, tw)
        real = fn(tl.tensor(x.real, dtype=tl.float32), tl.tensor(w.real, dtype=tl.float32))
    with torch.autocast("cpu", dtype=torch.float16):
        pout = pfn(px, pw)
    assert str(out.dtype) == "complex128" == _torch_name(pout.dtype)
    assert str(real.dtype) == "float16"     # real calls still autocast
    np.testing.assert_allclose(out.numpy(), pout.detach().numpy(), rtol=1e-10, atol=1e-10)
    out.abs().sum().backward()
    pout.abs().sum().backward()
    np.testing.assert_allclose(tx.grad.numpy(), px.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(tw.grad.numpy(), pw.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_autocast_call_leaves_complex_calls_alone():
    from tensorlib.amp.cast import autocast_call
    seen = []

    def fn(a, b):
        seen.append((str(a.dtype), str(b.dtype)))
        return b

    z = tl.tensor([1j], dtype=tl.complex64)
    r = tl.tensor([1.0], dtype=tl.float32)
    with tl.autocast("cpu", dtype=tl.float16):
        out_z = autocast_call(fn, "matmul", z, r)
        out_r = autocast_call(fn, "matmul", r, r)
    assert seen[0] == ("complex64", "float32") and str(out_z.dtype) == "float32"
    assert str(out_r.dtype) == "float16"        # a real call still autocasts


def test_conv_has_no_autocast_toggle():
    import inspect

    from tensorlib.ops import nn_conv
    assert "state.autocast = " not in inspect.getsource(nn_conv)


@pytest.mark.parametrize("a,za,b,zb", [("int64", False, "float32", False),
                                       ("float32", False, "float64", True),
                                       ("uint8", False, "int64", True),
                                       ("float16", False, "int32", False),
                                       ("float32", False, "complex128", True)])
def test_binary_infer_uses_torch_promotion(a, za, b, zb):
    """A registry entry's ``infer`` gives the dtype the op's kernel computes in (PyTorch's),
    as the op itself does."""
    from tensorlib.ops.registry import get
    sa, sb = (() if za else (3,)), (() if zb else (3,))
    _, dt = get("add").infer((sa, np.dtype(a)), (sb, np.dtype(b)))
    ta, tb = (tl.zeros(sa, dtype=getattr(tl, a)), tl.zeros(sb, dtype=getattr(tl, b)))
    want = torch.result_type(torch.zeros(sa, dtype=getattr(torch, a)),
                             torch.zeros(sb, dtype=getattr(torch, b)))
    assert str(dt) == str((ta + tb).dtype) == _torch_name(want)
