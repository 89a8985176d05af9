"""A graph file keeps every state_dict name of a tied weight: the loaded graph's
state_dict() loads strictly into the model (an NLP trial's embedding/output tie)."""
from __future__ import annotations

import numpy as np

import tensorlib as tl


class Tied(tl.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = tl.nn.Embedding(10, 4)
        self.head = tl.nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, i):
        return self.head(self.emb(i))


def test_tied_weights_survive_save_load_and_resave(tmp_path):
    m = Tied().eval()
    f = tl.function(m)
    idx = tl.tensor([[1, 2, 3]])
    with tl.no_grad():
        y = f(idx)
    p = tmp_path / "tied.tlg"
    tl.save_graph(f, p)
    g = tl.load_graph(p)
    sd = g.state_dict()
    assert sorted(sd) == sorted(m.state_dict())
    assert sd["head.weight"] is sd["emb.weight"]       # one tensor, not a copy
    assert len(g.parameters()) == 1
    m2 = Tied()
    m2.load_state_dict(sd)                              # strict
    np.testing.assert_allclose(m2(idx).detach().numpy(), y.numpy(), rtol=1e-6)
    tl.save_graph(g, p)                                 # re-saved: the alias goes along
    assert sorted(tl.load_graph(p).state_dict()) == ["emb.weight", "head.weight"]


def test_untied_model_has_no_aliases(tmp_path):
    m = tl.nn.Sequential(tl.nn.Linear(3, 2), tl.nn.ReLU()).eval()
    f = tl.function(m)
    with tl.no_grad():
        f(tl.randn(2, 3))
    tl.save_graph(f, tmp_path / "m.tlg")
    assert sorted(tl.load_graph(tmp_path / "m.tlg").state_dict()) == ["0.bias", "0.weight"]
