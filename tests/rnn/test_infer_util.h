/*
 * Helpers shared by the inference tests: random models and inputs.
 * Header-only so each test executable stays one source file.
 */
#ifndef ES_TEST_INFER_UTIL_H
#define ES_TEST_INFER_UTIL_H

#include <stdint.h>
#include <stdlib.h>

#include "model_internal.h"
#include "rnn.h"

/* Features every test model claims; the values are the shipped front end's. */
static const es_feature_spec test_features = {16000, 512, 400, 160, 40, 1};

typedef struct test_layer {
    es_layer_type type;
    int units;
    es_activation act;
    int kernel;
} test_layer;

/* The model shapes the inference tests share, as initialisers (each test
 * names the ones it uses): like the shipped VAD (a GRU of 37: gates of three
 * panels, so the AVX-512 matvec's lone panels are hit), like the keyword
 * model, the other recurrent types, and a STACK of 3 over 40 inputs. */
#define TEST_VAD_LIKE                                                                              \
    {                                                                                              \
        {ES_LAYER_CONV1D, 24, ES_ACT_RELU, 3}, {ES_LAYER_GRU, 37, ES_ACT_TANH, 0}, {               \
            ES_LAYER_DENSE, 1, ES_ACT_SIGMOID, 0                                                   \
        }                                                                                          \
    }
#define TEST_KWS_LIKE                                                                              \
    {                                                                                              \
        {ES_LAYER_GRU, 64, ES_ACT_TANH, 0}, {ES_LAYER_GRU, 50, ES_ACT_TANH, 0}, {                  \
            ES_LAYER_DENSE, 21, ES_ACT_SOFTMAX, 0                                                  \
        }                                                                                          \
    }
#define TEST_LSTM_RNN                                                                              \
    {                                                                                              \
        {ES_LAYER_LSTM, 33, ES_ACT_TANH, 0}, {ES_LAYER_RNN, 17, ES_ACT_TANH, 0}, {                 \
            ES_LAYER_DENSE, 4, ES_ACT_TANH, 0                                                      \
        }                                                                                          \
    }
#define TEST_STACKED_40                                                                            \
    {                                                                                              \
        {ES_LAYER_STACK, 3 * 40, ES_ACT_LINEAR, 3}, {ES_LAYER_GRU, 29, ES_ACT_TANH, 0}, {          \
            ES_LAYER_DENSE, 5, ES_ACT_SOFTMAX, 0                                                   \
        }                                                                                          \
    }

/* A model shape and its layer count, for tables of cases. */
typedef struct model_case {
    const test_layer *layers;
    int count;
} model_case;

static inline uint64_t test_random_next(uint64_t *state) {
    /* xorshift64*: independent of the library's generator. */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [-scale, scale). */
static inline float test_random_float(uint64_t *state, float scale) {
    double u = (double)(test_random_next(state) >> 11) / 9007199254740992.0;
    return (float)((2.0 * u - 1.0) * scale);
}

/* Every parameter (biases included) uniform in [-scale, scale), then repacked. */
static inline void test_randomise_params(es_model *m, uint64_t seed, float scale) {
    uint64_t state = seed * 2654435761u + 1;
    float *p = es_model_params(m);
    for (size_t i = 0; i < es_model_param_count(m); i++)
        p[i] = test_random_float(&state, scale);
    es_model_refresh(m);
}

/* A model from a layer list, random parameters; NULL on any failure. */
static inline es_model *test_make_model(int input_size, const test_layer *layers, int count,
                                        uint64_t seed) {
    es_model *m = NULL;
    if (es_model_create(&test_features, input_size, &m) != ES_RNN_OK) return NULL;
    for (int i = 0; i < count; i++) {
        if (es_model_add_layer(m, layers[i].type, layers[i].units, layers[i].act,
                               layers[i].kernel) != ES_RNN_OK) {
            es_model_destroy(m);
            return NULL;
        }
    }
    test_randomise_params(m, seed, 0.2f);
    return m;
}

static inline float *test_random_inputs(int frames, int size, uint64_t seed) {
    uint64_t state = seed * 2 + 1; /* xorshift needs a non-zero state */
    float *x = malloc(sizeof(float) * (size_t)frames * (size_t)size);
    for (int i = 0; x && i < frames * size; i++)
        x[i] = test_random_float(&state, 2.0f);
    return x;
}

#endif
