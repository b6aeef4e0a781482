/*
 * ARM NEON int8 kernels (aarch64 only): a panel's group (16 rows x 4
 * columns, 64 bytes) is four 128-bit registers of four rows each. With the
 * dot-product extension (__ARM_FEATURE_DOTPROD, e.g. -march=armv8.2-a+dotprod:
 * Cortex-A55/A76, the Raspberry Pi 5) one SDOT adds each row's four products
 * into its int32; without it, SMULL makes int16 products and SADALP adds
 * pairs of them into int32 lanes that hold half a row each.
 */
#include <math.h>
#include <string.h>

#include "kernels_int8.h"

#ifdef __aarch64__
#include <arm_neon.h>

static int8x16_t broadcast_group(const int8_t *v) {
    int32_t four;
    memcpy(&four, v, sizeof four);
    return vreinterpretq_s8_s32(vdupq_n_s32(four));
}

/* One panel (16 rows) times one vector. */
static void neon_panel(const int8_t *w, int groups, const int8_t *v, int32_t *y) {
#ifdef __ARM_FEATURE_DOTPROD
    int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    for (int g = 0; g < groups; g++, w += ES_INT8_GROUP_BYTES) {
        int8x16_t vb = broadcast_group(v + g * ES_INT8_GROUP);
        for (int q = 0; q < 4; q++)
            acc[q] = vdotq_s32(acc[q], vld1q_s8(w + 16 * q), vb);
    }
    for (int q = 0; q < 4; q++)
        vst1q_s32(y + 4 * q, acc[q]);
#else
    /* pairs[q][0]: rows 4q, 4q+1; pairs[q][1]: rows 4q+2, 4q+3; two lanes a row */
    int32x4_t pairs[4][2];
    for (int q = 0; q < 4; q++)
        pairs[q][0] = pairs[q][1] = vdupq_n_s32(0);
    for (int g = 0; g < groups; g++, w += ES_INT8_GROUP_BYTES) {
        int8x16_t vb = broadcast_group(v + g * ES_INT8_GROUP);
        for (int q = 0; q < 4; q++) {
            int8x16_t wq = vld1q_s8(w + 16 * q);
            pairs[q][0] = vpadalq_s16(pairs[q][0], vmull_s8(vget_low_s8(wq), vget_low_s8(vb)));
            pairs[q][1] = vpadalq_s16(pairs[q][1], vmull_high_s8(wq, vb));
        }
    }
    for (int q = 0; q < 4; q++)
        vst1q_s32(y + 4 * q, vpaddq_s32(pairs[q][0], pairs[q][1]));
#endif
}

static void neon_matmat(const int8_t *panels, size_t panel_stride, int panel_count, int groups,
                        const int8_t *v, size_t v_stride, int count, int32_t *y, size_t y_stride) {
    for (int t = 0; t < count; t++)
        for (int p = 0; p < panel_count; p++)
            neon_panel(panels + (size_t)p * panel_stride, groups, v + (size_t)t * v_stride,
                       y + (size_t)t * y_stride + (size_t)p * ES_PANEL_ROWS);
}

/* es_int8_quantise_vector four lanes at a time, the tail as it does. */
static float neon_quantise(const float *v, int n, int8_t *q) {
    float32x4_t largest4 = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        largest4 = vmaxq_f32(largest4, vabsq_f32(vld1q_f32(v + i)));
    float largest = vmaxvq_f32(largest4);
    for (; i < n; i++)
        largest = fabsf(v[i]) > largest ? fabsf(v[i]) : largest;
    float inverse, scale = es_int8_vector_scale(largest, &inverse);
    const float32x4_t up = vdupq_n_f32(0.5f), down = vdupq_n_f32(-0.5f);
    const int32x4_t top = vdupq_n_s32(ES_INT8_MAX), bottom = vdupq_n_s32(-ES_INT8_MAX);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t r = vmulq_n_f32(vld1q_f32(v + i), inverse);
        /* As es_int8_round: +0.5 where r >= 0, else -0.5, then truncate. */
        float32x4_t half = vbslq_f32(vcgezq_f32(r), up, down);
        int32x4_t rounded = vcvtq_s32_f32(vaddq_f32(r, half));
        rounded = vmaxq_s32(vminq_s32(rounded, top), bottom);
        int16x4_t words = vmovn_s32(rounded);
        int8x8_t bytes = vmovn_s16(vcombine_s16(words, words));
        memcpy(q + i, &bytes, 4);
    }
    for (; i < n; i++)
        q[i] = es_int8_round(v[i] * inverse);
    for (; i < es_int8_groups(n) * ES_INT8_GROUP; i++)
        q[i] = 0;
    return scale;
}

/* The generic rescale four rows at a time, the tail as it does. */
static void neon_rescale(const int32_t *sums, const float *row_scales, float vector_scale,
                         const float *base, int rows, float *y) {
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        float32x4_t scale = vmulq_n_f32(vld1q_f32(row_scales + r), vector_scale);
        float32x4_t product = vmulq_f32(vcvtq_f32_s32(vld1q_s32(sums + r)), scale);
        if (base) product = vaddq_f32(vld1q_f32(base + r), product);
        vst1q_f32(y + r, product);
    }
    es_int8_rescale_rows(sums, row_scales, vector_scale, base, r, rows, y);
}

const es_int8_kernels es_int8_kernels_neon = {
#ifdef __ARM_FEATURE_DOTPROD
    .name = "neon_dotprod",
#else
    .name = "neon",
#endif
    .matmat = neon_matmat,
    .quantise = neon_quantise,
    .rescale = neon_rescale,
};

#endif
