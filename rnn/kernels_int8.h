/*
 * int8 inference: the integer dot-product kernels and the packed int8 layout
 * they read. Internal to rnn/ (model.c packs, layers_int8.c runs them).
 *
 * A quantised layer keeps int8 weights with one float scale per matrix row
 * (a gate row of [W U] for recurrent layers: w ≈ q * row_scale). Each
 * vector a product reads (a frame's input, a CONV1D window, the hidden state
 * of one step) is quantised on the fly with one scale of its own, max|v| /
 * 127, and the kernels compute exact int32 sums of q_w * q_v. layers_int8.c
 * turns them into floats (bias + sum * row_scale * vector_scale). Both sides
 * stay in [-127, 127], never -128: the AVX2 kernel's sign trick needs |q| to
 * fit in a byte, and every pair of products then fits in an int16.
 *
 * Packed layout: panels of ES_PANEL_ROWS (16) rows as for float (kernels.h),
 * but a panel's columns come in groups of four: a group is 64 bytes, row r's
 * four consecutive columns at bytes 4r..4r+3, which is what one vpdpbusd
 * (and vdotq_s32, and maddubs + madd) multiplies with four bytes of the
 * vector broadcast to every row. The input columns and, for recurrent
 * layers, the hidden columns are each padded with zero columns to a whole
 * group, so the hidden half starts on a group of its own.
 */
#ifndef ES_RNN_KERNELS_INT8_H
#define ES_RNN_KERNELS_INT8_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#define ES_INT8_GROUP 4                                     /* columns per group */
#define ES_INT8_GROUP_BYTES (ES_PANEL_ROWS * ES_INT8_GROUP) /* 64 */
#define ES_INT8_MAX 127

static inline int es_int8_groups(int columns) {
    return (columns + ES_INT8_GROUP - 1) / ES_INT8_GROUP;
}

typedef struct es_int8_kernels {
    const char *name;
    /* For each vector t < count (v + t * v_stride, 4 * groups int8 values)
     * and each row of `panel_count` panels (panel p starts at panels + p *
     * panel_stride bytes): y[t * y_stride + p * 16 + r] = the exact sum over
     * j < 4 * groups of w[p][j / 4][r][j % 4] * v_t[j]. Integer sums, so
     * every kernel set gives the same bits. */
    void (*matmat)(const int8_t *panels, size_t panel_stride, int panel_count, int groups,
                   const int8_t *v, size_t v_stride, int count, int32_t *y, size_t y_stride);
    /* es_int8_quantise_vector's work, the same bytes and scale (the
     * vectorised sets are several times faster: a matrix product's vector is
     * quantised for every frame, and a scalar max loop cost as much as the
     * hidden product it feeds). */
    float (*quantise)(const float *v, int n, int8_t *q);
    /* y[r] = base[r] + (float)sums[r] * (row_scales[r] * vector_scale) for
     * r < rows, in that order of operations (base may be NULL, or y): the
     * int32 sums back to floats, the same bits in every set. */
    void (*rescale)(const int32_t *sums, const float *row_scales, float vector_scale,
                    const float *base, int rows, float *y);
} es_int8_kernels;

/* The int8 kernels for `isa` (ES_ISA_AVX512: AVX-512 VNNI), or NULL when
 * this CPU or build lacks them. */
const es_int8_kernels *es_int8_kernels_for(es_isa isa);

extern const es_int8_kernels es_int8_kernels_generic;
#ifdef ES_HAVE_X86_KERNELS
extern const es_int8_kernels es_int8_kernels_avx2;
extern const es_int8_kernels es_int8_kernels_vnni;
#endif
#ifdef __aarch64__
extern const es_int8_kernels es_int8_kernels_neon;
#endif

/* A weight's int8 value under its row's scale: round(w / scale), clamped
 * to [-127, 127]; 0 for a zero scale (a row of zeros). */
int8_t es_int8_weight(float w, float scale);

/* Quantises n floats into q (n rounded up to a group, the rest zeros) with
 * one scale, which it returns (0 for an all-zero vector): q = v / scale
 * rounded half away from zero, scale = max|v| / 127. The portable reference
 * of the kernel sets' `quantise`. */
float es_int8_quantise_vector(const float *v, int n, int8_t *q);

/* One value of a vector already multiplied by 1 / scale, rounded half away
 * from zero (adding 0.5 before truncating: the same in every kernel set) and
 * clamped to [-127, 127]. */
static inline int8_t es_int8_round(float r) {
    int rounded = (int)(r + (r >= 0.0f ? 0.5f : -0.5f));
    return (int8_t)(rounded > ES_INT8_MAX    ? ES_INT8_MAX
                    : rounded < -ES_INT8_MAX ? -ES_INT8_MAX
                                             : rounded);
}

/* The rescale of rows [from, rows) one at a time: the generic set's whole
 * loop and the vectorised sets' tails. */
static inline void es_int8_rescale_rows(const int32_t *sums, const float *row_scales,
                                        float vector_scale, const float *base, int from, int rows,
                                        float *y) {
    for (int r = from; r < rows; r++) {
        float product = (float)sums[r] * (row_scales[r] * vector_scale);
        y[r] = base ? base[r] + product : product;
    }
}

/* The scale for a vector whose largest magnitude is `largest`, and the
 * factor each value is multiplied by: one definition for every set. */
static inline float es_int8_vector_scale(float largest, float *inverse) {
    *inverse = largest > 0.0f ? ES_INT8_MAX / largest : 0.0f;
    return largest / ES_INT8_MAX;
}

#endif
