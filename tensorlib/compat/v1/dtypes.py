"""TF1's dtype names (``tf.float32``, ``tf.int64``, ``tf.bool``, ...) as NumPy dtypes."""
import builtins

import numpy as np

_pybool = builtins.bool
float16, float32, float64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
int8, int16, int32, int64 = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32),
                             np.dtype(np.int64))
uint8 = np.dtype(np.uint8)
bool = np.dtype(np.bool_)   # tf.bool (shadows the builtin in this module only)
