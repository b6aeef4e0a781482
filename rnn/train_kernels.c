/*
 * Matrix products and elementwise functions of the trainer.
 *
 * One product shape serves every training product: C += A · B where B is
 * read row by row (vectorised along N) and A element by element through two
 * strides, so the same code computes X·Wᵀ (with Wᵀ prepared once per step),
 * dY·W, and the weight gradients dYᵀ·X (A read transposed) without copies.
 * The AVX2 path holds a 6 x 16 block of C in twelve registers over a slice
 * of K: each k costs two loads of B, six broadcasts of A and twelve FMAs,
 * enough independent FMAs to cover their latency on two FMA pipes. The
 * AVX-512 path is the same block twice as wide (6 x 32); on a CPU with
 * full-width AVX-512 units it does twice the work per cycle. Both add up
 * each element of C in the same order (one FMA chain per K slice, then
 * added to C), so they give the same bits: a model trains the same on
 * either.
 */
#include <string.h>

#include "kernels.h"
#include "train_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ES_TRAIN_X86 1
#endif

static void matmul_generic(int M, int N, int K, const float *a, ptrdiff_t a_row, ptrdiff_t a_col,
                           const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc) {
    for (int m = 0; m < M; m++) {
        float *crow = c + m * ldc;
        for (int k = 0; k < K; k++) {
            float av = a[m * a_row + k * a_col];
            const float *brow = b + k * ldb;
            for (int n = 0; n < N; n++)
                crow[n] += av * brow[n];
        }
    }
}

#ifdef ES_TRAIN_X86
/* The row loops below are unrolled so that the accumulators live in registers. */
#define ES_BLOCK_ROWS 6

/* C[rows][16] += A(rows, 0..K) · B[0..K][16]; rows is a constant after inlining.
 * (mask: for the same signature as block_masked_avx2; all 16 columns are used.) */
__attribute__((target("avx2,fma"), always_inline)) static inline void
block16_avx2(int rows, int K, const float *a, ptrdiff_t a_row, ptrdiff_t a_col, const float *b,
             ptrdiff_t ldb, float *c, ptrdiff_t ldc, __m256i mask) {
    (void)mask;
    __m256 acc[ES_BLOCK_ROWS][2];
#pragma GCC unroll 6
    for (int i = 0; i < ES_BLOCK_ROWS; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(b + k * ldb);
        __m256 b1 = _mm256_loadu_ps(b + k * ldb + 8);
        const float *ak = a + k * a_col;
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++) {
            __m256 av = _mm256_broadcast_ss(ak + i * a_row);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < rows; i++) {
        float *ci = c + i * ldc;
        _mm256_storeu_ps(ci, _mm256_add_ps(_mm256_loadu_ps(ci), acc[i][0]));
        _mm256_storeu_ps(ci + 8, _mm256_add_ps(_mm256_loadu_ps(ci + 8), acc[i][1]));
    }
}

/* C[rows][w] += A · B[0..K][w] for the w = popcount(mask) <= 8 leftmost columns;
 * masked-off lanes of B and C are neither read nor written. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
block_masked_avx2(int rows, int K, const float *a, ptrdiff_t a_row, ptrdiff_t a_col, const float *b,
                  ptrdiff_t ldb, float *c, ptrdiff_t ldc, __m256i mask) {
    __m256 acc[ES_BLOCK_ROWS];
#pragma GCC unroll 6
    for (int i = 0; i < ES_BLOCK_ROWS; i++)
        acc[i] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m256 b0 = _mm256_maskload_ps(b + k * ldb, mask);
        const float *ak = a + k * a_col;
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++)
            acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(ak + i * a_row), b0, acc[i]);
    }
#pragma GCC unroll 6
    for (int i = 0; i < rows; i++) {
        __m256 sum = _mm256_add_ps(_mm256_maskload_ps(c + i * ldc, mask), acc[i]);
        _mm256_maskstore_ps(c + i * ldc, mask, sum);
    }
}

/* The columns of one 16- or 8-wide strip, for rows [m_begin, m_end) of C,
 * ES_BLOCK_ROWS at a time; the leftover rows get a block of their own size. */
#define ES_BLOCK_AT(block, rows, m, k_count)                                                       \
    block(rows, k_count, ak + (m)*a_row, a_row, a_col, bk, ldb, c + (m)*ldc + n, ldc, mask)
#define ES_FOR_ROW_BLOCKS(block, m_begin, m_end, k_count)                                          \
    do {                                                                                           \
        int m = (m_begin);                                                                         \
        const float *ak = a + k0 * a_col, *bk = b + k0 * ldb + n;                                  \
        for (; m + ES_BLOCK_ROWS <= (m_end); m += ES_BLOCK_ROWS)                                   \
            ES_BLOCK_AT(block, ES_BLOCK_ROWS, m, k_count);                                         \
        switch ((m_end)-m) {                                                                       \
        case 5:                                                                                    \
            ES_BLOCK_AT(block, 5, m, k_count);                                                     \
            break;                                                                                 \
        case 4:                                                                                    \
            ES_BLOCK_AT(block, 4, m, k_count);                                                     \
            break;                                                                                 \
        case 3:                                                                                    \
            ES_BLOCK_AT(block, 3, m, k_count);                                                     \
            break;                                                                                 \
        case 2:                                                                                    \
            ES_BLOCK_AT(block, 2, m, k_count);                                                     \
            break;                                                                                 \
        case 1:                                                                                    \
            ES_BLOCK_AT(block, 1, m, k_count);                                                     \
            break;                                                                                 \
        default:                                                                                   \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

/* Cache blocking: a KC-deep slice of B (KC x N) and an MC x KC panel of A
 * stay in L2 while every 4 x 16 block of C that they feed is computed, so
 * long products (weight gradients sum over every frame of the batch) do not
 * stream A and B from memory once per block of C. */
#define ES_MATMUL_KC 256
#define ES_MATMUL_MC 96

/* The columns of C in strips `wide` wide, then the rest `narrow` at a time
 * under a mask (`lanes_upto(width)`), for each KC x MC panel. Expects M, N,
 * K, a, a_row, a_col, b, ldb, c, ldc and a variable `mask` in scope. */
#define ES_MATMUL_PANELS(wide_block, wide, narrow_block, narrow, lanes_upto)                       \
    for (int k0 = 0; k0 < K; k0 += ES_MATMUL_KC) {                                                 \
        int kc = K - k0 < ES_MATMUL_KC ? K - k0 : ES_MATMUL_KC;                                    \
        for (int m0 = 0; m0 < M; m0 += ES_MATMUL_MC) {                                             \
            int m1 = M - m0 < ES_MATMUL_MC ? M : m0 + ES_MATMUL_MC;                                \
            int n = 0;                                                                             \
            mask = lanes_upto(narrow);                                                             \
            for (; n + (wide) <= N; n += (wide))                                                   \
                ES_FOR_ROW_BLOCKS(wide_block, m0, m1, kc);                                         \
            for (; n < N; n += (narrow)) {                                                         \
                mask = lanes_upto(N - n < (narrow) ? N - n : (narrow));                            \
                ES_FOR_ROW_BLOCKS(narrow_block, m0, m1, kc);                                       \
            }                                                                                      \
        }                                                                                          \
    }

/* The first `width` of eight lanes set. */
__attribute__((target("avx2"), always_inline)) static inline __m256i avx2_lanes_upto(int width) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(width), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2,fma"))) static void matmul_avx2(int M, int N, int K, const float *a,
                                                            ptrdiff_t a_row, ptrdiff_t a_col,
                                                            const float *b, ptrdiff_t ldb, float *c,
                                                            ptrdiff_t ldc) {
    __m256i mask;
    ES_MATMUL_PANELS(block16_avx2, 16, block_masked_avx2, 8, avx2_lanes_upto);
}

/* C[rows][32] += A(rows, 0..K) · B[0..K][32] (mask unused, as in block16_avx2). */
__attribute__((target("avx512f"), always_inline)) static inline void
block32_avx512(int rows, int K, const float *a, ptrdiff_t a_row, ptrdiff_t a_col, const float *b,
               ptrdiff_t ldb, float *c, ptrdiff_t ldc, __mmask16 mask) {
    (void)mask;
    __m512 acc[ES_BLOCK_ROWS][2];
#pragma GCC unroll 6
    for (int i = 0; i < ES_BLOCK_ROWS; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 b0 = _mm512_loadu_ps(b + k * ldb);
        __m512 b1 = _mm512_loadu_ps(b + k * ldb + 16);
        const float *ak = a + k * a_col;
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++) {
            __m512 av = _mm512_set1_ps(ak[i * a_row]);
            acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < rows; i++) {
        float *ci = c + i * ldc;
        _mm512_storeu_ps(ci, _mm512_add_ps(_mm512_loadu_ps(ci), acc[i][0]));
        _mm512_storeu_ps(ci + 16, _mm512_add_ps(_mm512_loadu_ps(ci + 16), acc[i][1]));
    }
}

/* C[rows][w] += A · B[0..K][w] for the w <= 16 columns set in mask. */
__attribute__((target("avx512f"), always_inline)) static inline void
block_masked_avx512(int rows, int K, const float *a, ptrdiff_t a_row, ptrdiff_t a_col,
                    const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, __mmask16 mask) {
    __m512 acc[ES_BLOCK_ROWS];
#pragma GCC unroll 6
    for (int i = 0; i < ES_BLOCK_ROWS; i++)
        acc[i] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 b0 = _mm512_maskz_loadu_ps(mask, b + k * ldb);
        const float *ak = a + k * a_col;
#pragma GCC unroll 6
        for (int i = 0; i < rows; i++)
            acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(ak[i * a_row]), b0, acc[i]);
    }
#pragma GCC unroll 6
    for (int i = 0; i < rows; i++) {
        __m512 sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, c + i * ldc), acc[i]);
        _mm512_mask_storeu_ps(c + i * ldc, mask, sum);
    }
}

static inline __mmask16 avx512_lanes_upto(int width) {
    return (__mmask16)((1u << width) - 1u);
}

__attribute__((target("avx512f"))) static void matmul_avx512(int M, int N, int K, const float *a,
                                                             ptrdiff_t a_row, ptrdiff_t a_col,
                                                             const float *b, ptrdiff_t ldb,
                                                             float *c, ptrdiff_t ldc) {
    __mmask16 mask;
    ES_MATMUL_PANELS(block32_avx512, 32, block_masked_avx512, 16, avx512_lanes_upto);
}
#endif

es_train_matmul_fn es_train_matmul_for(es_isa isa) {
    /* The inference kernels' choice, so both follow the same CPU checks. */
    const es_kernels *kernels = es_kernels_for(isa);
    if (!kernels) return NULL;
#ifdef ES_TRAIN_X86
    if (kernels == es_kernels_for(ES_ISA_AVX512)) return matmul_avx512;
    if (kernels == es_kernels_for(ES_ISA_AVX2)) return matmul_avx2;
#endif
    return matmul_generic;
}

void es_train_matmul(int M, int N, int K, const float *a, ptrdiff_t a_row, ptrdiff_t a_col,
                     const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    es_train_matmul_for(ES_ISA_AUTO)(M, N, K, a, a_row, a_col, b, ldb, c, ldc);
}

void es_train_transpose(int rows, int cols, const float *src, float *dst) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

void es_train_add_column_sums(int M, int N, const float *restrict rows, ptrdiff_t ld,
                              float *restrict sum) {
    /* Fixed 8-wide strips: -O2's cheap vectoriser takes a loop it needs no
     * scalar remainder for. */
    int n = 0;
    for (; n + 8 <= N; n += 8) {
        float strip[8] = {0};
        for (int m = 0; m < M; m++)
            for (int j = 0; j < 8; j++)
                strip[j] += rows[m * ld + n + j];
        for (int j = 0; j < 8; j++)
            sum[n + j] += strip[j];
    }
    for (; n < N; n++)
        for (int m = 0; m < M; m++)
            sum[n] += rows[m * ld + n];
}

/* The inference kernels' own functions: training then computes exactly
 * the nonlinearities the trained model will run with. */
void es_train_sigmoid(float *x, int n) {
    es_kernels_for(ES_ISA_AUTO)->sigmoid(x, n);
}

void es_train_tanh(float *x, int n) {
    es_kernels_for(ES_ISA_AUTO)->tanh(x, n);
}
