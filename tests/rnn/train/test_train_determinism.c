/*
 * Same seed, same data, same thread count: bit-identical weights after
 * several steps, with two worker threads (the reduction order is fixed).
 * One and two threads differ only by float rounding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "test_train_fixtures.h"

#define INPUTS 5
#define OUTPUTS 4
#define SEQS 7
#define MAX_FRAMES 30
#define STEPS 4

typedef struct batch_data {
    float inputs[SEQS][MAX_FRAMES * INPUTS];
    int classes[SEQS][MAX_FRAMES];
    es_sequence seqs[SEQS];
} batch_data;

static void make_batch(batch_data *d, int step) {
    test_rng rng = {100 + (uint64_t)step};
    for (int s = 0; s < SEQS; s++) {
        int frames = 10 + test_rng_below(&rng, MAX_FRAMES - 10);
        for (int i = 0; i < frames * INPUTS; i++)
            d->inputs[s][i] = test_rng_uniform(&rng);
        for (int t = 0; t < frames; t++)
            d->classes[s][t] = test_rng_below(&rng, OUTPUTS);
        d->seqs[s] =
            (es_sequence){.frames = frames, .inputs = d->inputs[s], .class_targets = d->classes[s]};
    }
}

/* Weights after STEPS steps from seed 42 with `threads` workers. */
static es_model *train(int threads) {
    test_layer layers[] = {{ES_LAYER_GRU, 16, ES_ACT_TANH, 0}, {ES_LAYER_LSTM, 8, ES_ACT_TANH, 0}};
    es_model *m = test_model(INPUTS, layers, 2, OUTPUTS, ES_ACT_SOFTMAX, 42);
    assert_non_null(m);
    es_train_config config;
    es_train_config_default(&config);
    config.threads = threads;
    config.weight_decay = 0.01f;
    config.clip_norm = 1.0f;
    es_trainer *t = NULL;
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_OK);
    for (int step = 0; step < STEPS; step++) {
        batch_data d;
        make_batch(&d, step);
        assert_true(isfinite(es_trainer_step(t, d.seqs, SEQS)));
    }
    es_trainer_destroy(t);
    return m;
}

static void test_same_seed_same_weights(void **state) {
    (void)state;
    es_model *a = train(2), *b = train(2);
    size_t n = es_model_param_count(a);
    assert_memory_equal(es_model_params(a), es_model_params(b), sizeof(float) * n);

    es_model *fresh = test_model(
        INPUTS,
        (test_layer[]){{ES_LAYER_GRU, 16, ES_ACT_TANH, 0}, {ES_LAYER_LSTM, 8, ES_ACT_TANH, 0}}, 2,
        OUTPUTS, ES_ACT_SOFTMAX, 42);
    assert_non_null(fresh);
    assert_memory_not_equal(es_model_params(a), es_model_params(fresh), sizeof(float) * n);

    es_model *single = train(1);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)es_model_params(a)[i] - es_model_params(single)[i]));
    printf("1 vs 2 threads: largest weight difference %.2e\n", worst);
    assert_true(worst < 1e-4);
    es_model_destroy(a);
    es_model_destroy(b);
    es_model_destroy(fresh);
    es_model_destroy(single);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
