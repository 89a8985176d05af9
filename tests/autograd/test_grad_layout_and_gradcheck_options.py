"""Trial 16: .grad layout, gradcheck/gradgradcheck's PyTorch options, anomaly traces."""
import numpy as np
import pytest

import tensorlib as tl
from tensorlib.autograd.gradcheck import GradcheckError

torch = pytest.importorskip("torch")


# --- .grad layout ------------------------------------------------------------------------
def test_first_grad_of_a_transposed_use_is_contiguous_as_torch():
    xv, wv = np.random.randn(3, 2), np.random.randn(4, 2)
    x, W = tl.tensor(xv), tl.tensor(wv, requires_grad=True)
    (x @ W.t()).sum().backward()
    tx, tw = torch.tensor(xv), torch.tensor(wv, requires_grad=True)
    (tx @ tw.t()).sum().backward()
    assert W.grad.is_contiguous() and tw.grad.is_contiguous()
    assert W.grad.stride() == tw.grad.stride()
    np.testing.assert_allclose(W.grad.view(-1).numpy(), tw.grad.view(-1).numpy())
    b = tl.tensor(np.random.randn(4), requires_grad=True)
    (x @ W.t() + b).sum().backward()     # the second one adds into the contiguous buffer
    flat = tl.cat([p.grad.view(-1) for p in (W, b)])
    assert flat.shape == (12,)
    np.testing.assert_allclose(W.grad.numpy(), 2 * tw.grad.numpy())


def test_tl_grad_results_keep_their_layout_and_leaf_grads_stay_unshared():
    x = tl.tensor(np.random.randn(3, 2))
    W = tl.tensor(np.random.randn(4, 2), requires_grad=True)
    (g,) = tl.autograd.grad((x @ W.t()).sum(), [W])
    assert W.grad is None
    np.testing.assert_allclose(g.numpy(), np.ones((3, 4)).T @ x.numpy())
    v = tl.tensor(np.random.randn(2, 4))
    a = tl.tensor(np.random.randn(4, 2), requires_grad=True)
    a.t().backward(v)          # the caller's gradient, transposed: copied, not aliased
    assert a.grad.is_contiguous()
    a.grad.zero_()
    assert np.abs(v.numpy()).sum() > 0


def test_create_graph_contiguous_grad_is_still_differentiable():
    W = tl.tensor(np.random.randn(3, 2), requires_grad=True)
    x = tl.tensor(np.random.randn(5, 2))
    ((x @ W.t()) ** 2).sum().backward(create_graph=True)
    assert W.grad.is_contiguous() and W.grad.requires_grad
    tw = torch.tensor(W.detach().numpy(), requires_grad=True)
    ((torch.tensor(x.numpy()) @ tw.t()) ** 2).sum().backward(create_graph=True)
    (gw,) = tl.autograd.grad(W.grad.sum(), [W])
    (tgw,) = torch.autograd.grad(tw.grad.sum(), [tw])
    np.testing.assert_allclose(gw.numpy(), tgw.numpy(), rtol=1e-10)


# --- gradcheck / gradgradcheck ---------------------------------------------------------------
def _x(*shape):
    return tl.tensor(np.random.default_rng(0).standard_normal(shape), requires_grad=True)


def test_single_tensor_input_is_one_input_as_torch():
    x = _x(3, 2)
    assert tl.autograd.gradcheck(lambda a: (a * a).sum(1), x)
    assert tl.autograd.gradgradcheck(lambda a: (a ** 3).sum(1), x)
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: (a * a).sum(1), tx)


def test_gradcheck_error_is_a_runtime_error_and_raise_exception_false():
    class Wrong(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3
    x = _x(3)
    assert issubclass(GradcheckError, RuntimeError)
    assert tl.autograd.gradcheck.GradcheckError is GradcheckError
    for fast in (False, True):
        with pytest.raises(GradcheckError, match="Jacobian mismatch for output 0"):
            tl.autograd.gradcheck(Wrong.apply, x, fast_mode=fast)
        assert tl.autograd.gradcheck(Wrong.apply, x, fast_mode=fast,
                                     raise_exception=False) is False
        assert tl.autograd.gradcheck(lambda a: a.sin(), x, fast_mode=fast)


def test_non_float_outputs_are_skipped_as_torch():
    x = _x(4)
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    cases = [(lambda a: a.argmax(), lambda a: a.argmax()),
             (lambda a: (a.argmax(), a * 2), lambda a: (a.argmax(), a * 2)),
             (lambda a: a.max(0), lambda a: a.max(0))]
    for f, tf in cases:
        if tf is not cases[1][1]:       # (torch 2.13 fails on an int output before a float one)
            assert torch.autograd.gradcheck(tf, tx)
        assert tl.autograd.gradcheck(f, x)
        assert tl.autograd.gradgradcheck(f, x)


def test_detached_float_output_must_have_zero_numerical_gradient_as_torch():
    x = _x(3)
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    with pytest.raises(RuntimeError, match="expected to be zero"):
        torch.autograd.gradcheck(lambda a: a.detach() * 2, tx)
    with pytest.raises(GradcheckError, match="does not require grad"):
        tl.autograd.gradcheck(lambda a: a.detach() * 2, x)


def test_torch_keyword_options_with_their_defaults_are_accepted():
    x = _x(2, 3)
    f = lambda a: (a.exp() * a).sum(0)    # noqa: E731
    kw = dict(nondet_tol=1e-12, check_undefined_grad=True, check_grad_dtypes=True,
              check_batched_grad=True, check_batched_forward_grad=False,
              check_forward_ad=False, check_backward_ad=True, fast_mode=False, masked=None)
    assert tl.autograd.gradcheck(f, (x,), **kw)
    assert tl.autograd.gradcheck(f, (x,), **{**kw, "fast_mode": True})
    gkw = dict(gen_non_contig_grad_outputs=True, nondet_tol=0.0, check_undefined_grad=True,
               check_grad_dtypes=True, check_batched_grad=True, check_fwd_over_rev=False,
               check_rev_over_rev=True, fast_mode=False, masked=False)
    assert tl.autograd.gradgradcheck(f, (x,), **gkw)
    assert tl.autograd.gradgradcheck(f, (x,), **{**gkw, "fast_mode": True})
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    tf = lambda a: (a.exp() * a).sum(0)    # noqa: E731
    assert torch.autograd.gradcheck(tf, (tx,), **kw)
    assert torch.autograd.gradgradcheck(tf, (tx,), **gkw)


@pytest.mark.parametrize("kw", [{"check_forward_ad": True}, {"check_batched_forward_grad": True}])
def test_forward_ad_options_raise_not_implemented(kw):
    with pytest.raises(NotImplementedError, match="forward-mode AD"):
        tl.autograd.gradcheck(lambda a: a * 2, _x(2), **kw)


def test_gradgradcheck_forward_over_reverse_raises_and_rev_over_rev_off_checks_nothing():
    with pytest.raises(NotImplementedError, match="check_fwd_over_rev"):
        tl.autograd.gradgradcheck(lambda a: a ** 3, _x(2), check_fwd_over_rev=True)
    assert tl.autograd.gradgradcheck(lambda a: a ** 3, _x(2), check_rev_over_rev=False)
    with pytest.raises(ValueError, match="check_backward_ad"):
        tl.autograd.gradcheck(lambda a: a * 2, _x(2), check_backward_ad=False)


def test_nondet_tol_bounds_the_difference_between_two_backward_runs():
    rng = np.random.default_rng(5)

    class Noisy(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2 + tl.tensor(rng.standard_normal(tuple(g.shape)) * 1e-9)
    x = _x(3)
    with pytest.raises(GradcheckError, match="not reentrant"):
        tl.autograd.gradcheck(Noisy.apply, x)
    assert tl.autograd.gradcheck(Noisy.apply, x, nondet_tol=1e-6)
    assert tl.autograd.gradcheck(Noisy.apply, x, nondet_tol=1e-6, fast_mode=True)


def test_check_grad_dtypes_passes_where_the_engine_casts_as_torch():
    # both engines cast a Function's float32 gradient to the float64 input's dtype
    class TF32(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return (g * 2).float()
    tx = torch.tensor([0.5, 1.5, -2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(TF32.apply, tx, atol=1e-4, check_grad_dtypes=True)

    class F32(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return (g * 2).float()
    x = _x(3)
    assert tl.autograd.gradcheck(F32.apply, x, atol=1e-4, check_grad_dtypes=True)


def test_gradgradcheck_uses_given_grad_outputs_and_checks_them_when_they_require_grad():
    class Cube(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g.detach() * 3 * x ** 2     # not differentiable in the cotangent
    x = _x(3)
    v = tl.tensor([1.0, -2.0, 0.5], dtype="float64")
    assert tl.autograd.gradgradcheck(Cube.apply, x, v)          # v a constant: passes
    with pytest.raises(GradcheckError, match="input 1"):
        tl.autograd.gradgradcheck(Cube.apply, x, v.clone().requires_grad_())
    with pytest.raises(GradcheckError):
        tl.autograd.gradgradcheck(Cube.apply, x)                # random v require grad
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a: a ** 3, tx, torch.tensor(v.numpy()))
    with pytest.raises(ValueError, match="grad_outputs"):
        tl.autograd.gradgradcheck(lambda a: a ** 3, x, [v, v])


def test_gradcheck_perturbs_a_strided_input():
    base = tl.tensor(np.random.randn(3, 4))
    xt = base.t().detach().requires_grad_()        # a non-contiguous leaf
    assert not xt.is_contiguous()
    assert tl.autograd.gradcheck(lambda a: (a ** 2).sum(0), xt)


# --- anomaly mode ----------------------------------------------------------------------------
def _trace_of(e) -> str:
    return str(e) + "\n".join(getattr(e, "__notes__", []))


def test_anomaly_version_error_carries_the_forward_trace():
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    with tl.autograd.detect_anomaly():
        b = a.exp()                                  # FORWARD-EXP
        b.add_(1)
        with pytest.raises(RuntimeError, match="modified by an in-place") as ei:
            b.sum().backward()
    text = _trace_of(ei.value)
    assert "Traceback of forward call that caused the error" in text
    assert "FORWARD-EXP" in text and "test_grad_layout_and_gradcheck_options.py" in text
    ta = torch.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match="Traceback of forward call"):
        with torch.autograd.detect_anomaly():
            tb = ta.exp()
            tb.add_(1)
            with pytest.raises(RuntimeError, match="modified by an inplace"):
                tb.sum().backward()
    b = a.exp()
    b.add_(1)
    with pytest.raises(RuntimeError) as ei:             # outside anomaly mode: no trace
        b.sum().backward()
    assert "Traceback of forward call" not in _trace_of(ei.value)


class _Boom(tl.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        raise ValueError("boom in backward")


class _NanBack(tl.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * float("nan")


def test_anomaly_custom_function_backward_exception_carries_the_forward_trace():
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    with tl.autograd.detect_anomaly():
        y = _Boom.apply(a)                          # FORWARD-BOOM
        with pytest.raises(ValueError, match="boom in backward") as ei:
            y.sum().backward()
    notes = "\n".join(ei.value.__notes__)
    assert "Error detected in BoomBackward" in notes and "FORWARD-BOOM" in notes
    y = _Boom.apply(a)
    with pytest.raises(ValueError) as ei:
        y.sum().backward()
    assert not getattr(ei.value, "__notes__", None)


def test_anomaly_custom_function_nan_carries_the_forward_trace():
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    with tl.autograd.detect_anomaly():
        y = _NanBack.apply(a)                       # FORWARD-NAN
        with pytest.raises(tl.autograd.AnomalyError, match="returned nan") as ei:
            y.sum().backward()
    text = _trace_of(ei.value)
    assert "FORWARD-NAN" in text and "no forward trace recorded" not in text
    ta = torch.tensor([1.0, 2.0], requires_grad=True)

    class TNan(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")
    with pytest.warns(UserWarning, match="Traceback of forward call"):
        with torch.autograd.detect_anomaly():
            with pytest.raises(RuntimeError, match="returned nan"):
                TNan.apply(ta).sum().backward()


def test_anomaly_saved_tensor_modified_in_custom_function_carries_the_trace():
    class Sq(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    with tl.autograd.detect_anomaly():
        b = a * 1
        y = Sq.apply(b)                             # FORWARD-SQ
        b.add_(1)
        with pytest.raises(RuntimeError, match="modified in place") as ei:
            y.sum().backward()
    assert "FORWARD-SQ" in _trace_of(ei.value)
