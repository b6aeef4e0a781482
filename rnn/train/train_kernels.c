/*
 * Matrix products and elementwise functions of the trainer.
 *
 * One product shape serves every training product: C += A · B where B is
 * read row by row (vectorised along N) and A element by element through two
 * strides, so the same code computes X·Wᵀ (with Wᵀ prepared once per step),
 * dY·W, and the weight gradients dYᵀ·X (A read transposed) without copies.
 * On x86 the product is written once (matmul_x86.inc) and compiled
 * for AVX2 and for AVX-512: the same 6-row blocks of C, 16 or 32 columns
 * wide; on a CPU with full-width AVX-512 units the wider does twice the
 * work per cycle. Both give the same bits: a model trains the same on
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
/* The row loops of the blocks are unrolled so that the accumulators live in
 * registers. */
#define ES_BLOCK_ROWS 6

/* Cache blocking: a KC-deep slice of B (KC x N) and an MC x KC panel of A
 * stay in L2 while every block of C that they feed is computed, so long
 * products (weight gradients sum over every frame of the batch) do not
 * stream A and B from memory once per block of C. */
#define ES_MATMUL_KC 256
#define ES_MATMUL_MC 96

/* One strip of columns (at n, under `mask`), for rows [m_begin, m_end) of C,
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

/* AVX2 + FMA: blocks of 6 x 16. */
#define ES_TARGET __attribute__((target("avx2,fma")))
#define ES_SIMD(name) name##_avx2
#define ES_VEC __m256
#define ES_MASK __m256i
#define ES_LANES 8
#define ES_ZERO() _mm256_setzero_ps()
#define ES_LOAD(p) _mm256_loadu_ps(p)
#define ES_STORE(p, v) _mm256_storeu_ps(p, v)
#define ES_BROADCAST(p) _mm256_broadcast_ss(p)
#define ES_FMA(a, b, acc) _mm256_fmadd_ps(a, b, acc)
#define ES_ADD(a, b) _mm256_add_ps(a, b)
#define ES_MASK_LOAD(p, m) _mm256_maskload_ps(p, m)
#define ES_MASK_STORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define ES_LANES_UPTO(w)                                                                           \
    _mm256_cmpgt_epi32(_mm256_set1_epi32(w), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#include "matmul_x86.inc"

/* AVX-512F: blocks of 6 x 32. */
#define ES_TARGET __attribute__((target("avx512f")))
#define ES_SIMD(name) name##_avx512
#define ES_VEC __m512
#define ES_MASK __mmask16
#define ES_LANES 16
#define ES_ZERO() _mm512_setzero_ps()
#define ES_LOAD(p) _mm512_loadu_ps(p)
#define ES_STORE(p, v) _mm512_storeu_ps(p, v)
#define ES_BROADCAST(p) _mm512_set1_ps(*(p))
#define ES_FMA(a, b, acc) _mm512_fmadd_ps(a, b, acc)
#define ES_ADD(a, b) _mm512_add_ps(a, b)
#define ES_MASK_LOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define ES_MASK_STORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define ES_LANES_UPTO(w) ((__mmask16)((1u << (w)) - 1u))
#include "matmul_x86.inc"
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
