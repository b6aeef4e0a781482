/*
 * Many threads, one read-only model, one state each: every thread gets the
 * results a lone stream gets. Run under ThreadSanitizer in CI (label tsan),
 * which also proves stepping writes nothing shared.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_infer_util.h"

#define THREADS 4
#define FRAMES 120

typedef struct stream_job {
    const es_model *model;
    const float *inputs;
    float *outputs;
    int rc;
} stream_job;

static void *run_stream(void *arg) {
    stream_job *job = arg;
    int in = es_model_input_size(job->model), out = es_model_output_size(job->model);
    es_state *s = NULL;
    job->rc = es_state_create(job->model, &s);
    if (job->rc != ES_RNN_OK) return NULL;
    for (int t = 0; t < FRAMES; t++)
        memcpy(job->outputs + (size_t)t * out, es_state_step(s, job->inputs + (size_t)t * in),
               sizeof(float) * out);
    es_state_destroy(s);
    return NULL;
}

static void test_threads_share_one_model(void **state) {
    (void)state;
    const test_layer layers[] = {{ES_LAYER_CONV1D, 16, ES_ACT_RELU, 3},
                                 {ES_LAYER_GRU, 32, ES_ACT_TANH, 0},
                                 {ES_LAYER_LSTM, 24, ES_ACT_TANH, 0},
                                 {ES_LAYER_DENSE, 5, ES_ACT_SOFTMAX, 0}};
    es_model *m = test_make_model(40, layers, 4, 11);
    assert_non_null(m);
    int out = es_model_output_size(m);
    stream_job jobs[THREADS];
    float *expected[THREADS];
    for (int k = 0; k < THREADS; k++) {
        jobs[k] = (stream_job){m, test_random_inputs(FRAMES, 40, 100 + (uint64_t)k),
                               calloc((size_t)FRAMES * out, sizeof(float)), -1};
        expected[k] = malloc(sizeof(float) * (size_t)FRAMES * out);
        assert_int_equal(es_model_forward_sequence(m, jobs[k].inputs, FRAMES, expected[k]),
                         ES_RNN_OK);
    }
    pthread_t threads[THREADS];
    for (int k = 0; k < THREADS; k++)
        assert_int_equal(pthread_create(&threads[k], NULL, run_stream, &jobs[k]), 0);
    for (int k = 0; k < THREADS; k++)
        assert_int_equal(pthread_join(threads[k], NULL), 0);
    for (int k = 0; k < THREADS; k++) {
        assert_int_equal(jobs[k].rc, ES_RNN_OK);
        assert_memory_equal(jobs[k].outputs, expected[k], sizeof(float) * (size_t)FRAMES * out);
        free((void *)jobs[k].inputs);
        free(jobs[k].outputs);
        free(expected[k]);
    }
    es_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_share_one_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
