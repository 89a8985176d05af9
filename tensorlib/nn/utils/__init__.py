"""Utilities: gradient clipping and zeroing, parameters as one vector, and ``rnn``'s
sequence padding and packing (``PackedSequence``, ``pack_padded_sequence``, ...)."""
from . import rnn
from .grad import clip_grad_norm_, clip_grad_value_, zero_grad_
from .vector import parameters_to_vector, vector_to_parameters

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector", "rnn",
           "vector_to_parameters", "zero_grad_"]
