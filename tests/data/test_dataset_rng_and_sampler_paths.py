"""Fixes from the fifteenth session's vision-training trial: TensorDataset reads its current
tensors, NumPy RNG state in checkpoints, samplers and dataset helpers, PyTorch's seeding and
import paths."""
from __future__ import annotations

import io

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


def test_tensor_dataset_reads_reassigned_tensors_and_replaced_data():
    ds = tl.data.TensorDataset(tl.ones(4, 2), tl.arange(4))
    ds.tensors = (ds.tensors[0] * 10, ds.tensors[1])       # normalised after building
    assert ds[0][0].tolist() == [10.0, 10.0]
    assert next(iter(tl.data.DataLoader(ds, batch_size=2)))[0].tolist() == [[10.0] * 2] * 2
    x = tl.ones(4, 2)
    ds = tl.data.TensorDataset(x, tl.arange(4))
    x.data = x.data * 5
    assert ds[0][0].tolist() == [5.0, 5.0]
    x.mul_(2)                                                 # in place: seen too
    assert ds[1][0].tolist() == [10.0, 10.0]


def test_checkpoints_hold_numpy_rng_state():
    state = np.random.get_state()
    buf = io.BytesIO()
    tl.save({"tl": tl.get_rng_state(), "numpy": state, "u64": np.arange(3, dtype=np.uint64)},
            buf)
    buf.seek(0)
    back = tl.load(buf)
    assert back["numpy"][0] == "MT19937" and back["numpy"][1].dtype == np.uint32
    np.testing.assert_array_equal(back["numpy"][1], state[1])
    assert back["u64"].dtype == np.uint64
    np.random.set_state(back["numpy"])


def test_random_sampler_without_replacement_chains_orders_beyond_the_length():
    ds = tl.data.TensorDataset(tl.arange(5.0))
    got = list(tl.data.RandomSampler(ds, num_samples=12, generator=tl.Generator().manual_seed(0)))
    assert len(got) == 12 and sorted(got[:5]) == sorted(got[5:10]) == list(range(5))
    tds = torch.utils.data.TensorDataset(torch.arange(5.0))
    assert len(list(torch.utils.data.RandomSampler(tds, num_samples=12))) == 12


def test_subset_lists_and_concat_cumulative_sizes_as_pytorch():
    for L in (torch, tl):
        data = L.utils.data
        ds = data.TensorDataset(L.arange(5.0))
        sub = data.Subset(ds, [4, 2, 0])
        assert sub[[0, 2]][0].tolist() == [4.0, 0.0]
        assert data.ConcatDataset([ds, ds]).cumulative_sizes == [5, 10]


def test_cuda_seeding_and_amp_spellings_for_seed_everything_helpers():
    tl.cuda.manual_seed_all(3)
    a = tl.randn(2)
    tl.cuda.manual_seed(3)
    np.testing.assert_array_equal(tl.randn(2).numpy(), a.numpy())
    assert tl.cuda.initial_seed() == 3
    with tl.cuda.amp.autocast(enabled=False):
        pass
    assert isinstance(tl.cuda.amp.GradScaler(enabled=False), tl.amp.GradScaler)


def test_torch_utils_data_submodule_paths():
    from tensorlib.utils.data.dataloader import DataLoader
    from tensorlib.utils.data.dataset import Dataset
    from tensorlib.utils.data.sampler import Sampler
    assert DataLoader is tl.data.DataLoader and Dataset is tl.data.Dataset
    assert Sampler is tl.data.Sampler
