"""Trial 19 data-pipeline findings against PyTorch: the get_batch fast path never bypasses user
code, TensorDataset keeps autograd, Subset.indices as given, loader.sampler sets the order,
lazy (endless) samplers, timeouts with stuck workers, shared persistent iterators, MNIST uint8,
__getitems__ through Subset/StackDataset, len(iter(loader)), worker_init_fn errors, module
paths, argument validation."""
import contextlib
import itertools
import json
import signal
import struct
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
td = torch.utils.data
D = tl.data
LIBS = ((tl, D), (torch, td))


@contextlib.contextmanager
def _deadline(seconds: float):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def boom(*_):
        raise TimeoutError(f"test still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, boom)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _py(b):
    """A batch as plain Python data, whichever library made it."""
    if isinstance(b, (tl.Tensor, torch.Tensor)):
        return b.tolist()
    if isinstance(b, dict):
        return {k: _py(v) for k, v in b.items()}
    if isinstance(b, (list, tuple)):
        return type(b)(_py(v) for v in b) if not hasattr(b, "_fields") else list(map(_py, b))
    return b


# ---- 1: the fast path never bypasses __getitem__ / __getitems__ ------------------------------

def _wrapper_cls(M):
    class Wrap(M.Dataset):          # a transform wrapper that forwards attributes
        def __init__(self, base):
            self.base = base

        def __len__(self):
            return len(self.base)

        def __getitem__(self, i):
            x, = self.base[i]
            return x + 1000

        def __getattr__(self, k):
            return getattr(self.base, k)
    return Wrap


def _aug_cls(M):
    class Aug(M.TensorDataset):
        def __getitems__(self, idx):
            return [(self.tensors[0][i] * 100,) for i in idx]
    return Aug


@pytest.mark.parametrize("make", ["wrap", "aug", "subset_of_wrap", "subset_of_aug"])
def test_fast_path_runs_user_code(make):
    out = []
    for L, M in LIBS:
        if make.endswith("wrap"):
            ds = _wrapper_cls(M)(M.TensorDataset(L.arange(6)))
        else:
            ds = _aug_cls(M)(L.arange(6))
        if make.startswith("subset"):
            ds = M.Subset(ds, [5, 0, 3, 1])
        out.append([_py(b) for b in M.DataLoader(ds, batch_size=3)])
    assert out[0] == out[1]


def test_library_types_keep_the_fast_path():
    calls = []

    class T(D.TensorDataset):       # a get_batch of the user's own class still counts
        def get_batch(self, idx):
            calls.append(len(idx))
            return super().get_batch(idx)
    got = [_py(b) for b in D.DataLoader(D.Subset(T(tl.arange(6)), [4, 2, 0]), batch_size=2)]
    assert got == [[[4, 2]], [[0]]] and calls == [2, 1]
    assert D.dataset.batch_getter(_wrapper_cls(D)(D.TensorDataset(tl.arange(3)))) is None


# ---- 2: TensorDataset keeps autograd -------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 7), bs=st.integers(1, 4), shuffle=st.booleans(),
       seed=st.integers(0, 100))
def test_tensor_dataset_gradients_reach_the_source(n, bs, shuffle, seed):
    w = np.random.default_rng(seed).standard_normal((n, 2))
    grads = []
    for L, M in LIBS:
        x = L.tensor(w, requires_grad=True)
        y = L.arange(n)
        g = L.Generator()
        g.manual_seed(seed)
        for xb, yb in M.DataLoader(M.TensorDataset(x, y), batch_size=bs, shuffle=shuffle,
                                   generator=g):
            assert xb.requires_grad and not yb.requires_grad
            ((xb * xb).sum() * 3 + (xb * (yb.reshape(-1, 1) + 1)).sum()).backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    np.testing.assert_allclose(grads[0], 6 * w + np.arange(1, n + 1)[:, None], rtol=1e-12)


def test_tensor_dataset_samples_are_views_and_keep_grad():
    for L, M in LIBS:
        x = L.zeros(3, 2, dtype=L.float64)
        ds = M.TensorDataset(x)
        ds[1][0][0] = 5.0               # a view: the write reaches the tensor, as PyTorch
        assert x.tolist() == [[0, 0], [5, 0], [0, 0]]
        ds[0:2][0][0, 1] = 7.0
        assert x.tolist()[0] == [0, 7]
        z = L.zeros(3, requires_grad=True)
        assert M.TensorDataset(z)[0][0].requires_grad
        assert M.TensorDataset(z)[[0, 2]][0].requires_grad
    x = tl.ones(4, 2, requires_grad=True)
    xb, = D.TensorDataset(x)[tl.tensor([3, 3, 0])]
    xb.sum().backward()
    assert x.grad.tolist() == [[1, 1], [0, 0], [0, 0], [2, 2]]


# ---- 3: Subset.indices as given -----------------------------------------------------------

def test_subset_indices_keep_the_sequence_given():
    a, b = D.random_split(list(range(10)), [0.5, 0.5], generator=tl.Generator(0))
    ta, tb = td.random_split(list(range(10)), [0.5, 0.5],
                             generator=torch.Generator().manual_seed(0))
    assert type(a.indices) is type(ta.indices) is list
    assert sorted(a.indices + b.indices) == list(range(10))
    json.dumps(a.indices)
    for idx in ([3, 1, 2], (3, 1, 2), range(3, 0, -1)):
        s, ts = D.Subset(list(range(10)), idx), td.Subset(list(range(10)), idx)
        assert s.indices is idx and (s.indices == idx) is True
        assert [s[i] for i in range(3)] == [ts[i] for i in range(3)]
    # indices read as they are now, on every path
    s = D.Subset(D.TensorDataset(tl.arange(10)), [1, 2])
    s.indices[0] = 9
    assert _py(next(iter(D.DataLoader(s, batch_size=2)))) == [[9, 2]]
    s = D.Subset(D.TensorDataset(tl.arange(10)), np.array([4, 5]))
    assert _py(next(iter(D.DataLoader(s, batch_size=2)))) == [[4, 5]]


# ---- 4: loader.sampler sets the order ------------------------------------------------------

@pytest.mark.parametrize("workers", [0, 2])
def test_pinning_the_default_samplers_generator_pins_the_order(workers):
    orders = []
    for rep in range(2):
        tl.manual_seed(rep)
        dl = D.DataLoader(list(range(10)), batch_size=4, shuffle=True, num_workers=workers,
                          timeout=20 if workers else 0)
        dl.sampler.generator = tl.Generator(123)
        with _deadline(30):
            orders.append(sum((b.tolist() for b in dl), []))
    assert orders[0] == orders[1] and sorted(orders[0]) == list(range(10))
    dl = D.DataLoader(list(range(10)), batch_size=4)
    assert isinstance(dl.sampler, D.SequentialSampler) and dl.batch_sampler.sampler is dl.sampler
    dl.batch_sampler.batch_size = 5     # the loader iterates its batch sampler, as PyTorch
    assert [b.tolist() for b in dl] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


# ---- 5: endless samplers stream ------------------------------------------------------------

def _endless(M):
    class Inf(M.Sampler):
        def __iter__(self):
            for i in itertools.count():
                yield i % 10

    class InfB(M.Sampler):
        def __iter__(self):
            for i in itertools.count():
                yield [i % 10, (i + 3) % 10]
    return Inf(), InfB()


@pytest.mark.parametrize("workers", [0, 2])
def test_endless_samplers_stream(workers):
    out = []
    for _, M in LIBS:
        inf, infb = _endless(M)
        kw = dict(num_workers=workers, timeout=20) if workers else {}
        if workers and M is td:
            kw["multiprocessing_context"] = "fork"
        with _deadline(30):
            a = [_py(b) for b in itertools.islice(
                M.DataLoader(list(range(10)), sampler=inf, batch_size=4, **kw), 3)]
            b = [_py(b) for b in itertools.islice(
                M.DataLoader(list(range(10)), batch_sampler=infb, **kw), 3)]
            c = [_py(b) for b in itertools.islice(
                M.DataLoader(list(range(10)), sampler=inf, batch_size=None, **kw), 12)]
        out.append((a, b, c))
    assert out[0] == out[1]
    assert out[0][0] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]


def test_huge_replacement_sampler_gives_its_first_batch_at_once():
    ds = D.TensorDataset(tl.arange(100))
    s = D.RandomSampler(ds, replacement=True, num_samples=50_000_000)
    t = time.perf_counter()
    first, = next(iter(D.DataLoader(ds, batch_size=64, sampler=s)))
    assert time.perf_counter() - t < 2.0 and first.shape == (64,)
    # chained orders (num_samples > n, without replacement) stay random orders
    got = list(D.RandomSampler(range(7), num_samples=100_000, generator=tl.Generator(1)))
    assert len(got) == 100_000 and all(sorted(got[k:k + 7]) == list(range(7))
                                       for k in range(0, 99_995, 7))


# ---- 6: timeout fires while a worker is stuck ----------------------------------------------

class _Stuck(D.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        time.sleep(60)
        return i


class _StuckStream(D.IterableDataset):
    def __iter__(self):
        time.sleep(60)
        yield 0


@pytest.mark.parametrize("ds", [_Stuck(), _StuckStream()], ids=["map", "iterable"])
def test_timeout_fires_with_a_stuck_worker(ds):
    t = time.perf_counter()
    with _deadline(20), pytest.raises(RuntimeError, match="timed out after 0.5 seconds"):
        list(D.DataLoader(ds, num_workers=1, timeout=0.5, multiprocessing_context="fork"))
    assert time.perf_counter() - t < 6


# ---- 7: live iterators of a persistent loader share it, as PyTorch -------------------------

class _Shards:
    def __iter__(self):
        info = self.M.get_worker_info()
        k, n = (0, 1) if info is None else (info.id, info.num_workers)
        yield from range(k, 8, n)


def _shards(M):
    return type("Shards", (_Shards, M.IterableDataset), {"M": M})()


@pytest.mark.parametrize("kind", ["iterable", "map"])
def test_two_live_iterators_of_a_persistent_loader(kind):
    got = []
    for _, M in LIBS:
        ds = _shards(M) if kind == "iterable" else list(range(8))
        dl = M.DataLoader(ds, batch_size=2, num_workers=2, persistent_workers=True,
                          multiprocessing_context="fork", timeout=20)
        with _deadline(40):
            zipped = [(a.tolist(), b.tolist()) for a, b in zip(dl, dl)]
            a = iter(dl)
            next(a)
            b = iter(dl)
            first = next(b).tolist()
            rest = [x.tolist() for x in a]
            again = [x.tolist() for x in dl]
        got.append((zipped, first, rest, again))
    assert got[0] == got[1]


# ---- 8: MNIST with uint8 -------------------------------------------------------------------

def _write_idx(path, a):
    code = {np.uint8: 0x08}[a.dtype.type]
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, code, a.ndim))
        f.write(struct.pack(f">{a.ndim}I", *a.shape))
        f.write(a.tobytes())


def test_mnist_uint8_keeps_raw_bytes(tmp_path):
    r = np.random.default_rng(0)
    for stem, n in (("train", 30), ("t10k", 10)):
        _write_idx(tmp_path / f"{stem}-images-idx3-ubyte",
                   r.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        _write_idx(tmp_path / f"{stem}-labels-idx1-ubyte",
                   r.integers(0, 10, n).astype(np.uint8))
    raw = D.mnist.read_data_sets(tmp_path, validation_size=5, dtype=np.uint8, one_hot=True)
    flt = D.mnist.read_data_sets(tmp_path, validation_size=5, dtype=np.float64)
    assert raw.train.images.dtype == np.uint8 and raw.train.images.max() > 1
    np.testing.assert_allclose(raw.test.images / 255.0, flt.test.images)
    assert raw.train.labels.dtype == np.uint8 and raw.train.labels.shape == (25, 10)
    with pytest.raises(TypeError, match="dtype must be a floating dtype .* or uint8"):
        D.mnist.read_data_sets(tmp_path, validation_size=5, dtype=np.int32)


# ---- 9: __getitems__ through Subset, random_split and StackDataset -------------------------

def _bulk(M):
    class Bulk(M.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            raise NotImplementedError("read in bulk only")

        def __getitems__(self, idx):
            return [i * 10 for i in idx]
    return Bulk()


@pytest.mark.parametrize("wrap", ["subset", "split", "stack", "stack_kw", "subset_collate"])
def test_bulk_reads_pass_through_wrappers(wrap):
    out = []
    for L, M in LIBS:
        g = L.Generator()
        g.manual_seed(0)
        kw = {}
        if wrap.startswith("subset"):
            ds = M.Subset(_bulk(M), [1, 3, 5])
            if wrap == "subset_collate":
                kw["collate_fn"] = list
        elif wrap == "split":
            ds = M.random_split(_bulk(M), [4, 6], generator=g)[1]
        elif wrap == "stack":
            ds = M.StackDataset(_bulk(M), M.TensorDataset(L.arange(10)))
        else:
            ds = M.StackDataset(a=_bulk(M), b=_bulk(M))
        out.append(sorted(map(str, (_py(b) for b in M.DataLoader(ds, batch_size=3, **kw)))))
    if wrap != "split":                 # the split's order is each library's own draw
        assert out[0] == out[1]
    else:
        assert len(out[0]) == len(out[1]) == 2


# ---- 10: len(iter(loader)) -----------------------------------------------------------------

def test_len_of_the_loaders_iterator():
    for kw in (dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None)):
        it, tit = iter(D.DataLoader(list(range(10)), **kw)), iter(td.DataLoader(
            list(range(10)), **kw))
        assert len(it) == len(tit)
        assert [_py(b) for b in it] == [_py(b) for b in tit]


# ---- 11: worker errors keep their type and message -----------------------------------------

def _bad_init(w):
    raise ValueError("init failed: cannot open shard")


class _Dies(D.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        import os
        os._exit(3)


@pytest.mark.parametrize("empty", [False, True])
def test_worker_init_fn_errors_are_reraised(empty):
    ds = [] if empty else list(range(10))
    with _deadline(30), pytest.raises(ValueError, match=r"(?s)Caught ValueError in DataLoader "
                                      r"worker process \d.*Traceback.*init failed"):
        list(D.DataLoader(ds, batch_size=3, num_workers=2, worker_init_fn=_bad_init,
                          multiprocessing_context="fork", timeout=20))


def test_dead_worker_is_named():
    with _deadline(30), pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+.*"
                                      r"exited unexpectedly"):
        list(D.DataLoader(_Dies(), batch_size=2, num_workers=1,
                          multiprocessing_context="fork", timeout=20))


# ---- 12: PyTorch's module paths ------------------------------------------------------------

def test_submodule_paths():
    import importlib
    for name in ("tensorlib.data.distributed", "tensorlib.data._utils.collate"):
        importlib.import_module(name)
    from tensorlib.data._utils.collate import default_collate
    from tensorlib.data.distributed import DistributedSampler
    assert DistributedSampler is D.DistributedSampler and default_collate is D.default_collate


# ---- 13: validation as PyTorch's -----------------------------------------------------------

_BAD = [lambda M: M.WeightedRandomSampler([1., 2.], 0),
        lambda M: M.WeightedRandomSampler([1., 2.], 5, replacement="no"),
        lambda M: M.WeightedRandomSampler([1., 2.], 1.5),
        lambda M: M.BatchSampler(range(10), 3, 1),
        lambda M: M.BatchSampler(range(10), 0, False),
        lambda M: M.BatchSampler(range(10), True, False),
        lambda M: M.DataLoader(list(range(10)), batch_size=3, drop_last=0),
        lambda M: M.DataLoader(list(range(10)), batch_size=None, drop_last=True)]


@pytest.mark.parametrize("k", range(len(_BAD)))
def test_argument_errors_as_pytorch(k):
    with pytest.raises(Exception) as want:
        _BAD[k](td)
    with pytest.raises(type(want.value)) as got:
        _BAD[k](D)
    if "DataLoader" not in str(_BAD[k].__code__.co_names):
        assert str(got.value) == str(want.value)


def test_random_split_tensor_lengths_and_collate_errors():
    parts = D.random_split(list(range(10)), tl.tensor([3, 7]), generator=tl.Generator(0))
    assert [len(p) for p in parts] == [len(p) for p in td.random_split(
        list(range(10)), torch.tensor([3, 7]))] == [3, 7]
    for bad in ([np.zeros(2), np.zeros(3)], [[1, 2], [1]]):
        with pytest.raises(RuntimeError):
            td.default_collate(bad)
        with pytest.raises(RuntimeError):
            D.default_collate(bad)
        with pytest.raises(ValueError):         # tensorlib's earlier type still catches it
            D.default_collate(bad)


# ---- 14: large batches come back through shared memory -------------------------------------

class _Big(D.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return np.full((300_000,), i, np.float32), {"t": tl.full((2,), float(i))}


def test_large_batches_through_shared_memory_match_and_leave_no_files():
    import glob
    import os
    want = [_py(b) for b in D.DataLoader(_Big(), batch_size=2)]
    with _deadline(30):
        dl = D.DataLoader(_Big(), batch_size=2, num_workers=2, multiprocessing_context="fork",
                          timeout=20)
        got = list(dl)
        assert [_py(b) for b in got] == want
        got[0][0][0, 0] = -1.0          # a batch is ordinary writable memory
        for _ in D.DataLoader(_Big(), batch_size=2, num_workers=2, timeout=20,
                              multiprocessing_context="fork"):
            break                       # batches in flight are freed too
    if os.path.isdir("/dev/shm"):
        assert not glob.glob(f"/dev/shm/tl-dl-{os.getpid()}-*")


def test_torch_utils_data_submodule_paths_import_fresh():
    """``from tensorlib.utils.data._utils.collate import ...`` in a new interpreter."""
    import subprocess
    import sys
    code = ("from tensorlib.utils.data._utils.collate import default_collate\n"
            "from tensorlib.utils.data.distributed import DistributedSampler\n"
            "print(default_collate.__module__, DistributedSampler.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "DistributedSampler" in out.stdout


def test_to_shm_leaves_no_file_when_shm_is_full(tmp_path, monkeypatch):
    """A write that fails part-way through a batch (/dev/shm full) removes the batch's
    files before the loader falls back to the pipe."""
    import os
    from tensorlib.data import worker
    monkeypatch.setattr(worker, "_SHM_DIR", str(tmp_path))
    real = os.fdopen
    calls = []

    def failing(fd, *a, **k):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(fd, *a, **k)
    monkeypatch.setattr(os, "fdopen", failing)
    big = [np.ones(1 << 19, np.float32), np.ones(1 << 19, np.float32)]
    with pytest.raises(OSError):
        worker.to_shm(big, "tl-test-")
    assert list(tmp_path.iterdir()) == []


def test_workers_refuse_batches_in_an_autograd_graph_clearly():
    x = tl.arange(12.0).reshape(6, 2).requires_grad_()
    dl = tl.data.DataLoader(tl.data.TensorDataset(x, tl.arange(6)), batch_size=3,
                            num_workers=2, timeout=60)
    with pytest.raises(RuntimeError, match="requires grad.*num_workers=0"):
        list(dl)
