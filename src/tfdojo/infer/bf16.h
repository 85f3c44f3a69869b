/* bf16 <-> fp32 for our C kernels (gemv_avx2.c, decode_step_avx2.c): bf16 is the top half of an fp32. */
#ifndef TFDOJO_BF16_H
#define TFDOJO_BF16_H

#include <math.h>
#include <stdint.h>

static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

static inline uint16_t f32_to_bf16(float f) {  /* round to nearest even, as torch */
    union { float f; uint32_t u; } v = {f};
    if (isnan(f)) return 0x7FC0;
    v.u += 0x7FFF + ((v.u >> 16) & 1);
    return (uint16_t)(v.u >> 16);
}

#endif
