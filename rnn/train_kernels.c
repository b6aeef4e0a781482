/*
 * Matrix products and elementwise functions of the trainer.
 *
 * One product shape serves every training product: C += A · B where B is
 * read row by row (vectorised along N) and A element by element through two
 * strides, so the same code computes X·Wᵀ (with Wᵀ prepared once per step),
 * dY·W, and the weight gradients dYᵀ·X (A read transposed) without copies.
 * The AVX2 path holds a 4 x 16 block of C in eight registers over the whole
 * K loop: each k costs two loads of B, four broadcasts of A and eight FMAs.
 */
#include <math.h>
#include <string.h>

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
/* C[rows][16] += A(rows, 0..K) · B[0..K][16]; rows is a constant after inlining. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
block16_avx2(int rows, int K, const float *a, ptrdiff_t a_row, ptrdiff_t a_col, const float *b,
             ptrdiff_t ldb, float *c, ptrdiff_t ldc) {
    __m256 acc[4][2];
    for (int i = 0; i < 4; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(b + k * ldb);
        __m256 b1 = _mm256_loadu_ps(b + k * ldb + 8);
        const float *ak = a + k * a_col;
        for (int i = 0; i < rows; i++) {
            __m256 av = _mm256_broadcast_ss(ak + i * a_row);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < rows; i++) {
        float *ci = c + i * ldc;
        _mm256_storeu_ps(ci, _mm256_add_ps(_mm256_loadu_ps(ci), acc[i][0]));
        _mm256_storeu_ps(ci + 8, _mm256_add_ps(_mm256_loadu_ps(ci + 8), acc[i][1]));
    }
}

__attribute__((target("avx2,fma"), always_inline)) static inline void
block8_avx2(int rows, int K, const float *a, ptrdiff_t a_row, ptrdiff_t a_col, const float *b,
            ptrdiff_t ldb, float *c, ptrdiff_t ldc) {
    __m256 acc[4];
    for (int i = 0; i < 4; i++)
        acc[i] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(b + k * ldb);
        const float *ak = a + k * a_col;
        for (int i = 0; i < rows; i++)
            acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(ak + i * a_row), b0, acc[i]);
    }
    for (int i = 0; i < rows; i++)
        _mm256_storeu_ps(c + i * ldc, _mm256_add_ps(_mm256_loadu_ps(c + i * ldc), acc[i]));
}

/* The columns of one 16- or 8-wide strip, for every row of C. */
#define ES_FOR_ROW_BLOCKS(block)                                                                   \
    do {                                                                                           \
        int m = 0;                                                                                 \
        for (; m + 4 <= M; m += 4)                                                                 \
            block(4, K, a + m * a_row, a_row, a_col, b + n, ldb, c + m * ldc + n, ldc);            \
        switch (M - m) {                                                                           \
        case 3:                                                                                    \
            block(3, K, a + m * a_row, a_row, a_col, b + n, ldb, c + m * ldc + n, ldc);            \
            break;                                                                                 \
        case 2:                                                                                    \
            block(2, K, a + m * a_row, a_row, a_col, b + n, ldb, c + m * ldc + n, ldc);            \
            break;                                                                                 \
        case 1:                                                                                    \
            block(1, K, a + m * a_row, a_row, a_col, b + n, ldb, c + m * ldc + n, ldc);            \
            break;                                                                                 \
        default:                                                                                   \
            break;                                                                                 \
        }                                                                                          \
    } while (0)

__attribute__((target("avx2,fma"))) static void matmul_avx2(int M, int N, int K, const float *a,
                                                            ptrdiff_t a_row, ptrdiff_t a_col,
                                                            const float *b, ptrdiff_t ldb, float *c,
                                                            ptrdiff_t ldc) {
    int n = 0;
    for (; n + 16 <= N; n += 16)
        ES_FOR_ROW_BLOCKS(block16_avx2);
    for (; n + 8 <= N; n += 8)
        ES_FOR_ROW_BLOCKS(block8_avx2);
    if (n < N) matmul_generic(M, N - n, K, a, a_row, a_col, b + n, ldb, c + n, ldc);
}
#endif

void es_train_matmul(int M, int N, int K, const float *a, ptrdiff_t a_row, ptrdiff_t a_col,
                     const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return;
#ifdef ES_TRAIN_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        matmul_avx2(M, N, K, a, a_row, a_col, b, ldb, c, ldc);
        return;
    }
#endif
    matmul_generic(M, N, K, a, a_row, a_col, b, ldb, c, ldc);
}

void es_train_transpose(int rows, int cols, const float *src, float *dst) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

void es_train_add_column_sums(int M, int N, const float *rows, ptrdiff_t ld, float *sum) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++)
            sum[n] += rows[m * ld + n];
}

void es_train_sigmoid(float *x, int n) {
    for (int i = 0; i < n; i++)
        x[i] = 1.0f / (1.0f + expf(-x[i]));
}

void es_train_tanh(float *x, int n) {
    for (int i = 0; i < n; i++)
        x[i] = tanhf(x[i]);
}
