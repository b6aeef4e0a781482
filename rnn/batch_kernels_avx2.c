/*
 * AVX2 + FMA batched kernels. The AVX2 matvec and matmat both sum each
 * output in one chain, bias first, then the columns in order, so one
 * product serves for both: tiles of one panel (two ymm) by up to four
 * streams, 8 accumulators, 2 weight loads and 4 broadcasts for 8 FMAs per
 * column. Panels outside, streams inside: a panel stays in L1 while the
 * block's streams go through it.
 */
#include "batch_kernels.h"

#ifdef ES_HAVE_X86_KERNELS
#include <immintrin.h>

#define ES_AVX2 __attribute__((target("avx2,fma")))
#define ES_TILE_STREAMS 4

ES_AVX2 static inline __attribute__((always_inline)) void
avx2_batch_tile(const float *w, int col_begin, int col_end, const float *const *v,
                const float *const *bias, float *const *y, size_t row, int streams) {
    __m256 lo[ES_TILE_STREAMS], hi[ES_TILE_STREAMS];
#pragma GCC unroll 4
    for (int t = 0; t < streams; t++) {
        lo[t] = _mm256_loadu_ps(bias[t] + row);
        hi[t] = _mm256_loadu_ps(bias[t] + row + 8);
    }
    for (int c = col_begin; c < col_end; c++, w += ES_PANEL_ROWS) {
        __m256 w_lo = _mm256_loadu_ps(w), w_hi = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 4
        for (int t = 0; t < streams; t++) {
            __m256 vc = _mm256_broadcast_ss(v[t] + c);
            lo[t] = _mm256_fmadd_ps(w_lo, vc, lo[t]);
            hi[t] = _mm256_fmadd_ps(w_hi, vc, hi[t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < streams; t++) {
        _mm256_storeu_ps(y[t] + row, lo[t]);
        _mm256_storeu_ps(y[t] + row + 8, hi[t]);
    }
}

ES_AVX2 static void avx2_batch_product(const float *panels, size_t panel_stride, int panel_count,
                                       int col_begin, int col_end, const float *const *v,
                                       const float *const *bias, float *const *y, int count) {
    for (int p = 0; p < panel_count; p++) {
        const float *w = panels + (size_t)p * panel_stride + (size_t)col_begin * ES_PANEL_ROWS;
        size_t row = (size_t)p * ES_PANEL_ROWS;
        int t = 0;
        for (; t + ES_TILE_STREAMS <= count; t += ES_TILE_STREAMS)
            avx2_batch_tile(w, col_begin, col_end, v + t, bias + t, y + t, row, ES_TILE_STREAMS);
        for (; t < count; t++) /* the tail one stream at a time: one copy of the tile */
            avx2_batch_tile(w, col_begin, col_end, v + t, bias + t, y + t, row, 1);
    }
}

const es_batch_kernels es_batch_kernels_avx2 = {
    .matmat = avx2_batch_product,
    .matvec = avx2_batch_product,
};

#endif
