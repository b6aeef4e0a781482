/*
 * The models compiled into the binary load, expect the shipped front end's
 * features, carry the documented labels, and produce probabilities.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "builtin.h"
#include "test_infer_util.h"

static es_model *load_builtin(const char *name) {
    size_t size = 0;
    const unsigned char *bytes = es_builtin_model(name, &size);
    assert_non_null(bytes);
    assert_true(size > 0);
    es_model *m = NULL;
    es_error err = {0};
    if (es_model_load_memory(bytes, size, &m, &err) != ES_RNN_OK)
        fail_msg("built-in %s: %s", name, err.why);
    assert_int_equal(es_model_check_features(m, &test_features, &err), ES_RNN_OK);
    assert_true(es_model_is_streaming(m));
    return m;
}

/* Steps noise through the model; returns the last outputs' sum, checks range. */
static double step_noise(es_model *m) {
    es_state *s = NULL;
    assert_int_equal(es_state_create(m, &s), ES_RNN_OK);
    float *inputs = test_random_inputs(50, es_model_input_size(m), 1);
    double sum = 0;
    for (int t = 0; t < 50; t++) {
        const float *y = es_state_step(s, inputs + (size_t)t * es_model_input_size(m));
        sum = 0;
        for (int k = 0; k < es_model_output_size(m); k++) {
            assert_true(y[k] >= 0.0f && y[k] <= 1.0f);
            sum += y[k];
        }
    }
    free(inputs);
    es_state_destroy(s);
    return sum;
}

static void test_builtin_vad(void **state) {
    (void)state;
    es_model *m = load_builtin("vad");
    assert_int_equal(es_model_output_size(m), 1);
    assert_string_equal(es_model_label(m, 0), "speech");
    step_noise(m);
    es_model_destroy(m);
}

static void test_builtin_kws(void **state) {
    (void)state;
    es_model *m = load_builtin("kws");
    const char *labels[] = {"filler", "yes",  "no",   "up",  "down",  "left",  "right",
                            "on",     "off",  "stop", "go",  "zero",  "one",   "two",
                            "three",  "four", "five", "six", "seven", "eight", "nine"};
    assert_int_equal(es_model_output_size(m), 21);
    for (int k = 0; k < 21; k++)
        assert_string_equal(es_model_label(m, k), labels[k]);
    assert_true(fabs(step_noise(m) - 1.0) < 1e-5); /* softmax */
    es_model_destroy(m);
}

static void test_unknown_builtin(void **state) {
    (void)state;
    size_t size = 99;
    assert_null(es_builtin_model("nope", &size));
    assert_int_equal(size, 0);
    assert_null(es_builtin_model(NULL, &size));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_vad),
        cmocka_unit_test(test_builtin_kws),
        cmocka_unit_test(test_unknown_builtin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
