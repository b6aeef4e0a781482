/*
 * AVX-512 VNNI int8 kernels: a panel's group (16 rows x 4 columns, 64 bytes)
 * is one zmm register, and one vpdpbusd adds each row's four products into
 * its int32. vpdpbusd multiplies unsigned by signed bytes: the weights are
 * made unsigned on the fly (w + 128, an XOR of the sign bit), the vector
 * stays signed, and 128 times the vector's sum, the same for every row, is
 * taken off at the end. Exact: the sums stay far inside an int32.
 */
#include <string.h>

#include "kernels_int8.h"

#ifdef ES_HAVE_X86_KERNELS
#include <immintrin.h>

#define ES_VNNI __attribute__((target("avx512f,avx512vnni")))
#define ES_VNNI_PANELS 4  /* panels per block: 4 accumulators per vector */
#define ES_VNNI_VECTORS 2 /* vectors that share each weight load */

/* `panels` panels times `vectors` vectors (constants in each caller): each
 * weight group is loaded and made unsigned once for all the vectors. */
ES_VNNI static inline __attribute__((always_inline)) void
vnni_block(const int8_t *w, size_t panel_stride, int panels, int groups, const int8_t *v,
           size_t v_stride, int vectors, const __m512i *offsets, int32_t *y, size_t y_stride) {
    const __m512i sign_bits = _mm512_set1_epi8((char)0x80);
    __m512i acc[ES_VNNI_VECTORS][ES_VNNI_PANELS];
#pragma GCC unroll 4
    for (int t = 0; t < vectors; t++)
#pragma GCC unroll 4
        for (int p = 0; p < panels; p++)
            acc[t][p] = _mm512_setzero_si512();
    for (int g = 0; g < groups; g++, w += ES_INT8_GROUP_BYTES) {
        __m512i vb[ES_VNNI_VECTORS];
#pragma GCC unroll 4
        for (int t = 0; t < vectors; t++) {
            int32_t four;
            memcpy(&four, v + (size_t)t * v_stride + g * ES_INT8_GROUP, sizeof four);
            vb[t] = _mm512_set1_epi32(four);
        }
#pragma GCC unroll 4
        for (int p = 0; p < panels; p++) {
            __m512i unsigned_w =
                _mm512_xor_si512(_mm512_loadu_si512(w + (size_t)p * panel_stride), sign_bits);
#pragma GCC unroll 4
            for (int t = 0; t < vectors; t++)
                acc[t][p] = _mm512_dpbusd_epi32(acc[t][p], unsigned_w, vb[t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < vectors; t++)
#pragma GCC unroll 4
        for (int p = 0; p < panels; p++)
            _mm512_storeu_si512(y + (size_t)t * y_stride + p * ES_PANEL_ROWS,
                                _mm512_sub_epi32(acc[t][p], offsets[t]));
}

/* All the panels times `vectors` vectors, in blocks of ES_VNNI_PANELS panels, then one by one. */
ES_VNNI static inline __attribute__((always_inline)) void
vnni_vectors(const int8_t *panels, size_t panel_stride, int panel_count, int groups,
             const int8_t *v, size_t v_stride, int vectors, int32_t *y, size_t y_stride) {
    __m512i offsets[ES_VNNI_VECTORS];
#pragma GCC unroll 4
    for (int t = 0; t < vectors; t++) {
        int32_t sum = 0;
        for (int j = 0; j < groups * ES_INT8_GROUP; j++)
            sum += v[(size_t)t * v_stride + j];
        offsets[t] = _mm512_set1_epi32(128 * sum);
    }
    int p = 0;
    for (; p + ES_VNNI_PANELS <= panel_count; p += ES_VNNI_PANELS)
        vnni_block(panels + (size_t)p * panel_stride, panel_stride, ES_VNNI_PANELS, groups, v,
                   v_stride, vectors, offsets, y + p * ES_PANEL_ROWS, y_stride);
    for (; p < panel_count; p++)
        vnni_block(panels + (size_t)p * panel_stride, panel_stride, 1, groups, v, v_stride, vectors,
                   offsets, y + p * ES_PANEL_ROWS, y_stride);
}

ES_VNNI static void vnni_matmat(const int8_t *panels, size_t panel_stride, int panel_count,
                                int groups, const int8_t *v, size_t v_stride, int count, int32_t *y,
                                size_t y_stride) {
    int t = 0;
    for (; t + ES_VNNI_VECTORS <= count; t += ES_VNNI_VECTORS)
        vnni_vectors(panels, panel_stride, panel_count, groups, v + (size_t)t * v_stride, v_stride,
                     ES_VNNI_VECTORS, y + (size_t)t * y_stride, y_stride);
    if (t < count)
        vnni_vectors(panels, panel_stride, panel_count, groups, v + (size_t)t * v_stride, v_stride,
                     1, y + (size_t)t * y_stride, y_stride);
}

/* es_int8_quantise_vector sixteen lanes at a time, the tail under a mask. */
ES_VNNI static float vnni_quantise(const float *v, int n, int8_t *q) {
    __m512 largest16 = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 lanes = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        largest16 = _mm512_max_ps(largest16, _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes, v + i)));
    }
    float inverse, scale = es_int8_vector_scale(_mm512_reduce_max_ps(largest16), &inverse);
    const __m512 times = _mm512_set1_ps(inverse), zero = _mm512_setzero_ps();
    const __m512 up = _mm512_set1_ps(0.5f), down = _mm512_set1_ps(-0.5f);
    const __m512i top = _mm512_set1_epi32(ES_INT8_MAX), bottom = _mm512_set1_epi32(-ES_INT8_MAX);
    for (int i = 0; i < n; i += 16) {
        __mmask16 lanes = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m512 r = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, v + i), times);
        /* As es_int8_round: +0.5 where r >= 0, else -0.5, then truncate. */
        __m512 half = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(r, zero, _CMP_GE_OQ), down, up);
        __m512i rounded = _mm512_cvttps_epi32(_mm512_add_ps(r, half));
        rounded = _mm512_max_epi32(_mm512_min_epi32(rounded, top), bottom);
        _mm512_mask_cvtepi32_storeu_epi8(q + i, lanes, rounded);
    }
    for (int i = n; i < es_int8_groups(n) * ES_INT8_GROUP; i++)
        q[i] = 0;
    return scale;
}

/* The generic rescale sixteen rows at a time, the tail under a mask. */
ES_VNNI static void vnni_rescale(const int32_t *sums, const float *row_scales, float vector_scale,
                                 const float *base, int rows, float *y) {
    const __m512 times = _mm512_set1_ps(vector_scale);
    for (int r = 0; r < rows; r += 16) {
        __mmask16 lanes = (__mmask16)(rows - r >= 16 ? 0xffff : (1u << (rows - r)) - 1);
        __m512 scale = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, row_scales + r), times);
        __m512 product =
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(lanes, sums + r)), scale);
        if (base) product = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, base + r), product);
        _mm512_mask_storeu_ps(y + r, lanes, product);
    }
}

const es_int8_kernels es_int8_kernels_vnni = {
    .name = "avx512_vnni",
    .matmat = vnni_matmat,
    .quantise = vnni_quantise,
    .rescale = vnni_rescale,
};

#endif
