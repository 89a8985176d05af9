"""Node provenance in captured graphs: each node's user line and nn.Module scope
(``graph.node_sources`` / ``graph.node_modules``), in run errors, module pins, graph files,
and size escapes made inside tensorlib."""
import os
import warnings

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.graph.ir import Graph

torch = pytest.importorskip("torch")

HERE = os.path.basename(__file__)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        h = self.enc(x)
        return self.head(h) * 2


def _line(text: str) -> int:
    with open(__file__) as f:
        return next(i for i, ln in enumerate(f, 1) if text in ln and "_line(" not in ln)


def _captured(m, x):
    with tl.no_grad(), tl.capture(x) as g:
        o = m(x)
    g.set_outputs(o)
    return g, o


def test_nodes_record_user_line_and_module_scope():
    torch.manual_seed(0)
    m = Net()
    g, o = _captured(m, tl.randn(3, 4))
    by_op = {}
    for n in g.nodes:
        by_op.setdefault(n.op, []).append(n)
    lin0, lin1 = by_op["linear"]
    assert g.node_modules[lin0.id] == "enc.0"
    assert g.node_modules[by_op["relu"][0].id] == "enc.1"
    assert g.node_modules[lin1.id] == "head"
    assert g.node_modules[by_op["mul"][0].id] == ""        # the outermost module's own op
    assert g.node_sources[lin0.id] == ("h = self.enc(x)", f"{HERE}:{_line('h = self.enc(x)')}")
    assert g.node_sources[by_op["mul"][0].id][1] == f"{HERE}:{_line('return self.head(h) * 2')}"
    # sources (placeholders, variables) are not traced op calls
    assert all(n.id not in g.node_sources for n in g.nodes if n.op in ("placeholder",
                                                                       "variable"))
    # the captured values are still eager's, as torch's
    tm = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for (_, p), tp in zip(m.named_parameters(), tm.parameters()):
            tp.copy_(torch.tensor(p.numpy()))
    x = np.random.default_rng(1).standard_normal((3, 4))
    got = g.run({0: x})
    np.testing.assert_allclose(got.numpy(), 2 * tm(torch.tensor(x, dtype=torch.float32))
                               .detach().numpy(), rtol=1e-5, atol=1e-6)


def _chol(A):
    L = tl.linalg.cholesky(A)
    return L * 2


def test_replayed_function_error_names_node_and_line():
    f = tl.function(_chol)
    f(tl.eye(3, dtype=tl.float64))
    with pytest.raises(Exception) as info:
        f(-tl.eye(3, dtype=tl.float64))
    # the original exception type, as eager's
    with pytest.raises(type(info.value)):
        _chol(-tl.eye(3, dtype=tl.float64))
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "= cholesky" in notes
    assert f"traced at {HERE}:{_line('L = tl.linalg.cholesky(A)')}" in notes
    assert "`L = tl.linalg.cholesky(A)`" in notes
    assert f.trace_count == 1


def test_graph_run_and_loaded_graph_errors_name_the_line(tmp_path):
    A = tl.eye(3, dtype=tl.float64)
    with tl.no_grad(), tl.capture(A) as g:
        L = tl.linalg.cholesky(A)   # the failing line
    g.set_outputs(L)
    with pytest.raises(Exception) as info:
        g.run({0: -np.eye(3)})
    assert f"{HERE}:{_line('# the failing line')}" in "\n".join(info.value.__notes__)
    # a graph document keeps the provenance as plain data, and a loaded graph uses it
    d = g.to_dict()
    assert all(isinstance(k, str) for k in d["node_sources"])
    g2 = Graph.from_json(g.to_json())
    assert g2.node_sources == g.node_sources
    with pytest.raises(type(info.value)) as info2:
        g2.run({0: -np.eye(3)})
    assert f"{HERE}:{_line('# the failing line')}" in "\n".join(info2.value.__notes__)
    path = tmp_path / "chol.tlg"
    tl.save_graph(g, path)
    gm = tl.load_graph(path)
    assert gm.graph.node_sources == g.node_sources
    with tl.no_grad(), pytest.raises(type(info.value)) as info3:
        gm(tl.tensor(-np.eye(3)))
    assert "= cholesky" in "\n".join(info3.value.__notes__)


def test_provenance_document_is_checked_and_optional():
    A = tl.eye(2)
    with tl.no_grad(), tl.capture(A) as g:
        y = A * 3
    g.set_outputs(y)
    d = g.to_dict()
    d.pop("node_sources")
    g2 = Graph.from_dict(d)     # files without it load
    assert g2.node_sources == {} and g2.node_modules == {}
    d["node_sources"] = {"1": "t.py:3"}
    with pytest.raises(ValueError, match="node_sources"):
        Graph.from_dict(d)
    d["node_sources"] = {}
    d["node_modules"] = {"1": 3}
    with pytest.raises(ValueError, match="node_modules"):
        Graph.from_dict(d)


def test_optimize_passes_keep_provenance():
    x = tl.randn(4, 4)
    with tl.no_grad(), tl.capture(x) as g:
        y = ((x * 2) + 1).exp()      # an elementwise chain: fused
    g.set_outputs(y)
    g.optimize()
    fused = [n for n in g.nodes if n.op == "fused"]
    assert fused
    assert g.node_sources[fused[0].id][1] == f"{HERE}:{_line('an elementwise chain: fused')}"


def test_place_pins_a_module_by_object_and_by_name():
    m = Net()
    x = tl.randn(3, 4)
    for key in (m.enc, "enc"):
        g, o = _captured(m, x)
        tl.graph.place(g, ["cpu:0", "cpu:1"], pins={key: "cpu:1"})
        for n in g.nodes:
            if g.node_modules.get(n.id, "").startswith("enc."):
                assert n.device == "cpu:1", (n, key)
        assert any(n.device == "cpu:1" for n in g.nodes if n.op == "relu")
        np.testing.assert_allclose(g.run({0: x}).numpy(), m(x).detach().numpy(), rtol=1e-6)
    # the innermost module's pin wins over an outer one
    g, _ = _captured(m, x)
    tl.graph.place(g, ["cpu:0", "cpu:1"], pins={m: "cpu:0", m.enc[1]: "cpu:1"})
    relu = next(n for n in g.nodes if n.op == "relu")
    lin0 = next(n for n in g.nodes if n.op == "linear")
    assert relu.device == "cpu:1" and lin0.device in ("cpu", "cpu:0")


def test_module_pin_errors_say_what_pins_accept():
    m = Net()
    g, _ = _captured(m, tl.randn(3, 4))
    with pytest.raises(ValueError, match="no forward of it ran"):
        tl.graph.place(g, ["cpu:0", "cpu:1"], pins={nn.Linear(2, 2): "cpu:1"})
    with pytest.raises(ValueError, match=r"names no node.*'enc\.0'"):
        tl.graph.place(g, ["cpu:0", "cpu:1"], pins={"decoder": "cpu:1"})
    with pytest.raises(ValueError, match="pins accept"):
        tl.graph.place(g, ["cpu:0", "cpu:1"], pins={tl.randn(2): "cpu:1"})


def test_placed_graph_error_names_the_traced_line():
    A = tl.eye(3, dtype=tl.float64)
    with tl.no_grad(), tl.capture(A) as g:
        B = A * 2
        L = tl.linalg.cholesky(B)   # placed failing line
    g.set_outputs(L)
    tl.graph.place(g, ["cpu:0", "cpu:1"], pins={B: "cpu:0", L: "cpu:1"})
    with pytest.raises(Exception) as info:
        g.run({0: -np.eye(3)})
    notes = "\n".join(info.value.__notes__)
    assert f"{HERE}:{_line('# placed failing line')}" in notes and "cpu:1" in notes


def _library_mean(x):
    # compiled below as if it were a file of tensorlib: it reads the size itself
    n = x.shape[0]
    return x.var(0) * (n / (n - 1))       # Bessel's factor, as a batch norm's


def test_size_escape_inside_tensorlib_is_a_library_limitation():
    import tensorlib as _tl
    root = os.path.dirname(os.path.abspath(_tl.__file__))
    code = _library_mean.__code__.replace(co_filename=os.path.join(root, "fake_layer.py"))
    lib_fn = type(_library_mean)(code, globals(), "_library_mean")

    def user(x):
        return lib_fn(x)        # the user's call

    f = tl.function(user, input_signature=[tl.TensorSpec((None, 3))])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        f(tl.randn(4, 3))
    text = " ".join(str(x.message) for x in w)
    assert "inside tensorlib" in text and "_library_mean" in text
    assert f"{HERE}:{_line('# the user' + chr(39) + 's call')}" in text
    assert "tensorlib limitation" in text

    # the user's own conversion still blames the user's line, with the usual advice
    def mine(x):
        return x.sum() / x.shape[0]

    f2 = tl.function(mine, input_signature=[tl.TensorSpec((None, 3))])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        f2(tl.randn(4, 3))
    text = " ".join(str(x.message) for x in w)
    assert "tensorlib limitation" not in text and "x.mean()" in text
