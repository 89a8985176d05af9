"""Which ops autocast, per device type: PyTorch 2.13's lists, as data.

Each entry maps the name a tensorlib op function passes to
:func:`tensorlib.amp.cast.autocast_call` to a policy:

- ``LOWER``: floating inputs (except float64) run in the autocast dtype (float16);
- ``LOWER_PRODUCT``: as ``LOWER`` when the op multiplies two or more operands (an einsum
  of one operand is a plain sum; PyTorch's CPU einsum autocasts only through its bmm);
- ``FP32``: float16 inputs run in float32;
- ``FP32_OPT``: as ``FP32``, unless the call gives ``dtype=`` (PyTorch's
  ``fp32_set_opt_dtype``: ``sum(x, dtype=float16)`` keeps float16);
- ``PROMOTE``: floating inputs are cast to the widest floating dtype among them;
- ``BANNED``: refused (``binary_cross_entropy`` on CUDA: unsafe in float16);
- ``KEEP``: run as called, with autocast off inside (an op PyTorch runs as one kernel, such
  as ``lstm_cell`` on the CPU, whose tensorlib composite would otherwise autocast the
  products it is built of).

An op absent from a device type's table runs unchanged. ``"cuda"`` follows PyTorch's CUDA
lists (the "CUDA Ops that can autocast to float16 / float32 / promote" of the AMP docs,
``aten/src/ATen/autocast_mode.cpp``); ``"cpu"`` follows PyTorch 2.13's CPU lists as
``torch.autocast("cpu", dtype=torch.float16)`` behaves (checked against PyTorch in
tests/training/test_autocast_grad_scaler.py). Both cover only the tensorlib functions that
call the helper; PyTorch
names that tensorlib computes elsewhere (``x ** y`` and ``a @ b`` on Tensors, ``mv``,
``addmv``, ``addr``, ``erfinv``, ``dist``, ``renorm``, ``pdist``, ``quantile``, ``trace``,
``cat``...) are not autocast.
"""
from __future__ import annotations

LOWER = "lower"
LOWER_PRODUCT = "lower_product"
FP32 = "fp32"
FP32_OPT = "fp32_opt"
PROMOTE = "promote"
BANNED = "banned"
KEEP = "keep"

_LOWER_COMMON = ("matmul", "addmm", "baddbmm", "linear", "conv1d", "conv2d", "conv3d",
                 "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "prelu",
                 "scaled_dot_product_attention")

_LOSSES = ("cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
           "kl_div", "binary_cross_entropy_with_logits", "poisson_nll_loss",
           "margin_ranking_loss", "hinge_embedding_loss", "soft_margin_loss",
           "cosine_embedding_loss", "triplet_margin_loss", "multi_margin_loss",
           "multilabel_margin_loss")

CUDA: dict[str, str] = {
    **dict.fromkeys(_LOWER_COMMON + ("einsum", "lstm_cell", "gru_cell"), LOWER),
    **dict.fromkeys(_LOSSES + (
        "acos", "asin", "cosh", "sinh", "tan", "exp", "expm1", "log", "log2", "log1p",
        "reciprocal", "rsqrt", "pow", "softplus", "layer_norm", "group_norm",
        "cosine_similarity", "normalize", "cdist", "logsumexp"), FP32),
    **dict.fromkeys(("softmax", "log_softmax", "sum", "prod", "cumsum", "cumprod", "norm"),
                    FP32_OPT),
    **dict.fromkeys(("bilinear", "tensordot", "grid_sample"), PROMOTE),
    "binary_cross_entropy": BANNED,
}

CPU: dict[str, str] = {
    **dict.fromkeys(_LOWER_COMMON + ("tensordot",), LOWER),
    "einsum": LOWER_PRODUCT,
    **dict.fromkeys(_LOSSES + ("binary_cross_entropy", "prod", "cdist", "inv", "solve",
                               "cholesky", "eigh", "grid_sample", "ctc_loss"), FP32),
    **dict.fromkeys(("lstm_cell", "gru_cell"), KEEP),
}

POLICIES: dict[str, dict[str, str]] = {"cuda": CUDA, "cpu": CPU}

# every name with a policy somewhere: the generated elementwise functions check autocast only
# when theirs is one (the others pay nothing)
AUTOCAST_OPS = frozenset(CUDA) | frozenset(CPU)

# ops whose tensorlib function computes in float16 itself (on CUDA: cuBLAS half GEMMs). The
# others check for float32/float64 inputs: their float16 run rounds the inputs to float16,
# computes in float32 and rounds the result to float16, as PyTorch's CPU kernels do. On the
# CPU every op runs so (NumPy has no float16 BLAS: a float16 matmul is slower than float32).
NATIVE_HALF = {"cuda": frozenset(("matmul", "addmm", "baddbmm", "einsum", "tensordot")),
               "cpu": frozenset()}
