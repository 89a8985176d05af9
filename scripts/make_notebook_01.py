"""Writes notebooks/01_tensors_and_autograd.ipynb (run: python scripts/make_notebook_01.py)."""
from pathlib import Path

import nbformat as nbf

cells = [
    ("md", """# 01 · Tensors and autograd

tensorlib runs every op at once (eager mode) and records what it did on a *tape*.
`backward()` walks the tape in reverse to compute gradients. This notebook covers:
tensors and broadcasting, the tape of a small computation drawn as a picture,
gradients of gradients, and a custom differentiable op."""),
    ("code", """import numpy as np
import tensorlib as tl
tl.manual_seed(0)"""),
    ("md", "## Tensors, dtypes and broadcasting\nPython floats become float32; NumPy's broadcasting rules apply."),
    ("code", """x = tl.tensor([[1., 2., 3.], [4., 5., 6.]])
b = tl.tensor([10., 20., 30.])
print(x.shape, x.dtype)
y = x + b            # (2, 3) + (3,) -> (2, 3)
print(y)
col = tl.tensor([[1.], [2.]])
print(x * col)       # (2, 3) * (2, 1)
assert y.shape == (2, 3) and y.dtype == tl.float32
assert (x * 2.0).dtype == tl.float32   # a Python float does not promote to float64"""),
    ("code", """# zero-copy interop with NumPy
a = np.arange(6, dtype=np.float32).reshape(2, 3)
t = tl.from_numpy(a)
t += 1
print(a)
assert a[0, 0] == 1.0"""),
    ("md", "## The tape\nEvery op on a tensor that requires grad records a node; `grad_fn` is the node that made a tensor."),
    ("code", """w = tl.randn(3, 2, requires_grad=True)
inp = tl.randn(4, 3)
h = (inp @ w).tanh()
loss = (h * h).mean()
print(loss)
print(loss.grad_fn, loss.grad_fn.next_functions)"""),
    ("code", """from tensorlib.autograd import viz
viz.draw(loss);"""),
    ("code", """loss.backward()
print(w.grad)
# check against finite differences
eps = 1e-3
w0 = w.detach().numpy().copy()
def f(wv):
    hv = np.tanh(inp.numpy() @ wv)
    return (hv * hv).mean()
num = np.zeros_like(w0)
for i in range(3):
    for j in range(2):
        d = np.zeros_like(w0); d[i, j] = eps
        num[i, j] = (f(w0 + d) - f(w0 - d)) / (2 * eps)
print(num)
assert np.allclose(w.grad.numpy(), num, atol=1e-4)"""),
    ("md", "## Gradients of gradients\n`tl.grad(..., create_graph=True)` records the backward pass too, so it can be differentiated again."),
    ("code", """x = tl.tensor([0.5, 1.0, 2.0], dtype=tl.float64, requires_grad=True)
y = (x ** 3).sum()
(g1,) = tl.grad(y, [x], create_graph=True)    # 3x^2
(g2,) = tl.grad(g1.sum(), [x], create_graph=True)  # 6x
(g3,) = tl.grad(g2.sum(), [x])                # 6
print(g1, g2, g3, sep="\\n")
assert np.allclose(g3.numpy(), 6.0)"""),
    ("md", "## A custom op\nSubclass `tl.autograd.Function`; the backward written with tensorlib ops is itself differentiable. `forward` runs without recording, so a tensor made there (`y` below) has no history: save the inputs (or the returned outputs) and recompute the rest in `backward`, or the second derivative misses its terms, which `gradgradcheck` reports."),
    ("code", """class SmoothAbs(tl.autograd.Function):
    \"\"\"sqrt(x^2 + 1) - 1, a smooth |x|.\"\"\"
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x * x + 1).sqrt() - 1

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x / (x * x + 1).sqrt()

x = tl.tensor([-2.0, 0.0, 3.0], dtype=tl.float64, requires_grad=True)
assert tl.autograd.gradcheck(SmoothAbs.apply, [x])
assert tl.autograd.gradgradcheck(SmoothAbs.apply, [x])
out = SmoothAbs.apply(x)
out.sum().backward()
print(out, x.grad)"""),
    ("md", "## No grad, in-place updates\nParameter updates happen under `tl.no_grad()`; a tensor saved for backward and then changed in place is caught."),
    ("code", """p = tl.randn(3, requires_grad=True)
for step in range(50):
    loss = ((p - 2.0) ** 2).sum()
    loss.backward()
    with tl.no_grad():
        p -= 0.1 * p.grad
    p.grad = None
print(p)
assert np.allclose(p.numpy(), 2.0, atol=1e-3)

y = p.exp()
s = y.sum()
with tl.no_grad():
    y += 1   # y was saved by exp for its backward
try:
    s.backward()
except RuntimeError as e:
    print("caught:", str(e)[:80], "...")"""),
]

nb = nbf.v4.new_notebook()
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
            for kind, src in cells]
out = Path(__file__).resolve().parent.parent / "notebooks" / "01_tensors_and_autograd.ipynb"
out.parent.mkdir(exist_ok=True)
nbf.write(nb, out)
print("wrote", out)
