/*
 * The trainer's forward pass and the inference engine (es_model_forward_sequence)
 * compute the same function: for every layer type, the loss the trainer
 * reports equals the loss of the inference outputs. This ties the trainer's
 * reading of the parameter layout (gate order, the GRU's c, CONV1D taps,
 * BIDIR directions) to the engine the trained models run on. Behind a
 * STACK, the trainer trains what the layers after it compute on grouped
 * frames, scored on each group's last frame, where the engine outputs it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "test_train_fixtures.h"

#define INPUTS 5
#define OUTPUTS 4
#define FRAMES 23

static double inference_loss(es_model *m, const float *x, const int *classes) {
    float out[FRAMES * OUTPUTS];
    assert_int_equal(es_model_forward_sequence(m, x, FRAMES, out), ES_RNN_OK);
    double loss = 0.0;
    for (int t = 0; t < FRAMES; t++)
        loss -= log(out[t * OUTPUTS + classes[t]]);
    return loss / FRAMES;
}

static void check(const char *name, const test_layer *layers, int count) {
    es_model *m = test_model(INPUTS, layers, count, OUTPUTS, ES_ACT_SOFTMAX, 31);
    assert_non_null(m);
    test_gru_remember_by_default(m); /* nonzero biases: their place is checked too */
    test_rng rng = {17};
    float x[FRAMES * INPUTS];
    int classes[FRAMES];
    for (int i = 0; i < FRAMES * INPUTS; i++)
        x[i] = 2.0f * test_rng_uniform(&rng);
    for (int t = 0; t < FRAMES; t++)
        classes[t] = test_rng_below(&rng, OUTPUTS);
    /* Every parameter nonzero, so no term can hide. */
    float *p = es_model_params(m);
    for (size_t i = 0; i < es_model_param_count(m); i++)
        p[i] += 0.1f * test_rng_uniform(&rng);
    assert_int_equal(es_model_refresh(m), ES_RNN_OK);

    es_train_config config;
    es_train_config_default(&config);
    es_trainer *t = NULL;
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_OK);
    es_sequence seq = {.frames = FRAMES, .inputs = x, .class_targets = classes};
    double trained = es_trainer_loss(t, &seq, 1, NULL);
    double inferred = inference_loss(m, x, classes);
    printf("%-26s trainer %.7f  inference %.7f\n", name, trained, inferred);
    assert_true(fabs(trained - inferred) <= 1e-5 * fabs(inferred));
    es_trainer_destroy(t);
    es_model_destroy(m);
}

static void test_every_layer_type(void **state) {
    (void)state;
    static const char *dense_names[] = {"dense linear", "dense relu", "dense sigmoid", "dense tanh",
                                        "dense softmax"};
    for (int act = ES_ACT_LINEAR; act <= ES_ACT_SOFTMAX; act++) {
        test_layer dense[] = {{ES_LAYER_DENSE, 6, (es_activation)act, 0}};
        check(dense_names[act], dense, 1);
    }
    test_layer rnn[] = {{ES_LAYER_RNN, 6, ES_ACT_TANH, 0}};
    check("rnn", rnn, 1);
    test_layer gru[] = {{ES_LAYER_GRU, 6, ES_ACT_TANH, 0}};
    check("gru", gru, 1);
    test_layer lstm[] = {{ES_LAYER_LSTM, 6, ES_ACT_TANH, 0}};
    check("lstm", lstm, 1);
    test_layer conv[] = {{ES_LAYER_CONV1D, 6, ES_ACT_RELU, 4}};
    check("conv1d k4 relu", conv, 1);
    test_layer bidir_gru[] = {{ES_LAYER_BIDIR_GRU, 6, ES_ACT_TANH, 0}};
    check("bidir gru", bidir_gru, 1);
    test_layer bidir_lstm[] = {{ES_LAYER_BIDIR_LSTM, 6, ES_ACT_TANH, 0}};
    check("bidir lstm", bidir_lstm, 1);
    test_layer stack[] = {{ES_LAYER_CONV1D, 8, ES_ACT_TANH, 3},
                          {ES_LAYER_GRU, 7, ES_ACT_TANH, 0},
                          {ES_LAYER_LSTM, 6, ES_ACT_TANH, 0},
                          {ES_LAYER_DENSE, 5, ES_ACT_SIGMOID, 0}};
    check("conv > gru > lstm > dense", stack, 4);
}

/* [STACK K, GRU, DENSE] on FRAMES frames against [GRU, DENSE] with the same
 * parameters on FRAMES / K groups: the same loss, gradient and input
 * gradient (the frames after the last whole group: none), and the loss the
 * engine's outputs give on the groups' last frames. */
static void test_stack_trains_the_rest_on_groups(void **state) {
    (void)state;
    enum { K = 3, STEPS = FRAMES / K };
    const test_layer stacked[] = {{ES_LAYER_STACK, K * INPUTS, ES_ACT_LINEAR, K},
                                  {ES_LAYER_GRU, 6, ES_ACT_TANH, 0}};
    es_model *m = test_model(INPUTS, stacked, 2, OUTPUTS, ES_ACT_SOFTMAX, 41);
    es_model *rest = test_model(K * INPUTS, stacked + 1, 1, OUTPUTS, ES_ACT_SOFTMAX, 42);
    assert_non_null(m);
    assert_non_null(rest);
    size_t n = es_model_param_count(m);
    assert_int_equal(n, es_model_param_count(rest));
    test_rng rng = {19};
    float *p = es_model_params(m);
    for (size_t i = 0; i < n; i++)
        p[i] += 0.1f * test_rng_uniform(&rng);
    assert_int_equal(es_model_refresh(m), ES_RNN_OK);
    memcpy(es_model_params(rest), p, sizeof(float) * n);
    assert_int_equal(es_model_refresh(rest), ES_RNN_OK);

    float x[FRAMES * INPUTS];
    int classes[FRAMES], group_classes[STEPS];
    for (int i = 0; i < FRAMES * INPUTS; i++)
        x[i] = 2.0f * test_rng_uniform(&rng);
    for (int t = 0; t < FRAMES; t++)
        classes[t] = test_rng_below(&rng, OUTPUTS);
    for (int j = 0; j < STEPS; j++)
        group_classes[j] = classes[j * K + K - 1];

    es_train_config config;
    es_train_config_default(&config);
    es_trainer *tm = NULL, *tr = NULL;
    assert_int_equal(es_trainer_create(m, &config, &tm), ES_RNN_OK);
    assert_int_equal(es_trainer_create(rest, &config, &tr), ES_RNN_OK);
    es_sequence frames = {.frames = FRAMES, .inputs = x, .class_targets = classes};
    es_sequence groups = {.frames = STEPS, .inputs = x, .class_targets = group_classes};
    float *gm = malloc(sizeof(float) * n), *gr = malloc(sizeof(float) * n);
    float lm = es_trainer_gradient(tm, &frames, 1, gm);
    float lr = es_trainer_gradient(tr, &groups, 1, gr);
    assert_true(lm == lr);
    assert_memory_equal(gm, gr, sizeof(float) * n);
    float dx_m[FRAMES * INPUTS], dx_r[STEPS * K * INPUTS];
    es_trainer_input_gradient(tm, &frames, dx_m);
    es_trainer_input_gradient(tr, &groups, dx_r);
    assert_memory_equal(dx_m, dx_r, sizeof dx_r);
    for (int i = STEPS * K * INPUTS; i < FRAMES * INPUTS; i++)
        assert_true(dx_m[i] == 0.0f);

    float out[FRAMES * OUTPUTS];
    assert_int_equal(es_model_forward_sequence(m, x, FRAMES, out), ES_RNN_OK);
    double inferred = 0.0;
    for (int j = 0; j < STEPS; j++)
        inferred -= log(out[(j * K + K - 1) * OUTPUTS + group_classes[j]]);
    inferred /= STEPS;
    assert_true(fabs(lm - inferred) <= 1e-5 * fabs(inferred));

    es_sequence too_short = {.frames = K - 1, .inputs = x, .class_targets = classes};
    assert_true(isnan(es_trainer_loss(tm, &too_short, 1, NULL)));
    free(gm);
    free(gr);
    es_trainer_destroy(tm);
    es_trainer_destroy(tr);
    es_model_destroy(m);
    es_model_destroy(rest);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_layer_type),
        cmocka_unit_test(test_stack_trains_the_rest_on_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
