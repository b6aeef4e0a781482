/*
 * libFuzzer target for the model-file parser: whatever the bytes, loading
 * either fails with a reason or gives a model that runs. ASan/UBSan report
 * any out-of-bounds access, overflow or leak on the way.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "rnn.h"

/* Inputs of the largest model the loader accepts (ES_MAX_UNITS wide). */
static float frames[2][4096];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    es_model *m = NULL;
    es_error err;
    int rc = es_model_load_memory(data, size, &m, &err);
    if (rc != ES_RNN_OK) {
        /* A refusal always says why. */
        if (m != NULL || err.code != rc || err.why[0] == '\0') abort();
        return 0;
    }
    for (int i = 0; i < 4096; i++) {
        frames[0][i] = 0.5f;
        frames[1][i] = -1.0f;
    }
    int inputs = es_model_input_size(m), outputs = es_model_output_size(m);
    if (inputs < 1 || inputs > 4096 || outputs < 1) abort();
    if (es_model_is_streaming(m)) {
        es_state *s = NULL;
        if (es_state_create(m, &s) != ES_RNN_OK) abort();
        es_state_step(s, frames[0]);
        es_state_step(s, frames[1]);
        es_state_destroy(s);
    } else {
        /* Two frames of `inputs` floats each, from one contiguous buffer. */
        float *out = malloc(sizeof(float) * 2 * (size_t)outputs);
        float *in = malloc(sizeof(float) * 2 * (size_t)inputs);
        if (!out || !in) abort();
        for (int i = 0; i < 2 * inputs; i++)
            in[i] = frames[i / inputs][i % inputs];
        if (es_model_forward_sequence(m, in, 2, out) != ES_RNN_OK) abort();
        free(in);
        free(out);
    }
    es_model_destroy(m);
    return 0;
}
