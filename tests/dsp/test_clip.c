/* Whole-clip signal processing (dsp.h, "whole clips"): convolution equals the
 * direct sum, the band-pass keeps its band and removes the rest, the one-shot
 * resampler gives the expected length and keeps a tone's frequency, and bad
 * arguments are refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"
#include "test_signals.h"

#define RATE_HZ 16000.0

static void render_tone(float *out, size_t count, double hz, double rate_hz) {
    for (size_t i = 0; i < count; i++)
        out[i] = (float)(0.5 * sin(2.0 * M_PI * hz * (double)i / rate_hz));
}

static double rms(const float *x, size_t from, size_t to) {
    double sum = 0.0;
    for (size_t i = from; i < to; i++)
        sum += (double)x[i] * x[i];
    return sqrt(sum / (double)(to - from));
}

static void test_convolve_is_the_direct_sum(void **state) {
    (void)state;
    /* Lengths on both sides of a power of two, and an impulse longer than the clip. */
    const size_t counts[] = {1, 255, 256, 1000, 300};
    const size_t impulses[] = {1, 2, 256, 77, 900};
    uint32_t seed = 7;
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        const size_t n = counts[c], m = impulses[c];
        float *x = malloc(sizeof(float) * n), *h = malloc(sizeof(float) * m);
        assert_non_null(x);
        assert_non_null(h);
        for (size_t i = 0; i < n; i++)
            x[i] = test_random_symmetric(&seed);
        for (size_t j = 0; j < m; j++)
            h[j] = test_random_symmetric(&seed) / (float)(j + 1);
        float *y = malloc(sizeof(float) * n);
        assert_non_null(y);
        memcpy(y, x, sizeof(float) * n);
        assert_int_equal(es_convolve(y, n, h, m, NULL), ES_DSP_OK);
        for (size_t i = 0; i < n; i++) {
            double direct = 0.0;
            for (size_t j = 0; j <= i && j < m; j++)
                direct += (double)h[j] * x[i - j];
            assert_float_equal(y[i], direct, 1e-4);
        }
        free(x);
        free(h);
        free(y);
    }
}

static void test_band_pass_keeps_its_band(void **state) {
    (void)state;
    const size_t n = 16000;
    float *x = malloc(sizeof(float) * n);
    assert_non_null(x);
    const double in_band[] = {400.0, 1000.0, 3300.0}, out_of_band[] = {100.0, 150.0, 5000.0};
    for (size_t t = 0; t < 3; t++) {
        render_tone(x, n, in_band[t], RATE_HZ);
        assert_int_equal(es_band_pass(x, n, RATE_HZ, 300.0, 3400.0, 100.0, NULL), ES_DSP_OK);
        /* Away from the ends, where the brick wall rings. */
        assert_float_equal(rms(x, n / 4, 3 * n / 4), 0.5 / sqrt(2.0), 0.01);
        render_tone(x, n, out_of_band[t], RATE_HZ);
        assert_int_equal(es_band_pass(x, n, RATE_HZ, 300.0, 3400.0, 100.0, NULL), ES_DSP_OK);
        assert_true(rms(x, n / 4, 3 * n / 4) < 0.01);
    }
    free(x);
}

/* Zero crossings per second of a tone are twice its frequency. */
static double tone_hz(const float *x, size_t count, double rate_hz) {
    size_t crossings = 0;
    for (size_t i = 1; i < count; i++)
        crossings += (x[i - 1] < 0.0f) != (x[i] < 0.0f);
    return (double)crossings / 2.0 / ((double)count / rate_hz);
}

static void test_resample_clip_keeps_the_tone(void **state) {
    (void)state;
    const size_t n = 22050;
    float *x = malloc(sizeof(float) * n);
    assert_non_null(x);
    render_tone(x, n, 440.0, 22050.0);
    const es_clip_resample_quality qualities[] = {ES_CLIP_RESAMPLE_QUICK, ES_CLIP_RESAMPLE_LOW};
    for (size_t q = 0; q < 2; q++) {
        float *y = NULL;
        size_t count = 0;
        assert_int_equal(es_resample_clip(x, n, 22050.0, RATE_HZ, qualities[q], &y, &count, NULL),
                         ES_DSP_OK);
        assert_in_range(count, 15990, 16010);
        assert_float_equal(tone_hz(y, count, RATE_HZ), 440.0, 2.0);
        free(y);
        /* A speed change: read as if recorded at 1.25 x the rate, the tone rises to 550 Hz. */
        assert_int_equal(
            es_resample_clip(x, n, 22050.0 * 1.25, 22050.0, qualities[q], &y, &count, NULL),
            ES_DSP_OK);
        assert_in_range(count, 17630, 17650);
        assert_float_equal(tone_hz(y, count, 22050.0), 550.0, 2.0);
        free(y);
    }
    free(x);
}

static void test_bad_arguments_are_named(void **state) {
    (void)state;
    float x[4] = {0}, h[1] = {1.0f};
    float *y = NULL;
    size_t count = 99;
    es_error err = {0};
    assert_int_equal(es_resample_clip(x, 4, 0.0, RATE_HZ, ES_CLIP_RESAMPLE_LOW, &y, &count, &err),
                     ES_DSP_ERR_CONFIG);
    assert_int_equal(err.code, ES_DSP_ERR_CONFIG);
    assert_non_null(strstr(err.why, "0 Hz"));
    assert_null(y);
    assert_int_equal(count, 99);
    assert_int_equal(es_resample_clip(x, 4, NAN, RATE_HZ, ES_CLIP_RESAMPLE_LOW, &y, &count, NULL),
                     ES_DSP_ERR_CONFIG);
    assert_int_equal(es_convolve(x, 4, h, 0, &err), ES_DSP_ERR_CONFIG);
    assert_non_null(strstr(err.why, "impulse"));
    assert_int_equal(es_band_pass(x, 4, RATE_HZ, 3400.0, 300.0, 100.0, &err), ES_DSP_ERR_CONFIG);
    assert_non_null(strstr(err.why, "band-pass"));
    /* Empty clips are nothing to do. */
    assert_int_equal(es_convolve(x, 0, h, 1, NULL), ES_DSP_OK);
    assert_int_equal(es_band_pass(x, 0, RATE_HZ, 300.0, 3400.0, 100.0, NULL), ES_DSP_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convolve_is_the_direct_sum),
        cmocka_unit_test(test_band_pass_keeps_its_band),
        cmocka_unit_test(test_resample_clip_keeps_the_tone),
        cmocka_unit_test(test_bad_arguments_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
