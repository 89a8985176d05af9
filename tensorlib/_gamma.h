/* digamma over contiguous runs (float32 / float64), with PyTorch's CPU values:
 * PyTorch's calc_digamma (Cephes psi): reflection for x < 0 with pi / tan(pi r) on
 * the fractional part r, the recurrence up to 10, then the asymptotic series. Poles: +-inf
 * at +-0, NaN at negative integers and -inf.
 */
#ifndef TL_GAMMA_H
#define TL_GAMMA_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* x >= 0 (or NaN) after the reflection */
static inline double tl_digamma_pos_f64(double x) {
    double result = 0;
    while (x < 10) {
        result -= 1 / x;
        x += 1;
    }
    if (x == 10)
        return result + 2.25175258906672110764;
    double y = 0;
    if (x < 1.0e17) {
        double z = 1.0 / (x * x);
        double p = 8.33333333333333333333E-2;
        p = p * z - 2.10927960927960927961E-2;
        p = p * z + 7.57575757575757575758E-3;
        p = p * z - 4.16666666666666666667E-3;
        p = p * z + 3.96825396825396825397E-3;
        p = p * z - 8.33333333333333333333E-3;
        p = p * z + 8.33333333333333333333E-2;
        y = z * p;
    }
    return result + log(x) - (0.5 / x) - y;
}

/* zeros are found and signed on the bits: with -ffast-math (no signed zeros) gcc folds x
 * to +0 once it knows x == 0 */
static inline double tl_digamma1_f64(double x) {
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((bits << 1) == 0)
        return (bits >> 63) ? INFINITY : -INFINITY;
    if (x < 0) {
        if (x == trunc(x))
            return NAN;
        double r = x - trunc(x);
        return tl_digamma_pos_f64(1 - x) - 3.14159265358979323846 / tan(3.14159265358979323846 * r);
    }
    return tl_digamma_pos_f64(x);
}

static inline float tl_digamma_pos_f32(float x) {
    float result = 0;
    while (x < 10) {
        result -= 1 / x;
        x += 1;
    }
    if (x == 10)
        return result + 2.25175258906672110764f;
    float y = 0;
    if (x < 1.0e17f) {
        float z = 1 / (x * x);
        float p = 8.33333333333333333333E-2f;
        p = p * z - 2.10927960927960927961E-2f;
        p = p * z + 7.57575757575757575758E-3f;
        p = p * z - 4.16666666666666666667E-3f;
        p = p * z + 3.96825396825396825397E-3f;
        p = p * z - 8.33333333333333333333E-3f;
        p = p * z + 8.33333333333333333333E-2f;
        y = z * p;
    }
    return result + logf(x) - (0.5f / x) - y;
}

static inline float tl_digamma1_f32(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if ((uint32_t)(bits << 1) == 0)
        return (bits >> 31) ? INFINITY : -INFINITY;
    if (x < 0) {
        if (x == truncf(x))
            return NAN;
        double r = (double)x - trunc((double)x);
        float pt = (float)(3.14159265358979323846 / tan(3.14159265358979323846 * r));
        return tl_digamma_pos_f32(1 - x) - pt;
    }
    return tl_digamma_pos_f32(x);
}

static void tl_digamma_f64(const double *x, double *out, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = tl_digamma1_f64(x[i]);
}

static void tl_digamma_f32(const float *x, float *out, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = tl_digamma1_f32(x[i]);
}
#endif
