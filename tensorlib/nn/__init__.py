"""Neural-network layers (``tl.nn``): Module, Parameter, layers, containers, init.

>>> import tensorlib.nn as nn
>>> model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
"""
from . import functional, init, utils
from .activation import (CELU, ELU, GELU, GLU, SELU, Hardsigmoid, Hardswish, Hardtanh,
                         LeakyReLU, LogSigmoid, LogSoftmax, Mish, PReLU, ReLU, ReLU6, SiLU,
                         Sigmoid, Softmax, Softplus, Softsign, Tanh)
from .distance import CosineSimilarity, PairwiseDistance
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .dropout import Dropout, Dropout1d, Dropout2d, Dropout3d
from .embedding import Embedding, EmbeddingBag
from .linear import Bilinear, Flatten, Identity, Linear, Unflatten
from .lazy import (LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyConv1d, LazyConv2d,
                   LazyConv3d, LazyConvTranspose1d, LazyConvTranspose2d, LazyInstanceNorm1d,
                   LazyInstanceNorm2d, LazyLinear, LazyModuleMixin, UninitializedBuffer,
                   UninitializedParameter)
from .resample import (Fold, PixelShuffle, PixelUnshuffle, Unfold, Upsample,
                       UpsamplingBilinear2d, UpsamplingNearest2d)
from .padding import (CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d,
                      ConstantPad3d, ReflectionPad1d, ReflectionPad2d, ReflectionPad3d,
                      ReplicationPad1d, ReplicationPad2d, ReplicationPad3d, ZeroPad1d,
                      ZeroPad2d, ZeroPad3d)
from .loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss,
                   GaussianNLLLoss, HingeEmbeddingLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss,
                   MarginRankingLoss, MultiLabelSoftMarginLoss, MultiMarginLoss, NLLLoss,
                   PoissonNLLLoss, SmoothL1Loss, SoftMarginLoss, TripletMarginLoss)
from .loss import MultiLabelMarginLoss, TripletMarginWithDistanceLoss
from .loss import CTCLoss  # noqa: F401  (public: nn.CTCLoss)
from .module import Module
from .normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d,
                            InstanceNorm2d, LayerNorm)
from .normalization import RMSNorm
from .parameter import Buffer, Parameter
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d,
                      AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, MaxPool1d,
                      MaxPool2d)
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell
from .modules_extra import (ChannelShuffle, LocalResponseNorm, LPPool1d, LPPool2d, RReLU,
                            Softmax2d, Softmin, Threshold)
from .activation import Hardshrink, Softshrink, Tanhshrink
from .dropout import AlphaDropout, FeatureAlphaDropout
from .normalization import InstanceNorm3d
from .pooling import (AdaptiveAvgPool3d, AdaptiveMaxPool3d, AvgPool3d, LPPool3d, MaxPool3d,
                      MaxUnpool1d, MaxUnpool2d, MaxUnpool3d)
from .transformer import (MultiheadAttention, Transformer, TransformerDecoder,
                          TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer)

__all__ = [
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "AvgPool1d", "AvgPool2d", "BCELoss",
    "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "Bilinear", "CELU",
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "CosineEmbeddingLoss",
    "CosineSimilarity", "CrossEntropyLoss", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "ELU", "Embedding", "EmbeddingBag", "Flatten", "Fold", "GELU", "GLU",
    "GRU", "GRUCell", "GaussianNLLLoss", "GroupNorm", "Hardsigmoid", "Hardswish", "Hardtanh",
    "HingeEmbeddingLoss", "HuberLoss", "Identity", "InstanceNorm1d", "InstanceNorm2d", "KLDivLoss",
    "L1Loss", "LSTM", "LSTMCell", "LayerNorm", "LeakyReLU", "Linear", "LogSigmoid", "LogSoftmax",
    "MSELoss", "MarginRankingLoss", "MaxPool1d", "MaxPool2d", "Mish", "Module", "ModuleDict",
    "MultiLabelSoftMarginLoss", "MultiMarginLoss",
    "ModuleList", "MultiheadAttention", "NLLLoss", "PReLU", "PairwiseDistance", "Parameter",
    "ParameterList", "PixelShuffle", "PixelUnshuffle", "PoissonNLLLoss", "RMSNorm", "RNN",
    "RNNBase",
    "RNNCell", "ReLU", "ReLU6", "ReflectionPad2d", "ReplicationPad2d", "SELU", "Sequential",
    "SiLU", "Sigmoid", "SmoothL1Loss", "SoftMarginLoss", "Softmax", "Softplus", "Softsign", "Tanh",
    "Transformer", "TransformerDecoder", "TransformerDecoderLayer", "TransformerEncoder",
    "TransformerEncoderLayer", "TripletMarginLoss", "Unflatten", "Unfold", "Upsample", "ZeroPad2d",
    "functional", "init", "utils",
]
__all__ += ["ChannelShuffle", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "LPPool1d",
            "LPPool2d", "LocalResponseNorm", "ParameterDict", "RReLU", "Softmax2d", "Softmin",
            "Threshold"]
__all__ += ["LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyConv1d", "LazyConv2d",
            "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyInstanceNorm1d",
            "LazyInstanceNorm2d", "LazyLinear", "LazyModuleMixin", "UninitializedBuffer",
            "UninitializedParameter"]
__all__ += ["AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "AlphaDropout", "AvgPool3d",
            "CircularPad1d", "CircularPad2d", "CircularPad3d", "FeatureAlphaDropout",
            "Hardshrink", "InstanceNorm3d", "LPPool3d", "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d",
            "MaxUnpool3d", "ReflectionPad1d", "ReflectionPad3d", "ReplicationPad1d",
            "ReplicationPad3d", "Softshrink", "Tanhshrink", "UpsamplingBilinear2d",
            "UpsamplingNearest2d", "ZeroPad1d", "ZeroPad3d"]
__all__ += ["ConvTranspose3d", "MultiLabelMarginLoss", "TripletMarginWithDistanceLoss"]
from .data_parallel import DataParallel  # noqa: E402
__all__ += ["Buffer", "DataParallel"]
from . import modules  # noqa: E402,F401  (torch.nn.modules' path: nn.modules.module, .loss, ...)
from .pooling_fractional import FractionalMaxPool2d, FractionalMaxPool3d  # noqa: E402
from .modules_extra import CrossMapLRN2d  # noqa: E402
from .adaptive_softmax import AdaptiveLogSoftmaxWithLoss  # noqa: E402
__all__ += ["AdaptiveLogSoftmaxWithLoss", "CrossMapLRN2d", "FractionalMaxPool2d",
            "FractionalMaxPool3d"]
