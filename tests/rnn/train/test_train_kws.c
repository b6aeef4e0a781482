/*
 * The max-pooling keyword loss trains a streaming detector: a small GRU sees
 * noisy sequences that hold keyword A (a 6-frame pulse on channel 0),
 * keyword B (on channel 1), or only a distractor (on channel 2), and only
 * learns where each keyword's window lies, not which frame to fire on. It
 * must then find >= 90% of fresh keywords (the keyword's posterior passes
 * 0.5 inside the window) with <= 10% of fresh filler sequences raising a
 * false alarm anywhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "test_train_fixtures.h"

#define INPUTS 3
#define CLASSES 3 /* filler, keyword A, keyword B */
#define FRAMES 80
#define PULSE 6
#define WINDOW_AFTER 8 /* the window runs this far past the pulse */
#define BATCH 30
#define MAX_STEPS 600

typedef struct kws_batch {
    float inputs[BATCH][FRAMES * INPUTS];
    es_sequence seqs[BATCH];
} kws_batch;

static void make_kws_batch(kws_batch *d, test_rng *rng) {
    for (int s = 0; s < BATCH; s++) {
        int kind = s % 3; /* 0: distractor only; 1, 2: keyword A, B */
        int start = 10 + test_rng_below(rng, FRAMES - 10 - PULSE - WINDOW_AFTER);
        int channel = kind == 0 ? 2 : kind - 1;
        for (int t = 0; t < FRAMES; t++)
            for (int c = 0; c < INPUTS; c++) {
                float pulse = c == channel && t >= start && t < start + PULSE ? 1.0f : 0.0f;
                d->inputs[s][t * INPUTS + c] = pulse + 0.3f * test_rng_uniform(rng);
            }
        d->seqs[s] = (es_sequence){.frames = FRAMES,
                                   .inputs = d->inputs[s],
                                   .keyword = kind == 0 ? -1 : kind,
                                   .kw_start = start,
                                   .kw_end = start + PULSE + WINDOW_AFTER};
    }
}

typedef struct detection {
    float found;        /* keywords whose posterior passed 0.5 in their window */
    float false_alarms; /* filler sequences where some keyword passed 0.5 */
} detection;

static detection evaluate(es_model *m, const kws_batch *d) {
    detection r = {0, 0};
    int keywords = 0, fillers = 0;
    float out[FRAMES * CLASSES];
    for (int s = 0; s < BATCH; s++) {
        const es_sequence *q = &d->seqs[s];
        assert_int_equal(es_model_forward_sequence(m, q->inputs, FRAMES, out), ES_RNN_OK);
        int fired = 0;
        for (int t = 0; t < FRAMES; t++)
            for (int k = 1; k < CLASSES; k++) {
                int in_window = q->keyword == k && t >= q->kw_start && t < q->kw_end;
                if (out[t * CLASSES + k] > 0.5f && (q->keyword < 0 || in_window)) fired = 1;
            }
        if (q->keyword < 0)
            fillers++, r.false_alarms += fired;
        else
            keywords++, r.found += fired;
    }
    r.found /= keywords;
    r.false_alarms /= fillers;
    return r;
}

static void test_maxpool_trains_a_keyword_detector(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_GRU, 16, ES_ACT_TANH, 0}};
    es_model *m = test_model(INPUTS, layers, 1, CLASSES, ES_ACT_SOFTMAX, 21);
    assert_non_null(m);
    test_gru_remember_by_default(m);
    es_train_config config;
    es_train_config_default(&config);
    config.loss = ES_LOSS_KWS_MAXPOOL;
    config.learning_rate = 1e-2f;
    config.kws_margin_frames = 3;
    es_trainer *t = NULL;
    assert_int_equal(es_trainer_create(m, &config, &t), ES_RNN_OK);
    kws_batch *d = malloc(sizeof *d), *fresh = malloc(sizeof *fresh);
    assert_non_null(d);
    assert_non_null(fresh);
    test_rng train_rng = {5}, test_rng_state = {6};
    make_kws_batch(fresh, &test_rng_state);
    detection r = {0, 1};
    int step = 0;
    while (step < MAX_STEPS && !(r.found >= 0.9f && r.false_alarms <= 0.1f)) {
        make_kws_batch(d, &train_rng);
        assert_true(isfinite(es_trainer_step(t, d->seqs, BATCH)));
        if (++step % 50 == 0) r = evaluate(m, fresh);
    }
    printf("after %d steps: %.0f%% of keywords found, %.0f%% of filler sequences with a false "
           "alarm\n",
           step, 100.0f * r.found, 100.0f * r.false_alarms);
    assert_true(r.found >= 0.9f);
    assert_true(r.false_alarms <= 0.1f);
    free(d);
    free(fresh);
    es_trainer_destroy(t);
    es_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maxpool_trains_a_keyword_detector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
