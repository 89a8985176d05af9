"""Trial 16 data-pipeline findings against PyTorch: batch types (F1), sampler keys as given
(F4), default_collate of Python scalars (F5), workers for every epoch (F6), validation (F7)."""
import multiprocessing as mp

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
td = torch.utils.data
D = tl.utils.data


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t.numpy())


def _same(got, want):
    """Same structure (container types), dtypes and values."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, tl.Tensor), type(got)
        assert np.dtype(got.dtype).name == str(want.dtype).split(".")[-1]
        np.testing.assert_array_equal(_np(got), _np(want))
        return
    assert type(got) is type(want), (type(got), type(want))
    if isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            _same(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
    else:
        assert got == want


def _xy(T):
    x = T.tensor(np.arange(20, dtype=np.float32).reshape(10, 2))
    y = T.tensor(np.arange(10))
    return x, y


class _Pairs:
    """A plain map-style dataset of tuple samples (the slow, per-sample path)."""

    def __init__(self, lib):
        self.base = lib.Dataset

    def make(self):
        class P(self.base):
            def __len__(self):
                return 7

            def __getitem__(self, i):
                return np.float32(i), np.arange(2) + i
        return P()


def _datasets(T):
    M = T.utils.data
    x, y = _xy(T)
    ds = M.TensorDataset(x, y)
    return {
        "tensor": ds,
        "subset": M.Subset(ds, [3, 1, 4, 1, 5, 9, 2]),
        "subset_of_subset": M.Subset(M.Subset(ds, list(range(9, -1, -1))), [0, -1, 2, 5]),
        "concat": M.ConcatDataset([ds, M.Subset(ds, [0, 1])]),
        "stack_tuple": M.StackDataset(x, y),
        "stack_dict": M.StackDataset(a=x, b=y),
        "custom": _Pairs(M).make(),
    }


@pytest.mark.parametrize("kind", ["tensor", "subset", "subset_of_subset", "concat",
                                  "stack_tuple", "stack_dict", "custom"])
@pytest.mark.parametrize("opts", [dict(batch_size=3), dict(batch_size=3, drop_last=True),
                                  dict(batch_size=None), dict(batch_sampler=[[0, 2], [1]]),
                                  dict(batch_size=2, sampler=[2, 0, 1, 3]),
                                  dict(batch_size=2, collate_fn=None)])
def test_batch_types_match_torch_for_each_dataset_kind(kind, opts):      # F1
    got = list(tl.utils.data.DataLoader(_datasets(tl)[kind], **opts))
    want = list(td.DataLoader(_datasets(torch)[kind], **opts))
    _same(got, want)


def test_tensor_dataset_batch_is_a_mutable_list():      # F1, the report's loop code
    b = next(iter(D.DataLoader(D.TensorDataset(*_xy(tl)), batch_size=4)))
    assert type(b) is list
    b[0] = b[0] * 2
    np.testing.assert_array_equal(b[0].numpy(), np.arange(8, dtype=np.float32).reshape(4, 2) * 2)


@pytest.mark.parametrize("kind", ["tensor", "subset", "custom"])
def test_batch_types_in_workers_match_torch(kind):          # F1 through the workers
    got = list(D.DataLoader(_datasets(tl)[kind], batch_size=3, num_workers=2))
    want = list(td.DataLoader(_datasets(torch)[kind], batch_size=3, num_workers=2))
    _same(got, want)


# ---- F4: the sampler's keys reach the dataset as given ----

@pytest.mark.parametrize("kind", ["tensor", "subset"])
@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("drop_last", [False, True])
def test_bulk_indexing_with_batch_sampler_as_sampler(kind, workers, drop_last):
    def run(T, L):
        M = T.utils.data
        ds = _datasets(T)[kind]
        s = M.BatchSampler(M.SequentialSampler(ds), 4, drop_last)
        return list(M.DataLoader(ds, sampler=s, batch_size=None, num_workers=workers))
    got, want = run(tl, D), run(torch, td)
    n = len(_datasets(torch)[kind])
    assert len(want) == (n // 4 if drop_last else -(-n // 4))
    _same(got, want)


class _Keyed:
    data = {"a": 1.5, "b": 2.5, "c": 3.5, "d": 4.5}

    def __len__(self):
        return 4

    def __getitem__(self, k):
        return self.data[k]


def _keyed(M):
    return type("Keyed", (_Keyed, M.Dataset), {})()


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("opts", [dict(batch_size=3, sampler=["d", "a", "c", "b"]),
                                  dict(batch_size=None, sampler=["b", "a"]),
                                  dict(batch_sampler=[["c", "a"], ["b"]])])
def test_str_keys_into_a_dict_backed_dataset(workers, opts):
    got = list(D.DataLoader(_keyed(D), num_workers=workers, **opts))
    want = list(td.DataLoader(_keyed(td), num_workers=workers, **opts))
    _same(got, want)


def test_batch_sampler_keeps_keys_as_given():
    got = list(D.BatchSampler(["x", "y", "z"], 2, drop_last=False))
    assert got == list(td.BatchSampler(["x", "y", "z"], 2, drop_last=False)) == [["x", "y"],
                                                                                  ["z"]]


def test_getitems_gets_the_keys_as_given():
    seen = {}

    def make(M, lib):
        class G(M.Dataset):
            def __len__(self):
                return 3

            def __getitems__(self, keys):
                seen[lib] = keys
                return [float(len(k)) for k in keys]
        return G()
    got = list(D.DataLoader(make(D, "tl"), batch_size=2, sampler=["ab", "c"]))
    want = list(td.DataLoader(make(td, "torch"), batch_size=2, sampler=["ab", "c"]))
    _same(got, want)
    assert seen["tl"] == seen["torch"] == ["ab", "c"]


def test_integer_sampler_still_takes_the_fast_path():
    calls = []

    class T(D.TensorDataset):
        def get_batch(self, indices):
            calls.append(indices.dtype)
            return super().get_batch(indices)
    ds = T(*_xy(tl))
    out = list(D.DataLoader(ds, batch_size=4, sampler=[np.int64(3), 1, 2]))
    assert calls == [np.dtype(np.int64)]
    np.testing.assert_array_equal(out[0][1].numpy(), [3, 1, 2])


# ---- F5: default_collate of Python scalars ----

_SCALARS = [[1, 2], [1, 2.5], [2.5, 1], [True, False], [True, 1], [1, True], [True, 2.5],
            [2.5, True], [0, 0.5, 1], [1, np.float32(2.5)], [1, np.float64(2.5)],
            [np.float64(2.5), 1], [np.int32(3), 1], [-(2 ** 40), 7], [0.5, 1.5]]


@pytest.mark.parametrize("batch", _SCALARS, ids=str)
def test_collate_python_scalars_like_torch(batch):
    _same(tl.utils.data.default_collate(batch), td.default_collate(batch))


def test_collate_scalar_fields_of_tuples_and_dicts():
    batch = [(0, {"w": 1}), (0.5, {"w": 0.25})]
    _same(D.default_collate(batch), td.default_collate(batch))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(-10 ** 6, 10 ** 6), st.booleans(),
                          st.floats(-1e6, 1e6, width=32)), min_size=1, max_size=6))
def test_collate_mixed_scalars_property(batch):
    _same(D.default_collate(batch), td.default_collate(batch))


def test_collate_default_dtype_float64_follows_it():
    old = tl.get_default_dtype()
    tl.set_default_dtype(tl.float64)
    try:
        assert D.default_collate([1, 2.5]).dtype == tl.float64
    finally:
        tl.set_default_dtype(old)


# ---- F6: workers for every epoch, however few batches ----

def _who(M, n):
    class W(M.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            wi = M.get_worker_info()
            return -1 if wi is None else wi.id * 10 + wi.num_workers
    return W()


def _count_inits(M, n, **opts):
    counter = mp.get_context("fork").Value("i", 0)

    def init(wid):
        with counter.get_lock():
            counter.value += 1
    out = list(M.DataLoader(_who(M, n), num_workers=2, worker_init_fn=init, **opts))
    return out, counter.value


@pytest.mark.parametrize("n,opts", [(2, dict(batch_size=2)), (1, dict(batch_size=4)),
                                    (3, dict(batch_size=2)), (1, dict(batch_size=None)),
                                    (2, dict(batch_size=None))])
def test_small_epochs_run_in_the_workers(n, opts):
    got, inits = _count_inits(D, n, **opts)
    want, tinits = _count_inits(td, n, **opts)
    assert inits == tinits == 2
    flat = [int(v) for b in got for v in (b.tolist() if isinstance(b, tl.Tensor) else [b])]
    tflat = [int(v) for b in want for v in (b.tolist() if isinstance(b, torch.Tensor) else [b])]
    assert len(flat) == len(tflat) == n
    # which worker builds a batch may differ; that one did, with num_workers=2
    assert all(v in (2, 12) for v in flat + tflat), (flat, tflat)


def test_one_batch_persistent_workers_all_start():
    import time
    counter = mp.get_context("fork").Value("i", 0)

    def init(wid):
        with counter.get_lock():
            counter.value += 1
    loader = D.DataLoader(_who(D, 2), batch_size=2, num_workers=2, worker_init_fn=init,
                          persistent_workers=True)
    for _ in range(2):
        assert [int(v) for b in loader for v in b.tolist()][0] in (2, 12)
    for _ in range(100):        # the pool is kept: its second worker may still be starting
        if counter.value == 2:
            break
        time.sleep(0.05)
    assert counter.value == 2


def test_empty_epoch_still_starts_the_workers():
    got, inits = _count_inits(D, 0, batch_size=2)
    want, tinits = _count_inits(td, 0, batch_size=2)
    assert got == want == [] and inits == tinits == 2


def test_one_batch_in_workers_is_seeded_per_epoch():
    class R(D.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return tl.rand(1).item()
    loader = D.DataLoader(R(), batch_size=3, num_workers=2)
    tl.manual_seed(5)
    a = [b.tolist() for b in loader] + [b.tolist() for b in loader]
    tl.manual_seed(5)
    b = [b.tolist() for b in loader] + [b.tolist() for b in loader]
    assert a == b and a[0] != a[1]


# ---- F7: validation ----

def _error(fn):
    with pytest.raises(Exception) as e:
        fn()
    return type(e.value), str(e.value)


@pytest.mark.parametrize("kwargs", [dict(num_samples=0), dict(num_samples=-3),
                                    dict(num_samples=2.0), dict(replacement=1),
                                    dict(replacement="yes"), dict(replacement=None)])
def test_random_sampler_validation_like_torch(kwargs):
    got = _error(lambda: D.RandomSampler(list(range(5)), **kwargs))
    want = _error(lambda: td.RandomSampler(list(range(5)), **kwargs))
    assert got == want


def test_random_sampler_on_empty_data_like_torch():
    assert _error(lambda: D.RandomSampler([])) == _error(lambda: td.RandomSampler([]))


def test_random_sampler_accepts_valid_args():
    s = D.RandomSampler(list(range(5)), replacement=True, num_samples=np.int64(7),
                        generator=tl.Generator(0))
    assert len(list(s)) == len(s) == 7 and type(s.num_samples) is int
    assert len(td.RandomSampler(list(range(5)), replacement=True, num_samples=7)) == 7


@pytest.mark.parametrize("weights", [[[1.0, 2.0]], [[1.0], [2.0]], 3.0])
def test_weighted_sampler_weights_must_be_1d(weights):
    got = _error(lambda: D.WeightedRandomSampler(weights, 1))
    want = _error(lambda: td.WeightedRandomSampler(weights, 1))
    assert got == want
    assert "weights should be a 1d sequence" in got[1]


def test_prefetch_factor_needs_workers_like_torch():
    ds = list(range(4))
    got = _error(lambda: D.DataLoader(ds, num_workers=0, prefetch_factor=2))
    want = _error(lambda: td.DataLoader(ds, num_workers=0, prefetch_factor=2))
    assert got == want
    assert D.DataLoader(ds).prefetch_factor is td.DataLoader(ds).prefetch_factor is None
    assert D.DataLoader(ds, num_workers=2).prefetch_factor == \
        td.DataLoader(ds, num_workers=2).prefetch_factor == 2
    with pytest.raises(ValueError, match="prefetch_factor"):
        D.DataLoader(ds, num_workers=2, prefetch_factor=0)
