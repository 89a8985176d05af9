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


def test_a_graph_name_with_quotes_still_draws():
    import shutil
    x = tl.ones(2)
    with tl.capture(x, name='step "v1" \\ a') as g:
        y = (x * 2).sum()
    g.set_outputs(y)
    from tensorlib.graph.viz import to_dot
    assert to_dot(g).splitlines()[0] == 'digraph "step \\"v1\\" \\\\ a" {'
    if shutil.which("dot"):
        import subprocess
        subprocess.run(["dot", "-Tsvg"], input=to_dot(g), text=True, check=True,
                       capture_output=True)
