"""Hook results are checked as PyTorch 2.13 checks them: each case runs in tensorlib and in
torch; both raise (same exception type) or both give the same values and gradients."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

RAISED = "raised"


def outcome(lib, case, *args):
    """What ``case(lib, ...)`` gave: its arrays, or (RAISED, exception)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = case(lib, *args)
    except (RuntimeError, TypeError) as e:
        return RAISED, e
    return [None if r is None else np.asarray(r.detach().numpy()) for r in res]


def same(case, *args, match=None):
    """Run ``case`` in both libraries; returns tensorlib's exception when both raise."""
    got, want = outcome(tl, case, *args), outcome(torch, case, *args)
    if want[0] is RAISED:
        assert got[0] is RAISED, f"torch raised {want[1]!r}, tensorlib did not"
        assert type(got[1]) is type(want[1]), (got[1], want[1])
        if match is not None:
            assert match in str(got[1]), str(got[1])
        return got[1]
    assert got[0] is not RAISED, f"tensorlib raised {got[1]!r}, torch did not"
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype,
                                                              b.dtype)
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    return None


X = np.linspace(-1.0, 1.5, 12).reshape(3, 4)
Z = np.cos(X)


def leaves(lib, dtype=None):
    dt = lib.float32 if dtype == "f32" else lib.float64
    return (lib.tensor(X, dtype=dt, requires_grad=True),
            lib.tensor(Z, dtype=dt, requires_grad=True))


# --- what a hook returns ---------------------------------------------------------------
def r_sum0(lib, g):
    return g.sum(0, keepdim=True)


def r_slice(lib, g):
    return g[:1]


def r_scalar(lib, g):
    return g.sum()


def r_transposed(lib, g):
    return g.t().contiguous()


def r_f32(lib, g):
    return g.to(lib.float32)


def r_f64(lib, g):
    return g.to(lib.float64)


def r_int(lib, g):
    return g.to(lib.int64)


def r_complex(lib, g):
    return g.to(lib.complex128)


def r_float(lib, g):
    return 2.0


def r_ndarray(lib, g):
    return g.detach().numpy() * 2


def r_list(lib, g):
    return [g]


def r_double(lib, g):
    return g * 2


def r_strided(lib, g):
    return (g.t() * 3).t()     # same shape, not contiguous


def r_none(lib, g):
    return None


BAD_SIZE = [r_sum0, r_slice, r_scalar, r_transposed]
BAD_TYPE = [r_f32, r_int, r_complex]
NOT_TENSOR = [r_float, r_ndarray, r_list]
GOOD = [r_double, r_strided, r_none]


def hooked(where, ret, dtype=None):
    """A case: a hook returning ``ret(lib, grad)`` on a tensor of the graph."""
    def case(lib):
        x, z = leaves(lib, dtype)

        def hook(g):
            return ret(lib, g)
        y = x * z
        if where == "leaf":
            x.register_hook(hook)
        elif where == "retain":
            y.retain_grad()
            y.register_hook(hook)
        else:
            y.register_hook(hook)
        loss = (y.sin() * 1.5).sum()
        if where == "grad":
            return list(lib.autograd.grad(loss, [x, z]))
        if where == "grad_leaf":
            x.register_hook(hook)
            return list(lib.autograd.grad(loss, [x, z]))
        loss.backward()
        return [x.grad, z.grad] + ([y.grad] if where == "retain" else [])
    return case


WHERE = ["nonleaf", "leaf", "retain", "grad", "grad_leaf"]


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("ret", BAD_SIZE, ids=lambda f: f.__name__)
def test_hook_changing_the_size_raises_naming_hook_and_shapes(where, ret):
    e = same(hooked(where, ret), match="hook 'hook' has changed the size of value")
    assert "(3, 4)" in str(e)


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("ret", BAD_TYPE, ids=lambda f: f.__name__)
def test_hook_changing_the_dtype_raises(where, ret):
    same(hooked(where, ret), match="hook 'hook' has changed the type of value")


@pytest.mark.parametrize("where", ["nonleaf", "leaf"])
def test_float64_returned_to_a_float32_tensor_raises(where):
    e = same(hooked(where, r_f64, dtype="f32"), match="has changed the type of value")
    assert "float32" in str(e) and "float64" in str(e)


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("ret", NOT_TENSOR, ids=lambda f: f.__name__)
def test_hook_returning_a_non_tensor_raises_type_error(where, ret):
    same(hooked(where, ret), match="hook 'hook' returned")


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("ret", GOOD, ids=lambda f: f.__name__)
def test_hook_returning_a_good_gradient_matches_torch(where, ret):
    assert same(hooked(where, ret)) is None


def _bad(g):
    return g[:1]


class _Callable:
    def __call__(self, g):
        return g[:1]


@pytest.mark.parametrize("hook, name", [(_bad, "_bad"), (_Callable(), "_Callable")])
def test_error_names_the_hook_function(hook, name):
    # the case from the report: the error came from a reshape inside backward
    x = tl.ones(3, 4, requires_grad=True)
    y = x * 2
    y.register_hook(hook)
    with pytest.raises(RuntimeError, match=f"hook '{name}' has changed the size of value"
                       r".*\(1, 4\).*\(3, 4\)"):
        (y * 1.0).sum().backward()


def test_hook_result_is_checked_before_the_next_hook_sees_it():
    seen = []
    x = tl.ones(3, 4, requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g.sum(0, keepdim=True))
    y.register_hook(lambda g: seen.append(g.shape))
    with pytest.raises(RuntimeError, match="changed the size"):
        y.sum().backward()
    assert seen == []


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
       scale=st.floats(-3, 3, allow_nan=False), leaf=st.booleans())
def test_hooks_scaling_the_gradient_match_torch(shape, scale, leaf):
    data = np.arange(np.prod(shape, dtype=int), dtype=np.float64).reshape(shape) / 7 - 0.3

    def case(lib):
        x = lib.tensor(data, requires_grad=True)
        y = x.exp() * x
        (x if leaf else y).register_hook(lambda g: g * scale)
        (y.cos() * 2).sum().backward()
        return [x.grad]
    assert same(case) is None


# --- post-accumulate-grad hooks -------------------------------------------------------
@pytest.mark.parametrize("ret", ["none_in_place", "grad", "slice", "int"])
def test_post_accumulate_grad_hook_must_return_none(ret):
    def case(lib):
        x, z = leaves(lib)

        def hook(t):
            if ret == "none_in_place":
                t.grad.mul_(3)
                return None
            return {"grad": t.grad, "slice": t.grad[:1], "int": 1}[ret]
        x.register_post_accumulate_grad_hook(hook)
        (x * z).sum().backward()
        return [x.grad, z.grad]
    same(case, match=None if ret == "none_in_place" else "should return None")


# --- module hooks ------------------------------------------------------------------------
def two(lib):
    class Two(lib.nn.Module):
        def forward(self, a, b):
            return a * b.tanh()
    return Two()


def module_case(kind, ret):
    """A module of two inputs with one hook of ``kind`` that returns ``ret(lib, grads)``."""
    def case(lib):
        x, z = leaves(lib)
        m = two(lib)

        def hook(mod, *grads):
            return ret(lib, grads[0])
        {"full": m.register_full_backward_hook, "pre": m.register_full_backward_pre_hook,
         "old": m.register_backward_hook}[kind](hook)
        (m(x * 1.0, z).sin()).sum().backward()
        return [x.grad, z.grad]
    return case


def m_slice1(lib, gs):
    return (gs[0], gs[1][:1]) if len(gs) == 2 else (gs[0][:1],)


def m_f32(lib, gs):
    return tuple(g.to(lib.float32) for g in gs)


def m_float(lib, gs):
    return tuple(2.0 for g in gs)


def m_fewer(lib, gs):
    return tuple(gs[:-1])


def m_more(lib, gs):
    return (*gs, gs[0])


def m_double(lib, gs):
    return tuple(g * 2 for g in gs)


def m_list(lib, gs):
    return [g * -1 for g in gs]


def m_none(lib, gs):
    return None


@pytest.mark.parametrize("kind", ["full", "pre", "old"])
@pytest.mark.parametrize("ret", [m_slice1, m_f32, m_float, m_fewer, m_more, m_double, m_list,
                                 m_none], ids=lambda f: f.__name__)
def test_module_backward_hooks_match_torch(kind, ret):
    same(module_case(kind, ret))


def test_full_backward_hook_error_names_module_hook_and_index():
    e = same(module_case("full", m_slice1), match="hook 'hook'")
    text = str(e)
    assert "has changed the size of value" in text and "Two" in text
    assert "grad_input[1]" in text and "(1, 4)" in text and "(3, 4)" in text
    assert "_HookIdentity" not in text and "broadcast" not in text


def test_full_backward_hook_wrong_count_message_as_torch():
    e = same(module_case("full", m_more), match="Backward hook returned an invalid number "
             "of grad_input, got 3, but expected 2")
    assert "Two" in str(e)
    same(module_case("pre", m_more), match="Backward pre hook returned an invalid number of "
         "grad_output, got 2, but expected 1")
    same(module_case("old", m_fewer), match="has returned an incorrect number of values "
         "(got 1, but expected 2)")


def test_module_forward_hooks_replace_the_output_unchecked_as_torch():
    def case(lib):
        x, z = leaves(lib)
        m = two(lib)
        m.register_forward_hook(lambda mod, args, out: out.sum(0))    # any shape: no check
        m.register_forward_pre_hook(lambda mod, args: (args[0] * 2, args[1]))
        m(x, z).sum().backward()
        return [x.grad, z.grad]
    assert same(case) is None


def test_custom_function_shape_error_does_not_suggest_a_refused_broadcast():
    class Bad(tl.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 1

        @staticmethod
        def backward(ctx, g):
            return g[:1]
    x = tl.ones(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(1, 4\).*shape \(3, 4\)") as info:
        Bad.apply(x).sum().backward()
    assert "broadcasts to it" not in str(info.value)
