/* Small models, sequences and a seeded generator shared by the trainer tests. */
#ifndef ES_TEST_TRAIN_FIXTURES_H
#define ES_TEST_TRAIN_FIXTURES_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "rnn.h"
#include "train.h"

typedef struct test_rng {
    uint64_t state;
} test_rng;

static inline uint64_t test_rng_next(test_rng *r) {
    /* splitmix64: good enough, and the same everywhere */
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float test_rng_uniform(test_rng *r) {
    return (float)(test_rng_next(r) >> 40) / 8388608.0f - 1.0f;
}

static inline int test_rng_below(test_rng *r, int n) {
    return (int)(test_rng_next(r) % (uint64_t)n);
}

/* A model of `input_size` inputs, the given hidden layers and a head of
 * `outputs` units with activation `head`. */
typedef struct test_layer {
    es_layer_type type;
    int units;
    es_activation activation;
    int kernel;
} test_layer;

static inline es_model *test_model_layers(int input_size, const test_layer *layers, int count,
                                          const test_layer *head, uint64_t seed) {
    static const es_feature_spec features = {16000, 512, 400, 160, 40, 0};
    es_model *m = NULL;
    if (es_model_create(&features, input_size, &m) != ES_RNN_OK) return NULL;
    for (int i = 0; i < count; i++)
        if (es_model_add_layer(m, layers[i].type, layers[i].units, layers[i].activation,
                               layers[i].kernel) != ES_RNN_OK)
            goto fail;
    if (head &&
        es_model_add_layer(m, head->type, head->units, head->activation, head->kernel) != ES_RNN_OK)
        goto fail;
    es_model_init_weights(m, seed);
    return m;
fail:
    es_model_destroy(m);
    return NULL;
}

static inline es_model *test_model(int input_size, const test_layer *layers, int count, int outputs,
                                   es_activation head, uint64_t seed) {
    test_layer dense = {ES_LAYER_DENSE, outputs, head, 0};
    return test_model_layers(input_size, layers, count, &dense, seed);
}

/* The last of `layers` is the head. */
static inline es_model *test_model_headless(int input_size, const test_layer *layers, int count,
                                            uint64_t seed) {
    return test_model_layers(input_size, layers, count, NULL, seed);
}

/* Update-gate bias b_z = 1 in every GRU direction: "remember by default",
 * like the LSTM forget-gate bias of 1 that es_model_init_weights sets. With
 * zero gate biases, a 16-unit GRU did not learn to recall a bit 50 frames
 * back within 1500 steps; with b_z = 1 it does in ~150 (measured). */
static inline void test_gru_remember_by_default(es_model *m) {
    for (int l = 0; l < m->layer_count; l++) {
        const es_layer *layer = &m->layers[l];
        if (layer->type != ES_LAYER_GRU && layer->type != ES_LAYER_BIDIR_GRU) continue;
        int directions = layer->type == ES_LAYER_BIDIR_GRU ? 2 : 1;
        size_t rows = 3 * (size_t)layer->units;
        size_t direction_size = layer->param_count / directions;
        for (int d = 0; d < directions; d++) {
            float *b = m->params + layer->param_offset + d * direction_size +
                       rows * layer->input_size + rows * layer->units;
            for (int j = 0; j < layer->units; j++)
                b[j] = 1.0f;
        }
    }
    es_model_refresh(m);
}

static inline double test_norm(const float *v, size_t n) {
    double sq = 0.0;
    for (size_t i = 0; i < n; i++)
        sq += (double)v[i] * v[i];
    return sqrt(sq);
}

/* The recall task: channel 0 carries a random bit (+-1) at frame 0 only,
 * channel 1 is noise throughout; the class at the last frame, 50 frames
 * later, is the bit; no other frame is scored. */
#define TEST_RECALL_INPUTS 2
#define TEST_RECALL_DELAY 50
#define TEST_RECALL_FRAMES (TEST_RECALL_DELAY + 1)
#define TEST_RECALL_BATCH 32

typedef struct test_recall_batch {
    float inputs[TEST_RECALL_BATCH][TEST_RECALL_FRAMES * TEST_RECALL_INPUTS];
    int classes[TEST_RECALL_BATCH][TEST_RECALL_FRAMES];
    es_sequence seqs[TEST_RECALL_BATCH];
} test_recall_batch;

static inline void test_make_recall_batch(test_recall_batch *d, test_rng *rng) {
    for (int s = 0; s < TEST_RECALL_BATCH; s++) {
        int bit = test_rng_below(rng, 2);
        for (int t = 0; t < TEST_RECALL_FRAMES; t++) {
            float *x = d->inputs[s] + t * TEST_RECALL_INPUTS;
            x[0] = t == 0 ? (bit ? 1.0f : -1.0f) : 0.0f;
            x[1] = test_rng_uniform(rng);
            d->classes[s][t] = t == TEST_RECALL_FRAMES - 1 ? bit : -1;
        }
        d->seqs[s] = (es_sequence){
            .frames = TEST_RECALL_FRAMES, .inputs = d->inputs[s], .class_targets = d->classes[s]};
    }
}

#endif
