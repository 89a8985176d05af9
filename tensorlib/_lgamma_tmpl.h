/* lgamma on one register of doubles: the body shared by the AVX-512 and AVX2 kernels of
 * _gamma.h, which define the V* macros and TL_LG_SUFFIX before including this file (no
 * include guard: it is a template).
 *
 * y = |x|. Near the roots the Taylor series of lgamma(2 + z) (|z| <= 1/2, z = y - 1 or
 * y - 2 exact by Sterbenz) keeps the relative accuracy that libm has there: lgamma(1 + z) =
 * lgamma(2 + z) - log(1 + z), lgamma(y) = lgamma(2 + y) - log(y (1 + y)) below 1/2, and
 * lgamma(y) = lgamma(f) + log(f (f + 1) ... (y - 1)) with f = y - n in [1.5, 2.5) up to 10
 * (the factors f + j are exact). From 10 on, Stirling's series. Negative x by reflection:
 * lgamma(x) = -log(y |sin(pi x)| / pi) - lgamma(y), sin(pi x) / pi = d Ps(d^2) on the
 * distance d to the nearest integer. One vector log (fdlibm's) per part. Lanes with
 * 0 < y < 1e-150 (where y (1 + y) or y d may leave the normal range) are flagged in *fix
 * for the caller to recompute with libm. lp (a constant once inlined): the float32 kernels'
 * shorter series, accurate to ~1e-10 relative, ample before the rounding to float32.
 */
#define TL_LG_CAT2(a, b) a##_##b
#define TL_LG_CAT(a, b) TL_LG_CAT2(a, b)

TL_LG_TARGET
static inline VD TL_LG_CAT(tl_log_vd, TL_LG_SUFFIX)(VD x) {
    VD m, k;
    VSPLIT(x, m, k);                              /* x = 2^k m, m in [1, 2) */
    VM big = VCMP(m, VSET(1.41421356237309504880), _CMP_GT_OQ);
    m = VSEL(big, VMUL(m, VSET(0.5)), m);
    k = VSEL(big, VADD(k, VSET(1.0)), k);
    VD f = VSUB(m, VSET(1.0));
    VD hfsq = VMUL(VMUL(VSET(0.5), f), f);
    VD s = VMUL(f, VRCP(VADD(VSET(2.0), f)));
    VD z = VMUL(s, s), w = VMUL(z, z);
    VD t1 = VMUL(w, VFMA(w, VFMA(w, VSET(1.531383769920937332e-01), VSET(2.222219843214978396e-01)),
                         VSET(3.999999999940941908e-01)));
    VD t2 = VMUL(z, VFMA(w, VFMA(w, VFMA(w, VSET(1.479819860511658591e-01),
                                         VSET(1.818357216161805012e-01)),
                                 VSET(2.857142874366239149e-01)),
                         VSET(6.666666666666735130e-01)));
    VD R = VADD(t2, t1);
    VD lo = VFMA(k, VSET(1.90821492927058770002e-10), VMUL(s, VADD(hfsq, R)));
    return VFMA(k, VSET(6.93147180369123816490e-01), VSUB(f, VSUB(hfsq, lo)));
}

TL_LG_TARGET
static inline VD TL_LG_CAT(tl_lgamma_vd, TL_LG_SUFFIX)(VD x, int *fix, const int lp) {
    const VD one = VSET(1.0);
    VD y = VABS(x);
    VM lt05 = VCMP(y, VSET(0.5), _CMP_LT_OQ), lt15 = VCMP(y, VSET(1.5), _CMP_LT_OQ);
    VM lt25 = VCMP(y, VSET(2.5), _CMP_LT_OQ), lt10 = VCMP(y, VSET(10.0), _CMP_LT_OQ);
    VD nb = VMIN(VMAX(VFLOOR(VSUB(y, VSET(1.5))), VSET(0.0)), VSET(8.0));
    VD f = VSUB(y, nb);
    VD z = VSEL(lt15, VSUB(y, one), VSUB(f, VSET(2.0)));
    z = VSEL(lt05, y, z);
    VD R = one;
    if (VANY(VANDNOT(lt25, lt10))) {              /* 2.5 <= y < 10: f (f + 1) ... (y - 1) */
        for (int j = 0; j < 8; j++) {
            VD jj = VSET((double)j);
            R = VSEL(VCMP(jj, nb, _CMP_LT_OQ), VMUL(R, VADD(f, jj)), R);
        }
    }
    R = VSEL(lt15, y, R);
    R = VSEL(lt05, VMUL(y, VADD(one, y)), R);
    R = VSEL(lt10, R, y);
    VD L = TL_LG_CAT(tl_log_vd, TL_LG_SUFFIX)(R);
    /* lgamma(2 + z) = z ((1 - gamma) + sum_k (-1)^k (zeta(k) - 1) z^(k-1) / k), k = 2..27 */
    VD a;
    if (lp) {
        a = VSET(-2.039215753801366e-06);
    } else {
        a = VSET(-2.7595228851242334e-10);
        a = VFMA(a, z, VSET(5.731367241678862e-10));
        a = VFMA(a, z, VSET(-1.1921401405860912e-09));
        a = VFMA(a, z, VSET(2.4836745438024785e-09));
        a = VFMA(a, z, VSET(-5.183475041970047e-09));
        a = VFMA(a, z, VSET(1.0838659214896955e-08));
        a = VFMA(a, z, VSET(-2.2711094608943164e-08));
        a = VFMA(a, z, VSET(4.7698101693639804e-08));
        a = VFMA(a, z, VSET(-1.0043224823968099e-07));
        a = VFMA(a, z, VSET(2.1207184805554665e-07));
        a = VFMA(a, z, VSET(-4.492469198764566e-07));
        a = VFMA(a, z, VSET(9.55141213040742e-07));
        a = VFMA(a, z, VSET(-2.039215753801366e-06));
    }
    a = VFMA(a, z, VSET(4.374866789907488e-06));
    a = VFMA(a, z, VSET(-9.439488275268397e-06));
    a = VFMA(a, z, VSET(2.050721277567069e-05));
    a = VFMA(a, z, VSET(-4.492623673813314e-05));
    a = VFMA(a, z, VSET(9.945751278180853e-05));
    a = VFMA(a, z, VSET(-0.00022315475845357939));
    a = VFMA(a, z, VSET(0.0005096695247430425));
    a = VFMA(a, z, VSET(-0.001192753911703261));
    a = VFMA(a, z, VSET(0.0028905103307415234));
    a = VFMA(a, z, VSET(-0.007385551028673986));
    a = VFMA(a, z, VSET(0.020580808427784546));
    a = VFMA(a, z, VSET(-0.0673523010531981));
    a = VFMA(a, z, VSET(0.3224670334241132));
    VD S = VMUL(z, VFMA(a, z, VSET(0.42278433509846713)));
    VD pos = VSEL(lt15, VSUB(S, L), VADD(S, L));
    if (!VALL(lt10)) {                           /* Stirling: B_2k / (2k (2k - 1) y^(2k-1)) */
        VD r = VRCP(y), r2 = VMUL(r, r);
        VD w = VSET(0.0008417508417508417);
        if (!lp) {
            w = VSET(-0.029550653594771242);
            w = VFMA(w, r2, VSET(0.00641025641025641));
            w = VFMA(w, r2, VSET(-0.0019175269175269176));
            w = VFMA(w, r2, VSET(0.0008417508417508417));
        }
        w = VFMA(w, r2, VSET(-0.0005952380952380953));
        w = VFMA(w, r2, VSET(0.0007936507936507937));
        w = VFMA(w, r2, VSET(-0.002777777777777778));
        w = VFMA(w, r2, VSET(0.08333333333333333));
        /* (y - 1/2)(log y - 1) + (log(2 pi) - 1) / 2 + w */
        VD st = VFMA(VSUB(y, VSET(0.5)), VSUB(L, one), VFMA(w, r, VSET(0.4189385332046727)));
        pos = VSEL(lt10, pos, st);
    }
    VD res = pos;
    VM neg = VCMP(x, VSET(0.0), _CMP_LT_OQ);
    VD rx = VROUND(x);
    if (VANY(neg)) {
        VD d = VSUB(x, rx), d2 = VMUL(d, d);
        VD ps = VSET(2.5312174041370274e-07);
        if (!lp) {
            ps = VSET(-3.3481335350440666e-12);
            ps = VFMA(ps, d2, VSET(1.7165384749821432e-10));
            ps = VFMA(ps, d2, VSET(-7.304711822217775e-09));
            ps = VFMA(ps, d2, VSET(2.5312174041370274e-07));
        }
        ps = VFMA(ps, d2, VSET(-6.975873661656381e-06));
        ps = VFMA(ps, d2, VSET(0.000148428793031071));
        ps = VFMA(ps, d2, VSET(-0.0023460810354558235));
        ps = VFMA(ps, d2, VSET(0.0261478478176548));
        ps = VFMA(ps, d2, VSET(-0.19075182412208422));
        ps = VFMA(ps, d2, VSET(0.8117424252833536));
        ps = VFMA(ps, d2, VSET(-1.6449340668482264));
        ps = VFMA(ps, d2, one);
        VD T = VMUL(VMUL(y, VABS(d)), ps);
        T = VSEL(VCMP(T, VSET(1e-300), _CMP_GT_OQ), T, one);   /* poles: replaced below */
        VD LT = TL_LG_CAT(tl_log_vd, TL_LG_SUFFIX)(T);
        res = VSEL(neg, VSUB(VSUB(VSET(0.0), LT), pos), pos);
    }
    VM pole = VAND(VCMP(x, VSET(0.0), _CMP_LE_OQ), VCMP(x, rx, _CMP_EQ_OQ));
    res = VSEL(pole, VSET(INFINITY), res);
    res = VSEL(VCMP(y, VSET(INFINITY), _CMP_EQ_OQ), VSET(INFINITY), res);
    res = VSEL(VCMP(x, x, _CMP_UNORD_Q), x, res);
    *fix = VANY(VAND(VCMP(y, VSET(1e-150), _CMP_LT_OQ), VCMP(y, VSET(0.0), _CMP_GT_OQ)));
    return res;
}

#undef TL_LG_CAT
#undef TL_LG_CAT2
