/*
 * What each loss scores, checked against sums written out by hand on a
 * model whose outputs are known (a dense softmax/sigmoid head with identity
 * weights: the posteriors are softmax/sigmoid of the inputs); and what the
 * trainer refuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "model_internal.h" /* es_model_refresh after setting weights */
#include "test_train_fixtures.h"

#define CLASSES 3
#define FRAMES 12

static es_model *identity_model(es_activation head) {
    es_model *m = test_model(CLASSES, NULL, 0, CLASSES, head, 1);
    assert_non_null(m);
    float *p = es_model_params(m);
    memset(p, 0, sizeof(float) * es_model_param_count(m));
    for (int k = 0; k < CLASSES; k++)
        p[k * CLASSES + k] = 1.0f; /* W = I, b = 0 */
    assert_int_equal(es_model_refresh(m), 0);
    return m;
}

static void softmax(const float *x, double *p) {
    double sum = 0.0;
    for (int k = 0; k < CLASSES; k++)
        sum += exp(x[k]);
    for (int k = 0; k < CLASSES; k++)
        p[k] = exp(x[k]) / sum;
}

static es_trainer *trainer_weighted(es_model *m, es_loss loss, int margin, float keyword_weight) {
    es_train_config config;
    es_train_config_default(&config);
    config.loss = loss;
    config.threads = 1;
    config.kws_margin_frames = margin;
    config.keyword_weight = keyword_weight;
    es_trainer *t = NULL;
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_OK);
    return t;
}

static es_trainer *trainer_for(es_model *m, es_loss loss, int margin) {
    return trainer_weighted(m, loss, margin, 1.0f);
}

static void fill_inputs(float *x, uint64_t seed) {
    test_rng rng = {seed};
    for (int i = 0; i < FRAMES * CLASSES; i++)
        x[i] = 2.0f * test_rng_uniform(&rng);
}

static void test_softmax_ce_skips_unscored(void **state) {
    (void)state;
    es_model *m = identity_model(ES_ACT_SOFTMAX);
    es_trainer *t = trainer_for(m, ES_LOSS_SOFTMAX_CE, 0);
    float x[FRAMES * CLASSES];
    int classes[FRAMES];
    fill_inputs(x, 3);
    double expected = 0.0;
    int scored = 0;
    for (int f = 0; f < FRAMES; f++) {
        classes[f] = f % 3 == 1 ? -1 : f % CLASSES;
        if (classes[f] < 0) continue;
        double p[CLASSES];
        softmax(x + f * CLASSES, p);
        expected -= log(p[classes[f]]);
        scored++;
    }
    es_sequence seq = {.frames = FRAMES, .inputs = x, .class_targets = classes};
    assert_float_equal(es_trainer_loss(t, &seq, 1, NULL), expected / scored, 1e-5);
    es_trainer_destroy(t);
    es_model_destroy(m);
}

/* A keyword frame (class > 0) counts keyword_weight filler frames: in the
 * sum and in the count the mean divides by. */
static void test_softmax_ce_weighs_keyword_frames(void **state) {
    (void)state;
    const float weight = 4.0f;
    es_model *m = identity_model(ES_ACT_SOFTMAX);
    es_trainer *t = trainer_weighted(m, ES_LOSS_SOFTMAX_CE, 0, weight);
    float x[FRAMES * CLASSES];
    int classes[FRAMES];
    fill_inputs(x, 5);
    double expected = 0.0, scored = 0.0;
    for (int f = 0; f < FRAMES; f++) {
        classes[f] = f % CLASSES;
        const double w = classes[f] > 0 ? weight : 1.0;
        double p[CLASSES];
        softmax(x + f * CLASSES, p);
        expected -= w * log(p[classes[f]]);
        scored += w;
    }
    es_sequence seq = {.frames = FRAMES, .inputs = x, .class_targets = classes};
    assert_float_equal(es_trainer_loss(t, &seq, 1, NULL), expected / scored, 1e-5);
    es_trainer_destroy(t);
    /* A weight that is not positive is refused. */
    es_train_config config;
    es_train_config_default(&config);
    config.loss = ES_LOSS_SOFTMAX_CE;
    config.keyword_weight = 0.0f;
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_ERR_ARG);
    es_model_destroy(m);
}

/* A keyword-free sequence's worst frame (lowest filler posterior) counts
 * 1 + negative_peak_weight; a sequence with keyword frames is left alone. */
static void test_softmax_ce_weighs_each_negatives_worst_frame(void **state) {
    (void)state;
    const float extra = 9.0f;
    es_model *m = identity_model(ES_ACT_SOFTMAX);
    es_train_config config;
    es_train_config_default(&config);
    config.loss = ES_LOSS_SOFTMAX_CE;
    config.threads = 1;
    config.negative_peak_weight = extra;
    es_trainer *t = NULL;
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_OK);
    float x[FRAMES * CLASSES];
    int fillers[FRAMES], with_keyword[FRAMES];
    fill_inputs(x, 11);
    double frame_loss[FRAMES], lowest = 2.0;
    int worst = -1;
    for (int f = 0; f < FRAMES; f++) {
        double p[CLASSES];
        softmax(x + f * CLASSES, p);
        frame_loss[f] = -log(p[0]);
        fillers[f] = 0;
        with_keyword[f] = f == 5 ? 2 : 0;
        if (p[0] < lowest) lowest = p[0], worst = f;
    }
    double expected = 0.0;
    for (int f = 0; f < FRAMES; f++)
        expected += (f == worst ? 1.0 + extra : 1.0) * frame_loss[f];
    es_sequence negative = {.frames = FRAMES, .inputs = x, .class_targets = fillers};
    assert_float_equal(es_trainer_loss(t, &negative, 1, NULL), expected / (FRAMES + extra), 1e-5);
    double plain = 0.0;
    for (int f = 0; f < FRAMES; f++) {
        double p[CLASSES];
        softmax(x + f * CLASSES, p);
        plain -= log(p[with_keyword[f]]);
    }
    es_sequence positive = {.frames = FRAMES, .inputs = x, .class_targets = with_keyword};
    assert_float_equal(es_trainer_loss(t, &positive, 1, NULL), plain / FRAMES, 1e-5);
    es_trainer_destroy(t);
    es_model_destroy(m);
}

static void test_sigmoid_ce_skips_nan(void **state) {
    (void)state;
    es_model *m = identity_model(ES_ACT_SIGMOID);
    es_trainer *t = trainer_for(m, ES_LOSS_SIGMOID_CE, 0);
    float x[FRAMES * CLASSES], targets[FRAMES * CLASSES];
    fill_inputs(x, 4);
    double expected = 0.0;
    int scored = 0;
    for (int i = 0; i < FRAMES * CLASSES; i++) {
        targets[i] = i % 4 == 0 ? NAN : (float)(i % 2);
        if (isnan(targets[i])) continue;
        double p = 1.0 / (1.0 + exp(-x[i]));
        expected -= targets[i] * log(p) + (1.0 - targets[i]) * log(1.0 - p);
        scored++;
    }
    es_sequence seq = {.frames = FRAMES, .inputs = x, .targets = targets};
    assert_float_equal(es_trainer_loss(t, &seq, 1, NULL), expected / scored, 1e-5);
    es_trainer_destroy(t);
    es_model_destroy(m);
}

/* Keyword 2 in [5, 8), margin 2: frames 3..9 unscored but the peak, others filler. */
static void test_kws_maxpool_scores_peak_and_filler(void **state) {
    (void)state;
    enum { KW = 2, START = 5, END = 8, MARGIN = 2 };
    es_model *m = identity_model(ES_ACT_SOFTMAX);
    es_trainer *t = trainer_for(m, ES_LOSS_KWS_MAXPOOL, MARGIN);
    float x[FRAMES * CLASSES];
    fill_inputs(x, 5);
    double expected = 0.0, best = -1.0;
    int scored = 0;
    for (int f = 0; f < FRAMES; f++) {
        double p[CLASSES];
        softmax(x + f * CLASSES, p);
        if (f >= START && f < END && p[KW] > best) best = p[KW];
        if (f >= START - MARGIN && f < END + MARGIN) continue;
        expected -= log(p[0]);
        scored++;
    }
    expected -= log(best);
    scored++;
    es_sequence seq = {
        .frames = FRAMES, .inputs = x, .keyword = KW, .kw_start = START, .kw_end = END};
    float accuracy = -1.0f;
    assert_float_equal(es_trainer_loss(t, &seq, 1, &accuracy), expected / scored, 1e-5);
    assert_true(accuracy >= 0.0f && accuracy <= 1.0f);

    /* Without a keyword every frame is filler. */
    double filler = 0.0;
    for (int f = 0; f < FRAMES; f++) {
        double p[CLASSES];
        softmax(x + f * CLASSES, p);
        filler -= log(p[0]);
    }
    seq.keyword = -1;
    assert_float_equal(es_trainer_loss(t, &seq, 1, NULL), filler / FRAMES, 1e-5);
    es_trainer_destroy(t);
    es_model_destroy(m);
}

static void test_refuses_mismatched_head_and_bad_batches(void **state) {
    (void)state;
    es_model *m = identity_model(ES_ACT_SIGMOID);
    es_train_config config;
    es_train_config_default(&config);
    es_trainer *t = NULL;
    config.loss = ES_LOSS_SOFTMAX_CE; /* needs a softmax head */
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_ERR_ARG);
    assert_null(t);
    config.loss = ES_LOSS_SIGMOID_CE;
    config.threads = 0;
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_ERR_ARG);
    es_model_destroy(m);

    m = identity_model(ES_ACT_SOFTMAX);
    t = trainer_for(m, ES_LOSS_SOFTMAX_CE, 0);
    float x[FRAMES * CLASSES] = {0};
    int classes[FRAMES] = {0};
    classes[3] = CLASSES; /* out of range */
    es_sequence seq = {.frames = FRAMES, .inputs = x, .class_targets = classes};
    const float *bias = es_model_params(m) + CLASSES * CLASSES;
    float before = bias[0];
    assert_true(isnan(es_trainer_step(t, &seq, 1)));
    assert_true(bias[0] == before); /* no step taken */
    classes[3] = 0;
    seq.frames = 0;
    assert_true(isnan(es_trainer_step(t, &seq, 1)));
    seq.frames = FRAMES;
    assert_true(isfinite(es_trainer_step(t, &seq, 1)));
    assert_true(bias[0] != before);
    assert_int_equal(es_trainer_skipped_steps(t), 0);

    /* A non-finite input gives a non-finite gradient: the step is skipped. */
    size_t n = es_model_param_count(m);
    float *saved = malloc(sizeof(float) * n);
    assert_non_null(saved);
    memcpy(saved, es_model_params(m), sizeof(float) * n);
    x[CLASSES + 1] = INFINITY;
    assert_false(isfinite(es_trainer_step(t, &seq, 1)));
    assert_int_equal(es_trainer_skipped_steps(t), 1);
    assert_memory_equal(saved, es_model_params(m), sizeof(float) * n);
    free(saved);
    es_trainer_destroy(t);
    es_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_ce_skips_unscored),
        cmocka_unit_test(test_softmax_ce_weighs_keyword_frames),
        cmocka_unit_test(test_softmax_ce_weighs_each_negatives_worst_frame),
        cmocka_unit_test(test_sigmoid_ce_skips_nan),
        cmocka_unit_test(test_kws_maxpool_scores_peak_and_filler),
        cmocka_unit_test(test_refuses_mismatched_head_and_bad_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
