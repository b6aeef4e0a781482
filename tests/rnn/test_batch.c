/*
 * Batched steps (es_model_step_batch): every stream's outputs equal, bit for
 * bit, what stepping it alone gives, on every kernel set this CPU runs,
 * whatever the number of streams (across the blocks the batch is cut into),
 * which of them have a frame due at a step, and the layer types and sizes
 * (lone panels, CONV1D windows, LSTM cells, a STACK's gathering). The same
 * for int8 models (es_model_quantise, as `earshot quantize` does) on every
 * int8 kernel set: their streams share int8 products a chunk at a time,
 * and batches of 1, 3, a whole block and a block and one, of fresh and old
 * states side by side, leave outputs and states as stepping alone does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch_kernels.h"
#include "state_internal.h"
#include "test_infer_util.h"

#define INPUTS 40 /* TEST_STACKED_40 stacks frames of 40 */
#define STEPS 12
/* Over two blocks of ES_BATCH_STREAMS, with a partial one and a partial tile. */
#define STREAMS (2 * ES_BATCH_STREAMS + 7)

static const test_layer vad_like[] = TEST_VAD_LIKE;
static const test_layer kws_like[] = TEST_KWS_LIKE;
static const test_layer lstm_rnn[] = TEST_LSTM_RNN;
static const test_layer stacked[] = TEST_STACKED_40;

static const model_case cases[] = {{vad_like, 3}, {kws_like, 3}, {lstm_rnn, 3}, {stacked, 3}};
static const es_isa all_isas[] = {ES_ISA_GENERIC, ES_ISA_AVX2, ES_ISA_AVX512};

/* What a state carries between frames is the same in `a` and `b`: each
 * layer's history (h, a CONV1D's last frames, the frames a STACK gathered so
 * far), LSTM cells, the outputs held behind a STACK. */
static void assert_carried_equal(const es_model *m, const es_state *a, const es_state *b) {
    const es_packed_model *packed = m->packed;
    assert_int_equal(a->gathered, b->gathered);
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        const es_packed_layer *pl = &packed->layers[l];
        size_t history = (size_t)layer->units; /* recurrent: h */
        if (layer->type == ES_LAYER_DENSE) history = 0;
        if (layer->type == ES_LAYER_CONV1D)
            history = (size_t)(layer->kernel - 1) * (size_t)layer->input_size;
        if (layer->type == ES_LAYER_STACK) history = (size_t)a->gathered * (size_t)m->input_size;
        if (history > 0)
            assert_memory_equal(a->scratch + pl->state_history, b->scratch + pl->state_history,
                                history * sizeof(float));
        if (pl->gates == 4)
            assert_memory_equal(a->scratch + pl->state_cell, b->scratch + pl->state_cell,
                                sizeof(float) * (size_t)layer->units);
    }
    if (es_model_has_stack(m))
        assert_memory_equal(a->scratch + packed->state_held, b->scratch + packed->state_held,
                            sizeof(float) * (size_t)m->output_size);
}

/* Which streams step together at each step of a check: stream t steps at
 * `step` when due(t, step), after a reset (of its batched and lone state
 * alike) when reset(t, step). */
typedef struct schedule {
    int streams, steps;
    int (*due)(int t, int step);
    int (*reset)(int t, int step);
} schedule;

/* Every stream due at a step batched with the others due then, the same
 * frames through lone states: every output and every carried state equal. */
static void check_schedule(es_model *m, const schedule *plan, uint64_t seed) {
    const int in = es_model_input_size(m), out = es_model_output_size(m);
    const size_t streams = (size_t)plan->streams;
    es_state **batched = calloc(streams, sizeof *batched);
    es_state **alone = calloc(streams, sizeof *alone);
    es_state **due_states = calloc(streams, sizeof *due_states);
    int *stream_of = calloc(streams, sizeof *stream_of);
    float *frames = test_random_inputs(plan->streams * plan->steps, in, seed);
    float *inputs = malloc(sizeof(float) * streams * (size_t)in);
    float *outputs = malloc(sizeof(float) * streams * (size_t)out);
    for (size_t t = 0; t < streams; t++) {
        assert_int_equal(es_state_create(m, &batched[t]), ES_RNN_OK);
        assert_int_equal(es_state_create(m, &alone[t]), ES_RNN_OK);
    }
    for (int step = 0; step < plan->steps; step++) {
        int count = 0;
        for (int t = 0; t < plan->streams; t++) {
            if (!plan->due(t, step)) continue;
            if (plan->reset(t, step)) {
                es_state_reset(batched[t]);
                es_state_reset(alone[t]);
            }
            memcpy(inputs + (size_t)count * in, frames + ((size_t)step * streams + t) * in,
                   sizeof(float) * (size_t)in);
            due_states[count] = batched[t];
            stream_of[count++] = t;
        }
        es_model_step_batch(m, due_states, inputs, outputs, count);
        for (int i = 0; i < count; i++) {
            const float *want = es_state_step(alone[stream_of[i]], inputs + (size_t)i * in);
            assert_memory_equal(outputs + (size_t)i * out, want, sizeof(float) * (size_t)out);
            assert_carried_equal(m, batched[stream_of[i]], alone[stream_of[i]]);
        }
    }
    for (size_t t = 0; t < streams; t++) {
        es_state_destroy(batched[t]);
        es_state_destroy(alone[t]);
    }
    free(batched);
    free(alone);
    free(due_states);
    free(stream_of);
    free(frames);
    free(inputs);
    free(outputs);
}

/* A pattern that leaves out different streams at different steps, and some
 * streams at many. */
static int due_unevenly(int t, int step) {
    return (t * 7 + step * 3) % 5 != 0 || t % 11 == 0;
}

static int never(int t, int step) {
    (void)t;
    (void)step;
    return 0;
}

/* Stream t joins at step t % 4; every third is reset at step 6: fresh
 * states step beside old ones (and, behind a STACK, states at every phase
 * of their group). */
static int due_once_joined(int t, int step) {
    return t % 4 <= step;
}

static int every_third_at_6(int t, int step) {
    return step == 6 && t % 3 == 0;
}

/* STREAMS streams for STEPS steps, due unevenly. */
static void check_batch_equals_alone(es_model *m, uint64_t seed) {
    const schedule plan = {STREAMS, STEPS, due_unevenly, never};
    check_schedule(m, &plan, seed);
}

/* Batches that reach exactly `count` streams, streams joining and reset. */
static void check_batches_of(es_model *m, int count, uint64_t seed) {
    const schedule plan = {count, 10, due_once_joined, every_third_at_6};
    check_schedule(m, &plan, seed);
}

static void test_int8_batch_equals_stepping_alone_bitwise(void **state) {
    (void)state;
    const int counts[] = {1, 3, ES_BLOCK_FRAMES + 1, ES_BATCH_STREAMS, ES_BATCH_STREAMS + 1};
    es_error err;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        es_model *m = test_make_model(INPUTS, cases[c].layers, cases[c].count, 700 + c);
        assert_non_null(m);
        assert_int_equal(es_model_quantise(m, &err), ES_RNN_OK);
        assert_true(es_model_is_quantised(m));
        int kernel_sets = 0;
        for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
            if (es_model_use_isa(m, all_isas[i]) != ES_RNN_OK) continue;
            kernel_sets++;
            check_batch_equals_alone(m, 800 + c);
            for (size_t n = 0; n < sizeof counts / sizeof counts[0]; n++)
                check_batches_of(m, counts[n], 900 + c * 10 + n);
        }
        assert_true(kernel_sets >= 1); /* the generic one at least */
        es_model_destroy(m);
    }
}

static void test_batch_equals_stepping_alone_bitwise(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        es_model *m = test_make_model(INPUTS, cases[c].layers, cases[c].count, 500 + c);
        assert_non_null(m);
        for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
            if (es_model_use_isa(m, all_isas[i]) != ES_RNN_OK) continue;
            check_batch_equals_alone(m, 600 + c);
        }
        es_model_destroy(m);
    }
}

/* The batched kernels against their single-stream twins on odd shapes: 1..9
 * panels (lone ones after groups of four), 1..9 streams, columns from an
 * offset, outputs written over the biases. */
static void test_kernels_match_single_stream(void **state) {
    (void)state;
    enum { COLS = 23, MAX_PANELS = 9, MAX_STREAMS = 9 };
    const size_t stride = (size_t)COLS * ES_PANEL_ROWS;
    float *panels = test_random_inputs(MAX_PANELS * COLS, ES_PANEL_ROWS, 7);
    float *v = test_random_inputs(MAX_STREAMS, COLS, 8);
    float *bias = test_random_inputs(MAX_STREAMS, MAX_PANELS * ES_PANEL_ROWS, 9);
    float *y = malloc(sizeof(float) * MAX_STREAMS * MAX_PANELS * ES_PANEL_ROWS);
    float want[MAX_PANELS * ES_PANEL_ROWS];
    const float *vs[MAX_STREAMS], *biases[MAX_STREAMS];
    float *ys[MAX_STREAMS];
    for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
        const es_kernels *k = es_kernels_for(all_isas[i]);
        if (!k) continue;
        const es_batch_kernels *bk = es_batch_kernels_for(k);
        if (!bk) continue; /* es_model_step_batch steps such models stream by stream */
        for (int panel_count = 1; panel_count <= MAX_PANELS; panel_count++) {
            for (int count = 1; count <= MAX_STREAMS; count++) {
                for (int t = 0; t < count; t++) {
                    vs[t] = v + (size_t)t * COLS;
                    biases[t] = bias + (size_t)t * MAX_PANELS * ES_PANEL_ROWS;
                    ys[t] = y + (size_t)t * MAX_PANELS * ES_PANEL_ROWS;
                }
                bk->matvec(panels, stride, panel_count, 2, COLS, vs, biases, ys, count);
                for (int t = 0; t < count; t++) {
                    k->matvec(panels, stride, panel_count, 2, COLS, vs[t], biases[t], want);
                    assert_memory_equal(ys[t], want, sizeof(float) * panel_count * ES_PANEL_ROWS);
                }
                bk->matmat(panels, stride, panel_count, 2, COLS, vs, biases, ys, count);
                for (int t = 0; t < count; t++) {
                    k->matmat(panels, stride, panel_count, 2, COLS, vs[t], COLS, 1, biases[t], want,
                              0);
                    assert_memory_equal(ys[t], want, sizeof(float) * panel_count * ES_PANEL_ROWS);
                }
                /* In place: the result replaces the bias it started from. */
                memcpy(y, bias, sizeof(float) * MAX_STREAMS * MAX_PANELS * ES_PANEL_ROWS);
                bk->matvec(panels, stride, panel_count, 0, COLS, vs, (const float *const *)ys, ys,
                           count);
                for (int t = 0; t < count; t++) {
                    k->matvec(panels, stride, panel_count, 0, COLS, vs[t], biases[t], want);
                    assert_memory_equal(ys[t], want, sizeof(float) * panel_count * ES_PANEL_ROWS);
                }
            }
        }
    }
    free(panels);
    free(v);
    free(bias);
    free(y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_equals_stepping_alone_bitwise),
        cmocka_unit_test(test_int8_batch_equals_stepping_alone_bitwise),
        cmocka_unit_test(test_kernels_match_single_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
