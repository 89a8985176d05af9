"""Data loading: datasets, the DataLoader, MNIST and a small text corpus.

>>> loader = tl.data.DataLoader(tl.data.TensorDataset(x, y), batch_size=64, shuffle=True)
"""
from . import mnist, text
from .dataloader import DataLoader, WorkerInfo, default_collate, get_worker_info
from .dataset import (ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset,
                      random_split)
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                      SubsetRandomSampler, WeightedRandomSampler)

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "IterableDataset",
           "RandomSampler", "Sampler", "SequentialSampler", "Subset", "SubsetRandomSampler",
           "TensorDataset", "WeightedRandomSampler", "WorkerInfo", "default_collate",
           "get_worker_info", "mnist", "random_split", "text"]
