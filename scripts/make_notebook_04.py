"""Write notebooks/04_graph_capture.ipynb (graph capture): python scripts/make_notebook_04.py

The notebook captures a training step, shows its graph (listing and picture), times the
captured step against eager, shows the guards at work, and runs the seed's Session-style
code through tensorlib.compat.v1. Key results are asserted in the cells.
"""
from __future__ import annotations

import os

import nbformat as nbf

CELLS = [
    ("md", """# 04 · Graph capture: from the tape to a dataflow graph

tensorlib runs every op eagerly and records a tape for autograd. `tl.function` and
`tl.capture()` listen to the same stream of op calls and record a **static dataflow
graph**: nodes are ops, edges are typed tensors, variables hold state, and a whole
training step (forward, backward and update) becomes one graph, as `train_op` was in
the seed. Later calls replay the optimised graph without Python dispatch or a tape.

This notebook runs on the CPU, also on a machine with a GPU: its tensors stay on the
host. A captured step runs where its tensors live, so on a GPU too (notebooks 08 and 09
capture their training steps on `DEVICE`)."""),
    ("code", """import time
import numpy as np
import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F

tl.manual_seed(0)
rng = np.random.default_rng(0)
mnist = tl.data.mnist.load(one_hot=False, verbose=False)
X = mnist.train.images.astype(np.float32)
Y = mnist.train.labels.astype(np.int64)
X.shape, Y.shape"""),
    ("md", """## Capture a training step

The step calls `loss.backward()` and `opt.step()`: under capture the backward engine
runs the registry's vjp rules, which record gradient nodes, and the optimizer's
in-place updates become `assign` nodes on the model's variables."""),
    ("code", """model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
opt = tl.optim.SGD(model.parameters(), lr=0.1)

def train_step(x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss

step = tl.function(train_step)
xb, yb = tl.tensor(X[:64]), tl.tensor(Y[:64])
losses = [float(step(xb, yb)) for _ in range(3)]
print(losses, "traces:", step.trace_count, step.retrace_reasons)
g = step.graphs[-1]
print(g)"""),
    ("md", """The listing reads like a jaxpr: one line per node, `%value:type = op[attrs] inputs`.
`sgd_update` lines are the parameter updates: the fusion pass recognised
`p - lr * grad` and maps it onto the in-place Cython kernel. The first retrace
happened because `p.grad` went from `None` to a tensor after the first call: the
graph is specialised on that state, and the guard noticed."""),
    ("code", """counts = g.op_counts()
# 8 assigns: 4 parameter updates (the sgd_update lines) and 4 writes of p.grad
assert counts.get("assign", 0) == 8 and ("matmul" in counts or "linear" in counts)
assert step.trace_count <= 2
g   # the picture (needs Graphviz's `dot`; print(g) is the text form)"""),
    ("md", """## Captured vs eager: the same numbers

Train two copies of the model from the same start, one eagerly, one captured; the
losses agree. The captured step is timed against the eager one: replay skips Python
dispatch and the tape, which pays off for steps made of many small ops (the LSTM of
`benchmarks/`, W7: about 1.6x), while a step this small is dominated by its two matrix
products, so expect a ratio near 1 here."""),
    ("code", """def make():
    tl.manual_seed(1)
    m = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return m, tl.optim.SGD(m.parameters(), lr=0.1)

(m1, o1), (m2, o2) = make(), make()

def step_for(m, o):
    def s(x, y):
        o.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        return loss
    return s

eager, captured = step_for(m1, o1), tl.function(step_for(m2, o2))
batches = [(tl.tensor(X[i:i + 64]), tl.tensor(Y[i:i + 64])) for i in range(0, 64 * 40, 64)]
le = [float(eager(x, y)) for x, y in batches]
lc = [float(captured(x, y)) for x, y in batches]
assert np.allclose(le, lc, atol=1e-4), (le[:3], lc[:3])

def timed(fn, n=3):
    best = []
    for _ in range(n):
        t0 = time.perf_counter()
        for x, y in batches:
            fn(x, y)
        best.append((time.perf_counter() - t0) / len(batches) * 1e3)
    return min(best)

te, tc = timed(eager), timed(captured)
print(f"eager {te:.2f} ms/step, captured {tc:.2f} ms/step, speed-up {te / tc:.2f}x")
print("final loss:", lc[-1], "first:", lc[0])
assert lc[-1] < lc[0]"""),
    ("md", """## State the step advances: Adam's step count, a scheduled learning rate

What a step changes on every call must live in tensors the graph reads and updates,
or every call would retrace. Adam's step count is a 0-d tensor advanced in place (as in
PyTorch), so a captured Adam step traces once more for its new buffers and then replays.
A learning rate that a schedule changes every step is a Python float the graph would
freeze (a guard notices and retraces each step); given as a tensor, `lr=tl.tensor(...)`,
the scheduler updates it in place and the graph reads its current value."""),
    ("code", """tl.manual_seed(2)
m3 = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
opt3 = tl.optim.Adam(m3.parameters(), lr=tl.tensor(3e-3))
sched = tl.optim.lr_scheduler.ExponentialLR(opt3, gamma=0.95)

@tl.function
def adam_step(x, y):
    opt3.zero_grad()
    loss = F.cross_entropy(m3(x), y)
    loss.backward()
    opt3.step()
    return loss

la = []
for x, y in batches[:20]:
    la.append(float(adam_step(x, y)))
    sched.step()
print("losses", [round(v, 3) for v in la[::5]], "lr now", sched.get_last_lr())
print("traces:", adam_step.trace_count, "step count:", int(opt3.state[m3[0].weight]["step"]))
assert adam_step.trace_count <= 2 and la[-1] < la[0]
assert int(opt3.state[m3[0].weight]["step"]) == 20"""),
    ("md", """## The compiler rewrites a whole step: a character LSTM

A captured step is more than a replay. For a recurrent model the graph sees all time steps
at once, so it can rewrite the forward: the input projection moves into the embedding
table (one small GEMM instead of one per step), the per-step output layers and losses
become one of each. It then derives the backward again from the rewritten forward with
the same vjp rules (`g.gradients`). That is done only where it provably equals what
the tape computed (no hooks, no `detach()` in the way, ...); the numbers agree with the
eager step."""),
    ("code", """text = "the quick brown fox jumps over the lazy dog. " * 8
vocab = sorted(set(text))
ids = np.array([vocab.index(ch) for ch in text])
V, E, H, T, B = len(vocab), 8, 32, 12, 8
starts = np.arange(B) * T
xs = tl.tensor(np.stack([ids[s:s + T] for s in starts]))
ys = tl.tensor(np.stack([ids[s + 1:s + T + 1] for s in starts]))

def make_lm():
    tl.manual_seed(3)
    emb, cell, out = nn.Embedding(V, E), nn.LSTMCell(E, H), nn.Linear(H, V)
    params = list(emb.parameters()) + list(cell.parameters()) + list(out.parameters())
    opt = tl.optim.SGD(params, lr=0.5)

    def step(x, y):
        h = c = tl.zeros(B, H)
        loss = 0.0
        for t in range(T):
            h, c = cell(emb(x[:, t]), (h, c))
            loss = loss + F.cross_entropy(out(h), y[:, t])
        loss = loss * (1.0 / T)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step

eager_lm, captured_lm = make_lm(), tl.function(make_lm())
le = [float(eager_lm(xs, ys)) for _ in range(30)]
lc = [float(captured_lm(xs, ys)) for _ in range(30)]
counts = captured_lm.graphs[-1].op_counts()
plain = tl.function(make_lm(), optimize=False)
plain(xs, ys)
before = plain.graphs[-1].op_counts()
for op in ("linear", "cross_entropy", "embedding_grad"):
    print(f"{op:>15}: {before.get(op, 0):3d} nodes recorded -> {counts.get(op, 0):3d} after the rewrites")
print("loss", round(lc[0], 3), "->", round(lc[-1], 3))
assert np.allclose(le, lc, rtol=1e-4), (le[-3:], lc[-3:])
assert counts["cross_entropy"] == 1 and before["cross_entropy"] == T
assert lc[-1] < lc[0]"""),
    ("md", """## Never silently wrong

Reading a traced value into Python would freeze it into the graph, so it raises and
says what to do instead. Python values the code reads (arguments, globals, module
attributes) are guarded: a change retraces, with the reason."""),
    ("code", """@tl.function
def clipped(x):
    if x.sum() > 0:          # a Python branch on a tensor value
        return x
    return -x

try:
    clipped(tl.ones(3))
except tl.graph.CaptureError as e:
    print("CaptureError:", str(e)[:160], "...")

@tl.function
def clipped(x):
    return tl.where(x.sum() > 0, x, -x)   # the branch as a tensor op: one graph

print(clipped(tl.ones(3)), clipped(-tl.ones(3)), "traces:", clipped.trace_count)
assert clipped.trace_count == 1

SCALE = 2.0
@tl.function
def scale(x):
    return x * SCALE
print(scale(tl.ones(2)))
SCALE = 3.0
print(scale(tl.ones(2)), scale.retrace_reasons)
assert float(scale(tl.ones(2))[0]) == 3.0"""),
    ("md", """## One graph for any batch size; symbolic gradients

`input_signature` with `None` dims gives one graph for every batch size (shapes are
propagated with each op's `infer`). `g.gradients(loss, wrt)` adds gradient nodes to a
captured graph from the same vjp rules."""),
    ("code", """lin = nn.Linear(784, 10)
predict = tl.function(lambda x: F.softmax(lin(x), axis=1).argmax(axis=1),
                      input_signature=[tl.TensorSpec((None, 784))])
for n in (1, 7, 100):
    assert predict(tl.tensor(X[:n])).shape == (n,)
print(predict.trace_count, predict.graphs[0].inputs)
assert predict.trace_count == 1

x = tl.tensor(X[:8])
with tl.capture(x) as g2:
    out = (lin(x).tanh() ** 2).mean()
(gw,) = g2.gradients(out, [lin.weight])
print(g2)"""),
    ("md", """## Placing a graph over devices

The whitepaper's model parallelism: a captured graph is placed over several devices and
each device runs its part at once, with Send/Recv pairs on the edges between them.
`cpu:0` and `cpu:1` are virtual CPU devices (a thread each), so this runs anywhere; on a
machine with GPUs the same code takes `cuda:0`, `cuda:1`. While capturing, a
`with tl.device(...)` block pins the ops in it; the placer puts the rest where its cost
model says they finish soonest, keeps each variable with the ops that update it, and
moves each value once per device that reads it."""),
    ("code", """towers = [nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
          for _ in range(2)]
xb = tl.tensor(mnist.train.images[:128])

with tl.no_grad(), tl.capture(xb) as g3:
    with tl.device("cpu:1"):
        left = towers[0](xb)       # pinned: the trace runs as usual, the pin is recorded
    logits = left + towers[1](xb)
g3.set_outputs(logits)

placement = tl.graph.place(g3, ["cpu:0", "cpu:1"])
print(placement)
print(g3)"""),
    ("md", """`Graph.run` now runs one subgraph per device. Printing them shows the `send` right
after the value is made and the `recv` before its first reader on the other device:"""),
    ("code", """out = g3.run({xb: xb})
with tl.no_grad():
    eager = towers[0](xb) + towers[1](xb)
assert out.device == tl.device(placement.assignment[g3.outputs[0].node.id])
assert np.allclose(out.numpy(), eager.numpy(), atol=1e-5)
assert sum(c > 0 for c in placement.counts().values()) == 2
plan = next(p for p in g3._plans.values() if hasattr(p, "partitions"))
for part in plan.partitions:
    print(part.graph)"""),
    ("md", """`tl.function(step, devices=["cpu:0", "cpu:1"])` places every graph it traces, a
whole training step included; `tl.graph.data_parallel(step_graph, devices)` turns a
captured training step into one replica per device with averaged gradients; after
`tl.distributed.init(num_workers=2)` the devices may be Ray workers,
`"/worker:0/cpu:0"`. `python benchmarks/placement.py` times two towers and a data-parallel
step on one device and on two."""),
    ("md", """## The seed's Session-style code

`tensorlib.compat.v1` builds the same graphs behind TF1's placeholder/Variable/Session
API: the seed's "MNIST for ML beginners" runs with only the import line (and the data
loader) changed."""),
    ("code", """import tensorlib.compat.v1 as tf

class Mnist:                     # the offline sample, with the tutorial's one-hot labels
    def __init__(self, ds):
        self.ds = ds
    def next_batch(self, n):
        return self.ds.next_batch(n)
data = tl.data.mnist.load(one_hot=True, verbose=False)
class mnist:                     # noqa: N801  (the tutorial's name)
    train, test = Mnist(data.train), data.test

x = tf.placeholder(tf.float32, [None, 784])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))
y = tf.nn.softmax(tf.matmul(x, W) + b)
y_ = tf.placeholder(tf.float32, [None, 10])
cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(cross_entropy)

sess = tf.InteractiveSession()
tf.global_variables_initializer().run()
for _ in range(300):
    batch_xs, batch_ys = mnist.train.next_batch(100)
    sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})

correct_prediction = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
acc = sess.run(accuracy, feed_dict={x: mnist.test.images, y_: mnist.test.labels})
print("test accuracy", acc)
assert acc > 0.8"""),
    ("code", """sess.graph_for(train_step, {x: batch_xs, y_: batch_ys})   # the graph behind sess.run"""),
]


def main() -> None:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    for kind, src in CELLS:
        nb.cells.append(nbf.v4.new_markdown_cell(src) if kind == "md"
                        else nbf.v4.new_code_cell(src))
    for n, cell in enumerate(nb.cells):
        cell.id = f"cell-{n:02d}"  # stable ids keep regenerated notebooks diff-free
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "notebooks", "04_graph_capture.ipynb")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nbf.write(nb, path)
    print("wrote", path)


if __name__ == "__main__":
    main()
