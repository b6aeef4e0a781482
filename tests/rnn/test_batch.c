/*
 * Batched steps (es_model_step_batch): every stream's outputs equal, bit for
 * bit, what stepping it alone gives, on every kernel set this CPU runs,
 * whatever the number of streams (across the blocks the batch is cut into),
 * which of them have a frame due at a step, and the layer types and sizes
 * (lone panels, CONV1D windows, LSTM cells, a STACK's gathering).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch_kernels.h"
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

/* Whether stream t has a frame due at `step`: a pattern that leaves out
 * different streams at different steps, and some streams at many. */
static int due(int t, int step) {
    return (t * 7 + step * 3) % 5 != 0 || t % 11 == 0;
}

/* Steps STREAMS streams for STEPS steps, each due stream's frame batched
 * with the others due then, and the same frames through lone states;
 * compares every output. */
static void check_batch_equals_alone(es_model *m, uint64_t seed) {
    const int in = es_model_input_size(m), out = es_model_output_size(m);
    es_state *batched[STREAMS], *alone[STREAMS], *due_states[STREAMS];
    for (int t = 0; t < STREAMS; t++) {
        assert_int_equal(es_state_create(m, &batched[t]), ES_RNN_OK);
        assert_int_equal(es_state_create(m, &alone[t]), ES_RNN_OK);
    }
    float *frames = test_random_inputs(STREAMS * STEPS, in, seed);
    float *inputs = malloc(sizeof(float) * STREAMS * (size_t)in);
    float *outputs = malloc(sizeof(float) * STREAMS * (size_t)out);
    int stream_of[STREAMS];
    for (int step = 0; step < STEPS; step++) {
        int count = 0;
        for (int t = 0; t < STREAMS; t++) {
            if (!due(t, step)) continue;
            memcpy(inputs + (size_t)count * in, frames + ((size_t)step * STREAMS + t) * in,
                   sizeof(float) * (size_t)in);
            due_states[count] = batched[t];
            stream_of[count++] = t;
        }
        es_model_step_batch(m, due_states, inputs, outputs, count);
        for (int i = 0; i < count; i++) {
            const float *want = es_state_step(alone[stream_of[i]], inputs + (size_t)i * in);
            assert_memory_equal(outputs + (size_t)i * out, want, sizeof(float) * (size_t)out);
        }
    }
    for (int t = 0; t < STREAMS; t++) {
        es_state_destroy(batched[t]);
        es_state_destroy(alone[t]);
    }
    free(frames);
    free(inputs);
    free(outputs);
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
        cmocka_unit_test(test_kernels_match_single_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
