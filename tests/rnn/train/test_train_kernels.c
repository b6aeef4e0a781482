/*
 * The trainer's matrix product on every instruction set this CPU runs,
 * against a product summed in double: shapes that leave partial row blocks,
 * masked column strips and more than one K slice; A read straight and
 * transposed; and nothing written beyond the N columns of C. AVX2 and
 * AVX-512 must agree to the bit, so a model trains the same on either.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_train_fixtures.h"
#include "train_internal.h"

#define PAD 5 /* columns of C past N that no product may touch */
#define SENTINEL 12345.0f

typedef struct product {
    int M, N, K;
    int transposed; /* A stored K x M */
    float *a, *b, *c_start;
    double *expected;
} product;

static float *random_floats(test_rng *rng, size_t n) {
    float *p = malloc(sizeof(float) * n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = 0.5f * test_rng_uniform(rng); /* |p| < 0.5 */
    return p;
}

static product make_product(int M, int N, int K, int transposed, uint64_t seed) {
    test_rng rng = {seed};
    product p = {M, N, K, transposed, NULL, NULL, NULL, NULL};
    p.a = random_floats(&rng, (size_t)M * K);
    p.b = random_floats(&rng, (size_t)K * N);
    p.c_start = random_floats(&rng, (size_t)M * (N + PAD));
    p.expected = malloc(sizeof(double) * M * N);
    assert_non_null(p.expected);
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N + PAD; n++)
            if (n >= N) p.c_start[m * (N + PAD) + n] = SENTINEL;
        for (int n = 0; n < N; n++) {
            double sum = p.c_start[m * (N + PAD) + n];
            for (int k = 0; k < K; k++)
                sum += (double)p.a[transposed ? k * M + m : m * K + k] * p.b[k * N + n];
            p.expected[m * N + n] = sum;
        }
    }
    return p;
}

static void free_product(product *p) {
    free(p->a);
    free(p->b);
    free(p->c_start);
    free(p->expected);
}

static float *run_product(es_train_matmul_fn fn, const product *p) {
    size_t ldc = (size_t)p->N + PAD;
    float *c = malloc(sizeof(float) * p->M * ldc);
    assert_non_null(c);
    memcpy(c, p->c_start, sizeof(float) * p->M * ldc);
    fn(p->M, p->N, p->K, p->a, p->transposed ? 1 : p->K, p->transposed ? p->M : 1, p->b, p->N, c,
       (ptrdiff_t)ldc);
    return c;
}

static void assert_close_to_expected(const product *p, const float *c, const char *isa) {
    for (int m = 0; m < p->M; m++) {
        for (int n = 0; n < p->N; n++) {
            double want = p->expected[m * p->N + n];
            double got = c[m * (p->N + PAD) + n];
            /* float sums of K terms, each below 0.25 in size */
            if (fabs(got - want) > 1e-5 * (p->K + 1)) {
                print_error("%s: M=%d N=%d K=%d%s: C[%d][%d] = %g, want %g\n", isa, p->M, p->N,
                            p->K, p->transposed ? " (A transposed)" : "", m, n, got, want);
                fail();
            }
        }
        for (int n = p->N; n < p->N + PAD; n++)
            assert_true(c[m * (p->N + PAD) + n] == SENTINEL);
    }
}

static const int rows[] = {1, 5, 6, 7, 13, 97, 200};
static const int columns[] = {1, 7, 8, 9, 15, 16, 17, 21, 31, 32, 33, 40, 48, 389};
static const int depths[] = {1, 3, 128, 300};

static void for_each_shape(void (*check)(const product *)) {
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t j = 0; j < sizeof columns / sizeof columns[0]; j++)
            for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++)
                for (int transposed = 0; transposed < 2; transposed++) {
                    product p = make_product(rows[i], columns[j], depths[k], transposed, seed++);
                    check(&p);
                    free_product(&p);
                }
}

static void check_every_isa(const product *p) {
    static const struct {
        es_isa isa;
        const char *name;
    } isas[] = {{ES_ISA_GENERIC, "generic"}, {ES_ISA_AVX2, "AVX2"}, {ES_ISA_AVX512, "AVX-512"}};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        es_train_matmul_fn fn = es_train_matmul_for(isas[i].isa);
        if (!fn) continue; /* not on this CPU */
        float *c = run_product(fn, p);
        assert_close_to_expected(p, c, isas[i].name);
        free(c);
    }
}

static void test_every_isa_computes_the_product(void **state) {
    (void)state;
    assert_non_null(es_train_matmul_for(ES_ISA_GENERIC));
    assert_non_null(es_train_matmul_for(ES_ISA_AUTO));
    for_each_shape(check_every_isa);
}

static void check_same_bits(const product *p) {
    float *wide = run_product(es_train_matmul_for(ES_ISA_AVX512), p);
    float *narrow = run_product(es_train_matmul_for(ES_ISA_AVX2), p);
    assert_memory_equal(wide, narrow, sizeof(float) * p->M * (p->N + PAD));
    free(wide);
    free(narrow);
}

static void test_avx512_and_avx2_give_the_same_bits(void **state) {
    (void)state;
    if (!es_train_matmul_for(ES_ISA_AVX512) || !es_train_matmul_for(ES_ISA_AVX2)) {
        skip(); /* this CPU runs at most one of them */
        return;
    }
    for_each_shape(check_same_bits);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_isa_computes_the_product),
        cmocka_unit_test(test_avx512_and_avx2_give_the_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
