"""Utilities: gradient clipping and zeroing, parameters as one vector, ``rnn``'s sequence
padding and packing (``PackedSequence``, ``pack_padded_sequence``, ...), parametrizations
(``parametrize``, ``parametrizations.weight_norm`` / ``spectral_norm``) and the older
hook-based ``weight_norm`` / ``spectral_norm``."""
from . import parametrizations, parametrize, rnn
from ._hook_norms import remove_spectral_norm, remove_weight_norm, spectral_norm, weight_norm
from .grad import (clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm,
                   zero_grad_)
from .init import skip_init
from .vector import parameters_to_vector, vector_to_parameters

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
           "parameters_to_vector", "parametrizations", "parametrize", "remove_spectral_norm",
           "remove_weight_norm", "rnn", "skip_init", "spectral_norm", "vector_to_parameters",
           "weight_norm", "zero_grad_"]
