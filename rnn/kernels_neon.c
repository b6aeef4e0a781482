/*
 * ARM NEON (Advanced SIMD) kernels for aarch64: one panel of 16 rows is four
 * 128-bit q registers. Advanced SIMD is part of every ARMv8-A core, but
 * es_kernels_for() still asks the kernel (HWCAP_ASIMD) before choosing them,
 * as it asks an x86 CPU for AVX2. Compiled only for aarch64.
 */
#include "kernels.h"

#ifdef ES_HAVE_NEON_KERNELS
#include <arm_neon.h>

/* Rows of a panel in one q register, and q registers per panel. */
#define ES_NEON_LANES 4
#define ES_NEON_QUADS (ES_PANEL_ROWS / ES_NEON_LANES)

/* A panel (four q registers): its accumulators (bias or zero), one column
 * of products, its store. */
static inline __attribute__((always_inline)) void neon_panel_start(float32x4_t acc[ES_NEON_QUADS],
                                                                   const float *bias) {
#pragma GCC unroll 4
    for (int q = 0; q < ES_NEON_QUADS; q++)
        acc[q] = bias ? vld1q_f32(bias + q * ES_NEON_LANES) : vdupq_n_f32(0.0f);
}

static inline __attribute__((always_inline)) void neon_panel_fma(float32x4_t acc[ES_NEON_QUADS],
                                                                 const float *w, float vc) {
#pragma GCC unroll 4
    for (int q = 0; q < ES_NEON_QUADS; q++)
        acc[q] = vfmaq_n_f32(acc[q], vld1q_f32(w + q * ES_NEON_LANES), vc);
}

static inline __attribute__((always_inline)) void
neon_panel_store(float *y, const float32x4_t acc[ES_NEON_QUADS]) {
#pragma GCC unroll 4
    for (int q = 0; q < ES_NEON_QUADS; q++)
        vst1q_f32(y + q * ES_NEON_LANES, acc[q]);
}

/* Two panels (eight accumulators) at a time: a Cortex-A76 or A78 issues two
 * 4-wide FMAs a cycle with a 4-cycle latency, so eight independent chains
 * keep both pipes busy; 8 accumulators and 8 weights fit the 32 registers. */
static void neon_matvec(const float *panels, size_t panel_stride, int panel_count, int col_begin,
                        int col_end, const float *v, const float *bias, float *y) {
    int p = 0;
    for (; p + 2 <= panel_count; p += 2) {
        const float *w = panels + (size_t)p * panel_stride + (size_t)col_begin * ES_PANEL_ROWS;
        float32x4_t a[ES_NEON_QUADS], b[ES_NEON_QUADS];
        neon_panel_start(a, bias ? bias + p * ES_PANEL_ROWS : NULL);
        neon_panel_start(b, bias ? bias + (p + 1) * ES_PANEL_ROWS : NULL);
        for (int c = col_begin; c < col_end; c++, w += ES_PANEL_ROWS) {
            neon_panel_fma(a, w, v[c]);
            neon_panel_fma(b, w + panel_stride, v[c]);
        }
        neon_panel_store(y + p * ES_PANEL_ROWS, a);
        neon_panel_store(y + (p + 1) * ES_PANEL_ROWS, b);
    }
    if (p < panel_count) {
        const float *w = panels + (size_t)p * panel_stride + (size_t)col_begin * ES_PANEL_ROWS;
        float32x4_t a[ES_NEON_QUADS];
        neon_panel_start(a, bias ? bias + p * ES_PANEL_ROWS : NULL);
        for (int c = col_begin; c < col_end; c++, w += ES_PANEL_ROWS)
            neon_panel_fma(a, w, v[c]);
        neon_panel_store(y + p * ES_PANEL_ROWS, a);
    }
}

/* matmat one panel by up to 4 vectors: 16 accumulators and 4 weight
 * registers, so each weight load feeds 4 FMAs and nothing spills. */
#define ES_NEON_TILE_VECTORS 4

static inline __attribute__((always_inline)) void
neon_tile(const float *w, int col_begin, int col_end, const float *v, size_t v_stride, int vectors,
          const float *bias, float *y, size_t y_stride) {
    float32x4_t acc[ES_NEON_TILE_VECTORS][ES_NEON_QUADS];
#pragma GCC unroll 4
    for (int t = 0; t < vectors; t++)
        neon_panel_start(acc[t], bias);
    for (int c = col_begin; c < col_end; c++, w += ES_PANEL_ROWS) {
        float32x4_t wq[ES_NEON_QUADS];
#pragma GCC unroll 4
        for (int q = 0; q < ES_NEON_QUADS; q++)
            wq[q] = vld1q_f32(w + q * ES_NEON_LANES);
#pragma GCC unroll 4
        for (int t = 0; t < vectors; t++) {
            float vc = v[(size_t)t * v_stride + (size_t)c];
#pragma GCC unroll 4
            for (int q = 0; q < ES_NEON_QUADS; q++)
                acc[t][q] = vfmaq_n_f32(acc[t][q], wq[q], vc);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < vectors; t++)
        neon_panel_store(y + (size_t)t * y_stride, acc[t]);
}

static void neon_matmat(const float *panels, size_t panel_stride, int panel_count, int col_begin,
                        int col_end, const float *v, size_t v_stride, int count, const float *bias,
                        float *y, size_t y_stride) {
    for (int p = 0; p < panel_count; p++) {
        const float *w = panels + (size_t)p * panel_stride + (size_t)col_begin * ES_PANEL_ROWS;
        const float *b = bias ? bias + p * ES_PANEL_ROWS : NULL;
        float *yp = y + (size_t)p * ES_PANEL_ROWS;
        int t = 0;
        for (; t + ES_NEON_TILE_VECTORS <= count; t += ES_NEON_TILE_VECTORS)
            neon_tile(w, col_begin, col_end, v + (size_t)t * v_stride, v_stride,
                      ES_NEON_TILE_VECTORS, b, yp + (size_t)t * y_stride, y_stride);
        /* The tail one vector at a time keeps a single copy of the tile. */
        for (; t < count; t++)
            neon_tile(w, col_begin, col_end, v + (size_t)t * v_stride, v_stride, 1, b,
                      yp + (size_t)t * y_stride, y_stride);
    }
}

/* The Cephes exp of kernels.h, four lanes at a time. */
static float32x4_t neon_exp_vec(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(ES_EXP_MIN_INPUT)), vdupq_n_f32(ES_EXP_MAX_INPUT));
    float32x4_t n = vrndnq_f32(vmulq_n_f32(x, ES_LOG2E));
    float32x4_t r = vfmsq_n_f32(x, n, ES_LN2_HI);
    r = vfmsq_n_f32(r, n, ES_LN2_LO);
    float32x4_t poly = vfmaq_n_f32(vdupq_n_f32(ES_EXP_P1), r, ES_EXP_P0);
    poly = vfmaq_f32(vdupq_n_f32(ES_EXP_P2), poly, r);
    poly = vfmaq_f32(vdupq_n_f32(ES_EXP_P3), poly, r);
    poly = vfmaq_f32(vdupq_n_f32(ES_EXP_P4), poly, r);
    poly = vfmaq_f32(vdupq_n_f32(ES_EXP_P5), poly, r);
    float32x4_t exp_r = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), poly, vmulq_f32(r, r));
    /* 2^n built in the exponent field; the clamp keeps n in [-126, 127]. */
    int32x4_t biased = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
    float32x4_t scale = vreinterpretq_f32_s32(vshlq_n_s32(biased, 23));
    return vmulq_f32(exp_r, scale);
}

static float32x4_t neon_sigmoid_vec(float32x4_t x) {
    float32x4_t one = vdupq_n_f32(1.0f);
    return vdivq_f32(one, vaddq_f32(one, neon_exp_vec(vnegq_f32(x))));
}

static float32x4_t neon_tanh_vec(float32x4_t x) {
    float32x4_t one = vdupq_n_f32(1.0f);
    float32x4_t ax = vabsq_f32(x);
    float32x4_t e = neon_exp_vec(vaddq_f32(ax, ax));
    float32x4_t far = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, one)));
    /* The sign of x onto |tanh x|: bit select under the sign mask. */
    uint32x4_t sign_bit = vdupq_n_u32(0x80000000u);
    far = vbslq_f32(sign_bit, x, far);
    float32x4_t x2 = vmulq_f32(x, x);
    float32x4_t series = vfmaq_n_f32(vdupq_n_f32(ES_TANH_T5), x2, ES_TANH_T7);
    series = vfmaq_f32(vdupq_n_f32(ES_TANH_T3), series, x2);
    series = vfmaq_f32(x, vmulq_f32(series, x2), x);
    uint32x4_t near = vcltq_f32(ax, vdupq_n_f32(ES_TANH_SERIES_BELOW));
    return vbslq_f32(near, series, far);
}

/* Applies `f` to x[0..n); the tail goes through a zero-padded copy. */
#define ES_NEON_ELEMENTWISE(name, f)                                                               \
    static void name(float *x, int n) {                                                            \
        int i = 0;                                                                                 \
        for (; i + ES_NEON_LANES <= n; i += ES_NEON_LANES)                                         \
            vst1q_f32(x + i, f(vld1q_f32(x + i)));                                                 \
        if (i < n) {                                                                               \
            float tail[ES_NEON_LANES] = {0};                                                       \
            for (int j = 0; j < n - i; j++)                                                        \
                tail[j] = x[i + j];                                                                \
            vst1q_f32(tail, f(vld1q_f32(tail)));                                                   \
            for (int j = 0; j < n - i; j++)                                                        \
                x[i + j] = tail[j];                                                                \
        }                                                                                          \
    }

ES_NEON_ELEMENTWISE(neon_sigmoid, neon_sigmoid_vec)
ES_NEON_ELEMENTWISE(neon_tanh, neon_tanh_vec)
ES_NEON_ELEMENTWISE(neon_exp, neon_exp_vec)

const es_kernels es_kernels_neon = {
    .name = "neon",
    .matvec = neon_matvec,
    .matmat = neon_matmat,
    .sigmoid = neon_sigmoid,
    .tanh = neon_tanh,
    .exp = neon_exp,
};

#endif
