"""Writes notebooks/06_deploy_and_finetune.ipynb (run: python scripts/make_notebook_06.py)."""
from pathlib import Path

import nbformat as nbf

cells = [
    ("md", """# 06 · Deploy and fine-tune

A trained model leaves the process that made it. This notebook:

1. trains a small MNIST classifier on the digits 0-4 (on the GPU when there is one),
2. captures its inference graph and exports it twice: tensorlib's own graph file
   (`tl.save_graph`: JSON graph + safetensors weights in one zip, no pickle) and ONNX,
3. loads the graph file in a **fresh Python process** that has none of this notebook's
   code, and runs the ONNX file in **onnxruntime**; all three predictions agree,
4. imports the ONNX model back with `tl.onnx.load` (as if it came from elsewhere) and
   retrains only its last layer on **new classes**, the digits 5-9."""),
    ("code", """import json, os, subprocess, sys, tempfile
import numpy as np
import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn
tl.manual_seed(0)
# the GPU when there is one; TENSORLIB_DEVICE=cpu (or cuda:1, ...) overrides
DEVICE = os.environ.get("TENSORLIB_DEVICE") or ("cuda" if tl.cuda.is_available() else "cpu")
print("device:", DEVICE)
work = tempfile.mkdtemp(prefix="tl06_")
mnist = tl.data.mnist.load(None, test_size=1000, seed=0)
Xtr, ytr = mnist.train.images, mnist.train.label_ids
Xte, yte = mnist.test.images, mnist.test.label_ids
old_tr, old_te = ytr < 5, yte < 5
print(Xtr.shape, "train images;", old_tr.sum(), "of them are digits 0-4")"""),
    ("md", """## Train a classifier for the digits 0-4
The model and every batch go to `DEVICE`; `.numpy()` brings results back to the host."""),
    ("code", """model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                      nn.Linear(256, 5)).to(DEVICE)

def fit(net, params, X, y, epochs, lr=1e-3, batch=64, seed=0, device=DEVICE):
    opt = tl.optim.Adam(params, lr=lr)
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        for i in np.array_split(rng.permutation(len(X)), max(len(X) // batch, 1)):
            loss = F.cross_entropy(net(tl.tensor(X[i]).to(device)), tl.tensor(y[i]).to(device))
            opt.zero_grad(); loss.backward(); opt.step()
            losses.append(float(loss.item()))
    return losses

losses = fit(model, model.parameters(), Xtr[old_tr], ytr[old_tr], epochs=4)
model.eval()
with tl.no_grad():
    acc = float((model(tl.tensor(Xte[old_te]).to(DEVICE)).numpy().argmax(1) == yte[old_te]).mean())
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; test accuracy on 0-4: {acc:.3f}")
assert acc > 0.9"""),
    ("md", """## Capture and export
`tl.function` with a `None` batch dimension captures one graph for every batch size.
The graph goes to a `.tlg` file and to ONNX (the `None` dim becomes a dynamic axis).
The trained model comes back to the CPU first: the deployment targets below (a plain
Python process, onnxruntime's CPU provider) run on the host."""),
    ("code", """model.cpu()
predict = tl.function(lambda x: model(x), input_signature=[tl.TensorSpec((None, 784))])
g = predict.get_graph(tl.tensor(Xte[:2]))
print(g)
tl.save_graph(g, os.path.join(work, "digits.tlg"))
g.to_onnx(os.path.join(work, "digits.onnx"), opset=17, input_names=["x"], output_names=["logits"])
for f in ("digits.tlg", "digits.onnx"):
    print(f, os.path.getsize(os.path.join(work, f)), "bytes")"""),
    ("code", """# what the command-line tool sees in each file
for f in ("digits.tlg", "digits.onnx"):
    r = subprocess.run([sys.executable, "-m", "tensorlib.cli", "inspect", os.path.join(work, f)],
                       capture_output=True, text=True)
    print("\\n".join(r.stdout.splitlines()[:8]), "\\n")
    assert r.returncode == 0"""),
    ("md", """## Load in a fresh process, run in onnxruntime
The child process imports tensorlib and NumPy only: the model's Python code is not there,
the file carries everything (and loading it never runs code from the file)."""),
    ("code", """x = Xte[old_te][:300]
np.save(os.path.join(work, "x.npy"), x)
child = f'''
import sys, numpy as np, tensorlib as tl
g = tl.load_graph({os.path.join(work, "digits.tlg")!r})
with tl.no_grad():
    y = g(np.load({os.path.join(work, "x.npy")!r})).numpy()
np.save({os.path.join(work, "native.npy")!r}, y)
print("child process ran", g)
'''
r = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
print(r.stdout, r.stderr[-500:])
assert r.returncode == 0
native = np.load(os.path.join(work, "native.npy"))

import onnxruntime as ort
sess = ort.InferenceSession(os.path.join(work, "digits.onnx"), providers=["CPUExecutionProvider"])
onnx_out = sess.run(None, {"x": x})[0]
with tl.no_grad():
    eager = model(tl.tensor(x)).numpy()
print("max |eager - native|:", np.abs(eager - native).max())
print("max |eager - onnxruntime|:", np.abs(eager - onnx_out).max())
assert np.allclose(native, eager, atol=1e-5) and np.allclose(onnx_out, eager, atol=1e-4)
assert (native.argmax(1) == eager.argmax(1)).all() and (onnx_out.argmax(1) == eager.argmax(1)).all()"""),
    ("md", """## Import an ONNX model and retrain its last layer on new classes
`tl.onnx.load` turns the ONNX file into a tensorlib graph whose weights are trainable
tensors. We freeze everything except the last layer and teach it the digits 5-9 (as labels
0-4): the features learned on 0-4 are reused, only 1285 numbers are trained (a linear
probe: expect about 0.8 accuracy, from chance before). This part runs on the CPU, where
`tl.onnx.load` puts the weights by default (`tl.onnx.load(path, device="cuda")`, or
`.to("cuda")` on the imported graph, would put them on the GPU)."""),
    ("code", """imported = tl.onnx.load(os.path.join(work, "digits.onnx"))
print(imported)
for name, p in imported.named_parameters():
    print(f"  {name}: {tuple(p.shape)}")
last = [n for n, _ in imported.named_parameters()][-2:]      # the last Linear's weight, bias
for name, p in imported.named_parameters():
    p.requires_grad_(name in last)
head = imported.parameters()
frozen_before = {k: v.numpy().copy() for k, v in imported.state_dict().items() if k not in last}
new_tr, new_te = ~old_tr, ~old_te
with tl.no_grad():
    before = float((imported(Xte[new_te]).numpy().argmax(1) == yte[new_te] - 5).mean())
losses = fit(imported, head, Xtr[new_tr], ytr[new_tr] - 5, epochs=10, lr=1e-2, device="cpu")
with tl.no_grad():
    after = float((imported(Xte[new_te]).numpy().argmax(1) == yte[new_te] - 5).mean())
print(f"digits 5-9: accuracy {before:.3f} before, {after:.3f} after retraining the last layer")
print(f"loss {losses[0]:.3f} -> {np.mean(losses[-10:]):.3f}")
assert np.mean(losses[-10:]) < 0.5 * losses[0]
assert after > 0.7 and after > before + 0.3
for k, v in frozen_before.items():      # the rest of the network did not move
    assert np.array_equal(imported[k].numpy(), v)"""),
    ("md", """The fine-tuned network is a graph too: save it and it deploys the same way."""),
    ("code", """tl.save_graph(imported, os.path.join(work, "digits_5_9.tlg"))
again = tl.load_graph(os.path.join(work, "digits_5_9.tlg"))
with tl.no_grad():
    assert np.allclose(again(Xte[new_te][:50]).numpy(), imported(Xte[new_te][:50]).numpy())
print("fine-tuned graph saved and reloaded")"""),
]

nb = nbf.v4.new_notebook()
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
            for kind, src in cells]
for n, cell in enumerate(nb.cells):
    cell.id = f"cell-{n:02d}"  # stable ids keep regenerated notebooks diff-free
out = Path(__file__).resolve().parent.parent / "notebooks" / "06_deploy_and_finetune.ipynb"
out.parent.mkdir(exist_ok=True)
nbf.write(nb, out)
print("wrote", out)
