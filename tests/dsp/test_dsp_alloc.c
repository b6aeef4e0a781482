/* The [rt] calls never allocate: es_frontend_process, es_resampler_process,
 * and the ring's push/pop. Heap calls are counted by tests/common/alloc_count
 * (shared libraries such as FFTW and libsoxr included), in every build. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <soxr.h>

#include "alloc_count.h"
#include "dsp.h"
#include "test_signals.h"

/* Counts this thread's heap calls between start and stop (alloc_count.h). */
static void start_counting(void) {
    alloc_count_reset();
    alloc_count_open();
}

static long stop_counting(void) {
    alloc_count_close();
    return alloc_count_allocations();
}

/* Proof that the counter sees allocations at all, so a zero means something. */
static void counter_sees_allocations(void **state) {
    (void)state;
    start_counting();
    void *volatile p = malloc(100);
    free(p);
    assert_int_equal(stop_counting(), 1);
}

static void count_frames(const es_frame *frame, void *user) {
    (void)frame;
    (*(size_t *)user)++;
}

static void frontend_process_does_not_allocate(void **state) {
    (void)state;
    es_frontend_config config;
    es_frontend_config_default(&config);
    es_frontend *fe = NULL;
    assert_int_equal(es_frontend_create(&config, &fe), ES_DSP_OK);
    const size_t count = 16000;
    float *samples = malloc(count * sizeof(float));
    assert_non_null(samples);
    test_render_tones_and_noise(samples, count, 3);
    size_t frames = 0;
    start_counting();
    es_frontend_process(fe, samples, count, count_frames, &frames);
    es_frontend_process(fe, samples, 7, count_frames, &frames);
    es_frontend_reset(fe);
    es_frontend_process(fe, samples, count, count_frames, &frames);
    assert_int_equal(stop_counting(), 0);
    assert_true(frames > 150);
    free(samples);
    es_frontend_destroy(fe);
}

/* soxr allocates lazily during its first few hundred milliseconds of input;
 * es_resampler_create primes it so that none of that happens here. */
static void resampler_process_does_not_allocate(void **state) {
    (void)state;
    const double rates[] = {8000, 11025, 22050, 32000, 44100, 48000, 96000};
    for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
        const size_t chunk = 512, channels = 2;
        es_resampler *rs = NULL;
        assert_int_equal(es_resampler_create(rates[r], (int)channels, 16000, chunk, &rs),
                         ES_DSP_OK);
        const size_t bound = es_resampler_output_bound(rs, chunk);
        float *input = malloc(chunk * channels * sizeof(float));
        float *output = malloc(bound * sizeof(float));
        assert_non_null(input);
        assert_non_null(output);
        uint32_t seed = 11;
        long produced = 0;
        start_counting();
        /* Five seconds of input, well past soxr's lazy set-up. */
        for (size_t fed = 0; fed < (size_t)(5 * rates[r]); fed += chunk) {
            for (size_t i = 0; i < chunk * channels; i++) {
                input[i] = 0.3f * test_random_symmetric(&seed);
            }
            const long got = es_resampler_process(rs, input, chunk, output, bound);
            assert_true(got >= 0);
            produced += got;
        }
        const long allocated = stop_counting();
        printf("%6.0f Hz: %ld samples out, %ld allocations\n", rates[r], produced, allocated);
        assert_int_equal(allocated, 0);
        free(input);
        free(output);
        es_resampler_destroy(rs);
    }
}

/* Why es_resampler_create primes soxr: a bare soxr allocates inside
 * soxr_process well after its first call. Printed, not asserted: it is a
 * fact about libsoxr 0.1.3, not a property of earshot. */
static void bare_soxr_allocates_lazily(void **state) {
    (void)state;
    const soxr_io_spec_t io_spec = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality_spec = soxr_quality_spec(SOXR_HQ, 0);
    const soxr_runtime_spec_t runtime_spec = soxr_runtime_spec(1);
    soxr_t soxr = soxr_create(44100, 16000, 1, NULL, &io_spec, &quality_spec, &runtime_spec);
    assert_non_null(soxr);
    float input[441] = {0}, output[4096];
    long after_first_call = 0;
    for (int call = 0; call < 200; call++) {
        size_t consumed = 0, produced = 0;
        if (call > 0) start_counting();
        assert_null(soxr_process(soxr, input, 441, &consumed, output, 4096, &produced));
        if (call > 0) after_first_call += stop_counting();
    }
    printf("bare soxr 44.1 kHz: %ld allocations inside soxr_process after its first call "
           "(2 s of input)\n",
           after_first_call);
    soxr_delete(soxr);
}

static void ring_does_not_allocate(void **state) {
    (void)state;
    es_ring *ring = NULL;
    assert_int_equal(es_ring_create(8, &ring), ES_DSP_OK);
    es_frame frame = {0};
    start_counting();
    for (int i = 0; i < 100; i++) {
        es_ring_push_overwrite(ring, &frame);
        (void)es_ring_push(ring, &frame);
        (void)es_ring_pop(ring, &frame);
    }
    assert_int_equal(stop_counting(), 0);
    es_ring_destroy(ring);
}

int main(void) {
    alloc_count_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counter_sees_allocations),
        cmocka_unit_test(frontend_process_does_not_allocate),
        cmocka_unit_test(resampler_process_does_not_allocate),
        cmocka_unit_test(bare_soxr_allocates_lazily),
        cmocka_unit_test(ring_does_not_allocate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
