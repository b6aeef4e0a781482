/*
 * Truncated BPTT: with chunks at least as long as the sequences it is full
 * BPTT, bit for bit; shorter chunks leave the loss (the forward pass carries
 * the state across chunks) but cut the gradient at every chunk boundary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "test_train_fixtures.h"

#define INPUTS 3
#define OUTPUTS 3
#define FRAMES 8
#define SEQS 3

typedef struct batch_data {
    float inputs[SEQS][FRAMES * INPUTS];
    int classes[SEQS][FRAMES];
    es_sequence seqs[SEQS];
} batch_data;

static void make_batch(batch_data *d) {
    static const int lengths[SEQS] = {8, 5, 7};
    test_rng rng = {21};
    for (int s = 0; s < SEQS; s++) {
        for (int i = 0; i < FRAMES * INPUTS; i++)
            d->inputs[s][i] = test_rng_uniform(&rng);
        for (int t = 0; t < FRAMES; t++)
            d->classes[s][t] = test_rng_below(&rng, OUTPUTS);
        d->seqs[s] = (es_sequence){
            .frames = lengths[s], .inputs = d->inputs[s], .class_targets = d->classes[s]};
    }
}

static es_trainer *trainer_with_bptt(es_model *m, int bptt_frames) {
    es_train_config config;
    es_train_config_default(&config);
    config.bptt_frames = bptt_frames;
    es_trainer *t = NULL;
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_OK);
    return t;
}

/* Loss and gradient of the batch with the given truncation. */
static float gradient_with_bptt(es_model *m, int bptt_frames, const batch_data *d, float *grad) {
    es_trainer *t = trainer_with_bptt(m, bptt_frames);
    float loss = es_trainer_gradient(t, d->seqs, SEQS, grad);
    es_trainer_destroy(t);
    return loss;
}

static void check_layers(const test_layer *layers, int count) {
    es_model *m = test_model(INPUTS, layers, count, OUTPUTS, ES_ACT_SOFTMAX, 9);
    assert_non_null(m);
    size_t n = es_model_param_count(m);
    float *full = malloc(sizeof(float) * n), *truncated = malloc(sizeof(float) * n);
    assert_non_null(full);
    assert_non_null(truncated);
    batch_data d;
    make_batch(&d);
    float full_loss = gradient_with_bptt(m, 0, &d, full);
    for (int bptt = FRAMES; bptt <= 2 * FRAMES; bptt += FRAMES) {
        assert_true(gradient_with_bptt(m, bptt, &d, truncated) == full_loss);
        assert_memory_equal(full, truncated, sizeof(float) * n);
    }
    assert_true(gradient_with_bptt(m, 3, &d, truncated) == full_loss);
    double diff_sq = 0.0;
    for (size_t i = 0; i < n; i++)
        diff_sq += ((double)full[i] - truncated[i]) * ((double)full[i] - truncated[i]);
    printf("bptt 3 of %d frames: |g_full - g_truncated| / |g_full| = %.3f\n", FRAMES,
           sqrt(diff_sq) / test_norm(full, n));
    assert_true(sqrt(diff_sq) > 1e-4 * test_norm(full, n));
    free(full);
    free(truncated);
    es_model_destroy(m);
}

static void test_long_chunks_equal_full_bptt(void **state) {
    (void)state;
    test_layer stack[] = {{ES_LAYER_CONV1D, 4, ES_ACT_TANH, 3},
                          {ES_LAYER_GRU, 4, ES_ACT_TANH, 0},
                          {ES_LAYER_LSTM, 4, ES_ACT_TANH, 0},
                          {ES_LAYER_RNN, 4, ES_ACT_TANH, 0}};
    check_layers(stack, 4);
    test_layer bidir[] = {{ES_LAYER_BIDIR_GRU, 4, ES_ACT_TANH, 0},
                          {ES_LAYER_BIDIR_LSTM, 4, ES_ACT_TANH, 0}};
    check_layers(bidir, 2);
}

/* Scored only on the last frame, the inputs of earlier chunks get no gradient. */
static void check_cut(es_layer_type type, int kernel) {
    test_layer layers[] = {{type, 4, ES_ACT_TANH, kernel}};
    es_model *m = test_model(INPUTS, layers, 1, OUTPUTS, ES_ACT_SOFTMAX, 4);
    assert_non_null(m);
    batch_data d;
    make_batch(&d);
    int classes[FRAMES];
    for (int t = 0; t < FRAMES; t++)
        classes[t] = t == FRAMES - 1 ? 1 : -1;
    es_sequence seq = {.frames = FRAMES, .inputs = d.inputs[0], .class_targets = classes};
    enum { CHUNK = 4 };
    for (int bptt = 0; bptt <= CHUNK; bptt += CHUNK) {
        es_trainer *t = trainer_with_bptt(m, bptt);
        float grad[FRAMES * INPUTS];
        assert_true(isfinite(es_trainer_input_gradient(t, &seq, grad)));
        /* CONV1D reaches back kernel-1 frames; recurrent layers all the way. */
        int reach = kernel > 0 ? FRAMES - kernel : 0;
        int cut_before = bptt > 0 ? FRAMES - CHUNK : reach;
        for (int f = 0; f < FRAMES; f++) {
            double norm = test_norm(grad + f * INPUTS, INPUTS);
            if (f < cut_before)
                assert_true(norm == 0.0);
            else
                assert_true(norm > 0.0);
        }
        es_trainer_destroy(t);
    }
    es_model_destroy(m);
}

static void test_chunks_cut_the_gradient(void **state) {
    (void)state;
    check_cut(ES_LAYER_RNN, 0);
    check_cut(ES_LAYER_GRU, 0);
    check_cut(ES_LAYER_LSTM, 0);
    check_cut(ES_LAYER_CONV1D, 6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_chunks_equal_full_bptt),
        cmocka_unit_test(test_chunks_cut_the_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
