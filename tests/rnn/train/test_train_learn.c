/*
 * Memory over time: a small GRU and a small LSTM learn to recall, at the
 * last frame, a bit shown at frame 0 and followed by 50 frames of noise
 * (test_make_recall_batch).
 * A feed-forward model cannot (chance is 50%); these must exceed 95% on
 * fresh sequences within a bounded number of steps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "test_train_fixtures.h"

#define MAX_STEPS 500
#define TARGET_ACCURACY 0.95f
#define BATCH TEST_RECALL_BATCH

/* Steps until accuracy on fresh batches reaches TARGET_ACCURACY, or -1. */
static int steps_to_learn(es_layer_type type, float *accuracy_out) {
    test_layer layers[] = {{type, 16, ES_ACT_TANH, 0}};
    es_model *m = test_model(TEST_RECALL_INPUTS, layers, 1, 2, ES_ACT_SOFTMAX, 5);
    assert_non_null(m);
    test_gru_remember_by_default(m);
    es_train_config config;
    es_train_config_default(&config);
    config.learning_rate = 1e-2f;
    config.threads = 2;
    es_trainer *t = NULL;
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_OK);
    test_rng train_rng = {1}, test_rng_state = {2};
    test_recall_batch *d = malloc(sizeof *d);
    assert_non_null(d);
    int learned_at = -1;
    for (int step = 1; step <= MAX_STEPS && learned_at < 0; step++) {
        test_make_recall_batch(d, &train_rng);
        assert_true(isfinite(es_trainer_step(t, d->seqs, BATCH)));
        if (step % 25) continue;
        /* 4 fresh batches: 128 sequences the model never saw. */
        float correct = 0.0f;
        for (int k = 0; k < 4; k++) {
            float accuracy;
            test_make_recall_batch(d, &test_rng_state);
            assert_true(isfinite(es_trainer_loss(t, d->seqs, BATCH, &accuracy)));
            correct += accuracy / 4.0f;
        }
        *accuracy_out = correct;
        if (correct > TARGET_ACCURACY) learned_at = step;
    }
    free(d);
    es_trainer_destroy(t);
    es_model_destroy(m);
    return learned_at;
}

static void test_gru_recalls_a_bit_50_frames_back(void **state) {
    (void)state;
    float accuracy = 0.0f;
    int steps = steps_to_learn(ES_LAYER_GRU, &accuracy);
    printf("GRU: %.1f%% after %d steps of %d sequences\n", 100.0f * accuracy, steps, BATCH);
    assert_true(steps > 0);
}

static void test_lstm_recalls_a_bit_50_frames_back(void **state) {
    (void)state;
    float accuracy = 0.0f;
    int steps = steps_to_learn(ES_LAYER_LSTM, &accuracy);
    printf("LSTM: %.1f%% after %d steps of %d sequences\n", 100.0f * accuracy, steps, BATCH);
    assert_true(steps > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gru_recalls_a_bit_50_frames_back),
        cmocka_unit_test(test_lstm_recalls_a_bit_50_frames_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
