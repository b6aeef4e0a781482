/*
 * The trainer's matrix products against OpenBLAS's cblas_sgemm, one thread
 * each, for the shapes one worker meets training the keyword model (2 GRU
 * layers of 128 over 40 inputs, 21 outputs, 16 sequences x 100 frames per
 * worker). Built only where OpenBLAS is installed; run by hand. It decided
 * that the trainer keeps its own kernels (see the commit that added it).
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "train_internal.h"

void openblas_set_num_threads(int threads);

typedef struct shape {
    const char *what;
    int M, N, K;
    int transpose_a; /* A stored K x M (weight gradients) */
} shape;

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float *random_floats(size_t n) {
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (float)((double)rand() / RAND_MAX - 0.5);
    return p;
}

int main(void) {
    static const shape shapes[] = {
        {"input projection, layer 1", 1600, 384, 40, 0},
        {"input projection, layer 2", 1600, 384, 128, 0},
        {"recurrent step, forward", 16, 384, 128, 0},
        {"recurrent step, backward", 16, 128, 384, 0},
        {"dU (sum over frames)", 384, 128, 1584, 1},
        {"dW layer 2", 384, 128, 1600, 1},
        {"dX layer 2", 1600, 128, 384, 0},
        {"head forward", 1600, 21, 128, 0},
    };
    openblas_set_num_threads(1);
    printf("%-28s %6s %6s %6s %10s %10s %12s\n", "product", "M", "N", "K", "own GF/s", "blas GF/s",
           "own speedup");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *sh = &shapes[s];
        float *a = random_floats((size_t)sh->M * sh->K), *b = random_floats((size_t)sh->K * sh->N);
        float *c = random_floats((size_t)sh->M * sh->N);
        if (!a || !b || !c) return 1;
        double flops = 2.0 * sh->M * sh->N * sh->K, seconds[2];
        int reps = (int)(2e9 / flops) + 1;
        for (int which = 0; which < 2; which++) {
            double best = 1e30;
            for (int round = 0; round < 5; round++) {
                double start = seconds_now();
                for (int r = 0; r < reps; r++) {
                    if (which == 0)
                        es_train_matmul(sh->M, sh->N, sh->K, a, sh->transpose_a ? 1 : sh->K,
                                        sh->transpose_a ? sh->M : 1, b, sh->N, c, sh->N);
                    else
                        cblas_sgemm(CblasRowMajor, sh->transpose_a ? CblasTrans : CblasNoTrans,
                                    CblasNoTrans, sh->M, sh->N, sh->K, 1.0f, a,
                                    sh->transpose_a ? sh->M : sh->K, b, sh->N, 1.0f, c, sh->N);
                }
                double took = (seconds_now() - start) / reps;
                best = took < best ? took : best;
            }
            seconds[which] = best;
        }
        printf("%-28s %6d %6d %6d %10.1f %10.1f %12.2f\n", sh->what, sh->M, sh->N, sh->K,
               flops / seconds[0] * 1e-9, flops / seconds[1] * 1e-9, seconds[1] / seconds[0]);
        free(a);
        free(b);
        free(c);
    }
    return 0;
}
