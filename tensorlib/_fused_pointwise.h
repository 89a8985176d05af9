/* Fused elementwise kernels: Huber / smooth L1 (elementwise, summed, backward),
 * hardtanh's backward, nan_to_num, log-sigmoid with its backward and
 * binary_cross_entropy_with_logits (elementwise, summed, backward), float32 and float64.
 *
 * Plain loops the compiler vectorises inside target_clones (no inline vector helpers, which
 * gcc would scalarise). The module is built with -ffast-math -fno-finite-math-only, so the
 * NaN tests below stay; the selects are written so that NaN falls through to the arithmetic
 * (and so propagates) exactly where PyTorch's kernels propagate it.
 */
#ifndef TL_FUSED_POINTWISE_H
#define TL_FUSED_POINTWISE_H
#include <stddef.h>
#include <math.h>
#include "_simd_math.h"     /* TL_CLONES */
#include "_simd_f64.h"      /* float64 BCE-with-logits: tl_exp_d, tl_log1p_d */

/* Sums run in blocks of this many elements in the element type (vector lanes), each block
 * total added in double: float32 rounding stays at the block's size, not the array's. */
#define TL_FUSED_SUM_BLOCK 1024

#define TL_FUSED_POINTWISE_DEFINE(T, S)                                                      \
/* Huber (smooth = 0): z < delta ? z^2 / 2 : delta (z - delta / 2); smooth L1 (smooth = 1):  \
 * z < beta ? z^2 / (2 beta) : z - beta / 2; z = |x - y|, PyTorch's formulas. */             \
TL_CLONES                                                                                    \
static void tl_huber_##S(const T *x, const T *y, T *out, ptrdiff_t n, T delta, int smooth) { \
    const T hd = (T)0.5 * delta;                                                             \
    if (smooth) {                                                                            \
        const T ib = (T)0.5 / delta;                                                         \
        for (ptrdiff_t i = 0; i < n; i++) {                                                  \
            T z = x[i] - y[i];                                                               \
            z = z < 0 ? -z : z;                                                              \
            out[i] = z < delta ? z * z * ib : z - hd;                                        \
        }                                                                                    \
    } else {                                                                                 \
        for (ptrdiff_t i = 0; i < n; i++) {                                                  \
            T z = x[i] - y[i];                                                               \
            z = z < 0 ? -z : z;                                                              \
            out[i] = z < delta ? (T)0.5 * z * z : delta * (z - hd);                          \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
                                                                                             \
TL_CLONES                                                                                    \
static T tl_huber_block_##S(const T *x, const T *y, ptrdiff_t n, T delta, int smooth) {      \
    const T hd = (T)0.5 * delta;                                                             \
    T s = 0;                                                                                 \
    if (smooth) {                                                                            \
        const T ib = (T)0.5 / delta;                                                         \
        for (ptrdiff_t i = 0; i < n; i++) {                                                  \
            T z = x[i] - y[i];                                                               \
            z = z < 0 ? -z : z;                                                              \
            s += z < delta ? z * z * ib : z - hd;                                            \
        }                                                                                    \
    } else {                                                                                 \
        for (ptrdiff_t i = 0; i < n; i++) {                                                  \
            T z = x[i] - y[i];                                                               \
            z = z < 0 ? -z : z;                                                              \
            s += z < delta ? (T)0.5 * z * z : delta * (z - hd);                              \
        }                                                                                    \
    }                                                                                        \
    return s;                                                                                \
}                                                                                            \
                                                                                             \
/* The sum of the elementwise loss over n elements, without writing it. */                   \
static double tl_huber_sum_##S(const T *x, const T *y, ptrdiff_t n, T delta, int smooth) {   \
    double acc = 0;                                                                          \
    for (ptrdiff_t i = 0; i < n; i += TL_FUSED_SUM_BLOCK)                                    \
        acc += tl_huber_block_##S(x + i, y + i,                                              \
                                  n - i < TL_FUSED_SUM_BLOCK ? n - i : TL_FUSED_SUM_BLOCK,   \
                                  delta, smooth);                                            \
    return acc;                                                                              \
}                                                                                            \
                                                                                             \
/* d loss / d x: k g clip(x - y, -delta, delta), k = 1 (Huber) or 1 / beta (smooth L1),      \
 * times the reduction's scale; NaN in gives NaN (the clip's selects pass it through).       \
 * g is one number (gs = 0: a mean or sum's backward) or n of them (gs = 1). */              \
TL_CLONES                                                                                    \
static void tl_huber_grad_##S(const T *g, int gs, const T *x, const T *y, T *out,            \
                              ptrdiff_t n, T delta, T k) {                                   \
    if (!gs) {                                                                               \
        const T gk = g[0] * k;                                                               \
        for (ptrdiff_t i = 0; i < n; i++) {                                                  \
            T d = x[i] - y[i];                                                               \
            d = d < -delta ? -delta : (d > delta ? delta : d);                               \
            out[i] = gk * d;                                                                 \
        }                                                                                    \
    } else {                                                                                 \
        for (ptrdiff_t i = 0; i < n; i++) {                                                  \
            T d = x[i] - y[i];                                                               \
            d = d < -delta ? -delta : (d > delta ? delta : d);                               \
            out[i] = g[i] * k * d;                                                           \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
                                                                                             \
/* hardtanh's backward: g strictly inside (lo, hi), 0 at the bounds and beyond them. At NaN  \
 * always 0: PyTorch's vectorised CPU body gives 0 there but its scalar tail passes g, so    \
 * torch's value depends on the length; this picks one answer. */                            \
TL_CLONES                                                                                    \
static void tl_hardtanh_grad_##S(const T *g, const T *x, T *out, ptrdiff_t n, T lo, T hi) {  \
    for (ptrdiff_t i = 0; i < n; i++) {                                                      \
        T v = x[i];                                                                          \
        out[i] = (v > lo) & (v < hi) ? g[i] : (T)0;                                          \
    }                                                                                        \
}                                                                                            \
                                                                                             \
/* nan_to_num: NaN to nan, +inf to pinf, -inf to ninf, in one pass. Every test reads the     \
 * input, never a replacement, so an infinite replacement (nan = inf) is not replaced again. */\
TL_CLONES                                                                                    \
static void tl_nan_to_num_##S(const T *x, T *out, ptrdiff_t n, T nan_, T pinf, T ninf) {     \
    for (ptrdiff_t i = 0; i < n; i++) {                                                      \
        T v = x[i];                                                                          \
        out[i] = v != v ? nan_ : (v == (T)INFINITY ? pinf : (v == -(T)INFINITY ? ninf : v)); \
    }                                                                                        \
}

TL_FUSED_POINTWISE_DEFINE(float, f32)
TL_FUSED_POINTWISE_DEFINE(double, f64)

/* log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), PyTorch's stable form: -inf at -inf, 0 at
 * +inf, NaN at NaN. */
TL_CLONES
static void tl_logsigmoid_f32(const float *x, float *out, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = x[i], a = v < 0.0f ? -v : v;
        float m = v < 0.0f ? v : 0.0f;
        out[i] = m - tl_log1p01f(tl_expf(-a));
    }
}

/* Its backward, g sigmoid(-x), with z = exp(-|x|): g / (1 + z) below 0, g z / (1 + z) from 0
 * (PyTorch's log_sigmoid_backward); NaN gives NaN. */
TL_CLONES
static void tl_logsigmoid_grad_f32(const float *g, const float *x, float *out, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = x[i], a = v < 0.0f ? -v : v;
        float z = tl_expf(-a), r = 1.0f / (1.0f + z);
        out[i] = g[i] * (v < 0.0f ? r : z * r);
    }
}

/* expm1 and log1p, float32 (NumPy's are libm calls per element where it has no SVML, i.e.
 * without AVX-512: ~15 ns an element against ~2 for its exp and log). */
TL_MAP_F32(tl_expm1_f32, tl_expm1f)
TL_MAP_F32(tl_log1p_f32, tl_log1pf)

/* exp, exp2, log, log2, the hyperbolic functions and their inverses, atan, asin, acos, sin,
 * cos, tan, atan2 and hypot, float32 (NumPy's took 1.6-33 ns an element on an AVX2 Zen 3
 * core; NumPy with AVX-512 keeps its own) */
TL_MAP_F32(tl_exp_f32, tl_exp_fullf)
TL_MAP_F32(tl_exp2_f32, tl_exp2_fullf)
TL_MAP_F32(tl_log_f32, tl_log_fullf)
TL_MAP_F32(tl_log2_f32, tl_log2_fullf)
TL_MAP_F32(tl_sinh_f32, tl_sinhf)
TL_MAP_F32(tl_cosh_f32, tl_coshf)
TL_MAP_F32(tl_asinh_f32, tl_asinhf)
TL_MAP_F32(tl_acosh_f32, tl_acoshf)
TL_MAP_F32(tl_atanh_f32, tl_atanhf)
TL_MAP_F32(tl_atan_f32, tl_atanf)
TL_MAP_F32(tl_asin_f32, tl_asinf)
TL_MAP_F32(tl_acos_f32, tl_acosf)

#define TL_TRIG_MAP_F32(name, f, libm)                                                      \
TL_MAP_F32(name##_lanes, f)                                                                  \
static void name(const float *x, float *out, ptrdiff_t n) {                                  \
    name##_lanes(x, out, n);                                                                 \
    tl_trig_fixup(x, out, n, libm);                                                          \
}
TL_TRIG_MAP_F32(tl_sin_f32, tl_sinf, sinf)
TL_TRIG_MAP_F32(tl_cos_f32, tl_cosf, cosf)
TL_TRIG_MAP_F32(tl_tan_f32, tl_tanf, tanf)
TL_MAP2_F32(tl_atan2_f32, tl_atan2f)
TL_MAP2_F32(tl_hypot_f32, tl_hypotf)

/* ELU: x above 0, else alpha expm1(x) (NaN gives NaN), one pass. */
TL_CLONES
static void tl_elu_f32(const float *x, float *out, ptrdiff_t n, float alpha) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = v > 0.0f ? v : alpha * tl_expm1f(v);
    }
}

/* leaky ReLU and its backward, PyTorch's: x above 0, else slope x (NaN gives NaN; x may be
 * out, for F.leaky_relu_); g above 0, else slope g. */
TL_CLONES
static void tl_leaky_relu_f32(const float *x, float *out, ptrdiff_t n, float slope) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = v > 0.0f ? v : v * slope;
    }
}

TL_CLONES
static void tl_leaky_relu_grad_f32(const float *g, const float *x, float *out, ptrdiff_t n,
                                   float slope) {
    for (ptrdiff_t i = 0; i < n; i++) out[i] = x[i] > 0.0f ? g[i] : g[i] * slope;
}

/* ELU's backward: g alpha exp(x) at and below 0, else g (NaN x gives g, as PyTorch's). */
TL_CLONES
static void tl_elu_grad_f32(const float *g, const float *x, float *out, ptrdiff_t n,
                            float alpha) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = g[i] * (v <= 0.0f ? alpha * tl_expf(v) : 1.0f);
    }
}

/* softplus' backward: g where beta x > threshold, else g sigmoid(beta x) (NaN gives NaN). */
TL_CLONES
static void tl_softplus_grad_f32(const float *g, const float *x, float *out, ptrdiff_t n,
                                 float beta, float threshold) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float b = x[i] * beta;
        out[i] = g[i] * (b > threshold ? 1.0f : tl_sigmoidf(b));
    }
}

/* softplus, PyTorch's: x where beta x > threshold, else log1p(exp(beta x)) / beta, computed
 * as (max(bx, 0) + log1p(exp(-|bx|))) / beta: no overflow; NaN gives NaN. */
TL_CLONES
static void tl_softplus_f32(const float *x, float *out, ptrdiff_t n, float beta,
                            float threshold) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = x[i], b = v * beta, a = b < 0.0f ? -b : b;
        float r = ((b > 0.0f ? b : 0.0f) + tl_log1p01f(tl_expf(-a))) / beta;
        out[i] = b > threshold ? v : r;
    }
}

/* binary_cross_entropy_with_logits, PyTorch's formula: (1 - y) x - lw log_sigmoid(x), lw =
 * 1 + (pw - 1) y with a pos_weight pw (else 1), times a weight w; log_sigmoid(x) = min(x, 0) -
 * log1p(exp(-|x|)). Rows of P elements: w and pw advance by wstep / pstep a row (0: one row of
 * P values for every row, a broadcast over the last dims; P: full arrays) and are NULL when
 * absent. out != NULL: the values are written; else only their sum is returned (blocks of one
 * row or TL_FUSED_SUM_BLOCK in the element type, totals in double). inf/NaN as PyTorch's: the
 * same products (0 inf is NaN at x = +inf, y = 1). */
/* -|x| kept above -100 (NaN passes): tl_expf is not exact at +-inf */
static inline float tl_bcel_clampf(float v) {
    float a = v < 0.0f ? v : -v;
    return a < -100.0f ? -100.0f : a;
}
#define TL_BCEL_VALUE_f32(xv, yv, lw)                                                         \
    ((1.0f - (yv)) * (xv) - (lw) * (((xv) < 0.0f ? (xv) : 0.0f)                                \
                                    - tl_log1p01f(tl_expf(tl_bcel_clampf(xv)))))
#define TL_BCEL_VALUE_f64(xv, yv, lw)                                                         \
    ((1.0 - (yv)) * (xv) - (lw) * (((xv) < 0.0 ? (xv) : 0.0) - tl_log1p_d(tl_exp_d(-fabs(xv)))))

/* the sum of m <= TL_FUSED_SUM_BLOCK values EXPR (of i) into s: float32 as one reduction gcc
 * vectorises (-ffast-math reassociates it); float64, built without reassociation (TL_F64_BEGIN:
 * gcc would keep the reduction, and the lanes' exp and log1p in it, scalar), written to a
 * block first and summed in four lanes */
#define TL_BCEL_SUM_f32(EXPR) for (ptrdiff_t i = 0; i < m; i++) s += (EXPR);
#define TL_BCEL_SUM_f64(EXPR)                                                                \
    double block[TL_FUSED_SUM_BLOCK];                                                        \
    for (ptrdiff_t i = 0; i < m; i++) block[i] = (EXPR);                                     \
    s = tl_sum4_d(block, m);

typedef double tl_v4d __attribute__((vector_size(32)));

/* v[0] + ... + v[m - 1] in four interleaved partial sums (vector lanes whatever the options) */
static inline double tl_sum4_d(const double *v, ptrdiff_t m) {
    tl_v4d acc = {0.0, 0.0, 0.0, 0.0}, t;
    ptrdiff_t i = 0;
    for (; i + 4 <= m; i += 4) {
        memcpy(&t, v + i, sizeof t);
        acc += t;
    }
    double s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (; i < m; i++) s += v[i];
    return s;
}

/* One function per weight combination, each with two plain loops (writing, summing): with
 * all eight loops in one function gcc left some of them scalar. */
#define TL_BCEL_SEG(T, S, NAME, EXPR)                                                        \
TL_CLONES                                                                                    \
static T tl_bcel_##NAME##_##S(const T *x, const T *y, const T *w, const T *pw, T *out,       \
                              ptrdiff_t m) {                                                 \
    (void)w; (void)pw;                                                                       \
    T s = 0;                                                                                 \
    if (out) { for (ptrdiff_t i = 0; i < m; i++) out[i] = (EXPR); }                          \
    else { TL_BCEL_SUM_##S(EXPR) }                                                           \
    return s;                                                                                \
}

/* d/dx = k g w (lw sigmoid(x) - pw y) (PyTorch's; without pw: sigmoid(x) - y), g one number  \
 * (gs = 0) or per element; sigmoid(x) = 1 / (1 + exp(-x)). */
#define TL_BCEL_GRAD_SEG(T, S, NAME, D, ONE)                                                 \
TL_CLONES                                                                                    \
static void tl_bcel_grad_##NAME##_##S(const T *g, int gs, const T *x, const T *y,            \
                                      const T *w, const T *pw, T *out, ptrdiff_t m, T k) {   \
    (void)w; (void)pw;                                                                       \
    if (gs) {                                                                                \
        for (ptrdiff_t i = 0; i < m; i++) {                                                  \
            T sg = ONE / (ONE + TL_BCEL_EXP_##S(-x[i]));                                     \
            out[i] = g[i] * k * (D);                                                         \
        }                                                                                    \
    } else {                                                                                 \
        const T g0 = g[0] * k;                                                               \
        for (ptrdiff_t i = 0; i < m; i++) {                                                  \
            T sg = ONE / (ONE + TL_BCEL_EXP_##S(-x[i]));                                     \
            out[i] = g0 * (D);                                                               \
        }                                                                                    \
    }                                                                                        \
}

#define TL_BCEL_DEFINE(T, S, ONE)                                                            \
TL_BCEL_SEG(T, S, wp, w[i] * TL_BCEL_VALUE_##S(x[i], y[i], ONE + (pw[i] - ONE) * y[i]))      \
TL_BCEL_SEG(T, S, p, TL_BCEL_VALUE_##S(x[i], y[i], ONE + (pw[i] - ONE) * y[i]))              \
TL_BCEL_SEG(T, S, w, w[i] * TL_BCEL_VALUE_##S(x[i], y[i], ONE))                              \
TL_BCEL_SEG(T, S, plain, TL_BCEL_VALUE_##S(x[i], y[i], ONE))                                 \
TL_BCEL_GRAD_SEG(T, S, wp, w[i] * ((ONE + (pw[i] - ONE) * y[i]) * sg - pw[i] * y[i]), ONE)   \
TL_BCEL_GRAD_SEG(T, S, p, (ONE + (pw[i] - ONE) * y[i]) * sg - pw[i] * y[i], ONE)             \
TL_BCEL_GRAD_SEG(T, S, w, w[i] * (sg - y[i]), ONE)                                           \
TL_BCEL_GRAD_SEG(T, S, plain, sg - y[i], ONE)                                                \
                                                                                             \
static T tl_bcel_seg_##S(const T *x, const T *y, const T *w, const T *pw, T *out,            \
                         ptrdiff_t m) {                                                      \
    if (w && pw) return tl_bcel_wp_##S(x, y, w, pw, out, m);                                 \
    if (pw) return tl_bcel_p_##S(x, y, w, pw, out, m);                                       \
    if (w) return tl_bcel_w_##S(x, y, w, pw, out, m);                                        \
    return tl_bcel_plain_##S(x, y, w, pw, out, m);                                           \
}                                                                                            \
                                                                                             \
static double tl_bcel_rows_##S(const T *x, const T *y, const T *w, ptrdiff_t wstep,          \
                               const T *pw, ptrdiff_t pstep, T *out, ptrdiff_t rows,         \
                               ptrdiff_t P) {                                                \
    double acc = 0;                                                                          \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                   \
        const ptrdiff_t o = r * P;                                                           \
        for (ptrdiff_t c = 0; c < P; c += TL_FUSED_SUM_BLOCK) {                              \
            ptrdiff_t m = P - c < TL_FUSED_SUM_BLOCK ? P - c : TL_FUSED_SUM_BLOCK;           \
            acc += tl_bcel_seg_##S(x + o + c, y + o + c, w ? w + r * wstep + c : 0,          \
                                   pw ? pw + r * pstep + c : 0, out ? out + o + c : 0, m);   \
        }                                                                                    \
    }                                                                                        \
    return acc;                                                                              \
}                                                                                            \
                                                                                             \
static void tl_bcel_grad_seg_##S(const T *g, int gs, const T *x, const T *y, const T *w,     \
                                 const T *pw, T *out, ptrdiff_t m, T k) {                    \
    if (w && pw) tl_bcel_grad_wp_##S(g, gs, x, y, w, pw, out, m, k);                         \
    else if (pw) tl_bcel_grad_p_##S(g, gs, x, y, w, pw, out, m, k);                          \
    else if (w) tl_bcel_grad_w_##S(g, gs, x, y, w, pw, out, m, k);                           \
    else tl_bcel_grad_plain_##S(g, gs, x, y, w, pw, out, m, k);                              \
}                                                                                            \
                                                                                             \
static void tl_bcel_grad_rows_##S(const T *g, int gs, const T *x, const T *y, const T *w,    \
                                  ptrdiff_t wstep, const T *pw, ptrdiff_t pstep, T *out,     \
                                  ptrdiff_t rows, ptrdiff_t P, T k) {                        \
    for (ptrdiff_t r = 0; r < rows; r++) {                                                   \
        const ptrdiff_t o = r * P;                                                           \
        tl_bcel_grad_seg_##S(gs ? g + o : g, gs, x + o, y + o, w ? w + r * wstep : 0,        \
                             pw ? pw + r * pstep : 0, out + o, P, k);                        \
    }                                                                                        \
}

#define TL_BCEL_EXP_f32(v) tl_expf((v) < -100.0f ? -100.0f : ((v) > 100.0f ? 100.0f : (v)))
#define TL_BCEL_EXP_f64(v) tl_exp_d(v)
TL_BCEL_DEFINE(float, f32, 1.0f)
/* float64 in the lanes of _simd_f64.h (libm's exp and log1p were 1.7x PyTorch's time) */
TL_F64_BEGIN
TL_BCEL_DEFINE(double, f64, 1.0)
TL_F64_END

#endif
