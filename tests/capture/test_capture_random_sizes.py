"""Random draws sized from a None dim of input_signature follow that dim when the graph runs
(an inference graph with MC dropout, a policy sampling actions for any batch), in the
process, in a saved graph file, and with the same numbers as eager code drawing from the
same seed."""
import io
import json
import warnings
import zipfile

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.export import GraphFileError

D = tl.distributions
SIG = [tl.TensorSpec((None, 4))]


def _no_retrace(f, sizes=(2, 5, 1, 3)):
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a retrace at other sizes warns
        with tl.no_grad():
            outs = [f(tl.randn(n, 4)) for n in sizes]
    assert f.trace_count == 1
    return outs


@pytest.mark.parametrize("draw,shape", [
    (lambda x: tl.randn(x.shape[0], 3), lambda n: (n, 3)),
    (lambda x: tl.rand(x.shape), lambda n: (n, 4)),
    (lambda x: tl.randn_like(x), lambda n: (n, 4)),
    (lambda x: tl.rand(x.shape[0] // 2 + 1), lambda n: (n // 2 + 1,)),
    (lambda x: tl.randint(0, 7, (2, x.shape[0])), lambda n: (2, n)),
    (lambda x: tl.normal(1.0, 2.0, (x.shape[0] * 2,)), lambda n: (2 * n,)),
    (lambda x: tl.normal(x, 1.0), lambda n: (n, 4)),
    (lambda x: tl.empty(x.shape[0], 2).uniform_(-1.0, 1.0), lambda n: (n, 2)),
    (lambda x: tl.empty(3, x.shape[0]).exponential_(), lambda n: (3, n)),
])
def test_a_draw_sized_from_a_none_dim_follows_it(draw, shape):
    f = tl.function(draw, input_signature=SIG)
    outs = _no_retrace(f)
    assert [tuple(o.shape) for o in outs] == [shape(n) for n in (2, 5, 1, 3)]
    with tl.no_grad():
        a, b = f(tl.zeros(6, 4)), f(tl.zeros(6, 4))
    assert not np.array_equal(a.numpy(), b.numpy())      # drawn anew on every run


def test_the_graph_draws_what_eager_code_draws_from_the_same_seed():
    gen = tl.Generator()

    def fn(x):
        return x * tl.rand(x.shape[0], 1, generator=gen) + tl.randn(x.shape, generator=gen)
    f = tl.function(fn, input_signature=SIG)
    with tl.no_grad():
        gen.manual_seed(0)
        f(tl.ones(2, 4))                    # traced at 2 rows
        x = tl.randn(7, 4)
        gen.manual_seed(5)
        got = f(x)
        gen.manual_seed(5)
        want = fn(x)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert f.trace_count == 1


def test_training_mode_dropout_in_an_inference_graph_follows_the_batch():
    tl.manual_seed(0)
    model = tl.nn.Sequential(tl.nn.Linear(4, 64), tl.nn.Dropout(0.5), tl.nn.Linear(64, 2))
    model.train()                           # Monte Carlo dropout at inference
    hidden = tl.function(lambda x: model[1](model[0](x)), input_signature=SIG)
    outs = _no_retrace(hidden, (3, 40))
    h = outs[1].numpy()
    assert h.shape == (40, 64)
    zero = (h == 0).mean()
    assert 0.35 < zero < 0.65
    with tl.no_grad():
        x = tl.randn(40, 4)
        a, b = hidden(x).numpy(), hidden(x).numpy()
    assert not np.array_equal(a == 0, b == 0)           # a new mask on every run
    both = (a != 0) & (b != 0)
    np.testing.assert_allclose(a[both], b[both], rtol=1e-6)   # the same 2x scaling


@pytest.mark.parametrize("sample", [
    lambda h: D.Categorical(logits=h).sample(),
    lambda h: D.Normal(h, 1.0).sample(),
    lambda h: D.Normal(h, h.exp()).rsample(),
    lambda h: D.Bernoulli(logits=h).sample(),
    lambda h: D.Gamma(h.exp(), 1.0).sample(),
    lambda h: D.Beta(h.exp(), 2.0).sample(),
    lambda h: D.Dirichlet(h.exp()).sample(),
    lambda h: D.MultivariateNormal(h, tl.eye(3)).sample(),
    lambda h: D.Uniform(h, h + 1).sample(),
])
def test_a_policy_samples_for_any_batch_in_one_graph(sample):
    tl.manual_seed(1)
    lin = tl.nn.Linear(4, 3)
    f = tl.function(lambda x: sample(lin(x)), input_signature=SIG)
    outs = _no_retrace(f)
    assert [o.shape[0] for o in outs] == [2, 5, 1, 3]
    assert all(np.isfinite(o.numpy()).all() for o in outs)


def test_a_saved_graph_keeps_the_dynamic_draw(tmp_path):
    tl.manual_seed(0)
    lin = tl.nn.Linear(4, 2)
    f = tl.function(lambda x: lin(x) + tl.randn(x.shape[0], 2), input_signature=SIG)
    with tl.no_grad():
        f(tl.ones(3, 4))
    path = tmp_path / "noisy.tlg"
    tl.save_graph(f, path)
    g = tl.load_graph(path)
    x = tl.randn(9, 4)
    with tl.no_grad():
        y = g(x)
        base = lin(x).numpy()
    assert tuple(y.shape) == (9, 2)
    noise = y.numpy() - base
    assert np.abs(noise).max() > 0 and noise.std() > 0.3     # N(0, 1) noise, 18 draws
    doc = json.loads(zipfile.ZipFile(path).read("graph.json"))
    rnd = next(n for n in doc["graph"]["nodes"] if n["op"] == "random")
    assert rnd["inputs"], "the draw reads the input it takes its batch from"


def _rewrite(src, dst, edit):
    with zipfile.ZipFile(src) as z:
        doc, w = json.loads(z.read("graph.json")), z.read("weights.safetensors")
    edit(next(n for n in doc["graph"]["nodes"] if n["op"] == "random"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("graph.json", json.dumps(doc))
        z.writestr("weights.safetensors", w)
    dst.write_bytes(buf.getvalue())
    return dst


@pytest.mark.parametrize("edit,match", [
    (lambda n: n["attrs"].pop("sizes"), "inputs but no sizes"),
    (lambda n: n["attrs"].update(sizes={"__tuple__": [{"__tuple__": [7, {"__tuple__": [
        "dim", 0, 0]}]}]}), "outside"),
    (lambda n: n["attrs"].update(sizes={"__tuple__": [{"__tuple__": [0, {"__tuple__": [
        "dim", 3, 0]}]}]}), "lack"),
])
def test_a_hostile_dynamic_draw_is_refused(tmp_path, edit, match):
    f = tl.function(lambda x: tl.randn(x.shape[0], 2), input_signature=SIG)
    with tl.no_grad():
        f(tl.ones(3, 4))
    tl.save_graph(f, tmp_path / "a.tlg")
    bad = _rewrite(tmp_path / "a.tlg", tmp_path / "b.tlg", edit)
    with pytest.raises(GraphFileError, match=match):
        tl.load_graph(bad)
