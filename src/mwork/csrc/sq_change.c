/* Eq. 8's multiplicative form (mwork.softmax_change) fused over keys, one query row at a time.
 *
 * For each head h, query row t and column i (a zeroed Q or K dim), with p the row's probabilities
 * over keys s in [lo[t], hi[t]) and z_s = fx1[t,i]·y1[s,i] (+ fx2[t,i]·y2[s,i]) the logit change:
 *
 *     u_s = e^{z_s} − 1,  P = Σ_s p_s,  U = Σ_s p_s·u_s,  W = Σ_s p_s·e^{z_s} = P + U,
 *     ||p' − p||² = Σ_s p_s² (u_s − U + (1 − P))² / W²        (= Σ_s p_s² (e^{z_s} − W)² / W²)
 *
 * Working with u = expm1(z) instead of e^z avoids the cancellation of e^z − W near 1 (small
 * changes, the common case); where W < MW_SMALL_W the column is redone as e^z − W.  Columns go
 * in blocks of MW_VB whose u_s wait in an L1-sized buffer, so z is never written to memory.  out[h, i] +=
 * Σ_t ||p'_t − p_t||², the row sum in double.  Compiled twice: MW_DOUBLE unset (float32 data:
 * float inner sums, a polynomial exp/expm1 the compiler vectorises, error ≤ 2 ulp) and set
 * (float64: double throughout, libm's exp and expm1).  Callers bound |z| (mwork.plnd: FAST_EXP_LIMIT) first.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Columns per block: one vector of MW_VB lanes (GCC/Clang vector extensions; one AVX-512
 * register of floats).  A block's accumulators stay in registers and its u_s in an L1 buffer. */
#define MW_VB 16
/* Below this W the numerator is formed as e^z − W: u − (W − 1) would cancel (W = P + U). */
#define MW_SMALL_W 0.5

#ifdef MW_DOUBLE
typedef double real;
typedef int64_t ireal;
#else
typedef float real;
typedef int32_t ireal;
#endif
typedef real vec __attribute__((vector_size(MW_VB * sizeof(real))));
typedef ireal ivec __attribute__((vector_size(MW_VB * sizeof(real))));

#ifdef MW_DOUBLE
/* e^x and e^x − 1, lane by lane (libm; float64 is for tests and exactness, not speed). */
static inline void mw_exp2(vec x, vec *e, vec *u) {
    for (int j = 0; j < MW_VB; j++) {
        (*e)[j] = exp(x[j]);
        (*u)[j] = expm1(x[j]);
    }
}
#else
/* e^x and e^x − 1 for |x| ≤ 87: x = n·ln2 + r, |r| ≤ ln2/2 (Cody-Waite, two-part ln2);
 * e^r − 1 = q = r + r²·poly(r) (minimax coefficients of Cephes' expf, ≤ 2 ulp), so
 * e^x = 2^n·q + 2^n and e^x − 1 = 2^n·q + (2^n − 1), neither cancelling. */
static inline void mw_exp2(vec x, vec *e, vec *u) {
    const vec n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    vec r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    vec q = 1.9875691500e-4f + 0 * r;
    q = q * r + 1.3981999507e-3f;
    q = q * r + 8.3334519073e-3f;
    q = q * r + 4.1665795894e-2f;
    q = q * r + 1.6666665459e-1f;
    q = q * r + 5.0000001201e-1f;
    q = q * (r * r) + r;
    const ivec bits = (__builtin_convertvector(n, ivec) + 127) << 23;
    vec scale; /* 2^n */
    memcpy(&scale, &bits, sizeof scale);
    *e = scale * q + scale;
    *u = scale * q + (scale - 1.0f);
}
#endif

static inline vec mw_load(const real *restrict x) { /* one unaligned vector load */
    vec v;
    memcpy(&v, x, sizeof v);
    return v;
}

/* Columns [i0, i0 + MW_VB) of one row. */
static inline void mw_block(int64_t i0, int64_t s0, int64_t s1, int64_t d, double psum,
                            const real *restrict a1, const real *restrict a2,
                            const real *restrict y1, const real *restrict y2,
                            const real *restrict prow, vec *restrict buf, double *restrict rows) {
    const vec x1 = mw_load(a1 + i0), x2 = a2 ? mw_load(a2 + i0) : (vec){0};
    const real *restrict yb = a2 ? y2 : y1; /* no RoPE pair: x2 = 0 adds an exact 0 */
    vec w = {0}, m = {0}, acc = {0};
    for (int64_t s = s0; s < s1; s++) { /* u_s, W = Σ p e^z, U = Σ p u */
        const vec z = x1 * mw_load(y1 + s * d + i0) + x2 * mw_load(yb + s * d + i0);
        vec e;
        mw_exp2(z, &e, &buf[s]);
        w += prow[s] * e;
        m += prow[s] * buf[s];
    }
    m -= (real)(1.0 - psum); /* W − 1 = U − (1 − P) */
    for (int64_t s = s0; s < s1; s++) { /* Σ_s p_s² (u_s − (W − 1))² */
        const vec df = buf[s] - m;
        acc += (prow[s] * prow[s]) * df * df;
    }
    int small = 0;
    for (int64_t j = 0; j < MW_VB; j++) small |= w[j] < MW_SMALL_W;
    if (small) { /* rare: those columns are redone as Σ_s p_s² (e^z_s − W)² */
        vec acc2 = {0};
        for (int64_t s = s0; s < s1; s++) {
            const vec z = x1 * mw_load(y1 + s * d + i0) + x2 * mw_load(yb + s * d + i0);
            vec e, u;
            mw_exp2(z, &e, &u);
            const vec df = e - w;
            acc2 += (prow[s] * prow[s]) * df * df;
        }
        for (int64_t j = 0; j < MW_VB; j++)
            if (w[j] < MW_SMALL_W) acc[j] = acc2[j];
    }
    for (int64_t j = 0; j < MW_VB; j++) rows[i0 + j] += (double)acc[j] / ((double)w[j] * w[j]);
}

/* Rows of hb heads: fx1, fx2 [hb, tb, d] (fx2 may be NULL, then y2 too), y1, y2 [hb, ns, d],
 * p [hb, tb, ns], lo, hi [tb] key span of each row, out [hb, d] (added to).  All contiguous;
 * d a multiple of MW_VB (callers pad dims with zeros: z = 0 there).
 * Returns 0, or −1 when the work buffer cannot be allocated (out untouched). */
int mw_sq_change(int64_t hb, int64_t tb, int64_t ns, int64_t d, const real *restrict fx1,
                 const real *restrict fx2, const real *restrict y1, const real *restrict y2,
                 const real *restrict p, const int64_t *restrict lo, const int64_t *restrict hi,
                 real *restrict out) {
    vec *restrict buf = aligned_alloc(sizeof(vec), sizeof(vec) * (size_t)(ns > 0 ? ns : 1));
    double *restrict rows = malloc(sizeof(double) * (size_t)(d > 0 ? d : 1));
    if (!buf || !rows) {
        free(buf);
        free(rows);
        return -1;
    }
    for (int64_t h = 0; h < hb; h++) {
        for (int64_t i = 0; i < d; i++) rows[i] = 0.0;
        const real *restrict yh1 = y1 + h * ns * d, *restrict yh2 = fx2 ? y2 + h * ns * d : NULL;
        for (int64_t t = 0; t < tb; t++) {
            const int64_t s0 = lo[t], s1 = hi[t];
            if (s0 >= s1) continue;
            const real *restrict a1 = fx1 + (h * tb + t) * d;
            const real *restrict a2 = fx2 ? fx2 + (h * tb + t) * d : NULL;
            const real *restrict prow = p + (h * tb + t) * ns;
            double psum = 0.0;
            for (int64_t s = s0; s < s1; s++) psum += prow[s];
            for (int64_t i0 = 0; i0 < d; i0 += MW_VB)
                mw_block(i0, s0, s1, d, psum, a1, a2, yh1, yh2, prow, buf, rows);
        }
        real *restrict o = out + h * d;
        for (int64_t i = 0; i < d; i++) o[i] += (real)rows[i];
    }
    free(buf);
    free(rows);
    return 0;
}
