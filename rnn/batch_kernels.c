/*
 * Portable batched kernels and the choice of the set that matches a model's
 * kernels. The generic product runs the generic single-stream kernel one
 * panel at a time, the streams inside: the same arithmetic by construction,
 * and a panel stays in L1 while every stream of the block reads it.
 */
#include "batch_kernels.h"

static void generic_product(const float *panels, size_t panel_stride, int panel_count,
                            int col_begin, int col_end, const float *const *v,
                            const float *const *bias, float *const *y, int count) {
    for (int p = 0; p < panel_count; p++)
        for (int t = 0; t < count; t++)
            es_kernels_generic.matvec(panels + (size_t)p * panel_stride, panel_stride, 1, col_begin,
                                      col_end, v[t], bias[t] + p * ES_PANEL_ROWS,
                                      y[t] + p * ES_PANEL_ROWS);
}

/* The generic matmat is the generic matvec vector by vector. */
const es_batch_kernels es_batch_kernels_generic = {
    .matmat = generic_product,
    .matvec = generic_product,
};

const es_batch_kernels *es_batch_kernels_for(const es_kernels *k) {
#ifdef ES_HAVE_X86_KERNELS
    if (k == &es_kernels_avx512) return &es_batch_kernels_avx512;
    if (k == &es_kernels_avx2) return &es_batch_kernels_avx2;
#endif
    return k == &es_kernels_generic ? &es_batch_kernels_generic : NULL;
}
