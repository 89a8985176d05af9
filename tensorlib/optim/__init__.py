"""Optimizers, learning-rate schedules and gradient clipping.

>>> opt = tl.optim.Adam(model.parameters(), lr=1e-3)
>>> sched = tl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
"""
from ..nn.utils import clip_grad_norm_, clip_grad_value_
from . import lr_scheduler, swa_utils
from .adam import Adam, AdamW
from .adam_variants import Adamax, NAdam, RAdam
from .lbfgs import LBFGS
from .lr_scheduler import (ChainedScheduler, ConstantLR, CosineAnnealingLR,
                           CosineAnnealingWarmRestarts, CyclicLR, ExponentialLR, LambdaLR,
                           LinearLR, LRScheduler, MultiplicativeLR, MultiStepLR, OneCycleLR,
                           PolynomialLR, ReduceLROnPlateau, SequentialLR, StepLR)
from .optimizer import Optimizer
from .adagrad import Adagrad
from .rmsprop import Adadelta, RMSprop
from .rprop_asgd import ASGD, Adafactor, Rprop
from .sgd import SGD
from .sparse_adam import SparseAdam

__all__ = [
    "ASGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "ChainedScheduler",
    "ConstantLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR",
    "ExponentialLR", "LBFGS", "LRScheduler", "LambdaLR", "LinearLR", "MultiStepLR",
    "MultiplicativeLR", "NAdam", "OneCycleLR", "Optimizer", "PolynomialLR", "RAdam", "RMSprop",
    "ReduceLROnPlateau", "Rprop", "SGD", "SequentialLR", "SparseAdam", "StepLR",
    "clip_grad_norm_", "clip_grad_value_", "lr_scheduler", "swa_utils",
]
