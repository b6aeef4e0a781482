/*
 * Every layer type's forward pass against a plain double-precision
 * reference written here from the equations in rnn.h, on every kernel set
 * this CPU runs (AVX-512, AVX2, NEON, generic), plus the kernels one by one.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels.h"
#include "test_infer_util.h"

#define FRAMES 23

/* ---- reference ------------------------------------------------------------------ */

static double sigmoid_ref(double x) {
    return 1.0 / (1.0 + exp(-x));
}

static void activate_ref(es_activation act, double *y, int n) {
    if (act == ES_ACT_SOFTMAX) {
        double max = y[0], sum = 0;
        for (int i = 1; i < n; i++)
            max = fmax(max, y[i]);
        for (int i = 0; i < n; i++)
            sum += exp(y[i] - max);
        for (int i = 0; i < n; i++)
            y[i] = exp(y[i] - max) / sum;
        return;
    }
    for (int i = 0; i < n; i++) {
        if (act == ES_ACT_RELU) y[i] = y[i] > 0 ? y[i] : 0;
        if (act == ES_ACT_SIGMOID) y[i] = sigmoid_ref(y[i]);
        if (act == ES_ACT_TANH) y[i] = tanh(y[i]);
    }
}

static int gates_of(es_layer_type type) {
    if (type == ES_LAYER_GRU || type == ES_LAYER_BIDIR_GRU) return 3;
    if (type == ES_LAYER_LSTM || type == ES_LAYER_BIDIR_LSTM) return 4;
    return 1;
}

static int is_bidir(es_layer_type type) {
    return type == ES_LAYER_BIDIR_GRU || type == ES_LAYER_BIDIR_LSTM;
}

/* Parameter count from rnn.h's layout table, written independently. */
static size_t params_ref(const test_layer *l, int in) {
    size_t u = (size_t)l->units, g = (size_t)gates_of(l->type);
    switch (l->type) {
    case ES_LAYER_DENSE:
        return u * in + u;
    case ES_LAYER_CONV1D:
        return u * (size_t)l->kernel * in + u;
    case ES_LAYER_RNN:
        return u * in + u * u + u;
    case ES_LAYER_GRU:
        return 3 * u * in + 3 * u * u + 6 * u;
    case ES_LAYER_LSTM:
        return 4 * u * in + 4 * u * u + 4 * u;
    default: /* BIDIR: two directions */
        return 2 * (g * u * in + g * u * u + (g == 3 ? 2 : 1) * g * u);
    }
}

/* One direction of RNN / GRU / LSTM over the sequence; writes unit j of frame
 * t to ys[t * stride + offset + j]. */
static void recurrent_ref(es_layer_type type, const float *p, int in, int u, const double *xs,
                          int frames, int backward, double *ys, int stride, int offset) {
    int g = gates_of(type);
    const float *w = p, *uw = p + (size_t)g * u * in, *b = uw + (size_t)g * u * u;
    const float *c = b + (size_t)g * u; /* GRU only */
    double *h = calloc((size_t)u, sizeof *h), *cell = calloc((size_t)u, sizeof *cell);
    double *hn = calloc((size_t)u, sizeof *hn);
    double *wx = calloc((size_t)g * u, sizeof *wx), *uh = calloc((size_t)g * u, sizeof *uh);
    for (int i = 0; i < frames; i++) {
        int t = backward ? frames - 1 - i : i;
        const double *x = xs + (size_t)t * in;
        for (int row = 0; row < g * u; row++) {
            double sx = b[row], sh = 0;
            for (int k = 0; k < in; k++)
                sx += (double)w[(size_t)row * in + k] * x[k];
            for (int k = 0; k < u; k++)
                sh += (double)uw[(size_t)row * u + k] * h[k];
            wx[row] = sx;
            uh[row] = sh;
        }
        for (int j = 0; j < u; j++) {
            if (g == 1) {
                hn[j] = tanh(wx[j] + uh[j]);
            } else if (g == 3) {
                double z = sigmoid_ref(wx[j] + uh[j] + c[j]);
                double r = sigmoid_ref(wx[u + j] + uh[u + j] + c[u + j]);
                double n = tanh(wx[2 * u + j] + r * (uh[2 * u + j] + c[2 * u + j]));
                hn[j] = (1 - z) * n + z * h[j];
            } else {
                double ig = sigmoid_ref(wx[j] + uh[j]);
                double fg = sigmoid_ref(wx[u + j] + uh[u + j]);
                double gg = tanh(wx[2 * u + j] + uh[2 * u + j]);
                double og = sigmoid_ref(wx[3 * u + j] + uh[3 * u + j]);
                cell[j] = fg * cell[j] + ig * gg;
                hn[j] = og * tanh(cell[j]);
            }
        }
        for (int j = 0; j < u; j++) {
            h[j] = hn[j];
            ys[(size_t)t * stride + offset + j] = hn[j];
        }
    }
    free(h);
    free(cell);
    free(hn);
    free(wx);
    free(uh);
}

/* The whole model over a sequence, in double; returns frames x output. */
static double *model_ref(const es_model *m, const test_layer *layers, int count,
                         const float *inputs, int frames) {
    int in = es_model_input_size(m);
    double *xs = malloc(sizeof(double) * (size_t)frames * in);
    for (int i = 0; i < frames * in; i++)
        xs[i] = inputs[i];
    const float *p = es_model_params((es_model *)m);
    for (int l = 0; l < count; l++) {
        const test_layer *layer = &layers[l];
        int u = layer->units, out = is_bidir(layer->type) ? 2 * u : u;
        double *ys = calloc((size_t)frames * out, sizeof *ys);
        if (layer->type == ES_LAYER_DENSE || layer->type == ES_LAYER_CONV1D) {
            int k_taps = layer->type == ES_LAYER_CONV1D ? layer->kernel : 1;
            const float *w = p, *b = p + (size_t)u * k_taps * in;
            for (int t = 0; t < frames; t++) {
                double *y = ys + (size_t)t * out;
                for (int j = 0; j < u; j++) {
                    double s = b[j];
                    for (int k = 0; k < k_taps; k++) {
                        int source = t - k_taps + 1 + k;
                        if (source < 0) continue; /* zeros before the stream starts */
                        for (int i = 0; i < in; i++)
                            s += (double)w[((size_t)j * k_taps + k) * in + i] *
                                 xs[(size_t)source * in + i];
                    }
                    y[j] = s;
                }
                activate_ref(layer->act, y, u);
            }
        } else if (is_bidir(layer->type)) {
            es_layer_type one = layer->type == ES_LAYER_BIDIR_GRU ? ES_LAYER_GRU : ES_LAYER_LSTM;
            size_t half = params_ref(layer, in) / 2;
            recurrent_ref(one, p, in, u, xs, frames, 0, ys, out, 0);
            recurrent_ref(one, p + half, in, u, xs, frames, 1, ys, out, u);
        } else {
            recurrent_ref(layer->type, p, in, u, xs, frames, 0, ys, out, 0);
        }
        p += params_ref(layer, in);
        free(xs);
        xs = ys;
        in = out;
    }
    return xs;
}

/* ---- the comparison --------------------------------------------------------------- */

static const es_isa all_isas[] = {ES_ISA_GENERIC, ES_ISA_AVX2, ES_ISA_AVX512, ES_ISA_NEON};

static float *run_model(es_model *m, const float *inputs, int frames) {
    int out = es_model_output_size(m), in = es_model_input_size(m);
    float *y = malloc(sizeof(float) * (size_t)frames * out);
    if (es_model_is_streaming(m)) {
        es_state *s = NULL;
        assert_int_equal(es_state_create(m, &s), ES_RNN_OK);
        for (int t = 0; t < frames; t++)
            memcpy(y + (size_t)t * out, es_state_step(s, inputs + (size_t)t * in),
                   sizeof(float) * out);
        es_state_destroy(s);
    } else {
        assert_int_equal(es_model_forward_sequence(m, inputs, frames, y), ES_RNN_OK);
    }
    return y;
}

static void check_close(const float *got, const double *want, int n, double tolerance,
                        const char *what) {
    for (int i = 0; i < n; i++) {
        double err = fabs(got[i] - want[i]);
        if (!(err <= tolerance * (1.0 + fabs(want[i])))) {
            fail_msg("%s: output %d is %.9g, reference %.9g", what, i, got[i], want[i]);
        }
    }
}

/* Builds the model, checks its layout, runs it on every kernel set. */
static void check_layers(int input_size, const test_layer *layers, int count, uint64_t seed) {
    es_model *m = test_make_model(input_size, layers, count, seed);
    assert_non_null(m);
    size_t expected = 0;
    int in = input_size;
    for (int l = 0; l < count; l++) {
        size_t n = params_ref(&layers[l], in);
        assert_int_equal(
            es_layer_param_count(layers[l].type, in, layers[l].units, layers[l].kernel), n);
        expected += n;
        in = is_bidir(layers[l].type) ? 2 * layers[l].units : layers[l].units;
    }
    assert_int_equal(es_model_param_count(m), expected);
    assert_int_equal(es_model_output_size(m), in);

    float *inputs = test_random_inputs(FRAMES, input_size, seed + 7);
    double *want = model_ref(m, layers, count, inputs, FRAMES);
    float *generic = NULL;
    for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
        if (es_model_use_isa(m, all_isas[i]) != ES_RNN_OK) continue; /* CPU lacks it */
        float *got = run_model(m, inputs, FRAMES);
        char what[64];
        snprintf(what, sizeof what, "%s, %d layers", es_model_kernel_name(m), count);
        check_close(got, want, FRAMES * in, 2e-5, what);
        if (!generic) {
            generic = got;
            continue;
        }
        /* The vectorised kernels agree with the portable ones. */
        for (int k = 0; k < FRAMES * in; k++)
            assert_true(fabsf(got[k] - generic[k]) <= 1e-5f * (1.0f + fabsf(generic[k])));
        free(got);
    }
    free(generic);
    free(want);
    free(inputs);
    es_model_destroy(m);
}

static void test_dense_every_activation(void **state) {
    (void)state;
    for (int act = ES_ACT_LINEAR; act <= ES_ACT_SOFTMAX; act++) {
        test_layer a[] = {{ES_LAYER_DENSE, 19, (es_activation)act, 0}};
        check_layers(7, a, 1, 10 + (uint64_t)act);
        test_layer b[] = {{ES_LAYER_DENSE, 16, (es_activation)act, 0}};
        check_layers(40, b, 1, 20 + (uint64_t)act);
        test_layer c[] = {{ES_LAYER_DENSE, 1, (es_activation)act, 0}};
        check_layers(1, c, 1, 30 + (uint64_t)act);
        test_layer d[] = {{ES_LAYER_DENSE, 33, (es_activation)act, 0}};
        check_layers(65, d, 1, 40 + (uint64_t)act);
    }
}

static void test_conv1d_kernels_and_activations(void **state) {
    (void)state;
    const int kernels[] = {1, 2, 3, 5};
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        test_layer a[] = {{ES_LAYER_CONV1D, 17, ES_ACT_RELU, kernels[i]}};
        check_layers(5, a, 1, 50 + i);
        test_layer b[] = {{ES_LAYER_CONV1D, 32, ES_ACT_TANH, kernels[i]}};
        check_layers(40, b, 1, 60 + i);
        test_layer c[] = {{ES_LAYER_CONV1D, 3, ES_ACT_LINEAR, kernels[i]}};
        check_layers(11, c, 1, 70 + i);
    }
}

static void test_recurrent_sizes(es_layer_type type) {
    const int sizes[][2] = {{3, 5}, {17, 19}, {40, 33}, {1, 1}, {40, 128}, {16, 48}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        test_layer a[] = {{type, sizes[i][1], ES_ACT_TANH, 0}};
        check_layers(sizes[i][0], a, 1, 100 * (uint64_t)type + i);
    }
}

static void test_rnn(void **state) {
    (void)state;
    test_recurrent_sizes(ES_LAYER_RNN);
}

static void test_gru(void **state) {
    (void)state;
    test_recurrent_sizes(ES_LAYER_GRU);
}

static void test_lstm(void **state) {
    (void)state;
    test_recurrent_sizes(ES_LAYER_LSTM);
}

static void test_bidirectional(void **state) {
    (void)state;
    test_layer gru[] = {{ES_LAYER_BIDIR_GRU, 13, ES_ACT_TANH, 0},
                        {ES_LAYER_DENSE, 3, ES_ACT_SOFTMAX, 0}};
    check_layers(9, gru, 2, 900);
    test_layer lstm[] = {{ES_LAYER_GRU, 8, ES_ACT_TANH, 0},
                         {ES_LAYER_BIDIR_LSTM, 21, ES_ACT_TANH, 0},
                         {ES_LAYER_DENSE, 1, ES_ACT_SIGMOID, 0}};
    check_layers(40, lstm, 3, 901);
}

static void test_stacks(void **state) {
    (void)state;
    test_layer vad[] = {{ES_LAYER_CONV1D, 32, ES_ACT_RELU, 3},
                        {ES_LAYER_GRU, 48, ES_ACT_TANH, 0},
                        {ES_LAYER_DENSE, 1, ES_ACT_SIGMOID, 0}};
    check_layers(40, vad, 3, 1000);
    test_layer kws[] = {{ES_LAYER_GRU, 64, ES_ACT_TANH, 0},
                        {ES_LAYER_GRU, 64, ES_ACT_TANH, 0},
                        {ES_LAYER_DENSE, 21, ES_ACT_SOFTMAX, 0}};
    check_layers(40, kws, 3, 1001);
    test_layer mixed[] = {{ES_LAYER_LSTM, 20, ES_ACT_TANH, 0},
                          {ES_LAYER_RNN, 9, ES_ACT_TANH, 0},
                          {ES_LAYER_CONV1D, 7, ES_ACT_SIGMOID, 2},
                          {ES_LAYER_DENSE, 5, ES_ACT_LINEAR, 0}};
    check_layers(6, mixed, 4, 1002);
}

static void test_deepest_stack(void **state) {
    (void)state;
    test_layer deep[ES_MAX_LAYERS];
    for (int l = 0; l < ES_MAX_LAYERS; l++)
        deep[l] = (test_layer){l % 2 ? ES_LAYER_GRU : ES_LAYER_LSTM, 6 + l, ES_ACT_TANH, 0};
    check_layers(5, deep, ES_MAX_LAYERS, 1100);

    es_model *m = test_make_model(5, deep, ES_MAX_LAYERS, 1101);
    assert_non_null(m);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_DENSE, 2, ES_ACT_LINEAR, 0), ES_RNN_ERR_ARG);
    assert_int_equal(es_model_layer_count(m), ES_MAX_LAYERS);
    es_model_destroy(m);
}

/* Folding a standardisation into the first layer gives, on raw inputs, what
 * the unfolded model gives on standardised ones: for every first-layer type. */
static void test_standardised_inputs_fold_into_first_layer(void **state) {
    (void)state;
    enum { IN = 5 };
    const es_layer_type firsts[] = {ES_LAYER_DENSE, ES_LAYER_CONV1D, ES_LAYER_GRU, ES_LAYER_LSTM,
                                    ES_LAYER_BIDIR_GRU};
    const float mean[IN] = {5.0f, -2.0f, 0.5f, 9.0f, 0.0f};
    const float std[IN] = {6.0f, 0.5f, 1.0f, 3.0f, 2.0f};
    for (size_t i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
        const test_layer layers[] = {{firsts[i], 6, ES_ACT_TANH, 3},
                                     {ES_LAYER_DENSE, 3, ES_ACT_SIGMOID, 0}};
        es_model *plain = test_make_model(IN, layers, 2, 40 + i);
        es_model *folded = test_make_model(IN, layers, 2, 40 + i);
        assert_non_null(plain);
        assert_non_null(folded);
        assert_int_equal(es_model_standardise_inputs(folded, mean, std), ES_RNN_OK);
        float *raw = test_random_inputs(FRAMES, IN, 9);
        float scaled[FRAMES * IN];
        for (int t = 0; t < FRAMES; t++)
            for (int k = 0; k < IN; k++) {
                raw[t * IN + k] = raw[t * IN + k] * std[k] + mean[k];
                scaled[t * IN + k] = (raw[t * IN + k] - mean[k]) / std[k];
            }
        float *want = run_model(plain, scaled, FRAMES);
        float *got = run_model(folded, raw, FRAMES);
        /* A convolution's zero history before the stream is a raw zero once
         * folded: its first kernel - 1 frames differ, by design. */
        const int first = firsts[i] == ES_LAYER_CONV1D ? layers[0].kernel - 1 : 0;
        for (int k = first * 3; k < FRAMES * 3; k++)
            assert_true(fabsf(got[k] - want[k]) <= 1e-4f);
        free(want);
        free(got);
        free(raw);
        es_model_destroy(plain);
        es_model_destroy(folded);
    }
    es_model *m = test_make_model(IN, (test_layer[]){{ES_LAYER_DENSE, 2, ES_ACT_LINEAR, 0}}, 1, 1);
    const float zero_std[IN] = {1.0f, 0.0f, 1.0f, 1.0f, 1.0f};
    assert_int_equal(es_model_standardise_inputs(m, mean, zero_std), ES_RNN_ERR_ARG);
    es_model_destroy(m);
}

/* Warm starts: layers are copied from the first on while they match, and the
 * rest of the new model keeps its own weights. */
static void test_copy_matching_layers(void **state) {
    (void)state;
    enum { IN = 5 };
    const test_layer trained[] = {{ES_LAYER_GRU, 6, ES_ACT_TANH, 0},
                                  {ES_LAYER_GRU, 6, ES_ACT_TANH, 0},
                                  {ES_LAYER_DENSE, 3, ES_ACT_SOFTMAX, 0}};
    const test_layer new_head[] = {{ES_LAYER_GRU, 6, ES_ACT_TANH, 0},
                                   {ES_LAYER_GRU, 6, ES_ACT_TANH, 0},
                                   {ES_LAYER_DENSE, 2, ES_ACT_SOFTMAX, 0}};
    es_model *src = test_make_model(IN, trained, 3, 70);
    es_model *dst = test_make_model(IN, new_head, 3, 71);
    es_model *fresh = test_make_model(IN, new_head, 3, 71);
    assert_int_equal(es_model_copy_matching_layers(dst, src), 2);
    const size_t head = 6 * 2 + 2, encoder = es_model_param_count(dst) - head;
    assert_memory_equal(es_model_params(dst), es_model_params(src), encoder * sizeof(float));
    assert_memory_equal(es_model_params(dst) + encoder, es_model_params(fresh) + encoder,
                        head * sizeof(float));
    assert_memory_not_equal(es_model_params(dst), es_model_params(fresh), sizeof(float) * 8);

    /* The same architecture: every layer, and the same outputs. */
    es_model *same = test_make_model(IN, trained, 3, 72);
    assert_int_equal(es_model_copy_matching_layers(same, src), 3);
    float *inputs = test_random_inputs(FRAMES, IN, 11);
    float *want = run_model(src, inputs, FRAMES), *got = run_model(same, inputs, FRAMES);
    assert_memory_equal(got, want, (size_t)FRAMES * 3 * sizeof(float));

    /* A different first layer or input size: nothing copied, nothing changed. */
    const test_layer wider[] = {{ES_LAYER_GRU, 7, ES_ACT_TANH, 0},
                                {ES_LAYER_DENSE, 2, ES_ACT_SOFTMAX, 0}};
    es_model *other = test_make_model(IN, wider, 2, 73),
             *other_fresh = test_make_model(IN, wider, 2, 73);
    es_model *narrow = test_make_model(IN - 1, trained, 3, 74);
    assert_int_equal(es_model_copy_matching_layers(other, src), 0);
    assert_int_equal(es_model_copy_matching_layers(narrow, src), 0);
    assert_memory_equal(es_model_params(other), es_model_params(other_fresh),
                        es_model_param_count(other) * sizeof(float));
    free(inputs);
    free(want);
    free(got);
    es_model *models[] = {src, dst, fresh, same, other, other_fresh, narrow};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        es_model_destroy(models[i]);
}

/* A model stepping every 2 frames starts from one stepping every frame: fed
 * each frame twice, it gives the other's outputs, one step per pair. */
static void test_copy_into_a_stacked_model(void **state) {
    (void)state;
    enum { IN = 5, K = 2, STEPS = 12 };
    const test_layer trained[] = {{ES_LAYER_GRU, 6, ES_ACT_TANH, 0},
                                  {ES_LAYER_GRU, 6, ES_ACT_TANH, 0},
                                  {ES_LAYER_DENSE, 3, ES_ACT_SOFTMAX, 0}};
    const test_layer stacked[] = {{ES_LAYER_STACK, K * IN, ES_ACT_LINEAR, K},
                                  {ES_LAYER_GRU, 6, ES_ACT_TANH, 0},
                                  {ES_LAYER_GRU, 6, ES_ACT_TANH, 0},
                                  {ES_LAYER_DENSE, 3, ES_ACT_SOFTMAX, 0}};
    es_model *src = test_make_model(IN, trained, 3, 80);
    es_model *dst = test_make_model(IN, stacked, 4, 81);
    assert_non_null(src);
    assert_non_null(dst);
    assert_int_equal(es_model_copy_matching_layers(dst, src), 4);
    float *once = test_random_inputs(STEPS, IN, 12);
    float twice[STEPS * K * IN];
    for (int t = 0; t < STEPS * K; t++)
        memcpy(twice + t * IN, once + (t / K) * IN, sizeof(float) * IN);
    float *want = run_model(src, once, STEPS), *got = run_model(dst, twice, STEPS * K);
    for (int j = 0; j < STEPS; j++)
        for (int k = 0; k < 3; k++)
            assert_float_equal(got[(j * K + K - 1) * 3 + k], want[j * 3 + k], 1e-5f);
    /* Only a STACK in front of the same layer: a wider one takes nothing. */
    const test_layer wider[] = {{ES_LAYER_STACK, K * IN, ES_ACT_LINEAR, K},
                                {ES_LAYER_GRU, 7, ES_ACT_TANH, 0},
                                {ES_LAYER_DENSE, 3, ES_ACT_SOFTMAX, 0}};
    es_model *other = test_make_model(IN, wider, 3, 82);
    assert_int_equal(es_model_copy_matching_layers(other, src), 0);
    free(once);
    free(want);
    free(got);
    es_model_destroy(src);
    es_model_destroy(dst);
    es_model_destroy(other);
}

static void test_bad_layer_arguments(void **state) {
    (void)state;
    es_model *m = NULL;
    assert_int_equal(es_model_create(&test_features, 0, &m), ES_RNN_ERR_ARG);
    assert_null(m);
    assert_int_equal(es_model_create(&test_features, 10, &m), ES_RNN_OK);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_GRU, 0, ES_ACT_TANH, 0), ES_RNN_ERR_ARG);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_GRU, 4097, ES_ACT_TANH, 0), ES_RNN_ERR_ARG);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_CONV1D, 4, ES_ACT_TANH, 0), ES_RNN_ERR_ARG);
    assert_int_equal(es_model_add_layer(m, (es_layer_type)8, 4, ES_ACT_TANH, 0), ES_RNN_ERR_ARG);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_DENSE, 4, (es_activation)5, 0), ES_RNN_ERR_ARG);
    assert_int_equal(es_model_layer_count(m), 0);
    assert_int_equal(es_model_add_layer(m, ES_LAYER_DENSE, 2, ES_ACT_SOFTMAX, 0), ES_RNN_OK);
    const char *three[] = {"a", "b", "c"};
    assert_int_equal(es_model_set_labels(m, 3, three), ES_RNN_ERR_ARG);
    const char *comma[] = {"a,b", "c"};
    assert_int_equal(es_model_set_labels(m, 2, comma), ES_RNN_ERR_ARG);
    const char *good[] = {"filler", "yes"};
    assert_int_equal(es_model_set_labels(m, 2, good), ES_RNN_OK);
    assert_string_equal(es_model_label(m, 1), "yes");
    assert_null(es_model_label(m, 2));
    es_model_destroy(m);
}

static void test_flops_per_frame(void **state) {
    (void)state;
    test_layer kws[] = {{ES_LAYER_GRU, 128, ES_ACT_TANH, 0},
                        {ES_LAYER_GRU, 128, ES_ACT_TANH, 0},
                        {ES_LAYER_DENSE, 21, ES_ACT_SOFTMAX, 0}};
    es_model *m = test_make_model(40, kws, 3, 1);
    assert_non_null(m);
    /* 2*384*(40+128) + 2*384*(128+128) + 2*21*128 */
    assert_int_equal(es_model_flops_per_frame(m), 129024 + 196608 + 5376);
    es_model_destroy(m);
    test_layer conv_bidir[] = {{ES_LAYER_CONV1D, 8, ES_ACT_RELU, 3},
                               {ES_LAYER_BIDIR_LSTM, 4, ES_ACT_TANH, 0}};
    m = test_make_model(10, conv_bidir, 2, 1);
    assert_non_null(m);
    assert_int_equal(es_model_flops_per_frame(m), 2 * 8 * 30 + 2 * (2 * 16 * (8 + 4)));
    es_model_destroy(m);
}

/* ---- kernels one by one ------------------------------------------------------------ */

/* The comparisons above skip the sets a CPU lacks: make sure the vectorised
 * set of the architecture built for is there and chosen, so an ARM build
 * that lost its NEON kernels fails here instead of testing generic twice. */
static void test_the_vectorised_set_is_chosen(void **state) {
    (void)state;
    const es_kernels *chosen = es_kernels_for(ES_ISA_AUTO);
    assert_non_null(chosen);
#if defined(__aarch64__)
    assert_non_null(es_kernels_for(ES_ISA_NEON));
    assert_ptr_equal(chosen, es_kernels_for(ES_ISA_NEON));
    assert_null(es_kernels_for(ES_ISA_AVX2));
#elif defined(__x86_64__)
    assert_null(es_kernels_for(ES_ISA_NEON));
    const es_kernels *best = es_kernels_for(ES_ISA_AVX512);
    if (!best) best = es_kernels_for(ES_ISA_AVX2);
    if (!best) best = es_kernels_for(ES_ISA_GENERIC);
    assert_ptr_equal(chosen, best);
#endif
}

static void test_matvec_kernels(void **state) {
    (void)state;
    uint64_t rng = 77;
    for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
        const es_kernels *k = es_kernels_for(all_isas[i]);
        if (!k) continue;
        for (int panels = 1; panels <= 9; panels++) {
            int cols = 3 + 7 * panels;
            size_t stride = (size_t)cols * ES_PANEL_ROWS;
            float *w = es_alloc_floats(stride * panels);
            float *bias = es_alloc_floats((size_t)panels * ES_PANEL_ROWS);
            float *v = es_alloc_floats((size_t)cols);
            float *y = es_alloc_floats((size_t)panels * ES_PANEL_ROWS + 1);
            for (size_t j = 0; j < stride * panels; j++)
                w[j] = test_random_float(&rng, 1.0f);
            for (int j = 0; j < panels * ES_PANEL_ROWS; j++)
                bias[j] = test_random_float(&rng, 1.0f);
            for (int j = 0; j < cols; j++)
                v[j] = test_random_float(&rng, 1.0f);
            const int ranges[][2] = {{0, cols}, {1, cols - 2}, {cols / 2, cols}, {4, 4}};
            for (size_t r = 0; r < 4; r++) {
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                    y[panels * ES_PANEL_ROWS] = 12345.0f; /* must survive */
                    k->matvec(w, stride, panels, ranges[r][0], ranges[r][1], v,
                              with_bias ? bias : NULL, y);
                    for (int row = 0; row < panels * ES_PANEL_ROWS; row++) {
                        const float *panel = w + (size_t)(row / ES_PANEL_ROWS) * stride;
                        double want = with_bias ? bias[row] : 0.0;
                        for (int c = ranges[r][0]; c < ranges[r][1]; c++)
                            want += (double)panel[(size_t)c * ES_PANEL_ROWS + row % ES_PANEL_ROWS] *
                                    v[c];
                        assert_true(fabs(y[row] - want) <= 1e-5 * (1 + fabs(want)));
                    }
                    assert_true(y[panels * ES_PANEL_ROWS] == 12345.0f);
                }
            }
            free(w);
            free(bias);
            free(v);
            free(y);
        }
    }
}

/* matmat: each vector's result is close to the exact product, and equal to
 * the bit to what the same kernel gives that vector alone (a frame's
 * posteriors must not depend on the block it came in). */
static void test_matmat_kernels(void **state) {
    (void)state;
    uint64_t rng = 78;
    enum { MAX_COUNT = 9 };
    for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
        const es_kernels *k = es_kernels_for(all_isas[i]);
        if (!k) continue;
        for (int panels = 1; panels <= 9; panels++) {
            int cols = 5 + 6 * panels, rows = panels * ES_PANEL_ROWS;
            size_t stride = (size_t)cols * ES_PANEL_ROWS;
            size_t v_stride = (size_t)cols + 3, y_stride = (size_t)rows + 5;
            float *w = es_alloc_floats(stride * panels);
            float *bias = es_alloc_floats((size_t)rows);
            float *v = es_alloc_floats(v_stride * MAX_COUNT);
            float *y = es_alloc_floats(y_stride * MAX_COUNT);
            float *alone = es_alloc_floats((size_t)rows);
            for (size_t j = 0; j < stride * panels; j++)
                w[j] = test_random_float(&rng, 1.0f);
            for (int j = 0; j < rows; j++)
                bias[j] = test_random_float(&rng, 1.0f);
            for (size_t j = 0; j < v_stride * MAX_COUNT; j++)
                v[j] = test_random_float(&rng, 1.0f);
            for (int count = 1; count <= MAX_COUNT; count++) {
                int c0 = panels % 3, c1 = cols - panels % 2; /* inner column ranges too */
                for (size_t j = 0; j < y_stride * MAX_COUNT; j++)
                    y[j] = 12345.0f; /* gaps between results and past the last must survive */
                k->matmat(w, stride, panels, c0, c1, v, v_stride, count, bias, y, y_stride);
                for (int t = 0; t < count; t++) {
                    const float *vt = v + (size_t)t * v_stride;
                    const float *yt = y + (size_t)t * y_stride;
                    k->matmat(w, stride, panels, c0, c1, vt, v_stride, 1, bias, alone, 0);
                    assert_memory_equal(yt, alone, sizeof(float) * (size_t)rows);
                    for (int row = 0; row < rows; row++) {
                        const float *panel = w + (size_t)(row / ES_PANEL_ROWS) * stride;
                        double want = bias[row];
                        for (int c = c0; c < c1; c++)
                            want += (double)panel[(size_t)c * ES_PANEL_ROWS + row % ES_PANEL_ROWS] *
                                    vt[c];
                        assert_true(fabs(yt[row] - want) <= 1e-5 * (1 + fabs(want)));
                    }
                    for (size_t gap = (size_t)rows; gap < y_stride; gap++)
                        assert_true(yt[gap] == 12345.0f);
                }
                assert_true(y[(size_t)count * y_stride] == 12345.0f || count == MAX_COUNT);
            }
            free(w);
            free(bias);
            free(v);
            free(y);
            free(alone);
        }
    }
}

static void test_elementwise_kernels(void **state) {
    (void)state;
    enum { N = 37 }; /* not a multiple of 8 or 16: tails are exercised */
    float xs[N];
    const float special[] = {0.0f,  -0.0f, 1e-8f,  -1e-8f, 0.1249f, 0.1251f, -0.5f,  1.0f,   3.0f,
                             -9.0f, 20.0f, -20.0f, 80.0f,  -87.5f,  88.5f,   100.0f, -100.0f};
    for (int i = 0; i < N; i++)
        xs[i] =
            i < (int)(sizeof special / sizeof special[0]) ? special[i] : -6.0f + 0.6f * (float)i;
    for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
        const es_kernels *k = es_kernels_for(all_isas[i]);
        if (!k) continue;
        float y[N + 1];
        memcpy(y, xs, sizeof xs);
        y[N] = 777.0f;
        k->sigmoid(y, N);
        for (int j = 0; j < N; j++)
            assert_true(fabs(y[j] - sigmoid_ref(xs[j])) <= 2e-7 + 2e-6 * sigmoid_ref(xs[j]));
        assert_true(y[N] == 777.0f);

        memcpy(y, xs, sizeof xs);
        k->tanh(y, N);
        for (int j = 0; j < N; j++) {
            double want = tanh((double)xs[j]);
            assert_true(fabs(y[j] - want) <= 1e-7 + 2e-6 * fabs(want));
            assert_true(!signbit(y[j]) == !signbit(want) || want == 0.0);
        }
        assert_true(y[N] == 777.0f);

        for (int j = 0; j < N; j++)
            y[j] = fminf(xs[j], 80.0f) - 10.0f; /* exp stays finite */
        float in[N];
        memcpy(in, y, sizeof in);
        k->exp(y, N);
        for (int j = 0; j < N; j++) {
            double want = exp((double)in[j]);
            if (in[j] < -87.0f) continue; /* below the clamp: tiny either way */
            assert_true(fabs(y[j] - want) <= 3e-7 * want);
        }
        assert_true(y[N] == 777.0f);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_every_activation),
        cmocka_unit_test(test_conv1d_kernels_and_activations),
        cmocka_unit_test(test_rnn),
        cmocka_unit_test(test_gru),
        cmocka_unit_test(test_lstm),
        cmocka_unit_test(test_bidirectional),
        cmocka_unit_test(test_stacks),
        cmocka_unit_test(test_deepest_stack),
        cmocka_unit_test(test_standardised_inputs_fold_into_first_layer),
        cmocka_unit_test(test_copy_matching_layers),
        cmocka_unit_test(test_copy_into_a_stacked_model),
        cmocka_unit_test(test_bad_layer_arguments),
        cmocka_unit_test(test_flops_per_frame),
        cmocka_unit_test(test_the_vectorised_set_is_chosen),
        cmocka_unit_test(test_matvec_kernels),
        cmocka_unit_test(test_matmat_kernels),
        cmocka_unit_test(test_elementwise_kernels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
