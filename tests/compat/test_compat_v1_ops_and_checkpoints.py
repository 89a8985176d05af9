"""tensorlib.compat.v1 fixes from the TF1 user trial: optimizer state in checkpoints,
dtype rules, Session isolation, pooling/padding, dynamic batch dims, operators and shapes,
scopes, control dependencies, compute/apply_gradients and the new ops (against PyTorch on
values and gradients, float64 where possible; TF1-only behaviour as the trial report states
it)."""
from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib.compat.v1 as tf

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.fixture(autouse=True)
def _fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


def _regression(opt_factory):
    rng = np.random.RandomState(0)
    X, Y = rng.randn(16, 4).astype(np.float32), rng.randn(16, 1).astype(np.float32)
    x, y = tf.placeholder(tf.float32, [None, 4]), tf.placeholder(tf.float32, [None, 1])
    W = tf.Variable(rng.randn(4, 1).astype(np.float32), name="W")
    loss = tf.reduce_mean(tf.square(tf.matmul(x, W) - y))
    opt = opt_factory()
    return opt, opt.minimize(loss), W, {x: X, y: Y}


# --- F1 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("factory", [lambda: tf.train.AdamOptimizer(0.05),
                                     lambda: tf.train.MomentumOptimizer(0.05, 0.9),
                                     lambda: tf.train.AdagradOptimizer(0.3)])
def test_saver_restores_optimizer_state_and_resumes_exactly(tmp_path, factory):
    opt, step, W, feed = _regression(factory)
    saver = tf.train.Saver()
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    for _ in range(5):
        s.run(step, feed)
    path = saver.save(s, str(tmp_path / "ck"))
    for _ in range(5):
        s.run(step, feed)
    s2 = tf.Session()
    saver.restore(s2, path)
    for _ in range(5):
        s2.run(step, feed)
    # (without the slots the runs part by ~1e-2; ulps remain: the first run of a Session
    # is traced eagerly, later ones replay the optimised graph)
    np.testing.assert_allclose(s2.run(W), s.run(W), rtol=0, atol=1e-6)


def test_adam_slots_are_named_global_variables():
    opt, _, W, _ = _regression(lambda: tf.train.AdamOptimizer(0.1))
    names = [v.name for v in tf.global_variables()]
    assert names == ["W", "W/Adam", "W/Adam_1", "beta1_power", "beta2_power"]
    assert opt.get_slot(W, "m").name == "W/Adam" and opt.get_slot(W, "v").name == "W/Adam_1"
    assert opt.get_slot(W, "nope") is None and opt.get_slot_names() == ["m", "v"]
    assert [v.name for v in opt.variables()] == names[1:]
    assert [v.name for v in tf.trainable_variables()] == ["W"]


def test_adam_matches_torch_with_tf1_epsilon():
    rng = np.random.RandomState(1)
    X, W0 = rng.randn(8, 3), rng.randn(3, 1)
    x = tf.placeholder(tf.float64, [None, 3])
    W = tf.Variable(W0)
    loss = tf.reduce_sum(tf.square(tf.matmul(x, W)))
    step = tf.train.AdamOptimizer(0.01, epsilon=1e-12).minimize(loss)
    Wt = torch.tensor(W0, requires_grad=True)
    opt = torch.optim.Adam([Wt], lr=0.01, eps=1e-12)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for _ in range(4):
            s.run(step, {x: X})
            opt.zero_grad()
            ((torch.tensor(X) @ Wt) ** 2).sum().backward()
            opt.step()
        np.testing.assert_allclose(s.run(W), Wt.detach().numpy(), rtol=1e-9, atol=1e-10)


# --- F2 ---------------------------------------------------------------------------------
def test_numpy_arrays_keep_dtype_python_numbers_follow_tf1():
    s = tf.Session()
    a = np.array([0.1, 0.2, 0.3])
    x64 = tf.placeholder(tf.float64, [3])
    assert s.run(tf.constant(a)).dtype == np.float64
    assert s.run(tf.constant([0.5])).dtype == np.float32
    assert s.run(tf.constant(3)).dtype == np.int32
    np.testing.assert_array_equal(s.run(x64 * tf.constant(a), {x64: np.ones(3)}), a)
    np.testing.assert_array_equal(s.run(x64 + a, {x64: np.zeros(3)}), a)
    xi = tf.placeholder(tf.int64, [2])
    r = s.run(xi + np.array([2 ** 40 + 1, 0]), {xi: [0, 0]})
    assert r.dtype == np.int64 and r[0] == 2 ** 40 + 1
    x32 = tf.placeholder(tf.float32, [3])
    assert s.run(x32 + a, {x32: np.zeros(3)}).dtype == np.float32   # cast to the tensor's


def test_integer_mean_truncates():
    s = tf.Session()
    assert s.run(tf.reduce_mean(tf.constant([1, 2]))) == 1
    assert s.run(tf.reduce_mean(tf.constant([-1, -2]))) == -1


# --- F3 ---------------------------------------------------------------------------------
def test_session_never_reads_another_sessions_value():
    W2 = tf.Variable(np.full((2,), 3.0, np.float32), name="W2")
    V = tf.Variable(W2 * 2.0, name="V")
    s2 = tf.Session()
    with pytest.raises(tf.errors.FailedPreconditionError, match="uninitialized value W2"):
        s2.run(tf.variables_initializer([V]))
    s3 = tf.Session()
    s3.run(tf.variables_initializer([W2]))
    s3.run(W2.assign(tf.constant(np.full((2,), 100., np.float32))))
    s4 = tf.Session()
    with pytest.raises(RuntimeError, match="uninitialized value W2"):
        s4.run(tf.variables_initializer([V]))
    s4.run(tf.global_variables_initializer())
    np.testing.assert_array_equal(s4.run(V), [6.0, 6.0])


# --- F4 / F6 ----------------------------------------------------------------------------
def test_pool_padding_and_window_errors():
    x = tf.placeholder(tf.float32, [1, 4, 4, 1])
    with pytest.raises(ValueError, match="max_pool: padding"):
        tf.nn.max_pool(x, [1, 3, 3, 1], [1, 1, 1, 1], "same")
    with pytest.raises(ValueError, match="max_pool: ksize"):
        tf.nn.max_pool(x, [2, 2, 2, 1], [1, 1, 1, 1], "VALID")
    with pytest.raises(ValueError, match="avg_pool: strides"):
        tf.nn.avg_pool(x, [1, 2, 2, 1], [1, 2, 2, 2], "VALID")
    with pytest.raises(ValueError, match="conv2d: padding"):
        tf.nn.conv2d(x, tf.constant(np.zeros((1, 1, 1, 1), np.float32)), [1, 1, 1, 1], "valid")


def _tf1_same(n, k, s):
    out = -(-n // s)
    tot = max((out - 1) * s + k - n, 0)
    return tot // 2, tot - tot // 2


@settings(max_examples=12, deadline=None)
@given(n=st.integers(4, 9), k=st.integers(1, 4), s=st.integers(1, 3))
def test_same_conv_and_pools_match_torch_with_tf1_pads(n, k, s):
    tf.reset_default_graph()
    rng = np.random.RandomState(n * 100 + k * 10 + s)
    X, K = rng.randn(2, n, n + 1, 3), rng.randn(k, k, 3, 2)
    x = tf.placeholder(tf.float64, [None, n, n + 1, 3])
    kv = tf.Variable(K)
    outs = [tf.nn.conv2d(x, kv, [1, s, s, 1], "SAME"),
            tf.nn.max_pool(x, [1, k, k, 1], [1, s, s, 1], "SAME"),
            tf.nn.avg_pool(x, [1, k, k, 1], [1, s, s, 1], "SAME")]
    grads = tf.gradients(tf.add_n([tf.reduce_sum(o * o) for o in outs]), [x, kv])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run(outs + grads, {x: X})
    xt = torch.tensor(X, requires_grad=True).permute(0, 3, 1, 2)
    kt = torch.tensor(K, requires_grad=True)
    (t, b), (lf, r) = _tf1_same(n, k, s), _tf1_same(n + 1, k, s)
    conv = F.conv2d(F.pad(xt, (lf, r, t, b)), kt.permute(3, 2, 0, 1), stride=s)
    mp = F.max_pool2d(F.pad(xt, (lf, r, t, b), value=-np.inf), k, s)
    ones = F.pad(torch.ones_like(xt[:1, :1]), (lf, r, t, b))
    ap = F.avg_pool2d(F.pad(xt, (lf, r, t, b)), k, s) / F.avg_pool2d(ones, k, s)
    ref = [o.permute(0, 2, 3, 1) for o in (conv, mp, ap)]
    sum((o * o).sum() for o in ref).backward()
    for g, e in zip(got[:3], ref):
        np.testing.assert_allclose(g, e.detach().numpy(), rtol=1e-9, atol=1e-9)
    leaf_x = xt.grad_fn.next_functions[0][0].variable
    np.testing.assert_allclose(got[3], leaf_x.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got[4], kt.grad.numpy(), rtol=1e-9, atol=1e-9)


# --- F5 ---------------------------------------------------------------------------------
def test_ndarray_on_the_left_gives_one_tensor():
    x = tf.placeholder(tf.float32, [4])
    r = np.ones(4, np.float32) + x
    assert isinstance(r, tf.Tensor)
    np.testing.assert_array_equal(tf.Session().run(r, {x: np.arange(4)}), np.arange(4) + 1)


# --- F7 ---------------------------------------------------------------------------------
def test_new_batch_sizes_reuse_one_evaluation_graph():
    x = tf.placeholder(tf.float32, [None, 8])
    W = tf.Variable(np.random.RandomState(0).randn(8, 3).astype(np.float32))
    p = tf.nn.softmax(tf.matmul(x, W))
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    X = np.random.RandomState(1).randn(60, 8).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in range(1, 30):
            got = s.run(p, {x: X[:n]})
            e = np.exp(X[:n] @ s.run(W))
            np.testing.assert_allclose(got, e / e.sum(1, keepdims=True), rtol=1e-5)
    (entry,) = [e for e in s._fns.values() if e.placeholders]
    assert len(entry.fn.graphs) == 1


# --- F9 ---------------------------------------------------------------------------------
def test_bool_of_tensor_raises():
    x = tf.placeholder(tf.float32, [2])
    with pytest.raises(TypeError, match="Python `bool`"):
        bool(x)
    with pytest.raises(TypeError):
        if x > 0:
            pass


def test_operators_match_torch():
    A = np.array([[-2.5, -1.0, 0.5], [1.0, 2.0, 3.5]])
    B = np.array([[1.5, 2.0, -0.5], [2.0, 2.0, 2.0]])
    a, b = tf.placeholder(tf.float64, [2, 3]), tf.placeholder(tf.float64, [2, 3])
    ops = [a < b, a > b, a <= b, a >= b, abs(a), a // b, a % b, abs(a) ** b, 2.0 ** a]
    got = tf.Session().run(ops, {a: A, b: B})
    ta, tb = torch.tensor(A), torch.tensor(B)
    exp = [ta < tb, ta > tb, ta <= tb, ta >= tb, ta.abs(), torch.floor_divide(ta, tb),
           torch.remainder(ta, tb), ta.abs() ** tb, 2.0 ** ta]
    for g, e in zip(got, exp):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-12)


def test_get_shape_infers_and_as_list():
    x = tf.placeholder(tf.float32, [None, 5])
    W = tf.Variable(np.zeros((5, 3), np.float32))
    h = tf.matmul(x, W)
    assert h.get_shape().as_list() == [None, 3]
    assert x.get_shape().as_list() == [None, 5] and x.get_shape() == [None, 5]
    assert tf.transpose(h).get_shape().as_list() == [3, None]
    assert tf.reduce_sum(h, axis=0).get_shape()[0] == 3
    u = tf.placeholder(tf.float32)
    with pytest.raises(ValueError, match="unknown"):
        (u * 2.0).get_shape().as_list()


def test_assign_validates_shape():
    W = tf.Variable(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="shapes must be equal"):
        W.assign(3.0)
    p = tf.placeholder(tf.float32, [None, 2])
    op = W.assign(p)
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    with pytest.raises(ValueError, match="shapes must be equal"):
        s.run(op, {p: np.ones((1, 2))})
    s.run(op, {p: np.ones((2, 2))})
    np.testing.assert_array_equal(s.run(W), np.ones((2, 2)))


def test_stop_gradient_gives_none():
    W = tf.Variable(np.ones(3, np.float32))
    assert tf.gradients(tf.reduce_sum(tf.stop_gradient(W) * 2.), W) == [None]
    g, = tf.gradients(tf.reduce_sum(tf.stop_gradient(W) * W), W)
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    np.testing.assert_array_equal(s.run(g), np.ones(3))


def test_namedtuple_fetch_keeps_type():
    P = collections.namedtuple("P", "a b")
    x = tf.placeholder(tf.float32, [])
    r = tf.Session().run(P(x, x * 2.0), {x: 1.0})
    assert isinstance(r, P) and r.b == 2.0


# --- F10: optimizers ----------------------------------------------------------------------
def test_compute_apply_gradients_with_clipping_matches_torch():
    rng = np.random.RandomState(2)
    X, W0 = rng.randn(6, 3) * 5, rng.randn(3, 2)
    x = tf.placeholder(tf.float64, [None, 3])
    W = tf.Variable(W0, name="W")
    loss = tf.reduce_sum(tf.square(tf.matmul(x, W)))
    opt = tf.train.MomentumOptimizer(0.01, 0.9)
    gv = opt.compute_gradients(loss)
    assert [v for _, v in gv] == [W]
    clipped, _ = tf.clip_by_global_norm([g for g, _ in gv], 1.0)
    gs = tf.Variable(0, trainable=False)
    step = opt.apply_gradients(list(zip(clipped, [W])), global_step=gs)
    Wt = torch.tensor(W0, requires_grad=True)
    topt = torch.optim.SGD([Wt], lr=0.01, momentum=0.9)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for _ in range(3):
            s.run(step, {x: X})
            topt.zero_grad()
            ((torch.tensor(X) @ Wt) ** 2).sum().backward()
            torch.nn.utils.clip_grad_norm_([Wt], 1.0)
            topt.step()
        # torch divides by norm + 1e-6, TF1 by max(norm, clip_norm)
        np.testing.assert_allclose(s.run(W), Wt.detach().numpy(), rtol=1e-7)
        assert s.run(gs) == 3 and opt.get_slot(W, "momentum") is not None
    with pytest.raises(ValueError, match="apply_gradients: No gradients"):
        opt.apply_gradients([(None, W)])


# --- F10: scopes, control flow helpers ----------------------------------------------------
def test_variable_scope_get_variable_reuse():
    with tf.variable_scope("layer"):
        w = tf.get_variable("w", [3, 2], initializer=tf.zeros_initializer())
        with tf.name_scope("inner"):
            v = tf.Variable(1.0, name="v")
    assert w.name == "layer/w" and v.name == "layer/inner/v"
    with tf.variable_scope("layer", reuse=True):
        assert tf.get_variable("w", [3, 2]) is w
        with pytest.raises(ValueError, match="does not exist"):
            tf.get_variable("other", [1])
    with tf.variable_scope("layer", reuse=tf.AUTO_REUSE):
        assert tf.get_variable("w") is w
        assert tf.get_variable("b", [2]).name == "layer/b"
    with tf.variable_scope("layer"):
        with pytest.raises(ValueError, match="already exists"):
            tf.get_variable("w", [3, 2])
    g = tf.get_variable("g", [50, 40])
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    lim = np.sqrt(6 / 90)
    gv = s.run(g)
    assert np.abs(gv).max() <= lim and gv.std() > lim / 3
    np.testing.assert_array_equal(s.run(w), np.zeros((3, 2)))


def test_control_dependencies_group_no_op_identity():
    c = tf.Variable(0, name="c")
    d = tf.Variable(0, name="d")
    inc, incd = c.assign_add(1), d.assign_add(10)
    x = tf.placeholder(tf.float32, [])
    with tf.control_dependencies([inc]):
        y = tf.identity(x * 2.0)
        n = tf.no_op()
    g = tf.group(inc, incd)
    s = tf.Session()
    s.run(tf.group(tf.global_variables_initializer(), tf.local_variables_initializer()))
    assert s.run(y, {x: 1.5}) == 3.0 and s.run(c) == 1
    s.run(n)
    s.run(g)
    assert s.run(c) == 3 and s.run(d) == 10


# --- F10: ops against torch -------------------------------------------------------------
def test_array_ops_match_torch():
    rng = np.random.RandomState(3)
    A, B = rng.randn(2, 3), rng.randn(2, 3)
    idx = np.array([2, 0, 1, 1])
    a, b = tf.placeholder(tf.float64, [None, 3]), tf.placeholder(tf.float64, [None, 3])
    i = tf.placeholder(tf.int64, [4])
    ops = [tf.concat([a, b], 1), tf.stack([a, b], 1), tf.expand_dims(a, 1),
           tf.squeeze(tf.expand_dims(a, 0), [0]), tf.gather(a, i, axis=1),
           tf.where(a > b, a, b), tf.maximum(a, b), tf.minimum(a, 0.0),
           tf.clip_by_value(a, -0.5, 0.5), tf.add_n([a, b, a]), tf.reduce_prod(a, 1),
           tf.pow(tf.abs(a), 1.5), tf.one_hot(i, 3), tf.shape(a), tf.tile(a, [2, 1]),
           tf.split(a, 3, axis=1)[1], tf.zeros_like(a), tf.ones_like(i, dtype=tf.float32)]
    got = tf.Session().run(ops, {a: A, b: B, i: idx})
    ta, tb, ti = torch.tensor(A), torch.tensor(B), torch.tensor(idx)
    exp = [torch.cat([ta, tb], 1), torch.stack([ta, tb], 1), ta[:, None], ta,
           ta[:, ti], torch.where(ta > tb, ta, tb), torch.maximum(ta, tb), ta.clamp(max=0),
           ta.clamp(-0.5, 0.5), ta + tb + ta, ta.prod(1), ta.abs() ** 1.5,
           F.one_hot(ti, 3).float(), torch.tensor([2, 3], dtype=torch.int32),
           ta.repeat(2, 1), ta[:, 1:2], torch.zeros_like(ta), torch.ones(4)]
    for g, e in zip(got, exp):
        assert g.dtype == e.numpy().dtype
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="add_n"):
        tf.Session().run(tf.add_n([a, tf.transpose(a)]), {a: A})


def test_losses_and_nn_ops_values_and_gradients_match_torch():
    rng = np.random.RandomState(4)
    Z, Yb, Bv = rng.randn(5, 4), rng.rand(5, 4), rng.randn(4)
    lab = np.array([0, 3, 1, 2, 3])
    z = tf.placeholder(tf.float64, [None, 4])
    y = tf.placeholder(tf.float64, [None, 4])
    lb = tf.placeholder(tf.int64, [None])
    bias = tf.Variable(Bv)
    outs = [tf.nn.sparse_softmax_cross_entropy_with_logits(labels=lb, logits=z),
            tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z * 10.0),
            tf.nn.bias_add(z, bias), tf.nn.l2_loss(z), tf.nn.leaky_relu(z, 0.1),
            tf.nn.elu(z), tf.nn.softplus(z), tf.nn.relu6(z * 5.0)]
    total = tf.add_n([tf.reduce_sum(o) for o in outs])
    grads = tf.gradients(total, [z, bias])
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    got = s.run(outs + grads, {z: Z, y: Yb, lb: lab})
    tz, tbias = torch.tensor(Z, requires_grad=True), torch.tensor(Bv, requires_grad=True)
    exp = [F.cross_entropy(tz, torch.tensor(lab), reduction="none"),
           F.binary_cross_entropy_with_logits(tz * 10.0, torch.tensor(Yb), reduction="none"),
           tz + tbias, (tz ** 2).sum() / 2, F.leaky_relu(tz, 0.1), F.elu(tz), F.softplus(tz),
           F.relu6(tz * 5.0)]
    sum(e.sum() for e in exp).backward()
    for g, e in zip(got[:8], exp):
        np.testing.assert_allclose(g, e.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[8], tz.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[9], tbias.grad.numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="labels= and logits="):
        tf.nn.sparse_softmax_cross_entropy_with_logits(logits=z)


def test_saving_a_session_training_graph_does_not_warn_that_it_trains_nothing(tmp_path):
    import tensorlib as tl
    x = tf.placeholder(tf.float32, [None, 4])
    w = tf.Variable(np.ones((4, 1), np.float32), name="W")
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w)))
    step = tf.train.MomentumOptimizer(0.1, 0.9).minimize(loss)
    s = tf.Session()
    s.run(tf.global_variables_initializer())
    g = s.graph_for([loss, step], {x: np.ones((3, 4), np.float32)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tl.save_graph(g, tmp_path / "train.tlg")
    # an eval-less BatchNorm graph, which only writes running statistics, still warns
    bn = tl.nn.BatchNorm1d(4)
    f = tl.function(lambda a: bn(a))
    with tl.no_grad():
        f(tl.randn(8, 4))
    with pytest.warns(UserWarning, match="trains nothing"):
        tl.save_graph(f, tmp_path / "bn.tlg")
