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

/* Below this W the numerator is formed as e^z − W: u − (W − 1) would cancel (W = P + U). */
#define MW_SMALL_W 0.5

#ifdef MW_DOUBLE
typedef double real;
typedef int64_t ireal;
#else
typedef float real;
typedef int32_t ireal;
#endif
/* Columns per block: one vector of MW_VB lanes (GCC/Clang vector extensions), one register of
 * the ISA the compiler targets: 64 bytes with AVX-512 (16 floats), 32 with AVX/AVX2 (8), 16 with
 * SSE2/NEON or none (4).  A wider vector than the registers (16 floats on AVX2) splits into pairs
 * with twice the register pressure, which was 30% slower.  -DMW_VB=n overrides it (tests). */
#ifndef MW_VB
#if defined(__AVX512F__)
#define MW_VB_BYTES 64
#define MW_ISA "avx512f"
#elif defined(__AVX2__)
#define MW_VB_BYTES 32
#define MW_ISA "avx2"
#elif defined(__AVX__)
#define MW_VB_BYTES 32
#define MW_ISA "avx"
#elif defined(__ARM_NEON)
#define MW_VB_BYTES 16
#define MW_ISA "neon"
#elif defined(__SSE2__)
#define MW_VB_BYTES 16
#define MW_ISA "sse2"
#else
#define MW_VB_BYTES 16
#define MW_ISA "generic"
#endif
#define MW_VB ((int)(MW_VB_BYTES / sizeof(real)))
#else
#define MW_ISA "fixed"
#endif
typedef real vec __attribute__((vector_size(MW_VB * sizeof(real))));
typedef ireal ivec __attribute__((vector_size(MW_VB * sizeof(real))));
typedef uint32_t uvec __attribute__((vector_size(MW_VB * sizeof(float))));

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
    /* 2^n by its exponent bits; unsigned, so an |x| far past 87 (a column the caller drops)
     * gives a wrong but defined value */
    const uvec bits = (uvec)(__builtin_convertvector(n, ivec) + 127) << 23;
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

/* One query row's inputs (NULL: that part of z is absent); z[s, i] =
 *     x1[i]·y1[s, i] + x2[i]·y2[s, i] + (g_row[i] + g_key[s, i])·s0[s]. */
typedef struct {
    const real *x1, *x2; /* [d] row factors of the rank-1 parts (RoPE: two) */
    const real *y1, *y2; /* [ns, d] their key factors */
    const real *g_row;   /* [d] factor − 1 of the row (Q/K norm, a query dim zeroed) */
    const real *g_key;   /* [ns, d] factor − 1 of each key (Q/K norm, a key dim zeroed) */
    const real *s0;      /* [ns] the row's q·k scores the factors multiply */
    const real *p;       /* [ns] the row's probabilities */
} mw_row;

static inline vec mw_opt(const real *x, int64_t at) { return x ? mw_load(x + at) : (vec){0}; }

/* z of key s, columns [i0, i0 + MW_VB); x1, x2, g: the row's parts of those columns. */
static inline vec mw_z(const mw_row *r, int64_t s, int64_t i0, int64_t d, vec x1, vec x2, vec g) {
    vec z = {0};
    if (r->x1) z += x1 * mw_load(r->y1 + s * d + i0);
    if (r->x2) z += x2 * mw_load(r->y2 + s * d + i0);
    if (r->s0) z += (r->g_key ? g + mw_load(r->g_key + s * d + i0) : g) * r->s0[s];
    return z;
}

/* Columns [i0, i0 + MW_VB) of one row over keys [s0, s1): rows[i] += ||p' − p||². */
static inline void mw_block(const mw_row *r, int64_t i0, int64_t s0, int64_t s1, int64_t d,
                            double psum, vec *restrict buf, double *restrict rows) {
    const vec x1 = mw_opt(r->x1, i0), x2 = mw_opt(r->x2, i0), g = mw_opt(r->g_row, i0);
    const real *restrict p = r->p;
    vec w = {0}, m = {0}, acc = {0};
    for (int64_t s = s0; s < s1; s++) { /* u_s, W = Σ p e^z, U = Σ p u */
        vec e;
        mw_exp2(mw_z(r, s, i0, d, x1, x2, g), &e, &buf[s]);
        w += p[s] * e;
        m += p[s] * buf[s];
    }
    m -= (real)(1.0 - psum); /* W − 1 = U − (1 − P) */
    for (int64_t s = s0; s < s1; s++) { /* Σ_s p_s² (u_s − (W − 1))² */
        const vec df = buf[s] - m;
        acc += (p[s] * p[s]) * df * df;
    }
    int small = 0;
    for (int64_t j = 0; j < MW_VB; j++) small |= w[j] < MW_SMALL_W;
    if (small) { /* rare: those columns are redone as Σ_s p_s² (e^z_s − W)² */
        vec acc2 = {0};
        for (int64_t s = s0; s < s1; s++) {
            vec e, u;
            mw_exp2(mw_z(r, s, i0, d, x1, x2, g), &e, &u);
            const vec df = e - w;
            acc2 += (p[s] * p[s]) * df * df;
        }
        for (int64_t j = 0; j < MW_VB; j++)
            if (w[j] < MW_SMALL_W) acc[j] = acc2[j];
    }
    for (int64_t j = 0; j < MW_VB; j++) rows[i0 + j] += (double)acc[j] / ((double)w[j] * w[j]);
}

/* Rows of hb heads, each part optional (NULL) except p: x1, x2, g_row [hb, tb, d];
 * y1, y2, g_key [hb, ns, d]; s0 and p [hb, tb, ns] (s0 needed with g_row or g_key; y1 with x1,
 * y2 with x2); lo, hi [tb] key span of each row; out [hb, d] (added to).  All contiguous; d a
 * multiple of MW_VB (callers pad dims with zeros: z = 0 there).
 * Returns 0, or −1 when the work buffer cannot be allocated (out untouched). */
int mw_sq_change(int64_t hb, int64_t tb, int64_t ns, int64_t d, const real *x1, const real *x2,
                 const real *y1, const real *y2, const real *g_row, const real *g_key,
                 const real *s0, const real *p, const int64_t *lo, const int64_t *hi,
                 real *out) {
    vec *restrict buf = aligned_alloc(sizeof(vec), sizeof(vec) * (size_t)(ns > 0 ? ns : 1));
    double *restrict rows = malloc(sizeof(double) * (size_t)(d > 0 ? d : 1));
    if (!buf || !rows) {
        free(buf);
        free(rows);
        return -1;
    }
#define MW_AT(x, off) ((x) ? (x) + (off) : NULL)
    for (int64_t h = 0; h < hb; h++) {
        for (int64_t i = 0; i < d; i++) rows[i] = 0.0;
        for (int64_t t = 0; t < tb; t++) {
            const int64_t k0 = lo[t], k1 = hi[t], row = h * tb + t;
            if (k0 >= k1) continue;
            const mw_row r = {MW_AT(x1, row * d), MW_AT(x2, row * d),       MW_AT(y1, h * ns * d),
                              MW_AT(y2, h * ns * d), MW_AT(g_row, row * d), MW_AT(g_key, h * ns * d),
                              MW_AT(s0, row * ns),   p + row * ns};
            double psum = 0.0;
            for (int64_t s = k0; s < k1; s++) psum += r.p[s];
            for (int64_t i0 = 0; i0 < d; i0 += MW_VB) mw_block(&r, i0, k0, k1, d, psum, buf, rows);
        }
        real *restrict o = out + h * d;
        for (int64_t i = 0; i < d; i++) o[i] += (real)rows[i];
    }
#undef MW_AT
    free(buf);
    free(rows);
    return 0;
}

/* Columns per vector (callers pad d to a multiple) and the ISA that set it. */
int mw_lanes(void) { return MW_VB; }
const char *mw_isa(void) { return MW_ISA; }
