"""Build script: compiles tensorlib._ops (Cython, OpenMP)."""
import glob
import os
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

openmp = [] if sys.platform == "darwin" or os.environ.get("TENSORLIB_NO_OPENMP") else ["-fopenmp"]

macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
extensions = [
    # kernels: OpenMP, fast math that still honours NaN/inf
    Extension("tensorlib._ops", ["tensorlib/_ops.pyx"],
              include_dirs=[np.get_include(), "tensorlib"],
              depends=["tensorlib/_simd_math.h", "tensorlib/_softmax.h", "tensorlib/_sgemm.h",
                       "tensorlib/_im2col.h", "tensorlib/_sgemv.h", "tensorlib/_half.h",
                       "tensorlib/_reduce.h", "tensorlib/_radix.h", "tensorlib/_simd_vec.h",
                       "tensorlib/_scatter_ext.h", "tensorlib/_gelu_vec.h", "tensorlib/_bag.h",
                       "tensorlib/_gamma.h", "tensorlib/_lgamma_tmpl.h", "tensorlib/_grid2d.h",
                       "tensorlib/_fused_pointwise.h", "tensorlib/_outer_binary.h",
                       "tensorlib/_simd_f64_inside.h", "tensorlib/_simd_f64.h"],
              extra_compile_args=["-O3", "-ffast-math", "-fno-finite-math-only"] + openmp,
              extra_link_args=openmp, define_macros=macros),
    # scans, nan-reductions, mode and cdist p=1 (same flags as _ops)
    Extension("tensorlib._scan_kernels", ["tensorlib/_scan_kernels.pyx"],
              include_dirs=["tensorlib"], depends=["tensorlib/_scan_kernels.h"],
              extra_compile_args=["-O3", "-ffast-math", "-fno-finite-math-only"] + openmp,
              extra_link_args=openmp, define_macros=macros),
    # the dispatch hot path: Tensor slots, tape nodes, apply
    Extension("tensorlib._core", ["tensorlib/_core.pyx"], include_dirs=[np.get_include()],
              extra_compile_args=["-O2"], define_macros=macros),
]

# .ci/run builds the wheel first, unpacks its compiled extensions into tensorlib/ and sets
# TENSORLIB_USE_BUILT=1 for the README's test command: its editable install then uses those
# instead of compiling the same sources a second time (about 6 minutes on 2 cores)
if os.environ.get("TENSORLIB_USE_BUILT") == "1" and all(
        glob.glob(os.path.join("tensorlib", e.name.split(".")[-1] + ".*.so")) for e in extensions):
    extensions = []

setup(ext_modules=cythonize(extensions, compiler_directives={"language_level": 3}))
