/* Resampler + downmix, alone and in front of the front end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp_internal.h"
#include "test_signals.h"

#define OUTPUT_RATE_HZ 16000
#define SIGNAL_S 3.0

typedef struct sample_list {
    float *samples;
    size_t count;
    size_t capacity;
} sample_list;

static void reserve(sample_list *list, size_t extra) {
    if (list->count + extra <= list->capacity) return;
    while (list->count + extra > list->capacity) {
        list->capacity = list->capacity ? 2 * list->capacity : 4096;
    }
    list->samples = realloc(list->samples, list->capacity * sizeof(float));
    assert_non_null(list->samples);
}

/* Resamples interleaved `input` in calls of `chunk` frames, then drains. */
static sample_list resample(const float *input, size_t frames, int channels, double rate_hz,
                            size_t chunk) {
    es_resampler *rs = NULL;
    assert_int_equal(es_resampler_create(rate_hz, channels, OUTPUT_RATE_HZ, chunk, &rs), ES_DSP_OK);
    sample_list out = {0};
    const size_t bound = es_resampler_output_bound(rs, chunk);
    for (size_t at = 0; at < frames; at += chunk) {
        const size_t n = frames - at < chunk ? frames - at : chunk;
        reserve(&out, bound);
        const long got = es_resampler_process(rs, input + at * (size_t)channels, n,
                                              out.samples + out.count, bound);
        assert_true(got >= 0);
        assert_true((size_t)got <= bound);
        out.count += (size_t)got;
    }
    for (;;) {
        reserve(&out, 256);
        const long got = es_resampler_drain(rs, out.samples + out.count, 256);
        assert_true(got >= 0);
        if (got == 0) break;
        out.count += (size_t)got;
    }
    es_resampler_destroy(rs);
    return out;
}

/* Every channel differs, but their mean is `mono`: a downmix that averages
 * gives `mono` back; one that picks or sums channels does not. */
static float *spread_over_channels(const float *mono, size_t frames, int channels) {
    float *out = malloc(frames * (size_t)channels * sizeof(float));
    assert_non_null(out);
    uint32_t seed = 77;
    for (size_t n = 0; n < frames; n++) {
        float offsets_sum = 0.0f;
        for (int c = 0; c < channels; c++) {
            float offset = 0.0f;
            if (c < channels - 1) {
                offset = 0.2f * test_random_symmetric(&seed);
                offsets_sum += offset;
            } else {
                offset = -offsets_sum;
            }
            out[n * (size_t)channels + (size_t)c] = mono[n] + offset;
        }
    }
    return out;
}

static void identity_rate_only_downmixes(void **state) {
    (void)state;
    const float stereo[] = {1.0f, 0.0f, 0.5f, -0.5f, -1.0f, 0.25f};
    es_resampler *rs = NULL;
    assert_int_equal(es_resampler_create(16000, 2, 16000, 3, &rs), ES_DSP_OK);
    assert_int_equal(es_resampler_output_bound(rs, 3), 3);
    float out[3];
    assert_int_equal(es_resampler_process(rs, stereo, 3, out, 3), 3);
    assert_true(out[0] == 0.5f && out[1] == 0.0f && out[2] == -0.375f);
    assert_int_equal(es_resampler_process(rs, NULL, 0, out, 0), 0);
    assert_int_equal(es_resampler_drain(rs, out, 3), 0);
    /* The stream has ended: more input is refused. */
    assert_int_equal(es_resampler_process(rs, stereo, 1, out, 3), ES_DSP_ERR_CONFIG);
    /* More frames than promised at create are refused, not overrun. */
    float big_input[8] = {0};
    assert_int_equal(es_resampler_process(rs, big_input, 4, out, 3), ES_DSP_ERR_CONFIG);
    es_resampler_destroy(rs);
}

static void bad_arguments_are_refused(void **state) {
    (void)state;
    es_resampler *rs = (es_resampler *)state;
    assert_int_equal(es_resampler_create(0, 1, 16000, 64, &rs), ES_DSP_ERR_CONFIG);
    assert_null(rs);
    assert_int_equal(es_resampler_create(44100.5, 1, 16000, 64, &rs), ES_DSP_ERR_CONFIG);
    assert_int_equal(es_resampler_create(44100, 0, 16000, 64, &rs), ES_DSP_ERR_CONFIG);
    assert_int_equal(es_resampler_create(44100, 1, 16000, 0, &rs), ES_DSP_ERR_CONFIG);
    assert_int_equal(es_resampler_create(NAN, 1, 16000, 64, &rs), ES_DSP_ERR_CONFIG);

    assert_int_equal(es_resampler_create(44100, 1, 16000, 441, &rs), ES_DSP_OK);
    float input[441] = {0};
    const size_t bound = es_resampler_output_bound(rs, 441);
    assert_true(bound >= 160);
    float *out = calloc(bound, sizeof(float));
    assert_non_null(out);
    /* Too small an output buffer is refused before anything is consumed. */
    assert_int_equal(es_resampler_process(rs, input, 441, out, bound - 1), ES_DSP_ERR_CONFIG);
    assert_true(es_resampler_process(rs, input, 441, out, bound) >= 0);
    assert_int_equal(es_resampler_process(rs, NULL, 0, out, bound), 0);
    free(out);
    es_resampler_destroy(rs);
}

/* The output is a function of the input stream, not of the call sizes. */
static void output_does_not_depend_on_chunking(void **state) {
    (void)state;
    const double rate_hz = 44100;
    const size_t frames = (size_t)(rate_hz * 1.5);
    float *mono = malloc(frames * sizeof(float));
    assert_non_null(mono);
    test_render_speech_like(mono, frames, rate_hz, 7000.0);
    float *stereo = spread_over_channels(mono, frames, 2);
    sample_list reference = resample(stereo, frames, 2, rate_hz, 4096);
    const size_t chunks[] = {1, 100, 441, 1000};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        sample_list out = resample(stereo, frames, 2, rate_hz, chunks[c]);
        assert_int_equal(out.count, reference.count);
        assert_memory_equal(out.samples, reference.samples, out.count * sizeof(float));
        free(out.samples);
    }
    /* Drained, the stream has its full length: 1.5 s at 16 kHz. */
    printf("44.1 kHz -> 16 kHz: %zu samples out of 1.5 s (expected 24000)\n", reference.count);
    assert_true(reference.count >= 23999 && reference.count <= 24001);
    free(reference.samples);
    free(stereo);
    free(mono);
}

/* A 1 kHz tone comes out where it belongs in time: priming leaves no offset. */
static void output_is_time_aligned(void **state) {
    (void)state;
    const double rates[] = {8000, 22050, 44100, 48000};
    for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
        const size_t frames = (size_t)rates[r];
        float *tone = malloc(frames * sizeof(float));
        assert_non_null(tone);
        for (size_t n = 0; n < frames; n++) {
            tone[n] = 0.5f * (float)sin(2.0 * M_PI * 1000.0 * (double)n / rates[r]);
        }
        sample_list out = resample(tone, frames, 1, rates[r], 1000);
        double worst = 0.0;
        /* Skip the first and last 20 ms, where the tone's abrupt edges ring. */
        for (size_t n = 320; n + 320 < out.count; n++) {
            const double expected = 0.5 * sin(2.0 * M_PI * 1000.0 * (double)n / OUTPUT_RATE_HZ);
            const double error = fabs(out.samples[n] - expected);
            if (error > worst) worst = error;
        }
        printf("%5.0f Hz: 1 kHz tone, worst sample error %.2g (amplitude 0.5)\n", rates[r], worst);
        assert_true(worst < 1e-3);
        free(out.samples);
        free(tone);
    }
}

static frame_list features_of(const float *samples, size_t count) {
    es_frontend_config config;
    es_frontend_config_default(&config);
    es_frontend *fe = NULL;
    assert_int_equal(es_frontend_create(&config, &fe), ES_DSP_OK);
    frame_list list = {0};
    es_frontend_process(fe, samples, count, collect_frame, &list);
    es_frontend_destroy(fe);
    return list;
}

/* Band b's triangle ends at the centre of band b + 1. */
static double band_upper_edge_hz(int band) {
    es_frontend_config config;
    es_frontend_config_default(&config);
    es_frontend *fe = NULL;
    assert_int_equal(es_frontend_create(&config, &fe), ES_DSP_OK);
    const double edge =
        band + 1 < config.mel_bands ? es_frontend_mel_centre_hz(fe, band + 1) : config.mel_high_hz;
    es_frontend_destroy(fe);
    return edge;
}

/* The same analytic signal rendered at other rates and channel counts,
 * through resampler + front end, against the 16 kHz mono original. Frames
 * 0-9 are skipped (the filters' start), and so are the last 10 (soxr's tail
 * after the abrupt end). 8 kHz carries content up to 3.6 kHz only, so there
 * only bands ending below 3.2 kHz are compared. Tolerance, natural-log
 * units: max 2e-3 and mean 1e-4 per feature (measured: max 3e-4, mean
 * under 1e-5, so soxr's 20-bit passband is far from the limit). */
static void rates_and_channels_give_the_same_features(void **state) {
    (void)state;
    const size_t reference_count = (size_t)(SIGNAL_S * OUTPUT_RATE_HZ);
    float *original = malloc(reference_count * sizeof(float));
    assert_non_null(original);
    test_render_speech_like(original, reference_count, OUTPUT_RATE_HZ, 7000.0);
    frame_list reference = features_of(original, reference_count);

    const struct {
        double rate_hz;
        int channels;
        double max_hz;
    } versions[] = {
        {16000, 2, 7000}, {8000, 1, 3600},  {22050, 1, 7000}, {44100, 1, 7000},
        {48000, 1, 7000}, {44100, 2, 7000}, {48000, 6, 7000},
    };
    for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
        const size_t frames = (size_t)(SIGNAL_S * versions[v].rate_hz);
        float *mono = malloc(frames * sizeof(float));
        assert_non_null(mono);
        test_render_speech_like(mono, frames, versions[v].rate_hz, versions[v].max_hz);
        float *interleaved = spread_over_channels(mono, frames, versions[v].channels);
        sample_list resampled =
            resample(interleaved, frames, versions[v].channels, versions[v].rate_hz, 1024);
        frame_list features = features_of(resampled.samples, resampled.count);

        int bands = 40;
        while (versions[v].max_hz < 7000 && band_upper_edge_hz(bands - 1) > 3200.0)
            bands--;
        const size_t skip = 10;
        const size_t compared_frames =
            (features.count < reference.count ? features.count : reference.count) - skip;
        assert_true(compared_frames > 250);
        double worst = 0.0, sum = 0.0;
        for (size_t i = skip; i < skip + compared_frames - 10; i++) {
            assert_int_equal(features.frames[i].time_samples, reference.frames[i].time_samples);
            for (int band = 0; band < bands; band++) {
                const double d =
                    fabs(features.frames[i].features[band] - reference.frames[i].features[band]);
                if (d > worst) worst = d;
                sum += d;
            }
        }
        const double mean = sum / ((double)(compared_frames - 10) * bands);
        printf("%5.0f Hz x %d ch: %2d bands, features differ by max %.2g, mean %.2g\n",
               versions[v].rate_hz, versions[v].channels, bands, worst, mean);
        assert_true(worst < 2e-3);
        assert_true(mean < 1e-4);
        free(features.frames);
        free(resampled.samples);
        free(interleaved);
        free(mono);
    }
    free(reference.frames);
    free(original);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identity_rate_only_downmixes),
        cmocka_unit_test(bad_arguments_are_refused),
        cmocka_unit_test(output_does_not_depend_on_chunking),
        cmocka_unit_test(output_is_time_aligned),
        cmocka_unit_test(rates_and_channels_give_the_same_features),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
