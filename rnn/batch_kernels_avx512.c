/*
 * AVX-512F batched kernels: tiles of up to 4 panels (one zmm each) by up to
 * 4 streams, 16 accumulators, like the single-stream matmat. The AVX-512
 * matvec sums each output in one chain too, except for panels left over
 * after its groups of four ("lone" panels), which it sums in two chains,
 * even and odd columns, added at the end; the batched matvec does the same
 * on those panels, so that it stays bit-identical.
 */
#include "batch_kernels.h"

#ifdef ES_HAVE_X86_KERNELS
#include <immintrin.h>

#define ES_AVX512 __attribute__((target("avx512f")))
#define ES_TILE_PANELS 4
#define ES_TILE_STREAMS 4

/* One chain per output: `panels` panels from w (panel_stride apart), rows
 * from `row` on, for `streams` streams. */
ES_AVX512 static inline __attribute__((always_inline)) void
avx512_chain_tile(const float *w, size_t panel_stride, int panels, int col_begin, int col_end,
                  const float *const *v, const float *const *bias, float *const *y, size_t row,
                  int streams) {
    __m512 acc[ES_TILE_PANELS][ES_TILE_STREAMS];
#pragma GCC unroll 4
    for (int p = 0; p < panels; p++)
#pragma GCC unroll 4
        for (int t = 0; t < streams; t++)
            acc[p][t] = _mm512_loadu_ps(bias[t] + row + (size_t)p * ES_PANEL_ROWS);
    for (int c = col_begin; c < col_end; c++, w += ES_PANEL_ROWS) {
        __m512 wp[ES_TILE_PANELS];
#pragma GCC unroll 4
        for (int p = 0; p < panels; p++)
            wp[p] = _mm512_loadu_ps(w + (size_t)p * panel_stride);
#pragma GCC unroll 4
        for (int t = 0; t < streams; t++) {
            __m512 vc = _mm512_set1_ps(v[t][c]);
#pragma GCC unroll 4
            for (int p = 0; p < panels; p++)
                acc[p][t] = _mm512_fmadd_ps(wp[p], vc, acc[p][t]);
        }
    }
#pragma GCC unroll 4
    for (int p = 0; p < panels; p++)
#pragma GCC unroll 4
        for (int t = 0; t < streams; t++)
            _mm512_storeu_ps(y[t] + row + (size_t)p * ES_PANEL_ROWS, acc[p][t]);
}

/* A lone panel as the AVX-512 matvec sums it: even columns onto the bias,
 * odd ones apart, then both added. */
ES_AVX512 static inline __attribute__((always_inline)) void
avx512_lone_tile(const float *w, int col_begin, int col_end, const float *const *v,
                 const float *const *bias, float *const *y, size_t row, int streams) {
    __m512 even[ES_TILE_STREAMS], odd[ES_TILE_STREAMS];
#pragma GCC unroll 4
    for (int t = 0; t < streams; t++) {
        even[t] = _mm512_loadu_ps(bias[t] + row);
        odd[t] = _mm512_setzero_ps();
    }
    int c = col_begin;
    for (; c + 2 <= col_end; c += 2, w += 2 * ES_PANEL_ROWS) {
        __m512 w_even = _mm512_loadu_ps(w), w_odd = _mm512_loadu_ps(w + ES_PANEL_ROWS);
#pragma GCC unroll 4
        for (int t = 0; t < streams; t++) {
            even[t] = _mm512_fmadd_ps(w_even, _mm512_set1_ps(v[t][c]), even[t]);
            odd[t] = _mm512_fmadd_ps(w_odd, _mm512_set1_ps(v[t][c + 1]), odd[t]);
        }
    }
    if (c < col_end) {
        __m512 w_even = _mm512_loadu_ps(w);
#pragma GCC unroll 4
        for (int t = 0; t < streams; t++)
            even[t] = _mm512_fmadd_ps(w_even, _mm512_set1_ps(v[t][c]), even[t]);
    }
#pragma GCC unroll 4
    for (int t = 0; t < streams; t++)
        _mm512_storeu_ps(y[t] + row, _mm512_add_ps(even[t], odd[t]));
}

typedef void (*avx512_tile_fn)(const float *w, size_t panel_stride, int col_begin, int col_end,
                               const float *const *v, const float *const *bias, float *const *y,
                               size_t row);

/* Every tile shape a compile-time constant, so the accumulators stay in
 * registers: chain tiles [panels - 1][streams - 1], lone tiles [streams - 1]. */
#define ES_AVX512_CHAIN_TILE(np, ns)                                                               \
    ES_AVX512 static void avx512_chain_##np##x##ns(                                                \
        const float *w, size_t panel_stride, int col_begin, int col_end, const float *const *v,    \
        const float *const *bias, float *const *y, size_t row) {                                   \
        avx512_chain_tile(w, panel_stride, np, col_begin, col_end, v, bias, y, row, ns);           \
    }
#define ES_AVX512_CHAIN_ROW(np)                                                                    \
    ES_AVX512_CHAIN_TILE(np, 1)                                                                    \
    ES_AVX512_CHAIN_TILE(np, 2) ES_AVX512_CHAIN_TILE(np, 3) ES_AVX512_CHAIN_TILE(np, 4)
ES_AVX512_CHAIN_ROW(1)
ES_AVX512_CHAIN_ROW(2)
ES_AVX512_CHAIN_ROW(3)
ES_AVX512_CHAIN_ROW(4)

#define ES_AVX512_LONE_TILE(ns)                                                                    \
    ES_AVX512 static void avx512_lone_##ns(                                                        \
        const float *w, size_t panel_stride, int col_begin, int col_end, const float *const *v,    \
        const float *const *bias, float *const *y, size_t row) {                                   \
        (void)panel_stride;                                                                        \
        avx512_lone_tile(w, col_begin, col_end, v, bias, y, row, ns);                              \
    }
ES_AVX512_LONE_TILE(1)
ES_AVX512_LONE_TILE(2)
ES_AVX512_LONE_TILE(3)
ES_AVX512_LONE_TILE(4)

static const avx512_tile_fn chain_tiles[ES_TILE_PANELS][ES_TILE_STREAMS] = {
    {avx512_chain_1x1, avx512_chain_1x2, avx512_chain_1x3, avx512_chain_1x4},
    {avx512_chain_2x1, avx512_chain_2x2, avx512_chain_2x3, avx512_chain_2x4},
    {avx512_chain_3x1, avx512_chain_3x2, avx512_chain_3x3, avx512_chain_3x4},
    {avx512_chain_4x1, avx512_chain_4x2, avx512_chain_4x3, avx512_chain_4x4},
};
static const avx512_tile_fn lone_tiles[ES_TILE_STREAMS] = {avx512_lone_1, avx512_lone_2,
                                                           avx512_lone_3, avx512_lone_4};

/* Panels [p, p + np) through `tiles` (a row of tiles by stream count), every
 * stream of the block. */
static void avx512_panels(const avx512_tile_fn *tiles, const float *panels, size_t panel_stride,
                          int p, int col_begin, int col_end, const float *const *v,
                          const float *const *bias, float *const *y, int count) {
    const float *w = panels + (size_t)p * panel_stride + (size_t)col_begin * ES_PANEL_ROWS;
    size_t row = (size_t)p * ES_PANEL_ROWS;
    for (int t = 0; t < count; t += ES_TILE_STREAMS) {
        int ns = count - t < ES_TILE_STREAMS ? count - t : ES_TILE_STREAMS;
        tiles[ns - 1](w, panel_stride, col_begin, col_end, v + t, bias + t, y + t, row);
    }
}

static void avx512_batch_matmat(const float *panels, size_t panel_stride, int panel_count,
                                int col_begin, int col_end, const float *const *v,
                                const float *const *bias, float *const *y, int count) {
    for (int p = 0; p < panel_count; p += ES_TILE_PANELS) {
        int np = panel_count - p < ES_TILE_PANELS ? panel_count - p : ES_TILE_PANELS;
        avx512_panels(chain_tiles[np - 1], panels, panel_stride, p, col_begin, col_end, v, bias, y,
                      count);
    }
}

/* Groups of four panels in one chain, then the lone panels in two. */
static void avx512_batch_matvec(const float *panels, size_t panel_stride, int panel_count,
                                int col_begin, int col_end, const float *const *v,
                                const float *const *bias, float *const *y, int count) {
    int p = 0;
    for (; p + ES_TILE_PANELS <= panel_count; p += ES_TILE_PANELS)
        avx512_panels(chain_tiles[ES_TILE_PANELS - 1], panels, panel_stride, p, col_begin, col_end,
                      v, bias, y, count);
    for (; p < panel_count; p++)
        avx512_panels(lone_tiles, panels, panel_stride, p, col_begin, col_end, v, bias, y, count);
}

const es_batch_kernels es_batch_kernels_avx512 = {
    .matmat = avx512_batch_matmat,
    .matvec = avx512_batch_matvec,
};

#endif
