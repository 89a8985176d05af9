"""Autograd semantics: accumulation, retain_graph, hooks, modes, versions, anomaly, depth."""
from __future__ import annotations

import gc
import threading
import tracemalloc

import numpy as np
import pytest

import tensorlib as tl


def test_accumulation_into_leaves():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])
    assert x.grad.grad_fn is None


def test_shared_subexpression_gradient_sums():
    x = tl.tensor(2.0, requires_grad=True)
    y = x * x
    z = y + y * x  # x^2 + x^3
    z.backward()
    assert x.grad.item() == pytest.approx(2 * 2 + 3 * 4)


def test_backward_needs_scalar_or_gradient():
    x = tl.ones(3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar outputs"):
        y.backward()
    y.backward(tl.tensor([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2, 0, 4])
    with pytest.raises(ValueError, match="gradient has shape"):
        (x * 2).backward(tl.ones(2))


def test_retain_graph_and_freed_buffers():
    x = tl.ones(2, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * 2 * np.e)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_no_grad_enable_grad_set_grad_enabled():
    x = tl.ones(2, requires_grad=True)
    with tl.no_grad():
        assert not (x * 2).requires_grad
        with tl.enable_grad():
            assert (x * 2).requires_grad
    assert (x * 2).requires_grad

    @tl.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad
    with tl.set_grad_enabled(False):
        assert not (x + 1).requires_grad
    assert tl.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = {}

    def worker():
        seen["other"] = tl.is_grad_enabled()
    with tl.no_grad():
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert not tl.is_grad_enabled()
    assert seen["other"] is True


def test_higher_order_gradients():
    x = tl.tensor([0.5, 1.5], dtype=tl.float64, requires_grad=True)
    y = (x ** 4).sum()
    (g1,) = tl.grad(y, [x], create_graph=True)
    (g2,) = tl.grad(g1.sum(), [x], create_graph=True)
    (g3,) = tl.grad(g2.sum(), [x])
    np.testing.assert_allclose(g1.numpy(), 4 * x.numpy() ** 3)
    np.testing.assert_allclose(g2.numpy(), 12 * x.numpy() ** 2)
    np.testing.assert_allclose(g3.numpy(), 24 * x.numpy())


def test_grad_allow_unused_and_nonleaf_inputs():
    x = tl.ones(2, requires_grad=True)
    z = tl.ones(2, requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    with pytest.raises(RuntimeError, match="not used"):
        tl.grad(y, [x, z], retain_graph=True)
    gx, gz = tl.grad(y, [x, z], retain_graph=True, allow_unused=True)
    assert gz is None
    np.testing.assert_allclose(gx.numpy(), [18, 18])
    (gh,) = tl.grad(y, [h])
    np.testing.assert_allclose(gh.numpy(), [6, 6])
    assert x.grad is None  # tl.grad does not accumulate


def test_hooks_on_leaf_and_nonleaf():
    x = tl.ones(3, requires_grad=True)
    seen = []
    h = x * 2
    handle = h.register_hook(lambda g: g * 10)
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [20, 20, 20])
    assert len(seen) == 1
    handle.remove()
    x.grad = None
    h2 = x * 2
    h2.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 2, 2])


def test_retain_grad():
    x = tl.ones(2, requires_grad=True)
    h = x * 2
    h.retain_grad()
    (h * h).sum().backward(retain_graph=True)
    np.testing.assert_allclose(h.grad.numpy(), [4, 4])
    # a retained gradient adds up over backward calls, as a leaf's does
    h.sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [5, 5])
    np.testing.assert_allclose(x.grad.numpy(), [10, 10])
    # and with create_graph too
    x2 = tl.tensor([1.0, 2.0], requires_grad=True)
    h2 = x2 * x2
    h2.retain_grad()
    h2.sum().backward(create_graph=True)
    (h2 * 3).sum().backward(create_graph=True)
    np.testing.assert_allclose(h2.grad.numpy(), [4, 4])


def test_detach_and_requires_grad_():
    x = tl.ones(2, requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    d.requires_grad_()
    (d * 3).sum().backward()
    assert x.grad is None and d.grad is not None


def test_version_check_catches_inplace_change_of_saved_tensor():
    x = tl.ones(3, requires_grad=True)
    y = x.exp()           # saves its output
    z = y.sum()
    y += 1                # changes the saved output
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.backward()
    a = tl.ones(3, requires_grad=True)
    b = a * 1.0
    c = b * b             # saves b
    b.mul_(2)
    with pytest.raises(RuntimeError, match="in-place"):
        c.sum().backward()


def test_version_check_follows_what_the_backward_reads():
    # where reads its condition only (saves=(0,)): a branch changed in place later is fine,
    # as in PyTorch; a changed condition still raises
    torch = pytest.importorskip("torch")
    grads = []
    for lib in (torch, tl):
        w = lib.ones(3, requires_grad=True)
        a = w * 2
        y = lib.where(lib.tensor([True, False, True]), a, 0.0)
        a.add_(1)
        (y * w).sum().backward()
        grads.append(w.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])
    w = tl.ones(3, requires_grad=True)
    c = tl.tensor([True, False, True])
    y = tl.where(c, w * 2, 0.0)
    c[0] = False
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def test_linear_checks_only_the_inputs_its_backward_reads():
    # x needs no grad: the weight is never read (a step between two backwards is fine, as in
    # PyTorch); with x needing grad the updated weight would give a wrong x.grad: raises
    lin = tl.nn.Linear(2, 2)
    opt = tl.optim.SGD(lin.parameters(), lr=0.1)
    h = lin(tl.ones(1, 2))
    h.sum().backward(retain_graph=True)
    opt.step()
    (h * h).sum().backward()
    x = tl.ones(1, 2, requires_grad=True)
    h = lin(x)
    h.sum().backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        h.sum().backward()
    b = lin.bias                             # the bias is never read
    h = lin(x)
    with tl.no_grad():
        b.add_(1.0)
    h.sum().backward()


def _stale_view_program(lib, case):
    w = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = w * 1
    if case == "base-then-view":        # the view's history is stale when it is changed
        v = y.reshape(4)
        y.mul_(2)
        v.sub_(0.5)
    elif case == "int-index":           # x[0] is a 0-d view, as in PyTorch
        v = y[0, 1]
        y.mul_(2)
        v.sub_(0.5)
    elif case == "two-views":
        a, b = y[0], y[:, 0]
        a.mul_(3)
        b.add_(1)
    elif case == "setitem-on-stale":
        v = y.unsqueeze(0)
        y.mul_(w)
        v[0, 1, 0] = 5.0
    else:                               # a view of a view, the base changed in between
        v = y.t()[0]
        y.add_(1)
        v.mul_(w[0])
    (y * y * w).sum().backward()
    return y.detach().numpy(), w.grad.numpy()


@pytest.mark.parametrize("case", ["base-then-view", "int-index", "two-views",
                                  "setitem-on-stale", "view-of-view"])
def test_inplace_on_a_view_after_its_base_changed_matches_torch(case):
    # the view's own history predated the base's in-place op: its write-back lost that op
    # (x = w * 1; v = x.reshape(2); x.mul_(2); v.sub_(.5) gave half of x's gradient)
    torch = pytest.importorskip("torch")
    want, got = _stale_view_program(torch, case), _stale_view_program(tl, case)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)


def test_custom_function_and_grad_of_grad():
    class Cube(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return x * x * x * scale

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x * ctx.scale, None

    x = tl.tensor([1.0, 2.0], dtype=tl.float64, requires_grad=True)
    y = Cube.apply(x, 2.0)
    assert y.grad_fn.name == "Cube"
    (g,) = tl.grad(y.sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.numpy(), 6 * x.numpy() ** 2)
    (gg,) = tl.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.numpy(), 12 * x.numpy())
    assert tl.gradcheck(lambda t: Cube.apply(t, 2.0), [x])


def test_anomaly_mode_names_the_forward_op():
    x = tl.tensor([0.0, 1.0], requires_grad=True)
    with tl.detect_anomaly():
        y = x.sqrt() * 0      # d sqrt / dx at 0 is inf, times 0: NaN (inf alone passes)
        with pytest.raises(tl.autograd.AnomalyError,
                           match=r"(?s)<Sqrt>.*test_autograd_semantics.py"):
            y.sum().backward()


def test_deep_chain_has_no_recursion_error():
    x = tl.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000, rel=1e-3)


def test_saved_tensors_freed_after_backward():
    x = tl.ones(1000, requires_grad=True)
    y = x.exp()
    node = y.grad_fn
    y.sum().backward()
    assert node.inputs is None and node.out_data is None


def test_training_loop_memory_is_flat():
    w = tl.randn(32, 16, requires_grad=True)
    x = tl.randn(8, 32)

    def step():
        loss = (x @ w).tanh().square().mean()
        loss.backward()
        with tl.no_grad():
            w.sub_(0.01 * w.grad)
        w.grad = None

    for _ in range(200):
        step()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    for _ in range(10_000):
        step()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(base, "filename"))
    assert grown < 200_000, f"memory grew by {grown} bytes over 10,000 steps"


def test_no_reference_cycles_in_graph():
    # the tape must free itself by reference counting alone (no cycles for the GC)
    gc.collect()
    gc.disable()
    try:
        for _ in range(100):
            x = tl.ones(4, requires_grad=True)
            y = (x.exp() * x).sigmoid().sum()
            y.backward()
            z = (x * 2).split(2)[0].sum()   # multi-output node, graph dropped unused
        del x, y, z
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_engine_rejects_gradients_of_the_wrong_shape():
    class Bad(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.reshape(-1)[:1]

    x = tl.ones(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Bad.backward returned a gradient of shape \(1,\) "
                                           r"for argument 0 of shape \(2, 2\)"):
        Bad.apply(x).sum().backward()
    # an op's vjp of the wrong shape: the engine's own check
    op = tl.OpDef("bad_double", lambda xp, a: a * 2, vjp=lambda n, g: (g.reshape(-1)[:1],))
    with pytest.raises(RuntimeError, match=r"gradient of shape \(1,\) for an input of shape"):
        tl.apply(op, x).sum().backward()


def test_zero_dim_gradients_keep_their_shape():
    for f in (tl.relu, tl.tanh, tl.sigmoid, tl.erf, tl.gelu):
        x = tl.tensor(0.7, requires_grad=True)
        f(x).backward()
        assert x.grad.shape == ()


# --- in-place ops on tensors with a history (checked against PyTorch's results) -------------
def _leaf(*vals):
    return tl.tensor(np.array(vals, np.float64), requires_grad=True)


def test_in_place_op_keeps_earlier_uses_on_the_old_history():
    x = _leaf(1.0, 2.0)
    y = x * 1
    z = y * 3
    y.mul_(2)
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])

    x = _leaf(1.0, 2.0)
    y = x * 1
    z = y + 0
    y *= 5
    (z + y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_setitem_reading_the_tensor_it_writes():
    x = _leaf(1.0, 2.0)
    y = x * 1
    y[0] = y[0] * 2
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 1.0])

    w = tl.tensor(2.0, requires_grad=True)
    y = tl.zeros(3)
    y[0] = w
    y[1] = y[0] * 3
    y[2] = y[1] + w
    y.sum().backward()
    assert float(w.grad) == 8.0


@pytest.mark.parametrize("op", ["relu_", "clamp_", "pow_", "imul", "idiv", "ipow", "exp_",
                                "masked_fill_"])
def test_in_place_ops_whose_backward_reads_the_input(op):
    """The backward of relu_, pow_, y *= w... reads the values the op overwrote."""
    torch = pytest.importorskip("torch")
    xs, ws = np.array([0.5, -1.2, 2.0]), np.array([1.5, 2.0, -3.0])

    def run(make):
        x, w = make(xs.copy(), requires_grad=True), make(ws.copy(), requires_grad=True)
        h = x * 2
        if op == "relu_":
            h.relu_()
        elif op == "clamp_":
            h.clamp_(-1, 1.5)
        elif op == "pow_":
            h.pow_(2)
        elif op == "imul":
            h *= w
        elif op == "idiv":
            h /= w
        elif op == "ipow":
            h **= 3
        elif op == "exp_":
            h.exp_()
        else:
            h.masked_fill_(make(np.array([True, False, False])), 0.0)
        (h * h).sum().backward()
        return [np.asarray(t.grad.tolist()) if t.grad is not None else None for t in (x, w)]

    got, want = run(tl.tensor), run(torch.tensor)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    assert (got[1] is None) == (want[1] is None)
    if want[1] is not None:
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12)


def test_in_place_on_a_whole_base_view_carries_into_the_base():
    x = _leaf(1.0, 2.0, 3.0)
    y = (x * 2).reshape(1, 3)
    y.reshape(-1).mul_(3)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [72.0, 144.0, 216.0])
    lin = tl.nn.Linear(3, 3)
    h = lin(tl.ones(3))      # one sample: a view of the (1, 3) product
    h.relu_()
    h.sum().backward()
    assert lin.weight.grad is not None


@pytest.mark.parametrize("write", ["slice_mul", "transposed_setitem", "chained_setitem",
                                   "augmented_setitem", "reshaped_slice"])
def test_in_place_on_a_view_carries_into_the_base(write):
    """PyTorch's semantics: the base's history becomes "the view's new value written into
    the old base" (CopySlices), up the chain of views."""
    torch = pytest.importorskip("torch")

    def run(make):
        x = make(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
        y = x * 1
        if write == "slice_mul":
            y[:1].mul_(3)
        elif write == "transposed_setitem":
            y.T[0] = 0.0
        elif write == "chained_setitem":
            y[1][0] = 7.0
        elif write == "augmented_setitem":
            y[:, 0] *= 2
        else:
            y.reshape(-1)[1:3].mul_(10)
        (y * y).sum().backward()
        return y.tolist(), x.grad.tolist()

    assert run(tl.tensor) == run(torch.tensor)


def test_in_place_on_a_view_of_a_leaf_or_a_split_is_refused():
    x = tl.tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x[:1] += 5
    v = x[:1]
    with pytest.raises(RuntimeError, match="view made by split"):
        a, _ = (x * 1).split(2, axis=1)
        a.mul_(2)
    with tl.no_grad():     # no history to keep: views may be written
        v.mul_(3)
    assert x.tolist() == [[3.0, 3.0], [1.0, 1.0]]


def test_assigned_grad_is_checked():
    p = tl.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="shape"):
        p.grad = tl.ones(5)
    with pytest.raises(TypeError, match="Tensor or None"):
        p.grad = np.ones(2, np.float32)
    with pytest.raises(TypeError, match="dtype"):
        p.grad = tl.ones(2, dtype=tl.float64)
    p.grad = tl.zeros(2)
    (p * 2).sum().backward()
    assert p.grad.tolist() == [2.0, 2.0]
    p.grad = None
    assert p.grad is None


def test_gradients_at_degenerate_points_match_pytorch():
    """std of a constant: 0 (not 0/0); max over a NaN: the NaN's position gets it."""
    c = tl.tensor([2.0, 2.0, 2.0], requires_grad=True)
    c.std().backward()
    assert c.grad.tolist() == [0.0, 0.0, 0.0]
    m = tl.tensor([1.0, float("nan"), 3.0], requires_grad=True)
    m.max().backward()
    assert m.grad.tolist() == [0.0, 1.0, 0.0]
    m = tl.tensor([[1.0, float("nan")], [4.0, 2.0]], requires_grad=True)
    m.min(axis=1).sum().backward()
    assert m.grad.tolist() == [[0.0, 1.0], [0.0, 1.0]]


def test_autograd_backward_takes_a_sequence():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    tl.autograd.backward([(x * 2).sum(), (x * x).sum()])
    assert x.grad.tolist() == [4.0, 6.0]
    x.grad = None
    tl.autograd.backward([x * 2], [tl.ones(2)])
    assert x.grad.tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="2 tensors but 1 gradients"):
        tl.autograd.backward([x.sum(), x.sum()], [tl.ones(())])


def test_in_place_on_a_reshape_that_copied_leaves_the_base_alone():
    """NumPy copies a reshape of a transposed array: that result is no view, and writing
    into it must not rewrite the base's history."""
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 4))

    def run(make, perm):
        xx = make(x, requires_grad=True)
        h = xx * 1
        f = perm(h).reshape(2, -1)
        f.relu_()
        (f.sum() + (h * h).sum()).backward()
        return h.tolist(), xx.grad.tolist()
    assert run(tl.tensor, lambda h: h.transpose(0, 2, 1)) == \
        run(torch.tensor, lambda h: h.permute(0, 2, 1))


@pytest.mark.parametrize("case", ["base_scaled", "base_relu", "sibling", "setitem_region"])
def test_views_taken_before_the_base_changed_follow_it(case):
    """A view shares its base's storage: after an in-place op on the base (or on a sibling
    view), its history is rebuilt from the base's current one, as PyTorch regenerates a
    view's grad_fn."""
    torch = pytest.importorskip("torch")

    def run(make):
        x = make([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 1
        if case == "base_scaled":
            v = y[:2]
            y.mul_(2)
            v.sum().backward()
        elif case == "base_relu":
            h = x * 1 - 2
            first = h[:2]
            h.relu_()
            first.sum().backward()
        elif case == "sibling":
            a, b = y[0:1], y[0:1]
            a.mul_(3)
            (b * b).sum().backward()
        else:
            y2 = x.reshape(1, 3) * 1
            b = y2[:, 1]
            y2[:, 1] = 5.0
            (b + y2.sum()).sum().backward()
        return x.grad.tolist()
    assert run(tl.tensor) == run(torch.tensor)


def test_custom_function_with_an_unused_output():
    class Two(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y, x + y

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 3 + gb, None
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    a, _ = Two.apply(x, tl.tensor([3.0, 4.0]))
    a.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
    x.grad = None
    out = tl.autograd.checkpoint(lambda t: (t.tanh(), t * 3), x)
    out[0].sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 - np.tanh([1.0, 2.0]) ** 2, rtol=1e-6)


def test_checkpoint_of_a_non_leaf_input_with_create_graph():
    """A gradient penalty through a checkpointed block whose input comes from another
    layer: the recomputed graph holds aliases of that input, which must count as it."""
    tl.manual_seed(0)
    lin, block = tl.nn.Linear(3, 4), tl.nn.Sequential(tl.nn.Linear(4, 4), tl.nn.Tanh())
    x = tl.randn(2, 3, requires_grad=True)
    (g,) = tl.grad(tl.autograd.checkpoint(block, lin(x)).sum(), [x], create_graph=True)
    (want,) = tl.grad(block(lin(x)).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), want.detach().numpy(), rtol=1e-6)
    (g * g).sum().backward()
    assert lin.weight.grad is not None


def test_gradgradcheck_catches_a_wrong_second_derivative():
    # it ran the first derivative under no_grad for the finite differences, got no outputs
    # and compared nothing: any function passed
    class Cube(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x.detach() ** 2       # second derivative 0 instead of 6x
    x = tl.tensor([0.5, 1.5, -2.0], dtype="float64", requires_grad=True)
    assert tl.autograd.gradcheck(Cube.apply, [x])
    assert not tl.autograd.gradgradcheck(Cube.apply, [x], raise_exception=False)
    with pytest.raises(AssertionError, match="Jacobians differ"):
        tl.autograd.gradgradcheck(Cube.apply, [x])
    assert tl.autograd.gradgradcheck(lambda t: t ** 3, [x])


def test_gradcheck_refuses_to_check_nothing_and_takes_non_tensor_arguments():
    with pytest.raises(ValueError, match="no input requires grad"):
        tl.autograd.gradcheck(lambda a: a.sin(), [tl.tensor([1.0], dtype="float64")])
    x = tl.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    assert tl.autograd.gradcheck(lambda a, s: (a * s).sin().sum(), [x, 2.5])
    assert tl.autograd.gradgradcheck(lambda a, s: (a * s).sin().sum(), [x, 2.5])
    # as PyTorch: outputs that are not floating point are skipped, not an error
    assert tl.autograd.gradcheck(lambda a: a.argmax(), [x])


def test_leaf_grads_never_share_memory_and_take_in_place_updates():
    # add's vjp hands one gradient to both inputs; the caller's gradient= passed through;
    # a sum's gradient is a read-only broadcast: clip_grad_norm_ scaled a shared buffer
    # twice, x.grad.zero_() zeroed the caller's tensor, x.grad.mul_() raised
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    b = tl.tensor([3.0, 4.0], requires_grad=True)
    ((a + b) * tl.tensor([0.3, 0.4])).sum().backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    tl.nn.utils.clip_grad_norm_([a, b], 0.5)       # total norm 0.5 ** 0.5: scaled by 0.707
    np.testing.assert_allclose(a.grad.numpy(), [0.2121, 0.2828], atol=1e-4)
    np.testing.assert_allclose(b.grad.numpy(), [0.2121, 0.2828], atol=1e-4)
    x, v = tl.tensor([1.0, 2.0], requires_grad=True), tl.tensor([1.0, 1.0])
    (x + 1).backward(v)
    x.grad.zero_()
    assert v.tolist() == [1.0, 1.0]
    r = tl.ones(4, requires_grad=True)
    m = tl.ones(2, 2, requires_grad=True)
    (r.reshape(2, 2) + m).sum().backward()
    assert not np.shares_memory(r.grad.numpy(), m.grad.numpy())
    m.grad.mul_(2.0)
    assert r.grad.tolist() == [1.0] * 4 and m.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_a_second_backward_adds_into_the_same_grad_tensor():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    g = x.grad
    (x * x).sum().backward()
    assert x.grad is g and g.tolist() == [5.0, 7.0]     # as PyTorch's AccumulateGrad


def test_captured_step_clips_unshared_grads_as_eager():
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    b = tl.tensor([3.0, 4.0], requires_grad=True)

    def step(c):
        a.grad = b.grad = None
        ((a + b) * c).sum().backward()
        tl.nn.utils.clip_grad_norm_([a, b], 0.1)
        return a.grad + 0, b.grad + 0
    f = tl.function(step)
    c = tl.tensor([0.5, 0.5])
    for _ in range(2):
        for got in f(c):
            np.testing.assert_allclose(got.numpy(), [0.05, 0.05], rtol=1e-5)


def _exp_function(lib):
    class Exp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y
    return Exp


def test_double_backward_through_a_saved_output_of_a_custom_function():
    # the saved output was the forward's own tensor, without the returned one's history:
    # the term through it was missing from second derivatives (hessian of sum exp was 0)
    torch = pytest.importorskip("torch")
    for lib in (tl, torch):
        x = lib.tensor([0.5, 1.0], dtype=lib.float64, requires_grad=True)
        y = _exp_function(lib).apply(x)
        (g,) = lib.autograd.grad((x * y).sum(), [x], create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), [x])
        if lib is tl:
            got = gg.numpy()
        else:
            want = gg.detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    h = tl.autograd.functional.hessian(lambda t: _exp_function(tl).apply(t).sum(),
                                       tl.tensor([0.5, 1.0], dtype="float64"))
    np.testing.assert_allclose(h.numpy(), np.diag(np.exp([0.5, 1.0])), rtol=1e-12)
    assert tl.autograd.gradgradcheck(_exp_function(tl).apply,
                                     [tl.tensor([0.3, -0.2], dtype="float64",
                                                requires_grad=True)])


def test_custom_function_backward_gradient_count():
    class TooMany(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g, g, g
    x = tl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="returned 3 gradients, expected 2"):
        TooMany.apply(x, 2.0).sum().backward()

    class ForScalar(TooMany):
        @staticmethod
        def backward(ctx, g):
            return g * 2, g
    with pytest.raises(RuntimeError, match="gradient for argument 1, which is not a tensor"):
        ForScalar.apply(x, 2.0).sum().backward()

    class Trailing(TooMany):
        @staticmethod
        def backward(ctx, g):
            return g * 2, None, None
    Trailing.apply(x, 2.0).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_tl_grad_runs_no_hooks_of_leaves_it_was_not_asked_for():
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    b = tl.tensor([3.0, 4.0], requires_grad=True)
    seen = []
    b.register_hook(lambda g: seen.append("b"))
    a.register_hook(lambda g: seen.append("a"))
    (ga,) = tl.grad((a * b).sum(), [a])
    assert ga.tolist() == [3.0, 4.0] and seen == ["a"] and b.grad is None


def test_grads_seen_by_hooks_or_retained_are_not_the_leaf_s_buffer():
    # the first gradient became .grad without a copy, and the next backward added into it
    seen = []
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: seen.append(g))
    for _ in range(2):
        (x * 2.0).sum().backward()
    assert seen[0].tolist() == [2.0, 2.0] and x.grad.tolist() == [4.0, 4.0]
    buf = tl.tensor([5.0, 5.0])
    y = tl.tensor([1.0, 2.0], requires_grad=True)
    h = y.register_hook(lambda g: buf)
    (y * 2.0).sum().backward()
    h.remove()
    (y * 2.0).sum().backward()
    assert buf.tolist() == [5.0, 5.0] and y.grad.tolist() == [7.0, 7.0]
    a, b = tl.tensor([1.0, 2.0], requires_grad=True), tl.tensor([1.0, 2.0], requires_grad=True)
    m = a * 2.0
    m.retain_grad()
    ((m + b) * 3.0).sum().backward()
    b.grad.zero_()
    assert m.grad.tolist() == [3.0, 3.0]


def test_a_zero_stride_writable_first_gradient_is_copied():
    # a broadcast that is writable (CuPy's always are): adding into it wrote every element
    # to one address
    from numpy.lib.stride_tricks import as_strided

    class Spread(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            one = np.ones(1, np.float32)
            return tl.from_numpy(as_strided(one, (4,), (0,)))
    x = tl.zeros(4, requires_grad=True)
    Spread.apply(x).backward()
    (x * tl.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert x.grad.tolist() == [2.0, 3.0, 4.0, 5.0]


def test_a_saved_output_does_not_keep_the_graph_alive():
    import gc
    import weakref
    x = tl.tensor([0.5, 1.0], dtype="float64", requires_grad=True)
    gc.disable()
    try:
        y = _exp_function(tl).apply(x)
        ref = weakref.ref(y)
        del y
        assert ref() is None        # no cycle through the context
        y = _exp_function(tl).apply(x)
        y.sum().backward()
        ref = weakref.ref(y)
        del y
        assert ref() is None
    finally:
        gc.enable()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, 1.0]))


def test_a_non_differentiable_output_gets_zeros_in_backward():
    got = []

    class WithIdx(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            idx = tl.tensor(np.argsort(x.numpy()).astype(np.float64))
            ctx.mark_non_differentiable(idx)
            return x * 2, idx

        @staticmethod
        def backward(ctx, g, gidx):
            got.append(gidx)
            return g * 2
    x = tl.tensor([3.0, 1.0], requires_grad=True)
    y, idx = WithIdx.apply(x)
    assert y.requires_grad and not idx.requires_grad
    (y + idx).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    assert got[0] is not None and got[0].shape == (2,) and not got[0].numpy().any()


def test_backward_inputs_accumulates_only_into_those_as_torch():
    torch = pytest.importorskip("torch")
    got = []
    for lib in (tl, torch):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, 4.0], requires_grad=True)
        h = a * b
        h.retain_grad()
        loss = (h * h).sum()
        loss.backward(inputs=[a], retain_graph=True)
        first = (a.grad.numpy().copy(), b.grad)
        loss.backward(inputs=[a, h], retain_graph=True)
        m = a * 2                                   # a non-leaf input, not retained
        (m * m).sum().backward(inputs=[m])
        got.append((first[0], first[1] is None, a.grad.numpy(), h.grad.numpy(),
                    m.grad.numpy()))
    for x, y in zip(*got):
        np.testing.assert_allclose(x, y)
    with pytest.raises(RuntimeError, match=r"inputs\[0\] does not require grad"):
        (tl.ones(2, requires_grad=True) * 2).sum().backward(inputs=[tl.ones(2)])


def test_post_accumulate_grad_hooks_see_the_summed_grad():
    w = tl.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.numpy().copy()))
    pre = []
    w.register_hook(lambda g: pre.append(g.numpy().copy()))
    (w * w).sum().backward()
    (w * 3).sum().backward()
    handle.remove()
    (w * w).sum().backward()
    np.testing.assert_allclose(seen, [[2, 4], [5, 7]])
    np.testing.assert_allclose(pre, [[2, 4], [3, 3], [2, 4]])
    with pytest.raises(RuntimeError, match="only a leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda p: None)


# --- custom Functions: PyTorch's variants -------------------------------------------------------
def test_function_with_non_tensor_outputs_broadcast_grads_and_kwargs():
    class WithCount(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, 5

        @staticmethod
        def backward(ctx, g, none):
            assert none is None
            return g * 2

    x = tl.ones(2, requires_grad=True)
    y, k = WithCount.apply(x)
    y.sum().backward()
    assert k == 5 and x.grad.tolist() == [2.0, 2.0]

    class Add(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x, b, *, scale=1.0):
            ctx.scale = scale
            return (x + b) * scale

        @staticmethod
        def backward(ctx, g):
            return g * ctx.scale, g * ctx.scale     # (3, 4) for b of shape (4,): summed

    x, b = tl.ones(3, 4, requires_grad=True), tl.ones(4, requires_grad=True)
    Add.apply(x, b, scale=2.0).sum().backward()
    assert b.grad.tolist() == [6.0] * 4 and x.grad.shape == (3, 4)

    class Wrong(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            return tl.ones(5)

    with pytest.raises(RuntimeError, match=r"Wrong.backward returned a gradient of shape "
                                           r"\(5,\) for argument 0 of shape \(3,\)"):
        Wrong.apply(tl.ones(3, requires_grad=True)).backward()


def test_function_setup_context_mark_dirty_and_once_differentiable():
    torch = pytest.importorskip("torch")

    def make(lib):
        class MulAdd(lib.autograd.Function):
            @staticmethod
            def forward(x, w):
                return x * w

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.save_for_backward(*inputs)

            @staticmethod
            def backward(ctx, g):
                x, w = ctx.saved_tensors
                return g * w, g * x

        class AddOne_(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                x.add_(1)
                ctx.mark_dirty(x)
                return x

            @staticmethod
            def backward(ctx, g):
                return g
        return MulAdd, AddOne_

    got = []
    for lib in (tl, torch):
        MulAdd, AddOne_ = make(lib)
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor([3.0, 4.0], requires_grad=True)
        h = MulAdd.apply(a, w)
        r = AddOne_.apply(h)
        assert r is h
        (h * h).sum().backward()
        got.append((h.detach().numpy().copy(), a.grad.numpy(), w.grad.numpy()))
    for x, y in zip(*got):
        np.testing.assert_allclose(x, y)
    _, AddOne_ = make(tl)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad was changed"):
        AddOne_.apply(tl.ones(2, requires_grad=True))

    class AddInto(tl.autograd.Function):      # a buffer without a history, changed in place
        @staticmethod
        def forward(ctx, x, w):
            x.add_(w)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g, g

    buf, w = tl.zeros(3), tl.ones(3, requires_grad=True)
    y = AddInto.apply(buf, w)
    (y * 2).sum().backward()
    assert y is buf and w.grad.tolist() == [2.0, 2.0, 2.0]

    class Sq(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @tl.autograd.once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return tl.tensor(2 * x.numpy() * g.numpy())   # NumPy: not differentiable

    x = tl.tensor([1.0, 2.0], requires_grad=True)
    y = Sq.apply(x) * x                                   # the incoming gradient needs grad
    (g,) = tl.grad(y.sum(), [x], create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        tl.grad(g.sum(), [x])


@pytest.mark.parametrize("act", ["ReLU", "LeakyReLU"])
def test_second_derivative_through_piecewise_linear_nets_is_zeros(act):
    # x reaches the gradient only through relu's zero second derivative: zeros, as PyTorch,
    # not "input was not used"
    torch = pytest.importorskip("torch")
    got = []
    for lib in (tl, torch):
        lib.manual_seed(0)
        net = lib.nn.Sequential(lib.nn.Linear(3, 8), getattr(lib.nn, act)(), lib.nn.Linear(8, 1))
        x = lib.randn(5, 3, requires_grad=True)
        grad = tl.grad if lib is tl else torch.autograd.grad
        (g,) = grad(net(x).sum(), [x], create_graph=True)
        (h,) = grad(g[:, 0].sum(), [x])
        got.append(h.numpy())
    np.testing.assert_array_equal(got[0], got[1])
    assert not got[0].any()


def test_grad_materialize_grads_and_unused_inputs():
    x, y = tl.ones(2, requires_grad=True), tl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="was not used"):
        tl.grad((x * 2).sum(), [x, y])
    gx, gy = tl.grad((x * 2).sum(), [x, y], allow_unused=True)
    assert gy is None and gx.tolist() == [2.0, 2.0]
    gx, gy = tl.grad((x * 2).sum(), [x, y], materialize_grads=True)
    assert gy.tolist() == [0.0, 0.0, 0.0]


def test_an_input_no_gradient_reaches_is_unused_as_torch():
    # a backward that returns None, and a sibling output, give nothing: unused (PyTorch too)
    class Half(tl.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * 2 + b

        @staticmethod
        def backward(ctx, g):
            return g * 2, None

    a, b = tl.ones(2, requires_grad=True), tl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="was not used"):
        tl.grad(Half.apply(a, b).sum(), [a, b])
    ga, gb = tl.grad(Half.apply(a, b).sum(), [a, b], allow_unused=True)
    assert gb is None and ga.tolist() == [2.0, 2.0]
    Half.apply(a, b).sum().backward(inputs=[a, b])
    assert b.grad is None
    x = tl.ones(4, requires_grad=True)
    first, second = tl.split(x * 2, 2)
    with pytest.raises(RuntimeError, match="was not used"):
        tl.grad(first.sum(), [second])


def test_grad_mode_decorators_hold_inside_a_generator_and_not_outside():
    w = tl.ones(2, requires_grad=True)

    @tl.no_grad()
    def predict(n):
        got = []
        for _ in range(n):
            got.append((yield (w * 2).requires_grad))
        return got

    gen = predict(2)
    assert next(gen) is False
    assert tl.is_grad_enabled() and (w * 2).requires_grad     # the caller's mode between
    assert gen.send("a") is False
    with pytest.raises(StopIteration) as stop:
        gen.send("b")
    assert stop.value.value == ["a", "b"]

    @tl.inference_mode()
    def boom():
        try:
            yield 1
        except ValueError:
            yield tl.is_grad_enabled()
    g = boom()
    next(g)
    assert g.throw(ValueError("x")) is False
    g.close()


def test_grad_takes_pytorch_keywords_only_inputs_is_grads_batched_and_grad_tensors():
    torch = pytest.importorskip("torch")
    x = tl.randn(3, requires_grad=True)
    xt = torch.tensor(x.numpy(), requires_grad=True)
    eye = np.eye(3, dtype=np.float32)
    (j,) = tl.autograd.grad(tl.sin(x) * x, x, tl.tensor(eye), only_inputs=True,
                            is_grads_batched=True, create_graph=True)
    (jt,) = torch.autograd.grad(torch.sin(xt) * xt, xt, torch.tensor(eye),
                                is_grads_batched=True, create_graph=True)
    np.testing.assert_allclose(j.numpy(), jt.detach().numpy(), rtol=1e-6)
    (hj,) = tl.autograd.grad(j.sum(), x)          # the batched rows keep their history
    (hjt,) = torch.autograd.grad(jt.sum(), xt)
    np.testing.assert_allclose(hj.numpy(), hjt.numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="same batch size"):
        tl.autograd.grad([x * 2, x * 3], x, [tl.ones(2, 3), tl.ones(3, 3)],
                         is_grads_batched=True)
    loss = (x * 2).sum()
    x.grad = None
    tl.autograd.backward([loss], grad_tensors=[tl.tensor(3.0)])
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0, 6.0])


def test_grad_walks_only_between_the_outputs_and_the_inputs():
    """tl.grad (and backward(inputs=)) runs the vjps on the paths to the inputs only, as
    PyTorch's engine: hooks and retained gradients above the inputs stay idle, the tape
    above them is not freed (first-order MAML), and the work does not grow with it."""
    calls = []

    class Counted(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            return g

    w = tl.tensor([1.0, 2.0], requires_grad=True)
    u = w * 3.0
    u.retain_grad()
    seen = []
    u.register_hook(lambda g: seen.append(g))
    h = u
    for _ in range(20):
        h = Counted.apply(h)
    a = h - 1.0
    (g,) = tl.grad((a * a).sum(), [a])          # retain_graph=False
    np.testing.assert_allclose(g.numpy(), 2 * (3 * w.numpy() - 1))
    assert u.grad is None and seen == [] and calls == []
    (a - 0.1 * g).sum().backward()              # the tape above a is still there
    np.testing.assert_allclose(w.grad.numpy(), [3.0, 3.0])
    assert len(calls) == 20 and len(seen) == 1
    # a leaf among the inputs: the path to it runs, a branch that does not reach it does not
    calls.clear()
    x = tl.tensor([2.0], requires_grad=True)
    other = Counted.apply(tl.tensor([1.0], requires_grad=True))
    (gx,) = tl.grad((x * x + other).sum(), [x])
    assert gx.item() == 4.0 and calls == []
    # backward(inputs=) accumulates into those only, through the same pruned walk
    calls.clear()
    w2 = tl.tensor([1.0], requires_grad=True)
    mid = Counted.apply(w2 * 2.0)
    top = mid * mid
    top.sum().backward(inputs=[mid])
    assert mid.grad.item() == 4.0 and w2.grad is None and calls == []


def test_grad_with_no_inputs_raises_as_pytorch():
    x = tl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="cannot be empty"):
        tl.autograd.grad(x.sum(), [])
