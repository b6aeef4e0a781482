/*
 * Portable kernels (any CPU, any compiler) and the choice among kernel sets.
 * The vectorised sets in kernels_avx2.c, kernels_avx512.c and kernels_neon.c
 * must agree with these within float rounding; tests/rnn/test_layers.c checks that.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#ifdef ES_HAVE_NEON_KERNELS
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

float *es_alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    if (bytes == 0) bytes = 64;
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

static void generic_matvec(const float *panels, size_t panel_stride, int panel_count, int col_begin,
                           int col_end, const float *v, const float *bias, float *y) {
    for (int p = 0; p < panel_count; p++) {
        const float *w = panels + (size_t)p * panel_stride + (size_t)col_begin * ES_PANEL_ROWS;
        float acc[ES_PANEL_ROWS];
        for (int r = 0; r < ES_PANEL_ROWS; r++)
            acc[r] = bias ? bias[p * ES_PANEL_ROWS + r] : 0.0f;
        for (int c = col_begin; c < col_end; c++, w += ES_PANEL_ROWS)
            for (int r = 0; r < ES_PANEL_ROWS; r++)
                acc[r] += w[r] * v[c];
        memcpy(y + p * ES_PANEL_ROWS, acc, sizeof acc);
    }
}

static void generic_matmat(const float *panels, size_t panel_stride, int panel_count, int col_begin,
                           int col_end, const float *v, size_t v_stride, int count,
                           const float *bias, float *y, size_t y_stride) {
    for (int t = 0; t < count; t++)
        generic_matvec(panels, panel_stride, panel_count, col_begin, col_end,
                       v + (size_t)t * v_stride, bias, y + (size_t)t * y_stride);
}

static void generic_sigmoid(float *x, int n) {
    for (int i = 0; i < n; i++)
        x[i] = 1.0f / (1.0f + expf(-x[i]));
}

static void generic_tanh(float *x, int n) {
    for (int i = 0; i < n; i++)
        x[i] = tanhf(x[i]);
}

static void generic_exp(float *x, int n) {
    for (int i = 0; i < n; i++)
        x[i] = expf(x[i]);
}

const es_kernels es_kernels_generic = {
    .name = "generic",
    .matvec = generic_matvec,
    .matmat = generic_matmat,
    .sigmoid = generic_sigmoid,
    .tanh = generic_tanh,
    .exp = generic_exp,
};

const es_kernels *es_kernels_for(es_isa isa) {
#ifdef ES_HAVE_X86_KERNELS
    /* __builtin_cpu_supports also checks that the OS saves the wide registers. */
    int has_avx512 = __builtin_cpu_supports("avx512f");
    int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    switch (isa) {
    case ES_ISA_AUTO:
        return has_avx512 ? &es_kernels_avx512 : has_avx2 ? &es_kernels_avx2 : &es_kernels_generic;
    case ES_ISA_AVX512:
        return has_avx512 ? &es_kernels_avx512 : NULL;
    case ES_ISA_AVX2:
        return has_avx2 ? &es_kernels_avx2 : NULL;
    case ES_ISA_GENERIC:
        return &es_kernels_generic;
    case ES_ISA_NEON: /* an ARM set */
        return NULL;
    }
    return NULL;
#elif defined(ES_HAVE_NEON_KERNELS)
    /* Every ARMv8-A core has Advanced SIMD; the kernel's word makes it sure. */
    const es_kernels *neon = getauxval(AT_HWCAP) & HWCAP_ASIMD ? &es_kernels_neon : NULL;
    switch (isa) {
    case ES_ISA_AUTO:
        return neon ? neon : &es_kernels_generic;
    case ES_ISA_NEON:
        return neon;
    case ES_ISA_GENERIC:
        return &es_kernels_generic;
    default:
        return NULL;
    }
#else
    return isa == ES_ISA_AUTO || isa == ES_ISA_GENERIC ? &es_kernels_generic : NULL;
#endif
}
