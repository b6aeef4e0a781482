/*
 * Stream states: stepping equals the whole-sequence forward bit for bit, and
 * so does stepping blocks of frames of any size,
 * states sharing one model do not disturb each other, reset starts afresh,
 * and a refresh after the trainer changed parameters is seen by live states.
 * Behind a STACK the rest of the model steps once per group of frames and
 * its outputs hold in between.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels.h"
#include "test_infer_util.h"

#define FRAMES 40

static const test_layer vad_like[] = TEST_VAD_LIKE;
static const test_layer kws_like[] = TEST_KWS_LIKE;
static const test_layer lstm_rnn[] = TEST_LSTM_RNN;

static const test_layer stacked[] = TEST_STACKED_40;

static const model_case cases[] = {{vad_like, 3}, {kws_like, 3}, {lstm_rnn, 3}, {stacked, 3}};
static const es_isa all_isas[] = {ES_ISA_GENERIC, ES_ISA_AVX2, ES_ISA_AVX512, ES_ISA_NEON};

/* Steps a fresh (or given) state over the inputs; frames x outputs. */
static float *step_all(es_state *s, const es_model *m, const float *inputs, int frames) {
    int in = es_model_input_size(m), out = es_model_output_size(m);
    float *y = malloc(sizeof(float) * (size_t)frames * out);
    for (int t = 0; t < frames; t++)
        memcpy(y + (size_t)t * out, es_state_step(s, inputs + (size_t)t * in), sizeof(float) * out);
    return y;
}

static void test_step_equals_sequence_bitwise(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        es_model *m = test_make_model(40, cases[c].layers, cases[c].count, 300 + c);
        assert_non_null(m);
        float *inputs = test_random_inputs(FRAMES, 40, 400 + c);
        size_t out_floats = (size_t)FRAMES * es_model_output_size(m);
        for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
            if (es_model_use_isa(m, all_isas[i]) != ES_RNN_OK) continue;
            es_state *s = NULL;
            assert_int_equal(es_state_create(m, &s), ES_RNN_OK);
            float *stepped = step_all(s, m, inputs, FRAMES);
            float *whole = malloc(sizeof(float) * out_floats);
            assert_int_equal(es_model_forward_sequence(m, inputs, FRAMES, whole), ES_RNN_OK);
            assert_memory_equal(stepped, whole, sizeof(float) * out_floats);
            free(stepped);
            free(whole);
            es_state_destroy(s);
        }
        free(inputs);
        es_model_destroy(m);
    }
}

/* Blocks of 1, over ES_BLOCK_FRAMES, odd and split sizes: the offline
 * pipeline's blocks must give what live stepping gives, to the bit. */
static void test_step_frames_equals_step_bitwise(void **state) {
    (void)state;
    const int blocks[] = {1, ES_BLOCK_FRAMES + 1, 3, FRAMES - ES_BLOCK_FRAMES - 5};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        es_model *m = test_make_model(40, cases[c].layers, cases[c].count, 310 + c);
        assert_non_null(m);
        float *inputs = test_random_inputs(FRAMES, 40, 410 + c);
        int out = es_model_output_size(m);
        for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
            if (es_model_use_isa(m, all_isas[i]) != ES_RNN_OK) continue;
            es_state *s = NULL;
            assert_int_equal(es_state_create(m, &s), ES_RNN_OK);
            float *stepped = step_all(s, m, inputs, FRAMES);
            es_state_reset(s);
            float *in_blocks = malloc(sizeof(float) * (size_t)FRAMES * out);
            int done = 0;
            for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
                es_state_step_frames(s, inputs + (size_t)done * 40, blocks[b],
                                     in_blocks + (size_t)done * out);
                done += blocks[b];
            }
            assert_int_equal(done, FRAMES);
            assert_memory_equal(stepped, in_blocks, sizeof(float) * (size_t)FRAMES * out);
            free(stepped);
            free(in_blocks);
            es_state_destroy(s);
        }
        free(inputs);
        es_model_destroy(m);
    }
}

/* [STACK K, rest...] is the rest run on K frames side by side, once per
 * group: its outputs on a group's last frame, held until the next group's,
 * zeros before the first. Checked on enough frames for the offline path to
 * take several blocks of groups at once. */
static void test_stack_steps_the_rest_once_per_group(void **state) {
    (void)state;
    enum { K = 3, STEPS = 2 * ES_BLOCK_FRAMES + 3, FRAMES_IN = K * STEPS + 2, OUT = 5 };
    es_model *m = test_make_model(40, stacked, 3, 330);
    assert_non_null(m);
    es_model *rest = test_make_model(K * 40, stacked + 1, 2, 331);
    assert_non_null(rest);
    assert_int_equal(es_model_param_count(m), es_model_param_count(rest));
    /* a STACK has no weights and draws nothing from the seed */
    es_model_init_weights(m, 7);
    es_model_init_weights(rest, 7);
    assert_memory_equal(es_model_params(m), es_model_params(rest),
                        sizeof(float) * es_model_param_count(m));
    test_randomise_params(m, 333, 0.2f);
    memcpy(es_model_params(rest), es_model_params(m), sizeof(float) * es_model_param_count(m));
    assert_int_equal(es_model_refresh(rest), ES_RNN_OK);
    assert_int_equal(es_model_frame_stride(m), K);
    assert_int_equal(es_model_frame_stride(rest), 1);
    assert_int_equal(es_model_flops_per_frame(m), (es_model_flops_per_frame(rest) + K - 1) / K);

    float *inputs = test_random_inputs(FRAMES_IN, 40, 332);
    float *grouped = malloc(sizeof(float) * STEPS * OUT);
    /* K frames side by side are one row of the frame-major inputs */
    assert_int_equal(es_model_forward_sequence(rest, inputs, STEPS, grouped), ES_RNN_OK);
    float *held = calloc((size_t)FRAMES_IN * OUT, sizeof(float));
    for (int f = K - 1; f < FRAMES_IN; f++)
        memcpy(held + f * OUT, grouped + ((f + 1) / K - 1) * OUT, sizeof(float) * OUT);

    float *whole = malloc(sizeof(float) * FRAMES_IN * OUT);
    assert_int_equal(es_model_forward_sequence(m, inputs, FRAMES_IN, whole), ES_RNN_OK);
    assert_memory_equal(whole, held, sizeof(float) * FRAMES_IN * OUT);
    es_state *s = NULL;
    assert_int_equal(es_state_create(m, &s), ES_RNN_OK);
    es_state_step_frames(s, inputs, FRAMES_IN, whole);
    assert_memory_equal(whole, held, sizeof(float) * FRAMES_IN * OUT);
    es_state_reset(s); /* a group half gathered is dropped too */
    float *stepped = step_all(s, m, inputs, FRAMES_IN);
    assert_memory_equal(stepped, held, sizeof(float) * FRAMES_IN * OUT);

    free(stepped);
    free(whole);
    free(held);
    free(grouped);
    free(inputs);
    es_state_destroy(s);
    es_model_destroy(rest);
    es_model_destroy(m);
}

/* A STACK changes the rate of every layer after it: only the first may be one,
 * and its units are its kernel times its input. */
static void test_stack_only_first_and_whole(void **state) {
    (void)state;
    es_model *m = NULL;
    assert_int_equal(es_model_create(&test_features, 40, &m), ES_RNN_OK);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_STACK, 81, ES_ACT_LINEAR, 2), ES_RNN_ERR_ARG);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_STACK, 80, ES_ACT_LINEAR, 0), ES_RNN_ERR_ARG);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_STACK, 80, ES_ACT_LINEAR, 2), ES_RNN_OK);
    assert_int_equal(es_model_param_count(m), 0);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_STACK, 160, ES_ACT_LINEAR, 2), ES_RNN_ERR_ARG);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_GRU, 8, ES_ACT_TANH, 0), ES_RNN_OK);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_STACK, 16, ES_ACT_LINEAR, 2), ES_RNN_ERR_ARG);
    assert_string_equal(es_layer_type_name(es_model_layer_type(m, 0)), "STACK");
    es_model_destroy(m);
}

static void test_states_are_independent(void **state) {
    (void)state;
    es_model *m = test_make_model(40, kws_like, 3, 500);
    assert_non_null(m);
    enum { STREAMS = 4 };
    int out = es_model_output_size(m);
    float *inputs[STREAMS], *alone[STREAMS];
    es_state *s[STREAMS];
    for (int k = 0; k < STREAMS; k++) {
        inputs[k] = test_random_inputs(FRAMES, 40, 600 + (uint64_t)k);
        assert_int_equal(es_state_create(m, &s[k]), ES_RNN_OK);
        alone[k] = step_all(s[k], m, inputs[k], FRAMES);
        es_state_reset(s[k]);
    }
    /* Interleaved, one frame of each stream in turn: same results. */
    for (int t = 0; t < FRAMES; t++) {
        for (int k = 0; k < STREAMS; k++) {
            const float *y = es_state_step(s[k], inputs[k] + (size_t)t * 40);
            assert_memory_equal(y, alone[k] + (size_t)t * out, sizeof(float) * out);
        }
    }
    /* The streams differ, so sharing state would have shown. */
    assert_memory_not_equal(alone[0], alone[1], sizeof(float) * out * FRAMES);
    for (int k = 0; k < STREAMS; k++) {
        es_state_destroy(s[k]);
        free(inputs[k]);
        free(alone[k]);
    }
    es_model_destroy(m);
}

static void test_reset_restores_initial_behaviour(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        es_model *m = test_make_model(40, cases[c].layers, cases[c].count, 700 + c);
        assert_non_null(m);
        float *inputs = test_random_inputs(FRAMES, 40, 800 + c);
        size_t bytes = sizeof(float) * (size_t)FRAMES * es_model_output_size(m);
        es_state *s = NULL;
        assert_int_equal(es_state_create(m, &s), ES_RNN_OK);
        float *first = step_all(s, m, inputs, FRAMES);
        float *carried = step_all(s, m, inputs, FRAMES);
        /* Without a reset the hidden state carries over and changes outputs. */
        assert_memory_not_equal(first, carried, bytes);
        es_state_reset(s);
        float *again = step_all(s, m, inputs, FRAMES);
        assert_memory_equal(first, again, bytes);
        free(first);
        free(carried);
        free(again);
        es_state_destroy(s);
        free(inputs);
        es_model_destroy(m);
    }
}

static void test_bidirectional_cannot_stream(void **state) {
    (void)state;
    const test_layer layers[] = {{ES_LAYER_BIDIR_GRU, 8, ES_ACT_TANH, 0},
                                 {ES_LAYER_DENSE, 2, ES_ACT_SOFTMAX, 0}};
    es_model *m = test_make_model(40, layers, 2, 900);
    assert_non_null(m);
    assert_false(es_model_is_streaming(m));
    es_state *s = (es_state *)&s;
    assert_int_equal(es_state_create(m, &s), ES_RNN_ERR_STREAMING);
    assert_null(s);
    float *inputs = test_random_inputs(FRAMES, 40, 901);
    float outputs[FRAMES * 2];
    assert_int_equal(es_model_forward_sequence(m, inputs, FRAMES, outputs), ES_RNN_OK);
    /* The backward pass makes early frames depend on later ones. */
    float changed[FRAMES * 2];
    inputs[3 * 40] += 1.0f;
    assert_int_equal(es_model_forward_sequence(m, inputs, FRAMES, changed), ES_RNN_OK);
    assert_true(outputs[0] != changed[0]);
    free(inputs);
    es_model_destroy(m);
}

static void test_refresh_reaches_live_states(void **state) {
    (void)state;
    es_model *m = test_make_model(40, vad_like, 3, 1000);
    assert_non_null(m);
    float *inputs = test_random_inputs(FRAMES, 40, 1001);
    es_state *s = NULL;
    assert_int_equal(es_state_create(m, &s), ES_RNN_OK);
    float *before = step_all(s, m, inputs, FRAMES);
    /* What the trainer does: change params in place, then refresh. */
    float *p = es_model_params(m);
    for (size_t i = 0; i < es_model_param_count(m); i++)
        p[i] *= 0.5f;
    assert_int_equal(es_model_refresh(m), ES_RNN_OK);
    es_state_reset(s);
    float *after = step_all(s, m, inputs, FRAMES);
    float *expected = malloc(sizeof(float) * FRAMES);
    assert_int_equal(es_model_forward_sequence(m, inputs, FRAMES, expected), ES_RNN_OK);
    assert_memory_equal(after, expected, sizeof(float) * FRAMES);
    assert_memory_not_equal(before, after, sizeof(float) * FRAMES);
    free(before);
    free(after);
    free(expected);
    free(inputs);
    es_state_destroy(s);
    es_model_destroy(m);
}

static void test_init_weights_is_deterministic(void **state) {
    (void)state;
    es_model *a = test_make_model(40, lstm_rnn, 3, 1);
    es_model *b = test_make_model(40, lstm_rnn, 3, 2);
    assert_non_null(a);
    assert_non_null(b);
    es_model_init_weights(a, 42);
    es_model_init_weights(b, 42);
    size_t bytes = sizeof(float) * es_model_param_count(a);
    assert_memory_equal(es_model_params(a), es_model_params(b), bytes);
    es_model_init_weights(b, 43);
    assert_memory_not_equal(es_model_params(a), es_model_params(b), bytes);
    /* LSTM forget-gate bias starts at 1, the other biases at 0. */
    const float *p = es_model_params(a);
    size_t lstm_bias = 4 * 33 * 40 + 4 * 33 * 33;
    assert_true(p[lstm_bias] == 0.0f);
    assert_true(p[lstm_bias + 33] == 1.0f);
    assert_true(p[lstm_bias + 66] == 0.0f);
    /* Recurrent blocks are orthonormal: U_i U_i^T = I. */
    const float *u_i = p + 4 * 33 * 40;
    for (int r = 0; r < 33; r++) {
        for (int q = 0; q < 33; q++) {
            double dot = 0;
            for (int k = 0; k < 33; k++)
                dot += (double)u_i[r * 33 + k] * u_i[q * 33 + k];
            assert_true(fabs(dot - (r == q ? 1.0 : 0.0)) < 1e-4);
        }
    }
    es_model_destroy(a);
    es_model_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_equals_sequence_bitwise),
        cmocka_unit_test(test_step_frames_equals_step_bitwise),
        cmocka_unit_test(test_stack_steps_the_rest_once_per_group),
        cmocka_unit_test(test_stack_only_first_and_whole),
        cmocka_unit_test(test_states_are_independent),
        cmocka_unit_test(test_reset_restores_initial_behaviour),
        cmocka_unit_test(test_bidirectional_cannot_stream),
        cmocka_unit_test(test_refresh_reaches_live_states),
        cmocka_unit_test(test_init_weights_is_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
