/*
 * Portable int8 kernels (the reference the vectorised sets are tested
 * against, tests/rnn/test_int8.c), vector quantisation, and the choice among
 * int8 kernel sets.
 */
#include <math.h>

#include "kernels_int8.h"

int8_t es_int8_weight(float w, float scale) {
    if (!(scale > 0.0f)) return 0;
    float q = roundf(w / scale);
    q = q > ES_INT8_MAX ? ES_INT8_MAX : q < -ES_INT8_MAX ? -ES_INT8_MAX : q;
    return (int8_t)q;
}

float es_int8_quantise_vector(const float *v, int n, int8_t *q) {
    float largest = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(v[i]);
        largest = a > largest ? a : largest;
    }
    float inverse, scale = es_int8_vector_scale(largest, &inverse);
    for (int i = 0; i < n; i++)
        q[i] = es_int8_round(v[i] * inverse);
    for (int i = n; i < es_int8_groups(n) * ES_INT8_GROUP; i++)
        q[i] = 0;
    return scale;
}

static void generic_rescale(const int32_t *sums, const float *row_scales, float vector_scale,
                            const float *base, int rows, float *y) {
    es_int8_rescale_rows(sums, row_scales, vector_scale, base, 0, rows, y);
}

static void generic_matmat(const int8_t *panels, size_t panel_stride, int panel_count, int groups,
                           const int8_t *v, size_t v_stride, int count, int32_t *y,
                           size_t y_stride) {
    for (int t = 0; t < count; t++) {
        const int8_t *vt = v + (size_t)t * v_stride;
        for (int p = 0; p < panel_count; p++) {
            const int8_t *w = panels + (size_t)p * panel_stride;
            int32_t acc[ES_PANEL_ROWS] = {0};
            for (int g = 0; g < groups; g++, w += ES_INT8_GROUP_BYTES)
                for (int r = 0; r < ES_PANEL_ROWS; r++)
                    for (int k = 0; k < ES_INT8_GROUP; k++)
                        acc[r] += (int32_t)w[r * ES_INT8_GROUP + k] * vt[g * ES_INT8_GROUP + k];
            for (int r = 0; r < ES_PANEL_ROWS; r++)
                y[(size_t)t * y_stride + (size_t)p * ES_PANEL_ROWS + r] = acc[r];
        }
    }
}

const es_int8_kernels es_int8_kernels_generic = {
    .name = "generic",
    .matmat = generic_matmat,
    .quantise = es_int8_quantise_vector,
    .rescale = generic_rescale,
};

const es_int8_kernels *es_int8_kernels_for(es_isa isa) {
#ifdef ES_HAVE_X86_KERNELS
    int has_vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
    int has_avx2 = __builtin_cpu_supports("avx2");
    switch (isa) {
    case ES_ISA_AUTO:
        return has_vnni   ? &es_int8_kernels_vnni
               : has_avx2 ? &es_int8_kernels_avx2
                          : &es_int8_kernels_generic;
    case ES_ISA_AVX512:
        return has_vnni ? &es_int8_kernels_vnni : NULL;
    case ES_ISA_AVX2:
        return has_avx2 ? &es_int8_kernels_avx2 : NULL;
    case ES_ISA_GENERIC:
        return &es_int8_kernels_generic;
    case ES_ISA_NEON:
        return NULL;
    }
    return NULL;
#elif defined(__aarch64__)
    /* Advanced SIMD is part of every aarch64 CPU. */
    switch (isa) {
    case ES_ISA_AUTO:
    case ES_ISA_NEON:
        return &es_int8_kernels_neon;
    case ES_ISA_GENERIC:
        return &es_int8_kernels_generic;
    default:
        return NULL;
    }
#else
    return isa == ES_ISA_AUTO || isa == ES_ISA_GENERIC ? &es_int8_kernels_generic : NULL;
#endif
}
