/* One-row matrix products (GEMV) with int4 or int8 weights for batch-1 decode, AVX2 + FMA, one thread; one
 * query's attention over a bf16 key/value cache (tfd_attend_one, at the end) and SwiGLU's product (tfd_silu_mul).
 *
 * Built by tfdojo.infer.gemv_kernel with `cc -O3 -mavx2 -mfma -mf16c -shared -fPIC`; no torch headers.
 * Activations arrive and leave as bf16; products are int16 x int16 -> int32, scaled and summed in fp32.
 *
 * int4 layout, per output row r and group g of 32 input columns (ggml's Q4_1 block order):
 *   packed[r][g][j] (16 bytes) = code of column 32g + j in the low nibble, of column 32g + j + 16 in the high
 *   scale[r][g], low[r][g] (fp16):  w = scale * q + low,  q in 0..15
 * so y[r] = sum_g scale[r][g] * (q . x_g) + low[r][g] * sum(x_g).
 * int8 layout: codes[r][k] in -127..127, one fp32 scale per row: w = scale[r] * q.
 *
 * Both first round x to int16 per block of 32 (absmax / 32767: a relative step of 3e-5, finer than bf16's 4e-3)
 * and multiply with _mm256_madd_epi16. ggml rounds x to int8 (Q8_1 / Q8_0) for _mm256_maddubs_epi16: that ran
 * ~1.3x faster here but its decode logits erred 4.7x more than bf16's; widening the codes to fp32 ran 3.3x slower.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "bf16.h"

#define BLOCK 32
#define PREFETCH_ROWS 16 /* ask for the rows this far ahead: 1.2-1.3x faster on the 49,152-row head from memory */

static inline void prefetch(const void *p, size_t bytes) {
    for (size_t off = 0; off < bytes; off += 64) _mm_prefetch((const char *)p + off, _MM_HINT_T0);
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 16 bytes of nibbles -> 32 bytes 0..15 in column order */
static inline __m256i unpack_nibbles(const uint8_t *p) {
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

static inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 bf16x8_to_f32(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

/* x (bf16, k) -> int16 codes per block of 32 (absmax / 32767, rounded to nearest even), each block's step d and
 * fp32 sum. Each pair of blocks (columns 0..31 of block A, of block B) is stored in the order the int4 kernel
 * widens its nibbles to int16: [A0-7 B0-7 | A8-15 B8-15 | A16-23 B16-23 | A24-31 B24-31]; a last odd block keeps
 * its order. Vectorised: run once per product, a scalar version took ~6 % of a SmolLM2 decode step. */
static void quantize_x(const uint16_t *x, int k, int paired, int16_t *xq, float *xd, float *xsum) {
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    int blocks = k / BLOCK;
    for (int b = 0; b < blocks; b++) {
        __m256 v[4], top = _mm256_setzero_ps();
        for (int u = 0; u < 4; u++) {
            v[u] = bf16x8_to_f32(x + b * BLOCK + 8 * u);
            top = _mm256_max_ps(_mm256_and_ps(v[u], magnitude), top);  /* a NaN lane is passed over, as fmaxf */
        }
        float amax = hmax(top);
        __m256 inv = _mm256_set1_ps(amax > 0.0f ? 32767.0f / amax : 0.0f);
        int in_pair = paired && (b & ~1) + 1 < blocks;
        for (int u = 0; u < 4; u++) {  /* columns 8u..8u+7 */
            __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(v[u], inv));
            __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
            int at = in_pair ? (b & ~1) * BLOCK + u * 16 + (b & 1) * 8 : b * BLOCK + u * 8;
            _mm_storeu_si128((__m128i *)(xq + at), q16);
        }
        xd[b] = amax / 32767.0f;
        xsum[b] = hsum(_mm256_add_ps(_mm256_add_ps(v[0], v[1]), _mm256_add_ps(v[2], v[3])));
    }
}

static inline __m256i madd16(__m256i a, const int16_t *x) {
    return _mm256_madd_epi16(a, _mm256_load_si256((const __m256i *)x));
}

/* fp32 sums of two groups' code x activation products: lanes 0-3 the first group, 4-7 the second */
static inline __m256 pair_dot(const uint8_t *p, const int16_t *xq) {
    const __m256i mask = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
    __m256i b = _mm256_loadu_si256((const __m256i *)p);  /* 16 bytes of group A, 16 of group B */
    __m256i lo = _mm256_and_si256(b, mask), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), mask);
    __m256i s = _mm256_add_epi32(madd16(_mm256_unpacklo_epi8(lo, zero), xq), madd16(_mm256_unpackhi_epi8(lo, zero), xq + 16));
    s = _mm256_add_epi32(s, madd16(_mm256_unpacklo_epi8(hi, zero), xq + 32));
    s = _mm256_add_epi32(s, madd16(_mm256_unpackhi_epi8(hi, zero), xq + 48));
    return _mm256_cvtepi32_ps(s);
}

/* R rows (1 or 4) of the int4 product; scale and low fp16 (rows, groups) */
static inline __attribute__((always_inline)) void q4_rows(int R, const uint8_t *packed, const uint16_t *scale,
                                                          const uint16_t *low, int groups, const int16_t *xq,
                                                          const float *xd, const float *xsum, float *out) {
    const __m256i pick01 = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1), pick23 = _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int g = 0;
    for (; g + 4 <= groups; g += 4) {
        __m128 dx = _mm_loadu_ps(xd + g);
        for (int i = 0; i < R; i++) {
            size_t rg = (size_t)i * groups + g;
            __m128 d = _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(scale + rg))), dx);
            __m256 d8 = _mm256_castps128_ps256(d);
            acc[i] = _mm256_fmadd_ps(pair_dot(packed + rg * 16, xq + g * BLOCK), _mm256_permutevar8x32_ps(d8, pick01), acc[i]);
            acc[i] = _mm256_fmadd_ps(pair_dot(packed + rg * 16 + 32, xq + g * BLOCK + 64),
                                     _mm256_permutevar8x32_ps(d8, pick23), acc[i]);
        }
    }
    if (g + 2 <= groups) {
        __m128 dx = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(xd + g)));
        for (int i = 0; i < R; i++) {
            size_t rg = (size_t)i * groups + g;
            int32_t two;
            __builtin_memcpy(&two, scale + rg, 4);
            __m128 d = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(two)), dx);
            acc[i] = _mm256_fmadd_ps(pair_dot(packed + rg * 16, xq + g * BLOCK),
                                     _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d), pick01), acc[i]);
        }
        g += 2;
    }
    if (g < groups) {  /* a last odd group, in column order */
        for (int i = 0; i < R; i++) {
            size_t rg = (size_t)i * groups + g;
            __m128i b = _mm_loadu_si128((const __m128i *)(packed + rg * 16)), mask = _mm_set1_epi8(0x0F);
            __m256i lo = _mm256_cvtepu8_epi16(_mm_and_si128(b, mask));
            __m256i hi = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(b, 4), mask));
            __m256i dot = _mm256_add_epi32(madd16(lo, xq + g * BLOCK), madd16(hi, xq + g * BLOCK + 16));
            acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(scale[rg]) * xd[g]), _mm256_cvtepi32_ps(dot), acc[i]);
        }
    }
    for (int i = 0; i < R; i++) {  /* + sum_g low * sum(x_g) */
        const uint16_t *l = low + (size_t)i * groups;
        __m256 m = _mm256_setzero_ps();
        int h = 0;
        for (; h + 8 <= groups; h += 8)
            m = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(l + h))), _mm256_loadu_ps(xsum + h), m);
        float lows = hsum(m);
        for (; h < groups; h++) lows += _cvtsh_ss(l[h]) * xsum[h];
        out[i] = hsum(acc[i]) + lows;
    }
}

/* x's int16 codes (aligned for the loads), then its per-block steps and sums; 0, or -1 with nothing allocated */
int tfd_alloc_x(int k, int16_t **xq, float **xd) {
    *xq = aligned_alloc(32, (sizeof(int16_t) * (size_t)k + 63) / 32 * 32);
    *xd = malloc(sizeof(float) * (size_t)(k / BLOCK) * 2);
    if (*xq != NULL && *xd != NULL) return 0;
    free(*xq);
    free(*xd);
    return -1;
}

/* x rounded for the int4 kernel (paired = 1) or the int8 kernel (0): codes xq, steps xd, block sums xd + k / 32 */
void tfd_quantize_x(const uint16_t *x, int k, int paired, int16_t *xq, float *xd) {
    quantize_x(x, k, paired, xq, xd, xd + k / BLOCK);
}

/* rows [r0, r1) of an int4 product with n rows of k columns, x already rounded by tfd_quantize_x(paired = 1);
 * r0 a multiple of 4. The rows of a call are independent of the range: any split gives the same numbers. */
void tfd_q4_rows(const uint8_t *packed, const uint16_t *scale, const uint16_t *low, int n, int k, const int16_t *xq,
                 const float *xd, int r0, int r1, uint16_t *y) {
    int groups = k / BLOCK;
    const float *xsum = xd + groups;
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        size_t rg = (size_t)r * groups;
        float out[4];
        if (r + PREFETCH_ROWS + 4 <= n)
            prefetch(packed + (rg + (size_t)PREFETCH_ROWS * groups) * 16, 4 * (size_t)groups * 16);
        q4_rows(4, packed + rg * 16, scale + rg, low + rg, groups, xq, xd, xsum, out);
        for (int i = 0; i < 4; i++) y[r + i] = f32_to_bf16(out[i]);
    }
    for (; r < r1; r++) {
        size_t rg = (size_t)r * groups;
        float out[4];
        q4_rows(1, packed + rg * 16, scale + rg, low + rg, groups, xq, xd, xsum, out);
        y[r] = f32_to_bf16(out[0]);
    }
}

/* int4 weights: 4 rows at a time share the activation loads. Returns 0, or -1 if out of memory. */
int tfd_q4_gemv(const uint8_t *packed, const uint16_t *scale, const uint16_t *low, int layer, int n, int k,
                const uint16_t *x, uint16_t *y) {
    int groups = k / BLOCK;
    packed += (size_t)layer * n * (k / 2);  /* matrix `layer` of a stack (L, n, ...); 0 for a lone matrix */
    scale += (size_t)layer * n * groups;
    low += (size_t)layer * n * groups;
    int16_t *xq;
    float *xd;
    if (tfd_alloc_x(k, &xq, &xd)) return -1;
    tfd_quantize_x(x, k, 1, xq, xd);
    tfd_q4_rows(packed, scale, low, n, k, xq, xd, 0, n, y);
    free(xq);
    free(xd);
    return 0;
}

/* int8 weights (one fp32 scale per row): x in column order, 4 rows at a time share its loads */
static inline __attribute__((always_inline)) void q8_rows(int R, const int8_t *codes, int k, const int16_t *xq,
                                                          const float *xd, float *out) {
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int b = 0; b < k / BLOCK; b++) {
        __m256 d = _mm256_set1_ps(xd[b]);
        for (int i = 0; i < R; i++) {
            __m256i w = _mm256_loadu_si256((const __m256i *)(codes + (size_t)i * k + b * BLOCK));
            __m256i lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(w));
            __m256i hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(w, 1));
            __m256i dot = _mm256_add_epi32(madd16(lo, xq + b * BLOCK), madd16(hi, xq + b * BLOCK + 16));
            acc[i] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot), acc[i]);
        }
    }
    for (int i = 0; i < R; i++) out[i] = hsum(acc[i]);
}

/* rows [r0, r1) of an int8 product (n rows of k columns, one fp32 scale per row), x already rounded by
 * tfd_quantize_x(paired = 0) */
void tfd_q8_rows(const int8_t *codes, const float *scale, int n, int k, const int16_t *xq, const float *xd, int r0,
                 int r1, uint16_t *y) {
    int r = r0;
    for (; r + 4 <= r1; r += 4) {
        float out[4];
        if (r + PREFETCH_ROWS + 4 <= n)
            prefetch(codes + (size_t)(r + PREFETCH_ROWS) * k, 4 * (size_t)k);
        q8_rows(4, codes + (size_t)r * k, k, xq, xd, out);
        for (int i = 0; i < 4; i++) y[r + i] = f32_to_bf16(scale[r + i] * out[i]);
    }
    for (; r < r1; r++) {
        float out[4];
        q8_rows(1, codes + (size_t)r * k, k, xq, xd, out);
        y[r] = f32_to_bf16(scale[r] * out[0]);
    }
}

/* int8 weights (one fp32 scale per row): x in column order; returns 0, or -1 if out of memory */
int tfd_q8_gemv(const int8_t *codes, const float *scale, int layer, int n, int k, const uint16_t *x, uint16_t *y) {
    codes += (size_t)layer * n * k;  /* matrix `layer` of a stack (L, n, k); 0 for a lone matrix */
    scale += (size_t)layer * n;
    int16_t *xq;
    float *xd;
    if (tfd_alloc_x(k, &xq, &xd)) return -1;
    tfd_quantize_x(x, k, 0, xq, xd);
    tfd_q8_rows(codes, scale, n, k, xq, xd, 0, n, y);
    free(xq);
    free(xd);
    return 0;
}

/* ---- one query's attention over a bf16 key/value cache (a decode step), fp32 inside ---- */

/* e^x for 8 floats: x = n ln2 + r with |r| <= ln2 / 2, e^r by its degree-6 Taylor polynomial (relative error
 * < 2e-7 on that range), 2^n put into the exponent bits; x below -87 gives 0 (as expf underflows there) */
static inline __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.0f), hi = _mm256_set1_ps(88.0f);
    __m256 below = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);  /* ln2 in two parts: exact n * ln2_hi */
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(below, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

static inline __m256 load_bf16x8(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

/* f rounded to the nearest bf16 (ties to even, as f32_to_bf16), kept as fp32 */
static inline __m256 round_to_bf16(__m256 f) {
    __m256i u = _mm256_castps_si256(f);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    u = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), odd));
    return _mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32((int)0xFFFF0000u)));
}

/* SwiGLU's product for n values, rounded where torch's bf16 operators round: act = bf16(bf16(silu(gate)) * up),
 * silu(g) = g / (1 + e^-g) in fp32 (exp8 here, torch its own vectorised exp: they can differ at a bf16 tie) */
void tfd_silu_mul(const uint16_t *gate, const uint16_t *up, int n, uint16_t *act) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = load_bf16x8(gate + i);
        __m256 silu = round_to_bf16(_mm256_div_ps(g, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), g)))));
        __m256i bits = _mm256_srli_epi32(_mm256_castps_si256(round_to_bf16(_mm256_mul_ps(silu, load_bf16x8(up + i)))), 16);
        _mm_storeu_si128((__m128i *)(act + i), _mm_packus_epi32(_mm256_castsi256_si128(bits), _mm256_extracti128_si256(bits, 1)));
    }
    for (; i < n; i++) {
        float g = bf16_to_f32(gate[i]);
        act[i] = f32_to_bf16(bf16_to_f32(f32_to_bf16(g / (1.0f + expf(-g)))) * bf16_to_f32(up[i]));
    }
}

/* row t of a head: the cache's first n rows, then the new token's row */
static inline const uint16_t *kv_row(const uint16_t *cache, const uint16_t *fresh, int t, int n, int d) {
    return t < n ? cache + (size_t)t * d : fresh;
}

/* q (hq, d) bf16 against keys/values (hkv heads, n cached rows at head_stride apart, d) plus one new row per head
 * (k_new, v_new: (hkv, d)); query head j reads kv head j / (hq / hkv); softmax(q k^T * scale) v -> out (hq, d) bf16.
 * d must be a multiple of 8. Returns 0, or -1 if its scratch could not be allocated. */
int tfd_attend_one(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, long head_stride, int n,
                   const uint16_t *k_new, const uint16_t *v_new, int hq, int hkv, int d, float scale, uint16_t *out) {
    int rows = n + 1, group = hq / hkv;
    float *p = malloc(sizeof(float) * ((size_t)rows + 2 * (size_t)d));  /* scores, then q and the sum in fp32 */
    if (p == NULL) return -1;
    float *qf = p + rows, *acc = qf + d;
    for (int j = 0; j < hq; j++) {
        int h = j / group;
        const uint16_t *kc = k_cache + (size_t)h * head_stride, *vc = v_cache + (size_t)h * head_stride;
        const uint16_t *kn = k_new + (size_t)h * d, *vn = v_new + (size_t)h * d;
        for (int c = 0; c < d; c += 8) _mm256_storeu_ps(qf + c, load_bf16x8(q + (size_t)j * d + c));
        float best = -INFINITY;
        if (d == 64) {  /* the usual head size: q held in registers */
            __m256 q8[8];
            for (int u = 0; u < 8; u++) q8[u] = _mm256_loadu_ps(qf + 8 * u);
            for (int t = 0; t < rows; t++) {
                const uint16_t *kr = kv_row(kc, kn, t, n, d);
                __m256 s0 = _mm256_mul_ps(q8[0], load_bf16x8(kr)), s1 = _mm256_mul_ps(q8[1], load_bf16x8(kr + 8));
                for (int u = 2; u < 8; u += 2) {
                    s0 = _mm256_fmadd_ps(q8[u], load_bf16x8(kr + 8 * u), s0);
                    s1 = _mm256_fmadd_ps(q8[u + 1], load_bf16x8(kr + 8 * u + 8), s1);
                }
                p[t] = hsum(_mm256_add_ps(s0, s1)) * scale;
                best = fmaxf(best, p[t]);
            }
        } else {
            for (int t = 0; t < rows; t++) {  /* scores */
                const uint16_t *kr = kv_row(kc, kn, t, n, d);
                __m256 s = _mm256_setzero_ps();
                for (int c = 0; c < d; c += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(qf + c), load_bf16x8(kr + c), s);
                p[t] = hsum(s) * scale;
                best = fmaxf(best, p[t]);
            }
        }
        __m256 total8 = _mm256_setzero_ps(), shift = _mm256_set1_ps(best);
        int t = 0;
        for (; t + 8 <= rows; t += 8) {  /* e^(s - max) and their sum */
            __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p + t), shift));
            _mm256_storeu_ps(p + t, e);
            total8 = _mm256_add_ps(total8, e);
        }
        float total = hsum(total8);
        if (t < rows) {
            float tail[8] = {0};
            for (int u = t; u < rows; u++) tail[u - t] = p[u] - best;
            __m256 e = exp8(_mm256_loadu_ps(tail));
            _mm256_storeu_ps(tail, e);
            for (int u = t; u < rows; u++) { p[u] = tail[u - t]; total += tail[u - t]; }
        }
        if (d == 64) {  /* the sum held in registers */
            __m256 a[8];
            for (int u = 0; u < 8; u++) a[u] = _mm256_setzero_ps();
            for (t = 0; t < rows; t++) {
                const uint16_t *vr = kv_row(vc, vn, t, n, d);
                __m256 w = _mm256_set1_ps(p[t]);
                for (int u = 0; u < 8; u++) a[u] = _mm256_fmadd_ps(w, load_bf16x8(vr + 8 * u), a[u]);
            }
            for (int u = 0; u < 8; u++) _mm256_storeu_ps(acc + 8 * u, a[u]);
        } else {
            for (int c = 0; c < d; c++) acc[c] = 0.0f;
            for (t = 0; t < rows; t++) {  /* weighted sum of values */
                const uint16_t *vr = kv_row(vc, vn, t, n, d);
                __m256 w = _mm256_set1_ps(p[t]);
                for (int c = 0; c < d; c += 8)
                    _mm256_storeu_ps(acc + c, _mm256_fmadd_ps(w, load_bf16x8(vr + c), _mm256_loadu_ps(acc + c)));
            }
        }
        float inv = 1.0f / total;
        for (int c = 0; c < d; c++) out[(size_t)j * d + c] = f32_to_bf16(acc[c] * inv);
    }
    free(p);
    return 0;
}

/* index of the largest of n bf16 values, the first one on a tie, the first NaN if any (torch.argmax's rules).
 * One thread on purpose: torch's argmax over a vocabulary runs on its OpenMP threads, which then spin on the
 * cores through the next decode step (tfdojo.infer.sampling). */
long tfd_argmax_bf16(const uint16_t *x, long n) {
    long best = 0;
    float top = -INFINITY;
    for (long i = 0; i < n; i++) {
        float v = bf16_to_f32(x[i]);
        if (isnan(v)) return i;
        if (v > top || i == 0) {
            top = v;
            best = i;
        }
    }
    return best;
}
