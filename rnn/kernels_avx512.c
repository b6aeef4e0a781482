/*
 * AVX-512F kernels: one panel of 16 rows is one zmm register.
 * Compiled for any x86-64 target via the target attribute and only called
 * after es_kernels_for() saw the CPU support it.
 */
#include "kernels.h"

#ifdef ES_HAVE_X86_KERNELS
#include <immintrin.h>

#define ES_AVX512 __attribute__((target("avx512f")))

/* Four panels at a time: four independent FMA chains hide the FMA latency,
 * and each broadcast of v[c] feeds four rows blocks. */
ES_AVX512 static void avx512_matvec(const float *panels, size_t panel_stride, int panel_count,
                                    int col_begin, int col_end, const float *v, const float *bias,
                                    float *y) {
    int p = 0;
    for (; p + 4 <= panel_count; p += 4) {
        const float *w = panels + (size_t)p * panel_stride + (size_t)col_begin * ES_PANEL_ROWS;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        if (bias) {
            acc0 = _mm512_loadu_ps(bias + (p + 0) * ES_PANEL_ROWS);
            acc1 = _mm512_loadu_ps(bias + (p + 1) * ES_PANEL_ROWS);
            acc2 = _mm512_loadu_ps(bias + (p + 2) * ES_PANEL_ROWS);
            acc3 = _mm512_loadu_ps(bias + (p + 3) * ES_PANEL_ROWS);
        }
        for (int c = col_begin; c < col_end; c++, w += ES_PANEL_ROWS) {
            __m512 vc = _mm512_set1_ps(v[c]);
            acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(w), vc, acc0);
            acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + panel_stride), vc, acc1);
            acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 2 * panel_stride), vc, acc2);
            acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + 3 * panel_stride), vc, acc3);
        }
        _mm512_storeu_ps(y + (p + 0) * ES_PANEL_ROWS, acc0);
        _mm512_storeu_ps(y + (p + 1) * ES_PANEL_ROWS, acc1);
        _mm512_storeu_ps(y + (p + 2) * ES_PANEL_ROWS, acc2);
        _mm512_storeu_ps(y + (p + 3) * ES_PANEL_ROWS, acc3);
    }
    for (; p < panel_count; p++) {
        /* A lone panel: even and odd columns in two chains. */
        const float *w = panels + (size_t)p * panel_stride + (size_t)col_begin * ES_PANEL_ROWS;
        __m512 even = bias ? _mm512_loadu_ps(bias + p * ES_PANEL_ROWS) : _mm512_setzero_ps();
        __m512 odd = _mm512_setzero_ps();
        int c = col_begin;
        for (; c + 2 <= col_end; c += 2, w += 2 * ES_PANEL_ROWS) {
            even = _mm512_fmadd_ps(_mm512_loadu_ps(w), _mm512_set1_ps(v[c]), even);
            odd =
                _mm512_fmadd_ps(_mm512_loadu_ps(w + ES_PANEL_ROWS), _mm512_set1_ps(v[c + 1]), odd);
        }
        if (c < col_end) even = _mm512_fmadd_ps(_mm512_loadu_ps(w), _mm512_set1_ps(v[c]), even);
        _mm512_storeu_ps(y + p * ES_PANEL_ROWS, _mm512_add_ps(even, odd));
    }
}

/* matmat in tiles of up to 4 panels x 4 vectors: 16 accumulators, and each
 * column costs 4 weight loads and 4 broadcasts for 16 FMAs (matvec: 4 + 1
 * for 4). The tile's shape is a compile-time constant in every copy below,
 * so the accumulators live in registers. */
#define ES_TILE_PANELS 4
#define ES_TILE_VECTORS 4

ES_AVX512 static inline __attribute__((always_inline)) void
avx512_tile(const float *w, size_t panel_stride, int panels, int col_begin, int col_end,
            const float *v, size_t v_stride, int vectors, const float *bias, float *y,
            size_t y_stride) {
    __m512 acc[ES_TILE_PANELS][ES_TILE_VECTORS];
#pragma GCC unroll 4
    for (int p = 0; p < panels; p++)
#pragma GCC unroll 4
        for (int t = 0; t < vectors; t++)
            acc[p][t] = bias ? _mm512_loadu_ps(bias + p * ES_PANEL_ROWS) : _mm512_setzero_ps();
    for (int c = col_begin; c < col_end; c++, w += ES_PANEL_ROWS) {
        __m512 wp[ES_TILE_PANELS];
#pragma GCC unroll 4
        for (int p = 0; p < panels; p++)
            wp[p] = _mm512_loadu_ps(w + (size_t)p * panel_stride);
#pragma GCC unroll 4
        for (int t = 0; t < vectors; t++) {
            __m512 vc = _mm512_set1_ps(v[(size_t)t * v_stride + (size_t)c]);
#pragma GCC unroll 4
            for (int p = 0; p < panels; p++)
                acc[p][t] = _mm512_fmadd_ps(wp[p], vc, acc[p][t]);
        }
    }
#pragma GCC unroll 4
    for (int p = 0; p < panels; p++)
#pragma GCC unroll 4
        for (int t = 0; t < vectors; t++)
            _mm512_storeu_ps(y + (size_t)t * y_stride + (size_t)p * ES_PANEL_ROWS, acc[p][t]);
}

typedef void (*avx512_tile_fn)(const float *w, size_t panel_stride, int col_begin, int col_end,
                               const float *v, size_t v_stride, const float *bias, float *y,
                               size_t y_stride);

#define ES_AVX512_TILE(np, nv)                                                                     \
    ES_AVX512 static void avx512_tile_##np##x##nv(                                                 \
        const float *w, size_t panel_stride, int col_begin, int col_end, const float *v,           \
        size_t v_stride, const float *bias, float *y, size_t y_stride) {                           \
        avx512_tile(w, panel_stride, np, col_begin, col_end, v, v_stride, nv, bias, y, y_stride);  \
    }
#define ES_AVX512_TILE_ROW(np)                                                                     \
    ES_AVX512_TILE(np, 1) ES_AVX512_TILE(np, 2) ES_AVX512_TILE(np, 3) ES_AVX512_TILE(np, 4)
ES_AVX512_TILE_ROW(1)
ES_AVX512_TILE_ROW(2)
ES_AVX512_TILE_ROW(3)
ES_AVX512_TILE_ROW(4)

/* [panels - 1][vectors - 1] */
static const avx512_tile_fn avx512_tiles[ES_TILE_PANELS][ES_TILE_VECTORS] = {
    {avx512_tile_1x1, avx512_tile_1x2, avx512_tile_1x3, avx512_tile_1x4},
    {avx512_tile_2x1, avx512_tile_2x2, avx512_tile_2x3, avx512_tile_2x4},
    {avx512_tile_3x1, avx512_tile_3x2, avx512_tile_3x3, avx512_tile_3x4},
    {avx512_tile_4x1, avx512_tile_4x2, avx512_tile_4x3, avx512_tile_4x4},
};

ES_AVX512 static void avx512_matmat(const float *panels, size_t panel_stride, int panel_count,
                                    int col_begin, int col_end, const float *v, size_t v_stride,
                                    int count, const float *bias, float *y, size_t y_stride) {
    for (int p = 0; p < panel_count; p += ES_TILE_PANELS) {
        int np = panel_count - p < ES_TILE_PANELS ? panel_count - p : ES_TILE_PANELS;
        const float *w = panels + (size_t)p * panel_stride + (size_t)col_begin * ES_PANEL_ROWS;
        const float *b = bias ? bias + p * ES_PANEL_ROWS : NULL;
        for (int t = 0; t < count; t += ES_TILE_VECTORS) {
            int nv = count - t < ES_TILE_VECTORS ? count - t : ES_TILE_VECTORS;
            avx512_tiles[np - 1][nv - 1](
                w, panel_stride, col_begin, col_end, v + (size_t)t * v_stride, v_stride, b,
                y + (size_t)t * y_stride + (size_t)p * ES_PANEL_ROWS, y_stride);
        }
    }
}

ES_AVX512 static __m512 avx512_exp_vec(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(ES_EXP_MIN_INPUT)),
                      _mm512_set1_ps(ES_EXP_MAX_INPUT));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(ES_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ES_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(ES_LN2_LO), r);
    __m512 poly = _mm512_set1_ps(ES_EXP_P0);
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(ES_EXP_P1));
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(ES_EXP_P2));
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(ES_EXP_P3));
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(ES_EXP_P4));
    poly = _mm512_fmadd_ps(poly, r, _mm512_set1_ps(ES_EXP_P5));
    __m512 exp_r =
        _mm512_fmadd_ps(poly, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(exp_r, n);
}

ES_AVX512 static __m512 avx512_sigmoid_vec(__m512 x) {
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = avx512_exp_vec(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

ES_AVX512 static __m512 avx512_tanh_vec(__m512 x) {
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 ax = _mm512_abs_ps(x);
    __m512 e = avx512_exp_vec(_mm512_add_ps(ax, ax));
    __m512 far = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
    /* Put x's sign back on |tanh|. */
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u));
    far = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(far), sign));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 series = _mm512_fmadd_ps(_mm512_set1_ps(ES_TANH_T7), x2, _mm512_set1_ps(ES_TANH_T5));
    series = _mm512_fmadd_ps(series, x2, _mm512_set1_ps(ES_TANH_T3));
    series = _mm512_fmadd_ps(_mm512_mul_ps(series, x2), x, x);
    __mmask16 near = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(ES_TANH_SERIES_BELOW), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(near, far, series);
}

/* Applies `f` to x[0..n), the tail through a lane mask. */
#define ES_AVX512_ELEMENTWISE(name, f)                                                             \
    ES_AVX512 static void name(float *x, int n) {                                                  \
        int i = 0;                                                                                 \
        for (; i + 16 <= n; i += 16)                                                               \
            _mm512_storeu_ps(x + i, f(_mm512_loadu_ps(x + i)));                                    \
        if (i < n) {                                                                               \
            __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);                                    \
            _mm512_mask_storeu_ps(x + i, tail, f(_mm512_maskz_loadu_ps(tail, x + i)));             \
        }                                                                                          \
    }

ES_AVX512_ELEMENTWISE(avx512_sigmoid, avx512_sigmoid_vec)
ES_AVX512_ELEMENTWISE(avx512_tanh, avx512_tanh_vec)
ES_AVX512_ELEMENTWISE(avx512_exp, avx512_exp_vec)

const es_kernels es_kernels_avx512 = {
    .name = "avx512",
    .matvec = avx512_matvec,
    .matmat = avx512_matmat,
    .sigmoid = avx512_sigmoid,
    .tanh = avx512_tanh,
    .exp = avx512_exp,
};

#endif
