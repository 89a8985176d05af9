"""Data loading: datasets, the DataLoader, MNIST and a small text corpus.

>>> loader = tl.data.DataLoader(tl.data.TensorDataset(x, y), batch_size=64, shuffle=True)
"""
from . import mnist, text
from .dataloader import DataLoader, WorkerInfo, default_collate, get_worker_info
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split

__all__ = ["ConcatDataset", "DataLoader", "Dataset", "Subset", "TensorDataset", "WorkerInfo",
           "default_collate", "get_worker_info", "mnist", "random_split", "text"]
