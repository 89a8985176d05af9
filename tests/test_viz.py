"""Drawing the tape."""
import matplotlib

import tensorlib as tl
from tensorlib.autograd import viz

matplotlib.use("Agg")


def test_dot_lists_every_node_and_edge():
    w = tl.randn(3, 2, requires_grad=True)
    x = tl.randn(4, 3)
    loss = (x @ w).tanh().sum()
    dot = viz.to_dot(loss)
    for name in ("Matmul", "Tanh", "Sum", "param (3, 2)", "const (4, 3)"):
        assert name in dot
    assert dot.count("->") == 4


def test_draw_returns_axes():
    a = tl.randn(2, requires_grad=True)
    ax = viz.draw((a * a + a).exp().mean())
    assert len([t for t in ax.texts if t.get_text()]) == 5  # arrows are empty annotations
