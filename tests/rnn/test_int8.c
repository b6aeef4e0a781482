/*
 * int8 inference: every int8 kernel set this CPU runs gives exactly the
 * portable kernel's integer sums; quantised layers of every type stay close
 * to their float originals and agree across kernel sets; quantised models
 * survive a save and load (format version 4) bit for bit; and the shipped
 * models, quantised, keep their posteriors within a stated tolerance.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "builtin.h"
#include "kernels_int8.h"
#include "test_infer_util.h"

#define FRAMES 40

/* ---- kernels ---------------------------------------------------------------------- */

static const es_isa int8_isas[] = {ES_ISA_AVX2, ES_ISA_AVX512, ES_ISA_NEON};

static void fill_int8(int8_t *x, size_t n, uint64_t *state, int extreme) {
    for (size_t i = 0; i < n; i++)
        x[i] = extreme ? (int8_t)((test_random_next(state) & 1) ? 127 : -127)
                       : (int8_t)((int)(test_random_next(state) % 255) - 127);
}

/* Panels x groups x vectors of random (or all +-127) values: each set's sums
 * equal the generic kernel's, which equal a plain sum over the layout. */
static void check_kernels(int panel_count, int groups, int count, int extreme, uint64_t seed) {
    size_t stride = (size_t)groups * ES_INT8_GROUP_BYTES;
    size_t v_stride = (size_t)groups * ES_INT8_GROUP + 4; /* not a multiple of 64 */
    size_t y_stride = (size_t)panel_count * ES_PANEL_ROWS + 3;
    int8_t *w = malloc(stride * (size_t)panel_count);
    int8_t *v = malloc(v_stride * (size_t)count);
    int32_t *want = calloc(y_stride * (size_t)count, sizeof *want);
    int32_t *got = calloc(y_stride * (size_t)count, sizeof *got);
    uint64_t state = seed;
    fill_int8(w, stride * (size_t)panel_count, &state, extreme);
    fill_int8(v, v_stride * (size_t)count, &state, extreme);
    es_int8_kernels_generic.matmat(w, stride, panel_count, groups, v, v_stride, count, want,
                                   y_stride);
    for (int t = 0; t < count; t++)
        for (int p = 0; p < panel_count; p++)
            for (int r = 0; r < ES_PANEL_ROWS; r++) {
                int64_t sum = 0;
                for (int c = 0; c < groups * ES_INT8_GROUP; c++)
                    sum += (int64_t)w[(size_t)p * stride + (size_t)(c / 4) * 64 + r * 4 + c % 4] *
                           v[(size_t)t * v_stride + c];
                assert_int_equal(want[(size_t)t * y_stride + (size_t)p * 16 + r], sum);
            }
    for (size_t i = 0; i < sizeof int8_isas / sizeof int8_isas[0]; i++) {
        const es_int8_kernels *k = es_int8_kernels_for(int8_isas[i]);
        if (!k) continue; /* this CPU lacks it */
        memset(got, 0, y_stride * (size_t)count * sizeof *got);
        k->matmat(w, stride, panel_count, groups, v, v_stride, count, got, y_stride);
        for (int t = 0; t < count; t++)
            for (int j = 0; j < panel_count * ES_PANEL_ROWS; j++)
                if (got[(size_t)t * y_stride + j] != want[(size_t)t * y_stride + j])
                    fail_msg("%s: %d panels, %d groups, vector %d, row %d: %d, generic %d", k->name,
                             panel_count, groups, t, j, got[(size_t)t * y_stride + j],
                             want[(size_t)t * y_stride + j]);
    }
    free(w);
    free(v);
    free(want);
    free(got);
}

static void test_kernels_equal_generic(void **state) {
    (void)state;
    const int panels[] = {1, 2, 3, 4, 5, 8, 9, 24};
    const int groups[] = {1, 2, 10, 32, 43};
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof panels / sizeof panels[0]; i++)
        for (size_t j = 0; j < sizeof groups / sizeof groups[0]; j++)
            for (int extreme = 0; extreme <= 1; extreme++, seed++)
                check_kernels(panels[i], groups[j], 1 + (int)(seed % 5), extreme, seed);
}

static void test_kernel_choice(void **state) {
    (void)state;
    assert_non_null(es_int8_kernels_for(ES_ISA_AUTO));
    assert_ptr_equal(es_int8_kernels_for(ES_ISA_GENERIC), &es_int8_kernels_generic);
#ifdef ES_HAVE_X86_KERNELS
    assert_null(es_int8_kernels_for(ES_ISA_NEON));
#endif
}

static void test_vector_quantisation(void **state) {
    (void)state;
    const float v[6] = {0.5f, -1.0f, 0.25f, 0.0f, 1.0f / 254.0f, -0.999f};
    int8_t q[8];
    memset(q, 55, sizeof q);
    float scale = es_int8_quantise_vector(v, 6, q);
    assert_float_equal(scale, 1.0f / 127.0f, 1e-9);
    const int8_t want[8] = {64, -127, 32, 0, 1, -127, 0, 0}; /* 63.5 rounds away from 0 */
    assert_memory_equal(q, want, sizeof want);
    const float zeros[3] = {0};
    assert_float_equal(es_int8_quantise_vector(zeros, 3, q), 0.0f, 0);
    assert_int_equal(es_int8_weight(1e9f, 1.0f), 127);
    assert_int_equal(es_int8_weight(-1e9f, 1.0f), -127);
    assert_int_equal(es_int8_weight(3.0f, 0.0f), 0);
}

/* Every kernel set's vectorised quantisation gives the reference's bytes and
 * scale: lengths around each set's width, values on rounding ties (k + 0.5
 * steps of the scale), zeros of both signs, and vectors of all zeros. */
static void test_quantisation_kernels_equal_reference(void **state) {
    (void)state;
    enum { longest = 203 };
    float v[longest];
    int8_t want[longest + 4], got[longest + 4];
    uint64_t random = 7;
    for (int n = 0; n <= longest; n++) {
        for (int kind = 0; kind < 3; kind++) {
            for (int i = 0; i < n; i++) {
                int step = (int)(test_random_next(&random) % 255) - 127;
                v[i] = kind == 0   ? (float)step / 127.0f * 3.0f
                       : kind == 1 ? ((float)step + 0.5f) / 127.5f * -0.75f
                                   : (i % 2 ? -0.0f : 0.0f);
            }
            if (kind == 1 && n > 0) v[n - 1] = 0.75f; /* the largest magnitude last */
            memset(want, 99, sizeof want);
            float want_scale = es_int8_quantise_vector(v, n, want);
            size_t bytes = (size_t)es_int8_groups(n) * ES_INT8_GROUP;
            for (size_t i = 0; i < sizeof int8_isas / sizeof int8_isas[0]; i++) {
                const es_int8_kernels *k = es_int8_kernels_for(int8_isas[i]);
                if (!k) continue; /* this CPU lacks it */
                memset(got, 99, sizeof got);
                float got_scale = k->quantise(v, n, got);
                if (memcmp(&got_scale, &want_scale, sizeof got_scale) != 0 ||
                    memcmp(got, want, bytes) != 0 || got[bytes] != 99)
                    fail_msg("%s: quantisation of %d values (kind %d) differs", k->name, n, kind);
            }
        }
    }
}

/* Every kernel set's rescale gives the generic set's floats to the bit:
 * lengths around each set's width, with and without a base, in place. */
static void test_rescale_kernels_equal_generic(void **state) {
    (void)state;
    enum { longest = 77 };
    int32_t sums[longest];
    float scales[longest], base[longest], want[longest], got[longest];
    uint64_t random = 11;
    for (int i = 0; i < longest; i++) {
        sums[i] = (int32_t)(test_random_next(&random) % 2000001) - 1000000;
        scales[i] = (float)(test_random_next(&random) % 1000 + 1) * 1.37e-5f;
        base[i] = (float)((int)(test_random_next(&random) % 2001) - 1000) * 0.0031f;
    }
    for (int rows = 0; rows <= longest; rows++)
        for (int with_base = 0; with_base < 3; with_base++) { /* none, base, y itself */
            memcpy(want, base, sizeof want);
            es_int8_kernels_generic.rescale(sums, scales, 0.0173f,
                                            with_base == 1   ? base
                                            : with_base == 2 ? want
                                                             : NULL,
                                            rows, want);
            for (size_t i = 0; i < sizeof int8_isas / sizeof int8_isas[0]; i++) {
                const es_int8_kernels *k = es_int8_kernels_for(int8_isas[i]);
                if (!k) continue;
                memcpy(got, base, sizeof got);
                k->rescale(sums, scales, 0.0173f,
                           with_base == 1   ? base
                           : with_base == 2 ? got
                                            : NULL,
                           rows, got);
                if (memcmp(got, want, sizeof got) != 0)
                    fail_msg("%s: rescale of %d rows (base %d) differs", k->name, rows, with_base);
            }
        }
}

/* ---- layers ----------------------------------------------------------------------- */

static float *run_model(es_model *m, const float *inputs, int frames) {
    int out = es_model_output_size(m);
    float *y = malloc(sizeof(float) * (size_t)frames * (size_t)out);
    assert_int_equal(es_model_forward_sequence(m, inputs, frames, y), ES_RNN_OK);
    return y;
}

static double max_difference(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

/* The quantised model against its float original (within `tolerance`), on
 * every int8 kernel set against the generic one (within float rounding of
 * what surrounds the exact integer sums), stepping against the sequence. */
static void check_quantised(int input_size, const test_layer *layers, int count, double tolerance,
                            uint64_t seed) {
    es_model *m = test_make_model(input_size, layers, count, seed);
    assert_non_null(m);
    float *inputs = test_random_inputs(FRAMES, input_size, seed + 7);
    size_t n = (size_t)FRAMES * (size_t)es_model_output_size(m);
    float *original = run_model(m, inputs, FRAMES);
    es_error err;
    assert_int_equal(es_model_quantise(m, &err), ES_RNN_OK);
    assert_true(es_model_is_quantised(m));
    assert_int_equal(es_model_use_isa(m, ES_ISA_GENERIC), ES_RNN_OK);
    float *generic = run_model(m, inputs, FRAMES);
    double error = max_difference(original, generic, n);
    if (!(error <= tolerance))
        fail_msg("%s, %d layers: int8 differs from float by %g (> %g)",
                 es_layer_type_name(layers[count - 1].type), count, error, tolerance);
    const es_isa isas[] = {ES_ISA_AVX2, ES_ISA_AVX512, ES_ISA_NEON};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (es_model_use_isa(m, isas[i]) != ES_RNN_OK) continue;
        float *got = run_model(m, inputs, FRAMES);
        if (max_difference(got, generic, n) > 1e-3)
            fail_msg("%s: %g from the generic int8 kernel", es_model_kernel_name(m),
                     max_difference(got, generic, n));
        if (es_model_is_streaming(m)) {
            es_state *s = NULL;
            assert_int_equal(es_state_create(m, &s), ES_RNN_OK);
            float *stepped = malloc(sizeof(float) * n);
            es_state_step_frames(s, inputs, FRAMES, stepped);
            assert_memory_equal(stepped, got, sizeof(float) * n); /* as in float: bit-identical */
            free(stepped);
            es_state_destroy(s);
        }
        free(got);
    }
    free(generic);
    free(original);
    free(inputs);
    es_model_destroy(m);
}

static void test_every_layer_type(void **state) {
    (void)state;
    test_layer dense[] = {{ES_LAYER_DENSE, 19, ES_ACT_TANH, 0}};
    check_quantised(37, dense, 1, 0.02, 1);
    test_layer conv[] = {{ES_LAYER_CONV1D, 17, ES_ACT_RELU, 3},
                         {ES_LAYER_DENSE, 5, ES_ACT_SIGMOID, 0}};
    check_quantised(40, conv, 2, 0.02, 2);
    test_layer rnn[] = {{ES_LAYER_RNN, 21, ES_ACT_TANH, 0}};
    check_quantised(13, rnn, 1, 0.03, 3);
    test_layer gru[] = {{ES_LAYER_GRU, 48, ES_ACT_TANH, 0}, {ES_LAYER_GRU, 33, ES_ACT_TANH, 0}};
    check_quantised(40, gru, 2, 0.03, 4);
    test_layer lstm[] = {{ES_LAYER_LSTM, 35, ES_ACT_TANH, 0}};
    check_quantised(9, lstm, 1, 0.03, 5);
    test_layer bidir[] = {{ES_LAYER_BIDIR_GRU, 20, ES_ACT_TANH, 0},
                          {ES_LAYER_BIDIR_LSTM, 7, ES_ACT_TANH, 0}};
    check_quantised(6, bidir, 2, 0.03, 6);
    test_layer stack[] = {{ES_LAYER_STACK, 80, ES_ACT_LINEAR, 2},
                          {ES_LAYER_GRU, 30, ES_ACT_TANH, 0},
                          {ES_LAYER_DENSE, 4, ES_ACT_SOFTMAX, 0}};
    check_quantised(40, stack, 3, 0.02, 7);
}

/* ---- files ------------------------------------------------------------------------ */

static void test_save_and_load(void **state) {
    (void)state;
    test_layer layers[] = {{ES_LAYER_CONV1D, 16, ES_ACT_RELU, 3},
                           {ES_LAYER_GRU, 24, ES_ACT_TANH, 0},
                           {ES_LAYER_DENSE, 3, ES_ACT_SOFTMAX, 0}};
    es_model *m = test_make_model(10, layers, 3, 11);
    const char *labels[] = {"a", "b", "c"};
    assert_int_equal(es_model_set_labels(m, 3, labels), ES_RNN_OK);
    es_error err;
    assert_int_equal(es_model_quantise(m, &err), ES_RNN_OK);
    char path[] = "/tmp/earshot-test-int8-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(es_model_save(m, path, &err), ES_RNN_OK);
    es_model *loaded = NULL;
    if (es_model_load_file(path, &loaded, &err) != ES_RNN_OK) fail_msg("load: %s", err.why);
    FILE *file = fopen(path, "rb");
    unsigned char head[8];
    assert_int_equal(fread(head, 1, 8, file), 8);
    fclose(file);
    unlink(path);
    assert_int_equal(head[4], 4); /* format version 4 */
    assert_true(es_model_is_quantised(loaded));
    assert_null(es_model_thresholds(loaded)); /* version 4's zeros stand for none */
    assert_null(es_model_smoothing(loaded));
    assert_memory_equal(es_model_params(loaded), es_model_params(m),
                        es_model_param_count(m) * sizeof(float));
    float *inputs = test_random_inputs(FRAMES, 10, 3);
    float *a = run_model(m, inputs, FRAMES), *b = run_model(loaded, inputs, FRAMES);
    assert_memory_equal(a, b, sizeof(float) * FRAMES * 3);
    /* A quarter of the bytes of the float matrices, give or take the scales. */
    free(a);
    free(b);
    free(inputs);
    es_model_destroy(loaded);
    es_model_destroy(m);
}

/* ---- the shipped models ------------------------------------------------------------ */

/* Log-mel-like inputs: a slow random walk per band around zero (the
 * front end's running mean), +-6. */
static float *speechlike_inputs(int frames, int size, uint64_t seed) {
    float *x = test_random_inputs(frames, size, seed);
    for (int t = 1; t < frames; t++)
        for (int i = 0; i < size; i++)
            x[(size_t)t * size + i] =
                0.9f * x[(size_t)(t - 1) * size + i] + x[(size_t)t * size + i];
    return x;
}

/* The posteriors of a shipped model on the int8 kernels stay within
 * `max_error` of the same weights' on the float kernels on every frame, and
 * within `mean_error` on average: the cost of quantising the vectors. (The
 * cost of quantising the weights is measured on real speech: README,
 * "int8 inference".) */
static void check_builtin(const char *name, double max_error, double mean_error) {
    size_t size = 0;
    const unsigned char *bytes = es_builtin_model(name, &size);
    es_model *m = NULL;
    es_error err;
    assert_int_equal(es_model_load_memory(bytes, size, &m, &err), ES_RNN_OK);
    assert_int_equal(es_model_dequantise(m), ES_RNN_OK); /* shipped int8: its values as floats */
    assert_false(es_model_is_quantised(m));
    const int frames = 2000, in = es_model_input_size(m), out = es_model_output_size(m);
    float *inputs = speechlike_inputs(frames, in, 5);
    float *original = run_model(m, inputs, frames);
    assert_int_equal(es_model_quantise(m, &err), ES_RNN_OK);
    float *quantised = run_model(m, inputs, frames);
    double worst = 0, total = 0;
    for (size_t i = 0; i < (size_t)frames * out; i++) {
        double d = fabs((double)original[i] - quantised[i]);
        worst = fmax(worst, d);
        total += d;
    }
    double mean = total / ((double)frames * out);
    print_message("%s: posteriors of the int8 model within %.4f (mean %.6f) of float\n", name,
                  worst, mean);
    assert_true(worst <= max_error);
    assert_true(mean <= mean_error);
    free(inputs);
    free(original);
    free(quantised);
    es_model_destroy(m);
}

static void test_builtin_models_quantised(void **state) {
    (void)state;
    check_builtin("vad", 0.03, 0.006);
    check_builtin("kws", 0.02, 0.0001);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_equal_generic),
        cmocka_unit_test(test_kernel_choice),
        cmocka_unit_test(test_vector_quantisation),
        cmocka_unit_test(test_quantisation_kernels_equal_reference),
        cmocka_unit_test(test_rescale_kernels_equal_generic),
        cmocka_unit_test(test_every_layer_type),
        cmocka_unit_test(test_save_and_load),
        cmocka_unit_test(test_builtin_models_quantised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
