/* A whole batch-1 decode step of a Llama-family model with int4/int8 weights, in one call: every layer, then the
 * head. Python (tfdojo.infer.native_step) fills the model description once and calls tfd_decode_step per token.
 *
 * Why one call: with SmolLM2's int4 weights the matrix products of a token take ~10 ms, and a step that calls
 * them one by one from Python (eager, ~20 calls a layer) or from a torch.compile graph (its Python wrapper, the
 * operators' Python bodies) spends another 5-10 ms around them. Here the norms, RoPE, attention, SiLU and the
 * residual adds run between the products with nothing in between.
 *
 * The arithmetic is the eager QuantLlama's, rounding to bf16 (written bf16(.) below) where it does (after each
 * torch operator):
 *   h = bf16(w * bf16(x * rsqrt(mean(x^2) + eps)))          RMSNorm, statistics in fp32
 *   qkv = product(h) (+ bias)                               the int kernels of gemv_avx2.c, bf16 out
 *   q, k = bf16(bf16(q * cos) + bf16(rotate_half(q) * sin)) RoPE (half-split), the same for k
 *   y = attend(q, cache + k, v)                             tfd_attend_one, fp32 inside
 *   x = bf16(x + product(y));  h = norm2(x)
 *   x = bf16(x + product(bf16(bf16(silu(gate)) * up)))      SwiGLU
 *   logits = product_head(final_norm(x))
 * The new key and value of every layer are written into the caller's cache at position `pos` (its filled length).
 * Products are split by rows and attention by query heads over `threads` threads (decode_workers.c).
 * Built with gemv_avx2.c and decode_workers.c into one library (tfdojo.infer.gemv_kernel); no torch headers.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"

/* from gemv_avx2.c */
int tfd_alloc_x(int k, int16_t **xq, float **xd);
void tfd_quantize_x(const uint16_t *x, int k, int paired, int16_t *xq, float *xd);
void tfd_q4_rows(const uint8_t *packed, const uint16_t *scale, const uint16_t *low, int n, int k, const int16_t *xq,
                 const float *xd, int r0, int r1, uint16_t *y);
void tfd_q8_rows(const int8_t *codes, const float *scale, int n, int k, const int16_t *xq, const float *xd, int r0,
                 int r1, uint16_t *y);
void tfd_silu_mul(const uint16_t *gate, const uint16_t *up, int n, uint16_t *act);
int tfd_attend_one(const uint16_t *q, const uint16_t *k_cache, const uint16_t *v_cache, long head_stride, int n,
                   const uint16_t *k_new, const uint16_t *v_new, int hq, int hkv, int d, float scale, uint16_t *out);
/* from decode_workers.c */
void tfd_run_chunks(int threads, int chunks, void (*fn)(void *arg, int chunk), void *arg);
void tfd_park_workers(void);

#define CHUNKS_PER_THREAD 8 /* a product's rows in this many pieces per thread: one late thread holds little */

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

/* one product's rows, split into chunks for the threads */
struct rows_task {
    const struct tfd_matrix *w;
    const void *codes, *scale;
    const uint16_t *low;
    const int16_t *xq;
    const float *xd;
    int per_chunk;
    uint16_t *y;
};

static void rows_chunk(void *arg, int chunk) {
    const struct rows_task *t = arg;
    int r0 = chunk * t->per_chunk, r1 = r0 + t->per_chunk < t->w->rows ? r0 + t->per_chunk : t->w->rows;
    if (t->w->format == TFD_Q4)
        tfd_q4_rows(t->codes, t->scale, t->low, t->w->rows, t->w->cols, t->xq, t->xd, r0, r1, t->y);
    else
        tfd_q8_rows(t->codes, t->scale, t->w->rows, t->w->cols, t->xq, t->xd, r0, r1, t->y);
}

/* y = layer `layer`'s matrix w times x (+ bias); xq, xd: scratch for x rounded (tfd_alloc_x of the widest x) */
static void product(const struct tfd_matrix *w, int layer, const uint16_t *x, uint16_t *y, int threads,
                    int16_t *xq, float *xd) {
    size_t rows = (size_t)w->rows, groups = (size_t)w->cols / 32, at = (size_t)layer * rows;
    struct rows_task t = {w, NULL, NULL, NULL, xq, xd, w->rows, y};
    if (w->format == TFD_Q4) {
        t.codes = (const uint8_t *)w->codes + at * (w->cols / 2);
        t.scale = (const uint16_t *)w->scale + at * groups;
        t.low = w->low + at * groups;
    } else {
        t.codes = (const int8_t *)w->codes + at * w->cols;
        t.scale = (const float *)w->scale + at;
    }
    tfd_quantize_x(x, w->cols, w->format == TFD_Q4, xq, xd);
    int chunks = 1;
    if (threads > 1) {
        int pieces = threads * CHUNKS_PER_THREAD;
        t.per_chunk = ((w->rows + pieces - 1) / pieces + 3) / 4 * 4; /* whole quads of rows */
        chunks = (w->rows + t.per_chunk - 1) / t.per_chunk;
    }
    tfd_run_chunks(threads, chunks, rows_chunk, &t);
    if (w->bias != NULL) {
        const uint16_t *b = w->bias + at;
        for (int i = 0; i < w->rows; i++) y[i] = f32_to_bf16(bf16_to_f32(y[i]) + bf16_to_f32(b[i]));
    }
}

/* one layer's attention, a query head per chunk */
struct heads_task {
    const uint16_t *q, *k_cache, *v_cache, *k_new, *v_new;
    long head_stride;
    int n, group, d, failed;
    float scale;
    uint16_t *out;
};

static void head_chunk(void *arg, int j) {
    struct heads_task *t = arg;
    size_t h = (size_t)(j / t->group), d = (size_t)t->d;
    if (tfd_attend_one(t->q + j * d, t->k_cache + h * t->head_stride, t->v_cache + h * t->head_stride, t->head_stride,
                       t->n, t->k_new + h * d, t->v_new + h * d, 1, 1, t->d, t->scale, t->out + j * d))
        t->failed = 1; /* only ever set: a racing write is harmless */
}

/* bf16(a) * b rounded to bf16, in fp32: one bf16 multiplication of torch's */
static inline float times(float a, uint16_t b) { return bf16_to_f32(f32_to_bf16(bf16_to_f32(f32_to_bf16(a)) * bf16_to_f32(b))); }

static void rms_norm(const uint16_t *x, const uint16_t *w, int n, float eps, uint16_t *out) {
    double squares = 0.0;
    for (int i = 0; i < n; i++) squares += (double)bf16_to_f32(x[i]) * bf16_to_f32(x[i]);
    float r = 1.0f / sqrtf((float)(squares / n) + eps);
    for (int i = 0; i < n; i++) out[i] = f32_to_bf16(times(bf16_to_f32(x[i]) * r, w[i]));
}

static void add_into(uint16_t *x, const uint16_t *y, int n) {
    for (int i = 0; i < n; i++) x[i] = f32_to_bf16(bf16_to_f32(x[i]) + bf16_to_f32(y[i]));
}

/* heads (count, d) rotated in place by this position's cos and sin (d,): rotate_half(x) = (-x2, x1) */
static void rope(uint16_t *heads, int count, int d, const uint16_t *cos, const uint16_t *sin) {
    int half = d / 2;
    for (int h = 0; h < count; h++) {
        uint16_t *x = heads + (size_t)h * d;
        for (int i = 0; i < half; i++) {
            float x1 = bf16_to_f32(x[i]), x2 = bf16_to_f32(x[i + half]);
            x[i] = f32_to_bf16(times(x1, cos[i]) + times(-x2, sin[i]));
            x[i + half] = f32_to_bf16(times(x2, cos[i + half]) + times(x1, sin[i + half]));
        }
    }
}

/* One token at position `pos` (= the number of positions the cache holds) -> logits (head rows) bf16, on
 * `threads` threads. The caches are (L, Hkv, max_len, d) with layer_stride and head_stride elements between layers
 * and heads, rows of d contiguous. Returns 0, or -1 if scratch memory could not be allocated (the cache may then
 * hold part of the step's keys, at a position the caller has not committed). Every number is the same whatever
 * `threads` is: a split only decides which thread computes a row or a head. */
int tfd_decode_step(const struct tfd_decoder *m, long token, int pos, uint16_t *k_cache, uint16_t *v_cache,
                    long layer_stride, long head_stride, int threads, uint16_t *logits) {
    int dim = m->dim, d = m->head_dim, hq = m->heads, hkv = m->kv_heads;
    size_t qkv_n = (size_t)(hq + 2 * hkv) * d;
    size_t need = 3 * (size_t)dim + qkv_n + (size_t)hq * d + 3 * (size_t)m->hidden;
    int widest = m->hidden > dim ? m->hidden : dim, failed = 0;
    if (hq * d > widest) widest = hq * d;
    uint16_t *x = malloc(sizeof(uint16_t) * need);
    int16_t *xq = NULL;
    float *xd = NULL;
    if (x == NULL || tfd_alloc_x(widest, &xq, &xd)) {
        free(x);
        return -1;
    }
    uint16_t *h = x + dim, *out = h + dim, *qkv = out + dim, *y = qkv + qkv_n, *gu = y + (size_t)hq * d;
    uint16_t *act = gu + 2 * (size_t)m->hidden;
    const uint16_t *cos = m->cos + (size_t)pos * d, *sin = m->sin + (size_t)pos * d;
    float scale = 1.0f / sqrtf((float)d);
    memcpy(x, m->embed + (size_t)token * dim, sizeof(uint16_t) * dim);
    for (int l = 0; l < m->layers && !failed; l++) {
        rms_norm(x, m->norm1 + (size_t)l * dim, dim, m->eps, h);
        product(&m->qkv, l, h, qkv, threads, xq, xd);
        rope(qkv, hq + hkv, d, cos, sin);  /* queries and keys share one rotation */
        uint16_t *k_new = qkv + (size_t)hq * d, *v_new = k_new + (size_t)hkv * d;
        uint16_t *kl = k_cache + (size_t)l * layer_stride, *vl = v_cache + (size_t)l * layer_stride;
        for (int j = 0; j < hkv; j++) {  /* store this position's key and value */
            memcpy(kl + (size_t)j * head_stride + (size_t)pos * d, k_new + (size_t)j * d, sizeof(uint16_t) * d);
            memcpy(vl + (size_t)j * head_stride + (size_t)pos * d, v_new + (size_t)j * d, sizeof(uint16_t) * d);
        }
        struct heads_task attend = {qkv, kl, vl, k_new, v_new, head_stride, pos, hq / hkv, d, 0, scale, y};
        tfd_run_chunks(threads, hq, head_chunk, &attend);
        failed = attend.failed;
        product(&m->o, l, y, out, threads, xq, xd);
        add_into(x, out, dim);
        rms_norm(x, m->norm2 + (size_t)l * dim, dim, m->eps, h);
        product(&m->gate_up, l, h, gu, threads, xq, xd);
        tfd_silu_mul(gu, gu + m->hidden, m->hidden, act);
        product(&m->down, l, act, out, threads, xq, xd);
        add_into(x, out, dim);
    }
    if (!failed) {
        rms_norm(x, m->final_norm, dim, m->final_eps, h);
        product(&m->head, 0, h, logits, threads, xq, xd);
    }
    if (threads > 1) tfd_park_workers();
    free(x);
    free(xq);
    free(xd);
    return failed ? -1 : 0;
}
