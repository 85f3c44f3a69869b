/* A whole batch-1 decode step of a Llama-family model with int4/int8 weights, in one call: every layer, then the
 * head. Python (tfdojo.infer.native_step) fills the model description once and calls tfd_decode_step per token.
 *
 * Why one call: with SmolLM2's int4 weights the matrix products of a token take ~10 ms, and a step that calls
 * them one by one from Python (eager, ~20 calls a layer) or from a torch.compile graph (its Python wrapper, the
 * operators' Python bodies) spends another 5-10 ms around them. Here the norms, RoPE, attention, SiLU and the
 * residual adds run between the products with nothing in between.
 *
 * The arithmetic is the eager QuantLlama's, rounding to bf16 where it does (after each torch operator):
 *   h = bf16(w * bf16(x * rsqrt(mean(x^2) + eps)))          RMSNorm, statistics in fp32
 *   qkv = product(h) (+ bias)                               the int kernels of gemv_avx2.c, bf16 out
 *   q, k = bf16(bf16(q * cos) + bf16(rotate_half(q) * sin)) RoPE (half-split), the same for k
 *   y = attend(q, cache + k, v)                             tfd_attend_one, fp32 inside
 *   x = bf16(x + product(y));  h = norm2(x)
 *   x = bf16(x + product(bf16(bf16(silu(gate)) * up)))      SwiGLU
 *   logits = product_head(final_norm(x))
 * The new key and value of every layer are written into the caller's cache at position `pos` (its filled length).
 * Built with gemv_avx2.c into one library (tfdojo.infer.gemv_kernel); no torch headers.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* from gemv_avx2.c */
int tfd_q4_gemv(const uint8_t *packed, const uint16_t *scale, const uint16_t *low, int layer, int n, int k,
                const uint16_t *x, uint16_t *y);
int tfd_q8_gemv(const int8_t *codes, const float *scale, int layer, int n, int k, const uint16_t *x, uint16_t *y);
int tfd_attend_one(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, long head_stride, int n,
                   const uint16_t *k_new, const uint16_t *v_new, int hq, int hkv, int d, float scale, uint16_t *out);

enum { TFD_Q4 = 4, TFD_Q8 = 8 };

/* One kind of matrix, stacked over the layers (L, rows, ...); the head is a stack of one. */
struct tfd_matrix {
    int format;          /* TFD_Q4: codes nibbles (L, rows, cols/2), scale and low fp16 (L, rows, cols/32);
                            TFD_Q8: codes int8 (L, rows, cols), scale fp32 (L, rows), low NULL */
    int rows, cols;
    const void *codes, *scale;
    const uint16_t *low;
    const uint16_t *bias; /* bf16 (L, rows), or NULL */
};

struct tfd_decoder {
    int layers, dim, heads, kv_heads, head_dim, hidden;
    float eps, final_eps;
    const uint16_t *embed;          /* (vocab, dim) bf16 */
    const uint16_t *norm1, *norm2;  /* (L, dim) bf16 */
    const uint16_t *final_norm;     /* (dim,) bf16 */
    const uint16_t *cos, *sin;      /* (positions, head_dim) bf16: the RoPE tables */
    struct tfd_matrix qkv, o, gate_up, down, head;
};

static inline float f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

static inline uint16_t bf16(float f) { /* round to nearest even, as torch */
    union { float f; uint32_t u; } v = {f};
    if (isnan(f)) return 0x7FC0;
    v.u += 0x7FFF + ((v.u >> 16) & 1);
    return (uint16_t)(v.u >> 16);
}

static int product(const struct tfd_matrix *w, int layer, const uint16_t *x, uint16_t *y) {
    int status = w->format == TFD_Q4
                     ? tfd_q4_gemv(w->codes, w->scale, w->low, layer, w->rows, w->cols, x, y)
                     : tfd_q8_gemv(w->codes, w->scale, layer, w->rows, w->cols, x, y);
    if (status == 0 && w->bias != NULL) {
        const uint16_t *b = w->bias + (size_t)layer * w->rows;
        for (int i = 0; i < w->rows; i++) y[i] = bf16(f32(y[i]) + f32(b[i]));
    }
    return status;
}

static void rms_norm(const uint16_t *x, const uint16_t *w, int n, float eps, uint16_t *out) {
    double squares = 0.0;
    for (int i = 0; i < n; i++) squares += (double)f32(x[i]) * f32(x[i]);
    float r = 1.0f / sqrtf((float)(squares / n) + eps);
    for (int i = 0; i < n; i++) out[i] = bf16(f32(w[i]) * f32(bf16(f32(x[i]) * r)));
}

static void add_into(uint16_t *x, const uint16_t *y, int n) {
    for (int i = 0; i < n; i++) x[i] = bf16(f32(x[i]) + f32(y[i]));
}

/* heads (count, d) rotated in place by this position's cos and sin (d,): rotate_half(x) = (-x2, x1) */
static void rope(uint16_t *heads, int count, int d, const uint16_t *cos, const uint16_t *sin) {
    int half = d / 2;
    for (int h = 0; h < count; h++) {
        uint16_t *x = heads + (size_t)h * d;
        for (int i = 0; i < half; i++) {
            float x1 = f32(x[i]), x2 = f32(x[i + half]);
            float a = f32(bf16(x1 * f32(cos[i]))), b = f32(bf16(-x2 * f32(sin[i])));
            float c = f32(bf16(x2 * f32(cos[i + half]))), e = f32(bf16(x1 * f32(sin[i + half])));
            x[i] = bf16(a + b);
            x[i + half] = bf16(c + e);
        }
    }
}

/* One token at position `pos` (= the number of positions the cache holds) -> logits (head rows) bf16. The caches
 * are (L, Hkv, max_len, d) with layer_stride and head_stride elements between layers and heads, rows of d
 * contiguous. Returns 0, or -1 if scratch memory could not be allocated (the cache may then hold part of the
 * step's keys, at a position the caller has not committed). */
int tfd_decode_step(const struct tfd_decoder *m, long token, int pos, uint16_t *k_cache, uint16_t *v_cache,
                    long layer_stride, long head_stride, uint16_t *logits) {
    int dim = m->dim, d = m->head_dim, hq = m->heads, hkv = m->kv_heads;
    size_t qkv_n = (size_t)(hq + 2 * hkv) * d;
    size_t need = 3 * (size_t)dim + qkv_n + (size_t)hq * d + 3 * (size_t)m->hidden;
    uint16_t *x = malloc(sizeof(uint16_t) * need);
    if (x == NULL) return -1;
    uint16_t *h = x + dim, *out = h + dim, *qkv = out + dim, *y = qkv + qkv_n, *gu = y + (size_t)hq * d;
    uint16_t *act = gu + 2 * (size_t)m->hidden;
    const uint16_t *cos = m->cos + (size_t)pos * d, *sin = m->sin + (size_t)pos * d;
    float scale = 1.0f / sqrtf((float)d);
    int status = 0;
    memcpy(x, m->embed + (size_t)token * dim, sizeof(uint16_t) * dim);
    for (int l = 0; l < m->layers && status == 0; l++) {
        rms_norm(x, m->norm1 + (size_t)l * dim, dim, m->eps, h);
        if ((status = product(&m->qkv, l, h, qkv))) break;
        rope(qkv, hq + hkv, d, cos, sin);  /* queries and keys share one rotation */
        uint16_t *k_new = qkv + (size_t)hq * d, *v_new = k_new + (size_t)hkv * d;
        uint16_t *kl = k_cache + (size_t)l * layer_stride, *vl = v_cache + (size_t)l * layer_stride;
        for (int j = 0; j < hkv; j++) {  /* store this position's key and value */
            memcpy(kl + (size_t)j * head_stride + (size_t)pos * d, k_new + (size_t)j * d, sizeof(uint16_t) * d);
            memcpy(vl + (size_t)j * head_stride + (size_t)pos * d, v_new + (size_t)j * d, sizeof(uint16_t) * d);
        }
        if ((status = tfd_attend_one(qkv, kl, vl, head_stride, pos, k_new, v_new, hq, hkv, d, scale, y))) break;
        if ((status = product(&m->o, l, y, out))) break;
        add_into(x, out, dim);
        rms_norm(x, m->norm2 + (size_t)l * dim, dim, m->eps, h);
        if ((status = product(&m->gate_up, l, h, gu))) break;
        for (int i = 0; i < m->hidden; i++) {
            float g = f32(gu[i]);
            act[i] = bf16(f32(bf16(g / (1.0f + expf(-g)))) * f32(gu[m->hidden + i]));
        }
        if ((status = product(&m->down, l, act, out))) break;
        add_into(x, out, dim);
    }
    if (status == 0) {
        rms_norm(x, m->final_norm, dim, m->final_eps, h);
        status = product(&m->head, 0, h, logits);
    }
    free(x);
    return status;
}
