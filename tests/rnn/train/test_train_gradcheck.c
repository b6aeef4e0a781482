/*
 * The trainer's analytic gradients against central finite differences, for
 * every layer type and every loss, on tiny models and batches of sequences
 * of different lengths (so padding, masking and the split across two
 * workers are exercised).
 *
 * Tolerance: with eps = 1e-2 in float, ||g - fd|| / max(||g||, ||fd||) < 2e-2
 * over all parameters, and every parameter within 1e-3 + 5e-2 |fd|. A sign
 * flipped in one gradient term (tried: the GRU reset gate) fails it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "test_train_fixtures.h"

#define INPUTS 3
#define UNITS 4
#define OUTPUTS 3
#define SEQS 3
#define MAX_FRAMES 7
#define FD_EPS 1e-2f
#define NORM_TOLERANCE 2e-2
#define ELEMENT_ABS_TOLERANCE 1e-3
#define ELEMENT_REL_TOLERANCE 5e-2

typedef struct batch_data {
    float inputs[SEQS][MAX_FRAMES * INPUTS];
    int classes[SEQS][MAX_FRAMES];
    float targets[SEQS][MAX_FRAMES * OUTPUTS];
    es_sequence seqs[SEQS];
} batch_data;

static void make_batch(batch_data *d, es_loss loss, uint64_t seed) {
    static const int lengths[SEQS] = {7, 4, 5};
    test_rng rng = {seed};
    memset(d, 0, sizeof *d);
    for (int s = 0; s < SEQS; s++) {
        for (int i = 0; i < lengths[s] * INPUTS; i++)
            d->inputs[s][i] = test_rng_uniform(&rng);
        for (int t = 0; t < lengths[s]; t++)
            d->classes[s][t] = test_rng_below(&rng, OUTPUTS);
        for (int i = 0; i < lengths[s] * OUTPUTS; i++)
            d->targets[s][i] = (float)test_rng_below(&rng, 2);
        es_sequence *q = &d->seqs[s];
        q->frames = lengths[s];
        q->inputs = d->inputs[s];
        q->class_targets = d->classes[s];
        q->targets = d->targets[s];
    }
    d->classes[0][2] = -1; /* unscored frames */
    d->targets[1][OUTPUTS + 1] = NAN;
    (void)loss;
    /* KWS: a keyword in the middle, none, a keyword at the start. */
    d->seqs[0].keyword = 1, d->seqs[0].kw_start = 3, d->seqs[0].kw_end = 5;
    d->seqs[1].keyword = -1;
    d->seqs[2].keyword = 2, d->seqs[2].kw_start = 0, d->seqs[2].kw_end = 2;
}

static double loss_at(es_trainer *t, const batch_data *d) {
    return es_trainer_loss(t, d->seqs, SEQS, NULL);
}

/* A trainer of `loss` on two workers. */
static es_trainer *two_worker_trainer(es_model *m, es_loss loss) {
    es_train_config config;
    es_train_config_default(&config);
    config.loss = loss;
    config.threads = 2;
    config.kws_margin_frames = 1;
    es_trainer *t = NULL;
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_OK);
    return t;
}

/* Checks es_trainer_gradient against finite differences for one model:
 * `layers` and a dense head, or with count < 0, -count layers, the last
 * being the head. */
static void check_model(const char *name, const test_layer *layers, int count, es_loss loss) {
    es_activation head = loss == ES_LOSS_SIGMOID_CE ? ES_ACT_SIGMOID : ES_ACT_SOFTMAX;
    es_model *m = count >= 0 ? test_model(INPUTS, layers, count, OUTPUTS, head, 7)
                             : test_model_headless(INPUTS, layers, -count, 7);
    assert_non_null(m);
    es_trainer *t = two_worker_trainer(m, loss);
    batch_data d;
    make_batch(&d, loss, 11);

    size_t n = es_model_param_count(m);
    float *params = es_model_params(m);
    float *grad = malloc(sizeof(float) * n);
    float *fd = malloc(sizeof(float) * n);
    assert_non_null(grad);
    assert_non_null(fd);
    float loss_value = es_trainer_gradient(t, d.seqs, SEQS, grad);
    assert_true(isfinite(loss_value) && loss_value > 0.0f);
    for (size_t i = 0; i < n; i++) {
        float saved = params[i];
        params[i] = saved + FD_EPS;
        double up = loss_at(t, &d);
        params[i] = saved - FD_EPS;
        double down = loss_at(t, &d);
        params[i] = saved;
        fd[i] = (float)((up - down) / (2.0 * FD_EPS));
    }
    double diff_sq = 0.0, worst = 0.0;
    size_t worst_index = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)grad[i] - fd[i]);
        diff_sq += diff * diff;
        double excess = diff - (ELEMENT_ABS_TOLERANCE + ELEMENT_REL_TOLERANCE * fabs(fd[i]));
        if (excess > worst) worst = excess, worst_index = i;
    }
    double scale = fmax(test_norm(grad, n), test_norm(fd, n));
    double relative = sqrt(diff_sq) / scale;
    printf("%-28s %4zu params  |g| %.4f  relative error %.2e\n", name, n, scale, relative);
    if (worst > 0.0)
        printf("  worst param %zu: analytic %g, finite difference %g\n", worst_index,
               grad[worst_index], fd[worst_index]);
    assert_true(scale > 1e-3); /* a zero gradient would pass trivially */
    assert_true(relative < NORM_TOLERANCE);
    assert_true(worst <= 0.0);
    free(grad);
    free(fd);
    es_trainer_destroy(t);
    es_model_destroy(m);
}

static void test_dense_activations(void **state) {
    (void)state;
    static const char *names[] = {"dense linear", "dense relu", "dense sigmoid", "dense tanh",
                                  "dense softmax"};
    for (int act = ES_ACT_LINEAR; act <= ES_ACT_SOFTMAX; act++) {
        test_layer layers[] = {{ES_LAYER_DENSE, UNITS, (es_activation)act, 0}};
        check_model(names[act], layers, 1, ES_LOSS_SOFTMAX_CE);
    }
}

static void test_rnn(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_RNN, UNITS, ES_ACT_TANH, 0}};
    check_model("rnn", layers, 1, ES_LOSS_SOFTMAX_CE);
}

static void test_gru(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_GRU, UNITS, ES_ACT_TANH, 0}};
    check_model("gru", layers, 1, ES_LOSS_SOFTMAX_CE);
}

static void test_lstm(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_LSTM, UNITS, ES_ACT_TANH, 0}};
    check_model("lstm", layers, 1, ES_LOSS_SOFTMAX_CE);
}

static void test_conv1d(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_CONV1D, UNITS, ES_ACT_TANH, 3}};
    check_model("conv1d k3 tanh", layers, 1, ES_LOSS_SOFTMAX_CE);
}

static void test_bidir_gru(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_BIDIR_GRU, UNITS, ES_ACT_TANH, 0}};
    check_model("bidir gru", layers, 1, ES_LOSS_SOFTMAX_CE);
}

static void test_bidir_lstm(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_BIDIR_LSTM, UNITS, ES_ACT_TANH, 0}};
    check_model("bidir lstm", layers, 1, ES_LOSS_SOFTMAX_CE);
}

/* Gradients flow through a stack: conv -> GRU -> LSTM -> head. (Not ReLU
 * here: with it, a pre-activation of this model lies within 1e-3 of the
 * kink, and the finite difference at eps 1e-2 straddles it; at eps 1e-4 it
 * agrees with the analytic gradient.) */
static void test_stack(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_CONV1D, UNITS, ES_ACT_SIGMOID, 2},
                           {ES_LAYER_GRU, UNITS, ES_ACT_TANH, 0},
                           {ES_LAYER_LSTM, UNITS, ES_ACT_TANH, 0}};
    check_model("conv sigmoid > gru > lstm", layers, 3, ES_LOSS_SOFTMAX_CE);
}

static void test_sigmoid_loss(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_GRU, UNITS, ES_ACT_TANH, 0}};
    check_model("gru, sigmoid CE", layers, 1, ES_LOSS_SIGMOID_CE);
}

static void test_kws_maxpool_loss(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_LSTM, UNITS, ES_ACT_TANH, 0}};
    check_model("lstm, KWS max-pool", layers, 1, ES_LOSS_KWS_MAXPOOL);
}

/* A convolutional head also takes the fused loss. */
static void test_conv_head(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_GRU, UNITS, ES_ACT_TANH, 0},
                           {ES_LAYER_CONV1D, OUTPUTS, ES_ACT_SOFTMAX, 3}};
    check_model("gru > conv1d softmax head", layers, -2, ES_LOSS_SOFTMAX_CE);
}

/* The gradient w.r.t. the inputs, through a stack, against finite differences. */
static void test_input_gradient(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_GRU, UNITS, ES_ACT_TANH, 0},
                           {ES_LAYER_BIDIR_LSTM, UNITS, ES_ACT_TANH, 0}};
    es_model *m = test_model(INPUTS, layers, 2, OUTPUTS, ES_ACT_SOFTMAX, 3);
    assert_non_null(m);
    es_train_config config;
    es_train_config_default(&config);
    es_trainer *t = NULL;
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_OK);
    batch_data d;
    make_batch(&d, ES_LOSS_SOFTMAX_CE, 5);
    es_sequence seq = d.seqs[0];
    float grad[MAX_FRAMES * INPUTS];
    float *inputs = d.inputs[0];
    assert_true(isfinite(es_trainer_input_gradient(t, &seq, grad)));
    float worst = 0.0f;
    for (int i = 0; i < seq.frames * INPUTS; i++) {
        float saved = inputs[i];
        inputs[i] = saved + FD_EPS;
        double up = es_trainer_loss(t, &seq, 1, NULL);
        inputs[i] = saved - FD_EPS;
        double down = es_trainer_loss(t, &seq, 1, NULL);
        inputs[i] = saved;
        float fd = (float)((up - down) / (2.0 * FD_EPS));
        float err = fabsf(fd - grad[i]) - (float)(ELEMENT_ABS_TOLERANCE + 0.05 * fabs(fd));
        worst = err > worst ? err : worst;
    }
    assert_true(worst <= 0.0f);
    es_trainer_destroy(t);
    es_model_destroy(m);
}

/* Scored targets of a sequence under the sigmoid loss (NaN: unscored). */
static int scored_targets(const es_sequence *s) {
    int n = 0;
    for (int i = 0; i < s->frames * OUTPUTS; i++)
        n += !isnan(s->targets[i]);
    return n;
}

/* Padding adds nothing: a batch of sequences of different lengths, shorter
 * ones first (the trainer reorders them, two workers split them), has the
 * loss and gradient of its sequences run one by one, each weighed by its
 * scored targets. Through both directions of a BIDIR layer and a convolution. */
static void test_a_batch_is_its_sequences(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_CONV1D, UNITS, ES_ACT_TANH, 2},
                           {ES_LAYER_GRU, UNITS, ES_ACT_TANH, 0},
                           {ES_LAYER_BIDIR_LSTM, UNITS, ES_ACT_TANH, 0}};
    es_model *m = test_model(INPUTS, layers, 3, OUTPUTS, ES_ACT_SIGMOID, 9);
    assert_non_null(m);
    es_trainer *t = two_worker_trainer(m, ES_LOSS_SIGMOID_CE);
    batch_data d;
    make_batch(&d, ES_LOSS_SIGMOID_CE, 13);
    const es_sequence shortest_first[SEQS] = {d.seqs[1], d.seqs[2], d.seqs[0]};

    size_t n = es_model_param_count(m);
    float *batch_grad = malloc(sizeof(float) * n), *alone_grad = malloc(sizeof(float) * n);
    double *expected = calloc(n, sizeof(double));
    assert_non_null(batch_grad);
    assert_non_null(alone_grad);
    assert_non_null(expected);
    const float batch_loss = es_trainer_gradient(t, shortest_first, SEQS, batch_grad);
    double expected_loss = 0.0, scored = 0.0;
    for (int s = 0; s < SEQS; s++) {
        const int weight = scored_targets(&d.seqs[s]);
        expected_loss += weight * (double)es_trainer_gradient(t, &d.seqs[s], 1, alone_grad);
        for (size_t i = 0; i < n; i++)
            expected[i] += weight * (double)alone_grad[i];
        scored += weight;
    }
    assert_float_equal(batch_loss, expected_loss / scored, 1e-5);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double diff = fabs(batch_grad[i] - expected[i] / scored);
        worst = diff > worst ? diff : worst;
    }
    printf("batch against its sequences alone: worst gradient difference %.1e\n", worst);
    assert_true(worst < 1e-5);
    free(batch_grad);
    free(alone_grad);
    free(expected);
    es_trainer_destroy(t);
    es_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_batch_is_its_sequences),
        cmocka_unit_test(test_dense_activations),
        cmocka_unit_test(test_rnn),
        cmocka_unit_test(test_gru),
        cmocka_unit_test(test_lstm),
        cmocka_unit_test(test_conv1d),
        cmocka_unit_test(test_bidir_gru),
        cmocka_unit_test(test_bidir_lstm),
        cmocka_unit_test(test_stack),
        cmocka_unit_test(test_sigmoid_loss),
        cmocka_unit_test(test_kws_maxpool_loss),
        cmocka_unit_test(test_conv_head),
        cmocka_unit_test(test_input_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
