/*
 * AVX2 int8 kernels: a panel's group (16 rows x 4 columns, 64 bytes) is two
 * ymm registers. vpmaddubsw multiplies unsigned by signed bytes, so the
 * vector's sign moves onto the weights first (vpsignb): |v| * sign(v) w. A
 * pair of such products is at most 2 * 127 * 127 and never saturates the
 * int16; vpmaddwd by ones then sums the pairs into each row's int32.
 */
#include <math.h>
#include <string.h>

#include "kernels_int8.h"

#ifdef ES_HAVE_X86_KERNELS
#include <immintrin.h>

#define ES_AVX2 __attribute__((target("avx2")))
#define ES_AVX2_PANELS 4

ES_AVX2 static inline __m256i broadcast_group(const int8_t *v) {
    int32_t four;
    memcpy(&four, v, sizeof four);
    return _mm256_set1_epi32(four);
}

/* `panels` (a constant in each caller) panels times one vector. */
ES_AVX2 static inline __attribute__((always_inline)) void avx2_panels(const int8_t *w,
                                                                      size_t panel_stride,
                                                                      int panels, int groups,
                                                                      const int8_t *v, int32_t *y) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[ES_AVX2_PANELS][2];
#pragma GCC unroll 4
    for (int p = 0; p < panels; p++)
        acc[p][0] = acc[p][1] = _mm256_setzero_si256();
    for (int g = 0; g < groups; g++, w += ES_INT8_GROUP_BYTES) {
        __m256i vb = broadcast_group(v + g * ES_INT8_GROUP);
        __m256i magnitude = _mm256_abs_epi8(vb);
#pragma GCC unroll 4
        for (int p = 0; p < panels; p++) {
            const int8_t *wp = w + (size_t)p * panel_stride;
#pragma GCC unroll 2
            for (int half = 0; half < 2; half++) {
                __m256i wh = _mm256_loadu_si256((const __m256i *)(wp + 32 * half));
                __m256i pairs = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(wh, vb));
                acc[p][half] = _mm256_add_epi32(acc[p][half], _mm256_madd_epi16(pairs, ones));
            }
        }
    }
#pragma GCC unroll 4
    for (int p = 0; p < panels; p++) {
        _mm256_storeu_si256((__m256i *)(y + p * ES_PANEL_ROWS), acc[p][0]);
        _mm256_storeu_si256((__m256i *)(y + p * ES_PANEL_ROWS + 8), acc[p][1]);
    }
}

ES_AVX2 static void avx2_matmat(const int8_t *panels, size_t panel_stride, int panel_count,
                                int groups, const int8_t *v, size_t v_stride, int count, int32_t *y,
                                size_t y_stride) {
    for (int t = 0; t < count; t++) {
        const int8_t *vt = v + (size_t)t * v_stride;
        int32_t *yt = y + (size_t)t * y_stride;
        int p = 0;
        for (; p + ES_AVX2_PANELS <= panel_count; p += ES_AVX2_PANELS)
            avx2_panels(panels + (size_t)p * panel_stride, panel_stride, ES_AVX2_PANELS, groups, vt,
                        yt + p * ES_PANEL_ROWS);
        for (; p < panel_count; p++)
            avx2_panels(panels + (size_t)p * panel_stride, panel_stride, 1, groups, vt,
                        yt + p * ES_PANEL_ROWS);
    }
}

/* es_int8_quantise_vector eight lanes at a time, the tail as it does. */
ES_AVX2 static float avx2_quantise(const float *v, int n, int8_t *q) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    __m256 largest8 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        largest8 = _mm256_max_ps(largest8, _mm256_andnot_ps(sign_bit, _mm256_loadu_ps(v + i)));
    float lanes[8], largest = 0.0f;
    _mm256_storeu_ps(lanes, largest8);
    for (int k = 0; k < 8; k++)
        largest = lanes[k] > largest ? lanes[k] : largest;
    for (; i < n; i++)
        largest = fabsf(v[i]) > largest ? fabsf(v[i]) : largest;
    float inverse, scale = es_int8_vector_scale(largest, &inverse);
    const __m256 times = _mm256_set1_ps(inverse), zero = _mm256_setzero_ps();
    const __m256 up = _mm256_set1_ps(0.5f), down = _mm256_set1_ps(-0.5f);
    const __m256i top = _mm256_set1_epi32(ES_INT8_MAX), bottom = _mm256_set1_epi32(-ES_INT8_MAX);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 r = _mm256_mul_ps(_mm256_loadu_ps(v + i), times);
        /* As es_int8_round: +0.5 where r >= 0, else -0.5, then truncate. */
        __m256 half = _mm256_blendv_ps(down, up, _mm256_cmp_ps(r, zero, _CMP_GE_OQ));
        __m256i rounded = _mm256_cvttps_epi32(_mm256_add_ps(r, half));
        rounded = _mm256_max_epi32(_mm256_min_epi32(rounded, top), bottom);
        __m128i words =
            _mm_packs_epi32(_mm256_castsi256_si128(rounded), _mm256_extracti128_si256(rounded, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packs_epi16(words, words));
    }
    for (; i < n; i++)
        q[i] = es_int8_round(v[i] * inverse);
    for (; i < es_int8_groups(n) * ES_INT8_GROUP; i++)
        q[i] = 0;
    return scale;
}

/* The generic rescale eight rows at a time, the tail as it does. */
ES_AVX2 static void avx2_rescale(const int32_t *sums, const float *row_scales, float vector_scale,
                                 const float *base, int rows, float *y) {
    const __m256 times = _mm256_set1_ps(vector_scale);
    int r = 0;
    for (; r + 8 <= rows; r += 8) {
        __m256 scale = _mm256_mul_ps(_mm256_loadu_ps(row_scales + r), times);
        __m256 product = _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(sums + r))), scale);
        if (base) product = _mm256_add_ps(_mm256_loadu_ps(base + r), product);
        _mm256_storeu_ps(y + r, product);
    }
    es_int8_rescale_rows(sums, row_scales, vector_scale, base, r, rows, y);
}

const es_int8_kernels es_int8_kernels_avx2 = {
    .name = "avx2",
    .matmat = avx2_matmat,
    .quantise = avx2_quantise,
    .rescale = avx2_rescale,
};

#endif
