"""tensorlib.compat.v1 Session semantics against TF1's, with expected values written by hand
(TensorFlow is not installed): fetch order with train ops, copies of fetched variables,
several train ops in one run, replay of evaluation fetches, per-Session variables, seeds,
tf.gradients / stop_gradient, the Momentum and Adagrad optimizers, Saver."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.compat.v1 as tf


@pytest.fixture(autouse=True)
def _fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


def _counted(x, calls: list):
    """A compat op that counts how often its Python runs (once per trace when replayed)."""
    def fn(v):
        calls.append(1)
        return v * 1.0
    return tf.Tensor(fn, [x], "counted")


# --- 1. fetch positions with train ops ------------------------------------------------------
def test_train_op_fetched_first_keeps_every_fetch_in_its_place():
    x = tf.placeholder(tf.float32, [None, 2])
    w = tf.Variable(np.ones((2, 1), np.float32))
    loss = tf.reduce_sum(tf.matmul(x, w))          # 6 for the feed below
    double = loss * 2.0                            # 12
    train = tf.train.GradientDescentOptimizer(0.0).minimize(loss)
    X = np.array([[1, 2], [1, 2]], np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        _, lv = sess.run([train, loss], {x: X})
        assert float(lv) == 6.0
        r = sess.run([train, loss, double], {x: X})
        assert r[0] is None and float(r[1]) == 6.0 and float(r[2]) == 12.0
        r = sess.run([loss, train, double], {x: X})     # replayed, other order
        assert float(r[0]) == 6.0 and r[1] is None and float(r[2]) == 12.0
        d = sess.run({"step": train, "loss": loss, "pair": (double, train)}, {x: X})
        assert d["step"] is None and float(d["loss"]) == 6.0
        assert float(d["pair"][0]) == 12.0 and d["pair"][1] is None


# --- 2. fetched values are copies -----------------------------------------------------------
def test_fetched_variable_is_a_copy():
    W = tf.Variable(np.ones((2, 2), np.float32))
    x = tf.placeholder(tf.float32, [None, 2])
    y = tf.reduce_sum(tf.matmul(x, W))
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for _ in range(2):                          # traced, then replayed
            w = s.run(W)
            w /= np.linalg.norm(w)
            np.testing.assert_array_equal(s.run(W), np.ones((2, 2)))
        a, _ = s.run([W, y], {x: np.ones((1, 2), np.float32)})
        a[0, 0] = 7.0
        np.testing.assert_array_equal(s.run(W), np.ones((2, 2)))
        assert float(s.run(y, {x: np.ones((1, 2), np.float32)})) == 4.0


def test_scalar_fetch_is_a_numpy_scalar():
    v = tf.Variable(3.0)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        r = s.run(v * 2.0)
        assert isinstance(r, np.float32) and r == 6.0     # TF1 returns NumPy scalars


# --- 3. several train ops, or one op fetched twice ------------------------------------------
def test_two_train_ops_on_a_shared_forward_update_from_the_same_values():
    x = tf.placeholder(tf.float32, [None, 2])
    wg = tf.Variable(np.ones((2, 2), np.float32))      # "generator"
    wd = tf.Variable(np.ones((2, 1), np.float32))      # "discriminator"
    d_out = tf.reduce_mean(tf.matmul(tf.matmul(x, wg), wd))
    d_train = tf.train.GradientDescentOptimizer(0.1).minimize(d_out, var_list=[wd])
    g_train = tf.train.GradientDescentOptimizer(0.1).minimize(-d_out, var_list=[wg])
    X = np.ones((4, 2), np.float32)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        # d d_out / d wd = mean over rows of x @ wg = 2; d(-d_out) / d wg = -wd^T = -1
        assert s.run([d_train, g_train], {x: X}) == [None, None]
        np.testing.assert_allclose(s.run(wd), np.full((2, 1), 0.8), rtol=1e-6)
        np.testing.assert_allclose(s.run(wg), np.full((2, 2), 1.1), rtol=1e-6)
        # replayed: x @ wg = 2.2 -> wd = 0.8 - 0.22; wg = 1.1 + 0.1 * 0.8 (wd before its update)
        s.run([d_train, g_train], {x: X})
        np.testing.assert_allclose(s.run(wd), np.full((2, 1), 0.58), rtol=1e-6)
        np.testing.assert_allclose(s.run(wg), np.full((2, 2), 1.18), rtol=1e-6)


def test_one_op_fetched_twice_runs_once():
    v = tf.Variable(np.ones(2, np.float32))
    loss = tf.reduce_sum(v)
    step = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        s.run([step, step])
        np.testing.assert_allclose(s.run(v), [0.9, 0.9], rtol=1e-6)
        r = s.run([step, loss, step, loss])      # the loss of this run's forward: 1.8
        assert r[0] is None and r[2] is None and float(r[1]) == float(r[3])
        np.testing.assert_allclose(float(r[1]), 1.8, rtol=1e-6)
        np.testing.assert_allclose(s.run(v), [0.8, 0.8], rtol=1e-6)


def test_train_op_with_fetched_variable_gives_the_value_the_step_read():
    v = tf.Variable(np.ones(2, np.float32))
    step = tf.train.GradientDescentOptimizer(0.5).minimize(tf.reduce_sum(v))
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for expect in ([1.0, 1.0], [0.5, 0.5]):
            _, val = s.run([step, v])
            np.testing.assert_allclose(val, expect)
        # views and casts of the variable too: they read the value after the update, or
        # the tracer refused the view
        for fetch in (tf.stop_gradient(v), tf.cast(v, tf.float32), tf.reshape(v, [2, 1]),
                      tf.transpose(tf.reshape(v, [2, 1]))):
            before = s.run(v).copy()
            _, val = s.run([step, fetch])
            np.testing.assert_allclose(np.ravel(val), before)


# --- 4. evaluation fetches replay the graph, without the tl.function warning ----------------
def test_evaluation_fetches_replay_without_warning():
    x = tf.placeholder(tf.float32, [None, 3])
    w = tf.Variable(np.eye(3, dtype=np.float32) * 2.0)
    calls: list = []
    pred = tf.reduce_sum(_counted(tf.matmul(x, w), calls), axis=1)
    loss = tf.reduce_mean(pred)
    train = tf.train.GradientDescentOptimizer(0.0).minimize(loss)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for k in range(5):
                X = np.full((4, 3), float(k), np.float32)
                np.testing.assert_allclose(s.run(pred, {x: X}), np.full(4, 6.0 * k))
            assert len(calls) == 1, "the forward-only fetch ran its Python on every run"
            for _ in range(3):
                s.run([train, loss], {x: X})
            assert len(calls) == 2          # one more trace, for the training step
            assert float(loss.eval({x: X}, session=s)) == 24.0


# --- 5. missing TF1 API -----------------------------------------------------------------------
def test_gradients_of_variables_placeholders_and_intermediates():
    x = tf.placeholder(tf.float32, [None, 2])
    w = tf.Variable(np.array([[1.0], [2.0]], np.float32))
    b = tf.Variable(np.zeros(1, np.float32))
    other = tf.Variable(np.zeros(3, np.float32))
    h = tf.matmul(x, w) + b
    loss = tf.reduce_sum(tf.square(h))
    gw, gb, gx, gh, gother = tf.gradients(loss, [w, b, x, h, other])
    assert gother is None                  # TF1: None for an x that ys do not depend on
    X = np.array([[1.0, 1.0], [2.0, 0.0]], np.float32)     # h = [3, 2]
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for _ in range(3):                 # traced, then replayed
            rw, rb, rx, rh = s.run([gw, gb, gx, gh], {x: X})
            np.testing.assert_allclose(rh, [[6.0], [4.0]])
            np.testing.assert_allclose(rw, [[6.0 + 8.0], [6.0]])    # X^T @ 2h
            np.testing.assert_allclose(rb, [10.0])
            np.testing.assert_allclose(rx, [[6.0, 12.0], [4.0, 8.0]])   # 2h @ w^T
        (gy,) = tf.gradients([h], [x], grad_ys=[tf.constant([[1.0], [-1.0]])])
        np.testing.assert_allclose(s.run(gy, {x: X}), [[1.0, 2.0], [-1.0, -2.0]])
        np.testing.assert_allclose(s.run(tf.gradients(loss, w)[0], {x: X}), rw)


def test_gradients_fetched_with_a_train_op_and_a_gradient_penalty():
    w = tf.Variable(np.array([3.0], np.float32))
    loss = tf.reduce_sum(tf.square(w))                 # d/dw = 2w
    (g,) = tf.gradients(loss, [w])
    penalty = tf.reduce_sum(tf.square(g))              # 4w^2, d/dw = 8w
    step = tf.train.GradientDescentOptimizer(0.01).minimize(penalty)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        gv, _ = s.run([g, step])
        np.testing.assert_allclose(gv, [6.0])
        np.testing.assert_allclose(s.run(w), [3.0 - 0.01 * 24.0], rtol=1e-6)


def test_stop_gradient_blocks_the_gradient():
    w = tf.Variable(np.array([2.0, -1.0], np.float32))
    loss = tf.reduce_sum(w * tf.stop_gradient(w))      # d/dw = w, not 2w
    step = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        np.testing.assert_allclose(s.run(tf.gradients(loss, w)[0]), [2.0, -1.0])
        for _ in range(3):
            s.run(step)
        np.testing.assert_allclose(s.run(w), [0.25, -0.125], rtol=1e-6)


def test_variable_collections():
    a = tf.Variable(1.0, name="a")
    b = tf.Variable(2.0, name="b", trainable=False)
    c = tf.Variable(3.0)
    assert tf.trainable_variables() == [a, c]
    assert tf.global_variables() == [a, b, c]
    assert tf.Variable(0.0, name="a").name != a.name      # names stay unique (for Saver)


def _quadratic_steps(opt, n: int) -> list:
    """w0 = [1, -2], loss = sum(w^2) / 2 (gradient w): w after each of n steps."""
    w = tf.Variable(np.array([1.0, -2.0], np.float32))
    step = opt.minimize(tf.reduce_sum(tf.square(w)) * 0.5)
    out = []
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for _ in range(n):
            s.run(step)
            out.append(s.run(w))
    return out


def test_momentum_optimizer():
    # accum = 0.9 accum + g; w -= 0.1 accum: w = 1 -> 0.9 -> 0.72 -> 0.486
    ws = _quadratic_steps(tf.train.MomentumOptimizer(0.1, 0.9), 3)
    np.testing.assert_allclose([w[0] for w in ws], [0.9, 0.72, 0.486], rtol=1e-5)
    np.testing.assert_allclose([w[1] for w in ws], [-1.8, -1.44, -0.972], rtol=1e-5)
    # nesterov: w -= 0.1 g + 0.1 * 0.9 accum: 1 -> 0.81 -> 0.5751
    ws = _quadratic_steps(tf.train.MomentumOptimizer(0.1, 0.9, use_nesterov=True), 2)
    np.testing.assert_allclose([w[0] for w in ws], [0.81, 0.5751], rtol=1e-5)


def test_adagrad_optimizer():
    # accum starts at 0.1; accum += g^2; w -= 0.1 g / sqrt(accum)
    ws = _quadratic_steps(tf.train.AdagradOptimizer(0.1), 2)
    w1 = 1.0 - 0.1 / math.sqrt(1.1)
    w2 = w1 - 0.1 * w1 / math.sqrt(1.1 + w1 * w1)
    np.testing.assert_allclose([w[0] for w in ws], [w1, w2], rtol=1e-5)
    v1 = -2.0 + 0.2 / math.sqrt(4.1)
    np.testing.assert_allclose(ws[0][1], v1, rtol=1e-5)


def test_minimize_global_step_and_tf1_argument_order():
    w = tf.Variable(np.array([1.0], np.float32))
    gs = tf.Variable(0, trainable=False)
    step = tf.train.GradientDescentOptimizer(0.5).minimize(tf.reduce_sum(w), gs)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for _ in range(3):
            s.run(step)
        assert int(s.run(gs)) == 3
        np.testing.assert_allclose(s.run(w), [-0.5])


def test_reduce_keep_dims_old_spelling():
    x = tf.placeholder(tf.float32, [2, 3])
    X = np.arange(6, dtype=np.float32).reshape(2, 3)
    with tf.Session() as s:
        mx = s.run(tf.reduce_max(x, axis=1, keep_dims=True), {x: X})
        assert mx.shape == (2, 1) and mx[1, 0] == 5.0
        assert s.run(tf.reduce_max(x, keepdims=True), {x: X}).shape == (1, 1)
        assert s.run(tf.reduce_min(x, 0, keep_dims=True), {x: X}).shape == (1, 3)
        assert s.run(tf.reduce_sum(x, 1, keep_dims=True), {x: X}).shape == (2, 1)
        assert s.run(tf.reduce_mean(x, 1, keep_dims=True), {x: X}).shape == (2, 1)


def test_truncated_normal_fetched_as_an_op():
    t = tf.truncated_normal([2000], mean=1.0, stddev=0.5)
    with tf.Session() as s:
        a, b = s.run(t), s.run(t)
    assert a.shape == (2000,) and a.dtype == np.float32
    assert np.all(np.abs(a - 1.0) <= 1.0 + 1e-6) and np.all(np.abs(b - 1.0) <= 1.0 + 1e-6)
    assert not np.array_equal(a, b)                       # redrawn on every run
    assert abs(a.mean() - 1.0) < 0.05 and 0.4 < a.std() < 0.5    # 0.5 * 0.88 truncated


def test_op_seed_is_honoured_per_session():
    r = tf.random_normal([4], seed=7)
    u = tf.random_uniform([4], seed=7)
    same = tf.random_normal([4], seed=7)
    with tf.Session() as s:
        a1, a2 = s.run(r), s.run(r)
        assert not np.array_equal(a1, a2)
        np.testing.assert_array_equal(s.run(same), a1)     # same op seed: same sequence
        u1 = s.run(u)
        assert np.all((u1 >= 0) & (u1 < 1))
    with tf.Session() as s:                                # a new session restarts it
        np.testing.assert_array_equal(s.run(r), a1)
        np.testing.assert_array_equal(s.run(r), a2)
        np.testing.assert_array_equal(s.run(u), u1)


def test_graph_seed_and_seeded_initializers_are_reproducible():
    def build():
        tf.reset_default_graph()
        tf.set_random_seed(42)
        w = tf.Variable(tf.truncated_normal([3, 3], stddev=0.1))
        v = tf.Variable(tf.random_normal([2]))
        with tf.Session() as s:
            s.run(tf.global_variables_initializer())
            return s.run(w), s.run(v), s.run(tf.random_uniform([3]))
    first, second = build(), build()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0][0], first[0][1])


def test_seeded_dropout_is_reproducible():
    x = tf.placeholder(tf.float32, [None, 50])
    w = tf.Variable(np.ones((50, 50), np.float32) * 0.01)
    y = tf.nn.dropout(tf.matmul(x, w), keep_prob=0.5, seed=3)
    step = tf.train.GradientDescentOptimizer(0.0).minimize(tf.reduce_sum(y))
    X = np.ones((4, 50), np.float32)

    def runs():
        with tf.Session() as s:
            s.run(tf.global_variables_initializer())
            out = [s.run([y, step], {x: X})[0] for _ in range(2)]
            return out + [s.run(y, {x: X}) for _ in range(2)]
    first, second = runs(), runs()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])
    assert set(np.unique(first[0]).round(6)) <= {0.0, 1.0}


def test_variables_are_per_session():
    x = tf.placeholder(tf.float32, [None, 1])
    w = tf.Variable(np.zeros((1, 1), np.float32))
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - 3.0 * x))
    step = tf.train.AdamOptimizer(0.1).minimize(loss)
    X = np.ones((4, 1), np.float32)
    a = tf.Session()
    a.run(tf.global_variables_initializer())
    trace_a = []
    for _ in range(3):
        a.run(step, {x: X})
        trace_a.append(float(a.run(w)[0, 0]))
    b = tf.Session()
    with pytest.raises(RuntimeError, match="uninitialized"):
        b.run(w)                           # TF1: a new Session starts uninitialized
    b.run(tf.global_variables_initializer())
    assert float(b.run(w)[0, 0]) == 0.0
    assert float(a.run(w)[0, 0]) == trace_a[-1]          # a keeps its own values
    trace_b = []
    for _ in range(3):                     # Adam's moments and step count start afresh too
        b.run(step, {x: X})
        trace_b.append(float(b.run(w)[0, 0]))
    np.testing.assert_allclose(trace_b, trace_a, rtol=1e-6)
    ref, m, v = [], 0.0, 0.0          # TF1's Adam on d loss / dw = 2 (w - 3)
    for t in range(1, 4):
        g = 2.0 * ((ref[-1] if ref else 0.0) - 3.0)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        lr_t = 0.1 * math.sqrt(1.0 - 0.999 ** t) / (1.0 - 0.9 ** t)
        ref.append((ref[-1] if ref else 0.0) - lr_t * m / (math.sqrt(v) + 1e-8))
    np.testing.assert_allclose(trace_a, ref, rtol=1e-5)
    assert float(a.run(w)[0, 0]) == trace_a[-1]
    a.run(tf.global_variables_initializer())              # re-initialising resets a
    a.run(step, {x: X})
    np.testing.assert_allclose(float(a.run(w)[0, 0]), trace_a[0], rtol=1e-6)
    a.close()
    b.close()


def test_saver_round_trip(tmp_path):
    w = tf.Variable(np.array([[1.0, 2.0]], np.float32), name="w")
    b = tf.Variable(np.zeros(2, np.float32), name="b")
    gs = tf.Variable(0, trainable=False, name="global_step")
    step = tf.train.GradientDescentOptimizer(0.5).minimize(tf.reduce_sum(w * 2.0 + b), gs)
    saver = tf.train.Saver()
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        s.run(step)
        path = saver.save(s, str(tmp_path / "model.ckpt"), global_step=gs)
        assert path.endswith("model.ckpt-1")
        expect = s.run([w, b, gs])
    flat = tl.load(path)                   # a plain safetensors file
    assert set(flat) == {"w", "b", "global_step"}
    with tf.Session() as s:
        saver.restore(s, path)             # no initializer needed after a restore
        got = s.run([w, b, gs])
        for e, g in zip(expect, got):
            np.testing.assert_array_equal(e, g)
        s.run(step)
        np.testing.assert_allclose(s.run(w), [[-1.0, 0.0]])
    with tf.Session() as s:
        with pytest.raises(ValueError, match="shape"):
            tf.train.Saver({"w": b}).restore(s, path)


def test_assign_ops():
    v = tf.Variable(np.ones(2, np.float32))
    double = v.assign(v * 2.0)
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        for _ in range(3):                       # traced, then replayed
            s.run(double)
        np.testing.assert_array_equal(s.run(v), [8.0, 8.0])
        s.run(tf.assign_add(v, [1.0, 2.0]))
        s.run(v.assign_sub(0.5))
        np.testing.assert_array_equal(s.run(v), [8.5, 9.5])
        s.run(tf.assign(v, np.zeros(2, np.float32)))
        np.testing.assert_array_equal(s.run(v), [0.0, 0.0])


def test_learning_rate_placeholder():
    v = tf.Variable(np.ones(2, np.float32))
    lr = tf.placeholder(tf.float32, [])
    step = tf.train.GradientDescentOptimizer(lr).minimize(tf.reduce_sum(v))
    with tf.Session() as s:
        s.run(tf.global_variables_initializer())
        s.run(step, {lr: 0.25})
        s.run(step, {lr: 0.5})                  # the same graph, the new rate
        np.testing.assert_allclose(s.run(v), [0.25, 0.25])


def test_symbolic_tensors_are_not_iterable():
    t = tf.placeholder(tf.float32, [3])
    with pytest.raises(TypeError, match="iterable"):
        list(t)
