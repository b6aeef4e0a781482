/*
 * Writes the placeholder built-in models, vad.esm and kws.esm, with random
 * (seeded, so reproducible) weights: the daemon then builds and runs end to
 * end before real models are trained. Their outputs mean nothing.
 *
 *   es_make_placeholder OUTPUT_DIR
 */
#include <stdio.h>
#include <string.h>

#include "rnn.h"

/* The shipped front end: 16 kHz, 512-point FFT of 25 ms windows every
 * 10 ms, 40 log-mel bands, running-mean normalisation (ES_NORM_RUNNING_MEAN). */
static const es_feature_spec front_end = {16000, 512, 400, 160, 40, 1};

typedef struct layer_spec {
    es_layer_type type;
    int units;
    es_activation act;
    int kernel;
} layer_spec;

static int write_model(const char *dir, const char *name, const layer_spec *layers, int count,
                       int label_count, const char *const *labels, uint64_t seed) {
    es_model *m = NULL;
    int rc = es_model_create(&front_end, (int)front_end.mel_bands, &m);
    for (int i = 0; rc == ES_RNN_OK && i < count; i++)
        rc =
            es_model_add_layer(m, layers[i].type, layers[i].units, layers[i].act, layers[i].kernel);
    if (rc == ES_RNN_OK) rc = es_model_set_labels(m, label_count, labels);
    es_rnn_error err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.esm", dir, name);
    if (rc == ES_RNN_OK) {
        es_model_init_weights(m, seed);
        rc = es_model_save(m, path, &err);
    } else {
        snprintf(err.why, sizeof err.why, "%s", es_rnn_strerror(rc));
    }
    if (rc != ES_RNN_OK)
        fprintf(stderr, "es_make_placeholder: %s: %s\n", path, err.why);
    else
        printf("%s: %zu parameters, %zu FLOP per frame\n", path, es_model_param_count(m),
               es_model_flops_per_frame(m));
    es_model_destroy(m);
    return rc == ES_RNN_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: es_make_placeholder OUTPUT_DIR\n");
        return 2;
    }
    const layer_spec vad[] = {{ES_LAYER_CONV1D, 32, ES_ACT_RELU, 3},
                              {ES_LAYER_GRU, 64, ES_ACT_TANH, 0},
                              {ES_LAYER_DENSE, 1, ES_ACT_SIGMOID, 0}};
    const char *const vad_labels[] = {"speech"};
    const layer_spec kws[] = {{ES_LAYER_GRU, 128, ES_ACT_TANH, 0},
                              {ES_LAYER_GRU, 128, ES_ACT_TANH, 0},
                              {ES_LAYER_DENSE, 21, ES_ACT_SOFTMAX, 0}};
    const char *const kws_labels[] = {"filler", "yes",  "no",   "up",  "down",  "left",  "right",
                                      "on",     "off",  "stop", "go",  "zero",  "one",   "two",
                                      "three",  "four", "five", "six", "seven", "eight", "nine"};
    int failed = write_model(argv[1], "vad", vad, 3, 1, vad_labels, 1);
    failed |= write_model(argv[1], "kws", kws, 3, 21, kws_labels, 2);
    return failed;
}
