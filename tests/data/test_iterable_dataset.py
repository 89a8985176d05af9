"""IterableDataset in worker processes and the rest of tensorlib.data, checked against
torch.utils.data: the same datasets through both DataLoaders give the same batches in the
same order; no worker process outlives its loader."""
import gc
import multiprocessing as mp
import os
import time
import warnings
from collections import OrderedDict, namedtuple

import numpy as np
import pytest
import torch
import torch.utils.data as td
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.data import DataLoader



@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # torch's workers start faster on one thread; restored after, since torch and tensorlib
    # may share one OpenMP runtime (its thread count would stay 1 for later tests)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- helpers ---------------------------------------------------------------------------------
def _plain(tree):
    """A batch as comparable Python data: tensors of either library as (dtype, values);
    containers keep their type's name, so a tuple that became a list shows."""
    if isinstance(tree, (tl.Tensor, torch.Tensor)):
        a = tree.numpy()
        return ("T", str(a.dtype), a.tolist())
    if isinstance(tree, dict):
        return (type(tree).__name__, [(k, _plain(v)) for k, v in tree.items()])
    if isinstance(tree, (list, tuple)):
        return (type(tree).__name__, [_plain(v) for v in tree])
    if isinstance(tree, np.ndarray):
        return ("A", str(tree.dtype), tree.tolist())
    return tree


def _both(make, n_workers=0, epochs=1, **kw):
    """The batches of ``make(library)`` through tensorlib's and torch's DataLoader."""
    tl_loader = DataLoader(make("tl"), num_workers=n_workers, **kw)
    th_loader = td.DataLoader(make("torch"), num_workers=n_workers, **kw)
    got = [[_plain(b) for b in tl_loader] for _ in range(epochs)]
    want = [[_plain(b) for b in th_loader] for _ in range(epochs)]
    return got, want


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(autouse=True)
def no_processes_left_behind():
    before = set(mp.active_children())
    yield
    gc.collect()
    left = set(mp.active_children()) - before
    assert not left, f"worker processes left behind: {left}"


_INFO = {"tl": tl.data.get_worker_info, "torch": td.get_worker_info}
_BASE = {"tl": tl.data.IterableDataset, "torch": td.IterableDataset}


def _stream(lib, cls, *args):
    """``cls`` made an IterableDataset of ``lib`` (the DataLoaders check their own class)."""
    return type(cls.__name__, (cls, _BASE[lib]), {})(lib, *args)


class _Shards:
    """Worker k yields ``lens[k]`` samples: uneven streams that end in different rounds."""

    def __init__(self, lib, lens):
        self.lib, self.lens = lib, lens

    def __iter__(self):
        info = _INFO[self.lib]()
        k = 0 if info is None else info.id
        for j in range(self.lens[k]):
            yield {"x": np.array([k, j], np.float32), "kj": (k, j), "name": f"w{k}",
                   "w": 0.5 * j}


# --- worker processes: order and content as PyTorch -----------------------------------------
@pytest.mark.parametrize("lens,batch_size,drop_last", [
    ((5, 1, 7), 2, False),
    ((5, 1, 7), 2, True),
    ((4, 0), 3, False),         # a worker with nothing to give
    ((3, 5), None, False),      # no auto-batching: each sample converted
])
def test_workers_interleave_batches_as_torch(lens, batch_size, drop_last):
    got, want = _both(lambda lib: _stream(lib, _Shards, lens), len(lens),
                      batch_size=batch_size, drop_last=drop_last)
    assert got == want
    firsts = [b[1][1][1][1][0] for b in got[0][:len(lens)]] if batch_size else None
    if batch_size == 2 and not drop_last:
        assert firsts == [("T", "int64", [0, 0]), ("T", "int64", [1]), ("T", "int64", [2, 2])]


class _Counting:
    """range(n) in every worker (not sharded), with a __len__ of n."""

    def __init__(self, lib, n, sharded=False):
        self.lib, self.n, self.sharded = lib, n, sharded

    def __iter__(self):
        info = _INFO[self.lib]()
        k, m = (0, 1) if info is None or not self.sharded else (info.id, info.num_workers)
        yield from range(k, self.n, m)

    def __len__(self):
        return self.n


def test_len_and_the_warning_when_workers_repeat_an_unsharded_stream():
    for bs, drop in ((2, False), (4, True), (4, False), (None, False)):
        assert len(DataLoader(_stream("tl", _Counting, 6), batch_size=bs, drop_last=drop)) == \
            len(td.DataLoader(_stream("torch", _Counting, 6), batch_size=bs, drop_last=drop))
    got, want = _both(lambda lib: _stream(lib, _Counting, 6), 2, batch_size=2)
    assert got == want and len(got[0]) == 6                 # each worker: all of it
    loader = DataLoader(_stream("tl", _Counting, 6), batch_size=2, num_workers=2)
    assert len(loader) == 3
    with pytest.warns(UserWarning, match=r"len\(\) said 3 batches \(at most 4 with 2 "
                                         r"workers.*shard the stream"):
        list(loader)
    sharded = DataLoader(_stream("tl", _Counting, 6, True), batch_size=2, num_workers=2)
    assert len(sharded) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [b.tolist() for b in sharded] == [[0, 2], [1, 3], [4], [5]]

    class NoLen(tl.data.IterableDataset):
        def __iter__(self):
            yield 1

    with pytest.raises(TypeError, match="without __len__"):
        len(DataLoader(NoLen(), num_workers=2))


_INIT_MARK = -1


def _init(worker_id):
    global _INIT_MARK
    _INIT_MARK = 100 + worker_id


class _WhoAmI:
    def __init__(self, lib):
        self.lib, self.tag = lib, "mine"

    def __iter__(self):
        info = _INFO[self.lib]()
        yield np.array([info.id, info.num_workers, _INIT_MARK, info.dataset.tag == "mine",
                        os.getpid(), info.seed % (1 << 40), np.random.randint(1 << 30)],
                       np.int64)


def test_worker_info_seeds_and_worker_init_fn():
    def rows(lib, n_epochs=2, **kw):
        loader = (DataLoader if lib == "tl" else td.DataLoader)(
            _stream(lib, _WhoAmI), batch_size=None, num_workers=3, worker_init_fn=_init, **kw)
        return [np.stack([b.numpy() for b in loader]) for _ in range(n_epochs)]

    tl.manual_seed(0)
    mine, theirs = rows("tl"), rows("torch")
    for e in range(2):      # id, num_workers, worker_init_fn ran first, the worker's dataset
        np.testing.assert_array_equal(mine[e][:, :4], theirs[e][:, :4])
        np.testing.assert_array_equal(mine[e][:, :4], [[0, 3, 100, 1], [1, 3, 101, 1],
                                                       [2, 3, 102, 1]])
        seeds = mine[e][:, 5]
        np.testing.assert_array_equal(seeds - seeds[0], [0, 1, 2])     # base + id, as torch
        assert len(set(mine[e][:, 6].tolist())) == 3        # np.random differs per worker
    assert mine[0][0, 5] != mine[1][0, 5]                   # a new base seed each epoch
    tl.manual_seed(0)
    again = rows("tl")
    assert all(np.array_equal(a[:, 5:], b[:, 5:]) for a, b in zip(again, mine))
    assert tl.data.get_worker_info() is None
    kept = rows("tl", persistent_workers=True)
    assert kept[0][0, 5] == kept[1][0, 5]                   # seeded once, as torch
    np.testing.assert_array_equal(kept[0][:, 4], kept[1][:, 4])    # the same processes


def test_persistent_workers_restart_the_streams_each_epoch():
    lens = (3, 5)
    make = lambda lib: _stream(lib, _Shards, lens)     # noqa: E731
    got, want = _both(make, 2, epochs=2, batch_size=2, persistent_workers=True)
    assert got == want and got[0] == got[1]
    loader = DataLoader(make("tl"), batch_size=2, num_workers=2, persistent_workers=True)
    full = [_plain(b) for b in loader]
    for _ in loader:        # broken off: the leftovers in flight must not leak into the next
        break
    assert [_plain(b) for b in loader] == full
    workers = loader._pool
    assert workers is not None and all(p.is_alive() for p in workers.procs)
    pids = [p.pid for p in workers.procs]
    del loader, workers
    gc.collect()
    assert not any(_alive(p) for p in pids)


# --- prefetching, timeouts, errors, shutdown ------------------------------------------------
class _Endless:
    """An endless stream (or ``stop`` samples per worker) that counts the samples its
    workers made (shared memory)."""

    def __init__(self, lib, counter, fail_at=None, how="raise", stop=None):
        self.lib, self.counter, self.fail_at = lib, counter, fail_at
        self.how, self.stop = how, stop

    def __iter__(self):
        info = _INFO[self.lib]()
        j = 0
        while j != self.stop:
            if info is not None and (info.id, j) == self.fail_at:
                _explode(self.how)
            with self.counter.get_lock():
                self.counter.value += 1
            yield np.array([0 if info is None else info.id, j, os.getpid()], np.int64)
            j += 1


def _explode(how):
    if how == "raise":
        raise ValueError("sample 2 of worker 1 is corrupt")
    if how == "odd":
        class TwoArgs(Exception):
            def __init__(self, a, b):
                super().__init__(f"{a}/{b}")
        raise TwoArgs("odd", "error")
    os._exit(3)


def _settled(counter):
    last, since = -1, time.monotonic()
    for _ in range(200):
        time.sleep(0.05)
        if counter.value != last:
            last, since = counter.value, time.monotonic()
        elif time.monotonic() - since > 0.5:
            break
    return last


@pytest.mark.parametrize("prefetch", [1, 3])
def test_prefetch_factor_bounds_the_batches_made_ahead(prefetch):
    made = {}
    for lib, Loader in (("tl", DataLoader), ("torch", td.DataLoader)):
        counter = mp.Value("i", 0)
        it = iter(Loader(_stream(lib, _Endless, counter), batch_size=3, num_workers=2,
                         prefetch_factor=prefetch))
        next(it)
        made[lib] = _settled(counter)
        del it
    assert made["tl"] == made["torch"] == (prefetch * 2 + 1) * 3


def test_breaking_off_early_stops_the_workers():
    counter = mp.Value("i", 0)
    loader = DataLoader(_stream("tl", _Endless, counter), batch_size=2, num_workers=2)
    pids = set()
    for k, b in enumerate(loader):
        pids.update(b[:, 2].tolist())
        if k == 3:
            break
    assert len(pids) == 2 and not any(_alive(p) for p in pids)
    it = iter(loader)                    # an iterator dropped half way
    pids = {int(next(it)[0, 2]), int(next(it)[0, 2])}
    del it
    assert len(pids) == 2 and not any(_alive(p) for p in pids)


def test_worker_errors_are_raised_with_their_type_and_traceback():
    # torch.utils.data gives the same batches and error (checked by hand: its workers take
    # 5 s to stop after an error, too slow for this suite)
    counter, batches = mp.Value("i", 0), []
    with pytest.raises(ValueError, match=r"(?s)Caught ValueError in DataLoader worker "
                                         r"process 1.*_explode.*worker 1 is corrupt"):
        for b in DataLoader(_stream("tl", _Endless, counter, (1, 2), "raise", 4),
                            batch_size=None, num_workers=2):
            batches.append(b.numpy()[:2].tolist())
    assert batches == [[0, 0], [1, 0], [0, 1], [1, 1], [0, 2]]
    counter = mp.Value("i", 0)
    with pytest.raises(RuntimeError, match=r"(?s)Caught TwoArgs.*odd/error"):
        list(DataLoader(_stream("tl", _Endless, counter, (0, 0), "odd"), num_workers=2))

    def bad_init(worker_id):
        raise KeyError(f"no shard for worker {worker_id}")

    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 0"):
        list(DataLoader(_stream("tl", _Endless, counter), num_workers=2,
                        worker_init_fn=bad_init))


def test_a_dead_worker_or_a_slow_one_raises_instead_of_hanging():
    counter = mp.Value("i", 0)
    with pytest.raises(RuntimeError, match="worker 1 .*exited unexpectedly with exit code 3"):
        list(DataLoader(_stream("tl", _Endless, counter, (1, 1), "die"), batch_size=2,
                        num_workers=2))

    class Slow(tl.data.IterableDataset):
        def __iter__(self):
            time.sleep(0.6)
            yield 1

    with pytest.raises(RuntimeError, match=r"within timeout=0.1 s"):
        list(DataLoader(Slow(), num_workers=2, timeout=0.1))


# --- the main process: batch_size=None, collate_fn, __getitems__ ------------------------------
def test_main_process_streams_and_no_auto_batching_match_torch():
    make = lambda lib: _stream(lib, _Shards, (5,))      # noqa: E731
    for kw in ({"batch_size": 2}, {"batch_size": 2, "drop_last": True}, {"batch_size": None},
               {"batch_size": None, "collate_fn": lambda s: s["kj"]}):
        got, want = _both(make, **kw)
        assert got == want

    class Arrays:
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full(2, i, np.int16), (i, "s")

    class TlArrays(Arrays, tl.data.Dataset):
        pass

    got = [_plain(b) for b in DataLoader(TlArrays(), batch_size=None, shuffle=False)]
    want = [_plain(b) for b in td.DataLoader(Arrays(), batch_size=None)]
    assert got == want and got[0][1][0] == ("T", "int16", [0, 0])


def test_getitems_reads_many_samples_at_once_as_torch():
    calls = []

    class Many(tl.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            raise AssertionError("__getitems__ should have been used")

        def __getitems__(self, idx):
            calls.append(idx)
            return [(i, float(i)) for i in idx]

    got = [_plain(b) for b in DataLoader(Many(), batch_size=2)]
    assert calls == [[0, 1], [2, 3], [4]]
    assert got[0] == ("list", [("T", "int64", [0, 1]), ("T", "float64", [0.0, 1.0])])


# --- collate and convert ---------------------------------------------------------------------
Point = namedtuple("Point", "x y")

_SAMPLE_KINDS = {
    "dict": lambda i: {"a": np.full(3, i, np.float32), "b": i, "c": f"s{i}"},
    "ordered": lambda i: OrderedDict(z=i * 0.5, a=[i, i + 1]),
    "namedtuple": lambda i: Point(np.int8(i), (i, True)),
    "nested": lambda i: [[i, [i * 1.5, b"x"]], {"k": np.array([[i]], np.float64)}],
    "scalars": lambda i: (np.float16(i), np.int32(i), np.bool_(i % 2), bool(i % 2)),
    "tensors": lambda i: (np.arange(4, dtype=np.int64) * i, 3 - i),
}


@pytest.mark.parametrize("kind", sorted(_SAMPLE_KINDS))
def test_default_collate_and_convert_match_torch(kind):
    samples = [_SAMPLE_KINDS[kind](i) for i in range(3)]
    assert _plain(tl.data.default_collate(samples)) == _plain(td.default_collate(samples))
    for s in samples:
        assert _plain(tl.data.default_convert(s)) == _plain(td.default_convert(s))


def test_default_collate_refuses_what_torch_refuses():
    for bad in ([np.array(["a"]), np.array(["b"])], [None, None], [object()]):
        with pytest.raises(TypeError, match="default_collate: batch must contain"):
            td.default_collate(bad)
        with pytest.raises(TypeError, match="default_collate: batch must contain.*collate_fn"):
            tl.data.default_collate(bad)
    with pytest.raises(ValueError, match=r"same number of fields, got lengths \[2, 3\]"):
        tl.data.default_collate([[1, 2], [1, 2, 3]])
    text = np.array(["a", "b"])
    assert tl.data.default_convert(text) is text is td.default_convert(text)


_leaf = st.sampled_from(["f32", "i64", "float", "int", "bool", "str", "np_f64"])
_tree = st.recursive(_leaf, lambda kids: st.one_of(
    st.lists(kids, min_size=1, max_size=3),
    st.lists(kids, min_size=1, max_size=3).map(tuple),
    st.dictionaries(st.sampled_from("abc"), kids, min_size=1, max_size=3)), max_leaves=8)


def _fill(shape, i):
    if isinstance(shape, list):
        return [_fill(s, i) for s in shape]
    if isinstance(shape, tuple):
        return tuple(_fill(s, i) for s in shape)
    if isinstance(shape, dict):
        return {k: _fill(v, i) for k, v in shape.items()}
    return {"f32": np.full(2, i, np.float32), "i64": np.arange(3) + i, "float": i / 3,
            "int": i, "bool": i % 2 == 0, "str": f"t{i}", "np_f64": np.float64(i)}[shape]


@settings(max_examples=40, deadline=None)
@given(_tree, st.integers(1, 4))
def test_collate_of_any_nesting_matches_torch(shape, n):
    samples = [_fill(shape, i) for i in range(n)]
    assert _plain(tl.data.default_collate(samples)) == _plain(td.default_collate(samples))


# --- datasets and the distributed sampler ------------------------------------------------------
class _Range:
    def __init__(self, lib, lo, hi):
        self.lib, self.lo, self.hi = lib, lo, hi

    def __iter__(self):
        yield from range(self.lo, self.hi)

    def __len__(self):
        return self.hi - self.lo


def test_chain_and_stack_datasets_match_torch():
    chain = {"tl": tl.data.ChainDataset, "torch": td.ChainDataset}
    got, want = _both(lambda lib: chain[lib]([_stream(lib, _Range, 0, 3),
                                              _stream(lib, _Range, 10, 12)]), batch_size=2)
    assert got == want
    joined = _stream("tl", _Range, 0, 3) + _stream("tl", _Range, 5, 6)
    assert isinstance(joined, tl.data.ChainDataset) and list(joined) == [0, 1, 2, 5]
    assert len(joined) == 4
    with pytest.raises(TypeError, match="ChainDataset chains IterableDatasets"):
        list(tl.data.ChainDataset([tl.data.TensorDataset(tl.arange(3))]))

    a, b = np.arange(4), np.arange(4) * 10.0
    stack = {"tl": tl.data.StackDataset, "torch": td.StackDataset}
    for args, kw in (((a, b), {}), ((), {"a": a, "b": b})):
        got = [_plain(x) for x in DataLoader(stack["tl"](*args, **kw), batch_size=3)]
        want = [_plain(x) for x in td.DataLoader(stack["torch"](*args, **kw), batch_size=3)]
        assert got == want
    assert tl.data.StackDataset(a, b)[1] == (1, 10.0)
    with pytest.raises(ValueError, match=r"same length, got \[4, 3\]"):
        tl.data.StackDataset(a, b[:3])
    with pytest.raises(ValueError, match="not both"):
        tl.data.StackDataset(a, b=b)


def test_streams_are_refused_where_indices_are_needed():
    stream = _stream("tl", _Range, 0, 4)
    with pytest.raises(TypeError, match="Subset: .* is an IterableDataset.*islice"):
        tl.data.Subset(stream, [0, 1])
    with pytest.raises(TypeError, match="ConcatDataset: .*use ChainDataset"):
        tl.data.ConcatDataset([stream])
    with pytest.raises(TypeError, match="random_split: .* is an IterableDataset"):
        tl.data.random_split(stream, [2, 2])
    with pytest.raises(ValueError, match="its own order"):
        DataLoader(stream, sampler=[0, 1])


@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (2, 5, False),
                                                  (9, 3, True), (7, 4, True)])
def test_distributed_sampler_matches_torch(n, replicas, drop_last):
    data = list(range(n))
    shares = []
    for rank in range(replicas):
        mine = tl.data.DistributedSampler(data, replicas, rank, shuffle=False,
                                          drop_last=drop_last)
        theirs = td.DistributedSampler(data, replicas, rank, shuffle=False,
                                       drop_last=drop_last)
        assert list(mine) == list(theirs) and len(mine) == len(theirs)
        shuffled = tl.data.DistributedSampler(data, replicas, rank, seed=3,
                                              drop_last=drop_last)
        first = list(shuffled)
        assert list(shuffled) == first and len(first) == len(theirs)
        shuffled.set_epoch(1)
        shares.append((first, list(shuffled)))
    for epoch in (0, 1):
        every = sorted(i for s in shares for i in s[epoch])
        if drop_last:       # disjoint shares, all of equal size
            assert len(set(every)) == len(every) == replicas * len(shares[0][0])
        else:               # everything, padded with repeats
            assert set(every) == set(data) and len(every) == replicas * len(shares[0][0])
    if n > replicas:
        assert [s[0] for s in shares] != [s[1] for s in shares]    # set_epoch reshuffles


def test_distributed_sampler_through_workers_and_its_checks():
    ds = tl.data.TensorDataset(tl.arange(10))
    s = tl.data.DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    got = [b[0].tolist() for b in DataLoader(ds, batch_size=2, sampler=s, num_workers=2)]
    assert got == [[1, 3], [5, 7], [9]]
    with pytest.raises(ValueError, match=r"rank must be in \[0, 1\], got 2"):
        tl.data.DistributedSampler(ds, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be positive"):
        tl.data.DistributedSampler(ds, num_replicas=0, rank=0)
